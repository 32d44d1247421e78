/**
 * The pure Remote Copy group machine, driven by event sequences. Two machines are wired to each
 * other in memory (a queue per direction, delivered when the test says), each with a Map for a
 * store, so every step is deterministic and visible.
 */
import { describe, expect, it } from 'vitest';
import { GroupMachine, InvalidTransitionError, coalesce } from '../../src/replication/group-machine.ts';
import type { GroupAction, GroupEvent, Origin, Outcome, WriteOp } from '../../src/replication/group-machine.ts';
import type { LinkMessage } from '../../protocol/replication/link.ts';

class Side {
  readonly store = new Map<string, string>();
  readonly outbox: LinkMessage[] = [];
  readonly completed: { origin: Origin; outcome: Outcome }[] = [];
  readonly actions: GroupAction[] = [];
  constructor(readonly m: GroupMachine) {}
  step(e: GroupEvent): void {
    const queue = this.m.step(e);
    while (queue.length) {
      const a = queue.shift()!;
      this.actions.push(a);
      if (a.kind === 'send') this.outbox.push(a.message);
      else if (a.kind === 'apply') {
        if (a.op.kind === 'write') this.store.set(String(a.op.lba), a.op.data.toString());
        queue.push(...this.m.step({ kind: 'applied', tag: a.tag, ok: true }));
      } else if (a.kind === 'complete' && a.origin.kind === 'forwarded') {
        // What the shell does for a write the secondary forwarded: answer it on the link.
        this.outbox.push({ type: 'ack', forwarded: true, seq: a.origin.id, status: a.outcome.kind === 'ok' ? 'ok' : 'not-applied' });
      } else if (a.kind === 'complete') this.completed.push({ origin: a.origin, outcome: a.outcome });
    }
  }
  last<K extends GroupAction['kind']>(kind: K): Extract<GroupAction, { kind: K }> | undefined {
    return [...this.actions].reverse().find((a) => a.kind === kind) as Extract<GroupAction, { kind: K }> | undefined;
  }
}

/** Deliver everything queued from `from` to `to`; forwarded writes at the primary re-enter as host writes (the shell's job). */
function deliver(from: Side, to: Side): void {
  while (from.outbox.length) {
    const message = from.outbox.shift()!;
    if ((message.type === 'write') && message.forwarded && to.m.role === 'primary') {
      to.step({ kind: 'host-write', origin: { kind: 'forwarded', id: message.seq }, op: { kind: 'write', volume: 0, lba: message.lba, blocks: 1, fua: false, data: message.data } });
    } else to.step({ kind: 'peer', message });
  }
}

const w = (lba: number, s: string): WriteOp => ({ kind: 'write', volume: 0, lba: BigInt(lba), blocks: 1, fua: false, data: Buffer.from(s) });

function pair(o: { unsafe?: boolean; autoRecover?: boolean } = {}): { p: Side; s: Side } {
  const p = new Side(new GroupMachine({ name: 'rcg', role: 'primary', policies: { active_active: true, auto_recover: o.autoRecover ?? true }, unsafeAckBeforePeer: o.unsafe }));
  const s = new Side(new GroupMachine({ name: 'rcg', role: 'secondary', policies: { active_active: true } }));
  p.step({ kind: 'link-up', peerArray: 'B' });
  s.step({ kind: 'link-up', peerArray: 'A' });
  p.step({ kind: 'operator', command: { verb: 'start' } });
  deliver(p, s);
  p.step({ kind: 'resync-done' });
  deliver(p, s);
  return { p, s };
}

