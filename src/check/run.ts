/**
 * One checker run, end to end: start the pair (cluster.ts), the hosts and their clients
 * (workload.ts), the seeded fault schedule (faults.ts) for `seconds`; then heal, let the pair
 * resync, stop the clients, stop the arrays and read both volumes straight from their files;
 * judge the history (model.ts) and save it with the verdict as results/check-<seed>.json.
 */
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CHECK_GROUP, startCluster } from './cluster.ts';
import type { Topology } from './cluster.ts';
import type { Cluster } from './cluster.ts';
import { healAll, prng, runSchedule } from './faults.ts';
import type { ScheduleReport } from './faults.ts';
import { BLOCK, counterOf, History, tagOf, tagString } from './history.ts';
import type { SavedHistory } from './history.ts';
import { check } from './model.ts';
import type { Verdict, Violation } from './model.ts';
import { LAYOUT, Workload } from './workload.ts';

export const VOLUME_BYTES = 8 << 20;

export interface CheckOptions {
  seconds: number;
  seed: number;
  /** `lab up`'s topologies: metro (uniform hosts, default) or sync (Active Sync: each host sees its local array only). */
  topology?: Topology;
  /** Where check-<seed>.json goes (default results/). */
  out?: string;
  /** Extra environment for both arrays (ARRAYSIM_FAULT_HOOK for a negative control). */
  arrayEnv?: Record<string, string>;
  /** Only these fault kinds (default every kind this build offers). */
  faults?: string[];
  writers?: number;
  readers?: number;
  incrementers?: number;
  /** Operations per second per client at most (default 25). */
  rate?: number;
  /** Print every operation as it ends. */
  verbose?: boolean;
  /** Progress lines (default: none). */
  log?: (line: string) => void;
  keepDir?: boolean;
}

export interface CheckReport {
  seed: number;
  seconds: number;
  ok: boolean;
  violations: Violation[];
  stats: Verdict['stats'];
  faults: ScheduleReport;
  /** Remote Copy group transitions seen in the arrays' events, and path state changes seen by hosts. */
  transitions: number;
  pathChanges: number;
  historyPath: string;
  dir: string;
}

const sec = (h: History) => `${(h.now() / 1000).toFixed(1)}s`;

export async function runCheck(o: CheckOptions): Promise<CheckReport> {
  const log = o.log ?? (() => {});
  const dir = mkdtempSync(path.join(tmpdir(), `arraysim-check-${o.seed}-`));
  const h = new History();
  let transitions = 0;
  let pathChanges = 0;
  h.onNote = (e) => {
    if (e.type !== 'array') return;
    const ev = e.event;
    if (ev.type === 'rcopy.group') { transitions++; log(`${sec(h)} site ${e.site} ${ev.group} ${ev.from} → ${ev.to} (${ev.reason})`); }
    else if (ev.type === 'down') log(`${sec(h)} site ${e.site} is down`);
    else if (ev.type === 'snapshot') log(`${sec(h)} site ${e.site} is up: ${ev.status}, ${ev.accepting ? 'accepting writes' : 'not accepting writes'}`);
  };
  if (o.verbose) {
    h.onOp = (i, e) => {
      const what = i.op === 'write' ? `write ${i.client}:${i.seq} LBA ${i.lba}+${i.blocks}` : i.op === 'read' ? `read LBA ${i.lba}+${i.blocks}` : `increment counter ${i.lba}`;
      const how = e.type === 'fail' ? `${e.indeterminate ? 'INDETERMINATE' : 'FAILED'} ${e.error}` : Array.isArray(e.value) ? `ok [${e.value.join(' ')}]` : e.value !== undefined ? `ok → ${e.value}` : 'ok';
      log(`${(e.t / 1000).toFixed(3)}s #${i.id} ${i.client}@${i.site} ${what} ${how} (${(e.t - i.t).toFixed(1)} ms)`);
    };
  }
  const extra: Violation[] = [];
  let cluster: Cluster | null = null;
  let workload: Workload | null = null;
  let faults: ScheduleReport = { faults: [], skipped: [] };
  let images: [Buffer, Buffer] | null = null;
  try {
    log(`seed ${o.seed}, ${o.seconds} s; arrays in ${dir}${o.arrayEnv && Object.keys(o.arrayEnv).length ? ` with ${Object.entries(o.arrayEnv).map(([k, v]) => `${k}=${v}`).join(' ')}` : ''}`);
    cluster = await startCluster(dir, h, { volumeBytes: VOLUME_BYTES, env: o.arrayEnv, topology: o.topology });
    if (!await cluster.synced(60000)) throw new Error('the pair did not reach Synced within 60 s of starting');
    log(`${sec(h)} pair Synced; starting hosts`);
    workload = new Workload(h, {
      writers: o.writers ?? 2, readers: o.readers ?? 2, incrementers: o.incrementers ?? 1, rate: o.rate ?? 25, seed: o.seed,
      onPath: (host, p, from, why) => { pathChanges++; log(`${sec(h)} ${host} path ${p.name} ${from} → ${p.state} (${why})`); },
    });
    const c = cluster;
    const siteOf = (n: string) => (n === 'site-a' ? c.a : c.b);
    await workload.start(c.plan.hosts.map((x) => ({
      name: x.name, site: siteOf(x.site).name, initiator: x.iqn,
      paths: x.connects.map((n) => ({ name: siteOf(n).name, url: siteOf(n).url })),
    })));
    const w = workload;
    const ticker = setInterval(() => log(`${sec(h)} ops: ${w.counts.writes} writes, ${w.counts.reads} reads, ${w.counts.increments} increments, ${w.counts.errors} errors`), 10000);
    try {
      faults = await runSchedule(cluster, h, prng(o.seed), { seconds: o.seconds, kinds: o.faults, log }, () => false);
    } finally {
      clearInterval(ticker);
    }
    await healAll(cluster);
    if (!await cluster.synced(60000)) extra.push({ kind: 'incomplete', message: 'the pair was not Synced 60 s after the last heal' });
    log(`${sec(h)} healed; stopping the hosts`);
    await new Promise((r) => setTimeout(r, 1000));
    await workload.stop();
    workload = null;
    if (!await cluster.synced(60000)) extra.push({ kind: 'incomplete', message: 'the pair was not Synced 60 s after the hosts stopped' });
    await cluster.stop();
    images = [readFileSync(cluster.a.volumePath), readFileSync(cluster.b.volumePath)];
  } catch (e) {
    // Not a verdict (an array that would not start again, a port taken): keep the history for a look.
    await workload?.stop().catch(() => {});
    await cluster?.stop().catch(() => {});
    const historyPath = save(o, h, { tags: {}, counters: {}, identical: true, differing: [] }, [{ kind: 'incomplete', message: `run aborted: ${(e as Error).message}` }]);
    throw new Error(`${(e as Error).message} (history so far: ${historyPath}; arrays' logs in ${dir})`);
  } finally {
    await workload?.stop().catch(() => {});
    await cluster?.stop().catch(() => {});
  }

  const final = finalState(images[0], images[1]);
  const verdict = check({ entries: h.entries, final }, { group: CHECK_GROUP });
  const violations = [...extra, ...verdict.violations];
  const historyPath = save(o, h, final, violations);
  if (!o.keepDir) rmSync(dir, { recursive: true, force: true });
  return { seed: o.seed, seconds: o.seconds, ok: violations.length === 0, violations, stats: verdict.stats, faults, transitions, pathChanges, historyPath, dir };
}

