/**
 * The shell around one group machine (group-machine.ts): its TCP link, timers, stores, the ALUA
 * model and the event bus. It turns sockets and store calls into events for the machine and
 * carries out the actions the machine returns; it decides nothing itself.
 *
 * One ReplicationGroup per Remote Copy group; RemoteCopy (engine.ts) holds them and the array's
 * link listener. Split from engine.ts by phase, as LIO splits its target: this module keeps the
 * write path (a host write in, the machine's actions out, the store applies, the outcome back to
 * the waiting command, the acks batched on the link) and the group's metadata file; the link's
 * dial, hello and loss are link-session.ts, the peer's requests peer-requests.ts, the resync
 * resync-sender.ts.
 */
import { promises as fsp } from 'node:fs';
import type net from 'node:net';
import path from 'node:path';
import type { Logger } from 'pino';
import { encodeMessage } from '../../protocol/replication/link.ts';
import type { LinkFramer, LinkMessage, VolumeGeometry } from '../../protocol/replication/link.ts';
import { miscompare } from '../scsi/sbc-verify.ts';
import type { LogicalUnit } from '../scsi/lu.ts';
import { SenseError } from '../scsi/types.ts';
import { syncDir } from '../store/durable.ts';
import { FileStore } from '../store/file.ts';
import type { BackingStore } from '../store/store.ts';
import type { RcopyGroupConfig, RemoteCopy } from './engine.ts';
import { GroupMachine } from './group-machine.ts';
import type { ApplyTag, CompareAndWriteReq, DirtyExtent, GroupAction, GroupEvent, GroupSnapshot, Origin, Outcome, PrOutReq, PrOutResult, Role, WriteOp } from './group-types.ts';
import { ActivityLog } from './activity-log.ts';
import { bitmapExtents, GroupMeta } from './group-meta.ts';
import type { MetaHeader } from './group-meta.ts';
import { extentsOf } from './group-resync.ts';
import type { LinkShaper } from './link-faults.ts';
import type { LinkReader } from './link-reader.ts';
import { attachLink, startLink, stopLink } from './link-session.ts';
import { settle, waited } from './origin-wait.ts';
import type { Waited } from './origin-wait.ts';
import { installPrState } from './pr-replication.ts';
import { applyOp } from './replicated-store.ts';
import type { ReplicatedStore } from './replicated-store.ts';
import { sendResync } from './resync-sender.ts';

/** An outcome that is not `ok` as the sense the host gets. */
function senseFor(o: Outcome, err?: unknown): unknown {
  switch (o.kind) {
    case 'link-lost': return new SenseError('CommandAborted'); // not acknowledged: the host retries (then on a serving path)
    case 'retry': return new SenseError('CommandAborted');
    case 'unavailable': return new SenseError('NotReadyAluaUnavailable');
    case 'miscompare': return miscompare(o.offset);
    case 'pr-out': return new Error('not a failure');
    case 'failed': return err ?? new SenseError('InternalTargetFailure');
    default: return new Error('not a failure');
  }
}

/** The checker's negative controls (ARRAYSIM_FAULT_HOOK), never set from configuration. */
export interface FaultHooks { ackBeforePeer?: boolean; splitBrain?: boolean }

/**
 * The fields not marked private are shared with the group's phase modules (link-session.ts,
 * peer-requests.ts, resync-sender.ts: functions that take the group, as recovery.ts does for the
 * splitter's group); nothing else writes them.
 */
