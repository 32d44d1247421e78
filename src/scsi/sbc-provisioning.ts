/**
 * Logical block provisioning (SBC-4 §4.7): WRITE SAME(10/16) (§5.50, §5.51), UNMAP (§5.32)
 * and GET LBA STATUS (§5.8). A store without unmap() (thick) makes UNMAP and GET LBA STATUS
 * unsupported opcodes for that LU (STYLE.md habit 4), while WRITE SAME still writes.
 */
import type { CommandContext, CommandDef } from './command.ts';
import { checkRange, invalidField, invalidParam, reserved } from './cdb.ts';
import type { LogicalUnit } from './lu.ts';
import { afterStore, blockLimits, checkWritable, MEDIA, provisioning, respondAfter } from './sbc-common.ts';
import type { SplitRecorder } from './split.ts';
import { exclusive } from './range-lock.ts';
import { ScsiStatus, SenseError } from './types.ts';
import type { ScsiResponse } from './types.ts';

// ---- WRITE SAME(10/16) -----------------------------------------------------------------------

interface WriteSameCmd {
  lba: bigint;
  blocks: number;
  unmap: boolean;
  /** NDOB (WRITE SAME(16)): no Data-Out; the block is all zeros. */
  ndob: boolean;
}

const writeSameDef = (opcode: number, len: 10 | 16): CommandDef<WriteSameCmd> => ({
  opcode, name: `WRITE SAME(${len})`, cdbLength: len,
  usage: len === 10
    ? [opcode, 0xf8, 0xff, 0xff, 0xff, 0xff, 0x3f, 0xff, 0xff, 0x00]
    : [opcode, 0xf9, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x3f, 0x00],
  dataDirection: 'out', reservation: 'write', splitter: 'writesame', ...MEDIA,
  decode: (cdb, lu, req) => {
    if (cdb[1] & 0xe0) throw invalidField(1, 7); // WRPROTECT
    // ANCHOR: ANCHOR=1 with UNMAP=0 is always invalid, and anchoring at all needs ANC_SUP=1 in
    // the LBP VPD page, which this device server reports as 0 (SBC-4 §5.50, §4.7.3.4.3).
    if (cdb[1] & 0x10) throw invalidField(1, 4);
    // Bits 2-1 are the obsolete PBDATA/LBDATA: set, they ask for protection/LBA data we lack.
    if (cdb[1] & 0x06) throw invalidField(1, cdb[1] & 0x04 ? 2 : 1);
    const ndob = len === 16 && (cdb[1] & 0x01) !== 0;
    if (len === 10) reserved(cdb, 1, 0x01);
    const lba = len === 10 ? BigInt(cdb.readUInt32BE(2)) : cdb.readBigUInt64BE(2);
    const count = len === 10 ? cdb.readUInt16BE(7) : cdb.readUInt32BE(10);
    const lim = blockLimits(lu);
    const lenByte = len === 10 ? 7 : 10;
    if (count === 0 && lim.writeSameNonZero) throw invalidField(lenByte);
    checkRange(lu, lba, count);
    // NUMBER OF LOGICAL BLOCKS 0 with WSNZ=0: from LBA through the last LBA (SBC-4 §5.50.1).
    const blocks = count === 0 ? Number(lu.blockCount - lba) : count;
    if (lim.maxWriteSameLength > 0 && blocks > lim.maxWriteSameLength) throw invalidField(lenByte);
    // Write protection before the Data-Out size (libiscsi ReadOnly.ReadOnlySBC sends WRITE
    // SAME(10) UNMAP with no Data-Out to a protected LU and wants DATA PROTECT).
    checkWritable(lu);
    // Exactly one logical block of Data-Out, none with NDOB (libiscsi *.InvalidDataOutSize).
    const got = req.dataOut?.length ?? 0;
    if (got !== (ndob ? 0 : lu.blockSize)) throw invalidField(lenByte);
    return { lba, blocks, unmap: (cdb[1] & 0x08) !== 0, ndob };
  },
  execute: (ctx, c) => {
    const lu = ctx.lu;
    checkWritable(lu);
    const s = lu.store;
    const resp: ScsiResponse = { status: ScsiStatus.Good, data: null, sense: null, dataOutLength: c.ndob ? 0 : lu.blockSize };
    if (c.blocks === 0) return resp;
    const block = c.ndob ? zeroBlock(lu.blockSize) : ctx.req.dataOut!.subarray(0, lu.blockSize);
    // UNMAP=1 on a thin LU (LBPWS/LBPWS10=1) is an unmap request (SBC-4 §5.50, §4.7.3.4): the
    // range is deallocated and reads back as zeros (LBPRZ=1) whatever the Data-Out block holds,
    // as Linux LIO does and libiscsi WriteSame10.UnmapUntilEnd (0xFF block, UNMAP=1) checks.
    // UNMAP=0 writes the block; thin stores keep zeros deallocated anyway, so zeroing is
    // metadata work either way.
    // The splitter gets one record (block, range, whether it was an unmap), never the expanded blocks.
    const { lba, blocks } = c;
    const split = ctx.split;
    if (c.unmap && provisioning(lu).writeSameUnmap) {
      return respondAfter(exclusive(lu, lba, blocks, () => afterStore(s.unmap!(lba, blocks), () => split?.same(lu, lba, blocks, block, true))), resp);
    }
    return respondAfter(exclusive(lu, lba, blocks, () => afterStore(
      s.writeSame ? s.writeSame(lba, blocks, block, false) : fallbackWriteSame(lu, lba, blocks, block),
      () => split?.same(lu, lba, blocks, block, false))), resp);
  },
  writes: (c) => (c.blocks ? [{ lba: c.lba, blocks: c.blocks }] : []),
});

