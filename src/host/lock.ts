/**
 * A VMFS-style on-disk lock: one block holding the owner and a heartbeat generation, taken,
 * renewed and freed with COMPARE AND WRITE (ATS, "hardware assisted locking"), or, when ATS is
 * refused or switched off, inside a SCSI reservation of the whole LU.
 *
 * Sources (shared/reference/vaai-fallback.md §1.2, §1.5 and the pages named here):
 * - ATS+SCSI volumes use ATS "and attempt to use it when possible. If ATS fails, the VMFS datastore
 *   reverts to SCSI reservations"; ATS-only volumes "never use SCSI reservations" (VMware 6.5/6.7
 *   "VMFS Locking Mechanisms", S15). An ATS-only volume on a host without ATS is not mounted:
 *   "ATS-Only VMFS Volume 'X' not mounted. Host does not support ATS or ATS initialization has
 *   failed." (S21); turning ATS off on one is an outage (KB 319797, S17).
 * - The reservations are SCSI-2 RESERVE(6)/RELEASE(6) of the whole LU: VMFS metadata locks "result
 *   in short-lived SCSI reservations. SCSI reservations lock an entire LUN" (vSphere 4.1 "Reducing
 *   SCSI Reservations"), and VMware KB 2030787 names third-party multipathing plug-ins "that
 *   convert SCSI-2 reservations to SCSI-3 reservations", i.e. ESXi's own are SCSI-2. Persistent
 *   reservations are what ESXi passes through for clustered VMs' RDMs, not what VMFS locks with.
 *   A RESERVATION CONFLICT is retried (KB 1005009 shows ESX counting its retries down, "Sync CR
 *   at 64 … at 0", before "Failing I/O due to too many reservation conflicts").
 * - An ATS MISCOMPARE (0E/1D/00) is the normal "someone else holds it" answer (S22). A miscompare on
 *   the host's own heartbeat when the block still holds what the host last wrote (a false
 *   miscompare) makes ESXi declare it lost access (KB 2113956 "ESXi host loses connectivity to a
 *   VMFS datastore", S18/S19): an outage, never a fallback to reservations ([inferred], §1.2).
 *
 * The on-disk record is this project's, not VMFS's: bytes 0-15 "ARRAYSIM-VMFSLCK", byte 16 state
 * (0 free, 1 held), bytes 17-24 the generation (u64 BE, +1 per write), bytes 32-95 the owner
 * (UTF-8, zero padded). An all-zero block is a free lock.
 */
import { ScsiStatus } from '../initiator/index.ts';
import type { ScsiDevice } from '../initiator/index.ts';
import { judge, sleep, withRetry } from './answers.ts';
import { Run } from './host.ts';
import type { EsxHost } from './host.ts';

const MAGIC = Buffer.from('ARRAYSIM-VMFSLCK');
const OWNER_AT = 32;
const OWNER_LEN = 64;

export interface LockRecord {
  held: boolean;
  generation: bigint;
  owner: string;
}

export function encodeLock(r: LockRecord, blockSize: number): Buffer {
  const b = Buffer.alloc(blockSize);
  MAGIC.copy(b, 0);
  b[16] = r.held ? 1 : 0;
  b.writeBigUInt64BE(r.generation, 17);
  const owner = Buffer.from(r.owner, 'utf8');
  if (owner.length > OWNER_LEN) throw new RangeError(`lock owner longer than ${OWNER_LEN} bytes`);
  owner.copy(b, OWNER_AT);
  return b;
}

/** The record in a block; an all-zero block is free; anything else that is not a lock record is refused. */
export function decodeLock(b: Buffer): LockRecord | null {
  if (b.subarray(0, 16).equals(MAGIC)) {
    const end = b.indexOf(0, OWNER_AT);
    return { held: b[16] === 1, generation: b.readBigUInt64BE(17), owner: b.subarray(OWNER_AT, end < 0 || end > OWNER_AT + OWNER_LEN ? OWNER_AT + OWNER_LEN : end).toString('utf8') };
  }
  return b.every((x) => x === 0) ? { held: false, generation: 0n, owner: '' } : null;
}

export type LockMode = 'ats' | 'scsi-reservation';

