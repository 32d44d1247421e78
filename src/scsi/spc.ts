/**
 * SPC-5 primary commands: the command-table entries (STYLE.md habit 2) for everything a block
 * device answers that is not SBC or persistent reservations. Each entry decodes its CDB once
 * (all field checks in decode) and executes on the typed result. Larger pieces live in their
 * own files: inquiry.ts + vpd.ts (INQUIRY), mode-pages.ts (MODE SENSE/SELECT), rsoc.ts (REPORT
 * SUPPORTED OPERATION CODES / TASK MANAGEMENT FUNCTIONS).
 *
 * Allocation length (SPC-5 §4.2.5.6): a command builds its whole parameter data and returns at
 * most ALLOCATION LENGTH bytes of it; the transport truncates further to the expected length.
 */
import { buildDescriptorSense, buildFixedSense } from '../../protocol/scsi/sense.ts';
import type { SenseDetail, SenseReason } from '../../protocol/scsi/sense.ts';
import { invalidField, reserved } from './cdb.ts';
import type { CommandDef } from './command.ts';
import { decodeInquiry, inquiryData } from './inquiry.ts';
import { tpgsBits } from './alua.ts';
import type { InquiryCmd } from './inquiry.ts';
import type { LogicalUnit } from './lu.ts';
import {
  decodeModeSelect, decodeModeSense, modeSelect, modeSense,
} from './mode-pages.ts';
import type { ModeSelectCmd, ModeSenseCmd } from './mode-pages.ts';
import {
  decodeRsoc, decodeRstmf, reportSupportedOperationCodes, reportSupportedTmfs,
} from './rsoc.ts';
import type { RsocCmd, RstmfCmd } from './rsoc.ts';
import type { ScsiTarget } from './target.ts';
import { GOOD, ScsiStatus } from './types.ts';
import type { Nexus, ScsiResponse } from './types.ts';

// ---- shared ---------------------------------------------------------------------------------

/** GOOD with parameter data, cut to the allocation length (SPC-5 §4.2.5.6). */
export function dataIn(data: Buffer, allocationLength: number): ScsiResponse {
  return { status: ScsiStatus.Good, data: data.length > allocationLength ? data.subarray(0, allocationLength) : data, sense: null };
}

/**
 * CONTROL byte (SAM-5 §5.2): NACA=1 asks for ACA, which this device server does not support
 * (standard INQUIRY NORMACA=0), so it is INVALID FIELD IN CDB (SAM-5 §5.9.1.1).
 */
export function checkControl(cdb: Buffer, length: number): void {
  if (cdb.length >= length && cdb[length - 1] & 0x04) throw invalidField(length - 1, 2);
}

const MAINTENANCE_IN = 0xa3;

/** Reservation, ALUA and UA classes of commands that only report about the device. */
const REPORTING = { reservation: 'allowed', alua: 'always', ua: 'skip', splitter: 'none', dataDirection: 'in' } as const;

// ---- TEST UNIT READY (SPC-5 §6.47) ----------------------------------------------------------

const TEST_UNIT_READY: CommandDef<null> = {
  opcode: 0x00, name: 'TEST UNIT READY', cdbLength: 6,
  usage: [0x00, 0x00, 0x00, 0x00, 0x00, 0x04],
  dataDirection: 'none',
  reservation: 'allowed',
  // Not on the standby allow-list (SPC-5 §5.16.2.4.4): multipath's TUR path checker relies on
  // TUR failing with NOT READY on a standby path.
  alua: 'media',
  ua: 'report', splitter: 'none',
  // The medium gate answers NOT READY for a stopped unit or an ejected medium (SBC-4 §4.19).
  needsMedium: true,
  decode(cdb) {
    checkControl(cdb, 6);
    return null;
  },
  execute: () => GOOD,
};

// ---- INQUIRY (SPC-5 §6.7) -------------------------------------------------------------------

/** TPGS an LU advertises: its ALUA mode, or the target's default. */
function tpgsOf(target: ScsiTarget, lu: LogicalUnit): number {
  return tpgsBits(target.alua.modeOf(lu));
}

const INQUIRY: CommandDef<InquiryCmd> = {
  opcode: 0x12, name: 'INQUIRY', cdbLength: 6,
  usage: [0x12, 0x01, 0xff, 0xff, 0xff, 0x04],
  ...REPORTING,
  decode(cdb) {
    checkControl(cdb, 6);
    return decodeInquiry(cdb);
  },
  execute({ lu, nexus, target }, cmd) {
    return dataIn(inquiryData(lu, nexus, cmd, tpgsOf(target, lu)), cmd.allocationLength);
  },
};

