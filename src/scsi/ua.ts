/**
 * Unit attention conditions (SAM-5 §5.14, SPC-5 §5.12): a queue per I_T nexus, reported one
 * at a time on the next command that reports UAs, and cleared when reported.
 */
import type { SenseDetail, SenseReason } from '../../protocol/scsi/sense.ts';

export interface PendingUa {
  reason: SenseReason;
  detail?: SenseDetail;
}

export class UnitAttentions {
  private readonly pending = new Map<string, PendingUa[]>();

  /** Queue a UA for one nexus (deduplicated: the same reason is held once). */
  establish(nexusKey: string, reason: SenseReason, detail?: SenseDetail): void {
    let q = this.pending.get(nexusKey);
    if (!q) this.pending.set(nexusKey, (q = []));
    if (!q.some((u) => u.reason === reason)) q.push({ reason, detail });
  }

  /** Queue a UA for every nexus in `keys` except `except` (SPC: the nexus that caused it). */
  establishAll(keys: Iterable<string>, reason: SenseReason, except?: string, detail?: SenseDetail): void {
    for (const k of keys) if (k !== except) this.establish(k, reason, detail);
  }

  /** Remove and return the oldest pending UA for this nexus. */
  take(nexusKey: string): PendingUa | undefined {
    const q = this.pending.get(nexusKey);
    if (!q || q.length === 0) return undefined;
    const u = q.shift();
    if (q.length === 0) this.pending.delete(nexusKey);
    return u;
  }

  peek(nexusKey: string): PendingUa | undefined {
    return this.pending.get(nexusKey)?.[0];
  }

  clear(nexusKey: string, reason?: SenseReason): void {
    if (!reason) { this.pending.delete(nexusKey); return; }
    const q = this.pending.get(nexusKey);
    if (q) this.pending.set(nexusKey, q.filter((u) => u.reason !== reason));
  }

  forget(nexusKey: string): void {
    this.pending.delete(nexusKey);
  }
}
