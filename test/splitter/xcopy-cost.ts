/**
 * What splitting costs an EXTENDED COPY, in process (LogicalUnit.submit, no transport): 1 GiB
 * copied between thin memory LUs in 4 MiB block->block segments, 8 in flight (ESXi's shape, as
 * tools/bench/xcopy.ts sends them), once unprotected and once with both LUs in a group with a
 * local copy (`ats=support`, memory journal, the CLI's default journal size), each onto a fresh
 * destination. The protected run waits for the distributor to apply everything, so its cost
 * counts. Not a test:
 *
 *   npx tsx test/splitter/xcopy-cost.ts [--gib 1] [--runs 1] [--unprotected 0]
 *   ARRAYSIM_XCOPY_COST_PROF=/tmp/xcopy.cpuprofile npx tsx test/splitter/xcopy-cost.ts --unprotected 0
 *
 * Prints wall seconds and CPU seconds (user + system of this process: less moved by other load on
 * a shared machine) per copy. The benchmark is over iSCSI (tools/bench/xcopy.ts); this
 * shows the engine's share.
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { loadavg } from 'node:os';
import { DEFAULT_JOURNAL_BYTES } from '../../src/config.ts';
import { ConsistencyGroup } from '../../src/splitter/group.ts';
import type { MemoryJournal } from '../../src/splitter/journal.ts';
import { parseSplitterSpec } from '../../src/splitter/policy.ts';
import { ScsiTarget } from '../../src/scsi/target.ts';
import { ScsiStatus, TaskAttribute } from '../../src/scsi/types.ts';
import { MemoryStore } from '../../src/store/memory.ts';
import { cdb16 } from '../helpers/cdb.ts';
import { makeNexus } from '../scsi/sbc-fixture.ts';
import { xcopyCdb, xcopyList } from '../scsi/xcopy-params.ts';

const arg = (name: string, dflt: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
};
const BYTES = arg('gib', 1) * (1 << 30);
const RUNS = arg('runs', 1);
/** --unprotected 0: the protected copy only (for a CPU profile of it). */
const UNPROTECTED = arg('unprotected', 1) === 1;
/** ARRAYSIM_XCOPY_COST_PROF=FILE: a V8 CPU profile of the protected copy alone (not the fill) goes there. */
const PROFILE = process.env.ARRAYSIM_XCOPY_COST_PROF;
const SEGMENT = 4 << 20;

async function startProfile(): Promise<() => Promise<void>> {
  const s = new Session();
  s.connect();
  const post = (m: string, p?: object) => new Promise<unknown>((res, rej) => s.post(m, p ?? {}, (e, r) => (e ? rej(e) : res(r))));
  await post('Profiler.enable');
  await post('Profiler.start');
  return async () => {
    const r = await post('Profiler.stop') as { profile: object };
    writeFileSync(PROFILE!, JSON.stringify(r.profile));
    s.disconnect();
  };
}
const QD = 8;
const BS = 512;

