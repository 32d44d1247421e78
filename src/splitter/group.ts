/**
 * Consistency groups (RecoverPoint's word): one or more production LUs (replication sets) and one
 * or more copies, with one write sequence for the whole group, so every copy is write-order
 * consistent across all of the group's LUs. Each replication set is the LU's `protection`
 * (src/scsi/split.ts): it applies the splitter's policy and appends what is split to the group's
 * journal; the distributor applies the journal to each copy's replica volumes, in order, off the
 * command's path.
 *
 * States (names after RecoverPoint's; shared/reference/replication-anchors.md, FAPI TransferState):
 * the group is `enabled` or `disabled` (nothing is split or tracked; enabling it again needs a full
 * sweep); its transfer is `init` (synchronizing: a full sweep or the marked regions), `active`
 * (distributing), `paused` (not distributing: new writes only mark their regions) or `error`.
 * Every change goes through transition(from, to, reason), which checks and logs it.
 *
 * Markers (RecoverPoint's word; DRBD's bitmap): while the transfer is paused, a production write
 * is not journaled but marks its 1 MiB regions in each copy's bitmap, so the journal does not grow
 * while nothing drains it. start_transfer then sends the marked regions only. A copy that was never
 * synchronized (or whose group was disabled) needs a full sweep instead: every region allocated on
 * either side is digested on both (CRC32C per 64 KiB, as verify does) and only regions that differ
 * are sent. clear_markers declares a copy identical to production (the field notes' dd seeding):
 * no sweep, no marked regions.
 */
import type { Logger } from 'pino';
import type { SenseReason } from '../../protocol/scsi/sense.ts';
import type { LogicalUnit } from '../scsi/lu.ts';
import { shared } from '../scsi/range-lock.ts';
import type { IgnoredCommand, LuProtection, SplitPrimitive, SplitterClass } from '../scsi/split.ts';
import { MemoryStore, releaseShared } from '../store/memory.ts';
import type { BackingStore } from '../store/store.ts';
import { CrrCopy, LocalCopy, REGION_BYTES, RegionMarkers } from './copy.ts';
import type { AccessedImage, InitProgress, StorageAccessState } from './copy.ts';
import { regionDigest, replicaDigest, unmappedRun } from './digest.ts';
import { MemoryJournal } from './journal.ts';
import type { Journal, JournalRecord, ProtectionWindow } from './journal.ts';
import { PRIMITIVES } from './policy.ts';
import type { Primitive, SplitterSpec } from './policy.ts';
import { formatSpec } from './policy.ts';
import { applyWriteAhead, DurableUndoStream } from './undo-file.ts';
import { recoverGroup } from './recovery.ts';
import type { LinkStatus, ReplicationLink } from './link.ts';

export { CrrCopy, LocalCopy, REGION_BYTES, RegionMarkers };
export type { InitProgress };

export type GroupState = 'enabled' | 'disabled';
export type TransferState = 'init' | 'active' | 'paused' | 'error';

/** Which transfer changes are legal, and nothing else. */
const TRANSFER_EDGES: Record<TransferState, readonly TransferState[]> = {
  init: ['active', 'paused', 'error'],
  active: ['paused', 'error', 'init'],
  paused: ['init', 'active'],
  // start_transfer after an error with nothing to synchronize (a remote copy's lost link) resumes at once.
  error: ['init', 'paused', 'active'],
};

/** One entry of the group's "ignored" log: a command production ran that no copy received. */
export interface IgnoredEntry {
  /** The group's write sequence when it ran: it came after journal record `seq`, before seq+1. */
  seq: number;
  primitive: Primitive;
  name: string;
  opcode: number;
  serviceAction?: number;
  lun: number;
  extents: Array<{ lba: bigint; blocks: number }>;
  initiator: string;
  time: Date;
}

/** How many ignored entries the log keeps (counts go on beyond it). */
export const IGNORED_LOG_LIMIT = 10_000;

/** The distributor applies at most this many records per event-loop turn. */
const DISTRIBUTE_BATCH = 4096;
/** The journal's bytes, as a multiple of its size, past which a write asks whether it is full (checkFull). */
const HIGH_LOAD_CHECK = 1.125;

export interface GroupOptions {
  name: string;
  spec: SplitterSpec;
  /** Production LUs, in replication-set order. */
  luns: LogicalUnit[];
  copies: string[];
  journalBytes: number;
  /** The journal, when not a memory journal of journalBytes (a FileJournal, journal-file.ts). */
  journal?: Journal;
  /** Replica volumes per copy (in `copies` order), when not thin memory stores. */
  replicas?: BackingStore[][];
  /** Remote copies (CRR) by name: their replica volumes on the remote array and the link to it. */
  remote?: Record<string, { replicas: BackingStore[]; link: ReplicationLink }>;
  /** Start the transfer (first initialization, then active) at once; else paused. */
  startTransfer: boolean;
  log?: Logger;
}

/** A state change, as listeners (the admin event bus) get it. */
export interface GroupEvent { group: string; from: TransferState; to: TransferState; reason: string; time: string }

/** The image a copy gives access to, as events name it. */
export interface ImageRef { image: string; seq: number; bookmark: string | null }

/** A change of the group or of one of its copies, as listeners (the admin event bus) get it. */
export type GroupChange =
  | ({ kind: 'transfer' } & GroupEvent)
  /** A copy's storage access (image access, image.ts): `rolling` while the replica is rolled to the image, then `done`. */
  | { kind: 'copy-access'; group: string; copy: string; from: StorageAccessState; to: StorageAccessState; phase: 'rolling' | 'done'; image: ImageRef | null; reason: string }
  /** disable_copy / enable_copy. */
  | { kind: 'copy-state'; group: string; copy: string; from: 'enabled' | 'disabled'; to: 'enabled' | 'disabled'; markedRegions: number; reason: string }
  /** High load began (writes marked: the journal is full of writes not yet distributed) or ended. */
  | { kind: 'high-load'; group: string; highLoad: boolean; reason: string; time: string };

const imageRef = (img: AccessedImage | null): ImageRef | null => (img ? { image: img.image, seq: img.seq, bookmark: img.bookmark } : null);

