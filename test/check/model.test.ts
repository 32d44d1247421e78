/**
 * The history checker (src/check/model.ts) on hand-made histories: each rule flags the history
 * built to break it (a lost write, a stale read, a wrong counter, a lost update, divergence,
 * garbage, a read from the future, a split brain), and passes the clean histories next to them,
 * including the concurrent and indeterminate cases that must not be flagged.
 */
import { describe, expect, it } from 'vitest';
import { blockOf, counterBlock, counterOf, tagOf, tagsOf, writeData } from '../../src/check/history.ts';
import type { ArrayEventRecord, HistoryEntry, SavedHistory } from '../../src/check/history.ts';
import { check, splitBrain } from '../../src/check/model.ts';

/** A tiny DSL: ops as [id, client, op, lba, blocks, invokeT, end], end = ['ok', t, value?] | ['fail', t] | null. */
type End = ['ok', number, (string[] | number)?] | ['fail', number] | null;
function ops(list: [number, string, 'write' | 'read' | 'increment', number, number, number, End, number?][]): HistoryEntry[] {
  const out: HistoryEntry[] = [];
  for (const [id, client, op, lba, blocks, t, end, seq] of list) {
    out.push({ type: 'invoke', id, t, client, site: client.startsWith('b') ? 'B' : 'A', op, lba, blocks, ...(seq !== undefined ? { seq } : {}) });
    if (end?.[0] === 'ok') out.push({ type: 'ok', id, t: end[1], ...(end[2] !== undefined ? { value: end[2] } : {}) });
    if (end?.[0] === 'fail') out.push({ type: 'fail', id, t: end[1], error: 'CHECK CONDITION ABORTED COMMAND', indeterminate: op !== 'read' });
  }
  return out.sort((x, y) => x.t - y.t);
}

function final(tags: Record<number, string>, counters: Record<number, number> = {}, differing: number[] = []): SavedHistory['final'] {
  return { tags, counters, identical: differing.length === 0, differing };
}

const kinds = (entries: HistoryEntry[], f: SavedHistory['final']) => check({ entries, final: f }).violations.map((v) => v.kind);

describe('registers: lost writes', () => {
  it('passes when the last acknowledged write is what the block holds', () => {
    const h = ops([[1, 'a', 'write', 0, 1, 0, ['ok', 10], 1], [2, 'a', 'write', 0, 1, 20, ['ok', 30], 2]]);
    expect(kinds(h, final({ 0: 'a:2' }))).toEqual([]);
  });

  it('flags a lost write: the block holds a write acknowledged before a later acknowledged one began', () => {
    const h = ops([[1, 'a', 'write', 0, 1, 0, ['ok', 10], 1], [2, 'b', 'write', 0, 1, 20, ['ok', 30], 1]]);
    expect(kinds(h, final({ 0: 'a:1' }))).toEqual(['lost-write']);
  });

  it('flags zeros where a write was acknowledged', () => {
    const h = ops([[1, 'a', 'write', 5, 2, 0, ['ok', 10], 1]]);
    expect(kinds(h, final({ 5: 'a:1', 6: 'zero' }))).toEqual(['lost-write']);
  });

  it('accepts either order for writes whose intervals overlap', () => {
    const h = ops([[1, 'a', 'write', 0, 1, 0, ['ok', 20], 1], [2, 'b', 'write', 0, 1, 10, ['ok', 30], 1]]);
    expect(kinds(h, final({ 0: 'a:1' }))).toEqual([]);
    expect(kinds(h, final({ 0: 'b:1' }))).toEqual([]);
  });

  it('treats a write that got an error as indeterminate: present or not, and possibly late', () => {
    const h = ops([[1, 'a', 'write', 0, 1, 0, ['ok', 10], 1], [2, 'b', 'write', 0, 1, 5, ['fail', 15], 1], [3, 'a', 'write', 1, 1, 0, ['fail', 3], 2]]);
    expect(kinds(h, final({ 0: 'b:1', 1: 'zero' }))).toEqual([]);
    expect(kinds(h, final({ 0: 'a:1', 1: 'a:2' }))).toEqual([]);
  });

  it('flags a block holding a write nobody made there, and a torn block', () => {
    const h = ops([[1, 'a', 'write', 0, 1, 0, ['ok', 10], 1]]);
    expect(kinds(h, final({ 0: 'a:9' }))).toEqual(['phantom']);
    expect(kinds(h, final({ 0: 'garbage:checksum' }))).toEqual(['garbage']);
  });

  it('flags arrays that differ after healing', () => {
    expect(kinds([], final({}, {}, [7, 8]))).toEqual(['divergence']);
  });
});

