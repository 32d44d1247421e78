/**
 * Undo data of a copy's replica volumes (RecoverPoint's "Undo stream"): before the distributor
 * applies a journal record to a replica it saves what the replica held in the record's extent,
 * so the replica can be rolled back to any earlier image the journal still covers (image access,
 * image.ts). RecoverPoint's five-phase distribution does the same per write: read the replica's
 * current data, write it to the undo stream, then write the new data (shared/reference/
 * replication-anchors.md §3, "Journal and distribution").
 *
 * The same structure is the image-access log of logged access: a host's write to the image saves
 * the blocks it overwrites, and disable_image_access restores them, newest first.
 *
 * A deallocated run is saved as such (no bytes), so the undo of a WRITE SAME over a whole thin
 * 1 TiB replica costs what was allocated there, not 1 TiB.
 */
import type { BackingStore } from '../store/store.ts';
import { Arenas } from './arena.ts';
import type { Arena } from './arena.ts';

/**
 * Blocks [lba, lba+blocks) as they were: `data`, or deallocated (reads zeros) when null; `arena`,
 * the arena `data` lives in (UndoStream.capture), released when the entry goes.
 */
export interface UndoPiece { lba: bigint; blocks: number; data: Buffer | null; arena?: Arena }

/** What record `seq` (or one image write) overwrote on replication set `set`'s replica. */
export interface UndoEntry { seq: number; set: number; pieces: UndoPiece[]; bytes: number }

/**
 * What `store` holds in [lba, lba+blocks), as private copies (a memory store's read is a view that
 * the coming write would change): in `arenas` when given (memory stores), else a Buffer each.
 * Deallocated runs of a thin store are pieces without data.
 */
export function captureBefore(store: BackingStore, lba: bigint, blocks: number, arenas?: Arenas): UndoPiece[] | Promise<UndoPiece[]> {
  // The common case, a memory replica whose extent is all mapped or all not: one piece, no walk.
  if (store.kind === 'memory' && arenas) {
    const whole = store.thin ? store.rangeMapped?.(lba, blocks) : true;
    if (whole === false) return [{ lba, blocks, data: null }];
    if (whole === true) {
      const into = arenas.take(blocks * store.blockSize);
      return [{ lba, blocks, data: store.read(lba, blocks, into) as Buffer, arena: arenas.last }];
    }
  }
  const runs: Array<{ lba: bigint; blocks: number; mapped: boolean }> = [];
  const end = lba + BigInt(blocks);
  for (let at = lba; at < end;) {
    const m = store.thin ? store.mapping?.(at, end - at) : undefined;
    const left = end - at;
    const n = m ? (m.blocks < left ? m.blocks : left) : left;
    runs.push({ lba: at, blocks: Number(n), mapped: !m || m.mapped });
    at += n;
  }
  const pieces: UndoPiece[] = [];
  const pending: Array<Promise<void>> = [];
  for (const r of runs) {
    const p: UndoPiece = { lba: r.lba, blocks: r.blocks, data: null };
    pieces.push(p);
    if (!r.mapped) continue;
    let into: Buffer | undefined;
    if (store.kind === 'memory') {
      const n = r.blocks * store.blockSize;
      into = arenas ? arenas.take(n) : Buffer.allocUnsafe(n);
      p.arena = arenas?.arenaOf(into);
    }
    const d = store.read(r.lba, r.blocks, into);
    if (d instanceof Promise) pending.push(d.then((b) => { p.data = b; }));
    else p.data = d;
  }
  return pending.length ? Promise.all(pending).then(() => pieces) : pieces;
}

/** Put `pieces` back onto `store` (deallocated pieces deallocated again, or zeroed). */
export function restorePieces(store: BackingStore, pieces: readonly UndoPiece[]): void | Promise<void> {
  const pending: Array<Promise<void>> = [];
  for (const p of pieces) {
    let r: void | Promise<void>;
    if (p.data) r = store.write(p.lba, p.data);
    else if (store.unmap) r = store.unmap(p.lba, p.blocks);
    else r = store.write(p.lba, Buffer.alloc(p.blocks * store.blockSize));
    if (r instanceof Promise) pending.push(r);
  }
  if (pending.length) return Promise.all(pending).then(() => {});
}

