/**
 * In-memory backing store. Thin by default: storage lives in fixed-size chunks allocated on
 * first write, so a 1 TiB thin LUN costs only what has been written. Unwritten blocks read as
 * zero from one shared, preallocated zero buffer (no allocation per read), which is also what
 * lets READ CAPACITY(16) report LBPRZ=1 (SBC-4 §4.7.3.3).
 *
 * Full-size chunks live in slabs (SLAB_BYTES, each chunk at a fixed place in its slab): written
 * pages cost memory, unwritten ones do not; a freed chunk's written pages stay resident until
 * every chunk of its slab is freed, and are reused when that chunk is written again.
 *
 * read() hands back a view of the chunk (no copy) when the range lies inside one chunk; a range
 * that straddles chunks is copied into one buffer. Callers must not mutate what read() returns.
 *
 * A whole chunk can be shared, copy-on-write (share(), an array's clone of an extent): the
 * splitter's journal record of an EXTENDED COPY piece holds the destination's chunk instead of a
 * copy, and a replica that is written that very buffer adopts it as its own chunk (write()).
 * Memory written for the first time costs several times a copy into memory touched before (page
 * faults), and each copy of a 1 GiB XCOPY's data was that much. A shared chunk does not change
 * while it has more than one holder: whoever writes to it first moves to a copy (own()).
 */
import { totalmem } from 'node:os';
import type { BackingStore } from './store.ts';
import { SpaceExhaustedError } from './store.ts';

/**
 * The pool every memory store allocates from: by default three quarters of the machine's memory
 * (ARRAYSIM_MEMORY_LIMIT in bytes overrides). A write that would take more fails with 27/07
 * instead of the process dying: a 1 TiB thin LUN on a laptop behaves like a thin array whose
 * pool ran out.
 */
export const memoryPool = {
  used: 0,
  limit: Number(process.env.ARRAYSIM_MEMORY_LIMIT) > 0 ? Number(process.env.ARRAYSIM_MEMORY_LIMIT) : Math.floor(totalmem() * 0.75),
};

export const DEFAULT_CHUNK_BYTES = 1 << 20;
/**
 * Chunks are carved out of slabs of this many bytes (at most the LUN's size). Every Buffer.alloc
 * reports its size to V8 as external memory, and one report per 1 MiB chunk kept V8 starting
 * full GCs ("external memory pressure"): a first pass of 4 KiB writes over a fresh 1 GiB LUN
 * ran ~50 mark-compacts in 2 s, none once the chunks existed. Above glibc's largest mmap
 * threshold (32 MiB) calloc maps fresh zero pages, so an unwritten part of a slab costs no RSS.
 */
const SLAB_BYTES = 128 << 20;

export interface MemoryStoreOptions {
  blockSize?: number;
  /** Allocate every chunk up front (thick provisioning; LBPME=0). */
  thick?: boolean;
  /** Chunk size in bytes: a power of two, a multiple of blockSize. Default 1 MiB. */
  chunkBytes?: number;
}

interface Slab {
  /** Its index in `slabs`. */
  k: number;
  buf: Buffer;
  /** Slots in use: memory handed out (slabChunk) whose last holder (a chunk, a shared record, a detached view) has not let go. */
  live: number;
  /** Slots written before (zeroed again when reused). */
  used: Uint8Array;
  /** Slots whose chunk moved out (detach) while a view of them is still in use: not reused. */
  retired: Uint8Array;
}

/**
 * Chunk memory with more than one holder (share()): the stores whose chunk it is, journal records
 * (releaseShared() when they let go) and views a READ still sends (detach()). While `refs` > 1
 * nobody changes it; `onFree` runs when the last holder lets go (its slab slot is reused then).
 */
interface Share { refs: number; onFree: (() => void) | null }
const shares = new WeakMap<Buffer, Share>();

/** A holder of `chunk` (a share() result) lets go of it. */
export function releaseShared(chunk: Buffer): void {
  const s = shares.get(chunk);
  if (!s) return;
  if (--s.refs === 0) {
    shares.delete(chunk);
    s.onFree?.();
  }
}

/** Shared zero buffers, one per chunk size: the source of every read of unwritten blocks. */
const zeroBuffers = new Map<number, Buffer>();
function zeroBuffer(bytes: number): Buffer {
  let z = zeroBuffers.get(bytes);
  if (!z) zeroBuffers.set(bytes, (z = Buffer.alloc(bytes)));
  return z;
}

