/**
 * Consistency groups (RecoverPoint's word): one or more production LUs (replication sets) and one
 * or more copies, with one write sequence for the whole group, so every copy is write-order
 * consistent across all of the group's LUs. Each replication set is the LU's `protection`
 * (src/scsi/split.ts): it applies the splitter's policy and appends what is split to the group's
 * journal; the distributor applies the journal to each copy's replica volumes, in order, off the
 * command's path.
 *
 * States (names after RecoverPoint's; shared/reference/replication-anchors.md, FAPI TransferState):
 * the group is `enabled`; its transfer is `init` (first initialization sweep running), `active`
 * (distributing), `paused` (journaling, not distributing) or `error`. Every change goes through
 * transition(from, to, reason), which checks and logs it.
 */
import type { Logger } from 'pino';
import type { SenseReason } from '../../protocol/scsi/sense.ts';
import type { LogicalUnit } from '../scsi/lu.ts';
import { shared } from '../scsi/range-lock.ts';
import type { IgnoredCommand, LuProtection, SplitPrimitive, SplitterClass } from '../scsi/split.ts';
import { MemoryStore } from '../store/memory.ts';
import type { BackingStore } from '../store/store.ts';
import { MemoryJournal } from './journal.ts';
import type { JournalRecord, ProtectionWindow } from './journal.ts';
import { PRIMITIVES } from './policy.ts';
import type { Primitive, SplitterSpec } from './policy.ts';
import { formatSpec } from './policy.ts';

export type GroupState = 'enabled';
export type TransferState = 'init' | 'active' | 'paused' | 'error';

/** Which transfer changes are legal, and nothing else. */
const TRANSFER_EDGES: Record<TransferState, readonly TransferState[]> = {
  init: ['active', 'paused', 'error'],
  active: ['paused', 'error'],
  paused: ['init', 'active'],
  error: ['init', 'paused'],
};

/** One entry of the group's "ignored" log: a command production ran that no copy received. */
export interface IgnoredEntry {
  /** The group's write sequence when it ran: it came after journal record `seq`, before seq+1. */
  seq: number;
  primitive: Primitive;
  name: string;
  opcode: number;
  serviceAction?: number;
  lun: number;
  extents: Array<{ lba: bigint; blocks: number }>;
  initiator: string;
  time: Date;
}

/** How many ignored entries the log keeps (counts go on beyond it). */
export const IGNORED_LOG_LIMIT = 10_000;

/** Regions of the first initialization sweep (and of verify): 1 MiB. */
export const REGION_BYTES = 1 << 20;

/** The distributor applies at most this many records per event-loop turn. */
const DISTRIBUTE_BATCH = 4096;

/** A copy of the group (CDP: `local`, on this array): one replica volume per replication set. */
export class LocalCopy {
  readonly kind = 'local' as const;
  /** Highest journal sequence applied to the replicas. */
  appliedSeq = 0;
  appliedRecords = 0;
  constructor(readonly name: string, readonly replicas: BackingStore[]) {}

  /** Apply one record to the replica of its set (memory replicas: synchronous). */
  apply(r: JournalRecord): void {
    const s = this.replicas[r.set];
    if (r.kind === 'data') void s.write(r.lba, r.data!);
    else if (r.kind === 'unmap') {
      if (s.unmap) void s.unmap(r.lba, r.blocks); else void s.writeSame!(r.lba, r.blocks, Buffer.alloc(s.blockSize), false);
    } else if (r.unmap && s.unmap) void s.unmap(r.lba, r.blocks);
    // A deallocated range reads zeros (LBPRZ=1) whatever the WRITE SAME block held.
    else void s.writeSame!(r.lba, r.blocks, r.unmap ? Buffer.alloc(s.blockSize) : r.data!, false);
    this.appliedSeq = r.seq;
    this.appliedRecords++;
  }
}

