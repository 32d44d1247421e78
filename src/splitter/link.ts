/**
 * The link of a remote copy (CRR): an iSCSI session from this array, through the project's own
 * initiator (src/initiator), to the target on the remote array whose LUs are the copy's replica
 * volumes, and the rate limit that stands for the WAN between the sites (the field notes' 50 Mb/s:
 * "At 50 Mb/s, it would have taken roughly 15 hours to perform a full sync").
 *
 * The remote array is a plain `arraysim serve` with LUNs at least as large as production's: it
 * needs no configuration of its own, and every write reaches its LUs through its front door
 * (STYLE.md habit 14). What crosses the link is metered: each command costs its SCSI payload plus
 * COMMAND_OVERHEAD_BYTES (the 48-byte BHS of the command and of its response) in its direction,
 * and one token bucket per direction holds each to `rate`. iSCSI Data-Out/Data-In headers and
 * TCP/IP framing are not counted.
 */
import type { Logger } from 'pino';
import {
  decodeReplicaSequence, decodeReplicaUndo, encodeReplicaClaimCdb, encodeReplicaClaimParams, encodeReplicaSequenceCdb, encodeReplicaUndoCdb,
  REPLICA_SEQUENCE_LENGTH, REPLICA_UNDO_HEADER, ReplicaClaimAction,
} from '../../protocol/scsi/replica-claim.ts';
import type { ReplicaSequence, ReplicaUndoPiece } from '../../protocol/scsi/replica-claim.ts';
import { SenseKey } from '../../protocol/scsi/sense.ts';
import { ScsiCommandError, ScsiDevice, Session } from '../initiator/index.ts';
import type { ScsiResult } from '../initiator/index.ts';
import { formatRate, TokenBucket } from './rate.ts';

/** What one command costs the link besides its payload: the BHS of the command and of its response. */
export const COMMAND_OVERHEAD_BYTES = 96;

export interface LinkConfig {
  /** The remote array's portal. */
  host: string;
  port: number;
  /** The remote target's IQN. */
  target: string;
  /** The remote LUN of each replication set, in the group's order. */
  luns: number[];
  /** Production's geometry per replication set: each remote LU must have the block size and at least the blocks. */
  geometry: Array<{ blocks: bigint; blockSize: number }>;
  /** Bytes per second each way; undefined: unlimited. */
  rate?: number;
  /** The initiator name this array logs in to the remote target with. */
  initiatorName: string;
  /** The group and copy the remote LUs are claimed for (REPLICA CLAIM); absent: never claimed. */
  claimFor?: { group: string; copy: string };
  /** Bytes of undo data the remote keeps for the copy's images (sent with every CLAIM as UNDO LIMIT, in MiB). */
  undoLimit?: number;
}

export interface LinkStatus {
  portal: string;
  target: string;
  luns: number[];
  rate: string | null;
  rateBytesPerSec: number | null;
  connected: boolean;
  /** Bytes sent to / received from the remote array (payload + COMMAND_OVERHEAD_BYTES per command). */
  bytesSent: number;
  bytesReceived: number;
  commands: number;
  logins: number;
  lastError: string | null;
  /**
   * The remote LUs' replica claim (REPLICA CLAIM, src/scsi/replica-claim.ts): `held` (other hosts
   * of the remote array get NOT READY), `released`, or `pending` while what this array wants
   * (wantClaim) has not reached the remote array (link down: it goes at the next login).
   */
  claim: 'held' | 'released' | 'pending';
  wantClaim: boolean;
}

/** The session to the remote array, logged in on demand and again after it is lost. */
export class ReplicationLink {
  private session: Session | null = null;
  private connecting: Promise<Session> | null = null;
  private readonly out: TokenBucket | null;
  private readonly in: TokenBucket | null;
  readonly counters = { bytesSent: 0, bytesReceived: 0, commands: 0, logins: 0 };
  lastError: string | null = null;
  /** Whether the remote LUs should be claimed (the group says: enabled, copy enabled, no image access). */
  private wantClaim = false;
  /** What the remote array holds as far as this array knows: true after a CLAIM went through, false after a RELEASE. */
  private claimed = false;
  private claimOps: Promise<void> = Promise.resolve();

  constructor(readonly config: LinkConfig, private readonly log?: Logger) {
    this.out = config.rate ? new TokenBucket(config.rate) : null;
    this.in = config.rate ? new TokenBucket(config.rate) : null;
  }

  get connected(): boolean { return this.session !== null && !this.session.closed; }

  /** The device of remote LUN `lun` on a logged-in session (logging in first when there is none). */
  async device(lun: number): Promise<ScsiDevice> {
    if (this.session && !this.session.closed) return new ScsiDevice(this.session, lun);
    this.connecting ??= this.login().finally(() => { this.connecting = null; });
    return new ScsiDevice(await this.connecting, lun);
  }

