/**
 * Images of a remote copy (CRR) from the remote site's journal, over TCP: production on 127.0.0.1,
 * the remote array on 127.0.3.21 (a plain `serve`). The remote array saves what each REPLICA
 * RECORD overwrites (src/scsi/replica-journal.ts), and enable_image_access on the remote copy asks
 * it to present the image (REPLICA CLAIM action PRESENT IMAGE); the copy's own target on
 * production (`<production IQN>-dr`) reads and writes it over the link.
 *
 * - pattern A, bookmark, pattern B over it: the image at the bookmark reads A through the image
 *   target, a write to it is seen there and nowhere else; production writes on meanwhile (every one
 *   acknowledged); after disable_image_access the remote equals production (verify), and the
 *   image `latest` reads what production holds;
 * - the window: with `undo=1MiB` an image whose undo data fell out is refused, naming the window;
 * - direct access: the remote rolls back to the image, keeps the image's writes, and after
 *   disable the synchronization makes it production again;
 * - verify --image at the bookmark: production rebuilt from the remote journal's undo data (read
 *   back with REPLICA UNDO) equals the image; against `latest`, and after a host write to the
 *   image (CLI exit 1), it diverges where it should; a point older than the window is refused;
 * - negative control: with the remote's undo capture off (replicaJournalHooks.captureUndo, a test
 *   hook) the same image reads B, not A: the first test's check fails without the undo data.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { AdminApi } from '../../src/admin/api.ts';
import { StorageArray } from '../../src/array.ts';
import { configFromFlags } from '../../src/config.ts';
import { ScsiDevice } from '../../src/initiator/index.ts';
import { replicaJournalHooks } from '../../src/scsi/replica-journal.ts';
import { formatGroupState } from '../../src/splitter/cli.ts';
import type { ConsistencyGroup, CrrCopy } from '../../src/splitter/group.ts';
import { verifyGroup } from '../../src/splitter/verify.ts';
import { cdb16 } from '../helpers/cdb.ts';
import { TestInitiator } from '../helpers/initiator.ts';
import { adminCall, crrDrained, good, pattern } from './rig.ts';

const BS = 512;
const MiB = 1 << 20;
const PROD = 'iqn.2026-11.dev.arraysim:rimg-prod';
const DR = 'iqn.2026-11.dev.arraysim:rimg-dr';
const HOST = 'iqn.2026-11.dev.arraysim:host-a';
/** The region the patterns go to: 256 KiB at LBA 0 of each LUN. */
const SPAN = 512;

interface Pair {
  prod: StorageArray; dr: StorageArray; group: ConsistencyGroup; copy: CrrCopy;
  prodAdmin: string; drAdmin: string; port: number;
  write(lun: number, lba: number, data: Buffer): Promise<void>;
  close(): Promise<void>;
}

let pair: Pair | null = null;
const devices: ScsiDevice[] = [];
afterEach(async () => {
  replicaJournalHooks.captureUndo = true;
  for (const d of devices.splice(0)) await d.close().catch(() => {});
  await pair?.close();
  pair = null;
});

async function startPair(undo?: string): Promise<Pair> {
  const log = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
  const drConfig = configFromFlags({ listen: ['127.0.3.21:0'], target: DR, lun: ['8MiB', '8MiB'] });
  const dr = await StorageArray.create(drConfig, log);
  await dr.start();
  const spec = `name=dr,remote=127.0.3.21:${drConfig.portals[0].port},target=${DR}${undo ? `,undo=${undo}` : ''}`;
  const config = configFromFlags({ listen: ['127.0.0.1:0'], target: PROD, lun: ['8MiB', '8MiB'], splitter: 'rp-vnx-flare31', remoteCopy: spec });
  const prod = await StorageArray.create(config, log);
  await prod.start();
  const group = prod.groups.get('default')!;
  await group.ready();
  const admin = new AdminApi(prod, log);
  const prodAdmin = `127.0.0.1:${await admin.listen('127.0.0.1', 0)}`;
  const drApi = new AdminApi(dr, log);
  const drAdmin = `127.0.3.21:${await drApi.listen('127.0.3.21', 0)}`;
  const host = await TestInitiator.connect(config.portals[0].port);
  await host.login(PROD, { MaxRecvDataSegmentLength: '262144', FirstBurstLength: '262144', MaxBurstLength: '16776192' }, HOST);
  for (const lun of [0, 1]) await host.scsi(lun, [0x00, 0, 0, 0, 0, 0]);
  return {
    prod, dr, group, copy: group.copy('dr') as CrrCopy, prodAdmin, drAdmin, port: config.portals[0].port,
    async write(lun, lba, data) {
      const r = await host.scsi(lun, cdb16(0x8a, lba, data.length / BS), { write: data });
      if (r.status !== 0) throw new Error(`WRITE status ${r.status}`);
    },
    async close() { host.close(); await admin.close(); await drApi.close(); await prod.stop(); await dr.stop(); },
  };
}

