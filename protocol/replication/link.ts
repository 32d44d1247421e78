/**
 * The Remote Copy link protocol between two arrays: pure wire code (no sockets, no state).
 *
 * Every message is a 24-byte header and a payload:
 *
 *   0  magic    u32 BE  0x41525243 ("ARRC")
 *   4  version  u8      LINK_VERSION (6: the DATA_UNCHECKED flag and the acks message; 5: the pr-state's SPC-2 RESERVE holder and LOGICAL UNIT RESET flag, and pr-out
 *                       carrying RESERVE/RELEASE or (no CDB) a LOGICAL UNIT RESET; 4: persistent reservations (pr-out,
 *                       pr-out-result, pr-state) and the hello's relative target ports; 3 the restart flags; 2 the
 *                       group epoch only; 1 neither)
 *   5  type     u8      MessageType
 *   6  flags    u16 BE  bit 0 DATA_UNCHECKED (writes only): dataCrc covers the write's fields, not
 *                       its data (the sender's peers.dataIntegrity, README "Link data integrity");
 *                       the other bits are 0
 *   8  length   u32 BE  payload bytes (≤ MAX_PAYLOAD)
 *   12 sequence u32 BE  link sequence number of this message, +1 per message in each direction
 *   16 dataCrc  u32     CRC32C of the payload (RFC 7143 §13.1 polynomial, LSB first as iSCSI digests)
 *   20 hdrCrc   u32     CRC32C of bytes 0..19: a damaged length is caught before it is trusted
 *
 * Payload integers are big-endian; strings are u16 length + UTF-8; a WWN is the 8-byte NAA
 * designator body (16 hex digits). Why a protocol of its own rather than iSCSI: README
 * "Peer replication".
 */
import { crc32c, crc32cRange, readDigest } from '../iscsi/digest.ts';

export const LINK_MAGIC = 0x41525243;
export const LINK_VERSION = 6;
/** Header flag: a write whose dataCrc covers its fields only (its data is left to TCP's checksum, as DRBD does without data-integrity-alg). */
export const FLAG_DATA_UNCHECKED = 0x0001;
export const HEADER_LENGTH = 24;
/** Largest payload accepted: a 16 MiB write plus its fields (a COMPARE AND WRITE carries 2 × 255 blocks). */
export const MAX_PAYLOAD = 16 * 1024 * 1024 + 64;

export const enum MessageType {
  Hello = 1,
  Write = 2,
  WriteSame = 3,
  Unmap = 4,
  Ack = 5,
  CompareAndWrite = 6,
  CompareAndWriteResult = 7,
  Heartbeat = 8,
  Error = 9,
  GroupState = 10,
  RoleSwap = 11,
  PrOut = 12,
  PrOutResult = 13,
  PrState = 14,
  GroupAdmin = 15,
  GroupAdminResult = 16,
  Acks = 17,
}

/** One replicated volume as the handshake describes it: both sides must agree on all of it. */
export interface VolumeGeometry {
  /** NAA designator body, 16 hex digits (the same WWN on both arrays). */
  wwn: string;
  serial: string;
  blockSize: number;
  blockCount: bigint;
}

/**
 * Persistent reservation state of one volume as the link carries it (SPC-5 §5.14): what the
 * primary's registry holds after a PERSISTENT RESERVE OUT, shipped whole (a few registrations, so
 * a snapshot is smaller than any diff and cannot drift). A registration belongs to an I_T nexus;
 * null isid or targetPortName is a wildcard (TransportID format 00b, ALL_TG_PT=1).
 */
export interface PrRegistrationWire { key: bigint; initiatorName: string; isid: string | null; targetPortName: string | null; relativeTargetPortId: number }
/** A unit attention the PR OUT raised (SPC-5 §5.14.11): for the I_T nexuses `regs` match, except `except` (a nexus key). */
export interface PrNoticeWire { reason: string; except: string; regs: { initiatorName: string; isid: string | null; targetPortName: string | null }[] }
export interface PrStateWire {
  generation: number;
  aptpl: boolean;
  registrations: PrRegistrationWire[];
  /** holder: index into registrations. */
  reservation: { holder: number; type: number } | null;
  notices: PrNoticeWire[];
  /** PREEMPT AND ABORT: the preempted I_T nexuses whose tasks are aborted on both arrays (SPC-5 §5.14.11.5), except `except`. */
  abort: { except: string; regs: PrNoticeWire['regs'] } | null;
  /** The SPC-2 RESERVE(6)/(10) holder (SPC-2 §5.5.1): an I_T nexus key (initiator port|target port), or null. */
  legacyHolder: string | null;
  /**
   * A LOGICAL UNIT RESET ran (SAM-5 §6.6): the receiver aborts the volume's tasks of every I_T nexus
   * and gives each of them the unit attention BUS DEVICE RESET FUNCTION OCCURRED (29/03).
   */
  reset: boolean;
}

