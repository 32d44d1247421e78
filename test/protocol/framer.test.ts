/**
 * The framing state machine (protocol/iscsi/framer.ts, RFC 7143 §11.1-11.2): streams of PDUs
 * built by the independent builder, pushed whole, split in two at every offset and one byte at
 * a time, with every combination of header and data digests; digest failures; and data
 * segments over MaxRecvDataSegmentLength skipped without being buffered.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Framer } from '../../protocol/iscsi/framer.ts';
import type { FrameEvent, FramerOptions } from '../../protocol/iscsi/framer.ts';
import * as B from '../helpers/pdu-builder.ts';
import type { WireOptions } from '../helpers/pdu-builder.ts';
import { expectFramedEverywhere, pduSeen, run, snapshot } from './framing.ts';
import type { Seen } from './framing.ts';

interface Piece { bhs: Buffer; ahs?: Buffer; data?: Buffer }

const loginText = Buffer.from('InitiatorName=iqn.2026-01.test:a\0HeaderDigest=CRC32C,None\0'); // 59 → pad 1
const extCdb = B.extendedCdbAhs(Buffer.from(Array.from({ length: 16 }, (_, i) => i + 1))); // 20 bytes
const bidi = B.bidiReadLengthAhs(4096); // 8 bytes

/** Six PDUs: AHS (one and two segments), data needing 0..3 bytes of padding, empty PDUs. */
const PIECES: Piece[] = [
  { bhs: B.loginRequest({ transit: true, csg: 1, nsg: 3, dsl: loginText.length, isid: '400001370000', tsih: 0, itt: 0, cid: 0, cmdSN: 1, expStatSN: 0 }), data: loginText },
  {
    bhs: B.scsiCommand({ write: true, attr: 1, ahsWords: 5, dsl: 5, lun: 5, itt: 1, edtl: 5, cmdSN: 2, expStatSN: 1, cdb: Buffer.from([0x7f]) }),
    ahs: extCdb, data: Buffer.from('hello'),
  },
  { bhs: B.nopOut({ immediate: true, itt: 2, ttt: 0xffffffff, cmdSN: 3, expStatSN: 1 }) },
  { bhs: B.dataOut({ final: true, dsl: 7, lun: 300, itt: 1, ttt: 0x10, expStatSN: 1, dataSN: 0, bufferOffset: 0 }), data: Buffer.from('1234567') },
  {
    bhs: B.scsiCommand({ read: true, write: true, ahsWords: 7, lun: 0, itt: 3, edtl: 512, cmdSN: 4, expStatSN: 1, cdb: Buffer.from([0x53]) }),
    ahs: Buffer.concat([bidi, extCdb]),
  },
  { bhs: B.textRequest({ final: true, dsl: 2, itt: 4, ttt: 0xffffffff, cmdSN: 5, expStatSN: 1 }), data: Buffer.from('a=') },
  { bhs: B.dataOut({ final: false, dsl: 8, itt: 5, ttt: 0x11, expStatSN: 1, dataSN: 1, bufferOffset: 8 }), data: Buffer.from('8 bytes!') },
];

function stream(pieces: readonly Piece[], o: WireOptions = {}): Buffer {
  return Buffer.concat(pieces.map((p) => B.wire(p.bhs, { ...o, ahs: p.ahs, data: p.data })));
}
const expectedOf = (pieces: readonly Piece[]): Seen[] => pieces.map((p) => pduSeen(p.bhs, p));

const DIGESTS = [
  { headerDigest: false, dataDigest: false },
  { headerDigest: true, dataDigest: false },
  { headerDigest: false, dataDigest: true },
  { headerDigest: true, dataDigest: true },
];
const label = (d: { headerDigest: boolean; dataDigest: boolean }): string =>
  `HeaderDigest=${d.headerDigest ? 'CRC32C' : 'None'} DataDigest=${d.dataDigest ? 'CRC32C' : 'None'}`;

