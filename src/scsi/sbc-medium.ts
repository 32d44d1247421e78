/**
 * Medium handling (SBC-4): START STOP UNIT (§5.25), PREVENT ALLOW MEDIUM REMOVAL (§5.13),
 * PRE-FETCH (§5.11, §5.12), READ DEFECT DATA (§5.18, §5.19), FORMAT UNIT (§5.4) and
 * SANITIZE (§5.26).
 */
import type { CommandContext, CommandDef } from './command.ts';
import { checkRange, invalidField, reserved, rw10, rw16 } from './cdb.ts';
import type { LbaRange } from './cdb.ts';
import type { LogicalUnit } from './lu.ts';
import { checkWritable, isSync, lockedWrite, MEDIA, provisioning } from './sbc-common.ts';
import { GOOD, ScsiStatus, SenseError } from './types.ts';
import type { ScsiResponse } from './types.ts';

const good = (): ScsiResponse => GOOD;
const CONDITION_MET: ScsiResponse = Object.freeze({ status: ScsiStatus.ConditionMet, data: null, sense: null }) as ScsiResponse;

// ---- START STOP UNIT — SBC-4 §5.25 -----------------------------------------------------------

interface StartStopCmd {
  start: boolean;
  loej: boolean;
  /** POWER CONDITION field; non-zero means START and LOEJ are ignored. */
  powerCondition: number;
}

/** POWER CONDITION values SBC-4 table 108 defines: START_VALID, ACTIVE, IDLE, STANDBY, LU_CONTROL, FORCE_*. */
const POWER_CONDITIONS = new Set([0x0, 0x1, 0x2, 0x3, 0x7, 0xa, 0xb]);

const START_STOP_UNIT: CommandDef<StartStopCmd> = {
  opcode: 0x1b, name: 'START STOP UNIT', cdbLength: 6,
  usage: [0x1b, 0x01, 0x00, 0x0f, 0xf7, 0x00],
  dataDirection: 'none', reservation: 'write', splitter: 'none', alua: 'media', ua: 'report',
  // START with POWER CONDITION 0 only spins up: allowed under every reservation (SBC-4 §4.17 table 13).
  reservationOf: (c) => (c.start && !c.loej && c.powerCondition === 0 ? 'allowed' : 'write'),
  decode: (cdb, lu) => {
    reserved(cdb, 1, 0xfe);
    const powerCondition = cdb[4] >> 4;
    if (!POWER_CONDITIONS.has(powerCondition)) throw invalidField(4, 7);
    const loej = (cdb[4] & 0x02) !== 0;
    // LOEJ on a unit without removable medium: there is nothing to load or eject.
    if (loej && powerCondition === 0 && !lu.removable) throw invalidField(4, 1);
    return { start: (cdb[4] & 0x01) !== 0, loej, powerCondition };
  },
  execute: (ctx, c) => {
    const lu = ctx.lu;
    if (c.powerCondition !== 0) return GOOD; // power conditions are not modelled; START/LOEJ ignored
    if (c.loej) {
      // SBC-4 §5.25: loading or ejecting while a PREVENT is in force fails.
      if (lu.preventers.size > 0) throw new SenseError('MediumRemovalPrevented');
      lu.mediumPresent = c.start;
      lu.started = c.start;
      return GOOD;
    }
    if (c.start) {
      lu.started = true;
    } else if (!lu.removable) {
      // A fixed disk enters the stopped state: media access reports NOT READY, INITIALIZING
      // COMMAND REQUIRED until the next START. A removable unit stays ready while its medium
      // is loaded (libiscsi test_startstopunit_noloej expects TEST UNIT READY to succeed).
      const f = lu.store.flush?.();
      lu.started = false;
      if (f instanceof Promise) return f.then(good);
    }
    return GOOD;
  },
};

// ---- PREVENT ALLOW MEDIUM REMOVAL — SBC-4 §5.13 ----------------------------------------------

interface PreventCmd {
  prevent: boolean;
}

