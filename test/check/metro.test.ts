/**
 * The checker's short form, from the outside: `arraysim check metro` as a user runs it (two
 * `serve` processes, two hosts with multipath, seeded faults), judged by its exit code and its
 * JSON report. A clean run must pass having really done something (acknowledged writes, reads,
 * increments, faults, failovers); the negative control (ARRAYSIM_FAULT_HOOK=ack-before-peer:
 * the primary acknowledges writes before the secondary has them) must be caught, and so must
 * ARRAYSIM_FAULT_HOOK=split-brain (both arrays accept writes while the link is cut).
 * CHECK_SEED=<n> replays a failing seed; the long form is `--seconds 1800` (README).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { CheckReport } from '../../src/check/run.ts';
import type { SavedHistory } from '../../src/check/history.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const SEED = Number(process.env.CHECK_SEED ?? 1);
const out = mkdtempSync(path.join(tmpdir(), 'check-metro-test-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));

function run(args: string[]): Promise<{ code: number | null; report: CheckReport; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [path.join(ROOT, 'bin/arraysim.js'), 'check', 'metro', '--json', '--out', out, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => { stdout += d; });
    p.stderr.on('data', (d) => { stderr += d; });
    p.on('error', reject);
    p.on('exit', (code) => {
      try { resolve({ code, report: JSON.parse(stdout) as CheckReport, stderr }); } catch { reject(new Error(`no JSON report (exit ${code}):\n${stderr.slice(-3000)}`)); }
    });
  });
}

describe('arraysim check metro (short form)', () => {
  it(`passes a clean pair under every available fault (seed ${SEED}, 60 s)`, async () => {
    const { code, report, stderr } = await run(['--seconds', '60', '--seed', String(SEED)]);
    if (code !== 0) console.error(stderr.slice(-6000));
    expect(report.violations).toEqual([]);
    expect(code).toBe(0);
    // It did something: writes and reads on both sites, increments, faults, group transitions, failovers.
    expect(report.stats.acked).toBeGreaterThan(100);
    expect(report.stats.reads).toBeGreaterThan(100);
    expect(report.stats.ackedIncrements).toBeGreaterThan(10);
    expect(report.faults.faults.length).toBeGreaterThanOrEqual(3);
    expect(report.transitions).toBeGreaterThan(0);
    expect(report.pathChanges).toBeGreaterThan(0);
    // The saved history replays: same seed, and the verdict recomputed from the file agrees.
    const saved = JSON.parse(readFileSync(report.historyPath, 'utf8')) as SavedHistory;
    expect(saved.seed).toBe(SEED);
    expect(saved.violations).toEqual([]);
    expect(saved.entries.filter((e) => e.type === 'array' && e.site === 'B').length).toBeGreaterThan(0);
  }, 300_000);

  it('negative control: catches a primary that acknowledges writes before the peer has them', async () => {
    const { code, report } = await run(['--seconds', '30', '--seed', String(SEED), '--faults', 'latency,cut-in-flight', '--hook', 'ack-before-peer']);
    expect(code).toBe(1);
    const kinds = new Set(report.violations.map((v) => v.kind));
    expect([...kinds].some((k) => k === 'stale-read' || k === 'lost-write' || k === 'divergence')).toBe(true);
  }, 300_000);

  it('negative control: catches both arrays accepting writes during a partition (split brain)', async () => {
    // ARRAYSIM_FAULT_HOOK=split-brain: on a link cut the secondary takes over without the witness
    // while the primary keeps writing alone. The arrays' own events must show it.
    const { code, report } = await run(['--seconds', '20', '--seed', String(SEED), '--faults', 'link-cut', '--hook', 'split-brain']);
    expect(code).toBe(1);
    expect(report.violations.some((v) => v.kind === 'split-brain')).toBe(true);
  }, 300_000);
});
