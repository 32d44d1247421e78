/**
 * Invalid CDBs at a live target (fast-check over the commands of src/scsi/table.ts). Each gets
 * CHECK CONDITION, ILLEGAL REQUEST and well-formed sense (SPC-5 §4.4) with the ASC the standard
 * names; no command crashes, hangs or drops the connection; and a WRITE that is refused
 * changes no block (compared with a snapshot of the backing store, and read back over iSCSI).
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ALL_COMMANDS, COMMAND_TABLE } from '../../src/scsi/table.ts';
import { SERVICE_ACTION_OPCODES, tableKey } from '../../src/scsi/command.ts';
import type { CommandDef } from '../../src/scsi/command.ts';
import { SBC_LIMITS } from '../../src/scsi/sbc-common.ts';
import { TestInitiator } from '../helpers/initiator.ts';
import type { ScsiResult } from '../helpers/initiator.ts';
import { eventually, expectAlive, expectIllegalRequest, openSession, parseSense, serverCounts, storeImage, runs } from '../helpers/fuzz.ts';
import { simpleStore, startTarget } from '../integration/harness.ts';
import type { Harness } from '../integration/harness.ts';

const BLOCKS = 1024;
const CAPACITY = BLOCKS;
const MAX_BLOCKS = SBC_LIMITS.maxTransferBytes / 512;
const INVALID_OPCODE: [number, number] = [0x20, 0x00];
const INVALID_FIELD: [number, number] = [0x24, 0x00];
const LBA_OUT_OF_RANGE: [number, number] = [0x21, 0x00];

function cdbOf(bytes: number[]): Buffer { const b = Buffer.alloc(16); Buffer.from(bytes).copy(b); return b; }

/** READ/WRITE of the 10/12/16-byte families: LBA and TRANSFER LENGTH placed per SBC-4 §5. */
function rw(op: number, lba: bigint, blocks: number, byte1 = 0): Buffer {
  const len = op >= 0x80 && op < 0xa0 ? 16 : op >= 0xa0 ? 12 : 10;
  const b = Buffer.alloc(16);
  b[0] = op; b[1] = byte1;
  if (len === 10) { b.writeUInt32BE(Number(lba & 0xffffffffn), 2); b.writeUInt16BE(blocks & 0xffff, 7); }
  else if (len === 12) { b.writeUInt32BE(Number(lba & 0xffffffffn), 2); b.writeUInt32BE(blocks >>> 0, 6); }
  else { b.writeBigUInt64BE(lba, 2); b.writeUInt32BE(blocks >>> 0, 10); }
  return b;
}

function known(cdb: Buffer): CommandDef | undefined {
  if (SERVICE_ACTION_OPCODES.has(cdb[0])) {
    const sa = cdb[0] === 0x7f ? cdb.readUInt16BE(8) : cdb[1] & 0x1f;
    const d = COMMAND_TABLE.get(tableKey(cdb[0], sa));
    if (d) return d;
  }
  return COMMAND_TABLE.get(cdb[0]);
}

