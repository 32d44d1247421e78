/**
 * PERSISTENT RESERVE OUT RESERVE / RELEASE (SPC-5 §5.14.9, §5.14.11.2) and the access each
 * reservation type leaves to the holder, a registrant and a non-registrant (SPC-5 §5.14.3
 * table; libiscsi ProutReserveAccess* and ProutReserveOwnership*).
 */
import { describe, expect, it } from 'vitest';
import { PrType, ProutAction } from '../../protocol/scsi/pr.ts';
import { COMMAND_TABLE } from '../../src/scsi/table.ts';
import { ScsiStatus } from '../../src/scsi/types.ts';
import {
  access, allUas, makeNexus, nextUa, prout, proutCdb, proutOk, readReservation, register, reserve, senseOf, setup, submit,
} from './pr-fixture.ts';
import { encodeProutParameters } from '../../protocol/scsi/pr.ts';

const A = makeNexus('iqn.2026-01.test:a'); // reserves
const B = makeNexus('iqn.2026-01.test:b'); // registered
const C = makeNexus('iqn.2026-01.test:c'); // not registered

const RESERVATIONS_RELEASED: [number, number] = [0x2a, 0x04];

type Access = 'ok' | 'conflict';
interface Row { type: PrType; name: string; registrant: [Access, Access]; other: [Access, Access] }

/** SPC-5 §5.14.3: [read, write] for a registered non-holder and for an unregistered nexus. */
const MATRIX: Row[] = [
  { type: PrType.WriteExclusive, name: 'WE', registrant: ['ok', 'conflict'], other: ['ok', 'conflict'] },
  { type: PrType.ExclusiveAccess, name: 'EA', registrant: ['conflict', 'conflict'], other: ['conflict', 'conflict'] },
  { type: PrType.WriteExclusiveRegistrantsOnly, name: 'WERO', registrant: ['ok', 'ok'], other: ['ok', 'conflict'] },
  { type: PrType.ExclusiveAccessRegistrantsOnly, name: 'EARO', registrant: ['ok', 'ok'], other: ['conflict', 'conflict'] },
  { type: PrType.WriteExclusiveAllRegistrants, name: 'WEAR', registrant: ['ok', 'ok'], other: ['ok', 'conflict'] },
  { type: PrType.ExclusiveAccessAllRegistrants, name: 'EAAR', registrant: ['ok', 'ok'], other: ['conflict', 'conflict'] },
];

const isAllRegistrants = (t: PrType): boolean => t === PrType.WriteExclusiveAllRegistrants || t === PrType.ExclusiveAccessAllRegistrants;

describe('access under each reservation type (SPC-5 §5.14.3)', () => {
  for (const row of MATRIX) {
    it(`${row.name}: holder, registrant, non-registrant`, () => {
      const { lu } = setup(A, B, C);
      register(lu, A, 0xa1n);
      register(lu, B, 0xb2n);
      reserve(lu, A, 0xa1n, row.type);
      expect(readReservation(lu, C)).toEqual({ key: isAllRegistrants(row.type) ? 0n : 0xa1n, type: row.type });

      const rw = (n: typeof A): [Access, Access] => [access(lu, n, 'read'), access(lu, n, 'write')];
      expect(rw(A)).toEqual(['ok', 'ok']);
      expect(rw(B)).toEqual(row.registrant);
      expect(rw(C)).toEqual(row.other);
      // 'conflict' class commands (MODE SELECT …) behave like writes; 'allowed' ones always pass.
      expect(access(lu, B, 'conflict')).toBe(row.registrant[1]);
      expect(access(lu, C, 'conflict')).toBe('conflict');
      for (const n of [A, B, C]) expect(access(lu, n, 'allowed')).toBe('ok');

      // Unregistered, B is treated like C (libiscsi unregisters init2 and checks again).
      proutOk(lu, B, ProutAction.Register, { reservationKey: 0xb2n, serviceActionKey: 0n });
      expect(rw(B)).toEqual(row.other);

      proutOk(lu, A, ProutAction.Release, { reservationKey: 0xa1n, type: row.type });
      expect(readReservation(lu, A)).toBeNull();
      for (const n of [A, B, C]) expect(rw(n)).toEqual(['ok', 'ok']);
    });
  }

  const sbc = COMMAND_TABLE.has(0x28) && COMMAND_TABLE.has(0x2a);
  it.skipIf(!sbc)('real READ(10)/WRITE(10) through submit() under Exclusive Access', () => {
    const { lu } = setup(A, C);
    register(lu, A, 1n);
    reserve(lu, A, 1n, PrType.ExclusiveAccess);
    const read10 = Buffer.from([0x28, 0, 0, 0, 0, 1, 0, 0, 1, 0]);
    const write10 = Buffer.from([0x2a, 0, 0, 0, 0, 1, 0, 0, 1, 0]);
    expect(submit(lu, A, read10, null, 512).status).toBe(ScsiStatus.Good);
    expect(submit(lu, A, write10, Buffer.alloc(512)).status).toBe(ScsiStatus.Good);
    expect(submit(lu, C, read10, null, 512).status).toBe(ScsiStatus.ReservationConflict);
    expect(submit(lu, C, write10, Buffer.alloc(512)).status).toBe(ScsiStatus.ReservationConflict);
  });
});

