/**
 * The metro failure lab end to end: two `serve` processes (lab up's metro topology, with the
 * witness), two hosts writing through multipath, a fault and its heal; each row judged against
 * the HPE paper's failure list, and the two arrays' volumes compared byte for byte once healed.
 * In the test command: link-failure (with a start-up disturbed on purpose: the check that the
 * pair is steady before the fault must see it and start again), secondary-failure, raid-failure
 * (store fault injection and failover), and both negative controls (a wrong expectation; a block
 * changed behind an array's back), each of which must not match; Active Sync (each host on its
 * local array): link-failure through `lab run --json`, and its negative control (the Active Peer
 * Persistence promise, which non-uniform hosts cannot keep). Every scenario of both sets, by hand
 * (about 10 minutes on a quiet machine):
 *   ARRAYSIM_METRO_ALL=1 npx vitest run test/lab/metro.test.ts
 * The judge and the comparison alone are pure and checked first, quickly.
 */
import { describe, expect, it } from 'vitest';
import { runLab } from '../../src/lab/cli.ts';
import { formatMetroTable } from '../../src/lab/metro/judge.ts';
import type { MetroRow } from '../../src/lab/metro/judge.ts';
import { runMetroScenario } from '../../src/lab/metro/run.ts';
import { ACTIVE_SYNC_NEGATIVE_CONTROL, ACTIVE_SYNC_SCENARIOS, findMetroScenario, METRO_SCENARIOS, NEGATIVE_CONTROL, NEGATIVE_CONTROL_DIVERGENCE } from '../../src/lab/metro/scenarios.ts';
import { judge } from '../../src/lab/metro/judge.ts';
import type { HostObserved } from '../../src/lab/metro/judge.ts';
import { compareVolumes } from '../../src/lab/metro/volumes.ts';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

const piped = { isTTY: false, write: () => true } as unknown as NodeJS.WriteStream;

