/**
 * PERSISTENT RESERVE OUT REGISTER / REGISTER AND IGNORE EXISTING KEY (SPC-5 §5.14.7):
 * registration, key change, unregistration, conflicts, parameter list length checks,
 * SPEC_I_PT with iSCSI TransportIDs, ALL_TG_PT and APTPL. Through LogicalUnit.submit().
 */
import { describe, expect, it } from 'vitest';
import { encodeProutParameters, PrinAction, ProutAction } from '../../protocol/scsi/pr.ts';
import { ScsiStatus } from '../../src/scsi/types.ts';
import {
  makeNexus, prin, prout, proutCdb, proutOk, readKeys, register, senseOf, setup, submit,
} from './pr-fixture.ts';

const A = makeNexus('iqn.2026-01.test:a');
const B = makeNexus('iqn.2026-01.test:b');

describe('REGISTER', () => {
  it('registers, refuses a re-register with the wrong key, unregisters (libiscsi ProutRegisterSimple)', () => {
    const { lu } = setup(A);
    const g0 = readKeys(lu, A).generation;
    register(lu, A, 0x1234n);
    expect(readKeys(lu, A)).toEqual({ generation: g0 + 1, keys: [0x1234n] });

    // REGISTER from a registered nexus with RESERVATION KEY 0 ≠ its key: RESERVATION CONFLICT.
    expect(prout(lu, A, ProutAction.Register, { serviceActionKey: 0x1235n }).status).toBe(ScsiStatus.ReservationConflict);
    expect(readKeys(lu, A)).toEqual({ generation: g0 + 1, keys: [0x1234n] });

    proutOk(lu, A, ProutAction.Register, { reservationKey: 0x1234n, serviceActionKey: 0n });
    expect(readKeys(lu, A)).toEqual({ generation: g0 + 2, keys: [] });
  });

  it('changes the key with the right RESERVATION KEY', () => {
    const { lu } = setup(A);
    proutOk(lu, A, ProutAction.Register, { serviceActionKey: 5n });
    proutOk(lu, A, ProutAction.Register, { reservationKey: 5n, serviceActionKey: 6n });
    expect(readKeys(lu, A).keys).toEqual([6n]);
  });

  it('an unregistered nexus with a nonzero RESERVATION KEY conflicts', () => {
    const { lu } = setup(A);
    expect(prout(lu, A, ProutAction.Register, { reservationKey: 1n, serviceActionKey: 2n }).status).toBe(ScsiStatus.ReservationConflict);
    expect(readKeys(lu, A).keys).toEqual([]);
  });

  it('an unregistered nexus with SA key zero: GOOD, nothing registered', () => {
    const { lu } = setup(A);
    proutOk(lu, A, ProutAction.Register, { serviceActionKey: 0n });
    expect(readKeys(lu, A).keys).toEqual([]);
  });

  it('REGISTER AND IGNORE EXISTING KEY replaces the key whatever RESERVATION KEY says', () => {
    const { lu } = setup(A, B);
    register(lu, A, 1n);
    register(lu, B, 2n);
    register(lu, A, 3n);
    expect(readKeys(lu, B).keys.sort()).toEqual([2n, 3n]);
    register(lu, B, 0n); // unregister
    expect(readKeys(lu, B).keys).toEqual([3n]);
  });

  it('registrations belong to the I_T nexus: another ISID of the same initiator is a different nexus', () => {
    const A2 = makeNexus('iqn.2026-01.test:a', '23d000000002');
    const { lu } = setup(A, A2);
    register(lu, A, 1n);
    expect(lu.reservations.pr.registrationOf(A2)).toBeUndefined();
    register(lu, A2, 2n);
    expect(readKeys(lu, A).keys).toEqual([1n, 2n]);
  });

  it('registrations survive I_T nexus loss and logical unit reset', () => {
    const { lu, target } = setup(A);
    register(lu, A, 1n);
    target.nexusDown(A);
    lu.reset();
    target.nexusUp(A);
    lu.ua.forget(A.key);
    expect(readKeys(lu, A).keys).toEqual([1n]);
    expect(lu.reservations.pr.registrationOf(A)?.key).toBe(1n);
  });
});

