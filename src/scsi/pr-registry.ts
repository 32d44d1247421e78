/**
 * Persistent reservation state of one logical unit (SPC-5 §5.14): registrations, the
 * reservation and its holder, PRgeneration, and the PERSISTENT RESERVE OUT service actions
 * as state transitions. No CDB or parameter bytes here (pr-commands.ts decodes them); each
 * transition validates, mutates and reports unit attentions through `notify`.
 *
 * A registration belongs to an I_T nexus: (initiator port, target port). Two kinds of
 * registration cover more than one I_T nexus and are kept as one entry with a wildcard:
 *  - ALL_TG_PT=1 (§5.14.7): every target port → targetPortName null;
 *  - a SPEC_I_PT TransportID in format 00b (iSCSI name without ISID, SPC-5 §7.6.4.6):
 *    every initiator port of that node → isid null.
 * Entries never overlap (a nexus matches at most one): registering is refused when it would.
 *
 * APTPL is accepted and reported (PTPL_A) but the state lives in memory only: it survives
 * I_T nexus loss and logical unit / target resets, not a restart of the process.
 */
import { PrType } from '../../protocol/scsi/pr.ts';
import type { MoveParameters, ProutParameters, TransportId } from '../../protocol/scsi/pr.ts';
import type { SenseReason } from '../../protocol/scsi/sense.ts';
import { ScsiStatus, SenseError, StatusError } from './types.ts';
import type { Nexus } from './types.ts';

export interface Registration {
  key: bigint;
  /** Lower-cased iSCSI initiator name. */
  readonly initiatorName: string;
  /** Lower-case ISID hex, or null: every initiator port of the node (TransportID format 00b). */
  readonly isid: string | null;
  /** SCSI target port name, or null: every target port (ALL_TG_PT=1). */
  readonly targetPortName: string | null;
  /** Relative target port identifier of the port the registration was made through. */
  readonly relativeTargetPortId: number;
}

export interface PrReservation {
  /** For WE-AR / EA-AR every registrant is a holder (§5.14.10); `holder` is then only who reserved. */
  holder: Registration;
  type: PrType;
}

/** The registry's state as a value (export/install). */
export interface PrSnapshot {
  generation: number;
  aptpl: boolean;
  registrations: Registration[];
  reservation: { holder: number; type: number } | null;
}

/** Where transitions report unit attentions: to the I_T nexuses of `regs`, except `except`. */
export type PrNotify = (regs: readonly Registration[], reason: SenseReason, except: Nexus) => void;

const conflict = (): StatusError => new StatusError(ScsiStatus.ReservationConflict);
/** Field pointers into the PR OUT parameter list (SPC-5 §6.17.3). */
const SA_KEY_BYTE = 8;
const FLAGS_BYTE = 20;

export function isAllRegistrants(t: PrType): boolean {
  return t === PrType.WriteExclusiveAllRegistrants || t === PrType.ExclusiveAccessAllRegistrants;
}

/** Registrants-only and all-registrants types: registered I_T nexuses get access (SPC-5 §5.14.3). */
export function isRegistrantType(t: PrType): boolean {
  return t >= PrType.WriteExclusiveRegistrantsOnly;
}

export function matches(r: Registration, n: Nexus): boolean {
  return r.initiatorName === n.initiatorName.toLowerCase()
    && (r.isid === null || r.isid === n.isid.toLowerCase())
    && (r.targetPortName === null || r.targetPortName === n.targetPortName);
}

function overlaps(a: Pick<Registration, 'initiatorName' | 'isid' | 'targetPortName'>, b: Registration): boolean {
  return a.initiatorName === b.initiatorName
    && (a.isid === null || b.isid === null || a.isid === b.isid)
    && (a.targetPortName === null || b.targetPortName === null || a.targetPortName === b.targetPortName);
}

