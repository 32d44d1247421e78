/**
 * An iSCSI session (RFC 7143 §4.2): the CmdSN window and in-order delivery of non-immediate
 * commands, the task table, and the I_T nexus the SCSI layer sees. Connections deliver PDUs
 * here after framing and login.
 */
import type { Nexus } from '../scsi/types.ts';
import type { ScsiTarget } from '../scsi/target.ts';
import type { IscsiTargetConfig, PortalConfig } from './config.ts';
import type { Connection } from './connection.ts';
import { snAdd, snGt, snLt } from './seq.ts';
import { initiatorPortName, targetPortName } from '../../protocol/iscsi/names.ts';

/** Session-wide operational parameters agreed at the leading login (RFC 7143 §13). */
export interface SessionParams {
  initialR2T: boolean;
  immediateData: boolean;
  maxBurstLength: number;
  firstBurstLength: number;
  maxOutstandingR2T: number;
  dataPduInOrder: boolean;
  dataSequenceInOrder: boolean;
  errorRecoveryLevel: number;
  maxConnections: number;
  defaultTime2Wait: number;
  defaultTime2Retain: number;
}

export function sessionParamsFrom(agreed: Map<string, string>): SessionParams {
  const num = (k: string, d: number) => (agreed.has(k) ? Number(agreed.get(k)) : d);
  const bool = (k: string, d: boolean) => (agreed.has(k) ? agreed.get(k) === 'Yes' : d);
  const maxBurst = num('MaxBurstLength', 262144);
  return {
    initialR2T: bool('InitialR2T', true),
    immediateData: bool('ImmediateData', true),
    maxBurstLength: maxBurst,
    // RFC 7143 §13.14: FirstBurstLength must not exceed MaxBurstLength.
    firstBurstLength: Math.min(num('FirstBurstLength', 65536), maxBurst),
    maxOutstandingR2T: num('MaxOutstandingR2T', 1),
    dataPduInOrder: bool('DataPDUInOrder', true),
    dataSequenceInOrder: bool('DataSequenceInOrder', true),
    errorRecoveryLevel: num('ErrorRecoveryLevel', 0),
    maxConnections: num('MaxConnections', 1),
    defaultTime2Wait: num('DefaultTime2Wait', 2),
    defaultTime2Retain: num('DefaultTime2Retain', 20),
  };
}

let nextSessionId = 1;

export class Session {
  readonly id = nextSessionId++;
  readonly connections = new Set<Connection>();
  /** Next CmdSN expected (RFC 7143 §4.2.2.1). */
  expCmdSN: number;
  /** Highest CmdSN accepted so far announced. */
  maxCmdSN: number;
  /** Non-immediate tasks delivered but not completed (bounds the window). */
  outstanding = 0;
  /** Commands that arrived ahead of ExpCmdSN, waiting for the gap to fill. */
  private readonly early = new Map<number, () => void>();
  readonly nexus: Nexus | null;
  closed = false;

  constructor(
    readonly tsih: number,
    readonly isid: string,
    readonly initiatorName: string,
    readonly type: 'Normal' | 'Discovery',
    readonly targetConfig: IscsiTargetConfig | undefined,
    readonly scsi: ScsiTarget | undefined,
    readonly portal: PortalConfig,
    readonly params: SessionParams,
    firstCmdSN: number,
    readonly queueDepth: number,
  ) {
    this.expCmdSN = firstCmdSN >>> 0;
    this.maxCmdSN = snAdd(this.expCmdSN, queueDepth - 1);
    if (type === 'Normal' && targetConfig) {
      const iPort = initiatorPortName(initiatorName, isid);
      const tPort = targetPortName(targetConfig.name, portal.tpgt);
      this.nexus = Object.freeze({
        key: `${iPort}|${tPort}`,
        initiatorName,
        initiatorPortName: iPort,
        isid,
        targetName: targetConfig.name,
        targetPortName: tPort,
        tpgt: portal.tpgt,
        relativeTargetPortId: portal.tpgt,
        targetPortGroupId: portal.targetPortGroup,
        sessionId: this.id,
      });
    } else {
      this.nexus = null;
    }
  }

  /**
   * Sequence a non-immediate command (RFC 7143 §3.2.2.1). Returns 'now' when it may run
   * (ExpCmdSN advanced), 'queued' when held until earlier CmdSNs arrive, or 'drop' when
   * outside the window (the target MUST silently ignore it).
   */
  order(cmdSN: number, run: () => void): 'now' | 'queued' | 'drop' {
    if (snLt(cmdSN, this.expCmdSN) || snGt(cmdSN, this.maxCmdSN)) return 'drop';
    if (cmdSN !== this.expCmdSN) {
      if (this.early.has(cmdSN)) return 'drop';
      this.early.set(cmdSN, run);
      return 'queued';
    }
    this.expCmdSN = snAdd(this.expCmdSN, 1);
    this.outstanding++;
    return 'now';
  }

  /** After running the command at ExpCmdSN-1: run any queued successors now in order. */
  drain(): void {
    let next = this.early.get(this.expCmdSN);
    while (next) {
      this.early.delete(this.expCmdSN);
      this.expCmdSN = snAdd(this.expCmdSN, 1);
      this.outstanding++;
      next();
      next = this.early.get(this.expCmdSN);
    }
  }

  /**
   * RFC 7143 §11.5.1 b: ABORT TASK for a command not yet received makes the target treat its CmdSN
   * as received. The command, should it arrive later, is outside the window or a duplicate and
   * is ignored (order() answers 'drop').
   */
  consumeCmdSN(cmdSN: number): void {
    if (cmdSN === this.expCmdSN) {
      this.expCmdSN = snAdd(this.expCmdSN, 1);
      this.drain();
    } else if (!this.early.has(cmdSN)) {
      // Held as a no-op: when the gap before it fills, drain() takes a slot and frees it at once.
      this.early.set(cmdSN, () => this.taskDone());
    }
  }

  /** A non-immediate task finished: the window may open (MaxCmdSN never moves backwards). */
  taskDone(): void {
    if (this.outstanding > 0) this.outstanding--;
  }

  /** Current MaxCmdSN: ExpCmdSN + free queue slots - 1, monotonic. */
  currentMaxCmdSN(): number {
    const free = Math.max(1, this.queueDepth - this.outstanding);
    const m = snAdd(this.expCmdSN, free - 1);
    if (snGt(m, this.maxCmdSN)) this.maxCmdSN = m;
    return this.maxCmdSN;
  }
}