/** The first index in [lo, hi) where `before` turns false (it is true, then false, over the range). */
export function partitionPoint(lo: number, hi: number, before: (i: number) => boolean): number {
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (before(mid)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * Every piece of an undo stream as a row of typed-array columns, in push order (ascending seq):
 * what virtual access's read map is built from (image-map.ts). Reading a million pieces' extents
 * from here is a sequential scan of a few MiB; reading them from the entry objects, scattered over
 * a heap that holds a million of them, cost several times the whole build in cache misses. 32
 * bytes a piece (the reference to the piece, for its data, included).
 */
export class PieceColumns {
  seq = new Float64Array(1024);
  lba = new Float64Array(1024);
  blocks = new Int32Array(1024);
  set = new Int32Array(1024);
  refs: UndoPiece[] = [];
  /** Rows [head, length) are live. */
  head = 0;
  length = 0;

  push(seq: number, set: number, p: UndoPiece): void {
    if (this.length === this.seq.length) this.makeRoom();
    const i = this.length++;
    this.seq[i] = seq;
    this.lba[i] = Number(p.lba);
    this.blocks[i] = p.blocks;
    this.set[i] = set;
    this.refs[i] = p;
  }

  /** Full: drop the dead rows before head, or double. */
  private makeRoom(): void {
    const live = this.length - this.head;
    const cap = live * 2 > this.seq.length ? this.seq.length * 2 : this.seq.length;
    const move = <T extends Float64Array | Int32Array>(a: T): T => {
      const b = cap === a.length ? a : new (a.constructor as { new(n: number): T })(cap);
      b.set(a.subarray(this.head, this.length));
      return b;
    };
    this.seq = move(this.seq); this.lba = move(this.lba); this.blocks = move(this.blocks); this.set = move(this.set);
    this.refs = this.refs.slice(this.head, this.length);
    this.head = 0;
    this.length = live;
  }

  /** The first row with seq > `after` (length when none). */
  firstAfter(after: number): number { return partitionPoint(this.head, this.length, (i) => this.seq[i] <= after); }

  truncateAfter(seq: number): void {
    this.length = this.firstAfter(seq);
    this.refs.length = this.length;
  }

  dropBefore(seq: number): void {
    while (this.head < this.length && this.seq[this.head] < seq) this.refs[this.head++] = undefined as unknown as UndoPiece;
  }
}

/**
 * Undo entries in ascending `seq`; the oldest go first when they fall out of the window. What a
 * memory replica held is saved in the stream's arenas (arena.ts): one per write, it is the
 * splitter's most frequent copy, and an entry's slices go back when the entry does.
 */
export class UndoStream {
  private entries: UndoEntry[] = [];
  private head = 0;
  private arenas = new Arenas();
  /** The pieces' extents as columns (virtual access's read map). */
  pieces = new PieceColumns();
  /** Bytes of saved data held. */
  bytes = 0;

  get length(): number { return this.entries.length - this.head; }

  /** What `store` holds in [lba, lba+blocks), for push() (captureBefore, in this stream's arenas). */
  capture(store: BackingStore, lba: bigint, blocks: number): UndoPiece[] | Promise<UndoPiece[]> {
    return captureBefore(store, lba, blocks, this.arenas);
  }

  private release(e: UndoEntry): void {
    for (const p of e.pieces) if (p.arena) { this.arenas.release(p.arena); p.arena = undefined; }
  }

  push(seq: number, set: number, pieces: UndoPiece[]): void {
    let bytes = 0;
    for (const p of pieces) {
      if (p.data) bytes += p.data.length;
      this.pieces.push(seq, set, p);
    }
    this.entries.push({ seq, set, pieces, bytes });
    this.bytes += bytes;
  }

  /**
   * Where a lone apply waits before it overwrites the replica: null here (memory); a stream kept
   * on disk makes the entries just pushed durable first (write-ahead, undo-file.ts).
   */
  ahead(): Promise<void> | null { return null; }

  /** Entries with seq > `after`, newest first. */
  *newestFirst(after: number): Generator<UndoEntry> {
    for (let i = this.entries.length - 1; i >= this.head && this.entries[i].seq > after; i--) yield this.entries[i];
  }

  /** The oldest sequence held (or null). */
  get oldestSeq(): number | null { return this.length ? this.entries[this.head].seq : null; }

  /** Drop the entries with seq > `seq` (the replica is back at `seq`; re-applying records recaptures them). */
  truncateAfter(seq: number): void {
    this.pieces.truncateAfter(seq);
    while (this.entries.length > this.head && this.entries[this.entries.length - 1].seq > seq) {
      const e = this.entries.pop()!;
      this.bytes -= e.bytes;
      this.release(e);
    }
  }

  /** Drop the entries with seq < `seq` (their images left the protection window). */
  dropBefore(seq: number): void {
    this.pieces.dropBefore(seq);
    while (this.head < this.entries.length && this.entries[this.head].seq < seq) {
      const e = this.entries[this.head++];
      this.bytes -= e.bytes;
      this.release(e);
    }
    if (this.head > 4096 && this.head * 2 > this.entries.length) { this.entries = this.entries.slice(this.head); this.head = 0; }
  }

  /** Everything goes, the arenas too (direct access, a disabled group: the history may be large). */
  clear(): void { this.entries = []; this.head = 0; this.bytes = 0; this.arenas = new Arenas(); this.pieces = new PieceColumns(); }
}
