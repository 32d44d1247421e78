/**
 * Reservations of one logical unit: SPC-2 RESERVE/RELEASE and SPC-5 persistent reservations
 * (§5.14), and the reservation gate of the LU pipeline (STYLE.md habit 5).
 *
 * The gate reads only the command table's reservation class (command.ts ReservationClass),
 * applying SPC-5 §5.14.3 table "SPC commands that are allowed in the presence of various
 * reservations" (and its SBC-4 counterpart) for persistent reservations, and SPC-2 §5.5.1 for
 * RESERVE/RELEASE. The PERSISTENT RESERVE OUT service actions themselves are state transitions
 * in pr-registry.ts; CDB and parameter-list decoding is in pr-commands.ts.
 *
 * Interplay of the two mechanisms (SPC-2 §5.5.1, and the CRH exceptions of SPC-5 §5.14.3 —
 * REPORT CAPABILITIES reports CRH=1):
 *  - while a RESERVE is held by any I_T nexus, every PERSISTENT RESERVE IN/OUT conflicts,
 *    from any I_T nexus including the holder;
 *  - while any registration exists, RESERVE and RELEASE conflict, except that they complete
 *    with GOOD and do nothing when sent by the persistent reservation holder, or by a
 *    registrant while a registrants-only/all-registrants reservation exists (CRH=1).
 */
import { PrType } from '../../protocol/scsi/pr.ts';
import type { SenseReason } from '../../protocol/scsi/sense.ts';
import type { CommandDef, ReservationClass } from './command.ts';
import type { LogicalUnit } from './lu.ts';
import { isRegistrantType, matches, PersistentReservations } from './pr-registry.ts';
import type { PrNotify, Registration } from './pr-registry.ts';
import { ScsiStatus, StatusError } from './types.ts';
import type { Nexus, ScsiRequest } from './types.ts';
import { PR_COMMANDS, OP_PERSISTENT_RESERVE_IN } from './pr-commands.ts';
import { targetPortName as targetPortNameOf } from '../../protocol/iscsi/names.ts';

export { PR_COMMANDS };

const conflict = (): StatusError => new StatusError(ScsiStatus.ReservationConflict);

/** Exclusive Access types also keep reads from non-holders out (SPC-5 §5.14.3). */
function isExclusiveAccess(t: PrType): boolean {
  return t === PrType.ExclusiveAccess || t === PrType.ExclusiveAccessRegistrantsOnly || t === PrType.ExclusiveAccessAllRegistrants;
}

export class Reservations {
  /** SPC-2 RESERVE(6)/(10) holder: an I_T nexus key, or null. */
  legacyHolder: string | null = null;
  readonly pr: PersistentReservations;
  /**
   * Sees every unit attention a PR OUT raises, before this array's nexuses get it: peer
   * replication ships them to the other array's nexuses (src/replication/pr-replication.ts).
   */
  onNotice: PrNotify | null = null;

  constructor(readonly lu: LogicalUnit) {
    this.pr = new PersistentReservations((regs, reason, except) => this.notify(regs, reason, except));
  }

  /**
   * The reservation gate, after decode and before execute. Throws RESERVATION CONFLICT.
   * Fast path: nothing reserved, nothing to check.
   */
  gate(def: CommandDef, req: ScsiRequest, cmd: unknown): void {
    if (this.legacyHolder === null && this.pr.reservation === null) return;
    const cls = def.reservationOf ? def.reservationOf(cmd) : def.reservation;
    try {
      if (this.legacyHolder !== null) this.legacyGate(def, cls, req.nexus);
      if (this.pr.reservation !== null) this.persistentGate(cls, req.nexus);
    } catch (e) {
      // Conflicts are rare and puzzling from the host side: say who holds what (debug level).
      this.lu.target.log?.debug({ lun: this.lu.lun, command: def.name, from: req.nexus.key, legacyHolder: this.legacyHolder, persistent: this.pr.reservation }, 'reservation conflict');
      throw e;
    }
  }

  /** SPC-2 §5.5.1: a RESERVE keeps every other I_T nexus out, but for a short allow-list. */
  private legacyGate(def: CommandDef, cls: ReservationClass, n: Nexus): void {
    // "…all PERSISTENT RESERVE IN and all PERSISTENT RESERVE OUT commands shall conflict
    // regardless of initiator or service action" (SPC-2 §5.5.1).
    if (cls === 'pr-out' || def.opcode === OP_PERSISTENT_RESERVE_IN) throw conflict();
    if (n.key === this.legacyHolder) return;
    if (cls === 'reserve') return; // RESERVE conflicts and RELEASE is a no-op: decided in execute
    const allowed = def.legacyReservation ? def.legacyReservation === 'allowed' : cls === 'allowed';
    if (!allowed) throw conflict();
  }

