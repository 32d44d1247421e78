/**
 * Remote Copy on one array: the groups (replication-group.ts, each the shell around its group
 * machine, group-machine.ts), the link listener that routes an accepted link to its group by the
 * hello, the binding of the groups' volumes to their LUs and target port groups, and the link
 * faults. The shell decides nothing itself: it turns sockets and store calls into events for a
 * machine and carries out the actions the machine returns.
 *
 * Topology: one TCP connection per group, dialled by the array the configuration makes primary
 * to the other's link listener (`peers.listen`), whatever the roles are now (after a failover or
 * a reverse the dialler may be secondary); the dialler sends a hello first (array id, group,
 * role, epoch, each volume's WWN, serial and geometry), the listener answers with its own, and
 * the link is up only when they agree (link-session.ts). With `peers.witness` a WitnessClient
 * (witness-client.ts) keeps the groups in touch with the quorum witness.
 *
 * By phase, as LIO splits its target: a group's write path is replication-group.ts, its link
 * from dial to loss link-session.ts, the peer's requests peer-requests.ts, its resync
 * resync-sender.ts. This module keeps the array-wide part and the configuration's types, and
 * re-exports what importers used to find here.
 */
import net from 'node:net';
import type { Logger } from 'pino';
import { encodeMessage, LinkFramer } from '../../protocol/replication/link.ts';
import type { LinkMessage } from '../../protocol/replication/link.ts';
import type { GroupVerdict } from '../../protocol/replication/witness.ts';
import type { ArrayEvents } from '../events.ts';
import type { AccessState } from '../scsi/alua.ts';
import type { LogicalUnit } from '../scsi/lu.ts';
import type { ScsiTarget } from '../scsi/target.ts';
import { AdminError } from '../admin/errors.ts';
import { FaultStore } from '../store/fault.ts';
import type { StoreFault } from '../store/fault.ts';
import type { BackingStore } from '../store/store.ts';
import { interceptCompareAndWrite } from './caw-forward.ts';
import { PROXIMITIES } from './group-types.ts';
import type { GroupPolicies, Proximity, Role, WitnessView } from './group-types.ts';
import { LinkFaultInjector } from './link-faults.ts';
import type { LinkFaultRequest, LinkFaults } from './link-faults.ts';
import { LinkReader } from './link-reader.ts';
import type { DataIntegrity } from './link-session.ts';
import { interceptPersistentReserveOut } from './pr-replication.ts';
import { ReplicatedStore } from './replicated-store.ts';
import { ReplicationGroup } from './replication-group.ts';
import { answerGroupAdmin } from './runtime-groups.ts';
import { readRuntimeState, RuntimeStateFile } from './runtime-state.ts';
import type { SavedGroup } from './runtime-state.ts';
import { gateSanitize } from './sanitize-gate.ts';
import { WitnessClient } from './witness-client.ts';
import type { WitnessClientStatus } from './witness-client.ts';

export { ReplicationGroup };
export type { FaultHooks } from './replication-group.ts';
export { checksData, DATA_INTEGRITY } from './link-session.ts';
export type { DataIntegrity } from './link-session.ts';

export interface PeersConfig {
  /** This array's name on the link (hello). */
  name: string;
  /** HOST:PORT of this array's link listener (a secondary needs one). */
  listen?: { host: string; port: number };
  /** HOST:PORT of the peer's link listener (a primary dials it). */
  peer?: { host: string; port: number };
  /** HOST:PORT of the quorum witness (`arraysim witness`): automatic failover and Failsafe need it. */
  witness?: { host: string; port: number };
  /**
   * Whether the data of the writes this array sends is in the link's CRC32C (README "Link data
   * integrity"): `crc32c` always, `none` never (TCP's checksum alone, DRBD's default), `auto`
   * (default) unless the link is on loopback. Headers, fields and other messages are always checked.
   */
  dataIntegrity?: DataIntegrity;
  /**
   * The file that keeps the groups the rcopy verbs make (runtime-state.ts), so that they survive a
   * restart. Without it they live until the process ends.
   */
  state?: string;
}


