/**
 * The read map of virtual access (src/splitter/image-map.ts) against a per-block model: random
 * overlapping undo entries (some with deallocated pieces, some spanning two pieces, two sets),
 * and for every block the model's answer is the oldest entry covering it. The map's fill() must
 * give the same bytes. Negative control: the same check against a map built with the entries in
 * the wrong order (newest first, so the newest entry wins) finds differences. Also the sparse
 * BlockSet of the overlay against a Set.
 */
import { describe, expect, it } from 'vitest';
import { BlockSet, buildReadMaps } from '../../src/splitter/image-map.ts';
import { PieceColumns, UndoStream } from '../../src/splitter/undo.ts';
import type { UndoEntry, UndoPiece } from '../../src/splitter/undo.ts';
import { seededRandom as rng } from '../../src/replication/link-faults.ts';

const BS = 8; // tiny blocks: the bytes of a block name the entry and piece it came from
const VOLUME = 4096;

function piece(lba: number, blocks: number, tag: number | null): UndoPiece {
  if (tag === null) return { lba: BigInt(lba), blocks, data: null };
  const data = Buffer.alloc(blocks * BS);
  for (let b = 0; b < blocks; b++) { data.writeUInt32LE(tag, b * BS); data.writeUInt32LE(lba + b, b * BS + 4); }
  return { lba: BigInt(lba), blocks, data };
}

function entries(seed: number, n: number, maxBlocks: number): UndoEntry[] {
  const r = rng(seed);
  const out: UndoEntry[] = [];
  for (let seq = 1; seq <= n; seq++) {
    const blocks = 1 + Math.floor(r() * maxBlocks);
    const lba = Math.floor(r() * (VOLUME - blocks));
    const set = Math.floor(r() * 2);
    const pieces: UndoPiece[] = [];
    if (blocks > 1 && r() < 0.3) {
      // A record over an allocated and a deallocated run: two pieces.
      const cut = 1 + Math.floor(r() * (blocks - 1));
      pieces.push(piece(lba, cut, seq), piece(lba + cut, blocks - cut, null));
    } else pieces.push(piece(lba, blocks, r() < 0.2 ? null : seq));
    out.push({ seq, set, pieces, bytes: 0 });
  }
  return out;
}

/** Per block, what the image holds: replica bytes (0xee) unless the oldest entry covering it says otherwise. */
function model(es: UndoEntry[], set: number): Buffer {
  const out = Buffer.alloc(VOLUME * BS, 0xee);
  const done = new Uint8Array(VOLUME);
  for (const e of es) {
    if (e.set !== set) continue;
    for (const p of e.pieces) {
      for (let b = Number(p.lba); b < Number(p.lba) + p.blocks; b++) {
        if (done[b]) continue;
        done[b] = 1;
        const o = b * BS;
        if (p.data) p.data.copy(out, o, (b - Number(p.lba)) * BS, (b - Number(p.lba) + 1) * BS);
        else out.fill(0, o, o + BS);
      }
    }
  }
  return out;
}

/** The entries' pieces as the undo stream indexes them, in the order given. */
function columns(es: UndoEntry[]): PieceColumns {
  const c = new PieceColumns();
  for (const e of es) for (const p of e.pieces) c.push(e.seq, e.set, p);
  return c;
}

/** The image through the map, read in random-sized pieces (fill() at every offset and length). */
function throughMap(es: UndoEntry[], set: number, seed: number): Buffer {
  const map = buildReadMaps(columns(es), 0, 2)[set];
  const out = Buffer.alloc(VOLUME * BS, 0xee);
  const r = rng(seed ^ 0x5eed);
  for (let at = 0; at < VOLUME;) {
    const n = Math.min(VOLUME - at, 1 + Math.floor(r() * 97));
    map.fill(at, n, out.subarray(at * BS, (at + n) * BS), BS);
    at += n;
  }
  return out;
}

