/**
 * A copy's own iSCSI target: `<production IQN>-<copy>` (in SendTargets discovery like any other),
 * with one LU per replication set at the production LU's number, whose medium is the copy's
 * replica volume. While image access is disabled its LUs answer every media command (TEST UNIT
 * READY, READ CAPACITY, READ, WRITE...) with CHECK CONDITION, NOT READY, LOGICAL UNIT NOT READY,
 * MANUAL INTERVENTION REQUIRED (02/04/03, SPC-5 Annex F): the replica is being distributed to and
 * only an operator (enable_image_access) makes it ready, so neither BECOMING READY (04/01, which
 * Linux retries) nor INITIALIZING COMMAND REQUIRED (04/02, which would invite a START STOP UNIT
 * that cannot help). INQUIRY, REPORT LUNS and REQUEST SENSE answer as usual (SPC-5 §4.6.5 asks
 * them of a LU that is not ready), and REQUEST SENSE reports the same 02/04/03.
 *
 * The copy's name becomes the end of an iSCSI name: lower case, and characters an iSCSI name
 * does not allow (RFC 7143 §4.2.7.2: ASCII letters, digits, '-', '.', ':') as '-', so copy
 * `DR_RPSyncGroup` of `iqn.2026-11.dev.arraysim:rpsync` is `iqn.2026-11.dev.arraysim:rpsync-dr-rpsyncgroup`.
 */
import type { Logger } from 'pino';
import { lunIdentity } from '../config.ts';
import { AluaModel } from '../scsi/alua.ts';
import { ScsiTarget } from '../scsi/target.ts';
import type { BackingStore } from '../store/store.ts';
import type { LocalCopy } from './copy.ts';
import type { VirtualImage } from './image-map.ts';
import type { ConsistencyGroup } from './group.ts';

export function copyTargetName(production: string, copy: string): string {
  return `${production}-${copy.toLowerCase().replace(/[^a-z0-9.:-]/g, '-')}`;
}

/**
 * The replica volume as the copy's LU sees it: reads are private copies (the replica may be
 * rolled or restored under a finished READ's buffer), and in logged access each write saves what
 * it overwrites in the image-access log first (image.ts restores it on disable); in virtual
 * access reads go through the image's read map and writes to its overlay (image-map.ts).
 */
export class ImageStore implements BackingStore {
  constructor(private readonly copy: LocalCopy, private readonly set: number) {}

  private get replica(): BackingStore { return this.copy.replicas[this.set]; }
  get blockSize(): number { return this.replica.blockSize; }
  get blockCount(): bigint { return this.replica.blockCount; }
  get kind(): BackingStore['kind'] { return this.replica.kind; }
  get thin(): boolean { return this.replica.thin; }

  /** Virtual access: the image is the replica seen through the read map, with the host's overlay (image-map.ts). */
  private get virtual(): VirtualImage | null { return this.copy.image?.virtual ?? null; }

  read(lba: bigint, blocks: number, into?: Buffer): Buffer | Promise<Buffer> {
    const v = this.virtual;
    if (v) return v.read(this.set, lba, blocks, into);
    const r = this.replica;
    return r.read(lba, blocks, into ?? (r.kind === 'memory' ? Buffer.allocUnsafe(blocks * r.blockSize) : undefined));
  }

  write(lba: bigint, data: Buffer, fua?: boolean): void | Promise<void> {
    const v = this.virtual;
    if (v) { this.copy.image!.writes++; return v.write(this.set, lba, data); }
    return this.logged(lba, data.length / this.blockSize, () => this.replica.write(lba, data, fua));
  }

  unmap(lba: bigint, blocks: number): void | Promise<void> {
    const v = this.virtual;
    if (v) { this.copy.image!.writes++; return v.unmap(this.set, lba, blocks); }
    const r = this.replica;
    return this.logged(lba, blocks, () => (r.unmap ? r.unmap(lba, blocks) : r.write(lba, Buffer.alloc(blocks * r.blockSize))));
  }

  writeSame(lba: bigint, blocks: number, block: Buffer, unmap: boolean): void | Promise<void> {
    const v = this.virtual;
    if (v) { this.copy.image!.writes++; return v.writeSame(this.set, lba, blocks, block, unmap); }
    return this.logged(lba, blocks, () => this.replica.writeSame!(lba, blocks, block, unmap));
  }

  mapping(lba: bigint): { mapped: boolean; blocks: bigint } {
    // Virtual access: the replica's provisioning is not the image's; everything reads as mapped.
    if (this.virtual) return { mapped: true, blocks: this.blockCount - lba };
    return this.replica.mapping?.(lba) ?? { mapped: true, blocks: this.blockCount - lba };
  }

  flush(): void | Promise<void> { return this.replica.flush?.(); }

  /** The group closes the replicas. */
  close(): void {}

  private logged(lba: bigint, blocks: number, op: () => void | Promise<void>): void | Promise<void> {
    const img = this.copy.image;
    if (!img) throw new Error(`copy ${this.copy.name}: no image access`); // the LU's gate stops it first
    img.writes++;
    // A remote copy's image is presented by the remote array, which keeps the writes in its overlay.
    if (this.copy.access !== 'logged-access' || this.copy.kind === 'remote') return op();
    const before = img.log.capture(this.replica, lba, blocks);
    if (before instanceof Promise) return before.then((p) => { img.log.push(img.writes, this.set, p); return op(); });
    img.log.push(img.writes, this.set, before);
    return op();
  }
}

/**
 * Build copy `c`'s target beside production target `production` (the group's LUs are its LUs) and
 * hand it to `register` (the iSCSI server and the array's target map).
 */
export function exportCopy(
  g: ConsistencyGroup, c: LocalCopy, production: ScsiTarget, ports: Array<{ relativeTargetPortId: number; targetPortGroup: number }>,
  log: Logger, register: (name: string, t: ScsiTarget) => void,
): ScsiTarget {
  const name = copyTargetName(production.name, c.name);
  const t = new ScsiTarget(name, log.child({ target: name }));
  c.exported = g.sets.map((s) => {
    const id = lunIdentity(name, s.lu.lun, 'replica');
    const lu = t.addLun({ lun: s.lu.lun, store: new ImageStore(c, s.index), naa: id.naa, serial: id.serial, physicalBlockSize: s.lu.physicalBlockSize });
    lu.availability = () => (c.access === 'no-access' || c.changing ? 'NotReadyManualInterventionRequired' : null);
    return lu;
  });
  t.alua = AluaModel.build(t, ports, undefined, log.child({ target: name, component: 'alua' }));
  register(name, t);
  return t;
}
