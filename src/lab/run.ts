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
}

function pattern(bytes: number, seed: number): Buffer {
  const b = Buffer.alloc(bytes);
  for (let i = 0; i < bytes; i += 4) b.writeUInt32BE(((i / 4) * 2654435761 + seed * 40503) >>> 0, i);
  return b;
}

async function fill(d: ScsiDevice, lba: bigint, data: Buffer): Promise<void> {
  const per = 2048 * 512;
  for (let o = 0; o < data.length; o += per) {
    const r = await d.write(lba + BigInt(o / 512), data.subarray(o, Math.min(data.length, o + per)));
    if (r.kind !== 'good') throw new Error(`lab: preparing LBA ${lba}: WRITE failed (${JSON.stringify(r)})`);
  }
}

export async function runScenario(s: Scenario): Promise<LabRow> {
  const t0 = performance.now();
  const log = pino({ level: process.env.ARRAYSIM_LAB_LOG ?? 'silent' });
  const config = configFromFlags({ listen: ['127.0.0.1:0'], target: LAB_TARGET, lun: ['32MiB', '32MiB'], splitter: s.splitter });
  const array = await StorageArray.create(config, log);
  await array.start();
  let dev: ScsiDevice | null = null;
  try {
    const group = array.groups.get('default');
    if (!group) throw new Error('lab: the array has no group "default"');
    await group.ready();
    const port = config.portals[0].port;
    dev = await ScsiDevice.open(`iscsi://127.0.0.1:${port}/${LAB_TARGET}/0`, { initiatorName: 'iqn.2026-12.dev.arraysim:lab-esx' });
    await dev.clearUnitAttentions();
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
    const v = await verifyGroup(group, 'local');
    // ATS counts as offloaded when the lock ran in ATS mode (its work is the array's compare-and-write).
    const offloaded = reports.some((r) => r.offloadedBlocks > 0 || r.lock?.mode === 'ats');
    const fellBack = reports.some((r) => r.fallbacks.length > 0);
    const divergedBlocks = v.diverged.reduce((a, e) => a + e.blocks, 0);
    const attributed = v.diverged.length ? v.diverged.every((e) => e.causes.length > 0) : null;
    const mismatch: string[] = [];
    const failed = reports.filter((r) => r.outcome !== 'done');
    for (const r of failed) mismatch.push(`host ${r.verb}: ${r.outcome} (${r.message})`);
    if (offloaded !== s.expect.offloaded) mismatch.push(`offloaded: ${offloaded}, expected ${s.expect.offloaded}`);
    if (fellBack !== s.expect.fellBack) mismatch.push(`fell back: ${fellBack}, expected ${s.expect.fellBack}`);
    if (v.consistent !== s.expect.consistent) mismatch.push(`replica consistent: ${v.consistent}, expected ${s.expect.consistent}`);
    if (!v.consistent && attributed !== true) mismatch.push('a diverged extent is not attributed to an ignored command');
    return {
      scenario: s.name, title: s.title, policy: s.policy, settings: s.settings.length ? s.settings.join(' ') : 'defaults',
      offloaded, fellBack, consistent: v.consistent, divergedBlocks, attributed, expected: s.expect, source: s.source,
      match: mismatch.length === 0, mismatch, reports, diverged: v.diverged, ms: Math.round(performance.now() - t0),
    };
  } finally {
    await dev?.close().catch(() => {});
    await array.stop();
  }
}

const yn = (b: boolean): string => (b ? 'yes' : 'no');

/** The issue's table: scenario, policy, host settings, offloaded?, fell back?, consistent?, diverged blocks, expected and source. */
export function formatTable(rows: LabRow[]): string {
  const head = ['scenario', 'policy', 'host settings', 'offloaded?', 'fell back?', 'replica consistent?', 'diverged blocks', 'expected (offloaded / fell back / consistent)', 'match', 'source'];
  const lines = [`| ${head.join(' | ')} |`, `| ${head.map(() => '---').join(' | ')} |`];
  for (const r of rows) {
    const e = r.expected;
    const div = r.divergedBlocks ? `${r.divergedBlocks}${r.attributed ? ' (attributed)' : ' (NOT attributed)'}` : '0';
    lines.push(`| ${[r.scenario, r.policy, r.settings, yn(r.offloaded), yn(r.fellBack), yn(r.consistent), div, `${yn(e.offloaded)} / ${yn(e.fellBack)} / ${yn(e.consistent)}`, r.match ? 'yes' : `**NO**: ${r.mismatch.join('; ')}`, r.source].join(' | ')} |`);
  }
  return lines.join('\n');
}
