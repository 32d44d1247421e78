/**
 * An independent iSCSI PDU builder for tests: every Basic Header Segment is laid out field by
 * field from the figures of RFC 7143 §11, with its own offsets and its own CRC32C, sharing no
 * code with protocol/iscsi/*. Golden vectors in test/protocol are built (or cross-checked)
 * here and never by the encoder under test (STYLE.md habits 8 and 13).
 *
 * Field names follow the RFC figures. Every builder returns a fresh 48-byte BHS with reserved
 * fields zero; `wire()` adds AHS, header digest, data segment, padding and data digest.
 */

export const BHS_BYTES = 48;
export const ALL_ONES = 0xffffffff;

// ---------------------------------------------------------------------------------------------
// Raw field writers (big-endian, RFC 7143 §11.1: "integers are in network byte order")

class Bhs {
  readonly b = Buffer.alloc(BHS_BYTES);
  u8(off: number, v: number): this { this.b[off] = v & 0xff; return this; }
  u16(off: number, v: number): this { this.b[off] = (v >>> 8) & 0xff; this.b[off + 1] = v & 0xff; return this; }
  u24(off: number, v: number): this {
    this.b[off] = (v >>> 16) & 0xff; this.b[off + 1] = (v >>> 8) & 0xff; this.b[off + 2] = v & 0xff; return this;
  }
  u32(off: number, v: number): this {
    this.b[off] = (v >>> 24) & 0xff; this.b[off + 1] = (v >>> 16) & 0xff;
    this.b[off + 2] = (v >>> 8) & 0xff; this.b[off + 3] = v & 0xff; return this;
  }
  bytes(off: number, src: Buffer): this { src.copy(this.b, off); return this; }
  /** Byte 0: bit 0 reserved, bit 1 = I (immediate), bits 2-7 = opcode (§11.2.1.1). */
  opcode(op: number, immediate = false): this { return this.u8(0, (immediate ? 0x40 : 0) | (op & 0x3f)); }
  /** Byte 4 TotalAHSLength (4-byte words), bytes 5-7 DataSegmentLength (§11.2.1.2-3). */
  lengths(ahsWords = 0, dsl = 0): this { return this.u8(4, ahsWords).u24(5, dsl); }
}

/**
 * 8-byte LUN field, single level (SAM-5 §4.7): LUN < 256 as peripheral device addressing
 * (method 00b, bus 0: `00 LL`), 256..16383 as flat space addressing (method 01b: `40|hi lo`).
 * A Buffer is copied as is (for unusual encodings).
 */
export function lunField(lun: number | Buffer): Buffer {
  if (Buffer.isBuffer(lun)) return Buffer.from(lun);
  const f = Buffer.alloc(8);
  if (lun < 256) { f[0] = 0x00; f[1] = lun; } else { f[0] = 0x40 | (lun >> 8); f[1] = lun & 0xff; }
  return f;
}

/** 6-byte ISID from 12 hex digits (§11.12.5). */
function isidField(isid: string): Buffer {
  if (!/^[0-9a-fA-F]{12}$/.test(isid)) throw new Error(`ISID must be 12 hex digits: ${isid}`);
  return Buffer.from(isid, 'hex');
}

// ---------------------------------------------------------------------------------------------
// Initiator PDUs (RFC 7143 §11.1.1 opcodes 0x00-0x06, 0x10)

export const Op = {
  NopOut: 0x00, ScsiCommand: 0x01, TmfRequest: 0x02, LoginRequest: 0x03, TextRequest: 0x04, DataOut: 0x05,
  LogoutRequest: 0x06, Snack: 0x10,
  NopIn: 0x20, ScsiResponse: 0x21, TmfResponse: 0x22, LoginResponse: 0x23, TextResponse: 0x24, DataIn: 0x25,
  LogoutResponse: 0x26, R2T: 0x31, AsyncMessage: 0x32, Reject: 0x3f,
} as const;

