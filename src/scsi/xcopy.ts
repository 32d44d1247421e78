/**
 * Third-party copy (SPC-4 §5.17): EXTENDED COPY(LID1) and RECEIVE COPY RESULTS, the copy manager
 * that runs them inside the array, and the Third-party Copy VPD page (0x8F). This is the VAAI
 * "XCOPY" primitive: ESXi clones and Storage-vMotions by sending one EXTENDED COPY per 4-16 MiB
 * segment instead of reading and writing the data itself.
 *
 * decode() parses the whole parameter list (byte layouts in protocol/scsi/xcopy.ts) and resolves
 * every CSCD descriptor to a logical unit of the array, so the decoded command knows which
 * extents of which LUs it will write (`writes()`, for the splitter). execute() then moves the
 * data segment by segment under the same rules as a READ and a WRITE from the sending I_T nexus
 * (STYLE.md habit 14): the ALUA state, reservations and medium state of the source and
 * destination LUs, the destination's write protection, and the destination's range lock. Large
 * segments are copied in 1 MiB pieces, yielding to the event loop between pieces, so other
 * sessions' I/O keeps flowing while a copy runs.
 *
 * Errors (SPC-4 §6.4.3, §5.17.7): structural problems in the parameter list are ILLEGAL REQUEST
 * (PARAMETER LIST LENGTH ERROR, TOO MANY … DESCRIPTORS, UNSUPPORTED … DESCRIPTOR TYPE CODE,
 * INVALID FIELD IN PARAMETER LIST) and transfer nothing. A segment that cannot be processed ends
 * the copy with COPY ABORTED, naming the failing segment in COMMAND-SPECIFIC INFORMATION and
 * pointing at its descriptor in the sense-key specific field (SD=0: offset in the parameter list),
 * so the host can fall back to copying the rest itself; RECEIVE COPY RESULTS reports the same.
 */
import { naaDesignatorBytes } from '../../protocol/scsi/vpd.ts';
import { buildSense } from '../../protocol/scsi/sense.ts';
import type { SenseDetail, SenseReason } from '../../protocol/scsi/sense.ts';
import {
  CSCD_DESCRIPTOR_LENGTH, CSCD_IDENTIFICATION, CopyOperationStatus, ListIdUsage, OP_EXTENDED_COPY,
  OP_RECEIVE_COPY_RESULTS, RcrServiceAction, SEG_BLOCK_TO_BLOCK, SEG_BLOCK_TO_BLOCK_OFFSET,
  XCOPY_HEADER_LENGTH, XCOPY_SA_LID1, XcopyFormatError, decodeXcopyParameterList, encodeCopyStatus,
  encodeFailedSegmentDetails, encodeOperatingParameters, encodeReceiveData, generalCopyOperationsDescriptor,
  parameterDataDescriptor, supportedCommandsDescriptor, supportedCscdIdsDescriptor, supportedDescriptorsDescriptor,
} from '../../protocol/scsi/xcopy.ts';
import type { IdentificationCscd, SegmentDescriptor, XcopyLimits } from '../../protocol/scsi/xcopy.ts';
import { dataOut, invalidField, invalidParam, reserved } from './cdb.ts';
import type { CommandContext, CommandDef } from './command.ts';
import type { LogicalUnit } from './lu.ts';
import { releaseShared } from '../store/memory.ts';
import { rangeLockOf } from './range-lock.ts';
import { afterStore, mustBeDurable } from './sbc-common.ts';
import type { SplitRecorder } from './split.ts';
import { dataIn } from './spc.ts';
import type { ScsiTarget } from './target.ts';
import { GOOD, ScsiStatus, SenseError, StatusError } from './types.ts';
import type { Extent, Nexus, ScsiRequest, ScsiResponse } from './types.ts';

// ---- limits: enforced by decode, reported by OPERATING PARAMETERS and VPD 0x8F -----------------

