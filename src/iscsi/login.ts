/**
 * The login phase of one connection (RFC 7143 §6.3, §11.12-13): stages named after the spec,
 * CHAP, the operational key table, and the login status classes. It decides; the connection
 * sends. Every refusal carries the RFC's status class and detail.
 */
import { randomBytes } from 'node:crypto';
import type { LoginRequestPdu } from '../../protocol/iscsi/pdu.ts';
import { LoginStage } from '../../protocol/iscsi/pdu.ts';
import { parseText } from '../../protocol/iscsi/text.ts';
import type { TextPair } from '../../protocol/iscsi/text.ts';
import { KEYS, DEFAULT_TARGET_LIMITS, negotiateKey } from '../../protocol/iscsi/negotiation.ts';
import { chapResponse, decodeBinary, encodeHex } from './chap.ts';
import type { ChapConfig, IscsiTargetConfig, PortalConfig } from './config.ts';

/** Login status (RFC 7143 §11.13.5): [class, detail]. */
export const LoginStatus = {
  Success: [0x00, 0x00],
  TargetMovedTemporarily: [0x01, 0x01],
  InitiatorError: [0x02, 0x00],
  AuthenticationFailure: [0x02, 0x01],
  AuthorizationFailure: [0x02, 0x02],
  NotFound: [0x02, 0x03],
  TargetRemoved: [0x02, 0x04],
  UnsupportedVersion: [0x02, 0x05],
  TooManyConnections: [0x02, 0x06],
  MissingParameter: [0x02, 0x07],
  CantIncludeInSession: [0x02, 0x08],
  SessionTypeNotSupported: [0x02, 0x09],
  SessionDoesNotExist: [0x02, 0x0a],
  InvalidDuringLogin: [0x02, 0x0b],
  TargetError: [0x03, 0x00],
  ServiceUnavailable: [0x03, 0x01],
  OutOfResources: [0x03, 0x02],
} as const;
export type LoginStatusName = keyof typeof LoginStatus;

/** Security negotiation sub-states for CHAP (RFC 7143 §12.1.3). */
const enum AuthState {
  Start,
  ChapWaitAlgorithm,
  ChapWaitResponse,
  Done,
}

export interface LoginHost {
  /** Look up a target by name. */
  findTarget(name: string): IscsiTargetConfig | undefined;
  readonly portal: PortalConfig;
  /** The key values the target offers (DEFAULT_TARGET_LIMITS overridden by configuration). */
  readonly limits: Record<string, string>;
}

export type LoginStep =
  | { kind: 'respond'; transit: boolean; csg: number; nsg: number; pairs: TextPair[] }
  | { kind: 'fail'; status: LoginStatusName; reason: string };

export class LoginNegotiation {
  stage: LoginStage = LoginStage.SecurityNegotiation;
  first = true;
  initiatorName = '';
  initiatorAlias = '';
  sessionType: 'Normal' | 'Discovery' = 'Normal';
  target: IscsiTargetConfig | undefined;
  isid = '';
  tsih = 0;
  cid = 0;
  /** Operational values agreed so far (key → value). */
  readonly agreed = new Map<string, string>();
  /** Target's declared MaxRecvDataSegmentLength was sent. */
  private declaredMrdsl = false;
  private sentTpgt = false;
  private auth = AuthState.Start;
  private authMethod: 'None' | 'CHAP' | undefined;
  private chapId = 0;
  private chapChallenge = Buffer.alloc(0);
  /** Text from a request sent with C=1, awaiting the rest. */
  private partial: Buffer[] = [];

  constructor(private readonly host: LoginHost) {}

  get authenticated(): boolean {
    return this.auth === AuthState.Done;
  }

