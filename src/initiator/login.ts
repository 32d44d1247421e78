/**
 * The initiator's side of login (RFC 7143 §6.3, §11.12-13, §12.1.3) as a pure state machine:
 * it is handed each Login Response's stage bits, status and keys, and answers with the next
 * request's keys or a result. It never touches a socket (session.ts carries the PDUs).
 *
 *   SecurityNegotiation ──(AuthMethod=None | CHAP done)──► OperationalNegotiation ──► FullFeaturePhase
 *      Start → ChapAlgorithm → ChapResponse → (mutual: verify the target's CHAP_R)
 *
 * What we offer is a table (OFFERS, STYLE.md habit 10), checked against the same key table the
 * target uses (protocol/iscsi/negotiation.ts KEYS): each answer must be one the rule for that key
 * allows given our offer (list: one of ours; min: not above ours; max: not below; and/or booleans).
 */
import { KEYS, negotiateKey } from '../../protocol/iscsi/negotiation.ts';
import type { KeyDef } from '../../protocol/iscsi/negotiation.ts';
import { LoginStage } from '../../protocol/iscsi/pdu.ts';
import type { TextPair } from '../../protocol/iscsi/text.ts';
import { chapResponse, decodeBinary, encodeHex, newChallenge } from '../iscsi/chap.ts';
import { InitiatorError, LoginFailedError } from './errors.ts';

export interface ChapCredentials {
  /** CHAP_N and secret the initiator presents (one-way CHAP). */
  user: string;
  secret: string;
  /** Set both to require the target to authenticate itself too (mutual CHAP). */
  targetUser?: string;
  targetSecret?: string;
}

/** What the initiator asks for; every field has a default (DEFAULT_OFFER). */
export interface LoginOffer {
  headerDigest: 'CRC32C' | 'None' | 'CRC32C,None' | 'None,CRC32C';
  dataDigest: 'CRC32C' | 'None' | 'CRC32C,None' | 'None,CRC32C';
  /** What we can receive in one PDU (declarative). */
  maxRecvDataSegmentLength: number;
  maxBurstLength: number;
  firstBurstLength: number;
  immediateData: boolean;
  initialR2T: boolean;
  maxOutstandingR2T: number;
}

export const DEFAULT_OFFER: LoginOffer = {
  headerDigest: 'None',
  dataDigest: 'None',
  maxRecvDataSegmentLength: 262144,
  maxBurstLength: 1048576,
  firstBurstLength: 262144,
  immediateData: true,
  initialR2T: false,
  maxOutstandingR2T: 16,
};

export interface LoginRequestSpec {
  initiatorName: string;
  /** Absent: a discovery session (SendTargets only). */
  targetName?: string;
  chap?: ChapCredentials;
  offer?: Partial<LoginOffer>;
}

/** The operational values in force after login, typed. */
export interface SessionParams {
  headerDigest: boolean;
  dataDigest: boolean;
  /** What we declared we receive per PDU. */
  maxRecvDataSegmentLength: number;
  /** What the target declared it receives per PDU: our Data-Out and immediate data limit. */
  maxSendDataSegmentLength: number;
  maxBurstLength: number;
  firstBurstLength: number;
  immediateData: boolean;
  initialR2T: boolean;
  maxOutstandingR2T: number;
  errorRecoveryLevel: number;
  targetPortalGroupTag?: number;
  targetAlias?: string;
  /** Every key the target sent, as sent. */
  targetKeys: Record<string, string>;
}

/** One Login Request to send: stage bits and keys. */
export interface LoginMessage {
  transit: boolean;
  csg: LoginStage;
  nsg: LoginStage;
  pairs: TextPair[];
}

export interface LoginResponseView {
  transit: boolean;
  csg: number;
  nsg: number;
  statusClass: number;
  statusDetail: number;
  pairs: readonly TextPair[];
}

export type LoginNext =
  | { kind: 'send'; message: LoginMessage }
  | { kind: 'done'; params: SessionParams }
  | { kind: 'fail'; error: InitiatorError };

const enum Auth { Start, ChapAlgorithm, ChapResponse, Done }

const yesNo = (b: boolean): string => (b ? 'Yes' : 'No');

