/**
 * Remote Copy (peer replication, README "Peer replication"):
 *   GET  /v1/rcopy/groups                      this array's groups: role, SyncStatus, link, policies, hosts, counters
 *   POST /v1/rcopy/groups/:group/start         startgroup (on the primary)
 *   POST /v1/rcopy/groups/:group/stop          stopgroup (on the primary)
 *   POST /v1/rcopy/groups/:group/hosts         admithost -proximity primary|secondary|all HOST GROUP
 *   POST /v1/rcopy/link                        fault injection: {action: cut|restore, latencyMs?}
 * State changes go through the group's machine, which logs them and publishes rcopy.group and
 * alua.state events.
 */
import type { FastifyInstance } from 'fastify';
import type { AdminDeps } from '../api.ts';
import { AdminError } from '../errors.ts';
import { PROXIMITIES } from '../../replication/group-machine.ts';
import type { Proximity } from '../../replication/group-machine.ts';
import type { RemoteCopy, ReplicationGroup } from '../../replication/engine.ts';

const SYNC_STATUS = { type: 'string', enum: ['Stopped', 'Syncing', 'Synced', 'Failsafe'] } as const;

export const GROUP_REPLY = {
  type: 'object',
  description: 'one Remote Copy group as this array sees it',
  properties: {
    name: { type: 'string' },
    role: { type: 'string', enum: ['primary', 'secondary'] },
    status: { ...SYNC_STATUS, description: 'SyncStatus (HPE showrcopy)' },
    started: { type: 'boolean', description: 'the operator wants it replicating (startgroup)' },
    link: { type: 'string', enum: ['up', 'down'] },
    peerArray: { type: ['string', 'null'] },
    policies: {
      type: 'object',
      properties: Object.fromEntries(['active_active', 'path_management', 'auto_failover', 'auto_recover', 'auto_synchronize'].map((k) => [k, { type: 'boolean' }])),
      required: ['active_active', 'path_management', 'auto_failover', 'auto_recover', 'auto_synchronize'],
    },
    hosts: { type: 'object', additionalProperties: { type: 'string', enum: [...PROXIMITIES] }, description: 'host proximity (initiator name → primary|secondary|all)' },
    seq: { type: 'string', description: 'last group sequence number assigned (primary) or applied (secondary)' },
    pending: { type: 'integer', description: 'writes waiting for the peer' },
    dirtyExtents: { type: 'integer', description: 'regions the secondary lacks (to resync)' },
    dirtyBlocks: { type: 'string' },
    volumes: { type: 'array', items: { type: 'object', properties: { target: { type: 'string' }, lun: { type: 'integer' }, wwn: { type: 'string' } }, required: ['target', 'lun', 'wwn'] } },
    stats: {
      type: 'object',
      properties: Object.fromEntries(['replicatedWrites', 'replicatedBytes', 'resyncBytes', 'resyncBlocks', 'linkUps', 'linkDowns'].map((k) => [k, { type: 'integer', minimum: 0 }])),
      required: ['replicatedWrites', 'replicatedBytes', 'resyncBytes', 'resyncBlocks', 'linkUps', 'linkDowns'],
    },
  },
  required: ['name', 'role', 'status', 'started', 'link', 'peerArray', 'policies', 'hosts', 'seq', 'pending', 'dirtyExtents', 'dirtyBlocks', 'volumes', 'stats'],
} as const;

export const GROUPS_REPLY = {
  type: 'object',
  description: "this array's Remote Copy groups and its replication link",
  properties: {
    array: { type: 'string', description: 'this array\'s name on the link (peers.name)' },
    link: {
      type: 'object',
      properties: {
        listen: { type: ['string', 'null'] }, peer: { type: ['string', 'null'] },
        cut: { type: 'boolean', description: 'fault injection: the link is held down' },
        latencyMs: { type: 'number', description: 'fault injection: added to every message this array sends' },
      },
      required: ['listen', 'peer', 'cut', 'latencyMs'],
    },
    groups: { type: 'array', items: GROUP_REPLY },
  },
  required: ['array', 'link', 'groups'],
} as const;

