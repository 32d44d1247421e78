/**
 * The write splitter's consistency groups (src/splitter; README "Splitter and replicas"):
 *   GET  /v1/groups                    every group's status
 *   GET  /v1/groups/:group             one group
 *   POST /v1/groups/:group/verify      {copy?}: drain the journal, compare production with the copy
 *   POST /v1/groups/:group/bookmarks   {name}: name the current point in the group's write sequence
 * The work is done by the plain functions of src/splitter/admin.ts; this file gives them schemas
 * and turns their errors into AdminError (400 naming the field, 404 for an unknown group or copy).
 */
import type { FastifyInstance } from 'fastify';
import type { AdminDeps } from '../api.ts';
import { AdminError, ERROR_REPLY } from '../errors.ts';
import { SplitterInputError, SplitterNotFound, bookmark, listGroups, showGroup, verify } from '../../splitter/admin.ts';

const POLICY = { type: 'string', enum: ['support', 'reject', 'ignore'] } as const;
const TRANSFER = { type: 'string', enum: ['init', 'active', 'paused', 'error'] } as const;
const PRIMITIVE_COUNTS = {
  type: 'object', description: 'commands production ran that no copy received (policy ignore), per primitive',
  properties: { ats: { type: 'integer' }, xcopy: { type: 'integer' }, writesame: { type: 'integer' }, unmap: { type: 'integer' } },
  required: ['ats', 'xcopy', 'writesame', 'unmap'],
} as const;
const BOOKMARK = {
  type: 'object',
  properties: { name: { type: 'string' }, seq: { type: 'integer', description: 'the last journal sequence before it' }, time: { type: 'string' } },
  required: ['name', 'seq', 'time'],
} as const;

export const GROUP_STATUS = {
  type: 'object',
  description: 'a consistency group: state, transfer, splitter, journal and protection window, copies and their lag',
  properties: {
    name: { type: 'string' },
    state: { type: 'string', enum: ['enabled'] },
    transfer: TRANSFER,
    splitter: {
      type: 'object',
      properties: { spec: { type: 'string', description: 'the SPLITTER SPEC in force' }, kind: { type: 'string', enum: ['array', 'fabric', 'host'] } },
      required: ['spec', 'kind'],
    },
    replicationSets: {
      type: 'array',
      items: {
        type: 'object',
        properties: { lun: { type: 'integer' }, target: { type: 'string' }, blocks: { type: 'string' }, blockSize: { type: 'integer' } },
        required: ['lun', 'target', 'blocks', 'blockSize'],
      },
    },
    journal: {
      type: 'object',
      properties: {
        kind: { type: 'string', enum: ['memory'] },
        bytes: { type: 'integer' }, limitBytes: { type: 'integer' }, records: { type: 'integer' }, lastSeq: { type: 'integer' },
        evictedRecords: { type: 'integer', description: 'records pushed out by the size limit' },
        protectionWindow: {
          type: 'object',
          properties: {
            oldestSeq: { type: 'integer' }, newestSeq: { type: 'integer' }, oldestTime: { type: ['string', 'null'] },
            spanMs: { type: 'integer', description: 'how far back the journal reaches' },
          },
          required: ['oldestSeq', 'newestSeq', 'oldestTime', 'spanMs'],
        },
      },
      required: ['kind', 'bytes', 'limitBytes', 'records', 'lastSeq', 'evictedRecords', 'protectionWindow'],
    },
    copies: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          name: { type: 'string' }, kind: { type: 'string', enum: ['local'] }, appliedSeq: { type: 'integer' },
          lag: { type: 'object', properties: { records: { type: 'integer' }, bytes: { type: 'integer' } }, required: ['records', 'bytes'] },
        },
        required: ['name', 'kind', 'appliedSeq', 'lag'],
      },
    },
    initialization: {
      type: 'object',
      description: 'the first initialization: regions and bytes sent to the copies, of the volumes\' size',
      properties: { regions: { type: 'integer' }, bytesSent: { type: 'integer' }, volumeBytes: { type: 'integer' }, done: { type: 'boolean' } },
      required: ['regions', 'bytesSent', 'volumeBytes', 'done'],
    },
    bookmarks: { type: 'array', items: BOOKMARK },
    ignored: PRIMITIVE_COUNTS,
    history: {
      type: 'array',
      description: 'recent transfer state changes',
      items: {
        type: 'object',
        properties: { group: { type: 'string' }, from: TRANSFER, to: TRANSFER, reason: { type: 'string' }, time: { type: 'string' } },
        required: ['group', 'from', 'to', 'reason', 'time'],
      },
    },
  },
  required: ['name', 'state', 'transfer', 'splitter', 'replicationSets', 'journal', 'copies', 'initialization', 'bookmarks', 'ignored', 'history'],
} as const;