export interface NopOutFields {
  immediate?: boolean; dsl?: number; lun?: number | Buffer; itt: number; ttt: number; cmdSN: number; expStatSN: number;
}
/** NOP-Out, §11.18: byte 1 = 0x80; LUN 8; ITT 16; TTT 20; CmdSN 24; ExpStatSN 28; 32-47 reserved. */
export function nopOut(f: NopOutFields): Buffer {
  return new Bhs().opcode(Op.NopOut, f.immediate).u8(1, 0x80).lengths(0, f.dsl)
    .bytes(8, lunField(f.lun ?? 0)).u32(16, f.itt).u32(20, f.ttt).u32(24, f.cmdSN).u32(28, f.expStatSN).b;
}

export interface ScsiCommandFields {
  immediate?: boolean; final?: boolean; read?: boolean; write?: boolean; attr?: number;
  ahsWords?: number; dsl?: number; lun?: number | Buffer; itt: number; edtl: number; cmdSN: number; expStatSN: number;
  /** up to 16 bytes, zero padded */
  cdb: Buffer;
}
/**
 * SCSI Command, §11.3: byte 1 = F(0x80) R(0x40) W(0x20) ATTR(bits 5-7 → 0x07); LUN 8; ITT 16;
 * Expected Data Transfer Length 20; CmdSN 24; ExpStatSN 28; CDB 32-47.
 */
export function scsiCommand(f: ScsiCommandFields): Buffer {
  const flags = (f.final ?? true ? 0x80 : 0) | (f.read ? 0x40 : 0) | (f.write ? 0x20 : 0) | ((f.attr ?? 0) & 0x07);
  return new Bhs().opcode(Op.ScsiCommand, f.immediate).u8(1, flags).lengths(f.ahsWords, f.dsl)
    .bytes(8, lunField(f.lun ?? 0)).u32(16, f.itt).u32(20, f.edtl).u32(24, f.cmdSN).u32(28, f.expStatSN)
    .bytes(32, f.cdb.subarray(0, 16)).b;
}

export interface TmfRequestFields {
  immediate?: boolean; func: number; lun?: number | Buffer; itt: number; rtt: number; cmdSN: number; expStatSN: number;
  refCmdSN: number; expDataSN: number;
}
/**
 * Task Management Function Request, §11.5: byte 1 = 1|Function(7); LUN 8; ITT 16; Referenced
 * Task Tag 20; CmdSN 24; ExpStatSN 28; RefCmdSN 32; ExpDataSN 36; 40-47 reserved.
 */
export function tmfRequest(f: TmfRequestFields): Buffer {
  return new Bhs().opcode(Op.TmfRequest, f.immediate).u8(1, 0x80 | (f.func & 0x7f)).lengths(0, 0)
    .bytes(8, lunField(f.lun ?? 0)).u32(16, f.itt).u32(20, f.rtt).u32(24, f.cmdSN).u32(28, f.expStatSN)
    .u32(32, f.refCmdSN).u32(36, f.expDataSN).b;
}

export interface LoginRequestFields {
  transit: boolean; cont?: boolean; csg: number; nsg: number; versionMax?: number; versionMin?: number; dsl?: number;
  isid: string; tsih: number; itt: number; cid: number; cmdSN: number; expStatSN: number;
}
/**
 * Login Request, §11.12: byte 0 = 0x43 (I always 1); byte 1 = T(0x80) C(0x40) CSG(bits 4-5 → 0x0c)
 * NSG(0x03); Version-max 2; Version-min 3; ISID 8-13; TSIH 14-15; ITT 16; CID 20-21; CmdSN 24;
 * ExpStatSN 28; 32-47 reserved.
 */
export function loginRequest(f: LoginRequestFields): Buffer {
  const flags = (f.transit ? 0x80 : 0) | (f.cont ? 0x40 : 0) | ((f.csg & 3) << 2) | (f.nsg & 3);
  return new Bhs().opcode(Op.LoginRequest, true).u8(1, flags).u8(2, f.versionMax ?? 0).u8(3, f.versionMin ?? 0)
    .lengths(0, f.dsl).bytes(8, isidField(f.isid)).u16(14, f.tsih).u32(16, f.itt).u16(20, f.cid)
    .u32(24, f.cmdSN).u32(28, f.expStatSN).b;
}

