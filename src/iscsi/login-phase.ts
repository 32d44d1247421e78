/**
 * Login phase of one target connection (RFC 7143 §6.3 login phase, §11.12 Login Request,
 * §11.13 Login Response): each Login Request goes through the negotiation state machine
 * (login.ts, LIO's iscsi_target_nego.c), and this file does what the answer means for the
 * connection and the server: ACL and TSIH checks on the first request, session creation or
 * reinstatement (§4.4.1, §6.3.5), the final response, and the switch to full feature phase
 * (digests and MaxRecvDataSegmentLength apply from the next PDU). A failed login answers with its
 * status class/detail and closes the connection (§11.13.5). Like LIO's iscsi_target_login.c.
 */
import { LoginStage, encodeLoginResponse } from '../../protocol/iscsi/pdu.ts';
import type { LoginRequestPdu } from '../../protocol/iscsi/pdu.ts';
import { encodeText } from '../../protocol/iscsi/text.ts';
import type { TextPair } from '../../protocol/iscsi/text.ts';
import { ConnState } from './connection.ts';
import type { Connection } from './connection.ts';
import { LoginStatus } from './login.ts';
import type { LoginNegotiation, LoginStatusName } from './login.ts';
import { Session, sessionParamsFrom } from './session.ts';
import type { SessionParams } from './session.ts';
import { snAdd } from './seq.ts';
import { armIdle } from './text-nop.ts';

const EMPTY = Buffer.alloc(0);

export function onLogin(conn: Connection, pdu: LoginRequestPdu): void {
  const lg = conn.login!;
  const wasFirst = lg.first;
  const step = lg.step(pdu);
  if (step === null) {
    // C=1: acknowledge and wait for the rest of the text (RFC 7143 §6.3).
    sendLoginResponse(conn, pdu, { transit: false, csg: pdu.csg, nsg: 0 }, [], LoginStatus.Success);
    return;
  }
  if (step.kind === 'fail') { loginFail(conn, step.status, step.reason, pdu); return; }
  if (wasFirst) {
    const acl = lg.target?.acl;
    if (lg.sessionType === 'Normal' && acl && acl.length > 0 && !acl.includes(lg.initiatorName)) {
      loginFail(conn, 'AuthorizationFailure', `initiator ${lg.initiatorName} not in ACL of ${lg.target!.name}`, pdu);
      return;
    }
    if (lg.tsih !== 0) {
      const s = conn.server.sessionByTsih(lg.tsih);
      if (!s || s.isid !== lg.isid || s.initiatorName !== lg.initiatorName) {
        loginFail(conn, 'SessionDoesNotExist', `TSIH ${lg.tsih} unknown`, pdu);
        return;
      }
      const reinstating = [...s.connections].some((c) => c.cid === lg.cid);
      if (!reinstating && s.connections.size >= s.params.maxConnections) {
        loginFail(conn, 'TooManyConnections', `session ${lg.tsih} has ${s.connections.size} connection(s)`, pdu);
        return;
      }
    }
  }
  let status: readonly [number, number] = LoginStatus.Success;
  if (step.transit && step.nsg === LoginStage.FullFeaturePhase) {
    const r = enterFullFeature(conn, lg, pdu);
    if (r) { loginFail(conn, r.status, r.reason, pdu); return; }
    status = LoginStatus.Success;
  }
  sendLoginResponse(conn, pdu, step, step.pairs, status);
  if (conn.state === ConnState.LoggedIn) startFullFeature(conn, lg);
}