export class MemoryStore implements BackingStore {
  readonly kind = 'memory' as const;
  readonly blockSize: number;
  readonly thin: boolean;
  readonly chunkBytes: number;
  private readonly chunkShift: number;
  private readonly zero: Buffer;
  private bytes: number;
  private count: bigint;
  /** Allocated chunks by chunk index. Absent = deallocated, reads as zero. */
  private readonly chunks = new Map<number, Buffer>();
  /** Bytes held by `chunks`, kept as they change (allocatedBytes() is O(1)). */
  private allocated = 0;
  /**
   * Slabs by slab index: slab k holds the full-size chunks k*slabChunks … (k+1)*slabChunks-1, each
   * always at the same place, so a chunk's memory only ever holds its own LBAs: a view handed out
   * by read() can only ever show its own range (the READ command also keeps that range locked
   * until its Data-In has left: ScsiRequest.holdData; or, past holdBreak.ms, detach() moves the
   * chunk to new memory and retires the slot until the view is done). A slab goes when its last
   * chunk is freed.
   */
  private readonly slabs = new Map<number, Slab>();
  private readonly slabChunks: number;
  constructor(blockCount: bigint, o: MemoryStoreOptions = {}) {
    this.blockSize = o.blockSize ?? 512;
    this.chunkBytes = o.chunkBytes ?? DEFAULT_CHUNK_BYTES;
    if (!Number.isInteger(Math.log2(this.blockSize)) || this.blockSize < 512) throw new Error(`bad block size ${this.blockSize}`);
    if (!Number.isInteger(Math.log2(this.chunkBytes)) || this.chunkBytes % this.blockSize !== 0) {
      throw new Error(`chunk size ${this.chunkBytes} must be a power of two multiple of the block size`);
    }
    this.chunkShift = Math.log2(this.chunkBytes);
    this.zero = zeroBuffer(this.chunkBytes);
    this.slabChunks = Math.max(1, Math.floor(SLAB_BYTES / this.chunkBytes));
    this.thin = !o.thick;
    this.count = blockCount;
    this.bytes = Number(blockCount) * this.blockSize;
    if (!Number.isSafeInteger(this.bytes)) throw new Error('store too large');
    if (!this.thin) {
      const left = memoryPool.limit - memoryPool.used;
      if (this.bytes > left) {
        throw new Error(`a thick LUN of ${this.bytes} bytes needs that much memory, and the memory pool has ${left} of ${memoryPool.limit} bytes left (ARRAYSIM_MEMORY_LIMIT sets the pool)`);
      }
      for (let c = 0; c < this.chunkCount(); c++) this.allocChunk(c);
      // Thick means the memory is really there: touch every page now, so the first write to a
      // block costs a copy, not a page fault (calloc'd pages are only mapped when written).
      for (const b of this.chunks.values()) for (let i = 0; i < b.length; i += 4096) b[i] = 0;
    }
  }

  private allocChunk(c: number): Buffer {
    const len = this.chunkLen(c);
    if (memoryPool.used + len > memoryPool.limit) throw new SpaceExhaustedError(len, memoryPool.limit);
    memoryPool.used += len;
    const b = (len === this.chunkBytes ? this.slabChunk(c) : null) ?? Buffer.alloc(len);
    this.chunks.set(c, b);
    this.allocated += b.length;
    return b;
  }

  /** Chunk c's zeroed place in its slab; null when an older, shorter slab has no room for it (after a resize). */
  private slabChunk(c: number): Buffer | null {
    const k = Math.floor(c / this.slabChunks);
    const slot = c - k * this.slabChunks;
    let slab = this.slabs.get(k);
    if (!slab) {
      // Whole chunks only; calloc'd pages cost no memory until written.
      const full = Math.floor(this.bytes / this.chunkBytes);
      const n = Math.min(this.slabChunks, full - k * this.slabChunks);
      if (n <= slot) return null;
      slab = { k, buf: Buffer.alloc(n * this.chunkBytes), live: 0, used: new Uint8Array(n), retired: new Uint8Array(n) };
      this.slabs.set(k, slab);
      this.slabByMemory.set(slab.buf.buffer, slab);
    }
    if (slot >= slab.used.length || slab.retired[slot]) return null;
    const b = slab.buf.subarray(slot * this.chunkBytes, (slot + 1) * this.chunkBytes);
    if (slab.used[slot]) b.fill(0);
    slab.used[slot] = 1;
    slab.live++;
    return b;
  }

