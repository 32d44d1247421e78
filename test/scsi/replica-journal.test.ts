/**
 * The remote site's copy journal (src/scsi/replica-journal.ts), in process: the new fields of the
 * REPLICA CLAIM parameter list (UNDO LIMIT, DIRECT, SEQUENCE of PRESENT IMAGE) and of REPLICA
 * SEQUENCE's Data-In as golden bytes; and on one LU, through the front door: records save what
 * they overwrite; PRESENT IMAGE shows an older image to every nexus (reads through the read map,
 * writes in an overlay that END IMAGE drops); records received meanwhile wait and are applied
 * after END IMAGE; the undo limit moves the window and an image older than it is refused
 * (ILLEGAL REQUEST, byte 8 of the parameter list); direct access rolls the volume back and drops
 * the history. Over TCP: test/splitter/remote-image-tcp.test.ts.
 */
import { afterEach, describe, expect, it } from 'vitest';
import {
  decodeReplicaClaimParams, decodeReplicaSequence, encodeReplicaClaimCdb, encodeReplicaClaimParams,
  encodeReplicaSequence, encodeReplicaSequenceCdb, ReplicaClaimAction, ReplicaClaimFormatError,
} from '../../protocol/scsi/replica-claim.ts';
import { replicaJournalHooks } from '../../src/scsi/replica-journal.ts';
import type { Nexus, ScsiResponse } from '../../src/scsi/types.ts';
import { ScsiStatus } from '../../src/scsi/types.ts';
import { cdb16, fieldPointer, senseOf, setupLun, submit } from './sbc-fixture.ts';
import type { Lun } from './sbc-fixture.ts';
import { record, up } from './replica-fixture.ts';

const LINK = 'iqn.2026-01.test:prod.splitter.g1.dr';

afterEach(() => { replicaJournalHooks.captureUndo = true; });

function action(l: Lun, nexus: Nexus, a: ReplicaClaimAction, p: Parameters<typeof encodeReplicaClaimParams>[0] = { group: 'g1', copy: 'dr' }): Promise<ScsiResponse> {
  const d = encodeReplicaClaimParams(p);
  return submit(l, encodeReplicaClaimCdb(a, d.length), { dataOut: d, nexus });
}


const read = async (l: Lun, nexus: Nexus, lba: number, blocks: number) => (await submit(l, cdb16(0x88, lba, blocks), { nexus, edtl: blocks * 512 })).data!;
const write = (l: Lun, nexus: Nexus, lba: number, blocks: number, fill: number) => submit(l, cdb16(0x8a, lba, blocks), { nexus, dataOut: Buffer.alloc(blocks * 512, fill) });
const sequence = async (l: Lun, nexus: Nexus) => decodeReplicaSequence((await submit(l, encodeReplicaSequenceCdb(), { nexus, edtl: 48 })).data!);
const filled = (blocks: number, fill: number) => Buffer.alloc(blocks * 512, fill);


