/**
 * EXTENDED COPY (LID1) and RECEIVE COPY RESULTS byte layouts (SPC-4 §6.4, §6.18; the third-party
 * copy model of SPC-4 §5.17). Pure codec: it parses the parameter list into typed descriptors and
 * encodes the RECEIVE COPY RESULTS answers and the Third-party Copy VPD page descriptors. Which
 * descriptors are *supported*, and what a descriptor means for the device, is decided in
 * src/scsi/xcopy.ts.
 *
 * Decoding stops at the first structural error and reports it as an XcopyFormatError naming the
 * sense reason and the byte offset in the parameter list, so the caller can raise the right
 * sense without re-reading bytes.
 */

export const OP_EXTENDED_COPY = 0x83;
export const OP_RECEIVE_COPY_RESULTS = 0x84;

/** EXTENDED COPY service actions (SPC-4 §6.4): only LID1 here. */
export const XCOPY_SA_LID1 = 0x00;

/** RECEIVE COPY RESULTS service actions (SPC-4 §6.18, table 225). */
export const enum RcrServiceAction {
  CopyStatus = 0x00,
  ReceiveData = 0x01,
  OperatingParameters = 0x03,
  FailedSegmentDetails = 0x04,
}

/** Parameter list header length (SPC-4 §6.4.1, table 102). */
export const XCOPY_HEADER_LENGTH = 16;
/** Every CSCD (target) descriptor is 32 bytes (SPC-4 §6.4.5.1). */
export const CSCD_DESCRIPTOR_LENGTH = 32;

/** CSCD descriptor type code of the Identification descriptor (SPC-4 §6.4.5.5). */
export const CSCD_IDENTIFICATION = 0xe4;
/** Segment descriptor type codes (SPC-4 §6.4.6, table 109). */
export const SEG_BLOCK_TO_BLOCK = 0x02;
export const SEG_BLOCK_TO_BLOCK_OFFSET = 0x0a;

/** LIST ID USAGE (SPC-4 §6.4.1 table 103). */
export const enum ListIdUsage {
  /** Hold results for RECEIVE COPY RESULTS; the list identifier is in use. */
  Hold = 0b00,
  /** Do not hold results; the list identifier is still in use while the copy runs. */
  NoHold = 0b10,
  /** No list identifier: nothing held, LIST IDENTIFIER must be zero. */
  None = 0b11,
}

export type XcopyFormatReason =
  | 'ParameterListLengthError'
  | 'InvalidFieldInParameterList'
  | 'UnsupportedTargetDescriptorType'
  | 'UnsupportedSegmentDescriptorType'
  | 'TooManyTargetDescriptors'
  | 'TooManySegmentDescriptors';

/** A structural error in the parameter list, with the offending byte (and bit) offset. */
export class XcopyFormatError extends Error {
  constructor(readonly reason: XcopyFormatReason, readonly byte?: number, readonly bit?: number) {
    super(`${reason}${byte !== undefined ? ` at byte ${byte}` : ''}`);
  }
}

export interface XcopyHeader {
  listId: number;
  /** STR: sequential striped (only a hint for stream devices). */
  str: boolean;
  listIdUsage: number;
  priority: number;
  cscdListLength: number;
  segmentListLength: number;
  inlineDataLength: number;
}

/** An Identification CSCD descriptor (0xE4): names an LU by one of its VPD 0x83 designators. */
export interface IdentificationCscd {
  type: typeof CSCD_IDENTIFICATION;
  /** Byte offset of the descriptor in the parameter list. */
  offset: number;
  /** LU ID TYPE (byte 1 bits 7-6): 00b LUN, 01b proxy token, others reserved. */
  luIdType: number;
  /** NUL: the descriptor names no LU (a null device, SPC-4 §6.4.5.1). */
  nul: boolean;
  peripheralDeviceType: number;
  relativeInitiatorPortId: number;
  codeSet: number;
  association: number;
  designatorType: number;
  designator: Buffer;
  /** Block device type-specific parameters (SPC-4 §6.4.5.2 / SBC): PAD and DISK BLOCK LENGTH. */
  pad: boolean;
  diskBlockLength: number;
}

