/**
 * Task management on a target connection (RFC 7143 §11.5 Task Management Function Request,
 * §11.6 Response; SAM-5 §7): ABORT TASK (with the RefCmdSN rule of §11.5.1 for a command not
 * yet arrived), ABORT TASK SET, CLEAR TASK SET, CLEAR ACA, LOGICAL UNIT RESET and the target
 * resets; TASK REASSIGN needs ErrorRecoveryLevel 2 and is refused. Also the abort of one task,
 * which PREEMPT AND ABORT (through the server) and the SCSI layer use too. Like LIO's
 * iscsi_target_tmr.c.
 */
import { TmfFunction, TmfResponse, encodeTaskMgmtResponse } from '../../protocol/iscsi/pdu.ts';
import type { TaskMgmtRequestPdu } from '../../protocol/iscsi/pdu.ts';
import type { Nexus } from '../scsi/types.ts';
import type { Connection, Task } from './connection.ts';
import { snGt, snLt } from './seq.ts';

export function onTaskMgmt(conn: Connection, pdu: TaskMgmtRequestPdu, _bhs: Buffer): void {
  const s = conn.session!;
  const run = () => {
    if (!pdu.immediate) s.taskDone();
    void taskMgmt(conn, pdu).then((response) => {
      if (conn.closed) return;
      conn.writePdu(encodeTaskMgmtResponse(pdu.itt, response, conn.seqAdvance()), null);
      if (pdu.func === TmfFunction.TargetColdReset && response === TmfResponse.FunctionComplete) {
        // RFC 7143 §11.5.1: after a cold reset the target drops all its connections.
        setImmediate(() => conn.server.dropTargetConnections(s.targetConfig?.name ?? '', 'target cold reset'));
      }
    });
  };
  conn.sequenced(pdu.immediate, pdu.cmdSN, run);
}

async function taskMgmt(conn: Connection, pdu: TaskMgmtRequestPdu): Promise<number> {
  const s = conn.session!;
  const scsi = s.scsi;
  if (!scsi || s.type === 'Discovery') return TmfResponse.Rejected;
  const luExists = scsi.luns.has(pdu.lun);
  const waitFor: Promise<void>[] = [];
  const abortWhere = (pred: (t: Task, c: Connection) => boolean, conns: Iterable<Connection>) => {
    for (const c of conns) {
      for (const t of [...c.tasks.values()]) {
        if (t.itt === pdu.itt && c === conn) continue;
        if (pred(t, c)) { const w = abortTask(c, t); if (w) waitFor.push(w); }
      }
    }
  };
  conn.log.info({ func: pdu.func, lun: pdu.lun, rtt: pdu.referencedTaskTag }, 'task management');
  switch (pdu.func) {
    case TmfFunction.AbortTask: {
      if (!luExists) return TmfResponse.LunDoesNotExist;
      const t = conn.tasks.get(pdu.referencedTaskTag);
      if (t && t.lun === pdu.lun) {
        const w = abortTask(conn, t);
        if (w) await w;
        return TmfResponse.FunctionComplete;
      }
      // RFC 7143 §11.5.1 b/c: a task we do not know. If its command has not arrived yet (RefCmdSN
      // inside the CmdSN window and before conn TMF), take that CmdSN as received so the late
      // command is ignored, and report the abort done. Outside the window the command has
      // already completed (or never existed): "Task does not exist", and the initiator keeps
      // the status it may already have.
      if (!snLt(pdu.refCmdSN, s.expCmdSN) && !snGt(pdu.refCmdSN, s.maxCmdSN) && snLt(pdu.refCmdSN, pdu.cmdSN)) {
        s.consumeCmdSN(pdu.refCmdSN);
        return TmfResponse.FunctionComplete;
      }
      return TmfResponse.TaskDoesNotExist;
    }
    case TmfFunction.AbortTaskSet:
      if (!luExists) return TmfResponse.LunDoesNotExist;
      abortWhere((t) => t.lun === pdu.lun, s.connections);
      await Promise.allSettled(waitFor);
      return TmfResponse.FunctionComplete;
    case TmfFunction.ClearTaskSet: {
      if (!luExists) return TmfResponse.LunDoesNotExist;
      // Clears the task set of every I_T nexus (SAM-5 §7.4).
      abortWhere((t) => t.lun === pdu.lun, conn.server.connectionsOf(s.targetConfig!.name));
      await Promise.allSettled(waitFor);
      return TmfResponse.FunctionComplete;
    }
    case TmfFunction.ClearAca:
      if (!luExists) return TmfResponse.LunDoesNotExist;
      return TmfResponse.FunctionComplete; // NACA is not supported, so no ACA can exist
    case TmfFunction.LogicalUnitReset: {
      if (!luExists) return TmfResponse.LunDoesNotExist;
      abortWhere((t) => t.lun === pdu.lun, conn.server.connectionsOf(s.targetConfig!.name));
      await Promise.allSettled(waitFor);
      // On a replicated LU conn waits until the other array of the pair has reset too (its
      // unit attention is set before FUNCTION COMPLETE, so every path reports it next).
      const done = scsi.luns.get(pdu.lun)!.logicalUnitReset(s.nexus!);
      if (done) await done.catch((e: unknown) => conn.log.warn({ err: e instanceof Error ? e.message : String(e), lun: pdu.lun }, 'logical unit reset: peer array not reached'));
      return TmfResponse.FunctionComplete;
    }
    case TmfFunction.TargetWarmReset:
    case TmfFunction.TargetColdReset:
      abortWhere(() => true, conn.server.connectionsOf(s.targetConfig!.name));
      await Promise.allSettled(waitFor);
      await scsi.reset(s.nexus!);
      return TmfResponse.FunctionComplete;
    case TmfFunction.TaskReassign:
      return TmfResponse.ReassignmentNotSupported;
    default:
      return TmfResponse.NotSupported;
  }
}

/** Abort conn connection's tasks for `lun` if its session's I_T nexus is one `which` selects (PREEMPT AND ABORT). */
export function abortTasksOf(conn: Connection, lun: number, which: (n: Nexus) => boolean): void {
  const n = conn.session?.nexus;
  if (!n || !which(n)) return;
  for (const t of [...conn.tasks.values()]) if (t.lun === lun) void abortTask(conn, t);
}

/** Abort one task of conn connection; resolves when any in-flight execution has settled. */
export function abortTask(conn: Connection, t: Task): Promise<void> | null {
  t.aborted = true;
  conn.tasks.delete(t.itt);
  conn.abortedItts.add(t.itt);
  if (conn.abortedItts.size > 4096) conn.abortedItts.delete(conn.abortedItts.values().next().value!);
  // Still collecting Data-Out: no SCSI Response will come from finish(), so free its window slot
  // here (one held for an earlier CmdSN has no slot yet; startTask gives it back).
  if (t.started && t.state === 'collecting' && !t.immediate) conn.session?.taskDone();
  // Executing: tell the LU, so a command whose work outlives its task (SANITIZE) settles now.
  const s = conn.session;
  if (t.state === 'executing' && s?.nexus) s.scsi?.luns.get(t.lun)?.abortTask(s.nexus.key, t.itt);
  return t.done;
}
