/**
 * Asymmetric logical unit access (SPC-5 §5.16). One state model that an operator (admin API,
 * CLI), a host (SET TARGET PORT GROUPS) and, later, the replication engine all move through
 * transition(). The state a host sees is a function of (target port group, initiator name): a
 * per-group default plus per-host overrides, which is how host proximity (HPE Peer Persistence
 * primary/secondary) is modelled.
 *
 * Target port groups belong to a SCSI target device; every LU of the target is reachable through
 * every group, and all its LUs share the groups' states (as on the arrays this emulates). Whether
 * an LU offers implicit ALUA, explicit ALUA (SET TARGET PORT GROUPS) or both is per LU.
 */
import type { Logger } from 'pino';
import type { ArrayEvents } from '../events.ts';
import type { AluaClass, CommandDef } from './command.ts';
import type { LogicalUnit } from './lu.ts';
import type { ScsiTarget } from './target.ts';
import { SenseError } from './types.ts';
import type { Nexus } from './types.ts';
import { ACCESS_STATES } from './access-state.ts';
import type { AccessState } from './access-state.ts';

/** Asymmetric access states (defined in ./access-state.ts, which imports nothing). */
export { ACCESS_STATES };
export type { AccessState };

/** Short names people type (`--state ao`), and the spec names. */
const STATE_ALIASES: Record<string, AccessState> = {
  ao: 'active/optimized', optimized: 'active/optimized', 'active-optimized': 'active/optimized',
  ano: 'active/non-optimized', 'non-optimized': 'active/non-optimized', 'active-non-optimized': 'active/non-optimized',
  s: 'standby', u: 'unavailable', o: 'offline',
};

/** Every name parseAccessState accepts in lower case: the spec names and the short ones (the admin API's enum). */
export const ACCESS_STATE_NAMES: readonly string[] = [...Object.keys(ACCESS_STATES), ...Object.keys(STATE_ALIASES)];

export function parseAccessState(s: string): AccessState {
  const k = s.trim().toLowerCase();
  if (Object.prototype.hasOwnProperty.call(ACCESS_STATES, k)) return k as AccessState;
  const a = STATE_ALIASES[k];
  if (a) return a;
  throw new Error(`unknown access state "${s}" (want ${Object.keys(ACCESS_STATES).join(', ')} or ao/ano)`);
}

export function stateFromCode(code: number): AccessState | undefined {
  return (Object.keys(ACCESS_STATES) as AccessState[]).find((k) => ACCESS_STATES[k] === code);
}

/** TPGS field of standard INQUIRY (SPC-5 §6.7.2): which kinds of ALUA an LU supports. */
export type AluaMode = 'implicit' | 'explicit' | 'both';
export const ALUA_MODES: readonly AluaMode[] = ['implicit', 'explicit', 'both'];
export function tpgsBits(mode: AluaMode): number {
  return mode === 'implicit' ? 0b01 : mode === 'explicit' ? 0b10 : 0b11;
}

/** RTPG STATUS CODE (SPC-5 §6.37.2 table 168). */
export const enum TpgStatus {
  None = 0x00,
  AlteredByStpg = 0x01,
  AlteredImplicitly = 0x02,
}

export interface TargetPortGroup {
  readonly id: number;
  /** Default state, for hosts without an override. */
  state: AccessState;
  preferred: boolean;
  /** Host proximity: per-initiator-name state overrides. */
  readonly hosts: Map<string, AccessState>;
  statusCode: TpgStatus;
  /** Relative target port identifiers of the ports in this group. */
  readonly ports: number[];
  /** While transitioning: the timer that applies the pending change, and its waiter. */
  pending: { timer: NodeJS.Timeout; superseded: () => void } | null;
}

export interface AluaChange {
  tpg: number;
  state: AccessState;
  /** Restrict the change to one host (proximity override). Absent: the group default, overrides cleared. */
  host?: string;
  /** Remove `host`'s override instead of setting one (state is ignored). */
  clearHost?: boolean;
  /** A group-wide change normally replaces every per-host override; this keeps them. */
  keepOverrides?: boolean;
  preferred?: boolean;
  /** Milliseconds in `transitioning` before the new state applies (default: the model's). */
  transitionMs?: number;
  /** Why: logged with the change (operator, STPG from a host, replication event …). */
  reason: string;
  /** The nexus that sent SET TARGET PORT GROUPS: excepted from the UA (SPC-5 §5.16.2.5). */
  source?: Nexus;
}

