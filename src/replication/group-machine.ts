/**
 * One Remote Copy group on one array, as a pure state machine (STYLE.md habit 16, after
 * etcd/raft): `step(event)` returns the actions to carry out; it never touches a socket, a timer,
 * a store or the ALUA model. src/replication/engine.ts is the shell that feeds it events and
 * carries out its actions, over TCP in the product and in memory in the unit tests.
 *
 * Words from HPE Remote Copy: a group is started or stopped; its SyncStatus is Stopped, Syncing,
 * Synced (and Failsafe, which keeps one array from accepting writes for a volume whose WWN the
 * other array also exports); this array's role is primary or secondary.
 *
 * Ordering (README "Peer replication"): the primary orders every write of the group. A host
 * write at the primary is applied locally while its LBA range is held, then replicated with the
 * next group sequence number; the host gets GOOD once the secondary acknowledges (RPO 0). A host
 * write at the secondary is forwarded to the primary, which orders it like its own (taking its
 * range lock), applies, replicates it back, and acknowledges the forward; the secondary applies
 * replicated writes in sequence order only. So overlapping writes land in one order on both.
 */
import type { AccessState } from '../scsi/alua.ts';
import type { AckStatus, GroupSyncStatus, LinkMessage, LinkNexus, PrStateWire } from '../../protocol/replication/link.ts';
import type { GroupReport, GroupVerdict } from '../../protocol/replication/witness.ts';
import { SeqRing } from './seq-ring.ts';

export type Role = 'primary' | 'secondary';
export type SyncStatus = GroupSyncStatus;
/** admithost -proximity: which array is local to the host (`all`: both are). */
export type Proximity = 'primary' | 'secondary' | 'all';
export const PROXIMITIES: readonly Proximity[] = ['primary', 'secondary', 'all'];

/** Group policies (setrcopygroup pol …). Active Sync turns on auto_failover and path_management and they cannot be turned off. */
export interface GroupPolicies {
  active_active: boolean;
  path_management: boolean;
  auto_failover: boolean;
  auto_recover: boolean;
  auto_synchronize: boolean;
}

/**
 * The writes a group replicates, as records (a WRITE SAME is its one block and a count, not the
 * blocks). `pr-state`: a volume's persistent reservations after a PR OUT, ordered with the writes
 * (README "Peer replication", persistent reservations); it covers no blocks.
 */
export type WriteOp =
  | { kind: 'write'; volume: number; lba: bigint; blocks: number; fua: boolean; data: Buffer }
  | { kind: 'write-same'; volume: number; lba: bigint; blocks: number; unmap: boolean; block: Buffer }
  | { kind: 'unmap'; volume: number; ranges: { lba: bigint; blocks: number }[] }
  | { kind: 'pr-state'; volume: number; state: PrStateWire };

/** A PERSISTENT RESERVE OUT at the secondary, for the primary to execute. */
export interface PrOutReq { volume: number; nexus: LinkNexus; cdb: Buffer; data: Buffer }
/** What the primary answered: SCSI status, and for CHECK CONDITION the sense reason and field pointer. */
export interface PrOutResult { status: number; reason: string; fieldPointer: { inCdb: boolean; byte: number; bit?: number } | null }

/** Who waits for a write's outcome: a command on this array, or a write the secondary forwarded here. */
export type Origin = { kind: 'local'; id: number } | { kind: 'forwarded'; id: bigint } | { kind: 'resync'; id: number };

/** A write or compare-and-write outcome for whoever waits. */
export type Outcome =
  | { kind: 'ok' }
  /** Not acknowledged: the link went away before the peer had it (the host may retry elsewhere). */
  | { kind: 'link-lost' }
  /** This array does not serve the group now (secondary not Synced, Failsafe): NOT READY 04/0C. */
  | { kind: 'unavailable' }
  | { kind: 'failed'; why: string }
  | { kind: 'miscompare'; offset: number }
  /** Not done, and the host should send it again (a forwarded write judged by a PR state that was being replaced): ABORTED COMMAND. */
  | { kind: 'retry'; why: string }
  /** A forwarded PR OUT executed at the primary (whatever its status, its state is on both arrays). */
  | { kind: 'pr-out'; result: PrOutResult };

/** The outcome of nearly every write: one object for all (outcomes are only read). */
const OK: Outcome = Object.freeze({ kind: 'ok' });

export interface CompareAndWriteReq { volume: number; lba: bigint; blocks: number; fua: boolean; verify: Buffer; data: Buffer }

export type GroupEvent =
  /** A write on this array (the caller holds its LBA range). `now` (ms) lets a primary check its witness lease. */
  | { kind: 'host-write'; origin: Origin; op: WriteOp; now?: number }
  /** COMPARE AND WRITE arrived at this array (the secondary sends it to the primary). */
  | { kind: 'host-compare-and-write'; origin: Origin; req: CompareAndWriteReq; now?: number }
  /** PERSISTENT RESERVE OUT arrived at the secondary (it sends it to the primary, which executes it and replicates the state). */
  | { kind: 'host-pr-out'; origin: Origin; req: PrOutReq }
  /** The shell applied an op to the local store: `tag` from the apply action. */
  | { kind: 'applied'; tag: ApplyTag; ok: boolean; why?: string }
  /** A message from the peer (hello is handled by the shell before link-up). */
  | { kind: 'peer'; message: LinkMessage }
  /** `peer`: the restart flags of the peer's hello (absent: a peer that kept running, with persistent volumes). */
  | { kind: 'link-up'; peerArray: string; peer?: PeerRestart }
  | { kind: 'link-down'; reason: string }
  | { kind: 'tick'; now: number }
  | { kind: 'resync-done' }
  | { kind: 'operator'; command: OperatorCommand }
  /** The quorum witness answered a heartbeat this array sent at `sentAt`; `now` is when the answer came. */
  | { kind: 'witness'; verdict: GroupVerdict; sentAt: number; now: number }
  /** The peer's hello claims the primary role with a higher epoch: this array was failed over from. */
  | { kind: 'superseded'; by: string; epoch: number }
  /** A volume's store failed (its RAID set or metadata) or was repaired (src/store/fault.ts). */
  | { kind: 'store'; volume: number; failed: boolean; why: string };

export type OperatorCommand =
  | { verb: 'start' }
  | { verb: 'stop' }
  | { verb: 'admithost'; host: string; proximity: Proximity }
  | { verb: 'dismisshost'; host: string }
  | { verb: 'setpolicy'; policy: keyof GroupPolicies; on: boolean }
  /** setrcopygroup failover (on the secondary): become primary; with a witness only when it grants. */
  | { verb: 'failover' }
  /** setrcopygroup recover (on the array failed over to): replicate back to the old primary (a full resync). */
  | { verb: 'recover' }
  /** setrcopygroup restore (on the primary after a recover, Synced): give the primary role back to its natural array. */
  | { verb: 'restore' }
  /** setrcopygroup reverse (on the primary, Synced): swap the roles and make the new ones the natural ones. */
  | { verb: 'reverse' };

export type ApplyTag = { from: 'host'; origin: Origin; op: WriteOp } | { from: 'peer'; seq: bigint };

