/**
 * Test support for the reservation tests over the pair (pr.test.ts, reset-reserve.test.ts,
 * pr-move.test.ts): two cluster nodes, PR OUT and PR IN as strings a test compares.
 */
import { PrinAction } from '../../protocol/scsi/pr.ts';
import type { ProutAction, PrType } from '../../protocol/scsi/pr.ts';
import type { ScsiDevice } from '../../src/initiator/index.ts';
import { senseOf, settled } from './pair.ts';
import type { Pair } from './pair.ts';

export const NODE1 = 'iqn.1994-05.com.example:node1';
export const NODE2 = 'iqn.1994-05.com.example:node2';
export const K1 = 0x1111n, K2 = 0x2222n;

export async function out(d: ScsiDevice, action: ProutAction, p: { key?: bigint; saKey?: bigint; type?: PrType; allTgPt?: boolean }): Promise<string> {
  return senseOf(await settled(() => d.persistentReserveOut(action, { reservationKey: p.key ?? 0n, serviceActionKey: p.saKey ?? 0n, type: p.type, allTgPt: p.allTgPt })));
}

export async function keys(d: ScsiDevice): Promise<{ generation: number; keys: string[] }> {
  const r = await settled(() => d.readKeys());
  if (r.kind !== 'good') throw new Error(`READ KEYS: ${senseOf(r)}`);
  return { generation: r.value.generation, keys: r.value.keys.map((k) => k.toString(16)).sort() };
}

export async function reservation(d: ScsiDevice): Promise<string> {
  const r = await settled(() => d.readReservation());
  if (r.kind !== 'good') throw new Error(`READ RESERVATION: ${senseOf(r)}`);
  const v = r.value.reservation;
  return `${r.value.generation}:${v ? `${v.key.toString(16)}/type${v.type}` : 'none'}`;
}

/** READ FULL STATUS (SPC-5 §6.16.5): key, ALL_TG_PT, R_HOLDER, relative target port identifier and initiator of each registration. */
export async function fullStatus(d: ScsiDevice): Promise<string[]> {
  const r = await settled(() => d.persistentReserveIn(PrinAction.ReadFullStatus));
  if (r.kind !== 'good') throw new Error(`READ FULL STATUS: ${senseOf(r)}`);
  const b = r.value;
  const out: string[] = [];
  const end = 8 + b.readUInt32BE(4);
  for (let o = 8; o < end;) {
    const tidLen = b.readUInt32BE(o + 20);
    const tid = b.subarray(o + 24, o + 24 + tidLen);
    const name = tid.toString('utf8', 4, 4 + tid.readUInt16BE(2)).replace(/\0+$/, '');
    out.push(`${b.readBigUInt64BE(o).toString(16)} port${b.readUInt16BE(o + 18)}${b[o + 12] & 2 ? ' all' : ''}${b[o + 12] & 1 ? ' holder' : ''} ${name.split(',')[0]}`);
    o += 24 + tidLen;
  }
  return out.sort();
}

/** Node 1 and node 2, each with a path through array A and one through array B; each node has one initiator port (ISID) for both. */
export async function hosts(p: Pair): Promise<{ a1: ScsiDevice; b1: ScsiDevice; a2: ScsiDevice; b2: ScsiDevice }> {
  const [i1, i2] = ['400001370001', '400001370002'];
  return { a1: await p.open('A', NODE1, i1), b1: await p.open('B', NODE1, i1), a2: await p.open('A', NODE2, i2), b2: await p.open('B', NODE2, i2) };
}

