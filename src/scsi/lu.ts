/**
 * A logical unit and its command pipeline. Every command — from an initiator, and later from
 * XCOPY, the splitter or the replication engine — goes through submit(), which runs the gates
 * in SAM/SPC order (STYLE.md habit 5):
 *
 *   lookup → unit attention → decode (CDB checks) → ALUA access state → reservations
 *          → medium state → splitter policy (split.ts) → execute
 *
 * Handlers throw SenseError/StatusError; this file is where reasons become sense bytes.
 */
import { buildSense } from '../../protocol/scsi/sense.ts';
import type { SenseReason, SenseDetail } from '../../protocol/scsi/sense.ts';
import type { BackingStore } from '../store/store.ts';
import { SpaceExhaustedError, StoreFailedError } from '../store/store.ts';
import type { CommandDef, CommandContext } from './command.ts';
import { SERVICE_ACTION_OPCODES } from './command.ts';
import { COMMAND_TABLE, lookupCommand } from './table.ts';
import type { ScsiTarget } from './target.ts';
import { SenseError, StatusError, ScsiStatus } from './types.ts';
import type { Nexus, ScsiRequest, ScsiResponse } from './types.ts';
import { UnitAttentions } from './ua.ts';
import { Reservations } from './pr.ts';
import { splitGate } from './split.ts';
import type { ReplicaClaim } from './replica-claim.ts';
import type { LuProtection, SplitRecorder } from './split.ts';

export interface LuOptions {
  lun: number;
  store: BackingStore;
  readonly?: boolean;
  removable?: boolean;
  /** The NAA designator body for VPD 0x83 and XCOPY: 16 hex digits (NAA 2, 3, 5) or 32 (NAA 6), as configured. */
  naa: string;
  /** Unit serial number (VPD 0x80). */
  serial: string;
  vendor?: string;   // 8 chars
  product?: string;  // 16 chars
  revision?: string; // 4 chars
  /** Physical block size in bytes (READ CAPACITY(16) exponent, unmap granularity). Default: the logical block size. */
  physicalBlockSize?: number;
  /** ALUA kind this LU offers (INQUIRY TPGS; SET TARGET PORT GROUPS only with explicit). Default: the target's. */
  aluaMode?: 'implicit' | 'explicit' | 'both';
}

/**
 * A long-running operation of the LU that outlives the command that started it (SANITIZE,
 * SBC-4 §4.11): while it runs the LU refuses every command outside `allows` with `reason`
 * (NOT READY) and the progress indication, and REQUEST SENSE reports the same.
 */
export interface BackgroundOperation {
  readonly reason: SenseReason;
  allows(def: CommandDef): boolean;
  /** PROGRESS INDICATION (SPC-5 §4.4.2.4.3): 0..65535, the fraction done of 65536. */
  progress(): number;
}

/** Power conditions (SPC-5 §5.11) that START STOP UNIT selects (SBC-4 §5.25 table 108). */
export type PowerCondition = 'active' | 'idle_a' | 'idle_b' | 'idle_c' | 'standby_y' | 'standby_z';

/** REQUEST SENSE in a low power condition entered by command: NO SENSE, LOW POWER CONDITION ON (SPC-5 §6.39.2). */
const LOW_POWER_SENSE: Record<PowerCondition, SenseReason> = {
  active: 'NoSense',
  idle_a: 'LowPowerIdleByCommand',
  idle_b: 'LowPowerIdleBByCommand',
  idle_c: 'LowPowerIdleCByCommand',
  standby_y: 'LowPowerStandbyYByCommand',
  standby_z: 'LowPowerStandbyByCommand',
};

/** Mutable device settings that mode pages and START STOP UNIT change. */
export interface LuSettings {
  /** Control mode page D_SENSE: report descriptor-format sense (SPC-5 §7.5.8). */
  dSense: boolean;
  /** Caching mode page WCE (SBC-4 §6.5.5). */
  wce: boolean;
  /** Caching mode page RCD. */
  rcd: boolean;
  /** Control mode page SWP: software write protect. */
  swp: boolean;
  /** Control mode page TST/QErr/TAS etc. as the SPC module wants. */
  tas: boolean;
  /** Informational exceptions control page MRIE etc. kept opaque by the SPC module. */
  [k: string]: unknown;
}