// ---- REPORT LUNS (SPC-5 §6.33) --------------------------------------------------------------

export interface ReportLunsCmd {
  selectReport: number;
  allocationLength: number;
}

/** SELECT REPORT values SPC-5 §6.33 table 161 defines. */
const SELECT_REPORT = new Set([0x00, 0x01, 0x02, 0x10, 0x11, 0x12]);

export function decodeReportLuns(cdb: Buffer): ReportLunsCmd {
  const selectReport = cdb[2];
  if (!SELECT_REPORT.has(selectReport)) throw invalidField(2);
  const allocationLength = cdb.readUInt32BE(6);
  // SPC-5 §6.33: an ALLOCATION LENGTH below 16 is INVALID FIELD IN CDB.
  if (allocationLength < 16) throw invalidField(6);
  checkControl(cdb, 12);
  return { selectReport, allocationLength };
}

/** 8-byte LUN field, peripheral (0-255) or flat (256-16383) addressing (SAM-5 §4.7). */
export function encodeLun(lun: number, out: Buffer, offset: number): void {
  out.fill(0, offset, offset + 8);
  if (lun < 256) out[offset + 1] = lun;
  else out.writeUInt16BE(0x4000 | (lun & 0x3fff), offset);
}

/**
 * The LUN list (SPC-5 §6.33.2). This target has no well-known, administrative or subsidiary
 * logical units: SELECT REPORT 00h and 02h list every LU; 01h, 10h, 11h and 12h list none.
 */
export function reportLunsData(target: ScsiTarget, cmd: ReportLunsCmd): Buffer {
  const luns = cmd.selectReport === 0x00 || cmd.selectReport === 0x02 ? [...target.luns.keys()].sort((a, b) => a - b) : [];
  const data = Buffer.alloc(8 + 8 * luns.length);
  data.writeUInt32BE(8 * luns.length, 0);
  luns.forEach((l, i) => encodeLun(l, data, 8 + 8 * i));
  return data;
}

/** REPORT LUNS for any LUN, present or not (SPC-5 §4.6.5: LUN 0 need not exist to answer). */
export function reportLuns(target: ScsiTarget, cdb: Buffer, nexusKey: string): ScsiResponse {
  return reportLunsResponse(target, decodeReportLuns(cdb), nexusKey);
}

function reportLunsResponse(target: ScsiTarget, cmd: ReportLunsCmd, nexusKey: string): ScsiResponse {
  // SPC-5 §6.33: REPORT LUNS clears REPORTED LUNS DATA HAS CHANGED for this I_T nexus.
  for (const lu of target.luns.values()) lu.ua.clear(nexusKey, 'ReportedLunsDataChanged');
  return dataIn(reportLunsData(target, cmd), cmd.allocationLength);
}

const REPORT_LUNS: CommandDef<ReportLunsCmd> = {
  opcode: 0xa0, name: 'REPORT LUNS', cdbLength: 12,
  usage: [0xa0, 0x00, 0xff, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0x00, 0x04],
  ...REPORTING,
  decode: (cdb) => decodeReportLuns(cdb),
  execute: ({ target, nexus }, cmd) => reportLunsResponse(target, cmd, nexus.key),
};

// ---- REQUEST SENSE (SPC-5 §6.39) ------------------------------------------------------------

export interface RequestSenseCmd {
  desc: boolean;
  allocationLength: number;
}

function senseBytes(desc: boolean, reason: SenseReason, detail?: SenseDetail): Buffer {
  return desc ? buildDescriptorSense(reason, detail) : buildFixedSense(reason, detail);
}

const REQUEST_SENSE: CommandDef<RequestSenseCmd> = {
  opcode: 0x03, name: 'REQUEST SENSE', cdbLength: 6,
  usage: [0x03, 0x01, 0x00, 0x00, 0xff, 0x04],
  ...REPORTING,
  decode(cdb) {
    reserved(cdb, 1, 0xfe);
    checkControl(cdb, 6);
    return { desc: (cdb[1] & 0x01) !== 0, allocationLength: cdb[4] };
  },
  execute({ lu, nexus }, cmd) {
    // SPC-5 §6.39.2: a pending unit attention is returned as the parameter data and cleared
    // (SAM-5 §5.14); otherwise the sense that describes the LU's current state (sanitize
    // progress, no medium, stopped, low power: LogicalUnit.readiness).
    const now = lu.ua.take(nexus.key) ?? lu.readiness(nexus);
    const data = senseBytes(cmd.desc, now.reason, now.detail);
    return dataIn(data, cmd.allocationLength);
  },
};

