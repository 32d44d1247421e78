/**
 * Command-table entries for reservations: PERSISTENT RESERVE IN (SPC-5 §6.16) and OUT
 * (§6.17), one entry per service action, and the SPC-2 RESERVE/RELEASE (6)/(10) commands.
 * decode() checks the CDB and the parameter list once and yields a typed command; execute()
 * calls the state transitions on the LU's Reservations (pr.ts / pr-registry.ts).
 */
import {
  decodeMoveParameters, decodeProutParameters, encodeReadFullStatus, encodeReadKeys, encodeReadReservation,
  encodeReportCapabilities, isPrType, LU_SCOPE, PrinAction, ProutAction, PrType, SPEC_I_PT_BIT, PROUT_FLAGS_BYTE,
} from '../../protocol/scsi/pr.ts';
import type { Decoded, MoveParameters, ProutParameters } from '../../protocol/scsi/pr.ts';
import type { CommandContext, CommandDef } from './command.ts';
import type { LogicalUnit } from './lu.ts';
import { isAllRegistrants, matches } from './pr-registry.ts';
import { ScsiStatus, SenseError } from './types.ts';
import type { ScsiRequest, ScsiResponse } from './types.ts';

export const OP_PERSISTENT_RESERVE_IN = 0x5e;
export const OP_PERSISTENT_RESERVE_OUT = 0x5f;
export const OP_RESERVE6 = 0x16;
export const OP_RELEASE6 = 0x17;
export const OP_RESERVE10 = 0x56;
export const OP_RELEASE10 = 0x57;

const ALL_TYPES: readonly PrType[] = [
  PrType.WriteExclusive, PrType.ExclusiveAccess, PrType.WriteExclusiveRegistrantsOnly,
  PrType.ExclusiveAccessRegistrantsOnly, PrType.WriteExclusiveAllRegistrants, PrType.ExclusiveAccessAllRegistrants,
];

function good(dataOutLength?: number): ScsiResponse {
  return { status: ScsiStatus.Good, data: null, sense: null, ...(dataOutLength === undefined ? {} : { dataOutLength }) };
}

function unwrap<T>(d: Decoded<T>): T {
  if (d.ok) return d.value;
  throw new SenseError(d.reason, d.fieldPointer ? { fieldPointer: d.fieldPointer } : {});
}

// ---------------------------------------------------------------------------------------------
// PERSISTENT RESERVE IN (SPC-5 §6.16)

interface PrinCommand { allocationLength: number }

type PrinBuilder = (ctx: CommandContext) => Buffer;

const PRIN_BUILDERS: Record<PrinAction, PrinBuilder> = {
  // §6.16.2: every registered key, one per registration.
  [PrinAction.ReadKeys]: ({ lu }) => {
    const pr = lu.reservations.pr;
    return encodeReadKeys(pr.generation, pr.registrations.map((r) => r.key));
  },
  // §6.16.3: all-registrants reservations report key zero.
  [PrinAction.ReadReservation]: ({ lu }) => {
    const pr = lu.reservations.pr;
    const res = pr.reservation;
    return encodeReadReservation(pr.generation, res && { key: isAllRegistrants(res.type) ? 0n : res.holder.key, type: res.type });
  },
  // §6.16.4. PTPL_C=1 so that APTPL is accepted; the state is kept in memory only (pr-registry.ts).
  [PrinAction.ReportCapabilities]: ({ lu }) => encodeReportCapabilities({
    rlrC: false, crh: true, sipC: true, atpC: true, ptplC: true, tmv: true,
    allowCommands: 0, // 000b: no claim about which commands pass WE/EA reservations
    ptplA: lu.reservations.pr.aptpl, types: ALL_TYPES,
  }),
  // §6.16.5: one descriptor per registration, TransportID format 01b (00b for name-wide ones).
  [PrinAction.ReadFullStatus]: ({ lu }) => {
    const pr = lu.reservations.pr;
    return encodeReadFullStatus(pr.generation, pr.registrations.map((r) => ({
      key: r.key,
      allTgPt: r.targetPortName === null,
      rHolder: pr.holds(r),
      type: pr.reservation?.type ?? 0,
      relativeTargetPortId: r.relativeTargetPortId,
      initiatorName: r.initiatorName,
      isid: r.isid,
    })));
  },
};