export interface BlockToBlockSegment {
  type: typeof SEG_BLOCK_TO_BLOCK;
  offset: number;
  /** DC: NUMBER OF BLOCKS counts destination (1) or source (0) blocks. */
  dc: boolean;
  cat: boolean;
  source: number;
  destination: number;
  blocks: number;
  sourceLba: bigint;
  destinationLba: bigint;
}

/** Block device with offset to block device with offset (SPC-4 §6.4.6.7): a byte-granular copy. */
export interface BlockOffsetSegment {
  type: typeof SEG_BLOCK_TO_BLOCK_OFFSET;
  offset: number;
  cat: boolean;
  source: number;
  destination: number;
  bytes: number;
  sourceLba: bigint;
  destinationLba: bigint;
  sourceByteOffset: number;
  destinationByteOffset: number;
}

export type SegmentDescriptor = BlockToBlockSegment | BlockOffsetSegment;

export interface XcopyParameterList {
  header: XcopyHeader;
  cscds: IdentificationCscd[];
  segments: SegmentDescriptor[];
}

export interface XcopyLimits {
  maxCscdDescriptors: number;
  maxSegmentDescriptors: number;
  /** MAXIMUM DESCRIPTOR LIST LENGTH: CSCD plus segment descriptor bytes. */
  maxDescriptorListLength: number;
  supportedCscdTypes: readonly number[];
  supportedSegmentTypes: readonly number[];
}

export function decodeXcopyHeader(p: Buffer): XcopyHeader {
  return {
    listId: p[0],
    str: (p[1] & 0x20) !== 0,
    listIdUsage: (p[1] >> 3) & 0x03,
    priority: p[1] & 0x07,
    cscdListLength: p.readUInt16BE(2),
    segmentListLength: p.readUInt32BE(8),
    inlineDataLength: p.readUInt32BE(12),
  };
}

/**
 * Parse and check the structure of an EXTENDED COPY(LID1) parameter list (SPC-4 §6.4.1, §6.4.3).
 * The order of checks follows the standard's error list: the lengths first (a truncated list
 * transfers nothing, §6.4.1), then the descriptor list limit, then the descriptor counts, then
 * each descriptor's type code and fields.
 */
export function decodeXcopyParameterList(p: Buffer, lim: XcopyLimits): XcopyParameterList {
  if (p.length < XCOPY_HEADER_LENGTH) throw new XcopyFormatError('ParameterListLengthError');
  const header = decodeXcopyHeader(p);
  if (p[1] & 0xc0) throw new XcopyFormatError('InvalidFieldInParameterList', 1, 31 - Math.clz32(p[1] & 0xc0));
  if (header.listIdUsage === 0b01) throw new XcopyFormatError('InvalidFieldInParameterList', 1, 4);
  if (header.listIdUsage === ListIdUsage.None && header.listId !== 0) throw new XcopyFormatError('InvalidFieldInParameterList', 0);
  // No inline data or embedded data: nothing here may use it (block to block only).
  if (header.inlineDataLength !== 0) throw new XcopyFormatError('InvalidFieldInParameterList', 12);
  const total = XCOPY_HEADER_LENGTH + header.cscdListLength + header.segmentListLength;
  if (total > p.length) throw new XcopyFormatError('ParameterListLengthError');
  if (header.cscdListLength + header.segmentListLength > lim.maxDescriptorListLength) {
    throw new XcopyFormatError('ParameterListLengthError');
  }
  if (header.cscdListLength % CSCD_DESCRIPTOR_LENGTH !== 0) throw new XcopyFormatError('ParameterListLengthError');
  const cscdCount = header.cscdListLength / CSCD_DESCRIPTOR_LENGTH;
  if (cscdCount > lim.maxCscdDescriptors) throw new XcopyFormatError('TooManyTargetDescriptors');

  const cscds: IdentificationCscd[] = [];
  let o = XCOPY_HEADER_LENGTH;
  for (let i = 0; i < cscdCount; i++, o += CSCD_DESCRIPTOR_LENGTH) {
    if (!lim.supportedCscdTypes.includes(p[o])) throw new XcopyFormatError('UnsupportedTargetDescriptorType', o);
    cscds.push(decodeIdentificationCscd(p, o));
  }

  const segments: SegmentDescriptor[] = [];
  const segEnd = o + header.segmentListLength;
  while (o < segEnd) {
    if (segments.length === lim.maxSegmentDescriptors) throw new XcopyFormatError('TooManySegmentDescriptors');
    if (o + 4 > segEnd) throw new XcopyFormatError('ParameterListLengthError');
    const type = p[o];
    const len = 4 + p.readUInt16BE(o + 2);
    if (!lim.supportedSegmentTypes.includes(type)) throw new XcopyFormatError('UnsupportedSegmentDescriptorType', o);
    if (o + len > segEnd) throw new XcopyFormatError('ParameterListLengthError');
    segments.push(decodeSegment(p, o, len));
    o += len;
  }
  return { header, cscds, segments };
}

