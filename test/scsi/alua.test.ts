/**
 * ALUA model and commands through the LU pipeline: the per-state allow-lists (SPC-5 §5.16.2.4),
 * UA 2A/06 on every affected nexus except the STPG sender, host proximity, transitioning,
 * REPORT TARGET PORT GROUPS in both formats, and SET TARGET PORT GROUPS with its errors.
 */
import { describe, expect, it } from 'vitest';
import { AluaModel } from '../../src/scsi/alua.ts';
import { MemoryStore } from '../../src/store/memory.ts';
import { ScsiTarget } from '../../src/scsi/target.ts';
import {
  INVALID_FIELD_IN_PARAMETER_LIST, TARGET, fieldPointer, good, inquiry, makeNexus, senseOf, submit,
} from './spc-fixture.ts';
import type { Fixture } from './spc-fixture.ts';

const HOST_A = 'iqn.2026-01.test:host-a';
const HOST_B = 'iqn.2026-01.test:host-b';
const READ10 = [0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0];
const TUR = [0, 0, 0, 0, 0, 0];
const REPORT_LUNS = [0xa0, 0, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0];
const MODE_SENSE6 = [0x1a, 0, 0x3f, 0, 0xff, 0];
const rtpg = (extended: boolean) => [0xa3, 0x0a | (extended ? 0x20 : 0), 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0];
const stpgCdb = (len: number) => [0xa4, 0x0a, 0, 0, 0, 0, 0, 0, 0, len, 0, 0];
function stpgData(...d: [tpg: number, state: number][]): Buffer {
  const b = Buffer.alloc(4 + 4 * d.length);
  d.forEach(([tpg, st], i) => { b[4 + 4 * i] = st; b.writeUInt16BE(tpg, 4 + 4 * i + 2); });
  return b;
}

/** A target with groups 1 (port 1) and 2 (port 2), an LU, and nexuses for two hosts on both ports. */
function setupAlua(o: { mode?: 'implicit' | 'explicit' | 'both'; transitionMs?: number; luMode?: 'implicit' | 'explicit' | 'both' } = {}) {
  const target = new ScsiTarget(TARGET);
  const lu = target.addLun({ lun: 0, store: new MemoryStore(2048n), naa: '5001405abcdef012', serial: 'ALUA1', aluaMode: o.luMode });
  const model = AluaModel.build(target, [{ relativeTargetPortId: 1, targetPortGroup: 1 }, { relativeTargetPortId: 2, targetPortGroup: 2 }],
    { mode: o.mode ?? 'both', transitionMs: o.transitionMs ?? 0 });
  target.alua = model;
  const n = {
    a1: makeNexus({ initiator: HOST_A, tpgt: 1 }), a2: makeNexus({ initiator: HOST_A, tpgt: 2 }),
    b1: makeNexus({ initiator: HOST_B, tpgt: 1 }), b2: makeNexus({ initiator: HOST_B, tpgt: 2 }),
  };
  for (const x of Object.values(n)) { target.nexusUp(x); lu.ua.forget(x.key); }
  const f: Fixture = { target, lu, nexus: n.a1 };
  return { f, model, lu, n };
}

/** [state, pref, statusCode, ports] per group from RTPG data. */
function parseRtpg(d: Buffer, extended: boolean) {
  const out: { id: number; state: number; pref: boolean; status: number; ports: number[] }[] = [];
  const end = 4 + d.readUInt32BE(0);
  for (let o = extended ? 8 : 4; o < end;) {
    const ports: number[] = [];
    for (let i = 0; i < d[o + 7]; i++) ports.push(d.readUInt16BE(o + 8 + 4 * i + 2));
    out.push({ id: d.readUInt16BE(o + 2), state: d[o] & 0x0f, pref: !!(d[o] & 0x80), status: d[o + 5], ports });
    o += 8 + 4 * d[o + 7];
  }
  return out;
}

