/**
 * PERSISTENT RESERVE OUT CLEAR, PREEMPT, PREEMPT AND ABORT and REGISTER AND MOVE
 * (SPC-5 §5.14.11.4-6, §5.14.8): what they remove, who gets which unit attention, PRGENERATION.
 */
import { describe, expect, it } from 'vitest';
import { encodeMoveParameters, PrType, ProutAction } from '../../protocol/scsi/pr.ts';
import { ScsiStatus } from '../../src/scsi/types.ts';
import {
  access, allUas, makeNexus, prout, proutCdb, proutOk, readKeys, readReservation, register, reserve, senseOf, setup, submit,
} from './pr-fixture.ts';

const A = makeNexus('iqn.2026-01.test:a');
const B = makeNexus('iqn.2026-01.test:b');
const C = makeNexus('iqn.2026-01.test:c');
const D = makeNexus('iqn.2026-01.test:d'); // never registers

const RESERVATIONS_PREEMPTED: [number, number] = [0x2a, 0x03];
const RESERVATIONS_RELEASED: [number, number] = [0x2a, 0x04];
const REGISTRATIONS_PREEMPTED: [number, number] = [0x2a, 0x05];

describe('CLEAR', () => {
  it('removes every registration and the reservation; PRGENERATION +1 (libiscsi ProutClearSimple)', () => {
    const { lu } = setup(A, B, D);
    register(lu, A, 1n);
    register(lu, B, 2n);
    reserve(lu, A, 1n, PrType.ExclusiveAccess);
    const g = readKeys(lu, A).generation;
    proutOk(lu, A, ProutAction.Clear, { reservationKey: 1n });
    expect(readReservation(lu, A)).toBeNull();
    expect(readKeys(lu, A)).toEqual({ generation: g + 1, keys: [] });
    expect(allUas(lu, B)).toEqual([RESERVATIONS_PREEMPTED]);
    expect(allUas(lu, D)).toEqual([]);
    expect(access(lu, D, 'write')).toBe('ok');
  });

  it('needs a registered nexus and its key', () => {
    const { lu } = setup(A, D);
    register(lu, A, 1n);
    expect(prout(lu, D, ProutAction.Clear, { reservationKey: 0n }).status).toBe(ScsiStatus.ReservationConflict);
    expect(prout(lu, A, ProutAction.Clear, { reservationKey: 2n }).status).toBe(ScsiStatus.ReservationConflict);
    expect(readKeys(lu, A).keys).toEqual([1n]);
  });
});

