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

/**
 * Undo entries in ascending `seq`; the oldest go first when they fall out of the window. What a
 * memory replica held is saved in the stream's arenas (arena.ts): one per write, it is the
 * splitter's most frequent copy, and an entry's slices go back when the entry does.
 */
export class UndoStream {
  private entries: UndoEntry[] = [];
  private head = 0;
  private arenas = new Arenas();
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
    const bytes = pieces.reduce((n, p) => n + (p.data?.length ?? 0), 0);
    this.entries.push({ seq, set, pieces, bytes });
    this.bytes += bytes;
  }

  /** Entries with seq > `after`, newest first. */
  *newestFirst(after: number): Generator<UndoEntry> {
    for (let i = this.entries.length - 1; i >= this.head && this.entries[i].seq > after; i--) yield this.entries[i];
  }

  /** Entries with seq > `after`, oldest first (a copy of the list; the entries themselves are shared). */
  after(after: number): UndoEntry[] {
    let lo = this.head;
    let hi = this.entries.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.entries[mid].seq <= after) lo = mid + 1;
      else hi = mid;
    }
    return this.entries.slice(lo);
  }

  /** The oldest sequence held (or null). */
  get oldestSeq(): number | null { return this.length ? this.entries[this.head].seq : null; }

  /** Drop the entries with seq > `seq` (the replica is back at `seq`; re-applying records recaptures them). */
  truncateAfter(seq: number): void {
    while (this.entries.length > this.head && this.entries[this.entries.length - 1].seq > seq) {
      const e = this.entries.pop()!;
      this.bytes -= e.bytes;
      this.release(e);
    }
  }

  /** Drop the entries with seq < `seq` (their images left the protection window). */
  dropBefore(seq: number): void {
    while (this.head < this.entries.length && this.entries[this.head].seq < seq) {
      const e = this.entries[this.head++];
      this.bytes -= e.bytes;
      this.release(e);
    }
    if (this.head > 4096 && this.head * 2 > this.entries.length) { this.entries = this.entries.slice(this.head); this.head = 0; }
  }

  /** Everything goes, the arenas too (direct access, a disabled group: the history may be large). */
  clear(): void { this.entries = []; this.head = 0; this.bytes = 0; this.arenas = new Arenas(); }
}
