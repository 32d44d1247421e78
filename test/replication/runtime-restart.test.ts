/**
 * Groups made by the rcopy verbs survive restarts with `peers.state` (src/replication/runtime-state.ts):
 * two `arraysim serve` processes on file volumes, no group in their YAML. A group is made with
 * creategroup, admitvv, setgroup pol and admithost, started and Synced; then each array in turn is
 * killed with SIGKILL and started again. Each comes back with the group: same role, volumes,
 * policies and hosts, the secondary volume still presenting the primary's WWN and serial (one
 * device to the hosts), and the primary, written alone while the secondary was down and then
 * killed, resending only what was written meanwhile. removegroup -f empties the file and removes
 * the group's metadata files. Negative control: the same arrays without peers.state come back
 * without the group, the primary's volume served as a plain LU under the group's WWN (the array
 * warns at start that the volume carries a group's metadata file it does not have).
 */
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { adminCall } from '../../src/admin/client.ts';
import { freePort } from '../../src/check/cluster.ts';
import { ScsiDevice } from '../../src/initiator/index.ts';
import { decodeRuntimeState, encodeRuntimeState } from '../../src/replication/runtime-state.ts';
import { ServeProcess } from './serve-process.ts';
import { block, senseOf, settled } from './pair.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const TARGET = 'iqn.2026-12.dev.arraysim:rtstate';
const VOLUME_BYTES = 16 * 1024 * 1024;
const NAA = { A: '502a7510000e0a01', B: '502a7510000e0b01' };
const SERIAL = { A: 'ASIMRTA1', B: 'ASIMRTB1' };

const cleanup: (() => Promise<unknown> | void)[] = [];
afterAll(async () => { for (const f of cleanup.reverse()) await f(); });

interface Group {
  name: string; role: string; status: string; link: string; serving: boolean; started: boolean;
  policies: Record<string, boolean>; hosts: Record<string, string>;
  volumes: { target: string; lun: number; wwn: string }[];
  stats: { lastResyncBytes: number };
  meta: { load: string };
}

class Site {
  constructor(readonly name: 'A' | 'B', readonly host: string, readonly iscsi: number, readonly admin: number, readonly yaml: string, readonly volume: string, readonly state: string | null) {
    this.server = new ServeProcess(name, yaml, `${host}:${admin}`, (kill) => cleanup.push(kill));
  }

  readonly server: ServeProcess;
  get base(): string { return `${this.host}:${this.admin}`; }
  get err(): string { return this.server.err; }
  start(): Promise<void> { return this.server.start(() => this.groups()); }
  kill(signal?: NodeJS.Signals): Promise<void> { return this.server.kill(signal); }

  async groups(): Promise<Group[]> { return ((await adminCall(this.base, 'GET', '/v1/rcopy/groups')) as { groups: Group[] }).groups; }
  post(p: string, body: unknown = {}): Promise<unknown> { return adminCall(this.base, 'POST', p, { body }); }

  async until(f: (g: Group | undefined) => boolean, what: string, ms = 30_000): Promise<Group> {
    const end = Date.now() + ms;
    let g = (await this.groups())[0];
    while (!f(g)) {
      if (Date.now() > end) throw new Error(`site ${this.name}: ${what}; last ${JSON.stringify(g)}; log ${this.err.slice(-1500)}`);
      await new Promise((r) => setTimeout(r, 100));
      g = (await this.groups())[0];
    }
    return g!;
  }

  async open(): Promise<ScsiDevice> {
    const d = await ScsiDevice.open(`iscsi://${this.host}:${this.iscsi}/${TARGET}/0`);
    cleanup.push(() => d.close().catch(() => {}));
    await d.clearUnitAttentions();
    return d;
  }
}

