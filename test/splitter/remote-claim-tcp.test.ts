/**
 * The replica claim of a remote copy (CRR) over TCP: production on 127.0.0.1, the remote array on
 * 127.0.3.9, and a second host (`dr-host`) logged in to the remote array's target, as a host at
 * the DR site would be. While production's link holds the claim (REPLICA CLAIM, C2h), the remote
 * LUs answer that host's media commands with NOT READY 02/04/03 (INQUIRY and REQUEST SENSE as
 * usual), and the link goes on writing them; enable_image_access and disable_group release the
 * claim, disable_image_access takes it again; what the dr-host registered or reserved meanwhile is
 * cleared when the link claims again (RESERVATIONS PREEMPTED); a lost link leaves the claim in
 * place, and the remote array's operator releases it when production is gone.
 *
 * Negative controls (by hand, README "Remote copies (CRR)"): with LogicalUnit.claimedAgainst
 * answering null, the first test fails at the dr-host's TEST UNIT READY; without
 * Reservations.clearForClaim in the CLAIM action, the PR test fails at drained() (the remote's
 * REPLICA RECORD answers RESERVATION CONFLICT and the transfer goes to error).
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import pino from 'pino';
import { encodeReplicaClaimCdb, encodeReplicaClaimParams, ReplicaClaimAction } from '../../protocol/scsi/replica-claim.ts';
import { AdminApi } from '../../src/admin/api.ts';
import { StorageArray } from '../../src/array.ts';
import { configFromFlags } from '../../src/config.ts';
import type { ConsistencyGroup, CrrCopy } from '../../src/splitter/group.ts';
import type { Session } from '../../src/initiator/index.ts';
import { cdb16 } from '../helpers/cdb.ts';
import { TestInitiator } from '../helpers/initiator.ts';
import type { ScsiResult } from '../helpers/initiator.ts';
import { pattern } from './rig.ts';

const BS = 512;
const PROD = 'iqn.2026-11.dev.arraysim:claim-prod';
const DR = 'iqn.2026-11.dev.arraysim:claim-dr';
const HOST = 'iqn.2026-11.dev.arraysim:host-a';
const DR_HOST = 'iqn.2026-11.dev.arraysim:dr-host';
const DR_ADDR = '127.0.3.9';

interface Pair {
  prod: StorageArray;
  dr: StorageArray;
  group: ConsistencyGroup;
  copy: CrrCopy;
  host: TestInitiator;
  drHost: TestInitiator;
  prodAdmin: string;
  drAdmin: string;
  /** Production was stopped by the test (its site is lost). */
  prodDown: boolean;
  close(): Promise<void>;
}

let pair: Pair | null = null;
afterEach(async () => { await pair?.close(); pair = null; });

async function startPair(): Promise<Pair> {
  const log = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
  const drConfig = configFromFlags({ listen: [`${DR_ADDR}:0`], target: DR, lun: ['8MiB', '8MiB'] });
  const dr = await StorageArray.create(drConfig, log);
  await dr.start();
  const drApi = new AdminApi(dr, log);
  const drAdmin = `${DR_ADDR}:${await drApi.listen(DR_ADDR, 0)}`;
  const config = configFromFlags({
    listen: ['127.0.0.1:0'], target: PROD, lun: ['8MiB', '8MiB'], splitter: 'rp-vnx-flare31',
    remoteCopy: `name=dr,remote=${DR_ADDR}:${drConfig.portals[0].port},target=${DR}`,
  });
  const prod = await StorageArray.create(config, log);
  await prod.start();
  const prodApi = new AdminApi(prod, log);
  const prodAdmin = `127.0.0.1:${await prodApi.listen('127.0.0.1', 0)}`;
  const group = prod.groups.get('default')!;
  await group.ready();
  await group.claimsSettled();
  const host = await TestInitiator.connect(config.portals[0].port);
  await host.login(PROD, {}, HOST);
  const drHost = await TestInitiator.connect(drConfig.portals[0].port, DR_ADDR);
  await drHost.login(DR, {}, DR_HOST);
  for (const h of [host, drHost]) for (const lun of [0, 1]) await h.scsi(lun, [0x00, 0, 0, 0, 0, 0]); // power-on unit attentions
  const p: Pair = {
    prod, dr, group, copy: group.copy('dr') as CrrCopy, host, drHost, prodAdmin, drAdmin, prodDown: false,
    async close() {
      host.close(); drHost.close();
      await prodApi.close();
      if (!p.prodDown) await prod.stop();
      await drApi.close(); await dr.stop();
    },
  };
  return p;
}

