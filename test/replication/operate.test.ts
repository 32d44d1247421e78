/**
 * Operating a pair: the example YAML files, the admin routes (/v1/rcopy/...) with their schemas,
 * host proximity through admithost, and link fault injection from the API.
 */
import path from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdminApi } from '../../src/admin/api.ts';
import { StorageArray } from '../../src/array.ts';
import { configFromFile } from '../../src/config.ts';
import { ScsiDevice } from '../../src/initiator/index.ts';
import { hpeProximity, RCOPY_COMMAND } from '../../src/replication/cli.ts';
import { settled, senseOf, until } from './pair.ts';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';

const EX = path.join(import.meta.dirname, '../../examples');
const ESX_A = 'iqn.1994-05.com.example:esx-a';
const ESX_B = 'iqn.1994-05.com.example:esx-b';
const OTHER = 'iqn.1994-05.com.example:other';

let a: StorageArray, b: StorageArray, apiA: AdminApi, apiB: AdminApi, baseA: string, baseB: string;

async function call(base: string, method: string, p: string, body?: unknown): Promise<{ status: number; json: any }> {
  const res = await fetch(base + p, { method, headers: { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
  return { status: res.status, json: await res.json() };
}

beforeAll(async () => {
  const log = pino({ level: 'silent' });
  // The example files as written, on ports the kernel chooses (the test must not collide with a running pair).
  const cb = configFromFile(path.join(EX, 'rcopy-site-b.yaml'));
  cb.portals[0].port = 0; cb.peers!.listen!.port = 0;
  b = await StorageArray.create(cb, log); await b.start();
  const ca = configFromFile(path.join(EX, 'rcopy-site-a.yaml'));
  ca.portals[0].port = 0; ca.peers!.listen!.port = 0; ca.peers!.peer!.port = cb.peers!.listen!.port;
  a = await StorageArray.create(ca, log); await a.start();
  apiA = new AdminApi(a, log); apiB = new AdminApi(b, log);
  baseA = `http://127.0.0.1:${await apiA.listen('127.0.0.1', 0)}`;
  baseB = `http://127.0.0.1:${await apiB.listen('127.0.0.1', 0)}`;
  await until(() => a.rcopy!.groups.get('rcg1')!.machine.status === 'Synced' && b.rcopy!.groups.get('rcg1')!.machine.status === 'Synced', 'Synced');
});
afterAll(async () => { await apiA?.close(); await apiB?.close(); await a?.stop(); await b?.stop(); });

const url = (arr: StorageArray) => `iscsi://${arr.config.portals[0].host}:${arr.config.portals[0].port}/iqn.2026-11.dev.arraysim:metro/0`;

describe('rcopy admin routes', () => {
  it('GET /v1/rcopy/groups shows both sides Synced with their roles, proximity and link', async () => {
    const ra = await call(baseA, 'GET', '/v1/rcopy/groups');
    const rb = await call(baseB, 'GET', '/v1/rcopy/groups');
    expect(ra.status).toBe(200);
    expect(ra.json.groups[0]).toMatchObject({ name: 'rcg1', role: 'primary', status: 'Synced', link: 'up', peerArray: 'site-b', hosts: { [ESX_A]: 'primary', [ESX_B]: 'secondary' } });
    expect(ra.json.groups[0].policies).toEqual({ active_active: true, path_management: true, auto_failover: true, auto_recover: true, auto_synchronize: true });
    expect(rb.json.groups[0]).toMatchObject({ role: 'secondary', status: 'Synced', peerArray: 'site-a' });
  });

  it('proximity drives each host\'s ALUA view: optimized at its local array, non-optimized at the other; unset hosts see primary AO, secondary ANO', async () => {
    const view = (arr: StorageArray, host: string) => arr.scsiTargets.get('iqn.2026-11.dev.arraysim:metro')!.alua.stateFor(arr === a ? 1 : 2, host);
    expect([view(a, ESX_A), view(b, ESX_A)]).toEqual(['active/optimized', 'active/non-optimized']);
    expect([view(a, ESX_B), view(b, ESX_B)]).toEqual(['active/non-optimized', 'active/optimized']);
    expect([view(a, OTHER), view(b, OTHER)]).toEqual(['active/optimized', 'active/non-optimized']);
    for (const base of [baseA, baseB]) expect((await call(base, 'POST', '/v1/rcopy/groups/rcg1/hosts', { host: OTHER, proximity: 'all' })).status).toBe(200);
    expect([view(a, OTHER), view(b, OTHER)]).toEqual(['active/optimized', 'active/optimized']);
    // What the host itself reads: REPORT TARGET PORT GROUPS through B shows B's group optimized for it.
    const d = await ScsiDevice.open(url(b), { initiatorName: OTHER });
    try {
      await d.clearUnitAttentions();
      const r = await settled(() => d.reportTargetPortGroups());
      if (r.kind !== 'good') throw new Error(senseOf(r));
      expect(r.value.map((g) => [g.id, g.stateName])).toEqual([[2, expect.stringMatching(/optimized/)]]);
      expect(r.value[0].state).toBe(0); // active/optimized
    } finally { await d.close(); }
  });

  it('bad requests get 400 naming the field, 404 for an unknown group, 409 for a verb the secondary does not take', async () => {
    expect((await call(baseA, 'POST', '/v1/rcopy/groups/rcg1/hosts', { host: OTHER, proximity: 'near' })).json).toMatchObject({ field: 'proximity', in: 'body' });
    expect((await call(baseA, 'POST', '/v1/rcopy/groups/rcg1/hosts', { proximity: 'all' })).status).toBe(400);
    expect((await call(baseA, 'POST', '/v1/rcopy/link', { action: 'sever' })).json).toMatchObject({ field: 'action' });
    expect((await call(baseA, 'POST', '/v1/rcopy/link', { latencyMs: -1 })).status).toBe(400);
    expect((await call(baseA, 'POST', '/v1/rcopy/link', {})).status).toBe(400);
    expect((await call(baseA, 'POST', '/v1/rcopy/link', { lossPercent: 101 })).json).toMatchObject({ field: 'lossPercent' });
    expect((await call(baseA, 'POST', '/v1/rcopy/link', { oneWay: 'sideways' })).json).toMatchObject({ field: 'oneWay' });
    expect((await call(baseA, 'POST', '/v1/rcopy/link', { seed: -1 })).json).toMatchObject({ field: 'seed' });
    const nf = await call(baseA, 'POST', '/v1/rcopy/groups/nope/start');
    expect(nf.status).toBe(404);
    expect(nf.json.error).toMatch(/no Remote Copy group nope/);
    const st = await call(baseB, 'POST', '/v1/rcopy/groups/rcg1/stop');
    expect(st.status).toBe(409);
    expect(st.json.error).toMatch(/primary/);
    expect(b.rcopy!.groups.get('rcg1')!.machine.status).toBe('Synced');
  });

  it('stopgroup/startgroup on the primary: B stops serving, then comes back Synced', async () => {
    expect((await call(baseA, 'POST', '/v1/rcopy/groups/rcg1/stop')).json).toMatchObject({ status: 'Stopped', started: false });
    await until(() => b.rcopy!.groups.get('rcg1')!.machine.status === 'Stopped', 'B Stopped');
    expect((await call(baseA, 'POST', '/v1/rcopy/groups/rcg1/start')).status).toBe(200);
    await until(() => b.rcopy!.groups.get('rcg1')!.machine.status === 'Synced', 'B Synced');
  });

  it('POST /v1/rcopy/link cut: B answers 04/0C, A keeps serving; restore brings B back', async () => {
    const da = await ScsiDevice.open(url(a), { initiatorName: ESX_A });
    const db = await ScsiDevice.open(url(b), { initiatorName: ESX_B });
    try {
      await da.clearUnitAttentions(); await db.clearUnitAttentions();
      const cut = await call(baseB, 'POST', '/v1/rcopy/link', { action: 'cut', latencyMs: 2 });
      expect(cut.json.link).toMatchObject({ cut: true, latencyMs: 2 });
      await until(() => a.rcopy!.groups.get('rcg1')!.machine.status === 'Stopped', 'A Stopped');
      expect(senseOf(await settled(() => db.read(0n, 1)))).toBe('02/04/0c');
      expect(senseOf(await settled(() => da.write(0n, Buffer.alloc(512, 1))))).toBe('good');
      await call(baseB, 'POST', '/v1/rcopy/link', { action: 'restore', latencyMs: 0 });
      await until(() => b.rcopy!.groups.get('rcg1')!.machine.status === 'Synced', 'B Synced', 8000);
      const r = await settled(() => db.read(0n, 1));
      expect(r.kind === 'good' && r.value.equals(Buffer.alloc(512, 1))).toBe(true);
    } finally { await da.close(); await db.close(); }
  });

  it('POST /v1/rcopy/link sets loss and a one-way partition and shows them; restore clears every fault', async () => {
    const set = await call(baseA, 'POST', '/v1/rcopy/link', { lossPercent: 0.5, oneWay: null, seed: 1234 });
    expect(set.status).toBe(200);
    expect(set.json.link).toMatchObject({ cut: false, lossPercent: 0.5, oneWay: null, seed: 1234, retransmissions: expect.any(Number), framesQueued: expect.any(Number) });
    const part = await call(baseA, 'POST', '/v1/rcopy/link', { oneWay: 'in' });
    expect(part.json.link).toMatchObject({ oneWay: 'in', lossPercent: 0.5 });
    const clean = await call(baseA, 'POST', '/v1/rcopy/link', { action: 'restore' });
    expect(clean.json.link).toMatchObject({ cut: false, latencyMs: 0, lossPercent: 0, oneWay: null });
    await until(() => b.rcopy!.groups.get('rcg1')!.machine.status === 'Synced' && a.rcopy!.groups.get('rcg1')!.machine.status === 'Synced', 'Synced', 15_000);
  });

  it('rcopy link --loss --one-way --seed through the CLI handler; --one-way off heals; a bad --one-way is refused before sending', async () => {
    const printed: string[] = [];
    const log = console.log;
    console.log = (x: string) => { printed.push(x); };
    const admin = baseA.replace('http://', '');
    const run = (o: Record<string, unknown>) => (RCOPY_COMMAND.handler as (a: unknown) => Promise<void>)({ verb: 'link', args: [], admin, ...o });
    try {
      await run({ loss: 2.5, oneWay: 'in', seed: 77 });
      expect(JSON.parse(printed.at(-1)!).link).toMatchObject({ lossPercent: 2.5, oneWay: 'in', seed: 77 });
      await run({ oneWay: 'off' });
      expect(JSON.parse(printed.at(-1)!).link).toMatchObject({ lossPercent: 2.5, oneWay: null });
      await expect(run({ oneWay: 'up' })).rejects.toThrow(/--one-way must be out, in or off/);
      await expect(run({ loss: 200 })).rejects.toThrow(/lossPercent/);
      await run({ args: ['restore'] });
      expect(JSON.parse(printed.at(-1)!).link).toMatchObject({ cut: false, lossPercent: 0, oneWay: null, latencyMs: 0 });
    } finally { console.log = log; }
    await until(() => b.rcopy!.groups.get('rcg1')!.machine.status === 'Synced' && a.rcopy!.groups.get('rcg1')!.machine.status === 'Synced', 'Synced', 15_000);
  });

  it('the OpenAPI document lists the rcopy routes', async () => {
    const doc = (await call(baseA, 'GET', '/v1/openapi.json')).json;
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/v1/rcopy/groups', '/v1/rcopy/groups/{group}/start', '/v1/rcopy/link']));
  });
});

describe('rcopy configuration and CLI words', () => {
  const load = (yaml: string) => {
    const dir = mkdtempSync(path.join(tmpdir(), 'arraysim-rcopy-'));
    writeFileSync(path.join(dir, 'a.yaml'), yaml);
    return () => configFromFile(path.join(dir, 'a.yaml'));
  };
  const base = 'targets: [{name: iqn.2026-11.dev.arraysim:t, luns: [64MiB]}]\n';
  it.each([
    ['rcopy:\n  groups: []\n', /peers must be a mapping/],
    ['peers: {name: a, listen: "127.0.0.1:1"}\nrcopy:\n  groups: [{name: g, role: primary, volumes: [0]}]\n', /needs peers.peer/],
    ['peers: {name: a, listen: "127.0.0.1:1"}\nrcopy:\n  groups: [{name: g, role: boss, volumes: [0]}]\n', /role must be primary or secondary/],
    ['peers: {name: a, listen: "127.0.0.1:1"}\nrcopy:\n  groups: [{name: g, role: secondary, volumes: [0], policies: [warp]}]\n', /warp is not a policy/],
    ['peers: {name: a, listen: "127.0.0.1:1"}\nrcopy:\n  groups: [{name: g, role: secondary, volumes: [0], policies: {active_active: true, auto_failover: false}}]\n', /cannot be turned off/],
    ['peers: {name: a, listen: "127.0.0.1:1"}\nrcopy:\n  groups: [{name: g, role: secondary, volumes: [0], hosts: {h: near}}]\n', /must be one of primary, secondary, all/],
    ['peers: {name: a, listen: "127.0.0.1:1", bogus: 1}\nrcopy:\n  groups: []\n', /peers.bogus is not a known key/],
  ])('refuses %#', (yaml, why) => { expect(load(base + yaml)).toThrow(why); });

  it('a group volume that names no LUN stops startup with the reason', async () => {
    const cfg = load(base + 'peers: {name: a, listen: "127.0.0.1:0"}\nrcopy:\n  groups: [{name: g, role: secondary, volumes: [3]}]\n')();
    await expect(StorageArray.create(cfg, pino({ level: 'silent' }))).rejects.toThrow(/no LUN 3/);
  });

  it('admithost takes HPE\'s one-dash -proximity', () => {
    expect(hpeProximity(['-proximity', 'all', 'esx1', 'rcg1'])).toEqual({ proximity: 'all', rest: ['esx1', 'rcg1'] });
    expect(hpeProximity(['esx1', '--proximity', 'secondary', 'rcg1'])).toEqual({ proximity: 'secondary', rest: ['esx1', 'rcg1'] });
  });
});
