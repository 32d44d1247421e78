/**
 * An ESXi host's VMFS data mover, against any iSCSI target, on the project's initiator. One
 * EsxHost is one booted host: its advanced settings (settings.ts) and its per-device VAAI status
 * table (vaai-status.ts) live as long as the object, as ESXi's live until a reboot.
 *
 * Clone: EXTENDED COPY in segments of MaxHWTransferSize (4 MiB by default), 8 in flight, the way
 * the VMkernel Data Mover moves 32 MB as 8 x 4 MB commands (reference §1.2, S5). Zero: WRITE
 * SAME(16) of a zero block, UNMAP=0, in the same segments. Fallback (the software data mover):
 * READ+WRITE or WRITE of zeros in 64 KiB I/Os, 32 in flight (S5).
 *
 * When an offload is refused (answers.ts) the primitive is marked unsupported for the device and
 * the rest of the range goes through the software path from where the offload stopped: segments
 * the array completed are not done again (S5: "the operation is not restarted").
 *
 * When the offload is tried again: not in this host's lifetime. An unsupported primitive stays
 * unsupported until `rebootVaaiStatus()` (a new `npx arraysim host` process is a new host). VMware
 * says vSphere 4.1 re-checks a failed device periodically, via a parameter the stored excerpt of
 * S5 cuts off before its name; the commonly quoted DataMover.HardwareAcceleratedMoveFrequency =
 * 16384 I/Os is confirmed by no source read, and nothing published describes 5.x and later. So no
 * published source backs "never again until reboot": it is the simplest rule consistent with
 * S3/S4 (status learnt by trying, unknown again after boot), chosen here and said as such.
 */
import type { ScsiDevice, ScsiResult } from '../initiator/index.ts';
import { withRetry } from './answers.ts';
import type { Fallback, IoCounts, Outcome, RunReport, Verb } from './report.ts';
import { zeroIo } from './report.ts';
import { changedSettings, DEFAULT_SETTINGS } from './settings.ts';
import type { HostSettings } from './settings.ts';
import { VaaiStatusTable } from './vaai-status.ts';
import type { Primitive } from './vaai-status.ts';

/** The software data mover's I/O (S5: 64 KB I/Os, 32 outstanding). */
export const SOFTWARE_IO_BYTES = 64 * 1024;
export const SOFTWARE_QUEUE_DEPTH = 32;
/** Offload commands in flight (S5: 32 MB as 8 x 4 MB XCOPY). */
export const OFFLOAD_QUEUE_DEPTH = 8;

export interface CloneRequest {
  from: ScsiDevice;
  to: ScsiDevice;
  lba: bigint;
  toLba: bigint;
  blocks: number;
}

export interface RangeRequest {
  to: ScsiDevice;
  lba: bigint;
  blocks: number;
}

/** One run's bookkeeping, turned into a RunReport at the end. */
export class Run {
  readonly io: IoCounts = zeroIo();
  readonly fallbacks: Fallback[] = [];
  offloadedBlocks = 0;
  softwareBlocks = 0;
  private readonly t0 = performance.now();
  constructor(readonly host: EsxHost, readonly verb: Verb) {}

  retry = (): void => { this.io.retried++; };

  async report(o: { outcome: Outcome; message: string; devices: ScsiDevice[]; lba: bigint; blocks: number; blockSize: number; lock?: RunReport['lock'] }): Promise<RunReport> {
    const names: string[] = [];
    for (const d of o.devices) { const n = await this.host.vaai.look(d); if (!names.includes(n)) names.push(n); }
    return {
      verb: this.verb, outcome: o.outcome, message: o.message, devices: names, settings: changedSettings(this.host.settings),
      lba: o.lba.toString(), blocks: o.blocks, blockSize: o.blockSize, offloadedBlocks: this.offloadedBlocks, softwareBlocks: this.softwareBlocks,
      fallbacks: this.fallbacks, io: this.io, elapsedMs: Math.round((performance.now() - this.t0) * 10) / 10,
      vaai: names.map((n) => this.host.vaai.status(n)), ...(o.lock ? { lock: o.lock } : {}),
    };
  }
}

export class EsxHost {
  readonly settings: HostSettings;
  readonly vaai = new VaaiStatusTable();

