/**
 * Replication link fault injection (POST /v1/rcopy/link, `arraysim rcopy link`): what one array
 * does to the link frames it sends and receives. The engine (replication-group.ts,
 * link-session.ts) hands every encoded frame to a LinkShaper and registers every link socket
 * here; nothing else in the engine knows faults.
 *
 * The model, and why it is what TCP does:
 * - cut: the connection is dropped and the primary's dialler stays away until restore.
 * - latencyMs: added to every frame this array sends (a one-way delay on the wire; with it set on
 *   one array the round trip grows by that much: the paper's rule of thumb is 1 ms per 100 km).
 *   Frames keep their order: TCP delivers a byte stream in order.
 * - lossPercent: a lost segment on a TCP connection is not a missing frame at the application; the
 *   sender's kernel retransmits it after the retransmission timeout, and everything sent after it
 *   waits behind it (head-of-line blocking: the receiver's kernel holds later segments until the
 *   gap is filled). So each frame this array sends is lost with that probability, resent after
 *   RTO (Linux TCP_RTO_MIN, 200 ms), lost again with the same probability with the RTO doubled
 *   (RFC 6298 §5.5), and so on; the frame and every frame after it arrive late. A stall longer
 *   than the group's heartbeat timeout (group-machine.ts, 3 s) makes the receiving side declare
 *   the link down and drop the connection, which is how a badly lossy line ends in practice
 *   (long before TCP itself gives up after tcp_retries2 = 15 retransmissions, ~15 minutes).
 *   No byte is ever dropped from the stream: a frame is late or the connection is gone.
 * - oneWay: a partition in one direction. `out`: frames this array sends stop arriving (they are
 *   held, as TCP keeps retransmitting unacknowledged data); `in`: frames sent to this array stop
 *   arriving (the socket is not read: the kernel's receive window fills, the peer's sends wait).
 *   The side that hears nothing declares the link down by the heartbeat timeout and drops the
 *   connection, and the group behaves as on a cut. If the partition heals before that, the held
 *   frames arrive in order (a stall). The side still hearing its peer learns of the loss when
 *   the other side closes the connection.
 *
 * Loss draws come from a seeded generator (STYLE.md habit 17): the seed is in the link status and
 * the log, and the same seed gives the same loss pattern for the same sequence of frames sent.
 */
import type net from 'node:net';

export type OneWay = 'out' | 'in' | null;

export interface LinkFaults {
  cut: boolean;
  latencyMs: number;
  lossPercent: number;
  oneWay: OneWay;
  /** Seed of the loss draws (replays a loss pattern). */
  seed: number;
}

/** The body of POST /v1/rcopy/link (admin/routes/rcopy.ts LINK_BODY checks it first). */
export interface LinkFaultRequest {
  /** cut: drop the link and keep it down; restore: a clean link again (no cut, partition, loss or latency unless this request sets them). */
  action?: 'cut' | 'restore';
  latencyMs?: number;
  lossPercent?: number;
  /** `null` (CLI `--one-way off`) heals the partition. */
  oneWay?: OneWay;
  seed?: number;
}

/** Linux TCP_RTO_MIN (include/net/tcp.h: HZ/5): the first retransmission of a lost segment. */
export const TCP_RTO_MIN_MS = 200;
/** Linux TCP_RTO_MAX: the backoff stops doubling here (RFC 6298 §2.5 allows a maximum ≥ 60 s). */
export const TCP_RTO_MAX_MS = 120_000;
/** Linux tcp_retries2 default: after this many retransmissions of one segment TCP gives up. */
export const TCP_RETRIES2 = 15;
export const MAX_LATENCY_MS = 10_000;

/** mulberry32: small, fast, and the same sequence for the same seed on every platform. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * How late one frame arrives because of loss: the sum of the retransmission timeouts it waited
 * (0 if its first transmission arrived), and how many retransmissions that took. `Infinity` when
 * TCP would have given up (more than tcp_retries2): the frame never arrives, and the heartbeat
 * timeout takes the link down first.
 */
export function retransmissionDelay(lossPercent: number, random: () => number): { delayMs: number; retransmissions: number } {
  let delayMs = 0;
  let rto = TCP_RTO_MIN_MS;
  let n = 0;
  while (lossPercent > 0 && random() * 100 < lossPercent) {
    if (++n > TCP_RETRIES2) return { delayMs: Infinity, retransmissions: n - 1 };
    delayMs += rto;
    rto = Math.min(rto * 2, TCP_RTO_MAX_MS);
  }
  return { delayMs, retransmissions: n };
}

