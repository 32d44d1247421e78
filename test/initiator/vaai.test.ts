/**
 * The VAAI primitives through the device API, against the real target: COMPARE AND WRITE (match,
 * and a miscompare decoded as MISCOMPARE 0E/1D/00 with the offset in INFORMATION), EXTENDED COPY
 * between two LUs with identification descriptors from their NAA designators and RECEIVE COPY
 * RESULTS, WRITE SAME(16) with UNMAP / NDOB, and UNMAP; each checked by reading the blocks back.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { CopyOperationStatus } from '../../protocol/scsi/xcopy.ts';
import { ScsiDevice } from '../../src/initiator/index.ts';
import { openReady, pattern, startRig } from './rig.ts';
import type { Rig } from './rig.ts';

let rig: Rig | undefined;
const devices: ScsiDevice[] = [];
afterEach(async () => {
  for (const d of devices.splice(0)) await d.close();
  await rig?.close();
  rig = undefined;
});

async function open(): Promise<ScsiDevice> {
  rig = await startRig({ luns: 2 });
  const d = await openReady(rig.url(0));
  devices.push(d);
  return d;
}

/** Read back in pieces of at most 8192 blocks (under the device's MAXIMUM TRANSFER LENGTH). */
async function readBack(d: ScsiDevice, lba: bigint, blocks: number): Promise<Buffer> {
  const out = Buffer.alloc(blocks * 512);
  for (let o = 0; o < blocks; o += 8192) {
    const n = Math.min(8192, blocks - o);
    const r = await d.read(lba + BigInt(o), n, { into: out.subarray(o * 512) });
    if (r.kind !== 'good') throw new Error(`read failed: ${JSON.stringify(r)}`);
  }
  return out;
}

describe('COMPARE AND WRITE (ATS)', () => {
  it('matches: the new block is written', async () => {
    const d = await open();
    const old = pattern(512, 1);
    const next = pattern(512, 2);
    await d.write(10n, old);
    expect((await d.compareAndWrite(10n, old, next)).kind).toBe('good');
    expect((await readBack(d, 10n, 1)).equals(next)).toBe(true);
  });

  it('miscompares: MISCOMPARE 0E/1D/00, INFORMATION = offset of the first differing byte, nothing written', async () => {
    const d = await open();
    const onDisk = pattern(1024, 3);
    await d.write(20n, onDisk);
    const expected = Buffer.from(onDisk);
    expected[700] ^= 0xff; // differs in the second block, byte 700 of the compare data
    const r = await d.compareAndWrite(20n, expected, pattern(1024, 4));
    expect(r.kind).toBe('check-condition');
    if (r.kind !== 'check-condition') return;
    expect(r.sense).toMatchObject({ key: 0x0e, asc: 0x1d, ascq: 0x00, reason: 'MiscompareDuringVerify', information: 700n });
    expect((await readBack(d, 20n, 2)).equals(onDisk)).toBe(true);
  });

  it('a lock word taken by two hosts at once: exactly one wins', async () => {
    const d = await open();
    const other = await openReady(rig!.url(0));
    devices.push(other);
    const free = Buffer.alloc(512);
    await d.write(30n, free);
    const [a, b] = await Promise.all([d.compareAndWrite(30n, free, pattern(512, 10)), other.compareAndWrite(30n, free, pattern(512, 11))]);
    expect([a.kind, b.kind].sort()).toEqual(['check-condition', 'good']);
  });
});

describe('EXTENDED COPY', () => {
  it('copies 66,000 blocks from LU 0 to LU 1 (split into segments of 65,535 + 465), then COPY STATUS says done', async () => {
    const d0 = await open();
    const d1 = d0.on(1);
    await d1.testUnitReady(); // LU 1's power-on unit attention
    const blocks = 66000;
    const data = pattern(blocks * 512, 77);
    for (let o = 0; o < blocks; o += 2048) expect((await d0.write(BigInt(1000 + o), data.subarray(o * 512, (o + 2048) * 512))).kind).toBe('good');
    const r = await d0.extendedCopy([{ from: d0, to: d1, sourceLba: 1000n, destinationLba: 5000n, blocks }], { listId: 7, hold: true });
    expect(r).toMatchObject({ kind: 'good' });
    expect((await readBack(d1, 5000n, blocks)).equals(data)).toBe(true);
    const st = await d0.receiveCopyStatus(7);
    expect(st.kind).toBe('good');
    if (st.kind === 'good') expect(st.value).toMatchObject({ status: CopyOperationStatus.CompletedGood, segmentsProcessed: 2 });
  });

  it('a segment past the end of the destination: COPY ABORTED with the sense decoded', async () => {
    const d0 = await open();
    const d1 = d0.on(1);
    await d1.testUnitReady();
    const cap = await d1.readCapacity16();
    const end = cap.kind === 'good' ? cap.value.blocks : 0n;
    const r = await d0.extendedCopy([{ from: d0, to: d1, sourceLba: 0n, destinationLba: end - 4n, blocks: 8 }]);
    expect(r.kind).toBe('check-condition');
    if (r.kind === 'check-condition') expect(r.sense?.key).toBe(0x0a);
  });

  it('the operating parameters come back decoded', async () => {
    const d = await open();
    const r = await d.receiveCopyOperatingParameters();
    expect(r.kind).toBe('good');
    if (r.kind === 'good') expect(r.value.maxSegmentDescriptors).toBeGreaterThan(0);
  });
});