async function copy(protect: boolean): Promise<{ wall: number; cpu: number }> {
  const t = new ScsiTarget('iqn.2026-11.dev.arraysim:xcopy-cost');
  const naa = ['6001405000000c00', '6001405000000c01'];
  const lus = naa.map((n, i) => t.addLun({ lun: i, store: new MemoryStore(BigInt(BYTES / BS)), naa: n, serial: `XC${i}` }));
  const nexus = makeNexus();
  t.nexusUp(nexus);
  for (const lu of lus) lu.ua.forget(nexus.key);
  let g: ConsistencyGroup | null = null;
  if (protect) {
    g = new ConsistencyGroup({ name: 'g', spec: parseSplitterSpec('ats=support'), luns: lus, copies: ['local'], journalBytes: DEFAULT_JOURNAL_BYTES, startTransfer: false });
    await g.startTransfer('cost');
  }
  const drained = async (): Promise<void> => {
    while (g && g.copy().appliedSeq < g.journal.nextSeq - 1) await new Promise((r) => setImmediate(r));
  };
  // The source, filled with non-zero data by WRITE(16)s (split too when protected, as the
  // iSCSI bench fills it), and distributed before the copy starts.
  const fill = Buffer.alloc(SEGMENT);
  for (let i = 0; i < fill.length; i += 4) fill.writeUInt32BE((i * 2654435761) >>> 0, i);
  for (let o = 0; o < BYTES; o += SEGMENT) {
    const r = await lus[0].submit({ lun: 0, cdb: cdb16(0x8a, o / BS, SEGMENT / BS), nexus, taskTag: o / SEGMENT, attr: TaskAttribute.Simple, expectedLength: SEGMENT, isRead: false, isWrite: true, dataOut: fill });
    if (r.status !== ScsiStatus.Good) throw new Error(`fill: status ${r.status}`);
  }
  await drained();
  const blocks = SEGMENT / BS;
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < BYTES / SEGMENT) {
      const i = next++;
      const list = xcopyList({ usage: 3, cscds: [{ naa: naa[0] }, { naa: naa[1] }], segments: [{ src: 0, dst: 1, blocks, srcLba: i * blocks, dstLba: i * blocks }] });
      const r = await lus[0].submit({ lun: 0, cdb: xcopyCdb(list.length), nexus, taskTag: i, attr: TaskAttribute.Simple, expectedLength: list.length, isRead: false, isWrite: true, dataOut: list });
      if (r.status !== ScsiStatus.Good) throw new Error(`xcopy ${i}: status ${r.status} sense ${r.sense?.toString('hex')}`);
    }
  };
  const stopProfile = PROFILE && protect ? await startProfile() : null;
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  const f0 = process.resourceUsage().minorPageFault;
  await Promise.all(Array.from({ length: QD }, worker));
  // The distributor runs between commands; wait for it so its work counts.
  await drained();
  const c = process.cpuUsage(c0);
  const faults = process.resourceUsage().minorPageFault - f0;
  if (g) console.log(`journal arenas ${(g.journal as MemoryJournal).arenas.allocated}, undo bytes ${g.copy().undo.bytes}, user ${(c.user / 1e6).toFixed(3)} s sys ${(c.system / 1e6).toFixed(3)} s, page faults ${faults}`);
  else console.log(`user ${(c.user / 1e6).toFixed(3)} s sys ${(c.system / 1e6).toFixed(3)} s, page faults ${faults}`);
  const wall = (performance.now() - t0) / 1000;
  if (stopProfile) await stopProfile();
  // Correctness: destination (and, protected, the replica) equal the source at a few places.
  for (const lba of [0, BYTES / BS / 2, BYTES / BS - blocks]) {
    const want = lus[0].store.read(BigInt(lba), blocks) as Buffer;
    if (!(lus[1].store.read(BigInt(lba), blocks) as Buffer).equals(want)) throw new Error(`destination differs at LBA ${lba}`);
    if (g && !(g.copy().replicas[1].read(BigInt(lba), blocks) as Buffer).equals(want)) throw new Error(`replica differs at LBA ${lba}`);
  }
  for (const lu of lus) lu.store.close();
  if (g) for (const s of g.copy().replicas) s.close();
  return { wall, cpu: (c.user + c.system) / 1e6 };
}

console.log(`load average ${loadavg().map((x) => x.toFixed(1)).join(' ')}`);
for (let k = 0; k < RUNS; k++) {
  const u = UNPROTECTED ? await copy(false) : { wall: NaN, cpu: NaN };
  const p = await copy(true);
  console.log(`EXTENDED COPY of ${BYTES >> 20} MiB, in process: unprotected ${u.wall.toFixed(3)} s wall, ${u.cpu.toFixed(3)} s CPU; ` +
    `protected (ats=support, local copy) ${p.wall.toFixed(3)} s wall, ${p.cpu.toFixed(3)} s CPU (+${(p.cpu - u.cpu).toFixed(3)} s CPU)`);
}
console.log(`load average ${loadavg().map((x) => x.toFixed(1)).join(' ')}`);
