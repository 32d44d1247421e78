/**
 * Remote Copy groups defined at runtime (src/replication/runtime-groups.ts), run on the primary;
 * each changes both arrays:
 *   POST /v1/rcopy/groups                      creatercopygroup GROUP TARGET:sync  {name, peer, mode}
 *   POST /v1/rcopy/groups/:group/volumes       admitrcopyvv VV GROUP TARGET:SECVV  {volume, peer, secondaryVolume}
 *   POST /v1/rcopy/groups/:group/policies      setrcopygroup pol POLICY GROUP      {policy}
 *   POST /v1/rcopy/groups/:group/dismiss       dismissrcopyvv VV GROUP             {volume}
 *   POST /v1/rcopy/groups/:group/remove        removercopygroup [-f] [-local] GROUP {force, local}
 * All but remove answer the group as GET /v1/rcopy/groups shows it on this array; remove answers
 * the volumes it dismissed.
 */
import type { FastifyInstance } from 'fastify';
import type { AdminDeps } from '../api.ts';
import { group, GROUP_PARAMS, GROUP_REPLY, remoteCopy } from './rcopy.ts';
import { admitVolume, createGroup, dismissVolume, POLICY_WORDS, removeGroup, setPolicy } from '../../replication/runtime-groups.ts';
import type { VolumeRef } from '../../replication/runtime-groups.ts';

const NAME = { type: 'string', minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_.-]+$', description: 'Remote Copy group name (letters, digits, _ . -)' } as const;
const PEER = { type: 'string', minLength: 1, maxLength: 64, description: 'the Remote Copy target (HPE TARGET): the other array\'s peers.name; it must answer to it' } as const;

const VOLUME = {
  type: 'object',
  additionalProperties: false,
  properties: {
    target: { type: 'string', minLength: 1, maxLength: 223, description: 'iSCSI target holding the volume (default: the array\'s first target)' },
    lun: { type: 'integer', minimum: 0, maximum: 16383 },
  },
  required: ['lun'],
} as const;

export const CREATEGROUP_BODY = {
  type: 'object',
  additionalProperties: false,
  properties: {
    name: NAME,
    peer: PEER,
    mode: { type: 'string', enum: ['sync'], default: 'sync', description: 'replication mode (HPE TARGET:MODE); only synchronous replication is built' },
  },
  required: ['name', 'peer'],
} as const;

export const ADMITVV_BODY = {
  type: 'object',
  additionalProperties: false,
  properties: {
    volume: { ...VOLUME, description: 'the primary volume (HPE VV), on this array' },
    peer: PEER,
    secondaryVolume: { ...VOLUME, description: 'the secondary volume (HPE SECVV) on the other array: same block size and count; it takes this volume\'s WWN and serial' },
  },
  required: ['volume', 'peer', 'secondaryVolume'],
} as const;

export const SETGROUP_BODY = {
  type: 'object',
  additionalProperties: false,
  properties: { policy: { type: 'string', enum: POLICY_WORDS, description: 'a policy to turn on, or its no_ form to turn off' } },
  required: ['policy'],
} as const;

export const DISMISSVV_BODY = {
  type: 'object',
  additionalProperties: false,
  properties: { volume: { ...VOLUME, description: 'the primary volume (HPE VV), on this array; its secondary leaves the group with it' } },
  required: ['volume'],
} as const;

export const REMOVEGROUP_BODY = {
  type: 'object',
  additionalProperties: false,
  properties: {
    force: { type: 'boolean', default: false, description: 'a group that still has volumes: dismiss them first (no LUN is deleted); without it such a group is refused' },
    local: { type: 'boolean', default: false, description: 'the other array is gone: remove the group from this array only (either role, replication link down; a primary must be stopped and serving alone); the other array keeps it until the same is run there' },
  },
} as const;

const REMOVED_REPLY = {
  type: 'object',
  properties: {
    name: { type: 'string' },
    dismissed: { type: 'array', description: 'the volumes the group still had on this array, now plain LUs', items: { type: 'object', properties: { target: { type: 'string' }, lun: { type: 'integer' }, wwn: { type: 'string' } }, required: ['target', 'lun', 'wwn'] } },
  },
  required: ['name', 'dismissed'],
} as const;

export function register(app: FastifyInstance, deps: AdminDeps): void {
  const tags = ['rcopy'];
  app.post<{ Body: { name: string; peer: string; mode: 'sync' } }>('/v1/rcopy/groups',
    { schema: { tags, body: CREATEGROUP_BODY, response: { 200: GROUP_REPLY }, summary: 'creatercopygroup GROUP TARGET:sync (primary): the group on both arrays, stopped and empty' } },
    async (req) => (await createGroup(remoteCopy(deps), req.body)).snapshot());
  app.post<{ Params: { group: string }; Body: { volume: VolumeRef; peer: string; secondaryVolume: VolumeRef } }>('/v1/rcopy/groups/:group/volumes',
    { schema: { tags, params: GROUP_PARAMS, body: ADMITVV_BODY, response: { 200: GROUP_REPLY }, summary: 'admitrcopyvv VV GROUP TARGET:SECVV (primary, group stopped): the secondary volume takes the primary\'s WWN and serial; the next startgroup copies it whole' } },
    async (req) => {
      return (await admitVolume(remoteCopy(deps), group(deps, req.params.group), req.body)).snapshot();
    });
  app.post<{ Params: { group: string }; Body: { policy: string } }>('/v1/rcopy/groups/:group/policies',
    { schema: { tags, params: GROUP_PARAMS, body: SETGROUP_BODY, response: { 200: GROUP_REPLY }, summary: 'setrcopygroup pol POLICY GROUP (primary): on both arrays; an active_active group keeps auto_failover and path_management' } },
    async (req) => {
      return (await setPolicy(remoteCopy(deps), group(deps, req.params.group), req.body.policy)).snapshot();
    });
  app.post<{ Params: { group: string }; Body: { volume: VolumeRef } }>('/v1/rcopy/groups/:group/dismiss',
    { schema: { tags, params: GROUP_PARAMS, body: DISMISSVV_BODY, response: { 200: GROUP_REPLY }, summary: 'dismissrcopyvv VV GROUP (primary, group stopped, a group made at runtime): both volumes leave the group and serve as plain LUs; the secondary takes its own WWN and serial back' } },
    async (req) => {
      return (await dismissVolume(remoteCopy(deps), group(deps, req.params.group), req.body)).snapshot();
    });
  app.post<{ Params: { group: string }; Body: { force?: boolean; local?: boolean } }>('/v1/rcopy/groups/:group/remove',
    { schema: { tags, params: GROUP_PARAMS, body: REMOVEGROUP_BODY, response: { 200: REMOVED_REPLY }, summary: 'removercopygroup [-f] [-local] GROUP (primary, group stopped, a group made at runtime): the group goes from both arrays; with volumes only with force, which dismisses them; local: from this array only, when the other is gone' } },
    async (req) => removeGroup(remoteCopy(deps), group(deps, req.params.group), req.body ?? {}));
}
