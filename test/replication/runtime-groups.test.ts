/**
 * Remote Copy groups defined at runtime (src/replication/runtime-groups.ts), over TCP between two
 * `arraysim serve` processes on loopback, each with only a `peers:` section: creategroup,
 * admitvv and setgroup pol with the CLI on the primary, the group on both arrays, startgroup's
 * whole copy, writes through both arrays byte-compared, a link cut resynced by the dirty map; and
 * the refusals (400 naming the field, geometry, a volume in another group, the active_active rule).
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ScsiDevice } from '../../src/initiator/index.ts';
import pino from 'pino';
import { StorageArray } from '../../src/array.ts';
import type { ArrayConfig } from '../../src/config.ts';
import { targetAnd, volumeRef } from '../../src/replication/cli.ts';
import { admitVolume, createGroup, removeGroup, setPolicy } from '../../src/replication/runtime-groups.ts';
import { startWitness } from './witness-process.ts';
import { readOk, senseOf, settled } from './pair.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const BIN = path.join(ROOT, 'bin/arraysim.js');
const TARGET = 'iqn.2026-12.dev.arraysim:runtime-groups';
const MiB = 1024 * 1024;
const cleanup: (() => Promise<unknown> | void)[] = [];
afterAll(async () => { for (const f of cleanup.reverse()) await f(); });

const port = () => 20000 + Math.floor(Math.random() * 40000);
const site = { a: { host: '127.0.1.1', iscsi: port(), admin: port(), link: port() }, b: { host: '127.0.2.1', iscsi: port(), admin: port(), link: port() } };
const admin = (s: 'a' | 'b') => `${site[s].host}:${site[s].admin}`;

interface Reply { status: number; body: any }
async function api(s: 'a' | 'b', method: string, p: string, body?: unknown): Promise<Reply> {
  const res = await fetch(`http://${admin(s)}${p}`, { method, headers: { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
  return { status: res.status, body: await res.json() };
}

async function cli(...args: string[]): Promise<any> {
  const { stdout } = await promisify(execFile)(process.execPath, [BIN, 'rcopy', ...args, '--admin', admin('a')], { cwd: ROOT });
  return JSON.parse(stdout);
}

async function until(f: () => Promise<boolean>, what: string, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await f())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const groupOn = async (s: 'a' | 'b', name: string) => (await api(s, 'GET', '/v1/rcopy/groups')).body.groups.find((g: { name: string }) => g.name === name);
const lunOn = async (s: 'a' | 'b', lun: number) => (await api(s, 'GET', '/v1/status')).body.targets[0].luns.find((l: { lun: number }) => l.lun === lun);
const tpgState = async (s: 'a' | 'b') => (await api(s, 'GET', '/v1/alua')).body.targets[0].groups.find((g: { ports: number[] }) => g.ports.length).state;

function serve(s: 'a' | 'b'): void {
  const x = site[s];
  const yaml = path.join(mkdtempSync(path.join(tmpdir(), 'arraysim-runtime-')), `site-${s}.yaml`);
  // A: LUN 0 (to replicate), LUN 1 (in another group later); B: LUN 0 (the secondary), LUN 1 (another size).
  const luns = s === 'a' ? '[{spec: 16MiB, naa: "502a7510000b0a00", serial: ASIMRTA0}, {spec: 16MiB}]' : '[{spec: 16MiB, naa: "502a7510000b0b00", serial: ASIMRTB0}, {spec: 8MiB}]';
  writeFileSync(yaml, [
    `portals: [{listen: "${x.host}:${x.iscsi}", tpgt: ${s === 'a' ? 1 : 2}}]`,
    `targets: [{name: ${TARGET}, luns: ${luns}}]`,
    s === 'a' ? `peers: {name: site-a, listen: "${x.host}:${x.link}", peer: "${site.b.host}:${site.b.link}"}` : `peers: {name: site-b, listen: "${x.host}:${x.link}"}`,
    'log: {level: warn}', '',
  ].join('\n'));
  let err = '';
  const p = spawn(process.execPath, [BIN, 'serve', '--config', yaml, '--admin', admin(s)], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
  p.stderr!.on('data', (d) => { err += d; });
  p.on('exit', (code) => { if (code) console.error(`site ${s} exited ${code}: ${err.slice(-2000)}`); });
  cleanup.push(() => { if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL'); });
}

async function open(s: 'a' | 'b', lun = 0): Promise<ScsiDevice> {
  const d = await ScsiDevice.open(`iscsi://${site[s].host}:${site[s].iscsi}/${TARGET}/${lun}`);
  cleanup.push(() => d.close().catch(() => {}));
  await d.clearUnitAttentions();
  return d;
}

describe('the verbs\' words (HPE VV and TARGET:SECVV)', () => {
  it('reads a VV as LUN or IQN/LUN, and TARGET:REST at the first colon', () => {
    expect(volumeRef('3', 'VV')).toEqual({ lun: 3 });
    expect(volumeRef(`${TARGET}/12`, 'VV')).toEqual({ target: TARGET, lun: 12 });
    for (const bad of ['', 'x', `${TARGET}/`, '1.5', '-1']) expect(() => volumeRef(bad, 'SECVV')).toThrow(/SECVV must be LUN or IQN\/LUN/);
    expect(targetAnd(`site-b:${TARGET}/0`)).toEqual({ peer: 'site-b', rest: `${TARGET}/0` });
    expect(targetAnd('site-b:sync')).toEqual({ peer: 'site-b', rest: 'sync' });
    expect(targetAnd('site-b')).toEqual({ peer: 'site-b', rest: undefined });
  });
});

describe('Remote Copy groups defined at runtime (two serve processes)', () => {
  beforeAll(async () => {
    serve('b');
    serve('a');
    await until(async () => (await api('a', 'GET', '/v1/rcopy/groups').catch(() => null))?.status === 200 && (await api('b', 'GET', '/v1/rcopy/groups').catch(() => null))?.status === 200, 'both admin APIs', 30_000);
  }, 40_000);

  it('refuses bad input with 400 naming the field', async () => {
    const cases: [string, unknown, string][] = [
      ['/v1/rcopy/groups', { name: 'g1', peer: 'site-b', mode: 'periodic' }, 'mode'],
      ['/v1/rcopy/groups', { name: 'g1' }, 'peer'],
      ['/v1/rcopy/groups', { name: 'bad name', peer: 'site-b' }, 'name'],
      ['/v1/rcopy/groups/g1/volumes', { volume: { lun: -1 }, peer: 'site-b', secondaryVolume: { lun: 0 } }, 'volume.lun'],
      ['/v1/rcopy/groups/g1/volumes', { volume: { lun: 0 }, peer: 'site-b' }, 'secondaryVolume'],
      ['/v1/rcopy/groups/g1/policies', { policy: 'active_passive' }, 'policy'],
    ];
    for (const [p, body, field] of cases) {
      const r = await api('a', 'POST', p, body);
      expect({ p, body, status: r.status, field: r.body.field }).toEqual({ p, body, status: 400, field });
    }
    // The routes are in the OpenAPI document the array serves, with their bodies.
    const doc = (await api('a', 'GET', '/v1/openapi.json')).body;
    for (const p of ['/v1/rcopy/groups', '/v1/rcopy/groups/{group}/volumes', '/v1/rcopy/groups/{group}/policies']) expect(doc.paths[p]?.post?.requestBody, p).toBeDefined();
    // Negative control of the table: a well-formed request is not a 400 (the group does not exist: 404).
    expect((await api('a', 'POST', '/v1/rcopy/groups/g1/policies', { policy: 'active_active' })).status).toBe(404);
  });

  it('creategroup, admitvv, setgroup pol, startgroup: one volume through both arrays', async () => {
    // Data on the primary volume before it is replicated: the initial sync must carry it.
    const viaA = await open('a');
    const before = randomBytes(64 * 512);
    expect(senseOf(await settled(() => viaA.write(100n, before)))).toBe('good');
    const [naaA, naaB] = [(await lunOn('a', 0)).naa, (await lunOn('b', 0)).naa];
    expect(naaA).not.toBe(naaB);

    // creategroup: the peer must answer to the name given.
    const wrong = await api('a', 'POST', '/v1/rcopy/groups', { name: 'rcg9', peer: 'site-x' });
    expect(wrong.status).toBe(409);
    expect(wrong.body).toMatchObject({ field: 'peer' });
    expect(wrong.body.error).toMatch(/site-b, not site-x/);
    expect(await cli('creategroup', 'rcg9', 'site-b:sync')).toMatchObject({ name: 'rcg9', role: 'primary', status: 'Stopped', volumes: [] });
    expect(await groupOn('b', 'rcg9')).toMatchObject({ role: 'secondary', status: 'Stopped' });
    expect((await api('a', 'POST', '/v1/rcopy/groups', { name: 'rcg9', peer: 'site-b' })).status).toBe(409);

    // admitvv: geometry must match (B's LUN 1 is 8 MiB).
    const geo = await api('a', 'POST', '/v1/rcopy/groups/rcg9/volumes', { volume: { lun: 0 }, peer: 'site-b', secondaryVolume: { lun: 1 } });
    expect(geo.status).toBe(409);
    expect(geo.body.field).toBe('secondaryVolume');
    expect(geo.body.error).toMatch(/same geometry/);
    // A host already logged in to B's volume is told its INQUIRY data changed.
    const early = await open('b');
    expect((await early.clearUnitAttentions()).unitAttentions).toEqual([]);
    const admitted = await cli('admitvv', '0', 'rcg9', `site-b:${TARGET}/0`);
    expect(admitted.volumes).toEqual([{ target: TARGET, lun: 0, wwn: naaA }]);
    // The secondary volume now presents the primary's WWN and serial.
    const [luA, luB] = [await lunOn('a', 0), await lunOn('b', 0)];
    expect({ naa: luB.naa, serial: luB.serial }).toEqual({ naa: luA.naa, serial: luA.serial });
    const uas = (await early.clearUnitAttentions()).unitAttentions.map((u) => [u.key, u.asc, u.ascq]);
    expect(uas).toContainEqual([6, 0x3f, 0x03]);
    expect((await early.naa()).toString('hex')).toBe(naaA);
    await until(async () => (await groupOn('a', 'rcg9')).link === 'up', 'the link up again with the volume');
    expect(await groupOn('b', 'rcg9')).toMatchObject({ volumes: [{ lun: 0, wwn: naaA }] });

    // A volume in a group cannot join another.
    await cli('creategroup', 'rcg8', 'site-b');
    const twice = await api('a', 'POST', '/v1/rcopy/groups/rcg8/volumes', { volume: { lun: 0 }, peer: 'site-b', secondaryVolume: { lun: 1 } });
    expect(twice.status).toBe(409);
    expect(twice.body).toMatchObject({ field: 'volume' });
    expect(twice.body.error).toMatch(/already in Remote Copy group rcg9/);
    const twiceB = await api('a', 'POST', '/v1/rcopy/groups/rcg8/volumes', { volume: { lun: 1 }, peer: 'site-b', secondaryVolume: { lun: 0 } });
    expect(twiceB.status).toBe(409);
    expect(twiceB.body.field).toBe('secondaryVolume');
    expect(twiceB.body.error).toMatch(/already in Remote Copy group rcg9/);

    // setgroup pol active_active: on both arrays, and its fixed policies stay on.
    expect((await cli('setgroup', 'pol', 'active_active', 'rcg9')).policies).toEqual({ active_active: true, path_management: true, auto_failover: true, auto_recover: true, auto_synchronize: true });
    expect((await groupOn('b', 'rcg9')).policies.active_active).toBe(true);
    const fixed = await api('a', 'POST', '/v1/rcopy/groups/rcg9/policies', { policy: 'no_auto_failover' });
    expect(fixed.status).toBe(409);
    expect(fixed.body.error).toMatch(/cannot be turned off in an active_active group/);
    expect((await api('a', 'POST', '/v1/rcopy/groups/rcg9/policies', { policy: 'no_auto_recover' })).body.policies.auto_recover).toBe(false);
    expect((await groupOn('b', 'rcg9')).policies.auto_recover).toBe(false);
    await cli('setgroup', 'pol', 'auto_recover', 'rcg9');

    // startgroup: the whole volume is copied (the initial sync), then both serve.
    expect((await api('a', 'POST', '/v1/rcopy/groups/rcg9/start')).status).toBe(200);
    await until(async () => (await groupOn('a', 'rcg9')).status === 'Synced' && (await groupOn('b', 'rcg9')).status === 'Synced', 'rcg9 Synced on both');
    expect((await groupOn('a', 'rcg9')).stats.lastResyncBytes).toBe(16 * MiB);
    // active_active first applied, no proximity set: primary paths optimized, secondary non-optimized.
    expect([await tpgState('a'), await tpgState('b')]).toEqual(['active/optimized', 'active/non-optimized']);
    // admithost -proximity all on each array (as HPE: host definitions on both): that host is optimized on both.
    const host = 'iqn.1994-05.com.example:h1';
    for (const s of ['a', 'b'] as const) expect((await api(s, 'POST', '/v1/rcopy/groups/rcg9/hosts', { host, proximity: 'all' })).body.hosts).toEqual({ [host]: 'all' });
    const hostState = async (s: 'a' | 'b') => (await api(s, 'GET', '/v1/alua')).body.targets[0].groups.find((g: { ports: number[] }) => g.ports.length).hosts[host];
    await until(async () => (await hostState('b')) === 'active/optimized', 'B optimized for the host of proximity all');
    expect(await hostState('a')).toBe('active/optimized');

    const viaB = await open('b');
    expect((await viaB.naa()).toString('hex')).toBe(naaA);
    expect((await readOk(viaB, 100n, 64)).equals(before)).toBe(true);
    const x = randomBytes(32 * 512);
    const y = randomBytes(32 * 512);
    expect(senseOf(await settled(() => viaA.write(2000n, x)))).toBe('good');
    expect(senseOf(await settled(() => viaB.write(3000n, y)))).toBe('good');
    for (const d of [viaA, viaB]) {
      expect((await readOk(d, 2000n, 32)).equals(x)).toBe(true);
      expect((await readOk(d, 3000n, 32)).equals(y)).toBe(true);
      expect((await readOk(d, 100n, 64)).equals(before)).toBe(true);
    }

    // Like a group of the configuration: a link cut, writes on the primary alone, auto_recover resyncs only those.
    await api('a', 'POST', '/v1/rcopy/link', { action: 'cut' });
    await until(async () => (await groupOn('a', 'rcg9')).link === 'down', 'link down');
    const z = randomBytes(8 * 512);
    expect(senseOf(await settled(() => viaA.write(5000n, z)))).toBe('good');
    await api('a', 'POST', '/v1/rcopy/link', { action: 'restore' });
    await until(async () => (await groupOn('a', 'rcg9')).status === 'Synced' && (await groupOn('b', 'rcg9')).status === 'Synced', 'rcg9 Synced after the cut');
    expect((await groupOn('a', 'rcg9')).stats.lastResyncBytes).toBe(z.length);
    const viaB2 = await open('b');
    expect((await readOk(viaB2, 5000n, 8)).equals(z)).toBe(true);
  }, 90_000);
});

/**
 * The witness (its own process) and two arrays in this process with only peers: sections; an
 * active_active group of one volume made on A with the functions the admin routes call, started,
 * Synced and so recorded by the witness. `tag` names the target and the group, `id` the NAAs.
 */
