/**
 * REPLICA CLAIM (vendor specific, opcode C2h; layout in protocol/scsi/replica-claim.ts): how the
 * production array of a remote copy (CRR, src/splitter/link.ts) makes an LU of this array the
 * replica volume of copy C of consistency group G. While the claim holds, the LU answers every
 * media command from any other I_T nexus with CHECK CONDITION, NOT READY, LOGICAL UNIT NOT READY,
 * MANUAL INTERVENTION REQUIRED (02/04/03), as a local copy's replica LU does while image access is
 * disabled (src/splitter/copy-target.ts: INQUIRY, REPORT LUNS and REQUEST SENSE answer as usual,
 * SPC-5 §4.6.5); the claiming nexus (the link) reads and writes it.
 *
 * The claim is RecoverPoint's "no access" of a replica copy: the remote site's appliances hold the
 * replica volumes whatever the WAN does, so a lost link leaves the claim in place (the remote
 * volumes stay production's image at some sequence; a host at the remote site does not write into
 * them by accident). It belongs to the initiator name, not the session: production's link logs in
 * again (a new I_T nexus) and claims again, which moves the claim to the new nexus. Another
 * initiator's CLAIM or RELEASE while it holds is RESERVATION CONFLICT. Every CLAIM clears what
 * other nexuses registered or reserved on the LU while no claim held (image access released it),
 * as a PERSISTENT RESERVE OUT CLEAR would, with RESERVATIONS PREEMPTED to them (pr.ts
 * clearForClaim): else their reservation would answer the link's records with RESERVATION
 * CONFLICT and outlive the image. What frees a claim whose
 * production is gone is the remote operator (`arraysim replica-claims release`, POST
 * /v1/replica-claims/release), as RecoverPoint's failover is run from the remote site. Claims live
 * in memory: a restarted remote array has none until production's link claims again. With a
 * `replicaJournal` folder (keepReplicaJournals) and file-backed LUs, each claim's undo log is kept
 * there too (replica-journal.ts), and that claim takes it back: the applied sequence and the
 * window are what they were before the restart.
 */
import { createHash } from 'node:crypto';
import path from 'node:path';
import {
  decodeReplicaClaimParams, decodeReplicaRecordHeader, encodeReplicaSequence, encodeReplicaUndo, REPLICA_CLAIM_OPCODE, REPLICA_RECORD_HEADER,
  REPLICA_RECORD_OPCODE, REPLICA_SEQUENCE_OPCODE, REPLICA_UNDO_HEADER, REPLICA_UNDO_OPCODE, ReplicaClaimAction, ReplicaClaimFormatError,
  ReplicaRecordKind, replicaUndoLength,
} from '../../protocol/scsi/replica-claim.ts';
import { crc32c } from '../../protocol/iscsi/digest.ts';
import type { BackingStore } from '../store/store.ts';
import type { CommandDef } from './command.ts';
import { checkRange, dataOut, invalidField, invalidParam, reserved } from './cdb.ts';
import type { LogicalUnit } from './lu.ts';
import { exclusive } from './range-lock.ts';
import { ImageWindowError, ReplicaJournal } from './replica-journal.ts';
import type { RecordNote } from './replica-journal.ts';
import { AHEAD_BYTES, AHEAD_RECORDS } from '../splitter/undo-file.ts';
import { MEDIA } from './sbc-common.ts';
import type { ScsiTarget } from './target.ts';
import { GOOD, ScsiStatus, SenseError, StatusError } from './types.ts';
import type { Nexus, ScsiResponse } from './types.ts';

/** The claim on one LU, as status shows it. */
export interface ReplicaClaim {
  group: string;
  copy: string;
  /** The owner: production's link initiator name. */
  initiator: string;
  /** The I_T nexus that reads and writes the LU (the link's current session). */
  nexusKey: string;
  since: string;
  /** The claim's receive queue, shared by every LU of the same owner, group and copy. */
  receiver: ReplicaReceiver;
}

/** Records received ahead of their predecessor that one claim holds at most (production keeps 16 in flight). */
export const RECEIVE_QUEUE_LIMIT = 256;

/**
 * A record as the receive queue applies it: `apply` does it all (undo in memory), or, with the
 * undo log on disk, `staged` in two steps, so that a run of them is captured, synced once, then
 * written (write-ahead).
 */