describe('invalid CDBs', () => {
  let h: Harness;
  let store: ReturnType<typeof simpleStore>;
  let i: TestInitiator;
  let image: Buffer;

  beforeAll(async () => {
    store = simpleStore(BLOCKS);
    image = Buffer.alloc(BLOCKS * 512);
    for (let k = 0; k < image.length; k++) image[k] = (k * 13 + (k >> 9) * 7) & 0xff;
    store.write(0n, image);
    h = await startTarget({ store });
    i = await openSession(h.port, { FirstBurstLength: '262144', MaxBurstLength: '262144' });
  });
  afterAll(async () => {
    // Every refused command left the medium as it was, read back through the front door.
    const r = await i.scsi(0, rw(0x28, 0n, BLOCKS), { read: BLOCKS * 512 });
    expect(r.status).toBe(0);
    expect(r.data.equals(image)).toBe(true);
    i.close();
    await eventually(() => serverCounts(h).connections === 0 && serverCounts(h).sessions === 0);
    await h.close();
  });

  const unchanged = () => expect(storeImage(store, BLOCKS).equals(image), 'no block changed').toBe(true);

  it('answers opcodes outside the command table with INVALID COMMAND OPERATION CODE', async () => {
    const unknownOps = Array.from({ length: 256 }, (_, k) => k).filter((op) => !ALL_COMMANDS.some((d) => d.opcode === op));
    await fc.assert(fc.asyncProperty(fc.constantFrom(...unknownOps), fc.uint8Array({ minLength: 15, maxLength: 15 }),
      fc.constantFrom<'none' | 'in' | 'out'>('none', 'in', 'out'),
      async (op, rest, dir) => {
        const cdb = Buffer.concat([Buffer.from([op]), Buffer.from(rest)]);
        const r = await i.scsi(0, cdb, dir === 'in' ? { read: 512 } : dir === 'out' ? { write: Buffer.alloc(512, 0xee) } : {});
        expectIllegalRequest(r, [INVALID_OPCODE], 16);
        unchanged();
      }), { numRuns: runs(80) });
  });

  it('answers an unknown service action of a known opcode with INVALID FIELD IN CDB pointing at it', async () => {
    const multiplexed = [...SERVICE_ACTION_OPCODES].filter((op) => ALL_COMMANDS.some((d) => d.opcode === op));
    await fc.assert(fc.asyncProperty(fc.constantFrom(...multiplexed), fc.integer({ min: 0, max: 0x1f }), fc.uint8Array({ minLength: 14, maxLength: 14 }),
      async (op, sa, rest) => {
        const cdb = Buffer.concat([Buffer.from([op, sa]), Buffer.from(rest)]);
        fc.pre(!known(cdb));
        const r = await i.scsi(0, cdb, { read: 512 });
        const s = expectIllegalRequest(r, [INVALID_FIELD, INVALID_OPCODE], 16);
        if (s.asc === 0x24 && s.field) expect(s.field).toMatchObject({ inCdb: true, byte: 1 });
        unchanged();
      }), { numRuns: runs(40) });
  });

  it('refuses RDPROTECT/WRPROTECT without protection information (SBC-4 §5) and writes nothing', async () => {
    await fc.assert(fc.asyncProperty(fc.constantFrom(0x28, 0xa8, 0x88, 0x2a, 0xaa, 0x8a), fc.integer({ min: 1, max: 7 }),
      fc.integer({ min: 0, max: BLOCKS - 4 }), fc.integer({ min: 1, max: 4 }),
      async (op, protect, lba, blocks) => {
        const write = (op & 0x0f) === 0x0a;
        const cdb = rw(op, BigInt(lba), blocks, protect << 5);
        const r = await i.scsi(0, cdb, write ? { write: Buffer.alloc(blocks * 512, 0xee) } : { read: blocks * 512 });
        const s = expectIllegalRequest(r, [INVALID_FIELD], 16);
        if (s.field) expect(s.field).toMatchObject({ inCdb: true, byte: 1 });
        unchanged();
      }), { numRuns: runs(40) });
  });

  it('refuses an LBA range past the last block with LBA OUT OF RANGE and writes none of it', async () => {
    await fc.assert(fc.asyncProperty(
      fc.constantFrom(0x28, 0xa8, 0x88, 0x2a, 0xaa, 0x8a, 0x2e, 0x2f, 0x8b, 0x34, 0x35),
      fc.integer({ min: 1, max: 16 }), fc.oneof(fc.integer({ min: 0, max: 15 }), fc.integer({ min: 16, max: 0x7fffffff })),
      async (op, blocks, past) => {
        // Straddling the end (partly in range) or wholly beyond it.
        const lba = BigInt(Math.max(0, CAPACITY - blocks + 1 + past));
        const family = op === 0x2e || op === 0x2f || op === 0x34 || op === 0x35 ? 0x28 : op === 0x8b ? 0x88 : op;
        const cdb = rw(family, lba, blocks);
        cdb[0] = op;
        const dataOut = [0x2a, 0xaa, 0x8a, 0x2e, 0x8b].includes(op);
        const r = await i.scsi(0, cdb, dataOut ? { write: Buffer.alloc(blocks * 512, 0xee) } : op === 0x2f || op === 0x34 || op === 0x35 ? {} : { read: blocks * 512 });
        expectIllegalRequest(r, [LBA_OUT_OF_RANGE], 16);
        unchanged();
      }), { numRuns: runs(60) });
  });

  it('refuses a TRANSFER LENGTH above the Block Limits maximum with INVALID FIELD IN CDB and writes nothing', async () => {
    await fc.assert(fc.asyncProperty(fc.constantFrom(0xa8, 0x88, 0xaa, 0x8a), fc.integer({ min: MAX_BLOCKS + 1, max: 0xffffffff }),
      async (op, blocks) => {
        const write = (op & 0x0f) === 0x0a;
        // The initiator sends a small EDTL: the CDB alone must be enough to refuse.
        const r = await i.scsi(0, rw(op, 0n, blocks), write ? { write: Buffer.alloc(4096, 0xee) } : { read: 4096 });
        const s = expectIllegalRequest(r, [INVALID_FIELD, LBA_OUT_OF_RANGE], 16);
        if (s.asc === 0x24 && s.field) expect(s.field).toMatchObject({ inCdb: true, byte: op === 0xa8 || op === 0xaa ? 6 : 10 });
        unchanged();
      }), { numRuns: runs(30) });
  });

  it('refuses over-length Data-Out without writing: immediate data past EDTL, EDTL past any command', async () => {
    await fc.assert(fc.asyncProperty(fc.integer({ min: 0, max: BLOCKS - 8 }), fc.integer({ min: 1, max: 8 }), fc.integer({ min: 1, max: 4096 }),
      async (lba, blocks, extra) => {
        // Immediate data longer than EDTL (RFC 7143 §4.2.5.1): the command PDU is rejected as a protocol error.
        const itt = i.itt++;
        const b = i.bhs(0x01);
        b[1] = 0xa1; b.writeUInt32BE(itt, 16); b.writeUInt32BE(blocks * 512, 20); b.writeUInt32BE(i.cmdSN, 24);
        rw(0x2a, BigInt(lba), blocks).copy(b, 32, 0, 16);
        const data = Buffer.alloc(blocks * 512 + extra, 0xee);
        TestInitiator.setDsl(b, data.length);
        i.send(b, data);
        const rej = await i.next((p) => p.opcode === 0x3f && p.data.readUInt32BE(16) === itt);
        expect(rej.bhs[2]).toBe(0x04);
        unchanged();
      }), { numRuns: runs(15) });
    // An EDTL no command can use (above the Block Limits maximum): refused before any data is solicited.
    const r = await i.scsi(0, rw(0x2a, 0n, 1), { write: Buffer.alloc(512, 0xee), edtl: 0xfffffe00 });
    expect(r.r2ts).toBe(0);
    expectIllegalRequest(r, [[0x0e, 0x03]]);
    unchanged();
  });

  /**
   * An unsolicited Data-Out past FirstBurstLength is rejected and fails the task; its F bit still
   * ends the unsolicited burst, so the task ends with CHECK CONDITION (RFC 7143 §11.17.1) once any
   * solicited data is in, instead of waiting for data the initiator will never resend.
   */
  it('ends the task with CHECK CONDITION after rejecting unsolicited Data-Out past FirstBurstLength, writing nothing', async () => {
    const u = await openSession(h.port, { InitialR2T: 'No', ImmediateData: 'No', FirstBurstLength: '4096', MaxBurstLength: '262144' });
    try {
      const itt = u.itt++;
      const b = u.bhs(0x01);
      b[1] = 0x21; b.writeUInt32BE(itt, 16); b.writeUInt32BE(8192, 20); b.writeUInt32BE(u.cmdSN++, 24);
      rw(0x2a, 8n, 16).copy(b, 32, 0, 16);
      u.send(b);
      u.sendDataOut(itt, 0xffffffff, 0, 0, 0, Buffer.alloc(8192, 0xee), true);
      const rej = await u.next((p) => p.opcode === 0x3f && p.data.readUInt32BE(16) === itt);
      expect(rej.bhs[2]).toBe(0x04);
      await u.next((p) => p.itt === itt && p.opcode === 0x31, 2000).then((r2t) => {
        // Soliciting the rest is allowed; what arrives must still not be written after the failure.
        u.sendDataOut(itt, r2t.ttt, 0, 0, r2t.bhs.readUInt32BE(40), Buffer.alloc(r2t.bhs.readUInt32BE(44), 0xee), true);
      }, () => undefined);
      const rsp = await u.next((p) => p.itt === itt && p.opcode === 0x21, 1500);
      expect(rsp.bhs[3]).toBe(0x02);
      unchanged();
    } finally {
      u.close();
    }
  });

  it('refuses NACA=1 in the CONTROL byte of every command (SAM-5 §5.2: ACA is not supported)', async () => {
    for (const d of ALL_COMMANDS) {
      const cdb = Buffer.alloc(16);
      cdb[0] = d.opcode;
      if (d.serviceAction !== undefined) cdb[1] = d.serviceAction;
      cdb[d.cdbLength - 1] = 0x04;
      const r = await i.scsi(0, cdb, d.dataDirection === 'in' ? { read: 512 } : d.dataDirection === 'out' ? { write: Buffer.alloc(512, 0xee) } : {});
      expect(r.status, `${d.name} with NACA=1`).toBe(0x02);
      const s = expectIllegalRequest(r, [INVALID_FIELD], d.cdbLength);
      if (s.field) expect(s.field, d.name).toMatchObject({ inCdb: true, byte: d.cdbLength - 1 });
      unchanged();
    }
  });

  it('never crashes, hangs or fails internally on random CDB fields of table commands', async () => {
    // A target of its own: random CDBs include FORMAT UNIT, SANITIZE, MODE SELECT and PERSISTENT
    // RESERVE OUT, which legitimately change state.
    const h2 = await startTarget();
    const j = await openSession(h2.port, { FirstBurstLength: '262144', MaxBurstLength: '262144' });
    try {
      await fc.assert(fc.asyncProperty(fc.constantFrom(...ALL_COMMANDS), fc.uint8Array({ minLength: 16, maxLength: 16 }),
        fc.integer({ min: 0, max: 8192 }), fc.uint8Array({ maxLength: 1024 }),
        async (d, raw, edtl, param) => {
          const cdb = Buffer.from(raw);
          cdb[0] = d.opcode;
          if (d.serviceAction !== undefined) { if (d.opcode === 0x7f) cdb.writeUInt16BE(d.serviceAction, 8); else cdb[1] = (cdb[1] & 0xe0) | d.serviceAction; }
          cdb[d.cdbLength - 1] &= ~0x04; // NACA is the previous test
          const opts = d.dataDirection === 'in' ? { read: edtl } : d.dataDirection === 'out' ? { write: Buffer.from(param) } : {};
          const r: ScsiResult = await j.scsi(0, cdb, opts);
          // GOOD, CHECK CONDITION, CONDITION MET or RESERVATION CONFLICT: never BUSY/TASK SET FULL, never a failure.
          expect([0x00, 0x02, 0x04, 0x18]).toContain(r.status);
          if (r.status === 0x02) {
            const s = parseSense(r.sense);
            expect(s.key, `${d.name}: not a HARDWARE ERROR (internal failure)`).not.toBe(0x4);
            if (s.field?.inCdb) expect(s.field.byte).toBeLessThan(d.cdbLength);
          }
          expect(r.data.length).toBeLessThanOrEqual(d.dataDirection === 'in' ? edtl : 0);
        }), { numRuns: runs(300) });
      await expectAlive(j);
    } finally {
      j.close();
      await h2.close();
    }
  });
});
