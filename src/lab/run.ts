/**
 * Runs a lab scenario end to end: an array in process on a free loopback port with the scenario's
 * splitter over its LUNs (group `default`, local copy `local`, as `serve --splitter` builds it),
 * an ESXi-like host (src/host) driving it over iSCSI, then the splitter's verify on the copy. The
 * row says what happened and whether it is what the source predicts.
 */
import pino from 'pino';
import { StorageArray } from '../array.ts';
import { configFromFlags } from '../config.ts';
import { ScsiDevice } from '../initiator/index.ts';
import { EsxHost } from '../host/host.ts';
import { lockRun } from '../host/lock.ts';
import type { RunReport } from '../host/report.ts';
import { settingsFrom } from '../host/settings.ts';
import { verifyGroup } from '../splitter/verify.ts';
import type { DivergedExtent } from '../splitter/verify.ts';
import type { Expected, LabOp, Scenario } from './scenarios.ts';

export const LAB_TARGET = 'iqn.2026-12.dev.arraysim:lab';
/** Blocks each operation covers: 8 MiB of 512-byte blocks, two 4 MiB XCOPY segments. */
export const OP_BLOCKS = 16384;

export interface LabRow {
  scenario: string;
  title: string;
  policy: string;
  settings: string;
  offloaded: boolean;
  fellBack: boolean;
  consistent: boolean;
  divergedBlocks: number;
  /** What else the run observed, in words (the group's transfer state, bytes sent, the preset drawn). */
  observed: string;
  /** Every diverged extent is attributed to an ignored command (null when nothing diverged). */
  attributed: boolean | null;
  expected: Expected;
  source: string;
  match: boolean;
  /** What did not match, in words (empty when it matched). */
  mismatch: string[];
  reports: RunReport[];
  diverged: DivergedExtent[];
  ms: number;
  /** A scenario's own figures (--json): the seeding runs, the mixed day's draw and prediction. */
  details?: Record<string, unknown>;
}

export function pattern(bytes: number, seed: number): Buffer {
  const b = Buffer.alloc(bytes);
  for (let i = 0; i < bytes; i += 4) b.writeUInt32BE(((i / 4) * 2654435761 + seed * 40503) >>> 0, i);
  return b;
}

export async function fill(d: ScsiDevice, lba: bigint, data: Buffer): Promise<void> {
  const per = 2048 * 512;
  for (let o = 0; o < data.length; o += per) {
    const r = await d.write(lba + BigInt(o / 512), data.subarray(o, Math.min(data.length, o + per)));
    if (r.kind !== 'good') throw new Error(`lab: preparing LBA ${lba}: WRITE failed (${JSON.stringify(r)})`);
  }
}

/** What a run saw, before it is held against the scenario's expectation (judge). */
export interface Observed {
  reports: RunReport[];
  /** verify's result; null when the copy could not be verified (never initialized). */
  verify: { consistent: boolean; diverged: DivergedExtent[] } | null;
  /** The group's first initialization ended with the transfer active (initialization scenarios). */
  initialized?: boolean;
  /** Further mismatches the scenario's own runner found. */
  mismatch?: string[];
  observed?: string;
  /** The expectation, when the runner derives it (the mixed day predicts it from the preset drawn). */
  expect?: Expected;
  policy?: string;
}

/** `seed`: the mixed day's draw (random when absent; the row prints it). */
export async function runScenario(s: Scenario, o: { seed?: number } = {}): Promise<LabRow> {
  switch (s.kind ?? 'ops') {
    case 'initialization': return (await import('./initialization.ts')).runInitialization(s);
    case 'seeding': return (await import('./seeding.ts')).runSeedingScenario(s);
    case 'mixed-day': return (await import('./mixed-day.ts')).runMixedDay(s, o);
    default: return runOps(s);
  }
}

/** The scenario's expectation held against what was observed: the row. */
export function judge(s: Scenario, obs: Observed, t0: number): LabRow {
  const { reports } = obs;
  const expect = obs.expect ?? s.expect;
  // ATS counts as offloaded when the lock ran in ATS mode (its work is the array's compare-and-write).
  const offloaded = reports.some((r) => r.offloadedBlocks > 0 || r.lock?.mode === 'ats');
  const fellBack = reports.some((r) => r.fallbacks.length > 0);
  const consistent = obs.verify?.consistent ?? false;
  const diverged = obs.verify?.diverged ?? [];
  const divergedBlocks = diverged.reduce((a, e) => a + e.blocks, 0);
  const attributed = diverged.length ? diverged.every((e) => e.causes.length > 0) : null;
  const mismatch: string[] = [];
  for (const r of reports.filter((x) => x.outcome !== 'done')) mismatch.push(`host ${r.verb}: ${r.outcome} (${r.message})`);
  if (offloaded !== expect.offloaded) mismatch.push(`offloaded: ${offloaded}, expected ${expect.offloaded}`);
  if (fellBack !== expect.fellBack) mismatch.push(`fell back: ${fellBack}, expected ${expect.fellBack}`);
  if (consistent !== expect.consistent) mismatch.push(`replica consistent: ${consistent}, expected ${expect.consistent}`);
  if (expect.initialized !== undefined && obs.initialized !== expect.initialized) mismatch.push(`initialized: ${obs.initialized}, expected ${expect.initialized}`);
  if (obs.verify && !consistent && attributed !== true) mismatch.push('a diverged extent is not attributed to an ignored command');
  mismatch.push(...(obs.mismatch ?? []));
  return {
    scenario: s.name, title: s.title, policy: obs.policy ?? s.policy, settings: s.settings.length ? s.settings.join(' ') : 'defaults',
    offloaded, fellBack, consistent, divergedBlocks, observed: obs.observed ?? '', attributed, expected: expect, source: s.source,
    match: mismatch.length === 0, mismatch, reports, diverged, ms: Math.round(performance.now() - t0),
  };
}