export interface GroupOptions {
  name: string;
  spec: SplitterSpec;
  /** Production LUs, in replication-set order. */
  luns: LogicalUnit[];
  copies: string[];
  journalBytes: number;
  /** Start the transfer (first initialization, then active) at once; else paused. */
  startTransfer: boolean;
  log?: Logger;
}

/** A state change, as listeners (the admin event bus) get it. */
export interface GroupEvent { group: string; from: TransferState; to: TransferState; reason: string; time: string }

export class ConsistencyGroup {
  readonly name: string;
  readonly spec: SplitterSpec;
  readonly sets: ReplicationSet[];
  readonly copies: LocalCopy[];
  readonly journal: MemoryJournal;
  readonly state: GroupState = 'enabled';
  transfer: TransferState = 'paused';
  readonly bookmarks = new Map<string, { seq: number; time: string }>();
  readonly ignoredLog: IgnoredEntry[] = [];
  readonly ignoredCounts: Record<Primitive, number> = { ats: 0, xcopy: 0, writesame: 0, unmap: 0 };
  /** State changes, newest last (bounded). */
  readonly history: GroupEvent[] = [];
  readonly listeners = new Set<(e: GroupEvent) => void>();
  /** The first initialization sweep: bytes read from production and sent to the copies. */
  init = { regions: 0, bytesSent: 0, volumeBytes: 0, done: false };
  private scheduled = false;
  private initializing: Promise<void> = Promise.resolve();
  private readonly log?: Logger;

  constructor(o: GroupOptions) {
    if (!o.luns.length) throw new Error(`group ${o.name}: no production LUs`);
    if (!o.copies.length) throw new Error(`group ${o.name}: no copies`);
    this.name = o.name;
    this.spec = o.spec;
    this.log = o.log;
    this.journal = new MemoryJournal(o.journalBytes);
    this.sets = o.luns.map((lu, i) => {
      if (lu.protection) throw new Error(`group ${o.name}: LUN ${lu.lun} of ${lu.target.name} is already protected`);
      return new ReplicationSet(this, i, lu);
    });
    // Replica volumes: thin memory stores of the production LU's geometry.
    this.copies = o.copies.map((c) => new LocalCopy(c, o.luns.map((lu) => new MemoryStore(lu.blockCount, { blockSize: lu.blockSize }))));
    for (const s of this.sets) s.lu.protection = s;
    if (o.startTransfer) this.startTransfer('group created with start_transfer=yes');
  }

  /** The one place transfer state changes: checked against TRANSFER_EDGES, logged, announced. */
  transition(from: TransferState, to: TransferState, reason: string): void {
    if (this.transfer !== from) throw new Error(`group ${this.name}: transfer is ${this.transfer}, not ${from}`);
    if (!TRANSFER_EDGES[from].includes(to)) throw new Error(`group ${this.name}: transfer cannot go from ${from} to ${to}`);
    this.transfer = to;
    const e: GroupEvent = { group: this.name, from, to, reason, time: new Date().toISOString() };
    this.history.push(e);
    if (this.history.length > 100) this.history.shift();
    this.log?.info({ group: this.name, from, to, reason }, 'consistency group transfer state');
    for (const l of this.listeners) l(e);
    if (to === 'active') this.schedule();
  }

  /**
   * start_transfer: the first time, an initialization sweep copies every allocated region of
   * production to the copies while new writes are journaled, then the journal is distributed on
   * top (last writer wins, in sequence order, so the result is production). Later: resume.
   */
  startTransfer(reason: string): Promise<void> {
    if (this.transfer === 'active' || this.transfer === 'init') return Promise.resolve();
    if (this.init.done) { this.transition(this.transfer, 'active', reason); return Promise.resolve(); }
    this.transition(this.transfer, 'init', reason);
    return this.initializing = this.initialize().then(
      () => { if (this.transfer === 'init') this.transition('init', 'active', 'initialization complete'); },
      (err: unknown) => { if (this.transfer === 'init') this.transition('init', 'error', `initialization failed: ${(err as Error).message}`); },
    );
  }