export class PersistentReservations {
  /** PRGENERATION (SPC-5 §6.16.2): bumped by REGISTER, REGISTER AND IGNORE, CLEAR, PREEMPT(+ABORT), REGISTER AND MOVE. */
  generation = 0;
  /** Last APTPL received (reported as PTPL_A). Memory only — see the file comment. */
  aptpl = false;
  readonly registrations: Registration[] = [];
  reservation: PrReservation | null = null;
  /** nexus key → its registration; cleared whenever the registration list changes. */
  private readonly byNexus = new Map<string, Registration | null>();

  constructor(private readonly notify: PrNotify) {}

  registrationOf(n: Nexus): Registration | undefined {
    let r = this.byNexus.get(n.key);
    if (r === undefined) {
      r = this.registrations.find((x) => matches(x, n)) ?? null;
      this.byNexus.set(n.key, r);
    }
    return r ?? undefined;
  }

  /** SPC-5 §5.14.10: is this registration a persistent reservation holder? */
  holds(r: Registration | undefined): boolean {
    const res = this.reservation;
    if (!res || !r) return false;
    return isAllRegistrants(res.type) || res.holder === r;
  }

  // ---- service actions ------------------------------------------------------------------

  /** REGISTER (§5.14.7) and REGISTER AND IGNORE EXISTING KEY (§5.14.7, ignoreExisting). */
  register(n: Nexus, p: ProutParameters, ignoreExisting: boolean): void {
    const own = this.registrationOf(n);
    if (own) {
      if (!ignoreExisting && p.reservationKey !== own.key) throw conflict();
      // SPEC_I_PT is only for an unregistered I_T nexus (SPC-5 §6.17.3).
      if (p.specIPt) throw new SenseError('InvalidFieldInParameterList', { fieldPointer: { inCdb: false, byte: FLAGS_BYTE, bit: 3 } });
      if (p.serviceActionKey === 0n) this.unregister(n, own);
      else own.key = p.serviceActionKey; // ALL_TG_PT is ignored for a registered I_T nexus
    } else {
      if (!ignoreExisting && p.reservationKey !== 0n) throw conflict();
      if (p.serviceActionKey !== 0n) this.registerNew(n, p);
      // SA key zero from an unregistered I_T nexus: GOOD, nothing registered.
    }
    this.aptpl = p.aptpl;
    this.bump();
  }

  /** RESERVE (§5.14.9). */
  reserve(n: Nexus, key: bigint, type: PrType): void {
    const own = this.checkKey(n, key);
    const res = this.reservation;
    if (res) {
      // The holder re-reserving with the same type/scope is a no-op; anything else conflicts.
      if (this.holds(own) && res.type === type) return;
      throw conflict();
    }
    this.reservation = { holder: own, type };
  }

  /** RELEASE (§5.14.11.2). */
  release(n: Nexus, key: bigint, type: number): void {
    const own = this.checkKey(n, key);
    const res = this.reservation;
    if (!res || !this.holds(own)) return; // not the holder: GOOD, nothing released
    if (type !== res.type) throw new SenseError('InvalidReleaseOfPersistentReservation');
    this.reservation = null;
    // Registrants-only and all-registrants: the other registrants lose access they had (§5.14.11.2).
    if (isRegistrantType(res.type)) this.notify(this.registrations, 'ReservationsReleased', n);
  }

  /** CLEAR (§5.14.11.6): every registration and the reservation go; others see 2A/03. */
  clear(n: Nexus, key: bigint): void {
    this.checkKey(n, key);
    this.notify(this.registrations, 'ReservationsPreempted', n);
    this.registrations.length = 0;
    this.reservation = null;
    this.byNexus.clear();
    this.bump();
  }

