/**
 * COMPARE AND WRITE atomicity end to end (SBC-4 §5.3): eight iSCSI sessions over two portals
 * each run N read-increment-ATS loops on one counter block (retrying on MISCOMPARE), with plain
 * WRITEs to random neighbouring blocks in between. The counter must end at exactly 8 × N, and
 * every neighbour must hold its owner's last write.
 *
 * N: 1000 on the memory store (ATS_N overrides; about 10 s on a shared 2-core machine), 150 on
 * the file store, whose every read, compare and write is a separate await.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FileStore } from '../../src/store/file.ts';
import { MemoryStore } from '../../src/store/memory.ts';
import type { BackingStore } from '../../src/store/store.ts';
import { TestInitiator } from '../helpers/initiator.ts';
import { caw16, cdb16 } from '../helpers/cdb.ts';
import { perTestRig, startTarget, TARGET } from './harness.ts';

const BS = 512;
const SESSIONS = 8;
const COUNTER = 100;
/** Each session owns one neighbour on each side band: COUNTER-8..-1 and COUNTER+1..+8. */
const neighbours = (s: number) => [COUNTER - 1 - s, COUNTER + 1 + s];

const counterBlock = (v: number) => { const b = Buffer.alloc(BS); b.writeBigUInt64BE(BigInt(v)); b.write('arraysim-ats', 16); return b; };
const stamp = (s: number, i: number) => { const b = Buffer.alloc(BS, 0x5a); b.writeUInt32BE(s, 0); b.writeUInt32BE(i, 4); return b; };

const rig = perTestRig();
const sessions = rig.sessions;

async function run(store: BackingStore, perSession: number): Promise<{ misses: number }> {
  const h = (rig.h = await startTarget({ portals: 2, store }));
  for (let s = 0; s < SESSIONS; s++) {
    const i = await TestInitiator.connect(h.ports[s % 2]);
    i.isid = Buffer.from([0x80, 0x00, 0x00, 0x00, 0xa7, s]);
    await i.login(TARGET);
    sessions.push(i);
  }
  const first = sessions[0];
  // Clear the unit attentions of the new nexuses (SAM-5 §5.14) with TEST UNIT READY.
  for (const i of sessions) await i.scsi(0, Buffer.alloc(6));
  expect((await first.scsi(0, cdb16(0x8a, COUNTER, 1), { write: counterBlock(0) })).status).toBe(0);

  let misses = 0;
  const last = new Map<number, Buffer>();
  await Promise.all(sessions.map(async (ini, s) => {
    for (let n = 0; n < perSession; n++) {
      for (;;) {
        const r = await ini.scsi(0, cdb16(0x88, COUNTER, 1), { read: BS });
        expect(r.status).toBe(0);
        const cur = r.data;
        // A plain WRITE to a random neighbour of the counter, between the read and the ATS.
        const nb = neighbours(s)[Math.floor(Math.random() * 2)];
        const data = stamp(s, n);
        expect((await ini.scsi(0, cdb16(0x8a, nb, 1), { write: data })).status).toBe(0);
        last.set(nb, data);
        const next = counterBlock(Number(cur.readBigUInt64BE(0)) + 1);
        const c = await ini.scsi(0, caw16(COUNTER, 1), { write: Buffer.concat([cur, next]) });
        if (c.status === 0) break;
        // CHECK CONDITION, MISCOMPARE / MISCOMPARE DURING VERIFY OPERATION: someone got there first.
        expect(c.status).toBe(0x02);
        expect([c.sense![2] & 0x0f, c.sense![12], c.sense![13]]).toEqual([0x0e, 0x1d, 0x00]);
        misses++;
      }
    }
  }));

  const final = await first.scsi(0, cdb16(0x88, COUNTER - SESSIONS, 2 * SESSIONS + 1), { read: (2 * SESSIONS + 1) * BS });
  const block = (lba: number) => final.data.subarray((lba - COUNTER + SESSIONS) * BS, (lba - COUNTER + SESSIONS + 1) * BS);
  expect(block(COUNTER).equals(counterBlock(SESSIONS * perSession))).toBe(true);
  for (const [lba, data] of last) expect(block(lba).equals(data)).toBe(true);
  return { misses };
}

describe('COMPARE AND WRITE atomicity: 8 sessions over 2 portals, one counter block', () => {
  it('memory store: the counter ends at exactly 8 × N, neighbours intact', async () => {
    const n = Number(process.env.ATS_N ?? 1000);
    const { misses } = await run(new MemoryStore(1n << 21n), n);
    // Contention is real: with 8 sessions on one block, some ATS must have lost a race.
    expect(misses).toBeGreaterThan(0);
  }, 120_000);

  it('file store: the counter ends at exactly 8 × N, neighbours intact', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'arraysim-ats-int-'));
    const store = await FileStore.open(join(dir, 'lun.img'), { sizeBytes: 16 << 20 });
    try {
      await run(store, Number(process.env.ATS_FILE_N ?? 150));
    } finally {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
