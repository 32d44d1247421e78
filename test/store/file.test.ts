/** FileStore: sparse file creation, persistence across reopen, deallocation map, flush. */
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FileStore } from '../../src/store/file.ts';

let dir: string;
beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'arraysim-file-')); });
afterEach(() => { rmSync(dir, { recursive: true, force: true }); });

describe('FileStore', () => {
  it('creates a sparse file of the given size, reading zeros, all deallocated', async () => {
    const p = join(dir, 'lun.img');
    const s = await FileStore.open(p, { sizeBytes: 64 << 20 });
    expect(s.blockCount).toBe(BigInt((64 << 20) / 512));
    expect(statSync(p).size).toBe(64 << 20);
    expect((await s.read(1000n, 8)).every((b) => b === 0)).toBe(true);
    expect(s.mapping(0n)).toEqual({ mapped: false, blocks: s.blockCount });
    await s.close();
  });

  it('persists data across close and reopen, and takes the size from an existing file', async () => {
    const p = join(dir, 'lun.img');
    const s = await FileStore.open(p, { sizeBytes: 1 << 20 });
    const d = Buffer.alloc(4096);
    for (let i = 0; i < d.length; i++) d[i] = (i * 7) & 0xff;
    await s.write(10n, d, true);
    await s.flush();
    await s.close();
    const t = await FileStore.open(p, { sizeBytes: 8 << 20 }); // size ignored: the file exists
    expect(t.blockCount).toBe(2048n);
    expect((await t.read(10n, 8)).equals(d)).toBe(true);
    // After reopen the deallocation map is unknown: everything reports mapped.
    expect(t.mapping(0n)).toEqual({ mapped: true, blocks: 2048n });
    await t.close();
  });

  it('reads into a caller buffer', async () => {
    const s = await FileStore.open(join(dir, 'a.img'), { sizeBytes: 1 << 20 });
    await s.write(0n, Buffer.alloc(1024, 3));
    const into = Buffer.alloc(1024);
    expect(await s.read(0n, 2, into)).toBe(into);
    expect(into.every((b) => b === 3)).toBe(true);
    await s.close();
  });

  it('unmap zeroes the data and tracks deallocated extents', async () => {
    const s = await FileStore.open(join(dir, 'b.img'), { sizeBytes: 1 << 20 });
    await s.write(0n, Buffer.alloc(512 * 100, 0x44));
    expect(s.mapping(0n)).toEqual({ mapped: true, blocks: 100n });
    expect(s.mapping(100n)).toEqual({ mapped: false, blocks: 2048n - 100n });
    await s.unmap(10n, 20);
    expect((await s.read(10n, 20)).every((b) => b === 0)).toBe(true);
    expect((await s.read(9n, 1)).every((b) => b === 0x44)).toBe(true);
    expect(s.mapping(0n)).toEqual({ mapped: true, blocks: 10n });
    expect(s.mapping(10n)).toEqual({ mapped: false, blocks: 20n });
    await s.close();
  });

  it('unmapped data stays zero after reopen (LBPRZ holds on disk, not only in memory)', async () => {
    const p = join(dir, 'c.img');
    const s = await FileStore.open(p, { sizeBytes: 1 << 20 });
    await s.write(0n, Buffer.alloc(512 * 8, 0x11));
    await s.unmap(0n, 8);
    await s.close();
    const t = await FileStore.open(p);
    expect((await t.read(0n, 8)).every((b) => b === 0)).toBe(true);
    await t.close();
  });

  it('WRITE SAME with a pattern, and with zeros + unmap', async () => {
    const s = await FileStore.open(join(dir, 'd.img'), { sizeBytes: 4 << 20 });
    const blk = Buffer.alloc(512, 0x5a);
    await s.writeSame(100n, 3000, blk, false);
    const r = await s.read(100n, 3000);
    expect(r.every((b) => b === 0x5a)).toBe(true);
    await s.writeSame(100n, 3000, Buffer.alloc(512), true);
    expect((await s.read(100n, 3000)).every((b) => b === 0)).toBe(true);
    expect(s.mapping(100n).mapped).toBe(false);
    await s.close();
  });

  it('needs a size to create a file, and rejects a file smaller than a block', async () => {
    await expect(FileStore.open(join(dir, 'missing.img'))).rejects.toThrow(/size/);
    const p = join(dir, 'tiny.img');
    writeFileSync(p, Buffer.alloc(100, 1));
    await expect(FileStore.open(p)).rejects.toThrow(/smaller than one/);
  });

  it('refuses accesses beyond the end', async () => {
    const s = await FileStore.open(join(dir, 'e.img'), { sizeBytes: 4096 });
    await expect(s.read(7n, 2)).rejects.toThrow(RangeError);
    await s.close();
  });

  it('uses 4096-byte blocks when asked', async () => {
    const s = await FileStore.open(join(dir, 'f.img'), { sizeBytes: 1 << 20, blockSize: 4096 });
    expect(s.blockCount).toBe(256n);
    await s.write(255n, Buffer.alloc(4096, 1));
    expect((await s.read(255n, 1)).every((b) => b === 1)).toBe(true);
    await s.close();
  });
});
