/**
 * Backing store API. Block addressing is in logical blocks of `blockSize` bytes.
 * Optional capabilities (unmap, flush, mapping queries) are optional members: the SCSI layer
 * checks for them and answers with the defined sense when a store lacks one.
 */
export interface BackingStore {
  readonly blockSize: number;
  /** Number of logical blocks. */
  readonly blockCount: bigint;
  readonly kind: 'memory' | 'file' | 'remote';
  /** thin stores read unmapped blocks as zero and report them deallocated. */
  readonly thin: boolean;

  /**
   * Read `blocks` blocks at `lba`. Memory stores may return a view of their own storage (no copy):
   * callers must not mutate it, and must be done with it before a write to those blocks can run
   * (the READ command keeps its range locked until the transport has handed the view to the
   * kernel: ScsiRequest.holdData). When `into` is given, data is copied into it and `into` is
   * returned.
   */
  read(lba: bigint, blocks: number, into?: Buffer): Buffer | Promise<Buffer>;
  /**
   * Stores whose read() returns views: keep `view` (what read(lba, blocks) returned) showing the
   * blocks as they are now, while later writes go to other memory; the returned function says the
   * view is done. null when it cannot (no room). See MemoryStore.detach.
   */
  detach?(lba: bigint, blocks: number, view: Buffer): (() => void) | null;
  /**
   * Memory stores: the buffer holding exactly [lba, lba+blocks), shared copy-on-write instead of
   * copied (nobody changes it while shared; the caller lets go with releaseShared, memory.ts);
   * null when the range is not one whole allocated chunk. See MemoryStore.share.
   */
  share?(lba: bigint, blocks: number): Buffer | null;
  /** Write data (a whole number of blocks) at lba. `fua`: reach stable storage before completing. */
  write(lba: bigint, data: Buffer, fua?: boolean): void | Promise<void>;
  /** Make all written data durable (SYNCHRONIZE CACHE). */
  flush?(): void | Promise<void>;
  /** Deallocate blocks (thin); subsequent reads return zeros (LBPRZ=1). */
  unmap?(lba: bigint, blocks: number): void | Promise<void>;
  /** Write the same block pattern over a range; thin stores may deallocate when all zero. */
  writeSame?(lba: bigint, blocks: number, block: Buffer, unmap: boolean): void | Promise<void>;
  /**
   * Provisioning status from `lba`: returns an extent run [lba, lba+blocks) that is uniformly
   * mapped (true) or deallocated (false). `within`: the caller looks no further than
   * lba+within, so the run may stop there (a store may still return a longer one).
   */
  mapping?(lba: bigint, within?: bigint): { mapped: boolean; blocks: bigint };
  /**
   * Whether all of [lba, lba+blocks) is mapped (true), none of it (false), or some (null): the
   * question the splitter's undo capture asks of every write, answered without allocating.
   */
  rangeMapped?(lba: bigint, blocks: number): boolean | null;
  /**
   * Stores whose data is elsewhere (a remote copy's replica, src/splitter/remote-store.ts): the
   * region digest of [lba, lba+blocks) computed where the data is (src/splitter/digest.ts format),
   * or null when the range is wholly deallocated. Absent: callers read and digest themselves.
   */
  digest?(lba: bigint, blocks: number): Promise<Buffer | null>;
  /** Resize (capacity changed). */
  resize?(blockCount: bigint): void | Promise<void>;
  /** Bytes of memory actually allocated (for thin memory stores). */
  allocatedBytes?(): number;
  close(): void | Promise<void>;
}

/**
 * A thin store could not allocate space for a write (its pool is exhausted). The LU answers
 * DATA PROTECT, SPACE ALLOCATION FAILED WRITE PROTECT (27/07, SBC-4 §4.7.3.7), as a thin array
 * does when its pool runs out, instead of the process running out of memory.
 */
export class SpaceExhaustedError extends Error {
  constructor(readonly wanted: number, readonly limit: number) {
    super(`thin pool exhausted: ${wanted} bytes more would exceed the limit of ${limit}`);
  }
}

/** How a failed store answers (POST /v1/stores/fault): MEDIUM ERROR (03/11/00 on reads, 03/0C/00 on writes) or HARDWARE ERROR 04/44/00. */
export type StoreFailureSense = 'medium-error' | 'hardware-error';
export const STORE_FAILURE_SENSES: readonly StoreFailureSense[] = ['medium-error', 'hardware-error'];

/**
 * An I/O to a store that has failed (fault injection: its RAID set or its metadata is lost). The
 * LU answers with the sense the fault names; a replicated volume's group stops serving first
 * (HPE: the array's paths go ALUA unavailable), so its hosts rarely see this.
 */
export class StoreFailedError extends Error {
  constructor(readonly sense: StoreFailureSense, readonly op: 'read' | 'write') {
    super(`store failed (injected ${sense}) on ${op}`);
  }
}
