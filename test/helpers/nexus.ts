/** I_T nexuses for SCSI-layer tests, built the way src/iscsi/session.ts builds them. */
import type { Nexus } from '../../src/scsi/types.ts';

let sessionIds = 1;

export function testNexus(targetName: string, o: { initiator: string; isid?: string; tpgt?: number; tpg?: number }): Nexus {
  const isid = o.isid ?? '23d000000001';
  const tpgt = o.tpgt ?? 1;
  const initiatorPortName = `${o.initiator},i,0x${isid}`;
  const targetPortName = `${targetName},t,0x${tpgt.toString(16).padStart(4, '0')}`;
  return Object.freeze({
    key: `${initiatorPortName}|${targetPortName}`,
    initiatorName: o.initiator, initiatorPortName, isid, targetName, targetPortName, tpgt,
    relativeTargetPortId: tpgt, targetPortGroupId: o.tpg ?? tpgt, sessionId: sessionIds++,
  });
}
