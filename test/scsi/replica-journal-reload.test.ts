/**
 * The remote copy journal's undo log on disk, taken back after a restart (src/scsi/replica-journal.ts
 * reload, segments of src/splitter/undo-file.ts), on a file-backed LU of a target, in process:
 * - the last write-ahead run reached the volume in part: the records of it that did not (one
 *   written half) are rolled back, and the image at every older sequence is what it was;
 * - a torn tail (the last entry cut short, never synced) is cut, the entries before it kept;
 * - a corrupted entry in the middle (a flipped payload byte): the volume may hold records whose
 *   entries are cut with it, so the whole history goes (no image older than the present), never a
 *   wrong image; the same log without the flip keeps it (the control).
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { crc32c } from '../../protocol/iscsi/digest.ts';
import type { LogicalUnit } from '../../src/scsi/lu.ts';
import { ImageWindowError, ReplicaJournal } from '../../src/scsi/replica-journal.ts';
import { ScsiTarget } from '../../src/scsi/target.ts';
import { FileStore } from '../../src/store/file.ts';
import { pattern } from '../splitter/rig.ts';

const BS = 512;
/** Each record writes 4 blocks; record k (1-based) at LBA ((k - 1) % 4) * 4: k and k + 4 overlap. */
const BLOCKS = 4;
const lbaOf = (k: number) => BigInt(((k - 1) % 4) * 4);
const dataOf = (k: number) => pattern(BLOCKS * BS, 700 + k);

const dirs: string[] = [];
const closing: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const f of closing.splice(0)) await f();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function volume(dir: string): Promise<LogicalUnit> {
  const t = new ScsiTarget('iqn.2026-12.dev.arraysim:reload');
  const store = await FileStore.open(path.join(dir, 'vol.img'), { sizeBytes: 1 << 20, blockSize: BS });
  closing.push(async () => { await store.close(); });
  return t.addLun({ lun: 3, store, naa: '600140512345678901234567890abcde', serial: 'RELOAD' });
}

/** A journal over `lu` with its log in DIR/log, base 0, as a claim after SETBASE. */
async function journalOf(dir: string, lu: LogicalUnit): Promise<{ j: ReplicaJournal; r: Awaited<ReturnType<ReplicaJournal['reload']>> }> {
  const j = new ReplicaJournal();
  const r = await j.reload(path.join(dir, 'log'), (n) => (n === lu.lun ? lu : undefined));
  closing.push(async () => { await j.log?.close(); });
  return { j, r };
}

/** Records `from`..`to` as the receive queue applies them: one run (captured, one sync), then written; `written` of them reach the volume. */
async function run(j: ReplicaJournal, lu: LogicalUnit, from: number, to: number, written = to - from + 1): Promise<void> {
  for (let k = from; k <= to; k++) {
    await j.capture(k, lu, lu.store, lbaOf(k), BLOCKS, { prev: k - 1, kind: 'write', crc: crc32c(dataOf(k)) });
  }
  await j.ahead();
  for (let k = from; k < from + written; k++) await lu.store.write(lbaOf(k), dataOf(k));
}

/** What the volume holds at sequence `seq` (records 1..seq applied over zeros), blocks 0..20. */
function imageAt(seq: number): Buffer {
  const v = Buffer.alloc(20 * BS);
  for (let k = 1; k <= seq; k++) dataOf(k).copy(v, Number(lbaOf(k)) * BS);
  return v;
}

async function readImage(j: ReplicaJournal, lu: LogicalUnit, seq: number, applied: number): Promise<Buffer> {
  await j.present(lu, seq, false, applied);
  const d = Buffer.from(await lu.store.read(0n, 20));
  j.end();
  return d;
}

function fresh(): string {
  const d = mkdtempSync(path.join(tmpdir(), 'arraysim-rjr-'));
  dirs.push(d);
  return d;
}

/**
 * Base 0, records 1..6 each in its own run (written), then one run of 7 (LBA 8) and 8 (LBA 12, no
 * overlap) of which `lastRunWritten` reached the volume (1: and 8 in part); then the array stops.
 */
