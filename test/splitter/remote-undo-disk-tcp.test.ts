/**
 * The remote site's copy journal on disk (src/scsi/replica-journal.ts, `replicaJournal:`), over
 * TCP: production on 127.0.0.1 (memory LUNs, a remote copy `dr`), the remote array on 127.0.3.23
 * with file-backed LUNs and a replica journal folder. Pattern A, bookmark `a`, pattern B over it;
 * the remote array restarts; production writes on; enable_image_access at `a` on the remote copy
 * reads A, and REPLICA SEQUENCE (get_group_state) reports the window from the log taken back.
 *
 * - a clean stop of the remote array (StorageArray.stop, in this process);
 * - SIGKILL of a remote array run as a child process (`arraysim serve --config`), while
 *   production writes: records whose undo entry was durable but whose write had not reached the
 *   volume are rolled back at the claim, and the copy equals production after the drain;
 * - direct access drops the history on disk too: after a restart the image before it is refused,
 *   one taken after the synchronization is reached;
 * - negative controls: without the folder, and with the reload skipped (replicaJournalHooks.reload,
 *   a test hook), the same image is refused as outside the window (HTTP 400).
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { AdminApi } from '../../src/admin/api.ts';
import { StorageArray } from '../../src/array.ts';
import { configFromFlags } from '../../src/config.ts';
import type { ArrayConfig } from '../../src/config.ts';
import { ScsiDevice } from '../../src/initiator/index.ts';
import { replicaJournalHooks } from '../../src/scsi/replica-journal.ts';
import type { ConsistencyGroup, CrrCopy } from '../../src/splitter/group.ts';
import { verifyGroup } from '../../src/splitter/verify.ts';
import { cdb16 } from '../helpers/cdb.ts';
import { TestInitiator } from '../helpers/initiator.ts';
import { adminCall, crrDrained, good, pattern } from './rig.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const BS = 512;
const PROD = 'iqn.2026-12.dev.arraysim:rud-prod';
const DR = 'iqn.2026-12.dev.arraysim:rud-dr';
const DR_HOST = '127.0.3.23';
/** The region the patterns go to: 256 KiB at LBA 0 of each LUN. */
const SPAN = 512;

const log = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  replicaJournalHooks.reload = true;
  for (const f of cleanups.splice(0).reverse()) await f();
});

async function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, host, () => { const p = (s.address() as net.AddressInfo).port; s.close(() => resolve(p)); });
    s.on('error', reject);
  });
}

/** The remote array: in this process (restart = stop, create again) or a child process (restart = SIGKILL, spawn again). */
interface Remote { port: number; restart(): Promise<void> }

function inProcessRemote(dir: string, journal: boolean, port: number): Remote {
  const config: ArrayConfig = {
    ...configFromFlags({ listen: [`${DR_HOST}:${port}`], target: DR, lun: [0, 1].map((i) => `file:${path.join(dir, `r${i}.img`)},size=8MiB`) }),
    ...(journal ? { replicaJournal: path.join(dir, 'replica-journal') } : {}),
  };
  let dr: StorageArray | null = null;
  const start = async () => { dr = await StorageArray.create(config, log); await dr.start(); };
  cleanups.push(async () => { await dr?.stop(); });
  return {
    port,
    async restart() {
      if (!dr) { await start(); return; }
      await dr.stop();
      dr = null;
      await start();
    },
  };
}

