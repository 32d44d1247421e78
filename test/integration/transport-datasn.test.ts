/**
 * Data-Out sequence numbers (RFC 7143 §11.7.4): DataSN counts the Data-Out PDUs of one sequence
 * (the unsolicited burst, or one R2T) from 0. A wrong DataSN means an earlier PDU was lost to a
 * digest error (§7.9); at ErrorRecoveryLevel 0 the task ends in CHECK CONDITION, ABORTED COMMAND,
 * PROTOCOL SERVICE CRC ERROR (47/05) once its data is in, and nothing is written.
 * libiscsi's iSCSIdatasn.iSCSIDataSnInvalid sends the same four cases.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestInitiator } from '../helpers/initiator.ts';
import { startTarget, TARGET } from './harness.ts';
import type { Harness } from './harness.ts';

const BLOCK = 512;
const LBA = 100;

function write10(blocks: number): number[] {
  return [0x2a, 0, 0, 0, 0, LBA, 0, 0, blocks, 0];
}
function read10(blocks: number): number[] {
  return [0x28, 0, 0, 0, 0, LBA, 0, 0, blocks, 0];
}

describe('Data-Out DataSN checking', () => {
  let h: Harness;
  beforeAll(async () => { h = await startTarget(); });
  afterAll(async () => { await h.close(); });

  async function session(keys: Record<string, string>) {
    const i = await TestInitiator.connect(h.port);
    i.isid = Buffer.from([0x80, 0, 0, 1, Math.floor(Math.random() * 255), Math.floor(Math.random() * 255)]);
    await i.login(TARGET, { ImmediateData: 'No', MaxRecvDataSegmentLength: String(BLOCK), ...keys });
    await i.scsi(0, [0, 0, 0, 0, 0, 0]); // takes the power-on unit attention
    return i;
  }

  /** Send WRITE(10) without immediate data (F clear when unsolicited Data-Out follows); returns its ITT. */
  function sendWrite(i: TestInitiator, blocks: number, unsolicited: boolean): number {
    const b = i.bhs(0x01);
    b[1] = (unsolicited ? 0 : 0x80) | 0x20 | 1;
    const itt = i.itt++;
    b.writeUInt32BE(itt, 16);
    b.writeUInt32BE(blocks * BLOCK, 20);
    b.writeUInt32BE(i.cmdSN++, 24);
    b.writeUInt32BE(i.expStatSN, 28);
    Buffer.from(write10(blocks)).copy(b, 32);
    i.send(b);
    return itt;
  }

  async function expectCrcError(i: TestInitiator, itt: number): Promise<void> {
    const rsp = await i.next((p) => p.itt === itt && p.opcode === 0x21);
    i.expStatSN = (rsp.statSN + 1) >>> 0;
    expect(rsp.bhs[3]).toBe(0x02);
    const sense = rsp.data.subarray(2);
    expect(sense[2] & 0x0f).toBe(0x0b); // ABORTED COMMAND
    expect([sense[12], sense[13]]).toEqual([0x47, 0x05]);
  }

  async function expectUnwritten(i: TestInitiator, blocks: number): Promise<void> {
    const r = await i.scsi(0, read10(blocks), { read: blocks * BLOCK });
    expect(r.status).toBe(0);
    expect(r.data.equals(Buffer.alloc(blocks * BLOCK))).toBe(true);
  }

  const payload = (n: number) => Buffer.alloc(n * BLOCK, 0xa5);

  it.each([
    ['0, 0 (repeated)', [0, 0]],
    ['1, 0 (reversed)', [1, 0]],
  ])('unsolicited Data-Out numbered %s fails the write', async (_name, sns) => {
    const i = await session({ InitialR2T: 'No' });
    const itt = sendWrite(i, 2, true);
    const d = payload(2);
    i.sendDataOut(itt, 0xffffffff, 0, sns[0], 0, d.subarray(0, BLOCK), false);
    i.sendDataOut(itt, 0xffffffff, 0, sns[1], BLOCK, d.subarray(BLOCK), true);
    await expectCrcError(i, itt);
    await expectUnwritten(i, 2);
    i.close();
  });

  it('unsolicited Data-Out numbered 27 or 0xffffffff fails the write', async () => {
    const i = await session({ InitialR2T: 'No' });
    for (const sn of [27, 0xffffffff]) {
      const itt = sendWrite(i, 1, true);
      i.sendDataOut(itt, 0xffffffff, 0, sn, 0, payload(1), true);
      await expectCrcError(i, itt);
    }
    await expectUnwritten(i, 1);
    i.close();
  });

  it('solicited Data-Out with a wrong DataSN fails the write', async () => {
    const i = await session({ InitialR2T: 'Yes' });
    const itt = sendWrite(i, 2, false);
    const r2t = await i.next((p) => p.itt === itt && p.opcode === 0x31);
    expect(r2t.bhs.readUInt32BE(44)).toBe(2 * BLOCK);
    const d = payload(2);
    i.sendDataOut(itt, r2t.ttt, 0, 0, 0, d.subarray(0, BLOCK), false);
    i.sendDataOut(itt, r2t.ttt, 0, 5, BLOCK, d.subarray(BLOCK), true);
    await expectCrcError(i, itt);
    await expectUnwritten(i, 2);
    i.close();
  });

  it('correctly numbered Data-Out still writes, and the session carries on after a failure', async () => {
    const i = await session({ InitialR2T: 'No' });
    const bad = sendWrite(i, 1, true);
    i.sendDataOut(bad, 0xffffffff, 0, 3, 0, payload(1), true);
    await expectCrcError(i, bad);
    const good = sendWrite(i, 2, true);
    i.sendDataOut(good, 0xffffffff, 0, 0, 0, payload(1), false);
    i.sendDataOut(good, 0xffffffff, 0, 1, BLOCK, payload(1), true);
    const w = await i.next((p) => p.itt === good && p.opcode === 0x21);
    i.expStatSN = (w.statSN + 1) >>> 0;
    expect(w.bhs[3]).toBe(0);
    const r = await i.scsi(0, read10(2), { read: 2 * BLOCK });
    expect(r.data.equals(payload(2))).toBe(true);
    i.close();
  });
});
