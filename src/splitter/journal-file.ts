/**
 * The file-backed journal of a consistency group: the same in-memory index as MemoryJournal
 * (journal.ts), plus append-only segment files in the journal's folder, so that a restart, also
 * after SIGKILL or a power cut, loses no acknowledged record.
 *
 * On disk (folder DIR):
 *   DIR/<first seq, 16 digits>.seg   segments, appended to, never rewritten; a new one when the
 *                                    current one would pass `segmentBytes`; deleted once every
 *                                    record in it has been trimmed
 *   DIR/copy-<name>.json             a copy's checkpoint {appliedSeq, initialized}: written after
 *                                    the copy's replica files are fdatasync'd (see group-distribute.ts)
 *   DIR/open                         exists while the journal is open; still there at start-up
 *                                    means the last stop was not clean
 *   DIR/<copy>.undo/                 a local copy's undo segments (undo-file.ts)
 *   DIR/bookmarks.json               the group's bookmarks
 *
 * A record: a 48-byte header, then the payload (little-endian):
 *    0 u32 magic "ASJR"           12 u8  kind (1 data, 2 same, 3 unmap)   24 u64 time (ms)
 *    4 u32 length (header+payload) 13 u8  flags (bit 0: unmap)            32 u64 lba
 *    8 u32 CRC32C of bytes 12..len 14 u16 replication set                 40 u32 blocks
 *                                  16 u64 sequence                        44 u32 payload length
 * The CRC (Castagnoli, as iSCSI's digests, protocol/iscsi/digest.ts) covers everything after it,
 * payload included, so a torn or half-written record never passes for a whole one.
 *
 * Recovery (FileJournal.open): segments are scanned in order; the first record that is short,
 * has a bad magic, length or checksum, or breaks the sequence ends the journal: the segment is
 * truncated there and later segments are deleted (nothing after a hole can have been
 * acknowledged, since records are acknowledged in sequence order). The index is rebuilt from what
 * is left, and the group re-applies to each copy the records after its checkpoint.
 *
 * Durability and group commit: append() only queues the record's bytes. One flush at a time
 * writes every queued record with one writev() and makes them durable with one fdatasync();
 * records that arrive while a flush runs wait for the next one, which takes all of them. So 32
 * writes in flight cost about two fdatasyncs, not 32, and a lone write costs one. whenDurable()
 * hands each record the promise of the flush that carries it, and the host's write is
 * acknowledged only when that settles (split.ts SplitRecorder.acknowledge).
 */
import { promises as fsp } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { crc32c } from '../../protocol/iscsi/digest.ts';
import { MemoryJournal } from './journal.ts';
import type { CopyCheckpoint, Journal, JournalRecord, ProtectionWindow, RecordKind } from './journal.ts';
import { syncDir, writeDurably } from '../store/durable.ts';

export const HEADER_BYTES = 48;
const MAGIC = 0x524a5341; // "ASJR" read as little-endian u32
const KIND_CODE: Record<RecordKind, number> = { data: 1, same: 2, unmap: 3 };
const CODE_KIND: Record<number, RecordKind> = { 1: 'data', 2: 'same', 3: 'unmap' };
/** Largest record: a 1 GiB payload (no SCSI write the target accepts is larger). */
const MAX_RECORD = (1 << 30) + HEADER_BYTES;
/** Buffers per writev() call (below IOV_MAX, 1024 on Linux). */
const IOV_CHUNK = 512;

/** The header of record `r` (payload `r.data`, if any), checksum included. */
export function encodeHeader(r: JournalRecord): Buffer {
  const payload = r.data?.length ?? 0;
  const h = Buffer.allocUnsafe(HEADER_BYTES);
  h.writeUInt32LE(MAGIC, 0);
  h.writeUInt32LE(HEADER_BYTES + payload, 4);
  h.writeUInt8(KIND_CODE[r.kind], 12);
  h.writeUInt8(r.unmap ? 1 : 0, 13);
  h.writeUInt16LE(r.set, 14);
  h.writeBigUInt64LE(BigInt(r.seq), 16);
  h.writeBigUInt64LE(BigInt(r.time), 24);
  h.writeBigUInt64LE(r.lba, 32);
  h.writeUInt32LE(r.blocks, 40);
  h.writeUInt32LE(payload, 44);
  let crc = crc32c(h.subarray(12));
  if (payload) crc = crc32c(r.data!, crc);
  h.writeUInt32LE(crc, 8);
  return h;
}

