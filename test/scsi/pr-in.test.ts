/**
 * PERSISTENT RESERVE IN through LogicalUnit.submit(): READ KEYS (and its truncation),
 * READ RESERVATION, REPORT CAPABILITIES, READ FULL STATUS bytes, the service action range
 * (libiscsi PrinReadKeys*, PrinReportCapabilities, PrinServiceactionRange).
 */
import { describe, expect, it } from 'vitest';
import { encodeTransportId, PrinAction, PrType } from '../../protocol/scsi/pr.ts';
import { ScsiStatus } from '../../src/scsi/types.ts';
import { makeNexus, prin, prinCdb, register, reserve, senseOf, setup, submit } from './pr-fixture.ts';

const A = makeNexus('iqn.2026-01.test:a', '23d000000001', 1);
const B = makeNexus('iqn.2026-01.test:b', '23d000000002', 2);

describe('READ KEYS', () => {
  it('returns PRGENERATION, ADDITIONAL LENGTH and each registered key', () => {
    const { lu } = setup(A, B);
    register(lu, A, 0x0102030405060708n);
    register(lu, B, 0xfffffffffffffffen);
    expect(prin(lu, A, PrinAction.ReadKeys).toString('hex')).toBe(
      '00000002' + '00000010' + '0102030405060708' + 'fffffffffffffffe');
  });

  it('truncated to the allocation length, ADDITIONAL LENGTH still counts every key (libiscsi PrinReadKeysTruncate)', () => {
    const { lu } = setup(A);
    register(lu, A, 1n);
    const d = prin(lu, A, PrinAction.ReadKeys, 8);
    expect(d.length).toBe(8);
    expect(d.readUInt32BE(4)).toBe(8);
  });
});

describe('READ RESERVATION', () => {
  it('no reservation: header only', () => {
    const { lu } = setup(A);
    expect(prin(lu, A, PrinAction.ReadReservation).toString('hex')).toBe('00000000' + '00000000');
  });

  it('the holder key, scope and type', () => {
    const { lu } = setup(A);
    register(lu, A, 0xabcdn);
    reserve(lu, A, 0xabcdn, PrType.ExclusiveAccessRegistrantsOnly);
    expect(prin(lu, A, PrinAction.ReadReservation).toString('hex')).toBe(
      '00000001' + '00000010' + '000000000000abcd' + '00000000' + '00' + '06' + '0000');
  });

  it('all-registrants: RESERVATION KEY zero', () => {
    const { lu } = setup(A);
    register(lu, A, 0xabcdn);
    reserve(lu, A, 0xabcdn, PrType.WriteExclusiveAllRegistrants);
    expect(prin(lu, A, PrinAction.ReadReservation).subarray(8, 16).toString('hex')).toBe('0000000000000000');
  });
});

describe('REPORT CAPABILITIES', () => {
  it('LENGTH 8, CRH SIP_C ATP_C PTPL_C, TMV, ALLOW COMMANDS ≤ 5, all six types', () => {
    const { lu } = setup(A);
    const d = prin(lu, A, PrinAction.ReportCapabilities);
    expect(d.toString('hex')).toBe('0008' + '1d' + '80' + 'ea01' + '0000');
    expect((d[3] >> 4) & 7).toBeLessThanOrEqual(5);
  });
});

describe('READ FULL STATUS', () => {
  it('one descriptor per registration; R_HOLDER, type and TransportID format 01b', () => {
    const { lu } = setup(A, B);
    register(lu, A, 1n);
    register(lu, B, 2n);
    reserve(lu, B, 2n, PrType.WriteExclusive);
    const d = prin(lu, A, PrinAction.ReadFullStatus);
    const tidA = encodeTransportId('iqn.2026-01.test:a', '23d000000001');
    const tidB = encodeTransportId('iqn.2026-01.test:b', '23d000000002');
    const desc = (key: string, flags: string, type: string, port: string, tid: Buffer): string =>
      key + '00000000' + flags + type + '00000000' + port + tid.length.toString(16).padStart(8, '0') + tid.toString('hex');
    expect(d.toString('hex')).toBe(
      '00000002' + (48 + tidA.length + tidB.length).toString(16).padStart(8, '0')
      + desc('0000000000000001', '00', '00', '0001', tidA)
      + desc('0000000000000002', '01', '01', '0002', tidB));
  });

  it('all-registrants: every registrant is a holder', () => {
    const { lu } = setup(A, B);
    register(lu, A, 1n);
    register(lu, B, 2n);
    reserve(lu, A, 1n, PrType.ExclusiveAccessAllRegistrants);
    const d = prin(lu, A, PrinAction.ReadFullStatus);
    const second = 8 + 24 + d.readUInt32BE(8 + 20);
    expect([d[8 + 12], d[8 + 13], d[second + 12], d[second + 13]]).toEqual([1, 8, 1, 8]);
  });
});

describe('service actions', () => {
  it('0-3 work, 4..1Fh are INVALID FIELD IN CDB on byte 1 (libiscsi PrinServiceactionRange)', () => {
    const { lu } = setup(A);
    for (let sa = 0; sa < 4; sa++) expect(submit(lu, A, prinCdb(sa), null, 16384).status).toBe(ScsiStatus.Good);
    for (let sa = 4; sa < 0x20; sa++) {
      const r = submit(lu, A, prinCdb(sa), null, 16384);
      expect(senseOf(r)).toEqual([0x5, 0x24, 0x00]);
      expect(r.sense!.readUInt16BE(16)).toBe(1);
    }
  });

  it('PR IN never conflicts with a persistent reservation', () => {
    const C = makeNexus('iqn.2026-01.test:c');
    const { lu } = setup(A, C);
    register(lu, A, 1n);
    reserve(lu, A, 1n, PrType.ExclusiveAccess);
    for (let sa = 0; sa < 4; sa++) expect(submit(lu, C, prinCdb(sa), null, 16384).status).toBe(ScsiStatus.Good);
  });
});
