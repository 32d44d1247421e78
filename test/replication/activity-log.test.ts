/**
 * The primary's activity log (src/replication/activity-log.ts): what is on disk before a write may
 * be applied, what may leave it, and the file's checks. The process-level proof (SIGKILL while
 * Synced with writes in flight, volumes compared byte for byte, and the emptied-log negative
 * control) is in persist-process.test.ts.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ActivityLog, AL_EXTENT_BYTES, decodeAl, encodeAl } from '../../src/replication/activity-log.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'arraysim-al-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const PER = AL_EXTENT_BYTES / 512; // blocks per extent
const shapes = [{ blockCount: BigInt(PER * 16), blockSize: 512 }, { blockCount: BigInt(PER * 2 + 100), blockSize: 512 }];
const at = (volume: number, extent: number, blocks = 8) => [{ volume, lba: BigInt(extent * PER), blocks }];
let n = 0;
const fresh = (capacity?: number) => new ActivityLog(path.join(dir, `al-${n++}`), shapes, capacity);
/** The extents the file on disk names, as "volume:extent". */
const onDisk = (al: ActivityLog): string[] => {
  const r = decodeAl(readFileSync(al.file), shapes);
  if (r.kind !== 'loaded') throw new Error(r.kind === 'invalid' ? r.why : r.kind);
  return r.extents.map((x) => `${x.volume}:${Number(x.lba) / PER}`).sort();
};

describe('activity log', () => {
  it('a write to an extent not in the log waits for a transaction that names it; a write to one already there waits for nothing', async () => {
    const al = fresh();
    await al.reset();
    const p = al.cover(at(0, 3));
    expect(p).toBeInstanceOf(Promise);
    expect(onDisk(al)).toEqual([]); // not yet: the write must wait
    const pin = await p;
    expect(onDisk(al)).toEqual(['0:3']);
    const again = al.cover(at(0, 3));
    expect(Array.isArray(again)).toBe(true);
    // A write crossing an extent boundary pins both.
    const both = await al.cover([{ volume: 1, lba: BigInt(PER - 4), blocks: 8 }]);
    expect(both).toHaveLength(2);
    expect(onDisk(al)).toEqual(['0:3', '1:0', '1:1']);
    al.release(pin); al.release(again as number[]); al.release(both);
    expect(al.transactions).toBe(3);
  });

  it('a write to an extent the transaction under way adds waits for that transaction, not for nothing', async () => {
    const al = fresh();
    const first = al.cover(at(0, 5));
    const second = al.cover(at(0, 5, 1));
    expect(first).toBeInstanceOf(Promise);
    expect(second).toBeInstanceOf(Promise); // removing the `unsettled` check makes this a plain array: applied before its extent is on disk
    await Promise.all([first, second]);
    expect(onDisk(al)).toEqual(['0:5']);
  });

  it('unpinned extents leave the log least recently used first; pinned ones never do, held ones stay until synced()', async () => {
    const al = fresh(2);
    const a = await al.cover(at(0, 1)), b = await al.cover(at(0, 2));
    al.release(a); al.release(b);
    al.release(await al.cover(at(0, 1))); // 1 used again: 2 is now the least recent
    const c = await al.cover(at(0, 3));
    expect(onDisk(al)).toEqual(['0:1', '0:3']);
    // Pinned and held: over capacity rather than dropped.
    al.hold(c);
    const d = await al.cover(at(0, 4)), e = await al.cover(at(0, 5));
    expect(onDisk(al)).toEqual(['0:3', '0:4', '0:5']);
    al.release(d); al.release(e);
    al.synced(); // the held pin of 3 goes: all three may now leave
    al.release(await al.cover(at(0, 6)));
    expect(onDisk(al)).toHaveLength(2);
    expect(onDisk(al)).toContain('0:6');
  });

  it('reset keeps only pinned extents; the file checks its CRC, geometry and overflow flag', async () => {
    const al = fresh();
    const a = await al.cover(at(0, 7));
    al.release(await al.cover(at(0, 8)));
    await al.reset();
    expect(onDisk(al)).toEqual(['0:7']);
    al.release(a);
    const b = readFileSync(al.file);
    const bad = Buffer.from(b); bad[bad.length - 6] ^= 1;
    expect(decodeAl(bad, shapes)).toMatchObject({ kind: 'invalid', why: 'checksum mismatch' });
    expect(decodeAl(b, [shapes[0]])).toMatchObject({ kind: 'invalid', why: expect.stringMatching(/2 volumes recorded/) });
    expect(decodeAl(b, [{ blockCount: shapes[0].blockCount, blockSize: 4096 }, shapes[1]])).toMatchObject({ kind: 'invalid', why: expect.stringMatching(/blocks per extent/) });
    expect(decodeAl(encodeAl([PER, PER], [], true), shapes)).toMatchObject({ kind: 'invalid', why: expect.stringMatching(/overflowed/) });
    expect(decodeAl(encodeAl([PER, PER], [1 * 2 ** 32 + 2], false), shapes)).toEqual({ kind: 'loaded', extents: [{ volume: 1, lba: BigInt(2 * PER), blocks: 100 }] }); // the last extent clipped to the volume
    expect(decodeAl(encodeAl([PER, PER], [1 * 2 ** 32 + 3], false), shapes)).toMatchObject({ kind: 'invalid', why: expect.stringMatching(/past the end/) });
    expect(await ActivityLog.read(path.join(dir, 'none'), shapes)).toEqual({ kind: 'missing' });
  });

  it('a log that cannot be written fails the write that waited, and its extent is written by the next transaction', async () => {
    const al = new ActivityLog(path.join(dir, 'no-such-folder', 'al'), shapes);
    await expect(al.cover(at(0, 1))).rejects.toThrow(/ENOENT/);
    expect(al.lastError).toMatch(/ENOENT/);
    expect(al.size).toBe(0);
  });
});
