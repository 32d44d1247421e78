/**
 * Link faults (src/replication/link-faults.ts): loss as TCP retransmission stalls, one-way
 * partitions detected by the heartbeat timeout. The model is checked without sockets (seeded draws,
 * order kept, held frames released on heal); then over TCP between two arrays: whatever the fault,
 * every write is acknowledged and on both arrays, or refused with ABORTED COMMAND / 04/0C, nothing
 * hangs, and the pair comes back Synced. Seeds: RCOPY_SEED replays the loss run. The checker's
 * negative control acknowledges before the peer has the write and must find the write missing.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { LinkFaultInjector, retransmissionDelay, seededRandom, TCP_RTO_MIN_MS } from '../../src/replication/link-faults.ts';
import type { FrameSink } from '../../src/replication/link-faults.ts';
import { oneWayOption } from '../../src/replication/cli.ts';
import { startPair, block, senseOf, settled, until } from './pair.ts';
import type { Pair } from './pair.ts';
import type { ScsiResult } from '../../src/initiator/index.ts';

describe('the loss model (no sockets)', () => {
  it('a lost frame waits 200 ms, then 400 ms more per further loss; 0% never delays, 100% never arrives', () => {
    const script = (xs: number[]) => { let i = 0; return () => xs[i++]; };
    // A draw below lossPercent/100 is a loss: two losses, then an arrival.
    expect(retransmissionDelay(50, script([0.1, 0.2, 0.9]))).toEqual({ delayMs: TCP_RTO_MIN_MS + 2 * TCP_RTO_MIN_MS, retransmissions: 2 });
    expect(retransmissionDelay(50, script([0.9]))).toEqual({ delayMs: 0, retransmissions: 0 });
    expect(retransmissionDelay(0, () => 0)).toEqual({ delayMs: 0, retransmissions: 0 });
    expect(retransmissionDelay(100, () => 0.999).delayMs).toBe(Infinity);
  });

  it('the same seed gives the same losses; the loss rate is what was asked', () => {
    const run = (seed: number) => { const r = seededRandom(seed); return Array.from({ length: 20_000 }, () => retransmissionDelay(30, r).retransmissions); };
    const a = run(7), b = run(7), c = run(8);
    expect(a).toEqual(b);
    expect(a).not.toEqual(c);
    const lostOnce = a.filter((n) => n > 0).length / a.length;
    expect(lostOnce).toBeGreaterThan(0.28);
    expect(lostOnce).toBeLessThan(0.32);
  });

  class Sink implements FrameSink {
    destroyed = false;
    got: string[] = [];
    cork(): void {}
    uncork(): void {}
    write(b: Buffer): boolean { this.got.push(b.toString()); return true; }
  }

  it('latency and loss keep the frame order; without faults a frame is written at once', async () => {
    const inj = new LinkFaultInjector(1);
    const sink = new Sink();
    const sh = inj.shaper(sink);
    sh.send([Buffer.from('a')]);
    expect(sink.got).toEqual(['a']);
    inj.set({ latencyMs: 5, lossPercent: 40, seed: 99 });
    for (let i = 0; i < 20; i++) sh.send([Buffer.from(`f${i}`)]);
    expect(inj.counters.retransmissions).toBeGreaterThan(0);
    await until(() => sink.got.length === 21, 'all frames', 30_000);
    expect(sink.got).toEqual(['a', ...Array.from({ length: 20 }, (_, i) => `f${i}`)]);
    expect(inj.counters.framesQueued).toBe(0);
  });

  it('frames sent in one tick leave in one corked write (one send for many acks), a lone frame within the tick', async () => {
    const inj = new LinkFaultInjector(1);
    let corked = 0;
    const flushed: string[][] = [];
    let pending: string[] = [];
    const sink: FrameSink = {
      destroyed: false,
      cork: () => { corked++; },
      uncork: () => { if (--corked === 0) { flushed.push(pending); pending = []; } },
      write: (b) => { if (corked) pending.push(b.toString()); else flushed.push([b.toString()]); return true; },
    };
    const sh = inj.shaper(sink);
    for (let i = 0; i < 10; i++) sh.send([Buffer.from(`h${i}`), Buffer.from(`d${i}`)]);
    expect(flushed).toEqual([]);
    await new Promise<void>((r) => process.nextTick(r));
    expect(flushed).toEqual([Array.from({ length: 10 }, (_, i) => [`h${i}`, `d${i}`]).flat()]);
    sh.send([Buffer.from('alone')]);
    await new Promise<void>((r) => process.nextTick(r));
    expect(flushed[1]).toEqual(['alone']);
  });

  it('a one-way out partition holds frames and releases them in order when it heals; close drops them', async () => {
    const inj = new LinkFaultInjector(1);
    const sink = new Sink();
    const sh = inj.shaper(sink);
    inj.set({ oneWay: 'out' });
    sh.send([Buffer.from('x')]);
    sh.send([Buffer.from('y'), Buffer.from('z')]);
    await new Promise((r) => setTimeout(r, 20));
    expect(sink.got).toEqual([]);
    expect(inj.status()).toMatchObject({ oneWay: 'out', framesQueued: 2 });
    inj.set({ oneWay: null });
    expect(sink.got).toEqual(['x', 'y', 'z']);
    inj.set({ oneWay: 'out' });
    sh.send([Buffer.from('lost')]);
    sh.close();
    inj.set({ action: 'restore' });
    expect(sink.got).toEqual(['x', 'y', 'z']);
    expect(inj.counters.framesQueued).toBe(0);
  });

  it('refuses out-of-range settings naming the field; restore clears every fault', () => {
    const inj = new LinkFaultInjector(1);
    expect(() => inj.set({ lossPercent: 101 })).toThrow(/lossPercent/);
    expect(() => inj.set({ latencyMs: -1 })).toThrow(/latencyMs/);
    expect(() => inj.set({ oneWay: 'both' as never })).toThrow(/oneWay/);
    expect(() => inj.set({ seed: 1.5 })).toThrow(/seed/);
    inj.set({ action: 'cut', latencyMs: 3, lossPercent: 5, oneWay: 'in' });
    expect(inj.faults).toMatchObject({ cut: true, latencyMs: 3, lossPercent: 5, oneWay: 'in' });
    inj.set({ action: 'restore' });
    expect(inj.faults).toMatchObject({ cut: false, latencyMs: 0, lossPercent: 0, oneWay: null });
    expect(oneWayOption('off')).toBeNull();
    expect(oneWayOption('in')).toBe('in');
    expect(() => oneWayOption('up')).toThrow(/out, in or off/);
  });
});

// ------------------------------------------------------------ over TCP

let pair: Pair | null = null;
afterEach(async () => { await pair?.close(); pair = null; });

async function onStore(p: Pair, site: 'A' | 'B', lba: bigint, want: Buffer): Promise<boolean> {
  const g = site === 'A' ? p.ga : p.gb;
  return Buffer.from(await g.stores[0].inner.read(lba, want.length / 512)).equals(want);
}

interface Written { lba: bigint; data: Buffer; result: ScsiResult<unknown> }

/**
 * The checker: each write is GOOD or refused with ABORTED COMMAND (not acknowledged: the link went
 * away first) or 04/0C (this array no longer serves the group); after the faults are lifted and the
 * pair is Synced, every acknowledged write is on both arrays.
 */
