import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestInitiator, parseKeys } from '../helpers/initiator.ts';
import { startTarget, TARGET } from './harness.ts';
import type { Harness } from './harness.ts';

describe('login phase (RFC 7143 §6, §11.12-13)', () => {
  let h: Harness;
  beforeAll(async () => { h = await startTarget({ portals: 2, target: { acl: ['iqn.2026-11.dev.arraysim:test', 'iqn.2026-11.dev.arraysim:other'] } }); });
  afterAll(async () => { await h.close(); });

  it('negotiates operational keys by the table and reaches full feature phase', async () => {
    const i = await TestInitiator.connect(h.port);
    const keys = await i.login(TARGET, { MaxBurstLength: '131072', FirstBurstLength: '999999', MaxOutstandingR2T: '4', 'X-com.example.foo': 'bar', InitialR2T: 'No' });
    expect(keys.TargetPortalGroupTag).toBe('1');
    expect(keys.MaxBurstLength).toBe('131072'); // min(ours 1 MiB, theirs)
    expect(keys.FirstBurstLength).toBe('262144'); // min(ours, theirs)
    expect(keys.MaxOutstandingR2T).toBe('4');
    expect(keys.InitialR2T).toBe('No'); // OR of No and No
    expect(keys['X-com.example.foo']).toBe('NotUnderstood');
    expect(keys.MaxRecvDataSegmentLength).toBe('262144');
    expect(i.tsih).toBeGreaterThan(0);
    const nop = await i.nop(Buffer.from('ping'));
    expect(nop.opcode).toBe(0x20);
    expect(nop.data.toString()).toBe('ping');
    const lo = await i.logout();
    expect(lo.bhs[2]).toBe(0);
    expect(await i.waitClosed()).toBe(true);
  });

  it('answers a second portal with its own TPGT', async () => {
    const i = await TestInitiator.connect(h.ports[1]);
    const keys = await i.login(TARGET);
    expect(keys.TargetPortalGroupTag).toBe('2');
    i.close();
  });

  it('refuses an unknown target with 02/03 NOT FOUND and closes', async () => {
    const i = await TestInitiator.connect(h.port);
    const r = await i.loginRequest({ InitiatorName: 'iqn.2026-11.dev.arraysim:test', TargetName: 'iqn.2026-11.dev.arraysim:nope', AuthMethod: 'None' }, { csg: 0, nsg: 1, transit: true });
    expect([r.statusClass, r.statusDetail]).toEqual([2, 3]);
    expect(await i.waitClosed()).toBe(true);
  });

  it('refuses an initiator outside the ACL with 02/02', async () => {
    const i = await TestInitiator.connect(h.port);
    const r = await i.loginRequest({ InitiatorName: 'iqn.2026-11.dev.arraysim:intruder', TargetName: TARGET, AuthMethod: 'None' }, { csg: 0, nsg: 1, transit: true });
    expect([r.statusClass, r.statusDetail]).toEqual([2, 2]);
  });

  it('refuses a login without InitiatorName with 02/07 MISSING PARAMETER', async () => {
    const i = await TestInitiator.connect(h.port);
    const r = await i.loginRequest({ TargetName: TARGET, AuthMethod: 'None' }, { csg: 0, nsg: 1, transit: true });
    expect([r.statusClass, r.statusDetail]).toEqual([2, 7]);
  });

  it('refuses an unknown TSIH with 02/0A SESSION DOES NOT EXIST', async () => {
    const i = await TestInitiator.connect(h.port);
    i.tsih = 0x7777;
    const r = await i.loginRequest({ InitiatorName: 'iqn.2026-11.dev.arraysim:test', TargetName: TARGET, AuthMethod: 'None' }, { csg: 0, nsg: 1, transit: true });
    expect([r.statusClass, r.statusDetail]).toEqual([2, 0x0a]);
  });

  it('rejects out-of-range values and keeps going', async () => {
    const i = await TestInitiator.connect(h.port);
    const keys = await i.login(TARGET, { MaxBurstLength: '100', HeaderDigest: 'MD5' });
    expect(keys.MaxBurstLength).toBe('Reject');
    expect(keys.HeaderDigest).toBe('Reject');
    i.close();
  });

  it('serves SendTargets=All in a discovery session with every portal', async () => {
    const i = await TestInitiator.connect(h.port);
    await i.login(null);
    const r = await i.text({ SendTargets: 'All' });
    const text = r.data.toString().split('\0').filter(Boolean);
    expect(text).toEqual([`TargetName=${TARGET}`, `TargetAddress=127.0.0.1:${h.ports[0]},1`, `TargetAddress=127.0.0.1:${h.ports[1]},2`]);
    const scsi = await i.scsi(0, [0, 0, 0, 0, 0, 0]).catch((e) => e);
    expect(scsi.reject).toBe(4);
    i.close();
  });

  it('reinstates a session that reuses its ISID', async () => {
    const a = await TestInitiator.connect(h.port);
    await a.login(TARGET);
    const b = await TestInitiator.connect(h.port);
    await b.login(TARGET);
    expect(await a.waitClosed()).toBe(true);
    expect(h.server.sessions.size).toBeGreaterThanOrEqual(1);
    const nop = await b.nop();
    expect(nop.opcode).toBe(0x20);
    b.close();
  });

  it('negotiates CRC32C digests and then checks them', async () => {
    const i = await TestInitiator.connect(h.port);
    const keys = await i.login(TARGET, { HeaderDigest: 'CRC32C,None', DataDigest: 'CRC32C,None' });
    expect(keys.HeaderDigest).toBe('CRC32C');
    expect(keys.DataDigest).toBe('CRC32C');
    const nop = await i.nop(Buffer.from('digest'));
    expect(nop.data.toString()).toBe('digest');
    // A corrupted data digest on a NOP-Out gets a Reject with reason 0x02.
    const b = i.bhs(0x00, true);
    b[1] = 0x80; b.writeUInt32BE(0x4242, 16); b.writeUInt32BE(0xffffffff, 20); b.writeUInt32BE(i.cmdSN, 24);
    TestInitiator.setDsl(b, 4);
    i.send(b, Buffer.from('oops'), { corruptData: true });
    const rej = await i.next((p) => p.opcode === 0x3f);
    expect(rej.bhs[2]).toBe(0x02);
    // A corrupted header digest ends the connection (ERL 0).
    i.send(i.bhs(0x00, true), undefined, { corruptHeader: true });
    expect(await i.waitClosed()).toBe(true);
  });
});