/** The operational offer as key/value rows, in the order they are sent. Discovery sessions send the first three only. */
function offerRows(o: LoginOffer, discovery: boolean): TextPair[] {
  const rows: [string, string][] = [
    ['HeaderDigest', o.headerDigest],
    ['DataDigest', o.dataDigest],
    ['MaxRecvDataSegmentLength', String(o.maxRecvDataSegmentLength)],
  ];
  if (!discovery) {
    rows.push(
      ['InitialR2T', yesNo(o.initialR2T)],
      ['ImmediateData', yesNo(o.immediateData)],
      ['MaxBurstLength', String(o.maxBurstLength)],
      ['FirstBurstLength', String(o.firstBurstLength)],
      ['MaxOutstandingR2T', String(o.maxOutstandingR2T)],
      ['MaxConnections', '1'],
      ['ErrorRecoveryLevel', '0'],
      ['DataPDUInOrder', 'Yes'],
      ['DataSequenceInOrder', 'Yes'],
      ['DefaultTime2Wait', '2'],
      ['DefaultTime2Retain', '0'],
    );
  }
  return rows.map(([key, value]) => ({ key, value }));
}

/**
 * Is `answer` a legal result of negotiating `def` when we offered `offered`? Returns the value in
 * force, or null (RFC 7143 §6.2: an answer outside what the rule allows ends the login).
 */
export function acceptAnswer(def: KeyDef, offered: string, answer: string): string | null {
  if (answer === 'Irrelevant') return offered.split(',')[0];
  switch (def.kind) {
    case 'list':
      return offered.split(',').includes(answer) ? answer : null;
    case 'boolean':
      if (answer !== 'Yes' && answer !== 'No') return null;
      // "and": we said No → must be No; "or": we said Yes → must be Yes (§6.2.2).
      if (def.rule === 'and' && offered === 'No' && answer === 'Yes') return null;
      if (def.rule === 'or' && offered === 'Yes' && answer === 'No') return null;
      return answer;
    case 'numeric': {
      if (!/^(0|[1-9][0-9]{0,9}|0[xX][0-9a-fA-F]{1,8})$/.test(answer)) return null;
      const v = Number(answer);
      if (v < (def.min ?? 0) || v > (def.max ?? 2 ** 24 - 1)) return null;
      if (def.rule === 'declarative') return String(v);
      if (def.rule === 'min' && v > Number(offered)) return null;
      if (def.rule === 'max' && v < Number(offered)) return null;
      return String(v);
    }
    case 'string':
      return answer;
  }
}

export class LoginExchange {
  private stage: LoginStage = LoginStage.SecurityNegotiation;
  private auth = Auth.Start;
  private readonly offer: LoginOffer;
  private readonly offered = new Map<string, string>();
  private readonly agreed = new Map<string, string>();
  private readonly targetKeys: Record<string, string> = {};
  private mutualChallenge: { id: number; challenge: Buffer } | null = null;
  private targetAuthenticated = false;
  private opsSent = false;

  constructor(private readonly spec: LoginRequestSpec) {
    this.offer = { ...DEFAULT_OFFER, ...spec.offer };
    if (spec.chap?.targetUser && !spec.chap.targetSecret) throw new InitiatorError('authentication-failed', 'mutual CHAP needs the target secret');
  }

  private get discovery(): boolean {
    return this.spec.targetName === undefined;
  }

  /** The first Login Request. */
  first(): LoginMessage {
    const pairs: TextPair[] = [
      { key: 'InitiatorName', value: this.spec.initiatorName },
      { key: 'SessionType', value: this.discovery ? 'Discovery' : 'Normal' },
    ];
    if (this.spec.targetName !== undefined) pairs.push({ key: 'TargetName', value: this.spec.targetName });
    // With credentials we offer CHAP first; the target picks (RFC 7143 §12.1: list negotiation).
    pairs.push({ key: 'AuthMethod', value: this.spec.chap ? 'CHAP,None' : 'None' });
    // Without CHAP nothing more is said in this stage: ask to move on at once.
    const transit = !this.spec.chap;
    return { transit, csg: LoginStage.SecurityNegotiation, nsg: transit ? LoginStage.OperationalNegotiation : LoginStage.SecurityNegotiation, pairs };
  }

