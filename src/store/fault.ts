/**
 * Store fault injection (POST /v1/stores/fault): the array's RAID set or its metadata fails,
 * and every I/O to the store fails with the sense the fault names, until it is repaired. The data
 * underneath is kept (a repair is a rebuild that lost nothing); a real RAID set failure may lose
 * data, which replication then restores by a full resync from the other array.
 *
 * The array learns of the failure when it happens, not at the next host I/O (a controller sees
 * its drives drop): listeners hear every change, and the replication engine turns it into the
 * group's store event (group-machine.ts: the HPE paper's "RAID set failure or metadata failure").
 */
import { PassThroughStore } from './pass-through.ts';
import type { BackingStore, StoreFailureSense } from './store.ts';
import { StoreFailedError } from './store.ts';

export interface StoreFault { sense: StoreFailureSense; since: string }

export class FaultStore extends PassThroughStore {
  fault: StoreFault | null = null;
  /** I/Os refused since the store was opened. */
  failedIos = 0;
  readonly listeners = new Set<(fault: StoreFault | null) => void>();

  /** Fail every I/O from now on (null: repaired). */
  set(sense: StoreFailureSense | null): void {
    if ((this.fault?.sense ?? null) === sense) return;
    this.fault = sense ? { sense, since: new Date().toISOString() } : null;
    for (const l of this.listeners) l(this.fault);
  }

  private check(op: 'read' | 'write'): void {
    if (!this.fault) return;
    this.failedIos++;
    throw new StoreFailedError(this.fault.sense, op);
  }

  override read(lba: bigint, blocks: number, into?: Buffer): Buffer | Promise<Buffer> { this.check('read'); return this.inner.read(lba, blocks, into); }
  override write(lba: bigint, data: Buffer, fua?: boolean): void | Promise<void> { this.check('write'); return this.inner.write(lba, data, fua); }

  override get flush(): BackingStore['flush'] {
    const f = this.inner.flush;
    return f && (() => { this.check('write'); return f.call(this.inner); });
  }

  override get unmap(): BackingStore['unmap'] {
    const f = this.inner.unmap;
    return f && ((lba: bigint, blocks: number) => { this.check('write'); return f.call(this.inner, lba, blocks); });
  }

  override get writeSame(): BackingStore['writeSame'] {
    const f = this.inner.writeSame;
    return f && ((lba: bigint, blocks: number, block: Buffer, unmap: boolean) => { this.check('write'); return f.call(this.inner, lba, blocks, block, unmap); });
  }
}
