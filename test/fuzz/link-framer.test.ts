/**
 * The replication link's framer (protocol/replication/link.ts), and the quorum witness's
 * (protocol/replication/witness.ts), under seeded random input, past their CRCs: payloads of every message type, random and mutated from real messages, framed with
 * correct CRCs so they reach the payload decoders. Each feed must end in messages or in one
 * LinkProtocolError event and nothing after it; never another exception (a RangeError out of a
 * decoder would take the array's link reader down with it). A decoded message must encode again
 * to a frame that decodes to the same message. The negative control, run by hand: without the
 * ack's length check in decodeChecked the framer throws a RangeError at case 21 of seed 1.
 * ARRAYSIM_LINK_FUZZ_CASES sets the count per seed (default 2000).
 */
import { describe, expect, it } from 'vitest';
import { encodeMessage, LinkFramer } from '../../protocol/replication/link.ts';
import type { LinkFrameEvent, LinkMessage } from '../../protocol/replication/link.ts';
import { crc32c } from '../../protocol/iscsi/digest.ts';
import { encodeWitness, WITNESS_HEADER_LENGTH, WitnessFramer } from '../../protocol/replication/witness.ts';
import type { WitnessFrameEvent, WitnessMessage } from '../../protocol/replication/witness.ts';
import { seededRandom } from '../../src/replication/link-faults.ts';
import { frame } from '../replication/link-builder.ts';

const CASES = Number(process.env.ARRAYSIM_LINK_FUZZ_CASES) || 2000;
const TYPES = 17;

/** Real messages of most types, to mutate. */
const SAMPLES: LinkMessage[] = [
  { type: 'hello', arrayId: 'site-a', group: 'rcg1', role: 'primary', volumes: [{ wwn: '502a751000000001', serial: 'ASIMVOL1', blockSize: 512, blockCount: 2097152n }], epoch: 3, restarted: false, volatile: false, empty: false, ports: [1, 3] },
  { type: 'write', forwarded: false, seq: 7n, volume: 0, lba: 0x1234n, fua: true, data: Buffer.alloc(1024, 0x5a) },
  { type: 'write-same', forwarded: false, seq: 8n, volume: 0, lba: 100n, blocks: 4096, unmap: true, block: Buffer.alloc(512, 0xa5) },
  { type: 'unmap', forwarded: false, seq: 9n, volume: 0, ranges: [{ lba: 0n, blocks: 8 }, { lba: 1n << 40n, blocks: 0xffffffff }] },
  { type: 'ack', forwarded: true, seq: 3n, status: 'not-primary' },
  { type: 'group-admin', request: JSON.stringify({ verb: 'removegroup', group: 'g', count: 1, force: true }) },
  { type: 'group-admin-result', ok: false, reply: '{"ok":false}' },
];

/** A good message after each case: the framer either decodes it too or has stopped at an error. */
const TRAILER = encodeMessage({ type: 'ack', forwarded: false, seq: 1n, status: 'ok' }, 2);

function collect(framer: LinkFramer, parts: Buffer[]): LinkFrameEvent[] {
  const ev: LinkFrameEvent[] = [];
  for (const p of parts) framer.push(p, (e) => ev.push(e));
  return ev;
}

/** One frame: the payload as sent with its header, so that only the payload's content is wrong. */
function payloadOf(m: LinkMessage): { type: number; payload: Buffer } {
  const whole = Buffer.concat(encodeMessage(m, 1));
  return { type: whole[5], payload: whole.subarray(24) };
}

function one(rnd: () => number, caseNo: number): 'message' | 'error' {
  const int = (n: number) => Math.floor(rnd() * n);
  let type: number;
  let payload: Buffer;
  if (int(3) === 0) {
    // Random bytes of a random type (and now and then a type that does not exist).
    type = int(4) === 0 ? int(256) : 1 + int(TYPES);
    payload = Buffer.alloc(int(80));
    for (let i = 0; i < payload.length; i++) payload[i] = int(256);
  } else {
    // A real message, its payload mutated: bytes flipped, cut short, or grown.
    const p = payloadOf(SAMPLES[int(SAMPLES.length)]);
    type = p.type;
    payload = Buffer.from(p.payload);
    const k = int(4);
    if (k === 0 && payload.length) payload = payload.subarray(0, int(payload.length));
    else if (k === 1) payload = Buffer.concat([payload, Buffer.alloc(1 + int(8), int(256))]);
    const flips = 1 + int(4);
    for (let f = 0; f < flips && payload.length; f++) payload[int(payload.length)] = int(256);
  }
  const bytes = frame(type, caseNo, payload);
  // Split at a random point, as TCP may deliver it.
  const cut = int(bytes.length + 1);
  const framer = new LinkFramer();
  let ev: LinkFrameEvent[];
  try {
    ev = collect(framer, [bytes.subarray(0, cut), bytes.subarray(cut), ...TRAILER]);
  } catch (e) {
    throw new Error(`case ${caseNo}: type ${type}, payload ${payload.toString('hex')}: the framer threw ${(e as Error).stack}`);
  }
  const errors = ev.filter((e) => e.kind === 'error');
  if (errors.length) {
    // One error, the last event: the framer stops there.
    expect(errors, `case ${caseNo}`).toHaveLength(1);
    expect(ev.at(-1)!.kind, `case ${caseNo}`).toBe('error');
    return 'error';
  }
  // Decoded, and the trailer after it; the message encodes again to bytes that decode to it.
  expect(ev, `case ${caseNo}`).toHaveLength(2);
  const first = ev[0];
  expect(first.kind).toBe('message');
  if (first.kind !== 'message') return 'error';
  const again = collect(new LinkFramer(), encodeMessage(first.message, 1));
  expect(again, `case ${caseNo}: type ${type} payload ${payload.toString('hex')}`).toEqual([{ kind: 'message', sequence: 1, message: first.message }]);
  return 'message';
}

