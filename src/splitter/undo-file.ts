/**
 * The undo stream of a file-journaled group's local copy, on disk (RecoverPoint keeps it in the
 * copy journal): append-only segments beside the group's journal, so that the images older than a
 * restart stay reachable after it. The in-memory UndoStream (undo.ts) stays what image access
 * reads; DurableUndoStream mirrors every change of it into the segments, and recovery loads the
 * segments back into it (the data too: a running copy holds its undo data in memory already, so a
 * restarted one holds what it held before the stop, and image.ts / image-map.ts read it as they do
 * now, synchronously).
 *
 * Write-ahead, the rule that makes it safe: a record's before-image is durable before the replica
 * block it saves is overwritten. The distributor captures the before-images of a run of records
 * whose extents do not overlap, makes them durable with one fdatasync, then writes the replicas
 * (applyWriteAhead); a lone apply (image access rolling forward) syncs its own entry. So after a
 * crash every replica block changed since the copy's checkpoint has its before-image on disk, and
 * recovery can roll the replica back to the checkpoint exactly before re-applying the journal.
 *
 * On disk (folder DIR/<copy>.undo):
 *   <ordinal, 16 digits>.undo                  segments, appended to; a new one once the current
 *                                             one passes `segmentBytes`; deleted once all its
 *                                             entries are dropped (dropBefore); cut back by
 *                                             truncateAfter; all deleted by clear()
 * An entry is one record's before-image: one or more pieces (runs that were allocated, with their
 * bytes, or deallocated, without), each a 40-byte header then its payload (little-endian):
 *    0 u32 magic "ASUN"             12 u8 flags (bit 0: deallocated, bit 1: the entry's last piece,
 *                                              bit 2: the first entry after the image floor)
 *    4 u32 length (header+payload)  14 u16 replication set     24 u64 lba     36 u32 payload length
 *    8 u32 CRC32C of bytes 12..len  16 u64 sequence            32 u32 blocks
 * An entry counts only once its last piece is whole: a torn tail is cut back to the last whole entry.
 *
 * The remote site's copy journal (src/scsi/replica-journal.ts) keeps its undo log in the same
 * segments, with one more piece first in each entry, the record itself (flag bit 3): `set` is the
 * LUN, lba and blocks the record's extent, byte 13 its kind (1 write, 2 write same, 3 deallocate),
 * and a payload of u64 the sequence shipped before it, u32 CRC32C of the data it writes (write),
 * u32 flags (bit 0: the first entry of a write-ahead run), then the block a write same repeats.
 * The remote receives records one after another, so recovery takes the entries whose `prev`
 * chains them, and checks the last run's extents against what they wrote (replica-journal.ts).
 *
 * The oldest image reachable is not stored apart: every record after the image floor gets an
 * entry, the first of them marked `base`, so recovery takes the run of consecutive sequences that
 * ends at the newest entry and starts no earlier than the last base (recoverUndo in recovery.ts):
 * floor = its first sequence - 1. Entries of an earlier history whose deletion a crash cut short
 * stay out of it.
 */
import { promises as fsp } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { crc32c } from '../../protocol/iscsi/digest.ts';
import type { LocalCopy } from './copy.ts';
import { syncDir } from '../store/durable.ts';
import { writevAt } from './journal-file.ts';
import type { JournalRecord } from './journal.ts';
import { UndoStream } from './undo.ts';
import type { UndoPiece } from './undo.ts';

export const UNDO_HEADER_BYTES = 40;
const MAGIC = 0x4e555341; // "ASUN" read as little-endian u32
const DEALLOCATED = 1;
const LAST = 2;
/** The first entry after the image floor (the stream was cleared, or cut back to nothing, before it). */
const BASE = 4;
/** The piece is the record itself (the remote copy journal's entries: RecordMeta), not undo data. */
const META = 8;
const META_PAYLOAD = 16;
const META_KINDS = ['write', 'same', 'deallocate'] as const;
/** A piece is at most one record's extent: 1 GiB of payload. */
const MAX_PIECE = (1 << 30) + UNDO_HEADER_BYTES;
/** A write-ahead run ends at this many records, or this many bytes of before-images held for it. */
export const AHEAD_RECORDS = 256;
export const AHEAD_BYTES = 32 << 20;