function decodeIdentificationCscd(p: Buffer, o: number): IdentificationCscd {
  const designatorLength = p[o + 7];
  // The designator field is 20 bytes (SPC-4 §6.4.5.5): a longer one cannot be carried.
  if (designatorLength > 20) throw new XcopyFormatError('InvalidFieldInParameterList', o + 7);
  return {
    type: CSCD_IDENTIFICATION,
    offset: o,
    luIdType: (p[o + 1] >> 6) & 0x03,
    nul: (p[o + 1] & 0x20) !== 0,
    peripheralDeviceType: p[o + 1] & 0x1f,
    relativeInitiatorPortId: p.readUInt16BE(o + 2),
    codeSet: p[o + 4] & 0x0f,
    association: (p[o + 5] >> 4) & 0x03,
    designatorType: p[o + 5] & 0x0f,
    designator: p.subarray(o + 8, o + 8 + designatorLength),
    pad: (p[o + 28] & 0x04) !== 0,
    diskBlockLength: (p[o + 29] << 16) | (p[o + 30] << 8) | p[o + 31],
  };
}

function decodeSegment(p: Buffer, o: number, len: number): SegmentDescriptor {
  const type = p[o];
  if (type === SEG_BLOCK_TO_BLOCK) {
    // DESCRIPTOR LENGTH is 0018h (SPC-4 §6.4.6.5).
    if (len !== 28) throw new XcopyFormatError('InvalidFieldInParameterList', o + 2);
    return {
      type, offset: o,
      dc: (p[o + 1] & 0x02) !== 0,
      cat: (p[o + 1] & 0x01) !== 0,
      source: p.readUInt16BE(o + 4),
      destination: p.readUInt16BE(o + 6),
      blocks: p.readUInt16BE(o + 10),
      sourceLba: p.readBigUInt64BE(o + 12),
      destinationLba: p.readBigUInt64BE(o + 20),
    };
  }
  // SEG_BLOCK_TO_BLOCK_OFFSET: DESCRIPTOR LENGTH 001Ch (SPC-4 §6.4.6.7).
  if (len !== 32) throw new XcopyFormatError('InvalidFieldInParameterList', o + 2);
  return {
    type: SEG_BLOCK_TO_BLOCK_OFFSET, offset: o,
    cat: (p[o + 1] & 0x01) !== 0,
    source: p.readUInt16BE(o + 4),
    destination: p.readUInt16BE(o + 6),
    bytes: p.readUInt32BE(o + 8),
    sourceLba: p.readBigUInt64BE(o + 12),
    destinationLba: p.readBigUInt64BE(o + 20),
    sourceByteOffset: p.readUInt16BE(o + 28),
    destinationByteOffset: p.readUInt16BE(o + 30),
  };
}

// ---- RECEIVE COPY RESULTS parameter data --------------------------------------------------------

export interface OperatingParameters {
  snlid: boolean;
  maxCscdDescriptors: number;
  maxSegmentDescriptors: number;
  maxDescriptorListLength: number;
  maxSegmentLength: number;
  maxInlineDataLength: number;
  heldDataLimit: number;
  maxStreamDeviceTransferSize: number;
  totalConcurrentCopies: number;
  maxConcurrentCopies: number;
  dataSegmentGranularityLog2: number;
  inlineDataGranularityLog2: number;
  heldDataGranularityLog2: number;
  implementedDescriptors: readonly number[];
}