/** The I_T nexus a forwarded PERSISTENT RESERVE OUT came in on (relative target port id = tpgt, as session.ts assigns it). */
export interface LinkNexus { initiatorName: string; isid: string; targetName: string; tpgt: number; targetPortGroup: number }

/** Role of the sender in the group (HPE: Primary / Secondary; -Rev after a failover). */
export type LinkRole = 'primary' | 'secondary';

/**
 * `forwarded` on Write/WriteSame/Unmap: a host write that arrived at the secondary, sent to the
 * primary to be ordered (seq is then the secondary's request id, answered by an Ack with
 * forwarded set). Not forwarded: the primary replicating a write it has ordered (seq is the
 * group sequence number; the secondary applies in that order and acks it).
 */
export type LinkMessage =
  /**
   * `epoch`: the group epoch the sender knows (raised by every failover and role swap); of two arrays that both claim the primary role, the lower epoch yields.
   * `restarted`: the sender's process started and has not been resynchronised with the peer since, so it has no record of
   * what differs (its dirty map was in memory). `volatile`: its volumes do not survive a restart (memory stores), so a
   * restarted sender lost the data it had. `empty`: restarted on memory stores and nothing written since, so its volumes
   * hold nothing at all. Wire: one flags byte after the epoch, bit 0 restarted, bit 1 volatile, bit 2 empty.
   * `ports`: the relative target port identifiers of the sender's ports for the group's volumes
   * (u16 count, u16 each): both arrays' must differ, or READ FULL STATUS could not tell them apart.
   */
  | { type: 'hello'; arrayId: string; group: string; role: LinkRole; volumes: VolumeGeometry[]; epoch: number; restarted: boolean; volatile: boolean; empty: boolean; ports: number[] }
  | { type: 'write'; forwarded: boolean; seq: bigint; volume: number; lba: bigint; fua: boolean; data: Buffer }
  | { type: 'write-same'; forwarded: boolean; seq: bigint; volume: number; lba: bigint; blocks: number; unmap: boolean; block: Buffer }
  | { type: 'unmap'; forwarded: boolean; seq: bigint; volume: number; ranges: { lba: bigint; blocks: number }[] }
  | { type: 'ack'; forwarded: boolean; seq: bigint; status: AckStatus }
  /**
   * A cumulative ack from the secondary: the replicated writes of group sequence numbers
   * first..last (a run, first < last) are all applied, in that order (the secondary applies in
   * sequence order, and any write it could not apply gets an ack of its own, ending the run
   * before it). One frame for the acks of a whole read's writes instead of one per write.
   */
  | { type: 'acks'; first: bigint; last: bigint }
  | { type: 'compare-and-write'; id: bigint; volume: number; lba: bigint; blocks: number; fua: boolean; verify: Buffer; data: Buffer }
  /** `retry`: not run, a PR state was on its way to the secondary (see ACK_STATUS pr-changed); the host gets ABORTED COMMAND. */
  | { type: 'compare-and-write-result'; id: bigint; outcome: 'written' | 'miscompare' | 'failed' | 'retry'; offset: number }
  | { type: 'heartbeat'; nonce: bigint; reply: boolean }
  | { type: 'error'; code: LinkErrorCode; message: string }
  /** The primary tells the secondary the group's sync status (HPE showrcopy SyncStatus words). */
  | { type: 'group-state'; state: GroupSyncStatus; reason: string }
  /**
   * The primary hands the primary role to the secondary (restore, reverse), in sync and with
   * nothing in flight: the sender is already secondary when it sends this. `reverse`: the new
   * roles become the natural ones (HPE setrcopygroup reverse); otherwise the natural roles are
   * back (restore).
   */
  | { type: 'role-swap'; epoch: number; reverse: boolean; reason: string }
  /**
   * A reservation command that arrived at the secondary, sent to the primary to execute: PERSISTENT
   * RESERVE OUT, RESERVE(6)/(10) or RELEASE(6)/(10), CDB and parameter list as received; an empty
   * CDB is the LOGICAL UNIT RESET task management function (SAM-5 §7.7), which has none.
   */
  | { type: 'pr-out'; id: bigint; volume: number; nexus: LinkNexus; cdb: Buffer; data: Buffer }
  /** Its outcome: SCSI status, and for CHECK CONDITION the sense reason (SenseReason name) and field pointer. */
  | { type: 'pr-out-result'; id: bigint; status: number; reason: string; fieldPointer: { inCdb: boolean; byte: number; bit?: number } | null }
  /** The volume's PR state after a PR OUT, ordered by group sequence number with the writes (acked like one). */
  | { type: 'pr-state'; seq: bigint; volume: number; state: PrStateWire }
  /**
   * Group definition from the array an operator runs creategroup, admitvv or setgroup on, sent on
   * a connection of its own (not a group's link) to the other array's link listener, which
   * answers with a group-admin-result and closes. `request` is JSON of a runtime-groups.ts
   * GroupAdminRequest: these are a few per group's life, and JSON keeps the verbs' fields in one
   * place. Added without a version change: an array of link version 4 without them answers
   * unknown-type (a protocol error), which the sender reports.
   */
  | { type: 'group-admin'; request: string }
  | { type: 'group-admin-result'; ok: boolean; reply: string };

