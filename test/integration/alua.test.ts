/**
 * ALUA end to end: a StorageArray built from a YAML config with two portals in two target port
 * groups and host proximity, driven over TCP by two initiators, and moved by the admin API and
 * the `arraysim alua` CLI verbs while sessions are logged in.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdminApi } from '../../src/admin/api.ts';
import { StorageArray } from '../../src/array.ts';
import { configFromFile } from '../../src/config.ts';
import { TestInitiator } from '../helpers/initiator.ts';

const IQN = 'iqn.2026-11.dev.arraysim:alua';
const HOST_A = 'iqn.2026-11.test:host-a';
const HOST_B = 'iqn.2026-11.test:host-b';
const READ10 = [0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0];
const TUR = [0, 0, 0, 0, 0, 0];
const RTPG_EXT = [0xa3, 0x2a, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0];
const VPD83 = [0x12, 1, 0x83, 0x10, 0, 0];

const yaml = `
portals:
  - listen: 127.0.0.1:0
    targetPortGroup: 1
  - listen: 127.0.0.1:0
    targetPortGroup: 2
alua:
  mode: implicit
  groups:
    - id: 1
      state: active/optimized
      preferred: true
      hosts:
        ${HOST_B}: active/non-optimized
    - id: 2
      state: active/non-optimized
      hosts:
        ${HOST_B}: active/optimized
targets:
  - name: ${IQN}
    luns:
      - 64MiB
      - spec: 64MiB
        alua: both
`;

let array: StorageArray;
let admin: AdminApi;
let adminPort: number;
const sessions: Record<string, TestInitiator> = {};

async function session(port: number, host: string): Promise<TestInitiator> {
  const i = await TestInitiator.connect(port);
  await i.login(IQN, {}, host);
  // Drain the power-on UA on both LUNs.
  await i.scsi(0, TUR);
  await i.scsi(1, TUR);
  return i;
}

function senseKcq(r: { sense: Buffer | null }): number[] {
  const s = r.sense!;
  return (s[0] & 0x7f) === 0x72 ? [s[1] & 0xf, s[2], s[3]] : [s[2] & 0xf, s[12], s[13]];
}

function rtpgStates(d: Buffer): Record<number, number> {
  const out: Record<number, number> = {};
  for (let o = 8; o < 4 + d.readUInt32BE(0); o += 8 + 4 * d[o + 7]) out[d.readUInt16BE(o + 2)] = d[o] & 0xf;
  return out;
}

async function post(body: unknown): Promise<any> {
  const r = await fetch(`http://127.0.0.1:${adminPort}/v1/alua`, { method: 'POST', body: JSON.stringify(body) });
  const j = (await r.json()) as any;
  if (!r.ok) throw new Error(j.error);
  return j;
}

beforeAll(async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'arraysim-alua-'));
  writeFileSync(path.join(dir, 'alua.yaml'), yaml);
  const config = configFromFile(path.join(dir, 'alua.yaml'));
  const log = pino({ level: 'silent' });
  array = await StorageArray.create(config, log);
  await array.start();
  admin = new AdminApi(array, log);
  adminPort = await admin.listen('127.0.0.1', 0);
  const [p1, p2] = config.portals.map((p) => p.port);
  sessions.a1 = await session(p1, HOST_A);
  sessions.a2 = await session(p2, HOST_A);
  sessions.b1 = await session(p1, HOST_B);
  sessions.b2 = await session(p2, HOST_B);
});

afterAll(async () => {
  for (const s of Object.values(sessions)) s.close();
  await admin?.close();
  await array?.stop();
});

describe('ALUA over iSCSI with the admin API', () => {
  it('VPD 0x83 carries the relative target port and target port group of the portal used', async () => {
    for (const [s, port] of [[sessions.a1, 1], [sessions.b2, 2]] as const) {
      const d = (await s.scsi(0, VPD83, { read: 4096 })).data;
      const desig: Record<number, number> = {};
      for (let o = 4; o < 4 + d.readUInt16BE(2); o += 4 + d[o + 3]) desig[d[o + 1] & 0x0f] = d.readUInt16BE(o + 6);
      expect(desig[0x4]).toBe(port); // relative target port
      expect(desig[0x5]).toBe(port); // target port group
    }
  });

  it('host proximity: the two hosts see opposite states through the same groups', async () => {
    expect(rtpgStates((await sessions.a1.scsi(0, RTPG_EXT, { read: 4096 })).data)).toEqual({ 1: 0, 2: 1 });
    expect(rtpgStates((await sessions.b1.scsi(0, RTPG_EXT, { read: 4096 })).data)).toEqual({ 1: 1, 2: 0 });
    // TPGS per LU: LUN 0 implicit only, LUN 1 both.
    expect(((await sessions.a1.scsi(0, [0x12, 0, 0, 0, 96, 0], { read: 96 })).data[5] >> 4) & 3).toBe(1);
    expect(((await sessions.a1.scsi(1, [0x12, 0, 0, 0, 96, 0], { read: 96 })).data[5] >> 4) & 3).toBe(3);
  });

  it('an admin change is atomic, announced by UA 2A/06, gates media access, and shows in GET /v1/alua', async () => {
    const before = ((await (await fetch(`http://127.0.0.1:${adminPort}/v1/status`)).json()) as any).portals.map((p: any) => p.stats.reads);
    const r = await post({ tpg: 1, state: 'standby', reason: 'maintenance on controller A', wait: true });
    expect(r.targets[0].groups[0]).toMatchObject({ id: 1, state: 'standby', statusCode: 2, hosts: {} });
    for (const s of Object.values(sessions)) expect(senseKcq(await s.scsi(0, TUR))).toEqual([0x6, 0x2a, 0x06]);
    expect(senseKcq(await sessions.a1.scsi(0, READ10, { read: 512 }))).toEqual([0x2, 0x04, 0x0b]);
    expect((await sessions.a2.scsi(0, READ10, { read: 512 })).status).toBe(0);
    const after = ((await (await fetch(`http://127.0.0.1:${adminPort}/v1/status`)).json()) as any).portals.map((p: any) => p.stats.reads);
    expect(after[0]).toBe(before[0]);
    expect(after[1]).toBeGreaterThan(before[1]);
    await post({ tpg: 1, state: 'unavailable', wait: true });
    for (const s of Object.values(sessions)) await s.scsi(0, TUR);
    expect(senseKcq(await sessions.b1.scsi(0, READ10, { read: 512 }))).toEqual([0x2, 0x04, 0x0c]);
    await post({ tpg: 1, state: 'ao', preferred: true, wait: true });
    for (const s of Object.values(sessions)) await s.scsi(0, TUR);
    expect((await sessions.b1.scsi(0, READ10, { read: 512 })).status).toBe(0);
    await expect(post({ tpg: 7, state: 'standby' })).rejects.toThrow(/no target port group 7/);
    await expect(post({ tpg: 1, state: 'transitioning' })).rejects.toThrow(/cannot be requested/);
  });

  it('explicit ALUA: STPG from a host moves the group, everyone else gets the UA', async () => {
    const data = Buffer.alloc(8);
    data[4] = 0x1; // active/non-optimized
    data.writeUInt16BE(1, 6);
    const stpg = [0xa4, 0x0a, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0];
    for (const s of Object.values(sessions)) await s.scsi(1, TUR); // UAs of the earlier changes
    // LUN 0 is implicit only: STPG is not a command there.
    expect(senseKcq(await sessions.a1.scsi(0, stpg, { write: data }))).toEqual([0x5, 0x20, 0x00]);
    expect((await sessions.a1.scsi(1, stpg, { write: data })).status).toBe(0);
    expect((await sessions.a1.scsi(1, TUR)).status).toBe(0);
    expect(senseKcq(await sessions.a2.scsi(1, TUR))).toEqual([0x6, 0x2a, 0x06]);
    expect(rtpgStates((await sessions.a2.scsi(1, RTPG_EXT, { read: 4096 })).data)[1]).toBe(1);
  });

  it('the CLI verbs act on the running target', async () => {
    const run = promisify(execFile);
    const root = path.resolve(import.meta.dirname, '../..');
    const admin = `127.0.0.1:${adminPort}`;
    const set = await run(process.execPath, ['bin/arraysim.js', 'alua', 'set', '--admin', admin, '--tpg', '2', '--state', 'standby', '--host', HOST_A, '--reason', 'cli test'], { cwd: root });
    expect(JSON.parse(set.stdout).targets[0].groups[1].hosts).toEqual({ [HOST_A]: 'standby', [HOST_B]: 'active/optimized' });
    const show = await run(process.execPath, ['bin/arraysim.js', 'alua', 'show', '--admin', admin], { cwd: root });
    expect(JSON.parse(show.stdout).targets[0].groups.map((g: any) => g.id)).toEqual([1, 2]);
    await sessions.a2.scsi(0, TUR);
    expect(senseKcq(await sessions.a2.scsi(0, READ10, { read: 512 }))).toEqual([0x2, 0x04, 0x0b]);
    // host B still sees group 2 as it did.
    await sessions.b2.scsi(0, TUR).catch(() => undefined);
    expect((await sessions.b2.scsi(0, READ10, { read: 512 })).status).toBe(0);
  }, 30_000);
});