interface Waiting {
  seq: number; prev: number; apply: () => void | Promise<void>; settle: (e?: unknown) => void;
  staged?: { lu: LogicalUnit; lba: bigint; blocks: number; capture: () => void | Promise<void>; write: () => void | Promise<void> };
}

/**
 * The first piece of the remote site's journal: the receive queue of one claim (owner, group,
 * copy). Records (REPLICA RECORD) carry their group sequence and the one shipped before them; a
 * record is applied only once its predecessor is, one at a time, so the claim's LUs are at every
 * moment production's image at the applied sequence, whatever order the records arrive or their
 * writes complete in. A record whose predecessor has not come waits here (its command stays
 * open: GOOD means applied); a record already applied (sent again after a lost link) is GOOD at
 * once. What waits is dropped when the claim's nexus goes (the link dropped): production asks
 * for the applied sequence (REPLICA SEQUENCE) and sends again from there.
 */
export class ReplicaReceiver {
  applied = 0;
  /** A base was set or a record applied: `applied` is a sequence of the group. */
  valid = false;
  private readonly waiting = new Map<number, Waiting>();
  /** The record being applied (its write has not settled). */
  private current: { seq: number; done: Promise<void> } | null = null;
  readonly counters = { received: 0, applied: 0, duplicates: 0, queuedMax: 0, dropped: 0 };
  /** The remote site's copy journal: undo log, protection window, image presentation (replica-journal.ts). */
  readonly journal = new ReplicaJournal();

  /** Taking back the undo log on disk (the first CLAIM after the array started waits for it). */
  loading: Promise<void> | null = null;

  constructor(readonly key: string, private readonly log?: { info(o: object, msg: string): void; warn(o: object, msg: string): void }) {}

  /** Keep the claim's undo log in `dir`, taking back what is there (replica-journal.ts reload). */
  keepJournal(dir: string, lunOf: (lun: number) => LogicalUnit | undefined): Promise<void> {
    this.loading ??= this.journal.reload(dir, lunOf).then((r) => {
      if (r.applied !== null && !this.valid) { this.applied = r.applied; this.valid = true; }
      if (r.dropped) this.log?.warn({ claim: this.key, dir, why: r.dropped }, 'replica undo log dropped: images start at the present');
      else if (r.applied !== null) this.log?.info({ claim: this.key, dir, ...r }, 'replica undo log taken back');
    }, (e: unknown) => {
      // The folder cannot be used: the undo data lives in memory, as without one.
      this.journal.log = null;
      this.log?.warn({ claim: this.key, dir, err: (e as Error).message }, 'replica undo log not opened: undo data in memory only');
    });
    return this.loading;
  }

  get queued(): number { return this.waiting.size; }

  /** CLAIM with SETBASE: production's copy is at `seq` (after a synchronization); nothing older waits. */
  setBase(seq: number): void {
    this.drop('a new base sequence was set');
    this.applied = seq;
    this.valid = true;
    this.journal.rebase(seq);
  }

  /**
   * PRESENT IMAGE: the claim's LUs show the image at `seq` (replica-journal.ts). Records received
   * meanwhile wait (receive). Direct access: the volumes are no image of production any more, so
   * the applied sequence is void until production sets a base again.
   */
  async present(lu: LogicalUnit, seq: number, direct: boolean): Promise<void> {
    if (direct && this.current) await this.current.done;
    await this.journal.present(lu, seq, direct, this.applied);
    if (direct) this.valid = false;
    this.log?.info({ claim: this.key, lun: lu.lun, seq, direct }, 'replica image presented');
  }

  /** END IMAGE (or the owner claims again): the LUs are the volumes again, and what waited is applied. */
  endImage(why: string): void {
    const p = this.journal.end();
    if (!p) return;
    this.log?.info({ claim: this.key, seq: p.seq, direct: p.direct, why }, 'replica image presentation ended');
    if (p.direct) { this.drop('direct access ended: production synchronizes the volumes again'); return; }
    const next = this.current ? undefined : this.take(this.applied);
    if (next) this.run(next);
  }

