/**
 * One iSCSI connection: framing, the login phase, and full-feature-phase dispatch
 * (RFC 7143 §8.1.3 target connection states, named after the spec's diagram).
 * Hot path rules (STYLE.md habit 7): Data-In goes out as [header, view of the store] with
 * cork/uncork, never concatenated; Data-Out is copied once into the task's buffer.
 */
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { Framer } from '../../protocol/iscsi/framer.ts';
import type { FrameEvent, FramedPdu } from '../../protocol/iscsi/framer.ts';
import {
  InitiatorOp, LoginStage, RejectReason, TmfFunction, TmfResponse, RESERVED_TAG, PAD, padLength, BHS_LENGTH, dataSegmentLength,
  decodePdu, encodeDataIn, encodeLoginResponse, encodeLogoutResponse, encodeNopIn, encodeR2T, encodeReject,
  encodeScsiResponse, encodeTaskMgmtResponse, encodeTextResponse, encodeAsyncMessage,
} from '../../protocol/iscsi/pdu.ts';
import type {
  DataOutPdu, InitiatorPdu, LoginRequestPdu, LogoutRequestPdu, NopOutPdu, ScsiCommandPdu, SeqNumbers,
  TaskMgmtRequestPdu, TextRequestPdu,
} from '../../protocol/iscsi/pdu.ts';
import { encodeText, parseText } from '../../protocol/iscsi/text.ts';
import type { TextPair } from '../../protocol/iscsi/text.ts';
import { crc32c } from '../../protocol/iscsi/digest.ts';
import { buildFixedSense } from '../../protocol/scsi/sense.ts';
import type { SenseReason } from '../../protocol/scsi/sense.ts';
import { ScsiStatus } from '../scsi/types.ts';
import type { Nexus, ScsiRequest, ScsiResponse } from '../scsi/types.ts';
import { LoginNegotiation, LoginStatus } from './login.ts';
import type { LoginStatusName } from './login.ts';
import type { PortalConfig } from './config.ts';
import { Session, sessionParamsFrom } from './session.ts';
import type { SessionParams } from './session.ts';
import type { IscsiServer, PortalStats } from './server.ts';
import { snAdd, snGt, snLt } from './seq.ts';
import { BufferPool } from './buffer-pool.ts';
import { SBC_LIMITS } from '../scsi/sbc-common.ts';
import { classOfCdb, ClassIndex } from '../metrics/command-class.ts';
import { nowUs, TurnLatencies } from '../metrics/latency.ts';
import type { CommandLatency } from '../metrics/latency.ts';

/** Target connection states (RFC 7143 §8.1.3, Figure 13). */
export const enum ConnState {
  Free = 'S1:FREE',
  InLogin = 'S4:IN_LOGIN',
  LoggedIn = 'S5:LOGGED_IN',
  InLogout = 'S6:IN_LOGOUT',
  LogoutRequested = 'S7:LOGOUT_REQUESTED',
  CleanupWait = 'S8:CLEANUP_WAIT',
}

/** A SCSI task from this connection that has not finished yet. */
export interface Task {
  readonly itt: number;
  readonly lun: number;
  readonly cmdSN: number;
  readonly immediate: boolean;
  readonly cdb: Buffer;
  readonly edtl: number;
  readonly read: boolean;
  readonly write: boolean;
  readonly attr: number;
  /** Data-Out collection (writes). */
  buf: Buffer | null;
  received: number;
  unsolicitedEnd: number;
  unsolicitedNext: number;
  unsolicitedDone: boolean;
  /** DataSN expected on the next unsolicited Data-Out (the unsolicited burst is one sequence). */
  unsolicitedDataSN: number;
  r2tNext: number;
  r2tSN: number;
  readonly r2ts: Map<number, { offset: number; length: number; next: number; dataSN: number }>;
  failure: SenseReason | null;
  /** buf came from the connection's BufferPool: give it back once the response is produced. */
  pooled: Buffer | null;
  /** Passed the CmdSN gate (counts in Session.outstanding when non-immediate). */
  started: boolean;
  state: 'collecting' | 'executing';
  aborted: boolean;
  done: Promise<void> | null;
  /** Latency class (src/metrics/command-class.ts) and when its PDU was read (nowUs()), when metrics are on. */
  readonly cls: ClassIndex;
  readonly startUs: number;
}

const EMPTY = Buffer.alloc(0);
/**
 * A Data-Out whose DataSN is not the next one in its sequence means an earlier PDU was lost to a
 * digest error (RFC 7143 §7.9), handled as that digest error (§7.8): without recovery R2Ts
 * (ErrorRecoveryLevel 0) the task ends, once all its data is in, in CHECK CONDITION with
 * "protocol service CRC error" (§4.4.7.1), and the data is never written.
 */
const DATASN_ERROR: SenseReason = 'ProtocolServiceCrcError';
const HIGH_WATER = 16 * 1024 * 1024;
/** Idle receive buffers kept per connection: QD32 of 128 KiB writes in flight, twice over. */
const POOL_BYTES = 8 * 1024 * 1024;
/**
 * Smaller segments come from Node's shared 8 KiB pool. A 4 KiB one is too big for that pool, so
 * it was a fresh ArrayBuffer per write: with them pooled, a 4 KiB write run used ~13 % less
 * target CPU, and with the store's slabs a first pass of 4 KiB writes over a fresh LUN ran 5
 * mark-compacts instead of ~50.
 */
const POOL_MIN_SIZE = 4 * 1024;
/** Data segments at least this long are read from the socket straight into their buffer. */
const DIRECT_MIN = 16 * 1024;
/**
 * The most Data-Out any command of this target can use: the Block Limits MAXIMUM TRANSFER LENGTH
 * (SBC-4 §6.6.4); parameter lists are far smaller. A WRITE claiming more is refused before a
 * buffer exists, so a 48-byte PDU cannot make the target reserve up to 4 GiB (EDTL is 32 bits).
 */
const MAX_DATA_OUT = SBC_LIMITS.maxTransferBytes;

