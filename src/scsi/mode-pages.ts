/**
 * Mode pages (SPC-5 §7.5, SBC-4 §6.5) and MODE SENSE/MODE SELECT (SPC-5 §6.11-§6.14).
 *
 * One table, MODE_PAGES: for each page its layout (protocol/scsi/mode.ts), its current values
 * (read from lu.settings), its default values, and its changeable mask — the page encoded with
 * every changeable field all ones. MODE SENSE encodes from the table; MODE SELECT validates each
 * page it receives against the current page and the mask, then applies all pages or none.
 * Saving is not supported (PS=0 everywhere; PC=11b and SP=1 are refused).
 */
import {
  BD_BLOCK_LENGTH_OFFSET, BD_LENGTH_OFFSET, CACHING, CONTROL, HEADER10_LENGTH, HEADER6_LENGTH, INFORMATIONAL_EXCEPTIONS,
  LONG_BD_LENGTH, READ_WRITE_ERROR_RECOVERY, SHORT_BD_LENGTH, decodeBlockDescriptor, decodeModeHeader, decodeModePage,
  decodePageHeader, encodeBlockDescriptor, encodeModeHeader, encodeModePage,
} from '../../protocol/scsi/mode.ts';
import type { Caching, Control, InformationalExceptions, ModePageLayout, ReadWriteErrorRecovery } from '../../protocol/scsi/mode.ts';
import { invalidField, invalidParam, reserved } from './cdb.ts';
import type { CommandContext } from './command.ts';
import type { LogicalUnit, LuSettings } from './lu.ts';
import { ScsiStatus, SenseError } from './types.ts';
import type { ScsiResponse } from './types.ts';

// ---- the page table ---------------------------------------------------------------------------

/** Settings a fresh LU starts with (lu.ts), plus the ones only this module reads. */
const DEFAULTS = {
  dSense: false, wce: true, rcd: false, swp: false, tas: false,
  iecPerf: false, iecEwasc: false, iecDexcpt: true, iecMrie: 0, iecIntervalTimer: 0, iecReportCount: 0,
};
type ModeSettings = typeof DEFAULTS;

/** lu.settings is an open record: read a mode setting, falling back to its default. */
function settingsOf(s: LuSettings): ModeSettings {
  const out = { ...DEFAULTS };
  for (const k of Object.keys(DEFAULTS) as (keyof ModeSettings)[]) {
    if (s[k] !== undefined) (out as Record<string, unknown>)[k] = s[k];
  }
  return out;
}

export interface ModePageDef<T> {
  readonly name: string;
  readonly layout: ModePageLayout<T>;
  values(s: ModeSettings): T;
  /** Every changeable field all ones (SPC-5 §6.11: PC=01b). */
  readonly changeable: T;
  /** Write the page's values back into the LU's settings. */
  apply(v: T, s: LuSettings): void;
  /** Semantic checks beyond the mask: the offending byte within the page, or undefined. */
  validate?(v: T): number | undefined;
}

const NONE_RWER: ReadWriteErrorRecovery = {
  awre: false, arre: false, tb: false, rc: false, eer: false, per: false, dte: false, dcr: false,
  readRetryCount: 0, writeRetryCount: 0, recoveryTimeLimit: 0,
};

const NONE_CACHING: Caching = {
  ic: false, abpf: false, cap: false, disc: false, size: false, wce: false, mf: false, rcd: false,
  demandReadRetentionPriority: 0, writeRetentionPriority: 0, disablePrefetchTransferLength: 0,
  minimumPrefetch: 0, maximumPrefetch: 0, maximumPrefetchCeiling: 0, fsw: false, lbcss: false, dra: false, nvDis: false,
  numberOfCacheSegments: 0, cacheSegmentSize: 0,
};

const NONE_CONTROL: Control = {
  tst: 0, tmfOnly: false, dpicz: false, dSense: false, gltsd: false, rlec: false, queueAlgorithmModifier: 0, nuar: false,
  qerr: 0, rac: false, uaIntlckCtrl: 0, swp: false, ato: false, tas: false, atmpe: false, rwwp: false, sblp: false,
  autoloadMode: 0, busyTimeoutPeriod: 0, extendedSelfTestCompletionTime: 0,
};

