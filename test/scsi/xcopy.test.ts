/**
 * EXTENDED COPY(LID1) and RECEIVE COPY RESULTS through LogicalUnit.submit(): parameter list
 * decoding and its errors (SPC-4 §6.4.3), copies between LUs of one target and across targets,
 * COPY ABORTED with the failed segment, reservations on the destination, RECEIVE COPY RESULTS,
 * the Third-party Copy VPD page and the 3PC bit.
 */
import { describe, expect, it } from 'vitest';
import { decodeOperatingParameters, decodeTpcDescriptors, decodeXcopyParameterList } from '../../protocol/scsi/xcopy.ts';
import type { LogicalUnit } from '../../src/scsi/lu.ts';
import { ScsiTarget } from '../../src/scsi/target.ts';
import { ScsiStatus, TaskAttribute } from '../../src/scsi/types.ts';
import type { Nexus, ScsiRequest, ScsiResponse } from '../../src/scsi/types.ts';
import { EXTENDED_COPY, XCOPY_LIMITS, joinCopyDomain } from '../../src/scsi/xcopy.ts';
import { MemoryStore } from '../../src/store/memory.ts';
import { makeNexus, pattern, senseOf } from './sbc-fixture.ts';
import { cscd, rcrCdb, segment, xcopyCdb, xcopyList } from './xcopy-params.ts';

const NAA0 = '6001405000000a00';
const NAA1 = '6001405000000a01';

interface Rig { target: ScsiTarget; lu0: LogicalUnit; lu1: LogicalUnit; nexus: Nexus }

function rig(blocks = 4096, name = 'iqn.2026-01.test:xcopy'): Rig {
  const target = new ScsiTarget(name);
  const lu0 = target.addLun({ lun: 0, store: new MemoryStore(BigInt(blocks)), naa: NAA0, serial: 'X0' });
  const lu1 = target.addLun({ lun: 1, store: new MemoryStore(BigInt(blocks)), naa: NAA1, serial: 'X1' });
  const nexus = makeNexus();
  target.nexusUp(nexus);
  lu0.ua.forget(nexus.key);
  lu1.ua.forget(nexus.key);
  return { target, lu0, lu1, nexus };
}

async function send(lu: LogicalUnit, nexus: Nexus, cdb: Buffer, dataOut: Buffer | null = null): Promise<ScsiResponse> {
  const req: ScsiRequest = {
    lun: lu.lun, cdb, nexus, taskTag: 1, attr: TaskAttribute.Simple,
    expectedLength: dataOut ? dataOut.length : 1 << 20, isRead: !dataOut, isWrite: !!dataOut, dataOut,
  };
  return await lu.submit(req);
}

const xcopy = (r: Rig, list: Buffer, lu = r.lu0, nexus = r.nexus) => send(lu, nexus, xcopyCdb(list.length), list);

function fill(lu: LogicalUnit, lba: number, data: Buffer): void {
  void lu.store.write(BigInt(lba), data);
}
function read(lu: LogicalUnit, lba: number, blocks: number): Buffer {
  return Buffer.from(lu.store.read(BigInt(lba), blocks) as Buffer);
}

/** Fixed sense: COMMAND-SPECIFIC INFORMATION, INFORMATION (if VALID), sense-key specific pointer. */
function copySense(r: ScsiResponse): { csi: number; info?: number; pointer?: number } {
  const s = r.sense!;
  return { csi: s.readUInt32BE(8), info: s[0] & 0x80 ? s.readUInt32BE(3) : undefined, pointer: s[15] & 0x80 ? s.readUInt16BE(16) : undefined };
}

