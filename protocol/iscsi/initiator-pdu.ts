/**
 * The initiator's side of the iSCSI PDU codec (RFC 7143 §11): encoders for the PDUs an initiator
 * sends and a decoder for the PDUs a target sends. Pure, like pdu.ts (which holds the target's
 * side): one typed object per target PDU kind, a discriminated union on `op`; no sockets, no
 * session state. Encoders write a fresh 48-byte BHS; the data segment travels separately.
 */
import { BHS_LENGTH, decodeLun, encodeLun, InitiatorOp, Off, TargetOp } from './pdu.ts';
import type { LoginResponseHeader } from './pdu.ts';

function bhs(op: InitiatorOp, immediate: boolean, flags: number, dsl: number): Buffer {
  const b = Buffer.alloc(BHS_LENGTH);
  b[Off.opcode] = op | (immediate ? 0x40 : 0);
  b[Off.flags] = flags;
  b[5] = (dsl >> 16) & 0xff;
  b[6] = (dsl >> 8) & 0xff;
  b[7] = dsl & 0xff;
  return b;
}

/** SCSI task attributes (RFC 7143 §11.3.1, SAM-5 §8.6). */
export const enum TaskAttr {
  Untagged = 0,
  Simple = 1,
  Ordered = 2,
  HeadOfQueue = 3,
  Aca = 4,
}

export interface ScsiCommandFields {
  immediate?: boolean;
  /** F: no unsolicited Data-Out follows this PDU. */
  final: boolean;
  read: boolean;
  write: boolean;
  attr?: number;
  lun: number;
  itt: number;
  edtl: number;
  cmdSN: number;
  expStatSN: number;
  /** CDB, up to 16 bytes (longer CDBs need an extended-CDB AHS, not supported here). */
  cdb: Buffer;
  /** Length of the immediate data that follows in the data segment. */
  dataLength: number;
}

/** SCSI Command (RFC 7143 §11.3). */
export function encodeScsiCommand(c: ScsiCommandFields): Buffer {
  if (c.cdb.length > 16) throw new RangeError(`CDB of ${c.cdb.length} bytes needs an AHS`);
  const flags = (c.final ? 0x80 : 0) | (c.read ? 0x40 : 0) | (c.write ? 0x20 : 0) | ((c.attr ?? TaskAttr.Simple) & 0x07);
  const b = bhs(InitiatorOp.ScsiCommand, !!c.immediate, flags, c.dataLength);
  encodeLun(c.lun, b);
  b.writeUInt32BE(c.itt >>> 0, Off.itt);
  b.writeUInt32BE(c.edtl >>> 0, Off.edtl);
  b.writeUInt32BE(c.cmdSN >>> 0, Off.cmdSN);
  b.writeUInt32BE(c.expStatSN >>> 0, Off.expStatSN);
  c.cdb.copy(b, Off.cdb);
  return b;
}

export interface DataOutFields {
  final: boolean;
  lun: number;
  itt: number;
  /** The R2T's Target Transfer Tag, or 0xffffffff for unsolicited data. */
  ttt: number;
  expStatSN: number;
  dataSN: number;
  bufferOffset: number;
  dataLength: number;
}

/** SCSI Data-Out (RFC 7143 §11.7). */
export function encodeDataOut(d: DataOutFields): Buffer {
  const b = bhs(InitiatorOp.DataOut, false, d.final ? 0x80 : 0, d.dataLength);
  encodeLun(d.lun, b);
  b.writeUInt32BE(d.itt >>> 0, Off.itt);
  b.writeUInt32BE(d.ttt >>> 0, Off.ttt);
  b.writeUInt32BE(d.expStatSN >>> 0, Off.expStatSN);
  b.writeUInt32BE(d.dataSN >>> 0, Off.dataSN);
  b.writeUInt32BE(d.bufferOffset >>> 0, Off.bufferOffset);
  return b;
}

