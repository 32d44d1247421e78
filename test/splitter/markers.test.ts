/**
 * Markers and transfer control, in process (a group over a memory LU, writes through lu.submit):
 * paused writes mark regions instead of growing the journal; start_transfer sends the marked
 * regions only; the full sweep sends only regions whose digests differ; clear_markers trusts the
 * operator (its negative control: a copy that was not seeded diverges); disable_group tracks
 * nothing and makes a full sweep due.
 */
import { describe, expect, it } from 'vitest';
import { ConsistencyGroup, RegionMarkers } from '../../src/splitter/group.ts';
import { parseSplitterSpec } from '../../src/splitter/policy.ts';
import { verifyGroup } from '../../src/splitter/verify.ts';
import { cdb16 } from '../helpers/cdb.ts';
import { inProcessLun, pattern } from './rig.ts';

const MiB = 1 << 20;
const REGION = 2048; // blocks of 512 in a 1 MiB region

function protectedLun(blocks: number, startTransfer = false) {
  const { lu, submit, write } = inProcessLun(blocks, '6001405000000e00', 'M0');
  const g = new ConsistencyGroup({ name: 'g', spec: parseSplitterSpec('rp-vnx-flare31'), luns: [lu], copies: ['local'], journalBytes: 64 * MiB, startTransfer });
  const replica = g.copies[0].replicas[0];
  const same = () => Buffer.compare(replica.read(0n, blocks) as Buffer, lu.store.read(0n, blocks) as Buffer) === 0;
  return { lu, g, submit, write, replica, same };
}

describe('RegionMarkers', () => {
  it('marks every region a range touches, once, and lists them in order', () => {
    const m = new RegionMarkers(10n * BigInt(REGION) + 5n, 512);
    expect(m.regions).toBe(11);
    m.mark(BigInt(REGION - 1), 2); // straddles regions 0 and 1
    m.mark(0n, 1);
    m.mark(10n * BigInt(REGION), 5); // the short last region
    expect(m.count).toBe(3);
    expect([...m.marked()]).toEqual([0, 1, 10]);
    expect(m.region(10)).toEqual([10n * BigInt(REGION), 5]);
    m.unmark(1);
    expect([...m.marked()]).toEqual([0, 10]);
    m.clear();
    expect(m.count).toBe(0);
  });
});

describe('transfer paused: markers', () => {
  it('writes mark regions, the journal does not grow, start_transfer sends only the marked regions', async () => {
    const { g, write, same } = protectedLun(64 * REGION, true);
    await g.ready();
    await write(0, pattern(4096, 1));
    await new Promise((r) => setImmediate(r));
    g.pauseTransfer('test');
    const j = g.status().journal;
    // 3 regions written many times: 200 writes, 800 KiB, none of it journaled.
    for (let i = 0; i < 200; i++) await write([5, 17, 40][i % 3] * REGION + (i % 50) * 8, pattern(4096, 100 + i));
    const p = g.status();
    expect(p.journal).toMatchObject({ lastSeq: j.lastSeq, bytes: j.bytes, records: j.records });
    expect(p.markers[0]).toEqual({ copy: 'local', regions: 3, bytes: 3 * MiB, fullSweep: false });
    expect(same()).toBe(false);
    await g.startTransfer('test');
    expect(g.transfer).toBe('active');
    expect(g.status().initialization).toMatchObject({ kind: 'markers', regions: 3, bytesSent: 3 * MiB, volumeBytes: 64 * MiB, percent: 4.69, done: true });
    expect(g.status().markers[0].regions).toBe(0);
    expect(same()).toBe(true);
    expect((await verifyGroup(g)).consistent).toBe(true);
  });

  it('records journaled before the pause are applied before the marked regions (older first)', async () => {
    const { g, write, same } = protectedLun(8 * REGION, true);
    await g.ready();
    g.applyInline = false; // left to the distributor, not applied as it is split
    // Journaled, and paused before the distributor runs: undistributed at the pause.
    await write(0, pattern(4096, 1));
    g.pauseTransfer('test');
    expect(g.status().copies[0].lag.records).toBe(1);
    await write(0, pattern(4096, 2)); // marks region 0: the newer data must win
    await g.startTransfer('test');
    expect(same()).toBe(true);
  });

  it('a WRITE SAME over a whole 1 TiB thin LU while paused marks 1,048,576 regions and journals nothing', async () => {
    const blocks = 2 ** 31; // 1 TiB of 512-byte blocks
    const { g, submit } = protectedLun(blocks, true);
    await g.ready();
    g.pauseTransfer('test');
    const j = g.status().journal;
    const ws = cdb16(0x93, 0, 0); // WRITE SAME(16), NUMBER OF LOGICAL BLOCKS 0: to the end (WSNZ=0)
    ws[1] = 0x08; // UNMAP
    await submit(ws, Buffer.alloc(512));
    expect(g.status().journal.lastSeq).toBe(j.lastSeq);
    expect(g.status().markers[0].regions).toBe(1 << 20);
  });

  it('pausing during the synchronization keeps the regions not yet sent marked', async () => {
    const { g, write, same } = protectedLun(64 * REGION, true);
    await g.ready();
    g.pauseTransfer('test');
    for (let r = 0; r < 32; r++) await write(r * REGION, pattern(4096, r));
    const run = g.startTransfer('test');
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
    g.pauseTransfer('test: mid-sync');
    await run;
    const left = g.status().markers[0].regions;
    expect(left).toBeGreaterThan(0);
    expect(left).toBeLessThan(32);
    await g.startTransfer('test');
    expect(g.status().initialization.regions).toBe(left);
    expect(same()).toBe(true);
  });
});

