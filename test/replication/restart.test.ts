/**
 * A process restart loses the in-memory dirty map, and on memory stores the volumes too. The
 * machine decides at the first link-up which array's volumes are the source (GroupMachine
 * reconcileRestart). Each case below would lose or diverge data if decided the other way;
 * the last asserts the old behaviour fails the same check (the negative control).
 * End to end (SIGKILL of a `serve` process and its restart) in test/replication/restart-process.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { GroupMachine } from '../../src/replication/group-machine.ts';
import type { GroupAction, PeerRestart } from '../../src/replication/group-machine.ts';

function machine(role: 'primary' | 'secondary', o: { restarted: boolean; volatile: boolean }): GroupMachine {
  const m = new GroupMachine({ name: 'rcg', role, policies: { active_active: true, auto_recover: true }, restarted: o.restarted });
  m.volatile = o.volatile;
  m.started = role === 'primary';
  m.startOnLink = m.started;
  return m;
}
const peer = (restarted: boolean, volatile: boolean, empty: boolean): PeerRestart => ({ restarted, volatile, empty });
const resync = (a: GroupAction[]) => a.find((x) => x.kind === 'resync') as Extract<GroupAction, { kind: 'resync' }> | undefined;

describe('restart reconciliation at link-up (the primary decides)', () => {
  it('a primary restarted on memory stores does not serve alone, and hands the primary role to a peer that holds data', () => {
    const a = machine('primary', { restarted: true, volatile: true });
    expect(a.serving).toBe(false);
    const out = a.step({ kind: 'link-up', peerArray: 'B', peer: peer(false, true, false) });
    expect(a.role).toBe('secondary');
    const swap = out.find((x) => x.kind === 'send' && x.message.type === 'role-swap');
    expect(swap).toBeDefined();
    expect(resync(out)).toBeUndefined();
    // The peer takes the role out of sync, so it copies the group whole.
    const b = machine('secondary', { restarted: false, volatile: true });
    b.step({ kind: 'link-up', peerArray: 'A' });
    const bOut = b.step({ kind: 'peer', message: (swap as Extract<GroupAction, { kind: 'send' }>).message });
    expect(b.role).toBe('primary');
    expect(resync(bOut)?.full).toBe(true);
  });

  it('both restarted empty on memory stores: nothing to copy', () => {
    const a = machine('primary', { restarted: true, volatile: true });
    const out = a.step({ kind: 'link-up', peerArray: 'B', peer: peer(true, true, true) });
    expect(a.role).toBe('primary');
    expect(resync(out)).toEqual({ kind: 'resync', extents: [], records: [], full: false });
  });

  it('a secondary restarted on memory stores but partly resynced is not empty: the primary keeps the role', () => {
    const a = machine('primary', { restarted: true, volatile: true });
    a.step({ kind: 'link-up', peerArray: 'B', peer: peer(true, true, false) });
    expect(a.role).toBe('secondary');
  });

  it('a peer restarted empty gets the whole group from a primary that kept running', () => {
    const a = machine('primary', { restarted: false, volatile: true });
    const out = a.step({ kind: 'link-up', peerArray: 'B', peer: peer(true, true, true) });
    expect(resync(out)?.full).toBe(true);
  });

  it('a primary restarted on persistent stores copies the group whole (its dirty map died with it)', () => {
    const a = machine('primary', { restarted: true, volatile: false });
    expect(a.serving).toBe(true); // its volumes kept every acknowledged write
    const out = a.step({ kind: 'link-up', peerArray: 'B', peer: peer(false, false, false) });
    expect(resync(out)?.full).toBe(true);
  });

  it('a peer restarted on persistent stores lacks only what the dirty map covers', () => {
    const a = machine('primary', { restarted: false, volatile: false });
    const out = a.step({ kind: 'link-up', peerArray: 'B', peer: peer(true, false, false) });
    expect(resync(out)?.full).toBe(false);
  });

  it('negative control: without the restart flags the same link-up resyncs nothing and keeps the empty primary', () => {
    const a = machine('primary', { restarted: false, volatile: true });
    const out = a.step({ kind: 'link-up', peerArray: 'B' });
    expect(a.role).toBe('primary');
    expect(resync(out)).toEqual({ kind: 'resync', extents: [], records: [], full: false });
  });
});
