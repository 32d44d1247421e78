/**
 * Standard INQUIRY data (SPC-5 §6.7.2). Pure codec: takes the values, lays out the bytes.
 * Cold path (INQUIRY is issued a handful of times per session), so the fixed part is a
 * declarative `buffer-layout` structure, decoded as easily as it is encoded (tests use that).
 */
import * as BL from 'buffer-layout';

/** Peripheral device type (SPC-5 §6.7.2 table 147): what we are. */
export const PDT_DIRECT_ACCESS = 0x00;

/** VERSION 06h: the device claims conformance to SPC-4 (libiscsi accepts 04h–06h). */
export const VERSION_SPC4 = 0x06;

/** RESPONSE DATA FORMAT: 2 is the only non-obsolete value (SPC-5 §6.7.2). */
export const RESPONSE_DATA_FORMAT = 2;

/**
 * VERSION DESCRIPTOR codes (SPC-5 Annex E table E.x), "no version claimed" form of each.
 * Listed in the order SPC-5 recommends: architecture, transport, primary command set, device type.
 */
export const VERSION_DESCRIPTORS = Object.freeze({
  SAM5: 0x00a0,
  ISCSI: 0x0960,
  SPC4: 0x0460,
  SBC3: 0x04c0,
});

/** Bytes of standard INQUIRY data we return: through the eighth version descriptor and the reserved tail. */
export const STANDARD_INQUIRY_LENGTH = 96;
/** SPC-5 §6.7.2: the first 36 bytes are what every initiator can rely on. */
export const STANDARD_INQUIRY_MIN_LENGTH = 36;

export interface StandardInquiry {
  peripheralQualifier: number;
  peripheralDeviceType: number;
  rmb: boolean;
  luCong: boolean;
  version: number;
  normaca: boolean;
  hisup: boolean;
  responseDataFormat: number;
  additionalLength: number;
  sccs: boolean;
  acc: boolean;
  /** Target port group support: 01b implicit ALUA, 10b explicit, 11b both. */
  tpgs: number;
  threePc: boolean;
  protect: boolean;
  encserv: boolean;
  multip: boolean;
  cmdque: boolean;
  vendor: Buffer;
  product: Buffer;
  revision: Buffer;
  versionDescriptors: number[];
}

const byte0 = BL.bits(BL.u8(), true, 'byte0');
byte0.addField(3, 'peripheralQualifier');
byte0.addField(5, 'peripheralDeviceType');
const byte1 = BL.bits(BL.u8(), true, 'byte1');
byte1.addBoolean('rmb');
byte1.addBoolean('luCong');
byte1.addField(6, 'reserved1');
const byte3 = BL.bits(BL.u8(), true, 'byte3');
byte3.addField(2, 'obsolete3');
byte3.addBoolean('normaca');
byte3.addBoolean('hisup');
byte3.addField(4, 'responseDataFormat');
const byte5 = BL.bits(BL.u8(), true, 'byte5');
byte5.addBoolean('sccs');
byte5.addBoolean('acc');
byte5.addField(2, 'tpgs');
byte5.addBoolean('threePc');
byte5.addField(2, 'reserved5');
byte5.addBoolean('protect');
const byte6 = BL.bits(BL.u8(), true, 'byte6');
byte6.addField(1, 'obsolete6a');
byte6.addBoolean('encserv');
byte6.addField(1, 'vs6');
byte6.addBoolean('multip');
byte6.addField(4, 'obsolete6b');
const byte7 = BL.bits(BL.u8(), true, 'byte7');
byte7.addField(6, 'obsolete7');
byte7.addBoolean('cmdque');
byte7.addField(1, 'vs7');

/** SPC-5 §6.7.2 table 146, bytes 0–95. */
const STANDARD_INQUIRY = BL.struct([
  byte0,                                   // 0
  byte1,                                   // 1
  BL.u8('version'),                        // 2
  byte3,                                   // 3
  BL.u8('additionalLength'),               // 4
  byte5,                                   // 5
  byte6,                                   // 6
  byte7,                                   // 7
  BL.blob(8, 'vendor'),                    // 8-15   T10 VENDOR IDENTIFICATION
  BL.blob(16, 'product'),                  // 16-31  PRODUCT IDENTIFICATION
  BL.blob(4, 'revision'),                  // 32-35  PRODUCT REVISION LEVEL
  BL.blob(20, 'vendorSpecific'),           // 36-55
  BL.u8('byte56'),                         // 56 CLOCKING/QAS/IUS (SPI only)
  BL.u8('reserved57'),                     // 57
  BL.seq(BL.u16be(), 8, 'versionDescriptors'), // 58-73
  BL.blob(22, 'reserved74'),               // 74-95
]);

/** SPC-5 §4.3.1: ASCII data fields are left-aligned and padded with spaces. */
export function asciiField(s: string, length: number): Buffer {
  const b = Buffer.alloc(length, 0x20);
  b.write(s.replace(/[^\x20-\x7e]/g, ' ').slice(0, length), 0, 'latin1');
  return b;
}

export function encodeStandardInquiry(i: Omit<StandardInquiry, 'additionalLength'>): Buffer {
  const b = Buffer.alloc(STANDARD_INQUIRY_LENGTH);
  const vd = i.versionDescriptors.slice(0, 8);
  while (vd.length < 8) vd.push(0);
  STANDARD_INQUIRY.encode({
    byte0: { peripheralQualifier: i.peripheralQualifier, peripheralDeviceType: i.peripheralDeviceType },
    byte1: { rmb: i.rmb, luCong: i.luCong, reserved1: 0 },
    version: i.version,
    byte3: { obsolete3: 0, normaca: i.normaca, hisup: i.hisup, responseDataFormat: i.responseDataFormat },
    // ADDITIONAL LENGTH: the bytes after byte 4 (libiscsi checks it equals size - 5).
    additionalLength: STANDARD_INQUIRY_LENGTH - 5,
    byte5: { sccs: i.sccs, acc: i.acc, tpgs: i.tpgs, threePc: i.threePc, reserved5: 0, protect: i.protect },
    byte6: { obsolete6a: 0, encserv: i.encserv, vs6: 0, multip: i.multip, obsolete6b: 0 },
    byte7: { obsolete7: 0, cmdque: i.cmdque, vs7: 0 },
    vendor: i.vendor, product: i.product, revision: i.revision,
    versionDescriptors: vd,
  }, b);
  return b;
}

export function decodeStandardInquiry(b: Buffer): StandardInquiry {
  const full = Buffer.alloc(STANDARD_INQUIRY_LENGTH);
  b.copy(full, 0, 0, Math.min(b.length, STANDARD_INQUIRY_LENGTH));
  const w = STANDARD_INQUIRY.decode(full);
  return {
    ...w.byte0, ...w.byte1, ...w.byte3, ...w.byte5, ...w.byte6, ...w.byte7,
    version: w.version, additionalLength: w.additionalLength,
    vendor: w.vendor, product: w.product, revision: w.revision,
    versionDescriptors: (w.versionDescriptors as number[]).filter((v) => v !== 0),
  };
}
