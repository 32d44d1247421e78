/**
 * verify: is a copy of a consistency group the same as production? It drains the journal into the
 * copy, then compares production with the replica region by region (1 MiB): regions unallocated
 * on both sides are skipped by the stores' mapping; the others are digested on both sides (CRC32C
 * per 64 KiB), and only where the digests differ are the blocks compared to find the diverged
 * extents. Between regions the event loop runs, so the array keeps serving I/O while a verify runs.
 *
 * Each diverged extent is attributed to the ignored commands (the group's "ignored" log) that
 * wrote into it: the reason a replica drifts when a splitter ignores a VAAI primitive.
 */
import { shared } from '../scsi/range-lock.ts';
import type { ConsistencyGroup, IgnoredEntry } from './group.ts';
import { REGION_BYTES } from './group.ts';
import { regionDigest as digest, replicaDigest, unmappedRun } from './digest.ts';

export interface DivergedExtent {
  lun: number;
  lba: string;
  /** Last LBA of the extent (inclusive). */
  lbaEnd: string;
  blocks: number;
  causes: Array<{ seq: number; name: string; primitive: string; initiator: string; time: string }>;
}

export interface VerifyResult {
  group: string;
  copy: string;
  consistent: boolean;
  /** Journal sequence the copy was drained to. */
  seq: number;
  regions: { compared: number; skipped: number; diverged: number };
  bytesCompared: number;
  diverged: DivergedExtent[];
  ms: number;
}

/** Runs of blocks that differ between `a` and `b` (same length), as [first, end) block indexes. */
export function differingRuns(a: Buffer, b: Buffer, bs: number): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  const n = a.length / bs;
  let start = -1;
  for (let i = 0; i < n; i++) {
    const same = a.subarray(i * bs, (i + 1) * bs).equals(b.subarray(i * bs, (i + 1) * bs));
    if (!same && start < 0) start = i;
    if (same && start >= 0) { out.push([start, i]); start = -1; }
  }
  if (start >= 0) out.push([start, n]);
  return out;
}

export async function verifyGroup(g: ConsistencyGroup, copyName?: string): Promise<VerifyResult> {
  const t0 = performance.now();
  const copy = g.copy(copyName);
  // Fails at once (transfer not active) rather than comparing a copy that cannot catch up.
  await g.catchUp(copy);
  const res: VerifyResult = {
    group: g.name, copy: copy.name, consistent: true, seq: 0, regions: { compared: 0, skipped: 0, diverged: 0 }, bytesCompared: 0, diverged: [], ms: 0,
  };
  const raw: Array<{ lun: number; set: number; start: bigint; end: bigint }> = [];
  for (const set of g.sets) {
    const lu = set.lu;
    const bs = lu.blockSize;
    const replica = copy.replicas[set.index];
    const per = BigInt(Math.max(1, Math.floor(REGION_BYTES / bs)));
    for (let lba = 0n; lba < lu.blockCount;) {
      // Unallocated on both sides: equal without reading (whole regions only).
      const skip = (() => { const a = unmappedRun(lu.store, lba); const b = unmappedRun(replica, lba); return a < b ? a : b; })();
      if (skip >= per || (skip > 0n && lba + skip >= lu.blockCount)) {
        const whole = lba + skip >= lu.blockCount ? skip : (skip / per) * per;
        res.regions.skipped += Number((whole + per - 1n) / per);
        lba += whole;
        continue;
      }
      const n = Number(lu.blockCount - lba < per ? lu.blockCount - lba : per);
      const at = lba;
      // Under the production range (shared): every write to it that production applied has been
      // journaled (split.ts), and catchUp applies it to the copy before the two are read.
      const runs = await shared(lu, at, n, async () => {
        await g.catchUp(copy);
        const p = await lu.store.read(at, n);
        const pd = digest(p);
        // A remote replica is digested on its own array; its blocks cross the link only where they differ.
        if ((await replicaDigest(replica, at, n)).equals(pd)) return [];
        const r = await replica.read(at, n);
        return differingRuns(p, r, bs);
      });
      res.regions.compared++;
      res.bytesCompared += n * bs;
      if (runs.length) res.regions.diverged++;
      for (const [s, e] of runs) raw.push({ lun: lu.lun, set: set.index, start: at + BigInt(s), end: at + BigInt(e) });
      lba += BigInt(n);
      await new Promise<void>((r) => setImmediate(r));
    }
  }
  res.seq = copy.appliedSeq;
  // Merge runs that touch across region boundaries.
  const merged: typeof raw = [];
  for (const r of raw) {
    const last = merged[merged.length - 1];
    if (last && last.set === r.set && last.end === r.start) last.end = r.end;
    else merged.push({ ...r });
  }
  res.diverged = merged.map((m) => ({
    lun: m.lun, lba: String(m.start), lbaEnd: String(m.end - 1n), blocks: Number(m.end - m.start),
    causes: causesOf(g.ignoredLog, m.lun, m.start, m.end),
  }));
  res.consistent = res.diverged.length === 0;
  res.ms = Math.round(performance.now() - t0);
  return res;
}

function causesOf(log: readonly IgnoredEntry[], lun: number, start: bigint, end: bigint): DivergedExtent['causes'] {
  return log
    .filter((e) => e.lun === lun && e.extents.some((x) => x.lba < end && start < x.lba + BigInt(x.blocks)))
    .map((e) => ({ seq: e.seq, name: e.name, primitive: e.primitive, initiator: e.initiator, time: e.time.toISOString() }));
}

/** verify's result as lines for a terminal ("LUN 1 LBA 0-8191, caused by 1 EXTENDED COPY (ignored) from … at 10:14:03"). */
export function formatVerify(r: VerifyResult): string {
  const head = `group ${r.group}, copy ${r.copy}: ${r.consistent ? 'consistent' : 'DIVERGED'} (journal seq ${r.seq}; `
    + `${r.regions.compared} regions compared, ${r.regions.skipped} unallocated skipped, ${r.ms} ms)`;
  const lines = [head];
  const img = (r as VerifyResult & { image?: { at: string; seq: number; accessed: string; accessedSeq: number; mode: string; blocksNotCompared: number; imageWrites: number } }).image;
  if (img) {
    lines[0] = `group ${r.group}, copy ${r.copy}: image ${img.accessed} (seq ${img.accessedSeq}, ${img.mode}) ${r.consistent ? 'shows' : 'DIFFERS FROM'} production at ${img.at} (seq ${img.seq}) `
      + `(${r.regions.compared} regions compared, ${r.regions.skipped} unallocated skipped, ${r.ms} ms)`;
    if (img.imageWrites) lines.push(`  ${img.imageWrites} host writes to the image`);
    if (img.blocksNotCompared) lines.push(`  ${img.blocksNotCompared} blocks written by production after the roll not compared (no undo data)`);
  }
  for (const d of r.diverged) {
    let why = img ? 'differs from production at that point' : 'no ignored command touched it';
    if (d.causes.length) {
      const byName = new Map<string, typeof d.causes>();
      for (const c of d.causes) byName.set(c.name, [...(byName.get(c.name) ?? []), c]);
      why = [...byName].map(([name, cs]) => {
        const hosts = [...new Set(cs.map((c) => c.initiator))].join(', ');
        const t = cs[cs.length - 1].time.slice(11, 19);
        return `caused by ${cs.length} ${name} (ignored) from ${hosts} at ${t}${cs.length > 1 ? ' (last)' : ''}`;
      }).join('; ');
    }
    lines.push(`  LUN ${d.lun} LBA ${d.lba}-${d.lbaEnd}, ${why}`);
  }
  return lines.join('\n');
}
