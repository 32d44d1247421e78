/**
 * Mode parameters (SPC-5 §7.5): mode parameter headers, block descriptors and the mode pages
 * this target implements, each described once with `buffer-layout` (cold path: MODE SENSE and
 * MODE SELECT are rare). Pure codec: values in, bytes out and back; which values a LU has and
 * which bits may change is src/scsi/mode-pages.ts's business.
 */
import * as BL from 'buffer-layout';

// ---- mode parameter headers (SPC-5 §7.5.5) ---------------------------------------------------

export interface ModeHeader {
  /** MODE DATA LENGTH: bytes after the field itself (reserved in MODE SELECT). */
  modeDataLength: number;
  mediumType: number;
  /** DEVICE-SPECIFIC PARAMETER for direct-access devices (SBC-4 §6.5.1): WP bit 7, DPOFUA bit 4. */
  wp: boolean;
  dpofua: boolean;
  /** MODE SENSE(10)/MODE SELECT(10) only: block descriptors are 16-byte long LBA ones. */
  longLba: boolean;
  blockDescriptorLength: number;
}

const dsp = BL.bits(BL.u8(), true, 'dsp');
dsp.addBoolean('wp'); dsp.addField(2, 'r1'); dsp.addBoolean('dpofua'); dsp.addField(4, 'r2');
const longLbaByte = BL.bits(BL.u8(), true, 'byte4');
longLbaByte.addField(7, 'r'); longLbaByte.addBoolean('longLba');

/** SPC-5 §7.5.5 table 454: 4-byte header of MODE SENSE(6)/MODE SELECT(6). */
const HEADER6 = BL.struct([BL.u8('modeDataLength'), BL.u8('mediumType'), dsp, BL.u8('blockDescriptorLength')]);
/** SPC-5 §7.5.5 table 455: 8-byte header of MODE SENSE(10)/MODE SELECT(10). */
const HEADER10 = BL.struct([
  BL.u16be('modeDataLength'), BL.u8('mediumType'), dsp, longLbaByte, BL.u8('reserved5'), BL.u16be('blockDescriptorLength'),
]);

export const HEADER6_LENGTH = 4;
export const HEADER10_LENGTH = 8;
/** Byte offsets of BLOCK DESCRIPTOR LENGTH, for field pointers. */
export const BD_LENGTH_OFFSET = { 6: 3, 10: 6 } as const;

export function encodeModeHeader(size: 6 | 10, h: ModeHeader, b: Buffer): void {
  const v = {
    modeDataLength: h.modeDataLength, mediumType: h.mediumType,
    dsp: { wp: h.wp, r1: 0, dpofua: h.dpofua, r2: 0 },
    byte4: { r: 0, longLba: h.longLba }, reserved5: 0,
    blockDescriptorLength: h.blockDescriptorLength,
  };
  (size === 6 ? HEADER6 : HEADER10).encode(v, b, 0);
}

export function decodeModeHeader(size: 6 | 10, b: Buffer): ModeHeader {
  const w = (size === 6 ? HEADER6 : HEADER10).decode(b, 0);
  return {
    modeDataLength: w.modeDataLength, mediumType: w.mediumType, wp: w.dsp.wp, dpofua: w.dsp.dpofua,
    longLba: size === 10 ? w.byte4.longLba : false, blockDescriptorLength: w.blockDescriptorLength,
  };
}

// ---- block descriptors (SBC-4 §6.5.2) --------------------------------------------------------

export interface BlockDescriptor {
  blocks: bigint;
  blockLength: number;
}

/** Short LBA mode parameter block descriptor (SBC-4 §6.5.2.2): 8 bytes. */
const SHORT_BD = BL.struct([BL.u32be('blocks'), BL.u8('reserved'), BL.u24be('blockLength')]);
/** Long LBA mode parameter block descriptor (SBC-4 §6.5.2.3): 16 bytes; 64-bit count as two u32. */
const LONG_BD = BL.struct([BL.u32be('blocksHi'), BL.u32be('blocksLo'), BL.u32be('reserved'), BL.u32be('blockLength')]);
export const SHORT_BD_LENGTH = 8;
export const LONG_BD_LENGTH = 16;
/** Offsets of LOGICAL BLOCK LENGTH inside each descriptor, for field pointers. */
export const BD_BLOCK_LENGTH_OFFSET = { short: 5, long: 12 } as const;

