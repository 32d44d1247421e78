/**
 * Memory stays bounded under sustained bad input. Asserted on the target's own bookkeeping —
 * connections, sessions, I_T nexuses, unit-attention queues, per-connection task tables —
 * which must return to baseline once the misbehaving initiators are gone, and must stay within
 * the CmdSN window while one of them is still connected. One coarse heap and ArrayBuffer check
 * backs that up: a 48-byte PDU must never make the target reserve memory it was not sent.
 */
import fc from 'fast-check';
import v8 from 'node:v8';
import vm from 'node:vm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestInitiator } from '../helpers/initiator.ts';
import { eventually, expectAlive, maybeNext, openSession, serverCounts, runs } from '../helpers/fuzz.ts';
import { startTarget } from '../integration/harness.ts';
import type { Harness } from '../integration/harness.ts';

/** gc() without --expose-gc on the command line (the flag only has to be set before the call). */
function gcFn(): () => void {
  v8.setFlagsFromString('--expose-gc');
  return vm.runInNewContext('gc') as () => void;
}

async function settle(): Promise<NodeJS.MemoryUsage> {
  const gc = gcFn();
  for (let k = 0; k < 3; k++) { gc(); await new Promise((r) => setImmediate(r)); }
  return process.memoryUsage();
}

const QUEUE_DEPTH = 32;

describe('bounded resources under bad input', () => {
  let h: Harness;
  let keeper: TestInitiator;

  beforeAll(async () => {
    h = await startTarget({ tuning: { queueDepth: QUEUE_DEPTH, loginTimeout: 2 } });
    keeper = await openSession(h.port);
  });
  afterAll(async () => {
    keeper.close();
    await eventually(() => serverCounts(h).connections === 0);
    expect(serverCounts(h)).toEqual({ connections: 0, sessions: 0, tasks: 0, nexuses: 0, ua: 0 });
    await h.close();
  });

  it('forgets every connection, session, nexus and task after hundreds of misbehaving initiators', async () => {
    const baseline = serverCounts(h);
    const before = await settle();
    const kinds = ['garbage-before-login', 'partial-header', 'bad-pdus-then-vanish', 'header-digest-error', 'outstanding-writes'] as const;
    let n = 0;
    await fc.assert(fc.asyncProperty(fc.constantFrom(...kinds), fc.uint8Array({ minLength: 1, maxLength: 300 }), async (kind, bytes) => {
      n++;
      if (kind === 'garbage-before-login' || kind === 'partial-header') {
        const i = await TestInitiator.connect(h.port);
        i.sock.write(kind === 'partial-header' ? Buffer.from(bytes.subarray(0, 47)) : Buffer.from(bytes));
        await new Promise((r) => setImmediate(r));
        i.close();
        return;
      }
      const digests = kind === 'header-digest-error';
      const i = await openSession(h.port, digests ? { HeaderDigest: 'CRC32C' } : {}, false);
      if (digests) {
        i.send(i.bhs(0x00, true), undefined, { corruptHeader: true });
        await i.waitClosed(2000);
        return;
      }
      // Unknown opcode, Data-Out for no task, a command beyond the window, and WRITEs left waiting for data.
      const bad = i.bhs(0x1d, true); bad.writeUInt32BE(i.itt++, 16); i.send(bad);
      i.sendDataOut(0xabcdef, 0x1234, 0, 0, 0, Buffer.from(bytes), true);
      const far = i.bhs(0x00); far[1] = 0x80; far.writeUInt32BE(i.itt++, 16); far.writeUInt32BE(0xffffffff, 20);
      far.writeUInt32BE((i.cmdSN + 100000) >>> 0, 24); i.send(far);
      if (kind === 'outstanding-writes') {
        for (let k = 0; k < 4; k++) {
          const w = i.bhs(0x01); w[1] = 0xa1; w.writeUInt32BE(i.itt++, 16); w.writeUInt32BE(4096, 20);
          w.writeUInt32BE(i.cmdSN++, 24); Buffer.from([0x2a, 0, 0, 0, 0, k, 0, 0, 8, 0]).copy(w, 32); i.send(w);
        }
        await i.next((p) => p.opcode === 0x31);
      }
      await maybeNext(i, (p) => p.opcode === 0x3f && p.bhs[2] === 0x09, 500);
      i.close();
    }), { numRuns: runs(1000) });
    expect(n).toBe(runs(1000));
    await eventually(() => {
      const c = serverCounts(h);
      return c.connections === baseline.connections && c.sessions === baseline.sessions && c.nexuses === baseline.nexuses;
    }, 5000);
    const c = serverCounts(h);
    expect(c).toEqual(baseline);
    await expectAlive(keeper);
    const after = await settle();
    // Coarse: hundreds of sessions' worth of garbage leaves no trace the GC cannot reclaim.
    expect(after.heapUsed - before.heapUsed).toBeLessThan(24 << 20);
  });

  it('keeps one session\'s bookkeeping within the CmdSN window under thousands of bad PDUs', async () => {
    const i = await openSession(h.port);
    const conn = [...h.server.connections].find((c) => c.session && c.session.isid === i.isid.toString('hex'))!;
    expect(conn).toBeDefined();
    const abortedItts = (conn as unknown as { abortedItts: Set<number> }).abortedItts;
    const early = (conn.session as unknown as { early: Map<number, unknown> }).early;
    const before = await settle();
    let itt = 0x10000;
    for (let round = 0; round < 40; round++) {
      const burst: Buffer[] = [];
      for (let k = 0; k < 50; k++) {
        // Out-of-window and ahead-of-ExpCmdSN WRITEs (the latter wait for a gap that never fills),
        // each claiming the largest transfer a 32-bit EDTL can express.
        const w = i.bhs(0x01);
        w[1] = 0xa1; w.writeUInt32BE(itt++, 16); w.writeUInt32BE(0xfffffe00, 20);
        w.writeUInt32BE((i.cmdSN + 1 + ((round * 50 + k) % (QUEUE_DEPTH * 4))) >>> 0, 24);
        Buffer.from([0x2a, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0]).copy(w, 32);
        burst.push(w);
        const d = i.bhs(0x05); d[1] = 0x80; d.writeUInt32BE(itt++, 16); d.writeUInt32BE(0x42, 20);
        burst.push(d);
      }
      i.sock.write(Buffer.concat(burst));
      await i.nop(); // the target has taken the burst in
      expect(conn.tasks.size, 'tasks held stay within the window').toBeLessThanOrEqual(QUEUE_DEPTH);
      expect(early.size).toBeLessThanOrEqual(QUEUE_DEPTH);
      expect(abortedItts.size).toBeLessThanOrEqual(4096);
    }
    const during = await settle();
    // No reservation for data that never came: 4 GiB claimed per queued WRITE must not be allocated up front.
    expect(during.arrayBuffers - before.arrayBuffers, 'ArrayBuffer memory held for queued WRITEs').toBeLessThan(64 << 20);
    expect(during.heapUsed - before.heapUsed).toBeLessThan(24 << 20);
    i.close();
    await eventually(() => serverCounts(h).sessions === 1);
    expect(serverCounts(h).tasks).toBe(0);
  });
});
