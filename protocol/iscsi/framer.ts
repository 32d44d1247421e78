/**
 * PDU framing as an explicit state machine over TCP chunks (STYLE.md habit 6). Knows nothing
 * of sockets or sessions: push(chunk) hands out each complete PDU as views into the chunk when
 * the PDU lies within it, and copies only what straddles chunk boundaries.
 *
 *   Bhs ──► AhsAndHeaderDigest ──► DataAndDataDigest ──► Bhs …
 *   (48 B)   (TotalAHSLength*4 + 4 if HeaderDigest)   (DSL + pad + 4 if DataDigest and DSL>0)
 *
 * A data segment longer than the negotiated MaxRecvDataSegmentLength is not buffered: the
 * framer skips it and reports 'oversize' with the header, so memory stays bounded.
 *
 * A caller that reuses its chunk buffers sets reusedChunks (everything handed out is then copied
 * out of the chunk), and can read large data segments straight into place with
 * directTarget()/pushDirect() instead of pushing chunks.
 */
import { crc32c } from './digest.ts';
import { BHS_LENGTH, dataSegmentLength, padLength } from './pdu.ts';

export const enum FramerState {
  Bhs,
  AhsAndHeaderDigest,
  DataAndDataDigest,
  SkipData,
}

export interface FramedPdu {
  bhs: Buffer;
  ahs: Buffer | null;
  /** Data segment without padding. */
  data: Buffer;
  /** false when DataDigest is on and the received digest does not match. */
  dataDigestOk: boolean;
}

export type FrameEvent =
  | { kind: 'pdu'; pdu: FramedPdu }
  | { kind: 'header-digest-error'; bhs: Buffer }
  | { kind: 'oversize'; bhs: Buffer; length: number };

export interface FramerOptions {
  headerDigest: boolean;
  dataDigest: boolean;
  /** Largest data segment accepted (our declared MaxRecvDataSegmentLength). */
  maxDataSegmentLength: number;
  /**
   * Where a data segment that straddles chunks is gathered (size = data + padding + digest).
   * Lets the transport hand out recycled buffers for payloads whose lifetime it controls;
   * default Buffer.allocUnsafe. Headers are never gathered through it.
   */
  allocData?: (size: number, bhs: Buffer) => Buffer;
  /**
   * The caller reuses its chunk buffers after push() returns: everything handed out (header, AHS,
   * data) is then copied out of the chunk, the data through allocData.
   */
  reusedChunks?: boolean;
}

export class Framer {
  state = FramerState.Bhs;
  private need = BHS_LENGTH;
  private acc: Buffer | null = null;
  private accFill = 0;
  private bhs: Buffer = Buffer.alloc(0);
  private ahs: Buffer | null = null;
  private dsl = 0;
  private skipLeft = 0;

  constructor(public opts: FramerOptions) {}

  /** True when no partial PDU is buffered. */
  get idle(): boolean {
    return this.state === FramerState.Bhs && this.acc === null;
  }

  push(chunk: Buffer, emit: (e: FrameEvent) => void): void {
    let off = 0;
    const len = chunk.length;
    while (off < len || (this.need === 0 && this.state !== FramerState.SkipData)) {
      if (this.state === FramerState.SkipData) {
        const n = Math.min(this.skipLeft, len - off);
        off += n;
        this.skipLeft -= n;
        if (this.skipLeft === 0) this.toBhs();
        continue;
      }
      let seg: Buffer;
      if (this.acc !== null) {
        const n = Math.min(this.need - this.accFill, len - off);
        chunk.copy(this.acc, this.accFill, off, off + n);
        this.accFill += n;
        off += n;
        if (this.accFill < this.need) return;
        seg = this.acc;
        this.acc = null;
      } else if (len - off >= this.need) {
        seg = chunk.subarray(off, off + this.need);
        off += this.need;
        if (this.opts.reusedChunks && seg.length > 0) {
          const own = this.allocSegment();
          seg.copy(own);
          seg = own;
        }
      } else {
        this.acc = this.allocSegment();
        this.accFill = len - off;
        chunk.copy(this.acc, 0, off, len);
        return;
      }
      this.step(seg, emit);
    }
  }

