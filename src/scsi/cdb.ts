/**
 * Shared CDB decoding helpers for block commands (SBC-4 §4.2.2 and the CDB formats of SPC-5
 * §4.2): LBA and transfer length of the 6/10/12/16-byte READ/WRITE family, reserved-field and
 * range checks. Used by sbc.ts and (later) the VAAI offload commands. Every failure is a
 * SenseError naming the offending CDB field, so decode() stays a list of checks.
 */
import type { LogicalUnit } from './lu.ts';
import { SenseError } from './types.ts';
import type { ScsiRequest } from './types.ts';

export interface LbaRange {
  lba: bigint;
  blocks: number;
}

/** INVALID FIELD IN CDB with a field pointer (SPC-5 §4.4.2.4.2). */
export function invalidField(byte: number, bit?: number): SenseError {
  return new SenseError('InvalidFieldInCdb', { fieldPointer: { inCdb: true, byte, bit } });
}

/** INVALID FIELD IN PARAMETER LIST with a field pointer into the Data-Out buffer. */
export function invalidParam(byte: number, bit?: number): SenseError {
  return new SenseError('InvalidFieldInParameterList', { fieldPointer: { inCdb: false, byte, bit } });
}

/** Reject any set bit of `mask` in cdb[byte]; the pointer names the highest offending bit. */
export function reserved(cdb: Buffer, byte: number, mask: number): void {
  const bad = cdb[byte] & mask;
  if (bad) throw invalidField(byte, 31 - Math.clz32(bad));
}

/** READ(6)/WRITE(6) (SBC-4 §5.14, §5.42): 21-bit LBA; TRANSFER LENGTH 0 means 256 blocks. */
export function rw6(cdb: Buffer): LbaRange {
  const lba = BigInt(((cdb[1] & 0x1f) << 16) | (cdb[2] << 8) | cdb[3]);
  return { lba, blocks: cdb[4] === 0 ? 256 : cdb[4] };
}

/** 10-byte CDB: LBA bytes 2-5, TRANSFER LENGTH bytes 7-8. */
export function rw10(cdb: Buffer): LbaRange {
  return { lba: BigInt(cdb.readUInt32BE(2)), blocks: cdb.readUInt16BE(7) };
}

/** 12-byte CDB: LBA bytes 2-5, TRANSFER LENGTH bytes 6-9. */
export function rw12(cdb: Buffer): LbaRange {
  return { lba: BigInt(cdb.readUInt32BE(2)), blocks: cdb.readUInt32BE(6) };
}

/** 16-byte CDB: LBA bytes 2-9, TRANSFER LENGTH bytes 10-13. */
export function rw16(cdb: Buffer): LbaRange {
  return { lba: cdb.readBigUInt64BE(2), blocks: cdb.readUInt32BE(10) };
}

/** Where the TRANSFER LENGTH field starts, by CDB length (for field pointers). */
export function lengthFieldByte(cdbLength: number): number {
  switch (cdbLength) {
    case 6: return 4;
    case 10: return 7;
    case 12: return 6;
    default: return 10;
  }
}

/**
 * SBC-4 §4.5: an LBA range that runs past the last LBA is LOGICAL BLOCK ADDRESS OUT OF RANGE.
 * A zero-length range at LBA == capacity is accepted (it touches nothing); beyond that it is not.
 */
export function checkRange(lu: LogicalUnit, lba: bigint, blocks: number | bigint): void {
  if (lba + BigInt(blocks) > lu.blockCount) {
    throw new SenseError('LbaOutOfRange', { information: lba });
  }
}

/** A transfer above the Block Limits MAXIMUM TRANSFER LENGTH is INVALID FIELD IN CDB (SBC-4 §6.6.4). */
export function checkMaxTransfer(blocks: number, max: number, cdbLength: number): void {
  if (max > 0 && blocks > max) throw invalidField(lengthFieldByte(cdbLength));
}

/**
 * The Data-Out a command may use: what its CDB asks for, limited to what the initiator sent.
 * RFC 7143 §11.4.5 residuals: when EDTL is short the command acts on the whole blocks it got
 * (libiscsi write10_residuals expects exactly that); the transport reports the overflow from
 * ScsiResponse.dataOutLength.
 */
export function dataOut(req: ScsiRequest, wantBytes: number): Buffer {
  const d = req.dataOut;
  if (!d) return EMPTY;
  return d.length > wantBytes ? d.subarray(0, wantBytes) : d;
}

/** Whole blocks in a Data-Out buffer. */
export function wholeBlocks(buf: Buffer, blockSize: number): number {
  return Math.floor(buf.length / blockSize);
}

const EMPTY = Buffer.alloc(0);
