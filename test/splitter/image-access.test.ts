/**
 * Image access over TCP, with the project's initiator (ScsiDevice) on production's target and on
 * the copy's own target `<production IQN>-<copy>`: NOT READY (02/04/03) while image access is
 * disabled; logged access at a bookmark shows the bookmark's data, host writes to it are undone
 * on disable and the copy catches up with production; direct access keeps the writes, drops the
 * copy's history and sweeps it afterwards; virtual access (the replica not rolled: a read map of
 * the undo data, host writes in an overlay); verify --image and its negative controls; disable_copy
 * while the other copy goes on; each change of a copy's access or state is an event on
 * GET /v1/events.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pino from 'pino';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { AdminApi } from '../../src/admin/api.ts';
import { StorageArray } from '../../src/array.ts';
import { configFromFile } from '../../src/config.ts';
import { ScsiDevice } from '../../src/initiator/index.ts';
import type { ScsiResult } from '../../src/initiator/index.ts';
import type { ConsistencyGroup } from '../../src/splitter/group.ts';
import { compileValidator } from '../../src/admin/validation.ts';
import { ARRAY_EVENT } from '../../src/admin/routes/events.ts';
import { cdb16 } from '../helpers/cdb.ts';
import { SseClient } from '../admin/rig.ts';
import { adminCall, pattern } from './rig.ts';

const run = promisify(execFile);
const TARGET = 'iqn.2026-11.dev.arraysim:image';
const dir = mkdtempSync(join(tmpdir(), 'arraysim-image-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Rig { array: StorageArray; admin: AdminApi; addr: string; port: number; group: ConsistencyGroup; devices: ScsiDevice[] }
let rig: Rig | undefined;
afterEach(async () => {
  for (const d of rig?.devices ?? []) await d.close();
  await rig?.admin.close();
  await rig?.array.stop();
  rig = undefined;
});

/** Two 8 MiB LUNs in group G with copies `copies` (memory journal, or file journal and replicas), transfer started. */
async function start(copies = ['local'], fileJournal = false): Promise<Rig> {
  const base = join(dir, `image${Math.random()}`);
  const yaml = `${base}.yaml`;
  const journal = fileJournal ? `, journal: {type: file, path: ${base}.journal, size: 64MiB}` : '';
  writeFileSync(yaml, `portals: [{listen: "127.0.0.1:0"}]
targets:
  - name: ${TARGET}
    luns: [8MiB, 8MiB]
splitters:
  - {name: s, spec: rp-vnx-flare31}
groups:
  - {name: G, splitter: s, copies: [${copies.join(', ')}]${journal}}
`);
  const config = configFromFile(yaml);
  const log = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
  const array = await StorageArray.create(config, log);
  await array.start();
  const admin = new AdminApi(array, log);
  const addr = `127.0.0.1:${await admin.listen('127.0.0.1', 0)}`;
  const group = array.groups.get('G')!;
  await group.ready();
  return { array, admin, addr, port: config.portals[0].port, group, devices: [] };
}

async function open(r: Rig, target: string, lun = 0): Promise<ScsiDevice> {
  const d = await ScsiDevice.open(`iscsi://127.0.0.1:${r.port}/${target}/${lun}`, { initiatorName: 'iqn.2026-11.dev.arraysim:host-a' });
  r.devices.push(d);
  await d.clearUnitAttentions();
  return d;
}

const good = <T>(r: ScsiResult<T>): T => {
  if (r.kind !== 'good') throw new Error(`not GOOD: ${JSON.stringify(r, (_k, v) => (typeof v === 'bigint' ? String(v) : v))}`);
  return r.value;
};
const kcq = (r: ScsiResult<unknown>): number[] => (r.kind === 'check-condition' && r.sense ? [r.sense.key, r.sense.asc, r.sense.ascq] : []);
const NOT_READY_MANUAL = [0x02, 0x04, 0x03];
const KiB = 1024;
/** Buffers compared with equals() (vitest's toEqual walks a MiB byte by byte for seconds). */
const same = (got: Buffer, want: Buffer): void => {
  if (!got.equals(want)) expect.fail(`${got.length} bytes differ from the ${want.length} expected (first at ${got.findIndex((b, i) => b !== want[i])})`);
};

async function verb(r: Rig, v: string, body: object): Promise<any> {
  const res = await adminCall(r.addr, 'POST', `/v1/groups/G/${v}`, body);
  if (res.status !== 200) throw new Error(`${v}: ${res.status} ${JSON.stringify(res.json)}`);
  return res.json;
}

