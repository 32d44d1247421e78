/**
 * GET /v1/events over real HTTP: an ALUA change made through POST /v1/alua and sessions logged in,
 * out and dropped by the test initiator arrive as server-sent events, in order, with their fields,
 * each valid against its published schema. Keep-alive comments flow; subscribers are let go when
 * the client goes and streams end when the API closes.
 */
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compileValidator } from '../../src/admin/validation.ts';
import { ARRAY_EVENT, EVENT_SCHEMAS, MAX_BACKLOG } from '../../src/admin/routes/events.ts';
import { TestInitiator } from '../helpers/initiator.ts';
import { SseClient, startAdmin } from './rig.ts';
import type { AdminRig } from './rig.ts';

const IQN = 'iqn.2026-11.dev.arraysim:events';
const HOST = 'iqn.2026-11.test:events-host';
const yaml = `
portals:
  - listen: 127.0.0.1:0
  - listen: 127.0.0.1:0
alua:
  groups:
    - id: 2
      hosts:
        ${HOST}: active/non-optimized
targets:
  - name: ${IQN}
    luns: [8MiB]
`;

let rig: AdminRig;
beforeAll(async () => { rig = await startAdmin(yaml, { keepAliveMs: 150 }); });
afterAll(async () => { await rig?.close(); });

const validEvent = compileValidator(ARRAY_EVENT);

