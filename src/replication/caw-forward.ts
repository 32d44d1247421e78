/**
 * COMPARE AND WRITE on a replicated volume is executed at one place, the primary, so that two
 * hosts racing ATS on one lock block through different arrays never both win (SBC-4 §5.3: the
 * compare and the write are one operation). At the secondary the command runs the LU's gates
 * in the pipeline's order (lu.ts: unit attention, CONTROL byte, background operation, decode,
 * ALUA, reservations, medium) and then, instead of comparing locally, goes to the primary, which
 * runs it under its range lock; the write, if any, comes back replicated before the answer.
 */
import type { CompareAndWriteCmd } from '../scsi/sbc-ats.ts';
import { checkWritable } from '../scsi/sbc-common.ts';
import { splitGate } from '../scsi/split.ts';
import type { LogicalUnit } from '../scsi/lu.ts';
import { GOOD, ScsiStatus, SenseError } from '../scsi/types.ts';
import type { ScsiRequest, ScsiResponse } from '../scsi/types.ts';

const COMPARE_AND_WRITE = 0x89;

export interface CompareAndWriteSink {
  readonly role: 'primary' | 'secondary';
  compareAndWrite(req: { volume: number; lba: bigint; blocks: number; fua: boolean; verify: Buffer; data: Buffer }): void | Promise<void>;
}

export function interceptCompareAndWrite(lu: LogicalUnit, group: CompareAndWriteSink): void {
  const submit = lu.submit.bind(lu);
  lu.submit = (req: ScsiRequest): ScsiResponse | Promise<ScsiResponse> => {
    if (req.cdb[0] !== COMPARE_AND_WRITE || group.role !== 'secondary') return submit(req);
    lu.stats.commands++;
    try {
      const def = lu.lookup(req.cdb)!;
      const ua = lu.ua.take(req.nexus.key);
      if (ua) return lu.check(ua.reason, ua.detail);
      if (req.cdb[def.cdbLength - 1] & 0x04) throw new SenseError('InvalidFieldInCdb', { fieldPointer: { inCdb: true, byte: def.cdbLength - 1, bit: 2 } });
      const op = lu.operation;
      if (op && !op.allows(def)) throw new SenseError(op.reason, { progress: op.progress() });
      const cmd = def.decode(req.cdb, lu, req) as CompareAndWriteCmd;
      lu.target.alua.gate(def, lu, req.nexus);
      lu.reservations.gate(def, req, cmd);
      lu.mediumGate();
      // A splitter's reject policy for ATS applies here too; its recorder does not see the write
      // (it comes back from the primary as a replicated write: README "Peer replication").
      if (lu.protection !== null) splitGate(def, cmd, lu, req);
      if (cmd.blocks === 0) return GOOD;
      checkWritable(lu);
      const len = cmd.blocks * lu.blockSize;
      const d = req.dataOut!;
      const resp: ScsiResponse = { status: ScsiStatus.Good, data: null, sense: null, dataOutLength: 2 * len };
      const volume = (lu.store as unknown as { volume: number }).volume;
      const r = group.compareAndWrite({
        volume, lba: cmd.lba, blocks: cmd.blocks, fua: cmd.fua,
        verify: Buffer.from(d.subarray(0, len)), data: Buffer.from(d.subarray(len, 2 * len)),
      });
      if (r instanceof Promise) return r.then(() => resp, (e) => lu.fail(e, req));
      return resp;
    } catch (e) {
      return lu.fail(e, req);
    }
  };
}
