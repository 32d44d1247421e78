/**
 * Error recovery level 0 and logout on a target connection. ErrorRecoveryLevel 0 (RFC 7143 §7),
 * the only level this target offers, has no recovery inside a connection or a task: a header digest error
 * ends the connection (handled where frames arrive, connection.ts), a data digest error (§7.8) is
 * answered with Reject (§11.17) and fails the task it belonged to, and so does a DataSN gap
 * (§7.9); SNACK (§11.16) and connection recovery are refused. Logout (§11.14, §11.15): close the
 * session or one connection of it, and the target's own logout request, an Asynchronous Message
 * (§11.9.1 event 1). Like LIO's iscsi_target_erl0.c plus the logout handling of iscsi_target.c.
 */
import { InitiatorOp, RejectReason, encodeAsyncMessage, encodeLogoutResponse } from '../../protocol/iscsi/pdu.ts';
import type { InitiatorPdu, LogoutRequestPdu } from '../../protocol/iscsi/pdu.ts';
import type { SenseReason } from '../../protocol/scsi/sense.ts';
import { ConnState } from './connection.ts';
import type { Connection } from './connection.ts';

/**
 * A Data-Out whose DataSN is not the next one in its sequence means an earlier PDU was lost to a
 * digest error (RFC 7143 §7.9), handled as that digest error (§7.8): without recovery R2Ts
 * (ErrorRecoveryLevel 0) the task ends, once all its data is in, in CHECK CONDITION with
 * "protocol service CRC error" (§4.4.7.1), and the data is never written.
 */
export const DATASN_ERROR: SenseReason = 'ProtocolServiceCrcError';

/**
 * A PDU whose data digest failed: Reject it, and fail the task it belongs to (it cannot complete
 * normally). Returns true when the PDU still goes to its handler (a Data-Out, so that the task's
 * data accounting stays whole and it ends in CHECK CONDITION), false when it is dropped here.
 */
export function onDataDigestError(conn: Connection, pdu: InitiatorPdu, bhs: Buffer): boolean {
  conn.reject(RejectReason.DataDigestError, bhs);
  if (pdu.op === InitiatorOp.DataOut || pdu.op === InitiatorOp.ScsiCommand) {
    const t = conn.tasks.get(pdu.itt);
    if (t) t.failure = 'ProtocolServiceCrcError';
    if (pdu.op === InitiatorOp.ScsiCommand) return false;
    return true;
  }
  return false;
}

export function onLogout(conn: Connection, pdu: LogoutRequestPdu, _bhs: Buffer): void {
  conn.sequenced(pdu.immediate, pdu.cmdSN, () => {
    if (!pdu.immediate) conn.session!.taskDone();
    let response = 0;
    if (pdu.reason === 2) response = 2; // connection recovery: not supported at ERL 0
    else if (pdu.reason === 1 && pdu.cid !== conn.cid && ![...conn.session!.connections].some((c) => c.cid === pdu.cid)) response = 1;
    conn.state = ConnState.InLogout;
    const p = conn.session!.params;
    const out = encodeLogoutResponse(pdu.itt, response, p.defaultTime2Wait, p.defaultTime2Retain, conn.seqAdvance());
    conn.writePdu(out, null);
    if (response !== 0) { conn.state = ConnState.LoggedIn; return; }
    conn.log.info({ reason: pdu.reason }, 'logout');
    if (pdu.reason === 0) conn.server.closeSession(conn.session!, 'logout', conn);
    else if (pdu.cid !== conn.cid) {
      for (const c of conn.session!.connections) if (c.cid === pdu.cid) c.drop('logged out by another connection');
    }
    if (pdu.reason === 0 || pdu.cid === conn.cid) conn.closeAfterFlush('logout');
  });
}

/** Asynchronous Message: the target asks the initiator to log out (RFC 7143 §11.9.1 event 1). */
export function requestLogout(conn: Connection, seconds: number): void {
  if (conn.state !== ConnState.LoggedIn) return;
  conn.state = ConnState.LogoutRequested;
  conn.writePdu(encodeAsyncMessage({ lun: 0, event: 1, param3: seconds }, conn.seq()), null);
}
