/**
 * A small multipath device over the project's initiator: one LU reached through several iSCSI
 * paths (one session each, e.g. one per array of a replicated pair exporting the same NAA), with
 * a path policy that follows ALUA the way dm-multipath's `alua` prioritizer and
 * `failover`/`group_by_prio` grouping do:
 *
 * - each path's target port group comes from VPD 0x83 (SPC-5 §7.7.6.7, designator type 5) and
 *   its state from REPORT TARGET PORT GROUPS (SPC-5 §6.36) asked on that path (host proximity
 *   makes the state per initiator, so it is asked as this host);
 * - I/O goes to an active/optimized path, else an active/non-optimized one; standby, unavailable,
 *   offline and transitioning paths get none;
 * - a UNIT ATTENTION (SAM-5 §5.14; 2A/06 ASYMMETRIC ACCESS STATE CHANGED, 29/xx resets,
 *   3F/0E REPORTED LUNS DATA HAS CHANGED) re-reads the path's state and retries the command;
 * - NOT READY 04/0A (transitioning, SPC-5 §5.16.2.6) waits and retries; 04/0B standby,
 *   04/0C unavailable, 04/12 offline (SPC-5 §5.16.2.4) mark the path and retry on another;
 *   other NOT READY, ABORTED COMMAND, BUSY and TASK SET FULL retry (elsewhere when there is
 *   an elsewhere); a lost connection marks the path down and it is logged in again behind
 *   the I/O's back;
 * - any other answer (GOOD, MISCOMPARE, ILLEGAL REQUEST …) is the command's answer.
 *
 * An operation is retried until it gets an answer or `deadlineMs` passes; then it fails with
 * `no-path`. For a write, a failure is indeterminate: an attempt may have landed.
 */
import { SenseKey } from '../../protocol/scsi/sense.ts';
import { Association, DesignatorType } from '../../protocol/scsi/vpd.ts';
import { ScsiDevice } from './device.ts';
import { InitiatorError } from './errors.ts';
import { ScsiCommandError, describeResult } from './result.ts';
import type { ScsiResult } from './result.ts';

export type PathState = 'active/optimized' | 'active/non-optimized' | 'standby' | 'unavailable' | 'offline' | 'transitioning' | 'down';

export interface PathInfo {
  name: string;
  url: string;
  state: PathState;
  /** Target port group of the path's port (VPD 0x83), once known. */
  tpg: number | null;
}

/** What a multipath operation ends with: the command's answer, or no path answered in time. */
export type MultipathResult<T> = ScsiResult<T> | { kind: 'no-path'; why: string };

export interface MultipathOptions {
  initiatorName: string;
  /** Stop retrying an operation after this long (ms); default 60 s. */
  deadlineMs?: number;
  /** Per attempt (ms); default 20 s. */
  commandTimeoutMs?: number;
  /** Re-read every path's ALUA state this often, as multipathd's path checker does (ms; default 1000, 0: never). */
  pathCheckMs?: number;
  /** Every change of a path's state, with the reason (failover, ALUA change, path lost or back). */
  onPath?: (p: PathInfo, from: PathState, why: string) => void;
}

const RETRY_MS = 50;
const RECONNECT_MS = 250;

/**
 * Filled in by an operation: attempts made, and how many of them ended in a way that does not say
 * whether the command took effect (ABORTED COMMAND, BUSY, a lost connection) before a retry.
 * UNIT ATTENTION and the ALUA NOT READY answers say it did not (SAM-5 §5.14, SPC-5 §5.16.2.4).
 */
export interface AttemptLog { attempts: number; uncertain: number }

interface Path extends PathInfo {
  device: ScsiDevice | null;
  refreshing: Promise<void> | null;
  connecting: boolean;
  /** Failed by the host (failPath): no session, no login, until reinstatePath. */
  held: boolean;
}

/** How the policy reads one answer. */
type Verdict = 'answer' | 'refresh-retry' | 'wait-retry' | 'failover' | 'retry';

