/** INQUIRY standard data (SPC-5 §6.7.2) and CDB field checks. */
import { describe, expect, it } from 'vitest';
import { decodeStandardInquiry } from '../../protocol/scsi/inquiry.ts';
import { ScsiStatus } from '../../src/scsi/types.ts';
import { INVALID_FIELD_IN_CDB, fieldPointer, good, inquiry, makeNexus, senseOf, setup, submit } from './spc-fixture.ts';

describe('INQUIRY standard data', () => {
  it('answers with the SPC-5 §6.7.2 fields, byte for byte', async () => {
    const f = setup();
    const d = good(await submit(f, inquiry(0, 0, 260)));
    expect(d.length).toBe(96);
    expect(d[0]).toBe(0x00);          // PQ 000b, PDT 00h direct access
    expect(d[1]).toBe(0x00);          // RMB=0
    expect(d[2]).toBe(0x06);          // VERSION: SPC-4
    expect(d[3]).toBe(0x12);          // NORMACA=0 HISUP=1 RESPONSE DATA FORMAT=2
    expect(d[4]).toBe(96 - 5);        // ADDITIONAL LENGTH
    expect(d[5]).toBe(0x38);          // TPGS=11b (implicit and explicit ALUA, the default), 3PC=1 (EXTENDED COPY), PROTECT=0
    expect(d[6]).toBe(0x00);
    expect(d[7]).toBe(0x02);          // CMDQUE=1
    expect(d.subarray(8, 16).toString('latin1')).toBe('ARRAYSIM');
    expect(d.subarray(16, 32).toString('latin1')).toBe('VIRTUAL-DISK    ');
    expect(d.subarray(32, 36).toString('latin1')).toBe('0001');
    // Version descriptors: SAM-5, iSCSI, SPC-4, SBC-3.
    expect(d.subarray(58, 66).toString('hex')).toBe('00a00960046004c0');
    expect(d.subarray(66, 96).every((b) => b === 0)).toBe(true);
    const s = decodeStandardInquiry(d);
    expect(s).toMatchObject({ peripheralDeviceType: 0, version: 6, hisup: true, responseDataFormat: 2, tpgs: 3, cmdque: true });
  });

  it('sets RMB for a removable LU', async () => {
    const f = setup({ removable: true });
    expect(good(await submit(f, inquiry(0, 0)))[1]).toBe(0x80);
  });

  it('returns at most ALLOCATION LENGTH bytes, ADDITIONAL LENGTH unchanged', async () => {
    const f = setup();
    const d = good(await submit(f, inquiry(0, 0, 36)));
    expect(d.length).toBe(36);
    expect(d[4]).toBe(91);
    expect(good(await submit(f, inquiry(0, 0, 5))).length).toBe(5);
    expect(good(await submit(f, inquiry(0, 0, 0))).length).toBe(0);
  });

  it('rejects PAGE CODE with EVPD=0, CMDDT, an unknown VPD page, and NACA', async () => {
    const f = setup();
    let r = await submit(f, inquiry(0, 0x80));
    expect(senseOf(r)).toEqual(INVALID_FIELD_IN_CDB);
    expect(fieldPointer(r)).toEqual({ inCdb: true, byte: 2, bit: undefined });
    r = await submit(f, inquiry(2, 0));
    expect(senseOf(r)).toEqual(INVALID_FIELD_IN_CDB);
    expect(fieldPointer(r)).toEqual({ inCdb: true, byte: 1, bit: 1 });
    r = await submit(f, inquiry(1, 0x7e));
    expect(senseOf(r)).toEqual(INVALID_FIELD_IN_CDB);
    expect(fieldPointer(r)?.byte).toBe(2);
    r = await submit(f, [0x12, 0, 0, 0, 96, 0x04]);
    expect(senseOf(r)).toEqual(INVALID_FIELD_IN_CDB);
    expect(fieldPointer(r)).toEqual({ inCdb: true, byte: 5, bit: 2 });
  });

  it('never reports a unit attention (ua: skip), and the UA stays pending', async () => {
    const f = setup();
    const other = makeNexus({ isid: '23d000000002' });
    f.target.nexusUp(other); // POWER ON, RESET, OR BUS DEVICE RESET OCCURRED pending for `other`
    expect((await submit(f, inquiry(0, 0), { nexus: other })).status).toBe(ScsiStatus.Good);
    expect(senseOf(await submit(f, [0, 0, 0, 0, 0, 0], { nexus: other }))).toEqual([0x6, 0x29, 0x00]);
  });

  it('answers an absent LUN with PQ 011b / PDT 1Fh', async () => {
    const f = setup();
    const d = good(await submit(f, inquiry(0, 0), { lun: 7 }));
    expect(d[0]).toBe(0x7f);
  });
});
