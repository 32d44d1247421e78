/**
 * File backing store: a (sparse) regular file, read with positional reads into caller-supplied
 * buffers. Write-back by default (SYNCHRONIZE CACHE and FUA reach stable storage through
 * fdatasync); `writeThrough` makes every write durable before it completes.
 *
 * Deallocation: Node has no fallocate(PUNCH_HOLE), so UNMAP writes zeros (LBPRZ=1 stays true)
 * and the store remembers the deallocated extents in memory for GET LBA STATUS. A freshly
 * created file is entirely deallocated, and zeros are only written over extents not already
 * known to be deallocated, so unmapping costs at most what was written since open. After a
 * reopen the map is empty and everything reports "mapped or unknown" (SBC-4 §5.8.2, provisioning
 * status 0h), which is true.
 */
import { promises as fsp } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import type { BackingStore } from './store.ts';
import { ExtentSet } from './extent-set.ts';

export interface FileStoreOptions {
  /** Size for a new file (bytes); ignored when the file exists with a non-zero size. */
  sizeBytes?: number;
  blockSize?: number;
  /** Thick: a new file is filled with zeros up front; UNMAP is not offered (thin=false). */
  thick?: boolean;
  readonly?: boolean;
  /** fdatasync after every write (write-through cache); default write-back. */
  writeThrough?: boolean;
}

/** Largest single I/O issued for zero-fills and pattern fills. */
const FILL_BYTES = 1 << 20;
const ZEROS = Buffer.alloc(FILL_BYTES);

export class FileStore implements BackingStore {
  readonly kind = 'file' as const;
  readonly thin: boolean;
  readonly writeThrough: boolean;
  private count: bigint;
  /** Blocks known to be deallocated (read as zero). */
  readonly deallocated = new ExtentSet();

  private constructor(
    readonly path: string,
    private readonly fh: FileHandle,
    readonly blockSize: number,
    blockCount: bigint,
    o: FileStoreOptions,
  ) {
    this.count = blockCount;
    this.thin = !o.thick;
    this.writeThrough = !!o.writeThrough;
  }

  static async open(path: string, o: FileStoreOptions = {}): Promise<FileStore> {
    const blockSize = o.blockSize ?? 512;
    let size = 0;
    let created = false;
    try {
      size = (await fsp.stat(path)).size;
    } catch (e: any) {
      if (e?.code !== 'ENOENT') throw e;
      created = true;
    }
    if (created || size === 0) {
      if (!o.sizeBytes) throw new Error(`${path}: file does not exist (or is empty) and no size= was given`);
      if (o.readonly && created) throw new Error(`${path}: readonly LUN on a file that does not exist`);
      size = o.sizeBytes;
    }
    const fh = await fsp.open(path, o.readonly ? 'r' : created ? 'w+' : 'r+');
    let fresh = created;
    try {
      const st = await fh.stat();
      if (st.size === 0 && !o.readonly) {
        await fh.truncate(size);
        fresh = true;
      }
    } catch (e) {
      await fh.close();
      throw e;
    }
    const blocks = BigInt(Math.floor(size / blockSize));
    if (blocks === 0n) { await fh.close(); throw new Error(`${path}: smaller than one ${blockSize}-byte block`); }
    const s = new FileStore(path, fh, blockSize, blocks, o);
    if (fresh) {
      if (o.thick) await s.zeroFill(0, Number(blocks));
      else s.deallocated.add(0, Number(blocks));
    }
    return s;
  }

  get blockCount(): bigint { return this.count; }

  private check(lba: bigint, blocks: number): number {
    if (lba < 0n || blocks < 0 || lba + BigInt(blocks) > this.count) {
      throw new RangeError(`store access beyond end: lba ${lba} blocks ${blocks}`);
    }
    return Number(lba) * this.blockSize;
  }

  async read(lba: bigint, blocks: number, into?: Buffer): Promise<Buffer> {
    const pos = this.check(lba, blocks);
    const len = blocks * this.blockSize;
    const out = into ?? Buffer.allocUnsafe(len);
    let done = 0;
    while (done < len) {
      const { bytesRead } = await this.fh.read(out, done, len - done, pos + done);
      if (bytesRead === 0) { out.fill(0, done, len); break; } // past EOF of a short file
      done += bytesRead;
    }
    return out;
  }

  async write(lba: bigint, data: Buffer, fua?: boolean): Promise<void> {
    const pos = this.check(lba, data.length / this.blockSize);
    await this.writeAll(data, pos);
    if (this.deallocated.size) this.deallocated.remove(Number(lba), Number(lba) + data.length / this.blockSize);
    if (fua || this.writeThrough) await this.fh.datasync();
  }

  private async writeAll(data: Buffer, pos: number): Promise<void> {
    let done = 0;
    while (done < data.length) {
      const { bytesWritten } = await this.fh.write(data, done, data.length - done, pos + done);
      done += bytesWritten;
    }
  }

  async flush(): Promise<void> {
    await this.fh.datasync();
  }

  async unmap(lba: bigint, blocks: number): Promise<void> {
    this.check(lba, blocks);
    const start = Number(lba);
    const end = start + blocks;
    // Zero only what is not already known to be deallocated.
    let x = start;
    while (x < end) {
      const r = this.deallocated.run(x, end);
      if (!r.inSet) await this.zeroFill(x, r.end - x);
      x = r.end;
    }
    if (this.thin) this.deallocated.add(start, end);
    if (this.writeThrough) await this.fh.datasync();
  }

  private async zeroFill(lba: number, blocks: number): Promise<void> {
    let pos = lba * this.blockSize;
    let left = blocks * this.blockSize;
    while (left > 0) {
      const n = Math.min(left, FILL_BYTES);
      await this.writeAll(ZEROS.subarray(0, n), pos);
      pos += n;
      left -= n;
    }
  }

  async writeSame(lba: bigint, blocks: number, block: Buffer, unmap: boolean): Promise<void> {
    this.check(lba, blocks);
    // Zeros on a thin file: the unmap path, which writes zeros only over extents not already
    // known to be deallocated and records the range (LBPRZ=1 keeps reads identical), whether or
    // not UNMAP was asked for — the same rule as the memory store.
    void unmap;
    if (this.thin && block.equals(ZEROS.subarray(0, block.length))) return this.unmap(lba, blocks);
    const per = Math.max(1, Math.floor(FILL_BYTES / this.blockSize));
    const pattern = Buffer.allocUnsafe(Math.min(per, blocks) * this.blockSize);
    pattern.fill(block);
    let l = Number(lba);
    let left = blocks;
    while (left > 0) {
      const n = Math.min(left, per);
      await this.writeAll(pattern.subarray(0, n * this.blockSize), l * this.blockSize);
      l += n;
      left -= n;
    }
    if (this.deallocated.size) this.deallocated.remove(Number(lba), Number(lba) + blocks);
    if (this.writeThrough) await this.fh.datasync();
  }

  mapping(lba: bigint): { mapped: boolean; blocks: bigint } {
    if (lba < 0n || lba >= this.count) throw new RangeError(`lba ${lba} beyond end`);
    const r = this.deallocated.run(Number(lba), Number(this.count));
    return { mapped: !r.inSet, blocks: BigInt(r.end) - lba };
  }

  async resize(blockCount: bigint): Promise<void> {
    const old = Number(this.count);
    await this.fh.truncate(Number(blockCount) * this.blockSize);
    this.count = blockCount;
    const now = Number(blockCount);
    if (now < old) this.deallocated.remove(now, old);
    else if (this.thin) this.deallocated.add(old, now);
  }

  async close(): Promise<void> {
    await this.fh.close();
  }
}
