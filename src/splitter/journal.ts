/**
 * A consistency group's journal (RecoverPoint's "Do stream"): every split write of the group, in
 * the group's one write sequence, kept in memory. The distributor applies records to each copy in
 * order; records every copy has applied stay as history until the journal's size limit pushes
 * the oldest out, which shortens the protection window (how far back the history reaches).
 *
 * A record is what production did, compactly: the data written (plain writes, the write half of a
 * matching COMPARE AND WRITE, the destination blocks of an EXTENDED COPY), one block repeated over
 * a range (WRITE SAME, never expanded; `unmap` when the range was deallocated instead), or a range
 * deallocated (UNMAP). The file-backed journal (append-only checksummed segments) is not built yet.
 */

export type RecordKind = 'data' | 'same' | 'unmap';

export interface JournalRecord {
  /** The group's write sequence number: contiguous, from 1. */
  seq: number;
  /** Date.now() when production applied it. */
  time: number;
  /** Replication set (production LU) index in the group. */
  set: number;
  kind: RecordKind;
  lba: bigint;
  blocks: number;
  /** 'data': the blocks written; 'same': the one block repeated. A private copy. */
  data: Buffer | null;
  /** 'same': the range was deallocated (WRITE SAME with UNMAP on a thin LU): it reads zeros. */
  unmap: boolean;
  /** What the record costs the journal: payload plus a fixed per-record overhead. */
  bytes: number;
  /** The arena holding `data`, if the journal copied it into one. */
  arena?: Arena;
}

/** Per-record bookkeeping charged to the journal besides the payload (RecoverPoint keeps metadata too). */
export const RECORD_OVERHEAD_BYTES = 64;

/**
 * Payloads are copied into arenas of this size, one after the other, instead of one Buffer each:
 * a Buffer of 4 KiB or more is its own ArrayBuffer, and allocating one per write (plus V8's
 * external-memory accounting) cost more than the copy itself. An arena whose records have all
 * left the journal is reused: writing into memory touched before is ~40x cheaper than into
 * fresh pages here (8 s vs 0.1 s for 200,000 copies of 4 KiB, measured on this VM), so once the
 * journal is full it runs on warm memory, like the preallocated journal volume of an array.
 */
const ARENA_BYTES = 8 << 20;

interface Arena { buf: Buffer; used: number; live: number }

export interface ProtectionWindow {
  /** Oldest and newest sequence still in the journal (0 when empty). */
  oldestSeq: number;
  newestSeq: number;
  oldestTime: string | null;
  /** How far back the history reaches, ms (now − oldest record's time). */
  spanMs: number;
}

export class MemoryJournal {
  private records: JournalRecord[] = [];
  /** Index of the first live record in `records` (evicted ones before it are dropped in batches). */
  private head = 0;
  private used = 0;
  /** Records evicted because of the size limit, and their bytes. */
  evicted = 0;
  evictedBytes = 0;

  private arena: Arena | null = null;
  /** Arenas whose records have all been evicted, ready for reuse. */
  private readonly spare: Arena[] = [];

  constructor(readonly limitBytes: number) {
    if (!(limitBytes > 0)) throw new Error('journal size must be > 0');
  }

  get bytes(): number { return this.used; }
  get length(): number { return this.records.length - this.head; }
  /** Sequence of the oldest record kept (or the next one to come when empty). */
  get firstSeq(): number { return this.length ? this.records[this.head].seq : this.nextSeq; }
  nextSeq = 1;

  /**
   * A private copy of `data` (lent by the caller) for the record about to be appended: in the
   * current arena when it fits (append() then ties the record to it).
   */
  copyIn(data: Buffer): Buffer {
    const n = data.length;
    if (n > ARENA_BYTES / 4) { this.pending = null; return Buffer.from(data); }
    let a = this.arena;
    if (!a || a.used + n > a.buf.length) {
      if (a && a.live === 0) this.spare.push(a);
      a = this.arena = this.spare.pop() ?? { buf: Buffer.allocUnsafeSlow(ARENA_BYTES), used: 0, live: 0 };
      a.used = 0;
    }
    const out = a.buf.subarray(a.used, a.used + n);
    data.copy(out);
    // Keep payloads 8-byte aligned in the arena.
    a.used += (n + 7) & ~7;
    this.pending = a;
    return out;
  }

  /** The arena copyIn() last used, for the record append() is given next. */
  private pending: Arena | null = null;

  append(r: Omit<JournalRecord, 'seq' | 'bytes'>): JournalRecord {
    const rec = r as JournalRecord;
    if (this.pending !== null && rec.data !== null && rec.data.buffer === this.pending.buf.buffer) {
      rec.arena = this.pending;
      this.pending.live++;
    }
    this.pending = null;
    rec.seq = this.nextSeq++;
    rec.bytes = (r.data?.length ?? 0) + RECORD_OVERHEAD_BYTES;
    this.records.push(rec);
    this.used += rec.bytes;
    return rec;
  }

  /** The record with sequence `seq`, if the journal still holds it. */
  at(seq: number): JournalRecord | undefined {
    const i = this.head + (seq - this.firstSeq);
    return i >= this.head && i < this.records.length ? this.records[i] : undefined;
  }

  /** Records with sequence > `after`, oldest first, up to `max` of them. */
  *after(after: number, max = Infinity): Generator<JournalRecord> {
    let i = this.head + Math.max(0, after + 1 - this.firstSeq);
    for (let n = 0; i < this.records.length && n < max; i++, n++) yield this.records[i];
  }

  /** Bytes of records with sequence > `after` (a copy's lag). */
  bytesAfter(after: number): number {
    let b = 0;
    for (const r of this.after(after)) b += r.bytes;
    return b;
  }

  /**
   * Drop the oldest records while over the limit, but only those every copy has applied
   * (sequence <= `applied`): history falls out of the window, undistributed writes never do.
   */
  trim(applied: number): void {
    while (this.used > this.limitBytes && this.length && this.records[this.head].seq <= applied) {
      const r = this.records[this.head];
      this.records[this.head] = undefined as unknown as JournalRecord;
      this.head++;
      const a = r.arena;
      // An arena no record needs any more is reused (never the one being filled).
      if (a && --a.live === 0 && a !== this.arena) this.spare.push(a);
      this.used -= r.bytes;
      this.evicted++;
      this.evictedBytes += r.bytes;
    }
    if (this.head > 4096 && this.head * 2 > this.records.length) {
      this.records = this.records.slice(this.head);
      this.head = 0;
    }
  }

  window(now = Date.now()): ProtectionWindow {
    if (!this.length) return { oldestSeq: 0, newestSeq: 0, oldestTime: null, spanMs: 0 };
    const o = this.records[this.head];
    return { oldestSeq: o.seq, newestSeq: this.nextSeq - 1, oldestTime: new Date(o.time).toISOString(), spanMs: Math.max(0, now - o.time) };
  }
}