export interface TextRequestFields {
  immediate?: boolean; final: boolean; cont?: boolean; dsl?: number; lun?: number | Buffer; itt: number; ttt: number;
  cmdSN: number; expStatSN: number;
}
/** Text Request, §11.10: byte 1 = F(0x80) C(0x40); LUN 8; ITT 16; TTT 20; CmdSN 24; ExpStatSN 28. */
export function textRequest(f: TextRequestFields): Buffer {
  return new Bhs().opcode(Op.TextRequest, f.immediate).u8(1, (f.final ? 0x80 : 0) | (f.cont ? 0x40 : 0))
    .lengths(0, f.dsl).bytes(8, lunField(f.lun ?? 0)).u32(16, f.itt).u32(20, f.ttt).u32(24, f.cmdSN)
    .u32(28, f.expStatSN).b;
}

export interface DataOutFields {
  final: boolean; dsl?: number; lun?: number | Buffer; itt: number; ttt: number; expStatSN: number; dataSN: number;
  bufferOffset: number;
}
/**
 * SCSI Data-Out, §11.7: byte 1 = F(0x80); LUN 8; ITT 16; TTT 20; 24 reserved; ExpStatSN 28;
 * 32 reserved; DataSN 36; Buffer Offset 40; 44 reserved.
 */
export function dataOut(f: DataOutFields): Buffer {
  return new Bhs().opcode(Op.DataOut).u8(1, f.final ? 0x80 : 0).lengths(0, f.dsl)
    .bytes(8, lunField(f.lun ?? 0)).u32(16, f.itt).u32(20, f.ttt).u32(28, f.expStatSN).u32(36, f.dataSN)
    .u32(40, f.bufferOffset).b;
}

export interface LogoutRequestFields {
  immediate?: boolean; reasonCode: number; itt: number; cid: number; cmdSN: number; expStatSN: number;
}
/** Logout Request, §11.14: byte 1 = 1|Reason Code(7); ITT 16; CID 20-21; CmdSN 24; ExpStatSN 28. */
export function logoutRequest(f: LogoutRequestFields): Buffer {
  return new Bhs().opcode(Op.LogoutRequest, f.immediate).u8(1, 0x80 | (f.reasonCode & 0x7f)).lengths(0, 0)
    .u32(16, f.itt).u16(20, f.cid).u32(24, f.cmdSN).u32(28, f.expStatSN).b;
}

export interface SnackFields {
  type: number; lun?: number | Buffer; itt: number; tttOrSnackTag: number; expStatSN: number; begRun: number;
  runLength: number;
}
/**
 * SNACK Request, §11.16: byte 1 = 1|000|Type(4); LUN 8; ITT 16; TTT or SNACK Tag 20;
 * 24 reserved; ExpStatSN 28; 32-39 reserved; BegRun 40; RunLength 44.
 */
export function snack(f: SnackFields): Buffer {
  return new Bhs().opcode(Op.Snack).u8(1, 0x80 | (f.type & 0x0f)).lengths(0, 0).bytes(8, lunField(f.lun ?? 0))
    .u32(16, f.itt).u32(20, f.tttOrSnackTag).u32(28, f.expStatSN).u32(40, f.begRun).u32(44, f.runLength).b;
}

// ---------------------------------------------------------------------------------------------
// Target PDUs (opcodes 0x20-0x26, 0x31, 0x32, 0x3f). StatSN 24, ExpCmdSN 28, MaxCmdSN 32 in all.

export interface Seq { statSN: number; expCmdSN: number; maxCmdSN: number }
function seq(b: Bhs, s: Seq): Bhs { return b.u32(24, s.statSN).u32(28, s.expCmdSN).u32(32, s.maxCmdSN); }

export interface NopInFields extends Seq { dsl?: number; lun?: number | Buffer; itt: number; ttt: number }
/** NOP-In, §11.19: byte 1 = 0x80; LUN 8; ITT 16; TTT 20; StatSN/ExpCmdSN/MaxCmdSN; 36-47 reserved. */
export function nopIn(f: NopInFields): Buffer {
  return seq(new Bhs().opcode(Op.NopIn).u8(1, 0x80).lengths(0, f.dsl).bytes(8, lunField(f.lun ?? 0))
    .u32(16, f.itt).u32(20, f.ttt), f).b;
}

