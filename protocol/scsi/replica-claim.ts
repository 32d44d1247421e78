/**
 * REPLICA CLAIM, a vendor-specific command (SPC-5 §4.3.4.1: operation codes C0h-FFh are vendor
 * specific; C1h is REGION DIGEST, src/scsi/vendor-digest.ts): byte layouts only. What a claim
 * does to the LU is src/scsi/replica-claim.ts.
 *
 * CDB (16 bytes): byte 0 opcode C2h; byte 1 bits 4:0 ACTION (00h CLAIM, 01h RELEASE, 02h PRESENT
 * IMAGE, 03h END IMAGE); bytes 10-13 PARAMETER LIST LENGTH; byte 15 CONTROL. Every other byte is
 * reserved.
 *
 * Parameter list (every action names the claim): byte 0 GROUP NAME LENGTH (g, 1-255); byte 1 COPY
 * NAME LENGTH (c, 1-255); byte 2 bit 0 SETBASE (CLAIM only: the remote's receive queue is emptied,
 * its undo log too, and its applied sequence becomes SEQUENCE), bit 1 DIRECT (PRESENT IMAGE only:
 * direct access, below); byte 3 reserved; bytes 4-7 UNDO LIMIT (CLAIM: MiB of undo data the
 * remote keeps for the claim; 0: the remote's default); bytes 8-15 SEQUENCE (CLAIM with SETBASE:
 * the base; PRESENT IMAGE: the image); bytes 16..16+g-1 GROUP NAME; then COPY NAME (UTF-8). Who
 * claims is the I_T nexus the command arrives on; its initiator name is the owner.
 *
 * PRESENT IMAGE: the claim's LUs show the group's image at SEQUENCE (the remote's copy journal,
 * src/scsi/replica-journal.ts): reads see that image through a read map of the claim's undo log,
 * writes go to an overlay that END IMAGE discards (logged access); with DIRECT the volumes are
 * rolled back to the image and written in place, and the claim's undo log is dropped (direct
 * access). A SEQUENCE outside the remote's window: ILLEGAL REQUEST, INVALID FIELD IN PARAMETER
 * LIST (byte 8). END IMAGE: the LUs are the replica volumes again, and the records held meanwhile
 * are applied.
 *
 * REPLICA RECORD (C3h): one journal record of the claim's group, applied by the remote in sequence
 * order. CDB (16 bytes): byte 1 bits 1:0 KIND (00b WRITE: the blocks follow; 01b WRITE SAME: one
 * block follows; 10b DEALLOCATE: nothing follows, the range reads zeros); bytes 2-9 LOGICAL BLOCK
 * ADDRESS; bytes 10-13 NUMBER OF LOGICAL BLOCKS; byte 15 CONTROL. Data-Out: bytes 0-7 SEQUENCE,
 * bytes 8-15 PREVIOUS SEQUENCE (the record the group shipped before it, or the base), then the
 * payload KIND says.
 *
 * REPLICA SEQUENCE (C4h): where the claim's receive queue is. CDB (16 bytes): bytes 10-13
 * ALLOCATION LENGTH. Data-In (48 bytes): bytes 0-7 APPLIED SEQUENCE; byte 8 bit 0 VALID (a base
 * was set or a record applied since the claim was made), bit 1 CLAIMED (by the asking initiator),
 * bit 2 WINDOW (OLDEST IMAGE is valid), bit 3 PRESENTED (an image is presented: IMAGE SEQUENCE),
 * bit 4 DIRECT (presented in direct access); bytes 12-15 QUEUED (records received, waiting for
 * their predecessor); bytes 16-23 OLDEST IMAGE (the oldest sequence PRESENT IMAGE reaches: the
 * protection window); bytes 24-31 IMAGE SEQUENCE; bytes 32-39 UNDO BYTES (held); bytes 40-47
 * UNDO LIMIT (bytes).
 *
 * REPLICA UNDO (C5h): the undo data the remote journal of the asking initiator's claim holds for
 * this LU, so that production can rebuild its own image at an older sequence (verify --image of a
 * remote copy, src/splitter/image-verify.ts). CDB (16 bytes): bytes 2-9 AFTER SEQUENCE (entries of
 * records after it); bytes 10-13 ALLOCATION LENGTH; byte 15 CONTROL. Data-In: a 16-byte header,
 * bytes 0-3 DATA LENGTH (the bytes after the header in this response), byte 4 bit 0 MORE (entries
 * remain: ask again AFTER the last SEQUENCE returned), bytes 8-11 NEXT ENTRY LENGTH (what the first
 * entry not returned needs, header included, when not even it fitted: ask with at least that);
 * then whole entries, oldest first, one descriptor per piece: bytes 0-7 SEQUENCE, 8-15 LOGICAL
 * BLOCK ADDRESS, 16-19 NUMBER OF LOGICAL BLOCKS, byte 20 bit 0 DEALLOCATED (the range read zeros:
 * no data follows), bytes 21-23 reserved, then the blocks the record overwrote.
 */