  /** Process one Login Request PDU. Returns null when the request was a partial (C=1) one. */
  step(pdu: LoginRequestPdu): LoginStep | null {
    if (pdu.cont) {
      this.partial.push(Buffer.from(pdu.data));
      if (this.partial.reduce((n, b) => n + b.length, 0) > 65536) {
        return this.fail('OutOfResources', 'login text larger than 64 KiB');
      }
      return null;
    }
    const text = this.partial.length ? Buffer.concat([...this.partial, pdu.data]) : pdu.data;
    this.partial = [];

    if (this.first) {
      // RFC 7143 §11.12.4: version 0x00 is the only one defined.
      if (pdu.versionMin > 0x00) return this.fail('UnsupportedVersion', `version min ${pdu.versionMin}`);
      this.isid = pdu.isid;
      this.tsih = pdu.tsih;
      this.cid = pdu.cid;
    } else if (pdu.isid !== this.isid || pdu.tsih !== this.tsih || pdu.cid !== this.cid) {
      return this.fail('InvalidDuringLogin', 'ISID/TSIH/CID changed during login');
    }
    if (pdu.csg === 2 || (pdu.transit && pdu.nsg === 2)) return this.fail('InvalidDuringLogin', 'reserved login stage');
    if (pdu.csg !== this.stage) {
      // Moving from security to operational without a T bit transition is not allowed, but an
      // initiator may start directly in the operational stage when no security is needed.
      if (!(this.first && pdu.csg === LoginStage.OperationalNegotiation)) {
        return this.fail('InvalidDuringLogin', `CSG ${pdu.csg} in stage ${this.stage}`);
      }
      this.stage = LoginStage.OperationalNegotiation;
    }
    if (pdu.transit && pdu.nsg <= pdu.csg) return this.fail('InvalidDuringLogin', `transit to NSG ${pdu.nsg} from CSG ${pdu.csg}`);

    const parsed = parseText(text);
    if (parsed.kind === 'error') return this.fail('InitiatorError', parsed.reason);
    const reply: TextPair[] = [];
    const seen = new Set<string>();
    for (const { key, value } of parsed.pairs) {
      if (seen.has(key)) return this.fail('InitiatorError', `key ${key} sent twice`);
      seen.add(key);
      const r = this.handleKey(key, value, reply);
      if (r) return r;
    }
    if (this.auth === AuthState.ChapWaitResponse && seen.has('CHAP_R')) {
      const r = this.finishChap(reply);
      if (r) return r;
    }

    if (this.first) {
      this.first = false;
      if (!this.initiatorName) return this.fail('MissingParameter', 'InitiatorName missing');
      if (this.sessionType === 'Normal') {
        if (!this.target) return this.fail('MissingParameter', 'TargetName missing');
      }
    }
    if (this.sessionType === 'Normal' && this.target && !this.sentTpgt) {
      // RFC 7143 §13.9: TargetPortalGroupTag in the first login response of a normal session.
      reply.push({ key: 'TargetPortalGroupTag', value: String(this.host.portal.tpgt) });
      this.sentTpgt = true;
    }

    // Security stage: may we leave it?
    if (this.stage === LoginStage.SecurityNegotiation) {
      if (this.authMethod === undefined) {
        // AuthMethod never offered: only acceptable when no authentication is required.
        if (this.chapRequired()) {
          if (pdu.transit) return this.fail('AuthenticationFailure', 'CHAP required but AuthMethod not offered');
        } else if (pdu.transit) {
          this.auth = AuthState.Done;
        }
      }
      if (pdu.transit && this.auth !== AuthState.Done) {
        if (this.auth === AuthState.ChapWaitAlgorithm || this.auth === AuthState.ChapWaitResponse) {
          // The target has more to say (CHAP exchange in progress): stay in the stage.
          return { kind: 'respond', transit: false, csg: this.stage, nsg: 0, pairs: reply };
        }
        return this.fail('AuthenticationFailure', 'authentication not completed');
      }
    } else if (this.chapRequired() && this.auth !== AuthState.Done) {
      return this.fail('AuthenticationFailure', 'CHAP required: security negotiation skipped');
    }

    if (pdu.transit) {
      // Entering the operational stage or full feature phase: declare our receive limit once.
      if ((pdu.nsg === LoginStage.OperationalNegotiation || this.stage === LoginStage.OperationalNegotiation) && !this.declaredMrdsl) {
        reply.push({ key: 'MaxRecvDataSegmentLength', value: this.host.limits.MaxRecvDataSegmentLength });
        this.agreed.set('TargetMaxRecvDataSegmentLength', this.host.limits.MaxRecvDataSegmentLength);
        this.declaredMrdsl = true;
      }
      const from = this.stage;
      this.stage = pdu.nsg as LoginStage;
      return { kind: 'respond', transit: true, csg: from, nsg: pdu.nsg, pairs: reply };
    }
    return { kind: 'respond', transit: false, csg: this.stage, nsg: 0, pairs: reply };
  }

