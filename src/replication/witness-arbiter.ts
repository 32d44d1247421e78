/**
 * The quorum witness's decisions, pure (STYLE.md habit 16): heartbeats in, verdicts out; the
 * clock is an argument. witness-server.ts is the shell that runs it over TCP.
 *
 * Per group the witness keeps the owner (the one array allowed to write when the pair is not in
 * sync), an epoch, and each array's last report with the time it arrived. HPE Remote Copy Active
 * Sync paper, "Active Sync failure scenarios": a primary array failure with a quorum witness and
 * auto_failover fails the group over to the secondary; a replication link failure (both arrays
 * still reach the witness) does not, and the primary keeps serving. So a failover is granted only
 * when all of these hold:
 *   - the requester reports itself secondary, with its replication link down, and asks;
 *   - the requester was Synced when it lost the link (it holds every acknowledged write);
 *   - the other array has been heard from, but not for failTimeoutMs, and its last report said
 *     link up and Synced: it was in sync and had not told the witness it was about to write alone.
 *     A primary writes alone only once the witness has recorded a status other than Synced for it
 *     (GroupVerdict.recorded), so after that record no grant can happen, and before it nothing
 *     was acknowledged that the secondary lacks;
 *   - the owner's lease has run out, which failTimeoutMs implies: an owner keeps writing alone only
 *     while it holds a verdict younger than its lease (leaseMs < failTimeoutMs, counted from when it
 *     sent the heartbeat, before the witness heard it), so it has stopped before the witness grants.
 * An owner that restarts comes back as its configured role with epoch 0 (roles and epochs live in
 * memory); reporting secondary with an older epoch, it is judged by its last report as primary.
 * A grant makes the requester the owner with epoch + 1, once: two arrays are never both owners.
 *
 * The owner and epoch of each group are what a restarted witness must not forget (witness-state.ts
 * keeps them on disk, the shell writes them before it answers with a changed verdict): `records`
 * gives them, `restore` takes them back before the first heartbeat. A group restored with an owner
 * is not handed to the first primary that reports after the start-up grace; only the rules above
 * move it.
 */
import type { GroupReport, GroupVerdict, PeerSight } from '../../protocol/replication/witness.ts';

export interface ArbiterOptions {
  /** An array not heard for this long is lost (ms). Must exceed an array's lease plus its tick. */
  failTimeoutMs?: number;
  /** When the witness started (its clock): an array never heard since counts as last heard then. */
  startedAt: number;
}

interface Member {
  lastSeen: number;
  report: GroupReport;
  /** The last report in which this array said it was primary, and when it came. */
  asPrimary?: { seen: number; report: GroupReport };
}

interface GroupRecord { owner: string; epoch: number; members: Map<string, Member> }

/** Something the shell logs and shows (witness status). */
export type ArbiterEvent =
  | { kind: 'owner'; group: string; owner: string; epoch: number; reason: string }
  | { kind: 'denied'; group: string; array: string; reason: string }
  | { kind: 'forgotten'; group: string; array: string }
  | { kind: 'forget-refused'; group: string; array: string; reason: string };

export const DEFAULT_FAIL_TIMEOUT_MS = 2500;

export class WitnessArbiter {
  readonly failTimeoutMs: number;
  private readonly startedAt: number;
  private readonly groups = new Map<string, GroupRecord>();
  /**
   * The rule by which a request was last denied, per group and array, so a steady refusal is
   * logged once: the reason's text changes with every heartbeat ("heard 249 ms ago"), the rule
   * does not (before, a link failure logged four lines a second per group).
   */
  private readonly lastDenied = new Map<string, string>();

  constructor(o: ArbiterOptions) {
    this.failTimeoutMs = o.failTimeoutMs ?? DEFAULT_FAIL_TIMEOUT_MS;
    this.startedAt = o.startedAt;
  }

  /** What a restarted witness must know again: each group's owner and epoch. */
  records(): { group: string; owner: string; epoch: number }[] {
    return [...this.groups].map(([group, g]) => ({ group, owner: g.owner, epoch: g.epoch }));
  }

  /** Take back `records` (a witness restarted with its state file), before any heartbeat. */
  restore(records: readonly { group: string; owner: string; epoch: number }[]): void {
    for (const r of records) this.groups.set(r.group, { owner: r.owner, epoch: r.epoch, members: new Map() });
  }

  /**
   * One heartbeat from `array` at `now`: record it, decide, and answer each group. `forget`: groups
   * `array` removed from both arrays (removegroup); each record goes if `array` is its owner (or
   * it has none), so a group made again under the name starts as a new one. Not otherwise: a
   * record the other array may still act on stays (removegroup -local never asks).
   */
  heartbeat(array: string, reports: readonly GroupReport[], now: number, forget: readonly string[] = []): { verdicts: GroupVerdict[]; events: ArbiterEvent[] } {
    const events: ArbiterEvent[] = [];
    const verdicts = reports.map((r) => this.one(array, r, now, events));
    for (const group of forget) {
      const g = this.groups.get(group);
      if (!g) continue;
      if (g.owner && g.owner !== array) { events.push({ kind: 'forget-refused', group, array, reason: `${g.owner} owns it` }); continue; }
      this.groups.delete(group);
      for (const k of [...this.lastDenied.keys()]) if (k.startsWith(`${group}\0`)) this.lastDenied.delete(k);
      events.push({ kind: 'forgotten', group, array });
    }
    return { verdicts, events };
  }