const GROUP_PARAMS = {
  type: 'object',
  properties: { group: { type: 'string', minLength: 1, maxLength: 64, description: 'Remote Copy group name' } },
  required: ['group'],
} as const;

export const ADMITHOST_BODY = {
  type: 'object',
  additionalProperties: false,
  properties: {
    host: { type: 'string', minLength: 1, maxLength: 223, description: 'initiator name' },
    proximity: { type: 'string', enum: [...PROXIMITIES], description: 'which array is local to the host (all: both)' },
  },
  required: ['host', 'proximity'],
} as const;

export const LINK_BODY = {
  type: 'object',
  additionalProperties: false,
  properties: {
    action: { type: 'string', enum: ['cut', 'restore'], description: 'cut: drop the link and keep it down; restore: let it come back' },
    latencyMs: { type: 'number', minimum: 0, maximum: 10_000, description: 'added to every message this array sends (rule of thumb: 1 ms round trip per 100 km)' },
  },
  anyOf: [{ required: ['action'] }, { required: ['latencyMs'] }],
} as const;

function remoteCopy(deps: AdminDeps): RemoteCopy {
  const rc = deps.array.rcopy;
  if (!rc) throw new AdminError(404, 'no Remote Copy on this array (the config has no peers:/rcopy: sections)');
  return rc;
}

function group(deps: AdminDeps, name: string): ReplicationGroup {
  const rc = remoteCopy(deps);
  const g = rc.groups.get(name);
  if (!g) throw new AdminError(404, `no Remote Copy group ${name} (have ${[...rc.groups.keys()].join(', ')})`, 'group', 'params');
  return g;
}

function verb(deps: AdminDeps, name: string, command: Parameters<ReplicationGroup['operator']>[0]['command']) {
  const g = group(deps, name);
  const refused = g.operator({ kind: 'operator', command });
  // startgroup with the link down is remembered (the group starts when the link returns): not an error.
  if (refused && !/link is down/.test(refused)) throw new AdminError(409, `${command.verb}: ${refused}`, 'group', 'params');
  return g.snapshot();
}

export function register(app: FastifyInstance, deps: AdminDeps): void {
  const one = { tags: ['rcopy'], params: GROUP_PARAMS, response: { 200: GROUP_REPLY } } as const;
  app.get('/v1/rcopy/groups', { schema: { summary: 'showrcopy: this array\'s groups and link', tags: ['rcopy'], response: { 200: GROUPS_REPLY } } }, async () => remoteCopy(deps).status());
  app.post<{ Params: { group: string } }>('/v1/rcopy/groups/:group/start', { schema: { ...one, summary: 'startrcopygroup (primary): start replicating, resync what the secondary lacks' } },
    async (req) => verb(deps, req.params.group, { verb: 'start' }));
  app.post<{ Params: { group: string } }>('/v1/rcopy/groups/:group/stop', { schema: { ...one, summary: 'stoprcopygroup (primary): stop replicating; the secondary stops serving' } },
    async (req) => verb(deps, req.params.group, { verb: 'stop' }));
  app.post<{ Params: { group: string }; Body: { host: string; proximity: Proximity } }>('/v1/rcopy/groups/:group/hosts',
    { schema: { ...one, body: ADMITHOST_BODY, summary: 'admitrcopyhost -proximity primary|secondary|all HOST GROUP' } },
    async (req) => verb(deps, req.params.group, { verb: 'admithost', host: req.body.host, proximity: req.body.proximity }));
  app.post<{ Body: { action?: 'cut' | 'restore'; latencyMs?: number } }>('/v1/rcopy/link',
    { schema: { summary: 'replication link fault injection: cut, restore, added latency', tags: ['rcopy'], body: LINK_BODY, response: { 200: GROUPS_REPLY } } },
    async (req) => { const rc = remoteCopy(deps); rc.setLink(req.body); return rc.status(); });
}