const drained = crrDrained;

async function imageLu(p: Pair, lun: number): Promise<ScsiDevice> {
  const d = await ScsiDevice.open(`iscsi://127.0.0.1:${p.port}/${PROD}-dr/${lun}`, { initiatorName: 'iqn.2026-11.dev.arraysim:host-b' });
  devices.push(d);
  await d.clearUnitAttentions();
  return d;
}

const verb = (p: Pair, v: string, body: object) => adminCall(p.prodAdmin, 'POST', `/v1/groups/default/${v}`, body);
const patternA = (lun: number) => pattern(SPAN * BS, 100 + lun);
const patternB = (lun: number) => pattern(SPAN * BS, 200 + lun);

const cli = (args: string[]) => promisify(execFile)(process.execPath, ['bin/arraysim.js', ...args], { cwd: join(import.meta.dirname, '../..') })
  .then((r) => ({ code: 0, out: r.stdout }), (e) => ({ code: e.code as number, out: String(e.stdout) + String(e.stderr) }));

/** A on both LUNs, bookmark `a`, B over it; everything on the remote. */
async function aThenB(p: Pair): Promise<number> {
  for (const lun of [0, 1]) await p.write(lun, 0, patternA(lun));
  const a = (await verb(p, 'bookmarks', { name: 'a' })).json.seq as number;
  for (const lun of [0, 1]) for (let k = 0; k < 4; k++) await p.write(lun, k * (SPAN / 4), patternB(lun).subarray(k * SPAN / 4 * BS, (k + 1) * SPAN / 4 * BS));
  await drained(p.group, p.copy);
  return a;
}

