/**
 * LOGICAL UNIT RESET and SPC-2 RESERVE/RELEASE on a replicated volume, two arrays over TCP on
 * loopback (README "Peer replication", persistent reservations). Both arrays present one logical
 * unit, so a reset through either array reaches every I_T nexus of both (SAM-5 §6.6: the unit
 * attention 29/03, the tasks aborted, the RESERVE cleared), and a RESERVE(6) taken through one
 * array keeps the other nexuses out through both (SPC-2 §5.5.1). The negative control turns off
 * the shipping of reservation state at the primary and checks that the same assertions fail.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { TmfFunction, TmfResponse } from '../../protocol/iscsi/pdu.ts';
import type { ScsiDevice } from '../../src/initiator/index.ts';
import { prHooks } from '../../src/replication/pr-replication.ts';
import { block, senseOf, settled, startPair, until } from './pair.ts';
import type { Pair } from './pair.ts';
import { hosts, NODE1 } from './pr-host.ts';

let pair: Pair | null = null;
afterEach(async () => { prHooks.skipReplication = false; await pair?.close(); pair = null; });

const lunReset = (d: ScsiDevice): Promise<number> => d.session.taskManagement(TmfFunction.LogicalUnitReset, d.lun);

/** The unit attentions a path reports until TEST UNIT READY is GOOD, as libiscsi's MultipathIO.Reset counts them (asc/ascq). */
async function unitAttentions(d: ScsiDevice): Promise<string[]> {
  const { unitAttentions: uas, last } = await d.clearUnitAttentions();
  expect(senseOf(last)).toBe('good');
  return uas.map((s) => `${s.asc.toString(16).padStart(2, '0')}/${s.ascq.toString(16).padStart(2, '0')}`);
}

describe('LOGICAL UNIT RESET on a replicated volume reaches both arrays', () => {
  for (const via of ['A', 'B'] as const) {
    it(`a reset through ${via} gives every I_T nexus of both arrays BUS DEVICE RESET FUNCTION OCCURRED (29/03) before FUNCTION COMPLETE`, async () => {
      pair = await startPair();
      const h = await hosts(pair);
      expect(await lunReset(via === 'A' ? h.a1 : h.b1)).toBe(TmfResponse.FunctionComplete);
      for (const d of [h.a1, h.b1, h.a2, h.b2]) expect(await unitAttentions(d)).toContain('29/03');
    });
  }

  it('the libiscsi MultipathIO.Reset sequence (reset through each path in turn, every path reports a unit attention) passes', async () => {
    pair = await startPair();
    const paths = [await pair.open('A', NODE1), await pair.open('B', NODE1)];
    for (const r of paths) {
      expect(await unitAttentions(r)).toEqual([]);
      expect(await lunReset(r)).toBe(TmfResponse.FunctionComplete);
      for (const p of paths) expect((await unitAttentions(p)).length).toBeGreaterThan(0);
    }
  });

  it('a reset through B aborts a task in flight on array A (it ends without status, TAS=0)', async () => {
    pair = await startPair();
    const h = await hosts(pair);
    expect(senseOf(await settled(() => h.a1.write(40n, block('warm up'))))).toBe('good');
    // 400 ms on A's side of the link: node 1's write through A waits that long for B's ack, and is in flight when the reset arrives.
    pair.a.rcopy!.setLink({ latencyMs: 400 });
    let outcome = 'pending';
    const w = h.a1.write(41n, block('node1 in flight'), { timeoutMs: 3000 }).then((r) => { outcome = senseOf(r); }, (e: Error) => { outcome = `no status (${e.message.includes('timed out') ? 'timed out' : e.message})`; });
    await until(() => pair!.ga.machine.inFlight > 0, 'the write in flight at A');
    expect(await lunReset(h.b2)).toBe(TmfResponse.FunctionComplete);
    pair.a.rcopy!.setLink({ action: 'restore' });
    await w;
    expect(outcome).toBe('no status (timed out)');
  });

  it('a reset through A clears a RESERVE(6) taken through B, on both arrays', async () => {
    pair = await startPair();
    const h = await hosts(pair);
    expect(senseOf(await settled(() => h.b1.reserve6()))).toBe('good');
    expect(senseOf(await settled(() => h.a2.write(60n, block('node2 via A, reserved'))))).toBe('RESERVATION CONFLICT');
    expect(await lunReset(h.a2)).toBe(TmfResponse.FunctionComplete);
    expect(senseOf(await settled(() => h.b2.write(60n, block('node2 via B after the reset'))))).toBe('good');
    expect(senseOf(await settled(() => h.a2.write(61n, block('node2 via A after the reset'))))).toBe('good');
  });

  it('a TARGET WARM RESET through B (libiscsi Reserve6.TargetWarmReset) resets the LU on both arrays: the RESERVE taken through B is gone at A too', async () => {
    pair = await startPair();
    const h = await hosts(pair);
    expect(senseOf(await settled(() => h.b1.reserve6()))).toBe('good');
    expect(await h.b1.session.taskManagement(TmfFunction.TargetWarmReset, 0)).toBe(TmfResponse.FunctionComplete);
    expect(await unitAttentions(h.a2)).toContain('29/03');
    expect(senseOf(await settled(() => h.b2.reserve6()))).toBe('good');
    expect(senseOf(await settled(() => h.a1.write(62n, block('node1 via A, B holds'))))).toBe('RESERVATION CONFLICT');
  });
});

