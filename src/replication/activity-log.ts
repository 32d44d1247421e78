/**
 * A primary's activity log, after DRBD's: the extents (4 MiB of a volume each) that may hold a
 * host write the peer has not acknowledged, on disk before such a write is applied, so that a
 * primary killed while Synced (when its metadata file's bitmap names nothing: group-meta.ts)
 * resynchronises those extents at its next start instead of the whole group. One small file per
 * group beside the metadata file (`<meta>.al`); groups on memory volumes have neither.
 *
 * The rule: every host write applied at the primary pins its extents first; a pinned extent not
 * yet in the file is added by a transaction (the whole list, written durably) that the write waits
 * for. A write the peer acknowledged unpins at once; one that ended otherwise (applied here alone,
 * the link lost, a failed store) stays pinned until the pair is next Synced: its regions are then
 * in the machine's dirty map and have been resent. Only unpinned extents leave the log, the least
 * recently used first, when a transaction needs room (`capacity`). So while the metadata file says
 * Synced, every region where this array's volumes may differ from the peer's is in an extent of the
 * file. Pinned extents are never dropped; past `MAX_ENTRIES` the file says it overflowed, and a
 * start from it copies the group whole (as one without a log does).
 *
 * Layout (little endian), all covered by the trailing CRC32C:
 *   0 magic 'ARAL'   4 version u16 (1)   6 flags u16 (1: overflowed)   8 volumes u16   10 reserved u16
 *   12 per volume: blocks per extent u32; then count u32; then count × (volume u16, reserved u16,
 *   extent u32); then crc32c u32.
 */
import { promises as fsp } from 'node:fs';
import { crc32c } from '../../protocol/iscsi/digest.ts';
import { writeDurably } from '../store/durable.ts';
import type { DirtyExtent } from './group-types.ts';
import type { VolumeShape } from './group-meta.ts';

const MAGIC = 0x4c415241; // 'ARAL' read as u32 LE
const VERSION = 1;
const OVERFLOWED = 1;
/** Bytes of a volume per extent (DRBD's activity log extents are 4 MiB too). */
export const AL_EXTENT_BYTES = 4 * 1024 * 1024;
/** Unpinned extents kept (the hot set a restart resends: at most this × 4 MiB, 1 GiB). */
export const AL_CAPACITY = 256;
/** Entries the file holds at most; more pinned extents than this and it says it overflowed. */
export const MAX_ENTRIES = 65_536;

export type AlLoad =
  | { kind: 'loaded'; extents: DirtyExtent[] }
  | { kind: 'missing' }
  | { kind: 'invalid'; why: string };

/** A write's pins: the keys of its extents (volume × 2^32 + extent), as cover() counted them. */
export type AlPin = readonly number[];

export function encodeAl(blocksPerExtent: readonly number[], keys: Iterable<number>, overflowed: boolean): Buffer {
  const list = overflowed ? [] : [...keys];
  const b = Buffer.alloc(12 + 4 * blocksPerExtent.length + 4 + 8 * list.length + 4);
  b.writeUInt32LE(MAGIC, 0);
  b.writeUInt16LE(VERSION, 4);
  b.writeUInt16LE(overflowed ? OVERFLOWED : 0, 6);
  b.writeUInt16LE(blocksPerExtent.length, 8);
  let p = 12;
  for (const n of blocksPerExtent) { b.writeUInt32LE(n, p); p += 4; }
  b.writeUInt32LE(list.length, p); p += 4;
  for (const k of list) { b.writeUInt16LE(Math.floor(k / 2 ** 32), p); b.writeUInt32LE(k % 2 ** 32, p + 4); p += 8; }
  b.writeUInt32LE(crc32c(b.subarray(0, p)), p);
  return b;
}

/** Parse a log against the group's volumes; anything that does not fit them is `invalid`. */
export function decodeAl(b: Buffer, shapes: readonly VolumeShape[]): AlLoad {
  if (b.length < 20) return { kind: 'invalid', why: `${b.length} bytes, shorter than a header` };
  if (b.readUInt32LE(0) !== MAGIC) return { kind: 'invalid', why: 'bad magic' };
  if (crc32c(b.subarray(0, b.length - 4)) !== b.readUInt32LE(b.length - 4)) return { kind: 'invalid', why: 'checksum mismatch' };
  if (b.readUInt16LE(4) !== VERSION) return { kind: 'invalid', why: `version ${b.readUInt16LE(4)}` };
  if (b.readUInt16LE(6) & OVERFLOWED) return { kind: 'invalid', why: 'it overflowed (more writes in flight than it holds)' };
  const n = b.readUInt16LE(8);
  if (n !== shapes.length) return { kind: 'invalid', why: `${n} volumes recorded, the group has ${shapes.length}` };
  let p = 12;
  const per: number[] = [];
  for (let i = 0; i < n; i++, p += 4) {
    per.push(b.readUInt32LE(p));
    if (per[i] !== blocksPerExtent(shapes[i])) return { kind: 'invalid', why: `volume ${i}: ${per[i]} blocks per extent recorded, ${blocksPerExtent(shapes[i])} now` };
  }
  const count = b.readUInt32LE(p); p += 4;
  if (p + 8 * count + 4 !== b.length) return { kind: 'invalid', why: 'length does not match the count' };
  const extents: DirtyExtent[] = [];
  for (let i = 0; i < count; i++, p += 8) {
    const volume = b.readUInt16LE(p), extent = b.readUInt32LE(p + 4);
    if (volume >= n) return { kind: 'invalid', why: `entry ${i}: volume ${volume}` };
    const lba = BigInt(extent) * BigInt(per[volume]);
    if (lba >= shapes[volume].blockCount) return { kind: 'invalid', why: `entry ${i}: extent ${extent} past the end of volume ${volume}` };
    const end = lba + BigInt(per[volume]) > shapes[volume].blockCount ? shapes[volume].blockCount : lba + BigInt(per[volume]);
    extents.push({ volume, lba, blocks: Number(end - lba) });
  }
  return { kind: 'loaded', extents };
}

