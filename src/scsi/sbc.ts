/**
 * SBC-4 block commands: the command-table entries (STYLE.md habit 2) for direct-access media,
 * and the device limits that the Block Limits VPD page (SBC-4 §6.6.4) reports.
 *
 * This file holds the data path (READ/WRITE 6/10/12/16, READ CAPACITY, SYNCHRONIZE CACHE) and
 * gathers the other SBC modules:
 *   sbc-verify.ts        VERIFY, WRITE AND VERIFY, ORWRITE, WRITE ATOMIC
 *   sbc-ats.ts           COMPARE AND WRITE (VAAI "atomic test and set")
 *   sbc-medium.ts        START STOP UNIT, PREVENT ALLOW MEDIUM REMOVAL, PRE-FETCH, READ DEFECT
 *                        DATA, FORMAT UNIT, SANITIZE
 *   sbc-provisioning.ts  WRITE SAME, UNMAP, GET LBA STATUS (logical block provisioning, §4.7)
 */
import type { CommandContext, CommandDef } from './command.ts';
import { checkMaxTransfer, checkRange, invalidField, reserved, rw10, rw12, rw16, rw6 } from './cdb.ts';
import type { LbaRange } from './cdb.ts';
import type { LogicalUnit } from './lu.ts';
import { GOOD, ScsiStatus } from './types.ts';
import type { ScsiResponse } from './types.ts';
import { blockLimits, MEDIA, provisioning, writeBlocks } from './sbc-common.ts';
import { SBC_VERIFY_COMMANDS } from './sbc-verify.ts';
import { SBC_ATS_COMMANDS } from './sbc-ats.ts';
import { rangeLockOf, shared } from './range-lock.ts';
import { SBC_MEDIUM_COMMANDS } from './sbc-medium.ts';
import { SBC_PROVISIONING_COMMANDS } from './sbc-provisioning.ts';

export { SBC_LIMITS, blockLimits, provisioning } from './sbc-common.ts';
export type { BlockLimits } from './sbc-common.ts';

const good = (): ScsiResponse => GOOD;

// ---- READ(6/10/12/16) — SBC-4 §5.14–§5.17 ----------------------------------------------------

export interface ReadCmd extends LbaRange {
  fua: boolean;
}

/**
 * One scratch decoded READ: decode → gates → execute runs without yielding, and execute copies
 * the fields before it can await, so the hot read path allocates nothing but the response.
 */
const readScratch: ReadCmd = { lba: 0n, blocks: 0, fua: false };

function decodeRead(cdb: Buffer, lu: LogicalUnit, r: LbaRange, len: number): ReadCmd {
  if (len !== 6) {
    // RDPROTECT: no protection information on this LU (SBC-4 §5.16, table 75).
    if (cdb[1] & 0xe0) throw invalidField(1, 7);
  }
  checkMaxTransfer(r.blocks, blockLimits(lu).maxTransferLength, len);
  checkRange(lu, r.lba, r.blocks);
  readScratch.lba = r.lba;
  readScratch.blocks = r.blocks;
  readScratch.fua = len !== 6 && (cdb[1] & 0x08) !== 0;
  return readScratch;
}

function executeRead(ctx: CommandContext, cmd: ReadCmd): ScsiResponse | Promise<ScsiResponse> {
  const lu = ctx.lu;
  const blocks = cmd.blocks;
  if (blocks === 0) return GOOD;
  const st = lu.stats;
  st.reads++;
  st.readBytes += blocks * lu.blockSize;
  // Shared range lock: a read never sees half of a COMPARE AND WRITE or of a write in flight
  // on an asynchronous store. `cmd` is the decode scratch: copy the LBA before anything waits.
  const lba = cmd.lba;
  // A memory store answers with a view of itself, which leaves later: when the transport asks
  // (ScsiRequest.holdData), keep the range until it has handed the data to the kernel, so no
  // write changes it in flight (or, after holdBreak.ms, until the store has copied it aside).
  // Other stores fill a buffer of their own.
  const hold = ctx.req.holdData === true && lu.store.kind === 'memory';
  let release: (() => void) | undefined;
  const d = shared(lu, lba, blocks, () => {
    const r = lu.store.read(lba, blocks);
    if (hold && !(r instanceof Promise)) {
      // A writer kept waiting behind this hold (a reader not reading its socket) breaks it after
      // holdBreak.ms: the store moves the blocks aside and this view keeps the old memory.
      const store = lu.store;
      release = rangeLockOf(lu).hold(lba, blocks, store.detach ? () => store.detach!(lba, blocks, r) : undefined);
    }
    return r;
  });
  if (d instanceof Promise) return d.then((data) => ({ status: ScsiStatus.Good, data, sense: null, release }));
  return { status: ScsiStatus.Good, data: d, sense: null, release };
}