/** A splitter array in process as the lab runs it: LUNs in group `default`, copy `local`. */
export async function labArray(splitter: string, o: { luns?: string[]; startTransfer?: boolean } = {}) {
  const log = pino({ level: process.env.ARRAYSIM_LAB_LOG ?? 'silent' });
  const config = configFromFlags({ listen: ['127.0.0.1:0'], target: LAB_TARGET, lun: o.luns ?? ['32MiB', '32MiB'], splitter });
  if (o.startTransfer === false) config.groups![0].startTransfer = false;
  const array = await StorageArray.create(config, log);
  await array.start();
  const group = array.groups.get('default');
  if (!group) { await array.stop(); throw new Error('lab: the array has no group "default"'); }
  return { array, group, port: config.portals[0].port };
}

/** LUN `lun` of the lab array, as host `name` logs in to it (unit attentions of the login cleared). */
export async function labDevice(port: number, name: string, lun = 0): Promise<ScsiDevice> {
  const d = await ScsiDevice.open(`iscsi://127.0.0.1:${port}/${LAB_TARGET}/${lun}`, { initiatorName: `iqn.2026-12.dev.arraysim:${name}` });
  await d.clearUnitAttentions();
  return d;
}

async function runOps(s: Scenario): Promise<LabRow> {
  const t0 = performance.now();
  const { array, group, port } = await labArray(s.splitter);
  let dev: ScsiDevice | null = null;
  try {
    await group.ready();
    dev = await labDevice(port, 'lab-esx');
    const lu1 = dev.on(1);
    await lu1.clearUnitAttentions();
    const host = new EsxHost(settingsFrom(s.settings), 'lab-esx');
    const reports: RunReport[] = [];
    const N = OP_BLOCKS;
    const at: Record<LabOp, bigint> = { clone: 0n, zero: BigInt(N), unmap: BigInt(2 * N), lock: BigInt(3 * N) };
    for (const op of s.ops) {
      if (op === 'lock') {
        reports.push(await lockRun(host, lu1, { lba: at.lock, holdMs: 40, heartbeatMs: 10, volume: 'lab-datastore', owner: 'lab-esx' }));
        continue;
      }
      // Plain WRITEs first (always split), so the copy holds the same data before the primitive.
      if (op === 'clone') await fill(dev, 0n, pattern(N * 512, 1));
      else await fill(lu1, at[op], pattern(N * 512, op === 'zero' ? 2 : 3));
      if (op === 'clone') reports.push(await host.clone({ from: dev, to: lu1, lba: 0n, toLba: 0n, blocks: N }));
      else reports.push(await host[op]({ to: lu1, lba: at[op], blocks: N }));
    }
    return judge(s, { reports, verify: await verifyGroup(group, 'local') }, t0);
  } finally {
    await dev?.close().catch(() => {});
    await array.stop();
  }
}

const yn = (b: boolean): string => (b ? 'yes' : 'no');

/** The issue's table: scenario, policy, host settings, offloaded?, fell back?, consistent?, diverged blocks, expected and source. */
export function formatTable(rows: LabRow[]): string {
  const head = ['scenario', 'policy', 'host settings', 'offloaded?', 'fell back?', 'replica consistent?', 'diverged blocks', 'observed', 'expected (offloaded / fell back / consistent)', 'match', 'source'];
  const lines = [`| ${head.join(' | ')} |`, `| ${head.map(() => '---').join(' | ')} |`];
  for (const r of rows) {
    const e = r.expected;
    const div = r.divergedBlocks ? `${r.divergedBlocks}${r.attributed ? ' (attributed)' : ' (NOT attributed)'}` : '0';
    const more = [e.initialized === undefined ? '' : `; initializes: ${yn(e.initialized)}`, e.seededAtMost === undefined ? '' : `; seeded sends <= ${e.seededAtMost * 100}%`].join('');
    lines.push(`| ${[r.scenario, r.policy, r.settings, yn(r.offloaded), yn(r.fellBack), yn(r.consistent), div, r.observed || '-', `${yn(e.offloaded)} / ${yn(e.fellBack)} / ${yn(e.consistent)}${more}`, r.match ? 'yes' : `**NO**: ${r.mismatch.join('; ')}`, r.source].join(' | ')} |`);
  }
  return lines.join('\n');
}
