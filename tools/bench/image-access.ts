/**
 * Image access to an image N writes back (issue 10: "Image access to an image 1,000,000 writes
 * back: under 1 s to enable"), virtual against logged, in process.
 *
 *   npx tsx tools/bench/image-access.ts [--writes 1000000] [--bytes 512] [--mib 64] [--no-logged]
 *   node --expose-gc --import tsx tools/bench/image-access.ts ...   # a full GC before each enable
 *
 * One LU of --mib MiB (512-byte blocks, memory) in a group with a local copy (memory journal large
 * enough to keep every record: nothing leaves the protection window). The LU is filled (128 KiB
 * WRITE(16)s) and distributed, so the undo data of later writes holds data, not deallocated runs;
 * production is photographed and bookmark `before` taken; then --writes WRITE(16)s of --bytes at
 * pseudo-random aligned LBAs (overlapping: 1,000,000 writes of one block over 131,072 blocks touch
 * each block ~8 times), all through LogicalUnit.submit (the splitter gate, as a host's write),
 * distributed to the copy. Then:
 *  - enable_image_access image=before mode=virtual, timed (wall, and the map's own build time);
 *    the whole image read through the copy's LU store and compared with the photograph; disable.
 *  - unless --no-logged: enable_image_access image=before mode=logged (the replica rolled back with
 *    the undo data of every write since), timed, compared the same way; disable (and the copy
 *    re-applied to the end).
 * Prints wall and CPU time of each enable (CPU time moves less with other load on a shared
 * machine), the load average before and after, and the heap and RSS (the journal and the undo stream
 * hold an object per write; the map holds typed arrays).
 */
import { loadavg } from 'node:os';
import { PerformanceObserver } from 'node:perf_hooks';
import { ScsiTarget } from '../../src/scsi/target.ts';
import { TaskAttribute } from '../../src/scsi/types.ts';
import { MemoryStore } from '../../src/store/memory.ts';
import { ImageStore } from '../../src/splitter/copy-target.ts';
import { ConsistencyGroup } from '../../src/splitter/group.ts';
import { disableImageAccess, enableImageAccess } from '../../src/splitter/image.ts';
import type { ImageAccessMode } from '../../src/splitter/image.ts';
import { parseSplitterSpec } from '../../src/splitter/policy.ts';
import { cdb16 } from '../../test/helpers/cdb.ts';
import { testNexus } from '../../test/helpers/nexus.ts';
import { numOpt } from './target.ts';

const WRITES = numOpt('writes', 1_000_000);
const BYTES = numOpt('bytes', 512);
const MIB = numOpt('mib', 64);
const LOGGED = !process.argv.includes('--no-logged');
const BS = 512;
const BLOCKS = (MIB << 20) / BS;

const load = () => loadavg().map((x) => x.toFixed(2)).join(' ');
const mb = (n: number) => `${(n / 2 ** 20).toFixed(0)} MiB`;
const memory = () => { const m = process.memoryUsage(); return `heap ${mb(m.heapUsed)}, RSS ${mb(m.rss)}`; };
const turn = () => new Promise<void>((r) => setImmediate(r));
/** Garbage collection pauses (ms) since the process started: a full one of the heap the writes left can land in any enable. */
let gcMs = 0;
new PerformanceObserver((l) => { for (const e of l.getEntries()) gcMs += e.duration; }).observe({ entryTypes: ['gc'] });

