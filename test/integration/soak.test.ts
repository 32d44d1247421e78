/**
 * Soak: six sessions over two portals (three with CRC32C header and data digests) run a mix of
 * commands against one thin memory LU for SECONDS, while connections are cut in the middle of
 * commands and the sessions come back by reinstatement (same ISID). What must hold throughout:
 *
 * - no acknowledged write is lost: every block of every session's region equals a model that
 *   took each GOOD write (WRITE 10/16 with immediate data or R2T, WRITE SAME, UNMAP, COMPARE AND
 *   WRITE) into account;
 * - a command cut off with its connection ran whole or not at all: its range afterwards is all
 *   "before" or all "after" (a command executes only once all its data is in, and the stores
 *   apply it in one step);
 * - the shared COMPARE AND WRITE counter, incremented by every session, ends between the count
 *   of acknowledged increments and that count plus the increments whose answer was lost;
 * - a WRITE that ABORT TASK answered "Function complete" for gets no answer, and ran whole or
 *   not at all; one it answered "Task does not exist" for completes normally;
 * - nothing hangs (every command is answered within the test initiator's 10 s), and once every
 *   session has logged out the LU holds no range lock entries, and neither the server nor the
 *   SCSI target keeps a session or I_T nexus.
 *
 * Regions are 2,112 blocks each (not a multiple of the memory store's 1 MiB chunk), so sessions
 * share chunks. The same run goes on the sparse file store for half as long: there every read,
 * compare and write is a separate await. ARRAYSIM_SOAK_SECONDS sets the memory run's length
 * (default 12 s).
 */
import { randomFillSync } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FileStore } from '../../src/store/file.ts';
import { MemoryStore, memoryPool } from '../../src/store/memory.ts';
import type { BackingStore } from '../../src/store/store.ts';
import { rangeLockOf } from '../../src/scsi/range-lock.ts';
import { TestInitiator } from '../helpers/initiator.ts';
import type { ScsiResult } from '../helpers/initiator.ts';
import { caw16, cdb10, cdb16, unmapCdb, unmapParameterList } from '../helpers/cdb.ts';
import { perTestRig, startTarget, TARGET } from './harness.ts';

const SECONDS = Number(process.env.ARRAYSIM_SOAK_SECONDS ?? 12);
const BS = 512;
const WORKERS = 6;
const REGION = 2112;
const FIRST = 64; // LBAs 0..63: the shared counter (LBA 8) and nobody's region
const COUNTER = 8;
const QD = 4;

const rig = perTestRig();

interface Op {
  lba: number; // region-relative
  blocks: number;
  /** The region's content of the range before the command (write-type commands). */
  before?: Buffer;
  /** What the range holds if the command ran. */
  after?: Buffer;
  /** An increment of the shared counter. */
  ats?: boolean;
}

interface Worker {
  id: number;
  port: number;
  isid: Buffer<ArrayBuffer>;
  ini: TestInitiator;
  base: number;
  model: Buffer;
  inflight: Set<Op>;
  uncertain: Op[];
  atsAcked: number;
  atsUncertain: number;
  /** The connection is being cut: start nothing new (a new command could overlap a cut-off one). */
  cutting: boolean;
  counts: Record<string, number>;
}

const rnd = (n: number): number => Math.floor(Math.random() * n);
const isClosed = (e: unknown): boolean => /connection closed/.test((e as Error).message);
const senseKeyAsc = (r: ScsiResult): [number, number] => [r.sense![2] & 0x0f, r.sense![12]];