/** The policy as one table over sense key / ASC / ASCQ (SPC-5 Annex F names). */
export function verdict(r: ScsiResult<unknown>): { verdict: Verdict; state?: PathState } {
  if (r.kind === 'good') return { verdict: 'answer' };
  if (r.kind === 'status') return r.name === 'BUSY' || r.name === 'TASK SET FULL' || r.name === 'TASK ABORTED' ? { verdict: 'retry' } : { verdict: 'answer' };
  const s = r.sense;
  if (!s) return { verdict: 'retry' };
  if (s.key === SenseKey.UnitAttention) return { verdict: 'refresh-retry' };
  if (s.key === SenseKey.NotReady && s.asc === 0x04) {
    if (s.ascq === 0x0a) return { verdict: 'wait-retry', state: 'transitioning' };
    if (s.ascq === 0x0b) return { verdict: 'failover', state: 'standby' };
    if (s.ascq === 0x0c) return { verdict: 'failover', state: 'unavailable' };
    if (s.ascq === 0x12) return { verdict: 'failover', state: 'offline' };
    return { verdict: 'retry' };
  }
  if (s.key === SenseKey.NotReady || s.key === SenseKey.AbortedCommand) return { verdict: 'retry' };
  return { verdict: 'answer' };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const USABLE: PathState[] = ['active/optimized', 'active/non-optimized'];

export class MultipathDevice {
  readonly paths: Path[];
  private closed = false;
  private next = 0;
  private checker: NodeJS.Timeout | null = null;

  private constructor(urls: { name: string; url: string }[], readonly lun: number, readonly o: MultipathOptions) {
    this.paths = urls.map((u) => ({ ...u, state: 'down', tpg: null, device: null, refreshing: null, connecting: false, held: false }));
    // A path that gets no I/O (standby, unavailable) hears of its return to active only when asked.
    const every = o.pathCheckMs ?? 1000;
    if (every > 0) {
      this.checker = setInterval(() => { for (const p of this.paths) if (p.device) void this.refresh(p, 'path checker'); }, every);
      this.checker.unref();
    }
  }

  /** Log in on every path that answers (the others keep trying in the background). */
  static async open(urls: { name: string; url: string }[], o: MultipathOptions): Promise<MultipathDevice> {
    const m = new MultipathDevice(urls, 0, o);
    await Promise.all(m.paths.map((p) => m.connect(p)));
    return m;
  }

  info(): PathInfo[] { return this.paths.map(({ name, url, state, tpg }) => ({ name, url, state, tpg })); }

  read(lba: bigint, blocks: number, t?: AttemptLog): Promise<MultipathResult<Buffer>> {
    return this.exec((d) => d.read(lba, blocks, { timeoutMs: this.o.commandTimeoutMs ?? 20000 }), t);
  }

  write(lba: bigint, data: Buffer, t?: AttemptLog): Promise<MultipathResult<void>> {
    return this.exec((d) => d.write(lba, data, { timeoutMs: this.o.commandTimeoutMs ?? 20000 }), t);
  }

  /** COMPARE AND WRITE; `t.uncertain` > 0 means an earlier attempt may have landed (then a MISCOMPARE may be its own write). */
  compareAndWrite(lba: bigint, compare: Buffer, write: Buffer, t?: AttemptLog): Promise<MultipathResult<void>> {
    return this.exec((d) => d.compareAndWrite(lba, compare, write, { timeoutMs: this.o.commandTimeoutMs ?? 20000 }), t);
  }

  /**
   * Take one path out of use, as `multipathd fail path` does or a host does when it loses a cable
   * or a port (the HPE paper's host disconnect): its session is logged out, commands in flight
   * on it end and are retried on the other paths, and it is not logged in again until
   * reinstatePath.
   */
  async failPath(name: string, why = 'path failed by the host'): Promise<void> {
    const p = this.path(name);
    p.held = true;
    const d = p.device;
    p.device = null;
    this.mark(p, 'down', why);
    await d?.close().catch(() => {});
  }

  /** `multipathd reinstate path`: log in on a failed path again (resolves once it answers or the device closes). */
  reinstatePath(name: string): Promise<void> {
    const p = this.path(name);
    p.held = false;
    return this.connect(p);
  }

  private path(name: string): Path {
    const p = this.paths.find((x) => x.name === name);
    if (!p) throw new Error(`no path ${name} (have ${this.paths.map((x) => x.name).join(', ')})`);
    return p;
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.checker) clearInterval(this.checker);
    await Promise.all(this.paths.map((p) => p.device?.close().catch(() => {})));
  }

  // ------------------------------------------------------------ the policy

  private pick(): Path | null {
    for (const want of USABLE) {
      const c = this.paths.filter((p) => p.device && p.state === want);
      if (c.length) return c[this.next++ % c.length];
    }
    return null;
  }

  private async exec<T>(f: (d: ScsiDevice) => Promise<ScsiResult<T>>, t: AttemptLog = { attempts: 0, uncertain: 0 }): Promise<MultipathResult<T>> {
    const end = Date.now() + (this.o.deadlineMs ?? 60000);
    let last = 'no usable path';
    while (!this.closed && Date.now() < end) {
      const p = this.pick();
      if (!p) {
        // Nothing usable: re-read every connected path's state (a UA may be waiting there).
        await Promise.all(this.paths.filter((x) => x.device).map((x) => this.refresh(x, 'no usable path')));
        if (!this.pick()) await sleep(RETRY_MS * 2);
        continue;
      }
      const d = p.device!;
      let r: ScsiResult<T>;
      t.attempts++;
      try {
        r = await f(d);
      } catch (e) {
        // A device method that sizes its transfer (READ CAPACITY) first throws that command's result.
        if (e instanceof ScsiCommandError) r = e.result as ScsiResult<T>;
        else if (e instanceof InitiatorError) { t.uncertain++; last = `${p.name}: ${e.message}`; this.lost(p, d, e.message); continue; }
        else throw e;
      }
      const v = verdict(r);
      switch (v.verdict) {
        case 'answer': return r;
        case 'refresh-retry': last = `${p.name}: ${describeResult(r)}`; await this.refresh(p, describeResult(r)); break;
        case 'wait-retry': last = `${p.name}: ${describeResult(r)}`; this.mark(p, v.state!, describeResult(r)); await sleep(RETRY_MS); void this.refresh(p, 'after transitioning'); break;
        case 'failover': last = `${p.name}: ${describeResult(r)}`; this.mark(p, v.state!, describeResult(r)); break;
        case 'retry': t.uncertain++; last = `${p.name}: ${describeResult(r)}`; await sleep(RETRY_MS); break;
      }
    }
    return { kind: 'no-path', why: this.closed ? 'device closed' : `gave up after ${this.o.deadlineMs ?? 60000} ms: ${last}` };
  }

  private mark(p: Path, state: PathState, why: string): void {
    if (p.state === state || (this.closed && state !== 'down')) return;
    const from = p.state;
    p.state = state;
    this.o.onPath?.({ name: p.name, url: p.url, state, tpg: p.tpg }, from, why);
  }

  // ------------------------------------------------------------ paths

  private lost(p: Path, d: ScsiDevice, why: string): void {
    if (p.device !== d) return;
    p.device = null;
    void d.close().catch(() => {});
    this.mark(p, 'down', why);
    void this.connect(p);
  }

  /** Log in on a path (again and again until it answers or the device closes). */
  private async connect(p: Path): Promise<void> {
    if (p.connecting) return;
    p.connecting = true;
    try {
      while (!this.closed && !p.device && !p.held) {
        let d: ScsiDevice | null = null;
        try {
          d = await ScsiDevice.open(p.url, { initiatorName: this.o.initiatorName, commandTimeoutMs: this.o.commandTimeoutMs ?? 20000 });
          if (this.closed || p.held) { await d.close().catch(() => {}); return; }
          const dev = d;
          d.session.onClose = (e) => this.lost(p, dev, e.message);
          await d.clearUnitAttentions();
          const id = await d.deviceIdentification();
          const tpg = id.kind === 'good' ? id.value.designators.find((x) => x.type === DesignatorType.TargetPortGroup && x.association === Association.TargetPort) : undefined;
          p.tpg = tpg ? tpg.value.readUInt16BE(2) : null;
          p.device = d;
          await d.readCapacity16().catch(() => undefined); // caches the block size when the path serves
          await this.refresh(p, 'logged in');
        } catch {
          // Logged in but lost during the first commands: drop that session before the next try.
          if (d && p.device !== d) await d.close().catch(() => {});
          await sleep(RECONNECT_MS);
        }
      }
    } finally {
      p.connecting = false;
    }
  }

  /** Re-read this path's ALUA state with REPORT TARGET PORT GROUPS (one at a time per path). */
  private refresh(p: Path, why: string): Promise<void> {
    if (p.refreshing) return p.refreshing;
    const run = async () => {
      const d = p.device;
      if (!d) return;
      for (let i = 0; i < 8; i++) {
        let r;
        try { r = await d.reportTargetPortGroups(); } catch (e) {
          if (e instanceof InitiatorError) this.lost(p, d, e.message);
          return;
        }
        if (r.kind === 'check-condition' && r.sense?.key === SenseKey.UnitAttention) continue;
        if (r.kind !== 'good') return;
        const g = r.value.find((x) => x.id === p.tpg) ?? (r.value.length === 1 ? r.value[0] : undefined);
        if (g) this.mark(p, g.stateName as PathState, why);
        return;
      }
    };
    p.refreshing = run().finally(() => { p.refreshing = null; });
    return p.refreshing;
  }
}