describe('first initialization: a full sweep comparing region digests', () => {
  it('sends only the regions whose digests differ, including regions allocated on the replica only', async () => {
    const { g, lu, replica, same } = protectedLun(64 * REGION);
    for (let r = 0; r < 8; r++) lu.store.write(BigInt(r * 8 * REGION), pattern(64 << 10, r));
    // The replica already holds regions 0-5 as production has them; region 7*8 is stale, and a
    // region production never wrote (3) holds garbage on the replica.
    for (let r = 0; r < 6; r++) replica.write(BigInt(r * 8 * REGION), pattern(64 << 10, r));
    replica.write(BigInt(7 * 8 * REGION), pattern(64 << 10, 99));
    replica.write(BigInt(3 * REGION), pattern(4096, 5));
    await g.startTransfer('test');
    const i = g.status().initialization;
    // Compared: 8 regions allocated on production + 1 on the replica only. Sent: regions 48, 56, 3.
    expect(i).toMatchObject({ kind: 'full-sweep', regionsCompared: 9, regions: 3, bytesSent: 3 * MiB, done: true });
    expect(same()).toBe(true);
    expect(g.status().markers[0].fullSweep).toBe(false);
  });
});

describe('clear_markers and disable_group', () => {
  it('clear_markers needs the transfer paused and declares the copy identical: no sweep', async () => {
    const { g, lu } = protectedLun(16 * REGION);
    lu.store.write(0n, pattern(MiB, 1));
    void g.startTransfer('x');
    expect(g.transfer).toBe('init');
    expect(() => g.clearMarkers()).toThrow(/transfer is init; clear_markers needs it paused/);
    await g.ready();
    g.pauseTransfer('test');
    expect(() => g.clearMarkers('dr')).toThrow(/no copy "dr"/);
    g.clearMarkers();
    expect(g.status().markers[0]).toMatchObject({ regions: 0, fullSweep: false });
  });

  it('negative control: markers cleared on a copy that was not seeded leave it diverged, and verify says so', async () => {
    const { g, lu } = protectedLun(16 * REGION);
    lu.store.write(0n, pattern(MiB, 1)); // the data production had before the group
    g.clearMarkers(); // ... but nobody restored it onto the replica
    await g.startTransfer('test');
    expect(g.status().initialization.kind).toBe('none'); // nothing to send: straight to active
    const v = await verifyGroup(g);
    expect(v.consistent).toBe(false);
    expect(v.diverged[0]).toMatchObject({ lba: '0', lbaEnd: String(REGION - 1) });
  });

  it('disable_group: nothing is split or tracked; enable_group makes a full sweep that brings the copy back', async () => {
    const { g, write, same } = protectedLun(16 * REGION, true);
    await g.ready();
    g.disable('test');
    expect(g.state).toBe('disabled');
    expect(() => g.startTransfer('x')).toThrow(/disabled: enable_group first/);
    const j = g.status().journal.lastSeq;
    await write(5 * REGION, pattern(4096, 3));
    expect(g.status().journal.lastSeq).toBe(j);
    expect(g.status().markers[0]).toMatchObject({ regions: 0, fullSweep: true });
    await g.enable(true, 'test');
    expect(g.status().initialization).toMatchObject({ kind: 'full-sweep', regions: 1, bytesSent: MiB });
    expect(same()).toBe(true);
  });
});
