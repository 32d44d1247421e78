/**
 * The ESXi-like data mover against the real target over TCP: clone by EXTENDED COPY (data
 * checked), the fallback to READ+WRITE when XCOPY is refused and the Clone primitive marked
 * unsupported for the host's lifetime, a refusal part-way finished in software from where the
 * offload stopped, zeroing with and without WRITE SAME, UNMAP refused, and the advanced settings.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { EsxHost } from '../../src/host/host.ts';
import { settingsFrom } from '../../src/host/settings.ts';
import { fill, onLun, Op, pattern, readBack, startHostRig } from './rig.ts';
import type { HostRig } from './rig.ts';

let rig: HostRig | undefined;
afterEach(async () => { await rig?.close(); rig = undefined; });

async function twoLus() {
  rig = await startHostRig({ luns: 2 });
  const src = await rig.open(0);
  const dst = await onLun(src, 1);
  return { rig, src, dst };
}

// 20,000 blocks = 2 whole 4 MiB segments (8192 blocks) and a partial one.
const BLOCKS = 20000;

describe('clone', () => {
  it('is offloaded by EXTENDED COPY in 4 MiB segments on arraysim: data equal, Clone supported', async () => {
    const { rig, src, dst } = await twoLus();
    const data = pattern(BLOCKS * 512, 1);
    await fill(src, 100n, data);
    // Negative control: the destination does not already hold the data.
    expect((await readBack(dst, 5000n, BLOCKS)).equals(data)).toBe(false);
    const host = new EsxHost();
    const readsBefore = rig.count(Op.Read16);
    const r = await host.clone({ from: src, to: dst, lba: 100n, toLba: 5000n, blocks: BLOCKS });
    expect(r.outcome).toBe('done');
    expect(r).toMatchObject({ offloadedBlocks: BLOCKS, softwareBlocks: 0, fallbacks: [] });
    expect(r.io.extendedCopy).toBe(3);
    expect(rig.count(Op.ExtendedCopy, 'passed')).toBe(3);
    expect(rig.count(Op.Read16)).toBe(readsBefore); // the host read nothing
    expect((await readBack(dst, 5000n, BLOCKS)).equals(data)).toBe(true);
    expect(r.vaai.every((v) => v.Clone.status === 'supported')).toBe(true);
  });

  it('--max-hw-transfer 16384 (16 MiB) sends one XCOPY for 20,000 blocks', async () => {
    const { rig, src, dst } = await twoLus();
    await fill(src, 0n, pattern(BLOCKS * 512, 2));
    const r = await new EsxHost(settingsFrom(['DataMover.MaxHWTransferSize=16384'])).clone({ from: src, to: dst, lba: 0n, toLba: 0n, blocks: BLOCKS });
    expect(r.io.extendedCopy).toBe(1); // 32768 blocks per segment
    expect(rig.count(Op.ExtendedCopy)).toBe(1);
  });

  it('falls back to READ+WRITE when XCOPY is refused (05/20/00), marks Clone unsupported and does not try again in this host', async () => {
    const { rig, src, dst } = await twoLus();
    rig.refuse(Op.ExtendedCopy, { reason: 'InvalidOpcode' });
    const data = pattern(BLOCKS * 512, 3);
    await fill(src, 0n, data);
    const host = new EsxHost();
    const r = await host.clone({ from: src, to: dst, lba: 0n, toLba: 0n, blocks: BLOCKS });
    expect(r.outcome).toBe('done');
    expect(r.offloadedBlocks).toBe(0);
    expect(r.softwareBlocks).toBe(BLOCKS);
    expect(r.fallbacks).toEqual([expect.objectContaining({ primitive: 'Clone', cause: 'refused', fromLba: '0', blocks: BLOCKS })]);
    expect(r.fallbacks[0].why).toContain('ILLEGAL REQUEST 05/20/00 (InvalidOpcode)');
    expect(r.vaai.every((v) => v.Clone.status === 'unsupported')).toBe(true);
    expect((await readBack(dst, 0n, BLOCKS)).equals(data)).toBe(true);
    // 64 KiB software I/Os: 157 READs and 157 WRITEs for 20,000 blocks.
    expect(r.io).toMatchObject({ read: 157, write: 157 });

    const sent = rig.count(Op.ExtendedCopy);
    const again = await host.clone({ from: src, to: dst, lba: 0n, toLba: 30000n, blocks: 1000 });
    expect(rig.count(Op.ExtendedCopy)).toBe(sent); // not tried again
    expect(again.fallbacks[0]).toMatchObject({ cause: 'unsupported' });
    expect(again.fallbacks[0].why).toContain('Clone Status: unsupported');

    // A reboot forgets it (S4), and the offload is tried again.
    host.rebootVaaiStatus();
    await host.clone({ from: src, to: dst, lba: 0n, toLba: 40000n, blocks: 1000 });
    expect(rig.count(Op.ExtendedCopy)).toBeGreaterThan(sent);
  });

  it('COPY ABORTED (0A/0D/02) is a fallback trigger too', async () => {
    const { rig, src, dst } = await twoLus();
    rig.refuse(Op.ExtendedCopy, { reason: 'CopyTargetDeviceNotReachable' });
    const data = pattern(4096 * 512, 4);
    await fill(src, 0n, data);
    const r = await new EsxHost().clone({ from: src, to: dst, lba: 0n, toLba: 0n, blocks: 4096 });
    expect(r.outcome).toBe('done');
    expect(r.fallbacks[0].why).toContain('COPY ABORTED 0A/0D/02');
    expect((await readBack(dst, 0n, 4096)).equals(data)).toBe(true);
  });

  it('a refusal after 2 segments: those stay offloaded, the host finishes from the third segment on, not from the start', async () => {
    const { rig, src, dst } = await twoLus();
    const blocks = 8192 * 5;
    rig.refuse(Op.ExtendedCopy, { reason: 'CopyTargetDeviceNotReachable', after: 2 });
    const data = pattern(blocks * 512, 5);
    await fill(src, 0n, data);
    const readsBefore = rig.count(Op.Read16);
    const r = await new EsxHost().clone({ from: src, to: dst, lba: 0n, toLba: 0n, blocks });
    expect(r.outcome).toBe('done');
    expect(rig.count(Op.ExtendedCopy, 'passed')).toBe(2);
    expect(r.offloadedBlocks).toBe(2 * 8192);
    expect(r.softwareBlocks).toBe(3 * 8192);
    expect(r.fallbacks[0]).toMatchObject({ fromLba: String(2 * 8192), blocks: 3 * 8192 });
    const hostReads = rig.arrivals.filter((a) => a.op === Op.Read16).slice(readsBefore);
    expect(hostReads.length).toBe(3 * 8192 / 128);
    expect(hostReads.every((a) => a.lba >= 2n * 8192n)).toBe(true);
    expect((await readBack(dst, 0n, blocks)).equals(data)).toBe(true);
  });

  it('DataMover.HardwareAcceleratedMove=0: no EXTENDED COPY reaches the array', async () => {
    const { rig, src, dst } = await twoLus();
    const data = pattern(3000 * 512, 6);
    await fill(src, 0n, data);
    const r = await new EsxHost(settingsFrom(['DataMover.HardwareAcceleratedMove=0'])).clone({ from: src, to: dst, lba: 0n, toLba: 0n, blocks: 3000 });
    expect(rig.count(Op.ExtendedCopy)).toBe(0);
    expect(r.settings).toEqual(['DataMover.HardwareAcceleratedMove=0']);
    expect(r.fallbacks[0]).toMatchObject({ cause: 'setting', why: 'DataMover.HardwareAcceleratedMove=0' });
    expect(r.vaai.every((v) => v.Clone.status === 'unknown')).toBe(true);
    expect((await readBack(dst, 0n, 3000)).equals(data)).toBe(true);
  });

  it('an error that is not a fallback trigger (MEDIUM ERROR) fails the run instead of pretending', async () => {
    const { rig, src, dst } = await twoLus();
    rig.refuse(Op.ExtendedCopy, { reason: 'UnrecoveredReadError' });
    const r = await new EsxHost().clone({ from: src, to: dst, lba: 0n, toLba: 0n, blocks: 100 });
    expect(r.outcome).toBe('failed');
    expect(r.message).toContain('MEDIUM ERROR');
  });
});

describe('zero', () => {
  it('eager-zeroes with WRITE SAME: zeros inside, the block after untouched, Zero supported', async () => {
    const { rig, src } = await twoLus();
    const data = pattern(10001 * 512, 7);
    await fill(src, 0n, data);
    const r = await new EsxHost().zero({ to: src, lba: 0n, blocks: 10000 });
    expect(r).toMatchObject({ outcome: 'done', offloadedBlocks: 10000, softwareBlocks: 0, fallbacks: [] });
    expect(rig.count(Op.WriteSame16, 'passed')).toBe(2);
    expect(rig.count(Op.Write16) ).toBe(Math.ceil(10001 / 4096)); // only the fill
    expect((await readBack(src, 0n, 10000)).equals(Buffer.alloc(10000 * 512))).toBe(true);
    expect((await readBack(src, 10000n, 1)).equals(data.subarray(10000 * 512))).toBe(true);
    expect(r.vaai[0].Zero.status).toBe('supported');
  });

  it('without WRITE SAME (refused 05/20/00): writes zeros itself, Zero unsupported', async () => {
    const { rig, src } = await twoLus();
    rig.refuse(Op.WriteSame16, { reason: 'InvalidOpcode' });
    await fill(src, 0n, pattern(10000 * 512, 8));
    const r = await new EsxHost().zero({ to: src, lba: 0n, blocks: 10000 });
    expect(r).toMatchObject({ outcome: 'done', offloadedBlocks: 0, softwareBlocks: 10000 });
    expect(r.fallbacks[0]).toMatchObject({ primitive: 'Zero', cause: 'refused', fallback: 'WRITE of zeros (software data mover)' });
    expect(r.vaai[0].Zero).toMatchObject({ status: 'unsupported', source: 'observed' });
    expect((await readBack(src, 0n, 10000)).equals(Buffer.alloc(10000 * 512))).toBe(true);
  });

  it('DataMover.HardwareAcceleratedInit=0: no WRITE SAME reaches the array', async () => {
    const { rig, src } = await twoLus();
    await fill(src, 0n, pattern(300 * 512, 9));
    const r = await new EsxHost(settingsFrom(['DataMover.HardwareAcceleratedInit=0'])).zero({ to: src, lba: 0n, blocks: 300 });
    expect(rig.count(Op.WriteSame16)).toBe(0);
    expect(r.fallbacks[0]).toMatchObject({ cause: 'setting' });
    expect((await readBack(src, 0n, 300)).equals(Buffer.alloc(300 * 512))).toBe(true);
  });
});

describe('unmap', () => {
  it('offloaded: Delete supported; refused: Delete unsupported and nothing takes over (advisory)', async () => {
    const { rig, src } = await twoLus();
    const ok = await new EsxHost().unmap({ to: src, lba: 0n, blocks: 2048 });
    expect(ok).toMatchObject({ outcome: 'done', offloadedBlocks: 2048 });
    expect(ok.vaai[0].Delete.status).toBe('supported');
    rig.refuse(Op.Unmap, { reason: 'InvalidOpcode' });
    const host = new EsxHost();
    const no = await host.unmap({ to: src, lba: 0n, blocks: 2048 });
    expect(no).toMatchObject({ outcome: 'done', offloadedBlocks: 0, softwareBlocks: 0 });
    expect(no.fallbacks[0]).toMatchObject({ primitive: 'Delete', cause: 'refused' });
    expect(no.vaai[0].Delete.status).toBe('unsupported');
  });
});