/** The SyncStatus a group can be in on the link (HPE showrcopy: Synced, Syncing, Stopped; Failsafe). */
export const GROUP_SYNC_STATUS = ['Stopped', 'Syncing', 'Synced', 'Failsafe'] as const;
export type GroupSyncStatus = typeof GROUP_SYNC_STATUS[number];

export type LinkMessageType = LinkMessage['type'];

/**
 * Ack status: ok, or why the receiver could not apply (the sender then stops the group).
 * `pr-changed` (forwarded writes only): the primary has sent a PR state the secondary had not
 * acknowledged when it forwarded the write, so the secondary's reservation gate may have judged it
 * by the old state; the secondary answers its host ABORTED COMMAND, and the retry is gated anew.
 */
export const ACK_STATUS = { ok: 0, 'not-applied': 1, 'out-of-order': 2, 'no-such-volume': 3, 'not-primary': 4, 'pr-changed': 5 } as const;
export type AckStatus = keyof typeof ACK_STATUS;
const ACK_BY_CODE = Object.fromEntries(Object.entries(ACK_STATUS).map(([k, v]) => [v, k])) as Record<number, AckStatus>;

export const LINK_ERROR_CODES = { protocol: 1, 'geometry-mismatch': 2, 'role-conflict': 3, 'unknown-group': 4, 'bad-sequence': 5 } as const;
export type LinkErrorCode = keyof typeof LINK_ERROR_CODES;
const ERROR_BY_CODE = Object.fromEntries(Object.entries(LINK_ERROR_CODES).map(([k, v]) => [v, k])) as Record<number, LinkErrorCode>;

const TYPE_CODE: Record<LinkMessageType, MessageType> = {
  hello: MessageType.Hello, write: MessageType.Write, 'write-same': MessageType.WriteSame, unmap: MessageType.Unmap,
  ack: MessageType.Ack, 'compare-and-write': MessageType.CompareAndWrite, 'compare-and-write-result': MessageType.CompareAndWriteResult,
  heartbeat: MessageType.Heartbeat, error: MessageType.Error, 'group-state': MessageType.GroupState, 'role-swap': MessageType.RoleSwap,
  'pr-out': MessageType.PrOut, 'pr-out-result': MessageType.PrOutResult, 'pr-state': MessageType.PrState,
  'group-admin': MessageType.GroupAdmin, 'group-admin-result': MessageType.GroupAdminResult, acks: MessageType.Acks,
};
const OUTCOME = ['written', 'miscompare', 'failed', 'retry'] as const;

/** A malformed message: the link is dropped (the receiver cannot resynchronise on a byte stream). */
export class LinkProtocolError extends Error {
  constructor(readonly code: 'bad-magic' | 'bad-version' | 'bad-header-crc' | 'bad-flags' | 'bad-data-crc' | 'oversize' | 'unknown-type' | 'bad-payload', message: string) {
    super(message);
  }
}

// ---------------------------------------------------------------- encoding

/**
 * A growable writer of a message: the header's 24 bytes are reserved at the front of the first
 * part and filled in last (encodeMessage), the payload fields follow them in the same buffer, and
 * the data buffers of writes stay parts of their own (no copy). A replicated write is then two
 * iovecs, [header + fields, data], and an ack one.
 */
class Out {
  parts: Buffer[] = [];
  private cur: Buffer | null = Buffer.allocUnsafe(64);
  private n = HEADER_LENGTH;
  private room(k: number): Buffer {
    const c = this.cur ?? (this.cur = Buffer.allocUnsafe(Math.max(64, k)));
    if (this.n + k <= c.length) return c;
    const b = Buffer.allocUnsafe(Math.max(c.length * 2, this.n + k));
    c.copy(b, 0, 0, this.n);
    return (this.cur = b);
  }
  u8(v: number): this { this.room(1)[this.n++] = v; return this; }
  u16(v: number): this { this.room(2).writeUInt16BE(v, this.n); this.n += 2; return this; }
  u32(v: number): this { this.room(4).writeUInt32BE(v >>> 0, this.n); this.n += 4; return this; }
  u64(v: bigint): this { this.room(8).writeBigUInt64BE(v, this.n); this.n += 8; return this; }
  str(s: string): this { const b = Buffer.from(s, 'utf8'); if (b.length > 0xffff) throw new RangeError('string too long'); this.u16(b.length); b.copy(this.room(b.length), this.n); this.n += b.length; return this; }
  /** A string that may be absent: u8 0, or u8 1 and the string. */
  ostr(s: string | null): this { return s === null ? this.u8(0) : this.u8(1).str(s); }
  wwn(hex: string): this {
    if (!/^[0-9a-fA-F]{16}$/.test(hex)) throw new RangeError(`WWN must be 16 hex digits, not "${hex}"`);
    Buffer.from(hex, 'hex').copy(this.room(8), this.n); this.n += 8; return this;
  }
  /** Append a buffer as its own part (the fields so far become one part before it). */
  raw(b: Buffer): this { this.flush(); if (b.length) this.parts.push(b); return this; }
  flush(): void { if (this.cur && this.n) { this.parts.push(this.cur.subarray(0, this.n)); this.cur = null; this.n = 0; } }
}

