/**
 * SPC-2 RESERVE/RELEASE (6)/(10): the holder, conflicts for other I_T nexuses, release on
 * nexus loss and resets (libiscsi Reserve6*), and the interplay with persistent reservations
 * (SPC-2 §5.5.1, SPC-5 §5.14.3 CRH exceptions).
 */
import { describe, expect, it } from 'vitest';
import { PrinAction, PrType, ProutAction } from '../../protocol/scsi/pr.ts';
import { ScsiStatus } from '../../src/scsi/types.ts';
import {
  access, makeNexus, prinCdb, prout, readReservation, register, release10, release6, reserve, reserve10, reserve6, senseOf, setup, submit,
} from './pr-fixture.ts';

const A = makeNexus('iqn.2026-01.test:a');
const B = makeNexus('iqn.2026-01.test:b');

const status = (r: { status: ScsiStatus }): ScsiStatus => r.status;

describe('RESERVE(6) / RELEASE(6)', () => {
  it('reserve and release (libiscsi Reserve6Simple)', () => {
    const { lu } = setup(A);
    expect(status(submit(lu, A, reserve6()))).toBe(ScsiStatus.Good);
    expect(lu.reservations.legacyHolder).toBe(A.key);
    expect(status(submit(lu, A, release6()))).toBe(ScsiStatus.Good);
    expect(lu.reservations.legacyHolder).toBeNull();
  });

  it('two initiators (libiscsi Reserve6 2Initiators)', () => {
    const { lu } = setup(A, B);
    expect(status(submit(lu, A, reserve6()))).toBe(ScsiStatus.Good);
    expect(status(submit(lu, A, reserve6()))).toBe(ScsiStatus.Good); // the holder again
    expect(status(submit(lu, B, reserve6()))).toBe(ScsiStatus.ReservationConflict);
    expect(status(submit(lu, B, release6()))).toBe(ScsiStatus.Good); // no-op from a non-holder
    expect(lu.reservations.legacyHolder).toBe(A.key);
    // MODE SENSE and media access ('conflict', 'read', 'write' classes) conflict for B, not for A.
    for (const cls of ['conflict', 'read', 'write'] as const) {
      expect(access(lu, A, cls)).toBe('ok');
      expect(access(lu, B, cls)).toBe('conflict');
    }
    // INQUIRY, REPORT LUNS, REQUEST SENSE ('allowed') pass.
    expect(access(lu, B, 'allowed')).toBe('ok');
    expect(status(submit(lu, B, reserve6()))).toBe(ScsiStatus.ReservationConflict);
    expect(status(submit(lu, A, release6()))).toBe(ScsiStatus.Good);
    expect(status(submit(lu, B, reserve6()))).toBe(ScsiStatus.Good);
    expect(status(submit(lu, B, release6()))).toBe(ScsiStatus.Good);
  });

  it('a command marked legacyReservation: conflict is refused to others even if SPC-5 allows it', () => {
    const { lu } = setup(A, B);
    submit(lu, A, reserve6());
    const def = { opcode: 0x00, name: 'TUR', reservation: 'allowed', legacyReservation: 'conflict' } as never;
    expect(() => lu.reservations.gate(def, { nexus: B } as never, {})).toThrow();
    expect(() => lu.reservations.gate(def, { nexus: A } as never, {})).not.toThrow();
  });

  it('released by I_T nexus loss (libiscsi Reserve6 Logout / ITNexusLoss)', () => {
    const { lu, target } = setup(A, B);
    submit(lu, A, reserve6());
    target.nexusDown(A);
    expect(status(submit(lu, B, reserve6()))).toBe(ScsiStatus.Good);
  });

  it('released by logical unit reset and target reset (libiscsi Reserve6 LUNReset / Target*Reset)', async () => {
    const { lu, target } = setup(A, B);
    submit(lu, A, reserve6());
    lu.reset();
    lu.ua.forget(B.key);
    expect(status(submit(lu, B, reserve6()))).toBe(ScsiStatus.Good);
    await target.reset(A);
    expect(lu.reservations.legacyHolder).toBeNull();
  });

  it('RESERVE(10)/RELEASE(10) behave the same; third-party and LONGID are INVALID FIELD IN CDB', () => {
    const { lu } = setup(A, B);
    expect(status(submit(lu, A, reserve10()))).toBe(ScsiStatus.Good);
    expect(status(submit(lu, B, reserve10()))).toBe(ScsiStatus.ReservationConflict);
    expect(status(submit(lu, A, release10()))).toBe(ScsiStatus.Good);
    const r = submit(lu, A, reserve10(0x10));
    expect(senseOf(r)).toEqual([0x5, 0x24, 0x00]);
    expect([...r.sense!.subarray(15, 18)]).toEqual([0xc8 | 4, 0x00, 0x01]);
    expect(senseOf(submit(lu, A, reserve10(0x02)))).toEqual([0x5, 0x24, 0x00]);
    expect(lu.reservations.legacyHolder).toBeNull();
  });
});

describe('RESERVE/RELEASE and persistent reservations', () => {
  it('while RESERVEd, PR IN and PR OUT conflict from every nexus, the holder included (SPC-2 §5.5.1)', () => {
    const { lu } = setup(A, B);
    submit(lu, A, reserve6());
    for (const n of [A, B]) {
      expect(status(submit(lu, n, prinCdb(PrinAction.ReadKeys), null, 16384))).toBe(ScsiStatus.ReservationConflict);
      expect(status(prout(lu, n, ProutAction.RegisterAndIgnoreExistingKey, { serviceActionKey: 1n }))).toBe(ScsiStatus.ReservationConflict);
    }
    submit(lu, A, release6());
    register(lu, A, 1n);
  });

  it('while any registration exists, RESERVE and RELEASE from others conflict', () => {
    const { lu } = setup(A, B);
    register(lu, A, 1n);
    for (const n of [A, B]) {
      expect(status(submit(lu, n, reserve6()))).toBe(ScsiStatus.ReservationConflict);
      expect(status(submit(lu, n, release6()))).toBe(ScsiStatus.ReservationConflict);
    }
    expect(lu.reservations.legacyHolder).toBeNull();
  });

  it('CRH: from the PR holder, RESERVE and RELEASE are GOOD and change nothing', () => {
    const { lu } = setup(A, B);
    register(lu, A, 1n);
    register(lu, B, 2n);
    reserve(lu, A, 1n, PrType.ExclusiveAccess);
    expect(status(submit(lu, A, reserve6()))).toBe(ScsiStatus.Good);
    expect(status(submit(lu, A, release6()))).toBe(ScsiStatus.Good);
    expect(lu.reservations.legacyHolder).toBeNull();
    expect(readReservation(lu, A)).toEqual({ key: 1n, type: PrType.ExclusiveAccess });
    // B is registered but EA is not a registrants type: conflict.
    expect(status(submit(lu, B, reserve6()))).toBe(ScsiStatus.ReservationConflict);
  });

  it('CRH: a registrant under a registrants-only reservation gets GOOD too', () => {
    const { lu } = setup(A, B);
    register(lu, A, 1n);
    register(lu, B, 2n);
    reserve(lu, A, 1n, PrType.WriteExclusiveRegistrantsOnly);
    expect(status(submit(lu, B, reserve10()))).toBe(ScsiStatus.Good);
    expect(status(submit(lu, B, release10()))).toBe(ScsiStatus.Good);
    expect(readReservation(lu, A)).toEqual({ key: 1n, type: PrType.WriteExclusiveRegistrantsOnly });
  });
});