  /** Settles once a running first initialization has ended (at once when none runs). */
  ready(): Promise<void> { return this.initializing; }

  pauseTransfer(reason: string): void {
    if (this.transfer === 'paused') return;
    this.transition(this.transfer, 'paused', reason);
  }

  private async initialize(): Promise<void> {
    this.init = { regions: 0, bytesSent: 0, volumeBytes: 0, done: false };
    for (const s of this.sets) {
      const lu = s.lu;
      this.init.volumeBytes += Number(lu.blockCount) * lu.blockSize;
      const per = BigInt(Math.max(1, Math.floor(REGION_BYTES / lu.blockSize)));
      for (let lba = 0n; lba < lu.blockCount;) {
        if (this.transfer !== 'init') return;
        const m = lu.store.mapping?.(lba);
        if (m && !m.mapped) { lba += m.blocks; continue; }
        const n = Number(lu.blockCount - lba < per ? lu.blockCount - lba : per);
        const at = lba;
        // Shared: no write is half applied while the region is read, and none can change it (a
        // memory store's read is a view) until the replicas have copied it; a write waiting for
        // the region is journaled after it, and applied on top.
        await shared(lu, at, n, async () => {
          const d = await lu.store.read(at, n);
          for (const c of this.copies) await c.replicas[s.index].write(at, d);
        });
        this.init.regions++;
        this.init.bytesSent += n * lu.blockSize;
        lba += BigInt(n);
        await new Promise<void>((r) => setImmediate(r));
      }
    }
    this.init.done = true;
  }

  // ---- the splitter side ---------------------------------------------------------------------

  append(r: Omit<JournalRecord, 'seq' | 'bytes'>): void {
    this.journal.append(r);
    if (this.transfer === 'active') this.schedule();
  }

  logIgnored(set: ReplicationSet, c: IgnoredCommand): void {
    const p = c.primitive as Primitive;
    this.ignoredCounts[p]++;
    if (this.ignoredLog.length >= IGNORED_LOG_LIMIT) this.ignoredLog.shift();
    this.ignoredLog.push({
      seq: this.journal.nextSeq - 1, primitive: p, name: c.name, opcode: c.opcode, serviceAction: c.serviceAction,
      lun: set.lu.lun, extents: c.extents, initiator: c.initiator, time: c.time,
    });
  }

