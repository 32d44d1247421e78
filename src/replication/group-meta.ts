/**
 * A Remote Copy group's metadata on disk, after DRBD's meta data: the role, the epoch (DRBD's
 * generation identifiers play that part) and a bitmap of the regions the peer may lack, so that an
 * array restarted (even by SIGKILL) comes back as what it was and resynchronises only those
 * regions (README "Peer replication", restarts). One small file per group next to its first file
 * volume (`<file>.rcopy-<group>.meta`); groups on memory volumes have none (a restart loses their
 * data anyway).
 *
 * The rule that makes the bitmap trustworthy (DRBD sets a bit before the write that makes it
 * dirty): while the pair is out of sync, a primary writes a region only after the bitmap that
 * names it is on disk (fsync, then rename). Bits are set in memory and flushed in batches, one
 * flush at a time; a write to a region already marked waits for nothing. While the pair is Synced
 * and that is on disk, nothing is written here (a write is only counted while it is applied,
 * `untracked`): the file says `outOfSync: false`, and a restart from that state (writes may have
 * been in flight to the peer when the process died) resends the extents of the primary's activity
 * log (activity-log.ts, its own file beside this one), or copies the group whole without a log it
 * can trust, as a missing or corrupt file does. When the pair loses sync, the writes in flight
 * to the peer are marked at once; those still being applied here when it happened are marked when
 * they finish (before the machine may acknowledge them), and until the last has, the file keeps
 * saying its bitmap is incomplete. A restarted array never trusts a bitmap it cannot verify.
 *
 * Layout (little endian), every field covered by the trailing CRC32C:
 *   0  magic 'ARGM'          4  version u16 (1)      6  flags u16 (FLAGS)
 *   8  epoch u32            12  volumes u16          14 reserved u16
 *   16 per volume: blockCount u64, regionBlocks u32, bitmap bytes u32 (16 bytes each)
 *   then each volume's bitmap (bit i of byte j: region 8j+i), then crc32c u32 of all before it.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { crc32c } from '../../protocol/iscsi/digest.ts';
import { writeDurably } from '../store/durable.ts';
import type { DirtyExtent, Role } from './group-machine.ts';

const MAGIC = 0x4d475241; // 'ARGM' read as u32 LE
const VERSION = 1;
const FLAGS = { outOfSync: 1, full: 2, primary: 4, naturalPrimary: 8 } as const;
/** A region is 4 KiB of data, or larger so that a volume's bitmap stays within this many bytes (a rewrite per flush). */
const REGION_BYTES = 4096;
const MAX_BITMAP_BYTES = 256 * 1024;

function fileSafe(group: string): string { return group.replace(/[^A-Za-z0-9._-]/g, '_'); }

export interface VolumeShape { blockCount: bigint; blockSize: number }

/** What the file holds. `outOfSync`: every region that may differ on the peer is in `bitmaps`. `full`: the peer must get the group whole. */
export interface GroupMetaState {
  role: Role;
  naturalRole: Role;
  epoch: number;
  outOfSync: boolean;
  full: boolean;
  volumes: { blockCount: bigint; regionBlocks: number; bitmap: Uint8Array }[];
}

export type MetaLoad =
  | { kind: 'loaded'; state: GroupMetaState }
  | { kind: 'missing' }
  | { kind: 'invalid'; why: string };

/** Blocks per bitmap region for a volume of that shape. */
export function regionBlocksFor(v: VolumeShape): number {
  const base = Math.max(1, Math.floor(REGION_BYTES / v.blockSize));
  const regions = (v.blockCount + BigInt(base) - 1n) / BigInt(base);
  const over = Number((regions + BigInt(MAX_BITMAP_BYTES * 8) - 1n) / BigInt(MAX_BITMAP_BYTES * 8));
  return base * Math.max(1, over);
}

function bitmapBytes(blockCount: bigint, regionBlocks: number): number {
  return Number(((blockCount + BigInt(regionBlocks) - 1n) / BigInt(regionBlocks) + 7n) / 8n);
}

