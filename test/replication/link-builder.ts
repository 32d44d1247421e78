/**
 * Test helper: builds link messages byte by byte from the field layout written out here again,
 * independently of protocol/replication/link.ts, so the golden vectors check the codec rather
 * than the codec checking itself. CRC32C from the RFC 3720 table-free bitwise definition.
 */
function crc32cBitwise(b: Buffer): number {
  let c = 0xffffffff;
  for (const x of b) {
    c ^= x;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
  }
  return (c ^ 0xffffffff) >>> 0;
}

export type Field = ['u8' | 'u16' | 'u32', number] | ['u64', bigint] | ['str', string] | ['hex', string];

export function fields(...fs: Field[]): Buffer {
  const out: Buffer[] = [];
  for (const [k, v] of fs) {
    if (k === 'u8') out.push(Buffer.from([v as number]));
    else if (k === 'u16') { const b = Buffer.alloc(2); b.writeUInt16BE(v as number); out.push(b); }
    else if (k === 'u32') { const b = Buffer.alloc(4); b.writeUInt32BE(v as number); out.push(b); }
    else if (k === 'u64') { const b = Buffer.alloc(8); b.writeBigUInt64BE(v as bigint); out.push(b); }
    else if (k === 'str') { const s = Buffer.from(v as string, 'utf8'); const l = Buffer.alloc(2); l.writeUInt16BE(s.length); out.push(l, s); }
    else out.push(Buffer.from(v as string, 'hex'));
  }
  return Buffer.concat(out);
}

/**
 * Header (magic "ARRC", version 6, type, flags, length, sequence, payload CRC LSB first, header CRC) + payload.
 * `crcBytes`: the payload CRC covers only the first that many bytes (a write sent with flag 0x0001, its data unchecked).
 */
export function frame(type: number, sequence: number, payload: Buffer, o: { version?: number; magic?: number; flags?: number; crcBytes?: number } = {}): Buffer {
  const h = Buffer.alloc(24);
  h.writeUInt32BE(o.magic ?? 0x41525243, 0);
  h[4] = o.version ?? 6;
  h[5] = type;
  h.writeUInt16BE(o.flags ?? 0, 6);
  h.writeUInt32BE(payload.length, 8);
  h.writeUInt32BE(sequence, 12);
  h.writeUInt32LE(crc32cBitwise(payload.subarray(0, o.crcBytes ?? payload.length)), 16);
  h.writeUInt32LE(crc32cBitwise(h.subarray(0, 20)), 20);
  return Buffer.concat([h, payload]);
}

export { crc32cBitwise };
