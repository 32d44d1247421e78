/**
 * MemoryStore's copy-on-write sharing against a model, over seeded random sequences: two thin
 * stores (production and replica, tiny 4 KiB chunks so a run is thousands of steps) written,
 * unmapped, WRITE SAME'd, their chunks shared (a journal record), cloned within and across stores
 * (an EXTENDED COPY of a whole chunk: share, adopt, let go), adopted from a held record (a replica
 * applying it), and views of them detached (a READ still being sent). After every step each store
 * reads as the model says and every holder (record or view) still shows what it was given. The
 * splitter soak once found a case this did not cover (a chunk adopting another chunk of its own
 * store): memory-share.test.ts has it as a named case; this looks for the next one.
 * ARRAYSIM_SHARE_FUZZ_SEEDS sets how many seeds (default 12).
 */
import { describe, expect, it } from 'vitest';
import { seededRandom } from '../../src/replication/link-faults.ts';
import { MemoryStore, memoryPool, releaseShared } from '../../src/store/memory.ts';

const BS = 512;
const CHUNK = 4096;
const BPC = CHUNK / BS; // blocks per chunk
const CHUNKS = 6;
const BLOCKS = CHUNKS * BPC;
const SEEDS = Number(process.env.ARRAYSIM_SHARE_FUZZ_SEEDS) || 12;
const STEPS = 3000;

interface Holder { buf: Buffer; want: Buffer; release: () => void; what: string }

function run(seed: number): void {
  const rnd = seededRandom(seed);
  const int = (n: number) => Math.floor(rnd() * n);
  const poolBefore = memoryPool.used;
  const stores = [0, 1].map(() => new MemoryStore(BigInt(BLOCKS), { chunkBytes: CHUNK }));
  const model = stores.map(() => Buffer.alloc(BLOCKS * BS));
  const holders: Holder[] = [];
  const log: string[] = [];
  const value = () => (int(4) === 0 ? 0 : 1 + int(255)); // zeros a quarter of the time: the freeing paths
  const chunkRange = (ci: number): [number, number] => [ci * CHUNK, (ci + 1) * CHUNK];
  const share = (s: number, ci: number, what: string): Holder | null => {
    const buf = stores[s].share(BigInt(ci * BPC), BPC);
    if (!buf) return null;
    const h = { buf, want: Buffer.from(model[s].subarray(...chunkRange(ci))), release: () => releaseShared(buf), what };
    return h;
  };

  for (let step = 0; step < STEPS; step++) {
    const s = int(2);
    const st = stores[s];
    const m = model[s];
    switch (int(9)) {
      case 0: { // a write of 1-12 blocks, maybe across chunks
        const n = 1 + int(12);
        const lba = int(BLOCKS - n + 1);
        const data = Buffer.alloc(n * BS, value());
        st.write(BigInt(lba), data);
        data.copy(m, lba * BS);
        log.push(`write s${s} ${lba}+${n} =${data[0]}`);
        break;
      }
      case 1: { // a whole chunk (zeros free it)
        const ci = int(CHUNKS);
        const data = Buffer.alloc(CHUNK, value());
        st.write(BigInt(ci * BPC), data);
        data.copy(m, ci * CHUNK);
        log.push(`write chunk s${s} c${ci} =${data[0]}`);
        break;
      }
      case 2: { // UNMAP or WRITE SAME over 1-16 blocks
        const n = 1 + int(16);
        const lba = int(BLOCKS - n + 1);
        if (int(2) === 0) {
          st.unmap(BigInt(lba), n);
          m.fill(0, lba * BS, (lba + n) * BS);
          log.push(`unmap s${s} ${lba}+${n}`);
        } else {
          const v = value();
          st.writeSame(BigInt(lba), n, Buffer.alloc(BS, v), false);
          m.fill(v, lba * BS, (lba + n) * BS);
          log.push(`writesame s${s} ${lba}+${n} =${v}`);
        }
        break;
      }
      case 3: { // a journal record holds a chunk
        const ci = int(CHUNKS);
        const h = share(s, ci, `record of s${s} c${ci} at step ${step}`);
        if (h) holders.push(h);
        log.push(`share s${s} c${ci}${h ? '' : ' (none)'}`);
        break;
      }
      case 4:
      case 5: { // EXTENDED COPY of a whole chunk, within one store or across: cloned
        const from = int(CHUNKS);
        const d = int(2);
        const to = int(CHUNKS);
        const h = share(s, from, `xcopy s${s} c${from}`);
        if (!h) break;
        stores[d].write(BigInt(to * BPC), h.buf);
        h.want.copy(model[d], to * CHUNK);
        // Sometimes the record keeps it (the journal), else the copy lets go at once.
        if (int(2) === 0) { h.what = `record of xcopy s${s} c${from} -> s${d} c${to} at step ${step}`; holders.push(h); } else h.release();
        log.push(`xcopy s${s} c${from} -> s${d} c${to}`);
        break;
      }
      case 6: { // a held record applied to a store (a replica adopts it)
        if (!holders.length) break;
        const h = holders[int(holders.length)];
        if (h.buf.length !== CHUNK || !h.what.startsWith('record')) break;
        const to = int(CHUNKS);
        st.write(BigInt(to * BPC), h.buf);
        h.want.copy(m, to * CHUNK);
        log.push(`apply (${h.what}) to s${s} c${to}`);
        break;
      }
      case 7: { // a READ's view, detached (still being sent)
        const n = 1 + int(BPC);
        const ci = int(CHUNKS);
        const lba = ci * BPC + int(BPC - n + 1);
        const view = st.read(BigInt(lba), n) as Buffer;
        const done = st.detach(BigInt(lba), n, view);
        expect(done, 'the pool has room').not.toBeNull();
        holders.push({ buf: view, want: Buffer.from(m.subarray(lba * BS, (lba + n) * BS)), release: done!, what: `view s${s} ${lba}+${n} at step ${step}` });
        log.push(`view s${s} ${lba}+${n}`);
        break;
      }
      default: { // a holder lets go
        if (!holders.length) break;
        const [h] = holders.splice(int(holders.length), 1);
        h.release();
        log.push(`release (${h.what})`);
      }
    }
    for (const h of holders) {
      if (!h.buf.equals(h.want)) throw new Error(`seed ${seed} step ${step}: ${h.what} changed under its holder; last steps:\n${log.slice(-12).join('\n')}`);
    }
    stores.forEach((x, i) => {
      if (!(x.read(0n, BLOCKS) as Buffer).equals(model[i])) throw new Error(`seed ${seed} step ${step}: store ${i} differs from the model; last steps:\n${log.slice(-12).join('\n')}`);
    });
  }
  for (const h of holders.splice(0)) h.release();
  for (const x of stores) x.close();
  expect(memoryPool.used, `seed ${seed}: the pool balances`).toBe(poolBefore);
}

describe('MemoryStore sharing against a model', () => {
  it(`${SEEDS} seeded runs of ${STEPS} steps: every store and every holder sees what it should`, () => {
    for (let seed = 1; seed <= SEEDS; seed++) run(seed);
  }, 20_000 + SEEDS * 1000);
});