function payloadOf(m: LinkMessage): Buffer[] {
  const o = new Out();
  switch (m.type) {
    case 'hello':
      o.str(m.arrayId).str(m.group).u8(m.role === 'primary' ? 1 : 2).u16(m.volumes.length);
      for (const v of m.volumes) o.wwn(v.wwn).str(v.serial).u32(v.blockSize).u64(v.blockCount);
      o.u32(m.epoch).u8((m.restarted ? 1 : 0) | (m.volatile ? 2 : 0) | (m.empty ? 4 : 0));
      o.u16(m.ports.length);
      for (const p of m.ports) o.u16(p);
      break;
    case 'write':
      o.u8(m.forwarded ? 1 : 0).u64(m.seq).u16(m.volume).u8(m.fua ? 1 : 0).u64(m.lba).raw(m.data);
      break;
    case 'write-same':
      o.u8(m.forwarded ? 1 : 0).u64(m.seq).u16(m.volume).u8(m.unmap ? 1 : 0).u64(m.lba).u32(m.blocks).raw(m.block);
      break;
    case 'unmap':
      o.u8(m.forwarded ? 1 : 0).u64(m.seq).u16(m.volume).u16(m.ranges.length);
      for (const r of m.ranges) o.u64(r.lba).u32(r.blocks);
      break;
    case 'ack':
      o.u8(m.forwarded ? 1 : 0).u64(m.seq).u8(ACK_STATUS[m.status]);
      break;
    case 'acks':
      if (m.last <= m.first) throw new RangeError('an acks run has first < last (a single ack is an ack)');
      o.u64(m.first).u64(m.last);
      break;
    case 'compare-and-write':
      if (m.verify.length !== m.data.length) throw new RangeError('verify and write instances differ in length');
      o.u64(m.id).u16(m.volume).u8(m.fua ? 1 : 0).u64(m.lba).u32(m.blocks).raw(m.verify).raw(m.data);
      break;
    case 'compare-and-write-result':
      o.u64(m.id).u8(OUTCOME.indexOf(m.outcome)).u32(m.offset);
      break;
    case 'heartbeat':
      o.u64(m.nonce).u8(m.reply ? 1 : 0);
      break;
    case 'error':
      o.u16(LINK_ERROR_CODES[m.code]).str(m.message);
      break;
    case 'group-state':
      o.u8(GROUP_SYNC_STATUS.indexOf(m.state)).str(m.reason);
      break;
    case 'role-swap':
      o.u32(m.epoch).u8(m.reverse ? 1 : 0).str(m.reason);
      break;
    case 'pr-out': {
      const n = m.nexus;
      if (m.cdb.length > 0xff) throw new RangeError('CDB too long');
      o.u64(m.id).u16(m.volume).str(n.initiatorName).str(n.isid).str(n.targetName).u16(n.tpgt).u16(n.targetPortGroup).u8(m.cdb.length).raw(m.cdb).raw(m.data);
      break;
    }
    case 'pr-out-result': {
      const f = m.fieldPointer;
      o.u64(m.id).u8(m.status).str(m.reason);
      if (!f) o.u8(0).u16(0).u8(0);
      else o.u8(1 | (f.inCdb ? 2 : 0) | (f.bit !== undefined ? 4 : 0)).u16(f.byte).u8(f.bit ?? 0);
      break;
    }
    case 'pr-state': {
      const st = m.state;
      o.u64(m.seq).u16(m.volume).u32(st.generation).u8((st.aptpl ? 1 : 0) | (st.reservation ? 2 : 0) | (st.abort ? 4 : 0) | (st.legacyHolder !== null ? 8 : 0) | (st.reset ? 16 : 0));
      if (st.reservation) o.u16(st.reservation.holder).u8(st.reservation.type);
      o.u16(st.registrations.length);
      for (const r of st.registrations) o.u64(r.key).str(r.initiatorName).ostr(r.isid).ostr(r.targetPortName).u16(r.relativeTargetPortId);
      const regs = (rs: PrNoticeWire['regs']) => { o.u16(rs.length); for (const r of rs) o.str(r.initiatorName).ostr(r.isid).ostr(r.targetPortName); };
      o.u16(st.notices.length);
      for (const x of st.notices) { o.str(x.reason).str(x.except); regs(x.regs); }
      if (st.abort) { o.str(st.abort.except); regs(st.abort.regs); }
      if (st.legacyHolder !== null) o.str(st.legacyHolder);
      break;
    }
    case 'group-admin':
      o.str(m.request);
      break;
    case 'group-admin-result':
      o.u8(m.ok ? 1 : 0).str(m.reply);
      break;
  }
  o.flush();
  return o.parts;
}