export interface RcopyGroupConfig {
  name: string;
  role: Role;
  /**
   * The group's volumes in order: the same order on both arrays. `naa` and `serial`: the identity a
   * secondary volume presents, the primary's (admitvv; peers.state brings it back at a restart).
   */
  volumes: { target: string; lun: number; naa?: string; serial?: string }[];
  policies?: Partial<GroupPolicies>;
  hosts?: Record<string, Proximity>;
  /** Start replicating as soon as the link is up (default true; the primary decides). */
  start?: boolean;
  /** Made by `rcopy creategroup` (runtime-groups.ts), in this process unless `restored`: dismissvv and removegroup may undo it. */
  runtime?: boolean;
  /** A runtime group brought back from peers.state at start (runtime-state.ts): a restart, as for a configured group. */
  restored?: boolean;
}

export interface RcopyConfig {
  groups: RcopyGroupConfig[];
}

export type { LinkFaults, LinkFaultRequest } from './link-faults.ts';

/**
 * Remote Copy on one array: its groups, its link listener, its link faults. Built by
 * StorageArray before the LUs (so their stores can be wrapped) and bound to them after.
 */
export class RemoteCopy {
  readonly groups = new Map<string, ReplicationGroup>();
  readonly injector = new LinkFaultInjector();
  get faults(): LinkFaults { return this.injector.faults; }
  private server: net.Server | null = null;
  private readonly byVolume = new Map<string, { group: ReplicationGroup; index: number }>();
  private readonly accepted = new Set<net.Socket>();
  /** In touch with the quorum witness (peers.witness), or null. */
  readonly witness: WitnessClient | null;
  /** Test hooks (never from configuration): acknowledge before the peer has the write; serve on both sides of a partition. */
  static unsafeAckBeforePeer = false;
  static unsafeSplitBrain = false;

  constructor(readonly peers: PeersConfig, readonly cfg: RcopyConfig, readonly log: Logger, readonly events?: ArrayEvents) {
    // The checker's negative control (README "Correctness checker"): honoured only when set explicitly.
    if (process.env.ARRAYSIM_FAULT_HOOK === 'ack-before-peer') {
      RemoteCopy.unsafeAckBeforePeer = true;
      log.warn('ARRAYSIM_FAULT_HOOK=ack-before-peer: writes are acknowledged before the peer has them (test hook)');
    }
    if (process.env.ARRAYSIM_FAULT_HOOK === 'split-brain') {
      RemoteCopy.unsafeSplitBrain = true;
      log.warn('ARRAYSIM_FAULT_HOOK=split-brain: a secondary takes over on link loss without the witness, and a primary writes alone without it (test hook)');
    }
    for (const g of cfg.groups) this.addGroup(g);
    if (peers.state) {
      this.state = new RuntimeStateFile(peers.state, peers.name);
      for (const g of readRuntimeState(peers.state, peers.name)) {
        if (this.groups.has(g.name)) throw new Error(`peers.state ${peers.state}: group ${g.name} is also in rcopy.groups (one or the other)`);
        this.addGroup({ ...g, runtime: true, restored: true });
        log.info({ group: g.name, role: g.role, volumes: g.volumes.length, file: peers.state }, 'Remote Copy group made by the rcopy verbs, restored from peers.state');
      }
    }
    this.witness = peers.witness ? new WitnessClient(peers.witness, peers.name, {
      reports: () => [...this.groups.values()].filter((g) => g.machine.reportsToWitness).map((g) => g.machine.witnessReport()),
      verdict: (v: GroupVerdict, sentAt: number, now: number) => {
        const g = this.groups.get(v.group);
        g?.step({ kind: 'witness', verdict: v, sentAt, now });
        g?.metaHeader(); // the witness may have raised the epoch
      },
    }, log.child({ component: 'witness-client' })) : null;
  }

  /** peers.state: where the groups made by the verbs are kept (runtime-state.ts), or null. */
  readonly state: RuntimeStateFile | null = null;

  /**
   * A group made by the verbs changed (runtime-groups.ts, and startgroup, stopgroup, admithost on
   * one): write every such group to peers.state before the verb answers. Without peers.state,
   * nothing to do: they live until the process ends.
   */
  async saveRuntime(): Promise<void> {
    if (!this.state) return;
    try {
      await this.state.save(() => [...this.groups.values()].filter((g) => g.cfg.runtime).map((g) => this.savedGroup(g)));
    } catch (e) {
      this.log.error({ file: this.state.file, err: (e as Error).message }, 'peers.state not written');
      throw new AdminError(500, `the change is made, but peers.state ${this.state.file} was not written (${(e as Error).message}): a restart would not have it`, null);
    }
  }

