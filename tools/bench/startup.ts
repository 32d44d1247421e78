/**
 * Start-up: the built package against today's tsx start, side by side in one run.
 *
 *   npx tsx tools/bench/startup.ts [--rounds 5] [--port 3480] [--settle 3] [--lun 1TiB]
 *
 * Three ways to start `serve --listen 127.0.0.1:PORT --lun 1TiB --admin 127.0.0.1:PORT+1000`:
 *   dist          node bin/arraysim.js serve ...            (what `npx arraysim serve` runs now)
 *   tsx           node --import tsx src/cli.ts serve ...    (the start before the build; tsx's
 *                                                           disk cache warm, its steady state)
 *   tsx, no cache the same with TSX_DISABLE_CACHE=1         (tsx compiling every module, as on the
 *                                                           first start after an install or an edit)
 * The old bin/arraysim.js called tsx's register() and imported src/cli.ts, which is what
 * `--import tsx` does. One untimed start of each warms the page cache and tsx's cache. Then each
 * round starts every variant once, one at a time, rotating which goes first.
 *
 * Start time: from spawn() to the first TCP connect to the portal that succeeds (polled every
 * 5 ms), so it includes node's own start, module loading, the 1 TiB thin LUN and the listen.
 * Beside it the CPU time (utime + stime, all threads, 10 ms ticks) the process group had used by
 * then, which a busy machine disturbs less than the wall clock.
 * Idle RSS: --settle seconds after the portal listens, VmRSS (/proc/PID/status) of the node
 * process, and of its whole process group (node plus any esbuild service tsx started). VmRSS
 * includes about 44 MiB of the node binary's mapped pages, the same in every variant and shared
 * by all node processes; RssAnon, the process's private memory, is shown beside it.
 * Prints a markdown table: medians (every round below), and tsx / dist ratios.
 */
import { spawn } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Progress } from '../../src/progress.ts';
import { cpuSeconds, numOpt, rssKiB } from './target.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const ROUNDS = numOpt('rounds', 5);
const PORT = numOpt('port', 3480);
const SETTLE_S = numOpt('settle', 3);
const LUN = (() => { const i = process.argv.indexOf('--lun'); return i > 0 ? process.argv[i + 1] : '1TiB'; })();
const SERVE = ['serve', '--listen', `127.0.0.1:${PORT}`, '--lun', LUN, '--admin', `127.0.0.1:${PORT + 1000}`];

interface Variant { name: string; args: string[]; env: NodeJS.ProcessEnv }
const VARIANTS: Variant[] = [
  { name: 'dist', args: ['bin/arraysim.js', ...SERVE], env: {} },
  { name: 'tsx', args: ['--import', 'tsx', 'src/cli.ts', ...SERVE], env: {} },
  { name: 'tsx, no cache', args: ['--import', 'tsx', 'src/cli.ts', ...SERVE], env: { TSX_DISABLE_CACHE: '1' } },
];

interface Sample { startMs: number; cpuMs: number; rssKiB: number; anonKiB: number; groupRssKiB: number; esbuild: boolean }

/** RssAnon of a process in KiB: its private memory, without the mapped node binary and libraries. */
function anonKiB(pid: number): number {
  const m = /RssAnon:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : NaN;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function connects(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => { s.destroy(); resolve(true); });
    s.on('error', () => resolve(false));
  });
}