async function check(p: Pair, writes: Written[]): Promise<string[]> {
  const violations: string[] = [];
  for (const w of writes) {
    const s = senseOf(w.result);
    if (s !== 'good' && s !== '0b/00/00' && s !== '02/04/0c' && !(w.result.kind === 'check-condition' && w.result.sense?.key === 6)) violations.push(`LBA ${w.lba}: refused with ${s}`);
  }
  p.a.rcopy!.setLink({ action: 'restore' });
  p.b.rcopy!.setLink({ action: 'restore' });
  await until(() => p.ga.machine.status === 'Synced' && p.gb.machine.status === 'Synced', 'both Synced', 30_000);
  for (const w of writes) {
    if (w.result.kind !== 'good') continue;
    for (const site of ['A', 'B'] as const) if (!(await onStore(p, site, w.lba, w.data))) violations.push(`LBA ${w.lba}: acknowledged but not on ${site}`);
  }
  return violations;
}

describe('loss on the link between two arrays', () => {
  it('stalls writes by retransmissions; every write is acknowledged and on both, or refused; the pair ends Synced', async () => {
    pair = await startPair();
    const seed = Number(process.env.RCOPY_SEED ?? Date.now() % 100000);
    const da = await pair.open('A');
    const db = await pair.open('B');
    pair.a.rcopy!.setLink({ lossPercent: 15, seed });
    pair.b.rcopy!.setLink({ lossPercent: 15, seed: seed + 1 });
    const writes: Written[] = [];
    const t0 = Date.now();
    // Two hosts, four writes in flight each, through both arrays (B forwards to A: both directions carry data).
    await Promise.all([da, db].flatMap((d, side) => Array.from({ length: 4 }, async (_, lane) => {
      for (let i = 0; i < 6; i++) {
        const lba = BigInt(side * 1000 + lane * 100 + i * 8);
        const data = block(`seed ${seed} side ${side} lane ${lane} write ${i}`, 8);
        writes.push({ lba, data, result: await d.write(lba, data) });
      }
    })));
    const elapsed = Date.now() - t0;
    const lost = pair.a.rcopy!.status().link.retransmissions + pair.b.rcopy!.status().link.retransmissions;
    const violations = await check(pair, writes);
    expect(violations, `seed ${seed} (RCOPY_SEED=${seed} replays the loss draws)`).toEqual([]);
    // The fault acted: frames were lost and resent, and that cost at least one RTO of wall time.
    expect(lost, `seed ${seed}`).toBeGreaterThan(0);
    expect(elapsed).toBeGreaterThanOrEqual(TCP_RTO_MIN_MS);
    expect(writes.some((w) => w.result.kind === 'good'), `seed ${seed}`).toBe(true);
  }, 90_000);
});

