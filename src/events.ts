/**
 * The array's event bus: every state change an operator or a console wants to see as it happens
 * (ALUA transitions, iSCSI sessions; later the splitter and replication), published by the one
 * place that makes the change and read by the admin API's `GET /v1/events` stream.
 *
 * State changes only: nothing on the per-command I/O path publishes here (counters are what the
 * status and metrics routes are for).
 *
 * To add an event kind: add a member to `ArrayEvent` (a `type` of `<area>.<what>`), add its JSON
 * schema to EVENT_SCHEMAS in src/admin/routes/events.ts (the OpenAPI document and the test that
 * checks every event against it read that list), and call `events.emit({ type, ... })` where the
 * change is made.
 */
// Type-only imports of modules that import nothing: the browser console (src/admin/console/web/api.ts)
// imports these event types, and its typecheck must not pull in the server.
import type { AccessState } from './scsi/access-state.ts';

/** Fields every event carries, filled in by the bus. */
export interface EventStamp {
  /** Position in this process's event stream, from 1; the SSE `id:`. */
  seq: number;
  /** ISO 8601 UTC time of the change. */
  time: string;
}

/**
 * A target port group's state after one step of a change (SPC-5 §5.16): `transitioning` when the
 * change has a transition time, then the new state once it is in effect. The whole group is in
 * each event (default state, PREF, per-host overrides), so a consumer needs no other read.
 */
export interface AluaStateEvent {
  type: 'alua.state';
  target: string;
  tpg: number;
  /** The host whose view was changed (a proximity override), or null for the group default. */
  host: string | null;
  /** The group's default state after this step. */
  state: AccessState;
  preferred: boolean;
  /** Per-host overrides after this step (initiator name → state). */
  hosts: Record<string, AccessState>;
  /** `transitioning`: the group is in transition; `done`: the requested state is in effect. */
  phase: 'transitioning' | 'done';
  reason: string;
}

/** Fields of every session event (RFC 7143 §4.4.1: initiator name + ISID + TPGT name a session). */
export interface SessionFields {
  target: string | null;
  initiator: string;
  isid: string;
  tsih: number;
  tpgt: number;
  /** The portal the session logged in through, HOST:PORT. */
  portal: string;
  sessionType: 'Normal' | 'Discovery';
}

export type SessionEvent =
  | ({ type: 'session.login' } & SessionFields)
  | ({ type: 'session.logout' } & SessionFields)
  /** Ended without a logout: connection lost, NOP-Out timeout, reinstatement, shutdown. */
  | ({ type: 'session.drop'; why: string } & SessionFields);

/** A Remote Copy group's SyncStatus changed on this array (src/replication, one transition()). */
export interface RcopyGroupEvent {
  type: 'rcopy.group';
  group: string;
  role: 'primary' | 'secondary';
  from: 'Stopped' | 'Syncing' | 'Synced' | 'Failsafe';
  to: 'Stopped' | 'Syncing' | 'Synced' | 'Failsafe';
  reason: string;
}

/**
 * A Remote Copy group's role changed on this array: `rcopy.failover` when this array became
 * primary by a failover (automatic, granted by the quorum witness, or the operator's), and
 * `rcopy.role` for the other changes (demotion of a failed-over primary, restore, reverse).
 */
export interface RcopyRoleEvent {
  type: 'rcopy.failover' | 'rcopy.role';
  group: string;
  from: 'primary' | 'secondary';
  to: 'primary' | 'secondary';
  epoch: number;
  reason: string;
}

/** A consistency group's transfer state changed (src/splitter/group.ts transition()). */
export interface GroupTransferEvent {
  type: 'group.transfer';
  group: string;
  from: 'init' | 'active' | 'paused' | 'error';
  to: 'init' | 'active' | 'paused' | 'error';
  reason: string;
}

/**
 * A consistency group copy's storage access changed (RecoverPoint's image access,
 * src/splitter/image.ts): enable_image_access (phase `rolling` while the replica is rolled to the
 * image, its LUs not ready yet, then `done`), set_image_access_mode (logged → direct),
 * disable_image_access, or an enable that failed (back to no-access).
 */
export interface ImageAccessEvent {
  type: 'group.image-access';
  group: string;
  copy: string;
  from: 'no-access' | 'logged-access' | 'direct-access' | 'virtual-access';
  to: 'no-access' | 'logged-access' | 'direct-access' | 'virtual-access';
  phase: 'rolling' | 'done';
  /** The image the copy gives access to, as the operator named it (latest, a bookmark, a time, seq:N); null with no access. */
  image: string | null;
  /** The journal sequence of that image (not the event's own `seq`); null with no access. */
  imageSeq: number | null;
  bookmark: string | null;
  reason: string;
}

/** A consistency group copy was disabled (disable_copy: not distributed to, its regions marked) or enabled again (enable_copy). */
export interface CopyStateEvent {
  type: 'group.copy';
  group: string;
  copy: string;
  from: 'enabled' | 'disabled';
  to: 'enabled' | 'disabled';
  /** Regions marked for the copy at the change (what enable_copy will send, short of a full sweep). */
  markedRegions: number;
  reason: string;
}

/**
 * A consistency group's high load began (its journal is full of writes not yet distributed:
 * writes mark their regions instead) or ended (the copies caught up; a short initialization sends
 * the marked regions). src/splitter/group.ts ConsistencyGroup.highLoad.
 */
export interface HighLoadEvent {
  type: 'group.high-load';
  group: string;
  highLoad: boolean;
  reason: string;
}

export type ArrayEventBody = AluaStateEvent | SessionEvent | GroupTransferEvent | ImageAccessEvent | CopyStateEvent | HighLoadEvent | RcopyGroupEvent | RcopyRoleEvent;
export type ArrayEvent = ArrayEventBody & EventStamp;
export type ArrayEventType = ArrayEvent['type'];

export type EventListener = (e: ArrayEvent) => void;

export class ArrayEvents {
  private readonly listeners = new Set<EventListener>();
  private seq = 0;

  /** @param onListenerError told when a subscriber throws (the publisher and the others carry on). */
  constructor(private readonly onListenerError?: (err: unknown, e: ArrayEvent) => void) {}

  /** Publish one change; subscribers are called synchronously, in subscription order. */
  emit(body: ArrayEventBody): ArrayEvent {
    const e = { ...body, seq: ++this.seq, time: new Date().toISOString() } as ArrayEvent;
    for (const l of this.listeners) {
      try {
        l(e);
      } catch (err) {
        this.onListenerError?.(err, e);
      }
    }
    return e;
  }

  /** Returns the function that unsubscribes. */
  subscribe(fn: EventListener): () => void {
    this.listeners.add(fn);
    return () => { this.listeners.delete(fn); };
  }

  get subscribers(): number {
    return this.listeners.size;
  }

  /** The seq of the last event published (0: none yet). */
  get lastSeq(): number {
    return this.seq;
  }
}
