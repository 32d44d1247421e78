/**
 * Initialization of a consistency group's copies (RecoverPoint's word; group.ts): what the
 * transfer's `init` state does, and what one copy that comes back alone (enable_copy, the end of
 * direct image access) goes through while the others are distributed to. The journal a copy
 * lacks is applied first; then a full sweep compares every allocated region by digest (CRC32C per
 * 64 KiB, as verify does) and sends only those that differ, or the regions marked meanwhile are
 * sent whole; the records journaled meanwhile follow on top. Split from group.ts by phase, as LIO
 * splits its target: it runs at start_transfer, enable_copy, the end of direct image access and
 * the end of high load, never per write.
 */
import { shared } from '../scsi/range-lock.ts';
import type { InitProgress, LocalCopy } from './copy.ts';
import { regionDigest, replicaDigest, unmappedRun } from './digest.ts';
import type { ConsistencyGroup } from './group.ts';
import { awaited, drainAll, schedule } from './group-distribute.ts';
import type { ReplicationSet } from './group-split.ts';

/** The transfer's initialization (ConsistencyGroup.beginInit): every copy distributed to, set by set. */
export async function initialize(g: ConsistencyGroup): Promise<void> {
  // A copy with image access or disabled waits: it is synchronized when it is distributed to again.
  const cs = g.copies.filter((c) => c.distributing);
  const anySweep = cs.some((c) => c.needsSweep);
  const init: InitProgress = g.init = { kind: anySweep ? 'full-sweep' : 'markers', regions: 0, regionsCompared: 0, bytesSent: 0, volumeBytes: 0, done: false };
  const live = () => g.transfer === 'init';
  // Records journaled before the pause are older than anything marked since: applied first
  // (in order, and awaited: a file replica's writes settle later).
  for (const c of cs) await drainNow(g, c);
  for (const s of g.sets) {
    init.volumeBytes += Number(s.lu.blockCount) * s.lu.blockSize;
    for (const c of cs) {
      if (c.needsSweep) await sweep(g, s, c, init, live);
      else await sendMarked(g, s, c, init, live);
      if (!live()) return;
    }
  }
  // The records journaled meanwhile are applied on top, in order: from the journal's end on, the
  // replicas are an image of production, and each record's undo data is kept (image access).
  for (const c of cs) { c.needsSweep = false; c.consistentAt(g.journal.nextSeq - 1); }
  init.done = true;
}

/** Apply every record the copy lacks now (awaited: a file replica's writes settle later). */
async function drainNow(g: ConsistencyGroup, c: LocalCopy): Promise<void> {
  if (awaited(g, c)) await drainAll(g, c);
  else for (const r of g.journal.after(c.appliedSeq)) c.apply(r);
}

/**
 * Synchronize one copy while the group goes on distributing to the others (enable_copy, the end
 * of direct image access): `drain` first applies what the journal holds for it (older than
 * anything marked); then its full sweep or its marked regions are sent, and the records
 * journaled meanwhile are applied on top once it is distributed to again.
 */
export async function resyncCopy(g: ConsistencyGroup, c: LocalCopy, drain: boolean): Promise<void> {
  if (c.syncing) return;
  if (g.transfer !== 'active') return; // start_transfer synchronizes it with the others
  c.syncing = true;
  const sync: InitProgress = c.sync = { kind: c.needsSweep ? 'full-sweep' : 'markers', regions: 0, regionsCompared: 0, bytesSent: 0, volumeBytes: 0, done: false };
  const live = () => g.transfer === 'active' && c.enabled && c.access === 'no-access';
  try {
    if (drain) await drainNow(g, c);
    else c.appliedSeq = g.journal.nextSeq - 1;
    c.imageFloor = null;
    c.undo.clear();
    for (const s of g.sets) {
      sync.volumeBytes += Number(s.lu.blockCount) * s.lu.blockSize;
      if (c.needsSweep) await sweep(g, s, c, sync, live);
      else await sendMarked(g, s, c, sync, live);
      if (!live()) return;
    }
    c.needsSweep = false;
    c.consistentAt(g.journal.nextSeq - 1);
    sync.done = true;
    g.log?.info({ group: g.name, copy: c.name, ...sync }, 'copy synchronized');
  } finally {
    c.syncing = false;
    schedule(g);
  }
}

/**
 * Copy region [at, at+n) of set `s` from production to copy `c`'s replica, if `compare` only when
 * their digests differ. Shared: no write is half applied while the region is read, and none can
 * change it (a memory store's read is a view) until the replica has it; a write waiting for the
 * region is journaled after it, and applied on top.
 */
async function syncRegion(g: ConsistencyGroup, s: ReplicationSet, c: LocalCopy, at: bigint, n: number, compare: boolean, progress: InitProgress): Promise<void> {
  const lu = s.lu;
  const replica = c.replicas[s.index];
  await shared(lu, at, n, async () => {
    const d = await lu.store.read(at, n);
    if (compare) {
      progress.regionsCompared++;
      // A remote replica digests its side where it is: 4 bytes per 64 KiB cross the link, not the data.
      if (regionDigest(d).equals(await replicaDigest(replica, at, n))) return;
    }
    await replica.write(at, d);
    progress.regions++;
    progress.bytesSent += n * lu.blockSize;
  });
  await new Promise<void>((r) => setImmediate(r));
}

/** Full sweep: every region allocated on either side, compared by digest; only those that differ are sent. */
async function sweep(g: ConsistencyGroup, s: ReplicationSet, c: LocalCopy, progress: InitProgress, live: () => boolean): Promise<void> {
  const lu = s.lu;
  const replica = c.replicas[s.index];
  const per = BigInt(c.markers[s.index].regionBlocks);
  for (let lba = 0n; lba < lu.blockCount;) {
    if (!live()) return;
    const a = unmappedRun(lu.store, lba);
    const b = unmappedRun(replica, lba);
    const skip = ((a < b ? a : b) / per) * per;
    if (skip > 0n) { lba += skip; continue; }
    const n = Number(lu.blockCount - lba < per ? lu.blockCount - lba : per);
    await syncRegion(g, s, c, lba, n, true, progress);
    lba += BigInt(n);
  }
  // Marks made before the sweep began are covered by it.
  c.markers[s.index].clear();
}

/** The regions marked while paused, sent whole; a mark is cleared once its region is on the replica. */
async function sendMarked(g: ConsistencyGroup, s: ReplicationSet, c: LocalCopy, progress: InitProgress, live: () => boolean): Promise<void> {
  const m = c.markers[s.index];
  for (const i of [...m.marked()]) {
    if (!live()) return;
    const [at, n] = m.region(i);
    await syncRegion(g, s, c, at, n, false, progress);
    m.unmark(i);
  }
}
