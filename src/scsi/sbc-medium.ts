/**
 * Medium handling (SBC-4): START STOP UNIT (§5.25), PREVENT ALLOW MEDIUM REMOVAL (§5.13),
 * PRE-FETCH (§5.11, §5.12), READ DEFECT DATA (§5.18, §5.19), FORMAT UNIT (§5.4) and
 * SANITIZE (§5.26).
 */
import type { CommandContext, CommandDef } from './command.ts';
import { checkRange, invalidField, invalidParam, reserved, rw10, rw16 } from './cdb.ts';
import type { LbaRange } from './cdb.ts';
import type { BackgroundOperation, LogicalUnit, PowerCondition } from './lu.ts';
import { exclusive } from './range-lock.ts';
import { afterStore, checkWritable, MEDIA, provisioning } from './sbc-common.ts';
import type { SplitRecorder } from './split.ts';
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
  /** The condition it selects (POWER CONDITION with its MODIFIER); undefined: no change. */
  target?: PowerCondition;
}

/**
 * POWER CONDITION (SBC-4 §5.25 table 108) → the condition entered, indexed by POWER CONDITION
 * MODIFIER. ACTIVE and LU_CONTROL (power condition timers in control: none are modelled, so the
 * LU stays active) take modifier 0; IDLE and FORCE_IDLE_0 select idle_a/b/c; STANDBY and
 * FORCE_STANDBY_0 select standby_z/y.
 */
const POWER_CONDITION_TARGETS: ReadonlyMap<number, readonly PowerCondition[]> = new Map<number, readonly PowerCondition[]>([
  [0x1, ['active']],
  [0x2, ['idle_a', 'idle_b', 'idle_c']],
  [0x3, ['standby_z', 'standby_y']],
  [0x7, ['active']],
  [0xa, ['idle_a', 'idle_b', 'idle_c']],
  [0xb, ['standby_z', 'standby_y']],
]);

