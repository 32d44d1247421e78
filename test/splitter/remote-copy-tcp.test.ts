/**
 * Remote copies (CRR) over TCP: two arrays on loopback, production on 127.0.0.1 (built as
 * `serve --splitter SPEC --remote-copy ...` builds it) and the remote one on 127.0.3.1 (a plain
 * `serve` with replica LUNs). A host writes to production over iSCSI; the splitter ships the
 * journal to the remote array's LUs through the project's initiator.
 *
 * - support: the remote LUs receive the records in the group's write order (a hook on the remote
 *   stores logs every write as it lands), and verify says consistent;
 * - ignore (negative control): WRITE SAME ignored, the remote copy diverges, verify finds the extent;
 * - the rate limit: bytes per second over the link within tolerance of `rate`, and without a limit
 *   the same shipment goes several times faster (the limit is what slows it);
 * - pause_transfer marks regions, start_transfer sends only them (bytes over the link asserted);
 * - the first initialization after dd seeding: a full sweep by region digest sends only the
 *   regions that differ, and the bytes over the link are those regions plus digests.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import pino from 'pino';
import { AdminApi } from '../../src/admin/api.ts';
import { StorageArray } from '../../src/array.ts';
import { configFromFlags } from '../../src/config.ts';
import type { ConsistencyGroup, CrrCopy } from '../../src/splitter/group.ts';
import { verifyGroup } from '../../src/splitter/verify.ts';
import type { BackingStore } from '../../src/store/store.ts';
import { cdb16 } from '../helpers/cdb.ts';
import { TestInitiator } from '../helpers/initiator.ts';
import { pattern } from './rig.ts';

const BS = 512;
const MiB = 1 << 20;
const REGION = MiB / BS;
const PROD = 'iqn.2026-11.dev.arraysim:crr-prod';
const DR = 'iqn.2026-11.dev.arraysim:crr-dr';
const HOST = 'iqn.2026-11.dev.arraysim:host-a';

interface Pair {
  prod: StorageArray;
  dr: StorageArray;
  group: ConsistencyGroup;
  copy: CrrCopy;
  /** The remote array's stores (its LUNs 0, 1). */
  remote: BackingStore[];
  host: TestInitiator;
  /** The production array's admin API, HOST:PORT. */
  adminAddr: string;
  config: ReturnType<typeof configFromFlags>;
  write(lun: number, lba: number, data: Buffer): Promise<void>;
  close(): Promise<void>;
}

let pair: Pair | null = null;
afterEach(async () => { await pair?.close(); pair = null; });

async function startPair(splitter: string, o: { rate?: string; luns?: string[]; startTransfer?: boolean; journalPath?: string } = {}): Promise<Pair> {
  const log = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
  const luns = o.luns ?? ['16MiB', '16MiB'];
  const drConfig = configFromFlags({ listen: ['127.0.3.1:0'], target: DR, lun: luns });
  const dr = await StorageArray.create(drConfig, log);
  await dr.start();
  const spec = `name=dr,remote=127.0.3.1:${drConfig.portals[0].port},target=${DR}${o.rate ? `,rate=${o.rate}` : ''}`;
  const config = configFromFlags({ listen: ['127.0.0.1:0'], target: PROD, lun: luns, splitter, remoteCopy: spec });
  if (o.startTransfer === false) config.groups![0].startTransfer = false;
  if (o.journalPath) config.groups![0].journalPath = o.journalPath;
  const prod = await StorageArray.create(config, log);
  await prod.start();
  const group = prod.groups.get('default')!;
  await group.ready();
  const admin = new AdminApi(prod, log);
  const adminAddr = `127.0.0.1:${await admin.listen('127.0.0.1', 0)}`;
  const host = await TestInitiator.connect(config.portals[0].port);
  await host.login(PROD, { MaxRecvDataSegmentLength: '262144', FirstBurstLength: '262144', MaxBurstLength: '16776192' }, HOST);
  for (const lun of luns.keys()) await host.scsi(lun, [0x00, 0, 0, 0, 0, 0]);
  return {
    prod, dr, group, copy: group.copy('dr') as CrrCopy, remote: dr.stores, host, adminAddr,
    async write(lun, lba, data) {
      const r = await host.scsi(lun, cdb16(0x8a, lba, data.length / BS), { write: data });
      if (r.status !== 0) throw new Error(`WRITE status ${r.status}`);
    },
    async close() { host.close(); await admin.close(); await prod.stop(); await dr.stop(); },
    config,
  };
}