async function witnessPair(tag: string, id: string) {
  const witness = await startWitness();
  cleanup.push(async () => { await witness.stop(); });
  const log = pino({ level: 'silent' });
  const config = (s: 'a' | 'b', peer?: number): ArrayConfig => ({
    portals: [{ host: site[s].host, port: 0, tpgt: s === 'a' ? 1 : 2, targetPortGroup: s === 'a' ? 1 : 2 }],
    targets: [{ name: `${TARGET}-${tag}`, luns: [{ spec: `${4 * MiB}`, naa: `502a7510000b0${s}${id}`, serial: `ASIMRT${tag.toUpperCase()}${s}` }] }],
    iscsi: { nopInterval: 0 }, logLevel: 'silent',
    peers: { name: `site-${s}`, listen: { host: site[s].host, port: 0 }, peer: peer === undefined ? undefined : { host: site.b.host, port: peer }, witness: { host: witness.host, port: witness.port } },
    rcopy: { groups: [] },
  });
  const b = await StorageArray.create(config('b'), log);
  await b.start();
  cleanup.push(() => b.stop());
  const a = await StorageArray.create(config('a', b.config.peers!.listen!.port), log);
  await a.start();
  let aStopped = false;
  cleanup.push(() => (aStopped ? undefined : a.stop()));
  const ga = await createGroup(a.rcopy!, { name: `rcg${tag}`, peer: 'site-b' });
  await admitVolume(a.rcopy!, ga, { volume: { lun: 0 }, peer: 'site-b', secondaryVolume: { lun: 0 } });
  await setPolicy(a.rcopy!, ga, 'active_active'); // auto_failover on, for good
  const gb = b.rcopy!.groups.get(`rcg${tag}`)!;
  await until(async () => ga.machine.link === 'up', 'the link up again after admitvv');
  expect(ga.operator({ kind: 'operator', command: { verb: 'start' } })).toBeNull();
  await until(async () => ga.machine.status === 'Synced' && gb.machine.status === 'Synced'
    && ga.machine.snapshot().witness?.recorded === 'Synced' && gb.machine.snapshot().witness?.recorded === 'Synced', `rcg${tag} Synced, and so recorded by the witness`);
  const open = async (s: 'a' | 'b') => {
    const d = await ScsiDevice.open(`iscsi://${site[s].host}:${(s === 'a' ? a : b).config.portals[0].port}/${TARGET}-${tag}/0`);
    cleanup.push(() => d.close().catch(() => {}));
    await d.clearUnitAttentions();
    return d;
  };
  return { witness, a, b, ga, gb, open, stopA: async () => { aStopped = true; await a.stop(); } };
}