  /** Drop what waits (the link's nexus is gone, or a base was set): its commands end with CHECK CONDITION. */
  drop(why: string): void {
    if (!this.waiting.size) return;
    const ws = [...this.waiting.values()];
    this.waiting.clear();
    this.counters.dropped += ws.length;
    for (const w of ws) w.settle(new SenseError('CommandSequenceError'));
    this.log?.info({ claim: this.key, dropped: ws.length, why }, 'replica receive queue dropped');
  }

  /**
   * One record: GOOD once it is applied (at once if it was). `keep` is called before the record
   * waits (its payload must outlive the transport's buffer).
   */
  receive(seq: number, prev: number, apply: () => void | Promise<void>, keep: () => void, staged?: Waiting['staged']): ScsiResponse | Promise<ScsiResponse> {
    this.counters.received++;
    if (!this.valid) { this.applied = prev; this.valid = true; }
    if (seq <= this.applied) { this.counters.duplicates++; return GOOD; }
    // Being applied (current.seq: the last record of the run being applied).
    if (this.current && seq <= this.current.seq) { this.counters.duplicates++; return this.current.done.then(() => GOOD); }
    // While an image is presented the volumes stay as they are: records wait (GOOD once applied).
    const now = prev === this.applied && !this.current && !this.journal.presentation;
    if (!now && this.waiting.size >= RECEIVE_QUEUE_LIMIT) throw new StatusError(ScsiStatus.TaskSetFull);
    return new Promise<ScsiResponse>((resolve, reject) => {
      const w: Waiting = { seq, prev, apply, staged, settle: (e) => (e ? reject(e) : resolve(GOOD)) };
      if (now) { this.run(w); return; }
      keep();
      const old = this.waiting.get(prev);
      this.waiting.set(prev, w);
      old?.settle(new SenseError('CommandSequenceError'));
      this.counters.queuedMax = Math.max(this.counters.queuedMax, this.waiting.size);
    });
  }

  /** Apply `w`, then every waiting record that follows it, in order, one write at a time. */
  private run(w: Waiting): void {
    if (this.journal.log && w.staged) { this.runAhead(w); return; }
    for (let cur: Waiting | undefined = w; cur;) {
      let r: void | Promise<void>;
      try { r = cur.apply(); } catch (e) { this.fail(cur, e); return; }
      if (r instanceof Promise) {
        const at = cur;
        this.current = { seq: at.seq, done: r.then(() => {}, () => {}) };
        r.then(() => {
          this.current = null;
          this.applyDone(at);
          const next = this.journal.presentation ? undefined : this.take(at.seq);
          if (next) this.run(next);
        }, (e: unknown) => { this.current = null; this.fail(at, e); });
        return;
      }
      this.applyDone(cur);
      cur = this.journal.presentation ? undefined : this.take(cur.seq);
    }
  }

  /**
   * With the undo log on disk: `w` and the records waiting behind it whose extents overlap none
   * before them (up to AHEAD_RECORDS, AHEAD_BYTES) form a run; their before-images are captured
   * and made durable with one fdatasync, then the volumes are written in order (undo-file.ts
   * applyWriteAhead, the local copy's rule). Within a run no extent overlaps another, so each
   * before-image is what the volume holds with every earlier record applied.
   */
  private runAhead(w: Waiting): void {
    const batch = [w];
    let bytes = w.staged!.blocks * w.staged!.lu.blockSize;
    for (;;) {
      const n = this.waiting.get(batch[batch.length - 1].seq);
      if (!n?.staged || batch.length >= AHEAD_RECORDS || bytes >= AHEAD_BYTES || batch.some((x) => overlaps(x.staged!, n.staged!))) break;
      this.waiting.delete(n.prev);
      batch.push(n);
      bytes += n.staged.blocks * n.staged.lu.blockSize;
    }
    let k = 0;
    const done = (async () => {
      for (const x of batch) await x.staged!.capture();
      await this.journal.ahead();
      for (; k < batch.length; k++) {
        await batch[k].staged!.write();
        this.applyDone(batch[k]);
      }
    })();
    this.current = { seq: batch[batch.length - 1].seq, done: done.then(() => {}, () => {}) };
    done.then(() => {
      this.current = null;
      const next = this.journal.presentation ? undefined : this.take(this.applied);
      if (next) this.run(next);
    }, (e: unknown) => {
      this.current = null;
      // What was captured and not applied is no undo data of the volume.
      this.journal.forget(this.applied);
      for (const x of batch.slice(k + 1)) x.settle(new SenseError('CommandSequenceError'));
      this.fail(batch[k], e);
    });
  }

