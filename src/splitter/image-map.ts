/**
 * Virtual image access (RecoverPoint's "virtual access": shared/reference/replication-anchors.md §3,
 * "Image access modes": "Instant; presents journal + replica virtually ... New writes go to the
 * image-access log"). The replica is not rolled: the image at sequence S is presented through a
 * read map built from the copy's undo data, and the host's writes go to an overlay.
 *
 * The read map says, for every block written by a record after S that the replica holds, where
 * the block's content at S lives: in the undo data of the *earliest* such record (what it
 * overwrote is what the block held at S, since no record between S and it touched the block), or,
 * for a block no such record touched, in the replica itself. It is built from the undo entries
 * after S (the stream's typed-array columns, undo.ts PieceColumns) in one pass plus one native
 * sort, with no data copied: time O(n log n) in the number n of undo pieces (one per record, more
 * when a record spans allocated and deallocated runs), 28 bytes per piece while building, 24-48 per
 * run kept (typed arrays, and a reference to the winning piece: no object per write).
 *
 * Resolution of overlaps: the pieces are sorted by first block; a sweep keeps the pieces that
 * cover the current block in a min-heap by age (index in oldest-first order), so the block's
 * winner is the heap's top. The winner changes only where a piece starts or where the winner
 * ends, so the sweep emits at most 2n runs.
 *
 * The overlay (logged access's semantics without touching the replica): host writes land in a
 * thin memory store of the volume's geometry, and a sparse block set says which blocks the host
 * wrote (a deallocated overlay block is a host UNMAP, which reads zeros, not the image's data).
 * disable_image_access drops map and overlay: the replica never changed, so distribution resumes
 * where it stopped.
 */
import { MemoryStore } from '../store/memory.ts';
import type { BackingStore } from '../store/store.ts';
import { partitionPoint } from './undo.ts';
import type { PieceColumns, UndoPiece } from './undo.ts';

/** One replication set's map: runs [start, end) of blocks sorted by start, run i read from `pieces[i]`. */
export class ReadMap {
  constructor(readonly start: Float64Array, readonly end: Float64Array, readonly runs: number, private readonly pieces: readonly UndoPiece[]) {}

  /** Index of the first run that ends after `lba` (runs when none). */
  private firstAfter(lba: number): number { return partitionPoint(0, this.runs, (i) => this.end[i] <= lba); }

  /** Lay the image's content of the mapped blocks in [lba, lba+blocks) over `out` (which holds the replica's). */
  fill(lba: number, blocks: number, out: Buffer, bs: number): void {
    const stop = lba + blocks;
    for (let i = this.firstAfter(lba); i < this.runs && this.start[i] < stop; i++) {
      const from = Math.max(this.start[i], lba);
      const to = Math.min(this.end[i], stop);
      const p = this.pieces[i];
      const o = (from - lba) * bs;
      const len = (to - from) * bs;
      // A deallocated run of the undo data: the block read zeros at S.
      if (p.data) {
        const po = (from - Number(p.lba)) * bs;
        p.data.copy(out, o, po, po + len);
      } else out.fill(0, o, o + len);
    }
  }

  /** Blocks the map covers (the image differs from the replica at most there). */
  get blocks(): number {
    let n = 0;
    for (let i = 0; i < this.runs; i++) n += this.end[i] - this.start[i];
    return n;
  }
}

/** Keys of the sort: first block in the high 40 bits, piece index in the low 24. */
const INDEX_BITS = 24;
const MAX_PIECES = 1 << INDEX_BITS;
const MAX_LBA = 2 ** 40;
const LOW = 2 ** (32 - INDEX_BITS);

/**
 * The read maps of image S, one per replication set, from the undo stream's pieces after S
 * (oldest first, as the stream holds them). The pieces must stay while the maps are in use
 * (LocalCopy.heldSeq); the maps keep references to the winning pieces only, not row numbers.
 */
