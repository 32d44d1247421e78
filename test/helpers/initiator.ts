/**
 * A small iSCSI initiator for integration tests: it speaks to the target over real TCP,
 * with its own PDU construction (field offsets from RFC 7143 §11, independent of the
 * target's encoders), and exposes the raw responses so tests can assert on them.
 *
 * It is the raw-access tool: it sends whatever keys and fields a test asks for, even illegal
 * ones. Real hosts (the splitter's remote copies, the ESXi-like host, benches) use the product's
 * initiator, src/initiator/. What is the same logic is shared with it: key text goes through
 * protocol/iscsi/text.ts, and a write's immediate/unsolicited/solicited split and its Data-Out
 * pieces come from src/initiator/data-out.ts.
 */
import net from 'node:net';
import { Framer } from '../../protocol/iscsi/framer.ts';
import type { FramedPdu } from '../../protocol/iscsi/framer.ts';
import { crc32c } from '../../protocol/iscsi/digest.ts';
import { encodeText, parseText } from '../../protocol/iscsi/text.ts';
import { dataOutPieces, planWrite } from '../../src/initiator/data-out.ts';

export interface TargetPdu {
  opcode: number;
  flags: number;
  bhs: Buffer;
  data: Buffer;
  itt: number;
  ttt: number;
  statSN: number;
  expCmdSN: number;
  maxCmdSN: number;
}

export interface ScsiResult {
  status: number;
  response: number;
  data: Buffer;
  sense: Buffer | null;
  residual: number;
  underflow: boolean;
  overflow: boolean;
  r2ts: number;
  dataIns: number;
}

/** The target's key=value text as a record (the project's text codec, RFC 7143 §6.1). */
export function parseKeys(data: Buffer): Record<string, string> {
  const parsed = parseText(data);
  if (parsed.kind === 'error') throw new Error(`malformed text from the target: ${parsed.reason}`);
  return Object.fromEntries(parsed.pairs.map((p) => [p.key, p.value]));
}

function textData(keys: Record<string, string>): Buffer {
  return encodeText(Object.entries(keys).map(([key, value]) => ({ key, value })));
}

function pad4(n: number): number { return (4 - (n & 3)) & 3; }

export class TestInitiator {
  readonly sock: net.Socket;
  private framer = new Framer({ headerDigest: false, dataDigest: false, maxDataSegmentLength: 16 * 1024 * 1024 });
  private waiters: { match: (p: TargetPdu) => boolean; resolve: (p: TargetPdu) => void }[] = [];
  readonly unsolicited: TargetPdu[] = [];
  cmdSN = 1;
  expStatSN = 0;
  itt = 0x100;
  isid = Buffer.from([0x80, 0x12, 0x34, 0x56, 0x78, 0x9a]);
  tsih = 0;
  headerDigest = false;
  dataDigest = false;
  /** Negotiated values after login. */
  negotiated: Record<string, string> = {};
  closed = false;
  /** Answer the target's NOP-In pings (TTT other than 0xffffffff) with a NOP-Out, as RFC 7143 §11.18 asks of an initiator. Off by default. */
  answerPings = false;

  private constructor(sock: net.Socket) {
    this.sock = sock;
    sock.on('data', (c: Buffer) => this.framer.push(c, (e) => { if (e.kind === 'pdu') this.onPdu(e.pdu); }));
    sock.on('close', () => { this.closed = true; for (const w of this.waiters) w.resolve(null as unknown as TargetPdu); this.waiters = []; });
    sock.on('error', () => {});
  }