export const XCOPY_LIMITS = Object.freeze({
  maxCscdDescriptors: 32,
  maxSegmentDescriptors: 256,
  /** 32 CSCD descriptors plus 256 of the larger (32-byte) segment descriptors. */
  maxDescriptorListLength: 32 * CSCD_DESCRIPTOR_LENGTH + 256 * 32,
  /** MAXIMUM SEGMENT LENGTH (bytes): ESXi sends 4 MiB by default and up to 16 MiB. */
  maxSegmentBytes: 64 << 20,
  /** EXTENDED COPY commands copying at once, over the whole process (TOTAL CONCURRENT COPIES). */
  maxConcurrentCopies: 64,
  supportedCscdTypes: [CSCD_IDENTIFICATION],
  supportedSegmentTypes: [SEG_BLOCK_TO_BLOCK, SEG_BLOCK_TO_BLOCK_OFFSET],
});

const FORMAT_LIMITS: XcopyLimits = XCOPY_LIMITS;

/** The piece a segment is copied in; the event loop runs between pieces. */
export const XCOPY_CHUNK_BYTES = 1 << 20;

/**
 * How a segment that names an LBA range beyond the end of its source or destination is
 * reported. SPC-4 leaves the additional sense code to the copy manager; libiscsi's
 * ExtendedCopy.ValidSegDescr accepts only COPY ABORTED with NO ADDITIONAL SENSE, UNREACHABLE
 * COPY TARGET or COPY TARGET DEVICE NOT REACHABLE, and LIO answers the last, so this does too.
 * The out-of-range LBA is still given in the INFORMATION field.
 */
const SEGMENT_RANGE_REASON: SenseReason = 'CopyTargetDeviceNotReachable';

// ---- the copy domain: which LUs a CSCD descriptor may name -------------------------------------

const domains = new WeakMap<ScsiTarget, readonly ScsiTarget[]>();

/**
 * Let EXTENDED COPY received by any of `targets` name LUs of all of them (one array, one copy
 * manager). Without it a target's copy manager sees its own LUs only.
 */
export function joinCopyDomain(targets: readonly ScsiTarget[]): void {
  const all = [...targets];
  for (const t of all) domains.set(t, all);
}

/** The LU whose NAA designator (VPD 0x83, also what lunNaaBytes gives) is `designator`. */
function findLuByNaa(target: ScsiTarget, designator: Buffer): LogicalUnit | undefined {
  const targets = domains.get(target) ?? [target];
  // The receiving target first: its LUs are the likely ones.
  for (const t of [target, ...targets.filter((x) => x !== target)]) {
    for (const lu of t.luns.values()) if (naaDesignatorBytes(lu.naa).equals(designator)) return lu;
  }
  return undefined;
}

// ---- decoded command ---------------------------------------------------------------------------

/** Why a segment cannot be processed: becomes COPY ABORTED when the copy reaches it. */
interface SegmentFault {
  reason: SenseReason;
  information?: bigint;
}

/** One segment, resolved to LUs and byte ranges. */
export interface PlannedSegment {
  index: number;
  /** Offset of the segment descriptor in the parameter list. */
  offset: number;
  src: LogicalUnit | null;
  dst: LogicalUnit | null;
  srcByte: number;
  dstByte: number;
  bytes: number;
  fault: SegmentFault | null;
}

export interface XcopyCmd {
  /** PARAMETER LIST LENGTH; 0 means no copy at all (SPC-4 §6.4.1). */
  parameterListLength: number;
  listId: number;
  listIdUsage: number;
  segments: PlannedSegment[];
}

function formatError(e: XcopyFormatError): SenseError {
  const fieldPointer = e.byte !== undefined ? { inCdb: false, byte: e.byte, bit: e.bit } : undefined;
  return new SenseError(e.reason, fieldPointer ? { fieldPointer } : {});
}

/** A resolved CSCD: the LU it names, or null (unknown LUN, NUL bit, not a block device …). */
function resolveCscd(target: ScsiTarget, c: IdentificationCscd): LogicalUnit | null {
  // LU ID TYPE is ignored for an Identification CSCD (SPC-4 §6.4.5.5: the designator names the
  // LU). NUL (obsolete in SPC-4) still means "no LU": nothing can be copied to or from it.
  if (c.nul || c.peripheralDeviceType !== 0) return null;
  // Only the NAA designator identifies an LU across the array (lunNaaBytes, VPD 0x83).
  if (c.designatorType !== 3 || c.association !== 0) return null;
  const lu = findLuByNaa(target, c.designator);
  if (!lu) return null;
  // DISK BLOCK LENGTH: what the host believes; a different block size is a different device.
  if (c.diskBlockLength !== 0 && c.diskBlockLength !== lu.blockSize) return null;
  return lu;
}