// ---- MODE SENSE / MODE SELECT (SPC-5 §6.11-§6.14) --------------------------------------------

const MODE_SENSE_6: CommandDef<ModeSenseCmd> = {
  opcode: 0x1a, name: 'MODE SENSE(6)', cdbLength: 6,
  usage: [0x1a, 0x08, 0xff, 0xff, 0xff, 0x04],
  dataDirection: 'in',
  // SPC-5 §5.14.3 table 69: MODE SENSE conflicts under Exclusive Access types only.
  reservation: 'read',
  alua: 'standby-ok', ua: 'report', splitter: 'none',
  decode: (cdb) => { checkControl(cdb, 6); return decodeModeSense(cdb, 6); },
  execute: ({ lu }, cmd) => dataIn(modeSense(lu, cmd), cmd.allocationLength),
};

const MODE_SENSE_10: CommandDef<ModeSenseCmd> = {
  opcode: 0x5a, name: 'MODE SENSE(10)', cdbLength: 10,
  usage: [0x5a, 0x18, 0xff, 0xff, 0x00, 0x00, 0x00, 0xff, 0xff, 0x04],
  dataDirection: 'in',
  reservation: 'read',
  alua: 'standby-ok', ua: 'report', splitter: 'none',
  decode: (cdb) => { checkControl(cdb, 10); return decodeModeSense(cdb, 10); },
  execute: ({ lu }, cmd) => dataIn(modeSense(lu, cmd), cmd.allocationLength),
};

const MODE_SELECT_6: CommandDef<ModeSelectCmd> = {
  opcode: 0x15, name: 'MODE SELECT(6)', cdbLength: 6,
  usage: [0x15, 0x11, 0x00, 0x00, 0xff, 0x04],
  dataDirection: 'out',
  // SPC-5 §5.14.3 table 69: MODE SELECT conflicts under every reservation type.
  reservation: 'conflict',
  alua: 'standby-ok', ua: 'report', splitter: 'none',
  decode: (cdb) => { checkControl(cdb, 6); return decodeModeSelect(cdb, 6); },
  execute: (ctx, cmd) => modeSelect(ctx, cmd),
};

const MODE_SELECT_10: CommandDef<ModeSelectCmd> = {
  opcode: 0x55, name: 'MODE SELECT(10)', cdbLength: 10,
  usage: [0x55, 0x11, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0x04],
  dataDirection: 'out',
  reservation: 'conflict',
  alua: 'standby-ok', ua: 'report', splitter: 'none',
  decode: (cdb) => { checkControl(cdb, 10); return decodeModeSelect(cdb, 10); },
  execute: (ctx, cmd) => modeSelect(ctx, cmd),
};

// ---- MAINTENANCE IN service actions (SPC-5 §6.35, §6.36, §6.37, §6.38) -----------------------

const REPORT_SUPPORTED_OPERATION_CODES: CommandDef<RsocCmd> = {
  opcode: MAINTENANCE_IN, serviceAction: 0x0c, name: 'REPORT SUPPORTED OPERATION CODES', cdbLength: 12,
  usage: [MAINTENANCE_IN, 0x0c, 0x87, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00, 0x04],
  ...REPORTING,
  alua: 'standby-ok', ua: 'report',
  decode: (cdb) => { checkControl(cdb, 12); return decodeRsoc(cdb); },
  execute({ lu }, cmd) {
    const d = reportSupportedOperationCodes(lu, cmd);
    return d instanceof Promise ? d.then((b) => dataIn(b, cmd.allocationLength)) : dataIn(d, cmd.allocationLength);
  },
};

const REPORT_SUPPORTED_TMFS: CommandDef<RstmfCmd> = {
  opcode: MAINTENANCE_IN, serviceAction: 0x0d, name: 'REPORT SUPPORTED TASK MANAGEMENT FUNCTIONS', cdbLength: 12,
  usage: [MAINTENANCE_IN, 0x0d, 0x80, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0x00, 0x04],
  ...REPORTING,
  alua: 'standby-ok', ua: 'report',
  decode: (cdb) => { checkControl(cdb, 12); return decodeRstmf(cdb); },
  execute: (_ctx, cmd) => dataIn(reportSupportedTmfs(cmd), cmd.allocationLength),
};

// ---- REPORT TARGET PORT GROUPS (SPC-5 §6.37) -------------------------------------------------

export interface RtpgCmd {
  extended: boolean;
  allocationLength: number;
}