/** The header of one piece of record `seq`'s before-image, checksum included. */
export function encodePiece(seq: number, set: number, p: UndoPiece, last: boolean, base = false): Buffer {
  const payload = p.data?.length ?? 0;
  const h = Buffer.allocUnsafe(UNDO_HEADER_BYTES);
  h.writeUInt32LE(MAGIC, 0);
  h.writeUInt32LE(UNDO_HEADER_BYTES + payload, 4);
  h.writeUInt8((p.data ? 0 : DEALLOCATED) | (last ? LAST : 0) | (base ? BASE : 0), 12);
  h.writeUInt8(0, 13);
  h.writeUInt16LE(set, 14);
  h.writeBigUInt64LE(BigInt(seq), 16);
  h.writeBigUInt64LE(p.lba, 24);
  h.writeUInt32LE(p.blocks, 32);
  h.writeUInt32LE(payload, 36);
  let crc = crc32c(h.subarray(12));
  if (payload) crc = crc32c(p.data!, crc);
  h.writeUInt32LE(crc, 8);
  return h;
}

/**
 * A REPLICA RECORD as the remote copy journal notes it beside its before-image: enough to chain
 * the entries (prev) and to tell after a crash whether the record reached the volume (the CRC of
 * what a write wrote, the block a write same repeats; a deallocated range reads zeros).
 */
export interface RecordMeta {
  prev: number;
  lun: number;
  lba: bigint;
  blocks: number;
  kind: typeof META_KINDS[number];
  /** CRC32C of the data a write wrote (0 otherwise). */
  crc: number;
  /** The block a write same repeats. */
  block?: Buffer;
  /** The first entry of a write-ahead run (its before-images made durable by one fdatasync). */
  run: boolean;
}

function encodeMeta(seq: number, m: RecordMeta, base: boolean): Buffer[] {
  const payload = Buffer.alloc(META_PAYLOAD);
  payload.writeBigUInt64LE(BigInt(m.prev), 0);
  payload.writeUInt32LE(m.crc >>> 0, 8);
  payload.writeUInt32LE(m.run ? 1 : 0, 12);
  const data = m.block ? [payload, m.block] : [payload];
  const len = data.reduce((a, b) => a + b.length, 0);
  const h = Buffer.allocUnsafe(UNDO_HEADER_BYTES);
  h.writeUInt32LE(MAGIC, 0);
  h.writeUInt32LE(UNDO_HEADER_BYTES + len, 4);
  h.writeUInt8(META | (base ? BASE : 0), 12);
  h.writeUInt8(META_KINDS.indexOf(m.kind) + 1, 13);
  h.writeUInt16LE(m.lun, 14);
  h.writeBigUInt64LE(BigInt(seq), 16);
  h.writeBigUInt64LE(m.lba, 24);
  h.writeUInt32LE(m.blocks, 32);
  h.writeUInt32LE(len, 36);
  let crc = crc32c(h.subarray(12));
  for (const d of data) crc = crc32c(d, crc);
  h.writeUInt32LE(crc, 8);
  return [h, ...data];
}

function decodeMeta(buf: Buffer, pos: number, len: number): RecordMeta | null {
  const kind = META_KINDS[buf.readUInt8(pos + 13) - 1];
  if (!kind || len < UNDO_HEADER_BYTES + META_PAYLOAD) return null;
  const p = pos + UNDO_HEADER_BYTES;
  return {
    prev: Number(buf.readBigUInt64LE(p)), lun: buf.readUInt16LE(pos + 14), lba: buf.readBigUInt64LE(pos + 24), blocks: buf.readUInt32LE(pos + 32),
    kind, crc: buf.readUInt32LE(p + 8), run: (buf.readUInt32LE(p + 12) & 1) !== 0,
    block: len > UNDO_HEADER_BYTES + META_PAYLOAD ? buf.subarray(p + META_PAYLOAD, pos + len) : undefined,
  };
}