export function encodeBlockDescriptor(long: boolean, d: BlockDescriptor, b: Buffer, o: number): void {
  if (long) {
    LONG_BD.encode({ blocksHi: Number(d.blocks >> 32n), blocksLo: Number(d.blocks & 0xffffffffn), reserved: 0, blockLength: d.blockLength }, b, o);
  } else {
    // SBC-4 §6.5.2.2: a capacity above FFFFFFFEh is reported as FFFFFFFFh.
    const blocks = d.blocks > 0xffffffffn ? 0xffffffff : Number(d.blocks);
    SHORT_BD.encode({ blocks, reserved: 0, blockLength: d.blockLength }, b, o);
  }
}

export function decodeBlockDescriptor(long: boolean, b: Buffer, o: number): BlockDescriptor {
  if (long) {
    const w = LONG_BD.decode(b, o);
    return { blocks: (BigInt(w.blocksHi) << 32n) | BigInt(w.blocksLo), blockLength: w.blockLength };
  }
  const w = SHORT_BD.decode(b, o);
  return { blocks: BigInt(w.blocks), blockLength: w.blockLength };
}

// ---- mode pages ------------------------------------------------------------------------------

/** Page_0 format header (SPC-5 §7.5.7): PS, SPF, PAGE CODE; PAGE LENGTH. */
const pageByte0 = BL.bits(BL.u8(), true, 'byte0');
pageByte0.addBoolean('ps'); pageByte0.addBoolean('spf'); pageByte0.addField(6, 'pageCode');
const PAGE_HEADER = BL.struct<{ byte0: { ps: boolean; spf: boolean; pageCode: number }; pageLength: number }>([pageByte0, BL.u8('pageLength')]);

export function decodePageHeader(b: Buffer, o: number): { ps: boolean; spf: boolean; pageCode: number; pageLength: number } {
  const h = PAGE_HEADER.decode(b, o);
  return { ...h.byte0, pageLength: h.pageLength };
}

/** A mode page's layout: the bytes after the 2-byte header, with named fields. */
export interface ModePageLayout<T> {
  readonly code: number;
  /** Whole page, header included. */
  readonly length: number;
  readonly body: BL.Structure;
  /** Values → the body's wire object. */
  toWire(v: T): unknown;
  fromWire(w: any): T;
}

export function encodeModePage<T>(p: ModePageLayout<T>, v: T, b: Buffer, o: number, ps = false): number {
  PAGE_HEADER.encode({ byte0: { ps, spf: false, pageCode: p.code }, pageLength: p.length - 2 }, b, o);
  p.body.encode(p.toWire(v), b, o + 2);
  return p.length;
}

export function decodeModePage<T>(p: ModePageLayout<T>, b: Buffer, o: number): T {
  return p.fromWire(p.body.decode(b, o + 2));
}

// Read-Write Error Recovery (SBC-4 §6.5.9), page 01h, 12 bytes.
export interface ReadWriteErrorRecovery {
  awre: boolean; arre: boolean; tb: boolean; rc: boolean; eer: boolean; per: boolean; dte: boolean; dcr: boolean;
  readRetryCount: number; writeRetryCount: number; recoveryTimeLimit: number;
}
const rwer2 = BL.bits(BL.u8(), true, 'flags');
for (const f of ['awre', 'arre', 'tb', 'rc', 'eer', 'per', 'dte', 'dcr']) rwer2.addBoolean(f);
export const READ_WRITE_ERROR_RECOVERY: ModePageLayout<ReadWriteErrorRecovery> = {
  code: 0x01, length: 12,
  body: BL.struct([
    rwer2,                           // 2
    BL.u8('readRetryCount'),         // 3
    BL.blob(3, 'obsolete'),          // 4-6
    BL.u8('reserved7'),              // 7
    BL.u8('writeRetryCount'),        // 8
    BL.u8('reserved9'),              // 9
    BL.u16be('recoveryTimeLimit'),   // 10-11
  ]),
  toWire: (v) => ({ flags: v, readRetryCount: v.readRetryCount, writeRetryCount: v.writeRetryCount, recoveryTimeLimit: v.recoveryTimeLimit }),
  fromWire: (w) => ({ ...w.flags, readRetryCount: w.readRetryCount, writeRetryCount: w.writeRetryCount, recoveryTimeLimit: w.recoveryTimeLimit }),
};