export class Connection {
  state: ConnState = ConnState.Free;
  readonly framer: Framer;
  session: Session | null = null;
  cid = 0;
  statSN = 1;
  /** Initiator's MaxRecvDataSegmentLength: the largest data segment we may send. */
  sendLimit = 8192;
  headerDigest = false;
  dataDigest = false;
  private login: LoginNegotiation | null;
  readonly tasks = new Map<number, Task>();
  /** ITTs of recently aborted tasks whose late Data-Out is dropped silently. */
  private readonly abortedItts = new Set<number>();
  private nextTtt = 1;
  private pingTtt = 0;
  private idleTimer: NodeJS.Timeout | null = null;
  private pingTimer: NodeJS.Timeout | null = null;
  private loginTimer: NodeJS.Timeout | null = null;
  private closed = false;
  private readonly pool = new BufferPool(POOL_BYTES, POOL_MIN_SIZE);
  /** The last data segment the framer gathered into a pooled buffer (see allocData). */
  private pooledSegment: Buffer | null = null;
  readonly log: Logger;
  readonly remote: string;
  private readonly stats: PortalStats;
  /** The server's latency recorder, or null with metrics off (src/metrics/latency.ts). */
  private readonly latency: CommandLatency | null;
  /** Commands completed during this event-loop turn, recorded when its responses leave (flush). */
  private readonly turnLatencies: TurnLatencies | null;
  /** When the current socket read returned (nowUs()); the start of the commands it carries. */
  private arrivalUs = 0;

