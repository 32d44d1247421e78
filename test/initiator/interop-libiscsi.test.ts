/**
 * One interop fact against a real peer: a URL written by formatIscsiUrl (and read by
 * parseIscsiUrl) is accepted by libiscsi's iscsi-inq (Debian libiscsi-bin), which logs in with the
 * same CHAP and digest settings and sees the same device our ScsiDevice sees; and iscsi-ls on the
 * portal lists the same target and LUNs as our discovery session and REPORT LUNS.
 */
import { execFile, spawnSync } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { formatIscsiUrl, parseIscsiUrl, ScsiDevice, Session } from '../../src/initiator/index.ts';
import { openReady, startRig, TARGET } from './rig.ts';
import type { Rig } from './rig.ts';

const HAVE_TOOLS = ['iscsi-inq', 'iscsi-ls'].every((t) => spawnSync(t, ['--help'], { encoding: 'utf8' }).error === undefined);
const CHAP = { user: 'esx01', secret: 'initiator-secret', mutualUser: 'arraysim', mutualSecret: 'target-secret!' };

function run(tool: string, args: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    execFile(tool, args, { timeout: 20_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : null) : 0, out: stdout + stderr }));
  });
}

let rig: Rig | undefined;
const devices: ScsiDevice[] = [];
afterEach(async () => {
  for (const d of devices.splice(0)) await d.close();
  await rig?.close();
  rig = undefined;
});

describe.skipIf(!HAVE_TOOLS)('libiscsi accepts our URLs', () => {
  it('iscsi-inq logs in with the URL we format (mutual CHAP, header digest) and sees the device we see', async () => {
    rig = await startRig({ chap: CHAP, luns: 2 });
    const url = formatIscsiUrl({
      host: '127.0.0.1', port: rig.port, target: TARGET, lun: 1, user: CHAP.user, password: CHAP.secret,
      targetUser: CHAP.mutualUser, targetPassword: CHAP.mutualSecret, headerDigest: 'CRC32C',
    });
    expect(parseIscsiUrl(url)).toMatchObject({ lun: 1, user: CHAP.user, targetUser: CHAP.mutualUser, headerDigest: 'CRC32C' });
    const d = await openReady(url);
    devices.push(d);
    expect(d.session.params.headerDigest).toBe(true);
    const ours = await d.inquiry();
    expect(ours.kind).toBe('good');
    const theirs = await run('iscsi-inq', [url]);
    expect(theirs.code).toBe(0);
    expect(theirs.out).toContain('Peripheral Device Type:DIRECT_ACCESS');
    if (ours.kind === 'good') {
      expect(theirs.out).toContain(`Vendor:${ours.value.vendor.toString().trim()}`);
      expect(theirs.out).toContain(`Product:${ours.value.product.toString().trim()}`);
    }
    // The negative control: the same URL with a wrong password is refused by both.
    const wrong = url.replace(`%${CHAP.secret}@`, '%wrong-secret@');
    expect((await run('iscsi-inq', [wrong])).code).not.toBe(0);
    await expect(ScsiDevice.open(wrong)).rejects.toMatchObject({ code: 'login-failed', statusClass: 2, statusDetail: 1 });
  });

  it('iscsi-ls on the portal lists the target and LUNs our discovery and REPORT LUNS find', async () => {
    rig = await startRig({ luns: 2 });
    const ls = await run('iscsi-ls', ['-s', `iscsi://127.0.0.1:${rig.port}`]);
    expect(ls.code).toBe(0);
    const s = await Session.login({ host: '127.0.0.1', port: rig.port });
    const targets = await s.sendTargets();
    await s.logout();
    for (const t of targets) expect(ls.out).toContain(`Target:${t.name}`);
    const d = await openReady(formatIscsiUrl({ host: '127.0.0.1', port: rig.port, target: TARGET, lun: 0 }));
    devices.push(d);
    const luns = await d.reportLuns();
    expect(luns.kind === 'good' && luns.value).toEqual([0, 1]);
    for (const lun of [0, 1]) expect(ls.out).toMatch(new RegExp(`Lun:${lun}\\b`));
  });
});
