/**
 * The splitter gate of the LU pipeline (lu.ts: … → medium state → splitter → execute) and the
 * recorder that carries a command's effect to the replicas.
 *
 * What is split, and as what, comes from the command table and nothing else: the entry's
 * `splitter` class names the primitive (or 'write' for a plain write, always split) and its
 * `writes()` names the extents and the LUs written (EXTENDED COPY writes its destination LUs, so
 * the destination's protection governs it). The protection itself (policies, consistency group,
 * journal) lives in src/splitter and is reached through the LU's `protection` field; an LU nobody
 * protects costs the pipeline one null check.
 *
 * Ordering: the gate decides before anything runs (a reject changes nothing), but the effect is
 * recorded by the command's own write path, inside the exclusive range-lock body that applies it
 * to production, after the store operation succeeded (SplitRecorder). Overlapping commands hold
 * their ranges one after the other (range-lock.ts), so a group's write sequence orders them as
 * production applied them, also with an asynchronous (file) store.
 */
import type { SenseReason } from '../../protocol/scsi/sense.ts';
import type { CommandDef } from './command.ts';
import type { LogicalUnit } from './lu.ts';
import { SenseError } from './types.ts';
import type { Extent, ScsiRequest } from './types.ts';

/**
 * A command-table entry's splitter class: 'none' (changes no block), 'write' (a plain write:
 * WRITE 6-16, WRITE AND VERIFY, ORWRITE, WRITE ATOMIC, FORMAT UNIT, SANITIZE; always split), or
 * the VAAI primitive it is, which the splitter's policy governs: 'ats' (COMPARE AND WRITE),
 * 'xcopy' (EXTENDED COPY), 'writesame' (WRITE SAME 10/16, with or without UNMAP, NDOB), 'unmap'.
 */
export type SplitterClass = 'none' | 'write' | SplitPrimitive;
export type SplitPrimitive = 'ats' | 'xcopy' | 'writesame' | 'unmap';
export type SplitPolicy = 'support' | 'reject' | 'ignore';

/** A command the splitter let run on production without splitting it (policy ignore). */
export interface IgnoredCommand {
  primitive: SplitPrimitive;
  name: string;
  opcode: number;
  serviceAction?: number;
  /** The production LU written and the extents on it (from writes()). */
  lu: LogicalUnit;
  extents: Array<{ lba: bigint; blocks: number }>;
  initiator: string;
  time: Date;
}

/** What protects one LU (a replication set of a consistency group, src/splitter). */
export interface LuProtection {
  policy(p: SplitPrimitive): SplitPolicy;
  /** The sense a rejected primitive is answered with. */
  rejectReason(p: SplitPrimitive): SenseReason;
  /** Whether INQUIRY/VPD/RSOC of this LU stop advertising the primitive. */
  hides(p: SplitPrimitive): boolean;
  ignored(c: IgnoredCommand): void;
  /**
   * A primitive the policy lets through reached the splitter, before it runs and whatever its
   * outcome (an ATS that miscompares arrived all the same): where a splitter version's known
   * faults are modelled (rp-flare30-pre509).
   */
  arrived(p: SplitPrimitive): void;
  /**
   * `data` is lent (a Data-Out or a store view): keep a copy, not the buffer, unless `owned` says
   * the caller made it for this record and will not touch it again.
   */
  data(lba: bigint, data: Buffer, cls: SplitterClass, owned: boolean): Promise<void> | null;
  /**
   * A private copy of `data` for a record the command makes later with data(…, owned = true),
   * when the lent buffer will not last until then (a store view the write changes); `discard`
   * it when the write fails instead. The journal's own memory, not a Buffer per record.
   */
  keep(data: Buffer): Buffer;
  discard(kept: Buffer): void;
  /**
   * The journal can hold a memory store's chunk shared copy-on-write (BackingStore.share) instead
   * of a copy: a memory journal. shared() records blocks [lba, …) as `chunk` holds them, and lets
   * the chunk go (releaseShared) when the record drops its payload, or at once when nothing is
   * recorded.
   */
  readonly sharesChunks: boolean;
  shared(lba: bigint, chunk: Buffer, cls: SplitterClass): Promise<void> | null;
  same(lba: bigint, blocks: number, block: Buffer, unmap: boolean, cls: SplitterClass): Promise<void> | null;
  unmap(lba: bigint, blocks: number, cls: SplitterClass): Promise<void> | null;
  /**
   * The records it makes become durable later (a file journal's group commit): the returned
   * promises must settle before the command is acknowledged. False for a memory journal.
   */
  readonly waitsForDurability: boolean;
}

/** A command's effect on the protected LUs it writes with policy support; the write paths call it. */
export class SplitRecorder {
  /** Whether any LU it records for has a journal whose records become durable later. */
  readonly waits: boolean;
  private durable: Array<Promise<void>> | null = null;

  constructor(private readonly cls: SplitterClass, private readonly lus: readonly LogicalUnit[]) {
    this.waits = lus.some((lu) => lu.protection?.waitsForDurability);
  }

