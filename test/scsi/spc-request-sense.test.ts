/** REQUEST SENSE (SPC-5 §6.39): pending UAs as parameter data, readiness, DESC. */
import { describe, expect, it } from 'vitest';
import { good, kcq, makeNexus, setup, submit } from './spc-fixture.ts';

const requestSense = (desc: number, alloc = 252) => [0x03, desc, 0, 0, alloc, 0];

describe('REQUEST SENSE', () => {
  it('returns NO SENSE in fixed format when nothing is pending', async () => {
    const d = good(await submit(setup(), requestSense(0)));
    expect(d.length).toBe(18);
    expect(d[0]).toBe(0x70);
    expect(kcq(d)).toEqual([0, 0, 0]);
  });

  it('returns descriptor format with DESC=1', async () => {
    const d = good(await submit(setup(), requestSense(1)));
    expect(d.toString('hex')).toBe('7200000000000000');
  });

  it('returns a pending UA as parameter data and clears it (SPC-5 §6.39.2)', async () => {
    const f = setup();
    const n = makeNexus({ isid: '23d000000002' });
    f.target.nexusUp(n);
    const d = good(await submit(f, requestSense(0), { nexus: n }));
    expect(kcq(d)).toEqual([0x6, 0x29, 0x00]);
    expect(kcq(good(await submit(f, requestSense(0), { nexus: n })))).toEqual([0, 0, 0]);
    good(await submit(f, [0, 0, 0, 0, 0, 0], { nexus: n }));
  });

  it('reports NOT READY when stopped, MEDIUM NOT PRESENT when ejected', async () => {
    const f = setup({ removable: true });
    f.lu.started = false;
    expect(kcq(good(await submit(f, requestSense(0))))).toEqual([0x2, 0x04, 0x02]);
    f.lu.mediumPresent = false;
    expect(kcq(good(await submit(f, requestSense(1))))).toEqual([0x2, 0x3a, 0x00]);
  });

  it('truncates to ALLOCATION LENGTH', async () => {
    expect(good(await submit(setup(), requestSense(0, 8))).length).toBe(8);
  });

  it('answers an absent LUN with LOGICAL UNIT NOT SUPPORTED as data', async () => {
    expect(kcq(good(await submit(setup(), requestSense(0), { lun: 5 })))).toEqual([0x5, 0x25, 0x00]);
  });
});
