/**
 * Undo data on disk (src/splitter/undo-file.ts): the segments of one copy's undo stream in process
 * (round trip, a torn tail, a corrupted entry, rotation, dropBefore, truncateAfter, clear), then a
 * file-journaled group across a clean restart: images older than the restart stay reachable, and
 * a checkpoint behind the undo entries is rolled back to before the journal is re-applied.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ScsiDevice } from '../../src/initiator/index.ts';
import type { ConsistencyGroup } from '../../src/splitter/group.ts';
import { disableImageAccess, enableImageAccess } from '../../src/splitter/image.ts';
import { scanUndoSegment, UNDO_HEADER_BYTES, UndoLog } from '../../src/splitter/undo-file.ts';
import type { UndoPiece } from '../../src/splitter/undo.ts';
import { verifyGroup } from '../../src/splitter/verify.ts';
import { fileJournalArray } from './rig.ts';

const dirs: string[] = [];
function tmp(): string {
  const d = mkdtempSync(path.join(tmpdir(), 'arraysim-undo-'));
  dirs.push(d);
  return d;
}
afterEach(() => { for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true }); });

/** Record `seq`'s before-image: 8 blocks of 512 bytes holding seq, then (odd seq) 8 deallocated blocks. */
function pieces(seq: number): UndoPiece[] {
  const p: UndoPiece[] = [{ lba: BigInt(seq * 16), blocks: 8, data: Buffer.alloc(4096, seq & 0xff) }];
  if (seq % 2) p.push({ lba: BigInt(seq * 16 + 8), blocks: 8, data: null });
  return p;
}
/** Bytes of entry `seq` on disk. */
const entryBytes = (seq: number) => pieces(seq).reduce((n, p) => n + UNDO_HEADER_BYTES + (p.data?.length ?? 0), 0);

async function write(dir: string, from: number, to: number, o: { segmentBytes?: number } = {}): Promise<UndoLog> {
  const log = await UndoLog.open(dir, o);
  for (let s = from; s <= to; s++) { log.append(s, s % 3, pieces(s)); if (s % 2 === 0) await log.sync(); }
  await log.sync();
  return log;
}

const seqs = (log: UndoLog) => log.found.map((e) => e.seq);
const segFiles = (d: string) => readdirSync(d).filter((n) => n.endsWith('.undo')).sort();