const WITNESS_SAMPLES: WitnessMessage[] = [
  { type: 'heartbeat', array: 'site-a', nonce: 5n, groups: [{ group: 'rcg1', role: 'primary', status: 'Synced', link: true, syncedAtLoss: false, failover: false, epoch: 2 }, { group: 'g2', role: 'secondary', status: 'Stopped', link: false, syncedAtLoss: true, failover: true, epoch: 0 }] },
  { type: 'verdict', nonce: 5n, witness: 'w', groups: [{ group: 'rcg1', owner: 'site-a', epoch: 2, peer: 'site-b', peerSight: 'alive', peerLink: true, recorded: 'Synced', granted: false }] },
  { type: 'error', message: 'no' },
];

/** A witness frame around any payload, its CRC correct (header layout: protocol/replication/witness.ts). */
function witnessFrame(type: number, payload: Buffer): Buffer {
  const h = Buffer.from(encodeWitness({ type: 'error', message: '' }).subarray(0, WITNESS_HEADER_LENGTH));
  h[5] = type;
  h.writeUInt32BE(payload.length, 8);
  h.writeUInt32LE(crc32c(payload, crc32c(h.subarray(0, 12))), 12);
  return Buffer.concat([h, payload]);
}

function oneWitness(rnd: () => number, caseNo: number): 'message' | 'error' {
  const int = (n: number) => Math.floor(rnd() * n);
  const real = encodeWitness(WITNESS_SAMPLES[int(WITNESS_SAMPLES.length)]);
  const type = int(5) === 0 ? int(256) : real[5];
  let payload = Buffer.from(real.subarray(WITNESS_HEADER_LENGTH));
  if (int(3) === 0) payload = payload.subarray(0, int(payload.length + 1));
  for (let f = 1 + int(4); f > 0 && payload.length; f--) payload[int(payload.length)] = int(256);
  const bytes = witnessFrame(type, payload);
  const cut = int(bytes.length + 1);
  const ev: WitnessFrameEvent[] = [];
  try {
    const framer = new WitnessFramer();
    for (const part of [bytes.subarray(0, cut), bytes.subarray(cut), encodeWitness(WITNESS_SAMPLES[2])]) framer.push(part, (e) => ev.push(e));
  } catch (e) {
    throw new Error(`witness case ${caseNo}: type ${type}, payload ${payload.toString('hex')}: the framer threw ${(e as Error).stack}`);
  }
  if (ev.some((e) => e.kind === 'error')) {
    expect(ev.filter((e) => e.kind === 'error'), `witness case ${caseNo}`).toHaveLength(1);
    expect(ev.at(-1)!.kind).toBe('error');
    return 'error';
  }
  expect(ev, `witness case ${caseNo}`).toHaveLength(2);
  const first = ev[0] as Extract<WitnessFrameEvent, { kind: 'message' }>;
  const again: WitnessFrameEvent[] = [];
  new WitnessFramer().push(encodeWitness(first.message), (e) => again.push(e));
  expect(again, `witness case ${caseNo}: payload ${payload.toString('hex')}`).toEqual([{ kind: 'message', message: first.message }]);
  return 'message';
}

/** `seeds` runs of CASES cases each; not vacuous: some mutated payloads still decode (and re-encode), most are refused. */
function fuzz(what: string, seeds: number[], one: (rnd: () => number, caseNo: number) => 'message' | 'error'): void {
  for (const seed of seeds) {
    it(`seed ${seed}: ${CASES} ${what} frames with correct CRCs and wrong payloads: messages or one protocol error, never a throw`, () => {
      const rnd = seededRandom(seed);
      const seen = { message: 0, error: 0 };
      for (let c = 0; c < CASES; c++) seen[one(rnd, c)]++;
      expect(seen.message).toBeGreaterThan(CASES / 50);
      expect(seen.error).toBeGreaterThan(CASES / 2);
    }, 60_000);
  }
}

describe('link framer fuzz', () => fuzz('link', [1, 2, 3], one));
describe('witness framer fuzz', () => fuzz('witness', [1, 2], oneWitness));