describe('one-way partition', () => {
  for (const dir of ['out', 'in'] as const) {
    it(`${dir} at the primary: the side that hears nothing times the link out; the write in flight is not acknowledged, nothing hangs; healing resyncs`, async () => {
      pair = await startPair();
      const da = await pair.open('A');
      const db = await pair.open('B');
      const downs = pair.ga.stats.linkDowns;
      pair.a.rcopy!.setLink({ oneWay: dir });
      const data = block(`during one-way ${dir}`, 8);
      const t0 = Date.now();
      const r = await da.write(64n, data);
      // Not acknowledged: B never had it (out), or A never heard B's ack (in). The heartbeat timeout (3 s) ended it.
      expect(senseOf(r)).toBe('0b/00/00');
      expect(Date.now() - t0).toBeLessThan(20_000);
      await until(() => pair!.ga.machine.status === 'Stopped' && pair!.gb.machine.status === 'Stopped', 'both Stopped', 20_000);
      expect(pair.ga.stats.linkDowns).toBeGreaterThan(downs);
      // The group behaves as on a cut: B's paths are unavailable, A serves and remembers what it wrote.
      expect(senseOf(await settled(() => db.read(64n, 1)))).toBe('02/04/0c');
      const after = block('A alone', 8);
      const w = await settled(() => da.write(128n, after));
      expect(senseOf(w)).toBe('good');
      expect(pair.ga.machine.dirtyExtents().length).toBeGreaterThan(0);
      const violations = await check(pair, [{ lba: 64n, data, result: r }, { lba: 128n, data: after, result: w }]);
      expect(violations).toEqual([]);
      // Applied at A before the partition was seen, so the resync carried it to B too (both equal).
      expect(await onStore(pair, 'B', 64n, data)).toBe(await onStore(pair, 'A', 64n, data));
    }, 60_000);
  }

  it('a partition that heals before the heartbeat timeout is a stall: the held frames arrive, the write is GOOD', async () => {
    pair = await startPair();
    const da = await pair.open('A');
    const downs = pair.ga.stats.linkDowns;
    pair.a.rcopy!.setLink({ oneWay: 'out' });
    const data = block('across a short partition', 8);
    const t0 = Date.now();
    const pending = da.write(256n, data);
    await new Promise((r) => setTimeout(r, 300));
    pair.a.rcopy!.setLink({ oneWay: null });
    const healedAfter = Date.now() - t0;
    const r = await pending;
    // Under heavy load the heal may come later than the 3 s timeout: then the cut rules apply.
    if (healedAfter < 1500) {
      expect(senseOf(r)).toBe('good');
      expect(pair.ga.stats.linkDowns).toBe(downs);
      expect(await onStore(pair, 'B', 256n, data)).toBe(true);
    } else expect(['good', '0b/00/00']).toContain(senseOf(r));
  }, 30_000);

  it('negative control: acknowledging before the peer has the write, a one-way partition loses an acknowledged write and the checker says so', async () => {
    pair = await startPair({ unsafeAckBeforePeer: true });
    const da = await pair.open('A');
    pair.a.rcopy!.setLink({ oneWay: 'out' });
    const data = block('acked too early', 8);
    const r = await da.write(512n, data);
    expect(senseOf(r)).toBe('good');
    await until(() => pair!.ga.machine.status === 'Stopped', 'A Stopped', 20_000);
    const violations = await check(pair, [{ lba: 512n, data, result: r }]);
    expect(violations).toEqual(['LBA 512: acknowledged but not on B']);
  }, 60_000);
});
