/**
 * CRC32C for iSCSI header and data digests (RFC 7143 §13.1, the Castagnoli polynomial,
 * 0x1EDC6F41). @node-rs/crc32 computes it natively (SSE4.2 / ARMv8 CRC instructions).
 * On the wire the 32-bit CRC goes least significant byte first (RFC 7143 §12.1 and
 * Appendix B.4: the CRC register is sent in bit-reflected order), which is what the Linux
 * initiator and libiscsi do; test/protocol/digest.test.ts pins it with the RFC's vectors.
 */
import { crc32c as nativeCrc32c } from '@node-rs/crc32';

export function crc32c(buf: Buffer, initial = 0): number {
  return nativeCrc32c(buf, initial) >>> 0;
}

/** CRC32C over several buffers (e.g. data segment + pad) without concatenating them. */
export function crc32cOf(parts: readonly Buffer[]): number {
  let c = 0;
  for (const p of parts) if (p.length) c = nativeCrc32c(p, c);
  return c >>> 0;
}

export function writeDigest(value: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32LE(value >>> 0, 0);
  return b;
}

export function readDigest(b: Buffer, offset: number): number {
  return b.readUInt32LE(offset);
}
