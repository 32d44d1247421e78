/**
 * ABORT TASK (RFC 7143 §11.5.1, SAM-5 §7.2) against the three states a referenced task can be in:
 * waiting for Data-Out, already completed, and not yet received. libiscsi's
 * iSCSITMF.AbortTaskSimpleAsync accepts either "write GOOD + Task does not exist" or "no write
 * status + Function complete", never a GOOD write together with "Function complete".
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestInitiator } from '../helpers/initiator.ts';
import { startTarget, TARGET } from './harness.ts';
import type { Harness } from './harness.ts';

const ABORT_TASK = 1;
const FUNCTION_COMPLETE = 0;
const TASK_DOES_NOT_EXIST = 1;
const BLOCK = 512;

const write10 = (lba: number, blocks: number) => [0x2a, 0, 0, 0, 0, lba, 0, 0, blocks, 0];

describe('ABORT TASK', () => {
  let h: Harness;
  beforeAll(async () => { h = await startTarget(); });
  afterAll(async () => { await h.close(); });

  async function session(keys: Record<string, string> = {}) {
    const i = await TestInitiator.connect(h.port);
    i.isid = Buffer.from([0x80, 0, 0, 2, Math.floor(Math.random() * 255), Math.floor(Math.random() * 255)]);
    await i.login(TARGET, keys);
    await i.scsi(0, [0, 0, 0, 0, 0, 0]); // takes the power-on unit attention
    return i;
  }

  function commandPdu(i: TestInitiator, cmdSN: number, cdb: number[], edtl: number): { bhs: Buffer; itt: number } {
    const b = i.bhs(0x01);
    b[1] = 0x80 | (edtl ? 0x20 : 0) | 1;
    const itt = i.itt++;
    b.writeUInt32BE(itt, 16);
    b.writeUInt32BE(edtl, 20);
    b.writeUInt32BE(cmdSN, 24);
    b.writeUInt32BE(i.expStatSN, 28);
    Buffer.from(cdb).copy(b, 32);
    return { bhs: b, itt };
  }

  it('aborts a write that waits for Data-Out and never answers it, even when its data comes late', async () => {
    const i = await session({ InitialR2T: 'Yes', ImmediateData: 'No' });
    const cmdSN = i.cmdSN++;
    const { bhs, itt } = commandPdu(i, cmdSN, write10(10, 8), 8 * BLOCK);
    i.send(bhs);
    const r2t = await i.next((p) => p.itt === itt && p.opcode === 0x31);
    const tmf = await i.tmf(ABORT_TASK, 0, itt, cmdSN);
    expect(tmf.bhs[2]).toBe(FUNCTION_COMPLETE);
    i.expStatSN = (tmf.statSN + 1) >>> 0;
    // The initiator's Data-Out crossed the abort: dropped without a Reject or a status.
    i.sendDataOut(itt, r2t.ttt, 0, 0, 0, Buffer.alloc(8 * BLOCK, 1), true);
    await expect(i.next((p) => p.itt === itt || p.opcode === 0x3f, 400)).rejects.toThrow(/timeout/);
    // The aborted task gave its CmdSN window slot back.
    const nop = await i.nop();
    expect((nop.maxCmdSN - nop.expCmdSN) >>> 0).toBeGreaterThan(0);
    const r = await i.scsi(0, [0x28, 0, 0, 0, 0, 10, 0, 0, 8, 0], { read: 8 * BLOCK });
    expect(r.data.equals(Buffer.alloc(8 * BLOCK))).toBe(true);
    i.close();
  });

  it('answers "Task does not exist" for a write that already completed', async () => {
    const i = await session();
    const cmdSN = i.cmdSN;
    const itt = i.itt;
    const w = await i.scsi(0, write10(20, 8), { write: Buffer.alloc(8 * BLOCK, 2) });
    expect(w.status).toBe(0);
    const tmf = await i.tmf(ABORT_TASK, 0, itt, cmdSN);
    expect(tmf.bhs[2]).toBe(TASK_DOES_NOT_EXIST);
    i.close();
  });

  it('takes the CmdSN of a command not yet received as received, and ignores the command later', async () => {
    const i = await session();
    const lost = i.cmdSN++;
    const { bhs, itt } = commandPdu(i, lost, [0x00, 0, 0, 0, 0, 0], 0);
    // TMF sent (immediate, CmdSN = lost + 1) before the command it refers to arrives.
    const tmf = await i.tmf(ABORT_TASK, 0, itt, lost);
    expect(tmf.bhs[2]).toBe(FUNCTION_COMPLETE);
    expect(tmf.expCmdSN).toBe((lost + 1) >>> 0);
    i.expStatSN = (tmf.statSN + 1) >>> 0;
    i.send(bhs);
    await expect(i.next((p) => p.itt === itt, 400)).rejects.toThrow(/timeout/);
    const tur = await i.scsi(0, [0x00, 0, 0, 0, 0, 0]);
    expect(tur.status).toBe(0);
    i.close();
  });

  it('aborts a command held for an earlier CmdSN without leaking its window slot', async () => {
    const i = await session();
    const first = i.cmdSN;
    const held = commandPdu(i, first + 1, [0x00, 0, 0, 0, 0, 0], 0);
    i.send(held.bhs);
    i.cmdSN = first + 2;
    const tmf = await i.tmf(ABORT_TASK, 0, held.itt, first + 1);
    expect(tmf.bhs[2]).toBe(FUNCTION_COMPLETE);
    i.expStatSN = (tmf.statSN + 1) >>> 0;
    // Fill the gap: the held command must stay silent, the gap filler answers.
    const gap = commandPdu(i, first, [0x00, 0, 0, 0, 0, 0], 0);
    i.send(gap.bhs);
    const rsp = await i.next((p) => p.itt === gap.itt);
    expect(rsp.bhs[3]).toBe(0);
    i.expStatSN = (rsp.statSN + 1) >>> 0;
    await expect(i.next((p) => p.itt === held.itt, 300)).rejects.toThrow(/timeout/);
    const nop = await i.nop();
    expect(nop.expCmdSN).toBe((first + 2) >>> 0);
    const sess = [...h.server.sessions].find((s) => s.tsih === i.tsih)!;
    expect(sess.outstanding).toBe(0);
    i.close();
  });
});

describe('LOGICAL UNIT RESET', () => {
  let h: Harness;
  beforeAll(async () => { h = await startTarget(); });
  afterAll(async () => { await h.close(); });

  it('ends a write waiting for Data-Out without a status and answers Function complete', async () => {
    const i = await TestInitiator.connect(h.port);
    i.isid = Buffer.from([0x80, 0, 0, 3, Math.floor(Math.random() * 255), Math.floor(Math.random() * 255)]);
    await i.login(TARGET, { InitialR2T: 'Yes', ImmediateData: 'No' });
    await i.scsi(0, [0, 0, 0, 0, 0, 0]);
    const b = i.bhs(0x01);
    b[1] = 0x80 | 0x20 | 1;
    const itt = i.itt++;
    b.writeUInt32BE(itt, 16);
    b.writeUInt32BE(8 * BLOCK, 20);
    b.writeUInt32BE(i.cmdSN++, 24);
    Buffer.from(write10(0, 8)).copy(b, 32);
    i.send(b);
    await i.next((p) => p.itt === itt && p.opcode === 0x31);
    const tmf = await i.tmf(5, 0);
    expect(tmf.bhs[2]).toBe(FUNCTION_COMPLETE);
    await expect(i.next((p) => p.itt === itt, 300)).rejects.toThrow(/timeout/);
    // SAM-5 §6.6: the reset leaves a unit attention (29/03) for the nexus.
    const tur = await i.scsi(0, [0, 0, 0, 0, 0, 0]);
    expect(tur.status).toBe(0x02);
    expect([tur.sense![12], tur.sense![13]]).toEqual([0x29, 0x03]);
    i.close();
  });
});
