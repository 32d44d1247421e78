/**
 * The LUN SPEC of the CLI and the YAML config:
 *
 *   SIZE[,OPTION...]                         memory LUN, e.g. `256MiB`, `1TiB`, `1GiB,thick`
 *   file:PATH[,size=SIZE][,OPTION...]        file LUN; size= is needed only to create the file
 *
 * OPTIONs: thick, removable, readonly, block=512|4096, physical=BYTES (physical block size
 * reported in READ CAPACITY(16): a power of two, at least block=, default equal to it),
 * writethrough (file only).
 * SIZE: an integer or decimal with an optional unit B, K/KB/KiB, M/MB/MiB, G/GB/GiB, T/TB/TiB
 * (all binary multiples: disk people mean 1024 here), rounded down to whole blocks.
 */
import type { BackingStore } from './store.ts';
import { MemoryStore } from './memory.ts';
import { FileStore } from './file.ts';

export interface LunSpec {
  kind: 'memory' | 'file';
  path?: string;
  /** Requested size; for file LUNs 0 means "use the existing file's size". */
  sizeBytes: number;
  thick: boolean;
  removable: boolean;
  readonly: boolean;
  blockSize: 512 | 4096;
  /** Physical block size in bytes (LOGICAL BLOCKS PER PHYSICAL BLOCK EXPONENT); 0 = the logical size. */
  physicalBlockSize: number;
  writeThrough: boolean;
}

const UNITS: Record<string, number> = {
  '': 1, b: 1,
  k: 2 ** 10, kb: 2 ** 10, kib: 2 ** 10,
  m: 2 ** 20, mb: 2 ** 20, mib: 2 ** 20,
  g: 2 ** 30, gb: 2 ** 30, gib: 2 ** 30,
  t: 2 ** 40, tb: 2 ** 40, tib: 2 ** 40,
};

/** Parse "1GiB", "512M", "4096", "1.5T" into bytes. */
export function parseSize(s: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(s);
  if (!m) throw new Error(`bad size "${s}" (want e.g. 256MiB, 1GiB, 1TiB)`);
  const unit = UNITS[m[2].toLowerCase()];
  if (unit === undefined) throw new Error(`bad size unit "${m[2]}" in "${s}" (use B, KiB, MiB, GiB or TiB)`);
  const bytes = Math.floor(Number(m[1]) * unit);
  if (!Number.isSafeInteger(bytes)) throw new Error(`size "${s}" is too large`);
  return bytes;
}

export function parseLunSpec(spec: string): LunSpec {
  const fail = (why: string): never => {
    throw new Error(`bad LUN spec "${spec}": ${why} (want SIZE[,opt...] or file:PATH[,size=SIZE][,opt...]; opts thick, removable, readonly, block=512|4096, physical=4096, writethrough)`);
  };
  const parts = spec.split(',').map((p) => p.trim());
  const head = parts.shift() ?? '';
  const out: LunSpec = { kind: 'memory', sizeBytes: 0, thick: false, removable: false, readonly: false, blockSize: 512, physicalBlockSize: 0, writeThrough: false };
  if (head.startsWith('file:')) {
    out.kind = 'file';
    out.path = head.slice(5);
    if (!out.path) fail('empty file path');
  } else {
    if (!head) fail('missing size');
    try { out.sizeBytes = parseSize(head); } catch (e) { fail((e as Error).message); }
  }
  let sawSize = false;
  for (const p of parts) {
    const [k, v, ...rest] = p.split('=');
    const key = k.toLowerCase();
    if (rest.length) fail(`bad option "${p}"`);
    if (v === undefined) {
      switch (key) {
        case 'thick': out.thick = true; continue;
        case 'thin': out.thick = false; continue;
        case 'removable': out.removable = true; continue;
        case 'readonly': case 'ro': out.readonly = true; continue;
        case 'writethrough': out.writeThrough = true; continue;
        default: fail(`unknown option "${p}"`);
      }
    }
    switch (key) {
      case 'size':
        if (out.kind !== 'file') fail('size= is only for file: LUNs (the size comes first for memory LUNs)');
        if (sawSize) fail('size= given twice');
        sawSize = true;
        try { out.sizeBytes = parseSize(v!); } catch (e) { fail((e as Error).message); }
        break;
      case 'block':
        if (v !== '512' && v !== '4096') fail(`block=${v}: only 512 and 4096 are supported`);
        out.blockSize = Number(v) as 512 | 4096;
        break;
      case 'physical': {
        const n = Number(v);
        if (!Number.isInteger(n) || n < 512 || n > 1 << 20 || (n & (n - 1)) !== 0) fail(`physical=${v}: want a power of two from 512 to 1MiB`);
        out.physicalBlockSize = n;
        break;
      }
      default:
        fail(`unknown option "${p}"`);
    }
  }
  if (out.physicalBlockSize && out.physicalBlockSize < out.blockSize) fail(`physical=${out.physicalBlockSize} is smaller than block=${out.blockSize}`);
  if (out.physicalBlockSize / out.blockSize > 1 << 15) fail('physical= may be at most 2^15 logical blocks');
  if (out.kind === 'memory') {
    if (out.sizeBytes < out.blockSize) fail(`size must be at least one ${out.blockSize}-byte block`);
    if (out.writeThrough) fail('writethrough is only for file: LUNs');
  } else if (sawSize && out.sizeBytes < out.blockSize) {
    fail(`size must be at least one ${out.blockSize}-byte block`);
  }
  return out;
}

export async function openStore(s: LunSpec): Promise<BackingStore> {
  if (s.kind === 'memory') {
    return new MemoryStore(BigInt(Math.floor(s.sizeBytes / s.blockSize)), { blockSize: s.blockSize, thick: s.thick });
  }
  return FileStore.open(s.path!, {
    sizeBytes: s.sizeBytes || undefined, blockSize: s.blockSize, thick: s.thick,
    readonly: s.readonly, writeThrough: s.writeThrough,
  });
}