function readDef(opcode: number, name: string, len: number, range: (cdb: Buffer) => LbaRange, usage: number[]): CommandDef<ReadCmd> {
  return {
    opcode, name, cdbLength: len, usage, dataDirection: 'in', reservation: 'read', splitter: 'none', ...MEDIA,
    decode: (cdb, lu) => {
      if (len === 6) reserved(cdb, 1, 0xe0);
      return decodeRead(cdb, lu, range(cdb), len);
    },
    execute: executeRead,
  };
}

// ---- WRITE(6/10/12/16) — SBC-4 §5.42–§5.45 ---------------------------------------------------

export interface WriteCmd extends LbaRange {
  fua: boolean;
}

function decodeWrite(cdb: Buffer, lu: LogicalUnit, r: LbaRange, len: number): WriteCmd {
  if (len !== 6 && cdb[1] & 0xe0) throw invalidField(1, 7); // WRPROTECT without protection information
  checkMaxTransfer(r.blocks, blockLimits(lu).maxTransferLength, len);
  checkRange(lu, r.lba, r.blocks);
  return { lba: r.lba, blocks: r.blocks, fua: len !== 6 && (cdb[1] & 0x08) !== 0 };
}

function writeDef(opcode: number, name: string, len: number, range: (cdb: Buffer) => LbaRange, usage: number[]): CommandDef<WriteCmd> {
  return {
    opcode, name, cdbLength: len, usage, dataDirection: 'out', reservation: 'write', splitter: 'write', ...MEDIA,
    decode: (cdb, lu) => {
      if (len === 6) reserved(cdb, 1, 0xe0);
      return decodeWrite(cdb, lu, range(cdb), len);
    },
    execute: (ctx, c) => writeBlocks(ctx, c.lba, c.blocks, c.fua),
    writes: (c) => (c.blocks ? [{ lba: c.lba, blocks: c.blocks }] : []),
  };
}

// ---- READ CAPACITY(10) §5.20 and (16) §5.21 --------------------------------------------------

interface ReadCapacity16Cmd {
  allocationLength: number;
}

const READ_CAPACITY_10: CommandDef<null> = {
  opcode: 0x25, name: 'READ CAPACITY(10)', cdbLength: 10,
  usage: [0x25, 0x00, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x01, 0x00],
  dataDirection: 'in', reservation: 'allowed', splitter: 'none', ...MEDIA,
  decode: (cdb) => {
    // LOGICAL BLOCK ADDRESS must be zero unless PMI (obsolete) is set (SBC-4 §5.20.1).
    if (!(cdb[8] & 0x01) && cdb.readUInt32BE(2) !== 0) throw invalidField(2);
    return null;
  },
  execute: (ctx) => {
    const lu = ctx.lu;
    const data = Buffer.alloc(8);
    const last = lu.blockCount - 1n;
    // A capacity beyond 32 bits reports FFFFFFFFh: use READ CAPACITY(16).
    data.writeUInt32BE(last > 0xffffffffn ? 0xffffffff : Number(last), 0);
    data.writeUInt32BE(lu.blockSize, 4);
    return { status: ScsiStatus.Good, data, sense: null };
  },
};

