/**
 * SANITIZE on a replicated volume (README "Peer replication", SANITIZE). Its effect is
 * replicated as compact records: the sanitize writes the LU through its store in 64 MiB pieces
 * (sbc-medium.ts), and on a replicated volume each piece is a WRITE SAME of the overwrite
 * pattern, or an UNMAP (or a WRITE SAME of zeros on a thick store) for BLOCK ERASE and
 * CRYPTOGRAPHIC ERASE, ordered with the writes like any other (a block and a count on the link,
 * not the data). So both arrays end the same, whichever array ran it.
 *
 * It is refused while the group does not replicate synchronously (the primary writing alone
 * during an outage): the other array would keep the data until a resync, and a failover to it
 * before then would bring the data back, which is what a sanitize must never do. ILLEGAL
 * REQUEST, COMMAND SEQUENCE ERROR (05/2C/00): not retried, does not fail a path; the operator
 * resynchronises the group (or removes the volume from it) and sanitizes then. An array that
 * does not serve the group answers 04/0C from the ALUA gate, as for writes.
 */
import type { LogicalUnit } from '../scsi/lu.ts';
import type { ScsiRequest, ScsiResponse } from '../scsi/types.ts';

const SANITIZE = 0x48;
/** EXIT FAILURE MODE writes nothing (SBC-4 §5.26.5). */
const EXIT_FAILURE_MODE = 0x1f;

export interface SanitizeSink {
  /** The group serves host I/O on this array now. */
  readonly serving: boolean;
  /** Writes reach both arrays before GOOD (Synced or Syncing over a live link). */
  readonly replicating: boolean;
}

export function gateSanitize(lu: LogicalUnit, group: SanitizeSink): void {
  const submit = lu.submit.bind(lu);
  lu.submit = (req: ScsiRequest): ScsiResponse | Promise<ScsiResponse> => {
    if (req.cdb[0] !== SANITIZE || (req.cdb[1] & 0x1f) === EXIT_FAILURE_MODE || group.replicating || !group.serving) return submit(req);
    // The unit attention first, as the pipeline would.
    const ua = lu.ua.take(req.nexus.key);
    if (ua) return lu.check(ua.reason, ua.detail);
    lu.target.log?.warn({ lun: lu.lun }, 'SANITIZE refused: the Remote Copy group is not replicating, so the other array would keep the data');
    lu.stats.errors++;
    return lu.check('CommandSequenceError');
  };
}
