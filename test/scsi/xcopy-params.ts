/**
 * EXTENDED COPY(LID1) parameter list builder for the tests, written from SPC-4 §6.4 tables
 * independently of protocol/scsi/xcopy.ts (which only decodes parameter lists).
 */

export interface Cscd {
  /** 16 hex digits of an NAA IEEE Registered designator (first digit forced to 5 like VPD 0x83). */
  naa: string;
  blockSize?: number;
  type?: number;
  nul?: boolean;
  luIdType?: number;
}

export type Segment =
  | { type?: 0x02; src: number; dst: number; blocks: number; srcLba: bigint | number; dstLba: bigint | number; dc?: boolean }
  | { type: 0x0a; src: number; dst: number; bytes: number; srcLba: bigint | number; dstLba: bigint | number; srcOffset: number; dstOffset: number }
  | { type: number; raw: Buffer };

/** Identification CSCD descriptor (0xE4), 32 bytes: byte 1 LU ID TYPE/NUL/PDT, 4 code set, 5 assoc/type, 7 length, 8-27 designator, 29-31 block length. */
export function cscd(c: Cscd): Buffer {
  const b = Buffer.alloc(32);
  b[0] = c.type ?? 0xe4;
  b[1] = ((c.luIdType ?? 0) << 6) | (c.nul ? 0x20 : 0);
  b[4] = 0x01; // binary
  b[5] = 0x03; // association LU, designator type NAA
  b[7] = 8;
  Buffer.from('5' + c.naa.slice(1), 'hex').copy(b, 8);
  const bs = c.blockSize ?? 512;
  b[29] = (bs >> 16) & 0xff; b[30] = (bs >> 8) & 0xff; b[31] = bs & 0xff;
  return b;
}

export function segment(s: Segment): Buffer {
  if ('raw' in s) return s.raw;
  if (s.type === 0x0a) {
    const b = Buffer.alloc(32);
    b[0] = 0x0a;
    b.writeUInt16BE(28, 2);
    b.writeUInt16BE(s.src, 4);
    b.writeUInt16BE(s.dst, 6);
    b.writeUInt32BE(s.bytes, 8);
    b.writeBigUInt64BE(BigInt(s.srcLba), 12);
    b.writeBigUInt64BE(BigInt(s.dstLba), 20);
    b.writeUInt16BE(s.srcOffset, 28);
    b.writeUInt16BE(s.dstOffset, 30);
    return b;
  }
  const b = Buffer.alloc(28);
  b[0] = 0x02;
  b[1] = s.dc ? 0x02 : 0;
  b.writeUInt16BE(24, 2);
  b.writeUInt16BE(s.src, 4);
  b.writeUInt16BE(s.dst, 6);
  b.writeUInt16BE(s.blocks, 10);
  b.writeBigUInt64BE(BigInt(s.srcLba), 12);
  b.writeBigUInt64BE(BigInt(s.dstLba), 20);
  return b;
}

/** Header (16 bytes) + CSCD list + segment list. */
export function xcopyList(o: { listId?: number; usage?: number; cscds: Cscd[]; segments: Segment[] }): Buffer {
  const c = Buffer.concat(o.cscds.map(cscd));
  const s = Buffer.concat(o.segments.map(segment));
  const h = Buffer.alloc(16);
  h[0] = o.listId ?? 0;
  h[1] = ((o.usage ?? 0) & 3) << 3;
  h.writeUInt16BE(c.length, 2);
  h.writeUInt32BE(s.length, 8);
  return Buffer.concat([h, c, s]);
}

export function xcopyCdb(parameterListLength: number): Buffer {
  const c = Buffer.alloc(16);
  c[0] = 0x83;
  c.writeUInt32BE(parameterListLength, 10);
  return c;
}

export function rcrCdb(sa: number, listId: number, alloc = 1024): Buffer {
  const c = Buffer.alloc(16);
  c[0] = 0x84; c[1] = sa; c[2] = listId;
  c.writeUInt32BE(alloc, 10);
  return c;
}
