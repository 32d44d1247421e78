/**
 * Wire formats of persistent reservations (SPC-5 §6.16 PERSISTENT RESERVE IN, §6.17 PERSISTENT
 * RESERVE OUT) and of iSCSI TransportIDs (SPC-5 §7.6.4.6). Pure codec: no reservation state,
 * no sense bytes. Decoders return a typed result or the SenseReason the caller should raise.
 *
 * Fixed-offset parts are described once with `buffer-layout` (cold path: a PR command is rare,
 * so the declarative layout's cost does not matter here, unlike the per-PDU BHS). 8-byte
 * reservation keys are blobs turned into bigint: buffer-layout's 64-bit integers are Numbers.
 */
import * as BL from 'buffer-layout';
import type { FieldPointer, SenseReason } from './sense.ts';

/** PERSISTENT RESERVE OUT TYPE field (SPC-5 §6.17.2, table "Persistent reservation type codes"). */
export enum PrType {
  WriteExclusive = 0x1,
  ExclusiveAccess = 0x3,
  WriteExclusiveRegistrantsOnly = 0x5,
  ExclusiveAccessRegistrantsOnly = 0x6,
  WriteExclusiveAllRegistrants = 0x7,
  ExclusiveAccessAllRegistrants = 0x8,
}

export function isPrType(t: number): t is PrType {
  return t === 1 || t === 3 || (t >= 5 && t <= 8);
}

/** The only SCOPE this target implements (LU_SCOPE, SPC-5 §6.17.2). */
export const LU_SCOPE = 0x0;

/** PERSISTENT RESERVE IN service actions (SPC-5 §6.16.1). */
export enum PrinAction {
  ReadKeys = 0x00,
  ReadReservation = 0x01,
  ReportCapabilities = 0x02,
  ReadFullStatus = 0x03,
}

/** PERSISTENT RESERVE OUT service actions (SPC-5 §6.17.1). */
export enum ProutAction {
  Register = 0x00,
  Reserve = 0x01,
  Release = 0x02,
  Clear = 0x03,
  Preempt = 0x04,
  PreemptAndAbort = 0x05,
  RegisterAndIgnoreExistingKey = 0x06,
  RegisterAndMove = 0x07,
  ReplaceLostReservation = 0x08,
}

export type Decoded<T> =
  | { ok: true; value: T }
  | { ok: false; reason: SenseReason; fieldPointer?: FieldPointer };

const fail = (reason: SenseReason, byte?: number, bit?: number): { ok: false; reason: SenseReason; fieldPointer?: FieldPointer } =>
  byte === undefined ? { ok: false, reason } : { ok: false, reason, fieldPointer: { inCdb: false, byte, bit } };

function keyOf(b: Buffer): bigint {
  return b.readBigUInt64BE(0);
}

function keyBytes(k: bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt.asUintN(64, k));
  return b;
}

// ---------------------------------------------------------------------------------------------
// PERSISTENT RESERVE OUT parameter lists

/** Length of the basic PR OUT parameter list; with SPEC_I_PT=0 it is the only valid length (SPC-5 §6.17.3). */
export const PROUT_BASIC_LENGTH = 24;

interface ProutFlagsWire { specIPt: boolean; allTgPt: boolean; aptpl: boolean }
const proutFlags = BL.bits<ProutFlagsWire>(BL.u8(), true, 'flags');
proutFlags.addField(4);
proutFlags.addBoolean('specIPt'); // byte 20 bit 3
proutFlags.addBoolean('allTgPt'); // byte 20 bit 2
proutFlags.addField(1);
proutFlags.addBoolean('aptpl');   // byte 20 bit 0

/** SPC-5 §6.17.3 table "PERSISTENT RESERVE OUT parameter list" (basic, 24 bytes). */
const PROUT_BASIC = BL.struct<{ reservationKey: Buffer; serviceActionKey: Buffer; flags: ProutFlagsWire }>([
  BL.blob(8, 'reservationKey'),          // 0-7
  BL.blob(8, 'serviceActionKey'),        // 8-15
  BL.u32be('obsoleteScopeAddress'),      // 16-19
  proutFlags,                            // 20
  BL.u8('reserved21'),                   // 21
  BL.u16be('obsoleteExtentLength'),      // 22-23
]);
/** Byte offsets named once, for field pointers. */
export const PROUT_FLAGS_BYTE = 20;
export const SPEC_I_PT_BIT = 3;
export const ALL_TG_PT_BIT = 2;