export type GroupAction =
  | { kind: 'send'; message: LinkMessage }
  | { kind: 'apply'; op: WriteOp; tag: ApplyTag }
  | { kind: 'complete'; origin: Origin; outcome: Outcome }
  /** The ALUA states this array's target port groups should show for the group's volumes. */
  | { kind: 'alua'; state: AccessState; hosts: Record<string, AccessState>; reason: string }
  | { kind: 'transition'; from: SyncStatus; to: SyncStatus; reason: string }
  /** `full`: after a failover the old primary may hold writes it never acknowledged: copy every volume whole. */
  /**
   * `records`: the WRITE SAMEs and UNMAPs made while the group was stopped, in the order they were
   * made, resent as records before the extents' data (see `dirtyOps`); ignored when `full`.
   */
  | { kind: 'resync'; extents: DirtyExtent[]; records: DirtyOp[]; full: boolean }
  /** This array's role in the group changed (failover, demotion, role swap). */
  | { kind: 'role'; from: Role; to: Role; epoch: number; cause: 'failover' | 'yield' | 'swap'; reason: string }
  | { kind: 'drop-link'; reason: string }
  | { kind: 'refuse'; why: string };

export interface DirtyExtent { volume: number; lba: bigint; blocks: number }
/** A WRITE SAME or UNMAP kept as a record for the resync (dirtyOps). */
export type DirtyOp = Extract<WriteOp, { kind: 'write-same' | 'unmap' }>;
/** At most this many records are kept; later WRITE SAMEs and UNMAPs go into the dirty extents (sent as data). */
const MAX_DIRTY_OPS = 4096;

export interface GroupSnapshot {
  name: string;
  role: Role;
  /** The role the configuration (or the last reverse) gives this array; HPE shows Primary-Rev / Secondary-Rev when they differ. */
  naturalRole: Role;
  /** HPE's role word: Primary, Secondary, Primary-Rev, Secondary-Rev. */
  roleName: string;
  epoch: number;
  /** This array serves host I/O for the group now. */
  serving: boolean;
  /** This array's process started and has not been resynchronised with the peer since. */
  restarted: boolean;
  witness: WitnessView | null;
  status: SyncStatus;
  started: boolean;
  link: 'up' | 'down';
  peerArray: string | null;
  policies: GroupPolicies;
  hosts: Record<string, Proximity>;
  seq: string;
  pending: number;
  dirtyExtents: number;
  dirtyBlocks: string;
  /** Why the group cannot become Synced on its own, so the operator must act (null: it is Synced, or gets there by itself). */
  operatorNeeded: string | null;
  /** A volume's store has failed (fault injection): the group is not served here until it is repaired. */
  storeFailure: string | null;
}

/** The quorum witness as this group last heard it (null: no witness configured). */
export interface WitnessView {
  reachable: boolean;
  owner: string;
  epoch: number;
  peerSight: GroupVerdict['peerSight'] | null;
  /** What the witness recorded for this array. */
  recorded: SyncStatus | null;
  /** This array may write alone (link down or group stopped) until then: the lease (ms since epoch, 0: none). */
  leaseUntil: number;
  failoverRequested: boolean;
}

/**
 * Allowed SyncStatus changes. Stopped → Synced is the secondary told by the primary that the pair
 * is in sync (a start with nothing to resend). Failsafe: the replication link is down and the
 * quorum witness cannot be reached, so this array cannot know whether the other one took over; it
 * stops serving the group (HPE Active Sync paper, "Replication link failure" with the witness
 * lost). It is left when the witness or the link returns.
 */
const TRANSITIONS: Record<SyncStatus, readonly SyncStatus[]> = {
  Stopped: ['Syncing', 'Synced', 'Failsafe'],
  Syncing: ['Synced', 'Stopped', 'Failsafe'],
  Synced: ['Stopped', 'Failsafe'],
  Failsafe: ['Stopped'],
};

export class InvalidTransitionError extends Error {}

export interface GroupMachineOptions {
  name: string;
  role: Role;
  policies?: Partial<GroupPolicies>;
  hosts?: Record<string, Proximity>;
  /** No heartbeat heard for this long: the link is declared down (ms). */
  linkTimeoutMs?: number;
  /** Test hook, never set in the product: acknowledge host writes before the peer has them (the negative control). */
  unsafeAckBeforePeer?: boolean;
  /** This array's name (peers.name): the witness names owners by it. */
  array?: string;
  /** A quorum witness is configured (peers.witness): writing alone needs its lease; failover needs its grant. */
  witness?: boolean;
  /** Test hook, never set in the product: a primary writes alone as if it had no witness (no record, no lease, no Failsafe) while its peer still fails over with one (the no-split-brain check's negative control). */
  unsafeWriteAloneWithoutWitness?: boolean;
  /**
   * Test hook, never set in the product: a Synced secondary that loses the link takes the primary
   * role at once, with no grant from the witness (the end-to-end split-brain negative control:
   * ARRAYSIM_FAULT_HOOK=split-brain sets this and unsafeWriteAloneWithoutWitness on both arrays).
   */
  unsafePromoteOnLinkDown?: boolean;
  /** How long a witness verdict lets the owner write alone, from when its heartbeat was sent (ms); below the witness's fail timeout. */
  leaseMs?: number;
  /**
   * The machine is made by a process start (the product sets it; tests that model one running
   * array leave it off): until it is resynchronised with the peer it has no record of what
   * differs between the two (README "Peer replication", restarts).
   */
  restarted?: boolean;
}

export const DEFAULT_LEASE_MS = 1000;

/** What a hello says about the sender's data (protocol/replication/link.ts). */
export interface PeerRestart { restarted: boolean; volatile: boolean; empty: boolean }

export function defaultPolicies(p: Partial<GroupPolicies> = {}): GroupPolicies {
  const aa = p.active_active ?? false;
  // Active Sync / Active Peer Persistence: auto_recover and auto_synchronize on by default;
  // auto_failover and path_management on and fixed (HPE Remote Copy Active Sync paper, "Setting the group for Active Sync").
  return {
    active_active: aa,
    path_management: aa || (p.path_management ?? false),
    auto_failover: aa || (p.auto_failover ?? false),
    auto_recover: p.auto_recover ?? aa,
    auto_synchronize: p.auto_synchronize ?? aa,
  };
}

