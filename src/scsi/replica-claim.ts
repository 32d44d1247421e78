/**
 * REPLICA CLAIM (vendor specific, opcode C2h; layout in protocol/scsi/replica-claim.ts): how the
 * production array of a remote copy (CRR, src/splitter/link.ts) makes an LU of this array the
 * replica volume of copy C of consistency group G. While the claim holds, the LU answers every
 * media command from any other I_T nexus with CHECK CONDITION, NOT READY, LOGICAL UNIT NOT READY,
 * MANUAL INTERVENTION REQUIRED (02/04/03), as a local copy's replica LU does while image access is
 * disabled (src/splitter/copy-target.ts: INQUIRY, REPORT LUNS and REQUEST SENSE answer as usual,
 * SPC-5 §4.6.5); the claiming nexus (the link) reads and writes it.
 *
 * The claim is RecoverPoint's "no access" of a replica copy: the remote site's appliances hold the
 * replica volumes whatever the WAN does, so a lost link leaves the claim in place (the remote
 * volumes stay production's image at some sequence; a host at the remote site does not write into
 * them by accident). It belongs to the initiator name, not the session: production's link logs in
 * again (a new I_T nexus) and claims again, which moves the claim to the new nexus. Another
 * initiator's CLAIM or RELEASE while it holds is RESERVATION CONFLICT. What frees a claim whose
 * production is gone is the remote operator (`arraysim replica-claims release`, POST
 * /v1/replica-claims/release), as RecoverPoint's failover is run from the remote site. Claims live
 * in memory: a restarted remote array has none until production's link claims again.
 */
import {
  decodeReplicaClaimParams, REPLICA_CLAIM_OPCODE, ReplicaClaimAction, ReplicaClaimFormatError,
} from '../../protocol/scsi/replica-claim.ts';
import type { CommandDef } from './command.ts';
import { dataOut, invalidField, invalidParam, reserved } from './cdb.ts';
import type { LogicalUnit } from './lu.ts';
import { GOOD, ScsiStatus, SenseError, StatusError } from './types.ts';

/** The claim on one LU, as status shows it. */
export interface ReplicaClaim {
  group: string;
  copy: string;
  /** The owner: production's link initiator name. */
  initiator: string;
  /** The I_T nexus that reads and writes the LU (the link's current session). */
  nexusKey: string;
  since: string;
}

interface ReplicaClaimCmd { action: ReplicaClaimAction; length: number }

/** A parameter list of at most this many bytes (two names of 255 and the header). */
const MAX_PARAMETER_LIST = 16 + 255 + 255;

const REPLICA_CLAIM: CommandDef<ReplicaClaimCmd> = {
  opcode: REPLICA_CLAIM_OPCODE, name: 'REPLICA CLAIM (vendor specific)', cdbLength: 16,
  usage: [REPLICA_CLAIM_OPCODE, 0x1f, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0x04],
  // Not a media command: the link's new session must be able to claim an LU its old session
  // holds (so no medium gate), and a pending unit attention stays for the next command.
  dataDirection: 'out', reservation: 'allowed', alua: 'unavailable-ok', ua: 'skip', splitter: 'none',
  decode: (cdb) => {
    const action = cdb[1] & 0x1f;
    if (action !== ReplicaClaimAction.Claim && action !== ReplicaClaimAction.Release) throw invalidField(1);
    reserved(cdb, 1, 0xe0);
    for (const b of [2, 3, 4, 5, 6, 7, 8, 9, 14]) reserved(cdb, b, 0xff);
    const length = cdb.readUInt32BE(10);
    if (length > MAX_PARAMETER_LIST) throw invalidField(10);
    return { action, length };
  },
  execute: ({ lu, req }, c) => {
    let p;
    try {
      p = decodeReplicaClaimParams(dataOut(req, c.length));
    } catch (e) {
      if (!(e instanceof ReplicaClaimFormatError)) throw e;
      if (e.reason === 'ParameterListLengthError') throw new SenseError('ParameterListLengthError');
      throw invalidParam(e.byte ?? 0);
    }
    const held = lu.replicaClaim;
    const owner = req.nexus.initiatorName;
    const same = held !== null && held.initiator === owner && held.group === p.group && held.copy === p.copy;
    if (held && !same) throw new StatusError(ScsiStatus.ReservationConflict);
    if (c.action === ReplicaClaimAction.Release) {
      if (held) releaseClaim(lu, `released by ${owner}`);
      return GOOD;
    }
    if (held?.nexusKey !== req.nexus.key) {
      lu.replicaClaim = { group: p.group, copy: p.copy, initiator: owner, nexusKey: req.nexus.key, since: held?.since ?? new Date().toISOString() };
      lu.target.log?.info({ lun: lu.lun, group: p.group, copy: p.copy, initiator: owner, nexus: req.nexus.key, moved: !!held }, 'replica claimed');
    }
    return GOOD;
  },
};

/** Drop the claim on `lu` (the owner's RELEASE, or the operator). Returns the claim dropped. */
export function releaseClaim(lu: LogicalUnit, reason: string): ReplicaClaim | null {
  const held = lu.replicaClaim;
  if (!held) return null;
  lu.replicaClaim = null;
  lu.target.log?.info({ lun: lu.lun, group: held.group, copy: held.copy, initiator: held.initiator, reason }, 'replica claim released');
  return held;
}

export const REPLICA_COMMANDS: CommandDef[] = [REPLICA_CLAIM];