describe('metro judge and volume comparison (pure, quick)', () => {
  const same = { blocks: 8, blockSize: 512, differing: 0, first: [], problem: null };
  const seen = (s: string, phase: 'midway' | 'during', got: HostObserved['paths']['during']): Record<'host-a' | 'host-b', HostObserved> => {
    const e = findMetroScenario(s)!.expect;
    const o = (h: 'host-a' | 'host-b'): HostObserved => {
      const first = (p: { A: readonly string[]; B: readonly string[] }) => ({ A: p.A[0], B: p.B[0] }) as HostObserved['paths']['during'];
      const paths: HostObserved['paths'] = { before: first(e[h].before), during: first(e[h].during), after: first(e[h].after), ...(e[h].midway ? { midway: first(e[h].midway!) } : {}) };
      if (h === 'host-a') paths[phase] = got;
      return { paths, keptIo: e[h].keepsIo, failedWrites: 0, rtoMs: 0, acked: 10, lostWrites: 0 };
    };
    return { 'host-a': o('host-a'), 'host-b': o('host-b') };
  };

  it('judges the midway paths of a two-fault scenario and the arrays\' comparison; each can fail', () => {
    const s = findMetroScenario('metro/witness-lost-after-link-failure')!;
    expect(judge(s, seen(s.name, 'midway', { A: 'active/optimized', B: 'unavailable' }), same)).toEqual([]);
    expect(judge(s, seen(s.name, 'midway', { A: 'unavailable', B: 'unavailable' }), same)).toEqual(['host-a midway: path to A is unavailable, expected active/optimized']);
    expect(judge(s, seen(s.name, 'midway', { A: 'active/optimized', B: 'unavailable' }), { ...same, differing: 1, first: [7] }))
      .toEqual(['arrays differ in 1 of 8 blocks once healed (first at LBA 7)']);
  });

  it('compareVolumes finds exactly the block that differs, and different sizes', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'arraysim-cmp-'));
    try {
      const a = path.join(dir, 'a.img');
      const b = path.join(dir, 'b.img');
      const data = Buffer.alloc(3 << 20, 0x11);
      writeFileSync(a, data);
      writeFileSync(b, data);
      expect(await compareVolumes(a, b)).toEqual({ blocks: 6144, blockSize: 512, differing: 0, first: [], problem: null });
      data[5000 * 512 + 17] ^= 1; // one bit of LBA 5000, past the first 1 MiB chunk
      writeFileSync(b, data);
      expect(await compareVolumes(a, b)).toMatchObject({ differing: 1, first: [5000], problem: null });
      writeFileSync(b, data.subarray(0, 1 << 20));
      expect((await compareVolumes(a, b)).problem).toMatch(/sizes differ/);
    } finally { rmSync(dir, { recursive: true, force: true }); }
  });

  it('the Active Sync set covers every failure of the Active Peer Persistence set, each host cabled to its local array only', () => {
    const tail = (n: string) => n.slice(n.indexOf('/') + 1);
    expect(ACTIVE_SYNC_SCENARIOS.map((s) => tail(s.name)).sort()).toEqual(METRO_SCENARIOS.map((s) => tail(s.name)).sort());
    for (const s of ACTIVE_SYNC_SCENARIOS) {
      expect(s.name).toMatch(/^metro-sync\//);
      expect(s.topology).toBe('sync');
      // Before any fault: host-a has one path, to A, host-b one, to B; each is optimized (proximity all).
      expect(s.expect['host-a'].before).toEqual({ A: ['active/optimized'], B: ['none'] });
      expect(s.expect['host-b'].before).toEqual({ A: ['none'], B: ['active/optimized'] });
      // Quoted from the paper's Active Sync list, or saying the paper is silent.
      expect(s.source.includes('Active Sync failure scenarios and recovery') || s.source.includes('Best practices for Active Sync') || s.paper.includes('the paper is silent')).toBe(true);
      // A host whose only path is not usable during the fault is one the paper says loses I/O.
      for (const h of ['host-a', 'host-b'] as const) {
        const local = h === 'host-a' ? 'A' : 'B';
        const usable = s.expect[h].during[local].every((x) => x === 'active/optimized');
        expect(s.expect[h].keepsIo, `${s.name} ${h}`).toBe(usable);
      }
    }
    // Host disconnect in Active Sync: the host loses its only array, so it loses I/O.
    expect(findMetroScenario('metro-sync/host-disconnect')!.expect['host-a'].keepsIo).toBe(false);
    expect(findMetroScenario('metro/host-disconnect')!.expect['host-a'].keepsIo).toBe(true);
  });

  it('every scenario of the list has a paper sentence, a source and an expectation for both hosts', () => {
    expect(METRO_SCENARIOS.map((s) => s.name)).toEqual(expect.arrayContaining(['metro/secondary-reboot', 'metro/witness-lost-before-link-failure', 'metro/witness-lost-after-link-failure', 'metro/raid-failure', 'metro/host-disconnect']));
    for (const s of [...METRO_SCENARIOS, ...ACTIVE_SYNC_SCENARIOS]) {
      expect(s.paper.length).toBeGreaterThan(20);
      expect(Object.keys(s.expect).sort()).toEqual(['host-a', 'host-b']);
    }
  });
});