describe('WRITE SAME and UNMAP', () => {
  it('WRITE SAME(16) of a pattern block over 1000 blocks', async () => {
    const d = await open();
    const block = pattern(512, 5);
    expect((await d.writeSame(2000n, 1000, block)).kind).toBe('good');
    const got = await readBack(d, 2000n, 1000);
    for (let i = 0; i < 1000; i++) expect(got.subarray(i * 512, i * 512 + 512).equals(block)).toBe(true);
  });

  it('WRITE SAME(16) with UNMAP of a zero block: the range reads zeros and is deallocated', async () => {
    const d = await open();
    await d.write(4096n, pattern(2048 * 512, 6));
    expect((await d.writeSame(4096n, 2048, Buffer.alloc(512), { unmap: true })).kind).toBe('good');
    expect((await readBack(d, 4096n, 2048)).equals(Buffer.alloc(2048 * 512))).toBe(true);
  });

  it('WRITE SAME(16) with NDOB and UNMAP: no data-out buffer, zeros', async () => {
    const d = await open();
    await d.write(8192n, pattern(64 * 512, 7));
    const r = await d.writeSame(8192n, 64, null, { ndob: true, unmap: true });
    expect(r.kind).toBe('good');
    expect((await readBack(d, 8192n, 64)).equals(Buffer.alloc(64 * 512))).toBe(true);
  });

  it('WRITE SAME(16) with ANCHOR: GOOD when the device says ANC_SUP, else ILLEGAL REQUEST INVALID FIELD IN CDB', async () => {
    const d = await open();
    const lbp = await d.logicalBlockProvisioning();
    expect(lbp.kind).toBe('good');
    const r = await d.writeSame(9000n, 16, Buffer.alloc(512), { unmap: true, anchor: true });
    if (lbp.kind === 'good' && lbp.value.ancSup) expect(r.kind).toBe('good');
    else expect(r.kind === 'check-condition' && r.sense).toMatchObject({ key: 5, asc: 0x24, reason: 'InvalidFieldInCdb', fieldPointer: { inCdb: true, byte: 1 } });
  });

  it('WRITE SAME without a pattern block needs NDOB: refused before anything is sent', async () => {
    const d = await open();
    const before = d.session.counters.commands;
    await expect(d.writeSame(0n, 1, null)).rejects.toThrow(RangeError);
    expect(d.session.counters.commands).toBe(before);
  });

  it('UNMAP of two ranges: they read zeros (LBPRZ), the block between keeps its data', async () => {
    const d = await open();
    const data = pattern(4096 * 512, 8);
    await d.write(12288n, data.subarray(0, 2048 * 512));
    await d.write(14336n, data.subarray(2048 * 512));
    const cap = await d.readCapacity16();
    expect(cap.kind === 'good' && cap.value.lbpme && cap.value.lbprz).toBe(true);
    expect((await d.unmap([{ lba: 12288n, blocks: 2048 }, { lba: 14336n + 2048n, blocks: 0 }, { lba: 15360n, blocks: 1024 }])).kind).toBe('good');
    const got = await readBack(d, 12288n, 4096);
    expect(got.subarray(0, 2048 * 512).equals(Buffer.alloc(2048 * 512))).toBe(true);
    expect(got.subarray(2048 * 512, 3072 * 512).equals(data.subarray(2048 * 512, 3072 * 512))).toBe(true);
    expect(got.subarray(3072 * 512).equals(Buffer.alloc(1024 * 512))).toBe(true);
  });
});
