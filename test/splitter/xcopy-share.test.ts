/**
 * EXTENDED COPY under `support` with a memory journal: a piece that is one whole 1 MiB chunk of a
 * memory destination is journaled as that chunk shared copy-on-write (MemoryStore.share) and a
 * thin memory replica adopts it, so neither copies it (the XCOPY performance goal). What
 * must still hold: the copy receives the destination blocks with the data as copied, in write
 * order; a write after the copy changes production, then the copy, and never the image before it.
 */
import { describe, expect, it } from 'vitest';
import { ConsistencyGroup } from '../../src/splitter/group.ts';
import { disableImageAccess, enableImageAccess } from '../../src/splitter/image.ts';
import { parseSplitterSpec } from '../../src/splitter/policy.ts';
import type { LogicalUnit } from '../../src/scsi/lu.ts';
import { ScsiTarget } from '../../src/scsi/target.ts';
import { ScsiStatus, TaskAttribute } from '../../src/scsi/types.ts';
import type { ScsiResponse } from '../../src/scsi/types.ts';
import { MemoryStore } from '../../src/store/memory.ts';
import { cdb16 } from '../helpers/cdb.ts';
import { makeNexus } from '../scsi/sbc-fixture.ts';
import { xcopyCdb, xcopyList } from '../scsi/xcopy-params.ts';

const BS = 512;
const CHUNK = (1 << 20) / BS;
const NAA = ['6001405000000d00', '6001405000000d01'];

function rig() {
  const t = new ScsiTarget('iqn.2026-11.dev.arraysim:xcopy-share');
  const lus = NAA.map((naa, i) => t.addLun({ lun: i, store: new MemoryStore(BigInt(4 * CHUNK)), naa, serial: `XS${i}` }));
  const nexus = makeNexus();
  t.nexusUp(nexus);
  for (const lu of lus) lu.ua.forget(nexus.key);
  const g = new ConsistencyGroup({ name: 'g', spec: parseSplitterSpec('ats=support'), luns: lus, copies: ['local'], journalBytes: 64 << 20, startTransfer: true });
  let tag = 0;
  const submit = async (lu: LogicalUnit, cdb: Buffer, dataOut: Buffer): Promise<ScsiResponse> => {
    const r = await lu.submit({ lun: lu.lun, cdb, nexus, taskTag: tag++, attr: TaskAttribute.Simple, expectedLength: dataOut.length, isRead: false, isWrite: true, dataOut });
    expect(r.status, r.sense?.toString('hex')).toBe(ScsiStatus.Good);
    return r;
  };
  const xcopy = (src: number, srcLba: number, dst: number, dstLba: number, blocks: number) => {
    const list = xcopyList({ cscds: NAA.map((naa) => ({ naa })), segments: [{ src, dst, blocks, srcLba, dstLba }] });
    return submit(lus[0], xcopyCdb(list.length), list);
  };
  const write = (lu: number, lba: number, data: Buffer) => submit(lus[lu], cdb16(0x8a, lba, data.length / BS), data);
  const drained = async () => { while (g.copy().appliedSeq < g.journal.nextSeq - 1) await new Promise((r) => setImmediate(r)); };
  const replica = (i: number) => g.copy().replicas[i];
  return { lus, g, xcopy, write, drained, replica };
}

const pattern = (bytes: number, seed: number) => {
  const b = Buffer.alloc(bytes);
  for (let i = 0; i < bytes; i += 4) b.writeUInt32BE(((i + 1) * 2654435761 + seed * 40503) >>> 0, i);
  return b;
};
const view = (s: { read(l: bigint, n: number): unknown }, lba: number, blocks: number) => s.read(BigInt(lba), blocks) as Buffer;

describe('EXTENDED COPY of whole chunks, shared copy-on-write with the journal and the replica', () => {
  it('the replica adopts the destination chunk; later writes to either side do not show in the other', async () => {
    const r = rig();
    const data = pattern(2 * CHUNK * BS, 1);
    await r.write(0, 0, data);
    await r.xcopy(0, 0, 1, 2 * CHUNK, 2 * CHUNK);
    await r.drained();
    // Shared, not copied: the replica's chunk is production's memory (the journal let go of it).
    expect(view(r.replica(1), 2 * CHUNK, CHUNK).buffer).toBe(view(r.lus[1].store, 2 * CHUNK, CHUNK).buffer);
    expect(view(r.replica(1), 2 * CHUNK, 2 * CHUNK).equals(data)).toBe(true);
    // A write to production after the copy: the replica keeps the copy until the record arrives
    // (left to the distributor, not applied as it is split).
    r.g.applyInline = false;
    const w = pattern(8 * BS, 2);
    await r.write(1, 2 * CHUNK + 16, w);
    const copied = Buffer.from(view(r.replica(1), 2 * CHUNK, CHUNK));
    expect(copied.equals(data.subarray(0, CHUNK * BS))).toBe(true);
    await r.drained();
    expect(view(r.replica(1), 2 * CHUNK, 2 * CHUNK).equals(view(r.lus[1].store, 2 * CHUNK, 2 * CHUNK))).toBe(true);
    expect(view(r.lus[1].store, 2 * CHUNK + 16, 8).equals(w)).toBe(true);
  });

  it('a write right behind the copy, before distribution: the copy gets both in order, and the image between them is the copy', async () => {
    const r = rig();
    const data = pattern(CHUNK * BS, 3);
    await r.write(0, CHUNK, data);
    await r.drained();
    await r.xcopy(0, CHUNK, 1, 0, CHUNK);
    const mark = r.g.bookmark('after-copy');
    // No turn of the event loop since the copy: its record (the shared chunk) is not applied yet.
    expect(r.g.copy().appliedSeq).toBeLessThan(mark.seq);
    const w = pattern(4 * BS, 4);
    await r.write(1, 100, w);
    const rec = r.g.journal.at(mark.seq)!;
    expect(rec.data!.equals(data)).toBe(true); // the record keeps the data as copied
    await r.drained();
    const prod = Buffer.from(view(r.lus[1].store, 0, CHUNK));
    expect(view(r.replica(1), 0, CHUNK).equals(prod)).toBe(true);
    const c = r.g.copy();
    await enableImageAccess(r.g, c, 'after-copy', 'logged');
    expect(view(c.replicas[1], 0, CHUNK).equals(data)).toBe(true);
    await disableImageAccess(r.g, c, true);
    await r.drained();
    expect(view(c.replicas[1], 0, CHUNK).equals(prod)).toBe(true);
  });

  it('a copy onto itself and a copy of an unallocated chunk reach the replica too', async () => {
    const r = rig();
    const data = pattern(CHUNK * BS, 5);
    await r.write(0, 0, data);
    await r.xcopy(0, 0, 0, 0, CHUNK); // onto itself
    await r.xcopy(0, 3 * CHUNK, 1, CHUNK, CHUNK); // zeros: nothing to share
    await r.write(1, CHUNK, pattern(BS, 6));
    await r.xcopy(0, 3 * CHUNK, 1, CHUNK, CHUNK); // zeros over written blocks
    await r.drained();
    for (const i of [0, 1]) expect(view(r.replica(i), 0, 4 * CHUNK).equals(view(r.lus[i].store, 0, 4 * CHUNK)), `LU ${i}`).toBe(true);
    expect(view(r.replica(1), CHUNK, CHUNK).every((b) => b === 0)).toBe(true);
  });
});