/** OPERATING PARAMETERS (SPC-4 §6.18.4, table 231). */
export function encodeOperatingParameters(op: OperatingParameters): Buffer {
  const b = Buffer.alloc(44 + op.implementedDescriptors.length);
  b.writeUInt32BE(b.length - 4, 0);
  b[4] = op.snlid ? 0x01 : 0;
  b.writeUInt16BE(op.maxCscdDescriptors, 8);
  b.writeUInt16BE(op.maxSegmentDescriptors, 10);
  b.writeUInt32BE(op.maxDescriptorListLength, 12);
  b.writeUInt32BE(op.maxSegmentLength, 16);
  b.writeUInt32BE(op.maxInlineDataLength, 20);
  b.writeUInt32BE(op.heldDataLimit, 24);
  b.writeUInt32BE(op.maxStreamDeviceTransferSize, 28);
  b.writeUInt16BE(op.totalConcurrentCopies, 34);
  b[36] = op.maxConcurrentCopies;
  b[37] = op.dataSegmentGranularityLog2;
  b[38] = op.inlineDataGranularityLog2;
  b[39] = op.heldDataGranularityLog2;
  b[43] = op.implementedDescriptors.length;
  Buffer.from(op.implementedDescriptors).copy(b, 44);
  return b;
}

export function decodeOperatingParameters(b: Buffer): OperatingParameters {
  const n = b[43];
  return {
    snlid: (b[4] & 1) !== 0,
    maxCscdDescriptors: b.readUInt16BE(8),
    maxSegmentDescriptors: b.readUInt16BE(10),
    maxDescriptorListLength: b.readUInt32BE(12),
    maxSegmentLength: b.readUInt32BE(16),
    maxInlineDataLength: b.readUInt32BE(20),
    heldDataLimit: b.readUInt32BE(24),
    maxStreamDeviceTransferSize: b.readUInt32BE(28),
    totalConcurrentCopies: b.readUInt16BE(34),
    maxConcurrentCopies: b[36],
    dataSegmentGranularityLog2: b[37],
    inlineDataGranularityLog2: b[38],
    heldDataGranularityLog2: b[39],
    implementedDescriptors: [...b.subarray(44, 44 + n)],
  };
}

/** COPY MANAGER STATUS / COPY OPERATION STATUS (SPC-4 §6.18.2, table 227). */
export const enum CopyOperationStatus {
  InProgress = 0x00,
  CompletedGood = 0x01,
  CompletedWithErrors = 0x02,
}

export interface CopyStatus {
  /** HDD: held data discarded. */
  hdd: boolean;
  status: CopyOperationStatus;
  segmentsProcessed: number;
  /** TRANSFER COUNT UNITS: log2 of the unit in 2^10 steps (00h bytes, 01h KiB, 02h MiB …). */
  transferCountUnits: number;
  transferCount: number;
}

/** COPY STATUS (SPC-4 §6.18.2, table 226). */
export function encodeCopyStatus(s: CopyStatus): Buffer {
  const b = Buffer.alloc(12);
  b.writeUInt32BE(8, 0);
  b[4] = (s.hdd ? 0x80 : 0) | (s.status & 0x7f);
  b.writeUInt16BE(s.segmentsProcessed & 0xffff, 5);
  b[7] = s.transferCountUnits;
  b.writeUInt32BE(s.transferCount >>> 0, 8);
  return b;
}

/** RECEIVE DATA (SPC-4 §6.18.3): the held data; block to block copies hold none. */
export function encodeReceiveData(held: Buffer): Buffer {
  const b = Buffer.alloc(4 + held.length);
  b.writeUInt32BE(held.length, 0);
  held.copy(b, 4);
  return b;
}

/**
 * FAILED SEGMENT DETAILS (SPC-4 §6.18.5, table 233). `sense` null: the copy has not failed (or is
 * still running): only the AVAILABLE DATA field, zero.
 */