describe('EXTENDED COPY parameter list decoding', () => {
  it('parses the header, an identification CSCD and both segment types', () => {
    const list = xcopyList({
      listId: 7, usage: 0,
      cscds: [{ naa: NAA0 }, { naa: NAA1, blockSize: 4096 }],
      segments: [
        { src: 0, dst: 1, blocks: 16, srcLba: 5, dstLba: 9, dc: true },
        { type: 0x0a, src: 1, dst: 0, bytes: 1000, srcLba: 2, dstLba: 3, srcOffset: 7, dstOffset: 11 },
      ],
    });
    const p = decodeXcopyParameterList(list, XCOPY_LIMITS);
    expect(p.header).toMatchObject({ listId: 7, listIdUsage: 0, cscdListLength: 64, segmentListLength: 60, inlineDataLength: 0 });
    expect(p.cscds[1]).toMatchObject({ type: 0xe4, offset: 48, designatorType: 3, association: 0, codeSet: 1, diskBlockLength: 4096, nul: false });
    expect(p.cscds[1].designator.toString('hex')).toBe('5001405000000a01');
    expect(p.segments[0]).toMatchObject({ type: 0x02, offset: 80, dc: true, source: 0, destination: 1, blocks: 16, sourceLba: 5n, destinationLba: 9n });
    expect(p.segments[1]).toMatchObject({ type: 0x0a, offset: 108, bytes: 1000, sourceLba: 2n, destinationLba: 3n, sourceByteOffset: 7, destinationByteOffset: 11 });
  });

  it('PARAMETER LIST LENGTH 0 is GOOD and copies nothing', async () => {
    const r = rig();
    const res = await send(r.lu0, r.nexus, xcopyCdb(0));
    expect(res.status).toBe(ScsiStatus.Good);
  });

  it('a list shorter than its header or its descriptor lengths is PARAMETER LIST LENGTH ERROR', async () => {
    const r = rig();
    const full = xcopyList({ cscds: [{ naa: NAA0 }], segments: [{ src: 0, dst: 0, blocks: 1, srcLba: 0, dstLba: 1 }] });
    for (const len of [8, 16 + 31, full.length - 1]) {
      const res = await send(r.lu0, r.nexus, xcopyCdb(len), full.subarray(0, len));
      expect(senseOf(res)).toEqual([0x5, 0x1a, 0x00]);
    }
  });

  it('too many CSCD or segment descriptors, and a too long descriptor list', async () => {
    const r = rig();
    const many = Array.from({ length: XCOPY_LIMITS.maxCscdDescriptors + 1 }, () => ({ naa: NAA0 }));
    const seg = { src: 0, dst: 0, blocks: 1, srcLba: 0, dstLba: 1 };
    expect(senseOf(await xcopy(r, xcopyList({ cscds: many, segments: [seg] })))).toEqual([0x5, 0x26, 0x06]);
    const segs = Array.from({ length: XCOPY_LIMITS.maxSegmentDescriptors + 1 }, () => seg);
    expect(senseOf(await xcopy(r, xcopyList({ cscds: [{ naa: NAA0 }], segments: segs })))).toEqual([0x5, 0x26, 0x08]);
    const tooLong = Array.from({ length: XCOPY_LIMITS.maxDescriptorListLength / 28 + 1 }, () => seg);
    expect(senseOf(await xcopy(r, xcopyList({ cscds: many, segments: tooLong })))).toEqual([0x5, 0x1a, 0x00]);
  });

  it('unsupported CSCD and segment descriptor type codes, with a pointer to the descriptor', async () => {
    const r = rig();
    const seg = { src: 0, dst: 0, blocks: 1, srcLba: 0, dstLba: 1 };
    const a = await xcopy(r, xcopyList({ cscds: [{ naa: NAA0, type: 0xe0 }], segments: [seg] }));
    expect(senseOf(a)).toEqual([0x5, 0x26, 0x07]);
    expect(a.sense!.readUInt16BE(16)).toBe(16);
    const stream = Buffer.alloc(28); stream[0] = 0x03; stream.writeUInt16BE(24, 2);
    const b = await xcopy(r, xcopyList({ cscds: [{ naa: NAA0 }], segments: [{ type: 0x03, raw: stream }] }));
    expect(senseOf(b)).toEqual([0x5, 0x26, 0x09]);
    expect(b.sense!.readUInt16BE(16)).toBe(48);
  });

  it('LIST ID USAGE 11b needs LIST IDENTIFIER 0; 01b is reserved', async () => {
    const r = rig();
    const seg = { src: 0, dst: 0, blocks: 1, srcLba: 0, dstLba: 1 };
    expect(senseOf(await xcopy(r, xcopyList({ listId: 3, usage: 3, cscds: [{ naa: NAA0 }], segments: [seg] })))).toEqual([0x5, 0x26, 0x00]);
    expect(senseOf(await xcopy(r, xcopyList({ usage: 1, cscds: [{ naa: NAA0 }], segments: [seg] })))).toEqual([0x5, 0x26, 0x00]);
  });

  it('writes() names the destination extents and their LU', () => {
    const r = rig();
    const list = xcopyList({
      cscds: [{ naa: NAA0 }, { naa: NAA1 }],
      segments: [{ src: 0, dst: 1, blocks: 8, srcLba: 0, dstLba: 100 }, { type: 0x0a, src: 0, dst: 1, bytes: 600, srcLba: 0, dstLba: 200, srcOffset: 0, dstOffset: 100 }],
    });
    const req = { lun: 0, cdb: xcopyCdb(list.length), nexus: r.nexus, taskTag: 1, attr: TaskAttribute.Simple, expectedLength: list.length, isRead: false, isWrite: true, dataOut: list };
    const cmd = EXTENDED_COPY.decode(req.cdb, r.lu0, req);
    expect(EXTENDED_COPY.writes!(cmd)).toEqual([{ lu: r.lu1, lba: 100n, blocks: 8 }, { lu: r.lu1, lba: 200n, blocks: 2 }]);
  });
});