export class GroupMachine {
  readonly name: string;
  role: Role;
  naturalRole: Role;
  /** Raised by every failover and role swap; of two arrays claiming the primary role the lower epoch yields. */
  epoch = 0;
  status: SyncStatus = 'Stopped';
  /** Operator's wish: the group is started (replicating) unless stopped by the operator. */
  started = false;
  /** Start replicating when the link first comes up (configuration `start`), whatever auto_recover says. */
  startOnLink = false;
  link: 'up' | 'down' = 'down';
  peerArray: string | null = null;
  readonly policies: GroupPolicies;
  readonly hosts = new Map<string, Proximity>();
  private readonly linkTimeoutMs: number;
  private readonly unsafeAckBeforePeer: boolean;
  private readonly unsafeWriteAlone: boolean;
  private readonly unsafePromote: boolean;
  /**
   * Primary: the last group sequence number assigned; secondary: the last one applied. Numbers,
   * not the link's u64 BigInts: they restart from 0 at every link-up, so they stay far below 2^53,
   * and every replicated write looks one up in a map, compares or increments one, on both arrays
   * (a BigInt key is hashed and compared through its digits, and every BigInt sum is a new object).
   */
  private seq = 0;
  private peerSeqApplied = 0;
  /** Primary: writes replicated and not yet acknowledged, by group seq. */
  private readonly awaitingPeer = new SeqRing<{ origin: Origin; op: WriteOp }>();
  /** Secondary: forwarded writes and compare-and-writes, by request id. */
  private readonly forwarded = new Map<bigint, Origin>();
  private readonly cawSent = new Map<bigint, Origin>();
  private readonly prSent = new Map<bigint, Origin>();
  /** Primary: PR states replicated and not yet acknowledged, per volume (prPending). */
  private readonly prInFlight = new Map<number, number>();
  private nextRequest = 1n;
  /** Writes the secondary does not have (made while the group was stopped): resent by a resync. */
  private dirty: DirtyExtent[] = [];
  /**
   * WRITE SAMEs and UNMAPs made while the group was stopped, in order: the resync resends them as
   * records (a block and a count) and then the dirty extents as data read at that moment. That is
   * exact: a block last written by a plain write is in an extent and gets the current data; a block
   * only records touched ends as they leave it, replayed in order; one touched by both is in an
   * extent, so the data sent last is what the primary holds. Any record may be turned into its
   * extents (data) without harm, which is what happens past MAX_DIRTY_OPS.
   */
  private dirtyOps: DirtyOp[] = [];
  /** Coalesce the dirty list when it reaches this many records (amortised: a hot region rewritten all through a long outage stays a few records, not one per write). */
  private dirtyCompactAt = 1024;
  private lastHeard = 0;
  private heartbeatNonce = 0n;
  /** Host writes applied here and not yet answered: a role swap waits for them. */
  private applying = 0;
  private swapPending: { reverse: boolean; reason: string } | null = null;
  /** After a failover the other array is copied whole at the next start (it may hold unacknowledged writes). */
  private fullResync = false;
  /** The status was Synced when the link was lost: this array holds every acknowledged write. */
  private syncedAtLoss = false;
  /** This process started and has not been resynchronised with the peer since (`restarted` option). */
  restarted: boolean;
  /** The volumes do not survive a restart (memory stores): set by the shell once they are bound. */
  volatile = false;
  /** Something was written to this array's volumes since the process started (a host write or the peer's). */
  private wroteSinceStart = false;
  // The quorum witness.
  readonly array: string;
  readonly hasWitness: boolean;
  private readonly leaseMs: number;
  private now = 0;
  private witnessHeardAt = 0;
  private owner = '';
  private witnessEpoch = 0;
  private recorded: SyncStatus | null = null;
  private peerSight: GroupVerdict['peerSight'] | null = null;
  private leaseUntil = 0;
  private failoverRequested = false;
  /** serving and role as last shown (aluaIfChanged): serving 1, primary 2. */
  private aluaKey = -1;
  /** A volume's store has failed: this array is a failed array for the group until it is repaired. */
  storeFailure: string | null = null;
  /** Restored from the group's metadata (group-meta.ts) with a dirty map that covers every region the peer may lack. */
  private dirtyKnown = false;
  /** The metadata could not be read: a primary does not serve alone until the peer has been reached. */
  private unsure = false;

  constructor(o: GroupMachineOptions) {
    this.name = o.name;
    this.role = o.role;
    this.naturalRole = o.role;
    this.array = o.array ?? '';
    this.hasWitness = !!o.witness;
    this.leaseMs = o.leaseMs ?? DEFAULT_LEASE_MS;
    this.policies = defaultPolicies(o.policies);
    for (const [h, p] of Object.entries(o.hosts ?? {})) this.hosts.set(h, p);
    this.linkTimeoutMs = o.linkTimeoutMs ?? 3000;
    this.unsafeAckBeforePeer = !!o.unsafeAckBeforePeer;
    this.unsafeWriteAlone = !!o.unsafeWriteAloneWithoutWitness;
    this.unsafePromote = !!o.unsafePromoteOnLinkDown;
    this.restarted = !!o.restarted;
    this.aluaKey = this.aluaKeyNow();
  }

  /**
   * What the group's metadata file (group-meta.ts) says this array was when its process stopped:
   * its role and epoch, and `dirty` when the file's bitmap covers every region the peer may lack
   * (null: it does not, so a primary copies the group whole at the first link-up). `unsure`: the
   * file was unreadable, so a primary does not serve alone before it has reached the peer.
   */
  restore(r: { role: Role; naturalRole: Role; epoch: number; full: boolean; dirty: DirtyExtent[] | null; unsure?: boolean }): void {
    // A group this array had taken over (failover, reverse) was started by that.
    if (r.role === 'primary' && this.role !== 'primary') { this.started = true; this.startOnLink = true; }
    if (r.role === 'secondary') { this.started = false; this.startOnLink = false; }
    this.role = r.role;
    this.naturalRole = r.naturalRole;
    this.epoch = r.epoch;
    this.fullResync = r.role === 'primary' && (r.full || r.dirty === null);
    this.dirtyKnown = r.dirty !== null;
    this.dirty = []; this.dirtyOps = [];
    if (r.dirty) this.markDirty(r.dirty);
    this.unsure = !!r.unsure;
    this.aluaKey = this.aluaKeyNow();
  }

  /** The next start copies the group whole (after a failover, or a restart with no dirty map to trust). */
  get wholeCopyPending(): boolean { return this.fullResync; }

  /** Primary: replicated writes the peer has not acknowledged yet. */
  get inFlight(): number { return this.awaitingPeer.size; }

  /** Restarted on memory stores: this array lost the group's data, and holds only what the peer has sent since. */
  private get dataLost(): boolean { return this.restarted && this.volatile; }
  /** Restarted on memory stores and nothing written since: the volumes hold nothing at all. */
  get empty(): boolean { return this.dataLost && !this.wroteSinceStart; }

  /**
   * This array serves host I/O for the group now. The secondary only while Synced (it forwards
   * writes to the primary). The primary while it replicates; when it would write alone (link
   * down, group stopped) and a witness is configured, only while the witness names it owner, has
   * recorded that it is no longer Synced, and its lease runs: otherwise the other array might be
   * granted a failover (README "Peer replication", quorum witness).
   */
  get serving(): boolean {
    if (this.status === 'Failsafe' || this.swapPending || this.storeFailure) return false;
    if (this.role === 'secondary') return this.status === 'Synced' && this.link === 'up';
    if (this.replicating) return true;
    // A primary restarted on memory stores must not write alone: its volumes are empty, and what
    // it wrote would be all that a later resync could keep of them.
    if (this.dataLost || this.unsure) return false;
    return this.mayWriteAlone();
  }

  private mayWriteAlone(): boolean {
    if (!this.hasWitness || this.unsafeWriteAlone) return true;
    return this.owner === this.array && this.recorded !== null && this.recorded !== 'Synced' && this.now < this.leaseUntil;
  }

  /** Replicating: writes must reach the peer before the host is answered. */
  get replicating(): boolean {
    return this.link === 'up' && (this.status === 'Synced' || this.status === 'Syncing');
  }

  step(e: GroupEvent): GroupAction[] {
    const out: GroupAction[] = [];
    switch (e.kind) {
      case 'host-write': this.hostWrite(e.origin, e.op, out, e.now); break;
      case 'host-compare-and-write':
        if (e.now !== undefined && e.now > this.now) this.now = e.now;
        this.hostCompareAndWrite(e.origin, e.req, out);
        break;
      case 'host-pr-out': this.hostPrOut(e.origin, e.req, out); break;
      case 'applied': if (e.ok) this.wroteSinceStart = true; this.applied(e, out); break;
      case 'peer': this.peer(e.message, out); break;
      case 'link-up': this.linkUp(e.peerArray, out, e.peer); break;
      case 'link-down': this.linkDown(e.reason, out); break;
      case 'tick': this.tick(e.now, out); break;
      case 'resync-done': this.resyncDone(out); break;
      case 'operator': this.operator(e.command, out); break;
      case 'witness': this.witnessVerdict(e.verdict, e.sentAt, e.now, out); break;
      case 'superseded': this.superseded(e.by, e.epoch, out); break;
      case 'store': this.store(e, out); break;
    }
    this.aluaIfChanged(out);
    return out;
  }

