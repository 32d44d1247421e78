/**
 * The distributor of a consistency group (group.ts): it applies the journal to each copy's
 * replica volumes in write order, off the command's path, a batch per event-loop turn (memory
 * journal), or record by record with the replicas synced before a copy's checkpoint moves (file
 * journal, journal-file.ts); a remote copy's records go over its link (CrrCopy.ship). It trims
 * the journal to its size, but never past what an enabled copy still needs, and it enters and
 * leaves high load. Split from group.ts by phase, as LIO splits its target: what runs after a
 * write was acknowledged.
 */
import { CrrCopy } from './copy.ts';
import type { LocalCopy } from './copy.ts';
import type { ConsistencyGroup } from './group.ts';
import type { JournalRecord } from './journal.ts';
import { applyWriteAhead, DurableUndoStream } from './undo-file.ts';

/** The distributor applies at most this many records per event-loop turn. */
const DISTRIBUTE_BATCH = 4096;

/** Give the distributor a turn (one at a time, DISTRIBUTE_BATCH records per copy). */
export function schedule(g: ConsistencyGroup): void {
  if (g.scheduled) return;
  g.scheduled = true;
  setImmediate(() => { g.scheduled = false; distribute(g, DISTRIBUTE_BATCH); });
}

/** Apply up to `max` records per copy; reschedule when more are left. */
export function distribute(g: ConsistencyGroup, max: number): void {
  if (g.transfer !== 'active') return;
  if (g.journal.writeCheckpoint) { distributeDurable(g, max); return; }
  let more = false;
  for (const c of g.copies) {
    if (!c.distributing) continue;
    if (c instanceof CrrCopy) { ship(g, c, max); continue; }
    try {
      for (const r of g.journal.after(c.appliedSeq, max)) c.apply(r);
    } catch (err) {
      // A replica that cannot take a record (its thin pool is exhausted): the copy stops where
      // it is, production goes on, and the transfer says so.
      g.transition('active', 'error', `copy ${c.name} could not apply record ${c.appliedSeq + 1}: ${(err as Error).message}`);
      return;
    }
    if (c.appliedSeq < g.journal.nextSeq - 1) more = true;
  }
  trimJournal(g, false);
  if (more) schedule(g);
}

/**
 * A remote copy (CRR) of a memory-journaled group: up to `max` records go over its link in
 * write order, several in flight and applied by the remote array in sequence order (CrrCopy.ship),
 * off the distributor's turn; the local copies do not wait for it. A record the remote array
 * refuses, or a lost link, stops the transfer (`error`); start_transfer resumes from where the
 * remote array says it is.
 */
function ship(g: ConsistencyGroup, c: CrrCopy, max: number): void {
  if (c.shipping) return;
  const stop = () => g.transfer !== 'active' || !c.distributing;
  c.shipping = drainCopy(g, c, max, stop).then(
    () => {
      trimJournal(g, false);
      if (!stop() && c.appliedSeq < g.journal.nextSeq - 1) schedule(g);
    },
    (err: unknown) => {
      if (g.transfer === 'active') g.transition('active', 'error', `copy ${c.name} could not apply record ${c.appliedSeq + 1}: ${(err as Error).message}`);
    },
  ).finally(() => { c.shipping = null; });
}

/**
 * Drop the oldest records while over the size limit, but none an enabled copy still needs
 * (`durable`: none past its checkpoint); a copy with image access holds the journal where its
 * image is, as RecoverPoint's journal fills while an image is accessed. Undo data of images that
 * left the window goes with them.
 */
export function trimJournal(g: ConsistencyGroup, durable: boolean): void {
  let keep = Infinity;
  for (const c of g.copies) if (c.enabled) keep = Math.min(keep, durable ? c.checkpointSeq : c.appliedSeq, c.heldSeq);
  g.journal.trim(keep);
  for (const c of g.copies) c.undo.dropBefore(g.journal.firstSeq);
  if (g.highLoad) endHighLoad(g);
}

/** The journal is past HIGH_LOAD_CHECK of its size: history is dropped first; what is left over the size is undistributed (high load). */
export function checkFull(g: ConsistencyGroup): void {
  if (g.highLoad) return;
  // The distributor first: a burst of writes within one event-loop turn has not given it its turn yet.
  if (g.transfer === 'active' && !g.journal.writeCheckpoint) distribute(g, DISTRIBUTE_BATCH);
  trimJournal(g, !!g.journal.writeCheckpoint);
  if (g.journal.bytes <= g.journal.limitBytes) return;
  g.highLoad = true;
  const lagging = g.copies.filter((c) => c.enabled && c.appliedSeq < g.journal.nextSeq - 1).map((c) => c.name);
  g.log?.warn({ group: g.name, journalBytes: g.journal.bytes, limitBytes: g.journal.limitBytes, lagging }, 'high load: the journal is full of writes not yet distributed; writes are marked');
  g.announce({ kind: 'high-load', group: g.name, highLoad: true, reason: `journal full (${g.journal.bytes} of ${g.journal.limitBytes} bytes) with writes not yet distributed to ${lagging.join(', ') || 'no copy'}`, time: new Date().toISOString() });
}

