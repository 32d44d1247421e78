/**
 * CDB builders for tests and benches (SBC-4 layouts: OPERATION CODE, LBA, TRANSFER LENGTH; byte 1
 * carries the flags). No test-runner imports, so tools/bench can use them too.
 */

export function cdb10(op: number, lba: number, blocks: number, byte1 = 0): Buffer {
  const c = Buffer.alloc(10);
  c[0] = op; c[1] = byte1;
  c.writeUInt32BE(lba, 2);
  c.writeUInt16BE(blocks, 7);
  return c;
}

export function cdb12(op: number, lba: number, blocks: number, byte1 = 0): Buffer {
  const c = Buffer.alloc(12);
  c[0] = op; c[1] = byte1;
  c.writeUInt32BE(lba, 2);
  c.writeUInt32BE(blocks, 6);
  return c;
}

export function cdb16(op: number, lba: bigint | number, blocks: number, byte1 = 0): Buffer {
  const c = Buffer.alloc(16);
  c[0] = op; c[1] = byte1;
  c.writeBigUInt64BE(BigInt(lba), 2);
  c.writeUInt32BE(blocks, 10);
  return c;
}

export function cdb6(op: number, lba: number, blocks: number): Buffer {
  return Buffer.from([op, (lba >> 16) & 0x1f, (lba >> 8) & 0xff, lba & 0xff, blocks & 0xff, 0]);
}