async function connect(w: Worker): Promise<void> {
  const ini = await TestInitiator.connect(w.port);
  ini.isid = w.isid;
  // FirstBurstLength 64 KiB: writes above 128 blocks take the R2T path. Odd sessions use
  // header and data digests.
  const digest = w.id % 2 === 1 ? 'CRC32C' : 'None';
  await ini.login(TARGET, {
    InitialR2T: 'No', FirstBurstLength: '65536', MaxBurstLength: '262144', HeaderDigest: digest, DataDigest: digest,
  }, `iqn.2026-11.dev.arraysim:soak-${w.id}`);
  expect(ini.dataDigest).toBe(digest === 'CRC32C');
  w.ini = ini;
  rig.sessions.push(ini);
  // A new I_T nexus starts with a power-on/reset unit attention.
  for (let k = 0; k < 4; k++) if ((await ini.scsi(0, Buffer.alloc(6))).status === 0) return;
  throw new Error('unit attentions do not clear');
}

/** One command chosen at random on a range that overlaps nothing in flight. */
async function oneOp(w: Worker): Promise<void> {
  if (w.cutting || w.ini.closed) return;
  const kind = ['write', 'write', 'read', 'read', 'writesame', 'unmap', 'caw', 'ats', 'abort'][rnd(9)];
  const max = kind === 'write' || kind === 'abort' ? 300 : kind === 'caw' ? 1 : 200;
  let blocks = 1 + rnd(max);
  let lba = rnd(REGION - blocks);
  const clash = (o: Op) => lba < o.lba + o.blocks && o.lba < lba + blocks;
  // Ranges of commands whose outcome is not settled yet (cut off, aborted) stay off limits too.
  for (let tries = 0; [...w.inflight, ...w.uncertain].some(clash); tries++) {
    if (tries > 20) return;
    blocks = 1 + rnd(Math.min(max, 16));
    lba = rnd(REGION - blocks);
  }
  const abs = w.base + lba;
  const range = (b: Buffer) => b.subarray(lba * BS, (lba + blocks) * BS);
  const op: Op = kind === 'ats' ? { lba: -1, blocks: 0, ats: true } : { lba, blocks };
  if (kind !== 'read' && kind !== 'ats') op.before = Buffer.from(range(w.model));
  w.inflight.add(op);
  const ini = w.ini;
  try {
    switch (kind) {
      case 'write': {
        const data = randomFillSync(Buffer.allocUnsafe(blocks * BS));
        op.after = data;
        const cdb = rnd(2) ? cdb10(0x2a, abs, blocks) : cdb16(0x8a, abs, blocks);
        expect((await ini.scsi(0, cdb, { write: data })).status).toBe(0);
        data.copy(w.model, lba * BS);
        break;
      }
      case 'abort': {
        // A WRITE (often one that takes R2Ts) and, a moment later, ABORT TASK for it. Function
        // complete: no answer may follow and the write ran whole or not at all (settled later);
        // Task does not exist: it completed, and its answer comes as usual.
        const data = randomFillSync(Buffer.allocUnsafe(blocks * BS));
        op.after = data;
        let task: [number, number] | undefined;
        const wp = ini.scsi(0, cdb16(0x8a, abs, blocks), { write: data, onTask: (itt, sn) => { task = [itt, sn]; } });
        wp.catch(() => {}); // handled below
        await new Promise((r) => setTimeout(r, rnd(3)));
        const t = await ini.tmf(1, 0, task![0], task![1]);
        if (t) {
          expect([0, 1], 'ABORT TASK response').toContain(t.bhs[2]);
          if (t.bhs[2] === 0) { ini.abandon(task![0]); w.counts.aborted = (w.counts.aborted ?? 0) + 1; }
        }
        expect((await wp).status).toBe(0);
        data.copy(w.model, lba * BS);
        break;
      }
      case 'read': {
        const r = await ini.scsi(0, cdb16(0x88, abs, blocks), { read: blocks * BS });
        expect(r.status).toBe(0);
        expect(r.data.equals(range(w.model)), `worker ${w.id} read ${lba}+${blocks}`).toBe(true);
        break;
      }
      case 'writesame': {
        const block = Buffer.alloc(BS, 0x30 + w.id);
        block.writeUInt32BE(rnd(1 << 30), 0);
        op.after = Buffer.alloc(blocks * BS);
        for (let k = 0; k < blocks; k++) block.copy(op.after, k * BS);
        expect((await ini.scsi(0, cdb16(0x93, abs, blocks), { write: block })).status).toBe(0);
        op.after.copy(w.model, lba * BS);
        break;
      }
      case 'unmap': {
        // Thin memory LU: LBPRZ=1, unmapped blocks read as zeros.
        op.after = Buffer.alloc(blocks * BS);
        const p = unmapParameterList([[abs, blocks]]);
        expect((await ini.scsi(0, unmapCdb(p.length), { write: p })).status).toBe(0);
        op.after.copy(w.model, lba * BS);
        break;
      }
      case 'caw': {
        // Half of them compare against the wrong data: MISCOMPARE, and the block keeps its content.
        const wrong = rnd(2) === 0;
        const verify = Buffer.from(range(w.model));
        if (wrong) verify[rnd(BS)] ^= 0xff;
        const data = randomFillSync(Buffer.allocUnsafe(BS));
        op.after = wrong ? op.before : data;
        const r = await ini.scsi(0, caw16(abs, 1), { write: Buffer.concat([verify, data]) });
        if (wrong) {
          expect(r.status).toBe(2);
          expect(senseKeyAsc(r)).toEqual([0x0e, 0x1d]);
        } else {
          expect(r.status).toBe(0);
          data.copy(w.model, lba * BS);
        }
        break;
      }
      case 'ats': {
        const cur = await ini.scsi(0, cdb16(0x88, COUNTER, 1), { read: BS });
        expect(cur.status).toBe(0);
        const next = Buffer.alloc(BS);
        next.writeBigUInt64BE(cur.data.readBigUInt64BE(0) + 1n);
        const r = await ini.scsi(0, caw16(COUNTER, 1), { write: Buffer.concat([cur.data, next]) });
        if (r.status === 0) w.atsAcked++;
        else expect(senseKeyAsc(r)).toEqual([0x0e, 0x1d]);
        break;
      }
    }
    w.counts[kind] = (w.counts[kind] ?? 0) + 1;
  } catch (e) {
    if ((e as Error).message === 'task aborted' && op.after) { w.uncertain.push(op); return; }
    if (!isClosed(e) || !w.ini.closed) throw e;
    // The connection was cut under this command: it ran whole or not at all.
    if (op.ats) w.atsUncertain++;
    else if (op.after) w.uncertain.push(op);
  } finally {
    w.inflight.delete(op);
  }
}