  private async login(): Promise<Session> {
    const c = this.config;
    try {
      const s = await Session.login({ host: c.host, port: c.port, targetName: c.target, initiatorName: c.initiatorName, commandTimeoutMs: 60_000 });
      // First the claim: while the remote LUs are claimed by this array's old session, the new one
      // is another I_T nexus and gets NOT READY until it claims them again (the claim moves to it).
      try {
        if (this.wantClaim || this.claimed) await this.sendClaim(s, this.wantClaim);
      } catch (e) { await s.logout().catch(() => s.close()); throw e; }
      // Power-on and I_T nexus loss unit attentions (SAM-5 §5.14) are reported once per LU: consumed here.
      for (const [i, lun] of c.luns.entries()) {
        const d = new ScsiDevice(s, lun);
        await d.clearUnitAttentions();
        const cap = await d.readCapacity16();
        const want = c.geometry[i];
        if (cap.kind !== 'good') { await s.logout().catch(() => s.close()); throw new ScsiCommandError(cap, `READ CAPACITY(16) of remote LUN ${lun}`); }
        if (cap.value.blockSize !== want.blockSize || cap.value.blocks < want.blocks) {
          await s.logout().catch(() => s.close());
          throw new Error(`remote LUN ${lun} has ${cap.value.blocks} blocks of ${cap.value.blockSize} bytes; replication set ${i} needs ${want.blocks} of ${want.blockSize}`);
        }
      }
      this.session = s;
      this.counters.logins++;
      this.lastError = null;
      s.onClose = (e) => { this.lastError = e.message; this.log?.warn({ err: e.message, portal: `${c.host}:${c.port}` }, 'remote copy link lost'); };
      this.log?.info({ portal: `${c.host}:${c.port}`, target: c.target }, 'remote copy link up');
      return s;
    } catch (e) {
      this.lastError = (e as Error).message;
      throw new Error(`remote copy link to ${c.host}:${c.port} ${c.target}: ${(e as Error).message}`);
    }
  }