  /** Take one Login Response; say what to send next, or how the login ended. */
  next(r: LoginResponseView): LoginNext {
    if (r.statusClass !== 0) return { kind: 'fail', error: new LoginFailedError(r.statusClass, r.statusDetail) };
    const reply: TextPair[] = [];
    for (const { key, value } of r.pairs) {
      this.targetKeys[key] = value;
      const bad = this.onKey(key, value, reply);
      if (bad) return { kind: 'fail', error: bad };
    }
    if (this.stage === LoginStage.SecurityNegotiation) return this.security(r, reply);
    if (this.stage === LoginStage.OperationalNegotiation) return this.operational(r, reply);
    return { kind: 'fail', error: new InitiatorError('protocol-error', 'login response after full feature phase') };
  }

  private security(r: LoginResponseView, reply: TextPair[]): LoginNext {
    const chap = this.spec.chap;
    if (this.auth === Auth.Start) {
      const method = this.targetKeys.AuthMethod;
      if (method === 'CHAP' && chap) {
        this.auth = Auth.ChapAlgorithm;
        // CHAP_A: MD5 (5) only (RFC 7143 §12.1.3).
        return this.send(false, LoginStage.SecurityNegotiation, [...reply, { key: 'CHAP_A', value: '5' }]);
      }
      if (method !== undefined && method !== 'None') return this.authFail(`the target chose AuthMethod ${method}`);
      if (chap?.targetUser) return this.authFail('mutual CHAP was required but the target chose no authentication');
      this.auth = Auth.Done;
    } else if (this.auth === Auth.ChapAlgorithm) {
      const { CHAP_A: a, CHAP_I: i, CHAP_C: c } = this.targetKeys;
      if (a !== '5') return this.authFail(`the target chose CHAP_A ${a ?? '(none)'}, not MD5`);
      const id = Number(i);
      const challenge = c === undefined ? null : decodeBinary(c);
      if (!/^[0-9]+$/.test(i ?? '') || id > 255 || !challenge) return this.authFail('the target sent no usable CHAP_I/CHAP_C');
      const pairs: TextPair[] = [...reply, { key: 'CHAP_N', value: chap!.user }, { key: 'CHAP_R', value: encodeHex(chapResponse(id, chap!.secret, challenge)) }];
      if (chap!.targetUser) {
        this.mutualChallenge = newChallenge();
        pairs.push({ key: 'CHAP_I', value: String(this.mutualChallenge.id) }, { key: 'CHAP_C', value: encodeHex(this.mutualChallenge.challenge) });
      }
      this.auth = Auth.ChapResponse;
      return this.send(true, LoginStage.OperationalNegotiation, pairs);
    } else if (this.auth === Auth.ChapResponse) {
      if (this.mutualChallenge) {
        const n = this.targetKeys.CHAP_N;
        const resp = this.targetKeys.CHAP_R === undefined ? null : decodeBinary(this.targetKeys.CHAP_R);
        if (!resp) return this.authFail('the target did not answer our CHAP challenge');
        if (n !== chap!.targetUser) return this.authFail(`the target named itself ${n}, not ${chap!.targetUser}`);
        const want = chapResponse(this.mutualChallenge.id, chap!.targetSecret!, this.mutualChallenge.challenge);
        if (!want.equals(resp)) return this.authFail('the target\'s CHAP_R is wrong (wrong target secret)');
        this.targetAuthenticated = true;
      }
      this.auth = Auth.Done;
    }
    if (!r.transit) {
      // The target stays in the security stage: say we want to leave it.
      return this.send(true, LoginStage.OperationalNegotiation, reply);
    }
    if (r.nsg === LoginStage.FullFeaturePhase) return this.finish();
    this.stage = LoginStage.OperationalNegotiation;
    return this.sendOps(reply);
  }

  private operational(r: LoginResponseView, reply: TextPair[]): LoginNext {
    if (r.transit && r.nsg === LoginStage.FullFeaturePhase) return this.finish();
    return this.sendOps(reply);
  }

  private sendOps(reply: TextPair[]): LoginNext {
    const pairs = [...reply];
    if (!this.opsSent) {
      for (const p of offerRows(this.offer, this.discovery)) {
        if (this.agreed.has(p.key)) continue;
        this.offered.set(p.key, p.value);
        pairs.push(p);
      }
      this.opsSent = true;
    }
    return this.send(true, LoginStage.FullFeaturePhase, pairs);
  }

