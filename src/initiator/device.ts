/**
 * A SCSI block device on an iSCSI session: typed methods for the commands a host's data mover
 * issues (SPC-5, SBC-4, SPC-4 third-party copy), each returning a ScsiResult. Open one with a
 * libiscsi-style URL (url.ts); several devices can share one session (`session.device(lun)`
 * style, via ScsiDevice.on), which EXTENDED COPY between two LUs of one target needs.
 */
import { decodeStandardInquiry } from '../../protocol/scsi/inquiry.ts';
import { SenseKey } from '../../protocol/scsi/sense.ts';
import type { DecodedSense } from '../../protocol/scsi/sense.ts';
import type { StandardInquiry } from '../../protocol/scsi/inquiry.ts';
import {
  decodeBlockLimits, decodeDesignators, decodeLogicalBlockProvisioning, decodeVpdHeader, DesignatorType, Association, VpdPage,
  VPD_HEADER_LENGTH,
} from '../../protocol/scsi/vpd.ts';
import type { BlockLimitsPage, Designator, LogicalBlockProvisioning } from '../../protocol/scsi/vpd.ts';
import {
  decodeCopyStatus, decodeOperatingParameters, decodeTpcDescriptors, encodeXcopyParameterList, ListIdUsage, RcrServiceAction,
} from '../../protocol/scsi/xcopy.ts';
import type { BlockToBlockFields, CopyStatus, OperatingParameters } from '../../protocol/scsi/xcopy.ts';
import { encodeProutParameters, PrinAction, ProutAction } from '../../protocol/scsi/pr.ts';
import type { PrType, ProutParameters } from '../../protocol/scsi/pr.ts';
import * as C from './cdb.ts';
import {
  decodeCapacity16, decodeReadKeys, decodeReadReservation, decodeReportLuns, decodeSupportedOperations, decodeTargetPortGroups,
} from './decode.ts';
import type { Capacity, SupportedOperation, TargetPortGroup } from './decode.ts';
import { ScsiCommandError, toResult } from './result.ts';
import type { ScsiResult } from './result.ts';
import { Session } from './session.ts';
import type { ScsiRequest, SessionOptions } from './session.ts';
import { parseIscsiUrl } from './url.ts';
import type { IscsiUrl } from './url.ts';

export interface OpenOptions extends Partial<Omit<SessionOptions, 'host' | 'port' | 'targetName' | 'chap'>> {
  /** Per command, default 30 s. */
  commandTimeoutMs?: number;
}

/** Which READ/WRITE CDB to use (SBC-4): 16 unless a test needs the older forms. */
export type CdbSize = 6 | 10 | 16;

export interface IoOptions {
  fua?: boolean;
  cdb?: CdbSize;
  timeoutMs?: number;
}

export interface VpdDeviceIdentification {
  designators: Designator[];
  /** The LU's NAA designator, as hex (what XCOPY identification descriptors carry). */
  naa?: Buffer;
}

export interface ThirdPartyCopyPage {
  descriptors: { type: number; body: Buffer }[];
}

export interface WriteSameOptions {
  /** UNMAP: the blocks may be deallocated (SBC-4 §5.50). */
  unmap?: boolean;
  /** ANCHOR: anchor rather than deallocate. */
  anchor?: boolean;
  /** NDOB: no data-out buffer, the blocks become zeros. */
  ndob?: boolean;
  timeoutMs?: number;
}

export interface XcopySegment {
  /** The source and destination devices (they must be in `devices`). */
  from: ScsiDevice;
  to: ScsiDevice;
  sourceLba: bigint;
  destinationLba: bigint;
  blocks: number;
}

export class ScsiDevice {
  /** NAA designator cached from VPD 0x83 (for EXTENDED COPY identification descriptors). */
  private naaCache: Buffer | null = null;
  private blockSizeCache: Promise<number> | null = null;
  private maxTransferCache: Promise<number> | null = null;

  constructor(readonly session: Session, readonly lun: number, readonly url?: IscsiUrl) {}

  /** Connect, log in (CHAP from the URL), and return the device named by the URL. */
  static async open(url: string | IscsiUrl, o: OpenOptions = {}): Promise<ScsiDevice> {
    const u = typeof url === 'string' ? parseIscsiUrl(url) : url;
    const chap = u.user && u.password
      ? { user: u.user, secret: u.password, ...(u.targetUser && u.targetPassword ? { targetUser: u.targetUser, targetSecret: u.targetPassword } : {}) }
      : undefined;
    const offer = { ...(u.headerDigest ? { headerDigest: u.headerDigest } : {}), ...o.offer };
    const session = await Session.login({ ...o, host: u.host, port: u.port, targetName: u.target, chap, offer });
    return new ScsiDevice(session, u.lun, u);
  }

