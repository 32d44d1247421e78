/**
 * The vital product data pages this device server offers (SPC-5 §7.7, SBC-4 §6.6): one table,
 * from which the Supported VPD Pages page (00h) is generated (STYLE.md habit 2). The byte
 * layouts live in protocol/scsi/vpd.ts; this file decides the values for one LU and port.
 */
import {
  Association, CodeSet, DesignatorType, NON_ROTATING, PROTOCOL_ISCSI, ProvisioningType, VpdPage,
  blockDeviceCharacteristicsBody, blockLimitsBody, encodeDesignator, extendedInquiryBody,
  logicalBlockProvisioningBody, naaDesignatorBytes, scsiNameString, scsiPortsBody, u16Designator, vpdPage,
} from '../../protocol/scsi/vpd.ts';
import { targetPortName } from '../../protocol/iscsi/names.ts';
import { PDT_DIRECT_ACCESS, asciiField } from '../../protocol/scsi/inquiry.ts';
import type { LogicalUnit } from './lu.ts';
import type { Nexus } from './types.ts';
import { invalidField } from './cdb.ts';
import { thirdPartyCopyVpdBody } from './xcopy.ts';
import { sanitizeCharacteristics } from './sbc-medium.ts';
import { blockLimits, provisioning } from './sbc.ts';
import { hidesPrimitive } from './split.ts';
import type { SplitPrimitive } from './split.ts';

export interface VpdPageDef {
  readonly page: number;
  readonly name: string;
  /** The page body (bytes 4..), for the LU and the port the command came in on. */
  body(lu: LogicalUnit, nexus: Nexus): Buffer;
  /** The primitive the page advertises: an array splitter rejecting it may hide the page (split.ts). */
  readonly primitive?: SplitPrimitive;
}

/** Whether `lu` offers the page (a page whose primitive a splitter hides is not offered). */
export function offersVpdPage(def: VpdPageDef, lu: LogicalUnit): boolean {
  return def.primitive === undefined || !hidesPrimitive(lu, def.primitive);
}

/** NAA IEEE Registered designator value of an LU (also what EXTENDED COPY target descriptors match). */
export function lunNaaBytes(lu: LogicalUnit): Buffer {
  return naaDesignatorBytes(lu.naa);
}

/**
 * Device Identification (SPC-5 §7.7.6): the LU's NAA and T10 vendor designators, then the
 * designators of the target port and target device the command arrived through. SPC-5 §7.7.6.1
 * requires at least one LU designator of type 1, 2, 3 or 8; Linux and ESXi key on the NAA one,
 * scsi_dh_alua on the relative target port and target port group designators.
 */
function deviceIdentification(lu: LogicalUnit, nexus: Nexus): Buffer {
  const t10 = Buffer.concat([asciiField(lu.vendor, 8), Buffer.from(lu.serial, 'latin1')]);
  return Buffer.concat([
    encodeDesignator({ codeSet: CodeSet.Binary, association: Association.LogicalUnit, type: DesignatorType.Naa, value: lunNaaBytes(lu) }),
    encodeDesignator({ codeSet: CodeSet.Ascii, association: Association.LogicalUnit, type: DesignatorType.T10VendorId, value: t10 }),
    encodeDesignator({
      protocol: PROTOCOL_ISCSI, codeSet: CodeSet.Binary, association: Association.TargetPort,
      type: DesignatorType.RelativeTargetPort, value: u16Designator(nexus.relativeTargetPortId),
    }),
    encodeDesignator({
      protocol: PROTOCOL_ISCSI, codeSet: CodeSet.Binary, association: Association.TargetPort,
      type: DesignatorType.TargetPortGroup, value: u16Designator(nexus.targetPortGroupId),
    }),
    // iSCSI target port name "<target>,t,0x<tpgt>" (protocol/iscsi/names.ts, SPC-5 §7.7.6.11).
    encodeDesignator({
      protocol: PROTOCOL_ISCSI, codeSet: CodeSet.Utf8, association: Association.TargetPort,
      type: DesignatorType.ScsiNameString, value: scsiNameString(nexus.targetPortName),
    }),
    encodeDesignator({
      protocol: PROTOCOL_ISCSI, codeSet: CodeSet.Utf8, association: Association.TargetDevice,
      type: DesignatorType.ScsiNameString, value: scsiNameString(nexus.targetName),
    }),
  ]);
}

/**
 * SCSI Ports (SPC-5 §7.7.17): every target port through which the LU can be reached, i.e. every
 * port of the target's port groups (one per portal TPGT; the relative target port identifier is
 * the TPGT), each named by its iSCSI target port name. A multipath host can read from one path
 * which other ports lead to the same LU.
 */
function scsiPorts(lu: LogicalUnit, nexus: Nexus): Buffer {
  const ids = new Set<number>([nexus.relativeTargetPortId]);
  for (const g of lu.target.alua.groups.values()) for (const p of g.ports) ids.add(p);
  return scsiPortsBody([...ids].sort((a, b) => a - b).map((id) => ({
    relativePortId: id,
    targetPortDescriptors: [encodeDesignator({
      protocol: PROTOCOL_ISCSI, codeSet: CodeSet.Utf8, association: Association.TargetPort,
      type: DesignatorType.ScsiNameString, value: scsiNameString(targetPortName(nexus.targetName, id)),
    })],
  })));
}

