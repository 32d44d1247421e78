/**
 * Commands that compare or combine Data-Out with the medium (SBC-4): VERIFY (§5.37–§5.39),
 * WRITE AND VERIFY (§5.47–§5.49), ORWRITE(16) (§5.10) and WRITE ATOMIC(16) (§5.48).
 * COMPARE AND WRITE (§5.3) has its own module, sbc-ats.ts.
 *
 * Every medium access runs under the per-LU range lock (range-lock.ts): VERIFY shared, the
 * read-modify-write of ORWRITE exclusive, so neither interleaves with a COMPARE AND WRITE.
 */
import type { CommandDef } from './command.ts';
import { checkMaxTransfer, checkRange, dataOut, invalidField, lengthFieldByte, reserved, rw10, rw12, rw16 } from './cdb.ts';
import type { LbaRange } from './cdb.ts';
import type { LogicalUnit } from './lu.ts';
import { afterStore, blockLimits, checkWritable, MEDIA, mustBeDurable, respondAfter, writeBlocks } from './sbc-common.ts';
import { exclusive, shared } from './range-lock.ts';
import { GOOD, ScsiStatus, SenseError } from './types.ts';
import type { ScsiResponse } from './types.ts';

/** Offset of the first differing byte, or -1. */
export function firstDifference(a: Buffer, b: Buffer): number {
  if (a.equals(b)) return -1;
  const n = Math.min(a.length, b.length);
  // Narrow down by 4 KiB slices with memcmp before the byte loop.
  let o = 0;
  while (o < n) {
    const e = Math.min(o + 4096, n);
    if (!a.subarray(o, e).equals(b.subarray(o, e))) break;
    o = e;
  }
  for (; o < n; o++) if (a[o] !== b[o]) return o;
  return n;
}

/** MISCOMPARE DURING VERIFY OPERATION with INFORMATION = byte offset (SBC-4 §5.3.1, §5.37). */
export const miscompare = (offset: number) => new SenseError('MiscompareDuringVerify', { information: offset });

/** Run `body` with the store data of [lba, lba+blocks) — synchronously when the store is. */
function withData<T>(lu: LogicalUnit, lba: bigint, blocks: number, body: (d: Buffer) => T): T | Promise<T> {
  const d = lu.store.read(lba, blocks);
  return d instanceof Promise ? d.then(body) : body(d);
}

// ---- VERIFY(10/12/16) ------------------------------------------------------------------------

interface VerifyCmd extends LbaRange {
  /** 0: medium only; 1: compare Data-Out block for block; 3: compare one block against each. */
  bytchk: number;
}

function decodeBytchk(cdb: Buffer, allowSingle: boolean): number {
  const bytchk = (cdb[1] >> 1) & 0x03;
  if (bytchk === 2 || (bytchk === 3 && !allowSingle)) throw invalidField(1, 2);
  return bytchk;
}

const verifyDef = (opcode: number, len: 10 | 12 | 16, range: (c: Buffer) => LbaRange): CommandDef<VerifyCmd> => ({
  opcode, name: `VERIFY(${len})`, cdbLength: len,
  usage: usageRw(opcode, len, 0xf6),
  dataDirection: 'out', reservation: 'read', splitter: 'none', ...MEDIA,
  decode: (cdb, lu) => {
    if (cdb[1] & 0xe0) throw invalidField(1, 7); // VRPROTECT: no protection information
    const bytchk = decodeBytchk(cdb, true);
    const r = range(cdb); // VERIFICATION LENGTH sits where TRANSFER LENGTH does
    if (bytchk !== 0) checkMaxTransfer(r.blocks, blockLimits(lu).maxTransferLength, len);
    checkRange(lu, r.lba, r.blocks);
    return { lba: r.lba, blocks: r.blocks, bytchk };
  },
  execute: (ctx, c) => {
    const lu = ctx.lu;
    const bs = lu.blockSize;
    if (c.bytchk === 0 || c.blocks === 0) {
      return c.bytchk === 0 ? GOOD : { ...GOOD, dataOutLength: 0 };
    }
    const want = c.bytchk === 1 ? c.blocks * bs : bs;
    const d = dataOut(ctx.req, want);
    if (d.length < want) throw invalidField(lengthFieldByte(len));
    return shared(lu, c.lba, c.blocks, () => withData(lu, c.lba, c.blocks, (medium) => {
      if (c.bytchk === 1) {
        const off = firstDifference(medium, d);
        if (off >= 0) throw miscompare(off);
      } else {
        for (let i = 0; i < c.blocks; i++) {
          const off = firstDifference(medium.subarray(i * bs, (i + 1) * bs), d);
          if (off >= 0) throw miscompare(i * bs + off);
        }
      }
      return { status: ScsiStatus.Good, data: null, sense: null, dataOutLength: want };
    }));
  },
});

// ---- WRITE AND VERIFY(10/12/16) --------------------------------------------------------------

interface WriteVerifyCmd extends LbaRange {
  bytchk: number;
}

