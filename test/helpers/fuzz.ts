/**
 * Shared pieces of the bad-input suites in test/fuzz: logged-in sessions with distinct ISIDs,
 * an independent sense-data parser (SPC-5 §4.4) that checks the format rather than trusting
 * the target's encoder, and the structural counts that show nothing leaked in the server.
 */
import { expect } from 'vitest';
import { TestInitiator } from './initiator.ts';
import type { ScsiResult, TargetPdu } from './initiator.ts';
import type { Harness } from '../integration/harness.ts';
import type { BackingStore } from '../../src/store/store.ts';
import { simpleStore, startTarget, TARGET } from '../integration/harness.ts';

/**
 * fast-check runs for a property: `n` as written in the test, times ARRAYSIM_FUZZ_SCALE (default
 * 1) for a longer campaign, e.g. `ARRAYSIM_FUZZ_SCALE=20 npx vitest run test/fuzz`.
 */
export function runs(n: number): number {
  const scale = Number(process.env.ARRAYSIM_FUZZ_SCALE ?? '1');
  return Math.max(1, Math.round(n * (Number.isFinite(scale) && scale > 0 ? scale : 1)));
}

let isidCounter = 0;

/** A session on its own ISID (so sessions never reinstate each other), past the power-on UA. */
export async function openSession(port: number, extra: Record<string, string> = {}, clearUa = true): Promise<TestInitiator> {
  const i = await TestInitiator.connect(port);
  const n = ++isidCounter;
  i.isid = Buffer.from([0x80, 0xf0, (process.pid >> 8) & 0xff, process.pid & 0xff, (n >> 8) & 0xff, n & 0xff]);
  await i.login(TARGET, extra);
  if (clearUa) await clearUnitAttentions(i);
  return i;
}

/** TEST UNIT READY until it stops reporting UNIT ATTENTION (SAM-5 §5.14: one UA per command). */
export async function clearUnitAttentions(i: TestInitiator, lun = 0): Promise<void> {
  for (let k = 0; k < 8; k++) {
    const r = await i.scsi(lun, [0x00, 0, 0, 0, 0, 0]);
    if (r.status !== 0x02 || parseSense(r.sense).key !== 0x6) return;
  }
}

export interface Sense {
  format: 'fixed' | 'descriptor';
  key: number;
  asc: number;
  ascq: number;
  /** Sense-key specific field pointer (SKSV=1 with ILLEGAL REQUEST), else null. */
  field: { inCdb: boolean; byte: number; bit: number | null } | null;
}

/**
 * Parse and validate sense data: response code 70h/71h (fixed, ≥18 bytes with a consistent
 * ADDITIONAL SENSE LENGTH) or 72h/73h (descriptor, descriptors that tile the additional
 * length exactly). Fails the test on malformed sense.
 */
export function parseSense(sense: Buffer | null): Sense {
  expect(sense, 'CHECK CONDITION carries sense data').not.toBeNull();
  const s = sense!;
  const code = s[0] & 0x7f;
  if (code === 0x70 || code === 0x71) {
    expect(s.length).toBeGreaterThanOrEqual(18);
    expect(8 + s[7]).toBe(s.length);
    const sks = s.subarray(15, 18);
    return { format: 'fixed', key: s[2] & 0x0f, asc: s[12], ascq: s[13], field: fieldPointer(sks) };
  }
  expect([0x72, 0x73], `sense response code ${code.toString(16)}`).toContain(code);
  expect(s.length).toBeGreaterThanOrEqual(8);
  expect(8 + s[7]).toBe(s.length);
  let field: Sense['field'] = null;
  let o = 8;
  while (o < s.length) {
    expect(o + 2).toBeLessThanOrEqual(s.length);
    const len = s[o + 1];
    if (s[o] === 0x02) field = fieldPointer(s.subarray(o + 4, o + 7));
    o += 2 + len;
  }
  expect(o, 'descriptors fill the additional sense length exactly').toBe(s.length);
  return { format: 'descriptor', key: s[1] & 0x0f, asc: s[2], ascq: s[3], field };
}

function fieldPointer(sks: Buffer): Sense['field'] {
  if (!(sks[0] & 0x80)) return null;
  return { inCdb: !!(sks[0] & 0x40), byte: sks.readUInt16BE(1), bit: sks[0] & 0x08 ? sks[0] & 0x07 : null };
}