const NONE_IEC: InformationalExceptions = {
  perf: false, ebf: false, ewasc: false, dexcpt: false, test: false, ebackerr: false, logerr: false,
  mrie: 0, intervalTimer: 0, reportCount: 0,
};

/** MRIE values SPC-5 §7.5.13 defines (7h-Bh reserved; Ch-Fh vendor specific, none here). */
const MRIE_MAX = 6;
const MRIE_BYTE = 3;

export const MODE_PAGES: readonly ModePageDef<any>[] = [
  {
    name: 'Read-Write Error Recovery',
    layout: READ_WRITE_ERROR_RECOVERY,
    // Memory and files have no retries to tune: all zero, nothing changeable.
    values: () => NONE_RWER,
    changeable: NONE_RWER,
    apply: () => undefined,
  } satisfies ModePageDef<ReadWriteErrorRecovery>,
  {
    name: 'Caching',
    layout: CACHING,
    values: (s) => ({ ...NONE_CACHING, wce: s.wce, rcd: s.rcd }),
    // WCE=0 makes every write durable before GOOD (SBC module: mustBeDurable); Linux toggles it
    // through sysfs cache_type.
    changeable: { ...NONE_CACHING, wce: true, rcd: true },
    apply: (v, s) => { s.wce = v.wce; s.rcd = v.rcd; },
  } satisfies ModePageDef<Caching>,
  {
    name: 'Control',
    layout: CONTROL,
    // TST 000b: one task set for all I_T nexuses. QERR 00b: a CHECK CONDITION does not abort
    // other tasks. QUEUE ALGORITHM MODIFIER 0: overlapping commands keep data integrity (range locks).
    values: (s) => ({ ...NONE_CONTROL, dSense: s.dSense, swp: s.swp, tas: s.tas }),
    changeable: { ...NONE_CONTROL, dSense: true, swp: true, tas: true },
    apply: (v, s) => { s.dSense = v.dSense; s.swp = v.swp; s.tas = v.tas; },
  } satisfies ModePageDef<Control>,
  {
    name: 'Informational Exceptions Control',
    layout: INFORMATIONAL_EXCEPTIONS,
    // The device never detects an informational exception; the settings are kept so that
    // initiators that configure the page (ESXi, smartctl) read back what they wrote.
    values: (s) => ({
      ...NONE_IEC, perf: s.iecPerf, ewasc: s.iecEwasc, dexcpt: s.iecDexcpt, mrie: s.iecMrie,
      intervalTimer: s.iecIntervalTimer, reportCount: s.iecReportCount,
    }),
    changeable: { ...NONE_IEC, perf: true, ewasc: true, dexcpt: true, mrie: 0xf, intervalTimer: 0xffffffff, reportCount: 0xffffffff },
    apply: (v, s) => {
      s.iecPerf = v.perf; s.iecEwasc = v.ewasc; s.iecDexcpt = v.dexcpt; s.iecMrie = v.mrie;
      s.iecIntervalTimer = v.intervalTimer; s.iecReportCount = v.reportCount;
    },
    validate: (v) => (v.mrie > MRIE_MAX ? MRIE_BYTE : undefined),
  } satisfies ModePageDef<InformationalExceptions>,
];

const BY_CODE = new Map(MODE_PAGES.map((p) => [p.layout.code, p]));
const ALL_PAGES = 0x3f;
const ALL_SUBPAGES = 0xff;

/** PAGE CONTROL field (SPC-5 §6.11.1 table 96). */
export const enum PageControl { Current = 0, Changeable = 1, Default = 2, Saved = 3 }

function pageBytes(def: ModePageDef<any>, lu: LogicalUnit, pc: PageControl): Buffer {
  const v = pc === PageControl.Changeable ? def.changeable : def.values(pc === PageControl.Default ? DEFAULTS : settingsOf(lu.settings));
  const b = Buffer.alloc(def.layout.length);
  encodeModePage(def.layout, v, b, 0);
  return b;
}

// ---- MODE SENSE(6)/(10) (SPC-5 §6.11, §6.12) --------------------------------------------------