export function buildReadMaps(cols: PieceColumns, after: number, sets: number): ReadMap[] {
  const first = cols.firstAfter(after);
  const count = new Int32Array(sets);
  let maxLba = 0;
  for (let r = first; r < cols.length; r++) { count[cols.set[r]]++; if (cols.lba[r] > maxLba) maxLba = cols.lba[r]; }
  const maps: ReadMap[] = [];
  for (let s = 0; s < sets; s++) {
    // Per set: each piece's end and row, and its first block in the sort's input.
    const n = count[s];
    const ends = new Float64Array(n);
    const rows = new Int32Array(n);
    const keyed = n <= MAX_PIECES && maxLba < MAX_LBA;
    const starts = new Float64Array(n); // keyed: reused for the 64-bit sort keys
    const half = new Uint32Array(starts.buffer); // little endian: [low, high] per key
    for (let r = first, i = 0; r < cols.length; r++) {
      if (cols.set[r] !== s) continue;
      const lba = cols.lba[r];
      ends[i] = lba + cols.blocks[r];
      rows[i] = r;
      if (keyed) {
        half[2 * i] = ((lba % LOW) * MAX_PIECES + i) >>> 0;
        half[2 * i + 1] = Math.floor(lba / LOW);
      } else starts[i] = lba;
      i++;
    }
    const order = keyed ? sortKeys(starts) : sortStarts(starts);
    const m = resolve(order, starts, ends);
    const pieces = new Array<UndoPiece>(m.runs);
    for (let k = 0; k < m.runs; k++) pieces[k] = cols.refs[rows[m.src[k]]];
    maps.push(new ReadMap(m.start, m.end, m.runs, pieces));
  }
  return maps;
}


/**
 * `buf` holds a 64-bit key per piece (first block in the high 40 bits, index in the low 24): a
 * native numeric sort (a comparator function costs ~10x more at 1,000,000), then, in place, the
 * first blocks in sorted order; returns the piece indexes in that order. Ties go oldest first,
 * which lets the sweep drop rewrites of the same blocks early.
 */
function sortKeys(buf: Float64Array): Int32Array {
  const n = buf.length;
  new BigUint64Array(buf.buffer, buf.byteOffset, n).sort();
  const half = new Uint32Array(buf.buffer, buf.byteOffset, 2 * n);
  const order = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const lo = half[2 * i];
    const lba = half[2 * i + 1] * LOW + (lo >>> INDEX_BITS);
    order[i] = lo & (MAX_PIECES - 1);
    buf[i] = lba;
  }
  return order;
}

/** Beyond the keys' range (2^24 pieces, 2^40 blocks): a comparator sort; `starts` sorted in place too. */
function sortStarts(starts: Float64Array): Int32Array {
  const n = starts.length;
  const order = new Int32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  order.sort((a, b) => starts[a] - starts[b] || a - b);
  const copy = Float64Array.from(starts);
  for (let i = 0; i < n; i++) starts[i] = copy[order[i]];
  return order;
}

/**
 * The sweep over the pieces in `order` (their first blocks `sorted`, ascending): for each block,
 * the oldest piece covering it (smallest index), as runs of piece indexes.
 */
function resolve(order: Int32Array, sorted: Float64Array, end: Float64Array): { start: Float64Array; end: Float64Array; src: Int32Array; runs: number } {
  const n = order.length;
  // A binary min-heap of piece indexes (oldest on top).
  const heap = new Int32Array(n);
  let size = 0;
  const push = (v: number): void => {
    let i = size++;
    while (i > 0) {
      const up = (i - 1) >> 1;
      if (heap[up] <= v) break;
      heap[i] = heap[up];
      i = up;
    }
    heap[i] = v;
  };
  const pop = (): void => {
    const v = heap[--size];
    let i = 0;
    for (;;) {
      let c = 2 * i + 1;
      if (c >= size) break;
      if (c + 1 < size && heap[c + 1] < heap[c]) c++;
      if (heap[c] >= v) break;
      heap[i] = heap[c];
      i = c;
    }
    heap[i] = v;
  };
  let rs = new Float64Array(Math.min(Math.max(16, n), 1 << 16));
  let re = new Float64Array(rs.length);
  let rsrc = new Int32Array(rs.length);
  let runs = 0;
  const emit = (from: number, to: number, w: number): void => {
    if (runs && rsrc[runs - 1] === w && re[runs - 1] === from) { re[runs - 1] = to; return; }
    if (runs === rs.length) {
      const grow = <T extends Float64Array | Int32Array>(a: T): T => { const b = new (a.constructor as { new(n: number): T })(a.length * 2); b.set(a); return b; };
      rs = grow(rs); re = grow(re); rsrc = grow(rsrc);
    }
    rs[runs] = from; re[runs] = to; rsrc[runs] = w; runs++;
  };
  let i = 0;
  let cur = 0;
  while (i < n || size > 0) {
    if (size === 0) cur = sorted[i];
    while (size > 0 && end[heap[0]] <= cur) pop();
    while (i < n && sorted[i] <= cur) {
      const p = order[i++];
      // Dominated: an older piece already covers all of it (the usual fate of a rewrite of the
      // same blocks). Left out, it would sit in the heap, never winning, until it reached the top.
      if (end[p] <= cur || (size > 0 && heap[0] < p && end[heap[0]] >= end[p])) continue;
      push(p);
    }
    if (size === 0) continue;
    const w = heap[0];
    const next = i < n ? Math.min(end[w], sorted[i]) : end[w];
    emit(cur, next, w);
    cur = next;
  }
  return { start: rs.subarray(0, runs), end: re.subarray(0, runs), src: rsrc.subarray(0, runs), runs };
}

