/**
 * The write splitter's consistency groups (src/splitter; README "Splitter and replicas"):
 *   GET  /v1/groups                    every group's status
 *   GET  /v1/groups/:group             one group
 *   POST /v1/groups/:group/verify      {copy?}: drain the journal, compare production with the copy
 *   POST /v1/groups/:group/bookmarks   {name}: name the current point in the group's write sequence
 *   POST /v1/groups/:group/<verb>      RecoverPoint's operator verbs (enable_group, disable_group,
 *                                      clear_markers, start_transfer, pause_transfer, enable_image_access,
 *                                      set_image_access_mode, disable_image_access, disable_copy, enable_copy)
 * The work is done by the plain functions of src/splitter/admin.ts; this file gives them schemas
 * and turns their errors into AdminError (400 naming the field, 404 for an unknown group or copy).
 */
import type { FastifyInstance } from 'fastify';
import type { AdminDeps } from '../api.ts';
import { AdminError, ERROR_REPLY } from '../errors.ts';
import {
  SplitterInputError, SplitterNotFound, SplitterStateError, bookmark, clearMarkers, disableCopy, disableGroup, disableImageAccess, enableCopy, enableGroup,
  enableImageAccess, listGroups, pauseTransfer, setImageAccessMode, showGroup, startTransfer, verify,
} from '../../splitter/admin.ts';

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

const SYNC = {
  type: 'object',
  properties: {
    kind: { type: 'string', enum: ['none', 'full-sweep', 'markers'] },
    regions: { type: 'integer', description: 'regions sent' }, regionsCompared: { type: 'integer', description: 'regions digested on both sides (full sweep)' },
    bytesSent: { type: 'integer' }, volumeBytes: { type: 'integer' }, done: { type: 'boolean' },
  },
  required: ['kind', 'regions', 'regionsCompared', 'bytesSent', 'volumeBytes', 'done'],
} as const;