  private savedGroup(g: ReplicationGroup): SavedGroup {
    const m = g.machine;
    return {
      name: g.cfg.name, role: g.cfg.role, start: m.started, policies: { ...m.policies }, hosts: Object.fromEntries(m.hosts),
      volumes: g.cfg.volumes.map((v, i) => {
        const lu = g.volumes[i];
        return { target: v.target, lun: v.lun, ...(lu && this.ownIdentity.has(lu) ? { naa: lu.naa, serial: lu.serial } : {}) };
      }),
    };
  }

  /** A group of the configuration, or one `rcopy creategroup` makes (runtime-groups.ts: started at once if the array runs). */
  addGroup(g: RcopyGroupConfig): ReplicationGroup {
    if (this.groups.has(g.name)) throw new Error(`rcopy.groups: group ${g.name} twice`);
    const group = new ReplicationGroup(this, g, this.log.child({ component: 'rcopy' }), { ackBeforePeer: RemoteCopy.unsafeAckBeforePeer, splitBrain: RemoteCopy.unsafeSplitBrain });
    this.groups.set(g.name, group);
    g.volumes.forEach((v, i) => this.claim(v.target, v.lun, group, i));
    if (this.running) group.start();
    return group;
  }

  private claim(target: string, lun: number, group: ReplicationGroup, index: number): void {
    const k = `${target}\0${lun}`;
    if (this.byVolume.has(k)) throw new Error(`rcopy.groups: ${target} LUN ${lun} is in two groups`);
    this.byVolume.set(k, { group, index });
  }

  /** The group a volume belongs to, if any. */
  groupOf(target: string, lun: number): ReplicationGroup | undefined { return this.byVolume.get(`${target}\0${lun}`)?.group; }

  /** A LU of this array (after bind). */
  lu(target: string, lun: number): LogicalUnit | undefined { return this.targets.get(target)?.luns.get(lun); }

  /** This array's target names, the first being the default one. */
  targetNames(): string[] { return [...this.targets.keys()]; }

  /**
   * admitvv (runtime-groups.ts): join a running LU to a group as its next volume. Its store is put
   * behind a ReplicatedStore now (wrapStore does that for configured volumes before the LU exists),
   * and the group takes over its target's port groups as bind() does.
   */
  admit(g: ReplicationGroup, target: string, lu: LogicalUnit): number {
    const index = g.cfg.volumes.length;
    const t = this.targets.get(target);
    if (t && !this.holds(target)) {
      // transitioning is the array's own state, never requested: such a group is left as it ends.
      this.aluaBefore.set(target, [...t.alua.groups.values()].filter((x) => x.ports.length && x.state !== 'transitioning')
        .map((x) => ({ id: x.id, state: x.state, hosts: [...x.hosts].filter(([, st]) => st !== 'transitioning') })));
    }
    this.claim(target, lu.lun, g, index);
    g.cfg.volumes.push({ target, lun: lu.lun });
    if (!(lu.store instanceof ReplicatedStore)) lu.store = new ReplicatedStore(lu.store);
    this.adopt(target, lu);
    this.own(g, target);
    const a = g.machine.alua();
    this.applyAlua(g, a.state, a.hosts, `admitvv ${target} LUN ${lu.lun}`);
    return index;
  }

  /** The store a replicated LU is built on (its writes go through its group). */
  wrapStore(target: string, lun: number, store: BackingStore): BackingStore {
    return this.byVolume.has(`${target}\0${lun}`) ? new ReplicatedStore(store) : store;
  }