describe('EXTENDED COPY execution', () => {
  it('copies block to block between two LUs of one target', async () => {
    const r = rig();
    const data = pattern(64 * 512, 3);
    fill(r.lu0, 10, data);
    const res = await xcopy(r, xcopyList({ cscds: [{ naa: NAA0 }, { naa: NAA1 }], segments: [{ src: 0, dst: 1, blocks: 64, srcLba: 10, dstLba: 1000 }] }));
    expect(res.status).toBe(ScsiStatus.Good);
    expect(read(r.lu1, 1000, 64).equals(data)).toBe(true);
    expect(r.lu1.stats.writeBytes).toBe(64 * 512);
  });

  it('copies a multi-MiB segment in pieces, and an overlapping copy inside one LU', async () => {
    const r = rig(16384);
    const data = pattern(8000 * 512, 5);
    fill(r.lu0, 0, data);
    // Destination overlaps the source from above: must be copied from the end.
    const res = await xcopy(r, xcopyList({ cscds: [{ naa: NAA0 }], segments: [{ src: 0, dst: 0, blocks: 8000, srcLba: 0, dstLba: 3000 }] }));
    expect(res.status).toBe(ScsiStatus.Good);
    expect(read(r.lu0, 3000, 8000).equals(data)).toBe(true);
  });

  it('a whole chunk between thin memory LUs is cloned copy-on-write: later writes to either side stay on that side', async () => {
    const r = rig(8192);
    const C = 2048; // blocks per 1 MiB chunk
    const data = pattern(2 * C * 512, 9);
    fill(r.lu0, 0, data);
    const res = await xcopy(r, xcopyList({ cscds: [{ naa: NAA0 }, { naa: NAA1 }], segments: [{ src: 0, dst: 1, blocks: 2 * C, srcLba: 0, dstLba: C }] }));
    expect(res.status).toBe(ScsiStatus.Good);
    expect(read(r.lu1, C, 2 * C).equals(data)).toBe(true);
    // One memory, not two: the destination's chunk is the source's (a copy would be other memory).
    const view = (lu: LogicalUnit, lba: number) => lu.store.read(BigInt(lba), C) as Buffer;
    const same = (a: Buffer, b: Buffer) => a.buffer === b.buffer && a.byteOffset === b.byteOffset;
    expect([0, 1].map((k) => same(view(r.lu1, (k + 1) * C), view(r.lu0, k * C)))).toEqual([true, true]);
    fill(r.lu0, 5, Buffer.alloc(512, 0xee));
    fill(r.lu1, 2 * C + 7, Buffer.alloc(512, 0xdd));
    expect(read(r.lu1, C, C).equals(data.subarray(0, C * 512))).toBe(true);
    expect(read(r.lu0, C + 7, 1).equals(data.subarray((C + 7) * 512, (C + 8) * 512))).toBe(true);
    expect(read(r.lu0, 5, 1).equals(Buffer.alloc(512, 0xee))).toBe(true);
    expect(read(r.lu1, 2 * C + 7, 1).equals(Buffer.alloc(512, 0xdd))).toBe(true);
  });

  it('copies byte ranges with block offsets (segment 0Ah), keeping the bytes around them', async () => {
    const r = rig();
    const src = pattern(4 * 512, 9);
    fill(r.lu0, 0, src);
    const before = pattern(4 * 512, 11);
    fill(r.lu1, 50, before);
    const res = await xcopy(r, xcopyList({
      cscds: [{ naa: NAA0 }, { naa: NAA1 }],
      segments: [{ type: 0x0a, src: 0, dst: 1, bytes: 700, srcLba: 1, dstLba: 50, srcOffset: 13, dstOffset: 300 }],
    }));
    expect(res.status).toBe(ScsiStatus.Good);
    const want = Buffer.from(before);
    src.copy(want, 300, 512 + 13, 512 + 13 + 700);
    expect(read(r.lu1, 50, 4).equals(want)).toBe(true);
  });

  it('copies between LUs of two targets of one copy domain', async () => {
    const a = rig(2048, 'iqn.2026-01.test:a');
    const b = new ScsiTarget('iqn.2026-01.test:b');
    const far = b.addLun({ lun: 0, store: new MemoryStore(2048n), naa: '6001405000000b00', serial: 'B0' });
    const list = xcopyList({ cscds: [{ naa: NAA0 }, { naa: '6001405000000b00' }], segments: [{ src: 0, dst: 1, blocks: 4, srcLba: 0, dstLba: 0 }] });
    fill(a.lu0, 0, pattern(2048, 1));
    // Not in the domain yet: the CSCD names no reachable LU.
    expect(senseOf(await xcopy(a, list))).toEqual([0xa, 0x0d, 0x02]);
    joinCopyDomain([a.target, b]);
    expect((await xcopy(a, list)).status).toBe(ScsiStatus.Good);
    expect(read(far, 0, 4).equals(pattern(2048, 1))).toBe(true);
  });

  it('an unknown LU aborts the copy at its segment, after the earlier segments were done', async () => {
    const r = rig();
    fill(r.lu0, 0, pattern(512 * 8, 2));
    const list = xcopyList({
      listId: 5,
      cscds: [{ naa: NAA0 }, { naa: NAA1 }, { naa: '600140500000dead' }],
      segments: [{ src: 0, dst: 1, blocks: 8, srcLba: 0, dstLba: 0 }, { src: 0, dst: 2, blocks: 8, srcLba: 0, dstLba: 0 }],
    });
    const res = await xcopy(r, list);
    expect(senseOf(res)).toEqual([0xa, 0x0d, 0x02]);
    // Segment 1, whose descriptor starts at 16 + 3*32 + 28.
    expect(copySense(res)).toMatchObject({ csi: 1, pointer: 16 + 96 + 28 });
    expect(read(r.lu1, 0, 8).equals(pattern(512 * 8, 2))).toBe(true);

    const st = await send(r.lu0, r.nexus, rcrCdb(0x00, 5));
    expect(st.status).toBe(ScsiStatus.Good);
    expect(st.data![4]).toBe(0x02); // completed with errors
    expect(st.data!.readUInt16BE(5)).toBe(1); // segments processed
    expect(st.data!.readUInt32BE(8)).toBe(8 * 512); // bytes
    const fsd = await send(r.lu0, r.nexus, rcrCdb(0x04, 5));
    expect(fsd.data![56]).toBe(ScsiStatus.CheckCondition);
    const senseLen = fsd.data!.readUInt16BE(58);
    expect(fsd.data!.subarray(60, 60 + senseLen).equals(res.sense!)).toBe(true);
  });

  // What libiscsi's ExtendedCopy.ValidTgtDescr checks; libiscsi 1.19 skips its NUL-bit half on
  // any target that reports SPC-4, so it is checked here.
  it('a CSCD with the NUL bit names no LU: COPY ABORTED at the segment that uses it, nothing written', async () => {
    const r = rig();
    fill(r.lu0, 0, pattern(512 * 8, 4));
    const res = await xcopy(r, xcopyList({ cscds: [{ naa: NAA0, nul: true }, { naa: NAA1 }], segments: [{ src: 0, dst: 1, blocks: 8, srcLba: 0, dstLba: 0 }] }));
    expect(senseOf(res)).toEqual([0xa, 0x0d, 0x02]);
    expect(copySense(res)).toMatchObject({ csi: 0, pointer: 16 + 64 });
    expect(r.lu1.stats.writes).toBe(0);
    expect(read(r.lu1, 0, 8).equals(Buffer.alloc(512 * 8))).toBe(true);
  });

  it('LU ID TYPE is ignored in an identification CSCD (SPC-4 §6.4.5.5): the reserved value 11b still copies', async () => {
    const r = rig();
    const data = pattern(512 * 8, 5);
    fill(r.lu0, 0, data);
    const res = await xcopy(r, xcopyList({ cscds: [{ naa: NAA0, luIdType: 3 }, { naa: NAA1, luIdType: 3 }], segments: [{ src: 0, dst: 1, blocks: 8, srcLba: 0, dstLba: 0 }] }));
    expect(res.status).toBe(ScsiStatus.Good);
    expect(read(r.lu1, 0, 8).equals(data)).toBe(true);
  });

  it('a segment beyond the end of the destination is COPY ABORTED with the LBA, and writes nothing', async () => {
    const r = rig(2048);
    const res = await xcopy(r, xcopyList({ cscds: [{ naa: NAA0 }, { naa: NAA1 }], segments: [{ src: 0, dst: 1, blocks: 16, srcLba: 0, dstLba: 2040 }] }));
    const [key] = senseOf(res);
    expect(key).toBe(0xa);
    expect(copySense(res)).toMatchObject({ csi: 0, info: 2040, pointer: 16 + 64 });
    expect(r.lu1.stats.writes).toBe(0);
  });

  it('a reservation on the destination held by another I_T nexus: RESERVATION CONFLICT, nothing copied', async () => {
    const r = rig();
    const other = makeNexus('iqn.2026-01.test:other', '23d000000009');
    r.target.nexusUp(other);
    r.lu1.ua.forget(other.key);
    expect((await send(r.lu1, other, Buffer.from([0x16, 0, 0, 0, 0, 0]))).status).toBe(ScsiStatus.Good); // RESERVE(6)
    fill(r.lu0, 0, pattern(4096, 4));
    const res = await xcopy(r, xcopyList({ cscds: [{ naa: NAA0 }, { naa: NAA1 }], segments: [{ src: 0, dst: 1, blocks: 8, srcLba: 0, dstLba: 0 }] }));
    expect(res.status).toBe(ScsiStatus.ReservationConflict);
    expect(read(r.lu1, 0, 8).equals(Buffer.alloc(4096))).toBe(true);
    // The holder itself may copy onto it.
    const own = xcopyList({ cscds: [{ naa: NAA0 }, { naa: NAA1 }], segments: [{ src: 0, dst: 1, blocks: 8, srcLba: 0, dstLba: 0 }] });
    r.lu0.ua.forget(other.key);
    expect((await xcopy(r, own, r.lu0, other)).status).toBe(ScsiStatus.Good);
  });

  it('a write-protected destination is DATA PROTECT', async () => {
    const r = rig();
    r.lu1.settings.swp = true;
    const res = await xcopy(r, xcopyList({ cscds: [{ naa: NAA0 }, { naa: NAA1 }], segments: [{ src: 0, dst: 1, blocks: 1, srcLba: 0, dstLba: 0 }] }));
    expect(senseOf(res)).toEqual([0x7, 0x27, 0x00]);
  });

  it('a LIST IDENTIFIER in use by a running copy is OPERATION IN PROGRESS', async () => {
    const r = rig(65536);
    const list = xcopyList({ listId: 9, cscds: [{ naa: NAA0 }, { naa: NAA1 }], segments: [{ src: 0, dst: 1, blocks: 65535, srcLba: 0, dstLba: 0 }] });
    const first = xcopy(r, list);
    const second = await xcopy(r, list);
    expect(senseOf(second)).toEqual([0x5, 0x00, 0x16]);
    const running = await send(r.lu0, r.nexus, rcrCdb(0x00, 9));
    expect(running.data![4]).toBe(0x00); // in progress
    expect((await first).status).toBe(ScsiStatus.Good);
  });
});

