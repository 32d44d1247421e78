/**
 * Vital product data pages (SPC-5 §7.7, SBC-4 §6.6). Pure codec: page header, designation
 * descriptors, and the fixed-format pages described once with `buffer-layout` (cold path).
 * Variable-length pages (supported pages, serial number, device identification) are a header
 * plus a body, assembled by hand.
 */
import * as BL from 'buffer-layout';

/** VPD page codes (SPC-5 §7.7.1 table 486, SBC-4 §6.6.1). */
export const enum VpdPage {
  SupportedPages = 0x00,
  UnitSerialNumber = 0x80,
  DeviceIdentification = 0x83,
  ExtendedInquiry = 0x86,
  ScsiPorts = 0x88,
  ThirdPartyCopy = 0x8f,
  BlockLimits = 0xb0,
  BlockDeviceCharacteristics = 0xb1,
  LogicalBlockProvisioning = 0xb2,
}

/** VPD page header (SPC-5 §7.7.1 table 485): 4 bytes, PAGE LENGTH excludes the header. */
export const VPD_HEADER_LENGTH = 4;
const vpdByte0 = BL.bits(BL.u8(), true, 'byte0');
vpdByte0.addField(3, 'peripheralQualifier');
vpdByte0.addField(5, 'peripheralDeviceType');
const VPD_HEADER = BL.struct<{ byte0: { peripheralQualifier: number; peripheralDeviceType: number }; pageCode: number; pageLength: number }>([
  vpdByte0,                 // 0
  BL.u8('pageCode'),        // 1
  BL.u16be('pageLength'),   // 2-3
]);

/** A page: header then `body`. */
export function vpdPage(pdt: number, page: number, body: Buffer): Buffer {
  const b = Buffer.alloc(VPD_HEADER_LENGTH + body.length);
  VPD_HEADER.encode({ byte0: { peripheralQualifier: 0, peripheralDeviceType: pdt }, pageCode: page, pageLength: body.length }, b);
  body.copy(b, VPD_HEADER_LENGTH);
  return b;
}

export function decodeVpdHeader(b: Buffer): { pdt: number; page: number; length: number } {
  const h = VPD_HEADER.decode(b);
  return { pdt: h.byte0.peripheralDeviceType, page: h.pageCode, length: h.pageLength };
}

// ---- Device Identification (SPC-5 §7.7.6) ---------------------------------------------------

/** PROTOCOL IDENTIFIER (SPC-5 §7.6.1 table 444). */
export const PROTOCOL_ISCSI = 0x5;

export const enum CodeSet { Binary = 1, Ascii = 2, Utf8 = 3 }
/** ASSOCIATION: what the designator names. */
export const enum Association { LogicalUnit = 0, TargetPort = 1, TargetDevice = 2 }
/** DESIGNATOR TYPE (SPC-5 §7.7.6.1 table 493). */
export const enum DesignatorType {
  VendorSpecific = 0, T10VendorId = 1, Eui64 = 2, Naa = 3, RelativeTargetPort = 4,
  TargetPortGroup = 5, LogicalUnitGroup = 6, Md5 = 7, ScsiNameString = 8,
}

export interface Designator {
  /** Set (with PIV) for target port and target device associations: the transport is iSCSI. */
  protocol?: number;
  codeSet: CodeSet;
  association: Association;
  type: DesignatorType;
  value: Buffer;
}

const desigByte0 = BL.bits(BL.u8(), true, 'byte0');
desigByte0.addField(4, 'protocolIdentifier');
desigByte0.addField(4, 'codeSet');
const desigByte1 = BL.bits(BL.u8(), true, 'byte1');
desigByte1.addBoolean('piv');
desigByte1.addField(1, 'reserved');
desigByte1.addField(2, 'association');
desigByte1.addField(4, 'designatorType');
/** Designation descriptor header (SPC-5 §7.7.6.1 table 491). */
const DESIGNATOR_HEADER = BL.struct([desigByte0, desigByte1, BL.u8('reserved2'), BL.u8('designatorLength')]);

