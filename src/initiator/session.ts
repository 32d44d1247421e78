/**
 * An iSCSI session on one connection (RFC 7143 §4, ErrorRecoveryLevel 0): login, then many SCSI
 * commands in flight at once. It keeps the CmdSN window the target grants (a command waits until
 * CmdSN ≤ MaxCmdSN, §4.2.2.1), allocates Initiator Task Tags, sends immediate and unsolicited data
 * as negotiated (ImmediateData, InitialR2T, FirstBurstLength) and solicited data per R2T, every
 * Data-Out at most the target's MaxRecvDataSegmentLength; it assembles Data-In into the caller's
 * buffer, answers NOP-In pings, and logs out. Every command has a timeout; when the connection
 * goes, every pending command fails at once with an InitiatorError('connection-lost').
 */
import { randomBytes } from 'node:crypto';
import { TargetOp, TmfFunction, RESERVED_TAG } from '../../protocol/iscsi/pdu.ts';
import {
  encodeDataOut, encodeLoginRequest, encodeLogoutRequest, encodeNopOut, encodeScsiCommand, encodeTaskMgmtRequest,
  encodeTextRequest, LogoutReason, TaskAttr,
} from '../../protocol/iscsi/initiator-pdu.ts';
import type { DataInIn, LoginResponseIn, R2TIn, ScsiResponseIn, TargetPdu } from '../../protocol/iscsi/initiator-pdu.ts';
import { encodeText, parseText } from '../../protocol/iscsi/text.ts';
import type { TextPair } from '../../protocol/iscsi/text.ts';
import { InitiatorConnection } from './connection.ts';
import { dataOutPieces, planWrite } from './data-out.ts';
import { InitiatorError, RejectedError } from './errors.ts';
import { LoginExchange } from './login.ts';
import type { LoginRequestSpec, SessionParams } from './login.ts';

export const DEFAULT_INITIATOR_NAME = 'iqn.2026-11.dev.arraysim:initiator';

export interface SessionOptions extends Omit<LoginRequestSpec, 'initiatorName'> {
  host: string;
  port: number;
  initiatorName?: string;
  /** 12 hex digits; default a random ISID of type "random" (RFC 7143 §11.12.5, T=10b). */
  isid?: string;
  /** Per command, unless the command says otherwise (ms). Default 30 s. */
  commandTimeoutMs?: number;
  /** Connect plus login (ms). Default 15 s. */
  loginTimeoutMs?: number;
}

/** One SCSI command for Session.command. */
export interface ScsiRequest {
  lun: number;
  cdb: Buffer;
  /** Data the command sends (WRITE, parameter lists). */
  dataOut?: Buffer;
  /** Data the command receives: a length to allocate, or the caller's buffer to fill. */
  dataIn?: number | Buffer;
  attr?: TaskAttr;
  timeoutMs?: number;
}

/** What came back for one SCSI command (RFC 7143 §11.4); the status is not judged here. */
export interface ScsiResponse {
  /** SCSI status byte (SAM-5 §5.3.1). */
  status: number;
  /** iSCSI Response: 0 = Command Completed at Target, 1 = Target Failure. */
  response: number;
  /** The received data: a view of the caller's buffer, as long as what the target sent. */
  data: Buffer;
  /** Sense data, when the target sent any. */
  sense: Buffer | null;
  /** Residual count with its kind (RFC 7143 §11.4.5). */
  residual: { kind: 'none' | 'underflow' | 'overflow'; count: number };
  /** How the data moved: R2Ts answered, Data-In PDUs received. */
  r2ts: number;
  dataIns: number;
}

interface Task {
  itt: number;
  cmdSN: number;
  req: ScsiRequest;
  edtl: number;
  buf: Buffer | null;
  received: number;
  r2ts: number;
  dataIns: number;
  /** performance.now() after which the command has timed out, and the timeout it came from. */
  deadline: number;
  timeoutMs: number;
  /** Timed out: an ABORT TASK is on its way; late PDUs for it are dropped. */
  abandoned: boolean;
  resolve(r: ScsiResponse): void;
  reject(e: Error): void;
}

interface Waiter {
  resolve(p: TargetPdu): void;
  reject(e: Error): void;
}

const EMPTY = Buffer.alloc(0);

