/**
 * The framer's allocData hook (protocol/iscsi/framer.ts): only a data segment that straddles
 * chunks is gathered through it, with its header in hand, sized for data + padding + digest;
 * the PDU's data is a view of what the hook returned. Headers never go through it.
 */
import { describe, expect, it } from 'vitest';
import { Framer } from '../../protocol/iscsi/framer.ts';
import type { FramedPdu } from '../../protocol/iscsi/framer.ts';
import * as B from '../helpers/pdu-builder.ts';

function framer(dataDigest: boolean, calls: { size: number; op: number; buf: Buffer }[]): Framer {
  return new Framer({
    headerDigest: false, dataDigest, maxDataSegmentLength: 1 << 20,
    allocData: (size, bhs) => {
      const buf = Buffer.alloc(size);
      calls.push({ size, op: bhs[0] & 0x3f, buf });
      return buf;
    },
  });
}

describe('Framer allocData', () => {
  const data = Buffer.alloc(4097, 7); // 3 bytes of padding
  const pdu = B.wire(B.dataOut({ final: true, dsl: data.length, itt: 9, ttt: 1, expStatSN: 1, dataSN: 0, bufferOffset: 0 }), { data, dataDigest: true });

  it('gathers a straddling data segment into the hook buffer, digest included', () => {
    for (const cut of [49, 1000, pdu.length - 1]) {
      const calls: { size: number; op: number; buf: Buffer }[] = [];
      const got: FramedPdu[] = [];
      const f = framer(true, calls);
      const emit = (e: { kind: string; pdu?: FramedPdu }) => { if (e.kind === 'pdu') got.push(e.pdu!); };
      f.push(pdu.subarray(0, cut), emit);
      f.push(pdu.subarray(cut), emit);
      expect(got).toHaveLength(1);
      expect(got[0].dataDigestOk).toBe(true);
      expect(got[0].data.equals(data)).toBe(true);
      expect(calls).toHaveLength(1);
      expect(calls[0]).toMatchObject({ size: 4097 + 3 + 4, op: 0x05 });
      expect(got[0].data.buffer).toBe(calls[0].buf.buffer);
    }
  });

  it('is not used for a segment inside one chunk, nor for a split header', () => {
    const calls: { size: number; op: number; buf: Buffer }[] = [];
    const f = framer(true, calls);
    let n = 0;
    for (const cut of [20, 48]) {
      f.push(pdu.subarray(0, cut), () => n++);
      f.push(pdu.subarray(cut), () => n++);
    }
    expect(n).toBe(2);
    expect(calls).toHaveLength(0);
  });
});