export type UndoScanStop = 'short-header' | 'bad-magic' | 'bad-length' | 'short-piece' | 'bad-checksum' | 'out-of-order' | 'torn-entry';

/** A whole entry found in a segment, at byte `offset`; `base`: the first after the image floor; `meta`: the record (remote copy journal). */
export interface ScannedEntry { seq: number; set: number; pieces: UndoPiece[]; offset: number; base: boolean; meta?: RecordMeta }

/**
 * The whole entries at the start of `buf` (a segment's bytes), in order, each with a sequence
 * above the one before (and above `after`); `end` is where the valid prefix ends. Pieces' data
 * are views of `buf`.
 */
export function scanUndoSegment(buf: Buffer, after = 0): { entries: ScannedEntry[]; end: number; stop: UndoScanStop | null } {
  const entries: ScannedEntry[] = [];
  let pos = 0, end = 0;
  let stop: UndoScanStop | null = null;
  let open: ScannedEntry | null = null;
  while (pos < buf.length) {
    if (buf.length - pos < UNDO_HEADER_BYTES) { stop = 'short-header'; break; }
    if (buf.readUInt32LE(pos) !== MAGIC) { stop = 'bad-magic'; break; }
    const len = buf.readUInt32LE(pos + 4);
    const payload = buf.readUInt32LE(pos + 36);
    const flags = buf.readUInt8(pos + 12);
    const meta = (flags & META) !== 0;
    if (len < UNDO_HEADER_BYTES || len > MAX_PIECE || len !== UNDO_HEADER_BYTES + payload || (!meta && ((flags & DEALLOCATED) !== 0) !== (payload === 0))) { stop = 'bad-length'; break; }
    if (pos + len > buf.length) { stop = 'short-piece'; break; }
    if (crc32c(buf.subarray(pos + 12, pos + len)) !== buf.readUInt32LE(pos + 8)) { stop = 'bad-checksum'; break; }
    const seq = Number(buf.readBigUInt64LE(pos + 16));
    const set = buf.readUInt16LE(pos + 14);
    if (meta) {
      // The record comes first in its entry, and opens it.
      const m: RecordMeta | null = open || seq <= after ? null : decodeMeta(buf, pos, len);
      if (!m) { stop = open || seq <= after ? 'out-of-order' : 'bad-length'; break; }
      open = { seq, set, pieces: [], offset: pos, base: (flags & BASE) !== 0, meta: m };
      pos += len;
      continue;
    }
    if (open ? seq !== open.seq || (!open.meta && set !== open.set) : seq <= after) { stop = 'out-of-order'; break; }
    open ??= { seq, set, pieces: [], offset: pos, base: (flags & BASE) !== 0 };
    open.pieces.push({
      lba: buf.readBigUInt64LE(pos + 24), blocks: buf.readUInt32LE(pos + 32),
      data: payload ? buf.subarray(pos + UNDO_HEADER_BYTES, pos + len) : null,
    });
    pos += len;
    if (flags & LAST) { entries.push(open); after = open.seq; open = null; end = pos; }
  }
  if (!stop && open) stop = 'torn-entry';
  return { entries, end, stop };
}

/** What opening the segments found and did. */
export interface UndoRecovery {
  segments: number;
  entries: number;
  /** Bytes cut off (a torn or bad entry and whatever followed it). */
  truncatedBytes: number;
  /** Why the scan stopped early: a torn tail of the last segment (never synced, so no replica write followed it), or worse. */
  stop: UndoScanStop | null;
  /**
   * Segments deleted whole because an earlier one stopped early: the entries lost were durable
   * (a segment is only left for the next once synced), so their records may be on the replica.
   */
  lostSegments: number;
}

