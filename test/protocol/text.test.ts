/**
 * Text key=value data segments (RFC 7143 §6.1): UTF-8 pairs, each NUL terminated.
 */
import { describe, expect, it } from 'vitest';
import { encodeText, MAX_KEY_LENGTH, MAX_VALUE_LENGTH, parseText } from '../../protocol/iscsi/text.ts';

const seg = (s: string): Buffer => Buffer.from(s, 'utf8');

describe('parseText', () => {
  it('several pairs, in order', () => {
    expect(parseText(seg('InitiatorName=iqn.2026-01.test:a\0SessionType=Normal\0AuthMethod=CHAP,None\0'))).toEqual({
      kind: 'ok',
      pairs: [
        { key: 'InitiatorName', value: 'iqn.2026-01.test:a' },
        { key: 'SessionType', value: 'Normal' },
        { key: 'AuthMethod', value: 'CHAP,None' },
      ],
    });
  });

  it('an empty data segment has no pairs', () => {
    expect(parseText(Buffer.alloc(0))).toEqual({ kind: 'ok', pairs: [] });
  });

  it('an empty value is kept as the empty string', () => {
    expect(parseText(seg('TargetAlias=\0MaxBurstLength=512\0'))).toEqual({
      kind: 'ok', pairs: [{ key: 'TargetAlias', value: '' }, { key: 'MaxBurstLength', value: '512' }],
    });
  });

  it('a missing final NUL is tolerated: the last pair still counts', () => {
    expect(parseText(seg('A=1\0B=2'))).toEqual({ kind: 'ok', pairs: [{ key: 'A', value: '1' }, { key: 'B', value: '2' }] });
    expect(parseText(seg('SendTargets=All'))).toEqual({ kind: 'ok', pairs: [{ key: 'SendTargets', value: 'All' }] });
  });

  it('extra NULs (e.g. zero padding counted in the length) are skipped', () => {
    expect(parseText(seg('A=1\0\0\0B=2\0\0'))).toEqual({ kind: 'ok', pairs: [{ key: 'A', value: '1' }, { key: 'B', value: '2' }] });
    expect(parseText(Buffer.alloc(4))).toEqual({ kind: 'ok', pairs: [] });
  });

  it('only the first = separates key from value', () => {
    expect(parseText(seg('CHAP_C=0xab=cd\0'))).toEqual({ kind: 'ok', pairs: [{ key: 'CHAP_C', value: '0xab=cd' }] });
  });

  it('UTF-8 values decode', () => {
    expect(parseText(seg('TargetAlias=stockage-é\0'))).toEqual({ kind: 'ok', pairs: [{ key: 'TargetAlias', value: 'stockage-é' }] });
  });

  it('the same key twice is returned twice (negotiation decides what that means)', () => {
    expect(parseText(seg('A=1\0A=2\0'))).toEqual({ kind: 'ok', pairs: [{ key: 'A', value: '1' }, { key: 'A', value: '2' }] });
  });

  describe('malformed', () => {
    for (const [name, text] of [
      ['no =', 'JustAKey\0'],
      ['empty key', '=value\0'],
      ['no = in a later pair', 'A=1\0garbage\0'],
      ['no = in an unterminated last pair', 'A=1\0garbage'],
    ] as const) {
      it(name, () => {
        const r = parseText(seg(text));
        expect(r.kind).toBe('error');
        if (r.kind === 'error') expect(r.reason).toMatch(/malformed/);
      });
    }

    it(`key longer than ${MAX_KEY_LENGTH} bytes (RFC 7143 §6.1)`, () => {
      expect(MAX_KEY_LENGTH).toBe(63);
      expect(parseText(seg(`${'K'.repeat(63)}=v\0`))).toEqual({ kind: 'ok', pairs: [{ key: 'K'.repeat(63), value: 'v' }] });
      const r = parseText(seg(`${'K'.repeat(64)}=v\0`));
      expect(r.kind).toBe('error');
      if (r.kind === 'error') expect(r.reason).toMatch(/key too long/);
    });

    it(`value longer than ${MAX_VALUE_LENGTH} bytes`, () => {
      expect(parseText(seg(`V=${'x'.repeat(MAX_VALUE_LENGTH)}\0`)).kind).toBe('ok');
      const r = parseText(seg(`V=${'x'.repeat(MAX_VALUE_LENGTH + 1)}\0`));
      expect(r.kind).toBe('error');
      if (r.kind === 'error') expect(r.reason).toMatch(/value too long for V/);
    });

    it('the reason quotes at most 80 characters of the bad pair', () => {
      const r = parseText(seg(`${'z'.repeat(500)}\0`));
      if (r.kind !== 'error') throw new Error('expected an error');
      expect(r.reason.length).toBeLessThan(120);
    });
  });
});

describe('encodeText', () => {
  it('each pair key=value followed by NUL, in order', () => {
    const b = encodeText([{ key: 'TargetName', value: 'iqn.2026-01.test:t' }, { key: 'TargetAddress', value: '10.0.0.1:3260,1' }]);
    expect(b.toString('hex')).toBe(Buffer.from('TargetName=iqn.2026-01.test:t\0TargetAddress=10.0.0.1:3260,1\0').toString('hex'));
  });

  it('no pairs → empty segment; an empty value → key=NUL', () => {
    expect(encodeText([]).length).toBe(0);
    expect(encodeText([{ key: 'TargetAlias', value: '' }]).toString('hex')).toBe(Buffer.from('TargetAlias=\0').toString('hex'));
  });

  it('UTF-8 on the wire', () => {
    expect(encodeText([{ key: 'TargetAlias', value: 'é' }]).toString('hex')).toBe('546172676574416c6961733dc3a900');
  });

  it('round trips through parseText', () => {
    const pairs = [
      { key: 'HeaderDigest', value: 'CRC32C,None' }, { key: 'MaxRecvDataSegmentLength', value: '262144' },
      { key: 'X-com.example.k', value: 'a=b,c' }, { key: 'Empty', value: '' },
    ];
    expect(parseText(encodeText(pairs))).toEqual({ kind: 'ok', pairs });
  });
});
