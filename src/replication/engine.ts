/**
 * The shell around the group machines (group-machine.ts): TCP links, timers, stores, the ALUA
 * model and the event bus. It turns sockets and store calls into events for a machine and carries
 * out the actions the machine returns; it decides nothing itself.
 *
 * Topology: one TCP connection per group, dialled by the array the configuration makes primary
 * to the other's link listener (`peers.listen`), whatever the roles are now (after a failover or
 * a reverse the dialler may be secondary); the dialler sends a hello first (array id, group,
 * role, epoch, each volume's WWN, serial and geometry), the listener answers with its own, and
 * the link is up only when they agree. With `peers.witness` a WitnessClient (witness-client.ts)
 * keeps the groups in touch with the quorum witness.
 */
import net from 'node:net';
import type { Logger } from 'pino';
import { encodeMessage, LinkFramer } from '../../protocol/replication/link.ts';
import type { LinkFrameEvent, LinkMessage, VolumeGeometry } from '../../protocol/replication/link.ts';
import type { ArrayEvents } from '../events.ts';
import type { LogicalUnit } from '../scsi/lu.ts';
import type { ScsiTarget } from '../scsi/target.ts';
import { exclusive } from '../scsi/range-lock.ts';
import { compareAndWrite } from '../scsi/sbc-ats.ts';
import { miscompare } from '../scsi/sbc-verify.ts';
import { SenseError } from '../scsi/types.ts';
import { interceptCompareAndWrite } from './caw-forward.ts';
import { extentsOf, GroupMachine, PROXIMITIES } from './group-machine.ts';
import type { ApplyTag, GroupAction, GroupEvent, GroupPolicies, GroupSnapshot, Origin, Outcome, Proximity, Role, WriteOp, CompareAndWriteReq, DirtyOp, PrOutReq, PrOutResult } from './group-machine.ts';
import { gateSanitize } from './sanitize-gate.ts';
import { executeForwardedProut, installPrState, interceptPersistentReserveOut, prHooks, prStateOf } from './pr-replication.ts';
import { applyOp, ReplicatedStore } from './replicated-store.ts';
import { LinkFaultInjector } from './link-faults.ts';
import { LinkReader } from './link-reader.ts';
import type { LinkFaultRequest, LinkFaults, LinkShaper } from './link-faults.ts';
import { WitnessClient } from './witness-client.ts';
import { answerGroupAdmin } from './runtime-groups.ts';
import { FaultStore } from '../store/fault.ts';
import { FileStore } from '../store/file.ts';
import { bitmapExtents, GroupMeta } from './group-meta.ts';
import type { GroupVerdict } from '../../protocol/replication/witness.ts';

export interface PeersConfig {
  /** This array's name on the link (hello). */
  name: string;
  /** HOST:PORT of this array's link listener (a secondary needs one). */
  listen?: { host: string; port: number };
  /** HOST:PORT of the peer's link listener (a primary dials it). */
  peer?: { host: string; port: number };
  /** HOST:PORT of the quorum witness (`arraysim witness`): automatic failover and Failsafe need it. */
  witness?: { host: string; port: number };
  /**
   * Whether the data of the writes this array sends is in the link's CRC32C (README "Link data
   * integrity"): `crc32c` always, `none` never (TCP's checksum alone, DRBD's default), `auto`
   * (default) unless the link is on loopback. Headers, fields and other messages are always checked.
   */
  dataIntegrity?: DataIntegrity;
}

export const DATA_INTEGRITY = ['auto', 'crc32c', 'none'] as const;
export type DataIntegrity = typeof DATA_INTEGRITY[number];

/**
 * `auto`: a loopback link (both arrays on one machine, as `lab up` and the benchmarks run) carries
 * bytes from memory to memory through the kernel, with no NIC, cable, switch or middlebox that the
 * CRC would guard against (Linux does not even compute TCP checksums on loopback); any other link
 * checks the data.
 */
export function checksData(mode: DataIntegrity, remoteAddress: string | undefined): boolean {
  if (mode !== 'auto') return mode === 'crc32c';
  const a = remoteAddress ?? '';
  return !(a.startsWith('127.') || a === '::1' || a.startsWith('::ffff:127.'));
}

export interface RcopyGroupConfig {
  name: string;
  role: Role;
  /** The group's volumes in order: the same order on both arrays. */
  volumes: { target: string; lun: number }[];
  policies?: Partial<GroupPolicies>;
  hosts?: Record<string, Proximity>;
  /** Start replicating as soon as the link is up (default true; the primary decides). */
  start?: boolean;
  /** Made by `rcopy creategroup` in this process (runtime-groups.ts), not by a restart: no data was lost. */
  runtime?: boolean;
}

export interface RcopyConfig {
  groups: RcopyGroupConfig[];
}

export type { LinkFaults, LinkFaultRequest } from './link-faults.ts';

const HEARTBEAT_MS = 500;
const REDIAL_MS = 200;
const RESYNC_CHUNK_BLOCKS = 2048;
/** Resync chunks in flight at once: a resync of many small regions is not one link round trip per region. */
const RESYNC_WINDOW = 16;

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

/**
 * An origin this array waits on (a host command, a resync write), and the wait itself: the machine
 * hands back the very Origin object it was given, so the outcome is settled on it, with no map and
 * no second object per write. `state` 0 until completed, then 1 ok or 2 failed; `resolve`/`reject`
 * are the promise's once someone awaits (not when the machine completed it within the step that
 * started it).
 */
