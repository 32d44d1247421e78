/**
 * The consistency-group operations of the admin API as plain functions: an input object in, a
 * JSON-ready result out, errors that name the field (SplitterInputError) or the missing object
 * (SplitterNotFound). The HTTP router maps them to routes:
 *   GET  /v1/groups                      listGroups
 *   GET  /v1/groups/:group               showGroup
 *   POST /v1/groups/:group/verify        {copy?}  verify
 *   POST /v1/groups/:group/bookmarks     {name}   bookmark
 * and RecoverPoint's operator verbs (the `rp` CLI; words and key=value form from the field notes):
 *   POST /v1/groups/:group/enable_group     {start_transfer?: yes|no}  enableGroup
 *   POST /v1/groups/:group/disable_group                               disableGroup
 *   POST /v1/groups/:group/clear_markers    {copy?}                    clearMarkers
 *   POST /v1/groups/:group/start_transfer                              startTransfer
 *   POST /v1/groups/:group/pause_transfer                              pauseTransfer
 *   enable_image_access, disable_image_access, set_image_access_mode: SplitterNotBuilt (501)
 */
import type { ConsistencyGroup, GroupStatus } from './group.ts';
import { verifyGroup } from './verify.ts';
import type { VerifyResult } from './verify.ts';

/** A request field is wrong (HTTP 400). */
export class SplitterInputError extends Error {
  constructor(readonly field: string, message: string) { super(`${field}: ${message}`); }
}

/** No such group or copy (HTTP 404). */
export class SplitterNotFound extends Error {}

/** The group is not in a state that allows the verb (HTTP 409): transfer not paused, already enabled… */
export class SplitterStateError extends Error {}

/** A verb of RecoverPoint's CLI that arraysim does not have yet (HTTP 501); the message names it. */
export class SplitterNotBuilt extends Error {
  constructor(readonly verb: string, what: string) { super(`${verb} is not built yet: ${what}`); }
}

/** The image-access verbs answer this until point-in-time images and image access exist (issue 10). */
export const IMAGE_ACCESS_VERBS = ['enable_image_access', 'disable_image_access', 'set_image_access_mode'] as const;
export type ImageAccessVerb = typeof IMAGE_ACCESS_VERBS[number];

export function imageAccess(reg: GroupRegistry, input: { group: unknown; verb: ImageAccessVerb }): never {
  group(reg, input.group);
  throw new SplitterNotBuilt(input.verb, 'arraysim has no point-in-time images or image access yet (no copy target, no logged or direct access); '
    + 'to seed a copy today, write the replica through the test hook and clear_markers (README "Splitter and replicas")');
}

/** What a verb that changes state answers: the verb and the group's state after it. */
export interface VerbReply { verb: string; group: GroupStatus }

/** A state error of the group as SplitterStateError. */
function stateful<T>(f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof SplitterNotFound || e instanceof SplitterInputError) throw e;
    throw new SplitterStateError((e as Error).message);
  }
}

const yesNo = (field: string, v: unknown, dflt: boolean): boolean => {
  if (v === undefined || v === null) return dflt;
  if (v === 'yes' || v === true) return true;
  if (v === 'no' || v === false) return false;
  throw new SplitterInputError(field, `must be yes or no, not ${JSON.stringify(v)}`);
};

/** enable_group group=G [start_transfer=yes|no] (default yes, as RecoverPoint's). */
export async function enableGroup(reg: GroupRegistry, input: { group: unknown; start_transfer?: unknown }): Promise<VerbReply> {
  const g = group(reg, input.group);
  const start = yesNo('start_transfer', input.start_transfer, true);
  const running = stateful(() => g.enable(start, `operator: enable_group start_transfer=${start ? 'yes' : 'no'}`));
  // The initialization runs on; the reply says where it is (get_group_state follows it).
  void running.catch(() => {});
  return { verb: 'enable_group', group: g.status() };
}

export function disableGroup(reg: GroupRegistry, input: { group: unknown }): VerbReply {
  const g = group(reg, input.group);
  stateful(() => g.disable('operator: disable_group'));
  return { verb: 'disable_group', group: g.status() };
}

export function clearMarkers(reg: GroupRegistry, input: { group: unknown; copy?: unknown }): VerbReply & { copies: string[] } {
  const g = group(reg, input.group);
  if (input.copy !== undefined && input.copy !== null && typeof input.copy !== 'string') throw new SplitterInputError('copy', 'must be a copy name');
  const copy = (input.copy ?? undefined) as string | undefined;
  if (copy !== undefined && !g.copies.some((c) => c.name === copy)) {
    throw new SplitterNotFound(`group ${g.name} has no copy "${copy}" (copies: ${g.copies.map((c) => c.name).join(', ')})`);
  }
  const cs = stateful(() => g.clearMarkers(copy));
  return { verb: 'clear_markers', copies: cs.map((c) => c.name), group: g.status() };
}

export async function startTransfer(reg: GroupRegistry, input: { group: unknown }): Promise<VerbReply> {
  const g = group(reg, input.group);
  const running = stateful(() => g.startTransfer('operator: start_transfer'));
  void running.catch(() => {});
  return { verb: 'start_transfer', group: g.status() };
}

export function pauseTransfer(reg: GroupRegistry, input: { group: unknown }): VerbReply {
  const g = group(reg, input.group);
  stateful(() => g.pauseTransfer('operator: pause_transfer'));
  return { verb: 'pause_transfer', group: g.status() };
}

export interface GroupRegistry { readonly groups: ReadonlyMap<string, ConsistencyGroup> }

function group(reg: GroupRegistry, name: unknown): ConsistencyGroup {
  if (typeof name !== 'string' || !name) throw new SplitterInputError('group', 'a group name is required');
  const g = reg.groups.get(name);
  if (!g) throw new SplitterNotFound(`no consistency group "${name}" (groups: ${[...reg.groups.keys()].join(', ') || 'none'})`);
  return g;
}

export function listGroups(reg: GroupRegistry): { groups: GroupStatus[] } {
  return { groups: [...reg.groups.values()].map((g) => g.status()) };
}

export function showGroup(reg: GroupRegistry, input: { group: unknown }): GroupStatus {
  return group(reg, input.group).status();
}

export async function verify(reg: GroupRegistry, input: { group: unknown; copy?: unknown }): Promise<VerifyResult> {
  const g = group(reg, input.group);
  if (input.copy !== undefined && input.copy !== null && typeof input.copy !== 'string') throw new SplitterInputError('copy', 'must be a copy name');
  const copy = (input.copy ?? undefined) as string | undefined;
  if (copy !== undefined && !g.copies.some((c) => c.name === copy)) {
    throw new SplitterNotFound(`group ${g.name} has no copy "${copy}" (copies: ${g.copies.map((c) => c.name).join(', ')})`);
  }
  await g.ready();
  return verifyGroup(g, copy);
}

export function bookmark(reg: GroupRegistry, input: { group: unknown; name?: unknown }): { name: string; seq: number; time: string } {
  const g = group(reg, input.group);
  if (typeof input.name !== 'string') throw new SplitterInputError('name', 'a bookmark name is required');
  try {
    return g.bookmark(input.name);
  } catch (e) {
    throw new SplitterInputError('name', (e as Error).message.replace(/^name: /, ''));
  }
}