export class ReplicationGroup {
  readonly machine: GroupMachine;
  readonly volumes: LogicalUnit[] = [];
  readonly stores: ReplicatedStore[] = [];
  socket: net.Socket | null = null;
  /** The send side of `socket`, through the link faults (link-faults.ts). */
  shaper: LinkShaper | null = null;
  linkUp = false;
  /** This array dialled the link (the configuration's primary does). */
  outbound = false;
  sendSeq = 0;
  recvSeq = -1;
  /** The data of the writes sent on this link is in their CRC (peers.dataIntegrity, checksData). */
  dataChecked = true;
  nextLocal = 1;
  private readonly localErrors = new Map<number, unknown>();
  /** Answers of PR OUTs this secondary sent to the primary, by local origin id, until their caller takes them. */
  private readonly prResults = new Map<number, PrOutResult>();
  private peerApply: Promise<void> | null = null;
  /** Replicated writes from the peer applied within the callback that delivered them (LinkReader.retained). */
  peerAppliedAtOnce = 0;
  timer: NodeJS.Timeout | null = null;
  dialTimer: NodeJS.Timeout | null = null;
  closed = false;
  /** The current resync (a new one supersedes the last). */
  resyncGen = 0;
  /** The peer array's relative target ports for the group's volumes, from its last hello (REGISTER AND MOVE resolves them). */
  peerPorts: readonly number[] = [];
  /** Host writes wait on this while volumes leave the group (ReplicatedStore, WriteSink.paused). */
  paused: Promise<void> | null = null;
  /** The group's metadata file (group-meta.ts): null for a group on memory volumes. */
  meta: GroupMeta | null = null;
  /** The primary's activity log (activity-log.ts), beside the metadata file: null with it. */
  al: ActivityLog | null = null;
  /** What loading it found, for status. */
  metaLoad = 'not loaded';
  /** Counters for status and the resync proof. */
  readonly stats = { replicatedWrites: 0, replicatedBytes: 0, resyncBytes: 0, resyncBlocks: 0, resyncRecords: 0, linkUps: 0, linkDowns: 0, lastResyncBytes: 0, lastResyncMs: 0 };

  constructor(readonly rc: RemoteCopy, readonly cfg: RcopyGroupConfig, readonly log: Logger, hooks: FaultHooks = {}) {
    this.machine = new GroupMachine({
      name: cfg.name, role: cfg.role, policies: cfg.policies, hosts: cfg.hosts, array: rc.peers.name, witness: !!rc.peers.witness, restarted: !cfg.runtime || !!cfg.restored,
      unsafeAckBeforePeer: hooks.ackBeforePeer, unsafeWriteAloneWithoutWitness: hooks.splitBrain, unsafePromoteOnLinkDown: hooks.splitBrain,
    });
    this.machine.started = cfg.role === 'primary' && cfg.start !== false;
    this.machine.startOnLink = this.machine.started;
  }

  get role(): Role { return this.machine.role; }

  geometry(): VolumeGeometry[] {
    return this.volumes.map((lu) => ({ wwn: lu.naa, serial: lu.serial, blockSize: lu.blockSize, blockCount: lu.blockCount }));
  }

  // ------------------------------------------------------------ events in

  /** A write from this array's LU (the caller holds its range). */
  write(op: WriteOp): void | Promise<void> {
    const origin = waited('local', this.nextLocal++);
    return this.await(origin, { kind: 'host-write', origin, op, now: Date.now() });
  }

  /** COMPARE AND WRITE at the secondary: executed by the primary. */
  compareAndWrite(req: CompareAndWriteReq): void | Promise<void> {
    const origin = waited('local', this.nextLocal++);
    return this.await(origin, { kind: 'host-compare-and-write', origin, req, now: Date.now() });
  }

  /** PERSISTENT RESERVE OUT at the secondary: executed by the primary (pr-replication.ts). */
  prOut(req: PrOutReq): PrOutResult | Promise<PrOutResult> {
    const id = this.nextLocal++;
    const take = (): PrOutResult => { const r = this.prResults.get(id)!; this.prResults.delete(id); return r; };
    const origin = waited('local', id);
    const r = this.await(origin, { kind: 'host-pr-out', origin, req });
    return r instanceof Promise ? r.then(take) : take();
  }

  /** This array serves the group's host I/O now. */
  get serving(): boolean { return this.machine.serving; }

  /** Writes reach both arrays before GOOD now. */
  get replicating(): boolean { return this.machine.replicating; }

  /** Run `event` for `origin`, and return when the machine completes it (synchronously if it already has). */
  await(w: Waited, event: GroupEvent): void | Promise<void> {
    this.step(event);
    if (w.state === 1) return;
    if (w.state === 2) throw w.err;
    return new Promise<void>((resolve, reject) => { w.resolve = resolve; w.reject = reject; });
  }


  step(e: GroupEvent): void {
    this.run(this.machine.step(e));
  }

  operator(command: Parameters<GroupMachine['step']>[0] & { kind: 'operator' }): string | null {
    const actions = this.machine.step(command);
    const refused = actions.find((a) => a.kind === 'refuse');
    this.run(actions);
    return refused && refused.kind === 'refuse' ? refused.why : null;
  }

  // ------------------------------------------------------------ actions out

