/**
 * The splitter side of a consistency group (group.ts): each production LU's protection (its
 * ReplicationSet, which the splitter gate in src/scsi/split.ts asks for the policy and hands what
 * is split), and what the group does with a split write: journal it for the distributor, apply
 * it to the copies as it is split (inline apply), or only mark its regions (transfer paused, high
 * load); and the ignored log. Split from group.ts by phase, as LIO splits its target: this is the
 * part that runs on the command's path, for every write.
 */
import type { SenseReason } from '../../protocol/scsi/sense.ts';
import type { LogicalUnit } from '../scsi/lu.ts';
import type { IgnoredCommand, LuProtection, SplitPrimitive, SplitterClass } from '../scsi/split.ts';
import { releaseShared } from '../store/memory.ts';
import type { ConsistencyGroup } from './group.ts';
import { checkFull, schedule, trimJournal } from './group-distribute.ts';
import { IGNORED_LOG_LIMIT } from './group-types.ts';
import { MemoryJournal } from './journal.ts';
import type { JournalRecord } from './journal.ts';
import type { Primitive } from './policy.ts';

/** The journal's bytes, as a multiple of its size, past which a write asks whether it is full (checkFull). */
const HIGH_LOAD_CHECK = 1.125;

/** Track a write that is not journaled (transfer paused): its regions are marked in every copy. */
export function mark(g: ConsistencyGroup, set: number, lba: bigint, blocks: number): void {
  for (const c of g.copies) c.markers[set].mark(lba, blocks);
}

/** Journal a split write; a promise when the host must wait for the record to be durable. */
export function append(g: ConsistencyGroup, r: Omit<JournalRecord, 'seq' | 'bytes'>): Promise<void> | null {
  const rec = g.journal.append(r);
  // A disabled copy is not distributed to: the write marks its regions for enable_copy.
  for (const c of g.copies) if (!c.enabled) c.markers[r.set].mark(r.lba, r.blocks);
  if (g.journal.bytes > g.journal.limitBytes * HIGH_LOAD_CHECK) checkFull(g);
  if (g.transfer === 'active') schedule(g);
  return g.journal.whenDurable(rec.seq);
}

/**
 * Whether a write can be applied to every copy as it is split, without a journal copy of its
 * payload or a turn of the distributor: a memory journal with transfer active and no high
 * load, and every copy a local one distributed to, on memory replicas (synchronous), with
 * nothing left to apply. The journal still records it (sequence, extent, time) and each copy
 * saves what it overwrote (undo), so images and the window are what the distributor would have
 * made; only the payload's stay in the Do stream is skipped, as it ends at distribution anyway.
 */
function appliesInline(g: ConsistencyGroup): boolean {
  if (!g.applyInline || g.transfer !== 'active' || g.highLoad || !(g.journal instanceof MemoryJournal)) return false;
  const last = g.journal.nextSeq - 1;
  for (const c of g.copies) {
    if (c.kind !== 'local' || !c.synchronous || !c.distributing || c.appliedSeq !== last) return false;
  }
  return true;
}

/**
 * Split a write's data: applied to the copies at once when they allow it (appliesInline), else
 * journaled for the distributor (`data` is lent: copied in unless `owned`).
 */
export function appendData(g: ConsistencyGroup, set: number, lba: bigint, blocks: number, data: Buffer, owned: boolean): Promise<void> | null {
  if (!appliesInline(g)) {
    return append(g, { time: Date.now(), set, kind: 'data', lba, blocks, data: owned ? data : g.journal.copyIn(data), unmap: false });
  }
  const j = g.journal as MemoryJournal;
  const rec = j.append({ time: Date.now(), set, kind: 'data', lba, blocks, data, unmap: false });
  for (const c of g.copies) {
    try {
      c.apply(rec);
    } catch (err) {
      // As the distributor does (distribute): the copy stops where it is, and the record keeps a
      // payload of its own for when the transfer starts again.
      j.keepPayload(rec);
      g.transition('active', 'error', `copy ${c.name} could not apply record ${rec.seq}: ${(err as Error).message}`);
      return null;
    }
  }
  j.distributed(rec);
  if (j.bytes > j.limitBytes) trimJournal(g, false);
  return null;
}

