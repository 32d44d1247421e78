/** TEST UNIT READY (SPC-5 §6.47): readiness, unit attentions, reservations. */
import { describe, expect, it } from 'vitest';
import { ScsiStatus } from '../../src/scsi/types.ts';
import { good, makeNexus, senseOf, setup, submit } from './spc-fixture.ts';

const TUR = [0, 0, 0, 0, 0, 0];

describe('TEST UNIT READY', () => {
  it('is GOOD with no data on a started LU', async () => {
    const r = await submit(setup(), TUR);
    expect(r.status).toBe(ScsiStatus.Good);
    expect(r.data).toBeNull();
  });

  it('reports NOT READY, INITIALIZING COMMAND REQUIRED when stopped', async () => {
    const f = setup();
    f.lu.started = false;
    expect(senseOf(await submit(f, TUR))).toEqual([0x2, 0x04, 0x02]);
  });

  it('reports MEDIUM NOT PRESENT when the medium is ejected', async () => {
    const f = setup({ removable: true });
    f.lu.mediumPresent = false;
    expect(senseOf(await submit(f, TUR))).toEqual([0x2, 0x3a, 0x00]);
  });

  it('reports a pending unit attention once, then GOOD', async () => {
    const f = setup();
    const n = makeNexus({ isid: '23d000000002' });
    f.target.nexusUp(n);
    expect(senseOf(await submit(f, TUR, { nexus: n }))).toEqual([0x6, 0x29, 0x00]);
    good(await submit(f, TUR, { nexus: n }));
  });

  it('is not blocked by another nexus holding a RESERVE(6)', async () => {
    const f = setup();
    const n = makeNexus({ isid: '23d000000002' });
    f.target.nexusUp(n);
    f.lu.ua.forget(n.key);
    good(await submit(f, [0x16, 0, 0, 0, 0, 0], { nexus: n }));
    good(await submit(f, TUR));
  });
});
