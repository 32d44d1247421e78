/**
 * The clients: one host per site (its own initiator name, so host proximity gives it its own
 * ALUA view), each with a multipath device over the arrays it is connected to (both in Active
 * Peer Persistence, its local one in Active Sync), running writers, readers and ATS incrementers until told to stop. Every
 * invocation and answer goes into the history; nothing is judged here.
 */
import { MultipathDevice } from '../initiator/multipath.ts';
import type { AttemptLog, MultipathResult, PathInfo, PathState } from '../initiator/multipath.ts';
import { describeResult } from '../initiator/result.ts';
import { BLOCK, counterBlock, counterOf, tagsOf, writeData } from './history.ts';
import type { History } from './history.ts';
import type { Rng } from './faults.ts';
import { prng } from './faults.ts';

export interface Layout {
  /** Blocks 0..dataBlocks-1 are the registers writers and readers share. */
  dataBlocks: number;
  /** ATS counters at counterBase, counterBase+1, … */
  counterBase: number;
  counters: number;
  maxBlocks: number;
}

export const LAYOUT: Layout = { dataBlocks: 512, counterBase: 4096, counters: 4, maxBlocks: 4 };

export interface HostSpec { name: string; site: string; initiator: string; paths: { name: string; url: string }[] }

export interface WorkloadOptions {
  writers: number;
  readers: number;
  incrementers: number;
  /** Operations per second per client at most (keeps a 30-minute history to tens of MB). */
  rate: number;
  seed: number;
  layout?: Layout;
  onPath?: (host: string, p: PathInfo, from: PathState, why: string) => void;
}

export class Workload {
  private stopping = false;
  private readonly loops: Promise<void>[] = [];
  readonly devices: MultipathDevice[] = [];
  readonly counts = { writes: 0, reads: 0, increments: 0, errors: 0 };

  constructor(readonly h: History, readonly o: WorkloadOptions) {}

  get layout(): Layout { return this.o.layout ?? LAYOUT; }

  async start(hosts: HostSpec[]): Promise<void> {
    let n = 0;
    for (const host of hosts) {
      const dev = await MultipathDevice.open(host.paths, {
        initiatorName: host.initiator, deadlineMs: 30000,
        onPath: (p, from, why) => this.o.onPath?.(host.name, p, from, why),
      });
      this.devices.push(dev);
      const client = (kind: string, i: number) => ({ name: `${host.name}-${kind}${i}`, site: host.site, rng: prng(this.o.seed * 7919 + ++n) });
      for (let i = 0; i < this.o.writers; i++) this.loops.push(this.writer(dev, client('w', i)));
      for (let i = 0; i < this.o.readers; i++) this.loops.push(this.reader(dev, client('r', i)));
      for (let i = 0; i < this.o.incrementers; i++) this.loops.push(this.incrementer(dev, client('ats', i)));
    }
  }

  /** Stop invoking; wait for every operation under way to end (each ends within its deadline). */
  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all(this.loops);
    await Promise.all(this.devices.map((d) => d.close()));
  }

  /** Wait out the rest of this client's time slot (1 / rate). */
  private async pace(started: number): Promise<void> {
    const left = 1000 / this.o.rate - (performance.now() - started);
    if (left > 0) await new Promise((r) => setTimeout(r, left));
  }

  private pickRange(rng: Rng): { lba: number; blocks: number } {
    const blocks = rng.int(1, this.layout.maxBlocks);
    return { lba: rng.int(0, this.layout.dataBlocks - blocks), blocks };
  }

  private async writer(dev: MultipathDevice, c: { name: string; site: string; rng: Rng }): Promise<void> {
    for (let seq = 1; !this.stopping; seq++) {
      const t0 = performance.now();
      const { lba, blocks } = this.pickRange(c.rng);
      const id = this.h.invoke({ client: c.name, site: c.site, op: 'write', lba, blocks, seq });
      const r = await dev.write(BigInt(lba), writeData(c.name, seq, lba, blocks));
      this.counts.writes++;
      if (r.kind === 'good') this.h.ok(id);
      else { this.counts.errors++; this.h.fail(id, why(r), true); }
      await this.pace(t0);
    }
  }

  private async reader(dev: MultipathDevice, c: { name: string; site: string; rng: Rng }): Promise<void> {
    while (!this.stopping) {
      const t0 = performance.now();
      const { lba, blocks } = this.pickRange(c.rng);
      const id = this.h.invoke({ client: c.name, site: c.site, op: 'read', lba, blocks });
      const r = await dev.read(BigInt(lba), blocks);
      this.counts.reads++;
      if (r.kind === 'good') this.h.ok(id, tagsOf(r.value, lba));
      else { this.counts.errors++; this.h.fail(id, why(r), false); }
      await this.pace(t0);
    }
  }

  /**
   * One increment: read the counter, COMPARE AND WRITE it with value + 1, again after a
   * MISCOMPARE (another host won). A MISCOMPARE after the multipath layer retried an attempt
   * that may have landed (AttemptLog.uncertain) may be our own write: the increment ends as
   * indeterminate (SBC-4 §5.3 gives the initiator no way to tell; VMFS reads back, but another
   * host may have incremented since).
   */
  private async incrementer(dev: MultipathDevice, c: { name: string; site: string; rng: Rng }): Promise<void> {
    for (let op = 1; !this.stopping; op++) {
      const t0 = performance.now();
      const lba = this.layout.counterBase + c.rng.int(0, this.layout.counters - 1);
      const id = this.h.invoke({ client: c.name, site: c.site, op: 'increment', lba, blocks: 1, seq: op });
      this.counts.increments++;
      let miscompares = 0;
      let attempted = false;
      for (;;) {
        const r = await dev.read(BigInt(lba), 1);
        if (r.kind !== 'good') { this.counts.errors++; this.h.fail(id, `read: ${why(r)}`, attempted); break; }
        const value = counterOf(r.value, lba);
        if (value === null) { this.h.fail(id, `LBA ${lba} does not hold a counter`, attempted); break; }
        const next = counterBlock(value + 1, lba, c.name, op);
        const t: AttemptLog = { attempts: 0, uncertain: 0 };
        const w = await dev.compareAndWrite(BigInt(lba), r.value, next, t);
        attempted = true;
        if (w.kind === 'good') { this.h.ok(id, value + 1, miscompares); break; }
        if (w.kind === 'check-condition' && w.sense?.key === 0x0e) {
          if (t.uncertain) { this.h.fail(id, `MISCOMPARE after ${t.uncertain} attempt(s) that may have landed`, true); break; }
          miscompares++;
          continue;
        }
        this.counts.errors++;
        this.h.fail(id, why(w), true);
        break;
      }
      await this.pace(t0);
    }
  }
}

function why(r: MultipathResult<unknown>): string {
  return r.kind === 'no-path' ? r.why : describeResult(r);
}

export { BLOCK };