/** The states an operator or a host may request (transitioning is the array's own). */
const REQUESTABLE: ReadonlySet<AccessState> = new Set(['active/optimized', 'active/non-optimized', 'standby', 'unavailable', 'offline']);
/** The states SET TARGET PORT GROUPS may request (SPC-5 §6.42: offline and transitioning are not). */
const STPG_STATES: ReadonlySet<AccessState> = new Set(['active/optimized', 'active/non-optimized', 'standby', 'unavailable']);

/**
 * The allow-list per state (SPC-5 §5.16.2.4.x) as the lowest command ALUA class it accepts,
 * and the sense a refused command gets.
 */
const LEVEL: Record<AluaClass, number> = { media: 0, 'standby-ok': 1, 'unavailable-ok': 2, always: 3 };
const ACCEPTS: Record<AccessState, number> = {
  'active/optimized': 0, 'active/non-optimized': 0, standby: 1, unavailable: 2, transitioning: 3, offline: 3,
};
const REFUSAL = {
  'active/optimized': 'NotReadyAluaStandby', // never used: level 0 accepts everything
  'active/non-optimized': 'NotReadyAluaStandby',
  standby: 'NotReadyAluaStandby',
  unavailable: 'NotReadyAluaUnavailable',
  transitioning: 'NotReadyAluaTransitioning',
  offline: 'NotReadyAluaOffline',
} as const;

/** What the YAML `alua:` section holds (src/config.ts validates it). */
export interface AluaConfig {
  mode?: AluaMode;
  transitionMs?: number;
  groups?: { id: number; state?: string; preferred?: boolean; hosts?: Record<string, string> }[];
}

export class AluaModel {
  readonly groups = new Map<number, TargetPortGroup>();
  /** Default for LUs that do not set their own mode. */
  mode: AluaMode = 'both';
  /** Transition time in ms (RTPG extended header reports it in seconds). */
  transitionMs = 0;
  /** Observers (admin log, replication engine, labs): called after each applied change. */
  readonly listeners = new Set<(tpg: TargetPortGroup, change: AluaChange) => void>();
  /**
   * Set by an owner of the states (the replication engine): a reason to refuse a host's SET TARGET
   * PORT GROUPS for group `tpg`, or null. A Remote Copy group holds its paths unavailable while
   * its array does not serve it; a host's STPG must not make them active again.
   */
  hostChangeVeto: ((tpg: number) => string | null) | null = null;

  constructor(readonly target: ScsiTarget, readonly log?: Logger, readonly events?: ArrayEvents) {}

  /** Build from the portals (relative port id → group) and the YAML section. */
  static build(
    target: ScsiTarget, ports: { relativeTargetPortId: number; targetPortGroup: number }[], cfg: AluaConfig = {}, log?: Logger, events?: ArrayEvents,
  ): AluaModel {
    const m = new AluaModel(target, log, events);
    if (cfg.mode) m.mode = cfg.mode;
    if (cfg.transitionMs !== undefined) m.transitionMs = cfg.transitionMs;
    for (const p of ports) m.addGroup(p.targetPortGroup, [p.relativeTargetPortId]);
    for (const g of cfg.groups ?? []) {
      const tpg = m.groups.get(g.id) ?? m.addGroup(g.id, []);
      if (g.state !== undefined) tpg.state = parseAccessState(g.state);
      if (g.preferred !== undefined) tpg.preferred = g.preferred;
      for (const [host, st] of Object.entries(g.hosts ?? {})) tpg.hosts.set(host, parseAccessState(st));
    }
    return m;
  }

  addGroup(id: number, ports: number[], state: AccessState = 'active/optimized', preferred = false): TargetPortGroup {
    let g = this.groups.get(id);
    if (!g) {
      g = { id, state, preferred, hosts: new Map(), statusCode: TpgStatus.None, ports: [], pending: null };
      this.groups.set(id, g);
    }
    for (const p of ports) if (!g.ports.includes(p)) g.ports.push(p);
    g.ports.sort((a, b) => a - b);
    return g;
  }

  modeOf(lu: LogicalUnit): AluaMode {
    return lu.aluaMode ?? this.mode;
  }

