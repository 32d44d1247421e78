/**
 * The field notes' dd seeding ("RecoverPoint Initial Synchronization with DD") over a remote copy
 * held to a WAN rate: two arraysim processes on loopback (production 127.0.0.1, DR 127.0.3.1), the
 * group configured in YAML with `startTransfer: false` and a remote copy at `rate`, the notes' own
 * rp commands through `arraysim rp`, dd at bs=512k through the project's initiator, and the
 * figures the notes give: what the initial synchronization sent against the volume, and how long
 * it took against a full sync at the same rate.
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
import { mkdtempSync, writeFileSync, openSync, readSync, writeSync, closeSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { ScsiDevice } from '../src/initiator/index.ts';
import { parseSize } from '../src/store/lun-spec.ts';
import { parseRate } from '../src/splitter/rate.ts';

const run = promisify(execFile);
const ROOT = join(import.meta.dirname, '..');
const { values: o } = parseArgs({ options: { size: { type: 'string', default: '256MiB' }, rate: { type: 'string', default: '50Mbit' }, changed: { type: 'string', default: '0.06' }, 'no-seed': { type: 'boolean', default: false } } });
const SIZE = parseSize(o.size!);
const RATE = parseRate(o.rate!);
const CHANGED = Number(o.changed);
const BS = 512;
const PIECE = 512 * 1024; // dd bs=512k
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
  - name: RPSyncGroup
    splitter: rp
    startTransfer: false
    copies:
      - name: DR_RPSyncGroup
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
const rp = async (...args: string[]) => {
  const r = await run(process.execPath, [join(ROOT, 'bin/arraysim.js'), 'rp', ...args, '--admin', `127.0.0.1:${A}`]);
  say(`rp ${args.join(' ')}`);
  return r.stdout;
};
/** dd between a device and a file at bs=512k, through the project's initiator. */
async function dd(dev: ScsiDevice, file: string, dir: 'to-file' | 'from-file'): Promise<void> {
  const fd = openSync(file, dir === 'to-file' ? 'w' : 'r');
  const buf = Buffer.alloc(PIECE);
  for (let off = 0; off < SIZE; off += PIECE) {
    if (dir === 'to-file') {
      const r = await dev.read(BigInt(off / BS), PIECE / BS, { into: buf });
      if (r.kind !== 'good') throw new Error(`READ at ${off}: ${r.kind}`);
      writeSync(fd, buf, 0, PIECE, off);
    } else {
      readSync(fd, buf, 0, PIECE, off);
      const r = await dev.write(BigInt(off / BS), buf);
      if (r.kind !== 'good') throw new Error(`WRITE at ${off}: ${r.kind}`);
    }
  }
  closeSync(fd);
}