export function encodeFailedSegmentDetails(failure: { status: number; sense: Buffer } | null): Buffer {
  if (!failure) return Buffer.alloc(4);
  const b = Buffer.alloc(60 + failure.sense.length);
  b.writeUInt32BE(b.length - 4, 0);
  b[56] = failure.status;
  b.writeUInt16BE(failure.sense.length, 58);
  failure.sense.copy(b, 60);
  return b;
}

// ---- Third-party Copy VPD page (SPC-4 §7.8.17) ---------------------------------------------------

/** THIRD-PARTY COPY DESCRIPTOR TYPE codes (SPC-4 §7.8.17.1, table 589). */
export const enum TpcDescriptorType {
  SupportedCommands = 0x0001,
  ParameterData = 0x0004,
  SupportedDescriptors = 0x0008,
  SupportedCscdIds = 0x000c,
  GeneralCopyOperations = 0x8001,
}

/** One descriptor: type, length, body padded to a multiple of four bytes. */
function tpcDescriptor(type: number, body: Buffer): Buffer {
  const padded = (body.length + 3) & ~3;
  const b = Buffer.alloc(4 + padded);
  b.writeUInt16BE(type, 0);
  b.writeUInt16BE(padded, 2);
  body.copy(b, 4);
  return b;
}

/** Supported Commands (SPC-4 §7.8.17.3): opcode, service action count, service actions. */
export function supportedCommandsDescriptor(cmds: readonly { opcode: number; serviceActions: readonly number[] }[]): Buffer {
  const list = Buffer.concat(cmds.map((c) => Buffer.from([c.opcode, c.serviceActions.length, ...c.serviceActions])));
  return tpcDescriptor(TpcDescriptorType.SupportedCommands, Buffer.concat([Buffer.from([list.length]), list]));
}

/** Parameter Data (SPC-4 §7.8.17.4): the EXTENDED COPY descriptor limits. */
export function parameterDataDescriptor(p: { maxCscdDescriptors: number; maxSegmentDescriptors: number; maxDescriptorListLength: number; maxInlineDataLength: number }): Buffer {
  const b = Buffer.alloc(28);
  b.writeUInt16BE(p.maxCscdDescriptors, 4);
  b.writeUInt16BE(p.maxSegmentDescriptors, 6);
  b.writeUInt32BE(p.maxDescriptorListLength, 8);
  b.writeUInt32BE(p.maxInlineDataLength, 12);
  return tpcDescriptor(TpcDescriptorType.ParameterData, b);
}

/** Supported Descriptors (SPC-4 §7.8.17.5): CSCD and segment descriptor type codes. */
export function supportedDescriptorsDescriptor(codes: readonly number[]): Buffer {
  return tpcDescriptor(TpcDescriptorType.SupportedDescriptors, Buffer.from([codes.length, ...codes]));
}

/** Supported CSCD Descriptor IDs (SPC-4 §7.8.17.6): the special CSCD IDs (none here). */
export function supportedCscdIdsDescriptor(ids: readonly number[]): Buffer {
  const b = Buffer.alloc(2 + 2 * ids.length);
  b.writeUInt16BE(2 * ids.length, 0);
  ids.forEach((id, i) => b.writeUInt16BE(id, 2 + 2 * i));
  return tpcDescriptor(TpcDescriptorType.SupportedCscdIds, b);
}

/** General Copy Operations (SPC-4 §7.8.17.9). */
export function generalCopyOperationsDescriptor(p: { totalConcurrentCopies: number; maxIdentifiedConcurrentCopies: number; maxSegmentLength: number; dataSegmentGranularityLog2: number; inlineDataGranularityLog2: number }): Buffer {
  const b = Buffer.alloc(28);
  b.writeUInt32BE(p.totalConcurrentCopies, 0);
  b.writeUInt32BE(p.maxIdentifiedConcurrentCopies, 4);
  b.writeUInt32BE(p.maxSegmentLength, 8);
  b[12] = p.dataSegmentGranularityLog2;
  b[13] = p.inlineDataGranularityLog2;
  return tpcDescriptor(TpcDescriptorType.GeneralCopyOperations, b);
}