  private track(p: Promise<void> | null | undefined): void {
    if (p) (this.durable ??= []).push(p);
  }

  /**
   * The command's response, held back until every journal record it made is durable: a write to
   * a LU protected by a file journal is acknowledged only then (journal-file.ts, group commit).
   * If a record cannot be made durable the command ends with the error instead of GOOD.
   */
  async acknowledge<R>(response: R | Promise<R>): Promise<R> {
    const r = await response;
    if (this.durable) await Promise.all(this.durable);
    return r;
  }

  private to(lu: LogicalUnit): LuProtection | null {
    return this.lus.includes(lu) ? lu.protection : null;
  }

  /** Blocks written with this data (copied by the recorder unless `owned`: a buffer made for it). */
  data(lu: LogicalUnit, lba: bigint, data: Buffer, owned = false): void {
    this.track(this.to(lu)?.data(lba, data, this.cls, owned));
  }

  /** A private copy of `data` for data(lu, …, owned = true) later (LuProtection.keep). */
  keep(lu: LogicalUnit, data: Buffer): Buffer {
    return this.to(lu)?.keep(data) ?? Buffer.from(data);
  }

  /**
   * Whether blocks written to `lu` can be recorded by written() instead of data(): a memory store
   * (synchronous, read() as it stands) and a journal that shares chunks.
   */
  sharesWith(lu: LogicalUnit): boolean {
    const p = this.to(lu);
    return p !== null && p.sharesChunks && lu.store.kind === 'memory' && lu.store.share !== undefined;
  }

  /**
   * Blocks [lba, lba+blocks) of `lu` were just written (sharesWith(lu)): recorded as the store
   * holds them, a whole chunk shared copy-on-write (no copy), else copied from the store's view.
   */
  written(lu: LogicalUnit, lba: bigint, blocks: number): void {
    const p = this.to(lu);
    if (!p) return;
    const chunk = lu.store.share!(lba, blocks);
    if (chunk) this.track(p.shared(lba, chunk, this.cls));
    else this.track(p.data(lba, lu.store.read(lba, blocks) as Buffer, this.cls, false));
  }

  /** `kept` will not be recorded: its write failed. */
  discard(lu: LogicalUnit, kept: Buffer): void {
    this.to(lu)?.discard(kept);
  }

  /** One block repeated over a range; `unmap`: the range was deallocated instead (reads zeros). */
  same(lu: LogicalUnit, lba: bigint, blocks: number, block: Buffer, unmap: boolean): void {
    this.track(this.to(lu)?.same(lba, blocks, block, unmap, this.cls));
  }

  unmap(lu: LogicalUnit, lba: bigint, blocks: number): void {
    this.track(this.to(lu)?.unmap(lba, blocks, this.cls));
  }
}

/**
 * The splitter gate. Throws the reject sense before anything runs; logs ignored commands; returns
 * the recorder for the LUs whose policy is support (null when there are none).
 */
export function splitGate(def: CommandDef, cmd: unknown, lu: LogicalUnit, req: ScsiRequest): SplitRecorder | null {
  const cls = def.splitter;
  const extents: Extent[] = def.writes ? def.writes(cmd) : [];
  // A plain write of one extent (every WRITE): no policy to ask, one LU to record for.
  if (cls === 'write' && extents.length === 1) {
    const t = extents[0].lu ?? lu;
    return t.protection && extents[0].blocks !== 0 ? new SplitRecorder(cls, [t]) : null;
  }
  const byLu = new Map<LogicalUnit, Array<{ lba: bigint; blocks: number }>>();
  for (const e of extents) {
    const t = e.lu ?? lu;
    if (!t.protection || e.blocks === 0) continue;
    let l = byLu.get(t);
    if (!l) byLu.set(t, (l = []));
    l.push({ lba: e.lba, blocks: e.blocks });
  }
  if (cls !== 'write' && cls !== 'none') {
    // A splitter refuses a primitive by its opcode, on the LU it is sent to as on the LUs it writes.
    const asked = lu.protection ? [lu, ...byLu.keys()] : [...byLu.keys()];
    for (const t of asked) {
      if (t.protection!.policy(cls) === 'reject') throw new SenseError(t.protection!.rejectReason(cls));
    }
  }
  const supported: LogicalUnit[] = [];
  for (const [t, ext] of byLu) {
    if (cls === 'write' || cls === 'none') { supported.push(t); continue; }
    t.protection!.arrived(cls);
    if (t.protection!.policy(cls) === 'support') { supported.push(t); continue; }
    t.protection!.ignored({
      primitive: cls, name: def.name, opcode: def.opcode, serviceAction: def.serviceAction, lu: t, extents: ext,
      initiator: req.nexus.initiatorName, time: new Date(),
    });
  }
  return supported.length ? new SplitRecorder(cls, supported) : null;
}

/** Whether `lu` stops advertising primitive `p` (INQUIRY 3PC, VPD 0x8F/0xB0/0xB2, RSOC). */
export function hidesPrimitive(lu: LogicalUnit, p: SplitPrimitive): boolean {
  return lu.protection !== null && lu.protection.hides(p);
}