/** Sense key / ASC / ASCQ of a CHECK CONDITION (fixed format), or the status when not one. */
function senseOf(r: ScsiResult): string {
  if (r.status !== 2 || !r.sense) return `status ${r.status}`;
  const s = r.sense;
  return `${(s[2] & 0x0f).toString(16).padStart(2, '0')}/${s[12].toString(16).padStart(2, '0')}/${s[13].toString(16).padStart(2, '0')}`;
}

const NOT_READY = '02/04/03';
const tur = (h: TestInitiator, lun = 0) => h.scsi(lun, [0x00, 0, 0, 0, 0, 0]).then(senseOf);
const write = (h: TestInitiator, lun: number, lba: number, data: Buffer) => h.scsi(lun, cdb16(0x8a, lba, data.length / BS), { write: data }).then(senseOf);
const read = (h: TestInitiator, lun: number, lba: number, blocks: number) => h.scsi(lun, cdb16(0x88, lba, blocks), { read: blocks * BS });

/** PERSISTENT RESERVE OUT (SPC-5 §6.17) with the 24-byte basic parameter list: RESERVATION KEY, SERVICE ACTION RESERVATION KEY. */
function prout(h: TestInitiator, lun: number, action: number, type: number, key: bigint, saKey: bigint): Promise<string> {
  const list = Buffer.alloc(24);
  list.writeBigUInt64BE(key, 0);
  list.writeBigUInt64BE(saKey, 8);
  return h.scsi(lun, [0x5f, action, type, 0, 0, 0, 0, 0, 24, 0], { write: list }).then(senseOf);
}

/** PERSISTENT RESERVE IN READ KEYS (SPC-5 §6.16.2): PRGENERATION and the registered keys. */
async function readKeys(h: TestInitiator, lun: number): Promise<{ generation: number; keys: bigint[] }> {
  const r = await h.scsi(lun, [0x5e, 0x00, 0, 0, 0, 0, 0, 0x01, 0x00, 0], { read: 256 });
  if (r.status !== 0) throw new Error(`READ KEYS: ${senseOf(r)}`);
  const n = r.data.readUInt32BE(4) / 8;
  return { generation: r.data.readUInt32BE(0), keys: Array.from({ length: n }, (_, i) => r.data.readBigUInt64BE(8 + 8 * i)) };
}

