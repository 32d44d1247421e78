/**
 * What the replica tests (replica-claim.test.ts, replica-journal.test.ts) share: a REPLICA RECORD
 * sent through the LU's front door, and an I_T nexus logged in with its unit attentions consumed.
 */
import { encodeReplicaRecordCdb, encodeReplicaRecordHeader, ReplicaRecordKind } from '../../protocol/scsi/replica-claim.ts';
import type { Nexus, ScsiRequest, ScsiResponse } from '../../src/scsi/types.ts';
import { TaskAttribute } from '../../src/scsi/types.ts';
import { makeNexus } from './sbc-fixture.ts';
import type { Lun } from './sbc-fixture.ts';

/** A WRITE record of `blocks` blocks of byte `fill` at `lba`; not awaited (a record that waits answers once applied). */
export function record(l: Lun, nexus: Nexus, seq: number, prev: number, lba: number, blocks: number, fill: number): Promise<ScsiResponse> {
  const out = Buffer.alloc(16 + blocks * 512, fill);
  encodeReplicaRecordHeader(out, seq, prev);
  const req: ScsiRequest = {
    lun: 0, cdb: encodeReplicaRecordCdb({ kind: ReplicaRecordKind.Write, lba: BigInt(lba), blocks }), nexus, taskTag: seq,
    attr: TaskAttribute.Simple, expectedLength: out.length, isRead: false, isWrite: true, dataOut: out,
  };
  return Promise.resolve(l.lu.submit(req));
}

/** `initiator` logged in to the LU's target (its power-on unit attention consumed). */
export function up(l: Lun, initiator: string, isid: string): Nexus {
  const n = makeNexus(initiator, isid);
  l.target.nexusUp(n);
  l.lu.ua.forget(n.key);
  return n;
}
