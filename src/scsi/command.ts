/**
 * The shape of one command-table entry. Every SCSI command the target implements is exactly
 * one CommandDef in exactly one module (spc.ts, sbc.ts, pr.ts, …); table.ts gathers them.
 * REPORT SUPPORTED OPERATION CODES, the reservation gate, the ALUA gate and (later) the
 * splitter policy all read these fields — nothing else knows which opcodes exist.
 */
import type { LogicalUnit } from './lu.ts';
import type { SplitRecorder, SplitterClass } from './split.ts';
import type { ScsiTarget } from './target.ts';
import type { Extent, Nexus, ScsiRequest, ScsiResponse } from './types.ts';

/**
 * How a command interacts with reservations. Per SPC-5 §5.14.3 table 69 (persistent) and
 * SPC-2 §5.5.1 (RESERVE/RELEASE):
 *  - 'read':      media read; conflicts for non-holders under Exclusive Access types.
 *  - 'write':     media write; conflicts under Write Exclusive and Exclusive Access types.
 *  - 'allowed':   never conflicts (INQUIRY, REPORT LUNS, REQUEST SENSE, PR IN …).
 *  - 'conflict':  conflicts for any non-holder under any reservation (MODE SELECT, FORMAT …).
 *  - 'pr-out':    PERSISTENT RESERVE OUT: handled by the PR module itself.
 *  - 'reserve':   RESERVE/RELEASE(6/10): handled by the PR module itself.
 */
export type ReservationClass = 'read' | 'write' | 'allowed' | 'conflict' | 'pr-out' | 'reserve';

/**
 * ALUA class (SPC-5 §5.16.2.4): which target port asymmetric access states accept the command.
 * Each class accepts everything the one before it accepts:
 *  - 'media':          only active/optimized and active/non-optimized (reads, writes, …).
 *  - 'standby-ok':     also standby (§5.16.2.4.4: MODE SENSE/SELECT, LOG SENSE, PR IN/OUT, TUR …).
 *  - 'unavailable-ok': also unavailable (§5.16.2.4.5: SET TARGET PORT GROUPS, REPORT SUPPORTED
 *                      OPERATION CODES …).
 *  - 'always':         also transitioning and offline (§5.16.2.4.6-7: INQUIRY, REPORT LUNS,
 *                      REPORT TARGET PORT GROUPS, REQUEST SENSE).
 */
export type AluaClass = 'media' | 'standby-ok' | 'unavailable-ok' | 'always';

/** Whether a pending unit attention is reported for this command (SAM-5 §5.14, SPC-5 §6.x). */
export type UaClass = 'report' | 'skip';

export type { SplitterClass } from './split.ts';

export interface CommandContext {
  readonly lu: LogicalUnit;
  readonly target: ScsiTarget;
  readonly req: ScsiRequest;
  readonly nexus: Nexus;
  /**
   * The splitter gate's recorder (split.ts) when a protected LU is written with policy support:
   * the command's write path reports each store change to it while it holds the range. Null
   * otherwise.
   */
  readonly split: SplitRecorder | null;
}

export interface CommandDef<C = any> {
  readonly opcode: number;
  /** Service action for opcodes that multiplex (0x9e, 0xa3, 0xa4, 0x5e, 0x5f, 0x7f). */
  readonly serviceAction?: number;
  readonly name: string;
  readonly cdbLength: number;
  /**
   * CDB USAGE DATA for REPORT SUPPORTED OPERATION CODES (SPC-5 §6.35.3): one byte per CDB
   * byte, a bit set where the target looks at that bit. Byte 0 is the opcode (0xff).
   */
  readonly usage: readonly number[];
  readonly dataDirection: 'none' | 'in' | 'out';
  readonly reservation: ReservationClass;
  /**
   * Reservation class when it depends on the CDB (e.g. PREVENT ALLOW MEDIUM REMOVAL with
   * PREVENT=00b never conflicts, SPC-5 §5.14.3): overrides `reservation` for one decoded command.
   */
  reservationOf?(cmd: C): ReservationClass;
  /**
   * SPC-2 RESERVE/RELEASE (SPC-2 §5.5.1): whether the command is accepted from an I_T nexus
   * other than the RESERVE holder. Absent: accepted exactly when the (persistent) class is
   * 'allowed'. Set 'conflict' on commands SPC-5 lets through persistent reservations but
   * SPC-2 does not (TEST UNIT READY, READ CAPACITY …) if strict SPC-2 behaviour is wanted.
   */
  readonly legacyReservation?: 'allowed' | 'conflict';
  readonly alua: AluaClass;
  readonly ua: UaClass;
  /**
   * What a write splitter treats this command as (split.ts): 'none', a plain 'write', or the VAAI
   * primitive it is ('ats', 'xcopy', 'writesame', 'unmap'), whose policy the splitter applies.
   * Together with writes() the only thing that decides what is split.
   */
  readonly splitter: SplitterClass;
  /** Nominal and recommended timeouts, seconds (RSOC CTDP). */
  readonly timeout?: { nominal: number; recommended: number };
  /**
   * Decode the CDB into a typed command. Throws SenseError (InvalidFieldInCdb with a
   * field pointer, LbaOutOfRange …). All field and range checks happen here, once.
   */
  decode(cdb: Buffer, lu: LogicalUnit, req: ScsiRequest): C;
  /** Execute a decoded command. Never re-parses CDB bytes. */
  execute(ctx: CommandContext, cmd: C): ScsiResponse | Promise<ScsiResponse>;
  /** The extents this command will write (for the splitter and replication; split.ts). */
  writes?(cmd: C): Extent[];
  /** True when the command needs the medium to be present/started (SBC-4 §4.19 START STOP UNIT). */
  readonly needsMedium?: boolean;
  /**
   * Whether this LU offers the command (a capability of its store, e.g. UNMAP only on thin
   * LUs). Absent: always. REPORT SUPPORTED OPERATION CODES should omit the command where this
   * is false; decode() itself answers INVALID COMMAND OPERATION CODE for such an LU.
   */
  supported?(lu: LogicalUnit): boolean;
}

/** Table key: opcode, or opcode<<16 | serviceAction for service-action opcodes. */
export function tableKey(opcode: number, serviceAction?: number): number {
  return serviceAction === undefined ? opcode : ((opcode << 16) | serviceAction) >>> 0;
}

/** Opcodes whose CDB carries a service action field (byte 1 bits 4:0, or bytes 8-9 for 0x7f). */
export const SERVICE_ACTION_OPCODES: ReadonlySet<number> = new Set([0x9e, 0x9f, 0xa3, 0xa4, 0x5e, 0x5f, 0x7f, 0x83, 0x84, 0x48]);

export function serviceActionOf(cdb: Buffer): number {
  if (cdb[0] === 0x7f) return cdb.readUInt16BE(8);
  return cdb[1] & 0x1f;
}