describe('UndoLog: one copy\'s undo segments', () => {
  it('reopens with every entry, its set, pieces, data and deallocated runs', async () => {
    const d = tmp();
    await (await write(d, 1, 9)).close();
    const k = await UndoLog.open(d);
    expect(k.recovery).toEqual({ segments: 1, entries: 9, truncatedBytes: 0, stop: null, lostSegments: 0 });
    expect(seqs(k)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
    for (const e of k.found) {
      expect(e.set).toBe(e.seq % 3);
      expect(e.pieces.map((p) => ({ lba: p.lba, blocks: p.blocks, data: p.data && Buffer.from(p.data) }))).toEqual(pieces(e.seq));
    }
    await k.close();
  });

  it('marks the first entry after a clear as the base of the history (older entries a crash left stay out of it)', async () => {
    const d = tmp();
    const log = await write(d, 1, 4);
    await log.clear();
    log.append(5, 0, pieces(5));
    log.append(6, 0, pieces(6));
    await log.close();
    let k = await UndoLog.open(d);
    expect(k.found.map((e) => [e.seq, e.base])).toEqual([[5, true], [6, false]]);
    // truncateAfter down to nothing: the next entry is a base again (DurableUndoStream sets it).
    await k.truncateAfter(4);
    k.base = true;
    k.append(5, 0, pieces(5));
    await k.close();
    k = await UndoLog.open(d);
    expect(k.found.map((e) => [e.seq, e.base])).toEqual([[5, true]]);
    await k.close();
  });

  it('cuts a torn tail back to the last whole entry: mid-piece, and between two pieces of one entry', async () => {
    const d = tmp();
    await (await write(d, 1, 5)).close();
    const [seg] = segFiles(d);
    const file = path.join(d, seg);
    const upTo4 = [1, 2, 3, 4].reduce((n, s) => n + entryBytes(s), 0);
    // Entry 5 has two pieces: cut after its first (a whole piece, but not the entry's last).
    truncateSync(file, upTo4 + UNDO_HEADER_BYTES + 4096);
    let k = await UndoLog.open(d);
    expect(k.recovery).toMatchObject({ entries: 4, stop: 'torn-entry', truncatedBytes: UNDO_HEADER_BYTES + 4096, lostSegments: 0 });
    expect(statSync(file).size).toBe(upTo4);
    // Appending goes on after the cut; then cut in the middle of entry 6's payload.
    k.append(5, 2, pieces(5));
    k.append(6, 0, pieces(6));
    await k.close();
    truncateSync(file, statSync(file).size - 100);
    k = await UndoLog.open(d);
    expect(k.recovery).toMatchObject({ entries: 5, stop: 'short-piece' });
    expect(seqs(k)).toEqual([1, 2, 3, 4, 5]);
    await k.close();
  });

  it('cuts at a corrupted entry (a flipped payload byte): that entry and the rest go', async () => {
    const d = tmp();
    await (await write(d, 1, 6)).close();
    const file = path.join(d, segFiles(d)[0]);
    const buf = readFileSync(file);
    const at3 = entryBytes(1) + entryBytes(2);
    buf[at3 + UNDO_HEADER_BYTES + 17] ^= 0x40;
    writeFileSync(file, buf);
    const k = await UndoLog.open(d);
    expect(k.recovery).toMatchObject({ entries: 2, stop: 'bad-checksum', truncatedBytes: buf.length - at3, lostSegments: 0 });
    await k.close();
  });

  it('rotates segments; dropBefore deletes a segment once all its entries are gone, never the current one', async () => {
    const d = tmp();
    const log = await write(d, 1, 20, { segmentBytes: 3 * 4096 });
    const files = segFiles(d);
    expect(files.length).toBeGreaterThan(3);
    expect(files[0]).toBe('0000000000000001.undo');
    const firstOf = (name: string) => scanUndoSegment(readFileSync(path.join(d, name))).entries[0].seq;
    const second = firstOf(files[1]);
    expect(second).toBeGreaterThan(1);
    log.dropBefore(second); // the first segment's entries are all older
    log.dropBefore(second + 1); // the second still holds `second`
    await log.settled();
    expect(segFiles(d)).toEqual(files.slice(1));
    log.dropBefore(1_000);
    await log.close();
    expect(segFiles(d)).toEqual(files.slice(-1));
    const k = await UndoLog.open(d, { segmentBytes: 3 * 4096 });
    expect(seqs(k)[seqs(k).length - 1]).toBe(20);
    await k.close();
  });

  it('a corrupted entry in an earlier segment loses the later segments, and says so', async () => {
    const d = tmp();
    await (await write(d, 1, 12, { segmentBytes: 3 * 4096 })).close();
    const files = segFiles(d);
    const file = path.join(d, files[0]);
    const buf = readFileSync(file);
    buf[UNDO_HEADER_BYTES + 3] ^= 1;
    writeFileSync(file, buf);
    const k = await UndoLog.open(d);
    expect(k.recovery).toMatchObject({ entries: 0, stop: 'bad-checksum', lostSegments: files.length - 1 });
    expect(segFiles(d)).toEqual([]);
    await k.close();
  });

  it('truncateAfter cuts within a segment and deletes the later ones, queued entries too; appends go on from there', async () => {
    const d = tmp();
    const log = await write(d, 1, 20, { segmentBytes: 3 * 4096 });
    const before = segFiles(d);
    log.append(21, 0, pieces(21)); // queued, never synced
    // 7 is in the middle of a segment (the first segment holds 1-3 at least).
    await log.truncateAfter(7);
    const kept = segFiles(d);
    expect(kept.length).toBeLessThan(before.length);
    log.append(8, 2, pieces(8));
    await log.close();
    const k = await UndoLog.open(d);
    expect(k.recovery.stop).toBeNull();
    expect(seqs(k)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    await k.clear();
    expect(segFiles(d)).toEqual([]);
    k.append(30, 0, pieces(30));
    await k.close();
    // Segment files are numbered, not named after a sequence (a sequence cut comes again).
    expect(segFiles(d).map((n) => scanUndoSegment(readFileSync(path.join(d, n))).entries.map((e) => e.seq))).toEqual([[30]]);
  });
});

/** A file-journaled group on a 4 MiB file LUN (512-byte blocks), started and stopped in process. */
const groupRig = () => fileJournalArray(tmp(), 'iqn.2026-12.dev.arraysim:undo');

/** 40 writes of 8 KiB (16 blocks) at LBA i*16, each filled with `fill + i`; then the copy has them all. */
async function writeRound(url: string, g: ConsistencyGroup, fill: number): Promise<void> {
  const dev = await ScsiDevice.open(url);
  try {
    await dev.readCapacity16(); // the power-on unit attention
    for (let i = 0; i < 40; i++) expect((await dev.write(BigInt(i * 16), Buffer.alloc(8192, fill + i))).kind).toBe('good');
  } finally {
    await dev.close();
  }
  await g.catchUp(g.copy());
}

/** What the copy's replica holds at slot i (LBA i*16, 16 blocks): the fill byte, or -1 when mixed. */
async function slot(g: ConsistencyGroup, i: number): Promise<number> {
  const b = await g.copy().replicas[0].read(BigInt(i * 16), 16);
  return b.every((x) => x === b[0]) ? b[0] : -1;
}

/**
 * History, then a clean stop: 40 writes (fill 10+i), bookmark b1, 40 more over the same slots
 * (fill 100+i); 80 records, each with its undo entry. Returns b1 and the last sequence.
 */
async function historyThenStop(rig: ReturnType<typeof groupRig>): Promise<{ b1: { seq: number; time: string }; last: number }> {
  const { a, g, url } = await rig.start();
  await writeRound(url, g, 10);
  const b1 = g.bookmark('b1');
  await writeRound(url, g, 100);
  expect(g.copy().undo.length).toBe(80);
  const last = g.journal.nextSeq - 1;
  await a.stop();
  return { b1, last };
}

describe('a file-journaled group keeps its undo data on disk across a clean restart', () => {
  it('an image bookmarked before the restart is reached after it, and reads the bookmark\'s data', async () => {
    const rig = groupRig();
    const { b1 } = await historyThenStop(rig);
    expect(readdirSync(path.join(rig.journal, 'local.undo')).length).toBeGreaterThan(0);

    const { a, g, url } = await rig.start();
    try {
      expect(g.recovery).toMatchObject({ reapplied: 0, sweep: false });
      expect(g.bookmarks.get('b1')).toEqual({ seq: b1.seq, time: b1.time });
      const c = g.copy();
      expect(c.undo.length).toBe(80);
      expect(g.status().copies[0].oldestImageSeq).toBe(0);
      await enableImageAccess(g, c, 'b1', 'logged');
      for (let i = 0; i < 40; i++) expect(await slot(g, i)).toBe(10 + i);
      await disableImageAccess(g, c, true);
      // Writes after the restart keep adding to the same history.
      await writeRound(url, g, 50);
      await enableImageAccess(g, c, 'b1', 'virtual');
      const dev = await ScsiDevice.open(url.replace(':undo/0', ':undo-local/0'));
      try {
        await dev.readCapacity16().catch(() => {});
        const r = await dev.read(0n, 40 * 16);
        if (r.kind !== 'good') throw new Error(`read: ${r.kind}`);
        const data = r.value;
        for (let i = 0; i < 40; i++) expect(data.subarray(i * 8192, (i + 1) * 8192).every((x) => x === 10 + i)).toBe(true);
      } finally {
        await dev.close();
      }
      await disableImageAccess(g, c, true);
      expect((await verifyGroup(g)).consistent).toBe(true);
    } finally {
      await a.stop();
    }
  }, 60_000);

  it('negative control: without the undo segments, the image before the restart is refused', async () => {
    const rig = groupRig();
    await historyThenStop(rig);
    rmSync(path.join(rig.journal, 'local.undo'), { recursive: true });
    const { a, g } = await rig.start();
    try {
      await expect(enableImageAccess(g, g.copy(), 'b1', 'logged')).rejects.toThrow(/became an image of production at seq 80/);
    } finally {
      await a.stop();
    }
  }, 60_000);

  it('a checkpoint behind the undo entries: the replica is rolled back to it, the journal re-applied, the images stay exact', async () => {
    const rig = groupRig();
    const { b1 } = await historyThenStop(rig);
    // As if the stop came after the replica writes and their undo entries, before the checkpoint
    // moved: the checkpoint names a record before the bookmark.
    const cpFile = path.join(rig.journal, 'copy-local.json');
    writeFileSync(cpFile, JSON.stringify({ appliedSeq: b1.seq - 5, initialized: true }) + '\n');
    const { a, g } = await rig.start();
    try {
      expect(g.recovery).toMatchObject({ reapplied: 45, sweep: false });
      const c = g.copy();
      expect(c.undo.length).toBe(80);
      for (let i = 0; i < 40; i++) expect(await slot(g, i)).toBe(100 + i);
      await enableImageAccess(g, c, 'b1', 'logged');
      for (let i = 0; i < 40; i++) expect(await slot(g, i)).toBe(10 + i);
      await disableImageAccess(g, c, true);
      await enableImageAccess(g, c, `seq:${b1.seq - 10}`, 'logged');
      for (let i = 0; i < 40; i++) expect(await slot(g, i)).toBe(i < 30 ? 10 + i : 0);
      await disableImageAccess(g, c, true);
      expect((await verifyGroup(g)).consistent).toBe(true);
    } finally {
      await a.stop();
    }
  }, 60_000);

  it('after an unclean stop the sweep journals what differs: the images before the stop stay, and roll the sweep back too', async () => {
    const rig = groupRig();
    const { b1, last } = await historyThenStop(rig);
    // As after a crash: the `open` marker is still there, the checkpoint is behind the undo
    // entries, and production holds a write whose record never became durable (slot 7).
    writeFileSync(path.join(rig.journal, 'open'), '1\n');
    writeFileSync(path.join(rig.journal, 'copy-local.json'), JSON.stringify({ appliedSeq: b1.seq - 5, initialized: true }) + '\n');
    const prod = readFileSync(path.join(rig.dir, 'prod.img'));
    prod.fill(0xee, 7 * 16 * 512, 8 * 16 * 512);
    writeFileSync(path.join(rig.dir, 'prod.img'), prod);
    const { a, g } = await rig.start();
    try {
      expect(g.recovery).toMatchObject({ reapplied: 45, sweep: true, imagesKept: true });
      // One 1 MiB region differed: it is one journal record after the last one before the stop.
      expect(g.status().initialization).toMatchObject({ kind: 'full-sweep', regions: 1, done: true });
      expect(g.journal.nextSeq - 1).toBe(last + 1);
      // Checkpointed as initialized at once: a second crash before any write keeps the history too.
      expect(JSON.parse(readFileSync(path.join(rig.journal, 'copy-local.json'), 'utf8'))).toEqual({ appliedSeq: last + 1, initialized: true });
      const c = g.copy();
      expect(c.undo.length).toBe(81);
      expect(await slot(g, 7)).toBe(0xee);
      expect((await verifyGroup(g)).consistent).toBe(true);
      await enableImageAccess(g, c, `seq:${last}`, 'logged');
      for (let i = 0; i < 40; i++) expect(await slot(g, i)).toBe(100 + i);
      await disableImageAccess(g, c, true);
      await enableImageAccess(g, c, 'b1', 'virtual');
      await disableImageAccess(g, c, true);
      await enableImageAccess(g, c, 'b1', 'logged');
      for (let i = 0; i < 40; i++) expect(await slot(g, i)).toBe(10 + i);
      await disableImageAccess(g, c, true);
      await g.catchUp(c);
      expect(await slot(g, 7)).toBe(0xee);
      expect((await verifyGroup(g)).consistent).toBe(true);
    } finally {
      await a.stop();
    }
  }, 60_000);
});