export class LogicalUnit {
  readonly lun: number;
  /** Not readonly: `rcopy admitvv` puts a ReplicatedStore in front of it (src/replication/runtime-groups.ts). */
  store: BackingStore;
  readonly readonly: boolean;
  readonly removable: boolean;
  /** Not readonly: admitvv gives a secondary volume the primary's WWN and serial (one device on two arrays). */
  naa: string;
  serial: string;
  readonly vendor: string;
  readonly product: string;
  readonly revision: string;
  readonly aluaMode?: 'implicit' | 'explicit' | 'both';
  readonly physicalBlockSize: number;
  readonly ua: UnitAttentions;
  readonly reservations: Reservations;
  readonly settings: LuSettings = { dSense: false, wce: true, rcd: false, swp: false, tas: false };
  /** START STOP UNIT state (SBC-4 §5.25): false after STOP, or medium ejected on a removable LU. */
  started = true;
  mediumPresent = true;
  /**
   * Power condition set by START STOP UNIT. Nothing here spins down, so every command is served
   * in any condition; REQUEST SENSE reports it.
   */
  powerCondition: PowerCondition = 'active';
  /** SANITIZE in progress (sbc-medium.ts). Survives resets and nexus loss (SBC-4 §4.11). */
  operation: BackgroundOperation | null = null;
  /** Commands whose task ends before their work when aborted (SANITIZE with IMMED=0): by nexus and task tag. */
  private readonly abortHooks = new Map<string, () => void>();
  /** PREVENT ALLOW MEDIUM REMOVAL: nexus keys that hold a prevent. */
  readonly preventers = new Set<string>();
  /**
   * The replication set protecting this LU (src/splitter), or null: then the splitter gate costs a
   * null check and a look at the command's splitter class (only EXTENDED COPY, which may write a
   * protected LU, goes on to the gate).
   */
  protection: LuProtection | null = null;
  /**
   * Why the LU is not ready for media access apart from START STOP UNIT and the medium, or null:
   * a replica LU of a consistency-group copy answers NOT READY while image access is disabled
   * (src/splitter/copy-target.ts). Checked by the medium gate and by REQUEST SENSE.
   */
  availability: (() => SenseReason | null) | null = null;
  /**
   * A remote copy's claim on this LU as its replica volume (REPLICA CLAIM, replica-claim.ts): media
   * commands from any I_T nexus but the claim's answer NOT READY (02/04/03). Checked by the medium
   * gate and by REQUEST SENSE, beside `availability`.
   */
  replicaClaim: ReplicaClaim | null = null;
  /**
   * Counters the admin API and /metrics report. `commands`: every command submitted to this LU;
   * reads/writes and bytes: media transfers done (XCOPY's included); `errors`: commands that
   * failed or were refused (fail()); a pending unit attention reported is not one.
   */
  readonly stats = { reads: 0, writes: 0, readBytes: 0, writeBytes: 0, errors: 0, commands: 0 };

  constructor(readonly target: ScsiTarget, o: LuOptions) {
    this.lun = o.lun;
    this.store = o.store;
    this.readonly = !!o.readonly;
    this.removable = !!o.removable;
    this.naa = o.naa;
    this.serial = o.serial;
    this.vendor = o.vendor ?? 'ARRAYSIM';
    this.product = o.product ?? 'VIRTUAL-DISK';
    this.revision = o.revision ?? '0001';
    this.aluaMode = o.aluaMode;
    this.physicalBlockSize = Math.max(o.physicalBlockSize ?? o.store.blockSize, o.store.blockSize);
    this.ua = new UnitAttentions();
    this.reservations = new Reservations(this);
  }

  get blockSize(): number { return this.store.blockSize; }
  get blockCount(): bigint { return this.store.blockCount; }

  /** Write-protected either by configuration or by the Control mode page SWP bit. */
  get writeProtected(): boolean { return this.readonly || this.settings.swp; }

  lookup(cdb: Buffer): CommandDef | undefined {
    return lookupCommand(cdb);
  }

