/**
 * Golden vectors for protocol/scsi/pr.ts: PR OUT parameter lists, iSCSI TransportIDs
 * (SPC-5 §7.6.4.6) and PR IN parameter data, annotated field by field.
 */
import { describe, expect, it } from 'vitest';
import {
  decodeMoveParameters, decodeProutParameters, decodeTransportId, encodeMoveParameters, encodeProutParameters,
  encodeReadFullStatus, encodeReadKeys, encodeReadReservation, encodeReportCapabilities, encodeTransportId, PrType,
} from '../../protocol/scsi/pr.ts';

const hex = (...parts: string[]): Buffer => Buffer.from(parts.join('').replace(/\s+/g, ''), 'hex');
const ascii = (s: string): string => Buffer.from(s).toString('hex');

describe('iSCSI TransportID', () => {
  const name = 'iqn.2026-01.test:host-a'; // 23 bytes

  it('format 01b: name ",i,0x" ISID, NUL, padded to a multiple of four', () => {
    const text = `${name},i,0x23d000000001`; // 23 + 5 + 12 = 40 bytes, + NUL = 41 → 44
    const golden = hex(
      '45',          // FORMAT CODE 01b | PROTOCOL IDENTIFIER 5h (iSCSI)
      '00',          // reserved
      '002c',        // ADDITIONAL LENGTH 44
      ascii(text), '00', '000000', // ISCSI NAME + SEPARATOR + ISID, NUL, pad
    );
    expect(encodeTransportId(name, '23d000000001')).toEqual(golden);
    expect(decodeTransportId(golden, 0)).toEqual({ ok: true, value: { initiatorName: name, isid: '23d000000001', length: 48 } });
  });

  it('format 00b: the name alone; ADDITIONAL LENGTH at least 20', () => {
    const golden = hex('05', '00', '0014', ascii('iqn.x:y'), '00'.repeat(13)); // 7 + NUL → min 20
    expect(encodeTransportId('iqn.x:y', null)).toEqual(golden);
    expect(decodeTransportId(golden, 0)).toEqual({ ok: true, value: { initiatorName: 'iqn.x:y', isid: null, length: 24 } });
  });

  it('lower-cases names and ISIDs (iSCSI names compare case-insensitively)', () => {
    const t = encodeTransportId('IQN.X:Host', '23D000000001');
    expect(decodeTransportId(t, 0)).toMatchObject({ ok: true, value: { initiatorName: 'iqn.x:host', isid: '23d000000001' } });
  });

  it('rejects another protocol, an unknown format, a missing NUL, a bad ISID, a short buffer', () => {
    const good = encodeTransportId(name, '23d000000001');
    const fc = Buffer.from(good); fc[0] = 0x01; // Fibre Channel
    expect(decodeTransportId(fc, 0)).toMatchObject({ ok: false, reason: 'InvalidFieldInParameterList', fieldPointer: { byte: 0, bit: 3 } });
    const fmt = Buffer.from(good); fmt[0] = 0x85; // format 10b
    expect(decodeTransportId(fmt, 0)).toMatchObject({ ok: false, reason: 'InvalidFieldInParameterList', fieldPointer: { byte: 0, bit: 7 } });
    const noNul = Buffer.from(good); noNul.fill(0x41, 4);
    expect(decodeTransportId(noNul, 0)).toMatchObject({ ok: false, reason: 'InvalidFieldInParameterList' });
    const badIsid = hex('45', '00', '0014', ascii('a,i,0x12345'), '00'.repeat(9));
    expect(decodeTransportId(badIsid, 0)).toMatchObject({ ok: false, reason: 'InvalidFieldInParameterList' });
    expect(decodeTransportId(good.subarray(0, 20), 0)).toMatchObject({ ok: false, reason: 'ParameterListLengthError' });
  });
});