interface MoveFlagsWire { unreg: boolean; aptpl: boolean }
const moveFlags = BL.bits<MoveFlagsWire>(BL.u8(), true, 'flags');
moveFlags.addField(6);
moveFlags.addBoolean('unreg');  // byte 17 bit 1
moveFlags.addBoolean('aptpl');  // byte 17 bit 0

/** SPC-5 §6.17.4 table "REGISTER AND MOVE service action parameter list". */
const PROUT_MOVE = BL.struct<{
  reservationKey: Buffer; serviceActionKey: Buffer; flags: MoveFlagsWire; relativeTargetPortId: number; transportIdLength: number;
}>([
  BL.blob(8, 'reservationKey'),        // 0-7
  BL.blob(8, 'serviceActionKey'),      // 8-15
  BL.u8('reserved16'),                 // 16
  moveFlags,                           // 17
  BL.u16be('relativeTargetPortId'),    // 18-19
  BL.u32be('transportIdLength'),       // 20-23
]);

export interface ProutParameters {
  reservationKey: bigint;
  serviceActionKey: bigint;
  specIPt: boolean;
  allTgPt: boolean;
  aptpl: boolean;
  /** SPEC_I_PT=1 only: the additional I_T nexuses to register. */
  transportIds: TransportId[];
}

export interface MoveParameters {
  reservationKey: bigint;
  serviceActionKey: bigint;
  unreg: boolean;
  aptpl: boolean;
  relativeTargetPortId: number;
  transportId: TransportId;
}

/**
 * Decode the basic PR OUT parameter list (every service action except REGISTER AND MOVE).
 * `data` is exactly PARAMETER LIST LENGTH bytes. SPC-5 §6.17.3: with SPEC_I_PT=0 the length
 * must be 24; with SPEC_I_PT=1 it must hold the TransportID list it announces.
 */
export function decodeProutParameters(data: Buffer): Decoded<ProutParameters> {
  if (data.length < PROUT_BASIC_LENGTH) return fail('ParameterListLengthError');
  const w = PROUT_BASIC.decode(data);
  const p: ProutParameters = {
    reservationKey: keyOf(w.reservationKey),
    serviceActionKey: keyOf(w.serviceActionKey),
    specIPt: w.flags.specIPt,
    allTgPt: w.flags.allTgPt,
    aptpl: w.flags.aptpl,
    transportIds: [],
  };
  if (!p.specIPt) {
    if (data.length !== PROUT_BASIC_LENGTH) return fail('ParameterListLengthError');
    return { ok: true, value: p };
  }
  // SPC-5 §6.17.3: TRANSPORTID PARAMETER DATA LENGTH at bytes 24-27, then the TransportIDs.
  if (data.length < PROUT_BASIC_LENGTH + 4) return fail('ParameterListLengthError');
  const listLength = data.readUInt32BE(PROUT_BASIC_LENGTH);
  const start = PROUT_BASIC_LENGTH + 4;
  if (start + listLength > data.length) return fail('ParameterListLengthError');
  let o = start;
  while (o < start + listLength) {
    const t = decodeTransportId(data.subarray(0, start + listLength), o);
    if (!t.ok) return t;
    p.transportIds.push(t.value);
    o += t.value.length;
  }
  return { ok: true, value: p };
}

