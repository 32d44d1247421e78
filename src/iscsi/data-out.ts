/**
 * SCSI Command and Data-Out on a target connection: a command PDU becomes a Task (RFC 7143 §11.3),
 * its write data arrives as immediate data, unsolicited Data-Out up to FirstBurstLength and
 * solicited Data-Out answering our R2Ts (§4.2.5.1, §4.2.5.2, §11.7, §11.8), each PDU checked for
 * offset, length and DataSN (§7.9) and copied once into the task's buffer; when all of it is in,
 * the task goes to execution (data-in.ts). Like LIO's handling of SCSI Command and Data-Out in
 * iscsi_target.c with the sequence checks of iscsi_target_erl0.c.
 *
 * Hot path (SCSI Command -> Data-Out -> response): plain functions over the connection, called
 * straight from its dispatch; per command the same allocations as before the split (the Task, its
 * R2T map, the CmdSN-order closure) and none here per Data-Out PDU.
 */
import { RejectReason, RESERVED_TAG, encodeR2T } from '../../protocol/iscsi/pdu.ts';
import type { DataOutPdu, ScsiCommandPdu } from '../../protocol/iscsi/pdu.ts';
import { SBC_LIMITS } from '../scsi/sbc-common.ts';
import { classOfCdb, ClassIndex } from '../metrics/command-class.ts';
import type { Connection, Task } from './connection.ts';
import { execute } from './data-in.ts';
import { DATASN_ERROR } from './erl0-logout.ts';

/** Idle receive buffers kept per connection: QD32 of 128 KiB writes in flight, twice over. */
export const POOL_BYTES = 8 * 1024 * 1024;
/**
 * Smaller segments come from Node's shared 8 KiB pool. A 4 KiB one is too big for that pool, so
 * it was a fresh ArrayBuffer per write: with them pooled, a 4 KiB write run used ~13 % less
 * target CPU, and with the store's slabs a first pass of 4 KiB writes over a fresh LUN ran 5
 * mark-compacts instead of ~50.
 */
export const POOL_MIN_SIZE = 4 * 1024;
/**
 * The most Data-Out any command of this target can use: the Block Limits MAXIMUM TRANSFER LENGTH
 * (SBC-4 §6.6.4); parameter lists are far smaller. A WRITE claiming more is refused before a
 * buffer exists, so a 48-byte PDU cannot make the target reserve up to 4 GiB (EDTL is 32 bits).
 */
const MAX_DATA_OUT = SBC_LIMITS.maxTransferBytes;

/** Returns true when `pooled` (the PDU's data segment) became the task's buffer. */
export function onScsiCommand(conn: Connection, pdu: ScsiCommandPdu, bhs: Buffer, pooled: Buffer | null): boolean {
  const s = conn.session!;
  if (s.type === 'Discovery' || !s.scsi) {
    // RFC 7143 §4.3: discovery sessions carry only Text, NOP and Logout.
    conn.reject(RejectReason.ProtocolError, bhs);
    return false;
  }
  if (conn.tasks.has(pdu.itt)) { conn.reject(RejectReason.TaskInProgress, bhs); return false; }
  const imm = pdu.data.length;
  if (imm > 0 && (!pdu.write || !s.params.immediateData || imm > s.params.firstBurstLength || imm > pdu.edtl)) {
    // Immediate data not negotiated, beyond FirstBurstLength or beyond EDTL (RFC 7143 §4.2.5.1).
    conn.reject(RejectReason.ProtocolError, bhs);
    return false;
  }
  // The class is taken now: the CDB is a view of a receive buffer that is reused later.
  const latency = conn.latency;
  const task: Task = {
    itt: pdu.itt, lun: pdu.lun, cmdSN: pdu.cmdSN, immediate: pdu.immediate, cdb: pdu.cdb, edtl: pdu.edtl,
    read: pdu.read, write: pdu.write, attr: pdu.attr, buf: null, received: 0, unsolicitedEnd: 0,
    unsolicitedNext: 0, unsolicitedDone: true, unsolicitedDataSN: 0, r2tNext: 0, r2tSN: 0, r2ts: null, failure: null, pooled: null,
    started: false, state: 'collecting', aborted: false, done: null,
    cls: latency !== null ? classOfCdb(pdu.cdb) : ClassIndex.Other, startUs: conn.arrivalUs,
  };
  if (pdu.write && pdu.edtl > MAX_DATA_OUT) {
    // No buffer and no R2T: the task ends with CHECK CONDITION once its CmdSN comes up (SPC-5
    // INVALID FIELD IN COMMAND INFORMATION UNIT: the EDTL field of the command PDU).
    task.failure = 'InvalidFieldInCommandIu';
  } else if (pdu.write && pdu.edtl > 0) {
    // Unsolicited window: immediate data plus, with InitialR2T=No, Data-Out up to FirstBurstLength.
    const unsolicited = s.params.initialR2T ? imm : Math.min(s.params.firstBurstLength, pdu.edtl);
    task.unsolicitedEnd = Math.max(unsolicited, imm);
    task.unsolicitedDone = pdu.final || task.unsolicitedEnd <= imm;
    task.unsolicitedNext = imm;
    task.r2tNext = task.unsolicitedEnd;
    if (imm === pdu.edtl) {
      task.buf = pdu.data;
    } else {
      // Data-Out is gathered here: a pooled buffer, given back in finish() like adopted ones.
      task.buf = pdu.edtl >= POOL_MIN_SIZE ? (task.pooled = conn.pool.take(pdu.edtl)) : Buffer.allocUnsafe(pdu.edtl);
      if (imm > 0) pdu.data.copy(task.buf, 0);
    }
    task.received = imm;
    if (task.unsolicitedDone && task.unsolicitedNext < task.unsolicitedEnd) task.r2tNext = task.unsolicitedNext;
  }
  // Adopted: from here on the task gives the buffer back (finish), maybe before sequenced() returns.
  const adopted = pooled !== null && task.buf === pdu.data;
  if (adopted) task.pooled = pooled;
  conn.tasks.set(task.itt, task);
  const ok = conn.sequenced(pdu.immediate, pdu.cmdSN, () => startTask(conn, task));
  if (!ok) {
    conn.tasks.delete(task.itt);
    conn.abortedItts.add(task.itt);
    return false;
  }
  return adopted;
}