/** After a reconnect: each command cut off left its range all before or all after. */
async function settle(w: Worker): Promise<void> {
  for (const op of w.uncertain.splice(0)) {
    const r = await w.ini.scsi(0, cdb16(0x88, w.base + op.lba, op.blocks), { read: op.blocks * BS });
    expect(r.status).toBe(0);
    const ran = r.data.equals(op.after!);
    expect(ran || r.data.equals(op.before!), `worker ${w.id}: cut-off command on ${op.lba}+${op.blocks} left a mix`).toBe(true);
    (ran ? op.after! : op.before!).copy(w.model, op.lba * BS);
    w.counts.cutOff = (w.counts.cutOff ?? 0) + 1;
  }
}

async function runWorker(w: Worker, until: number): Promise<void> {
  while (Date.now() < until) {
    // A burst of QD commands in flight; in one burst of five the connection is cut under them.
    const cut = rnd(5) === 0;
    const burst = Array.from({ length: QD }, () => oneOp(w).then(() => oneOp(w)));
    if (cut) burst.push(new Promise((r) => setTimeout(() => { w.cutting = true; w.ini.sock.destroy(); r(); }, rnd(4))));
    await Promise.all(burst);
    if (w.cutting || w.ini.closed) {
      await w.ini.waitClosed();
      w.cutting = false;
      w.counts.reconnects = (w.counts.reconnects ?? 0) + 1;
      await connect(w);
    }
    await settle(w); // cut-off and aborted commands

  }
}

