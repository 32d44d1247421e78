/**
 * Sequenced records of a remote copy (CRR) over TCP: production on 127.0.0.1, the remote array on
 * 127.0.3.11. Records cross the link as REPLICA RECORDs (group sequence and predecessor), several
 * in flight, and the remote array applies them strictly in sequence order through the claim's
 * receive queue (src/scsi/replica-claim.ts). The remote stores here complete their writes after
 * a random delay (seeded), so a record that arrives while the one before it is still being
 * written must wait: without the queue the writes would land out of journal order.
 *
 * - overlapping writes from 8 concurrent host commands land on the remote stores in exactly the
 *   journal's order, with more than one record in flight; verify consistent;
 * - a link cut mid-stream leaves the remote LUs at a prefix of the journal (the image at the
 *   sequence the remote reports), and start_transfer asks the remote where it is and completes it:
 *   each record lands exactly once; verify consistent.
 *
 * Negative control (by hand, README "Remote copies (CRR)"): with ReplicaReceiver.receive applying
 * every record as it arrives (no wait for the predecessor), the first test fails (landed order
 * differs from the journal's).
 */
import { afterEach, describe, expect, it } from 'vitest';
import pino from 'pino';
import { StorageArray } from '../../src/array.ts';
import { seededRandom } from '../../src/replication/link-faults.ts';
import { configFromFlags } from '../../src/config.ts';
import type { ConsistencyGroup, CrrCopy } from '../../src/splitter/group.ts';
import { verifyGroup } from '../../src/splitter/verify.ts';
import type { BackingStore } from '../../src/store/store.ts';
import { cdb16 } from '../helpers/cdb.ts';
import { TestInitiator } from '../helpers/initiator.ts';
import { pattern } from './rig.ts';

const BS = 512;
const PROD = 'iqn.2026-11.dev.arraysim:seq-prod';
const DR = 'iqn.2026-11.dev.arraysim:seq-dr';
const HOST = 'iqn.2026-11.dev.arraysim:host-a';
const SEED = Number(process.env.CRR_SEQ_SEED ?? 20261203);

interface Landed { set: number; lba: bigint; tag: number }

let cleanup: (() => Promise<void>) | null = null;
afterEach(async () => { await cleanup?.(); cleanup = null; });

async function start() {
  const log = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
  const drConfig = configFromFlags({ listen: ['127.0.3.11:0'], target: DR, lun: ['4MiB', '4MiB'] });
  const dr = await StorageArray.create(drConfig, log);
  await dr.start();
  const config = configFromFlags({
    listen: ['127.0.0.1:0'], target: PROD, lun: ['4MiB', '4MiB'], splitter: 'rp-vnx-flare31',
    remoteCopy: `name=dr,remote=127.0.3.11:${drConfig.portals[0].port},target=${DR}`,
  });
  const prod = await StorageArray.create(config, log);
  await prod.start();
  const group = prod.groups.get('default')!;
  await group.ready();
  const copy = group.copy('dr') as CrrCopy;
  const host = await TestInitiator.connect(config.portals[0].port);
  await host.login(PROD, { MaxRecvDataSegmentLength: '262144' }, HOST);
  for (const lun of [0, 1]) await host.scsi(lun, [0x00, 0, 0, 0, 0, 0]);
  cleanup = async () => { host.close(); await prod.stop(); await dr.stop(); };

  // The remote stores: each write completes after a seeded random delay (0-2 ms), and is noted as it lands.
  const landed: Landed[] = [];
  const random = seededRandom(SEED);
  console.log(`remote-sequence-tcp: seed ${SEED} (CRR_SEQ_SEED=${SEED} replays the delays)`);
  dr.stores.forEach((s: BackingStore, set) => {
    const w = s.write.bind(s);
    s.write = (lba: bigint, data: Buffer, fua?: boolean) => {
      const copyOfData = Buffer.from(data);
      return new Promise<void>((resolve, reject) => setTimeout(() => {
        landed.push({ set, lba, tag: copyOfData.readUInt32BE(0) });
        Promise.resolve(w(lba, copyOfData, fua)).then(resolve, reject);
      }, Math.floor(random() * 3)));
    };
  });
  // The group's write order, as the journal takes it.
  const journaled: Array<Landed & { seq: number; data: Buffer }> = [];
  const append = group.journal.append.bind(group.journal);
  group.journal.append = (r) => {
    const rec = append(r);
    if (rec.kind === 'data') journaled.push({ set: rec.set, lba: rec.lba, tag: rec.data!.readUInt32BE(0), seq: rec.seq, data: Buffer.from(rec.data!) });
    return rec;
  };
  let tag = 1;
  /** `n` overlapping writes (8 blocks at 16 places per LUN), 8 in flight at a time. */
  const writes = async (n: number) => {
    const one = async (k: number) => {
      const d = pattern(8 * BS, k);
      d.writeUInt32BE(tag++, 0);
      const r = await host.scsi(k % 2, cdb16(0x8a, ((k * 7) % 16) * 4, 8), { write: d });
      if (r.status !== 0) throw new Error(`WRITE status ${r.status}`);
    };
    for (let k = 0; k < n; k += 8) await Promise.all([0, 1, 2, 3, 4, 5, 6, 7].map((i) => one(k + i)));
  };
  return { prod, dr, group, copy, landed, journaled, writes };
}

