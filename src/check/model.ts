/**
 * The verdict on a history (history.ts), computed from the saved file alone. Each block is a
 * register; an operation is an interval from its invocation to its answer. A write acknowledged
 * with GOOD ends at its answer; a write that got an error is indeterminate: it may have taken
 * effect at any time after its invocation, or never (Jepsen's "info" operations). So "f happened
 * before w" means f was acknowledged before w was invoked; writes whose intervals overlap may land
 * in either order.
 *
 * Rules (README "Correctness checker"):
 *  - divergence: both arrays hold the same bytes after healing;
 *  - lost-write: a block's final value is not a write that happened before an acknowledged write
 *    of that block (nor zero when one was acknowledged);
 *  - stale-read: a read returned zero, or a write f, although some acknowledged write w of that
 *    block ended before the read began and f happened before w; future-read: a read returned a
 *    write invoked after the read ended; garbage (torn, foreign or corrupt block) anywhere;
 *  - counter: per ATS counter, acknowledged ≤ final ≤ acknowledged + indeterminate increments,
 *    no value written by two acknowledged increments (a lost update), none above the final value;
 *  - split-brain: from the arrays' own events, no instant at which both arrays accepted writes
 *    for the group (their ALUA paths active for some host) while neither was Synced.
 */
import type { ArrayEventRecord, Fail, HistoryEntry, Invoke, Ok, SavedHistory } from './history.ts';

export type ViolationKind = 'divergence' | 'lost-write' | 'stale-read' | 'future-read' | 'garbage' | 'phantom' | 'counter' | 'split-brain' | 'incomplete';

export interface Violation { kind: ViolationKind; message: string }

interface WriteIv { tag: string; id: number; inv: number; end: number; acked: boolean }

export interface CheckInput {
  entries: HistoryEntry[];
  final: SavedHistory['final'];
}

export interface Verdict {
  violations: Violation[];
  stats: { writes: number; acked: number; indeterminate: number; reads: number; increments: number; ackedIncrements: number };
}

