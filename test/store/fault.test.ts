/**
 * Store fault injection (src/store/fault.ts): a failed store refuses every I/O with the sense it
 * names and tells its listeners; the replication group on it stops serving, leaves the link and
 * goes silent to the witness (the HPE paper's RAID set or metadata failure), and comes back when
 * the store is repaired. The end-to-end form is `lab run metro/raid-failure` (test/lab/metro.test.ts).
 */
import { describe, expect, it } from 'vitest';
import { FaultStore } from '../../src/store/fault.ts';
import { MemoryStore } from '../../src/store/memory.ts';
import { StoreFailedError } from '../../src/store/store.ts';
import { GroupMachine } from '../../src/replication/group-machine.ts';
import type { GroupAction } from '../../src/replication/group-machine.ts';

describe('FaultStore', () => {
  it('passes I/O through while healthy, refuses every I/O with the sense named while failed, and says so to its listeners', async () => {
    const s = new FaultStore(new MemoryStore(16n, { blockSize: 512 }));
    const heard: (string | null)[] = [];
    s.listeners.add((f) => heard.push(f?.sense ?? null));
    await s.write(1n, Buffer.alloc(512, 7));
    expect((await s.read(1n, 1))[0]).toBe(7);
    s.set('medium-error');
    expect(() => s.read(1n, 1)).toThrow(StoreFailedError);
    expect(() => s.write(1n, Buffer.alloc(512))).toThrow(expect.objectContaining({ sense: 'medium-error', op: 'write' }));
    expect(() => s.unmap!(0n, 1)).toThrow(StoreFailedError);
    expect(s.failedIos).toBe(3);
    s.set('medium-error'); // no change, no news
    s.set(null);
    expect((await s.read(1n, 1))[0]).toBe(7); // the data underneath is kept
    expect(heard).toEqual(['medium-error', null]);
  });
});

describe('a replication group on a failed store', () => {
  const alua = (as: GroupAction[]) => as.filter((a) => a.kind === 'alua').map((a) => (a as Extract<GroupAction, { kind: 'alua' }>).state);

  it('stops serving (ALUA unavailable), drops the link, is silent to the witness, answers 04/0C; a repair ends it', () => {
    const p = new GroupMachine({ name: 'rcg', role: 'primary', policies: { active_active: true }, witness: true, array: 'A' });
    p.started = true;
    p.step({ kind: 'link-up', peerArray: 'B' });
    p.step({ kind: 'resync-done' });
    expect([p.status, p.serving, p.reportsToWitness]).toEqual(['Synced', true, true]);
    const out = p.step({ kind: 'store', volume: 0, failed: true, why: 'injected medium-error' });
    expect(out.some((a) => a.kind === 'drop-link')).toBe(true);
    expect(alua(out)).toContain('unavailable');
    expect([p.status, p.link, p.serving, p.reportsToWitness]).toEqual(['Stopped', 'down', false, false]);
    const w = p.step({ kind: 'host-write', origin: { kind: 'local', id: 1 }, op: { kind: 'write', volume: 0, lba: 0n, blocks: 1, fua: false, data: Buffer.alloc(512) }, now: 1 });
    expect(w).toContainEqual({ kind: 'complete', origin: { kind: 'local', id: 1 }, outcome: { kind: 'unavailable' } });
    // The link cannot come back while the store is failed.
    expect(p.step({ kind: 'link-up', peerArray: 'B' }).some((a) => a.kind === 'drop-link')).toBe(true);
    p.step({ kind: 'store', volume: 0, failed: false, why: 'repaired' });
    expect([p.storeFailure, p.reportsToWitness]).toEqual([null, true]);
  });
});