export interface ModeSenseCmd {
  size: 6 | 10;
  dbd: boolean;
  llbaa: boolean;
  pc: PageControl;
  pages: readonly ModePageDef<any>[];
  allocationLength: number;
}

export function decodeModeSense(cdb: Buffer, size: 6 | 10): ModeSenseCmd {
  // Byte 1: DBD (bit 3); MODE SENSE(10) adds LLBAA (bit 4).
  reserved(cdb, 1, size === 6 ? 0xf7 : 0xe7);
  const dbd = (cdb[1] & 0x08) !== 0;
  const llbaa = size === 10 && (cdb[1] & 0x10) !== 0;
  const pc = (cdb[2] >> 6) as PageControl;
  const code = cdb[2] & 0x3f;
  const subpage = cdb[3];
  // SPC-5 §6.11.1: saved values are not supported → SAVING PARAMETERS NOT SUPPORTED.
  if (pc === PageControl.Saved) throw new SenseError('SavingParametersNotSupported', { fieldPointer: { inCdb: true, byte: 2, bit: 7 } });
  let pages: readonly ModePageDef<any>[];
  if (code === ALL_PAGES) {
    pages = MODE_PAGES;
  } else {
    const def = BY_CODE.get(code);
    if (!def) throw invalidField(2, 5);
    pages = [def];
  }
  // No page has subpages: subpage 00h, or FFh ("and all its subpages"), is the page itself.
  if (subpage !== 0 && subpage !== ALL_SUBPAGES) throw invalidField(3);
  const allocationLength = size === 6 ? cdb[4] : cdb.readUInt16BE(7);
  return { size, dbd, llbaa, pc, pages, allocationLength };
}

export function modeSense(lu: LogicalUnit, cmd: ModeSenseCmd): Buffer {
  const headerLength = cmd.size === 6 ? HEADER6_LENGTH : HEADER10_LENGTH;
  const long = cmd.llbaa;
  const bdLength = cmd.dbd ? 0 : long ? LONG_BD_LENGTH : SHORT_BD_LENGTH;
  const pages = cmd.pages.map((p) => pageBytes(p, lu, cmd.pc));
  const total = headerLength + bdLength + pages.reduce((n, p) => n + p.length, 0);
  const b = Buffer.alloc(total);
  const changeable = cmd.pc === PageControl.Changeable;
  encodeModeHeader(cmd.size, {
    modeDataLength: total - (cmd.size === 6 ? 1 : 2),
    mediumType: 0,
    // SBC-4 §6.5.1: WP reflects configuration and the Control page SWP bit; DPOFUA=1 because
    // READ/WRITE honour DPO and FUA. Neither is a changeable value.
    wp: !changeable && lu.writeProtected,
    dpofua: !changeable,
    longLba: long && bdLength > 0,
    blockDescriptorLength: bdLength,
  }, b);
  if (bdLength) {
    // Capacity and block length cannot be changed by MODE SELECT: the changeable mask is zero.
    const bd = changeable ? { blocks: 0n, blockLength: 0 } : { blocks: lu.blockCount, blockLength: lu.blockSize };
    encodeBlockDescriptor(long, bd, b, headerLength);
  }
  let o = headerLength + bdLength;
  for (const p of pages) { p.copy(b, o); o += p.length; }
  return b;
}

// ---- MODE SELECT(6)/(10) (SPC-5 §6.13, §6.14) --------------------------------------------------

export interface ModeSelectCmd {
  size: 6 | 10;
  parameterListLength: number;
}

export function decodeModeSelect(cdb: Buffer, size: 6 | 10): ModeSelectCmd {
  // Byte 1: PF (bit 4), SP (bit 0); the rest reserved.
  reserved(cdb, 1, 0xee);
  // SP=1 asks to save pages: not supported (SPC-5 §6.13).
  if (cdb[1] & 0x01) throw invalidField(1, 0);
  const parameterListLength = size === 6 ? cdb[4] : cdb.readUInt16BE(7);
  // PF=0 means the pages are vendor specific; we only parse the SPC page format.
  if (!(cdb[1] & 0x10) && parameterListLength > 0) throw invalidField(1, 4);
  return { size, parameterListLength };
}