  /** The LU exists: join it to its group. */
  adopt(target: string, lu: LogicalUnit): void {
    const v = this.byVolume.get(`${target}\0${lu.lun}`);
    if (!v) return;
    if (!(lu.store instanceof ReplicatedStore)) throw new Error(`${target} LUN ${lu.lun}: store was not wrapped for replication`);
    const undo = saved(lu);
    // A secondary volume of a group peers.state brought back: the primary's identity, as admitvv gave it.
    const id = v.group.cfg.volumes[v.index];
    if (id.naa && id.serial !== undefined && (id.naa !== lu.naa || id.serial !== lu.serial)) {
      this.ownIdentity.set(lu, { naa: lu.naa, serial: lu.serial });
      lu.naa = id.naa;
      lu.serial = id.serial;
    }
    lu.store.volume = v.index;
    lu.store.sink = v.group;
    lu.store.serving = () => v.group.machine.serving;
    // A store fault (its RAID set or metadata failing) is the group's to handle (group-machine.ts, store failure).
    const inner = lu.store.inner;
    if (inner instanceof FaultStore) {
      const listener = (f: StoreFault | null) => v.group.step({ kind: 'store', volume: v.index, failed: f !== null, why: f ? `injected ${f.sense}` : 'repaired' });
      inner.listeners.add(listener);
      undo.push(() => inner.listeners.delete(listener));
    }
    v.group.volumes[v.index] = lu;
    // Any memory volume makes the group's data volatile: a restart loses it (GroupMachine.reconcileRestart).
    if (lu.store.kind === 'memory') v.group.machine.volatile = true;
    v.group.stores[v.index] = lu.store;
    interceptCompareAndWrite(lu, v.group);
    interceptPersistentReserveOut(lu, v.group, () => v.index);
    lu.reservations.peerPorts = () => v.group.peerPorts;
    gateSanitize(lu, v.group);
    this.unbinders.set(lu, () => { for (const f of undo.reverse()) f(); });
  }

  /** What adopt() changed on each LU of a group, to put back when it leaves (unbind). */
  private readonly unbinders = new WeakMap<LogicalUnit, () => void>();
  /**
   * A LU admitted as a secondary volume, and the NAA and serial it had before it took the
   * primary's (runtime-groups.ts): dismissvv and removegroup give them back.
   */
  readonly ownIdentity = new WeakMap<LogicalUnit, { naa: string; serial: string }>();
  /** A target's port group states before a group first held a volume on it (admit), put back when none does. */
  private readonly aluaBefore = new Map<string, { id: number; state: AccessState; hosts: [string, AccessState][] }[]>();

  /**
   * dismissvv (runtime-groups.ts): volume `index` leaves the stopped group `g` and serves as a
   * plain LU again: its store, its command interceptors and, if it borrowed the other array's
   * identity, its own NAA and serial back. The volumes after it move down one place (the same on
   * both arrays); a target no group holds a volume on any more gets its port group states back.
   * The caller holds host writes (ReplicationGroup.paused) and has drained the ones in flight.
   */
  dismiss(g: ReplicationGroup, index: number, reason: string): LogicalUnit {
    const lu = g.volumes[index];
    const v = g.cfg.volumes[index];
    const store = g.stores[index];
    this.unbinders.get(lu)?.();
    this.unbinders.delete(lu);
    store.sink = null;
    store.serving = null;
    store.volume = -1;
    if (lu.store === store) lu.store = store.inner;
    const own = this.ownIdentity.get(lu);
    if (own) {
      this.ownIdentity.delete(lu);
      lu.naa = own.naa;
      lu.serial = own.serial;
      // SPC-5 (INQUIRY): changed INQUIRY data is reported to every I_T nexus as UNIT ATTENTION 3F/03.
      lu.ua.establishAll(lu.target.nexusKeys(), 'InquiryDataChanged');
    }
    this.byVolume.delete(`${v.target}\0${v.lun}`);
    g.cfg.volumes.splice(index, 1);
    g.volumes.splice(index, 1);
    g.stores.splice(index, 1);
    g.cfg.volumes.forEach((x, i) => {
      // The entry adopt()'s closures read (PR, store faults): renumbered in place.
      this.byVolume.get(`${x.target}\0${x.lun}`)!.index = i;
      g.stores[i].volume = i;
    });
    g.machine.dismissed(index);
    // The group may be served again (its failed volume dismissed): its remaining targets show it.
    const a = g.machine.alua();
    this.applyAlua(g, a.state, a.hosts, reason);
    this.release(v.target, `rcopy ${g.cfg.name}: ${reason}`);
    return lu;
  }

  /** removegroup (runtime-groups.ts): the group, stopped and with no volume left, goes; its link closes. */
  removeGroup(g: ReplicationGroup): void {
    if (g.cfg.volumes.length) throw new Error(`group ${g.cfg.name} still has volumes`);
    g.stop();
    this.groups.delete(g.cfg.name);
  }

  private holds(target: string): boolean {
    for (const g of this.groups.values()) if (g.cfg.volumes.some((v) => v.target === target)) return true;
    return false;
  }