/** What a shaper writes to (a net.Socket; a fake in unit tests). */
export interface FrameSink {
  readonly destroyed: boolean;
  cork(): void;
  uncork(): void;
  write(b: Buffer): boolean;
}

export interface LinkFaultCounters {
  /** Frames that went through the fault path (delayed, lost at least once, or held). */
  framesShaped: number;
  /** Simulated TCP retransmissions (one per loss draw that hit). */
  retransmissions: number;
  /** Frames held at this moment by a one-way `out` partition or a retransmission stall. */
  framesQueued: number;
}

/**
 * The send side of one link connection: frames go straight to the socket when no fault is set
 * (no timer, no copy: the hot path), otherwise through a queue ordered by due time.
 */
export class LinkShaper {
  private readonly queue: { due: number; parts: Buffer[] }[] = [];
  private lastDue = 0;
  private timer: NodeJS.Timeout | null = null;
  private immediate: NodeJS.Immediate | null = null;
  private closed = false;
  /** Corked until the end of this tick: the frames one event produces leave in one writev. */
  private batching = false;
  private readonly endBatch = (): void => { this.batching = false; if (!this.sink.destroyed) this.sink.uncork(); };

  constructor(private readonly sink: FrameSink, private readonly injector: LinkFaultInjector) {}

  /** `alone`: no other frame is expected in this tick; it is written at once (one writev) unless a batch is open. */
  send(parts: Buffer[], alone = false): void {
    if (this.closed || this.sink.destroyed) return;
    const f = this.injector.faults;
    if (this.queue.length === 0 && f.latencyMs === 0 && f.lossPercent === 0 && f.oneWay !== 'out') { this.write(parts, alone); return; }
    const loss = retransmissionDelay(f.lossPercent, this.injector.random);
    this.injector.counters.framesShaped++;
    this.injector.counters.retransmissions += loss.retransmissions;
    // In order: a frame never overtakes one sent before it (TCP's byte stream).
    const due = Math.max(performance.now() + f.latencyMs + loss.delayMs, this.lastDue);
    this.lastDue = due;
    this.queue.push({ due, parts });
    this.injector.counters.framesQueued++;
    this.schedule();
  }

  /** The faults changed (a partition healed, latency dropped): deliver what is due now. */
  kick(): void { this.schedule(); }

  close(): void {
    this.closed = true;
    this.injector.counters.framesQueued -= this.queue.length;
    this.queue.length = 0;
    this.clearTimers();
    this.injector.forget(this);
  }

  /**
   * Frames sent in one tick are written together: the secondary acknowledging every write of a
   * TCP chunk, or the primary replicating every write of an iSCSI chunk, makes one send() instead
   * of one per frame (each loopback send also runs the receiver's TCP input: ~11% of the CPU of a
   * QD32 replicated write went to those sends). A lone frame still leaves within the tick, so QD1
   * latency is unchanged; Nagle stays off.
   */
  private write(parts: Buffer[], alone: boolean): void {
    if (alone && !this.batching) {
      this.sink.cork();
      for (const p of parts) this.sink.write(p);
      this.sink.uncork();
      return;
    }
    if (!this.batching) { this.batching = true; this.sink.cork(); process.nextTick(this.endBatch); }
    for (const p of parts) this.sink.write(p);
  }

  private clearTimers(): void {
    if (this.timer) { clearTimeout(this.timer); this.timer = null; }
    if (this.immediate) { clearImmediate(this.immediate); this.immediate = null; }
  }

  private schedule(): void {
    this.clearTimers();
    if (this.closed || this.queue.length === 0 || this.injector.faults.oneWay === 'out') return;
    const wait = this.queue[0].due - performance.now();
    if (wait <= 0) { this.flush(); return; }
    if (!Number.isFinite(wait)) return; // lost for good: the heartbeat timeout ends the connection
    // Node's timers have 1 ms resolution and may fire up to a millisecond early or late; the last
    // millisecond is waited out on the event loop's check phase, so an injected 1 ms is 1 ms and
    // not 1-2 ms (it costs CPU only while a frame is that close to due).
    if (wait > 1.5) this.timer = setTimeout(() => { this.timer = null; this.schedule(); }, wait - 1);
    else this.immediate = setImmediate(() => { this.immediate = null; this.schedule(); });
  }