/**
 * NOP-Out (RFC 7143 §11.18): a ping of our own (itt set, ttt reserved) or the answer to a
 * target's NOP-In ping (itt reserved, ttt echoed). Always immediate here.
 */
export function encodeNopOut(n: { itt: number; ttt: number; lun?: number; cmdSN: number; expStatSN: number; dataLength: number }): Buffer {
  const b = bhs(InitiatorOp.NopOut, true, 0x80, n.dataLength);
  encodeLun(n.lun ?? 0, b);
  b.writeUInt32BE(n.itt >>> 0, Off.itt);
  b.writeUInt32BE(n.ttt >>> 0, Off.ttt);
  b.writeUInt32BE(n.cmdSN >>> 0, Off.cmdSN);
  b.writeUInt32BE(n.expStatSN >>> 0, Off.expStatSN);
  return b;
}

export interface LoginRequestFields {
  transit: boolean;
  cont?: boolean;
  csg: number;
  nsg: number;
  /** 6-byte ISID as 12 hex digits. */
  isid: string;
  tsih: number;
  itt: number;
  cid: number;
  cmdSN: number;
  expStatSN: number;
  dataLength: number;
}

/** Login Request (RFC 7143 §11.12): always immediate; Version-max = Version-min = 0. */
export function encodeLoginRequest(l: LoginRequestFields): Buffer {
  const flags = (l.transit ? 0x80 : 0) | (l.cont ? 0x40 : 0) | ((l.csg & 3) << 2) | (l.transit ? l.nsg & 3 : 0);
  const b = bhs(InitiatorOp.LoginRequest, true, flags, l.dataLength);
  if (!/^[0-9a-fA-F]{12}$/.test(l.isid)) throw new RangeError(`ISID must be 12 hex digits: ${l.isid}`);
  b.write(l.isid, 8, 6, 'hex');
  b.writeUInt16BE(l.tsih, 14);
  b.writeUInt32BE(l.itt >>> 0, Off.itt);
  b.writeUInt16BE(l.cid, 20);
  b.writeUInt32BE(l.cmdSN >>> 0, Off.cmdSN);
  b.writeUInt32BE(l.expStatSN >>> 0, Off.expStatSN);
  return b;
}

/** Text Request (RFC 7143 §11.10), immediate. */
export function encodeTextRequest(t: { final: boolean; cont?: boolean; itt: number; ttt: number; cmdSN: number; expStatSN: number; dataLength: number }): Buffer {
  const b = bhs(InitiatorOp.TextRequest, true, (t.final ? 0x80 : 0) | (t.cont ? 0x40 : 0), t.dataLength);
  b.writeUInt32BE(t.itt >>> 0, Off.itt);
  b.writeUInt32BE(t.ttt >>> 0, Off.ttt);
  b.writeUInt32BE(t.cmdSN >>> 0, Off.cmdSN);
  b.writeUInt32BE(t.expStatSN >>> 0, Off.expStatSN);
  return b;
}

/** Logout reason codes (RFC 7143 §11.14.1). */
export const enum LogoutReason {
  CloseSession = 0,
  CloseConnection = 1,
  RemoveConnectionForRecovery = 2,
}

/** Logout Request (RFC 7143 §11.14), immediate. */
export function encodeLogoutRequest(l: { reason: number; itt: number; cid: number; cmdSN: number; expStatSN: number }): Buffer {
  const b = bhs(InitiatorOp.LogoutRequest, true, 0x80 | (l.reason & 0x7f), 0);
  b.writeUInt32BE(l.itt >>> 0, Off.itt);
  b.writeUInt16BE(l.cid, 20);
  b.writeUInt32BE(l.cmdSN >>> 0, Off.cmdSN);
  b.writeUInt32BE(l.expStatSN >>> 0, Off.expStatSN);
  return b;
}