export function check(h: CheckInput, o: { group?: string } = {}): Verdict {
  const v: Violation[] = [];
  const invokes = new Map<number, Invoke>();
  const ends = new Map<number, Ok | Fail>();
  for (const e of h.entries) {
    if (e.type === 'invoke') invokes.set(e.id, e);
    else if (e.type === 'ok' || e.type === 'fail') ends.set(e.id, e);
  }
  const stats = { writes: 0, acked: 0, indeterminate: 0, reads: 0, increments: 0, ackedIncrements: 0 };

  // Registers: the write intervals per block.
  const writes = new Map<number, WriteIv[]>();
  const byTag = new Map<string, WriteIv>();
  for (const [id, i] of invokes) {
    if (i.op !== 'write') continue;
    stats.writes++;
    const e = ends.get(id);
    const acked = e?.type === 'ok';
    if (acked) stats.acked++; else stats.indeterminate++;
    for (let b = 0; b < i.blocks; b++) {
      const w: WriteIv = { tag: `${i.client}:${i.seq}`, id, inv: i.t, end: acked ? e.t : Infinity, acked };
      const lba = i.lba + b;
      if (!writes.has(lba)) writes.set(lba, []);
      writes.get(lba)!.push(w);
      byTag.set(`${lba}/${w.tag}`, w);
    }
  }
  const find = (lba: number, tag: string) => byTag.get(`${lba}/${tag}`);

  if (!h.final.identical) {
    const d = h.final.differing;
    v.push({ kind: 'divergence', message: `the arrays differ in ${d.length} block(s) after healing: LBA ${d.slice(0, 12).join(', ')}${d.length > 12 ? ' …' : ''}` });
  }

  // Final values against acknowledged writes.
  for (const [lba, ws] of writes) {
    const tag = h.final.tags[lba] ?? 'zero';
    if (tag.startsWith('garbage')) { v.push({ kind: 'garbage', message: `LBA ${lba} holds ${tag} after healing` }); continue; }
    const acked = ws.filter((w) => w.acked);
    if (tag === 'zero') {
      if (acked.length) v.push({ kind: 'lost-write', message: `LBA ${lba} is zero after healing, but ${describe(latest(acked))} was acknowledged` });
      continue;
    }
    const f = find(lba, tag);
    if (!f) { v.push({ kind: 'phantom', message: `LBA ${lba} holds ${tag}, which no client wrote there` }); continue; }
    const lost = acked.filter((w) => w !== f && f.end < w.inv);
    if (lost.length) v.push({ kind: 'lost-write', message: `LBA ${lba} holds ${describe(f)}, but ${describe(latest(lost))} was invoked after that and acknowledged` });
  }

  // Reads against acknowledged writes: per block, the acknowledged writes by end time with the
  // latest-invoked one among each prefix, so a read asks "which acknowledged writes ended before
  // I began, and did any begin after f ended?" with a binary search (a 30-minute history holds
  // hundreds of writes per block and hundreds of thousands of reads).
  const ended = new Map<number, { ends: number[]; latestInv: WriteIv[] }>();
  for (const [lba, ws] of writes) {
    const acked = ws.filter((w) => w.acked).sort((x, y) => x.end - y.end);
    const latestInv: WriteIv[] = [];
    for (const w of acked) latestInv.push(latestInv.length && latestInv[latestInv.length - 1].inv >= w.inv ? latestInv[latestInv.length - 1] : w);
    ended.set(lba, { ends: acked.map((w) => w.end), latestInv });
  }
  /** The acknowledged write of `lba` invoked last among those that ended before `t`, if any. */
  const latestBefore = (lba: number, t: number): WriteIv | undefined => {
    const e = ended.get(lba);
    if (!e) return undefined;
    let lo = 0, hi = e.ends.length;
    while (lo < hi) { const mid = (lo + hi) >> 1; if (e.ends[mid] < t) lo = mid + 1; else hi = mid; }
    return lo ? e.latestInv[lo - 1] : undefined;
  };
  for (const [id, i] of invokes) {
    if (i.op !== 'read') continue;
    const e = ends.get(id);
    if (e?.type !== 'ok' || !Array.isArray(e.value)) continue;
    stats.reads++;
    e.value.forEach((tag, b) => {
      const lba = i.lba + b;
      const newest = latestBefore(lba, i.t);
      const what = `read #${id} by ${i.client} at site ${i.site} (${ms(i.t)}–${ms(e.t)}) of LBA ${lba}`;
      if (tag.startsWith('garbage')) { v.push({ kind: 'garbage', message: `${what} returned ${tag}` }); return; }
      if (tag === 'zero') {
        if (newest) v.push({ kind: 'stale-read', message: `${what} returned zeros, but ${describe(newest)} was acknowledged before it began` });
        return;
      }
      const f = find(lba, tag);
      if (!f) { v.push({ kind: 'phantom', message: `${what} returned ${tag}, which no client wrote there` }); return; }
      if (f.inv > e.t) { v.push({ kind: 'future-read', message: `${what} returned ${describe(f)}, invoked only after the read ended` }); return; }
      // f itself can never be the newer write: f.end < f.inv is impossible.
      if (newest && f.end < newest.inv) v.push({ kind: 'stale-read', message: `${what} returned ${describe(f)}, but ${describe(newest)} replaced it and was acknowledged before the read began` });
    });
  }

  // ATS counters.
  const counters = new Map<number, { acked: number[]; indeterminate: number }>();
  for (const [id, i] of invokes) {
    if (i.op !== 'increment') continue;
    stats.increments++;
    if (!counters.has(i.lba)) counters.set(i.lba, { acked: [], indeterminate: 0 });
    const c = counters.get(i.lba)!;
    const e = ends.get(id);
    if (e?.type === 'ok' && typeof e.value === 'number') { c.acked.push(e.value); stats.ackedIncrements++; }
    else if (e?.type === 'fail' && !e.indeterminate) continue;
    else c.indeterminate++;
  }
  for (const [lba, c] of counters) {
    const final = h.final.counters[lba];
    if (final === undefined || final < 0) { v.push({ kind: 'counter', message: `counter at LBA ${lba}: the final block is not a counter` }); continue; }
    const n = c.acked.length;
    if (final < n || final > n + c.indeterminate) {
      v.push({ kind: 'counter', message: `counter at LBA ${lba} is ${final}, but ${n} increment(s) were acknowledged and ${c.indeterminate} indeterminate (want ${n}..${n + c.indeterminate})` });
    }
    const seen = new Set<number>();
    for (const x of c.acked) {
      if (seen.has(x)) v.push({ kind: 'counter', message: `counter at LBA ${lba}: two acknowledged increments both wrote ${x} (a lost update)` });
      seen.add(x);
      if (x > final) v.push({ kind: 'counter', message: `counter at LBA ${lba}: an acknowledged increment wrote ${x}, above the final value ${final}` });
    }
  }

  v.push(...splitBrain(h.entries.filter((e): e is ArrayEventRecord => e.type === 'array'), o.group));
  return { violations: v, stats };
}

