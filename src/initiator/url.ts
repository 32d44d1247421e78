/**
 * libiscsi-style device URLs, as libiscsi, qemu and the project's host tools name devices:
 *
 *   iscsi://[USER[%PASSWORD]@]HOST[:PORT]/TARGET-IQN/LUN[?target_user=U&target_password=P&header_digest=crc32c|none]
 *
 * The grammar follows libiscsi's iscsi_parse_full_url (lib/init.c): the query is cut first; then
 * everything before the first '@' is the user, split at the first '%' (or, failing that, ':')
 * into user and password; the portal runs to the first '/', the target to the next '/', and the
 * LUN is the decimal rest. Only the target name is percent-decoded. Credentials count only when
 * both user and password are non-empty, and target (mutual CHAP) credentials only on top of
 * initiator ones. HOST may be an IPv6 literal in brackets. The default port is 3260,
 * the IANA-registered iSCSI port.
 */

export const DEFAULT_ISCSI_PORT = 3260;

export interface IscsiUrl {
  host: string;
  port: number;
  target: string;
  lun: number;
  /** One-way CHAP: the initiator's credentials. */
  user?: string;
  password?: string;
  /** Mutual CHAP: the credentials the target must present. */
  targetUser?: string;
  targetPassword?: string;
  /** header_digest=crc32c|none, when given. */
  headerDigest?: 'CRC32C' | 'None';
}

export class IscsiUrlError extends Error {
  readonly code = 'bad-url';
  constructor(readonly url: string, readonly part: 'scheme' | 'portal' | 'port' | 'target' | 'lun' | 'query' | 'credentials', detail: string) {
    super(`invalid iSCSI URL ${JSON.stringify(redact(url))}: ${detail}; the form is iscsi://[USER[%PASSWORD]@]HOST[:PORT]/TARGET-IQN/LUN`);
  }
}

/** The URL with any password replaced, for messages and logs. */
export function redact(url: string): string {
  return url.replace(/^(iscsi:\/\/[^@/%:?]*)[%:][^@?]*@/, '$1%***@').replace(/(target_password=)[^&]*/, '$1***');
}