describe('registers: reads', () => {
  const w = ops([[1, 'a', 'write', 0, 1, 0, ['ok', 10], 1], [2, 'a', 'write', 0, 1, 20, ['ok', 30], 2]]);
  const read = (t: number, end: number, tag: string): HistoryEntry[] => ops([[9, 'b-r', 'read', 0, 1, t, ['ok', end, [tag]]]]);

  it('passes reads of the latest acknowledged write, and of a write still in flight', () => {
    expect(kinds([...w, ...read(35, 40, 'a:2')], final({ 0: 'a:2' }))).toEqual([]);
    expect(kinds([...w, ...read(25, 28, 'a:1')], final({ 0: 'a:2' }))).toEqual([]);
    expect(kinds([...w, ...read(25, 28, 'a:2')], final({ 0: 'a:2' }))).toEqual([]);
  });

  it('flags a stale read: older data after a newer write was acknowledged', () => {
    expect(kinds([...w, ...read(35, 40, 'a:1')], final({ 0: 'a:2' }))).toEqual(['stale-read']);
    expect(kinds([...w, ...read(12, 14, 'zero')], final({ 0: 'a:2' }))).toEqual(['stale-read']);
  });

  it('flags a read returning a write invoked after the read ended', () => {
    expect(kinds([...w, ...read(12, 15, 'a:2')], final({ 0: 'a:2' }))).toEqual(['future-read']);
  });

  it('flags a torn block in a read', () => {
    expect(kinds([...w, ...read(35, 40, 'garbage:block of LBA 3')], final({ 0: 'a:2' }))).toEqual(['garbage']);
  });

  it('does not judge a read that failed', () => {
    const h = [...w, ...ops([[9, 'b-r', 'read', 0, 1, 35, ['fail', 40]]])];
    expect(kinds(h, final({ 0: 'a:2' }))).toEqual([]);
  });
});

describe('ATS counters', () => {
  const inc = (id: number, t: number, end: End) => [id, 'a-ats', 'increment', 100, 1, t, end] as [number, string, 'increment', number, number, number, End];

  it('passes when the final value is the number of acknowledged increments', () => {
    expect(kinds(ops([inc(1, 0, ['ok', 5, 1]), inc(2, 10, ['ok', 15, 2])]), final({}, { 100: 2 }))).toEqual([]);
  });

  it('allows indeterminate increments to count or not', () => {
    const h = ops([inc(1, 0, ['ok', 5, 1]), inc(2, 10, ['fail', 15]), inc(3, 20, ['ok', 25, 3])]);
    expect(kinds(h, final({}, { 100: 3 }))).toEqual([]);
    const h2 = ops([inc(1, 0, ['ok', 5, 1]), inc(2, 10, ['fail', 15]), inc(3, 20, ['ok', 25, 2])]);
    expect(kinds(h2, final({}, { 100: 2 }))).toEqual([]);
  });

  it('flags a wrong counter: fewer than acknowledged, or more than possible', () => {
    const h = ops([inc(1, 0, ['ok', 5, 1]), inc(2, 10, ['ok', 15, 2])]);
    expect(kinds(h, final({}, { 100: 1 }))).toEqual(['counter', 'counter']);
    expect(kinds(h, final({}, { 100: 3 }))).toEqual(['counter']);
  });

  it('flags a lost update: two acknowledged increments wrote the same value', () => {
    const h = ops([inc(1, 0, ['ok', 5, 1]), [2, 'b-ats', 'increment', 100, 1, 1, ['ok', 6, 1]], inc(3, 10, ['fail', 15])]);
    expect(kinds(h, final({}, { 100: 2 }))).toEqual(['counter']);
  });
});

describe('split brain, from the arrays\' events', () => {
  const at = (ms: number) => new Date(Date.UTC(2026, 11, 2, 14, 0, 0, ms)).toISOString();
  const ev = (site: string, ms: number, event: Record<string, unknown>): ArrayEventRecord => ({ type: 'array', t: ms, site, event: { ...event, time: at(ms) } });
  const status = (site: string, ms: number, to: string) => ev(site, ms, { type: 'rcopy.group', group: 'rcg1', from: 'Synced', to });
  const alua = (site: string, ms: number, state: string) => ev(site, ms, { type: 'alua.state', host: null, phase: 'done', state, hosts: {} });
  const start = [ev('A', 0, { type: 'snapshot', status: 'Synced', accepting: true }), ev('B', 0, { type: 'snapshot', status: 'Synced', accepting: true })];

  it('passes a link loss: the primary keeps serving, the secondary stops', () => {
    expect(splitBrain([...start, status('A', 100, 'Stopped'), status('B', 101, 'Stopped'), alua('B', 102, 'unavailable')])).toEqual([]);
  });

  it('flags both arrays serving while neither is Synced', () => {
    const v = splitBrain([...start, status('A', 100, 'Stopped'), status('B', 101, 'Stopped'), alua('B', 2000, 'unavailable')]);
    expect(v.map((x) => x.kind)).toEqual(['split-brain']);
    expect(v[0].message).toMatch(/for 1899 ms/);
  });

  it('counts a dead array as not serving', () => {
    expect(splitBrain([...start, ev('A', 100, { type: 'down' }), status('B', 100, 'Stopped'), status('B', 900, 'Synced')])).toEqual([]);
  });
});

