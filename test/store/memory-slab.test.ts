/**
 * MemoryStore slabs and the memory pool: a freed chunk written again starts from zeros and holds
 * only its own LBAs; slabs go when their last chunk does; the pool limit turns "out of memory"
 * into SPACE ALLOCATION FAILED WRITE PROTECT (27/07) at the LU instead of a crash.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { MemoryStore, memoryPool } from '../../src/store/memory.ts';
import { SpaceExhaustedError } from '../../src/store/store.ts';
import { ScsiTarget } from '../../src/scsi/target.ts';
import { makeNexus, senseOf, submit } from '../scsi/spc-fixture.ts';

const MiB = 1 << 20;
const blocksPerChunk = MiB / 512;

describe('MemoryStore slabs', () => {
  it('a chunk freed and written again is zero outside the new write, and other chunks are untouched', () => {
    const s = new MemoryStore(BigInt(4 * blocksPerChunk));
    s.write(0n, Buffer.alloc(MiB, 0xaa));
    s.write(BigInt(blocksPerChunk), Buffer.alloc(MiB, 0xbb));
    const view = s.read(0n, 1); // a view that a Data-In could still hold
    s.unmap(0n, blocksPerChunk); // frees chunk 0
    expect(s.allocatedBytes()).toBe(MiB);
    s.write(8n, Buffer.alloc(512, 0xcc)); // chunk 0 again, one block
    const c0 = s.read(0n, blocksPerChunk);
    expect(c0.subarray(0, 8 * 512).every((b) => b === 0)).toBe(true);
    expect(c0.subarray(8 * 512, 9 * 512).every((b) => b === 0xcc)).toBe(true);
    expect(c0.subarray(9 * 512).every((b) => b === 0)).toBe(true);
    expect(s.read(BigInt(blocksPerChunk), blocksPerChunk).every((b) => b === 0xbb)).toBe(true);
    // The old view still only ever shows chunk 0's own LBAs (now zero), never chunk 1's data.
    expect(view.every((b) => b === 0)).toBe(true);
  });

  it('zero writes over a whole chunk free it; the allocation counter follows', () => {
    const s = new MemoryStore(BigInt(2 * blocksPerChunk));
    s.write(0n, Buffer.alloc(2 * MiB, 1));
    expect(s.allocatedBytes()).toBe(2 * MiB);
    s.write(0n, Buffer.alloc(MiB));
    expect(s.allocatedBytes()).toBe(MiB);
    expect(s.read(0n, blocksPerChunk).every((b) => b === 0)).toBe(true);
  });
});

describe('memory pool limit', () => {
  const saved = memoryPool.limit;
  afterEach(() => { memoryPool.limit = saved; });

  it('the store refuses an allocation past the limit and gives the space back on unmap and close', () => {
    memoryPool.limit = memoryPool.used + 2 * MiB;
    const s = new MemoryStore(BigInt(8 * blocksPerChunk));
    s.write(0n, Buffer.alloc(2 * MiB, 7));
    expect(() => s.write(BigInt(2 * blocksPerChunk), Buffer.alloc(512, 7))).toThrow(SpaceExhaustedError);
    s.unmap(0n, blocksPerChunk);
    s.write(BigInt(2 * blocksPerChunk), Buffer.alloc(512, 7)); // room again
    const before = memoryPool.used;
    s.close();
    expect(memoryPool.used).toBe(before - 2 * MiB);
  });

  it('a WRITE SAME of a non-zero pattern over a huge thin LUN answers 27/07 and the process lives', async () => {
    const target = new ScsiTarget('iqn.2026-01.test.arraysim:pool');
    const store = new MemoryStore(1n << 31n); // 1 TiB of 512-byte blocks
    const lu = target.addLun({ lun: 0, store, naa: '5001405abcdef099', serial: 'POOL1' });
    const nexus = makeNexus();
    target.nexusUp(nexus);
    lu.ua.forget(nexus.key);
    memoryPool.limit = memoryPool.used + 64 * MiB;
    // WRITE SAME(16), NUMBER OF LOGICAL BLOCKS 0 = through the last LBA, pattern 0x5a.
    const cdb = Buffer.alloc(16);
    cdb[0] = 0x93;
    const r = await submit({ target, lu, nexus }, cdb, { dataOut: Buffer.alloc(512, 0x5a) });
    expect(senseOf(r)).toEqual([0x7, 0x27, 0x07]);
    expect(store.allocatedBytes()).toBeLessThanOrEqual(64 * MiB);
    store.close();
  });
});