export function encodeDesignator(d: Designator): Buffer {
  const b = Buffer.alloc(4 + d.value.length);
  DESIGNATOR_HEADER.encode({
    byte0: { protocolIdentifier: d.protocol ?? 0, codeSet: d.codeSet },
    byte1: { piv: d.protocol !== undefined, reserved: 0, association: d.association, designatorType: d.type },
    reserved2: 0,
    designatorLength: d.value.length,
  }, b);
  d.value.copy(b, 4);
  return b;
}

export function decodeDesignators(body: Buffer): Designator[] {
  const out: Designator[] = [];
  let o = 0;
  while (o + 4 <= body.length) {
    const h = DESIGNATOR_HEADER.decode(body, o);
    const value = body.subarray(o + 4, o + 4 + h.designatorLength);
    out.push({
      protocol: h.byte1.piv ? h.byte0.protocolIdentifier : undefined,
      codeSet: h.byte0.codeSet, association: h.byte1.association, type: h.byte1.designatorType, value,
    });
    o += 4 + h.designatorLength;
  }
  return out;
}

/**
 * An NAA designator body (SPC-5 §7.7.6.6) from its hex digits, or null when they are not one. The
 * first digit is the NAA field and sets the length: 2 (IEEE Extended), 3 (Locally Assigned) and 5
 * (IEEE Registered) are 8 bytes, 6 (IEEE Registered Extended, as LIO's 6001405… WWNs) 16 bytes.
 */
export function parseNaa(hex: string): Buffer | null {
  const h = hex.toLowerCase();
  if (/^[235][0-9a-f]{15}$/.test(h) || /^6[0-9a-f]{31}$/.test(h)) return Buffer.from(h, 'hex');
  return null;
}

/**
 * The NAA designator an LU reports (VPD 0x83) and XCOPY matches: its configured NAA as given
 * (the config refuses anything parseNaa does not take). A programmatic LU with some other 16 hex
 * digits gets them as NAA 5, so the designator is always well formed.
 */
export function naaDesignatorBytes(hex: string): Buffer {
  const naa = parseNaa(hex);
  if (naa) return naa;
  const h = hex.toLowerCase().replace(/[^0-9a-f]/g, '').padEnd(16, '0').slice(0, 16);
  return Buffer.from('5' + h.slice(1), 'hex');
}

/** SCSI name string (SPC-5 §7.7.6.11): UTF-8, null-terminated, padded to a multiple of 4. */
export function scsiNameString(name: string): Buffer {
  const s = Buffer.from(name, 'utf8');
  const len = (s.length + 1 + 3) & ~3;
  const b = Buffer.alloc(Math.min(len, 256));
  s.copy(b, 0, 0, b.length - 1);
  return b;
}

/** RELATIVE TARGET PORT / TARGET PORT GROUP designator bodies: 2 reserved bytes, 2-byte id. */
export function u16Designator(id: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt16BE(id & 0xffff, 2);
  return b;
}

// ---- SCSI Ports (SPC-5 §7.7.17) -------------------------------------------------------------

/** One SCSI port of the page: a target port, described by its designation descriptors. */
export interface ScsiPortDescriptor {
  relativePortId: number;
  /** Encoded designation descriptors (encodeDesignator), ASSOCIATION 01b: the target port. */
  targetPortDescriptors: Buffer[];
}

/**
 * SCSI Ports page body: per port, RELATIVE PORT IDENTIFIER (bytes 2-3), an empty INITIATOR PORT
 * TRANSPORTID (length 0 at bytes 6-7: these ports are not initiator ports), then the TARGET
 * PORT DESCRIPTORS LENGTH (2 reserved bytes, 2 length bytes) and the descriptors.
 */
export function scsiPortsBody(ports: readonly ScsiPortDescriptor[]): Buffer {
  const parts: Buffer[] = [];
  for (const p of ports) {
    const tpd = Buffer.concat(p.targetPortDescriptors);
    const head = Buffer.alloc(12);
    head.writeUInt16BE(p.relativePortId & 0xffff, 2);
    head.writeUInt16BE(tpd.length, 10);
    parts.push(head, tpd);
  }
  return Buffer.concat(parts);
}