/** Task Management Function Request (RFC 7143 §11.5), immediate. */
export function encodeTaskMgmtRequest(t: {
  func: number; lun: number; itt: number; referencedTaskTag: number; cmdSN: number; expStatSN: number; refCmdSN: number; expDataSN?: number;
}): Buffer {
  const b = bhs(InitiatorOp.TaskMgmtRequest, true, 0x80 | (t.func & 0x7f), 0);
  encodeLun(t.lun, b);
  b.writeUInt32BE(t.itt >>> 0, Off.itt);
  b.writeUInt32BE(t.referencedTaskTag >>> 0, 20);
  b.writeUInt32BE(t.cmdSN >>> 0, Off.cmdSN);
  b.writeUInt32BE(t.expStatSN >>> 0, Off.expStatSN);
  b.writeUInt32BE(t.refCmdSN >>> 0, 32);
  b.writeUInt32BE((t.expDataSN ?? 0) >>> 0, 36);
  return b;
}

// ---------------------------------------------------------------------------------------------
// Target → initiator PDUs (decoded)

interface TargetPduBase {
  itt: number;
  /** StatSN; for R2T and for Data-In without the S bit it is not a status number (see below). */
  statSN: number;
  expCmdSN: number;
  maxCmdSN: number;
  /** Data segment (a view, unpadded). */
  data: Buffer;
}

export interface ScsiResponseIn extends TargetPduBase {
  op: TargetOp.ScsiResponse;
  response: number;
  status: number;
  overflow: boolean;
  underflow: boolean;
  bidiOverflow: boolean;
  bidiUnderflow: boolean;
  expDataSN: number;
  residual: number;
  bidiResidual: number;
}

export interface DataInIn extends TargetPduBase {
  op: TargetOp.DataIn;
  final: boolean;
  ack: boolean;
  /** S: this PDU carries the status (and a valid StatSN). */
  statusPresent: boolean;
  status: number;
  overflow: boolean;
  underflow: boolean;
  lun: number;
  ttt: number;
  dataSN: number;
  bufferOffset: number;
  residual: number;
}

export interface R2TIn extends TargetPduBase {
  op: TargetOp.R2T;
  lun: number;
  ttt: number;
  r2tSN: number;
  bufferOffset: number;
  desiredLength: number;
}

export interface NopInIn extends TargetPduBase {
  op: TargetOp.NopIn;
  lun: number;
  ttt: number;
}

export interface LoginResponseIn extends TargetPduBase, LoginResponseHeader {
  op: TargetOp.LoginResponse;
}

export interface TextResponseIn extends TargetPduBase {
  op: TargetOp.TextResponse;
  final: boolean;
  cont: boolean;
  ttt: number;
}

export interface LogoutResponseIn extends TargetPduBase {
  op: TargetOp.LogoutResponse;
  response: number;
  time2Wait: number;
  time2Retain: number;
}

export interface TaskMgmtResponseIn extends TargetPduBase {
  op: TargetOp.TaskMgmtResponse;
  response: number;
}

export interface AsyncMessageIn extends TargetPduBase {
  op: TargetOp.AsyncMessage;
  lun: number;
  event: number;
  vcode: number;
  param1: number;
  param2: number;
  param3: number;
}

export interface RejectIn extends TargetPduBase {
  op: TargetOp.Reject;
  reason: number;
  dataSN: number;
  /** ITT of the rejected PDU (from the header carried as data), when present. */
  rejectedItt: number | null;
}

export interface UnknownTargetPdu extends TargetPduBase {
  op: 'unknown';
  opcode: number;
}

export type TargetPdu =
  | ScsiResponseIn | DataInIn | R2TIn | NopInIn | LoginResponseIn | TextResponseIn | LogoutResponseIn
  | TaskMgmtResponseIn | AsyncMessageIn | RejectIn | UnknownTargetPdu;