function save(o: CheckOptions, h: History, final: SavedHistory['final'], violations: Violation[]): string {
  const outDir = o.out ?? 'results';
  mkdirSync(outDir, { recursive: true });
  const historyPath = path.join(outDir, `check-${o.seed}.json`);
  const saved: SavedHistory = {
    seed: o.seed, seconds: o.seconds, startedAt: new Date(Date.now() - h.now()).toISOString(),
    options: { topology: o.topology ?? 'metro', writers: o.writers ?? 2, readers: o.readers ?? 2, incrementers: o.incrementers ?? 1, rate: o.rate ?? 25, faults: o.faults ?? null, arrayEnv: o.arrayEnv ?? {}, layout: LAYOUT, volumeBytes: VOLUME_BYTES },
    entries: h.entries, final, violations,
  };
  writeFileSync(historyPath, JSON.stringify(saved));
  return historyPath;
}

/** Both volumes compared block by block; the registers' and counters' final values from site A. */
export function finalState(a: Buffer, b: Buffer): SavedHistory['final'] {
  const differing: number[] = [];
  const n = Math.max(a.length, b.length) / BLOCK;
  for (let i = 0; i < n; i++) {
    const x = a.subarray(i * BLOCK, (i + 1) * BLOCK);
    const y = b.subarray(i * BLOCK, (i + 1) * BLOCK);
    if (!x.equals(y)) differing.push(i);
  }
  const tags: Record<number, string> = {};
  for (let lba = 0; lba < LAYOUT.dataBlocks; lba++) tags[lba] = tagString(tagOf(a.subarray(lba * BLOCK, (lba + 1) * BLOCK), lba));
  const counters: Record<number, number> = {};
  for (let i = 0; i < LAYOUT.counters; i++) {
    const lba = LAYOUT.counterBase + i;
    counters[lba] = counterOf(a.subarray(lba * BLOCK, (lba + 1) * BLOCK), lba) ?? -1;
  }
  return { tags, counters, identical: differing.length === 0, differing };
}

/** The verdict of a saved history, recomputed from the file alone. */
export function recheck(file: string): { saved: SavedHistory; verdict: Verdict } {
  const saved = JSON.parse(readFileSync(file, 'utf8')) as SavedHistory;
  return { saved, verdict: check({ entries: saved.entries, final: saved.final }, { group: CHECK_GROUP }) };
}