describe('PREEMPT', () => {
  it('without a reservation removes the registrations with that key (libiscsi ProutPreempt RemoveRegistration)', () => {
    const { lu } = setup(A, B);
    register(lu, A, 1n);
    register(lu, B, 2n);
    const g = readKeys(lu, A).generation;
    proutOk(lu, B, ProutAction.Preempt, { reservationKey: 2n, serviceActionKey: 1n, type: PrType.ExclusiveAccess });
    expect(allUas(lu, A)).toEqual([REGISTRATIONS_PREEMPTED]);
    expect(allUas(lu, B)).toEqual([]);
    expect(readKeys(lu, A)).toEqual({ generation: g + 1, keys: [2n] });
    expect(readReservation(lu, A)).toBeNull(); // no reservation was created
  });

  it('of the holder: reservation moves to the preempting nexus; a type change releases the others', () => {
    const { lu } = setup(A, B, C);
    register(lu, A, 1n);
    register(lu, B, 2n);
    register(lu, C, 3n);
    reserve(lu, A, 1n, PrType.WriteExclusiveRegistrantsOnly);
    proutOk(lu, B, ProutAction.Preempt, { reservationKey: 2n, serviceActionKey: 1n, type: PrType.ExclusiveAccess });
    expect(readReservation(lu, B)).toEqual({ key: 2n, type: PrType.ExclusiveAccess });
    expect(readKeys(lu, B).keys).toEqual([2n, 3n]);
    expect(allUas(lu, A)).toEqual([REGISTRATIONS_PREEMPTED]);
    expect(allUas(lu, C)).toEqual([RESERVATIONS_RELEASED]);
    expect(access(lu, A, 'read')).toBe('conflict');
    expect(access(lu, B, 'write')).toBe('ok');
  });

  it('of the holder with the same type: no RESERVATIONS RELEASED for the others', () => {
    const { lu } = setup(A, B, C);
    register(lu, A, 1n);
    register(lu, B, 2n);
    register(lu, C, 3n);
    reserve(lu, A, 1n, PrType.WriteExclusive);
    proutOk(lu, B, ProutAction.PreemptAndAbort, { reservationKey: 2n, serviceActionKey: 1n, type: PrType.WriteExclusive });
    expect(readReservation(lu, C)).toEqual({ key: 2n, type: PrType.WriteExclusive });
    expect(allUas(lu, C)).toEqual([]);
    expect(allUas(lu, A)).toEqual([REGISTRATIONS_PREEMPTED]);
  });

  it('a non-holder key leaves the reservation and removes only those registrations', () => {
    const { lu } = setup(A, B, C);
    register(lu, A, 1n);
    register(lu, B, 2n);
    register(lu, C, 3n);
    reserve(lu, A, 1n, PrType.ExclusiveAccess);
    proutOk(lu, B, ProutAction.Preempt, { reservationKey: 2n, serviceActionKey: 3n, type: PrType.ExclusiveAccess });
    expect(readReservation(lu, A)).toEqual({ key: 1n, type: PrType.ExclusiveAccess });
    expect(readKeys(lu, A).keys).toEqual([1n, 2n]);
    expect(allUas(lu, C)).toEqual([REGISTRATIONS_PREEMPTED]);
    expect(allUas(lu, A)).toEqual([]);
  });

  it('all-registrants reservation, SA key zero: every other registration goes, new reservation for us', () => {
    const { lu } = setup(A, B, C);
    register(lu, A, 1n);
    register(lu, B, 2n);
    register(lu, C, 3n);
    reserve(lu, A, 1n, PrType.WriteExclusiveAllRegistrants);
    proutOk(lu, B, ProutAction.Preempt, { reservationKey: 2n, serviceActionKey: 0n, type: PrType.ExclusiveAccessRegistrantsOnly });
    expect(readKeys(lu, B).keys).toEqual([2n]);
    expect(readReservation(lu, B)).toEqual({ key: 2n, type: PrType.ExclusiveAccessRegistrantsOnly });
    expect(allUas(lu, A)).toEqual([REGISTRATIONS_PREEMPTED]);
    expect(allUas(lu, C)).toEqual([REGISTRATIONS_PREEMPTED]);
  });

  it('SA key zero without an all-registrants reservation: INVALID FIELD IN PARAMETER LIST', () => {
    const { lu } = setup(A);
    register(lu, A, 1n);
    const r = prout(lu, A, ProutAction.Preempt, { reservationKey: 1n, serviceActionKey: 0n, type: PrType.WriteExclusive });
    expect(senseOf(r)).toEqual([0x5, 0x26, 0x00]);
    expect([...r.sense!.subarray(15, 18)]).toEqual([0x80, 0x00, 8]); // parameter list byte 8
  });

  it('a key nobody else holds, an unregistered nexus, a wrong own key: RESERVATION CONFLICT', () => {
    const { lu } = setup(A, B, D);
    register(lu, A, 1n);
    register(lu, B, 2n);
    const g = lu.reservations.pr.generation;
    expect(prout(lu, A, ProutAction.Preempt, { reservationKey: 1n, serviceActionKey: 9n, type: 1 }).status).toBe(ScsiStatus.ReservationConflict);
    expect(prout(lu, D, ProutAction.Preempt, { reservationKey: 0n, serviceActionKey: 2n, type: 1 }).status).toBe(ScsiStatus.ReservationConflict);
    expect(prout(lu, A, ProutAction.Preempt, { reservationKey: 7n, serviceActionKey: 2n, type: 1 }).status).toBe(ScsiStatus.ReservationConflict);
    expect(lu.reservations.pr.generation).toBe(g);
    expect(readKeys(lu, A).keys).toEqual([1n, 2n]);
  });
});

describe('REGISTER AND MOVE', () => {
  const moveData = (unreg: boolean, to = B, key = 5n) => encodeMoveParameters({
    reservationKey: 1n, serviceActionKey: key, unreg, aptpl: false, relativeTargetPortId: to.relativeTargetPortId,
    transportId: { initiatorName: to.initiatorName, isid: to.isid },
  });

  it('registers the destination and hands it the reservation; UNREG drops the source', () => {
    const { lu } = setup(A, B);
    register(lu, A, 1n);
    reserve(lu, A, 1n, PrType.ExclusiveAccess);
    const data = moveData(true);
    const r = submit(lu, A, proutCdb(ProutAction.RegisterAndMove, 0, data.length), data);
    expect(r.status).toBe(ScsiStatus.Good);
    expect(readReservation(lu, B)).toEqual({ key: 5n, type: PrType.ExclusiveAccess });
    expect(readKeys(lu, B).keys).toEqual([5n]);
    expect(access(lu, B, 'write')).toBe('ok');
    expect(access(lu, A, 'read')).toBe('conflict');
  });

  it('only the holder of a non-all-registrants reservation may move it; never to itself', () => {
    const { lu } = setup(A, B);
    register(lu, A, 1n);
    let data = moveData(false);
    expect(submit(lu, A, proutCdb(ProutAction.RegisterAndMove, 0, data.length), data).status).toBe(ScsiStatus.ReservationConflict);
    reserve(lu, A, 1n, PrType.WriteExclusiveAllRegistrants);
    expect(submit(lu, A, proutCdb(ProutAction.RegisterAndMove, 0, data.length), data).status).toBe(ScsiStatus.ReservationConflict);
    proutOk(lu, A, ProutAction.Release, { reservationKey: 1n, type: PrType.WriteExclusiveAllRegistrants });
    reserve(lu, A, 1n, PrType.WriteExclusive);
    data = moveData(false, A);
    expect(senseOf(submit(lu, A, proutCdb(ProutAction.RegisterAndMove, 0, data.length), data))).toEqual([0x5, 0x26, 0x00]);
  });
});
