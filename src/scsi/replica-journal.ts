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
 * - On disk (the array's `replicaJournal` folder, file-backed replica LUs): the undo log is also
 *   written to append-only CRC'd segments (src/splitter/undo-file.ts, UndoLog, the local copy's
 *   format), each entry with the record itself (RecordMeta). Write-ahead: the receive queue
 *   captures the before-images of a run of records, makes them durable with one fdatasync, and
 *   only then writes the volumes (replica-claim.ts). When production's link claims again after a
 *   restart, reload() takes the log back: the entries chained by `prev` up to the newest, the last
 *   run checked against the volumes (the records of it that did not reach them are rolled back),
 *   so the window and the applied sequence are what they were before the restart.
 */
import { crc32c } from '../../protocol/iscsi/digest.ts';
import type { BackingStore } from '../store/store.ts';
import { ReadMap, VirtualImage, buildReadMaps } from '../splitter/image-map.ts';
import { restorePieces, UndoStream } from '../splitter/undo.ts';
import type { UndoPiece } from '../splitter/undo.ts';
import { UndoLog } from '../splitter/undo-file.ts';
import type { RecordMeta, UndoScanStop } from '../splitter/undo-file.ts';
import type { LogicalUnit } from './lu.ts';
import { allExclusive } from './range-lock.ts';

/** Undo data a claim keeps when production names no limit (as the production journal's default). */
export const DEFAULT_UNDO_LIMIT = 256 << 20;

/**
 * TEST HOOK (the remote-image test's negative control): with captureUndo false, records are
 * applied without saving what they overwrite, so an older image presented reads today's data.
 */
export const replicaJournalHooks = { captureUndo: true, reload: true };

/** What a record carries into its undo entry on disk (the rest of RecordMeta is the journal's). */
export type RecordNote = Pick<RecordMeta, 'prev' | 'kind' | 'crc' | 'block'>;

/** Scan stops that are a torn tail: the entries cut were never synced, so no volume write followed them. */
const TORN: ReadonlySet<UndoScanStop> = new Set(['short-header', 'short-piece', 'torn-entry']);

/** What reload() found, for the log line and the tests. */
export interface ReplicaReload { entries: number; rolledBack: number; floor: number | null; applied: number | null; dropped: string | null }

/** Why PRESENT IMAGE cannot present the image asked for (ILLEGAL REQUEST, INVALID FIELD IN PARAMETER LIST). */
export class ImageWindowError extends Error {}

interface Presented { base: BackingStore; image: VirtualImage | null }

/** The image the claim's LUs show, and each LU's replica volume under it. */
interface Presentation { seq: number; direct: boolean; maps: ReadMap[]; buildMs: number; luns: Map<LogicalUnit, Presented> }

const NO_RUNS = new ReadMap(new Float64Array(0), new Float64Array(0), 0, []);