/** Why a scan stopped before the end of a segment. */
export type ScanStop = 'short-header' | 'bad-magic' | 'bad-length' | 'short-record' | 'bad-checksum' | 'bad-kind' | 'out-of-sequence';

export interface DecodedRecord extends Omit<JournalRecord, 'bytes' | 'arena'> {}

/**
 * The whole records at the start of `buf` (a segment's bytes), in order, while each follows
 * `expectSeq` (0: any first sequence); `end` is where the valid prefix ends.
 */
export function scanSegment(buf: Buffer, expectSeq: number): { records: DecodedRecord[]; end: number; stop: ScanStop | null } {
  const records: DecodedRecord[] = [];
  let pos = 0;
  let stop: ScanStop | null = null;
  while (pos < buf.length) {
    if (buf.length - pos < HEADER_BYTES) { stop = 'short-header'; break; }
    if (buf.readUInt32LE(pos) !== MAGIC) { stop = 'bad-magic'; break; }
    const len = buf.readUInt32LE(pos + 4);
    const payload = buf.readUInt32LE(pos + 44);
    if (len < HEADER_BYTES || len > MAX_RECORD || len !== HEADER_BYTES + payload) { stop = 'bad-length'; break; }
    if (pos + len > buf.length) { stop = 'short-record'; break; }
    if (crc32c(buf.subarray(pos + 12, pos + len)) !== buf.readUInt32LE(pos + 8)) { stop = 'bad-checksum'; break; }
    const kind = CODE_KIND[buf.readUInt8(pos + 12)];
    if (!kind) { stop = 'bad-kind'; break; }
    const seq = Number(buf.readBigUInt64LE(pos + 16));
    if (expectSeq && seq !== expectSeq) { stop = 'out-of-sequence'; break; }
    expectSeq = seq + 1;
    records.push({
      seq, time: Number(buf.readBigUInt64LE(pos + 24)), set: buf.readUInt16LE(pos + 14), kind,
      lba: buf.readBigUInt64LE(pos + 32), blocks: buf.readUInt32LE(pos + 40),
      data: payload ? buf.subarray(pos + HEADER_BYTES, pos + len) : null, unmap: (buf.readUInt8(pos + 13) & 1) === 1,
    });
    pos += len;
  }
  return { records, end: pos, stop };
}

/** What start-up found and did; GET /v1/groups shows it. */
export interface JournalRecovery {
  segments: number;
  records: number;
  /** Bytes cut off the end (a torn or bad record and whatever followed it). */
  truncatedBytes: number;
  /** Why the scan stopped early (null: every segment ended on a whole record). */
  stop: ScanStop | null;
  /** The last stop was not clean (the `open` marker was still there). */
  unclean: boolean;
}

export interface FileJournalOptions {
  /** Segment size before rotation; default limit/8, within 1-64 MiB. */
  segmentBytes?: number;
  /**
   * TEST HOOK, never for use: acknowledge records at append, before they are written or synced.
   * The crash test's negative control sets it (ARRAYSIM_TEST_JOURNAL_ACK=early) to show that the
   * test can catch an array that acknowledges too early.
   */
  ackEarly?: boolean;
}

interface Segment { name: string; firstSeq: number; lastSeq: number; bytes: number }

interface Flush { lastSeq: number; promise: Promise<void>; resolve: () => void; reject: (e: Error) => void }

function deferred(lastSeq: number): Flush {
  let resolve!: () => void, reject!: (e: Error) => void;
  const promise = new Promise<void>((a, b) => { resolve = a; reject = b; });
  // A flush nobody waited on must not become an unhandled rejection; waiters get it through whenDurable.
  promise.catch(() => {});
  return { lastSeq, promise, resolve, reject };
}

const segName = (firstSeq: number) => `${String(firstSeq).padStart(16, '0')}.seg`;