describe('group machine: synchronous writes', () => {
  it('start: Stopped → Syncing → Synced on the primary, mirrored on the secondary', () => {
    const { p, s } = pair();
    expect(p.m.status).toBe('Synced');
    expect(s.m.status).toBe('Synced');
    expect(p.actions.filter((a) => a.kind === 'transition').map((a) => a.kind === 'transition' && `${a.from}>${a.to}`)).toEqual(['Stopped>Syncing', 'Syncing>Synced']);
  });

  it('a primary write is applied, sent, and completed only when the secondary acks', () => {
    const { p, s } = pair();
    p.step({ kind: 'host-write', origin: { kind: 'local', id: 1 }, op: w(5, 'x') });
    expect(p.store.get('5')).toBe('x');
    expect(p.completed).toEqual([]);
    deliver(p, s);
    expect(s.store.get('5')).toBe('x');
    expect(p.completed).toEqual([]);
    deliver(s, p);
    expect(p.completed).toEqual([{ origin: { kind: 'local', id: 1 }, outcome: { kind: 'ok' } }]);
  });

  it('a cumulative ack (acks first..last) completes exactly those writes, in order; writes after the run still wait', () => {
    const { p, s } = pair();
    for (let i = 1; i <= 4; i++) p.step({ kind: 'host-write', origin: { kind: 'local', id: i }, op: w(i, `v${i}`) });
    deliver(p, s);
    const seqs = s.outbox.filter((m) => m.type === 'ack').map((m) => (m as { seq: bigint }).seq);
    expect(seqs).toHaveLength(4);
    s.outbox.length = 0;
    // What the shell sends for the first three acks of one tick (replication-group.ts ackLater).
    p.step({ kind: 'peer', message: { type: 'acks', first: seqs[0], last: seqs[2] } });
    expect(p.completed.map((c) => c.origin)).toEqual([1, 2, 3].map((id) => ({ kind: 'local', id })));
    expect(p.m.inFlight).toBe(1);
    p.step({ kind: 'peer', message: { type: 'ack', forwarded: false, seq: seqs[3], status: 'ok' } });
    expect(p.completed.map((c) => (c.origin as { id: number }).id)).toEqual([1, 2, 3, 4]);
    expect(p.m.inFlight).toBe(0);
  });

  it('a cumulative ack past the last write sent completes only the writes sent, at once', () => {
    const { p, s } = pair();
    for (let i = 1; i <= 2; i++) p.step({ kind: 'host-write', origin: { kind: 'local', id: i }, op: w(i, `v${i}`) });
    deliver(p, s);
    const seqs = s.outbox.filter((m) => m.type === 'ack').map((m) => (m as { seq: bigint }).seq);
    // A corrupt range (a run ending near 2^64) must not be walked seq by seq.
    const t0 = performance.now();
    p.step({ kind: 'peer', message: { type: 'acks', first: seqs[0], last: 2n ** 63n } });
    expect(performance.now() - t0).toBeLessThan(1000);
    expect(p.completed.map((c) => (c.origin as { id: number }).id)).toEqual([1, 2]);
    expect(p.m.inFlight).toBe(0);
  });

  it('a secondary write is forwarded, not applied locally first, ordered by the primary, and completed after both have it', () => {
    const { p, s } = pair();
    s.step({ kind: 'host-write', origin: { kind: 'local', id: 9 }, op: w(7, 'y') });
    expect(s.store.has('7')).toBe(false);
    deliver(s, p); // forward → primary applies and replicates
    expect(p.store.get('7')).toBe('y');
    expect(s.completed).toEqual([]);
    deliver(p, s); // replicate → secondary applies and acks
    deliver(s, p); // ack → primary completes the forward
    deliver(p, s); // forward ack
    expect(s.store.get('7')).toBe('y');
    expect(s.completed).toEqual([{ origin: { kind: 'local', id: 9 }, outcome: { kind: 'ok' } }]);
  });

  it('overlapping writes at both arrays end in one order on both', () => {
    const { p, s } = pair();
    s.step({ kind: 'host-write', origin: { kind: 'local', id: 1 }, op: w(3, 'from-secondary') });
    p.step({ kind: 'host-write', origin: { kind: 'local', id: 2 }, op: w(3, 'from-primary') });
    deliver(s, p); deliver(p, s); deliver(s, p); deliver(p, s);
    expect(s.store.get('3')).toBe(p.store.get('3'));
  });

  it('a replicated write out of sequence drops the link', () => {
    const { s } = pair();
    s.step({ kind: 'peer', message: { type: 'write', forwarded: false, seq: 5n, volume: 0, lba: 0n, fua: false, data: Buffer.from('z') } });
    expect(s.last('drop-link')?.reason).toMatch(/out of order/);
    expect(s.store.has('0')).toBe(false);
  });
});