/**
 * Encode one message as [header + payload fields, ...data parts], ready for a corked writev: a
 * write's data is not copied. `sequence` is the link sequence number the sender assigns.
 * `checkData` false: a write's data is left out of its CRC (FLAG_DATA_UNCHECKED); its fields and
 * every other message stay covered.
 */
export function encodeMessage(m: LinkMessage, sequence: number, checkData = true): Buffer[] {
  // The two messages of every replicated write (the write, its ack) are built directly; the
  // bytes are the same as payloadOf's (the golden vectors in test/replication/link-codec.test.ts).
  if (m.type === 'write') return encodeWrite(m, sequence, checkData);
  if (m.type === 'ack') return encodeAck(m, sequence);
  const parts = payloadOf(m);
  // The first part always opens with the reserved header (every message starts with fields).
  const h = parts[0];
  let crc = crc32cRange(h, HEADER_LENGTH, h.length);
  let len = h.length - HEADER_LENGTH;
  for (let i = 1; i < parts.length; i++) { len += parts[i].length; crc = crc32c(parts[i], crc); }
  finishHeader(h, TYPE_CODE[m.type], len, sequence, crc);
  return parts;
}

/** Fill in a reserved header (its payload's length and CRC known) and its own CRC. */
function finishHeader(h: Buffer, type: MessageType, len: number, sequence: number, crc: number, flags = 0): void {
  if (len > MAX_PAYLOAD) throw new RangeError(`payload of ${len} bytes is over ${MAX_PAYLOAD}`);
  h.writeUInt32BE(LINK_MAGIC, 0);
  h[4] = LINK_VERSION;
  h[5] = type;
  h.writeUInt16BE(flags, 6);
  h.writeUInt32BE(len, 8);
  h.writeUInt32BE(sequence >>> 0, 12);
  h.writeUInt32LE(crc, 16);
  h.writeUInt32LE(crc32cRange(h, 0, 20), 20);
}

const TWO_32 = 4294967296;

/** A u64 field: two u32 writes while the value is a safe integer (writeBigUInt64BE costs ten times more). */
function putU64(b: Buffer, off: number, v: bigint): void {
  const n = Number(v);
  if (n >= 0 && n <= Number.MAX_SAFE_INTEGER) { b.writeUInt32BE(Math.floor(n / TWO_32), off); b.writeUInt32BE(n >>> 0, off + 4); }
  else b.writeBigUInt64BE(v, off);
}

function getU64(b: Buffer, off: number): bigint {
  const hi = b.readUInt32BE(off);
  return hi < 0x200000 ? BigInt(hi * TWO_32 + b.readUInt32BE(off + 4)) : b.readBigUInt64BE(off);
}

/** Write: [header + forwarded u8, seq u64, volume u16, fua u8, lba u64] and the data as its own part. */
const WRITE_FIELDS = 20;
function encodeWrite(m: Extract<LinkMessage, { type: 'write' }>, sequence: number, checkData: boolean): Buffer[] {
  const h = Buffer.allocUnsafe(HEADER_LENGTH + WRITE_FIELDS);
  h[24] = m.forwarded ? 1 : 0;
  putU64(h, 25, m.seq);
  h.writeUInt16BE(m.volume, 33);
  h[35] = m.fua ? 1 : 0;
  putU64(h, 36, m.lba);
  const crc = crc32cRange(h, HEADER_LENGTH, HEADER_LENGTH + WRITE_FIELDS);
  if (!checkData) finishHeader(h, MessageType.Write, WRITE_FIELDS + m.data.length, sequence, crc, FLAG_DATA_UNCHECKED);
  else finishHeader(h, MessageType.Write, WRITE_FIELDS + m.data.length, sequence, m.data.length ? crc32c(m.data, crc) : crc);
  return m.data.length ? [h, m.data] : [h];
}

/** Ack: [header + forwarded u8, seq u64, status u8]. */
const ACK_FIELDS = 10;
function encodeAck(m: Extract<LinkMessage, { type: 'ack' }>, sequence: number): Buffer[] {
  const h = Buffer.allocUnsafe(HEADER_LENGTH + ACK_FIELDS);
  h[24] = m.forwarded ? 1 : 0;
  putU64(h, 25, m.seq);
  h[33] = ACK_STATUS[m.status];
  finishHeader(h, MessageType.Ack, ACK_FIELDS, sequence, crc32cRange(h, HEADER_LENGTH, HEADER_LENGTH + ACK_FIELDS));
  return [h];
}

// ---------------------------------------------------------------- decoding

export interface LinkHeader {
  type: number;
  flags: number;
  length: number;
  sequence: number;
  dataCrc: number;
}