describe('SPC-2 RESERVE/RELEASE on a replicated volume: one holder through both arrays', () => {
  it('a RESERVE(6) through one array keeps every other I_T nexus out through both; RELEASE through the holder frees both', async () => {
    pair = await startPair();
    const h = await hosts(pair);
    expect(senseOf(await settled(() => h.b1.reserve6()))).toBe('good');
    // SPC-2 §5.5.1: the reservation belongs to the I_T nexus, so node 1's own path through A is kept out too.
    for (const d of [h.a1, h.a2, h.b2]) expect(senseOf(await settled(() => d.write(70n, block('not the holder'))))).toBe('RESERVATION CONFLICT');
    expect(senseOf(await settled(() => h.b1.write(70n, block('the holder'))))).toBe('good');
    // Another nexus reserving conflicts through either array, and a PR OUT conflicts while a RESERVE is held.
    expect(senseOf(await settled(() => h.a2.reserve6()))).toBe('RESERVATION CONFLICT');
    expect(senseOf(await settled(() => h.b2.reserve6()))).toBe('RESERVATION CONFLICT');
    expect(senseOf(await settled(() => h.a2.readKeys()))).toBe('RESERVATION CONFLICT');
    // RELEASE from a nexus that does not hold it: GOOD, and nothing changes (SPC-2 §7.23).
    expect(senseOf(await settled(() => h.a1.release6()))).toBe('good');
    expect(senseOf(await settled(() => h.a2.write(70n, block('still not the holder'))))).toBe('RESERVATION CONFLICT');
    expect(senseOf(await settled(() => h.b1.release6()))).toBe('good');
    for (const d of [h.a1, h.a2, h.b2]) expect(senseOf(await settled(() => d.write(71n, block('released'))))).toBe('good');
    // And the other way round: a holder through A keeps B's nexuses out.
    expect(senseOf(await settled(() => h.a2.reserve6()))).toBe('good');
    expect(senseOf(await settled(() => h.b2.write(72n, block('node2 via B'))))).toBe('RESERVATION CONFLICT');
    expect(senseOf(await settled(() => h.b1.write(72n, block('node1 via B'))))).toBe('RESERVATION CONFLICT');
    expect(senseOf(await settled(() => h.a2.write(72n, block('node2 via A, the holder'))))).toBe('good');
  });

  it('the holder\'s I_T nexus going away (logout through B) frees the reservation on both arrays', async () => {
    pair = await startPair();
    const h = await hosts(pair);
    expect(senseOf(await settled(() => h.b1.reserve6()))).toBe('good');
    expect(senseOf(await settled(() => h.a2.write(80n, block('reserved'))))).toBe('RESERVATION CONFLICT');
    await h.b1.close();
    await until(() => pair!.ga.volumes[0].reservations.legacyHolder === null, 'the RESERVE gone at A');
    expect(senseOf(await settled(() => h.a2.write(80n, block('after the holder left'))))).toBe('good');
  });

  it('negative control: with the primary not shipping reservation state, a RESERVE through A is not seen through B, nor a reset through A', async () => {
    pair = await startPair();
    const h = await hosts(pair);
    prHooks.skipReplication = true;
    expect(senseOf(await settled(() => h.a1.reserve6()))).toBe('good');
    expect(senseOf(await settled(() => h.b2.write(90n, block('node2 via B'))))).toBe('good');
    expect(await lunReset(h.a2)).toBe(TmfResponse.FunctionComplete);
    expect(await unitAttentions(h.a1)).toContain('29/03');
    expect(await unitAttentions(h.b1)).toEqual([]);
  });
});