export type MountResult = { kind: 'mounted'; mode: LockMode; why?: string } | { kind: 'mount-failed'; message: string };
export type AcquireResult = { kind: 'acquired' } | { kind: 'held'; owner: string; generation: bigint } | { kind: 'failed'; message: string };
export type HeartbeatResult = { kind: 'ok'; generation: bigint } | { kind: 'outage'; message: string } | { kind: 'failed'; message: string };

/** How many times a RESERVE that met RESERVATION CONFLICT is sent again (KB 1005009 shows 80 on ESX 3/4; fewer here). */
export const RESERVE_RETRIES = 40;
export const RESERVE_RETRY_MS = 25;

export class VmfsLock {
  mode: LockMode | null = null;
  /** What this host last wrote to the lock block (the ATS compare image of the next heartbeat). */
  private image: Buffer | null = null;
  heartbeats = 0;

  constructor(
    readonly host: EsxHost,
    readonly dev: ScsiDevice,
    readonly lba: bigint,
    readonly o: { atsOnly?: boolean; volume?: string; owner?: string } = {},
  ) {}

  get owner(): string { return this.o.owner ?? this.host.name; }
  get volume(): string { return this.o.volume ?? `lock@${this.lba}`; }

  /**
   * Mount: choose the locking mode. With ATS allowed, "ATS initialization" is a test-and-set of the
   * lock block with its own contents (it changes nothing); a refusal marks ATS unsupported.
   */
  async mount(run: Run): Promise<MountResult> {
    const name = await this.host.vaai.look(this.dev);
    const notMounted = `ATS-Only VMFS Volume '${this.volume}' not mounted. Host does not support ATS or ATS initialization has failed.`;
    let why: string | undefined;
    if (this.host.settings['VMFS3.HardwareAcceleratedLocking'] === 0) {
      why = 'VMFS3.HardwareAcceleratedLocking=0';
    } else if (this.host.vaai.get(name, 'ATS').status === 'unsupported') {
      why = `ATS Status: unsupported (${this.host.vaai.get(name, 'ATS').why ?? ''})`;
    } else {
      for (let attempt = 0; attempt < 8; attempt++) {
        const cur = await this.readBlock(run);
        if (typeof cur === 'string') return { kind: 'mount-failed', message: cur };
        run.io.compareAndWrite++;
        const { v } = await withRetry(() => this.dev.compareAndWrite(this.lba, cur, cur), () => { run.io.compareAndWrite++; run.retry(); });
        if (v.kind === 'good') { this.host.vaai.observe(name, 'ATS', 'supported'); this.mode = 'ats'; return { kind: 'mounted', mode: 'ats' }; }
        if (v.kind === 'miscompare') continue; // another host wrote between our read and our ATS: read again
        if (v.kind === 'refused') { this.host.vaai.observe(name, 'ATS', 'unsupported', v.why); why = `COMPARE AND WRITE refused: ${v.why}`; break; }
        return { kind: 'mount-failed', message: `${this.o.atsOnly ? notMounted + ' ' : ''}ATS initialization: ${v.why}` };
      }
      if (!why) return { kind: 'mount-failed', message: `${this.o.atsOnly ? notMounted + ' ' : ''}ATS initialization kept miscomparing` };
    }
    if (this.o.atsOnly) return { kind: 'mount-failed', message: `${notMounted} (${why})` };
    run.fallbacks.push({ primitive: 'ATS', cause: why.startsWith('VMFS3') ? 'setting' : why.startsWith('ATS Status') ? 'unsupported' : 'refused', why, fromLba: this.lba.toString(), blocks: 1, fallback: 'SCSI-2 reservations (RESERVE(6)/RELEASE(6))' });
    this.mode = 'scsi-reservation';
    return { kind: 'mounted', mode: 'scsi-reservation', why };
  }

