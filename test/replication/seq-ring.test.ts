/** SeqRing (src/replication/seq-ring.ts): the primary's writes awaiting the peer, by group sequence number. */
import { describe, expect, it } from 'vitest';
import { SeqRing } from '../../src/replication/seq-ring.ts';

describe('SeqRing', () => {
  it('keeps values by sequence number through in-order and out-of-order deletes, growth and wrap-around', () => {
    const r = new SeqRing<string>();
    const model = new Map<number, string>();
    let next = 1;
    // A seeded walk (habit 17): mostly in order, sometimes out of order, up to 200 in flight.
    let x = 12345;
    const rand = () => { x = (x * 1103515245 + 12345) & 0x7fffffff; return x / 0x80000000; };
    for (let i = 0; i < 20000; i++) {
      if (model.size < 200 && (model.size === 0 || rand() < 0.52)) {
        r.set(next, `v${next}`); model.set(next, `v${next}`); next++;
      } else {
        const keys = [...model.keys()];
        const k = rand() < 0.8 ? keys[0] : keys[Math.floor(rand() * keys.length)];
        expect(r.delete(k)).toBe(true);
        model.delete(k);
        expect(r.delete(k)).toBe(false);
      }
      expect(r.size).toBe(model.size);
      if (i % 97 === 0) {
        expect([...r.entries()]).toEqual([...model.entries()]);
        for (const k of [next - 250, next - 1, next, next + 1]) expect(r.get(k)).toBe(model.get(k));
      }
    }
    r.clear();
    expect(r.size).toBe(0);
    expect([...r.entries()]).toEqual([]);
    // Numbering starts again (a new link): accepted once empty.
    r.set(1, 'again');
    expect(r.get(1)).toBe('again');
    expect(() => r.set(1, 'twice')).toThrow(RangeError);
  });
});
