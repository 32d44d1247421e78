/**
 * `rcopy startgroup --wait` against a real pair: after writes made while the group was stopped,
 * the wait follows the resync from the admin API (blocks acknowledged by the peer against the
 * dirty blocks) and returns the group once Synced; on a terminal the bar is drawn, piped nothing
 * is; waiting on a group nobody started ends with the reason, not a hang.
 */
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdminApi } from '../../src/admin/api.ts';
import { WaitError } from '../../src/admin/wait.ts';
import { adminCall } from '../../src/admin/client.ts';
import { waitSynced } from '../../src/replication/cli.ts';
import { block, GROUP, senseOf, settled, startPair } from './pair.ts';
import type { Pair } from './pair.ts';
import { FakeTty } from '../helpers/fake-tty.ts';


let pair: Pair, api: AdminApi, admin: string;
beforeAll(async () => {
  pair = await startPair();
  api = new AdminApi(pair.a, pino({ level: 'silent' }));
  admin = `127.0.0.1:${await api.listen('127.0.0.1', 0)}`;
}, 60_000);
afterAll(async () => { await api?.close(); await pair?.close(); });

/** Stop the group, write `mib` MiB at A (each block dirty for the resync), start it again. */
async function dirtyThenStart(mib: number): Promise<void> {
  await adminCall(admin, 'POST', `/v1/rcopy/groups/${GROUP}/stop`);
  const d = await pair.open('A');
  for (let i = 0; i < mib; i++) expect(senseOf(await settled(() => d.write(BigInt(i * 2048), block(i + 1, 2048))))).toBe('good');
  expect(pair.ga.machine.snapshot().dirtyBlocks).toBe(String(mib * 2048));
  await adminCall(admin, 'POST', `/v1/rcopy/groups/${GROUP}/start`);
}

describe('rcopy startgroup --wait', () => {
  it('on a terminal: the resync as a bar of blocks against the dirty blocks, then the group, Synced', async () => {
    // Latency on A's messages makes the 16 chunks take a while, so the wait sees the resync under way.
    pair.a.rcopy!.setLink({ latencyMs: 30 });
    try {
      const before = pair.ga.stats.resyncBlocks;
      await dirtyThenStart(16);
      const tty = new FakeTty(true, 120);
      const g = await waitSynced(admin, GROUP, { stream: tty, delayMs: 0, intervalMs: 0, pollMs: 20, timeoutMs: 60_000 });
      expect(g).toMatchObject({ name: GROUP, status: 'Synced', dirtyBlocks: '0' });
      expect(g.stats.resyncBlocks - before).toBe(16 * 2048);
      const lines = tty.lines;
      expect(lines[0]).toMatch(/^resync rcg1 \[[#-]+\] +\d+% \d+ blocks\/32768 blocks /);
      expect(lines.some((l) => / ETA /.test(l) && !/ 0 blocks\//.test(l))).toBe(true); // seen part way
      expect(tty.out.endsWith('\r\x1b[2K')).toBe(true);
    } finally {
      pair.a.rcopy!.setLink({ latencyMs: 0 });
    }
  }, 120_000);

  it('piped: nothing drawn, only the group comes back', async () => {
    await dirtyThenStart(2);
    const piped = new FakeTty(false);
    expect(await waitSynced(admin, GROUP, { stream: piped, pollMs: 20, timeoutMs: 60_000 })).toMatchObject({ status: 'Synced' });
    expect(piped.out).toBe('');
  }, 120_000);

  it('a stopped group, or an unknown one, ends the wait with the reason', async () => {
    await adminCall(admin, 'POST', `/v1/rcopy/groups/${GROUP}/stop`);
    await expect(waitSynced(admin, GROUP, { stream: new FakeTty(false), timeoutMs: 10_000 })).rejects.toThrow(new WaitError('group rcg1 is Stopped and not started (stopgroup?)'));
    await expect(waitSynced(admin, 'nope', { stream: new FakeTty(false), timeoutMs: 10_000 })).rejects.toThrow(/no Remote Copy group nope/);
    await adminCall(admin, 'POST', `/v1/rcopy/groups/${GROUP}/start`);
    await pair.synced();
  }, 60_000);
});