  private run(actions: GroupAction[]): void {
    for (const a of actions) {
      switch (a.kind) {
        case 'send': this.send(a.message); break;
        case 'apply': this.apply(a); break;
        case 'complete': this.complete(a.origin, a.outcome); break;
        case 'alua': this.rc.applyAlua(this, a.state, a.hosts, a.reason); break;
        case 'transition':
          this.metaTransition(a.from, a.to);
          this.log.info({ group: this.cfg.name, role: this.role, from: a.from, to: a.to, reason: a.reason }, 'Remote Copy group state');
          this.rc.events?.emit({ type: 'rcopy.group', group: this.cfg.name, role: this.role, from: a.from, to: a.to, reason: a.reason });
          break;
        case 'resync': void sendResync(this, a.full ? this.volumes.map((lu, volume) => ({ volume, lba: 0n, blocks: Number(lu.blockCount) })) : a.extents, a.full ? [] : a.records); break;
        case 'role':
          this.metaHeader();
          this.log.warn({ group: this.cfg.name, from: a.from, to: a.to, epoch: a.epoch, cause: a.cause, reason: a.reason }, 'Remote Copy group role');
          this.rc.events?.emit({ type: a.cause === 'failover' ? 'rcopy.failover' : 'rcopy.role', group: this.cfg.name, from: a.from, to: a.to, epoch: a.epoch, reason: a.reason });
          break;
        case 'drop-link': this.log.warn({ group: this.cfg.name, reason: a.reason }, 'dropping the replication link'); this.socket?.destroy(); break;
        case 'refuse': break; // operator() reports it
      }
    }
  }

  private apply(a: Extract<GroupAction, { kind: 'apply' }>): void {
    const store = this.stores[a.op.volume]?.inner;
    const { op, tag } = a;
    if (!store) { this.applied(tag, false, new Error(`no volume ${op.volume}`)); return; }
    if (tag.from !== 'peer') {
      if (this.meta) this.applyLogged(this.meta, store, op, tag);
      else void this.applyNow(store, op, tag);
      return;
    }
    // Replicated writes are applied in sequence order, one after the other, without this
    // array's range lock: a host write here may hold that range while it waits for the
    // primary, which waits for this apply (README "Peer replication", ordering).
    const r = this.peerApply ? this.peerApply.then(() => this.applyNow(store, op, tag)) : this.applyNow(store, op, tag);
    if (r instanceof Promise) {
      this.peerApply = r;
      void r.then(() => { if (this.peerApply === r) this.peerApply = null; });
    }
  }

  /** A host write on a group with a metadata file: its extents in the activity log first, then applyTracked. */
  private applyLogged(meta: GroupMeta, store: ReplicatedStore['inner'], op: WriteOp, tag: Extract<ApplyTag, { from: 'host' }>): void {
    const al = this.al;
    if (!al || op.kind === 'pr-state') { this.applyTracked(meta, store, op, tag); return; }
    const w = tag.origin as Waited;
    const pin = al.cover(extentsOf(op));
    if (!(pin instanceof Promise)) { w.pin = pin; this.applyTracked(meta, store, op, tag); return; }
    pin.then((p) => { w.pin = p; this.applyTracked(meta, store, op, tag); }, (e) => {
      this.log.error({ group: this.cfg.name, file: al.file, err: e instanceof Error ? e.message : String(e) }, 'Remote Copy activity log not written: the write fails');
      this.applied(tag, false, e);
    });
  }

  /**
   * A host write on a group with a metadata file. Out of sync (or not yet known on disk to be
   * Synced), its regions are in the metadata file before the write is applied, and before the
   * machine hears it was (the pair may have lost sync meanwhile, and the machine then
   * acknowledges it): group-meta.ts.
   */
  private applyTracked(meta: GroupMeta, store: ReplicatedStore['inner'], op: WriteOp, tag: ApplyTag): void {
    const untracked = !meta.tracking;
    if (untracked) meta.untracked++;
    const finish = (ok: boolean, err?: unknown): void => {
      const p = meta.afterApply(untracked, () => extentsOf(op));
      if (p) p.then(() => this.applied(tag, ok, err), (e) => this.applied(tag, false, e));
      else this.applied(tag, ok, err);
    };
    const gate = untracked ? undefined : meta.mark(extentsOf(op));
    if (gate) { gate.then(() => this.applyNow(store, op, tag, finish), (e) => finish(false, e)); return; }
    void this.applyNow(store, op, tag, finish);
  }