/** The transfer is active and every enabled copy has applied the whole journal (fails at once if the transfer stopped with an error). */
async function caughtUp(g: ConsistencyGroup): Promise<void> {
  await g.ready();
  const why = () => `transfer ${g.transfer} (${g.history.at(-1)?.reason}), journal next seq ${g.journal.nextSeq}, copies ${JSON.stringify(g.status().copies)}`;
  for (let i = 0; i < 2000; i++) {
    if (g.transfer === 'active' && g.copies.every((c) => !c.enabled || (c.distributing && c.appliedSeq === g.journal.nextSeq - 1))) return;
    if (g.transfer === 'error') throw new Error(`copies cannot catch up: ${why()}`);
    await new Promise((res) => setTimeout(res, 10));
  }
  throw new Error(`copies never caught up: ${why()}`);
}

describe('the copy\'s target', () => {
  it('is <production IQN>-<copy>, has the same LUNs, and answers NOT READY 02/04/03 while image access is disabled', async () => {
    rig = await start(['DR_Copy']);
    const copyTarget = `${TARGET}-dr-copy`;
    const d = await open(rig, copyTarget, 1);
    expect(good(await d.reportLuns())).toEqual([0, 1]);
    expect(good(await d.inquiry())).toBeTruthy(); // INQUIRY answers a LU that is not ready
    expect(kcq(await d.testUnitReady())).toEqual(NOT_READY_MANUAL);
    expect(kcq(await d.readCapacity16())).toEqual(NOT_READY_MANUAL);
    // READ(16) and WRITE(16) as raw CDBs (the typed ones size the transfer with READ CAPACITY first).
    expect(kcq(await d.raw({ cdb: cdb16(0x88, 0, 8), dataIn: 4 * KiB }))).toEqual(NOT_READY_MANUAL);
    expect(kcq(await d.raw({ cdb: cdb16(0x8a, 0, 8), dataOut: Buffer.alloc(4 * KiB) }))).toEqual(NOT_READY_MANUAL);
    const sense = await d.raw({ cdb: Buffer.from([0x03, 0, 0, 0, 252, 0]), dataIn: 252 });
    const s = good(sense);
    expect([s[2] & 0x0f, s[12], s[13]]).toEqual(NOT_READY_MANUAL); // REQUEST SENSE says the same
    // Discovery lists it.
    const { array } = rig;
    expect(array.scsiTargets.has(copyTarget)).toBe(true);
  });
});

/** A file journal and file replicas: the image at a bookmark, a host write to it, disable, caught up. */
async function fileJournalImage(mode: 'logged' | 'virtual'): Promise<void> {
  rig = await start(['local'], true);
  const g = rig.group;
  await g.startTransfer('test');
  await caughtUp(g);
  const prod = await open(rig, TARGET, 0);
  const a = pattern(64 * KiB, 11);
  good(await prod.write(0n, a));
  await verb(rig, 'bookmarks', { name: 'f' });
  good(await prod.write(16n, pattern(8 * KiB, 12)));
  good(await prod.writeSame(64n, 32, pattern(512, 14)));
  await caughtUp(g);
  await verb(rig, 'enable_image_access', { copy: 'local', image: 'f', mode });
  const img = await open(rig, `${TARGET}-local`, 0);
  same(good(await img.read(0n, 128)), a);
  expect((await adminCall(rig.addr, 'POST', '/v1/groups/G/verify', { image: true })).json).toMatchObject({ consistent: true });
  good(await img.write(0n, pattern(4 * KiB, 13)));
  expect((await adminCall(rig.addr, 'POST', '/v1/groups/G/verify', { image: true })).json).toMatchObject({ consistent: false });
  await verb(rig, 'disable_image_access', { copy: 'local' });
  await caughtUp(g);
  expect((await adminCall(rig.addr, 'POST', '/v1/groups/G/verify', {})).json).toMatchObject({ consistent: true });
}

