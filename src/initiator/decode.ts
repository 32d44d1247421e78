/**
 * Decoders for the parameter data the device API receives and that protocol/ has no decoder for
 * yet (READ CAPACITY(16), REPORT TARGET PORT GROUPS, REPORT SUPPORTED OPERATION CODES, PERSISTENT
 * RESERVE IN READ KEYS / READ RESERVATION, REPORT LUNS). Pure; tolerant of short data (fields past
 * the end read as absent), because the target may return less than asked.
 */
import { decodeLun } from '../../protocol/iscsi/pdu.ts';

/** READ CAPACITY(16) parameter data (SBC-4 §5.20.2 table 62). */
export interface Capacity {
  /** Number of logical blocks (RETURNED LOGICAL BLOCK ADDRESS + 1). */
  blocks: bigint;
  blockSize: number;
  protectionEnabled: boolean;
  /** LOGICAL BLOCKS PER PHYSICAL BLOCK EXPONENT. */
  logicalPerPhysicalExponent: number;
  /** LBPME: thin provisioning (UNMAP, WRITE SAME with UNMAP) enabled. */
  lbpme: boolean;
  /** LBPRZ: unmapped blocks read as zeros. */
  lbprz: boolean;
  lowestAlignedLba: number;
}

export function decodeCapacity16(b: Buffer): Capacity {
  if (b.length < 12) throw new RangeError(`READ CAPACITY(16) data is ${b.length} bytes, under 12`);
  return {
    blocks: b.readBigUInt64BE(0) + 1n,
    blockSize: b.readUInt32BE(8),
    protectionEnabled: b.length > 12 && (b[12] & 0x01) !== 0,
    logicalPerPhysicalExponent: b.length > 13 ? b[13] & 0x0f : 0,
    lbpme: b.length > 14 && (b[14] & 0x80) !== 0,
    lbprz: b.length > 14 && (b[14] & 0x40) !== 0,
    lowestAlignedLba: b.length > 15 ? b.readUInt16BE(14) & 0x3fff : 0,
  };
}

/** ALUA asymmetric access states (SPC-5 §5.16.2.4 table 43 / RTPG table 474). */
export const ALUA_STATE_NAMES: Record<number, string> = {
  0x0: 'active/optimized', 0x1: 'active/non-optimized', 0x2: 'standby', 0x3: 'unavailable',
  0xe: 'offline', 0xf: 'transitioning',
};

export interface TargetPortGroup {
  preferred: boolean;
  state: number;
  stateName: string;
  /** Supported states bits (T_SUP … AO_SUP), byte 1. */
  supported: number;
  id: number;
  statusCode: number;
  relativePortIds: number[];
}

/** REPORT TARGET PORT GROUPS, length-only header format (SPC-5 §6.36.2 tables 471-474). */
export function decodeTargetPortGroups(b: Buffer): TargetPortGroup[] {
  if (b.length < 4) return [];
  const end = Math.min(b.length, 4 + b.readUInt32BE(0));
  const out: TargetPortGroup[] = [];
  for (let o = 4; o + 8 <= end;) {
    const n = b[o + 7];
    const state = b[o] & 0x0f;
    const ports: number[] = [];
    for (let i = 0; i < n && o + 8 + 4 * i + 4 <= end; i++) ports.push(b.readUInt16BE(o + 8 + 4 * i + 2));
    out.push({
      preferred: (b[o] & 0x80) !== 0, state, stateName: ALUA_STATE_NAMES[state] ?? `state ${state}`, supported: b[o + 1],
      id: b.readUInt16BE(o + 2), statusCode: b[o + 5], relativePortIds: ports,
    });
    o += 8 + 4 * n;
  }
  return out;
}

export interface SupportedOperation {
  opcode: number;
  /** Present when SERVACTV says the command has service actions. */
  serviceAction?: number;
  cdbLength: number;
}

/** REPORT SUPPORTED OPERATION CODES, all commands (REPORTING OPTIONS 000b, SPC-5 §6.35.2 tables 462-463). */
export function decodeSupportedOperations(b: Buffer): SupportedOperation[] {
  if (b.length < 4) return [];
  const end = Math.min(b.length, 4 + b.readUInt32BE(0));
  const out: SupportedOperation[] = [];
  for (let o = 4; o + 8 <= end;) {
    const servactv = (b[o + 5] & 0x01) !== 0;
    const ctdp = (b[o + 5] & 0x02) !== 0;
    out.push({ opcode: b[o], ...(servactv ? { serviceAction: b.readUInt16BE(o + 2) } : {}), cdbLength: b.readUInt16BE(o + 6) });
    o += 8 + (ctdp ? 12 : 0);
  }
  return out;
}

/** PERSISTENT RESERVE IN, READ KEYS (SPC-5 §6.16.2). */
export function decodeReadKeys(b: Buffer): { generation: number; keys: bigint[] } {
  if (b.length < 8) throw new RangeError('READ KEYS data shorter than 8 bytes');
  const end = Math.min(b.length, 8 + b.readUInt32BE(4));
  const keys: bigint[] = [];
  for (let o = 8; o + 8 <= end; o += 8) keys.push(b.readBigUInt64BE(o));
  return { generation: b.readUInt32BE(0), keys };
}

/** PERSISTENT RESERVE IN, READ RESERVATION (SPC-5 §6.16.3): null reservation when none is held. */
export function decodeReadReservation(b: Buffer): { generation: number; reservation: { key: bigint; scope: number; type: number } | null } {
  if (b.length < 8) throw new RangeError('READ RESERVATION data shorter than 8 bytes');
  const len = b.readUInt32BE(4);
  if (len < 16 || b.length < 24) return { generation: b.readUInt32BE(0), reservation: null };
  return { generation: b.readUInt32BE(0), reservation: { key: b.readBigUInt64BE(8), scope: b[21] >> 4, type: b[21] & 0x0f } };
}

/** REPORT LUNS parameter data (SPC-5 §6.33.2): the LUN numbers (single level). */
export function decodeReportLuns(b: Buffer): number[] {
  if (b.length < 8) return [];
  const end = Math.min(b.length, 8 + b.readUInt32BE(0));
  const out: number[] = [];
  for (let o = 8; o + 8 <= end; o += 8) out.push(decodeLun(b, o));
  return out;
}