// ------------------------------------------------------------ split brain, from the arrays' events

interface SiteState { accepting: boolean; status: string }

/**
 * An array publishes its SyncStatus change and then its ALUA change (the group machine's one
 * step: src/replication/group-machine.ts transition()), a moment apart; an overlap shorter than
 * this is that moment, not two arrays serving apart. A partition lasts seconds.
 */
export const SPLIT_BRAIN_TOLERANCE_MS = 250;

/**
 * Fold each array's events (alua.state, rcopy.group, and the checker's own `snapshot` / `down`
 * records) into "accepts writes for the group" and its SyncStatus, in the arrays' own time order,
 * and report every interval in which both accepted while neither was Synced. (One accepting while
 * the other is still Synced is the moment a link loss takes to reach both ends: the Synced side
 * forwards its writes to the other, so they are still ordered in one place.) Overlaps up to
 * `toleranceMs` are not reported (SPLIT_BRAIN_TOLERANCE_MS).
 */
export function splitBrain(events: ArrayEventRecord[], group?: string, toleranceMs = SPLIT_BRAIN_TOLERANCE_MS): Violation[] {
  const out: Violation[] = [];
  const sites = new Map<string, SiteState>();
  const timeOf = (e: ArrayEventRecord) => (typeof e.event.time === 'string' ? Date.parse(e.event.time) : NaN);
  const sorted = [...events].sort((a, b) => (timeOf(a) - timeOf(b)) || (a.t - b.t));
  let since: number | null = null;
  let sinceWall = '';
  for (const r of sorted) {
    const s = sites.get(r.site) ?? { accepting: false, status: 'unknown' };
    sites.set(r.site, s);
    const ev = r.event;
    switch (ev.type) {
      case 'snapshot': s.accepting = !!ev.accepting; s.status = String(ev.status); break;
      case 'down': s.accepting = false; s.status = 'down'; break;
      case 'rcopy.group': if (!group || ev.group === group) s.status = String(ev.to); break;
      case 'alua.state':
        if (ev.phase === 'done' && ev.host === null) s.accepting = isActive(ev.state) || Object.values((ev.hosts ?? {}) as Record<string, unknown>).some(isActive);
        break;
    }
    const all = [...sites.values()];
    const bad = all.length >= 2 && all.every((x) => x.accepting && x.status !== 'Synced');
    const t = timeOf(r);
    if (bad && since === null) { since = t; sinceWall = String(ev.time); }
    if (!bad && since !== null) {
      if (t - since > toleranceMs) out.push({ kind: 'split-brain', message: `both arrays accepted writes while neither was Synced from ${sinceWall} for ${t - since} ms` });
      since = null;
    }
  }
  if (since !== null) out.push({ kind: 'split-brain', message: `both arrays accepted writes while neither was Synced from ${sinceWall} to the end of the run` });
  return out;
}

function isActive(s: unknown): boolean { return s === 'active/optimized' || s === 'active/non-optimized'; }

function latest(ws: WriteIv[]): WriteIv { return ws.reduce((a, b) => (b.end > a.end ? b : a)); }
function describe(w: WriteIv): string { return `write ${w.tag} (#${w.id}, ${ms(w.inv)}–${w.acked ? ms(w.end) : 'indeterminate'})`; }
function ms(t: number): string { return `${(t / 1000).toFixed(3)} s`; }
