/**
 * What the secondary lacks, and the resync that sends it: one phase of a Remote Copy group
 * (group-machine.ts), split from the machine by phase as LIO splits its target. While the group
 * is stopped (link down, stopgroup) or a write never reached the peer, the regions it touched are
 * kept as dirty extents, and WRITE SAMEs and UNMAPs as records (DRBD's bitmap, in extents); a
 * start turns them into a `resync` action, which the shell (engine.ts) carries out, and its
 * `resync-done` makes the pair Synced. Nothing here runs for a write replicated while
 * Synced: only a write made alone (or lost with the link) is recorded.
 */
import type { GroupMachine } from './group-machine.ts';
import type { DirtyExtent, GroupAction, WriteOp } from './group-types.ts';

/** At most this many records are kept; later WRITE SAMEs and UNMAPs go into the dirty extents (sent as data). */
const MAX_DIRTY_OPS = 4096;

/** Primary: Syncing, and the resync of what the secondary lacks (all of it after a failover). */
export function startReplication(m: GroupMachine, reason: string, out: GroupAction[]): void {
  m.transition(m.status, 'Syncing', reason, out);
  out.push({ kind: 'send', message: { type: 'group-state', state: 'Syncing', reason } });
  out.push({ kind: 'resync', extents: coalesce(m.dirty), records: [...m.dirtyOps], full: m.fullResync });
}

/** The shell sent everything the resync named, and the peer acknowledged it: Synced. */
export function resyncDone(m: GroupMachine, out: GroupAction[]): void {
  if (m.status !== 'Syncing') return;
  m.dirty = []; m.dirtyOps = [];
  m.dirtyCompactAt = 1024;
  m.fullResync = false;
  m.transition('Syncing', 'Synced', 'resync complete', out);
  out.push({ kind: 'send', message: { type: 'group-state', state: 'Synced', reason: 'resync complete' } });
}

/** Primary: Stopped, and the secondary told so while the link is up. */
export function stopReplication(m: GroupMachine, reason: string, out: GroupAction[]): void {
  if (m.link === 'up') out.push({ kind: 'send', message: { type: 'group-state', state: 'Stopped', reason } });
  m.transition(m.status, 'Stopped', reason, out);
}

/** Regions the secondary lacks, coalesced when the list grows (amortised, GroupMachine.dirtyCompactAt). */
export function markDirty(m: GroupMachine, xs: readonly DirtyExtent[]): void {
  for (const x of xs) m.dirty.push(x);
  if (m.dirty.length >= m.dirtyCompactAt) {
    m.dirty = coalesce(m.dirty);
    m.dirtyCompactAt = Math.max(1024, 2 * m.dirty.length);
  }
}

/**
 * A write made while the group does not replicate (or lost with the link): a WRITE SAME or UNMAP
 * is kept as a record while there is room (GroupMachine.dirtyOps), anything else as its extents.
 */
export function recordDirty(m: GroupMachine, op: WriteOp): void {
  if ((op.kind === 'write-same' || op.kind === 'unmap') && m.dirtyOps.length < MAX_DIRTY_OPS) m.dirtyOps.push(op);
  else markDirty(m, extentsOf(op));
}

export function extentsOf(op: WriteOp): DirtyExtent[] {
  switch (op.kind) {
    case 'write': case 'write-same': return [{ volume: op.volume, lba: op.lba, blocks: op.blocks }];
    case 'unmap': return op.ranges.map((r) => ({ volume: op.volume, lba: r.lba, blocks: r.blocks }));
    // No blocks: a PR change made while the group is stopped is not marked; every resync ships each volume's PR state.
    case 'pr-state': return [];
  }
}

/** Sort and merge overlapping or adjacent extents per volume. */
export function coalesce(xs: readonly DirtyExtent[]): DirtyExtent[] {
  const s = [...xs].filter((x) => x.blocks > 0).sort((a, b) => a.volume - b.volume || (a.lba < b.lba ? -1 : a.lba > b.lba ? 1 : 0));
  const out: DirtyExtent[] = [];
  for (const x of s) {
    const last = out[out.length - 1];
    if (last && last.volume === x.volume && x.lba <= last.lba + BigInt(last.blocks)) {
      const end = x.lba + BigInt(x.blocks) > last.lba + BigInt(last.blocks) ? x.lba + BigInt(x.blocks) : last.lba + BigInt(last.blocks);
      last.blocks = Number(end - last.lba);
    } else out.push({ ...x });
  }
  return out;
}
