/**
 * The resync proof (issue 12): after an outage in which N bytes were written, auto_synchronize
 * sends only the dirty regions. The dirty map (GroupMachine.dirty) holds exact extents in logical
 * blocks (512 bytes here), coalesced when the resync starts, so the bytes sent must equal the size
 * of the union of the extents written during the outage: N when no two writes touch the same
 * block, less when they overlap. It lives in memory only. Writes are seeded (RCOPY_SEED replays).
 * Negative control: a block changed on A behind the group's back (not in the dirty map) is not
 * resent, and the A-equals-B check over the written regions catches it.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { seededRandom } from '../../src/replication/link-faults.ts';
import { startPair, BLOCKS, block, senseOf, settled, until } from './pair.ts';
import type { Pair } from './pair.ts';

let pair: Pair | null = null;
afterEach(async () => { await pair?.close(); pair = null; });

interface Extent { lba: number; blocks: number }

/** Blocks covered by the union of the extents (what an exact dirty map must resend). */
function unionBlocks(xs: Extent[]): number {
  const s = [...xs].sort((a, b) => a.lba - b.lba);
  let total = 0, end = -1;
  for (const x of s) {
    const e = x.lba + x.blocks;
    if (x.lba >= end) total += x.blocks;
    else if (e > end) total += e - end;
    end = Math.max(end, e);
  }
  return total;
}

/** The regions where A and B differ, over the given extents (read from each array's own store). */
async function differences(p: Pair, xs: Extent[]): Promise<string[]> {
  const out: string[] = [];
  for (const x of xs) {
    const a = Buffer.from(await p.ga.stores[0].inner.read(BigInt(x.lba), x.blocks));
    const b = Buffer.from(await p.gb.stores[0].inner.read(BigInt(x.lba), x.blocks));
    if (!a.equals(b)) out.push(`LBA ${x.lba}+${x.blocks}`);
  }
  return out;
}

async function outage(p: Pair): Promise<void> {
  p.a.rcopy!.setLink({ action: 'cut' });
  await until(() => p.ga.machine.status === 'Stopped' && p.gb.machine.status === 'Stopped', 'both Stopped', 15_000);
}

async function restore(p: Pair): Promise<void> {
  p.a.rcopy!.setLink({ action: 'restore' });
  await until(() => p.ga.machine.status === 'Synced' && p.gb.machine.status === 'Synced', 'both Synced', 30_000);
}