describe('reservation ownership (libiscsi ProutReserveOwnership*)', () => {
  for (const row of MATRIX) {
    const shared = isAllRegistrants(row.type);
    it(`${row.name}: unregistering the reserving nexus ${shared ? 'keeps' : 'releases'} the reservation`, () => {
      const { lu } = setup(A, B);
      register(lu, A, 1n);
      register(lu, B, 2n);
      reserve(lu, A, 1n, row.type);
      proutOk(lu, A, ProutAction.Register, { reservationKey: 1n, serviceActionKey: 0n });
      if (shared) {
        expect(readReservation(lu, A)).toEqual({ key: 0n, type: row.type });
        expect(nextUa(lu, B)).toBeNull();
        proutOk(lu, B, ProutAction.Release, { reservationKey: 2n, type: row.type });
        expect(readReservation(lu, A)).toBeNull();
      } else {
        expect(readReservation(lu, A)).toBeNull();
        // Registrants-only: the remaining registrants learn the reservation went (§5.14.11.3).
        const ro = row.type === PrType.WriteExclusiveRegistrantsOnly || row.type === PrType.ExclusiveAccessRegistrantsOnly;
        expect(nextUa(lu, B)).toEqual(ro ? RESERVATIONS_RELEASED : null);
      }
    });
  }

  it('an all-registrants reservation ends with its last registrant', () => {
    const { lu } = setup(A, B);
    register(lu, A, 1n);
    register(lu, B, 2n);
    reserve(lu, A, 1n, PrType.ExclusiveAccessAllRegistrants);
    register(lu, A, 0n);
    register(lu, B, 0n);
    expect(readReservation(lu, A)).toBeNull();
    expect(access(lu, C, 'write')).toBe('ok');
  });
});

