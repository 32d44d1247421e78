/**
 * The fault table and the seeded schedule (STYLE.md habit 17: every fault from a seed, a failing
 * run replays with its seed). One row per kind of fault: whether this build can inject it (a probe,
 * so a kind that another part of arraysim has not landed yet is left out and said so), how to
 * inject it, how to heal it. A new kind of fault is one more row.
 */
import type { Cluster, SiteName } from './cluster.ts';
import type { History } from './history.ts';

/** mulberry32: small, seeded, and the same sequence on every machine. */
export function prng(seed: number): Rng {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (lo, hi) => lo + Math.floor(next() * (hi - lo + 1)),
    pick: <T>(xs: readonly T[]) => xs[Math.floor(next() * xs.length)],
  };
}

export interface Rng { next(): number; int(lo: number, hi: number): number; pick<T>(xs: readonly T[]): T }

export interface FaultKind {
  name: string;
  /** Can this build inject it? (A POST the admin API refuses with 400 means: not landed yet.) */
  available(c: Cluster): Promise<boolean>;
  /** Inject; the words say what exactly (which site, how much). */
  inject(c: Cluster, r: Rng): Promise<string>;
  heal(c: Cluster): Promise<void>;
}

const SITES: readonly SiteName[] = ['A', 'B'];

/** POST /v1/rcopy/link on both arrays; false when an array refuses the body (400). */
async function linkBoth(c: Cluster, body: Record<string, unknown>): Promise<void> {
  await Promise.all(c.sites.filter((s) => s.running).map((s) => s.admin('POST', '/v1/rcopy/link', body)));
}

async function accepts(c: Cluster, body: Record<string, unknown>): Promise<boolean> {
  try { await c.a.admin('POST', '/v1/rcopy/link', body); return true; } catch { return false; }
}

export const FAULTS: readonly FaultKind[] = [
  {
    name: 'link-cut',
    available: async () => true,
    inject: async (c, r) => { const s = c.site(r.pick(SITES)); await s.admin('POST', '/v1/rcopy/link', { action: 'cut' }); return `cut at site ${s.name}`; },
    heal: (c) => linkBoth(c, { action: 'restore' }),
  },
  {
    name: 'latency',
    available: async () => true,
    inject: async (c, r) => { const ms = r.int(2, 80); await linkBoth(c, { latencyMs: ms }); return `${ms} ms each way`; },
    heal: (c) => linkBoth(c, { latencyMs: 0 }),
  },
  {
    // A long-distance link that breaks with writes in flight on it.
    name: 'cut-in-flight',
    available: async () => true,
    inject: async (c, r) => {
      const ms = r.int(10, 80);
      const after = r.int(200, 1000);
      const s = c.site(r.pick(SITES));
      await linkBoth(c, { latencyMs: ms });
      await new Promise((t) => setTimeout(t, after));
      await s.admin('POST', '/v1/rcopy/link', { action: 'cut' });
      return `${ms} ms each way, cut at site ${s.name} ${after} ms later`;
    },
    heal: (c) => linkBoth(c, { action: 'restore', latencyMs: 0 }),
  },
  {
    name: 'loss',
    available: (c) => accepts(c, { lossPercent: 0 }),
    inject: async (c, r) => { const p = r.int(5, 60); const s = c.site(r.pick(SITES)); await s.admin('POST', '/v1/rcopy/link', { lossPercent: p }); return `${p}% of what site ${s.name} sends is lost`; },
    heal: (c) => linkBoth(c, { lossPercent: 0 }),
  },
  {
    name: 'one-way',
    available: (c) => accepts(c, { oneWay: null }),
    inject: async (c, r) => {
      const dir = r.pick(['out', 'in'] as const);
      const s = c.site(r.pick(SITES));
      await s.admin('POST', '/v1/rcopy/link', { oneWay: dir });
      return `site ${s.name} drops what goes ${dir}`;
    },
    heal: (c) => linkBoth(c, { oneWay: null }),
  },
  {
    name: 'kill-primary',
    available: async () => true,
    inject: async (c) => { await c.a.kill(); return 'SIGKILL site A (primary)'; },
    heal: (c) => c.a.start(),
  },
  {
    name: 'kill-secondary',
    available: async () => true,
    inject: async (c) => { await c.b.kill(); return 'SIGKILL site B (secondary)'; },
    heal: (c) => c.b.start(),
  },
  {
    name: 'witness-loss',
    available: async (c) => c.witness !== null,
    inject: async (c) => { await c.witness!.kill(); return 'SIGKILL the witness'; },
    heal: async (c) => { if (!await c.witness!.start()) throw new Error('the witness did not start again'); },
  },
];