/** Decode the REGISTER AND MOVE parameter list (SPC-5 §6.17.4). */
export function decodeMoveParameters(data: Buffer): Decoded<MoveParameters> {
  if (data.length < PROUT_BASIC_LENGTH) return fail('ParameterListLengthError');
  const w = PROUT_MOVE.decode(data);
  if (PROUT_BASIC_LENGTH + w.transportIdLength > data.length) return fail('ParameterListLengthError');
  if (w.transportIdLength === 0) return fail('InvalidFieldInParameterList', 20);
  const t = decodeTransportId(data.subarray(0, PROUT_BASIC_LENGTH + w.transportIdLength), PROUT_BASIC_LENGTH);
  if (!t.ok) return t;
  return {
    ok: true,
    value: {
      reservationKey: keyOf(w.reservationKey),
      serviceActionKey: keyOf(w.serviceActionKey),
      unreg: w.flags.unreg,
      aptpl: w.flags.aptpl,
      relativeTargetPortId: w.relativeTargetPortId,
      transportId: t.value,
    },
  };
}

/** Encoders for the same lists: used by tests and by anything that issues PR OUT internally. */
export function encodeProutParameters(p: Partial<ProutParameters> & { reservationKey?: bigint; serviceActionKey?: bigint }): Buffer {
  const tids = (p.transportIds ?? []).map((t) => encodeTransportId(t.initiatorName, t.isid));
  const tidLength = tids.reduce((n, t) => n + t.length, 0);
  const b = Buffer.alloc(PROUT_BASIC_LENGTH + (p.specIPt ? 4 + tidLength : 0));
  PROUT_BASIC.encode({
    reservationKey: keyBytes(p.reservationKey ?? 0n),
    serviceActionKey: keyBytes(p.serviceActionKey ?? 0n),
    flags: { specIPt: !!p.specIPt, allTgPt: !!p.allTgPt, aptpl: !!p.aptpl },
  }, b);
  if (p.specIPt) {
    b.writeUInt32BE(tidLength, PROUT_BASIC_LENGTH);
    let o = PROUT_BASIC_LENGTH + 4;
    for (const t of tids) o += t.copy(b, o);
  }
  return b;
}

export function encodeMoveParameters(p: Omit<MoveParameters, 'transportId'> & { transportId: { initiatorName: string; isid: string | null } }): Buffer {
  const tid = encodeTransportId(p.transportId.initiatorName, p.transportId.isid);
  const b = Buffer.alloc(PROUT_BASIC_LENGTH + tid.length);
  PROUT_MOVE.encode({
    reservationKey: keyBytes(p.reservationKey),
    serviceActionKey: keyBytes(p.serviceActionKey),
    flags: { unreg: p.unreg, aptpl: p.aptpl },
    relativeTargetPortId: p.relativeTargetPortId,
    transportIdLength: tid.length,
  }, b);
  tid.copy(b, PROUT_BASIC_LENGTH);
  return b;
}

// ---------------------------------------------------------------------------------------------
// iSCSI TransportID (SPC-5 §7.6.4.6)

/** SPC-5 §7.6.2 PROTOCOL IDENTIFIER for iSCSI. */
export const PROTOCOL_ID_ISCSI = 0x5;
/** FORMAT CODE 00b: the iSCSI name alone (every initiator port of that node, any ISID). */
export const TRANSPORTID_FORMAT_NAME = 0b00;
/** FORMAT CODE 01b: name + ",i,0x" + ISID: one initiator port. */
export const TRANSPORTID_FORMAT_PORT = 0b01;

interface TidHeaderWire { h: { formatCode: number; protocolId: number }; additionalLength: number }
const tidByte0 = BL.bits<{ formatCode: number; protocolId: number }>(BL.u8(), true, 'h');
tidByte0.addField(2, 'formatCode');
tidByte0.addField(2);
tidByte0.addField(4, 'protocolId');
/** The fixed 4-byte head of an iSCSI TransportID (SPC-5 table "iSCSI TransportID"). */
const TID_HEADER = BL.struct<TidHeaderWire>([tidByte0, BL.u8('reserved1'), BL.u16be('additionalLength')]);
const TID_HEADER_LENGTH = 4;
const ISID_SEPARATOR = ',i,0x';

export interface TransportId {
  /** iSCSI name, lower-cased (RFC 3722 stringprep output is lower case). */
  initiatorName: string;
  /** 12 lower-case hex digits (format 01b), or null: any ISID (format 00b). */
  isid: string | null;
  /** Bytes this TransportID occupies in the list. */
  length: number;
}