  private freeChunk(c: number): void {
    const b = this.chunks.get(c);
    if (!b) return;
    this.chunks.delete(c);
    this.allocated -= b.length;
    memoryPool.used -= b.length;
    this.letGo(b);
  }

  /** This store's slabs by their memory: which slab slot a chunk's memory is, whatever chunk holds it. */
  private readonly slabByMemory = new Map<ArrayBufferLike, Slab>();

  /**
   * The slab slot memory `b` occupies, or null when it is not one of this store's (a copy, or a
   * chunk adopted from another store). Found from the memory, not from the chunk holding it: a
   * chunk adopts another chunk's memory (an EXTENDED COPY within one LU), and retiring the
   * holder's slot instead of the memory's let the memory's own slot be reused, zeroed and
   * written while a journal record still held it (the splitter soak's wrong bookmark images).
   */
  private slotOf(b: Buffer): { slab: Slab; slot: number } | null {
    const slab = this.slabByMemory.get(b.buffer);
    if (slab === undefined || this.slabs.get(slab.k) !== slab) return null;
    return { slab, slot: (b.byteOffset - slab.buf.byteOffset) / this.chunkBytes };
  }

  /** A slab slot nobody holds any more: reusable, and the slab goes with its last one. */
  private freeSlot(slab: Slab, slot: number): void {
    slab.retired[slot] = 0;
    if (--slab.live === 0 && this.slabs.get(slab.k) === slab) {
      this.slabs.delete(slab.k);
      this.slabByMemory.delete(slab.buf.buffer);
    }
  }

  /**
   * A chunk no longer uses memory `b`. Its slab slot is free again, unless `b` is shared: then the
   * slot stays out of use (retired) until the last holder lets go.
   */
  private letGo(b: Buffer): void {
    const home = this.slotOf(b);
    const s = shares.get(b);
    if (!s) {
      if (home) this.freeSlot(home.slab, home.slot);
      return;
    }
    if (home) {
      // Whichever chunk of this store lets go, the memory is the same slot: the same onFree.
      home.slab.retired[home.slot] = 1;
      s.onFree = () => this.freeSlot(home.slab, home.slot);
    }
    releaseShared(b);
  }

  /** Whether any chunk of this store was ever shared (share(), adopt()): own() costs nothing otherwise. */
  private mayShare = false;

  /** Chunk ci's memory, safe to change: a chunk another holder shares is copied first (copy-on-write). */
  private own(ci: number, chunk: Buffer): Buffer {
    if (!this.mayShare) return chunk;
    const s = shares.get(chunk);
    if (!s || s.refs === 1) return chunk;
    this.letGo(chunk);
    // Its own slab slot, unless that slot is the shared memory itself (then retired by letGo).
    const mine = (chunk.length === this.chunkBytes ? this.slabChunk(ci) : null) ?? Buffer.allocUnsafeSlow(chunk.length);
    chunk.copy(mine);
    this.chunks.set(ci, mine);
    return mine;
  }

  /**
   * The whole chunk holding exactly [lba, lba+blocks), shared copy-on-write with the caller, who
   * must not change it and calls releaseShared() when done; null unless the range is exactly one
   * allocated full-size chunk.
   */
  share(lba: bigint, blocks: number): Buffer | null {
    const off = this.offsetOf(lba, blocks);
    if (off % this.chunkBytes !== 0 || blocks * this.blockSize !== this.chunkBytes) return null;
    const chunk = this.chunks.get(off / this.chunkBytes);
    if (!chunk || chunk.length !== this.chunkBytes) return null;
    let s = shares.get(chunk);
    if (!s) shares.set(chunk, (s = { refs: 1, onFree: null }));
    s.refs++;
    this.mayShare = true;
    return chunk;
  }

