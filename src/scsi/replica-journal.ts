/**
 * The remote site's copy journal of a remote copy (CRR): what RecoverPoint keeps at the remote
 * site besides the replica volumes (shared/reference/replication-anchors.md §3, "Journal and
 * distribution": read the replica's current data, write it to the undo stream, then write the new
 * data). One per claim (owner, group, copy), beside its receive queue (replica-claim.ts):
 *
 * - Undo log: before a REPLICA RECORD overwrites the remote volume, what it overwrites is saved
 *   (src/splitter/undo.ts, the same stream a local copy keeps), up to the claim's UNDO LIMIT
 *   (production sends it with the CLAIM; DEFAULT_UNDO_LIMIT otherwise). Over it, the oldest entries
 *   go, and the protection window starts later: `floor` is the oldest sequence an image can be
 *   presented at (the base production set, or the newest record whose undo entry fell out).
 * - Image presentation (REPLICA CLAIM action PRESENT IMAGE): the claim's LUs show the image at
 *   sequence S to every I_T nexus (production's image-access target reads them over the link; the
 *   remote site's hosts too, once production released the claim). Logged access is virtual: a
 *   read map built from the undo entries after S (src/splitter/image-map.ts, O(n log n) in the
 *   entries, no data copied), the host's writes in an overlay that END IMAGE discards; the volume
 *   never changes, so the records held meanwhile (the receive queue holds them while an image is
 *   presented) are applied after END IMAGE from where the volume stopped. Direct access rolls
 *   the volume back to S (the undo entries after S, newest first), writes the overlay onto it,
 *   and drops the history: the volume is no image of production any more until production
 *   synchronizes it again (SETBASE).
 */
import type { BackingStore } from '../store/store.ts';
import { ReadMap, VirtualImage, buildReadMaps } from '../splitter/image-map.ts';
import { restorePieces, UndoStream } from '../splitter/undo.ts';
import type { UndoPiece } from '../splitter/undo.ts';
import type { LogicalUnit } from './lu.ts';
import { allExclusive } from './range-lock.ts';

/** Undo data a claim keeps when production names no limit (as the production journal's default). */
export const DEFAULT_UNDO_LIMIT = 256 << 20;

/**
 * TEST HOOK (the remote-image test's negative control): with captureUndo false, records are
 * applied without saving what they overwrite, so an older image presented reads today's data.
 */
export const replicaJournalHooks = { captureUndo: true };

/** Why PRESENT IMAGE cannot present the image asked for (ILLEGAL REQUEST, INVALID FIELD IN PARAMETER LIST). */
export class ImageWindowError extends Error {}

interface Presented { base: BackingStore; image: VirtualImage | null }

/** The image the claim's LUs show, and each LU's replica volume under it. */
interface Presentation { seq: number; direct: boolean; maps: ReadMap[]; buildMs: number; luns: Map<LogicalUnit, Presented> }

const NO_RUNS = new ReadMap(new Float64Array(0), new Float64Array(0), 0, []);

export class ReplicaJournal {
  readonly undo = new UndoStream();
  limit = DEFAULT_UNDO_LIMIT;
  /** The oldest sequence an image can be presented at (null: none, until production sets a base). */
  floor: number | null = null;
  /** Undo entries dropped over the limit. */
  evicted = 0;
  presentation: Presentation | null = null;
  /** The claim's LUs, by their set index in the undo stream (the order they were first written). */
  private readonly lus: LogicalUnit[] = [];

  private setOf(lu: LogicalUnit): number {
    const i = this.lus.indexOf(lu);
    if (i >= 0) return i;
    this.lus.push(lu);
    return this.lus.length - 1;
  }

  /**
   * REPLICA UNDO: what the records after `after` overwrote on `lu`, oldest first, as whole entries
   * while they fit in `room` bytes (`size`: a piece's bytes in the response). `next`: the bytes the
   * first entry left out needs (0: none left out).
   */
  undoOf(lu: LogicalUnit, after: number, room: number, size: (p: UndoPiece) => number): { pieces: Array<UndoPiece & { seq: number }>; more: boolean; next: number } {
    const set = this.lus.indexOf(lu);
    const entries = set < 0 ? [] : [...this.undo.newestFirst(after)].filter((e) => e.set === set).reverse();
    const pieces: Array<UndoPiece & { seq: number }> = [];
    let used = 0;
    for (const e of entries) {
      const need = e.pieces.reduce((n, p) => n + size(p), 0);
      if (used + need > room) return { pieces, more: true, next: pieces.length ? 0 : need };
      used += need;
      for (const p of e.pieces) pieces.push({ ...p, seq: e.seq });
    }
    return { pieces, more: false, next: 0 };
  }

  /** The replica volume of `lu` (its store, or the one under the image presented). */
  baseStore(lu: LogicalUnit): BackingStore { return this.presentation?.luns.get(lu)?.base ?? lu.store; }

  /** The volumes became production's image at `seq` (SETBASE): older undo data is void. */
  rebase(seq: number): void {
    this.undo.clear();
    this.floor = seq;
  }