/** Until the copy has every journaled record (or `ms` passes). */
async function drained(g: ConsistencyGroup, c: CrrCopy, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (c.appliedSeq < g.journal.nextSeq - 1) {
    if (Date.now() > end) throw new Error(`copy at ${c.appliedSeq} of ${g.journal.nextSeq - 1}; transfer ${g.transfer}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const cli = (args: string[]) => promisify(execFile)(process.execPath, ['bin/arraysim.js', ...args], { cwd: join(import.meta.dirname, '../..') })
  .then((r) => ({ code: 0, out: r.stdout }), (e) => ({ code: e.code as number, out: String(e.stdout) }));

const same = async (a: BackingStore, b: BackingStore, blocks: number) => Buffer.compare(await a.read(0n, blocks), await b.read(0n, blocks)) === 0;

describe('remote copy (CRR) over TCP', () => {
  it('support: writes from 8 concurrent commands on two LUNs reach the remote LUs in the group\'s write order; verify consistent', async () => {
    pair = await startPair('rp-vnx-flare31');
    const { group, copy, remote } = pair;
    expect(group.transfer).toBe('active');
    expect(copy.kind).toBe('remote');
    // Every write the remote array's stores take, in the order they take them.
    const landed: Array<{ set: number; lba: bigint; tag: number }> = [];
    remote.forEach((s, set) => {
      const w = s.write.bind(s);
      s.write = (lba: bigint, data: Buffer, fua?: boolean) => { landed.push({ set, lba, tag: data.readUInt32BE(0) }); return w(lba, data, fua); };
    });
    // The group's write order, as the journal takes it: an applied record drops its payload (history
    // is the copies' undo data), so note each record's tag when it is appended.
    const journaled: Array<{ set: number; lba: bigint; tag: number }> = [];
    const append = group.journal.append.bind(group.journal);
    group.journal.append = (r) => {
      const rec = append(r);
      if (rec.kind === 'data') journaled.push({ set: rec.set, lba: rec.lba, tag: rec.data!.readUInt32BE(0) });
      return rec;
    };
    // Overlapping writes (8 blocks at 32 places), 8 in flight at a time: order matters for the result.
    let tag = 1;
    const one = async (k: number) => {
      const lun = k % 2;
      const lba = ((k * 7) % 32) * 4;
      const d = pattern(8 * BS, k);
      d.writeUInt32BE(tag++, 0);
      await pair!.write(lun, lba, d);
    };
    for (let k = 0; k < 400; k += 8) await Promise.all([0, 1, 2, 3, 4, 5, 6, 7].map((i) => one(k + i)));
    await drained(group, copy);
    expect(journaled.length).toBe(400);
    expect([...group.journal.after(0)].map((r) => r.seq)).toHaveLength(400);
    expect(landed).toEqual(journaled);
    for (const [i, lu] of group.sets.map((s) => s.lu).entries()) expect(await same(lu.store, remote[i], Number(lu.blockCount))).toBe(true);
    const v = await verifyGroup(group, 'dr');
    expect(v).toMatchObject({ copy: 'dr', consistent: true });
    const link = group.status().copies[0].link!;
    expect(link).toMatchObject({ connected: true, target: DR, luns: [0, 1], rate: null });
    // 400 writes of 4 KiB went over the link, besides the sweep's digests and verify's.
    expect(link.bytesSent).toBeGreaterThanOrEqual(400 * 8 * BS);
  }, 60_000);

  it('ignore (negative control): an ignored WRITE SAME leaves the remote copy behind; verify finds the extent and names the command', async () => {
    pair = await startPair('writesame=ignore');
    const { group, copy } = pair;
    await pair.write(0, 0, pattern(64 * BS, 1));
    const r = await pair.host.scsi(0, cdb16(0x93, 2048, 256), { write: Buffer.alloc(BS, 0x5a) });
    expect(r.status).toBe(0);
    await drained(group, copy);
    const v = await verifyGroup(group, 'dr');
    expect(v.consistent).toBe(false);
    expect(v.diverged).toEqual([expect.objectContaining({ lun: 0, lba: '2048', lbaEnd: '2303', blocks: 256, causes: [expect.objectContaining({ name: 'WRITE SAME(16)', initiator: HOST })] })]);
    // The command: exit 1, the extent and its cause.
    const out = await cli(['verify', '--admin', pair.adminAddr, '--copy', 'dr']);
    expect(out.code).toBe(1);
    expect(out.out).toMatch(/group default, copy dr: DIVERGED/);
    expect(out.out).toMatch(/LUN 0 LBA 2048-2303, caused by 1 WRITE SAME\(16\) \(ignored\) from iqn\.2026-11\.dev\.arraysim:host-a/);
    // The same under support reaches the copy (the control's other side).
    await pair.close();
    pair = await startPair('writesame=support');
    await pair.host.scsi(0, cdb16(0x93, 2048, 256), { write: Buffer.alloc(BS, 0x5a) });
    await drained(pair.group, pair.copy);
    expect((await verifyGroup(pair.group, 'dr')).consistent).toBe(true);
  }, 120_000);

  it('the link rate limit: 3 MiB of records ship at 8Mbit (1,000,000 bytes/s, within 15%); without a limit, faster than 3x', async () => {
    const measure = async (rate?: string) => {
      pair = await startPair('rp-vnx-flare31', { rate });
      const { group, copy } = pair;
      const before = copy.link.status().bytesSent;
      const t0 = performance.now();
      for (let i = 0; i < 24; i++) await pair.write(i % 2, (i >> 1) * 256, pattern(128 * 1024, i));
      await drained(group, copy);
      const s = (performance.now() - t0) / 1000;
      const bytes = copy.link.status().bytesSent - before;
      await pair.close();
      pair = null;
      return { bytes, s, rate: bytes / s };
    };
    const limited = await measure('8Mbit');
    if (process.env.CRR_FIGURES) console.log('rate 8Mbit:', limited);
    expect(limited.bytes).toBeGreaterThanOrEqual(3 * MiB);
    // The burst allowance (1 MiB at this rate) may go at once; the rest goes at the rate.
    const expected = (limited.bytes - MiB) / 1e6;
    expect(limited.s).toBeGreaterThan(expected * 0.85);
    expect(limited.s).toBeLessThan(expected * 1.15 + 0.5);
    const free = await measure(undefined);
    if (process.env.CRR_FIGURES) console.log('no rate limit:', free);
    expect(free.rate).toBeGreaterThan(3 * 1e6);
  }, 60_000);

  it('pause_transfer marks regions; start_transfer sends only them (4 MiB over the link); clear_markers sends nothing (and, untrue, verify catches it)', async () => {
    pair = await startPair('rp-vnx-flare31');
    const { group, copy, remote } = pair;
    group.pauseTransfer('test');
    const journal = group.journal.nextSeq;
    // 200 writes into 3 regions of LUN 0 and 1 region of LUN 1.
    for (let i = 0; i < 200; i++) await pair.write(i % 4 === 3 ? 1 : 0, [2, 5, 9, 7][i % 4] * REGION + (i % 50) * 8, pattern(8 * BS, i));
    expect(group.journal.nextSeq).toBe(journal);
    expect(group.status().markers[0]).toMatchObject({ copy: 'dr', regions: 4, bytes: 4 * MiB, fullSweep: false });
    const before = copy.link.status();
    await group.startTransfer('test');
    expect(group.transfer).toBe('active');
    const after = copy.link.status();
    // Four 1 MiB regions, one WRITE each (48 bytes of command besides the data): nothing else went.
    expect(after.bytesSent - before.bytesSent).toBe(4 * MiB + 4 * 48);
    expect(after.commands - before.commands).toBe(4);
    expect(group.status().initialization).toMatchObject({ kind: 'markers', regions: 4, bytesSent: 4 * MiB, volumeBytes: 32 * MiB, percent: 12.5, done: true });
    for (const [i, lu] of group.sets.map((x) => x.lu).entries()) expect(await same(lu.store, remote[i], Number(lu.blockCount))).toBe(true);
    expect((await verifyGroup(group, 'dr')).consistent).toBe(true);
    // clear_markers: the operator says the copy already has what was written while paused. It has
    // not (nothing was seeded): start_transfer sends nothing and verify finds the region.
    group.pauseTransfer('test');
    await pair.write(0, 12 * REGION, pattern(8 * BS, 999));
    group.clearMarkers();
    const b2 = copy.link.status().bytesSent;
    await group.startTransfer('test');
    expect(copy.link.status().bytesSent - b2).toBe(0);
    const v = await verifyGroup(group, 'dr');
    expect(v.consistent).toBe(false);
    expect(v.diverged).toEqual([expect.objectContaining({ lun: 0, lba: String(12 * REGION), blocks: 8, causes: [] })]);
  }, 60_000);

  it('first initialization after dd seeding: the sweep compares digests on both arrays and sends only the region that changed since the dd', async () => {
    pair = await startPair('rp-vnx-flare31', { startTransfer: false });
    const { group, copy, remote } = pair;
    expect(group.status().markers[0].fullSweep).toBe(true);
    // Production holds 8 MiB on LUN 0; the dd image of it goes onto the remote LU behind the splitter's back.
    for (let r = 0; r < 8; r++) await pair.write(0, r * REGION, pattern(MiB, r));
    await remote[0].write(0n, Buffer.from(await group.sets[0].lu.store.read(0n, 8 * REGION)));
    // Then production changes in one region (the two days between the dd and the restore).
    await pair.write(0, 3 * REGION + 64, pattern(4096, 77));
    const before = copy.link.status();
    await group.startTransfer('test');
    expect(group.transfer).toBe('active');
    const after = copy.link.status();
    const init = group.status().initialization;
    expect(init).toMatchObject({ kind: 'full-sweep', regions: 1, bytesSent: MiB, volumeBytes: 32 * MiB, percent: 3.13, done: true });
    // One region's WRITE, and one REGION DIGEST command per region compared: no data came back.
    expect(after.bytesSent - before.bytesSent).toBe(MiB + 48 + 48 * init.regionsCompared);
    expect(after.bytesReceived - before.bytesReceived).toBeLessThan(init.regionsCompared * (48 + 8 + 64 + 48));
    for (const [i, lu] of group.sets.map((x) => x.lu).entries()) expect(await same(lu.store, remote[i], Number(lu.blockCount))).toBe(true);
    expect((await verifyGroup(group, 'dr')).consistent).toBe(true);
  }, 60_000);

  it('a file journal: the remote copy\'s checkpoint follows the records (after SYNCHRONIZE CACHE on the remote LUs); a clean restart of production re-applies nothing and sweeps nothing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'crr-journal-'));
    pair = await startPair('rp-vnx-flare31', { journalPath: dir });
    const { group, copy, remote } = pair;
    await group.ready();
    for (let i = 0; i < 50; i++) await pair.write(i % 2, i * 64, pattern(16 * BS, i));
    await drained(group, copy);
    const cpFile = join(dir, 'copy-dr.json');
    const until = Date.now() + 10_000;
    while ((JSON.parse(readFileSync(cpFile, 'utf8')) as { appliedSeq: number }).appliedSeq < 50 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    expect(JSON.parse(readFileSync(cpFile, 'utf8'))).toEqual({ appliedSeq: 50, initialized: true });
    expect((await verifyGroup(group, 'dr')).consistent).toBe(true);
    // Production stops cleanly and starts again on the same journal; the DR array stays up.
    pair.host.close();
    await pair.prod.stop();
    const log = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
    const again = await StorageArray.create(pair.config, log);
    const dr = pair.dr;
    pair = { ...pair, prod: again, async close() { await again.stop(); await dr.stop(); } };
    await again.start();
    const g2 = again.groups.get('default')!;
    await g2.ready();
    expect(g2.recovery).toMatchObject({ reapplied: 0, sweep: false });
    // Production's LUNs are memory LUNs here: the restart lost their data, so verify now sees the
    // remote copy holding what production no longer does (that is the copy's point).
    const v = await verifyGroup(g2, 'dr');
    expect(v.consistent).toBe(false);
    expect(await remote[0].read(0n, 16)).toEqual(pattern(16 * BS, 0));
  }, 60_000);
});
