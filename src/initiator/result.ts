/**
 * Typed SCSI results: GOOD with decoded data, a CHECK CONDITION with its sense decoded into key,
 * ASC/ASCQ, the reason name from protocol/scsi/sense.ts and the INFORMATION / field pointer, or
 * another status by name (SAM-5 §5.3.1). Callers switch on `kind`; no status bytes in callers.
 */
import { decodeSense } from '../../protocol/scsi/sense.ts';
import type { DecodedSense } from '../../protocol/scsi/sense.ts';
import type { ScsiResponse } from './session.ts';

import { ScsiStatus, statusName } from '../../protocol/scsi/status.ts';

export { ScsiStatus, statusName };

export const SENSE_KEY_NAMES = [
  'NO SENSE', 'RECOVERED ERROR', 'NOT READY', 'MEDIUM ERROR', 'HARDWARE ERROR', 'ILLEGAL REQUEST', 'UNIT ATTENTION',
  'DATA PROTECT', 'BLANK CHECK', 'VENDOR SPECIFIC', 'COPY ABORTED', 'ABORTED COMMAND', 'RESERVED', 'VOLUME OVERFLOW',
  'MISCOMPARE', 'COMPLETED',
] as const;

export interface Residual {
  kind: 'none' | 'underflow' | 'overflow';
  count: number;
}

export type ScsiResult<T> =
  | { kind: 'good'; value: T; residual: Residual }
  | { kind: 'check-condition'; sense: DecodedSense | null; rawSense: Buffer | null }
  | { kind: 'status'; status: ScsiStatus | number; name: string };

/** A non-GOOD result, thrown by `expectGood` for callers that want exceptions. */
export class ScsiCommandError extends Error {
  constructor(readonly result: Exclude<ScsiResult<unknown>, { kind: 'good' }>, readonly command: string) {
    super(`${command}: ${describeResult(result)}`);
    this.name = 'ScsiCommandError';
  }
}

export function describeResult(r: ScsiResult<unknown>): string {
  if (r.kind === 'good') return 'GOOD';
  if (r.kind === 'status') return r.name;
  const s = r.sense;
  if (!s) return 'CHECK CONDITION without usable sense';
  const hex = (n: number): string => n.toString(16).padStart(2, '0').toUpperCase();
  return `CHECK CONDITION ${SENSE_KEY_NAMES[s.key]} ${hex(s.key)}/${hex(s.asc)}/${hex(s.ascq)}${s.reason ? ` (${s.reason})` : ''}`
    + (s.information !== undefined ? ` information ${s.information}` : '');
}

/** Judge a response: GOOD → decode its data with `decode`; otherwise the status or the sense. */
export function toResult<T>(r: ScsiResponse, decode: (data: Buffer) => T): ScsiResult<T> {
  if (r.status === ScsiStatus.Good || r.status === ScsiStatus.ConditionMet) {
    return { kind: 'good', value: decode(r.data), residual: r.residual };
  }
  if (r.status === ScsiStatus.CheckCondition) {
    return { kind: 'check-condition', sense: r.sense ? decodeSense(r.sense) : null, rawSense: r.sense };
  }
  return { kind: 'status', status: r.status, name: statusName(r.status) };
}

/** The value of a GOOD result, or a ScsiCommandError. */
export function expectGood<T>(r: ScsiResult<T>, command = 'SCSI command'): T {
  if (r.kind === 'good') return r.value;
  throw new ScsiCommandError(r, command);
}
