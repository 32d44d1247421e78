/**
 * REPLICA CLAIM (C2h), REPLICA RECORD (C3h) and REPLICA SEQUENCE (C4h), in process: the parameter
 * list's golden bytes, the claim's gate per I_T nexus, and the receive queue (records applied in
 * sequence order whatever order they arrive in, duplicates not written again, waiting records
 * dropped with the nexus, the queue's limit). Over TCP: test/splitter/remote-claim-tcp.test.ts and
 * remote-sequence-tcp.test.ts.
 */
import { describe, expect, it } from 'vitest';
import {
  decodeReplicaClaimParams, decodeReplicaSequence, decodeReplicaUndo, encodeReplicaClaimCdb, encodeReplicaClaimParams,
  encodeReplicaSequenceCdb, encodeReplicaUndo, encodeReplicaUndoCdb, ReplicaClaimAction, ReplicaClaimFormatError,
} from '../../protocol/scsi/replica-claim.ts';
import { RECEIVE_QUEUE_LIMIT } from '../../src/scsi/replica-claim.ts';
import type { Nexus, ScsiResponse } from '../../src/scsi/types.ts';
import { ScsiStatus } from '../../src/scsi/types.ts';
import { senseOf, setupLun, submit } from './sbc-fixture.ts';
import type { Lun } from './sbc-fixture.ts';
import { record, up } from './replica-fixture.ts';

const LINK = 'iqn.2026-01.test:prod.splitter.g1.dr';

function claim(l: Lun, nexus: Nexus, action = ReplicaClaimAction.Claim, base?: number): Promise<ScsiResponse> {
  const p = encodeReplicaClaimParams({ group: 'g1', copy: 'dr', base });
  return submit(l, encodeReplicaClaimCdb(action, p.length), { dataOut: p, nexus });
}


const tur = (l: Lun, nexus: Nexus) => submit(l, [0, 0, 0, 0, 0, 0], { nexus });
const sequence = async (l: Lun, nexus: Nexus) => decodeReplicaSequence((await submit(l, encodeReplicaSequenceCdb(), { nexus, edtl: 16 })).data!);
const settled = (p: Promise<unknown>) => Promise.race([p.then(() => true), new Promise((r) => setImmediate(() => r(false)))]);


describe('REPLICA CLAIM parameter list', () => {
  it('encodes field by field (golden bytes) and decodes back', () => {
    const p = encodeReplicaClaimParams({ group: 'g1', copy: 'dr', base: 0x0102030405 });
    expect([...p]).toEqual([
      2, 2, // GROUP NAME LENGTH, COPY NAME LENGTH
      0x01, 0, 0, 0, 0, 0, // SETBASE, reserved
      0, 0, 0, 0x01, 0x02, 0x03, 0x04, 0x05, // BASE SEQUENCE
      0x67, 0x31, 0x64, 0x72, // "g1" "dr"
    ]);
    expect(decodeReplicaClaimParams(p)).toEqual({ group: 'g1', copy: 'dr', base: 0x0102030405 });
    expect(decodeReplicaClaimParams(encodeReplicaClaimParams({ group: 'g1', copy: 'dr' }))).toEqual({ group: 'g1', copy: 'dr' });
  });

  it('refuses a short list, an empty name and a reserved bit, naming the byte', () => {
    const p = encodeReplicaClaimParams({ group: 'g1', copy: 'dr' });
    const err = (d: Buffer) => { try { decodeReplicaClaimParams(d); } catch (e) { return e as ReplicaClaimFormatError; } return null; };
    expect(err(p.subarray(0, 19))).toMatchObject({ reason: 'ParameterListLengthError' });
    expect(err(p.subarray(0, 15))).toMatchObject({ reason: 'ParameterListLengthError' });
    const zero = Buffer.from(p); zero[1] = 0;
    expect(err(zero)).toMatchObject({ reason: 'InvalidFieldInParameterList', byte: 1 });
    const bit = Buffer.from(p); bit[2] = 0x02;
    expect(err(bit)).toMatchObject({ reason: 'InvalidFieldInParameterList', byte: 2 });
    const res = Buffer.from(p); res[3] = 1;
    expect(err(res)).toMatchObject({ reason: 'InvalidFieldInParameterList', byte: 3 });
  });
});