// Caching (SBC-4 §6.5.5), page 08h, 20 bytes.
export interface Caching {
  ic: boolean; abpf: boolean; cap: boolean; disc: boolean; size: boolean; wce: boolean; mf: boolean; rcd: boolean;
  demandReadRetentionPriority: number; writeRetentionPriority: number;
  disablePrefetchTransferLength: number; minimumPrefetch: number; maximumPrefetch: number; maximumPrefetchCeiling: number;
  fsw: boolean; lbcss: boolean; dra: boolean; nvDis: boolean;
  numberOfCacheSegments: number; cacheSegmentSize: number;
}
const cache2 = BL.bits(BL.u8(), true, 'byte2');
for (const f of ['ic', 'abpf', 'cap', 'disc', 'size', 'wce', 'mf', 'rcd']) cache2.addBoolean(f);
const cache3 = BL.bits(BL.u8(), true, 'byte3');
cache3.addField(4, 'demandReadRetentionPriority'); cache3.addField(4, 'writeRetentionPriority');
const cache12 = BL.bits(BL.u8(), true, 'byte12');
cache12.addBoolean('fsw'); cache12.addBoolean('lbcss'); cache12.addBoolean('dra'); cache12.addField(2, 'vs');
cache12.addField(2, 'syncProg'); cache12.addBoolean('nvDis');
export const CACHING: ModePageLayout<Caching> = {
  code: 0x08, length: 20,
  body: BL.struct([
    cache2,                                   // 2
    cache3,                                   // 3
    BL.u16be('disablePrefetchTransferLength'), // 4-5
    BL.u16be('minimumPrefetch'),              // 6-7
    BL.u16be('maximumPrefetch'),              // 8-9
    BL.u16be('maximumPrefetchCeiling'),       // 10-11
    cache12,                                  // 12
    BL.u8('numberOfCacheSegments'),           // 13
    BL.u16be('cacheSegmentSize'),             // 14-15
    BL.u8('reserved16'),                      // 16
    BL.u24be('obsolete17'),                   // 17-19
  ]),
  toWire: (v) => ({
    byte2: v, byte3: v, byte12: { ...v, vs: 0, syncProg: 0 },
    disablePrefetchTransferLength: v.disablePrefetchTransferLength, minimumPrefetch: v.minimumPrefetch,
    maximumPrefetch: v.maximumPrefetch, maximumPrefetchCeiling: v.maximumPrefetchCeiling,
    numberOfCacheSegments: v.numberOfCacheSegments, cacheSegmentSize: v.cacheSegmentSize,
  }),
  fromWire: (w) => ({
    ...w.byte2, ...w.byte3, fsw: w.byte12.fsw, lbcss: w.byte12.lbcss, dra: w.byte12.dra, nvDis: w.byte12.nvDis,
    disablePrefetchTransferLength: w.disablePrefetchTransferLength, minimumPrefetch: w.minimumPrefetch,
    maximumPrefetch: w.maximumPrefetch, maximumPrefetchCeiling: w.maximumPrefetchCeiling,
    numberOfCacheSegments: w.numberOfCacheSegments, cacheSegmentSize: w.cacheSegmentSize,
  }),
};