/** Block Limits (SBC-4 §6.6.4) from the SBC module's limits; UNMAP fields only where UNMAP is offered. */
function blockLimitsPage(lu: LogicalUnit): Buffer {
  const l = blockLimits(lu);
  const p = advertisedProvisioning(lu);
  return blockLimitsBody({
    wsnz: l.writeSameNonZero,
    // 0: COMPARE AND WRITE not supported (SBC-4 §6.6.4), when a splitter hides ATS.
    maxCompareAndWriteLength: hidesPrimitive(lu, 'ats') ? 0 : l.maxCompareAndWriteLength,
    optimalTransferLengthGranularity: Math.min(0xffff, l.optimalTransferLengthGranularity),
    maxTransferLength: l.maxTransferLength,
    optimalTransferLength: l.optimalTransferLength,
    maxPrefetchLength: 0,
    maxUnmapLbaCount: p.unmap ? l.maxUnmapLbaCount : 0,
    maxUnmapBlockDescriptorCount: p.unmap ? l.maxUnmapBlockDescriptorCount : 0,
    optimalUnmapGranularity: p.unmap ? l.optimalUnmapGranularity : 0,
    ugavalid: p.unmap && l.unmapGranularityAlignmentValid,
    unmapGranularityAlignment: p.unmap ? l.unmapGranularityAlignment : 0,
    maxWriteSameLength: BigInt(l.maxWriteSameLength),
    maxAtomicTransferLength: l.maxAtomicTransferLength,
    atomicAlignment: l.atomicAlignment,
    atomicTransferLengthGranularity: l.atomicTransferLengthGranularity,
    maxAtomicTransferLengthWithAtomicBoundary: l.maxAtomicBoundarySize > 0 ? l.maxAtomicTransferLength : 0,
    maxAtomicBoundarySize: l.maxAtomicBoundarySize,
  });
}

/** provisioning() as advertised: an array splitter may hide UNMAP and WRITE SAME's unmap (LBPU, LBPWS). */
function advertisedProvisioning(lu: LogicalUnit): ReturnType<typeof provisioning> {
  const p = provisioning(lu);
  if (lu.protection === null) return p;
  return { ...p, unmap: p.unmap && !hidesPrimitive(lu, 'unmap'), writeSameUnmap: p.writeSameUnmap && !hidesPrimitive(lu, 'writesame') };
}

/** In page-code order: SPC-5 §7.7.4 wants the Supported VPD Pages list ascending. */
export const VPD_PAGES: readonly VpdPageDef[] = [
  { page: VpdPage.SupportedPages, name: 'Supported VPD Pages', body: (lu) => Buffer.from(VPD_PAGES.filter((p) => offersVpdPage(p, lu)).map((p) => p.page)) },
  { page: VpdPage.UnitSerialNumber, name: 'Unit Serial Number', body: (lu) => Buffer.from(lu.serial, 'latin1') },
  { page: VpdPage.DeviceIdentification, name: 'Device Identification', body: deviceIdentification },
  {
    page: VpdPage.ExtendedInquiry, name: 'Extended INQUIRY Data',
    // SIMPSUP only: the engine does not promise ORDERED/HEAD OF QUEUE semantics. LUICLR=1: unit
    // attentions are kept and cleared per I_T nexus (SPC-5 §7.7.8, required since SPC-4).
    // V_SUP: VERIFY with BYTCHK is implemented by the SBC module.
    body: () => extendedInquiryBody({
      headsup: false, ordsup: false, simpsup: true, wuSup: false, crdSup: false, nvSup: false, vSup: true,
      luiclr: true, maxSenseLength: 252,
    }),
  },
  { page: VpdPage.ScsiPorts, name: 'SCSI Ports', body: scsiPorts },
  // EXTENDED COPY limits and supported commands (SPC-4 §7.8.17), from the copy manager itself.
  { page: VpdPage.ThirdPartyCopy, name: 'Third-party Copy', body: thirdPartyCopyVpdBody, primitive: 'xcopy' },
  { page: VpdPage.BlockLimits, name: 'Block Limits', body: blockLimitsPage },
  {
    page: VpdPage.BlockDeviceCharacteristics, name: 'Block Device Characteristics',
    // Memory and file stores have no seek time: non-rotating (Linux then sets QUEUE_FLAG_NONROT).
    // A virtual disk has no form factor: 0 "not reported". WABEREQ/WACEREQ follow the sanitize
    // methods the LU offers (sbc-medium.ts).
    body: (lu) => {
      const s = sanitizeCharacteristics(lu);
      return blockDeviceCharacteristicsBody({
        mediumRotationRate: NON_ROTATING, productType: 0, nominalFormFactor: 0, fuab: true, vbuls: false,
        wabereq: s.wabereq, wacereq: s.wacereq,
      });
    },
  },
  {
    page: VpdPage.LogicalBlockProvisioning, name: 'Logical Block Provisioning',
    body: (lu) => {
      const p = advertisedProvisioning(lu);
      return logicalBlockProvisioningBody({
        thresholdExponent: 0,
        lbpu: p.unmap, lbpws: p.writeSameUnmap, lbpws10: p.writeSameUnmap,
        lbprz: p.lbprz ? 1 : 0,
        ancSup: false, dp: false,
        provisioningType: lu.store.thin ? ProvisioningType.Thin : ProvisioningType.Full,
      });
    },
  },
];

const BY_CODE = new Map(VPD_PAGES.map((p) => [p.page, p]));

export function findVpdPage(page: number): VpdPageDef | undefined {
  return BY_CODE.get(page);
}

export function vpdPageData(def: VpdPageDef, lu: LogicalUnit, nexus: Nexus): Buffer {
  // A page the LU does not offer (hidden by a splitter) is an unsupported PAGE CODE (SPC-5 §6.7.1).
  if (!offersVpdPage(def, lu)) throw invalidField(2);
  return vpdPage(PDT_DIRECT_ACCESS, def.page, def.body(lu, nexus));
}
