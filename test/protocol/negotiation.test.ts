/**
 * Key negotiation (RFC 7143 §6.2, §13): the table's rows against the RFC's key definitions,
 * and negotiateKey's result functions, ranges and value syntax.
 */
import { describe, expect, it } from 'vitest';
import { DEFAULT_TARGET_LIMITS, KEY_TABLE, KEYS, negotiateKey } from '../../protocol/iscsi/negotiation.ts';
import type { KeyDef } from '../../protocol/iscsi/negotiation.ts';

const key = (k: string): KeyDef => {
  const d = KEYS.get(k);
  if (!d) throw new Error(`no key ${k}`);
  return d;
};
const value = (reply: string, result = reply) => ({ kind: 'value', reply, result });
const REJECT = { kind: 'reject' };
const U24 = 16777215;

describe('KEY_TABLE against RFC 7143 §13', () => {
  // [key, kind, result function, default, min, max]
  const RFC: [string, KeyDef['kind'], KeyDef['rule'], string, number?, number?][] = [
    ['HeaderDigest', 'list', 'list', 'None'], // §13.1
    ['DataDigest', 'list', 'list', 'None'], // §13.1
    ['MaxConnections', 'numeric', 'min', '1', 1, 65535], // §13.2
    ['InitialR2T', 'boolean', 'or', 'Yes'], // §13.10
    ['ImmediateData', 'boolean', 'and', 'Yes'], // §13.11
    ['MaxRecvDataSegmentLength', 'numeric', 'declarative', '8192', 512, U24], // §13.12
    ['MaxBurstLength', 'numeric', 'min', '262144', 512, U24], // §13.13
    ['FirstBurstLength', 'numeric', 'min', '65536', 512, U24], // §13.14
    ['DefaultTime2Wait', 'numeric', 'max', '2', 0, 3600], // §13.15
    ['DefaultTime2Retain', 'numeric', 'min', '20', 0, 3600], // §13.16
    ['MaxOutstandingR2T', 'numeric', 'min', '1', 1, 65535], // §13.17
    ['DataPDUInOrder', 'boolean', 'or', 'Yes'], // §13.18
    ['DataSequenceInOrder', 'boolean', 'or', 'Yes'], // §13.19
    ['ErrorRecoveryLevel', 'numeric', 'min', '0', 0, 2], // §13.20
  ];

  for (const [k, kind, rule, dflt, min, max] of RFC) {
    it(`${k}: ${kind}, ${rule}, default ${dflt}${min !== undefined ? `, ${min}..${max}` : ''}`, () => {
      const d = key(k);
      expect(d.kind).toBe(kind);
      expect(d.rule).toBe(rule);
      expect(d.default).toBe(dflt);
      if (min !== undefined) {
        expect(d.min).toBe(min);
        expect(d.max).toBe(max);
      }
    });
  }

  it('digests offer exactly CRC32C and None', () => {
    expect([...key('HeaderDigest').values!].sort()).toEqual(['CRC32C', 'None']);
    expect([...key('DataDigest').values!].sort()).toEqual(['CRC32C', 'None']);
  });

  it('keys are unique, KEYS indexes every row, and every row is self-consistent', () => {
    expect(new Set(KEY_TABLE.map((k) => k.key)).size).toBe(KEY_TABLE.length);
    expect(KEYS.size).toBe(KEY_TABLE.length);
    for (const d of KEY_TABLE) {
      expect(KEYS.get(d.key)).toBe(d);
      if (d.kind === 'numeric') {
        expect(['min', 'max', 'declarative'], d.key).toContain(d.rule);
        expect(d.min! <= Number(d.default) && Number(d.default) <= d.max!, d.key).toBe(true);
      }
      if (d.kind === 'boolean') {
        expect(['and', 'or'], d.key).toContain(d.rule);
        expect(['Yes', 'No'], d.key).toContain(d.default);
      }
      if (d.kind === 'list') expect(d.values, d.key).toContain(d.default);
    }
  });

  it('session-wide keys that mean nothing in discovery are marked normal-only (§13 "Irrelevant when")', () => {
    for (const k of ['MaxConnections', 'InitialR2T', 'ImmediateData', 'MaxBurstLength', 'FirstBurstLength',
      'MaxOutstandingR2T', 'DataPDUInOrder', 'DataSequenceInOrder']) {
      expect(key(k).normalOnly, k).toBe(true);
    }
    for (const k of ['HeaderDigest', 'DataDigest', 'MaxRecvDataSegmentLength', 'ErrorRecoveryLevel']) {
      expect(key(k).normalOnly ?? false, k).toBe(false);
    }
  });

  it('the target defaults offer values every key accepts', () => {
    for (const [k, v] of Object.entries(DEFAULT_TARGET_LIMITS)) {
      const d = key(k);
      const probe = d.kind === 'list' ? v.split(',')[0] : v;
      expect(negotiateKey(d, probe, v).kind, k).toBe('value');
    }
  });
});