export class ConsistencyGroup {
  readonly name: string;
  readonly spec: SplitterSpec;
  readonly sets: ReplicationSet[];
  readonly copies: LocalCopy[];
  readonly journal: Journal;
  state: GroupState = 'enabled';
  transfer: TransferState = 'paused';
  readonly bookmarks = new Map<string, { seq: number; time: string }>();
  readonly ignoredLog: IgnoredEntry[] = [];
  readonly ignoredCounts: Record<Primitive, number> = { ats: 0, xcopy: 0, writesame: 0, unmap: 0 };
  /** State changes, newest last (bounded). */
  readonly history: GroupEvent[] = [];
  readonly listeners = new Set<(e: GroupChange) => void>();
  /**
   * The last synchronization (start_transfer with a sweep or markers due): regions compared and
   * sent, bytes sent to the copies (summed over copies) against the volumes' size.
   */
  init: InitProgress = { kind: 'none', regions: 0, regionsCompared: 0, bytesSent: 0, volumeBytes: 0, done: false };
  /**
   * RecoverPoint's high load: the journal holds more writes not yet distributed than its size
   * allows (a copy slower than production: a rate-limited link, an accessed image that holds the
   * journal, a copy in error). Writes then mark their regions instead of growing the journal
   * without bound; once every copy distributed to has caught up and the journal is within its
   * size again, a short initialization sends the marked regions (transfer active -> init ->
   * active). Checked when the journal passes HIGH_LOAD_CHECK of its size.
   */
  highLoad = false;
  /**
   * Whether a write may be applied to caught-up local copies as it is split (appliesInline). Tests
   * of what the distributor does with records it has not applied yet turn it off.
   */
  applyInline = true;
  private scheduled = false;
  private initializing: Promise<void> = Promise.resolve();
  readonly log?: Logger;

  constructor(o: GroupOptions) {
    if (!o.luns.length) throw new Error(`group ${o.name}: no production LUs`);
    if (!o.copies.length) throw new Error(`group ${o.name}: no copies`);
    this.name = o.name;
    this.spec = o.spec;
    this.log = o.log;
    this.journal = o.journal ?? new MemoryJournal(o.journalBytes);
    // A file journal: the distributor goes on as group commits make records durable (drainCopy).
    if (this.journal.durableSeq !== undefined) this.journal.onDurable = () => { if (this.transfer === 'active') this.schedule(); };
    this.sets = o.luns.map((lu, i) => {
      if (lu.protection) throw new Error(`group ${o.name}: LUN ${lu.lun} of ${lu.target.name} is already protected`);
      return new ReplicationSet(this, i, lu);
    });
    // Replica volumes: thin memory stores of the production LU's geometry.
    this.copies = o.copies.map((c, k) => {
      const remote = o.remote?.[c];
      if (remote) return new CrrCopy(c, remote.replicas, remote.link);
      return new LocalCopy(c, o.replicas?.[k] ?? o.luns.map((lu) => new MemoryStore(lu.blockCount, { blockSize: lu.blockSize })));
    });
    for (const s of this.sets) s.lu.protection = s;
    void this.syncClaims();
    if (o.startTransfer) this.startTransfer('group created with start_transfer=yes');
  }

  private claimsSent: Promise<void> = Promise.resolve();

  /**
   * Claim each remote copy's LUs on the remote array while the copy is distributed to or waits
   * for it (group and copy enabled, no image access), release them otherwise (REPLICA CLAIM,
   * src/scsi/replica-claim.ts): RecoverPoint's replica volumes are not accessible to the remote
   * site's hosts but through image access. Called at every such change; settles once the remote
   * array has the outcome (or the link failed to carry it: the link's status says `pending`).
   */
  syncClaims(): Promise<void> {
    const sent = Promise.all(this.copies.map((c) => (c instanceof CrrCopy
      ? c.link.setClaim(this.state === 'enabled' && c.enabled && c.access === 'no-access')
      : null))).then(() => {});
    this.claimsSent = sent;
    return sent;
  }

  /** Settles once the last claim change reached the remote arrays (the admin verbs wait for it). */
  claimsSettled(): Promise<void> { return this.claimsSent; }

  /** The one place transfer state changes: checked against TRANSFER_EDGES, logged, announced. */
  transition(from: TransferState, to: TransferState, reason: string): void {
    if (this.transfer !== from) throw new Error(`group ${this.name}: transfer is ${this.transfer}, not ${from}`);
    if (!TRANSFER_EDGES[from].includes(to)) throw new Error(`group ${this.name}: transfer cannot go from ${from} to ${to}`);
    this.transfer = to;
    const e: GroupEvent = { group: this.name, from, to, reason, time: new Date().toISOString() };
    this.history.push(e);
    if (this.history.length > 100) this.history.shift();
    this.log?.info({ group: this.name, from, to, reason }, 'consistency group transfer state');
    this.announce({ kind: 'transfer', ...e });
    if (to === 'active') this.schedule();
  }

  private announce(e: GroupChange): void {
    for (const l of this.listeners) l(e);
  }

  /**
   * The one place a copy's storage access changes (LocalCopy.transition checks the edge): logged and
   * announced. `image`: the image it is being given (enable), else the copy's current one.
   */
  copyAccess(c: LocalCopy, to: StorageAccessState, reason: string, o: { phase?: 'rolling' | 'done'; image?: ImageRef | null } = {}): void {
    const ch = c.transition(to, reason);
    this.logInfo(ch, 'copy storage access');
    if (c instanceof CrrCopy) void this.syncClaims();
    this.announceAccess(c, ch.from, o.phase ?? 'done', reason, to === 'no-access' ? null : o.image ?? imageRef(c.image));
  }

  /** Announce the copy's access as it stands (from `from`): enable_image_access's `done` once the replica is the image. */
  announceAccess(c: LocalCopy, from: StorageAccessState, phase: 'rolling' | 'done', reason: string, image: ImageRef | null = imageRef(c.image)): void {
    this.announce({ kind: 'copy-access', group: this.name, copy: c.name, from, to: c.access, phase, image, reason });
  }