  constructor(settings: Partial<HostSettings> = {}, readonly name = 'esx-host') {
    this.settings = { ...DEFAULT_SETTINGS, ...settings };
  }

  /** What a reboot does to the VAAI status (S4): every device unknown again, so offloads are tried again. */
  rebootVaaiStatus(): void {
    this.vaai.reset();
  }

  /** Copy `blocks` blocks from `from` at `lba` to `to` at `toLba`, as a VMFS clone does. */
  async clone(req: CloneRequest): Promise<RunReport> {
    const run = new Run(this, 'clone');
    const { from, to, lba, toLba, blocks } = req;
    const bs = await from.blockSize();
    const report = (outcome: Outcome, message: string) => run.report({ outcome, message, devices: [from, to], lba, blocks, blockSize: bs });
    if ((await to.blockSize()) !== bs) return report('failed', `block sizes differ (${bs} and ${await to.blockSize()}): not cloned`);
    checkRange(blocks);
    const src = await this.vaai.look(from);
    const dst = await this.vaai.look(to);
    const seg = this.segmentBlocks(bs);
    const ranges = split(lba, blocks, seg);
    const gate = this.gate('Clone', 'DataMover.HardwareAcceleratedMove', [src, dst]);
    let o: OffloadOutcome = { done: ranges.map(() => false), refusal: null, error: null };
    if (gate === null) {
      o = await offload(ranges, 'EXTENDED COPY', () => { run.io.extendedCopy++; }, run,
        (at, n) => from.extendedCopy([{ from, to, sourceLba: at, destinationLba: toLba + (at - lba), blocks: n }]));
      if (o.refusal) for (const n of [src, dst]) this.vaai.observe(n, 'Clone', 'unsupported', o.refusal);
      else if (!o.error && ranges.length) for (const n of [src, dst]) this.vaai.observe(n, 'Clone', 'supported');
    }
    if (o.error) return report('failed', o.error);
    const rest = ranges.filter((_, i) => !o.done[i]);
    if (rest.length) {
      const cause = gate ?? { cause: 'refused' as const, why: o.refusal! };
      run.fallbacks.push({ primitive: 'Clone', ...cause, fromLba: rest[0][0].toString(), blocks: sum(rest), fallback: 'READ+WRITE (software data mover)' });
      const err = await this.softwareCopy(run, from, to, lba, toLba, rest);
      if (err) return report('failed', err);
    }
    const how = run.softwareBlocks === 0 ? 'offloaded by EXTENDED COPY' : run.offloadedBlocks === 0 ? 'copied by the host (READ+WRITE)' : `offloaded ${run.offloadedBlocks} blocks, then finished by the host from LBA ${rest[0][0]}`;
    return report('done', `${blocks} blocks cloned: ${how}`);
  }

  /** Eager-zero `blocks` blocks at `lba`, as creating an eagerzeroedthick disk does. */
  async zero(req: RangeRequest): Promise<RunReport> {
    const run = new Run(this, 'zero');
    const { to, lba, blocks } = req;
    const bs = await to.blockSize();
    const report = (outcome: Outcome, message: string) => run.report({ outcome, message, devices: [to], lba, blocks, blockSize: bs });
    checkRange(blocks);
    const name = await this.vaai.look(to);
    // The reference gives no WRITE SAME size for ESXi; the XCOPY segment is used, capped by the
    // device's MAXIMUM WRITE SAME LENGTH when it reports one (0 = no limit, SBC-4 §6.6.4).
    const maxWs = this.vaai.advertisedOf(name)?.maxWriteSameLength ?? 0n;
    const seg = maxWs > 0n && maxWs < BigInt(this.segmentBlocks(bs)) ? Number(maxWs) : this.segmentBlocks(bs);
    const ranges = split(lba, blocks, seg);
    const gate = this.gate('Zero', 'DataMover.HardwareAcceleratedInit', [name]);
    const zeroBlock = Buffer.alloc(bs);
    let o: OffloadOutcome = { done: ranges.map(() => false), refusal: null, error: null };
    if (gate === null) {
      o = await offload(ranges, 'WRITE SAME', () => { run.io.writeSame++; }, run, (at, n) => to.writeSame(at, n, zeroBlock));
      if (o.refusal) this.vaai.observe(name, 'Zero', 'unsupported', o.refusal);
      else if (!o.error && ranges.length) this.vaai.observe(name, 'Zero', 'supported');
    }
    if (o.error) return report('failed', o.error);
    const rest = ranges.filter((_, i) => !o.done[i]);
    if (rest.length) {
      const cause = gate ?? { cause: 'refused' as const, why: o.refusal! };
      run.fallbacks.push({ primitive: 'Zero', ...cause, fromLba: rest[0][0].toString(), blocks: sum(rest), fallback: 'WRITE of zeros (software data mover)' });
      const err = await this.softwareZero(run, to, rest);
      if (err) return report('failed', err);
    }
    const how = run.softwareBlocks === 0 ? 'by WRITE SAME' : run.offloadedBlocks === 0 ? 'by the host (WRITE of zeros)' : `${run.offloadedBlocks} blocks by WRITE SAME, the rest by the host`;
    return report('done', `${blocks} blocks zeroed ${how}`);
  }