describe('numeric keys', () => {
  it('min: the smaller of offer and ours', () => {
    expect(negotiateKey(key('MaxBurstLength'), '131072', '262144')).toEqual(value('131072'));
    expect(negotiateKey(key('MaxBurstLength'), '16776192', '262144')).toEqual(value('262144'));
    expect(negotiateKey(key('ErrorRecoveryLevel'), '2', '0')).toEqual(value('0'));
    expect(negotiateKey(key('MaxOutstandingR2T'), '1', '16')).toEqual(value('1'));
  });

  it('max: the larger of offer and ours (DefaultTime2Wait)', () => {
    expect(negotiateKey(key('DefaultTime2Wait'), '5', '2')).toEqual(value('5'));
    expect(negotiateKey(key('DefaultTime2Wait'), '0', '2')).toEqual(value('2'));
  });

  it('without our own value, the RFC default is our side', () => {
    expect(negotiateKey(key('MaxBurstLength'), '1048576', undefined)).toEqual(value('262144'));
    expect(negotiateKey(key('DefaultTime2Retain'), '0', undefined)).toEqual(value('0'));
  });

  it('declarative (MaxRecvDataSegmentLength): we reply with ours, the result is what they declared', () => {
    expect(negotiateKey(key('MaxRecvDataSegmentLength'), '1024', '262144')).toEqual(value('262144', '1024'));
    expect(negotiateKey(key('MaxRecvDataSegmentLength'), '16777215', '8192')).toEqual(value('8192', '16777215'));
  });

  it('range limits are inclusive; outside → Reject', () => {
    const cases: [string, string, boolean][] = [
      ['MaxBurstLength', '511', false], ['MaxBurstLength', '512', true], ['MaxBurstLength', '16777215', true],
      ['MaxBurstLength', '16777216', false], ['MaxRecvDataSegmentLength', '511', false],
      ['MaxConnections', '0', false], ['MaxConnections', '65535', true], ['MaxConnections', '65536', false],
      ['DefaultTime2Wait', '3600', true], ['DefaultTime2Wait', '3601', false],
      ['ErrorRecoveryLevel', '2', true], ['ErrorRecoveryLevel', '3', false],
      ['MaxOutstandingR2T', '0', false], ['FirstBurstLength', '4294967296', false],
    ];
    for (const [k, v, ok] of cases) {
      expect(negotiateKey(key(k), v, DEFAULT_TARGET_LIMITS[k]).kind, `${k}=${v}`).toBe(ok ? 'value' : 'reject');
    }
  });

  it('hex constants are numbers (§6.1 hex-constant: "0x" or "0X" then hex digits)', () => {
    expect(negotiateKey(key('MaxBurstLength'), '0x20000', '262144')).toEqual(value('131072'));
    expect(negotiateKey(key('MaxBurstLength'), '0X20000', '262144')).toEqual(value('131072'));
    expect(negotiateKey(key('MaxBurstLength'), '0xFFFFFF', '262144')).toEqual(value('262144'));
    // Declarative: the declared string is kept; callers read it with Number(), which takes hex.
    const mrdsl = negotiateKey(key('MaxRecvDataSegmentLength'), '0x00002000', '262144');
    expect(mrdsl).toMatchObject({ kind: 'value', reply: '262144' });
    if (mrdsl.kind === 'value') expect(Number(mrdsl.result)).toBe(8192);
  });

  it('bad numeric syntax → Reject', () => {
    for (const v of ['', ' 512', '512 ', '+512', '-1', '1.5', '1e6', '0512', '00', '0x', '0xg1', 'abc', 'Yes', '512,1024',
      '0b1000', '５１２']) {
      expect(negotiateKey(key('MaxBurstLength'), v, '262144'), JSON.stringify(v)).toEqual(REJECT);
    }
  });

  it('zero is a valid decimal constant', () => {
    expect(negotiateKey(key('DefaultTime2Retain'), '0', '20')).toEqual(value('0'));
  });
});