  /** Another LU of the same session. */
  on(lun: number): ScsiDevice {
    return new ScsiDevice(this.session, lun, this.url ? { ...this.url, lun } : undefined);
  }

  async close(): Promise<void> {
    await this.session.logout().catch(() => this.session.close());
  }

  private async run<T>(req: Omit<ScsiRequest, 'lun'>, decode: (d: Buffer) => T): Promise<ScsiResult<T>> {
    return toResult(await this.session.command({ ...req, lun: this.lun }), decode);
  }

  // ---- SPC ---------------------------------------------------------------------------------

  testUnitReady(): Promise<ScsiResult<void>> {
    return this.run({ cdb: C.testUnitReady() }, () => undefined);
  }

  /**
   * TEST UNIT READY until it answers something other than UNIT ATTENTION (SAM-5 §5.14: each
   * pending unit attention is reported once, then cleared), at most `max` times, as a host does
   * after login. Returns the unit attentions consumed and the last result.
   */
  async clearUnitAttentions(max = 8): Promise<{ unitAttentions: DecodedSense[]; last: ScsiResult<void> }> {
    const unitAttentions: DecodedSense[] = [];
    for (;;) {
      const last = await this.testUnitReady();
      if (last.kind !== 'check-condition' || last.sense?.key !== SenseKey.UnitAttention || unitAttentions.length >= max) return { unitAttentions, last };
      unitAttentions.push(last.sense);
    }
  }

  inquiry(): Promise<ScsiResult<StandardInquiry>> {
    return this.run({ cdb: C.inquiry(255), dataIn: 255 }, decodeStandardInquiry);
  }

  /** A VPD page's body (after the 4-byte header), as the target sent it. */
  vpd(page: number, allocation = 4096): Promise<ScsiResult<Buffer>> {
    return this.run({ cdb: C.inquiry(allocation, page), dataIn: allocation }, (d) => {
      const h = decodeVpdHeader(d);
      if (h.page !== page) throw new RangeError(`asked for VPD page 0x${page.toString(16)}, got 0x${h.page.toString(16)}`);
      return d.subarray(VPD_HEADER_LENGTH, VPD_HEADER_LENGTH + h.length);
    });
  }

  async supportedVpdPages(): Promise<ScsiResult<number[]>> {
    return map(await this.vpd(VpdPage.SupportedPages), (b) => [...b]);
  }

  async deviceIdentification(): Promise<ScsiResult<VpdDeviceIdentification>> {
    return map(await this.vpd(VpdPage.DeviceIdentification), (b) => {
      const designators = decodeDesignators(b);
      const naa = designators.find((d) => d.type === DesignatorType.Naa && d.association === Association.LogicalUnit)?.value;
      if (naa) this.naaCache = Buffer.from(naa);
      return { designators, ...(naa ? { naa: Buffer.from(naa) } : {}) };
    });
  }

  async blockLimits(): Promise<ScsiResult<BlockLimitsPage>> {
    return map(await this.vpd(VpdPage.BlockLimits), (b) => decodeBlockLimits(b));
  }

  async logicalBlockProvisioning(): Promise<ScsiResult<LogicalBlockProvisioning>> {
    return map(await this.vpd(VpdPage.LogicalBlockProvisioning), (b) => decodeLogicalBlockProvisioning(b));
  }

  async thirdPartyCopy(): Promise<ScsiResult<ThirdPartyCopyPage>> {
    return map(await this.vpd(VpdPage.ThirdPartyCopy), (b) => ({ descriptors: decodeTpcDescriptors(b) }));
  }

  reportSupportedOperationCodes(): Promise<ScsiResult<SupportedOperation[]>> {
    return this.run({ cdb: C.maintenanceIn(C.ServiceAction.ReportSupportedOperationCodes, 65536), dataIn: 65536 }, decodeSupportedOperations);
  }

  reportTargetPortGroups(): Promise<ScsiResult<TargetPortGroup[]>> {
    return this.run({ cdb: C.maintenanceIn(C.ServiceAction.ReportTargetPortGroups, 4096), dataIn: 4096 }, decodeTargetPortGroups);
  }

  reportLuns(): Promise<ScsiResult<number[]>> {
    return this.run({ cdb: C.reportLuns(16384), dataIn: 16384 }, decodeReportLuns);
  }

