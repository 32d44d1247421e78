/**
 * iSCSI text key=value pairs (RFC 7143 §6.1): UTF-8, each pair NUL-terminated, in a data
 * segment that may span PDUs (C bit). Keys are case-sensitive.
 */

export interface TextPair {
  key: string;
  value: string;
}

export type TextParse = { kind: 'ok'; pairs: TextPair[] } | { kind: 'error'; reason: string };

export const MAX_KEY_LENGTH = 63;
export const MAX_VALUE_LENGTH = 8192;

export function parseText(data: Buffer): TextParse {
  const pairs: TextPair[] = [];
  let start = 0;
  while (start < data.length) {
    let end = data.indexOf(0, start);
    if (end < 0) end = data.length; // tolerate a missing final NUL
    if (end > start) {
      const s = data.toString('utf8', start, end);
      const eq = s.indexOf('=');
      if (eq <= 0) return { kind: 'error', reason: `malformed pair "${s.slice(0, 80)}"` };
      const key = s.slice(0, eq);
      const value = s.slice(eq + 1);
      if (key.length > MAX_KEY_LENGTH) return { kind: 'error', reason: `key too long: ${key.slice(0, 80)}` };
      if (value.length > MAX_VALUE_LENGTH) return { kind: 'error', reason: `value too long for ${key}` };
      pairs.push({ key, value });
    }
    start = end + 1;
  }
  return { kind: 'ok', pairs };
}

export function encodeText(pairs: readonly TextPair[]): Buffer {
  return Buffer.from(pairs.map((p) => `${p.key}=${p.value}\0`).join(''), 'utf8');
}
