/**
 * Remote Copy (peer replication, README "Peer replication"):
 *   GET  /v1/rcopy/groups                      this array's groups: role, SyncStatus, link, policies, hosts, counters
 *   POST /v1/rcopy/groups/:group/start         startgroup (on the primary)
 *   POST /v1/rcopy/groups/:group/stop          stopgroup (on the primary)
 *   POST /v1/rcopy/groups/:group/hosts         admithost -proximity primary|secondary|all HOST GROUP
 *   POST /v1/rcopy/groups/:group/failover      setrcopygroup failover (on the secondary; with a witness, when it grants)
 *   POST /v1/rcopy/groups/:group/recover       setrcopygroup recover (on the array failed over to)
 *   POST /v1/rcopy/groups/:group/restore       setrcopygroup restore (primary-rev gives the role back)
 *   POST /v1/rcopy/groups/:group/reverse       setrcopygroup reverse (swap roles, new natural direction)
 *   GET  /v1/rcopy/witness                     witness status: connection and each group's last verdict
 *   POST /v1/rcopy/witness                     fault injection: {action: cut|restore} this array's witness connection
 *   POST /v1/rcopy/link                        fault injection: {action?: cut|restore, latencyMs?, lossPercent?, oneWay?: out|in|null, seed?}
 * State changes go through the group's machine, which logs them and publishes rcopy.group and
 * alua.state events.
 */
import type { FastifyInstance } from 'fastify';
import type { AdminDeps } from '../api.ts';
import { AdminError } from '../errors.ts';
import { PROXIMITIES } from '../../replication/group-machine.ts';
import type { Proximity } from '../../replication/group-machine.ts';
import type { RemoteCopy, ReplicationGroup } from '../../replication/engine.ts';
import { MAX_LATENCY_MS } from '../../replication/link-faults.ts';
import type { LinkFaultRequest } from '../../replication/link-faults.ts';

const SYNC_STATUS = { type: 'string', enum: ['Stopped', 'Syncing', 'Synced', 'Failsafe'] } as const;
const ROLE = { type: 'string', enum: ['primary', 'secondary'] } as const;

const WITNESS_VIEW_PROPS = {
  reachable: { type: 'boolean', description: 'a verdict arrived within the lease' },
  owner: { type: 'string', description: 'the array the witness lets write when the pair is not in sync (\'\': none yet)' },
  epoch: { type: 'integer' },
  peerSight: { type: ['string', 'null'], enum: ['unknown', 'alive', 'lost', null], description: 'the other array as the witness last saw it' },
  recorded: { type: ['string', 'null'], enum: ['Stopped', 'Syncing', 'Synced', 'Failsafe', null], description: 'this array\'s status as the witness recorded it' },
  leaseUntil: { type: 'number', description: 'ms since 1970 until which this array may write alone (0: no lease)' },
  failoverRequested: { type: 'boolean' },
} as const;

export const WITNESS_VIEW = {
  type: ['object', 'null'],
  description: 'the quorum witness as this group last heard it (null: no peers.witness)',
  properties: WITNESS_VIEW_PROPS,
  required: Object.keys(WITNESS_VIEW_PROPS),
} as const;

