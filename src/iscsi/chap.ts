/**
 * CHAP for iSCSI login (RFC 7143 §12.1.3, RFC 1994): MD5 only (CHAP_A=5).
 * response = MD5(identifier || secret || challenge).
 */
import { createHash, randomBytes } from 'node:crypto';

export function chapResponse(id: number, secret: string, challenge: Buffer): Buffer {
  return createHash('md5').update(Buffer.from([id & 0xff])).update(Buffer.from(secret, 'utf8')).update(challenge).digest();
}

/** Binary values in CHAP keys are hex ("0x…") or base64 ("0b…") (RFC 7143 §6.1). */
export function decodeBinary(v: string): Buffer | null {
  if (/^0[xX][0-9a-fA-F]+$/.test(v)) {
    const hex = v.slice(2);
    return Buffer.from(hex.length % 2 ? '0' + hex : hex, 'hex');
  }
  if (/^0[bB][A-Za-z0-9+/=]+$/.test(v)) return Buffer.from(v.slice(2), 'base64');
  return null;
}

export function encodeHex(b: Buffer): string {
  return '0x' + b.toString('hex');
}

export function newChallenge(): { id: number; challenge: Buffer } {
  return { id: randomBytes(1)[0], challenge: randomBytes(16) };
}
