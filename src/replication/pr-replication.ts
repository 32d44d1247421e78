/**
 * Persistent reservations on a replicated volume (README "Peer replication", persistent
 * reservations). A cluster registers and reserves through either array and must see one PR state
 * (SPC-5 §5.14) and one holder enforced on both, so:
 *
 * - the primary executes every PERSISTENT RESERVE OUT, whichever array it arrived at: one
 *   registry decides, in one order. At the secondary the command runs its gates (unit attention,
 *   CONTROL byte, ALUA, SPC-2 RESERVE) and is then sent to the primary as it came (pr-out: the
 *   I_T nexus, the CDB and the parameter list); the primary answers with the status and sense.
 * - a PR OUT that changed the state is replicated as the volume's whole PR state (a few
 *   registrations: smaller than any diff, and it cannot drift), with the unit attentions it
 *   raised (REGISTRATIONS PREEMPTED, RESERVATIONS RELEASED, …) for the other array's I_T nexuses,
 *   as a record ordered with the writes (group sequence number, acked like a write). The host gets
 *   GOOD only once both arrays hold it, so PR IN (READ KEYS, READ RESERVATION, READ FULL STATUS,
 *   REPORT CAPABILITIES) answers the same through either array, PRGENERATION included, and the
 *   reservation gate of both arrays enforces the same holder.
 * - I_T nexus identity across the pair: initiator port name plus target port name. The arrays
 *   share the target name and differ in TPGT, so a registration made through one array's port is
 *   not the nexus of the other's (the host registers each path, or uses ALL_TG_PT); relative
 *   target port identifiers (= TPGT) must differ between the arrays, which the link's hello checks.
 * - SPC-2 RESERVE(6)/(10) and RELEASE(6)/(10) go the same way (the holder is a nexus key, in the
 *   shipped state), and so does a RESERVE held by a nexus that goes away (SAM-5 §6.3.4).
 * - LOGICAL UNIT RESET (SAM-5 §6.6, §7.7) is an event of the logical unit, which both arrays
 *   present: the primary resets (aborts the LU's tasks, clears the RESERVE, 29/03 to its nexuses)
 *   and ships a state with the reset flag, which makes the other array do the same for its own
 *   nexuses; at the secondary the TMF goes to the primary as a pr-out without a CDB. The TMF
 *   completes once both arrays hold the reset, so every path reports 29/03 next.
 */
import { ProutAction } from '../../protocol/scsi/pr.ts';
import type { PrNoticeWire, PrStateWire, LinkNexus } from '../../protocol/replication/link.ts';
import { SENSE_REASONS } from '../../protocol/scsi/sense.ts';
import type { SenseReason } from '../../protocol/scsi/sense.ts';
import { initiatorPortName, targetPortName } from '../../protocol/iscsi/names.ts';
import type { LogicalUnit } from '../scsi/lu.ts';
import type { Registration } from '../scsi/pr-registry.ts';
import { ScsiStatus, SenseError, StatusError } from '../scsi/types.ts';
import type { Nexus, ScsiRequest, ScsiResponse } from '../scsi/types.ts';
import type { PrOutReq, PrOutResult, WriteOp } from './group-machine.ts';

export const OP_PERSISTENT_RESERVE_OUT = 0x5f;
/** RESERVE(6), RELEASE(6), RESERVE(10), RELEASE(10) (SPC-2 §7.21-§7.24). */
const LEGACY_OPCODES = new Set([0x16, 0x17, 0x56, 0x57]);
const OP_RELEASE6 = 0x17;
const isReservationCommand = (op: number): boolean => op === OP_PERSISTENT_RESERVE_OUT || LEGACY_OPCODES.has(op);

/** What the PR interception needs from the volume's group (replication-group.ts ReplicationGroup). */
export interface PrSink {
  readonly role: 'primary' | 'secondary';
  /** The group serves host I/O on this array now (group-machine.ts `serving`). */
  readonly serving: boolean;
  write(op: WriteOp): void | Promise<void>;
  prOut(req: PrOutReq): PrOutResult | Promise<PrOutResult>;
}

type WireRegs = PrNoticeWire['regs'];
const wireRegs = (regs: readonly Registration[]): WireRegs => regs.map((r) => ({ initiatorName: r.initiatorName, isid: r.isid, targetPortName: r.targetPortName }));

/**
 * A cheap fingerprint of what a reservation command may change: PRGENERATION moves on every
 * registration change; PR RESERVE and RELEASE change the reservation only; RESERVE(6)/RELEASE(6)
 * the SPC-2 holder.
 */
function fingerprint(lu: LogicalUnit): string {
  const pr = lu.reservations.pr;
  const res = pr.reservation;
  return `${pr.generation}|${pr.aptpl ? 1 : 0}|${res ? `${pr.registrations.indexOf(res.holder)}:${res.type}` : '-'}|${lu.reservations.legacyHolder ?? '-'}`;
}

