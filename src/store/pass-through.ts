/**
 * A store in front of another store: every member goes to `inner` unless a subclass says
 * otherwise. Optional capabilities exist exactly when the inner store has them (SBC provisioning
 * reads their presence), hence getters returning bound functions or undefined. ReplicatedStore
 * (the replication capture point) and FaultStore (store fault injection) are built on it.
 */
import type { BackingStore } from './store.ts';

export class PassThroughStore implements BackingStore {
  constructor(readonly inner: BackingStore) {}

  get blockSize(): number { return this.inner.blockSize; }
  get blockCount(): bigint { return this.inner.blockCount; }
  get kind(): BackingStore['kind'] { return this.inner.kind; }
  get thin(): boolean { return this.inner.thin; }

  read(lba: bigint, blocks: number, into?: Buffer): Buffer | Promise<Buffer> { return this.inner.read(lba, blocks, into); }
  write(lba: bigint, data: Buffer, fua?: boolean): void | Promise<void> { return this.inner.write(lba, data, fua); }
  close(): void | Promise<void> { return this.inner.close(); }

  get detach(): BackingStore['detach'] { return this.inner.detach?.bind(this.inner); }
  get share(): BackingStore['share'] { return this.inner.share?.bind(this.inner); }
  get flush(): BackingStore['flush'] { return this.inner.flush?.bind(this.inner); }
  get unmap(): BackingStore['unmap'] { return this.inner.unmap?.bind(this.inner); }
  get writeSame(): BackingStore['writeSame'] { return this.inner.writeSame?.bind(this.inner); }
  get mapping(): BackingStore['mapping'] { return this.inner.mapping?.bind(this.inner); }
  get resize(): BackingStore['resize'] { return this.inner.resize?.bind(this.inner); }
  get allocatedBytes(): BackingStore['allocatedBytes'] { return this.inner.allocatedBytes?.bind(this.inner); }
  get digest(): BackingStore['digest'] { return this.inner.digest?.bind(this.inner); }
}
