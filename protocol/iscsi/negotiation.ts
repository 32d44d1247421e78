/**
 * Login/text key negotiation as a table (RFC 7143 §6.2, §13; STYLE.md habit 10).
 * Each row names the key, its type, default, legal range and result function; the
 * negotiator is generic over the table.
 */

export type ResultRule = 'min' | 'max' | 'and' | 'or' | 'list' | 'declarative';
export type KeyPhase = 'leading-only' | 'initialize-only' | 'any' | 'ffp';

export interface KeyDef {
  key: string;
  kind: 'numeric' | 'boolean' | 'list' | 'string';
  rule: ResultRule;
  default?: string;
  min?: number;
  max?: number;
  /** legal values for list keys, in our order of preference. */
  values?: readonly string[];
  /** LO: only in the leading connection's login; IO: login only. (RFC 7143 §6.2 use column) */
  use: 'LO' | 'IO' | 'ALL' | 'FFPO';
  /** Keys only the target may send / only the initiator may send. */
  sender?: 'initiator' | 'target' | 'both';
  /** Only meaningful in normal (not discovery) sessions: reply Irrelevant in discovery. */
  normalOnly?: boolean;
}

const U24 = 2 ** 24 - 1;

export const KEY_TABLE: readonly KeyDef[] = [
  { key: 'HeaderDigest', kind: 'list', rule: 'list', default: 'None', values: ['CRC32C', 'None'], use: 'IO' },
  { key: 'DataDigest', kind: 'list', rule: 'list', default: 'None', values: ['CRC32C', 'None'], use: 'IO' },
  { key: 'MaxConnections', kind: 'numeric', rule: 'min', default: '1', min: 1, max: 65535, use: 'LO', normalOnly: true },
  { key: 'InitialR2T', kind: 'boolean', rule: 'or', default: 'Yes', use: 'LO', normalOnly: true },
  { key: 'ImmediateData', kind: 'boolean', rule: 'and', default: 'Yes', use: 'LO', normalOnly: true },
  { key: 'MaxRecvDataSegmentLength', kind: 'numeric', rule: 'declarative', default: '8192', min: 512, max: U24, use: 'ALL' },
  { key: 'MaxBurstLength', kind: 'numeric', rule: 'min', default: '262144', min: 512, max: U24, use: 'LO', normalOnly: true },
  { key: 'FirstBurstLength', kind: 'numeric', rule: 'min', default: '65536', min: 512, max: U24, use: 'LO', normalOnly: true },
  { key: 'DefaultTime2Wait', kind: 'numeric', rule: 'max', default: '2', min: 0, max: 3600, use: 'LO' },
  { key: 'DefaultTime2Retain', kind: 'numeric', rule: 'min', default: '20', min: 0, max: 3600, use: 'LO' },
  { key: 'MaxOutstandingR2T', kind: 'numeric', rule: 'min', default: '1', min: 1, max: 65535, use: 'LO', normalOnly: true },
  { key: 'DataPDUInOrder', kind: 'boolean', rule: 'or', default: 'Yes', use: 'LO', normalOnly: true },
  { key: 'DataSequenceInOrder', kind: 'boolean', rule: 'or', default: 'Yes', use: 'LO', normalOnly: true },
  { key: 'ErrorRecoveryLevel', kind: 'numeric', rule: 'min', default: '0', min: 0, max: 2, use: 'LO' },
  // Markers were removed by RFC 7143 but initiators still offer them (RFC 3720 §A.3).
  { key: 'OFMarker', kind: 'boolean', rule: 'and', default: 'No', use: 'IO' },
  { key: 'IFMarker', kind: 'boolean', rule: 'and', default: 'No', use: 'IO' },
  { key: 'OFMarkInt', kind: 'string', rule: 'declarative', use: 'IO' },
  { key: 'IFMarkInt', kind: 'string', rule: 'declarative', use: 'IO' },
  { key: 'iSCSIProtocolLevel', kind: 'numeric', rule: 'min', default: '0', min: 0, max: 31, use: 'LO' },
  { key: 'TaskReporting', kind: 'list', rule: 'list', default: 'RFC3720', values: ['RFC3720'], use: 'LO', normalOnly: true },
];

export const KEYS: ReadonlyMap<string, KeyDef> = new Map(KEY_TABLE.map((k) => [k.key, k]));

/** What the target is willing to do: its side of each negotiation. */
export type TargetLimits = Record<string, string>;

export const DEFAULT_TARGET_LIMITS: TargetLimits = {
  HeaderDigest: 'CRC32C,None',
  DataDigest: 'CRC32C,None',
  MaxConnections: '1',
  InitialR2T: 'No',
  ImmediateData: 'Yes',
  MaxRecvDataSegmentLength: '262144',
  MaxBurstLength: '1048576',
  FirstBurstLength: '262144',
  DefaultTime2Wait: '2',
  DefaultTime2Retain: '20',
  MaxOutstandingR2T: '16',
  DataPDUInOrder: 'Yes',
  DataSequenceInOrder: 'Yes',
  ErrorRecoveryLevel: '0',
  OFMarker: 'No',
  IFMarker: 'No',
  iSCSIProtocolLevel: '1',
  TaskReporting: 'RFC3720',
};

export type NegotiationOutcome =
  | { kind: 'value'; reply: string; result: string }
  | { kind: 'reject' }
  | { kind: 'irrelevant' }
  | { kind: 'not-understood' };

function numeric(v: string): number | null {
  // RFC 7143 §6.1: decimal-constant, or hex-constant with a "0x" or "0X" prefix.
  if (!/^(0|[1-9][0-9]{0,9}|0[xX][0-9a-fA-F]{1,8})$/.test(v)) return null;
  return Number(v);
}

/**
 * Negotiate one key offered by the initiator (RFC 7143 §6.2.2 for numeric, §6.2.1 for list and
 * boolean keys). Returns what to reply and the resulting operational value.
 */
export function negotiateKey(def: KeyDef, offered: string, ours: string | undefined): NegotiationOutcome {
  switch (def.kind) {
    case 'numeric': {
      const v = numeric(offered);
      if (v === null || v < (def.min ?? 0) || v > (def.max ?? U24)) return { kind: 'reject' };
      if (def.rule === 'declarative') return { kind: 'value', reply: ours ?? offered, result: offered };
      const mine = Number(ours ?? def.default);
      const r = def.rule === 'min' ? Math.min(v, mine) : Math.max(v, mine);
      return { kind: 'value', reply: String(r), result: String(r) };
    }
    case 'boolean': {
      if (offered !== 'Yes' && offered !== 'No') return { kind: 'reject' };
      const mine = (ours ?? def.default) === 'Yes';
      const theirs = offered === 'Yes';
      const r = def.rule === 'and' ? mine && theirs : mine || theirs;
      const s = r ? 'Yes' : 'No';
      return { kind: 'value', reply: s, result: s };
    }
    case 'list': {
      const acceptable = (ours ?? def.values?.join(',') ?? '').split(',');
      const choice = offered.split(',').find((o) => acceptable.includes(o));
      // RFC 7143 §6.2.1: no common value → "Reject".
      if (choice === undefined) return { kind: 'reject' };
      return { kind: 'value', reply: choice, result: choice };
    }
    case 'string':
      return { kind: 'irrelevant' };
  }
}
