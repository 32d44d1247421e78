/**
 * Pieces the single-target benches (xcopy.ts, write-same.ts, ats.ts) share: start
 * `node bin/arraysim.js serve` as a child process, wait for its portal, log sessions in with the
 * project's test initiator, and small status and /proc helpers (CDBs: test/helpers/cdb.ts).
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { setPriority } from 'node:os';
import net from 'node:net';
import { TestInitiator } from '../../test/helpers/initiator.ts';
import type { ScsiResult } from '../../test/helpers/initiator.ts';

export const BENCH_KEYS = { MaxRecvDataSegmentLength: '262144', FirstBurstLength: '262144', MaxBurstLength: '16776192', ImmediateData: 'Yes', InitialR2T: 'No' };

/** Numeric `--name value` from argv, or the default. */
export function numOpt(name: string, dflt: number): number {
  const args = process.argv.slice(2);
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : dflt;
}

export async function waitPort(port: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const ok = await new Promise<boolean>((r) => {
      const s = net.connect(port, '127.0.0.1', () => { s.destroy(); r(true); });
      s.on('error', () => r(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`target did not listen on ${port}`);
}

/** `node bin/arraysim.js serve ARGS` in its own process group (stop() signals the group). */
export function startTarget(serveArgs: string[]): { child: ChildProcess; stop: () => void } {
  // ARRAYSIM_BENCH_CPU_PROF=DIR: each target writes a V8 CPU profile there when it stops (node
  // refuses --cpu-prof in NODE_OPTIONS, so it has to be on the target's own command line).
  const prof = process.env.ARRAYSIM_BENCH_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.ARRAYSIM_BENCH_CPU_PROF}`] : [];
  const child = spawn('node', [...prof, 'bin/arraysim.js', 'serve', ...serveArgs, '--log-level', 'warn'], { stdio: ['ignore', 'ignore', 'inherit'], detached: true });
  if (child.pid) prioritize(child.pid);
  const stop = (): void => { if (child.pid && child.exitCode === null) try { process.kill(-child.pid, 'SIGTERM'); } catch { /* gone */ } };
  return { child, stop };
}

/**
 * ARRAYSIM_BENCH_PRIORITY=-20 (needs root): the targets and the bench process run at that nice
 * value, each in a scheduler autogroup of that nice. On a machine shared with other work (a
 * load average of 10-20 on two cores) the figures are otherwise the other work's: with Linux's
 * autogroups (sched_autogroup_enabled) a nice value counts only against tasks of the same
 * session, and `detached` gives each target a session of its own. Say so with the figures.
 */
export function prioritize(pid = process.pid): void {
  const v = process.env.ARRAYSIM_BENCH_PRIORITY;
  if (v === undefined) return;
  const n = Number(v);
  setPriority(pid, n);
  try { writeFileSync(`/proc/${pid}/autogroup`, String(n)); } catch { /* no autogroups here: the nice value alone */ }
}

let isidSeq = 0;
/** A logged-in session (distinct ISID each time) with a TEST UNIT READY per LUN to clear unit attentions. */
export async function session(port: number, iqn: string, luns: number[] = [0]): Promise<TestInitiator> {
  const ini = await TestInitiator.connect(port);
  ini.isid = Buffer.from([0x80, 0, 0, 0, 0x42, isidSeq++]);
  await ini.login(iqn, BENCH_KEYS);
  for (const lun of luns) await ini.scsi(lun, [0x00, 0, 0, 0, 0, 0]);
  return ini;
}

export function check(r: { status: number; sense: Buffer | null }, what: string): void {
  if (r.status !== 0) throw new Error(`${what}: status ${r.status} sense ${r.sense?.toString('hex')}`);
}

/** SENSE KEY / ASC / ASCQ from fixed (70h/71h) or descriptor (72h/73h) sense data. */
export function senseOf(r: ScsiResult): { key: number; asc: number; ascq: number } | null {
  const s = r.sense;
  if (!s || s.length < 4) return null;
  if ((s[0] & 0x7f) >= 0x72) return { key: s[1] & 0x0f, asc: s[2], ascq: s[3] };
  return { key: s[2] & 0x0f, asc: s[12] ?? 0, ascq: s[13] ?? 0 };
}

/** VmRSS of a process in KiB (from /proc/PID/status). */
export function rssKiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : NaN;
}

/** utime + stime of a process (all threads) in seconds, from /proc/PID/stat. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / 100; // fields 14 and 15, in clock ticks (USER_HZ 100)
}