const PREVENT_ALLOW_MEDIUM_REMOVAL: CommandDef<PreventCmd> = {
  opcode: 0x1e, name: 'PREVENT ALLOW MEDIUM REMOVAL', cdbLength: 6,
  usage: [0x1e, 0x00, 0x00, 0x00, 0x03, 0x00],
  dataDirection: 'none', reservation: 'conflict', splitter: 'none', alua: 'media', ua: 'report',
  // SPC-5 §5.14.3: PREVENT=00b (allow) never conflicts.
  reservationOf: (c) => (c.prevent ? 'conflict' : 'allowed'),
  decode: (cdb) => {
    reserved(cdb, 1, 0xff);
    reserved(cdb, 2, 0xff);
    reserved(cdb, 3, 0xff);
    reserved(cdb, 4, 0xfc);
    // 10b and 11b are obsolete (changer) values.
    if ((cdb[4] & 0x03) > 1) throw invalidField(4, 1);
    return { prevent: (cdb[4] & 0x01) !== 0 };
  },
  execute: (ctx, c) => {
    // Prevents are held per I_T nexus (SBC-4 §5.13): removal is allowed again once every
    // nexus that prevented it has allowed it, or on nexus loss / LU reset (lu.ts).
    if (c.prevent) ctx.lu.preventers.add(ctx.nexus.key);
    else ctx.lu.preventers.delete(ctx.nexus.key);
    return GOOD;
  },
};

// ---- PRE-FETCH(10/16) — SBC-4 §5.11, §5.12 ---------------------------------------------------

const prefetchDef = (opcode: number, len: 10 | 16): CommandDef<LbaRange> => ({
  opcode, name: `PRE-FETCH(${len})`, cdbLength: len,
  usage: len === 10
    ? [opcode, 0x02, 0xff, 0xff, 0xff, 0xff, 0x3f, 0xff, 0xff, 0x00]
    : [opcode, 0x02, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x3f, 0x00],
  dataDirection: 'none', reservation: 'read', splitter: 'none', ...MEDIA,
  decode: (cdb, lu) => {
    reserved(cdb, 1, 0xfc);
    const r = len === 10 ? rw10(cdb) : rw16(cdb);
    checkRange(lu, r.lba, r.blocks);
    return r;
  },
  // Everything is "in cache" (memory, or the page cache): CONDITION MET says the whole range
  // fits (SBC-4 §5.11: GOOD would mean it does not).
  execute: () => CONDITION_MET,
});

// ---- READ DEFECT DATA(10/12) — SBC-4 §5.18, §5.19 --------------------------------------------

interface DefectCmd {
  flags: number; // REQ_PLIST, REQ_GLIST and DEFECT LIST FORMAT as requested
  allocationLength: number;
}

const READ_DEFECT_DATA_10: CommandDef<DefectCmd> = {
  opcode: 0x37, name: 'READ DEFECT DATA(10)', cdbLength: 10,
  usage: [0x37, 0x00, 0x1f, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0x00],
  dataDirection: 'in', reservation: 'read', splitter: 'none', ...MEDIA,
  decode: (cdb) => {
    reserved(cdb, 2, 0xe0);
    return { flags: cdb[2] & 0x1f, allocationLength: cdb.readUInt16BE(7) };
  },
  execute: (_ctx, c) => {
    // An empty defect list in the format asked for (SBC-4 §5.18.2): a 4-byte header, length 0.
    const data = Buffer.from([0, c.flags, 0, 0]);
    return { status: ScsiStatus.Good, data: data.subarray(0, Math.min(4, c.allocationLength)), sense: null };
  },
};

const READ_DEFECT_DATA_12: CommandDef<DefectCmd> = {
  opcode: 0xb7, name: 'READ DEFECT DATA(12)', cdbLength: 12,
  usage: [0xb7, 0x1f, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00],
  dataDirection: 'in', reservation: 'read', splitter: 'none', ...MEDIA,
  decode: (cdb) => {
    reserved(cdb, 1, 0xe0);
    return { flags: cdb[1] & 0x1f, allocationLength: cdb.readUInt32BE(6) };
  },
  execute: (_ctx, c) => {
    // 8-byte header (SBC-4 §5.19.2): DEFECT LIST LENGTH 0.
    const data = Buffer.from([0, c.flags, 0, 0, 0, 0, 0, 0]);
    return { status: ScsiStatus.Good, data: data.subarray(0, Math.min(8, c.allocationLength)), sense: null };
  },
};

// ---- FORMAT UNIT — SBC-4 §5.4 ----------------------------------------------------------------

interface FormatCmd {
  fmtdata: boolean;
  longList: boolean;
  /** The whole LU is rewritten: its block count, for writes(). */
  blocks: number;
}

