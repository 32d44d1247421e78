/**
 * What the console reads from the admin API: the reply shapes of GET /v1/status, GET /v1/alua,
 * GET /v1/groups and the events of GET /v1/events, as far as the console uses them (the JSON
 * schemas in src/admin/routes/ are the full truth), and the calls.
 */
// Type-only: esbuild erases them, so none of the server's code is bundled into the console.
import type { AluaStateEvent as AluaStateBody, EventStamp, SessionEvent as SessionBody } from '../../../events.ts';
import type { AccessState } from '../../../scsi/access-state.ts';
import { authorizedFetch } from './auth.ts';

export type { AccessState };

/** The states POST /v1/alua accepts (transitioning is the array's own). */
export const REQUESTABLE: readonly AccessState[] = ['active/optimized', 'active/non-optimized', 'standby', 'unavailable', 'offline'];

export interface PortalStatus {
  listen: string;
  tpgt: number;
  targetPortGroup: number;
  stats: { commands: number; reads: number; writes: number; readBytes: number; writeBytes: number; logins: number };
}

export interface LuStatus {
  lun: number;
  naa: string;
  serial: string;
  blockSize: number;
  blocks: string;
  readonly: boolean;
  removable: boolean;
  allocatedBytes: number | null;
  stats: { reads: number; writes: number; readBytes: number; writeBytes: number; errors: number };
}

export interface SessionStatus {
  tsih: number;
  initiator: string;
  isid: string;
  tpgt: number;
  connections: number;
}

export interface TargetStatus {
  name: string;
  luns: LuStatus[];
  sessions: SessionStatus[];
}

export interface Status {
  portals: PortalStatus[];
  targets: TargetStatus[];
}

export interface AluaGroup {
  id: number;
  state: AccessState;
  preferred: boolean;
  ports: number[];
  statusCode: number;
  hosts: Record<string, AccessState>;
}

export interface AluaTarget {
  name: string;
  mode: string;
  transitionMs: number;
  groups: AluaGroup[];
}

export interface Alua {
  targets: AluaTarget[];
}

/** A splitter consistency group (GET /v1/groups), the fields the console shows; any may be absent. */
export interface SplitterGroup {
  name: string;
  transfer?: string;
  journal?: { bytes?: number; limitBytes?: number; records?: number; protectionWindow?: { spanMs?: number; oldestTime?: string | null } };
  copies?: { name: string; lag?: { records?: number; bytes?: number } }[];
  ignored?: Record<string, number>;
}

/** POST /v1/groups/:group/verify's reply, the fields the console shows. */
export interface VerifyResult {
  group: string;
  copy: string;
  consistent: boolean;
  regions: { compared: number; skipped: number; diverged: number };
  bytesCompared: number;
}

/** The admin event stream's events as the console receives them (src/events.ts: the body and the bus's stamp). */
export type AluaStateEvent = AluaStateBody & EventStamp;
export type SessionEvent = SessionBody & EventStamp;

/** The event types the console listens for; a `group.*` one refreshes the splitter panel. */
export const EVENT_TYPES = ['alua.state', 'session.login', 'session.logout', 'session.drop', 'group.transfer', 'group.image-access', 'group.copy', 'group.high-load'] as const;

export class ApiError extends Error {
  constructor(readonly status: number, message: string, readonly field: string | null) {
    super(message);
  }
}

async function call<T>(method: 'GET' | 'POST', url: string, body?: unknown): Promise<T> {
  const r = await authorizedFetch(url, {
    method,
    headers: body === undefined ? { accept: 'application/json' } : { accept: 'application/json', 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: 'no-store',
  });
  const text = await r.text();
  let json: unknown = null;
  try { json = text ? JSON.parse(text) : null; } catch { /* not JSON: reported below */ }
  if (!r.ok) {
    const e = json as { error?: string; field?: string | null } | null;
    throw new ApiError(r.status, e?.error ?? `${method} ${url}: HTTP ${r.status}`, e?.field ?? null);
  }
  return json as T;
}

export const getStatus = (): Promise<Status> => call('GET', '/v1/status');
export const getAlua = (): Promise<Alua> => call('GET', '/v1/alua');
export const getGroups = (): Promise<{ groups: SplitterGroup[] }> => call('GET', '/v1/groups');

export interface AluaChange {
  target: string;
  tpg: number;
  state?: AccessState;
  host?: string;
  clearHost?: boolean;
  reason: string;
}

export const setAlua = (c: AluaChange): Promise<Alua> => call('POST', '/v1/alua', c);

export const verifyGroup = (group: string): Promise<VerifyResult> => call('POST', `/v1/groups/${encodeURIComponent(group)}/verify`, {});
