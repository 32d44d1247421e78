/**
 * dismissvv and removegroup (src/replication/runtime-groups.ts), the inverse of admitvv and
 * creategroup: two arrays in this process, each with its admin API and its portals on its own
 * loopback address, the replication link and iSCSI over TCP, the verbs through the CLI
 * (`arraysim rcopy`, a process) and the admin API. A group of two volumes on two targets is made,
 * copied and stopped; its first volume is dismissed (the second moves down one place on both
 * arrays, and replicates still), then the last; the group is removed; a group with a volume is
 * removed with -f, after its failed volume is dismissed. After a dismiss the secondary volume answers INQUIRY with its own NAA again and
 * both volumes take writes that no longer reach each other. And the refusals: started (409), on
 * the secondary (409), a group of the configuration (409), unknown group or volume (404), bad
 * bodies (400 naming the field). And removegroup -local with the link down: each array removes
 * its own side (the primary only while it serves the group alone), refused while the link is up.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdminApi } from '../../src/admin/api.ts';
import { StorageArray } from '../../src/array.ts';
import type { ArrayConfig } from '../../src/config.ts';
import { ScsiDevice } from '../../src/initiator/index.ts';
import { hpeForce } from '../../src/replication/cli.ts';
import { readOk, senseOf, settled, until } from './pair.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const BIN = path.join(ROOT, 'bin/arraysim.js');
const T1 = 'iqn.2026-12.dev.arraysim:dismiss-1';
const T2 = 'iqn.2026-12.dev.arraysim:dismiss-2';
const T3 = 'iqn.2026-12.dev.arraysim:dismiss-cfg';
/** A's LUN here is a file written through (each write waits for the disk: some are in flight when a dismiss comes). */
const T4 = 'iqn.2026-12.dev.arraysim:dismiss-file';
/** removegroup -local: a group whose other array is gone. */
const T5 = 'iqn.2026-12.dev.arraysim:dismiss-local';
const FILES = mkdtempSync(path.join(tmpdir(), 'arraysim-dismiss-'));
const MiB = 1024 * 1024;
const HOST = { a: '127.0.1.1', b: '127.0.2.1' } as const;
type Site = 'a' | 'b';
/** Each array's own designators; T3 LUN 0 is the configuration's group (the same on both). */
const NAA = { a: ['502a7510000d0a01', '502a7510000d0a02', '502a7510000d0a03'], b: ['502a7510000d0b01', '502a7510000d0b02', '502a7510000d0b03'] };
const SERIAL = { a: ['ASIMDSA1', 'ASIMDSA2', 'ASIMDSA3'], b: ['ASIMDSB1', 'ASIMDSB2', 'ASIMDSB3'] };

const cleanup: (() => Promise<unknown> | void)[] = [];
afterAll(async () => { for (const f of cleanup.reverse()) await f(); });
cleanup.push(() => rmSync(FILES, { recursive: true, force: true }));
const arrays: Partial<Record<Site, { array: StorageArray; admin: string }>> = {};

function config(s: Site, peer?: number): ArrayConfig {
  const lun = (i: number) => ({ spec: `${4 * MiB}`, naa: NAA[s][i], serial: SERIAL[s][i] });
  return {
    portals: [{ host: HOST[s], port: 0, tpgt: s === 'a' ? 1 : 2, targetPortGroup: s === 'a' ? 1 : 2 }],
    // T1: LUN 0 (the group's first volume), LUN 1 (removegroup -f); T2: LUN 0 (its second); T3: the configuration's group.
    targets: [{ name: T1, luns: [lun(0), lun(1)] }, { name: T2, luns: [lun(2)] }, { name: T3, luns: [{ spec: `${MiB}`, naa: '502a7510000d0c01', serial: 'ASIMDSC1' }] },
      { name: T4, luns: [{ spec: s === 'a' ? `file:${path.join(FILES, 'a-t4.img')},size=${4 * MiB},writethrough` : `${4 * MiB}`, naa: `502a7510000d0${s}04`, serial: `ASIMDS${s.toUpperCase()}4` }] },
      { name: T5, luns: [{ spec: `${4 * MiB}`, naa: `502a7510000d0${s}05`, serial: `ASIMDS${s.toUpperCase()}5` }] }],
    iscsi: { nopInterval: 0 }, logLevel: 'silent',
    peers: { name: `site-${s}`, listen: { host: HOST[s], port: 0 }, peer: peer === undefined ? undefined : { host: HOST.b, port: peer } },
    rcopy: { groups: [{ name: 'cfg1', role: s === 'a' ? 'primary' : 'secondary', volumes: [{ target: T3, lun: 0 }] }] },
  };
}

