/**
 * Execution and Data-In on a target connection: a task whose data is all in goes to the SCSI
 * layer, and its outcome goes back as Data-In PDUs of at most the initiator's
 * MaxRecvDataSegmentLength with the status in the last one when it is GOOD (RFC 7143 §11.7,
 * phase collapse), else as a SCSI Response (§11.4) with sense (§11.4.7) and the residual
 * counts (§11.4.5). Like LIO's iscsi_target_datain_values.c with the response sending of
 * iscsi_target.c, for DataSequenceInOrder=Yes and DataPDUInOrder=Yes only.
 *
 * Hot path rules (STYLE.md habit 7): Data-In goes out as [header, view of the store] with
 * cork/uncork, never concatenated; the store's view is released once the kernel has the data.
 */
import { encodeDataIn, encodeScsiResponse } from '../../protocol/iscsi/pdu.ts';
import { buildFixedSense } from '../../protocol/scsi/sense.ts';
import { ScsiStatus } from '../scsi/types.ts';
import type { ScsiRequest, ScsiResponse } from '../scsi/types.ts';
import type { Connection, Task } from './connection.ts';

export function execute(conn: Connection, task: Task): void {
  task.state = 'executing';
  const s = conn.session!;
  if (task.failure) {
    finish(conn, task, { status: ScsiStatus.CheckCondition, data: null, sense: buildFixedSense(task.failure) });
    return;
  }
  const req: ScsiRequest = {
    lun: task.lun, cdb: task.cdb, nexus: s.nexus!, taskTag: task.itt, attr: task.attr,
    expectedLength: task.edtl, isRead: task.read, isWrite: task.write, dataOut: task.write ? task.buf : null,
    holdData: true,
  };
  let r: ScsiResponse | Promise<ScsiResponse>;
  try {
    r = s.scsi!.submit(req);
  } catch (err) {
    conn.log.error({ err }, 'SCSI layer threw');
    r = { status: ScsiStatus.CheckCondition, data: null, sense: buildFixedSense('InternalTargetFailure') };
  }
  if (r instanceof Promise) {
    task.done = r.then(
      (res) => finish(conn, task, res),
      (err) => {
        conn.log.error({ err }, 'SCSI layer rejected');
        finish(conn, task, { status: ScsiStatus.CheckCondition, data: null, sense: buildFixedSense('InternalTargetFailure') });
      },
    );
  } else {
    finish(conn, task, r);
  }
}

/** Send the outcome: Data-In (status in the last one when possible) or a SCSI Response. */
function finish(conn: Connection, task: Task, r: ScsiResponse): void {
  conn.tasks.delete(task.itt);
  // The SCSI layer is done with the Data-Out once it has answered (buffer-pool.ts).
  if (task.pooled !== null) { conn.pool.release(task.pooled); task.pooled = null; }
  if (!task.immediate) conn.session?.taskDone();
  // A READ's view of the store stays locked until its Data-In is in the kernel (holdData).
  const release = r.release;
  if (task.aborted || conn.closed) { release?.(); return; }
  const st = conn.stats;
  st.commands++;
  // reads/writes count I/O the port actually served (GOOD), so the counters show which path
  // carries the I/O; a command refused by the ALUA gate counts in `commands` and `errors`.
  if (r.status === 0) {
    if (task.read) { st.reads++; if (r.data) st.readBytes += Math.min(r.data.length, task.edtl); }
    if (task.write) { st.writes++; st.writeBytes += task.edtl; }
  } else if (r.status !== ScsiStatus.ConditionMet) {
    st.errors++;
  }
  // Inside a turn the response leaves with the turn's writev (flush); outside one, now.
  if (conn.turnLatencies !== null) {
    if (conn.flushPending) conn.turnLatencies.add(task.cls, task.startUs);
    else conn.turnLatencies.latency.record(task.cls, task.startUs);
  }
  const edtl = task.edtl;
  let overflow = 0;
  let underflow = 0;
  let sendLen = 0;
  if (task.read && r.data && r.data.length > 0) {
    sendLen = Math.min(r.data.length, edtl);
    if (r.data.length > edtl) overflow = r.data.length - edtl;
    else underflow = edtl - r.data.length;
  } else if (task.write) {
    const used = r.dataOutLength ?? edtl;
    if (used > edtl) overflow = used - edtl;
    else underflow = edtl - used;
  } else if (r.data && r.data.length > 0) {
    // Data produced but the initiator asked for none (R bit clear): all of it is overflow.
    overflow = r.data.length;
  } else {
    underflow = edtl;
  }
  if (task.read && !task.write && r.data && r.data.length === 0) underflow = edtl;
  // A completion outside a turn (a replicated write the peer acknowledged, a file store's
  // write) is held until the end of the callback it completes in: the peer acknowledges a whole
  // batch of writes in one link chunk, and their responses then leave in one writev instead of
  // one send each (each send also wakes the initiator). No later: nextTick runs once conn
  // callback's promise reactions are done, before the event loop moves on. Only while other
  // commands of conn connection are in flight: the last one (QD1) leaves at once.
  if (!conn.flushPending && !conn.tickCorked && conn.tasks.size > 0) {
    conn.tickCorked = true;
    conn.socket.cork();
    process.nextTick(conn.tickUncork);
  }
  conn.socket.cork();
  const statusInData = sendLen > 0 && r.status === ScsiStatus.Good && !r.sense;
  if (sendLen > 0) {
    const data = r.data!;
    const lim = conn.sendLimit;
    let dataSN = 0;
    for (let off = 0; off < sendLen; off += lim) {
      const n = Math.min(lim, sendLen - off);
      const last = off + n >= sendLen;
      const withStatus = last && statusInData;
      const bhs = encodeDataIn({
        itt: task.itt, lun: task.lun, final: last, status: withStatus ? r.status : undefined, dataSN: dataSN++,
        bufferOffset: off, length: n, overflow: withStatus ? overflow : 0, underflow: withStatus ? underflow : 0,
      }, withStatus ? conn.seqAdvance() : conn.seq());
      conn.writePdu(bhs, data.subarray(off, off + n), last ? release : undefined);
    }
    if (!statusInData) sendScsiResponse(conn, task, r, overflow, underflow, dataSN);
  } else {
    release?.();
    sendScsiResponse(conn, task, r, overflow, underflow, 0);
  }
  conn.socket.uncork();
  conn.backpressure();
}

function sendScsiResponse(conn: Connection, task: Task, r: ScsiResponse, overflow: number, underflow: number, expDataSN: number): void {
  const sense = r.sense;
  const bhs = encodeScsiResponse({
    itt: task.itt, status: r.status, overflow, underflow, expDataSN, senseLength: sense ? sense.length : 0,
  }, conn.seqAdvance());
  if (sense) {
    // RFC 7143 §11.4.7: SenseLength (2 bytes) then the sense data.
    const seg = Buffer.allocUnsafe(2 + sense.length);
    seg.writeUInt16BE(sense.length, 0);
    sense.copy(seg, 2);
    conn.writePdu(bhs, seg);
  } else {
    conn.writePdu(bhs, null);
  }
}
