/** READ/WRITE 6/10/12/16 through LogicalUnit.submit() (SBC-4 §5.14–§5.17, §5.42–§5.45). */
import { describe, expect, it } from 'vitest';
import { blockLimits } from '../../src/scsi/sbc.ts';
import { ScsiStatus, TaskAttribute } from '../../src/scsi/types.ts';
import type { ScsiRequest } from '../../src/scsi/types.ts';
import {
  cdb10, cdb12, cdb16, cdb6, DATA_PROTECT, expectGood, fieldPointer, ILLEGAL_REQUEST, pattern, senseOf, setupLun, submit,
} from './sbc-fixture.ts';

const BS = 512;

describe('READ/WRITE round trips', () => {
  const variants = [
    { name: '6', w: (lba: number, n: number) => cdb6(0x0a, lba, n), r: (lba: number, n: number) => cdb6(0x08, lba, n) },
    { name: '10', w: (lba: number, n: number) => cdb10(0x2a, lba, n), r: (lba: number, n: number) => cdb10(0x28, lba, n) },
    { name: '12', w: (lba: number, n: number) => cdb12(0xaa, lba, n), r: (lba: number, n: number) => cdb12(0xa8, lba, n) },
    { name: '16', w: (lba: number, n: number) => cdb16(0x8a, lba, n), r: (lba: number, n: number) => cdb16(0x88, lba, n) },
  ];
  for (const v of variants) {
    it(`WRITE(${v.name}) then READ(${v.name}) returns the data`, async () => {
      const l = setupLun();
      const data = pattern(4 * BS, 7);
      expectGood(await submit(l, v.w(100, 4), { dataOut: data }));
      const r = await submit(l, v.r(100, 4));
      expectGood(r);
      expect(r.data!.equals(data)).toBe(true);
      // Neighbours untouched (unwritten reads as zero).
      const before = await submit(l, v.r(99, 1));
      expect(before.data!.equals(Buffer.alloc(BS))).toBe(true);
    });
  }

  it('READ(6)/WRITE(6) transfer length 0 means 256 blocks', async () => {
    const l = setupLun();
    const data = pattern(256 * BS, 3);
    const w = await submit(l, cdb6(0x0a, 0, 0), { dataOut: data });
    expectGood(w);
    expect(w.dataOutLength).toBe(256 * BS);
    const r = await submit(l, cdb6(0x08, 0, 0));
    expect(r.data!.length).toBe(256 * BS);
    expect(r.data!.equals(data)).toBe(true);
  });

  it('transfer length 0 transfers nothing on READ(10)/WRITE(10)', async () => {
    const l = setupLun();
    const r = await submit(l, cdb10(0x28, 0, 0));
    expectGood(r);
    expect(r.data).toBeNull();
    expectGood(await submit(l, cdb10(0x2a, 0, 0), { dataOut: Buffer.alloc(0) }));
  });

  it('works with 4096-byte blocks', async () => {
    const l = setupLun({ blockSize: 4096, blocks: 256 });
    const data = pattern(3 * 4096, 9);
    expectGood(await submit(l, cdb16(0x8a, 255 - 2, 3), { dataOut: data }));
    expect((await submit(l, cdb16(0x88, 253, 3))).data!.equals(data)).toBe(true);
  });

  it('a memory-store READ inside one chunk returns a view of the store, not a copy', async () => {
    const l = setupLun();
    expectGood(await submit(l, cdb10(0x2a, 8, 2), { dataOut: pattern(2 * BS, 1) }));
    const a = await submit(l, cdb10(0x28, 8, 2));
    const b = await submit(l, cdb10(0x28, 8, 2));
    expect(a.data!.buffer).toBe(b.data!.buffer); // same backing chunk
    expect(a.data!.byteOffset).toBe(8 * BS);
  });

  it('holdData: a READ view keeps its blocks until released; an overlapping WRITE waits, a disjoint one does not', async () => {
    const l = setupLun();
    const old = pattern(4 * BS, 1);
    expectGood(await submit(l, cdb10(0x2a, 8, 4), { dataOut: old }));
    const req: ScsiRequest = {
      lun: 0, cdb: cdb10(0x28, 8, 4), nexus: l.nexus, taskTag: 9, attr: TaskAttribute.Simple,
      expectedLength: 4 * BS, isRead: true, isWrite: false, dataOut: null, holdData: true,
    };
    const r = await l.lu.submit(req);
    expectGood(r);
    expect(r.release).toBeTypeOf('function');
    let done = false;
    const w = submit(l, cdb10(0x2a, 10, 1), { dataOut: pattern(BS, 2) }).then((x) => { done = true; return x; });
    expectGood(await submit(l, cdb10(0x2a, 12, 1), { dataOut: pattern(BS, 3) }));
    await new Promise((res) => setImmediate(res));
    expect(done).toBe(false);
    expect(r.data!.equals(old)).toBe(true); // the view still shows what the READ read
    r.release!();
    expectGood(await w);
    expect((await submit(l, cdb10(0x28, 10, 1))).data!.equals(pattern(BS, 2))).toBe(true);
    // Without holdData (any other caller) nothing is held.
    const plain = await submit(l, cdb10(0x28, 8, 4));
    expect(plain.release).toBeUndefined();
  });

  it('FUA and DPO are accepted on READ(10) and WRITE(10); FUA_NV too', async () => {
    const l = setupLun();
    for (const flags of [0x10, 0x08, 0x02, 0x1a]) {
      expectGood(await submit(l, cdb10(0x2a, 0, 1, flags), { dataOut: Buffer.alloc(BS, 1) }));
      expectGood(await submit(l, cdb10(0x28, 0, 1, flags)));
    }
  });

  it('writes only the whole blocks received when EDTL < transfer length', async () => {
    const l = setupLun();
    expectGood(await submit(l, cdb10(0x2a, 0, 2), { dataOut: Buffer.alloc(2 * BS, 0x61) }));
    const r = await submit(l, cdb10(0x2a, 0, 2), { dataOut: Buffer.alloc(BS, 0x62) });
    expectGood(r);
    expect(r.dataOutLength).toBe(2 * BS);
    const d = (await submit(l, cdb10(0x28, 0, 2))).data!;
    expect(d.subarray(0, BS).every((x) => x === 0x62)).toBe(true);
    expect(d.subarray(BS).every((x) => x === 0x61)).toBe(true);
  });

  it('writes only the transfer length when EDTL > transfer length', async () => {
    const l = setupLun();
    const r = await submit(l, cdb10(0x2a, 0, 1), { dataOut: Buffer.alloc(2 * BS, 0x63) });
    expectGood(r);
    expect(r.dataOutLength).toBe(BS);
    const d = (await submit(l, cdb10(0x28, 0, 2))).data!;
    expect(d.subarray(BS).every((x) => x === 0)).toBe(true);
  });
});