  /** Write a share() result over a whole chunk of a thin store: it becomes this chunk, no copy. */
  private adopt(ci: number, data: Buffer): void {
    const cur = this.chunks.get(ci);
    if (cur === data) return;
    if (memoryPool.used + data.length - (cur?.length ?? 0) > memoryPool.limit) throw new SpaceExhaustedError(data.length, memoryPool.limit);
    if (cur) this.freeChunk(ci);
    memoryPool.used += data.length;
    this.allocated += data.length;
    this.chunks.set(ci, data);
    shares.get(data)!.refs++;
    this.mayShare = true;
  }

  get blockCount(): bigint { return this.count; }

  private chunkCount(): number { return Math.ceil(this.bytes / this.chunkBytes); }
  /** The last chunk may be shorter than chunkBytes when the size is not a multiple of it. */
  private chunkLen(c: number): number { return Math.min(this.chunkBytes, this.bytes - c * this.chunkBytes); }

  private offsetOf(lba: bigint, blocks: number): number {
    const off = Number(lba) * this.blockSize;
    if (lba < 0n || blocks < 0 || off + blocks * this.blockSize > this.bytes) {
      throw new RangeError(`store access beyond end: lba ${lba} blocks ${blocks}`);
    }
    return off;
  }

  read(lba: bigint, blocks: number, into?: Buffer): Buffer {
    const off = this.offsetOf(lba, blocks);
    const len = blocks * this.blockSize;
    const c = Math.floor(off / this.chunkBytes);
    const inChunk = off - c * this.chunkBytes;
    if (!into && inChunk + len <= this.chunkBytes) {
      // Hot path: one chunk, a view of it (or of the shared zero buffer).
      const chunk = this.chunks.get(c);
      return chunk ? chunk.subarray(inChunk, inChunk + len) : this.zero.subarray(0, len);
    }
    const out = into ?? Buffer.allocUnsafe(len);
    let pos = 0;
    let o = off;
    while (pos < len) {
      const ci = Math.floor(o / this.chunkBytes);
      const start = o - ci * this.chunkBytes;
      const n = Math.min(this.chunkBytes - start, len - pos);
      const chunk = this.chunks.get(ci);
      if (chunk) chunk.copy(out, pos, start, start + n);
      else out.fill(0, pos, pos + n);
      pos += n;
      o += n;
    }
    return out;
  }

  /** `fua` needs nothing here: memory is as durable as this store gets. */
  write(lba: bigint, data: Buffer, _fua?: boolean): void {
    const off = this.offsetOf(lba, data.length / this.blockSize);
    if (this.thin && data.length === this.chunkBytes && off % this.chunkBytes === 0 && shares.has(data)) {
      this.adopt(off / this.chunkBytes, data);
      return;
    }
    let pos = 0;
    let o = off;
    while (pos < data.length) {
      const ci = Math.floor(o / this.chunkBytes);
      const start = o - ci * this.chunkBytes;
      const n = Math.min(this.chunkBytes - start, data.length - pos);
      let chunk = this.chunks.get(ci);
      if (this.thin && isZero(data, pos, n, this.zero)) {
        // Zeros over a deallocated range change nothing; zeros over a whole chunk free it.
        if (chunk) {
          if (n === this.chunkLen(ci)) this.freeChunk(ci);
          else this.own(ci, chunk).fill(0, start, start + n);
        }
      } else {
        chunk = chunk ? this.own(ci, chunk) : this.allocChunk(ci);
        data.copy(chunk, start, pos, pos + n);
      }
      pos += n;
      o += n;
    }
  }

  flush(): void {}

  /**
   * Copy-on-write for a view still in use: `view`, a read() result for [lba, lba+blocks) (a READ's
   * Data-In still queued behind a reader that stopped reading), keeps showing the blocks as they
   * were, while later writes go to new memory. If the view's chunk memory is still the chunk's,
   * the chunk moves to a copy and the old memory is retired: it stays charged to the pool, and a
   * slab slot stays out of use, until every view that was given away on it has been let go (the
   * returned function, once per view). If the chunk moved before (another view's detach), the
   * view just joins that retirement. A view of the zero buffer, or a copy (a read across
   * chunks), needs nothing. Returns null, copying nothing, when the pool has no room.
   */
  detach(lba: bigint, blocks: number, view: Buffer): (() => void) | null {
    const off = this.offsetOf(lba, blocks);
    const c = Math.floor(off / this.chunkBytes);
    const base = view.byteOffset - (off - c * this.chunkBytes);
    const cur = this.chunks.get(c);
    const s = cur && shares.get(cur);
    if (s && cur.buffer === view.buffer && cur.byteOffset === base) {
      // A shared chunk: the view is one more holder, so nobody changes it while the view is in use.
      s.refs++;
      let released = false;
      return () => { if (!released) { released = true; releaseShared(cur); } };
    }
    let r = this.retired.get(view.buffer)?.get(base);
    if (!r) {
      if (!cur || cur.buffer !== view.buffer || cur.byteOffset !== base) return () => {};
      if (memoryPool.used + cur.length > memoryPool.limit) return null;
      r = this.retire(c, cur);
    }
    const retirement = r;
    retirement.views++;
    let done = false;
    return () => {
      if (done) return;
      done = true;
      if (--retirement.views === 0) retirement.free();
    };
  }