const writeVerifyDef = (opcode: number, len: 10 | 12 | 16, range: (c: Buffer) => LbaRange): CommandDef<WriteVerifyCmd> => ({
  opcode, name: `WRITE AND VERIFY(${len})`, cdbLength: len,
  usage: usageRw(opcode, len, 0xf2),
  dataDirection: 'out', reservation: 'write', splitter: 'write', ...MEDIA,
  decode: (cdb, lu) => {
    if (cdb[1] & 0xe0) throw invalidField(1, 7); // WRPROTECT
    const bytchk = decodeBytchk(cdb, false);
    const r = range(cdb);
    checkMaxTransfer(r.blocks, blockLimits(lu).maxTransferLength, len);
    checkRange(lu, r.lba, r.blocks);
    return { ...r, bytchk };
  },
  // The data is written to the medium before completion (the verify implies it); what was
  // written reads back identically, so the BYTCHK=01b comparison cannot fail here.
  execute: (ctx, c) => writeBlocks(ctx, c.lba, c.blocks, true),
  writes: (c) => (c.blocks ? [{ lba: c.lba, blocks: c.blocks }] : []),
});

// ---- ORWRITE(16) -----------------------------------------------------------------------------

interface OrWriteCmd extends LbaRange {
  fua: boolean;
}

const ORWRITE_16: CommandDef<OrWriteCmd> = {
  opcode: 0x8b, name: 'ORWRITE(16)', cdbLength: 16,
  usage: usageRw(0x8b, 16, 0xfa),
  dataDirection: 'out', reservation: 'write', splitter: 'write', ...MEDIA,
  decode: (cdb, lu) => {
    if (cdb[1] & 0xe0) throw invalidField(1, 7); // ORPROTECT
    const r = rw16(cdb);
    checkMaxTransfer(r.blocks, blockLimits(lu).maxTransferLength, 16);
    checkRange(lu, r.lba, r.blocks);
    return { ...r, fua: (cdb[1] & 0x08) !== 0 };
  },
  execute: (ctx, c) => {
    const lu = ctx.lu;
    checkWritable(lu);
    const want = c.blocks * lu.blockSize;
    const resp: ScsiResponse = { status: ScsiStatus.Good, data: null, sense: null, dataOutLength: want };
    const d = dataOut(ctx.req, want);
    const n = Math.floor(d.length / lu.blockSize);
    if (n === 0) return resp;
    const src = d.subarray(0, n * lu.blockSize);
    const durable = mustBeDurable(lu, c.fua);
    const rmw = () => withData(lu, c.lba, n, (old) => {
      const out = Buffer.allocUnsafe(src.length);
      for (let i = 0; i < src.length; i++) out[i] = old[i] | src[i];
      return afterStore(lu.store.write(c.lba, out, durable), () => ctx.split?.data(lu, c.lba, out, true));
    });
    return respondAfter(exclusive(lu, c.lba, n, rmw), resp);
  },
  writes: (c) => (c.blocks ? [{ lba: c.lba, blocks: c.blocks }] : []),
};

// ---- WRITE ATOMIC(16) — SBC-4 §5.48 ----------------------------------------------------------

interface WriteAtomicCmd extends LbaRange {
  fua: boolean;
}

const WRITE_ATOMIC_16: CommandDef<WriteAtomicCmd> = {
  opcode: 0x9c, name: 'WRITE ATOMIC(16)', cdbLength: 16,
  usage: [0x9c, 0xf8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x3f, 0x00],
  dataDirection: 'out', reservation: 'write', splitter: 'write', ...MEDIA,
  decode: (cdb, lu) => {
    if (cdb[1] & 0xe0) throw invalidField(1, 7); // WRPROTECT
    reserved(cdb, 1, 0x07);
    const lim = blockLimits(lu);
    const lba = cdb.readBigUInt64BE(2);
    const boundary = cdb.readUInt16BE(10);
    const blocks = cdb.readUInt16BE(12);
    // ATOMIC BOUNDARY beyond MAXIMUM ATOMIC BOUNDARY SIZE (0: boundaries unsupported).
    if (boundary > lim.maxAtomicBoundarySize) throw invalidField(10);
    if (blocks > lim.maxAtomicTransferLength) throw invalidField(12);
    // SBC-4 §4.29.2: the LBA must sit on ATOMIC ALIGNMENT and the length be a multiple of the granularity.
    if (lim.atomicAlignment > 1 && lba % BigInt(lim.atomicAlignment) !== 0n) throw invalidField(2);
    if (lim.atomicTransferLengthGranularity > 1 && blocks % lim.atomicTransferLengthGranularity !== 0) throw invalidField(12);
    checkRange(lu, lba, blocks);
    return { lba, blocks, fua: (cdb[1] & 0x08) !== 0 };
  },
  // One store write: atomic with respect to every other command (single event-loop turn for
  // the memory store; the range lock for the file store).
  execute: (ctx, c) => writeBlocks(ctx, c.lba, c.blocks, c.fua),
  writes: (c) => (c.blocks ? [{ lba: c.lba, blocks: c.blocks }] : []),
};

// ---- usage bitmaps ---------------------------------------------------------------------------

/** CDB USAGE DATA for the LBA + length layouts of the 10/12/16-byte CDBs. */
function usageRw(opcode: number, len: 10 | 12 | 16, byte1: number): number[] {
  if (len === 10) return [opcode, byte1, 0xff, 0xff, 0xff, 0xff, 0x3f, 0xff, 0xff, 0x00];
  if (len === 12) return [opcode, byte1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x3f, 0x00];
  return [opcode, byte1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x3f, 0x00];
}

export const SBC_VERIFY_COMMANDS: CommandDef[] = [
  verifyDef(0x2f, 10, rw10),
  verifyDef(0xaf, 12, rw12),
  verifyDef(0x8f, 16, rw16),
  writeVerifyDef(0x2e, 10, rw10),
  writeVerifyDef(0xae, 12, rw12),
  writeVerifyDef(0x8e, 16, rw16),
  ORWRITE_16,
  WRITE_ATOMIC_16,
];