export function logIgnored(g: ConsistencyGroup, set: ReplicationSet, c: IgnoredCommand): void {
  const p = c.primitive as Primitive;
  g.ignoredCounts[p]++;
  if (g.ignoredLog.length >= IGNORED_LOG_LIMIT) g.ignoredLog.shift();
  g.ignoredLog.push({
    seq: g.journal.nextSeq - 1, primitive: p, name: c.name, opcode: c.opcode, serviceAction: c.serviceAction,
    lun: set.lu.lun, extents: c.extents, initiator: c.initiator, time: c.time,
  });
}

/** One production LU of a group: its protection (the splitter gate asks it). */
export class ReplicationSet implements LuProtection {
  constructor(readonly group: ConsistencyGroup, readonly index: number, readonly lu: LogicalUnit) {}

  policy(p: SplitPrimitive) { return this.group.spec.policies[p]; }

  rejectReason(p: SplitPrimitive): SenseReason {
    // COPY ABORTED, COPY TARGET DEVICE NOT REACHABLE: see XcopyReject in policy.ts.
    return p === 'xcopy' && this.group.spec.xcopyReject === 'copy-aborted' ? 'CopyTargetDeviceNotReachable' : 'InvalidOpcode';
  }

  hides(p: SplitPrimitive): boolean {
    return !this.group.spec.advertiseRejected && this.group.spec.policies[p] === 'reject';
  }

  ignored(c: IgnoredCommand): void { logIgnored(this.group, this, c); }

  arrived(p: SplitPrimitive): void {
    // rp-flare30-pre509: CAS (ATS) through the FLARE 30 array splitter made consistency groups fail
    // to initialize (recoverpoint-vaai-update-2011.md). The command itself runs on production.
    if (p === 'ats' && this.group.transfer === 'init' && this.group.spec.quirks?.atsFailsInitialization) {
      this.group.transition('init', 'error', 'initialization failed: COMPARE AND WRITE (ATS) arrived through the FLARE 30 array splitter (fixed in 4.30.000.5.509)');
    }
  }

  /** Whether a write goes no further than production: disabled group, or paused transfer (markers instead). */
  private untracked(lba: bigint, blocks: number): boolean {
    const g = this.group;
    if (g.state === 'disabled') return true;
    if (g.marking) { mark(g, this.index, lba, blocks); return true; }
    return false;
  }

  /** A file journal: the host's write waits for its record to be durable (split.ts acknowledge). */
  get waitsForDurability(): boolean { return this.group.journal.kind === 'file'; }

  data(lba: bigint, data: Buffer, cls: SplitterClass, owned: boolean): Promise<void> | null {
    if (this.untracked(lba, data.length / this.lu.blockSize)) return null;
    return appendData(this.group, this.index, lba, data.length / this.lu.blockSize, data, owned);
  }

  keep(data: Buffer): Buffer { return this.group.journal.copyIn(data); }

  discard(kept: Buffer): void { this.group.journal.discard(kept); }

  /** A memory journal holds shared chunks (a file journal's queue would outlive the record's payload). */
  get sharesChunks(): boolean { return this.group.journal.kind === 'memory'; }

  shared(lba: bigint, chunk: Buffer, cls: SplitterClass): Promise<void> | null {
    if (this.untracked(lba, chunk.length / this.lu.blockSize)) { releaseShared(chunk); return null; }
    return append(this.group, { time: Date.now(), set: this.index, kind: 'data', lba, blocks: chunk.length / this.lu.blockSize, data: chunk, unmap: false, shared: true });
  }

  same(lba: bigint, blocks: number, block: Buffer, unmap: boolean, cls: SplitterClass): Promise<void> | null {
    if (this.untracked(lba, blocks)) return null;
    return append(this.group, { time: Date.now(), set: this.index, kind: 'same', lba, blocks, data: unmap ? null : this.group.journal.copyIn(block), unmap });
  }

  unmap(lba: bigint, blocks: number, cls: SplitterClass): Promise<void> | null {
    if (this.untracked(lba, blocks)) return null;
    return append(this.group, { time: Date.now(), set: this.index, kind: 'unmap', lba, blocks, data: null, unmap: true });
  }
}