  /**
   * Emit the ALUA states when serving or the role changed without a transition that showed it
   * (a lease ran out, a witness verdict, a role swap). A cheap key: this runs for every event.
   */
  private aluaKeyNow(): number { return (this.serving ? 1 : 0) | (this.role === 'primary' ? 2 : 0); }

  private aluaIfChanged(out: GroupAction[]): void {
    const key = this.aluaKeyNow();
    if (key === this.aluaKey) return;
    this.aluaKey = key;
    out.push({ kind: 'alua', ...this.alua(), reason: `${this.role}, ${this.serving ? 'serving' : 'not serving'} the group` });
  }

  // ------------------------------------------------------------ host I/O

  private hostWrite(origin: Origin, op: WriteOp, out: GroupAction[], now?: number): void {
    if (now !== undefined && now > this.now) this.now = now;
    if (this.role === 'secondary') {
      if (!this.serving) { out.push({ kind: 'complete', origin, outcome: { kind: 'unavailable' } }); return; }
      const id = this.nextRequest++;
      this.forwarded.set(id, origin);
      out.push({ kind: 'send', message: toMessage(op, true, id) });
      return;
    }
    if (!this.serving) { out.push({ kind: 'complete', origin, outcome: { kind: 'unavailable' } }); return; }
    if (origin.kind === 'resync') {
      // The data is already here (read from this array's store): only the peer needs it.
      this.replicate(origin, op, out);
      return;
    }
    this.applying++;
    out.push({ kind: 'apply', op, tag: { from: 'host', origin, op } });
  }

  private hostCompareAndWrite(origin: Origin, req: CompareAndWriteReq, out: GroupAction[]): void {
    // The primary runs COMPARE AND WRITE itself (its write comes back here as a host-write).
    if (this.role === 'primary') { out.push({ kind: 'refuse', why: 'the primary executes COMPARE AND WRITE locally' }); return; }
    if (!this.serving) { out.push({ kind: 'complete', origin, outcome: { kind: 'unavailable' } }); return; }
    const id = this.nextRequest++;
    this.cawSent.set(id, origin);
    out.push({ kind: 'send', message: { type: 'compare-and-write', id, ...req } });
  }

  private hostPrOut(origin: Origin, req: PrOutReq, out: GroupAction[]): void {
    // The primary runs PR OUT itself and replicates the state as a pr-state host-write.
    if (this.role === 'primary') { out.push({ kind: 'refuse', why: 'the primary executes PERSISTENT RESERVE OUT locally' }); return; }
    if (!this.serving) { out.push({ kind: 'complete', origin, outcome: { kind: 'unavailable' } }); return; }
    const id = this.nextRequest++;
    this.prSent.set(id, origin);
    out.push({ kind: 'send', message: { type: 'pr-out', id, ...req } });
  }

  private applied(e: Extract<GroupEvent, { kind: 'applied' }>, out: GroupAction[]): void {
    if (e.tag.from === 'peer') {
      out.push({ kind: 'send', message: { type: 'ack', forwarded: false, seq: e.tag.seq, status: e.ok ? 'ok' : 'not-applied' } });
      return;
    }
    const { origin, op } = e.tag;
    this.applying--;
    if (!e.ok) {
      // On a failed store the write did not happen anywhere: 04/0C sends the host to another path.
      out.push({ kind: 'complete', origin, outcome: this.storeFailure ? { kind: 'unavailable' } : { kind: 'failed', why: e.why ?? 'local write failed' } });
      this.maybeSwap(out);
      return;
    }
    if (this.role !== 'primary') {
      // Applied here while this array was primary, and it no longer is (a demotion): not
      // acknowledged; the region is rewritten by the new primary's full resync.
      out.push({ kind: 'complete', origin, outcome: { kind: 'link-lost' } });
      return;
    }
    this.replicate(origin, op, out);
  }

  private replicate(origin: Origin, op: WriteOp, out: GroupAction[]): void {
    if (!this.replicating) {
      if ((op.kind === 'write-same' || op.kind === 'unmap') && this.dirtyOps.length < MAX_DIRTY_OPS) this.dirtyOps.push(op);
      else this.markDirty(extentsOf(op));
      // Acknowledged only if this array may write alone now. A write applied while the link went
      // down without a lease, or the store failed, is on this array only: the peer may be granted
      // the group without it (a failover, then a resync from the peer), so it was never written.
      const alone = origin.kind === 'resync' || this.serving;
      out.push({ kind: 'complete', origin, outcome: alone ? OK : this.storeFailure ? { kind: 'unavailable' } : { kind: 'link-lost' } });
      return;
    }
    const seq = ++this.seq;
    // The op, not its extents: they are needed only if the write never reaches the peer (markDirty).
    this.awaitingPeer.set(seq, { origin, op });
    if (op.kind === 'pr-state') this.prInFlight.set(op.volume, (this.prInFlight.get(op.volume) ?? 0) + 1);
    out.push({ kind: 'send', message: toMessage(op, false, BigInt(seq)) });
    if (this.unsafeAckBeforePeer) {
      this.awaitingPeer.delete(seq);
      out.push({ kind: 'complete', origin, outcome: OK });
    }
  }

  // ------------------------------------------------------------ the peer