describe('logged access', () => {
  it('shows the bookmark\'s data; host writes to the image are undone on disable and the copy catches up', async () => {
    rig = await start();
    const g = rig.group;
    const prod0 = await open(rig, TARGET, 0);
    const prod1 = prod0.on(1);
    await prod1.clearUnitAttentions();
    // Before the bookmark: 64 KiB at LBA 0 on LUN 0, 32 KiB at LBA 4096 on LUN 1.
    const a0 = pattern(64 * KiB, 1);
    const a1 = pattern(32 * KiB, 2);
    good(await prod0.write(0n, a0));
    good(await prod1.write(4096n, a1));
    const bm = await verb(rig, 'bookmarks', { name: 'before' });
    // After it: overwrite part of both, and write somewhere new.
    const b0 = pattern(16 * KiB, 3);
    good(await prod0.write(8n, b0));
    good(await prod1.write(4096n, pattern(4 * KiB, 4)));
    good(await prod0.write(10_000n, pattern(8 * KiB, 5)));
    await caughtUp(g);
    const rolledFrom = g.journal.nextSeq - 1;

    const reply = await verb(rig, 'enable_image_access', { copy: 'local', image: 'before' });
    expect(reply.group.copies[0]).toMatchObject({ access: 'logged-access', appliedSeq: bm.seq, image: { image: 'before', seq: bm.seq, bookmark: 'before', rolledFrom } });
    const img0 = await open(rig, `${TARGET}-local`, 0);
    const img1 = img0.on(1);
    await img1.clearUnitAttentions();
    // The bookmark's data, on both LUNs, and zeros where production wrote only after it.
    same(good(await img0.read(0n, 128)), a0);
    same(good(await img1.read(4096n, 64)), a1);
    same(good(await img0.read(10_000n, 16)), Buffer.alloc(8 * KiB));

    let v = await adminCall(rig.addr, 'POST', '/v1/groups/G/verify', { image: true });
    expect(v.json).toMatchObject({ consistent: true, seq: bm.seq, image: { accessed: 'before', blocksNotCompared: 0, imageWrites: 0 } });
    // Negative controls: the image is not production at `latest` ...
    v = await adminCall(rig.addr, 'POST', '/v1/groups/G/verify', { image: true, at: 'latest' });
    expect(v.json.consistent).toBe(false);
    expect(v.json.diverged.map((x: any) => [x.lun, x.lba])).toEqual([[0, '8'], [0, '10000'], [1, '4096']]);

    // Production goes on while the image is accessed: journaled, not distributed to the copy.
    good(await prod0.write(2048n, pattern(4 * KiB, 6)));
    expect(g.copies[0].appliedSeq).toBe(bm.seq);
    v = await adminCall(rig.addr, 'POST', '/v1/groups/G/verify', { image: true });
    expect(v.json).toMatchObject({ consistent: true, image: { blocksNotCompared: 8 } });

    // ... and a host write to the image makes it differ from the bookmark.
    const w = pattern(4 * KiB, 7);
    good(await img0.write(64n, w));
    same(good(await img0.read(64n, 8)), w);
    v = await adminCall(rig.addr, 'POST', '/v1/groups/G/verify', { image: true });
    expect(v.json).toMatchObject({ consistent: false, image: { imageWrites: 1 } });
    expect(v.json.diverged).toMatchObject([{ lun: 0, lba: '64', lbaEnd: '71', blocks: 8 }]);

    // disable_image_access: the write is gone, the LUs are NOT READY, distribution catches up.
    const off = await verb(rig, 'disable_image_access', { copy: 'local' });
    expect(off.group.copies[0]).toMatchObject({ access: 'no-access', image: null });
    expect(kcq(await img0.read(64n, 8))).toEqual(NOT_READY_MANUAL);
    await caughtUp(g);
    const replica = g.copies[0].replicas[0];
    same(Buffer.from(await replica.read(64n, 8)), good(await prod0.read(64n, 8)));
    v = await adminCall(rig.addr, 'POST', '/v1/groups/G/verify', {});
    expect(v.json).toMatchObject({ consistent: true, seq: g.journal.nextSeq - 1 });
    // The copy's history survived logged access: the bookmark can be reached again.
    await verb(rig, 'enable_image_access', { copy: 'local', image: 'before' });
    await img0.clearUnitAttentions();
    same(good(await img0.read(0n, 128)), a0);
    expect((await adminCall(rig.addr, 'POST', '/v1/groups/G/verify', { image: true })).json.consistent).toBe(true);
    await verb(rig, 'disable_image_access', { copy: 'local' });
  }, 60_000);

  it('with a file journal (file replicas: undo data and the image-access log read and restored asynchronously): the same', () => fileJournalImage('logged'), 60_000);

  it('with a file journal, production writing while the replica is rolled back: the payloads it restores stay for the catch-up', async () => {
    rig = await start(['local'], true);
    const g = rig.group;
    await g.startTransfer('test');
    await caughtUp(g);
    const prod = await open(rig, TARGET, 0);
    good(await prod.write(0n, pattern(64 * KiB, 1)));
    const bm = await verb(rig, 'bookmarks', { name: 'f' });
    // 40 records after the bookmark, applied (so trimmed of their payloads: history is undo data).
    for (let k = 0; k < 40; k++) good(await prod.write(BigInt(k * 16), pattern(8 * KiB, 100 + k)));
    await caughtUp(g);
    const last = g.journal.nextSeq - 1;
    // Production goes on while the roll back reads and writes the file replica record by record.
    let writing = true;
    let during = 0;
    const writer = (async () => {
      for (let k = 0; writing; k++) { good(await prod.write(BigInt(12_000 + (k % 100) * 8), pattern(4 * KiB, 500 + k))); during++; }
    })();
    await verb(rig, 'enable_image_access', { copy: 'local', image: 'f' });
    const duringEnable = during;
    writing = false;
    await writer;
    expect(duringEnable, 'production wrote during the enable').toBeGreaterThan(0);
    // The roll back gave each record after the image its payload again, and no trim took it since.
    const bare = [...g.journal.after(bm.seq)].filter((r) => r.seq <= last && r.kind === 'data' && r.data === null).map((r) => r.seq);
    expect(bare).toEqual([]);
    await verb(rig, 'disable_image_access', { copy: 'local' });
    await caughtUp(g);
    expect((await adminCall(rig.addr, 'POST', '/v1/groups/G/verify', {})).json).toMatchObject({ consistent: true });
  }, 60_000);

  it('reaches an image by time and by seq:N', async () => {
    rig = await start();
    const g = rig.group;
    const prod = await open(rig, TARGET, 0);
    const a = pattern(8 * KiB, 21);
    good(await prod.write(0n, a));
    const seqA = g.journal.nextSeq - 1;
    // A time after the first write and before the second (the journal's times are milliseconds).
    await new Promise((r) => setTimeout(r, 30));
    const between = new Date().toISOString();
    await new Promise((r) => setTimeout(r, 30));
    good(await prod.write(0n, pattern(8 * KiB, 22)));
    await caughtUp(g);
    const img = await open(rig, `${TARGET}-local`, 0);
    let reply = await verb(rig, 'enable_image_access', { copy: 'local', image: between });
    expect(reply.group.copies[0].image).toMatchObject({ image: between, seq: seqA });
    await img.clearUnitAttentions();
    same(good(await img.read(0n, 16)), a);
    await verb(rig, 'disable_image_access', { copy: 'local' });
    await caughtUp(g);
    reply = await verb(rig, 'enable_image_access', { copy: 'local', image: 'seq:0' });
    expect(reply.group.copies[0].image).toMatchObject({ seq: 0 });
    await img.clearUnitAttentions();
    same(good(await img.read(0n, 16)), Buffer.alloc(8 * KiB));
    expect((await adminCall(rig.addr, 'POST', '/v1/groups/G/verify', { image: true })).json).toMatchObject({ consistent: true, seq: 0 });
  }, 60_000);

  it('refuses what it cannot do, naming why', async () => {
    rig = await start();
    const prod = await open(rig, TARGET, 0);
    good(await prod.write(0n, pattern(4 * KiB, 1)));
    const call = (v: string, b: object) => adminCall(rig!.addr, 'POST', `/v1/groups/G/${v}`, b);
    expect(await call('enable_image_access', { copy: 'local', image: 'nope' })).toMatchObject({ status: 400, json: { field: 'image', error: expect.stringMatching(/not latest, a bookmark/) } });
    expect(await call('enable_image_access', { copy: 'local', image: 'seq:999' })).toMatchObject({ status: 400, json: { field: 'image' } });
    expect(await call('enable_image_access', { copy: 'other' })).toMatchObject({ status: 404 });
    expect(await call('enable_image_access', {})).toMatchObject({ status: 400, json: { field: 'copy' } });
    expect(await call('enable_image_access', { copy: 'local', mode: 'snapshot' })).toMatchObject({ status: 400, json: { field: 'mode' } });
    expect(await call('set_image_access_mode', { copy: 'local', mode: 'virtual' })).toMatchObject({ status: 400, json: { field: 'mode' } });
    expect(await call('disable_image_access', { copy: 'local' })).toMatchObject({ status: 409, json: { error: expect.stringMatching(/no image access/) } });
    expect(await call('verify', { image: true })).toMatchObject({ status: 409, json: { error: expect.stringMatching(/no image access/) } });
    expect(await call('verify', { at: 'latest' })).toMatchObject({ status: 400, json: { field: 'at' } });
    expect(await call('set_image_access_mode', { copy: 'local', mode: 'direct' })).toMatchObject({ status: 409 });
    expect((await call('enable_image_access', { copy: 'local' })).status).toBe(200);
    expect(await call('enable_image_access', { copy: 'local' })).toMatchObject({ status: 409, json: { error: expect.stringMatching(/already has image access/) } });
    expect(await call('clear_markers', {})).toMatchObject({ status: 409 });
    expect(await call('disable_group', {})).toMatchObject({ status: 409, json: { error: expect.stringMatching(/disable_image_access first/) } });
    expect((await call('set_image_access_mode', { copy: 'local', mode: 'direct' })).status).toBe(200);
    expect(await call('set_image_access_mode', { copy: 'local', mode: 'logged' })).toMatchObject({ status: 409, json: { error: expect.stringMatching(/journal history is gone/) } });
    expect(await call('verify', { image: true })).toMatchObject({ status: 409, json: { error: expect.stringMatching(/direct access/) } });
  }, 60_000);
});