  /**
   * start_transfer: when a copy needs synchronizing (never synchronized, or regions marked while
   * paused) the transfer is `init` while the sweep or the marked regions are sent and new writes
   * are journaled; then the journal is distributed on top (last writer wins, in sequence order, so
   * the result is production) and the transfer is `active`. Otherwise it resumes at once.
   */
  startTransfer(reason: string): Promise<void> {
    if (this.state === 'disabled') throw new Error(`group ${this.name} is disabled: enable_group first`);
    if (this.transfer === 'active' || this.transfer === 'init') return this.initializing;
    if (!this.copies.some((c) => c.needsSweep || c.markedRegions > 0)) { this.transition(this.transfer, 'active', reason); return Promise.resolve(); }
    return this.beginInit(reason);
  }

  /** Transfer `init`: the sweep or the marked regions go to the copies, then `active`. */
  private beginInit(reason: string): Promise<void> {
    this.transition(this.transfer, 'init', reason);
    return this.initializing = this.initialize().then(
      () => {
        if (this.transfer !== 'init') return;
        this.transition('init', 'active', 'initialization complete');
        // A copy that came back meanwhile (enable_copy, disable_image_access) was not in this
        // initialization: it is synchronized alone now.
        for (const c of this.copies) if (c.distributing && (c.needsSweep || c.markedRegions > 0)) void this.resyncCopy(c, true).catch(() => {});
      },
      (err: unknown) => { if (this.transfer === 'init') this.transition('init', 'error', `initialization failed: ${(err as Error).message}`); },
    );
  }

  /** Settles once a running initialization has ended (at once when none runs). */
  ready(): Promise<void> { return this.initializing; }

  /** pause_transfer: distribution stops; from now on writes mark their regions instead of growing the journal. */
  pauseTransfer(reason: string): void {
    if (this.transfer === 'paused') return;
    this.transition(this.transfer, 'paused', reason);
  }

  /** True while a write is tracked by markers instead of journaled. */
  get marking(): boolean { return this.transfer === 'paused' || this.highLoad; }

  /**
   * enable_group: split and track again. A group that was disabled missed writes it did not
   * track, so its copies need a full sweep (or clear_markers) before the transfer starts.
   */
  enable(startTransfer: boolean, reason: string): Promise<void> {
    if (this.state === 'enabled') {
      // Already enabled (a group configured with startTransfer: false is enabled and paused):
      // start_transfer=yes starts it; =no is only true of a paused transfer.
      if (startTransfer) return this.startTransfer(reason);
      if (this.transfer !== 'paused') throw new Error(`group ${this.name} is enabled with transfer ${this.transfer}; start_transfer=no needs pause_transfer first`);
      return Promise.resolve();
    }
    this.state = 'enabled';
    this.log?.info({ group: this.name, reason }, 'consistency group enabled');
    void this.syncClaims();
    return startTransfer ? this.startTransfer(reason) : Promise.resolve();
  }

  /** disable_group: the transfer stops and nothing is journaled or marked until enable_group. */
  disable(reason: string): void {
    if (this.state === 'disabled') throw new Error(`group ${this.name} is already disabled`);
    const accessed = this.copies.find((c) => c.access !== 'no-access');
    if (accessed) throw new Error(`group ${this.name}: copy ${accessed.name} has image access (${accessed.access}); disable_image_access first`);
    this.pauseTransfer(reason);
    this.state = 'disabled';
    for (const c of this.copies) { c.needsSweep = true; c.imageFloor = null; c.undo.clear(); for (const m of c.markers) m.clear(); }
    this.log?.info({ group: this.name, reason }, 'consistency group disabled');
    void this.syncClaims();
  }

  /**
   * clear_markers: the operator declares the copy (default: every copy) identical to production,
   * e.g. after seeding it with dd from a block-level image: no full sweep, no marked regions, and
   * whatever the journal held for it is taken as already there. Only while the transfer is paused.
   */
  clearMarkers(copy?: string): LocalCopy[] {
    if (this.state === 'disabled') throw new Error(`group ${this.name} is disabled: enable_group first`);
    if (this.transfer !== 'paused') throw new Error(`group ${this.name}: transfer is ${this.transfer}; clear_markers needs it paused (pause_transfer, or enable_group start_transfer=no)`);
    const cs = copy === undefined ? this.copies : [this.copy(copy)];
    const accessed = cs.find((c) => c.access !== 'no-access');
    if (accessed) throw new Error(`group ${this.name}: copy ${accessed.name} has image access (${accessed.access}); disable_image_access first`);
    const last = this.journal.nextSeq - 1;
    for (const c of cs) {
      for (const m of c.markers) m.clear();
      c.needsSweep = false;
      c.appliedSeq = last;
      c.consistentAt(last);
    }
    this.trimJournal(false);
    this.log?.info({ group: this.name, copies: cs.map((c) => c.name) }, 'markers cleared: copies declared identical to production');
    return cs;
  }

  private async initialize(): Promise<void> {
    // A copy with image access or disabled waits: it is synchronized when it is distributed to again.
    const cs = this.copies.filter((c) => c.distributing);
    const sweep = cs.some((c) => c.needsSweep);
    const init: InitProgress = this.init = { kind: sweep ? 'full-sweep' : 'markers', regions: 0, regionsCompared: 0, bytesSent: 0, volumeBytes: 0, done: false };
    const live = () => this.transfer === 'init';
    // Records journaled before the pause are older than anything marked since: applied first
    // (in order, and awaited: a file replica's writes settle later).
    for (const c of cs) await this.drainNow(c);
    for (const s of this.sets) {
      init.volumeBytes += Number(s.lu.blockCount) * s.lu.blockSize;
      for (const c of cs) {
        if (c.needsSweep) await this.sweep(s, c, init, live);
        else await this.sendMarked(s, c, init, live);
        if (!live()) return;
      }
    }
    // The records journaled meanwhile are applied on top, in order: from the journal's end on, the
    // replicas are an image of production, and each record's undo data is kept (image access).
    for (const c of cs) { c.needsSweep = false; c.consistentAt(this.journal.nextSeq - 1); }
    init.done = true;
  }

  /** Apply every record the copy lacks now (awaited: a file replica's writes settle later). */
  private async drainNow(c: LocalCopy): Promise<void> {
    if (this.awaited(c)) await this.drainAll(c);
    else for (const r of this.journal.after(c.appliedSeq)) c.apply(r);
  }