  private peer(m: LinkMessage, out: GroupAction[]): void {
    switch (m.type) {
      case 'write': case 'write-same': case 'unmap': case 'pr-state': {
        const op = fromMessage(m);
        if (m.type !== 'pr-state' && m.forwarded) {
          // At the primary: the shell takes the range and sends it back in as a host-write.
          if (this.role !== 'primary') out.push({ kind: 'send', message: { type: 'ack', forwarded: true, seq: m.seq, status: 'not-primary' } });
          return;
        }
        if (this.role !== 'secondary') { out.push({ kind: 'drop-link', reason: 'both arrays claim the primary role' }); return; }
        const seq = Number(m.seq);
        if (seq !== this.peerSeqApplied + 1) {
          out.push({ kind: 'drop-link', reason: `replicated write ${m.seq} after ${this.peerSeqApplied}: out of order` });
          return;
        }
        this.peerSeqApplied = seq;
        out.push({ kind: 'apply', op, tag: { from: 'peer', seq: m.seq } });
        return;
      }
      case 'ack': {
        if (m.forwarded) {
          const origin = this.forwarded.get(m.seq);
          if (!origin) return;
          this.forwarded.delete(m.seq);
          out.push({ kind: 'complete', origin, outcome: m.status === 'ok' ? OK : ackFailure(m.status) });
          return;
        }
        this.peerAcked(Number(m.seq), m.status, out);
        return;
      }
      case 'acks':
        // In order, as the secondary applied them; a failure among them would have had its own ack.
        // Only sequence numbers assigned here can be waiting (a corrupt range cannot spin this loop).
        for (let seq = Number(m.first), last = Math.min(Number(m.last), this.seq); seq <= last; seq++) this.peerAcked(seq, 'ok', out);
        return;
      case 'pr-out-result': {
        const origin = this.prSent.get(m.id);
        if (!origin) return;
        this.prSent.delete(m.id);
        out.push({ kind: 'complete', origin, outcome: { kind: 'pr-out', result: { status: m.status, reason: m.reason, fieldPointer: m.fieldPointer } } });
        return;
      }
      case 'compare-and-write-result': {
        const origin = this.cawSent.get(m.id);
        if (!origin) return;
        this.cawSent.delete(m.id);
        const outcome: Outcome = m.outcome === 'written' ? { kind: 'ok' } : m.outcome === 'miscompare' ? { kind: 'miscompare', offset: m.offset }
          : m.outcome === 'retry' ? { kind: 'retry', why: 'the persistent reservations changed while the command was forwarded' } : { kind: 'failed', why: 'compare-and-write failed at the primary' };
        out.push({ kind: 'complete', origin, outcome });
        return;
      }
      case 'heartbeat':
        if (!m.reply) out.push({ kind: 'send', message: { type: 'heartbeat', nonce: m.nonce, reply: true } });
        return;
      case 'group-state':
        if (this.role !== 'secondary') return;
        if (m.state === this.status) return;
        if (m.state === 'Synced' || m.state === 'Syncing') {
          this.started = true;
          // The primary reached this array, so the link is back: Failsafe ends first.
          if (this.status === 'Failsafe') this.transition('Failsafe', 'Stopped', 'the primary is back on the link', out);
          this.transition(this.status, m.state, `primary: ${m.reason}`, out);
        } else if (m.state === 'Stopped') {
          this.started = false;
          this.transition(this.status, 'Stopped', `primary: ${m.reason}`, out);
        }
        return;
      case 'error':
        out.push({ kind: 'drop-link', reason: `peer error ${m.code}: ${m.message}` });
        return;
      case 'role-swap':
        if (this.role !== 'secondary') { out.push({ kind: 'drop-link', reason: 'role swap offered to the primary' }); return; }
        this.role = 'primary';
        if (m.reverse) this.naturalRole = 'primary';
        this.epoch = Math.max(this.epoch, m.epoch);
        this.seq = 0;
        this.started = true;
        out.push({ kind: 'role', from: 'secondary', to: 'primary', epoch: this.epoch, cause: 'swap', reason: `peer: ${m.reason}` });
        // A planned swap happens Synced (both hold the same data). One offered out of sync (the old
        // primary restarted without its data) is followed by a copy of the whole group to it.
        if (this.status !== 'Synced') {
          this.fullResync = true;
          this.dirty = []; this.dirtyOps = [];
          if (this.link === 'up' && this.status === 'Stopped') this.startReplication('the old primary restarted without its data: copy the group whole', out);
        }
        return;
      default:
        return; // hello (the shell's), compare-and-write (the shell runs it at the primary)
    }
  }

  /** Primary: the secondary acknowledged replicated write `seq`. */
  private peerAcked(seq: number, status: AckStatus, out: GroupAction[]): void {
    const w = this.awaitingPeer.get(seq);
    if (!w) return;
    this.awaitingPeer.delete(seq);
    if (w.op.kind === 'pr-state') this.prSettled(w.op.volume);
    const origin = w.origin;
    if (status === 'ok') { out.push({ kind: 'complete', origin, outcome: OK }); this.maybeSwap(out); return; }
    // The secondary could not apply: it no longer has the group's data; stop the group
    // (HPE no_fail_wrt_on_err would hide it from the host; here the write is not acknowledged).
    this.markDirty(extentsOf(w.op));
    out.push({ kind: 'complete', origin, outcome: ackFailure(status) });
    this.stopReplication(`secondary could not apply write ${seq} (${status})`, out);
  }

  /**
   * Primary: a PR state of `volume` is on its way to the secondary and not acknowledged. A write
   * the secondary forwards meanwhile may have passed its reservation gate on the old state (the
   * link is FIFO: a forward that arrives before the ack left the secondary before it installed the
   * new state), so the shell refuses it with `pr-changed` and the host's retry is gated anew.
   */
  prPending(volume: number): boolean { return (this.prInFlight.get(volume) ?? 0) > 0; }

  private prSettled(volume: number): void {
    const n = (this.prInFlight.get(volume) ?? 1) - 1;
    if (n > 0) this.prInFlight.set(volume, n);
    else this.prInFlight.delete(volume);
  }

  /** Note that the peer was heard from (any message). */
  heard(now: number): void { this.lastHeard = now; }

  // ------------------------------------------------------------ link and timers

  private linkUp(peerArray: string, out: GroupAction[], peer: PeerRestart = { restarted: false, volatile: false, empty: false }): void {
    if (this.storeFailure) { out.push({ kind: 'drop-link', reason: `this array's store has failed (${this.storeFailure})` }); return; }
    this.link = 'up';
    this.peerArray = peerArray;
    this.seq = 0;
    this.peerSeqApplied = 0;
    this.syncedAtLoss = false;
    this.failoverRequested = false;
    if (this.status === 'Failsafe') this.transition('Failsafe', 'Stopped', 'replication link restored', out);
    this.unsure = false;
    if (this.role === 'primary' && this.reconcileRestart(peer, out)) return;
    // auto_recover (HPE): a group stopped by a link failure restarts when the link returns.
    if (this.role === 'primary' && this.started && this.startOnLink) { this.startOnLink = false; this.startReplication('link up (group configured started)', out); }
    else if (this.role === 'primary' && this.started && this.policies.auto_recover) this.startReplication('link restored (auto_recover)', out);
    else if (this.role === 'primary' && this.started) out.push({ kind: 'alua', ...this.alua(), reason: 'link restored; group stays stopped until startgroup (auto_recover off)' });
  }

  /**
   * The link-up after either array's process started: no dirty map covers what a restart lost
   * (it was in memory), so decide which array's volumes are the source:
   * - this primary restarted on memory stores (it has not served since: `serving`) and the peer
   *   holds data: the roles swap (the peer becomes primary with a new epoch and copies the group
   *   whole to this array);
   * - the peer is empty (restarted on memory stores, nothing written since) and this array is
   *   not: copy the group whole to it;
   * - this primary restarted on persistent stores: it may hold writes it applied and never
   *   acknowledged, so copy the group whole to the peer, unless its metadata file restored a
   *   dirty map that covers them (`restore`, group-meta.ts): then only that map is resent;
   * - both empty: nothing to copy.
   * A peer that restarted on persistent stores (or on memory stores and was partly resynced)
   * lacks only what this primary's dirty map (or its pending whole copy) already covers.
   * Returns true when the group's start is left to the peer (the role swap).
   */
  private reconcileRestart(peer: PeerRestart, out: GroupAction[]): boolean {
    const lost = this.dataLost;
    const empty = this.empty;
    const mine = this.restarted;
    this.restarted = false;
    if (lost && !peer.empty) {
      this.epoch++;
      this.role = 'secondary';
      this.started = false;
      this.startOnLink = false;
      this.dirty = []; this.dirtyOps = [];
      this.fullResync = false;
      this.restarted = true; // until the peer's copy makes this array Synced
      const reason = 'restarted on memory stores: the peer holds the volumes and becomes primary';
      out.push({ kind: 'send', message: { type: 'role-swap', epoch: this.epoch, reverse: false, reason } });
      out.push({ kind: 'role', from: 'primary', to: 'secondary', epoch: this.epoch, cause: 'swap', reason });
      return true;
    }
    if ((peer.empty && !empty) || (mine && !this.volatile && !this.dirtyKnown)) this.fullResync = true;
    return false;
  }