  private allocSegment(): Buffer {
    const alloc = this.state === FramerState.DataAndDataDigest ? this.opts.allocData : undefined;
    return alloc ? alloc(this.need, this.bhs) : Buffer.allocUnsafe(this.need);
  }

  /**
   * Zero-copy receive: when a data segment of at least `min` bytes is being gathered, the part of
   * its buffer still to fill, for the caller to read the socket straight into (then pushDirect);
   * else null. SPDK reads payloads the same way, header first, data into its final buffer.
   */
  directTarget(min: number): Buffer | null {
    // A small segment that straddled the last chunk is finished from the next chunk (push), not
    // by a read of its remainder alone: at QD32 with 4 KiB writes every 64 KiB read ends inside
    // one, and that read (plus the header-only read after it) cost two more syscalls and
    // callbacks per chunk, and at a replicating primary one more link frame and peer wake-up.
    if (this.state !== FramerState.DataAndDataDigest || this.need < min) return null;
    if (this.acc === null) {
      this.acc = this.allocSegment();
      this.accFill = 0;
    }
    return this.acc.subarray(this.accFill, this.need);
  }

  /** `n` bytes were read into the buffer directTarget() returned. */
  pushDirect(n: number, emit: (e: FrameEvent) => void): void {
    this.accFill += n;
    if (this.accFill < this.need) return;
    const seg = this.acc!;
    this.acc = null;
    this.step(seg, emit);
  }

  private step(seg: Buffer, emit: (e: FrameEvent) => void): void {
    switch (this.state) {
      case FramerState.Bhs: {
        this.bhs = seg;
        this.ahs = null;
        this.dsl = dataSegmentLength(seg);
        const ahsLen = seg[4] * 4;
        this.state = FramerState.AhsAndHeaderDigest;
        this.need = ahsLen + (this.opts.headerDigest ? 4 : 0);
        return;
      }
      case FramerState.AhsAndHeaderDigest: {
        const ahsLen = this.bhs[4] * 4;
        if (ahsLen > 0) this.ahs = seg.subarray(0, ahsLen);
        if (this.opts.headerDigest) {
          let c = crc32c(this.bhs);
          if (ahsLen > 0) c = crc32c(seg.subarray(0, ahsLen), c);
          if (seg.readUInt32LE(ahsLen) !== c) {
            // RFC 7143 §7.8: the header cannot be trusted, so neither can its lengths.
            emit({ kind: 'header-digest-error', bhs: this.bhs });
            this.toBhs();
            return;
          }
        }
        if (this.dsl > this.opts.maxDataSegmentLength) {
          const skip = this.dsl + padLength(this.dsl) + (this.opts.dataDigest && this.dsl > 0 ? 4 : 0);
          emit({ kind: 'oversize', bhs: this.bhs, length: this.dsl });
          this.state = FramerState.SkipData;
          this.skipLeft = skip;
          this.need = 0;
          if (skip === 0) this.toBhs();
          return;
        }
        this.state = FramerState.DataAndDataDigest;
        this.need = this.dsl === 0 ? 0 : this.dsl + padLength(this.dsl) + (this.opts.dataDigest ? 4 : 0);
        return;
      }
      case FramerState.DataAndDataDigest: {
        const data = this.dsl === 0 ? EMPTY : seg.subarray(0, this.dsl);
        let ok = true;
        if (this.dsl > 0 && this.opts.dataDigest) {
          const padded = this.dsl + padLength(this.dsl);
          ok = seg.readUInt32LE(padded) === crc32c(seg.subarray(0, padded));
        }
        const pdu: FramedPdu = { bhs: this.bhs, ahs: this.ahs, data, dataDigestOk: ok };
        this.toBhs();
        emit({ kind: 'pdu', pdu });
        return;
      }
      case FramerState.SkipData:
        return;
    }
  }

  private toBhs(): void {
    this.state = FramerState.Bhs;
    this.need = BHS_LENGTH;
  }
}

const EMPTY = Buffer.alloc(0);
