/** WRITE SAME, UNMAP, GET LBA STATUS (SBC-4 §4.7, §5.8, §5.32, §5.50, §5.51). */
import { describe, expect, it } from 'vitest';
import { blockLimits } from '../../src/scsi/sbc.ts';
import { MemoryStore } from '../../src/store/memory.ts';
import { unmapCdb, unmapParameterList } from '../helpers/cdb.ts';
import { cdb10, cdb16, DATA_PROTECT, expectGood, ILLEGAL_REQUEST, pattern, senseOf, setupLun, submit } from './sbc-fixture.ts';
import type { Lun } from './sbc-fixture.ts';

const BS = 512;

const gls = (lba: number | bigint, alloc = 1024) => { const c = cdb16(0x9e, lba, alloc); c[1] = 0x12; return c; };

async function lbaStatus(l: Lun, lba: number | bigint) {
  const d = (await submit(l, gls(lba))).data!;
  const n = (d.readUInt32BE(0) - 4) / 16;
  return Array.from({ length: n }, (_, i) => ({
    lba: d.readBigUInt64BE(8 + 16 * i), blocks: d.readUInt32BE(16 + 16 * i), status: d[20 + 16 * i],
  }));
}

describe('WRITE SAME', () => {
  it('(10) and (16) replicate one block', async () => {
    const l = setupLun();
    const blk = pattern(BS, 3);
    expectGood(await submit(l, cdb10(0x41, 10, 20), { dataOut: blk }));
    expectGood(await submit(l, cdb16(0x93, 500, 1000), { dataOut: blk }));
    const d = (await submit(l, cdb10(0x28, 10, 20))).data!;
    for (let i = 0; i < 20; i++) expect(d.subarray(i * BS, (i + 1) * BS).equals(blk)).toBe(true);
    expect((await submit(l, cdb10(0x28, 1499, 1))).data!.equals(blk)).toBe(true);
    expect((await submit(l, cdb10(0x28, 1500, 1))).data!.every((b) => b === 0)).toBe(true);
  });

  it('rejects ANCHOR, WRPROTECT, a wrong Data-Out size, and LBAs past the end', async () => {
    const l = setupLun({ blocks: 1024 });
    const blk = Buffer.alloc(BS);
    expect(senseOf(await submit(l, cdb10(0x41, 0, 1, 0x10), { dataOut: blk }))).toEqual([ILLEGAL_REQUEST, 0x24, 0x00]);
    expect(senseOf(await submit(l, cdb16(0x93, 0, 1, 0x20), { dataOut: blk }))).toEqual([ILLEGAL_REQUEST, 0x24, 0x00]);
    expect(senseOf(await submit(l, cdb10(0x41, 0, 1), { dataOut: Buffer.alloc(2 * BS) }))).toEqual([ILLEGAL_REQUEST, 0x24, 0x00]);
    expect(senseOf(await submit(l, cdb16(0x93, 1000, 25), { dataOut: blk }))).toEqual([ILLEGAL_REQUEST, 0x21, 0x00]);
    expect(senseOf(await submit(setupLun({ readonly: true }), cdb10(0x41, 0, 1), { dataOut: blk }))).toEqual([DATA_PROTECT, 0x27, 0x00]);
  });

  it('on a thick LU writes zeros and keeps the blocks mapped', async () => {
    const l = setupLun({ thick: true, blocks: 256 });
    await submit(l, cdb10(0x2a, 0, 4), { dataOut: Buffer.alloc(4 * BS, 9) });
    expectGood(await submit(l, cdb10(0x41, 0, 4, 0x08), { dataOut: Buffer.alloc(BS) }));
    expect((await submit(l, cdb10(0x28, 0, 4))).data!.every((b) => b === 0)).toBe(true);
    expect(l.store.allocatedBytes!()).toBe(256 * BS);
  });
});