/**
 * A group made at runtime fails over like one of the YAML: the arrays in this process (peers:
 * sections only), the witness as its own process; the group is defined with the functions the
 * admin routes call, started, and the primary array is stopped. And removed from the primary alone
 * (removegroup -local, the link cut): the witness keeps refusing the secondary a failover. And
 * removed from both (removegroup): the witness forgets its record.
 */
describe('a group made at runtime, with the quorum witness', () => {
  it('the witness grants the secondary a failover when the primary array fails, and it serves the data', async () => {
    const { witness, gb, open, stopA } = await witnessPair('w', '10');
    const db = await open('b');
    const before = randomBytes(16 * 512);
    expect(senseOf(await settled(() => db.write(40n, before)))).toBe('good');

    await stopA();
    await until(async () => gb.role === 'primary', `B failed over; witness: ${witness.log().split('\n').filter((l) => /owner|grant/.test(l)).slice(-3).join(' | ')}`, 20_000);
    expect(gb.snapshot()).toMatchObject({ roleName: 'Primary-Rev', epoch: 1, serving: true, witness: { owner: 'site-b' } });
    const after = randomBytes(16 * 512);
    expect(senseOf(await settled(() => db.write(56n, after)))).toBe('good');
    expect((await readOk(db, 40n, 32)).equals(Buffer.concat([before, after]))).toBe(true);
  }, 60_000);

  it('removegroup -local on a primary serving alone: the witness never grants the secondary a failover afterwards', async () => {
    const { witness, a, ga, gb, open } = await witnessPair('l', '11');
    // The link goes; A, still the witness's owner, serves alone once the witness has recorded it so.
    a.rcopy!.setLink({ action: 'cut' });
    await until(async () => ga.machine.link === 'down' && gb.machine.link === 'down', 'the link down on both');
    expect(ga.operator({ kind: 'operator', command: { verb: 'stop' } })).toBeNull();
    await until(async () => ga.machine.serving, 'A serving alone');
    const da = await open('a');
    expect(senseOf(await settled(() => da.write(8n, randomBytes(8 * 512))))).toBe('good');
    expect((await removeGroup(a.rcopy!, ga, { force: true, local: true })).dismissed).toHaveLength(1);
    expect(a.rcopy!.groups.has('rcgl')).toBe(false);
    // A now reports nothing of the group; B asks for it (auto_failover) once A is lost to the
    // witness, and is refused: A's last report was not Synced, it may have written alone. It does.
    expect(senseOf(await settled(() => da.write(16n, randomBytes(8 * 512))))).toBe('good');
    await until(async () => /"group":"rcgl","array":"site-b","reason":"the other array last reported Stopped with its link down: it may have written alone","msg":"failover not granted"/.test(witness.log()),
      `the witness refusing B for A's last report; witness: ${witness.log().split('\n').slice(-2).join(' | ')}`, 20_000);
    await new Promise((r) => setTimeout(r, 2500));
    expect(gb.role).toBe('secondary');
    expect(gb.machine.serving).toBe(false);
    expect(witness.log()).not.toMatch(/failover granted/);
    // -local does not ask the witness to forget the group: its record is what refuses B.
    expect(witness.log()).not.toMatch(/group record forgotten/);
  }, 60_000);

  it('removegroup on both arrays has the witness forget the group\'s record; made again, the group starts new', async () => {
    const { witness, a, ga, gb } = await witnessPair('f', '12');
    expect(ga.operator({ kind: 'operator', command: { verb: 'stop' } })).toBeNull();
    await until(async () => gb.machine.status === 'Stopped', 'rcgf Stopped on B');
    await removeGroup(a.rcopy!, ga, { force: true });
    await until(async () => /"group":"rcgf","array":"site-a","msg":"group record forgotten \(removegroup\)"/.test(witness.log()), `the witness forgetting rcgf; witness: ${witness.log().split('\n').slice(-2).join(' | ')}`);
    expect(witness.log()).not.toMatch(/group record kept/);
    // Made again under the name: a new group, owned by its primary at epoch 0.
    const again = await createGroup(a.rcopy!, { name: 'rcgf', peer: 'site-b' });
    await admitVolume(a.rcopy!, again, { volume: { lun: 0 }, peer: 'site-b', secondaryVolume: { lun: 0 } });
    await until(async () => again.machine.link === 'up', 'the link up after admitvv');
    expect(again.operator({ kind: 'operator', command: { verb: 'start' } })).toBeNull();
    await until(async () => again.machine.status === 'Synced' && again.machine.snapshot().witness?.owner === 'site-a', 'rcgf again Synced, owned by site-a');
    expect(again.machine.snapshot().witness).toMatchObject({ owner: 'site-a', epoch: 0 });
  }, 60_000);
});