  /**
   * PREEMPT and PREEMPT AND ABORT (§5.14.11.4, §5.14.11.5). Aborting the preempted nexuses'
   * tasks is the task manager's job; the LU pipeline here has no task set to abort.
   */
  preempt(n: Nexus, key: bigint, saKey: bigint, type: PrType): void {
    const own = this.checkKey(n, key);
    const res = this.reservation;
    const others = (k: bigint | null): Registration[] =>
      this.registrations.filter((r) => r !== own && (k === null || r.key === k));

    if (res && isAllRegistrants(res.type) && saKey === 0n) {
      // §5.14.11.4.3: all-registrants reservation, SA key zero: every other registration goes
      // and the preempting nexus gets a new reservation of the requested type.
      const victims = others(null);
      this.drop(victims);
      this.reservation = { holder: own, type };
      this.notify(victims, 'RegistrationsPreempted', n);
    } else if (res && !isAllRegistrants(res.type) && res.holder.key === saKey) {
      // §5.14.11.4.3: SA key names the holder: its reservation moves to us, registrations with
      // that key (but ours) go; if type changed the survivors' reservation is "released".
      const victims = others(saKey);
      this.drop(victims);
      const changed = res.type !== type;
      this.reservation = { holder: own, type };
      this.notify(victims, 'RegistrationsPreempted', n);
      if (changed) this.notify(others(null), 'ReservationsReleased', n);
    } else {
      // §5.14.11.4.4: no reservation, or SA key is not the holder's: preempt registrations only.
      if (saKey === 0n) throw new SenseError('InvalidFieldInParameterList', { fieldPointer: { inCdb: false, byte: SA_KEY_BYTE } });
      const victims = others(saKey);
      if (victims.length === 0) throw conflict();
      this.drop(victims);
      this.notify(victims, 'RegistrationsPreempted', n);
    }
    this.bump();
  }

  /**
   * A replica claim is taken by `n` (REPLICA CLAIM, src/scsi/replica-claim.ts): every registration
   * of another I_T nexus goes, and the reservation with its holder, as if `n` had sent CLEAR
   * (§5.14.11.6): those nexuses get RESERVATIONS PREEMPTED, as CLEAR raises (and LIO's
   * core_scsi3_emulate_pro_clear). `n`'s own registration stays. Returns what was removed.
   */
  clearOthers(n: Nexus): readonly Registration[] {
    const victims = this.registrations.filter((r) => !matches(r, n));
    if (victims.length === 0) return victims;
    const res = this.reservation;
    this.drop(victims);
    if (res && !isAllRegistrants(res.type) && victims.includes(res.holder)) this.reservation = null;
    this.notify(victims, 'ReservationsPreempted', n);
    this.bump();
    return victims;
  }

  /**
   * REGISTER AND MOVE (§5.14.8): register the destination I_T nexus and hand it the
   * reservation. `portName` resolves the RELATIVE TARGET PORT IDENTIFIER to a target port.
   */
  registerAndMove(n: Nexus, p: MoveParameters, portName: (relativeTargetPortId: number) => string | undefined): void {
    const own = this.checkKey(n, p.reservationKey);
    const res = this.reservation;
    if (!res || !this.holds(own) || isAllRegistrants(res.type)) throw conflict();
    if (p.serviceActionKey === 0n) throw new SenseError('InvalidFieldInParameterList', { fieldPointer: { inCdb: false, byte: SA_KEY_BYTE } });
    const targetPortName = portName(p.relativeTargetPortId);
    if (targetPortName === undefined) throw new SenseError('InvalidFieldInParameterList', { fieldPointer: { inCdb: false, byte: 18 } });
    const dest = { initiatorName: p.transportId.initiatorName, isid: p.transportId.isid, targetPortName };
    // The destination may not be the I_T nexus the command came in on.
    if (overlaps(dest, own)) throw new SenseError('InvalidFieldInParameterList', { fieldPointer: { inCdb: false, byte: 24 } });
    let target = this.registrations.find((r) => overlaps(dest, r));
    if (target) target.key = p.serviceActionKey;
    else {
      target = { key: p.serviceActionKey, ...dest, relativeTargetPortId: p.relativeTargetPortId };
      this.add([target]);
    }
    this.reservation = { holder: target, type: res.type };
    if (p.unreg) this.drop([own]);
    this.aptpl = p.aptpl;
    this.bump();
  }

  // ---- the state as a whole (peer replication: src/replication/pr-replication.ts) ---------

