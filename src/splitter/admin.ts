/**
 * The consistency-group operations of the admin API as plain functions: an input object in, a
 * JSON-ready result out, errors that name the field (SplitterInputError) or the missing object
 * (SplitterNotFound). The HTTP router maps them to routes:
 *   GET  /v1/groups                      listGroups
 *   GET  /v1/groups/:group               showGroup
 *   POST /v1/groups/:group/verify        {copy?}  verify
 *   POST /v1/groups/:group/bookmarks     {name}   bookmark
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