describe('REPLICA CLAIM parameter list: the copy journal\'s fields', () => {
  it('CLAIM with UNDO LIMIT and SETBASE (golden bytes)', () => {
    const p = encodeReplicaClaimParams({ group: 'g1', copy: 'dr', base: 7, undoLimitMiB: 0x0102 });
    expect([...p]).toEqual([
      2, 2, // GROUP NAME LENGTH, COPY NAME LENGTH
      0x01, 0, // SETBASE; reserved
      0, 0, 0x01, 0x02, // UNDO LIMIT (MiB)
      0, 0, 0, 0, 0, 0, 0, 7, // SEQUENCE (the base)
      0x67, 0x31, 0x64, 0x72, // "g1" "dr"
    ]);
    expect(decodeReplicaClaimParams(p)).toEqual({ group: 'g1', copy: 'dr', base: 7, undoLimitMiB: 0x0102 });
  });

  it('PRESENT IMAGE with DIRECT and SEQUENCE (golden bytes); each field only where its action reads it', () => {
    const p = encodeReplicaClaimParams({ group: 'g1', copy: 'dr', image: 0x0a0b0c, direct: true });
    expect([...p]).toEqual([
      2, 2,
      0x02, 0, // DIRECT; reserved
      0, 0, 0, 0, // UNDO LIMIT: not for this action
      0, 0, 0, 0, 0, 0x0a, 0x0b, 0x0c, // SEQUENCE (the image)
      0x67, 0x31, 0x64, 0x72,
    ]);
    expect(decodeReplicaClaimParams(p, ReplicaClaimAction.PresentImage)).toEqual({ group: 'g1', copy: 'dr', image: 0x0a0b0c, direct: true });
    const err = (d: Buffer, a: ReplicaClaimAction) => { try { decodeReplicaClaimParams(d, a); } catch (e) { return e as ReplicaClaimFormatError; } return null; };
    // DIRECT on a CLAIM, SETBASE on PRESENT IMAGE, UNDO LIMIT on RELEASE, a SEQUENCE on END IMAGE: reserved there.
    expect(err(p, ReplicaClaimAction.Claim)).toMatchObject({ reason: 'InvalidFieldInParameterList', byte: 2 });
    const setbase = Buffer.from(p); setbase[2] = 0x01;
    expect(err(setbase, ReplicaClaimAction.PresentImage)).toMatchObject({ reason: 'InvalidFieldInParameterList', byte: 2 });
    const undo = encodeReplicaClaimParams({ group: 'g1', copy: 'dr', undoLimitMiB: 1 });
    expect(err(undo, ReplicaClaimAction.Release)).toMatchObject({ reason: 'InvalidFieldInParameterList', byte: 4 });
    const seq = encodeReplicaClaimParams({ group: 'g1', copy: 'dr', image: 3 });
    expect(err(seq, ReplicaClaimAction.EndImage)).toMatchObject({ reason: 'InvalidFieldInParameterList', byte: 8 });
    expect(decodeReplicaClaimParams(encodeReplicaClaimParams({ group: 'g1', copy: 'dr' }), ReplicaClaimAction.EndImage)).toEqual({ group: 'g1', copy: 'dr' });
  });

  it('REPLICA SEQUENCE Data-In, 48 bytes (golden), and a reply cut at 16 bytes decodes with the window unknown', () => {
    const d = encodeReplicaSequence({ applied: 9, valid: true, claimed: false, queued: 3, oldestImage: 4, image: 6, direct: false, undoBytes: 0x10000, undoLimit: 0x100000 });
    expect([...d]).toEqual([
      0, 0, 0, 0, 0, 0, 0, 9, // APPLIED SEQUENCE
      0x01 | 0x04 | 0x08, 0, 0, 0, // VALID, WINDOW, PRESENTED (not CLAIMED, not DIRECT)
      0, 0, 0, 3, // QUEUED
      0, 0, 0, 0, 0, 0, 0, 4, // OLDEST IMAGE
      0, 0, 0, 0, 0, 0, 0, 6, // IMAGE SEQUENCE
      0, 0, 0, 0, 0, 0x01, 0, 0, // UNDO BYTES
      0, 0, 0, 0, 0, 0x10, 0, 0, // UNDO LIMIT
    ]);
    expect(decodeReplicaSequence(d)).toEqual({ applied: 9, valid: true, claimed: false, queued: 3, oldestImage: 4, image: 6, direct: false, undoBytes: 0x10000, undoLimit: 0x100000 });
    expect(decodeReplicaSequence(d.subarray(0, 16))).toMatchObject({ applied: 9, oldestImage: 0, image: 0, undoBytes: 0 });
  });
});