  async acquire(run: Run): Promise<AcquireResult> {
    if (!this.mode) throw new Error('mount first');
    if (this.mode === 'scsi-reservation') return this.underReservation(run, async (cur) => {
      if (cur.held && cur.owner !== this.owner) return { kind: 'held', owner: cur.owner, generation: cur.generation };
      const next = encodeLock({ held: true, generation: cur.generation + 1n, owner: this.owner }, cur.block.length);
      const w = await this.write(run, next);
      if (w) return { kind: 'failed', message: w };
      this.image = next;
      return { kind: 'acquired' };
    });
    const curBlock = await this.readBlock(run);
    if (typeof curBlock === 'string') return { kind: 'failed', message: curBlock };
    const cur = decodeLock(curBlock);
    if (!cur) return { kind: 'failed', message: `LBA ${this.lba} holds no lock record` };
    if (cur.held && cur.owner !== this.owner) return { kind: 'held', owner: cur.owner, generation: cur.generation };
    const next = encodeLock({ held: true, generation: cur.generation + 1n, owner: this.owner }, curBlock.length);
    run.io.compareAndWrite++;
    const { v } = await withRetry(() => this.dev.compareAndWrite(this.lba, curBlock, next), () => { run.io.compareAndWrite++; run.retry(); });
    if (v.kind === 'good') { this.image = next; return { kind: 'acquired' }; }
    if (v.kind === 'miscompare') {
      // Someone wrote the lock between our read and our ATS: it is theirs now (S22).
      const now = await this.readBlock(run);
      const rec = typeof now === 'string' ? null : decodeLock(now);
      return { kind: 'held', owner: rec?.owner || '(another host)', generation: rec?.generation ?? 0n };
    }
    return { kind: 'failed', message: `COMPARE AND WRITE: ${v.why}` };
  }

  /** Renew: the generation +1, compared against what this host last wrote. */
  async heartbeat(run: Run): Promise<HeartbeatResult> {
    if (!this.image) throw new Error('acquire first');
    const mine = this.image;
    const rec = decodeLock(mine)!;
    const next = encodeLock({ ...rec, generation: rec.generation + 1n }, mine.length);
    const lost = `Lost access to volume '${this.volume}'`;
    if (this.mode === 'scsi-reservation') {
      return this.underReservation(run, async (cur) => {
        if (!cur.block.equals(mine)) return { kind: 'outage', message: `${lost}: the lock block changed under our heartbeat (now ${cur.held ? `held by ${cur.owner}` : 'free'})` };
        const w = await this.write(run, next);
        if (w) return { kind: 'failed', message: w };
        this.image = next;
        this.heartbeats++;
        return { kind: 'ok', generation: rec.generation + 1n };
      });
    }
    run.io.compareAndWrite++;
    const { v } = await withRetry(() => this.dev.compareAndWrite(this.lba, mine, next), () => { run.io.compareAndWrite++; run.retry(); });
    if (v.kind === 'good') { this.image = next; this.heartbeats++; return { kind: 'ok', generation: rec.generation + 1n }; }
    if (v.kind === 'miscompare') {
      const now = await this.readBlock(run);
      if (typeof now === 'string') return { kind: 'outage', message: `${lost}: ATS miscompare on heartbeat, then ${now}` };
      if (now.equals(mine)) {
        return { kind: 'outage', message: `${lost}: ATS miscompare on heartbeat (${v.why}) although the block still holds this host's image: a false miscompare` };
      }
      const r = decodeLock(now);
      return { kind: 'outage', message: `${lost}: ATS miscompare on heartbeat: the lock is now ${r?.held ? `held by ${r.owner}` : 'not ours'}` };
    }
    return { kind: 'outage', message: `${lost}: heartbeat COMPARE AND WRITE: ${v.why}` };
  }

  async release(run: Run): Promise<{ kind: 'released' } | { kind: 'failed'; message: string }> {
    if (!this.image) return { kind: 'released' };
    const mine = this.image;
    const rec = decodeLock(mine)!;
    const free = encodeLock({ held: false, generation: rec.generation + 1n, owner: '' }, mine.length);
    if (this.mode === 'scsi-reservation') {
      const r = await this.underReservation(run, async (cur) => {
        if (!cur.block.equals(mine)) return { kind: 'failed' as const, message: 'the lock block is no longer ours' };
        const w = await this.write(run, free);
        return w ? { kind: 'failed' as const, message: w } : { kind: 'released' as const };
      });
      if (r.kind === 'released') this.image = null;
      return r;
    }
    run.io.compareAndWrite++;
    const { v } = await withRetry(() => this.dev.compareAndWrite(this.lba, mine, free), () => { run.io.compareAndWrite++; run.retry(); });
    if (v.kind === 'good') { this.image = null; return { kind: 'released' }; }
    return { kind: 'failed', message: `release: ${v.why}` };
  }

