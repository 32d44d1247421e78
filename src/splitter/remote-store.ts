/**
 * A replica volume of a remote copy (CRR): one LU of the remote array's target, reached over the
 * copy's link (link.ts), seen by the group as a BackingStore, so that the distributor, the
 * synchronizations (sweep, marked regions), verify and image access use it as they use a local
 * replica. What a record is crosses the link as it is: the data of a write, one block and a range
 * for a WRITE SAME (never expanded), a range for an UNMAP.
 *
 * It has no mapping(): whether a remote block is allocated is not known without asking; digest()
 * (the REGION DIGEST vendor command, src/scsi/vendor-digest.ts) answers whether a range is
 * deallocated and otherwise gives its CRC32Cs, computed on the remote array.
 */
import {
  encodeReplicaRecordCdb, encodeReplicaRecordHeader, REPLICA_RECORD_HEADER, ReplicaRecordKind,
} from '../../protocol/scsi/replica-claim.ts';
import type { Session } from '../initiator/index.ts';
import { REGION_DIGEST_OPCODE, regionDigestLength } from '../scsi/vendor-digest.ts';
import type { BackingStore } from '../store/store.ts';
import type { JournalRecord } from './journal.ts';
import type { ReplicationLink } from './link.ts';

export class RemoteStore implements BackingStore {
  readonly kind = 'remote' as const;
  readonly thin = true;

  /** `blockCount`: production's (the remote LU holds at least as many blocks: ReplicationLink checks). */
  constructor(readonly link: ReplicationLink, readonly lun: number, readonly blockCount: bigint, readonly blockSize: number) {}

  read(lba: bigint, blocks: number, into?: Buffer): Promise<Buffer> {
    return this.link.run(this.lun, 0, blocks * this.blockSize, 'READ(16)', (d) => d.read(lba, blocks, { into }));
  }

  write(lba: bigint, data: Buffer, fua?: boolean): Promise<void> {
    return this.link.run(this.lun, data.length, 0, 'WRITE(16)', (d) => d.write(lba, data, { fua }));
  }

  writeSame(lba: bigint, blocks: number, block: Buffer, unmap: boolean): Promise<void> {
    return this.link.run(this.lun, unmap ? 0 : block.length, 0, 'WRITE SAME(16)', (d) => (unmap ? d.writeSame(lba, blocks, null, { unmap: true, ndob: true }) : d.writeSame(lba, blocks, block)));
  }

  async unmap(lba: bigint, blocks: number): Promise<void> {
    // UNMAP's block descriptor counts 32 bits of blocks (SBC-4 §5.32.2).
    for (let done = 0; done < blocks;) {
      const n = Math.min(blocks - done, 0xffff_ffff);
      await this.link.run(this.lun, 24, 0, 'UNMAP', (d) => d.unmap([{ lba: lba + BigInt(done), blocks: n }]));
      done += n;
    }
  }

  flush(): Promise<void> {
    return this.link.run(this.lun, 0, 0, 'SYNCHRONIZE CACHE(16)', (d) => d.synchronizeCache());
  }

  /**
   * The CRC32C per 64 KiB of [lba, lba+blocks) as the remote array computes it (regionDigest's
   * format), or null when the remote store reports the whole range deallocated (it reads zeros).
   */
  async digest(lba: bigint, blocks: number): Promise<Buffer | null> {
    const len = regionDigestLength(blocks * this.blockSize);
    const cdb = Buffer.alloc(16);
    cdb[0] = REGION_DIGEST_OPCODE;
    cdb.writeBigUInt64BE(lba, 2);
    cdb.writeUInt32BE(blocks, 10);
    cdb.writeUInt16BE(len, 14);
    const data = await this.link.run(this.lun, 0, len, 'REGION DIGEST', (d) => d.raw({ cdb, dataIn: len }));
    if (data[0] & 1) return null;
    return Buffer.from(data.subarray(8, 8 + 4 * data.readUInt32BE(4)));
  }

  /**
   * One journal record as a REPLICA RECORD (src/scsi/replica-claim.ts) on `session`: its sequence,
   * the one shipped before it (`prev`), and the payload its kind needs (the data; one block for a
   * WRITE SAME; nothing for a deallocation). Settles once the remote array applied it.
   */
  record(r: JournalRecord, prev: number, session: Session): Promise<void> {
    const kind = r.kind === 'data' ? ReplicaRecordKind.Write : r.kind === 'same' && !r.unmap ? ReplicaRecordKind.WriteSame : ReplicaRecordKind.Deallocate;
    const payload = kind === ReplicaRecordKind.Deallocate ? null : r.data!;
    // The header and the payload in one Data-Out buffer: one copy of the payload per record.
    const out = Buffer.allocUnsafe(REPLICA_RECORD_HEADER + (payload?.length ?? 0));
    encodeReplicaRecordHeader(out, r.seq, prev);
    payload?.copy(out, REPLICA_RECORD_HEADER);
    if (r.blocks > 0xffff_ffff) return Promise.reject(new RangeError(`record ${r.seq}: ${r.blocks} blocks do not fit a REPLICA RECORD`));
    const cdb = encodeReplicaRecordCdb({ kind, lba: r.lba, blocks: r.blocks });
    return this.link.run(this.lun, out.length, 0, 'REPLICA RECORD', (d) => d.raw({ cdb, dataOut: out }), session).then(() => {});
  }

  /** The link is the copy's: the group closes it. */
  close(): void {}
}
