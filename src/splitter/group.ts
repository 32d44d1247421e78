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
 *
 * By phase, as LIO splits its target: this file holds the group's state, its transitions, the
 * operator's verbs (enable/disable group and copy, start/pause transfer, clear_markers,
 * bookmarks) and close; the splitter side, which runs for every write (replication sets, journal
 * or inline apply, markers, the ignored log), is group-split.ts; the distributor and high load
 * group-distribute.ts; initialization (full sweep, marked regions, one copy's resync)
 * group-init.ts; start-up of a file-journaled group recovery.ts; status() group-status.ts; and
 * the words they share group-types.ts. The phase modules are functions that take the group.
 */
import type { Logger } from 'pino';
import { MemoryStore } from '../store/memory.ts';
import { CrrCopy, LocalCopy, REGION_BYTES, RegionMarkers } from './copy.ts';
import type { AccessedImage, InitProgress, StorageAccessState } from './copy.ts';
import { MemoryJournal } from './journal.ts';
import type { Journal, JournalRecord } from './journal.ts';
import { PRIMITIVES } from './policy.ts';
import type { Primitive, SplitterSpec } from './policy.ts';
import { DurableUndoStream } from './undo-file.ts';
import { recoverGroup } from './recovery.ts';
import type { IgnoredCommand } from '../scsi/split.ts';
import type { GroupChange, GroupEvent, GroupOptions, GroupState, IgnoredEntry, ImageRef, TransferState } from './group-types.ts';
import { append, appendData, logIgnored, mark, ReplicationSet } from './group-split.ts';
import { initialize, resyncCopy } from './group-init.ts';
import { catchUp, distribute, drainCopy, schedule, trimJournal } from './group-distribute.ts';
import { groupStatus } from './group-status.ts';
import type { GroupStatus } from './group-status.ts';

// The group's vocabulary lives in group-types.ts, its phases in group-split.ts, group-init.ts,
// group-distribute.ts and group-status.ts; this module stays the one to import the group from.
export * from './group-types.ts';
export type { GroupStatus };
export { CrrCopy, LocalCopy, REGION_BYTES, RegionMarkers, ReplicationSet };
export type { InitProgress };

/** Which transfer changes are legal, and nothing else. */
const TRANSFER_EDGES: Record<TransferState, readonly TransferState[]> = {
  init: ['active', 'paused', 'error'],
  active: ['paused', 'error', 'init'],
  paused: ['init', 'active'],
  // start_transfer after an error with nothing to synchronize (a remote copy's lost link) resumes at once.
  error: ['init', 'paused', 'active'],
};

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
   * active). Checked when the journal passes HIGH_LOAD_CHECK of its size (group-split.ts).
   */
  highLoad = false;
  /**
   * Whether a write may be applied to caught-up local copies as it is split (appliesInline, group-split.ts). Tests
   * of what the distributor does with records it has not applied yet turn it off.
   */
  applyInline = true;
  /**
   * The distributor's own (group-distribute.ts): a turn is scheduled, and the file journal's
   * distributor run in progress (close waits for it). Written there only.
   */
  scheduled = false;
  durableRun: Promise<void> | null = null;
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
    if (this.journal.durableSeq !== undefined) this.journal.onDurable = () => { if (this.transfer === 'active') schedule(this); };
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
    if (to === 'active') schedule(this);
  }

  /** Tell the listeners (the admin event bus); the distributor announces high load through it. */
  announce(e: GroupChange): void {
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

  /**
   * Transfer `init`: the sweep or the marked regions go to the copies (group-init.ts), then
   * `active`. Also the short initialization at the end of high load (group-distribute.ts).
   */
  beginInit(reason: string): Promise<void> {
    this.transition(this.transfer, 'init', reason);
    return this.initializing = initialize(this).then(
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
    trimJournal(this, false);
    this.log?.info({ group: this.name, copies: cs.map((c) => c.name) }, 'markers cleared: copies declared identical to production');
    return cs;
  }

  /** Synchronize one copy alone while the others are distributed to (group-init.ts). */
  resyncCopy(c: LocalCopy, drain: boolean): Promise<void> { return resyncCopy(this, c, drain); }

  // ---- the splitter side (group-split.ts) -----------------------------------------------------

  /** Track a write that is not journaled (transfer paused): its regions are marked in every copy. */
  mark(set: number, lba: bigint, blocks: number): void { mark(this, set, lba, blocks); }

  /** Journal a split write; a promise when the host must wait for the record to be durable. */
  append(r: Omit<JournalRecord, 'seq' | 'bytes'>): Promise<void> | null { return append(this, r); }

  /** Split a write's data: applied inline or journaled (`data` is lent: copied in unless `owned`). */
  appendData(set: number, lba: bigint, blocks: number, data: Buffer, owned: boolean): Promise<void> | null {
    return appendData(this, set, lba, blocks, data, owned);
  }

  /** The ignored log: a command production ran that no copy received (ReplicationSet.ignored). */
  logIgnored(set: ReplicationSet, c: IgnoredCommand): void { logIgnored(this, set, c); }

  // ---- the distributor (group-distribute.ts) --------------------------------------------------

  /** Apply up to `max` records per copy; reschedule when more are left. */
  distribute(max: number): void { distribute(this, max); }

  /** Apply everything journaled so far to `copy` now (verify's drain). Only with transfer active. */
  catchUp(copy: LocalCopy): void | Promise<void> { return catchUp(this, copy); }

  // ---- file journal: checkpoints (group-distribute.ts), recovery (recovery.ts), bookmarks -----

  /** Apply up to `max` records to `copy`, then (file journal) sync its replicas and move its checkpoint. */
  drainCopy(c: LocalCopy, max: number, stop?: () => boolean): Promise<void> { return drainCopy(this, c, max, stop); }

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
  resume(): void { if (this.transfer === 'active') schedule(this); }

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

  /** What the admin API, the CLI and verify show of the group (group-status.ts). */
  status(): GroupStatus { return groupStatus(this); }
}

export { PRIMITIVES };