  /** No group holds a volume on `target` any more: its port groups show what they showed before. */
  private release(target: string, reason: string): void {
    const before = this.aluaBefore.get(target);
    const t = this.targets.get(target);
    if (!before || !t || this.holds(target)) return;
    this.aluaBefore.delete(target);
    for (const b of before) {
      void t.alua.transition({ tpg: b.id, state: b.state, reason, transitionMs: 0 });
      for (const [h, st] of b.hosts) void t.alua.transition({ tpg: b.id, state: st, host: h, reason, transitionMs: 0 });
    }
  }

  /** Every group's metadata file, read before the array serves (ReplicationGroup.loadMeta). */
  async loadMeta(): Promise<void> {
    for (const g of this.groups.values()) await g.loadMeta();
  }

  /** Every volume is bound, every target's ALUA model exists: show the groups' initial ALUA. */
  bind(targets: Map<string, ScsiTarget>): void {
    this.targets = targets;
    for (const g of this.groups.values()) {
      g.cfg.volumes.forEach((v, i) => { if (!g.volumes[i]) throw new Error(`rcopy group ${g.cfg.name}: no LUN ${v.lun} on target ${v.target}`); });
      for (const name of new Set(g.cfg.volumes.map((v) => v.target))) this.own(g, name);
      const a = g.machine.alua();
      this.applyAlua(g, a.state, a.hosts, 'Remote Copy group configured');
    }
  }

  private readonly owned = new Set<string>();

  /** The group owns its target port groups' states: no host moves a non-serving array's paths. */
  private own(g: ReplicationGroup, name: string): void {
    const t = this.targets.get(name);
    const k = `${g.cfg.name}\0${name}`;
    if (!t || this.owned.has(k)) return;
    this.owned.add(k);
    const prev = t.alua.hostChangeVeto;
    const group = g.cfg.name;
    // Looked up at each STPG: the group may have lost its volumes on this target or been removed (dismissvv, removegroup).
    t.alua.hostChangeVeto = (tpg) => {
      const cur = this.groups.get(group);
      const holds = cur?.cfg.volumes.some((v) => v.target === name);
      return prev?.(tpg) ?? (!cur || !holds || cur.machine.serving ? null : `Remote Copy group ${group} is not served by this array (${cur.machine.status})`);
    };
  }

  private targets = new Map<string, ScsiTarget>();
  /** start() has run: a group added later starts at once. */
  private running = false;

  /** Relative target port identifiers of this array's ports for the group's volumes (the hello's `ports`). */
  relativePorts(g: ReplicationGroup): number[] {
    const ids = new Set<number>();
    for (const v of g.cfg.volumes) {
      for (const tpg of this.targets.get(v.target)?.alua.groups.values() ?? []) for (const p of tpg.ports) ids.add(p);
    }
    return [...ids].sort((a, b) => a - b);
  }

  /** Set this array's target port groups (of the targets holding the group's volumes) to what the group says. */
  applyAlua(g: ReplicationGroup, state: AccessState, hosts: Record<string, AccessState>, reason: string): void {
    const names = new Set(g.cfg.volumes.map((v) => v.target));
    for (const name of names) {
      const t = this.targets.get(name);
      if (!t) continue;
      for (const tpg of t.alua.groups.values()) {
        if (!tpg.ports.length) continue;
        const same = tpg.state === state && tpg.hosts.size === Object.keys(hosts).length && Object.entries(hosts).every(([h, s]) => tpg.hosts.get(h) === s);
        if (same) continue;
        void t.alua.transition({ tpg: tpg.id, state, reason: `rcopy ${g.cfg.name}: ${reason}`, transitionMs: 0 });
        for (const [h, s] of Object.entries(hosts)) void t.alua.transition({ tpg: tpg.id, state: s, host: h, reason: `rcopy ${g.cfg.name}: ${reason}`, transitionMs: 0 });
      }
    }
  }

  async start(): Promise<void> {
    if (this.peers.listen) {
      const l = this.peers.listen;
      // Paused on accept: the socket is first moved to one reading into a LinkReader's buffer.
      this.server = net.createServer({ pauseOnConnect: true }, (s) => this.accept(s));
      await new Promise<void>((resolve, reject) => {
        this.server!.once('error', reject);
        this.server!.listen(l.port, l.host, () => {
          const a = this.server!.address();
          if (a && typeof a === 'object') l.port = a.port;
          this.log.info({ link: `${l.host}:${l.port}` }, 'replication link listening');
          resolve();
        });
      });
    }
    this.running = true;
    for (const g of this.groups.values()) g.start();
    this.witness?.start();
  }