  /**
   * Reclaim `blocks` blocks with UNMAP, as `esxcli storage vmfs unmap` does. UNMAP is advisory: a
   * refusal marks Delete unsupported and nothing takes over (the blocks stay allocated; their
   * contents are whatever they were). There is no advanced setting for it in this emulation.
   */
  async unmap(req: RangeRequest): Promise<RunReport> {
    const run = new Run(this, 'unmap');
    const { to, lba, blocks } = req;
    const bs = await to.blockSize();
    checkRange(blocks);
    const name = await this.vaai.look(to);
    const adv = this.vaai.advertisedOf(name);
    const max = adv?.maxUnmapLbaCount && adv.maxUnmapLbaCount < 0xffffffff ? adv.maxUnmapLbaCount : this.segmentBlocks(bs);
    const ranges = split(lba, blocks, Math.min(max, this.segmentBlocks(bs)));
    const prior = this.vaai.get(name, 'Delete');
    let o: OffloadOutcome = { done: ranges.map(() => false), refusal: null, error: null };
    if (prior.status !== 'unsupported') {
      o = await offload(ranges, 'UNMAP', () => { run.io.unmap++; }, run, (at, n) => to.unmap([{ lba: at, blocks: n }]));
      if (o.refusal) this.vaai.observe(name, 'Delete', 'unsupported', o.refusal);
      else if (!o.error && ranges.length) this.vaai.observe(name, 'Delete', 'supported');
    }
    const report = (outcome: Outcome, message: string) => run.report({ outcome, message, devices: [to], lba, blocks, blockSize: bs });
    if (o.error) return report('failed', o.error);
    const rest = ranges.filter((_, i) => !o.done[i]);
    if (rest.length) {
      const cause = prior.status === 'unsupported' ? { cause: 'unsupported' as const, why: prior.why ?? 'Delete Status: unsupported' } : { cause: 'refused' as const, why: o.refusal! };
      run.fallbacks.push({ primitive: 'Delete', ...cause, fromLba: rest[0][0].toString(), blocks: sum(rest), fallback: 'nothing (UNMAP is advisory: the blocks stay allocated)' });
    }
    return report('done', rest.length ? `${run.offloadedBlocks} of ${blocks} blocks unmapped; the rest left allocated` : `${blocks} blocks unmapped`);
  }

  /** XCOPY segment in blocks: MaxHWTransferSize KiB. */
  segmentBlocks(bs: number): number {
    return Math.max(1, Math.floor((this.settings['DataMover.MaxHWTransferSize'] * 1024) / bs));
  }

  /** Why the primitive will not be tried (the setting, or an earlier refusal), or null to try it. */
  private gate(p: Primitive, setting: keyof HostSettings, devices: string[]): Pick<Fallback, 'cause' | 'why'> | null {
    if (this.settings[setting] === 0) return { cause: 'setting', why: `${setting}=0` };
    for (const d of devices) {
      const s = this.vaai.get(d, p);
      if (s.status === 'unsupported') return { cause: 'unsupported', why: `${d} ${p} Status: unsupported (${s.source}${s.why ? `: ${s.why}` : ''})` };
    }
    return null;
  }