  /** Run one command through the pipeline. Synchronous when the store is (memory). */
  submit(req: ScsiRequest): ScsiResponse | Promise<ScsiResponse> {
    this.stats.commands++;
    try {
      const def = this.lookup(req.cdb);
      // Unit attention first (SAM-5 §5.14): even an unsupported opcode reports a pending UA.
      if (!def || def.ua === 'report') {
        const ua = this.ua.take(req.nexus.key);
        if (ua) return this.check(ua.reason, ua.detail);
      }
      if (!def) {
        // SPC-5 §4.4: an opcode we do not implement; a service action we do not implement is
        // also INVALID FIELD IN CDB on byte 1 where the opcode itself is known.
        if (SERVICE_ACTION_OPCODES.has(req.cdb[0]) && hasOpcode(req.cdb[0])) {
          throw new SenseError('InvalidFieldInCdb', { fieldPointer: { inCdb: true, byte: req.cdb[0] === 0x7f ? 8 : 1 } });
        }
        throw new SenseError('InvalidOpcode');
      }
      // SAM-5 §5.2: NACA=1 asks for ACA, which this device server does not support (standard
      // INQUIRY NORMACA=0), so every command answers INVALID FIELD IN CDB on the CONTROL byte.
      if (req.cdb[def.cdbLength - 1] & 0x04) {
        throw new SenseError('InvalidFieldInCdb', { fieldPointer: { inCdb: true, byte: def.cdbLength - 1, bit: 2 } });
      }
      // SBC-4 §4.11: while a sanitize operation runs, only a few commands are processed.
      const op = this.operation;
      if (op && !op.allows(def)) throw new SenseError(op.reason, { progress: op.progress() });
      const cmd = def.decode(req.cdb, this, req);
      this.target.alua.gate(def, this, req.nexus);
      this.reservations.gate(def, req, cmd);
      if (def.needsMedium) this.mediumGate(req.nexus);
      // A claimed replica volume keeps other nexuses from reserving it too (they would block the link).
      else if (this.replicaClaim !== null && (def.reservation === 'pr-out' || def.reservation === 'reserve')) this.claimGate(req.nexus);
      // EXTENDED COPY is governed by its destination LUs' protection, which may be another LU's.
      let split: SplitRecorder | null = null;
      if (def.splitter !== 'none' && (this.protection !== null || def.splitter === 'xcopy')) split = splitGate(def, cmd, this, req);
      const ctx: CommandContext = { lu: this, target: this.target, req, nexus: req.nexus, split };
      let r = def.execute(ctx, cmd);
      // A file-journaled group: GOOD only once the command's journal records are durable.
      if (split?.waits) r = split.acknowledge(r);
      if (r instanceof Promise) return r.catch((e) => this.fail(e, req));
      return r;
    } catch (e) {
      return this.fail(e, req);
    }
  }

  /** SBC-4 §4.19 / SPC-5: a stopped unit or an absent medium refuses media access. */
  mediumGate(nexus?: Nexus): void {
    if (!this.mediumPresent) throw new SenseError('MediumNotPresent');
    if (!this.started) throw new SenseError('NotReadyInitializingCommandRequired');
    const why = this.availability?.() ?? this.claimedAgainst(nexus);
    if (why) throw new SenseError(why);
  }

  /**
   * PERSISTENT RESERVE OUT, RESERVE and RELEASE on a claimed LU: NOT READY (02/04/03) for every
   * nexus but the claim's, as media commands are, so no host at the remote site can register or
   * reserve the replica volume and so block the link's writes (RESERVATION CONFLICT).
   */
  private claimGate(nexus: Nexus): void {
    const why = this.claimedAgainst(nexus);
    if (why) throw new SenseError(why);
  }

  /** NOT READY for every nexus but the claim's (`nexus` absent: the array's own I/O, which is not the claim's either). */
  private claimedAgainst(nexus?: Nexus): SenseReason | null {
    const c = this.replicaClaim;
    return c !== null && c.nexusKey !== nexus?.key ? 'NotReadyManualInterventionRequired' : null;
  }

  /** The sense REQUEST SENSE returns when no unit attention is pending (SPC-5 §6.39.2): the LU's condition. */
  readiness(nexus?: Nexus): { reason: SenseReason; detail?: SenseDetail } {
    const op = this.operation;
    if (op) return { reason: op.reason, detail: { progress: op.progress() } };
    if (!this.mediumPresent) return { reason: 'MediumNotPresent' };
    if (!this.started) return { reason: 'NotReadyInitializingCommandRequired' };
    const why = this.availability?.() ?? this.claimedAgainst(nexus);
    if (why) return { reason: why };
    return { reason: LOW_POWER_SENSE[this.powerCondition] };
  }