type Waited = Origin & { state: 0 | 1 | 2; err: unknown; resolve: (() => void) | null; reject: ((e: unknown) => void) | null };

function waited(kind: 'local' | 'resync', id: number): Waited;
function waited(kind: 'forwarded', id: bigint): Waited;
function waited(kind: Origin['kind'], id: number | bigint): Waited {
  return { kind, id, state: 0, err: undefined, resolve: null, reject: null } as Waited;
}

/** The checker's negative controls (ARRAYSIM_FAULT_HOOK), never set from configuration. */
export interface FaultHooks { ackBeforePeer?: boolean; splitBrain?: boolean }

export class ReplicationGroup {
  readonly machine: GroupMachine;
  readonly volumes: LogicalUnit[] = [];
  readonly stores: ReplicatedStore[] = [];
  private socket: net.Socket | null = null;
  /** The send side of `socket`, through the link faults (link-faults.ts). */
  private shaper: LinkShaper | null = null;
  private linkUp = false;
  /** This array dialled the link (the configuration's primary does). */
  private outbound = false;
  private sendSeq = 0;
  private recvSeq = -1;
  /** The data of the writes sent on this link is in their CRC (peers.dataIntegrity, checksData). */
  dataChecked = true;
  private nextLocal = 1;
  private readonly localErrors = new Map<number, unknown>();
  /** Answers of PR OUTs this secondary sent to the primary, by local origin id, until their caller takes them. */
  private readonly prResults = new Map<number, PrOutResult>();
  private peerApply: Promise<void> | null = null;
  /** Replicated writes from the peer applied within the callback that delivered them (LinkReader.retained). */
  private peerAppliedAtOnce = 0;
  private timer: NodeJS.Timeout | null = null;
  private dialTimer: NodeJS.Timeout | null = null;
  private closed = false;
  /** The current resync (a new one supersedes the last). */
  private resyncGen = 0;
  /** The peer array's relative target ports for the group's volumes, from its last hello (REGISTER AND MOVE resolves them). */
  peerPorts: readonly number[] = [];
  /** The group's metadata file (group-meta.ts): null for a group on memory volumes. */
  meta: GroupMeta | null = null;
  /** What loading it found, for status. */
  metaLoad = 'not loaded';
  /** Counters for status and the resync proof. */
  readonly stats = { replicatedWrites: 0, replicatedBytes: 0, resyncBytes: 0, resyncBlocks: 0, resyncRecords: 0, linkUps: 0, linkDowns: 0, lastResyncBytes: 0, lastResyncMs: 0 };