/** Erase the whole medium: deallocate on a thin store, zeros otherwise. */
async function eraseAll(lu: LogicalUnit): Promise<void> {
  const s = lu.store;
  const total = s.blockCount;
  // Stores take a block count as a number: walk the LU in ≤ 2^30-block pieces.
  const STEP = 1n << 30n;
  for (let lba = 0n; lba < total; lba += STEP) {
    const n = Number(total - lba < STEP ? total - lba : STEP);
    if (s.unmap) await s.unmap(lba, n);
    else if (s.writeSame) await s.writeSame(lba, n, Buffer.alloc(s.blockSize), false);
    else throw new SenseError('InvalidOpcode');
  }
}

function eraseAllResponse(lu: LogicalUnit, pattern?: Buffer): ScsiResponse | Promise<ScsiResponse> {
  const run = async () => {
    if (pattern) await fillAll(lu, pattern);
    else await eraseAll(lu);
    await lu.store.flush?.();
    return GOOD;
  };
  if (isSync(lu)) return run();
  return lockedWrite(lu, 0n, Number(lu.blockCount), async () => { await run(); }).then(good);
}

async function fillAll(lu: LogicalUnit, block: Buffer): Promise<void> {
  const s = lu.store;
  if (!s.writeSame) throw new SenseError('InvalidOpcode');
  const STEP = 1n << 30n;
  for (let lba = 0n; lba < s.blockCount; lba += STEP) {
    const n = Number(s.blockCount - lba < STEP ? s.blockCount - lba : STEP);
    await s.writeSame(lba, n, block, false);
  }
}

const FORMAT_UNIT: CommandDef<FormatCmd> = {
  opcode: 0x04, name: 'FORMAT UNIT', cdbLength: 6,
  usage: [0x04, 0x37, 0x00, 0x00, 0x00, 0x00],
  dataDirection: 'out', reservation: 'conflict', splitter: 'write', ...MEDIA,
  timeout: { nominal: 60, recommended: 600 },
  decode: (cdb, lu) => {
    // FMTPINFO: no protection information on this LU.
    if (cdb[1] & 0xc0) throw invalidField(1, 7);
    // CMPLST/DEFECT LIST FORMAT are only meaningful with a parameter list; accepted and ignored.
    reserved(cdb, 2, 0xff);
    reserved(cdb, 3, 0xff);
    reserved(cdb, 4, 0xff);
    return { fmtdata: (cdb[1] & 0x10) !== 0, longList: (cdb[1] & 0x20) !== 0, blocks: Number(lu.blockCount) };
  },
  execute: (ctx, c) => {
    checkWritable(ctx.lu);
    let used = 0;
    if (c.fmtdata) {
      // Parameter list header (SBC-4 §5.4.2.2): 4 bytes, or 8 with LONGLIST. No defect list,
      // no initialization pattern descriptor (IP) supported.
      const hdr = ctx.req.dataOut;
      used = c.longList ? 8 : 4;
      if (!hdr || hdr.length < used) throw new SenseError('ParameterListLengthError');
      if (hdr[1] & 0x08) throw new SenseError('InvalidFieldInParameterList', { fieldPointer: { inCdb: false, byte: 1, bit: 3 } });
      const defectLen = c.longList ? hdr.readUInt32BE(4) : hdr.readUInt16BE(2);
      if (defectLen !== 0) throw new SenseError('InvalidFieldInParameterList', { fieldPointer: { inCdb: false, byte: c.longList ? 4 : 2 } });
    }
    const r = eraseAllResponse(ctx.lu);
    const withLen = (x: ScsiResponse): ScsiResponse => ({ ...x, dataOutLength: used });
    return r instanceof Promise ? r.then(withLen) : withLen(r);
  },
  writes: (c) => [{ lba: 0n, blocks: c.blocks }],
};

// ---- SANITIZE — SBC-4 §5.26 ------------------------------------------------------------------

const enum SanitizeAction {
  Overwrite = 0x01,
  BlockErase = 0x02,
  CryptoErase = 0x03,
  ExitFailureMode = 0x1f,
}

interface SanitizeCmd {
  paramLength: number;
  /** The whole LU is rewritten: its block count, for writes(). */
  blocks: number;
}

