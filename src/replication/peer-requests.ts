/**
 * What the peer sends a Remote Copy group (replication-group.ts), by kind: replicated writes and
 * acks go to the group machine; at the primary, a write the secondary forwarded is ordered under
 * this array's range lock like a local one, and COMPARE AND WRITE and PERSISTENT RESERVE OUT the
 * secondary sent are executed here and answered (caw-forward.ts, pr-replication.ts hand them
 * over at the secondary). Split from the group's shell by phase, as LIO splits its target: the
 * requests a peer makes of this array, apart from the link that carries them (link-session.ts).
 */
import type { LinkMessage } from '../../protocol/replication/link.ts';
import { exclusive } from '../scsi/range-lock.ts';
import { compareAndWrite } from '../scsi/sbc-ats.ts';
import { SenseError } from '../scsi/types.ts';
import type { PrOutResult, WriteOp } from './group-types.ts';
import { waited } from './origin-wait.ts';
import { executeForwardedProut, prHooks } from './pr-replication.ts';
import type { ReplicationGroup } from './replication-group.ts';

/** A message from the peer once the link is up (link-session.ts), in the order it was sent. */
export function receive(g: ReplicationGroup, m: LinkMessage): void {
  switch (m.type) {
    case 'write': case 'write-same': case 'unmap':
      if (m.forwarded && g.role === 'primary') { orderForwarded(g, m); return; }
      break;
    case 'compare-and-write':
      if (g.role === 'primary') { compareAndWriteHere(g, m); return; }
      g.send({ type: 'compare-and-write-result', id: m.id, outcome: 'failed', offset: 0 });
      return;
    case 'pr-out': prOutHere(g, m); return;
  }
  g.step({ kind: 'peer', message: m });
}

/** A write the secondary forwarded: ordered here like a local one, under this array's range lock. */
function orderForwarded(g: ReplicationGroup, m: Extract<LinkMessage, { type: 'write' | 'write-same' | 'unmap' }>): void {
  const lu = g.volumes[m.volume];
  if (!lu) { g.send({ type: 'ack', forwarded: true, seq: m.seq, status: 'no-such-volume' }); return; }
  // Gated at the secondary by a PR state this array is replacing: refused, the host's retry is gated anew (GroupMachine.prPending).
  if (g.machine.prPending(m.volume) && !prHooks.noForwardFence) { g.send({ type: 'ack', forwarded: true, seq: m.seq, status: 'pr-changed' }); return; }
  const origin = waited('forwarded', m.seq);
  let op: WriteOp;
  let lba: bigint;
  let blocks: bigint;
  if (m.type === 'write') {
    op = { kind: 'write', volume: m.volume, lba: m.lba, blocks: m.data.length / lu.blockSize, fua: m.fua, data: m.data };
    lba = m.lba; blocks = BigInt(op.blocks);
  } else if (m.type === 'write-same') {
    op = { kind: 'write-same', volume: m.volume, lba: m.lba, blocks: m.blocks, unmap: m.unmap, block: m.block };
    lba = m.lba; blocks = BigInt(m.blocks);
  } else {
    op = { kind: 'unmap', volume: m.volume, ranges: m.ranges };
    lba = m.ranges.reduce((x, r) => (r.lba < x ? r.lba : x), lu.blockCount);
    const end = m.ranges.reduce((x, r) => (r.lba + BigInt(r.blocks) > x ? r.lba + BigInt(r.blocks) : x), 0n);
    blocks = end > lba ? end - lba : 0n;
  }
  const r = exclusive(lu, lba, blocks, () => g.await(origin, { kind: 'host-write', origin, op, now: Date.now() }));
  if (r instanceof Promise) r.catch(() => {}); // the outcome went back on the link as the ack
}

/**
 * PERSISTENT RESERVE OUT from the secondary: executed here, its new state replicated (ordered
 * with the writes) before the answer goes back, so the secondary holds it when its host hears.
 */
function prOutHere(g: ReplicationGroup, m: Extract<LinkMessage, { type: 'pr-out' }>): void {
  const reply = (status: number, reason = '', fieldPointer: PrOutResult['fieldPointer'] = null) => g.send({ type: 'pr-out-result', id: m.id, status, reason, fieldPointer });
  const lu = g.volumes[m.volume];
  if (!lu) { reply(0x02, 'LogicalUnitNotSupported'); return; }
  if (g.role !== 'primary' || !g.machine.serving) { reply(0x02, 'NotReadyAluaUnavailable'); return; }
  const { result, state } = executeForwardedProut(lu, m);
  const answer = () => reply(result.status, result.reason, result.fieldPointer);
  if (!state || prHooks.skipReplication) { answer(); return; }
  const fail = (e: unknown) => reply(0x02, e instanceof SenseError ? e.reason : 'CommandAborted');
  try {
    const w = g.write({ kind: 'pr-state', volume: m.volume, state });
    if (w instanceof Promise) w.then(answer, fail);
    else answer();
  } catch (e) { fail(e); }
}

/** COMPARE AND WRITE from the secondary: run here under the range lock; its write replicates like any other. */
function compareAndWriteHere(g: ReplicationGroup, m: Extract<LinkMessage, { type: 'compare-and-write' }>): void {
  const lu = g.volumes[m.volume];
  const reply = (outcome: 'written' | 'miscompare' | 'failed' | 'retry', offset = 0) => g.send({ type: 'compare-and-write-result', id: m.id, outcome, offset });
  if (!lu) { reply('failed'); return; }
  // Gated at the secondary by a PR state this array is replacing, as for forwarded writes (orderForwarded).
  if (g.machine.prPending(m.volume) && !prHooks.noForwardFence) { reply('retry'); return; }
  const onErr = (e: unknown) => {
    if (e instanceof SenseError && e.reason === 'MiscompareDuringVerify') reply('miscompare', Number(e.detail.information ?? 0));
    else reply('failed');
  };
  try {
    const r = exclusive(lu, m.lba, m.blocks, () => compareAndWrite(lu, m.lba, m.blocks, m.verify, m.data, m.fua));
    if (r instanceof Promise) r.then(() => reply('written'), onErr);
    else reply('written');
  } catch (e) { onErr(e); }
}
