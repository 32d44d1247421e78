/**
 * A consistency group's journal (RecoverPoint's "Do stream"): every split write of the group, in
 * the group's one write sequence, kept in memory. The distributor applies records to each copy in
 * order; records every copy has applied stay as history until the journal's size limit pushes
 * the oldest out, which shortens the protection window (how far back the history reaches).
 *
 * A record is what production did, compactly: the data written (plain writes, the write half of a
 * matching COMPARE AND WRITE, the destination blocks of an EXTENDED COPY), one block repeated over
 * a range (WRITE SAME, never expanded; `unmap` when the range was deallocated instead), or a range
 * deallocated (UNMAP).
 *
 * Two implementations of one Journal interface, and the group does not care which: MemoryJournal
 * (here) and FileJournal (journal-file.ts: append-only checksummed segments, group commit, and
 * recovery after a crash). The file journal keeps the same in-memory index as this one and adds
 * persistence; whenDurable() is where they differ.
 */

import { releaseShared } from '../store/memory.ts';
import { Arenas } from './arena.ts';
import type { Arena } from './arena.ts';

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
  /**
   * 'data': the blocks written; 'same': the one block repeated. A private copy. A 'data' record
   * every copy has applied drops it (MemoryJournal.trim): it is history then, which the copies'
   * undo data covers; rolling a replica back reads it from the replica again (restoreData).
   */
  data: Buffer | null;
  /** 'same': the range was deallocated (WRITE SAME with UNMAP on a thin LU): it reads zeros. */
  unmap: boolean;
  /**
   * What the record costs the journal: payload plus a fixed per-record overhead. It stays when an
   * applied record drops its payload: history costs its undo data, which is as large.
   */
  bytes: number;
  /** The arena holding `data`, if the journal copied it into one. */
  arena?: Arena;
  /**
   * `data` is a memory store's chunk shared copy-on-write (MemoryStore.share: an EXTENDED COPY
   * piece), not a copy: released (releaseShared) when the record drops it. A thin memory replica
   * written this buffer adopts it as its chunk, again without a copy.
   */
  shared?: boolean;
}

/** Per-record bookkeeping charged to the journal besides the payload (RecoverPoint keeps metadata too). */
export const RECORD_OVERHEAD_BYTES = 64;


export interface ProtectionWindow {
  /** Oldest and newest sequence still in the journal (0 when empty). */
  oldestSeq: number;
  newestSeq: number;
  oldestTime: string | null;
  /** How far back the history reaches, ms (now − oldest record's time). */
  spanMs: number;
}

/** What a consistency group needs of its journal (MemoryJournal, FileJournal). */
export interface Journal {
  readonly kind: 'memory' | 'file';
  readonly limitBytes: number;
  /** Bytes charged (payload + RECORD_OVERHEAD_BYTES per record) and records held. */
  readonly bytes: number;
  readonly length: number;
  readonly firstSeq: number;
  /** The sequence the next record will get. */
  readonly nextSeq: number;
  readonly evicted: number;
  readonly evictedBytes: number;
  copyIn(data: Buffer): Buffer;
  /** A copyIn() result that will not be appended after all (the write it was for failed). */
  discard(data: Buffer): void;
  /**
   * Give record `r` (an applied 'data' record whose payload was dropped) its payload again, read
   * back from a replica holding exactly r's image of its extent (a rollback, image.ts), so it can
   * be applied again.
   */
  restoreData(r: JournalRecord, data: Buffer): void;
  append(r: Omit<JournalRecord, 'seq' | 'bytes'>): JournalRecord;
  /**
   * null when record `seq` is as safe as it will get (memory: at once); else settles when it is
   * durable (file: fdatasync'd), or rejects when it cannot be made so. The host's write is
   * acknowledged only then (split.ts SplitRecorder.acknowledge).
   */
  whenDurable(seq: number): Promise<void> | null;
  at(seq: number): JournalRecord | undefined;
  after(after: number, max?: number): Generator<JournalRecord>;
  bytesAfter(after: number): number;
  /**
   * Every copy has applied the records up to `applied`: their payloads go (history), and the
   * oldest records while over the limit, never one with sequence > `applied`.
   */
  trim(applied: number): void;
  window(now?: number): ProtectionWindow;
  /** Make everything appended durable and release files (clean shutdown). */
  close(): Promise<void>;
  /**
   * Journals that survive a restart (file) keep each copy's checkpoint next to them: the sequence
   * the copy's replicas hold durably, from which recovery re-applies. Absent on memory journals.
   */
  readCheckpoint?(copy: string): Promise<CopyCheckpoint | null>;
  writeCheckpoint?(copy: string, c: CopyCheckpoint): Promise<void>;
  /**
   * File journal: the last sequence on disk (fdatasync'd). Copies get no record past it, so no
   * copy holds a write never acknowledged, nor is checkpointed past the journal's end (a restart
   * would number new records after a gap, which the next recovery would take for the end).
   */
  readonly durableSeq?: number;
  /** Called each time durableSeq moves (the distributor goes on with the records now durable). */
  onDurable?: () => void;
  /** Where a local copy keeps its undo data on disk (file journal: undo-file.ts); absent on memory journals. */
  undoPath?(copy: string): string;
  /** The group's bookmarks, kept with the journal so that images stay named across a restart (file). */
  readBookmarks?(): Promise<Array<{ name: string; seq: number; time: string }>>;
  writeBookmarks?(b: Array<{ name: string; seq: number; time: string }>): Promise<void>;
}