async function post(addr: string, path: string, body: object = {}): Promise<{ status: number; body: any }> {
  const r = await fetch(`http://${addr}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: r.status, body: await r.json() };
}
const get = async (addr: string, path: string): Promise<any> => (await fetch(`http://${addr}${path}`)).json();

async function drained(g: ConsistencyGroup, c: CrrCopy, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (c.appliedSeq < g.journal.nextSeq - 1) {
    if (Date.now() > end) throw new Error(`copy at ${c.appliedSeq} of ${g.journal.nextSeq - 1}; transfer ${g.transfer}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function until(what: string, f: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await f())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const cli = (args: string[]) => promisify(execFile)(process.execPath, ['bin/arraysim.js', ...args], { cwd: join(import.meta.dirname, '../..') })
  .then((r) => ({ code: 0, out: r.stdout }), (e) => ({ code: e.code as number, out: String(e.stdout) + String(e.stderr) }));

describe('remote copy (CRR): the replica claim on the remote array', () => {
  it('another host of the remote array gets NOT READY 02/04/03 while the link writes; image access and disable_group release the claim, disable_image_access takes it again', async () => {
    pair = await startPair();
    const { group, copy, host, drHost, prodAdmin, drAdmin, dr } = pair;
    expect(copy.link.status()).toMatchObject({ claim: 'held', wantClaim: true });
    // The DR site's host: media commands NOT READY, on both LUs; INQUIRY and REQUEST SENSE answer.
    expect(await tur(drHost, 0)).toBe(NOT_READY);
    expect(await tur(drHost, 1)).toBe(NOT_READY);
    expect(await write(drHost, 0, 100, pattern(8 * BS, 1))).toBe(NOT_READY);
    expect(senseOf(await read(drHost, 1, 0, 8))).toBe(NOT_READY);
    expect((await drHost.scsi(0, [0x12, 0, 0, 0, 96, 0], { read: 96 })).status).toBe(0);
    const rs = await drHost.scsi(0, [0x03, 0, 0, 0, 18, 0], { read: 18 });
    expect(rs.status).toBe(0);
    expect([rs.data[2] & 0x0f, rs.data[12], rs.data[13]]).toEqual([0x02, 0x04, 0x03]);
    // Another initiator cannot take the claim over (nor release it): RESERVATION CONFLICT.
    const params = encodeReplicaClaimParams({ group: 'default', copy: 'dr' });
    expect((await drHost.scsi(0, encodeReplicaClaimCdb(ReplicaClaimAction.Claim, params.length), { write: params })).status).toBe(0x18);
    expect((await drHost.scsi(0, encodeReplicaClaimCdb(ReplicaClaimAction.Release, params.length), { write: params })).status).toBe(0x18);
    // The link's own nexus keeps writing: production's writes reach the remote LUs.
    for (let i = 0; i < 20; i++) expect(await write(host, i % 2, 100 + i * 8, pattern(8 * BS, 10 + i))).toBe('status 0');
    await drained(group, copy);
    expect(await dr.stores[0].read(100n, 8)).toEqual(pattern(8 * BS, 10));
    expect(await dr.stores[1].read(108n, 8)).toEqual(pattern(8 * BS, 11));
    // The remote array's status shows the claim.
    const st = await get(drAdmin, '/v1/status');
    const lus = st.targets.find((t: { name: string }) => t.name === DR).luns;
    for (const lu of lus) expect(lu.replicaClaim).toMatchObject({ group: 'default', copy: 'dr', initiator: `${PROD}.splitter.default.dr`, linkLoggedIn: true });
    // enable_image_access: the claim is released; the DR host writes (the field notes' dd restore).
    expect((await post(prodAdmin, '/v1/groups/default/enable_image_access', { copy: 'dr', mode: 'direct' })).status).toBe(200);
    expect(copy.link.status()).toMatchObject({ claim: 'released', wantClaim: false });
    expect(await tur(drHost, 0)).toBe('status 0');
    expect(await write(drHost, 0, 2000, pattern(8 * BS, 77))).toBe('status 0');
    expect((await get(drAdmin, '/v1/replica-claims')).claims).toEqual([]);
    // disable_image_access: claimed again, before the verb answers.
    expect((await post(prodAdmin, '/v1/groups/default/disable_image_access', { copy: 'dr', start_transfer: 'yes' })).status).toBe(200);
    expect(copy.link.status()).toMatchObject({ claim: 'held' });
    expect(await write(drHost, 0, 2000, pattern(8 * BS, 78))).toBe(NOT_READY);
    await until('the transfer active again', () => group.transfer === 'active');
    // disable_group: released.
    expect((await post(prodAdmin, '/v1/groups/default/disable_group')).status).toBe(200);
    expect(copy.link.status()).toMatchObject({ claim: 'released' });
    expect(await write(drHost, 1, 3000, pattern(8 * BS, 79))).toBe('status 0');
    // enable_group: claimed again.
    expect((await post(prodAdmin, '/v1/groups/default/enable_group', { start_transfer: 'no' })).status).toBe(200);
    expect(await tur(drHost, 1)).toBe(NOT_READY);
  }, 60_000);

  it('a PR registration and reservations a DR host took while image access released the claim are cleared when the link claims again (UA 2A/03), and production\'s writes reach the remote LUs', async () => {
    pair = await startPair();
    const { group, copy, host, drHost, prodAdmin, dr } = pair;
    expect((await post(prodAdmin, '/v1/groups/default/enable_image_access', { copy: 'dr' })).status).toBe(200);
    expect(copy.link.status()).toMatchObject({ claim: 'released' });
    // The DR site's host, while the claim is released: REGISTER key 0xabc and RESERVE Write
    // Exclusive on LUN 0 (PERSISTENT RESERVE OUT), SPC-2 RESERVE(6) on LUN 1.
    expect(await prout(drHost, 0, 0x00, 0, 0n, 0xabcn)).toBe('status 0');
    expect(await prout(drHost, 0, 0x01, 1, 0xabcn, 0n)).toBe('status 0');
    expect(senseOf(await drHost.scsi(1, [0x16, 0, 0, 0, 0, 0]))).toBe('status 0');
    expect((await readKeys(drHost, 0)).keys).toEqual([0xabcn]);
    // disable_image_access: the link claims again, and production writes on both LUNs.
    expect((await post(prodAdmin, '/v1/groups/default/disable_image_access', { copy: 'dr', start_transfer: 'yes' })).status).toBe(200);
    expect(copy.link.status()).toMatchObject({ claim: 'held' });
    for (let i = 0; i < 10; i++) expect(await write(host, i % 2, 300 + i * 8, pattern(8 * BS, 40 + i))).toBe('status 0');
    await drained(group, copy, 10_000);
    expect(await dr.stores[0].read(300n, 8)).toEqual(pattern(8 * BS, 40));
    expect(await dr.stores[1].read(308n, 8)).toEqual(pattern(8 * BS, 41));
    // The DR host is told once per LU (RESERVATIONS PREEMPTED, as after a CLEAR), then sees the claim.
    for (const lun of [0, 1]) {
      expect(await tur(drHost, lun)).toBe('06/2a/03');
      expect(await tur(drHost, lun)).toBe(NOT_READY);
    }
    // Nothing of it is left: no key, and after the claim is released again the host reserves afresh.
    const keys = await readKeys(drHost, 0);
    expect(keys.keys).toEqual([]);
    expect((await post(prodAdmin, '/v1/groups/default/disable_group')).status).toBe(200);
    expect(senseOf(await drHost.scsi(1, [0x16, 0, 0, 0, 0, 0]))).toBe('status 0');
    expect(await prout(drHost, 0, 0x01, 1, 0xabcn, 0n)).toBe('status 24'); // RESERVATION CONFLICT: not registered any more
  }, 60_000);

  it('a lost link leaves the claim in place (the next login moves it to the new session); with production gone, the remote operator releases it', async () => {
    pair = await startPair();
    const { group, copy, host, drHost, drAdmin, dr, prod } = pair;
    // The link's session drops without a logout (the WAN fails).
    (copy.link as unknown as { session: Session }).session.close();
    await until('the remote array to see the session go', async () => !(await get(drAdmin, '/v1/replica-claims')).claims[0].claim.linkLoggedIn);
    expect(await tur(drHost, 0)).toBe(NOT_READY);
    expect(await write(drHost, 0, 0, pattern(8 * BS, 1))).toBe(NOT_READY);
    // Production writes: its link logs in again (another I_T nexus), claims again, and writes.
    expect(await write(host, 0, 500, pattern(8 * BS, 2))).toBe('status 0');
    await drained(group, copy);
    expect(copy.link.status().logins).toBe(2);
    expect(await dr.stores[0].read(500n, 8)).toEqual(pattern(8 * BS, 2));
    expect(await tur(drHost, 0)).toBe(NOT_READY);
    // Production's site is lost: the claim holds...
    host.close();
    await prod.stop();
    pair.prodDown = true;
    expect(await tur(drHost, 1)).toBe(NOT_READY);
    // ...until the remote array's operator releases it (one LUN, then the rest).
    const one = await cli(['replica-claims', 'release', '--admin', drAdmin, '--lun', '1', '--reason', 'failover']);
    expect(one.code).toBe(0);
    expect(JSON.parse(one.out).released).toEqual([expect.objectContaining({ target: DR, lun: 1, claim: expect.objectContaining({ copy: 'dr', linkLoggedIn: false }) })]);
    expect(await write(drHost, 1, 0, pattern(8 * BS, 3))).toBe('status 0');
    expect(await tur(drHost, 0)).toBe(NOT_READY);
    const rest = await post(drAdmin, '/v1/replica-claims/release');
    expect(rest.body.released.map((r: { lun: number }) => r.lun)).toEqual([0]);
    expect(await write(drHost, 0, 0, pattern(8 * BS, 4))).toBe('status 0');
  }, 60_000);
});
