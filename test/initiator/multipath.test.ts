/**
 * The multipath device (src/initiator/multipath.ts): its policy table on sense data, then over a
 * replicated pair (test/replication/pair.ts) as a host whose local array is the secondary: I/O
 * goes to the optimized path, a link cut makes that path unavailable (04/0C) and the same
 * operations carry on through the other array, and after the resync the path checker brings the
 * optimized path back without any I/O on it.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { buildFixedSense, decodeSense } from '../../protocol/scsi/sense.ts';
import type { SenseReason } from '../../protocol/scsi/sense.ts';
import { MultipathDevice, verdict } from '../../src/initiator/multipath.ts';
import type { PathState } from '../../src/initiator/multipath.ts';
import type { ScsiResult } from '../../src/initiator/result.ts';
import { startPair, until } from '../replication/pair.ts';
import type { Pair } from '../replication/pair.ts';

const cc = (reason: SenseReason): ScsiResult<void> => {
  const raw = buildFixedSense(reason);
  return { kind: 'check-condition', sense: decodeSense(raw), rawSense: raw };
};

describe('multipath policy table', () => {
  it.each([
    ['AsymmetricAccessStateChanged', 'refresh-retry', undefined],
    ['PowerOnResetOccurred', 'refresh-retry', undefined],
    ['NotReadyAluaTransitioning', 'wait-retry', 'transitioning'],
    ['NotReadyAluaStandby', 'failover', 'standby'],
    ['NotReadyAluaUnavailable', 'failover', 'unavailable'],
    ['NotReadyAluaOffline', 'failover', 'offline'],
    ['CommandAborted', 'retry', undefined],
    ['MiscompareDuringVerify', 'answer', undefined],
    ['LbaOutOfRange', 'answer', undefined],
  ] as [SenseReason, string, PathState | undefined][])('%s → %s', (reason, v, state) => {
    expect(verdict(cc(reason))).toEqual({ verdict: v, ...(state ? { state } : {}) });
  });

  it('GOOD and RESERVATION CONFLICT are answers; BUSY is retried', () => {
    expect(verdict({ kind: 'good', value: undefined, residual: { kind: 'none', count: 0 } }).verdict).toBe('answer');
    expect(verdict({ kind: 'status', status: 0x18, name: 'RESERVATION CONFLICT' }).verdict).toBe('answer');
    expect(verdict({ kind: 'status', status: 0x08, name: 'BUSY' }).verdict).toBe('retry');
  });
});

describe('multipath over a replicated pair', () => {
  let pair: Pair | null = null;
  let dev: MultipathDevice | null = null;
  afterEach(async () => { await dev?.close(); await pair?.close(); dev = null; pair = null; });

  it('fails over to the primary on a link cut and returns to the local array after the resync', async () => {
    const host = 'iqn.2026-12.dev.arraysim:mp-host-b';
    pair = await startPair({ hosts: { [host]: 'secondary' } });
    const changes: string[] = [];
    dev = await MultipathDevice.open([{ name: 'A', url: pair.url('A') }, { name: 'B', url: pair.url('B') }], {
      initiatorName: host, deadlineMs: 10000, pathCheckMs: 100,
      onPath: (p, from) => changes.push(`${p.name}: ${from} → ${p.state}`),
    });
    const state = (n: string) => dev!.info().find((p) => p.name === n)!.state;
    expect(state('B')).toBe('active/optimized');
    expect(state('A')).toBe('active/non-optimized');
    expect(dev.info().map((p) => p.tpg)).toEqual([1, 2]);

    const block = (c: number) => Buffer.alloc(512, c);
    expect((await dev.write(10n, block(1))).kind).toBe('good');

    pair.a.rcopy!.setLink({ action: 'cut' });
    await until(() => pair!.gb.machine.status === 'Stopped', 'B Stopped');
    const w = await dev.write(10n, block(2));
    expect(w.kind).toBe('good');
    expect(state('B')).toBe('unavailable');
    const r = await dev.read(10n, 1);
    expect(r.kind === 'good' && r.value.equals(block(2))).toBe(true);
    expect(changes).toContain('B: active/optimized → unavailable');
    expect(pair.ga.machine.dirtyExtents()).toEqual([{ volume: 0, lba: 10n, blocks: 1 }]); // served by A alone

    pair.a.rcopy!.setLink({ action: 'restore' });
    await pair.synced();
    await until(() => state('B') === 'active/optimized', 'path B optimized again', 10000);
    const back = await dev.read(10n, 1);
    expect(back.kind === 'good' && back.value.equals(block(2))).toBe(true);
  });

  it('failPath drops the optimized path (no login again) and I/O goes on the non-optimized one; reinstatePath brings it back', async () => {
    const host = 'iqn.2026-12.dev.arraysim:mp-host-a';
    pair = await startPair({ hosts: { [host]: 'primary' } });
    dev = await MultipathDevice.open([{ name: 'A', url: pair.url('A') }, { name: 'B', url: pair.url('B') }], { initiatorName: host, deadlineMs: 5000, pathCheckMs: 100 });
    const state = (n: string) => dev!.info().find((p) => p.name === n)!.state;
    expect([state('A'), state('B')]).toEqual(['active/optimized', 'active/non-optimized']);
    const sessionsOnA = () => pair!.a.server.sessions.size;
    expect(sessionsOnA()).toBe(1);
    await dev.failPath('A');
    expect(state('A')).toBe('down');
    const w = await dev.write(20n, Buffer.alloc(512, 4));
    expect(w.kind).toBe('good');
    await new Promise((r) => setTimeout(r, 400)); // a lost path would have been logged in again by now
    expect(state('A')).toBe('down');
    expect(sessionsOnA()).toBe(0);
    await expect(dev.failPath('C')).rejects.toThrow(/no path C/);
    await dev.reinstatePath('A');
    expect(state('A')).toBe('active/optimized');
    const r = await dev.read(20n, 1);
    expect(r.kind === 'good' && r.value.equals(Buffer.alloc(512, 4))).toBe(true);
  });

  it('gives up with no-path when no array serves before the deadline', async () => {
    const host = 'iqn.2026-12.dev.arraysim:mp-host-x';
    pair = await startPair({ hosts: { [host]: 'secondary' } });
    dev = await MultipathDevice.open([{ name: 'B', url: pair.url('B') }], { initiatorName: host, deadlineMs: 600, pathCheckMs: 0 });
    pair.a.rcopy!.setLink({ action: 'cut' });
    await until(() => pair!.gb.machine.status === 'Stopped', 'B Stopped');
    const w = await dev.write(0n, Buffer.alloc(512, 9));
    expect(w.kind).toBe('no-path');
    expect(w.kind === 'no-path' && w.why).toMatch(/gave up after 600 ms/);
  });
});
