/**
 * The checker's history (after Jepsen's): every operation a client invoked, and how it ended,
 * with times in milliseconds since the run started (one clock: the checker's process). Plus the
 * faults and the arrays' own events. Saved as JSON (results/check-<seed>.json), so the verdict
 * can be recomputed from the file alone and a run replayed with its seed.
 *
 * Blocks are self-describing (blockOf): magic, writer, sequence, LBA, then filler derived from
 * them and a CRC-32C, so a read names the write it returned, and a torn or foreign block is seen.
 */
import { crc32c } from '../../protocol/iscsi/digest.ts';

export const BLOCK = 512;
const MAGIC = 'ASCK';

/** What a block holds: the write that put it there, the initial zeros, or something else. */
export type BlockTag = { kind: 'write'; writer: string; seq: number } | { kind: 'zero' } | { kind: 'garbage'; why: string };

export type OpKind = 'write' | 'read' | 'increment';

export interface Invoke {
  type: 'invoke';
  id: number;
  t: number;
  client: string;
  site: string;
  op: OpKind;
  lba: number;
  blocks: number;
  /** write: its sequence number (the blocks carry client + seq). */
  seq?: number;
}

export interface Ok {
  type: 'ok';
  id: number;
  t: number;
  /** read: each block's tag as `writer:seq`, `zero` or `garbage:<why>`; increment: the value written. */
  value?: string[] | number;
  /** increment: compare-and-write attempts lost to another writer (MISCOMPARE) before this one. */
  miscompares?: number;
}

export interface Fail {
  type: 'fail';
  id: number;
  t: number;
  error: string;
  /** An attempt may have taken effect (every write or increment error; a failed read is definite). */
  indeterminate: boolean;
}

export interface FaultRecord { type: 'fault'; t: number; fault: string; phase: 'inject' | 'heal'; detail?: string }

/** One event from an array's GET /v1/events stream, or `down`/`up` when its process died or came back. */
export interface ArrayEventRecord { type: 'array'; t: number; site: string; event: Record<string, unknown> }

export type HistoryEntry = Invoke | Ok | Fail | FaultRecord | ArrayEventRecord;

export interface SavedHistory {
  seed: number;
  seconds: number;
  startedAt: string;
  options: Record<string, unknown>;
  entries: HistoryEntry[];
  /** Final contents, per LBA tag (from site A; `identical` says whether B matched byte for byte). */
  final: { tags: Record<number, string>; counters: Record<number, number>; identical: boolean; differing: number[] };
  violations: { kind: string; message: string }[];
}

export class History {
  readonly entries: HistoryEntry[] = [];
  private nextId = 1;
  private readonly t0 = performance.now();
  /** Told of every fault and array event as it is recorded (the CLI prints them). */
  onNote?: (e: FaultRecord | ArrayEventRecord) => void;
  /** Told of every operation as it ends (the CLI's --verbose prints them). */
  onOp?: (i: Invoke, end: Ok | Fail) => void;
  private readonly open = new Map<number, Invoke>();

  now(): number { return Math.round((performance.now() - this.t0) * 1000) / 1000; }

  invoke(o: Omit<Invoke, 'type' | 'id' | 't'>): number {
    const id = this.nextId++;
    const e: Invoke = { type: 'invoke', id, t: this.now(), ...o };
    this.entries.push(e);
    if (this.onOp) this.open.set(id, e);
    return id;
  }

  ok(id: number, value?: Ok['value'], miscompares?: number): void {
    const e: Ok = { type: 'ok', id, t: this.now(), ...(value !== undefined ? { value } : {}), ...(miscompares ? { miscompares } : {}) };
    this.entries.push(e);
    this.ended(id, e);
  }

  fail(id: number, error: string, indeterminate: boolean): void {
    const e: Fail = { type: 'fail', id, t: this.now(), error, indeterminate };
    this.entries.push(e);
    this.ended(id, e);
  }

  private ended(id: number, e: Ok | Fail): void {
    const i = this.open.get(id);
    if (!i) return;
    this.open.delete(id);
    this.onOp?.(i, e);
  }

  fault(fault: string, phase: 'inject' | 'heal', detail?: string): void {
    const e: FaultRecord = { type: 'fault', t: this.now(), fault, phase, ...(detail ? { detail } : {}) };
    this.entries.push(e);
    this.onNote?.(e);
  }