  /** Apply `op` to the local store and report it (`applied`, or `finish` for a tracked write) when done (synchronously for a memory store). */
  private applyNow(store: ReplicatedStore['inner'], op: WriteOp, tag: ApplyTag, finish?: (ok: boolean, err?: unknown) => void): void | Promise<void> {
    let r: void | Promise<void>;
    try {
      // A PR state: the primary's registry already holds it (pr-replication.ts); the secondary installs it.
      if (op.kind === 'pr-state') { if (tag.from === 'peer') installPrState(this.volumes[op.volume], op.state); r = undefined; }
      else r = applyOp(store, op);
    } catch (e) {
      if (tag.from === 'peer') this.peerAppliedAtOnce++;
      if (finish) finish(false, e); else this.applied(tag, false, e);
      return;
    }
    if (r instanceof Promise) {
      const done = finish ?? ((ok: boolean, err?: unknown) => this.applied(tag, ok, err));
      return r.then(() => done(true), (e) => done(false, e));
    }
    // Applied at once (a memory store): no closure per write.
    if (tag.from === 'peer') this.peerAppliedAtOnce++;
    if (finish) finish(true); else this.applied(tag, true);
  }

  private applied(tag: ApplyTag, ok: boolean, err?: unknown): void {
    if (!ok && tag.from === 'host' && tag.origin.kind === 'local') this.localErrors.set(tag.origin.id, err);
    this.step({ kind: 'applied', tag, ok, why: err instanceof Error ? err.message : undefined });
  }

  // ------------------------------------------------------------ the metadata file

  /**
   * Load the group's metadata file (group-meta.ts) and restore the machine from it, before the
   * array serves anything: the role and epoch it had, and the dirty map when the file's bitmap can
   * be trusted (written out of sync by a primary), or, for a primary that was Synced when it
   * stopped, the extents of its activity log (activity-log.ts: every write the peer may lack is in
   * one). Otherwise (missing, unreadable, a Synced primary without a log it can trust) a primary
   * copies the group whole at the first link-up; unreadable, it also does not serve alone until it
   * has reached the peer. Then the log starts again from what is pinned (nothing), once the
   * metadata file names what the old log did. Groups on memory volumes keep neither file.
   */
  async loadMeta(): Promise<void> {
    const files = this.stores.map((s) => fileOf(s));
    if (files.some((f) => f === null)) { this.metaLoad = 'none (memory volumes: a restart loses their data)'; return; }
    const shapes = this.volumes.map((lu) => ({ blockCount: lu.blockCount, blockSize: lu.blockSize }));
    const file = GroupMeta.pathFor(files[0]!, this.cfg.name);
    const r = await GroupMeta.read(file, shapes);
    const alFile = ActivityLog.pathFor(file);
    const m = this.machine;
    let fromLog: DirtyExtent[] | null = null;
    if (r.kind === 'loaded') {
      const s = r.state;
      const trusted = s.role === 'primary' && s.outOfSync && !s.full;
      let why = 'Synced when it stopped, or a whole copy pending: copy the group whole';
      if (s.role === 'primary' && !s.outOfSync && !s.full) {
        const l = await ActivityLog.read(alFile, shapes);
        if (l.kind === 'loaded') fromLog = l.extents;
        else why = `Synced when it stopped, activity log ${l.kind === 'missing' ? 'missing' : `unreadable (${l.why})`}: copy the group whole`;
      }
      m.restore({ role: s.role, naturalRole: s.naturalRole, epoch: s.epoch, full: s.full, dirty: trusted ? bitmapExtents(s) : fromLog });
      this.metaLoad = trusted ? 'restored with its dirty map' : fromLog ? `restored with its activity log (${fromLog.length} extent(s))` : s.role === 'primary' ? `restored (${why})` : 'restored';
    } else {
      m.restore({ role: this.cfg.role, naturalRole: this.cfg.role, epoch: 0, full: true, dirty: null, unsure: r.kind === 'invalid' });
      this.metaLoad = r.kind === 'missing' ? 'missing (new group): copy the group whole' : `unreadable (${r.why}): copy the group whole, and serve alone only after reaching the peer`;
    }
    (r.kind === 'invalid' ? this.log.error : this.log.info).call(this.log, { group: this.cfg.name, file, load: this.metaLoad, role: m.role, epoch: m.epoch, dirtyBlocks: m.snapshot().dirtyBlocks }, 'Remote Copy group metadata');
    this.meta = new GroupMeta(file, shapes, this.headerNow());
    if (r.kind === 'loaded') this.meta.adopt(r.state);
    // The old log's extents go into the bitmap (out of sync) before the new log replaces it.
    if (fromLog) await this.meta.outOfSync(fromLog); else await this.meta.flush();
    this.al = new ActivityLog(alFile, shapes);
    await this.al.reset();
    const a = m.alua();
    this.rc.applyAlua(this, a.state, a.hosts, `restored from ${file}`);
  }

