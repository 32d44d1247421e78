/**
 * Faults: a connection cut under 32 pending commands fails every one of them at once with a typed
 * InitiatorError('connection-lost') instead of leaving them hanging; a command that gets no answer
 * fails with InitiatorError('timeout') after its own timeout while the others keep going; target
 * NOP-In pings are answered so an idle session stays up; a session closed by us fails new commands.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { InitiatorError, ScsiDevice } from '../../src/initiator/index.ts';
import { openReady, pattern, startProxy, startRig } from './rig.ts';
import type { Proxy, Rig } from './rig.ts';

let rig: Rig | undefined;
let proxy: Proxy | undefined;
const devices: ScsiDevice[] = [];
afterEach(async () => {
  for (const d of devices.splice(0)) d.session.close();
  await proxy?.close();
  await rig?.close();
  rig = undefined;
  proxy = undefined;
});

async function viaProxy(): Promise<ScsiDevice> {
  rig = await startRig();
  proxy = await startProxy(rig.port);
  const d = await openReady(rig.url(0).replace(`:${rig.port}/`, `:${proxy.port}/`));
  devices.push(d);
  // What read() asks before its first command (block size, maximum transfer length), asked now,
  // so the commands under test are the only ones the held proxy keeps.
  await d.blockSize();
  await d.maxTransferBlocks();
  return d;
}

function settle<T>(p: Promise<T>): Promise<{ ok: true; value: T } | { ok: false; error: unknown; at: number }> {
  return p.then((value) => ({ ok: true as const, value }), (error) => ({ ok: false as const, error, at: performance.now() }));
}

describe('connection loss', () => {
  it('32 commands pending when the connection is cut: all fail promptly with connection-lost', async () => {
    const d = await viaProxy();
    proxy!.hold();
    const pending = Array.from({ length: 32 }, (_, i) => settle<unknown>(i % 2 ? d.write(BigInt(i * 8), pattern(4096, i)) : d.read(BigInt(i * 8), 8)));
    await new Promise((r) => setTimeout(r, 50));
    expect(d.session.inFlight).toBe(32);
    const cutAt = performance.now();
    proxy!.cut();
    const results = await Promise.all(pending);
    for (const r of results) {
      expect(r.ok).toBe(false);
      if (r.ok) continue;
      expect(r.error).toBeInstanceOf(InitiatorError);
      expect((r.error as InitiatorError).code).toBe('connection-lost');
      expect(r.at - cutAt).toBeLessThan(1000);
    }
    expect(d.session.inFlight).toBe(0);
    expect(d.session.closed).toBe(true);
    // A command after the loss fails at once, with the same typed error.
    const after = await settle(d.testUnitReady());
    expect(!after.ok && (after.error as InitiatorError).code).toBe('connection-lost');
  });

  it('negative control: with the answers held but the connection intact, the commands are still pending', async () => {
    const d = await viaProxy();
    proxy!.hold();
    let done = 0;
    const pending = Array.from({ length: 4 }, (_, i) => settle(d.read(BigInt(i), 1)).finally(() => { done++; }));
    await new Promise((r) => setTimeout(r, 300));
    expect(done).toBe(0);
    expect(d.session.inFlight).toBe(4);
    proxy!.cut();
    await Promise.all(pending);
    expect(done).toBe(4);
  });
});

describe('command timeout', () => {
  it('a command without an answer fails with timeout after its timeoutMs; it is aborted, not left in the table', async () => {
    const d = await viaProxy();
    proxy!.hold();
    const t0 = performance.now();
    const r = await settle(d.read(0n, 1, { timeoutMs: 200 }));
    const took = performance.now() - t0;
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.error).toBeInstanceOf(InitiatorError);
      expect((r.error as InitiatorError).code).toBe('timeout');
      expect((r.error as Error).message).toMatch(/0x88 on LUN 0 timed out after 200 ms/);
    }
    expect(took).toBeGreaterThanOrEqual(190);
    expect(took).toBeLessThan(2000);
  });

  it('timeouts are per command: a short one issued after a long one fires on time, the long one is still pending', async () => {
    const d = await viaProxy();
    proxy!.hold();
    let longDone = false;
    const long = settle(d.read(0n, 1, { timeoutMs: 5000 })).finally(() => { longDone = true; });
    const t0 = performance.now();
    const short = await settle(d.read(8n, 1, { timeoutMs: 150 }));
    const took = performance.now() - t0;
    expect(!short.ok && (short.error as InitiatorError).code).toBe('timeout');
    expect(took).toBeGreaterThanOrEqual(140);
    expect(took).toBeLessThan(1500);
    expect(longDone).toBe(false);
    proxy!.cut();
    const l = await long;
    expect(!l.ok && (l.error as InitiatorError).code).toBe('connection-lost');
  });

  it('a timed-out command on a live target: ABORT TASK goes out and the session carries on', async () => {
    rig = await startRig();
    const d = await openReady(rig.url(0), { commandTimeoutMs: 5000 });
    devices.push(d);
    // A 0 ms timeout fires before any answer can arrive.
    const r = await settle(d.write(0n, pattern(512 * 1024, 1), { timeoutMs: 0 }));
    expect(!r.ok && (r.error as InitiatorError).code).toBe('timeout');
    await new Promise((res) => setTimeout(res, 100));
    expect(d.session.inFlight).toBe(0);
    const data = pattern(4096, 2);
    expect((await d.write(0n, data)).kind).toBe('good');
    const back = await d.read(0n, 8);
    expect(back.kind === 'good' && back.value.equals(data)).toBe(true);
  });
});

describe('liveness', () => {
  it('target NOP-In pings every 100 ms are answered: an idle session stays up for a second', async () => {
    rig = await startRig({ tuning: { nopInterval: 0.1, nopTimeout: 0.3 } });
    const d = await openReady(rig.url(0));
    devices.push(d);
    await new Promise((r) => setTimeout(r, 1000));
    expect(d.session.counters.nopInAnswered).toBeGreaterThanOrEqual(3);
    expect(d.session.closed).toBe(false);
    expect((await d.testUnitReady()).kind).toBe('good');
  });

  it('our own NOP-Out ping gets its NOP-In', async () => {
    rig = await startRig();
    const d = await openReady(rig.url(0));
    devices.push(d);
    expect(await d.session.ping()).toBeGreaterThanOrEqual(0);
  });

  it('after logout, commands fail with a typed error', async () => {
    rig = await startRig();
    const d = await openReady(rig.url(0));
    await d.close();
    const r = await settle(d.testUnitReady());
    expect(!r.ok && r.error instanceof InitiatorError).toBe(true);
  });
});