/**
 * Blocks of one volume, sparse: a bitmap per 32768-block region, allocated on first use, and a
 * region wholly covered kept as one marker (a host UNMAP of a whole 1 TiB image costs 32768
 * markers, not bitmaps).
 */
export class BlockSet {
  private static readonly SHIFT = 15;
  private static readonly PER = 1 << BlockSet.SHIFT;
  private static readonly FULL = new Uint8Array(0);
  private readonly regions = new Map<number, Uint8Array>();
  /** Blocks in the set. */
  size = 0;

  add(lba: number, blocks: number): void {
    const PER = BlockSet.PER;
    for (let b = lba, stop = lba + blocks; b < stop;) {
      const r = Math.floor(b / PER);
      const rEnd = Math.min(stop, (r + 1) * PER);
      let bits = this.regions.get(r);
      if (bits === BlockSet.FULL) { b = rEnd; continue; }
      if (b === r * PER && rEnd === (r + 1) * PER) {
        this.size += PER - (bits ? countBits(bits) : 0);
        this.regions.set(r, BlockSet.FULL);
        b = rEnd;
        continue;
      }
      if (!bits) this.regions.set(r, bits = new Uint8Array(PER >> 3));
      for (; b < rEnd; b++) {
        const k = b - r * PER;
        const m = 1 << (k & 7);
        if ((bits[k >> 3] & m) === 0) { bits[k >> 3] |= m; this.size++; }
      }
    }
  }

  has(lba: number): boolean {
    const bits = this.regions.get(Math.floor(lba / BlockSet.PER));
    if (!bits) return false;
    if (bits === BlockSet.FULL) return true;
    const k = lba % BlockSet.PER;
    return (bits[k >> 3] & (1 << (k & 7))) !== 0;
  }

  /** Maximal runs of blocks of the set inside [lba, lba+blocks). */
  runs(lba: number, blocks: number, each: (from: number, to: number) => void): void {
    if (this.size === 0) return;
    let runFrom = -1;
    const stop = lba + blocks;
    for (let b = lba; b < stop;) {
      const r = Math.floor(b / BlockSet.PER);
      const rEnd = Math.min(stop, (r + 1) * BlockSet.PER);
      const bits = this.regions.get(r);
      if (!bits || bits === BlockSet.FULL) {
        if (bits && runFrom < 0) runFrom = b;
        if (!bits && runFrom >= 0) { each(runFrom, b); runFrom = -1; }
        b = rEnd;
        continue;
      }
      for (; b < rEnd; b++) {
        const k = b - r * BlockSet.PER;
        const on = (bits[k >> 3] & (1 << (k & 7))) !== 0;
        if (on && runFrom < 0) runFrom = b;
        else if (!on && runFrom >= 0) { each(runFrom, b); runFrom = -1; }
      }
    }
    if (runFrom >= 0) each(runFrom, stop);
  }
}

