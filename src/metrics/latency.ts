/**
 * Command latency by class, recorded on the I/O path without allocating: the start time is a
 * 32-bit microsecond stamp (a small integer in the task), the class an index, and each class's
 * histogram a fixed row of bucket counters in one Float64Array. Nothing here builds a label,
 * looks up a map or creates an object per command; /metrics turns the arrays into a Prometheus
 * histogram when it is scraped (latency-family.ts). No prom-client here: the recorder exists
 * from the start, prom-client is loaded once the portals listen (src/array.ts).
 *
 * The clock is read per socket read and per event-loop turn, not per command: a command starts
 * when the read that brought its PDU returned (one read carries several commands at depth), and
 * one that completes within a turn ends when the turn's responses leave in one writev
 * (TurnLatencies); only a command completing outside a turn (an asynchronous store) reads the
 * clock for itself.
 *
 * Why not prom-client's Histogram#labels(cls).observe(): its observe builds a label object and a
 * hash string and looks the series up by that string on every call.
 */
import { COMMAND_CLASSES } from './command-class.ts';
import type { ClassIndex } from './command-class.ts';

/**
 * Upper bounds in seconds. An in-memory LU answers a lone 4 KiB READ in tens of microseconds and
 * a QD32 one in a few hundred (the queue); file LUs, FUA writes, XCOPY and SANITIZE take
 * milliseconds to seconds.
 */
export const LATENCY_BUCKETS_SECONDS: readonly number[] = [
  0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];

/**
 * A 32-bit microsecond clock; differences are right modulo 2^32 for spans under 35 minutes.
 * process.hrtime(), not performance.now(): once optimised, V8 keeps hrtime's [s, ns] pair off the
 * heap (escape analysis), where performance.now() left a heap number per call (measured on Node
 * 20: ~16 scavenges per million calls, against none).
 */
export function nowUs(): number {
  const t = process.hrtime();
  return (t[0] * 1e6 + ((t[1] / 1000) | 0)) | 0;
}

export class CommandLatency {
  /** Upper bounds in whole microseconds, as the I/O path compares them. */
  private readonly boundsUs: Int32Array;
  /** Row per class: one counter per bucket (not cumulative), then the +Inf bucket. */
  readonly counts: Float64Array;
  /** Per class: the sum of observed latencies, microseconds. */
  readonly sumsUs: Float64Array;
  readonly stride: number;

  constructor(readonly boundsSeconds: readonly number[] = LATENCY_BUCKETS_SECONDS) {
    this.boundsUs = Int32Array.from(boundsSeconds, (s) => Math.round(s * 1e6));
    this.stride = boundsSeconds.length + 1;
    this.counts = new Float64Array(COMMAND_CLASSES.length * this.stride);
    this.sumsUs = new Float64Array(COMMAND_CLASSES.length);
  }

  /** A command of class `cls` that started at `startUs` (nowUs()) has completed now. */
  record(cls: ClassIndex, startUs: number): void {
    this.observeUs(cls, (nowUs() - startUs) | 0);
  }

  /** One latency of `us` microseconds (a bucket counts values <= its bound, as `le` says). */
  observeUs(cls: ClassIndex, us: number): void {
    if (us < 0) us = 0;
    const b = this.boundsUs;
    let i = 0;
    while (i < b.length && us > b[i]) i++;
    this.counts[cls * this.stride + i]++;
    this.sumsUs[cls] += us;
  }

  /** Cumulative bucket counts of one class (the last is +Inf, the count), for exposition and tests. */
  cumulative(cls: ClassIndex): number[] {
    const out: number[] = [];
    let acc = 0;
    for (let i = 0; i < this.stride; i++) out.push((acc += this.counts[cls * this.stride + i]));
    return out;
  }
}

/**
 * Completions that wait for the end of their event-loop turn. A connection holds its responses
 * corked until then and they leave in one writev (connection.ts withCork/flush), so that is when
 * they are answered; recordAll() then reads the clock once for all of them. The arrays grow by
 * doubling when a turn completes more commands than ever before, never per command.
 */
export class TurnLatencies {
  private cls = new Uint8Array(64);
  private start = new Int32Array(64);
  private n = 0;

  constructor(readonly latency: CommandLatency) {}

  add(cls: ClassIndex, startUs: number): void {
    if (this.n === this.cls.length) this.grow();
    this.cls[this.n] = cls;
    this.start[this.n] = startUs;
    this.n++;
  }

  /** Record every completion added since the last call, all as of now. */
  recordAll(): void {
    const n = this.n;
    if (n === 0) return;
    const now = nowUs();
    for (let i = 0; i < n; i++) this.latency.observeUs(this.cls[i] as ClassIndex, (now - this.start[i]) | 0);
    this.n = 0;
  }

  private grow(): void {
    const cls = new Uint8Array(this.cls.length * 2);
    cls.set(this.cls);
    const start = new Int32Array(this.start.length * 2);
    start.set(this.start);
    this.cls = cls;
    this.start = start;
  }
}
