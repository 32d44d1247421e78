/**
 * Data-Out that belongs to no task and commands outside the CmdSN window, at a live target.
 *  - Data-Out for an ITT with no task: Reject, INVALID PDU FIELD (0x09) (RFC 7143 §11.17.1).
 *  - Data-Out for a live task with a TTT the target never issued: Reject (0x09, or 0x04 as a
 *    protocol error); the PDU is discarded, so its data never reaches the medium, and the task
 *    still completes with the data the target did solicit.
 *  - A non-immediate command with CmdSN outside [ExpCmdSN, MaxCmdSN]: silently ignored
 *    (§3.2.2.1) — no answer, not executed, the window does not move, the session goes on.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectAlive, maybeNext, openSession, eventually, serverCounts, startWithContent, write10, writeCommand, runs } from '../helpers/fuzz.ts';
import type { Harness } from '../integration/harness.ts';
import { TestInitiator } from '../helpers/initiator.ts';

const BLOCKS = 128;


describe('Data-Out for unknown tasks and CmdSN outside the window', () => {
  let h: Harness;
  let image: () => Buffer;

  beforeAll(async () => {
    ({ h, image } = await startWithContent(BLOCKS, Buffer.alloc(BLOCKS * 512, 0x11)));
  });
  afterAll(async () => {
    await eventually(() => serverCounts(h).connections === 0 && serverCounts(h).sessions === 0);
    await h.close();
  });

  it('rejects Data-Out for an ITT with no task with INVALID PDU FIELD and writes nothing', async () => {
    const i = await openSession(h.port);
    const before = image();
    await fc.assert(fc.asyncProperty(
      fc.integer({ min: 0x10000, max: 0xfffffffe }), fc.nat(), fc.nat(), fc.nat({ max: 1 << 20 }), fc.boolean(),
      fc.uint8Array({ minLength: 0, maxLength: 1024 }),
      async (itt, ttt, dataSN, offset, final, data) => {
        i.sendDataOut(itt, ttt, 0, dataSN, offset, Buffer.from(data), final);
        const rej = await i.next((p) => p.opcode === 0x3f && p.data.readUInt32BE(16) === itt);
        expect(rej.bhs[2]).toBe(0x09);
      }), { numRuns: runs(60) });
    expect(image().equals(before)).toBe(true);
    await expectAlive(i);
    i.close();
  });

  it('rejects Data-Out with a TTT the target never issued; the task completes with the solicited data only', async () => {
    const i = await openSession(h.port, { ImmediateData: 'No', InitialR2T: 'Yes' });
    await fc.assert(fc.asyncProperty(fc.integer({ min: 0, max: BLOCKS - 4 }), fc.integer({ min: 1, max: 4 }), fc.nat(), fc.nat(),
      async (lba, blocks, bogus, fill) => {
        const good = Buffer.alloc(blocks * 512, (fill % 200) + 20);
        const { itt, bhs: b } = writeCommand(i, lba, blocks, i.cmdSN++);
        i.send(b);
        const r2t = await i.next((p) => p.itt === itt && p.opcode === 0x31);
        const wrongTtt = r2t.ttt === (bogus >>> 0) || bogus >>> 0 === 0xffffffff ? (r2t.ttt + 1) >>> 0 : bogus >>> 0;
        i.sendDataOut(itt, wrongTtt, 0, 0, 0, Buffer.alloc(good.length, 0xbd), true);
        const rej = await i.next((p) => p.opcode === 0x3f && p.data.readUInt32BE(16) === itt);
        expect([0x04, 0x09]).toContain(rej.bhs[2]);
        i.sendDataOut(itt, r2t.ttt, 0, 0, 0, good, true);
        const rsp = await i.next((p) => p.itt === itt && p.opcode === 0x21);
        i.expStatSN = (rsp.statSN + 1) >>> 0;
        expect(rsp.bhs[3]).toBe(0);
        expect(image().subarray(lba * 512, (lba + blocks) * 512).equals(good)).toBe(true);
      }), { numRuns: runs(30) });
    i.close();
  });

  it('silently ignores WRITEs with CmdSN outside the window; they never execute and the session goes on', async () => {
    const i = await openSession(h.port);
    await fc.assert(fc.asyncProperty(
      // Serial distance from ExpCmdSN: behind it (stale) or beyond MaxCmdSN; never exactly 2^31 (undefined, RFC 1982).
      fc.oneof(fc.integer({ min: -0x7fffffff, max: -1 }), fc.integer({ min: 1, max: 0x7ffffffe })),
      fc.integer({ min: 0, max: BLOCKS - 2 }), fc.boolean(),
      async (distance, lba, withImmediate) => {
        const ping = await i.nop();
        const exp = ping.expCmdSN;
        const windowSize = (ping.maxCmdSN - exp + 1) >>> 0;
        if (distance > 0 && distance < windowSize) distance += windowSize; // inside the window is another test
        const cmdSN = (exp + distance) >>> 0;
        const before = image();
        const data = Buffer.alloc(1024, 0xc3);
        const itt = i.itt++;
        const b = i.bhs(0x01);
        b[1] = 0xa1; b.writeUInt32BE(itt, 16); b.writeUInt32BE(data.length, 20); b.writeUInt32BE(cmdSN, 24);
        b.writeUInt32BE(i.expStatSN, 28); Buffer.from(write10(lba, 2)).copy(b, 32);
        if (withImmediate) TestInitiator.setDsl(b, data.length);
        i.send(b, withImmediate ? data : undefined);
        expect(await maybeNext(i, (p) => p.itt === itt, 40), 'no R2T, no response').toBeNull();
        expect(image().equals(before), 'not executed').toBe(true);
        const after = await i.nop();
        expect(after.expCmdSN, 'the window did not move').toBe(exp);
      }), { numRuns: runs(30) });
    // The session still runs ordinary commands at the expected CmdSN.
    const r = await i.scsi(0, write10(0, 1), { write: Buffer.alloc(512, 0x42) });
    expect(r.status).toBe(0);
    expect(image().subarray(0, 512).equals(Buffer.alloc(512, 0x42))).toBe(true);
    i.close();
  });
});