/** Check and read a 24-byte header. Throws LinkProtocolError on anything it cannot trust. */
export function decodeHeader(h: Buffer, at = 0): LinkHeader {
  if (h.readUInt32BE(at) !== LINK_MAGIC) throw new LinkProtocolError('bad-magic', `bad magic 0x${h.readUInt32BE(at).toString(16)}`);
  if (readDigest(h, at + 20) !== crc32cRange(h, at, at + 20)) throw new LinkProtocolError('bad-header-crc', 'header CRC32C mismatch');
  if (h[at + 4] !== LINK_VERSION) throw new LinkProtocolError('bad-version', `link protocol version ${h[at + 4]} (this array speaks ${LINK_VERSION})`);
  const length = h.readUInt32BE(at + 8);
  if (length > MAX_PAYLOAD) throw new LinkProtocolError('oversize', `payload of ${length} bytes is over ${MAX_PAYLOAD}`);
  const flags = h.readUInt16BE(at + 6);
  if (flags !== 0 && (flags !== FLAG_DATA_UNCHECKED || h[at + 5] !== MessageType.Write)) throw new LinkProtocolError('bad-flags', `header flags 0x${flags.toString(16)} on message type ${h[at + 5]}`);
  return { type: h[at + 5], flags, length, sequence: h.readUInt32BE(at + 12), dataCrc: readDigest(h, at + 16) };
}

class In {
  o = 0;
  constructor(readonly b: Buffer) {}
  need(k: number): void { if (this.o + k > this.b.length) throw new LinkProtocolError('bad-payload', `payload ends at ${this.b.length}, field needs ${this.o + k}`); }
  u8(): number { this.need(1); return this.b[this.o++]; }
  u16(): number { this.need(2); const v = this.b.readUInt16BE(this.o); this.o += 2; return v; }
  u32(): number { this.need(4); const v = this.b.readUInt32BE(this.o); this.o += 4; return v; }
  u64(): bigint { this.need(8); const v = this.b.readBigUInt64BE(this.o); this.o += 8; return v; }
  str(): string { const n = this.u16(); this.need(n); const s = this.b.toString('utf8', this.o, this.o + n); this.o += n; return s; }
  ostr(): string | null { return this.bool() ? this.str() : null; }
  wwn(): string { this.need(8); const s = this.b.toString('hex', this.o, this.o + 8); this.o += 8; return s; }
  bool(): boolean { const v = this.u8(); if (v > 1) throw new LinkProtocolError('bad-payload', `flag byte ${v} at ${this.o - 1}`); return v === 1; }
  /** The rest of the payload, as a view. */
  rest(): Buffer { const v = this.b.subarray(this.o); this.o = this.b.length; return v; }
  take(n: number): Buffer { this.need(n); const v = this.b.subarray(this.o, this.o + n); this.o += n; return v; }
  end(): void { if (this.o !== this.b.length) throw new LinkProtocolError('bad-payload', `${this.b.length - this.o} bytes after the last field`); }
}