function planSegment(index: number, s: SegmentDescriptor, cscds: (LogicalUnit | null)[]): PlannedSegment {
  const src = s.source < cscds.length ? cscds[s.source] : null;
  const dst = s.destination < cscds.length ? cscds[s.destination] : null;
  const seg: PlannedSegment = { index, offset: s.offset, src, dst, srcByte: 0, dstByte: 0, bytes: 0, fault: null };
  if (!src || !dst) {
    seg.fault = { reason: 'CopyTargetDeviceNotReachable' };
    return seg;
  }
  let bytes: number;
  let srcByte: number;
  let dstByte: number;
  if (s.type === SEG_BLOCK_TO_BLOCK) {
    // DC selects whose blocks NUMBER OF BLOCKS counts (SPC-4 §6.4.6.5).
    bytes = s.blocks * (s.dc ? dst.blockSize : src.blockSize);
    srcByte = Number(s.sourceLba) * src.blockSize;
    dstByte = Number(s.destinationLba) * dst.blockSize;
    if (bytes > XCOPY_LIMITS.maxSegmentBytes) throw invalidParam(s.offset + 10);
    // Different block sizes need whole blocks on both sides (no residue handling, CAT ignored).
    if (bytes % src.blockSize !== 0 || bytes % dst.blockSize !== 0) {
      seg.fault = { reason: 'CopyTargetDeviceNotReachable' };
      return seg;
    }
  } else {
    bytes = s.bytes;
    srcByte = Number(s.sourceLba) * src.blockSize + s.sourceByteOffset;
    dstByte = Number(s.destinationLba) * dst.blockSize + s.destinationByteOffset;
    if (bytes > XCOPY_LIMITS.maxSegmentBytes) throw invalidParam(s.offset + 8);
  }
  const srcEnd = BigInt(srcByte + bytes);
  const dstEnd = BigInt(dstByte + bytes);
  if (s.sourceLba >= src.blockCount || srcEnd > src.blockCount * BigInt(src.blockSize) || !Number.isSafeInteger(srcByte + bytes)) {
    seg.fault = { reason: SEGMENT_RANGE_REASON, information: s.sourceLba };
  } else if (s.destinationLba >= dst.blockCount || dstEnd > dst.blockCount * BigInt(dst.blockSize) || !Number.isSafeInteger(dstByte + bytes)) {
    seg.fault = { reason: SEGMENT_RANGE_REASON, information: s.destinationLba };
  }
  // NUMBER OF BLOCKS 0 transfers nothing (SPC-4 §6.4.6.5): its LBAs are not checked.
  if (bytes === 0) seg.fault = null;
  seg.bytes = bytes;
  seg.srcByte = srcByte;
  seg.dstByte = dstByte;
  return seg;
}

export function decodeExtendedCopy(cdb: Buffer, lu: LogicalUnit, req: ScsiRequest): XcopyCmd {
  for (let i = 2; i <= 9; i++) reserved(cdb, i, 0xff);
  reserved(cdb, 14, 0xff);
  if (cdb[15] & 0x04) throw invalidField(15, 2); // NACA: no ACA support
  const parameterListLength = cdb.readUInt32BE(10);
  const empty: XcopyCmd = { parameterListLength, listId: 0, listIdUsage: ListIdUsage.None, segments: [] };
  if (parameterListLength === 0) return empty;
  if (parameterListLength < XCOPY_HEADER_LENGTH) throw new SenseError('ParameterListLengthError');
  const p = dataOut(req, parameterListLength);
  let list;
  try {
    list = decodeXcopyParameterList(p, FORMAT_LIMITS);
  } catch (e) {
    if (e instanceof XcopyFormatError) throw formatError(e);
    throw e;
  }
  const cscds = list.cscds.map((c) => resolveCscd(lu.target, c));
  return {
    parameterListLength,
    listId: list.header.listId,
    listIdUsage: list.header.listIdUsage,
    segments: list.segments.map((s, i) => planSegment(i, s, cscds)),
  };
}