export const REPLICA_CLAIM_OPCODE = 0xc2;
export const REPLICA_CLAIM_CDB_LENGTH = 16;
export const REPLICA_CLAIM_HEADER = 16;

export const enum ReplicaClaimAction {
  Claim = 0x00,
  Release = 0x01,
  PresentImage = 0x02,
  EndImage = 0x03,
}

export interface ReplicaClaimParams {
  group: string;
  copy: string;
  /** CLAIM: set the receive queue's applied sequence (SETBASE). */
  base?: number;
  /** CLAIM: MiB of undo data the remote keeps (UNDO LIMIT; absent or 0: its default). */
  undoLimitMiB?: number;
  /** PRESENT IMAGE: the image's sequence. */
  image?: number;
  /** PRESENT IMAGE: direct access. */
  direct?: boolean;
}

export const REPLICA_RECORD_OPCODE = 0xc3;
export const REPLICA_SEQUENCE_OPCODE = 0xc4;
export const REPLICA_UNDO_OPCODE = 0xc5;
export const REPLICA_UNDO_HEADER = 16;
export const REPLICA_UNDO_DESCRIPTOR = 24;
export const REPLICA_RECORD_HEADER = 16;
export const REPLICA_SEQUENCE_LENGTH = 48;

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

export interface ReplicaSequence {
  applied: number; valid: boolean; claimed: boolean; queued: number;
  /** The oldest image PRESENT IMAGE reaches (null: none, WINDOW clear). */
  oldestImage: number | null;
  /** The image presented (null: none, PRESENTED clear), and whether in direct access. */
  image: number | null; direct: boolean;
  undoBytes: number; undoLimit: number;
}

export function encodeReplicaSequence(s: ReplicaSequence): Buffer {
  const d = Buffer.alloc(REPLICA_SEQUENCE_LENGTH);
  d.writeBigUInt64BE(BigInt(s.applied), 0);
  d[8] = (s.valid ? 1 : 0) | (s.claimed ? 2 : 0) | (s.oldestImage !== null ? 4 : 0) | (s.image !== null ? 8 : 0) | (s.direct ? 0x10 : 0);
  d.writeUInt32BE(s.queued, 12);
  d.writeBigUInt64BE(BigInt(s.oldestImage ?? 0), 16);
  d.writeBigUInt64BE(BigInt(s.image ?? 0), 24);
  d.writeBigUInt64BE(BigInt(s.undoBytes), 32);
  d.writeBigUInt64BE(BigInt(s.undoLimit), 40);
  return d;
}

/** A Data-In cut short by the allocation length reads as if its missing fields were zero. */
export function decodeReplicaSequence(d: Buffer): ReplicaSequence {
  const at = (o: number) => (d.length >= o + 8 ? Number(d.readBigUInt64BE(o)) : 0);
  return {
    applied: at(0), valid: (d[8] & 1) !== 0, claimed: (d[8] & 2) !== 0, queued: d.readUInt32BE(12),
    oldestImage: d[8] & 4 ? at(16) : null, image: d[8] & 8 ? at(24) : null, direct: (d[8] & 0x10) !== 0,
    undoBytes: at(32), undoLimit: at(40),
  };
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
  if (p.image !== undefined) out.writeBigUInt64BE(BigInt(p.image), 8);
  if (p.direct) out[2] |= 2;
  if (p.undoLimitMiB) out.writeUInt32BE(p.undoLimitMiB, 4);
  g.copy(out, REPLICA_CLAIM_HEADER);
  c.copy(out, REPLICA_CLAIM_HEADER + g.length);
  return out;
}

