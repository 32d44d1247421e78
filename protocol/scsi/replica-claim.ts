/**
 * REPLICA CLAIM, a vendor-specific command (SPC-5 §4.3.4.1: operation codes C0h-FFh are vendor
 * specific; C1h is REGION DIGEST, src/scsi/vendor-digest.ts): byte layouts only. What a claim
 * does to the LU is src/scsi/replica-claim.ts.
 *
 * CDB (16 bytes): byte 0 opcode C2h; byte 1 bits 4:0 ACTION (00h CLAIM, 01h RELEASE); bytes 10-13
 * PARAMETER LIST LENGTH; byte 15 CONTROL. Every other byte is reserved.
 *
 * Parameter list (both actions name the claim): byte 0 GROUP NAME LENGTH (g, 1-255); byte 1 COPY
 * NAME LENGTH (c, 1-255); bytes 2-15 reserved; bytes 16..16+g-1 GROUP NAME; then COPY NAME
 * (UTF-8). Who claims is the I_T nexus the command arrives on; its initiator name is the owner.
 */

export const REPLICA_CLAIM_OPCODE = 0xc2;
export const REPLICA_CLAIM_CDB_LENGTH = 16;
export const REPLICA_CLAIM_HEADER = 16;

export const enum ReplicaClaimAction {
  Claim = 0x00,
  Release = 0x01,
}

export interface ReplicaClaimParams {
  group: string;
  copy: string;
}

/** Why a parameter list is malformed: the byte offset of the offending field (INVALID FIELD IN PARAMETER LIST). */
export class ReplicaClaimFormatError extends Error {
  constructor(readonly reason: 'ParameterListLengthError' | 'InvalidFieldInParameterList', readonly byte?: number) {
    super(`${reason}${byte !== undefined ? ` at byte ${byte}` : ''}`);
  }
}

export function encodeReplicaClaimCdb(action: ReplicaClaimAction, parameterLength: number): Buffer {
  const cdb = Buffer.alloc(REPLICA_CLAIM_CDB_LENGTH);
  cdb[0] = REPLICA_CLAIM_OPCODE;
  cdb[1] = action & 0x1f;
  cdb.writeUInt32BE(parameterLength, 10);
  return cdb;
}

export function encodeReplicaClaimParams(p: ReplicaClaimParams): Buffer {
  const g = Buffer.from(p.group, 'utf8');
  const c = Buffer.from(p.copy, 'utf8');
  if (g.length < 1 || g.length > 255 || c.length < 1 || c.length > 255) throw new RangeError('replica claim: group and copy names must be 1-255 bytes');
  const out = Buffer.alloc(REPLICA_CLAIM_HEADER + g.length + c.length);
  out[0] = g.length;
  out[1] = c.length;
  g.copy(out, REPLICA_CLAIM_HEADER);
  c.copy(out, REPLICA_CLAIM_HEADER + g.length);
  return out;
}

export function decodeReplicaClaimParams(d: Buffer): ReplicaClaimParams {
  if (d.length < REPLICA_CLAIM_HEADER) throw new ReplicaClaimFormatError('ParameterListLengthError');
  const g = d[0];
  const c = d[1];
  if (g === 0) throw new ReplicaClaimFormatError('InvalidFieldInParameterList', 0);
  if (c === 0) throw new ReplicaClaimFormatError('InvalidFieldInParameterList', 1);
  for (let i = 2; i < REPLICA_CLAIM_HEADER; i++) if (d[i] !== 0) throw new ReplicaClaimFormatError('InvalidFieldInParameterList', i);
  if (d.length < REPLICA_CLAIM_HEADER + g + c) throw new ReplicaClaimFormatError('ParameterListLengthError');
  return {
    group: d.toString('utf8', REPLICA_CLAIM_HEADER, REPLICA_CLAIM_HEADER + g),
    copy: d.toString('utf8', REPLICA_CLAIM_HEADER + g, REPLICA_CLAIM_HEADER + g + c),
  };
}