async function start(s: Site, peer?: number): Promise<void> {
  const log = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
  const array = await StorageArray.create(config(s, peer), log);
  await array.start();
  const api = new AdminApi(array, log, {});
  const port = await api.listen(HOST[s], 0);
  cleanup.push(async () => { await api.close(); await array.stop(); });
  arrays[s] = { array, admin: `${HOST[s]}:${port}` };
}

const admin = (s: Site) => arrays[s]!.admin;
const iscsiPort = (s: Site) => arrays[s]!.array.config.portals[0].port;

interface Reply { status: number; body: any }
async function api(s: Site, method: string, p: string, body?: unknown): Promise<Reply> {
  const res = await fetch(`http://${admin(s)}${p}`, { method, headers: { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
  return { status: res.status, body: await res.json() };
}

/** POST to site A's admin API; the reply's body, which must be a 200. */
async function ok(p: string, body?: unknown): Promise<any> {
  const r = await api('a', 'POST', p, body);
  if (r.status !== 200) throw new Error(`POST ${p}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}

/** `arraysim rcopy ...` (a process, about 1 s each here) against site A's admin API: the JSON it prints. */
async function cli(...args: string[]): Promise<any> {
  const { stdout } = await promisify(execFile)(process.execPath, [BIN, 'rcopy', ...args, '--admin', admin('a')], { cwd: ROOT });
  return JSON.parse(stdout);
}
const groupOn = async (s: Site, name: string) => (await api(s, 'GET', '/v1/rcopy/groups')).body.groups.find((g: { name: string }) => g.name === name);
const lunOn = async (s: Site, target: string, lun: number) => (await api(s, 'GET', '/v1/status')).body.targets.find((t: { name: string }) => t.name === target).luns.find((l: { lun: number }) => l.lun === lun);
const tpgState = async (s: Site, target: string) => (await api(s, 'GET', '/v1/alua')).body.targets.find((t: { name: string }) => t.name === target).groups.find((g: { ports: number[] }) => g.ports.length).state;

async function open(s: Site, target: string, lun = 0): Promise<ScsiDevice> {
  const d = await ScsiDevice.open(`iscsi://${HOST[s]}:${iscsiPort(s)}/${target}/${lun}`);
  cleanup.push(() => d.close().catch(() => {}));
  await d.clearUnitAttentions();
  return d;
}


/** The LU's NAA designator in VPD 0x83, asked each time (ScsiDevice.naa() keeps the first answer). */
async function vpdNaa(d: ScsiDevice): Promise<string> {
  const r = await d.deviceIdentification();
  if (r.kind !== 'good' || !r.value.naa) throw new Error(`VPD 0x83: ${senseOf(r)}`);
  return r.value.naa.toString('hex');
}
const writeOk = async (d: ScsiDevice, lba: bigint, data: Buffer) => expect(senseOf(await settled(() => d.write(lba, data)))).toBe('good');

describe('HPE -f and -removevv on the CLI', () => {
  it('takes -f before the operands and refuses -removevv (arraysim deletes no LUN)', () => {
    expect(hpeForce(['-f', 'g1'])).toEqual({ force: true, local: false, rest: ['g1'] });
    expect(hpeForce(['0', 'g1'])).toEqual({ force: false, local: false, rest: ['0', 'g1'] });
    expect(hpeForce(['-f', '-local', 'g1'])).toEqual({ force: true, local: true, rest: ['g1'] });
    expect(() => hpeForce(['-removevv', 'g1'])).toThrow(/deletes no LUN/);
    expect(() => hpeForce(['-x', 'g1'])).toThrow(/unknown option -x/);
  });
});

describe('dismissvv and removegroup (two arrays over TCP)', () => {
  beforeAll(async () => {
    await start('b');
    await start('a', arrays.b!.array.config.peers!.listen!.port);
    await until(async () => (await groupOn('a', 'cfg1')).status === 'Synced', 'the configuration\'s group Synced', 20_000);
  }, 30_000);

  it('refuses bad bodies with 400 naming the field, and lists the routes in the OpenAPI document', async () => {
    const cases: [string, unknown, string][] = [
      ['/v1/rcopy/groups/cfg1/dismiss', {}, 'volume'],
      ['/v1/rcopy/groups/cfg1/dismiss', { volume: { lun: -1 } }, 'volume.lun'],
      ['/v1/rcopy/groups/cfg1/dismiss', { volume: { lun: 0, target: '' } }, 'volume.target'],
      ['/v1/rcopy/groups/cfg1/dismiss', { volume: { lun: 0 }, peer: 'site-b' }, 'peer'],
      ['/v1/rcopy/groups/cfg1/remove', { force: 'yes' }, 'force'],
      ['/v1/rcopy/groups/cfg1/remove', { removevv: true }, 'removevv'],
    ];
    for (const [p, body, field] of cases) {
      const r = await api('a', 'POST', p, body);
      expect({ p, body, status: r.status, field: r.body.field }).toEqual({ p, body, status: 400, field });
    }
    const doc = (await api('a', 'GET', '/v1/openapi.json')).body;
    for (const p of ['/v1/rcopy/groups/{group}/dismiss', '/v1/rcopy/groups/{group}/remove']) expect(doc.paths[p]?.post?.requestBody, p).toBeDefined();
    // Negative control of the table: well-formed requests are not 400s.
    expect((await api('a', 'POST', '/v1/rcopy/groups/nosuch/dismiss', { volume: { lun: 0 } })).status).toBe(404);
    expect((await api('a', 'POST', '/v1/rcopy/groups/nosuch/remove', {})).status).toBe(404);
  });

  it('refuses a group of the configuration (it would come back at the next restart)', async () => {
    await api('a', 'POST', '/v1/rcopy/groups/cfg1/stop');
    for (const [p, body] of [['/v1/rcopy/groups/cfg1/dismiss', { volume: { target: T3, lun: 0 } }], ['/v1/rcopy/groups/cfg1/remove', { force: true }]] as const) {
      const r = await api('a', 'POST', p, body);
      expect(r.status).toBe(409);
      expect(r.body.error).toMatch(/in this array's configuration \(rcopy\.groups\)/);
    }
    expect(await groupOn('b', 'cfg1')).toMatchObject({ volumes: [{ target: T3, lun: 0 }] });
  });

  it('creategroup, admitvv ×2, startgroup, stopgroup, dismissvv ×2, removegroup: each volume a plain LU again on both arrays', async () => {
    // A host on B's T1 LUN 0 before anything: B's own designator.
    const hostB = await open('b', T1);
    expect((await vpdNaa(hostB))).toBe(NAA.b[0]);
    const before = randomBytes(32 * 512);
    await writeOk(await open('a', T1), 50n, before);
    const stateB0 = await tpgState('b', T1);
    expect(stateB0).toBe('active/optimized');

    // Made with the admin API (runtime-groups.test.ts runs these verbs through the CLI).
    await ok('/v1/rcopy/groups', { name: 'rcgd', peer: 'site-b' });
    for (const t of [T1, T2]) await ok('/v1/rcopy/groups/rcgd/volumes', { volume: { target: t, lun: 0 }, peer: 'site-b', secondaryVolume: { target: t, lun: 0 } });
    // Both arrays serve the group (a classic group's secondary would be standby).
    await ok('/v1/rcopy/groups/rcgd/policies', { policy: 'active_active' });
    expect((await vpdNaa(hostB))).toBe(NAA.a[0]);
    expect((await lunOn('b', T2, 0)).naa).toBe(NAA.a[2]);
    await hostB.clearUnitAttentions();
    await ok('/v1/rcopy/groups/rcgd/start');
    await until(async () => (await groupOn('a', 'rcgd')).status === 'Synced' && (await groupOn('b', 'rcgd')).status === 'Synced', 'rcgd Synced', 20_000);

    // Refused while started, and on the secondary.
    for (const [p, body] of [['/v1/rcopy/groups/rcgd/dismiss', { volume: { target: T1, lun: 0 } }], ['/v1/rcopy/groups/rcgd/remove', { force: true }]] as const) {
      const started = await api('a', 'POST', p, body);
      expect(started.status).toBe(409);
      expect(started.body.error).toMatch(/is Synced and started: stopgroup first/);
      const onB = await api('b', 'POST', p, body);
      expect(onB.status).toBe(409);
      expect(onB.body.error).toMatch(/run on the primary array of rcgd \(this one is secondary\)/);
    }
    expect((await ok('/v1/rcopy/groups/rcgd/stop')).started).toBe(false);
    await until(async () => (await groupOn('b', 'rcgd')).status === 'Stopped', 'rcgd Stopped on B', 20_000);
    // Stopped, B does not serve the group: its paths on both targets are unavailable.
    expect([await tpgState('b', T1), await tpgState('b', T2)]).toEqual(['unavailable', 'unavailable']);
    expect((await api('b', 'POST', '/v1/rcopy/groups/rcgd/dismiss', { volume: { target: T1, lun: 0 } })).status).toBe(409);

    // Unknown volume and group: 404.
    const notIn = await api('a', 'POST', '/v1/rcopy/groups/rcgd/dismiss', { volume: { target: T1, lun: 1 } });
    expect([notIn.status, notIn.body.field]).toEqual([404, 'volume']);
    expect(notIn.body.error).toMatch(/not a volume of Remote Copy group rcgd: it is in no group/);
    expect((await api('a', 'POST', '/v1/rcopy/groups/rcgd/dismiss', { volume: { target: T1, lun: 9 } })).body.error).toMatch(/there is no LUN 9/);
    expect((await api('a', 'POST', '/v1/rcopy/groups/rcgx/dismiss', { volume: { lun: 0 } })).status).toBe(404);
    // A group with volumes is not removed without -f.
    const withVolumes = await api('a', 'POST', '/v1/rcopy/groups/rcgd/remove', {});
    expect([withVolumes.status, withVolumes.body.field]).toEqual([409, 'force']);
    expect(withVolumes.body.error).toMatch(/has 2 volumes: dismissvv them first, or removegroup -f/);

    // dismissvv the first volume: the second moves down to volume 0 on both arrays.
    const after = await cli('dismissvv', '-f', `${T1}/0`, 'rcgd');
    expect(after.volumes).toEqual([{ target: T2, lun: 0, wwn: NAA.a[2] }]);
    expect((await groupOn('b', 'rcgd')).volumes).toEqual([{ target: T2, lun: 0, wwn: NAA.a[2] }]);
    // B's volume has its own identity back (VPD 0x83 and 0x80), and its host was told (3F/03).
    const uas = (await hostB.clearUnitAttentions()).unitAttentions.map((u) => [u.key, u.asc, u.ascq]);
    expect(uas).toContainEqual([6, 0x3f, 0x03]);
    expect((await vpdNaa(hostB))).toBe(NAA.b[0]);
    expect(await lunOn('b', T1, 0)).toMatchObject({ naa: NAA.b[0], serial: SERIAL.b[0] });
    expect(await lunOn('a', T1, 0)).toMatchObject({ naa: NAA.a[0], serial: SERIAL.a[0] });
    // T1 holds no group volume now: its port groups are as before admitvv, and both LUs serve alone.
    expect(await tpgState('b', T1)).toBe(stateB0);
    const viaA = await open('a', T1);
    const viaB = await open('b', T1);
    expect((await readOk(viaB, 50n, 32)).equals(before)).toBe(true); // the copy it received while in the group stays
    const x = randomBytes(16 * 512);
    const y = randomBytes(16 * 512);
    await writeOk(viaA, 1000n, x);
    await writeOk(viaB, 1000n, y);
    await writeOk(viaB, 2000n, y);
    expect((await readOk(viaA, 1000n, 16)).equals(x)).toBe(true);
    expect((await readOk(viaB, 1000n, 16)).equals(y)).toBe(true);
    expect((await readOk(viaA, 2000n, 16)).equals(Buffer.alloc(16 * 512))).toBe(true);

    // The renumbered volume still replicates: writes while stopped are resynced at the next start.
    const z = randomBytes(8 * 512);
    await writeOk(await open('a', T2), 300n, z);
    await ok('/v1/rcopy/groups/rcgd/start');
    await until(async () => (await groupOn('a', 'rcgd')).status === 'Synced' && (await groupOn('b', 'rcgd')).status === 'Synced', 'rcgd Synced again with one volume', 20_000);
    expect((await groupOn('a', 'rcgd')).stats.lastResyncBytes).toBe(z.length);
    const z2 = randomBytes(8 * 512);
    const t2b = await open('b', T2);
    await writeOk(t2b, 400n, z2);
    expect((await readOk(await open('a', T2), 400n, 8)).equals(z2)).toBe(true);
    expect((await readOk(t2b, 300n, 8)).equals(z)).toBe(true);

    // Dismissing the last volume leaves the group, empty, on both.
    await ok('/v1/rcopy/groups/rcgd/stop');
    await until(async () => (await groupOn('b', 'rcgd')).status === 'Stopped', 'rcgd Stopped on B again', 20_000);
    expect((await ok('/v1/rcopy/groups/rcgd/dismiss', { volume: { target: T2, lun: 0 } })).volumes).toEqual([]);
    expect(await groupOn('b', 'rcgd')).toMatchObject({ volumes: [], role: 'secondary' });
    expect(await lunOn('b', T2, 0)).toMatchObject({ naa: NAA.b[2], serial: SERIAL.b[2] });
    expect(await tpgState('b', T2)).toBe(stateB0);
    await writeOk(t2b, 500n, z2);
    expect((await readOk(await open('a', T2), 500n, 8)).equals(Buffer.alloc(8 * 512))).toBe(true);

    // removegroup: gone from both arrays; the name can be used again.
    expect(await cli('removegroup', 'rcgd')).toEqual({ name: 'rcgd', dismissed: [] });
    expect(await groupOn('a', 'rcgd')).toBeUndefined();
    expect(await groupOn('b', 'rcgd')).toBeUndefined();
    expect((await ok('/v1/rcopy/groups', { name: 'rcgd', peer: 'site-b' })).volumes).toEqual([]);
    expect(await groupOn('b', 'rcgd')).toMatchObject({ role: 'secondary' });
    expect((await ok('/v1/rcopy/groups/rcgd/remove', {})).name).toBe('rcgd');
    expect(await groupOn('b', 'rcgd')).toBeUndefined();
  }, 90_000);

  it('a failed volume dismissed no longer holds the group; removegroup -f dismisses the volumes it still has, on both arrays', async () => {
    await ok('/v1/rcopy/groups', { name: 'rcgf', peer: 'site-b' });
    for (const [t, lun] of [[T1, 1], [T2, 0]] as const) await ok('/v1/rcopy/groups/rcgf/volumes', { volume: { target: t, lun }, peer: 'site-b', secondaryVolume: { target: t, lun } });
    expect((await lunOn('b', T1, 1)).naa).toBe(NAA.a[1]);
    // A's store under the group's first volume fails: the group is not served here until it is repaired, or dismissed.
    await ok('/v1/stores/fault', { target: T1, lun: 1, action: 'fail' });
    await until(async () => (await groupOn('a', 'rcgf')).storeFailure !== null, 'the store failure seen by the group', 20_000);
    expect((await groupOn('a', 'rcgf')).serving).toBe(false);
    expect(await cli('dismissvv', `${T1}/1`, 'rcgf')).toMatchObject({ serving: true, storeFailure: null, volumes: [{ target: T2, lun: 0, wwn: NAA.a[2] }] });
    await ok('/v1/stores/fault', { target: T1, lun: 1, action: 'repair' });

    expect((await api('a', 'POST', '/v1/rcopy/groups/rcgf/remove', { force: false })).status).toBe(409);
    expect(await cli('removegroup', '-f', 'rcgf')).toEqual({ name: 'rcgf', dismissed: [{ target: T2, lun: 0, wwn: NAA.a[2] }] });
    expect(await groupOn('a', 'rcgf')).toBeUndefined();
    expect(await groupOn('b', 'rcgf')).toBeUndefined();
    expect(await lunOn('b', T1, 1)).toMatchObject({ naa: NAA.b[1], serial: SERIAL.b[1] });
    expect(await lunOn('b', T2, 0)).toMatchObject({ naa: NAA.b[2], serial: SERIAL.b[2] });
    // Both serve, apart.
    const [viaA, viaB] = [await open('a', T1, 1), await open('b', T1, 1)];
    const x = randomBytes(4 * 512);
    await writeOk(viaB, 7n, x);
    expect((await readOk(viaB, 7n, 4)).equals(x)).toBe(true);
    expect((await readOk(viaA, 7n, 4)).equals(Buffer.alloc(4 * 512))).toBe(true);
    // The configuration's group still runs beside them.
    expect((await groupOn('a', 'cfg1')).volumes).toEqual([{ target: T3, lun: 0, wwn: '502a7510000d0c01' }]);
  }, 60_000);

  it('writes in flight while the volume before theirs is dismissed land under its new number: the resync leaves both arrays equal', async () => {
    await ok('/v1/rcopy/groups', { name: 'rcgw', peer: 'site-b' });
    for (const t of [T2, T4]) await ok('/v1/rcopy/groups/rcgw/volumes', { volume: { target: t, lun: 0 }, peer: 'site-b', secondaryVolume: { target: t, lun: 0 } });
    await ok('/v1/rcopy/groups/rcgw/policies', { policy: 'active_active' });
    await ok('/v1/rcopy/groups/rcgw/start');
    await until(async () => (await groupOn('a', 'rcgw')).status === 'Synced' && (await groupOn('b', 'rcgw')).status === 'Synced', 'rcgw Synced', 20_000);
    await ok('/v1/rcopy/groups/rcgw/stop');
    await until(async () => (await groupOn('b', 'rcgw')).status === 'Stopped', 'rcgw Stopped on B', 20_000);

    // Eight writers on A's T4 (volume 1, then 0), each on its own blocks, while T2 (volume 0) is dismissed.
    const viaA = await open('a', T4);
    let stop = false;
    let written = 0;
    const writer = async (w: number) => {
      for (let k = 0; k < 120 && !(stop && k > 4); k++) {
        await writeOk(viaA, BigInt(w * 1024 + k * 8), randomBytes(8 * 512));
        written++;
      }
    };
    const writers = [0, 1, 2, 3, 4, 5, 6, 7].map(writer);
    await until(async () => written >= 16, 'the writers under way', 20_000);
    expect((await ok('/v1/rcopy/groups/rcgw/dismiss', { volume: { target: T2, lun: 0 } })).volumes).toEqual([{ target: T4, lun: 0, wwn: '502a7510000d0a04' }]);
    stop = true;
    await Promise.all(writers);

    await ok('/v1/rcopy/groups/rcgw/start');
    await until(async () => (await groupOn('a', 'rcgw')).status === 'Synced' && (await groupOn('b', 'rcgw')).status === 'Synced', 'rcgw Synced again', 20_000);
    expect((await groupOn('a', 'rcgw')).stats.lastResyncBytes).toBe(written * 8 * 512);
    const viaB = await open('b', T4);
    for (let lba = 0n; lba < 8192n; lba += 512n) {
      expect((await readOk(viaB, lba, 512)).equals(await readOk(viaA, lba, 512)), `blocks ${lba}+512`).toBe(true);
    }
    await ok('/v1/rcopy/groups/rcgw/stop');
    await until(async () => (await groupOn('b', 'rcgw')).status === 'Stopped', 'rcgw Stopped on B again', 20_000);
    expect((await ok('/v1/rcopy/groups/rcgw/remove', { force: true })).dismissed).toEqual([{ target: T4, lun: 0, wwn: '502a7510000d0a04' }]);
  }, 60_000);

  it('removegroup -local: the other array gone, each array removes the group on its own side, and only then', async () => {
    await ok('/v1/rcopy/groups', { name: 'rcgl', peer: 'site-b' });
    await ok('/v1/rcopy/groups/rcgl/volumes', { volume: { target: T5, lun: 0 }, peer: 'site-b', secondaryVolume: { target: T5, lun: 0 } });
    await ok('/v1/rcopy/groups/rcgl/start');
    await until(async () => (await groupOn('a', 'rcgl')).status === 'Synced', 'rcgl Synced', 20_000);
    expect((await lunOn('b', T5, 0)).naa).toBe('502a7510000d0a05');
    // While the other array answers: refused on both, naming the field.
    for (const s of ['a', 'b'] as const) {
      const r = await api(s, 'POST', '/v1/rcopy/groups/rcgl/remove', { force: true, local: true });
      expect(r.status, s).toBe(409);
      expect(r.body.field).toBe('local');
      expect(r.body.error).toMatch(/link is up/);
    }

    // The link goes (A's side cut: B loses it too).
    expect((await api('a', 'POST', '/v1/rcopy/link', { action: 'cut' })).status).toBe(200);
    await until(async () => (await groupOn('a', 'rcgl')).link === 'down' && (await groupOn('b', 'rcgl')).link === 'down', 'the link down on both', 20_000);
    // A serves alone, still started: stopgroup first.
    await until(async () => (await groupOn('a', 'rcgl')).serving === true, 'A serving alone', 20_000);
    const started = await api('a', 'POST', '/v1/rcopy/groups/rcgl/remove', { force: true, local: true });
    expect(started.status).toBe(409);
    expect(started.body.error).toMatch(/stopgroup first/);
    await ok('/v1/rcopy/groups/rcgl/stop');
    await until(async () => (await groupOn('b', 'rcgl')).status === 'Stopped', 'rcgl Stopped on B', 20_000);
    // removegroup without -local needs the other array.
    const both = await api('a', 'POST', '/v1/rcopy/groups/rcgl/remove', { force: true });
    expect(both.status).toBeGreaterThanOrEqual(500);
    expect(await groupOn('a', 'rcgl')).toBeDefined();

    // A primary that does not serve the group alone is refused: a failed store here.
    await ok('/v1/stores/fault', { target: T5, lun: 0, action: 'fail' });
    await until(async () => (await groupOn('a', 'rcgl')).serving === false, 'A not serving', 20_000);
    const notServing = await api('a', 'POST', '/v1/rcopy/groups/rcgl/remove', { force: true, local: true });
    expect(notServing.status).toBe(409);
    expect(notServing.body.error).toMatch(/does not serve it alone now \(a volume's store failed\)/);
    await ok('/v1/stores/fault', { target: T5, lun: 0, action: 'repair' });
    await until(async () => (await groupOn('a', 'rcgl')).serving === true, 'A serving alone again', 20_000);

    // Without -f a group with volumes is refused; the CLI takes -local.
    expect((await api('a', 'POST', '/v1/rcopy/groups/rcgl/remove', { local: true })).body.field).toBe('force');
    expect(await cli('removegroup', '-f', '-local', 'rcgl')).toEqual({ name: 'rcgl', dismissed: [{ target: T5, lun: 0, wwn: '502a7510000d0a05' }] });
    expect(await groupOn('a', 'rcgl')).toBeUndefined();
    // B still has it (it heard nothing), its volume still the group's device.
    expect(await groupOn('b', 'rcgl')).toMatchObject({ role: 'secondary', link: 'down' });
    expect((await lunOn('b', T5, 0)).naa).toBe('502a7510000d0a05');
    // A's volume: a plain LU, its own designator, taking writes.
    const viaA = await open('a', T5);
    expect(await vpdNaa(viaA)).toBe('502a7510000d0a05');
    const x = randomBytes(8 * 512);
    await writeOk(viaA, 16n, x);

    // B, the secondary, removes its side: its volume takes its own designator back.
    const r = await api('b', 'POST', '/v1/rcopy/groups/rcgl/remove', { force: true, local: true });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body).toEqual({ name: 'rcgl', dismissed: [{ target: T5, lun: 0, wwn: '502a7510000d0b05' }] });
    expect(await groupOn('b', 'rcgl')).toBeUndefined();
    expect(await lunOn('b', T5, 0)).toMatchObject({ naa: '502a7510000d0b05', serial: 'ASIMDSB5' });
    // The link back: nothing of the group on either, and the configuration's group is linked again.
    expect((await api('a', 'POST', '/v1/rcopy/link', { action: 'restore' })).status).toBe(200);
    await until(async () => (await groupOn('a', 'cfg1')).link === 'up', 'cfg1 linked again', 20_000);
    expect(await groupOn('a', 'rcgl')).toBeUndefined();
    expect((await readOk(viaA, 16n, 8)).equals(x)).toBe(true);
  }, 60_000);
});