const READ_CAPACITY_16: CommandDef<ReadCapacity16Cmd> = {
  opcode: 0x9e, serviceAction: 0x10, name: 'READ CAPACITY(16)', cdbLength: 16,
  usage: [0x9e, 0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0x00],
  dataDirection: 'in', reservation: 'allowed', splitter: 'none', ...MEDIA,
  decode: (cdb) => {
    if (!(cdb[14] & 0x01) && cdb.readBigUInt64BE(2) !== 0n) throw invalidField(2);
    return { allocationLength: cdb.readUInt32BE(10) };
  },
  execute: (ctx, c) => {
    const lu = ctx.lu;
    const data = Buffer.alloc(32);
    data.writeBigUInt64BE(lu.blockCount - 1n, 0);
    data.writeUInt32BE(lu.blockSize, 8);
    // Byte 12: P_TYPE/PROT_EN 0 (no protection information). Byte 13: P_I_EXPONENT 0 and the
    // LOGICAL BLOCKS PER PHYSICAL BLOCK EXPONENT (SBC-4 §5.21.2). Bytes 14-15: LBPME, LBPRZ,
    // LOWEST ALIGNED LOGICAL BLOCK ADDRESS 0 (LBA 0 starts a physical block).
    data[13] = blockLimits(lu).physicalBlockExponent & 0x0f;
    const p = provisioning(lu);
    data[14] = (p.lbpme ? 0x80 : 0) | (p.lbprz ? 0x40 : 0);
    return { status: ScsiStatus.Good, data: c.allocationLength < 32 ? data.subarray(0, c.allocationLength) : data, sense: null };
  },
};

// ---- SYNCHRONIZE CACHE(10) §5.28 and (16) §5.29 ----------------------------------------------

const syncCacheDef = (opcode: number, len: 10 | 16): CommandDef<LbaRange> => ({
  opcode, name: `SYNCHRONIZE CACHE(${len})`, cdbLength: len,
  usage: len === 10
    ? [opcode, 0x02, 0xff, 0xff, 0xff, 0xff, 0x1f, 0xff, 0xff, 0x00]
    : [opcode, 0x02, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x1f, 0x00],
  dataDirection: 'none', reservation: 'write', splitter: 'none', ...MEDIA,
  decode: (cdb, lu) => {
    const r = len === 10 ? rw10(cdb) : rw16(cdb);
    // NUMBER OF LOGICAL BLOCKS 0 means "to the last LBA" (SBC-4 §5.28).
    checkRange(lu, r.lba, r.blocks);
    return r;
  },
  // The whole store is flushed whatever the range: stores offer no finer flush.
  execute: (ctx) => {
    const f = ctx.lu.store.flush?.();
    return f instanceof Promise ? f.then(good) : GOOD;
  },
});

// ---- the table ------------------------------------------------------------------------------

const RW_BYTE1 = 0xfa; // RDPROTECT/WRPROTECT, DPO, FUA, FUA_NV

export const SBC_COMMANDS: CommandDef[] = [
  readDef(0x08, 'READ(6)', 6, rw6, [0x08, 0x1f, 0xff, 0xff, 0xff, 0x00]),
  readDef(0x28, 'READ(10)', 10, rw10, [0x28, RW_BYTE1 | 0x04, 0xff, 0xff, 0xff, 0xff, 0x3f, 0xff, 0xff, 0x00]),
  readDef(0xa8, 'READ(12)', 12, rw12, [0xa8, RW_BYTE1 | 0x04, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x3f, 0x00]),
  readDef(0x88, 'READ(16)', 16, rw16,
    [0x88, RW_BYTE1 | 0x04, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x3f, 0x00]),
  writeDef(0x0a, 'WRITE(6)', 6, rw6, [0x0a, 0x1f, 0xff, 0xff, 0xff, 0x00]),
  writeDef(0x2a, 'WRITE(10)', 10, rw10, [0x2a, RW_BYTE1, 0xff, 0xff, 0xff, 0xff, 0x3f, 0xff, 0xff, 0x00]),
  writeDef(0xaa, 'WRITE(12)', 12, rw12, [0xaa, RW_BYTE1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x3f, 0x00]),
  writeDef(0x8a, 'WRITE(16)', 16, rw16,
    [0x8a, RW_BYTE1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x3f, 0x00]),
  READ_CAPACITY_10,
  READ_CAPACITY_16,
  syncCacheDef(0x35, 10),
  syncCacheDef(0x91, 16),
  ...SBC_VERIFY_COMMANDS,
  ...SBC_ATS_COMMANDS,
  ...SBC_MEDIUM_COMMANDS,
  ...SBC_PROVISIONING_COMMANDS,
];
