/**
 * verify --image: does the image a copy gives access to show exactly production's data at the
 * chosen point (the accessed image's own, or another bookmark, `latest`, seq:N or a time)?
 *
 * Production's image at seq B is rebuilt region by region, without copying the volume: production
 * as it is now, then, newest first, the undo data of every record after B that was applied to the
 * copy before it was rolled (undo.ts: what each record overwrote), so each block ends with its
 * value from before the first write after B. That is compared (CRC32C digests per 64 KiB, then
 * block by block where they differ) with what the copy's LUs read. Host writes to the image in
 * logged access, a roll to the wrong point, a record distributed into the image, all show as
 * diverged extents.
 *
 * Production writes journaled after the roll (seq > rolledFrom) were never applied to the copy,
 * so their undo data does not exist: the blocks they touched are not compared, and the result
 * says how many (blocksNotCompared). Direct access drops the history the rebuild needs: refused.
 *
 * A remote copy (CRR): the image is presented by the remote array from its own journal, and the
 * undo data of (B, rolledFrom] is that journal's (REPLICA UNDO over the link, paged, only what
 * the records after B overwrote); the comparison is the same. Its meaning is the local copy's:
 * the copy's undo log is the record of production's data before each write, so a remote volume
 * that drifted from production, host writes to the image, or an image presented at the wrong
 * point show as diverged extents. An undo log that is itself wrong is not caught (for a local
 * copy neither): the image and the rebuild read the same pieces.
 */
import { shared } from '../scsi/range-lock.ts';
import { CrrCopy, REGION_BYTES } from './copy.ts';
import { regionDigest as digest, unmappedRun } from './digest.ts';
import type { ConsistencyGroup } from './group.ts';
import { ImageChoiceError, ImageStateError, resolveImage } from './image.ts';
import type { UndoPiece } from './undo.ts';
import { differingRuns } from './verify.ts';
import type { DivergedExtent, VerifyResult } from './verify.ts';

export interface ImageVerifyResult extends VerifyResult {
  image: {
    /** What was checked against: the point named, and its journal sequence. */
    at: string; seq: number;
    /** The image the copy gives access to. */
    accessed: string; accessedSeq: number; mode: string;
    /** Blocks production wrote after the copy was rolled (no undo data): not compared. */
    blocksNotCompared: number;
    /** Host writes to the image so far. */
    imageWrites: number;
  };
}

/** Blocks [lba, lba+blocks) of set `set`. */
interface Ext { set: number; lba: bigint; blocks: number }

export async function verifyImage(g: ConsistencyGroup, copyName: string | undefined, at: string | undefined): Promise<ImageVerifyResult> {
  const t0 = performance.now();
  const c = g.copy(copyName);
  const img = c.image;
  if (!img || c.access === 'no-access') throw new ImageStateError(`copy ${c.name} has no image access: enable_image_access first (verify without --image compares the latest image)`);
  if (c.access === 'direct-access') throw new ImageStateError(`copy ${c.name} is in direct access: the journal history an image check needs is gone`);
  const target = at === undefined ? { seq: img.seq, bookmark: img.bookmark } : resolveImage(g, at);
  const B = target.seq;
  if (c.imageFloor === null || B < c.imageFloor || B < g.journal.firstSeq - 1) {
    throw new ImageChoiceError('image', `seq ${B} is older than the copy's history reaches (${Math.max(c.imageFloor ?? Infinity, g.journal.firstSeq - 1)})`);
  }
  const per = Math.max(1, Math.floor(REGION_BYTES / g.sets[0].lu.blockSize));
  const key = (set: number, region: number) => `${set}:${region}`;
  // Undo pieces of the records (B, rolledFrom], newest first, by region they touch. A remote
  // copy's are at the remote array (its journal, the one its image is presented from): they are
  // read back over the link (REPLICA UNDO), as RecoverPoint's remote journal holds them.
  const entries = c instanceof CrrCopy && B < img.rolledFrom ? await remoteUndo(c, B) : c.undo.newestFirst(B);
  const pieces = new Map<string, UndoPiece[]>();
  for (const e of entries) {
    if (e.seq > img.rolledFrom) continue;
    for (const p of e.pieces) {
      for (let r = Number(p.lba / BigInt(per)); BigInt(r * per) < p.lba + BigInt(p.blocks); r++) {
        const k = key(e.set, r);
        (pieces.get(k) ?? pieces.set(k, []).get(k)!).push(p);
      }
    }
  }
  // Production writes after the roll, by region; those journaled later are looked up under the lock.
  const after = new Map<string, Ext[]>();
  let seen = img.rolledFrom;
  const collect = (upTo: number) => {
    for (const r of g.journal.after(seen)) {
      if (r.seq > upTo) break;
      for (let k = Number(r.lba / BigInt(per)); BigInt(k * per) < r.lba + BigInt(r.blocks); k++) {
        const id = key(r.set, k);
        (after.get(id) ?? after.set(id, []).get(id)!).push({ set: r.set, lba: r.lba, blocks: r.blocks });
      }
      seen = r.seq;
    }
  };
  collect(g.journal.nextSeq - 1);

  const res: ImageVerifyResult = {
    group: g.name, copy: c.name, consistent: true, seq: B, regions: { compared: 0, skipped: 0, diverged: 0 }, bytesCompared: 0, diverged: [], ms: 0,
    image: { at: at ?? img.image, seq: B, accessed: img.image, accessedSeq: img.seq, mode: c.access, blocksNotCompared: 0, imageWrites: img.writes },
  };
  const raw: Array<{ lun: number; set: number; start: bigint; end: bigint }> = [];
  for (const s of g.sets) {
    const lu = s.lu;
    const bs = lu.blockSize;
    const image = c.exported[s.index]?.store ?? c.replicas[s.index];
    for (let region = 0; BigInt(region * per) < lu.blockCount; region++) {
      const lba = BigInt(region * per);
      const n = Number(lu.blockCount - lba < BigInt(per) ? lu.blockCount - lba : BigInt(per));
      const k = key(s.index, region);
      if (!pieces.has(k) && !after.has(k) && unmappedRun(lu.store, lba) >= BigInt(n) && unmappedRun(c.replicas[s.index], lba) >= BigInt(n)) {
        res.regions.skipped++;
        continue;
      }
      const runs = await shared(lu, lba, n, async () => {
        collect(g.journal.nextSeq - 1);
        const expected = Buffer.allocUnsafe(n * bs);
        await lu.store.read(lba, n, expected);
        for (const p of pieces.get(k) ?? []) overlay(expected, lba, n, bs, p);
        const seen = await image.read(lba, n);
        // Not comparable: blocks production wrote after the roll (they show the image's own value).
        for (const e of after.get(k) ?? []) {
          const from = e.lba > lba ? e.lba : lba;
          const to = e.lba + BigInt(e.blocks) < lba + BigInt(n) ? e.lba + BigInt(e.blocks) : lba + BigInt(n);
          if (to <= from) continue;
          const o = Number(from - lba) * bs;
          seen.copy(expected, o, o, Number(to - lba) * bs);
        }
        if (digest(expected).equals(digest(seen))) return [];
        return differingRuns(expected, seen, bs);
      });
      res.regions.compared++;
      res.bytesCompared += n * bs;
      if (runs.length) res.regions.diverged++;
      for (const [a, b] of runs) raw.push({ lun: lu.lun, set: s.index, start: lba + BigInt(a), end: lba + BigInt(b) });
      await new Promise<void>((r) => setImmediate(r));
    }
  }
  res.image.blocksNotCompared = countBlocks(after);
  const merged: typeof raw = [];
  for (const r of raw) {
    const last = merged[merged.length - 1];
    if (last && last.set === r.set && last.end === r.start) last.end = r.end;
    else merged.push({ ...r });
  }
  res.diverged = merged.map((m): DivergedExtent => ({ lun: m.lun, lba: String(m.start), lbaEnd: String(m.end - 1n), blocks: Number(m.end - m.start), causes: [] }));
  res.consistent = res.diverged.length === 0;
  res.ms = Math.round(performance.now() - t0);
  return res;
}