  readKeys(): Promise<ScsiResult<{ generation: number; keys: bigint[] }>> {
    return this.run({ cdb: C.persistentReserveIn(PrinAction.ReadKeys, 8192), dataIn: 8192 }, decodeReadKeys);
  }

  readReservation(): Promise<ScsiResult<{ generation: number; reservation: { key: bigint; scope: number; type: number } | null }>> {
    return this.run({ cdb: C.persistentReserveIn(PrinAction.ReadReservation, 256), dataIn: 256 }, decodeReadReservation);
  }

  /** PERSISTENT RESERVE IN with any service action: the raw parameter data. */
  persistentReserveIn(action: PrinAction, allocation = 8192): Promise<ScsiResult<Buffer>> {
    return this.run({ cdb: C.persistentReserveIn(action, allocation), dataIn: allocation }, (d) => d);
  }

  /** PERSISTENT RESERVE OUT (SPC-5 §6.17): REGISTER, RESERVE, RELEASE, CLEAR, PREEMPT … */
  persistentReserveOut(action: ProutAction, p: Partial<ProutParameters> & { type?: PrType }): Promise<ScsiResult<void>> {
    const data = encodeProutParameters(p);
    return this.run({ cdb: C.persistentReserveOut(action, p.type ?? 0, data.length), dataOut: data }, () => undefined);
  }

  reserve6(): Promise<ScsiResult<void>> {
    return this.run({ cdb: C.reserveRelease6(C.Op.Reserve6) }, () => undefined);
  }

  release6(): Promise<ScsiResult<void>> {
    return this.run({ cdb: C.reserveRelease6(C.Op.Release6) }, () => undefined);
  }

  // ---- SBC ---------------------------------------------------------------------------------

  async readCapacity16(): Promise<ScsiResult<Capacity>> {
    const r = await this.run({ cdb: C.readCapacity16(32), dataIn: 32 }, decodeCapacity16);
    if (r.kind === 'good') this.blockSizeCache = Promise.resolve(r.value.blockSize);
    return r;
  }

  /**
   * Run `command` again while it answers UNIT ATTENTION, at most `max` times: a command the
   * library sends on its own behalf (to size or split a transfer) must not fail because a
   * unit attention was pending; each is reported once, then cleared (SAM-5 §5.14), as Linux sd
   * retries its READ CAPACITY.
   */
  private async pastUnitAttentions<T>(command: () => Promise<ScsiResult<T>>, max = 8): Promise<ScsiResult<T>> {
    for (let i = 0; ; i++) {
      const r = await command();
      if (r.kind !== 'check-condition' || r.sense?.key !== SenseKey.UnitAttention || i >= max) return r;
    }
  }

  /** The logical block size: READ CAPACITY(16) once (shared by concurrent callers), then cached. */
  blockSize(): Promise<number> {
    if (!this.blockSizeCache) {
      const p = this.pastUnitAttentions(() => this.readCapacity16()).then((r) => {
        if (r.kind !== 'good') throw new ScsiCommandError(r, 'READ CAPACITY(16), to size a transfer');
        return r.value.blockSize;
      });
      this.blockSizeCache = p;
      p.catch(() => { if (this.blockSizeCache === p) this.blockSizeCache = null; });
    }
    return this.blockSizeCache;
  }

  /**
   * MAXIMUM TRANSFER LENGTH in blocks from the Block Limits VPD page (SBC-4 §6.6.4), 0 when the
   * device sets none or has no such page; asked once, then cached. A READ longer than it is
   * split, as a host's block layer does (the target may refuse it otherwise: 05/24/00).
   */
  maxTransferBlocks(): Promise<number> {
    if (!this.maxTransferCache) {
      const p = this.pastUnitAttentions(() => this.blockLimits()).then((r) => (r.kind === 'good' ? r.value.maxTransferLength : 0));
      this.maxTransferCache = p;
      p.catch(() => { if (this.maxTransferCache === p) this.maxTransferCache = null; });
    }
    return this.maxTransferCache;
  }

