/**
 * WRITE SAME(10/16) details (SBC-4 §5.50, §5.51): NUMBER OF LOGICAL BLOCKS 0 (WSNZ=0), NDOB,
 * UNMAP, write protection before Data-Out checks, and zeroing a huge thin LU as metadata work.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { blockLimits } from '../../src/scsi/sbc.ts';
import { FileStore } from '../../src/store/file.ts';
import { MemoryStore } from '../../src/store/memory.ts';
import { cdb10, cdb16, DATA_PROTECT, expectGood, ILLEGAL_REQUEST, pattern, senseOf, setupLun, submit } from './sbc-fixture.ts';
import type { Lun } from './sbc-fixture.ts';

const BS = 512;
const UNMAP = 0x08, NDOB = 0x01;
const gls = (lba: number | bigint) => { const c = cdb16(0x9e, lba, 1024); c[1] = 0x12; return c; };

async function lbaStatus(l: Lun, lba: number | bigint) {
  const d = (await submit(l, gls(lba))).data!;
  const n = (d.readUInt32BE(0) - 4) / 16;
  return Array.from({ length: n }, (_, i) => ({
    lba: d.readBigUInt64BE(8 + 16 * i), blocks: BigInt(d.readUInt32BE(16 + 16 * i)), status: d[20 + 16 * i],
  }));
}

describe('WRITE SAME: NUMBER OF LOGICAL BLOCKS 0 (WSNZ=0)', () => {
  it('Block Limits says WSNZ=0 and no MAXIMUM WRITE SAME LENGTH', () => {
    expect(blockLimits({ blockSize: BS }).writeSameNonZero).toBe(false);
    expect(blockLimits({ blockSize: BS }).maxWriteSameLength).toBe(0);
  });

  it('writes from the LBA through the last LBA, for (10) and (16)', async () => {
    const l = setupLun({ blocks: 1024 });
    const blk = pattern(BS, 7);
    expectGood(await submit(l, cdb10(0x41, 1000, 0), { dataOut: blk }));
    const d = (await submit(l, cdb10(0x28, 999, 25))).data!;
    expect(d.subarray(0, BS).every((b) => b === 0)).toBe(true);
    for (let i = 1; i < 25; i++) expect(d.subarray(i * BS, (i + 1) * BS).equals(blk)).toBe(true);
    expectGood(await submit(l, cdb16(0x93, 0, 0, NDOB), { edtl: 0 }));
    expect((await submit(l, cdb10(0x28, 1023, 1))).data!.every((b) => b === 0)).toBe(true);
  });

  it('at LBA = capacity touches nothing; beyond it is LBA OUT OF RANGE', async () => {
    const l = setupLun({ blocks: 1024 });
    const blk = Buffer.alloc(BS);
    expectGood(await submit(l, cdb10(0x41, 1024, 0), { dataOut: blk }));
    expect(senseOf(await submit(l, cdb10(0x41, 1025, 0), { dataOut: blk }))).toEqual([ILLEGAL_REQUEST, 0x21, 0x00]);
    expect(senseOf(await submit(l, cdb16(0x93, 2n ** 63n, 0), { dataOut: blk }))).toEqual([ILLEGAL_REQUEST, 0x21, 0x00]);
    expect(senseOf(await submit(l, cdb16(0x93, 2n ** 64n - 1n, 0), { dataOut: blk }))).toEqual([ILLEGAL_REQUEST, 0x21, 0x00]);
  });
});

describe('WRITE SAME: NDOB and the Data-Out size', () => {
  it('NDOB writes zeros with no Data-Out; NDOB with Data-Out, or no NDOB without one, is INVALID FIELD IN CDB', async () => {
    const l = setupLun({ blocks: 256 });
    await submit(l, cdb10(0x2a, 0, 16), { dataOut: Buffer.alloc(16 * BS, 0x33) });
    expectGood(await submit(l, cdb16(0x93, 1, 7, UNMAP | NDOB), { edtl: 0 }));
    const d = (await submit(l, cdb10(0x28, 0, 16))).data!;
    expect(d.subarray(0, BS).every((b) => b === 0x33)).toBe(true);
    expect(d.subarray(BS, 8 * BS).every((b) => b === 0)).toBe(true);
    expect(d.subarray(8 * BS).every((b) => b === 0x33)).toBe(true);
    expect(senseOf(await submit(l, cdb16(0x93, 0, 1, NDOB), { dataOut: Buffer.alloc(BS) }))).toEqual([ILLEGAL_REQUEST, 0x24, 0x00]);
    expect(senseOf(await submit(l, cdb10(0x41, 0, 1, UNMAP), { edtl: 0 }))).toEqual([ILLEGAL_REQUEST, 0x24, 0x00]);
    expect(senseOf(await submit(l, cdb16(0x93, 0, 1, UNMAP), { dataOut: Buffer.alloc(BS / 2) }))).toEqual([ILLEGAL_REQUEST, 0x24, 0x00]);
  });

  it('ANCHOR is INVALID FIELD IN CDB with or without UNMAP (ANC_SUP=0)', async () => {
    const l = setupLun({ blocks: 256 });
    for (const b1 of [0x10, 0x10 | UNMAP]) {
      expect(senseOf(await submit(l, cdb16(0x93, 0, 1, b1), { dataOut: Buffer.alloc(BS) }))).toEqual([ILLEGAL_REQUEST, 0x24, 0x00]);
    }
  });

  it('a write-protected LU answers DATA PROTECT before looking at the Data-Out (libiscsi ReadOnly.ReadOnlySBC)', async () => {
    const l = setupLun({ readonly: true, blocks: 256 });
    expect(senseOf(await submit(l, cdb10(0x41, 0, 1, UNMAP), { edtl: 0 }))).toEqual([DATA_PROTECT, 0x27, 0x00]);
    expect(senseOf(await submit(l, cdb16(0x93, 0, 1, UNMAP | NDOB), { edtl: 0 }))).toEqual([DATA_PROTECT, 0x27, 0x00]);
    expect(senseOf(await submit(l, cdb10(0x41, 0, 1), { dataOut: Buffer.alloc(BS) }))).toEqual([DATA_PROTECT, 0x27, 0x00]);
    expect(senseOf(await submit(l, cdb16(0x93, 0, 0), { dataOut: Buffer.alloc(BS) }))).toEqual([DATA_PROTECT, 0x27, 0x00]);
  });
});

describe('WRITE SAME over a whole 1 TiB thin memory LU', () => {
  const TiB = 2 ** 40;

  it('zeroing or unmapping everything costs metadata: the allocation counter never grows', async () => {
    const store = new MemoryStore(BigInt(TiB / BS));
    const l = setupLun({ store });
    const spots = [0, 12345, 2 ** 30, 2 ** 31 - 8];
    for (const lba of spots) expectGood(await submit(l, cdb16(0x8a, lba, 8), { dataOut: Buffer.alloc(8 * BS, 1) }));
    const written = store.allocatedBytes();
    expect(written).toBe(spots.length * (1 << 20));

    // WRITE SAME(16), zero block, UNMAP=0, NUMBER OF LOGICAL BLOCKS = every block (2^31).
    expectGood(await submit(l, cdb16(0x93, 0, TiB / BS), { dataOut: Buffer.alloc(BS) }));
    expect(store.allocatedBytes()).toBe(0);
    expect(await lbaStatus(l, 0)).toEqual([{ lba: 0n, blocks: BigInt(TiB / BS), status: 1 }]);

    // Map a little again, then NDOB+UNMAP with NUMBER OF LOGICAL BLOCKS 0 (through the last LBA).
    for (const lba of spots) await submit(l, cdb16(0x8a, lba, 8), { dataOut: Buffer.alloc(8 * BS, 2) });
    expect((await lbaStatus(l, 2 ** 30))[0]).toEqual({ lba: BigInt(2 ** 30), blocks: 2048n, status: 0 });
    expectGood(await submit(l, cdb16(0x93, 0, 0, UNMAP | NDOB), { edtl: 0 }));
    expect(store.allocatedBytes()).toBe(0);
    expect((await submit(l, cdb16(0x88, 2 ** 30, 8))).data!.every((b) => b === 0)).toBe(true);
    expect(await lbaStatus(l, 5)).toEqual([{ lba: 5n, blocks: BigInt(TiB / BS - 5), status: 1 }]);
  });

  it('a pattern stays mapped and GET LBA STATUS says so; zeroing part of a chunk keeps it mapped', async () => {
    const store = new MemoryStore(BigInt(TiB / BS), { chunkBytes: 64 * 1024 }); // 128-block chunks
    const l = setupLun({ store });
    expectGood(await submit(l, cdb16(0x93, 256, 256), { dataOut: pattern(BS, 1) }));
    expect(store.allocatedBytes()).toBe(2 * 64 * 1024);
    expectGood(await submit(l, cdb16(0x93, 256, 8, UNMAP), { dataOut: Buffer.alloc(BS) }));
    expectGood(await submit(l, cdb16(0x93, 384, 128, UNMAP), { dataOut: Buffer.alloc(BS) }));
    expect(store.allocatedBytes()).toBe(64 * 1024);
    expect((await lbaStatus(l, 0)).slice(0, 3)).toEqual([
      { lba: 0n, blocks: 256n, status: 1 },
      { lba: 256n, blocks: 128n, status: 0 },
      { lba: 384n, blocks: BigInt(TiB / BS - 384), status: 1 },
    ]);
    expect((await submit(l, cdb16(0x88, 256, 8))).data!.every((b) => b === 0)).toBe(true);
    expect((await submit(l, cdb16(0x88, 264, 1))).data!.equals(pattern(BS, 1))).toBe(true);
  });
});

describe('WRITE SAME on a thin file LU', () => {
  it('zeros are recorded as deallocated extents for GET LBA STATUS', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'arraysim-ws-'));
    const store = await FileStore.open(join(dir, 'lun.img'), { sizeBytes: 1 << 20 });
    try {
      const l = setupLun({ store });
      expectGood(await submit(l, cdb10(0x41, 0, 100), { dataOut: pattern(BS, 2) }));
      expect((await lbaStatus(l, 0))[0]).toEqual({ lba: 0n, blocks: 100n, status: 0 });
      expectGood(await submit(l, cdb10(0x41, 10, 20), { dataOut: Buffer.alloc(BS) }));
      expect((await lbaStatus(l, 0)).slice(0, 3)).toEqual([
        { lba: 0n, blocks: 10n, status: 0 }, { lba: 10n, blocks: 20n, status: 1 }, { lba: 30n, blocks: 70n, status: 0 },
      ]);
      expect((await submit(l, cdb10(0x28, 10, 20))).data!.every((b) => b === 0)).toBe(true);
    } finally {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