  private async readBlock(run: Run): Promise<Buffer | string> {
    run.io.read++;
    const { r, v } = await withRetry(() => this.dev.read(this.lba, 1), () => { run.io.read++; run.retry(); });
    return r.kind === 'good' ? Buffer.from(r.value) : `READ of the lock block: ${'why' in v ? v.why : 'no data'}`;
  }

  private async write(run: Run, b: Buffer): Promise<string | null> {
    run.io.write++;
    const { v } = await withRetry(() => this.dev.write(this.lba, b), () => { run.io.write++; run.retry(); });
    return v.kind === 'good' ? null : `WRITE of the lock block: ${'why' in v ? v.why : ''}`;
  }

  /** RESERVE(6), read the record, `f`, RELEASE(6). */
  private async underReservation<T extends { kind: string }>(run: Run, f: (cur: LockRecord & { block: Buffer }) => Promise<T | { kind: 'failed'; message: string }>): Promise<T | { kind: 'failed'; message: string }> {
    let reserved = false;
    for (let i = 0; i <= RESERVE_RETRIES; i++) {
      run.io.reserve++;
      const r = await this.dev.reserve6();
      if (r.kind === 'good') { reserved = true; break; }
      if (r.kind === 'status' && r.status === ScsiStatus.ReservationConflict) { run.retry(); await sleep(RESERVE_RETRY_MS); continue; }
      const v = judge(r);
      return { kind: 'failed', message: `RESERVE(6): ${'why' in v ? v.why : ''}` };
    }
    if (!reserved) return { kind: 'failed', message: `RESERVE(6): RESERVATION CONFLICT after ${RESERVE_RETRIES} retries (too many reservation conflicts)` };
    try {
      const b = await this.readBlock(run);
      if (typeof b === 'string') return { kind: 'failed', message: b };
      const rec = decodeLock(b);
      if (!rec) return { kind: 'failed', message: `LBA ${this.lba} holds no lock record` };
      return await f({ ...rec, block: b });
    } finally {
      run.io.release++;
      await this.dev.release6();
    }
  }
}

/**
 * The `host lock` verb: mount, acquire, heartbeat every `heartbeatMs` for `holdMs` (or, with
 * `until`, until it says so: the lab holds a lock through a day's work), release. `onHeartbeat`
 * hears each one that succeeded.
 */
export async function lockRun(host: EsxHost, dev: ScsiDevice, o: { lba: bigint; holdMs: number; heartbeatMs: number; atsOnly?: boolean; volume?: string; owner?: string; until?: () => boolean; onHeartbeat?: () => void }) {
  const run = new Run(host, 'lock');
  const bs = await dev.blockSize();
  const lock = new VmfsLock(host, dev, o.lba, o);
  const rep = (outcome: 'done' | 'held' | 'outage' | 'mount-failed' | 'failed', message: string, holder?: string) =>
    run.report({ outcome, message, devices: [dev], lba: o.lba, blocks: 1, blockSize: bs, lock: { mode: lock.mode ?? 'ats', owner: lock.owner, heartbeats: lock.heartbeats, ...(holder ? { holder } : {}) } });
  const m = await lock.mount(run);
  if (m.kind === 'mount-failed') return rep('mount-failed', m.message);
  const a = await lock.acquire(run);
  if (a.kind === 'held') return rep('held', `lock at LBA ${o.lba} is held by ${a.owner} (generation ${a.generation})`, a.owner);
  if (a.kind === 'failed') return rep('failed', a.message);
  const end = Date.now() + o.holdMs;
  while (o.until ? !o.until() : Date.now() < end) {
    await sleep(o.until ? o.heartbeatMs : Math.min(o.heartbeatMs, Math.max(0, end - Date.now())));
    const h = await lock.heartbeat(run);
    if (h.kind !== 'ok') return rep(h.kind, h.message);
    o.onHeartbeat?.();
  }
  const r = await lock.release(run);
  if (r.kind === 'failed') return rep('failed', r.message);
  return rep('done', `lock at LBA ${o.lba} acquired by ${lock.owner} with ${lock.mode === 'ats' ? 'ATS' : 'SCSI-2 reservations'}, ${lock.heartbeats} heartbeats, released`);
}
