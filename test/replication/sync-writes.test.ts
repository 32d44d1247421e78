/** Two arrays over TCP on loopback: synchronous writes through either array, ATS across the pair, link cut. */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startPair, settled, senseOf, block, until } from './pair.ts';
import type { Pair } from './pair.ts';

let pair: Pair;
beforeEach(async () => { pair = await startPair(); });
afterEach(async () => { await pair.close(); });

describe('synchronous replication between two arrays', () => {
  it('the volume is one device: same NAA on both, distinct relative ports and target port groups', async () => {
    const da = await pair.open('A');
    const db = await pair.open('B');
    expect((await da.naa()).toString('hex')).toBe((await db.naa()).toString('hex'));
    const ports = (d: typeof da) => settled(() => d.deviceIdentification()).then((r) => {
      if (r.kind !== 'good') throw new Error(senseOf(r));
      return r.value.designators.filter((x) => x.type === 4 || x.type === 5).map((x) => `${x.type}:${x.value.toString('hex')}`);
    });
    const pa = await ports(da);
    const pb = await ports(db);
    expect(pa).toHaveLength(2);
    expect(pa.some((x) => pb.includes(x))).toBe(false);
  });

  it('writes through either array are read back through the other', async () => {
    const da = await pair.open('A');
    const db = await pair.open('B');
    for (let i = 0; i < 50; i++) {
      const [w, r] = i % 2 ? [da, db] : [db, da];
      const data = block(`write ${i}`, 8);
      expect(senseOf(await settled(() => w.write(BigInt(i * 8), data)))).toBe('good');
      const got = await settled(() => r.read(BigInt(i * 8), 8));
      expect(got.kind === 'good' && got.value.equals(data)).toBe(true);
    }
    expect(pair.ga.stats.replicatedWrites).toBeGreaterThanOrEqual(50);
  });

  it('WRITE SAME and UNMAP through the secondary are replicated as records', async () => {
    const da = await pair.open('A');
    const db = await pair.open('B');
    const before = pair.ga.stats.replicatedBytes;
    expect(senseOf(await settled(() => db.writeSame(1000n, 4096, block(0x5a))))).toBe('good');
    const r = await settled(() => da.read(1000n, 4096));
    expect(r.kind === 'good' && r.value.equals(Buffer.alloc(4096 * 512, 0x5a))).toBe(true);
    // A record, not 2 MiB of data: the link carried no write data for it.
    expect(pair.ga.stats.replicatedBytes - before).toBe(0);
    expect(senseOf(await settled(() => db.writeSame(1000n, 16, null, { unmap: true, ndob: true })))).toBe('good');
    const z = await settled(() => da.read(1000n, 16));
    expect(z.kind === 'good' && z.value.equals(Buffer.alloc(16 * 512))).toBe(true);
  });

  it('EXTENDED COPY through the secondary: its destination writes are replicated', async () => {
    const da = await pair.open('A');
    const db = await pair.open('B');
    const src = block('xcopy source', 16);
    expect(senseOf(await settled(() => da.write(200n, src)))).toBe('good');
    expect(senseOf(await settled(() => db.extendedCopy([{ from: db, to: db, sourceLba: 200n, destinationLba: 300n, blocks: 16 }])))).toBe('good');
    const r = await settled(() => da.read(300n, 16));
    expect(r.kind === 'good' && r.value.equals(src)).toBe(true);
  });

  it('EXTENDED COPY of a whole chunk (cloned) while its source is overwritten: both arrays hold the same copy', async () => {
    const da = await pair.open('A');
    const db = await pair.open('B');
    const C = 2048; // blocks of one 1 MiB memory chunk: the piece is cloned (MemoryStore.share)
    const before = block('chunk before', C);
    expect(senseOf(await settled(() => da.write(0n, before)))).toBe('good');
    for (let round = 0; round < 20; round++) {
      const dst = BigInt(C * (4 + (round % 4)));
      const change = block(`change ${round}`, 8);
      const [x, w] = await Promise.all([
        settled(() => da.extendedCopy([{ from: da, to: da, sourceLba: 0n, destinationLba: dst, blocks: C }])),
        settled(() => da.write(0n, change)),
      ]);
      expect([senseOf(x), senseOf(w)]).toEqual(['good', 'good']);
      const [a, b] = await Promise.all([settled(() => da.read(dst, C)), settled(() => db.read(dst, C))]);
      if (a.kind !== 'good' || b.kind !== 'good') throw new Error('read failed');
      expect(a.value.equals(b.value)).toBe(true);
      // The copy is the source before or after the overwrite, never a mix.
      const src = await settled(() => da.read(0n, C));
      if (src.kind !== 'good') throw new Error('read failed');
      const old = round === 0 ? before : Buffer.concat([block(`change ${round - 1}`, 8), block(`later ${round - 1}`, 8), before.subarray(16 * 512)]);
      expect(a.value.equals(old) || a.value.equals(src.value)).toBe(true);
      // A later write to the source changes the source only (copy-on-write), on both arrays.
      expect(senseOf(await settled(() => db.write(8n, block(`later ${round}`, 8))))).toBe('good');
      const [a2, b2] = await Promise.all([settled(() => da.read(dst, C)), settled(() => db.read(dst, C))]);
      expect(a2.kind === 'good' && b2.kind === 'good' && a2.value.equals(a.value) && b2.value.equals(a.value)).toBe(true);
    }
  });

  it('overlapping writes through both arrays at once end identical on both', async () => {
    const da = await pair.open('A');
    const db = await pair.open('B');
    for (let round = 0; round < 100; round++) {
      const lba = BigInt(5000 + (round % 4));
      const rs = await Promise.all([settled(() => da.write(lba, block(`A${round}`))), settled(() => db.write(lba, block(`B${round}`)))]);
      expect(rs.map(senseOf)).toEqual(['good', 'good']);
      const [x, y] = await Promise.all([settled(() => da.read(lba, 1)), settled(() => db.read(lba, 1))]);
      if (x.kind !== 'good' || y.kind !== 'good') throw new Error('read failed');
      expect(x.value.equals(y.value)).toBe(true);
    }
  });

  it('COMPARE AND WRITE races through both arrays have exactly one winner, 1,000 rounds', async () => {
    const da = await pair.open('A', 'iqn.1994-05.com.example:esx-a');
    const db = await pair.open('B', 'iqn.1994-05.com.example:esx-b');
    const LOCK = 777n;
    let cur = block('free');
    expect(senseOf(await settled(() => da.write(LOCK, cur)))).toBe('good');
    const wins = { A: 0, B: 0 };
    for (let round = 0; round < 1000; round++) {
      const mine = { A: block(`A owns ${round}`), B: block(`B owns ${round}`) };
      const [ra, rb] = await Promise.all([settled(() => da.compareAndWrite(LOCK, cur, mine.A)), settled(() => db.compareAndWrite(LOCK, cur, mine.B))]);
      const outcomes = [senseOf(ra), senseOf(rb)].sort();
      expect(outcomes, `round ${round}`).toEqual(['0e/1d/00', 'good']);
      const winner = ra.kind === 'good' ? 'A' : 'B';
      wins[winner]++;
      cur = mine[winner];
      const [x, y] = await Promise.all([settled(() => da.read(LOCK, 1)), settled(() => db.read(LOCK, 1))]);
      expect(x.kind === 'good' && x.value.equals(cur) && y.kind === 'good' && y.value.equals(cur), `round ${round}: both arrays hold the winner's block`).toBe(true);
    }
    // Both sides win sometimes: the race is real.
    expect(wins.A + wins.B).toBe(1000);
  }, 120_000);
});