export const GROUP_STATUS = {
  type: 'object',
  description: 'a consistency group: state, transfer, splitter, journal and protection window, copies and their lag',
  properties: {
    name: { type: 'string' },
    state: { type: 'string', enum: ['enabled', 'disabled'] },
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
        kind: { type: 'string', enum: ['memory', 'file'], description: 'file: groups[].journal {type: file} (README "Splitter and replicas", file journal)' },
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
          name: { type: 'string' }, kind: { type: 'string', enum: ['local', 'remote'], description: 'local: CDP, replicas on this array; remote: CRR, replicas on another arraysim over iSCSI' },
          enabled: { type: 'boolean', description: 'false after disable_copy: not distributed to, its regions marked' },
          access: { type: 'string', enum: ['no-access', 'logged-access', 'direct-access', 'virtual-access'], description: 'RecoverPoint\'s storage access state: image access to the copy, or none (its LUs answer NOT READY 02/04/03)' },
          appliedSeq: { type: 'integer' },
          lag: { type: 'object', properties: { records: { type: 'integer' }, bytes: { type: 'integer' } }, required: ['records', 'bytes'] },
          image: {
            type: ['object', 'null'], description: 'the image accessed (enable_image_access)',
            properties: {
              image: { type: 'string' }, seq: { type: 'integer' }, bookmark: { type: ['string', 'null'] },
              rolledFrom: { type: 'integer', description: 'the sequence the replica was at before the roll' }, enabledAt: { type: 'string' },
              writes: { type: 'integer', description: 'host writes to the image' }, logBytes: { type: 'integer', description: 'image-access log (logged access): bytes saved to undo them' },
              virtual: {
                type: ['object', 'null'], description: 'virtual access: the read map over the replica and the host\'s overlay; null in logged or direct access',
                properties: {
                  mapRuns: { type: 'integer', description: 'runs of blocks read from undo data instead of the replica' },
                  mapBlocks: { type: 'integer' }, mapMs: { type: 'number', description: 'time to build the map at enable' },
                  overlayBlocks: { type: 'integer', description: 'blocks the host wrote to the image (dropped on disable)' },
                },
              },
            },
            required: ['image', 'seq', 'bookmark', 'rolledFrom', 'enabledAt', 'writes', 'logBytes'],
          },
          oldestImageSeq: { type: ['integer', 'null'], description: 'the oldest image enable_image_access can reach; null: none until the copy is synchronized' },
          undoBytes: { type: 'integer', description: 'undo data kept for rolling the replica back (memory; a remote copy: what its remote array holds)' },
          synchronization: { ...SYNC, type: ['object', 'null'], description: 'the last synchronization of this copy alone (enable_copy, after direct access)' },
          link: {
            type: 'object', description: 'a remote copy\'s link to the remote array (absent for a local copy)',
            properties: {
              portal: { type: 'string' }, target: { type: 'string' }, luns: { type: 'array', items: { type: 'integer' } },
              rate: { type: ['string', 'null'], description: 'the rate limit each way, e.g. "50 Mbit/s"; null: none' },
              rateBytesPerSec: { type: ['number', 'null'] },
              connected: { type: 'boolean' },
              bytesSent: { type: 'integer', description: 'bytes sent to the remote array: SCSI payload plus 48 bytes per command' },
              bytesReceived: { type: 'integer', description: 'bytes received from it, counted the same way' },
              commands: { type: 'integer' }, logins: { type: 'integer' }, lastError: { type: ['string', 'null'] },
              claim: { enum: ['held', 'released', 'pending'], description: 'the remote LUs\' replica claim (REPLICA CLAIM): held: other hosts of the remote array get NOT READY 02/04/03; pending: not yet sent (link down)' },
              wantClaim: { type: 'boolean', description: 'whether this array wants the remote LUs claimed (group and copy enabled, no image access)' },
            },
            required: ['portal', 'target', 'luns', 'rate', 'rateBytesPerSec', 'connected', 'bytesSent', 'bytesReceived', 'commands', 'logins', 'lastError', 'claim', 'wantClaim'],
          },
          remoteJournal: {
            type: ['object', 'null'], description: 'a remote copy: the remote site\'s journal as it last reported it (REPLICA SEQUENCE; get_group_state asks when the link is up); null before it was asked',
            properties: {
              applied: { type: 'integer', description: 'the sequence the remote applied' }, valid: { type: 'boolean' },
              oldestImage: { type: ['integer', 'null'], description: 'the remote\'s protection window: the oldest image it can present (undo data kept back to it)' },
              image: { type: ['integer', 'null'], description: 'the image the remote presents (image access), or null' }, direct: { type: 'boolean' },
              undoBytes: { type: 'integer', description: 'undo data the remote holds for the copy' }, undoLimit: { type: 'integer', description: 'undo data it keeps at most' },
              asOf: { type: 'string', description: 'when it was asked (ISO time)' },
            },
            required: ['applied', 'valid', 'oldestImage', 'image', 'direct', 'undoBytes', 'undoLimit', 'asOf'],
          },
        },
        required: ['name', 'kind', 'enabled', 'access', 'appliedSeq', 'lag', 'image', 'oldestImageSeq', 'undoBytes', 'synchronization'],
      },
    },
    markers: {
      type: 'array',
      description: 'per copy: regions (1 MiB) written while the transfer was paused, and whether a full sweep is due',
      items: {
        type: 'object',
        properties: { copy: { type: 'string' }, regions: { type: 'integer' }, bytes: { type: 'integer' }, fullSweep: { type: 'boolean' } },
        required: ['copy', 'regions', 'bytes', 'fullSweep'],
      },
    },
    highLoad: { type: 'boolean', description: "high load: the journal is full of writes not yet distributed, so writes mark their regions until the copies catch up (README 'Splitter and replicas', high load)" },
    initialization: {
      type: 'object',
      description: 'the last synchronization (full sweep comparing region digests, or the marked regions): regions and bytes sent to the copies, of the volumes\' size',
      properties: { ...SYNC.properties, percent: { type: 'number', description: 'bytesSent of volumeBytes, %' } },
      required: [...SYNC.required, 'percent'],
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
  required: ['name', 'state', 'transfer', 'splitter', 'replicationSets', 'journal', 'copies', 'markers', 'highLoad', 'initialization', 'bookmarks', 'ignored', 'history'],
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
    image: {
      type: 'object', description: 'verify --image: the accessed image against production at `at`',
      properties: {
        at: { type: 'string' }, seq: { type: 'integer' }, accessed: { type: 'string' }, accessedSeq: { type: 'integer' }, mode: { type: 'string' },
        blocksNotCompared: { type: 'integer', description: 'blocks production wrote after the copy was rolled (no undo data for them)' },
        imageWrites: { type: 'integer' },
      },
      required: ['at', 'seq', 'accessed', 'accessedSeq', 'mode', 'blocksNotCompared', 'imageWrites'],
    },
  },
  required: ['group', 'copy', 'consistent', 'seq', 'regions', 'bytesCompared', 'diverged', 'ms'],
} as const;