  array(site: string, event: Record<string, unknown>): void {
    const e: ArrayEventRecord = { type: 'array', t: this.now(), site, event };
    this.entries.push(e);
    this.onNote?.(e);
  }
}

// ------------------------------------------------------------ self-describing blocks

export function blockOf(writer: string, seq: number, lba: number): Buffer {
  const b = Buffer.alloc(BLOCK);
  b.write(MAGIC, 0, 'latin1');
  b.writeUInt32LE(seq, 4);
  b.writeUInt32LE(lba, 8);
  const w = Buffer.from(writer, 'utf8');
  if (w.length > 32) throw new RangeError(`writer name ${writer} is longer than 32 bytes`);
  b[12] = w.length;
  w.copy(b, 13);
  let x = (seq * 2654435761 + lba * 40503 + w.length) >>> 0;
  for (let o = 48; o < BLOCK - 4; o += 4) { x = (Math.imul(x, 1664525) + 1013904223) >>> 0; b.writeUInt32LE(x, o); }
  b.writeUInt32LE(crc32c(b.subarray(0, BLOCK - 4)), BLOCK - 4);
  return b;
}

/** Blocks `lba`..`lba+blocks-1` of write `seq` of `writer`. */
export function writeData(writer: string, seq: number, lba: number, blocks: number): Buffer {
  const out = Buffer.alloc(blocks * BLOCK);
  for (let i = 0; i < blocks; i++) blockOf(writer, seq, lba + i).copy(out, i * BLOCK);
  return out;
}

/** What block `lba` holds (`b` is one block). */
export function tagOf(b: Buffer, lba: number): BlockTag {
  if (b.every((v) => v === 0)) return { kind: 'zero' };
  if (b.toString('latin1', 0, 4) !== MAGIC) return { kind: 'garbage', why: 'no magic' };
  if (crc32c(b.subarray(0, BLOCK - 4)) !== b.readUInt32LE(BLOCK - 4)) return { kind: 'garbage', why: 'checksum' };
  const at = b.readUInt32LE(8);
  if (at !== lba) return { kind: 'garbage', why: `block of LBA ${at}` };
  return { kind: 'write', writer: b.toString('utf8', 13, 13 + b[12]), seq: b.readUInt32LE(4) };
}

export function tagString(t: BlockTag): string {
  return t.kind === 'write' ? `${t.writer}:${t.seq}` : t.kind === 'zero' ? 'zero' : `garbage:${t.why}`;
}

/** Tags of every block of a read of `blocks` blocks at `lba`. */
export function tagsOf(data: Buffer, lba: number): string[] {
  const out: string[] = [];
  for (let i = 0; i * BLOCK < data.length; i++) out.push(tagString(tagOf(data.subarray(i * BLOCK, (i + 1) * BLOCK), lba + i)));
  return out;
}

// ------------------------------------------------------------ ATS counters

/**
 * A counter block: magic, the value (u32), its LBA, the client and operation that wrote it, a CRC;
 * a zero block is the value 0. COMPARE AND WRITE of the block read against the block + 1 is
 * one increment (SBC-4 §5.3: compare and write are atomic).
 */
export function counterBlock(value: number, lba: number, client = '', op = 0): Buffer {
  const b = Buffer.alloc(BLOCK);
  b.write('ACNT', 0, 'latin1');
  b.writeUInt32LE(value, 4);
  b.writeUInt32LE(lba, 8);
  b.writeUInt32LE(op, 12);
  b[16] = Buffer.byteLength(client);
  b.write(client, 17, 32, 'utf8');
  b.writeUInt32LE(crc32c(b.subarray(0, BLOCK - 4)), BLOCK - 4);
  return b;
}

/** The counter a block holds, or null when it is not a counter block of this LBA. */
export function counterOf(b: Buffer, lba: number): number | null {
  if (b.every((v) => v === 0)) return 0;
  if (b.toString('latin1', 0, 4) !== 'ACNT' || b.readUInt32LE(8) !== lba) return null;
  if (crc32c(b.subarray(0, BLOCK - 4)) !== b.readUInt32LE(BLOCK - 4)) return null;
  return b.readUInt32LE(4);
}
