/**
 * The group metadata file (src/replication/group-meta.ts) without sockets: its encoding and the
 * checks that refuse a damaged file (every byte flipped, every truncation), the bitmap, the
 * write-before-apply batching, and the machine restored from it (GroupMachine.restore). End to
 * end with SIGKILLed `serve` processes: test/replication/persist-process.test.ts.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { GroupMachine } from '../../src/replication/group-machine.ts';
import type { GroupAction } from '../../src/replication/group-machine.ts';
import { bitmapExtents, decodeMeta, encodeMeta, GroupMeta, regionBlocksFor } from '../../src/replication/group-meta.ts';
import type { GroupMetaState } from '../../src/replication/group-meta.ts';

const SHAPES = [{ blockCount: 100n, blockSize: 512 }, { blockCount: 64n, blockSize: 4096 }];
const header = { role: 'primary' as const, naturalRole: 'primary' as const, epoch: 3, full: false };
const scratch = () => path.join(mkdtempSync(path.join(tmpdir(), 'arraysim-meta-')), 'vol.img.rcopy-rcg1.meta');

function sample(): GroupMetaState {
  // Volume 0: 100 blocks in regions of 8 (13 regions, 2 bytes); volume 1: 64 blocks of 4 KiB, regions of 1.
  const s: GroupMetaState = {
    role: 'secondary', naturalRole: 'primary', epoch: 7, outOfSync: true, full: false,
    volumes: [{ blockCount: 100n, regionBlocks: 8, bitmap: new Uint8Array([0b0000_0110, 0b0001_0000]) }, { blockCount: 64n, regionBlocks: 1, bitmap: new Uint8Array(8) }],
  };
  s.volumes[1].bitmap[7] = 0x80;
  return s;
}

describe('group metadata file: encoding', () => {
  it('lays out header, volumes, bitmaps and the CRC32C as documented, and round-trips', () => {
    const b = encodeMeta(sample());
    expect(b.subarray(0, 4).toString('latin1')).toBe('ARGM');
    expect(b.readUInt16LE(4)).toBe(1); // version
    expect(b.readUInt16LE(6)).toBe(1 | 8); // outOfSync, naturalPrimary (role secondary, no full)
    expect(b.readUInt32LE(8)).toBe(7); // epoch
    expect(b.readUInt16LE(12)).toBe(2); // volumes
    expect(b.readBigUInt64LE(16)).toBe(100n);
    expect(b.readUInt32LE(24)).toBe(8); // region blocks
    expect(b.readUInt32LE(28)).toBe(2); // bitmap bytes
    expect(b.length).toBe(16 + 32 + 2 + 8 + 4);
    const r = decodeMeta(b, SHAPES);
    expect(r).toEqual({ kind: 'loaded', state: sample() });
  });

  it('refuses the file with any one byte changed, or cut short at any length', () => {
    const b = encodeMeta(sample());
    for (let i = 0; i < b.length; i++) {
      const c = Buffer.from(b);
      c[i] ^= 0x01;
      expect(decodeMeta(c, SHAPES).kind, `byte ${i} flipped`).toBe('invalid');
    }
    for (let n = 0; n < b.length; n++) expect(decodeMeta(b.subarray(0, n), SHAPES).kind, `${n} bytes`).toBe('invalid');
  });

  it('refuses a file made for other volumes (count or size)', () => {
    const b = encodeMeta(sample());
    expect(decodeMeta(b, SHAPES.slice(0, 1))).toMatchObject({ kind: 'invalid', why: '2 volumes recorded, the group has 1' });
    expect(decodeMeta(b, [SHAPES[0], { blockCount: 65n, blockSize: 4096 }])).toMatchObject({ kind: 'invalid', why: 'volume 1: 64 blocks recorded, 65 now' });
  });

  it('turns the bitmap into extents, the last region clipped to the volume', () => {
    expect(bitmapExtents(sample())).toEqual([
      { volume: 0, lba: 8n, blocks: 16 }, // regions 1-2
      { volume: 0, lba: 96n, blocks: 4 }, // region 12 holds blocks 96-99 only
      { volume: 1, lba: 63n, blocks: 1 },
    ]);
  });

  it('uses 4 KiB regions, larger only where the bitmap would pass 256 KiB', () => {
    expect(regionBlocksFor({ blockCount: 2097152n, blockSize: 512 })).toBe(8); // 1 GiB: 32 KiB of bitmap
    const tib = regionBlocksFor({ blockCount: 2n ** 31n, blockSize: 512 }); // 1 TiB
    expect(tib).toBe(1024); // 512 KiB regions
    expect(Number(2n ** 31n / BigInt(tib)) / 8).toBe(256 * 1024);
  });
});

describe('group metadata file: marking before a write', () => {
  it('a newly dirty region waits for one flush; a marked one waits for nothing; the file holds the bits', async () => {
    const file = scratch();
    const m = new GroupMeta(file, SHAPES, header);
    await m.flush();
    expect(m.tracking).toBe(false); // Synced on disk: host writes pay nothing
    expect(m.mark([{ volume: 0, lba: 0n, blocks: 8 }])).toBeUndefined(); // Synced: no bits
    await m.outOfSync([{ volume: 0, lba: 16n, blocks: 1 }]);
    expect(m.tracking).toBe(true);
    const p = m.mark([{ volume: 0, lba: 40n, blocks: 9 }]); // regions 5 and 6
    expect(p).toBeInstanceOf(Promise);
    await p;
    expect(m.mark([{ volume: 0, lba: 41n, blocks: 2 }])).toBeUndefined();
    const r = decodeMeta(readFileSync(file), SHAPES);
    expect(r.kind === 'loaded' && bitmapExtents(r.state)).toEqual([{ volume: 0, lba: 16n, blocks: 8 }, { volume: 0, lba: 40n, blocks: 16 }]);
    await m.synced();
    expect(m.tracking).toBe(false);
    const s = decodeMeta(readFileSync(file), SHAPES);
    expect(s.kind === 'loaded' && [s.state.outOfSync, bitmapExtents(s.state)]).toEqual([false, []]);
  });

  it('a write applied while Synced and finished after the pair lost sync: the file is incomplete until its bits are in', async () => {
    const file = scratch();
    const m = new GroupMeta(file, SHAPES, header);
    await m.flush();
    expect(m.tracking).toBe(false);
    m.untracked++; // the shell counts a write it applies unmarked
    await m.outOfSync([{ volume: 0, lba: 0n, blocks: 1 }]); // the link went down meanwhile
    const onDisk = () => { const r = decodeMeta(readFileSync(file), SHAPES); return r.kind === 'loaded' && [r.state.outOfSync, bitmapExtents(r.state)]; };
    expect(onDisk()).toEqual([false, [{ volume: 0, lba: 0n, blocks: 8 }]]); // not trusted: a restart would copy the group whole
    await m.afterApply(true, () => [{ volume: 0, lba: 80n, blocks: 8 }]);
    expect(m.untracked).toBe(0);
    expect(onDisk()).toEqual([true, [{ volume: 0, lba: 0n, blocks: 8 }, { volume: 0, lba: 80n, blocks: 8 }]]);
  });

  it('batches: marks made while a flush runs share the next one', async () => {
    const m = new GroupMeta(scratch(), SHAPES, header);
    await m.outOfSync([]);
    const before = m.flushes;
    await Promise.all(Array.from({ length: 50 }, (_, i) => m.mark([{ volume: 1, lba: BigInt(i), blocks: 1 }])));
    expect(m.flushes - before).toBeLessThanOrEqual(2);
    expect(bitmapExtents(m.state as GroupMetaState)).toEqual([{ volume: 1, lba: 0n, blocks: 50 }]);
  });

  it('a write whose bits cannot be written is failed, not applied unrecorded', async () => {
    const m = new GroupMeta(path.join(tmpdir(), 'no-such-dir-arraysim', 'x.meta'), SHAPES, header);
    await expect(m.outOfSync([{ volume: 0, lba: 0n, blocks: 1 }])).rejects.toThrow();
    await expect(m.mark([{ volume: 0, lba: 50n, blocks: 1 }])).rejects.toThrow();
    expect(m.lastError).toMatch(/ENOENT/);
  });
});

const resync = (a: GroupAction[]) => a.find((x) => x.kind === 'resync') as Extract<GroupAction, { kind: 'resync' }> | undefined;

describe('a group machine restored from its metadata', () => {
  function restarted(role: 'primary' | 'secondary'): GroupMachine {
    const m = new GroupMachine({ name: 'rcg', role, policies: { active_active: true }, restarted: true });
    m.started = m.startOnLink = role === 'primary';
    return m;
  }

  it('with a trusted dirty map the primary resends only it', () => {
    const m = restarted('primary');
    m.restore({ role: 'primary', naturalRole: 'primary', epoch: 2, full: false, dirty: [{ volume: 0, lba: 8n, blocks: 8 }] });
    expect(m.serving).toBe(true);
    expect(m.snapshot()).toMatchObject({ epoch: 2, dirtyBlocks: '8' });
    const r = resync(m.step({ kind: 'link-up', peerArray: 'B', peer: { restarted: true, volatile: false, empty: false } }));
    expect(r).toMatchObject({ full: false, extents: [{ volume: 0, lba: 8n, blocks: 8 }] });
  });

  it('without one (Synced when it stopped, or no file) it copies the group whole; the negative control of the case above', () => {
    const m = restarted('primary');
    m.restore({ role: 'primary', naturalRole: 'primary', epoch: 2, full: false, dirty: null });
    expect(resync(m.step({ kind: 'link-up', peerArray: 'B', peer: { restarted: false, volatile: false, empty: false } }))?.full).toBe(true);
  });

  it('an unreadable file: the primary serves nothing until it reaches the peer', () => {
    const m = restarted('primary');
    m.restore({ role: 'primary', naturalRole: 'primary', epoch: 0, full: true, dirty: null, unsure: true });
    expect(m.serving).toBe(false);
    expect(resync(m.step({ kind: 'link-up', peerArray: 'B', peer: { restarted: false, volatile: false, empty: false } }))?.full).toBe(true);
    expect(m.serving).toBe(true);
  });

  it('a configured primary that was secondary when it stopped comes back secondary with its epoch, and does not serve', () => {
    const m = restarted('primary');
    m.restore({ role: 'secondary', naturalRole: 'secondary', epoch: 1, full: false, dirty: null });
    expect(m.snapshot()).toMatchObject({ role: 'secondary', roleName: 'Secondary', epoch: 1, serving: false, started: false });
  });

  it('a configured secondary that had taken the group over comes back primary and started', () => {
    const m = restarted('secondary');
    m.restore({ role: 'primary', naturalRole: 'secondary', epoch: 1, full: true, dirty: null });
    expect(m.snapshot()).toMatchObject({ role: 'primary', roleName: 'Primary-Rev', started: true });
    expect(resync(m.step({ kind: 'link-up', peerArray: 'A' }))?.full).toBe(true);
  });
});