function enterFullFeature(conn: Connection, lg: LoginNegotiation, pdu: LoginRequestPdu): { status: LoginStatusName; reason: string } | null {
  const params: SessionParams = sessionParamsFrom(lg.agreed);
  conn.cid = lg.cid;
  if (lg.tsih === 0) {
    // Leading login: a new session, reinstating any session with the same ISID through the
    // same target portal group (the session identifier is initiator + ISID + TPGT, RFC 7143 §4.4.1, §6.3.5).
    const old = conn.server.findSession(lg.initiatorName, lg.isid, lg.target?.name ?? '', conn.portal.tpgt);
    if (old) conn.server.closeSession(old, 'session reinstatement');
    const entry = lg.target ? conn.server.targets.get(lg.target.name) : undefined;
    const s = new Session(
      conn.server.newTsih(), lg.isid, lg.initiatorName, lg.sessionType, lg.target, entry?.scsi, conn.portal, params,
      pdu.cmdSN, conn.server.tuning.queueDepth,
    );
    conn.server.addSession(s);
    conn.session = s;
  } else {
    const s = conn.server.sessionByTsih(lg.tsih)!;
    for (const c of [...s.connections]) if (c.cid === lg.cid) c.drop('connection reinstatement');
    conn.session = s;
  }
  conn.session!.connections.add(conn);
  conn.state = ConnState.LoggedIn;
  return null;
}

/** Full feature phase begins after the final login response (digests apply from the next PDU). */
function startFullFeature(conn: Connection, lg: LoginNegotiation): void {
  const a = lg.agreed;
  conn.headerDigest = a.get('HeaderDigest') === 'CRC32C';
  conn.dataDigest = a.get('DataDigest') === 'CRC32C';
  conn.sendLimit = Number(a.get('MaxRecvDataSegmentLength') ?? 8192);
  const ours = Number(a.get('TargetMaxRecvDataSegmentLength') ?? 8192);
  conn.framer.opts = {
    headerDigest: conn.headerDigest, dataDigest: conn.dataDigest, maxDataSegmentLength: ours, allocData: conn.allocData,
    reusedChunks: !!conn.staging,
  };
  if (conn.loginTimer) clearTimeout(conn.loginTimer);
  conn.login = null;
  const s = conn.session!;
  if (s.nexus && s.scsi && s.connections.size === 1) s.scsi.nexusUp(s.nexus);
  conn.stats.logins++;
  conn.log.info({ initiator: s.initiatorName, isid: s.isid, tsih: s.tsih, type: s.type, target: s.targetConfig?.name,
    headerDigest: conn.headerDigest, dataDigest: conn.dataDigest }, 'login complete');
  if (lg.tsih === 0) conn.server.sessionLoggedIn(s);
  armIdle(conn);
}

function sendLoginResponse(
  conn: Connection, pdu: LoginRequestPdu, step: { transit: boolean; csg: number; nsg: number }, pairs: TextPair[],
  status: readonly [number, number],
): void {
  const data = pairs.length ? encodeText(pairs) : EMPTY;
  const s = conn.session;
  const expCmdSN = s ? s.expCmdSN : pdu.cmdSN;
  const maxCmdSN = s ? s.currentMaxCmdSN() : snAdd(pdu.cmdSN, conn.server.tuning.queueDepth - 1);
  const bhs = encodeLoginResponse({
    transit: step.transit, cont: false, csg: step.csg, nsg: step.nsg, versionMax: 0, versionActive: 0,
    isid: pdu.isid, tsih: s ? s.tsih : pdu.tsih, itt: pdu.itt, statusClass: status[0], statusDetail: status[1],
    dataLength: data.length,
  }, { statSN: conn.statSN, expCmdSN, maxCmdSN });
  conn.statSN = snAdd(conn.statSN, 1);
  // Login PDUs never carry digests (they are negotiated during login).
  conn.writeRaw(bhs, data, false, false);
}

export function loginFail(conn: Connection, status: LoginStatusName, reason: string, pdu?: LoginRequestPdu): void {
  conn.log.warn({ status, reason }, 'login rejected');
  const [cls, detail] = LoginStatus[status];
  const bhs = encodeLoginResponse({
    transit: false, cont: false, csg: pdu?.csg ?? 0, nsg: 0, versionMax: 0, versionActive: 0,
    isid: pdu?.isid ?? '000000000000', tsih: 0, itt: pdu?.itt ?? 0, statusClass: cls, statusDetail: detail, dataLength: 0,
  }, { statSN: conn.statSN, expCmdSN: pdu?.cmdSN ?? 0, maxCmdSN: pdu?.cmdSN ?? 0 });
  conn.writeRaw(bhs, EMPTY, false, false);
  // RFC 7143 §11.13.5: after a non-zero status the target closes the connection.
  conn.closeAfterFlush('login failed');
}