  private applyDone(w: Waiting): void {
    this.applied = w.seq;
    this.counters.applied++;
    w.settle();
  }

  private take(prev: number): Waiting | undefined {
    const w = this.waiting.get(prev);
    if (w) this.waiting.delete(prev);
    return w;
  }

  /** A record could not be applied: it fails, and what waits behind it can never be applied. */
  private fail(w: Waiting, e: unknown): void {
    w.settle(e);
    this.drop(`record ${w.seq} failed`);
  }
}

function overlaps(a: { lu: LogicalUnit; lba: bigint; blocks: number }, b: { lu: LogicalUnit; lba: bigint; blocks: number }): boolean {
  return a.lu === b.lu && a.lba < b.lba + BigInt(b.blocks) && b.lba < a.lba + BigInt(a.blocks);
}

/** The receive queues of a target's claims, by owner, group and copy. */
const receivers = new WeakMap<ScsiTarget, Map<string, ReplicaReceiver>>();
/** The folder a target's claims keep their undo logs in (the array's `replicaJournal`, keepReplicaJournals). */
const journalDirs = new WeakMap<ScsiTarget, string>();

/** The claims of `target` keep their undo logs on disk, one folder each under `dir` (file-backed LUs only). */
export function keepReplicaJournals(target: ScsiTarget, dir: string): void { journalDirs.set(target, dir); }

/** The array stops: every claim's undo log is synced and closed. */
export async function closeReplicaJournals(target: ScsiTarget): Promise<void> {
  for (const r of receivers.get(target)?.values() ?? []) {
    await r.loading?.catch(() => {});
    await r.journal.log?.close().catch((e: unknown) => target.log?.warn({ claim: r.key, err: (e as Error).message }, 'replica undo log not closed cleanly'));
  }
}

/** A claim's folder: its names made safe, and a hash of the key so that two keys never share one. */
function journalFolder(key: string): string {
  const safe = key.replace(/[^A-Za-z0-9.-]+/g, '_').slice(0, 160);
  return `${safe}-${createHash('sha256').update(key).digest('hex').slice(0, 12)}.undo`;
}

/**
 * The receive queue of `key` on `target`; a new one keeps its undo log on disk when the target
 * has a journal folder and `lu` (the claiming LU) is file-backed: its volumes survive a restart.
 */
function receiverOf(target: ScsiTarget, key: string, lu?: LogicalUnit): ReplicaReceiver {
  let m = receivers.get(target);
  if (!m) receivers.set(target, m = new Map());
  let r = m.get(key);
  if (!r) {
    m.set(key, r = new ReplicaReceiver(key, target.log));
    const dir = journalDirs.get(target);
    if (dir && lu?.store.kind === 'file') void r.keepJournal(path.join(dir, journalFolder(key)), (n) => target.luns.get(n)).catch(() => {});
  }
  return r;
}

/**
 * The receive queue of `initiator` whose journal covers `lu` when it holds no claim there (image
 * access released it): the one with an image presented on `lu`, or the only one it has.
 */
function findReceiver(lu: LogicalUnit, initiator: string): ReplicaReceiver | undefined {
  const m = receivers.get(lu.target);
  if (!m) return undefined;
  const mine = [...m.values()].filter((r) => r.key.startsWith(`${initiator}|`));
  return mine.find((r) => r.journal.presentation?.luns.has(lu)) ?? (mine.length === 1 ? mine[0] : undefined);
}

interface ReplicaClaimCmd { action: ReplicaClaimAction; length: number }

/** A parameter list of at most this many bytes (two names of 255 and the header). */
const MAX_PARAMETER_LIST = 16 + 255 + 255;