describe('a stream of PDUs frames the same however it is chunked', () => {
  for (const d of DIGESTS) {
    it(label(d), () => {
      const s = stream(PIECES, d);
      expectFramedEverywhere({ ...d, maxDataSegmentLength: 8192 }, s, expectedOf(PIECES));
    });
  }

  it('random chunkings (three to twenty pieces) give the same PDUs', () => {
    const d = { headerDigest: true, dataDigest: true };
    const s = stream(PIECES, d);
    let seed = 12345;
    const rnd = (n: number): number => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed % n; };
    for (let trial = 0; trial < 200; trial++) {
      const cuts = [...new Set(Array.from({ length: 2 + rnd(19) }, () => 1 + rnd(s.length - 1)))].sort((a, b) => a - b);
      const chunks = [0, ...cuts].map((c, i) => s.subarray(c, i < cuts.length ? cuts[i] : s.length));
      expect(run({ ...d, maxDataSegmentLength: 8192 }, chunks).seen).toEqual(expectedOf(PIECES));
    }
  });

  it('hands out views into the chunk (no copy) when a PDU lies within one chunk', () => {
    const s = stream(PIECES.slice(1, 2));
    const f = new Framer({ headerDigest: false, dataDigest: false, maxDataSegmentLength: 8192 });
    const events: FrameEvent[] = [];
    f.push(s, (e) => events.push(e));
    expect(events).toHaveLength(1);
    const e = events[0];
    if (e.kind !== 'pdu') throw new Error(e.kind);
    expect(e.pdu.bhs.buffer).toBe(s.buffer);
    expect(e.pdu.data.buffer).toBe(s.buffer);
    expect(e.pdu.ahs?.buffer).toBe(s.buffer);
    expect(e.pdu.data.byteOffset).toBe(s.byteOffset + 48 + 20);
  });

  it('is not idle while a PDU is partly received, and idle again after it', () => {
    const s = stream(PIECES.slice(0, 1));
    const f = new Framer({ headerDigest: false, dataDigest: false, maxDataSegmentLength: 8192 });
    const seen: Seen[] = [];
    expect(f.idle).toBe(true);
    f.push(s.subarray(0, 10), (e) => seen.push(snapshot(e)));
    expect(f.idle).toBe(false);
    f.push(s.subarray(10, 60), (e) => seen.push(snapshot(e)));
    expect(f.idle).toBe(false);
    expect(seen).toEqual([]);
    f.push(s.subarray(60), (e) => seen.push(snapshot(e)));
    expect(f.idle).toBe(true);
    expect(seen).toEqual(expectedOf(PIECES.slice(0, 1)));
  });

  it('an empty chunk changes nothing', () => {
    const s = stream(PIECES.slice(2, 4));
    const { seen } = run({ headerDigest: false, dataDigest: false, maxDataSegmentLength: 8192 },
      [Buffer.alloc(0), s.subarray(0, 30), Buffer.alloc(0), s.subarray(30), Buffer.alloc(0)]);
    expect(seen).toEqual(expectedOf(PIECES.slice(2, 4)));
  });

  it('options replaced in the emit callback apply from the next PDU in the same chunk (digests start after login)', () => {
    const login = PIECES[0];
    const next = PIECES.slice(1);
    const s = Buffer.concat([B.wire(login.bhs, { data: login.data }), stream(next, { headerDigest: true, dataDigest: true })]);
    for (const cut of [s.length, 40, 48 + 60, 48 + 60 + 7]) {
      const f = new Framer({ headerDigest: false, dataDigest: false, maxDataSegmentLength: 8192 });
      const seen: Seen[] = [];
      const onEvent = (e: FrameEvent): void => {
        seen.push(snapshot(e));
        if (seen.length === 1) f.opts = { headerDigest: true, dataDigest: true, maxDataSegmentLength: 8192 };
      };
      f.push(s.subarray(0, cut), onEvent);
      f.push(s.subarray(cut), onEvent);
      expect(seen, `cut ${cut}`).toEqual(expectedOf(PIECES));
    }
  });
});