/** Decode a payload of `type` (already CRC-checked). Buffers in the result are views of `p`. */
export function decodePayload(type: number, p: Buffer): LinkMessage {
  const i = new In(p);
  let m: LinkMessage;
  switch (type) {
    case MessageType.Hello: {
      const arrayId = i.str(); const group = i.str(); const r = i.u8();
      if (r !== 1 && r !== 2) throw new LinkProtocolError('bad-payload', `role ${r}`);
      const n = i.u16();
      const volumes: VolumeGeometry[] = [];
      for (let k = 0; k < n; k++) volumes.push({ wwn: i.wwn(), serial: i.str(), blockSize: i.u32(), blockCount: i.u64() });
      const epoch = i.u32(); const f = i.u8();
      if (f & ~7) throw new LinkProtocolError('bad-payload', `hello flags 0x${f.toString(16)}`);
      const np = i.u16();
      const ports: number[] = [];
      for (let k = 0; k < np; k++) ports.push(i.u16());
      m = { type: 'hello', arrayId, group, role: r === 1 ? 'primary' : 'secondary', volumes, epoch, restarted: !!(f & 1), volatile: !!(f & 2), empty: !!(f & 4), ports };
      break;
    }
    case MessageType.Write:
      m = { type: 'write', forwarded: i.bool(), seq: i.u64(), volume: i.u16(), fua: i.bool(), lba: i.u64(), data: i.rest() };
      break;
    case MessageType.WriteSame:
      m = { type: 'write-same', forwarded: i.bool(), seq: i.u64(), volume: i.u16(), unmap: i.bool(), lba: i.u64(), blocks: i.u32(), block: i.rest() };
      break;
    case MessageType.Unmap: {
      const forwarded = i.bool(); const seq = i.u64(); const volume = i.u16(); const n = i.u16();
      const ranges = [];
      for (let k = 0; k < n; k++) ranges.push({ lba: i.u64(), blocks: i.u32() });
      m = { type: 'unmap', forwarded, seq, volume, ranges };
      break;
    }
    case MessageType.Ack: {
      const forwarded = i.bool(); const seq = i.u64(); const s = i.u8();
      const status = ACK_BY_CODE[s];
      if (!status) throw new LinkProtocolError('bad-payload', `ack status ${s}`);
      m = { type: 'ack', forwarded, seq, status };
      break;
    }
    case MessageType.Acks: {
      const first = i.u64(); const last = i.u64();
      if (last <= first) throw new LinkProtocolError('bad-payload', `acks run ${first}..${last}`);
      m = { type: 'acks', first, last };
      break;
    }
    case MessageType.CompareAndWrite: {
      const id = i.u64(); const volume = i.u16(); const fua = i.bool(); const lba = i.u64(); const blocks = i.u32();
      const rest = i.rest();
      if (rest.length % 2) throw new LinkProtocolError('bad-payload', 'compare-and-write data is not two equal instances');
      m = { type: 'compare-and-write', id, volume, fua, lba, blocks, verify: rest.subarray(0, rest.length / 2), data: rest.subarray(rest.length / 2) };
      break;
    }
    case MessageType.CompareAndWriteResult: {
      const id = i.u64(); const o = i.u8();
      if (o >= OUTCOME.length) throw new LinkProtocolError('bad-payload', `compare-and-write outcome ${o}`);
      m = { type: 'compare-and-write-result', id, outcome: OUTCOME[o], offset: i.u32() };
      break;
    }
    case MessageType.Heartbeat:
      m = { type: 'heartbeat', nonce: i.u64(), reply: i.bool() };
      break;
    case MessageType.Error: {
      const c = i.u16();
      const code = ERROR_BY_CODE[c];
      if (!code) throw new LinkProtocolError('bad-payload', `error code ${c}`);
      m = { type: 'error', code, message: i.str() };
      break;
    }
    case MessageType.GroupState: {
      const k = i.u8();
      if (k >= GROUP_SYNC_STATUS.length) throw new LinkProtocolError('bad-payload', `group state ${k}`);
      m = { type: 'group-state', state: GROUP_SYNC_STATUS[k], reason: i.str() };
      break;
    }
    case MessageType.RoleSwap:
      m = { type: 'role-swap', epoch: i.u32(), reverse: i.bool(), reason: i.str() };
      break;
    case MessageType.GroupAdmin:
      m = { type: 'group-admin', request: i.str() };
      break;
    case MessageType.GroupAdminResult:
      m = { type: 'group-admin-result', ok: i.bool(), reply: i.str() };
      break;
    case MessageType.PrOut: {
      const id = i.u64(); const volume = i.u16();
      const nexus: LinkNexus = { initiatorName: i.str(), isid: i.str(), targetName: i.str(), tpgt: i.u16(), targetPortGroup: i.u16() };
      const cdb = i.take(i.u8());
      m = { type: 'pr-out', id, volume, nexus, cdb, data: i.rest() };
      break;
    }
    case MessageType.PrOutResult: {
      const id = i.u64(); const status = i.u8(); const reason = i.str(); const f = i.u8(); const byte = i.u16(); const bit = i.u8();
      if (f & ~7 || (f && !(f & 1)) || bit > 7) throw new LinkProtocolError('bad-payload', `field pointer flags 0x${f.toString(16)} bit ${bit}`);
      m = { type: 'pr-out-result', id, status, reason, fieldPointer: f & 1 ? { inCdb: !!(f & 2), byte, ...(f & 4 ? { bit } : {}) } : null };
      break;
    }
    case MessageType.PrState: {
      const seq = i.u64(); const volume = i.u16(); const generation = i.u32(); const f = i.u8();
      if (f & ~31) throw new LinkProtocolError('bad-payload', `pr-state flags 0x${f.toString(16)}`);
      const reservation = f & 2 ? { holder: i.u16(), type: i.u8() } : null;
      const registrations: PrRegistrationWire[] = [];
      for (let k = 0, n = i.u16(); k < n; k++) registrations.push({ key: i.u64(), initiatorName: i.str(), isid: i.ostr(), targetPortName: i.ostr(), relativeTargetPortId: i.u16() });
      if (reservation && reservation.holder >= registrations.length) throw new LinkProtocolError('bad-payload', `reservation holder ${reservation.holder} of ${registrations.length} registrations`);
      const regs = (): PrNoticeWire['regs'] => {
        const rs: PrNoticeWire['regs'] = [];
        for (let k = 0, n = i.u16(); k < n; k++) rs.push({ initiatorName: i.str(), isid: i.ostr(), targetPortName: i.ostr() });
        return rs;
      };
      const notices: PrNoticeWire[] = [];
      for (let k = 0, n = i.u16(); k < n; k++) notices.push({ reason: i.str(), except: i.str(), regs: regs() });
      const abort = f & 4 ? { except: i.str(), regs: regs() } : null;
      const legacyHolder = f & 8 ? i.str() : null;
      m = { type: 'pr-state', seq, volume, state: { generation, aptpl: !!(f & 1), registrations, reservation, notices, abort, legacyHolder, reset: !!(f & 16) } };
      break;
    }
    default:
      throw new LinkProtocolError('unknown-type', `message type ${type}`);
  }
  i.end();
  return m;
}

