/**
 * The wait on an origin (group-types.ts Origin): how the shell (replication-group.ts) hands the
 * outcome of a write the group machine ordered back to whoever waits, with no map and no second
 * object per write. Split from engine.ts with the group's phases, so that those that start writes
 * of their own (peer-requests.ts: a forwarded write; resync-sender.ts: a resync chunk) make and
 * await their origins as the host write path does, without a cycle through the group's module.
 */
import type { Origin } from './group-types.ts';

/**
 * An origin this array waits on (a host command, a resync write), and the wait itself: the machine
 * hands back the very Origin object it was given, so the outcome is settled on it, with no map and
 * no second object per write. `state` 0 until completed, then 1 ok or 2 failed; `resolve`/`reject`
 * are the promise's once someone awaits (not when the machine completed it within the step that
 * started it).
 */
export type Waited = Origin & {
  state: 0 | 1 | 2; err: unknown; resolve: (() => void) | null; reject: ((e: unknown) => void) | null;
  /** A host write's extents pinned in the primary's activity log (activity-log.ts), until it completes. */
  pin: readonly number[] | null;
};

export function waited(kind: 'local' | 'resync', id: number): Waited;
export function waited(kind: 'forwarded', id: bigint): Waited;
export function waited(kind: Origin['kind'], id: number | bigint): Waited {
  return { kind, id, state: 0, err: undefined, resolve: null, reject: null, pin: null } as Waited;
}

/** Settle `w` once: at once for whoever awaits it, or kept for ReplicationGroup.await to return or throw. */
export function settle(w: Waited, ok: boolean, err?: unknown): void {
  if (ok) { w.state = 1; w.resolve?.(); return; }
  w.state = 2;
  if (w.reject) w.reject(err); else w.err = err;
}
