/**
 * An array that does not serve its Remote Copy group (here the secondary after a link cut, while
 * the primary writes alone) must not be made to serve it by moving ALUA. Found with the Linux
 * kernel initiator (tools/vm/metro-test.sh): at the link cut both arrays' paths were unavailable
 * for a moment, dm-multipath switched to the secondary's path group, scsi_dh_alua sent SET TARGET
 * PORT GROUPS to make it active/optimized, the secondary accepted, and fio's verify then read
 * blocks from it that were older than writes the primary had acknowledged.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startPair, settled, senseOf, block, until } from './pair.ts';
import type { Pair } from './pair.ts';

let pair: Pair;
beforeEach(async () => { pair = await startPair(); });
afterEach(async () => { await pair.close(); });

/** SET TARGET PORT GROUPS (MAINTENANCE OUT, SPC-5 §6.42): one descriptor, `tpg` to active/optimized. */
function stpgOptimized(tpg: number): { cdb: Buffer; dataOut: Buffer } {
  const cdb = Buffer.alloc(12);
  cdb[0] = 0xa4;
  cdb[1] = 0x0a;
  cdb.writeUInt32BE(8, 6);
  const dataOut = Buffer.alloc(8);
  dataOut[4] = 0x00; // ASYMMETRIC ACCESS STATE: active/optimized
  dataOut.writeUInt16BE(tpg, 6);
  return { cdb, dataOut };
}

async function cutAndWriteAlone(): Promise<void> {
  const da = await pair.open('A');
  expect(senseOf(await settled(() => da.write(0n, block('before the cut'))))).toBe('good');
  pair.a.rcopy!.setLink({ action: 'cut' });
  await until(() => pair.gb.machine.status === 'Stopped' && pair.ga.machine.status === 'Stopped', 'both Stopped');
  // Acknowledged by the primary alone: the secondary's copy is now older.
  expect(senseOf(await settled(() => da.write(0n, block('written alone'))))).toBe('good');
  expect(pair.gb.machine.serving).toBe(false);
}

describe('a non-serving array stays unavailable', () => {
  it("refuses a host's SET TARGET PORT GROUPS to make its paths active (05/26/00), and a READ still gets 04/0C", async () => {
    await cutAndWriteAlone();
    const db = await pair.open('B');
    expect(senseOf(await settled(() => db.raw(stpgOptimized(2))))).toBe('05/26/00');
    const b = pair.b.scsiTargets.values().next().value!;
    expect(b.alua.groups.get(2)!.state).toBe('unavailable');
    expect(senseOf(await settled(() => db.read(0n, 1)))).toBe('02/04/0c');
    // Once Synced again the secondary serves, and the same STPG is taken.
    pair.a.rcopy!.setLink({ action: 'restore' });
    await pair.synced();
    await until(() => pair.gb.machine.serving, 'B serving');
    expect(senseOf(await settled(() => db.raw(stpgOptimized(2))))).toBe('good');
    const r = await settled(() => db.read(0n, 1));
    expect(r.kind === 'good' && r.value.equals(block('written alone'))).toBe(true);
  });

  it('refuses READs while not serving even when its ALUA state was moved to active (no data older than an acknowledged write)', async () => {
    await cutAndWriteAlone();
    const db = await pair.open('B');
    // An operator (or anything else) moves B's group to active/optimized behind the replication.
    const b = pair.b.scsiTargets.values().next().value!;
    await b.alua.transition({ tpg: 2, state: 'active/optimized', reason: 'test: ALUA moved behind the group', transitionMs: 0 });
    await db.clearUnitAttentions();
    const r = await settled(() => db.read(0n, 1));
    expect(r.kind === 'good' ? `stale: ${r.value.subarray(0, 16).toString()}` : senseOf(r)).toBe('02/04/0c');
  });
});