/** Decode one iSCSI TransportID at `offset`; `buf` ends where the TransportID list ends. */
export function decodeTransportId(buf: Buffer, offset: number): Decoded<TransportId> {
  if (offset + TID_HEADER_LENGTH > buf.length) return fail('ParameterListLengthError');
  const w = TID_HEADER.decode(buf, offset);
  if (w.h.protocolId !== PROTOCOL_ID_ISCSI) return fail('InvalidFieldInParameterList', offset, 3);
  if (w.h.formatCode !== TRANSPORTID_FORMAT_NAME && w.h.formatCode !== TRANSPORTID_FORMAT_PORT) {
    return fail('InvalidFieldInParameterList', offset, 7);
  }
  const length = TID_HEADER_LENGTH + w.additionalLength;
  // ADDITIONAL LENGTH: a multiple of four, at least 20 (SPC-5 §7.6.4.6).
  if (w.additionalLength < 20 || w.additionalLength % 4 !== 0) return fail('InvalidFieldInParameterList', offset + 2);
  if (offset + length > buf.length) return fail('ParameterListLengthError');
  const body = buf.subarray(offset + TID_HEADER_LENGTH, offset + length);
  const nul = body.indexOf(0);
  if (nul <= 0) return fail('InvalidFieldInParameterList', offset + TID_HEADER_LENGTH);
  const text = body.toString('utf8', 0, nul).toLowerCase();
  if (w.h.formatCode === TRANSPORTID_FORMAT_NAME) return { ok: true, value: { initiatorName: text, isid: null, length } };
  const sep = text.lastIndexOf(ISID_SEPARATOR);
  const isid = sep < 0 ? '' : text.slice(sep + ISID_SEPARATOR.length);
  if (sep <= 0 || !/^[0-9a-f]{12}$/.test(isid)) return fail('InvalidFieldInParameterList', offset + TID_HEADER_LENGTH);
  return { ok: true, value: { initiatorName: text.slice(0, sep), isid, length } };
}

/** Encode an iSCSI TransportID: format 01b when an ISID is given, else 00b. */
export function encodeTransportId(initiatorName: string, isid: string | null): Buffer {
  const text = isid === null ? initiatorName : `${initiatorName}${ISID_SEPARATOR}${isid}`;
  const textLength = Buffer.byteLength(text) + 1; // NUL terminator
  const additionalLength = Math.max(20, (textLength + 3) & ~3);
  const b = Buffer.alloc(TID_HEADER_LENGTH + additionalLength);
  TID_HEADER.encode({
    h: { formatCode: isid === null ? TRANSPORTID_FORMAT_NAME : TRANSPORTID_FORMAT_PORT, protocolId: PROTOCOL_ID_ISCSI },
    additionalLength,
  }, b);
  b.write(text, TID_HEADER_LENGTH);
  return b;
}

// ---------------------------------------------------------------------------------------------
// PERSISTENT RESERVE IN parameter data

/** PRGENERATION + ADDITIONAL LENGTH, common head of READ KEYS / READ RESERVATION / READ FULL STATUS. */
const PRIN_HEADER = BL.struct<{ generation: number; additionalLength: number }>([
  BL.u32be('generation'),
  BL.u32be('additionalLength'),
]);
const PRIN_HEADER_LENGTH = 8;

interface ScopeTypeWire { scope: number; type: number }
const scopeType = (): BL.BitStructure<ScopeTypeWire> => {
  const s = BL.bits<ScopeTypeWire>(BL.u8(), true, 'scopeType');
  s.addField(4, 'scope');
  s.addField(4, 'type');
  return s;
};

/** SPC-5 §6.16.2 READ KEYS parameter data. */
export function encodeReadKeys(generation: number, keys: readonly bigint[]): Buffer {
  const b = Buffer.alloc(PRIN_HEADER_LENGTH + 8 * keys.length);
  PRIN_HEADER.encode({ generation: generation >>> 0, additionalLength: 8 * keys.length }, b);
  keys.forEach((k, i) => b.writeBigUInt64BE(BigInt.asUintN(64, k), PRIN_HEADER_LENGTH + 8 * i));
  return b;
}

