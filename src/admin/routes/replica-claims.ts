/**
 * The remote array's side of a remote copy (CRR): the replica claims production's links hold on
 * this array's LUs (REPLICA CLAIM, src/scsi/replica-claim.ts), and the operator's way to release
 * one whose production is gone (a lost production site must not lock the DR site's volumes
 * forever: the field notes' failover and dd restore need them writable).
 *
 *   GET  /v1/replica-claims           every claim
 *   POST /v1/replica-claims/release   {"target"?: IQN, "lun"?: N}: release the claims that match (all without either)
 */
import type { FastifyInstance } from 'fastify';
import type { StorageArray } from '../../array.ts';
import type { AdminDeps } from '../api.ts';
import { AdminError } from '../errors.ts';
import { releaseClaim } from '../../scsi/replica-claim.ts';
import type { ReplicaClaim } from '../../scsi/replica-claim.ts';

export const REPLICA_CLAIM = {
  type: 'object',
  description: 'a remote copy\'s claim on this LU: every I_T nexus but the claim\'s gets NOT READY 02/04/03 for media commands',
  properties: {
    group: { type: 'string', description: 'the consistency group on the production array' },
    copy: { type: 'string', description: 'the copy of that group this LU is a replica volume of' },
    initiator: { type: 'string', description: 'production\'s link initiator name (the owner)' },
    since: { type: 'string', description: 'when it was first claimed (ISO time)' },
    linkLoggedIn: { type: 'boolean', description: 'whether the owner has a session with this target now (false: the link is down; the claim holds)' },
    appliedSeq: { type: ['integer', 'null'], description: 'the group sequence the claim\'s receive queue has applied (REPLICA RECORD): the remote LUs are production\'s image at it; null until a base is set or a record applied' },
    queued: { type: 'integer', description: 'records received ahead of their predecessor, waiting' },
    received: { type: 'integer', description: 'REPLICA RECORDs received (duplicates included)' },
    duplicates: { type: 'integer', description: 'records received that were already applied (answered GOOD, not written again)' },
    dropped: { type: 'integer', description: 'waiting records dropped (the link\'s session went, or a new base was set)' },
    undoBytes: { type: 'integer', description: 'undo data held: what the records applied since the window\'s start overwrote (src/scsi/replica-journal.ts)' },
    undoLimit: { type: 'integer', description: 'undo data kept at most (production\'s UNDO LIMIT, or the default); over it the oldest goes' },
    oldestImageSeq: { type: ['integer', 'null'], description: 'the protection window: the oldest group sequence an image can be presented at (null: none)' },
    undoLog: { type: ['string', 'null'], description: 'the folder the undo log is also kept in on disk, and taken back from after a restart (the array\'s replicaJournal, file-backed LUs); null: memory only' },
    image: {
      type: ['object', 'null'], description: 'the image presented to production\'s image access (null: none)',
      properties: { seq: { type: 'integer' }, direct: { type: 'boolean' } }, required: ['seq', 'direct'],
    },
  },
  required: ['group', 'copy', 'initiator', 'since', 'linkLoggedIn', 'appliedSeq', 'queued', 'received', 'duplicates', 'dropped', 'undoBytes', 'undoLimit', 'oldestImageSeq', 'image'],
} as const;

const CLAIM_ROW = {
  type: 'object',
  properties: { target: { type: 'string' }, lun: { type: 'integer' }, claim: REPLICA_CLAIM },
  required: ['target', 'lun', 'claim'],
} as const;

const CLAIMS_REPLY = { type: 'object', properties: { claims: { type: 'array', items: CLAIM_ROW } }, required: ['claims'] } as const;
const RELEASE_REPLY = {
  type: 'object', description: 'the claims released (empty: none matched)',
  properties: { released: { type: 'array', items: CLAIM_ROW } }, required: ['released'],
} as const;
export const RELEASE_BODY = {
  type: ['object', 'null'],
  properties: {
    target: { type: 'string', description: 'only this target\'s LUs (default: every target)' },
    lun: { type: 'integer', minimum: 0, description: 'only this LUN (default: every LUN)' },
    reason: { type: 'string', description: 'logged with the release' },
  },
  additionalProperties: false,
} as const;

/** The claim on `lu` as the API shows it (null: not claimed). */
export function claimOf(a: StorageArray, target: string, claim: ReplicaClaim | null) {
  if (!claim) return null;
  const linkLoggedIn = [...a.server.sessions].some((s) => s.targetConfig?.name === target && s.initiatorName === claim.initiator);
  const r = claim.receiver;
  return {
    group: claim.group, copy: claim.copy, initiator: claim.initiator, since: claim.since, linkLoggedIn,
    appliedSeq: r.valid ? r.applied : null, queued: r.queued, received: r.counters.received, duplicates: r.counters.duplicates, dropped: r.counters.dropped,
    undoBytes: r.journal.undo.bytes, undoLimit: r.journal.limit, oldestImageSeq: r.journal.floor, undoLog: r.journal.log?.dir ?? null,
    image: r.journal.presentation && { seq: r.journal.presentation.seq, direct: r.journal.presentation.direct },
  };
}

function claims(a: StorageArray, target?: string, lun?: number) {
  if (target !== undefined && !a.scsiTargets.has(target)) throw new AdminError(404, `no target ${target}`, 'target', 'body');
  const out = [];
  for (const t of a.scsiTargets.values()) {
    if (target !== undefined && t.name !== target) continue;
    for (const lu of t.luns.values()) if (lu.replicaClaim && (lun === undefined || lu.lun === lun)) out.push({ t, lu });
  }
  return out;
}

export function register(app: FastifyInstance, { array: a, log }: AdminDeps): void {
  app.get('/v1/replica-claims', {
    schema: { summary: 'Replica claims production arrays hold on this array\'s LUs (remote copies, REPLICA CLAIM)', tags: ['splitter'], response: { 200: CLAIMS_REPLY } },
  }, async () => ({ claims: claims(a).map(({ t, lu }) => ({ target: t.name, lun: lu.lun, claim: claimOf(a, t.name, lu.replicaClaim)! })) }));
  app.post<{ Body: { target?: string; lun?: number; reason?: string } | null }>('/v1/replica-claims/release', {
    schema: {
      summary: 'Release replica claims on this array (the remote site\'s operator, when production is gone): the LUs answer every host again',
      tags: ['splitter'], body: RELEASE_BODY, response: { 200: RELEASE_REPLY },
    },
  }, async (req) => {
    const b = req.body ?? {};
    const released = claims(a, b.target, b.lun).map(({ t, lu }) => {
      const row = { target: t.name, lun: lu.lun, claim: claimOf(a, t.name, lu.replicaClaim)! };
      releaseClaim(lu, `operator: ${b.reason ?? 'POST /v1/replica-claims/release'}`);
      return row;
    });
    log.info({ released: released.map((r) => `${r.target}/${r.lun}`) }, 'replica claims released by the operator');
    return { released };
  });
}