describe('READ/WRITE errors', () => {
  it('LBA beyond the end is LBA OUT OF RANGE (21/00), for every size', async () => {
    const l = setupLun({ blocks: 1024 });
    for (const c of [cdb10(0x28, 1024, 1), cdb10(0x28, 1023, 2), cdb12(0xa8, 1024, 1), cdb16(0x88, 1024, 1),
      cdb16(0x88, 0xffffffffffffffffn, 1), cdb6(0x08, 1024, 1)]) {
      expect(senseOf(await submit(l, c))).toEqual([ILLEGAL_REQUEST, 0x21, 0x00]);
    }
    expect(senseOf(await submit(l, cdb10(0x2a, 1023, 2), { dataOut: Buffer.alloc(2 * BS) }))).toEqual([ILLEGAL_REQUEST, 0x21, 0x00]);
  });

  it('0 blocks: at LBA 0 is GOOD, one past the end and at 2^31 is LBA OUT OF RANGE', async () => {
    const l = setupLun({ blocks: 1024 });
    expectGood(await submit(l, cdb10(0x28, 0, 0)));
    expect(senseOf(await submit(l, cdb10(0x28, 1025, 0)))).toEqual([ILLEGAL_REQUEST, 0x21, 0x00]);
    expect(senseOf(await submit(l, cdb10(0x28, 0x80000000, 0)))).toEqual([ILLEGAL_REQUEST, 0x21, 0x00]);
    expect(senseOf(await submit(l, cdb10(0x28, 0xffffffff, 0)))).toEqual([ILLEGAL_REQUEST, 0x21, 0x00]);
  });

  it('RDPROTECT/WRPROTECT != 0 is INVALID FIELD IN CDB pointing at byte 1', async () => {
    const l = setupLun();
    for (const p of [0x20, 0x40, 0xe0]) {
      const r = await submit(l, cdb10(0x28, 0, 1, p));
      expect(senseOf(r)).toEqual([ILLEGAL_REQUEST, 0x24, 0x00]);
      expect(fieldPointer(r)).toMatchObject({ inCdb: true, byte: 1 });
      expect(senseOf(await submit(l, cdb16(0x8a, 0, 1, p), { dataOut: Buffer.alloc(BS) }))).toEqual([ILLEGAL_REQUEST, 0x24, 0x00]);
    }
  });

  it('a transfer above the maximum transfer length is INVALID FIELD IN CDB', async () => {
    const max = blockLimits({ blockSize: BS }).maxTransferLength;
    const l = setupLun({ blocks: max * 2 });
    const r = await submit(l, cdb16(0x88, 0, max + 1));
    expect(senseOf(r)).toEqual([ILLEGAL_REQUEST, 0x24, 0x00]);
    expect(fieldPointer(r)).toMatchObject({ inCdb: true, byte: 10 });
    expectGood(await submit(l, cdb16(0x88, 0, max)));
  });

  it('WRITE on a readonly LU is DATA PROTECT / WRITE PROTECTED (27/00) and writes nothing', async () => {
    const l = setupLun({ readonly: true });
    for (const c of [cdb6(0x0a, 0, 1), cdb10(0x2a, 0, 1), cdb12(0xaa, 0, 1), cdb16(0x8a, 0, 1)]) {
      expect(senseOf(await submit(l, c, { dataOut: Buffer.alloc(BS, 9) }))).toEqual([DATA_PROTECT, 0x27, 0x00]);
    }
    expect((await submit(l, cdb10(0x28, 0, 1))).data!.every((x) => x === 0)).toBe(true);
  });

  it('WRITE with the Control mode page SWP bit set is WRITE PROTECTED', async () => {
    const l = setupLun();
    l.lu.settings.swp = true;
    expect(senseOf(await submit(l, cdb10(0x2a, 0, 1), { dataOut: Buffer.alloc(BS) }))).toEqual([DATA_PROTECT, 0x27, 0x00]);
  });

  it('READ(6) reserved bits in byte 1 are INVALID FIELD IN CDB', async () => {
    const l = setupLun();
    const c = cdb6(0x08, 0, 1);
    c[1] |= 0x20;
    const r = await submit(l, c);
    expect(senseOf(r)).toEqual([ILLEGAL_REQUEST, 0x24, 0x00]);
    expect(fieldPointer(r)).toEqual({ inCdb: true, byte: 1, bit: 5 });
  });

  it('a write counts in the LU statistics', async () => {
    const l = setupLun();
    await submit(l, cdb10(0x2a, 0, 2), { dataOut: Buffer.alloc(2 * BS) });
    await submit(l, cdb10(0x28, 0, 1));
    expect(l.lu.stats).toMatchObject({ writes: 1, writeBytes: 2 * BS, reads: 1, readBytes: BS });
    expect(ScsiStatus.Good).toBe(0);
  });
});