  /** SPC-5 §5.14.3 table, by reservation class. */
  private persistentGate(cls: ReservationClass, n: Nexus): void {
    const res = this.pr.reservation!;
    switch (cls) {
      case 'allowed':
      case 'pr-out':  // PR OUT rules are in pr-registry.ts
      case 'reserve': // CRH exceptions are in reserveLegacy/releaseLegacy
        return;
      case 'read':
      case 'write':
      case 'conflict': {
        const reg = this.pr.registrationOf(n);
        if (this.pr.holds(reg)) return;
        // Registrants-only / all-registrants: any registered I_T nexus has full access.
        if (reg && isRegistrantType(res.type)) return;
        // Write Exclusive types let everyone read.
        if (cls === 'read' && !isExclusiveAccess(res.type)) return;
        throw conflict();
      }
    }
  }

  /** RESERVE(6)/(10) (SPC-2 §7.21, §7.22), with the CRH exceptions (SPC-5 §5.14.3). */
  reserveLegacy(n: Nexus): void {
    if (this.pr.registrations.length > 0) {
      if (this.crhExempt(n)) return;
      throw conflict();
    }
    if (this.legacyHolder !== null && this.legacyHolder !== n.key) throw conflict();
    this.legacyHolder = n.key; // the holder reserving again is allowed (and changes nothing)
  }

  /** RELEASE(6)/(10): only the holder releases; from anyone else it is GOOD and does nothing. */
  releaseLegacy(n: Nexus): void {
    if (this.pr.registrations.length > 0) {
      if (this.crhExempt(n)) return;
      throw conflict();
    }
    if (this.legacyHolder === n.key) this.legacyHolder = null;
  }

  /** SPC-5 §5.14.3 (CRH=1): RESERVE/RELEASE from these nexuses succeed without effect. */
  private crhExempt(n: Nexus): boolean {
    const res = this.pr.reservation;
    if (!res) return false;
    const reg = this.pr.registrationOf(n);
    return this.pr.holds(reg) || (!!reg && isRegistrantType(res.type));
  }

  /**
   * `n` claims the LU as a replica volume (REPLICA CLAIM, src/scsi/replica-claim.ts): what other
   * I_T nexuses reserved or registered while no claim held (image access released it) goes, so
   * that it cannot block the link's writes with RESERVATION CONFLICT nor outlive the image. A
   * RESERVE holder gets RESERVATIONS PREEMPTED too (SPC-2 defines no unit attention for a
   * reservation the device server drops; this one says what happened); persistent ones:
   * PersistentReservations.clearOthers. Returns what was dropped, for the log.
   */
  clearForClaim(n: Nexus): { registrations: number; legacyHolder: string | null } {
    const legacyHolder = this.legacyHolder !== null && this.legacyHolder !== n.key ? this.legacyHolder : null;
    if (legacyHolder !== null) {
      this.legacyHolder = null;
      this.lu.ua.establish(legacyHolder, 'ReservationsPreempted');
    }
    return { registrations: this.pr.clearOthers(n).length, legacyHolder };
  }

  /** Logical unit reset (SAM-5 §6.6): RESERVE/RELEASE reservations go; persistent ones stay. */
  onLogicalUnitReset(): void {
    this.legacyHolder = null;
  }

  /** I_T nexus loss (SAM-5 §6.3.4): the nexus's RESERVE goes; PR registrations survive (SPC-5 §5.14.1). */
  onNexusLoss(nexus: Nexus): void {
    if (this.legacyHolder === nexus.key) this.legacyHolder = null;
  }

  /**
   * Relative target port identifiers of the other array of a replicated pair, which presents this
   * LU too (src/replication/pr-replication.ts sets it from the link's hello); none otherwise.
   */
  peerPorts: () => readonly number[] = () => [];

  /**
   * Resolve a relative target port identifier (REGISTER AND MOVE, SPC-5 §6.17.4) to a target port
   * name: from the nexuses we know, else a port of this target (its ALUA groups) or of the peer
   * array with no session now. Relative target port identifier = TPGT here (session.ts), so such a
   * port's name follows from the target name.
   */
  targetPortName(relativeTargetPortId: number, via: Nexus): string | undefined {
    if (via.relativeTargetPortId === relativeTargetPortId) return via.targetPortName;
    for (const n of this.lu.target.nexuses.values()) {
      if (n.relativeTargetPortId === relativeTargetPortId && n.targetName === via.targetName) return n.targetPortName;
    }
    const local = [...this.lu.target.alua.groups.values()].some((g) => g.ports.includes(relativeTargetPortId));
    if (local || this.peerPorts().includes(relativeTargetPortId)) return targetPortNameOf(via.targetName, relativeTargetPortId);
    return undefined;
  }

  /** Unit attention to the live I_T nexuses of `regs`, except the one that caused it. */
  private notify(regs: readonly Registration[], reason: SenseReason, except: Nexus): void {
    if (regs.length === 0) return;
    this.onNotice?.(regs, reason, except);
    for (const n of this.lu.target.nexuses.values()) {
      if (n.key !== except.key && regs.some((r) => matches(r, n))) this.lu.ua.establish(n.key, reason);
    }
  }
}