describe('resync after an outage sends only the dirty regions', () => {
  it('1% of the volume in 4 KiB random writes: bytes sent = bytes written', async () => {
    pair = await startPair();
    const da = await pair.open('A');
    const seed = Number(process.env.RCOPY_SEED ?? Date.now() % 100000);
    const rand = seededRandom(seed);
    await outage(pair);
    // Distinct 4 KiB-aligned slots: no two writes share a block, so the union is exactly N.
    const slots = BLOCKS / 8;
    const chosen = new Set<number>();
    while (chosen.size < Math.floor(slots / 100)) chosen.add(Math.floor(rand() * slots));
    const written: Extent[] = [...chosen].map((s) => ({ lba: s * 8, blocks: 8 }));
    for (const x of written) expect(senseOf(await settled(() => da.write(BigInt(x.lba), block(`seed ${seed} ${x.lba}`, 8))))).toBe('good');
    const n = written.length * 8 * 512;
    expect(pair.ga.machine.snapshot().dirtyBlocks).toBe(String(written.length * 8));
    const before = pair.ga.stats.resyncBytes;
    await restore(pair);
    expect(pair.ga.stats.resyncBytes - before, `seed ${seed}`).toBe(n);
    expect(pair.ga.stats.lastResyncBytes).toBe(n);
    expect(n).toBe(Math.floor(slots / 100) * 4096); // ~1% of the volume
    expect(await differences(pair, written), `seed ${seed}`).toEqual([]);
  }, 90_000);

  it('overlapping and adjacent writes of mixed sizes: bytes sent = their union (each block once), less than bytes written', async () => {
    pair = await startPair();
    const da = await pair.open('A');
    const seed = Number(process.env.RCOPY_SEED ?? Date.now() % 100000);
    const rand = seededRandom(seed);
    await outage(pair);
    const written: Extent[] = [];
    let n = 0;
    // Crowded into 4,096 blocks so that many overlap or touch.
    for (let i = 0; i < 120; i++) {
      const blocks = 1 + Math.floor(rand() * 64);
      const lba = 20_000 + Math.floor(rand() * (4096 - blocks));
      written.push({ lba, blocks });
      n += blocks * 512;
      expect(senseOf(await settled(() => da.write(BigInt(lba), block(`seed ${seed} write ${i}`, blocks))))).toBe('good');
    }
    const union = unionBlocks(written) * 512;
    expect(union).toBeLessThan(n);
    const before = pair.ga.stats.resyncBytes;
    await restore(pair);
    expect(pair.ga.stats.resyncBytes - before, `seed ${seed}: wrote ${n} bytes, union ${union}`).toBe(union);
    expect(await differences(pair, written), `seed ${seed}`).toEqual([]);
  }, 90_000);

  it('a resync cut off by a second outage restarts with the link and still leaves every written region equal on both', async () => {
    pair = await startPair();
    const da = await pair.open('A');
    await outage(pair);
    const written: Extent[] = Array.from({ length: 300 }, (_, i) => ({ lba: 30_000 + i * 16, blocks: 8 }));
    for (const x of written) expect(senseOf(await settled(() => da.write(BigInt(x.lba), block(`region ${x.lba}`, 8))))).toBe('good');
    const before = pair.ga.stats.resyncBytes;
    // Slow the link so that the resync is still running when the second cut comes.
    pair.a.rcopy!.setLink({ action: 'restore', latencyMs: 5 });
    await until(() => pair!.ga.stats.resyncBytes > before, 'the resync under way', 30_000);
    const midway = pair.ga.machine.status;
    if (process.env.RCOPY_VERBOSE) console.log('second cut while', midway, pair.ga.stats.resyncBytes - before);
    pair.a.rcopy!.setLink({ action: 'cut' });
    await until(() => pair!.ga.machine.status === 'Stopped', 'A Stopped', 15_000);
    expect(pair.ga.machine.dirtyExtents().length).toBeGreaterThan(0);
    await restore(pair);
    expect(await differences(pair, written)).toEqual([]);
    // Cut while Syncing: the first resync was interrupted and the second sent the regions again.
    if (midway === 'Syncing') expect(pair.ga.stats.resyncBytes - before).toBeGreaterThan(300 * 8 * 512);
  }, 90_000);

  it('WRITE SAME and UNMAP made during the outage are resent as records, in order, with plain writes over them as data', async () => {
    pair = await startPair();
    const da = await pair.open('A');
    // Data on both first, so that the UNMAP below has something to take away on B.
    expect(senseOf(await settled(() => da.write(20_000n, block('before the outage', 64))))).toBe('good');
    await outage(pair);
    // 4 MiB of WRITE SAME, 1 MiB of UNMAP, then a plain write inside the WRITE SAME and a second WRITE SAME over part of the first.
    expect(senseOf(await settled(() => da.writeSame(10_000n, 8192, block(0x5a))))).toBe('good');
    expect(senseOf(await settled(() => da.unmap([{ lba: 20_000n, blocks: 2048 }])))).toBe('good');
    expect(senseOf(await settled(() => da.write(12_000n, block('plain write over the WRITE SAME', 8))))).toBe('good');
    expect(senseOf(await settled(() => da.writeSame(16_000n, 100, block(0xa7))))).toBe('good');
    expect(pair.ga.machine.dirtyOpCount).toBe(3);
    const before = { bytes: pair.ga.stats.resyncBytes, records: pair.ga.stats.resyncRecords };
    await restore(pair);
    // Two blocks of WRITE SAME pattern and the 8 blocks of the plain write: not 5 MiB.
    expect(pair.ga.stats.resyncBytes - before.bytes).toBe(2 * 512 + 8 * 512);
    expect(pair.ga.stats.resyncRecords - before.records).toBe(3);
    expect(await differences(pair, [{ lba: 10_000, blocks: 8192 }, { lba: 20_000, blocks: 2048 }])).toEqual([]);
    const r = await settled(() => da.read(12_000n, 8));
    expect(r.kind === 'good' && r.value.equals(block('plain write over the WRITE SAME', 8))).toBe(true);
  }, 60_000);

  it('negative control: a block changed behind the group is not resent, and the check finds A and B differ there', async () => {
    pair = await startPair();
    const da = await pair.open('A');
    await outage(pair);
    const written: Extent[] = [{ lba: 4096, blocks: 8 }];
    expect(senseOf(await settled(() => da.write(4096n, block('tracked', 8))))).toBe('good');
    // Straight into A's own store: the group never sees it, so its dirty map does not have it.
    await pair.ga.stores[0].inner.write(8192n, block('untracked', 8));
    const before = pair.ga.stats.resyncBytes;
    await restore(pair);
    expect(pair.ga.stats.resyncBytes - before).toBe(8 * 512);
    expect(await differences(pair, [...written, { lba: 8192, blocks: 8 }])).toEqual(['LBA 8192+8']);
  }, 60_000);
});
