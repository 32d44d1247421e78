/**
 * CHAP secrets never leave the array: with one-way and mutual CHAP configured, a CHAP login that
 * succeeds and one that fails, nothing the admin API answers (status, alua, the OpenAPI document,
 * the event stream) nor any log line (at trace level) holds a secret, in plain text or in hex.
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestInitiator } from '../helpers/initiator.ts';
import { SseClient, startAdmin } from './rig.ts';
import type { AdminRig } from './rig.ts';

const IQN = 'iqn.2026-11.dev.arraysim:chap';
const HOST = 'iqn.2026-11.test:chap-host';
const SECRET = 'Initiator-Secret-7f3a9c';
const MUTUAL = 'Target-Mutual-Secret-41d2';
const yaml = `
portals:
  - listen: 127.0.0.1:0
targets:
  - name: ${IQN}
    chap:
      user: alice
      secret: ${SECRET}
      mutualUser: array
      mutualSecret: ${MUTUAL}
    luns: [8MiB]
`;

/** Every spelling of a secret that could leak: as written, in hex (CHAP values travel as hex), base64. */
function spellings(s: string): string[] {
  const b = Buffer.from(s);
  return [s, b.toString('hex'), b.toString('hex').toUpperCase(), b.toString('base64')];
}
function leaks(text: string): string[] {
  return [...spellings(SECRET), ...spellings(MUTUAL)].filter((x) => text.includes(x));
}

let rig: AdminRig;
beforeAll(async () => { rig = await startAdmin(yaml); });
afterAll(async () => { await rig?.close(); });

async function chapLogin(secret: string): Promise<{ i: TestInitiator; statusClass: number }> {
  const i = await TestInitiator.connect(rig.portals[0]);
  await i.loginRequest({ InitiatorName: HOST, TargetName: IQN, AuthMethod: 'CHAP' }, { csg: 0, nsg: 1, transit: true });
  const r2 = await i.loginRequest({ CHAP_A: '5' }, { csg: 0, nsg: 1, transit: false });
  const chal = Buffer.from(r2.keys.CHAP_C.slice(2), 'hex');
  const resp = createHash('md5').update(Buffer.from([Number(r2.keys.CHAP_I)])).update(secret).update(chal).digest('hex');
  const r3 = await i.loginRequest({ CHAP_N: 'alice', CHAP_R: `0x${resp}`, CHAP_I: '9', CHAP_C: '0x00112233445566778899aabbccddeeff' }, { csg: 0, nsg: 1, transit: true });
  if (r3.statusClass === 0) {
    await i.loginRequest({ HeaderDigest: 'None', DataDigest: 'None' }, { csg: 1, nsg: 3, transit: true });
  }
  return { i, statusClass: r3.statusClass };
}

describe('CHAP secrets stay inside', () => {
  it('no reply, event or log line holds a secret', async () => {
    const ev = await SseClient.open(`${rig.base}/v1/events`);
    await ev.until(() => ev.of('hello').length === 1);
    const good = await chapLogin(SECRET);
    expect(good.statusClass).toBe(0);
    const bad = await chapLogin('not-the-secret-at-all');
    expect(bad.statusClass).toBe(2);
    bad.i.close();
    await fetch(`${rig.base}/v1/alua`, { method: 'POST', body: JSON.stringify({ tpg: 1, state: 'ano', reason: 'secrets test' }) });
    await ev.until(() => ev.of('session.login').length === 1 && ev.of('alua.state').length === 1);
    await good.i.logout();
    good.i.close();
    await ev.until(() => ev.of('session.logout').length === 1);
    ev.close();

    const replies: Record<string, string> = {};
    for (const p of ['/v1/status', '/v1/alua', '/v1/openapi.json']) replies[p] = await (await fetch(rig.base + p)).text();
    expect(JSON.parse(replies['/v1/status']).targets[0].sessions).toEqual([]); // logged out by now
    const stream = JSON.stringify(ev.messages);
    const log = rig.logText();
    expect(log).toContain('login complete');
    expect(log).toContain('ALUA state change');

    for (const [p, text] of Object.entries(replies)) expect(leaks(text), p).toEqual([]);
    expect(leaks(stream), 'event stream').toEqual([]);
    expect(leaks(log), 'log').toEqual([]);
  });

  it('negative control: the search finds a secret where one is', async () => {
    expect(leaks(yaml)).toEqual([SECRET, MUTUAL]);
    expect(leaks(`{"k":"${Buffer.from(MUTUAL).toString('hex')}"}`)).toEqual([Buffer.from(MUTUAL).toString('hex')]);
  });
});