/** Sites A (127.0.1.1) and B (127.0.2.1) with `peers:` and no group; `state`: with peers.state (a path relative to the YAML). */
async function startPair(state: boolean): Promise<{ a: Site; b: Site; dir: string }> {
  const dir = mkdtempSync(path.join(tmpdir(), 'arraysim-rtstate-'));
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
  const ports = async (host: string) => ({ iscsi: await freePort(host), admin: await freePort(host), link: await freePort(host) });
  const pa = await ports('127.0.1.1'), pb = await ports('127.0.2.1');
  const site = (name: 'A' | 'B', host: string, p: typeof pa, tpgt: number): Site => {
    const n = name.toLowerCase();
    const volume = path.join(dir, `${n}.img`);
    const yaml = path.join(dir, `site-${n}.yaml`);
    const stateKey = state ? `, state: "site-${n}.rcopy.json"` : '';
    writeFileSync(yaml, [
      `portals: [{listen: "${host}:${p.iscsi}", tpgt: ${tpgt}}]`,
      `targets: [{name: ${TARGET}, luns: [{spec: "file:${volume},size=${VOLUME_BYTES}", naa: "${NAA[name]}", serial: ${SERIAL[name]}}]}]`,
      name === 'A' ? `peers: {name: site-a, listen: "${host}:${p.link}", peer: "127.0.2.1:${pb.link}"${stateKey}}` : `peers: {name: site-b, listen: "${host}:${p.link}"${stateKey}}`,
      'log: {level: info}', '',
    ].join('\n'));
    return new Site(name, host, p.iscsi, p.admin, yaml, volume, state ? path.join(dir, `site-${n}.rcopy.json`) : null);
  };
  const a = site('A', '127.0.1.1', pa, 1), b = site('B', '127.0.2.1', pb, 2);
  await b.start();
  await a.start();
  return { a, b, dir };
}

/** creategroup, admitvv, setgroup pol active_active, admithost, startgroup on A; both Synced. */
async function makeGroup(a: Site, b: Site): Promise<void> {
  await a.post('/v1/rcopy/groups', { name: 'rt1', peer: 'site-b', mode: 'sync' });
  await a.post('/v1/rcopy/groups/rt1/volumes', { volume: { lun: 0 }, peer: 'site-b', secondaryVolume: { lun: 0 } });
  await a.post('/v1/rcopy/groups/rt1/policies', { policy: 'active_active' });
  await a.post('/v1/rcopy/groups/rt1/hosts', { host: 'iqn.2026-12.dev.example:esx1', proximity: 'primary' });
  await a.post('/v1/rcopy/groups/rt1/start');
  await a.until((g) => g?.status === 'Synced', 'Synced after startgroup');
  await b.until((g) => g?.status === 'Synced', 'B Synced after startgroup');
}

async function writeAll(d: ScsiDevice, lbas: bigint[], tag: string, want: Map<bigint, Buffer>): Promise<void> {
  for (const lba of lbas) {
    const data = block(`${tag} ${lba}`, 8);
    expect(senseOf(await settled(() => d.write(lba, data)))).toBe('good');
    want.set(lba, data);
  }
}

/** VPD page 0x80 (Unit Serial Number, the page's payload): what the hosts' multipath stacks see as the device's serial. */
async function serialOf(d: ScsiDevice): Promise<string> {
  const r = await d.vpd(0x80);
  if (r.kind !== 'good') throw new Error(`VPD 0x80: ${senseOf(r)}`);
  return r.value.toString('latin1').trim();
}

function sameVolumes(a: Site, b: Site, want: Map<bigint, Buffer>): void {
  const va = readFileSync(a.volume), vb = readFileSync(b.volume);
  expect(va.equals(vb), 'the two volume files are byte-identical').toBe(true);
  for (const [lba, data] of want) expect(va.subarray(Number(lba) * 512, Number(lba) * 512 + data.length).equals(data), `LBA ${lba}`).toBe(true);
}