const PARAMS = {
  type: 'object', properties: { group: { type: 'string', minLength: 1, maxLength: 64, description: 'consistency group name' } }, required: ['group'],
} as const;
export const VERIFY_BODY = {
  type: 'object', additionalProperties: false,
  properties: {
    copy: { type: 'string', minLength: 1, maxLength: 64, description: 'the copy to compare (default: the group\'s first)' },
    image: { type: 'boolean', description: 'true: compare the image the copy gives access to with production at `at` (verify --image)' },
    at: { type: 'string', minLength: 1, maxLength: 64, description: 'with image: latest, a bookmark, seq:N or an ISO time (default: the accessed image\'s own point)' },
  },
} as const;
export const BOOKMARK_BODY = {
  type: 'object', additionalProperties: false,
  properties: { name: { type: 'string', minLength: 1, maxLength: 64, pattern: '^[\\w.:-]+$', description: 'bookmark name: letters, digits, . _ : -' } },
  required: ['name'],
} as const;
const NOT_FOUND = { ...ERROR_REPLY, description: 'no such group or copy' };
const CONFLICT = { ...ERROR_REPLY, description: 'the group\'s state does not allow the verb (transfer not paused, group disabled, already enabled)' };

/** RecoverPoint's yes|no, as its CLI writes it. */
const YES_NO = { type: 'string', enum: ['yes', 'no'] } as const;
export const ENABLE_GROUP_BODY = {
  type: 'object', additionalProperties: false,
  properties: { start_transfer: { ...YES_NO, description: 'start the transfer at once (default yes); no: leave it paused, e.g. to clear_markers' } },
} as const;
export const CLEAR_MARKERS_BODY = {
  type: 'object', additionalProperties: false,
  properties: { copy: { type: 'string', minLength: 1, maxLength: 64, description: 'the copy declared identical to production (default: every copy)' } },
} as const;
export const EMPTY_BODY = { type: 'object', additionalProperties: false, properties: {} } as const;
const COPY = { type: 'string', minLength: 1, maxLength: 64, description: 'the copy' } as const;
const MODE = { type: 'string', enum: ['logged', 'direct'], description: 'logged: host writes to the image are undone on disable; direct: they go to the replica, and the copy\'s journal history is lost' } as const;
export const ENABLE_IMAGE_ACCESS_BODY = {
  type: 'object', additionalProperties: false, required: ['copy'],
  properties: {
    copy: COPY, image: { type: 'string', minLength: 1, maxLength: 64, description: 'latest (default), a bookmark, seq:N or an ISO time' },
    mode: {
      ...MODE, enum: [...MODE.enum, 'virtual'],
      description: `default logged. ${MODE.description}; virtual: the replica is not rolled, reads go through a map of the journal's undo data (enabling costs the index, no data), writes to an overlay dropped on disable`,
    },
  },
} as const;
export const SET_IMAGE_ACCESS_MODE_BODY = { type: 'object', additionalProperties: false, required: ['copy', 'mode'], properties: { copy: COPY, mode: MODE } } as const;
export const DISABLE_IMAGE_ACCESS_BODY = {
  type: 'object', additionalProperties: false, required: ['copy'],
  properties: { copy: COPY, start_transfer: { ...YES_NO, description: 'default yes; no leaves the group\'s transfer paused' } },
} as const;
export const COPY_BODY = { type: 'object', additionalProperties: false, required: ['copy'], properties: { copy: COPY } } as const;
const VERB_REPLY = {
  type: 'object', description: 'the verb done, and the group after it',
  properties: { verb: { type: 'string' }, copies: { type: 'array', items: { type: 'string' } }, group: GROUP_STATUS },
  required: ['verb', 'group'],
} as const;

