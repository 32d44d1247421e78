/**
 * CRC32C header/data digests (RFC 7143 §13.1, §12.1) pinned with the vectors of RFC 7143
 * Appendix B.4. The appendix lists each CRC as the four bytes sent on the wire ("Byte: 0 1 2 3"),
 * which is the 32-bit value least significant byte first.
 */
import { describe, expect, it } from 'vitest';
import { crc32c, crc32cOf, readDigest, writeDigest } from '../../protocol/iscsi/digest.ts';
import { hex, refCrc32c } from '../helpers/pdu-builder.ts';

const RFC_B4: { name: string; input: Buffer; wire: string; value: number }[] = [
  { name: '32 bytes of zeroes', input: Buffer.alloc(32, 0x00), wire: 'aa 36 91 8a', value: 0x8a9136aa },
  { name: '32 bytes of ones', input: Buffer.alloc(32, 0xff), wire: '43 ab a8 62', value: 0x62a8ab43 },
  {
    name: '32 bytes of incrementing 00..1f',
    input: Buffer.from(Array.from({ length: 32 }, (_, i) => i)), wire: '4e 79 dd 46', value: 0x46dd794e,
  },
  {
    name: '32 bytes of decrementing 1f..00',
    input: Buffer.from(Array.from({ length: 32 }, (_, i) => 31 - i)), wire: '5c db 3f 11', value: 0x113fdb5c,
  },
  {
    name: 'an iSCSI - SCSI Read (10) Command PDU',
    input: hex(`
      01 c0 00 00 00 00 00 00 00 00 00 00 00 00 00 00
      14 00 00 00 00 00 04 00 00 00 00 14 00 00 00 18
      28 00 00 00 00 00 00 00 02 00 00 00 00 00 00 00
    `),
    wire: '56 3a 96 d9', value: 0xd9963a56,
  },
];

describe('RFC 7143 Appendix B.4 CRC32C vectors', () => {
  for (const v of RFC_B4) {
    describe(v.name, () => {
      it('numeric value', () => {
        expect(crc32c(v.input)).toBe(v.value);
        expect(refCrc32c(v.input)).toBe(v.value); // the test helper agrees, so framer vectors are trustworthy
      });

      it('bytes on the wire in the order the RFC lists them', () => {
        expect(writeDigest(crc32c(v.input)).toString('hex')).toBe(v.wire.replace(/ /g, ''));
        expect(readDigest(hex(v.wire), 0)).toBe(v.value);
      });

      it('same value when computed over pieces (chained initial state)', () => {
        for (const cut of [1, 7, 16, v.input.length - 1]) {
          const a = v.input.subarray(0, cut);
          const b = v.input.subarray(cut);
          expect(crc32c(b, crc32c(a))).toBe(v.value);
          expect(crc32cOf([a, Buffer.alloc(0), b])).toBe(v.value);
        }
      });
    });
  }
});

describe('digest helpers', () => {
  it('CRC-32C check value ("123456789" → 0xe3069283)', () => {
    expect(crc32c(Buffer.from('123456789'))).toBe(0xe3069283);
  });

  it('empty input is 0, alone or as parts', () => {
    expect(crc32c(Buffer.alloc(0))).toBe(0);
    expect(crc32cOf([])).toBe(0);
    expect(crc32cOf([Buffer.alloc(0), Buffer.alloc(0)])).toBe(0);
  });

  it('always an unsigned 32-bit number (high bit set values too)', () => {
    const v = crc32c(RFC_B4[4].input);
    expect(v).toBeGreaterThan(0x7fffffff);
    expect(Number.isInteger(v) && v >= 0 && v <= 0xffffffff).toBe(true);
  });

  it('short inputs (the table loop) and long ones (the native module) agree with the reference, chained across the cut-over', () => {
    const bytes = Buffer.from(Array.from({ length: 80 }, (_, i) => (i * 151 + 7) & 0xff));
    for (let n = 0; n <= bytes.length; n++) {
      const b = bytes.subarray(0, n);
      expect(crc32c(b)).toBe(refCrc32c(b));
      // A short piece continuing a long one's CRC, and the other way round.
      for (const cut of [1, 20, 33]) if (cut < n) expect(crc32c(b.subarray(cut), crc32c(b.subarray(0, cut)))).toBe(refCrc32c(b));
    }
  });

  it('data + pad digested as parts equals the padded segment digested whole (§11.1 padding is covered)', () => {
    const data = Buffer.from('InitiatorName=iqn.x\0'); // 20 bytes
    const odd = data.subarray(0, 18);
    const pad = Buffer.alloc(2);
    expect(crc32cOf([odd, pad])).toBe(crc32c(Buffer.concat([odd, pad])));
    expect(crc32cOf([odd, pad])).not.toBe(crc32c(odd));
  });

  it('agrees with the reference implementation on assorted lengths', () => {
    for (let n = 0; n < 300; n += 7) {
      const b = Buffer.from(Array.from({ length: n }, (_, i) => (i * 37 + n) & 0xff));
      expect(crc32c(b)).toBe(refCrc32c(b));
    }
  });

  it('writeDigest / readDigest round trip at an offset', () => {
    const b = Buffer.concat([Buffer.alloc(5, 0xee), writeDigest(0x01020304)]);
    expect(b.subarray(5).toString('hex')).toBe('04030201');
    expect(readDigest(b, 5)).toBe(0x01020304);
  });
});
