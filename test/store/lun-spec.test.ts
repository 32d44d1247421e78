/** LUN SPEC parsing and store opening. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openStore, parseLunSpec, parseSize } from '../../src/store/lun-spec.ts';

describe('parseSize', () => {
  it.each([
    ['512', 512], ['4096B', 4096], ['1K', 1024], ['1KB', 1024], ['1KiB', 1024], ['256MiB', 256 * 2 ** 20],
    ['256m', 256 * 2 ** 20], ['1GiB', 2 ** 30], ['1.5G', 1.5 * 2 ** 30], ['1TiB', 2 ** 40], ['2T', 2 ** 41], ['8TB', 8 * 2 ** 40],
  ])('%s = %d bytes', (s, n) => expect(parseSize(s)).toBe(n));

  it.each(['', 'abc', '1XB', '-1G', '1 G B'])('rejects %j', (s) => expect(() => parseSize(s)).toThrow());
});

describe('parseLunSpec', () => {
  it('memory LUN with defaults', () => {
    expect(parseLunSpec('256MiB')).toEqual({
      kind: 'memory', sizeBytes: 256 * 2 ** 20, thick: false, removable: false, readonly: false, blockSize: 512, physicalBlockSize: 0, writeThrough: false,
    });
    expect(parseLunSpec('1GiB,physical=4096').physicalBlockSize).toBe(4096);
    expect(() => parseLunSpec('1GiB,block=4096,physical=512')).toThrow(/smaller than block/);
    expect(() => parseLunSpec('1GiB,physical=3000')).toThrow(/power of two/);
  });

  it('memory LUN with options', () => {
    expect(parseLunSpec('1GiB,thick,removable,readonly,block=4096')).toMatchObject({
      kind: 'memory', sizeBytes: 2 ** 30, thick: true, removable: true, readonly: true, blockSize: 4096,
    });
  });

  it('file LUN with and without size', () => {
    expect(parseLunSpec('file:/tmp/x.img,size=10GiB,block=4096')).toMatchObject({ kind: 'file', path: '/tmp/x.img', sizeBytes: 10 * 2 ** 30, blockSize: 4096 });
    expect(parseLunSpec('file:/tmp/x.img')).toMatchObject({ kind: 'file', path: '/tmp/x.img', sizeBytes: 0 });
    expect(parseLunSpec('file:/tmp/x.img,writethrough').writeThrough).toBe(true);
  });

  it.each([
    ['', /missing size/],
    ['12QB', /unit/],
    ['1GiB,block=1024', /512 and 4096/],
    ['1GiB,fast', /unknown option/],
    ['1GiB,size=2GiB', /only for file/],
    ['file:', /empty file path/],
    ['file:/x,size=abc', /bad size/],
    ['file:/x,size=1G,size=2G', /twice/],
    ['100B', /at least one/],
    ['1GiB,writethrough', /only for file/],
  ])('rejects %j', (spec, why) => {
    expect(() => parseLunSpec(spec)).toThrow(why);
    expect(() => parseLunSpec(spec)).toThrow(/bad LUN spec/);
  });
});

describe('openStore', () => {
  it('opens a thin memory store of the right geometry', async () => {
    const s = await openStore(parseLunSpec('1TiB,block=4096'));
    expect(s.kind).toBe('memory');
    expect(s.blockSize).toBe(4096);
    expect(s.blockCount).toBe(BigInt(2 ** 40 / 4096));
    expect(s.thin).toBe(true);
    expect(s.allocatedBytes!()).toBe(0);
  });

  it('opens (creating) a file store', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'arraysim-spec-'));
    try {
      const s = await openStore(parseLunSpec(`file:${join(dir, 'l.img')},size=1MiB`));
      expect(s.kind).toBe('file');
      expect(s.blockCount).toBe(2048n);
      await s.close();
      const t = await openStore(parseLunSpec(`file:${join(dir, 'l.img')}`));
      expect(t.blockCount).toBe(2048n);
      await t.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