  // ---- the distributor -------------------------------------------------------------------------

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => { this.scheduled = false; this.distribute(DISTRIBUTE_BATCH); });
  }

  /** Apply up to `max` records per copy; reschedule when more are left. */
  distribute(max: number): void {
    if (this.transfer !== 'active') return;
    let more = false;
    for (const c of this.copies) {
      try {
        for (const r of this.journal.after(c.appliedSeq, max)) c.apply(r);
      } catch (err) {
        // A replica that cannot take a record (its thin pool is exhausted): the copy stops where
        // it is, production goes on, and the transfer says so.
        this.transition('active', 'error', `copy ${c.name} could not apply record ${c.appliedSeq + 1}: ${(err as Error).message}`);
        return;
      }
      if (c.appliedSeq < this.journal.nextSeq - 1) more = true;
    }
    this.journal.trim(Math.min(...this.copies.map((c) => c.appliedSeq)));
    if (more) this.schedule();
  }

  /** Apply everything journaled so far to `copy` now (verify's drain). Only with transfer active. */
  catchUp(copy: LocalCopy): void {
    if (this.transfer !== 'active') throw new Error(`group ${this.name}: transfer is ${this.transfer}; the copy cannot be drained (start the transfer first)`);
    for (const r of this.journal.after(copy.appliedSeq)) copy.apply(r);
  }

  copy(name?: string): LocalCopy {
    const c = name === undefined ? this.copies[0] : this.copies.find((x) => x.name === name);
    if (!c) throw new Error(`group ${this.name}: no copy "${name}" (copies: ${this.copies.map((x) => x.name).join(', ')})`);
    return c;
  }

  bookmark(name: string): { name: string; seq: number; time: string } {
    if (typeof name !== 'string' || !/^[\w.:-]{1,64}$/.test(name)) throw new Error('name: a bookmark name is 1-64 letters, digits, . _ : -');
    if (this.bookmarks.has(name)) throw new Error(`name: bookmark "${name}" exists in group ${this.name}`);
    const b = { seq: this.journal.nextSeq - 1, time: new Date().toISOString() };
    this.bookmarks.set(name, b);
    this.log?.info({ group: this.name, bookmark: name, seq: b.seq }, 'bookmark');
    return { name, ...b };
  }

  status(): GroupStatus {
    const last = this.journal.nextSeq - 1;
    return {
      name: this.name,
      state: this.state,
      transfer: this.transfer,
      splitter: { spec: formatSpec(this.spec), kind: this.spec.kind },
      replicationSets: this.sets.map((s) => ({ lun: s.lu.lun, target: s.lu.target.name, blocks: String(s.lu.blockCount), blockSize: s.lu.blockSize })),
      journal: {
        kind: 'memory', bytes: this.journal.bytes, limitBytes: this.journal.limitBytes, records: this.journal.length,
        lastSeq: last, evictedRecords: this.journal.evicted, protectionWindow: this.journal.window(),
      },
      copies: this.copies.map((c) => ({
        name: c.name, kind: c.kind, appliedSeq: c.appliedSeq,
        lag: { records: last - c.appliedSeq, bytes: this.journal.bytesAfter(c.appliedSeq) },
      })),
      initialization: { ...this.init },
      bookmarks: [...this.bookmarks].map(([name, b]) => ({ name, ...b })),
      ignored: { ...this.ignoredCounts },
      history: this.history.slice(-10),
    };
  }
}

export interface GroupStatus {
  name: string;
  state: GroupState;
  transfer: TransferState;
  splitter: { spec: string; kind: string };
  replicationSets: Array<{ lun: number; target: string; blocks: string; blockSize: number }>;
  journal: { kind: 'memory'; bytes: number; limitBytes: number; records: number; lastSeq: number; evictedRecords: number; protectionWindow: ProtectionWindow };
  copies: Array<{ name: string; kind: string; appliedSeq: number; lag: { records: number; bytes: number } }>;
  initialization: { regions: number; bytesSent: number; volumeBytes: number; done: boolean };
  bookmarks: Array<{ name: string; seq: number; time: string }>;
  ignored: Record<Primitive, number>;
  history: GroupEvent[];
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

  ignored(c: IgnoredCommand): void { this.group.logIgnored(this, c); }

  private arrived(cls: SplitterClass): void {
    // rp-flare30-pre509: ATS through the FLARE 30 array splitter made group initialization fail
    // (recoverpoint-vaai-update-2011.md).
    if (cls === 'ats' && this.group.transfer === 'init' && this.group.spec.quirks?.atsFailsInitialization) {
      this.group.transition('init', 'error', 'initialization failed: COMPARE AND WRITE (ATS) arrived through the FLARE 30 array splitter (fixed in 4.30.000.5.509)');
    }
  }

  data(lba: bigint, data: Buffer, cls: SplitterClass, owned: boolean): void {
    this.arrived(cls);
    this.group.append({ time: Date.now(), set: this.index, kind: 'data', lba, blocks: data.length / this.lu.blockSize, data: owned ? data : this.group.journal.copyIn(data), unmap: false });
  }

  same(lba: bigint, blocks: number, block: Buffer, unmap: boolean, cls: SplitterClass): void {
    this.arrived(cls);
    this.group.append({ time: Date.now(), set: this.index, kind: 'same', lba, blocks, data: unmap ? null : this.group.journal.copyIn(block), unmap });
  }

  unmap(lba: bigint, blocks: number, cls: SplitterClass): void {
    this.arrived(cls);
    this.group.append({ time: Date.now(), set: this.index, kind: 'unmap', lba, blocks, data: null, unmap: true });
  }
}

export { PRIMITIVES };