export interface ScsiResponseFields extends Seq {
  bidiOverflow?: boolean; bidiUnderflow?: boolean; overflow?: boolean; underflow?: boolean;
  response: number; status: number; dsl?: number; itt: number; snackTag?: number; expDataSN: number;
  bidiResidual?: number; residual: number;
}
/**
 * SCSI Response, §11.4: byte 1 = 1|..|o(0x10)|u(0x08)|O(0x04)|U(0x02)|.; Response 2; Status 3;
 * 8-15 reserved; ITT 16; SNACK Tag 20; seq; ExpDataSN 36; Bidirectional Read Residual Count 40;
 * Residual Count 44.
 */
export function scsiResponse(f: ScsiResponseFields): Buffer {
  const flags = 0x80 | (f.bidiOverflow ? 0x10 : 0) | (f.bidiUnderflow ? 0x08 : 0) | (f.overflow ? 0x04 : 0)
    | (f.underflow ? 0x02 : 0);
  return seq(new Bhs().opcode(Op.ScsiResponse).u8(1, flags).u8(2, f.response).u8(3, f.status).lengths(0, f.dsl)
    .u32(16, f.itt).u32(20, f.snackTag ?? 0), f)
    .u32(36, f.expDataSN).u32(40, f.bidiResidual ?? 0).u32(44, f.residual).b;
}

export interface TmfResponseFields extends Seq { response: number; itt: number }
/** TMF Response, §11.6: byte 1 = 0x80; Response 2; ITT 16; 20 reserved; seq; 36-47 reserved. */
export function tmfResponse(f: TmfResponseFields): Buffer {
  return seq(new Bhs().opcode(Op.TmfResponse).u8(1, 0x80).u8(2, f.response).lengths(0, 0).u32(16, f.itt), f).b;
}

export interface LoginResponseFields extends Seq {
  transit: boolean; cont?: boolean; csg: number; nsg: number; versionMax: number; versionActive: number; dsl?: number;
  isid: string; tsih: number; itt: number; statusClass: number; statusDetail: number;
}
/**
 * Login Response, §11.13: byte 1 as in the request; Version-max 2; Version-active 3; ISID 8-13;
 * TSIH 14-15; ITT 16; 20 reserved; seq; Status-Class 36; Status-Detail 37; 38-47 reserved.
 */
export function loginResponse(f: LoginResponseFields): Buffer {
  const flags = (f.transit ? 0x80 : 0) | (f.cont ? 0x40 : 0) | ((f.csg & 3) << 2) | (f.nsg & 3);
  return seq(new Bhs().opcode(Op.LoginResponse).u8(1, flags).u8(2, f.versionMax).u8(3, f.versionActive)
    .lengths(0, f.dsl).bytes(8, isidField(f.isid)).u16(14, f.tsih).u32(16, f.itt), f)
    .u8(36, f.statusClass).u8(37, f.statusDetail).b;
}

export interface TextResponseFields extends Seq {
  final: boolean; cont?: boolean; dsl?: number; lun?: number | Buffer; itt: number; ttt: number;
}
/** Text Response, §11.11: byte 1 = F(0x80) C(0x40); LUN 8; ITT 16; TTT 20; seq; 36-47 reserved. */
export function textResponse(f: TextResponseFields): Buffer {
  return seq(new Bhs().opcode(Op.TextResponse).u8(1, (f.final ? 0x80 : 0) | (f.cont ? 0x40 : 0)).lengths(0, f.dsl)
    .bytes(8, lunField(f.lun ?? 0)).u32(16, f.itt).u32(20, f.ttt), f).b;
}

export interface DataInFields extends Seq {
  final: boolean; ack?: boolean; overflow?: boolean; underflow?: boolean; statusPresent?: boolean; status?: number;
  dsl?: number; lun?: number | Buffer; itt: number; ttt: number; dataSN: number; bufferOffset: number;
  residual?: number;
}
/**
 * SCSI Data-In, §11.7: byte 1 = F(0x80) A(0x40) 000 O(0x04) U(0x02) S(0x01); 2 reserved;
 * Status 3 (valid with S); LUN 8; ITT 16; TTT 20; StatSN 24 (reserved without S); ExpCmdSN 28;
 * MaxCmdSN 32; DataSN 36; Buffer Offset 40; Residual Count 44.
 */
