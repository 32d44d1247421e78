/**
 * GET /v1/events: the array's state changes as server-sent events (HTML Living Standard
 * §9.2, "Server-sent events"), for the console and for scripts (`curl -N`).
 *
 *   : arraysim events              a comment on connect
 *   event: hello                   then a hello: {"seq": <last event published so far>, "time": …}
 *   id: 7                          each event: its seq as id, its type as the event name,
 *   event: alua.state              and the event as one line of JSON
 *   data: {"type":"alua.state",…}
 *   : keep-alive                   a comment every 15 s, so proxies and idle timers keep the stream
 *
 * No replay: a client that reconnects sees changes from then on (Last-Event-ID is not honoured)
 * and reads GET /v1/status or /v1/alua for the state it missed.
 */
import type { FastifyInstance } from 'fastify';
import type { AdminDeps } from '../api.ts';
import type { ArrayEvent } from '../../events.ts';
import { ACCESS_STATES } from '../../scsi/alua.ts';

const STAMP = {
  seq: { type: 'integer', minimum: 1, description: 'position in the stream (the SSE id)' },
  time: { type: 'string', description: 'ISO 8601 UTC time of the change' },
} as const;
const STATE = { type: 'string', enum: Object.keys(ACCESS_STATES) } as const;

/** The two role-change events (rcopy.failover, rcopy.role) carry the same fields. */
function roleChange(type: string, description: string) {
  return {
    type: 'object', description, additionalProperties: false,
    properties: {
      type: { const: type }, ...STAMP,
      group: { type: 'string' },
      from: { type: 'string', enum: ['primary', 'secondary'] },
      to: { type: 'string', enum: ['primary', 'secondary'] },
      epoch: { type: 'integer', minimum: 0, description: 'group epoch after the change (raised by every failover and role swap)' },
      reason: { type: 'string' },
    },
    required: ['type', 'seq', 'time', 'group', 'from', 'to', 'epoch', 'reason'],
  } as const;
}

const SESSION_FIELDS = {
  target: { type: ['string', 'null'], description: 'target name (null: discovery session)' },
  initiator: { type: 'string' },
  isid: { type: 'string' },
  tsih: { type: 'integer' },
  tpgt: { type: 'integer' },
  portal: { type: 'string', description: 'HOST:PORT the session logged in through' },
  sessionType: { type: 'string', enum: ['Normal', 'Discovery'] },
} as const;
const SESSION_REQUIRED = ['type', 'seq', 'time', ...Object.keys(SESSION_FIELDS)];

