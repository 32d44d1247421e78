/**
 * SCSI port names of iSCSI (RFC 7143 §13.5.2, also SPC-5 §7.6.4.6 TransportID format 01b):
 * an initiator port is "<initiator name>,i,0x<ISID>", a target port is
 * "<target name>,t,0x<TPGT as four hex digits>".
 */
export function initiatorPortName(initiatorName: string, isidHex: string): string {
  return `${initiatorName},i,0x${isidHex}`;
}

export function targetPortName(targetName: string, tpgt: number): string {
  return `${targetName},t,0x${tpgt.toString(16).padStart(4, '0')}`;
}
