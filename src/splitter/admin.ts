/**
 * The consistency-group operations of the admin API as plain functions: an input object in, a
 * JSON-ready result out, errors that name the field (SplitterInputError) or the missing object
 * (SplitterNotFound). The HTTP router maps them to routes:
 *   GET  /v1/groups                      listGroups
 *   GET  /v1/groups/:group               showGroup
 *   POST /v1/groups/:group/verify        {copy?, image?: true, at?}  verify (image: the accessed image, image-verify.ts)
 *   POST /v1/groups/:group/bookmarks     {name}   bookmark
 * and RecoverPoint's operator verbs (the `rp` CLI; words and key=value form from the field notes):
 *   POST /v1/groups/:group/enable_group     {start_transfer?: yes|no}  enableGroup
 *   POST /v1/groups/:group/disable_group                               disableGroup
 *   POST /v1/groups/:group/clear_markers    {copy?}                    clearMarkers
 *   POST /v1/groups/:group/start_transfer                              startTransfer
 *   POST /v1/groups/:group/pause_transfer                              pauseTransfer
 *   POST /v1/groups/:group/enable_image_access   {copy, image?, mode?}        enableImageAccess (image.ts)
 *   POST /v1/groups/:group/set_image_access_mode {copy, mode}                 setImageAccessMode
 *   POST /v1/groups/:group/disable_image_access  {copy, start_transfer?}      disableImageAccess
 *   POST /v1/groups/:group/disable_copy          {copy}                       disableCopy
 *   POST /v1/groups/:group/enable_copy           {copy}                       enableCopy
 */
import type { LocalCopy } from './copy.ts';
import type { ConsistencyGroup, GroupStatus } from './group.ts';
import { disableImageAccess as disableImage, enableImageAccess as enableImage, ImageChoiceError, ImageStateError, setImageAccessMode as setImageMode } from './image.ts';
import type { ImageAccessMode } from './image.ts';
import { verifyImage } from './image-verify.ts';
import type { ImageVerifyResult } from './image-verify.ts';
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

/** What image access (image.ts) refuses, as the admin API's errors: a bad image 400, a state 409. */
async function imaging<T>(f: () => T | Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (e) {
    if (e instanceof ImageChoiceError) throw new SplitterInputError(e.field, e.message.replace(/^\w+: /, ''));
    if (e instanceof ImageStateError) throw new SplitterStateError(e.message);
    throw e;
  }
}

function copyOf(g: ConsistencyGroup, v: unknown, required: boolean): LocalCopy {
  if (v === undefined || v === null) {
    if (required) throw new SplitterInputError('copy', `a copy name is required (copies: ${g.copies.map((c) => c.name).join(', ')})`);
    return g.copies[0];
  }
  if (typeof v !== 'string' || !v) throw new SplitterInputError('copy', 'must be a copy name');
  const c = g.copies.find((x) => x.name === v);
  if (!c) throw new SplitterNotFound(`group ${g.name} has no copy "${v}" (copies: ${g.copies.map((x) => x.name).join(', ')})`);
  return c;
}

/** `virtual`: only enable_image_access takes it (the mode of a virtual image does not change). */
const modeOf = (v: unknown, dflt: ImageAccessMode | undefined, virtual = false): ImageAccessMode => {
  if ((v === undefined || v === null) && dflt) return dflt;
  if (v === 'logged' || v === 'direct' || (virtual && v === 'virtual')) return v;
  throw new SplitterInputError('mode', `must be logged${virtual ? ', direct or virtual' : ' or direct'}, not ${JSON.stringify(v)}`);
};

/** enable_image_access group=G copy=C [image=latest|BOOKMARK|TIME|seq:N] [mode=logged|direct|virtual] (defaults latest, logged). */
export async function enableImageAccess(reg: GroupRegistry, input: { group: unknown; copy?: unknown; image?: unknown; mode?: unknown }): Promise<VerbReply> {
  const g = group(reg, input.group);
  const c = copyOf(g, input.copy, true);
  if (input.image !== undefined && (typeof input.image !== 'string' || !input.image)) throw new SplitterInputError('image', 'latest, a bookmark, seq:N or an ISO time');
  const mode = modeOf(input.mode, 'logged', true);
  await imaging(() => enableImage(g, c, (input.image as string | undefined) ?? 'latest', mode));
  await g.claimsSettled();
  return { verb: 'enable_image_access', group: g.status() };
}