// ---------------------------------------------------------------- framing

export const enum LinkFramerState { Header, Payload }

export type LinkFrameEvent =
  | { kind: 'message'; sequence: number; message: LinkMessage }
  | { kind: 'error'; error: LinkProtocolError };

/**
 * The link framer: a state machine over TCP chunks (STYLE.md habit 6), Header ──► Payload ──► Header.
 * A payload inside one chunk is decoded from a view of it; one that straddles chunks is gathered
 * into its own buffer. After an error the framer stays failed (a byte stream cannot be resynced):
 * the caller drops the link.
 */
export class LinkFramer {
  state = LinkFramerState.Header;
  private header: LinkHeader | null = null;
  private acc: Buffer | null = null;
  private fill = 0;
  private failed: LinkProtocolError | null = null;

  get idle(): boolean { return this.state === LinkFramerState.Header && this.acc === null; }

  push(chunk: Buffer, emit: (e: LinkFrameEvent) => void): void {
    if (this.failed) return;
    let off = 0;
    try {
      while (off < chunk.length || (this.state === LinkFramerState.Payload && this.header!.length === 0)) {
        const need = this.state === LinkFramerState.Header ? HEADER_LENGTH : this.header!.length;
        // The unit (a header or a payload) is unit[at, at + need): in the chunk itself when it is
        // whole there (no view made here), else gathered into a buffer of its own.
        let unit: Buffer;
        let at = 0;
        if (this.acc === null && chunk.length - off >= need) {
          unit = chunk;
          at = off;
          off += need;
        } else {
          if (this.acc === null) { this.acc = Buffer.allocUnsafe(need); this.fill = 0; }
          const n = Math.min(need - this.fill, chunk.length - off);
          chunk.copy(this.acc, this.fill, off, off + n);
          this.fill += n;
          off += n;
          if (this.fill < need) return;
          unit = this.acc;
          this.acc = null;
        }
        if (this.state === LinkFramerState.Header) {
          this.header = decodeHeader(unit, at);
          this.state = LinkFramerState.Payload;
        } else {
          const h = this.header!;
          const message = decodeChecked(h, unit, at, at + need);
          this.state = LinkFramerState.Header;
          this.header = null;
          emit({ kind: 'message', sequence: h.sequence, message });
        }
      }
    } catch (e) {
      if (!(e instanceof LinkProtocolError)) throw e;
      this.failed = e;
      emit({ kind: 'error', error: e });
    }
  }
}

const EMPTY = Buffer.alloc(0);
const crcMismatch = (h: LinkHeader) => new LinkProtocolError('bad-data-crc', `payload CRC32C mismatch (message ${h.sequence})`);
const flag = (v: number, at: number): boolean => {
  if (v > 1) throw new LinkProtocolError('bad-payload', `flag byte ${v} at ${at}`);
  return v === 1;
};

/**
 * Check the payload b[start, end) against its header's CRC and decode it. A write and an ack (the
 * messages of every replicated write) are read in place, only the write's data becoming a view;
 * the rest go through decodePayload. Same results and errors either way.
 */
function decodeChecked(h: LinkHeader, b: Buffer, start: number, end: number): LinkMessage {
  if (h.type === MessageType.Write && h.length >= WRITE_FIELDS) {
    let crc = crc32cRange(b, start, start + WRITE_FIELDS);
    const data = h.length > WRITE_FIELDS ? b.subarray(start + WRITE_FIELDS, end) : EMPTY;
    if (data.length && h.flags !== FLAG_DATA_UNCHECKED) crc = crc32c(data, crc);
    if (crc !== h.dataCrc) throw crcMismatch(h);
    const forwarded = flag(b[start], 0);
    const seq = getU64(b, start + 1);
    const volume = b.readUInt16BE(start + 9);
    const fua = flag(b[start + 11], 11);
    return { type: 'write', forwarded, seq, volume, fua, lba: getU64(b, start + 12), data };
  }
  if (h.type === MessageType.Ack && h.length === ACK_FIELDS) {
    if (crc32cRange(b, start, end) !== h.dataCrc) throw crcMismatch(h);
    const forwarded = flag(b[start], 0);
    const seq = getU64(b, start + 1);
    const status = ACK_BY_CODE[b[start + 9]];
    if (!status) throw new LinkProtocolError('bad-payload', `ack status ${b[start + 9]}`);
    return { type: 'ack', forwarded, seq, status };
  }
  const p = start === 0 && end === b.length ? b : b.subarray(start, end);
  if (crc32c(p) !== h.dataCrc) throw crcMismatch(h);
  return decodePayload(h.type, p);
}
