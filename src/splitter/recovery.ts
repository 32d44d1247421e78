/**
 * Start-up of a file-journaled consistency group (journal-file.ts, undo-file.ts), split from
 * group.ts by phase as LIO splits its target: what a restart does before the transfer starts.
 * Each copy's undo data is opened and recovered, the journal records after its checkpoint are
 * re-applied, and after an unclean stop production and the copies are compared again, either
 * into the journal at start-up (every copy kept its history: images before the stop stay
 * reachable) or by the transfer's first initialization (the history goes). The bookmarks saved
 * with the journal come back too. The steady-state distributor that writes the checkpoints is
 * ConsistencyGroup.drainCopy.
 */
import { CrrCopy } from './copy.ts';
import type { InitProgress, LocalCopy } from './copy.ts';
import { unmappedRun } from './digest.ts';
import type { ConsistencyGroup } from './group.ts';
import { restorePieces } from './undo.ts';
import { DurableUndoStream, UndoLog } from './undo-file.ts';

/**
 * Start-up of a file-journaled group, before the transfer starts: each copy re-applies the
 * journal records after its checkpoint. After an unclean stop, production may hold writes whose
 * journal records never became durable (never acknowledged, but on disk all the same), so the
 * copies are swept again (the first initialization) once the re-application is done; without
 * an activity log (DRBD's) the sweep cannot be narrowed to the regions that were in flight.
 * When every copy kept its undo data (undo-file.ts), that sweep runs here instead, before the
 * target serves, and journals what differs (sweepIntoJournal), so the images before the stop
 * stay reachable; otherwise it is the transfer's first initialization, and the history goes.
 */
export async function recoverGroup(g: ConsistencyGroup, unclean: boolean, testSkip = false): Promise<void> {
  const j = g.journal;
  if (!j.readCheckpoint) return;
  if (testSkip) {
    // TEST HOOK (the crash test's negative control): pretend every copy is up to date.
    for (const c of g.copies) { c.appliedSeq = c.checkpointSeq = j.nextSeq - 1; c.needsSweep = false; c.consistentAt(c.appliedSeq); }
    g.init.done = true;
    g.recovery = { reapplied: 0, sweep: false, reason: 'TEST HOOK: recovery skipped' };
    return;
  }
  let reapplied = 0;
  let sweep = unclean;
  let reason = unclean ? 'the last stop was not clean' : 'clean stop';
  await loadBookmarks(g);
  const keeping = new Set<LocalCopy>();
  for (const c of g.copies) {
    const undo = await openUndo(g, c);
    const cp = await j.readCheckpoint(c.name);
    if (!cp || cp.appliedSeq + 1 < j.firstSeq) {
      // No checkpoint (new copy), or the journal no longer holds what it lacks: sweep it.
      sweep = true;
      reason = cp ? `copy ${c.name} is behind the journal` : `copy ${c.name} was never initialized`;
      c.appliedSeq = c.checkpointSeq = j.nextSeq - 1;
      continue;
    }
    if (!cp.initialized) { sweep = true; reason = `copy ${c.name}: its initialization had not completed`; }
    c.appliedSeq = c.checkpointSeq = cp.appliedSeq;
    c.checkpointInitialized = cp.initialized;
    // Its undo data on disk: images older than the restart stay reachable.
    const kept = undo && cp.initialized ? await recoverUndo(g, c, undo) : false;
    if (kept) keeping.add(c);
    const before = c.appliedSeq;
    await g.drainCopy(c, Infinity);
    reapplied += c.appliedSeq - before;
    // No undo data kept: images from here on.
    if (!kept) c.consistentAt(c.appliedSeq);
  }
  // Records older than a sweep must not be applied after it (production is newer): the sweep
  // starts from the journal's end. Its start is durable first, so a crash during it sweeps again.
  const imagesKept = keeping.size === g.copies.length;
  if (sweep && !imagesKept) {
    for (const c of g.copies) {
      c.appliedSeq = j.nextSeq - 1;
      await j.writeCheckpoint!(c.name, { appliedSeq: c.appliedSeq, initialized: false });
      c.checkpointSeq = c.appliedSeq;
      c.checkpointInitialized = false;
      c.needsSweep = true;
      c.imageFloor = null;
      // The initialization's sweep writes regions no record describes, while production writes:
      // the undo data kept cannot take the replica back past it, so the history goes.
      if (c.undo.length) g.log?.warn({ group: g.name, copy: c.name, undoEntries: c.undo.length, oldestSeq: c.undo.oldestSeq }, 'undo data dropped: the copy is swept, images before the sweep are no longer reachable');
      c.undo.clear();
    }
  } else {
    // Every copy is where its checkpoint says, and was initialized: start_transfer needs no sweep.
    g.init.done = true;
    for (const c of g.copies) c.needsSweep = false;
    if (sweep) await sweepIntoJournal(g);
    // The checkpoints say so at once (the re-application wrote them before the initialization
    // counted as done): a crash before the next distribution keeps the history too.
    for (const c of g.copies) await g.drainCopy(c, 0);
  }
  g.recovery = { reapplied, sweep, reason, imagesKept: g.copies.every((c) => c.imageFloor !== null && keeping.has(c)) };
  g.log?.info({ group: g.name, ...g.recovery }, 'journal recovered');
}

/**
 * The sweep after an unclean stop, for copies that kept their history: at start-up, before the
 * target serves (production cannot change under it), each region that differs between
 * production and any copy's replica (compared byte for byte) is journaled
 * as a write of production's data, and the copies apply those records as any other: each
 * before-image is saved first (write-ahead), so an image before the stop rolls the sweep back
 * too, and the copies' checkpoints move past it. A crash during it leaves a later unclean start
 * to sweep again from where the journal is.
 */
