/**
 * The SCSI target device: a set of logical units behind one iSCSI target name. It routes a
 * request to its LU, answers for LUNs that do not exist (SPC-5 §4.6.5 / SAM-5 §5.9.?), keeps
 * the I_T nexus registry that unit attentions and reservations need, and performs target resets.
 */
import type { Logger } from 'pino';
import { buildFixedSense } from '../../protocol/scsi/sense.ts';
import { AluaModel } from './alua.ts';
import { LogicalUnit } from './lu.ts';
import type { LuOptions } from './lu.ts';
import { ScsiStatus } from './types.ts';
import type { Nexus, ScsiRequest, ScsiResponse } from './types.ts';
import { reportLunsData, inquiryForMissingLun, requestSenseForMissingLun } from './missing-lun.ts';

export class ScsiTarget {
  readonly luns = new Map<number, LogicalUnit>();
  readonly nexuses = new Map<string, Nexus>();
  /**
   * Target port groups and their access states. Every target has one: without configuration each
   * target port a session arrives on is its own group, active/optimized (StorageArray replaces it
   * with one built from the portals and the YAML `alua:` section).
   */
  alua: AluaModel;
  /**
   * Abort the tasks of LUN `lun` from the I_T nexuses `which` selects (PREEMPT AND ABORT, SPC-5
   * §5.14.11.5): set by the transport that holds the task sets (src/iscsi/server.ts).
   */
  abortTasks: ((lun: number, which: (n: Nexus) => boolean) => void) | null = null;

  constructor(readonly name: string, readonly log?: Logger) {
    this.alua = new AluaModel(this, log);
  }

  addLun(o: Omit<LuOptions, 'lun'> & { lun?: number }): LogicalUnit {
    const lun = o.lun ?? this.luns.size;
    const lu = new LogicalUnit(this, { ...o, lun });
    this.luns.set(lun, lu);
    // A new LU: every existing nexus sees REPORTED LUNS DATA HAS CHANGED (SPC-5 §5.12).
    for (const other of this.luns.values()) if (other !== lu) other.ua.establishAll(this.nexusKeys(), 'ReportedLunsDataChanged');
    return lu;
  }

  nexusKeys(): IterableIterator<string> {
    return this.nexuses.keys();
  }

  /** A session logged in: a new I_T nexus. SAM-5 §6.3.x: it starts with a power-on/reset UA. */
  nexusUp(nexus: Nexus): void {
    this.nexuses.set(nexus.key, nexus);
    this.alua.addGroup(nexus.targetPortGroupId, [nexus.relativeTargetPortId]);
    for (const lu of this.luns.values()) lu.ua.establish(nexus.key, 'PowerOnResetOccurred');
  }

  /** A session ended (logout, connection loss without reinstatement, or reinstatement). */
  nexusDown(nexus: Nexus): void {
    if (this.nexuses.get(nexus.key) !== nexus) return;
    this.nexuses.delete(nexus.key);
    for (const lu of this.luns.values()) lu.nexusLost(nexus);
  }

  submit(req: ScsiRequest): ScsiResponse | Promise<ScsiResponse> {
    const lu = this.luns.get(req.lun);
    if (lu) return lu.submit(req);
    return this.submitMissing(req);
  }

  /** Commands addressed to a LUN that does not exist (SPC-5 §4.6.5). */
  private submitMissing(req: ScsiRequest): ScsiResponse {
    switch (req.cdb[0]) {
      case 0xa0: // REPORT LUNS is answered by any LUN, including LUN 0 when absent.
        return reportLunsData(this, req);
      case 0x12: // INQUIRY: peripheral qualifier 011b, device type 1Fh.
        return inquiryForMissingLun(req);
      case 0x03: // REQUEST SENSE: sense data saying LOGICAL UNIT NOT SUPPORTED.
        return requestSenseForMissingLun(req);
      default:
        return { status: ScsiStatus.CheckCondition, data: null, sense: buildFixedSense('LuNotSupported') };
    }
  }

  /**
   * TARGET WARM RESET / TARGET COLD RESET (RFC 7143 §11.5.1): reset every LU, each as a LOGICAL
   * UNIT RESET from `nexus`, so that a replicated LU resets on both arrays of its pair.
   */
  async reset(nexus: Nexus): Promise<void> {
    await Promise.allSettled([...this.luns.values()].map((lu) => lu.logicalUnitReset(nexus)));
  }
}