describe('UNMAP', () => {
  it('deallocates several descriptors; the blocks read back as zero', async () => {
    const l = setupLun({ blocks: 8192 });
    await submit(l, cdb10(0x2a, 0, 4096), { dataOut: Buffer.alloc(4096 * BS, 0x41) });
    const p = unmapParameterList([[0, 2048], [3000, 10]]);
    expectGood(await submit(l, unmapCdb(p.length), { dataOut: p }));
    expect((await submit(l, cdb10(0x28, 0, 1))).data!.every((b) => b === 0)).toBe(true);
    expect((await submit(l, cdb10(0x28, 3005, 1))).data!.every((b) => b === 0)).toBe(true);
    expect((await submit(l, cdb10(0x28, 2999, 1))).data!.every((b) => b === 0x41)).toBe(true);
    expect((await lbaStatus(l, 0))[0]).toEqual({ lba: 0n, blocks: 2048, status: 1 });
  });

  it('parameter list length 0 is GOOD; 1..7 is PARAMETER LIST LENGTH ERROR', async () => {
    const l = setupLun();
    expectGood(await submit(l, unmapCdb(0), { edtl: 0 }));
    expect(senseOf(await submit(l, unmapCdb(4), { dataOut: Buffer.alloc(4) }))).toEqual([ILLEGAL_REQUEST, 0x1a, 0x00]);
  });

  it('a descriptor past the end is LBA OUT OF RANGE and nothing is unmapped', async () => {
    const l = setupLun({ blocks: 1024 });
    await submit(l, cdb10(0x2a, 0, 1), { dataOut: Buffer.alloc(BS, 5) });
    const p = unmapParameterList([[0, 1], [1000, 100]]);
    expect(senseOf(await submit(l, unmapCdb(p.length), { dataOut: p }))).toEqual([ILLEGAL_REQUEST, 0x21, 0x00]);
    expect((await submit(l, cdb10(0x28, 0, 1))).data!.every((b) => b === 5)).toBe(true);
  });

  it('too many descriptors or blocks is INVALID FIELD IN PARAMETER LIST', async () => {
    const lim = blockLimits({ blockSize: BS });
    const l = setupLun({ blocks: lim.maxUnmapLbaCount * 2 });
    const many = unmapParameterList(Array.from({ length: lim.maxUnmapBlockDescriptorCount + 1 }, (_, i) => [i, 1] as [number, number]));
    expect(senseOf(await submit(l, unmapCdb(many.length), { dataOut: many }))).toEqual([ILLEGAL_REQUEST, 0x26, 0x00]);
    const big = unmapParameterList([[0, lim.maxUnmapLbaCount + 1]]);
    expect(senseOf(await submit(l, unmapCdb(big.length), { dataOut: big }))).toEqual([ILLEGAL_REQUEST, 0x26, 0x00]);
  });

  it('is an unsupported opcode on a thick LU, and WRITE PROTECTED on a readonly one', async () => {
    const p = unmapParameterList([[0, 1]]);
    expect(senseOf(await submit(setupLun({ thick: true, blocks: 64 }), unmapCdb(p.length), { dataOut: p }))).toEqual([ILLEGAL_REQUEST, 0x20, 0x00]);
    expect(senseOf(await submit(setupLun({ readonly: true }), unmapCdb(p.length), { dataOut: p }))).toEqual([DATA_PROTECT, 0x27, 0x00]);
  });
});

describe('GET LBA STATUS', () => {
  it('describes mapped and deallocated runs from the requested LBA', async () => {
    const l = setupLun({ store: new MemoryStore(8192n, { chunkBytes: 64 * 1024 }) }); // 128-block chunks
    await submit(l, cdb10(0x2a, 200, 1), { dataOut: Buffer.alloc(BS, 1) });
    expect(await lbaStatus(l, 0)).toEqual([
      { lba: 0n, blocks: 128, status: 1 },
      { lba: 128n, blocks: 128, status: 0 },
      { lba: 256n, blocks: 8192 - 256, status: 1 },
    ]);
    expect((await lbaStatus(l, 130))[0]).toEqual({ lba: 130n, blocks: 126, status: 0 });
  });

  it('an LBA past the end is LBA OUT OF RANGE', async () => {
    const l = setupLun({ blocks: 1024 });
    expect(senseOf(await submit(l, gls(1024)))).toEqual([ILLEGAL_REQUEST, 0x21, 0x00]);
    expectGood(await submit(l, gls(1023)));
  });

  it('honours a small allocation length', async () => {
    const l = setupLun();
    expect((await submit(l, gls(0, 16))).data!.length).toBe(16);
  });
});