  private send(transit: boolean, nsg: LoginStage, pairs: TextPair[]): LoginNext {
    return { kind: 'send', message: { transit, csg: this.stage, nsg: transit ? nsg : this.stage, pairs } };
  }

  private authFail(why: string): LoginNext {
    return { kind: 'fail', error: new InitiatorError('authentication-failed', why) };
  }

  /** One key from the target. Answers to our offers are checked; the target's own offers are answered. */
  private onKey(key: string, value: string, reply: TextPair[]): InitiatorError | null {
    if (key.startsWith('CHAP_') || key === 'AuthMethod' || key === 'TargetAlias' || key === 'TargetAddress') return null;
    if (key === 'TargetPortalGroupTag') return null;
    const def = KEYS.get(key);
    if (!def) {
      reply.push({ key, value: 'NotUnderstood' });
      return null;
    }
    if (key === 'MaxRecvDataSegmentLength') {
      // Declarative (RFC 7143 §13.12): the target's own receive limit, whether or not we declared ours.
      const v = acceptAnswer(def, value, value);
      if (v === null) return new InitiatorError('negotiation-failed', `the target declared MaxRecvDataSegmentLength=${value}`);
      this.agreed.set('TargetMaxRecvDataSegmentLength', v);
      return null;
    }
    const offered = this.offered.get(key);
    if (offered !== undefined) {
      let v: string | null;
      if (value === 'Reject') {
        // The target will not do what we offered (RFC 7143 §6.2.1); carrying on with the default
        // would be running with a value it has just refused, so the login ends here.
        v = null;
      } else if (value === 'NotUnderstood') {
        // An old target: the key keeps its default, if that is something we can live with (§6.2).
        const d = def.default;
        v = d !== undefined && acceptAnswer(def, offered, d) !== null ? d : null;
      } else v = acceptAnswer(def, offered, value);
      if (v === null) {
        return new InitiatorError('negotiation-failed', `the target answered ${key}=${value} to our ${offered}`);
      }
      this.agreed.set(key, v);
      return null;
    }
    // The target proposes a key we did not offer: answer it from our side of the table.
    const ours = this.ourValue(key);
    const out = negotiateKey(def, value, ours);
    if (out.kind === 'value') {
      this.agreed.set(key, out.result);
      reply.push({ key, value: out.reply });
    } else {
      reply.push({ key, value: out.kind === 'reject' ? 'Reject' : out.kind === 'irrelevant' ? 'Irrelevant' : 'NotUnderstood' });
    }
    return null;
  }

  private ourValue(key: string): string | undefined {
    return offerRows(this.offer, this.discovery).find((p) => p.key === key)?.value;
  }

  private finish(): LoginNext {
    if (this.spec.chap?.targetUser && !this.targetAuthenticated) return this.authFail('the target never authenticated itself (mutual CHAP)');
    this.stage = LoginStage.FullFeaturePhase;
    const get = (k: string): string => this.agreed.get(k) ?? KEYS.get(k)?.default ?? '';
    const num = (k: string): number => Number(get(k));
    const mbl = num('MaxBurstLength');
    const tpgt = this.targetKeys.TargetPortalGroupTag;
    return {
      kind: 'done',
      params: {
        headerDigest: get('HeaderDigest') === 'CRC32C',
        dataDigest: get('DataDigest') === 'CRC32C',
        maxRecvDataSegmentLength: this.offer.maxRecvDataSegmentLength,
        maxSendDataSegmentLength: Number(this.agreed.get('TargetMaxRecvDataSegmentLength') ?? '8192'),
        maxBurstLength: mbl,
        // RFC 7143 §13.14: FirstBurstLength must not exceed MaxBurstLength.
        firstBurstLength: Math.min(num('FirstBurstLength'), mbl),
        immediateData: get('ImmediateData') === 'Yes',
        initialR2T: get('InitialR2T') === 'Yes',
        maxOutstandingR2T: num('MaxOutstandingR2T'),
        errorRecoveryLevel: num('ErrorRecoveryLevel'),
        ...(tpgt !== undefined ? { targetPortalGroupTag: Number(tpgt) } : {}),
        ...(this.targetKeys.TargetAlias !== undefined ? { targetAlias: this.targetKeys.TargetAlias } : {}),
        targetKeys: { ...this.targetKeys },
      },
    };
  }
}