describe('REPLICA CLAIM on an LU', () => {
  it('other nexuses cannot register or reserve a claimed LU (NOT READY 02/04/03); the owner can, and everyone once it is released', async () => {
    const l = setupLun();
    const link = up(l, LINK, '23d000000011');
    const other = up(l, 'iqn.2026-01.test:dr-host', '23d000000012');
    // PERSISTENT RESERVE OUT REGISTER (service action 00h) with a 24-byte list: SERVICE ACTION RESERVATION KEY 0xabc.
    const register = (n: Nexus, key: number) => {
      const list = Buffer.alloc(24); list.writeUInt32BE(key, 12);
      return submit(l, [0x5f, 0x00, 0, 0, 0, 0, 0, 0, 24, 0], { dataOut: list, nexus: n });
    };
    const reserve6 = (n: Nexus) => submit(l, [0x16, 0, 0, 0, 0, 0], { nexus: n });
    expect((await claim(l, link)).status).toBe(ScsiStatus.Good);
    expect(senseOf(await register(other, 0xabc))).toEqual([0x02, 0x04, 0x03]);
    expect(senseOf(await reserve6(other))).toEqual([0x02, 0x04, 0x03]);
    expect((await register(link, 0xdef)).status).toBe(ScsiStatus.Good);
    expect((await claim(l, link, ReplicaClaimAction.Release)).status).toBe(ScsiStatus.Good);
    expect((await register(other, 0xabc)).status).toBe(ScsiStatus.Good);
  });

  it('other nexuses get NOT READY 02/04/03 for media commands; the owner\'s new session takes it over; another initiator conflicts', async () => {
    const l = setupLun();
    const link = up(l, LINK, '23d000000001');
    const other = up(l, 'iqn.2026-01.test:dr-host', '23d000000002');
    expect((await claim(l, link)).status).toBe(ScsiStatus.Good);
    expect(senseOf(await tur(l, other))).toEqual([0x02, 0x04, 0x03]);
    expect((await tur(l, link)).status).toBe(ScsiStatus.Good);
    expect((await claim(l, other)).status).toBe(ScsiStatus.ReservationConflict);
    expect((await claim(l, other, ReplicaClaimAction.Release)).status).toBe(ScsiStatus.ReservationConflict);
    // The link logs in again (a new ISID): it claims again and the old nexus is the other one now.
    const again = up(l, LINK, '23d000000003');
    expect(senseOf(await tur(l, again))).toEqual([0x02, 0x04, 0x03]);
    expect((await claim(l, again)).status).toBe(ScsiStatus.Good);
    expect((await tur(l, again)).status).toBe(ScsiStatus.Good);
    expect(senseOf(await tur(l, link))).toEqual([0x02, 0x04, 0x03]);
    expect((await claim(l, again, ReplicaClaimAction.Release)).status).toBe(ScsiStatus.Good);
    expect((await tur(l, other)).status).toBe(ScsiStatus.Good);
    expect(l.lu.replicaClaim).toBeNull();
  });

  it('REPLICA RECORD on an LU the sender has not claimed: ILLEGAL REQUEST (no claim) or NOT READY (another\'s)', async () => {
    const l = setupLun();
    const link = up(l, LINK, '23d000000001');
    const other = up(l, 'iqn.2026-01.test:dr-host', '23d000000002');
    expect(senseOf(await record(l, link, 1, 0, 0, 1, 1))).toEqual([0x05, 0x24, 0x00]);
    await claim(l, link, ReplicaClaimAction.Claim, 0);
    expect(senseOf(await record(l, other, 1, 0, 0, 1, 1))).toEqual([0x02, 0x04, 0x03]);
  });
});

describe('the receive queue', () => {
  it('applies records in sequence order whatever order they arrive in; a duplicate is GOOD and not written again', async () => {
    const l = setupLun();
    const link = up(l, LINK, '23d000000001');
    await claim(l, link, ReplicaClaimAction.Claim, 10);
    // 12 and 13 arrive before 11: they wait, nothing is written.
    const r12 = record(l, link, 12, 11, 0, 4, 0x12);
    const r13 = record(l, link, 13, 12, 2, 4, 0x13);
    expect(await settled(r12)).toBe(false);
    expect(await l.store.read(0n, 6)).toEqual(Buffer.alloc(6 * 512));
    expect(await sequence(l, link)).toMatchObject({ applied: 10, valid: true, claimed: true, queued: 2 });
    // 11 comes: 11, 12, 13 are applied in that order (13 over 12 where they overlap).
    expect((await record(l, link, 11, 10, 0, 6, 0x11)).status).toBe(ScsiStatus.Good);
    expect((await r12).status).toBe(ScsiStatus.Good);
    expect((await r13).status).toBe(ScsiStatus.Good);
    const want = Buffer.concat([Buffer.alloc(2 * 512, 0x12), Buffer.alloc(4 * 512, 0x13)]);
    expect(await l.store.read(0n, 6)).toEqual(want);
    expect(await sequence(l, link)).toMatchObject({ applied: 13, valid: true, claimed: true, queued: 0 });
    // 12 again (a lost acknowledgement): GOOD, and 13's blocks stay.
    expect((await record(l, link, 12, 11, 0, 4, 0x12)).status).toBe(ScsiStatus.Good);
    expect(await l.store.read(0n, 6)).toEqual(want);
    expect(l.lu.replicaClaim!.receiver.counters).toMatchObject({ received: 4, applied: 3, duplicates: 1 });
  });

  it('drops what waits when the claim\'s nexus goes (COMMAND SEQUENCE ERROR); the new session resumes from the applied sequence', async () => {
    const l = setupLun();
    const link = up(l, LINK, '23d000000001');
    await claim(l, link, ReplicaClaimAction.Claim, 0);
    expect((await record(l, link, 1, 0, 0, 1, 1)).status).toBe(ScsiStatus.Good);
    const waiting = record(l, link, 3, 2, 0, 1, 3);
    l.target.nexusDown(link);
    expect(senseOf(await waiting)).toEqual([0x05, 0x2c, 0x00]);
    const again = up(l, LINK, '23d000000002');
    await claim(l, again);
    expect(await sequence(l, again)).toMatchObject({ applied: 1, queued: 0 });
    expect((await record(l, again, 2, 1, 0, 1, 2)).status).toBe(ScsiStatus.Good);
    expect((await record(l, again, 3, 2, 0, 1, 3)).status).toBe(ScsiStatus.Good);
    expect((await l.store.read(0n, 1))[0]).toBe(3);
  });

  it(`holds at most ${RECEIVE_QUEUE_LIMIT} records waiting: then TASK SET FULL`, async () => {
    const l = setupLun();
    const link = up(l, LINK, '23d000000001');
    await claim(l, link, ReplicaClaimAction.Claim, 0);
    const waiting = Array.from({ length: RECEIVE_QUEUE_LIMIT }, (_, i) => record(l, link, i + 3, i + 2, 0, 1, 9));
    expect((await record(l, link, 1000, 999, 0, 1, 9)).status).toBe(ScsiStatus.TaskSetFull);
    // The missing records come: everything that waited is applied.
    expect((await record(l, link, 1, 0, 0, 1, 1)).status).toBe(ScsiStatus.Good);
    expect((await record(l, link, 2, 1, 0, 1, 2)).status).toBe(ScsiStatus.Good);
    for (const w of waiting) expect((await w).status).toBe(ScsiStatus.Good);
    expect(await sequence(l, link)).toMatchObject({ applied: RECEIVE_QUEUE_LIMIT + 2, queued: 0 });
  });
});

