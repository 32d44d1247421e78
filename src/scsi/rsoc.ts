/**
 * REPORT SUPPORTED OPERATION CODES (SPC-5 §6.35) and REPORT SUPPORTED TASK MANAGEMENT
 * FUNCTIONS (SPC-5 §6.36). The operation codes are generated from the command table itself
 * (STYLE.md habit 2): nothing here lists commands.
 *
 * table.ts imports spc.ts, which imports this file; importing table.ts statically here would
 * make the module graph order-dependent. The table is loaded on first use instead, and kept.
 */
import { invalidField, reserved } from './cdb.ts';
import type { CommandDef } from './command.ts';
import { SERVICE_ACTION_OPCODES } from './command.ts';
import type { LogicalUnit } from './lu.ts';
import { hidesPrimitive } from './split.ts';

let commands: readonly CommandDef[] | undefined;
/** Run `f` over the command table: synchronously once it is loaded. */
function withCommands<T>(f: (all: readonly CommandDef[]) => T): T | Promise<T> {
  if (commands) return f(commands);
  return import('./table.ts').then((t) => f((commands = t.ALL_COMMANDS)));
}

/** REPORTING OPTIONS field (SPC-5 §6.35.1 table 155). */
export const enum ReportingOptions {
  All = 0b000,
  OneCommand = 0b001,
  OneCommandWithServiceAction = 0b010,
  OneCommandEitherWay = 0b011,
}

export interface RsocCmd {
  /** RCTD: return command timeouts descriptors. */
  rctd: boolean;
  options: ReportingOptions;
  opcode: number;
  serviceAction: number;
  allocationLength: number;
}

export function decodeRsoc(cdb: Buffer): RsocCmd {
  reserved(cdb, 2, 0x78);
  const options = cdb[2] & 0x07;
  if (options > ReportingOptions.OneCommandEitherWay) throw invalidField(2, 2);
  return {
    rctd: (cdb[2] & 0x80) !== 0,
    options,
    opcode: cdb[3],
    serviceAction: cdb.readUInt16BE(4),
    allocationLength: cdb.readUInt32BE(6),
  };
}

/** SUPPORT field of the one_command format (SPC-5 §6.35.3 table 158). */
const SUPPORT_NOT_SUPPORTED = 0b001;
const SUPPORT_STANDARD = 0b011;

/** Command timeouts descriptor (SPC-5 §6.35.4): 12 bytes, DESCRIPTOR LENGTH 0Ah. */
const TIMEOUTS_LENGTH = 12;
function writeTimeouts(def: CommandDef, b: Buffer, o: number): void {
  b.writeUInt16BE(TIMEOUTS_LENGTH - 2, o);
  b.writeUInt32BE(def.timeout?.nominal ?? 0, o + 4);
  b.writeUInt32BE(def.timeout?.recommended ?? 0, o + 8);
}

/**
 * CDB USAGE DATA (SPC-5 §6.35.3): byte 0 is the operation code and the SERVICE ACTION field
 * holds the service action; every other bit says whether the device server looks at it.
 */
export function cdbUsage(def: CommandDef): Buffer {
  const u = Buffer.alloc(def.cdbLength);
  def.usage.forEach((v, i) => { if (i < u.length) u[i] = v; });
  u[0] = def.opcode;
  if (def.serviceAction !== undefined) {
    if (def.opcode === 0x7f) u.writeUInt16BE(def.serviceAction, 8);
    else u[1] = (u[1] & 0xe0) | (def.serviceAction & 0x1f);
  }
  return u;
}

function offered(lu: LogicalUnit, all: readonly CommandDef[]): CommandDef[] {
  return all
    .filter((d) => d.supported?.(lu) !== false)
    // An array splitter that rejects a primitive may stop reporting its commands (split.ts).
    .filter((d) => d.splitter === 'none' || d.splitter === 'write' || !hidesPrimitive(lu, d.splitter))
    .sort((a, b) => a.opcode - b.opcode || (a.serviceAction ?? -1) - (b.serviceAction ?? -1));
}

/** Whether an operation code multiplexes service actions (SERVACTV / reporting options 1 vs 2). */
function hasServiceActions(op: number, all: readonly CommandDef[]): boolean {
  return SERVICE_ACTION_OPCODES.has(op) || all.some((d) => d.opcode === op && d.serviceAction !== undefined);
}

