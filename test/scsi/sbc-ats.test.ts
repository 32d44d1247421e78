/** COMPARE AND WRITE (SBC-4 §5.3): decode, compare, write, miscompare sense, atomicity. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { COMPARE_AND_WRITE } from '../../src/scsi/sbc-ats.ts';
import { blockLimits } from '../../src/scsi/sbc.ts';
import { ScsiStatus } from '../../src/scsi/types.ts';
import type { ScsiResponse } from '../../src/scsi/types.ts';
import { FileStore } from '../../src/store/file.ts';
import {
  cdb10, DATA_PROTECT, expectGood, fieldPointer, ILLEGAL_REQUEST, makeNexus, MISCOMPARE, pattern, senseInformation, senseOf,
  setupLun, submit,
} from './sbc-fixture.ts';
import type { Lun } from './sbc-fixture.ts';
import { caw16 } from '../helpers/cdb.ts';

const BS = 512;
const read = async (l: Lun, lba: number, n = 1) => (await submit(l, cdb10(0x28, lba, n))).data!;

async function withFileLun<T>(body: (l: Lun) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'arraysim-ats-'));
  const store = await FileStore.open(join(dir, 'lun.img'), { sizeBytes: 1 << 20 });
  try {
    return await body(setupLun({ store }));
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('COMPARE AND WRITE: the command-table entry', () => {
  it('is a write for reservations, the ats primitive for the splitter, and declares the extent it may write', () => {
    expect(COMPARE_AND_WRITE.reservation).toBe('write');
    expect(COMPARE_AND_WRITE.splitter).toBe('ats');
    expect(COMPARE_AND_WRITE.writes!({ lba: 7n, blocks: 3, fua: false })).toEqual([{ lba: 7n, blocks: 3 }]);
    expect(COMPARE_AND_WRITE.writes!({ lba: 7n, blocks: 0, fua: false })).toEqual([]);
  });
});

describe('COMPARE AND WRITE', () => {
  it('writes when the verify data matches', async () => {
    const l = setupLun();
    const old = pattern(BS, 1), neu = pattern(BS, 2);
    await submit(l, cdb10(0x2a, 7, 1), { dataOut: old });
    const r = await submit(l, caw16(7, 1), { dataOut: Buffer.concat([old, neu]) });
    expectGood(r);
    expect(r.dataOutLength).toBe(2 * BS);
    expect((await read(l, 7)).equals(neu)).toBe(true);
  });

  it('handles up to MAXIMUM COMPARE AND WRITE LENGTH blocks, at the end of the LU too, with FUA and DPO', async () => {
    const max = blockLimits({ blockSize: BS }).maxCompareAndWriteLength;
    expect(max).toBe(255);
    const l = setupLun({ blocks: 4096 });
    const old = pattern(max * BS, 3), neu = pattern(max * BS, 4);
    const lba = 4096 - max;
    await submit(l, cdb10(0x2a, lba, max), { dataOut: old });
    expectGood(await submit(l, caw16(lba, max, 0x18), { dataOut: Buffer.concat([old, neu]) }));
    expect((await read(l, lba, max)).equals(neu)).toBe(true);
  });

  it('on a miscompare writes nothing and reports MISCOMPARE with the offset of the first differing byte', async () => {
    const l = setupLun();
    const old = pattern(2 * BS, 1);
    await submit(l, cdb10(0x2a, 7, 2), { dataOut: old });
    for (const at of [0, 1, BS - 1, BS, BS + 100, 2 * BS - 27]) {
      const verify = Buffer.from(old);
      verify[at] ^= 0xff;
      const r = await submit(l, caw16(7, 2), { dataOut: Buffer.concat([verify, pattern(2 * BS, 9)]) });
      expect(senseOf(r)).toEqual([MISCOMPARE, 0x1d, 0x00]);
      expect(r.sense![0] & 0x80).toBe(0x80); // VALID
      expect(senseInformation(r)).toBe(at);
    }
    expect((await read(l, 7, 2)).equals(old)).toBe(true);
  });

  it('reports the miscompare offset in descriptor-format sense too', async () => {
    const l = setupLun();
    l.lu.settings.dSense = true;
    const verify = Buffer.alloc(BS);
    verify[300] = 1;
    const r = await submit(l, caw16(0, 1), { dataOut: Buffer.concat([verify, Buffer.alloc(BS, 1)]) });
    expect(senseOf(r)).toEqual([MISCOMPARE, 0x1d, 0x00]);
    const s = r.sense!;
    expect([s[8], s[10] & 0x80]).toEqual([0x00, 0x80]); // information descriptor, VALID
    expect(s.readBigUInt64BE(12)).toBe(300n);
  });

  it('NUMBER OF LOGICAL BLOCKS 0 transfers and changes nothing; with Data-Out it is INVALID FIELD IN CDB', async () => {
    const l = setupLun();
    expectGood(await submit(l, caw16(0, 0), { edtl: 0 }));
    // libiscsi asks for 256 blocks, which wraps the one-byte field to 0: must not succeed.
    const r = await submit(l, caw16(0, 0), { dataOut: Buffer.alloc(2 * 256 * BS) });
    expect(senseOf(r)).toEqual([ILLEGAL_REQUEST, 0x24, 0x00]);
    expect(fieldPointer(r)).toEqual({ inCdb: true, byte: 13, bit: undefined });
  });

  it('rejects a Data-Out other than 2 × NUMBER OF LOGICAL BLOCKS blocks (too small, too large)', async () => {
    const l = setupLun();
    for (const [n, bytes] of [[1, 4 * BS], [3, 4 * BS], [1, BS], [2, 2 * BS + 1]] as const) {
      expect(senseOf(await submit(l, caw16(0, n), { dataOut: Buffer.alloc(bytes) }))).toEqual([ILLEGAL_REQUEST, 0x24, 0x00]);
    }
    expect((await read(l, 0, 4)).every((b) => b === 0)).toBe(true);
  });

  it('rejects WRPROTECT, reserved bytes and LBAs past the end', async () => {
    const l = setupLun({ blocks: 1024 });
    const two = Buffer.alloc(2 * BS);
    expect(senseOf(await submit(l, caw16(0, 1, 0x20), { dataOut: two }))).toEqual([ILLEGAL_REQUEST, 0x24, 0x00]);
    const c = caw16(0, 1); c[11] = 1;
    expect(senseOf(await submit(l, c, { dataOut: two }))).toEqual([ILLEGAL_REQUEST, 0x24, 0x00]);
    expect(senseOf(await submit(l, caw16(1024, 1), { dataOut: two }))).toEqual([ILLEGAL_REQUEST, 0x21, 0x00]);
    expect(senseOf(await submit(l, caw16(1023, 2), { dataOut: Buffer.alloc(4 * BS) }))).toEqual([ILLEGAL_REQUEST, 0x21, 0x00]);
  });

  it('is DATA PROTECT on a write-protected LU, whatever the Data-Out size', async () => {
    const l = setupLun({ readonly: true });
    expect(senseOf(await submit(l, caw16(0, 1), { dataOut: Buffer.alloc(2 * BS) }))).toEqual([DATA_PROTECT, 0x27, 0x00]);
    expect(senseOf(await submit(l, caw16(0, 1), { dataOut: Buffer.alloc(BS) }))).toEqual([DATA_PROTECT, 0x27, 0x00]);
  });

  it('works the same on the file store, FUA included', async () => {
    await withFileLun(async (l) => {
      const old = pattern(2 * BS, 5), neu = pattern(2 * BS, 6);
      await submit(l, cdb10(0x2a, 3, 2), { dataOut: old });
      expect(senseOf(await submit(l, caw16(3, 2), { dataOut: Buffer.concat([neu, old]) }))).toEqual([MISCOMPARE, 0x1d, 0x00]);
      expectGood(await submit(l, caw16(3, 2, 0x08), { dataOut: Buffer.concat([old, neu]) }));
      expect((await read(l, 3, 2)).equals(neu)).toBe(true);
    });
  });
});

/**
 * Read-increment-ATS loops from several nexuses on one counter block, with plain WRITEs to the
 * neighbouring blocks in between, all in flight at once: the counter ends exactly at the number
 * of successful increments. On the file store every step awaits, so this fails without the
 * range lock (a WRITE or another ATS lands between a COMPARE AND WRITE's read and its write).
 */
