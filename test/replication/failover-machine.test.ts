/**
 * The group machine's witness, failover, Failsafe and role-swap transitions, one by one, with
 * hand-made verdicts and a clock the test moves (no sockets, no timers).
 */
import { describe, expect, it } from 'vitest';
import { GroupMachine } from '../../src/replication/group-machine.ts';
import type { GroupAction, GroupEvent, Role } from '../../src/replication/group-machine.ts';
import type { GroupVerdict } from '../../protocol/replication/witness.ts';
import type { LinkMessage } from '../../protocol/replication/link.ts';

const LEASE = 1000;

function machine(role: Role, o: { witness?: boolean; array?: string } = {}): GroupMachine {
  return new GroupMachine({ name: 'rcg', role, policies: { active_active: true }, witness: o.witness ?? true, array: o.array ?? (role === 'primary' ? 'A' : 'B'), leaseMs: LEASE });
}

function verdict(v: Partial<GroupVerdict>): GroupVerdict {
  return { group: 'rcg', owner: 'A', epoch: 0, peer: 'B', peerSight: 'alive', peerLink: true, recorded: 'Stopped', granted: false, ...v };
}

function step(m: GroupMachine, e: GroupEvent): GroupAction[] { return m.step(e); }
const sends = (as: GroupAction[]) => as.filter((a): a is Extract<GroupAction, { kind: 'send' }> => a.kind === 'send').map((a) => a.message);
const roles = (as: GroupAction[]) => as.filter((a) => a.kind === 'role');
const write = { kind: 'write' as const, volume: 0, lba: 0n, blocks: 1, fua: false, data: Buffer.alloc(512) };

/** A primary and a secondary, linked and Synced (the primary's resync is reported done at once). */
function synced(o: { witness?: boolean } = {}): { p: GroupMachine; s: GroupMachine; toS: (as: GroupAction[]) => GroupAction[]; toP: (as: GroupAction[]) => GroupAction[] } {
  const p = machine('primary', o);
  const s = machine('secondary', o);
  p.started = true;
  const deliver = (to: GroupMachine) => (as: GroupAction[]): GroupAction[] => {
    const out: GroupAction[] = [];
    for (const m of sends(as)) if (m.type !== 'heartbeat') out.push(...to.step({ kind: 'peer', message: m }));
    return out;
  };
  const toS = deliver(s);
  const toP = deliver(p);
  s.step({ kind: 'link-up', peerArray: 'A' });
  toS(p.step({ kind: 'link-up', peerArray: 'B' }));
  toS(p.step({ kind: 'resync-done' }));
  expect([p.status, s.status]).toEqual(['Synced', 'Synced']);
  return { p, s, toS, toP };
}

