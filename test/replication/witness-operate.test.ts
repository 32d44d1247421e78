/**
 * Operating the witness and the failover verbs through the admin API (/v1/rcopy/...) with their
 * schemas, `status`, and the peers.witness YAML key. The witness runs in this process here
 * (WitnessServer, the same class `arraysim witness` runs); witness-failover.test.ts runs it as its
 * own process.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdminApi } from '../../src/admin/api.ts';
import { configFromFile } from '../../src/config.ts';
import { WitnessServer } from '../../src/replication/witness-server.ts';
import { startPair, until } from './pair.ts';
import type { Pair } from './pair.ts';

let w: WitnessServer, pair: Pair, apiA: AdminApi, apiB: AdminApi, baseA: string, baseB: string;

async function call(base: string, method: string, p: string, body?: unknown): Promise<{ status: number; json: any }> {
  const res = await fetch(base + p, { method, headers: body === undefined ? {} : { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
  return { status: res.status, json: await res.json() };
}

beforeAll(async () => {
  const log = pino({ level: 'silent' });
  w = new WitnessServer({ host: '127.0.3.1', port: 0, name: 'w-test', log });
  const at = await w.start();
  pair = await startPair({ witness: at });
  apiA = new AdminApi(pair.a, log); apiB = new AdminApi(pair.b, log);
  baseA = `http://127.0.0.1:${await apiA.listen('127.0.0.1', 0)}`;
  baseB = `http://127.0.0.1:${await apiB.listen('127.0.0.1', 0)}`;
  await until(() => pair.ga.machine.snapshot().witness?.owner === 'site-a' && !!pair.gb.machine.snapshot().witness?.reachable, 'in touch with the witness', 15_000);
}, 60_000);
afterAll(async () => { await apiA?.close(); await apiB?.close(); await pair?.close(); await w?.stop(); });

describe('witness and failover verbs on the admin API', () => {
  it('GET /v1/rcopy/witness (rcopy witness status): connected, each group\'s owner, epoch and peer as the witness sees them', { timeout: 30_000 }, async () => {
    // A loaded machine can delay a heartbeat past the fail timeout for a moment: wait for the steady state.
    await pair.synced();
    await until(() => pair.gb.machine.snapshot().witness?.owner === 'site-a' && pair.gb.machine.snapshot().witness?.peerSight === 'alive' && pair.ga.machine.snapshot().witness?.recorded === 'Synced' && !!pair.gb.machine.snapshot().witness?.reachable, 'steady witness view', 15_000);
    const r = await call(baseB, 'GET', '/v1/rcopy/witness');
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({ connected: true, witness: 'w-test', cut: false, groups: [{ group: 'rcg1', owner: 'site-a', epoch: 0, peerSight: 'alive', reachable: true }] });
    const g = (await call(baseA, 'GET', '/v1/rcopy/groups')).json;
    expect(g.witness).toMatchObject({ connected: true });
    expect(g.groups[0]).toMatchObject({ role: 'primary', roleName: 'Primary', naturalRole: 'primary', epoch: 0, serving: true, witness: { owner: 'site-a', recorded: 'Synced' } });
    // `npx arraysim status` carries the same.
    const st = (await call(baseA, 'GET', '/v1/status')).json;
    expect(st.rcopy.groups[0]).toMatchObject({ name: 'rcg1', status: 'Synced', roleName: 'Primary' });
    expect(st.rcopy.witness.connected).toBe(true);
    // The witness's own view.
    expect(w.status().groups).toEqual([expect.objectContaining({ group: 'rcg1', owner: 'site-a', arrays: expect.arrayContaining([expect.objectContaining({ array: 'site-b', sight: 'alive' })]) })]);
  });

  it('refusals: failover on the primary or with the link up is 409 with the reason; restore with natural roles 409; bad bodies 400 naming the field; unknown group 404', async () => {
    const fa = await call(baseA, 'POST', '/v1/rcopy/groups/rcg1/failover');
    expect([fa.status, fa.json.error]).toEqual([409, expect.stringMatching(/secondary/)]);
    const fb = await call(baseB, 'POST', '/v1/rcopy/groups/rcg1/failover');
    expect([fb.status, fb.json.error]).toEqual([409, expect.stringMatching(/link is up/)]);
    const rs = await call(baseA, 'POST', '/v1/rcopy/groups/rcg1/restore');
    expect([rs.status, rs.json.error]).toEqual([409, expect.stringMatching(/natural/)]);
    const rc = await call(baseA, 'POST', '/v1/rcopy/groups/rcg1/recover');
    expect([rc.status, rc.json.error]).toEqual([409, expect.stringMatching(/not failed over/)]);
    expect((await call(baseA, 'POST', '/v1/rcopy/witness', { action: 'sever' })).json).toMatchObject({ field: 'action' });
    expect((await call(baseA, 'POST', '/v1/rcopy/witness', {})).status).toBe(400);
    expect((await call(baseA, 'POST', '/v1/rcopy/groups/nope/failover')).status).toBe(404);
  });

  it('a manual failover the witness does not grant (the primary is alive: a link failure) answers 409 and changes nothing', async () => {
    pair.a.rcopy!.setLink({ action: 'cut' });
    await until(() => pair.gb.machine.link === 'down', 'B link down');
    const r = await call(baseB, 'POST', '/v1/rcopy/groups/rcg1/failover');
    expect(r.status).toBe(409);
    expect(r.json.error).toMatch(/did not grant/);
    expect(pair.gb.role).toBe('secondary');
    expect(pair.ga.role).toBe('primary');
    pair.a.rcopy!.setLink({ action: 'restore' });
    await pair.synced();
  }, 30_000);

  it('reverse on the primary swaps the roles over the live link (both natural); reverse again swaps back; the witness follows', async () => {
    const r = await call(baseA, 'POST', '/v1/rcopy/groups/rcg1/reverse');
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({ role: 'secondary', roleName: 'Secondary', epoch: 1 });
    await until(() => pair.gb.role === 'primary', 'B primary');
    expect(pair.gb.snapshot()).toMatchObject({ roleName: 'Primary', status: 'Synced', epoch: 1 });
    await until(() => pair.gb.machine.snapshot().witness?.owner === 'site-b', 'witness owner follows', 10_000);
    const back = await call(baseB, 'POST', '/v1/rcopy/groups/rcg1/reverse');
    expect(back.status).toBe(200);
    await until(() => pair.ga.role === 'primary' && pair.ga.machine.snapshot().witness?.owner === 'site-a', 'A primary again', 10_000);
    expect(pair.ga.snapshot()).toMatchObject({ roleName: 'Primary', epoch: 2 });
  }, 30_000);

  it('POST /v1/rcopy/witness cut: the array loses the witness (status shows it); restore reconnects', async () => {
    const c = await call(baseB, 'POST', '/v1/rcopy/witness', { action: 'cut' });
    expect(c.json).toMatchObject({ cut: true, connected: false });
    await until(() => pair.gb.machine.snapshot().witness?.reachable === false, 'B witness unreachable', 10_000);
    expect(pair.gb.machine.status).toBe('Synced'); // the link is up: nothing else changes
    await call(baseB, 'POST', '/v1/rcopy/witness', { action: 'restore' });
    await until(() => !!pair.gb.machine.snapshot().witness?.reachable, 'B witness back', 10_000);
  }, 30_000);
});

describe('peers.witness in YAML', () => {
  const load = (yaml: string) => {
    const dir = mkdtempSync(path.join(tmpdir(), 'arraysim-witness-'));
    writeFileSync(path.join(dir, 'a.yaml'), yaml);
    return () => configFromFile(path.join(dir, 'a.yaml'));
  };
  const base = 'targets: [{name: iqn.2026-11.dev.arraysim:t, luns: [64MiB]}]\nrcopy:\n  groups: [{name: g, role: secondary, volumes: [0]}]\n';
  it('is read as HOST:PORT', () => {
    expect(load(base + 'peers: {name: a, listen: "127.0.0.1:1", witness: "127.0.3.1:5300"}\n')().peers!.witness).toEqual({ host: '127.0.3.1', port: 5300 });
  });
  it.each([
    ['peers: {name: a, listen: "127.0.0.1:1", witness: 5300}\n', /peers.witness must be "HOST:PORT"/],
    ['peers: {name: a, listen: "127.0.0.1:1", witness: "127.0.3.1"}\n', /peers.witness must be "HOST:PORT"/],
    ['peers: {name: a, listen: "127.0.0.1:1", witness: "127.0.3.1:99999"}\n', /peers.witness: bad port/],
  ])('refuses %#', (yaml, why) => { expect(load(base + yaml)).toThrow(why); });
});