export function encodeMeta(s: GroupMetaState): Buffer {
  const len = 16 + 16 * s.volumes.length + s.volumes.reduce((n, v) => n + v.bitmap.length, 0) + 4;
  const b = Buffer.alloc(len);
  b.writeUInt32LE(MAGIC, 0);
  b.writeUInt16LE(VERSION, 4);
  b.writeUInt16LE((s.outOfSync ? FLAGS.outOfSync : 0) | (s.full ? FLAGS.full : 0) | (s.role === 'primary' ? FLAGS.primary : 0) | (s.naturalRole === 'primary' ? FLAGS.naturalPrimary : 0), 6);
  b.writeUInt32LE(s.epoch >>> 0, 8);
  b.writeUInt16LE(s.volumes.length, 12);
  let p = 16;
  for (const v of s.volumes) { b.writeBigUInt64LE(v.blockCount, p); b.writeUInt32LE(v.regionBlocks, p + 8); b.writeUInt32LE(v.bitmap.length, p + 12); p += 16; }
  for (const v of s.volumes) { b.set(v.bitmap, p); p += v.bitmap.length; }
  b.writeUInt32LE(crc32c(b.subarray(0, p)), p);
  return b;
}

/** Parse and check a file's bytes against the group's volumes: any mismatch is `invalid`, never a partial state. */
export function decodeMeta(b: Buffer, shapes: readonly VolumeShape[]): MetaLoad {
  if (b.length < 20) return { kind: 'invalid', why: `${b.length} bytes, shorter than a header` };
  if (b.readUInt32LE(0) !== MAGIC) return { kind: 'invalid', why: 'bad magic' };
  if (crc32c(b.subarray(0, b.length - 4)) !== b.readUInt32LE(b.length - 4)) return { kind: 'invalid', why: 'checksum mismatch' };
  if (b.readUInt16LE(4) !== VERSION) return { kind: 'invalid', why: `version ${b.readUInt16LE(4)}` };
  const flags = b.readUInt16LE(6);
  const n = b.readUInt16LE(12);
  if (n !== shapes.length) return { kind: 'invalid', why: `${n} volumes recorded, the group has ${shapes.length}` };
  let p = 16;
  let q = 16 + 16 * n;
  const volumes: GroupMetaState['volumes'] = [];
  for (let i = 0; i < n; i++) {
    const blockCount = b.readBigUInt64LE(p), regionBlocks = b.readUInt32LE(p + 8), bytes = b.readUInt32LE(p + 12);
    p += 16;
    if (blockCount !== shapes[i].blockCount) return { kind: 'invalid', why: `volume ${i}: ${blockCount} blocks recorded, ${shapes[i].blockCount} now` };
    if (regionBlocks < 1 || bytes !== bitmapBytes(blockCount, regionBlocks) || q + bytes > b.length - 4) return { kind: 'invalid', why: `volume ${i}: bitmap size` };
    volumes.push({ blockCount, regionBlocks, bitmap: Uint8Array.from(b.subarray(q, q + bytes)) });
    q += bytes;
  }
  if (q !== b.length - 4) return { kind: 'invalid', why: 'trailing bytes' };
  return {
    kind: 'loaded',
    state: {
      role: flags & FLAGS.primary ? 'primary' : 'secondary', naturalRole: flags & FLAGS.naturalPrimary ? 'primary' : 'secondary',
      epoch: b.readUInt32LE(8), outOfSync: !!(flags & FLAGS.outOfSync), full: !!(flags & FLAGS.full), volumes,
    },
  };
}

