/**
 * INQUIRY (SPC-5 §6.7): decode, standard data and VPD dispatch. The command-table entry is in
 * spc.ts; the byte layouts in protocol/scsi/inquiry.ts and protocol/scsi/vpd.ts.
 */
import {
  PDT_DIRECT_ACCESS, RESPONSE_DATA_FORMAT, VERSION_DESCRIPTORS, VERSION_SPC4, asciiField, encodeStandardInquiry,
} from '../../protocol/scsi/inquiry.ts';
import { invalidField, reserved } from './cdb.ts';
import type { LogicalUnit } from './lu.ts';
import type { Nexus } from './types.ts';
import { hidesPrimitive } from './split.ts';
import { findVpdPage, vpdPageData } from './vpd.ts';
import type { VpdPageDef } from './vpd.ts';

/** TPGS 01b: implicit ALUA only, until SET TARGET PORT GROUPS exists (then 11b). scsi_dh_alua attaches on any non-zero value. */
export const TPGS_IMPLICIT = 0b01;

export type InquiryCmd =
  | { kind: 'standard'; allocationLength: number }
  | { kind: 'vpd'; page: VpdPageDef; allocationLength: number };

export function decodeInquiry(cdb: Buffer): InquiryCmd {
  // Byte 1: bit 1 was CMDDT (obsolete since SPC-3: must be zero), bit 0 EVPD.
  reserved(cdb, 1, 0xfe);
  const evpd = (cdb[1] & 0x01) !== 0;
  const pageCode = cdb[2];
  const allocationLength = cdb.readUInt16BE(3);
  if (!evpd) {
    // SPC-5 §6.7.1: PAGE CODE non-zero with EVPD=0 is INVALID FIELD IN CDB.
    if (pageCode !== 0) throw invalidField(2);
    return { kind: 'standard', allocationLength };
  }
  const page = findVpdPage(pageCode);
  if (!page) throw invalidField(2);
  return { kind: 'vpd', page, allocationLength };
}

/** Standard INQUIRY data (SPC-5 §6.7.2) for one LU. */
export function standardInquiry(lu: LogicalUnit, tpgs: number = TPGS_IMPLICIT): Buffer {
  return encodeStandardInquiry({
    peripheralQualifier: 0,
    peripheralDeviceType: PDT_DIRECT_ACCESS,
    rmb: lu.removable,
    luCong: false,
    version: VERSION_SPC4,
    // NORMACA=0: ACA is not supported (SPC commands reject NACA=1 in the CONTROL byte).
    normaca: false,
    // HISUP=1: LUNs are hierarchical (SAM-5 §4.7), which REPORT LUNS' encoding follows.
    hisup: true,
    responseDataFormat: RESPONSE_DATA_FORMAT,
    sccs: false,
    acc: false,
    tpgs,
    // 3PC=1: EXTENDED COPY(LID1) and RECEIVE COPY RESULTS are offered (xcopy.ts, VPD 0x8F),
    // unless an array splitter that rejects XCOPY hides it (split.ts).
    threePc: !hidesPrimitive(lu, 'xcopy'),
    protect: false,
    encserv: false,
    multip: false,
    cmdque: true,
    vendor: asciiField(lu.vendor, 8),
    product: asciiField(lu.product, 16),
    revision: asciiField(lu.revision, 4),
    versionDescriptors: [VERSION_DESCRIPTORS.SAM5, VERSION_DESCRIPTORS.ISCSI, VERSION_DESCRIPTORS.SPC4, VERSION_DESCRIPTORS.SBC3],
  });
}

export function inquiryData(lu: LogicalUnit, nexus: Nexus, cmd: InquiryCmd, tpgs: number = TPGS_IMPLICIT): Buffer {
  if (cmd.kind === 'standard') return standardInquiry(lu, tpgs);
  return vpdPageData(cmd.page, lu, nexus);
}