  private chapRequired(): boolean {
    return !!this.target?.chap && this.sessionType === 'Normal';
  }

  private fail(status: LoginStatusName, reason: string): LoginStep {
    return { kind: 'fail', status, reason };
  }

  private handleKey(key: string, value: string, reply: TextPair[]): LoginStep | undefined {
    switch (key) {
      case 'InitiatorName':
        if (!this.first) return this.fail('InvalidDuringLogin', 'InitiatorName after the first request');
        if (!/^(iqn\.|eui\.|naa\.)/i.test(value) || value.length > 223) return this.fail('InitiatorError', `bad InitiatorName ${value}`);
        this.initiatorName = value;
        return;
      case 'InitiatorAlias':
        this.initiatorAlias = value;
        return;
      case 'SessionType':
        if (!this.first) return this.fail('InvalidDuringLogin', 'SessionType after the first request');
        if (value !== 'Normal' && value !== 'Discovery') return this.fail('SessionTypeNotSupported', `SessionType ${value}`);
        this.sessionType = value;
        return;
      case 'TargetName': {
        if (!this.first) return this.fail('InvalidDuringLogin', 'TargetName after the first request');
        const t = this.host.findTarget(value);
        if (!t) return this.fail('NotFound', `no target ${value}`);
        this.target = t;
        return;
      }
      case 'AuthMethod': {
        if (this.stage !== LoginStage.SecurityNegotiation) return this.fail('InitiatorError', 'AuthMethod outside security stage');
        const offered = value.split(',');
        const want = this.chapRequired() ? ['CHAP'] : ['None', 'CHAP'];
        const pick = want.find((m) => offered.includes(m) && (m !== 'CHAP' || this.target?.chap));
        if (!pick) {
          reply.push({ key, value: 'Reject' });
          if (this.chapRequired()) return this.fail('AuthenticationFailure', `AuthMethod ${value} not acceptable`);
          return;
        }
        this.authMethod = pick as 'None' | 'CHAP';
        reply.push({ key, value: pick });
        this.auth = pick === 'None' ? AuthState.Done : AuthState.ChapWaitAlgorithm;
        return;
      }
      case 'CHAP_A': {
        if (this.auth !== AuthState.ChapWaitAlgorithm) return this.fail('InitiatorError', 'unexpected CHAP_A');
        if (!value.split(',').includes('5')) {
          reply.push({ key, value: 'Reject' });
          return this.fail('AuthenticationFailure', 'CHAP_A without MD5 (5)');
        }
        this.chapId = randomBytes(1)[0];
        this.chapChallenge = randomBytes(16);
        reply.push({ key: 'CHAP_A', value: '5' }, { key: 'CHAP_I', value: String(this.chapId) }, { key: 'CHAP_C', value: encodeHex(this.chapChallenge) });
        this.auth = AuthState.ChapWaitResponse;
        return;
      }
      case 'CHAP_N':
      case 'CHAP_R':
      case 'CHAP_I':
      case 'CHAP_C':
        return this.chapKey(key, value, reply);
      default:
        break;
    }
    const def = KEYS.get(key);
    if (!def) {
      // RFC 7143 §6.2: unknown (including X- extension) keys are answered NotUnderstood.
      reply.push({ key, value: 'NotUnderstood' });
      return;
    }
    if (this.sessionType === 'Discovery' && def.normalOnly) {
      reply.push({ key, value: 'Irrelevant' });
      return;
    }
    if (def.kind === 'string') {
      // Marker intervals: irrelevant because markers are always negotiated off.
      reply.push({ key, value: 'Irrelevant' });
      return;
    }
    const ours = this.host.limits[key] ?? DEFAULT_TARGET_LIMITS[key];
    const out = negotiateKey(def, value, ours);
    switch (out.kind) {
      case 'reject':
        // A list key whose default the target does not accept (HeaderDigest=CRC32C only, offered
        // None): after "Reject" the key would stay at that default (RFC 7143 §6.2.1, §13), i.e. the
        // session would run as the target refuses to. The negotiation failed: Login reject with
        // 02/00 Initiator error (§11.13.5), as LIO answers it; open-iscsi takes it as final.
        if (def.kind === 'list' && def.default !== undefined && !(ours ?? '').split(',').includes(def.default)) {
          return this.fail('InitiatorError', `${key}=${value}: no value the target accepts (${ours})`);
        }
        reply.push({ key, value: 'Reject' });
        return;
      case 'irrelevant':
        reply.push({ key, value: 'Irrelevant' });
        return;
      case 'not-understood':
        reply.push({ key, value: 'NotUnderstood' });
        return;
      case 'value':
        this.agreed.set(key, out.result);
        if (key === 'MaxRecvDataSegmentLength') {
          // Declarative: the initiator's receive limit; we answer with our own.
          reply.push({ key, value: this.host.limits.MaxRecvDataSegmentLength });
          this.agreed.set('TargetMaxRecvDataSegmentLength', this.host.limits.MaxRecvDataSegmentLength);
          this.declaredMrdsl = true;
        } else {
          reply.push({ key, value: out.reply });
        }
        return;
    }
  }