function countBits(bits: Uint8Array): number {
  let n = 0;
  for (let v of bits) for (; v; v &= v - 1) n++;
  return n;
}

/** The image a copy presents in virtual access: per replication set, its read map and the host's overlay. */
export class VirtualImage {
  private readonly overlays: Array<MemoryStore | null>;
  private readonly written: BlockSet[];

  /** `buildMs`: how long building the maps took. */
  constructor(readonly maps: ReadMap[], private readonly replicas: readonly BackingStore[], readonly buildMs: number) {
    this.overlays = replicas.map(() => null);
    this.written = replicas.map(() => new BlockSet());
  }

  /** Runs in the maps, and the blocks they cover (status). */
  get runs(): number { return this.maps.reduce((n, m) => n + m.runs, 0); }
  get mapBlocks(): number { return this.maps.reduce((n, m) => n + m.blocks, 0); }
  /** Memory the overlay holds (thin: what the host wrote, in 1 MiB chunks). */
  get overlayBytes(): number { return this.overlays.reduce((n, o) => n + (o?.allocatedBytes() ?? 0), 0); }
    /** Blocks the host wrote to the image (in the overlay). */
  get overlayBlocks(): number { return this.written.reduce((n, w) => n + w.size, 0); }

  /** Image blocks [lba, lba+blocks) of set `set`: the replica, the map over it, the overlay over both. A private buffer. */
  read(set: number, lba: bigint, blocks: number, into?: Buffer): Buffer | Promise<Buffer> {
    const r = this.replicas[set];
    const out = into ?? Buffer.allocUnsafe(blocks * r.blockSize);
    const base = r.read(lba, blocks, out);
    if (base instanceof Promise) return base.then((b) => this.layer(set, lba, blocks, b));
    return this.layer(set, lba, blocks, base);
  }

  private layer(set: number, lba: bigint, blocks: number, out: Buffer): Buffer {
    const bs = this.replicas[set].blockSize;
    const at = Number(lba);
    this.maps[set].fill(at, blocks, out, bs);
    const ov = this.overlays[set];
    if (ov) {
      this.written[set].runs(at, blocks, (from, to) => {
        ov.read(BigInt(from), to - from, out.subarray((from - at) * bs, (to - at) * bs));
      });
    }
    return out;
  }

  private overlay(set: number): MemoryStore {
    const r = this.replicas[set];
    return this.overlays[set] ??= new MemoryStore(r.blockCount, { blockSize: r.blockSize });
  }

  write(set: number, lba: bigint, data: Buffer): void {
    const ov = this.overlay(set);
    ov.write(lba, data);
    this.written[set].add(Number(lba), data.length / ov.blockSize);
  }

  /** A host UNMAP (or WRITE SAME with UNMAP): the blocks read zeros from now on (LBPRZ=1). */
  unmap(set: number, lba: bigint, blocks: number): void {
    this.overlay(set).unmap(lba, blocks);
    this.written[set].add(Number(lba), blocks);
  }

  writeSame(set: number, lba: bigint, blocks: number, block: Buffer, unmap: boolean): void {
    this.overlay(set).writeSame(lba, blocks, block, unmap);
    this.written[set].add(Number(lba), blocks);
  }

  /**
   * Direct access from a presented image (src/scsi/replica-journal.ts): the blocks the host wrote
   * to set `set`'s overlay, written onto `into` (1 MiB at a time; a host UNMAP's blocks as zeros).
   */
  async mergeOverlay(set: number, into: BackingStore): Promise<void> {
    const ov = this.overlays[set];
    if (!ov) return;
    const runs: Array<[number, number]> = [];
    this.written[set].runs(0, Number(ov.blockCount), (from, to) => { runs.push([from, to]); });
    const step = Math.max(1, Math.floor((1 << 20) / ov.blockSize));
    for (const [from, to] of runs) {
      for (let at = from; at < to; at += step) {
        const n = Math.min(step, to - at);
        await into.write(BigInt(at), Buffer.from(ov.read(BigInt(at), n) as Buffer));
      }
    }
  }

  /** disable_image_access: the overlay's memory goes back to the pool. */
  close(): void {
    for (const o of this.overlays) o?.close();
    this.overlays.fill(null);
  }
}
