/**
 * Login against the real target in process: with and without CRC32C digests, one-way and mutual
 * CHAP, wrong secrets (typed failures carrying the Login Response's status class and detail),
 * a discovery session with SendTargets; and the answer checks of the negotiation table.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { KEYS } from '../../protocol/iscsi/negotiation.ts';
import { InitiatorError, LoginFailedError, ScsiDevice, Session } from '../../src/initiator/index.ts';
import { acceptAnswer } from '../../src/initiator/login.ts';
import { openReady, pattern, startRig, TARGET } from './rig.ts';
import type { Rig } from './rig.ts';

const CHAP = { user: 'esx01', secret: 'initiator-secret', mutualUser: 'arraysim', mutualSecret: 'target-secret!' };

let rig: Rig | undefined;
const devices: ScsiDevice[] = [];
afterEach(async () => {
  for (const d of devices.splice(0)) await d.close();
  await rig?.close();
  rig = undefined;
});

async function roundTrip(d: ScsiDevice): Promise<void> {
  const data = pattern(256 * 1024, 3);
  expect((await d.write(100n, data)).kind).toBe('good');
  const r = await d.read(100n, 512);
  expect(r.kind).toBe('good');
  expect(r.kind === 'good' && r.value.equals(data)).toBe(true);
}

async function failure(p: Promise<unknown>): Promise<unknown> {
  try { await p; } catch (e) { return e; }
  throw new Error('expected a failure');
}

describe('login without authentication', () => {
  it('negotiates the operational keys and runs I/O without digests', async () => {
    rig = await startRig();
    const d = await openReady(rig.url(0));
    devices.push(d);
    expect(d.session.params).toMatchObject({
      headerDigest: false, dataDigest: false, maxSendDataSegmentLength: 262144, immediateData: true, initialR2T: false, targetPortalGroupTag: 1,
    });
    await roundTrip(d);
  });

  it('with HeaderDigest and DataDigest CRC32C (the target must check every PDU we send)', async () => {
    rig = await startRig();
    const d = await openReady(rig.url(0), { offer: { headerDigest: 'CRC32C', dataDigest: 'CRC32C' } });
    devices.push(d);
    expect(d.session.params.headerDigest).toBe(true);
    expect(d.session.params.dataDigest).toBe(true);
    expect(d.session.conn.headerDigest && d.session.conn.dataDigest).toBe(true);
    await roundTrip(d);
  });

  it('header_digest=crc32c in the URL asks for header digests', async () => {
    rig = await startRig();
    const d = await openReady(`${rig.url(0)}?header_digest=crc32c`);
    devices.push(d);
    expect(d.session.params.headerDigest).toBe(true);
    expect(d.session.params.dataDigest).toBe(false);
    await roundTrip(d);
  });

  it('a target that only accepts CRC32C refuses an initiator that insists on None', async () => {
    rig = await startRig({ tuning: { keys: { HeaderDigest: 'CRC32C' } } });
    const e = await failure(ScsiDevice.open(rig.url(0), { offer: { headerDigest: 'None' } }));
    // The target fails the login itself (02/00 Initiator error, RFC 7143 §11.13.5); a target that
    // answered Reject instead would be refused by our own answer check (negotiation-failed, below).
    expect(e).toBeInstanceOf(LoginFailedError);
    expect(e).toMatchObject({ code: 'login-failed', statusClass: 2, statusDetail: 0 });
  });

  it('an unknown target name is a typed login failure: 02/03 NotFound', async () => {
    rig = await startRig();
    const e = await failure(ScsiDevice.open(`iscsi://127.0.0.1:${rig.port}/iqn.2026-11.dev.arraysim:nobody/0`));
    expect(e).toBeInstanceOf(LoginFailedError);
    expect(e).toMatchObject({ code: 'login-failed', statusClass: 2, statusDetail: 3, status: 'NotFound' });
  });

  it('nothing listening: connect-failed', async () => {
    const e = await failure(ScsiDevice.open(`iscsi://127.0.0.1:1/${TARGET}/0`));
    expect((e as InitiatorError).code).toBe('connect-failed');
  });
});

describe('CHAP', () => {
  it('one-way CHAP from the URL (user%secret@)', async () => {
    rig = await startRig({ chap: { user: CHAP.user, secret: CHAP.secret } });
    const d = await openReady(rig.url(0, `${CHAP.user}%${CHAP.secret}`));
    devices.push(d);
    expect(d.session.params.targetKeys.AuthMethod).toBe('CHAP');
    await roundTrip(d);
  });

  it('mutual CHAP: the target proves it knows its secret', async () => {
    rig = await startRig({ chap: CHAP });
    const d = await openReady(`${rig.url(0, `${CHAP.user}%${CHAP.secret}`)}?target_user=${CHAP.mutualUser}&target_password=${CHAP.mutualSecret}`);
    devices.push(d);
    expect(d.session.params.targetKeys.CHAP_N).toBe(CHAP.mutualUser);
    await roundTrip(d);
  });

  it('a wrong initiator secret: LoginFailedError 02/01 AuthenticationFailure', async () => {
    rig = await startRig({ chap: CHAP });
    const e = await failure(ScsiDevice.open(rig.url(0, `${CHAP.user}%not-the-secret`)));
    expect(e).toBeInstanceOf(LoginFailedError);
    expect(e).toMatchObject({ code: 'login-failed', statusClass: 2, statusDetail: 1, status: 'AuthenticationFailure' });
  });

  it('no credentials where CHAP is required: 02/01', async () => {
    rig = await startRig({ chap: CHAP });
    const e = await failure(ScsiDevice.open(rig.url(0)));
    expect(e).toMatchObject({ statusClass: 2, statusDetail: 1 });
  });

  it('a wrong target secret: we refuse the target (authentication-failed), the session is not used', async () => {
    rig = await startRig({ chap: CHAP });
    const e = await failure(ScsiDevice.open(`${rig.url(0, `${CHAP.user}%${CHAP.secret}`)}?target_user=${CHAP.mutualUser}&target_password=wrong`));
    expect(e).toBeInstanceOf(InitiatorError);
    expect((e as InitiatorError).code).toBe('authentication-failed');
    expect((e as Error).message).toMatch(/wrong target secret/);
  });

  it('credentials offered to a target without CHAP: it picks AuthMethod None and the login goes on', async () => {
    rig = await startRig();
    const d = await openReady(rig.url(0, 'esx01%whatever'));
    devices.push(d);
    expect(d.session.params.targetKeys.AuthMethod).toBe('None');
    await roundTrip(d);
  });

  it('mutual CHAP asked of a target without CHAP: authentication-failed (it never authenticates)', async () => {
    rig = await startRig();
    const e = await failure(ScsiDevice.open(`${rig.url(0, 'u%p')}?target_user=t&target_password=s`));
    expect((e as InitiatorError).code).toBe('authentication-failed');
  });
});

describe('discovery', () => {
  it('SendTargets=All lists the target and its portal', async () => {
    rig = await startRig();
    const s = await Session.login({ host: '127.0.0.1', port: rig.port });
    try {
      const targets = await s.sendTargets();
      expect(targets).toEqual([{ name: TARGET, addresses: [`127.0.0.1:${rig.port},1`] }]);
    } finally {
      await s.logout();
    }
  });
});

describe('answer checks (RFC 7143 §6.2)', () => {
  const k = (name: string) => KEYS.get(name)!;
  it.each([
    ['HeaderDigest', 'CRC32C,None', 'None', 'None'],
    ['HeaderDigest', 'CRC32C', 'None', null],
    ['MaxBurstLength', '262144', '65536', '65536'],
    ['MaxBurstLength', '262144', '1048576', null],
    ['DefaultTime2Wait', '2', '1', null],
    ['ImmediateData', 'No', 'Yes', null],
    ['ImmediateData', 'Yes', 'No', 'No'],
    ['InitialR2T', 'Yes', 'No', null],
    ['InitialR2T', 'No', 'Yes', 'Yes'],
    ['MaxRecvDataSegmentLength', '262144', '8192', '8192'],
    ['MaxRecvDataSegmentLength', '262144', '100', null],
    ['MaxOutstandingR2T', '16', 'x', null],
  ])('%s offered %s, answered %s → %s', (key, offered, answer, result) => {
    expect(acceptAnswer(k(key), offered, answer)).toBe(result);
  });
});
