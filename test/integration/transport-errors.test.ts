/**
 * Bad input at the transport level gets the RFC 7143 answer, and the connection survives
 * when the RFC says it should.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestInitiator } from '../helpers/initiator.ts';
import { startTarget, TARGET } from './harness.ts';
import type { Harness } from './harness.ts';

describe('transport error handling', () => {
  let h: Harness;
  beforeAll(async () => { h = await startTarget(); });
  afterAll(async () => { await h.close(); });

  async function session(extra: Record<string, string> = {}) {
    const i = await TestInitiator.connect(h.port);
    i.isid = Buffer.from([0x80, 0, 0, 0, Math.floor(Math.random() * 255), Math.floor(Math.random() * 255)]);
    await i.login(TARGET, extra);
    return i;
  }

  it('rejects Data-Out for an unknown task with INVALID PDU FIELD (0x09)', async () => {
    const i = await session();
    i.sendDataOut(0xdead, 0x1234, 0, 0, 0, Buffer.alloc(512), true);
    const rej = await i.next((p) => p.opcode === 0x3f);
    expect(rej.bhs[2]).toBe(0x09);
    expect(rej.data.readUInt32BE(16)).toBe(0xdead); // the rejected header comes back
    expect((await i.nop()).opcode).toBe(0x20); // still usable
    i.close();
  });

  it('silently ignores a non-immediate command outside the CmdSN window', async () => {
    const i = await session();
    const b = i.bhs(0x00, false);
    b[1] = 0x80; b.writeUInt32BE(0x5151, 16); b.writeUInt32BE(0xffffffff, 20);
    b.writeUInt32BE((i.cmdSN + 100000) >>> 0, 24);
    i.send(b);
    await expect(i.next((p) => p.itt === 0x5151, 500)).rejects.toThrow(/timeout/);
    // Stale CmdSN (already used) is ignored too.
    const c = i.bhs(0x00, false);
    c[1] = 0x80; c.writeUInt32BE(0x5152, 16); c.writeUInt32BE(0xffffffff, 20); c.writeUInt32BE((i.cmdSN - 1) >>> 0, 24);
    i.send(c);
    await expect(i.next((p) => p.itt === 0x5152, 500)).rejects.toThrow(/timeout/);
    expect((await i.nop()).opcode).toBe(0x20);
    i.close();
  });

  it('holds a command that arrives ahead of ExpCmdSN until the gap fills', async () => {
    const i = await session();
    const mk = (itt: number, sn: number) => {
      const b = i.bhs(0x00, false);
      b[1] = 0x80; b.writeUInt32BE(itt, 16); b.writeUInt32BE(0xffffffff, 20); b.writeUInt32BE(sn >>> 0, 24);
      return b;
    };
    const sn = i.cmdSN;
    i.send(mk(0x6002, sn + 1));
    await expect(i.next((p) => p.itt === 0x6002, 300)).rejects.toThrow(/timeout/);
    i.send(mk(0x6001, sn));
    const a = await i.next((p) => p.itt === 0x6001);
    const b = await i.next((p) => p.itt === 0x6002);
    expect(b.statSN).toBe((a.statSN + 1) >>> 0);
    expect(b.expCmdSN).toBe((sn + 2) >>> 0);
    i.close();
  });

  it('rejects a PDU with a data segment over MaxRecvDataSegmentLength and keeps framing', async () => {
    const i = await session();
    const b = i.bhs(0x00, true);
    b[1] = 0x80; b.writeUInt32BE(0x7001, 16); b.writeUInt32BE(0xffffffff, 20); b.writeUInt32BE(i.cmdSN, 24);
    const big = Buffer.alloc(262144 + 4096, 0xab);
    TestInitiator.setDsl(b, big.length);
    i.send(b, big);
    const rej = await i.next((p) => p.opcode === 0x3f);
    expect(rej.bhs[2]).toBe(0x04);
    expect((await i.nop(Buffer.from('after'))).data.toString()).toBe('after');
    i.close();
  });

  it('answers an unknown opcode with COMMAND NOT SUPPORTED (0x05)', async () => {
    const i = await session();
    const b = i.bhs(0x1c, true);
    b[1] = 0x80; b.writeUInt32BE(0x8001, 16);
    i.send(b);
    const rej = await i.next((p) => p.opcode === 0x3f);
    expect(rej.bhs[2]).toBe(0x05);
    i.close();
  });

  it('rejects a Login Request in full feature phase as a protocol error', async () => {
    const i = await session();
    const b = i.bhs(0x03, true);
    b.writeUInt32BE(0x9001, 16);
    i.send(b);
    const rej = await i.next((p) => p.opcode === 0x3f);
    expect(rej.bhs[2]).toBe(0x04);
    i.close();
  });

  it('closes the connection on a non-login PDU during login', async () => {
    const i = await TestInitiator.connect(h.port);
    const b = i.bhs(0x00, true);
    b.writeUInt32BE(1, 16);
    i.send(b);
    const r = await i.next((p) => p.opcode === 0x23);
    expect([r.bhs[36], r.bhs[37]]).toEqual([2, 0x0b]);
    expect(await i.waitClosed()).toBe(true);
  });

  it('pings an idle connection with NOP-In and drops it when unanswered', async () => {
    const h2 = await startTarget({ tuning: { nopInterval: 0.2, nopTimeout: 0.3 } });
    try {
      const i = await TestInitiator.connect(h2.port);
      await i.login(TARGET);
      const ping = await i.next((p) => p.opcode === 0x20 && p.itt === 0xffffffff, 2000);
      expect(ping.ttt).not.toBe(0xffffffff);
      // Answer the first ping: the connection stays.
      const b = i.bhs(0x00, true);
      b[1] = 0x80; b.writeUInt32BE(0xffffffff, 16); b.writeUInt32BE(ping.ttt, 20); b.writeUInt32BE(i.cmdSN, 24);
      i.send(b);
      // Ignore the next one: the target drops the connection after nopTimeout.
      await i.next((p) => p.opcode === 0x20 && p.itt === 0xffffffff, 2000);
      expect(await i.waitClosed(3000)).toBe(true);
    } finally {
      await h2.close();
    }
  });
});
