/**
 * Writes applied to caught-up local copies as they are split (ConsistencyGroup.appendData), in
 * process (a group over a memory LU, writes through lu.submit): the replica has the write when
 * the command ends, the journal records it without keeping its payload, the copy's undo data
 * still reaches the image before it, a copy with records pending gets the write in write order
 * from the distributor instead, and a replica that fails keeps the record for later.
 */
import { describe, expect, it } from 'vitest';
import { ConsistencyGroup } from '../../src/splitter/group.ts';
import { disableImageAccess, enableImageAccess } from '../../src/splitter/image.ts';
import { MemoryJournal } from '../../src/splitter/journal.ts';
import { parseSplitterSpec } from '../../src/splitter/policy.ts';
import { MemoryStore } from '../../src/store/memory.ts';
import { inProcessLun, pattern } from './rig.ts';

const BLOCKS = 8 * 2048; // 8 MiB of 512-byte blocks

/** A memory replica whose next write can be made to fail (a thin pool that ran out). */
class FailingStore extends MemoryStore {
  failNext = false;
  override write(lba: bigint, data: Buffer, fua?: boolean): void {
    if (this.failNext) { this.failNext = false; throw new Error('no space left in the pool'); }
    super.write(lba, data, fua);
  }
}

function protectedLun() {
  const { lu, write } = inProcessLun(BLOCKS, '6001405000000e20', 'IN0');
  const replica = new FailingStore(BigInt(BLOCKS));
  const g = new ConsistencyGroup({ name: 'g', spec: parseSplitterSpec('ats=support'), luns: [lu], copies: ['local'], journalBytes: 4 << 20, replicas: [[replica]], startTransfer: true });
  const onReplica = (lba: number, data: Buffer) => (replica.read(BigInt(lba), data.length / 512) as Buffer).equals(data);
  return { lu, g, write, replica, onReplica };
}

const turn = () => new Promise((r) => setImmediate(r));

describe('writes applied to caught-up copies as they are split', () => {
  it('the replica has the write when the command ends; the journal records it, without its payload', async () => {
    const { g, write, onReplica } = protectedLun();
    await g.ready();
    const seq = g.journal.nextSeq;
    const d = pattern(4096, 1);
    await write(64, d);
    // No distributor turn has run since the write (it runs on setImmediate).
    expect(onReplica(64, d)).toBe(true);
    expect(g.copy().appliedSeq).toBe(seq);
    const rec = g.journal.at(seq)!;
    expect(rec.kind).toBe('data');
    expect(rec.blocks).toBe(8);
    expect(rec.data).toBeNull();
    expect((g.journal as MemoryJournal).arenas.allocated).toBe(0); // no journal copy was made
  });

  it('negative control: left to the distributor, the replica lacks the write until its turn', async () => {
    const { g, write, onReplica } = protectedLun();
    await g.ready();
    g.applyInline = false;
    const d = pattern(4096, 2);
    await write(64, d);
    expect(onReplica(64, d)).toBe(false);
    expect(g.status().copies[0].lag.records).toBe(1);
    await turn();
    expect(onReplica(64, d)).toBe(true);
  });

  it('the undo data reaches the image before an inline write (logged access at a bookmark)', async () => {
    const { g, write, onReplica } = protectedLun();
    await g.ready();
    const a = pattern(8192, 3);
    const b = pattern(8192, 4);
    await write(0, a);
    g.bookmark('before-b');
    await write(0, b);
    await write(8, pattern(4096, 5)); // overlaps b's second half
    const c = g.copy();
    await enableImageAccess(g, c, 'before-b', 'logged');
    expect(onReplica(0, a)).toBe(true);
    await disableImageAccess(g, c, true);
    await turn();
    expect(onReplica(0, b.subarray(0, 4096))).toBe(true);
    expect(onReplica(8, pattern(4096, 5))).toBe(true);
  });

  it('a copy with records pending gets the next write from the distributor, in write order', async () => {
    const { g, write, onReplica } = protectedLun();
    await g.ready();
    g.applyInline = false;
    await write(0, pattern(4096, 6)); // pending
    g.applyInline = true;
    const newer = pattern(4096, 7);
    await write(0, newer); // same blocks: applied before the older record, it would be overwritten
    expect(g.status().copies[0].lag.records).toBe(2);
    await turn();
    expect(onReplica(0, newer)).toBe(true);
  });

  it('a replica that cannot take the write stops the transfer; the record keeps its own payload and is applied on start_transfer', async () => {
    const { g, write, replica, onReplica } = protectedLun();
    await g.ready();
    const d = pattern(4096, 8);
    const lent = Buffer.from(d);
    replica.failNext = true;
    await write(128, lent);
    lent.fill(0xee); // the initiator's buffer is reused: the journal must not have kept it
    expect(g.transfer).toBe('error');
    const rec = g.journal.at(g.journal.nextSeq - 1)!;
    expect(rec.data !== null && rec.data.equals(d)).toBe(true);
    expect(onReplica(128, d)).toBe(false);
    await g.startTransfer('test: the pool has room again');
    for (let i = 0; i < 100 && !onReplica(128, d); i++) await turn();
    expect(onReplica(128, d)).toBe(true);
  });
});