interface UndoSegment {
  /** Its file: an ordinal, 16 digits (a sequence cut by truncateAfter comes again, in a new file). */
  name: string;
  firstSeq: number;
  lastSeq: number;
  bytes: number;
  /** Each entry's sequence and its offset in the segment (truncateAfter cuts there). */
  seqs: number[];
  offsets: number[];
}

const undoSegName = (ordinal: number) => `${String(ordinal).padStart(16, '0')}.undo`;

/** One copy's undo segments: appends queued, made durable by sync(); drops, cuts and clears in the same order. */
export class UndoLog {
  private fh: FileHandle | null = null;
  /** Entries queued since the last sync: their buffers, and per entry its sequence, first buffer and bytes. */
  private queue: Buffer[] = [];
  private queued: Array<{ seq: number; at: number; bytes: number }> = [];
  /** Every file operation, one after the other. */
  private ops: Promise<void> = Promise.resolve();
  private failed: Error | null = null;
  /** fdatasyncs made (write-ahead runs, lone applies). */
  syncs = 0;
  /** The next entry appended is the first after the image floor (flag BASE). */
  base = false;

  /** The next segment's ordinal. */
  private ordinal = 1;

  private constructor(readonly dir: string, private readonly segments: UndoSegment[], readonly segmentBytes: number,
    /** The entries found at open (recovery adopts them, then they are released here). */
    public found: ScannedEntry[], readonly recovery: UndoRecovery) {}

  /** Open (creating) `dir`: scan the segments, cut the first torn or bad entry and all after it. */
  static async open(dir: string, o: { segmentBytes?: number } = {}): Promise<UndoLog> {
    await fsp.mkdir(dir, { recursive: true });
    const names = (await fsp.readdir(dir)).filter((n) => /^\d{16}\.undo$/.test(n)).sort();
    const rec: UndoRecovery = { segments: 0, entries: 0, truncatedBytes: 0, stop: null, lostSegments: 0 };
    const segs: UndoSegment[] = [];
    const found: ScannedEntry[] = [];
    for (const name of names) {
      const file = path.join(dir, name);
      if (rec.stop) {
        rec.truncatedBytes += (await fsp.stat(file)).size;
        rec.lostSegments++;
        await fsp.unlink(file);
        continue;
      }
      const buf = await fsp.readFile(file);
      const s = scanUndoSegment(buf, found.length ? found[found.length - 1].seq : 0);
      if (s.stop) {
        rec.stop = s.stop;
        rec.truncatedBytes += buf.length - s.end;
        const fh = await fsp.open(file, 'r+');
        try { await fh.truncate(s.end); await fh.datasync(); } finally { await fh.close(); }
      }
      if (!s.entries.length) { await fsp.unlink(file); continue; }
      found.push(...s.entries);
      segs.push({
        name, firstSeq: s.entries[0].seq, lastSeq: s.entries[s.entries.length - 1].seq, bytes: s.end,
        seqs: s.entries.map((e) => e.seq), offsets: s.entries.map((e) => e.offset),
      });
    }
    rec.segments = segs.length;
    rec.entries = found.length;
    const log = new UndoLog(dir, segs, o.segmentBytes ?? 16 << 20, found, rec);
    log.ordinal = names.length ? Number(names[names.length - 1].slice(0, 16)) + 1 : 1;
    const last = segs[segs.length - 1];
    if (last) log.fh = await fsp.open(path.join(dir, last.name), 'r+');
    return log;
  }

  get segmentCount(): number { return this.segments.length; }
  get fileBytes(): number { return this.segments.reduce((a, s) => a + s.bytes, 0); }

  private chain(op: () => Promise<void>): Promise<void> {
    const run = this.ops.then(() => {
      if (this.failed) throw this.failed;
      return op();
    }).catch((err: Error) => { this.failed ??= new Error(`undo log ${this.dir}: ${err.message}`); throw this.failed; });
    this.ops = run.catch(() => {});
    return run;
  }