/** Parses a SCSI Ports page body (tests, tools). */
export function decodeScsiPorts(body: Buffer): { relativePortId: number; initiatorTransportId: Buffer; targetPorts: Designator[] }[] {
  const out: { relativePortId: number; initiatorTransportId: Buffer; targetPorts: Designator[] }[] = [];
  let o = 0;
  while (o + 8 <= body.length) {
    const relativePortId = body.readUInt16BE(o + 2);
    const tidLen = body.readUInt16BE(o + 6);
    const initiatorTransportId = body.subarray(o + 8, o + 8 + tidLen);
    o += 8 + tidLen;
    if (o + 4 > body.length) break;
    const tpdLen = body.readUInt16BE(o + 2);
    out.push({ relativePortId, initiatorTransportId, targetPorts: decodeDesignators(body.subarray(o + 4, o + 4 + tpdLen)) });
    o += 4 + tpdLen;
  }
  return out;
}

// ---- Extended INQUIRY Data (SPC-5 §7.7.8) ----------------------------------------------------

export interface ExtendedInquiry {
  headsup: boolean; ordsup: boolean; simpsup: boolean;
  wuSup: boolean; crdSup: boolean; nvSup: boolean; vSup: boolean;
  luiclr: boolean;
  maxSenseLength: number;
}

const ext5 = BL.bits(BL.u8(), true, 'byte5');
ext5.addField(2, 'r'); ext5.addBoolean('uaskSup'); ext5.addBoolean('groupSup'); ext5.addBoolean('priorSup');
ext5.addBoolean('headsup'); ext5.addBoolean('ordsup'); ext5.addBoolean('simpsup');
const ext6 = BL.bits(BL.u8(), true, 'byte6');
ext6.addField(4, 'r'); ext6.addBoolean('wuSup'); ext6.addBoolean('crdSup'); ext6.addBoolean('nvSup'); ext6.addBoolean('vSup');
const ext7 = BL.bits(BL.u8(), true, 'byte7');
ext7.addField(3, 'r'); ext7.addBoolean('piiSup'); ext7.addField(3, 'r2'); ext7.addBoolean('luiclr');
/** Page body from byte 4 to byte 63 (PAGE LENGTH 3Ch). */
const EXTENDED_INQUIRY = BL.struct([
  BL.u8('byte4'),        // 4  ACTIVATE MICROCODE, SPT, GRD_CHK, APP_CHK, REF_CHK: no protection
  ext5,                  // 5
  ext6,                  // 6
  ext7,                  // 7
  BL.u8('byte8'),        // 8  R_SUP, CBCS
  BL.u8('byte9'),        // 9  MULTI I_T NEXUS MICROCODE DOWNLOAD
  BL.u16be('selfTest'),  // 10-11 EXTENDED SELF-TEST COMPLETION MINUTES
  BL.u8('byte12'),       // 12 POA_SUP HRA_SUP VSA_SUP
  BL.u8('maxSenseLength'), // 13 MAXIMUM SUPPORTED SENSE DATA LENGTH
  BL.blob(50, 'reserved'), // 14-63
]);

export function extendedInquiryBody(e: ExtendedInquiry): Buffer {
  const b = Buffer.alloc(EXTENDED_INQUIRY.span);
  EXTENDED_INQUIRY.encode({
    byte5: { r: 0, uaskSup: false, groupSup: false, priorSup: false, headsup: e.headsup, ordsup: e.ordsup, simpsup: e.simpsup },
    byte6: { r: 0, wuSup: e.wuSup, crdSup: e.crdSup, nvSup: e.nvSup, vSup: e.vSup },
    byte7: { r: 0, piiSup: false, r2: 0, luiclr: e.luiclr },
    maxSenseLength: e.maxSenseLength,
  }, b);
  return b;
}

// ---- Block Limits (SBC-4 §6.6.4) -------------------------------------------------------------