const REPLICA_CLAIM: CommandDef<ReplicaClaimCmd> = {
  opcode: REPLICA_CLAIM_OPCODE, name: 'REPLICA CLAIM (vendor specific)', cdbLength: 16,
  usage: [REPLICA_CLAIM_OPCODE, 0x1f, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0x04],
  // Not a media command: the link's new session must be able to claim an LU its old session
  // holds (so no medium gate), and a pending unit attention stays for the next command.
  dataDirection: 'out', reservation: 'allowed', alua: 'unavailable-ok', ua: 'skip', splitter: 'none',
  decode: (cdb) => {
    const action = cdb[1] & 0x1f;
    if (action > ReplicaClaimAction.EndImage) throw invalidField(1);
    reserved(cdb, 1, 0xe0);
    for (const b of [2, 3, 4, 5, 6, 7, 8, 9, 14]) reserved(cdb, b, 0xff);
    const length = cdb.readUInt32BE(10);
    if (length > MAX_PARAMETER_LIST) throw invalidField(10);
    return { action, length };
  },
  execute: ({ lu, req }, c) => {
    let p;
    try {
      p = decodeReplicaClaimParams(dataOut(req, c.length), c.action);
    } catch (e) {
      if (!(e instanceof ReplicaClaimFormatError)) throw e;
      if (e.reason === 'ParameterListLengthError') throw new SenseError('ParameterListLengthError');
      throw invalidParam(e.byte ?? 0);
    }
    const held = lu.replicaClaim;
    const owner = req.nexus.initiatorName;
    const same = held !== null && held.initiator === owner && held.group === p.group && held.copy === p.copy;
    if (held && !same) throw new StatusError(ScsiStatus.ReservationConflict);
    if (c.action === ReplicaClaimAction.Release) {
      if (held) releaseClaim(lu, `released by ${owner}`);
      return GOOD;
    }
    // The image actions find the claim's journal by its owner and names: production releases the
    // claim while the image is accessed, so that the remote site's hosts see the image too.
    const known = held?.receiver ?? receiverOf(lu.target, `${owner}|${p.group}|${p.copy}`, lu);
    // The claim's undo log on disk is being taken back: nothing goes on before it is.
    if (known.loading) return known.loading.then(() => claimAction(lu, req.nexus, c, p, known));
    return claimAction(lu, req.nexus, c, p, known);
  },
};

/** REPLICA CLAIM's actions once the claim's receive queue is ready (its undo log taken back). */
function claimAction(lu: LogicalUnit, nexus: Nexus, c: ReplicaClaimCmd, p: ReturnType<typeof decodeReplicaClaimParams>, known: ReplicaReceiver): ScsiResponse | Promise<ScsiResponse> {
  // Again: another owner may have claimed while the undo log was taken back.
  const held = lu.replicaClaim;
  const owner = nexus.initiatorName;
  if (held && !(held.initiator === owner && held.group === p.group && held.copy === p.copy)) throw new StatusError(ScsiStatus.ReservationConflict);
  if (c.action === ReplicaClaimAction.PresentImage || c.action === ReplicaClaimAction.EndImage) {
    const receiver = held?.receiver ?? known;
    if (c.action === ReplicaClaimAction.EndImage) { receiver.endImage(`END IMAGE from ${owner}`); return GOOD; }
    return receiver.present(lu, p.image!, !!p.direct).then(() => GOOD, (e: unknown) => {
      if (!(e instanceof ImageWindowError)) throw e;
      lu.target.log?.info({ lun: lu.lun, group: p.group, copy: p.copy, image: p.image, err: e.message }, 'replica image refused');
      throw invalidParam(8);
    });
  }
  if (held?.nexusKey !== nexus.key) {
    const receiver = held?.receiver ?? known;
    // A new session of the owner: what the old one left waiting is dropped (it is sent again).
    if (held) receiver.drop('the claim moved to a new session');
    lu.replicaClaim = { group: p.group, copy: p.copy, initiator: owner, nexusKey: nexus.key, since: held?.since ?? new Date().toISOString(), receiver };
    lu.target.log?.info({ lun: lu.lun, group: p.group, copy: p.copy, initiator: owner, nexus: nexus.key, moved: !!held }, 'replica claimed');
  }
  // What other nexuses reserved or registered while no claim held goes (the claim's gate kept
  // them from doing so since): the link's writes never meet their RESERVATION CONFLICT.
  const cleared = lu.reservations.clearForClaim(nexus);
  if (cleared.registrations || cleared.legacyHolder) {
    lu.target.log?.info({ lun: lu.lun, group: p.group, copy: p.copy, ...cleared }, 'replica claimed: other nexuses\' reservations cleared');
  }
  const receiver = lu.replicaClaim!.receiver;
  // The owner claims again: it distributes from now on, so an image still presented (production
  // restarted during image access) ends.
  receiver.endImage('claimed again');
  if (p.undoLimitMiB) receiver.journal.limit = p.undoLimitMiB * (1 << 20);
  if (p.base !== undefined) receiver.setBase(p.base);
  return GOOD;
}

