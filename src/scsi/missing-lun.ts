/** Answers for LUNs that do not exist (SPC-5 §4.6.5). */
import { buildFixedSense } from '../../protocol/scsi/sense.ts';
import type { ScsiTarget } from './target.ts';
import { reportLuns } from './spc.ts';
import { ScsiStatus, SenseError } from './types.ts';
import type { ScsiRequest, ScsiResponse } from './types.ts';

/**
 * REPORT LUNS addressed to a LUN that does not exist: the same decode and data as the command
 * table's entry (spc.ts), with sense in fixed format (there is no Control mode page to ask).
 */
export function reportLunsData(target: ScsiTarget, req: ScsiRequest): ScsiResponse {
  try {
    return reportLuns(target, req.cdb, req.nexus.key);
  } catch (e) {
    if (!(e instanceof SenseError)) throw e;
    return { status: ScsiStatus.CheckCondition, data: null, sense: buildFixedSense(e.reason, e.detail) };
  }
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