export function blocksPerExtent(v: VolumeShape): number { return Math.max(1, Math.floor(AL_EXTENT_BYTES / v.blockSize)); }

export class ActivityLog {
  private readonly per: number[];
  /** Pins per extent key. */
  private readonly pins = new Map<number, number>();
  /** Keys in the file (or in the transaction under way), least recently used first (a Map keeps insertion order). */
  private readonly inLog = new Map<number, true>();
  /** Keys pinned but not yet in a transaction. */
  private readonly fresh = new Set<number>();
  /** Keys the transaction under way adds: in `inLog`, not yet on disk. */
  private readonly unsettled = new Set<number>();
  /** Pins of writes that ended without the peer's acknowledgement: released when the pair is next Synced. */
  private held: AlPin[] = [];
  private writing: Promise<void> | null = null;
  private again = false;
  private overflowed = false;
  /** Transactions written (status: the cost of the log). */
  transactions = 0;
  lastError: string | null = null;

  constructor(readonly file: string, shapes: readonly VolumeShape[], private readonly capacity = AL_CAPACITY) {
    this.per = shapes.map(blocksPerExtent);
  }

  static pathFor(metaFile: string): string { return `${metaFile}.al`; }

  static async read(file: string, shapes: readonly VolumeShape[]): Promise<AlLoad> {
    let b: Buffer;
    try { b = await fsp.readFile(file); } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'missing' };
      return { kind: 'invalid', why: e instanceof Error ? e.message : String(e) };
    }
    return decodeAl(b, shapes);
  }

  /** Extents in the log now (status). */
  get size(): number { return this.inLog.size; }

  /**
   * Pin the extents of a write about to be applied. Returns the pin, or a promise of it when an
   * extent had to be added: the write waits for that transaction (it fails if the log cannot be
   * written: a write is not applied unrecorded).
   */
  cover(extents: readonly DirtyExtent[]): AlPin | Promise<AlPin> {
    const keys: number[] = [];
    let wait = false;
    for (const x of extents) {
      const per = this.per[x.volume];
      if (per === undefined || x.blocks <= 0) continue;
      const first = Number(x.lba / BigInt(per)), last = Number((x.lba + BigInt(x.blocks) - 1n) / BigInt(per));
      for (let e = first; e <= last; e++) {
        const k = x.volume * 2 ** 32 + e;
        keys.push(k);
        this.pins.set(k, (this.pins.get(k) ?? 0) + 1);
        if (this.inLog.has(k)) {
          this.inLog.delete(k); this.inLog.set(k, true); // most recently used
          if (this.unsettled.has(k)) wait = true;
        } else {
          this.fresh.add(k);
          wait = true;
        }
      }
    }
    if (!wait) return keys;
    return (this.fresh.size ? this.transaction() : this.writing!).then(() => keys, (e) => { this.release(keys); throw e; });
  }

  /** The peer acknowledged the write (or it never left this array's store unchanged). */
  release(pin: AlPin): void {
    for (const k of pin) {
      const n = (this.pins.get(k) ?? 1) - 1;
      if (n > 0) this.pins.set(k, n); else this.pins.delete(k);
    }
  }

  /** The write ended without the peer's acknowledgement: keep its extents until the pair is Synced again. */
  hold(pin: AlPin): void { this.held.push(pin); }

  /** The pair is Synced: what was written while it was not has been resent. */
  synced(): void {
    const h = this.held;
    this.held = [];
    for (const p of h) this.release(p);
  }

  /** Write the log now with nothing in it but pinned extents (at start, once the metadata file holds what the old log named). */
  reset(): Promise<void> {
    for (const k of [...this.inLog.keys()]) if (!this.pins.has(k)) this.inLog.delete(k);
    return this.transaction();
  }

  /** Whatever is under way has finished (errors were reported to the writes that waited). */
  settled(): Promise<void> { return (this.writing ?? Promise.resolve()).catch(() => {}); }

  private transaction(): Promise<void> {
    if (this.writing) { this.again = true; return this.writing; }
    const p = (async () => {
      do {
        this.again = false;
        for (const k of this.fresh) { this.inLog.set(k, true); this.unsettled.add(k); }
        this.fresh.clear();
        // Room for the new: drop unpinned extents, least recently used first.
        for (const k of this.inLog.keys()) {
          if (this.inLog.size <= this.capacity) break;
          if (!this.pins.has(k)) this.inLog.delete(k);
        }
        this.overflowed = this.inLog.size > MAX_ENTRIES;
        try {
          await writeDurably(this.file, encodeAl(this.per, this.inLog.keys(), this.overflowed));
          this.transactions++;
          this.lastError = null;
          this.unsettled.clear();
        } catch (e) {
          // What this transaction added is not on disk: the next one must write it.
          for (const k of this.unsettled) { this.inLog.delete(k); if (this.pins.has(k)) this.fresh.add(k); }
          this.unsettled.clear();
          this.lastError = e instanceof Error ? e.message : String(e);
          throw e;
        }
      } while (this.again);
    })();
    this.writing = p.finally(() => { this.writing = null; });
    return this.writing;
  }
}
