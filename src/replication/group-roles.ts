/**
 * Who is primary in a Remote Copy group (group-machine.ts), and who decides: the operator's
 * verbs (startgroup, stopgroup, admithost, setrcopygroup pol / failover / recover / restore /
 * reverse), the planned role swap, failover and demotion, and the quorum witness's verdicts and
 * Failsafe. Split from the machine by phase, as LIO splits its target: roles change on an
 * operator's word, a witness verdict or a hello, never per write (the write path only asks
 * maybeSwap whether a swap it holds back may go now).
 */
import type { GroupVerdict } from '../../protocol/replication/witness.ts';
import type { GroupMachine } from './group-machine.ts';
import { defaultPolicies } from './group-types.ts';
import type { GroupAction, OperatorCommand } from './group-types.ts';
import { startReplication, stopReplication } from './group-resync.ts';

/**
 * startgroup and recover, once their own checks passed: a failsafe group is refused; otherwise the
 * group is started, now or, remembered whatever auto_recover says (the operator asked for it now),
 * when the link returns (`does`: what the refusal says the group then does).
 */
function startNowOrOnLink(m: GroupMachine, does: string, reason: string, out: GroupAction[]): void {
  if (m.status === 'Failsafe') { out.push({ kind: 'refuse', why: 'group is failsafe' }); return; }
  m.started = true;
  if (m.link !== 'up') { m.startOnLink = true; out.push({ kind: 'refuse', why: `replication link is down; the group ${does} when it returns` }); return; }
  if (m.status === 'Synced' || m.status === 'Syncing') return;
  startReplication(m, reason, out);
}

/** An operator verb (rcopy CLI, admin API); a refusal is a `refuse` action the shell reports. */
export function operatorCommand(m: GroupMachine, c: OperatorCommand, out: GroupAction[]): void {
  switch (c.verb) {
    case 'start':
      if (m.role !== 'primary') { out.push({ kind: 'refuse', why: 'startgroup is run on the primary array' }); return; }
      startNowOrOnLink(m, 'starts', 'startgroup', out);
      return;
    case 'stop':
      if (m.role !== 'primary') { out.push({ kind: 'refuse', why: 'stopgroup is run on the primary array' }); return; }
      m.started = false;
      if (m.status === 'Synced' || m.status === 'Syncing') stopReplication(m, 'stopgroup', out);
      return;
    case 'admithost':
      m.hosts.set(c.host, c.proximity);
      out.push({ kind: 'alua', ...m.alua(), reason: `admithost -proximity ${c.proximity} ${c.host}` });
      return;
    case 'dismisshost':
      m.hosts.delete(c.host);
      out.push({ kind: 'alua', ...m.alua(), reason: `dismissrcopyhost ${c.host}` });
      return;
    case 'setpolicy': {
      const fixed = m.policies.active_active && (c.policy === 'auto_failover' || c.policy === 'path_management');
      if (fixed && !c.on) { out.push({ kind: 'refuse', why: `${c.policy} cannot be turned off in an active_active group` }); return; }
      if (c.policy === 'active_active' && c.on && !m.policies.active_active) {
        Object.assign(m.policies, defaultPolicies({ active_active: true }));
      } else m.policies[c.policy] = c.on;
      out.push({ kind: 'alua', ...m.alua(), reason: `setrcopygroup pol ${c.on ? '' : 'no_'}${c.policy}` });
      return;
    }
    case 'failover':
      if (m.role !== 'secondary') { out.push({ kind: 'refuse', why: 'failover is run on the secondary array (this one is primary)' }); return; }
      if (m.link === 'up') { out.push({ kind: 'refuse', why: 'the replication link is up: the primary is alive (use reverse on the primary for a planned swap)' }); return; }
      if (m.hasWitness) {
        // The witness decides (the same rules as auto_failover): the verdict that grants it makes this array primary.
        m.failoverRequested = true;
        out.push({ kind: 'refuse', why: 'pending: failover requested from the quorum witness' });
        return;
      }
      // No witness: the operator vouches that the primary is down (HPE: setrcopygroup failover).
      becomePrimary(m, m.epoch + 1, 'setrcopygroup failover (no quorum witness: on the operator\'s word)', out);
      return;
    case 'recover':
      if (m.role !== 'primary') { out.push({ kind: 'refuse', why: 'recover is run on the array the group failed over to (this one is secondary)' }); return; }
      if (m.role === m.naturalRole && !m.fullResync) { out.push({ kind: 'refuse', why: 'the group has not failed over here (use startgroup)' }); return; }
      startNowOrOnLink(m, 'recovers', 'setrcopygroup recover', out);
      return;
    case 'restore': case 'reverse': {
      if (m.role !== 'primary') { out.push({ kind: 'refuse', why: `${c.verb} is run on the primary array` }); return; }
      if (c.verb === 'restore' && m.role === m.naturalRole) { out.push({ kind: 'refuse', why: 'the roles are already the natural ones (restore follows a failover and a recover)' }); return; }
      if (m.link !== 'up' || m.status !== 'Synced') { out.push({ kind: 'refuse', why: `${c.verb} needs the group Synced over a live link (it is ${m.status}, link ${m.link})` }); return; }
      if (m.swapPending) { out.push({ kind: 'refuse', why: 'a role swap is already under way' }); return; }
      m.swapPending = { reverse: c.verb === 'reverse', reason: `setrcopygroup ${c.verb}` };
      maybeSwap(m, out);
      return;
    }
  }
}

/**
 * A planned role swap, once nothing this array ordered is in flight: new host writes get
 * 04/0C meanwhile (serving is false). This array becomes secondary first, then tells the peer
 * to take the primary role; the pair stays Synced (both hold the same data).
 */
