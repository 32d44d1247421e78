/**
 * The contract between the transport (src/iscsi) and the SCSI engine (src/scsi).
 * The transport collects all Data-Out for a command before submitting it, and it turns
 * ScsiResponse.data into Data-In PDUs (truncating to the expected transfer length and
 * computing residuals). It never looks inside the CDB.
 */
import type { SenseReason, SenseDetail } from '../../protocol/scsi/sense.ts';
import type { LogicalUnit } from './lu.ts';

import { ScsiStatus } from '../../protocol/scsi/status.ts';

export { ScsiStatus };

/** SAM-5 task attributes, as carried in the iSCSI SCSI Command PDU ATTR field. */
export const enum TaskAttribute {
  Untagged = 0,
  Simple = 1,
  Ordered = 2,
  HeadOfQueue = 3,
  Aca = 4,
}

/**
 * An I_T nexus: one iSCSI session through one target portal group. Reservations, unit
 * attentions and ALUA state are all keyed by (parts of) this.
 */
export interface Nexus {
  /** Stable key for maps: `${initiatorPortName}|${targetPortName}`. */
  readonly key: string;
  /** iSCSI initiator name (IQN/EUI), as in the login. */
  readonly initiatorName: string;
  /** SCSI initiator port name: `${initiatorName},i,0x${isid}` (RFC 7143 §13.5.2 / SPC TransportID format 01b). */
  readonly initiatorPortName: string;
  /** 6-byte ISID as 12 hex digits. */
  readonly isid: string;
  readonly targetName: string;
  /** SCSI target port name: `${targetName},t,0x${tpgt hex4}`. */
  readonly targetPortName: string;
  /** iSCSI target portal group tag of the portal the session came in on. */
  readonly tpgt: number;
  /** Relative target port identifier (SPC-5 §7.7.6): 1-based, one per target portal group. */
  readonly relativeTargetPortId: number;
  /** ALUA target port group id that this target port belongs to. */
  readonly targetPortGroupId: number;
  /** Session identifying handle, unique per process. */
  readonly sessionId: number;
}

export interface ScsiRequest {
  readonly lun: number;
  /** The CDB (view into the PDU; valid only for the duration of submit()). */
  readonly cdb: Buffer;
  readonly nexus: Nexus;
  readonly taskTag: number;
  readonly attr: TaskAttribute;
  /** Expected Data Transfer Length from the initiator (bytes, either direction). */
  readonly expectedLength: number;
  readonly isRead: boolean;
  readonly isWrite: boolean;
  /**
   * All Data-Out received (exactly expectedLength bytes for writes, else null). The transport
   * lends this buffer from a per-connection pool and reuses it once the response is returned:
   * anything that keeps the data past the response (a splitter, replication, a queue) must copy it.
   */
  readonly dataOut: Buffer | null;
  /**
   * The caller sends Data-In asynchronously (a socket): a READ that answers with a view of a
   * memory store keeps its LBA range locked (shared) until the caller calls the response's
   * `release`, so no write can change the blocks under a transfer still in flight. A write kept
   * waiting holdBreak.ms (range-lock.ts) by such a hold breaks it: the store moves the blocks'
   * memory aside (copy-on-write) and the transfer keeps the old memory until `release`.
   */
  readonly holdData?: boolean;
}

export interface ScsiResponse {
  status: ScsiStatus;
  /** Data-In. May be longer than the allocation length: the transport truncates to expectedLength. */
  data: Buffer | null;
  /** Complete sense data bytes when status is CHECK CONDITION. */
  sense: Buffer | null;
  /**
   * For commands with Data-Out: how many bytes of the Data-Out buffer the command actually
   * needed (from its CDB). The transport reports EDTL minus this as a residual underflow
   * (or the shortfall as overflow). Absent: the command used exactly what it was given.
   */
  dataOutLength?: number;
  /**
   * Set when the request asked for `holdData` and a memory store answered the READ (`data` may
   * be a view of it): the caller calls it once the data has been handed to the kernel or
   * dropped (further calls do nothing).
   */
  release?: () => void;
}

/**
 * Handlers throw a SenseError (or return one through failWith) to fail a command.
 * One module (the LU pipeline) turns it into fixed or descriptor sense per the
 * Control mode page D_SENSE bit.
 */
export class SenseError extends Error {
  constructor(readonly reason: SenseReason, readonly detail: SenseDetail = {}) {
    super(reason);
  }
}

/** Status-only failures that carry no sense data (RESERVATION CONFLICT, BUSY, TASK SET FULL). */
export class StatusError extends Error {
  constructor(readonly status: ScsiStatus) {
    super(`status 0x${status.toString(16)}`);
  }
}

export const GOOD: ScsiResponse = Object.freeze({ status: ScsiStatus.Good, data: null, sense: null }) as ScsiResponse;

/** An extent of logical blocks. Writes declare theirs so the splitter/replication can see them. */
export interface Extent {
  /**
   * The LU written, when it is not the one the command was addressed to (EXTENDED COPY writes
   * any LU of the array). Absent: the addressed LU.
   */
  lu?: LogicalUnit;
  lba: bigint;
  blocks: number;
}