/** Drop the claim on `lu` (the owner's RELEASE, or the operator). Returns the claim dropped. */
export function releaseClaim(lu: LogicalUnit, reason: string): ReplicaClaim | null {
  const held = lu.replicaClaim;
  if (!held) return null;
  lu.replicaClaim = null;
  lu.target.log?.info({ lun: lu.lun, group: held.group, copy: held.copy, initiator: held.initiator, reason }, 'replica claim released');
  return held;
}

interface ReplicaRecordCmd { kind: ReplicaRecordKind; lba: bigint; blocks: number; payload: number }

/**
 * REPLICA RECORD: one journal record, applied to the LU through the receive queue of the claim the
 * sender holds (a media command: the claim's gate lets only the claim's nexus through). On an LU
 * the sender has not claimed: ILLEGAL REQUEST, INVALID FIELD IN CDB (byte 0).
 */
const REPLICA_RECORD: CommandDef<ReplicaRecordCmd> = {
  opcode: REPLICA_RECORD_OPCODE, name: 'REPLICA RECORD (vendor specific)', cdbLength: 16,
  usage: [REPLICA_RECORD_OPCODE, 0x03, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0x04],
  dataDirection: 'out', reservation: 'write', splitter: 'none', ...MEDIA,
  decode: (cdb, lu) => {
    const kind = cdb[1] & 0x03;
    if (kind > ReplicaRecordKind.Deallocate) throw invalidField(1);
    reserved(cdb, 1, 0xfc);
    reserved(cdb, 14, 0xff);
    const lba = cdb.readBigUInt64BE(2);
    const blocks = cdb.readUInt32BE(10);
    checkRange(lu, lba, blocks);
    const payload = kind === ReplicaRecordKind.Write ? blocks * lu.blockSize : kind === ReplicaRecordKind.WriteSame ? lu.blockSize : 0;
    return { kind, lba, blocks, payload };
  },
  execute: ({ lu, req }, c) => {
    const claim = lu.replicaClaim;
    if (!claim || claim.nexusKey !== req.nexus.key) throw invalidField(0);
    const d = dataOut(req, REPLICA_RECORD_HEADER + c.payload);
    if (d.length < REPLICA_RECORD_HEADER + c.payload) throw new SenseError('ParameterListLengthError');
    const { seq, prev } = decodeReplicaRecordHeader(d);
    if (prev >= seq) throw invalidParam(8);
    // The transport lends Data-Out until the response: a record that waits keeps its own copy.
    let body = d.subarray(REPLICA_RECORD_HEADER);
    const journal = claim.receiver.journal;
    // The volume itself, also while an image is presented over it.
    const write = (s: BackingStore) => {
      lu.stats.writes++;
      lu.stats.writeBytes += c.blocks * lu.blockSize;
      if (c.kind === ReplicaRecordKind.Write) return s.write(c.lba, body);
      if (c.kind === ReplicaRecordKind.WriteSame) return s.writeSame ? s.writeSame(c.lba, c.blocks, body, false) : s.write(c.lba, Buffer.alloc(c.blocks * lu.blockSize).fill(body));
      // A deallocated range reads zeros (LBPRZ=1).
      return s.unmap ? s.unmap(c.lba, c.blocks) : s.write(c.lba, Buffer.alloc(c.blocks * lu.blockSize));
    };
    const apply = () => {
      const s = journal.baseStore(lu);
      return exclusive(lu, c.lba, c.blocks, () => {
        // What the record overwrites goes to the claim's undo log first (the remote copy journal).
        const saved = journal.capture(seq, lu, s, c.lba, c.blocks);
        return saved instanceof Promise ? saved.then(() => write(s)) : write(s);
      });
    };
    // The undo log on disk: captured with the record's note, written once the run's entries are durable.
    const staged = journal.log ? {
      lu, lba: c.lba, blocks: c.blocks,
      capture: () => journal.capture(seq, lu, journal.baseStore(lu), c.lba, c.blocks, {
        prev, kind: c.kind === ReplicaRecordKind.Write ? 'write' : c.kind === ReplicaRecordKind.WriteSame ? 'same' : 'deallocate',
        crc: c.kind === ReplicaRecordKind.Write ? crc32c(body) : 0, block: c.kind === ReplicaRecordKind.WriteSame ? body : undefined,
      } satisfies RecordNote),
      write: () => exclusive(lu, c.lba, c.blocks, () => write(journal.baseStore(lu))),
    } : undefined;
    return claim.receiver.receive(seq, prev, apply, () => { body = Buffer.from(body); }, staged);
  },
};

