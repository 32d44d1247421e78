/** The running array: stores, SCSI targets and the iSCSI server, built from an ArrayConfig. */
import path from 'node:path';
import type { Logger } from 'pino';
import type { ArrayConfig, RemoteCopyConfig } from './config.ts';
import type { LogicalUnit } from './scsi/lu.ts';
import { lunIdentity } from './config.ts';
import { IscsiServer } from './iscsi/server.ts';
import { ScsiTarget } from './scsi/target.ts';
import { joinCopyDomain } from './scsi/xcopy.ts';
import { closeReplicaJournals, keepReplicaJournals } from './scsi/replica-claim.ts';
import { AluaModel } from './scsi/alua.ts';
import { ArrayEvents } from './events.ts';
import type { BackingStore } from './store/store.ts';
import { openStore, parseLunSpec } from './store/lun-spec.ts';
import { RemoteCopy } from './replication/engine.ts';
import { GroupMeta } from './replication/group-meta.ts';
import { fileOf } from './replication/replication-group.ts';
import { ConsistencyGroup } from './splitter/group.ts';
import { exportCopy } from './splitter/copy-target.ts';
import { FileJournal } from './splitter/journal-file.ts';
import { FileStore } from './store/file.ts';
import { FaultStore } from './store/fault.ts';
import type { ArrayMetrics } from './metrics/registry.ts';
import { CommandLatency } from './metrics/latency.ts';

export class StorageArray {
  readonly server: IscsiServer;
  readonly stores: BackingStore[] = [];
  /** Each LU's store fault injection (POST /v1/stores/fault), by target and LUN. */
  readonly storeFaults = new Map<string, Map<number, FaultStore>>();
  readonly scsiTargets = new Map<string, ScsiTarget>();
  /** Consistency groups by name (the write splitter, src/splitter). */
  readonly groups = new Map<string, ConsistencyGroup>();
  /** State changes (ALUA, sessions, …) as they happen: the admin API's GET /v1/events. */
  readonly events: ArrayEvents;
  /** Peer replication, when the config has `rcopy:` groups. */
  readonly rcopy: RemoteCopy | null;
  private metricsBuilt: Promise<ArrayMetrics> | null = null;

  private constructor(readonly config: ArrayConfig, readonly log: Logger) {
    this.events = new ArrayEvents((err, e) => log.error({ err, event: e.type }, 'event subscriber failed'));
    this.server = new IscsiServer(config.portals, log, config.iscsi, this.events);
    this.rcopy = config.rcopy && config.peers ? new RemoteCopy(config.peers, config.rcopy, log, this.events) : null;
  }

  static async create(config: ArrayConfig, log: Logger): Promise<StorageArray> {
    const a = new StorageArray(config, log);
    for (const t of config.targets) {
      const scsi = new ScsiTarget(t.name, log.child({ target: t.name }));
      // As a remote array: the claims on this target keep their undo logs on disk (file-backed LUs).
      if (config.replicaJournal) keepReplicaJournals(scsi, path.join(config.replicaJournal, t.name.replace(/[^A-Za-z0-9.-]+/g, '_')));
      for (const [i, l] of t.luns.entries()) {
        let store;
        const spec = parseLunSpec(l.spec);
        try {
          store = await openStore(spec);
        } catch (e) {
          throw new Error(`target ${t.name} LUN ${i} (${l.spec}): ${e instanceof Error ? e.message : String(e)}`);
        }
        a.stores.push(store);
        const faulty = new FaultStore(store);
        if (!a.storeFaults.has(t.name)) a.storeFaults.set(t.name, new Map());
        a.storeFaults.get(t.name)!.set(i, faulty);
        const id = lunIdentity(t.name, i, l.spec);
        const lu = scsi.addLun({
          lun: i, store: a.rcopy ? a.rcopy.wrapStore(t.name, i, faulty) : faulty, readonly: spec.readonly, removable: spec.removable, physicalBlockSize: spec.physicalBlockSize || undefined,
          naa: l.naa ?? id.naa, serial: l.serial ?? id.serial, vendor: l.vendor, product: l.product, aluaMode: l.aluaMode,
        });
        a.rcopy?.adopt(t.name, lu);
        log.info({ target: t.name, lun: i, spec: l.spec, blocks: String(store.blockCount), blockSize: store.blockSize }, 'LUN ready');
      }
      // Every portal is a target port (relative port id = TPGT) in its target port group.
      const ports = config.portals.map((p) => ({ relativeTargetPortId: p.tpgt, targetPortGroup: p.targetPortGroup }));
      scsi.alua = AluaModel.build(scsi, ports, t.alua, log.child({ target: t.name, component: 'alua' }), a.events);
      a.scsiTargets.set(t.name, scsi);
      a.server.addTarget({ name: t.name, alias: t.alias, acl: t.acl, chap: t.chap }, scsi);
    }
    // One copy manager for the array: EXTENDED COPY may name any LU of any target.
    joinCopyDomain([...a.scsiTargets.values()]);
    a.rcopy?.bind(a.scsiTargets);
    await a.rcopy?.loadMeta();
    await a.warnGroupMetaStrangers();
    await a.createGroups();
    if (config.metrics !== false) a.server.commandLatency = new CommandLatency();
    return a;
  }