/** The volume's reservation state as it is now, to ship: no unit attentions, no abort (a resync, a RESERVE lost with its nexus, an LU reset). */
export function prStateOf(lu: LogicalUnit, reset = false): PrStateWire {
  const s = lu.reservations.pr.export();
  return {
    generation: s.generation, aptpl: s.aptpl, reservation: s.reservation, notices: [], abort: null,
    registrations: s.registrations.map((r) => ({ key: r.key, initiatorName: r.initiatorName, isid: r.isid, targetPortName: r.targetPortName, relativeTargetPortId: r.relativeTargetPortId })),
    legacyHolder: lu.reservations.legacyHolder, reset,
  };
}

/**
 * LOGICAL UNIT RESET on this array (SAM-5 §6.6): every task of the LU is aborted, whichever I_T
 * nexus sent it (TST=000b: one task set; they end without status, TAS=0), then the LU's own reset
 * (the RESERVE goes, 29/03 to every nexus). Aborting is idempotent: at the array the TMF came to,
 * the transport has aborted them already.
 */
function resetHere(lu: LogicalUnit): void {
  lu.abortNexusTasks(() => true);
  lu.reset();
}

/**
 * Run `body` (which executes one PR OUT on `lu`) and return the volume's PR state to replicate, or
 * null when the state did not change. `preemptAndAbort`: the preempted nexuses' tasks are aborted
 * on the other array too.
 */
function capture<T>(lu: LogicalUnit, preemptAndAbort: boolean, body: () => T): { value: T; state: PrStateWire | null } {
  const notices: PrNoticeWire[] = [];
  const before = fingerprint(lu);
  const res = lu.reservations;
  const prev = res.onNotice;
  res.onNotice = (regs, reason, except) => { notices.push({ reason, except: except.key, regs: wireRegs(regs) }); prev?.(regs, reason, except); };
  let value: T;
  try { value = body(); } finally { res.onNotice = prev; }
  if (fingerprint(lu) === before) return { value, state: null };
  const preempted = notices.filter((n) => n.reason === 'RegistrationsPreempted');
  return {
    value,
    state: {
      ...prStateOf(lu), notices,
      abort: preemptAndAbort && preempted.length ? { except: preempted[0].except, regs: preempted.flatMap((n) => n.regs) } : null,
    },
  };
}

/** A sense reason named on the link, checked against the table (the peer may be a different build). */
function reasonOf(name: string): SenseReason {
  return Object.hasOwn(SENSE_REASONS, name) ? name as SenseReason : 'InternalTargetFailure';
}

function regMatches(r: WireRegs[number], n: Nexus): boolean {
  return r.initiatorName === n.initiatorName.toLowerCase()
    && (r.isid === null || r.isid === n.isid.toLowerCase())
    && (r.targetPortName === null || r.targetPortName === n.targetPortName);
}

/**
 * The other array's PR OUT, on this one: the state replaces this array's, and this array's I_T
 * nexuses get the unit attentions it raised (SPC-5 §5.14.11); PREEMPT AND ABORT aborts the
 * preempted nexuses' tasks here too (SPC-5 §5.14.11.5).
 */
export function installPrState(lu: LogicalUnit, s: PrStateWire): void {
  lu.reservations.pr.install({
    generation: s.generation, aptpl: s.aptpl, reservation: s.reservation,
    registrations: s.registrations.map((r) => ({ ...r })),
  });
  lu.reservations.legacyHolder = s.legacyHolder;
  if (s.reset) resetHere(lu);
  for (const x of s.notices) {
    for (const n of lu.target.nexuses.values()) {
      if (n.key !== x.except && x.regs.some((r) => regMatches(r, n))) lu.ua.establish(n.key, reasonOf(x.reason));
    }
  }
  if (s.abort) {
    const a = s.abort;
    lu.abortNexusTasks((n) => n.key !== a.except && a.regs.some((r) => regMatches(r, n)));
  }
}

/** The I_T nexus of a PR OUT forwarded by the other array, as this array's registry names it (session.ts builds the same). */
export function remoteNexus(n: LinkNexus): Nexus {
  const iPort = initiatorPortName(n.initiatorName, n.isid);
  const tPort = targetPortName(n.targetName, n.tpgt);
  return {
    key: `${iPort}|${tPort}`, initiatorName: n.initiatorName, initiatorPortName: iPort, isid: n.isid,
    targetName: n.targetName, targetPortName: tPort, tpgt: n.tpgt, relativeTargetPortId: n.tpgt,
    targetPortGroupId: n.targetPortGroup, sessionId: -1,
  };
}