async function incrementRace(l: Lun, workers: number, perWorker: number): Promise<void> {
  const COUNTER = 64;
  const nexuses = Array.from({ length: workers }, (_, i) => makeNexus(`iqn.2026-01.test:ats${i}`, `23d0000001${i.toString(16).padStart(2, '0')}`));
  for (const n of nexuses) { l.target.nexusUp(n); l.lu.ua.forget(n.key); }
  const block = (v: number) => { const b = Buffer.alloc(BS); b.writeBigUInt64BE(BigInt(v)); return b; };
  const neighbour = (w: number, i: number) => Buffer.alloc(BS, (w * 31 + i) & 0xff);
  let retries = 0;
  await Promise.all(nexuses.map(async (nexus, w) => {
    for (let i = 0; i < perWorker; i++) {
      for (;;) {
        // Copied, as an initiator receives it: the memory store answers READ with a view of its
        // chunk, which later writes change in place.
        const cur = Buffer.from((await submit(l, cdb10(0x28, COUNTER, 1), { nexus })).data!);
        const next = block(Number(cur.readBigUInt64BE(0)) + 1);
        // A plain write to this worker's own neighbour block, between the read and the ATS.
        expectGood(await submit(l, cdb10(0x2a, COUNTER + 1 + w, 1), { dataOut: neighbour(w, i), nexus }));
        const r: ScsiResponse = await submit(l, caw16(COUNTER, 1), { dataOut: Buffer.concat([cur, next]), nexus });
        if (r.status === ScsiStatus.Good) break;
        expect(senseOf(r)).toEqual([MISCOMPARE, 0x1d, 0x00]);
        retries++;
      }
    }
  }));
  expect(Number((await read(l, COUNTER)).readBigUInt64BE(0))).toBe(workers * perWorker);
  for (let w = 0; w < workers; w++) expect((await read(l, COUNTER + 1 + w)).equals(neighbour(w, perWorker - 1))).toBe(true);
  expect((await read(l, COUNTER - 1)).every((b) => b === 0)).toBe(true);
  expect(retries).toBeGreaterThanOrEqual(0);
}

describe('COMPARE AND WRITE atomicity (several nexuses, one block)', () => {
  it('memory store: the counter is exact', async () => {
    await incrementRace(setupLun(), 8, 50);
  });

  it('file store: the counter is exact', async () => {
    await withFileLun((l) => incrementRace(l, 8, 30));
  });

  it('file store: racing a→b and b→a exchanges never tear the block', async () => {
    await withFileLun(async (l) => {
      const a = Buffer.alloc(BS, 0xaa), b = Buffer.alloc(BS, 0xbb);
      await submit(l, cdb10(0x2a, 0, 1), { dataOut: a });
      const results = await Promise.all(Array.from({ length: 40 }, (_, i) =>
        submit(l, caw16(0, 1), { dataOut: i % 2 ? Buffer.concat([b, a]) : Buffer.concat([a, b]) })));
      expect(results.filter((r) => r.status === ScsiStatus.Good).length).toBeGreaterThan(0);
      for (const r of results) if (r.status !== ScsiStatus.Good) expect(senseOf(r)).toEqual([MISCOMPARE, 0x1d, 0x00]);
      const final = await read(l, 0);
      expect(final.equals(a) || final.equals(b)).toBe(true);
    });
  });
});