const TOTAL_BLOCKS = FIRST + WORKERS * REGION;

async function soak(store: BackingStore, seconds: number): Promise<void> {
  const h = (rig.h = await startTarget({ portals: 2, store }));
  const workers: Worker[] = [];
  for (let id = 0; id < WORKERS; id++) {
    const w: Worker = {
      id, port: h.ports[id % 2], isid: Buffer.from([0x80, 0, 0, 0, 0x50, id]), ini: undefined as unknown as TestInitiator,
      base: FIRST + id * REGION, model: Buffer.alloc(REGION * BS), inflight: new Set(), uncertain: [],
      atsAcked: 0, atsUncertain: 0, cutting: false, counts: {},
    };
    await connect(w);
    workers.push(w);
  }
  const until = Date.now() + seconds * 1000;
  await Promise.all(workers.map((w) => runWorker(w, until)));

  for (const w of workers) {
    const r = await w.ini.scsi(0, cdb16(0x88, w.base, REGION), { read: REGION * BS });
    expect(r.status).toBe(0);
    for (let b = 0; b < REGION; b++) {
      if (!r.data.subarray(b * BS, (b + 1) * BS).equals(w.model.subarray(b * BS, (b + 1) * BS))) {
        throw new Error(`worker ${w.id}: block ${b} differs from the model`);
      }
    }
  }
  const counter = Number((await workers[0].ini.scsi(0, cdb16(0x88, COUNTER, 1), { read: BS })).data.readBigUInt64BE(0));
  const acked = workers.reduce((n, w) => n + w.atsAcked, 0);
  const lost = workers.reduce((n, w) => n + w.atsUncertain, 0);
  expect(counter).toBeGreaterThanOrEqual(acked);
  expect(counter).toBeLessThanOrEqual(acked + lost);

  // Every kind of command ran, and connections were cut under commands in flight.
  const total = (k: string) => workers.reduce((n, w) => n + (w.counts[k] ?? 0), 0);
  for (const k of ['write', 'read', 'writesame', 'unmap', 'caw', 'ats', 'abort', 'aborted', 'reconnects']) expect(total(k), k).toBeGreaterThan(0);
  const label: Record<string, string> = { abort: 'abort after completion', aborted: 'aborted' };
  console.log(`soak ${store.kind} ${seconds} s: ${['write', 'read', 'writesame', 'unmap', 'caw', 'ats', 'abort', 'aborted', 'reconnects', 'cutOff'].map((k) => `${label[k] ?? k} ${total(k)}`).join(', ')}; counter ${counter} (acked ${acked}, answers lost ${lost})`);

  for (const w of workers) await w.ini.logout();
  for (let k = 0; k < 50 && h.server.sessions.size > 0; k++) await new Promise((r) => setTimeout(r, 20));
  expect(h.server.sessions.size).toBe(0);
  expect(h.scsi.nexuses.size).toBe(0);
  expect(rangeLockOf(h.scsi.luns.get(0)!).size).toBe(0);
}

describe('soak: mixed commands, cut connections, reinstated sessions', () => {
  it(`memory store, ${WORKERS} sessions for ${SECONDS} s: no acknowledged write lost, nothing half-done, nothing left held`, async () => {
    const store = new MemoryStore(BigInt(TOTAL_BLOCKS), { blockSize: BS });
    await soak(store, SECONDS);
    expect(store.allocatedBytes()).toBeLessThanOrEqual(memoryPool.used);
  }, (SECONDS + 60) * 1000);

  it(`file store, ${WORKERS} sessions for ${SECONDS / 2} s: the same`, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'arraysim-soak-'));
    const store = await FileStore.open(join(dir, 'lun.img'), { sizeBytes: TOTAL_BLOCKS * BS });
    try {
      await soak(store, SECONDS / 2);
    } finally {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }, (SECONDS + 60) * 1000);
});
