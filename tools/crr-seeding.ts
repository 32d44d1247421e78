/**
 * The field notes' dd seeding ("RecoverPoint Initial Synchronization with DD") over a remote copy
 * held to a WAN rate, with two arraysim processes on loopback (production 127.0.0.1, DR 127.0.3.1),
 * the group configured in YAML with `startTransfer: false` and a remote copy at `rate`, and the
 * notes' own rp commands through `arraysim rp`. The procedure is the lab's (src/lab/seeding.ts,
 * ddSeeding; `arraysim lab run crr-dd-seeding` runs it in process at 32 MiB): this tool is its
 * long form, at the notes' scale.
 *
 *   npx tsx tools/crr-seeding.ts [--size 256MiB] [--rate 50Mbit] [--changed 0.06] [--no-seed]
 *
 * --no-seed skips the reverse dd (the control: the DR volume is empty, so the sweep sends every
 * region, at the link's rate).
 *
 * Needs dist/ (npm run build). Prints each step and a summary; exits 1 if verify does not pass.
 */
import { execFile, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { ScsiDevice } from '../src/initiator/index.ts';
import { ddSeeding, formatSeeding, SEED_COPY, SEED_GROUP } from '../src/lab/seeding.ts';
import { parseSize } from '../src/store/lun-spec.ts';
import { parseRate } from '../src/splitter/rate.ts';

const run = promisify(execFile);
const ROOT = join(import.meta.dirname, '..');
const { values: o } = parseArgs({ options: { size: { type: 'string', default: '256MiB' }, rate: { type: 'string', default: '50Mbit' }, changed: { type: 'string', default: '0.06' }, 'no-seed': { type: 'boolean', default: false } } });
const SIZE = parseSize(o.size!);
const RATE = parseRate(o.rate!);
const CHANGED = Number(o.changed);
const port = () => 20000 + Math.floor(Math.random() * 40000);
const P1 = port(); const P2 = port(); const A = port();
const PROD = 'iqn.2026-11.dev.arraysim:rpsync';
const DR = 'iqn.2026-11.dev.arraysim:rpsync-dr';
const dir = mkdtempSync(join(tmpdir(), 'crr-seeding-'));
const t0 = performance.now();
const say = (m: string) => console.log(`[${((performance.now() - t0) / 1000).toFixed(1).padStart(6)} s] ${m}`);

writeFileSync(join(dir, 'prod.yaml'), `portals:
  - listen: 127.0.0.1:${P1}
targets:
  - name: ${PROD}
    luns: [${o.size}]
splitters:
  - name: rp
    spec: rp-vnx-flare31
groups:
  - name: ${SEED_GROUP}
    splitter: rp
    startTransfer: false
    copies:
      - name: ${SEED_COPY}
        remote: 127.0.3.1:${P2}
        target: ${DR}
        rate: ${o.rate}
`);

const children: ChildProcess[] = [];
function serve(args: string[], ready: RegExp): Promise<void> {
  const c = spawn(process.execPath, [join(ROOT, 'bin/arraysim.js'), 'serve', ...args, '--log-level', 'info'], { stdio: ['ignore', 'ignore', 'pipe'] });
  children.push(c);
  return new Promise((resolve, reject) => {
    let buf = '';
    const t = setTimeout(() => reject(new Error(`serve ${args.join(' ')}: not ready: ${buf.slice(-2000)}`)), 60_000);
    c.stderr!.on('data', (d: Buffer) => { buf += d.toString(); if (ready.test(buf)) { clearTimeout(t); resolve(); } });
    c.on('exit', (code) => reject(new Error(`serve exited ${code}: ${buf.slice(-2000)}`)));
  });
}
const cli = (...args: string[]) => run(process.execPath, [join(ROOT, 'bin/arraysim.js'), ...args, '--admin', `127.0.0.1:${A}`]);

try {
  await serve(['--listen', `127.0.3.1:${P2}`, '--target', DR, '--lun', o.size!, '--admin', 'none'], /portal listening/);
  await serve(['--config', join(dir, 'prod.yaml'), '--admin', `127.0.0.1:${A}`], /admin API listening/);
  say(`production 127.0.0.1:${P1} and DR 127.0.3.1:${P2} up; ${o.size} LUN; link rate ${o.rate}`);
  const prod = await ScsiDevice.open(`iscsi://127.0.0.1:${P1}/${PROD}/0`, { initiatorName: 'iqn.2026-11.dev.arraysim:host-prod' });
  await prod.clearUnitAttentions();
  const r = await ddSeeding({
    prod,
    async openDr() {
      const d = await ScsiDevice.open(`iscsi://127.0.3.1:${P2}/${DR}/0`, { initiatorName: 'iqn.2026-11.dev.arraysim:host-dr' });
      await d.clearUnitAttentions();
      return d;
    },
    async rp(words) { await cli('rp', ...words.split(' ')); say(`rp ${words}`); },
    async startTransferWait() { await cli('rp', 'start_transfer', `group=${SEED_GROUP}`, '--wait'); say(`rp start_transfer group=${SEED_GROUP} --wait`); },
    async state() {
      console.log((await cli('rp', 'get_group_state', `group=${SEED_GROUP}`)).stdout.trimEnd());
      const g = JSON.parse((await cli('rp', 'get_group_state', `group=${SEED_GROUP}`, '--json')).stdout);
      return g.groups?.[0] ?? g;
    },
    async verify() {
      const v = await cli('verify', '--group', SEED_GROUP).then((x) => ({ code: 0, out: x.stdout }), (e) => ({ code: e.code as number, out: String(e.stdout) }));
      return { consistent: v.code === 0, line: `exit ${v.code}: ${v.out.trim().split('\n')[0]}` };
    },
  }, { size: SIZE, changed: CHANGED, seed: !o['no-seed'], say });
  await prod.close();
  console.log(`\nsummary: volume ${o.size}, link ${o.rate} (${(RATE / 1e6).toFixed(2)} MB/s)`);
  console.log(`  ${formatSeeding(r, RATE)}`);
  const full = SIZE / RATE;
  console.log(`  saved ${(full - r.syncMs / 1000).toFixed(1)} s and ${((r.volumeBytes - r.bytesSent) / 2 ** 20).toFixed(1)} MiB against a full sync`);
  process.exitCode = r.consistent ? 0 : 1;
} finally {
  for (const c of children) c.kill('SIGTERM');
  rmSync(dir, { recursive: true, force: true });
}
