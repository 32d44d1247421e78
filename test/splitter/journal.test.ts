/** The memory journal: sequence, size limit, protection window, and arena reuse never touching a live record. */
import { describe, expect, it } from 'vitest';
import { MemoryJournal, RECORD_OVERHEAD_BYTES } from '../../src/splitter/journal.ts';

const block = (seed: number, n = 512) => { const b = Buffer.alloc(n); b.writeUInt32BE(seed, 0); b.fill(seed & 0xff, 4); return b; };

describe('MemoryJournal', () => {
  it('numbers records from 1, trims only applied records, reports the window', () => {
    const j = new MemoryJournal(10 * (512 + RECORD_OVERHEAD_BYTES));
    for (let i = 1; i <= 20; i++) j.append({ time: 1000 + i, set: 0, kind: 'data', lba: BigInt(i), blocks: 1, data: j.copyIn(block(i)), unmap: false });
    expect(j.length).toBe(20);
    j.trim(5); // only 1..5 are applied: those may go, no more
    expect(j.firstSeq).toBe(6);
    expect(j.evicted).toBe(5);
    j.trim(20);
    expect(j.length).toBe(10);
    expect(j.bytes).toBeLessThanOrEqual(j.limitBytes);
    expect(j.window(2000)).toEqual({ oldestSeq: 11, newestSeq: 20, oldestTime: new Date(1011).toISOString(), spanMs: 989 });
    expect([...j.after(17)].map((r) => r.seq)).toEqual([18, 19, 20]);
    expect(j.at(11)!.lba).toBe(11n);
    expect(j.at(10)).toBeUndefined();
  });

  it('arenas are reused once their records are applied, and no record not yet applied is overwritten', () => {
    const j = new MemoryJournal(1 << 20);
    const seedOf = new Map<number, number>();
    const lag = 100; // records appended but not yet applied by every copy
    // 40,000 x 4 KiB = 160 MiB through a 1 MiB journal: about twenty 8 MiB arenas' worth.
    for (let i = 1; i <= 40_000; i++) {
      const r = j.append({ time: i, set: 0, kind: 'data', lba: 0n, blocks: 8, data: j.copyIn(block(i, 4096)), unmap: false });
      seedOf.set(r.seq, i);
      j.trim(r.seq - lag);
      if (i % 997 === 0) {
        for (const x of j.after(r.seq - lag)) expect(x.data!.equals(block(seedOf.get(x.seq)!, 4096)), `record ${x.seq}`).toBe(true);
        // Applied records are history: their payloads went, their charge stays (the copies' undo data).
        for (const x of j.after(0)) if (x.seq <= r.seq - lag) expect(x.data, `record ${x.seq}`).toBeNull();
        expect(j.bytes).toBeLessThanOrEqual(j.limitBytes);
        expect(j.bytes).toBeGreaterThan(j.limitBytes - 4096 - 2 * RECORD_OVERHEAD_BYTES);
      }
    }
    // 100 live records (400 KiB) need at most two arenas; reuse keeps the count there.
    expect(j.arenas.allocated).toBeLessThanOrEqual(3);
  });

  it('negative control: without trim every record keeps its payload and arenas keep coming', () => {
    const j = new MemoryJournal(1 << 30);
    for (let i = 1; i <= 6000; i++) j.append({ time: i, set: 0, kind: 'data', lba: 0n, blocks: 8, data: j.copyIn(block(i, 4096)), unmap: false });
    expect(j.arenas.allocated).toBeGreaterThanOrEqual(3);
    expect([...j.after(0)].every((x) => x.data !== null)).toBe(true);
  });

  it('restoreData gives an applied record its payload back until every copy has applied it again', () => {
    const j = new MemoryJournal(1 << 20);
    for (let i = 1; i <= 10; i++) j.append({ time: i, set: 0, kind: 'data', lba: BigInt(i), blocks: 8, data: j.copyIn(block(i, 4096)), unmap: false });
    const same = j.append({ time: 11, set: 0, kind: 'same', lba: 0n, blocks: 100, data: j.copyIn(block(99)), unmap: false });
    j.trim(11);
    expect(j.at(4)!.data).toBeNull();
    expect(same.data!.equals(block(99))).toBe(true); // a WRITE SAME keeps its one block
    // A rollback to seq 3 reads 4..10 back from the replica.
    for (let s = 10; s >= 4; s--) j.restoreData(j.at(s)!, block(s, 4096));
    j.trim(3);
    for (let s = 4; s <= 10; s++) expect(j.at(s)!.data!.equals(block(s, 4096))).toBe(true);
    j.trim(7);
    expect(j.at(7)!.data).toBeNull();
    expect(j.at(8)!.data!.equals(block(8, 4096))).toBe(true);
  });
});