/** One JSON schema per event type (src/events.ts ArrayEvent); a new event type adds its own here. */
export const EVENT_SCHEMAS = {
  'alua.state': {
    type: 'object',
    description: 'a target port group after one step of a change: phase transitioning, then done',
    additionalProperties: false,
    properties: {
      type: { const: 'alua.state' }, ...STAMP,
      target: { type: 'string' },
      tpg: { type: 'integer' },
      host: { type: ['string', 'null'], description: 'the host whose view changed, or null for the group default' },
      state: { ...STATE, description: 'the group default after this step' },
      preferred: { type: 'boolean' },
      hosts: { type: 'object', additionalProperties: STATE, description: 'per-host overrides after this step' },
      phase: { type: 'string', enum: ['transitioning', 'done'] },
      reason: { type: 'string' },
    },
    required: ['type', 'seq', 'time', 'target', 'tpg', 'host', 'state', 'preferred', 'hosts', 'phase', 'reason'],
  },
  'session.login': {
    type: 'object', description: 'a session reached full feature phase (leading login)', additionalProperties: false,
    properties: { type: { const: 'session.login' }, ...STAMP, ...SESSION_FIELDS },
    required: SESSION_REQUIRED,
  },
  'session.logout': {
    type: 'object', description: 'a session ended by a Logout request (close the session)', additionalProperties: false,
    properties: { type: { const: 'session.logout' }, ...STAMP, ...SESSION_FIELDS },
    required: SESSION_REQUIRED,
  },
  'session.drop': {
    type: 'object', description: 'a session ended without a logout: connection lost, NOP-Out timeout, reinstatement, shutdown', additionalProperties: false,
    properties: { type: { const: 'session.drop' }, ...STAMP, ...SESSION_FIELDS, why: { type: 'string' } },
    required: [...SESSION_REQUIRED, 'why'],
  },
  'rcopy.group': {
    type: 'object', description: "a Remote Copy group's SyncStatus changed on this array", additionalProperties: false,
    properties: {
      type: { const: 'rcopy.group' }, ...STAMP,
      group: { type: 'string' },
      role: { type: 'string', enum: ['primary', 'secondary'] },
      from: { type: 'string', enum: ['Stopped', 'Syncing', 'Synced', 'Failsafe'] },
      to: { type: 'string', enum: ['Stopped', 'Syncing', 'Synced', 'Failsafe'] },
      reason: { type: 'string' },
    },
    required: ['type', 'seq', 'time', 'group', 'role', 'from', 'to', 'reason'],
  },
  'rcopy.failover': roleChange('rcopy.failover', "this array became primary for a Remote Copy group by a failover (automatic with the quorum witness's grant, or setrcopygroup failover)"),
  'rcopy.role': roleChange('rcopy.role', "a Remote Copy group's role changed on this array otherwise (a failed-over primary yields, restore, reverse)"),
  'group.transfer': {
    type: 'object', description: 'a consistency group\'s transfer state changed (init, active, paused, error)', additionalProperties: false,
    properties: {
      type: { const: 'group.transfer' }, ...STAMP,
      group: { type: 'string' },
      from: { type: 'string', enum: ['init', 'active', 'paused', 'error'] },
      to: { type: 'string', enum: ['init', 'active', 'paused', 'error'] },
      reason: { type: 'string' },
    },
    required: ['type', 'seq', 'time', 'group', 'from', 'to', 'reason'],
  },
  'group.image-access': {
    type: 'object', additionalProperties: false,
    description: "a consistency group copy's storage access changed (image access): enable_image_access (phase rolling, then done), set_image_access_mode, disable_image_access, a failed enable",
    properties: {
      type: { const: 'group.image-access' }, ...STAMP,
      group: { type: 'string' },
      copy: { type: 'string' },
      from: { type: 'string', enum: ['no-access', 'logged-access', 'direct-access', 'virtual-access'] },
      to: { type: 'string', enum: ['no-access', 'logged-access', 'direct-access', 'virtual-access'] },
      phase: { type: 'string', enum: ['rolling', 'done'], description: 'rolling: the replica is being rolled to the image (its LUs not ready); done: the change is in effect' },
      image: { type: ['string', 'null'], description: 'the image as named (latest, a bookmark, a time, seq:N); null with no access' },
      imageSeq: { type: ['integer', 'null'], description: "the image's journal sequence (seq is the event's); null with no access" },
      bookmark: { type: ['string', 'null'] },
      reason: { type: 'string' },
    },
    required: ['type', 'seq', 'time', 'group', 'copy', 'from', 'to', 'phase', 'image', 'imageSeq', 'bookmark', 'reason'],
  },
  'group.copy': {
    type: 'object', description: 'a consistency group copy was disabled (disable_copy) or enabled again (enable_copy)', additionalProperties: false,
    properties: {
      type: { const: 'group.copy' }, ...STAMP,
      group: { type: 'string' },
      copy: { type: 'string' },
      from: { type: 'string', enum: ['enabled', 'disabled'] },
      to: { type: 'string', enum: ['enabled', 'disabled'] },
      markedRegions: { type: 'integer', minimum: 0, description: 'regions marked for the copy at the change' },
      reason: { type: 'string' },
    },
    required: ['type', 'seq', 'time', 'group', 'copy', 'from', 'to', 'markedRegions', 'reason'],
  },
  'group.high-load': {
    type: 'object', additionalProperties: false,
    description: "a consistency group's high load began (the journal is full of writes not yet distributed: writes mark their regions) or ended (a short initialization sends them)",
    properties: {
      type: { const: 'group.high-load' }, ...STAMP,
      group: { type: 'string' },
      highLoad: { type: 'boolean' },
      reason: { type: 'string' },
    },
    required: ['type', 'seq', 'time', 'group', 'highLoad', 'reason'],
  },
} as const satisfies Record<ArrayEvent['type'], object>;

/** Any event: what each `data:` line of the stream holds. */
export const ARRAY_EVENT = { oneOf: Object.values(EVENT_SCHEMAS) } as const;

export const EVENTS_ROUTE = {
  summary: 'State changes as server-sent events (event: <type>, data: <JSON>, id: <seq>)',
  tags: ['events'],
  response: {
    200: {
      description: 'text/event-stream; each data line is one event',
      content: { 'text/event-stream': { schema: { description: 'each `data:` line is one of these', ...ARRAY_EVENT } } },
    },
  },
} as const;

export const KEEPALIVE_MS = 15_000;
/** A client this far behind (bytes queued in its socket) is cut off rather than held in memory. */
export const MAX_BACKLOG = 1 << 20;

export function register(app: FastifyInstance, deps: AdminDeps): void {
  const streams = new Set<() => void>();
  // Streams never end by themselves: end them when the API closes, or close would wait forever.
  app.addHook('preClose', async () => { for (const end of [...streams]) end(); });

  app.get('/v1/events', { schema: EVENTS_ROUTE }, (req, reply) => {
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    res.write(`: arraysim events\n\nevent: hello\ndata: ${JSON.stringify({ seq: deps.events.lastSeq, time: new Date().toISOString() })}\n\n`);
    let ended = false;
    const send = (text: string) => {
      if (ended) return;
      if (res.writableLength > MAX_BACKLOG) {
        deps.log.warn({ remote: req.ip, backlog: res.writableLength }, 'events client not reading: stream ended');
        end();
        return;
      }
      res.write(text);
    };
    const unsubscribe = deps.events.subscribe((e) => send(`id: ${e.seq}\nevent: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`));
    const keepAlive = setInterval(() => send(': keep-alive\n\n'), deps.keepAliveMs ?? KEEPALIVE_MS);
    keepAlive.unref();
    function end(): void {
      if (ended) return;
      ended = true;
      unsubscribe();
      clearInterval(keepAlive);
      streams.delete(end);
      res.end();
    }
    streams.add(end);
    res.on('close', end);
  });
}