describe('PERSISTENT RESERVE OUT parameter list (SPC-5 §6.17.3)', () => {
  const golden = hex(
    '1122334455667788', // 0-7   RESERVATION KEY
    'a1a2a3a4a5a6a7a8', // 8-15  SERVICE ACTION RESERVATION KEY
    '00000000',         // 16-19 obsolete
    '05',               // 20    SPEC_I_PT 0 | ALL_TG_PT 1 | APTPL 1
    '00',               // 21    reserved
    '0000',             // 22-23 obsolete
  );

  it('decodes and encodes the 24-byte basic list, keys as full 64-bit values', () => {
    const p = { reservationKey: 0x1122334455667788n, serviceActionKey: 0xa1a2a3a4a5a6a7a8n, specIPt: false, allTgPt: true, aptpl: true, transportIds: [] };
    expect(decodeProutParameters(golden)).toEqual({ ok: true, value: p });
    expect(encodeProutParameters(p)).toEqual(golden);
  });

  it('SPEC_I_PT=0: any length but 24 is PARAMETER LIST LENGTH ERROR', () => {
    expect(decodeProutParameters(golden.subarray(0, 23))).toMatchObject({ ok: false, reason: 'ParameterListLengthError' });
    expect(decodeProutParameters(Buffer.concat([golden, Buffer.alloc(4)]))).toMatchObject({ ok: false, reason: 'ParameterListLengthError' });
  });

  it('SPEC_I_PT=1: TRANSPORTID PARAMETER DATA LENGTH and the TransportIDs after byte 24', () => {
    const t1 = encodeTransportId('iqn.x:b', '000000000002');
    const t2 = encodeTransportId('iqn.x:c', null);
    const list = hex('0000000000000000', '00000000000000ab', '00000000', '08', '00', '0000',
      (t1.length + t2.length).toString(16).padStart(8, '0'), t1.toString('hex'), t2.toString('hex'));
    const d = decodeProutParameters(list);
    expect(d).toMatchObject({ ok: true, value: { serviceActionKey: 0xabn, specIPt: true } });
    expect(d.ok && d.value.transportIds.map((t) => [t.initiatorName, t.isid])).toEqual([['iqn.x:b', '000000000002'], ['iqn.x:c', null]]);
    expect(encodeProutParameters(d.ok ? d.value : {})).toEqual(list);
    // A TRANSPORTID PARAMETER DATA LENGTH running past the list.
    const short = Buffer.from(list); short.writeUInt32BE(t1.length + t2.length + 4, 24);
    expect(decodeProutParameters(short)).toMatchObject({ ok: false, reason: 'ParameterListLengthError' });
  });

  it('REGISTER AND MOVE list (SPC-5 §6.17.4)', () => {
    const tid = encodeTransportId('iqn.x:b', '000000000002');
    const list = hex(
      '0000000000000001', // RESERVATION KEY
      '0000000000000002', // SERVICE ACTION RESERVATION KEY
      '00',               // reserved
      '02',               // UNREG 1, APTPL 0
      '0003',             // RELATIVE TARGET PORT IDENTIFIER
      tid.length.toString(16).padStart(8, '0'), // TRANSPORTID PARAMETER DATA LENGTH
      tid.toString('hex'),
    );
    const d = decodeMoveParameters(list);
    expect(d).toEqual({ ok: true, value: {
      reservationKey: 1n, serviceActionKey: 2n, unreg: true, aptpl: false, relativeTargetPortId: 3,
      transportId: { initiatorName: 'iqn.x:b', isid: '000000000002', length: tid.length },
    } });
    expect(encodeMoveParameters(d.ok ? d.value : (undefined as never))).toEqual(list);
  });
});

describe('PERSISTENT RESERVE IN parameter data (SPC-5 §6.16)', () => {
  it('READ KEYS: PRGENERATION, ADDITIONAL LENGTH, keys', () => {
    expect(encodeReadKeys(7, [1n, 0xffffffffffffffffn])).toEqual(hex(
      '00000007', '00000010', '0000000000000001', 'ffffffffffffffff'));
  });

  it('READ RESERVATION: empty, and with a reservation', () => {
    expect(encodeReadReservation(3, null)).toEqual(hex('00000003', '00000000'));
    expect(encodeReadReservation(3, { key: 0xabcn, type: PrType.ExclusiveAccessRegistrantsOnly })).toEqual(hex(
      '00000003', '00000010',
      '0000000000000abc', // RESERVATION KEY
      '00000000',         // obsolete
      '00',               // reserved
      '06',               // SCOPE 0h (LU) | TYPE 6h
      '0000'));           // obsolete
  });

  it('REPORT CAPABILITIES: LENGTH 8, flag bits and the type mask', () => {
    expect(encodeReportCapabilities({
      rlrC: false, crh: true, sipC: true, atpC: true, ptplC: true, tmv: true, allowCommands: 0, ptplA: true,
      types: [PrType.WriteExclusive, PrType.ExclusiveAccess, PrType.WriteExclusiveRegistrantsOnly,
        PrType.ExclusiveAccessRegistrantsOnly, PrType.WriteExclusiveAllRegistrants, PrType.ExclusiveAccessAllRegistrants],
    })).toEqual(hex(
      '0008', // LENGTH
      '1d',   // RLR_C 0 | CRH 1 | SIP_C 1 | ATP_C 1 | PTPL_C 1
      '81',   // TMV 1 | ALLOW COMMANDS 000b | PTPL_A 1
      'ea',   // WR_EX_AR | EX_AC_RO | WR_EX_RO | EX_AC | WR_EX
      '01',   // EX_AC_AR
      '0000'));
  });

  it('READ FULL STATUS: a descriptor with its TransportID', () => {
    const tid = encodeTransportId('iqn.x:a', '000000000001');
    const d = encodeReadFullStatus(9, [{
      key: 0x42n, allTgPt: false, rHolder: true, type: PrType.WriteExclusive, relativeTargetPortId: 2,
      initiatorName: 'iqn.x:a', isid: '000000000001',
    }]);
    expect(d).toEqual(hex(
      '00000009', (24 + tid.length).toString(16).padStart(8, '0'),
      '0000000000000042', // RESERVATION KEY
      '00000000',         // reserved
      '01',               // ALL_TG_PT 0 | R_HOLDER 1
      '01',               // SCOPE 0 | TYPE 1
      '00000000',         // reserved
      '0002',             // RELATIVE TARGET PORT IDENTIFIER
      tid.length.toString(16).padStart(8, '0'), // ADDITIONAL DESCRIPTOR LENGTH
      tid.toString('hex')));
  });
});