describe('the copy journal on an LU', () => {
  /** Claimed with base 0, then records 1 (A at 0-7), 2 (B at 0-7), 3 (C at 4-11). */
  async function threeRecords(undoLimitMiB?: number) {
    const l = setupLun();
    const link = up(l, LINK, '23d000000001');
    const host = up(l, 'iqn.2026-01.test:dr-host', '23d000000002');
    expect((await action(l, link, ReplicaClaimAction.Claim, { group: 'g1', copy: 'dr', base: 0, undoLimitMiB })).status).toBe(ScsiStatus.Good);
    expect((await record(l, link, 1, 0, 0, 8, 0xaa)).status).toBe(ScsiStatus.Good);
    expect((await record(l, link, 2, 1, 0, 8, 0xbb)).status).toBe(ScsiStatus.Good);
    expect((await record(l, link, 3, 2, 4, 8, 0xcc)).status).toBe(ScsiStatus.Good);
    return { l, link, host };
  }

  it('records save what they overwrite; PRESENT IMAGE shows seq 1 to every nexus, writes go to an overlay, END IMAGE drops it', async () => {
    const { l, link, host } = await threeRecords();
    const w = await sequence(l, link);
    expect(w).toMatchObject({ applied: 3, oldestImage: 0, image: null, undoLimit: 256 << 20 });
    // Record 1 overwrote deallocated blocks (saved as such, no bytes); 2 saved A; 3 saved B's half
    // and what the thin store holds beyond (its allocation unit decides whether that is bytes).
    expect(w.undoBytes).toBeGreaterThanOrEqual(12 * 512);
    expect(w.undoBytes).toBeLessThanOrEqual(16 * 512);
    expect((await action(l, link, ReplicaClaimAction.PresentImage, { group: 'g1', copy: 'dr', image: 1 })).status).toBe(ScsiStatus.Good);
    // Released (as production does for image access): the remote site's host sees the image too.
    expect((await action(l, link, ReplicaClaimAction.Release)).status).toBe(ScsiStatus.Good);
    expect(await read(l, host, 0, 12)).toEqual(Buffer.concat([filled(8, 0xaa), filled(4, 0)]));
    expect(await read(l, link, 0, 12)).toEqual(Buffer.concat([filled(8, 0xaa), filled(4, 0)]));
    expect(await sequence(l, link)).toMatchObject({ image: 1, direct: false, claimed: false });
    expect((await write(l, host, 2, 2, 0xee)).status).toBe(ScsiStatus.Good);
    expect(await read(l, link, 0, 4)).toEqual(Buffer.concat([filled(2, 0xaa), filled(2, 0xee)]));
    // The volume itself never changed.
    expect(await l.store.read(0n, 12)).toEqual(Buffer.concat([filled(4, 0xbb), filled(8, 0xcc)]));
    expect((await action(l, link, ReplicaClaimAction.EndImage)).status).toBe(ScsiStatus.Good);
    expect(await read(l, host, 0, 12)).toEqual(Buffer.concat([filled(4, 0xbb), filled(8, 0xcc)]));
  });

  it('negative control: without undo capture (TEST HOOK) the image at seq 1 reads today\'s data', async () => {
    replicaJournalHooks.captureUndo = false;
    const { l, link } = await threeRecords();
    expect((await action(l, link, ReplicaClaimAction.PresentImage, { group: 'g1', copy: 'dr', image: 1 })).status).toBe(ScsiStatus.Good);
    expect(await read(l, link, 0, 12)).not.toEqual(Buffer.concat([filled(8, 0xaa), filled(4, 0)]));
  });

  it('records received while an image is presented wait, and are applied in order after END IMAGE', async () => {
    const { l, link } = await threeRecords();
    expect((await action(l, link, ReplicaClaimAction.PresentImage, { group: 'g1', copy: 'dr', image: 2 })).status).toBe(ScsiStatus.Good);
    const r4 = record(l, link, 4, 3, 0, 2, 0x44);
    const r5 = record(l, link, 5, 4, 1, 2, 0x55);
    await new Promise((r) => setImmediate(r));
    expect(await sequence(l, link)).toMatchObject({ applied: 3, queued: 2 });
    expect(await read(l, link, 0, 8)).toEqual(filled(8, 0xbb));
    expect((await action(l, link, ReplicaClaimAction.EndImage)).status).toBe(ScsiStatus.Good);
    expect((await r4).status).toBe(ScsiStatus.Good);
    expect((await r5).status).toBe(ScsiStatus.Good);
    expect(await read(l, link, 0, 4)).toEqual(Buffer.concat([filled(1, 0x44), filled(2, 0x55), filled(1, 0xbb)]));
    expect(await sequence(l, link)).toMatchObject({ applied: 5, queued: 0 });
  });

  it('the undo limit moves the window: an image older than it is ILLEGAL REQUEST, INVALID FIELD IN PARAMETER LIST (byte 8)', async () => {
    const l = setupLun({ blocks: 8192 });
    const link = up(l, LINK, '23d000000001');
    expect((await action(l, link, ReplicaClaimAction.Claim, { group: 'g1', copy: 'dr', base: 0, undoLimitMiB: 1 })).status).toBe(ScsiStatus.Good);
    // 12 records of 256 KiB over written blocks: 1 MiB of undo holds the last 4.
    for (let k = 1; k <= 12; k++) expect((await record(l, link, k, k - 1, (k % 2) * 512, 512, k)).status).toBe(ScsiStatus.Good);
    const s = await sequence(l, link);
    expect(s.undoBytes).toBeLessThanOrEqual(1 << 20);
    expect(s.oldestImage).toBe(8);
    const old = await action(l, link, ReplicaClaimAction.PresentImage, { group: 'g1', copy: 'dr', image: 7 });
    expect(old.status).toBe(ScsiStatus.CheckCondition);
    expect(senseOf(old)).toEqual([0x05, 0x26, 0x00]);
    expect(fieldPointer(old)).toMatchObject({ inCdb: false, byte: 8 });
    expect((await action(l, link, ReplicaClaimAction.PresentImage, { group: 'g1', copy: 'dr', image: 8 })).status).toBe(ScsiStatus.Good);
    expect(await read(l, link, 0, 1024)).toEqual(Buffer.concat([filled(512, 8), filled(512, 7)]));
  });

  it('direct access rolls the volume back to the image, keeps the overlay\'s writes, and drops the history', async () => {
    const { l, link, host } = await threeRecords();
    expect((await action(l, link, ReplicaClaimAction.PresentImage, { group: 'g1', copy: 'dr', image: 1 })).status).toBe(ScsiStatus.Good);
    expect((await action(l, link, ReplicaClaimAction.Release)).status).toBe(ScsiStatus.Good);
    expect((await write(l, host, 10, 1, 0x77)).status).toBe(ScsiStatus.Good);
    expect((await action(l, link, ReplicaClaimAction.PresentImage, { group: 'g1', copy: 'dr', image: 1, direct: true })).status).toBe(ScsiStatus.Good);
    const want = Buffer.concat([filled(8, 0xaa), filled(2, 0), filled(1, 0x77), filled(1, 0)]);
    expect(await l.store.read(0n, 12)).toEqual(want);
    expect((await write(l, host, 0, 1, 0x11)).status).toBe(ScsiStatus.Good);
    expect(await l.store.read(0n, 1)).toEqual(filled(1, 0x11));
    expect(await sequence(l, link)).toMatchObject({ valid: false, oldestImage: null, undoBytes: 0, image: 1, direct: true });
    expect((await action(l, link, ReplicaClaimAction.EndImage)).status).toBe(ScsiStatus.Good);
    // Production claims again with a new base after its synchronization: the window starts there.
    expect((await action(l, link, ReplicaClaimAction.Claim, { group: 'g1', copy: 'dr', base: 9 })).status).toBe(ScsiStatus.Good);
    expect(await sequence(l, link)).toMatchObject({ applied: 9, valid: true, oldestImage: 9, image: null });
  });
});
