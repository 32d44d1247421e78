/**
 * How the host reads an array's answer to an offload. The reference (shared/reference/vaai-fallback.md
 * §1.2) has the evidence: an array that does not implement a primitive "returns an error. The error
 * triggers the ESXi host to attempt the operation using its native methods" (VMware, S1); arrays
 * say so with ILLEGAL REQUEST (05/20/00 INVALID COMMAND OPERATION CODE, 05/24, 05/26) or, for
 * EXTENDED COPY, COPY ABORTED (0Ah, e.g. 0D/02 COPY TARGET DEVICE NOT REACHABLE, which LIO sends
 * "to request the initiator to fall back", T1). BUSY, TASK SET FULL and UNIT ATTENTION are
 * transient and sent again ([inferred]: the path layer retries them; no source says so for VAAI).
 * Anything else (MEDIUM ERROR, DATA PROTECT, RESERVATION CONFLICT …) is not a fallback trigger:
 * the software path would meet it too, so the run stops and says so.
 */
import { SenseKey } from '../../protocol/scsi/sense.ts';
import { describeResult, ScsiStatus } from '../initiator/index.ts';
import type { ScsiResult } from '../initiator/index.ts';

export type Verdict =
  | { kind: 'good' }
  | { kind: 'refused'; why: string }
  | { kind: 'miscompare'; why: string }
  | { kind: 'transient'; why: string }
  | { kind: 'error'; why: string };

export function judge(r: ScsiResult<unknown>): Verdict {
  if (r.kind === 'good') return { kind: 'good' };
  const why = describeResult(r);
  if (r.kind === 'status') {
    return r.status === ScsiStatus.Busy || r.status === ScsiStatus.TaskSetFull ? { kind: 'transient', why } : { kind: 'error', why };
  }
  const key = r.sense?.key;
  if (key === SenseKey.IllegalRequest || key === SenseKey.CopyAborted) return { kind: 'refused', why };
  if (key === SenseKey.Miscompare) return { kind: 'miscompare', why };
  if (key === SenseKey.UnitAttention) return { kind: 'transient', why };
  return { kind: 'error', why };
}

/** Transient answers are sent again this many times, with a short pause, before they count as errors. */
export const RETRIES = 8;
export const RETRY_DELAY_MS = 20;

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Send `send` until its answer is not transient (at most RETRIES more times); count each resend. */
export async function withRetry<T>(send: () => Promise<ScsiResult<T>>, onRetry: () => void): Promise<{ r: ScsiResult<T>; v: Verdict }> {
  for (let i = 0; ; i++) {
    const r = await send();
    const v = judge(r);
    if (v.kind !== 'transient' || i >= RETRIES) return { r, v: v.kind === 'transient' ? { kind: 'error', why: v.why } : v };
    onRetry();
    await sleep(RETRY_DELAY_MS);
  }
}