export const GROUP_REPLY = {
  type: 'object',
  description: 'one Remote Copy group as this array sees it',
  properties: {
    name: { type: 'string' },
    role: ROLE,
    naturalRole: { ...ROLE, description: 'the role the configuration (or the last reverse) gives this array' },
    roleName: { type: 'string', enum: ['Primary', 'Secondary', 'Primary-Rev', 'Secondary-Rev'], description: 'HPE showrcopy role' },
    epoch: { type: 'integer', description: 'raised by every failover and role swap' },
    serving: { type: 'boolean', description: 'this array serves host I/O for the group now (else its paths answer 04/0C)' },
    witness: WITNESS_VIEW,
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
    operatorNeeded: { type: ['string', 'null'], description: 'why the group cannot become Synced without the operator (Failsafe, not started, Stopped with auto_recover off); null: Synced, or it gets there by itself' },
    storeFailure: { type: ['string', 'null'], description: 'a volume\'s store has failed (POST /v1/stores/fault): the group is not served here until it is repaired' },
    volumes: { type: 'array', items: { type: 'object', properties: { target: { type: 'string' }, lun: { type: 'integer' }, wwn: { type: 'string' } }, required: ['target', 'lun', 'wwn'] } },
    stats: {
      type: 'object',
      properties: Object.fromEntries(['replicatedWrites', 'replicatedBytes', 'resyncBytes', 'resyncBlocks', 'resyncRecords', 'linkUps', 'linkDowns', 'lastResyncBytes', 'lastResyncMs'].map((k) => [k, { type: 'integer', minimum: 0 }])),
      required: ['replicatedWrites', 'replicatedBytes', 'resyncBytes', 'resyncBlocks', 'linkUps', 'linkDowns', 'lastResyncBytes', 'lastResyncMs'],
      description: 'resyncBytes: all resyncs since start; lastResync*: the last completed resync (data bytes sent, milliseconds from Syncing to Synced)',
    },
    meta: {
      type: 'object',
      description: 'the group\'s metadata file (role, epoch, dirty bitmap; README "Peer replication", restarts): null file for a group on memory volumes',
      properties: {
        file: { type: ['string', 'null'] }, load: { type: 'string', description: 'what this process found at start' }, flushes: { type: 'integer', minimum: 0 }, error: { type: ['string', 'null'] },
        activityLog: {
          type: ['object', 'null'],
          description: 'the primary\'s activity log beside the metadata file (extents that may hold writes the peer lacks; resent after a kill while Synced): null with no metadata file',
          properties: { extents: { type: 'integer', minimum: 0 }, transactions: { type: 'integer', minimum: 0 }, error: { type: ['string', 'null'] } },
          required: ['extents', 'transactions', 'error'],
        },
      },
      required: ['file', 'load', 'flushes', 'error', 'activityLog'],
    },
  },
  required: ['name', 'role', 'naturalRole', 'roleName', 'epoch', 'serving', 'witness', 'status', 'started', 'link', 'peerArray', 'policies', 'hosts', 'seq', 'pending', 'dirtyExtents', 'dirtyBlocks', 'operatorNeeded', 'storeFailure', 'volumes', 'stats'],
} as const;

export const WITNESS_REPLY = {
  type: ['object', 'null'],
  description: 'this array\'s quorum witness connection (null: no peers.witness)',
  properties: {
    address: { type: 'string' },
    connected: { type: 'boolean' },
    witness: { type: ['string', 'null'], description: 'the witness\'s name from its last verdict' },
    lastVerdictMsAgo: { type: ['number', 'null'] },
    heartbeats: { type: 'integer' },
    verdicts: { type: 'integer' },
    cut: { type: 'boolean', description: 'fault injection: the witness connection is held down' },
    groups: { type: 'array', items: { type: 'object', properties: { group: { type: 'string' }, ...WITNESS_VIEW_PROPS }, required: ['group', ...Object.keys(WITNESS_VIEW_PROPS)] } },
  },
  required: ['address', 'connected', 'witness', 'lastVerdictMsAgo', 'heartbeats', 'verdicts', 'cut', 'groups'],
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
        lossPercent: { type: 'number', description: 'fault injection: chance that a frame this array sends is lost and waits for a TCP retransmission' },
        oneWay: { type: ['string', 'null'], enum: ['out', 'in', null], description: 'fault injection: one-way partition (out: what this array sends stops arriving; in: what it receives)' },
        seed: { type: 'integer', description: 'seed of the loss draws (POST it back to replay a loss pattern)' },
        framesShaped: { type: 'integer', minimum: 0, description: 'frames sent through the fault path' },
        retransmissions: { type: 'integer', minimum: 0, description: 'simulated TCP retransmissions of lost frames' },
        framesQueued: { type: 'integer', minimum: 0, description: 'frames waiting now (latency, retransmission stall, one-way partition)' },
      },
      required: ['listen', 'peer', 'cut', 'latencyMs', 'lossPercent', 'oneWay', 'seed', 'framesShaped', 'retransmissions', 'framesQueued'],
    },
    witness: WITNESS_REPLY,
    groups: { type: 'array', items: GROUP_REPLY },
  },
  required: ['array', 'link', 'witness', 'groups'],
} as const;