  /** The last record copies may get: a file journal's durable end, else the journal's end. */
  private distributable(): number { return this.journal.durableSeq ?? this.journal.nextSeq - 1; }

  /** Everything journaled so far is durable (file journal; memory: at once), then drainCopy gets all of it. */
  private async drainAll(c: LocalCopy): Promise<void> {
    await this.journal.whenDurable(this.journal.nextSeq - 1);
    await this.drainCopy(c, Infinity);
  }

  /** Whether applying a record to `c` settles later, so records go one after the other (file journal, remote copy). */
  private awaited(c: LocalCopy): boolean { return !!this.journal.writeCheckpoint || c.kind === 'remote'; }

  /**
   * Synchronize one copy while the group goes on distributing to the others (enable_copy, the end
   * of direct image access): `drain` first applies what the journal holds for it (older than
   * anything marked); then its full sweep or its marked regions are sent, and the records
   * journaled meanwhile are applied on top once it is distributed to again.
   */
  async resyncCopy(c: LocalCopy, drain: boolean): Promise<void> {
    if (c.syncing) return;
    if (this.transfer !== 'active') return; // start_transfer synchronizes it with the others
    c.syncing = true;
    const sync: InitProgress = c.sync = { kind: c.needsSweep ? 'full-sweep' : 'markers', regions: 0, regionsCompared: 0, bytesSent: 0, volumeBytes: 0, done: false };
    const live = () => this.transfer === 'active' && c.enabled && c.access === 'no-access';
    try {
      if (drain) await this.drainNow(c);
      else c.appliedSeq = this.journal.nextSeq - 1;
      c.imageFloor = null;
      c.undo.clear();
      for (const s of this.sets) {
        sync.volumeBytes += Number(s.lu.blockCount) * s.lu.blockSize;
        if (c.needsSweep) await this.sweep(s, c, sync, live);
        else await this.sendMarked(s, c, sync, live);
        if (!live()) return;
      }
      c.needsSweep = false;
      c.consistentAt(this.journal.nextSeq - 1);
      sync.done = true;
      this.log?.info({ group: this.name, copy: c.name, ...sync }, 'copy synchronized');
    } finally {
      c.syncing = false;
      this.schedule();
    }
  }

  /**
   * Copy region [at, at+n) of set `s` from production to copy `c`'s replica, if `compare` only when
   * their digests differ. Shared: no write is half applied while the region is read, and none can
   * change it (a memory store's read is a view) until the replica has it; a write waiting for the
   * region is journaled after it, and applied on top.
   */
  private async syncRegion(s: ReplicationSet, c: LocalCopy, at: bigint, n: number, compare: boolean, progress: InitProgress): Promise<void> {
    const lu = s.lu;
    const replica = c.replicas[s.index];
    await shared(lu, at, n, async () => {
      const d = await lu.store.read(at, n);
      if (compare) {
        progress.regionsCompared++;
        // A remote replica digests its side where it is: 4 bytes per 64 KiB cross the link, not the data.
        if (regionDigest(d).equals(await replicaDigest(replica, at, n))) return;
      }
      await replica.write(at, d);
      progress.regions++;
      progress.bytesSent += n * lu.blockSize;
    });
    await new Promise<void>((r) => setImmediate(r));
  }

  /** Full sweep: every region allocated on either side, compared by digest; only those that differ are sent. */
  private async sweep(s: ReplicationSet, c: LocalCopy, progress: InitProgress, live: () => boolean): Promise<void> {
    const lu = s.lu;
    const replica = c.replicas[s.index];
    const per = BigInt(c.markers[s.index].regionBlocks);
    for (let lba = 0n; lba < lu.blockCount;) {
      if (!live()) return;
      const a = unmappedRun(lu.store, lba);
      const b = unmappedRun(replica, lba);
      const skip = ((a < b ? a : b) / per) * per;
      if (skip > 0n) { lba += skip; continue; }
      const n = Number(lu.blockCount - lba < per ? lu.blockCount - lba : per);
      await this.syncRegion(s, c, lba, n, true, progress);
      lba += BigInt(n);
    }
    // Marks made before the sweep began are covered by it.
    c.markers[s.index].clear();
  }

  /** The regions marked while paused, sent whole; a mark is cleared once its region is on the replica. */
  private async sendMarked(s: ReplicationSet, c: LocalCopy, progress: InitProgress, live: () => boolean): Promise<void> {
    const m = c.markers[s.index];
    for (const i of [...m.marked()]) {
      if (!live()) return;
      const [at, n] = m.region(i);
      await this.syncRegion(s, c, at, n, false, progress);
      m.unmark(i);
    }
  }

  // ---- the splitter side ---------------------------------------------------------------------

  /** Track a write that is not journaled (transfer paused): its regions are marked in every copy. */
  mark(set: number, lba: bigint, blocks: number): void {
    for (const c of this.copies) c.markers[set].mark(lba, blocks);
  }

  /** Journal a split write; a promise when the host must wait for the record to be durable. */
  append(r: Omit<JournalRecord, 'seq' | 'bytes'>): Promise<void> | null {
    const rec = this.journal.append(r);
    // A disabled copy is not distributed to: the write marks its regions for enable_copy.
    for (const c of this.copies) if (!c.enabled) c.markers[r.set].mark(r.lba, r.blocks);
    if (this.journal.bytes > this.journal.limitBytes * HIGH_LOAD_CHECK) this.checkFull();
    if (this.transfer === 'active') this.schedule();
    return this.journal.whenDurable(rec.seq);
  }

  /**
   * Whether a write can be applied to every copy as it is split, without a journal copy of its
   * payload or a turn of the distributor: a memory journal with transfer active and no high
   * load, and every copy a local one distributed to, on memory replicas (synchronous), with
   * nothing left to apply. The journal still records it (sequence, extent, time) and each copy
   * saves what it overwrote (undo), so images and the window are what the distributor would have
   * made; only the payload's stay in the Do stream is skipped, as it ends at distribution anyway.
   */
  private appliesInline(): boolean {
    if (!this.applyInline || this.transfer !== 'active' || this.highLoad || !(this.journal instanceof MemoryJournal)) return false;
    const last = this.journal.nextSeq - 1;
    for (const c of this.copies) {
      if (c.kind !== 'local' || !c.synchronous || !c.distributing || c.appliedSeq !== last) return false;
    }
    return true;
  }