try {
  await serve(['--listen', `127.0.3.1:${P2}`, '--target', DR, '--lun', o.size!, '--admin', 'none'], /portal listening/);
  await serve(['--config', join(dir, 'prod.yaml'), '--admin', `127.0.0.1:${A}`], /admin API listening/);
  say(`production 127.0.0.1:${P1} and DR 127.0.3.1:${P2} up; ${o.size} LUN; link rate ${o.rate}`);
  const prod = await ScsiDevice.open(`iscsi://127.0.0.1:${P1}/${PROD}/0`, { initiatorName: 'iqn.2026-11.dev.arraysim:host-prod' });
  await prod.clearUnitAttentions();
  // 1. The data is migrated first: the whole volume written (the group's transfer is paused: markers).
  const fill = Buffer.alloc(PIECE);
  for (let off = 0; off < SIZE; off += PIECE) {
    for (let i = 0; i < PIECE; i += 4) fill.writeUInt32BE(((off + i) * 2654435761) >>> 0, i);
    const r = await prod.write(BigInt(off / BS), fill);
    if (r.kind !== 'good') throw new Error(`fill at ${off}`);
  }
  say(`1. ${o.size} written to production`);
  // 2-3. The group exists with the transfer paused; clear_markers: DR is declared identical.
  await rp('enable_group', 'group=RPSyncGroup', 'start_transfer=no');
  await rp('clear_markers', 'group=RPSyncGroup');
  // 4. dd of production to an image.
  const img = join(dir, 'PHYSICALDRIVE1.img');
  await dd(prod, img, 'to-file');
  say(`4. dd if=production of=${img} bs=512k`);
  // 5. "Roughly two days elapsed": production changes in CHANGED of its 1 MiB regions.
  const regions = SIZE / (1 << 20);
  const changed = Math.max(1, Math.round(regions * CHANGED));
  for (let k = 0; k < changed; k++) {
    const region = Math.floor((k * regions) / changed);
    const r = await prod.write(BigInt((region << 20) / BS + (k % 64) * 8), Buffer.alloc(4096, k + 1));
    if (r.kind !== 'good') throw new Error('change');
  }
  say(`5. production changed in ${changed} of ${regions} regions (the days between the dd and the restore)`);
  // 6. Image access on the DR copy, then direct access.
  await rp('enable_image_access', 'group=RPSyncGroup', 'copy=DR_RPSyncGroup', 'image=latest');
  await rp('set_image_access_mode', 'group=RPSyncGroup', 'copy=DR_RPSyncGroup', 'mode=direct');
  // 7. The reverse dd at the DR site, onto the DR array's volume.
  const dr = await ScsiDevice.open(`iscsi://127.0.3.1:${P2}/${DR}/0`, { initiatorName: 'iqn.2026-11.dev.arraysim:host-dr' });
  await dr.clearUnitAttentions();
  if (!o['no-seed']) await dd(dr, img, 'from-file');
  await dr.close();
  say(o['no-seed'] ? '7. (--no-seed: no reverse dd; the DR volume is empty)' : `7. dd if=${img} of=DR volume bs=512k`);
  // 8. Disable image access, start the transfer, and wait for the initialization.
  await rp('disable_image_access', 'group=RPSyncGroup', 'copy=DR_RPSyncGroup', 'start_transfer=no');
  const s0 = performance.now();
  await rp('start_transfer', 'group=RPSyncGroup', '--wait');
  const initMs = performance.now() - s0;
  const state = await rp('get_group_state', 'group=RPSyncGroup');
  console.log(state.trimEnd());
  const g = JSON.parse(await rp('get_group_state', 'group=RPSyncGroup', '--json'));
  const status = g.groups?.[0] ?? g;
  const init = status.initialization;
  const link = status.copies[0].link;
  // The initialization's own duration, from the group's state changes (init → active), without the CLI's start-up.
  const h = status.history as Array<{ to: string; time: string }>;
  const began = [...h].reverse().find((e) => e.to === 'init');
  const ended = [...h].reverse().find((e) => e.to === 'active');
  const syncMs = began && ended ? Date.parse(ended.time) - Date.parse(began.time) : NaN;
  const v = await run(process.execPath, [join(ROOT, 'bin/arraysim.js'), 'verify', '--admin', `127.0.0.1:${A}`, '--group', 'RPSyncGroup']).then((r) => ({ code: 0, out: r.stdout }), (e) => ({ code: e.code as number, out: String(e.stdout) }));
  say(`verify: exit ${v.code}: ${v.out.trim().split('\n')[0]}`);
  const full = SIZE / RATE;
  console.log(`\nsummary: volume ${o.size}, link ${o.rate} (${(RATE / 1e6).toFixed(2)} MB/s)`);
  console.log(`  initial synchronization: ${(init.bytesSent / 2 ** 20).toFixed(1)} MiB of ${(init.volumeBytes / 2 ** 20).toFixed(1)} MiB sent (${init.percent}%), ${init.regions} regions of ${init.regionsCompared} compared, ${(syncMs / 1000).toFixed(2)} s (init → active; rp start_transfer --wait returned after ${(initMs / 1000).toFixed(1)} s)`);
  console.log(`  link since start: ${(link.bytesSent / 2 ** 20).toFixed(2)} MiB sent, ${(link.bytesReceived / 2 ** 20).toFixed(2)} MiB received, ${link.commands} commands`);
  console.log(`  a full sync at ${o.rate} would take ${full.toFixed(1)} s; saved ${(full - syncMs / 1000).toFixed(1)} s and ${((init.volumeBytes - init.bytesSent) / 2 ** 20).toFixed(1)} MiB`);
  await prod.close();
  process.exitCode = v.code === 0 ? 0 : 1;
} finally {
  for (const c of children) c.kill('SIGTERM');
  rmSync(dir, { recursive: true, force: true });
}