  /** Queue record `seq`'s before-image (written at the next sync); `meta`: the record itself, first (the remote copy journal). */
  append(seq: number, set: number, pieces: readonly UndoPiece[], meta?: RecordMeta): void {
    const at = this.queue.length;
    let bytes = 0;
    if (meta) {
      for (const b of encodeMeta(seq, meta, this.base)) { this.queue.push(b); bytes += b.length; }
      this.base = false;
    }
    // A record with an empty extent saves nothing, but keeps the run of sequences whole.
    const ps = pieces.length ? pieces : [{ lba: 0n, blocks: 0, data: null }];
    for (const [i, p] of ps.entries()) {
      this.queue.push(encodePiece(seq, set, p, i === ps.length - 1, this.base && i === 0));
      bytes += UNDO_HEADER_BYTES;
      if (p.data) { this.queue.push(p.data); bytes += p.data.length; }
    }
    this.queued.push({ seq, at, bytes });
    this.base = false;
  }

  /** Whether entries wait for a sync. */
  get pending(): boolean { return this.queued.length > 0; }

  /** Write the queued entries and fdatasync them (settles at once when none is queued). */
  sync(): Promise<void> {
    if (!this.queued.length) return this.ops.then(() => { if (this.failed) throw this.failed; });
    const bufs = this.queue, entries = this.queued;
    this.queue = [];
    this.queued = [];
    return this.chain(async () => {
      let seg = this.segments[this.segments.length - 1];
      if (!seg || !this.fh || seg.bytes >= this.segmentBytes) {
        await this.fh?.close();
        seg = { name: undoSegName(this.ordinal++), firstSeq: entries[0].seq, lastSeq: entries[0].seq - 1, bytes: 0, seqs: [], offsets: [] };
        this.fh = await fsp.open(path.join(this.dir, seg.name), 'w+');
        this.segments.push(seg);
        await syncDir(this.dir);
      }
      const pos = await writevAt(this.fh, bufs, seg.bytes);
      await this.fh.datasync();
      this.syncs++;
      let off = seg.bytes;
      for (const e of entries) { seg.seqs.push(e.seq); seg.offsets.push(off); off += e.bytes; }
      seg.bytes = pos;
      seg.lastSeq = entries[entries.length - 1].seq;
    });
  }

  /** Delete the segments whose entries all have seq < `seq` (never the one being written). */
  dropBefore(seq: number): void {
    while (this.segments.length > 1 && this.segments[0].lastSeq < seq) {
      const s = this.segments.shift()!;
      void this.chain(() => fsp.unlink(path.join(this.dir, s.name))).catch(() => {});
    }
  }

  /** Cut every entry with seq > `seq`: queued ones are forgotten, segments truncated or deleted (durably). */
  truncateAfter(seq: number): Promise<void> {
    const keep = this.queued.findIndex((e) => e.seq > seq);
    if (keep >= 0) { this.queue.length = this.queued[keep].at; this.queued.length = keep; }
    const gone: string[] = [];
    let cut: { name: string; at: number } | null = null;
    while (this.segments.length && this.segments[this.segments.length - 1].lastSeq > seq) {
      const s = this.segments[this.segments.length - 1];
      const i = s.seqs.findIndex((x) => x > seq);
      if (i > 0) {
        cut = { name: s.name, at: s.offsets[i] };
        s.bytes = s.offsets[i];
        s.seqs.length = s.offsets.length = i;
        s.lastSeq = s.seqs[i - 1];
        break;
      }
      this.segments.pop();
      gone.push(s.name);
    }
    if (!gone.length && !cut) return this.settled();
    const current = this.segments[this.segments.length - 1];
    return this.chain(async () => {
      await this.fh?.close();
      this.fh = null;
      for (const name of gone) await fsp.unlink(path.join(this.dir, name));
      if (cut) {
        const fh = await fsp.open(path.join(this.dir, cut.name), 'r+');
        try { await fh.truncate(cut.at); await fh.datasync(); } finally { await fh.close(); }
      }
      if (gone.length) await syncDir(this.dir);
      // Appends go on in the last segment kept.
      if (current) this.fh = await fsp.open(path.join(this.dir, current.name), 'r+');
    });
  }