/** SPC-5 §6.16.3 READ RESERVATION descriptor (16 bytes). */
const RESERVATION_DESCRIPTOR = BL.struct<{ reservationKey: Buffer; scopeType: ScopeTypeWire }>([
  BL.blob(8, 'reservationKey'),   // 8-15
  BL.u32be('obsolete16'),         // 16-19
  BL.u8('reserved20'),            // 20
  scopeType(),                    // 21
  BL.u16be('obsolete22'),         // 22-23
]);

/** SPC-5 §6.16.3 READ RESERVATION parameter data. `reservation` null: no persistent reservation. */
export function encodeReadReservation(generation: number, reservation: { key: bigint; type: PrType } | null): Buffer {
  const b = Buffer.alloc(PRIN_HEADER_LENGTH + (reservation ? RESERVATION_DESCRIPTOR.span : 0));
  PRIN_HEADER.encode({ generation: generation >>> 0, additionalLength: reservation ? RESERVATION_DESCRIPTOR.span : 0 }, b);
  if (reservation) {
    RESERVATION_DESCRIPTOR.encode({
      reservationKey: keyBytes(reservation.key),
      scopeType: { scope: LU_SCOPE, type: reservation.type },
    }, b, PRIN_HEADER_LENGTH);
  }
  return b;
}

export interface PrCapabilities {
  /** Replace Lost Reservation Capable. */
  rlrC: boolean;
  /** Compatible Reservation Handling (SPC-5 §5.14.3 exceptions to SPC-2 RESERVE/RELEASE). */
  crh: boolean;
  /** Specify Initiator Ports Capable. */
  sipC: boolean;
  /** All Target Ports Capable. */
  atpC: boolean;
  /** Persist Through Power Loss Capable. */
  ptplC: boolean;
  /** Type Mask Valid. */
  tmv: boolean;
  /** ALLOW COMMANDS (3 bits, SPC-5 §6.16.4 table). */
  allowCommands: number;
  /** Persist Through Power Loss Activated (the last APTPL). */
  ptplA: boolean;
  /** Supported reservation types. */
  types: readonly PrType[];
}

interface CapsFlags1 { rlrC: boolean; crh: boolean; sipC: boolean; atpC: boolean; ptplC: boolean }
interface CapsFlags2 { tmv: boolean; allowCommands: number; ptplA: boolean }
interface TypeMaskWire { wrExAr: boolean; exAcRo: boolean; wrExRo: boolean; exAc: boolean; wrEx: boolean; exAcAr: boolean }

const capsFlags1 = BL.bits<CapsFlags1>(BL.u8(), true, 'f1');
capsFlags1.addBoolean('rlrC');   // bit 7
capsFlags1.addField(2);
capsFlags1.addBoolean('crh');    // bit 4
capsFlags1.addBoolean('sipC');   // bit 3
capsFlags1.addBoolean('atpC');   // bit 2
capsFlags1.addField(1);
capsFlags1.addBoolean('ptplC');  // bit 0
const capsFlags2 = BL.bits<CapsFlags2>(BL.u8(), true, 'f2');
capsFlags2.addBoolean('tmv');           // bit 7
capsFlags2.addField(3, 'allowCommands'); // bits 6-4
capsFlags2.addField(3);
capsFlags2.addBoolean('ptplA');         // bit 0
/** PERSISTENT RESERVATION TYPE MASK, bytes 4-5 (SPC-5 §6.16.4). */
const typeMask = BL.bits<TypeMaskWire>(BL.u16be(), true, 'mask');
typeMask.addBoolean('wrExAr'); // byte 4 bit 7
typeMask.addBoolean('exAcRo'); // byte 4 bit 6
typeMask.addBoolean('wrExRo'); // byte 4 bit 5
typeMask.addField(1);
typeMask.addBoolean('exAc');   // byte 4 bit 3
typeMask.addField(1);
typeMask.addBoolean('wrEx');   // byte 4 bit 1
typeMask.addField(8);
typeMask.addBoolean('exAcAr'); // byte 5 bit 0