  static connect(port: number, host = '127.0.0.1'): Promise<TestInitiator> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ port, host }, () => resolve(new TestInitiator(s)));
      s.once('error', reject);
    });
  }

  private onPdu(f: FramedPdu): void {
    const b = f.bhs;
    const p: TargetPdu = {
      opcode: b[0] & 0x3f, flags: b[1], bhs: Buffer.from(b), data: Buffer.from(f.data), itt: b.readUInt32BE(16),
      ttt: b.readUInt32BE(20), statSN: b.readUInt32BE(24), expCmdSN: b.readUInt32BE(28), maxCmdSN: b.readUInt32BE(32),
    };
    if (this.answerPings && p.opcode === 0x20 && p.ttt !== 0xffffffff) {
      const o = this.bhs(0x00, true);
      o[1] = 0x80;
      o.writeUInt32BE(0xffffffff, 16);
      o.writeUInt32BE(p.ttt, 20);
      o.writeUInt32BE(this.cmdSN, 24);
      o.writeUInt32BE(this.expStatSN, 28);
      this.send(o);
      return;
    }
    const i = this.waiters.findIndex((w) => w.match(p));
    if (i >= 0) { const [w] = this.waiters.splice(i, 1); w.resolve(p); } else this.unsolicited.push(p);
  }

  /**
   * Wait for the next PDU matching `match` (checks already-received unsolicited ones first).
   * `cancel`, if given, gets a function that ends the wait at once with null.
   */
  next(match: (p: TargetPdu) => boolean, timeoutMs = 5000, cancel?: { cancel?: () => void }): Promise<TargetPdu> {
    const j = this.unsolicited.findIndex(match);
    if (j >= 0) return Promise.resolve(this.unsolicited.splice(j, 1)[0]);
    if (this.closed) return Promise.resolve(null as unknown as TargetPdu);
    return new Promise((resolve, reject) => {
      const w = { match, resolve: (p: TargetPdu) => { clearTimeout(t); resolve(p); } };
      const t = setTimeout(() => { this.waiters = this.waiters.filter((x) => x !== w); reject(new Error('timeout waiting for PDU')); }, timeoutMs);
      this.waiters.push(w);
      if (cancel) cancel.cancel = () => { this.waiters = this.waiters.filter((x) => x !== w); w.resolve(null as unknown as TargetPdu); };
    });
  }

  /** Waits of scsi() commands by ITT, for abandon(). */
  private readonly pending = new Map<number, { cancel?: () => void }>();
  private readonly abandoned = new Set<number>();

  /**
   * Stop waiting for the task `itt` (after an ABORT TASK answered Function complete, the target
   * sends nothing more for it): its scsi() call throws "task aborted".
   */
  abandon(itt: number): void {
    this.abandoned.add(itt);
    this.pending.get(itt)?.cancel?.();
  }

  /** Send a BHS (48 bytes) plus data, with digests if negotiated. */
  send(bhs: Buffer, data?: Buffer, opts: { corruptData?: boolean; corruptHeader?: boolean } = {}): void {
    const parts: Buffer[] = [bhs];
    if (this.headerDigest) {
      const d = Buffer.alloc(4); d.writeUInt32LE((crc32c(bhs) ^ (opts.corruptHeader ? 1 : 0)) >>> 0); parts.push(d);
    }
    if (data && data.length) {
      const padded = Buffer.concat([data, Buffer.alloc(pad4(data.length))]);
      parts.push(padded);
      if (this.dataDigest) { const d = Buffer.alloc(4); d.writeUInt32LE((crc32c(padded) ^ (opts.corruptData ? 1 : 0)) >>> 0); parts.push(d); }
    }
    this.sock.write(Buffer.concat(parts));
  }

  bhs(opcode: number, immediate = false): Buffer {
    const b = Buffer.alloc(48);
    b[0] = opcode | (immediate ? 0x40 : 0);
    return b;
  }

  static setDsl(b: Buffer, n: number): void { b[5] = (n >> 16) & 0xff; b[6] = (n >> 8) & 0xff; b[7] = n & 0xff; }

  /** One login request; returns the response PDU and its keys. */
  async loginRequest(keys: Record<string, string>, o: { csg: number; nsg: number; transit: boolean; cid?: number }): Promise<{ pdu: TargetPdu; keys: Record<string, string>; statusClass: number; statusDetail: number }> {
    const b = this.bhs(0x03, true);
    b[1] = (o.transit ? 0x80 : 0) | (o.csg << 2) | (o.transit ? o.nsg : 0);
    this.isid.copy(b, 8);
    b.writeUInt16BE(this.tsih, 14);
    const itt = this.itt++;
    b.writeUInt32BE(itt, 16);
    b.writeUInt16BE(o.cid ?? 0, 20);
    b.writeUInt32BE(this.cmdSN, 24);
    b.writeUInt32BE(this.expStatSN, 28);
    const data = textData(keys);
    TestInitiator.setDsl(b, data.length);
    this.send(b, data);
    const pdu = await this.next((p) => p.opcode === 0x23);
    if (!pdu) throw new Error('connection closed during login');
    this.expStatSN = (pdu.statSN + 1) >>> 0;
    return { pdu, keys: parseKeys(pdu.data), statusClass: pdu.bhs[36], statusDetail: pdu.bhs[37] };
  }

  /** A complete login: security stage (AuthMethod=None) straight to operational, then FFP. */
  async login(target: string | null, extra: Record<string, string> = {}, initiator = 'iqn.2026-11.dev.arraysim:test'): Promise<Record<string, string>> {
    const first: Record<string, string> = { InitiatorName: initiator, SessionType: target ? 'Normal' : 'Discovery', AuthMethod: 'None' };
    if (target) first.TargetName = target;
    const r1 = await this.loginRequest(first, { csg: 0, nsg: 1, transit: true });
    if (r1.statusClass !== 0) throw Object.assign(new Error(`login failed ${r1.statusClass}/${r1.statusDetail}`), { statusClass: r1.statusClass, statusDetail: r1.statusDetail });
    const ops: Record<string, string> = target ? {
      HeaderDigest: 'None', DataDigest: 'None', InitialR2T: 'Yes', ImmediateData: 'Yes', MaxRecvDataSegmentLength: '262144',
      MaxBurstLength: '262144', FirstBurstLength: '65536', MaxOutstandingR2T: '1', ErrorRecoveryLevel: '0', ...extra,
    } : { HeaderDigest: 'None', DataDigest: 'None', MaxRecvDataSegmentLength: '65536', ...extra };
    const r2 = await this.loginRequest(ops, { csg: 1, nsg: 3, transit: true });
    if (r2.statusClass !== 0) throw Object.assign(new Error(`login failed ${r2.statusClass}/${r2.statusDetail}`), { statusClass: r2.statusClass, statusDetail: r2.statusDetail });
    this.tsih = r2.pdu.bhs.readUInt16BE(14);
    this.negotiated = { ...r1.keys, ...r2.keys };
    this.headerDigest = r2.keys.HeaderDigest === 'CRC32C';
    this.dataDigest = r2.keys.DataDigest === 'CRC32C';
    this.framer.opts = { ...this.framer.opts, headerDigest: this.headerDigest, dataDigest: this.dataDigest };
    return this.negotiated;
  }

  /**
   * Run a SCSI command. `read`: expected Data-In length; `write`: data to send (immediate data
   * up to FirstBurstLength when negotiated, the rest on R2T).
   */
  async scsi(lun: number, cdb: Buffer | number[], o: { read?: number; write?: Buffer; edtl?: number; immediate?: boolean; attr?: number; onTask?: (itt: number, cmdSN: number) => void } = {}): Promise<ScsiResult> {
    const b = this.bhs(0x01, !!o.immediate);
    const write = o.write;
    const edtl = o.edtl ?? (write ? write.length : o.read ?? 0);
    const rules = {
      immediateData: this.negotiated.ImmediateData !== 'No',
      initialR2T: this.negotiated.InitialR2T !== 'No',
      firstBurstLength: Number(this.negotiated.FirstBurstLength ?? 65536),
      maxSendDataSegmentLength: Number(this.negotiated.MaxRecvDataSegmentLength ?? 8192),
    };
    const plan = write ? planWrite(rules, write.length, edtl) : null;
    const imm = write && plan!.immediate > 0 ? write.subarray(0, plan!.immediate) : undefined;
    b[1] = (plan && !plan.final ? 0 : 0x80) | (o.read !== undefined ? 0x40 : 0) | (write ? 0x20 : 0) | (o.attr ?? 1);
    b[9] = lun; // peripheral addressing, LUN < 256
    const itt = this.itt++;
    b.writeUInt32BE(itt, 16);
    b.writeUInt32BE(edtl, 20);
    const cmdSN = this.cmdSN;
    if (!o.immediate) this.cmdSN++;
    b.writeUInt32BE(cmdSN, 24);
    b.writeUInt32BE(this.expStatSN, 28);
    Buffer.from(cdb).copy(b, 32, 0, 16);
    if (imm) TestInitiator.setDsl(b, imm.length);
    const waiting: { cancel?: () => void } = {};
    this.pending.set(itt, waiting);
    try {
      this.send(b, imm);
      o.onTask?.(itt, cmdSN);
      if (write && plan!.unsolicitedEnd > plan!.immediate) {
        for (const d of dataOutPieces(plan!.immediate, plan!.unsolicitedEnd - plan!.immediate, rules.maxSendDataSegmentLength)) {
          this.sendDataOut(itt, 0xffffffff, lun, d.dataSN, d.offset, write.subarray(d.offset, d.offset + d.length), d.final);
        }
      }
      const chunks: Buffer[] = [];
      let r2ts = 0;
      let dataIns = 0;
      for (;;) {
        if (this.abandoned.has(itt)) throw new Error('task aborted');
        const p = await this.next((q) => q.itt === itt || (q.opcode === 0x3f && q.data.length >= 20 && q.data.readUInt32BE(16) === itt), 10000, waiting);
        if (!p) throw new Error(this.abandoned.has(itt) ? 'task aborted' : 'connection closed');
        if (p.opcode === 0x31) { // R2T
          r2ts++;
          for (const d of dataOutPieces(p.bhs.readUInt32BE(40), p.bhs.readUInt32BE(44), rules.maxSendDataSegmentLength)) {
            this.sendDataOut(itt, p.ttt, lun, d.dataSN, d.offset, write!.subarray(d.offset, d.offset + d.length), d.final);
          }
        } else if (p.opcode === 0x25) { // Data-In
          dataIns++;
          chunks.push(p.data);
          if (p.flags & 0x01) {
            this.expStatSN = (p.statSN + 1) >>> 0;
            return { status: p.bhs[3], response: 0, data: Buffer.concat(chunks), sense: null, residual: p.bhs.readUInt32BE(44), underflow: !!(p.flags & 0x02), overflow: !!(p.flags & 0x04), r2ts, dataIns };
          }
        } else if (p.opcode === 0x21) { // SCSI Response
          this.expStatSN = (p.statSN + 1) >>> 0;
          const sense = p.data.length >= 2 ? p.data.subarray(2, 2 + p.data.readUInt16BE(0)) : null;
          return { status: p.bhs[3], response: p.bhs[2], data: Buffer.concat(chunks), sense, residual: p.bhs.readUInt32BE(44), underflow: !!(p.flags & 0x02), overflow: !!(p.flags & 0x04), r2ts, dataIns };
        } else if (p.opcode === 0x3f) {
          throw Object.assign(new Error(`rejected: reason ${p.bhs[2]}`), { reject: p.bhs[2] });
        }
      }
    } finally {
      this.pending.delete(itt);
    }
  }

  sendDataOut(itt: number, ttt: number, lun: number, dataSN: number, offset: number, data: Buffer, final: boolean, opts?: { corruptData?: boolean }): void {
    const d = this.bhs(0x05);
    d[1] = final ? 0x80 : 0;
    d[9] = lun;
    d.writeUInt32BE(itt, 16);
    d.writeUInt32BE(ttt, 20);
    d.writeUInt32BE(this.expStatSN, 28);
    d.writeUInt32BE(dataSN, 36);
    d.writeUInt32BE(offset, 40);
    TestInitiator.setDsl(d, data.length);
    this.send(d, data, opts);
  }

  async nop(data = Buffer.alloc(0)): Promise<TargetPdu> {
    const b = this.bhs(0x00, true);
    b[1] = 0x80;
    const itt = this.itt++;
    b.writeUInt32BE(itt, 16);
    b.writeUInt32BE(0xffffffff, 20);
    b.writeUInt32BE(this.cmdSN, 24);
    b.writeUInt32BE(this.expStatSN, 28);
    TestInitiator.setDsl(b, data.length);
    this.send(b, data);
    return this.next((p) => p.itt === itt);
  }

  async tmf(func: number, lun: number, rtt = 0xffffffff, refCmdSN = 0): Promise<TargetPdu> {
    const b = this.bhs(0x02, true);
    b[1] = 0x80 | func;
    b[9] = lun;
    const itt = this.itt++;
    b.writeUInt32BE(itt, 16);
    b.writeUInt32BE(rtt, 20);
    b.writeUInt32BE(this.cmdSN, 24);
    b.writeUInt32BE(this.expStatSN, 28);
    b.writeUInt32BE(refCmdSN, 32);
    this.send(b);
    return this.next((p) => p.itt === itt && p.opcode === 0x22);
  }

  async text(keys: Record<string, string>): Promise<TargetPdu> {
    const b = this.bhs(0x04, true);
    b[1] = 0x80;
    const itt = this.itt++;
    b.writeUInt32BE(itt, 16);
    b.writeUInt32BE(0xffffffff, 20);
    b.writeUInt32BE(this.cmdSN, 24);
    b.writeUInt32BE(this.expStatSN, 28);
    const data = textData(keys);
    TestInitiator.setDsl(b, data.length);
    this.send(b, data);
    return this.next((p) => p.itt === itt);
  }

  async logout(reason = 0): Promise<TargetPdu> {
    const b = this.bhs(0x06, true);
    b[1] = 0x80 | reason;
    const itt = this.itt++;
    b.writeUInt32BE(itt, 16);
    b.writeUInt32BE(this.cmdSN, 24);
    b.writeUInt32BE(this.expStatSN, 28);
    this.send(b);
    return this.next((p) => p.itt === itt && p.opcode === 0x26);
  }

  waitClosed(timeoutMs = 3000): Promise<boolean> {
    if (this.closed) return Promise.resolve(true);
    return new Promise((r) => {
      const t = setTimeout(() => r(false), timeoutMs);
      this.sock.once('close', () => { clearTimeout(t); r(true); });
    });
  }

  close(): void {
    this.sock.destroy();
  }
}