describe('ALUA access states gate commands (SPC-5 §5.16.2.4)', () => {
  const cases: [state: 'standby' | 'unavailable' | 'offline', ascq: number, allowed: number[][], refused: number[][]][] = [
    ['standby', 0x0b, [inquiry(0, 0), REPORT_LUNS, rtpg(false), MODE_SENSE6], [READ10, TUR]],
    ['unavailable', 0x0c, [inquiry(0, 0), REPORT_LUNS, rtpg(false)], [READ10, TUR, MODE_SENSE6]],
    ['offline', 0x12, [inquiry(0, 0), REPORT_LUNS, rtpg(true)], [READ10, TUR, MODE_SENSE6, stpgCdb(8)]],
  ];
  for (const [state, ascq, allowed, refused] of cases) {
    it(`${state}: allow-list answers, media access gets NOT READY 04/${ascq.toString(16)}`, async () => {
      const { f, model, lu, n } = setupAlua();
      await model.transition({ tpg: 1, state, reason: 'test' });
      lu.ua.forget(n.a1.key);
      for (const cdb of allowed) good(await submit(f, cdb));
      for (const cdb of refused) expect(senseOf(await submit(f, cdb, { dataOut: cdb[0] === 0xa4 ? stpgData([1, 0]) : undefined }))).toEqual([0x2, 0x04, ascq]);
      // The other group is untouched.
      lu.ua.forget(n.a2.key);
      good(await submit(f, READ10, { nexus: n.a2 }));
    });
  }

  it('transitioning refuses media access with 04/0A until the transition time has passed', async () => {
    const { f, model, lu, n } = setupAlua({ transitionMs: 60 });
    const done = model.transition({ tpg: 1, state: 'active/non-optimized', reason: 'test' });
    lu.ua.forget(n.a1.key);
    expect(senseOf(await submit(f, READ10))).toEqual([0x2, 0x04, 0x0a]);
    expect(parseRtpg(good(await submit(f, rtpg(true))), true)[0].state).toBe(0xf);
    await done;
    // The end of the transition is a second change: another UA, then the new state.
    expect(senseOf(await submit(f, READ10))).toEqual([0x6, 0x2a, 0x06]);
    good(await submit(f, READ10));
    expect(parseRtpg(good(await submit(f, rtpg(false))), false)[0].state).toBe(0x1);
  });
});

describe('state changes raise UA 2A/06', () => {
  it('on every nexus whose view changed, including other ports', async () => {
    const { f, model, n } = setupAlua();
    await model.transition({ tpg: 2, state: 'standby', reason: 'test' });
    for (const x of Object.values(n)) expect(senseOf(await submit(f, TUR, { nexus: x }))).toEqual([0x6, 0x2a, 0x06]);
    // Reported once.
    good(await submit(f, TUR, { nexus: n.a1 }));
  });

  it('a host-only change reaches only that host', async () => {
    const { f, model, n } = setupAlua();
    await model.transition({ tpg: 1, state: 'active/non-optimized', host: HOST_B, reason: 'proximity' });
    good(await submit(f, TUR, { nexus: n.a1 }));
    good(await submit(f, TUR, { nexus: n.a2 }));
    expect(senseOf(await submit(f, TUR, { nexus: n.b1 }))).toEqual([0x6, 0x2a, 0x06]);
    expect(senseOf(await submit(f, TUR, { nexus: n.b2 }))).toEqual([0x6, 0x2a, 0x06]);
  });
});

describe('host proximity: state is a function of (TPG, initiator)', () => {
  it('two hosts see opposite states through the same groups', async () => {
    const { f, model, n, lu } = setupAlua();
    // host A is near group 1, host B near group 2 (HPE proximity primary/secondary).
    await model.transition({ tpg: 1, state: 'active/non-optimized', host: HOST_B, reason: 'B is remote to 1' });
    await model.transition({ tpg: 2, state: 'active/non-optimized', host: HOST_A, reason: 'A is remote to 2' });
    for (const x of Object.values(n)) lu.ua.forget(x.key);
    const a = parseRtpg(good(await submit(f, rtpg(false), { nexus: n.a1 })), false);
    const b = parseRtpg(good(await submit(f, rtpg(false), { nexus: n.b1 })), false);
    expect(a.map((g) => [g.id, g.state])).toEqual([[1, 0], [2, 1]]);
    expect(b.map((g) => [g.id, g.state])).toEqual([[1, 1], [2, 0]]);
    // A group-wide change replaces overrides; clearing one override restores the default.
    await model.transition({ tpg: 2, state: 'standby', reason: 'group-wide' });
    expect(model.stateFor(2, HOST_A)).toBe('standby');
    await model.transition({ tpg: 1, state: 'active/optimized', host: HOST_B, clearHost: true, reason: 'x' });
    expect(model.stateFor(1, HOST_B)).toBe('active/optimized');
  });

  it('YAML-style config builds groups, states, preference and overrides', () => {
    const target = new ScsiTarget(TARGET);
    const m = AluaModel.build(target, [{ relativeTargetPortId: 1, targetPortGroup: 10 }, { relativeTargetPortId: 2, targetPortGroup: 20 }, { relativeTargetPortId: 3, targetPortGroup: 20 }], {
      mode: 'implicit', transitionMs: 2000,
      groups: [{ id: 10, state: 'ao', preferred: true, hosts: { [HOST_B]: 'ano' } }, { id: 20, state: 'standby' }],
    });
    expect(m.toJSON()).toMatchObject({
      mode: 'implicit', transitionMs: 2000,
      groups: [{ id: 10, state: 'active/optimized', preferred: true, ports: [1], hosts: { [HOST_B]: 'active/non-optimized' } },
        { id: 20, state: 'standby', preferred: false, ports: [2, 3] }],
    });
  });
});