describe('parameter list checks', () => {
  for (const len of [0, 23, 25, 28]) {
    it(`PARAMETER LIST LENGTH ${len} (SPEC_I_PT=0): ILLEGAL REQUEST, PARAMETER LIST LENGTH ERROR`, () => {
      const { lu } = setup(A);
      const data = Buffer.alloc(32);
      data.writeBigUInt64BE(7n, 8);
      const r = submit(lu, A, proutCdb(ProutAction.RegisterAndIgnoreExistingKey, 0, len), len ? data.subarray(0, len) : null);
      expect(senseOf(r)).toEqual([0x5, 0x1a, 0x00]);
      expect(readKeys(lu, A).keys).toEqual([]);
    });
  }

  it('SPEC_I_PT with REGISTER AND IGNORE EXISTING KEY: INVALID FIELD IN PARAMETER LIST, byte 20 bit 3', () => {
    const { lu } = setup(A);
    const data = encodeProutParameters({ serviceActionKey: 1n, specIPt: true, transportIds: [] });
    const r = submit(lu, A, proutCdb(ProutAction.RegisterAndIgnoreExistingKey, 0, data.length), data);
    expect(senseOf(r)).toEqual([0x5, 0x26, 0x00]);
    expect([...r.sense!.subarray(15, 18)]).toEqual([0x88 | 3, 0x00, 20]); // SKSV, C/D=0, BPV, bit 3; byte 20
  });

  it('reports how much Data-Out it used (PARAMETER LIST LENGTH)', () => {
    const { lu } = setup(A);
    const data = encodeProutParameters({ serviceActionKey: 1n });
    const r = submit(lu, A, proutCdb(ProutAction.Register, 0, 24), Buffer.concat([data, Buffer.alloc(8)]));
    expect(r.status).toBe(ScsiStatus.Good);
    expect(r.dataOutLength).toBe(24);
  });
});

describe('SPEC_I_PT: registering other initiator ports (iSCSI TransportIDs)', () => {
  it('format 01b registers that one initiator port, on the target port the command came through', () => {
    const B2 = makeNexus('iqn.2026-01.test:b', '23d000000002');
    const Bother = makeNexus('iqn.2026-01.test:b', '23d000000001', 2);
    const { lu } = setup(A, B, B2, Bother);
    proutOk(lu, A, ProutAction.Register, {
      serviceActionKey: 9n, specIPt: true, transportIds: [{ initiatorName: 'iqn.2026-01.test:b', isid: '23d000000001', length: 0 }],
    });
    const pr = lu.reservations.pr;
    expect(pr.registrationOf(A)?.key).toBe(9n);
    expect(pr.registrationOf(B)?.key).toBe(9n);
    expect(pr.registrationOf(B2)).toBeUndefined();     // another ISID
    expect(pr.registrationOf(Bother)).toBeUndefined(); // another target port
    expect(readKeys(lu, A).keys).toEqual([9n, 9n]);
  });

  it('format 00b registers every initiator port of that node', () => {
    const B2 = makeNexus('iqn.2026-01.test:b', '23d000000002');
    const { lu } = setup(A, B, B2);
    proutOk(lu, A, ProutAction.Register, {
      serviceActionKey: 9n, specIPt: true, transportIds: [{ initiatorName: 'iqn.2026-01.test:b', isid: null, length: 0 }],
    });
    expect(lu.reservations.pr.registrationOf(B)?.key).toBe(9n);
    expect(lu.reservations.pr.registrationOf(B2)?.key).toBe(9n);
  });

  it('a TransportID naming an already registered nexus fails the command; nothing is registered', () => {
    const { lu } = setup(A, B);
    register(lu, B, 2n);
    const r = prout(lu, A, ProutAction.Register, {
      serviceActionKey: 9n, specIPt: true, transportIds: [{ initiatorName: 'iqn.2026-01.test:b', isid: '23d000000001', length: 0 }],
    });
    expect(senseOf(r)).toEqual([0x5, 0x26, 0x00]);
    expect(readKeys(lu, A).keys).toEqual([2n]);
  });

  it('SPEC_I_PT from a registered nexus: INVALID FIELD IN PARAMETER LIST', () => {
    const { lu } = setup(A);
    register(lu, A, 1n);
    const r = prout(lu, A, ProutAction.Register, {
      reservationKey: 1n, serviceActionKey: 2n, specIPt: true, transportIds: [{ initiatorName: 'iqn.x:z', isid: null, length: 0 }],
    });
    expect(senseOf(r)).toEqual([0x5, 0x26, 0x00]);
  });
});

describe('ALL_TG_PT and APTPL', () => {
  it('ALL_TG_PT=1 registers the initiator port through every target port', () => {
    const Aport2 = makeNexus('iqn.2026-01.test:a', '23d000000001', 2);
    const { lu } = setup(A, Aport2);
    register(lu, A, 4n, { allTgPt: true });
    expect(lu.reservations.pr.registrationOf(Aport2)?.key).toBe(4n);
    // One registration, reported with ALL_TG_PT set in READ FULL STATUS.
    const d = prin(lu, A, PrinAction.ReadFullStatus);
    expect(d[8 + 12] & 0x02).toBe(0x02);
  });

  it('APTPL is accepted and reported as PTPL_A (kept in memory only)', () => {
    const { lu } = setup(A);
    expect(prin(lu, A, PrinAction.ReportCapabilities)[3] & 0x01).toBe(0);
    register(lu, A, 4n, { aptpl: true });
    expect(prin(lu, A, PrinAction.ReportCapabilities)[3] & 0x01).toBe(1);
  });
});