describe('metro failure lab', () => {
  it('metro/link-failure: the secondary\'s paths go unavailable, both hosts keep I/O, nothing lost; a start-up disturbed before the fault is seen and started again', async () => {
    // The start-up check's negative control: on the first start-up the link is cut after the
    // hosts write and before the check (as an array stalled past the heartbeat timeout would
    // have it). The check must see the pair not steady and start it again; the second is left alone.
    const disturbed: number[] = [];
    const row = await runMetroScenario(findMetroScenario('metro/link-failure')!, {
      disturbStartup: async (attempt, c) => {
        if (attempt > 1) return;
        disturbed.push(attempt);
        await Promise.all(c.sites.map((x) => x.admin('POST', '/v1/rcopy/link', { action: 'cut' })));
        for (let i = 0; i < 50 && (await c.a.groupState())?.status === 'Synced'; i++) await new Promise((r) => setTimeout(r, 100));
      },
    });
    if (!row.match) console.error(row.mismatch, row.events.join('\n'));
    expect(disturbed).toEqual([1]);
    expect(row.startups).toHaveLength(1);
    expect(row.startups[0]).toMatch(/^start-up 1: before the fault: /);
    expect(row.events.some((e) => /pair Synced \(start-up 2\)/.test(e))).toBe(true);
    expect(row.mismatch).toEqual([]);
    expect(row.observed['host-a'].paths.during).toEqual({ A: 'active/optimized', B: 'unavailable' });
    expect(row.observed['host-b'].paths.during).toEqual({ A: 'active/non-optimized', B: 'unavailable' });
    expect(row.observed['host-b'].paths.after).toEqual({ A: 'active/non-optimized', B: 'active/optimized' });
    for (const h of ['host-a', 'host-b'] as const) {
      expect(row.observed[h].keptIo).toBe(true);
      expect(row.observed[h].acked).toBeGreaterThan(5);
      expect(row.observed[h].lostWrites).toBe(0);
    }
    expect(row.paper).toContain('unavailable');
  }, 120_000);

  it('metro/secondary-failure: host-b moves to its non-optimized path to the primary and keeps I/O', async () => {
    const row = await runMetroScenario(findMetroScenario('metro/secondary-failure')!);
    if (!row.match) console.error(row.mismatch, row.events.join('\n'));
    expect(row.mismatch).toEqual([]);
    expect(row.observed['host-b'].paths.during).toEqual({ A: 'active/non-optimized', B: 'down' });
    expect(row.observed['host-b'].keptIo).toBe(true);
    expect(row.observed['host-b'].lostWrites).toBe(0);
    expect(formatMetroTable([row])).toMatch(/\| metro\/secondary-failure \| host-b \| A ANO, B AO \| A ANO, B down \| A ANO, B down \|/);
  }, 120_000);

  it('negative control: a wrong expectation does not match, and says what differed', async () => {
    const row = await runMetroScenario(NEGATIVE_CONTROL, { settleMs: 8000 });
    expect(row.match).toBe(false);
    expect(row.mismatch).toEqual(['host-b during: path to B is unavailable, expected active/optimized']);
    expect(formatMetroTable([row])).toContain('**NO**: host-b during: path to B is unavailable, expected active/optimized');
  }, 120_000);

  it('metro/raid-failure: the primary\'s store fails; its paths go unavailable, the group fails over, both hosts keep I/O, the arrays are identical once healed', async () => {
    const row = await runMetroScenario(findMetroScenario('metro/raid-failure')!);
    if (!row.match) console.error(row.mismatch, row.events.join('\n'));
    expect(row.mismatch).toEqual([]);
    for (const h of ['host-a', 'host-b'] as const) {
      expect(row.observed[h].paths.during.A).toBe('unavailable');
      expect(row.observed[h].keptIo).toBe(true);
      expect(row.observed[h].lostWrites).toBe(0);
    }
    expect(row.volumes).toMatchObject({ differing: 0, problem: null, blocks: 32768 });
  }, 120_000);

  it('negative control of the comparison: one block changed behind B\'s back is caught and named', async () => {
    const row = await runMetroScenario(NEGATIVE_CONTROL_DIVERGENCE, { settleMs: 8000 });
    expect(row.match).toBe(false);
    expect(row.mismatch).toEqual(['arrays differ in 1 of 32768 blocks once healed (first at LBA 32767)']);
    expect(formatMetroTable([row])).toContain('**NO**: 1 block differs');
  }, 120_000);

  it('a start-up that is never steady is not hidden: with one attempt allowed the row does not match and says why', async () => {
    const row = await runMetroScenario(findMetroScenario('metro/link-failure')!, {
      startAttempts: 1, settleMs: 8000,
      disturbStartup: async (_attempt, c) => { await Promise.all(c.sites.map((x) => x.admin('POST', '/v1/rcopy/link', { action: 'cut' }))); },
    });
    expect(row.match).toBe(false);
    expect(row.mismatch[0]).toMatch(/^start-up: not steady before the fault in 1 start-ups \(before the fault: /);
  }, 120_000);

  it('lab run metro-sync/link-failure --json (Active Sync): host-b\'s only path goes unavailable and it loses I/O; host-a keeps I/O; nothing lost', async () => {
    const out: string[] = [];
    const code = await runLab({ action: 'run', scenarios: ['metro-sync/link-failure'], all: false, json: true }, (s) => out.push(s), { stream: piped, delayMs: 0 });
    const [row] = JSON.parse(out.join('\n')) as MetroRow[];
    if (!row.match) console.error(row.mismatch, row.events.join('\n'));
    expect(row.mismatch).toEqual([]);
    expect(code).toBe(0);
    expect(row.topology).toBe('sync');
    expect(row.observed['host-a'].paths.before).toEqual({ A: 'active/optimized', B: 'none' });
    expect(row.observed['host-b'].paths.before).toEqual({ A: 'none', B: 'active/optimized' });
    expect(row.observed['host-a'].paths.during).toEqual({ A: 'active/optimized', B: 'none' });
    expect(row.observed['host-b'].paths.during).toEqual({ A: 'none', B: 'unavailable' });
    expect(row.observed['host-b'].paths.after).toEqual({ A: 'none', B: 'active/optimized' });
    expect(row.observed['host-a'].keptIo).toBe(true);
    expect(row.observed['host-b'].keptIo).toBe(false);
    expect(row.observed['host-b'].failedWrites).toBeGreaterThan(0);
    for (const h of ['host-a', 'host-b'] as const) expect(row.observed[h].lostWrites).toBe(0);
    expect(row.volumes).toMatchObject({ differing: 0, problem: null });
    expect(row.paper).toContain('unavailable');
  }, 150_000);

  it('Active Sync negative control: host-b judged against the Active Peer Persistence promise does not match, and its cells are named', async () => {
    // settleMs above the hosts' 10 s no-path deadline, so that host-b's failed write is seen too.
    const row = await runMetroScenario(ACTIVE_SYNC_NEGATIVE_CONTROL, { settleMs: 13000 });
    expect(row.match).toBe(false);
    expect(row.mismatch).toContain('host-b during: path to B is unavailable, expected active/optimized');
    expect(row.mismatch.every((m) => m.startsWith('host-b'))).toBe(true);
    expect(formatMetroTable([row])).toContain('**NO**: host-b during: path to B is unavailable, expected active/optimized');
  }, 150_000);

  it('an unknown metro scenario is a usage error naming it', async () => {
    await expect(runLab({ action: 'run', scenarios: ['metro/nope'], all: false, json: false })).rejects.toThrow(/unknown scenario "metro\/nope"/);
    await expect(runLab({ action: 'run', scenarios: ['metro-sync/nope'], all: false, json: false })).rejects.toThrow(/unknown scenario "metro-sync\/nope"/);
  });
});

// By hand: every scenario of the list, each must match (ARRAYSIM_METRO_ALL=1).
describe.skipIf(!process.env.ARRAYSIM_METRO_ALL)('metro failure lab, every scenario (long form)', () => {
  it.each([...METRO_SCENARIOS, ...ACTIVE_SYNC_SCENARIOS].map((s) => [s.name]))('%s matches the paper', async (name) => {
    const row = await runMetroScenario(findMetroScenario(name)!);
    if (!row.match) console.error(row.mismatch, row.events.join('\n'));
    expect(row.mismatch).toEqual([]);
    expect(row.volumes.differing).toBe(0);
  }, 180_000);
});
