/**
 * The latency recorder: values land in the bucket whose bound is the first >= the value (the
 * Prometheus `le` rule), the exposition is cumulative, and recording allocates nothing: a million
 * records cause no garbage collection, where prom-client's own labelled observe() (the negative
 * control) does.
 */
import { PerformanceObserver } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { ClassIndex } from '../../src/metrics/command-class.ts';
import { CommandLatency, LATENCY_BUCKETS_SECONDS, TurnLatencies, nowUs } from '../../src/metrics/latency.ts';
import { latencyFamily } from '../../src/metrics/latency-family.ts';

describe('CommandLatency', () => {
  it('puts a value in the first bucket whose bound is >= it, and +Inf past the last', () => {
    const l = new CommandLatency([0.00001, 0.0001, 0.001]); // 10 µs, 100 µs, 1 ms
    l.observeUs(ClassIndex.Read, 0);
    l.observeUs(ClassIndex.Read, 10);   // on the bound: that bucket
    l.observeUs(ClassIndex.Read, 11);
    l.observeUs(ClassIndex.Read, 1000);
    l.observeUs(ClassIndex.Read, 1001); // past the last bound
    l.observeUs(ClassIndex.Write, 50);
    expect(l.cumulative(ClassIndex.Read)).toEqual([2, 3, 4, 5]);
    expect(l.cumulative(ClassIndex.Write)).toEqual([0, 1, 1, 1]);
    expect(l.cumulative(ClassIndex.Vaai)).toEqual([0, 0, 0, 0]);
    expect(l.sumsUs[ClassIndex.Read]).toBe(0 + 10 + 11 + 1000 + 1001);
  });

  it('record() measures from a nowUs() stamp, across the 32-bit wrap too', async () => {
    const l = new CommandLatency();
    const start = nowUs();
    await sleep(20);
    l.record(ClassIndex.Other, start);
    const sumMs = l.sumsUs[ClassIndex.Other] / 1000;
    expect(sumMs).toBeGreaterThanOrEqual(19);
    expect(sumMs).toBeLessThan(2000);
    // A start stamp just below 2^31 and an end just past it (wrapped to negative) is a small span.
    const w = new CommandLatency([0.001]);
    w.observeUs(ClassIndex.Read, ((-2147483648 + 5) - 2147483640) | 0);
    expect(w.sumsUs[ClassIndex.Read]).toBe(13);
  });

  it('TurnLatencies records every completion of a turn against one clock read, and starts empty again', async () => {
    const l = new CommandLatency([0.001, 10]); // 1 ms, 10 s
    const turn = new TurnLatencies(l);
    const t0 = nowUs();
    for (let i = 0; i < 200; i++) turn.add(ClassIndex.Write, t0); // past the initial 64 slots
    turn.add(ClassIndex.Read, (t0 - 20_000_000) | 0); // read 20 s earlier
    await sleep(5);
    turn.recordAll();
    expect(l.cumulative(ClassIndex.Write)).toEqual([0, 200, 200]); // all 200 waited >= 5 ms
    expect(l.cumulative(ClassIndex.Read)).toEqual([0, 0, 1]); // past the last bound
    turn.recordAll(); // nothing added since: nothing recorded twice
    expect(l.cumulative(ClassIndex.Write).at(-1)).toBe(200);
  });

  it('is exposed by prom-client as a histogram with cumulative buckets, _sum in seconds and _count', async () => {
    const reg = new Registry();
    const l = new CommandLatency();
    latencyFamily(reg, l);
    l.observeUs(ClassIndex.Vaai, 300);
    l.observeUs(ClassIndex.Vaai, 3000);
    const text = await reg.metrics();
    expect(text).toContain('# TYPE arraysim_command_duration_seconds histogram');
    expect(text).toContain('arraysim_command_duration_seconds_bucket{class="vaai",le="0.00025"} 0');
    expect(text).toContain('arraysim_command_duration_seconds_bucket{class="vaai",le="0.0005"} 1');
    expect(text).toContain('arraysim_command_duration_seconds_bucket{class="vaai",le="0.005"} 2');
    expect(text).toContain('arraysim_command_duration_seconds_bucket{class="vaai",le="+Inf"} 2');
    expect(text).toContain('arraysim_command_duration_seconds_sum{class="vaai"} 0.0033');
    expect(text).toContain('arraysim_command_duration_seconds_count{class="vaai"} 2');
    expect(text).toContain('arraysim_command_duration_seconds_count{class="read"} 0');
    const buckets = text.split('\n').filter((s) => s.startsWith('arraysim_command_duration_seconds_bucket{class="read"'));
    expect(buckets).toHaveLength(LATENCY_BUCKETS_SECONDS.length + 1);
  });
});

/** Garbage collections (any kind) that happen while `f` runs. */
async function gcsDuring(f: () => void): Promise<number> {
  let n = 0;
  const obs = new PerformanceObserver((list) => { n += list.getEntries().length; });
  obs.observe({ entryTypes: ['gc'] });
  await sleep(20);
  const before = n;
  f();
  await sleep(50); // observer entries are delivered asynchronously
  obs.disconnect();
  return n - before;
}

describe('recording allocates nothing', () => {
  const N = 1_000_000;
  it(`${N.toLocaleString('en-US')} record() calls run without a garbage collection`, async () => {
    const l = new CommandLatency();
    const start = nowUs();
    for (let i = 0; i < 200_000; i++) l.record((i & 3) as ClassIndex, start); // warm up (optimise) first
    const gcs = await gcsDuring(() => { for (let i = 0; i < N; i++) l.record((i & 3) as ClassIndex, start); });
    expect(l.cumulative(ClassIndex.Read).at(-1)).toBe(200_000 / 4 + N / 4);
    expect(gcs).toBe(0);
  });

  it(`${N.toLocaleString('en-US')} completions through TurnLatencies, 32 per turn, run without a garbage collection`, async () => {
    const l = new CommandLatency();
    const turn = new TurnLatencies(l);
    const run = (n: number) => {
      for (let i = 0; i < n; i++) {
        turn.add((i & 3) as ClassIndex, nowUs());
        if ((i & 31) === 31) turn.recordAll();
      }
    };
    run(200_000);
    const gcs = await gcsDuring(() => run(N));
    expect(l.cumulative(ClassIndex.Other).at(-1)).toBe(200_000 / 4 + N / 4);
    expect(gcs).toBe(0);
  });

  it('negative control: prom-client labels(cls).observe() does collect garbage over the same calls', async () => {
    const h = new Histogram({ name: 'control_seconds', help: 'control', labelNames: ['class'], registers: [] });
    const children = ['read', 'write', 'vaai', 'other'].map((c) => h.labels(c));
    for (let i = 0; i < 200_000; i++) children[i & 3].observe(0.0001);
    const gcs = await gcsDuring(() => { for (let i = 0; i < N; i++) children[i & 3].observe(0.0001); });
    expect(gcs).toBeGreaterThan(0);
  });
});
