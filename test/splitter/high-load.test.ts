/**
 * High load, in process (a group over a memory LU, writes through lu.submit): a journal full of
 * writes not yet distributed does not grow past its size. An accessed image holds the journal
 * (its copy is not distributed to), so production's writes fill it; from then on they mark their
 * regions (RecoverPoint's high load). When the image access ends, the copy catches up, high load
 * ends, a short initialization sends the marked regions, and the copy equals production.
 */
import { describe, expect, it } from 'vitest';
import { ConsistencyGroup } from '../../src/splitter/group.ts';
import type { GroupChange } from '../../src/splitter/group.ts';
import { disableImageAccess, enableImageAccess } from '../../src/splitter/image.ts';
import { parseSplitterSpec } from '../../src/splitter/policy.ts';
import { verifyGroup } from '../../src/splitter/verify.ts';
import { inProcessLun, pattern } from './rig.ts';

const MiB = 1 << 20;
const LIMIT = 1 * MiB;

function protectedLun(blocks: number, copies = ['local']) {
  const { lu, write } = inProcessLun(blocks, '6001405000000e10', 'H0');
  const g = new ConsistencyGroup({ name: 'g', spec: parseSplitterSpec('ats=support'), luns: [lu], copies, journalBytes: LIMIT, startTransfer: true });
  const changes: GroupChange[] = [];
  g.listeners.add((e) => changes.push(e));
  return { lu, g, write, changes };
}

const turn = () => new Promise((r) => setImmediate(r));

async function until(what: string, ok: () => boolean): Promise<void> {
  for (let i = 0; i < 2000 && !ok(); i++) await new Promise((r) => setTimeout(r, 5));
  if (!ok()) throw new Error(`never: ${what}`);
}

describe('high load: the journal is full of writes not yet distributed', () => {
  it('an accessed image holds the journal: writes past its size are marked; after disable_image_access the copy is production again', async () => {
    const { g, write, changes } = protectedLun(32 * 2048); // 32 MiB
    await g.ready();
    await write(0, pattern(64 * 1024, 1));
    await turn();
    const c = g.copy('local');
    expect(c.appliedSeq).toBe(g.journal.nextSeq - 1);
    await enableImageAccess(g, c, 'latest', 'logged');
    // 4 MiB of 4 KiB writes all over the LU: four times the journal's size, none distributed.
    let peak = 0;
    for (let i = 0; i < 1024; i++) {
      await write(((i * 97) % 8192) * 8, pattern(4096, 100 + i));
      peak = Math.max(peak, g.journal.bytes);
      if (i % 64 === 0) await turn();
    }
    expect(g.highLoad).toBe(true);
    expect(g.status().highLoad).toBe(true);
    // Bounded: never past the size by more than the check's margin and one write.
    expect(peak).toBeLessThanOrEqual(LIMIT * 1.125 + 4096 + 64);
    expect(c.markedRegions).toBeGreaterThan(0);
    expect(changes.some((e) => e.kind === 'high-load' && e.highLoad)).toBe(true);

    // The copy comes back (its marked regions are sent with it) and high load ends.
    await disableImageAccess(g, c, true);
    await until('high load over, nothing marked', () => !g.highLoad && g.transfer === 'active' && c.markedRegions === 0 && c.appliedSeq === g.journal.nextSeq - 1);
    expect(changes.some((e) => e.kind === 'high-load' && !e.highLoad)).toBe(true);
    expect((await verifyGroup(g, 'local')).consistent).toBe(true);
  });

  it('a copy distributed to throughout misses the marked writes until high load ends: then a short initialization (active -> init -> active) sends them', async () => {
    const { g, write } = protectedLun(32 * 2048, ['local', 'dr']);
    await g.ready();
    const c = g.copy('local');
    const dr = g.copy('dr');
    await enableImageAccess(g, c, 'latest', 'logged');
    for (let i = 0; i < 1024; i++) {
      await write(((i * 97) % 8192) * 8, pattern(4096, 100 + i));
      if (i % 64 === 0) await turn();
    }
    expect(g.highLoad).toBe(true);
    expect(dr.markedRegions).toBeGreaterThan(0);
    expect((await verifyGroup(g, 'dr')).consistent).toBe(false);
    await disableImageAccess(g, c, true);
    await until('high load over, nothing marked', () => !g.highLoad && g.transfer === 'active' && dr.markedRegions === 0 && c.markedRegions === 0);
    await g.ready();
    expect(g.history.some((e) => e.from === 'active' && e.to === 'init' && e.reason.startsWith('high load over'))).toBe(true);
    expect((await verifyGroup(g, 'dr')).consistent).toBe(true);
    expect((await verifyGroup(g, 'local')).consistent).toBe(true);
  });

  it('a journal that only holds history (every copy caught up) is trimmed, never high load', async () => {
    const { g, write } = protectedLun(32 * 2048);
    await g.ready();
    for (let i = 0; i < 1024; i++) {
      await write(((i * 97) % 8192) * 8, pattern(4096, i));
      if (i % 16 === 0) await turn();
    }
    await turn();
    expect(g.highLoad).toBe(false);
    expect(g.journal.bytes).toBeLessThanOrEqual(LIMIT * 1.125 + 4096 + 64);
    expect(g.journal.evicted).toBeGreaterThan(0);
    expect((await verifyGroup(g, 'local')).consistent).toBe(true);
  });
});