  /**
   * Split a write's data: applied to the copies at once when they allow it (appliesInline), else
   * journaled for the distributor (`data` is lent: copied in unless `owned`).
   */
  appendData(set: number, lba: bigint, blocks: number, data: Buffer, owned: boolean): Promise<void> | null {
    if (!this.appliesInline()) {
      return this.append({ time: Date.now(), set, kind: 'data', lba, blocks, data: owned ? data : this.journal.copyIn(data), unmap: false });
    }
    const j = this.journal as MemoryJournal;
    const rec = j.append({ time: Date.now(), set, kind: 'data', lba, blocks, data, unmap: false });
    for (const c of this.copies) {
      try {
        c.apply(rec);
      } catch (err) {
        // As the distributor does (distribute): the copy stops where it is, and the record keeps a
        // payload of its own for when the transfer starts again.
        j.keepPayload(rec);
        this.transition('active', 'error', `copy ${c.name} could not apply record ${rec.seq}: ${(err as Error).message}`);
        return null;
      }
    }
    j.distributed(rec);
    if (j.bytes > j.limitBytes) this.trimJournal(false);
    return null;
  }

  logIgnored(set: ReplicationSet, c: IgnoredCommand): void {
    const p = c.primitive as Primitive;
    this.ignoredCounts[p]++;
    if (this.ignoredLog.length >= IGNORED_LOG_LIMIT) this.ignoredLog.shift();
    this.ignoredLog.push({
      seq: this.journal.nextSeq - 1, primitive: p, name: c.name, opcode: c.opcode, serviceAction: c.serviceAction,
      lun: set.lu.lun, extents: c.extents, initiator: c.initiator, time: c.time,
    });
  }