export const GROUPS_REPLY = { type: 'object', properties: { groups: { type: 'array', items: GROUP_STATUS } }, required: ['groups'] } as const;

export const VERIFY_REPLY = {
  type: 'object',
  description: 'production against the copy, after draining the journal',
  properties: {
    group: { type: 'string' }, copy: { type: 'string' }, consistent: { type: 'boolean' },
    seq: { type: 'integer', description: 'journal sequence the copy was drained to' },
    regions: {
      type: 'object',
      properties: { compared: { type: 'integer' }, skipped: { type: 'integer', description: 'unallocated on both sides' }, diverged: { type: 'integer' } },
      required: ['compared', 'skipped', 'diverged'],
    },
    bytesCompared: { type: 'integer' },
    diverged: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          lun: { type: 'integer' }, lba: { type: 'string' }, lbaEnd: { type: 'string', description: 'last LBA, inclusive' }, blocks: { type: 'integer' },
          causes: {
            type: 'array',
            description: 'ignored commands that wrote into the extent',
            items: {
              type: 'object',
              properties: { seq: { type: 'integer' }, name: { type: 'string' }, primitive: { type: 'string' }, initiator: { type: 'string' }, time: { type: 'string' } },
              required: ['seq', 'name', 'primitive', 'initiator', 'time'],
            },
          },
        },
        required: ['lun', 'lba', 'lbaEnd', 'blocks', 'causes'],
      },
    },
    ms: { type: 'integer' },
  },
  required: ['group', 'copy', 'consistent', 'seq', 'regions', 'bytesCompared', 'diverged', 'ms'],
} as const;

const PARAMS = {
  type: 'object', properties: { group: { type: 'string', minLength: 1, maxLength: 64, description: 'consistency group name' } }, required: ['group'],
} as const;
export const VERIFY_BODY = {
  type: 'object', additionalProperties: false,
  properties: { copy: { type: 'string', minLength: 1, maxLength: 64, description: 'the copy to compare (default: the group\'s first)' } },
} as const;
export const BOOKMARK_BODY = {
  type: 'object', additionalProperties: false,
  properties: { name: { type: 'string', minLength: 1, maxLength: 64, pattern: '^[\\w.:-]+$', description: 'bookmark name: letters, digits, . _ : -' } },
  required: ['name'],
} as const;
const NOT_FOUND = { ...ERROR_REPLY, description: 'no such group or copy' };

/** The splitter's errors as the admin API's: unknown group/copy 404, a bad field 400 naming it. */
async function admin<T>(f: () => T | Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (e) {
    if (e instanceof SplitterNotFound) throw new AdminError(404, e.message);
    if (e instanceof SplitterInputError) throw new AdminError(400, e.message, e.field, 'body');
    // A group whose transfer is not active cannot be drained: the request is refused, not failed.
    throw new AdminError(400, (e as Error).message);
  }
}

export function register(app: FastifyInstance, { array }: AdminDeps): void {
  app.get('/v1/groups', { schema: { summary: 'Every consistency group', tags: ['splitter'], response: { 200: GROUPS_REPLY } } },
    async () => listGroups(array));
  app.get<{ Params: { group: string } }>('/v1/groups/:group',
    { schema: { summary: 'One consistency group', tags: ['splitter'], params: PARAMS, response: { 200: GROUP_STATUS, 404: NOT_FOUND } } },
    async (req) => admin(() => showGroup(array, { group: req.params.group })));
  app.post<{ Params: { group: string }; Body: { copy?: string } }>('/v1/groups/:group/verify', {
    schema: {
      summary: 'Drain the journal and compare production with a copy; diverged extents with the ignored commands that caused them',
      tags: ['splitter'], params: PARAMS, body: VERIFY_BODY, response: { 200: VERIFY_REPLY, 404: NOT_FOUND },
    },
  }, async (req) => admin(() => verify(array, { group: req.params.group, copy: req.body?.copy })));
  app.post<{ Params: { group: string }; Body: { name: string } }>('/v1/groups/:group/bookmarks', {
    schema: {
      summary: 'Bookmark the current point of the group\'s write sequence', tags: ['splitter'], params: PARAMS, body: BOOKMARK_BODY,
      response: { 200: BOOKMARK, 404: NOT_FOUND },
    },
  }, async (req) => admin(() => bookmark(array, { group: req.params.group, name: req.body.name })));
}
