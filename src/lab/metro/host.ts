/**
 * One host of the metro lab: a multipath device (src/initiator/multipath.ts) over its paths to
 * both arrays, writing continuously, one block per write, each block naming the host, its
 * sequence number and its LBA, each LBA written once. It records every acknowledgement and every
 * failure, so the runner can say whether the host lost I/O, for how long, and read back every
 * acknowledged block at the end.
 */
import { MultipathDevice } from '../../initiator/multipath.ts';
import type { PathState } from '../../initiator/multipath.ts';

export const BLOCK = 512;
const MAGIC = 'ASIMETRO';

export function blockFor(host: string, seq: number, lba: number): Buffer {
  const b = Buffer.alloc(BLOCK, 0x5a);
  b.write(`${MAGIC} ${host} ${seq} ${lba}\n`, 0, 'latin1');
  return b;
}

export interface WriteFailure { t: number; seq: number; why: string }

export class LabHost {
  readonly acked: { seq: number; lba: number; t: number }[] = [];
  readonly failures: WriteFailure[] = [];
  /** In flight: started, not yet answered (its start time). */
  pendingSince: number | null = null;
  private seq = 0;
  private running = false;
  private loop: Promise<void> | null = null;

  /** The host is down (a data center failure): it has no paths and does no I/O. */
  crashed = false;

  private constructor(
    readonly name: string,
    readonly firstLba: number,
    /** The arrays this host is cabled to (its paths' names): both with uniform connectivity, its local one with Active Sync. */
    readonly cabled: readonly string[],
    private dev: MultipathDevice,
    private readonly clock: () => number,
    private readonly reopen: () => Promise<MultipathDevice>,
  ) {}

  static async open(name: string, initiator: string, paths: { name: string; url: string }[], firstLba: number, clock: () => number, o: { deadlineMs: number; onPath?: (line: string) => void }): Promise<LabHost> {
    const open = () => MultipathDevice.open(paths, {
      initiatorName: initiator, deadlineMs: o.deadlineMs, commandTimeoutMs: Math.min(o.deadlineMs, 5000), pathCheckMs: 500,
      onPath: (p, from, why) => o.onPath?.(`${(clock() / 1000).toFixed(1)}s ${name} path ${p.name} ${from} -> ${p.state} (${why})`),
    });
    return new LabHost(name, firstLba, paths.map((p) => p.name), await open(), clock, open);
  }

  /** Path name → ALUA state as this host last saw it (none while it is down). */
  paths(): Record<string, PathState> {
    if (this.crashed) return {};
    return Object.fromEntries(this.dev.info().map((p) => [p.name, p.state]));
  }

  /** The host fails (alone, or with its site): its I/O stops (recorded as a failure) and its sessions drop. */
  async crash(why = 'the host is down (its data center failed)'): Promise<void> {
    this.crashed = true;
    this.running = false;
    this.failures.push({ t: this.clock(), seq: this.seq, why });
    await this.dev.close().catch(() => {});
    await this.loop;
  }

  /** The host is back (the cluster restarts its VMs): log in again and write on. */
  async restart(): Promise<void> {
    this.dev = await this.reopen();
    this.crashed = false;
    this.start();
  }

  /** The host loses its path to one array (a cable, a port, a zone): multipath fails it. */
  losePath(array: string): Promise<void> { return this.dev.failPath(array, 'host disconnected from this array'); }

  /** The path is back: multipath logs in on it again. */
  regainPath(array: string): Promise<void> { return this.dev.reinstatePath(array); }

  start(): void {
    this.running = true;
    this.loop = (async () => {
      while (this.running) {
        const seq = this.seq++;
        const lba = this.firstLba + seq;
        this.pendingSince = this.clock();
        const r = await this.dev.write(BigInt(lba), blockFor(this.name, seq, lba));
        this.pendingSince = null;
        if (r.kind === 'good') this.acked.push({ seq, lba, t: this.clock() });
        else this.failures.push({ t: this.clock(), seq, why: r.kind === 'no-path' ? r.why : JSON.stringify(r) });
        await new Promise((res) => setTimeout(res, 20));
      }
    })();
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
  }

  /** Acknowledged blocks whose content is not what was written (read back through this host's paths). */
  async readBack(): Promise<{ checked: number; lost: { lba: number; seq: number; got: string }[] }> {
    const lost: { lba: number; seq: number; got: string }[] = [];
    for (const w of this.acked) {
      const r = await this.dev.read(BigInt(w.lba), 1);
      const want = blockFor(this.name, w.seq, w.lba);
      if (r.kind !== 'good') lost.push({ ...w, got: r.kind === 'no-path' ? `no path: ${r.why}` : JSON.stringify(r) });
      else if (!r.value.equals(want)) lost.push({ ...w, got: r.value.subarray(0, 40).toString('latin1').replace(/\0/g, '.') });
    }
    return { checked: this.acked.length, lost };
  }

  /** Longest time without an acknowledgement inside [from, to] (ms): the measured RTO. */
  longestGap(from: number, to: number): number {
    let last = from;
    let gap = 0;
    for (const a of this.acked) {
      if (a.t < from) continue;
      if (a.t > to) break;
      gap = Math.max(gap, a.t - last);
      last = a.t;
    }
    return Math.max(gap, to - last);
  }

  close(): Promise<void> { return this.dev.close(); }
}
