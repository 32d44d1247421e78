/**
 * One Remote Copy group on one array, as a pure state machine (STYLE.md habit 16, after
 * etcd/raft): `step(event)` returns the actions to carry out; it never touches a socket, a timer,
 * a store or the ALUA model. src/replication/engine.ts is the shell that feeds it events and
 * carries out its actions, over TCP in the product and in memory in the unit tests.
 *
 * By phase, as LIO splits its target: this file holds the machine's state, `step`, and the write
 * path (host writes, their replication in group sequence order, the peer's writes and acks), the
 * part that runs for every write; the link's ups and downs and store failure are group-link.ts,
 * roles, operator verbs and the quorum witness group-roles.ts, dirty regions and the resync
 * group-resync.ts, and the types they share group-types.ts.
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
import type { AckStatus, LinkMessage } from '../../protocol/replication/link.ts';
import type { GroupReport, GroupVerdict } from '../../protocol/replication/witness.ts';
import { SeqRing } from './seq-ring.ts';
import { DEFAULT_LEASE_MS, defaultPolicies } from './group-types.ts';
import type {
  CompareAndWriteReq, DirtyExtent, DirtyOp, GroupAction, GroupEvent, GroupMachineOptions, GroupPolicies, GroupSnapshot,
  Origin, Outcome, PrOutReq, Proximity, Role, SyncStatus, WitnessView, WriteOp,
} from './group-types.ts';
import { linkDown, linkUp, storeChanged, tick } from './group-link.ts';
import { maybeSwap, operatorCommand, superseded, whyOperatorNeeded, witnessVerdict } from './group-roles.ts';
import { coalesce, extentsOf, markDirty, recordDirty, resyncDone, startReplication, stopReplication } from './group-resync.ts';

// The machine's vocabulary lives in group-types.ts and its phases in group-link.ts, group-roles.ts
// and group-resync.ts; this module stays the one to import the machine and its types from.
export * from './group-types.ts';
export { coalesce, extentsOf };

/** The outcome of nearly every write: one object for all (outcomes are only read). */
const OK: Outcome = Object.freeze({ kind: 'ok' });

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