/**
 * The remote journal's undo entries of the records after `B`, newest first (one per piece), after
 * a check that the remote's window still reaches `B` (pieces missing would show as divergence).
 */
async function remoteUndo(c: CrrCopy, B: number): Promise<Array<{ seq: number; set: number; pieces: UndoPiece[] }>> {
  const q = await c.query();
  const floor = c.remoteFloor;
  if (floor === null || B < floor) {
    throw new ImageChoiceError('image', `seq ${B} is older than copy ${c.name}'s protection window at the remote array (${floor === null ? 'empty' : `images from seq ${floor} to ${q.applied}`})`);
  }
  const out: Array<{ seq: number; set: number; pieces: UndoPiece[] }> = [];
  for (let set = 0; set < c.replicas.length; set++) {
    for (const p of await c.link.readUndo(set, B)) out.push({ seq: p.seq, set, pieces: [p] });
  }
  return out.sort((x, y) => y.seq - x.seq);
}

/** Lay undo piece `p` over `buf` (blocks [lba, lba+n)): its data, or zeros for a deallocated run. */
function overlay(buf: Buffer, lba: bigint, n: number, bs: number, p: UndoPiece): void {
  const from = p.lba > lba ? p.lba : lba;
  const end = lba + BigInt(n);
  const pend = p.lba + BigInt(p.blocks);
  const to = pend < end ? pend : end;
  if (to <= from) return;
  const o = Number(from - lba) * bs;
  const len = Number(to - from) * bs;
  if (p.data) p.data.copy(buf, o, Number(from - p.lba) * bs, Number(from - p.lba) * bs + len);
  else buf.fill(0, o, o + len);
}

/** Distinct blocks covered by the extents (overlaps counted once). */
function countBlocks(byRegion: Map<string, Ext[]>): number {
  const bySet = new Map<number, Ext[]>();
  const seen = new Set<Ext>();
  for (const l of byRegion.values()) for (const e of l) if (!seen.has(e)) { seen.add(e); (bySet.get(e.set) ?? bySet.set(e.set, []).get(e.set)!).push(e); }
  let total = 0;
  for (const l of bySet.values()) {
    l.sort((x, y) => (x.lba < y.lba ? -1 : x.lba > y.lba ? 1 : 0));
    let end = -1n;
    for (const e of l) {
      const s = e.lba > end ? e.lba : end;
      const t = e.lba + BigInt(e.blocks);
      if (t > s) total += Number(t - s);
      if (t > end) end = t;
    }
  }
  return total;
}