function startTask(conn: Connection, task: Task): void {
  task.started = true;
  if (task.aborted) {
    // Aborted while held for an earlier CmdSN: it took a window slot just now, give it back.
    if (!task.immediate) conn.session?.taskDone();
    return;
  }
  if (task.write && task.buf !== null && task.received < task.edtl) {
    issueR2Ts(conn, task);
    return;
  }
  execute(conn, task);
}

function issueR2Ts(conn: Connection, task: Task): void {
  const p = conn.session!.params;
  const r2ts = (task.r2ts ??= new Map());
  if (conn.socket.writable) conn.socket.cork();
  while (r2ts.size < p.maxOutstandingR2T && task.r2tNext < task.edtl) {
    const length = Math.min(p.maxBurstLength, task.edtl - task.r2tNext);
    const ttt = conn.nextTtt;
    conn.nextTtt = conn.nextTtt === 0xfffffffe ? 1 : conn.nextTtt + 1;
    r2ts.set(ttt, { offset: task.r2tNext, length, next: task.r2tNext, dataSN: 0 });
    const bhs = encodeR2T({ itt: task.itt, ttt, lun: task.lun, r2tSN: task.r2tSN++, bufferOffset: task.r2tNext, desiredLength: length }, conn.seq());
    task.r2tNext += length;
    conn.writePdu(bhs, null);
  }
  if (conn.socket.writable) conn.socket.uncork();
}

export function onDataOut(conn: Connection, pdu: DataOutPdu, bhs: Buffer): void {
  const task = conn.tasks.get(pdu.itt);
  if (!task) {
    if (conn.abortedItts.has(pdu.itt)) return; // data for a task we aborted or dropped
    conn.reject(RejectReason.InvalidPduField, bhs);
    return;
  }
  if (task.state !== 'collecting' || !task.buf) { conn.reject(RejectReason.ProtocolError, bhs); return; }
  const len = pdu.data.length;
  const off = pdu.bufferOffset;
  if (pdu.ttt === RESERVED_TAG) {
    // Unsolicited Data-Out (RFC 7143 §4.2.5.2).
    if (task.unsolicitedDone || off !== task.unsolicitedNext || off + len > task.unsolicitedEnd) {
      task.failure ??= 'UnexpectedUnsolicitedData';
      conn.reject(RejectReason.ProtocolError, bhs);
      if (!pdu.final || task.unsolicitedDone) return;
      // The rejected PDU ended the initiator's unsolicited burst, so nothing more of it will come:
      // count the burst as settled (the task has failed and writes nothing) and let the task end
      // with CHECK CONDITION once any solicited data is in (RFC 7143 §11.17.1), instead of
      // waiting for data that will never arrive.
      task.unsolicitedDone = true;
      task.received += task.unsolicitedEnd - task.unsolicitedNext;
      task.unsolicitedNext = task.unsolicitedEnd;
    } else {
      if (pdu.dataSN !== task.unsolicitedDataSN) task.failure ??= DATASN_ERROR;
      task.unsolicitedDataSN++;
      pdu.data.copy(task.buf, off);
      task.unsolicitedNext += len;
      task.received += len;
      if (pdu.final) {
        task.unsolicitedDone = true;
        if (task.unsolicitedNext < task.unsolicitedEnd) {
          // The initiator ended its unsolicited burst early: solicit the gap.
          task.r2tNext = task.unsolicitedNext;
        }
      }
    }
  } else {
    const r = task.r2ts?.get(pdu.ttt);
    if (!r || off !== r.next || off + len > r.offset + r.length) {
      conn.reject(RejectReason.ProtocolError, bhs);
      return;
    }
    if (pdu.dataSN !== r.dataSN) task.failure ??= DATASN_ERROR;
    pdu.data.copy(task.buf, off);
    r.next += len;
    r.dataSN++;
    task.received += len;
    if (pdu.final || r.next === r.offset + r.length) {
      if (r.next !== r.offset + r.length) {
        // F bit before the requested length arrived: re-solicit the remainder.
        task.r2ts!.delete(pdu.ttt);
        if (r.next < task.r2tNext) task.r2tNext = Math.min(task.r2tNext, r.next);
      } else {
        task.r2ts!.delete(pdu.ttt);
      }
    }
  }
  const outstanding = task.r2ts?.size ?? 0;
  if (task.received >= task.edtl && outstanding === 0 && (task.unsolicitedDone || task.unsolicitedNext >= task.unsolicitedEnd)) {
    execute(conn, task);
  } else if (task.unsolicitedDone && outstanding < conn.session!.params.maxOutstandingR2T && task.r2tNext < task.edtl) {
    issueR2Ts(conn, task);
  }
}