export function dataIn(f: DataInFields): Buffer {
  const flags = (f.final ? 0x80 : 0) | (f.ack ? 0x40 : 0) | (f.overflow ? 0x04 : 0) | (f.underflow ? 0x02 : 0)
    | (f.statusPresent ? 0x01 : 0);
  return seq(new Bhs().opcode(Op.DataIn).u8(1, flags).u8(3, f.status ?? 0).lengths(0, f.dsl)
    .bytes(8, lunField(f.lun ?? 0)).u32(16, f.itt).u32(20, f.ttt), f)
    .u32(36, f.dataSN).u32(40, f.bufferOffset).u32(44, f.residual ?? 0).b;
}

export interface LogoutResponseFields extends Seq { response: number; itt: number; time2Wait: number; time2Retain: number }
/**
 * Logout Response, §11.15: byte 1 = 0x80; Response 2; ITT 16; 20 reserved; seq; 36 reserved;
 * Time2Wait 40-41; Time2Retain 42-43; 44 reserved.
 */
export function logoutResponse(f: LogoutResponseFields): Buffer {
  return seq(new Bhs().opcode(Op.LogoutResponse).u8(1, 0x80).u8(2, f.response).lengths(0, 0).u32(16, f.itt), f)
    .u16(40, f.time2Wait).u16(42, f.time2Retain).b;
}

export interface R2TFields extends Seq {
  lun?: number | Buffer; itt: number; ttt: number; r2tSN: number; bufferOffset: number; desiredLength: number;
}
/**
 * Ready To Transfer, §11.8: byte 1 = 0x80; LUN 8; ITT 16; TTT 20; seq; R2TSN 36; Buffer Offset 40;
 * Desired Data Transfer Length 44.
 */
export function r2t(f: R2TFields): Buffer {
  return seq(new Bhs().opcode(Op.R2T).u8(1, 0x80).lengths(0, 0).bytes(8, lunField(f.lun ?? 0)).u32(16, f.itt)
    .u32(20, f.ttt), f).u32(36, f.r2tSN).u32(40, f.bufferOffset).u32(44, f.desiredLength).b;
}

export interface AsyncMessageFields extends Seq {
  dsl?: number; lun?: number | Buffer; asyncEvent: number; asyncVCode?: number;
  parameter1?: number; parameter2?: number; parameter3?: number;
}
/**
 * Asynchronous Message, §11.9: byte 1 = 0x80; LUN 8; 16 = 0xffffffff; 20 reserved; seq;
 * AsyncEvent 36; AsyncVCode 37; Parameter1 38-39; Parameter2 40-41; Parameter3 42-43; 44 reserved.
 */
export function asyncMessage(f: AsyncMessageFields): Buffer {
  return seq(new Bhs().opcode(Op.AsyncMessage).u8(1, 0x80).lengths(0, f.dsl).bytes(8, lunField(f.lun ?? 0))
    .u32(16, ALL_ONES), f).u8(36, f.asyncEvent).u8(37, f.asyncVCode ?? 0).u16(38, f.parameter1 ?? 0)
    .u16(40, f.parameter2 ?? 0).u16(42, f.parameter3 ?? 0).b;
}

export interface RejectFields extends Seq { reason: number; dsl?: number; dataSN: number }
/**
 * Reject, §11.17: byte 1 = 0x80; Reason 2; 8-15 reserved; 16 = 0xffffffff; 20 reserved; seq;
 * DataSN/R2TSN 36; 40-47 reserved. The data segment is the rejected PDU's header.
 */
export function reject(f: RejectFields): Buffer {
  return seq(new Bhs().opcode(Op.Reject).u8(1, 0x80).u8(2, f.reason).lengths(0, f.dsl ?? BHS_BYTES)
    .u32(16, ALL_ONES), f).u32(36, f.dataSN).b;
}

// ---------------------------------------------------------------------------------------------
// Additional Header Segments (§11.2.2) and the wire format around the BHS (§11.1, §11.2)

