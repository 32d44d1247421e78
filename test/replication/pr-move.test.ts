/**
 * PERSISTENT RESERVE OUT REGISTER AND MOVE across the pair (SPC-5 §5.14.8), two arrays over TCP on
 * loopback: the holder moves the reservation to an I_T nexus named by a relative target port
 * identifier, which may be a port of the other array (A's is 1, B's is 2) and may have no session
 * on the array that executes the move (the primary).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { encodeMoveParameters, ProutAction, PrType } from '../../protocol/scsi/pr.ts';
import * as C from '../../src/initiator/cdb.ts';
import type { ScsiDevice } from '../../src/initiator/index.ts';
import { block, senseOf, settled, startPair } from './pair.ts';
import type { Pair } from './pair.ts';
import { fullStatus, K1, K2, NODE1, NODE2, out } from './pr-host.ts';

let pair: Pair | null = null;
afterEach(async () => { await pair?.close(); pair = null; });

const [ISID1, ISID2] = ['400001370001', '400001370002'];

/** REGISTER AND MOVE (SPC-5 §6.17.4) from `d`: the reservation to `initiator`'s port through relative target port `port`, key `key`. */
async function move(d: ScsiDevice, o: { key: bigint; saKey: bigint; port: number; initiator: string; isid: string; type: PrType; unreg?: boolean }): Promise<string> {
  const data = encodeMoveParameters({ reservationKey: o.key, serviceActionKey: o.saKey, unreg: !!o.unreg, aptpl: false, relativeTargetPortId: o.port, transportId: { initiatorName: o.initiator, isid: o.isid } });
  return senseOf(await settled(() => d.raw({ cdb: C.persistentReserveOut(ProutAction.RegisterAndMove, o.type, data.length), dataOut: data })));
}

describe('REGISTER AND MOVE across the pair', () => {
  it('the holder through A moves the reservation to node 2\'s nexus through B (relative port 2): both arrays agree, and B enforces it', async () => {
    pair = await startPair();
    // Node 2 has no session through A, and none through B yet: the primary must resolve port 2 without one.
    const a1 = await pair.open('A', NODE1, ISID1);
    expect(await out(a1, ProutAction.Register, { saKey: K1 })).toBe('good');
    expect(await out(a1, ProutAction.Reserve, { key: K1, type: PrType.WriteExclusive })).toBe('good');
    expect(await move(a1, { key: K1, saKey: K2, port: 2, initiator: NODE2, isid: ISID2, type: PrType.WriteExclusive })).toBe('good');
    const b2 = await pair.open('B', NODE2, ISID2);
    const a2 = await pair.open('A', NODE2, ISID2);
    const b1 = await pair.open('B', NODE1, ISID1);
    const want = ['1111 port1 iqn.1994-05.com.example:node1', '2222 port2 holder iqn.1994-05.com.example:node2'];
    expect(await fullStatus(a1)).toEqual(want);
    expect(await fullStatus(b2)).toEqual(want);
    // The new holder writes through B; node 2 through A is not registered there, node 1 is a registrant that does not hold.
    expect(senseOf(await settled(() => b2.write(30n, block('node2 via B, the holder'))))).toBe('good');
    expect(senseOf(await settled(() => a2.write(30n, block('node2 via A'))))).toBe('RESERVATION CONFLICT');
    expect(senseOf(await settled(() => a1.write(30n, block('node1 via A'))))).toBe('RESERVATION CONFLICT');
    expect(senseOf(await settled(() => b1.write(30n, block('node1 via B'))))).toBe('RESERVATION CONFLICT');
  });

  it('the holder through B (forwarded to the primary) moves the reservation to a nexus through A, with UNREG', async () => {
    pair = await startPair();
    const b1 = await pair.open('B', NODE1, ISID1);
    expect(await out(b1, ProutAction.Register, { saKey: K1 })).toBe('good');
    expect(await out(b1, ProutAction.Reserve, { key: K1, type: PrType.ExclusiveAccess })).toBe('good');
    expect(await move(b1, { key: K1, saKey: K2, port: 1, initiator: NODE2, isid: ISID2, type: PrType.ExclusiveAccess, unreg: true })).toBe('good');
    const a2 = await pair.open('A', NODE2, ISID2);
    const want = ['2222 port1 holder iqn.1994-05.com.example:node2'];
    expect(await fullStatus(a2)).toEqual(want);
    expect(await fullStatus(b1)).toEqual(want);
    expect(senseOf(await settled(() => a2.write(31n, block('node2 via A, the holder'))))).toBe('good');
    expect(senseOf(await settled(() => b1.read(31n, 1)))).toBe('RESERVATION CONFLICT');
  });

  it('a relative target port that is on neither array is refused (05/26/00), through either array', async () => {
    pair = await startPair();
    const a1 = await pair.open('A', NODE1, ISID1);
    const b1 = await pair.open('B', NODE1, ISID1);
    expect(await out(a1, ProutAction.Register, { saKey: K1, allTgPt: true })).toBe('good');
    expect(await out(a1, ProutAction.Reserve, { key: K1, type: PrType.WriteExclusive })).toBe('good');
    for (const d of [a1, b1]) expect(await move(d, { key: K1, saKey: K2, port: 9, initiator: NODE2, isid: ISID2, type: PrType.WriteExclusive })).toBe('05/26/00');
  });
});