export class FileJournal implements Journal {
  readonly kind = 'file' as const;
  private readonly mem: MemoryJournal;
  private readonly segments: Segment[];
  private fh: FileHandle | null = null;
  private readonly segmentBytes: number;
  private readonly ackEarly: boolean;

  /** Queued bytes (headers and payload views) of records not yet handed to a flush. */
  private queue: Buffer[] = [];
  private queueBytes = 0;
  /** The flush that will carry the queued records, and the one running. */
  private next: Flush | null = null;
  private running: Flush | null = null;
  private scheduled = false;
  /** Highest sequence known durable. */
  durableSeq: number;
  onDurable?: () => void;
  /** Set when a write or fdatasync failed: no later record can be made durable. */
  private failed: Error | null = null;
  /** Group commit figures: flushes (one fdatasync each) and records they carried. */
  readonly commits = { flushes: 0, records: 0 };
  private deleting: Promise<void> = Promise.resolve();

  private constructor(readonly dir: string, limitBytes: number, segments: Segment[], readonly recovery: JournalRecovery, o: FileJournalOptions) {
    this.mem = new MemoryJournal(limitBytes);
    this.segments = segments;
    this.segmentBytes = o.segmentBytes ?? Math.min(64 << 20, Math.max(1 << 20, Math.floor(limitBytes / 8)));
    this.ackEarly = !!o.ackEarly;
    this.durableSeq = 0;
  }

  /**
   * Open (creating) the journal in `dir` and recover it: scan the segments, cut the first torn or
   * bad record and everything after it, rebuild the index. `floorSeq`: the highest sequence any
   * checkpoint names, so numbering goes on after it even when every segment had been trimmed.
   */
  static async open(dir: string, limitBytes: number, o: FileJournalOptions = {}): Promise<FileJournal> {
    if (!(limitBytes > 0)) throw new Error('journal size must be > 0');
    await fsp.mkdir(dir, { recursive: true });
    const names = (await fsp.readdir(dir)).filter((n) => /^\d{16}\.seg$/.test(n)).sort();
    const unclean = await fsp.access(path.join(dir, 'open')).then(() => true, () => false);
    const rec: JournalRecovery = { segments: 0, records: 0, truncatedBytes: 0, stop: null, unclean };
    const segs: Segment[] = [];
    const found: DecodedRecord[] = [];
    let expect = 0;
    let floor = 1;
    for (const [i, name] of names.entries()) {
      const file = path.join(dir, name);
      const named = Number(name.slice(0, 16));
      if (rec.stop) {
        // After a hole: nothing here can have been acknowledged.
        rec.truncatedBytes += (await fsp.stat(file)).size;
        await fsp.unlink(file);
        continue;
      }
      floor = Math.max(floor, named);
      const buf = await fsp.readFile(file);
      // A segment's name is its first sequence, and it must follow on from the one before.
      const s = scanSegment(buf, i === 0 ? named : expect);
      if (s.stop) {
        rec.stop = s.stop;
        rec.truncatedBytes += buf.length - s.end;
        const fh = await fsp.open(file, 'r+');
        try { await fh.truncate(s.end); await fh.datasync(); } finally { await fh.close(); }
      }
      const good = s.records;
      found.push(...good);
      expect = good.length ? good[good.length - 1].seq + 1 : named;
      segs.push({ name, firstSeq: named, lastSeq: good.length ? good[good.length - 1].seq : named - 1, bytes: good.length ? s.end : 0 });
    }
    rec.segments = segs.length;
    rec.records = found.length;
    const j = new FileJournal(dir, limitBytes, segs, rec, o);
    const checkpoints = await Promise.all((await fsp.readdir(dir)).filter((n) => /^copy-.+\.json$/.test(n)).map((n) => readJson(path.join(dir, n))));
    for (const c of checkpoints) if (c && Number.isInteger(c.appliedSeq)) floor = Math.max(floor, c.appliedSeq + 1);
    // Checkpoints ahead of the journal's end (its tail lost, which durability rules out unless
    // the disk lied): the records kept are applied everywhere; numbering goes on after them.
    if (found.length && found[found.length - 1].seq + 1 < floor) found.length = 0;
    j.mem.nextSeq = found.length ? found[0].seq : floor;
    for (const r of found) j.mem.append({ ...r });
    if (j.mem.nextSeq < floor) j.mem.nextSeq = floor;
    j.durableSeq = j.mem.nextSeq - 1;
    // The current segment is reopened for appending at its (truncated) end.
    const last = segs[segs.length - 1];
    if (last) j.fh = await fsp.open(path.join(dir, last.name), 'r+');
    await writeDurably(path.join(dir, 'open'), `${process.pid}\n`);
    return j;
  }