describe('primary with a quorum witness', () => {
  it('writes alone only after the witness recorded it not Synced, names it owner, and while the lease runs', () => {
    const { p } = synced();
    expect(p.serving).toBe(true); // replicating
    step(p, { kind: 'link-down', reason: 'cut' });
    expect(p.status).toBe('Stopped');
    expect(p.serving).toBe(false); // the witness still has it Synced: the secondary could be granted
    expect(p.witnessReport()).toMatchObject({ role: 'primary', status: 'Stopped', link: false, failover: false });
    step(p, { kind: 'witness', verdict: verdict({ recorded: 'Synced' }), sentAt: 1000, now: 1010 });
    expect(p.serving).toBe(false);
    const as = step(p, { kind: 'witness', verdict: verdict({ recorded: 'Stopped' }), sentAt: 1250, now: 1260 });
    expect(p.serving).toBe(true);
    expect(as).toContainEqual(expect.objectContaining({ kind: 'alua', state: 'active/optimized' }));
    // The lease counts from the heartbeat's sending: it ends at 1250 + 1000.
    expect(step(p, { kind: 'host-write', origin: { kind: 'local', id: 1 }, op: write, now: 2249 })).toContainEqual(expect.objectContaining({ kind: 'apply' }));
    expect(step(p, { kind: 'host-write', origin: { kind: 'local', id: 2 }, op: write, now: 2250 })).toEqual(expect.arrayContaining([{ kind: 'complete', origin: { kind: 'local', id: 2 }, outcome: { kind: 'unavailable' } }]));
  });

  it('a verdict naming another owner does not extend the lease', () => {
    const { p } = synced();
    step(p, { kind: 'link-down', reason: 'cut' });
    step(p, { kind: 'witness', verdict: verdict({ owner: 'B', epoch: 0 }), sentAt: 1000, now: 1000 });
    expect(p.serving).toBe(false);
  });

  it('Stopped → Failsafe when the link is down and no verdict came within the lease; back to Stopped when the witness answers', () => {
    const { p } = synced();
    step(p, { kind: 'witness', verdict: verdict({ recorded: 'Synced' }), sentAt: 1000, now: 1000 });
    step(p, { kind: 'link-down', reason: 'cut' });
    step(p, { kind: 'tick', now: 1900 });
    expect(p.status).toBe('Stopped');
    const as = step(p, { kind: 'tick', now: 2100 });
    expect(p.status).toBe('Failsafe');
    expect(as).toContainEqual(expect.objectContaining({ kind: 'transition', from: 'Stopped', to: 'Failsafe' }));
    expect(as).toContainEqual(expect.objectContaining({ kind: 'alua', state: 'unavailable' }));
    step(p, { kind: 'witness', verdict: verdict({ recorded: 'Failsafe' }), sentAt: 3000, now: 3000 });
    expect(p.status).toBe('Stopped');
    expect(p.serving).toBe(true);
  });

  it('operatorNeeded names Failsafe (a wait for Synced ends there), and clears once the witness answers', () => {
    const { p } = synced();
    step(p, { kind: 'link-down', reason: 'cut' });
    expect(p.operatorNeeded()).toBeNull(); // Stopped, auto_recover: it resyncs when the link returns
    step(p, { kind: 'tick', now: 5000 });
    expect(p.status).toBe('Failsafe');
    expect(p.operatorNeeded()).toMatch(/^Failsafe: the replication link is down and the quorum witness unreachable/);
    expect(p.snapshot().operatorNeeded).toBe(p.operatorNeeded());
    step(p, { kind: 'witness', verdict: verdict({ recorded: 'Failsafe' }), sentAt: 6000, now: 6000 });
    expect([p.status, p.operatorNeeded()]).toEqual(['Stopped', null]);
  });

  it('Failsafe → Stopped when the link returns, then auto_recover restarts the group', () => {
    const { p } = synced();
    step(p, { kind: 'link-down', reason: 'cut' });
    step(p, { kind: 'tick', now: 5000 });
    expect(p.status).toBe('Failsafe');
    const as = step(p, { kind: 'link-up', peerArray: 'B' });
    expect(as.filter((a) => a.kind === 'transition').map((a) => a.kind === 'transition' && `${a.from}>${a.to}`)).toEqual(['Failsafe>Stopped', 'Stopped>Syncing']);
  });

  it('without a witness the primary keeps serving alone when the link goes down (and never goes Failsafe)', () => {
    const { p } = synced({ witness: false });
    step(p, { kind: 'link-down', reason: 'cut' });
    step(p, { kind: 'tick', now: 1e9 });
    expect([p.status, p.serving]).toEqual(['Stopped', true]);
  });

  it('a verdict naming the peer owner with an epoch at least ours demotes a primary that does not replicate', () => {
    const { p } = synced();
    step(p, { kind: 'link-down', reason: 'cut' });
    step(p, { kind: 'tick', now: 5000 });
    const as = step(p, { kind: 'witness', verdict: verdict({ owner: 'B', epoch: 1 }), sentAt: 6000, now: 6000 });
    expect(roles(as)).toEqual([expect.objectContaining({ from: 'primary', to: 'secondary', epoch: 1 })]);
    expect([p.role, p.status, p.serving, p.epoch]).toEqual(['secondary', 'Stopped', false, 1]);
    expect(p.snapshot().roleName).toBe('Secondary-Rev');
  });

  it('a replicating primary is not demoted by a verdict (the link and the peer\'s hello decide then)', () => {
    const { p } = synced();
    step(p, { kind: 'witness', verdict: verdict({ owner: 'B', epoch: 1 }), sentAt: 6000, now: 6000 });
    expect(p.role).toBe('primary');
  });

  it('superseded (the peer\'s hello claims primary with a higher epoch) demotes; a lower or equal epoch does not', () => {
    const { p } = synced();
    step(p, { kind: 'link-down', reason: 'cut' });
    step(p, { kind: 'superseded', by: 'B', epoch: 0 });
    expect(p.role).toBe('primary');
    step(p, { kind: 'superseded', by: 'B', epoch: 2 });
    expect([p.role, p.epoch]).toEqual(['secondary', 2]);
  });
});