describe('virtual access read map', () => {
  for (const [seed, n, maxBlocks] of [[1, 50, 8], [2, 2000, 64], [3, 20000, 3], [4, 300, 1024]] as const) {
    it(`seed ${seed}: ${n} overlapping entries of up to ${maxBlocks} blocks, two sets: each block from the oldest entry covering it`, () => {
      const es = entries(seed, n, maxBlocks);
      for (const set of [0, 1]) {
        const want = model(es, set);
        const got = throughMap(es, set, seed);
        expect(got.equals(want), `seed ${seed} set ${set}`).toBe(true);
      }
    });
  }

  it('negative control: entries handed newest first (the newest would win) give a different image', () => {
    const es = entries(2, 2000, 64);
    const wrong = [...es].reverse();
    expect(throughMap(wrong, 0, 2).equals(model(es, 0))).toBe(false);
  });

  it('from an undo stream after dropBefore, truncateAfter and its columns\' compaction: the entries in (after, last] only', () => {
    const es = entries(6, 5000, 16);
    const u = new UndoStream();
    for (const e of es.slice(0, 3000)) u.push(e.seq, e.set, e.pieces);
    u.dropBefore(1000);
    for (const e of es.slice(3000)) u.push(e.seq, e.set, e.pieces); // past 4096 rows: the columns move
    u.truncateAfter(4200);
    for (const set of [0, 1]) {
      const map = buildReadMaps(u.pieces, 1500, 2)[set];
      const got = Buffer.alloc(VOLUME * BS, 0xee);
      map.fill(0, VOLUME, got, BS);
      expect(got.equals(model(es.filter((e) => e.seq > 1500 && e.seq <= 4200), set)), `set ${set}`).toBe(true);
    }
  });

  it('beyond the sort keys\' range (LBAs from 2^40: the comparator sort) the same runs', () => {
    const es = entries(7, 3000, 24);
    const far = 2 ** 41;
    const moved = es.map((e) => ({ ...e, pieces: e.pieces.map((p) => ({ ...p, lba: p.lba + BigInt(far) })) }));
    const [near, high] = [buildReadMaps(columns(es), 0, 2)[1], buildReadMaps(columns(moved), 0, 2)[1]];
    expect(high.runs).toBe(near.runs);
    expect(Array.from(high.start, (x) => x - far)).toEqual(Array.from(near.start));
    expect(Array.from(high.end, (x) => x - far)).toEqual(Array.from(near.end));
  });

  it('an empty map changes nothing; runs never overlap and are sorted', () => {
    const out = Buffer.alloc(16 * BS, 0xee);
    buildReadMaps(new PieceColumns(), 0, 1)[0].fill(0, 16, out, BS);
    expect(out.every((b) => b === 0xee)).toBe(true);
    const m = buildReadMaps(columns(entries(5, 5000, 40)), 0, 2)[0];
    for (let i = 1; i < m.runs; i++) expect(m.start[i]).toBeGreaterThanOrEqual(m.end[i - 1]);
    for (let i = 0; i < m.runs; i++) expect(m.end[i]).toBeGreaterThan(m.start[i]);
  });
});

describe('BlockSet (the overlay\'s written blocks)', () => {
  it('matches a Set of blocks, over region boundaries and whole regions', () => {
    const r = rng(9);
    const s = new BlockSet();
    const want = new Set<number>();
    const add = (lba: number, n: number) => { s.add(lba, n); for (let b = lba; b < lba + n; b++) want.add(b); };
    for (let i = 0; i < 300; i++) add(Math.floor(r() * 200_000), 1 + Math.floor(r() * 100));
    add(32768 - 5, 10); // across a region boundary
    add(65536, 32768); // one whole region
    add(65536 + 100, 10); // inside a whole region
    expect(s.size).toBe(want.size);
    for (let b = 0; b < 200_200; b += 1) if (s.has(b) !== want.has(b)) expect.fail(`block ${b}`);
    // runs() yields exactly the blocks of the set, as maximal runs.
    const seen = new Set<number>();
    let last = -2;
    s.runs(0, 200_200, (from, to) => {
      expect(from).toBeGreaterThan(last); // maximal: never adjacent to the previous run
      for (let b = from; b < to; b++) seen.add(b);
      last = to;
    });
    expect(seen.size).toBe(want.size);
  });
});