const zeroBlocks = new Map<number, Buffer>();
function zeroBlock(bs: number): Buffer {
  let z = zeroBlocks.get(bs);
  if (!z) zeroBlocks.set(bs, (z = Buffer.alloc(bs)));
  return z;
}

/** For stores without writeSame(): write the repeated block in ≤ 1 MiB pieces. */
async function fallbackWriteSame(lu: LogicalUnit, lba: bigint, blocks: number, block: Buffer): Promise<void> {
  const per = Math.max(1, Math.floor((1 << 20) / lu.blockSize));
  const buf = Buffer.alloc(Math.min(per, blocks) * lu.blockSize);
  buf.fill(block);
  for (let done = 0; done < blocks;) {
    const n = Math.min(per, blocks - done);
    await lu.store.write(lba + BigInt(done), buf.subarray(0, n * lu.blockSize));
    done += n;
  }
}

// ---- UNMAP — SBC-4 §5.32 ---------------------------------------------------------------------

interface UnmapCmd {
  paramLength: number;
  descriptors: Array<{ lba: bigint; blocks: number }>;
}

const UNMAP: CommandDef<UnmapCmd> = {
  opcode: 0x42, name: 'UNMAP', cdbLength: 10,
  usage: [0x42, 0x00, 0x00, 0x00, 0x00, 0x00, 0x3f, 0xff, 0xff, 0x00],
  dataDirection: 'out', reservation: 'write', splitter: 'unmap', ...MEDIA,
  supported: (lu) => provisioning(lu).unmap,
  decode: (cdb, lu, req) => {
    if (!provisioning(lu).unmap) throw new SenseError('InvalidOpcode');
    // ANCHOR: not supported (ANC_SUP=0).
    if (cdb[1] & 0x01) throw invalidField(1, 0);
    reserved(cdb, 1, 0xfe);
    checkWritable(lu);
    const paramLength = cdb.readUInt16BE(7);
    const descriptors: UnmapCmd['descriptors'] = [];
    if (paramLength === 0) return { paramLength, descriptors };
    // SBC-4 §5.32.1: 1..7 bytes cannot hold the header.
    if (paramLength < 8) throw new SenseError('ParameterListLengthError');
    const p = req.dataOut;
    if (!p || p.length < paramLength) throw new SenseError('ParameterListLengthError');
    const dataLength = p.readUInt16BE(0);
    const bdLength = p.readUInt16BE(2);
    if (dataLength !== 0 && dataLength + 2 > paramLength) throw invalidParam(0);
    if (bdLength + 8 > paramLength) throw invalidParam(2);
    // A BLOCK DESCRIPTOR DATA LENGTH that is not a multiple of 16 is truncated (SBC-4 §5.32.2).
    const count = Math.floor(bdLength / 16);
    const lim = blockLimits(lu);
    if (count > lim.maxUnmapBlockDescriptorCount) throw invalidParam(2);
    for (let i = 0; i < count; i++) {
      const o = 8 + 16 * i;
      const lba = p.readBigUInt64BE(o);
      const blocks = p.readUInt32BE(o + 8);
      if (blocks > lim.maxUnmapLbaCount) throw invalidParam(o + 8);
      // Every descriptor is checked before any is applied: a bad list changes nothing.
      checkRange(lu, lba, blocks);
      if (blocks > 0) descriptors.push({ lba, blocks });
    }
    return { paramLength, descriptors };
  },
  execute: (ctx, c) => {
    const lu = ctx.lu;
    checkWritable(lu);
    const resp: ScsiResponse = { status: ScsiStatus.Good, data: null, sense: null, dataOutLength: c.paramLength };
    return respondAfter(unmapEach(lu, c.descriptors, 0, ctx.split), resp);
  },
  writes: (c) => c.descriptors.map((d) => ({ lba: d.lba, blocks: d.blocks })),
};

