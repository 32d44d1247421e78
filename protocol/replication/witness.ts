/**
 * The quorum witness protocol between an array and the witness (README "Peer replication",
 * "Quorum witness"): pure wire code, no sockets, no state.
 *
 * Each array sends a heartbeat every few hundred ms naming every Remote Copy group it holds and
 * how it sees it (role, SyncStatus, replication link up?, failover requested?); the witness
 * answers each heartbeat with a verdict per group: which array owns the group (may write to it
 * when the pair is not in sync), the group's epoch, what the witness last heard from the other
 * array, and what it recorded of this one. A failover grant is a verdict naming the requester as
 * owner with a new epoch.
 *
 * Every message is a 16-byte header and a payload:
 *
 *   0  magic    u32 BE  0x41525754 ("ARWT")
 *   4  version  u8      WITNESS_VERSION
 *   5  type     u8      WitnessType
 *   6  flags    u16 BE  reserved, 0
 *   8  length   u32 BE  payload bytes (≤ MAX_WITNESS_PAYLOAD)
 *   12 crc      u32     CRC32C of header bytes 0..11 and the payload (LSB first, as iSCSI digests)
 *
 * Payload integers are big-endian; strings are u16 length + UTF-8.
 *
 * A heartbeat may end with a list of groups to forget (u16 count + names): groups this array
 * removed from both arrays (removegroup), whose record the witness may drop. The list is written
 * only when it is not empty, so a heartbeat without it is byte for byte what it was before.
 */
import { crc32c, readDigest } from '../iscsi/digest.ts';
import { GROUP_SYNC_STATUS } from './link.ts';
import type { GroupSyncStatus, LinkRole } from './link.ts';

export const WITNESS_MAGIC = 0x41525754;
export const WITNESS_VERSION = 1;
export const WITNESS_HEADER_LENGTH = 16;
/** A heartbeat of a few hundred groups fits easily; anything larger is not a witness message. */
export const MAX_WITNESS_PAYLOAD = 64 * 1024;

export const enum WitnessType { Heartbeat = 1, Verdict = 2, Error = 3 }

/** One group as an array reports it. */
export interface GroupReport {
  group: string;
  role: LinkRole;
  status: GroupSyncStatus;
  /** The replication link to the peer is up (this array's view). */
  link: boolean;
  /** The array was Synced when it last lost the link: it holds every acknowledged write. */
  syncedAtLoss: boolean;
  /** The secondary asks to become primary (auto_failover, or the operator's `failover`). */
  failover: boolean;
  /** The group epoch this array knows (raised by every failover and planned role swap). */
  epoch: number;
}

/** What the witness last heard from an array about a group. */
export type PeerSight = 'unknown' | 'alive' | 'lost';

/** One group as the witness answers it. */
export interface GroupVerdict {
  group: string;
  /** The array allowed to write to the group when the pair is not in sync ('' before any primary reported). */
  owner: string;
  epoch: number;
  /** The other array of the group, as the witness knows it ('' if it never heard of one). */
  peer: string;
  peerSight: PeerSight;
  /** The other array's last report said its replication link was up. */
  peerLink: boolean;
  /** What the witness recorded of this array's report (the owner may write alone only once it has recorded a status other than Synced). */
  recorded: GroupSyncStatus;
  /** This heartbeat's failover request was granted: this array is now the owner. */
  granted: boolean;
}

export type WitnessMessage =
  | { type: 'heartbeat'; array: string; nonce: bigint; groups: GroupReport[]; forget?: string[] }
  | { type: 'verdict'; nonce: bigint; witness: string; groups: GroupVerdict[] }
  | { type: 'error'; message: string };

const SIGHT: readonly PeerSight[] = ['unknown', 'alive', 'lost'];

export class WitnessProtocolError extends Error {
  constructor(readonly code: 'bad-magic' | 'bad-version' | 'bad-crc' | 'oversize' | 'unknown-type' | 'bad-payload', message: string) {
    super(message);
  }
}

// ---------------------------------------------------------------- encoding