  private flush(): void {
    if (this.sink.destroyed) { this.close(); return; }
    const now = performance.now();
    let n = 0;
    this.sink.cork();
    while (n < this.queue.length && this.queue[n].due <= now) {
      for (const p of this.queue[n].parts) this.sink.write(p);
      n++;
    }
    this.sink.uncork();
    this.queue.splice(0, n);
    this.injector.counters.framesQueued -= n;
    this.schedule();
  }
}

/** A field of a link fault request that is out of range (the admin API answers 400 naming it). */
export class LinkFaultError extends RangeError {
  constructor(readonly field: keyof LinkFaultRequest, message: string) { super(message); }
}

/** One array's link faults: the settings, the loss generator, and the link sockets they act on. */
export class LinkFaultInjector {
  readonly faults: LinkFaults;
  readonly counters: LinkFaultCounters = { framesShaped: 0, retransmissions: 0, framesQueued: 0 };
  random: () => number;
  private readonly shapers = new Set<LinkShaper>();
  /** Link sockets being read, and whether each reads through `onread` (link-reader.ts: no 'data' listeners). */
  private readonly receivers = new Map<net.Socket, boolean>();

  constructor(seed = (Date.now() ^ (process.pid << 16)) >>> 0) {
    this.faults = { cut: false, latencyMs: 0, lossPercent: 0, oneWay: null, seed };
    this.random = seededRandom(seed);
  }

  /** The send side of a new link connection. */
  shaper(s: FrameSink): LinkShaper {
    const sh = new LinkShaper(s, this);
    this.shapers.add(sh);
    return sh;
  }

  forget(sh: LinkShaper): void { this.shapers.delete(sh); }

  /**
   * The receive side of a link connection: not read while a one-way `in` partition is set. Call it
   * before adding the 'data' listener (a paused socket stays paused when one is added).
   * `userReads`: it reads through `onread` (link-reader.ts), so it has no 'data' listener to wait for.
   */
  receiving(s: net.Socket, userReads = false): void {
    this.receivers.set(s, userReads);
    s.once('close', () => this.receivers.delete(s));
    if (this.faults.oneWay === 'in') s.pause();
  }

  /** Apply a request; returns true when it cuts (the engine then drops its connections). */
  set(o: LinkFaultRequest): boolean {
    check(o);
    const f = this.faults;
    if (o.action === 'restore') Object.assign(f, { cut: false, latencyMs: 0, lossPercent: 0, oneWay: null });
    if (o.action === 'cut') f.cut = true;
    if (o.latencyMs !== undefined) f.latencyMs = o.latencyMs;
    if (o.lossPercent !== undefined) f.lossPercent = o.lossPercent;
    if (o.oneWay !== undefined) f.oneWay = o.oneWay;
    if (o.seed !== undefined) { f.seed = o.seed >>> 0; this.random = seededRandom(f.seed); }
    for (const [s, userReads] of this.receivers) {
      if (f.oneWay === 'in') s.pause();
      else if (s.isPaused() && (userReads || s.listenerCount('data') > 0)) s.resume();
    }
    for (const sh of this.shapers) sh.kick();
    return o.action === 'cut';
  }

  status(): LinkFaults & LinkFaultCounters {
    return { ...this.faults, ...this.counters };
  }
}

function check(o: LinkFaultRequest): void {
  const num = (field: 'latencyMs' | 'lossPercent', v: number | undefined, max: number) => {
    if (v !== undefined && !(typeof v === 'number' && v >= 0 && v <= max)) throw new LinkFaultError(field, `${field} must be a number from 0 to ${max}`);
  };
  if (o.action !== undefined && o.action !== 'cut' && o.action !== 'restore') throw new LinkFaultError('action', 'action must be cut or restore');
  num('latencyMs', o.latencyMs, MAX_LATENCY_MS);
  num('lossPercent', o.lossPercent, 100);
  if (o.oneWay !== undefined && o.oneWay !== null && o.oneWay !== 'out' && o.oneWay !== 'in') throw new LinkFaultError('oneWay', 'oneWay must be out, in or null');
  if (o.seed !== undefined && !(Number.isInteger(o.seed) && o.seed >= 0 && o.seed <= 0xffffffff)) throw new LinkFaultError('seed', 'seed must be an integer from 0 to 4294967295');
}