describe('secondary: automatic and manual failover', () => {
  it('after losing the link while Synced it asks the witness for failover; a grant makes it primary (Primary-Rev), serving alone', () => {
    const { s } = synced();
    expect(s.witnessReport()).toMatchObject({ failover: false, link: true });
    step(s, { kind: 'link-down', reason: 'peer closed' });
    expect(s.witnessReport()).toMatchObject({ role: 'secondary', status: 'Stopped', link: false, syncedAtLoss: true, failover: true });
    expect(s.serving).toBe(false);
    step(s, { kind: 'witness', verdict: verdict({ owner: 'A', peer: 'A', peerSight: 'alive' }), sentAt: 100, now: 100 });
    expect(s.role).toBe('secondary');
    const as = step(s, { kind: 'witness', verdict: verdict({ owner: 'B', epoch: 1, peer: 'A', peerSight: 'lost', granted: true }), sentAt: 3000, now: 3005 });
    expect(roles(as)).toEqual([expect.objectContaining({ from: 'secondary', to: 'primary', epoch: 1, reason: expect.stringMatching(/automatic failover/) })]);
    expect([s.role, s.epoch, s.serving, s.snapshot().roleName]).toEqual(['primary', 1, true, 'Primary-Rev']);
    expect(as).toContainEqual(expect.objectContaining({ kind: 'alua', state: 'active/optimized' }));
  });

  it('a secondary that was Syncing when the link went down does not claim to hold every write', () => {
    const p = machine('primary');
    const s = machine('secondary');
    p.started = true;
    s.step({ kind: 'link-up', peerArray: 'A' });
    for (const m of sends(p.step({ kind: 'link-up', peerArray: 'B' }))) s.step({ kind: 'peer', message: m });
    expect(s.status).toBe('Syncing');
    step(s, { kind: 'link-down', reason: 'x' });
    expect(s.witnessReport()).toMatchObject({ syncedAtLoss: false });
  });

  it('failover verb: refused with the link up or on the primary; without a witness immediate (epoch + 1); with one a pending request', () => {
    const { p, s } = synced({ witness: false });
    expect(step(s, { kind: 'operator', command: { verb: 'failover' } })).toContainEqual({ kind: 'refuse', why: expect.stringMatching(/link is up/) });
    expect(step(p, { kind: 'operator', command: { verb: 'failover' } })).toContainEqual({ kind: 'refuse', why: expect.stringMatching(/secondary/) });
    step(s, { kind: 'link-down', reason: 'x' });
    const as = step(s, { kind: 'operator', command: { verb: 'failover' } });
    expect(roles(as)).toEqual([expect.objectContaining({ to: 'primary', epoch: 1 })]);
    expect(s.serving).toBe(true);

    const w = synced();
    step(w.s, { kind: 'link-down', reason: 'x' });
    expect(step(w.s, { kind: 'operator', command: { verb: 'failover' } })).toContainEqual({ kind: 'refuse', why: expect.stringMatching(/^pending/) });
    expect(w.s.role).toBe('secondary');
    expect(w.s.snapshot().witness).toMatchObject({ failoverRequested: true });
  });

  it('after a failover the next start copies the group whole (recover, or auto_recover at link up)', () => {
    const { s } = synced({ witness: false });
    step(s, { kind: 'link-down', reason: 'x' });
    step(s, { kind: 'operator', command: { verb: 'failover' } });
    expect(step(s, { kind: 'operator', command: { verb: 'recover' } })).toContainEqual({ kind: 'refuse', why: expect.stringMatching(/link is down/) });
    const as = step(s, { kind: 'link-up', peerArray: 'A' });
    expect(as).toContainEqual(expect.objectContaining({ kind: 'resync', full: true }));
    step(s, { kind: 'resync-done' });
    expect(s.status).toBe('Synced');
    // Later starts resync only dirty regions again.
    step(s, { kind: 'link-down', reason: 'y' });
    expect(step(s, { kind: 'link-up', peerArray: 'A' })).toContainEqual(expect.objectContaining({ kind: 'resync', full: false }));
  });

  it('recover is refused on a primary that never failed over', () => {
    const { p } = synced();
    expect(step(p, { kind: 'operator', command: { verb: 'recover' } })).toContainEqual({ kind: 'refuse', why: expect.stringMatching(/not failed over/) });
  });
});