export interface BlockLimitsPage {
  wsnz: boolean;
  maxCompareAndWriteLength: number;
  optimalTransferLengthGranularity: number;
  maxTransferLength: number;
  optimalTransferLength: number;
  maxPrefetchLength: number;
  maxUnmapLbaCount: number;
  maxUnmapBlockDescriptorCount: number;
  optimalUnmapGranularity: number;
  ugavalid: boolean;
  unmapGranularityAlignment: number;
  maxWriteSameLength: bigint;
  maxAtomicTransferLength: number;
  atomicAlignment: number;
  atomicTransferLengthGranularity: number;
  maxAtomicTransferLengthWithAtomicBoundary: number;
  maxAtomicBoundarySize: number;
}

/** Body from byte 4 to 63 (PAGE LENGTH 3Ch). 64-bit MAXIMUM WRITE SAME LENGTH is two u32 (buffer-layout has no u64). */
const BLOCK_LIMITS = BL.struct([
  BL.u8('wsnz'),                                  // 4  bit 0
  BL.u8('maxCompareAndWriteLength'),              // 5
  BL.u16be('optimalTransferLengthGranularity'),   // 6-7
  BL.u32be('maxTransferLength'),                  // 8-11
  BL.u32be('optimalTransferLength'),              // 12-15
  BL.u32be('maxPrefetchLength'),                  // 16-19
  BL.u32be('maxUnmapLbaCount'),                   // 20-23
  BL.u32be('maxUnmapBlockDescriptorCount'),       // 24-27
  BL.u32be('optimalUnmapGranularity'),            // 28-31
  BL.u32be('ugaValidAndAlignment'),               // 32-35 UGAVALID bit 31, UNMAP GRANULARITY ALIGNMENT
  BL.u32be('maxWriteSameLengthHi'),               // 36-39
  BL.u32be('maxWriteSameLengthLo'),               // 40-43
  BL.u32be('maxAtomicTransferLength'),            // 44-47
  BL.u32be('atomicAlignment'),                    // 48-51
  BL.u32be('atomicTransferLengthGranularity'),    // 52-55
  BL.u32be('maxAtomicTransferLengthWithAtomicBoundary'), // 56-59
  BL.u32be('maxAtomicBoundarySize'),              // 60-63
]);

export function blockLimitsBody(p: BlockLimitsPage): Buffer {
  const b = Buffer.alloc(BLOCK_LIMITS.span);
  BLOCK_LIMITS.encode({
    ...p,
    wsnz: p.wsnz ? 1 : 0,
    ugaValidAndAlignment: ((p.ugavalid ? 0x80000000 : 0) | (p.unmapGranularityAlignment & 0x7fffffff)) >>> 0,
    maxWriteSameLengthHi: Number(p.maxWriteSameLength >> 32n),
    maxWriteSameLengthLo: Number(p.maxWriteSameLength & 0xffffffffn),
  }, b);
  return b;
}

export function decodeBlockLimits(body: Buffer): BlockLimitsPage {
  const w = BLOCK_LIMITS.decode(body);
  return {
    ...w,
    wsnz: (w.wsnz & 1) !== 0,
    ugavalid: (w.ugaValidAndAlignment & 0x80000000) !== 0,
    unmapGranularityAlignment: w.ugaValidAndAlignment & 0x7fffffff,
    maxWriteSameLength: (BigInt(w.maxWriteSameLengthHi) << 32n) | BigInt(w.maxWriteSameLengthLo),
  };
}

// ---- Block Device Characteristics (SBC-4 §6.6.2) ---------------------------------------------

/** MEDIUM ROTATION RATE 0001h: non-rotating medium (solid state). */
export const NON_ROTATING = 0x0001;