/** SPC-5 §6.16.4 REPORT CAPABILITIES parameter data (8 bytes). */
const REPORT_CAPABILITIES = BL.struct<{ length: number; f1: CapsFlags1; f2: CapsFlags2; mask: TypeMaskWire }>([
  BL.u16be('length'), capsFlags1, capsFlags2, typeMask, BL.u16be('reserved6'),
]);

export function encodeReportCapabilities(c: PrCapabilities): Buffer {
  const b = Buffer.alloc(REPORT_CAPABILITIES.span);
  const has = (t: PrType): boolean => c.types.includes(t);
  REPORT_CAPABILITIES.encode({
    length: REPORT_CAPABILITIES.span,
    f1: { rlrC: c.rlrC, crh: c.crh, sipC: c.sipC, atpC: c.atpC, ptplC: c.ptplC },
    f2: { tmv: c.tmv, allowCommands: c.allowCommands & 7, ptplA: c.ptplA },
    mask: {
      wrExAr: has(PrType.WriteExclusiveAllRegistrants),
      exAcRo: has(PrType.ExclusiveAccessRegistrantsOnly),
      wrExRo: has(PrType.WriteExclusiveRegistrantsOnly),
      exAc: has(PrType.ExclusiveAccess),
      wrEx: has(PrType.WriteExclusive),
      exAcAr: has(PrType.ExclusiveAccessAllRegistrants),
    },
  }, b);
  return b;
}

export interface FullStatusDescriptor {
  key: bigint;
  allTgPt: boolean;
  /** This I_T nexus (or set) holds the reservation; `type` is then meaningful. */
  rHolder: boolean;
  type: PrType | 0;
  relativeTargetPortId: number;
  initiatorName: string;
  isid: string | null;
}

interface FullStatusFlags { allTgPt: boolean; rHolder: boolean }
const fullStatusFlags = BL.bits<FullStatusFlags>(BL.u8(), true, 'flags');
fullStatusFlags.addField(6);
fullStatusFlags.addBoolean('allTgPt'); // bit 1
fullStatusFlags.addBoolean('rHolder'); // bit 0

/** SPC-5 §6.16.5 full status descriptor, the 24 bytes before its TransportID. */
const FULL_STATUS_DESCRIPTOR = BL.struct<{
  reservationKey: Buffer; flags: FullStatusFlags; scopeType: ScopeTypeWire; relativeTargetPortId: number; additionalLength: number;
}>([
  BL.blob(8, 'reservationKey'),        // 0-7
  BL.u32be('reserved8'),               // 8-11
  fullStatusFlags,                     // 12
  scopeType(),                         // 13
  BL.u32be('reserved14'),              // 14-17
  BL.u16be('relativeTargetPortId'),    // 18-19
  BL.u32be('additionalLength'),        // 20-23: TransportID length
]);

/** SPC-5 §6.16.5 READ FULL STATUS parameter data. */
export function encodeReadFullStatus(generation: number, descriptors: readonly FullStatusDescriptor[]): Buffer {
  const tids = descriptors.map((d) => encodeTransportId(d.initiatorName, d.isid));
  const bodyLength = tids.reduce((n, t) => n + FULL_STATUS_DESCRIPTOR.span + t.length, 0);
  const b = Buffer.alloc(PRIN_HEADER_LENGTH + bodyLength);
  PRIN_HEADER.encode({ generation: generation >>> 0, additionalLength: bodyLength }, b);
  let o = PRIN_HEADER_LENGTH;
  descriptors.forEach((d, i) => {
    FULL_STATUS_DESCRIPTOR.encode({
      reservationKey: keyBytes(d.key),
      flags: { allTgPt: d.allTgPt, rHolder: d.rHolder },
      scopeType: { scope: LU_SCOPE, type: d.rHolder ? d.type : 0 },
      relativeTargetPortId: d.allTgPt ? 0 : d.relativeTargetPortId,
      additionalLength: tids[i].length,
    }, b, o);
    o += FULL_STATUS_DESCRIPTOR.span;
    o += tids[i].copy(b, o);
  });
  return b;
}