describe('planned role swaps: restore and reverse', () => {
  it('reverse waits for writes in flight, then the primary becomes secondary and hands over the role; the pair stays Synced', () => {
    const { p, s, toS, toP } = synced();
    // A write applied and sent, not yet acknowledged.
    const applied = step(p, { kind: 'host-write', origin: { kind: 'local', id: 1 }, op: write, now: 0 });
    const apply = applied.find((a) => a.kind === 'apply')!;
    const rep = step(p, { kind: 'applied', tag: apply.kind === 'apply' ? apply.tag : (null as never), ok: true });
    let as = step(p, { kind: 'operator', command: { verb: 'reverse' } });
    expect(roles(as)).toEqual([]);
    expect(p.serving).toBe(false); // new writes wait out the swap
    expect(step(p, { kind: 'host-write', origin: { kind: 'local', id: 2 }, op: write, now: 0 })).toContainEqual(expect.objectContaining({ kind: 'complete', outcome: { kind: 'unavailable' } }));
    // The secondary applies and acks; the ack completes the write and lets the swap go.
    const acks = toS(rep);
    const back: GroupAction[] = [];
    for (const a of acks) if (a.kind === 'apply') back.push(...s.step({ kind: 'applied', tag: a.tag, ok: true }));
    as = toP(back);
    expect(as).toContainEqual({ kind: 'complete', origin: { kind: 'local', id: 1 }, outcome: { kind: 'ok' } });
    expect(roles(as)).toEqual([expect.objectContaining({ from: 'primary', to: 'secondary', epoch: 1 })]);
    const swap = sends(as).find((m) => m.type === 'role-swap') as Extract<LinkMessage, { type: 'role-swap' }>;
    expect(swap).toMatchObject({ epoch: 1, reverse: true });
    const sas = toS(as);
    expect(roles(sas)).toEqual([expect.objectContaining({ from: 'secondary', to: 'primary', epoch: 1 })]);
    expect([p.role, p.naturalRole, s.role, s.naturalRole]).toEqual(['secondary', 'secondary', 'primary', 'primary']);
    expect([p.status, s.status, p.serving, s.serving]).toEqual(['Synced', 'Synced', true, true]);
    expect([p.snapshot().roleName, s.snapshot().roleName]).toEqual(['Secondary', 'Primary']);
  });

  it('restore gives the role back to the natural primary after a failover; refused when the roles are natural or the pair is not Synced', () => {
    const { p, s, toS, toP } = synced({ witness: false });
    expect(step(p, { kind: 'operator', command: { verb: 'restore' } })).toContainEqual({ kind: 'refuse', why: expect.stringMatching(/natural/) });
    // Failover to s, then the old primary comes back as secondary and is recovered.
    step(s, { kind: 'link-down', reason: 'A died' });
    step(p, { kind: 'link-down', reason: 'A died' });
    step(s, { kind: 'operator', command: { verb: 'failover' } });
    step(p, { kind: 'superseded', by: 'B', epoch: s.epoch });
    expect(p.snapshot().roleName).toBe('Secondary-Rev');
    expect(step(s, { kind: 'operator', command: { verb: 'restore' } })).toContainEqual({ kind: 'refuse', why: expect.stringMatching(/Synced over a live link/) });
    p.step({ kind: 'link-up', peerArray: 'B' });
    toP(s.step({ kind: 'link-up', peerArray: 'A' }));
    toP(s.step({ kind: 'resync-done' }));
    expect([s.status, p.status]).toEqual(['Synced', 'Synced']);
    const as = step(s, { kind: 'operator', command: { verb: 'restore' } });
    toP(as);
    expect([p.role, s.role, p.snapshot().roleName, s.snapshot().roleName]).toEqual(['primary', 'secondary', 'Primary', 'Secondary']);
    expect([p.epoch, s.epoch]).toEqual([2, 2]);
    void toS;
  });
});