  /** Everything a PR IN reports and a PR OUT decides on: registrations, the reservation (holder by index), PRGENERATION, APTPL. */
  export(): PrSnapshot {
    const res = this.reservation;
    return {
      generation: this.generation, aptpl: this.aptpl,
      registrations: this.registrations.map((r) => ({ ...r })),
      reservation: res ? { holder: this.registrations.indexOf(res.holder), type: res.type } : null,
    };
  }

  /** Replace the state with `s` (another array's, after its PR OUT): no unit attention here, the caller raises what the PR OUT raised. */
  install(s: PrSnapshot): void {
    this.registrations.length = 0;
    this.registrations.push(...s.registrations.map((r) => ({ ...r })));
    this.reservation = s.reservation && this.registrations[s.reservation.holder]
      ? { holder: this.registrations[s.reservation.holder], type: s.reservation.type as PrType } : null;
    this.generation = s.generation >>> 0;
    this.aptpl = s.aptpl;
    this.byNexus.clear();
  }

  // ---- internals --------------------------------------------------------------------------

  /** The issuing nexus must be registered and present its own key (SPC-5 §5.14.7 table). */
  private checkKey(n: Nexus, key: bigint): Registration {
    const own = this.registrationOf(n);
    if (!own || own.key !== key) throw conflict();
    return own;
  }

  private registerNew(n: Nexus, p: ProutParameters): void {
    const targetPortName = p.allTgPt ? null : n.targetPortName;
    const port = n.relativeTargetPortId;
    const fresh: Registration[] = [{
      key: p.serviceActionKey, initiatorName: n.initiatorName.toLowerCase(), isid: n.isid.toLowerCase(),
      targetPortName, relativeTargetPortId: port,
    }];
    for (const t of p.transportIds) {
      const r = { key: p.serviceActionKey, initiatorName: t.initiatorName, isid: t.isid, targetPortName, relativeTargetPortId: port };
      if (sameAs(t, fresh[0])) continue; // the issuing I_T nexus, named again
      // SPC-5 §5.14.7: a TransportID that names an already registered I_T nexus (or repeats one)
      // fails the whole command, with nothing registered.
      if (fresh.some((f) => overlaps(r, f))) throw invalidTransportId();
      fresh.push(r);
    }
    if (fresh.some((f) => this.registrations.some((r) => overlaps(f, r)))) {
      throw p.transportIds.length ? invalidTransportId() : conflict();
    }
    this.add(fresh);
  }

  /** Unregister (§5.14.11.3): a non-AR holder's reservation goes with its registration. */
  private unregister(n: Nexus, own: Registration): void {
    const res = this.reservation;
    const wasHolder = !!res && !isAllRegistrants(res.type) && res.holder === own;
    this.drop([own]);
    if (wasHolder && res) {
      this.reservation = null;
      if (isRegistrantType(res.type)) this.notify(this.registrations, 'ReservationsReleased', n);
    }
  }

  private add(regs: Registration[]): void {
    this.registrations.push(...regs);
    this.byNexus.clear();
  }

  /**
   * Remove registrations. An all-registrants reservation lasts while any registrant does
   * (§5.14.11.2); other reservation bookkeeping is the caller's.
   */
  private drop(regs: readonly Registration[]): void {
    if (regs.length === 0) return;
    const gone = new Set(regs);
    const kept = this.registrations.filter((r) => !gone.has(r));
    this.registrations.length = 0;
    this.registrations.push(...kept);
    this.byNexus.clear();
    const res = this.reservation;
    if (res && isAllRegistrants(res.type) && gone.has(res.holder)) {
      if (kept.length === 0) this.reservation = null;
      else res.holder = kept[0];
    }
  }

  private bump(): void {
    this.generation = (this.generation + 1) >>> 0;
  }
}

function sameAs(t: TransportId, r: Registration): boolean {
  return t.initiatorName === r.initiatorName && t.isid === r.isid;
}

function invalidTransportId(): SenseError {
  return new SenseError('InvalidFieldInParameterList', { fieldPointer: { inCdb: false, byte: 24 } });
}
