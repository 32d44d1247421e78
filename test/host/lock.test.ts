/**
 * The VMFS-style lock between two hosts (two sessions, so two I_T nexuses) against the real
 * target: acquire / contend / heartbeat / release with ATS, an ATS miscompare read as "held by
 * another", a false miscompare on a heartbeat reported as an outage, the fallback to SCSI-2
 * reservations when ATS is refused or switched off, and the ATS-only volume that then fails to mount.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { EsxHost, Run } from '../../src/host/host.ts';
import { decodeLock, encodeLock, lockRun, VmfsLock } from '../../src/host/lock.ts';
import { settingsFrom } from '../../src/host/settings.ts';
import { deviceName } from '../../src/host/vaai-status.ts';
import { Op, readBack, startHostRig } from './rig.ts';
import type { HostRig } from './rig.ts';

let rig: HostRig | undefined;
afterEach(async () => { await rig?.close(); rig = undefined; });

const LBA = 64n;

async function twoHosts(sets: string[] = [], o: { atsOnly?: boolean } = {}) {
  rig = await startHostRig({ luns: 1 });
  const a = new EsxHost(settingsFrom(sets), 'esx-a');
  const b = new EsxHost(settingsFrom(sets), 'esx-b');
  const da = await rig.open(0);
  const db = await rig.open(0);
  const la = new VmfsLock(a, da, LBA, { ...o, volume: 'datastore1' });
  const lb = new VmfsLock(b, db, LBA, { ...o, volume: 'datastore1' });
  return { rig, a, b, da, db, la, lb, ra: new Run(a, 'lock'), rb: new Run(b, 'lock') };
}

describe('lock record', () => {
  it('round trips; an all-zero block is free; other data is not a lock', () => {
    const b = encodeLock({ held: true, generation: 7n, owner: 'esx-a' }, 512);
    expect(decodeLock(b)).toEqual({ held: true, generation: 7n, owner: 'esx-a' });
    expect(decodeLock(Buffer.alloc(512))).toEqual({ held: false, generation: 0n, owner: '' });
    expect(decodeLock(Buffer.alloc(512, 1))).toBeNull();
  });
});

describe('ATS locking', () => {
  it('acquire, contend, heartbeat, release between two hosts', async () => {
    const { rig, da, la, lb, ra, rb } = await twoHosts();
    expect(await la.mount(ra)).toEqual({ kind: 'mounted', mode: 'ats' });
    expect(await lb.mount(rb)).toEqual({ kind: 'mounted', mode: 'ats' });
    expect(await la.acquire(ra)).toEqual({ kind: 'acquired' });
    expect(await lb.acquire(rb)).toMatchObject({ kind: 'held', owner: 'esx-a' });
    const gen0 = decodeLock(await readBack(da, LBA, 1))!.generation;
    expect(await la.heartbeat(ra)).toEqual({ kind: 'ok', generation: gen0 + 1n });
    expect(await la.heartbeat(ra)).toEqual({ kind: 'ok', generation: gen0 + 2n });
    expect(decodeLock(await readBack(da, LBA, 1))).toEqual({ held: true, generation: gen0 + 2n, owner: 'esx-a' });
    expect(await la.release(ra)).toEqual({ kind: 'released' });
    expect(decodeLock(await readBack(da, LBA, 1))!.held).toBe(false);
    expect(await lb.acquire(rb)).toEqual({ kind: 'acquired' });
    expect(rig.count(Op.Reserve6)).toBe(0);
    expect(ra.io.compareAndWrite).toBe(5); // mount, acquire, 2 heartbeats, release
  });

  it('an ATS miscompare on acquire means another host took it (B read the lock free just before A took it)', async () => {
    const { rig, db, la, lb, ra, rb } = await twoHosts();
    await la.mount(ra);
    await lb.mount(rb);
    // B's read of the lock block returns the free image it saw a moment earlier; A then takes the lock.
    const realRead = db.read.bind(db);
    let stale = true;
    db.read = (async (...args: Parameters<typeof db.read>) => {
      const r = await realRead(...args);
      if (stale && r.kind === 'good') { stale = false; await la.acquire(ra); return { ...r, value: Buffer.alloc(512) }; }
      return r;
    }) as typeof db.read;
    const res = await lb.acquire(rb);
    expect(res).toMatchObject({ kind: 'held', owner: 'esx-a' });
    expect(rig.arrivals.filter((x) => x.op === Op.CompareAndWrite).length).toBeGreaterThanOrEqual(4);
    expect(rb.fallbacks).toEqual([]); // a miscompare is not a reason to use reservations
    expect(rig.count(Op.Reserve6)).toBe(0);
  });

  it('a false miscompare on a heartbeat is an outage, not a fallback; a real steal is an outage naming the new holder', async () => {
    const { rig, da, la, ra } = await twoHosts();
    await la.mount(ra);
    await la.acquire(ra);
    const before = await readBack(da, LBA, 1);
    rig.falseMiscompare(1);
    const h = await la.heartbeat(ra);
    expect(h.kind).toBe('outage');
    expect((h as { message: string }).message).toMatch(/^Lost access to volume 'datastore1': ATS miscompare on heartbeat .* a false miscompare/);
    expect((await readBack(da, LBA, 1)).equals(before)).toBe(true);
    expect(rig.count(Op.Reserve6)).toBe(0);
    // Negative control: the same heartbeat after someone really wrote the lock is a different outage.
    await da.write(LBA, encodeLock({ held: true, generation: 99n, owner: 'esx-thief' }, 512));
    const h2 = await la.heartbeat(ra);
    expect(h2).toEqual({ kind: 'outage', message: "Lost access to volume 'datastore1': ATS miscompare on heartbeat: the lock is now held by esx-thief" });
  });

  it('the lock verb reports the outage (outcome outage) with its heartbeat count', async () => {
    rig = await startHostRig({ luns: 1 });
    const d = await rig.open(0);
    const r = rig;
    // Armed once mount, acquire and two heartbeats have reached the array: the third heartbeat gets it.
    const arm = setInterval(() => { if (r.count(Op.CompareAndWrite) >= 4) { clearInterval(arm); r.falseMiscompare(1); } }, 5);
    const rep = await lockRun(new EsxHost({}, 'esx-a'), d, { lba: LBA, holdMs: 2000, heartbeatMs: 50, volume: 'ds' });
    expect(rep.outcome).toBe('outage');
    expect(rep.message).toContain('false miscompare');
    expect(rep.lock!.heartbeats).toBeGreaterThanOrEqual(2);
  });
});

describe('SCSI reservation fallback', () => {
  it('ATS refused (05/20/00) on an ATS+SCSI volume: RESERVE(6)/RELEASE(6) around the lock block, contention still seen', async () => {
    const { rig, da, la, lb, ra, rb } = await twoHosts();
    rig.refuse(Op.CompareAndWrite, { reason: 'InvalidOpcode' });
    expect(await la.mount(ra)).toMatchObject({ kind: 'mounted', mode: 'scsi-reservation' });
    expect(ra.fallbacks[0]).toMatchObject({ primitive: 'ATS', cause: 'refused', fallback: 'SCSI-2 reservations (RESERVE(6)/RELEASE(6))' });
    expect(ra.fallbacks[0].why).toContain('InvalidOpcode');
    expect((await lb.mount(rb)).kind).toBe('mounted');
    expect(await la.acquire(ra)).toEqual({ kind: 'acquired' });
    expect(await lb.acquire(rb)).toMatchObject({ kind: 'held', owner: 'esx-a' });
    expect(await la.heartbeat(ra)).toMatchObject({ kind: 'ok' });
    expect(await la.release(ra)).toEqual({ kind: 'released' });
    expect(await lb.acquire(rb)).toEqual({ kind: 'acquired' });
    expect(rig.count(Op.Reserve6, 'passed')).toBe(rig.count(Op.Release6, 'passed'));
    expect(rig.count(Op.Reserve6, 'passed')).toBe(5);
    expect(decodeLock(await readBack(da, LBA, 1))).toMatchObject({ held: true, owner: 'esx-b' });
    expect(ra.host.vaai.status(await deviceName(da)).ATS).toMatchObject({ status: 'unsupported', source: 'observed' });
  });

  it('a RESERVE that meets RESERVATION CONFLICT is retried until the other host releases', async () => {
    const { da, lb, rb } = await twoHosts(['VMFS3.HardwareAcceleratedLocking=0']);
    expect((await da.reserve6()).kind).toBe('good'); // host A holds the LU reserved for a moment
    setTimeout(() => void da.release6(), 150);
    await lb.mount(rb);
    expect(await lb.acquire(rb)).toEqual({ kind: 'acquired' });
    expect(rb.io.retried).toBeGreaterThan(0);
    expect(rb.io.reserve).toBe(rb.io.retried + 1);
  });

  it('VMFS3.HardwareAcceleratedLocking=0: no COMPARE AND WRITE reaches the array', async () => {
    const { rig, la, ra } = await twoHosts(['VMFS3.HardwareAcceleratedLocking=0']);
    expect(await la.mount(ra)).toMatchObject({ kind: 'mounted', mode: 'scsi-reservation', why: 'VMFS3.HardwareAcceleratedLocking=0' });
    expect(await la.acquire(ra)).toEqual({ kind: 'acquired' });
    expect(await la.release(ra)).toEqual({ kind: 'released' });
    expect(rig.count(Op.CompareAndWrite)).toBe(0);
    expect(ra.fallbacks[0]).toMatchObject({ cause: 'setting' });
  });
});

describe('ATS-only volume', () => {
  it('ATS refused: the volume is not mounted, in ESXi\'s words, and no reservation is taken', async () => {
    const { rig, la, ra } = await twoHosts([], { atsOnly: true });
    rig.refuse(Op.CompareAndWrite, { reason: 'InvalidOpcode' });
    const m = await la.mount(ra);
    expect(m.kind).toBe('mount-failed');
    expect((m as { message: string }).message).toMatch(/^ATS-Only VMFS Volume 'datastore1' not mounted\. Host does not support ATS or ATS initialization has failed\./);
    expect(rig.count(Op.Reserve6)).toBe(0);
  });

  it('with VMFS3.HardwareAcceleratedLocking=0 the ATS-only volume is not mounted either; the lock verb says mount-failed', async () => {
    rig = await startHostRig({ luns: 1 });
    const d = await rig.open(0);
    const rep = await lockRun(new EsxHost(settingsFrom(['VMFS3.HardwareAcceleratedLocking=0'])), d, { lba: LBA, holdMs: 0, heartbeatMs: 100, atsOnly: true, volume: 'ds1' });
    expect(rep.outcome).toBe('mount-failed');
    expect(rep.message).toContain('ATS initialization has failed');
    expect(rep.message).toContain('VMFS3.HardwareAcceleratedLocking=0');
    expect(rig.count(Op.CompareAndWrite)).toBe(0);
  });
});