function resultOf(e: unknown): PrOutResult {
  if (e instanceof SenseError) return { status: ScsiStatus.CheckCondition, reason: e.reason, fieldPointer: e.detail.fieldPointer ?? null };
  if (e instanceof StatusError) return { status: e.status, reason: '', fieldPointer: null };
  return { status: ScsiStatus.CheckCondition, reason: 'InternalTargetFailure', fieldPointer: null };
}

/**
 * At the primary: a reservation command the secondary sent (PR OUT, RESERVE, RELEASE). The
 * secondary ran the unit attention, CONTROL byte and ALUA gates; here it is decoded and executed
 * against this array's reservations, with the SPC-2 RESERVE gate (a RESERVE holder makes every PR
 * OUT conflict). No CDB: the LOGICAL UNIT RESET task management function.
 */
export function executeForwardedProut(lu: LogicalUnit, m: { nexus: LinkNexus; cdb: Buffer; data: Buffer }): { result: PrOutResult; state: PrStateWire | null; dataOutLength?: number } {
  if (m.cdb.length === 0) {
    resetHere(lu);
    return { result: { status: ScsiStatus.Good, reason: '', fieldPointer: null }, state: prStateOf(lu, true) };
  }
  const nexus = remoteNexus(m.nexus);
  const def = lu.lookup(m.cdb);
  if (!def || !isReservationCommand(def.opcode) || m.cdb.length < def.cdbLength) return { result: resultOf(new SenseError('InvalidFieldInCdb', { fieldPointer: { inCdb: true, byte: 1 } })), state: null };
  const req: ScsiRequest = { lun: lu.lun, cdb: m.cdb, nexus, taskTag: 0, attr: 0 as ScsiRequest['attr'], expectedLength: m.data.length, isRead: false, isWrite: true, dataOut: m.data };
  const { value, state } = capture(lu, (m.cdb[1] & 0x1f) === ProutAction.PreemptAndAbort, () => {
    try {
      const cmd = def.decode(m.cdb, lu, req);
      lu.reservations.gate(def, req, cmd);
      const r = def.execute({ lu, target: lu.target, req, nexus, split: null }, cmd) as ScsiResponse;
      return { result: { status: r.status, reason: '', fieldPointer: null } as PrOutResult, dataOutLength: r.dataOutLength };
    } catch (e) {
      return { result: resultOf(e), dataOutLength: undefined };
    }
  });
  return { ...value, state };
}

/**
 * Test hooks (never from configuration), the PR tests' negative controls: `skipReplication`, the
 * primary does not replicate PR OUT; `noForwardFence`, the primary orders a forwarded write even
 * while a PR state is on its way to the secondary (GroupMachine.prPending).
 */
export const prHooks = { skipReplication: false, noForwardFence: false };

const linkNexus = (n: Nexus): LinkNexus => ({ initiatorName: n.initiatorName, isid: n.isid, targetName: n.targetName, tpgt: n.tpgt, targetPortGroup: n.targetPortGroupId });

/**
 * PERSISTENT RESERVE OUT, RESERVE and RELEASE on a replicated volume: at the primary, executed
 * here and its new state replicated before GOOD; at the secondary, sent to the primary after this
 * array's gates. Also LOGICAL UNIT RESET and the loss of the nexus holding a RESERVE, which change
 * the same state (see the file comment).
 */
export function interceptPersistentReserveOut(lu: LogicalUnit, group: PrSink, volume: () => number): void {
  interceptResetAndNexusLoss(lu, group, volume);
  const submit = lu.submit.bind(lu);
  lu.submit = (req: ScsiRequest): ScsiResponse | Promise<ScsiResponse> => {
    if (!isReservationCommand(req.cdb[0])) return submit(req);
    if (group.role === 'secondary') return forward(lu, group, volume(), req);
    if (!group.serving) {
      // Not serving (link down without the witness's lease, Failsafe, a role swap): as for writes.
      // The unit attention first, as the pipeline would.
      const ua = lu.ua.take(req.nexus.key);
      if (ua) return lu.check(ua.reason, ua.detail);
      return lu.check('NotReadyAluaUnavailable');
    }
    const { value: r, state } = capture(lu, (req.cdb[1] & 0x1f) === ProutAction.PreemptAndAbort, () => submit(req));
    if (r instanceof Promise) return r; // PR OUT executes synchronously; nothing to replicate from a command that did not
    if (r.status !== ScsiStatus.Good || !state || prHooks.skipReplication) return r;
    try {
      const w = group.write({ kind: 'pr-state', volume: volume(), state });
      if (w instanceof Promise) return w.then(() => r, (e) => lu.fail(e, req));
      return r;
    } catch (e) {
      return lu.fail(e, req);
    }
  };
}

