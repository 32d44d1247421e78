/**
 * REPLICA CLAIM, a vendor-specific command (SPC-5 §4.3.4.1: operation codes C0h-FFh are vendor
 * specific; C1h is REGION DIGEST, src/scsi/vendor-digest.ts): byte layouts only. What a claim
 * does to the LU is src/scsi/replica-claim.ts.
 *
 * CDB (16 bytes): byte 0 opcode C2h; byte 1 bits 4:0 ACTION (00h CLAIM, 01h RELEASE); bytes 10-13
 * PARAMETER LIST LENGTH; byte 15 CONTROL. Every other byte is reserved.
 *
 * Parameter list (both actions name the claim): byte 0 GROUP NAME LENGTH (g, 1-255); byte 1 COPY
 * NAME LENGTH (c, 1-255); byte 2 bit 0 SETBASE (CLAIM: the remote's receive queue is emptied and
 * its applied sequence becomes BASE SEQUENCE); bytes 3-7 reserved; bytes 8-15 BASE SEQUENCE;
 * bytes 16..16+g-1 GROUP NAME; then COPY NAME (UTF-8). Who claims is the I_T nexus the command
 * arrives on; its initiator name is the owner.
 *
 * REPLICA RECORD (C3h): one journal record of the claim's group, applied by the remote in sequence
 * order. CDB (16 bytes): byte 1 bits 1:0 KIND (00b WRITE: the blocks follow; 01b WRITE SAME: one
 * block follows; 10b DEALLOCATE: nothing follows, the range reads zeros); bytes 2-9 LOGICAL BLOCK
 * ADDRESS; bytes 10-13 NUMBER OF LOGICAL BLOCKS; byte 15 CONTROL. Data-Out: bytes 0-7 SEQUENCE,
 * bytes 8-15 PREVIOUS SEQUENCE (the record the group shipped before it, or the base), then the
 * payload KIND says.
 *
 * REPLICA SEQUENCE (C4h): where the claim's receive queue is. CDB (16 bytes): bytes 10-13
 * ALLOCATION LENGTH. Data-In (16 bytes): bytes 0-7 APPLIED SEQUENCE; byte 8 bit 0 VALID (a base
 * was set or a record applied since the claim was made), bit 1 CLAIMED (by the asking initiator);
 * bytes 12-15 QUEUED (records received, waiting for their predecessor).
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
  /** CLAIM: set the receive queue's applied sequence (SETBASE). */
  base?: number;
}

export const REPLICA_RECORD_OPCODE = 0xc3;
export const REPLICA_SEQUENCE_OPCODE = 0xc4;
export const REPLICA_RECORD_HEADER = 16;
export const REPLICA_SEQUENCE_LENGTH = 16;

export const enum ReplicaRecordKind {
  Write = 0,
  WriteSame = 1,
  Deallocate = 2,
}

export interface ReplicaRecordCdb { kind: ReplicaRecordKind; lba: bigint; blocks: number }

export function encodeReplicaRecordCdb(c: ReplicaRecordCdb): Buffer {
  const cdb = Buffer.alloc(16);
  cdb[0] = REPLICA_RECORD_OPCODE;
  cdb[1] = c.kind & 0x03;
  cdb.writeBigUInt64BE(c.lba, 2);
  cdb.writeUInt32BE(c.blocks, 10);
  return cdb;
}

/** The Data-Out header of a REPLICA RECORD (the payload follows it). */
export function encodeReplicaRecordHeader(into: Buffer, seq: number, prev: number): void {
  into.writeBigUInt64BE(BigInt(seq), 0);
  into.writeBigUInt64BE(BigInt(prev), 8);
}

export function decodeReplicaRecordHeader(d: Buffer): { seq: number; prev: number } {
  return { seq: Number(d.readBigUInt64BE(0)), prev: Number(d.readBigUInt64BE(8)) };
}

export function encodeReplicaSequenceCdb(allocation = REPLICA_SEQUENCE_LENGTH): Buffer {
  const cdb = Buffer.alloc(16);
  cdb[0] = REPLICA_SEQUENCE_OPCODE;
  cdb.writeUInt32BE(allocation, 10);
  return cdb;
}

export interface ReplicaSequence { applied: number; valid: boolean; claimed: boolean; queued: number }

export function encodeReplicaSequence(s: ReplicaSequence): Buffer {
  const d = Buffer.alloc(REPLICA_SEQUENCE_LENGTH);
  d.writeBigUInt64BE(BigInt(s.applied), 0);
  d[8] = (s.valid ? 1 : 0) | (s.claimed ? 2 : 0);
  d.writeUInt32BE(s.queued, 12);
  return d;
}

export function decodeReplicaSequence(d: Buffer): ReplicaSequence {
  return { applied: Number(d.readBigUInt64BE(0)), valid: (d[8] & 1) !== 0, claimed: (d[8] & 2) !== 0, queued: d.readUInt32BE(12) };
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
  if (p.base !== undefined) { out[2] = 1; out.writeBigUInt64BE(BigInt(p.base), 8); }
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
  if (d[2] & 0xfe) throw new ReplicaClaimFormatError('InvalidFieldInParameterList', 2);
  for (let i = 3; i < 8; i++) if (d[i] !== 0) throw new ReplicaClaimFormatError('InvalidFieldInParameterList', i);
  if (d.length < REPLICA_CLAIM_HEADER + g + c) throw new ReplicaClaimFormatError('ParameterListLengthError');
  return {
    group: d.toString('utf8', REPLICA_CLAIM_HEADER, REPLICA_CLAIM_HEADER + g),
    copy: d.toString('utf8', REPLICA_CLAIM_HEADER + g, REPLICA_CLAIM_HEADER + g + c),
    ...(d[2] & 1 ? { base: Number(d.readBigUInt64BE(8)) } : {}),
  };
}
