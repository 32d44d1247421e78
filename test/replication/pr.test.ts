/**
 * Persistent reservations on a replicated volume, two arrays over TCP on loopback (README "Peer
 * replication", persistent reservations): one PR state through either array, one holder enforced
 * on both, PRGENERATION equal, the state carried by a resync and kept by a failover. The negative
 * control turns off the shipping of PR OUT at the primary and checks that the same assertions fail.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { PrinAction, ProutAction, PrType } from '../../protocol/scsi/pr.ts';
import type { ScsiDevice } from '../../src/initiator/index.ts';
import { prHooks } from '../../src/replication/pr-replication.ts';
import { block, senseOf, settled, startPair, until } from './pair.ts';
import type { Pair } from './pair.ts';
import { fullStatus, hosts, K1, K2, keys, out, reservation } from './pr-host.ts';

let pair: Pair | null = null;
afterEach(async () => { prHooks.skipReplication = false; await pair?.close(); pair = null; });

/** What a host sees of the PR state through one array, all four PR IN service actions. */
async function view(d: ScsiDevice): Promise<unknown> {
  const caps = await settled(() => d.persistentReserveIn(PrinAction.ReportCapabilities));
  return { keys: await keys(d), reservation: await reservation(d), full: await fullStatus(d), caps: caps.kind === 'good' ? caps.value.toString('hex') : senseOf(caps) };
}

/**
 * Node 1 registers through A with ALL_TG_PT=1 (SPC-5 §5.14.7: one registration for its initiator
 * port on every target port, array B's included) and reserves Write Exclusive; node 2 registers
 * through B only, for that one I_T nexus.
 */
async function setUp(h: Awaited<ReturnType<typeof hosts>>): Promise<void> {
  expect(await out(h.a1, ProutAction.Register, { saKey: K1, allTgPt: true })).toBe('good');
  expect(await out(h.b2, ProutAction.RegisterAndIgnoreExistingKey, { saKey: K2 })).toBe('good');
  expect(await out(h.a1, ProutAction.Reserve, { key: K1, type: PrType.WriteExclusive })).toBe('good');
}

