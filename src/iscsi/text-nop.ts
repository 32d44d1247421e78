/**
 * Text and NOP of a target connection in full feature phase: NOP-Out answered with NOP-In
 * (RFC 7143 §11.18, §11.19), the target's own NOP-In pings on an idle connection and the drop
 * when one goes unanswered, and Text Requests (§11.10, §11.11), of which SendTargets (Appendix C)
 * is the one key served. Each goes through the session's CmdSN order like any non-immediate
 * command (§3.2.2.1).
 */
import { RejectReason, RESERVED_TAG, encodeNopIn, encodeTextResponse } from '../../protocol/iscsi/pdu.ts';
import type { NopOutPdu, TextRequestPdu } from '../../protocol/iscsi/pdu.ts';
import { encodeText, parseText } from '../../protocol/iscsi/text.ts';
import type { TextPair } from '../../protocol/iscsi/text.ts';
import { ConnState } from './connection.ts';
import type { Connection } from './connection.ts';

export function onNopOut(conn: Connection, pdu: NopOutPdu, bhs: Buffer): void {
  if (pdu.itt === RESERVED_TAG) {
    // Either the answer to our ping (TTT echoes it) or a ping needing no answer; must be immediate.
    if (pdu.ttt !== RESERVED_TAG && pdu.ttt === conn.pingTtt) clearPing(conn);
    if (!pdu.immediate && pdu.ttt === RESERVED_TAG) conn.reject(RejectReason.ProtocolError, bhs);
    return;
  }
  if (pdu.ttt !== RESERVED_TAG) {
    if (pdu.ttt === conn.pingTtt) clearPing(conn);
  }
  const ping = pdu.data.length > conn.sendLimit ? pdu.data.subarray(0, conn.sendLimit) : pdu.data;
  const copy = Buffer.from(ping); // echo data outlives the chunk it arrived in
  conn.sequenced(pdu.immediate, pdu.cmdSN, () => {
    const out = encodeNopIn(pdu.itt, RESERVED_TAG, pdu.lun, copy.length, conn.seqAdvance());
    if (!pdu.immediate) conn.session!.taskDone();
    conn.writePdu(out, copy.length ? copy : null);
  });
}

export function onText(conn: Connection, pdu: TextRequestPdu, bhs: Buffer): void {
  const data = Buffer.from(pdu.data);
  conn.sequenced(pdu.immediate, pdu.cmdSN, () => {
    if (!pdu.immediate) conn.session!.taskDone();
    if (pdu.cont) {
      // Long text requests are not expected in practice; refuse instead of buffering unboundedly.
      conn.reject(RejectReason.CommandNotSupported, bhs);
      return;
    }
    const parsed = parseText(data);
    if (parsed.kind === 'error') { conn.reject(RejectReason.ProtocolError, bhs); return; }
    const reply: TextPair[] = [];
    for (const { key, value } of parsed.pairs) {
      if (key === 'SendTargets') reply.push(...sendTargets(conn, value));
      else reply.push({ key, value: 'NotUnderstood' });
    }
    let out = encodeText(reply);
    if (out.length > conn.sendLimit) out = out.subarray(0, conn.sendLimit - (conn.sendLimit % 4));
    const rsp = encodeTextResponse({ final: true, cont: false, lun: 0, itt: pdu.itt, ttt: RESERVED_TAG, dataLength: out.length }, conn.seqAdvance());
    conn.writePdu(rsp, out.length ? out : null);
  });
}

/** SendTargets (RFC 7143 Appendix C). "All" only in discovery sessions. */
function sendTargets(conn: Connection, value: string): TextPair[] {
  const s = conn.session!;
  const names = value === 'All' && s.type === 'Discovery'
    ? [...conn.server.targets.keys()]
    : value === '' || value === 'All' ? (s.targetConfig ? [s.targetConfig.name] : []) : [value].filter((n) => conn.server.targets.has(n));
  const out: TextPair[] = [];
  for (const name of names) {
    const t = conn.server.targets.get(name)!;
    const acl = t.config.acl;
    if (acl && acl.length && !acl.includes(s.initiatorName)) continue;
    out.push({ key: 'TargetName', value: name });
    for (const p of conn.server.portals) {
      let host = p.host;
      if (host === '0.0.0.0' || host === '::') host = conn.socket.localAddress ?? '127.0.0.1';
      host = host.replace(/^::ffff:/, '');
      if (host.includes(':')) host = `[${host}]`;
      out.push({ key: 'TargetAddress', value: `${host}:${p.port},${p.tpgt}` });
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// Liveness: target NOP-In pings on an idle connection (RFC 7143 §11.19)

export function armIdle(conn: Connection): void {
  const iv = conn.server.tuning.nopInterval;
  if (iv <= 0 || conn.state !== ConnState.LoggedIn) return;
  if (conn.idleTimer) { conn.idleTimer.refresh(); return; }
  conn.idleTimer = setTimeout(() => ping(conn), iv * 1000);
  conn.idleTimer.unref();
}

function ping(conn: Connection): void {
  if (conn.closed || conn.state !== ConnState.LoggedIn || conn.pingTimer) return;
  conn.pingTtt = conn.nextTtt;
  conn.nextTtt = conn.nextTtt === 0xfffffffe ? 1 : conn.nextTtt + 1;
  conn.writePdu(encodeNopIn(RESERVED_TAG, conn.pingTtt, 0, 0, conn.seq()), null);
  conn.pingTimer = setTimeout(() => conn.drop('NOP-In ping not answered'), conn.server.tuning.nopTimeout * 1000);
  conn.pingTimer.unref();
}

function clearPing(conn: Connection): void {
  if (conn.pingTimer) clearTimeout(conn.pingTimer);
  conn.pingTimer = null;
  conn.pingTtt = 0;
  conn.idleTimer?.refresh();
}