  private linkDown(reason: string, out: GroupAction[]): void {
    if (this.link === 'down') return;
    this.link = 'down';
    // Writes the peer has not acknowledged are not acknowledged to their hosts: the region is
    // marked for resync (it may be on this array only). No write is ever acknowledged without both.
    for (const [, w] of this.awaitingPeer.entries()) {
      this.markDirty(extentsOf(w.op));
      out.push({ kind: 'complete', origin: w.origin, outcome: { kind: 'link-lost' } });
    }
    for (const [, origin] of this.forwarded) out.push({ kind: 'complete', origin, outcome: { kind: 'link-lost' } });
    for (const [, origin] of this.cawSent) out.push({ kind: 'complete', origin, outcome: { kind: 'link-lost' } });
    for (const [, origin] of this.prSent) out.push({ kind: 'complete', origin, outcome: { kind: 'link-lost' } });
    this.awaitingPeer.clear();
    this.prInFlight.clear();
    this.forwarded.clear();
    this.cawSent.clear();
    this.prSent.clear();
    this.syncedAtLoss = this.status === 'Synced';
    if (this.swapPending) this.swapPending = null;
    if (this.status === 'Synced' || this.status === 'Syncing') this.transition(this.status, 'Stopped', `replication link down: ${reason}`, out);
    else out.push({ kind: 'alua', ...this.alua(), reason: `replication link down: ${reason}` });
    if (this.unsafePromote && this.role === 'secondary' && this.syncedAtLoss) {
      this.becomePrimary(this.epoch + 1, 'TEST HOOK split-brain: took the primary role on link loss without the witness', out);
      out.push({ kind: 'alua', ...this.alua(), reason: 'TEST HOOK split-brain: serving alone' });
    }
  }

  private tick(now: number, out: GroupAction[]): void {
    if (now > this.now) this.now = now;
    this.failsafeCheck(out);
    if (this.link !== 'up') return;
    if (this.lastHeard && now - this.lastHeard > this.linkTimeoutMs) {
      out.push({ kind: 'drop-link', reason: `nothing heard from the peer for ${now - this.lastHeard} ms` });
      this.linkDown('heartbeat timeout', out);
      return;
    }
    out.push({ kind: 'send', message: { type: 'heartbeat', nonce: ++this.heartbeatNonce, reply: false } });
  }

  // ------------------------------------------------------------ operator

  private operator(c: OperatorCommand, out: GroupAction[]): void {
    switch (c.verb) {
      case 'start':
        if (this.role !== 'primary') { out.push({ kind: 'refuse', why: 'startgroup is run on the primary array' }); return; }
        if (this.status === 'Failsafe') { out.push({ kind: 'refuse', why: 'group is failsafe' }); return; }
        this.started = true;
        // Remembered: the group starts when the link returns, whatever auto_recover says (the operator asked for it now).
        if (this.link !== 'up') { this.startOnLink = true; out.push({ kind: 'refuse', why: 'replication link is down; the group starts when it returns' }); return; }
        if (this.status === 'Synced' || this.status === 'Syncing') return;
        this.startReplication('startgroup', out);
        return;
      case 'stop':
        if (this.role !== 'primary') { out.push({ kind: 'refuse', why: 'stopgroup is run on the primary array' }); return; }
        this.started = false;
        if (this.status === 'Synced' || this.status === 'Syncing') this.stopReplication('stopgroup', out);
        return;
      case 'admithost':
        this.hosts.set(c.host, c.proximity);
        out.push({ kind: 'alua', ...this.alua(), reason: `admithost -proximity ${c.proximity} ${c.host}` });
        return;
      case 'dismisshost':
        this.hosts.delete(c.host);
        out.push({ kind: 'alua', ...this.alua(), reason: `dismissrcopyhost ${c.host}` });
        return;
      case 'setpolicy': {
        const fixed = this.policies.active_active && (c.policy === 'auto_failover' || c.policy === 'path_management');
        if (fixed && !c.on) { out.push({ kind: 'refuse', why: `${c.policy} cannot be turned off in an active_active group` }); return; }
        if (c.policy === 'active_active' && c.on && !this.policies.active_active) {
          Object.assign(this.policies, defaultPolicies({ active_active: true }));
        } else this.policies[c.policy] = c.on;
        out.push({ kind: 'alua', ...this.alua(), reason: `setrcopygroup pol ${c.on ? '' : 'no_'}${c.policy}` });
        return;
      }
      case 'failover':
        if (this.role !== 'secondary') { out.push({ kind: 'refuse', why: 'failover is run on the secondary array (this one is primary)' }); return; }
        if (this.link === 'up') { out.push({ kind: 'refuse', why: 'the replication link is up: the primary is alive (use reverse on the primary for a planned swap)' }); return; }
        if (this.hasWitness) {
          // The witness decides (the same rules as auto_failover): the verdict that grants it makes this array primary.
          this.failoverRequested = true;
          out.push({ kind: 'refuse', why: 'pending: failover requested from the quorum witness' });
          return;
        }
        // No witness: the operator vouches that the primary is down (HPE: setrcopygroup failover).
        this.becomePrimary(this.epoch + 1, 'setrcopygroup failover (no quorum witness: on the operator\'s word)', out);
        return;
      case 'recover':
        if (this.role !== 'primary') { out.push({ kind: 'refuse', why: 'recover is run on the array the group failed over to (this one is secondary)' }); return; }
        if (this.role === this.naturalRole && !this.fullResync) { out.push({ kind: 'refuse', why: 'the group has not failed over here (use startgroup)' }); return; }
        if (this.status === 'Failsafe') { out.push({ kind: 'refuse', why: 'group is failsafe' }); return; }
        this.started = true;
        if (this.link !== 'up') { this.startOnLink = true; out.push({ kind: 'refuse', why: 'replication link is down; the group recovers when it returns' }); return; }
        if (this.status === 'Synced' || this.status === 'Syncing') return;
        this.startReplication('setrcopygroup recover', out);
        return;
      case 'restore': case 'reverse': {
        if (this.role !== 'primary') { out.push({ kind: 'refuse', why: `${c.verb} is run on the primary array` }); return; }
        if (c.verb === 'restore' && this.role === this.naturalRole) { out.push({ kind: 'refuse', why: 'the roles are already the natural ones (restore follows a failover and a recover)' }); return; }
        if (this.link !== 'up' || this.status !== 'Synced') { out.push({ kind: 'refuse', why: `${c.verb} needs the group Synced over a live link (it is ${this.status}, link ${this.link})` }); return; }
        if (this.swapPending) { out.push({ kind: 'refuse', why: 'a role swap is already under way' }); return; }
        this.swapPending = { reverse: c.verb === 'reverse', reason: `setrcopygroup ${c.verb}` };
        this.maybeSwap(out);
        return;
      }
    }
  }

  /**
   * A planned role swap, once nothing this array ordered is in flight: new host writes get
   * 04/0C meanwhile (serving is false). This array becomes secondary first, then tells the peer
   * to take the primary role; the pair stays Synced (both hold the same data).
   */
  private maybeSwap(out: GroupAction[]): void {
    const p = this.swapPending;
    if (!p || this.applying > 0 || this.awaitingPeer.size > 0) return;
    this.swapPending = null;
    if (this.role !== 'primary' || this.link !== 'up' || this.status !== 'Synced') return;
    this.epoch++;
    this.role = 'secondary';
    if (p.reverse) this.naturalRole = 'secondary';
    this.peerSeqApplied = 0;
    this.started = false;
    out.push({ kind: 'send', message: { type: 'role-swap', epoch: this.epoch, reverse: p.reverse, reason: p.reason } });
    out.push({ kind: 'role', from: 'primary', to: 'secondary', epoch: this.epoch, cause: 'swap', reason: p.reason });
  }

