/** Answers for LUNs that do not exist, and the REPORT LUNS parameter data (SPC-5 §6.33). */
import { buildFixedSense } from '../../protocol/scsi/sense.ts';
import type { ScsiTarget } from './target.ts';
import { ScsiStatus } from './types.ts';
import type { ScsiRequest, ScsiResponse } from './types.ts';

/** 8-byte LUN field, peripheral (0-255) or flat (256-16383) addressing (SAM-5 §4.7). */
export function encodeLun(lun: number, out: Buffer, offset: number): void {
  out.fill(0, offset, offset + 8);
  if (lun < 256) out[offset + 1] = lun;
  else out.writeUInt16BE(0x4000 | (lun & 0x3fff), offset);
}

export function reportLunsData(target: ScsiTarget, _req: ScsiRequest): ScsiResponse {
  const luns = [...target.luns.keys()].sort((a, b) => a - b);
  const data = Buffer.alloc(8 + 8 * luns.length);
  data.writeUInt32BE(8 * luns.length, 0);
  luns.forEach((l, i) => encodeLun(l, data, 8 + 8 * i));
  return { status: ScsiStatus.Good, data, sense: null };
}

export function inquiryForMissingLun(req: ScsiRequest): ScsiResponse {
  if (req.cdb[1] & 0x01) {
    return { status: ScsiStatus.CheckCondition, data: null, sense: buildFixedSense('LuNotSupported') };
  }
  const data = Buffer.alloc(36);
  data[0] = 0x7f; // PQ=011b, PDT=1Fh: not capable of supporting a device at this LUN
  data[2] = 0x06;
  data[3] = 0x02;
  data[4] = 31;
  return { status: ScsiStatus.Good, data, sense: null };
}

export function requestSenseForMissingLun(req: ScsiRequest): ScsiResponse {
  const desc = (req.cdb[1] & 0x01) !== 0;
  const fixed = buildFixedSense('LuNotSupported');
  if (!desc) return { status: ScsiStatus.Good, data: fixed, sense: null };
  const d = Buffer.alloc(8);
  d[0] = 0x72; d[1] = fixed[2] & 0x0f; d[2] = fixed[12]; d[3] = fixed[13];
  return { status: ScsiStatus.Good, data: d, sense: null };
}
