/**
 * libiscsi conformance runner: starts the target under test for each LUN configuration, runs
 * `iscsi-test-cu -d -S -t PATTERN URL [URL2]` against it, parses every test's outcome, merges the
 * configurations and writes results/conformance/{summary.md,summary.json} plus the raw logs.
 * Closing line: `conformance: N passed, M failed, K skipped`; exit status 1 if anything failed, a
 * target did not start, or nothing ran. See tools/conformance/README.md.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { mergeRuns, parseLog, selectTests, suiteCounts, type MergedTest, type TestResult } from './parse.ts';

const DEFAULT_IQN = 'iqn.2026-11.dev.arraysim:default';

interface ConfigSpec {
  name: string; lun: string; portals: number;
  /** '*' = the -t pattern as given */ tests: string;
  /** tests left out of this configuration (a selectTests pattern), each for a stated reason */
  exclude?: string;
  /**
   * The target's side of some iSCSI keys (arraysim's YAML `iscsi.keys`): the target is started
   * with a generated --config file holding them, the target and the LUN. Every login of the run
   * must then show them in the target's "login complete" log lines (see checkKeys).
   */
  keys?: { HeaderDigest?: 'CRC32C' };
}
interface ConfigRun {
  /** tests the tool runs here whose outcomes are not counted (ConfigSpec.exclude) */
  excluded?: Set<string>;
  name: string;
  /** the -t given to iscsi-test-cu */
  pattern?: string;
  lun?: string;
  urls: string[];
  started: boolean;
  error?: string;
  exitCode?: number | null;
  signal?: string | null;
  timedOut?: boolean;
  durationSec?: number;
  log?: string;
  targetLog?: string;
  counts?: { passed: number; failed: number; skipped: number };
  cunitSummary?: unknown;
  warnings: string[];
  tests: TestResult[];
  expected?: string[];
}

const argv = yargs(hideBin(process.argv))
  .scriptName('tools/conformance/run.sh')
  .usage('$0 [options]: run libiscsi iscsi-test-cu against arraysim (or another target) and summarise')
  .option('test', { alias: 't', type: 'string', default: 'ALL', describe: 'iscsi-test-cu -t pattern: FAMILY[.SUITE[.TEST]][,...], fnmatch globs' })
  .option('target-cmd', { type: 'string', describe: 'command that starts the target; default $ARRAYSIM_CMD or "node bin/arraysim.js". "{args}" is replaced by the serve arguments, else "serve ARGS" is appended' })
  .option('url', { type: 'string', array: true, describe: 'target already running: its iSCSI URL(s) (second = multipath portal); no target is started' })
  .option('config-name', { type: 'string', default: 'external', describe: 'name of the configuration in --url mode' })
  .option('configs', { type: 'string', default: 'default,removable,readonly,physical4k,digest', describe: 'configurations to run (comma-separated subset)' })
  .option('ports', { type: 'string', default: '3310-3319', describe: 'port range for the portals (loopback only)' })
  .option('host', { type: 'string', default: '127.0.0.1', describe: 'portal address; must be loopback' })
  .option('iqn', { type: 'string', default: DEFAULT_IQN, describe: 'target IQN' })
  .option('lun-size', { type: 'string', default: '256MiB', describe: 'LUN size for the default and removable configurations' })
  .option('readonly-size', { type: 'string', default: '64MiB', describe: 'LUN size for the readonly configuration' })
  .option('removable-tests', { type: 'string', default: '*', describe: 'tests for the removable configuration, intersected with -t ("*" = all of -t)' })
  .option('physical4k-tests', {
    type: 'string',
    default: 'ALL.CompareAndWrite,ALL.WriteSame10,ALL.WriteSame16,ALL.Unmap,ALL.ReadCapacity16,ALL.Inquiry',
    describe: 'tests for the physical4k configuration (512-byte blocks in 4096-byte physical blocks): the suites that skip when LBPPB < 2. GetLBAStatus is left out: its UnmapSingle test queries LBA i+1 and expects the first descriptor at i+LBPPB, which only holds for LBPPB = 1',
  })
  .option('default-exclude', {
    type: 'string',
    default: 'ALL.Sanitize.Reset',
    describe: 'tests the two-portal configurations (default, digest) do not count. Sanitize.Reset: with a second portal, libiscsi 1.19 Sanitize.Reservations takes a RESERVE(6) on the shared multipath session and never releases it, so the next test (Reset) meets a reservation conflict on any correct target; it runs in the single-portal removable configuration',
  })
  .option('digest-tests', { type: 'string', default: '*', describe: 'tests for the digest configuration (the target only accepts HeaderDigest=CRC32C, so libiscsi, which offers "None,CRC32C", runs with header digests), intersected with -t' })
  .option('readonly-tests', { type: 'string', default: 'ALL.ReadOnly', describe: 'tests for the readonly configuration, intersected with -t ("*" = all of -t; libiscsi\'s write tests fail by design on a write-protected LUN)' })
  .option('lun-number', { type: 'number', default: 0, describe: 'LUN number in the URL (tgt keeps LUN 0 for its controller: use 1)' })
  .option('timeout', { type: 'number', default: 15, describe: 'minutes allowed for one iscsi-test-cu run' })
  .option('start-timeout', { type: 'number', default: 60, describe: 'seconds to wait for every portal to accept TCP connections' })
  .option('results', { type: 'string', default: 'results/conformance', describe: 'results directory' })
  .option('shim', { type: 'boolean', default: true, describe: 'build skipshim.c (needs cc) to see skips that only call CU_PASS' })
  .option('parse-only', { type: 'string', array: true, describe: 'do not run anything: re-summarise saved logs (NAME.log files; config name = file name)' })
  .strict()
  .parseSync();

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const resultsDir = path.resolve(root, argv.results);
const pattern = argv.test;
const children = new Set<ChildProcess>();