/** set_image_access_mode group=G copy=C mode=logged|direct. */
export async function setImageAccessMode(reg: GroupRegistry, input: { group: unknown; copy?: unknown; mode?: unknown }): Promise<VerbReply> {
  const g = group(reg, input.group);
  const c = copyOf(g, input.copy, true);
  const mode = modeOf(input.mode, undefined);
  await imaging(() => setImageMode(g, c, mode));
  return { verb: 'set_image_access_mode', group: g.status() };
}

/** disable_image_access group=G copy=C [start_transfer=yes|no] (default yes). */
export async function disableImageAccess(reg: GroupRegistry, input: { group: unknown; copy?: unknown; start_transfer?: unknown }): Promise<VerbReply> {
  const g = group(reg, input.group);
  const c = copyOf(g, input.copy, true);
  const start = yesNo('start_transfer', input.start_transfer, true);
  await imaging(() => disableImage(g, c, start));
  await g.claimsSettled();
  return { verb: 'disable_image_access', group: g.status() };
}

/** disable_copy group=G copy=C: the other copies go on; this one's regions are marked. */
export async function disableCopy(reg: GroupRegistry, input: { group: unknown; copy?: unknown }): Promise<VerbReply> {
  const g = group(reg, input.group);
  const c = copyOf(g, input.copy, true);
  stateful(() => g.disableCopy(c.name, 'operator: disable_copy'));
  await g.claimsSettled();
  return { verb: 'disable_copy', group: g.status() };
}

/** enable_copy group=G copy=C: its marked regions are sent (at once when the transfer is active). */
export async function enableCopy(reg: GroupRegistry, input: { group: unknown; copy?: unknown }): Promise<VerbReply> {
  const g = group(reg, input.group);
  const c = copyOf(g, input.copy, true);
  stateful(() => g.enableCopy(c.name, 'operator: enable_copy'));
  await g.claimsSettled();
  return { verb: 'enable_copy', group: g.status() };
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
  await g.claimsSettled();
  return { verb: 'enable_group', group: g.status() };
}

export async function disableGroup(reg: GroupRegistry, input: { group: unknown }): Promise<VerbReply> {
  const g = group(reg, input.group);
  stateful(() => g.disable('operator: disable_group'));
  await g.claimsSettled();
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

/** get_group_state: a remote copy's window is asked of its remote array first (when its link is up). */
export async function showGroup(reg: GroupRegistry, input: { group: unknown }): Promise<GroupStatus> {
  const g = group(reg, input.group);
  await g.refreshRemote();
  return g.status();
}

export async function verify(reg: GroupRegistry, input: { group: unknown; copy?: unknown; image?: unknown; at?: unknown }): Promise<VerifyResult | ImageVerifyResult> {
  const g = group(reg, input.group);
  if (input.copy !== undefined && input.copy !== null && typeof input.copy !== 'string') throw new SplitterInputError('copy', 'must be a copy name');
  const copy = (input.copy ?? undefined) as string | undefined;
  if (copy !== undefined && !g.copies.some((c) => c.name === copy)) {
    throw new SplitterNotFound(`group ${g.name} has no copy "${copy}" (copies: ${g.copies.map((c) => c.name).join(', ')})`);
  }
  if (input.at !== undefined && input.image !== true) throw new SplitterInputError('at', 'only with image: true');
  if (input.image === true) {
    if (input.at !== undefined && (typeof input.at !== 'string' || !input.at)) throw new SplitterInputError('at', 'latest, a bookmark, seq:N or an ISO time');
    return imaging(() => verifyImage(g, copy, input.at as string | undefined));
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