const REPORT_TARGET_PORT_GROUPS: CommandDef<RtpgCmd> = {
  opcode: MAINTENANCE_IN, serviceAction: 0x0a, name: 'REPORT TARGET PORT GROUPS', cdbLength: 12,
  usage: [MAINTENANCE_IN, 0xe0 | 0x0a, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0x00, 0x04],
  ...REPORTING,
  // On every ALUA allow-list (SPC-5 §5.16.2.4.4-7); reports UAs (2A/06 reaches hosts through it).
  ua: 'report',
  decode(cdb) {
    // PARAMETER DATA FORMAT (byte 1 bits 7:5): 000b length only, 001b extended header.
    const format = cdb[1] >> 5;
    if (format > 1) throw invalidField(1, 7);
    checkControl(cdb, 12);
    return { extended: format === 1, allocationLength: cdb.readUInt32BE(6) };
  },
  execute({ target, nexus }, cmd) {
    return dataIn(target.alua.reportTargetPortGroups(nexus, cmd.extended), cmd.allocationLength);
  },
};

// ---- REPORT TIMESTAMP (SPC-5 §6.38) ---------------------------------------------------------

const REPORT_TIMESTAMP: CommandDef<{ allocationLength: number }> = {
  opcode: MAINTENANCE_IN, serviceAction: 0x0f, name: 'REPORT TIMESTAMP', cdbLength: 12,
  usage: [MAINTENANCE_IN, 0x0f, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0x00, 0x04],
  ...REPORTING,
  alua: 'standby-ok', ua: 'report',
  decode(cdb) {
    checkControl(cdb, 12);
    return { allocationLength: cdb.readUInt32BE(6) };
  },
  execute(_ctx, cmd) {
    // REPORT TIMESTAMP parameter data (SPC-5 §6.38.2):
    // TIMESTAMP PARAMETER DATA LENGTH 0Ah, TIMESTAMP ORIGIN 011b (set outside SCSI: the host
    // clock), then milliseconds since the epoch in 48 bits.
    const b = Buffer.alloc(12);
    b.writeUInt16BE(10, 0);
    b[2] = 0x03;
    b.writeUIntBE(Date.now(), 4, 6);
    return dataIn(b, cmd.allocationLength);
  },
};

// ---- LOG SENSE (SPC-5 §6.8) -------------------------------------------------------------------

export interface LogSenseCmd {
  subpage: number;
  allocationLength: number;
}

/**
 * Only the Supported Log Pages page (00h) and Supported Log Pages and Subpages (00h/FFh) exist
 * (SPC-5 §7.3.18, §7.3.19): the device keeps no statistics in log pages.
 */
const LOG_SENSE: CommandDef<LogSenseCmd> = {
  opcode: 0x4d, name: 'LOG SENSE', cdbLength: 10,
  usage: [0x4d, 0x01, 0xff, 0xff, 0x00, 0xff, 0xff, 0xff, 0xff, 0x04],
  dataDirection: 'in',
  reservation: 'allowed',
  alua: 'standby-ok', ua: 'report', splitter: 'none',
  decode(cdb) {
    // Byte 1: bit 1 PPC (obsolete), bit 0 SP; saving is not supported.
    reserved(cdb, 1, 0xfe);
    if (cdb[1] & 0x01) throw invalidField(1, 0);
    if ((cdb[2] & 0x3f) !== 0x00) throw invalidField(2, 5);
    const subpage = cdb[3];
    if (subpage !== 0x00 && subpage !== 0xff) throw invalidField(3);
    checkControl(cdb, 10);
    return { subpage, allocationLength: cdb.readUInt16BE(7) };
  },
  execute(_ctx, cmd) {
    const b = cmd.subpage === 0x00
      ? Buffer.from([0x00, 0x00, 0x00, 0x01, 0x00])                     // page 00h lists 00h
      : Buffer.from([0x40, 0xff, 0x00, 0x04, 0x00, 0x00, 0x00, 0xff]); // SPF=1: (00h,00h), (00h,FFh)
    return dataIn(b, cmd.allocationLength);
  },
};

export const SPC_COMMANDS: CommandDef[] = [
  TEST_UNIT_READY,
  INQUIRY,
  REPORT_LUNS,
  REQUEST_SENSE,
  MODE_SENSE_6,
  MODE_SENSE_10,
  MODE_SELECT_6,
  MODE_SELECT_10,
  REPORT_SUPPORTED_OPERATION_CODES,
  REPORT_SUPPORTED_TMFS,
  REPORT_TARGET_PORT_GROUPS,
  REPORT_TIMESTAMP,
  LOG_SENSE,
];
