/**
 * GET /v1/alua and POST /v1/alua: the target port groups of every target (SPC-5 §5.16), and one
 * change applied through the ALUA model's transition() (which logs it with the reason, raises
 * UNIT ATTENTION 2A/06 and publishes alua.state events).
 */
import type { FastifyInstance } from 'fastify';
import type { AdminDeps } from '../api.ts';
import { AdminError } from '../errors.ts';
import { ACCESS_STATES, ACCESS_STATE_NAMES, ALUA_MODES, parseAccessState } from '../../scsi/alua.ts';
import type { AluaModel } from '../../scsi/alua.ts';

const STATE = { type: 'string', enum: Object.keys(ACCESS_STATES) } as const;

export const ALUA_REPLY = {
  type: 'object',
  description: 'every target\'s target port groups',
  properties: {
    targets: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          name: { type: 'string' },
          mode: { type: 'string', enum: [...ALUA_MODES], description: 'default ALUA kind of the LUs: implicit, explicit (STPG) or both' },
          transitionMs: { type: 'number', description: 'default time in transitioning' },
          luns: {
            type: 'array',
            items: { type: 'object', properties: { lun: { type: 'integer' }, mode: { type: 'string', enum: [...ALUA_MODES] } }, required: ['lun', 'mode'] },
          },
          groups: {
            type: 'array',
            items: {
              type: 'object',
              properties: {
                id: { type: 'integer' },
                state: { ...STATE, description: 'default state, for hosts without an override' },
                preferred: { type: 'boolean', description: 'PREF bit' },
                ports: { type: 'array', items: { type: 'integer' }, description: 'relative target port ids' },
                statusCode: { type: 'integer', description: 'RTPG status code: 0 none, 1 altered by STPG, 2 altered implicitly' },
                hosts: { type: 'object', additionalProperties: STATE, description: 'per-host overrides (initiator name → state)' },
              },
              required: ['id', 'state', 'preferred', 'ports', 'statusCode', 'hosts'],
            },
          },
        },
        required: ['name', 'mode', 'transitionMs', 'luns', 'groups'],
      },
    },
  },
  required: ['targets'],
} as const;

/** The body of POST /v1/alua; the CLI's `alua set` checks what it sends against it. */
export const ALUA_SET_BODY = {
  type: 'object',
  additionalProperties: false,
  properties: {
    tpg: { type: 'integer', minimum: 0, maximum: 0xffff, description: 'target port group number' },
    state: {
      type: 'string', enum: [...ACCESS_STATE_NAMES],
      description: 'the new state: a spec name or ao, ano, s, u, o (transitioning is the array\'s own and is refused)',
    },
    // RFC 7143 §4.2.7.1: an iSCSI name is at most 223 bytes.
    host: { type: 'string', minLength: 1, maxLength: 223, description: 'initiator name: change only the state this host sees' },
    clearHost: { type: 'boolean', description: 'remove the override of `host` instead of setting one' },
    preferred: { type: 'boolean', description: 'set or clear PREF' },
    transitionMs: { type: 'number', minimum: 0, maximum: 255_000, description: 'time in transitioning first (RTPG reports it in whole seconds, at most 255)' },
    target: { type: 'string', minLength: 1, maxLength: 223, description: 'only this target (default: every target)' },
    reason: { type: 'string', maxLength: 1000, description: 'logged with the change and carried in its event' },
    wait: { type: 'boolean', default: false, description: 'answer once the transition is complete' },
  },
  required: ['tpg'],
  // Either a state, or clearHost with the host whose override goes.
  if: { properties: { clearHost: { const: true } }, required: ['clearHost'] },
  then: { required: ['host'] },
  else: { required: ['state'] },
} as const;

export interface AluaSetBody {
  tpg: number;
  state?: string;
  host?: string;
  clearHost?: boolean;
  preferred?: boolean;
  transitionMs?: number;
  target?: string;
  reason?: string;
  wait?: boolean;
}

export const ALUA_SHOW_ROUTE = {
  summary: 'Every target\'s ALUA port groups: mode, states, PREF, ports, per-host overrides',
  tags: ['alua'],
  response: { 200: ALUA_REPLY },
} as const;

export const ALUA_SET_ROUTE = {
  summary: 'Change one target port group\'s state (group-wide or for one host); answers with the groups afterwards',
  tags: ['alua'],
  body: ALUA_SET_BODY,
  response: { 200: ALUA_REPLY },
} as const;

function models({ array }: AdminDeps): [string, AluaModel][] {
  return [...array.scsiTargets].map(([name, t]) => [name, t.alua] as [string, AluaModel]);
}

function show(deps: AdminDeps) {
  return { targets: models(deps).map(([name, m]) => ({ name, ...(m.toJSON() as object) })) };
}

/** One change; without `target` it applies to every target (they share the portals). */
async function set(deps: AdminDeps, b: AluaSetBody) {
  const chosen = models(deps).filter(([name]) => b.target === undefined || name === b.target);
  if (!chosen.length) throw new AdminError(400, `no target ${b.target}`, 'target', 'body');
  for (const [, m] of chosen) {
    if (!m.groups.has(b.tpg)) throw new AdminError(400, `no target port group ${b.tpg} (have ${[...m.groups.keys()].join(', ')})`, 'tpg', 'body');
  }
  const state = b.clearHost ? 'active/optimized' : parseAccessState(b.state!);
  const reason = b.reason || 'admin API';
  let done: Promise<void>[];
  try {
    done = chosen.map(([, m]) => m.transition({
      tpg: b.tpg, state, host: b.host, clearHost: !!b.clearHost, preferred: b.preferred, transitionMs: b.transitionMs, reason,
    }));
  } catch (e) {
    // What the schema cannot refuse: a state that exists but is not requestable (transitioning).
    throw new AdminError(400, (e as Error).message, 'state', 'body');
  }
  if (b.wait) await Promise.all(done);
  return show(deps);
}

export function register(app: FastifyInstance, deps: AdminDeps): void {
  app.get('/v1/alua', { schema: ALUA_SHOW_ROUTE }, async () => show(deps));
  app.post<{ Body: AluaSetBody }>('/v1/alua', { schema: ALUA_SET_ROUTE }, async (req) => set(deps, req.body));
}