class Out {
  private b = Buffer.allocUnsafe(256);
  n = WITNESS_HEADER_LENGTH;
  private room(k: number): void {
    if (this.n + k <= this.b.length) return;
    const x = Buffer.allocUnsafe(Math.max(this.b.length * 2, this.n + k));
    this.b.copy(x, 0, 0, this.n);
    this.b = x;
  }
  u8(v: number): this { this.room(1); this.b[this.n++] = v; return this; }
  u16(v: number): this { this.room(2); this.b.writeUInt16BE(v, this.n); this.n += 2; return this; }
  u32(v: number): this { this.room(4); this.b.writeUInt32BE(v >>> 0, this.n); this.n += 4; return this; }
  u64(v: bigint): this { this.room(8); this.b.writeBigUInt64BE(v, this.n); this.n += 8; return this; }
  str(s: string): this {
    const x = Buffer.from(s, 'utf8');
    if (x.length > 0xffff) throw new RangeError('string too long');
    this.u16(x.length); this.room(x.length); x.copy(this.b, this.n); this.n += x.length; return this;
  }
  done(type: WitnessType): Buffer {
    const len = this.n - WITNESS_HEADER_LENGTH;
    if (len > MAX_WITNESS_PAYLOAD) throw new RangeError(`witness payload of ${len} bytes is over ${MAX_WITNESS_PAYLOAD}`);
    const b = this.b.subarray(0, this.n);
    b.writeUInt32BE(WITNESS_MAGIC, 0);
    b[4] = WITNESS_VERSION;
    b[5] = type;
    b.writeUInt16BE(0, 6);
    b.writeUInt32BE(len, 8);
    b.writeUInt32LE(crc32c(b.subarray(WITNESS_HEADER_LENGTH), crc32c(b.subarray(0, 12))), 12);
    return b;
  }
}

/** Encode one message as one buffer (witness messages are small; one write each). */
export function encodeWitness(m: WitnessMessage): Buffer {
  const o = new Out();
  switch (m.type) {
    case 'heartbeat':
      o.str(m.array).u64(m.nonce).u16(m.groups.length);
      for (const g of m.groups) {
        const flags = (g.link ? 1 : 0) | (g.syncedAtLoss ? 2 : 0) | (g.failover ? 4 : 0);
        o.str(g.group).u8(g.role === 'primary' ? 1 : 2).u8(GROUP_SYNC_STATUS.indexOf(g.status)).u8(flags).u32(g.epoch);
      }
      if (m.forget?.length) {
        o.u16(m.forget.length);
        for (const f of m.forget) o.str(f);
      }
      return o.done(WitnessType.Heartbeat);
    case 'verdict':
      o.u64(m.nonce).str(m.witness).u16(m.groups.length);
      for (const g of m.groups) {
        const flags = (g.peerLink ? 1 : 0) | (g.granted ? 2 : 0);
        o.str(g.group).str(g.owner).u32(g.epoch).str(g.peer).u8(SIGHT.indexOf(g.peerSight)).u8(GROUP_SYNC_STATUS.indexOf(g.recorded)).u8(flags);
      }
      return o.done(WitnessType.Verdict);
    case 'error':
      o.str(m.message);
      return o.done(WitnessType.Error);
  }
}

// ---------------------------------------------------------------- decoding

class In {
  o = 0;
  constructor(readonly b: Buffer) {}
  need(k: number): void { if (this.o + k > this.b.length) throw new WitnessProtocolError('bad-payload', `payload ends at ${this.b.length}, field needs ${this.o + k}`); }
  u8(): number { this.need(1); return this.b[this.o++]; }
  u16(): number { this.need(2); const v = this.b.readUInt16BE(this.o); this.o += 2; return v; }
  u32(): number { this.need(4); const v = this.b.readUInt32BE(this.o); this.o += 4; return v; }
  u64(): bigint { this.need(8); const v = this.b.readBigUInt64BE(this.o); this.o += 8; return v; }
  str(): string { const n = this.u16(); this.need(n); const s = this.b.toString('utf8', this.o, this.o + n); this.o += n; return s; }
  status(): GroupSyncStatus { const k = this.u8(); if (k >= GROUP_SYNC_STATUS.length) throw new WitnessProtocolError('bad-payload', `sync status ${k}`); return GROUP_SYNC_STATUS[k]; }
  flags(mask: number): number { const f = this.u8(); if (f & ~mask) throw new WitnessProtocolError('bad-payload', `flag bits 0x${f.toString(16)}`); return f; }
  end(): void { if (this.o !== this.b.length) throw new WitnessProtocolError('bad-payload', `${this.b.length - this.o} bytes after the last field`); }
}