describe('REPLICA UNDO (C5h)', () => {
  it('encodes field by field (golden bytes) and decodes back; a response cut short is refused', () => {
    const d = encodeReplicaUndo([{ seq: 7, lba: 0x10n, blocks: 1, data: Buffer.alloc(4, 0xaa) }, { seq: 8, lba: 0x20n, blocks: 2, data: null }], 4, true, 0);
    expect([...d]).toEqual([
      0, 0, 0, 52, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // DATA LENGTH 52, MORE, NEXT ENTRY LENGTH 0
      0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0, 1, 0, 0, 0, 0, // seq 7, LBA 10h, 1 block, data
      0xaa, 0xaa, 0xaa, 0xaa,
      0, 0, 0, 0, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0x20, 0, 0, 0, 2, 0x01, 0, 0, 0, // seq 8, LBA 20h, 2 blocks, DEALLOCATED
    ]);
    const back = decodeReplicaUndo(d, 4);
    expect(back).toMatchObject({ more: true, nextLength: 0, pieces: [{ seq: 7, lba: 0x10n, blocks: 1 }, { seq: 8, lba: 0x20n, blocks: 2, data: null }] });
    expect([...back.pieces[0].data!]).toEqual([0xaa, 0xaa, 0xaa, 0xaa]);
    expect(() => decodeReplicaUndo(d.subarray(0, 50), 4)).toThrow(RangeError);
  });

  it('returns what each record overwrote, oldest first, page by page; another initiator\'s claim: RESERVATION CONFLICT', async () => {
    const l = setupLun();
    const link = up(l, LINK, '23d000000001');
    const other = up(l, 'iqn.2026-01.test:dr-host', '23d000000002');
    const undo = (n: Nexus, after: number, allocation: number) => submit(l, encodeReplicaUndoCdb(after, allocation), { nexus: n, edtl: allocation });
    await claim(l, link, ReplicaClaimAction.Claim, 0);
    for (const [seq, fill] of [[1, 0x11], [2, 0x22], [3, 0x33]]) expect((await record(l, link, seq, seq - 1, 0, 2, fill)).status).toBe(ScsiStatus.Good);
    const all = decodeReplicaUndo((await undo(link, 0, 4096)).data!, 512);
    expect(all.more).toBe(false);
    // Record 1 overwrote unallocated blocks (DEALLOCATED, no data); 2 and 3 their predecessor's.
    expect(all.pieces.map((p) => [p.seq, p.data?.[0] ?? null])).toEqual([[1, null], [2, 0x11], [3, 0x22]]);
    // Room for one entry (24 + 1024 bytes): seq 2 only, MORE; then after 2: seq 3.
    const one = decodeReplicaUndo((await undo(link, 1, 16 + 1048)).data!, 512);
    expect(one).toMatchObject({ more: true, pieces: [{ seq: 2 }] });
    expect(decodeReplicaUndo((await undo(link, 2, 16 + 1048)).data!, 512)).toMatchObject({ more: false, pieces: [{ seq: 3 }] });
    // Not even one entry fits: none, MORE, and the length it needs.
    expect(decodeReplicaUndo((await undo(link, 1, 16 + 100)).data!, 512)).toMatchObject({ more: true, pieces: [], nextLength: 1048 });
    expect((await undo(other, 0, 4096)).status).toBe(ScsiStatus.ReservationConflict);
  });
});
