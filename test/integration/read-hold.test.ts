/**
 * A READ from a memory LUN goes out as a view of the store. When the initiator reads its socket
 * slowly, part of that data waits in the target's user space after the READ has executed. A
 * WRITE to the same blocks from another session must not change it there: the READ returns
 * exactly the blocks as they were when it executed, never a mix (ScsiRequest.holdData). The
 * WRITE waits until the data has left, or until the reading connection is gone (closed by the
 * initiator, or dropped by the target when its NOP-In ping goes unanswered), or until it has
 * waited holdBreak.ms: then the store copies the blocks aside for the READ (copy-on-write) and
 * the WRITE goes ahead.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { holdBreak } from '../../src/scsi/range-lock.ts';
import { memoryPool } from '../../src/store/memory.ts';
import { MemoryStore } from '../../src/store/memory.ts';
import { TestInitiator } from '../helpers/initiator.ts';
import type { ScsiResult } from '../helpers/initiator.ts';
import { cdb16 } from '../helpers/cdb.ts';
import { perTestRig, startTarget, TARGET } from './harness.ts';

const BS = 512;
const PIECE = 1 << 20;
/** 32 MiB of READs: far more than the socket buffers of a reader that has stopped reading. */
const PIECES = 32;
const BLOCKS = PIECE / BS;

const fill = (v: number) => Buffer.alloc(PIECE, v);
const settle = (ms: number) => new Promise((r) => setTimeout(r, ms));

const rig = perTestRig();
const BREAK_MS = holdBreak.ms;
afterEach(() => { holdBreak.ms = BREAK_MS; });

async function session(n: number): Promise<TestInitiator> {
  const i = await TestInitiator.connect(rig.h!.ports[0]);
  i.isid = Buffer.from([0x80, 0, 0, 0, 0x7e, n]);
  await i.login(TARGET);
  await i.scsi(0, Buffer.alloc(6)); // the power-on unit attention
  rig.sessions.push(i);
  return i;
}

/** Session A's READs of every piece are executed by the target, then A stops reading; B overwrites. */
async function stalledReader(tuning: { nopInterval?: number; nopTimeout?: number } = {}): Promise<{ reader: TestInitiator; reads: Promise<ScsiResult>[]; writes: Promise<ScsiResult>[]; writesDone: () => number }> {
  rig.h = await startTarget({ store: new MemoryStore(BigInt((2 * PIECES * PIECE) / BS)), tuning });
  const writer = await session(2);
  writer.answerPings = true;
  for (let p = 0; p < PIECES; p++) expect((await writer.scsi(0, cdb16(0x8a, p * BLOCKS, BLOCKS), { write: fill(0xa1) })).status).toBe(0);
  const reader = await session(1);
  reader.sock.pause();
  const reads = Array.from({ length: PIECES }, (_, p) => reader.scsi(0, cdb16(0x88, p * BLOCKS, BLOCKS), { read: PIECE }));
  await settle(300); // the target executes them all; most of their data cannot leave yet
  let done = 0;
  const writes = Array.from({ length: PIECES }, (_, p) => writer.scsi(0, cdb16(0x8a, p * BLOCKS, BLOCKS), { write: fill(0xb2) }).then((r) => { done++; return r; }));
  await settle(300);
  return { reader, reads, writes, writesDone: () => done };
}

describe('READ data in flight is not changed by a later WRITE', () => {
  it('a stalled reader gets the blocks as they were; the overlapping writes finish once it has read them', async () => {
    const { reader, reads, writes, writesDone } = await stalledReader();
    expect(writesDone()).toBeLessThan(PIECES); // some write is waiting for data still in flight
    reader.sock.resume();
    const got = await Promise.all(reads);
    got.forEach((r, p) => {
      expect(r.status, `read ${p}`).toBe(0);
      expect(r.data.equals(fill(0xa1)), `read ${p} returned only the old data`).toBe(true);
    });
    for (const w of await Promise.all(writes)) expect(w.status).toBe(0);
    const after = await reader.scsi(0, cdb16(0x88, (PIECES - 1) * BLOCKS, BLOCKS), { read: PIECE });
    expect(after.data.equals(fill(0xb2))).toBe(true);
  }, 30_000);

  it('the writes also finish when the stalled reader disconnects instead', async () => {
    const { reader, reads, writes } = await stalledReader();
    const outcome = Promise.allSettled(reads);
    reader.sock.destroy();
    for (const w of await Promise.all(writes)) expect(w.status).toBe(0);
    expect((await outcome).every((o) => o.status === 'rejected')).toBe(true); // none was answered
  }, 30_000);

  it('a stalled reader does not hold writers past holdBreak.ms: they finish, and it still reads the old blocks', async () => {
    holdBreak.ms = 200;
    const poolBefore = memoryPool.used;
    const { reader, reads, writes } = await stalledReader();
    const t0 = Date.now();
    for (const w of await Promise.all(writes)) expect(w.status).toBe(0);
    expect(Date.now() - t0).toBeLessThan(3000);
    // The old memory of the blocks still queued for the reader is kept aside, on top of the LU's.
    const store = rig.h!.scsi.luns.get(0)!.store;
    const kept = memoryPool.used - poolBefore - store.allocatedBytes!();
    expect(kept).toBeGreaterThan(0);
    // The reader has not read a byte since; what it gets now is what the READs saw.
    reader.sock.resume();
    const got = await Promise.all(reads);
    got.forEach((r, p) => expect(r.data.equals(fill(0xa1)), `read ${p} returned only the old data`).toBe(true));
    const after = await reader.scsi(0, cdb16(0x88, (PIECES - 1) * BLOCKS, BLOCKS), { read: PIECE });
    expect(after.data.equals(fill(0xb2))).toBe(true);
    // Once the old data has left, that memory is given back.
    expect(memoryPool.used - poolBefore).toBe(store.allocatedBytes!());
  }, 30_000);

  it('a reader that goes silent is dropped by the NOP-In ping, which frees the writes', async () => {
    holdBreak.ms = 60_000; // this test is about the drop, not the copy-on-write
    const { reader, reads, writes } = await stalledReader({ nopInterval: 1, nopTimeout: 1 });
    const t0 = Date.now();
    for (const w of await Promise.all(writes)) expect(w.status).toBe(0);
    expect(Date.now() - t0).toBeLessThan(6000); // ~1 s idle + 1 s for the answer, then the drop
    reader.sock.resume(); // let the helper see what arrived before the drop, and the close
    const got = await Promise.allSettled(reads);
    expect(got.some((o) => o.status === 'rejected')).toBe(true);
    for (const o of got) if (o.status === 'fulfilled') expect(o.value.data.equals(fill(0xa1))).toBe(true);
  }, 30_000);
});