describe('groups made by the rcopy verbs across restarts (peers.state)', () => {
  it('both arrays killed in turn come back with the group, its identity, policies and hosts; the primary resends only what it wrote alone; removegroup -f empties the file', async () => {
    const { a, b, dir } = await startPair(true);
    await makeGroup(a, b);
    const want = new Map<bigint, Buffer>();
    const da = await a.open();
    await writeAll(da, [0n, 8n, 4096n], 'synced', want);

    // What the files say: the group on both, B's volume with A's identity.
    const sa = decodeRuntimeState(readFileSync(a.state!, 'utf8'), 'site-a');
    const sb = decodeRuntimeState(readFileSync(b.state!, 'utf8'), 'site-b');
    expect(sa).toEqual([{ name: 'rt1', role: 'primary', start: true, policies: expect.objectContaining({ active_active: true }), hosts: { 'iqn.2026-12.dev.example:esx1': 'primary' }, volumes: [{ target: TARGET, lun: 0 }] }]);
    expect(sb).toMatchObject([{ name: 'rt1', role: 'secondary', volumes: [{ target: TARGET, lun: 0, naa: NAA.A, serial: SERIAL.A }] }]);

    // B killed and started again: the group is back, B's volume still the primary's device.
    await b.kill();
    await b.start();
    let gb = await b.until((g) => g?.status === 'Synced', 'B Synced again after its restart');
    expect(gb).toMatchObject({ name: 'rt1', role: 'secondary', volumes: [{ lun: 0, wwn: NAA.A }] });
    expect(gb.policies.active_active).toBe(true);
    const db = await b.open();
    expect(await serialOf(db)).toBe(SERIAL.A);

    // A serves alone (link cut at B), is written, killed: its metadata file, written at admitvv, names what B lacks.
    await b.post('/v1/rcopy/link', { action: 'cut' });
    await a.until((g) => g?.link === 'down' && !!g?.serving, 'A serves alone after the cut');
    const alone = Array.from({ length: 20 }, (_, i) => BigInt(((i * 997) % 4000) * 8 + 16));
    await writeAll(da, alone, 'alone', want);
    await da.close().catch(() => {});
    await a.kill();
    await a.start();
    let ga = (await a.groups())[0];
    expect(ga).toMatchObject({ name: 'rt1', role: 'primary', volumes: [{ lun: 0, wwn: NAA.A }], hosts: { 'iqn.2026-12.dev.example:esx1': 'primary' } });
    expect(ga.policies.active_active).toBe(true);
    expect(ga.meta.load).toBe('restored with its dirty map');
    await b.post('/v1/rcopy/link', { action: 'restore' });
    ga = await a.until((g) => g?.status === 'Synced', 'A Synced after its restart');
    await b.until((g) => g?.status === 'Synced', 'B Synced after A\'s restart');
    expect(ga.stats.lastResyncBytes, 'bytes resent: only what A wrote alone').toBeGreaterThanOrEqual(alone.length * 4096);
    expect(ga.stats.lastResyncBytes).toBeLessThanOrEqual(alone.length * 4096 * 2);
    sameVolumes(a, b, want);

    // removegroup -f: the group is gone from both files, and so are its metadata files; a restart has no group.
    await a.post('/v1/rcopy/groups/rt1/stop');
    await a.until((g) => g?.status === 'Stopped', 'stopped');
    await b.until((g) => g?.status === 'Stopped', 'B stopped');
    await a.post('/v1/rcopy/groups/rt1/remove', { force: true });
    expect(decodeRuntimeState(readFileSync(a.state!, 'utf8'), 'site-a')).toEqual([]);
    expect(decodeRuntimeState(readFileSync(b.state!, 'utf8'), 'site-b')).toEqual([]);
    expect(readdirSync(dir).filter((f) => f.includes('.rcopy-rt1.meta'))).toEqual([]);
    await a.kill();
    await a.start();
    expect(await a.groups()).toEqual([]);
    expect(a.err, 'no warning once the group is gone from both arrays').not.toMatch(/carries the metadata file/);
    gb = (await b.groups())[0];
    expect(gb).toBeUndefined();
  }, 180_000);

  it('an unreadable peers.state stops the array from starting, naming the file and the field', async () => {
    const { a } = await startPair(true);
    await a.kill();
    writeFileSync(a.state!, encodeRuntimeState('site-a', [{ name: 'x', role: 'primary', start: true, policies: {}, hosts: { h: 'near' as never }, volumes: [] }]));
    await expect(a.start()).rejects.toThrow(/peers\.state .*site-a\.rcopy\.json cannot be trusted: groups\[0\]\.hosts\.h must be one of primary, secondary, all/);
    writeFileSync(a.state!, encodeRuntimeState('site-b', []));
    await expect(a.start()).rejects.toThrow(/belongs to array "site-b", and this one is site-a/);
  }, 60_000);

  it('negative control: without peers.state a restarted primary has no group and serves the volume alone, under the group\'s WWN', async () => {
    const { a, b } = await startPair(false);
    await makeGroup(a, b);
    await a.kill();
    await a.start();
    expect(await a.groups()).toEqual([]);
    expect(existsSync(`${a.volume}.rcopy-rt1.meta`), 'the metadata file admitvv wrote is still there').toBe(true);
    // It says so at start (array.ts warnGroupMetaStrangers).
    expect(a.err).toMatch(/carries the metadata file of a Remote Copy group this array does not have/);
    const da = await a.open();
    expect(senseOf(await settled(() => da.write(0n, block('unreplicated', 8))))).toBe('good');
    expect(await serialOf(da)).toBe(SERIAL.A);
  }, 120_000);
});