describe('virtual access', () => {
  it('shows the bookmark through the read map without rolling the replica; writes go to an overlay that disable drops', async () => {
    rig = await start();
    const g = rig.group;
    const c = g.copies[0];
    const prod0 = await open(rig, TARGET, 0);
    const prod1 = prod0.on(1);
    await prod1.clearUnitAttentions();
    const a0 = pattern(64 * KiB, 31);
    good(await prod0.write(0n, a0));
    good(await prod1.unmap([{ lba: 0n, blocks: 64 }]));
    good(await prod1.write(4096n, pattern(32 * KiB, 32)));
    const bm = await verb(rig, 'bookmarks', { name: 'v1' });
    const at1 = [Buffer.from(good(await prod0.read(0n, 256))), Buffer.from(good(await prod1.read(4096n, 256)))];
    // After it: overlapping writes, a WRITE SAME (one compact record), an UNMAP, a WRITE SAME with UNMAP.
    good(await prod0.write(8n, pattern(16 * KiB, 33)));
    good(await prod0.write(16n, pattern(16 * KiB, 34)));
    good(await prod0.write(4n, pattern(4 * KiB, 35)));
    good(await prod0.writeSame(100n, 100, pattern(512, 36)));
    good(await prod1.unmap([{ lba: 4100n, blocks: 20 }]));
    good(await prod1.writeSame(4200n, 30, Buffer.alloc(512), { unmap: true }));
    good(await prod1.writeSame(4150n, 10, pattern(512, 37)));
    await caughtUp(g);
    const end = g.journal.nextSeq - 1;

    const reply = await verb(rig, 'enable_image_access', { copy: 'local', image: 'v1', mode: 'virtual' });
    expect(reply.group.copies[0]).toMatchObject({ access: 'virtual-access', appliedSeq: end, image: { image: 'v1', seq: bm.seq, rolledFrom: end, virtual: { overlayBlocks: 0 } } });
    expect(reply.group.copies[0].image.virtual.mapRuns).toBeGreaterThan(0);
    // The replica did not move: it is production's end.
    same(Buffer.from(await c.replicas[0].read(0n, 256)), good(await prod0.read(0n, 256)));
    const img0 = await open(rig, `${TARGET}-local`, 0);
    const img1 = img0.on(1);
    await img1.clearUnitAttentions();
    same(good(await img0.read(0n, 256)), at1[0]);
    same(good(await img1.read(4096n, 256)), at1[1]);
    // Odd pieces of it too (reads across map runs).
    same(good(await img0.read(7n, 13)), at1[0].subarray(7 * 512, 20 * 512));
    same(good(await img1.read(4190n, 40)), at1[1].subarray(94 * 512, 134 * 512));
    let v = await adminCall(rig.addr, 'POST', '/v1/groups/G/verify', { image: true });
    expect(v.json).toMatchObject({ consistent: true, seq: bm.seq, image: { mode: 'virtual-access', blocksNotCompared: 0 } });
    v = await adminCall(rig.addr, 'POST', '/v1/groups/G/verify', { image: true, at: 'latest' });
    expect(v.json.consistent).toBe(false);

    // Production goes on: journaled, not distributed while the image is accessed.
    good(await prod0.write(2048n, pattern(4 * KiB, 38)));
    expect(c.appliedSeq).toBe(end);
    // Host writes to the image: in the overlay, the replica untouched.
    const w = pattern(8 * KiB, 39);
    good(await img0.write(10n, w));
    good(await img1.unmap([{ lba: 4096n, blocks: 8 }]));
    same(good(await img0.read(10n, 16)), w);
    same(good(await img1.read(4096n, 8)), Buffer.alloc(4 * KiB));
    same(good(await img0.read(0n, 10)), at1[0].subarray(0, 10 * 512));
    same(Buffer.from(await c.replicas[0].read(10n, 16)), good(await prod0.read(10n, 16)));
    expect(g.status().copies[0].image!.virtual).toMatchObject({ overlayBlocks: 24 });
    const vimg = c.image!.virtual!;
    expect(vimg.overlayBytes).toBeGreaterThan(0);
    v = await adminCall(rig.addr, 'POST', '/v1/groups/G/verify', { image: true });
    expect(v.json).toMatchObject({ consistent: false, image: { imageWrites: 2 } });
    // The mode does not change while virtual.
    expect(await adminCall(rig.addr, 'POST', '/v1/groups/G/set_image_access_mode', { copy: 'local', mode: 'direct' }))
      .toMatchObject({ status: 409, json: { error: expect.stringMatching(/virtual access/) } });

    // disable: map and overlay go, the copy catches up from where it was.
    await verb(rig, 'disable_image_access', { copy: 'local' });
    expect(vimg.overlayBytes).toBe(0); // its memory went back to the pool
    expect(kcq(await img0.read(0n, 8))).toEqual(NOT_READY_MANUAL);
    await caughtUp(g);
    expect((await adminCall(rig.addr, 'POST', '/v1/groups/G/verify', {})).json).toMatchObject({ consistent: true });
    // The same bookmark again (the history stayed): the overlay's writes are gone.
    await verb(rig, 'enable_image_access', { copy: 'local', image: 'v1', mode: 'virtual' });
    await img0.clearUnitAttentions();
    await img1.clearUnitAttentions();
    same(good(await img0.read(0n, 256)), at1[0]);
    same(good(await img1.read(4096n, 256)), at1[1]);
    await verb(rig, 'disable_image_access', { copy: 'local' });
    // And logged access to it still rolls the replica, as before.
    await caughtUp(g);
    await verb(rig, 'enable_image_access', { copy: 'local', image: 'v1' });
    await img0.clearUnitAttentions();
    same(good(await img0.read(0n, 256)), at1[0]);
    same(Buffer.from(await c.replicas[0].read(0n, 256)), at1[0]);
  }, 60_000);

  it('with a file journal and file replicas (undo data read from file): the same image', () => fileJournalImage('virtual'), 60_000);
});