function lengthError(): SenseError {
  return new SenseError('ParameterListLengthError');
}

/** Highest bit set in `x` (for BIT POINTER). */
const topBit = (x: number) => 31 - Math.clz32(x);

export function modeSelect(ctx: CommandContext, cmd: ModeSelectCmd): ScsiResponse {
  const { lu, nexus } = ctx;
  const len = cmd.parameterListLength;
  const done: ScsiResponse = { status: ScsiStatus.Good, data: null, sense: null, dataOutLength: len };
  if (len === 0) return done;
  const data = ctx.req.dataOut;
  if (!data || data.length < len) throw lengthError();
  const p = data.subarray(0, len);

  const headerLength = cmd.size === 6 ? HEADER6_LENGTH : HEADER10_LENGTH;
  if (p.length < headerLength) throw lengthError();
  // MODE DATA LENGTH is reserved in MODE SELECT, and the DEVICE-SPECIFIC PARAMETER's WP and
  // DPOFUA are ignored (SBC-4 §6.5.1): initiators commonly send back what MODE SENSE returned.
  const h = decodeModeHeader(cmd.size, p);
  if (h.mediumType !== 0) throw invalidParam(1);
  const long = h.longLba;
  const bdSize = long ? LONG_BD_LENGTH : SHORT_BD_LENGTH;
  if (h.blockDescriptorLength !== 0 && h.blockDescriptorLength !== bdSize) throw invalidParam(BD_LENGTH_OFFSET[cmd.size]);
  if (headerLength + h.blockDescriptorLength > p.length) throw lengthError();
  if (h.blockDescriptorLength) {
    // The block descriptor may restate the capacity (or 0: "unchanged") and the block length;
    // neither can be changed on this device.
    const bd = decodeBlockDescriptor(long, p, headerLength);
    const capped = !long && lu.blockCount > 0xffffffffn ? 0xffffffffn : lu.blockCount;
    if (bd.blocks !== 0n && bd.blocks !== capped) throw invalidParam(headerLength);
    if (bd.blockLength !== lu.blockSize) throw invalidParam(headerLength + (long ? BD_BLOCK_LENGTH_OFFSET.long : BD_BLOCK_LENGTH_OFFSET.short));
  }

  // Validate every page before applying any (all or nothing).
  const staged: { def: ModePageDef<any>; value: unknown }[] = [];
  let o = headerLength + h.blockDescriptorLength;
  while (o < p.length) {
    if (o + 2 > p.length) throw lengthError();
    const ph = decodePageHeader(p, o);
    if (ph.spf) throw invalidParam(o, 6);
    const def = BY_CODE.get(ph.pageCode);
    if (!def) throw invalidParam(o);
    if (ph.pageLength !== def.layout.length - 2) throw invalidParam(o + 1);
    if (o + def.layout.length > p.length) throw lengthError();
    const current = pageBytes(def, lu, PageControl.Current);
    const mask = pageBytes(def, lu, PageControl.Changeable);
    // SPC-5 §6.13: a field that is not changeable must hold its current value.
    for (let i = 2; i < def.layout.length; i++) {
      const bad = (p[o + i] ^ current[i]) & ~mask[i] & 0xff;
      if (bad) throw invalidParam(o + i, topBit(bad));
    }
    const value = decodeModePage(def.layout, p, o);
    const at = def.validate?.(value);
    if (at !== undefined) throw invalidParam(o + at);
    staged.push({ def, value });
    o += def.layout.length;
  }

  const before = MODE_PAGES.map((d) => pageBytes(d, lu, PageControl.Current));
  for (const s of staged) s.def.apply(s.value, lu.settings);
  const changed = MODE_PAGES.some((d, i) => !pageBytes(d, lu, PageControl.Current).equals(before[i]));
  // SPC-5 §6.13 / SAM-5 §5.14: the other I_T nexuses learn of the change by MODE PARAMETERS CHANGED.
  if (changed) lu.ua.establishAll(lu.target.nexusKeys(), 'ModeParametersChanged', nexus.key);
  return done;
}