describe('RECEIVE COPY RESULTS and discovery', () => {
  it('OPERATING PARAMETERS reports the limits decode enforces', async () => {
    const r = rig();
    const res = await send(r.lu0, r.nexus, rcrCdb(0x03, 0));
    const op = decodeOperatingParameters(res.data!);
    expect(op).toMatchObject({
      maxCscdDescriptors: XCOPY_LIMITS.maxCscdDescriptors, maxSegmentDescriptors: XCOPY_LIMITS.maxSegmentDescriptors,
      maxDescriptorListLength: XCOPY_LIMITS.maxDescriptorListLength, maxSegmentLength: XCOPY_LIMITS.maxSegmentBytes,
      dataSegmentGranularityLog2: 9,
    });
    expect([...op.implementedDescriptors].sort((a, b) => a - b)).toEqual([0x02, 0x0a, 0xe4]);
    expect(res.data!.readUInt32BE(0)).toBe(res.data!.length - 4);
  });

  it('COPY STATUS for an unknown LIST IDENTIFIER is INVALID FIELD IN CDB on byte 2', async () => {
    const r = rig();
    const res = await send(r.lu0, r.nexus, rcrCdb(0x00, 77));
    expect(senseOf(res)).toEqual([0x5, 0x24, 0x00]);
    expect(res.sense!.readUInt16BE(16)).toBe(2);
  });

  it('a held good copy: COPY STATUS completed, RECEIVE DATA empty, no failed segment details', async () => {
    const r = rig();
    await xcopy(r, xcopyList({ listId: 1, cscds: [{ naa: NAA0 }, { naa: NAA1 }], segments: [{ src: 0, dst: 1, blocks: 2, srcLba: 0, dstLba: 0 }] }));
    const st = await send(r.lu0, r.nexus, rcrCdb(0x00, 1));
    expect(st.data!.subarray(0, 12).toString('hex')).toBe('00000008' + '01' + '0001' + '00' + '00000400');
    expect((await send(r.lu0, r.nexus, rcrCdb(0x01, 1))).data!.toString('hex')).toBe('00000000');
    expect((await send(r.lu0, r.nexus, rcrCdb(0x04, 1))).data!.toString('hex')).toBe('00000000');
    // Another session (I_T nexus) does not see this list.
    const other = makeNexus('iqn.2026-01.test:x', '23d00000000a');
    r.target.nexusUp(other);
    r.lu0.ua.forget(other.key);
    expect(senseOf(await send(r.lu0, other, rcrCdb(0x00, 1)))).toEqual([0x5, 0x24, 0x00]);
  });

  it('standard INQUIRY sets 3PC; VPD 0x00 lists 0x8F; 0x8F carries the supported commands', async () => {
    const r = rig();
    const std = await send(r.lu0, r.nexus, Buffer.from([0x12, 0, 0, 0, 255, 0]));
    expect(std.data![5] & 0x08).toBe(0x08);
    const pages = await send(r.lu0, r.nexus, Buffer.from([0x12, 1, 0x00, 0, 255, 0]));
    expect([...pages.data!.subarray(4)]).toContain(0x8f);
    const p = await send(r.lu0, r.nexus, Buffer.from([0x12, 1, 0x8f, 0x04, 0, 0]));
    expect(p.data![1]).toBe(0x8f);
    const descs = decodeTpcDescriptors(p.data!.subarray(4, 4 + p.data!.readUInt16BE(2)));
    expect(descs.map((d) => d.type)).toEqual([0x0001, 0x0004, 0x0008, 0x000c, 0x8001]);
    for (const d of descs) expect(d.body.length % 4).toBe(0);
    const cmds = descs[0].body;
    // List length, then 83h with one service action (00h), 84h with four.
    expect([...cmds.subarray(0, 1 + cmds[0])]).toEqual([9, 0x83, 1, 0x00, 0x84, 4, 0x00, 0x01, 0x03, 0x04]);
  });
});

it('segment descriptors written by the builder have the lengths SPC-4 gives', () => {
  expect(segment({ src: 0, dst: 0, blocks: 1, srcLba: 0, dstLba: 0 }).length).toBe(28);
  expect(cscd({ naa: NAA0 }).length).toBe(32);
});