describe('direct access', () => {
  it('writes go to the replica and stay there until disable; the copy\'s history is lost and it is swept back to production', async () => {
    rig = await start();
    const g = rig.group;
    const prod = await open(rig, TARGET, 0);
    good(await prod.write(0n, pattern(64 * KiB, 1)));
    await verb(rig, 'bookmarks', { name: 'one' });
    good(await prod.write(0n, pattern(16 * KiB, 2)));
    await caughtUp(g);
    await verb(rig, 'enable_image_access', { copy: 'local', image: 'one' });
    const reply = await verb(rig, 'set_image_access_mode', { copy: 'local', mode: 'direct' });
    expect(reply.group.copies[0]).toMatchObject({ access: 'direct-access', oldestImageSeq: null, undoBytes: 0 });
    const img = await open(rig, `${TARGET}-local`, 0);
    same(good(await img.read(0n, 128)), pattern(64 * KiB, 1));
    // A write through the copy's target lands on the replica itself.
    const w = pattern(1 << 20, 9);
    good(await img.write(4096n, w));
    same(Buffer.from(await g.copies[0].replicas[0].read(4096n, 2048)), w);
    // Production goes on meanwhile.
    good(await prod.write(8192n, pattern(8 * KiB, 3)));
    const off = await verb(rig, 'disable_image_access', { copy: 'local' });
    expect(off.group.markers[0]).toMatchObject({ fullSweep: true });
    await caughtUp(g);
    // Swept by digest: the two regions the image write touched, and the ones production changed since
    // the bookmark (region 0) and during access (region 4): each sent whole; nothing else.
    expect(g.status().copies[0].synchronization).toMatchObject({ kind: 'full-sweep', done: true });
    const sent = g.status().copies[0].synchronization!.regions;
    expect(sent).toBeGreaterThanOrEqual(2);
    expect(sent).toBeLessThanOrEqual(4);
    expect((await adminCall(rig.addr, 'POST', '/v1/groups/G/verify', {})).json).toMatchObject({ consistent: true });
    // The history before direct access is gone: the old bookmark cannot be reached.
    expect(await adminCall(rig.addr, 'POST', '/v1/groups/G/enable_image_access', { copy: 'local', image: 'one' }))
      .toMatchObject({ status: 400, json: { field: 'image', error: expect.stringMatching(/older/) } });
  }, 60_000);
});