  /** An incoming link: routed to its group by the first message (a hello). */
  private accept(raw: net.Socket): void {
    if (this.faults.cut) { raw.destroy(); return; }
    const reader = new LinkReader();
    const s = reader.adopt(raw);
    this.accepted.add(s);
    s.on('close', () => this.accepted.delete(s));
    s.on('error', () => {});
    const framer = new LinkFramer();
    const timer = setTimeout(() => s.destroy(), 5000);
    timer.unref();
    let routed: ((sequence: number, m: LinkMessage) => void) | null = null;
    reader.onChunk = (chunk: Buffer) => framer.push(chunk, (ev) => {
      if (ev.kind === 'error') { s.destroy(); return; }
      // Messages after the hello in the same chunk go to the group the hello chose.
      if (routed) { routed(ev.sequence, ev.message); return; }
      reader.onChunk = () => {};
      clearTimeout(timer);
      const m = ev.message;
      if (m.type === 'group-admin') { void answerGroupAdmin(this, s, m.request); return; }
      const g = m.type === 'hello' ? this.groups.get(m.group) : undefined;
      if (!g) {
        const parts = encodeMessage({ type: 'error', code: 'unknown-group', message: m.type === 'hello' ? `no group ${m.group} here` : 'expected hello' }, 0);
        for (const p of parts) s.write(p);
        s.end();
        return;
      }
      routed = g.attach(s, framer, reader, { sequence: ev.sequence, message: m });
    });
    this.injector.receiving(s, reader.userBuffers);
  }

  /** POST /v1/rcopy/link: cut, restore, latency, loss, one-way partition of every replication link of this array (link-faults.ts). */
  setLink(o: LinkFaultRequest): void {
    if (this.injector.set(o)) {
      for (const g of this.groups.values()) g.cut();
      for (const s of this.accepted) s.destroy();
    }
    this.log.warn({ faults: this.faults }, 'replication link fault injection');
  }

  status(): { array: string; link: ReturnType<LinkFaultInjector['status']> & { listen: string | null; peer: string | null }; witness: WitnessStatus | null; groups: ReturnType<ReplicationGroup['snapshot']>[] } {
    const hp = (x?: { host: string; port: number }) => (x ? `${x.host}:${x.port}` : null);
    return { array: this.peers.name, link: { ...this.injector.status(), listen: hp(this.peers.listen), peer: hp(this.peers.peer) }, witness: this.witnessStatus(), groups: [...this.groups.values()].map((g) => g.snapshot()) };
  }

  /** `rcopy witness status`: the connection to the witness and each group's last verdict as this array holds it. */
  witnessStatus(): WitnessStatus | null {
    if (!this.witness) return null;
    return { ...this.witness.status(), cut: this.witness.cut, groups: [...this.groups.values()].map((g) => ({ group: g.cfg.name, ...g.machine.snapshot().witness! })) };
  }

  async stop(): Promise<void> {
    this.witness?.stop();
    for (const g of this.groups.values()) g.stop();
    for (const g of this.groups.values()) { await g.meta?.settled(); await g.al?.settled(); }
    for (const s of this.accepted) s.destroy();
    if (this.server) await new Promise<void>((r) => this.server!.close(() => r()));
  }
}

export type WitnessStatus = WitnessClientStatus & { cut: boolean; groups: ({ group: string } & WitnessView)[] };

export { PROXIMITIES };

/**
 * The LU's methods the replication interceptors replace (caw-forward.ts, pr-replication.ts,
 * sanitize-gate.ts) and its reservations' peer ports, as they are now: the returned list's
 * functions put them back (a method the LU did not have as its own is deleted, so its class's is
 * used again).
 */
function saved(lu: LogicalUnit): (() => void)[] {
  const o = lu as unknown as Record<string, unknown>;
  const undo = (['submit', 'logicalUnitReset', 'nexusLost'] as const).map((k) => {
    const mine = Object.prototype.hasOwnProperty.call(o, k) ? o[k] : undefined;
    return () => { if (mine) o[k] = mine; else delete o[k]; };
  });
  const peerPorts = lu.reservations.peerPorts;
  undo.push(() => { lu.reservations.peerPorts = peerPorts; });
  return undo;
}
