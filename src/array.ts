/** The running array: stores, SCSI targets and the iSCSI server, built from an ArrayConfig. */
import type { Logger } from 'pino';
import type { ArrayConfig } from './config.ts';
import { lunIdentity } from './config.ts';
import { IscsiServer } from './iscsi/server.ts';
import { ScsiTarget } from './scsi/target.ts';
import { joinCopyDomain } from './scsi/xcopy.ts';
import { AluaModel } from './scsi/alua.ts';
import { ArrayEvents } from './events.ts';
import type { BackingStore } from './store/store.ts';
import { openStore, parseLunSpec } from './store/lun-spec.ts';
import { RemoteCopy } from './replication/engine.ts';

export class StorageArray {
  readonly server: IscsiServer;
  readonly stores: BackingStore[] = [];
  readonly scsiTargets = new Map<string, ScsiTarget>();
  /** State changes (ALUA, sessions, …) as they happen: the admin API's GET /v1/events. */
  readonly events: ArrayEvents;
  /** Peer replication, when the config has `rcopy:` groups. */
  readonly rcopy: RemoteCopy | null;

  private constructor(readonly config: ArrayConfig, readonly log: Logger) {
    this.events = new ArrayEvents((err, e) => log.error({ err, event: e.type }, 'event subscriber failed'));
    this.server = new IscsiServer(config.portals, log, config.iscsi, this.events);
    this.rcopy = config.rcopy && config.peers ? new RemoteCopy(config.peers, config.rcopy, log, this.events) : null;
  }

  static async create(config: ArrayConfig, log: Logger): Promise<StorageArray> {
    const a = new StorageArray(config, log);
    for (const t of config.targets) {
      const scsi = new ScsiTarget(t.name, log.child({ target: t.name }));
      for (const [i, l] of t.luns.entries()) {
        let store;
        const spec = parseLunSpec(l.spec);
        try {
          store = await openStore(spec);
        } catch (e) {
          throw new Error(`target ${t.name} LUN ${i} (${l.spec}): ${e instanceof Error ? e.message : String(e)}`);
        }
        a.stores.push(store);
        const id = lunIdentity(t.name, i, l.spec);
        const lu = scsi.addLun({
          lun: i, store: a.rcopy ? a.rcopy.wrapStore(t.name, i, store) : store, readonly: spec.readonly, removable: spec.removable, physicalBlockSize: spec.physicalBlockSize || undefined,
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
    return a;
  }

  async start(): Promise<void> {
    await this.server.listen();
    await this.rcopy?.start();
  }

  /** Clean shutdown: stop accepting, drop sessions, flush and close every store. */
  async stop(): Promise<void> {
    await this.rcopy?.stop();
    await this.server.close();
    for (const s of this.stores) {
      await s.flush?.();
      await s.close();
    }
  }
}