describe('disable_copy', () => {
  it('stops one copy while the other goes on; enable_copy sends only its marked regions', async () => {
    rig = await start(['near', 'far']);
    const g = rig.group;
    const prod = await open(rig, TARGET, 0);
    good(await prod.write(0n, pattern(8 * KiB, 1)));
    await caughtUp(g);
    const off = await verb(rig, 'disable_copy', { copy: 'far' });
    expect(off.group.copies.map((c: any) => c.enabled)).toEqual([true, false]);
    // Two regions written while `far` is disabled (regions 0 and 3 of LUN 0).
    good(await prod.write(16n, pattern(4 * KiB, 2)));
    good(await prod.write(3n * 2048n, pattern(4 * KiB, 3)));
    await caughtUp(g);
    expect((await adminCall(rig.addr, 'POST', '/v1/groups/G/verify', { copy: 'near' })).json.consistent).toBe(true);
    expect(await adminCall(rig.addr, 'POST', '/v1/groups/G/verify', { copy: 'far' })).toMatchObject({ status: 400, json: { error: expect.stringMatching(/disabled/) } });
    expect(g.status().markers[1]).toMatchObject({ copy: 'far', regions: 2 });
    await verb(rig, 'enable_copy', { copy: 'far' });
    await caughtUp(g);
    for (let i = 0; i < 500 && !g.copies[1].sync?.done; i++) await new Promise((r) => setTimeout(r, 10));
    expect(g.status().copies[1].synchronization).toMatchObject({ kind: 'markers', regions: 2, done: true });
    expect((await adminCall(rig.addr, 'POST', '/v1/groups/G/verify', { copy: 'far' })).json.consistent).toBe(true);
    // Negative control: a copy declared identical without being so stays diverged (markers cleared by hand).
    await verb(rig, 'disable_copy', { copy: 'far' });
    good(await prod.write(5n * 2048n, pattern(4 * KiB, 4)));
    g.copies[1].markers[0].clear();
    await verb(rig, 'enable_copy', { copy: 'far' });
    await caughtUp(g);
    for (let i = 0; i < 500 && !g.copies[1].sync?.done; i++) await new Promise((r) => setTimeout(r, 10));
    const v = (await adminCall(rig.addr, 'POST', '/v1/groups/G/verify', { copy: 'far' })).json;
    expect(v.consistent).toBe(false);
    expect(v.diverged).toMatchObject([{ lun: 0, lba: String(5 * 2048) }]);
  }, 60_000);
});

