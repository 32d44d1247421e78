/**
 * Region digests shared by verify, the first initialization sweep and REGION DIGEST (a remote
 * copy's side, src/scsi/vendor-digest.ts): per 64 KiB piece of a region, its CRC32C XOR its
 * CRC-32 (the IEEE 802.3 polynomial), both native (@node-rs/crc32; DRBD's online verify and
 * checksum-based resync offer crc32c too). A CRC alone is blind to a whole class of data: a block
 * that ends in its own CRC (the CRC of the bytes before it, least significant byte first) leaves
 * the same CRC register whatever it holds (the CRC's residue), so every piece made of such blocks
 * has one and the same CRC32C, and two different ones compare equal. Storage test data is often
 * exactly that (this project's checker writes 4 KiB blocks ending in their CRC32C,
 * src/check/history.ts). The other polynomial's CRC of such a piece still depends on every byte, so
 * the XOR does too (test/splitter/digest.test.ts shows both). Both CRCs run at GB/s here; SHA-1
 * managed 0.4 GB/s on this VM.
 */
import { crc32 } from '@node-rs/crc32';
import { crc32c } from '../../protocol/iscsi/digest.ts';
import type { BackingStore } from '../store/store.ts';

/** TEST HOOK (digest.test.ts's negative control): CRC32C alone, the digest before the residue was found. */
export const digestHooks = { crc32cOnly: false };

/** The digest of one piece: CRC32C XOR CRC-32. */
export function pieceDigest(b: Buffer): number {
  return digestHooks.crc32cOnly ? crc32c(b) : (crc32c(b) ^ crc32(b)) >>> 0;
}

const PIECE = 64 << 10;

export function regionDigest(b: Buffer): Buffer {
  const out = Buffer.allocUnsafe(4 * Math.ceil(b.length / PIECE));
  for (let o = 0, k = 0; o < b.length; o += PIECE, k += 4) out.writeUInt32BE(pieceDigest(b.subarray(o, Math.min(o + PIECE, b.length))), k);
  return out;
}

/** How far from `lba` a store is known to be deallocated (0 when mapped or unknown). */
export function unmappedRun(s: BackingStore, lba: bigint): bigint {
  const m = s.mapping?.(lba);
  return m && !m.mapped ? m.blocks : 0n;
}

const zeroDigests = new Map<number, Buffer>();

/**
 * The digest of `replica`'s [lba, lba+blocks): computed where the data is when the store can
 * (a remote replica: BackingStore.digest), else from a read here. A wholly deallocated range
 * reads zeros (LBPRZ=1), so its digest is that of zeros.
 */
export async function replicaDigest(replica: BackingStore, lba: bigint, blocks: number): Promise<Buffer> {
  if (!replica.digest) return regionDigest(await replica.read(lba, blocks));
  const d = await replica.digest(lba, blocks);
  if (d) return d;
  const bytes = blocks * replica.blockSize;
  let z = zeroDigests.get(bytes);
  if (!z) { z = regionDigest(Buffer.alloc(bytes)); if (zeroDigests.size < 16) zeroDigests.set(bytes, z); }
  return z;
}
