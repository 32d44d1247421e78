/**
 * The capture point of replication: a BackingStore in front of a replicated volume's own store.
 * Every write path of the LU (WRITE, WRITE SAME, UNMAP, COMPARE AND WRITE's write, EXTENDED COPY
 * into this LU) calls store.write/writeSame/unmap inside its range-lock body (range-lock.ts), so
 * what arrives here arrives in production order while its LBA range is held. The call returns
 * once the group says the write is on both arrays (or fails with the reason); the range stays
 * held meanwhile, which is what orders overlapping writes at the primary.
 *
 * Reads, mapping queries and flushes go straight to the store: while the group is served here,
 * both arrays hold every acknowledged write, so a local read is never older than one. A read
 * while it is not served here is refused (04/0C), whatever the ALUA state says: this array's copy
 * may then lack writes the other acknowledged alone.
 */
import { PassThroughStore } from '../store/pass-through.ts';
import type { BackingStore } from '../store/store.ts';
import type { WriteOp } from './group-machine.ts';
import { SenseError } from '../scsi/types.ts';

/** What the store needs from its group: order and replicate one op (void when done synchronously). */
export interface WriteSink {
  write(op: WriteOp): void | Promise<void>;
  /**
   * Set while the group's volumes are renumbered or leave it (dismissvv, removegroup:
   * runtime-groups.ts): a write waits and is then made again, with the volume's new index, or
   * straight to its own store once it has left the group.
   */
  readonly paused: Promise<void> | null;
}

export class ReplicatedStore extends PassThroughStore {
  /** Set when the volume joins its group (after the LU exists). Until then writes go straight to `inner`. */
  sink: WriteSink | null = null;
  volume = -1;
  /**
   * Set with `sink`: does this array serve the group's host I/O now (GroupMachine.serving)? The
   * group refuses writes itself; reads are refused here. The ALUA state (unavailable) normally
   * keeps hosts away, but ALUA can be moved (a host's STPG, an operator), and a secondary that
   * served reads while the primary wrote alone returned data older than acknowledged writes
   * (found with the kernel initiator: tools/vm/metro-test.sh).
   */
  serving: (() => boolean) | null = null;

  override read(lba: bigint, blocks: number, into?: Buffer): Buffer | Promise<Buffer> {
    if (this.serving && !this.serving()) throw new SenseError('NotReadyAluaUnavailable');
    return this.inner.read(lba, blocks, into);
  }

  override write(lba: bigint, data: Buffer, fua?: boolean): void | Promise<void> {
    if (!this.sink) return this.inner.write(lba, data, fua);
    if (this.sink.paused) return this.sink.paused.then(() => this.write(lba, data, fua));
    return this.sink.write({ kind: 'write', volume: this.volume, lba, blocks: data.length / this.inner.blockSize, fua: !!fua, data });
  }

  override get resize(): BackingStore['resize'] { return undefined; } // a replicated volume keeps its geometry (both arrays must agree)

  override get unmap(): BackingStore['unmap'] {
    if (!this.inner.unmap) return undefined;
    return (lba: bigint, blocks: number) => {
      if (!this.sink) return this.inner.unmap!(lba, blocks);
      if (this.sink.paused) return this.sink.paused.then(() => this.unmap!(lba, blocks));
      return this.sink.write({ kind: 'unmap', volume: this.volume, ranges: [{ lba, blocks }] });
    };
  }

  override get writeSame(): BackingStore['writeSame'] {
    if (!this.inner.writeSame) return undefined;
    return (lba: bigint, blocks: number, block: Buffer, unmap: boolean) => {
      if (!this.sink) return this.inner.writeSame!(lba, blocks, block, unmap);
      if (this.sink.paused) return this.sink.paused.then(() => this.writeSame!(lba, blocks, block, unmap));
      return this.sink.write({ kind: 'write-same', volume: this.volume, lba, blocks, unmap, block });
    };
  }
}

/** Apply an op to a store (the local half of a write, or a write replicated from the peer). */
export function applyOp(s: BackingStore, op: WriteOp): void | Promise<void> {
  switch (op.kind) {
    case 'write': return s.write(op.lba, op.data, op.fua);
    case 'write-same':
      if (s.writeSame) return s.writeSame(op.lba, op.blocks, op.block, op.unmap);
      return writeSameByWrites(s, op.lba, op.blocks, op.block);
    case 'unmap': {
      const ps: Promise<void>[] = [];
      for (const r of op.ranges) {
        const x = s.unmap ? s.unmap(r.lba, r.blocks) : writeSameByWrites(s, r.lba, r.blocks, Buffer.alloc(s.blockSize));
        if (x instanceof Promise) ps.push(x);
      }
      return ps.length ? Promise.all(ps).then(() => undefined) : undefined;
    }
  }
}

async function writeSameByWrites(s: BackingStore, lba: bigint, blocks: number, block: Buffer): Promise<void> {
  const per = Math.max(1, Math.floor((1 << 20) / s.blockSize));
  const buf = Buffer.alloc(Math.min(per, blocks) * s.blockSize);
  buf.fill(block);
  for (let done = 0; done < blocks;) {
    const n = Math.min(per, blocks - done);
    await s.write(lba + BigInt(done), buf.subarray(0, n * s.blockSize));
    done += n;
  }
}