  private becomePrimary(epoch: number, reason: string, out: GroupAction[]): void {
    const from = this.role;
    this.role = 'primary';
    this.epoch = epoch;
    this.started = true;
    this.startOnLink = false;
    this.fullResync = true;
    this.failoverRequested = false;
    this.seq = 0;
    this.dirty = []; this.dirtyOps = [];
    out.push({ kind: 'role', from, to: 'primary', epoch, cause: 'failover', reason });
    if (this.status === 'Failsafe') this.transition('Failsafe', 'Stopped', reason, out);
  }

  /** Another array holds the primary role with a newer epoch: this one yields and waits to be resynchronised. */
  private demote(epoch: number, reason: string, out: GroupAction[]): void {
    this.role = 'secondary';
    this.epoch = Math.max(this.epoch, epoch);
    this.started = false;
    this.startOnLink = false;
    this.dirty = []; this.dirtyOps = [];
    this.fullResync = false;
    out.push({ kind: 'role', from: 'primary', to: 'secondary', epoch: this.epoch, cause: 'yield', reason });
    if (this.status === 'Failsafe') this.transition('Failsafe', 'Stopped', reason, out);
  }

  private superseded(by: string, epoch: number, out: GroupAction[]): void {
    if (this.role !== 'primary' || this.replicating || epoch <= this.epoch) return;
    this.demote(epoch, `${by} holds the primary role with epoch ${epoch} (this array had ${this.epoch})`, out);
  }

  // ------------------------------------------------------------ store failure

  /**
   * HPE Remote Copy Active Sync paper, "RAID set failure or metadata failure": "The paths to an
   * array that suffers a RAID set or metadata failure will transition to ALUA 'unavailable'" and
   * the RC group stops; on the primary "an Automatic Transparent Failover to the secondary array
   * occurs". So this array becomes a failed array for the group: it stops serving, leaves the
   * link, and goes silent to the witness (the shell sends no report for the group), which then
   * grants the secondary a failover as for a primary array failure (witness-arbiter.ts). A
   * repair makes it an array that comes back: it learns the owner from the witness or the peer
   * and is resynchronised (a full copy after a failover).
   */
  private store(e: Extract<GroupEvent, { kind: 'store' }>, out: GroupAction[]): void {
    if (!e.failed) {
      if (!this.storeFailure) return;
      this.storeFailure = null;
      out.push({ kind: 'alua', ...this.alua(), reason: `volume ${e.volume}: store repaired` });
      return;
    }
    if (this.storeFailure) return;
    this.storeFailure = `volume ${e.volume}: ${e.why}`;
    const reason = `store failed (${this.storeFailure})`;
    if (this.link === 'up') { out.push({ kind: 'drop-link', reason }); this.linkDown(reason, out); }
    else out.push({ kind: 'alua', ...this.alua(), reason });
  }

  /** The witness hears of the group from this array (not while its store has failed: a failed array is silent). */
  get reportsToWitness(): boolean { return this.storeFailure === null; }

  // ------------------------------------------------------------ the quorum witness

  private witnessVerdict(v: GroupVerdict, sentAt: number, now: number, out: GroupAction[]): void {
    if (now > this.now) this.now = now;
    this.witnessHeardAt = now;
    this.owner = v.owner;
    this.witnessEpoch = v.epoch;
    this.recorded = v.recorded;
    this.peerSight = v.peerSight;
    if (v.owner === this.array && v.owner) {
      // The lease counts from when the heartbeat left, which is before the witness heard it.
      this.leaseUntil = Math.max(this.leaseUntil, sentAt + this.leaseMs);
      // Not a secondary new from a restart: the owner named is its dead process, which held the
      // primary role; by keeping its older epoch it tells the witness so (witness-arbiter.ts), and
      // the array that was Synced with that process can be granted the group.
      if (v.epoch > this.epoch && !(this.restarted && this.role === 'secondary')) this.epoch = v.epoch;
    }
    if (v.granted && this.role === 'secondary' && this.link === 'down') {
      this.becomePrimary(v.epoch, `${this.failoverRequested ? 'setrcopygroup failover' : 'automatic failover (auto_failover)'}: the quorum witness granted it (the primary array is lost)`, out);
    } else if (v.owner && v.owner !== this.array && this.role === 'primary' && !this.replicating && v.epoch >= this.epoch) {
      this.demote(v.epoch, `the quorum witness names ${v.owner} owner of the group (epoch ${v.epoch})`, out);
    }
    if (this.status === 'Failsafe') this.transition('Failsafe', 'Stopped', 'quorum witness reachable again', out);
  }

  /** Link down and no witness verdict within the lease: this array cannot know whether the other took over. */
  private failsafeCheck(out: GroupAction[]): void {
    if (this.storeFailure || !this.hasWitness || this.unsafeWriteAlone || this.link === 'up' || this.status !== 'Stopped') return;
    if (this.now - this.witnessHeardAt <= this.leaseMs) return;
    this.transition('Stopped', 'Failsafe', 'replication link down and the quorum witness unreachable', out);
  }

  /** What this array tells the witness about the group. */
  witnessReport(): GroupReport {
    const asks = this.role === 'secondary' && this.link === 'down' && (this.failoverRequested || this.policies.auto_failover);
    return { group: this.name, role: this.role, status: this.status, link: this.link === 'up', syncedAtLoss: this.syncedAtLoss, failover: asks, epoch: this.epoch };
  }

  private startReplication(reason: string, out: GroupAction[]): void {
    this.transition(this.status, 'Syncing', reason, out);
    out.push({ kind: 'send', message: { type: 'group-state', state: 'Syncing', reason } });
    out.push({ kind: 'resync', extents: coalesce(this.dirty), records: [...this.dirtyOps], full: this.fullResync });
  }

  private resyncDone(out: GroupAction[]): void {
    if (this.status !== 'Syncing') return;
    this.dirty = []; this.dirtyOps = [];
    this.dirtyCompactAt = 1024;
    this.fullResync = false;
    this.transition('Syncing', 'Synced', 'resync complete', out);
    out.push({ kind: 'send', message: { type: 'group-state', state: 'Synced', reason: 'resync complete' } });
  }

  private stopReplication(reason: string, out: GroupAction[]): void {
    if (this.link === 'up') out.push({ kind: 'send', message: { type: 'group-state', state: 'Stopped', reason } });
    this.transition(this.status, 'Stopped', reason, out);
  }

  // ------------------------------------------------------------ states

  /**
   * Why this group cannot become Synced without the operator, or null: it is Synced, a resync is
   * under way, or one starts by itself when the link returns (startgroup remembered, or
   * auto_recover). `rcopy startgroup --wait` ends with this instead of waiting out its timeout.
   * Worded to follow "group G is ".
   */
  operatorNeeded(): string | null {
    if (this.status === 'Synced') return null;
    if (this.status === 'Failsafe') {
      return 'Failsafe: the replication link is down and the quorum witness unreachable, so this array does not serve the group '
        + '(it cannot know whether the other array took over); it is Stopped again once the link or the witness returns, then startgroup (or auto_recover when the link returns) resyncs it';
    }
    if (!this.started) return `${this.status} and not started (stopgroup?)`;
    // A secondary follows its primary: Synced comes from there.
    if (this.role !== 'primary' || this.status === 'Syncing') return null;
    if (this.link === 'down') {
      return this.startOnLink || this.policies.auto_recover ? null
        : 'Stopped by a replication link failure and auto_recover is off: when the link returns the group stays Stopped until startgroup';
    }
    return 'Stopped with the replication link up (auto_recover is off): startgroup resyncs it';
  }