describe('group machine: link loss', () => {
  it('a write in flight is not acknowledged, its region becomes dirty, the primary keeps serving and the secondary goes unavailable', () => {
    const { p, s } = pair();
    p.step({ kind: 'host-write', origin: { kind: 'local', id: 1 }, op: w(11, 'a') });
    s.step({ kind: 'host-write', origin: { kind: 'local', id: 2 }, op: w(12, 'b') });
    p.step({ kind: 'link-down', reason: 'cut' });
    s.step({ kind: 'link-down', reason: 'cut' });
    expect(p.completed).toEqual([{ origin: { kind: 'local', id: 1 }, outcome: { kind: 'link-lost' } }]);
    expect(s.completed).toEqual([{ origin: { kind: 'local', id: 2 }, outcome: { kind: 'link-lost' } }]);
    expect(p.m.status).toBe('Stopped');
    expect(s.m.status).toBe('Stopped');
    expect(p.last('alua')).toMatchObject({ state: 'active/optimized' });
    expect(s.last('alua')).toMatchObject({ state: 'unavailable' });
    expect(p.m.snapshot().dirtyExtents).toBe(1);
    // Afterwards the primary serves alone and remembers what it wrote; the secondary refuses.
    p.step({ kind: 'host-write', origin: { kind: 'local', id: 3 }, op: w(12, 'c') });
    expect(p.completed.at(-1)).toEqual({ origin: { kind: 'local', id: 3 }, outcome: { kind: 'ok' } });
    s.step({ kind: 'host-write', origin: { kind: 'local', id: 4 }, op: w(12, 'd') });
    expect(s.completed.at(-1)).toEqual({ origin: { kind: 'local', id: 4 }, outcome: { kind: 'unavailable' } });
    expect(p.m.snapshot()).toMatchObject({ dirtyExtents: 1, dirtyBlocks: '2' });
  });

  it('auto_recover: the link returns, the primary resyncs exactly the dirty extents, then both are Synced', () => {
    const { p, s } = pair();
    p.step({ kind: 'link-down', reason: 'cut' }); s.step({ kind: 'link-down', reason: 'cut' });
    p.step({ kind: 'host-write', origin: { kind: 'local', id: 1 }, op: w(20, 'a') });
    p.step({ kind: 'host-write', origin: { kind: 'local', id: 2 }, op: w(40, 'b') });
    s.step({ kind: 'link-up', peerArray: 'A' });
    p.step({ kind: 'link-up', peerArray: 'B' });
    expect(p.m.status).toBe('Syncing');
    expect(p.last('resync')?.extents).toEqual([{ volume: 0, lba: 20n, blocks: 1 }, { volume: 0, lba: 40n, blocks: 1 }]);
    deliver(p, s);
    expect(s.m.status).toBe('Syncing');
    expect(s.m.serving).toBe(false);
    p.step({ kind: 'resync-done' }); deliver(p, s);
    expect([p.m.status, s.m.status]).toEqual(['Synced', 'Synced']);
    expect(s.last('alua')).toMatchObject({ state: 'active/non-optimized' });
  });

  it('without auto_recover the group stays Stopped until startgroup', () => {
    const { p } = pair({ autoRecover: false });
    p.step({ kind: 'link-down', reason: 'cut' });
    p.step({ kind: 'link-up', peerArray: 'B' });
    expect(p.m.status).toBe('Stopped');
    p.step({ kind: 'operator', command: { verb: 'start' } });
    expect(p.m.status).toBe('Syncing');
  });

  it('operatorNeeded: Stopped by a link failure with auto_recover off needs startgroup; with it on, or startgroup given during the outage, it does not', () => {
    const { p } = pair({ autoRecover: false });
    expect(p.m.operatorNeeded()).toBeNull(); // Synced
    p.step({ kind: 'link-down', reason: 'cut' });
    expect(p.m.operatorNeeded()).toMatch(/^Stopped by a replication link failure and auto_recover is off/);
    p.step({ kind: 'link-up', peerArray: 'B' });
    expect(p.m.operatorNeeded()).toMatch(/^Stopped with the replication link up \(auto_recover is off\): startgroup/);
    p.step({ kind: 'operator', command: { verb: 'stop' } });
    expect(p.m.operatorNeeded()).toBe('Stopped and not started (stopgroup?)');
    // startgroup while the link is down is remembered, as its answer says: the group starts when the link returns.
    p.step({ kind: 'link-down', reason: 'cut' });
    expect(p.m.step({ kind: 'operator', command: { verb: 'start' } })).toContainEqual({ kind: 'refuse', why: 'replication link is down; the group starts when it returns' });
    expect(p.m.operatorNeeded()).toBeNull();
    p.step({ kind: 'link-up', peerArray: 'B' });
    expect(p.m.status).toBe('Syncing');
    expect(p.m.operatorNeeded()).toBeNull();
    // auto_recover on: a link failure needs nobody.
    const on = pair().p;
    on.step({ kind: 'link-down', reason: 'cut' });
    expect([on.m.status, on.m.operatorNeeded()]).toEqual(['Stopped', null]);
  });

  it('a heartbeat timeout declares the link down', () => {
    const { p } = pair();
    p.m.heard(1000);
    p.step({ kind: 'tick', now: 2000 });
    expect(p.last('send')?.message.type).toBe('heartbeat');
    p.step({ kind: 'tick', now: 5000 });
    expect(p.last('drop-link')?.reason).toMatch(/nothing heard/);
    expect(p.m.link).toBe('down');
  });
});

