/**
 * The host against a target nobody here wrote: Debian's tgtd (package tgt) on loopback, which has
 * no EXTENDED COPY, so `host clone` must fall back to READ+WRITE and keep the data whole. tgtd runs
 * with a private control port (never the default socket) and backing files in /dev/shm. Skipped,
 * with the reason printed, when tgtd is not installed or does not come up.
 */
import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ScsiDevice } from '../../src/initiator/index.ts';
import { EsxHost } from '../../src/host/host.ts';
import { runHost } from '../../src/host/cli.ts';
import { fill, pattern, readBack } from './rig.ts';

const IQN = 'iqn.2026-12.dev.arraysim:host-tgt';

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => { const p = (s.address() as net.AddressInfo).port; s.close(() => resolve(p)); });
    s.on('error', reject);
  });
}

let tgtd: ChildProcess | undefined;
let ctl = 0;
let port = 0;
const files: string[] = [];
let why = '';

function adm(...args: string[]): void {
  execFileSync('tgtadm', ['-C', String(ctl), '--lld', 'iscsi', ...args], { stdio: 'pipe' });
}

beforeAll(async () => {
  try {
    execFileSync('which', ['tgtd'], { stdio: 'pipe' });
  } catch {
    why = 'tgtd is not installed (apt-get install tgt)';
    return;
  }
  port = await freePort();
  ctl = 20000 + (port % 10000);
  tgtd = spawn('tgtd', ['-f', '-C', String(ctl), '--iscsi', `portal=127.0.0.1:${port}`], { stdio: 'ignore' });
  let up = false;
  for (let i = 0; i < 50 && !up; i++) {
    try { adm('--op', 'show', '--mode', 'sys'); up = true; } catch { await new Promise((r) => setTimeout(r, 100)); }
  }
  if (!up) { why = `tgtd did not come up on control port ${ctl}`; return; }
  adm('--op', 'new', '--mode', 'target', '--tid', '1', '-T', IQN);
  for (const lun of [1, 2]) {
    const f = `/dev/shm/arraysim-host-tgt-${process.pid}-${lun}.img`;
    fs.writeFileSync(f, '');
    fs.truncateSync(f, 64 * 1024 * 1024);
    files.push(f);
    adm('--op', 'new', '--mode', 'logicalunit', '--tid', '1', '--lun', String(lun), '-b', f);
  }
  adm('--op', 'bind', '--mode', 'target', '--tid', '1', '-I', 'ALL');
}, 30000);

afterAll(async () => {
  if (tgtd && tgtd.exitCode === null) {
    try {
      adm('--op', 'delete', '--mode', 'target', '--tid', '1', '--force');
      execFileSync('tgtadm', ['-C', String(ctl), '--op', 'delete', '--mode', 'system'], { stdio: 'pipe' });
    } catch { /* killed below */ }
    for (let i = 0; i < 30 && tgtd.exitCode === null; i++) await new Promise((r) => setTimeout(r, 100));
    if (tgtd.exitCode === null) tgtd.kill('SIGKILL');
  }
  for (const f of files) fs.rmSync(f, { force: true });
});

describe('host against tgtd (no EXTENDED COPY)', () => {
  it('clone falls back to READ+WRITE, Clone unsupported, data equal', async (ctx) => {
    if (why) { console.warn(`skipped: ${why}`); ctx.skip(); return; }
    const src = await ScsiDevice.open(`iscsi://127.0.0.1:${port}/${IQN}/1`);
    try {
      await src.clearUnitAttentions();
      const dst = src.on(2);
      await dst.clearUnitAttentions();
      const data = pattern(9000 * 512, 11);
      await fill(src, 0n, data);
      const r = await new EsxHost().clone({ from: src, to: dst, lba: 0n, toLba: 0n, blocks: 9000 });
      expect(r.outcome).toBe('done');
      expect(r.offloadedBlocks).toBe(0);
      expect(r.softwareBlocks).toBe(9000);
      expect(r.fallbacks[0]).toMatchObject({ primitive: 'Clone', cause: 'refused', fromLba: '0' });
      expect(r.fallbacks[0].why).toMatch(/ILLEGAL REQUEST|COPY ABORTED/);
      expect(r.vaai.every((v) => v.Clone.status === 'unsupported')).toBe(true);
      expect((await readBack(dst, 0n, 9000)).equals(data)).toBe(true);
    } finally {
      await src.close();
    }
  });

  it('the CLI verb says the same in JSON', async (ctx) => {
    if (why) { console.warn(`skipped: ${why}`); ctx.skip(); return; }
    const out: string[] = [];
    const u = `iscsi://127.0.0.1:${port}/${IQN}`;
    const code = await runHost({ verb: 'clone', from: `${u}/1`, to: `${u}/2`, lba: '0', 'to-lba': '20000', blocks: '2048', set: [], json: true, hold: 0, heartbeat: 1000, 'ats-only': false }, (s) => out.push(s));
    expect(code).toBe(0);
    const rep = JSON.parse(out.join(''));
    expect(rep).toMatchObject({ outcome: 'done', offloadedBlocks: 0, softwareBlocks: 2048 });
    console.log(`tgtd answered EXTENDED COPY with: ${rep.fallbacks[0].why}`);
  });
});