  get limitBytes(): number { return this.mem.limitBytes; }
  get bytes(): number { return this.mem.bytes; }
  get length(): number { return this.mem.length; }
  get firstSeq(): number { return this.mem.firstSeq; }
  get nextSeq(): number { return this.mem.nextSeq; }
  get evicted(): number { return this.mem.evicted; }
  get evictedBytes(): number { return this.mem.evictedBytes; }
  /** Bytes in segment files. */
  get fileBytes(): number { return this.segments.reduce((a, s) => a + s.bytes, 0) + this.queueBytes; }
  get segmentCount(): number { return this.segments.length; }

  copyIn(data: Buffer): Buffer { return this.mem.copyIn(data); }
  discard(data: Buffer): void { this.mem.discard(data); }
  restoreData(r: JournalRecord, data: Buffer): void { this.mem.restoreData(r, data); }

  append(r: Omit<JournalRecord, 'seq' | 'bytes'>): JournalRecord {
    const rec = this.mem.append(r);
    // The payload is queued as a view of the record's own copy: it stays until the record is
    // trimmed, which needs every copy to have applied it, which comes after it is durable.
    this.queue.push(encodeHeader(rec));
    if (rec.data) this.queue.push(rec.data);
    this.queueBytes += HEADER_BYTES + (rec.data?.length ?? 0);
    if (this.next) this.next.lastSeq = rec.seq;
    else this.next = deferred(rec.seq);
    if (!this.running && !this.scheduled) this.schedule();
    return rec;
  }

  whenDurable(seq: number): Promise<void> | null {
    if (this.ackEarly) return null;
    if (seq <= this.durableSeq) return null;
    if (this.failed) return Promise.reject(this.failed);
    if (this.running && seq <= this.running.lastSeq) return this.running.promise;
    if (this.next && seq <= this.next.lastSeq) return this.next.promise;
    return null;
  }

  private schedule(): void {
    this.scheduled = true;
    // setImmediate: the records appended in this event-loop turn (the rest of a burst) join.
    setImmediate(() => {
      this.scheduled = false;
      const f = this.next;
      if (!f) return;
      this.next = null;
      this.running = f;
      const bufs = this.queue, bytes = this.queueBytes;
      this.queue = [];
      this.queueBytes = 0;
      this.flush(bufs, bytes, f.lastSeq).then(
        () => { this.durableSeq = f.lastSeq; this.commits.flushes++; f.resolve(); this.onDurable?.(); },
        (err: Error) => { this.failed ??= new Error(`journal ${this.dir}: ${err.message}`); f.reject(this.failed); },
      ).finally(() => {
        this.running = null;
        if (this.next) this.schedule();
      });
    });
  }

  private async flush(bufs: Buffer[], bytes: number, lastSeq: number): Promise<void> {
    if (this.failed) throw this.failed;
    const firstSeq = this.durableSeq + 1;
    let seg = this.segments[this.segments.length - 1];
    if (!seg || !this.fh || (seg.bytes > 0 && seg.bytes + bytes > this.segmentBytes)) {
      // Rotation: the old segment is already durable; the new one's name is its first sequence.
      await this.fh?.close();
      seg = { name: segName(firstSeq), firstSeq, lastSeq: firstSeq - 1, bytes: 0 };
      this.fh = await fsp.open(path.join(this.dir, seg.name), 'w+');
      this.segments.push(seg);
      await syncDir(this.dir);
    }
    const pos = await writevAt(this.fh, bufs, seg.bytes);
    await this.fh.datasync();
    seg.bytes = pos;
    seg.lastSeq = lastSeq;
    this.commits.records += lastSeq - firstSeq + 1;
  }