  /**
   * A file volume beside the metadata file of a Remote Copy group this array does not have
   * (GroupMeta.strangers): say so at start. Most often a group made by the rcopy verbs on an array
   * without peers.state, lost at this restart while the other array still holds it: hosts may
   * now reach this volume alone under the group's WWN.
   */
  private async warnGroupMetaStrangers(): Promise<void> {
    for (const [name, t] of this.scsiTargets) {
      for (const lu of t.luns.values()) {
        const file = fileOf(lu.store);
        if (!file) continue;
        const group = this.rcopy?.groupOf(name, lu.lun);
        const found = await GroupMeta.strangers(file, group?.cfg.name);
        if (found.length) {
          this.log.warn({ target: name, lun: lu.lun, files: found }, 'this volume carries the metadata file of a Remote Copy group this array does not have (made by the rcopy verbs without peers.state, or removed from the YAML): if the other array still holds the group, hosts may reach this volume alone under its WWN; remove the file once the group is gone from both arrays');
        }
      }
    }
  }

  /** Protect the configured LUNs: one ConsistencyGroup per `groups:` entry (or `--splitter`). */
  private async createGroups(): Promise<void> {
    const cfg = this.config;
    for (const g of cfg.groups ?? []) {
      const sp = cfg.splitters?.find((s) => s.name === g.splitter);
      if (!sp) throw new Error(`group ${g.name}: no splitter "${g.splitter}"`);
      const t = g.target ? this.scsiTargets.get(g.target) : [...this.scsiTargets.values()][0];
      if (!t) throw new Error(`group ${g.name}: no target ${g.target ?? ''}`);
      const luns = (g.luns ?? [...t.luns.keys()]).map((n) => {
        const lu = t.luns.get(n);
        if (!lu) throw new Error(`group ${g.name}: target ${t.name} has no LUN ${n}`);
        return lu;
      });
      // A file journal keeps its copies' replicas as file stores in its folder, so that the copies
      // survive a restart with it (README "Splitter and replicas", file journal).
      let journal: FileJournal | undefined;
      let replicas: FileStore[][] | undefined;
      if (g.journalPath) {
        journal = await FileJournal.open(g.journalPath, g.journalBytes, { ackEarly: process.env.ARRAYSIM_TEST_JOURNAL_ACK === 'early' });
        if (process.env.ARRAYSIM_TEST_JOURNAL_ACK === 'early') this.log.warn({ group: g.name }, 'TEST HOOK: file journal acknowledges writes before their records are durable');
        replicas = [];
        for (const c of g.copies) {
          const per: FileStore[] = [];
          if (g.remote?.[c]) { replicas.push(per); continue; } // its replicas are on the remote array
          for (const [i, lu] of luns.entries()) {
            const file = journal.replicaPath(c, i);
            const st = await FileStore.open(file, { sizeBytes: Number(lu.blockCount) * lu.blockSize, blockSize: lu.blockSize });
            if (st.blockCount !== lu.blockCount) throw new Error(`group ${g.name}: replica ${file} has ${st.blockCount} blocks, production LUN ${lu.lun} ${lu.blockCount}`);
            per.push(st);
          }
          replicas.push(per);
        }
      }
      const remote = g.remote ? await this.remoteCopies(g.name, t.name, luns, g.remote, g.journalBytes) : undefined;
      const group = new ConsistencyGroup({
        name: g.name, spec: sp.spec, luns, copies: g.copies, journalBytes: g.journalBytes, journal, replicas, remote,
        startTransfer: g.startTransfer && !journal,
        log: this.log.child({ component: 'splitter', group: g.name }),
      });
      if (journal) {
        this.log.info({ group: g.name, path: g.journalPath, ...journal.recovery }, 'file journal opened');
        const skip = process.env.ARRAYSIM_TEST_JOURNAL_RECOVERY === 'skip';
        if (skip) this.log.warn({ group: g.name }, 'TEST HOOK: file journal recovery skipped (copies not re-applied, not swept)');
        await group.recover(journal.recovery.unclean, skip);
        if (g.startTransfer) void group.startTransfer('group created with start_transfer=yes');
      }
      this.groups.set(g.name, group);
      // Each copy's own target, <production IQN>-<copy>: NOT READY until image access is enabled.
      const ports = cfg.portals.map((p) => ({ relativeTargetPortId: p.tpgt, targetPortGroup: p.targetPortGroup }));
      for (const c of group.copies) {
        exportCopy(group, c, t, ports, this.log, (name, scsi) => {
          if (this.scsiTargets.has(name)) throw new Error(`group ${g.name}: copy ${c.name}'s target ${name} clashes with a configured target`);
          this.scsiTargets.set(name, scsi);
          // The production target's ACL and CHAP guard its copies too.
          const prod = cfg.targets.find((x) => x.name === t.name);
          this.server.addTarget({ name, acl: prod?.acl, chap: prod?.chap }, scsi);
        });
      }
      group.listeners.add((e) => {
        if (e.kind === 'transfer') this.events.emit({ type: 'group.transfer', group: e.group, from: e.from, to: e.to, reason: e.reason });
        else if (e.kind === 'copy-access') {
          this.events.emit({
            type: 'group.image-access', group: e.group, copy: e.copy, from: e.from, to: e.to, phase: e.phase,
            image: e.image?.image ?? null, imageSeq: e.image?.seq ?? null, bookmark: e.image?.bookmark ?? null, reason: e.reason,
          });
        } else if (e.kind === 'high-load') this.events.emit({ type: 'group.high-load', group: e.group, highLoad: e.highLoad, reason: e.reason });
        else this.events.emit({ type: 'group.copy', group: e.group, copy: e.copy, from: e.from, to: e.to, markedRegions: e.markedRegions, reason: e.reason });
      });
      this.log.info({ group: g.name, splitter: g.splitter, target: t.name, luns: luns.map((l) => l.lun), copies: g.copies }, 'consistency group ready');
    }
  }

