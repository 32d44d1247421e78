/** MemoryStore: thin chunks, zero-copy views, deallocation, WRITE SAME, mapping, resize, detach. */
import { describe, expect, it } from 'vitest';
import { MemoryStore, memoryPool } from '../../src/store/memory.ts';

const MiB = 1 << 20;
const TiB = 2 ** 40;

describe('MemoryStore', () => {
  it('is thin: a 1 TiB LUN allocates nothing until written, and unwritten blocks read as zero', () => {
    const s = new MemoryStore(BigInt(TiB / 512));
    expect(s.thin).toBe(true);
    expect(s.allocatedBytes()).toBe(0);
    const r = s.read(BigInt(TiB / 512) - 8n, 8);
    expect(r.length).toBe(4096);
    expect(r.every((b) => b === 0)).toBe(true);
    s.write(12345678n, Buffer.alloc(512, 0xab));
    expect(s.allocatedBytes()).toBe(MiB);
    expect(s.read(12345678n, 1).every((b) => b === 0xab)).toBe(true);
  });

  it('zero-filling a whole 1 TiB thin LUN with WRITE SAME is metadata only', () => {
    const s = new MemoryStore(BigInt(TiB / 512));
    for (let i = 0; i < 10; i++) s.write(BigInt(i) * 100_000_000n, Buffer.alloc(4096, 1));
    expect(s.allocatedBytes()).toBe(10 * MiB);
    const t0 = performance.now();
    s.writeSame(0n, Number(s.blockCount), Buffer.alloc(512), false);
    expect(performance.now() - t0).toBeLessThan(2000);
    expect(s.allocatedBytes()).toBe(0);
    expect(s.read(100_000_000n, 8).every((b) => b === 0)).toBe(true);
    expect(s.mapping(0n)).toEqual({ mapped: false, blocks: s.blockCount });
  });

  it('unwritten reads share one preallocated zero buffer', () => {
    const s = new MemoryStore(4096n);
    const a = s.read(0n, 4);
    const b = s.read(100n, 2);
    expect(a.buffer).toBe(b.buffer);
  });

  it('read() returns a view inside one chunk and a copy across chunks', () => {
    const s = new MemoryStore(8192n, { chunkBytes: 64 * 1024 }); // 128 blocks per chunk
    const data = Buffer.alloc(512 * 256);
    for (let i = 0; i < data.length; i++) data[i] = i & 0xff;
    s.write(0n, data);
    const v1 = s.read(0n, 4);
    const v2 = s.read(4n, 4);
    expect(v1.buffer).toBe(v2.buffer); // both views of chunk 0
    const across = s.read(126n, 4); // straddles chunks 0 and 1
    expect(across.equals(data.subarray(126 * 512, 130 * 512))).toBe(true);
    expect(across.buffer).not.toBe(v1.buffer);
    const into = Buffer.alloc(512 * 2);
    expect(s.read(1n, 2, into)).toBe(into);
    expect(into.equals(data.subarray(512, 3 * 512))).toBe(true);
  });

  it('a write spanning chunks lands in both', () => {
    const s = new MemoryStore(1024n, { chunkBytes: 64 * 1024 });
    const d = Buffer.alloc(512 * 10, 7);
    s.write(123n, d);
    expect(s.read(123n, 10).equals(d)).toBe(true);
    expect(s.allocatedBytes()).toBe(2 * 64 * 1024);
  });

  it('writing zeros over a whole chunk frees it; zeros over an unallocated chunk allocate nothing', () => {
    const s = new MemoryStore(4096n, { chunkBytes: 64 * 1024 });
    s.write(0n, Buffer.alloc(512 * 4, 1));
    expect(s.allocatedBytes()).toBe(64 * 1024);
    s.write(0n, Buffer.alloc(64 * 1024));
    expect(s.allocatedBytes()).toBe(0);
    s.write(1000n, Buffer.alloc(512 * 3));
    expect(s.allocatedBytes()).toBe(0);
  });

  it('unmap frees whole chunks and zeroes partial ones', () => {
    const s = new MemoryStore(1024n, { chunkBytes: 64 * 1024 }); // 8 chunks of 128 blocks
    s.write(0n, Buffer.alloc(512 * 1024, 0x55));
    expect(s.allocatedBytes()).toBe(512 * 1024);
    s.unmap(100n, 300); // partial chunk 0, whole 1 and 2, partial chunk 3
    expect(s.allocatedBytes()).toBe(6 * 64 * 1024);
    expect(s.read(99n, 1).every((b) => b === 0x55)).toBe(true);
    expect(s.read(100n, 1).every((b) => b === 0)).toBe(true);
    expect(s.read(399n, 1).every((b) => b === 0)).toBe(true);
    expect(s.read(400n, 1).every((b) => b === 0x55)).toBe(true);
    expect(s.mapping(0n)).toEqual({ mapped: true, blocks: 128n });
    expect(s.mapping(128n)).toEqual({ mapped: false, blocks: 256n });
    expect(s.mapping(300n)).toEqual({ mapped: false, blocks: 84n });
    expect(s.mapping(384n)).toEqual({ mapped: true, blocks: 1024n - 384n });
  });

  it('WRITE SAME with a non-zero pattern writes every block', () => {
    const s = new MemoryStore(1024n, { chunkBytes: 64 * 1024 });
    const blk = Buffer.alloc(512);
    for (let i = 0; i < 512; i++) blk[i] = i & 0xff;
    s.writeSame(100n, 200, blk, false);
    for (const lba of [100n, 127n, 128n, 299n]) expect(s.read(lba, 1).equals(blk)).toBe(true);
    expect(s.read(99n, 1).every((b) => b === 0)).toBe(true);
    expect(s.read(300n, 1).every((b) => b === 0)).toBe(true);
  });

  it('thick allocates everything up front, reports mapped, and zero writes keep memory', () => {
    const s = new MemoryStore(2048n, { thick: true, chunkBytes: 64 * 1024 });
    expect(s.thin).toBe(false);
    expect(s.allocatedBytes()).toBe(2048 * 512);
    s.write(0n, Buffer.alloc(64 * 1024));
    expect(s.allocatedBytes()).toBe(2048 * 512);
    expect(s.mapping(0n)).toEqual({ mapped: true, blocks: 2048n });
  });

  it('resize shrinks and grows; regrown space reads zero', () => {
    const s = new MemoryStore(1000n, { chunkBytes: 64 * 1024 });
    s.write(900n, Buffer.alloc(512 * 100, 9));
    s.resize(950n);
    expect(s.blockCount).toBe(950n);
    expect(() => s.read(949n, 2)).toThrow(RangeError);
    s.resize(1000n);
    expect(s.read(900n, 50).every((b) => b === 9)).toBe(true);
    expect(s.read(950n, 50).every((b) => b === 0)).toBe(true);
  });

  it('refuses accesses beyond the end', () => {
    const s = new MemoryStore(10n);
    expect(() => s.read(9n, 2)).toThrow(RangeError);
    expect(() => s.write(10n, Buffer.alloc(512))).toThrow(RangeError);
  });

  it('detach moves a viewed chunk aside: the view keeps its data, the slab slot is not reused until every view is let go', () => {
    const s = new MemoryStore(BigInt((4 * MiB) / 512));
    s.write(0n, Buffer.alloc(2 * MiB, 0x11));
    const view = s.read(8n, 8); // a view of chunk 0, as a READ's Data-In would hold
    const other = s.read(100n, 4); // a second READ's view of the same chunk
    const pool = memoryPool.used;
    const free = s.detach(8n, 8, view)!;
    expect(memoryPool.used - pool).toBe(MiB); // the old memory stays charged while in use
    s.write(8n, Buffer.alloc(4096, 0x22));
    expect(view.every((b) => b === 0x11)).toBe(true);
    expect(s.read(8n, 8).every((b) => b === 0x22)).toBe(true);
    // The second view's chunk has moved already: it joins the same retirement, no second copy.
    const freeOther = s.detach(100n, 4, other)!;
    expect(memoryPool.used - pool).toBe(MiB);
    // Chunk 0 freed and written again must not land in the retired slot under the views.
    s.unmap(0n, MiB / 512);
    s.write(0n, Buffer.alloc(MiB, 0x33));
    expect(s.read(0n, 1)[0]).toBe(0x33);
    free();
    free(); // idempotent
    expect(memoryPool.used - pool).toBe(MiB); // `other` still uses the old memory
    s.write(100n, Buffer.alloc(2048, 0x44));
    expect(view.every((b) => b === 0x11) && other.every((b) => b === 0x11)).toBe(true);
    freeOther();
    expect(memoryPool.used).toBe(pool);
    expect(s.allocatedBytes()).toBe(2 * MiB);
    // A view of the zero buffer (unwritten chunk) or a copy (across chunks) needs nothing.
    const zero = s.read(BigInt((3 * MiB) / 512), 8);
    expect(s.detach(BigInt((3 * MiB) / 512), 8, zero)).not.toBeNull();
    const across = s.read(BigInt(MiB / 512) - 1n, 2);
    expect(s.detach(BigInt(MiB / 512) - 1n, 2, across)).not.toBeNull();
    expect(memoryPool.used).toBe(pool);
    s.close();
  });

  it('detach copies nothing and answers null when the pool has no room for the copy', () => {
    const s = new MemoryStore(BigInt((2 * MiB) / 512));
    s.write(0n, Buffer.alloc(MiB, 0x44));
    const view = s.read(0n, 8);
    const limit = memoryPool.limit;
    memoryPool.limit = memoryPool.used; // full
    try {
      expect(s.detach(0n, 8, view)).toBeNull();
    } finally {
      memoryPool.limit = limit;
    }
    s.close();
  });

  it('supports a size that is not a multiple of the chunk', () => {
    const s = new MemoryStore(100n, { thick: true });
    expect(s.allocatedBytes()).toBe(100 * 512);
    s.write(99n, Buffer.alloc(512, 1));
    expect(s.read(98n, 2).subarray(512).every((b) => b === 1)).toBe(true);
  });
});