/** Serial number arithmetic on 32 bits (RFC 1982, used by RFC 7143 §4.2.2.1). */
function snLte(a: number, b: number): boolean {
  return ((b - a) | 0) >= 0;
}

export class Session {
  private cmdSN = 1;
  private expStatSN = 0;
  private maxCmdSN = 1;
  private expCmdSN = 1;
  private nextItt = 1;
  private readonly tasks = new Map<number, Task>();
  private readonly others = new Map<number, Waiter>();
  /** Commands waiting for the CmdSN window to open. */
  private readonly queued: Task[] = [];
  private closedError: InitiatorError | null = null;
  private tsih = 0;
  /** PDUs counted, for tests and benches. */
  readonly counters = { commands: 0, dataOut: 0, r2t: 0, dataIn: 0, dataInGathered: 0, nopInAnswered: 0, windowWaits: 0, peakInFlight: 0 };
  params!: SessionParams;
  readonly initiatorName: string;
  readonly isid: string;
  /** Called once when the session ends, with why. */
  onClose?: (e: InitiatorError) => void;

  private constructor(readonly conn: InitiatorConnection, readonly options: SessionOptions) {
    this.initiatorName = options.initiatorName ?? DEFAULT_INITIATOR_NAME;
    // ISID type 10b "random" (RFC 7143 §11.12.5): 0x80 | 6 random bits, then 5 random bytes, so that
    // two sessions from this initiator name never reinstate (and close) each other by accident.
    this.isid = options.isid ?? Buffer.concat([Buffer.from([0x80 | (randomBytes(1)[0] & 0x3f)]), randomBytes(5)]).toString('hex');
  }

  get closed(): boolean {
    return this.closedError !== null;
  }

  get inFlight(): number {
    return this.tasks.size;
  }

  /** Connect and log in; rejects with LoginFailedError, or InitiatorError('authentication-failed' | 'negotiation-failed' | 'connect-failed' | …). */
  static async login(o: SessionOptions): Promise<Session> {
    const maxRecv = o.offer?.maxRecvDataSegmentLength ?? 262144;
    const conn = await InitiatorConnection.connect(o.host, o.port, { maxRecvDataSegmentLength: maxRecv, timeoutMs: o.loginTimeoutMs });
    const s = new Session(conn, o);
    conn.attach({ pdu: (p) => s.onPdu(p), closed: (e) => s.onConnectionClosed(e) });
    conn.gatherInto = (size, bhs) => s.dataInTarget(size, bhs);
    try {
      await s.runLogin();
    } catch (e) {
      conn.close();
      throw e;
    }
    return s;
  }

  private async runLogin(): Promise<void> {
    const ex = new LoginExchange({ ...this.options, initiatorName: this.initiatorName });
    const timeoutMs = this.options.loginTimeoutMs ?? 15_000;
    const deadline = Date.now() + timeoutMs;
    let msg = ex.first();
    const itt = this.allocItt();
    for (;;) {
      const data = encodeText(msg.pairs);
      const bhs = encodeLoginRequest({
        transit: msg.transit, csg: msg.csg, nsg: msg.nsg, isid: this.isid, tsih: this.tsih, itt, cid: 0,
        cmdSN: this.cmdSN, expStatSN: this.expStatSN, dataLength: data.length,
      });
      // A Login Response may come in pieces (C bit, §11.13.1): ask for the rest with empty requests.
      let resp = await this.exchange(itt, bhs, data, deadline - Date.now()) as LoginResponseIn;
      let text = Buffer.from(resp.data);
      while (resp.cont) {
        const more = encodeLoginRequest({
          transit: false, csg: msg.csg, nsg: msg.csg, isid: this.isid, tsih: this.tsih, itt, cid: 0,
          cmdSN: this.cmdSN, expStatSN: this.expStatSN, dataLength: 0,
        });
        resp = await this.exchange(itt, more, EMPTY, deadline - Date.now()) as LoginResponseIn;
        text = Buffer.concat([text, resp.data]);
      }
      if (resp.tsih) this.tsih = resp.tsih;
      const parsed = parseText(text);
      if (parsed.kind === 'error') throw new InitiatorError('protocol-error', `login response text: ${parsed.reason}`);
      const next = ex.next({ ...resp, pairs: parsed.pairs });
      if (next.kind === 'fail') throw next.error;
      if (next.kind === 'done') {
        this.params = next.params;
        this.conn.setDigests(next.params.headerDigest, next.params.dataDigest);
        return;
      }
      msg = next.message;
    }
  }

