/**
 * The quorum witness end to end, over TCP on loopback: the witness runs as its own process
 * (`arraysim witness`), the two arrays in this process (test/replication/pair.ts). HPE Remote
 * Copy Active Sync paper, "Active Sync failure scenarios": a primary array failure with a quorum
 * witness fails the group over to the secondary; without a witness it does not; a replication
 * link failure with the witness reachable keeps the primary serving and makes the secondary's
 * paths unavailable (04/0C); an array that loses both the link and the witness goes Failsafe.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ArrayEvent } from '../../src/events.ts';
import { block, senseOf, settled, startPair, until } from './pair.ts';
import type { Pair } from './pair.ts';
import { startWitness } from './witness-process.ts';
import type { WitnessProcess } from './witness-process.ts';

let witness: WitnessProcess;
let pair: Pair | null = null;

// A witness of its own for each test: it remembers owners and epochs of group rcg1, and each test's pair is new.
beforeEach(async () => { witness = await startWitness(); }, 90_000);
afterEach(async () => {
  await pair?.close();
  pair = null;
  expect(await witness.stop()).toBe(0); // SIGTERM: a clean stop
});

const W = () => ({ host: witness.host, port: witness.port });
/** Why a grant did not come, for a failure message: the witness's decisions and B's view. */
const explain = () => `witness: ${witness.log().split('\n').filter((l) => /owner|granted/.test(l)).slice(-5).join(' | ')}; B: ${JSON.stringify(pair?.gb.machine.witnessReport())} ${JSON.stringify(pair?.gb.snapshot().witness)}`;
const inTouch = (p: Pair) => until(() => !!p.ga.machine.snapshot().witness?.reachable && !!p.gb.machine.snapshot().witness?.reachable && p.ga.machine.snapshot().witness?.owner === 'site-a', 'both arrays in touch with the witness, site-a owner', 15_000);