export interface ScheduleOptions {
  seconds: number;
  /** Only these kinds (default: every available one). */
  kinds?: string[];
  /** Quiet time between faults and how long a fault lasts, ms. */
  quietMs?: [number, number];
  holdMs?: [number, number];
  /** After a heal, wait this long for both arrays Synced before the next fault. */
  resyncMs?: number;
  log?: (line: string) => void;
}

export interface ScheduleReport { faults: { kind: string; detail: string; injectAt: number; healAt: number; resyncMs: number | null }[]; skipped: string[] }

/**
 * Run faults until `seconds` have passed: quiet, inject, hold, heal, wait for the pair to be
 * Synced again; then heal everything that can be healed. Every choice comes from `rng`.
 */
export async function runSchedule(c: Cluster, h: History, rng: Rng, o: ScheduleOptions, stopped: () => boolean): Promise<ScheduleReport> {
  const log = o.log ?? (() => {});
  const report: ScheduleReport = { faults: [], skipped: [] };
  const table: FaultKind[] = [];
  for (const f of FAULTS) {
    if (o.kinds && !o.kinds.includes(f.name)) continue;
    if (await f.available(c)) table.push(f);
    else report.skipped.push(f.name);
  }
  if (report.skipped.length) log(`faults not available in this build (left out): ${report.skipped.join(', ')}`);
  const [q0, q1] = o.quietMs ?? [1000, 4000];
  const [h0, h1] = o.holdMs ?? [1000, 5000];
  const end = Date.now() + o.seconds * 1000;
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, Math.max(0, Math.min(ms, end - Date.now()))));
  while (table.length && Date.now() < end && !stopped()) {
    const quiet = rng.int(q0, q1);
    const f = rng.pick(table);
    const hold = rng.int(h0, h1);
    await sleep(quiet);
    if (Date.now() >= end || stopped()) break;
    const detail = await f.inject(c, rng);
    h.fault(f.name, 'inject', detail);
    const injectAt = h.now();
    log(`${(injectAt / 1000).toFixed(1)}s fault ${f.name}: ${detail}`);
    await new Promise((r) => setTimeout(r, hold));
    await f.heal(c);
    h.fault(f.name, 'heal');
    const healAt = h.now();
    log(`${(healAt / 1000).toFixed(1)}s healed ${f.name}`);
    const t = Date.now();
    const ok = await c.synced(o.resyncMs ?? 60000);
    const resyncMs = ok ? Date.now() - t : null;
    log(ok ? `${(h.now() / 1000).toFixed(1)}s pair Synced again after ${resyncMs} ms` : `${(h.now() / 1000).toFixed(1)}s pair NOT Synced ${o.resyncMs ?? 60000} ms after the heal`);
    report.faults.push({ kind: f.name, detail, injectAt, healAt, resyncMs });
  }
  return report;
}

/** Heal every kind (restore links, start stopped arrays): the end of a run, or after an error. */
export async function healAll(c: Cluster): Promise<void> {
  if (c.witness && !c.witness.running) await c.witness.start();
  for (const s of c.sites) if (!s.running) await s.start();
  for (const body of [{ action: 'restore', latencyMs: 0 }, { lossPercent: 0 }, { oneWay: null }]) await linkBoth(c, body).catch(() => {});
}