  /**
   * The group's volumes changed (admitvv, dismissvv, removegroup: runtime-groups.ts, the group
   * stopped and its host writes held): a metadata file and an activity log for the volumes it has
   * now, from the machine's state (role, epoch, dirty map), as loadMeta leaves them, so that a
   * restart (peers.state brings the group back) finds what a configured group's restart finds.
   * Groups with a memory volume, or none, keep no file; a file of a former first volume is removed.
   */
  async remakeMeta(why: string): Promise<void> {
    const old = this.meta;
    const files = this.stores.map((s) => fileOf(s));
    const file = files.length && files.every((f) => f !== null) ? GroupMeta.pathFor(files[0]!, this.cfg.name) : null;
    await old?.settled();
    this.meta = null;
    this.al = null;
    if (old && old.file !== file) await removeMetaFiles(old.file);
    if (!file) { this.metaLoad = files.length ? 'none (memory volumes: a restart loses their data)' : 'none (no volume)'; return; }
    const m = this.machine;
    const shapes = this.volumes.map((lu) => ({ blockCount: lu.blockCount, blockSize: lu.blockSize }));
    const meta = new GroupMeta(file, shapes, this.headerNow());
    // Stopped: never Synced since the change, so the file says out of sync with the machine's dirty map.
    await meta.outOfSync(m.dirtyExtents());
    const al = new ActivityLog(ActivityLog.pathFor(file), shapes);
    await al.reset();
    this.meta = meta;
    this.al = al;
    this.metaLoad = `written (${why})`;
    this.log.info({ group: this.cfg.name, file, why }, 'Remote Copy group metadata written for its volumes now');
  }

  /** What the metadata file's header says now: the machine's roles, epoch and whole-copy flag. */
  private headerNow(): MetaHeader {
    const m = this.machine;
    return { role: m.role, naturalRole: m.naturalRole, epoch: m.epoch, full: m.wholeCopyPending };
  }

  /** Role, epoch or the whole-copy flag may have changed. */
  metaHeader(): void {
    const p = this.meta?.header(this.headerNow());
    if (p) p.catch((e) => this.metaFailed(e));
  }

  private metaTransition(from: string, to: string): void {
    if (!this.meta) return;
    let p: Promise<void> | undefined;
    if (to === 'Synced') { p = this.meta.synced(); this.al?.synced(); }
    // Writes in flight at a link loss are in the machine's dirty map now: the file names them too.
    else if (this.role === 'primary' && (from === 'Synced' || from === 'Syncing')) p = this.meta.outOfSync(this.machine.dirtyExtents());
    p?.catch((e) => this.metaFailed(e));
    this.metaHeader();
  }

  private metaFailed(e: unknown): void {
    this.log.error({ group: this.cfg.name, file: this.meta?.file, err: e instanceof Error ? e.message : String(e) }, 'Remote Copy group metadata not written');
  }

  private complete(origin: Origin, outcome: Outcome): void {
    if (origin.kind === 'forwarded') {
      this.send({ type: 'ack', forwarded: true, seq: origin.id, status: outcome.kind === 'ok' ? 'ok' : outcome.kind === 'unavailable' ? 'not-primary' : 'not-applied' });
    }
    if (outcome.kind === 'ok' && origin.kind !== 'resync') this.stats.replicatedWrites++;
    // Every origin is made by this shell (waited()) and awaited; each is settled once.
    const w = origin as Waited;
    if (w.pin) {
      // Ok while replicating: the peer acknowledged it. Otherwise it may be here alone until the next resync.
      if (outcome.kind === 'ok' && this.machine.replicating) this.al?.release(w.pin); else this.al?.hold(w.pin);
      w.pin = null;
    }
    if (w.state !== 0) return;
    if (outcome.kind === 'ok') { settle(w, true); return; }
    if (outcome.kind === 'pr-out') { this.prResults.set(origin.id as number, outcome.result); settle(w, true); return; }
    const err = origin.kind === 'local' ? this.localErrors.get(origin.id) : undefined;
    if (origin.kind === 'local') this.localErrors.delete(origin.id);
    settle(w, false, senseFor(outcome, err));
  }