  /**
   * Run one command on remote LUN `lun`, `sent` payload bytes out and `received` in, each metered
   * before it goes (the bucket is the link's serialization delay). A unit attention (the remote
   * LU changed, SAM-5 §5.14) is consumed and the command sent again, as a host does.
   */
  async run<T>(lun: number, sent: number, received: number, what: string, cmd: (d: ScsiDevice) => Promise<ScsiResult<T>>, on?: Session): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      // `on`: only that session (a pipelined shipment: no record may go on a later session than the one before it).
      if (on?.closed) throw new Error(`${what} on remote LUN ${lun}: the link's session is gone`);
      const d = on ? new ScsiDevice(on, lun) : await this.device(lun);
      const o = this.out?.take(sent + COMMAND_OVERHEAD_BYTES / 2);
      if (o) await o;
      const i = this.in?.take(received + COMMAND_OVERHEAD_BYTES / 2);
      if (i) await i;
      this.counters.bytesSent += sent + COMMAND_OVERHEAD_BYTES / 2;
      this.counters.bytesReceived += received + COMMAND_OVERHEAD_BYTES / 2;
      this.counters.commands++;
      const r = await cmd(d);
      if (r.kind === 'good') return r.value;
      if (r.kind === 'check-condition' && r.sense?.key === SenseKey.UnitAttention && attempt < 4) continue;
      const err = new ScsiCommandError(r, `${what} on remote LUN ${lun}`);
      this.lastError = err.message;
      throw err;
    }
  }

  /**
   * Claim the remote LUs (`want`) or release them, now when the link is up or can come up, else
   * at the next login. Never throws: a claim that cannot be sent shows as `pending` and in
   * lastError (a release that cannot reach a lost remote is what the remote operator's release is for).
   */
  setClaim(want: boolean): Promise<void> {
    if (!this.config.claimFor) return Promise.resolve();
    this.wantClaim = want;
    const run = this.claimOps.then(async () => {
      if (this.wantClaim === this.claimed) return;
      try {
        if (this.session && !this.session.closed) await this.sendClaim(this.session, this.wantClaim);
        else await this.device(this.config.luns[0]); // the login claims or releases
      } catch (e) {
        this.lastError = (e as Error).message;
        this.log?.warn({ err: this.lastError, claim: this.wantClaim }, 'remote copy: replica claim not sent');
      }
    });
    this.claimOps = run;
    return run;
  }

  /** REPLICA CLAIM CLAIM or RELEASE on every remote LU of the copy, over session `s`. */
  private async sendClaim(s: Session, claim: boolean): Promise<void> {
    const params = encodeReplicaClaimParams({ ...this.config.claimFor!, ...(claim ? this.undoLimit() : {}) });
    const cdb = encodeReplicaClaimCdb(claim ? ReplicaClaimAction.Claim : ReplicaClaimAction.Release, params.length);
    const what = claim ? 'REPLICA CLAIM' : 'REPLICA CLAIM (release)';
    for (const lun of this.config.luns) {
      this.counters.bytesSent += params.length + COMMAND_OVERHEAD_BYTES / 2;
      this.counters.bytesReceived += COMMAND_OVERHEAD_BYTES / 2;
      this.counters.commands++;
      const r = await new ScsiDevice(s, lun).raw({ cdb, dataOut: params });
      if (r.kind !== 'good') throw new ScsiCommandError(r, `${what} of remote LUN ${lun}`);
    }
    this.claimed = claim;
    this.log?.info({ luns: this.config.luns, ...this.config.claimFor }, claim ? 'remote replica LUs claimed' : 'remote replica LUs released');
  }

  /** The logged-in session (logging in when there is none). */
  async current(): Promise<Session> {
    return (await this.device(this.config.luns[0])).session;
  }

  /** Drop the session without a logout: the remote array drops the records it holds waiting for it. */
  drop(): void {
    const s = this.session;
    this.session = null;
    s?.close();
  }

  /**
   * REPLICA SEQUENCE: the sequence the remote receive queue of this copy's claim has applied
   * (valid: a base was set or a record applied since the remote array started).
   */
  querySequence(): Promise<ReplicaSequence> {
    const lun = this.config.luns[0];
    return this.run(lun, 0, REPLICA_SEQUENCE_LENGTH, 'REPLICA SEQUENCE', (d) => d.raw({ cdb: encodeReplicaSequenceCdb(), dataIn: REPLICA_SEQUENCE_LENGTH }))
      .then(decodeReplicaSequence);
  }

  /** CLAIM with SETBASE: the remote copy is production's image at `seq` (after a synchronization); nothing older waits there. */
  async setBase(seq: number): Promise<void> {
    const params = encodeReplicaClaimParams({ ...this.config.claimFor!, base: seq, ...this.undoLimit() });
    const cdb = encodeReplicaClaimCdb(ReplicaClaimAction.Claim, params.length);
    await this.run(this.config.luns[0], params.length, 0, 'REPLICA CLAIM (base)', (d) => d.raw({ cdb, dataOut: params }));
  }

  private undoLimit(): { undoLimitMiB?: number } {
    const b = this.config.undoLimit;
    return b ? { undoLimitMiB: Math.max(1, Math.min(0xffff_ffff, Math.floor(b / (1 << 20)))) } : {};
  }

  /**
   * PRESENT IMAGE on every remote LU of the copy: they show the group's image at `seq` (the remote
   * site's copy journal, src/scsi/replica-journal.ts), in logged access (reads through the image's
   * read map, writes to an overlay) or `direct` (rolled back to it, history dropped). Refused
   * (ILLEGAL REQUEST) for a sequence outside the remote's window.
   */
  async presentImage(seq: number, direct: boolean): Promise<void> {
    const params = encodeReplicaClaimParams({ ...this.config.claimFor!, image: seq, direct });
    const cdb = encodeReplicaClaimCdb(ReplicaClaimAction.PresentImage, params.length);
    for (const lun of this.config.luns) await this.run(lun, params.length, 0, 'REPLICA CLAIM (present image)', (d) => d.raw({ cdb, dataOut: params }));
  }

  /**
   * REPLICA UNDO on the remote LU of replication set `set`: what the records after `after` (up to
   * the remote's applied sequence) overwrote there, oldest first, page by page (1 MiB, or what an
   * entry larger than that needs).
   */
  async readUndo(set: number, after: number): Promise<ReplicaUndoPiece[]> {
    const lun = this.config.luns[set];
    const bs = this.config.geometry[set].blockSize;
    const out: ReplicaUndoPiece[] = [];
    for (let from = after, room = 1 << 20; ;) {
      const allocation = REPLICA_UNDO_HEADER + room;
      const data = await this.run(lun, 0, 0, 'REPLICA UNDO', (d) => d.raw({ cdb: encodeReplicaUndoCdb(from, allocation), dataIn: allocation }));
      // What came back is metered once it is known (the allocation is only a bound).
      this.counters.bytesReceived += data.length;
      const i = this.in?.take(data.length);
      if (i) await i;
      const page = decodeReplicaUndo(data, bs);
      out.push(...page.pieces);
      if (!page.more) return out;
      if (page.pieces.length) from = page.pieces[page.pieces.length - 1].seq;
      else room = page.nextLength;
    }
  }

  /** END IMAGE: the remote LUs are the replica volumes again (a logged image's overlay is dropped); once for the claim. */
  async endImage(): Promise<void> {
    const params = encodeReplicaClaimParams(this.config.claimFor!);
    const cdb = encodeReplicaClaimCdb(ReplicaClaimAction.EndImage, params.length);
    await this.run(this.config.luns[0], params.length, 0, 'REPLICA CLAIM (end image)', (d) => d.raw({ cdb, dataOut: params }));
  }

  status(): LinkStatus {
    const c = this.config;
    return {
      portal: `${c.host}:${c.port}`, target: c.target, luns: c.luns,
      rate: c.rate ? formatRate(c.rate) : null, rateBytesPerSec: c.rate ?? null,
      connected: this.connected, ...this.counters, lastError: this.lastError,
      claim: this.wantClaim !== this.claimed ? 'pending' : this.claimed ? 'held' : 'released', wantClaim: this.wantClaim,
    };
  }

  async close(): Promise<void> {
    const s = this.session;
    this.session = null;
    if (s && !s.closed) await s.logout().catch(() => s.close());
  }
}
