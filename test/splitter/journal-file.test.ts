/**
 * FileJournal (src/splitter/journal-file.ts) in process: records survive a reopen, a torn or
 * corrupted tail is cut at the first bad record, group commit makes a burst durable with few
 * fdatasyncs, segments rotate and are deleted once trimmed, numbering goes on after checkpoints.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { configFromFile } from '../../src/config.ts';
import { ScsiDevice } from '../../src/initiator/index.ts';
import { verifyGroup } from '../../src/splitter/verify.ts';
import { FileJournal, HEADER_BYTES, scanSegment } from '../../src/splitter/journal-file.ts';
import { fileJournalArray } from './rig.ts';

const dirs: string[] = [];
function tmp(): string {
  const d = mkdtempSync(path.join(tmpdir(), 'arraysim-fj-'));
  dirs.push(d);
  return d;
}
afterEach(() => { for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true }); });

const block = (seq: number) => Buffer.alloc(4096, seq & 0xff);

async function appendDurable(j: FileJournal, n: number, from = 1): Promise<void> {
  const waits: Array<Promise<void> | null> = [];
  for (let i = 0; i < n; i++) {
    const r = j.append({ time: 1_700_000_000_000 + i, set: 0, kind: 'data', lba: BigInt(i * 8), blocks: 8, data: j.copyIn(block(from + i)), unmap: false });
    waits.push(j.whenDurable(r.seq));
  }
  await Promise.all(waits);
}

const segments = (d: string) => readdirSync(d).filter((n) => n.endsWith('.seg')).sort();

describe('FileJournal', () => {
  it('a record is not durable at append; it is after its group commit; a burst shares fdatasyncs', async () => {
    const d = tmp();
    const j = await FileJournal.open(d, 64 << 20);
    const r = j.append({ time: 1, set: 0, kind: 'data', lba: 0n, blocks: 8, data: j.copyIn(block(1)), unmap: false });
    const w = j.whenDurable(r.seq);
    expect(w).not.toBeNull();
    await w;
    expect(j.whenDurable(r.seq)).toBeNull();
    await appendDurable(j, 64, 2);
    // 64 records appended in one turn: one or two flushes, not 64.
    expect(j.commits.records).toBe(65);
    expect(j.commits.flushes).toBeLessThanOrEqual(3);
    await j.close();
  });

  it('reopens with every record, in order, with its kind, fields and payload', async () => {
    const d = tmp();
    const j = await FileJournal.open(d, 64 << 20);
    await appendDurable(j, 10);
    const s = j.append({ time: 5, set: 1, kind: 'same', lba: 100n, blocks: 1000, data: j.copyIn(Buffer.alloc(512, 7)), unmap: false });
    const u = j.append({ time: 6, set: 0, kind: 'unmap', lba: 200n, blocks: 64, data: null, unmap: true });
    await j.whenDurable(u.seq);
    await j.close();
    expect(readdirSync(d)).not.toContain('open');
    const k = await FileJournal.open(d, 64 << 20);
    expect(k.recovery).toMatchObject({ records: 12, truncatedBytes: 0, stop: null, unclean: false });
    expect(k.nextSeq).toBe(13);
    expect(k.at(3)!.data!.equals(block(3))).toBe(true);
    expect(k.at(s.seq)).toMatchObject({ kind: 'same', set: 1, lba: 100n, blocks: 1000, time: 5, unmap: false });
    expect(k.at(u.seq)).toMatchObject({ kind: 'unmap', lba: 200n, blocks: 64, data: null, unmap: true });
    // Numbering goes on.
    const r = k.append({ time: 7, set: 0, kind: 'unmap', lba: 0n, blocks: 1, data: null, unmap: true });
    expect(r.seq).toBe(13);
    await k.close();
  });

  it('cuts a torn record (short write) and everything after it, and says so', async () => {
    const d = tmp();
    const j = await FileJournal.open(d, 64 << 20);
    await appendDurable(j, 5);
    await j.close();
    writeFileSync(path.join(d, 'open'), ''); // the marker a SIGKILLed array leaves behind
    const seg = path.join(d, segments(d)[0]);
    const size = statSync(seg).size;
    truncateSync(seg, size - 100); // the last record loses its end
    const k = await FileJournal.open(d, 64 << 20);
    expect(k.recovery).toMatchObject({ records: 4, stop: 'short-record', unclean: true });
    expect(statSync(seg).size).toBe(4 * (HEADER_BYTES + 4096));
    expect(k.nextSeq).toBe(5);
    await k.close();
  });

  it('cuts at a bad checksum: a flipped payload byte in the middle drops that record and the rest', async () => {
    const d = tmp();
    const j = await FileJournal.open(d, 64 << 20);
    await appendDurable(j, 6);
    await j.close();
    const seg = path.join(d, segments(d)[0]);
    const b = readFileSync(seg);
    const rec = HEADER_BYTES + 4096;
    b[2 * rec + HEADER_BYTES + 17] ^= 0x40; // record 3's payload
    writeFileSync(seg, b);
    expect(scanSegment(b, 1).stop).toBe('bad-checksum');
    const k = await FileJournal.open(d, 64 << 20);
    expect(k.recovery).toMatchObject({ records: 2, stop: 'bad-checksum', truncatedBytes: 4 * rec });
    expect(k.nextSeq).toBe(3);
    await k.close();
  });

  it('rotates segments, deletes those trimmed, keeps every record not yet applied, reports the window', async () => {
    const d = tmp();
    // 1 MiB segments (the minimum), a 2 MiB limit: ~250 records of 4 KiB per segment.
    const j = await FileJournal.open(d, 2 << 20, { segmentBytes: 1 << 20 });
    // In bursts of 50 (a group commit is never split across segments; rotation is between them).
    for (let i = 0; i < 1000; i += 50) await appendDurable(j, 50, i + 1);
    expect(segments(d).length).toBeGreaterThanOrEqual(4);
    j.trim(0); // nothing applied: nothing may go, whatever the limit
    expect(j.length).toBe(1000);
    j.trim(600);
    expect(j.firstSeq).toBeGreaterThan(1);
    expect(j.firstSeq).toBeLessThanOrEqual(601);
    expect(j.bytes).toBeLessThanOrEqual(2 << 20);
    expect(j.window()).toMatchObject({ oldestSeq: j.firstSeq, newestSeq: 1000 });
    await j.close();
    const names = segments(d);
    expect(Number(names[0].slice(0, 16))).toBeLessThanOrEqual(j.firstSeq);
    const k = await FileJournal.open(d, 2 << 20, { segmentBytes: 1 << 20 });
    expect(k.nextSeq).toBe(1001);
    expect(k.firstSeq).toBe(Number(names[0].slice(0, 16)));
    expect(k.at(1000)!.data!.equals(block(1000))).toBe(true);
    await k.close();
  });

  it('a checkpoint ahead of an emptied journal keeps the numbering going', async () => {
    const d = tmp();
    const j = await FileJournal.open(d, 64 << 20);
    await j.writeCheckpoint('local', { appliedSeq: 41, initialized: true });
    await j.close();
    const k = await FileJournal.open(d, 64 << 20);
    expect(k.nextSeq).toBe(42);
    expect(await k.readCheckpoint('local')).toEqual({ appliedSeq: 41, initialized: true });
    await k.close();
  });
});

describe('groups[].journal in the YAML configuration', () => {
  const yaml = (journal: string) => [
    'targets:', '  - name: iqn.2026-12.dev.arraysim:cfg', '    luns: [8MiB]',
    'splitters:', '  - name: s', '    spec: rp-cx-2010',
    'groups:', '  - name: g', '    splitter: s', `    journal: ${journal}`, '',
  ].join('\n');
  const load = (journal: string) => {
    const d = tmp();
    const f = path.join(d, 'a.yaml');
    writeFileSync(f, yaml(journal));
    return { d, cfg: () => configFromFile(f) };
  };

  it('a size is a memory journal; {type: file, path, size} a file journal in a folder relative to the file', () => {
    expect(load('64MiB').cfg().groups![0]).toMatchObject({ journalBytes: 64 << 20, journalPath: undefined });
    const { d, cfg } = load('{type: file, path: j, size: 1GiB}');
    expect(cfg().groups![0]).toMatchObject({ journalBytes: 1 << 30, journalPath: path.join(d, 'j') });
    expect(load('{type: memory, size: 1MiB}').cfg().groups![0]).toMatchObject({ journalBytes: 1 << 20, journalPath: undefined });
  });

  it('names the field that is wrong', () => {
    expect(load('{type: file}').cfg).toThrow(/groups\[0\]\.journal\.path/);
    expect(load('{type: disk, path: j}').cfg).toThrow(/groups\[0\]\.journal\.type must be memory or file/);
    expect(load('{type: file, path: j, size: lots}').cfg).toThrow(/groups\[0\]\.journal\.size/);
    expect(load('{type: file, path: j, sise: 1GiB}').cfg).toThrow(/groups\[0\]\.journal\.sise: unknown field/);
    expect(load('{type: memory, path: j}').cfg).toThrow(/only a file journal has a path/);
  });
});

describe('a file-journaled group across a clean restart', () => {
  it('a copy is checkpointed no further than the journal is durable (else a restart would number new records after a gap)', async () => {
    const d = tmp();
    const target = 'iqn.2026-12.dev.arraysim:ckpt-durable';
    const { start } = fileJournalArray(d, target);
    const { a, g, port } = await start();
    const j = g.journal as unknown as { durableSeq: number; writeCheckpoint: (copy: string, c: { appliedSeq: number }) => Promise<void> };
    const seen: Array<[number, number]> = [];
    const write = j.writeCheckpoint.bind(j);
    j.writeCheckpoint = (copy, c) => { seen.push([c.appliedSeq, j.durableSeq]); return write(copy, c as never); };
    // A slow disk: each group commit takes 30 ms more, so the distributor meets records not yet durable.
    const slow = j as unknown as { flush: (...a: unknown[]) => Promise<void> };
    const flush = slow.flush.bind(j);
    slow.flush = async (...args) => { await new Promise((r) => setTimeout(r, 30)); return flush(...args); };
    try {
      const dev = await ScsiDevice.open(`iscsi://127.0.0.1:${port}/${target}/0`);
      await dev.readCapacity16();
      // 16 in flight at a time: the distributor runs while group commits are still syncing.
      for (let r = 0; r < 20; r++) {
        const res = await Promise.all(Array.from({ length: 16 }, (_, i) => dev.write(BigInt(((r * 16 + i) % 512) * 16), Buffer.alloc(8192, r + 1))));
        expect(res.every((x) => x.kind === 'good')).toBe(true);
      }
      await dev.close();
      expect(seen.length).toBeGreaterThan(0);
      const ahead = seen.filter(([cp, durable]) => cp > durable);
      expect(ahead, `checkpoints past the durable end: ${JSON.stringify(ahead.slice(0, 5))}`).toEqual([]);
    } finally {
      await a.stop();
    }
  }, 60_000);

  it('a clean stop while paused (markers, not journal records) sweeps the copy at the next start, and the copy then equals production', async () => {
    const d = tmp();
    const target = 'iqn.2026-12.dev.arraysim:reapply';
    const { start } = fileJournalArray(d, target);
    let { a, g, port } = await start();
    expect(g.transfer).toBe('active');
    // Paused: the writes are marked (in memory), not journaled; the copy does not get them before the stop.
    g.pauseTransfer('test');
    const dev = await ScsiDevice.open(`iscsi://127.0.0.1:${port}/${target}/0`);
    await dev.readCapacity16(); // the power-on unit attention
    for (let i = 0; i < 40; i++) expect((await dev.write(BigInt(i * 16), Buffer.alloc(8192, i + 1))).kind).toBe('good');
    await dev.close();
    expect(g.copy().appliedSeq).toBe(0);
    await a.stop();
    ({ a, g } = await start());
    try {
      // Markers do not survive a stop: the copy was checkpointed as not initialized, so it is swept.
      expect(g.recovery).toMatchObject({ reapplied: 0, sweep: true });
      expect(g.recovery!.reason).toMatch(/initialization had not completed/);
      expect(g.status().initialization).toMatchObject({ kind: 'full-sweep' });
      const v = await verifyGroup(g);
      expect(v.consistent).toBe(true);
      expect(readFileSync(path.join(d, 'j', 'local.0.img')).subarray(39 * 16 * 512, 39 * 16 * 512 + 8192).every((b) => b === 40)).toBe(true);
    } finally {
      await a.stop();
    }
  }, 60_000);
});