/** The parameter list of `action`: the fields that action reads; a bit or field it does not is reserved. */
export function decodeReplicaClaimParams(d: Buffer, action: ReplicaClaimAction = ReplicaClaimAction.Claim): ReplicaClaimParams {
  if (d.length < REPLICA_CLAIM_HEADER) throw new ReplicaClaimFormatError('ParameterListLengthError');
  const g = d[0];
  const c = d[1];
  if (g === 0) throw new ReplicaClaimFormatError('InvalidFieldInParameterList', 0);
  if (c === 0) throw new ReplicaClaimFormatError('InvalidFieldInParameterList', 1);
  const claim = action === ReplicaClaimAction.Claim;
  const present = action === ReplicaClaimAction.PresentImage;
  if (d[2] & ~((claim ? 1 : 0) | (present ? 2 : 0)) & 0xff) throw new ReplicaClaimFormatError('InvalidFieldInParameterList', 2);
  if (d[3] !== 0) throw new ReplicaClaimFormatError('InvalidFieldInParameterList', 3);
  const undo = d.readUInt32BE(4);
  if (undo && !claim) throw new ReplicaClaimFormatError('InvalidFieldInParameterList', 4);
  const seq = Number(d.readBigUInt64BE(8));
  if (seq && !present && !(d[2] & 1)) throw new ReplicaClaimFormatError('InvalidFieldInParameterList', 8);
  if (d.length < REPLICA_CLAIM_HEADER + g + c) throw new ReplicaClaimFormatError('ParameterListLengthError');
  return {
    group: d.toString('utf8', REPLICA_CLAIM_HEADER, REPLICA_CLAIM_HEADER + g),
    copy: d.toString('utf8', REPLICA_CLAIM_HEADER + g, REPLICA_CLAIM_HEADER + g + c),
    ...(claim && d[2] & 1 ? { base: seq } : {}),
    ...(undo ? { undoLimitMiB: undo } : {}),
    ...(present ? { image: seq, direct: (d[2] & 2) !== 0 } : {}),
  };
}

/** One piece of undo data REPLICA UNDO returns: what record `seq` overwrote in [lba, lba+blocks) (data null: the range read zeros). */
export interface ReplicaUndoPiece { seq: number; lba: bigint; blocks: number; data: Buffer | null }

export function encodeReplicaUndoCdb(after: number, allocation: number): Buffer {
  const cdb = Buffer.alloc(16);
  cdb[0] = REPLICA_UNDO_OPCODE;
  cdb.writeBigUInt64BE(BigInt(after), 2);
  cdb.writeUInt32BE(allocation, 10);
  return cdb;
}

/** The bytes piece `p` takes in a REPLICA UNDO response. */
export function replicaUndoLength(p: { blocks: number; data: Buffer | null }, blockSize: number): number {
  return REPLICA_UNDO_DESCRIPTOR + (p.data ? p.blocks * blockSize : 0);
}

/** A REPLICA UNDO response holding `pieces` (they fit: the caller counted with replicaUndoLength). */
export function encodeReplicaUndo(pieces: readonly ReplicaUndoPiece[], blockSize: number, more: boolean, nextLength: number): Buffer {
  let len = 0;
  for (const p of pieces) len += replicaUndoLength(p, blockSize);
  const d = Buffer.alloc(REPLICA_UNDO_HEADER + len);
  d.writeUInt32BE(len, 0);
  d[4] = more ? 1 : 0;
  d.writeUInt32BE(nextLength, 8);
  let o = REPLICA_UNDO_HEADER;
  for (const p of pieces) {
    d.writeBigUInt64BE(BigInt(p.seq), o);
    d.writeBigUInt64BE(p.lba, o + 8);
    d.writeUInt32BE(p.blocks, o + 16);
    d[o + 20] = p.data ? 0 : 1;
    o += REPLICA_UNDO_DESCRIPTOR;
    if (p.data) { p.data.copy(d, o, 0, p.blocks * blockSize); o += p.blocks * blockSize; }
  }
  return d;
}

export function decodeReplicaUndo(d: Buffer, blockSize: number): { pieces: ReplicaUndoPiece[]; more: boolean; nextLength: number } {
  if (d.length < REPLICA_UNDO_HEADER) throw new RangeError('REPLICA UNDO: short header');
  const end = REPLICA_UNDO_HEADER + d.readUInt32BE(0);
  if (end > d.length) throw new RangeError(`REPLICA UNDO: ${d.length} bytes, the header says ${end}`);
  const pieces: ReplicaUndoPiece[] = [];
  for (let o = REPLICA_UNDO_HEADER; o < end;) {
    const seq = Number(d.readBigUInt64BE(o));
    const lba = d.readBigUInt64BE(o + 8);
    const blocks = d.readUInt32BE(o + 16);
    const dealloc = (d[o + 20] & 1) !== 0;
    o += REPLICA_UNDO_DESCRIPTOR;
    const data = dealloc ? null : d.subarray(o, o + blocks * blockSize);
    if (!dealloc) o += blocks * blockSize;
    if (o > end) throw new RangeError('REPLICA UNDO: a piece runs past the data length');
    pieces.push({ seq, lba, blocks, data });
  }
  return { pieces, more: (d[4] & 1) !== 0, nextLength: d.readUInt32BE(8) };
}