describe('self-describing blocks', () => {
  it('name their write, and a block moved or damaged is garbage', () => {
    const d = writeData('host-a-w0', 42, 10, 2);
    expect(tagsOf(d, 10)).toEqual(['host-a-w0:42', 'host-a-w0:42']);
    expect(tagOf(d.subarray(512), 10)).toEqual({ kind: 'garbage', why: 'block of LBA 11' });
    const bad = Buffer.from(blockOf('x', 1, 3));
    bad[100] ^= 1;
    expect(tagOf(bad, 3)).toEqual({ kind: 'garbage', why: 'checksum' });
    expect(tagOf(Buffer.alloc(512), 3)).toEqual({ kind: 'zero' });
  });

  it('counter blocks carry their value; zeros are 0; another block is not a counter', () => {
    expect(counterOf(counterBlock(7, 100, 'host-b-ats0', 3), 100)).toBe(7);
    expect(counterOf(Buffer.alloc(512), 100)).toBe(0);
    expect(counterOf(counterBlock(7, 101), 100)).toBeNull();
    expect(counterOf(blockOf('x', 1, 100), 100)).toBeNull();
  });
});

describe('the read rule against its definition (fast-check)', () => {
  /**
   * The definition, checked the slow way: a read of a block is stale when some acknowledged write
   * w of the block ended before the read began and the returned write f (or the zeros) ended
   * before w began.
   */
  function naiveStale(entries: HistoryEntry[]): number {
    const inv = new Map<number, Extract<HistoryEntry, { type: 'invoke' }>>();
    const end = new Map<number, Extract<HistoryEntry, { type: 'ok' | 'fail' }>>();
    for (const e of entries) { if (e.type === 'invoke') inv.set(e.id, e); else if (e.type === 'ok' || e.type === 'fail') end.set(e.id, e); }
    const writes = [...inv.values()].filter((i) => i.op === 'write').map((i) => ({ i, e: end.get(i.id) }));
    let n = 0;
    for (const r of inv.values()) {
      const re = end.get(r.id);
      if (r.op !== 'read' || re?.type !== 'ok' || !Array.isArray(re.value)) continue;
      const tag = re.value[0];
      const f = writes.find((w) => `${w.i.client}:${w.i.seq}` === tag);
      const fEnd = tag === 'zero' ? -Infinity : f?.e?.type === 'ok' ? f.e.t : Infinity;
      if (writes.some((w) => w.e?.type === 'ok' && w.e.t < r.t && fEnd < w.i.t)) n++;
    }
    return n;
  }

  it('the indexed check flags exactly the reads the definition does', async () => {
    const fc = await import('fast-check');
    const op = fc.record({
      write: fc.boolean(), t: fc.integer({ min: 0, max: 100 }), d: fc.integer({ min: 0, max: 30 }),
      outcome: fc.constantFrom('ok', 'ok', 'ok', 'fail'), pick: fc.nat(),
    });
    fc.assert(fc.property(fc.array(op, { minLength: 1, maxLength: 30 }), (list) => {
      const spec: Parameters<typeof ops>[0] = [];
      const tags: string[] = ['zero'];
      list.forEach((o, k) => {
        const id = k + 1;
        if (o.write) {
          spec.push([id, 'a', 'write', 0, 1, o.t, o.outcome === 'ok' ? ['ok', o.t + o.d] : ['fail', o.t + o.d], id]);
          tags.push(`a:${id}`);
        } else {
          spec.push([id, 'b-r', 'read', 0, 1, o.t, ['ok', o.t + o.d, [tags[o.pick % tags.length]]]]);
        }
      });
      const h = ops(spec);
      const got = check({ entries: h, final: final({ 0: 'zero' }) }).violations;
      // Reads of a write invoked after the read ended are future-reads, judged before staleness.
      const future = got.filter((v) => v.kind === 'future-read').length;
      const futureIds = new Set(got.filter((v) => v.kind === 'future-read').map((v) => /read #(\d+)/.exec(v.message)![1]));
      const stale = got.filter((v) => v.kind === 'stale-read').length;
      const naive = naiveStale(h.filter((e) => !(e.type !== 'fault' && e.type !== 'array' && futureIds.has(String(e.id)))));
      expect({ stale, future }).toEqual({ stale: naive, future });
    }), { numRuns: 500 });
  });
});
