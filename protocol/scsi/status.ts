/**
 * SCSI status codes (SAM-5 §5.3.1 table 37): what the target answers and the initiator reads, so
 * defined once for both sides.
 */
export const enum ScsiStatus {
  Good = 0x00,
  CheckCondition = 0x02,
  ConditionMet = 0x04,
  Busy = 0x08,
  ReservationConflict = 0x18,
  TaskSetFull = 0x28,
  AcaActive = 0x30,
  TaskAborted = 0x40,
}

const STATUS_NAMES: Record<number, string> = {
  [ScsiStatus.Good]: 'GOOD', [ScsiStatus.CheckCondition]: 'CHECK CONDITION', [ScsiStatus.ConditionMet]: 'CONDITION MET',
  [ScsiStatus.Busy]: 'BUSY', [ScsiStatus.ReservationConflict]: 'RESERVATION CONFLICT', [ScsiStatus.TaskSetFull]: 'TASK SET FULL',
  [ScsiStatus.AcaActive]: 'ACA ACTIVE', [ScsiStatus.TaskAborted]: 'TASK ABORTED',
};

/** The status's name as SAM-5 writes it; an undefined code as hex. */
export function statusName(status: number): string {
  return STATUS_NAMES[status] ?? `status 0x${status.toString(16).padStart(2, '0')}`;
}