/** All_commands parameter data (SPC-5 §6.35.2). */
function allCommands(defs: readonly CommandDef[], rctd: boolean): Buffer {
  const size = 8 + (rctd ? TIMEOUTS_LENGTH : 0);
  const b = Buffer.alloc(4 + size * defs.length);
  b.writeUInt32BE(size * defs.length, 0);
  let o = 4;
  for (const d of defs) {
    b[o] = d.opcode;
    b.writeUInt16BE(d.serviceAction ?? 0, o + 2);
    b[o + 5] = (rctd ? 0x02 : 0) | (d.serviceAction !== undefined ? 0x01 : 0); // CTDP, SERVACTV
    b.writeUInt16BE(d.cdbLength, o + 6);
    if (rctd) writeTimeouts(d, b, o + 8);
    o += size;
  }
  return b;
}

/** One_command parameter data (SPC-5 §6.35.3). */
function oneCommand(def: CommandDef | undefined, rctd: boolean): Buffer {
  if (!def) {
    const b = Buffer.alloc(4);
    b[1] = SUPPORT_NOT_SUPPORTED;
    return b;
  }
  const usage = cdbUsage(def);
  const b = Buffer.alloc(4 + usage.length + (rctd ? TIMEOUTS_LENGTH : 0));
  b[1] = (rctd ? 0x80 : 0) | SUPPORT_STANDARD;
  b.writeUInt16BE(usage.length, 2);
  usage.copy(b, 4);
  if (rctd) writeTimeouts(def, b, 4 + usage.length);
  return b;
}

export function reportSupportedOperationCodes(lu: LogicalUnit, cmd: RsocCmd): Buffer | Promise<Buffer> {
  return withCommands((all) => supportedOperationCodes(lu, cmd, all));
}

function supportedOperationCodes(lu: LogicalUnit, cmd: RsocCmd, all: readonly CommandDef[]): Buffer {
  const defs = offered(lu, all);
  if (cmd.options === ReportingOptions.All) return allCommands(defs, cmd.rctd);
  const multiplexed = hasServiceActions(cmd.opcode, all);
  // SPC-5 §6.35.1 table 155: option 001b names an opcode without service actions, option 010b
  // one with; asking the other way round is INVALID FIELD IN CDB (libiscsi one_command test).
  if (cmd.options === ReportingOptions.OneCommand && multiplexed) throw invalidField(3);
  if (cmd.options === ReportingOptions.OneCommandWithServiceAction && !multiplexed) throw invalidField(3);
  const def = multiplexed
    ? defs.find((d) => d.opcode === cmd.opcode && d.serviceAction === cmd.serviceAction)
    : defs.find((d) => d.opcode === cmd.opcode && d.serviceAction === undefined);
  return oneCommand(def, cmd.rctd);
}

// ---- REPORT SUPPORTED TASK MANAGEMENT FUNCTIONS (SPC-5 §6.36) --------------------------------

export interface RstmfCmd {
  /** REPOSD: return the extended parameter data. */
  reposd: boolean;
  allocationLength: number;
}

export function decodeRstmf(cdb: Buffer): RstmfCmd {
  reserved(cdb, 2, 0x7f);
  const allocationLength = cdb.readUInt32BE(6);
  // SPC-5 §6.36.1: an ALLOCATION LENGTH below 4 is INVALID FIELD IN CDB.
  if (allocationLength < 4) throw invalidField(6);
  return { reposd: (cdb[2] & 0x80) !== 0, allocationLength };
}

/**
 * The iSCSI transport implements ABORT TASK, ABORT TASK SET, CLEAR ACA, CLEAR TASK SET,
 * LOGICAL UNIT RESET, QUERY TASK and TARGET RESET (RFC 7143 §11.5.1 functions 1-6, 14).
 */
const TMF_BYTE0 = 0x80 /* ATS */ | 0x40 /* ATSS */ | 0x20 /* CACAS */ | 0x10 /* CTSS */
  | 0x08 /* LURS */ | 0x04 /* QTS */ | 0x02 /* TRS */;

export function reportSupportedTmfs(cmd: RstmfCmd): Buffer {
  // Basic format 4 bytes; extended (REPOSD=1) 16 bytes, ADDITIONAL DATA LENGTH 0Ch, no
  // TMF timeouts reported (TMFTMOV=0).
  const b = Buffer.alloc(cmd.reposd ? 16 : 4);
  b[0] = TMF_BYTE0;
  if (cmd.reposd) b[3] = 0x0c;
  return b;
}