  /** Views of retired chunk memory, by ArrayBuffer and the chunk's byte offset in it. */
  private readonly retired = new Map<ArrayBufferLike, Map<number, { views: number; free: () => void }>>();

  /** Moves chunk c to a copy of `old`; `old` is kept (charged, its slab slot unused) until freed. */
  private retire(c: number, old: Buffer): { views: number; free: () => void } {
    const copy = Buffer.allocUnsafeSlow(old.length);
    old.copy(copy);
    this.chunks.set(c, copy);
    memoryPool.used += old.length;
    // The slot keeps counting in slab.live until freed, so the slab stays while the view lives.
    const home = this.slotOf(old);
    if (home) home.slab.retired[home.slot] = 1;
    let byOffset = this.retired.get(old.buffer);
    if (!byOffset) this.retired.set(old.buffer, (byOffset = new Map()));
    const r = {
      views: 0,
      free: () => {
        byOffset.delete(old.byteOffset);
        if (byOffset.size === 0 && this.retired.get(old.buffer) === byOffset) this.retired.delete(old.buffer);
        memoryPool.used -= old.length;
        if (home) this.freeSlot(home.slab, home.slot);
      },
    };
    byOffset.set(old.byteOffset, r);
    return r;
  }

  /** Deallocate (thin) or zero (thick). Whole chunks are freed; partial ones zeroed. O(chunks touched). */
  unmap(lba: bigint, blocks: number): void {
    this.fillRange(lba, blocks, null);
  }

  writeSame(lba: bigint, blocks: number, block: Buffer, _unmap: boolean): void {
    // Deallocated blocks read as zero (LBPRZ=1), so a zero pattern is the same as an unmap
    // whether or not UNMAP was asked for (SBC-4 §4.7.3.4.2 permits either).
    this.fillRange(lba, blocks, isZero(block, 0, block.length, this.zero) ? null : block);
  }

  private fillRange(lba: bigint, blocks: number, pattern: Buffer | null): void {
    const off = this.offsetOf(lba, blocks);
    const end = off + blocks * this.blockSize;
    if (pattern === null && this.thin) return this.deallocate(off, end);
    let o = off;
    while (o < end) {
      const ci = Math.floor(o / this.chunkBytes);
      const start = o - ci * this.chunkBytes;
      const n = Math.min(this.chunkLen(ci) - start, end - o);
      let chunk = this.chunks.get(ci);
      if (pattern === null) {
        if (chunk) this.own(ci, chunk).fill(0, start, start + n);
      } else {
        chunk = chunk ? this.own(ci, chunk) : this.allocChunk(ci);
        // Chunk boundaries are block aligned, so the pattern repeats in phase.
        chunk.fill(pattern, start, start + n);
      }
      o += n;
    }
  }

  /**
   * Thin: bytes [off, end) read as zero afterwards. Whole chunks are freed, the partial chunks at
   * either end zeroed. The work is bounded by the allocated chunks, not by the range: zeroing a
   * whole 1 TiB LU visits what was written, never the 2^20 empty chunk slots.
   */
  private deallocate(off: number, end: number): void {
    const first = Math.floor(off / this.chunkBytes);
    const last = Math.floor((end - 1) / this.chunkBytes);
    const edge = (ci: number) => {
      const chunk = this.chunks.get(ci);
      if (!chunk) return;
      const base = ci * this.chunkBytes;
      const start = Math.max(off, base) - base;
      const stop = Math.min(end, base + chunk.length) - base;
      if (start === 0 && stop === chunk.length) this.freeChunk(ci);
      else this.own(ci, chunk).fill(0, start, stop);
    };
    edge(first);
    if (last !== first) edge(last);
    if (last - first < 2) return;
    if (last - first - 1 <= this.chunks.size) {
      for (let ci = first + 1; ci < last; ci++) this.freeChunk(ci);
    } else {
      for (const ci of [...this.chunks.keys()]) if (ci > first && ci < last) this.freeChunk(ci);
    }
  }