export const GROUP_PARAMS = {
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
    action: { type: 'string', enum: ['cut', 'restore'], description: 'cut: drop the link and keep it down; restore: a clean link again (no cut, partition, loss or latency, unless this request sets them)' },
    latencyMs: { type: 'number', minimum: 0, maximum: MAX_LATENCY_MS, description: 'added to every message this array sends (rule of thumb: 1 ms round trip per 100 km)' },
    lossPercent: { type: 'number', minimum: 0, maximum: 100, description: 'chance that a frame this array sends is lost; TCP resends it after 200 ms, doubling (README "Peer replication", link faults)' },
    oneWay: { type: ['string', 'null'], enum: ['out', 'in', null], description: 'one-way partition: out (what this array sends stops arriving), in (what it receives), null to heal' },
    seed: { type: 'integer', minimum: 0, maximum: 4294967295, description: 'seed of the loss draws (replays a loss pattern)' },
  },
  anyOf: [{ required: ['action'] }, { required: ['latencyMs'] }, { required: ['lossPercent'] }, { required: ['oneWay'] }, { required: ['seed'] }],
} as const;

export const WITNESS_BODY = {
  type: 'object',
  additionalProperties: false,
  properties: { action: { type: 'string', enum: ['cut', 'restore'], description: 'cut: this array loses the witness and stays away; restore: it reconnects' } },
  required: ['action'],
} as const;

export function remoteCopy(deps: AdminDeps): RemoteCopy {
  const rc = deps.array.rcopy;
  if (!rc) throw new AdminError(404, 'no Remote Copy on this array (the config has no peers: section)');
  return rc;
}

export function group(deps: AdminDeps, name: string): ReplicationGroup {
  const rc = remoteCopy(deps);
  const g = rc.groups.get(name);
  if (!g) throw new AdminError(404, `no Remote Copy group ${name} (have ${[...rc.groups.keys()].join(', ')})`, 'group', 'params');
  return g;
}

function verb(deps: AdminDeps, name: string, command: Parameters<ReplicationGroup['operator']>[0]['command']) {
  const g = group(deps, name);
  const refused = g.operator({ kind: 'operator', command });
  // startgroup/recover with the link down are remembered (the group starts when the link returns): not an error.
  if (refused && !/link is down|^pending/.test(refused)) throw new AdminError(409, `${command.verb}: ${refused}`, 'group', 'params');
  return g;
}

/** A group the verbs made keeps whether it is started, and its hosts, in peers.state (runtime-state.ts). */
async function kept(deps: AdminDeps, g: ReplicationGroup): Promise<ReplicationGroup> {
  if (g.cfg.runtime) await remoteCopy(deps).saveRuntime();
  return g;
}