  /**
   * Remote copies (CRR): a link per copy to the remote array's target (src/splitter/link.ts) and
   * its LUs as the replica volumes. The link logs in now when it can; when the remote array is not
   * up yet it logs in at the first record or sweep (a failure then stops the transfer: `error`).
   */
  private async remoteCopies(group: string, target: string, luns: LogicalUnit[], remote: Record<string, RemoteCopyConfig>, journalBytes: number) {
    const { ReplicationLink } = await import('./splitter/link.ts');
    const { RemoteStore } = await import('./splitter/remote-store.ts');
    const out: Record<string, { replicas: BackingStore[]; link: InstanceType<typeof ReplicationLink> }> = {};
    for (const [name, r] of Object.entries(remote)) {
      const remoteLuns = r.luns ?? luns.map((_, i) => i);
      if (remoteLuns.length !== luns.length) throw new Error(`group ${group}: copy ${name} names ${remoteLuns.length} remote LUNs for ${luns.length} replication sets`);
      const id = (x: string) => x.toLowerCase().replace(/[^a-z0-9.-]/g, '-');
      const link = new ReplicationLink({
        host: r.host, port: r.port, target: r.target, luns: remoteLuns, rate: r.rate,
        geometry: luns.map((lu) => ({ blocks: lu.blockCount, blockSize: lu.blockSize })),
        initiatorName: `${target}.splitter.${id(group)}.${id(name)}`,
        claimFor: { group, copy: name },
        // The remote site's copy journal keeps as much undo data as production's journal holds, unless told.
        undoLimit: r.undoBytes ?? journalBytes,
      }, this.log.child({ component: 'splitter', group, copy: name }));
      try { await link.device(remoteLuns[0]); } catch (e) { this.log.warn({ group, copy: name, err: (e as Error).message }, 'remote copy: the remote array is not reachable yet'); }
      out[name] = { link, replicas: luns.map((lu, i) => new RemoteStore(link, remoteLuns[i], lu.blockCount, lu.blockSize)) };
    }
    return out;
  }

  async start(): Promise<void> {
    await this.server.listen();
    await this.rcopy?.start();
  }

  /**
   * Prometheus metrics, built by the first call (the first scrape of GET /metrics): prom-client
   * (with the OpenTelemetry API it loads, about 80 modules and 6 MiB of an idle target's memory)
   * is not loaded by an array nobody scrapes. Nothing is lost by waiting: commands are timed from
   * the first one (CommandLatency, made with the array), and the families read that recorder and
   * the counters when scraped. Only prom-client's process_/nodejs_ GC and event-loop figures start
   * at the first scrape. Null when the configuration turns metrics off (`metrics: false`, --no-metrics).
   */
  metrics(): Promise<ArrayMetrics | null> {
    const latency = this.server.commandLatency;
    if (!latency) return Promise.resolve(null);
    this.metricsBuilt ??= import('./metrics/registry.ts').then(({ ArrayMetrics }) => new ArrayMetrics(this.server, this.scsiTargets, latency));
    return this.metricsBuilt;
  }

  /** Clean shutdown: stop accepting, drop sessions, flush and close every store. */
  async stop(): Promise<void> {
    await this.rcopy?.stop();
    await this.server.close();
    for (const t of this.scsiTargets.values()) await closeReplicaJournals(t);
    for (const g of this.groups.values()) await g.close();
    for (const s of this.stores) {
      await s.flush?.();
      await s.close();
    }
  }
}