describe('group machine: ALUA from the pair', () => {
  const table: { proximity: 'primary' | 'secondary' | 'all' | null; primary: string; secondary: string }[] = [
    { proximity: null, primary: 'active/optimized', secondary: 'active/non-optimized' },
    { proximity: 'primary', primary: 'active/optimized', secondary: 'active/non-optimized' },
    { proximity: 'secondary', primary: 'active/non-optimized', secondary: 'active/optimized' },
    { proximity: 'all', primary: 'active/optimized', secondary: 'active/optimized' },
  ];
  for (const t of table) {
    it(`proximity ${t.proximity ?? '(not set)'}: primary ${t.primary}, secondary ${t.secondary}`, () => {
      const { p, s } = pair();
      const host = 'iqn.1994-05.com.example:h1';
      if (t.proximity) for (const x of [p, s]) x.step({ kind: 'operator', command: { verb: 'admithost', host, proximity: t.proximity } });
      const view = (x: Side) => x.m.alua().hosts[host] ?? x.m.alua().state;
      expect([view(p), view(s)]).toEqual([t.primary, t.secondary]);
    });
  }

  it('classic Peer Persistence (no active_active): the secondary is standby', () => {
    const m = new GroupMachine({ name: 'g', role: 'secondary', policies: { path_management: true } });
    m.step({ kind: 'link-up', peerArray: 'A' });
    m.step({ kind: 'peer', message: { type: 'group-state', state: 'Synced', reason: 'x' } });
    expect(m.alua().state).toBe('standby');
  });

  it('active_active fixes auto_failover and path_management on, and turns on auto_recover/auto_synchronize by default', () => {
    const m = new GroupMachine({ name: 'g', role: 'primary' });
    expect(m.policies).toMatchObject({ active_active: false, auto_recover: false });
    m.step({ kind: 'operator', command: { verb: 'setpolicy', policy: 'active_active', on: true } });
    expect(m.policies).toEqual({ active_active: true, path_management: true, auto_failover: true, auto_recover: true, auto_synchronize: true });
    expect(m.step({ kind: 'operator', command: { verb: 'setpolicy', policy: 'auto_failover', on: false } })).toEqual([{ kind: 'refuse', why: 'auto_failover cannot be turned off in an active_active group' }]);
    m.step({ kind: 'operator', command: { verb: 'setpolicy', policy: 'auto_recover', on: false } });
    expect(m.policies.auto_recover).toBe(false);
  });
});

