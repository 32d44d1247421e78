/**
 * Who may use the admin API. On a loopback address it is open, as a local tool is; bound to any
 * other address it changes ALUA states of a running array for anyone who can reach the port, so
 * it needs a bearer token (RFC 6750), from ARRAYSIM_ADMIN_TOKEN or the file named by
 * `admin.tokenFile` in the YAML config, and does not start without one.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import net from 'node:net';

export type AdminAccess = { mode: 'open' } | { mode: 'token'; token: string };

const LOOPBACK = new net.BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');
LOOPBACK.addSubnet('::ffff:127.0.0.0', 104, 'ipv6'); // IPv4-mapped loopback

/** 127.0.0.0/8, ::1 (in any spelling), their IPv4-mapped forms, and `localhost` (RFC 6761 §6.3). */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  if (h === 'localhost') return true;
  if (net.isIPv4(h)) return LOOPBACK.check(h, 'ipv4');
  if (net.isIPv6(h)) return LOOPBACK.check(h, 'ipv6');
  return false; // a host name, 0.0.0.0 or :: (every interface): reachable from elsewhere
}

/** RFC 6750 §2.1 b64token: what an Authorization: Bearer header can carry as it is. */
const B64TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/;
export const MIN_TOKEN_LENGTH = 16;

/**
 * The access rule for an admin API bound to `host`. Throws one line that says what to do when a
 * non-loopback address has no usable token. `forceToken` applies the token rule on loopback too
 * (tests of the token path, which must not bind off loopback).
 */
export function adminAccess(host: string, o: { envToken?: string; tokenFile?: string; forceToken?: boolean } = {}): AdminAccess {
  if (isLoopback(host) && !o.forceToken) return { mode: 'open' };
  let token = o.envToken?.trim() || undefined;
  let from = 'ARRAYSIM_ADMIN_TOKEN';
  if (!token && o.tokenFile) {
    from = `admin.tokenFile ${o.tokenFile}`;
    try {
      token = readFileSync(o.tokenFile, 'utf8').trim();
    } catch (e) {
      throw new Error(`admin API on ${host}: cannot read ${from}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
  }
  if (!token) {
    throw new Error(`admin API on ${host} is not loopback and needs a bearer token: set ARRAYSIM_ADMIN_TOKEN or admin.tokenFile in the config (or use --admin 127.0.0.1:PORT, or --admin none)`);
  }
  if (token.length < MIN_TOKEN_LENGTH || !B64TOKEN.test(token)) {
    throw new Error(`admin API token from ${from} must be at least ${MIN_TOKEN_LENGTH} characters of A-Z a-z 0-9 - . _ ~ + / (e.g. openssl rand -hex 32)`);
  }
  return { mode: 'token', token };
}

/**
 * Does the Authorization header carry `expected`? Both sides are hashed first, so the comparison
 * takes the same time whatever the length or the first differing byte of what was sent.
 */
export function bearerMatches(header: string | undefined, expected: string): 'ok' | 'missing' | 'wrong' {
  const m = /^Bearer[ ]+(\S+)\s*$/i.exec(header ?? '');
  if (!m) return 'missing';
  const a = createHash('sha256').update(m[1]).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b) ? 'ok' : 'wrong';
}