function prin(sa: PrinAction, name: string): CommandDef<PrinCommand> {
  const build = PRIN_BUILDERS[sa];
  return {
    opcode: OP_PERSISTENT_RESERVE_IN, serviceAction: sa, name: `PERSISTENT RESERVE IN (${name})`, cdbLength: 10,
    usage: [OP_PERSISTENT_RESERVE_IN, sa, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0x00],
    dataDirection: 'in', reservation: 'allowed', alua: 'standby-ok', ua: 'report', splitter: 'none',
    // SPC-2 §5.5.1: PR IN conflicts under RESERVE (enforced in Reservations.legacyGate).
    legacyReservation: 'conflict',
    decode: (cdb) => ({ allocationLength: cdb.readUInt16BE(7) }),
    execute(ctx, cmd) {
      const data = build(ctx);
      // ADDITIONAL LENGTH keeps the untruncated length (§6.16.2); the data is cut at the allocation length.
      return { status: ScsiStatus.Good, data: data.subarray(0, Math.min(data.length, cmd.allocationLength)), sense: null };
    },
  };
}

// ---------------------------------------------------------------------------------------------
// PERSISTENT RESERVE OUT (SPC-5 §6.17)

interface ProutCommand {
  scope: number;
  type: number;
  parameterListLength: number;
  params: ProutParameters;
}

interface MoveCommand {
  parameterListLength: number;
  params: MoveParameters;
}

/** Service actions whose CDB SCOPE/TYPE fields mean something (SPC-5 §6.17.2). */
const TYPED_ACTIONS: ReadonlySet<ProutAction> = new Set([ProutAction.Reserve, ProutAction.Release, ProutAction.Preempt, ProutAction.PreemptAndAbort]);

/** The parameter list bytes, exactly PARAMETER LIST LENGTH of them. */
function parameterList(cdb: Buffer, req: ScsiRequest): { length: number; data: Buffer } {
  const length = cdb.readUInt32BE(5);
  const data = req.dataOut ?? Buffer.alloc(0);
  // Fewer bytes than the CDB announces: the list cannot be what it says it is.
  if (data.length < length) throw new SenseError('ParameterListLengthError');
  return { length, data: data.subarray(0, length) };
}

function decodeProut(sa: ProutAction, cdb: Buffer, req: ScsiRequest): ProutCommand {
  const scope = cdb[2] >> 4;
  const type = cdb[2] & 0x0f;
  if (TYPED_ACTIONS.has(sa)) {
    if (scope !== LU_SCOPE) throw new SenseError('InvalidFieldInCdb', { fieldPointer: { inCdb: true, byte: 2, bit: 7 } });
    if (!isPrType(type)) throw new SenseError('InvalidFieldInCdb', { fieldPointer: { inCdb: true, byte: 2, bit: 3 } });
  }
  const { length, data } = parameterList(cdb, req);
  // SPEC_I_PT is defined for REGISTER only (SPC-5 §6.17.3); check before the length rule it changes.
  if (sa !== ProutAction.Register && length >= PROUT_FLAGS_BYTE + 1 && data[PROUT_FLAGS_BYTE] & (1 << SPEC_I_PT_BIT)) {
    throw new SenseError('InvalidFieldInParameterList', { fieldPointer: { inCdb: false, byte: PROUT_FLAGS_BYTE, bit: SPEC_I_PT_BIT } });
  }
  return { scope, type, parameterListLength: length, params: unwrap(decodeProutParameters(data)) };
}

type ProutAct = (ctx: CommandContext, cmd: ProutCommand) => void;

const PROUT_ACTIONS: Record<Exclude<ProutAction, ProutAction.RegisterAndMove | ProutAction.ReplaceLostReservation>, ProutAct> = {
  [ProutAction.Register]: ({ lu, nexus }, c) => lu.reservations.pr.register(nexus, c.params, false),
  [ProutAction.RegisterAndIgnoreExistingKey]: ({ lu, nexus }, c) => lu.reservations.pr.register(nexus, c.params, true),
  [ProutAction.Reserve]: ({ lu, nexus }, c) => lu.reservations.pr.reserve(nexus, c.params.reservationKey, c.type as PrType),
  [ProutAction.Release]: ({ lu, nexus }, c) => lu.reservations.pr.release(nexus, c.params.reservationKey, c.type),
  [ProutAction.Clear]: ({ lu, nexus }, c) => lu.reservations.pr.clear(nexus, c.params.reservationKey),
  [ProutAction.Preempt]: ({ lu, nexus }, c) =>
    lu.reservations.pr.preempt(nexus, c.params.reservationKey, c.params.serviceActionKey, c.type as PrType),
  // SPC-5 §5.14.11.5: the tasks of the preempted I_T nexuses are aborted (not the PREEMPT AND ABORT's own nexus).
  [ProutAction.PreemptAndAbort]: ({ lu, nexus }, c) => {
    const pr = lu.reservations.pr;
    const before = [...pr.registrations];
    pr.preempt(nexus, c.params.reservationKey, c.params.serviceActionKey, c.type as PrType);
    const gone = before.filter((r) => !pr.registrations.includes(r));
    if (gone.length) lu.abortNexusTasks((n) => n.key !== nexus.key && gone.some((r) => matches(r, n)));
  },
};

