/**
 * Malformed PDUs at a live target over TCP (fast-check, bounded runs): opcodes an initiator may
 * not send, reserved fields, Additional Header Segments, and plain garbage before and after
 * login. Each gets the RFC 7143 answer, the target never crashes, and a session on another
 * connection keeps working throughout.
 *
 * The bystander session logs in to a second target of the same server: random bytes may well
 * decode as TARGET COLD RESET, which legitimately drops every connection of its target
 * (RFC 7143 §11.5.1), or as a WRITE to its LU. Neither may reach another target.
 */
import fc from 'fast-check';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ScsiTarget } from '../../src/scsi/target.ts';
import { TestInitiator } from '../helpers/initiator.ts';
import * as B from '../helpers/pdu-builder.ts';
import { eventually, expectAlive, maybeNext, openSession, serverCounts, storeImage, runs } from '../helpers/fuzz.ts';
import { simpleStore, startTarget, TARGET } from '../integration/harness.ts';
import type { Harness } from '../integration/harness.ts';

const OTHER = 'iqn.2026-11.dev.arraysim:bystander';

/** Opcodes an initiator may send (RFC 7143 §11.1.1); every other value is not a request. */
const INITIATOR_OPCODES = new Set([0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x10]);

describe('malformed PDUs', () => {
  let h: Harness;
  let bystander: TestInitiator;
  let otherStore: ReturnType<typeof simpleStore>;
  let otherImage: Buffer;

  beforeAll(async () => {
    h = await startTarget();
    otherStore = simpleStore(64);
    const scsi = new ScsiTarget(OTHER, pino({ level: 'silent' }));
    scsi.addLun({ lun: 0, store: otherStore, naa: '502a751000000fff', serial: 'BYSTANDER' });
    h.server.addTarget({ name: OTHER }, scsi);
    bystander = await TestInitiator.connect(h.port);
    await bystander.login(OTHER);
    await bystander.scsi(0, [0x00, 0, 0, 0, 0, 0]); // consume the power-on UA
    const w = Buffer.alloc(64 * 512);
    for (let k = 0; k < w.length; k++) w[k] = (k * 7) & 0xff;
    expect((await bystander.scsi(0, [0x2a, 0, 0, 0, 0, 0, 0, 0, 64, 0], { write: w })).status).toBe(0);
    otherImage = storeImage(otherStore, 64);
  });

  afterAll(async () => {
    // The bystander saw everything and is still served, with its data intact.
    await expectAlive(bystander);
    const r = await bystander.scsi(0, [0x28, 0, 0, 0, 0, 0, 0, 0, 64, 0], { read: 64 * 512 });
    expect(r.status).toBe(0);
    expect(r.data.equals(otherImage)).toBe(true);
    bystander.close();
    await eventually(() => serverCounts(h).connections === 0 && serverCounts(h).sessions === 0);
    await h.close();
  });

  it('answers opcodes an initiator may not send with Reject COMMAND NOT SUPPORTED (0x05) carrying the header', async () => {
    const i = await openSession(h.port);
    const notRequests = Array.from({ length: 64 }, (_, k) => k).filter((k) => !INITIATOR_OPCODES.has(k) || k === 0x10);
    await fc.assert(fc.asyncProperty(
      fc.constantFrom(...notRequests), fc.boolean(), fc.uint8Array({ minLength: 48, maxLength: 48 }),
      fc.uint8Array({ maxLength: 64 }),
      async (op, immediate, raw, data) => {
        const b = Buffer.from(raw);
        b[0] = (immediate ? 0x40 : 0) | op;
        b[4] = 0; // no AHS: that is another test
        TestInitiator.setDsl(b, data.length);
        const itt = i.itt++;
        b.writeUInt32BE(itt, 16);
        i.send(b, Buffer.from(data));
        // RFC 7143 §11.17.1 reason 0x05; SNACK (0x10) is not supported at ErrorRecoveryLevel 0.
        const rej = await i.next((p) => p.opcode === 0x3f && p.data.length >= 20 && p.data.readUInt32BE(16) === itt);
        expect(rej.bhs[2]).toBe(0x05);
        expect(rej.data.subarray(0, 48).equals(b)).toBe(true);
        expect(rej.itt).toBe(0xffffffff);
      }), { numRuns: runs(60) });
    await expectAlive(i);
    i.close();
  });

  it('ignores reserved fields (RFC 7143 §11.2: receivers ignore reserved bits and fields)', async () => {
    const i = await openSession(h.port);
    await fc.assert(fc.asyncProperty(
      fc.integer({ min: 0, max: 0x7f }), fc.integer({ min: 0, max: 0xffff }), fc.uint8Array({ minLength: 12, maxLength: 12 }),
      fc.integer({ min: 0, max: 3 }), fc.uint8Array({ maxLength: 40 }),
      async (flagBits, b2b3, tail, cmdFlags, data) => {
        // NOP-Out (§11.18): byte 1 bits 0-6, bytes 2-3 and 36-47 reserved.
        const itt = i.itt++;
        const nop = B.nopOut({ immediate: true, dsl: data.length, itt, ttt: 0xffffffff, cmdSN: i.cmdSN, expStatSN: i.expStatSN });
        nop[1] |= flagBits; nop.writeUInt16BE(b2b3, 2); Buffer.from(tail).copy(nop, 36);
        i.send(nop, Buffer.from(data));
        const rsp = await i.next((p) => p.itt === itt);
        expect(rsp.opcode).toBe(0x20);
        expect(rsp.data.equals(Buffer.from(data))).toBe(true);
        // SCSI Command (§11.3): byte 1 bits 3-4 and bytes 2-3 reserved. TEST UNIT READY still runs.
        const citt = i.itt++;
        const cmd = i.bhs(0x01, true);
        cmd[1] = 0x80 | (cmdFlags << 3) | 1; cmd.writeUInt16BE(b2b3, 2); cmd.writeUInt32BE(citt, 16);
        cmd.writeUInt32BE(i.cmdSN, 24); cmd.writeUInt32BE(i.expStatSN, 28);
        i.send(cmd);
        const sr = await i.next((p) => p.itt === citt);
        expect([sr.opcode, sr.bhs[2], sr.bhs[3]]).toEqual([0x21, 0, 0]);
      }), { numRuns: runs(40) });
    i.close();
  });

  it('consumes exactly TotalAHSLength words of AHS, with and without header digests', async () => {
    for (const digests of [false, true]) {
      const extra: Record<string, string> = digests ? { HeaderDigest: 'CRC32C', DataDigest: 'CRC32C' } : {};
      const i = await openSession(h.port, extra);
      await fc.assert(fc.asyncProperty(
        fc.integer({ min: 1, max: 16 }), fc.uint8Array({ minLength: 64, maxLength: 64 }), fc.uint8Array({ maxLength: 24 }),
        async (words, ahsBytes, data) => {
          // A NOP-Out with an AHS of random content (none is defined for NOP-Out) and an echo.
          const itt = i.itt++;
          const bhs = B.nopOut({ immediate: true, dsl: data.length, itt, ttt: 0xffffffff, cmdSN: i.cmdSN, expStatSN: i.expStatSN });
          bhs[4] = words;
          const ahs = Buffer.from(ahsBytes.subarray(0, words * 4));
          i.sock.write(B.wire(bhs, { ahs, data: Buffer.from(data), headerDigest: digests, dataDigest: digests }));
          const p = await maybeNext(i, (q) => q.itt === itt || (q.opcode === 0x3f && q.data.readUInt32BE(16) === itt), 2000);
          expect(p, 'answered, not hung').not.toBeNull();
          if (p!.opcode === 0x3f) expect([0x04, 0x09]).toContain(p!.bhs[2]); // a malformed AHS may be refused
          else expect(p!.data.equals(Buffer.from(data))).toBe(true);
          await expectAlive(i); // framing stayed in step
        }), { numRuns: runs(25) });
      i.close();
    }
  });

  /** Headers with small lengths so the bytes after them are framed as data, AHS and next PDUs. */
  const plausible = fc.tuple(fc.uint8Array({ minLength: 48, maxLength: 48 }), fc.integer({ min: 0, max: 2 }),
    fc.integer({ min: 0, max: 600 }), fc.uint8Array({ maxLength: 600 })).map(([raw, ahsWords, dsl, rest]) => {
    const b = Buffer.from(raw);
    b[4] = ahsWords; b[5] = 0; b[6] = dsl >> 8; b[7] = dsl & 0xff;
    return Buffer.concat([b, Buffer.from(rest)]);
  });
  const garbage = fc.array(fc.oneof(plausible, fc.uint8Array({ minLength: 1, maxLength: 256 }).map((a) => Buffer.from(a))),
    { minLength: 1, maxLength: 8 }).map((parts) => Buffer.concat(parts));

  it('survives random bytes in full feature phase: rejects, drops, or keeps framing, and never crashes', async () => {
    await fc.assert(fc.asyncProperty(garbage, fc.array(fc.nat(), { maxLength: 4 }), async (bytes, cuts) => {
      const i = await openSession(h.port, {}, false);
      const offsets = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
      let prev = 0;
      for (const c of [...offsets, bytes.length]) { i.sock.write(bytes.subarray(prev, c)); prev = c; }
      await maybeNext(i, () => false, 15);
      for (const p of i.unsolicited) {
        // Whatever the target said is a well-formed target PDU.
        expect([0x20, 0x21, 0x22, 0x24, 0x25, 0x26, 0x31, 0x32, 0x3f]).toContain(p.opcode);
        if (p.opcode === 0x3f) expect([0x02, 0x04, 0x05, 0x06, 0x07, 0x09, 0x0a]).toContain(p.bhs[2]);
      }
      i.close();
    }), { numRuns: runs(80) });
    await expectAlive(bystander);
    await eventually(() => serverCounts(h).connections === 1 && serverCounts(h).sessions === 1);
  });

  it('survives random bytes during login: a non-zero Login status is followed by close (RFC 7143 §11.13.5)', async () => {
    await fc.assert(fc.asyncProperty(garbage, fc.boolean(), async (bytes, asLogin) => {
      const i = await TestInitiator.connect(h.port);
      if (asLogin) { bytes[0] = (bytes[0] & 0x40) | 0x03; }
      i.sock.write(bytes);
      const rsp = await maybeNext(i, (p) => p.opcode === 0x23, 30);
      if (rsp && rsp.bhs[36] !== 0) expect(await i.waitClosed(2000)).toBe(true);
      for (const p of i.unsolicited) expect(p.opcode).toBe(0x23); // only Login Responses before FFP
      i.close();
    }), { numRuns: runs(80) });
    await expectAlive(bystander);
    await eventually(() => serverCounts(h).connections === 1 && serverCounts(h).sessions === 1);
  });

  it('closes a login connection whose PDU is over the login data segment limit', async () => {
    const i = await TestInitiator.connect(h.port);
    const b = B.loginRequest({ transit: false, csg: 0, nsg: 0, versionMax: 0, versionMin: 0, dsl: 0, isid: '80000000abcd', tsih: 0, itt: 1, cid: 0, cmdSN: 1, expStatSN: 0 });
    TestInitiator.setDsl(b, 0xffffff);
    i.sock.write(b);
    const r = await i.next((p) => p.opcode === 0x23);
    expect(r.bhs[36]).toBe(0x02); // initiator error
    expect(await i.waitClosed()).toBe(true);
    await expectAlive(bystander);
  });
});
