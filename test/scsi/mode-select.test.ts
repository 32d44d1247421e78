/** MODE SELECT(6)/(10) (SPC-5 §6.13, §6.14): validation, apply, UA, effects. */
import { describe, expect, it } from 'vitest';
import { ScsiStatus } from '../../src/scsi/types.ts';
import {
  INVALID_FIELD_IN_CDB, INVALID_FIELD_IN_PARAMETER_LIST, fieldPointer, good, makeNexus, senseOf, setup, submit,
} from './spc-fixture.ts';

const sel6 = (len: number, pf = true, sp = false) => [0x15, (pf ? 0x10 : 0) | (sp ? 1 : 0), 0, 0, len, 0];
const sel10 = (len: number) => [0x55, 0x10, 0, 0, 0, 0, 0, len >> 8, len & 0xff, 0];
const hdr6 = (bdl = 0) => Buffer.from([0, 0, 0, bdl]);
const hdr10 = (bdl = 0, longLba = false) => Buffer.from([0, 0, 0, 0, longLba ? 1 : 0, 0, 0, bdl]);
const control = (o: { dSense?: boolean; swp?: boolean; tas?: boolean; tst?: number } = {}) => Buffer.from([
  0x0a, 0x0a, ((o.tst ?? 0) << 5) | (o.dSense ? 0x04 : 0), 0, o.swp ? 0x08 : 0, o.tas ? 0x40 : 0, 0, 0, 0, 0, 0, 0,
]);
const caching = (wce: boolean, rcd = false) => {
  const b = Buffer.alloc(20);
  b[0] = 0x08; b[1] = 0x12; b[2] = (wce ? 0x04 : 0) | (rcd ? 0x01 : 0);
  return b;
};
const select = (f: ReturnType<typeof setup>, data: Buffer, opts: { nexus?: ReturnType<typeof makeNexus> } = {}) =>
  submit(f, sel6(data.length), { dataOut: data, ...opts });

const READ16_OOB = [0x88, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1, 0, 0];

describe('MODE SELECT: D_SENSE switches the sense format', () => {
  it('fixed sense before, descriptor sense after, fixed again when cleared', async () => {
    const f = setup();
    let r = await submit(f, READ16_OOB);
    expect(r.sense![0]).toBe(0x70);
    expect(senseOf(r)).toEqual([0x5, 0x21, 0x00]);

    good(await select(f, Buffer.concat([hdr6(), control({ dSense: true })])));
    expect(f.lu.settings.dSense).toBe(true);
    r = await submit(f, READ16_OOB);
    expect(r.sense![0]).toBe(0x72);
    expect(senseOf(r)).toEqual([0x5, 0x21, 0x00]);
    // A failing MODE SELECT now reports in descriptor format too, with its field pointer.
    r = await select(f, Buffer.concat([hdr6(), control({ dSense: true, tst: 1 })]));
    expect(r.sense![0]).toBe(0x72);
    expect(senseOf(r)).toEqual(INVALID_FIELD_IN_PARAMETER_LIST);
    expect(fieldPointer(r)).toEqual({ inCdb: false, byte: 6, bit: 5 });

    good(await select(f, Buffer.concat([hdr6(), control()])));
    expect((await submit(f, READ16_OOB)).sense![0]).toBe(0x70);
  });
});

describe('MODE SELECT: changes and their effects', () => {
  it('SWP write-protects the LU and shows WP in MODE SENSE', async () => {
    const f = setup();
    good(await select(f, Buffer.concat([hdr6(), control({ swp: true })])));
    expect(f.lu.writeProtected).toBe(true);
    expect(senseOf(await submit(f, [0x2a, 0, 0, 0, 0, 0, 0, 0, 1, 0], { dataOut: Buffer.alloc(512) }))).toEqual([0x7, 0x27, 0x00]);
    expect(good(await submit(f, [0x1a, 0x08, 0x0a, 0, 255, 0]))[2] & 0x80).toBe(0x80);
  });

  it('WCE and several pages in one parameter list (MODE SELECT(10))', async () => {
    const f = setup();
    const data = Buffer.concat([hdr10(), caching(false, true), control({ tas: true })]);
    good(await submit(f, sel10(data.length), { dataOut: data }));
    expect(f.lu.settings).toMatchObject({ wce: false, rcd: true, tas: true });
  });

  it('establishes MODE PARAMETERS CHANGED for every other nexus, not the sender', async () => {
    const f = setup();
    const other = makeNexus({ isid: '23d000000002' });
    f.target.nexusUp(other);
    f.lu.ua.forget(other.key);
    good(await select(f, Buffer.concat([hdr6(), caching(false)])));
    expect(senseOf(await submit(f, [0, 0, 0, 0, 0, 0], { nexus: other }))).toEqual([0x6, 0x2a, 0x01]);
    good(await submit(f, [0, 0, 0, 0, 0, 0]));
  });

  it('no UA when nothing changed', async () => {
    const f = setup();
    const other = makeNexus({ isid: '23d000000002' });
    f.target.nexusUp(other);
    f.lu.ua.forget(other.key);
    good(await select(f, Buffer.concat([hdr6(), caching(true)])));
    expect(f.lu.ua.peek(other.key)).toBeUndefined();
  });

  it('accepts what MODE SENSE returned, PS bit and all (the libiscsi set_swp round trip)', async () => {
    const f = setup();
    const sensed = good(await submit(f, [0x1a, 0x00, 0x3f, 0, 255, 0]));
    sensed[0] = 0;
    good(await select(f, sensed));
  });

  it('accepts a block descriptor that restates the capacity and block length', async () => {
    const f = setup();
    const bd = Buffer.from([0, 0, 0x08, 0, 0, 0, 0x02, 0]);
    good(await select(f, Buffer.concat([hdr6(8), bd, caching(true)])));
    const zero = Buffer.from([0, 0, 0, 0, 0, 0, 0x02, 0]);
    good(await select(f, Buffer.concat([hdr6(8), zero])));
    const r = await select(f, Buffer.concat([hdr6(8), Buffer.from([0, 0, 0, 0, 0, 0, 0x10, 0])]));
    expect(senseOf(r)).toEqual(INVALID_FIELD_IN_PARAMETER_LIST);
    expect(fieldPointer(r)?.byte).toBe(9);
  });

  it('a parameter list length of zero is GOOD and changes nothing', async () => {
    const f = setup();
    const r = await submit(f, sel6(0));
    expect(r.status).toBe(ScsiStatus.Good);
  });
});