describe('image access and copy changes on GET /v1/events', () => {
  const validEvent = compileValidator(ARRAY_EVENT);
  const TYPES = ['group.image-access', 'group.copy'];

  it('enable (rolling, then done), mode, disable, disable_copy and enable_copy arrive in order, valid; a refused verb sends none', async () => {
    rig = await start(['local', 'far']);
    const g = rig.group;
    const prod = await open(rig, TARGET, 0);
    good(await prod.write(0n, pattern(8 * KiB, 1)));
    const bm = await verb(rig, 'bookmarks', { name: 'before' });
    good(await prod.write(0n, pattern(8 * KiB, 2)));
    await caughtUp(g);
    const sse = await SseClient.open(`http://${rig.addr}/v1/events`);
    await sse.until(() => sse.of('hello').length === 1, 5000, 'hello');
    const ev = () => sse.of(...TYPES).map((m) => m.data);

    await verb(rig, 'enable_image_access', { copy: 'local', image: 'before' });
    await sse.until(() => ev().length === 2, 5000, 'enable: rolling and done');
    // Refused (409: it has image access already): no event.
    expect((await adminCall(rig.addr, 'POST', '/v1/groups/G/enable_image_access', { copy: 'local' })).status).toBe(409);
    await verb(rig, 'set_image_access_mode', { copy: 'local', mode: 'direct' });
    await verb(rig, 'disable_image_access', { copy: 'local', start_transfer: 'no' });
    await verb(rig, 'disable_copy', { copy: 'far' });
    await verb(rig, 'enable_copy', { copy: 'far' });
    await sse.until(() => ev().length === 6, 5000, 'six events');
    const image = { image: 'before', imageSeq: bm.seq, bookmark: 'before' };
    expect(ev()).toEqual([
      expect.objectContaining({ type: 'group.image-access', group: 'G', copy: 'local', from: 'no-access', to: 'logged-access', phase: 'rolling', ...image, reason: 'enable_image_access image=before' }),
      expect.objectContaining({ type: 'group.image-access', group: 'G', copy: 'local', from: 'no-access', to: 'logged-access', phase: 'done', ...image, reason: 'enable_image_access image=before' }),
      expect.objectContaining({ type: 'group.image-access', copy: 'local', from: 'logged-access', to: 'direct-access', phase: 'done', ...image, reason: 'set_image_access_mode mode=direct' }),
      expect.objectContaining({ type: 'group.image-access', copy: 'local', from: 'direct-access', to: 'no-access', phase: 'done', image: null, imageSeq: null, bookmark: null, reason: 'disable_image_access start_transfer=no' }),
      expect.objectContaining({ type: 'group.copy', group: 'G', copy: 'far', from: 'enabled', to: 'disabled', reason: 'operator: disable_copy' }),
      expect.objectContaining({ type: 'group.copy', group: 'G', copy: 'far', from: 'disabled', to: 'enabled', reason: 'operator: enable_copy' }),
    ]);
    for (const m of sse.of(...TYPES)) {
      expect(m.event).toBe(m.data.type);
      expect(validEvent(m.data), JSON.stringify(validEvent.errors)).toBe(true);
    }
    // The disable left the transfer paused (start_transfer=no): that is a group.transfer event between them.
    expect(sse.of('group.transfer').map((m) => m.data)).toContainEqual(expect.objectContaining({ from: 'active', to: 'paused' }));
    sse.close();

    // Negative control of the schema check: it refuses what is not such an event.
    const good1 = ev()[0];
    expect(validEvent(good1)).toBe(true);
    expect(validEvent({ ...good1, to: 'snapshot-access' })).toBe(false);
    expect(validEvent({ ...good1, imageSeq: undefined })).toBe(false);
    expect(validEvent({ ...ev()[4], markedRegions: -1 })).toBe(false);
  }, 60_000);

  it('a failed enable is announced going back to no-access', async () => {
    rig = await start();
    const g = rig.group;
    const prod = await open(rig, TARGET, 0);
    good(await prod.write(0n, pattern(8 * KiB, 1)));
    await caughtUp(g);
    const sse = await SseClient.open(`http://${rig.addr}/v1/events`);
    await sse.until(() => sse.of('hello').length === 1, 5000, 'hello');
    // Rolling back to the bookmark restores what the later write overwrote: the replica refuses that write.
    await verb(rig, 'bookmarks', { name: 'before' });
    good(await prod.write(0n, pattern(8 * KiB, 2)));
    await caughtUp(g);
    const store = g.copies[0].replicas[0];
    const write = store.write.bind(store);
    store.write = () => { throw new Error('replica write refused (test)'); };
    const r = await adminCall(rig.addr, 'POST', '/v1/groups/G/enable_image_access', { copy: 'local', image: 'before' });
    store.write = write;
    expect(r.json.error).toBe('replica write refused (test)'); // (a 400: the admin API's mapping of an unexpected error)
    await sse.until(() => sse.of('group.image-access').length === 2, 5000, 'rolling, then back');
    expect(sse.of('group.image-access').map((m) => m.data)).toEqual([
      expect.objectContaining({ from: 'no-access', to: 'logged-access', phase: 'rolling', image: 'before' }),
      expect.objectContaining({ from: 'logged-access', to: 'no-access', phase: 'done', image: null, reason: expect.stringMatching(/^enable_image_access failed: replica write refused/) }),
    ]);
    sse.close();
  }, 60_000);
});