const START_STOP_UNIT: CommandDef<StartStopCmd> = {
  opcode: 0x1b, name: 'START STOP UNIT', cdbLength: 6,
  usage: [0x1b, 0x01, 0x00, 0x0f, 0xf7, 0x00],
  dataDirection: 'none', reservation: 'write', splitter: 'none', alua: 'media', ua: 'report',
  // START with POWER CONDITION 0 only spins up: allowed under every reservation (SBC-4 §4.17 table 13).
  reservationOf: (c) => (c.start && !c.loej && c.powerCondition === 0 ? 'allowed' : 'write'),
  decode: (cdb, lu) => {
    reserved(cdb, 1, 0xfe);
    reserved(cdb, 2, 0xff);
    reserved(cdb, 3, 0xf0);
    reserved(cdb, 4, 0x08);
    const powerCondition = cdb[4] >> 4;
    const modifier = cdb[3] & 0x0f;
    const targets = POWER_CONDITION_TARGETS.get(powerCondition);
    let target: PowerCondition | undefined;
    if (targets) {
      target = targets[modifier];
      if (!target) throw invalidField(3, 3);
    } else if (modifier !== 0) {
      throw invalidField(3, 3);
    }
    // The reserved and obsolete POWER CONDITION values (4h-6h, 8h, 9h, Ch-Fh) are accepted and
    // change nothing, as libiscsi test_startstopunit_pwrcnd requires GOOD for every non-zero
    // value (and tgt behaves so); START and LOEJ are ignored with them all the same.
    const loej = (cdb[4] & 0x02) !== 0;
    // LOEJ on a unit without removable medium: there is nothing to load or eject.
    if (loej && powerCondition === 0 && !lu.removable) throw invalidField(4, 1);
    return { start: (cdb[4] & 0x01) !== 0, loej, powerCondition, target };
  },
  execute: (ctx, c) => {
    const lu = ctx.lu;
    if (c.powerCondition !== 0) {
      // An emulated unit enters the condition at once; it serves commands in every condition
      // (nothing spins down), and REQUEST SENSE reports it (LogicalUnit.readiness).
      if (c.target) lu.powerCondition = c.target;
      return GOOD;
    }
    if (c.loej) {
      // SBC-4 §5.25: loading or ejecting while a PREVENT is in force fails.
      if (lu.preventers.size > 0) throw new SenseError('MediumRemovalPrevented');
      lu.mediumPresent = c.start;
      lu.started = c.start;
      return GOOD;
    }
    if (c.start) {
      lu.started = true;
      lu.powerCondition = 'active';
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

/** FORMAT UNIT clears the whole medium: deallocate on a thin store, zeros otherwise. */
function formatResponse(lu: LogicalUnit, split: SplitRecorder | null): Promise<ScsiResponse> {
  const run = async () => {
    await eraseWork(lu, split)();
    await lu.store.flush?.();
  };
  return Promise.resolve(exclusive(lu, 0n, lu.blockCount, run)).then(good);
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
    return formatResponse(ctx.lu, ctx.split).then((x): ScsiResponse => ({ ...x, dataOutLength: used }));
  },
  writes: (c) => [{ lba: 0n, blocks: c.blocks }],
};

// ---- SANITIZE — SBC-4 §5.26; sanitize operations §4.11 ---------------------------------------

const enum SanitizeAction {
  Overwrite = 0x01,
  BlockErase = 0x02,
  CryptoErase = 0x03,
  ExitFailureMode = 0x1f,
}

/**
 * How long each sanitize method takes here (ms). A sanitize is a state of the LU that lasts, not
 * an instant wipe: initiators poll it with REQUEST SENSE and libiscsi's Sanitize.Reset looks for
 * it seconds later, across task aborts, resets and a new login. Environment ARRAYSIM_SANITIZE_MS
 * sets every method (per pass for OVERWRITE); tests call configureSanitize().
 */
export interface SanitizeTiming {
  overwritePassMs: number;
  blockEraseMs: number;
  cryptoEraseMs: number;
}

const timing: SanitizeTiming = { overwritePassMs: 6000, blockEraseMs: 2000, cryptoEraseMs: 500 };
{
  const env = Number(process.env.ARRAYSIM_SANITIZE_MS);
  if (process.env.ARRAYSIM_SANITIZE_MS && Number.isFinite(env) && env >= 0) {
    timing.overwritePassMs = timing.blockEraseMs = timing.cryptoEraseMs = env;
  }
}

export function configureSanitize(t: Partial<SanitizeTiming>): SanitizeTiming {
  Object.assign(timing, t);
  return { ...timing };
}

/**
 * Which sanitize methods an LU offers, and what reads return after them (Block Device
 * Characteristics VPD WABEREQ/WACEREQ, SBC-4 §6.6.2). BLOCK ERASE deallocates every LBA, so it
 * is offered only with logical block provisioning (libiscsi test_sanitize_block_erase requires
 * LBPME=1 and no mapped LBA afterwards). CRYPTOGRAPHIC ERASE has no keys to change here: it
 * deallocates (thin) or zeroes (thick) too. After either, reads complete with GOOD status and
 * the data is indeterminate to the initiator (zeros, in fact): 01b.
 */
export function sanitizeCharacteristics(lu: LogicalUnit): { blockErase: boolean; wabereq: number; wacereq: number } {
  const blockErase = provisioning(lu).lbpme;
  return { blockErase, wabereq: blockErase ? 1 : 0, wacereq: 1 };
}

/**
 * SBC-4 §4.11: while a sanitize operation is in progress the device server processes INQUIRY,
 * LOG SENSE, REPORT LUNS and REQUEST SENSE, and terminates every other command with NOT READY,
 * LOGICAL UNIT NOT READY, SANITIZE IN PROGRESS.
 */
const ALLOWED_DURING_SANITIZE: ReadonlySet<number> = new Set([0x12, 0x4d, 0xa0, 0x03]);

/** Blocks per store call while sanitizing: the event loop gets a turn between pieces. */
const SANITIZE_STEP_BYTES = 64 << 20;

/**
 * One sanitize operation: a state of the LU from the moment the command is accepted until the
 * work is done and the emulated duration has passed. It does not belong to the command that
 * started it: aborting that command, a logical unit reset (suspend and resume, SBC-4 §4.11.2)
 * and I_T nexus loss all leave it running.
 */
class SanitizeOperation implements BackgroundOperation {
  readonly reason = 'NotReadySanitizeInProgress' as const;
  private readonly started = performance.now();
  /** Settles when the operation ends; null on success. */
  readonly finished: Promise<unknown>;

  constructor(private readonly lu: LogicalUnit, private readonly durationMs: number, work: () => Promise<void>) {
    const elapsed = new Promise<void>((resolve) => { setTimeout(resolve, durationMs).unref?.(); });
    this.finished = Promise.all([work(), elapsed]).then(() => null, (err: unknown) => err).then((err) => {
      if (lu.operation === this) lu.operation = null;
      return err;
    });
  }

  allows(def: CommandDef): boolean {
    return ALLOWED_DURING_SANITIZE.has(def.opcode);
  }

  progress(): number {
    const f = (performance.now() - this.started) / Math.max(1, this.durationMs);
    return Math.min(0xffff, Math.floor(f * 0x10000));
  }
}

/** Apply `writeOne(lba, blocks)` to the whole LU in pieces, yielding between them. */
async function wholeLu(lu: LogicalUnit, writeOne: (lba: bigint, blocks: number) => void | Promise<void>): Promise<void> {
  const total = lu.blockCount;
  const step = BigInt(Math.max(1, Math.floor(SANITIZE_STEP_BYTES / lu.blockSize)));
  for (let lba = 0n; lba < total; lba += step) {
    await writeOne(lba, Number(total - lba < step ? total - lba : step));
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}

/** Deallocate (thin) or zero (thick) every block; each piece reaches the splitter as it is done. */
function eraseWork(lu: LogicalUnit, split: SplitRecorder | null): () => Promise<void> {
  const s = lu.store;
  if (s.unmap) return () => wholeLu(lu, (lba, n) => afterStore(s.unmap!(lba, n), () => split?.unmap(lu, lba, n)));
  if (s.writeSame) {
    const zero = Buffer.alloc(s.blockSize);
    return () => wholeLu(lu, (lba, n) => afterStore(s.writeSame!(lba, n, zero, false), () => split?.same(lu, lba, n, zero, false)));
  }
  throw new SenseError('InvalidOpcode');
}

function fillWork(lu: LogicalUnit, block: Buffer, split: SplitRecorder | null): () => Promise<void> {
  const s = lu.store;
  if (!s.writeSame) throw new SenseError('InvalidOpcode');
  return () => wholeLu(lu, (lba, n) => afterStore(s.writeSame!(lba, n, block, false), () => split?.same(lu, lba, n, block, false)));
}

const TASK_ABORTED: ScsiResponse = Object.freeze({ status: ScsiStatus.TaskAborted, data: null, sense: null }) as ScsiResponse;

/**
 * Start a sanitize operation and answer the command: at once with IMMED=1 (SBC-4 §5.26.1,
 * progress by REQUEST SENSE), else when it ends. An aborted IMMED=0 command ends its task at once
 * (the transport drops the status) while the operation goes on.
 */
function startSanitize(ctx: CommandContext, c: SanitizeCmd, durationMs: number, work: () => Promise<void>, resp: ScsiResponse): ScsiResponse | Promise<ScsiResponse> {
  const lu = ctx.lu;
  const body = async () => {
    await exclusive(lu, 0n, lu.blockCount, work);
    await lu.store.flush?.();
  };
  const op = new SanitizeOperation(lu, durationMs, body);
  lu.operation = op;
  if (c.immed) {
    void op.finished.then((err) => { if (err) lu.target.log?.error({ err, lun: lu.lun }, 'sanitize failed'); });
    return resp;
  }
  return new Promise<ScsiResponse>((resolve, reject) => {
    const off = lu.whenAborted(ctx.req, () => resolve(TASK_ABORTED));
    void op.finished.then((err) => {
      off();
      if (err) reject(err);
      else resolve(resp);
    });
  });
}

interface SanitizeCmd {
  immed: boolean;
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
      // Byte 1 bit 6 is ZNR, for zoned devices only: reserved on this one. Bytes 2-6 are reserved.
      reserved(cdb, 1, 0x40);
      for (let b = 2; b <= 6; b++) reserved(cdb, b, 0xff);
      const paramLength = cdb.readUInt16BE(7);
      // Only OVERWRITE takes a parameter list (SBC-4 §5.26.2 table 112).
      if (sa !== SanitizeAction.Overwrite && paramLength !== 0) throw invalidField(7);
      if (sa === SanitizeAction.Overwrite && (paramLength < 5 || paramLength > lu.blockSize + 4)) throw invalidField(7);
      return { immed: (cdb[1] & 0x80) !== 0, paramLength, blocks: sa === SanitizeAction.ExitFailureMode ? 0 : Number(lu.blockCount) };
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
  // TEST (vendor specific) and the reserved byte 1: none defined here.
  if (p[0] & 0x60) throw invalidParam(0, 6);
  if (p[1]) throw invalidParam(1, 31 - Math.clz32(p[1]));
  const block = Buffer.alloc(lu.blockSize);
  block.fill(p.subarray(4, 4 + patLen));
  // INVERT alternates the pattern between passes; only the last pass is visible. With an even
  // number of passes and INVERT set, the last pass wrote the inverted pattern.
  if (p[0] & 0x80 && count % 2 === 0) for (let i = 0; i < block.length; i++) block[i] ^= 0xff;
  const resp: ScsiResponse = { status: ScsiStatus.Good, data: null, sense: null, dataOutLength: c.paramLength };
  return startSanitize(ctx, c, count * timing.overwritePassMs, fillWork(lu, block, ctx.split), resp);
}

const SANITIZE_COMMANDS: CommandDef[] = [
  sanitizeDef(SanitizeAction.Overwrite, 'OVERWRITE', overwrite),
  sanitizeDef(SanitizeAction.BlockErase, 'BLOCK ERASE',
    (ctx, c) => startSanitize(ctx, c, timing.blockEraseMs, eraseWork(ctx.lu, ctx.split), GOOD),
    (lu) => sanitizeCharacteristics(lu).blockErase),
  sanitizeDef(SanitizeAction.CryptoErase, 'CRYPTOGRAPHIC ERASE',
    (ctx, c) => startSanitize(ctx, c, timing.cryptoEraseMs, eraseWork(ctx.lu, ctx.split), GOOD)),
  // A sanitize here never fails part way (a store error is reported to an IMMED=0 command and
  // logged), so there is no failure mode to leave.
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