  /**
   * PREEMPT AND ABORT (SPC-5 §5.14.11.5): abort this LU's tasks from the I_T nexuses `which`
   * selects, through the transport that holds the task sets. They end without status (TAS=0, the
   * Control mode page here), as tasks an ABORT TASK SET ends.
   */
  abortNexusTasks(which: (n: Nexus) => boolean): void {
    this.target.abortTasks?.(this.lun, which);
  }

  /** Let `onAbort` end the task of `req` early when the transport aborts it; returns the unregister function. */
  whenAborted(req: ScsiRequest, onAbort: () => void): () => void {
    const key = `${req.nexus.key}#${req.taskTag}`;
    this.abortHooks.set(key, onAbort);
    return () => { if (this.abortHooks.get(key) === onAbort) this.abortHooks.delete(key); };
  }

  /**
   * The transport aborted a task (ABORT TASK, ABORT TASK SET, LU or target reset, SAM-5 §7). Most
   * commands just finish and their status is dropped; those registered with whenAborted() end now.
   */
  abortTask(nexusKey: string, taskTag: number): void {
    const key = `${nexusKey}#${taskTag}`;
    const f = this.abortHooks.get(key);
    if (f) { this.abortHooks.delete(key); f(); }
  }

  /** CHECK CONDITION with sense in the format the Control mode page asks for. */
  check(reason: SenseReason, detail?: SenseDetail): ScsiResponse {
    return { status: ScsiStatus.CheckCondition, data: null, sense: buildSense(reason, this.settings.dSense, detail) };
  }

  /** The response for a command that threw `e`; at log level debug, one line saying why (`req` names the CDB). */
  fail(e: unknown, req?: ScsiRequest): ScsiResponse {
    this.stats.errors++;
    const log = this.target.log;
    if (req && log?.isLevelEnabled('debug') && (e instanceof SenseError || e instanceof StatusError)) {
      log.debug({ lun: this.lun, cdb: req.cdb.toString('hex'), why: e instanceof SenseError ? e.reason : `status ${e.status}` }, 'command refused');
    }
    if (e instanceof SenseError) return this.check(e.reason, e.detail);
    if (e instanceof StatusError) return { status: e.status, data: null, sense: null };
    if (e instanceof SpaceExhaustedError) {
      this.target.log?.warn({ lun: this.lun, err: e.message }, 'write refused: thin pool exhausted');
      return this.check('SpaceAllocationFailedWriteProtect');
    }
    if (e instanceof StoreFailedError) {
      // The RAID set or its metadata failed (fault injection, src/store/fault.ts): SBC-4 §4.18 medium errors, or SPC-5 HARDWARE ERROR.
      if (e.sense === 'hardware-error') return this.check('InternalTargetFailure');
      return this.check(e.op === 'read' ? 'UnrecoveredReadError' : 'WriteError');
    }
    this.target.log?.error({ err: e, lun: this.lun }, 'internal error executing command');
    return this.check('InternalTargetFailure');
  }

  /** Logical unit reset (SAM-5 §6.6): clear task set, RESERVE/RELEASE reservations, UA 29/03. */
  reset(): void {
    this.reservations.onLogicalUnitReset();
    this.preventers.clear();
    this.ua.establishAll(this.target.nexusKeys(), 'BusDeviceResetOccurred');
  }

  /**
   * The LOGICAL UNIT RESET task management function (SAM-5 §7.7), once the transport has aborted
   * this array's tasks for the LU. Peer replication replaces it on a replicated LU
   * (src/replication/pr-replication.ts), so that the reset reaches the other array's I_T nexuses.
   */
  logicalUnitReset(_nexus: Nexus): void | Promise<void> {
    this.reset();
  }

  /** An I_T nexus went away (session closed): drop what SPC ties to it. */
  nexusLost(nexus: Nexus): void {
    // A remote copy's link dropped: the records its claim holds waiting are dropped (sent again).
    if (this.replicaClaim?.nexusKey === nexus.key) this.replicaClaim.receiver.drop('the link\'s session is gone');
    this.reservations.onNexusLoss(nexus);
    this.preventers.delete(nexus.key);
    this.ua.forget(nexus.key);
  }
}

function hasOpcode(op: number): boolean {
  for (const def of COMMAND_TABLE.values()) if (def.opcode === op) return true;
  return false;
}
