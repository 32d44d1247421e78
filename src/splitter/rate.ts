/**
 * A remote copy's link rate (link.ts): the rate as an operator writes it (`rate: 50Mbit`, the field
 * notes' WAN) and the token bucket that holds the link to it. Apart from link.ts so that reading a
 * configuration does not load the initiator.
 */

/**
 * A rate in bits or bytes per second: `50Mbit`, `50Mbit/s`, `1Gbit`, `100kbit`, `6MB` (bytes, SI),
 * `6MiB` (bytes, binary), or a plain number of bytes per second. Returns bytes per second.
 */
export function parseRate(text: string | number): number {
  if (typeof text === 'number') {
    if (!(text > 0) || !Number.isFinite(text)) throw new Error(`rate ${text}: want a positive number of bytes per second`);
    return text;
  }
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kKmMgGtT]?)(i?)(bit|bps|b|B)?(?:\/s)?\s*$/.exec(text);
  if (!m) throw new Error(`rate "${text}": want e.g. 50Mbit, 1Gbit, 6MB, 6MiB (per second)`);
  const [, num, prefix, binary, unit] = m;
  const scale = (binary ? 1024 : 1000) ** ({ '': 0, k: 1, m: 2, g: 3, t: 4 } as Record<string, number>)[prefix.toLowerCase()];
  // bit, bps and a lower-case b are bits (Mb/s as the field notes write it); B, MB, MiB are bytes.
  const bits = unit === 'bit' || unit === 'bps' || unit === 'b';
  if (binary && bits) throw new Error(`rate "${text}": binary prefixes (Ki, Mi) are for bytes`);
  const bytes = (Number(num) * scale) / (bits ? 8 : 1);
  if (!(bytes > 0)) throw new Error(`rate "${text}" must be > 0`);
  return bytes;
}

/** "50 Mbit/s" for a rate in bytes per second. */
export function formatRate(bytesPerSec: number): string {
  const bits = bytesPerSec * 8;
  const [d, u] = bits >= 1e9 ? [1e9, 'Gbit/s'] : bits >= 1e6 ? [1e6, 'Mbit/s'] : bits >= 1e3 ? [1e3, 'kbit/s'] : [1, 'bit/s'];
  return `${Number((bits / d).toFixed(2))} ${u}`;
}

/**
 * A token bucket by virtual time (GCRA): each take(n) is given the moment the link is free for
 * n more bytes, in the order asked, and waits until then less the burst allowance. The burst
 * (BURST_SECONDS of the rate, at least one 1 MiB region) is what the link may send back to back
 * after an idle spell; over any longer span the bytes stay within rate × span + burst.
 */
export class TokenBucket {
  static readonly BURST_SECONDS = 0.02;
  private free = 0;
  private readonly burstMs: number;

  constructor(readonly bytesPerSec: number, private readonly now = () => performance.now()) {
    this.burstMs = Math.max(TokenBucket.BURST_SECONDS * 1000, ((1 << 20) / bytesPerSec) * 1000);
  }

  /** Settles when `n` bytes may go (at once when the bucket holds them). */
  take(n: number): Promise<void> | null {
    const t = this.now();
    this.free = Math.max(this.free, t) + (n / this.bytesPerSec) * 1000;
    const wait = this.free - this.burstMs - t;
    return wait > 0 ? new Promise((r) => setTimeout(r, Math.ceil(wait))) : null;
  }
}