  // ---- the distributor -------------------------------------------------------------------------

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => { this.scheduled = false; this.distribute(DISTRIBUTE_BATCH); });
  }

  /** Apply up to `max` records per copy; reschedule when more are left. */
  distribute(max: number): void {
    if (this.transfer !== 'active') return;
    if (this.journal.writeCheckpoint) { this.distributeDurable(max); return; }
    let more = false;
    for (const c of this.copies) {
      if (!c.distributing) continue;
      if (c instanceof CrrCopy) { this.ship(c, max); continue; }
      try {
        for (const r of this.journal.after(c.appliedSeq, max)) c.apply(r);
      } catch (err) {
        // A replica that cannot take a record (its thin pool is exhausted): the copy stops where
        // it is, production goes on, and the transfer says so.
        this.transition('active', 'error', `copy ${c.name} could not apply record ${c.appliedSeq + 1}: ${(err as Error).message}`);
        return;
      }
      if (c.appliedSeq < this.journal.nextSeq - 1) more = true;
    }
    this.trimJournal(false);
    if (more) this.schedule();
  }

  /**
   * A remote copy (CRR) of a memory-journaled group: up to `max` records go over its link in
   * write order, several in flight and applied by the remote array in sequence order (CrrCopy.ship),
   * off the distributor's turn; the local copies do not wait for it. A record the remote array
   * refuses, or a lost link, stops the transfer (`error`); start_transfer resumes from where the
   * remote array says it is.
   */
  private ship(c: CrrCopy, max: number): void {
    if (c.shipping) return;
    const stop = () => this.transfer !== 'active' || !c.distributing;
    c.shipping = this.drainCopy(c, max, stop).then(
      () => {
        this.trimJournal(false);
        if (!stop() && c.appliedSeq < this.journal.nextSeq - 1) this.schedule();
      },
      (err: unknown) => {
        if (this.transfer === 'active') this.transition('active', 'error', `copy ${c.name} could not apply record ${c.appliedSeq + 1}: ${(err as Error).message}`);
      },
    ).finally(() => { c.shipping = null; });
  }

  /**
   * Drop the oldest records while over the size limit, but none an enabled copy still needs
   * (`durable`: none past its checkpoint); a copy with image access holds the journal where its
   * image is, as RecoverPoint's journal fills while an image is accessed. Undo data of images that
   * left the window goes with them.
   */
  private trimJournal(durable: boolean): void {
    let keep = Infinity;
    for (const c of this.copies) if (c.enabled) keep = Math.min(keep, durable ? c.checkpointSeq : c.appliedSeq, c.heldSeq);
    this.journal.trim(keep);
    for (const c of this.copies) c.undo.dropBefore(this.journal.firstSeq);
    if (this.highLoad) this.endHighLoad();
  }

  /** The journal is past HIGH_LOAD_CHECK of its size: history is dropped first; what is left over the size is undistributed (high load). */
  private checkFull(): void {
    if (this.highLoad) return;
    // The distributor first: a burst of writes within one event-loop turn has not given it its turn yet.
    if (this.transfer === 'active' && !this.journal.writeCheckpoint) this.distribute(DISTRIBUTE_BATCH);
    this.trimJournal(!!this.journal.writeCheckpoint);
    if (this.journal.bytes <= this.journal.limitBytes) return;
    this.highLoad = true;
    const lagging = this.copies.filter((c) => c.enabled && c.appliedSeq < this.journal.nextSeq - 1).map((c) => c.name);
    this.log?.warn({ group: this.name, journalBytes: this.journal.bytes, limitBytes: this.journal.limitBytes, lagging }, 'high load: the journal is full of writes not yet distributed; writes are marked');
    this.announce({ kind: 'high-load', group: this.name, highLoad: true, reason: `journal full (${this.journal.bytes} of ${this.journal.limitBytes} bytes) with writes not yet distributed to ${lagging.join(', ') || 'no copy'}`, time: new Date().toISOString() });
  }

  /** High load ends once every copy distributed to has caught up and the journal is within its size; the marked regions follow. */
  private endHighLoad(): void {
    if (this.journal.bytes > this.journal.limitBytes) return;
    const last = this.journal.nextSeq - 1;
    if (this.copies.some((c) => c.distributing && c.appliedSeq < last)) return;
    this.highLoad = false;
    this.log?.info({ group: this.name }, 'high load over');
    this.announce({ kind: 'high-load', group: this.name, highLoad: false, reason: 'the copies caught up', time: new Date().toISOString() });
    if (this.transfer === 'active' && this.copies.some((c) => c.distributing && (c.needsSweep || c.markedRegions > 0))) {
      void this.beginInit('high load over: the regions marked meanwhile are sent (short initialization)').catch(() => {});
    }
  }

  /** Apply everything journaled so far to `copy` now (verify's drain). Only with transfer active. */
  catchUp(copy: LocalCopy): void | Promise<void> {
    if (this.transfer !== 'active') throw new Error(`group ${this.name}: transfer is ${this.transfer}; the copy cannot be drained (start the transfer first)`);
    if (!copy.distributing) throw new Error(`group ${this.name}: copy ${copy.name} is not distributed to (${copy.enabled ? (copy.syncing ? 'synchronizing' : copy.access) : 'disabled'}); verify --image checks an accessed image`);
    if (this.awaited(copy)) return this.drainAll(copy);
    for (const r of this.journal.after(copy.appliedSeq)) void copy.apply(r);
  }

  // ---- file journal: durable copies, checkpoints, recovery (journal-file.ts) ----------------

  private durableRun: Promise<void> | null = null;

  /**
   * The distributor of a file-journaled group: replicas are file stores, so each record is
   * written in order (two writes to one block must not race in the thread pool), then the
   * replicas are fdatasync'd and only then the copy's checkpoint moves; the journal drops no
   * record past the lowest checkpoint, so a crash at any point leaves every record a copy may
   * lack still in the journal, to be re-applied at start-up.
   */
  private distributeDurable(max: number): void {
    if (this.durableRun) return;
    this.durableRun = (async () => {
      // Each copy's records go in order; the copies go side by side (a local copy does not wait
      // for a remote one's link).
      const cs = this.copies.filter((c) => c.distributing);
      await Promise.all(cs.map((c) => this.drainCopy(c, max, () => this.transfer !== 'active' || !c.distributing)));
      // Records not yet durable wait for their group commit (onDurable schedules again).
      const more = cs.some((c) => c.appliedSeq < this.distributable());
      this.trimJournal(true);
      if (more) this.schedule();
    })().catch((err: unknown) => {
      if (this.transfer === 'active') this.transition('active', 'error', `copy could not apply a record: ${(err as Error).message}`);
    }).finally(() => { this.durableRun = null; });
  }

  /**
   * Apply up to `max` records to `copy` (until `stop` says so), then, with a file journal, sync its
   * replicas and move its checkpoint. One drain at a time per copy.
   */
  drainCopy(c: LocalCopy, max: number, stop?: () => boolean): Promise<void> {
    const run = c.serial.then(async () => {
      // A snapshot of the records: the index may be compacted while the writes are awaited.
      // File journal: only what is durable (durableSeq). Memory: everything.
      const end = this.distributable();
      const batch: JournalRecord[] = [];
      for (const r of this.journal.after(c.appliedSeq, max)) { if (r.seq > end) break; batch.push(r); }
      // A remote copy: several records in flight, applied by the remote array in sequence order.
      if (c instanceof CrrCopy) await c.ship(batch, this.journal.nextSeq - 1, stop);
      else if (c.undo instanceof DurableUndoStream) await applyWriteAhead(c, c.undo, batch, stop);
      else {
        for (const r of batch) {
          if (stop?.()) break;
          await c.apply(r);
        }
      }
      if (!this.journal.writeCheckpoint) return;
      // A copy out of step with the journal (image access, disabled, marked, synchronizing) is
      // checkpointed as not initialized: a restart sweeps it.
      const initialized = this.init.done && c.inStep;
      if (c.checkpointSeq === c.appliedSeq && c.checkpointInitialized === initialized) return;
      for (const s of c.replicas) await s.flush?.();
      const cp = { appliedSeq: c.appliedSeq, initialized };
      await this.journal.writeCheckpoint!(c.name, cp);
      c.checkpointSeq = cp.appliedSeq;
      c.checkpointInitialized = cp.initialized;
    });
    c.serial = run.catch(() => {});
    return run;
  }

  /** What recover() found and did (status shows it). */
  recovery: { reapplied: number; sweep: boolean; reason: string; imagesKept?: boolean } | null = null;

  /**
   * Start-up of a file-journaled group, before the transfer starts (recovery.ts): each copy's undo
   * data and the records after its checkpoint, and after an unclean stop the comparison with
   * production.
   */
  recover(unclean: boolean, testSkip = false): Promise<void> { return recoverGroup(this, unclean, testSkip); }

  private bookmarksSaved: Promise<void> = Promise.resolve();

  /** File journal: the bookmarks go to disk, one save after the other (the last has them all). */
  private saveBookmarks(): void {
    const j = this.journal;
    if (!j.writeBookmarks) return;
    const list = [...this.bookmarks].map(([name, b]) => ({ name, ...b }));
    this.bookmarksSaved = this.bookmarksSaved.then(() => j.writeBookmarks!(list)).catch((err: unknown) => {
      this.log?.error({ err, group: this.name }, 'bookmarks could not be saved');
    });
  }

  /** Clean stop: let the distributor finish, make the journal durable and close the files. */
  async close(): Promise<void> {
    await this.durableRun;
    // Markers (and a due sweep) live in memory only: a copy that has any is checkpointed as not
    // initialized, so the next start sweeps it (by digest, sending only what differs).
    if (this.copies.some((c) => c.needsSweep || c.markedRegions > 0)) this.init.done = false;
    // The checkpoint says where each copy is, and whether its initialization completed.
    for (const c of this.copies) await (this.journal.writeCheckpoint ? this.drainCopy(c, 0) : c.serial);
    await Promise.all(this.copies.map((c) => (c instanceof CrrCopy ? c.shipping : null)));
    await this.bookmarksSaved;
    for (const c of this.copies) if (c.undo instanceof DurableUndoStream) await c.undo.log.close();
    await this.journal.close();
    if (this.journal.writeCheckpoint) {
      for (const c of this.copies) for (const s of c.replicas) { await s.flush?.(); await s.close(); }
    }
    for (const c of this.copies) if (c instanceof CrrCopy) await c.link.close();
  }

  /**
   * disable_copy: the copy is no longer distributed to, and keeps no history (its undo data and
   * images go, as RecoverPoint's journal does); every write it has not received, and every write
   * from now on, marks its regions, so enable_copy sends only those. The other copies go on.
   */
  disableCopy(name: string, reason: string): LocalCopy {
    const c = this.copy(name);
    if (!c.enabled) throw new Error(`group ${this.name}: copy ${c.name} is already disabled`);
    if (c.access !== 'no-access') throw new Error(`group ${this.name}: copy ${c.name} has image access (${c.access}); disable_image_access first`);
    for (const r of this.journal.after(c.appliedSeq)) c.markers[r.set].mark(r.lba, r.blocks);
    c.enabled = false;
    c.imageFloor = null;
    c.undo.clear();
    if (this.journal.writeCheckpoint) void this.drainCopy(c, 0).catch(() => {});
    this.log?.info({ group: this.name, copy: c.name, reason, markedRegions: c.markedRegions }, 'copy disabled');
    void this.syncClaims();
    this.announce({ kind: 'copy-state', group: this.name, copy: c.name, from: 'enabled', to: 'disabled', markedRegions: c.markedRegions, reason });
    return c;
  }

  /**
   * enable_copy: distribute to the copy again. Its marked regions (or its full sweep) are sent at
   * once while the transfer is active, else at start_transfer; the journal from now on on top.
   */
  enableCopy(name: string, reason: string): LocalCopy {
    const c = this.copy(name);
    if (c.enabled) throw new Error(`group ${this.name}: copy ${c.name} is already enabled`);
    if (this.state === 'disabled') throw new Error(`group ${this.name} is disabled: enable_group first`);
    c.enabled = true;
    // Everything it missed is marked: the journal before now is not applied to it.
    c.appliedSeq = this.journal.nextSeq - 1;
    this.log?.info({ group: this.name, copy: c.name, reason }, 'copy enabled');
    void this.syncClaims();
    this.announce({ kind: 'copy-state', group: this.name, copy: c.name, from: 'disabled', to: 'enabled', markedRegions: c.markedRegions, reason });
    void this.resyncCopy(c, false).catch((err: unknown) => this.log?.error({ err, group: this.name, copy: c.name }, 'copy synchronization failed'));
    return c;
  }

  /**
   * File journal: a copy out of step with the journal (image access) is checkpointed as not
   * initialized, so a restart sweeps it; and as initialized again once it is back in step
   * (disable_image_access), its undo data cut back on disk first.
   */
  async checkpointOutOfStep(c: LocalCopy): Promise<void> {
    if (c.undo instanceof DurableUndoStream) await c.undo.log.settled();
    if (this.journal.writeCheckpoint) await this.drainCopy(c, 0);
  }

  logInfo(o: object, msg: string): void { this.log?.info({ group: this.name, ...o }, msg); }

  /** Wake the distributor (a copy can be distributed to again). */
  resume(): void { if (this.transfer === 'active') this.schedule(); }

  /**
   * Ask each remote copy whose link is up where its remote journal is (its window), for status;
   * at most `ms` each, never logging in for it, failures left to the next look.
   */
  async refreshRemote(ms = 2000): Promise<void> {
    await Promise.all(this.copies.map((c) => (c instanceof CrrCopy && c.link.connected
      ? Promise.race([c.query().catch(() => {}), new Promise((r) => setTimeout(r, ms).unref())])
      : null)));
  }

  copy(name?: string): LocalCopy {
    const c = name === undefined ? this.copies[0] : this.copies.find((x) => x.name === name);
    if (!c) throw new Error(`group ${this.name}: no copy "${name}" (copies: ${this.copies.map((x) => x.name).join(', ')})`);
    return c;
  }

  bookmark(name: string): { name: string; seq: number; time: string } {
    if (typeof name !== 'string' || !/^[\w.:-]{1,64}$/.test(name)) throw new Error('name: a bookmark name is 1-64 letters, digits, . _ : -');
    if (this.bookmarks.has(name)) throw new Error(`name: bookmark "${name}" exists in group ${this.name}`);
    const b = { seq: this.journal.nextSeq - 1, time: new Date().toISOString() };
    this.bookmarks.set(name, b);
    this.saveBookmarks();
    this.log?.info({ group: this.name, bookmark: name, seq: b.seq }, 'bookmark');
    return { name, ...b };
  }

  status(): GroupStatus {
    const last = this.journal.nextSeq - 1;
    return {
      name: this.name,
      state: this.state,
      transfer: this.transfer,
      splitter: { spec: formatSpec(this.spec), kind: this.spec.kind },
      replicationSets: this.sets.map((s) => ({ lun: s.lu.lun, target: s.lu.target.name, blocks: String(s.lu.blockCount), blockSize: s.lu.blockSize })),
      journal: {
        kind: this.journal.kind, bytes: this.journal.bytes, limitBytes: this.journal.limitBytes, records: this.journal.length,
        lastSeq: last, evictedRecords: this.journal.evicted, protectionWindow: this.journal.window(),
      },
      copies: this.copies.map((c) => ({
        name: c.name, kind: c.kind, enabled: c.enabled, access: c.access, appliedSeq: c.appliedSeq,
        lag: { records: last - c.appliedSeq, bytes: this.journal.bytesAfter(c.appliedSeq) },
        image: c.image && {
          image: c.image.image, seq: c.image.seq, bookmark: c.image.bookmark, rolledFrom: c.image.rolledFrom,
          enabledAt: c.image.enabledAt, writes: c.image.writes, logBytes: c.image.log.bytes,
          virtual: c.image.virtual && {
            mapRuns: c.image.virtual.runs, mapBlocks: c.image.virtual.mapBlocks, mapMs: Math.round(c.image.virtual.buildMs * 10) / 10, overlayBlocks: c.image.virtual.overlayBlocks,
          },
        },
        // The oldest image enable_image_access can reach (null: none until the copy is synchronized);
        // a remote copy's history is the remote array's journal (its window as last reported).
        oldestImageSeq: c instanceof CrrCopy ? c.remoteFloor : c.imageFloor === null ? null : Math.max(c.imageFloor, this.journal.firstSeq - 1),
        undoBytes: c instanceof CrrCopy ? c.remote?.undoBytes ?? 0 : c.undo.bytes,
        synchronization: c.sync && { ...c.sync },
        ...(c instanceof CrrCopy ? { link: c.link.status(), remoteJournal: c.remote && { ...c.remote } } : {}),
      })),
      markers: this.copies.map((c) => ({
        copy: c.name, regions: c.markedRegions, bytes: c.markers.reduce((n, m, i) => n + m.count * m.regionBlocks * this.sets[i].lu.blockSize, 0),
        fullSweep: c.needsSweep,
      })),
      highLoad: this.highLoad,
      initialization: { ...this.init, percent: this.init.volumeBytes ? Math.round((10000 * this.init.bytesSent) / this.init.volumeBytes) / 100 : 0 },
      bookmarks: [...this.bookmarks].map(([name, b]) => ({ name, ...b })),
      ignored: { ...this.ignoredCounts },
      history: this.history.slice(-10),
    };
  }
}

