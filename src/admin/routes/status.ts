/** GET /v1/status: targets, LUNs, sessions and per-portal I/O counters. */
import type { FastifyInstance } from 'fastify';
import type { AdminDeps } from '../api.ts';
import { GROUP_STATUS } from './splitter.ts';
import { GROUPS_REPLY } from './rcopy.ts';
import { listGroups } from '../../splitter/admin.ts';
import { claimOf, REPLICA_CLAIM } from './replica-claims.ts';

/** Counters: the named ones always, and any a later change adds (new counters show without a schema change). */
function counters(names: string[], description: string) {
  return {
    type: 'object', description,
    properties: Object.fromEntries(names.map((n) => [n, { type: 'integer', minimum: 0 }])),
    required: names,
    additionalProperties: { type: 'number' },
  } as const;
}

// Property order is reply order: tools/vm/guest-tests/array.sh reads "stats":{"commands":…,"reads":…,"writes":….
export const PORTAL_STATS = counters(['commands', 'reads', 'writes', 'readBytes', 'writeBytes', 'logins', 'errors'],
  'per-portal counters: commands received; reads and writes served with GOOD, and their bytes; logins; commands answered with a status other than GOOD or CONDITION MET');
export const LU_STATS = counters(['reads', 'writes', 'readBytes', 'writeBytes', 'errors', 'commands'],
  'per-LU counters: reads and writes served, their bytes, commands failed or refused (not counting unit attentions reported), commands submitted');

export const STATUS_REPLY = {
  type: 'object',
  description: 'portals with their counters; targets with their LUNs and sessions; consistency groups',
  properties: {
    portals: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          listen: { type: 'string', description: 'HOST:PORT' },
          tpgt: { type: 'integer', description: 'target portal group tag (also the relative target port id)' },
          targetPortGroup: { type: 'integer', description: 'ALUA target port group of this port' },
          stats: PORTAL_STATS,
        },
        required: ['listen', 'tpgt', 'targetPortGroup', 'stats'],
      },
    },
    targets: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          name: { type: 'string' },
          luns: {
            type: 'array',
            items: {
              type: 'object',
              properties: {
                lun: { type: 'integer' },
                naa: { type: 'string', description: 'NAA designator body as configured: 16 hex digits (NAA 2, 3, 5) or 32 (NAA 6)' },
                serial: { type: 'string' },
                blockSize: { type: 'integer' },
                blocks: { type: 'string', description: 'capacity in blocks, decimal (may exceed 2^53)' },
                readonly: { type: 'boolean' },
                removable: { type: 'boolean' },
                allocatedBytes: { type: ['integer', 'null'], description: 'bytes the store holds (null: not known)' },
                stats: LU_STATS,
                replicaClaim: { ...REPLICA_CLAIM, type: ['object', 'null'], description: 'a remote copy\'s claim on this LU (GET /v1/replica-claims), or null' },
              },
              required: ['lun', 'naa', 'serial', 'blockSize', 'blocks', 'readonly', 'removable', 'allocatedBytes', 'stats', 'replicaClaim'],
            },
          },
          sessions: {
            type: 'array',
            items: {
              type: 'object',
              properties: {
                tsih: { type: 'integer' },
                initiator: { type: 'string' },
                isid: { type: 'string' },
                tpgt: { type: 'integer' },
                connections: { type: 'integer' },
              },
              required: ['tsih', 'initiator', 'isid', 'tpgt', 'connections'],
            },
          },
        },
        required: ['name', 'luns', 'sessions'],
      },
    },
    groups: { type: 'array', items: GROUP_STATUS, description: 'consistency groups of the write splitter (GET /v1/groups)' },
    rcopy: { ...GROUPS_REPLY, type: ['object', 'null'], description: 'Remote Copy groups, the replication link and the quorum witness (GET /v1/rcopy/groups); null without peers:/rcopy:' },
  },
  required: ['portals', 'targets', 'groups'],
} as const;

export const STATUS_ROUTE = {
  summary: 'Targets, LUNs, sessions and per-portal I/O counters',
  tags: ['status'],
  response: { 200: STATUS_REPLY },
} as const;

export function status({ array: a }: AdminDeps) {
  return {
    portals: a.config.portals.map((p) => ({ listen: `${p.host}:${p.port}`, tpgt: p.tpgt, targetPortGroup: p.targetPortGroup, stats: a.server.portalStats.get(p) })),
    targets: [...a.scsiTargets.values()].map((t) => ({
      name: t.name,
      luns: [...t.luns.values()].map((lu) => ({
        lun: lu.lun, naa: lu.naa, serial: lu.serial, blockSize: lu.blockSize, blocks: String(lu.blockCount),
        readonly: lu.readonly, removable: lu.removable, allocatedBytes: lu.store.allocatedBytes?.() ?? null, stats: lu.stats,
        replicaClaim: claimOf(a, t.name, lu.replicaClaim),
      })),
      sessions: [...a.server.sessions].filter((s) => s.targetConfig?.name === t.name).map((s) => ({
        tsih: s.tsih, initiator: s.initiatorName, isid: s.isid, tpgt: s.portal.tpgt, connections: s.connections.size,
      })),
    })),
    groups: listGroups(a).groups,
    rcopy: a.rcopy ? a.rcopy.status() : null,
  };
}

export function register(app: FastifyInstance, deps: AdminDeps): void {
  app.get('/v1/status', { schema: STATUS_ROUTE }, async () => status(deps));
}
