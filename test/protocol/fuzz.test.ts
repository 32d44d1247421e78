/**
 * Property tests (fast-check, bounded runs): the framer and decoder never throw on arbitrary
 * input, and any stream of valid initiator PDUs, split anywhere, comes out as the same PDUs
 * and decodes to the fields it was built from.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Framer } from '../../protocol/iscsi/framer.ts';
import type { FrameEvent } from '../../protocol/iscsi/framer.ts';
import { decodePdu } from '../../protocol/iscsi/pdu.ts';
import type { InitiatorPdu } from '../../protocol/iscsi/pdu.ts';
import * as B from '../helpers/pdu-builder.ts';
import { pduSeen, snapshot } from './framing.ts';
import type { Seen } from './framing.ts';

const RUNS = 200;

/** Cut a buffer at the given offsets (any order, duplicates and out-of-range ignored). */
function cut(buf: Buffer, offsets: number[]): Buffer[] {
  const cs = [...new Set(offsets.map((o) => o % (buf.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let prev = 0;
  for (const c of [...cs, buf.length]) { out.push(Buffer.from(buf.subarray(prev, c))); prev = c; }
  return out;
}

describe('arbitrary bytes', () => {
  const opts = fc.record({
    headerDigest: fc.boolean(), dataDigest: fc.boolean(), maxDataSegmentLength: fc.integer({ min: 0, max: 65536 }),
  });
  /** 48-byte headers whose length fields are small, so the deeper framer states are reached. */
  const plausibleHeader = fc.tuple(fc.uint8Array({ minLength: 48, maxLength: 48 }), fc.integer({ min: 0, max: 3 }),
    fc.integer({ min: 0, max: 300 })).map(([b, ahsWords, dsl]) => {
    const h = Buffer.from(b);
    h[4] = ahsWords; h[5] = 0; h[6] = dsl >> 8; h[7] = dsl & 0xff;
    return h;
  });
  const bytes = fc.oneof(
    fc.uint8Array({ maxLength: 2000 }).map((a) => Buffer.from(a)),
    fc.array(fc.oneof(plausibleHeader, fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a))), { maxLength: 12 })
      .map((parts) => Buffer.concat(parts)),
  );

  it('Framer.push and decodePdu never throw, and what is emitted is consistent with its header', () => {
    fc.assert(fc.property(opts, bytes, fc.array(fc.nat(), { maxLength: 8 }), (o, buf, cuts) => {
      const f = new Framer(o);
      const onEvent = (e: FrameEvent): void => {
        expect(e.kind === 'pdu' ? e.pdu.bhs.length : e.bhs.length).toBe(48);
        if (e.kind === 'pdu') {
          const { bhs, ahs, data } = e.pdu;
          expect(data.length).toBe((bhs[5] << 16) | (bhs[6] << 8) | bhs[7]);
          expect(ahs === null ? 0 : ahs.length).toBe(bhs[4] * 4);
          expect(data.length).toBeLessThanOrEqual(o.maxDataSegmentLength);
          decodePdu(bhs, ahs, data);
        } else if (e.kind === 'oversize') {
          expect(e.length).toBeGreaterThan(o.maxDataSegmentLength);
        }
      };
      for (const c of cut(buf, cuts)) f.push(c, onEvent);
    }), { numRuns: RUNS });
  });

  it('decodePdu never throws on any 48 bytes', () => {
    fc.assert(fc.property(fc.uint8Array({ minLength: 48, maxLength: 48 }), fc.uint8Array({ maxLength: 16 }), (b, d) => {
      const pdu = decodePdu(Buffer.from(b), null, Buffer.from(d));
      expect(pdu.itt).toBe(Buffer.from(b).readUInt32BE(16));
    }), { numRuns: RUNS * 5 });
  });
});

// ---------------------------------------------------------------------------------------------
// Valid PDUs: builder fields → wire → Framer → decodePdu → the same fields

interface Gen { bhs: Buffer; ahs?: Buffer; data: Buffer; decoded: InitiatorPdu }

const u32 = fc.integer({ min: 0, max: 0xffffffff });
const u16 = fc.integer({ min: 0, max: 0xffff });
const lun = fc.oneof(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 256, max: 16383 }));
const data = fc.uint8Array({ maxLength: 200 }).map((a) => Buffer.from(a));
const empty = Buffer.alloc(0);
const isid = fc.uint8Array({ minLength: 6, maxLength: 6 }).map((a) => Buffer.from(a).toString('hex'));
const ahsSegs = fc.array(
  fc.tuple(fc.integer({ min: 1, max: 2 }), fc.uint8Array({ minLength: 1, maxLength: 30 }))
    .map(([t, s]) => B.ahs(t, Buffer.from(s))),
  { maxLength: 3 },
).map((segs) => Buffer.concat(segs));