export interface GroupStatus {
  name: string;
  state: GroupState;
  transfer: TransferState;
  splitter: { spec: string; kind: string };
  replicationSets: Array<{ lun: number; target: string; blocks: string; blockSize: number }>;
  journal: { kind: 'memory' | 'file'; bytes: number; limitBytes: number; records: number; lastSeq: number; evictedRecords: number; protectionWindow: ProtectionWindow };
  copies: Array<{
    name: string; kind: string; enabled: boolean; access: StorageAccessState; appliedSeq: number; lag: { records: number; bytes: number };
    image: (Omit<AccessedImage, 'log' | 'virtual'> & { logBytes: number; virtual: { mapRuns: number; mapBlocks: number; mapMs: number; overlayBlocks: number } | null }) | null;
    oldestImageSeq: number | null; undoBytes: number;
    synchronization: InitProgress | null;
    /** A remote copy's link: where, its rate limit, bytes that crossed it. */
    link?: LinkStatus;
    /** A remote copy: the remote site's journal as it last reported it (REPLICA SEQUENCE), null before it was asked. */
    remoteJournal?: { applied: number; valid: boolean; oldestImage: number | null; image: number | null; direct: boolean; undoBytes: number; undoLimit: number; asOf: string } | null;
  }>;
  /** Per copy: regions marked while paused (bytes: their size), and whether a full sweep is due. */
  markers: Array<{ copy: string; regions: number; bytes: number; fullSweep: boolean }>;
  /** Writes are marked, not journaled: the journal is full of writes not yet distributed (ConsistencyGroup.highLoad). */
  highLoad: boolean;
  initialization: InitProgress & { percent: number };
  bookmarks: Array<{ name: string; seq: number; time: string }>;
  ignored: Record<Primitive, number>;
  history: GroupEvent[];
}