/**
 * The machine's state is its fields. Those not marked private are read and written by its phase
 * modules too (group-link.ts, group-roles.ts, group-resync.ts: functions that take the machine,
 * as recovery.ts does for the splitter's group); nothing else writes them but through `step`,
 * `restore` and the few setters the shell uses (started, startOnLink, volatile).
 */
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
  readonly linkTimeoutMs: number;
  private readonly unsafeAckBeforePeer: boolean;
  readonly unsafeWriteAlone: boolean;
  readonly unsafePromote: boolean;
  /**
   * Primary: the last group sequence number assigned; secondary: the last one applied. Numbers,
   * not the link's u64 BigInts: they restart from 0 at every link-up, so they stay far below 2^53,
   * and every replicated write looks one up in a map, compares or increments one, on both arrays
   * (a BigInt key is hashed and compared through its digits, and every BigInt sum is a new object).
   */
  seq = 0;
  peerSeqApplied = 0;
  /** Primary: writes replicated and not yet acknowledged, by group seq. */
  readonly awaitingPeer = new SeqRing<{ origin: Origin; op: WriteOp }>();
  /** Secondary: forwarded writes and compare-and-writes, by request id. */
  readonly forwarded = new Map<bigint, Origin>();
  readonly cawSent = new Map<bigint, Origin>();
  readonly prSent = new Map<bigint, Origin>();
  /** Primary: PR states replicated and not yet acknowledged, per volume (prPending). */
  readonly prInFlight = new Map<number, number>();
  private nextRequest = 1n;
  /** Writes the secondary does not have (made while the group was stopped): resent by a resync. */
  dirty: DirtyExtent[] = [];
  /**
   * WRITE SAMEs and UNMAPs made while the group was stopped, in order: the resync resends them as
   * records (a block and a count) and then the dirty extents as data read at that moment. That is
   * exact: a block last written by a plain write is in an extent and gets the current data; a block
   * only records touched ends as they leave it, replayed in order; one touched by both is in an
   * extent, so the data sent last is what the primary holds. Any record may be turned into its
   * extents (data) without harm, which is what happens past MAX_DIRTY_OPS.
   */
  dirtyOps: DirtyOp[] = [];
  /** Coalesce the dirty list when it reaches this many records (amortised: a hot region rewritten all through a long outage stays a few records, not one per write). */
  dirtyCompactAt = 1024;
  lastHeard = 0;
  heartbeatNonce = 0n;
  /** Host writes applied here and not yet answered: a role swap waits for them. */
  applying = 0;
  swapPending: { reverse: boolean; reason: string } | null = null;
  /** After a failover the other array is copied whole at the next start (it may hold unacknowledged writes). */
  fullResync = false;
  /** The status was Synced when the link was lost: this array holds every acknowledged write. */
  syncedAtLoss = false;
  /** This process started and has not been resynchronised with the peer since (`restarted` option). */
  restarted: boolean;
  /** The volumes do not survive a restart (memory stores): set by the shell once they are bound. */
  volatile = false;
  /** Something was written to this array's volumes since the process started (a host write or the peer's). */
  private wroteSinceStart = false;
  // The quorum witness.
  readonly array: string;
  readonly hasWitness: boolean;
  readonly leaseMs: number;
  now = 0;
  witnessHeardAt = 0;
  owner = '';
  witnessEpoch = 0;
  recorded: SyncStatus | null = null;
  peerSight: GroupVerdict['peerSight'] | null = null;
  leaseUntil = 0;
  failoverRequested = false;
  /** serving and role as last shown (aluaIfChanged): serving 1, primary 2. */
  private aluaKey = -1;
  /** A volume's store has failed: this array is a failed array for the group until it is repaired. */
  storeFailure: string | null = null;
  /** The volume `storeFailure` names (-1: none). */
  storeFailedVolume = -1;
  /** Restored from the group's metadata (group-meta.ts) with a dirty map that covers every region the peer may lack. */
  dirtyKnown = false;
  /** The metadata could not be read: a primary does not serve alone until the peer has been reached. */
  unsure = false;

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
    if (r.dirty) markDirty(this, r.dirty);
    this.unsure = !!r.unsure;
    this.aluaKey = this.aluaKeyNow();
  }

  /** The next start copies the group whole (after a failover, or a restart with no dirty map to trust). */
  get wholeCopyPending(): boolean { return this.fullResync; }

  /** Primary: replicated writes the peer has not acknowledged yet. */
  get inFlight(): number { return this.awaitingPeer.size; }

  /** Restarted on memory stores: this array lost the group's data, and holds only what the peer has sent since. */
  get dataLost(): boolean { return this.restarted && this.volatile; }
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
      case 'link-up': linkUp(this, e.peerArray, out, e.peer); break;
      case 'link-down': linkDown(this, e.reason, out); break;
      case 'tick': tick(this, e.now, out); break;
      case 'resync-done': resyncDone(this, out); break;
      case 'operator': operatorCommand(this, e.command, out); break;
      case 'witness': witnessVerdict(this, e.verdict, e.sentAt, e.now, out); break;
      case 'superseded': superseded(this, e.by, e.epoch, out); break;
      case 'store': storeChanged(this, e, out); break;
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
      maybeSwap(this, out);
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
      recordDirty(this, op);
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
          if (this.link === 'up' && this.status === 'Stopped') startReplication(this, 'the old primary restarted without its data: copy the group whole', out);
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
    if (status === 'ok') { out.push({ kind: 'complete', origin, outcome: OK }); if (this.swapPending) maybeSwap(this, out); return; }
    // The secondary could not apply: it no longer has the group's data; stop the group
    // (HPE no_fail_wrt_on_err would hide it from the host; here the write is not acknowledged).
    markDirty(this, extentsOf(w.op));
    out.push({ kind: 'complete', origin, outcome: ackFailure(status) });
    stopReplication(this, `secondary could not apply write ${seq} (${status})`, out);
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

  // ------------------------------------------------------------ the other phases
  // Link up and down, timers, store failure: group-link.ts. Operator verbs, failover, role swaps,
  // the quorum witness: group-roles.ts. Dirty regions and the resync: group-resync.ts.

  /** The witness hears of the group from this array (not while its store has failed: a failed array is silent). */
  get reportsToWitness(): boolean { return this.storeFailure === null; }

  /** What this array tells the witness about the group. */
  witnessReport(): GroupReport {
    const asks = this.role === 'secondary' && this.link === 'down' && (this.failoverRequested || this.policies.auto_failover);
    return { group: this.name, role: this.role, status: this.status, link: this.link === 'up', syncedAtLoss: this.syncedAtLoss, failover: asks, epoch: this.epoch };
  }

  /**
   * Why this group cannot become Synced without the operator, or null (group-roles.ts):
   * `rcopy startgroup --wait` ends with this instead of waiting out its timeout.
   */
  operatorNeeded(): string | null { return whyOperatorNeeded(this); }

  // ------------------------------------------------------------ states

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

  /** Records in the dirty list now (memory use; dirtyExtents() is the coalesced view). */
  get dirtyRecords(): number { return this.dirty.length; }

  /** The regions the secondary lacks (written while the group was stopped, or in flight at a link loss), coalesced. */
  dirtyExtents(): DirtyExtent[] { return coalesce([...this.dirty, ...this.dirtyOps.flatMap(extentsOf)]); }

  /** admitvv (runtime-groups.ts): the secondary holds nothing of a volume admitted now, so the group's first start copies it whole. */
  admitted(volume: number, blocks: number): void { markDirty(this, [{ volume, lba: 0n, blocks }]); }

  /**
   * dismissvv (runtime-groups.ts): volume `volume` left the stopped group and the ones after it
   * moved down one place (the same order on both arrays). Its dirty regions go; the others'
   * follow their volume.
   */
  dismissed(volume: number): void {
    const moved = <T extends { volume: number }>(x: T): T => (x.volume > volume ? { ...x, volume: x.volume - 1 } : x);
    this.dirty = this.dirty.filter((x) => x.volume !== volume).map(moved);
    this.dirtyOps = this.dirtyOps.filter((x) => x.volume !== volume).map(moved);
    const pr = [...this.prInFlight].filter(([v]) => v !== volume);
    this.prInFlight.clear();
    for (const [v, n] of pr) this.prInFlight.set(v > volume ? v - 1 : v, n);
    // A failed volume dismissed no longer keeps the group from being served (the shell shows the new ALUA).
    if (this.storeFailedVolume === volume) { this.storeFailure = null; this.storeFailedVolume = -1; }
    else if (this.storeFailure && this.storeFailedVolume > volume) {
      this.storeFailedVolume--;
      this.storeFailure = this.storeFailure.replace(/^volume \d+/, `volume ${this.storeFailedVolume}`);
    }
  }

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