function say(msg: string): void { process.stderr.write(`[conformance] ${msg}\n`); }

function isLoopback(host: string): boolean {
  return /^127\.\d+\.\d+\.\d+$/.test(host) || host === 'localhost' || host === '::1' || host === '[::1]';
}

function portRange(spec: string): number[] {
  const m = /^(\d+)(?:-(\d+))?$/.exec(spec);
  if (!m) throw new Error(`--ports: expected N or N-M, got ${spec}`);
  const a = +m[1]!, b = m[2] ? +m[2] : a;
  return Array.from({ length: b - a + 1 }, (_, i) => a + i);
}

function canBind(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen({ host, port, exclusive: true }, () => s.close(() => resolve(true)));
  });
}

function canConnect(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    const done = (ok: boolean) => { s.destroy(); resolve(ok); };
    s.setTimeout(1000, () => done(false));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const shq = (s: string) => (/^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);

function toolListing(): string {
  const r = spawnSync('iscsi-test-cu', ['-l'], { encoding: 'utf8' });
  if (r.error) throw new Error(`cannot run iscsi-test-cu (package libiscsi-bin): ${r.error.message}`);
  return r.stdout;
}

function toolVersion(): string {
  const r = spawnSync('dpkg-query', ['-W', '-f', '${Version}', 'libiscsi-bin'], { encoding: 'utf8' });
  return r.status === 0 ? `libiscsi-bin ${r.stdout.trim()}` : 'iscsi-test-cu (version unknown)';
}

function buildShim(): string | undefined {
  if (!argv.shim) return undefined;
  const out = path.join(resultsDir, '.skipshim.so');
  const r = spawnSync('cc', ['-shared', '-fPIC', '-O2', '-o', out, path.join(root, 'tools/conformance/skipshim.c'), '-ldl'], { encoding: 'utf8' });
  if (r.status !== 0) {
    say(`no skip shim (${r.error?.message ?? r.stderr.trim().split('\n')[0]}): skips that only call CU_PASS will count as passes`);
    return undefined;
  }
  return out;
}

/** Start the target for one configuration; resolves when every portal accepts TCP connections. */
async function startTarget(cfg: ConfigSpec, ports: number[], run: ConfigRun): Promise<ChildProcess | undefined> {
  const listen = ports.flatMap((p) => ['--listen', `${argv.host}:${p}`]);
  const argList = [...listen, '--admin', 'none'];
  if (cfg.keys) {
    // JSON is YAML: the target, its LUN and the keys in one generated file (--listen still
    // gives the portals; serve refuses --target/--lun beside --config).
    const file = path.join(resultsDir, `${cfg.name}.config.yaml`);
    fs.writeFileSync(file, JSON.stringify({ iscsi: { keys: cfg.keys }, targets: [{ name: argv.iqn, luns: [cfg.lun] }] }, null, 2) + '\n');
    argList.push('--config', file);
  } else {
    argList.push('--target', argv.iqn, '--lun', cfg.lun);
  }
  const args = argList.map(shq).join(' ');
  const template = argv['target-cmd'] ?? process.env.ARRAYSIM_CMD ?? 'node bin/arraysim.js';
  const cmd = template.includes('{args}') ? template.replaceAll('{args}', args) : `${template} serve ${args}`;
  run.targetLog = path.join(resultsDir, `${cfg.name}.target.log`);
  const fd = fs.openSync(run.targetLog, 'w');
  fs.writeSync(fd, `$ ${cmd}\n`);
  say(`${cfg.name}: starting target: ${cmd}`);
  const child = spawn('bash', ['-c', cmd], {
    cwd: root, detached: true, stdio: ['ignore', fd, fd],
    env: { ...process.env, CONFORMANCE_CONFIG: cfg.name, CONFORMANCE_PORTS: ports.join(','), CONFORMANCE_LUN: cfg.lun, CONFORMANCE_IQN: argv.iqn },
  });
  fs.closeSync(fd);
  children.add(child);
  let exited: string | undefined;
  child.once('exit', (code, sig) => { exited = `exited with ${sig ?? code}`; children.delete(child); });
  const deadline = Date.now() + argv['start-timeout'] * 1000;
  const ready = new Set<number>();
  while (Date.now() < deadline && !exited) {
    for (const p of ports) if (!ready.has(p) && (await canConnect(argv.host, p))) ready.add(p);
    if (ready.size === ports.length) return child;
    await sleep(200);
  }
  run.error = exited
    ? `target ${exited} before its portals were up (see ${path.relative(root, run.targetLog)})`
    : `target did not accept connections on ${ports.filter((p) => !ready.has(p)).join(',')} within ${argv['start-timeout']} s`;
  await stopTarget(child);
  return undefined;
}

/**
 * A configuration with target-side keys proves something only if the logins used them: every
 * "login complete" line of arraysim's log for a Normal session must show the header digest on.
 * A target that does not log in arraysim's format (tgt.sh) gets a warning instead.
 */
function checkKeys(cfg: ConfigSpec, run: ConfigRun): void {
  if (!cfg.keys?.HeaderDigest || !run.targetLog) return;
  const logins = fs.readFileSync(run.targetLog, 'utf8').split('\n').filter((l) => l.includes('"msg":"login complete"') && l.includes('"type":"Normal"'));
  const without = logins.filter((l) => !l.includes('"headerDigest":true')).length;
  if (logins.length === 0) run.warnings.push('no arraysim login lines in the target log: could not check that the header digest was used');
  else if (without > 0) run.error = `${without} of ${logins.length} logins without the header digest the configuration requires`;
  else say(`${cfg.name}: all ${logins.length} logins used CRC32C header digests`);
}

/** SIGTERM the target's process group, SIGKILL it after 15 s. */
async function stopTarget(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise<void>((r) => child.once('exit', () => r()));
  try { process.kill(-child.pid!, 'SIGTERM'); } catch { /* already gone */ }
  const timer = setTimeout(() => { try { process.kill(-child.pid!, 'SIGKILL'); } catch { /* gone */ } }, 15_000);
  await gone;
  clearTimeout(timer);
}

async function runTool(name: string, urls: string[], shim: string | undefined, run: ConfigRun): Promise<void> {
  run.log = path.join(resultsDir, `${name}.log`);
  run.pattern ??= pattern;
  const args = ['-d', '-S', '-t', run.pattern, ...urls];
  const fd = fs.openSync(run.log, 'w');
  say(`${name}: iscsi-test-cu ${args.join(' ').slice(0, 400)}`);
  const t0 = Date.now();
  const env = { ...process.env, ...(shim ? { LD_PRELOAD: shim } : {}) };
  // stdout and stderr share one file descriptor: lines keep the order the tool wrote them in.
  // Line-buffered stdout (stdbuf; the shim does it too): a killed or crashed run keeps every verdict it printed.
  const stdbuf = spawnSync('stdbuf', ['--version']).status === 0;
  const child = stdbuf
    ? spawn('stdbuf', ['-oL', 'iscsi-test-cu', ...args], { stdio: ['ignore', fd, fd], env })
    : spawn('iscsi-test-cu', args, { stdio: ['ignore', fd, fd], env });
  fs.closeSync(fd);
  children.add(child);
  const timer = setTimeout(() => { run.timedOut = true; child.kill('SIGKILL'); }, argv.timeout * 60_000);
  await new Promise<void>((resolve) => {
    child.once('error', (err) => { run.error = `cannot run iscsi-test-cu: ${err.message}`; resolve(); });
    child.once('exit', (code, sig) => { run.exitCode = code; run.signal = sig; resolve(); });
  });
  clearTimeout(timer);
  children.delete(child);
  run.durationSec = Math.round((Date.now() - t0) / 100) / 10;
}

function parseRun(run: ConfigRun, expected: string[]): void {
  const text = run.log && fs.existsSync(run.log) ? fs.readFileSync(run.log, 'utf8') : '';
  let why = run.error ?? 'the tool exited before reaching this test';
  if (run.timedOut) why = `timed out after ${argv.timeout} min`;
  else if (run.signal) why = `iscsi-test-cu killed by ${run.signal}`;
  else if (!run.error && run.exitCode !== undefined && run.exitCode !== 0 && run.exitCode !== 1) why = `iscsi-test-cu exited with ${run.exitCode} (set-up failed: see ${path.basename(run.log ?? '')})`;
  const parsed = parseLog(text, expected, why);
  run.tests = run.excluded ? parsed.tests.filter((t) => !run.excluded!.has(t.name)) : parsed.tests;
  run.warnings.push(...parsed.warnings);
  run.cunitSummary = parsed.cunitSummary;
  if (!parsed.cunitSummary && run.started) run.warnings.push(`no CUnit Run Summary in ${path.basename(run.log ?? '')}: ${why}`);
  run.counts = {
    passed: run.tests.filter((t) => t.outcome === 'pass').length,
    failed: run.tests.filter((t) => t.outcome === 'fail').length,
    skipped: run.tests.filter((t) => t.outcome === 'skip').length,
  };
}

function shortPattern(p: string): string {
  const parts = p.split(',');
  return parts.length > 4 ? `${parts.slice(0, 3).join(',')},… (${parts.length} tests)` : p;
}

function md(s: string): string { return s.replace(/\|/g, '\\|').replace(/\n/g, ' '); }

function writeSummary(runs: ConfigRun[], merged: MergedTest[], meta: Record<string, unknown>): { passed: number; failed: number; skipped: number } {
  const totals = {
    passed: merged.filter((t) => t.outcome === 'pass').length,
    failed: merged.filter((t) => t.outcome === 'fail').length,
    skipped: merged.filter((t) => t.outcome === 'skip').length,
  };
  const suites = suiteCounts(merged);
  const json = {
    ...meta,
    generatedAt: new Date().toISOString(),
    pattern,
    totals: { ...totals, total: merged.length },
    configs: runs.map(({ tests: _t, expected: _e, excluded, ...r }) => ({ ...r, excluded: excluded && [...excluded], log: r.log && path.relative(root, r.log), targetLog: r.targetLog && path.relative(root, r.targetLog) })),
    suites,
    skips: merged.filter((t) => t.outcome === 'skip').map((t) => ({ test: t.name, reasons: t.skipReasons })),
    failures: merged.filter((t) => t.outcome === 'fail').map((t) => ({ test: t.name, failures: t.failures })),
    tests: merged,
  };
  fs.writeFileSync(path.join(resultsDir, 'summary.json'), JSON.stringify(json, null, 2) + '\n');

  const L: string[] = [];
  L.push(`## libiscsi conformance (${md(String(meta.tool))}, \`-t ${md(pattern)}\`)`, '');
  L.push(`**${totals.passed} passed, ${totals.failed} failed, ${totals.skipped} skipped** of ${merged.length} distinct tests, merged over ${runs.length} configuration(s): a test passes if it passed without a skip in at least one configuration and failed in none.`, '');
  L.push('| configuration | LUN | portals | tests | passed | skipped | failed | time |', '| --- | --- | --- | --- | ---: | ---: | ---: | ---: |');
  for (const r of runs) {
    const c = r.counts ?? { passed: 0, failed: 0, skipped: 0 };
    const t = r.durationSec === undefined ? '-' : `${r.durationSec} s`;
    L.push(`| ${md(r.name)}${r.error ? ` (${md(r.error)})` : ''}${r.timedOut ? ' (timed out)' : ''} | ${md(r.lun ?? '-')} | ${r.urls.length} | ${md(shortPattern(r.pattern ?? pattern))} | ${c.passed} | ${c.skipped} | ${c.failed} | ${t} |`);
  }
  L.push('', '| suite | passed | skipped | failed | total |', '| --- | ---: | ---: | ---: | ---: |');
  for (const s of suites) L.push(`| ${md(s.suite)} | ${s.passed} | ${s.skipped} | ${s.failed} | ${s.total} |`);
  L.push(`| **all** | **${totals.passed}** | **${totals.skipped}** | **${totals.failed}** | **${merged.length}** |`);
  const fails = merged.filter((t) => t.outcome === 'fail');
  if (fails.length) {
    L.push('', '### Failures', '', '| test | configuration | message |', '| --- | --- | --- |');
    for (const t of fails) for (const f of t.failures) L.push(`| ${md(t.name)} | ${md(f.config)} | ${md(f.messages.slice(0, 3).join('; '))}${f.messages.length > 3 ? ' …' : ''} |`);
  }
  const skips = merged.filter((t) => t.outcome === 'skip');
  if (skips.length) {
    L.push('', '### Skips', '', '| test | reason (configuration) |', '| --- | --- |');
    for (const t of skips) {
      const byReason = new Map<string, string[]>();
      for (const s of t.skipReasons) (byReason.get(s.reason) ?? byReason.set(s.reason, []).get(s.reason)!).push(s.config);
      const text = [...byReason].map(([r, cs]) => `${r} (${cs.join(', ')})`).join('; ') || '(no reason printed)';
      L.push(`| ${md(t.name)} | ${md(text)} |`);
    }
  }
  const warn = runs.flatMap((r) => r.warnings.map((w) => `${r.name}: ${w}`));
  if (warn.length) L.push('', '### Runner warnings', '', ...warn.map((w) => `- ${md(w)}`));
  fs.writeFileSync(path.join(resultsDir, 'summary.md'), L.join('\n') + '\n');
  return totals;
}

async function main(): Promise<number> {
  fs.mkdirSync(resultsDir, { recursive: true });
  const listing = toolListing();
  const expected = selectTests(listing, pattern);
  if (!expected.length) { say(`-t ${pattern} selects no test (see iscsi-test-cu -l)`); return 2; }
  const runs: ConfigRun[] = [];
  const meta: Record<string, unknown> = { tool: toolVersion() };

  if (argv['parse-only']) {
    for (const f of argv['parse-only']) {
      const run: ConfigRun = { name: path.basename(f).replace(/\.log$/, ''), urls: [], started: true, warnings: [], tests: [], log: path.resolve(f) };
      parseRun(run, expected);
      runs.push(run);
    }
  } else {
    if (!isLoopback(argv.host)) { say(`--host ${argv.host} is not a loopback address`); return 2; }
    const shim = buildShim();
    meta.skipShim = Boolean(shim);
    if (argv.url?.length) {
      for (const u of argv.url) if (!isLoopback(new URL(u.replace(/^iscsi:/, 'http:')).hostname)) { say(`${u}: not a loopback address`); return 2; }
      const run: ConfigRun = { name: argv['config-name'], urls: argv.url.slice(0, 2), started: true, warnings: [], tests: [] };
      await runTool(run.name, run.urls, shim, run);
      parseRun(run, expected);
      runs.push(run);
    } else {
      const all: ConfigSpec[] = [
        { name: 'default', lun: argv['lun-size'], portals: 2, tests: '*', exclude: argv['default-exclude'] },
        { name: 'removable', lun: `${argv['lun-size']},removable`, portals: 1, tests: argv['removable-tests'] },
        { name: 'readonly', lun: `${argv['readonly-size']},readonly`, portals: 1, tests: argv['readonly-tests'] },
        { name: 'physical4k', lun: `${argv['lun-size']},physical=4096`, portals: 1, tests: argv['physical4k-tests'] },
        // Two portals like the default configuration (MultipathIO then runs over digests too, and
        // a single-portal run of ALL waits ~80 s longer in libiscsi), so the same exclusion.
        { name: 'digest', lun: argv['lun-size'], portals: 2, tests: argv['digest-tests'], exclude: argv['default-exclude'], keys: { HeaderDigest: 'CRC32C' } },
      ];
      const wanted = argv.configs.split(',').map((s) => s.trim()).filter(Boolean);
      for (const w of wanted) if (!all.some((c) => c.name === w)) { say(`unknown configuration ${w}`); return 2; }
      let pool = portRange(argv.ports);
      for (const cfg of all.filter((c) => wanted.includes(c.name))) {
        // The configuration's own selection intersected with -t, passed to the tool as a list of names.
        let mine = expected;
        let toolPattern = pattern;
        let excluded: Set<string> | undefined;
        if (cfg.tests !== '*') {
          const own = new Set(selectTests(listing, cfg.tests));
          mine = expected.filter((n) => own.has(n));
          toolPattern = mine.join(',');
        }
        if (cfg.exclude) {
          // The tool still runs the excluded tests, in its natural order (a list of names would
          // reorder the suites, and libiscsi's tests depend on what ran before them); their
          // outcomes in this configuration are not counted.
          const out = new Set(selectTests(listing, cfg.exclude));
          mine = mine.filter((n) => !out.has(n));
          excluded = out;
        }
        if (!mine.length) { say(`${cfg.name}: no test of -t ${pattern} applies (its selection is ${cfg.tests}); not run`); continue; }
        const run: ConfigRun = { name: cfg.name, lun: cfg.lun, pattern: toolPattern, urls: [], started: false, warnings: [], tests: [] };
        run.expected = mine;
        run.excluded = excluded;
        runs.push(run);
        const ports: number[] = [];
        while (ports.length < cfg.portals && pool.length) {
          const p = pool.shift()!;
          if (await canBind(argv.host, p)) ports.push(p); else say(`port ${p} is busy, skipping it`);
        }
        if (ports.length < cfg.portals) run.error = `not enough free ports in ${argv.ports}`;
        const child = run.error ? undefined : await startTarget(cfg, ports, run);
        if (child) {
          run.started = true;
          run.urls = ports.map((p) => `iscsi://${argv.host}:${p}/${argv.iqn}/${argv['lun-number']}`);
          await runTool(cfg.name, run.urls, shim, run);
          await stopTarget(child);
          if (cfg.keys) checkKeys(cfg, run);
        }
        if (run.error) say(`${cfg.name}: ${run.error}`);
        parseRun(run, mine);
        const c = run.counts!;
        say(`${cfg.name}: ${c.passed} passed, ${c.failed} failed, ${c.skipped} skipped${run.durationSec !== undefined ? ` in ${run.durationSec} s` : ''}`);
      }
    }
  }

  const merged = mergeRuns(runs.map((r) => ({ config: r.name, tests: r.tests })));
  const totals = writeSummary(runs, merged, meta);
  for (const r of runs) for (const w of r.warnings) say(`warning: ${r.name}: ${w}`);
  say(`summary: ${path.relative(root, path.join(resultsDir, 'summary.md'))}, ${path.relative(root, path.join(resultsDir, 'summary.json'))}`);
  console.log(`conformance: ${totals.passed} passed, ${totals.failed} failed, ${totals.skipped} skipped`);
  const ranSomething = runs.some((r) => r.tests.some((t) => t.outcome !== 'fail' || !t.failures[0]?.startsWith('not run')));
  const broken = runs.some((r) => r.error || r.timedOut);
  return totals.failed > 0 || broken || !ranSomething || merged.length === 0 ? 1 : 0;
}

async function cleanupAndExit(code: number): Promise<never> {
  for (const c of [...children]) {
    if (c.spawnargs[0] === 'bash') await stopTarget(c); else c.kill('SIGKILL');
  }
  process.exit(code);
}
process.on('SIGINT', () => void cleanupAndExit(130));
process.on('SIGTERM', () => void cleanupAndExit(143));

main().then(
  (code) => cleanupAndExit(code),
  async (err) => { say(`error: ${err instanceof Error ? err.stack ?? err.message : String(err)}`); await cleanupAndExit(2); },
);
