/**
 * Test support: push a byte stream through a Framer in every chunking the protocol tests use
 * (whole, split in two at every offset, one byte at a time) and snapshot what comes out.
 * Events are copied to hex at emit time, because they are views into chunks.
 */
import { expect } from 'vitest';
import { Framer } from '../../protocol/iscsi/framer.ts';
import type { FrameEvent, FramerOptions } from '../../protocol/iscsi/framer.ts';

export type Seen =
  | { kind: 'pdu'; bhs: string; ahs: string | null; data: string; dataDigestOk: boolean }
  | { kind: 'header-digest-error'; bhs: string }
  | { kind: 'oversize'; bhs: string; length: number };

export function snapshot(e: FrameEvent): Seen {
  switch (e.kind) {
    case 'pdu':
      return {
        kind: 'pdu', bhs: e.pdu.bhs.toString('hex'), ahs: e.pdu.ahs ? e.pdu.ahs.toString('hex') : null,
        data: e.pdu.data.toString('hex'), dataDigestOk: e.pdu.dataDigestOk,
      };
    case 'header-digest-error':
      return { kind: 'header-digest-error', bhs: e.bhs.toString('hex') };
    case 'oversize':
      return { kind: 'oversize', bhs: e.bhs.toString('hex'), length: e.length };
  }
}

export function pduSeen(bhs: Buffer, o: { ahs?: Buffer; data?: Buffer; dataDigestOk?: boolean } = {}): Seen {
  return {
    kind: 'pdu', bhs: bhs.toString('hex'), ahs: o.ahs && o.ahs.length ? o.ahs.toString('hex') : null,
    data: (o.data ?? Buffer.alloc(0)).toString('hex'), dataDigestOk: o.dataDigestOk ?? true,
  };
}

/** Feed chunks (each copied into its own allocation, as a socket would deliver them). */
export function run(opts: FramerOptions, chunks: readonly Buffer[]): { seen: Seen[]; framer: Framer } {
  const framer = new Framer({ ...opts });
  const seen: Seen[] = [];
  for (const c of chunks) framer.push(Buffer.from(c), (e) => seen.push(snapshot(e)));
  return { seen, framer };
}

/** The chunkings: whole; [0,i) + [i,n) for every i in 1..n-1; one byte at a time. */
export function chunkings(stream: Buffer): { name: string; chunks: Buffer[] }[] {
  const out: { name: string; chunks: Buffer[] }[] = [{ name: 'whole', chunks: [stream] }];
  for (let i = 1; i < stream.length; i++) {
    out.push({ name: `split@${i}`, chunks: [stream.subarray(0, i), stream.subarray(i)] });
  }
  out.push({ name: 'bytewise', chunks: Array.from({ length: stream.length }, (_, i) => stream.subarray(i, i + 1)) });
  return out;
}

/**
 * The same events come out for every chunking, and the framer ends idle. Failures name the
 * chunking, so a bad split offset is visible at once.
 */
export function expectFramedEverywhere(opts: FramerOptions, stream: Buffer, expected: Seen[]): void {
  for (const { name, chunks } of chunkings(stream)) {
    const { seen, framer } = run(opts, chunks);
    expect(seen, name).toEqual(expected);
    expect(framer.idle, `${name}: idle at end`).toBe(true);
  }
}