/**
 * Deallocate descriptors[from..] in order, each under its own exclusive range (UNMAP is not
 * atomic across descriptors, SBC-4 §5.32): synchronous as long as the store and the lock are.
 */
function unmapEach(lu: LogicalUnit, descriptors: UnmapCmd['descriptors'], from: number, split: SplitRecorder | null): void | Promise<void> {
  for (let i = from; i < descriptors.length; i++) {
    const { lba, blocks } = descriptors[i];
    const r = exclusive(lu, lba, blocks, () => afterStore(lu.store.unmap!(lba, blocks), () => split?.unmap(lu, lba, blocks)));
    if (r instanceof Promise) return r.then(() => unmapEach(lu, descriptors, i + 1, split));
  }
}

// ---- GET LBA STATUS — SBC-4 §5.8 -------------------------------------------------------------

interface GetLbaStatusCmd {
  lba: bigint;
  allocationLength: number;
}

/** Descriptors returned at most per command: enough for a useful map, bounded work. */
const MAX_LBA_STATUS_DESCRIPTORS = 64;

const GET_LBA_STATUS: CommandDef<GetLbaStatusCmd> = {
  opcode: 0x9e, serviceAction: 0x12, name: 'GET LBA STATUS', cdbLength: 16,
  usage: [0x9e, 0x12, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00],
  dataDirection: 'in', reservation: 'read', splitter: 'none', ...MEDIA,
  supported: (lu) => provisioning(lu).lbpme,
  decode: (cdb, lu) => {
    if (!provisioning(lu).lbpme) throw new SenseError('InvalidOpcode');
    const lba = cdb.readBigUInt64BE(2);
    if (lba >= lu.blockCount) throw new SenseError('LbaOutOfRange', { information: lba });
    return { lba, allocationLength: cdb.readUInt32BE(10) };
  },
  execute: (ctx, c) => lbaStatus(ctx, c),
};

function lbaStatus(ctx: CommandContext, c: GetLbaStatusCmd): ScsiResponse {
  const lu = ctx.lu;
  const s = lu.store;
  const room = Math.max(1, Math.min(MAX_LBA_STATUS_DESCRIPTORS, Math.floor((c.allocationLength - 8) / 16)));
  const descs: Array<{ lba: bigint; blocks: bigint; status: number }> = [];
  let lba = c.lba;
  while (lba < lu.blockCount && descs.length < room) {
    // Without mapping(): "mapped or unknown" for the rest of the LU (provisioning status 0h).
    const m = s.mapping ? s.mapping(lba) : { mapped: true, blocks: lu.blockCount - lba };
    let blocks = m.blocks;
    // NUMBER OF LOGICAL BLOCKS is 32 bits; a longer run continues in the next descriptor.
    if (blocks > 0xffffffffn) blocks = 0xffffffffn;
    descs.push({ lba, blocks, status: m.mapped ? 0 : 1 });
    lba += blocks;
  }
  const data = Buffer.alloc(8 + 16 * descs.length);
  data.writeUInt32BE(4 + 16 * descs.length, 0); // PARAMETER DATA LENGTH: bytes after this field
  descs.forEach((d, i) => {
    const o = 8 + 16 * i;
    data.writeBigUInt64BE(d.lba, o);
    data.writeUInt32BE(Number(d.blocks), o + 8);
    data[o + 12] = d.status;
  });
  return { status: ScsiStatus.Good, data: c.allocationLength < data.length ? data.subarray(0, c.allocationLength) : data, sense: null };
}

export const SBC_PROVISIONING_COMMANDS: CommandDef[] = [
  writeSameDef(0x41, 10),
  writeSameDef(0x93, 16),
  UNMAP,
  GET_LBA_STATUS,
];