async function history(dir: string, lastRunWritten: number): Promise<void> {
  const lu = await volume(dir);
  const { j } = await journalOf(dir, lu);
  j.rebase(0);
  for (let k = 1; k <= 6; k++) await run(j, lu, k, k);
  // 7 at LBA 8 and 8 at LBA 12 do not overlap: one run.
  await run(j, lu, 7, 8, lastRunWritten);
  if (lastRunWritten === 1) await lu.store.write(lbaOf(8), dataOf(8).subarray(0, 3 * BS)); // 8 written in part
  await j.log!.close();
  j.log = null;
  await closing.splice(0).reduce((p, f) => p.then(f), Promise.resolve());
}

describe('remote copy journal: the undo log taken back after a restart', () => {
  it('the last run reached the volume in part: what did not is rolled back, every older image is exact', async () => {
    const dir = fresh();
    await history(dir, 1);
    const lu = await volume(dir);
    const { j, r } = await journalOf(dir, lu);
    expect(r).toMatchObject({ entries: 7, rolledBack: 1, floor: 0, applied: 7, dropped: null });
    expect((await lu.store.read(0n, 20)).equals(imageAt(7))).toBe(true);
    for (const seq of [0, 3, 6, 7]) expect((await readImage(j, lu, seq, 7)).equals(imageAt(seq)), `image at ${seq}`).toBe(true);
    expect(j.window()).toMatchObject({ oldestImage: 0, undoEntries: 7 });
  });

  it('the whole last run reached the volume: nothing is rolled back', async () => {
    const dir = fresh();
    await history(dir, 2);
    const lu = await volume(dir);
    const { j, r } = await journalOf(dir, lu);
    expect(r).toMatchObject({ entries: 8, rolledBack: 0, floor: 0, applied: 8 });
    expect((await readImage(j, lu, 5, 8)).equals(imageAt(5))).toBe(true);
  });

  it('a torn tail is cut at the last whole entry; the entries before it stay', async () => {
    const dir = fresh();
    await history(dir, 0);
    const seg = path.join(dir, 'log', readdirSync(path.join(dir, 'log')).sort().pop()!);
    truncateSync(seg, readFileSync(seg).length - 100); // record 8's entry cut short
    const lu = await volume(dir);
    const { j, r } = await journalOf(dir, lu);
    // 7 was captured in the run but not written: rolled back too.
    expect(r).toMatchObject({ entries: 6, rolledBack: 1, floor: 0, applied: 6, dropped: null });
    expect(j.log!.recovery.stop).toBe('short-piece');
    expect((await readImage(j, lu, 2, 6)).equals(imageAt(2))).toBe(true);
  });

  it('a corrupted entry in the middle: the history goes (the volume may hold the records cut with it), no image older than the present', async () => {
    const dir = fresh();
    await history(dir, 2);
    const seg = path.join(dir, 'log', readdirSync(path.join(dir, 'log')).sort().pop()!);
    const buf = readFileSync(seg);
    // The third entry's record piece (its payload, the sequence before it): flip one byte (its CRC no longer matches).
    let pos = 0;
    for (let e = 0; e < 2; e++) pos = nextEntry(buf, pos);
    buf[pos + 40 + 5] ^= 0xff;
    writeFileSync(seg, buf);
    const lu = await volume(dir);
    const { j, r } = await journalOf(dir, lu);
    expect(r.dropped).toMatch(/bad-checksum/);
    expect(r).toMatchObject({ entries: 0, floor: null, applied: null });
    expect(j.window()).toMatchObject({ oldestImage: null, undoEntries: 0 });
    await expect(j.present(lu, 3, false, 8)).rejects.toBeInstanceOf(ImageWindowError);
    // The volume is left as it was (production sets the base again).
    expect((await lu.store.read(0n, 20)).equals(imageAt(8))).toBe(true);
    expect(readdirSync(path.join(dir, 'log'))).toEqual([]);
  });
});

/** The offset of the entry after the one at `pos` (pieces up to the one flagged last). */
function nextEntry(buf: Buffer, pos: number): number {
  for (;;) {
    const len = buf.readUInt32LE(pos + 4);
    const last = (buf[pos + 12] & 2) !== 0;
    pos += len;
    if (last) return pos;
  }
}