async function until(what: string, f: () => boolean, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!f()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

/** The remote LUs' content after the first `k` journaled records, applied in order to zeros. */
function imageAt(journaled: Array<Landed & { data: Buffer }>, k: number, bytes: number): Buffer[] {
  const img = [Buffer.alloc(bytes), Buffer.alloc(bytes)];
  for (const j of journaled.slice(0, k)) j.data.copy(img[j.set], Number(j.lba) * BS);
  return img;
}

describe('remote copy (CRR): sequenced records, several in flight', () => {
  it('overlapping writes from concurrent commands land on the remote LUs in journal order, with several records in flight; verify consistent', async () => {
    const { group, copy, landed, journaled, writes } = await start();
    await writes(400);
    await until('the copy drained', () => copy.appliedSeq === group.journal.nextSeq - 1);
    expect(journaled).toHaveLength(400);
    expect(landed).toEqual(journaled.map(({ set, lba, tag }) => ({ set, lba, tag })));
    expect(copy.shipped.maxInFlight).toBeGreaterThan(1);
    expect((await verifyGroup(group, 'dr')).consistent).toBe(true);
  }, 60_000);

  it('a link cut mid-stream leaves the remote at a prefix; start_transfer resumes from the remote\'s applied sequence and completes it', async () => {
    const { group, copy, dr, landed, journaled, writes } = await start();
    // The host writes on while the link is cut under the shipment, after about 100 records landed.
    const written = writes(400);
    await until('about 100 records on the remote', () => landed.length >= 100);
    copy.link.drop();
    await written;
    await until('the transfer to stop', () => group.transfer === 'error');
    await new Promise((r) => setTimeout(r, 50)); // the remote's writes in progress settle
    const k = landed.length;
    expect(k).toBeGreaterThanOrEqual(100);
    expect(k).toBeLessThan(400);
    // A prefix of the journal, landed once each, and the remote LUs are the image at that sequence.
    expect(landed).toEqual(journaled.slice(0, k).map(({ set, lba, tag }) => ({ set, lba, tag })));
    const img = imageAt(journaled, k, 4 << 20);
    for (const set of [0, 1]) expect(Buffer.compare(await dr.stores[set].read(0n, 8192), img[set])).toBe(0);
    // The remote reports that sequence as applied; production's acknowledged prefix is no further.
    const receiver = dr.scsiTargets.get(DR)!.luns.get(0)!.replicaClaim!.receiver;
    expect(receiver.applied).toBe(journaled[k - 1].seq);
    expect(copy.appliedSeq).toBeLessThanOrEqual(journaled[k - 1].seq);
    // Resume: the remote says where it is; every record lands exactly once.
    await group.startTransfer('test: resume');
    await until('the copy drained', () => copy.appliedSeq === group.journal.nextSeq - 1);
    expect(copy.link.status().logins).toBe(2);
    // Nothing the remote had applied was sent again (it would answer it GOOD without writing it).
    expect(receiver.counters.duplicates).toBe(0);
    expect(landed).toEqual(journaled.map(({ set, lba, tag }) => ({ set, lba, tag })));
    expect((await verifyGroup(group, 'dr')).consistent).toBe(true);
  }, 60_000);
});