  /**
   * READ `blocks` blocks at `lba`. With `into`, the data lands in the caller's buffer (which must
   * hold blocks × block size); the value is the part the target filled. After a timeout the rest
   * of one Data-In segment already under way may still land in `into`: do not reuse it at once.
   */
  async read(lba: bigint, blocks: number, o: IoOptions & { into?: Buffer } = {}): Promise<ScsiResult<Buffer>> {
    const bs = await this.blockSize();
    const len = blocks * bs;
    if (o.into && o.into.length < len) throw new RangeError(`buffer of ${o.into.length} bytes for ${len}`);
    const one = (at: bigint, n: number, into: Buffer | number) =>
      this.run({ cdb: rwCdb('read', o.cdb ?? 16, at, n, o.fua), dataIn: into, timeoutMs: o.timeoutMs }, (d) => d);
    const max = await this.maxTransferBlocks();
    if (!max || blocks <= max) return one(lba, blocks, o.into ? o.into.subarray(0, len) : len);
    // Longer than the device takes in one command: consecutive READs into one buffer. The first
    // one that does not complete is the answer (what came before it stays in the buffer).
    const out = o.into ? o.into.subarray(0, len) : Buffer.allocUnsafe(len);
    for (let done = 0; done < blocks;) {
      const n = Math.min(max, blocks - done);
      const r = await one(lba + BigInt(done), n, out.subarray(done * bs, (done + n) * bs));
      if (r.kind !== 'good') return r;
      if (r.value.length < n * bs) {
        const filled = done * bs + r.value.length;
        return { kind: 'good', value: out.subarray(0, filled), residual: { kind: 'underflow', count: len - filled } };
      }
      done += n;
    }
    return { kind: 'good', value: out, residual: { kind: 'none', count: 0 } };
  }

  /**
   * WRITE `data` (a whole number of blocks) at `lba`. Longer than the device's MAXIMUM TRANSFER
   * LENGTH, it goes as consecutive WRITEs, as for read(); the first one that does not complete is
   * the answer, and the blocks of the WRITEs before it are written (a host's block layer splits
   * the same way, and a failed split write is an error of the whole request).
   */
  async write(lba: bigint, data: Buffer, o: IoOptions = {}): Promise<ScsiResult<void>> {
    const bs = await this.blockSize();
    if (data.length % bs) throw new RangeError(`write of ${data.length} bytes is not a whole number of ${bs}-byte blocks`);
    const blocks = data.length / bs;
    const one = (at: bigint, part: Buffer) =>
      this.run({ cdb: rwCdb('write', o.cdb ?? 16, at, part.length / bs, o.fua), dataOut: part, timeoutMs: o.timeoutMs }, () => undefined);
    const max = await this.maxTransferBlocks();
    if (!max || blocks <= max) return one(lba, data);
    let r: ScsiResult<void> = { kind: 'good', value: undefined, residual: { kind: 'none', count: 0 } };
    for (let done = 0; done < blocks;) {
      const n = Math.min(max, blocks - done);
      r = await one(lba + BigInt(done), data.subarray(done * bs, (done + n) * bs));
      if (r.kind !== 'good') return r;
      done += n;
    }
    return r;
  }

  /**
   * COMPARE AND WRITE (SBC-4 §5.3, VAAI ATS): if the blocks at `lba` equal `compare`, write
   * `write`. A mismatch is CHECK CONDITION MISCOMPARE (0E/1D/00) with the offset in INFORMATION.
   */
  async compareAndWrite(lba: bigint, compare: Buffer, write: Buffer, o: { fua?: boolean; timeoutMs?: number } = {}): Promise<ScsiResult<void>> {
    const bs = await this.blockSize();
    if (compare.length !== write.length || compare.length % bs) throw new RangeError('compare and write buffers must be the same whole number of blocks');
    const data = Buffer.concat([compare, write]);
    return this.run({ cdb: C.compareAndWrite(lba, compare.length / bs, o.fua ? C.Flag.Fua : 0), dataOut: data, timeoutMs: o.timeoutMs }, () => undefined);
  }

  /** WRITE SAME(16) (SBC-4 §5.50): one block of `pattern` (omitted with NDOB) over `blocks` blocks. */
  async writeSame(lba: bigint, blocks: number, pattern: Buffer | null, o: WriteSameOptions = {}): Promise<ScsiResult<void>> {
    const flags = (o.unmap ? C.Flag.WriteSameUnmap : 0) | (o.anchor ? C.Flag.WriteSameAnchor : 0) | (o.ndob ? C.Flag.WriteSameNdob : 0);
    if (!o.ndob && !pattern) throw new RangeError('WRITE SAME needs a pattern block unless NDOB is set');
    return this.run({ cdb: C.lba16(C.Op.WriteSame16, lba, blocks, flags), ...(o.ndob ? {} : { dataOut: pattern! }), timeoutMs: o.timeoutMs }, () => undefined);
  }

  /** UNMAP (SBC-4 §5.32) of the given ranges. */
  unmap(ranges: readonly { lba: bigint; blocks: number }[], o: { timeoutMs?: number } = {}): Promise<ScsiResult<void>> {
    const p = C.unmapParameterList(ranges);
    return this.run({ cdb: C.unmap(p.length), dataOut: p, timeoutMs: o.timeoutMs }, () => undefined);
  }

