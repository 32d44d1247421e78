/**
 * The two arrays' copies of the volume, compared byte for byte once the pair has healed (both
 * Synced, no host I/O): read from each array's backing file (src/check/cluster.ts keeps each
 * site's volume on a file), not through either array, so that what is compared is what each
 * array holds. Synchronous replication promises identical copies; a read-back through each
 * host's multipath device cannot see a block that differs on the array the host does not read.
 */
import { open } from 'node:fs/promises';

export interface VolumeCompare {
  /** Blocks compared (the shorter file's, when the sizes differ). */
  blocks: number;
  blockSize: number;
  /** Blocks whose bytes differ. */
  differing: number;
  /** The first few differing LBAs. */
  first: number[];
  /** Set when the sizes differ or a file could not be read. */
  problem: string | null;
}

const CHUNK = 1 << 20;

export async function compareVolumes(a: string, b: string, blockSize = 512): Promise<VolumeCompare> {
  const out: VolumeCompare = { blocks: 0, blockSize, differing: 0, first: [], problem: null };
  let fa, fb;
  try {
    fa = await open(a, 'r');
    fb = await open(b, 'r');
    const [sa, sb] = [(await fa.stat()).size, (await fb.stat()).size];
    if (sa !== sb) out.problem = `sizes differ: ${sa} bytes on A, ${sb} on B`;
    const size = Math.min(sa, sb);
    out.blocks = Math.floor(size / blockSize);
    const ba = Buffer.alloc(CHUNK);
    const bb = Buffer.alloc(CHUNK);
    for (let off = 0; off < out.blocks * blockSize; off += CHUNK) {
      const n = Math.min(CHUNK, out.blocks * blockSize - off);
      await Promise.all([fa.read(ba, 0, n, off), fb.read(bb, 0, n, off)]);
      if (ba.subarray(0, n).equals(bb.subarray(0, n))) continue;
      for (let i = 0; i < n; i += blockSize) {
        if (ba.subarray(i, i + blockSize).equals(bb.subarray(i, i + blockSize))) continue;
        out.differing++;
        if (out.first.length < 5) out.first.push((off + i) / blockSize);
      }
    }
  } catch (e) {
    out.problem = `could not compare: ${e instanceof Error ? e.message : String(e)}`;
  } finally {
    await fa?.close();
    await fb?.close();
  }
  return out;
}
