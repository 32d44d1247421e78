/**
 * libiscsi-style URLs (grammar of libiscsi's iscsi_parse_full_url): what parses to what, what is
 * refused with which part named, and format → parse round trips.
 */
import { describe, expect, it } from 'vitest';
import { formatIscsiUrl, IscsiUrlError, parseIscsiUrl } from '../../src/initiator/url.ts';
import type { IscsiUrl } from '../../src/initiator/url.ts';

const IQN = 'iqn.2026-11.dev.arraysim:array';

describe('parseIscsiUrl', () => {
  it('host, port, target and LUN', () => {
    expect(parseIscsiUrl(`iscsi://127.0.0.1:3261/${IQN}/1`)).toEqual({ host: '127.0.0.1', port: 3261, target: IQN, lun: 1 });
  });

  it('port 3260 when none is given', () => {
    expect(parseIscsiUrl(`iscsi://array.example/${IQN}/0`).port).toBe(3260);
  });

  it('user%password@ gives one-way CHAP credentials; ":" separates them too, as in libiscsi', () => {
    expect(parseIscsiUrl(`iscsi://esx%s3cret@127.0.0.1/${IQN}/0`)).toMatchObject({ user: 'esx', password: 's3cret' });
    expect(parseIscsiUrl(`iscsi://esx:s3cret@127.0.0.1/${IQN}/0`)).toMatchObject({ user: 'esx', password: 's3cret' });
  });

  it('the password runs to the @: it may hold % and :', () => {
    expect(parseIscsiUrl(`iscsi://u%p%a:ss@h/${IQN}/0`)).toMatchObject({ user: 'u', password: 'p%a:ss' });
  });

  it('a user without a password (or the reverse) is no credentials, as libiscsi ignores it', () => {
    const u = parseIscsiUrl(`iscsi://esx@h/${IQN}/0`);
    expect(u.user).toBeUndefined();
    expect(u.password).toBeUndefined();
  });

  it('target_user / target_password in the query give mutual CHAP; header_digest is read', () => {
    expect(parseIscsiUrl(`iscsi://u%p@h:3260/${IQN}/2?target_user=tgt&target_password=tp&header_digest=crc32c`)).toEqual({
      host: 'h', port: 3260, target: IQN, lun: 2, user: 'u', password: 'p', targetUser: 'tgt', targetPassword: 'tp', headerDigest: 'CRC32C',
    });
    expect(parseIscsiUrl(`iscsi://h/${IQN}/0?header_digest=none`).headerDigest).toBe('None');
  });

  it('IPv6 literals in brackets, with or without port', () => {
    expect(parseIscsiUrl(`iscsi://[::1]:3262/${IQN}/0`)).toMatchObject({ host: '::1', port: 3262 });
    expect(parseIscsiUrl(`iscsi://[fe80::1]/${IQN}/0`)).toMatchObject({ host: 'fe80::1', port: 3260 });
  });

  it('the target name is percent-decoded (only it, as in libiscsi)', () => {
    expect(parseIscsiUrl('iscsi://h/iqn.2026-11.x%3Aa%2Fb/0').target).toBe('iqn.2026-11.x:a/b');
  });

  const bad: [string, IscsiUrlError['part']][] = [
    [`http://h/${IQN}/0`, 'scheme'],
    ['iscsi://h', 'target'],
    ['iscsi://h//0', 'target'],
    [`iscsi://h/${IQN}`, 'lun'],
    [`iscsi://h/${IQN}/`, 'lun'],
    [`iscsi://h/${IQN}/x`, 'lun'],
    [`iscsi://h/${IQN}/1/2`, 'lun'],
    [`iscsi://h/${IQN}/16384`, 'lun'],
    [`iscsi://h:0/${IQN}/0`, 'port'],
    [`iscsi://h:65536/${IQN}/0`, 'port'],
    [`iscsi://h:x/${IQN}/0`, 'port'],
    [`iscsi://:3260/${IQN}/0`, 'portal'],
    [`iscsi://::1/${IQN}/0`, 'portal'],
    [`iscsi://[::1/${IQN}/0`, 'portal'],
    [`iscsi://h/${IQN}/0?header_digest=md5`, 'query'],
    [`iscsi://h/${IQN}/0?target_user=t&target_password=p`, 'credentials'],
  ];
  for (const [url, part] of bad) {
    it(`refuses ${url} naming the ${part}`, () => {
      let err: unknown;
      try { parseIscsiUrl(url); } catch (e) { err = e; }
      expect(err).toBeInstanceOf(IscsiUrlError);
      expect((err as IscsiUrlError).part).toBe(part);
      expect((err as IscsiUrlError).message).toContain('iscsi://[USER[%PASSWORD]@]HOST[:PORT]/TARGET-IQN/LUN');
    });
  }

  it('error messages do not show the password', () => {
    try { parseIscsiUrl(`iscsi://u%hunter2@h/${IQN}/x`); } catch (e) { expect((e as Error).message).not.toContain('hunter2'); }
    expect.assertions(1);
  });
});

describe('formatIscsiUrl', () => {
  const cases: IscsiUrl[] = [
    { host: '127.0.0.1', port: 3260, target: IQN, lun: 0 },
    { host: '127.0.0.1', port: 13260, target: IQN, lun: 300 },
    { host: '::1', port: 3261, target: IQN, lun: 1 },
    { host: 'h', port: 3260, target: 'iqn.2026-11.x:a/b%c?d@e', lun: 5 },
    { host: 'h', port: 3260, target: IQN, lun: 0, user: 'esx', password: 'p%a:ss' },
    { host: 'h', port: 3260, target: IQN, lun: 0, user: 'esx', password: 'p', targetUser: 'arr', targetPassword: 'q', headerDigest: 'CRC32C' },
  ];
  for (const u of cases) {
    it(`round trips ${JSON.stringify(u)}`, () => {
      expect(parseIscsiUrl(formatIscsiUrl(u))).toEqual(u);
    });
  }

  it('writes the short form', () => {
    expect(formatIscsiUrl({ host: '127.0.0.1', port: 3260, target: IQN, lun: 1 })).toBe(`iscsi://127.0.0.1/${IQN}/1`);
    expect(formatIscsiUrl({ host: '::1', port: 3261, target: IQN, lun: 1, user: 'u', password: 'p' })).toBe(`iscsi://u%p@[::1]:3261/${IQN}/1`);
  });

  it('refuses credentials the grammar cannot carry', () => {
    expect(() => formatIscsiUrl({ host: 'h', port: 3260, target: IQN, lun: 0, user: 'a%b', password: 'p' })).toThrow(IscsiUrlError);
    expect(() => formatIscsiUrl({ host: 'h', port: 3260, target: IQN, lun: 0, user: 'a', password: 'p@q' })).toThrow(IscsiUrlError);
    expect(() => formatIscsiUrl({ host: 'h', port: 3260, target: IQN, lun: 0, targetUser: 't', targetPassword: 'p' })).toThrow(IscsiUrlError);
  });
});