/** The live processes of group `pgid`: pid and command name (zombies left out). */
function group(pgid: number): { pid: number; comm: string }[] {
  const out: { pid: number; comm: string }[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const [state, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(pgrp) === pgid && state !== 'Z') out.push({ pid: Number(d), comm: stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')) });
    } catch { /* exited meanwhile */ }
  }
  return out;
}

async function once(v: Variant): Promise<Sample> {
  if (await connects(PORT)) throw new Error(`port ${PORT} is already in use: pick another with --port`);
  const t0 = performance.now();
  const child = spawn(process.execPath, v.args, { cwd: root, env: { ...process.env, ...v.env }, detached: true, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => { stderr = (stderr + c).slice(-4000); });
  const exited = new Promise<void>((r) => child.once('close', () => r()));
  try {
    let startMs = NaN;
    while (Number.isNaN(startMs)) {
      if (child.exitCode !== null) throw new Error(`${v.name}: exited with ${child.exitCode} before listening\n${stderr}`);
      if (performance.now() - t0 > 30_000) throw new Error(`${v.name}: no listening portal after 30 s\n${stderr}`);
      if (await connects(PORT)) startMs = performance.now() - t0;
      else await sleep(5);
    }
    const cpuMs = 1000 * group(child.pid!).reduce((sum, p) => { try { return sum + cpuSeconds(p.pid); } catch { return sum; } }, 0);
    await sleep(SETTLE_S * 1000);
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`${v.name}: ended (${child.exitCode ?? child.signalCode}) while idle\n${stderr}`);
    const procs = group(child.pid!);
    const groupRss = procs.reduce((sum, p) => { try { return sum + rssKiB(p.pid); } catch { return sum; } }, 0);
    return { startMs, cpuMs, rssKiB: rssKiB(child.pid!), anonKiB: anonKiB(child.pid!), groupRssKiB: groupRss, esbuild: procs.some((p) => p.comm === 'esbuild') };
  } finally {
    try { process.kill(-child.pid!, 'SIGTERM'); } catch { /* gone */ }
    await Promise.race([exited, sleep(15_000)]);
    if (child.exitCode === null) try { process.kill(-child.pid!, 'SIGKILL'); } catch { /* gone */ }
    // Let the port and the memory go before the next start.
    for (let i = 0; i < 100 && await connects(PORT); i++) await sleep(50);
  }
}

const median = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
const mib = (kib: number) => (kib / 1024).toFixed(1);

async function main(): Promise<void> {
  // bin/arraysim.js refuses a dist/ older than the sources; build it as the tests do.
  execFileSync(process.execPath, ['tools/build.mjs', '--if-stale'], { cwd: root, stdio: 'inherit' });
  process.stderr.write(`startup: warming up (one untimed start of each)\n`);
  for (const v of VARIANTS) await once(v);
  const samples = new Map<string, Sample[]>(VARIANTS.map((v) => [v.name, []]));
  // On a terminal, a bar with the starts done and the time left (stderr; nothing when piped).
  const progress = Progress.start({ label: 'startup', total: ROUNDS * VARIANTS.length, noun: 'starts' });
  for (let r = 0; r < ROUNDS; r++) {
    for (let k = 0; k < VARIANTS.length; k++) {
      const v = VARIANTS[(r + k) % VARIANTS.length];
      const s = await once(v);
      samples.get(v.name)!.push(s);
      progress.note(`startup: round ${r + 1}/${ROUNDS} ${v.name}: ${s.startMs.toFixed(0)} ms (CPU ${s.cpuMs.toFixed(0)} ms), RSS ${mib(s.rssKiB)} MiB (group ${mib(s.groupRssKiB)} MiB${s.esbuild ? ', esbuild running' : ''})`);
      progress.tick();
    }
  }
  progress.done();

  const med = (name: string, f: (s: Sample) => number) => median(samples.get(name)!.map(f));
  const all = (name: string, f: (s: Sample) => number, fmt: (x: number) => string) => samples.get(name)!.map((s) => fmt(f(s))).join(' ');
  const rows: [string, (s: Sample) => number, (x: number) => string, string][] = [
    ['exec to listening portal (ms)', (s) => s.startMs, (x) => x.toFixed(0), 'faster'],
    ['CPU time to listening, process group (ms)', (s) => s.cpuMs, (x) => x.toFixed(0), 'faster'],
    ['idle RSS, node (MiB)', (s) => s.rssKiB, mib, 'less'],
    ['idle RssAnon, node (MiB)', (s) => s.anonKiB, mib, 'less'],
    ['idle RSS, process group (MiB)', (s) => s.groupRssKiB, mib, 'less'],
  ];
  const names = VARIANTS.map((v) => v.name);
  const lines = [
    `Start-up, ${ROUNDS} rounds, \`serve --lun ${LUN}\` with the admin API, idle RSS ${SETTLE_S} s after listening (node ${process.version}, ${new Date().toISOString().slice(0, 16)}Z)`,
    '',
    `| | ${names.join(' | ')} | tsx / dist | tsx, no cache / dist |`,
    `|---|${names.map(() => '---:').join('|')}|---:|---:|`,
  ];
  for (const [label, f, fmt, better] of rows) {
    const d = med('dist', f);
    const ratio = (name: string) => {
      const t = med(name, f);
      return better === 'faster' ? `${(t / d).toFixed(2)}x` : `${(t / d).toFixed(2)}x (dist ${((1 - d / t) * 100).toFixed(0)}% less)`;
    };
    lines.push(`| ${label} | ${names.map((n) => `${fmt(med(n, f))}<br><sub>${all(n, f, fmt)}</sub>`).join(' | ')} | ${ratio('tsx')} | ${ratio('tsx, no cache')} |`);
  }
  lines.push(`| esbuild service running at the RSS sample | ${names.map((n) => `${samples.get(n)!.filter((s) => s.esbuild).length}/${ROUNDS}`).join(' | ')} | | |`);
  console.log(lines.join('\n'));
}

main().catch((err) => { console.error(err instanceof Error ? err.message : err); process.exit(1); });