const nopOut = fc.record({ immediate: fc.boolean(), lun, itt: u32, ttt: u32, cmdSN: u32, expStatSN: u32, data })
  .map((f): Gen => ({
    bhs: B.nopOut({ ...f, dsl: f.data.length }), data: f.data,
    decoded: { op: 0x00, immediate: f.immediate, itt: f.itt, data: f.data, lun: f.lun, ttt: f.ttt, cmdSN: f.cmdSN, expStatSN: f.expStatSN },
  }));

const scsiCommand = fc.record({
  immediate: fc.boolean(), final: fc.boolean(), read: fc.boolean(), write: fc.boolean(), attr: fc.integer({ min: 0, max: 7 }),
  lun, itt: u32, edtl: u32, cmdSN: u32, expStatSN: u32, cdb: fc.uint8Array({ minLength: 16, maxLength: 16 }), ahs: ahsSegs, data,
}).map((f): Gen => {
  const cdb = Buffer.from(f.cdb);
  return {
    bhs: B.scsiCommand({ ...f, cdb, ahsWords: f.ahs.length / 4, dsl: f.data.length }), ahs: f.ahs, data: f.data,
    decoded: {
      op: 0x01, immediate: f.immediate, itt: f.itt, data: f.data, ahs: f.ahs.length ? f.ahs : null, final: f.final,
      read: f.read, write: f.write, attr: f.attr, lun: f.lun, edtl: f.edtl, cmdSN: f.cmdSN, expStatSN: f.expStatSN, cdb,
    },
  };
});

const tmf = fc.record({
  immediate: fc.boolean(), func: fc.integer({ min: 0, max: 127 }), lun, itt: u32, rtt: u32, cmdSN: u32, expStatSN: u32,
  refCmdSN: u32, expDataSN: u32,
}).map((f): Gen => ({
  bhs: B.tmfRequest(f), data: empty,
  decoded: {
    op: 0x02, immediate: f.immediate, itt: f.itt, data: empty, func: f.func, lun: f.lun, referencedTaskTag: f.rtt,
    cmdSN: f.cmdSN, expStatSN: f.expStatSN, refCmdSN: f.refCmdSN, expDataSN: f.expDataSN,
  },
}));

const login = fc.record({
  transit: fc.boolean(), cont: fc.boolean(), csg: fc.integer({ min: 0, max: 3 }), nsg: fc.integer({ min: 0, max: 3 }),
  versionMax: fc.integer({ min: 0, max: 255 }), versionMin: fc.integer({ min: 0, max: 255 }), isid, tsih: u16, itt: u32,
  cid: u16, cmdSN: u32, expStatSN: u32, data,
}).map((f): Gen => ({
  bhs: B.loginRequest({ ...f, dsl: f.data.length }), data: f.data,
  decoded: {
    op: 0x03, immediate: true, itt: f.itt, data: f.data, transit: f.transit, cont: f.cont, csg: f.csg, nsg: f.nsg,
    versionMax: f.versionMax, versionMin: f.versionMin, isid: f.isid, tsih: f.tsih, cid: f.cid, cmdSN: f.cmdSN,
    expStatSN: f.expStatSN,
  },
}));

const text = fc.record({
  immediate: fc.boolean(), final: fc.boolean(), cont: fc.boolean(), lun, itt: u32, ttt: u32, cmdSN: u32, expStatSN: u32, data,
}).map((f): Gen => ({
  bhs: B.textRequest({ ...f, dsl: f.data.length }), data: f.data,
  decoded: {
    op: 0x04, immediate: f.immediate, itt: f.itt, data: f.data, final: f.final, cont: f.cont, lun: f.lun, ttt: f.ttt,
    cmdSN: f.cmdSN, expStatSN: f.expStatSN,
  },
}));