// Control (SPC-5 §7.5.8), page 0Ah, 12 bytes.
export interface Control {
  tst: number; tmfOnly: boolean; dpicz: boolean; dSense: boolean; gltsd: boolean; rlec: boolean;
  queueAlgorithmModifier: number; nuar: boolean; qerr: number;
  rac: boolean; uaIntlckCtrl: number; swp: boolean;
  ato: boolean; tas: boolean; atmpe: boolean; rwwp: boolean; sblp: boolean; autoloadMode: number;
  busyTimeoutPeriod: number; extendedSelfTestCompletionTime: number;
}
const ctl2 = BL.bits(BL.u8(), true, 'byte2');
ctl2.addField(3, 'tst'); ctl2.addBoolean('tmfOnly'); ctl2.addBoolean('dpicz'); ctl2.addBoolean('dSense');
ctl2.addBoolean('gltsd'); ctl2.addBoolean('rlec');
const ctl3 = BL.bits(BL.u8(), true, 'byte3');
ctl3.addField(4, 'queueAlgorithmModifier'); ctl3.addBoolean('nuar'); ctl3.addField(2, 'qerr'); ctl3.addField(1, 'obsolete');
const ctl4 = BL.bits(BL.u8(), true, 'byte4');
ctl4.addField(1, 'vs'); ctl4.addBoolean('rac'); ctl4.addField(2, 'uaIntlckCtrl'); ctl4.addBoolean('swp'); ctl4.addField(3, 'obsolete');
const ctl5 = BL.bits(BL.u8(), true, 'byte5');
ctl5.addBoolean('ato'); ctl5.addBoolean('tas'); ctl5.addBoolean('atmpe'); ctl5.addBoolean('rwwp'); ctl5.addBoolean('sblp');
ctl5.addField(3, 'autoloadMode');
export const CONTROL: ModePageLayout<Control> = {
  code: 0x0a, length: 12,
  body: BL.struct([
    ctl2, ctl3, ctl4, ctl5,                        // 2-5
    BL.u16be('obsolete6'),                         // 6-7
    BL.u16be('busyTimeoutPeriod'),                 // 8-9
    BL.u16be('extendedSelfTestCompletionTime'),    // 10-11
  ]),
  toWire: (v) => ({
    byte2: v, byte3: { ...v, obsolete: 0 }, byte4: { ...v, vs: 0, obsolete: 0 }, byte5: v,
    obsolete6: 0, busyTimeoutPeriod: v.busyTimeoutPeriod, extendedSelfTestCompletionTime: v.extendedSelfTestCompletionTime,
  }),
  fromWire: (w) => {
    const { obsolete: _o3, ...b3 } = w.byte3;
    const { vs: _vs, obsolete: _o4, ...b4 } = w.byte4;
    return {
      ...w.byte2, ...b3, ...b4, ...w.byte5,
      busyTimeoutPeriod: w.busyTimeoutPeriod, extendedSelfTestCompletionTime: w.extendedSelfTestCompletionTime,
    };
  },
};

// Informational Exceptions Control (SPC-5 §7.5.13), page 1Ch, 12 bytes.
export interface InformationalExceptions {
  perf: boolean; ebf: boolean; ewasc: boolean; dexcpt: boolean; test: boolean; ebackerr: boolean; logerr: boolean;
  mrie: number; intervalTimer: number; reportCount: number;
}
const iec2 = BL.bits(BL.u8(), true, 'byte2');
iec2.addBoolean('perf'); iec2.addField(1, 'r'); iec2.addBoolean('ebf'); iec2.addBoolean('ewasc'); iec2.addBoolean('dexcpt');
iec2.addBoolean('test'); iec2.addBoolean('ebackerr'); iec2.addBoolean('logerr');
const iec3 = BL.bits(BL.u8(), true, 'byte3');
iec3.addField(4, 'r'); iec3.addField(4, 'mrie');
export const INFORMATIONAL_EXCEPTIONS: ModePageLayout<InformationalExceptions> = {
  code: 0x1c, length: 12,
  body: BL.struct([iec2, iec3, BL.u32be('intervalTimer'), BL.u32be('reportCount')]),
  toWire: (v) => ({ byte2: { ...v, r: 0 }, byte3: { r: 0, mrie: v.mrie }, intervalTimer: v.intervalTimer, reportCount: v.reportCount }),
  fromWire: (w) => {
    const { r: _r, ...b2 } = w.byte2;
    return { ...b2, mrie: w.byte3.mrie, intervalTimer: w.intervalTimer, reportCount: w.reportCount };
  },
};