/** The bitmap's set regions as extents (runs of regions, the last clipped to the volume). */
export function bitmapExtents(s: GroupMetaState): DirtyExtent[] {
  const out: DirtyExtent[] = [];
  s.volumes.forEach((v, volume) => {
    let run = -1;
    const regions = Number((v.blockCount + BigInt(v.regionBlocks) - 1n) / BigInt(v.regionBlocks));
    const flush = (end: number) => {
      const lba = BigInt(run) * BigInt(v.regionBlocks);
      const stop = BigInt(end) * BigInt(v.regionBlocks) > v.blockCount ? v.blockCount : BigInt(end) * BigInt(v.regionBlocks);
      out.push({ volume, lba, blocks: Number(stop - lba) });
      run = -1;
    };
    for (let r = 0; r < regions; r++) {
      const set = (v.bitmap[r >> 3] & (1 << (r & 7))) !== 0;
      if (set && run < 0) run = r;
      else if (!set && run >= 0) flush(r);
    }
    if (run >= 0) flush(regions);
  });
  return out;
}

/** What the group wants on disk besides the bitmap. */
export interface MetaHeader { role: Role; naturalRole: Role; epoch: number; full: boolean }

/**
 * The file and its state in memory. `want` is what the file should say; `disk` what the last
 * completed flush wrote. Flushes run one at a time; whatever is asked meanwhile goes in the next.
 */
export class GroupMeta {
  private readonly want: GroupMetaState;
  /** The file says Synced (outOfSync false): host writes need no bits. */
  private diskSynced = false;
  private flushing: Promise<void> | null = null;
  private again = false;
  /**
   * Host writes being applied that were not marked (the pair was Synced on disk when they began).
   * While any is, the file never says its bitmap is complete: a restart copies the group whole.
   */
  untracked = 0;
  /** Flushes written (status: the cost of keeping the map). */
  flushes = 0;
  lastError: string | null = null;

  constructor(readonly file: string, shapes: readonly VolumeShape[], header: MetaHeader) {
    this.want = {
      ...header, outOfSync: false,
      volumes: shapes.map((v) => { const regionBlocks = regionBlocksFor(v); return { blockCount: v.blockCount, regionBlocks, bitmap: new Uint8Array(bitmapBytes(v.blockCount, regionBlocks)) }; }),
    };
  }

  /** The metadata file of a group whose first volume is the file `store`. */
  static pathFor(store: string, group: string): string {
    return path.join(path.dirname(store), `${path.basename(store)}.rcopy-${fileSafe(group)}.meta`);
  }

  /**
   * Metadata files beside the file `store` of groups other than `group` (its own, if it is a
   * group's first volume): a group this array had and does not have now. Made by the verbs
   * without peers.state, or taken out of the YAML; the other array may still hold it.
   */
  static async strangers(store: string, group: string | undefined): Promise<string[]> {
    const prefix = `${path.basename(store)}.rcopy-`;
    let names: string[];
    try { names = await fsp.readdir(path.dirname(store)); } catch { return []; }
    const own = group === undefined ? null : `${prefix}${fileSafe(group)}.meta`;
    return names.filter((n) => n.startsWith(prefix) && n.endsWith('.meta') && n !== own).map((n) => path.join(path.dirname(store), n));
  }