/** High load ends once every copy distributed to has caught up and the journal is within its size; the marked regions follow. */
function endHighLoad(g: ConsistencyGroup): void {
  if (g.journal.bytes > g.journal.limitBytes) return;
  const last = g.journal.nextSeq - 1;
  if (g.copies.some((c) => c.distributing && c.appliedSeq < last)) return;
  g.highLoad = false;
  g.log?.info({ group: g.name }, 'high load over');
  g.announce({ kind: 'high-load', group: g.name, highLoad: false, reason: 'the copies caught up', time: new Date().toISOString() });
  if (g.transfer === 'active' && g.copies.some((c) => c.distributing && (c.needsSweep || c.markedRegions > 0))) {
    void g.beginInit('high load over: the regions marked meanwhile are sent (short initialization)').catch(() => {});
  }
}

/** Apply everything journaled so far to `copy` now (verify's drain). Only with transfer active. */
export function catchUp(g: ConsistencyGroup, copy: LocalCopy): void | Promise<void> {
  if (g.transfer !== 'active') throw new Error(`group ${g.name}: transfer is ${g.transfer}; the copy cannot be drained (start the transfer first)`);
  if (!copy.distributing) throw new Error(`group ${g.name}: copy ${copy.name} is not distributed to (${copy.enabled ? (copy.syncing ? 'synchronizing' : copy.access) : 'disabled'}); verify --image checks an accessed image`);
  if (awaited(g, copy)) return drainAll(g, copy);
  for (const r of g.journal.after(copy.appliedSeq)) void copy.apply(r);
}

/**
 * The distributor of a file-journaled group: replicas are file stores, so each record is
 * written in order (two writes to one block must not race in the thread pool), then the
 * replicas are fdatasync'd and only then the copy's checkpoint moves; the journal drops no
 * record past the lowest checkpoint, so a crash at any point leaves every record a copy may
 * lack still in the journal, to be re-applied at start-up.
 */
function distributeDurable(g: ConsistencyGroup, max: number): void {
  if (g.durableRun) return;
  g.durableRun = (async () => {
    // Each copy's records go in order; the copies go side by side (a local copy does not wait
    // for a remote one's link).
    const cs = g.copies.filter((c) => c.distributing);
    await Promise.all(cs.map((c) => drainCopy(g, c, max, () => g.transfer !== 'active' || !c.distributing)));
    // Records not yet durable wait for their group commit (onDurable schedules again).
    const more = cs.some((c) => c.appliedSeq < distributable(g));
    trimJournal(g, true);
    if (more) schedule(g);
  })().catch((err: unknown) => {
    if (g.transfer === 'active') g.transition('active', 'error', `copy could not apply a record: ${(err as Error).message}`);
  }).finally(() => { g.durableRun = null; });
}

/**
 * Apply up to `max` records to `copy` (until `stop` says so), then, with a file journal, sync its
 * replicas and move its checkpoint. One drain at a time per copy.
 */
export function drainCopy(g: ConsistencyGroup, c: LocalCopy, max: number, stop?: () => boolean): Promise<void> {
  const run = c.serial.then(async () => {
    // A snapshot of the records: the index may be compacted while the writes are awaited.
    // File journal: only what is durable (durableSeq). Memory: everything.
    const end = distributable(g);
    const batch: JournalRecord[] = [];
    for (const r of g.journal.after(c.appliedSeq, max)) { if (r.seq > end) break; batch.push(r); }
    // A remote copy: several records in flight, applied by the remote array in sequence order.
    if (c instanceof CrrCopy) await c.ship(batch, g.journal.nextSeq - 1, stop);
    else if (c.undo instanceof DurableUndoStream) await applyWriteAhead(c, c.undo, batch, stop);
    else {
      for (const r of batch) {
        if (stop?.()) break;
        await c.apply(r);
      }
    }
    if (!g.journal.writeCheckpoint) return;
    // A copy out of step with the journal (image access, disabled, marked, synchronizing) is
    // checkpointed as not initialized: a restart sweeps it.
    const initialized = g.init.done && c.inStep;
    if (c.checkpointSeq === c.appliedSeq && c.checkpointInitialized === initialized) return;
    for (const s of c.replicas) await s.flush?.();
    const cp = { appliedSeq: c.appliedSeq, initialized };
    await g.journal.writeCheckpoint!(c.name, cp);
    c.checkpointSeq = cp.appliedSeq;
    c.checkpointInitialized = cp.initialized;
  });
  c.serial = run.catch(() => {});
  return run;
}

/** The last record copies may get: a file journal's durable end, else the journal's end. */
export function distributable(g: ConsistencyGroup): number { return g.journal.durableSeq ?? g.journal.nextSeq - 1; }

/** Everything journaled so far is durable (file journal; memory: at once), then drainCopy gets all of it. */
export async function drainAll(g: ConsistencyGroup, c: LocalCopy): Promise<void> {
  await g.journal.whenDurable(g.journal.nextSeq - 1);
  await drainCopy(g, c, Infinity);
}

/** Whether applying a record to `c` settles later, so records go one after the other (file journal, remote copy). */
export function awaited(g: ConsistencyGroup, c: LocalCopy): boolean { return !!g.journal.writeCheckpoint || c.kind === 'remote'; }