describe('boolean keys', () => {
  it('and (ImmediateData): Yes only if both say Yes', () => {
    expect(negotiateKey(key('ImmediateData'), 'Yes', 'Yes')).toEqual(value('Yes'));
    expect(negotiateKey(key('ImmediateData'), 'No', 'Yes')).toEqual(value('No'));
    expect(negotiateKey(key('ImmediateData'), 'Yes', 'No')).toEqual(value('No'));
    expect(negotiateKey(key('ImmediateData'), 'No', 'No')).toEqual(value('No'));
  });

  it('or (InitialR2T, DataPDUInOrder): Yes if either says Yes', () => {
    expect(negotiateKey(key('InitialR2T'), 'No', 'No')).toEqual(value('No'));
    expect(negotiateKey(key('InitialR2T'), 'Yes', 'No')).toEqual(value('Yes'));
    expect(negotiateKey(key('InitialR2T'), 'No', 'Yes')).toEqual(value('Yes'));
    expect(negotiateKey(key('DataPDUInOrder'), 'No', 'No')).toEqual(value('No'));
  });

  it('default as our side: InitialR2T defaults to Yes, so an offer of No stays Yes', () => {
    expect(negotiateKey(key('InitialR2T'), 'No', undefined)).toEqual(value('Yes'));
  });

  it('values are case-sensitive Yes/No; anything else → Reject', () => {
    for (const v of ['yes', 'NO', 'true', '1', '', 'Yes,No']) {
      expect(negotiateKey(key('ImmediateData'), v, 'Yes'), v).toEqual(REJECT);
    }
  });
});

describe('list keys', () => {
  it("the first value in the initiator's list that we accept (§6.2.1)", () => {
    expect(negotiateKey(key('HeaderDigest'), 'CRC32C,None', 'CRC32C,None')).toEqual(value('CRC32C'));
    expect(negotiateKey(key('HeaderDigest'), 'None,CRC32C', 'CRC32C,None')).toEqual(value('None'));
    expect(negotiateKey(key('DataDigest'), 'CRC32C,None', 'None')).toEqual(value('None'));
    expect(negotiateKey(key('DataDigest'), 'MD5,CRC32C', 'CRC32C,None')).toEqual(value('CRC32C'));
  });

  it('no common value → Reject', () => {
    expect(negotiateKey(key('HeaderDigest'), 'CRC32C', 'None')).toEqual(REJECT);
    expect(negotiateKey(key('HeaderDigest'), 'MD5', 'CRC32C,None')).toEqual(REJECT);
    expect(negotiateKey(key('HeaderDigest'), '', 'CRC32C,None')).toEqual(REJECT);
    expect(negotiateKey(key('HeaderDigest'), 'crc32c', 'CRC32C,None')).toEqual(REJECT);
  });

  it("without our own list, the table's values are ours", () => {
    expect(negotiateKey(key('DataDigest'), 'CRC32C', undefined)).toEqual(value('CRC32C'));
    expect(negotiateKey(key('TaskReporting'), 'ResponseFence,RFC3720', undefined)).toEqual(value('RFC3720'));
  });
});

describe('string keys', () => {
  it('marker intervals are Irrelevant', () => {
    expect(negotiateKey(key('OFMarkInt'), '2048~8192', undefined)).toEqual({ kind: 'irrelevant' });
    expect(negotiateKey(key('IFMarkInt'), 'Reject', undefined)).toEqual({ kind: 'irrelevant' });
  });
});
