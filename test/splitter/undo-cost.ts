/**
 * What keeping undo data on disk costs a file-journaled group (not a test: `npx tsx
 * test/splitter/undo-cost.ts`): 8,000 4 KiB writes at QD8 through the initiator to a 4 MiB file
 * LUN with a file journal and a local copy, then the copy drained; wall time of writes and drain,
 * fdatasyncs of the undo segments, and the undo bytes on disk.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { ScsiDevice } from '../../src/initiator/index.ts';
import { DurableUndoStream } from '../../src/splitter/undo-file.ts';
import { fileJournalArray } from './rig.ts';

const WRITES = 8000, QD = 8, SLOTS = 1024; // 4 MiB LUN: slots of 8 blocks
const d = mkdtempSync(path.join(tmpdir(), 'arraysim-undo-cost-'));
try {
  console.log(`load average ${loadavg().map((x) => x.toFixed(1)).join(' ')}`);
  const { a, g, url } = await fileJournalArray(d, 'iqn.2026-12.dev.arraysim:undo-cost').start();
  const dev = await ScsiDevice.open(url);
  await dev.readCapacity16();
  const t0 = performance.now();
  let n = 0;
  await Promise.all(Array.from({ length: QD }, async (_, w) => {
    while (n < WRITES) { const i = n++; await dev.write(BigInt(((i * 7 + w) % SLOTS) * 8), Buffer.alloc(4096, i & 0xff)); }
  }));
  const t1 = performance.now();
  await g.catchUp(g.copy());
  const t2 = performance.now();
  const u = g.copy().undo;
  const log = u instanceof DurableUndoStream ? u.log : null;
  console.log(`${WRITES} writes QD${QD}: ${Math.round(WRITES / ((t1 - t0) / 1000))}/s; drained ${((t2 - t0) / 1000).toFixed(2)} s after the first write; `
    + `undo ${log ? `on disk: ${log.syncs} fdatasyncs for ${g.copy().appliedRecords} records, ${log.fileBytes} bytes in ${log.segmentCount} segments` : 'in memory only'}`);
  await dev.close();
  await a.stop();
} finally {
  rmSync(d, { recursive: true, force: true });
}