/** Wait until the bus has `n` subscribers (a closed client is let go when its socket closes, a moment later). */
async function subscribersSettleAt(n: number): Promise<void> {
  const deadline = Date.now() + 3000;
  while (rig.array.events.subscribers !== n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  expect(rig.array.events.subscribers).toBe(n);
}

async function subscribe(): Promise<SseClient> {
  const c = await SseClient.open(`${rig.base}/v1/events`);
  await c.until(() => c.of('hello').length === 1, 5000, 'hello');
  return c;
}

describe('GET /v1/events', () => {
  it('ALUA changes and sessions arrive in order with their fields', async () => {
    const c = await subscribe();
    expect(c.status).toBe(200);
    expect(c.headers['content-type']).toMatch(/^text\/event-stream/);
    expect(c.comments[0]).toBe('arraysim events');
    const hello = c.of('hello')[0].data;
    expect(hello.seq).toBe(rig.array.events.lastSeq);

    const r = await fetch(`${rig.base}/v1/alua`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ tpg: 1, state: 'standby', preferred: true, transitionMs: 100, reason: 'events test', wait: true }),
    });
    expect(r.status).toBe(200);
    // A per-host change: the group default stays, the override moves.
    await fetch(`${rig.base}/v1/alua`, { method: 'POST', body: JSON.stringify({ tpg: 2, state: 'ao', host: HOST, reason: 'proximity' }) });

    const i1 = await TestInitiator.connect(rig.portals[0]);
    await i1.login(IQN, {}, HOST);
    await i1.logout();
    i1.close();
    const i2 = await TestInitiator.connect(rig.portals[1]);
    await i2.login(IQN, {}, HOST);
    i2.close(); // no logout: the connection just goes

    const types = ['alua.state', 'session.login', 'session.logout', 'session.drop'];
    await c.until(() => c.of(...types).length >= 7, 5000, 'seven events');
    const ev = c.of(...types);
    expect(ev.map((m) => m.event)).toEqual(['alua.state', 'alua.state', 'alua.state', 'session.login', 'session.logout', 'session.login', 'session.drop']);
    // The SSE id is the seq, the event name the type; seqs follow on from the hello's.
    expect(ev.map((m) => Number(m.id))).toEqual(ev.map((_, k) => hello.seq + 1 + k));
    for (const m of ev) {
      expect(m.data.type).toBe(m.event);
      expect(String(m.data.seq)).toBe(m.id);
      expect(validEvent(m.data), JSON.stringify(validEvent.errors)).toBe(true);
      expect(Date.parse(m.data.time)).not.toBeNaN();
    }
    expect(ev[0].data).toMatchObject({ target: IQN, tpg: 1, host: null, state: 'transitioning', phase: 'transitioning', reason: 'events test', hosts: {} });
    expect(ev[1].data).toMatchObject({ target: IQN, tpg: 1, host: null, state: 'standby', preferred: true, phase: 'done', reason: 'events test' });
    expect(ev[2].data).toMatchObject({ tpg: 2, host: HOST, state: 'active/optimized', hosts: { [HOST]: 'active/optimized' }, phase: 'done', reason: 'proximity' });
    const p1 = `127.0.0.1:${rig.portals[0]}`;
    expect(ev[3].data).toMatchObject({ target: IQN, initiator: HOST, tpgt: 1, portal: p1, sessionType: 'Normal' });
    expect(ev[3].data.tsih).toBeGreaterThan(0);
    expect(ev[4].data).toMatchObject({ target: IQN, initiator: HOST, tpgt: 1, tsih: ev[3].data.tsih });
    expect(ev[5].data).toMatchObject({ initiator: HOST, tpgt: 2, portal: `127.0.0.1:${rig.portals[1]}` });
    expect(ev[6].data).toMatchObject({ initiator: HOST, tpgt: 2, tsih: ev[5].data.tsih });
    expect(typeof ev[6].data.why).toBe('string');
    c.close();
  });

  it('the event schemas refuse what is not an event (negative control of the check above)', () => {
    const good = { type: 'session.drop', seq: 3, time: new Date().toISOString(), target: IQN, initiator: HOST, isid: '00023d000001', tsih: 1, tpgt: 1, portal: '127.0.0.1:3260', sessionType: 'Normal', why: 'connection closed' };
    expect(validEvent(good)).toBe(true);
    expect(validEvent({ ...good, why: undefined })).toBe(false);
    expect(validEvent({ ...good, type: 'session.vanished' })).toBe(false);
    expect(validEvent({ ...good, tsih: '1' })).toBe(false);
    expect(Object.keys(EVENT_SCHEMAS).sort()).toEqual(['alua.state', 'group.copy', 'group.high-load', 'group.image-access', 'group.transfer', 'rcopy.failover', 'rcopy.group', 'rcopy.role', 'session.drop', 'session.login', 'session.logout']);
  });

  it('keep-alive comments flow while nothing happens', async () => {
    const c = await subscribe();
    await c.until(() => c.comments.filter((x) => x === 'keep-alive').length >= 2, 3000, 'two keep-alives');
    c.close();
  });

  it('every subscriber gets every event; a client that goes is unsubscribed', async () => {
    await subscribersSettleAt(0);
    const a = await subscribe();
    const b = await subscribe();
    expect(rig.array.events.subscribers).toBe(2);
    await fetch(`${rig.base}/v1/alua`, { method: 'POST', body: JSON.stringify({ tpg: 1, state: 'ao', reason: 'two listeners' }) });
    await a.until(() => a.of('alua.state').length === 1);
    await b.until(() => b.of('alua.state').length === 1);
    expect(a.of('alua.state')[0].data).toEqual(b.of('alua.state')[0].data);
    a.close();
    b.close();
    await subscribersSettleAt(0);
  });

  it('a client that does not read is cut off once its backlog passes MAX_BACKLOG, not held in memory', async () => {
    await subscribersSettleAt(0);
    const sock = net.connect(rig.port, '127.0.0.1');
    await new Promise<void>((r) => sock.once('connect', () => r()));
    sock.write('GET /v1/events HTTP/1.1\r\nHost: arraysim\r\n\r\n');
    sock.pause(); // and never read
    await subscribersSettleAt(1);
    const reason = 'x'.repeat(64 * 1024);
    // Far more than the kernel's socket buffers and MAX_BACKLOG together.
    for (let k = 0; k < 400 && rig.array.events.subscribers === 1; k++) {
      rig.array.events.emit({ type: 'alua.state', target: IQN, tpg: 1, host: null, state: 'active/optimized', preferred: false, hosts: {}, phase: 'done', reason });
      await new Promise((r) => setImmediate(r));
    }
    expect(rig.array.events.subscribers).toBe(0);
    expect(rig.logText()).toContain('events client not reading: stream ended');
    expect(MAX_BACKLOG).toBe(1 << 20);
    sock.destroy();
  });

  it('closing the API ends open streams (close does not wait on them)', async () => {
    const other = await startAdmin(yaml, { keepAliveMs: 60_000 });
    const c = await SseClient.open(`${other.base}/v1/events`);
    await c.until(() => c.of('hello').length === 1);
    const t0 = Date.now();
    await other.close();
    expect(Date.now() - t0).toBeLessThan(3000);
    await c.until(() => c.ended, 3000, 'end of stream');
    expect(other.array.events.subscribers).toBe(0);
  });
});