/** The splitter's errors as the admin API's: unknown group/copy 404, a bad field 400 naming it. */
async function admin<T>(f: () => T | Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (e) {
    if (e instanceof SplitterNotFound) throw new AdminError(404, e.message);
    if (e instanceof SplitterInputError) throw new AdminError(400, e.message, e.field, 'body');
    if (e instanceof SplitterStateError) throw new AdminError(409, e.message);
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
  app.post<{ Params: { group: string }; Body: { copy?: string; image?: boolean; at?: string } }>('/v1/groups/:group/verify', {
    schema: {
      summary: 'Drain the journal and compare production with a copy; diverged extents with the ignored commands that caused them. image: true compares the accessed image with production at a point',
      tags: ['splitter'], params: PARAMS, body: VERIFY_BODY, response: { 200: VERIFY_REPLY, 404: NOT_FOUND },
    },
  }, async (req) => admin(() => verify(array, { group: req.params.group, copy: req.body?.copy, image: req.body?.image, at: req.body?.at })));
  app.post<{ Params: { group: string }; Body: { name: string } }>('/v1/groups/:group/bookmarks', {
    schema: {
      summary: 'Bookmark the current point of the group\'s write sequence', tags: ['splitter'], params: PARAMS, body: BOOKMARK_BODY,
      response: { 200: BOOKMARK, 404: NOT_FOUND },
    },
  }, async (req) => admin(() => bookmark(array, { group: req.params.group, name: req.body.name })));

  type Verb = { Params: { group: string }; Body: Record<string, string | undefined> | undefined };
  const verb = (name: string, summary: string, body: object, f: (group: string, b: Record<string, string | undefined>) => unknown) =>
    app.post<Verb>(`/v1/groups/:group/${name}`, {
      schema: { summary, tags: ['splitter'], params: PARAMS, body, response: { 200: VERB_REPLY, 404: NOT_FOUND, 409: CONFLICT } },
    }, async (req) => admin(() => f(req.params.group, req.body ?? {})));
  verb('enable_group', 'RecoverPoint enable_group: split and track again; start_transfer=no leaves the transfer paused', ENABLE_GROUP_BODY,
    (group, b) => enableGroup(array, { group, start_transfer: b.start_transfer }));
  verb('disable_group', 'RecoverPoint disable_group: stop the transfer and track nothing (a full sweep is due on enable)', EMPTY_BODY,
    (group) => disableGroup(array, { group }));
  verb('clear_markers', 'RecoverPoint clear_markers: declare a copy (default every copy) identical to production; transfer must be paused', CLEAR_MARKERS_BODY,
    (group, b) => clearMarkers(array, { group, copy: b.copy }));
  verb('start_transfer', 'RecoverPoint start_transfer: send the full sweep or the marked regions, then distribute the journal', EMPTY_BODY,
    (group) => startTransfer(array, { group }));
  verb('pause_transfer', 'RecoverPoint pause_transfer: stop distributing; writes mark their regions', EMPTY_BODY,
    (group) => pauseTransfer(array, { group }));
  verb('enable_image_access', 'RecoverPoint enable_image_access: roll the copy to an image (latest, bookmark, seq:N, time), or with mode=virtual map it over the unrolled replica, and open its target; distribution to it pauses',
    ENABLE_IMAGE_ACCESS_BODY, (group, b) => enableImageAccess(array, { group, copy: b.copy, image: b.image, mode: b.mode }));
  verb('set_image_access_mode', 'RecoverPoint set_image_access_mode: logged to direct (writes straight to the replica; the copy\'s journal history is lost)',
    SET_IMAGE_ACCESS_MODE_BODY, (group, b) => setImageAccessMode(array, { group, copy: b.copy, mode: b.mode }));
  verb('disable_image_access', 'RecoverPoint disable_image_access: undo the image\'s writes (logged) or sweep the copy (direct); distribution resumes',
    DISABLE_IMAGE_ACCESS_BODY, (group, b) => disableImageAccess(array, { group, copy: b.copy, start_transfer: b.start_transfer }));
  verb('disable_copy', 'Stop distributing to one copy (the others go on); production writes mark its regions', COPY_BODY,
    (group, b) => disableCopy(array, { group, copy: b.copy }));
  verb('enable_copy', 'Distribute to a disabled copy again: its marked regions first', COPY_BODY,
    (group, b) => enableCopy(array, { group, copy: b.copy }));
}
