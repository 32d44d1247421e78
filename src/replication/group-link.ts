/**
 * The replication link as a Remote Copy group (group-machine.ts) sees it: link up (and the
 * reconciliation after either array's process restarted), link down (what was in flight is not
 * acknowledged, and is marked for the resync), the heartbeat tick, and a volume's store failing
 * or being repaired, which takes this array off the link. Split from the machine by phase, as
 * LIO splits its target: these run when the pair connects or parts, never per write. The
 * handshake that comes before link-up (the hello) is the shell's (link-session.ts).
 */
import type { GroupMachine } from './group-machine.ts';
import type { GroupAction, GroupEvent, PeerRestart } from './group-types.ts';
import { becomePrimary, failsafeCheck } from './group-roles.ts';
import { extentsOf, markDirty, startReplication } from './group-resync.ts';

/** The shell agreed a hello with the peer: the link is up; a primary decides what to resend. */
export function linkUp(m: GroupMachine, peerArray: string, out: GroupAction[], peer: PeerRestart = { restarted: false, volatile: false, empty: false }): void {
  if (m.storeFailure) { out.push({ kind: 'drop-link', reason: `this array's store has failed (${m.storeFailure})` }); return; }
  m.link = 'up';
  m.peerArray = peerArray;
  m.seq = 0;
  m.peerSeqApplied = 0;
  m.syncedAtLoss = false;
  m.failoverRequested = false;
  if (m.status === 'Failsafe') m.transition('Failsafe', 'Stopped', 'replication link restored', out);
  m.unsure = false;
  if (m.role === 'primary' && reconcileRestart(m, peer, out)) return;
  // auto_recover (HPE): a group stopped by a link failure restarts when the link returns.
  if (m.role === 'primary' && m.started && m.startOnLink) { m.startOnLink = false; startReplication(m, 'link up (group configured started)', out); }
  else if (m.role === 'primary' && m.started && m.policies.auto_recover) startReplication(m, 'link restored (auto_recover)', out);
  else if (m.role === 'primary' && m.started) out.push({ kind: 'alua', ...m.alua(), reason: 'link restored; group stays stopped until startgroup (auto_recover off)' });
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
function reconcileRestart(m: GroupMachine, peer: PeerRestart, out: GroupAction[]): boolean {
  const lost = m.dataLost;
  const empty = m.empty;
  const mine = m.restarted;
  m.restarted = false;
  if (lost && !peer.empty) {
    m.epoch++;
    m.role = 'secondary';
    m.started = false;
    m.startOnLink = false;
    m.dirty = []; m.dirtyOps = [];
    m.fullResync = false;
    m.restarted = true; // until the peer's copy makes this array Synced
    const reason = 'restarted on memory stores: the peer holds the volumes and becomes primary';
    out.push({ kind: 'send', message: { type: 'role-swap', epoch: m.epoch, reverse: false, reason } });
    out.push({ kind: 'role', from: 'primary', to: 'secondary', epoch: m.epoch, cause: 'swap', reason });
    return true;
  }
  if ((peer.empty && !empty) || (mine && !m.volatile && !m.dirtyKnown)) m.fullResync = true;
  return false;
}

/** The link is gone (socket closed, heartbeat timeout, store failure): nothing in flight is acknowledged. */
export function linkDown(m: GroupMachine, reason: string, out: GroupAction[]): void {
  if (m.link === 'down') return;
  m.link = 'down';
  // Writes the peer has not acknowledged are not acknowledged to their hosts: the region is
  // marked for resync (it may be on this array only). No write is ever acknowledged without both.
  for (const [, w] of m.awaitingPeer.entries()) {
    markDirty(m, extentsOf(w.op));
    out.push({ kind: 'complete', origin: w.origin, outcome: { kind: 'link-lost' } });
  }
  for (const [, origin] of m.forwarded) out.push({ kind: 'complete', origin, outcome: { kind: 'link-lost' } });
  for (const [, origin] of m.cawSent) out.push({ kind: 'complete', origin, outcome: { kind: 'link-lost' } });
  for (const [, origin] of m.prSent) out.push({ kind: 'complete', origin, outcome: { kind: 'link-lost' } });
  m.awaitingPeer.clear();
  m.prInFlight.clear();
  m.forwarded.clear();
  m.cawSent.clear();
  m.prSent.clear();
  m.syncedAtLoss = m.status === 'Synced';
  if (m.swapPending) m.swapPending = null;
  if (m.status === 'Synced' || m.status === 'Syncing') m.transition(m.status, 'Stopped', `replication link down: ${reason}`, out);
  else out.push({ kind: 'alua', ...m.alua(), reason: `replication link down: ${reason}` });
  if (m.unsafePromote && m.role === 'secondary' && m.syncedAtLoss) {
    becomePrimary(m, m.epoch + 1, 'TEST HOOK split-brain: took the primary role on link loss without the witness', out);
    out.push({ kind: 'alua', ...m.alua(), reason: 'TEST HOOK split-brain: serving alone' });
  }
}

/** The shell's timer: the heartbeat, its timeout, and the Failsafe check. */
export function tick(m: GroupMachine, now: number, out: GroupAction[]): void {
  if (now > m.now) m.now = now;
  failsafeCheck(m, out);
  if (m.link !== 'up') return;
  if (m.lastHeard && now - m.lastHeard > m.linkTimeoutMs) {
    out.push({ kind: 'drop-link', reason: `nothing heard from the peer for ${now - m.lastHeard} ms` });
    linkDown(m, 'heartbeat timeout', out);
    return;
  }
  out.push({ kind: 'send', message: { type: 'heartbeat', nonce: ++m.heartbeatNonce, reply: false } });
}

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
export function storeChanged(m: GroupMachine, e: Extract<GroupEvent, { kind: 'store' }>, out: GroupAction[]): void {
  if (!e.failed) {
    if (!m.storeFailure) return;
    m.storeFailure = null;
    m.storeFailedVolume = -1;
    out.push({ kind: 'alua', ...m.alua(), reason: `volume ${e.volume}: store repaired` });
    return;
  }
  if (m.storeFailure) return;
  m.storeFailure = `volume ${e.volume}: ${e.why}`;
  m.storeFailedVolume = e.volume;
  const reason = `store failed (${m.storeFailure})`;
  if (m.link === 'up') { out.push({ kind: 'drop-link', reason }); linkDown(m, reason, out); }
  else out.push({ kind: 'alua', ...m.alua(), reason });
}