  /** The state `initiatorName` sees through group `tpg`. */
  stateFor(tpg: number, initiatorName: string): AccessState {
    const g = this.groups.get(tpg);
    if (!g) return 'active/optimized';
    return g.hosts.get(initiatorName) ?? g.state;
  }

  gate(def: CommandDef, _lu: LogicalUnit, nexus: Nexus): void {
    const st = this.stateFor(nexus.targetPortGroupId, nexus.initiatorName);
    if (LEVEL[def.alua] >= ACCEPTS[st]) return;
    throw new SenseError(REFUSAL[st]);
  }

  /**
   * The one way states change. Validates, logs with the reason, passes through `transitioning`
   * when a transition time applies, and raises UA 2A/06 on every I_T nexus whose view of the
   * groups changed (except the STPG sender). Resolves once the new state is in effect.
   */
  transition(c: AluaChange): Promise<void> {
    const g = this.groups.get(c.tpg);
    if (!g) throw new Error(`no target port group ${c.tpg} (have ${[...this.groups.keys()].join(', ')})`);
    if (!c.clearHost && !REQUESTABLE.has(c.state)) throw new Error(`state ${c.state} cannot be requested`);
    if (c.host !== undefined && c.host === '') throw new Error('host must be an initiator name');
    const before = this.snapshot();
    if (g.pending) {
      // A newer change wins; whoever waited on the old one is released (it was superseded).
      clearTimeout(g.pending.timer);
      g.pending.superseded();
      g.pending = null;
    }
    const status = c.source ? TpgStatus.AlteredByStpg : TpgStatus.AlteredImplicitly;
    const apply = () => {
      if (c.clearHost) g.hosts.delete(c.host!);
      else if (c.host !== undefined) g.hosts.set(c.host, c.state);
      else { g.state = c.state; if (!c.keepOverrides) g.hosts.clear(); }
      if (c.preferred !== undefined) g.preferred = c.preferred;
      g.statusCode = status;
    };
    const ms = c.clearHost ? 0 : (c.transitionMs ?? this.transitionMs);
    this.log?.info({ tpg: c.tpg, state: c.clearHost ? '(override cleared)' : c.state, host: c.host, preferred: c.preferred, transitionMs: ms, reason: c.reason }, 'ALUA state change');
    if (ms <= 0) {
      apply();
      this.announce(before, c.source);
      this.publish(g, c, 'done');
      for (const l of this.listeners) l(g, c);
      return Promise.resolve();
    }
    if (c.host !== undefined) g.hosts.set(c.host, 'transitioning');
    else { g.state = 'transitioning'; if (!c.keepOverrides) g.hosts.clear(); }
    g.statusCode = status;
    this.announce(before, c.source);
    this.publish(g, c, 'transitioning');
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        const mid = this.snapshot();
        g.pending = null;
        apply();
        this.announce(mid, c.source);
        this.log?.info({ tpg: c.tpg, state: c.state, host: c.host }, 'ALUA transition complete');
        this.publish(g, c, 'done');
        for (const l of this.listeners) l(g, c);
        resolve();
      }, ms);
      timer.unref();
      g.pending = { timer, superseded: resolve };
    });
  }

  /**
   * SET TARGET PORT GROUPS from a host (SPC-5 §6.42). Validates every descriptor before changing
   * anything. A host with a proximity override on a group moves its own view; otherwise the
   * group's default moves (other hosts' overrides stay).
   */
  setFromHost(nexus: Nexus, descriptors: { tpg: number; state: AccessState; offset: number }[]): Promise<void> {
    for (const d of descriptors) {
      if (!STPG_STATES.has(d.state)) throw new SenseError('InvalidFieldInParameterList', { fieldPointer: { inCdb: false, byte: d.offset, bit: 3 } });
      if (!this.groups.has(d.tpg)) throw new SenseError('InvalidFieldInParameterList', { fieldPointer: { inCdb: false, byte: d.offset + 2 } });
      // An unsupported combination of states is refused with this sense (SPC-5 §6.42): here, a
      // group the replication holds unavailable. Linux's scsi_dh_alua sends STPG to activate the
      // path group dm-multipath switches to, so without this a link cut made the non-serving
      // secondary active/optimized (found with tools/vm/metro-test.sh).
      const veto = this.groups.get(d.tpg)!.state !== d.state ? this.hostChangeVeto?.(d.tpg) : null;
      if (veto) {
        this.log?.info({ tpg: d.tpg, state: d.state, host: nexus.initiatorName, why: veto }, 'SET TARGET PORT GROUPS refused');
        throw new SenseError('InvalidFieldInParameterList', { fieldPointer: { inCdb: false, byte: d.offset, bit: 3 } });
      }
    }
    const done: Promise<void>[] = [];
    for (const d of descriptors) {
      const g = this.groups.get(d.tpg)!;
      const own = g.hosts.has(nexus.initiatorName);
      const cur = own ? g.hosts.get(nexus.initiatorName)! : g.state;
      if (cur === d.state) continue;
      const reason = `SET TARGET PORT GROUPS from ${nexus.initiatorName}`;
      done.push(this.transition({ tpg: d.tpg, state: d.state, host: own ? nexus.initiatorName : undefined, keepOverrides: true, reason, source: nexus }));
    }
    return Promise.all(done).then(() => undefined);
  }

  /** The group as it is after this step, on the array's event bus (GET /v1/events). */
  private publish(g: TargetPortGroup, c: AluaChange, phase: 'transitioning' | 'done'): void {
    this.events?.emit({
      type: 'alua.state', target: this.target.name, tpg: g.id, host: c.host ?? null, state: g.state, preferred: g.preferred,
      hosts: Object.fromEntries(g.hosts), phase, reason: c.reason,
    });
  }

  /** View of every nexus (all groups as its host sees them), to find which nexuses a change touched. */
  private snapshot(): Map<string, string> {
    const m = new Map<string, string>();
    for (const n of this.target.nexuses.values()) m.set(n.key, this.view(n.initiatorName));
    return m;
  }

  private view(host: string): string {
    // RTPG reports every group, so a change of any group changes what a nexus can see.
    let s = '';
    for (const g of this.groups.values()) s += `${g.id}:${g.hosts.get(host) ?? g.state}:${g.preferred ? 1 : 0};`;
    return s;
  }

  private announce(before: Map<string, string>, source: Nexus | undefined): void {
    const after = this.snapshot();
    for (const [k, v] of after) {
      if (before.get(k) === v || k === source?.key) continue;
      for (const lu of this.target.luns.values()) lu.ua.establish(k, 'AsymmetricAccessStateChanged');
    }
  }

  /** REPORT TARGET PORT GROUPS parameter data (SPC-5 §6.37.2), as `nexus` sees the groups. */
  reportTargetPortGroups(nexus: Nexus, extended: boolean): Buffer {
    const groups = [...this.groups.values()].sort((a, b) => a.id - b.id);
    const len = groups.reduce((n, g) => n + 8 + 4 * g.ports.length, 0);
    const hdr = extended ? 8 : 4;
    const b = Buffer.alloc(hdr + len);
    b.writeUInt32BE(len + hdr - 4, 0); // RETURN DATA LENGTH: bytes after the field
    if (extended) {
      b[4] = 0x10; // FORMAT TYPE 001b
      b[7] = Math.min(255, Math.ceil(this.transitionMs / 1000)); // IMPLICIT TRANSITION TIME, seconds
    }
    let o = hdr;
    for (const g of groups) {
      const st = g.hosts.get(nexus.initiatorName) ?? g.state;
      b[o] = (g.preferred ? 0x80 : 0) | ACCESS_STATES[st];
      // T_SUP O_SUP U_SUP S_SUP AN_SUP AO_SUP; LBD_SUP=0 (no LBA-dependent state).
      b[o + 1] = 0x80 | 0x40 | 0x08 | 0x04 | 0x02 | 0x01;
      b.writeUInt16BE(g.id, o + 2);
      b[o + 5] = g.statusCode;
      b[o + 7] = g.ports.length;
      o += 8;
      for (const p of g.ports) { b.writeUInt16BE(p, o + 2); o += 4; }
    }
    return b;
  }

  toJSON(): unknown {
    return {
      mode: this.mode,
      transitionMs: this.transitionMs,
      luns: [...this.target.luns.values()].map((lu) => ({ lun: lu.lun, mode: this.modeOf(lu) })),
      groups: [...this.groups.values()].sort((a, b) => a.id - b.id).map((g) => ({
        id: g.id, state: g.state, preferred: g.preferred, ports: g.ports, statusCode: g.statusCode,
        hosts: Object.fromEntries(g.hosts),
      })),
    };
  }
}