  constructor(readonly rc: RemoteCopy, readonly cfg: RcopyGroupConfig, readonly log: Logger, hooks: FaultHooks = {}) {
    this.machine = new GroupMachine({
      name: cfg.name, role: cfg.role, policies: cfg.policies, hosts: cfg.hosts, array: rc.peers.name, witness: !!rc.peers.witness, restarted: !cfg.runtime,
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
  private await(w: Waited, event: GroupEvent): void | Promise<void> {
    this.step(event);
    if (w.state === 1) return;
    if (w.state === 2) throw w.err;
    return new Promise<void>((resolve, reject) => { w.resolve = resolve; w.reject = reject; });
  }

  private settle(w: Waited, ok: boolean, err?: unknown): void {
    if (ok) { w.state = 1; w.resolve?.(); return; }
    w.state = 2;
    if (w.reject) w.reject(err); else w.err = err;
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
        case 'resync': void this.resync(a.full ? this.volumes.map((lu, volume) => ({ volume, lba: 0n, blocks: Number(lu.blockCount) })) : a.extents, a.full ? [] : a.records); break;
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
      if (this.meta) this.applyTracked(this.meta, store, op, tag);
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
   * be trusted (written out of sync by a primary). Otherwise (missing, unreadable, or Synced when
   * the process died) a primary copies the group whole at the first link-up; unreadable, it also
   * does not serve alone until it has reached the peer. Groups on memory volumes keep no file.
   */
  async loadMeta(): Promise<void> {
    const files = this.stores.map((s) => fileOf(s));
    if (files.some((f) => f === null)) { this.metaLoad = 'none (memory volumes: a restart loses their data)'; return; }
    const shapes = this.volumes.map((lu) => ({ blockCount: lu.blockCount, blockSize: lu.blockSize }));
    const file = GroupMeta.pathFor(files[0]!, this.cfg.name);
    const r = await GroupMeta.read(file, shapes);
    const m = this.machine;
    if (r.kind === 'loaded') {
      const s = r.state;
      const trusted = s.role === 'primary' && s.outOfSync && !s.full;
      m.restore({ role: s.role, naturalRole: s.naturalRole, epoch: s.epoch, full: s.full, dirty: trusted ? bitmapExtents(s) : null });
      this.metaLoad = trusted ? 'restored with its dirty map' : s.role === 'primary' ? 'restored (Synced when it stopped, or a whole copy pending: copy the group whole)' : 'restored';
    } else {
      m.restore({ role: this.cfg.role, naturalRole: this.cfg.role, epoch: 0, full: true, dirty: null, unsure: r.kind === 'invalid' });
      this.metaLoad = r.kind === 'missing' ? 'missing (new group): copy the group whole' : `unreadable (${r.why}): copy the group whole, and serve alone only after reaching the peer`;
    }
    (r.kind === 'invalid' ? this.log.error : this.log.info).call(this.log, { group: this.cfg.name, file, load: this.metaLoad, role: m.role, epoch: m.epoch, dirtyBlocks: m.snapshot().dirtyBlocks }, 'Remote Copy group metadata');
    this.meta = new GroupMeta(file, shapes, { role: m.role, naturalRole: m.naturalRole, epoch: m.epoch, full: m.wholeCopyPending });
    if (r.kind === 'loaded') this.meta.adopt(r.state);
    await this.meta.flush();
    const a = m.alua();
    this.rc.applyAlua(this, a.state, a.hosts, `restored from ${file}`);
  }

  /** Role, epoch or the whole-copy flag may have changed. */
  metaHeader(): void {
    const m = this.machine;
    const p = this.meta?.header({ role: m.role, naturalRole: m.naturalRole, epoch: m.epoch, full: m.wholeCopyPending });
    if (p) p.catch((e) => this.metaFailed(e));
  }

  private metaTransition(from: string, to: string): void {
    if (!this.meta) return;
    let p: Promise<void> | undefined;
    if (to === 'Synced') p = this.meta.synced();
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
    if (w.state !== 0) return;
    if (outcome.kind === 'ok') { this.settle(w, true); return; }
    if (outcome.kind === 'pr-out') { this.prResults.set(origin.id as number, outcome.result); this.settle(w, true); return; }
    const err = origin.kind === 'local' ? this.localErrors.get(origin.id) : undefined;
    if (origin.kind === 'local') this.localErrors.delete(origin.id);
    this.settle(w, false, senseFor(outcome, err));
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
  private ackRun: { first: bigint; last: bigint; lastN: number } | null = null;
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

  /** Take a connected socket (dialled, or accepted and routed by its hello) as this group's link. */
  attach(s: net.Socket, framer: LinkFramer, reader: LinkReader, first: { sequence: number; message: LinkMessage } | null): (sequence: number, m: LinkMessage) => void {
    if (this.socket && !this.socket.destroyed) { s.destroy(); return () => {}; }
    const outbound = first === null;
    this.socket = s;
    this.shaper = this.rc.injector.shaper(s);
    this.outbound = outbound;
    this.sendSeq = 0;
    this.recvSeq = -1;
    this.ackRun = null;
    this.dataChecked = checksData(this.rc.peers.dataIntegrity ?? 'auto', s.remoteAddress);
    s.setNoDelay(true);
    s.on('error', () => {});
    s.on('close', () => this.lost(s, 'connection closed'));
    if (outbound) this.send(this.hello());
    const onMessage = (sequence: number, m: LinkMessage) => {
      if (sequence !== ((this.recvSeq + 1) >>> 0)) { this.log.warn({ group: this.cfg.name, sequence, expected: this.recvSeq + 1 }, 'link message out of sequence'); s.destroy(); return; }
      this.recvSeq = sequence;
      this.machine.heard(Date.now());
      if (!this.linkUp) { this.handshake(s, m); return; }
      if (m.type !== 'write' && m.type !== 'write-same' && m.type !== 'compare-and-write' && m.type !== 'pr-out') { this.receive(m); return; }
      // These carry views of the read buffer (LinkReader). A replicated write applied within this
      // callback is in the store now (stores copy what they are given); anything else (a write
      // applied later, a forwarded write whose frame to the peer is queued, a range lock waited
      // for) keeps the view, and the next read goes to a new buffer.
      const n = this.peerAppliedAtOnce;
      this.receive(m);
      if (m.type !== 'write' || m.forwarded || this.peerAppliedAtOnce !== n + 1) reader.retained = true;
    };
    if (first) onMessage(first.sequence, first.message);
    const onEvent = (ev: LinkFrameEvent): void => {
      if (ev.kind === 'error') { this.log.warn({ group: this.cfg.name, err: ev.error.message }, 'replication link protocol error'); s.destroy(); return; }
      if (this.socket === s) onMessage(ev.sequence, ev.message);
    };
    reader.onChunk = (chunk: Buffer) => framer.push(chunk, onEvent);
    this.rc.injector.receiving(s, reader.userBuffers);
    return (sequence, m) => { if (this.socket === s) onMessage(sequence, m); };
  }

  private hello(): LinkMessage {
    return { type: 'hello', arrayId: this.rc.peers.name, group: this.cfg.name, role: this.role, volumes: this.geometry(), epoch: this.machine.epoch, restarted: this.machine.restarted, volatile: this.machine.volatile, empty: this.machine.empty, ports: this.rc.relativePorts(this) };
  }

  private handshake(s: net.Socket, m: LinkMessage): void {
    if (m.type !== 'hello') { this.refuse(s, 'protocol', `expected hello, got ${m.type}`); return; }
    if (m.group !== this.cfg.name) { this.refuse(s, 'unknown-group', `no group ${m.group} here`); return; }
    // A failed array (its store failed) does not take the link: the peer sees it as gone.
    if (this.machine.storeFailure) { s.destroy(); return; }
    if (m.role === this.role && m.role === 'primary' && m.epoch > this.machine.epoch) {
      // Both claim the primary role: the lower epoch was failed over from and yields (HPE: the
      // old primary comes back as Secondary-Rev, to be recovered).
      this.step({ kind: 'superseded', by: m.arrayId, epoch: m.epoch });
      // The dialler has told the listener its old role: it starts over as secondary on the next dial.
      if (this.outbound) { s.destroy(); return; }
    }
    if (m.role === this.role) {
      // The listener names its epoch in a hello before refusing, so a stale dialler can yield.
      if (!this.outbound) this.send(this.hello());
      this.refuse(s, 'role-conflict', `both arrays are ${m.role} for ${m.group} (epoch ${this.machine.epoch} here, ${m.epoch} on ${m.arrayId})`);
      return;
    }
    const mine = this.geometry();
    // One device, two arrays: a relative target port identifier on both would make READ FULL STATUS and REGISTER AND MOVE ambiguous.
    const both = this.rc.relativePorts(this).filter((p) => m.ports.includes(p));
    const why = geometryMismatch(mine, m.volumes) ?? (both.length ? `relative target port ${both.join(', ')} on both arrays (give each array's portals distinct tpgt)` : null);
    if (why) { this.refuse(s, 'geometry-mismatch', why); return; }
    if (!this.outbound) this.send(this.hello());
    this.peerPorts = m.ports;
    this.linkUp = true;
    this.stats.linkUps++;
    this.log.info({ group: this.cfg.name, peer: m.arrayId, dataChecked: this.dataChecked, restarted: this.machine.restarted, volatile: this.machine.volatile, empty: this.machine.empty, peerRestarted: m.restarted, peerVolatile: m.volatile, peerEmpty: m.empty }, 'replication link up');
    this.step({ kind: 'link-up', peerArray: m.arrayId, peer: { restarted: m.restarted, volatile: m.volatile, empty: m.empty } });
  }

  private refuse(s: net.Socket, code: 'protocol' | 'unknown-group' | 'role-conflict' | 'geometry-mismatch', message: string): void {
    this.log.warn({ group: this.cfg.name, code, message }, 'replication link refused');
    this.send({ type: 'error', code, message });
    s.end();
    setTimeout(() => s.destroy(), 100).unref();
  }

  private receive(m: LinkMessage): void {
    switch (m.type) {
      case 'write': case 'write-same': case 'unmap':
        if (m.forwarded && this.role === 'primary') { this.orderForwarded(m); return; }
        break;
      case 'compare-and-write':
        if (this.role === 'primary') { this.compareAndWriteHere(m); return; }
        this.send({ type: 'compare-and-write-result', id: m.id, outcome: 'failed', offset: 0 });
        return;
      case 'pr-out': this.prOutHere(m); return;
    }
    this.step({ kind: 'peer', message: m });
  }

  /** A write the secondary forwarded: ordered here like a local one, under this array's range lock. */
  private orderForwarded(m: Extract<LinkMessage, { type: 'write' | 'write-same' | 'unmap' }>): void {
    const lu = this.volumes[m.volume];
    if (!lu) { this.send({ type: 'ack', forwarded: true, seq: m.seq, status: 'no-such-volume' }); return; }
    // Gated at the secondary by a PR state this array is replacing: refused, the host's retry is gated anew (GroupMachine.prPending).
    if (this.machine.prPending(m.volume) && !prHooks.noForwardFence) { this.send({ type: 'ack', forwarded: true, seq: m.seq, status: 'pr-changed' }); return; }
    const origin = waited('forwarded', m.seq);
    let op: WriteOp;
    let lba: bigint;
    let blocks: bigint;
    if (m.type === 'write') {
      op = { kind: 'write', volume: m.volume, lba: m.lba, blocks: m.data.length / lu.blockSize, fua: m.fua, data: m.data };
      lba = m.lba; blocks = BigInt(op.blocks);
    } else if (m.type === 'write-same') {
      op = { kind: 'write-same', volume: m.volume, lba: m.lba, blocks: m.blocks, unmap: m.unmap, block: m.block };
      lba = m.lba; blocks = BigInt(m.blocks);
    } else {
      op = { kind: 'unmap', volume: m.volume, ranges: m.ranges };
      lba = m.ranges.reduce((x, r) => (r.lba < x ? r.lba : x), lu.blockCount);
      const end = m.ranges.reduce((x, r) => (r.lba + BigInt(r.blocks) > x ? r.lba + BigInt(r.blocks) : x), 0n);
      blocks = end > lba ? end - lba : 0n;
    }
    const r = exclusive(lu, lba, blocks, () => this.await(origin, { kind: 'host-write', origin, op, now: Date.now() }));
    if (r instanceof Promise) r.catch(() => {}); // the outcome went back on the link as the ack
  }

  /**
   * PERSISTENT RESERVE OUT from the secondary: executed here, its new state replicated (ordered
   * with the writes) before the answer goes back, so the secondary holds it when its host hears.
   */
  private prOutHere(m: Extract<LinkMessage, { type: 'pr-out' }>): void {
    const reply = (status: number, reason = '', fieldPointer: PrOutResult['fieldPointer'] = null) => this.send({ type: 'pr-out-result', id: m.id, status, reason, fieldPointer });
    const lu = this.volumes[m.volume];
    if (!lu) { reply(0x02, 'LogicalUnitNotSupported'); return; }
    if (this.role !== 'primary' || !this.machine.serving) { reply(0x02, 'NotReadyAluaUnavailable'); return; }
    const { result, state } = executeForwardedProut(lu, m);
    const answer = () => reply(result.status, result.reason, result.fieldPointer);
    if (!state || prHooks.skipReplication) { answer(); return; }
    const fail = (e: unknown) => reply(0x02, e instanceof SenseError ? e.reason : 'CommandAborted');
    try {
      const w = this.write({ kind: 'pr-state', volume: m.volume, state });
      if (w instanceof Promise) w.then(answer, fail);
      else answer();
    } catch (e) { fail(e); }
  }

  /** COMPARE AND WRITE from the secondary: run here under the range lock; its write replicates like any other. */
  private compareAndWriteHere(m: Extract<LinkMessage, { type: 'compare-and-write' }>): void {
    const lu = this.volumes[m.volume];
    const reply = (outcome: 'written' | 'miscompare' | 'failed' | 'retry', offset = 0) => this.send({ type: 'compare-and-write-result', id: m.id, outcome, offset });
    if (!lu) { reply('failed'); return; }
    // Gated at the secondary by a PR state this array is replacing, as for forwarded writes (orderForwarded).
    if (this.machine.prPending(m.volume) && !prHooks.noForwardFence) { reply('retry'); return; }
    const onErr = (e: unknown) => {
      if (e instanceof SenseError && e.reason === 'MiscompareDuringVerify') reply('miscompare', Number(e.detail.information ?? 0));
      else reply('failed');
    };
    try {
      const r = exclusive(lu, m.lba, m.blocks, () => compareAndWrite(lu, m.lba, m.blocks, m.verify, m.data, m.fua));
      if (r instanceof Promise) r.then(() => reply('written'), onErr);
      else reply('written');
    } catch (e) { onErr(e); }
  }

  private lost(s: net.Socket, why: string): void {
    if (this.socket !== s) return;
    this.socket = null;
    this.ackRun = null; // not sent: the primary marks those writes dirty on its side of the loss
    this.shaper?.close();
    this.shaper = null;
    const wasUp = this.linkUp;
    this.linkUp = false;
    if (wasUp) {
      this.stats.linkDowns++;
      this.log.warn({ group: this.cfg.name, why }, 'replication link down');
      this.step({ kind: 'link-down', reason: why });
    }
    this.scheduleDial();
  }

  // ------------------------------------------------------------ lifecycle

  start(): void {
    this.timer = setInterval(() => this.step({ kind: 'tick', now: Date.now() }), HEARTBEAT_MS);
    this.timer.unref();
    this.scheduleDial(0);
  }

  private scheduleDial(ms = REDIAL_MS): void {
    if (this.cfg.role !== 'primary' || this.closed || this.dialTimer || !this.rc.peers.peer) return;
    this.dialTimer = setTimeout(() => { this.dialTimer = null; this.dial(); }, ms);
    this.dialTimer.unref();
  }

  private dial(): void {
    if (this.closed || this.socket || this.rc.faults.cut || this.machine.storeFailure) { this.scheduleDial(); return; }
    const p = this.rc.peers.peer!;
    const reader = new LinkReader();
    const s = reader.connect(p.port, p.host);
    s.on('error', () => {});
    s.once('connect', () => this.attach(s, new LinkFramer(), reader, null));
    s.once('close', () => { if (this.socket !== s) this.scheduleDial(); });
  }

  /** Fault injection: drop the link now (the dialler stays away until restore). */
  cut(): void { this.socket?.destroy(); }

  stop(): void {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    if (this.dialTimer) clearTimeout(this.dialTimer);
    const s = this.socket;
    s?.destroy();
    // The link is down now, not at the close event: writes in flight are marked dirty, and on file
    // volumes the metadata file says so before the process exits (RemoteCopy.stop waits for it),
    // so a primary stopped while Synced comes back with a dirty map rather than a whole copy.
    if (s) this.lost(s, 'array stopping');
  }

  // ------------------------------------------------------------ resync

  /**
   * auto_synchronize: send only the regions written while the group was stopped (the machine's
   * dirty extents, exact to the logical block), in chunks of up to RESYNC_CHUNK_BLOCKS, each read
   * and sent under its range lock, RESYNC_WINDOW chunks in flight (the extents are disjoint, and
   * the secondary applies them in group sequence order anyway). A link loss stops the resync (each
   * chunk checks the link first); a resync superseded by a later one (the link came back) never
   * reports resync-done, so it cannot clear a dirty map that the later one still has to send.
   */
  private async resync(extents: { volume: number; lba: bigint; blocks: number }[], records: DirtyOp[] = []): Promise<void> {
    const gen = ++this.resyncGen;
    const t0 = performance.now();
    const bytes0 = this.stats.resyncBytes;
    const chunks = (function* () {
      for (const x of extents) {
        for (let done = 0; done < x.blocks; done += RESYNC_CHUNK_BLOCKS) yield { volume: x.volume, lba: x.lba + BigInt(done), blocks: Math.min(RESYNC_CHUNK_BLOCKS, x.blocks - done) };
      }
    })();
    // The machine's link goes down first on a heartbeat timeout (the socket closes later).
    const live = () => { if (gen !== this.resyncGen || !this.linkUp || this.machine.link !== 'up') throw new Error(gen !== this.resyncGen ? 'superseded by a later resync' : 'replication link down'); };
    // Every resync (the initial sync, after an outage, after a failover) first carries each
    // volume's PR state: PR changes made while the group was stopped are not in the dirty map,
    // and the state is a few hundred bytes (pr-replication.ts).
    const prStates = () => this.volumes.map((lu, volume) => this.resyncWrite({ kind: 'pr-state', volume, state: prStateOf(lu) }));
    const worker = async () => {
      for (let c = chunks.next(); !c.done; c = chunks.next()) {
        const { volume, lba, blocks } = c.value;
        live();
        await exclusive(this.volumes[volume], lba, blocks, async () => {
          const data = Buffer.from(await this.stores[volume].inner.read(lba, blocks));
          live(); // checked just before the step: with the link down the machine would only re-mark the region dirty
          this.stats.resyncBytes += data.length;
          await this.resyncWrite({ kind: 'write', volume, lba, blocks, fua: false, data });
          // Counted once the peer holds them: `rcopy startgroup --wait` shows this against dirtyBlocks.
          this.stats.resyncBlocks += blocks;
        });
      }
    };
    try {
      live();
      const first: (void | Promise<void>)[] = prStates();
      // The WRITE SAMEs and UNMAPs made meanwhile, as records in their order (GroupMachine.dirtyOps),
      // stepped now, before any await, so they are ordered before every host write and chunk that follows.
      for (const op of records) {
        this.stats.resyncBytes += op.kind === 'write-same' ? op.block.length : 0;
        this.stats.resyncRecords++;
        first.push(this.resyncWrite(op));
      }
      await Promise.all(first);
      for (const op of records) for (const x of extentsOf(op)) this.stats.resyncBlocks += x.blocks;
      await Promise.all(Array.from({ length: RESYNC_WINDOW }, worker));
      live();
      this.stats.lastResyncBytes = this.stats.resyncBytes - bytes0;
      this.stats.lastResyncMs = Math.round(performance.now() - t0);
      this.step({ kind: 'resync-done' });
    } catch (e) {
      this.log.warn({ group: this.cfg.name, err: e instanceof Error ? e.message : String(e) }, 'resync interrupted; it restarts with the link');
    }
  }

  /** A write the resync sends: the data is already here, only the peer needs it (GroupMachine.hostWrite). */
  private resyncWrite(op: WriteOp): void | Promise<void> {
    const origin = waited('resync', this.nextLocal++);
    return this.await(origin, { kind: 'host-write', origin, op });
  }

  snapshot(): GroupSnapshot & { volumes: { target: string; lun: number; wwn: string }[]; stats: ReplicationGroup['stats']; meta: { file: string | null; load: string; flushes: number; error: string | null } } {
    return {
      ...this.machine.snapshot(),
      meta: { file: this.meta?.file ?? null, load: this.metaLoad, flushes: this.meta?.flushes ?? 0, error: this.meta?.lastError ?? null },
      volumes: this.volumes.map((lu, i) => ({ target: this.cfg.volumes[i].target, lun: lu.lun, wwn: lu.naa })),
      stats: { ...this.stats },
    };
  }
}

/** The file under a volume's store wrappers (replication, fault injection), or null: not a file volume. */
function fileOf(s: import('../store/store.ts').BackingStore): string | null {
  for (let x: unknown = s; x; x = (x as { inner?: unknown }).inner) if (x instanceof FileStore) return x.path;
  return null;
}


function geometryMismatch(a: VolumeGeometry[], b: VolumeGeometry[]): string | null {
  if (a.length !== b.length) return `${a.length} volumes here, ${b.length} on the peer`;
  for (let i = 0; i < a.length; i++) {
    const x = a[i], y = b[i];
    if (x.wwn !== y.wwn) return `volume ${i}: WWN ${x.wwn} here, ${y.wwn} on the peer`;
    if (x.serial !== y.serial) return `volume ${i}: serial ${x.serial} here, ${y.serial} on the peer`;
    if (x.blockSize !== y.blockSize || x.blockCount !== y.blockCount) return `volume ${i}: ${x.blockCount}×${x.blockSize} here, ${y.blockCount}×${y.blockSize} on the peer`;
  }
  return null;
}

/**
 * Remote Copy on one array: its groups, its link listener, its link faults. Built by
 * StorageArray before the LUs (so their stores can be wrapped) and bound to them after.
 */
export class RemoteCopy {
  readonly groups = new Map<string, ReplicationGroup>();
  readonly injector = new LinkFaultInjector();
  get faults(): LinkFaults { return this.injector.faults; }
  private server: net.Server | null = null;
  private readonly byVolume = new Map<string, { group: ReplicationGroup; index: number }>();
  private readonly accepted = new Set<net.Socket>();
  /** In touch with the quorum witness (peers.witness), or null. */
  readonly witness: WitnessClient | null;
  /** Test hooks (never from configuration): acknowledge before the peer has the write; serve on both sides of a partition. */
  static unsafeAckBeforePeer = false;
  static unsafeSplitBrain = false;

  constructor(readonly peers: PeersConfig, readonly cfg: RcopyConfig, readonly log: Logger, readonly events?: ArrayEvents) {
    // The checker's negative control (README "Correctness checker"): honoured only when set explicitly.
    if (process.env.ARRAYSIM_FAULT_HOOK === 'ack-before-peer') {
      RemoteCopy.unsafeAckBeforePeer = true;
      log.warn('ARRAYSIM_FAULT_HOOK=ack-before-peer: writes are acknowledged before the peer has them (test hook)');
    }
    if (process.env.ARRAYSIM_FAULT_HOOK === 'split-brain') {
      RemoteCopy.unsafeSplitBrain = true;
      log.warn('ARRAYSIM_FAULT_HOOK=split-brain: a secondary takes over on link loss without the witness, and a primary writes alone without it (test hook)');
    }
    for (const g of cfg.groups) this.addGroup(g);
    this.witness = peers.witness ? new WitnessClient(peers.witness, peers.name, {
      reports: () => [...this.groups.values()].filter((g) => g.machine.reportsToWitness).map((g) => g.machine.witnessReport()),
      verdict: (v: GroupVerdict, sentAt: number, now: number) => {
        const g = this.groups.get(v.group);
        g?.step({ kind: 'witness', verdict: v, sentAt, now });
        g?.metaHeader(); // the witness may have raised the epoch
      },
    }, log.child({ component: 'witness-client' })) : null;
  }

  /** A group of the configuration, or one `rcopy creategroup` makes (runtime-groups.ts: started at once if the array runs). */
  addGroup(g: RcopyGroupConfig): ReplicationGroup {
    if (this.groups.has(g.name)) throw new Error(`rcopy.groups: group ${g.name} twice`);
    const group = new ReplicationGroup(this, g, this.log.child({ component: 'rcopy' }), { ackBeforePeer: RemoteCopy.unsafeAckBeforePeer, splitBrain: RemoteCopy.unsafeSplitBrain });
    this.groups.set(g.name, group);
    g.volumes.forEach((v, i) => this.claim(v.target, v.lun, group, i));
    if (this.running) group.start();
    return group;
  }

  private claim(target: string, lun: number, group: ReplicationGroup, index: number): void {
    const k = `${target}\0${lun}`;
    if (this.byVolume.has(k)) throw new Error(`rcopy.groups: ${target} LUN ${lun} is in two groups`);
    this.byVolume.set(k, { group, index });
  }

  /** The group a volume belongs to, if any. */
  groupOf(target: string, lun: number): ReplicationGroup | undefined { return this.byVolume.get(`${target}\0${lun}`)?.group; }

  /** A LU of this array (after bind). */
  lu(target: string, lun: number): LogicalUnit | undefined { return this.targets.get(target)?.luns.get(lun); }

  /** This array's target names, the first being the default one. */
  targetNames(): string[] { return [...this.targets.keys()]; }

  /**
   * admitvv (runtime-groups.ts): join a running LU to a group as its next volume. Its store is put
   * behind a ReplicatedStore now (wrapStore does that for configured volumes before the LU exists),
   * and the group takes over its target's port groups as bind() does.
   */
  admit(g: ReplicationGroup, target: string, lu: LogicalUnit): number {
    const index = g.cfg.volumes.length;
    this.claim(target, lu.lun, g, index);
    g.cfg.volumes.push({ target, lun: lu.lun });
    if (!(lu.store instanceof ReplicatedStore)) lu.store = new ReplicatedStore(lu.store);
    this.adopt(target, lu);
    this.own(g, target);
    const a = g.machine.alua();
    this.applyAlua(g, a.state, a.hosts, `admitvv ${target} LUN ${lu.lun}`);
    return index;
  }

  /** The store a replicated LU is built on (its writes go through its group). */
  wrapStore(target: string, lun: number, store: import('../store/store.ts').BackingStore): import('../store/store.ts').BackingStore {
    return this.byVolume.has(`${target}\0${lun}`) ? new ReplicatedStore(store) : store;
  }

  /** The LU exists: join it to its group. */
  adopt(target: string, lu: LogicalUnit): void {
    const v = this.byVolume.get(`${target}\0${lu.lun}`);
    if (!v) return;
    if (!(lu.store instanceof ReplicatedStore)) throw new Error(`${target} LUN ${lu.lun}: store was not wrapped for replication`);
    lu.store.volume = v.index;
    lu.store.sink = v.group;
    lu.store.serving = () => v.group.machine.serving;
    // A store fault (its RAID set or metadata failing) is the group's to handle (group-machine.ts, store failure).
    if (lu.store.inner instanceof FaultStore) lu.store.inner.listeners.add((f) => v.group.step({ kind: 'store', volume: v.index, failed: f !== null, why: f ? `injected ${f.sense}` : 'repaired' }));
    v.group.volumes[v.index] = lu;
    // Any memory volume makes the group's data volatile: a restart loses it (GroupMachine.reconcileRestart).
    if (lu.store.kind === 'memory') v.group.machine.volatile = true;
    v.group.stores[v.index] = lu.store;
    interceptCompareAndWrite(lu, v.group);
    interceptPersistentReserveOut(lu, v.group, () => v.index);
    lu.reservations.peerPorts = () => v.group.peerPorts;
    gateSanitize(lu, v.group);
  }

  /** Every group's metadata file, read before the array serves (ReplicationGroup.loadMeta). */
  async loadMeta(): Promise<void> {
    for (const g of this.groups.values()) await g.loadMeta();
  }

  /** Every volume is bound, every target's ALUA model exists: show the groups' initial ALUA. */
  bind(targets: Map<string, ScsiTarget>): void {
    this.targets = targets;
    for (const g of this.groups.values()) {
      g.cfg.volumes.forEach((v, i) => { if (!g.volumes[i]) throw new Error(`rcopy group ${g.cfg.name}: no LUN ${v.lun} on target ${v.target}`); });
      for (const name of new Set(g.cfg.volumes.map((v) => v.target))) this.own(g, name);
      const a = g.machine.alua();
      this.applyAlua(g, a.state, a.hosts, 'Remote Copy group configured');
    }
  }

  private readonly owned = new Set<string>();

  /** The group owns its target port groups' states: no host moves a non-serving array's paths. */
  private own(g: ReplicationGroup, name: string): void {
    const t = this.targets.get(name);
    const k = `${g.cfg.name}\0${name}`;
    if (!t || this.owned.has(k)) return;
    this.owned.add(k);
    const prev = t.alua.hostChangeVeto;
    t.alua.hostChangeVeto = (tpg) => prev?.(tpg) ?? (g.machine.serving ? null : `Remote Copy group ${g.cfg.name} is not served by this array (${g.machine.status})`);
  }

  private targets = new Map<string, ScsiTarget>();
  /** start() has run: a group added later starts at once. */
  private running = false;

  /** Relative target port identifiers of this array's ports for the group's volumes (the hello's `ports`). */
  relativePorts(g: ReplicationGroup): number[] {
    const ids = new Set<number>();
    for (const v of g.cfg.volumes) {
      for (const tpg of this.targets.get(v.target)?.alua.groups.values() ?? []) for (const p of tpg.ports) ids.add(p);
    }
    return [...ids].sort((a, b) => a - b);
  }

  /** Set this array's target port groups (of the targets holding the group's volumes) to what the group says. */
  applyAlua(g: ReplicationGroup, state: import('../scsi/alua.ts').AccessState, hosts: Record<string, import('../scsi/alua.ts').AccessState>, reason: string): void {
    const names = new Set(g.cfg.volumes.map((v) => v.target));
    for (const name of names) {
      const t = this.targets.get(name);
      if (!t) continue;
      for (const tpg of t.alua.groups.values()) {
        if (!tpg.ports.length) continue;
        const same = tpg.state === state && tpg.hosts.size === Object.keys(hosts).length && Object.entries(hosts).every(([h, s]) => tpg.hosts.get(h) === s);
        if (same) continue;
        void t.alua.transition({ tpg: tpg.id, state, reason: `rcopy ${g.cfg.name}: ${reason}`, transitionMs: 0 });
        for (const [h, s] of Object.entries(hosts)) void t.alua.transition({ tpg: tpg.id, state: s, host: h, reason: `rcopy ${g.cfg.name}: ${reason}`, transitionMs: 0 });
      }
    }
  }

  async start(): Promise<void> {
    if (this.peers.listen) {
      const l = this.peers.listen;
      // Paused on accept: the socket is first moved to one reading into a LinkReader's buffer.
      this.server = net.createServer({ pauseOnConnect: true }, (s) => this.accept(s));
      await new Promise<void>((resolve, reject) => {
        this.server!.once('error', reject);
        this.server!.listen(l.port, l.host, () => {
          const a = this.server!.address();
          if (a && typeof a === 'object') l.port = a.port;
          this.log.info({ link: `${l.host}:${l.port}` }, 'replication link listening');
          resolve();
        });
      });
    }
    this.running = true;
    for (const g of this.groups.values()) g.start();
    this.witness?.start();
  }

  /** An incoming link: routed to its group by the first message (a hello). */
  private accept(raw: net.Socket): void {
    if (this.faults.cut) { raw.destroy(); return; }
    const reader = new LinkReader();
    const s = reader.adopt(raw);
    this.accepted.add(s);
    s.on('close', () => this.accepted.delete(s));
    s.on('error', () => {});
    const framer = new LinkFramer();
    const timer = setTimeout(() => s.destroy(), 5000);
    timer.unref();
    let routed: ((sequence: number, m: import('../../protocol/replication/link.ts').LinkMessage) => void) | null = null;
    reader.onChunk = (chunk: Buffer) => framer.push(chunk, (ev) => {
      if (ev.kind === 'error') { s.destroy(); return; }
      // Messages after the hello in the same chunk go to the group the hello chose.
      if (routed) { routed(ev.sequence, ev.message); return; }
      reader.onChunk = () => {};
      clearTimeout(timer);
      const m = ev.message;
      if (m.type === 'group-admin') { void answerGroupAdmin(this, s, m.request); return; }
      const g = m.type === 'hello' ? this.groups.get(m.group) : undefined;
      if (!g) {
        const parts = encodeMessage({ type: 'error', code: 'unknown-group', message: m.type === 'hello' ? `no group ${m.group} here` : 'expected hello' }, 0);
        for (const p of parts) s.write(p);
        s.end();
        return;
      }
      routed = g.attach(s, framer, reader, { sequence: ev.sequence, message: m });
    });
    this.injector.receiving(s, reader.userBuffers);
  }

  /** POST /v1/rcopy/link: cut, restore, latency, loss, one-way partition of every replication link of this array (link-faults.ts). */
  setLink(o: LinkFaultRequest): void {
    if (this.injector.set(o)) {
      for (const g of this.groups.values()) g.cut();
      for (const s of this.accepted) s.destroy();
    }
    this.log.warn({ faults: this.faults }, 'replication link fault injection');
  }

  status(): { array: string; link: ReturnType<LinkFaultInjector['status']> & { listen: string | null; peer: string | null }; witness: WitnessStatus | null; groups: ReturnType<ReplicationGroup['snapshot']>[] } {
    const hp = (x?: { host: string; port: number }) => (x ? `${x.host}:${x.port}` : null);
    return { array: this.peers.name, link: { ...this.injector.status(), listen: hp(this.peers.listen), peer: hp(this.peers.peer) }, witness: this.witnessStatus(), groups: [...this.groups.values()].map((g) => g.snapshot()) };
  }

  /** `rcopy witness status`: the connection to the witness and each group's last verdict as this array holds it. */
  witnessStatus(): WitnessStatus | null {
    if (!this.witness) return null;
    return { ...this.witness.status(), cut: this.witness.cut, groups: [...this.groups.values()].map((g) => ({ group: g.cfg.name, ...g.machine.snapshot().witness! })) };
  }

  async stop(): Promise<void> {
    this.witness?.stop();
    for (const g of this.groups.values()) g.stop();
    for (const g of this.groups.values()) await g.meta?.settled();
    for (const s of this.accepted) s.destroy();
    if (this.server) await new Promise<void>((r) => this.server!.close(() => r()));
  }
}

export type WitnessStatus = import('./witness-client.ts').WitnessClientStatus & { cut: boolean; groups: ({ group: string } & import('./group-machine.ts').WitnessView)[] };

export { PROXIMITIES };