function sanitizeDef(sa: SanitizeAction, name: string, run: (ctx: CommandContext, c: SanitizeCmd) => ScsiResponse | Promise<ScsiResponse>,
  supported?: (lu: LogicalUnit) => boolean): CommandDef<SanitizeCmd> {
  return {
    opcode: 0x48, serviceAction: sa, name: `SANITIZE ${name}`, cdbLength: 10,
    usage: [0x48, 0x80 | 0x20 | sa, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0x00],
    dataDirection: sa === SanitizeAction.Overwrite ? 'out' : 'none',
    reservation: 'conflict', splitter: 'write', ...MEDIA,
    timeout: { nominal: 60, recommended: 600 },
    supported,
    decode: (cdb, lu) => {
      if (supported && !supported(lu)) throw new SenseError('InvalidOpcode');
      reserved(cdb, 1, 0x40);
      const paramLength = cdb.readUInt16BE(7);
      // Only OVERWRITE takes a parameter list (SBC-4 §5.26.1).
      if (sa !== SanitizeAction.Overwrite && paramLength !== 0) throw invalidField(7);
      if (sa === SanitizeAction.Overwrite && (paramLength < 5 || paramLength > lu.blockSize + 4)) throw invalidField(7);
      return { paramLength, blocks: sa === SanitizeAction.ExitFailureMode ? 0 : Number(lu.blockCount) };
    },
    execute: (ctx, c) => {
      checkWritable(ctx.lu);
      return run(ctx, c);
    },
    writes: (c) => (c.blocks ? [{ lba: 0n, blocks: c.blocks }] : []),
  };
}

/**
 * OVERWRITE parameter list (SBC-4 §5.26.2.2): INVERT, TEST, OVERWRITE COUNT, INITIALIZATION
 * PATTERN LENGTH, pattern. libiscsi (test_sanitize_overwrite) expects every malformed list as
 * INVALID FIELD IN CDB, so errors point at the PARAMETER LIST LENGTH field of the CDB.
 */
function overwrite(ctx: CommandContext, c: SanitizeCmd): ScsiResponse | Promise<ScsiResponse> {
  const lu = ctx.lu;
  const p = ctx.req.dataOut;
  if (!p || p.length < c.paramLength) throw new SenseError('ParameterListLengthError');
  const count = p[0] & 0x1f;
  const patLen = p.readUInt16BE(2);
  if (count === 0) throw invalidField(7);
  if (patLen === 0 || patLen > lu.blockSize || patLen + 4 > c.paramLength) throw invalidField(7);
  const block = Buffer.alloc(lu.blockSize);
  block.fill(p.subarray(4, 4 + patLen));
  // INVERT alternates the pattern between passes; only the last pass is visible. With an even
  // number of passes and INVERT set, the last pass wrote the inverted pattern.
  if (p[0] & 0x80 && count % 2 === 0) for (let i = 0; i < block.length; i++) block[i] ^= 0xff;
  const r = eraseAllResponse(lu, block);
  const withLen = (x: ScsiResponse): ScsiResponse => ({ ...x, dataOutLength: c.paramLength });
  return r instanceof Promise ? r.then(withLen) : withLen(r);
}

const SANITIZE_COMMANDS: CommandDef[] = [
  sanitizeDef(SanitizeAction.Overwrite, 'OVERWRITE', overwrite),
  // BLOCK ERASE deallocates every block: offered only where logical block provisioning is
  // (libiscsi test_sanitize_block_erase requires LBPME=1 and a fully deallocated LU after).
  sanitizeDef(SanitizeAction.BlockErase, 'BLOCK ERASE', (ctx) => eraseAllResponse(ctx.lu), (lu) => provisioning(lu).lbpme),
  // No media encryption keys exist: "changing the key" is erasing the data.
  sanitizeDef(SanitizeAction.CryptoErase, 'CRYPTOGRAPHIC ERASE', (ctx) => eraseAllResponse(ctx.lu)),
  // A sanitize here never fails part way, so there is no failure mode to leave.
  sanitizeDef(SanitizeAction.ExitFailureMode, 'EXIT FAILURE MODE', () => GOOD),
];

export const SBC_MEDIUM_COMMANDS: CommandDef[] = [
  START_STOP_UNIT,
  PREVENT_ALLOW_MEDIUM_REMOVAL,
  prefetchDef(0x34, 10),
  prefetchDef(0x90, 16),
  READ_DEFECT_DATA_10,
  READ_DEFECT_DATA_12,
  FORMAT_UNIT,
  ...SANITIZE_COMMANDS,
];