  private chapInitiatorChallenge: { id?: number; challenge?: Buffer } = {};
  private chapName = '';
  private chapResp: Buffer | null = null;

  private chapKey(key: string, value: string, reply: TextPair[]): LoginStep | undefined {
    const chap: ChapConfig | undefined = this.target?.chap;
    if (this.auth !== AuthState.ChapWaitResponse || !chap) return this.fail('InitiatorError', `unexpected ${key}`);
    if (key === 'CHAP_N') this.chapName = value;
    else if (key === 'CHAP_R') {
      const r = decodeBinary(value);
      if (!r) return this.fail('AuthenticationFailure', 'CHAP_R not a binary value');
      this.chapResp = r;
    } else if (key === 'CHAP_I') {
      const id = Number(value);
      if (!Number.isInteger(id) || id < 0 || id > 255) return this.fail('AuthenticationFailure', 'bad CHAP_I');
      this.chapInitiatorChallenge.id = id;
    } else if (key === 'CHAP_C') {
      const c = decodeBinary(value);
      if (!c) return this.fail('AuthenticationFailure', 'CHAP_C not a binary value');
      this.chapInitiatorChallenge.challenge = c;
    }
    return;
  }

  /** Called after all keys of a PDU were handled: complete CHAP (incl. the mutual answer). */
  finishChap(reply: TextPair[]): LoginStep | undefined {
    const chap = this.target?.chap;
    if (this.auth !== AuthState.ChapWaitResponse || !chap) return;
    if (!this.chapName || !this.chapResp) return this.fail('AuthenticationFailure', 'CHAP_N and CHAP_R expected');
    if (this.chapName !== chap.user) return this.fail('AuthenticationFailure', `CHAP_N ${this.chapName} unknown`);
    if (!chapResponse(this.chapId, chap.secret, this.chapChallenge).equals(this.chapResp)) {
      return this.fail('AuthenticationFailure', 'CHAP_R does not match');
    }
    const { id, challenge } = this.chapInitiatorChallenge;
    if (id !== undefined || challenge !== undefined) {
      if (id === undefined || !challenge) return this.fail('AuthenticationFailure', 'mutual CHAP needs CHAP_I and CHAP_C');
      if (!chap.mutualUser || chap.mutualSecret === undefined) return this.fail('AuthenticationFailure', 'mutual CHAP not configured');
      // A reflected challenge would let an attacker use us as an oracle (RFC 7143 §12.1.3).
      if (challenge.equals(this.chapChallenge)) return this.fail('AuthenticationFailure', 'reflected CHAP challenge');
      reply.push({ key: 'CHAP_N', value: chap.mutualUser }, { key: 'CHAP_R', value: encodeHex(chapResponse(id, chap.mutualSecret, challenge)) });
    }
    this.auth = AuthState.Done;
    return;
  }
}
