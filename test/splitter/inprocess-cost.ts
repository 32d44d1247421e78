/**
 * What splitting costs a write, in process (LogicalUnit.submit, no transport): the same WRITE(16)s
 * to an unprotected LU and to one protected by a group with a local copy (memory journal, default
 * settings otherwise), 4 KiB and 128 KiB, over a 64 MiB working set written once first so both
 * runs measure warm memory. Not a test: `npx tsx test/splitter/inprocess-cost.ts`. The issue's
 * benchmark is over iSCSI (tools/bench/splitter.ts); this shows the engine's share. Rates are per
 * wall second and per CPU second of this process: on a loaded shared machine the second moves less.
 */
import { loadavg } from 'node:os';
import { ScsiTarget } from '../../src/scsi/target.ts';
import { TaskAttribute } from '../../src/scsi/types.ts';
import { MemoryStore } from '../../src/store/memory.ts';
import { ConsistencyGroup } from '../../src/splitter/group.ts';
import { parseSplitterSpec } from '../../src/splitter/policy.ts';
import { makeNexus } from '../scsi/sbc-fixture.ts';
import { cdb16 } from '../helpers/cdb.ts';

const SET_BLOCKS = 131072; // 64 MiB of 512-byte blocks

/** Writes per second of wall time, and of this process's CPU time (user + system: less moved by other load on a shared machine). */
async function rate(protect: boolean, bytes: number, n: number): Promise<{ wall: number; cpu: number }> {
  const t = new ScsiTarget('iqn.2026-11.dev.arraysim:cost');
  const lu = t.addLun({ lun: 0, store: new MemoryStore(BigInt(SET_BLOCKS)), naa: '6001405000000e00', serial: 'COST' });
  const nexus = makeNexus();
  t.nexusUp(nexus);
  lu.ua.forget(nexus.key);
  let g: ConsistencyGroup | null = null;
  if (protect) {
    g = new ConsistencyGroup({ name: 'g', spec: parseSplitterSpec('ats=support'), luns: [lu], copies: ['local'], journalBytes: 256 << 20, startTransfer: false });
    await g.startTransfer('cost');
  }
  const data = Buffer.alloc(bytes, 0xa5);
  const blocks = bytes / 512;
  const submit = (i: number) => {
    const lba = ((i * 7919) % (SET_BLOCKS / blocks)) * blocks;
    lu.submit({ lun: 0, cdb: cdb16(0x8a, lba, blocks), nexus, taskTag: i, attr: TaskAttribute.Simple, expectedLength: bytes, isRead: false, isWrite: true, dataOut: data });
  };
  // Warm: every block of the working set (and, protected, of the replica and the journal's arenas).
  const warm = Math.max(SET_BLOCKS / blocks, protect ? (300 << 20) / bytes : 0);
  for (let i = 0; i < warm; i++) { submit(i); if (i % 1024 === 0) await new Promise((r) => setImmediate(r)); }
  await new Promise((r) => setTimeout(r, 20));
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  for (let i = 0; i < n; i++) { submit(i); if (i % 1024 === 0) await new Promise((r) => setImmediate(r)); }
  // The distributor runs between batches; wait for it so its work counts.
  while (g && g.copy().appliedSeq < g.journal.nextSeq - 1) await new Promise((r) => setImmediate(r));
  const c = process.cpuUsage(c0);
  return { wall: n / ((performance.now() - t0) / 1000), cpu: n / ((c.user + c.system) / 1e6) };
}

console.log(`load average ${loadavg().map((x) => x.toFixed(1)).join(' ')}`);
for (const [bytes, n] of [[4096, 200_000], [131072, 20_000]] as const) {
  const u = await rate(false, bytes, n);
  const p = await rate(true, bytes, n);
  console.log(`${bytes / 1024} KiB WRITE(16), in process: unprotected ${Math.round(u.wall)}/s, protected ${Math.round(p.wall)}/s (${(p.wall / u.wall * 100).toFixed(0)}%); ` +
    `per CPU second ${Math.round(u.cpu)} vs ${Math.round(p.cpu)} (${(p.cpu / u.cpu * 100).toFixed(0)}%)`);
}
console.log(`load average ${loadavg().map((x) => x.toFixed(1)).join(' ')}`);
