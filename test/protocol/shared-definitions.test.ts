/**
 * Definitions both sides of the wire share, named once: the SCSI status codes (protocol/scsi/
 * status.ts, used by the target's engine and by the initiator module) and the Login Response
 * fields (pdu.ts LoginResponseHeader: what the target encodes is what the initiator decodes).
 */
import { describe, expect, it } from 'vitest';
import { decodeTargetPdu } from '../../protocol/iscsi/initiator-pdu.ts';
import { encodeLoginResponse, TargetOp } from '../../protocol/iscsi/pdu.ts';
import type { LoginResponseHeader } from '../../protocol/iscsi/pdu.ts';
import { ScsiStatus, statusName } from '../../protocol/scsi/status.ts';
import { ScsiStatus as InitiatorStatus, statusName as initiatorStatusName } from '../../src/initiator/index.ts';
import { GOOD, ScsiStatus as EngineStatus } from '../../src/scsi/types.ts';

describe('SCSI status (SAM-5 §5.3.1)', () => {
  it('the codes and names, one table for the engine and the initiator', () => {
    expect([ScsiStatus.Good, ScsiStatus.CheckCondition, ScsiStatus.ConditionMet, ScsiStatus.Busy, ScsiStatus.ReservationConflict,
      ScsiStatus.TaskSetFull, ScsiStatus.AcaActive, ScsiStatus.TaskAborted]).toEqual([0x00, 0x02, 0x04, 0x08, 0x18, 0x28, 0x30, 0x40]);
    expect(EngineStatus.ReservationConflict).toBe(0x18);
    expect(InitiatorStatus.TaskSetFull).toBe(0x28);
    expect(GOOD.status).toBe(0);
    expect(statusName(0x18)).toBe('RESERVATION CONFLICT');
    expect(initiatorStatusName).toBe(statusName);
    expect(statusName(0x22)).toBe('status 0x22'); // obsolete code: said as hex, not invented
  });
});

describe('Login Response fields (RFC 7143 §11.13)', () => {
  it('every field the target encodes comes back from the initiator decoder', () => {
    const h: LoginResponseHeader = {
      transit: true, cont: false, csg: 1, nsg: 3, versionMax: 0, versionActive: 0, isid: '400001370000', tsih: 0x1234,
      statusClass: 2, statusDetail: 1,
    };
    const bhs = encodeLoginResponse({ ...h, itt: 0x11, dataLength: 0 }, { statSN: 7, expCmdSN: 8, maxCmdSN: 9 });
    const pdu = decodeTargetPdu(bhs, Buffer.alloc(0));
    expect(pdu.op).toBe(TargetOp.LoginResponse);
    expect(pdu).toMatchObject({ ...h, itt: 0x11, statSN: 7 });
    // A field the encoder drops would be caught: NSG is only sent with T set (RFC 7143 §11.12.3).
    const noTransit = decodeTargetPdu(encodeLoginResponse({ ...h, transit: false, itt: 1, dataLength: 0 }, { statSN: 0, expCmdSN: 0, maxCmdSN: 0 }), Buffer.alloc(0));
    expect(noTransit).toMatchObject({ transit: false, nsg: 0 });
  });
});