describe('remote copy (CRR): images from the remote site\'s journal', () => {
  it('the bookmark\'s image reads A through the image target while production writes on; after disable the remote equals production and `latest` reads it', async () => {
    pair = await startPair();
    const p = pair;
    const a = await aThenB(p);
    // The remote's claim reports its undo data and window; production's get_group_state the copy's.
    const claims = (await adminCall(p.drAdmin, 'GET', '/v1/replica-claims')).json.claims;
    expect(claims).toHaveLength(2);
    expect(claims[0].claim.undoBytes).toBeGreaterThanOrEqual(2 * SPAN * BS);
    expect(claims[0].claim.oldestImageSeq).toBeLessThanOrEqual(a);
    const state = (await adminCall(p.prodAdmin, 'GET', '/v1/groups/default')).json;
    const dr = state.copies.find((c: { name: string }) => c.name === 'dr');
    expect(dr.oldestImageSeq).toBeLessThanOrEqual(a);
    expect(dr.remoteJournal).toMatchObject({ applied: p.copy.appliedSeq, image: null });
    expect(dr.undoBytes).toBe(claims[0].claim.undoBytes);
    // get_group_state on the command line: the copy's window, from the remote.
    expect(formatGroupState(state)).toMatch(new RegExp(`remote journal: undo [\\d.]+ KiB of 256\\.0 MiB, window seq ${dr.remoteJournal.oldestImage} to ${p.copy.appliedSeq}`));

    const en = await verb(p, 'enable_image_access', { copy: 'dr', image: 'a' });
    expect(en.status, JSON.stringify(en.json)).toBe(200);
    expect(en.json.group.copies.find((c: { name: string }) => c.name === 'dr').image).toMatchObject({ seq: a, bookmark: 'a' });
    const img = [await imageLu(p, 0), await imageLu(p, 1)];
    for (const lun of [0, 1]) expect(good(await img[lun].read(0n, SPAN)).equals(patternA(lun))).toBe(true);

    // Production writes on during image access (new regions and over the pattern): every one acknowledged.
    let tag = 0;
    const writing = (async () => {
      for (let k = 0; k < 64; k++) {
        const d = pattern(16 * BS, 1000 + k);
        d.writeUInt32BE(++tag, 0);
        await p.write(k % 2, (k * 37) % 1024 + (k % 3 === 0 ? 0 : SPAN), d);
      }
    })();
    // A write to the image is seen there, and the remote volume does not change.
    const x = Buffer.alloc(8 * BS, 0x5a);
    good(await img[0].write(16n, x));
    expect(good(await img[0].read(16n, 8)).equals(x)).toBe(true);
    expect(good(await img[0].read(0n, 16)).equals(patternA(0).subarray(0, 16 * BS))).toBe(true);
    expect((await p.dr.stores[0].read(16n, 8)).equals(patternB(0).subarray(16 * BS, 24 * BS))).toBe(true);
    await writing;
    // The image did not move while production wrote.
    for (const lun of [0, 1]) expect(good(await img[lun].read(0n, SPAN)).subarray(0, 16 * BS).equals(patternA(lun).subarray(0, 16 * BS))).toBe(true);
    // get_group_state asks the remote: it presents the image, the claim released (its hosts see it too).
    const during = (await adminCall(p.prodAdmin, 'GET', '/v1/groups/default')).json.copies.find((c: { name: string }) => c.name === 'dr');
    expect(during.remoteJournal).toMatchObject({ image: a, direct: false });
    expect(during.link.claim).toBe('released');

    expect((await verb(p, 'disable_image_access', { copy: 'dr' })).status).toBe(200);
    await drained(p.group, p.copy);
    expect(p.group.transfer).toBe('active');
    for (const set of [0, 1]) expect(Buffer.compare(await p.dr.stores[set].read(0n, 16384), await p.prod.stores[set].read(0n, 16384))).toBe(0);
    expect((await verifyGroup(p.group, 'dr')).consistent).toBe(true);

    // `latest`: what production holds now (B and the writes made during the image access).
    expect((await verb(p, 'enable_image_access', { copy: 'dr', image: 'latest' })).status).toBe(200);
    for (const d of img) await d.clearUnitAttentions(); // MEDIUM MAY HAVE CHANGED (28/00)
    for (const lun of [0, 1]) expect(good(await img[lun].read(0n, 2048)).equals(await p.prod.stores[lun].read(0n, 2048))).toBe(true);
    expect((await verb(p, 'disable_image_access', { copy: 'dr' })).status).toBe(200);
  }, 90_000);

  it('verify --image at an older bookmark: production rebuilt with the remote journal\'s undo data (REPLICA UNDO) equals the image; another point, and a host write to the image, diverge', async () => {
    pair = await startPair();
    const p = pair;
    const a = await aThenB(p);
    expect((await verb(p, 'enable_image_access', { copy: 'dr', image: 'a' })).status).toBe(200);
    expect(p.copy.image!.rolledFrom).toBeGreaterThan(a);
    // The image's own point (bookmark a): the image shows production at a.
    const own = await verb(p, 'verify', { copy: 'dr', image: true });
    expect(own.status, JSON.stringify(own.json)).toBe(200);
    expect(own.json).toMatchObject({ consistent: true, seq: a, image: { at: 'a', accessedSeq: a, mode: 'logged-access' } });
    expect(own.json.regions.compared).toBeGreaterThan(0);
    // Negative control: against production now (B), the same image differs over both patterns.
    const latest = await verb(p, 'verify', { copy: 'dr', image: true, at: 'latest' });
    expect(latest.json.consistent).toBe(false);
    expect(latest.json.diverged.map((d: { lun: number; lba: string; lbaEnd: string }) => [d.lun, d.lba, d.lbaEnd])).toEqual([[0, '0', String(SPAN - 1)], [1, '0', String(SPAN - 1)]]);
    // A host write to the image: those blocks, and only they, differ from production at a (CLI: exit 1).
    const img = await imageLu(p, 0);
    good(await img.write(16n, Buffer.alloc(8 * BS, 0x5a)));
    const r = await cli(['verify', '--admin', p.prodAdmin, '--copy', 'dr', '--image', 'a', '--json']);
    expect(r.code, r.out).toBe(1);
    expect(JSON.parse(r.out).diverged.map((d: { lun: number; lba: string; lbaEnd: string }) => [d.lun, d.lba, d.lbaEnd])).toEqual([[0, '16', '23']]);
    expect((await verb(p, 'disable_image_access', { copy: 'dr' })).status).toBe(200);
  }, 90_000);

  it('negative control: with the remote\'s undo capture off, the bookmark\'s image reads B, not A', async () => {
    replicaJournalHooks.captureUndo = false;
    pair = await startPair();
    const p = pair;
    await aThenB(p);
    expect((await verb(p, 'enable_image_access', { copy: 'dr', image: 'a' })).status).toBe(200);
    const img = await imageLu(p, 0);
    const got = good(await img.read(0n, SPAN));
    expect(got.equals(patternA(0))).toBe(false);
    expect(got.equals(patternB(0))).toBe(true);
  }, 60_000);

  it('the window: with undo=1MiB an image whose undo data fell out is refused, naming the window; one inside it is reached', async () => {
    pair = await startPair('1MiB');
    const p = pair;
    // 1 MiB written, then bookmark, then overwritten twice: 2 MiB of undo data for a 1 MiB limit.
    const first = pattern(MiB, 1);
    await p.write(0, 0, first);
    const a = (await verb(p, 'bookmarks', { name: 'a' })).json.seq as number;
    await p.write(0, 0, pattern(MiB, 2));
    const b = (await verb(p, 'bookmarks', { name: 'b' })).json.seq as number;
    await p.write(0, 0, pattern(MiB, 3));
    await drained(p.group, p.copy);
    const dr = (await adminCall(p.prodAdmin, 'GET', '/v1/groups/default')).json.copies.find((c: { name: string }) => c.name === 'dr');
    expect(dr.remoteJournal.undoLimit).toBe(MiB);
    expect(dr.remoteJournal.undoBytes).toBeLessThanOrEqual(MiB);
    expect(dr.oldestImageSeq).toBeGreaterThan(a);
    const refused = await verb(p, 'enable_image_access', { copy: 'dr', image: 'a' });
    expect(refused.status).toBe(400);
    expect(refused.json.message ?? JSON.stringify(refused.json)).toMatch(new RegExp(`older than copy dr's protection window at the remote array: images from seq ${dr.oldestImageSeq}`));
    // Nothing changed: the copy is distributed to, and the image inside the window is reached.
    expect(p.copy.access).toBe('no-access');
    expect((await verb(p, 'enable_image_access', { copy: 'dr', image: 'b' })).status).toBe(200);
    const img = await imageLu(p, 0);
    expect(good(await img.read(0n, MiB / BS)).equals(pattern(MiB, 2))).toBe(true);
    // verify --image reads the remote's undo data back: one 1 MiB entry, more than REPLICA UNDO's
    // first 1 MiB page holds (the next page is asked with the length the remote names).
    const v = await verb(p, 'verify', { copy: 'dr', image: true });
    expect(v.json, JSON.stringify(v.json)).toMatchObject({ consistent: true, seq: b });
    // A point whose undo data fell out of the remote's window: refused, naming it (not a false divergence).
    const old = await verb(p, 'verify', { copy: 'dr', image: true, at: 'a' });
    expect(old.status).toBe(400);
    expect(JSON.stringify(old.json)).toMatch(/older than copy dr's protection window at the remote array/);
    expect((await verb(p, 'disable_image_access', { copy: 'dr' })).status).toBe(200);
  }, 60_000);

  it('direct access: the remote rolls back to the image with the image\'s writes; after disable the synchronization makes it production again', async () => {
    pair = await startPair();
    const p = pair;
    await aThenB(p);
    expect((await verb(p, 'enable_image_access', { copy: 'dr', image: 'a' })).status).toBe(200);
    const img = await imageLu(p, 0);
    const x = Buffer.alloc(8 * BS, 0x6b);
    good(await img.write(40n, x));
    const mode = await verb(p, 'set_image_access_mode', { copy: 'dr', mode: 'direct' });
    expect(mode.status, JSON.stringify(mode.json)).toBe(200);
    const want = Buffer.from(patternA(0));
    x.copy(want, 40 * BS);
    expect((await p.dr.stores[0].read(0n, SPAN)).equals(want)).toBe(true);
    expect(good(await img.read(0n, SPAN)).equals(want)).toBe(true);
    // The history is gone: no older image until the copy is synchronized again.
    expect((await verb(p, 'disable_image_access', { copy: 'dr' })).status).toBe(200);
    const end = Date.now() + 30_000;
    while (p.copy.needsSweep || p.copy.syncing || p.group.transfer !== 'active') {
      if (Date.now() > end) throw new Error('the synchronization did not end');
      await new Promise((r) => setTimeout(r, 10));
    }
    await p.write(1, 0, pattern(8 * BS, 9));
    await drained(p.group, p.copy);
    expect((await verifyGroup(p.group, 'dr')).consistent).toBe(true);
    const refused = await verb(p, 'enable_image_access', { copy: 'dr', image: 'a' });
    expect(refused.status).toBe(400);
  }, 90_000);
});