/** Walk the descriptors of a Third-party Copy VPD page body (for tests and tools). */
export function decodeTpcDescriptors(body: Buffer): { type: number; body: Buffer }[] {
  const out: { type: number; body: Buffer }[] = [];
  let o = 0;
  while (o + 4 <= body.length) {
    const len = body.readUInt16BE(o + 2);
    out.push({ type: body.readUInt16BE(o), body: body.subarray(o + 4, o + 4 + len) });
    o += 4 + len;
  }
  return out;
}

// ---- The initiator's side: encode a LID1 parameter list, decode COPY STATUS ---------------------

/** What an initiator puts in an Identification CSCD descriptor: one VPD 0x83 designator of the LU. */
export interface IdentificationCscdFields {
  codeSet: number;
  association: number;
  designatorType: number;
  /** The designator bytes (at most 20 fit, SPC-4 §6.4.5.5). */
  designator: Buffer;
  peripheralDeviceType?: number;
  diskBlockLength: number;
}

export interface BlockToBlockFields {
  /** CSCD descriptor indexes (0-based, into the list's CSCD descriptors). */
  source: number;
  destination: number;
  /** Blocks (source blocks, DC=0), at most 65535 per segment. */
  blocks: number;
  sourceLba: bigint;
  destinationLba: bigint;
}

/**
 * EXTENDED COPY(LID1) parameter list (SPC-4 §6.4.1 table 102): 16-byte header, Identification
 * CSCD descriptors (§6.4.5.5, 32 bytes each with the block device parameters of §6.4.5.2) and
 * block → block segment descriptors (§6.4.6.5, 28 bytes each). No inline data.
 */
export function encodeXcopyParameterList(p: {
  listId: number; listIdUsage: number; priority?: number; cscds: readonly IdentificationCscdFields[]; segments: readonly BlockToBlockFields[];
}): Buffer {
  const cscdLen = p.cscds.length * CSCD_DESCRIPTOR_LENGTH;
  const segLen = p.segments.length * 28;
  const b = Buffer.alloc(XCOPY_HEADER_LENGTH + cscdLen + segLen);
  b[0] = p.listId & 0xff;
  b[1] = ((p.listIdUsage & 3) << 3) | ((p.priority ?? 0) & 7);
  b.writeUInt16BE(cscdLen, 2);
  b.writeUInt32BE(segLen, 8);
  let o = XCOPY_HEADER_LENGTH;
  for (const c of p.cscds) {
    if (c.designator.length > 20) throw new RangeError('designator longer than 20 bytes');
    b[o] = CSCD_IDENTIFICATION;
    b[o + 1] = (c.peripheralDeviceType ?? 0) & 0x1f; // LU ID TYPE 00b, NUL 0
    b[o + 4] = c.codeSet & 0x0f;
    b[o + 5] = ((c.association & 3) << 4) | (c.designatorType & 0x0f);
    b[o + 7] = c.designator.length;
    c.designator.copy(b, o + 8);
    b.writeUIntBE(c.diskBlockLength, o + 29, 3);
    o += CSCD_DESCRIPTOR_LENGTH;
  }
  for (const s of p.segments) {
    if (s.blocks > 0xffff) throw new RangeError('a block → block segment holds at most 65535 blocks');
    b[o] = SEG_BLOCK_TO_BLOCK;
    b.writeUInt16BE(24, o + 2);
    b.writeUInt16BE(s.source, o + 4);
    b.writeUInt16BE(s.destination, o + 6);
    b.writeUInt16BE(s.blocks, o + 10);
    b.writeBigUInt64BE(s.sourceLba, o + 12);
    b.writeBigUInt64BE(s.destinationLba, o + 20);
    o += 28;
  }
  return b;
}

/** RECEIVE COPY RESULTS, COPY STATUS parameter data (SPC-4 §6.18.3, table 228). */
export function decodeCopyStatus(b: Buffer): CopyStatus {
  if (b.length < 12) throw new RangeError('COPY STATUS data shorter than 12 bytes');
  return {
    hdd: (b[4] & 0x80) !== 0,
    status: b[4] & 0x7f,
    segmentsProcessed: b.readUInt16BE(5),
    transferCountUnits: b[7],
    transferCount: b.readUInt32BE(8),
  } as CopyStatus;
}