  private one(array: string, r: GroupReport, now: number, events: ArbiterEvent[]): GroupVerdict {
    let g = this.groups.get(r.group);
    if (!g) { g = { owner: '', epoch: 0, members: new Map() }; this.groups.set(r.group, g); }
    const before = g.members.get(array);
    g.members.set(array, { lastSeen: now, report: { ...r }, asPrimary: r.role === 'primary' ? { seen: now, report: { ...r } } : before?.asPrimary });
    const peer = [...g.members.keys()].find((a) => a !== array) ?? '';
    const pm = peer ? g.members.get(peer)! : undefined;
    let granted = false;

    if (!g.owner && r.role === 'primary' && now - this.startedAt >= this.failTimeoutMs && !this.higherPrimary(g, array, r.epoch)) {
      // A grace of one fail timeout after the witness starts: every live array has reported by
      // then, and of two claiming the primary role the higher epoch (the one failed over to) wins.
      g.owner = array;
      g.epoch = Math.max(g.epoch, r.epoch);
      events.push({ kind: 'owner', group: r.group, owner: array, epoch: g.epoch, reason: 'the primary with the highest epoch' });
    } else if (g.owner !== array && r.role === 'primary' && r.link && r.epoch > g.epoch) {
      // A planned role swap (restore, reverse) done over a live link: the old primary gave up
      // the role before the new one took it with a higher epoch.
      g.owner = array;
      g.epoch = r.epoch;
      events.push({ kind: 'owner', group: r.group, owner: array, epoch: g.epoch, reason: 'role swap over the link (higher epoch)' });
    } else if (g.owner !== array && r.role === 'primary' && r.link && r.status === 'Synced') {
      // The owner on record says it is secondary, linked, and is still heard: it writes only
      // through this primary, so the record follows the pair.
      const om = g.members.get(g.owner);
      if (om && om.report.role === 'secondary' && om.report.link && now - om.lastSeen <= this.failTimeoutMs) {
        g.owner = array;
        events.push({ kind: 'owner', group: r.group, owner: array, epoch: g.epoch, reason: `the pair is Synced with ${array} primary; the owner on record reports itself secondary` });
      }
    }

    if (r.failover && r.role === 'secondary') {
      const denied = this.denial(array, r, g, pm, now);
      const key = `${r.group}\0${array}`;
      if (denied) {
        if (this.lastDenied.get(key) !== denied.rule) events.push({ kind: 'denied', group: r.group, array, reason: denied.why });
        this.lastDenied.set(key, denied.rule);
      } else {
        this.lastDenied.delete(key);
        g.owner = array;
        g.epoch = Math.max(g.epoch, r.epoch) + 1;
        granted = true;
        events.push({ kind: 'owner', group: r.group, owner: array, epoch: g.epoch, reason: `failover granted: ${peer || 'the other array'} not heard for ${pm ? now - pm.lastSeen : now - this.startedAt} ms` });
      }
    }

    return {
      group: r.group, owner: g.owner, epoch: g.epoch, peer,
      peerSight: this.sight(pm, now), peerLink: pm ? pm.report.link : false,
      recorded: r.status, granted,
    };
  }

  private higherPrimary(g: GroupRecord, array: string, epoch: number): boolean {
    for (const [a, m] of g.members) if (a !== array && m.report.role === 'primary' && m.report.epoch > epoch) return true;
    return false;
  }

  /** Why a failover request is refused (the rule, and the words for the log), or null to grant it. */
  private denial(array: string, r: GroupReport, g: GroupRecord, pm: Member | undefined, now: number): { rule: string; why: string } | null {
    if (r.link) return { rule: 'link-up', why: 'the requester\'s replication link is up' };
    if (!r.syncedAtLoss) return { rule: 'not-synced', why: 'the requester was not Synced when it lost the link: it may lack acknowledged writes' };
    if (!pm) return { rule: 'never-heard', why: 'the witness has never heard from the other array: it cannot tell whether that array wrote alone' };
    // The owner came back from a restart as a secondary with an older epoch: its process lost the
    // role (roles and epochs live in memory), and the one that held it is gone. Judge that one, as
    // if the owner had not been heard since its last report as primary. The new process serves
    // nothing until a primary resynchronises it, so the pair would otherwise wait for an operator.
    const restartedOwner = pm.report.role === 'secondary' && pm.report.epoch < g.epoch && g.owner !== array && pm.asPrimary !== undefined;
    const seen = restartedOwner ? pm.asPrimary!.seen : pm.lastSeen;
    const last = restartedOwner ? pm.asPrimary!.report : pm.report;
    const silent = now - seen;
    if (silent <= this.failTimeoutMs) return { rule: `heard${restartedOwner ? ' as primary' : ''}`, why: `the other array was heard ${silent} ms ago${restartedOwner ? ' as primary' : ''}: a link failure, not an array failure (the primary keeps serving)` };
    if (!(last.link && last.status === 'Synced')) return { rule: `wrote-alone ${last.status} ${last.link}${restartedOwner ? ' as primary' : ''}`, why: `the other array last reported ${last.status} with its link ${last.link ? 'up' : 'down'}${restartedOwner ? ' as primary' : ''}: it may have written alone` };
    return null;
  }

  private sight(m: Member | undefined, now: number): PeerSight {
    if (!m) return 'unknown';
    return now - m.lastSeen > this.failTimeoutMs ? 'lost' : 'alive';
  }

  /** `witness status`: every group, its owner and epoch, and each array's last report and age. */
  status(now: number): { failTimeoutMs: number; groups: { group: string; owner: string; epoch: number; arrays: { array: string; sight: PeerSight; lastSeenMsAgo: number; report: GroupReport }[] }[] } {
    return {
      failTimeoutMs: this.failTimeoutMs,
      groups: [...this.groups].map(([group, g]) => ({
        group, owner: g.owner, epoch: g.epoch,
        arrays: [...g.members].map(([array, m]) => ({ array, sight: this.sight(m, now), lastSeenMsAgo: now - m.lastSeen, report: { ...m.report } })),
      })),
    };
  }
}
