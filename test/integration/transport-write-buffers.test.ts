/**
 * Large writes are read straight into recycled receive buffers (src/iscsi/socket-read.ts,
 * buffer-pool.ts). A buffer may only be reused once the store has taken the data: this runs
 * pipelined 128 KiB writes, whole in their command PDU and split over Data-Out, against a store
 * that copies the data only some milliseconds after write() is called, and reads every block back.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestInitiator } from '../helpers/initiator.ts';
import { startTarget, TARGET } from './harness.ts';
import type { Harness } from './harness.ts';
import type { BackingStore } from '../../src/store/store.ts';

const BLOCK = 512;
const IO = 128 * 1024;
const IOS = 24;

/** Asynchronous like the file store: write() reads `data` late, after other PDUs came in. */
function lateCopyStore(blocks: number): BackingStore {
  const mem = Buffer.alloc(blocks * BLOCK);
  return {
    blockSize: BLOCK, blockCount: BigInt(blocks), kind: 'file', thin: false,
    read: (lba, n) => mem.subarray(Number(lba) * BLOCK, (Number(lba) + n) * BLOCK),
    write: (lba, data) => new Promise<void>((resolve) => setTimeout(() => { data.copy(mem, Number(lba) * BLOCK); resolve(); }, 3)),
    flush: () => {},
    close: () => {},
  };
}

const pattern = (k: number) => Buffer.alloc(IO, (k * 37 + 11) & 0xff);

describe('recycled receive buffers', () => {
  let h: Harness;
  beforeAll(async () => { h = await startTarget({ store: lateCopyStore((IOS * IO) / BLOCK) }); });
  afterAll(async () => { await h.close(); });

  it.each([
    ['whole in the command PDU', { ImmediateData: 'Yes', InitialR2T: 'No', FirstBurstLength: '262144' }],
    ['over R2T-solicited Data-Out', { ImmediateData: 'No', InitialR2T: 'Yes', MaxRecvDataSegmentLength: '65536' }],
  ])('keep pipelined 128 KiB writes apart (%s)', async (_name, keys) => {
    const i = await TestInitiator.connect(h.port);
    i.isid = Buffer.from([0x80, 0, 0, 4, Math.floor(Math.random() * 255), Math.floor(Math.random() * 255)]);
    await i.login(TARGET, { MaxBurstLength: '262144', ...keys });
    await i.scsi(0, [0, 0, 0, 0, 0, 0]);
    const blocks = IO / BLOCK;
    // Staggered by less than the store's copy delay: later commands take buffers while earlier
    // writes are still waiting to be copied.
    const writes: Promise<{ status: number }>[] = [];
    for (let k = 0; k < IOS; k++) {
      const lba = k * blocks;
      const cdb = [0x2a, 0, (lba >> 24) & 0xff, (lba >> 16) & 0xff, (lba >> 8) & 0xff, lba & 0xff, 0, blocks >> 8, blocks & 0xff, 0];
      writes.push(i.scsi(0, cdb, { write: pattern(k) }));
      if (k % 3 === 2) await new Promise((r) => setTimeout(r, 1));
    }
    for (const w of await Promise.all(writes)) expect(w.status).toBe(0);
    // The target read this connection into its own buffers (src/iscsi/socket-read.ts).
    expect([...h.server.connections].every((c) => c.userBufferReads)).toBe(true);
    for (let k = 0; k < IOS; k++) {
      const lba = k * blocks;
      const r = await i.scsi(0, [0x28, 0, (lba >> 24) & 0xff, (lba >> 16) & 0xff, (lba >> 8) & 0xff, lba & 0xff, 0, blocks >> 8, blocks & 0xff, 0], { read: IO });
      expect(r.data.equals(pattern(k)), `write ${k}`).toBe(true);
    }
    i.close();
  });
});