  /** Everything goes (direct access, a synchronization, a disabled copy): the segments are deleted. */
  clear(): Promise<void> {
    this.queue = [];
    this.queued = [];
    this.base = true;
    const gone = this.segments.splice(0);
    this.found = [];
    if (!gone.length) return this.settled();
    return this.chain(async () => {
      await this.fh?.close();
      this.fh = null;
      for (const s of gone) await fsp.unlink(path.join(this.dir, s.name));
      await syncDir(this.dir);
    });
  }

  /** Settles once every operation asked for has been done (a failure rejects). */
  settled(): Promise<void> { return this.ops.then(() => { if (this.failed) throw this.failed; }); }

  async close(): Promise<void> {
    await this.sync();
    await this.ops;
    await this.fh?.close();
    this.fh = null;
  }
}

/**
 * A copy's undo stream kept on disk as well (UndoLog): each change of the stream in memory goes
 * to the segments, in order. push() queues; `ahead()` is the write-ahead point a lone apply waits
 * on before it writes the replica (LocalCopy.apply).
 */
export class DurableUndoStream extends UndoStream {
  constructor(readonly log: UndoLog) { super(); }

  override push(seq: number, set: number, pieces: UndoPiece[]): void {
    super.push(seq, set, pieces);
    this.log.append(seq, set, pieces);
  }

  /** Entries already on disk (recovery): into memory only. */
  adopt(entries: readonly ScannedEntry[]): void {
    for (const e of entries) super.push(e.seq, e.set, e.pieces);
  }

  override ahead(): Promise<void> | null { return this.log.pending ? this.log.sync() : null; }

  override truncateAfter(seq: number): void {
    super.truncateAfter(seq);
    void this.log.truncateAfter(seq).catch(() => {});
    // Cut back to nothing: the next entry starts the history again.
    if (!this.length) this.log.base = true;
  }

  override dropBefore(seq: number): void {
    super.dropBefore(seq);
    this.log.dropBefore(seq);
  }

  override clear(): void {
    super.clear();
    void this.log.clear().catch(() => {});
  }
}

/**
 * Apply `batch` (records in sequence order) to local copy `c` with write-ahead undo: runs of
 * records whose extents do not overlap (up to AHEAD_RECORDS, or AHEAD_BYTES of before-images) have
 * their before-images captured and queued, made durable with one fdatasync, and only then are the
 * replicas written. Within a run no record's extent overlaps another's, so each before-image is
 * what the replica held with every earlier record applied. `stop` is asked between runs.
 */
export async function applyWriteAhead(c: LocalCopy, undo: DurableUndoStream, batch: readonly JournalRecord[], stop?: () => boolean): Promise<void> {
  let i = 0;
  while (i < batch.length) {
    if (stop?.()) return;
    const run: JournalRecord[] = [];
    let bytes = 0;
    for (; i < batch.length && run.length < AHEAD_RECORDS && bytes < AHEAD_BYTES; i++) {
      const r = batch[i];
      if (overlaps(run, r)) break;
      run.push(r);
      bytes += r.blocks * c.replicas[r.set].blockSize;
    }
    const keep = c.imageFloor;
    if (keep !== null) {
      for (const r of run) {
        if (r.seq <= keep) continue;
        undo.push(r.seq, r.set, await undo.capture(c.replicas[r.set], r.lba, r.blocks));
      }
      await undo.log.sync();
    }
    for (const r of run) await c.write(r);
  }
}

function overlaps(run: readonly JournalRecord[], r: JournalRecord): boolean {
  const end = r.lba + BigInt(r.blocks);
  for (const x of run) if (x.set === r.set && x.lba < end && r.lba < x.lba + BigInt(x.blocks)) return true;
  return false;
}