describe('group machine: transitions and controls', () => {
  it('transition() refuses a change that is not in the table, or from a state the group is not in', () => {
    const { p } = pair();
    expect(() => p.m.transition('Synced', 'Syncing', 'x', [])).toThrow(InvalidTransitionError);
    expect(() => p.m.transition('Stopped', 'Syncing', 'x', [])).toThrow(/but the group is Synced/);
  });

  it('startgroup/stopgroup are refused on the secondary', () => {
    const { s } = pair();
    expect(s.m.step({ kind: 'operator', command: { verb: 'stop' } })[0]).toMatchObject({ kind: 'refuse' });
  });

  it('stopgroup on the primary stops both, and the secondary stops serving', () => {
    const { p, s } = pair();
    p.step({ kind: 'operator', command: { verb: 'stop' } }); deliver(p, s);
    expect([p.m.status, s.m.status, s.m.serving, p.m.serving]).toEqual(['Stopped', 'Stopped', false, true]);
  });

  it('negative control: with unsafeAckBeforePeer a write completes before the secondary has it', () => {
    const { p, s } = pair({ unsafe: true });
    p.step({ kind: 'host-write', origin: { kind: 'local', id: 1 }, op: w(5, 'x') });
    expect(p.completed).toHaveLength(1);
    expect(s.store.has('5')).toBe(false);
  });

  it('coalesce merges overlapping and adjacent extents per volume', () => {
    expect(coalesce([{ volume: 0, lba: 10n, blocks: 5 }, { volume: 1, lba: 0n, blocks: 1 }, { volume: 0, lba: 15n, blocks: 1 }, { volume: 0, lba: 0n, blocks: 12 }]))
      .toEqual([{ volume: 0, lba: 0n, blocks: 16 }, { volume: 1, lba: 0n, blocks: 1 }]);
  });
});

describe('the dirty map while the secondary is away', () => {
  it('a region rewritten all through an outage stays a few records, not one per write; distinct regions keep every block', () => {
    const a = new Side(new GroupMachine({ name: 'g', role: 'primary' }));
    const w = (lba: bigint, blocks: number): WriteOp => ({ kind: 'write', volume: 0, lba, blocks, fua: false, data: Buffer.alloc(blocks * 512) });
    for (let i = 0; i < 100_000; i++) a.step({ kind: 'host-write', origin: { kind: 'local', id: i }, op: w(4000n + BigInt(i % 8), 1) });
    expect(a.completed.every((c) => c.outcome.kind === 'ok')).toBe(true);
    expect(a.m.dirtyRecords).toBeLessThanOrEqual(1024);
    expect(a.m.dirtyExtents()).toEqual([{ volume: 0, lba: 4000n, blocks: 8 }]);
    // 5,000 separate regions: compaction keeps them all (exact to the block).
    for (let i = 0; i < 5000; i++) a.step({ kind: 'host-write', origin: { kind: 'local', id: 200_000 + i }, op: w(100_000n + BigInt(i * 16), 8) });
    const d = a.m.dirtyExtents();
    expect(d).toHaveLength(5001);
    expect(d.reduce((n, x) => n + x.blocks, 0)).toBe(8 + 5000 * 8);
  });
});


