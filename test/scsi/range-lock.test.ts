/** The per-LU LBA range lock (range-lock.ts): synchronous fast path, overlap, modes, FIFO. */
import { describe, expect, it } from 'vitest';
import { RangeLock, holdBreak } from '../../src/scsi/range-lock.ts';

const tick = () => new Promise<void>((r) => setImmediate(r));

describe('RangeLock', () => {
  it('runs a synchronous body synchronously when the range is free, holding nothing after', () => {
    const l = new RangeLock();
    expect(l.run(0n, 8, 'exclusive', () => 42)).toBe(42);
    expect(l.size).toBe(0);
  });

  it('an asynchronous body holds its range until it settles, even when it rejects', async () => {
    const l = new RangeLock();
    let finish!: () => void;
    const p = l.run(0n, 8, 'exclusive', () => new Promise<void>((r) => { finish = r; }));
    expect(l.size).toBe(1);
    const order: string[] = [];
    const q = l.run(4n, 1, 'exclusive', () => { order.push('overlap'); });
    expect(q).toBeInstanceOf(Promise);
    expect(l.run(8n, 8, 'exclusive', () => 'disjoint')).toBe('disjoint'); // adjacent, not overlapping
    await tick();
    expect(order).toEqual([]);
    finish();
    await p; await q;
    expect(order).toEqual(['overlap']);
    await expect(l.run(0n, 1, 'exclusive', async () => { throw new Error('boom'); })).rejects.toThrow('boom');
    expect(l.size).toBe(0);
  });

  it('runThen answers its value: at once for a synchronous body, after release for an asynchronous one, and rejects as the body does', async () => {
    const l = new RangeLock();
    const resp = { status: 0 };
    expect(l.runThen(0n, 8, 'exclusive', () => 1, resp)).toBe(resp);
    expect(l.size).toBe(0);
    let finish!: () => void;
    const p = l.runThen(0n, 8, 'exclusive', () => new Promise<void>((r) => { finish = r; }), resp);
    expect(p).toBeInstanceOf(Promise);
    expect(l.size).toBe(1);
    const order: string[] = [];
    const q = l.runThen(2n, 1, 'exclusive', () => { order.push('overlap'); }, 'queued');
    await tick();
    expect(order).toEqual([]);
    finish();
    expect(await p).toBe(resp);
    expect(await q).toBe('queued');
    expect(order).toEqual(['overlap']);
    await expect(l.runThen(0n, 1, 'exclusive', async () => { throw new Error('boom'); }, resp)).rejects.toThrow('boom');
    expect(l.size).toBe(0);
  });

  it('shared holders overlap each other but not an exclusive one', async () => {
    const l = new RangeLock();
    const r1 = await l.acquire(0n, 10, 'shared');
    const r2 = await l.acquire(5n, 10, 'shared');
    expect(l.run(3n, 1, 'shared', () => 'read')).toBe('read');
    let wrote = false;
    const w = l.run(9n, 1, 'exclusive', () => { wrote = true; });
    await tick();
    expect(wrote).toBe(false);
    r1(); await tick();
    expect(wrote).toBe(false);
    r2(); await w;
    expect(wrote).toBe(true);
  });

  it('grants overlapping requests in arrival order: a queued writer blocks later readers', async () => {
    const l = new RangeLock();
    const order: string[] = [];
    const r = await l.acquire(0n, 4, 'shared');
    const w = l.run(0n, 4, 'exclusive', () => { order.push('write'); });
    const later = l.run(2n, 1, 'shared', () => { order.push('read'); });
    expect(later).toBeInstanceOf(Promise); // not the synchronous fast path: a writer is queued
    r();
    await Promise.all([w, later]);
    expect(order).toEqual(['write', 'read']);
  });

  it('hold() keeps a range shared past its body, ahead of writers queued meanwhile, until released', async () => {
    const l = new RangeLock();
    let release!: () => void;
    expect(l.run(0n, 8, 'shared', () => { release = l.hold(0n, 8); return 'read'; })).toBe('read');
    expect(l.size).toBe(1);
    const order: string[] = [];
    const w = l.run(4n, 2, 'exclusive', () => { order.push('write'); });
    expect(w).toBeInstanceOf(Promise);
    expect(l.run(5n, 1, 'shared', () => 'reader')).toBeInstanceOf(Promise); // FIFO behind the overlapping writer
    expect(l.run(2n, 1, 'shared', () => 'beside')).toBe('beside'); // overlaps only the hold
    expect(l.run(8n, 4, 'exclusive', () => 'disjoint')).toBe('disjoint');
    await tick();
    expect(order).toEqual([]);
    release();
    release(); // a second call changes nothing
    await w;
    expect(order).toEqual(['write']);
    await tick();
    expect(l.size).toBe(0);
  });

  it('hold() from inside a body that waited for its grant still blocks the writer queued behind it', async () => {
    const l = new RangeLock();
    const first = await l.acquire(0n, 4, 'exclusive');
    let release!: () => void;
    const read = l.run(0n, 4, 'shared', () => { release = l.hold(0n, 4); return 'read'; });
    let wrote = false;
    const w = l.run(0n, 4, 'exclusive', () => { wrote = true; });
    first();
    expect(await read).toBe('read');
    await tick();
    expect(wrote).toBe(false);
    release();
    await w;
    expect(wrote).toBe(true);
  });

  it('a writer kept waiting holdBreak.ms behind a breakable hold breaks it; the release then frees what detach kept', async () => {
    const saved = holdBreak.ms;
    holdBreak.ms = 30;
    try {
      const l = new RangeLock();
      const calls: string[] = [];
      let release!: () => void;
      l.run(0n, 8, 'shared', () => { release = l.hold(0n, 8, () => { calls.push('detach'); return () => calls.push('free'); }); });
      let wrote = false;
      const w = l.run(4n, 1, 'exclusive', () => { wrote = true; });
      await tick();
      expect(wrote).toBe(false); // still behind the hold
      await w; // granted once the hold was broken
      expect(wrote).toBe(true);
      expect(calls).toEqual(['detach']);
      release();
      release();
      expect(calls).toEqual(['detach', 'free']);
      expect(l.size).toBe(0);
      // A hold that cannot be detached (null) keeps the writer waiting until it is released.
      let keep!: () => void;
      l.run(0n, 8, 'shared', () => { keep = l.hold(0n, 8, () => null); });
      let second = false;
      const w2 = l.run(0n, 1, 'exclusive', () => { second = true; });
      await new Promise((r) => setTimeout(r, 80));
      expect(second).toBe(false);
      keep();
      await w2;
      expect(second).toBe(true);
    } finally {
      holdBreak.ms = saved;
    }
  });

  it('a release wakes every waiter it no longer blocks, not only the first', async () => {
    const l = new RangeLock();
    const big = await l.acquire(0n, 100);
    const woke: number[] = [];
    const ps = [10, 20, 30].map((lba) => l.run(BigInt(lba), 1, 'exclusive', () => { woke.push(lba); }));
    big();
    await Promise.all(ps);
    expect(woke.sort((a, b) => a - b)).toEqual([10, 20, 30]);
  });
});
