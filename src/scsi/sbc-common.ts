/**
 * What the SBC modules share: the device limits (one place for decode and the Block Limits VPD
 * page), provisioning capabilities, the write-protect and durability rules, and the one write
 * path every writing command goes through.
 */
import type { CommandContext } from './command.ts';
import { dataOut, wholeBlocks } from './cdb.ts';
import type { LogicalUnit } from './lu.ts';
import { exclusiveThen } from './range-lock.ts';
import { ScsiStatus, SenseError } from './types.ts';
import type { ScsiResponse } from './types.ts';

/**
 * Device limits, in one place: SBC decode enforces them and the Block Limits VPD page (0xB0)
 * reports them. Byte quantities are converted to logical blocks per LU by blockLimits().
 */
export const SBC_LIMITS = Object.freeze({
  /**
   * MAXIMUM TRANSFER LENGTH (bytes): READ/WRITE/VERIFY above this are INVALID FIELD IN CDB.
   * 32 MiB = 65536 blocks of 512 bytes: libiscsi WriteSame16.Unmap writes and reads 65536 blocks
   * with single WRITE(16)/READ(16) commands whenever MAXIMUM WRITE SAME LENGTH allows that many.
   */
  maxTransferBytes: 32 << 20,
  /** OPTIMAL TRANSFER LENGTH GRANULARITY (bytes): one physical block. */
  optimalTransferGranularityBytes: 4096,
  /** OPTIMAL TRANSFER LENGTH (bytes): the memory store's chunk, inside which reads are zero-copy. */
  optimalTransferBytes: 1 << 20,
  /** MAXIMUM ATOMIC TRANSFER LENGTH (bytes) for WRITE ATOMIC(16). */
  maxAtomicTransferBytes: 1 << 20,
  /** ATOMIC ALIGNMENT and ATOMIC TRANSFER LENGTH GRANULARITY (logical blocks). */
  atomicAlignmentBlocks: 1,
  atomicGranularityBlocks: 1,
  /** MAXIMUM ATOMIC TRANSFER LENGTH WITH ATOMIC BOUNDARY / MAXIMUM ATOMIC BOUNDARY SIZE: not supported. */
  maxAtomicBoundaryBlocks: 0,
  /**
   * MAXIMUM UNMAP LBA COUNT (bytes) and MAXIMUM UNMAP BLOCK DESCRIPTOR COUNT. 512 MiB is 2^20
   * blocks of 512 bytes: libiscsi Inquiry.BlockLimits holds anything above 1024*1024 insane.
   */
  maxUnmapBytes: 512 << 20,
  maxUnmapDescriptors: 256,
  /**
   * OPTIMAL UNMAP GRANULARITY: one physical block, with UGAVALID=1 and UNMAP GRANULARITY
   * ALIGNMENT 0 (LOWEST ALIGNED LOGICAL BLOCK ADDRESS is 0 too), SBC-4 §6.6.4.
   */
  unmapAlignmentBlocks: 0,
  /**
   * MAXIMUM WRITE SAME LENGTH: 0, "no limit reported" (SBC-4 §6.6.4). Zeroing or unmapping
   * costs metadata only on thin stores, and NUMBER OF LOGICAL BLOCKS 0 ("through the last LBA",
   * legal because WSNZ=0) must not exceed the limit on any capacity.
   */
  maxWriteSameBlocks: 0,
  /** WSNZ=0: WRITE SAME with NUMBER OF LOGICAL BLOCKS 0 writes through the last LBA (SBC-4 §5.50). */
  writeSameNonZero: false,
  /** MAXIMUM COMPARE AND WRITE LENGTH (logical blocks; a one-byte field). */
  maxCompareAndWriteBlocks: 255,
});

export interface BlockLimits {
  maxTransferLength: number;
  /** LOGICAL BLOCKS PER PHYSICAL BLOCK EXPONENT (READ CAPACITY(16) byte 13). */
  physicalBlockExponent: number;
  optimalTransferLengthGranularity: number;
  optimalTransferLength: number;
  maxAtomicTransferLength: number;
  atomicAlignment: number;
  atomicTransferLengthGranularity: number;
  maxAtomicBoundarySize: number;
  maxUnmapLbaCount: number;
  maxUnmapBlockDescriptorCount: number;
  optimalUnmapGranularity: number;
  unmapGranularityAlignment: number;
  /** UGAVALID: UNMAP GRANULARITY ALIGNMENT is meaningful. */
  unmapGranularityAlignmentValid: boolean;
  /** 0: no limit. */
  maxWriteSameLength: number;
  writeSameNonZero: boolean;
  maxCompareAndWriteLength: number;
}

const limitCache = new Map<string, BlockLimits>();

/**
 * SBC_LIMITS in logical blocks of the LU (what the Block Limits VPD page carries). The LU's
 * physical block size (LUN spec `physical=`, default the logical size) gives READ CAPACITY(16)'s
 * LOGICAL BLOCKS PER PHYSICAL BLOCK EXPONENT = log2(physical / logical) (SBC-4 §5.21.2) and the
 * optimal unmap granularity.
 */