/**
 * One AHS: AHSLength (2 bytes, the specific part's length excluding padding), AHSType (1),
 * AHS-Specific (1 byte, then the rest), padded to 4 bytes.
 */
export function ahs(type: number, specific: Buffer): Buffer {
  const len = specific.length; // counts the first "AHS-Specific" byte at offset 3
  const out = Buffer.alloc(3 + len + ((4 - ((3 + len) & 3)) & 3));
  out[0] = len >> 8; out[1] = len & 0xff; out[2] = type;
  specific.copy(out, 3);
  return out;
}
/** Extended CDB AHS (type 1, §11.3.5): reserved byte, then CDB bytes 16 and up. */
export function extendedCdbAhs(cdbTail: Buffer): Buffer { return ahs(1, Buffer.concat([Buffer.alloc(1), cdbTail])); }
/** Bidirectional Read Expected Data Transfer Length AHS (type 2, §11.3.6): AHSLength 5. */
export function bidiReadLengthAhs(len: number): Buffer {
  const s = Buffer.alloc(5); s.writeUInt32BE(len, 1); return ahs(2, s);
}

/** A reference CRC32C (Castagnoli, reflected 0x82F63B78), bitwise, independent of @node-rs/crc32. */
const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[i] = c >>> 0;
  }
  return t;
})();
export function refCrc32c(buf: Buffer): number {
  let c = 0xffffffff;
  for (let i = 0; i < buf.length; i++) c = CRC_TABLE[(c ^ buf[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
/** A digest on the wire: the CRC register least significant byte first (RFC 7143 Appendix B.4). */
export function digestBytes(crc: number): Buffer {
  return Buffer.from([crc & 0xff, (crc >>> 8) & 0xff, (crc >>> 16) & 0xff, (crc >>> 24) & 0xff]);
}

export interface WireOptions {
  ahs?: Buffer;
  data?: Buffer;
  headerDigest?: boolean;
  dataDigest?: boolean;
  /** Flip a bit in the header digest / data digest / the first pad byte after computing digests. */
  corruptHeaderDigest?: boolean;
  corruptDataDigest?: boolean;
  corruptPad?: boolean;
}

/**
 * A whole PDU as it appears on the wire (§11.1): BHS, AHS, [HeaderDigest], data, pad to 4,
 * [DataDigest]. The digests cover BHS+AHS and data+pad. Throws if the BHS lengths disagree
 * with the segments, so a vector cannot silently lie.
 */
export function wire(bhs: Buffer, o: WireOptions = {}): Buffer {
  const a = o.ahs ?? Buffer.alloc(0);
  const d = o.data ?? Buffer.alloc(0);
  if (bhs[4] * 4 !== a.length) throw new Error(`TotalAHSLength ${bhs[4]} words, AHS ${a.length} bytes`);
  const dsl = (bhs[5] << 16) | (bhs[6] << 8) | bhs[7];
  if (dsl !== d.length) throw new Error(`DataSegmentLength ${dsl}, data ${d.length} bytes`);
  const parts: Buffer[] = [bhs, a];
  if (o.headerDigest) {
    const hd = digestBytes(refCrc32c(Buffer.concat([bhs, a])));
    if (o.corruptHeaderDigest) hd[0] ^= 0x01;
    parts.push(hd);
  }
  if (d.length > 0) {
    const padded = Buffer.concat([d, Buffer.alloc((4 - (d.length & 3)) & 3)]);
    const dd = digestBytes(refCrc32c(padded));
    if (o.corruptPad) {
      if (padded.length === d.length) throw new Error('no pad to corrupt');
      padded[d.length] = 0xee;
    }
    parts.push(padded);
    if (o.dataDigest) {
      if (o.corruptDataDigest) dd[3] ^= 0x80;
      parts.push(dd);
    }
  }
  return Buffer.concat(parts);
}

/** Hex with `#` comments and whitespace, for annotated golden vectors. */
export function hex(annotated: string): Buffer {
  const digits = annotated.split('\n').map((l) => l.replace(/#.*$/, '')).join('').replace(/\s+/g, '');
  if (!/^([0-9a-fA-F]{2})*$/.test(digits)) throw new Error(`bad hex vector: ${digits}`);
  return Buffer.from(digits, 'hex');
}