async function main(): Promise<void> {
  console.log(`load average ${load()} (before)`);
  const t = new ScsiTarget('iqn.2026-12.dev.arraysim:image-bench');
  const lu = t.addLun({ lun: 0, store: new MemoryStore(BigInt(BLOCKS)), naa: '6001405000000e10', serial: 'IMGBENCH' });
  const nexus = testNexus(t.name, { initiator: 'iqn.2026-12.dev.arraysim:bench', isid: '23d000000001', tpgt: 1 });
  t.nexusUp(nexus);
  lu.ua.forget(nexus.key);
  // Journal: every record kept (payload + 64 bytes of overhead each), with room to spare.
  const journalBytes = (WRITES + BLOCKS) * (BYTES + 64) * 2 + (MIB << 21);
  const g = new ConsistencyGroup({ name: 'g', spec: parseSplitterSpec('ats=support'), luns: [lu], copies: ['local'], journalBytes, startTransfer: false });
  await g.startTransfer('bench');
  const c = g.copy('local');
  let tag = 0;
  const write = (lba: number, data: Buffer) => lu.submit({
    lun: 0, cdb: cdb16(0x8a, lba, data.length / BS), nexus, taskTag: tag++, attr: TaskAttribute.Simple, expectedLength: data.length, isRead: false, isWrite: true, dataOut: data,
  });
  const drained = async () => { while (c.appliedSeq < g.journal.nextSeq - 1) await turn(); };

  // Fill the LU (so undo data is data), distributed.
  const fill = Buffer.alloc(128 << 10);
  for (let lba = 0; lba < BLOCKS; lba += fill.length / BS) {
    fill.fill((lba >> 8) & 0xff);
    fill.writeUInt32BE(lba, 0);
    write(lba, Buffer.from(fill));
    if ((lba >> 8) % 64 === 0) await turn();
  }
  await drained();
  const photo = Buffer.from(lu.store.read(0n, BLOCKS) as Buffer);
  const before = g.bookmark('before');

  // The writes.
  const per = BYTES / BS;
  const slots = Math.floor(BLOCKS / per);
  const data = Buffer.alloc(BYTES);
  const t0 = performance.now();
  for (let i = 0; i < WRITES; i++) {
    data.writeUInt32BE(i, 0);
    data.writeUInt32BE(0xc0ffee, BYTES - 4);
    write(((i * 2654435761) % slots) * per, data);
    if (i % 4096 === 4095) await turn();
  }
  await drained();
  const writeS = (performance.now() - t0) / 1000;
  const seqs = g.journal.nextSeq - 1 - before.seq;
  console.log(`${WRITES} WRITE(16)s of ${BYTES} bytes over ${MIB} MiB after bookmark before (seq ${before.seq}): ${writeS.toFixed(1)} s including distribution; ` +
    `journal ${g.journal.length} records, ${seqs} after the bookmark, undo ${mb(c.undo.bytes)} in ${c.undo.length} entries; ${memory()}`);

  const image = new ImageStore(c, 0);
  const matches = async (): Promise<boolean> => (await image.read(0n, BLOCKS)).equals(photo);
  const run = async (mode: ImageAccessMode): Promise<void> => {
    // With --expose-gc: the heap the writes left is collected first, so that the concurrent
    // marking of 600 MiB of journal and undo objects does not share the enable's CPU time.
    const gcFirst = (globalThis as { gc?: () => void }).gc;
    if (gcFirst) { gcFirst(); await new Promise((r) => setTimeout(r, 200)); }
    const e0 = performance.now();
    const c0 = process.cpuUsage();
    const gc0 = gcMs;
    const img = await enableImageAccess(g, c, 'before', mode);
    const ms = performance.now() - e0;
    const cpu = process.cpuUsage(c0);
    await new Promise((r) => setTimeout(r, 200)); // the observer reports after the pause
    const gc = gcMs - gc0;
    const v = img.virtual;
    const how = v ? `read map: ${v.runs} runs over ${v.mapBlocks} blocks, built in ${v.buildMs.toFixed(0)} ms` : `replica rolled back over ${seqs} records`;
    const ok = await matches();
    console.log(`enable_image_access image=before mode=${mode}: ${ms.toFixed(0)} ms wall, ${((cpu.user + cpu.system) / 1000).toFixed(0)} ms CPU, ${gc.toFixed(0)} ms of it in GC pauses${gcFirst ? ', after a full GC' : ''} (${how}); image == production at the bookmark: ${ok ? 'yes' : 'NO'}; ${memory()}`);
    const d0 = performance.now();
    await disableImageAccess(g, c, true);
    await drained();
    console.log(`  disable_image_access and the copy back at the end: ${(performance.now() - d0).toFixed(0)} ms`);
    if (!ok) process.exitCode = 1;
  };
  await run('virtual');
  if (LOGGED) await run('logged');
  console.log(`load average ${load()} (after)`);
}

await main();
