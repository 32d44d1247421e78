/**
 * What the group metadata file (src/replication/group-meta.ts) costs a host write, QD1, 4 KiB:
 * a pair of arrays in this process on file volumes in a scratch folder (site A 127.0.1.1 primary,
 * site B 127.0.2.1 secondary, no witness), the link cut at B so A writes alone:
 *   - Synced: writes replicated to B (the metadata file is not touched; the activity log is written
 *     once per 4 MiB extent a write touches that it does not hold yet, activity-log.ts);
 *   - Synced, each write a new extent: the activity log's worst case, a transaction per write;
 *   - out of sync, new regions: each write's 4 KiB region is not yet marked, so it waits for one
 *     metadata flush (temporary file, fsync, rename, fsync of the folder) before it is applied;
 *   - out of sync, marked regions: the same regions again (nothing to flush).
 *
 *   npx tsx tools/bench/rcopy-meta.ts [--writes 500]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { StorageArray } from '../../src/array.ts';
import type { ArrayConfig } from '../../src/config.ts';
import { ScsiDevice } from '../../src/initiator/index.ts';

const n = Number(process.argv[process.argv.indexOf('--writes') + 1] || 500);
const TARGET = 'iqn.2026-12.dev.arraysim:meta-bench';
const dir = mkdtempSync(path.join(tmpdir(), 'arraysim-meta-bench-'));
const cfg = (site: 'a' | 'b', peer?: number): ArrayConfig => {
  const host = site === 'a' ? '127.0.1.1' : '127.0.2.1';
  const tpg = site === 'a' ? 1 : 2;
  return {
    portals: [{ host, port: 0, tpgt: tpg, targetPortGroup: tpg }],
    targets: [{ name: TARGET, luns: [{ spec: `file:${path.join(dir, `${site}.img`)},size=${256 * 1024 * 1024}`, naa: '502a7510000a0f01', serial: 'ASIMMETABENCH' }] }],
    iscsi: { nopInterval: 0 }, logLevel: 'silent',
    peers: { name: `site-${site}`, listen: { host, port: 0 }, peer: peer ? { host: '127.0.2.1', port: peer } : undefined },
    rcopy: { groups: [{ name: 'rcg1', role: site === 'a' ? 'primary' : 'secondary', volumes: [{ target: TARGET, lun: 0 }], policies: { active_active: true } }] },
  };
};
const log = pino({ level: 'silent' });
const b = await StorageArray.create(cfg('b'), log);
await b.start();
const a = await StorageArray.create(cfg('a', b.config.peers!.listen!.port), log);
await a.start();
const ga = a.rcopy!.groups.get('rcg1')!;
const wait = async (f: () => boolean) => { while (!f()) await new Promise((r) => setTimeout(r, 10)); };
await wait(() => ga.machine.status === 'Synced' && !ga.meta!.tracking); // the file says Synced
const d = await ScsiDevice.open(`iscsi://127.0.1.1:${a.config.portals[0].port}/${TARGET}/0`);
await d.clearUnitAttentions();
const data = Buffer.alloc(4096, 0x5a);
/** `count` writes of 4 KiB, the i-th at 4 KiB slot base + i × stride. */
const run = async (label: string, base: number, stride = 3, count = n) => {
  const t: number[] = [];
  const flushes0 = ga.meta!.flushes;
  const al0 = ga.al!.transactions;
  for (let i = 0; i < count; i++) {
    const t0 = performance.now();
    const r = await d.write(BigInt((base + i * stride) * 8), data);
    if (r.kind !== 'good') throw new Error(`${label}: write ${i} failed`);
    t.push(performance.now() - t0);
  }
  t.sort((x, y) => x - y);
  const us = (q: number) => Math.round(t[Math.floor(q * (t.length - 1))] * 1000);
  console.log(`${label.padEnd(44)} ${count} writes  median ${us(0.5)} µs  p99 ${us(0.99)} µs  metadata flushes ${ga.meta!.flushes - flushes0}  activity log transactions ${ga.al!.transactions - al0}`);
};
await run('Synced (replicated)', 0);
// Each write in a 4 MiB extent the activity log does not hold yet: one transaction each (the worst case).
await run('Synced, each write a new 4 MiB extent', 2, 1024, 60);
b.rcopy!.setLink({ action: 'cut' });
await wait(() => ga.machine.link === 'down' && ga.machine.serving);
await run('out of sync, new regions', 1);
await run('out of sync, regions already marked', 1);
await d.close();
await a.stop();
await b.stop();
rmSync(dir, { recursive: true, force: true });
