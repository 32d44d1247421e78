/**
 * Store fault injection (src/store/fault.ts):
 *   GET  /v1/stores          every LU's store: kind, size, and its injected fault (null: healthy)
 *   POST /v1/stores/fault    {target, lun?, action: fail|repair, sense?}: the LU's RAID set or
 *                            metadata fails (every I/O answers MEDIUM ERROR or HARDWARE ERROR), or
 *                            is repaired. A replicated volume's group reacts as to an array failure
 *                            for it (README "Peer replication", store failure).
 */
import type { FastifyInstance } from 'fastify';
import type { AdminDeps } from '../api.ts';
import { AdminError } from '../errors.ts';
import { STORE_FAILURE_SENSES } from '../../store/store.ts';
import type { StoreFailureSense } from '../../store/store.ts';
import type { FaultStore } from '../../store/fault.ts';

const STORE = {
  type: 'object',
  properties: {
    target: { type: 'string' },
    lun: { type: 'integer' },
    kind: { type: 'string', enum: ['memory', 'file'] },
    blocks: { type: 'string' },
    blockSize: { type: 'integer' },
    fault: {
      type: ['object', 'null'],
      description: 'the injected failure (null: the store is healthy)',
      properties: { sense: { type: 'string', enum: [...STORE_FAILURE_SENSES] }, since: { type: 'string' } },
      required: ['sense', 'since'],
    },
    failedIos: { type: 'integer', description: 'I/Os refused because of a fault since the array started' },
  },
  required: ['target', 'lun', 'kind', 'blocks', 'blockSize', 'fault', 'failedIos'],
} as const;

const FAULT_BODY = {
  type: 'object',
  properties: {
    target: { type: 'string', minLength: 1, maxLength: 223 },
    lun: { type: 'integer', minimum: 0, default: 0 },
    action: { type: 'string', enum: ['fail', 'repair'] },
    sense: { type: 'string', enum: [...STORE_FAILURE_SENSES], default: 'medium-error', description: 'medium-error: 03/11/00 on reads, 03/0C/00 on writes; hardware-error: 04/44/00' },
  },
  required: ['target', 'action'],
  additionalProperties: false,
} as const;

function view(target: string, lun: number, s: FaultStore) {
  return { target, lun, kind: s.kind, blocks: String(s.blockCount), blockSize: s.blockSize, fault: s.fault, failedIos: s.failedIos };
}

export function register(app: FastifyInstance, deps: AdminDeps): void {
  app.get('/v1/stores', { schema: { summary: 'every LU\'s backing store and its injected fault', tags: ['stores'], response: { 200: { type: 'object', properties: { stores: { type: 'array', items: STORE } }, required: ['stores'] } } } },
    async () => ({ stores: [...deps.array.storeFaults].flatMap(([t, m]) => [...m].map(([lun, s]) => view(t, lun, s))) }));
  app.post<{ Body: { target: string; lun: number; action: 'fail' | 'repair'; sense: StoreFailureSense } }>('/v1/stores/fault',
    { schema: { summary: 'store fault injection: the LU\'s RAID set or metadata fails (every I/O fails with the sense given) or is repaired', tags: ['stores'], body: FAULT_BODY, response: { 200: STORE } } },
    async (req) => {
      const { target, lun, action, sense } = req.body;
      const s = deps.array.storeFaults.get(target)?.get(lun);
      if (!s) throw new AdminError(404, `no LUN ${lun} on target ${target}`, 'target', 'body');
      s.set(action === 'fail' ? sense : null);
      deps.log.warn({ target, lun, fault: s.fault }, action === 'fail' ? 'store fault injected: every I/O fails' : 'store repaired');
      return view(target, lun, s);
    });
}
