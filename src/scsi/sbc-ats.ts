/**
 * COMPARE AND WRITE (SBC-4 §5.3): VMware's "atomic test and set" (ATS), the VAAI primitive that
 * replaces SCSI reservations for VMFS metadata locking.
 *
 * The Data-Out is the verify instance (NUMBER OF LOGICAL BLOCKS blocks compared with the medium)
 * followed by the write instance (written only if every byte matched). The compare and the
 * write are one indivisible operation with respect to every other command on the same LBAs
 * from any I_T nexus: both run inside one exclusive hold of the LU's range lock, which every
 * write path (and every read) takes too (range-lock.ts). Disjoint I/O is never held up.
 */
import type { CommandDef } from './command.ts';
import { checkRange, invalidField, reserved } from './cdb.ts';
import type { LogicalUnit } from './lu.ts';
import { exclusive } from './range-lock.ts';
import { afterStore, blockLimits, checkWritable, MEDIA, mustBeDurable, respondAfter } from './sbc-common.ts';
import type { SplitRecorder } from './split.ts';
import { firstDifference, miscompare } from './sbc-verify.ts';
import { GOOD, ScsiStatus } from './types.ts';
import type { ScsiResponse } from './types.ts';

export interface CompareAndWriteCmd {
  lba: bigint;
  /** NUMBER OF LOGICAL BLOCKS: 0 transfers and changes nothing (SBC-4 §5.3.2). */
  blocks: number;
  fua: boolean;
}

/** CDB byte of NUMBER OF LOGICAL BLOCKS (for field pointers). */
const BLOCKS_BYTE = 13;

/**
 * Compare [lba, lba+blocks) with `verify`; write `data` there only if they are equal, else throw
 * MISCOMPARE with INFORMATION = offset of the first differing byte from the start of the verify
 * instance (SBC-4 §5.3.1). Synchronous when the store is. The caller holds the range. Only the
 * write half of a matching compare reaches the splitter (`split`), as the data written.
 */
export function compareAndWrite(lu: LogicalUnit, lba: bigint, blocks: number, verify: Buffer, data: Buffer, fua: boolean,
  split: SplitRecorder | null = null): void | Promise<void> {
  const then = (medium: Buffer): void | Promise<void> => {
    const off = firstDifference(medium, verify);
    if (off >= 0) throw miscompare(off);
    lu.stats.writes++;
    lu.stats.writeBytes += data.length;
    const w = lu.store.write(lba, data, mustBeDurable(lu, fua));
    return split === null ? w : afterStore(w, () => split.data(lu, lba, data));
  };
  const medium = lu.store.read(lba, blocks);
  return medium instanceof Promise ? medium.then(then) : then(medium);
}

export const COMPARE_AND_WRITE: CommandDef<CompareAndWriteCmd> = {
  opcode: 0x89, name: 'COMPARE AND WRITE', cdbLength: 16,
  usage: [0x89, 0xfa, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0xff, 0x1f, 0x00],
  dataDirection: 'out', reservation: 'write',
  // 'ats', not 'write': the Data-Out is not the data written (its first half is compared), and
  // whether anything is written depends on the medium. A splitter with policy support replicates
  // the write half only when the compare matched (compareAndWrite records it after the write).
  splitter: 'ats',
  ...MEDIA,
  decode: (cdb, lu, req) => {
    if (cdb[1] & 0xe0) throw invalidField(1, 7); // WRPROTECT: no protection information on this LU
    reserved(cdb, 10, 0xff);
    reserved(cdb, 11, 0xff);
    reserved(cdb, 12, 0xff);
    const lba = cdb.readBigUInt64BE(2);
    const blocks = cdb[BLOCKS_BYTE];
    // Above MAXIMUM COMPARE AND WRITE LENGTH (Block Limits VPD): INVALID FIELD IN CDB (§5.3.2).
    if (blocks > blockLimits(lu).maxCompareAndWriteLength) throw invalidField(BLOCKS_BYTE);
    checkRange(lu, lba, blocks);
    // Write protection (SBC-4 §4.11) before the Data-Out size: a protected LU reports DATA
    // PROTECT whatever the initiator sent.
    checkWritable(lu);
    // The Data-Out is exactly both instances: 2 × NUMBER OF LOGICAL BLOCKS blocks, and none
    // when that is 0. Any other Expected Data Transfer Length (libiscsi CompareAndWrite
    // .InvalidDataOutSize; a 256-block request whose count wrapped to 0) is rejected like LIO does.
    if ((req.dataOut?.length ?? 0) !== 2 * blocks * lu.blockSize) throw invalidField(BLOCKS_BYTE);
    return { lba, blocks, fua: (cdb[1] & 0x08) !== 0 };
  },
  execute: (ctx, c) => {
    if (c.blocks === 0) return GOOD;
    const lu = ctx.lu;
    checkWritable(lu);
    const len = c.blocks * lu.blockSize;
    const d = ctx.req.dataOut!;
    const verify = d.subarray(0, len);
    const data = d.subarray(len, 2 * len);
    const resp: ScsiResponse = { status: ScsiStatus.Good, data: null, sense: null, dataOutLength: 2 * len };
    const { lba, blocks, fua } = c;
    return respondAfter(exclusive(lu, lba, blocks, () => compareAndWrite(lu, lba, blocks, verify, data, fua, ctx.split)), resp);
  },
  writes: (c) => (c.blocks ? [{ lba: c.lba, blocks: c.blocks }] : []),
};

export const SBC_ATS_COMMANDS: CommandDef[] = [COMPARE_AND_WRITE];