export function blockLimits(lu: { blockSize: number; physicalBlockSize?: number }): BlockLimits {
  const blockSize = lu.blockSize;
  const physical = Math.max(lu.physicalBlockSize ?? blockSize, blockSize);
  const key = `${blockSize}/${physical}`;
  let l = limitCache.get(key);
  if (!l) {
    const b = (bytes: number) => Math.max(1, Math.floor(bytes / blockSize));
    const perPhysical = b(physical);
    l = Object.freeze({
      maxTransferLength: b(SBC_LIMITS.maxTransferBytes),
      physicalBlockExponent: Math.log2(perPhysical),
      optimalTransferLengthGranularity: b(SBC_LIMITS.optimalTransferGranularityBytes),
      optimalTransferLength: b(SBC_LIMITS.optimalTransferBytes),
      maxAtomicTransferLength: b(SBC_LIMITS.maxAtomicTransferBytes),
      atomicAlignment: SBC_LIMITS.atomicAlignmentBlocks,
      atomicTransferLengthGranularity: SBC_LIMITS.atomicGranularityBlocks,
      maxAtomicBoundarySize: SBC_LIMITS.maxAtomicBoundaryBlocks,
      maxUnmapLbaCount: b(SBC_LIMITS.maxUnmapBytes),
      maxUnmapBlockDescriptorCount: SBC_LIMITS.maxUnmapDescriptors,
      optimalUnmapGranularity: perPhysical,
      unmapGranularityAlignment: SBC_LIMITS.unmapAlignmentBlocks,
      unmapGranularityAlignmentValid: true,
      maxWriteSameLength: SBC_LIMITS.maxWriteSameBlocks,
      writeSameNonZero: SBC_LIMITS.writeSameNonZero,
      maxCompareAndWriteLength: SBC_LIMITS.maxCompareAndWriteBlocks,
    });
    limitCache.set(key, l);
  }
  return l;
}

/** Logical block provisioning as READ CAPACITY(16) and the LBP VPD page report it (SBC-4 §4.7). */
export function provisioning(lu: LogicalUnit): { lbpme: boolean; lbprz: boolean; unmap: boolean; writeSameUnmap: boolean } {
  const thin = lu.store.thin && typeof lu.store.unmap === 'function';
  return { lbpme: thin, lbprz: thin, unmap: thin, writeSameUnmap: thin && typeof lu.store.writeSame === 'function' };
}

// ---- shared pieces --------------------------------------------------------------------------

/** Data-protect gate (SBC-4 §4.11): configured read-only, or the Control mode page SWP bit. */
export function checkWritable(lu: LogicalUnit): void {
  if (lu.writeProtected) throw new SenseError('WriteProtected');
}

/** A cached write is forced to the medium when asked (FUA) or when the write cache is off (WCE=0). */
export function mustBeDurable(lu: LogicalUnit, fua: boolean): boolean {
  return fua || !lu.settings.wce;
}

/** `resp` once `r` (a store operation's result) has settled; synchronously when it is not a promise. */
export function respondAfter(r: unknown, resp: ScsiResponse): ScsiResponse | Promise<ScsiResponse> {
  return r instanceof Promise ? r.then(() => resp) : resp;
}

/**
 * Run `record` once the store operation `r` has succeeded, still inside the range-lock body that
 * issued it (so the splitter sees overlapping writes in the order production applied them).
 */
export function afterStore(r: void | Promise<void>, record: () => void): void | Promise<void> {
  if (r instanceof Promise) return r.then(record);
  record();
}

/** Common fields of an SBC entry: media access, UAs reported, medium required. */
export const MEDIA = { alua: 'media', ua: 'report', needsMedium: true } as const;

/**
 * Write `blocks` blocks of the Data-Out at `lba`. When the initiator sent less than the CDB asks
 * for, only the whole blocks received are written (RFC 7143 §11.4.5.2 overflow; see cdb.dataOut).
 */
export function writeBlocks(ctx: CommandContext, lba: bigint, blocks: number, fua: boolean): ScsiResponse | Promise<ScsiResponse> {
  const lu = ctx.lu;
  checkWritable(lu);
  const want = blocks * lu.blockSize;
  const resp: ScsiResponse = { status: ScsiStatus.Good, data: null, sense: null, dataOutLength: want };
  if (blocks === 0) return resp;
  let data = dataOut(ctx.req, want);
  const n = wholeBlocks(data, lu.blockSize);
  if (n === 0) return resp;
  if (n !== blocks || data.length !== n * lu.blockSize) data = data.subarray(0, n * lu.blockSize);
  const st = lu.stats;
  st.writes++;
  st.writeBytes += data.length;
  const durable = mustBeDurable(lu, fua);
  const src = data;
  const split = ctx.split;
  if (split === null) return exclusiveThen(lu, lba, n, () => lu.store.write(lba, src, durable), resp);
  return exclusiveThen(lu, lba, n, () => afterStore(lu.store.write(lba, src, durable), () => split.data(lu, lba, src)), resp);
}