export class ReplicaJournal {
  readonly undo = new UndoStream();
  /** The undo log on disk (reload()); null: the undo data lives in memory only. */
  log: UndoLog | null = null;
  /** The next entry on disk starts a write-ahead run (the one after a sync). */
  private runStart = true;
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
    this.clearUndo();
    this.floor = seq;
  }

  private clearUndo(): void {
    this.undo.clear();
    // Queued in order before the next entry's append and sync; a failure shows at that sync.
    void this.log?.clear().catch(() => {});
  }

  /**
   * Record `seq` (`note`: what it is, for the log on disk) is about to overwrite [lba, lba+blocks)
   * of `lu`: what it holds is saved, then the oldest entries go while over the limit. Nothing is
   * saved while no image is reachable. With a log on disk the entry is only queued there: ahead()
   * makes it durable, and the volume must not be written before.
   */
  capture(seq: number, lu: LogicalUnit, store: BackingStore, lba: bigint, blocks: number, note?: RecordNote): void | Promise<void> {
    if (this.floor === null || seq <= this.floor || !replicaJournalHooks.captureUndo) return;
    const before = this.undo.capture(store, lba, blocks);
    if (before instanceof Promise) return before.then((p) => this.saved(seq, lu, lba, blocks, p, note));
    this.saved(seq, lu, lba, blocks, before, note);
  }

  private saved(seq: number, lu: LogicalUnit, lba: bigint, blocks: number, pieces: UndoPiece[], note?: RecordNote): void {
    this.undo.push(seq, this.setOf(lu), pieces);
    if (this.log && note) {
      this.log.append(seq, lu.lun, pieces, { ...note, lun: lu.lun, lba, blocks, run: this.runStart });
      this.runStart = false;
    }
    while (this.undo.bytes > this.limit && this.undo.length) {
      const oldest = this.undo.oldestSeq!;
      this.undo.dropBefore(oldest + 1);
      this.log?.dropBefore(oldest + 1);
      this.floor = oldest;
      this.evicted++;
    }
  }

  /** The write-ahead point: the entries queued on disk are durable once it settles (null: none queued). */
  ahead(): Promise<void> | null {
    if (!this.log?.pending) return null;
    this.runStart = true;
    return this.log.sync();
  }

  /** Records after `applied` were captured but not applied (a failed run): their entries go. */
  forget(applied: number): void {
    this.undo.truncateAfter(applied);
    void this.log?.truncateAfter(applied).catch(() => {});
    this.runStart = true;
  }

  /**
   * Open the undo log in `dir` and take back what a previous run of the array left there. The
   * entries chained by `prev` up to the newest are the history (an entry after a clear, `base`,
   * starts it; an older chain is a history a synchronization replaced). Records reach the volumes
   * one after another, and a run's only after its entries are durable, so every record before the
   * last run reached the volumes, and of the last run a prefix did: each of its entries is checked
   * against its extent (does it hold what the record wrote?), and from the first that does not,
   * the run is rolled back (newest first) and cut from the log. A stop in the segments other than
   * a torn tail (a bad checksum, a lost segment) means entries the volumes may hold are gone: no
   * image older than them can be rebuilt, so the whole history goes (never a wrong image).
   * Returns where the volumes are (null: nothing taken back).
   */
  async reload(dir: string, lunOf: (lun: number) => LogicalUnit | undefined): Promise<ReplicaReload> {
    const log = this.log = await UndoLog.open(dir);
    const found = log.found;
    log.found = [];
    const out: ReplicaReload = { entries: 0, rolledBack: 0, floor: null, applied: null, dropped: null };
    const drop = async (why: string): Promise<ReplicaReload> => {
      await log.clear();
      return { ...out, dropped: why };
    };
    if (!found.length) return log.recovery.stop && !TORN.has(log.recovery.stop) ? drop(`undo segments cut at ${log.recovery.stop}`) : out;
    if (!replicaJournalHooks.reload) return drop('TEST HOOK: replica journal reload skipped');
    if (log.recovery.lostSegments || (log.recovery.stop && !TORN.has(log.recovery.stop))) {
      return drop(`undo segments cut at ${log.recovery.stop} (${log.recovery.truncatedBytes} bytes, ${log.recovery.lostSegments} segments): the volumes may hold records after the cut`);
    }
    let i = found.length - 1;
    while (i > 0 && !found[i].base && found[i - 1].meta && found[i].meta?.prev === found[i - 1].seq) i--;
    const chain = found.slice(i);
    const lus: LogicalUnit[] = [];
    for (const e of chain) {
      const lu = e.meta && lunOf(e.meta.lun);
      if (!e.meta) return drop(`entry ${e.seq} has no record`);
      if (!lu || lu.store.kind !== 'file') return drop(`LUN ${e.meta.lun} is no file-backed LU of the target: its volume did not survive the restart`);
      lus.push(lu);
    }
    let run = chain.length - 1;
    while (run > 0 && !chain[run].meta!.run) run--;
    let cut = chain.length;
    for (let k = run; k < chain.length; k++) if (!(await holds(lus[k].store, chain[k].meta!))) { cut = k; break; }
    if (cut < chain.length) {
      for (let k = chain.length - 1; k >= cut; k--) await restorePieces(lus[k].store, chain[k].pieces.filter((p) => p.blocks > 0));
      for (const lu of new Set(lus.slice(cut))) await lu.store.flush?.();
      await log.truncateAfter(chain[cut].meta!.prev);
    }
    log.dropBefore(chain[0].seq);
    for (let k = 0; k < cut; k++) this.undo.push(chain[k].seq, this.setOf(lus[k]), chain[k].pieces.filter((p) => p.blocks > 0));
    this.floor = chain[0].meta!.prev;
    return { entries: cut, rolledBack: chain.length - cut, floor: this.floor, applied: cut ? chain[cut - 1].seq : this.floor, dropped: null };
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
    // The history goes with the rollback: off the disk first, so that a restart in the middle of
    // it takes back no entries the volumes no longer match (none: production synchronizes them).
    await this.log?.clear();
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

/** Whether `store` holds in the record's extent what the record wrote (reload(): did it reach the volume?). */
async function holds(store: BackingStore, m: RecordMeta): Promise<boolean> {
  const CHUNK = 2048;
  let crc = 0;
  for (let at = 0; at < m.blocks; at += CHUNK) {
    const n = Math.min(CHUNK, m.blocks - at);
    const d = await store.read(m.lba + BigInt(at), n);
    if (m.kind === 'write') { crc = crc32c(d, crc); continue; }
    const bs = store.blockSize;
    for (let o = 0; o < d.length; o += bs) {
      const b = d.subarray(o, o + bs);
      if (m.kind === 'same' ? !b.equals(m.block!) : b.some((x) => x !== 0)) return false;
    }
  }
  return m.kind !== 'write' || crc === m.crc;
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
