/**
 * MemoryStore chunks shared copy-on-write (share(), releaseShared(), a thin store adopting a shared
 * chunk on write()): what the splitter's journal and a thin replica do with an EXTENDED COPY
 * piece instead of copying it. Each holder sees the data as it was shared until it writes itself;
 * a write by one holder never shows in another; slab slots are not reused while shared memory is
 * still held, and are once it is let go.
 */
import { describe, expect, it } from 'vitest';
import { MemoryStore, memoryPool, releaseShared } from '../../src/store/memory.ts';

const MiB = 1 << 20;
const C = MiB / 512; // blocks per chunk

const filled = (v: number) => Buffer.alloc(MiB, v);
const all = (b: Buffer, v: number) => b.every((x) => x === v);

/** Two 2-chunk stores: chunk 0 of `prod` filled with `v`, shared, and adopted by `replica` (the journal record let go). */
function adopted(v: number): { prod: MemoryStore; replica: MemoryStore } {
  const prod = new MemoryStore(BigInt(2 * C));
  const replica = new MemoryStore(BigInt(2 * C));
  prod.write(0n, filled(v));
  const c = prod.share(0n, C)!;
  replica.write(0n, c);
  releaseShared(c);
  return { prod, replica };
}

describe('MemoryStore copy-on-write sharing', () => {
  it('share() is one whole allocated chunk only', () => {
    const s = new MemoryStore(BigInt(4 * C));
    expect(s.share(0n, C)).toBeNull(); // unallocated
    s.write(0n, filled(1));
    expect(s.share(0n, C - 1)).toBeNull();
    expect(s.share(1n, C)).toBeNull();
    const c = s.share(0n, C)!;
    expect(all(c, 1)).toBe(true);
    releaseShared(c);
  });

  it('the owner writing after share() moves to a copy: the shared buffer keeps the data as shared', () => {
    const s = new MemoryStore(BigInt(4 * C));
    s.write(0n, filled(1));
    const c = s.share(0n, C)!;
    s.write(8n, Buffer.alloc(512, 2)); // one block inside the shared chunk
    expect(all(c, 1)).toBe(true);
    const now = s.read(0n, C) as Buffer;
    expect(all(now.subarray(8 * 512, 9 * 512), 2)).toBe(true);
    expect(all(now.subarray(0, 8 * 512), 1)).toBe(true);
    // WRITE SAME, UNMAP of part of it, and a whole-chunk unmap change the owner only too.
    const c2 = s.share(0n, C)!;
    s.writeSame(0n, 4, Buffer.alloc(512, 3), false);
    s.unmap(16n, 4);
    expect(all(c2.subarray(8 * 512, 9 * 512), 2)).toBe(true);
    expect(all(c2.subarray(0, 8 * 512), 1)).toBe(true);
    s.unmap(0n, C);
    expect(all(c2.subarray(0, 8 * 512), 1)).toBe(true);
    releaseShared(c);
    releaseShared(c2);
  });

  it('a thin store written a shared chunk adopts it (no copy); either side writing later does not show in the other', () => {
    const prod = new MemoryStore(BigInt(4 * C));
    const replica = new MemoryStore(BigInt(4 * C));
    prod.write(BigInt(C), filled(5));
    const c = prod.share(BigInt(C), C)!;
    const before = replica.allocatedBytes();
    replica.write(BigInt(C), c);
    releaseShared(c); // the journal record lets go
    expect(replica.allocatedBytes()).toBe(before + MiB);
    // Adopted: the replica's chunk is the very memory production holds.
    expect((replica.read(BigInt(C), C) as Buffer).buffer).toBe((prod.read(BigInt(C), C) as Buffer).buffer);
    prod.write(BigInt(C), Buffer.alloc(512, 6));
    expect(all(replica.read(BigInt(C), C) as Buffer, 5)).toBe(true);
    replica.write(BigInt(C) + 1n, Buffer.alloc(512, 7));
    const p = prod.read(BigInt(C), 2) as Buffer;
    expect(all(p.subarray(0, 512), 6)).toBe(true);
    expect(all(p.subarray(512), 5)).toBe(true);
    const r = replica.read(BigInt(C), 2) as Buffer;
    expect(all(r.subarray(0, 512), 5)).toBe(true);
    expect(all(r.subarray(512), 7)).toBe(true);
  });

  it('a thick store copies a shared chunk written to it instead of adopting it', () => {
    const prod = new MemoryStore(BigInt(2 * C));
    const thick = new MemoryStore(BigInt(2 * C), { thick: true });
    prod.write(0n, filled(9));
    const c = prod.share(0n, C)!;
    thick.write(0n, c);
    releaseShared(c);
    expect((thick.read(0n, C) as Buffer).buffer).not.toBe((prod.read(0n, C) as Buffer).buffer);
    prod.write(0n, filled(1));
    expect(all(thick.read(0n, C) as Buffer, 9)).toBe(true);
  });

  it('the slab slot of shared memory is not reused while a holder keeps it, and is once the last lets go', () => {
    const s = new MemoryStore(BigInt(4 * C));
    s.write(0n, filled(1));
    const c = s.share(0n, C)!;
    s.unmap(0n, C); // the owner frees the chunk; the record still holds it
    s.write(0n, filled(2)); // chunk 0 again: other memory, since the slot is still in use
    expect(all(c, 1)).toBe(true);
    expect(all(s.read(0n, C) as Buffer, 2)).toBe(true);
    releaseShared(c);
    s.unmap(0n, C);
    s.write(0n, Buffer.alloc(512, 3)); // the slot is free again: reused, zeroed outside the write
    const now = s.read(0n, C) as Buffer;
    expect(all(now.subarray(0, 512), 3)).toBe(true);
    expect(all(now.subarray(512), 0)).toBe(true);
  });

  it('a chunk that adopted another chunk of its own store retires the slot of that memory, not its own', () => {
    // An EXTENDED COPY of chunk 0 onto chunk 1 of one LU: chunk 1 adopts chunk 0's memory (slot 0)
    // while a record still holds chunk 1's old memory (slot 1). Slot 1 must stay out of use until
    // that record lets go, whatever happens to the memory of slot 0. (Retiring the slot of the
    // chunk instead of the memory's let slot 1 be zeroed and rewritten under the record: the
    // splitter soak's wrong bookmark images.)
    const s = new MemoryStore(BigInt(4 * C));
    s.write(BigInt(C), filled(1));
    const j1 = s.share(BigInt(C), C)!; // a record holds slot 1's memory
    s.write(0n, filled(2));
    const j0 = s.share(0n, C)!; // a record holds slot 0's memory
    s.write(BigInt(C), j0); // chunk 1 adopts it
    s.unmap(0n, C); // chunk 0 lets go of slot 0's memory
    s.write(BigInt(C), Buffer.alloc(512, 3)); // chunk 1 moves to a copy of its own
    releaseShared(j0); // the last holder of slot 0's memory
    s.unmap(BigInt(C), C);
    s.write(BigInt(C), filled(4)); // chunk 1 needs memory again
    expect(all(j1, 1)).toBe(true);
    expect(all(s.read(BigInt(C), C) as Buffer, 4)).toBe(true);
    // Slot 0 is free again (its last holder let go) and is reused; slot 1 is not while j1 holds it.
    expect((s.read(BigInt(C), C) as Buffer).buffer).not.toBe(j1.buffer); // chunk 1: memory outside the slab
    s.write(0n, filled(5));
    const c0 = s.read(0n, C) as Buffer;
    expect(c0.buffer).toBe(j1.buffer);
    expect(c0.byteOffset).toBe(j1.byteOffset - MiB);
    expect(all(j1, 1)).toBe(true);
    releaseShared(j1);
  });

  it('a detached view of a shared chunk holds it: the last other holder writing moves to a copy', () => {
    const { prod, replica } = adopted(4);
    const view = replica.read(0n, C) as Buffer; // a READ's Data-In, still queued
    const done = replica.detach(0n, C, view)!;
    prod.write(0n, filled(8)); // production moves away: the replica and the view are left
    replica.write(0n, Buffer.alloc(512, 9)); // still shared with the view: the replica copies
    expect(all(view, 4)).toBe(true);
    done();
    expect(all((replica.read(0n, 1) as Buffer), 9)).toBe(true);
    expect(all(prod.read(0n, C) as Buffer, 8)).toBe(true);
  });

  it('close() lets go of shared chunks: the other holder writes in place again, and the pool balances', () => {
    const used = memoryPool.used;
    const { prod, replica } = adopted(4);
    replica.close();
    const mem = (prod.read(0n, C) as Buffer).buffer;
    prod.write(0n, Buffer.alloc(512, 1));
    expect((prod.read(0n, C) as Buffer).buffer).toBe(mem); // sole holder: no copy
    prod.close();
    expect(memoryPool.used).toBe(used);
  });
});