  static async read(file: string, shapes: readonly VolumeShape[]): Promise<MetaLoad> {
    let b: Buffer;
    try { b = await fsp.readFile(file); } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'missing' };
      return { kind: 'invalid', why: e instanceof Error ? e.message : String(e) };
    }
    return decodeMeta(b, shapes);
  }

  /** Take a loaded file's bitmap as the starting state (its regions stay marked until a resync completes). */
  adopt(s: GroupMetaState): void {
    this.want.outOfSync = s.outOfSync;
    s.volumes.forEach((v, i) => { if (v.regionBlocks === this.want.volumes[i].regionBlocks) this.want.volumes[i].bitmap.set(v.bitmap); else this.markAll(i); });
    this.diskSynced = !s.outOfSync;
  }

  private markAll(volume: number): void { this.want.volumes[volume].bitmap.fill(0xff); }

  /**
   * Host writes on the primary need their regions marked (and on disk) first: true unless the
   * pair is Synced and the file says so. The steady Synced state pays this one test per write.
   */
  get tracking(): boolean { return this.want.outOfSync || !this.diskSynced || this.flushing !== null; }

  /**
   * Before a write to these extents is applied: set their bits; resolves once a file holding them
   * (or saying Synced, when the pair is) is on disk. Undefined: nothing to wait for.
   */
  mark(extents: readonly DirtyExtent[]): void | Promise<void> {
    if (!this.want.outOfSync) return this.flushing ?? undefined;
    let fresh = false;
    for (const x of extents) if (this.setBits(x)) fresh = true;
    return fresh ? this.flush() : this.flushing ?? undefined;
  }

  /**
   * A host write was applied (`untracked`: it began unmarked). If the pair is out of sync now, its
   * regions are marked before the machine may acknowledge it; the last unmarked write to finish
   * lets the file say its bitmap is complete.
   */
  afterApply(untracked: boolean, extents: () => DirtyExtent[]): void | Promise<void> {
    const last = untracked && --this.untracked === 0 && this.want.outOfSync;
    if (!this.tracking) return;
    const p = this.mark(extents());
    return last ? this.flush() : p;
  }

  /** The pair went out of sync with these extents possibly different on the peer (writes in flight at a link loss). */
  outOfSync(extents: readonly DirtyExtent[]): Promise<void> {
    this.want.outOfSync = true;
    for (const x of extents) this.setBits(x);
    return this.flush();
  }

  /** A resync completed: the pair is Synced, the bitmap is cleared. */
  synced(): Promise<void> {
    this.want.outOfSync = false;
    for (const v of this.want.volumes) v.bitmap.fill(0);
    return this.flush();
  }

  /** Role, epoch or the whole-copy flag changed: write them (undefined when they did not). */
  header(h: MetaHeader): void | Promise<void> {
    const w = this.want;
    if (w.role === h.role && w.naturalRole === h.naturalRole && w.epoch === h.epoch && w.full === h.full) return;
    Object.assign(w, h);
    return this.flush();
  }

  get state(): Readonly<GroupMetaState> { return this.want; }

  /** The flush under way is over (its error was reported to whoever waited on it). */
  settled(): Promise<void> { return (this.flushing ?? Promise.resolve()).catch(() => {}); }

  private setBits(x: DirtyExtent): boolean {
    const v = this.want.volumes[x.volume];
    if (!v || x.blocks <= 0) return false;
    const first = Number(x.lba / BigInt(v.regionBlocks));
    const last = Number((x.lba + BigInt(x.blocks) - 1n) / BigInt(v.regionBlocks));
    let fresh = false;
    for (let r = first; r <= last && (r >> 3) < v.bitmap.length; r++) {
      const m = 1 << (r & 7);
      if (!(v.bitmap[r >> 3] & m)) { v.bitmap[r >> 3] |= m; fresh = true; }
    }
    return fresh;
  }

  /** Write `want` (tmp file, fsync, rename, fsync of the folder); a flush asked during one runs after it, with everything asked by then. */
  flush(): Promise<void> {
    if (this.flushing) { this.again = true; return this.flushing; }
    const p = (async () => {
      do {
        this.again = false;
        const synced = !this.want.outOfSync;
        // Unmarked writes still being applied may be in regions the bitmap lacks: not complete yet.
        await this.writeFile(encodeMeta(this.untracked > 0 ? { ...this.want, outOfSync: false } : this.want));
        this.flushes++;
        this.diskSynced = synced && !this.want.outOfSync;
      } while (this.again);
    })();
    this.flushing = p.finally(() => { this.flushing = null; });
    return this.flushing;
  }

  private async writeFile(b: Buffer): Promise<void> {
    try {
      await writeDurably(this.file, b);
      this.lastError = null;
    } catch (e) {
      // A write waiting on this flush must not go ahead unrecorded: the caller fails it.
      this.lastError = e instanceof Error ? e.message : String(e);
      throw e;
    }
  }
}