export function maybeSwap(m: GroupMachine, out: GroupAction[]): void {
  const p = m.swapPending;
  if (!p || m.applying > 0 || m.awaitingPeer.size > 0) return;
  m.swapPending = null;
  if (m.role !== 'primary' || m.link !== 'up' || m.status !== 'Synced') return;
  m.epoch++;
  m.role = 'secondary';
  if (p.reverse) m.naturalRole = 'secondary';
  m.peerSeqApplied = 0;
  m.started = false;
  out.push({ kind: 'send', message: { type: 'role-swap', epoch: m.epoch, reverse: p.reverse, reason: p.reason } });
  out.push({ kind: 'role', from: 'primary', to: 'secondary', epoch: m.epoch, cause: 'swap', reason: p.reason });
}

/** Failover: this secondary takes the primary role with `epoch`, and will copy the group whole to the old primary. */
export function becomePrimary(m: GroupMachine, epoch: number, reason: string, out: GroupAction[]): void {
  const from = m.role;
  m.role = 'primary';
  m.epoch = epoch;
  m.started = true;
  m.startOnLink = false;
  m.fullResync = true;
  m.failoverRequested = false;
  m.seq = 0;
  m.dirty = []; m.dirtyOps = [];
  out.push({ kind: 'role', from, to: 'primary', epoch, cause: 'failover', reason });
  if (m.status === 'Failsafe') m.transition('Failsafe', 'Stopped', reason, out);
}

/** Another array holds the primary role with a newer epoch: this one yields and waits to be resynchronised. */
function demote(m: GroupMachine, epoch: number, reason: string, out: GroupAction[]): void {
  m.role = 'secondary';
  m.epoch = Math.max(m.epoch, epoch);
  m.started = false;
  m.startOnLink = false;
  m.dirty = []; m.dirtyOps = [];
  m.fullResync = false;
  out.push({ kind: 'role', from: 'primary', to: 'secondary', epoch: m.epoch, cause: 'yield', reason });
  if (m.status === 'Failsafe') m.transition('Failsafe', 'Stopped', reason, out);
}

/** The peer's hello claims the primary role with a higher epoch: this array was failed over from. */
export function superseded(m: GroupMachine, by: string, epoch: number, out: GroupAction[]): void {
  if (m.role !== 'primary' || m.replicating || epoch <= m.epoch) return;
  demote(m, epoch, `${by} holds the primary role with epoch ${epoch} (this array had ${m.epoch})`, out);
}

/** The witness answered a heartbeat: its owner, epoch and record; a grant makes this secondary primary. */
export function witnessVerdict(m: GroupMachine, v: GroupVerdict, sentAt: number, now: number, out: GroupAction[]): void {
  if (now > m.now) m.now = now;
  m.witnessHeardAt = now;
  m.owner = v.owner;
  m.witnessEpoch = v.epoch;
  m.recorded = v.recorded;
  m.peerSight = v.peerSight;
  if (v.owner === m.array && v.owner) {
    // The lease counts from when the heartbeat left, which is before the witness heard it.
    m.leaseUntil = Math.max(m.leaseUntil, sentAt + m.leaseMs);
    // Not a secondary new from a restart: the owner named is its dead process, which held the
    // primary role; by keeping its older epoch it tells the witness so (witness-arbiter.ts), and
    // the array that was Synced with that process can be granted the group.
    if (v.epoch > m.epoch && !(m.restarted && m.role === 'secondary')) m.epoch = v.epoch;
  }
  if (v.granted && m.role === 'secondary' && m.link === 'down') {
    becomePrimary(m, v.epoch, `${m.failoverRequested ? 'setrcopygroup failover' : 'automatic failover (auto_failover)'}: the quorum witness granted it (the primary array is lost)`, out);
  } else if (v.owner && v.owner !== m.array && m.role === 'primary' && !m.replicating && v.epoch >= m.epoch) {
    demote(m, v.epoch, `the quorum witness names ${v.owner} owner of the group (epoch ${v.epoch})`, out);
  }
  if (m.status === 'Failsafe') m.transition('Failsafe', 'Stopped', 'quorum witness reachable again', out);
}

/** Link down and no witness verdict within the lease: this array cannot know whether the other took over. */
export function failsafeCheck(m: GroupMachine, out: GroupAction[]): void {
  if (m.storeFailure || !m.hasWitness || m.unsafeWriteAlone || m.link === 'up' || m.status !== 'Stopped') return;
  if (m.now - m.witnessHeardAt <= m.leaseMs) return;
  m.transition('Stopped', 'Failsafe', 'replication link down and the quorum witness unreachable', out);
}

/**
 * Why this group cannot become Synced without the operator, or null: it is Synced, a resync is
 * under way, or one starts by itself when the link returns (startgroup remembered, or
 * auto_recover). `rcopy startgroup --wait` ends with this instead of waiting out its timeout.
 * Worded to follow "group G is ".
 */
export function whyOperatorNeeded(m: GroupMachine): string | null {
  if (m.status === 'Synced') return null;
  if (m.status === 'Failsafe') {
    return 'Failsafe: the replication link is down and the quorum witness unreachable, so this array does not serve the group '
      + '(it cannot know whether the other array took over); it is Stopped again once the link or the witness returns, then startgroup (or auto_recover when the link returns) resyncs it';
  }
  if (!m.started) return `${m.status} and not started (stopgroup?)`;
  // A secondary follows its primary: Synced comes from there.
  if (m.role !== 'primary' || m.status === 'Syncing') return null;
  if (m.link === 'down') {
    return m.startOnLink || m.policies.auto_recover ? null
      : 'Stopped by a replication link failure and auto_recover is off: when the link returns the group stays Stopped until startgroup';
  }
  return 'Stopped with the replication link up (auto_recover is off): startgroup resyncs it';
}
