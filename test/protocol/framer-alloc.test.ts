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

describe('Framer with reused chunks and direct reads', () => {
  const data = Buffer.alloc(20000, 3);
  const pdu = B.wire(B.dataOut({ final: true, dsl: data.length, itt: 7, ttt: 2, expStatSN: 1, dataSN: 0, bufferOffset: 0 }), { data });
  const small = B.wire(B.nopOut({ immediate: true, itt: 8, ttt: 0xffffffff, cmdSN: 1, expStatSN: 1 }));

  it('copies everything out of a chunk the caller will overwrite', () => {
    const f = new Framer({ headerDigest: false, dataDigest: false, maxDataSegmentLength: 1 << 20, reusedChunks: true });
    const got: FramedPdu[] = [];
    const chunk = Buffer.concat([pdu, small]);
    f.push(chunk, (e) => { if (e.kind === 'pdu') got.push(e.pdu); });
    chunk.fill(0xee); // the caller reuses its buffer
    expect(got).toHaveLength(2);
    expect(got[0].bhs.readUInt32BE(16)).toBe(7);
    expect(got[0].data.equals(data)).toBe(true);
    expect(got[1].bhs.readUInt32BE(16)).toBe(8);
  });

  it('reads a large data segment in place after its header, in several reads', () => {
    const calls: { size: number; op: number; buf: Buffer }[] = [];
    const f = framer(false, calls);
    const got: FramedPdu[] = [];
    const emit = (e: { kind: string; pdu?: FramedPdu }) => { if (e.kind === 'pdu') got.push(e.pdu!); };
    expect(f.directTarget(16384)).toBeNull(); // waiting for a header
    f.push(pdu.subarray(0, 48), emit);
    let off = 48;
    for (const n of [5000, 9000, 6000]) {
      const target = f.directTarget(16384)!;
      expect(target.length).toBe(pdu.length - off);
      pdu.copy(target, 0, off, off + n);
      f.pushDirect(n, emit);
      off += n;
    }
    expect(got).toHaveLength(1);
    expect(got[0].data.equals(data)).toBe(true);
    expect(calls).toHaveLength(1);
    expect(f.directTarget(16384)).toBeNull();
    // A segment under the threshold is not read in place.
    f.push(B.wire(B.dataOut({ final: true, dsl: 0, itt: 9, ttt: 2, expStatSN: 1, dataSN: 0, bufferOffset: 0 })).subarray(0, 48), emit);
    expect(f.directTarget(16384)).toBeNull();
  });

  it('finishes a small segment that straddles chunks from the next chunk, not by a read of its own', () => {
    const small = Buffer.alloc(4096, 5);
    const one = B.wire(B.dataOut({ final: true, dsl: small.length, itt: 11, ttt: 3, expStatSN: 1, dataSN: 0, bufferOffset: 0 }), { data: small });
    const f = new Framer({ headerDigest: false, dataDigest: false, maxDataSegmentLength: 1 << 20, reusedChunks: true });
    const got: FramedPdu[] = [];
    const emit = (e: { kind: string; pdu?: FramedPdu }) => { if (e.kind === 'pdu') got.push(e.pdu!); };
    f.push(one.subarray(0, 48 + 1000), emit);
    expect(f.directTarget(16384)).toBeNull(); // the rest comes with the next chunk
    expect(f.directTarget(1024)!.length).toBe(one.length - 48 - 1000); // above the threshold it is read in place
    f.push(one.subarray(48 + 1000), emit);
    expect(got).toHaveLength(1);
    expect(got[0].data.equals(small)).toBe(true);
  });
});
