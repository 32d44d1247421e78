/**
 * How a write's data goes out (RFC 7143 §4.2.5, §13.13-14): how much rides in the SCSI Command
 * PDU as immediate data, how far unsolicited Data-Out goes, the F bit of the command, and the
 * Data-Out PDUs that carry a range in pieces of at most the target's MaxRecvDataSegmentLength.
 * Pure; shared by the session and by the raw-PDU test initiator.
 */

export interface DataOutRules {
  immediateData: boolean;
  initialR2T: boolean;
  firstBurstLength: number;
  /** The target's MaxRecvDataSegmentLength: the largest data segment we may send. */
  maxSendDataSegmentLength: number;
}

export interface WritePlan {
  /** Bytes of immediate data in the command PDU. */
  immediate: number;
  /** Unsolicited data (immediate + Data-Out with TTT 0xffffffff) ends here. */
  unsolicitedEnd: number;
  /** F bit of the SCSI Command: no unsolicited Data-Out follows it. */
  final: boolean;
}

/**
 * The unsolicited part of a write of `length` bytes with Expected Data Transfer Length `edtl`
 * (normally the same). The target expects unsolicited data up to min(FirstBurstLength, EDTL) when
 * InitialR2T=No (§13.13); the F bit says whether more than the immediate data is coming.
 */
export function planWrite(r: DataOutRules, length: number, edtl = length): WritePlan {
  const immediate = r.immediateData ? Math.min(length, edtl, r.firstBurstLength, r.maxSendDataSegmentLength) : 0;
  if (r.initialR2T) return { immediate, unsolicitedEnd: immediate, final: true };
  const expected = Math.min(r.firstBurstLength, edtl);
  return { immediate, unsolicitedEnd: Math.min(expected, length), final: expected <= immediate };
}

export interface DataOutPiece {
  offset: number;
  length: number;
  /** DataSN, from 0 within each sequence (RFC 7143 §11.7.5). */
  dataSN: number;
  /** F bit: the last PDU of the sequence. */
  final: boolean;
}

/** The Data-Out PDUs for bytes [offset, offset + length), each at most `max` bytes. */
export function dataOutPieces(offset: number, length: number, max: number): DataOutPiece[] {
  const out: DataOutPiece[] = [];
  const end = offset + length;
  for (let o = offset, sn = 0; o < end; o += max, sn++) {
    const n = Math.min(max, end - o);
    out.push({ offset: o, length: n, dataSN: sn, final: o + n >= end });
  }
  return out;
}