/** Wait for the machine to reach a state (a witness grant, a role swap), up to `ms`. */
async function waitFor(f: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (!f()) {
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
  return true;
}

export function register(app: FastifyInstance, deps: AdminDeps): void {
  const one = { tags: ['rcopy'], params: GROUP_PARAMS, response: { 200: GROUP_REPLY } } as const;
  app.get('/v1/rcopy/groups', { schema: { summary: 'showrcopy: this array\'s groups and link', tags: ['rcopy'], response: { 200: GROUPS_REPLY } } }, async () => remoteCopy(deps).status());
  app.post<{ Params: { group: string } }>('/v1/rcopy/groups/:group/start', { schema: { ...one, summary: 'startrcopygroup (primary): start replicating, resync what the secondary lacks' } },
    async (req) => (await kept(deps, verb(deps, req.params.group, { verb: 'start' }))).snapshot());
  app.post<{ Params: { group: string } }>('/v1/rcopy/groups/:group/stop', { schema: { ...one, summary: 'stoprcopygroup (primary): stop replicating; the secondary stops serving' } },
    async (req) => (await kept(deps, verb(deps, req.params.group, { verb: 'stop' }))).snapshot());
  app.post<{ Params: { group: string }; Body: { host: string; proximity: Proximity } }>('/v1/rcopy/groups/:group/hosts',
    { schema: { ...one, body: ADMITHOST_BODY, summary: 'admitrcopyhost -proximity primary|secondary|all HOST GROUP' } },
    async (req) => (await kept(deps, verb(deps, req.params.group, { verb: 'admithost', host: req.body.host, proximity: req.body.proximity }))).snapshot());
  app.post<{ Params: { group: string } }>('/v1/rcopy/groups/:group/failover',
    { schema: { ...one, summary: 'setrcopygroup failover (secondary): become primary. With a quorum witness, only when it grants (the primary array is lost and this one was Synced); answers 409 if it does not within its fail timeout' } },
    async (req) => {
      const g = verb(deps, req.params.group, { verb: 'failover' });
      if (g.role === 'primary') return g.snapshot();
      const rc = remoteCopy(deps);
      if (await waitFor(() => g.role === 'primary', 8000)) return g.snapshot();
      throw new AdminError(409, `failover: the quorum witness did not grant it (it grants only when the primary array is lost and this array was Synced when the link went down; witness says owner ${g.machine.snapshot().witness?.owner || 'none'}, peer ${g.machine.snapshot().witness?.peerSight ?? 'unknown'}${rc.witness?.status().connected ? '' : ', and this array is not connected to it'}); the request stands while the link is down`, 'group', 'params');
    });
  app.post<{ Params: { group: string } }>('/v1/rcopy/groups/:group/recover',
    { schema: { ...one, summary: 'setrcopygroup recover (the array failed over to): replicate back to the old primary, copying the group whole' } },
    async (req) => verb(deps, req.params.group, { verb: 'recover' }).snapshot());
  for (const v of ['restore', 'reverse'] as const) {
    app.post<{ Params: { group: string } }>(`/v1/rcopy/groups/:group/${v}`,
      { schema: { ...one, summary: v === 'restore' ? 'setrcopygroup restore (Primary-Rev, Synced): give the primary role back to its natural array' : 'setrcopygroup reverse (primary, Synced): swap the roles; the new ones become the natural ones' } },
      async (req) => {
        const g = verb(deps, req.params.group, { verb: v });
        // The swap waits for writes in flight: answer once this array has handed the role over.
        if (!(await waitFor(() => g.role === 'secondary', 8000))) throw new AdminError(409, `${v}: the role swap did not happen (the link or the group state changed meanwhile)`, 'group', 'params');
        return g.snapshot();
      });
  }
  app.get('/v1/rcopy/witness', { schema: { summary: 'witness status: this array\'s connection to the quorum witness and each group\'s last verdict', tags: ['rcopy'], response: { 200: WITNESS_REPLY } } },
    async () => {
      const rc = remoteCopy(deps);
      if (!rc.witness) throw new AdminError(404, 'no quorum witness configured on this array (peers.witness)');
      return rc.witnessStatus();
    });
  app.post<{ Body: { action: 'cut' | 'restore' } }>('/v1/rcopy/witness',
    { schema: { summary: 'witness fault injection: cut or restore this array\'s connection to the quorum witness', tags: ['rcopy'], body: WITNESS_BODY, response: { 200: WITNESS_REPLY } } },
    async (req) => {
      const rc = remoteCopy(deps);
      if (!rc.witness) throw new AdminError(404, 'no quorum witness configured on this array (peers.witness)');
      rc.witness.setCut(req.body.action === 'cut');
      return rc.witnessStatus();
    });
  app.post<{ Body: LinkFaultRequest }>('/v1/rcopy/link',
    { schema: { summary: 'replication link fault injection: cut, restore, added latency, loss, one-way partition', tags: ['rcopy'], body: LINK_BODY, response: { 200: GROUPS_REPLY } } },
    async (req) => { const rc = remoteCopy(deps); rc.setLink(req.body); return rc.status(); });
}