function percentDecode(s: string): string {
  // libiscsi decodes %XX byte-wise; decodeURIComponent does the same for valid UTF-8.
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

export function parseIscsiUrl(url: string): IscsiUrl {
  if (!url.startsWith('iscsi://')) throw new IscsiUrlError(url, 'scheme', 'it must start with iscsi://');
  let rest = url.slice('iscsi://'.length);
  const out: Partial<IscsiUrl> = {};
  const q = rest.indexOf('?');
  let targetUser: string | undefined;
  let targetPassword: string | undefined;
  if (q >= 0) {
    for (const arg of rest.slice(q + 1).split('&')) {
      if (!arg) continue;
      const eq = arg.indexOf('=');
      const key = eq < 0 ? arg : arg.slice(0, eq);
      const value = eq < 0 ? '' : arg.slice(eq + 1);
      if (key === 'header_digest') {
        if (value === 'crc32c') out.headerDigest = 'CRC32C';
        else if (value === 'none') out.headerDigest = 'None';
        else throw new IscsiUrlError(url, 'query', `header_digest must be crc32c or none, not ${JSON.stringify(value)}`);
      } else if (key === 'target_user') targetUser = value;
      else if (key === 'target_password') targetPassword = value;
      // libiscsi ignores other arguments (iser applies only to its RDMA build).
    }
    rest = rest.slice(0, q);
  }
  let user: string | undefined;
  let password: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    const userinfo = rest.slice(0, at);
    rest = rest.slice(at + 1);
    let sep = userinfo.indexOf('%');
    if (sep < 0) sep = userinfo.indexOf(':');
    if (sep >= 0) { user = userinfo.slice(0, sep); password = userinfo.slice(sep + 1); } else user = userinfo;
  }
  const slash = rest.indexOf('/');
  if (slash < 0) throw new IscsiUrlError(url, 'target', 'no /TARGET-IQN after the portal');
  const portal = rest.slice(0, slash);
  rest = rest.slice(slash + 1);
  const slash2 = rest.indexOf('/');
  if (slash2 < 0) throw new IscsiUrlError(url, 'lun', 'no /LUN after the target name');
  const target = rest.slice(0, slash2);
  const lunText = rest.slice(slash2 + 1);
  if (!target) throw new IscsiUrlError(url, 'target', 'empty target name');
  if (!/^[0-9]+$/.test(lunText)) throw new IscsiUrlError(url, 'lun', `LUN ${JSON.stringify(lunText)} is not a decimal number`);
  const lun = Number(lunText);
  // SAM-5 §4.7: single-level flat addressing reaches 16383; the PDU codec encodes no more.
  if (lun > 16383) throw new IscsiUrlError(url, 'lun', `LUN ${lun} is above 16383`);

  let host: string;
  let portText: string | undefined;
  if (portal.startsWith('[')) {
    const close = portal.indexOf(']');
    if (close < 0) throw new IscsiUrlError(url, 'portal', 'unterminated [IPv6] literal');
    host = portal.slice(1, close);
    const after = portal.slice(close + 1);
    if (after) {
      if (!after.startsWith(':')) throw new IscsiUrlError(url, 'portal', `unexpected ${JSON.stringify(after)} after ]`);
      portText = after.slice(1);
    }
  } else {
    const colon = portal.lastIndexOf(':');
    if (colon >= 0 && portal.indexOf(':') !== colon) throw new IscsiUrlError(url, 'portal', 'an IPv6 address must be in brackets');
    host = colon >= 0 ? portal.slice(0, colon) : portal;
    portText = colon >= 0 ? portal.slice(colon + 1) : undefined;
  }
  if (!host) throw new IscsiUrlError(url, 'portal', 'empty host');
  let port = DEFAULT_ISCSI_PORT;
  if (portText !== undefined) {
    if (!/^[0-9]{1,5}$/.test(portText) || Number(portText) < 1 || Number(portText) > 65535) {
      throw new IscsiUrlError(url, 'port', `port ${JSON.stringify(portText)} is not 1..65535`);
    }
    port = Number(portText);
  }
  const result: IscsiUrl = { host, port, target: percentDecode(target), lun, ...out };
  if (user && password) {
    result.user = user;
    result.password = password;
    if (targetUser && targetPassword) {
      result.targetUser = targetUser;
      result.targetPassword = targetPassword;
    }
  } else if (targetUser && targetPassword) {
    throw new IscsiUrlError(url, 'credentials', 'target_user/target_password (mutual CHAP) need USER%PASSWORD too');
  }
  return result;
}

/** The URL for `u`, in the form parseIscsiUrl reads back to the same fields. */
export function formatIscsiUrl(u: IscsiUrl): string {
  let s = 'iscsi://';
  if (u.user !== undefined || u.password !== undefined) {
    if (!u.user || !u.password) throw new IscsiUrlError(String(u.host), 'credentials', 'user and password go together');
    if (/[%:@/?]/.test(u.user)) throw new IscsiUrlError(u.user, 'credentials', 'a user name with % : @ / ? cannot be written in the URL');
    if (/[@?]/.test(u.password)) throw new IscsiUrlError('', 'credentials', 'a password with @ or ? cannot be written in the URL');
    s += `${u.user}%${u.password}@`;
  }
  s += u.host.includes(':') ? `[${u.host}]` : u.host;
  if (u.port !== DEFAULT_ISCSI_PORT) s += `:${u.port}`;
  // Only '%', '/', '?' and '@' would confuse the parser; IQNs normally contain none of them.
  s += `/${u.target.replace(/[%/?@]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0'))}/${u.lun}`;
  const query: string[] = [];
  if (u.targetUser !== undefined || u.targetPassword !== undefined) {
    if (!u.user) throw new IscsiUrlError('', 'credentials', 'mutual CHAP needs initiator credentials');
    if (!u.targetUser || !u.targetPassword || /[&?=]/.test(u.targetUser + u.targetPassword)) {
      throw new IscsiUrlError('', 'credentials', 'target credentials must be non-empty and free of & ? =');
    }
    query.push(`target_user=${u.targetUser}`, `target_password=${u.targetPassword}`);
  }
  if (u.headerDigest) query.push(`header_digest=${u.headerDigest === 'CRC32C' ? 'crc32c' : 'none'}`);
  if (query.length) s += `?${query.join('&')}`;
  return s;
}