describe('arraysim verify --image', () => {
  it('exits 0 while the image is the bookmark and 1 once a host has written to it', async () => {
    rig = await start();
    const prod = await open(rig, TARGET, 0);
    good(await prod.write(0n, pattern(32 * KiB, 1)));
    await verb(rig, 'bookmarks', { name: 'bm' });
    good(await prod.write(0n, pattern(32 * KiB, 2)));
    await caughtUp(rig.group);
    const cli = (args: string[]) => run(process.execPath, ['bin/arraysim.js', ...args, '--admin', rig!.addr], { cwd: join(__dirname, '../..') })
      .then((r) => ({ code: 0, out: r.stdout, err: r.stderr }), (e) => ({ code: e.code as number, out: e.stdout as string, err: e.stderr as string }));
    let r = await cli(['rp', 'enable_image_access', 'group=G', 'copy=local', 'image=bm']);
    expect(r, r.err).toMatchObject({ code: 0 });
    expect(r.out).toMatch(/image access: logged-access to bm/);
    r = await cli(['verify', '--group', 'G', '--image']);
    expect(r, r.err).toMatchObject({ code: 0 });
    expect(r.out).toMatch(/image bm \(seq 1, logged-access\) shows production at bm \(seq 1\)/);
    const img = await open(rig, `${TARGET}-local`, 0);
    good(await img.write(0n, pattern(4 * KiB, 3)));
    r = await cli(['verify', '--group', 'G', '--image', 'bm']);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/DIFFERS FROM production at bm/);
    expect(r.out).toMatch(/LUN 0 LBA 0-7, differs from production at that point/);
    r = await cli(['rp', 'disable_image_access', 'group=G', 'copy=local']);
    expect(r, r.err).toMatchObject({ code: 0 });
    await caughtUp(rig.group);
    r = await cli(['rp', 'enable_image_access', 'group=G', 'copy=local', 'image=bm', 'mode=virtual']);
    expect(r, r.err).toMatchObject({ code: 0 });
    expect(r.out).toMatch(/image access: virtual-access to bm \(seq 1, replica at 2, read map of 1 runs built in [\d.]+ ms, 0 blocks in the overlay\)/);
    r = await cli(['verify', '--group', 'G', '--image']);
    expect(r, r.err).toMatchObject({ code: 0 });
  }, 120_000);
});