describe('quorum witness', () => {
  it('primary array failure: the witness grants the secondary a failover and it serves writes (Primary-Rev)', async () => {
    pair = await startPair({ witness: W() });
    await inTouch(pair);
    const db = await pair.open('B');
    expect(senseOf(await settled(() => db.write(10n, block('before the failure'))))).toBe('good');
    const events: ArrayEvent[] = [];
    pair.b.events.subscribe((e) => events.push(e));
    await pair.synced();
    await until(() => pair!.ga.machine.snapshot().witness?.recorded === 'Synced' && pair!.gb.machine.snapshot().witness?.recorded === 'Synced', 'the witness records both Synced', 10_000);
    await pair.stop('A');
    await until(() => pair!.gb.role === 'primary', 'B failed over', 20_000).catch((e) => { throw new Error(`${e.message}; ${explain()}`); });
    expect(pair.gb.snapshot()).toMatchObject({ role: 'primary', roleName: 'Primary-Rev', epoch: 1, serving: true, witness: { owner: 'site-b', epoch: 1 } });
    expect(events).toContainEqual(expect.objectContaining({ type: 'rcopy.failover', group: 'rcg1', from: 'secondary', to: 'primary', epoch: 1 }));
    // The host's writes through B go on (after the unit attention of the ALUA change).
    expect(senseOf(await settled(() => db.write(11n, block('after the failover'))))).toBe('good');
    const r = await settled(() => db.read(10n, 2));
    expect(r.kind === 'good' && r.value.equals(Buffer.concat([block('before the failure'), block('after the failover')]))).toBe(true);
    expect(witness.log()).toMatch(/failover granted/);
  }, 60_000);

  it('without a witness the secondary does not fail over when the primary fails: its paths answer 04/0C', async () => {
    pair = await startPair();
    const db = await pair.open('B');
    await pair.stop('A');
    await until(() => pair!.gb.machine.link === 'down', 'B sees the link down');
    // Longer than the witness's fail timeout (2.5 s) would be: nothing grants it.
    await new Promise((r) => setTimeout(r, 4000));
    expect(pair.gb.snapshot()).toMatchObject({ role: 'secondary', status: 'Stopped', serving: false, witness: null });
    expect(senseOf(await settled(() => db.write(0n, block('refused'))))).toBe('02/04/0c');
  }, 60_000);

  it('link cut with the witness up: the preferred side (primary) keeps serving, the secondary answers 04/0C and is not failed over; restore resyncs', async () => {
    pair = await startPair({ witness: W() });
    await inTouch(pair);
    const da = await pair.open('A');
    const db = await pair.open('B');
    pair.a.rcopy!.setLink({ action: 'cut' });
    await until(() => pair!.ga.machine.status === 'Stopped' && pair!.gb.machine.status === 'Stopped', 'both Stopped');
    // A writes alone once the witness has recorded that it is no longer Synced.
    await until(() => pair!.ga.machine.serving, 'A serving alone', 10_000);
    expect(senseOf(await settled(() => da.write(20n, block('written during the cut'))))).toBe('good');
    expect(senseOf(await settled(() => db.read(20n, 1)))).toBe('02/04/0c');
    await new Promise((r) => setTimeout(r, 4000)); // past the fail timeout: still a link failure, not an array failure
    expect([pair.ga.role, pair.gb.role, pair.gb.machine.serving]).toEqual(['primary', 'secondary', false]);
    expect(senseOf(await settled(() => db.write(21n, block('refused'))))).toBe('02/04/0c');
    expect(senseOf(await settled(() => da.write(22n, block('still serving'))))).toBe('good');
    pair.a.rcopy!.setLink({ action: 'restore' });
    await until(() => pair!.ga.machine.status === 'Synced' && pair!.gb.machine.status === 'Synced', 'Synced after the resync', 30_000);
    const r = await settled(() => db.read(20n, 3));
    expect(r.kind === 'good' && r.value.subarray(0, 512).equals(block('written during the cut')) && r.value.subarray(1024).equals(block('still serving'))).toBe(true);
  }, 60_000);

  it('an isolated primary (link and witness lost) goes Failsafe; the secondary is granted; when both return the old primary yields, is recovered whole, and restore gives the role back', async () => {
    pair = await startPair({ witness: W() });
    await inTouch(pair);
    const da = await pair.open('A');
    const db = await pair.open('B');
    expect(senseOf(await settled(() => da.write(30n, block('before'))))).toBe('good');
    // The witness must hold the pair as Synced for a grant (a loaded machine can flap the link meanwhile).
    await pair.synced();
    await until(() => pair!.ga.machine.snapshot().witness?.recorded === 'Synced' && pair!.gb.machine.snapshot().witness?.recorded === 'Synced', 'the witness records both Synced', 10_000);
    pair.a.rcopy!.witness!.setCut(true);
    pair.a.rcopy!.setLink({ action: 'cut' });
    await until(() => pair!.ga.machine.status === 'Failsafe', 'A Failsafe', 10_000);
    expect(senseOf(await settled(() => da.write(31n, block('refused'))))).toBe('02/04/0c');
    await until(() => pair!.gb.role === 'primary', 'B granted', 20_000).catch((e) => { throw new Error(`${e.message}; ${explain()}`); });
    expect(senseOf(await settled(() => db.write(32n, block('at B alone'))))).toBe('good');
    // A returns to the witness: it learns B owns the group and yields.
    pair.a.rcopy!.witness!.setCut(false);
    await until(() => pair!.ga.role === 'secondary', 'A yields', 10_000);
    expect(pair.ga.snapshot()).toMatchObject({ roleName: 'Secondary-Rev', status: 'Stopped', serving: false });
    // The link returns: B (auto_recover) replicates back, copying the group whole.
    pair.a.rcopy!.setLink({ action: 'restore' });
    // 64 MiB copied whole: give a loaded machine time.
    await until(() => pair!.ga.machine.status === 'Synced' && pair!.gb.machine.status === 'Synced', 'Synced after the full resync', 60_000);
    expect(pair.gb.stats.resyncBytes).toBeGreaterThanOrEqual(512 * 131072);
    const r = await settled(() => da.read(30n, 3));
    expect(r.kind === 'good' && r.value.subarray(0, 512).equals(block('before')) && r.value.subarray(1024).equals(block('at B alone'))).toBe(true);
    // restore: B hands the primary role back to A over the live link.
    expect(pair.gb.operator({ kind: 'operator', command: { verb: 'restore' } })).toBeNull();
    await until(() => pair!.ga.role === 'primary' && pair!.gb.role === 'secondary', 'roles restored');
    expect([pair.ga.snapshot().roleName, pair.gb.snapshot().roleName]).toEqual(['Primary', 'Secondary']);
    await until(() => pair!.ga.machine.status === 'Synced' && pair!.gb.machine.status === 'Synced', 'Synced after restore');
    expect(senseOf(await settled(() => db.write(33n, block('after restore'))))).toBe('good');
    const back = await settled(() => da.read(33n, 1));
    expect(back.kind === 'good' && back.value.equals(block('after restore'))).toBe(true);
    await until(() => pair!.ga.machine.snapshot().witness?.owner === 'site-a', 'the witness follows the swap', 10_000);
  }, 150_000);
});
