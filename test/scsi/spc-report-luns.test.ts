/** REPORT LUNS (SPC-5 §6.33). */
import { describe, expect, it } from 'vitest';
import { INVALID_FIELD_IN_CDB, fakeStore, fieldPointer, good, makeNexus, senseOf, setup, submit } from './spc-fixture.ts';

const reportLuns = (select: number, alloc: number) =>
  [0xa0, 0, select, 0, 0, 0, (alloc >>> 24) & 0xff, (alloc >> 16) & 0xff, (alloc >> 8) & 0xff, alloc & 0xff, 0, 0];

describe('REPORT LUNS', () => {
  it('lists every LU, peripheral and flat addressing, ascending', async () => {
    const f = setup();
    f.target.addLun({ lun: 300, store: fakeStore(), naa: '5001405000000300', serial: 'S300' });
    f.target.addLun({ lun: 2, store: fakeStore(), naa: '5001405000000002', serial: 'S2' });
    const d = good(await submit(f, reportLuns(0, 4096)));
    expect(d.toString('hex')).toBe(
      '00000018' + '00000000' +
      '0000000000000000' + '0002000000000000' + '412c000000000000');
  });

  it('SELECT REPORT 02h equals 00h; 01h, 10h, 11h, 12h list nothing', async () => {
    const f = setup();
    expect(good(await submit(f, reportLuns(2, 64))).toString('hex')).toBe('00000008000000000000000000000000');
    for (const s of [0x01, 0x10, 0x11, 0x12]) {
      expect(good(await submit(f, reportLuns(s, 64))).toString('hex')).toBe('0000000000000000');
    }
  });

  it('rejects other SELECT REPORT values and ALLOCATION LENGTH below 16', async () => {
    const f = setup();
    for (const s of [0x03, 0x0f, 0x13, 0xff]) {
      const r = await submit(f, reportLuns(s, 64));
      expect(senseOf(r)).toEqual(INVALID_FIELD_IN_CDB);
      expect(fieldPointer(r)?.byte).toBe(2);
    }
    const r = await submit(f, reportLuns(0, 15));
    expect(senseOf(r)).toEqual(INVALID_FIELD_IN_CDB);
    expect(fieldPointer(r)?.byte).toBe(6);
    good(await submit(f, reportLuns(0, 16)));
  });

  it('truncates to ALLOCATION LENGTH while LUN LIST LENGTH keeps the full size', async () => {
    const f = setup();
    f.target.addLun({ lun: 1, store: fakeStore(), naa: '5001405000000001', serial: 'S1' });
    const d = good(await submit(f, reportLuns(0, 16)));
    expect(d.length).toBe(16);
    expect(d.readUInt32BE(0)).toBe(16);
  });

  it('answers through an absent LUN, with the same checks', async () => {
    const f = setup();
    expect(good(await submit(f, reportLuns(0, 64), { lun: 9 })).readUInt32BE(0)).toBe(8);
    expect(senseOf(await submit(f, reportLuns(7, 64), { lun: 9 }))).toEqual(INVALID_FIELD_IN_CDB);
  });

  it('does not report a UA, and clears REPORTED LUNS DATA HAS CHANGED', async () => {
    const f = setup();
    const n = makeNexus({ isid: '23d000000002' });
    f.target.nexusUp(n);
    f.lu.ua.forget(n.key);
    f.target.addLun({ lun: 1, store: fakeStore(), naa: '5001405000000001', serial: 'S1' });
    expect(f.lu.ua.peek(n.key)?.reason).toBe('ReportedLunsDataChanged');
    good(await submit(f, reportLuns(0, 64), { nexus: n }));
    expect(f.lu.ua.peek(n.key)).toBeUndefined();
  });
});