/** The destination extents, per LU, in logical blocks (what a splitter must replicate). */
export function extendedCopyWrites(cmd: XcopyCmd): Extent[] {
  const out: Extent[] = [];
  for (const s of cmd.segments) {
    if (s.fault || !s.dst || s.bytes === 0) continue;
    const bs = s.dst.blockSize;
    const first = Math.floor(s.dstByte / bs);
    const end = Math.ceil((s.dstByte + s.bytes) / bs);
    out.push({ lu: s.dst, lba: BigInt(first), blocks: end - first });
  }
  return out;
}

// ---- copy records: what RECEIVE COPY RESULTS reports, per I_T nexus and LIST IDENTIFIER --------

interface CopyRecord {
  active: boolean;
  status: CopyOperationStatus;
  segmentsProcessed: number;
  bytes: number;
  /** Status and sense of a copy that failed (FAILED SEGMENT DETAILS). */
  failure: { status: number; sense: Buffer } | null;
}

/**
 * Keyed by the Nexus object of the session: a new login is a new object, so results held for a
 * session that has gone are dropped with it (SPC-4 §5.17.4.3 ties held results to the I_T nexus).
 */
const records = new WeakMap<Nexus, Map<number, CopyRecord>>();
let activeCopies = 0;

function recordsOf(nexus: Nexus): Map<number, CopyRecord> {
  let m = records.get(nexus);
  if (!m) records.set(nexus, (m = new Map()));
  return m;
}

// ---- execution ---------------------------------------------------------------------------------