describe('a target that accepts only CRC32C header digests (RFC 7143 §6.2.1, §11.13.5)', () => {
  let h: Harness;
  beforeAll(async () => { h = await startTarget({ tuning: { keys: { HeaderDigest: 'CRC32C' } } }); });
  afterAll(async () => { await h.close(); });

  it('an initiator offering only None gets Login reject 02/00 Initiator error, not a session without digests', async () => {
    const i = await TestInitiator.connect(h.port);
    const e = await i.login(TARGET, { HeaderDigest: 'None' }).then(() => null, (x) => x);
    expect(e).toMatchObject({ statusClass: 2, statusDetail: 0 });
    expect(h.server.sessions.size).toBe(0);
    i.close();
  });

  it('offering CRC32C among others logs in with header digests; an unacceptable value of a key with an acceptable default is still only Reject', async () => {
    const i = await TestInitiator.connect(h.port);
    const keys = await i.login(TARGET, { HeaderDigest: 'None,CRC32C', DataDigest: 'MD5' });
    expect(keys).toMatchObject({ HeaderDigest: 'CRC32C', DataDigest: 'Reject' });
    expect((await i.nop(Buffer.from('digest'))).data.toString()).toBe('digest');
    i.close();
  });
});

describe('CHAP (RFC 7143 §12.1.3)', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startTarget({ target: { chap: { user: 'alice', secret: 'alicesecret1', mutualUser: 'tgt', mutualSecret: 'targetsecret' } } });
  });
  afterAll(async () => { await h.close(); });

  async function chapLogin(secret: string, mutual: boolean) {
    const { createHash } = await import('node:crypto');
    const i = await TestInitiator.connect(h.port);
    const r1 = await i.loginRequest({ InitiatorName: 'iqn.2026-11.dev.arraysim:test', TargetName: TARGET, AuthMethod: 'CHAP,None' }, { csg: 0, nsg: 1, transit: true });
    expect(r1.keys.AuthMethod).toBe('CHAP');
    const r2 = await i.loginRequest({ CHAP_A: '5' }, { csg: 0, nsg: 1, transit: false });
    expect(r2.keys.CHAP_A).toBe('5');
    const id = Number(r2.keys.CHAP_I);
    const chal = Buffer.from(r2.keys.CHAP_C.slice(2), 'hex');
    const resp = createHash('md5').update(Buffer.from([id])).update(secret).update(chal).digest('hex');
    const keys: Record<string, string> = { CHAP_N: 'alice', CHAP_R: '0x' + resp };
    const myChal = Buffer.from('00112233445566778899aabbccddeeff', 'hex');
    if (mutual) { keys.CHAP_I = '7'; keys.CHAP_C = '0x' + myChal.toString('hex'); }
    const r3 = await i.loginRequest(keys, { csg: 0, nsg: 1, transit: true });
    return { i, r3, myChal };
  }

  it('accepts the right secret and answers a mutual challenge', async () => {
    const { createHash } = await import('node:crypto');
    const { i, r3, myChal } = await chapLogin('alicesecret1', true);
    expect(r3.statusClass).toBe(0);
    expect(r3.keys.CHAP_N).toBe('tgt');
    const want = createHash('md5').update(Buffer.from([7])).update('targetsecret').update(myChal).digest('hex');
    expect(r3.keys.CHAP_R).toBe('0x' + want);
    i.close();
  });

  it('fails a wrong secret with 02/01 AUTHENTICATION FAILURE', async () => {
    const { r3 } = await chapLogin('wrong', false);
    expect([r3.statusClass, r3.statusDetail]).toEqual([2, 1]);
  });

  it('refuses to skip authentication', async () => {
    const i = await TestInitiator.connect(h.port);
    const r = await i.loginRequest({ InitiatorName: 'iqn.2026-11.dev.arraysim:test', TargetName: TARGET, AuthMethod: 'None' }, { csg: 0, nsg: 1, transit: true });
    expect([r.statusClass, r.statusDetail]).toEqual([2, 1]);
    void parseKeys;
  });
});
