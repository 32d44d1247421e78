/**
 * Write order under concurrency: two sessions send overlapping WRITEs, WRITE SAMEs, ORWRITEs,
 * COMPARE AND WRITEs and UNMAPs to the same few LBAs, many in flight at once, to a protected LU
 * (memory store, and file store whose writes complete asynchronously). The group's sequence must
 * order overlapping commands as production applied them, so after the journal is distributed the
 * copy equals production byte for byte, and verify agrees.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { caw16, cdb16, unmapCdb, unmapParameterList } from '../helpers/cdb.ts';
import type { TestInitiator } from '../helpers/initiator.ts';
import { adminCall, pattern, startSplitterArray } from './rig.ts';
import type { SplitterRig } from './rig.ts';

const BS = 512;
/** Every command lands in the first SPAN blocks: plenty of overlap. */
const SPAN = 48;
const dir = mkdtempSync(join(tmpdir(), 'arraysim-splitter-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let rig: SplitterRig | undefined;
afterEach(async () => { await rig?.close(); rig = undefined; });

let seed = 1;
const rnd = (n: number) => Math.floor(Math.random() * n);

/** One random command on [0, SPAN), not awaited by the caller until a burst is complete. */
function command(ini: TestInitiator, r: SplitterRig): Promise<unknown> {
  const n = 1 + rnd(8);
  const lba = rnd(SPAN - n);
  switch (rnd(6)) {
    case 0: case 1: return ini.scsi(0, cdb16(0x8a, lba, n), { write: pattern(n * BS, seed++) });
    case 2: return ini.scsi(0, cdb16(0x93, lba, n * 4), { write: pattern(BS, seed++) });
    case 3: return ini.scsi(0, cdb16(0x8b, lba, n), { write: pattern(n * BS, seed++) });
    case 4: {
      // Compare against what production holds now: matches unless another command gets there first.
      const cur = Buffer.from(r.lus[0].store.kind === 'memory' ? (r.lus[0].store.read(BigInt(lba), 1) as Buffer) : Buffer.alloc(BS));
      return ini.scsi(0, caw16(lba, 1), { write: Buffer.concat([cur, pattern(BS, seed++)]) });
    }
    default: { const p = unmapParameterList([[lba, n], [lba + n, 2]]); return ini.scsi(0, unmapCdb(p.length), { write: p }); }
  }
}

async function hammer(r: SplitterRig): Promise<void> {
  const a = await r.session('iqn.2026-11.dev.arraysim:host-a');
  const b = await r.session('iqn.2026-11.dev.arraysim:host-b');
  for (let burst = 0; burst < 25; burst++) {
    const all: Promise<unknown>[] = [];
    for (let i = 0; i < 16; i++) { all.push(command(a, r)); all.push(command(b, r)); }
    await Promise.all(all);
  }
}

describe('concurrent overlapping writes from two sessions end with production == copy', () => {
  for (const store of ['memory', 'file'] as const) {
    it(`${store} store`, async () => {
      const spec = store === 'memory' ? '4MiB' : `file:${join(dir, 'ordering.img')},size=4MiB`;
      rig = await startSplitterArray('ats=support', [spec]);
      await hammer(rig);
      const v = await adminCall(rig.adminAddr, 'POST', '/v1/groups/default/verify', {});
      expect(v.json.diverged).toEqual([]);
      expect(v.json.consistent).toBe(true);
      expect(v.json.seq).toBeGreaterThan(500);
      const prod = await rig.lus[0].store.read(0n, SPAN);
      const copy = rig.group.copy('local').replicas[0].read(0n, SPAN) as Buffer;
      expect(Buffer.from(copy).equals(Buffer.from(prod))).toBe(true);
    });
  }
});