describe('header digest (RFC 7143 §7.8)', () => {
  const opts: FramerOptions = { headerDigest: true, dataDigest: false, maxDataSegmentLength: 8192 };
  const good = PIECES.slice(0, 2);

  it('a wrong header digest is reported with the header, after the good PDUs before it', () => {
    const bad = PIECES[2].bhs;
    const s = Buffer.concat([stream(good, opts), B.wire(bad, { headerDigest: true, corruptHeaderDigest: true })]);
    expectFramedEverywhere(opts, s, [...expectedOf(good), { kind: 'header-digest-error', bhs: bad.toString('hex') }]);
  });

  it('the digest covers the AHS: a flipped AHS byte is a header digest error', () => {
    const p = PIECES[4];
    const w = B.wire(p.bhs, { ahs: p.ahs, headerDigest: true });
    w[48 + 10] ^= 0x20;
    const s = Buffer.concat([stream(good, opts), w]);
    expectFramedEverywhere(opts, s, [...expectedOf(good), { kind: 'header-digest-error', bhs: p.bhs.toString('hex') }]);
  });

  it('the digest covers the BHS: a flipped ITT bit is a header digest error', () => {
    const p = PIECES[2];
    const w = B.wire(p.bhs, { headerDigest: true });
    w[19] ^= 0x01;
    const { seen } = run(opts, [w]);
    expect(seen).toEqual([{ kind: 'header-digest-error', bhs: w.subarray(0, 48).toString('hex') }]);
  });

  it('a stream sent without header digests to a framer expecting them is rejected at the first PDU', () => {
    const s = stream(PIECES.slice(2, 4));
    const { seen } = run(opts, [s]);
    expect(seen[0]).toEqual({ kind: 'header-digest-error', bhs: PIECES[2].bhs.toString('hex') });
  });
});

describe('data digest', () => {
  const opts: FramerOptions = { headerDigest: true, dataDigest: true, maxDataSegmentLength: 8192 };
  const o = { headerDigest: true, dataDigest: true };

  it('a wrong data digest flags the PDU (dataDigestOk false); the next PDU is framed normally', () => {
    const bad = PIECES[3];
    const s = Buffer.concat([
      stream(PIECES.slice(0, 1), o),
      B.wire(bad.bhs, { ...o, data: bad.data, corruptDataDigest: true }),
      stream(PIECES.slice(4), o),
    ]);
    expectFramedEverywhere(opts, s, [
      ...expectedOf(PIECES.slice(0, 1)),
      pduSeen(bad.bhs, { data: bad.data, dataDigestOk: false }),
      ...expectedOf(PIECES.slice(4)),
    ]);
  });

  it('the digest covers the padding: a non-zero pad byte with the old digest fails', () => {
    const p = PIECES[1]; // 5 bytes of data, 3 of pad
    const s = Buffer.concat([B.wire(p.bhs, { ...o, ahs: p.ahs, data: p.data, corruptPad: true }), stream(PIECES.slice(2, 3), o)]);
    expectFramedEverywhere(opts, s, [
      pduSeen(p.bhs, { ahs: p.ahs, data: p.data, dataDigestOk: false }),
      ...expectedOf(PIECES.slice(2, 3)),
    ]);
  });

  it('no data digest is expected when the data segment is empty', () => {
    const s = stream([PIECES[2], PIECES[4]], o);
    expect(s.length).toBe((48 + 4) + (48 + 28 + 4));
    expectFramedEverywhere(opts, s, expectedOf([PIECES[2], PIECES[4]]));
  });
});