/** Bits of CDB byte 2 (SCOPE, TYPE) the service action looks at. */
const scopeTypeUsage = (sa: ProutAction): number => (TYPED_ACTIONS.has(sa) ? 0xff : 0x00);

function proutUsage(sa: ProutAction): number[] {
  return [OP_PERSISTENT_RESERVE_OUT, sa, scopeTypeUsage(sa), 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0x00];
}

const PROUT_COMMON = {
  opcode: OP_PERSISTENT_RESERVE_OUT, cdbLength: 10, dataDirection: 'out', reservation: 'pr-out',
  alua: 'standby-ok', ua: 'report', splitter: 'none', legacyReservation: 'conflict',
} as const;

function prout(sa: keyof typeof PROUT_ACTIONS, name: string): CommandDef<ProutCommand> {
  const act = PROUT_ACTIONS[sa];
  return {
    ...PROUT_COMMON, serviceAction: sa, name: `PERSISTENT RESERVE OUT (${name})`, usage: proutUsage(sa),
    decode: (cdb, _lu: LogicalUnit, req) => decodeProut(sa, cdb, req),
    execute(ctx, cmd) {
      act(ctx, cmd);
      return good(cmd.parameterListLength);
    },
  };
}

const registerAndMove: CommandDef<MoveCommand> = {
  ...PROUT_COMMON, serviceAction: ProutAction.RegisterAndMove, name: 'PERSISTENT RESERVE OUT (REGISTER AND MOVE)',
  usage: proutUsage(ProutAction.RegisterAndMove),
  decode(cdb, _lu, req) {
    const { length, data } = parameterList(cdb, req);
    return { parameterListLength: length, params: unwrap(decodeMoveParameters(data)) };
  },
  execute({ lu, nexus }, cmd) {
    lu.reservations.pr.registerAndMove(nexus, cmd.params, (id) => lu.reservations.targetPortName(id, nexus));
    return good(cmd.parameterListLength);
  },
};

// ---------------------------------------------------------------------------------------------
// RESERVE / RELEASE (SPC-2 §7.21-§7.24)

interface LegacyCommand { reserve: boolean }

/**
 * Third-party reservations (3RDPTY, SPC-2 byte 1 bit 4) and long identifiers (LONGID, the (10)
 * forms' byte 1 bit 1) are not supported: INVALID FIELD IN CDB. The obsolete extent bit is ignored.
 */
function legacy(opcode: number, name: string, cdbLength: 6 | 10, reserve: boolean): CommandDef<LegacyCommand> {
  const checked = cdbLength === 10 ? 0x12 : 0x10;
  return {
    opcode, name, cdbLength,
    usage: cdbLength === 10 ? [opcode, checked, 0, 0, 0, 0, 0, 0, 0, 0x00] : [opcode, checked, 0, 0, 0, 0x00],
    dataDirection: 'none', reservation: 'reserve', alua: 'media', ua: 'report', splitter: 'none',
    decode(cdb) {
      const bad = cdb[1] & checked;
      if (bad) throw new SenseError('InvalidFieldInCdb', { fieldPointer: { inCdb: true, byte: 1, bit: 31 - Math.clz32(bad) } });
      return { reserve };
    },
    execute({ lu, nexus }, cmd) {
      if (cmd.reserve) lu.reservations.reserveLegacy(nexus);
      else lu.reservations.releaseLegacy(nexus);
      return good();
    },
  };
}

export const PR_COMMANDS: CommandDef[] = [
  prin(PrinAction.ReadKeys, 'READ KEYS'),
  prin(PrinAction.ReadReservation, 'READ RESERVATION'),
  prin(PrinAction.ReportCapabilities, 'REPORT CAPABILITIES'),
  prin(PrinAction.ReadFullStatus, 'READ FULL STATUS'),
  prout(ProutAction.Register, 'REGISTER'),
  prout(ProutAction.Reserve, 'RESERVE'),
  prout(ProutAction.Release, 'RELEASE'),
  prout(ProutAction.Clear, 'CLEAR'),
  prout(ProutAction.Preempt, 'PREEMPT'),
  prout(ProutAction.PreemptAndAbort, 'PREEMPT AND ABORT'),
  prout(ProutAction.RegisterAndIgnoreExistingKey, 'REGISTER AND IGNORE EXISTING KEY'),
  registerAndMove,
  legacy(OP_RESERVE6, 'RESERVE(6)', 6, true),
  legacy(OP_RELEASE6, 'RELEASE(6)', 6, false),
  legacy(OP_RESERVE10, 'RESERVE(10)', 10, true),
  legacy(OP_RELEASE10, 'RELEASE(10)', 10, false),
];