  synchronizeCache(lba = 0n, blocks = 0): Promise<ScsiResult<void>> {
    return this.run({ cdb: C.lba16(C.Op.SynchronizeCache16, lba, blocks) }, () => undefined);
  }

  // ---- Third-party copy (SPC-4 §6.4, §6.18) --------------------------------------------------

  /** The LU's NAA designator (VPD 0x83), cached. */
  async naa(): Promise<Buffer> {
    if (!this.naaCache) {
      const r = await this.deviceIdentification();
      if (r.kind !== 'good' || !r.value.naa) throw new RangeError(`LUN ${this.lun} reports no NAA designator in VPD 0x83`);
    }
    return this.naaCache!;
  }

  /**
   * EXTENDED COPY(LID1), sent to this device (the copy manager): one Identification CSCD
   * descriptor per distinct device, from its NAA designator, and one block → block segment per
   * entry (split at 65535 blocks, the segment field's limit).
   */
  async extendedCopy(segments: readonly XcopySegment[], o: { listId?: number; hold?: boolean; timeoutMs?: number } = {}): Promise<ScsiResult<void>> {
    const devices: ScsiDevice[] = [];
    const index = (d: ScsiDevice): number => {
      let i = devices.indexOf(d);
      if (i < 0) i = devices.push(d) - 1;
      return i;
    };
    const segs: BlockToBlockFields[] = [];
    for (const s of segments) {
      const source = index(s.from);
      const destination = index(s.to);
      for (let done = 0; done < s.blocks; done += 0xffff) {
        const n = Math.min(0xffff, s.blocks - done);
        segs.push({ source, destination, blocks: n, sourceLba: s.sourceLba + BigInt(done), destinationLba: s.destinationLba + BigInt(done) });
      }
    }
    const cscds = [];
    for (const d of devices) {
      cscds.push({ codeSet: 1, association: Association.LogicalUnit, designatorType: DesignatorType.Naa, designator: await d.naa(), diskBlockLength: await d.blockSize() });
    }
    const list = encodeXcopyParameterList({
      listId: o.listId ?? 0, listIdUsage: o.hold ? ListIdUsage.Hold : o.listId ? ListIdUsage.NoHold : ListIdUsage.None, cscds, segments: segs,
    });
    return this.run({ cdb: C.extendedCopy(list.length), dataOut: list, timeoutMs: o.timeoutMs }, () => undefined);
  }

  receiveCopyStatus(listId: number): Promise<ScsiResult<CopyStatus>> {
    return this.run({ cdb: C.receiveCopyResults(RcrServiceAction.CopyStatus, listId, 1024), dataIn: 1024 }, decodeCopyStatus);
  }

  receiveCopyOperatingParameters(): Promise<ScsiResult<OperatingParameters>> {
    return this.run({ cdb: C.receiveCopyResults(RcrServiceAction.OperatingParameters, 0, 1024), dataIn: 1024 }, decodeOperatingParameters);
  }

  /** Any command, for what the typed methods do not cover; the status is judged as everywhere. */
  raw(req: Omit<ScsiRequest, 'lun'>): Promise<ScsiResult<Buffer>> {
    return this.run(req, (d) => d);
  }
}

function map<T, U>(r: ScsiResult<T>, f: (v: T) => U): ScsiResult<U> {
  return r.kind === 'good' ? { ...r, value: f(r.value) } : r;
}

function rwCdb(dir: 'read' | 'write', size: CdbSize, lba: bigint, blocks: number, fua?: boolean): Buffer {
  const f = fua ? C.Flag.Fua : 0;
  if (size === 6) {
    // READ/WRITE(6) have no FUA bit and reach only 21-bit LBAs and 256 blocks (SBC-4 §5.15).
    if (fua || lba > 0x1fffffn || blocks > 256 || blocks < 1) throw new RangeError('READ/WRITE(6) cannot express this transfer');
    return C.rw6(dir === 'read' ? C.Op.Read6 : C.Op.Write6, Number(lba), blocks);
  }
  if (size === 10) {
    if (lba > 0xffffffffn || blocks > 0xffff) throw new RangeError('READ/WRITE(10) cannot express this transfer');
    return C.rw10(dir === 'read' ? C.Op.Read10 : C.Op.Write10, Number(lba), blocks, f);
  }
  return C.lba16(dir === 'read' ? C.Op.Read16 : C.Op.Write16, lba, blocks, f);
}
