/**
 * Data segments over the negotiated MaxRecvDataSegmentLength and digest errors, at a live
 * target with CRC32C negotiated. The answers are RFC 7143's:
 *  - a data segment longer than the target declared: Reject, reason PROTOCOL ERROR (0x04),
 *    the segment skipped without being buffered (the connection may also be closed);
 *  - a header digest error: the header's lengths cannot be trusted, so the connection closes
 *    (§7.8; at ErrorRecoveryLevel 0 there is no recovery within the connection);
 *  - a data digest error: Reject DATA DIGEST ERROR (0x02) and the PDU is discarded (§7.8).
 *    For immediate data the command is discarded too and may be retried with the same CmdSN;
 *    for Data-Out at ErrorRecoveryLevel 0 the task ends in CHECK CONDITION with the iSCSI
 *    condition PROTOCOL SERVICE CRC ERROR (ABORTED COMMAND, 47h/05h, §11.4.7.2).
 * In every case no block is written from a rejected PDU.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestInitiator } from '../helpers/initiator.ts';
import { eventually, expectAlive, maybeNext, openSession, parseSense, serverCounts, startWithContent, write10, writeCommand, runs } from '../helpers/fuzz.ts';
import type { Harness } from '../integration/harness.ts';

const MRDSL = 8192;
const BLOCKS = 256;
const DIGESTS = { HeaderDigest: 'CRC32C', DataDigest: 'CRC32C', ImmediateData: 'Yes', InitialR2T: 'Yes' };

function pattern(blocks: number, seed: number): Buffer {
  const b = Buffer.alloc(blocks * 512);
  for (let k = 0; k < b.length; k++) b[k] = (k * 31 + seed * 17 + (k >> 9)) & 0xff;
  return b;
}


describe('data segment limits and digest errors', () => {
  let h: Harness;
  let image: () => Buffer;

  beforeAll(async () => {
    ({ h, image } = await startWithContent(BLOCKS, pattern(BLOCKS, 1), { tuning: { keys: { MaxRecvDataSegmentLength: String(MRDSL) } } }));
  });
  afterAll(async () => {
    await eventually(() => serverCounts(h).connections === 0 && serverCounts(h).sessions === 0 && serverCounts(h).nexuses === 0);
    await h.close();
  });

  it('rejects a data segment over the declared MaxRecvDataSegmentLength with PROTOCOL ERROR and writes nothing', async () => {
    const i = await openSession(h.port);
    expect(i.negotiated.MaxRecvDataSegmentLength).toBe(String(MRDSL)); // the target's declaration (§13.12)
    const before = image();
    await fc.assert(fc.asyncProperty(
      fc.constantFrom(0x00, 0x01, 0x04, 0x05), fc.integer({ min: MRDSL + 1, max: MRDSL + 40000 }),
      async (op, dsl) => {
        if (i.closed) return;
        const itt = i.itt++;
        const b = i.bhs(op, op !== 0x05);
        b[1] = 0x80;
        if (op === 0x01) { b[1] = 0xa1; Buffer.from(write10(0, 1)).copy(b, 32); b.writeUInt32BE(dsl, 20); }
        b.writeUInt32BE(itt, 16);
        if (op !== 0x01) b.writeUInt32BE(0xffffffff, 20); // TTT reserved (or unknown, for Data-Out)
        b.writeUInt32BE(i.cmdSN, 24);
        TestInitiator.setDsl(b, dsl);
        i.send(b, Buffer.alloc(dsl, 0xee));
        const rej = await maybeNext(i, (p) => p.opcode === 0x3f && p.data.readUInt32BE(16) === itt, 3000);
        if (rej) {
          expect(rej.bhs[2]).toBe(0x04);
          expect(rej.data.subarray(0, 48).equals(b)).toBe(true);
          await expectAlive(i); // the segment was skipped, framing intact
        } else {
          expect(i.closed, 'no Reject means the target closed the connection').toBe(true);
        }
      }), { numRuns: runs(30) });
    expect(image().equals(before)).toBe(true);
    i.close();
  });

  it('does not buffer an oversized segment: 16 MiB announced, nothing held, next PDU framed', async () => {
    const i = await openSession(h.port);
    const b = i.bhs(0x00, true);
    b[1] = 0x80; b.writeUInt32BE(0x7777, 16); b.writeUInt32BE(0xffffffff, 20); b.writeUInt32BE(i.cmdSN, 24);
    TestInitiator.setDsl(b, 0xffffff);
    i.sock.write(b);
    const rej = await i.next((p) => p.opcode === 0x3f);
    expect(rej.bhs[2]).toBe(0x04);
    const chunk = Buffer.alloc(1 << 20, 0x5a);
    const total = 0xffffff + 1; // DSL plus one pad byte
    for (let sent = 0; sent < total; sent += chunk.length) i.sock.write(chunk.subarray(0, Math.min(chunk.length, total - sent)));
    await expectAlive(i);
    i.close();
  });

  it('closes the connection on a header digest error and keeps serving others', async () => {
    const other = await openSession(h.port, DIGESTS);
    await fc.assert(fc.asyncProperty(fc.constantFrom(0x00, 0x01, 0x04, 0x05, 0x06), async (op) => {
      const i = await openSession(h.port, DIGESTS, false);
      const b = i.bhs(op, true);
      b[1] = 0x80; b.writeUInt32BE(i.itt++, 16); b.writeUInt32BE(i.cmdSN, 24);
      i.send(b, undefined, { corruptHeader: true });
      expect(await i.waitClosed(2000)).toBe(true);
    }), { numRuns: runs(10) });
    await expectAlive(other);
    other.close();
  });

  it('rejects a data digest error on a NOP-Out with DATA DIGEST ERROR (0x02) and answers nothing else', async () => {
    const i = await openSession(h.port, DIGESTS);
    const itt = i.itt++;
    const b = i.bhs(0x00, true);
    b[1] = 0x80; b.writeUInt32BE(itt, 16); b.writeUInt32BE(0xffffffff, 20); b.writeUInt32BE(i.cmdSN, 24);
    TestInitiator.setDsl(b, 5);
    i.send(b, Buffer.from('hello'), { corruptData: true });
    const rej = await i.next((p) => p.opcode === 0x3f);
    expect(rej.bhs[2]).toBe(0x02);
    expect(rej.data.readUInt32BE(16)).toBe(itt);
    expect(await maybeNext(i, (p) => p.itt === itt, 200)).toBeNull();
    await expectAlive(i);
    i.close();
  });

  it('discards a WRITE whose immediate data fails the digest; the retry with the same CmdSN runs', async () => {
    const i = await openSession(h.port, DIGESTS);
    await fc.assert(fc.asyncProperty(fc.integer({ min: 0, max: BLOCKS - 8 }), fc.integer({ min: 1, max: 8 }), fc.nat(),
      async (lba, blocks, seed) => {
        const before = image();
        const data = pattern(blocks, seed);
        const { itt, bhs: b } = writeCommand(i, lba, blocks, i.cmdSN);
        TestInitiator.setDsl(b, data.length);
        i.send(b, data, { corruptData: true });
        const rej = await i.next((p) => p.opcode === 0x3f && p.data.readUInt32BE(16) === itt);
        expect(rej.bhs[2]).toBe(0x02);
        expect(await maybeNext(i, (p) => p.itt === itt, 50)).toBeNull();
        expect(image().equals(before), 'discarded command wrote nothing').toBe(true);
        // RFC 7143 §6.2.1: the initiator retries the command with its original ITT and CmdSN.
        i.send(b, data);
        const rsp = await i.next((p) => p.itt === itt);
        expect([rsp.opcode, rsp.bhs[3]]).toEqual([0x21, 0]);
        i.expStatSN = (rsp.statSN + 1) >>> 0;
        i.cmdSN++;
        const after = image();
        expect(after.subarray(lba * 512, (lba + blocks) * 512).equals(data)).toBe(true);
        before.fill(0, lba * 512, (lba + blocks) * 512); after.fill(0, lba * 512, (lba + blocks) * 512);
        expect(after.equals(before)).toBe(true);
      }), { numRuns: runs(15) });
    await expectAlive(i);
    i.close();
  });

  it('ends a WRITE whose Data-Out fails the digest with PROTOCOL SERVICE CRC ERROR and writes nothing', async () => {
    const i = await openSession(h.port, { ...DIGESTS, ImmediateData: 'No' });
    await fc.assert(fc.asyncProperty(fc.integer({ min: 0, max: BLOCKS - 64 }), fc.integer({ min: 2, max: 64 }), fc.nat(), fc.nat(),
      async (lba, blocks, seed, which) => {
        const before = image();
        const data = pattern(blocks, seed);
        const { itt, bhs: b } = writeCommand(i, lba, blocks, i.cmdSN++);
        i.send(b);
        const r2t = await i.next((p) => p.itt === itt && p.opcode === 0x31);
        const off = r2t.bhs.readUInt32BE(40);
        const len = r2t.bhs.readUInt32BE(44);
        expect([off, len]).toEqual([0, data.length]);
        const pdus = Math.ceil(len / MRDSL);
        const bad = which % pdus;
        for (let k = 0; k < pdus; k++) {
          const o = k * MRDSL;
          const seg = data.subarray(o, Math.min(len, o + MRDSL));
          i.sendDataOut(itt, r2t.ttt, 0, k, o, seg, o + seg.length >= len, { corruptData: k === bad });
        }
        const rej = await i.next((p) => p.opcode === 0x3f);
        expect(rej.bhs[2]).toBe(0x02);
        expect(rej.data.readUInt32BE(16)).toBe(itt);
        const rsp = await i.next((p) => p.itt === itt && p.opcode === 0x21);
        i.expStatSN = (rsp.statSN + 1) >>> 0;
        expect(rsp.bhs[3]).toBe(0x02);
        const s = parseSense(rsp.data.subarray(2, 2 + rsp.data.readUInt16BE(0)));
        expect([s.key, s.asc, s.ascq]).toEqual([0x0b, 0x47, 0x05]);
        expect(image().equals(before), 'failed task wrote nothing').toBe(true);
      }), { numRuns: runs(15) });
    await expectAlive(i);
    i.close();
  });
});