  rangeMapped(lba: bigint, blocks: number): boolean | null {
    const bpc = this.chunkBytes / this.blockSize;
    const first = Number(lba);
    const c0 = Math.floor(first / bpc);
    const c1 = Math.floor((first + blocks - 1) / bpc);
    const mapped = this.chunks.has(c0);
    for (let c = c0 + 1; c <= c1; c++) if (this.chunks.has(c) !== mapped) return null;
    return mapped;
  }

  mapping(lba: bigint, within?: bigint): { mapped: boolean; blocks: bigint } {
    if (lba < 0n || lba >= this.count) throw new RangeError(`lba ${lba} beyond end`);
    const bpc = this.chunkBytes / this.blockSize;
    const c0 = Math.floor(Number(lba) / bpc);
    const mapped = this.chunks.has(c0);
    // The undo capture of every split write asks about its own extent only: without `within` a
    // 4 KiB write to a written 1 GiB LU walked its 1,024 chunks.
    const n = within === undefined ? this.chunkCount() : Math.min(this.chunkCount(), Math.ceil((Number(lba) + Number(within)) / bpc));
    let c = c0 + 1;
    if (mapped) {
      while (c < n && this.chunks.has(c)) c++;
    } else if (n - c <= 64) {
      while (c < n && !this.chunks.has(c)) c++;
    } else if (this.chunks.size > 0) {
      // Deallocated run: find the next allocated chunk without walking a huge empty LU block by block.
      let next = n;
      for (const k of this.chunks.keys()) if (k > c0 && k < next) next = k;
      c = next;
    } else {
      c = n;
    }
    const endLba = BigInt(Math.min(c * bpc, Number(this.count)));
    return { mapped, blocks: endLba - lba };
  }

  resize(blockCount: bigint): void {
    const bytes = Number(blockCount) * this.blockSize;
    if (!Number.isSafeInteger(bytes)) throw new Error('store too large');
    const oldBytes = this.bytes;
    // Drop chunks past the new end; zero the tail of a kept partial chunk so a later grow reads zeros.
    for (const [c, chunk] of this.chunks) {
      const start = c * this.chunkBytes;
      if (start >= bytes) this.freeChunk(c);
      else if (start + chunk.length > bytes) this.own(c, chunk).fill(0, bytes - start);
    }
    this.bytes = bytes;
    this.count = blockCount;
    // The last chunk may need to grow to its full length.
    for (const [c, chunk] of this.chunks) {
      const want = this.chunkLen(c);
      if (chunk.length < want) {
        const bigger = Buffer.alloc(want);
        chunk.copy(bigger);
        this.chunks.set(c, bigger);
        this.allocated += want - chunk.length;
      }
    }
    if (!this.thin && bytes > oldBytes) {
      for (let c = 0; c < this.chunkCount(); c++) if (!this.chunks.has(c)) this.allocChunk(c);
    }
  }

  allocatedBytes(): number {
    return this.allocated;
  }

  close(): void {
    for (const b of this.chunks.values()) releaseShared(b);
    this.chunks.clear();
    this.slabs.clear();
    this.slabByMemory.clear();
    memoryPool.used -= this.allocated;
    this.allocated = 0;
  }
}

/**
 * Whether b[from, from+len) is all zeros: memcmp against the shared zero buffer, after a look at
 * its first and last bytes (most data is not zeros, and says so there).
 */
function isZero(b: Buffer, from: number, len: number, zero: Buffer): boolean {
  if (len === 0) return true;
  if (b[from] !== 0 || b[from + len - 1] !== 0) return false;
  for (let o = 0; o < len; o += zero.length) {
    const n = Math.min(zero.length, len - o);
    if (zero.compare(b, from + o, from + o + n, 0, n) !== 0) return false;
  }
  return true;
}