  // ------------------------------------------------------------ the link

  send(m: LinkMessage): void {
    const s = this.socket;
    if (!s || !this.linkUp && m.type !== 'hello' && m.type !== 'error') return;
    if (m.type === 'ack' && !m.forwarded && m.status === 'ok') { this.ackLater(m.seq); return; }
    if (this.ackRun) this.flushAcks();
    this.sendNow(m);
  }

  /**
   * The secondary's ok acks of consecutive group sequence numbers, gathered until the end of the
   * tick (or until any other frame is sent: the link stays in order) and sent as one `acks` frame
   * (a lone one as an `ack`): at QD32 a read brings several writes, and their acks were one frame
   * and one socket write each.
   */
  ackRun: { first: bigint; last: bigint; lastN: number } | null = null;
  private readonly flushAcks = (): void => {
    const r = this.ackRun;
    if (!r) return;
    this.ackRun = null;
    this.sendNow(r.first === r.last ? { type: 'ack', forwarded: false, seq: r.first, status: 'ok' } : { type: 'acks', first: r.first, last: r.last });
  };

  /** `seq` is the message's own BigInt: compared as a number (no BigInt sum per write), kept for the frame. */
  private ackLater(seq: bigint): void {
    const r = this.ackRun;
    const n = Number(seq);
    if (r && n === r.lastN + 1) { r.last = seq; r.lastN = n; return; }
    if (r) this.flushAcks();
    else process.nextTick(this.flushAcks);
    this.ackRun = { first: seq, last: seq, lastN: n };
  }

  private sendNow(m: LinkMessage): void {
    if (!this.socket) return;
    const parts = encodeMessage(m, this.sendSeq++, this.dataChecked);
    if (m.type === 'write') this.stats.replicatedBytes += m.data.length;
    // A replicated write with no other in flight leaves now rather than at the end of the
    // callback: at QD1 nothing else would join its writev, and the rest of the callback (the
    // promise chain back to the iSCSI layer) is then off the round trip.
    this.shaper?.send(parts, m.type === 'write' && !m.forwarded && this.machine.inFlight <= 1);
  }

  // ------------------------------------------------------------ lifecycle (link-session.ts)

  /** Take a connected socket (dialled, or accepted and routed by its hello) as this group's link. */
  attach(s: net.Socket, framer: LinkFramer, reader: LinkReader, first: { sequence: number; message: LinkMessage } | null): (sequence: number, m: LinkMessage) => void {
    return attachLink(this, s, framer, reader, first);
  }

  /** The heartbeat timer, and the first dial (the configuration's primary dials). */
  start(): void { startLink(this); }

  /** Stop dialling, and take the link down now. */
  stop(): void { stopLink(this); }

  /** Fault injection: drop the link now (the dialler stays away until restore). */
  cut(): void { this.socket?.destroy(); }

  snapshot(): GroupSnapshot & { volumes: { target: string; lun: number; wwn: string }[]; stats: ReplicationGroup['stats']; meta: { file: string | null; load: string; flushes: number; error: string | null; activityLog: { extents: number; transactions: number; error: string | null } | null } } {
    const al = this.al;
    return {
      ...this.machine.snapshot(),
      meta: {
        file: this.meta?.file ?? null, load: this.metaLoad, flushes: this.meta?.flushes ?? 0, error: this.meta?.lastError ?? null,
        activityLog: al ? { extents: al.size, transactions: al.transactions, error: al.lastError } : null,
      },
      volumes: this.volumes.map((lu, i) => ({ target: this.cfg.volumes[i].target, lun: lu.lun, wwn: lu.naa })),
      stats: { ...this.stats },
    };
  }
}

/** A group's metadata file and its activity log, when it leaves (removegroup) or its first volume does (dismissvv). */
export async function removeMetaFiles(file: string): Promise<void> {
  for (const f of [file, ActivityLog.pathFor(file)]) await fsp.rm(f, { force: true });
  await syncDir(path.dirname(file)).catch(() => {});
}

/** The file under a volume's store wrappers (replication, fault injection), or null: not a file volume. */
export function fileOf(s: BackingStore): string | null {
  for (let x: unknown = s; x; x = (x as { inner?: unknown }).inner) if (x instanceof FileStore) return x.path;
  return null;
}