function forward(lu: LogicalUnit, group: PrSink, volume: number, req: ScsiRequest): ScsiResponse | Promise<ScsiResponse> {
  lu.stats.commands++;
  try {
    const def = lu.lookup(req.cdb);
    const ua = lu.ua.take(req.nexus.key);
    if (ua) return lu.check(ua.reason, ua.detail);
    if (!def) throw new SenseError('InvalidFieldInCdb', { fieldPointer: { inCdb: true, byte: 1 } });
    if (req.cdb[def.cdbLength - 1] & 0x04) throw new SenseError('InvalidFieldInCdb', { fieldPointer: { inCdb: true, byte: def.cdbLength - 1, bit: 2 } });
    const op = lu.operation;
    if (op && !op.allows(def)) throw new SenseError(op.reason, { progress: op.progress() });
    lu.target.alua.gate(def, lu, req.nexus);
    const prOut = def.opcode === OP_PERSISTENT_RESERVE_OUT;
    // SPC-2 §5.5.1: while a RESERVE is held, every PR OUT conflicts.
    if (prOut && lu.reservations.legacyHolder !== null) throw new StatusError(ScsiStatus.ReservationConflict);
    const length = prOut ? req.cdb.readUInt32BE(5) : 0;
    const fwd: PrOutReq = {
      volume, nexus: linkNexus(req.nexus),
      // The transport lends dataOut from a pool: the request outlives this call, so copy it.
      cdb: Buffer.from(req.cdb.subarray(0, def.cdbLength)), data: Buffer.from(req.dataOut ?? Buffer.alloc(0)),
    };
    const answer = (x: PrOutResult): ScsiResponse => {
      if (x.status === ScsiStatus.CheckCondition) { lu.stats.errors++; return lu.check(reasonOf(x.reason), x.fieldPointer ? { fieldPointer: x.fieldPointer } : {}); }
      if (x.status !== ScsiStatus.Good) lu.stats.errors++;
      return { status: x.status, data: null, sense: null, ...(x.status === ScsiStatus.Good && prOut ? { dataOutLength: length } : {}) };
    };
    const r = group.prOut(fwd);
    if (r instanceof Promise) return r.then(answer, (e) => lu.fail(e, req));
    return answer(r);
  } catch (e) {
    return lu.fail(e, req);
  }
}

/**
 * LOGICAL UNIT RESET and I_T nexus loss on a replicated volume. The reset: at the primary, done
 * here and shipped as a state with the reset flag (the other array aborts its tasks and raises
 * 29/03 for its nexuses); at the secondary, sent to the primary, which resets both. Either way the
 * TMF answers once both arrays have reset. With the pair not replicating, only this array resets
 * (the other does not serve the group; a resync carries the cleared RESERVE, not the unit
 * attention). A lost nexus that held a RESERVE: the primary ships the cleared state; the secondary
 * sends the primary a RELEASE(6) from that nexus.
 */
function interceptResetAndNexusLoss(lu: LogicalUnit, group: PrSink, volume: () => number): void {
  const warn = (what: string) => (e: unknown) => lu.target.log?.warn({ lun: lu.lun, err: e instanceof Error ? e.message : String(e) }, what);
  lu.logicalUnitReset = (nexus: Nexus): void | Promise<void> => {
    if (group.role === 'secondary' && group.serving) {
      let r: PrOutResult | Promise<PrOutResult>;
      try { r = group.prOut({ volume: volume(), nexus: linkNexus(nexus), cdb: Buffer.alloc(0), data: Buffer.alloc(0) }); } catch { resetHere(lu); return; }
      // Not done by the primary (the link went down meanwhile): reset here at least.
      const settle = (x: PrOutResult) => { if (x.status !== ScsiStatus.Good) resetHere(lu); };
      if (r instanceof Promise) return r.then(settle, () => resetHere(lu));
      settle(r);
      return;
    }
    resetHere(lu);
    if (group.role !== 'primary' || !group.serving || prHooks.skipReplication) return;
    try {
      const w = group.write({ kind: 'pr-state', volume: volume(), state: prStateOf(lu, true) });
      if (w instanceof Promise) return w.catch(warn('logical unit reset not replicated'));
    } catch (e) { warn('logical unit reset not replicated')(e); }
  };
  const lost = lu.nexusLost.bind(lu);
  lu.nexusLost = (nexus: Nexus): void => {
    const held = lu.reservations.legacyHolder === nexus.key;
    lost(nexus);
    if (!held || !group.serving || prHooks.skipReplication) return;
    try {
      const w = group.role === 'primary'
        ? group.write({ kind: 'pr-state', volume: volume(), state: prStateOf(lu) })
        : group.prOut({ volume: volume(), nexus: linkNexus(nexus), cdb: Buffer.from([OP_RELEASE6, 0, 0, 0, 0, 0]), data: Buffer.alloc(0) });
      if (w instanceof Promise) w.catch(warn('RESERVE released by nexus loss not replicated'));
    } catch (e) { warn('RESERVE released by nexus loss not replicated')(e); }
  };
}
