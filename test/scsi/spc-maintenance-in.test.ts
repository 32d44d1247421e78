/** MAINTENANCE IN: REPORT SUPPORTED TASK MANAGEMENT FUNCTIONS, REPORT TARGET PORT GROUPS, REPORT TIMESTAMP; LOG SENSE. */
import { describe, expect, it } from 'vitest';
import { INVALID_FIELD_IN_CDB, fieldPointer, good, makeNexus, senseOf, setup, submit } from './spc-fixture.ts';

const mi = (sa: number, byte1hi = 0, byte2 = 0, alloc = 4096) =>
  [0xa3, byte1hi | sa, byte2, 0, 0, 0, (alloc >>> 24) & 0xff, (alloc >> 16) & 0xff, (alloc >> 8) & 0xff, alloc & 0xff, 0, 0];

describe('REPORT SUPPORTED TASK MANAGEMENT FUNCTIONS', () => {
  it('basic format: ATS ATSS CACAS CTSS LURS QTS TRS', async () => {
    expect(good(await submit(setup(), mi(0x0d))).toString('hex')).toBe('fe000000');
  });
  it('REPOSD: extended format, ADDITIONAL DATA LENGTH 0Ch', async () => {
    const d = good(await submit(setup(), mi(0x0d, 0, 0x80)));
    expect(d.toString('hex')).toBe('fe00000c' + '00'.repeat(12));
  });
  it('ALLOCATION LENGTH below 4: INVALID FIELD IN CDB', async () => {
    const r = await submit(setup(), mi(0x0d, 0, 0, 3));
    expect(senseOf(r)).toEqual(INVALID_FIELD_IN_CDB);
    expect(fieldPointer(r)?.byte).toBe(6);
  });
});

describe('REPORT TARGET PORT GROUPS (target without ALUA configuration)', () => {
  it('one group per targetPortGroupId seen, its ports, all active/optimized, every state supported', async () => {
    const f = setup();
    f.target.nexusUp(makeNexus({ isid: '23d000000002', tpgt: 2, tpg: 1 }));
    f.target.nexusUp(makeNexus({ isid: '23d000000003', tpgt: 3, tpg: 5 }));
    const d = good(await submit(f, mi(0x0a)));
    expect(d.toString('hex')).toBe(
      '0000001c' +
      '00' + 'cf' + '0001' + '00' + '00' + '00' + '02' + '00000001' + '00000002' +
      '00' + 'cf' + '0005' + '00' + '00' + '00' + '01' + '00000003');
  });
  it('extended header: FORMAT TYPE 001b', async () => {
    const d = good(await submit(setup(), mi(0x0a, 0x20)));
    expect(d.toString('hex')).toBe('00000010' + '10000000' + '00cf0001' + '00000001' + '00000001');
  });
  it('other PARAMETER DATA FORMAT values: INVALID FIELD IN CDB', async () => {
    expect(senseOf(await submit(setup(), mi(0x0a, 0x40)))).toEqual(INVALID_FIELD_IN_CDB);
  });
});

describe('REPORT TIMESTAMP', () => {
  it('reports the host clock in milliseconds, origin 011b', async () => {
    const before = Date.now();
    const d = good(await submit(setup(), mi(0x0f)));
    expect(d.length).toBe(12);
    expect(d.readUInt16BE(0)).toBe(10);
    expect(d[2] & 7).toBe(3);
    const t = d.readUIntBE(4, 6);
    expect(t).toBeGreaterThanOrEqual(before);
    expect(t).toBeLessThanOrEqual(Date.now());
  });
});

describe('LOG SENSE', () => {
  const ls = (page: number, sub = 0, sp = 0) => [0x4d, sp, page, sub, 0, 0, 0, 0x10, 0, 0];
  it('Supported Log Pages, and pages and subpages', async () => {
    const f = setup();
    expect(good(await submit(f, ls(0x00))).toString('hex')).toBe('0000000100');
    expect(good(await submit(f, ls(0x00, 0xff))).toString('hex')).toBe('40ff0004000000ff');
  });
  it('other pages, subpages and SP=1: INVALID FIELD IN CDB', async () => {
    const f = setup();
    expect(senseOf(await submit(f, ls(0x0d)))).toEqual(INVALID_FIELD_IN_CDB);
    expect(senseOf(await submit(f, ls(0x00, 1)))).toEqual(INVALID_FIELD_IN_CDB);
    expect(senseOf(await submit(f, ls(0x00, 0, 1)))).toEqual(INVALID_FIELD_IN_CDB);
  });
});