describe('link cut without a witness', () => {
  it("the secondary's paths answer 04/0C and the primary keeps serving; auto_recover resyncs only what was written", async () => {
    const da = await pair.open('A');
    const db = await pair.open('B');
    expect(senseOf(await settled(() => db.write(0n, block('before'))))).toBe('good');
    pair.a.rcopy!.setLink({ action: 'cut' });
    await until(() => pair.gb.machine.status === 'Stopped' && pair.ga.machine.status === 'Stopped', 'both Stopped');
    expect(senseOf(await settled(() => db.read(0n, 1)))).toBe('02/04/0c');
    expect(senseOf(await settled(() => db.write(0n, block('at B during the cut'))))).toBe('02/04/0c');
    // The primary serves reads and writes; what it writes is remembered for the resync.
    const outage = [10n, 20n, 30n];
    for (const lba of outage) expect(senseOf(await settled(() => da.write(lba, block(`outage ${lba}`, 4))))).toBe('good');
    expect(pair.ga.machine.snapshot().dirtyBlocks).toBe('12');
    const sentBefore = pair.ga.stats.resyncBytes;
    pair.a.rcopy!.setLink({ action: 'restore' });
    await pair.synced();
    // The resync sent exactly the blocks written during the outage.
    expect(pair.ga.stats.resyncBytes - sentBefore).toBe(12 * 512);
    for (const lba of outage) {
      const r = await settled(() => db.read(lba, 4));
      expect(r.kind === 'good' && r.value.equals(block(`outage ${lba}`, 4))).toBe(true);
    }
  });
});