/** REPLICA SEQUENCE: the applied sequence of the claim the asking initiator holds on this LU (the link asks it after a login). */
const REPLICA_SEQUENCE: CommandDef<{ allocation: number }> = {
  opcode: REPLICA_SEQUENCE_OPCODE, name: 'REPLICA SEQUENCE (vendor specific)', cdbLength: 16,
  usage: [REPLICA_SEQUENCE_OPCODE, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0x04],
  dataDirection: 'in', reservation: 'allowed', alua: 'unavailable-ok', ua: 'skip', splitter: 'none',
  decode: (cdb) => {
    for (const b of [1, 2, 3, 4, 5, 6, 7, 8, 9, 14]) reserved(cdb, b, 0xff);
    return { allocation: cdb.readUInt32BE(10) };
  },
  execute: ({ lu, req }, c) => {
    const claim = lu.replicaClaim;
    if (claim && claim.initiator !== req.nexus.initiatorName) throw new StatusError(ScsiStatus.ReservationConflict);
    // Production asks while it holds the claim, and while it released it for image access.
    const r = claim?.receiver ?? findReceiver(lu, req.nexus.initiatorName);
    const w = r?.journal.window();
    const pr = r?.journal.presentation;
    const data = encodeReplicaSequence({
      applied: r?.applied ?? 0, valid: r?.valid ?? false, claimed: !!claim, queued: r?.queued ?? 0,
      oldestImage: w?.oldestImage ?? null, image: pr ? pr.seq : null, direct: !!pr?.direct, undoBytes: w?.undoBytes ?? 0, undoLimit: w?.undoLimit ?? 0,
    });
    return { status: ScsiStatus.Good, data: data.subarray(0, Math.min(data.length, c.allocation)), sense: null };
  },
};

/**
 * REPLICA UNDO: the undo data of the asking initiator's claim on this LU (protocol/scsi/replica-claim.ts),
 * so that production rebuilds its image at an older sequence for verify --image. Asked while the
 * claim holds and while image access released it, as REPLICA SEQUENCE is; another initiator's
 * claim: RESERVATION CONFLICT.
 */
const REPLICA_UNDO: CommandDef<{ after: number; allocation: number }> = {
  opcode: REPLICA_UNDO_OPCODE, name: 'REPLICA UNDO (vendor specific)', cdbLength: 16,
  usage: [REPLICA_UNDO_OPCODE, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0x04],
  dataDirection: 'in', reservation: 'allowed', alua: 'unavailable-ok', ua: 'skip', splitter: 'none',
  decode: (cdb) => {
    for (const b of [1, 14]) reserved(cdb, b, 0xff);
    const allocation = cdb.readUInt32BE(10);
    if (allocation < REPLICA_UNDO_HEADER) throw invalidField(10);
    return { after: Number(cdb.readBigUInt64BE(2)), allocation };
  },
  execute: ({ lu, req }, c) => {
    const claim = lu.replicaClaim;
    if (claim && claim.initiator !== req.nexus.initiatorName) throw new StatusError(ScsiStatus.ReservationConflict);
    const r = claim?.receiver ?? findReceiver(lu, req.nexus.initiatorName);
    const size = (p: { blocks: number; data: Buffer | null }) => replicaUndoLength(p, lu.blockSize);
    const got = r ? r.journal.undoOf(lu, c.after, c.allocation - REPLICA_UNDO_HEADER, size) : { pieces: [], more: false, next: 0 };
    return { status: ScsiStatus.Good, data: encodeReplicaUndo(got.pieces, lu.blockSize, got.more, got.next), sense: null };
  },
};

export const REPLICA_COMMANDS: CommandDef[] = [REPLICA_CLAIM, REPLICA_RECORD, REPLICA_SEQUENCE, REPLICA_UNDO];