  /** Send a PDU that the target answers with one PDU of the same ITT. */
  private exchange(itt: number, bhs: Buffer, data: Buffer, timeoutMs: number): Promise<TargetPdu> {
    if (this.closedError) return Promise.reject(this.closedError);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.others.delete(itt);
        reject(new InitiatorError('timeout', `no answer from the target within ${timeoutMs} ms`));
      }, Math.max(1, timeoutMs));
      this.others.set(itt, {
        resolve: (p) => { clearTimeout(timer); this.others.delete(itt); resolve(p); },
        reject: (e) => { clearTimeout(timer); this.others.delete(itt); reject(e); },
      });
      this.conn.send(bhs, data);
    });
  }

  private allocItt(): number {
    for (;;) {
      const itt = this.nextItt;
      this.nextItt = (this.nextItt + 1) >>> 0;
      if (itt === RESERVED_TAG || this.tasks.has(itt) || this.others.has(itt)) continue;
      return itt;
    }
  }

  // ---- SCSI commands ---------------------------------------------------------------------------

  command(req: ScsiRequest): Promise<ScsiResponse> {
    if (this.closedError) return Promise.reject(this.closedError);
    const edtl = req.dataOut ? req.dataOut.length : typeof req.dataIn === 'number' ? req.dataIn : req.dataIn?.length ?? 0;
    if (req.dataOut && req.dataIn !== undefined) return Promise.reject(new InitiatorError('protocol-error', 'bidirectional commands are not supported'));
    return new Promise((resolve, reject) => {
      const t: Task = {
        itt: this.allocItt(), cmdSN: 0, req, edtl, received: 0, r2ts: 0, dataIns: 0, abandoned: false, deadline: 0, timeoutMs: 0,
        buf: req.dataIn === undefined ? null : typeof req.dataIn === 'number' ? Buffer.allocUnsafe(req.dataIn) : req.dataIn,
        resolve, reject,
      };
      this.tasks.set(t.itt, t);
      if (this.tasks.size > this.counters.peakInFlight) this.counters.peakInFlight = this.tasks.size;
      t.timeoutMs = req.timeoutMs ?? this.options.commandTimeoutMs ?? 30_000;
      t.deadline = performance.now() + t.timeoutMs;
      this.armSweep(t.deadline);
      if (this.queued.length === 0 && snLte(this.cmdSN, this.maxCmdSN)) this.issue(t);
      else {
        this.counters.windowWaits++;
        this.queued.push(t);
      }
    });
  }

  private issue(t: Task): void {
    const p = this.params;
    const out = t.req.dataOut;
    t.cmdSN = this.cmdSN;
    this.cmdSN = (this.cmdSN + 1) >>> 0;
    const { immediate, unsolicitedEnd, final } = out ? planWrite(p, out.length) : { immediate: 0, unsolicitedEnd: 0, final: true };
    this.counters.commands++;
    this.conn.send(encodeScsiCommand({
      final, read: t.buf !== null, write: !!out, attr: t.req.attr ?? TaskAttr.Simple,
      lun: t.req.lun, itt: t.itt, edtl: t.edtl, cmdSN: t.cmdSN, expStatSN: this.expStatSN, cdb: t.req.cdb, dataLength: immediate,
    }), immediate ? out!.subarray(0, immediate) : undefined);
    if (out && unsolicitedEnd > immediate) this.sendData(t, RESERVED_TAG, immediate, unsolicitedEnd - immediate);
  }

  /** Data-Out PDUs for [offset, offset+length), each ≤ the target's MaxRecvDataSegmentLength; DataSN from 0 per sequence (§11.7.5). */
  private sendData(t: Task, ttt: number, offset: number, length: number): void {
    const out = t.req.dataOut!;
    for (const d of dataOutPieces(offset, length, this.params.maxSendDataSegmentLength)) {
      this.counters.dataOut++;
      this.conn.send(encodeDataOut({
        final: d.final, lun: t.req.lun, itt: t.itt, ttt, expStatSN: this.expStatSN, dataSN: d.dataSN, bufferOffset: d.offset, dataLength: d.length,
      }), out.subarray(d.offset, d.offset + d.length));
    }
  }

  private drainQueue(): void {
    while (this.queued.length && snLte(this.cmdSN, this.maxCmdSN)) this.issue(this.queued.shift()!);
  }

  /**
   * One timer for all command timeouts, set for the earliest deadline (a timer per command cost
   * measurably on 4 KiB I/O at QD32); when it fires it times out what is due and re-arms.
   */
  private sweepTimer: NodeJS.Timeout | null = null;
  private sweepAt = Infinity;

  private armSweep(deadline: number): void {
    if (deadline >= this.sweepAt || this.closedError) return;
    if (this.sweepTimer) clearTimeout(this.sweepTimer);
    this.sweepAt = deadline;
    this.sweepTimer = setTimeout(() => this.sweep(), Math.max(0, deadline - performance.now()));
  }

  private sweep(): void {
    this.sweepTimer = null;
    this.sweepAt = Infinity;
    const now = performance.now();
    let next = Infinity;
    for (const t of [...this.tasks.values()]) {
      if (t.abandoned) continue;
      if (t.deadline <= now) this.timeOut(t, t.timeoutMs);
      else if (t.deadline < next) next = t.deadline;
    }
    if (next < Infinity) this.armSweep(next);
  }

  private timeOut(t: Task, ms: number): void {
    const q = this.queued.indexOf(t);
    if (q >= 0) {
      this.queued.splice(q, 1);
      this.tasks.delete(t.itt);
    } else {
      // Sent: abort it on the target (SAM-5 §7.2 ABORT TASK) and keep its ITT until that is answered.
      t.abandoned = true;
      this.taskManagement(TmfFunction.AbortTask, t.req.lun, t.itt, t.cmdSN)
        .catch(() => undefined)
        .finally(() => this.tasks.delete(t.itt));
    }
    t.reject(new InitiatorError('timeout', `SCSI command 0x${t.req.cdb[0].toString(16).padStart(2, '0')} on LUN ${t.req.lun} timed out after ${ms} ms`));
  }

  private finishTask(t: Task, status: number, response: number, sense: Buffer | null, residual: ScsiResponse['residual']): void {
    this.tasks.delete(t.itt);
    if (t.abandoned) return;
    const data = t.buf ? t.buf.subarray(0, Math.min(t.received, t.buf.length)) : EMPTY;
    t.resolve({ status, response, data, sense, residual, r2ts: t.r2ts, dataIns: t.dataIns });
  }

  private failTask(t: Task, e: Error): void {
    this.tasks.delete(t.itt);
    if (!t.abandoned) t.reject(e);
  }

  // ---- Other requests --------------------------------------------------------------------------

  /** Task management (RFC 7143 §11.5); resolves with the TMF response code. */
  async taskManagement(func: TmfFunction, lun: number, referencedTaskTag = RESERVED_TAG, refCmdSN = this.cmdSN): Promise<number> {
    const itt = this.allocItt();
    const r = await this.exchange(itt, encodeTaskMgmtRequest({
      func, lun, itt, referencedTaskTag, cmdSN: this.cmdSN, expStatSN: this.expStatSN, refCmdSN,
    }), EMPTY, this.options.commandTimeoutMs ?? 30_000);
    if (r.op !== TargetOp.TaskMgmtResponse) throw new InitiatorError('protocol-error', 'unexpected answer to a task management request');
    return r.response;
  }

  /** A Text exchange (RFC 7143 §11.10), following continuations; returns the target's keys in order. */
  async text(pairs: TextPair[]): Promise<TextPair[]> {
    const itt = this.allocItt();
    let data = encodeText(pairs);
    let ttt = RESERVED_TAG;
    const got: Buffer[] = [];
    for (;;) {
      const r = await this.exchange(itt, encodeTextRequest({ final: true, itt, ttt, cmdSN: this.cmdSN, expStatSN: this.expStatSN, dataLength: data.length }), data, this.options.commandTimeoutMs ?? 30_000);
      if (r.op !== TargetOp.TextResponse) throw new InitiatorError('protocol-error', 'unexpected answer to a text request');
      got.push(Buffer.from(r.data));
      if (r.final && !r.cont) break;
      ttt = r.ttt;
      data = EMPTY;
    }
    const parsed = parseText(Buffer.concat(got));
    if (parsed.kind === 'error') throw new InitiatorError('protocol-error', `text response: ${parsed.reason}`);
    return parsed.pairs;
  }

  /** SendTargets (RFC 7143 Appendix C): target names with their addresses. */
  async sendTargets(what = 'All'): Promise<{ name: string; addresses: string[] }[]> {
    const out: { name: string; addresses: string[] }[] = [];
    for (const { key, value } of await this.text([{ key: 'SendTargets', value: what }])) {
      if (key === 'TargetName') out.push({ name: value, addresses: [] });
      else if (key === 'TargetAddress' && out.length) out[out.length - 1].addresses.push(value);
    }
    return out;
  }

  /** A NOP-Out ping answered by a NOP-In (RFC 7143 §11.18); resolves with the round trip in ms. */
  async ping(): Promise<number> {
    const itt = this.allocItt();
    const t0 = performance.now();
    await this.exchange(itt, encodeNopOut({ itt, ttt: RESERVED_TAG, cmdSN: this.cmdSN, expStatSN: this.expStatSN, dataLength: 0 }), EMPTY, this.options.commandTimeoutMs ?? 30_000);
    return performance.now() - t0;
  }

  /** Log out (close the session, RFC 7143 §11.14) and close the connection. */
  async logout(): Promise<void> {
    if (this.closedError) return;
    const itt = this.allocItt();
    try {
      await this.exchange(itt, encodeLogoutRequest({ reason: LogoutReason.CloseSession, itt, cid: 0, cmdSN: this.cmdSN, expStatSN: this.expStatSN }), EMPTY, 5_000);
    } finally {
      this.close();
    }
  }

  /** Drop the connection now; pending commands fail with 'session-closed'. */
  close(): void {
    this.conn.close();
  }

  // ---- Receiving -------------------------------------------------------------------------------

  private onPdu(p: TargetPdu): void {
    this.updateWindow(p);
    switch (p.op) {
      case TargetOp.DataIn: return this.onDataIn(p);
      case TargetOp.ScsiResponse: return this.onScsiResponse(p);
      case TargetOp.R2T: return this.onR2T(p);
      case TargetOp.NopIn:
        if (p.ttt !== RESERVED_TAG) {
          // A ping from the target (RFC 7143 §11.19.1): echo its TTT, CmdSN not advanced.
          this.counters.nopInAnswered++;
          this.conn.send(encodeNopOut({ itt: RESERVED_TAG, ttt: p.ttt, lun: p.lun, cmdSN: this.cmdSN, expStatSN: this.expStatSN, dataLength: 0 }));
        }
        if (p.itt !== RESERVED_TAG) this.others.get(p.itt)?.resolve(p);
        return;
      case TargetOp.Reject: {
        const itt = p.rejectedItt;
        const t = itt === null ? undefined : this.tasks.get(itt);
        if (t) this.failTask(t, new RejectedError(p.reason));
        else if (itt !== null) this.others.get(itt)?.reject(new RejectedError(p.reason));
        return;
      }
      case TargetOp.AsyncMessage:
        // AsyncEvent 1: the target asks for a logout (RFC 7143 §11.9.1); 2/3: it will drop us.
        if (p.event === 1) void this.logout().catch(() => undefined);
        return;
      default:
        this.others.get(p.itt)?.resolve(p);
    }
  }

  /** ExpStatSN, ExpCmdSN and MaxCmdSN from any PDU that carries them (RFC 7143 §4.2.2.1, §4.2.2.2). */
  private updateWindow(p: TargetPdu): void {
    const carriesStatSN = p.op === TargetOp.ScsiResponse || (p.op === TargetOp.DataIn && p.statusPresent)
      || p.op === TargetOp.NopIn || p.op === TargetOp.TextResponse || p.op === TargetOp.LoginResponse
      || p.op === TargetOp.LogoutResponse || p.op === TargetOp.TaskMgmtResponse || p.op === TargetOp.AsyncMessage || p.op === TargetOp.Reject;
    if (carriesStatSN && !(p.op === TargetOp.LoginResponse && p.statusClass !== 0)) {
      if (snLte(this.expStatSN, p.statSN + 1)) this.expStatSN = (p.statSN + 1) >>> 0;
    }
    if (p.op === TargetOp.LoginResponse) {
      // The first Login Response sets the window (§11.13): ExpCmdSN is where our numbering starts.
      if (p.statusClass === 0) { this.expCmdSN = p.expCmdSN; this.maxCmdSN = p.maxCmdSN; }
      return;
    }
    // §4.2.2.1: MaxCmdSN - ExpCmdSN < -1 means the values are to be ignored.
    if (((p.maxCmdSN - p.expCmdSN) | 0) < -1) return;
    if (snLte(this.expCmdSN, p.expCmdSN)) this.expCmdSN = p.expCmdSN;
    if (snLte(this.maxCmdSN, p.maxCmdSN)) this.maxCmdSN = p.maxCmdSN;
    if (this.queued.length) this.drainQueue();
  }

  /**
   * A Data-In segment that straddles TCP chunks is gathered straight into the caller's buffer at
   * its Buffer Offset (SPDK reads payloads into their final buffer the same way), when the segment
   * is exactly the data: no pad and no data digest would then spill past it.
   */
  private dataInTarget(size: number, bhs: Buffer): Buffer | null {
    if ((bhs[0] & 0x3f) !== TargetOp.DataIn || this.conn.dataDigest) return null;
    const dsl = (bhs[5] << 16) | (bhs[6] << 8) | bhs[7];
    if (size !== dsl) return null;
    const t = this.tasks.get(bhs.readUInt32BE(16));
    const off = bhs.readUInt32BE(40);
    if (!t?.buf || t.abandoned || off + size > t.buf.length) return null;
    return t.buf.subarray(off, off + size);
  }

  private onDataIn(p: DataInIn): void {
    const t = this.tasks.get(p.itt);
    if (!t) return;
    t.dataIns++;
    this.counters.dataIn++;
    if (p.data.length) {
      if (!t.buf || p.bufferOffset + p.data.length > t.buf.length) {
        this.failTask(t, new InitiatorError('protocol-error', `Data-In beyond the expected ${t.edtl} bytes`));
        return;
      }
      if (p.data.buffer === t.buf.buffer && p.data.byteOffset === t.buf.byteOffset + p.bufferOffset) this.counters.dataInGathered++;
      else p.data.copy(t.buf, p.bufferOffset);
      t.received = Math.max(t.received, p.bufferOffset + p.data.length);
    }
    if (p.statusPresent) {
      this.finishTask(t, p.status, 0, null, residualOf(p.overflow, p.underflow, p.residual));
    }
  }

  private onScsiResponse(p: ScsiResponseIn): void {
    const t = this.tasks.get(p.itt);
    if (!t) return;
    // RFC 7143 §11.4.7: SenseLength (2 bytes), then the sense data.
    let sense: Buffer | null = null;
    if (p.data.length >= 2) {
      const n = Math.min(p.data.readUInt16BE(0), p.data.length - 2);
      if (n > 0) sense = Buffer.from(p.data.subarray(2, 2 + n));
    }
    this.finishTask(t, p.status, p.response, sense, residualOf(p.overflow, p.underflow, p.residual));
  }

  private onR2T(p: R2TIn): void {
    const t = this.tasks.get(p.itt);
    if (!t || t.abandoned) return;
    const out = t.req.dataOut;
    if (!out || p.bufferOffset + p.desiredLength > out.length) {
      this.failTask(t, new InitiatorError('protocol-error', `R2T for bytes ${p.bufferOffset}+${p.desiredLength} outside the ${out?.length ?? 0} to write`));
      return;
    }
    t.r2ts++;
    this.counters.r2t++;
    this.sendData(t, p.ttt, p.bufferOffset, p.desiredLength);
  }

  private onConnectionClosed(e: InitiatorError): void {
    if (this.closedError) return;
    this.closedError = e;
    if (this.sweepTimer) clearTimeout(this.sweepTimer);
    this.sweepTimer = null;
    this.queued.length = 0;
    for (const t of [...this.tasks.values()]) this.failTask(t, e);
    for (const w of [...this.others.values()]) w.reject(e);
    this.others.clear();
    this.onClose?.(e);
  }
}

function residualOf(overflow: boolean, underflow: boolean, count: number): ScsiResponse['residual'] {
  return overflow ? { kind: 'overflow', count } : underflow ? { kind: 'underflow', count } : { kind: 'none', count: 0 };
}
