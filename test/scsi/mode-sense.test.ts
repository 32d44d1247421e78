/** MODE SENSE(6)/(10) (SPC-5 §6.11, §6.12): headers, block descriptors, pages, page control. */
import { describe, expect, it } from 'vitest';
import { INVALID_FIELD_IN_CDB, fieldPointer, good, senseOf, setup, submit } from './spc-fixture.ts';

const ms6 = (page: number, o: { pc?: number; dbd?: boolean; sub?: number; alloc?: number } = {}) =>
  [0x1a, o.dbd ? 0x08 : 0, ((o.pc ?? 0) << 6) | page, o.sub ?? 0, o.alloc ?? 255, 0];
const ms10 = (page: number, o: { pc?: number; dbd?: boolean; llbaa?: boolean; sub?: number; alloc?: number } = {}) =>
  [0x5a, (o.dbd ? 0x08 : 0) | (o.llbaa ? 0x10 : 0), ((o.pc ?? 0) << 6) | page, o.sub ?? 0, 0, 0, 0, ((o.alloc ?? 4096) >> 8) & 0xff, (o.alloc ?? 4096) & 0xff, 0];

// Current values of each page, annotated.
const CACHING = '0812' + '04' + '00' + '0000000000000000' + '00' + '00' + '0000' + '00' + '000000'; // WCE=1
const CONTROL = '0a0a' + '00' + '00' + '00' + '00' + '0000' + '0000' + '0000';
const RWER = '010a' + '00000000000000000000';
const IEC = '1c0a' + '08' + '00' + '00000000' + '00000000'; // DEXCPT=1

describe('MODE SENSE(6)', () => {
  it('Caching page with a short block descriptor', async () => {
    const f = setup();
    const d = good(await submit(f, ms6(0x08)));
    expect(d.toString('hex')).toBe(
      '1f' + '00' + '10' + '08' +            // MODE DATA LENGTH 31, MEDIUM TYPE, DSP: DPOFUA, BD LENGTH 8
      '00000800' + '00' + '000200' +         // 2048 blocks of 512 bytes
      CACHING);
  });

  it('DBD omits the block descriptor; all pages come in page-code order', async () => {
    const f = setup();
    const d = good(await submit(f, ms6(0x3f, { dbd: true })));
    expect(d.toString('hex')).toBe('3b' + '00' + '10' + '00' + RWER + CACHING + CONTROL + IEC);
    expect(good(await submit(f, ms6(0x3f, { dbd: true, sub: 0xff }))).toString('hex')).toBe(d.toString('hex'));
  });

  it('sets WP in the device-specific parameter for a read-only LU and after SWP', async () => {
    expect(good(await submit(setup({ readonly: true }), ms6(0x0a)))[2]).toBe(0x90);
    const f = setup();
    f.lu.settings.swp = true;
    const d = good(await submit(f, ms6(0x0a, { dbd: true })));
    expect(d[2]).toBe(0x90);
    expect(d[4 + 4] & 0x08).toBe(0x08); // Control page SWP
  });

  it('changeable values: the masks of WCE/RCD, D_SENSE/SWP/TAS, IEC fields', async () => {
    const f = setup();
    const d = good(await submit(f, ms6(0x3f, { pc: 1, dbd: true })));
    expect(d.toString('hex')).toBe('3b' + '00' + '00' + '00' +
      '010a' + '00000000000000000000' +
      '0812' + '05' + '00' + '0000000000000000' + '00000000' + '00000000' +
      '0a0a' + '04' + '00' + '08' + '40' + '000000000000' +
      '1c0a' + '98' + '0f' + 'ffffffff' + 'ffffffff');
  });

  it('default values equal the power-on current values', async () => {
    const f = setup();
    f.lu.settings.wce = false;
    const d = good(await submit(f, ms6(0x08, { pc: 2, dbd: true })));
    expect(d.subarray(4).toString('hex')).toBe(CACHING);
  });

  it('saved values: SAVING PARAMETERS NOT SUPPORTED', async () => {
    expect(senseOf(await submit(setup(), ms6(0x08, { pc: 3 })))).toEqual([0x5, 0x39, 0x00]);
  });

  it('unknown page, unknown subpage, reserved bits: INVALID FIELD IN CDB', async () => {
    const f = setup();
    let r = await submit(f, ms6(0x19));
    expect(senseOf(r)).toEqual(INVALID_FIELD_IN_CDB);
    expect(fieldPointer(r)?.byte).toBe(2);
    r = await submit(f, ms6(0x0a, { sub: 1 }));
    expect(senseOf(r)).toEqual(INVALID_FIELD_IN_CDB);
    expect(fieldPointer(r)?.byte).toBe(3);
    r = await submit(f, [0x1a, 0x10, 0x08, 0, 255, 0]); // LLBAA is not a MODE SENSE(6) bit
    expect(senseOf(r)).toEqual(INVALID_FIELD_IN_CDB);
  });

  it('truncates to ALLOCATION LENGTH, MODE DATA LENGTH unchanged', async () => {
    const d = good(await submit(setup(), ms6(0x3f, { alloc: 4 })));
    expect(d.length).toBe(4);
    expect(d[0]).toBe(0x43);
  });
});

describe('MODE SENSE(10)', () => {
  it('8-byte header and short block descriptor', async () => {
    const d = good(await submit(setup(), ms10(0x0a)));
    expect(d.toString('hex')).toBe('001a' + '00' + '10' + '00' + '00' + '0008' + '00000800' + '00000200' + CONTROL);
  });

  it('LLBAA gives a long LBA descriptor and LONGLBA=1', async () => {
    const d = good(await submit(setup(), ms10(0x0a, { llbaa: true })));
    expect(d.toString('hex')).toBe('0022' + '00' + '10' + '01' + '00' + '0010' +
      '0000000000000800' + '00000000' + '00000200' + CONTROL);
  });

  it('a capacity beyond 32 bits reads FFFFFFFFh in the short descriptor', async () => {
    const f = setup({ store: { blockSize: 512, blockCount: 0x1_0000_0001n, kind: 'memory', thin: false, read: () => Buffer.alloc(0), write: () => undefined, close: () => undefined } });
    const d = good(await submit(f, ms10(0x08)));
    expect(d.readUInt32BE(8)).toBe(0xffffffff);
    const l = good(await submit(f, ms10(0x08, { llbaa: true })));
    expect(l.readBigUInt64BE(8)).toBe(0x1_0000_0001n);
  });
});