export interface CopyCheckpoint {
  /** Every record up to this sequence is in the copy's replicas, durably. */
  appliedSeq: number;
  /** The first initialization (or the sweep after an unclean stop) had completed. */
  initialized: boolean;
}

export class MemoryJournal implements Journal {
  readonly kind = 'memory' as const;
  private records: JournalRecord[] = [];
  /** Index of the first live record in `records` (evicted ones before it are dropped in batches). */
  private head = 0;
  private used = 0;
  /** Records evicted because of the size limit, and their bytes. */
  evicted = 0;
  evictedBytes = 0;

  /**
   * Payloads, in arenas (arena.ts). A payload is released once every copy has applied its record,
   * so the arenas in use hold the records not yet distributed (RecoverPoint's "Do stream"), a
   * few MiB in steady state, warm in the cache, instead of the whole window's history.
   */
  readonly arenas = new Arenas();
  /** Every 'data' record up to this sequence has dropped its payload (trim). */
  private releasedSeq = 0;

  constructor(readonly limitBytes: number) {
    if (!(limitBytes > 0)) throw new Error('journal size must be > 0');
  }

  get bytes(): number { return this.used; }
  get length(): number { return this.records.length - this.head; }
  /** Sequence of the oldest record kept (or the next one to come when empty). */
  get firstSeq(): number { return this.length ? this.records[this.head].seq : this.nextSeq; }
  nextSeq = 1;

  /**
   * A private copy of `data` (lent by the caller) for a record to be appended, in an arena that
   * append() then ties to the record. Every copy made must be appended: until its record lets it
   * go, its arena is not reused.
   */
  copyIn(data: Buffer): Buffer {
    const out = this.arenas.take(data.length);
    data.copy(out);
    return out;
  }

  append(r: Omit<JournalRecord, 'seq' | 'bytes'>): JournalRecord {
    // One shape for every record (all fields set at once). A payload copyIn() took holds its
    // arena until the record lets it go (trim).
    const rec: JournalRecord = {
      seq: this.nextSeq++, time: r.time, set: r.set, kind: r.kind, lba: r.lba, blocks: r.blocks, data: r.data, unmap: r.unmap,
      bytes: (r.data?.length ?? 0) + RECORD_OVERHEAD_BYTES, arena: this.arenas.arenaOf(r.data), shared: r.shared ?? false,
    };
    this.records.push(rec);
    this.used += rec.bytes;
    return rec;
  }

  discard(data: Buffer): void {
    const a = this.arenas.arenaOf(data);
    if (a) this.arenas.release(a);
  }

  restoreData(r: JournalRecord, data: Buffer): void {
    if (r.kind !== 'data' || r.data !== null) return;
    r.data = this.copyIn(data);
    r.arena = this.arenas.arenaOf(r.data);
    // The release walk comes back over it once every copy has applied it again.
    if (r.seq <= this.releasedSeq) this.releasedSeq = r.seq - 1;
  }

  /**
   * Record `r`, the newest, was applied by every copy as it was appended, its payload lent by the
   * caller (ConsistencyGroup.appendData): the payload goes at once, as trim() would drop it.
   */
  distributed(r: JournalRecord): void {
    this.dropData(r);
    if (r.seq === this.releasedSeq + 1) this.releasedSeq = r.seq;
  }

  /** Record `r`, appended with a lent payload, stays to be distributed later: it gets a copy of its own. */
  keepPayload(r: JournalRecord): void {
    if (r.arena || r.shared || r.data === null) return;
    r.data = this.copyIn(r.data);
    r.arena = this.arenas.arenaOf(r.data);
  }

  /** Drop record `r`'s payload (its arena slice goes back when it had one). */
  private dropData(r: JournalRecord): void {
    if (r.arena) { this.arenas.release(r.arena); r.arena = undefined; }
    if (r.shared) { releaseShared(r.data!); r.shared = false; }
    r.data = null;
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
   * Every copy has applied the records up to `applied`: a 'data' record's payload goes (its undo
   * data in each copy is the history from now on). Then the oldest records go while over the
   * limit, but only those every copy has applied: history falls out of the window, undistributed
   * writes never do.
   */
  trim(applied: number): void {
    const upTo = Math.min(applied, this.nextSeq - 1);
    if (upTo > this.releasedSeq) {
      for (const r of this.after(this.releasedSeq)) {
        if (r.seq > upTo) break;
        if (r.kind === 'data' && r.data !== null) this.dropData(r);
      }
      this.releasedSeq = upTo;
    }
    while (this.used > this.limitBytes && this.length && this.records[this.head].seq <= applied) {
      const r = this.records[this.head];
      this.records[this.head] = undefined as unknown as JournalRecord;
      this.head++;
      // 'same' blocks (and payloads not yet dropped) go with their record.
      if (r.arena) this.arenas.release(r.arena);
      if (r.shared) releaseShared(r.data!);
      this.used -= r.bytes;
      this.evicted++;
      this.evictedBytes += r.bytes;
    }
    if (this.head > 4096 && this.head * 2 > this.records.length) {
      this.records = this.records.slice(this.head);
      this.head = 0;
    }
  }

  whenDurable(_seq: number): null { return null; }

  close(): Promise<void> { return Promise.resolve(); }

  window(now = Date.now()): ProtectionWindow {
    if (!this.length) return { oldestSeq: 0, newestSeq: 0, oldestTime: null, spanMs: 0 };
    const o = this.records[this.head];
    return { oldestSeq: o.seq, newestSeq: this.nextSeq - 1, oldestTime: new Date(o.time).toISOString(), spanMs: Math.max(0, now - o.time) };
  }
}
