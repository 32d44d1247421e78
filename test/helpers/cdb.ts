/**
 * CDB builders for tests and benches (SBC-4 layouts: OPERATION CODE, LBA, TRANSFER LENGTH; byte 1
 * carries the flags). No test-runner imports, so tools/bench can use them too.
 */

import { lba16, rw10 } from '../../src/initiator/cdb.ts';

/** The 10-byte LBA + 2-byte count layout (READ/WRITE(10) and kin): the initiator module's builder. */
export const cdb10: (op: number, lba: number, blocks: number, byte1?: number) => Buffer = rw10;

export function cdb12(op: number, lba: number, blocks: number, byte1 = 0): Buffer {
  const c = Buffer.alloc(12);
  c[0] = op; c[1] = byte1;
  c.writeUInt32BE(lba, 2);
  c.writeUInt32BE(blocks, 6);
  return c;
}

/** The 16-byte LBA + 4-byte count layout (READ/WRITE(16), WRITE SAME(16) …), taking a number LBA too. */
export function cdb16(op: number, lba: bigint | number, blocks: number, byte1 = 0): Buffer {
  return lba16(op, BigInt(lba), blocks, byte1);
}

export function cdb6(op: number, lba: number, blocks: number): Buffer {
  return Buffer.from([op, (lba >> 16) & 0x1f, (lba >> 8) & 0xff, lba & 0xff, blocks & 0xff, 0]);
}

/** COMPARE AND WRITE (SBC-4 §5.3): NUMBER OF LOGICAL BLOCKS in byte 13; the Data-Out is verify then write data. */
export function caw16(lba: bigint | number, blocks: number, byte1 = 0): Buffer {
  const c = cdb16(0x89, lba, 0, byte1);
  c[13] = blocks;
  return c;
}

/** UNMAP (SBC-4 §5.32): PARAMETER LIST LENGTH in bytes 7-8. */
export function unmapCdb(parameterListLength: number): Buffer {
  const c = Buffer.alloc(10);
  c[0] = 0x42;
  c.writeUInt16BE(parameterListLength, 7);
  return c;
}

/** UNMAP parameter list: 8-byte header, then one 16-byte block descriptor (LBA, NUMBER OF LOGICAL BLOCKS) per range. */
export function unmapParameterList(ranges: Array<[bigint | number, number]>): Buffer {
  const p = Buffer.alloc(8 + 16 * ranges.length);
  p.writeUInt16BE(p.length - 2, 0);
  p.writeUInt16BE(16 * ranges.length, 2);
  ranges.forEach(([lba, n], i) => { p.writeBigUInt64BE(BigInt(lba), 8 + 16 * i); p.writeUInt32BE(n, 16 + 16 * i); });
  return p;
}