async function sweepIntoJournal(g: ConsistencyGroup): Promise<void> {
  const j = g.journal;
  const init: InitProgress = g.init = { kind: 'full-sweep', regions: 0, regionsCompared: 0, bytesSent: 0, volumeBytes: 0, done: false };
  for (const s of g.sets) {
    const lu = s.lu;
    init.volumeBytes += Number(lu.blockCount) * lu.blockSize;
    const per = BigInt(g.copies[0].markers[s.index].regionBlocks);
    for (let lba = 0n; lba < lu.blockCount;) {
      let skip = unmappedRun(lu.store, lba);
      for (const c of g.copies) { const b = unmappedRun(c.replicas[s.index], lba); if (b < skip) skip = b; }
      skip = (skip / per) * per;
      if (skip > 0n) { lba += skip; continue; }
      const n = Number(lu.blockCount - lba < per ? lu.blockCount - lba : per);
      const d = await lu.store.read(lba, n);
      init.regionsCompared++;
      // Byte for byte, not by digest: the replicas are local files, read whole either way, and a
      // CRC32C digest cannot tell apart blocks that end with their own CRC32C (CRC linearity:
      // such a block leaves the register at a constant), as the crash test's blocks do.
      let differs = false;
      for (const c of g.copies) if (!differs && !d.equals(await c.replicas[s.index].read(lba, n))) differs = true;
      if (differs) {
        j.append({ time: Date.now(), set: s.index, kind: 'data', lba, blocks: n, data: j.copyIn(d), unmap: false });
        init.regions++;
        init.bytesSent += n * lu.blockSize;
      }
      lba += BigInt(n);
    }
  }
  await j.whenDurable(j.nextSeq - 1);
  for (const c of g.copies) await g.drainCopy(c, Infinity);
  init.done = true;
  g.log?.info({ group: g.name, ...init }, 'recovery sweep journaled what differed: the images before the stop are kept');
}

/** File journal: the local copy's undo stream, kept on disk from now on (undo-file.ts); null for a remote copy. */
async function openUndo(g: ConsistencyGroup, c: LocalCopy): Promise<DurableUndoStream | null> {
  if (!g.journal.undoPath || c instanceof CrrCopy) return null;
  if (c.undo instanceof DurableUndoStream) return c.undo;
  const log = await UndoLog.open(g.journal.undoPath(c.name));
  const undo = new DurableUndoStream(log);
  c.undo = undo;
  if (log.recovery.stop) g.log?.warn({ group: g.name, copy: c.name, ...log.recovery }, 'undo segments cut at a torn or bad entry');
  return undo;
}

/**
 * Recovery of copy `c`'s undo stream from its segments, before the records after its checkpoint
 * are re-applied; true when the history is kept (imageFloor set from it). Every record after the
 * image floor has an entry, so the entries that count are the run of consecutive sequences
 * ending at the newest, from the last `base` entry on (undo-file.ts). Entries after the checkpoint are records the replica may hold in part
 * (write-ahead: never a change without its entry): the replica is rolled back with them, newest
 * first, to the checkpoint, and re-applying the records recaptures them, so the chain stays
 * exact. History that cannot be trusted is dropped: entries lost before the newest (a segment
 * cut in the middle, not a torn tail), or missing between the newest and the checkpoint.
 */
async function recoverUndo(g: ConsistencyGroup, c: LocalCopy, undo: DurableUndoStream): Promise<boolean> {
  const cp = c.appliedSeq;
  const found = undo.log.found;
  undo.log.found = [];
  let k = found.length - 1;
  while (k > 0 && !found[k].base && found[k - 1].seq === found[k].seq - 1) k--;
  const run = found.slice(Math.max(k, 0));
  const newest = run.length ? run[run.length - 1].seq : cp;
  const drop = (why: string): false => {
    g.log?.warn({ group: g.name, copy: c.name, undoEntries: run.length, checkpoint: cp, why }, 'undo data dropped: images start at the recovery point');
    undo.clear();
    return false;
  };
  if (undo.log.recovery.lostSegments) return drop('undo segments lost after a bad entry');
  // No entry: where the floor was is not known (records up to it may still have been applied
  // after the checkpoint, without undo data), so images start at the recovery point.
  if (!run.length) { undo.clear(); return false; }
  if (newest < cp) return drop(`undo entries end at ${newest}, before the checkpoint ${cp}`);
  const floor = run[0].seq - 1;
  undo.adopt(run);
  undo.log.dropBefore(run[0].seq);
  if (newest > cp) {
    for (const e of undo.newestFirst(cp)) await restorePieces(c.replicas[e.set], e.pieces);
    for (const s of c.replicas) await s.flush?.();
    undo.truncateAfter(cp);
    await undo.log.settled();
  }
  c.imageFloor = floor;
  g.log?.info({ group: g.name, copy: c.name, imageFloor: floor, undoEntries: undo.length, rolledBack: newest - cp }, 'undo data recovered');
  return true;
}

/** File journal: the bookmarks saved before the stop (those naming records the journal lost go). */
async function loadBookmarks(g: ConsistencyGroup): Promise<void> {
  if (!g.journal.readBookmarks) return;
  const last = g.journal.nextSeq - 1;
  for (const b of await g.journal.readBookmarks()) {
    if (b.seq > last) { g.log?.warn({ group: g.name, bookmark: b.name, seq: b.seq, lastSeq: last }, 'bookmark dropped: it names records the journal lost'); continue; }
    g.bookmarks.set(b.name, { seq: b.seq, time: b.time });
  }
}