export interface BlockDeviceCharacteristics {
  mediumRotationRate: number;
  productType: number;
  /** NOMINAL FORM FACTOR: 0 not reported, 1 5.25", 2 3.5", 3 2.5", 4 1.8", 5 less than 1.8". */
  nominalFormFactor: number;
  /**
   * WABEREQ / WACEREQ (SBC-4 §6.6.2 tables 265, 266): what a read of an LBA not written since a
   * sanitize BLOCK ERASE / CRYPTOGRAPHIC ERASE returns. 0 not specified (the method is not
   * supported), 1 GOOD with indeterminate data, 2 MEDIUM ERROR, 3 MEDIUM ERROR / WRITE AFTER
   * SANITIZE REQUIRED. Absent: 0.
   */
  wabereq?: number;
  wacereq?: number;
  /** FUAB: SYNCHRONIZE CACHE makes FUA-equivalent what it covers durable (SBC-4 §6.6.2). */
  fuab: boolean;
  vbuls: boolean;
}

const bdc7 = BL.bits(BL.u8(), true, 'byte7');
bdc7.addField(2, 'wabereq'); bdc7.addField(2, 'wacereq'); bdc7.addField(4, 'nominalFormFactor');
const bdc8 = BL.bits(BL.u8(), true, 'byte8');
bdc8.addField(2, 'r'); bdc8.addField(2, 'zoned'); bdc8.addField(2, 'r2'); bdc8.addBoolean('fuab'); bdc8.addBoolean('vbuls');
const BDC = BL.struct([
  BL.u16be('mediumRotationRate'), // 4-5
  BL.u8('productType'),           // 6
  bdc7,                           // 7
  bdc8,                           // 8
  BL.blob(55, 'reserved'),        // 9-63
]);

export function blockDeviceCharacteristicsBody(p: BlockDeviceCharacteristics): Buffer {
  const b = Buffer.alloc(BDC.span);
  BDC.encode({
    mediumRotationRate: p.mediumRotationRate, productType: p.productType,
    byte7: { wabereq: (p.wabereq ?? 0) & 3, wacereq: (p.wacereq ?? 0) & 3, nominalFormFactor: p.nominalFormFactor & 0x0f },
    byte8: { r: 0, zoned: 0, r2: 0, fuab: p.fuab, vbuls: p.vbuls },
  }, b);
  return b;
}

// ---- Logical Block Provisioning (SBC-4 §6.6.6) -----------------------------------------------

export const enum ProvisioningType { Full = 0, Resource = 1, Thin = 2 }

export interface LogicalBlockProvisioning {
  thresholdExponent: number;
  lbpu: boolean;
  lbpws: boolean;
  lbpws10: boolean;
  /** LBPRZ field (3 bits in SBC-4): 001b = unmapped blocks read as zero. */
  lbprz: number;
  ancSup: boolean;
  dp: boolean;
  provisioningType: ProvisioningType;
}

const lbp5 = BL.bits(BL.u8(), true, 'byte5');
lbp5.addBoolean('lbpu'); lbp5.addBoolean('lbpws'); lbp5.addBoolean('lbpws10'); lbp5.addField(3, 'lbprz');
lbp5.addBoolean('ancSup'); lbp5.addBoolean('dp');
const lbp6 = BL.bits(BL.u8(), true, 'byte6');
lbp6.addField(5, 'minimumPercentage'); lbp6.addField(3, 'provisioningType');
/** Body bytes 4-7 (PAGE LENGTH 0004h: no provisioning group descriptor, DP=0). */
const LBP = BL.struct([BL.u8('thresholdExponent'), lbp5, lbp6, BL.u8('thresholdPercentage')]);

export function logicalBlockProvisioningBody(p: LogicalBlockProvisioning): Buffer {
  const b = Buffer.alloc(LBP.span);
  LBP.encode({
    thresholdExponent: p.thresholdExponent,
    byte5: { lbpu: p.lbpu, lbpws: p.lbpws, lbpws10: p.lbpws10, lbprz: p.lbprz, ancSup: p.ancSup, dp: p.dp },
    byte6: { minimumPercentage: 0, provisioningType: p.provisioningType },
    thresholdPercentage: 0,
  }, b);
  return b;
}

export function decodeLogicalBlockProvisioning(body: Buffer): LogicalBlockProvisioning {
  const w = LBP.decode(body);
  return { thresholdExponent: w.thresholdExponent, ...w.byte5, provisioningType: w.byte6.provisioningType };
}
