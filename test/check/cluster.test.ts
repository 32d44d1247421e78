/**
 * The checker's processes are started as `lab up` starts them: each array runs this CLI with
 * siteArgs(its config) and the witness with witnessArgs(its address and state file), the builders that
 * test/lab/up.test.ts holds `lab up` to and test/lab/compose.test.ts holds docker-compose.yml to.
 * A SIGKILLed array and witness start again on the same log files (the witness's readiness is its
 * own line, not its predecessor's), and the checker's extra environment reaches the arrays.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startCluster } from '../../src/check/cluster.ts';
import type { Cluster } from '../../src/check/cluster.ts';
import { History } from '../../src/check/history.ts';
import { cliEntry } from '../../src/lab/children.ts';
import { siteArgs, witnessArgs } from '../../src/lab/topology.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'check-cluster-test-'));
let cluster: Cluster | null = null;
afterAll(async () => {
  await cluster?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const argv = (pid: number) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
const environ = (pid: number) => readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');

describe('check metro: the pair and the witness as processes', () => {
  it('runs lab up\'s command lines, passes its environment, and restarts killed processes', async () => {
    const history = new History();
    cluster = await startCluster(dir, history, { volumeBytes: 1 << 20, env: { ARRAYSIM_CLUSTER_TEST: 'yes' } });
    const c = cluster;
    const bin = cliEntry();
    expect(c.witness).not.toBeNull();
    expect(argv(c.witness!.proc!.pid)).toEqual([process.execPath, bin, ...witnessArgs(c.plan.witness!, path.join(c.dir, 'witness-state.json'))]);
    for (const s of c.sites) {
      expect(argv(s.proc!.pid)).toEqual([process.execPath, bin, ...siteArgs(s.configPath)]);
      expect(environ(s.proc!.pid)).toContain('ARRAYSIM_CLUSTER_TEST=yes');
    }
    // Negative control: the arrays' and the witness's command lines are told apart.
    expect(argv(c.a.proc!.pid)).not.toEqual([process.execPath, bin, ...siteArgs(c.b.configPath)]);
    expect(argv(c.witness!.proc!.pid)).not.toEqual([process.execPath, bin, ...siteArgs(c.a.configPath)]);

    expect(await c.synced(60_000)).toBe(true);
    const oldA = c.a.proc!.pid;
    const downs = () => history.entries.filter((e) => e.type === 'array' && e.site === 'A' && e.event.type === 'down').length;
    expect(downs()).toBe(0);
    await c.a.kill();
    expect(c.a.running).toBe(false);
    // The split-brain judge learns of the kill: one `down` for A (its event stream broke, it did not end).
    await new Promise((r) => setTimeout(r, 200));
    expect(downs()).toBe(1);
    await c.a.start();
    expect(c.a.proc!.pid).not.toBe(oldA);
    expect(argv(c.a.proc!.pid)).toEqual([process.execPath, bin, ...siteArgs(c.a.configPath)]);
    expect(readFileSync(c.a.logPath, 'utf8')).toMatch(/--- start 1 at [\s\S]*--- start 2 at /);

    await c.witness!.kill();
    expect(c.witness!.running).toBe(false);
    expect(await c.witness!.start()).toBe(true);
    expect(readFileSync(c.witness!.logPath, 'utf8').match(/witness listening on /g)?.length).toBe(2);
    expect(await c.synced(60_000)).toBe(true);

    const pids = [c.a.proc!.pid, c.b.proc!.pid, c.witness!.proc!.pid];
    await c.stop();
    cluster = null;
    for (const pid of pids) expect(() => process.kill(pid, 0)).toThrow();
  }, 180_000);
});