function childRemote(dir: string, port: number, adminPort: number): Remote & { kill(): void; admin: string } {
  const config = path.join(dir, 'dr.yaml');
  writeFileSync(config, [
    'portals:', `  - listen: ${DR_HOST}:${port}`,
    'admin:', `  listen: ${DR_HOST}:${adminPort}`,
    'log:', '  level: warn',
    'replicaJournal: replica-journal',
    'targets:', `  - name: ${DR}`, '    luns:',
    ...[0, 1].map((i) => `      - file:${path.join(dir, `r${i}.img`)},size=8MiB`),
    '',
  ].join('\n'));
  let child: ChildProcess | null = null;
  const up = async () => {
    child = spawn(process.execPath, [path.join(ROOT, 'bin/arraysim.js'), 'serve', '--config', config], { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'] });
    const end = Date.now() + 20_000;
    for (;;) {
      try { if ((await fetch(`http://${DR_HOST}:${adminPort}/v1/status`)).ok) return; } catch { /* not listening yet */ }
      if (child.exitCode !== null) throw new Error(`remote array exited ${child.exitCode}`);
      if (Date.now() > end) throw new Error('remote array did not come up');
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const kill = () => { child?.kill('SIGKILL'); };
  cleanups.push(async () => {
    const c = child as ChildProcess | null;
    if (c && c.exitCode === null && c.signalCode === null) { c.kill('SIGTERM'); await new Promise((r) => c.once('exit', r)); }
  });
  return {
    port, kill, admin: `${DR_HOST}:${adminPort}`,
    async restart() {
      const c = child as ChildProcess | null;
      if (c && c.exitCode === null && c.signalCode === null) { c.kill('SIGKILL'); await new Promise((r) => c.once('exit', r)); }
      await up();
    },
  };
}

interface Prod {
  group: ConsistencyGroup; copy: CrrCopy; admin: string; port: number;
  write(lun: number, lba: number, data: Buffer): Promise<void>;
}

async function startProduction(drPort: number): Promise<Prod> {
  const config = configFromFlags({
    listen: ['127.0.0.1:0'], target: PROD, lun: ['8MiB', '8MiB'], splitter: 'rp-vnx-flare31',
    remoteCopy: `name=dr,remote=${DR_HOST}:${drPort},target=${DR}`,
  });
  const prod = await StorageArray.create(config, log);
  await prod.start();
  const group = prod.groups.get('default')!;
  await group.ready();
  const api = new AdminApi(prod, log);
  const admin = `127.0.0.1:${await api.listen('127.0.0.1', 0)}`;
  const host = await TestInitiator.connect(config.portals[0].port);
  await host.login(PROD, { MaxRecvDataSegmentLength: '262144', FirstBurstLength: '262144', MaxBurstLength: '16776192' }, 'iqn.2026-12.dev.arraysim:host-a');
  for (const lun of [0, 1]) await host.scsi(lun, [0x00, 0, 0, 0, 0, 0]);
  cleanups.push(async () => { host.close(); await api.close(); await prod.stop(); });
  return {
    group, copy: group.copy('dr') as CrrCopy, admin, port: config.portals[0].port,
    async write(lun, lba, data) {
      const r = await host.scsi(lun, cdb16(0x8a, lba, data.length / BS), { write: data });
      if (r.status !== 0) throw new Error(`WRITE status ${r.status}`);
    },
  };
}

const drained = crrDrained;

const verb = (p: Prod, v: string, body: object) => adminCall(p.admin, 'POST', `/v1/groups/default/${v}`, body);
const patternA = (lun: number) => pattern(SPAN * BS, 100 + lun);
const patternB = (lun: number) => pattern(SPAN * BS, 200 + lun);
const drState = async (p: Prod) => (await adminCall(p.admin, 'GET', '/v1/groups/default')).json.copies.find((c: { name: string }) => c.name === 'dr');

/** A on both LUNs, bookmark `a`, B over it (in four writes a LUN); everything on the remote. */
async function aThenB(p: Prod): Promise<number> {
  for (const lun of [0, 1]) await p.write(lun, 0, patternA(lun));
  const a = (await verb(p, 'bookmarks', { name: 'a' })).json.seq as number;
  for (const lun of [0, 1]) for (let k = 0; k < 4; k++) await p.write(lun, k * (SPAN / 4), patternB(lun).subarray(k * SPAN / 4 * BS, (k + 1) * SPAN / 4 * BS));
  await drained(p.group, p.copy);
  return a;
}

/** enable_image_access at `a` on the remote copy; on 200, the image's data through the copy's target. */
async function imageAt(p: Prod, image: string): Promise<{ status: number; json: any; data?: Buffer[] }> {
  const en = await verb(p, 'enable_image_access', { copy: 'dr', image });
  if (en.status !== 200) return en;
  const data: Buffer[] = [];
  for (const lun of [0, 1]) {
    const d = await ScsiDevice.open(`iscsi://127.0.0.1:${p.port}/${PROD}-dr/${lun}`, { initiatorName: 'iqn.2026-12.dev.arraysim:host-b' });
    await d.clearUnitAttentions();
    data.push(good(await d.read(0n, SPAN)));
    await d.close();
  }
  expect((await verb(p, 'disable_image_access', { copy: 'dr' })).status).toBe(200);
  return { ...en, data };
}

function tmp(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'arraysim-rud-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** The clean-stop scenario; returns the bookmark's image (or the refusal). */
async function cleanRestart(journal: boolean) {
  const dir = tmp();
  const dr = inProcessRemote(dir, journal, await freePort(DR_HOST));
  await dr.restart();
  const p = await startProduction(dr.port);
  const a = await aThenB(p);
  const before = await drState(p);
  expect(before.oldestImageSeq).toBeLessThanOrEqual(a);
  await dr.restart();
  // Production writes on after the restart (the link logs in and claims again).
  await p.write(0, 2048, pattern(64 * BS, 7));
  await drained(p.group, p.copy);
  return { p, a, before, image: await imageAt(p, 'a') };
}

describe('remote copy (CRR): the remote site\'s undo log on disk', () => {
  it('clean restart of the remote array: the bookmark\'s image from before it still reads A, and the window is the one before the restart', async () => {
    const { p, a, before, image } = await cleanRestart(true);
    expect(image.status, JSON.stringify(image.json)).toBe(200);
    for (const lun of [0, 1]) expect(image.data![lun].equals(patternA(lun))).toBe(true);
    // REPLICA SEQUENCE after the restart: the window starts where it did before it.
    const after = await drState(p);
    expect(after.remoteJournal.oldestImage).toBe(before.remoteJournal.oldestImage);
    expect(after.oldestImageSeq).toBeLessThanOrEqual(a);
    expect(after.remoteJournal.undoBytes).toBeGreaterThan(before.remoteJournal.undoBytes);
    // verify --image at the bookmark: production rebuilt at `a` from the undo data taken back (REPLICA UNDO) equals the image.
    expect((await verb(p, 'enable_image_access', { copy: 'dr', image: 'a' })).status).toBe(200);
    const v = await verb(p, 'verify', { copy: 'dr', image: true });
    expect(v.json, JSON.stringify(v.json)).toMatchObject({ consistent: true, seq: a });
    expect((await verb(p, 'disable_image_access', { copy: 'dr' })).status).toBe(200);
    await drained(p.group, p.copy);
    expect((await verifyGroup(p.group, 'dr')).consistent).toBe(true);
  }, 90_000);

  it('negative control: without the folder, the same image is refused as outside the window (400)', async () => {
    const { image } = await cleanRestart(false);
    expect(image.status).toBe(400);
    expect(JSON.stringify(image.json)).toMatch(/protection window at the remote array|holds no image history/);
  }, 90_000);

  it('negative control: with the reload skipped (test hook), the same image is refused (400)', async () => {
    replicaJournalHooks.reload = false;
    const { image } = await cleanRestart(true);
    expect(image.status).toBe(400);
  }, 90_000);

  it('direct access drops the history on disk too: after a restart the bookmark before it is refused, one after the synchronization is reached', async () => {
    const dir = tmp();
    const dr = inProcessRemote(dir, true, await freePort(DR_HOST));
    await dr.restart();
    const p = await startProduction(dr.port);
    await aThenB(p);
    expect((await verb(p, 'enable_image_access', { copy: 'dr', image: 'a' })).status).toBe(200);
    expect((await verb(p, 'set_image_access_mode', { copy: 'dr', mode: 'direct' })).status).toBe(200);
    expect((await verb(p, 'disable_image_access', { copy: 'dr' })).status).toBe(200);
    const end = Date.now() + 30_000;
    while (p.copy.needsSweep || p.copy.syncing || p.group.transfer !== 'active') {
      if (Date.now() > end) throw new Error('the synchronization did not end');
      await new Promise((r) => setTimeout(r, 10));
    }
    for (const lun of [0, 1]) await p.write(lun, 0, patternA(lun));
    expect((await verb(p, 'bookmarks', { name: 'c' })).status).toBe(200);
    await p.write(0, 0, patternB(0));
    await drained(p.group, p.copy);
    await dr.restart();
    await p.write(1, 4096, pattern(8 * BS, 3));
    await drained(p.group, p.copy);
    expect((await imageAt(p, 'a')).status).toBe(400);
    const c = await imageAt(p, 'c');
    expect(c.status, JSON.stringify(c.json)).toBe(200);
    for (const lun of [0, 1]) expect(c.data![lun].equals(patternA(lun))).toBe(true);
  }, 90_000);

  it('SIGKILL of the remote array (a child process) during writes: the bookmark\'s image reads A after the restart, and the copy equals production after the drain', async () => {
    const dir = tmp();
    const dr = childRemote(dir, await freePort(DR_HOST), await freePort(DR_HOST));
    await dr.restart();
    const p = await startProduction(dr.port);
    const a = await aThenB(p);
    // Writes go on at QD1 (overlapping the pattern region and beyond it) while the remote is killed.
    let stop = false;
    let acked = 0;
    const writing = (async () => {
      for (let k = 0; !stop; k++) {
        await p.write(k % 2, (k * 24) % 4096, pattern(24 * BS, 5000 + k));
        acked++;
        // Paced: hundreds of records reach the journal while the remote restarts, not tens of thousands.
        await new Promise((r) => setTimeout(r, 2));
      }
    })();
    while (acked < 40) await new Promise((r) => setTimeout(r, 5));
    dr.kill();
    await new Promise((r) => setTimeout(r, 100));
    await dr.restart();
    // The link failure stopped the transfer (error): the operator starts it again.
    if (p.group.transfer !== 'active') expect((await verb(p, 'start_transfer', {})).status).toBe(200);
    const more = acked + 40;
    while (acked < more) await new Promise((r) => setTimeout(r, 5));
    stop = true;
    await writing;
    await drained(p.group, p.copy);
    expect((await verifyGroup(p.group, 'dr')).consistent).toBe(true);
    // The restarted remote array took its undo log back: its claims show the folder and a window from before `a`.
    const claims = (await adminCall(dr.admin, 'GET', '/v1/replica-claims')).json.claims;
    expect(claims).toHaveLength(2);
    for (const c of claims) {
      expect(c.claim.undoLog).toContain(path.join(dir, 'replica-journal'));
      expect(c.claim.oldestImageSeq).toBeLessThanOrEqual(a);
    }
    // The writes after `a` overwrote the pattern region on production; the image at `a` is A.
    const image = await imageAt(p, 'a');
    expect(image.status, JSON.stringify(image.json)).toBe(200);
    for (const lun of [0, 1]) expect(image.data![lun].equals(patternA(lun))).toBe(true);
    expect((await drState(p)).oldestImageSeq).toBeLessThanOrEqual(a);
  }, 120_000);
});