const dataOut = fc.record({
  final: fc.boolean(), lun, itt: u32, ttt: u32, expStatSN: u32, dataSN: u32, bufferOffset: u32, data,
}).map((f): Gen => ({
  bhs: B.dataOut({ ...f, dsl: f.data.length }), data: f.data,
  decoded: {
    op: 0x05, immediate: false, itt: f.itt, data: f.data, final: f.final, lun: f.lun, ttt: f.ttt, expStatSN: f.expStatSN,
    dataSN: f.dataSN, bufferOffset: f.bufferOffset,
  },
}));

const logout = fc.record({
  immediate: fc.boolean(), reasonCode: fc.integer({ min: 0, max: 127 }), itt: u32, cid: u16, cmdSN: u32, expStatSN: u32,
}).map((f): Gen => ({
  bhs: B.logoutRequest(f), data: empty,
  decoded: {
    op: 0x06, immediate: f.immediate, itt: f.itt, data: empty, reason: f.reasonCode, cid: f.cid, cmdSN: f.cmdSN,
    expStatSN: f.expStatSN,
  },
}));

const snackReq = fc.record({
  type: fc.integer({ min: 0, max: 15 }), lun, itt: u32, tttOrSnackTag: u32, expStatSN: u32, begRun: u32, runLength: u32,
}).map((f): Gen => ({
  bhs: B.snack(f), data: empty,
  decoded: {
    op: 0x10, immediate: false, itt: f.itt, data: empty, type: f.type, lun: f.lun, ttt: f.tttOrSnackTag,
    expStatSN: f.expStatSN, begRun: f.begRun, runLength: f.runLength,
  },
}));

const anyPdu = fc.oneof(nopOut, scsiCommand, tmf, login, text, dataOut, logout, snackReq);

describe('valid PDU streams', () => {
  it('split anywhere, with any digests, reproduce the same PDUs, which decode to their fields', () => {
    fc.assert(fc.property(
      fc.array(anyPdu, { minLength: 1, maxLength: 6 }), fc.boolean(), fc.boolean(), fc.array(fc.nat(), { maxLength: 10 }),
      (pdus, headerDigest, dataDigest, cuts) => {
        const s = Buffer.concat(pdus.map((p) => B.wire(p.bhs, { ahs: p.ahs, data: p.data, headerDigest, dataDigest })));
        const f = new Framer({ headerDigest, dataDigest, maxDataSegmentLength: 8192 });
        const seen: Seen[] = [];
        const decoded: InitiatorPdu[] = [];
        for (const c of cut(s, cuts)) {
          f.push(c, (e) => {
            seen.push(snapshot(e));
            if (e.kind === 'pdu') decoded.push(decodePdu(e.pdu.bhs, e.pdu.ahs, e.pdu.data));
          });
        }
        expect(seen).toEqual(pdus.map((p) => pduSeen(p.bhs, p)));
        expect(decoded).toEqual(pdus.map((p) => p.decoded));
        expect(f.idle).toBe(true);
      },
    ), { numRuns: RUNS });
  });

  it('one flipped bit anywhere in a digested stream never goes unnoticed', () => {
    fc.assert(fc.property(fc.array(anyPdu, { minLength: 1, maxLength: 4 }), fc.nat(), fc.integer({ min: 0, max: 7 }),
      (pdus, at, bit) => {
        const s = Buffer.concat(pdus.map((p) => B.wire(p.bhs, { ahs: p.ahs, data: p.data, headerDigest: true, dataDigest: true })));
        const i = at % s.length;
        s[i] ^= 1 << bit;
        const f = new Framer({ headerDigest: true, dataDigest: true, maxDataSegmentLength: 8192 });
        const events: Seen[] = [];
        f.push(s, (e) => events.push(snapshot(e)));
        // The corruption is caught (a header digest error or a PDU flagged bad), or a flipped
        // length field leaves the framer waiting for bytes that never come: never silent success.
        const caught = events.some((e) => e.kind === 'header-digest-error' || (e.kind === 'pdu' && !e.dataDigestOk));
        expect(caught || !f.idle).toBe(true);
      }), { numRuns: RUNS });
  });
});