describe('persistent reservations replicated between two arrays', () => {
  it('registrations and the reservation are the same through both arrays, PRGENERATION included', async () => {
    pair = await startPair();
    const h = await hosts(pair);
    await setUp(h);
    const [va, vb] = [await view(h.a2), await view(h.b2)];
    expect(va).toEqual(vb);
    expect(va).toMatchObject({
      keys: { generation: 2, keys: ['1111', '2222'] },
      reservation: '2:1111/type1',
      // The nexus identity is the initiator port and the target port: relative port 1 is array A's, 2 array B's.
      full: ['1111 port0 all holder iqn.1994-05.com.example:node1', '2222 port2 iqn.1994-05.com.example:node2'],
    });
    // Node 2 changes its key through B (REGISTER with its current key): PRGENERATION moves on both arrays.
    expect(await out(h.b2, ProutAction.Register, { key: K2, saKey: 0x2223n })).toBe('good');
    expect(await fullStatus(h.a1)).toEqual(['1111 port0 all holder iqn.1994-05.com.example:node1', '2223 port2 iqn.1994-05.com.example:node2']);
    expect((await keys(h.a1)).generation).toBe(3);
    expect(await view(h.b1)).toEqual(await view(h.a1));
  });

  it('the holder is enforced on both arrays: a registrant that does not hold a Write Exclusive reservation gets RESERVATION CONFLICT through either', async () => {
    pair = await startPair();
    const h = await hosts(pair);
    await setUp(h);
    expect(senseOf(await settled(() => h.b2.write(10n, block('node2 via B'))))).toBe('RESERVATION CONFLICT');
    expect(senseOf(await settled(() => h.a2.write(10n, block('node2 via A'))))).toBe('RESERVATION CONFLICT');
    // The holder (its ALL_TG_PT registration covers its nexus through B too) writes through both arrays.
    expect(senseOf(await settled(() => h.a1.write(10n, block('node1 via A'))))).toBe('good');
    expect(senseOf(await settled(() => h.b1.write(11n, block('node1 via B'))))).toBe('good');
    // Write Exclusive: everyone reads.
    expect(senseOf(await settled(() => h.b2.read(10n, 1)))).toBe('good');
    // RELEASE through B (node 1's path there, same key): gone on both.
    expect(await out(h.b1, ProutAction.Release, { key: K1, type: PrType.WriteExclusive })).toBe('good');
    expect(await reservation(h.a2)).toBe('2:none');
    expect(senseOf(await settled(() => h.a2.write(10n, block('node2 via A'))))).toBe('good');
  });

  it('PR OUT through the secondary is executed by the primary: its errors come back as the primary decided them', async () => {
    pair = await startPair();
    const h = await hosts(pair);
    await setUp(h);
    // REGISTER with a wrong key from a registered nexus: RESERVATION CONFLICT (SPC-5 §5.14.7).
    expect(await out(h.b2, ProutAction.Register, { key: 0x9999n, saKey: 0x3333n })).toBe('RESERVATION CONFLICT');
    // RESERVE by a nexus that is not registered (node 2 through A).
    expect(await out(h.a2, ProutAction.Reserve, { key: K2, type: PrType.WriteExclusive })).toBe('RESERVATION CONFLICT');
    // PREEMPT with SA key zero and no reservation to take: INVALID FIELD IN PARAMETER LIST (05/26/00).
    expect(await out(h.b1, ProutAction.Release, { key: K1, type: PrType.WriteExclusive })).toBe('good');
    expect(await out(h.b2, ProutAction.Preempt, { key: K2, saKey: 0n, type: PrType.WriteExclusive })).toBe('05/26/00');
    // A bad SCOPE/TYPE is refused by the CDB decode at the primary: INVALID FIELD IN CDB.
    expect(senseOf(await settled(() => h.b2.persistentReserveOut(ProutAction.Reserve, { reservationKey: K2, type: 0x0f as PrType })))).toBe('05/24/00');
    expect(await keys(h.a1)).toEqual(await keys(h.b1));
  });

  it('PREEMPT AND ABORT through B fences node 1 on both arrays; node 1 gets REGISTRATIONS PREEMPTED through A as well', async () => {
    pair = await startPair();
    const h = await hosts(pair);
    await setUp(h);
    expect(await out(h.b2, ProutAction.PreemptAndAbort, { key: K2, saKey: K1, type: PrType.WriteExclusiveRegistrantsOnly })).toBe('good');
    // The unit attention reaches node 1's nexus on array A (raised there by the primary) and on array B (shipped with the state).
    // (TEST UNIT READY: a WRITE of the initiator module reads the capacity first, past unit attentions.)
    for (const d of [h.a1, h.b1]) {
      expect(senseOf(await d.testUnitReady())).toBe('06/2a/05');
      expect(senseOf(await d.write(20n, block('node1 after preempt')))).toBe('RESERVATION CONFLICT');
    }
    expect(await view(h.a2)).toEqual(await view(h.b2));
    expect(await reservation(h.a2)).toBe('3:2222/type5');
    expect(senseOf(await settled(() => h.a2.write(20n, block('node2 is not registered through A'))))).toBe('RESERVATION CONFLICT');
    expect(senseOf(await settled(() => h.b2.write(20n, block('node2 via B'))))).toBe('good');
  });

  for (const action of [ProutAction.PreemptAndAbort, ProutAction.Preempt]) {
    const abort = action === ProutAction.PreemptAndAbort;
    it(`${abort ? 'PREEMPT AND ABORT through B aborts node 1\'s task in flight on array A' : 'control: PREEMPT (no abort) through B lets node 1\'s task on A complete'}`, async () => {
      pair = await startPair();
      const h = await hosts(pair);
      await setUp(h);
      expect(senseOf(await settled(() => h.a1.write(40n, block('warm up'))))).toBe('good');
      // 400 ms on A's side of the link: node 1's write through A waits that long for B's ack, and is in flight when the preemption arrives.
      pair.a.rcopy!.setLink({ latencyMs: 400 });
      let outcome = 'pending';
      const w = h.a1.write(41n, block('node1 in flight'), { timeoutMs: 3000 }).then((r) => { outcome = senseOf(r); }, (e: Error) => { outcome = `no status (${e.message.includes('timed out') ? 'timed out' : e.message})`; });
      await until(() => pair!.ga.machine.inFlight > 0, 'the write in flight at A');
      expect(outcome).toBe('pending');
      expect(await out(h.b2, action, { key: K2, saKey: K1, type: PrType.WriteExclusiveRegistrantsOnly })).toBe('good');
      pair.a.rcopy!.setLink({ action: 'restore' });
      await w;
      // Aborted (TAS=0): the task ends without status, so the initiator times it out; not aborted: GOOD.
      expect(outcome).toBe(abort ? 'no status (timed out)' : 'good');
      expect(await view(h.a2)).toEqual(await view(h.b2));
    });
  }

  for (const [fence, caw] of [[true, false], [false, false], [true, true]]) {
    it(fence ? `a ${caw ? 'COMPARE AND WRITE' : 'write'} through B gated before a RESERVE through A, arriving at A after it, is refused for a retry, and the retry conflicts`
      : 'negative control: without that refusal the non-holder\'s write lands after the reservation', async () => {
      pair = await startPair();
      const h = await hosts(pair);
      prHooks.noForwardFence = !fence;
      expect(await out(h.a1, ProutAction.Register, { saKey: K1, allTgPt: true })).toBe('good');
      expect(await out(h.b2, ProutAction.Register, { saKey: K2 })).toBe('good');
      expect(senseOf(await settled(() => h.b2.write(50n, block('warm up'))))).toBe('good');
      // 300 ms on B's side of the link: node 2's forwarded write reaches A after node 1's RESERVE has run there.
      pair.b.rcopy!.setLink({ latencyMs: 300 });
      const w = caw ? h.b2.compareAndWrite(51n, Buffer.alloc(512), block('node2, gated before the reservation'))
        : h.b2.write(51n, block('node2, gated before the reservation'));
      await until(() => pair!.gb.machine.snapshot().pending > 0, 'the write forwarded by B');
      expect(await out(h.a1, ProutAction.Reserve, { key: K1, type: PrType.WriteExclusive })).toBe('good');
      const first = senseOf(await w);
      pair.b.rcopy!.setLink({ action: 'restore' });
      const landed = Buffer.from(await pair.ga.stores[0].inner.read(51n, 1)).equals(block('node2, gated before the reservation'));
      if (fence) {
        // ABORTED COMMAND: the host retries, and the retry meets the reservation on B.
        expect(first).toBe('0b/00/00');
        expect(landed).toBe(false);
        expect(senseOf(await h.b2.write(51n, block('node2 retry')))).toBe('RESERVATION CONFLICT');
      } else {
        expect(first).toBe('good');
        expect(landed).toBe(true);
      }
    });
  }

  it('PR changes during a link outage stay with the primary and are carried by the resync; the secondary answers 04/0C meanwhile', async () => {
    pair = await startPair();
    const h = await hosts(pair);
    await setUp(h);
    pair.a.rcopy!.setLink({ action: 'cut' });
    await until(() => pair!.ga.machine.status === 'Stopped' && pair!.gb.machine.status === 'Stopped', 'both Stopped', 15_000);
    // Without a witness the primary writes alone (README "Peer replication"): PR OUT too.
    expect(await out(h.a1, ProutAction.Release, { key: K1, type: PrType.WriteExclusive })).toBe('good');
    expect(await out(h.a2, ProutAction.Register, { saKey: 0x4444n })).toBe('good');
    expect(await out(h.a2, ProutAction.Reserve, { key: 0x4444n, type: PrType.ExclusiveAccess })).toBe('good');
    // B is not serving: PR IN and PR OUT get the ALUA answer that writes get.
    expect(senseOf(await settled(() => h.b2.readKeys()))).toBe('02/04/0c');
    expect(await out(h.b2, ProutAction.Register, { key: K2, saKey: 0x5555n })).toBe('02/04/0c');
    pair.a.rcopy!.setLink({ action: 'restore' });
    await pair.synced();
    expect(await view(h.b1)).toEqual(await view(h.a1));
    expect(await reservation(h.b1)).toBe('3:4444/type3');
    // Exclusive Access by node 2 through A: node 1 can neither read nor write through B.
    expect(senseOf(await settled(() => h.b1.read(0n, 1)))).toBe('RESERVATION CONFLICT');
  });

  it('a failover keeps the PR state: B, primary now, enforces the reservation made through A', async () => {
    pair = await startPair();
    const h = await hosts(pair);
    await setUp(h);
    const before = await view(h.b2);
    await pair.stop('A');
    await until(() => pair!.gb.machine.link === 'down', 'B sees the link down', 15_000);
    expect(pair.gb.operator({ kind: 'operator', command: { verb: 'failover' } })).toBeNull();
    await until(() => pair!.gb.machine.serving, 'B serving', 15_000);
    expect(await view(h.b2)).toEqual(before);
    expect(senseOf(await settled(() => h.b2.write(30n, block('node2 via B'))))).toBe('RESERVATION CONFLICT');
    expect(senseOf(await settled(() => h.b1.write(30n, block('node1 via B'))))).toBe('good');
    // And B, as primary, executes PR OUT itself now.
    expect(await out(h.b1, ProutAction.Release, { key: K1, type: PrType.WriteExclusive })).toBe('good');
    expect(await reservation(h.b2)).toBe('2:none');
  });

  it('after a failover the old primary yields and the whole-group copy brings it the new primary\'s PR state', async () => {
    pair = await startPair();
    const h = await hosts(pair);
    await setUp(h);
    pair.a.rcopy!.setLink({ action: 'cut' });
    await until(() => pair!.gb.machine.link === 'down' && pair!.ga.machine.link === 'down', 'the link down on both', 15_000);
    // No witness: the operator vouches that A is gone, and B takes the group with a higher epoch.
    expect(pair.gb.operator({ kind: 'operator', command: { verb: 'failover' } })).toBeNull();
    await until(() => pair!.gb.machine.serving, 'B serving', 15_000);
    expect(await out(h.b2, ProutAction.Preempt, { key: K2, saKey: K1, type: PrType.ExclusiveAccess })).toBe('good');
    // A, cut off, still writes alone and takes a PR change of its own, which the yield discards.
    expect(await out(h.a1, ProutAction.Register, { key: K1, saKey: 0x7777n })).toBe('good');
    pair.a.rcopy!.setLink({ action: 'restore' });
    await until(() => pair!.ga.machine.role === 'secondary' && pair!.ga.machine.status === 'Synced' && pair!.gb.machine.status === 'Synced', 'A yields and is copied whole', 30_000);
    expect(await view(h.a2)).toEqual(await view(h.b2));
    expect(await keys(h.a2)).toEqual({ generation: 3, keys: ['2222'] });
    expect(await reservation(h.a2)).toBe('3:2222/type3');
  });

  it('the link is refused when both arrays have a port with the same relative target port identifier (READ FULL STATUS could not tell them apart)', async () => {
    pair = await startPair({ tpgtB: 1, noWait: true });
    await new Promise((r) => setTimeout(r, 1500));
    expect(pair.ga.stats.linkUps + pair.gb.stats.linkUps).toBe(0);
    expect(pair.ga.machine.status).toBe('Stopped');
  });

  it('negative control: with the primary not shipping PR OUT, the checks above fail', async () => {
    pair = await startPair();
    const h = await hosts(pair);
    prHooks.skipReplication = true;
    await setUp(h);
    expect(await view(h.a2)).not.toEqual(await view(h.b2));
    // Node 2 writes through B although node 1 holds the reservation (B never heard of it).
    expect(senseOf(await settled(() => h.b2.write(10n, block('node2 via B'))))).toBe('good');
  });
});