describe('MODE SELECT: errors', () => {
  it('SP=1 and PF=0 are INVALID FIELD IN CDB', async () => {
    const f = setup();
    const data = Buffer.concat([hdr6(), caching(true)]);
    let r = await submit(f, sel6(data.length, true, true), { dataOut: data });
    expect(senseOf(r)).toEqual(INVALID_FIELD_IN_CDB);
    expect(fieldPointer(r)).toEqual({ inCdb: true, byte: 1, bit: 0 });
    r = await submit(f, sel6(data.length, false), { dataOut: data });
    expect(senseOf(r)).toEqual(INVALID_FIELD_IN_CDB);
    expect(fieldPointer(r)).toEqual({ inCdb: true, byte: 1, bit: 4 });
  });

  it('a non-changeable bit is INVALID FIELD IN PARAMETER LIST, pointing at it; nothing is applied', async () => {
    const f = setup();
    const c = caching(false);
    c[2] |= 0x80; // IC
    const r = await select(f, Buffer.concat([hdr6(), control({ dSense: true }), c]));
    expect(senseOf(r)).toEqual(INVALID_FIELD_IN_PARAMETER_LIST);
    expect(fieldPointer(r)).toEqual({ inCdb: false, byte: 4 + 12 + 2, bit: 7 });
    expect(f.lu.settings.dSense).toBe(false);
    expect(f.lu.settings.wce).toBe(true);
  });

  it('unknown page, wrong page length, subpage format', async () => {
    const f = setup();
    let r = await select(f, Buffer.concat([hdr6(), Buffer.from([0x19, 0x06, 0, 0, 0, 0, 0, 0])]));
    expect(senseOf(r)).toEqual(INVALID_FIELD_IN_PARAMETER_LIST);
    expect(fieldPointer(r)?.byte).toBe(4);
    const c = control();
    c[1] = 0x08;
    r = await select(f, Buffer.concat([hdr6(), c.subarray(0, 10)]));
    expect(senseOf(r)).toEqual(INVALID_FIELD_IN_PARAMETER_LIST);
    expect(fieldPointer(r)?.byte).toBe(5);
    r = await select(f, Buffer.concat([hdr6(), Buffer.from([0x4a, 0x01, 0x00, 0x1c]), Buffer.alloc(28)]));
    expect(senseOf(r)).toEqual(INVALID_FIELD_IN_PARAMETER_LIST);
    expect(fieldPointer(r)).toEqual({ inCdb: false, byte: 4, bit: 6 });
  });

  it('MRIE outside 0-6 is INVALID FIELD IN PARAMETER LIST', async () => {
    const f = setup();
    const iec = Buffer.from([0x1c, 0x0a, 0x08, 0x07, 0, 0, 0, 0, 0, 0, 0, 0]);
    const r = await select(f, Buffer.concat([hdr6(), iec]));
    expect(senseOf(r)).toEqual(INVALID_FIELD_IN_PARAMETER_LIST);
    expect(fieldPointer(r)?.byte).toBe(7);
    iec[3] = 0x06;
    good(await select(f, Buffer.concat([hdr6(), iec])));
    expect(good(await submit(f, [0x1a, 0x08, 0x1c, 0, 255, 0]))[7]).toBe(0x06);
  });

  it('truncated lists: PARAMETER LIST LENGTH ERROR', async () => {
    const f = setup();
    expect(senseOf(await select(f, Buffer.from([0, 0])))).toEqual([0x5, 0x1a, 0x00]);
    expect(senseOf(await select(f, Buffer.concat([hdr6(), control().subarray(0, 8)])))).toEqual([0x5, 0x1a, 0x00]);
    expect(senseOf(await select(f, Buffer.concat([hdr6(8), Buffer.alloc(4)])))).toEqual([0x5, 0x1a, 0x00]);
    // The CDB asks for more than the initiator sent.
    expect(senseOf(await submit(f, sel6(16), { dataOut: hdr6() }))).toEqual([0x5, 0x1a, 0x00]);
  });

  it('a bad BLOCK DESCRIPTOR LENGTH points at its field', async () => {
    const f = setup();
    let r = await select(f, Buffer.concat([hdr6(4), Buffer.alloc(4)]));
    expect(senseOf(r)).toEqual(INVALID_FIELD_IN_PARAMETER_LIST);
    expect(fieldPointer(r)?.byte).toBe(3);
    const data = Buffer.concat([hdr10(8, true), Buffer.alloc(8)]);
    r = await submit(f, sel10(data.length), { dataOut: data });
    expect(fieldPointer(r)?.byte).toBe(6);
  });
});
