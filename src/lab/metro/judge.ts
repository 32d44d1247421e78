/**
 * The verdict of a metro scenario, pure: what each host observed against what the paper expects.
 * A row passes only when every observation is in its expected set, the I/O outcome is the
 * expected one, and no acknowledged write was lost. Kept apart from the runner so that the same
 * observations can be judged against a deliberately wrong expectation (the negative control).
 */
import type { ArrayName, HostExpect, HostName, LabPathState, MetroScenario, MetroTopology, PathExpect } from './scenarios.ts';
import type { VolumeCompare } from './volumes.ts';

/** `midway`: only in scenarios with several faults, once all but the last have settled. */
export type Phase = 'before' | 'midway' | 'during' | 'after';
export const PHASES: readonly Phase[] = ['before', 'midway', 'during', 'after'];

export interface HostObserved {
  paths: Record<Exclude<Phase, 'midway'>, Record<ArrayName, LabPathState>> & { midway?: Record<ArrayName, LabPathState> };
  /** No write failed between the fault and the end of the run. */
  keptIo: boolean;
  /** Writes that failed (no path within the deadline). */
  failedWrites: number;
  /** Longest time without an acknowledged write, from the fault until the pair healed (ms). */
  rtoMs: number;
  acked: number;
  /** Acknowledged blocks read back with other content (RPO). */
  lostWrites: number;
}

export interface MetroRow {
  scenario: string;
  title: string;
  /** lab up's topology: metro (Active Peer Persistence, uniform hosts) or sync (Active Sync, each host on its local array). */
  topology: MetroTopology;
  paper: string;
  source: string;
  expected: Record<HostName, HostExpect>;
  observed: Record<HostName, HostObserved>;
  /** The two arrays' volumes compared byte for byte once healed. */
  volumes: VolumeCompare;
  match: boolean;
  mismatch: string[];
  /** Start-ups of the pair that were not steady before the fault, and why (empty: the first one was); each was started again before any fault. */
  startups: string[];
  /** Timeline notes: the fault, the heal, path changes. */
  events: string[];
  ms: number;
}

export function judge(s: Pick<MetroScenario, 'expect'>, observed: Record<HostName, HostObserved>, volumes: VolumeCompare): string[] {
  const out: string[] = [];
  // Synchronous replication: once healed the two arrays hold the same bytes (README "Peer replication").
  if (volumes.problem) out.push(`arrays: ${volumes.problem}`);
  if (volumes.differing > 0) out.push(`arrays differ in ${volumes.differing} of ${volumes.blocks} blocks once healed (first at LBA ${volumes.first.join(', ')})`);
  for (const host of Object.keys(s.expect) as HostName[]) {
    const e = s.expect[host];
    const o = observed[host];
    for (const phase of PHASES) {
      const want = e[phase];
      if (!want) continue;
      for (const arr of ['A', 'B'] as ArrayName[]) {
        const got = o.paths[phase]?.[arr] ?? 'not observed';
        if (!want[arr].includes(got as LabPathState)) out.push(`${host} ${phase}: path to ${arr} is ${got}, expected ${want[arr].join(' or ')}`);
      }
    }
    if (o.keptIo !== e.keepsIo) out.push(`${host}: ${o.keptIo ? 'kept I/O' : `lost I/O (${o.failedWrites} writes failed, ${o.rtoMs} ms without an acknowledgement)`}, expected it to ${e.keepsIo ? 'keep' : 'lose'} I/O`);
    if (o.acked === 0) out.push(`${host}: no write was acknowledged at all`);
    if (o.lostWrites > 0) out.push(`${host}: ${o.lostWrites} acknowledged writes lost (RPO > 0)`);
  }
  return out;
}

/** This host's part of the verdict; a row that fails only on the other host says so. */
function verdictCell(r: MetroRow, host: HostName): string {
  if (r.match) return 'yes';
  // The arrays' comparison belongs to the row: shown with its first host.
  const first = host === Object.keys(r.expected)[0];
  const mine = r.mismatch.filter((m) => m.startsWith(host) || (first && m.startsWith('arrays')));
  return mine.length ? `**NO**: ${mine.join('; ')}` : '**NO** (see the scenario\'s other row)';
}

const cell = (p: Record<ArrayName, string>) => `A ${short(p.A)}, B ${short(p.B)}`;
function short(s: string): string {
  return s.replace('active/optimized', 'AO').replace('active/non-optimized', 'ANO');
}

function arraysCell(v: VolumeCompare): string {
  if (v.problem) return `**NO**: ${v.problem}`;
  return v.differing ? `**NO**: ${v.differing} block${v.differing === 1 ? ' differs' : 's differ'}` : `identical (${v.blocks} blocks)`;
}

/** Markdown: one line per scenario and host, expected against observed. */
export function formatMetroTable(rows: MetroRow[]): string {
  const head = ['scenario', 'host', 'paths before', 'paths during (expected)', 'paths during (observed)', 'paths after', 'I/O (expected / observed)', 'measured RTO', 'acked / lost', 'arrays A = B', 'match', 'paper'];
  const lines = [`| ${head.join(' | ')} |`, `| ${head.map(() => '---').join(' | ')} |`];
  for (const r of rows) {
    for (const host of Object.keys(r.expected) as HostName[]) {
      const e = r.expected[host];
      const o = r.observed[host];
      const exp = (p: PathExpect) => cell({ A: p.A.join('/'), B: p.B.join('/') });
      // Midway (several faults): shown before the during state, "midway → during".
      const expDuring = e.midway ? `${exp(e.midway)} → ${exp(e.during)}` : exp(e.during);
      const obsDuring = o.paths.midway ? `${cell(o.paths.midway)} → ${cell(o.paths.during)}` : cell(o.paths.during);
      lines.push(`| ${[r.scenario, host, cell(o.paths.before), expDuring, obsDuring, cell(o.paths.after),
        `${e.keepsIo ? 'keeps' : 'loses'} / ${o.keptIo ? 'kept' : 'lost'}`, `${o.rtoMs} ms`, `${o.acked} / ${o.lostWrites}`,
        host === 'host-a' ? arraysCell(r.volumes) : '', verdictCell(r, host), host === 'host-a' ? r.paper : ''].join(' | ')} |`);
    }
  }
  return lines.join('\n');
}