describe('persistent reservations through the machine (pr-replication.ts is the shell side)', () => {
  const state = (generation: number): WriteOp => ({ kind: 'pr-state', volume: 0, state: { generation, aptpl: false, registrations: [], reservation: null, notices: [], abort: null, legacyHolder: null, reset: false } });
  const req = { volume: 0, nexus: { initiatorName: 'iqn.x:n', isid: '400001370000', targetName: 'iqn.t', tpgt: 2, targetPortGroup: 2 }, cdb: Buffer.alloc(10), data: Buffer.alloc(24) };

  it('a PR state is ordered with the writes: the secondary applies it in sequence and the host is answered after its ack', () => {
    const { p, s } = pair();
    p.step({ kind: 'host-write', origin: { kind: 'local', id: 1 }, op: w(7, 'x') });
    p.step({ kind: 'host-write', origin: { kind: 'local', id: 2 }, op: state(5) });
    expect(p.m.prPending(0)).toBe(true);
    expect(p.completed).toEqual([]);
    const sent = p.outbox.map((m) => (m.type === 'write' || m.type === 'pr-state' ? `${m.type}:${m.seq}` : m.type));
    expect(sent).toEqual(['write:1', 'pr-state:2']);
    deliver(p, s);
    expect(s.actions.filter((a) => a.kind === 'apply').map((a) => (a as { op: WriteOp }).op.kind)).toEqual(['write', 'pr-state']);
    deliver(s, p);
    expect(p.completed.map((c) => c.outcome.kind)).toEqual(['ok', 'ok']);
    expect(p.m.prPending(0)).toBe(false);
  });

  it('while stopped a PR state marks nothing dirty (every resync ships the state); WRITE SAME and UNMAP become records', () => {
    const { p } = pair();
    p.step({ kind: 'link-down', reason: 'cut' });
    p.step({ kind: 'host-write', origin: { kind: 'local', id: 1 }, op: state(6) });
    p.step({ kind: 'host-write', origin: { kind: 'local', id: 2 }, op: { kind: 'write-same', volume: 0, lba: 100n, blocks: 50, unmap: false, block: Buffer.alloc(512, 1) } });
    p.step({ kind: 'host-write', origin: { kind: 'local', id: 3 }, op: { kind: 'unmap', volume: 0, ranges: [{ lba: 400n, blocks: 10 }] } });
    expect(p.completed.map((c) => c.outcome.kind)).toEqual(['ok', 'ok', 'ok']);
    expect(p.m.dirtyRecords).toBe(0);
    expect(p.m.dirtyOpCount).toBe(2);
    expect(p.m.dirtyExtents()).toEqual([{ volume: 0, lba: 100n, blocks: 50 }, { volume: 0, lba: 400n, blocks: 10 }]);
    p.step({ kind: 'link-up', peerArray: 'B' });
    expect(p.last('resync')).toMatchObject({ extents: [], records: [{ kind: 'write-same' }, { kind: 'unmap' }], full: false });
  });

  it('PR OUT at the secondary goes to the primary and completes with its answer; refused when not serving; link loss answers link-lost', () => {
    const { s } = pair();
    s.step({ kind: 'host-pr-out', origin: { kind: 'local', id: 1 }, req });
    const m = s.outbox.pop()!;
    expect(m).toMatchObject({ type: 'pr-out', id: 1n, volume: 0, nexus: req.nexus });
    s.step({ kind: 'peer', message: { type: 'pr-out-result', id: 1n, status: 0x18, reason: '', fieldPointer: null } });
    expect(s.completed.pop()).toEqual({ origin: { kind: 'local', id: 1 }, outcome: { kind: 'pr-out', result: { status: 0x18, reason: '', fieldPointer: null } } });
    s.step({ kind: 'host-pr-out', origin: { kind: 'local', id: 2 }, req });
    s.step({ kind: 'link-down', reason: 'cut' });
    expect(s.completed.pop()).toEqual({ origin: { kind: 'local', id: 2 }, outcome: { kind: 'link-lost' } });
    s.step({ kind: 'host-pr-out', origin: { kind: 'local', id: 3 }, req });
    expect(s.completed.pop()).toEqual({ origin: { kind: 'local', id: 3 }, outcome: { kind: 'unavailable' } });
  });

  it('a forwarded write refused with pr-changed completes as retry (ABORTED COMMAND at the shell)', () => {
    const { s } = pair();
    s.step({ kind: 'host-write', origin: { kind: 'local', id: 1 }, op: w(3, 'y') });
    const f = s.outbox.pop()!;
    expect(f).toMatchObject({ type: 'write', forwarded: true });
    s.step({ kind: 'peer', message: { type: 'ack', forwarded: true, seq: (f as { seq: bigint }).seq, status: 'pr-changed' } });
    expect(s.completed.pop()?.outcome.kind).toBe('retry');
  });
});

describe('dismissvv: a volume leaves the stopped group (runtime-groups.ts)', () => {
  it('drops its dirty regions and records, moves the later volumes down one, and clears a store failure of its own', () => {
    const m = new GroupMachine({ name: 'g', role: 'primary' });
    m.admitted(0, 100);
    m.admitted(1, 200);
    m.admitted(2, 300);
    m.dirtyOps.push({ kind: 'unmap', volume: 1, ranges: [{ lba: 5n, blocks: 2 }] }, { kind: 'unmap', volume: 2, ranges: [{ lba: 7n, blocks: 3 }] });
    m.step({ kind: 'store', volume: 2, failed: true, why: 'injected medium-error' });
    m.dismissed(1);
    expect(m.dirtyExtents()).toEqual([{ volume: 0, lba: 0n, blocks: 100 }, { volume: 1, lba: 0n, blocks: 300 }]);
    expect(m.dirtyOps).toEqual([{ kind: 'unmap', volume: 1, ranges: [{ lba: 7n, blocks: 3 }] }]);
    expect(m.storeFailure).toBe('volume 1: injected medium-error');
    m.dismissed(1);
    expect(m.storeFailure).toBeNull();
    expect(m.dirtyExtents()).toEqual([{ volume: 0, lba: 0n, blocks: 100 }]);
  });
});