/** CHECK CONDITION, ILLEGAL REQUEST, one of the given ASC/ASCQ pairs (SPC-5 annex F). */
export function expectIllegalRequest(r: ScsiResult, ascs: [number, number][], cdbLength?: number): Sense {
  expect(r.status, 'CHECK CONDITION').toBe(0x02);
  const s = parseSense(r.sense);
  expect(s.key, 'ILLEGAL REQUEST').toBe(0x5);
  expect(ascs.map(([a, q]) => `${a.toString(16)}/${q.toString(16)}`)).toContain(`${s.asc.toString(16)}/${s.ascq.toString(16)}`);
  if (s.field?.inCdb && cdbLength !== undefined) expect(s.field.byte).toBeLessThan(cdbLength);
  return s;
}

/** The target's bookkeeping: every map a misbehaving initiator could make grow. */
export function serverCounts(h: Harness): { connections: number; sessions: number; tasks: number; nexuses: number; ua: number } {
  let tasks = 0;
  for (const c of h.server.connections) tasks += c.tasks.size;
  let ua = 0;
  for (const lu of h.scsi.luns.values()) ua += (lu.ua as unknown as { pending: Map<string, unknown> }).pending.size;
  return { connections: h.server.connections.size, sessions: h.server.sessions.size, tasks, nexuses: h.scsi.nexuses.size, ua };
}

/** Poll until `pred` holds (the target cleans up on socket events, a tick or two after close). */
export async function eventually(pred: () => boolean, timeoutMs = 3000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > end) throw new Error('condition not reached in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Resolves to the first PDU matching, or null if none arrives within `ms` (or the socket closed). */
export async function maybeNext(i: TestInitiator, match: (p: TargetPdu) => boolean, ms: number): Promise<TargetPdu | null> {
  try {
    return await i.next(match, ms);
  } catch {
    return null;
  }
}

/** A NOP-Out ping answered with its data: the connection is alive and framing is intact. */
export async function expectAlive(i: TestInitiator): Promise<void> {
  const tag = Buffer.from(`alive-${Math.random().toString(36).slice(2)}`);
  const p = await i.nop(tag);
  expect(p, 'connection still open').not.toBeNull();
  expect(p.opcode).toBe(0x20);
  expect(p.data.toString()).toBe(tag.toString());
}

/** Write a 3-byte DataSegmentLength into a BHS. */
export function setDsl(b: Buffer, n: number): void { TestInitiator.setDsl(b, n); }

/** A copy of the first `blocks` blocks of a synchronous (memory) store, for before/after comparison. */
export function storeImage(store: BackingStore, blocks: number): Buffer {
  const r = store.read(0n, blocks);
  if (r instanceof Promise) throw new Error('storeImage needs a synchronous store');
  return Buffer.from(r);
}

/** WRITE(10) CDB bytes (SBC-4 §5.40). */
export function write10(lba: number, blocks: number): number[] {
  return [0x2a, 0, (lba >>> 24) & 0xff, (lba >>> 16) & 0xff, (lba >>> 8) & 0xff, lba & 0xff, 0, (blocks >> 8) & 0xff, blocks & 0xff, 0];
}

/** A target over a memory store filled with `content`, and a way to snapshot that store. */
export async function startWithContent(blocks: number, content: Buffer, o: Parameters<typeof startTarget>[0] = {}): Promise<{ h: Harness; image: () => Buffer }> {
  const store = simpleStore(blocks);
  store.write(0n, content);
  const h = await startTarget({ ...o, store });
  return { h, image: () => storeImage(store, blocks) };
}

/** A WRITE(10) SCSI Command BHS (F, W, SIMPLE) with a fresh ITT and the given CmdSN; the caller sends it. */
export function writeCommand(i: TestInitiator, lba: number, blocks: number, cmdSN: number, edtl = blocks * 512): { itt: number; bhs: Buffer } {
  const itt = i.itt++;
  const b = i.bhs(0x01);
  b[1] = 0xa1; b.writeUInt32BE(itt, 16); b.writeUInt32BE(edtl, 20); b.writeUInt32BE(cmdSN >>> 0, 24);
  b.writeUInt32BE(i.expStatSN, 28); Buffer.from(write10(lba, blocks)).copy(b, 32);
  return { itt, bhs: b };
}
