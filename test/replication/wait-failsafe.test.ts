/**
 * `rcopy startgroup --wait` as a user runs it (the built CLI, bin/arraysim.js), on a group that
 * cannot become Synced without the operator: it ends promptly with the array's reason and exit 1
 * instead of waiting out --timeout. The pair runs in this process with an in-process quorum
 * witness (WitnessServer, as witness-operate.test.ts). Site A's link is cut, so startgroup is
 * accepted and remembered (the group starts when the link returns) and the wait waits: the
 * negative control that it does not end early while Synced can still come on its own. Then A loses
 * the witness too, the group goes Failsafe, and the wait must end within seconds.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdminApi } from '../../src/admin/api.ts';
import { adminCall } from '../../src/admin/client.ts';
import { WitnessServer } from '../../src/replication/witness-server.ts';
import { GROUP, startPair, until } from './pair.ts';
import type { Pair } from './pair.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
let w: WitnessServer, pair: Pair, api: AdminApi, admin: string;

beforeAll(async () => {
  const log = pino({ level: 'silent' });
  w = new WitnessServer({ host: '127.0.3.1', port: 0, name: 'w-wait', log });
  pair = await startPair({ witness: await w.start() });
  api = new AdminApi(pair.a, log);
  admin = `127.0.0.1:${await api.listen('127.0.0.1', 0)}`;
  await until(() => !!pair.ga.machine.snapshot().witness?.reachable, 'A in touch with the witness', 15_000);
}, 60_000);
afterAll(async () => { await api?.close(); await pair?.close(); await w?.stop(); });

describe('rcopy startgroup --wait on a group that needs the operator', () => {
  it('waits while the group can still get to Synced by itself; ends at once, exit 1, when it goes Failsafe', async () => {
    await adminCall(admin, 'POST', `/v1/rcopy/groups/${GROUP}/stop`);
    await adminCall(admin, 'POST', '/v1/rcopy/link', { body: { action: 'cut' } });
    await until(() => pair.ga.machine.link === 'down', 'A link down', 10_000);

    const p = spawn(process.execPath, [path.join(ROOT, 'bin/arraysim.js'), 'rcopy', 'startgroup', GROUP, '--wait', '--timeout', '120', '--admin', admin], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    let stdout = '';
    p.stdout.on('data', (d) => { stdout += d; });
    p.stderr.on('data', (d) => { stderr += d; });
    const exited = new Promise<number | null>((r) => p.on('exit', (code) => r(code)));
    try {
      // startgroup is accepted (remembered until the link returns) and the wait is under way.
      await until(() => pair.ga.machine.started, 'startgroup reached the array', 20_000);
      await new Promise((r) => setTimeout(r, 2000));
      expect(p.exitCode).toBeNull(); // still waiting: Synced can come by itself when the link returns
      expect(pair.ga.machine.snapshot()).toMatchObject({ status: 'Stopped', started: true, operatorNeeded: null });

      const t0 = Date.now();
      await adminCall(admin, 'POST', '/v1/rcopy/witness', { body: { action: 'cut' } });
      const code = await exited;
      const ms = Date.now() - t0;
      expect(pair.ga.machine.status).toBe('Failsafe');
      expect(code).toBe(1);
      expect(stderr).toMatch(/^arraysim: group rcg1 is Failsafe: the replication link is down and the quorum witness unreachable/m);
      expect(stdout).toBe('');
      // The lease (1 s) runs out, then one poll: seconds, far from the 120 s timeout.
      expect(ms).toBeLessThan(15_000);
    } finally {
      if (p.exitCode === null) p.kill('SIGKILL');
      await adminCall(admin, 'POST', '/v1/rcopy/witness', { body: { action: 'restore' } });
      await adminCall(admin, 'POST', '/v1/rcopy/link', { body: { action: 'restore' } });
    }
    // Healed: the remembered startgroup resyncs the pair.
    await until(() => pair.ga.machine.status === 'Synced', 'Synced again', 30_000);
  }, 120_000);
});