/** One production LU of a group: its protection (the splitter gate asks it). */
export class ReplicationSet implements LuProtection {
  constructor(readonly group: ConsistencyGroup, readonly index: number, readonly lu: LogicalUnit) {}

  policy(p: SplitPrimitive) { return this.group.spec.policies[p]; }

  rejectReason(p: SplitPrimitive): SenseReason {
    // COPY ABORTED, COPY TARGET DEVICE NOT REACHABLE: see XcopyReject in policy.ts.
    return p === 'xcopy' && this.group.spec.xcopyReject === 'copy-aborted' ? 'CopyTargetDeviceNotReachable' : 'InvalidOpcode';
  }

  hides(p: SplitPrimitive): boolean {
    return !this.group.spec.advertiseRejected && this.group.spec.policies[p] === 'reject';
  }

  ignored(c: IgnoredCommand): void { this.group.logIgnored(this, c); }

  arrived(p: SplitPrimitive): void {
    // rp-flare30-pre509: CAS (ATS) through the FLARE 30 array splitter made consistency groups fail
    // to initialize (recoverpoint-vaai-update-2011.md). The command itself runs on production.
    if (p === 'ats' && this.group.transfer === 'init' && this.group.spec.quirks?.atsFailsInitialization) {
      this.group.transition('init', 'error', 'initialization failed: COMPARE AND WRITE (ATS) arrived through the FLARE 30 array splitter (fixed in 4.30.000.5.509)');
    }
  }

  /** Whether a write goes no further than production: disabled group, or paused transfer (markers instead). */
  private untracked(lba: bigint, blocks: number): boolean {
    const g = this.group;
    if (g.state === 'disabled') return true;
    if (g.marking) { g.mark(this.index, lba, blocks); return true; }
    return false;
  }

  /** A file journal: the host's write waits for its record to be durable (split.ts acknowledge). */
  get waitsForDurability(): boolean { return this.group.journal.kind === 'file'; }

  data(lba: bigint, data: Buffer, cls: SplitterClass, owned: boolean): Promise<void> | null {
    if (this.untracked(lba, data.length / this.lu.blockSize)) return null;
    return this.group.appendData(this.index, lba, data.length / this.lu.blockSize, data, owned);
  }

  keep(data: Buffer): Buffer { return this.group.journal.copyIn(data); }

  discard(kept: Buffer): void { this.group.journal.discard(kept); }

  /** A memory journal holds shared chunks (a file journal's queue would outlive the record's payload). */
  get sharesChunks(): boolean { return this.group.journal.kind === 'memory'; }

  shared(lba: bigint, chunk: Buffer, cls: SplitterClass): Promise<void> | null {
    if (this.untracked(lba, chunk.length / this.lu.blockSize)) { releaseShared(chunk); return null; }
    return this.group.append({ time: Date.now(), set: this.index, kind: 'data', lba, blocks: chunk.length / this.lu.blockSize, data: chunk, unmap: false, shared: true });
  }

  same(lba: bigint, blocks: number, block: Buffer, unmap: boolean, cls: SplitterClass): Promise<void> | null {
    if (this.untracked(lba, blocks)) return null;
    return this.group.append({ time: Date.now(), set: this.index, kind: 'same', lba, blocks, data: unmap ? null : this.group.journal.copyIn(block), unmap });
  }

  unmap(lba: bigint, blocks: number, cls: SplitterClass): Promise<void> | null {
    if (this.untracked(lba, blocks)) return null;
    return this.group.append({ time: Date.now(), set: this.index, kind: 'unmap', lba, blocks, data: null, unmap: true });
  }
}

export { PRIMITIVES };