  /**
   * Record `seq` is about to overwrite [lba, lba+blocks) of `lu`: what it holds is saved, then
   * the oldest entries go while over the limit. Nothing is saved while no image is reachable.
   */
  capture(seq: number, lu: LogicalUnit, store: BackingStore, lba: bigint, blocks: number): void | Promise<void> {
    if (this.floor === null || seq <= this.floor || !replicaJournalHooks.captureUndo) return;
    const set = this.setOf(lu);
    const before = this.undo.capture(store, lba, blocks);
    if (before instanceof Promise) return before.then((p) => this.saved(seq, set, p));
    this.saved(seq, set, before);
  }

  private saved(seq: number, set: number, pieces: UndoPiece[]): void {
    this.undo.push(seq, set, pieces);
    while (this.undo.bytes > this.limit && this.undo.length) {
      const oldest = this.undo.oldestSeq!;
      this.undo.dropBefore(oldest + 1);
      this.floor = oldest;
      this.evicted++;
    }
  }

  /** The window as REPLICA SEQUENCE and status report it. */
  window(): { oldestImage: number | null; undoBytes: number; undoLimit: number; undoEntries: number; evicted: number } {
    return { oldestImage: this.floor, undoBytes: this.undo.bytes, undoLimit: this.limit, undoEntries: this.undo.length, evicted: this.evicted };
  }

  /**
   * PRESENT IMAGE on `lu`: the image at `seq` (`applied`: where the volumes are). Claim-wide: the
   * first LU's command builds the read maps (logged) or rolls every volume back (direct); the
   * others join. Throws ImageWindowError for a sequence outside the window.
   */
  async present(lu: LogicalUnit, seq: number, direct: boolean, applied: number): Promise<void> {
    const p = this.presentation;
    if (p && p.seq !== seq) throw new ImageWindowError(`the image at seq ${p.seq} is presented; END IMAGE first`);
    if (p?.direct) return;
    if (!p) {
      if (this.floor === null) throw new ImageWindowError('no image is reachable (no base sequence set, or direct access dropped the history)');
      if (seq < this.floor || seq > applied) throw new ImageWindowError(`seq ${seq} is outside the window (oldest ${this.floor}, applied ${applied})`);
    }
    this.setOf(lu);
    if (!direct) {
      const at = p ?? this.buildPresentation(seq);
      if (!at.luns.has(lu)) {
        const base = lu.store;
        const image = new VirtualImage([at.maps[this.setOf(lu)] ?? NO_RUNS], [base], at.buildMs);
        at.luns.set(lu, { base, image });
        lu.store = new PresentedStore(base, image);
      }
      return;
    }
    await allExclusive(this.lus, async () => {
      // Back to the image: what each record after it overwrote, newest first.
      for (const e of this.undo.newestFirst(seq)) await restorePieces(this.baseStore(this.lus[e.set]), e.pieces);
      // The host's writes to the logged image become the volume's.
      for (const [l, x] of p?.luns ?? []) {
        if (x.image) await x.image.mergeOverlay(0, x.base);
        x.image?.close();
        l.store = x.base;
      }
    });
    this.undo.clear();
    this.floor = null;
    this.presentation = { seq, direct: true, maps: [], buildMs: 0, luns: new Map() };
  }

  private buildPresentation(seq: number): Presentation {
    const t0 = performance.now();
    const maps = buildReadMaps(this.undo.pieces, seq, this.lus.length);
    return this.presentation = { seq, direct: false, maps, buildMs: performance.now() - t0, luns: new Map() };
  }

  /** END IMAGE: the LUs are their replica volumes again (the overlay goes). Returns what was presented. */
  end(): Presentation | null {
    const p = this.presentation;
    if (!p) return null;
    for (const [l, x] of p.luns) { l.store = x.base; x.image?.close(); }
    this.presentation = null;
    return p;
  }
}

/**
 * An LU's medium while an image is presented in logged access: the replica volume seen through
 * the image's read map, the host's writes in its overlay (image-map.ts VirtualImage, set 0).
 */
export class PresentedStore implements BackingStore {
  constructor(readonly base: BackingStore, private readonly image: VirtualImage) {}
  get blockSize(): number { return this.base.blockSize; }
  get blockCount(): bigint { return this.base.blockCount; }
  get kind(): BackingStore['kind'] { return this.base.kind; }
  get thin(): boolean { return this.base.thin; }
  read(lba: bigint, blocks: number, into?: Buffer): Buffer | Promise<Buffer> { return this.image.read(0, lba, blocks, into); }
  write(lba: bigint, data: Buffer): void { this.image.write(0, lba, data); }
  unmap(lba: bigint, blocks: number): void { this.image.unmap(0, lba, blocks); }
  writeSame(lba: bigint, blocks: number, block: Buffer, unmap: boolean): void { this.image.writeSame(0, lba, blocks, block, unmap); }
  // The volume's provisioning is not the image's: everything reads as mapped.
  mapping(lba: bigint): { mapped: boolean; blocks: bigint } { return { mapped: true, blocks: this.blockCount - lba }; }
  flush(): void {}
  // The array stopping while an image is presented closes the volume under it.
  close(): void | Promise<void> { this.image.close(); return this.base.close(); }
}
