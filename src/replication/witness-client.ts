/**
 * An array's side of the quorum witness (peers.witness): one TCP connection to the witness, a
 * heartbeat every HEARTBEAT_MS naming each Remote Copy group as its machine reports it, and each
 * verdict handed to the group machines as a `witness` event with the time its heartbeat left
 * (the lease counts from then). It decides nothing: a machine that stops hearing verdicts runs
 * out of lease and, with its replication link down, goes Failsafe on its next tick.
 */
import net from 'node:net';
import type { Logger } from 'pino';
import { encodeWitness, WitnessFramer } from '../../protocol/replication/witness.ts';
import type { GroupReport, GroupVerdict } from '../../protocol/replication/witness.ts';

export const WITNESS_HEARTBEAT_MS = 250;
const REDIAL_MS = 300;
/** Heartbeats that carry one group to forget before the array gives up on it. */
const FORGET_TRIES = 5;

/** What the client needs of the groups (RemoteCopy gives it). */
export interface WitnessGroups {
  reports(): GroupReport[];
  verdict(v: GroupVerdict, sentAt: number, now: number): void;
}

export interface WitnessClientStatus {
  address: string;
  connected: boolean;
  witness: string | null;
  /** ms since the last verdict (null: none yet). */
  lastVerdictMsAgo: number | null;
  heartbeats: number;
  verdicts: number;
}

export class WitnessClient {
  private socket: net.Socket | null = null;
  private timer: NodeJS.Timeout | null = null;
  private dialTimer: NodeJS.Timeout | null = null;
  private closed = false;
  private nonce = 0n;
  private readonly sent = new Map<bigint, number>();
  /** Groups removed from both arrays, for the witness to forget: sent with each heartbeat until one is answered (forget()). */
  private readonly forgetting = new Map<string, number>();
  /** The names each unanswered heartbeat carried. */
  private readonly forgetSent = new Map<bigint, string[]>();
  private witnessName: string | null = null;
  private lastVerdictAt = 0;
  private counts = { heartbeats: 0, verdicts: 0 };
  /** Fault injection (POST /v1/rcopy/witness): this array cannot reach the witness while set. */
  cut = false;

  constructor(readonly address: { host: string; port: number }, readonly array: string, readonly groups: WitnessGroups, readonly log: Logger) {}

  start(): void { this.dial(); }

  private dial(): void {
    if (this.closed || this.socket) return;
    if (this.cut) { this.redial(); return; }
    const s = net.connect(this.address.port, this.address.host);
    this.socket = s;
    s.setNoDelay(true);
    s.on('error', () => {});
    const framer = new WitnessFramer();
    s.once('connect', () => {
      this.log.info({ witness: this.addr() }, 'in touch with the quorum witness');
      this.heartbeat();
      this.timer = setInterval(() => this.heartbeat(), WITNESS_HEARTBEAT_MS);
      this.timer.unref();
    });
    s.on('data', (chunk: Buffer) => framer.push(chunk, (ev) => {
      if (ev.kind === 'error') { this.log.warn({ err: ev.error.message }, 'witness protocol error'); s.destroy(); return; }
      const m = ev.message;
      if (m.type === 'error') { this.log.warn({ message: m.message }, 'the witness refused this array'); s.destroy(); return; }
      if (m.type !== 'verdict') { s.destroy(); return; }
      const sentAt = this.sent.get(m.nonce);
      if (sentAt === undefined) return; // an answer to a heartbeat from before a reconnect
      this.sent.delete(m.nonce);
      // Answered: the witness has acted on the names it carried (forgotten, or kept and logged why).
      for (const g of this.forgetSent.get(m.nonce) ?? []) this.forgetting.delete(g);
      this.forgetSent.delete(m.nonce);
      // Older unanswered heartbeats will not be answered on this connection (answers come in order).
      for (const n of this.sent.keys()) if (n < m.nonce) this.sent.delete(n);
      const now = Date.now();
      this.lastVerdictAt = now;
      this.witnessName = m.witness;
      this.counts.verdicts++;
      for (const v of m.groups) this.groups.verdict(v, sentAt, now);
    }));
    s.once('close', () => {
      if (this.socket === s) this.socket = null;
      if (this.timer) { clearInterval(this.timer); this.timer = null; }
      this.sent.clear();
      this.forgetSent.clear();
      if (!this.closed) {
        if (this.lastVerdictAt) this.log.warn({ witness: this.addr() }, 'lost touch with the quorum witness');
        this.redial();
      }
    });
  }

  private redial(): void {
    if (this.closed || this.dialTimer) return;
    this.dialTimer = setTimeout(() => { this.dialTimer = null; this.dial(); }, REDIAL_MS);
    this.dialTimer.unref();
  }

  private heartbeat(): void {
    const s = this.socket;
    if (!s || s.destroyed || this.cut) return;
    const nonce = ++this.nonce;
    this.sent.set(nonce, Date.now());
    this.counts.heartbeats++;
    let forget: string[] | undefined;
    if (this.forgetting.size) {
      forget = [];
      // A witness of an older build refuses the list and closes the connection: a few tries, then the record stays.
      for (const [g, tries] of this.forgetting) {
        if (tries >= FORGET_TRIES) { this.forgetting.delete(g); this.log.warn({ group: g }, 'the witness did not take the group to forget; its record stays'); continue; }
        this.forgetting.set(g, tries + 1);
        forget.push(g);
      }
      this.forgetSent.set(nonce, forget);
    }
    s.write(encodeWitness({ type: 'heartbeat', array: this.array, nonce, groups: this.groups.reports(), forget }));
  }

  /**
   * `group` was removed from both arrays (removegroup): ask the witness to forget its record, so a
   * group made again under the name starts with no owner and epoch 0, as a new one does. The
   * witness does so only if this array owns the group on record (witness-arbiter.ts).
   */
  forget(group: string): void {
    this.forgetting.set(group, 0);
  }

  /** Fault injection: drop the witness connection and stay away until restored. */
  setCut(cut: boolean): void {
    this.cut = cut;
    if (cut) this.socket?.destroy();
    else this.dial();
  }

  private addr(): string { return `${this.address.host}:${this.address.port}`; }

  status(): WitnessClientStatus {
    return {
      address: this.addr(), connected: !!this.socket && !this.socket.connecting && !this.socket.destroyed, witness: this.witnessName,
      lastVerdictMsAgo: this.lastVerdictAt ? Date.now() - this.lastVerdictAt : null, ...this.counts,
    };
  }

  stop(): void {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    if (this.dialTimer) clearTimeout(this.dialTimer);
    this.socket?.destroy();
  }
}