describe('REPORT TARGET PORT GROUPS', () => {
  it('length-only and extended formats, supported states, ports, preference, status code', async () => {
    const { f, model, lu, n } = setupAlua({ transitionMs: 0 });
    model.transitionMs = 3000;
    await model.transition({ tpg: 2, state: 'standby', preferred: true, transitionMs: 0, reason: 'test' });
    lu.ua.forget(n.a1.key);
    const short = good(await submit(f, rtpg(false)));
    expect(short.readUInt32BE(0)).toBe(short.length - 4);
    expect(short.length).toBe(4 + 2 * 12);
    const long = good(await submit(f, rtpg(true)));
    expect(long[4] >> 4).toBe(1); // FORMAT TYPE 001b
    expect(long[7]).toBe(3); // IMPLICIT TRANSITION TIME, seconds
    const groups = parseRtpg(long, true);
    expect(groups).toEqual([
      { id: 1, state: 0, pref: false, status: 0, ports: [1] },
      { id: 2, state: 2, pref: true, status: 2, ports: [2] }, // altered implicitly
    ]);
    expect(long[8 + 1]).toBe(0xcf); // T_SUP O_SUP U_SUP S_SUP AN_SUP AO_SUP
  });

  it('INQUIRY TPGS follows the LU mode', async () => {
    for (const [mode, bits] of [['implicit', 1], ['explicit', 2], ['both', 3]] as const) {
      const { f } = setupAlua({ luMode: mode });
      expect((good(await submit(f, inquiry(0, 0)))[5] >> 4) & 3).toBe(bits);
    }
  });
});

describe('SET TARGET PORT GROUPS (SPC-5 §6.42)', () => {
  it('changes the group for everyone, with UA to all but the sender and status "altered by STPG"', async () => {
    const { f, model, n } = setupAlua();
    good(await submit(f, stpgCdb(8), { dataOut: stpgData([2, 0x2]) }));
    expect(model.stateFor(2, HOST_B)).toBe('standby');
    good(await submit(f, TUR, { nexus: n.a1 })); // sender: no UA
    expect(senseOf(await submit(f, TUR, { nexus: n.b1 }))).toEqual([0x6, 0x2a, 0x06]);
    expect(senseOf(await submit(f, TUR, { nexus: n.a2 }))).toEqual([0x6, 0x2a, 0x06]);
    expect(parseRtpg(good(await submit(f, rtpg(false))), false)[1].status).toBe(1);
  });

  it('waits for the transition to finish', async () => {
    const { f, model } = setupAlua({ transitionMs: 50 });
    const t0 = Date.now();
    good(await submit(f, stpgCdb(8), { dataOut: stpgData([2, 0x1]) }));
    expect(Date.now() - t0).toBeGreaterThanOrEqual(45);
    expect(model.stateFor(2, HOST_A)).toBe('active/non-optimized');
  });

  it('a host with a proximity override moves only its own view', async () => {
    const { f, model } = setupAlua();
    await model.transition({ tpg: 2, state: 'active/non-optimized', host: HOST_A, reason: 'proximity' });
    f.lu.ua.forget(f.nexus.key);
    good(await submit(f, stpgCdb(8), { dataOut: stpgData([2, 0x2]) }));
    expect(model.stateFor(2, HOST_A)).toBe('standby');
    expect(model.stateFor(2, HOST_B)).toBe('active/optimized');
  });

  it('refuses offline, transitioning, reserved codes and unknown groups, changing nothing', async () => {
    const { f, model } = setupAlua();
    for (const [data, byte] of [[stpgData([1, 0x1], [2, 0xe]), 8], [stpgData([2, 0xf]), 4], [stpgData([2, 0x5]), 4], [stpgData([1, 0x2], [9, 0x2]), 10]] as const) {
      const r = await submit(f, stpgCdb(data.length), { dataOut: data });
      expect(senseOf(r)).toEqual(INVALID_FIELD_IN_PARAMETER_LIST);
      expect(fieldPointer(r)).toMatchObject({ inCdb: false, byte });
    }
    expect(model.stateFor(1, HOST_A)).toBe('active/optimized');
    expect(model.stateFor(2, HOST_A)).toBe('active/optimized');
    expect(senseOf(await submit(f, stpgCdb(6), { dataOut: Buffer.alloc(6) }))).toEqual([0x5, 0x1a, 0x00]);
    good(await submit(f, stpgCdb(0)));
  });

  it('is accepted in standby and unavailable, and is not a command of implicit-only LUs', async () => {
    const { f, model, lu, n } = setupAlua();
    await model.transition({ tpg: 1, state: 'unavailable', reason: 'test' });
    lu.ua.forget(n.a1.key);
    good(await submit(f, stpgCdb(8), { dataOut: stpgData([1, 0x0]) }));
    expect(model.stateFor(1, HOST_A)).toBe('active/optimized');
    const imp = setupAlua({ luMode: 'implicit' });
    expect(senseOf(await submit(imp.f, stpgCdb(8), { dataOut: stpgData([1, 0x1]) }))).toEqual([0x5, 0x20, 0x00]);
  });
});