  /**
   * `staging`: given when the socket reads into buffers we supply (socket-read.ts): the reused
   * buffer for reads that are not straight into a data segment. Absent: ordinary 'data' chunks.
   */
  constructor(readonly socket: Socket, readonly server: IscsiServer, readonly portal: PortalConfig, private readonly staging?: Buffer) {
    this.remote = `${socket.remoteAddress}:${socket.remotePort}`;
    this.stats = server.portalStats.get(portal)!;
    this.latency = server.commandLatency;
    this.turnLatencies = this.latency !== null ? new TurnLatencies(this.latency) : null;
    this.log = server.log.child({ conn: this.remote, portal: `${portal.host}:${portal.port}` });
    this.framer = new Framer({ headerDigest: false, dataDigest: false, maxDataSegmentLength: 65536, reusedChunks: !!staging });
    this.login = new LoginNegotiation({
      findTarget: (n) => server.findTargetConfig(n),
      portal,
      limits: server.limits,
    });
    this.state = ConnState.InLogin;
    socket.setNoDelay(true);
    if (!staging) socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => this.log.debug({ err: err.message }, 'socket error'));
    socket.on('close', () => this.cleanup('socket closed'));
    socket.on('drain', () => { if (!this.closed) socket.resume(); });
    this.loginTimer = setTimeout(() => this.drop('login timeout'), server.tuning.loginTimeout * 1000);
    this.loginTimer.unref();
  }

  // ---------------------------------------------------------------------------------------
  // Receive path

  /**
   * Where the socket reads next (user-buffer mode): straight into the data segment being
   * gathered when it is large, else the staging buffer. After a large segment only one BHS is
   * read, so that the next segment, probably large too, lands in its own buffer as well.
   */
  readBuffer(): Buffer {
    const direct = this.framer.directTarget(DIRECT_MIN);
    if (direct !== null) return direct;
    return this.lastDirect ? this.staging!.subarray(0, BHS_LENGTH) : this.staging!;
  }

  /** `n` bytes arrived in the buffer readBuffer() gave out. */
  onRead(n: number, buf: Uint8Array): void {
    if (this.closed) return;
    if (buf.buffer === this.staging!.buffer) {
      this.lastDirect = false;
      this.onData(this.staging!.subarray(0, n));
      return;
    }
    this.lastDirect = true;
    this.armIdle();
    this.withCork(() => this.framer.pushDirect(n, this.onFrame));
  }

  /** True when the socket reads into our buffers (socket-read.ts), not Node's chunks. */
  get userBufferReads(): boolean {
    return this.staging !== undefined;
  }

  /** The previous read went straight into a data segment. */
  private lastDirect = false;

  private onData(chunk: Buffer): void {
    if (this.closed) return;
    this.armIdle();
    // Everything answered during this event-loop turn (R2Ts, statuses of commands the memory
    // store completes synchronously, from every read libuv makes before it returns to the loop)
    // leaves in one writev when the turn's I/O is done (withCork): one send per response cost
    // more than the responses, and each send wakes the initiator. A/B on 2026-11-23, two runs
    // each of qemu-img bench and iscsi-perf at QD32: 128 KiB writes 1.56-2.00 -> 1.85-2.39 GB/s,
    // 128 KiB reads 3.26-3.56 -> 3.76-3.87 GB/s, 4 KiB random reads 128-130K -> 136-141K IOPS.
    this.withCork(() => this.framer.push(chunk, this.onFrame));
  }

  private withCork(fn: () => void): void {
    const sock = this.socket;
    if (this.latency !== null) this.arrivalUs = nowUs();
    if (!this.flushPending) {
      this.flushPending = true;
      sock.cork();
      setImmediate(this.flush);
    }
    try {
      fn();
    } catch (err) {
      this.log.error({ err }, 'internal error handling PDU');
      this.drop('internal error');
    }
  }

  /** A cork is held from the first read of an event-loop turn until the turn's I/O is done. */
  private flushPending = false;
  private readonly flush = (): void => {
    this.flushPending = false;
    this.socket.uncork();
    this.turnLatencies?.recordAll();
  };

  /** Corked by finish() until the end of the current callback (no turn's cork was held). */
  private tickCorked = false;
  private readonly tickUncork = (): void => {
    this.tickCorked = false;
    this.socket.uncork();
  };

  private readonly onFrame = (e: FrameEvent): void => {
    if (this.closed) return;
    switch (e.kind) {
      case 'header-digest-error':
        // RFC 7143 §7.8: at ErrorRecoveryLevel 0 a header digest error ends the connection.
        this.drop('header digest error');
        return;
      case 'oversize':
        this.log.warn({ length: e.length }, 'data segment longer than MaxRecvDataSegmentLength');
        if (this.state === ConnState.InLogin) { this.loginFail('InitiatorError', 'oversized login PDU'); return; }
        this.reject(RejectReason.ProtocolError, e.bhs);
        return;
      case 'pdu':
        this.onPdu(e.pdu);
        return;
    }
  };

  /**
   * Pooled buffers only for payloads whose end of use is known here (see buffer-pool.ts): a
   * Data-Out segment, and a WRITE whose data all arrives as immediate data.
   */
  private readonly allocData = (size: number, bhs: Buffer): Buffer => {
    const op = bhs[0] & 0x3f;
    const whole = op === InitiatorOp.ScsiCommand && (bhs[1] & 0x20) !== 0 && bhs.readUInt32BE(20) === dataSegmentLength(bhs);
    if (size < POOL_MIN_SIZE || (op !== InitiatorOp.DataOut && !whole)) return Buffer.allocUnsafe(size);
    return (this.pooledSegment = this.pool.take(size));
  };

  private onPdu(f: FramedPdu): void {
    const seg = this.pooledSegment;
    if (seg === null) { this.dispatch(f, null); return; }
    this.pooledSegment = null;
    const pooled = f.data.buffer === seg.buffer ? seg : null;
    // Whatever the handler did not adopt (a WRITE's immediate data as its task buffer) is free again.
    if (!this.dispatch(f, pooled) && pooled !== null) this.pool.release(pooled);
  }

  /** Returns true when the PDU's pooled data segment now belongs to a task. */
  private dispatch(f: FramedPdu, pooled: Buffer | null): boolean {
    const pdu = decodePdu(f.bhs, f.ahs, f.data);
    if (this.state === ConnState.InLogin) {
      if (pdu.op !== InitiatorOp.LoginRequest) {
        // RFC 7143 §6.3: only Login Requests during login.
        this.loginFail('InvalidDuringLogin', `opcode ${pdu.op} during login`);
        return false;
      }
      this.onLogin(pdu);
      return false;
    }
    if (!f.dataDigestOk) {
      // RFC 7143 §7.8.? data digest error: Reject; the task it belonged to cannot complete normally.
      this.reject(RejectReason.DataDigestError, f.bhs);
      if (pdu.op === InitiatorOp.DataOut || pdu.op === InitiatorOp.ScsiCommand) {
        const t = this.tasks.get(pdu.itt);
        if (t) t.failure = 'ProtocolServiceCrcError';
        if (pdu.op === InitiatorOp.ScsiCommand) return false;
      } else {
        return false;
      }
    }
    switch (pdu.op) {
      case InitiatorOp.ScsiCommand: return this.onScsiCommand(pdu, f.bhs, pooled);
      case InitiatorOp.DataOut: this.onDataOut(pdu, f.bhs); return false;
      case InitiatorOp.NopOut: this.onNopOut(pdu, f.bhs); return false;
      case InitiatorOp.TaskMgmtRequest: this.onTaskMgmt(pdu, f.bhs); return false;
      case InitiatorOp.TextRequest: this.onText(pdu, f.bhs); return false;
      case InitiatorOp.LogoutRequest: this.onLogout(pdu, f.bhs); return false;
      case InitiatorOp.LoginRequest:
        // A login on a connection in full feature phase is a protocol error (RFC 7143 §6.3).
        this.reject(RejectReason.ProtocolError, f.bhs);
        return false;
      case InitiatorOp.SnackRequest:
        // ErrorRecoveryLevel 0: SNACK is not supported (RFC 7143 §11.16).
        this.reject(RejectReason.CommandNotSupported, f.bhs);
        return false;
      default:
        this.reject(RejectReason.CommandNotSupported, f.bhs);
        return false;
    }
  }

  // ---------------------------------------------------------------------------------------
  // Login phase

  private onLogin(pdu: LoginRequestPdu): void {
    const lg = this.login!;
    const wasFirst = lg.first;
    const step = lg.step(pdu);
    if (step === null) {
      // C=1: acknowledge and wait for the rest of the text (RFC 7143 §6.3).
      this.sendLoginResponse(pdu, { transit: false, csg: pdu.csg, nsg: 0 }, [], LoginStatus.Success);
      return;
    }
    if (step.kind === 'fail') { this.loginFail(step.status, step.reason, pdu); return; }
    if (wasFirst) {
      const acl = lg.target?.acl;
      if (lg.sessionType === 'Normal' && acl && acl.length > 0 && !acl.includes(lg.initiatorName)) {
        this.loginFail('AuthorizationFailure', `initiator ${lg.initiatorName} not in ACL of ${lg.target!.name}`, pdu);
        return;
      }
      if (lg.tsih !== 0) {
        const s = this.server.sessionByTsih(lg.tsih);
        if (!s || s.isid !== lg.isid || s.initiatorName !== lg.initiatorName) {
          this.loginFail('SessionDoesNotExist', `TSIH ${lg.tsih} unknown`, pdu);
          return;
        }
        const reinstating = [...s.connections].some((c) => c.cid === lg.cid);
        if (!reinstating && s.connections.size >= s.params.maxConnections) {
          this.loginFail('TooManyConnections', `session ${lg.tsih} has ${s.connections.size} connection(s)`, pdu);
          return;
        }
      }
    }
    let status: readonly [number, number] = LoginStatus.Success;
    if (step.transit && step.nsg === LoginStage.FullFeaturePhase) {
      const r = this.enterFullFeature(lg, pdu);
      if (r) { this.loginFail(r.status, r.reason, pdu); return; }
      status = LoginStatus.Success;
    }
    this.sendLoginResponse(pdu, step, step.pairs, status);
    if (this.state === ConnState.LoggedIn) this.startFullFeature(lg);
  }

  private enterFullFeature(lg: LoginNegotiation, pdu: LoginRequestPdu): { status: LoginStatusName; reason: string } | null {
    const params: SessionParams = sessionParamsFrom(lg.agreed);
    this.cid = lg.cid;
    if (lg.tsih === 0) {
      // Leading login: a new session, reinstating any session with the same ISID through the
      // same target portal group (the session identifier is initiator + ISID + TPGT, RFC 7143 §4.4.1, §6.3.5).
      const old = this.server.findSession(lg.initiatorName, lg.isid, lg.target?.name ?? '', this.portal.tpgt);
      if (old) this.server.closeSession(old, 'session reinstatement');
      const entry = lg.target ? this.server.targets.get(lg.target.name) : undefined;
      const s = new Session(
        this.server.newTsih(), lg.isid, lg.initiatorName, lg.sessionType, lg.target, entry?.scsi, this.portal, params,
        pdu.cmdSN, this.server.tuning.queueDepth,
      );
      this.server.addSession(s);
      this.session = s;
    } else {
      const s = this.server.sessionByTsih(lg.tsih)!;
      for (const c of [...s.connections]) if (c.cid === lg.cid) c.drop('connection reinstatement');
      this.session = s;
    }
    this.session!.connections.add(this);
    this.state = ConnState.LoggedIn;
    return null;
  }

  /** Full feature phase begins after the final login response (digests apply from the next PDU). */
  private startFullFeature(lg: LoginNegotiation): void {
    const a = lg.agreed;
    this.headerDigest = a.get('HeaderDigest') === 'CRC32C';
    this.dataDigest = a.get('DataDigest') === 'CRC32C';
    this.sendLimit = Number(a.get('MaxRecvDataSegmentLength') ?? 8192);
    const ours = Number(a.get('TargetMaxRecvDataSegmentLength') ?? 8192);
    this.framer.opts = {
      headerDigest: this.headerDigest, dataDigest: this.dataDigest, maxDataSegmentLength: ours, allocData: this.allocData,
      reusedChunks: !!this.staging,
    };
    if (this.loginTimer) clearTimeout(this.loginTimer);
    this.login = null;
    const s = this.session!;
    if (s.nexus && s.scsi && s.connections.size === 1) s.scsi.nexusUp(s.nexus);
    this.stats.logins++;
    this.log.info({ initiator: s.initiatorName, isid: s.isid, tsih: s.tsih, type: s.type, target: s.targetConfig?.name,
      headerDigest: this.headerDigest, dataDigest: this.dataDigest }, 'login complete');
    if (lg.tsih === 0) this.server.sessionLoggedIn(s);
    this.armIdle();
  }

  private sendLoginResponse(
    pdu: LoginRequestPdu, step: { transit: boolean; csg: number; nsg: number }, pairs: TextPair[],
    status: readonly [number, number],
  ): void {
    const data = pairs.length ? encodeText(pairs) : EMPTY;
    const s = this.session;
    const expCmdSN = s ? s.expCmdSN : pdu.cmdSN;
    const maxCmdSN = s ? s.currentMaxCmdSN() : snAdd(pdu.cmdSN, this.server.tuning.queueDepth - 1);
    const bhs = encodeLoginResponse({
      transit: step.transit, cont: false, csg: step.csg, nsg: step.nsg, versionMax: 0, versionActive: 0,
      isid: pdu.isid, tsih: s ? s.tsih : pdu.tsih, itt: pdu.itt, statusClass: status[0], statusDetail: status[1],
      dataLength: data.length,
    }, { statSN: this.statSN, expCmdSN, maxCmdSN });
    this.statSN = snAdd(this.statSN, 1);
    // Login PDUs never carry digests (they are negotiated during login).
    this.writeRaw(bhs, data, false, false);
  }

  private loginFail(status: LoginStatusName, reason: string, pdu?: LoginRequestPdu): void {
    this.log.warn({ status, reason }, 'login rejected');
    const [cls, detail] = LoginStatus[status];
    const bhs = encodeLoginResponse({
      transit: false, cont: false, csg: pdu?.csg ?? 0, nsg: 0, versionMax: 0, versionActive: 0,
      isid: pdu?.isid ?? '000000000000', tsih: 0, itt: pdu?.itt ?? 0, statusClass: cls, statusDetail: detail, dataLength: 0,
    }, { statSN: this.statSN, expCmdSN: pdu?.cmdSN ?? 0, maxCmdSN: pdu?.cmdSN ?? 0 });
    this.writeRaw(bhs, EMPTY, false, false);
    // RFC 7143 §11.13.5: after a non-zero status the target closes the connection.
    this.closeAfterFlush('login failed');
  }

  // ---------------------------------------------------------------------------------------
  // Full feature phase

  private seq(): SeqNumbers {
    const s = this.session!;
    return { statSN: this.statSN, expCmdSN: s.expCmdSN, maxCmdSN: s.currentMaxCmdSN() };
  }

  /** Take a StatSN for a status-bearing PDU. */
  private seqAdvance(): SeqNumbers {
    const q = this.seq();
    this.statSN = snAdd(this.statSN, 1);
    return q;
  }

  /**
   * Run `fn` in CmdSN order for non-immediate PDUs (RFC 7143 §3.2.2.1); immediate ones now.
   * Returns false when the PDU was outside the window and dropped.
   */
  private sequenced(immediate: boolean, cmdSN: number, fn: () => void): boolean {
    const s = this.session!;
    if (immediate) { fn(); return true; }
    const r = s.order(cmdSN, fn);
    if (r === 'drop') {
      this.log.debug({ cmdSN, expCmdSN: s.expCmdSN, maxCmdSN: s.maxCmdSN }, 'CmdSN outside window: ignored');
      return false;
    }
    if (r === 'now') { fn(); s.drain(); }
    return true;
  }

  /** Returns true when `pooled` (the PDU's data segment) became the task's buffer. */
  private onScsiCommand(pdu: ScsiCommandPdu, bhs: Buffer, pooled: Buffer | null): boolean {
    const s = this.session!;
    if (s.type === 'Discovery' || !s.scsi) {
      // RFC 7143 §4.3: discovery sessions carry only Text, NOP and Logout.
      this.reject(RejectReason.ProtocolError, bhs);
      return false;
    }
    if (this.tasks.has(pdu.itt)) { this.reject(RejectReason.TaskInProgress, bhs); return false; }
    const imm = pdu.data.length;
    if (imm > 0 && (!pdu.write || !s.params.immediateData || imm > s.params.firstBurstLength || imm > pdu.edtl)) {
      // Immediate data not negotiated, beyond FirstBurstLength or beyond EDTL (RFC 7143 §4.2.5.1).
      this.reject(RejectReason.ProtocolError, bhs);
      return false;
    }
    // The class is taken now: the CDB is a view of a receive buffer that is reused later.
    const latency = this.latency;
    const task: Task = {
      itt: pdu.itt, lun: pdu.lun, cmdSN: pdu.cmdSN, immediate: pdu.immediate, cdb: pdu.cdb, edtl: pdu.edtl,
      read: pdu.read, write: pdu.write, attr: pdu.attr, buf: null, received: 0, unsolicitedEnd: 0,
      unsolicitedNext: 0, unsolicitedDone: true, unsolicitedDataSN: 0, r2tNext: 0, r2tSN: 0, r2ts: new Map(), failure: null, pooled: null,
      started: false, state: 'collecting', aborted: false, done: null,
      cls: latency !== null ? classOfCdb(pdu.cdb) : ClassIndex.Other, startUs: this.arrivalUs,
    };
    if (pdu.write && pdu.edtl > MAX_DATA_OUT) {
      // No buffer and no R2T: the task ends with CHECK CONDITION once its CmdSN comes up (SPC-5
      // INVALID FIELD IN COMMAND INFORMATION UNIT: the EDTL field of the command PDU).
      task.failure = 'InvalidFieldInCommandIu';
    } else if (pdu.write && pdu.edtl > 0) {
      // Unsolicited window: immediate data plus, with InitialR2T=No, Data-Out up to FirstBurstLength.
      const unsolicited = s.params.initialR2T ? imm : Math.min(s.params.firstBurstLength, pdu.edtl);
      task.unsolicitedEnd = Math.max(unsolicited, imm);
      task.unsolicitedDone = pdu.final || task.unsolicitedEnd <= imm;
      task.unsolicitedNext = imm;
      task.r2tNext = task.unsolicitedEnd;
      if (imm === pdu.edtl) {
        task.buf = pdu.data;
      } else {
        // Data-Out is gathered here: a pooled buffer, given back in finish() like adopted ones.
        task.buf = pdu.edtl >= POOL_MIN_SIZE ? (task.pooled = this.pool.take(pdu.edtl)) : Buffer.allocUnsafe(pdu.edtl);
        if (imm > 0) pdu.data.copy(task.buf, 0);
      }
      task.received = imm;
      if (task.unsolicitedDone && task.unsolicitedNext < task.unsolicitedEnd) task.r2tNext = task.unsolicitedNext;
    }
    // Adopted: from here on the task gives the buffer back (finish), maybe before sequenced() returns.
    const adopted = pooled !== null && task.buf === pdu.data;
    if (adopted) task.pooled = pooled;
    this.tasks.set(task.itt, task);
    const ok = this.sequenced(pdu.immediate, pdu.cmdSN, () => this.startTask(task));
    if (!ok) {
      this.tasks.delete(task.itt);
      this.abortedItts.add(task.itt);
      return false;
    }
    return adopted;
  }

  private startTask(task: Task): void {
    task.started = true;
    if (task.aborted) {
      // Aborted while held for an earlier CmdSN: it took a window slot just now, give it back.
      if (!task.immediate) this.session?.taskDone();
      return;
    }
    if (task.write && task.buf !== null && task.received < task.edtl) {
      this.issueR2Ts(task);
      return;
    }
    this.execute(task);
  }

  private issueR2Ts(task: Task): void {
    const p = this.session!.params;
    if (this.socket.writable) this.socket.cork();
    while (task.r2ts.size < p.maxOutstandingR2T && task.r2tNext < task.edtl) {
      const length = Math.min(p.maxBurstLength, task.edtl - task.r2tNext);
      const ttt = this.nextTtt;
      this.nextTtt = this.nextTtt === 0xfffffffe ? 1 : this.nextTtt + 1;
      task.r2ts.set(ttt, { offset: task.r2tNext, length, next: task.r2tNext, dataSN: 0 });
      const bhs = encodeR2T({ itt: task.itt, ttt, lun: task.lun, r2tSN: task.r2tSN++, bufferOffset: task.r2tNext, desiredLength: length }, this.seq());
      task.r2tNext += length;
      this.writePdu(bhs, null);
    }
    if (this.socket.writable) this.socket.uncork();
  }

  private onDataOut(pdu: DataOutPdu, bhs: Buffer): void {
    const task = this.tasks.get(pdu.itt);
    if (!task) {
      if (this.abortedItts.has(pdu.itt)) return; // data for a task we aborted or dropped
      this.reject(RejectReason.InvalidPduField, bhs);
      return;
    }
    if (task.state !== 'collecting' || !task.buf) { this.reject(RejectReason.ProtocolError, bhs); return; }
    const len = pdu.data.length;
    const off = pdu.bufferOffset;
    if (pdu.ttt === RESERVED_TAG) {
      // Unsolicited Data-Out (RFC 7143 §4.2.5.2).
      if (task.unsolicitedDone || off !== task.unsolicitedNext || off + len > task.unsolicitedEnd) {
        task.failure ??= 'UnexpectedUnsolicitedData';
        this.reject(RejectReason.ProtocolError, bhs);
        if (!pdu.final || task.unsolicitedDone) return;
        // The rejected PDU ended the initiator's unsolicited burst, so nothing more of it will come:
        // count the burst as settled (the task has failed and writes nothing) and let the task end
        // with CHECK CONDITION once any solicited data is in (RFC 7143 §11.17.1), instead of
        // waiting for data that will never arrive.
        task.unsolicitedDone = true;
        task.received += task.unsolicitedEnd - task.unsolicitedNext;
        task.unsolicitedNext = task.unsolicitedEnd;
      } else {
        if (pdu.dataSN !== task.unsolicitedDataSN) task.failure ??= DATASN_ERROR;
        task.unsolicitedDataSN++;
        pdu.data.copy(task.buf, off);
        task.unsolicitedNext += len;
        task.received += len;
        if (pdu.final) {
          task.unsolicitedDone = true;
          if (task.unsolicitedNext < task.unsolicitedEnd) {
            // The initiator ended its unsolicited burst early: solicit the gap.
            task.r2tNext = task.unsolicitedNext;
          }
        }
      }
    } else {
      const r = task.r2ts.get(pdu.ttt);
      if (!r || off !== r.next || off + len > r.offset + r.length) {
        this.reject(RejectReason.ProtocolError, bhs);
        return;
      }
      if (pdu.dataSN !== r.dataSN) task.failure ??= DATASN_ERROR;
      pdu.data.copy(task.buf, off);
      r.next += len;
      r.dataSN++;
      task.received += len;
      if (pdu.final || r.next === r.offset + r.length) {
        if (r.next !== r.offset + r.length) {
          // F bit before the requested length arrived: re-solicit the remainder.
          task.r2ts.delete(pdu.ttt);
          if (r.next < task.r2tNext) task.r2tNext = Math.min(task.r2tNext, r.next);
        } else {
          task.r2ts.delete(pdu.ttt);
        }
      }
    }
    if (task.received >= task.edtl && task.r2ts.size === 0 && (task.unsolicitedDone || task.unsolicitedNext >= task.unsolicitedEnd)) {
      this.execute(task);
    } else if (task.unsolicitedDone && task.r2ts.size < this.session!.params.maxOutstandingR2T && task.r2tNext < task.edtl) {
      this.issueR2Ts(task);
    }
  }

  private execute(task: Task): void {
    task.state = 'executing';
    const s = this.session!;
    if (task.failure) {
      this.finish(task, { status: ScsiStatus.CheckCondition, data: null, sense: buildFixedSense(task.failure) });
      return;
    }
    const req: ScsiRequest = {
      lun: task.lun, cdb: task.cdb, nexus: s.nexus!, taskTag: task.itt, attr: task.attr,
      expectedLength: task.edtl, isRead: task.read, isWrite: task.write, dataOut: task.write ? task.buf : null,
      holdData: true,
    };
    let r: ScsiResponse | Promise<ScsiResponse>;
    try {
      r = s.scsi!.submit(req);
    } catch (err) {
      this.log.error({ err }, 'SCSI layer threw');
      r = { status: ScsiStatus.CheckCondition, data: null, sense: buildFixedSense('InternalTargetFailure') };
    }
    if (r instanceof Promise) {
      task.done = r.then(
        (res) => this.finish(task, res),
        (err) => {
          this.log.error({ err }, 'SCSI layer rejected');
          this.finish(task, { status: ScsiStatus.CheckCondition, data: null, sense: buildFixedSense('InternalTargetFailure') });
        },
      );
    } else {
      this.finish(task, r);
    }
  }

  /** Send the outcome: Data-In (status in the last one when possible) or a SCSI Response. */
  private finish(task: Task, r: ScsiResponse): void {
    this.tasks.delete(task.itt);
    // The SCSI layer is done with the Data-Out once it has answered (buffer-pool.ts).
    if (task.pooled !== null) { this.pool.release(task.pooled); task.pooled = null; }
    if (!task.immediate) this.session?.taskDone();
    // A READ's view of the store stays locked until its Data-In is in the kernel (holdData).
    const release = r.release;
    if (task.aborted || this.closed) { release?.(); return; }
    const st = this.stats;
    st.commands++;
    // reads/writes count I/O the port actually served (GOOD), so the counters show which path
    // carries the I/O; a command refused by the ALUA gate counts in `commands` and `errors`.
    if (r.status === 0) {
      if (task.read) { st.reads++; if (r.data) st.readBytes += Math.min(r.data.length, task.edtl); }
      if (task.write) { st.writes++; st.writeBytes += task.edtl; }
    } else if (r.status !== ScsiStatus.ConditionMet) {
      st.errors++;
    }
    // Inside a turn the response leaves with the turn's writev (flush); outside one, now.
    if (this.turnLatencies !== null) {
      if (this.flushPending) this.turnLatencies.add(task.cls, task.startUs);
      else this.turnLatencies.latency.record(task.cls, task.startUs);
    }
    const edtl = task.edtl;
    let overflow = 0;
    let underflow = 0;
    let sendLen = 0;
    if (task.read && r.data && r.data.length > 0) {
      sendLen = Math.min(r.data.length, edtl);
      if (r.data.length > edtl) overflow = r.data.length - edtl;
      else underflow = edtl - r.data.length;
    } else if (task.write) {
      const used = r.dataOutLength ?? edtl;
      if (used > edtl) overflow = used - edtl;
      else underflow = edtl - used;
    } else if (r.data && r.data.length > 0) {
      // Data produced but the initiator asked for none (R bit clear): all of it is overflow.
      overflow = r.data.length;
    } else {
      underflow = edtl;
    }
    if (task.read && !task.write && r.data && r.data.length === 0) underflow = edtl;
    // A completion outside a turn (a replicated write the peer acknowledged, a file store's
    // write) is held until the end of the callback it completes in: the peer acknowledges a whole
    // batch of writes in one link chunk, and their responses then leave in one writev instead of
    // one send each (each send also wakes the initiator). No later: nextTick runs once this
    // callback's promise reactions are done, before the event loop moves on. Only while other
    // commands of this connection are in flight: the last one (QD1) leaves at once.
    if (!this.flushPending && !this.tickCorked && this.tasks.size > 0) {
      this.tickCorked = true;
      this.socket.cork();
      process.nextTick(this.tickUncork);
    }
    this.socket.cork();
    const statusInData = sendLen > 0 && r.status === ScsiStatus.Good && !r.sense;
    if (sendLen > 0) {
      const data = r.data!;
      const lim = this.sendLimit;
      let dataSN = 0;
      for (let off = 0; off < sendLen; off += lim) {
        const n = Math.min(lim, sendLen - off);
        const last = off + n >= sendLen;
        const withStatus = last && statusInData;
        const bhs = encodeDataIn({
          itt: task.itt, lun: task.lun, final: last, status: withStatus ? r.status : undefined, dataSN: dataSN++,
          bufferOffset: off, length: n, overflow: withStatus ? overflow : 0, underflow: withStatus ? underflow : 0,
        }, withStatus ? this.seqAdvance() : this.seq());
        this.writePdu(bhs, data.subarray(off, off + n), last ? release : undefined);
      }
      if (!statusInData) this.sendScsiResponse(task, r, overflow, underflow, dataSN);
    } else {
      release?.();
      this.sendScsiResponse(task, r, overflow, underflow, 0);
    }
    this.socket.uncork();
    this.backpressure();
  }

  private sendScsiResponse(task: Task, r: ScsiResponse, overflow: number, underflow: number, expDataSN: number): void {
    const sense = r.sense;
    const bhs = encodeScsiResponse({
      itt: task.itt, status: r.status, overflow, underflow, expDataSN, senseLength: sense ? sense.length : 0,
    }, this.seqAdvance());
    if (sense) {
      // RFC 7143 §11.4.7: SenseLength (2 bytes) then the sense data.
      const seg = Buffer.allocUnsafe(2 + sense.length);
      seg.writeUInt16BE(sense.length, 0);
      sense.copy(seg, 2);
      this.writePdu(bhs, seg);
    } else {
      this.writePdu(bhs, null);
    }
  }

  private onNopOut(pdu: NopOutPdu, bhs: Buffer): void {
    if (pdu.itt === RESERVED_TAG) {
      // Either the answer to our ping (TTT echoes it) or a ping needing no answer; must be immediate.
      if (pdu.ttt !== RESERVED_TAG && pdu.ttt === this.pingTtt) this.clearPing();
      if (!pdu.immediate && pdu.ttt === RESERVED_TAG) this.reject(RejectReason.ProtocolError, bhs);
      return;
    }
    if (pdu.ttt !== RESERVED_TAG) {
      if (pdu.ttt === this.pingTtt) this.clearPing();
    }
    const ping = pdu.data.length > this.sendLimit ? pdu.data.subarray(0, this.sendLimit) : pdu.data;
    const copy = Buffer.from(ping); // echo data outlives the chunk it arrived in
    this.sequenced(pdu.immediate, pdu.cmdSN, () => {
      const out = encodeNopIn(pdu.itt, RESERVED_TAG, pdu.lun, copy.length, this.seqAdvance());
      if (!pdu.immediate) this.session!.taskDone();
      this.writePdu(out, copy.length ? copy : null);
    });
  }

  private onText(pdu: TextRequestPdu, bhs: Buffer): void {
    const data = Buffer.from(pdu.data);
    this.sequenced(pdu.immediate, pdu.cmdSN, () => {
      if (!pdu.immediate) this.session!.taskDone();
      if (pdu.cont) {
        // Long text requests are not expected in practice; refuse instead of buffering unboundedly.
        this.reject(RejectReason.CommandNotSupported, bhs);
        return;
      }
      const parsed = parseText(data);
      if (parsed.kind === 'error') { this.reject(RejectReason.ProtocolError, bhs); return; }
      const reply: TextPair[] = [];
      for (const { key, value } of parsed.pairs) {
        if (key === 'SendTargets') reply.push(...this.sendTargets(value));
        else reply.push({ key, value: 'NotUnderstood' });
      }
      let out = encodeText(reply);
      if (out.length > this.sendLimit) out = out.subarray(0, this.sendLimit - (this.sendLimit % 4));
      const rsp = encodeTextResponse({ final: true, cont: false, lun: 0, itt: pdu.itt, ttt: RESERVED_TAG, dataLength: out.length }, this.seqAdvance());
      this.writePdu(rsp, out.length ? out : null);
    });
  }

  /** SendTargets (RFC 7143 Appendix C). "All" only in discovery sessions. */
  private sendTargets(value: string): TextPair[] {
    const s = this.session!;
    const names = value === 'All' && s.type === 'Discovery'
      ? [...this.server.targets.keys()]
      : value === '' || value === 'All' ? (s.targetConfig ? [s.targetConfig.name] : []) : [value].filter((n) => this.server.targets.has(n));
    const out: TextPair[] = [];
    for (const name of names) {
      const t = this.server.targets.get(name)!;
      const acl = t.config.acl;
      if (acl && acl.length && !acl.includes(s.initiatorName)) continue;
      out.push({ key: 'TargetName', value: name });
      for (const p of this.server.portals) {
        let host = p.host;
        if (host === '0.0.0.0' || host === '::') host = this.socket.localAddress ?? '127.0.0.1';
        host = host.replace(/^::ffff:/, '');
        if (host.includes(':')) host = `[${host}]`;
        out.push({ key: 'TargetAddress', value: `${host}:${p.port},${p.tpgt}` });
      }
    }
    return out;
  }

  private onLogout(pdu: LogoutRequestPdu, _bhs: Buffer): void {
    this.sequenced(pdu.immediate, pdu.cmdSN, () => {
      if (!pdu.immediate) this.session!.taskDone();
      let response = 0;
      if (pdu.reason === 2) response = 2; // connection recovery: not supported at ERL 0
      else if (pdu.reason === 1 && pdu.cid !== this.cid && ![...this.session!.connections].some((c) => c.cid === pdu.cid)) response = 1;
      this.state = ConnState.InLogout;
      const p = this.session!.params;
      const out = encodeLogoutResponse(pdu.itt, response, p.defaultTime2Wait, p.defaultTime2Retain, this.seqAdvance());
      this.writePdu(out, null);
      if (response !== 0) { this.state = ConnState.LoggedIn; return; }
      this.log.info({ reason: pdu.reason }, 'logout');
      if (pdu.reason === 0) this.server.closeSession(this.session!, 'logout', this);
      else if (pdu.cid !== this.cid) {
        for (const c of this.session!.connections) if (c.cid === pdu.cid) c.drop('logged out by another connection');
      }
      if (pdu.reason === 0 || pdu.cid === this.cid) this.closeAfterFlush('logout');
    });
  }

  // ---------------------------------------------------------------------------------------
  // Task management (RFC 7143 §11.5, SAM-5 §7)

  private onTaskMgmt(pdu: TaskMgmtRequestPdu, _bhs: Buffer): void {
    const s = this.session!;
    const run = () => {
      if (!pdu.immediate) s.taskDone();
      void this.taskMgmt(pdu).then((response) => {
        if (this.closed) return;
        this.writePdu(encodeTaskMgmtResponse(pdu.itt, response, this.seqAdvance()), null);
        if (pdu.func === TmfFunction.TargetColdReset && response === TmfResponse.FunctionComplete) {
          // RFC 7143 §11.5.1: after a cold reset the target drops all its connections.
          setImmediate(() => this.server.dropTargetConnections(s.targetConfig?.name ?? '', 'target cold reset'));
        }
      });
    };
    this.sequenced(pdu.immediate, pdu.cmdSN, run);
  }

  private async taskMgmt(pdu: TaskMgmtRequestPdu): Promise<number> {
    const s = this.session!;
    const scsi = s.scsi;
    if (!scsi || s.type === 'Discovery') return TmfResponse.Rejected;
    const luExists = scsi.luns.has(pdu.lun);
    const waitFor: Promise<void>[] = [];
    const abortWhere = (pred: (t: Task, c: Connection) => boolean, conns: Iterable<Connection>) => {
      for (const c of conns) {
        for (const t of [...c.tasks.values()]) {
          if (t.itt === pdu.itt && c === this) continue;
          if (pred(t, c)) { const w = c.abortTask(t); if (w) waitFor.push(w); }
        }
      }
    };
    this.log.info({ func: pdu.func, lun: pdu.lun, rtt: pdu.referencedTaskTag }, 'task management');
    switch (pdu.func) {
      case TmfFunction.AbortTask: {
        if (!luExists) return TmfResponse.LunDoesNotExist;
        const t = this.tasks.get(pdu.referencedTaskTag);
        if (t && t.lun === pdu.lun) {
          const w = this.abortTask(t);
          if (w) await w;
          return TmfResponse.FunctionComplete;
        }
        // RFC 7143 §11.5.1 b/c: a task we do not know. If its command has not arrived yet (RefCmdSN
        // inside the CmdSN window and before this TMF), take that CmdSN as received so the late
        // command is ignored, and report the abort done. Outside the window the command has
        // already completed (or never existed): "Task does not exist", and the initiator keeps
        // the status it may already have.
        if (!snLt(pdu.refCmdSN, s.expCmdSN) && !snGt(pdu.refCmdSN, s.maxCmdSN) && snLt(pdu.refCmdSN, pdu.cmdSN)) {
          s.consumeCmdSN(pdu.refCmdSN);
          return TmfResponse.FunctionComplete;
        }
        return TmfResponse.TaskDoesNotExist;
      }
      case TmfFunction.AbortTaskSet:
        if (!luExists) return TmfResponse.LunDoesNotExist;
        abortWhere((t) => t.lun === pdu.lun, s.connections);
        await Promise.allSettled(waitFor);
        return TmfResponse.FunctionComplete;
      case TmfFunction.ClearTaskSet: {
        if (!luExists) return TmfResponse.LunDoesNotExist;
        // Clears the task set of every I_T nexus (SAM-5 §7.4).
        abortWhere((t) => t.lun === pdu.lun, this.server.connectionsOf(s.targetConfig!.name));
        await Promise.allSettled(waitFor);
        return TmfResponse.FunctionComplete;
      }
      case TmfFunction.ClearAca:
        if (!luExists) return TmfResponse.LunDoesNotExist;
        return TmfResponse.FunctionComplete; // NACA is not supported, so no ACA can exist
      case TmfFunction.LogicalUnitReset: {
        if (!luExists) return TmfResponse.LunDoesNotExist;
        abortWhere((t) => t.lun === pdu.lun, this.server.connectionsOf(s.targetConfig!.name));
        await Promise.allSettled(waitFor);
        // On a replicated LU this waits until the other array of the pair has reset too (its
        // unit attention is set before FUNCTION COMPLETE, so every path reports it next).
        const done = scsi.luns.get(pdu.lun)!.logicalUnitReset(s.nexus!);
        if (done) await done.catch((e: unknown) => this.log.warn({ err: e instanceof Error ? e.message : String(e), lun: pdu.lun }, 'logical unit reset: peer array not reached'));
        return TmfResponse.FunctionComplete;
      }
      case TmfFunction.TargetWarmReset:
      case TmfFunction.TargetColdReset:
        abortWhere(() => true, this.server.connectionsOf(s.targetConfig!.name));
        await Promise.allSettled(waitFor);
        await scsi.reset(s.nexus!);
        return TmfResponse.FunctionComplete;
      case TmfFunction.TaskReassign:
        return TmfResponse.ReassignmentNotSupported;
      default:
        return TmfResponse.NotSupported;
    }
  }

  /** Abort this connection's tasks for `lun` if its session's I_T nexus is one `which` selects (PREEMPT AND ABORT). */
  abortTasksOf(lun: number, which: (n: Nexus) => boolean): void {
    const n = this.session?.nexus;
    if (!n || !which(n)) return;
    for (const t of [...this.tasks.values()]) if (t.lun === lun) void this.abortTask(t);
  }

  /** Abort one task of this connection; resolves when any in-flight execution has settled. */
  abortTask(t: Task): Promise<void> | null {
    t.aborted = true;
    this.tasks.delete(t.itt);
    this.abortedItts.add(t.itt);
    if (this.abortedItts.size > 4096) this.abortedItts.delete(this.abortedItts.values().next().value!);
    // Still collecting Data-Out: no SCSI Response will come from finish(), so free its window slot
    // here (one held for an earlier CmdSN has no slot yet; startTask gives it back).
    if (t.started && t.state === 'collecting' && !t.immediate) this.session?.taskDone();
    // Executing: tell the LU, so a command whose work outlives its task (SANITIZE) settles now.
    const s = this.session;
    if (t.state === 'executing' && s?.nexus) s.scsi?.luns.get(t.lun)?.abortTask(s.nexus.key, t.itt);
    return t.done;
  }

  // ---------------------------------------------------------------------------------------
  // Send path

  private reject(reason: RejectReason, bhs: Buffer): void {
    if (!this.session) return;
    const out = encodeReject(reason, 0, this.seqAdvance());
    // The data segment of a Reject is the header of the rejected PDU (RFC 7143 §11.17).
    this.writePdu(out, Buffer.from(bhs.subarray(0, BHS_LENGTH)));
  }

  /**
   * Write one PDU (digests as negotiated). Callers batch with cork/uncork. `sent`: called once
   * the data segment has left for the kernel, or will never be sent (closed socket; Node also
   * calls write callbacks, with an error, for writes a destroyed socket drops).
   */
  writePdu(bhs: Buffer, data: Buffer | null, sent?: () => void): void {
    this.writeRaw(bhs, data, this.headerDigest, this.dataDigest, sent);
  }

  private writeRaw(bhs: Buffer, data: Buffer | null, hd: boolean, dd: boolean, sent?: () => void): void {
    if (this.closed || !this.socket.writable) { sent?.(); return; }
    const sock = this.socket;
    sock.write(bhs);
    if (hd) sock.write(u32le(crc32c(bhs)));
    if (!data || data.length === 0) {
      sent?.();
    } else {
      sock.write(data, sent);
      const pad = padLength(data.length);
      if (pad) sock.write(PAD[pad]);
      if (dd) {
        let c = crc32c(data);
        if (pad) c = crc32c(PAD[pad], c);
        sock.write(u32le(c));
      }
    }
  }

  /** Bounded memory: stop reading while the peer is not draining our responses. */
  private backpressure(): void {
    if (this.socket.writableLength > HIGH_WATER) this.socket.pause();
  }

  /** Asynchronous Message: the target asks the initiator to log out (RFC 7143 §11.9.1 event 1). */
  requestLogout(seconds: number): void {
    if (this.state !== ConnState.LoggedIn) return;
    this.state = ConnState.LogoutRequested;
    this.writePdu(encodeAsyncMessage({ lun: 0, event: 1, param3: seconds }, this.seq()), null);
  }

  // ---------------------------------------------------------------------------------------
  // Liveness: target NOP-In pings on an idle connection (RFC 7143 §11.19)

  private armIdle(): void {
    const iv = this.server.tuning.nopInterval;
    if (iv <= 0 || this.state !== ConnState.LoggedIn) return;
    if (this.idleTimer) { this.idleTimer.refresh(); return; }
    this.idleTimer = setTimeout(() => this.ping(), iv * 1000);
    this.idleTimer.unref();
  }

  private ping(): void {
    if (this.closed || this.state !== ConnState.LoggedIn || this.pingTimer) return;
    this.pingTtt = this.nextTtt;
    this.nextTtt = this.nextTtt === 0xfffffffe ? 1 : this.nextTtt + 1;
    this.writePdu(encodeNopIn(RESERVED_TAG, this.pingTtt, 0, 0, this.seq()), null);
    this.pingTimer = setTimeout(() => this.drop('NOP-In ping not answered'), this.server.tuning.nopTimeout * 1000);
    this.pingTimer.unref();
  }

  private clearPing(): void {
    if (this.pingTimer) clearTimeout(this.pingTimer);
    this.pingTimer = null;
    this.pingTtt = 0;
    this.idleTimer?.refresh();
  }

  // ---------------------------------------------------------------------------------------
  // Teardown

  private closeAfterFlush(why: string): void {
    if (this.closed) return;
    this.log.debug({ why }, 'closing connection');
    this.socket.end();
    this.cleanup(why);
  }

  drop(why: string): void {
    if (this.closed) return;
    this.log.info({ why }, 'dropping connection');
    this.socket.destroy();
    this.cleanup(why);
  }

  private cleanup(why: string): void {
    if (this.closed) return;
    this.closed = true;
    this.state = ConnState.CleanupWait;
    for (const t of this.tasks.values()) t.aborted = true;
    this.tasks.clear();
    for (const tm of [this.idleTimer, this.pingTimer, this.loginTimer]) if (tm) clearTimeout(tm);
    this.server.connectionClosed(this, why);
    this.state = ConnState.Free;
  }
}

function u32le(v: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32LE(v >>> 0, 0);
  return b;
}
