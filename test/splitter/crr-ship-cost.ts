/**
 * Records per second a remote copy (CRR) ships over loopback: production (127.0.0.1) and the
 * remote array (127.0.3.9) in this one process, N 4 KiB WRITE(16)s submitted in process to a
 * protected LU (no host transport), timed from the first write until the remote copy has applied
 * the last record. Not a test: `npx tsx test/splitter/crr-ship-cost.ts [N]`. Both arrays share
 * this process's CPU, as they share the machine's in a real loopback run. Three remote arrays in
 * turn: a memory LUN; a file LUN; a file LUN with its undo log on disk (replicaJournal: the
 * before-images written ahead, one fdatasync per run of records).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { StorageArray } from '../../src/array.ts';
import { configFromFlags } from '../../src/config.ts';
import { TaskAttribute } from '../../src/scsi/types.ts';
import { makeNexus } from '../scsi/sbc-fixture.ts';
import { cdb16 } from '../helpers/cdb.ts';

const N = Number(process.argv[2] ?? 20_000);
const DR = 'iqn.2026-11.dev.arraysim:cost-dr';
const log = pino({ level: 'silent' });

/**
 * One remote array: `lun` its LUN spec, `journal` its replicaJournal folder (the undo log on disk,
 * src/scsi/replica-journal.ts); records/s over N records after a warm-up.
 */
async function measure(label: string, lun: string, journal?: string): Promise<void> {
  const drConfig = { ...configFromFlags({ listen: ['127.0.3.9:0'], target: DR, lun: [lun] }), ...(journal ? { replicaJournal: journal } : {}) };
  const dr = await StorageArray.create(drConfig, log);
  await dr.start();
  const config = configFromFlags({
    listen: ['127.0.0.1:0'], target: 'iqn.2026-11.dev.arraysim:cost-prod', lun: ['64MiB'], splitter: 'rp-vnx-flare31',
    remoteCopy: `name=dr,remote=127.0.3.9:${drConfig.portals[0].port},target=${DR}`,
  });
  const prod = await StorageArray.create(config, log);
  await prod.start();
  const g = prod.groups.get('default')!;
  await g.ready();
  const c = g.copy('dr');
  const lu = g.sets[0].lu;
  const nexus = makeNexus();
  lu.target.nexusUp(nexus);
  lu.ua.forget(nexus.key);
  const data = Buffer.alloc(4096, 0xa5);

  async function run(n: number): Promise<number> {
    const t0 = performance.now();
    for (let i = 0; i < n; i++) {
      data.writeUInt32BE(i, 0);
      lu.submit({ lun: 0, cdb: cdb16(0x8a, (i * 7919) % 16384 * 8, 8), nexus, taskTag: i, attr: TaskAttribute.Simple, expectedLength: 4096, isRead: false, isWrite: true, dataOut: data });
      if (i % 256 === 0) await new Promise((r) => setImmediate(r));
    }
    while (c.appliedSeq < g.journal.nextSeq - 1) {
      if (g.transfer !== 'active') throw new Error(`transfer ${g.transfer}`);
      await new Promise((r) => setTimeout(r, 1));
    }
    return n / ((performance.now() - t0) / 1000);
  }

  await run(Math.min(2000, N)); // warm: the link's session, the remote LU's pages
  const r = await run(N);
  console.log(`${label}: ${N} records of 4 KiB shipped to the remote copy over loopback: ${Math.round(r)} records/s (${(r * 4096 / 2 ** 20).toFixed(1)} MiB/s)`);
  await prod.stop();
  await dr.stop();
}

console.log(`load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
await measure('remote memory LUN, undo log in memory', '64MiB');
const dir = mkdtempSync(path.join(tmpdir(), 'arraysim-crr-cost-'));
try {
  await measure('remote file LUN, undo log in memory', `file:${path.join(dir, 'a.img')},size=64MiB`);
  await measure('remote file LUN, undo log on disk (replicaJournal)', `file:${path.join(dir, 'b.img')},size=64MiB`, path.join(dir, 'rj'));
} finally {
  rmSync(dir, { recursive: true, force: true });
}
console.log(`load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