const READ16_CDB = Buffer.from([0x88, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
const WRITE16_CDB = Buffer.from([0x8a, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);

class SegmentAbort extends Error {
  constructor(readonly reason: SenseReason, readonly information?: bigint) { super(reason); }
}

/**
 * The gates a READ(16) (source) or WRITE(16) (destination) from the sending I_T nexus would pass
 * on `lu`: ALUA access state, medium state, reservations, and write protection. The command
 * table's own READ(16)/WRITE(16) entries carry the classes, so the rules are the same ones.
 * A reservation conflict stays RESERVATION CONFLICT; an inaccessible LU is a copy target that
 * cannot be reached (COPY ABORTED).
 */
function accessGate(lu: LogicalUnit, req: ScsiRequest, write: boolean): void {
  const def = lu.lookup(write ? WRITE16_CDB : READ16_CDB);
  if (!def) throw new SegmentAbort('CopyTargetDeviceNotReachable');
  try {
    lu.target.alua.gate(def, lu, req.nexus);
    if (!lu.mediumPresent || !lu.started) throw new SenseError('MediumNotPresent');
  } catch (e) {
    if (e instanceof SenseError) throw new SegmentAbort('CopyTargetDeviceNotReachable');
    throw e;
  }
  lu.reservations.gate(def, req, null);
  if (write && lu.writeProtected) throw new SenseError('WriteProtected');
}

const yieldToEventLoop = (): Promise<void> => new Promise((r) => setImmediate(r));

/**
 * Copy one piece: [srcByte, srcByte+n) of `src` to [dstByte, dstByte+n) of `dst`, holding the
 * destination blocks in the range lock. Block-aligned pieces go store to store (a memory store
 * hands out a view of its chunk, so this is one memcpy); unaligned ones (0x0A segments) read,
 * modify and write the destination's edge blocks.
 */
async function copyPiece(src: LogicalUnit, srcByte: number, dst: LogicalUnit, dstByte: number, n: number, durable: boolean,
  split: SplitRecorder | null): Promise<void> {
  const sbs = src.blockSize;
  const dbs = dst.blockSize;
  const sFirst = Math.floor(srcByte / sbs);
  const sBlocks = Math.ceil((srcByte + n) / sbs) - sFirst;
  const dFirst = Math.floor(dstByte / dbs);
  const dBlocks = Math.ceil((dstByte + n) / dbs) - dFirst;
  const aligned = srcByte % sbs === 0 && dstByte % dbs === 0 && n % sbs === 0 && n % dbs === 0;
  const release = await rangeLockOf(dst).acquire(BigInt(dFirst), dBlocks);
  try {
    if (aligned) {
      // No await between read and write when the store is synchronous: the view must be
      // consumed before any other command can run (store.ts read contract).
      // The splitter records the destination blocks as copied. A memory store's read is a view of
      // itself: when source and destination overlap, the write changes what the view shows, so
      // the record is copied from it first (the soak in test/splitter caught the aliasing).
      // The copy goes to the journal's memory (LuProtection.keep), not a fresh 1 MiB Buffer per piece.
      const put = (b: Buffer) => {
        if (split === null) return dst.store.write(BigInt(dFirst), b, durable);
        // A memory destination under a memory journal: recorded once written, as the store holds
        // it, and a whole chunk shared copy-on-write instead of copied (MemoryStore.share), so
        // neither the journal nor a thin replica pays a copy into fresh memory for it.
        // (A replicated store's write settles once its peer has it: recorded then, the range still held.)
        if (split.sharesWith(dst)) return afterStore(dst.store.write(BigInt(dFirst), b, durable), () => split.written(dst, BigInt(dFirst), dBlocks));
        const rec = split.keep(dst, b);
        let w: void | Promise<void>;
        try {
          w = dst.store.write(BigInt(dFirst), b, durable);
        } catch (e) {
          split.discard(dst, rec);
          throw e;
        }
        if (w instanceof Promise) w = w.catch((e: unknown) => { split.discard(dst, rec); throw e; });
        return afterStore(w, () => split.data(dst, BigInt(dFirst), rec, true));
      };
      // A whole allocated chunk of a memory source onto a whole chunk of a thin memory
      // destination is cloned, not copied: the destination takes the source's chunk
      // copy-on-write (MemoryStore.share, adopted by write()), as arrays clone extents for an
      // offloaded copy; the first later write to either side copies that one chunk.
      const cloned = dst.store.kind === 'memory' && dst.store.thin ? src.store.share?.(BigInt(sFirst), sBlocks) ?? null : null;
      const d = cloned ?? src.store.read(BigInt(sFirst), sBlocks);
      let w: void | Promise<void>;
      try {
        w = d instanceof Promise ? d.then(put) : put(d);
      } catch (e) {
        if (cloned) releaseShared(cloned);
        throw e;
      }
      // Held until the write settles: a replicated destination sends the chunk to its peer
      // meanwhile, and while it is shared a write to the source copies instead of changing it.
      if (cloned) {
        if (w instanceof Promise) w = w.finally(() => releaseShared(cloned));
        else releaseShared(cloned);
      }
      if (w instanceof Promise) await w;
    } else {
      const out = Buffer.alloc(dBlocks * dbs);
      const r1 = dst.store.read(BigInt(dFirst), dBlocks, out);
      if (r1 instanceof Promise) await r1;
      const r2 = src.store.read(BigInt(sFirst), sBlocks);
      const s = r2 instanceof Promise ? await r2 : r2;
      const from = srcByte - sFirst * sbs;
      s.copy(out, dstByte - dFirst * dbs, from, from + n);
      const w = afterStore(dst.store.write(BigInt(dFirst), out, durable), () => split?.data(dst, BigInt(dFirst), out, true));
      if (w instanceof Promise) await w;
    }
  } finally {
    release();
  }
  src.stats.reads++;
  src.stats.readBytes += n;
  dst.stats.writes++;
  dst.stats.writeBytes += n;
}

async function copySegment(seg: PlannedSegment, req: ScsiRequest, rec: CopyRecord, split: SplitRecorder | null): Promise<void> {
  const src = seg.src!;
  const dst = seg.dst!;
  const durable = mustBeDurable(dst, false);
  // Within one LU, a destination that overlaps the source from above is copied from the end,
  // so no piece reads what an earlier piece already overwrote.
  const backwards = src === dst && seg.dstByte > seg.srcByte && seg.dstByte < seg.srcByte + seg.bytes;
  let done = 0;
  while (done < seg.bytes) {
    // The gates again before every piece: a reservation or ALUA change during a long copy ends it.
    accessGate(src, req, false);
    accessGate(dst, req, true);
    const n = Math.min(XCOPY_CHUNK_BYTES, seg.bytes - done);
    const at = backwards ? seg.bytes - done - n : done;
    await copyPiece(src, seg.srcByte + at, dst, seg.dstByte + at, n, durable, split);
    done += n;
    rec.bytes += n;
    if (done < seg.bytes) await yieldToEventLoop();
  }
}

function copyAborted(ctx: CommandContext, seg: PlannedSegment, reason: SenseReason, information?: bigint): ScsiResponse {
  const detail: SenseDetail = { commandSpecific: seg.index };
  if (information !== undefined) detail.information = information;
  // Segment pointer (SPC-4 §4.5.2.4.6) with SD=0: the descriptor's offset in the parameter list.
  if (seg.offset <= 0xffff) detail.fieldPointer = { inCdb: false, byte: seg.offset };
  return { status: ScsiStatus.CheckCondition, data: null, sense: buildSense(reason, ctx.lu.settings.dSense, detail) };
}

async function runCopy(ctx: CommandContext, cmd: XcopyCmd, rec: CopyRecord): Promise<ScsiResponse> {
  for (const seg of cmd.segments) {
    if (seg.fault) return copyAborted(ctx, seg, seg.fault.reason, seg.fault.information);
    if (seg.bytes > 0) {
      try {
        await copySegment(seg, ctx.req, rec, ctx.split);
      } catch (e) {
        if (e instanceof SegmentAbort) return copyAborted(ctx, seg, e.reason, e.information);
        // Reservation conflict or write protection before the first piece of the first segment:
        // the command's own status. After data moved: the copy was aborted part way.
        if (rec.bytes === 0 && (e instanceof StatusError || e instanceof SenseError)) throw e;
        if (e instanceof StatusError || e instanceof SenseError) return copyAborted(ctx, seg, 'CopyTargetDeviceNotReachable');
        throw e;
      }
    }
    rec.segmentsProcessed++;
  }
  return { status: ScsiStatus.Good, data: null, sense: null, dataOutLength: cmd.parameterListLength };
}

function finish(ctx: CommandContext, rec: CopyRecord, r: ScsiResponse): ScsiResponse {
  rec.active = false;
  rec.status = r.status === ScsiStatus.Good ? CopyOperationStatus.CompletedGood : CopyOperationStatus.CompletedWithErrors;
  if (r.status !== ScsiStatus.Good) {
    rec.failure = { status: r.status, sense: r.sense ?? Buffer.alloc(0) };
    ctx.lu.stats.errors++;
  }
  return r;
}

async function executeExtendedCopy(ctx: CommandContext, cmd: XcopyCmd): Promise<ScsiResponse> {
  const mine = recordsOf(ctx.nexus);
  const held = cmd.listIdUsage !== ListIdUsage.None;
  // SPC-4 §6.4.1: a LIST IDENTIFIER already in use by a running copy of this I_T nexus.
  if (held && mine.get(cmd.listId)?.active) throw new SenseError('OperationInProgress');
  if (activeCopies >= XCOPY_LIMITS.maxConcurrentCopies) throw new StatusError(ScsiStatus.Busy);
  const rec: CopyRecord = { active: true, status: CopyOperationStatus.InProgress, segmentsProcessed: 0, bytes: 0, failure: null };
  if (held) mine.set(cmd.listId, rec);
  activeCopies++;
  try {
    const r = await runCopy(ctx, cmd, rec);
    return finish(ctx, rec, { ...r, dataOutLength: cmd.parameterListLength });
  } catch (e) {
    const r = e instanceof SenseError ? ctx.lu.check(e.reason, e.detail)
      : e instanceof StatusError ? { status: e.status, data: null, sense: null }
      : null;
    if (!r) { rec.active = false; rec.status = CopyOperationStatus.CompletedWithErrors; throw e; }
    return finish(ctx, rec, { ...r, dataOutLength: cmd.parameterListLength });
  } finally {
    activeCopies--;
    // LIST ID USAGE 10b: nothing is held once the copy is over.
    if (cmd.listIdUsage === ListIdUsage.NoHold && mine.get(cmd.listId) === rec) mine.delete(cmd.listId);
  }
}

// ---- RECEIVE COPY RESULTS ------------------------------------------------------------------------

interface RcrCmd {
  listId: number;
  allocationLength: number;
}

function decodeRcr(cdb: Buffer): RcrCmd {
  for (let i = 3; i <= 9; i++) reserved(cdb, i, 0xff);
  reserved(cdb, 14, 0xff);
  if (cdb[15] & 0x04) throw invalidField(15, 2);
  return { listId: cdb[2], allocationLength: cdb.readUInt32BE(10) };
}

/** A held record for LIST IDENTIFIER, or INVALID FIELD IN CDB on that field (SPC-4 §6.18.1). */
function recordFor(ctx: CommandContext, listId: number): CopyRecord {
  const r = records.get(ctx.nexus)?.get(listId);
  if (!r) throw invalidField(2);
  return r;
}

/** TRANSFER COUNT in the smallest power-of-1024 unit that fits 32 bits. */
function transferCount(bytes: number): { units: number; count: number } {
  let units = 0;
  let count = bytes;
  while (count > 0xffffffff) { count = Math.floor(count / 1024); units++; }
  return { units, count };
}

export function operatingParameters(lu: LogicalUnit): Buffer {
  return encodeOperatingParameters({
    snlid: false,
    maxCscdDescriptors: XCOPY_LIMITS.maxCscdDescriptors,
    maxSegmentDescriptors: XCOPY_LIMITS.maxSegmentDescriptors,
    maxDescriptorListLength: XCOPY_LIMITS.maxDescriptorListLength,
    maxSegmentLength: XCOPY_LIMITS.maxSegmentBytes,
    maxInlineDataLength: 0,
    heldDataLimit: 0,
    maxStreamDeviceTransferSize: 0,
    totalConcurrentCopies: XCOPY_LIMITS.maxConcurrentCopies,
    maxConcurrentCopies: XCOPY_LIMITS.maxConcurrentCopies,
    // Block to block segments move whole logical blocks; 0x0A segments any byte count.
    dataSegmentGranularityLog2: Math.log2(lu.blockSize),
    inlineDataGranularityLog2: 0,
    heldDataGranularityLog2: 0,
    implementedDescriptors: [...XCOPY_LIMITS.supportedSegmentTypes, ...XCOPY_LIMITS.supportedCscdTypes],
  });
}

const RCR_USAGE = (sa: number): number[] => [OP_RECEIVE_COPY_RESULTS, sa, 0xff, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x00, 0x04];
const RCR_COMMON = {
  opcode: OP_RECEIVE_COPY_RESULTS, cdbLength: 16, dataDirection: 'in', reservation: 'allowed', alua: 'media',
  ua: 'report', splitter: 'none', decode: decodeRcr,
} as const;

const RCR_COPY_STATUS: CommandDef<RcrCmd> = {
  ...RCR_COMMON, serviceAction: RcrServiceAction.CopyStatus, name: 'RECEIVE COPY RESULTS(COPY STATUS)',
  usage: RCR_USAGE(RcrServiceAction.CopyStatus),
  execute: (ctx, c) => {
    const r = recordFor(ctx, c.listId);
    const t = transferCount(r.bytes);
    return dataIn(encodeCopyStatus({
      hdd: false, status: r.status, segmentsProcessed: r.segmentsProcessed, transferCountUnits: t.units, transferCount: t.count,
    }), c.allocationLength);
  },
};

const RCR_RECEIVE_DATA: CommandDef<RcrCmd> = {
  ...RCR_COMMON, serviceAction: RcrServiceAction.ReceiveData, name: 'RECEIVE COPY RESULTS(RECEIVE DATA)',
  usage: RCR_USAGE(RcrServiceAction.ReceiveData),
  // Block to block segments hold no data (SPC-4 §6.18.3): an empty list, for a known copy.
  execute: (ctx, c) => { recordFor(ctx, c.listId); return dataIn(encodeReceiveData(Buffer.alloc(0)), c.allocationLength); },
};

const RCR_OPERATING_PARAMETERS: CommandDef<RcrCmd> = {
  ...RCR_COMMON, serviceAction: RcrServiceAction.OperatingParameters, name: 'RECEIVE COPY RESULTS(OPERATING PARAMETERS)',
  usage: RCR_USAGE(RcrServiceAction.OperatingParameters),
  alua: 'standby-ok',
  // LIST IDENTIFIER is ignored for this service action (SPC-4 §6.18.4).
  execute: (ctx, c) => dataIn(operatingParameters(ctx.lu), c.allocationLength),
};

const RCR_FAILED_SEGMENT_DETAILS: CommandDef<RcrCmd> = {
  ...RCR_COMMON, serviceAction: RcrServiceAction.FailedSegmentDetails, name: 'RECEIVE COPY RESULTS(FAILED SEGMENT DETAILS)',
  usage: RCR_USAGE(RcrServiceAction.FailedSegmentDetails),
  execute: (ctx, c) => {
    const r = recordFor(ctx, c.listId);
    return dataIn(encodeFailedSegmentDetails(r.active ? null : r.failure), c.allocationLength);
  },
};

export const EXTENDED_COPY: CommandDef<XcopyCmd> = {
  opcode: OP_EXTENDED_COPY, serviceAction: XCOPY_SA_LID1, name: 'EXTENDED COPY(LID1)', cdbLength: 16,
  usage: [OP_EXTENDED_COPY, 0x1f, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x00, 0x04],
  dataDirection: 'out',
  // The LU that receives the command is only the copy manager's address; the source and
  // destination LUs are gated as a READ and a WRITE from the same nexus (accessGate).
  reservation: 'allowed',
  alua: 'media', ua: 'report', splitter: 'xcopy', needsMedium: true,
  timeout: { nominal: 1, recommended: 30 },
  decode: decodeExtendedCopy,
  execute: (ctx, cmd) => (cmd.parameterListLength === 0 ? GOOD : executeExtendedCopy(ctx, cmd)),
  writes: extendedCopyWrites,
};

export const XCOPY_COMMANDS: CommandDef[] = [
  EXTENDED_COPY, RCR_COPY_STATUS, RCR_RECEIVE_DATA, RCR_OPERATING_PARAMETERS, RCR_FAILED_SEGMENT_DETAILS,
];

// ---- Third-party Copy VPD page (SPC-4 §7.8.17) ------------------------------------------------

/** Page 0x8F body: the third-party copy commands and EXTENDED COPY limits this copy manager offers. */
export function thirdPartyCopyVpdBody(lu: LogicalUnit): Buffer {
  const byOpcode = new Map<number, number[]>();
  for (const d of XCOPY_COMMANDS) {
    const sas = byOpcode.get(d.opcode) ?? [];
    if (d.serviceAction !== undefined) sas.push(d.serviceAction);
    byOpcode.set(d.opcode, sas);
  }
  return Buffer.concat([
    supportedCommandsDescriptor([...byOpcode].map(([opcode, sas]) => ({ opcode, serviceActions: sas.sort((a, b) => a - b) }))),
    parameterDataDescriptor({
      maxCscdDescriptors: XCOPY_LIMITS.maxCscdDescriptors,
      maxSegmentDescriptors: XCOPY_LIMITS.maxSegmentDescriptors,
      maxDescriptorListLength: XCOPY_LIMITS.maxDescriptorListLength,
      maxInlineDataLength: 0,
    }),
    supportedDescriptorsDescriptor([...XCOPY_LIMITS.supportedSegmentTypes, ...XCOPY_LIMITS.supportedCscdTypes]),
    supportedCscdIdsDescriptor([]),
    generalCopyOperationsDescriptor({
      totalConcurrentCopies: XCOPY_LIMITS.maxConcurrentCopies,
      maxIdentifiedConcurrentCopies: XCOPY_LIMITS.maxConcurrentCopies,
      maxSegmentLength: XCOPY_LIMITS.maxSegmentBytes,
      dataSegmentGranularityLog2: Math.log2(lu.blockSize),
      inlineDataGranularityLog2: 0,
    }),
  ]);
}