/** Decode a framed target PDU. The object holds views into `bhs` and `data`. */
export function decodeTargetPdu(bhs: Buffer, data: Buffer): TargetPdu {
  const opcode = bhs[0] & 0x3f;
  const f = bhs[1];
  const base = {
    itt: bhs.readUInt32BE(Off.itt), statSN: bhs.readUInt32BE(Off.statSN), expCmdSN: bhs.readUInt32BE(Off.expCmdSN),
    maxCmdSN: bhs.readUInt32BE(Off.maxCmdSN), data,
  };
  switch (opcode) {
    case TargetOp.ScsiResponse:
      return {
        op: TargetOp.ScsiResponse, ...base, response: bhs[2], status: bhs[3],
        bidiOverflow: (f & 0x10) !== 0, bidiUnderflow: (f & 0x08) !== 0, overflow: (f & 0x04) !== 0, underflow: (f & 0x02) !== 0,
        expDataSN: bhs.readUInt32BE(36), bidiResidual: bhs.readUInt32BE(40), residual: bhs.readUInt32BE(44),
      };
    case TargetOp.DataIn:
      return {
        op: TargetOp.DataIn, ...base, final: (f & 0x80) !== 0, ack: (f & 0x40) !== 0, statusPresent: (f & 0x01) !== 0,
        status: bhs[3], overflow: (f & 0x04) !== 0, underflow: (f & 0x02) !== 0, lun: decodeLun(bhs),
        ttt: bhs.readUInt32BE(Off.ttt), dataSN: bhs.readUInt32BE(36), bufferOffset: bhs.readUInt32BE(40),
        residual: bhs.readUInt32BE(44),
      };
    case TargetOp.R2T:
      return {
        op: TargetOp.R2T, ...base, lun: decodeLun(bhs), ttt: bhs.readUInt32BE(Off.ttt), r2tSN: bhs.readUInt32BE(36),
        bufferOffset: bhs.readUInt32BE(40), desiredLength: bhs.readUInt32BE(44),
      };
    case TargetOp.NopIn:
      return { op: TargetOp.NopIn, ...base, lun: decodeLun(bhs), ttt: bhs.readUInt32BE(Off.ttt) };
    case TargetOp.LoginResponse:
      return {
        op: TargetOp.LoginResponse, ...base, transit: (f & 0x80) !== 0, cont: (f & 0x40) !== 0, csg: (f >> 2) & 3, nsg: f & 3,
        versionMax: bhs[2], versionActive: bhs[3], isid: bhs.toString('hex', 8, 14), tsih: bhs.readUInt16BE(14),
        statusClass: bhs[36], statusDetail: bhs[37],
      };
    case TargetOp.TextResponse:
      return { op: TargetOp.TextResponse, ...base, final: (f & 0x80) !== 0, cont: (f & 0x40) !== 0, ttt: bhs.readUInt32BE(Off.ttt) };
    case TargetOp.LogoutResponse:
      return { op: TargetOp.LogoutResponse, ...base, response: bhs[2], time2Wait: bhs.readUInt16BE(40), time2Retain: bhs.readUInt16BE(42) };
    case TargetOp.TaskMgmtResponse:
      return { op: TargetOp.TaskMgmtResponse, ...base, response: bhs[2] };
    case TargetOp.AsyncMessage:
      return {
        op: TargetOp.AsyncMessage, ...base, lun: decodeLun(bhs), event: bhs[36], vcode: bhs[37],
        param1: bhs.readUInt16BE(38), param2: bhs.readUInt16BE(40), param3: bhs.readUInt16BE(42),
      };
    case TargetOp.Reject:
      // RFC 7143 §11.17.3: the data segment is the complete header of the rejected PDU.
      return {
        op: TargetOp.Reject, ...base, reason: bhs[2], dataSN: bhs.readUInt32BE(36),
        rejectedItt: data.length >= BHS_LENGTH ? data.readUInt32BE(Off.itt) : null,
      };
    default:
      return { op: 'unknown', opcode, ...base };
  }
}