  at(seq: number): JournalRecord | undefined { return this.mem.at(seq); }
  after(after: number, max?: number): Generator<JournalRecord> { return this.mem.after(after, max); }
  bytesAfter(after: number): number { return this.mem.bytesAfter(after); }
  window(now?: number): ProtectionWindow { return this.mem.window(now); }

  /**
   * The size limit as RecoverPoint's: the oldest records go while over it, but only those every
   * copy has durably applied (the group passes the lowest checkpointed sequence). A segment whose
   * records are all gone is deleted (never the one being written).
   */
  trim(applied: number): void {
    this.mem.trim(Math.min(applied, this.durableSeq));
    const first = this.mem.firstSeq;
    while (this.segments.length > 1 && this.segments[0].lastSeq < first) {
      const s = this.segments.shift()!;
      const file = path.join(this.dir, s.name);
      this.deleting = this.deleting.then(() => fsp.unlink(file)).catch(() => {});
    }
  }

  /** Settles when everything appended so far is durable. */
  async sync(): Promise<void> {
    const last = this.mem.nextSeq - 1;
    while (this.durableSeq < last) {
      if (this.failed) throw this.failed;
      await (this.whenDurable(last) ?? this.running?.promise ?? new Promise<void>((r) => setImmediate(r)));
    }
  }

  async close(): Promise<void> {
    await this.sync();
    await this.deleting;
    await this.fh?.close();
    this.fh = null;
    await fsp.rm(path.join(this.dir, 'open'), { force: true });
  }

  async readCheckpoint(copy: string): Promise<CopyCheckpoint | null> {
    const c = await readJson(path.join(this.dir, `copy-${copy}.json`));
    if (!c || !Number.isInteger(c.appliedSeq)) return null;
    return { appliedSeq: c.appliedSeq, initialized: c.initialized === true };
  }

  /** Record durably that `copy` holds every record up to `appliedSeq` (its replicas already synced). */
  writeCheckpoint(copy: string, c: CopyCheckpoint): Promise<void> {
    return writeDurably(path.join(this.dir, `copy-${copy}.json`), JSON.stringify(c) + '\n');
  }

  /** Where copy `copy` keeps its undo segments (undo-file.ts). */
  undoPath(copy: string): string {
    return path.join(this.dir, `${copy}.undo`);
  }

  async readBookmarks(): Promise<Array<{ name: string; seq: number; time: string }>> {
    const b = await readJson(path.join(this.dir, 'bookmarks.json'));
    return Array.isArray(b) ? b.filter((x) => x && typeof x.name === 'string' && Number.isInteger(x.seq) && typeof x.time === 'string') : [];
  }

  /** Every bookmark, replacing the file (few: one per operator verb). */
  writeBookmarks(b: Array<{ name: string; seq: number; time: string }>): Promise<void> {
    return writeDurably(path.join(this.dir, 'bookmarks.json'), JSON.stringify(b) + '\n');
  }

  /** Where copy `copy`'s replica of replication set `set` lives. */
  replicaPath(copy: string, set: number): string {
    return path.join(this.dir, `${copy}.${set}.img`);
  }
}

async function readJson(file: string): Promise<any> {
  try { return JSON.parse(await fsp.readFile(file, 'utf8')); } catch { return null; }
}

/** Write `bufs` at `pos` with writev() (IOV_CHUNK buffers a call); returns where they end. */
export async function writevAt(fh: FileHandle, bufs: readonly Buffer[], pos: number): Promise<number> {
  for (let i = 0; i < bufs.length; i += IOV_CHUNK) {
    const part = bufs.slice(i, i + IOV_CHUNK);
    const want = part.reduce((a, b) => a + b.length, 0);
    const { bytesWritten } = await fh.writev(part, pos);
    // A short writev of a regular file is rare; finish it from where it stopped.
    if (bytesWritten < want) await fh.write(Buffer.concat(part).subarray(bytesWritten), 0, want - bytesWritten, pos + bytesWritten);
    pos += want;
  }
  return pos;
}