  /** The one way SyncStatus changes: validated against TRANSITIONS, then logged, published and reflected in ALUA by the shell. */
  transition(from: SyncStatus, to: SyncStatus, reason: string, out: GroupAction[]): void {
    if (from !== this.status) throw new InvalidTransitionError(`group ${this.name}: transition from ${from}, but the group is ${this.status}`);
    if (!TRANSITIONS[from].includes(to)) throw new InvalidTransitionError(`group ${this.name}: ${from} → ${to} is not a Remote Copy transition`);
    this.status = to;
    if (to === 'Synced') this.restarted = false;
    out.push({ kind: 'transition', from, to, reason });
    out.push({ kind: 'alua', ...this.alua(), reason: `${from} → ${to}: ${reason}` });
  }

  /**
   * ALUA of this array's paths for the group. Serving: Active Peer Persistence (active_active):
   * primary paths active/optimized and secondary active/non-optimized until a host's proximity
   * says otherwise (proximity `all`: optimized on both; `primary`/`secondary`: optimized on that
   * array, non-optimized on the other); classic Peer Persistence: secondary standby. Not serving:
   * unavailable (SPC-5 §5.16.2.4.5: 04/0C for media access).
   */
  alua(): { state: AccessState; hosts: Record<string, AccessState> } {
    if (!this.serving) return { state: 'unavailable', hosts: {} };
    if (!this.policies.active_active) return { state: this.role === 'primary' ? 'active/optimized' : 'standby', hosts: {} };
    const state: AccessState = this.role === 'primary' ? 'active/optimized' : 'active/non-optimized';
    const hosts: Record<string, AccessState> = {};
    for (const [h, p] of this.hosts) hosts[h] = p === 'all' || p === this.role ? 'active/optimized' : 'active/non-optimized';
    return { state, hosts };
  }

  private markDirty(xs: readonly DirtyExtent[]): void {
    for (const x of xs) this.dirty.push(x);
    if (this.dirty.length >= this.dirtyCompactAt) {
      this.dirty = coalesce(this.dirty);
      this.dirtyCompactAt = Math.max(1024, 2 * this.dirty.length);
    }
  }

  /** Records in the dirty list now (memory use; dirtyExtents() is the coalesced view). */
  get dirtyRecords(): number { return this.dirty.length; }

  /** The regions the secondary lacks (written while the group was stopped, or in flight at a link loss), coalesced. */
  dirtyExtents(): DirtyExtent[] { return coalesce([...this.dirty, ...this.dirtyOps.flatMap(extentsOf)]); }

  /** admitvv (runtime-groups.ts): the secondary holds nothing of a volume admitted now, so the group's first start copies it whole. */
  admitted(volume: number, blocks: number): void { this.markDirty([{ volume, lba: 0n, blocks }]); }

  /** The WRITE SAMEs and UNMAPs kept as records for the resync. */
  get dirtyOpCount(): number { return this.dirtyOps.length; }

  snapshot(): GroupSnapshot {
    const d = this.dirtyExtents();
    const roleName = (this.role === 'primary' ? 'Primary' : 'Secondary') + (this.role === this.naturalRole ? '' : '-Rev');
    const witness: WitnessView | null = this.hasWitness ? {
      reachable: this.witnessHeardAt > 0 && this.now - this.witnessHeardAt <= this.leaseMs, owner: this.owner, epoch: this.witnessEpoch,
      peerSight: this.peerSight, recorded: this.recorded, leaseUntil: this.owner === this.array ? this.leaseUntil : 0, failoverRequested: this.failoverRequested,
    } : null;
    return {
      name: this.name, role: this.role, naturalRole: this.naturalRole, roleName, epoch: this.epoch, serving: this.serving, witness, status: this.status, started: this.started, link: this.link, peerArray: this.peerArray, restarted: this.restarted,
      policies: { ...this.policies }, hosts: Object.fromEntries(this.hosts), seq: String(this.role === 'primary' ? this.seq : this.peerSeqApplied),
      pending: this.awaitingPeer.size + this.forwarded.size + this.cawSent.size + this.prSent.size,
      dirtyExtents: d.length, dirtyBlocks: String(d.reduce((n, x) => n + BigInt(x.blocks), 0n)),
      operatorNeeded: this.operatorNeeded(),
      storeFailure: this.storeFailure,
    };
  }
}

function ackFailure(s: AckStatus): Outcome {
  if (s === 'pr-changed') return { kind: 'retry', why: 'the persistent reservations changed while the write was forwarded' };
  return s === 'not-primary' ? { kind: 'unavailable' } : { kind: 'failed', why: `peer answered ${s}` };
}

export function toMessage(op: WriteOp, forwarded: boolean, seq: bigint): LinkMessage {
  switch (op.kind) {
    case 'write': return { type: 'write', forwarded, seq, volume: op.volume, lba: op.lba, fua: op.fua, data: op.data };
    case 'write-same': return { type: 'write-same', forwarded, seq, volume: op.volume, lba: op.lba, blocks: op.blocks, unmap: op.unmap, block: op.block };
    case 'unmap': return { type: 'unmap', forwarded, seq, volume: op.volume, ranges: op.ranges };
    // Never forwarded: a PR OUT at the secondary goes to the primary as the command (pr-out).
    case 'pr-state': return { type: 'pr-state', seq, volume: op.volume, state: op.state };
  }
}

export function fromMessage(m: Extract<LinkMessage, { type: 'write' | 'write-same' | 'unmap' | 'pr-state' }>): WriteOp {
  switch (m.type) {
    case 'write': return { kind: 'write', volume: m.volume, lba: m.lba, blocks: -1, fua: m.fua, data: m.data };
    case 'write-same': return { kind: 'write-same', volume: m.volume, lba: m.lba, blocks: m.blocks, unmap: m.unmap, block: m.block };
    case 'unmap': return { kind: 'unmap', volume: m.volume, ranges: m.ranges };
    case 'pr-state': return { kind: 'pr-state', volume: m.volume, state: m.state };
  }
}

export function extentsOf(op: WriteOp): DirtyExtent[] {
  switch (op.kind) {
    case 'write': case 'write-same': return [{ volume: op.volume, lba: op.lba, blocks: op.blocks }];
    case 'unmap': return op.ranges.map((r) => ({ volume: op.volume, lba: r.lba, blocks: r.blocks }));
    // No blocks: a PR change made while the group is stopped is not marked; every resync ships each volume's PR state.
    case 'pr-state': return [];
  }
}

/** Sort and merge overlapping or adjacent extents per volume. */
export function coalesce(xs: readonly DirtyExtent[]): DirtyExtent[] {
  const s = [...xs].filter((x) => x.blocks > 0).sort((a, b) => a.volume - b.volume || (a.lba < b.lba ? -1 : a.lba > b.lba ? 1 : 0));
  const out: DirtyExtent[] = [];
  for (const x of s) {
    const last = out[out.length - 1];
    if (last && last.volume === x.volume && x.lba <= last.lba + BigInt(last.blocks)) {
      const end = x.lba + BigInt(x.blocks) > last.lba + BigInt(last.blocks) ? x.lba + BigInt(x.blocks) : last.lba + BigInt(last.blocks);
      last.blocks = Number(end - last.lba);
    } else out.push({ ...x });
  }
  return out;
}