/** Decode a payload of `type` (already CRC-checked). */
export function decodeWitnessPayload(type: number, p: Buffer): WitnessMessage {
  const i = new In(p);
  let m: WitnessMessage;
  switch (type) {
    case WitnessType.Heartbeat: {
      const array = i.str(); const nonce = i.u64(); const n = i.u16();
      const groups: GroupReport[] = [];
      for (let k = 0; k < n; k++) {
        const group = i.str(); const r = i.u8();
        if (r !== 1 && r !== 2) throw new WitnessProtocolError('bad-payload', `role ${r}`);
        const status = i.status(); const f = i.flags(7); const epoch = i.u32();
        groups.push({ group, role: r === 1 ? 'primary' : 'secondary', status, link: !!(f & 1), syncedAtLoss: !!(f & 2), failover: !!(f & 4), epoch });
      }
      m = { type: 'heartbeat', array, nonce, groups };
      if (i.o < p.length) {
        const k = i.u16();
        if (k === 0) throw new WitnessProtocolError('bad-payload', 'an empty list of groups to forget (it is left out instead)');
        const forget: string[] = [];
        for (let f = 0; f < k; f++) forget.push(i.str());
        m.forget = forget;
      }
      break;
    }
    case WitnessType.Verdict: {
      const nonce = i.u64(); const witness = i.str(); const n = i.u16();
      const groups: GroupVerdict[] = [];
      for (let k = 0; k < n; k++) {
        const group = i.str(); const owner = i.str(); const epoch = i.u32(); const peer = i.str(); const s = i.u8();
        if (s >= SIGHT.length) throw new WitnessProtocolError('bad-payload', `peer sight ${s}`);
        const recorded = i.status(); const f = i.flags(3);
        groups.push({ group, owner, epoch, peer, peerSight: SIGHT[s], recorded, peerLink: !!(f & 1), granted: !!(f & 2) });
      }
      m = { type: 'verdict', nonce, witness, groups };
      break;
    }
    case WitnessType.Error:
      m = { type: 'error', message: i.str() };
      break;
    default:
      throw new WitnessProtocolError('unknown-type', `witness message type ${type}`);
  }
  i.end();
  return m;
}

// ---------------------------------------------------------------- framing

export type WitnessFrameEvent = { kind: 'message'; message: WitnessMessage } | { kind: 'error'; error: WitnessProtocolError };

/**
 * Framer over TCP chunks: header, then payload; the length is bounded before it is trusted, the
 * CRC covers both. After an error it stays failed (the caller closes the connection).
 */
export class WitnessFramer {
  private acc = Buffer.alloc(0);
  private failed = false;

  push(chunk: Buffer, emit: (e: WitnessFrameEvent) => void): void {
    if (this.failed) return;
    let buf = this.acc.length ? Buffer.concat([this.acc, chunk]) : chunk;
    try {
      while (buf.length >= WITNESS_HEADER_LENGTH) {
        if (buf.readUInt32BE(0) !== WITNESS_MAGIC) throw new WitnessProtocolError('bad-magic', `bad magic 0x${buf.readUInt32BE(0).toString(16)}`);
        if (buf[4] !== WITNESS_VERSION) throw new WitnessProtocolError('bad-version', `witness protocol version ${buf[4]} (this side speaks ${WITNESS_VERSION})`);
        const len = buf.readUInt32BE(8);
        if (len > MAX_WITNESS_PAYLOAD) throw new WitnessProtocolError('oversize', `payload of ${len} bytes is over ${MAX_WITNESS_PAYLOAD}`);
        if (buf.length < WITNESS_HEADER_LENGTH + len) break;
        const payload = buf.subarray(WITNESS_HEADER_LENGTH, WITNESS_HEADER_LENGTH + len);
        if (readDigest(buf, 12) !== crc32c(payload, crc32c(buf.subarray(0, 12)))) throw new WitnessProtocolError('bad-crc', 'witness message CRC32C mismatch');
        const message = decodeWitnessPayload(buf[5], payload);
        buf = buf.subarray(WITNESS_HEADER_LENGTH + len);
        emit({ kind: 'message', message });
      }
      this.acc = Buffer.from(buf);
    } catch (e) {
      if (!(e instanceof WitnessProtocolError)) throw e;
      this.failed = true;
      this.acc = Buffer.alloc(0);
      emit({ kind: 'error', error: e });
    }
  }
}