  private async softwareCopy(run: Run, from: ScsiDevice, to: ScsiDevice, lba: bigint, toLba: bigint, ranges: [bigint, number][]): Promise<string | null> {
    const bs = await from.blockSize();
    const ios = ranges.flatMap(([at, n]) => split(at, n, Math.max(1, SOFTWARE_IO_BYTES / bs)));
    let error: string | null = null;
    await runWindow(ios.length, SOFTWARE_QUEUE_DEPTH, async (i) => {
      const [at, n] = ios[i];
      run.io.read++;
      const { r, v } = await withRetry(() => from.read(at, n), () => { run.io.read++; run.retry(); });
      if (v.kind !== 'good' || r.kind !== 'good') { error ??= `READ at LBA ${at}: ${v.kind === 'good' ? 'no data' : v.why}`; return false; }
      run.io.write++;
      const w = await withRetry(() => to.write(toLba + (at - lba), r.value), () => { run.io.write++; run.retry(); });
      if (w.v.kind !== 'good') { error ??= `WRITE at LBA ${toLba + (at - lba)}: ${(w.v as { why: string }).why}`; return false; }
      run.softwareBlocks += n;
      return true;
    });
    return error;
  }

  private async softwareZero(run: Run, to: ScsiDevice, ranges: [bigint, number][]): Promise<string | null> {
    const bs = await to.blockSize();
    const per = Math.max(1, SOFTWARE_IO_BYTES / bs);
    const zeros = Buffer.alloc(per * bs);
    const ios = ranges.flatMap(([at, n]) => split(at, n, per));
    let error: string | null = null;
    await runWindow(ios.length, SOFTWARE_QUEUE_DEPTH, async (i) => {
      const [at, n] = ios[i];
      run.io.write++;
      const { v } = await withRetry(() => to.write(at, zeros.subarray(0, n * bs)), () => { run.io.write++; run.retry(); });
      if (v.kind !== 'good') { error ??= `WRITE at LBA ${at}: ${(v as { why: string }).why}`; return false; }
      run.softwareBlocks += n;
      return true;
    });
    return error;
  }
}

/** The outcome of sending one primitive over a list of ranges: which completed, the first refusal, the first error. */
interface OffloadOutcome {
  done: boolean[];
  refusal: string | null;
  error: string | null;
}

/**
 * Send `send(range)` for each range, OFFLOAD_QUEUE_DEPTH in flight. The first refusal or error
 * stops further issue; commands already in flight finish and their outcome is kept.
 */
async function offload(ranges: [bigint, number][], name: string, count: () => void, run: Run, send: (at: bigint, n: number) => Promise<ScsiResult<void>>): Promise<OffloadOutcome> {
  const o: OffloadOutcome = { done: new Array<boolean>(ranges.length).fill(false), refusal: null, error: null };
  await runWindow(ranges.length, OFFLOAD_QUEUE_DEPTH, async (i) => {
    const [at, n] = ranges[i];
    count();
    const { v } = await withRetry(() => send(at, n), () => { count(); run.retry(); });
    if (v.kind === 'good') { o.done[i] = true; run.offloadedBlocks += n; return true; }
    if (v.kind === 'refused') { o.refusal ??= v.why; return false; }
    o.error ??= `${name} at LBA ${at}: ${v.why}`;
    return false;
  });
  return o;
}

function checkRange(blocks: number): void {
  if (!Number.isSafeInteger(blocks) || blocks < 0) throw new RangeError(`blocks must be a whole number, got ${blocks}`);
}

function sum(ranges: [bigint, number][]): number {
  return ranges.reduce((a, [, n]) => a + n, 0);
}

/** [lba, blocks] pieces of at most `per` blocks. */
export function split(lba: bigint, blocks: number, per: number): [bigint, number][] {
  const out: [bigint, number][] = [];
  for (let o = 0; o < blocks; o += per) out.push([lba + BigInt(o), Math.min(per, blocks - o)]);
  return out;
}

/**
 * Run jobs 0..n-1 with at most `depth` in flight, in order of issue. A job returning false stops
 * further issue; jobs already in flight finish (their outcome is kept), as commands already sent
 * to an array complete whatever the host decides next.
 */
export async function runWindow(n: number, depth: number, job: (i: number) => Promise<boolean>): Promise<boolean> {
  let next = 0;
  let ok = true;
  const worker = async (): Promise<void> => {
    while (ok && next < n) {
      const i = next++;
      if (!(await job(i))) ok = false;
    }
  };
  await Promise.all(Array.from({ length: Math.min(depth, n) }, worker));
  return ok;
}
