/**
 * CHAP against a real initiator: libiscsi's iscsi-inq (Debian libiscsi-bin, which the test
 * command installs) logs in to an in-process target with one-way and mutual CHAP (RFC 7143
 * §12.1.3, RFC 1994). The project's own initiator shares the target's view of the encoding of
 * CHAP_C and CHAP_R, so only another implementation can show that both sides agree on it.
 *
 * Mutual CHAP is proven from the initiator's side: with the right target secret libiscsi accepts
 * the target's CHAP_R, with a wrong one it refuses it ("Invalid CHAP_R response").
 */
import { execFile, spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { perTestRig, startTarget, TARGET } from './harness.ts';

const HAVE_TOOL = spawnSync('iscsi-inq', ['--help'], { encoding: 'utf8' }).error === undefined;
const CHAP = { user: 'alice', secret: 'alicesecret12', mutualUser: 'array', mutualSecret: 'arraysecret34' };

const rig = perTestRig();

function inq(url: string): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    execFile('iscsi-inq', [url], { timeout: 20_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : null) : 0, out: stdout + stderr }));
  });
}

describe.skipIf(!HAVE_TOOL)('CHAP with libiscsi (iscsi-inq)', () => {
  it('one-way and mutual CHAP log in; a wrong secret, no credentials and a wrong target secret do not', async () => {
    const h = (rig.h = await startTarget({ target: { chap: CHAP } }));
    const url = (cred: string, query = '') => `iscsi://${cred}127.0.0.1:${h.port}/${TARGET}/0${query}`;
    const mutual = `?target_user=${CHAP.mutualUser}&target_password=${CHAP.mutualSecret}`;

    const oneWay = await inq(url(`${CHAP.user}%${CHAP.secret}@`));
    expect(oneWay.out).toContain('Peripheral Device Type:DIRECT_ACCESS');
    expect(oneWay.code).toBe(0);

    const both = await inq(url(`${CHAP.user}%${CHAP.secret}@`, mutual));
    expect(both.out).toContain('Peripheral Device Type:DIRECT_ACCESS');
    expect(both.code).toBe(0);

    // Status class 2, detail 1: authentication failure (RFC 7143 §11.13.5).
    const wrong = await inq(url(`${CHAP.user}%wrongsecret99@`));
    expect(wrong.code).not.toBe(0);
    expect(wrong.out).toMatch(/Authentication failure\(513\)/);

    const none = await inq(url(''));
    expect(none.code).not.toBe(0);
    expect(none.out).toMatch(/Authentication failure\(513\)/);

    const badTarget = await inq(url(`${CHAP.user}%${CHAP.secret}@`, `?target_user=${CHAP.mutualUser}&target_password=wrongsecret99`));
    expect(badTarget.code).not.toBe(0);
    expect(badTarget.out).toMatch(/Invalid CHAP_R response from the target/);
  });
});
