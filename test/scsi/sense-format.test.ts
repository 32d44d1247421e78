/**
 * Sense data format follows the Control mode page D_SENSE bit (SPC-5 §4.4.1, §7.5.8) for every
 * CHECK CONDITION the LU pipeline reports: command errors, unit attentions, field pointers.
 */
import { describe, expect, it } from 'vitest';
import { fieldPointer, good, makeNexus, senseOf, setup, submit } from './spc-fixture.ts';

const setDSense = (on: boolean) => Buffer.from([0, 0, 0, 0, 0x0a, 0x0a, on ? 0x04 : 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
const modeSelect = (data: Buffer) => [0x15, 0x10, 0, 0, data.length, 0];

describe('sense format after MODE SELECT sets D_SENSE', () => {
  it('INVALID FIELD IN CDB: fixed 18 bytes with SKSV, then 72h with a sense-key-specific descriptor', async () => {
    const f = setup();
    let r = await submit(f, [0x12, 0, 0x80, 0, 96, 0]);
    expect(r.sense!.toString('hex')).toBe('700005000000000a00000000240000c00002');
    good(await submit(f, modeSelect(setDSense(true)), { dataOut: setDSense(true) }));
    r = await submit(f, [0x12, 0, 0x80, 0, 96, 0]);
    expect(r.sense!.toString('hex')).toBe('7205240000000008' + '02060000c0000200');
    expect(fieldPointer(r)).toEqual({ inCdb: true, byte: 2, bit: undefined });
  });

  it('a unit attention for another nexus is reported in descriptor format too', async () => {
    const f = setup();
    const other = makeNexus({ isid: '23d000000002' });
    f.target.nexusUp(other);
    f.lu.ua.forget(other.key);
    good(await submit(f, modeSelect(setDSense(true)), { dataOut: setDSense(true) }));
    const r = await submit(f, [0, 0, 0, 0, 0, 0], { nexus: other });
    expect(r.sense!.toString('hex')).toBe('72062a0100000000');
    expect(senseOf(r)).toEqual([0x6, 0x2a, 0x01]);
  });

  it('REQUEST SENSE still follows its own DESC bit, not D_SENSE', async () => {
    const f = setup();
    good(await submit(f, modeSelect(setDSense(true)), { dataOut: setDSense(true) }));
    expect(good(await submit(f, [0x03, 0, 0, 0, 252, 0]))[0]).toBe(0x70);
  });
});