describe('data segment over MaxRecvDataSegmentLength', () => {
  const MAX = 64;
  const small = PIECES[2];
  const at = { bhs: B.nopOut({ dsl: MAX, itt: 7, ttt: 0xffffffff, cmdSN: 7, expStatSN: 1 }), data: Buffer.alloc(MAX, 0x61) };
  const over1 = { bhs: B.dataOut({ final: false, dsl: 100, itt: 8, ttt: 1, expStatSN: 1, dataSN: 0, bufferOffset: 0 }), data: Buffer.alloc(100, 0x62) };
  const over2 = {
    bhs: B.scsiCommand({ write: true, ahsWords: 5, dsl: MAX + 1, itt: 9, edtl: 65, cmdSN: 8, expStatSN: 1, cdb: Buffer.from([0x7f]) }),
    ahs: extCdb, data: Buffer.alloc(MAX + 1, 0x63), // 65 → 3 bytes of pad
  };
  const last = PIECES[5];

  for (const d of DIGESTS) {
    it(`reported as 'oversize' and skipped; the following PDUs are framed (${label(d)})`, () => {
      const s = stream([small, over1, at, over2, last], d);
      expectFramedEverywhere({ ...d, maxDataSegmentLength: MAX }, s, [
        pduSeen(small.bhs),
        { kind: 'oversize', bhs: over1.bhs.toString('hex'), length: 100 },
        pduSeen(at.bhs, at),
        { kind: 'oversize', bhs: over2.bhs.toString('hex'), length: MAX + 1 },
        pduSeen(last.bhs, last),
      ]);
    });
  }

  describe('without buffering the skipped bytes', () => {
    afterEach(() => vi.restoreAllMocks());

    it('no allocation near the segment size, whatever the chunking', () => {
      const BIG = 1 << 20;
      const huge = B.dataOut({ final: true, dsl: BIG, itt: 1, ttt: 1, expStatSN: 1, dataSN: 0, bufferOffset: 0 });
      const s = Buffer.concat([B.wire(huge, { data: Buffer.alloc(BIG, 0x5a) }), B.wire(small.bhs)]);
      const sizes: number[] = [];
      const unsafe = Buffer.allocUnsafe.bind(Buffer);
      const safe = Buffer.alloc.bind(Buffer);
      const opts: FramerOptions = { headerDigest: false, dataDigest: false, maxDataSegmentLength: 8192 };
      const chunkings = [[s], [s.subarray(0, 47), s.subarray(47, 5000), s.subarray(5000)],
        Array.from({ length: Math.ceil(s.length / 1000) }, (_, i) => s.subarray(i * 1000, (i + 1) * 1000))];
      for (const chunks of chunkings) {
        const f = new Framer(opts);
        const seen: Seen[] = [];
        vi.spyOn(Buffer, 'allocUnsafe').mockImplementation((n: number) => { sizes.push(n); return unsafe(n); });
        vi.spyOn(Buffer, 'alloc').mockImplementation(((n: number, ...rest: unknown[]) => {
          sizes.push(n); return safe(n, ...(rest as []));
        }) as typeof Buffer.alloc);
        let idleDuringSkip = true;
        chunks.forEach((c, i) => {
          f.push(c, (e) => seen.push(snapshot(e)));
          if (i < chunks.length - 1 && seen.length === 1) idleDuringSkip &&= f.idle;
        });
        vi.restoreAllMocks();
        expect(seen).toEqual([{ kind: 'oversize', bhs: huge.toString('hex'), length: BIG }, pduSeen(small.bhs)]);
        expect(idleDuringSkip).toBe(chunks.length === 1);
        expect(f.idle).toBe(true);
      }
      expect(Math.max(0, ...sizes)).toBeLessThan(1024);
    });
  });

  it('exactly MaxRecvDataSegmentLength is accepted', () => {
    const { seen } = run({ headerDigest: false, dataDigest: false, maxDataSegmentLength: MAX }, [B.wire(at.bhs, at)]);
    expect(seen).toEqual([pduSeen(at.bhs, at)]);
  });
});