describe('RESERVE', () => {
  it('from an unregistered nexus, or with the wrong key: RESERVATION CONFLICT', () => {
    const { lu } = setup(A, C);
    expect(prout(lu, C, ProutAction.Reserve, { reservationKey: 0n, type: PrType.WriteExclusive }).status).toBe(ScsiStatus.ReservationConflict);
    register(lu, A, 1n);
    expect(prout(lu, A, ProutAction.Reserve, { reservationKey: 2n, type: PrType.WriteExclusive }).status).toBe(ScsiStatus.ReservationConflict);
    expect(readReservation(lu, A)).toBeNull();
  });

  it('the holder may repeat it with the same type; another type or another registrant conflicts', () => {
    const { lu } = setup(A, B);
    register(lu, A, 1n);
    register(lu, B, 2n);
    reserve(lu, A, 1n, PrType.WriteExclusive);
    reserve(lu, A, 1n, PrType.WriteExclusive);
    expect(prout(lu, A, ProutAction.Reserve, { reservationKey: 1n, type: PrType.ExclusiveAccess }).status).toBe(ScsiStatus.ReservationConflict);
    expect(prout(lu, B, ProutAction.Reserve, { reservationKey: 2n, type: PrType.WriteExclusive }).status).toBe(ScsiStatus.ReservationConflict);
    expect(readReservation(lu, B)).toEqual({ key: 1n, type: PrType.WriteExclusive });
  });

  it('does not change PRGENERATION', () => {
    const { lu } = setup(A);
    register(lu, A, 1n);
    const g = lu.reservations.pr.generation;
    reserve(lu, A, 1n, PrType.ExclusiveAccess);
    proutOk(lu, A, ProutAction.Release, { reservationKey: 1n, type: PrType.ExclusiveAccess });
    expect(lu.reservations.pr.generation).toBe(g);
  });

  it('an invalid TYPE or SCOPE is INVALID FIELD IN CDB with a field pointer into byte 2', () => {
    const { lu } = setup(A);
    register(lu, A, 1n);
    const data = encodeProutParameters({ reservationKey: 1n });
    for (const [type, scope, bit] of [[2, 0, 3], [9, 0, 3], [1, 1, 7]] as const) {
      const r = submit(lu, A, proutCdb(ProutAction.Reserve, type, 24, scope), data);
      expect(senseOf(r)).toEqual([0x5, 0x24, 0x00]);
      expect([...r.sense!.subarray(15, 18)]).toEqual([0xc8 | bit, 0x00, 0x02]);
    }
  });
});

describe('RELEASE', () => {
  it('by a registered non-holder: GOOD, the reservation stays', () => {
    const { lu } = setup(A, B);
    register(lu, A, 1n);
    register(lu, B, 2n);
    reserve(lu, A, 1n, PrType.ExclusiveAccess);
    proutOk(lu, B, ProutAction.Release, { reservationKey: 2n, type: PrType.ExclusiveAccess });
    expect(readReservation(lu, B)).toEqual({ key: 1n, type: PrType.ExclusiveAccess });
  });

  it('by the holder with another type: ILLEGAL REQUEST, INVALID RELEASE OF PERSISTENT RESERVATION', () => {
    const { lu } = setup(A);
    register(lu, A, 1n);
    reserve(lu, A, 1n, PrType.ExclusiveAccess);
    expect(senseOf(prout(lu, A, ProutAction.Release, { reservationKey: 1n, type: PrType.WriteExclusive }))).toEqual([0x5, 0x26, 0x04]);
    expect(readReservation(lu, A)).toEqual({ key: 1n, type: PrType.ExclusiveAccess });
  });

  it('with no reservation: GOOD; unregistered or wrong key: RESERVATION CONFLICT', () => {
    const { lu } = setup(A, C);
    register(lu, A, 1n);
    proutOk(lu, A, ProutAction.Release, { reservationKey: 1n, type: PrType.WriteExclusive });
    expect(prout(lu, A, ProutAction.Release, { reservationKey: 3n, type: PrType.WriteExclusive }).status).toBe(ScsiStatus.ReservationConflict);
    expect(prout(lu, C, ProutAction.Release, { reservationKey: 0n, type: PrType.WriteExclusive }).status).toBe(ScsiStatus.ReservationConflict);
  });

  for (const row of MATRIX) {
    const ua = row.type >= PrType.WriteExclusiveRegistrantsOnly;
    it(`${row.name}: ${ua ? 'other registrants get' : 'nobody gets'} RESERVATIONS RELEASED`, () => {
      const { lu } = setup(A, B, C);
      register(lu, A, 1n);
      register(lu, B, 2n);
      reserve(lu, A, 1n, row.type);
      proutOk(lu, A, ProutAction.Release, { reservationKey: 1n, type: row.type });
      expect(allUas(lu, B)).toEqual(ua ? [RESERVATIONS_RELEASED] : []);
      expect(allUas(lu, A)).toEqual([]);
      expect(allUas(lu, C)).toEqual([]); // not registered
    });
  }
});
