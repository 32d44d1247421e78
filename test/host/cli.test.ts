/**
 * The `host` verbs as a user runs them: the advanced-setting parser, usage errors answered before
 * anything connects, the text and JSON reports, exit statuses (0 done, 2 held, 1 otherwise), the
 * esxcli-like vaai-status, and one run of the real `npx arraysim host` process over TCP.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { runHost, UsageError } from '../../src/host/cli.ts';
import { EsxHost, Run } from '../../src/host/host.ts';
import { VmfsLock } from '../../src/host/lock.ts';
import { DEFAULT_SETTINGS, parseSetting, settingsFrom } from '../../src/host/settings.ts';
import { fill, onLun, Op, pattern, readBack, startHostRig } from './rig.ts';
import type { HostRig } from './rig.ts';

const run = promisify(execFile);
let rig: HostRig | undefined;
afterEach(async () => { await rig?.close(); rig = undefined; });

const base = { lba: '0', set: [] as string[], json: false, hold: 0, heartbeat: 1000, 'ats-only': false };

async function host(args: Partial<Parameters<typeof runHost>[0]> & { verb: Parameters<typeof runHost>[0]['verb'] }): Promise<{ code: number; out: string }> {
  const out: string[] = [];
  const code = await runHost({ ...base, ...args }, (s) => out.push(s));
  return { code, out: out.join('\n') };
}

describe('advanced settings', () => {
  it('parses the three switches and MaxHWTransferSize, dotted or as esxcli paths', () => {
    expect(parseSetting('DataMover.HardwareAcceleratedMove=0')).toEqual(['DataMover.HardwareAcceleratedMove', 0]);
    expect(parseSetting('/DataMover/HardwareAcceleratedInit=0')).toEqual(['DataMover.HardwareAcceleratedInit', 0]);
    expect(parseSetting('vmfs3.hardwareacceleratedlocking=0')).toEqual(['VMFS3.HardwareAcceleratedLocking', 0]);
    expect(settingsFrom(['DataMover.MaxHWTransferSize=16384'])['DataMover.MaxHWTransferSize']).toBe(16384);
    expect(settingsFrom([])).toEqual(DEFAULT_SETTINGS);
  });

  it('refuses unknown names, non-integers, switches other than 0/1 and sizes out of 4..16384', () => {
    expect(() => parseSetting('DataMover.HardwareAcceleratedMovee=0')).toThrow(/unknown setting "DataMover.HardwareAcceleratedMovee"/);
    expect(() => parseSetting('DataMover.HardwareAcceleratedMove')).toThrow(/expected NAME=VALUE/);
    expect(() => parseSetting('DataMover.HardwareAcceleratedMove=off')).toThrow(/takes an integer/);
    expect(() => parseSetting('DataMover.HardwareAcceleratedMove=2')).toThrow(/is 0 or 1/);
    expect(() => parseSetting('DataMover.MaxHWTransferSize=32768')).toThrow(/4\.\.16384/);
  });
});

describe('usage errors, before anything connects', () => {
  it.each([
    [{ verb: 'clone', to: 'iscsi://127.0.0.1:1/iqn.x/1', blocks: '8' }, /--from URL is required/],
    [{ verb: 'clone', from: 'http://x/y/0', to: 'iscsi://127.0.0.1:1/iqn.x/1', blocks: '8' }, /--from:/],
    [{ verb: 'zero', to: 'iscsi://127.0.0.1:1/iqn.x/1' }, /--blocks is required/],
    [{ verb: 'zero', to: 'iscsi://127.0.0.1:1/iqn.x/1', blocks: '-3' }, /--blocks must be a whole number/],
    [{ verb: 'zero', to: 'iscsi://127.0.0.1:1/iqn.x/1', blocks: '0' }, /--blocks must be 1 or more/],
    [{ verb: 'zero', to: 'iscsi://127.0.0.1:1/iqn.x/1', blocks: '8', set: ['Foo=1'] }, /unknown setting "Foo"/],
    [{ verb: 'clone', from: 'iscsi://127.0.0.1:1/iqn.x/0', to: 'iscsi://127.0.0.1:1/iqn.x/1', blocks: '8', 'max-hw-transfer': 2 }, /--max-hw-transfer is 4\.\.16384/],
    [{ verb: 'lock', to: 'iscsi://127.0.0.1:1/iqn.x/1', heartbeat: 0 }, /--heartbeat > 0/],
  ] as const)('%o', async (args, msg) => {
    // Port 1 on loopback: had anything connected, the error would be connect-failed, not this.
    await expect(host(args as never)).rejects.toThrow(UsageError);
    await expect(host(args as never)).rejects.toThrow(msg);
  });
});

describe('reports and exit statuses', () => {
  it('zero: text report with what was offloaded, nothing fell back, I/O counts and the esxcli status', async () => {
    rig = await startHostRig({ luns: 1 });
    const { code, out } = await host({ verb: 'zero', to: rig.url(0), lba: '10', blocks: '9000' });
    expect(code).toBe(0);
    expect(out).toContain('host zero: done - 9000 blocks zeroed by WRITE SAME');
    expect(out).toContain('offloaded: 9000 blocks; by the host: 0 blocks');
    expect(out).toContain('fell back: nothing');
    expect(out).toMatch(/I\/O: writeSame 2; time \d+\.\d{3} s/);
    expect(out).toContain('Zero Status: supported');
  });

  it('clone refused: the fallback line names the sense; JSON carries the same', async () => {
    rig = await startHostRig({ luns: 2 });
    rig.refuse(Op.ExtendedCopy, { reason: 'InvalidOpcode' });
    const t = await host({ verb: 'clone', from: rig.url(0), to: rig.url(1), blocks: '1000' });
    expect(t.code).toBe(0);
    expect(t.out).toContain('fell back: Clone (refused: CHECK CONDITION ILLEGAL REQUEST 05/20/00 (InvalidOpcode)) from LBA 0, 1000 blocks by READ+WRITE (software data mover)');
    const j = await host({ verb: 'clone', from: rig.url(0), to: rig.url(1), blocks: '1000', json: true });
    const rep = JSON.parse(j.out);
    expect(rep).toMatchObject({ verb: 'clone', outcome: 'done', offloadedBlocks: 0, softwareBlocks: 1000, io: { extendedCopy: 1, read: 8, write: 8 } });
    expect(rep.vaai[0].Clone).toMatchObject({ status: 'unsupported', source: 'observed' });
  });

  it('lock held by another host: exit 2, the holder named', async () => {
    rig = await startHostRig({ luns: 1 });
    const other = new EsxHost({}, 'esx-other');
    const d = await rig.open(0);
    const r = new Run(other, 'lock');
    const l = new VmfsLock(other, d, 8n);
    await l.mount(r);
    expect(await l.acquire(r)).toEqual({ kind: 'acquired' });
    const { code, out } = await host({ verb: 'lock', to: rig.url(0), lba: '8', owner: 'esx-me' });
    expect(code).toBe(2);
    expect(out).toContain('host lock: held - lock at LBA 8 is held by esx-other');
  });

  it('vaai-status prints esxcli\'s lines; statuses are unknown before anything was tried', async () => {
    rig = await startHostRig({ luns: 1 });
    const { code, out } = await host({ verb: 'vaai-status', to: rig.url(0) });
    expect(code).toBe(0);
    expect(out.split('\n')).toEqual([
      'naa.500140500000c0d0',
      '   VAAI Plugin Name: ',
      '   ATS Status: unknown   (device says MAXIMUM COMPARE AND WRITE LENGTH 255)',
      '   Clone Status: unknown   (device says 3PC 1)',
      '   Zero Status: unknown   (device says MAXIMUM WRITE SAME LENGTH 0)',
      '   Delete Status: unknown   (device says LBPME 1, LBPU 1)',
    ]);
  });
});

describe('npx arraysim host (the real CLI process)', () => {
  it('clone --json over TCP: exit 0, data equal; a bad --set: exit 1 naming it', async () => {
    rig = await startHostRig({ luns: 2 });
    const src = await rig.open(0);
    const data = pattern(4096 * 512, 21);
    await fill(src, 0n, data);
    const cli = ['tsx', 'src/cli.ts', 'host', 'clone', '--from', rig.url(0), '--to', rig.url(1), '--blocks', '4096', '--to-lba', '100', '--json'];
    const { stdout } = await run('npx', cli, { cwd: process.cwd() });
    expect(JSON.parse(stdout)).toMatchObject({ outcome: 'done', offloadedBlocks: 4096, io: { extendedCopy: 1 } });
    expect((await readBack(await onLun(src, 1), 100n, 4096)).equals(data)).toBe(true);
    const bad = await run('npx', ['tsx', 'src/cli.ts', 'host', 'zero', '--to', rig.url(1), '--blocks', '8', '--set', 'DataMover.HardwareAcceleratedInit=5'], { cwd: process.cwd() }).catch((e) => e);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('DataMover.HardwareAcceleratedInit is 0 or 1');
  }, 60000);
});