describe('a write applied while this array stopped serving', () => {
  const applyOf = (as: GroupAction[]) => as.find((a): a is Extract<GroupAction, { kind: 'apply' }> => a.kind === 'apply')!;
  const completions = (as: GroupAction[]) => as.filter((a): a is Extract<GroupAction, { kind: 'complete' }> => a.kind === 'complete').map((a) => a.outcome.kind);

  it('is not acknowledged when the store failed while it was being applied (the failover then takes the peer, which never had it)', () => {
    // metro/raid-failure lost an acknowledged write this way: applied on A before the RAID set
    // failed, answered GOOD after it (A "wrote alone"), then B took the group and A was resynchronised from B.
    const { p } = synced();
    step(p, { kind: 'witness', verdict: verdict({ recorded: 'Synced' }), sentAt: 1000, now: 1000 });
    const a = applyOf(step(p, { kind: 'host-write', origin: { kind: 'local', id: 7 }, op: write, now: 1001 }));
    step(p, { kind: 'store', volume: 0, failed: true, why: 'medium error' });
    expect(p.serving).toBe(false);
    expect(completions(step(p, { kind: 'applied', tag: a.tag, ok: true }))).toEqual(['unavailable']);
  });

  it('is not acknowledged when the link went down and this array may not write alone (no lease); it is when it may', () => {
    const { p } = synced();
    step(p, { kind: 'witness', verdict: verdict({ recorded: 'Synced' }), sentAt: 1000, now: 1000 });
    const a = applyOf(step(p, { kind: 'host-write', origin: { kind: 'local', id: 8 }, op: write, now: 1001 }));
    step(p, { kind: 'link-down', reason: 'cut' });
    expect(p.serving).toBe(false); // the witness still has it Synced
    expect(completions(step(p, { kind: 'applied', tag: a.tag, ok: true }))).toEqual(['link-lost']);
    // Writing alone on a lease: a write applied meanwhile is acknowledged (its region is marked for the resync).
    step(p, { kind: 'witness', verdict: verdict({ recorded: 'Stopped' }), sentAt: 1250, now: 1260 });
    const b = applyOf(step(p, { kind: 'host-write', origin: { kind: 'local', id: 9 }, op: write, now: 1300 }));
    expect(completions(step(p, { kind: 'applied', tag: b.tag, ok: true }))).toEqual(['ok']);
  });
});
