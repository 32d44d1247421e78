/**
 * Every command that changes the medium says where (CommandDef.writes). The write splitter and
 * peer replication will forward exactly the declared extents to the replica, so a block changed
 * outside them would change production and never reach the replica: the silent corruption the
 * RecoverPoint story is about. Each command here runs through LogicalUnit.submit() on LUs filled
 * with random data; every block whose content changed must lie inside an extent that decode()
 * plus writes() declared for that LU. The last test checks that this list covers every command
 * of the table that declares writes.
 */
import { randomFillSync } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tableKey } from '../../src/scsi/command.ts';
import type { CommandDef } from '../../src/scsi/command.ts';
import type { LogicalUnit } from '../../src/scsi/lu.ts';
import { configureSanitize } from '../../src/scsi/sbc-medium.ts';
import type { SanitizeTiming } from '../../src/scsi/sbc-medium.ts';
import { ALL_COMMANDS } from '../../src/scsi/table.ts';
import { ScsiTarget } from '../../src/scsi/target.ts';
import { ScsiStatus, TaskAttribute } from '../../src/scsi/types.ts';
import type { Extent, Nexus, ScsiRequest, ScsiResponse } from '../../src/scsi/types.ts';
import { MemoryStore } from '../../src/store/memory.ts';
import { ConsistencyGroup } from '../../src/splitter/group.ts';
import { parseSplitterSpec } from '../../src/splitter/policy.ts';
import { verifyGroup } from '../../src/splitter/verify.ts';
import { caw16, cdb6, cdb10, cdb12, cdb16, unmapCdb, unmapParameterList } from '../helpers/cdb.ts';
import { makeNexus } from './sbc-fixture.ts';
import { xcopyCdb, xcopyList } from './xcopy-params.ts';

const BS = 512;
const BLOCKS = 2048;
const NAA = ['6001405000000c00', '6001405000000c01'];

interface Rig { target: ScsiTarget; lus: LogicalUnit[]; nexus: Nexus }

function rig(): Rig {
  const target = new ScsiTarget('iqn.2026-01.test:writes-declared');
  const lus = NAA.map((naa, i) => target.addLun({ lun: i, store: new MemoryStore(BigInt(BLOCKS), { blockSize: BS }), naa, serial: `W${i}` }));
  const nexus = makeNexus();
  target.nexusUp(nexus);
  for (const lu of lus) {
    lu.ua.forget(nexus.key);
    void lu.store.write(0n, randomFillSync(Buffer.alloc(BLOCKS * BS)));
  }
  return { target, lus, nexus };
}

const image = (lu: LogicalUnit): Buffer => Buffer.from(lu.store.read(0n, BLOCKS) as Buffer);

/** Runs one command; returns its status, and every changed block that no declared extent covers. */
async function run(r: Rig, cdb: Buffer, dataOut: Buffer | null): Promise<{ status: number; changed: number; outside: string[] }> {
  const lu = r.lus[0];
  const req: ScsiRequest = {
    lun: 0, cdb, nexus: r.nexus, taskTag: 1, attr: TaskAttribute.Simple,
    expectedLength: dataOut ? dataOut.length : 0, isRead: false, isWrite: !!dataOut, dataOut,
  };
  const def = lu.lookup(cdb)!;
  const declared: Extent[] = def.writes!(def.decode(cdb, lu, req));
  const before = r.lus.map(image);
  const resp: ScsiResponse = await lu.submit(req);
  const outside: string[] = [];
  let changed = 0;
  r.lus.forEach((l, i) => {
    const after = image(l);
    const mine = declared.filter((e) => (e.lu ?? lu) === l);
    for (let b = 0; b < BLOCKS; b++) {
      if (after.subarray(b * BS, (b + 1) * BS).equals(before[i].subarray(b * BS, (b + 1) * BS))) continue;
      changed++;
      if (!mine.some((e) => BigInt(b) >= e.lba && BigInt(b) < e.lba + BigInt(e.blocks))) outside.push(`LU ${i} block ${b}`);
    }
  });
  return { status: resp.status, changed, outside };
}

const rnd = (n: number): number => Math.floor(Math.random() * n);
const data = (blocks: number): Buffer => randomFillSync(Buffer.alloc(blocks * BS));

function writeSame16(lba: number, blocks: number, unmap: boolean): Buffer {
  return cdb16(0x93, lba, blocks, unmap ? 0x08 : 0);
}

const sanitizeCdb = (sa: number, paramLen = 0): Buffer => { const c = Buffer.alloc(10); c[0] = 0x48; c[1] = sa; c.writeUInt16BE(paramLen, 7); return c; };

/** One case per command of the table that declares writes: [opcode, service action, name, make]. */
type Case = { op: number; sa?: number; name: string; make: (r: Rig) => { cdb: Buffer; dataOut: Buffer | null }; expect?: 'good' | 'any' };

const CASES: Case[] = [
  { op: 0x0a, name: 'WRITE(6)', make: () => { const n = 1 + rnd(64); return { cdb: cdb6(0x0a, rnd(BLOCKS - n), n), dataOut: data(n) }; } },
  { op: 0x2a, name: 'WRITE(10)', make: () => { const n = 1 + rnd(64); return { cdb: cdb10(0x2a, rnd(BLOCKS - n), n), dataOut: data(n) }; } },
  { op: 0xaa, name: 'WRITE(12)', make: () => { const n = 1 + rnd(64); return { cdb: cdb12(0xaa, rnd(BLOCKS - n), n), dataOut: data(n) }; } },
  { op: 0x8a, name: 'WRITE(16)', make: () => { const n = 1 + rnd(64); return { cdb: cdb16(0x8a, rnd(BLOCKS - n), n), dataOut: data(n) }; } },
  { op: 0x2e, name: 'WRITE AND VERIFY(10)', make: () => { const n = 1 + rnd(64); return { cdb: cdb10(0x2e, rnd(BLOCKS - n), n), dataOut: data(n) }; } },
  { op: 0xae, name: 'WRITE AND VERIFY(12)', make: () => { const n = 1 + rnd(64); return { cdb: cdb12(0xae, rnd(BLOCKS - n), n), dataOut: data(n) }; } },
  { op: 0x8e, name: 'WRITE AND VERIFY(16)', make: () => { const n = 1 + rnd(64); return { cdb: cdb16(0x8e, rnd(BLOCKS - n), n), dataOut: data(n) }; } },
  { op: 0x8b, name: 'ORWRITE(16)', make: () => { const n = 1 + rnd(64); return { cdb: cdb16(0x8b, rnd(BLOCKS - n), n), dataOut: data(n) }; } },
  {
    op: 0x9c, name: 'WRITE ATOMIC(16)', make: () => {
      const n = 1 + rnd(64);
      const c = Buffer.alloc(16);
      c[0] = 0x9c;
      c.writeBigUInt64BE(BigInt(rnd(BLOCKS - n)), 2);
      c.writeUInt16BE(n, 12);
      return { cdb: c, dataOut: data(n) };
    },
  },
  {
    op: 0x89, name: 'COMPARE AND WRITE', make: (r) => {
      const n = 1 + rnd(8);
      const lba = rnd(BLOCKS - n);
      const current = Buffer.from(r.lus[0].store.read(BigInt(lba), n) as Buffer);
      return { cdb: caw16(lba, n), dataOut: Buffer.concat([current, data(n)]) };
    },
  },
  { op: 0x41, name: 'WRITE SAME(10)', make: () => { const n = 1 + rnd(300); return { cdb: cdb10(0x41, rnd(BLOCKS - n), n), dataOut: data(1) }; } },
  { op: 0x93, name: 'WRITE SAME(16)', make: () => { const n = 1 + rnd(300); return { cdb: writeSame16(rnd(BLOCKS - n), n, rnd(2) === 0), dataOut: rnd(2) ? data(1) : Buffer.alloc(BS) }; } },
  {
    op: 0x42, name: 'UNMAP', make: () => {
      const p = unmapParameterList([[rnd(BLOCKS / 2 - 200), 1 + rnd(200)], [BLOCKS / 2 + rnd(BLOCKS / 2 - 200), 1 + rnd(200)]]);
      return { cdb: unmapCdb(p.length), dataOut: p };
    },
  },
  { op: 0x04, name: 'FORMAT UNIT', make: () => ({ cdb: Buffer.from([0x04, 0, 0, 0, 0, 0]), dataOut: null }) },
  {
    op: 0x48, sa: 0x01, name: 'SANITIZE OVERWRITE', make: () => {
      const p = Buffer.alloc(4 + BS, 0x5a);
      p[0] = 0x01; p[1] = 0; p.writeUInt16BE(BS, 2);
      return { cdb: sanitizeCdb(0x01, p.length), dataOut: p };
    },
  },
  { op: 0x48, sa: 0x02, name: 'SANITIZE BLOCK ERASE', make: () => ({ cdb: sanitizeCdb(0x02), dataOut: null }) },
  { op: 0x48, sa: 0x03, name: 'SANITIZE CRYPTOGRAPHIC ERASE', make: () => ({ cdb: sanitizeCdb(0x03), dataOut: null }) },
  // Only after a failed sanitize does EXIT FAILURE MODE do anything; here it is refused, and the
  // check is that it changes nothing it did not declare.
  { op: 0x48, sa: 0x1f, name: 'SANITIZE EXIT FAILURE MODE', make: () => ({ cdb: sanitizeCdb(0x1f), dataOut: null }), expect: 'any' },
  {
    op: 0x83, sa: 0x00, name: 'EXTENDED COPY(LID1)', make: () => {
      // Both directions between the two LUs, block-to-block segments.
      const n = 1 + rnd(64);
      const list = xcopyList({
        cscds: NAA.map((naa) => ({ naa })),
        segments: [
          { src: 1, dst: 0, blocks: n, srcLba: rnd(BLOCKS - n), dstLba: rnd(BLOCKS - n) },
          { src: 0, dst: 1, blocks: n, srcLba: rnd(BLOCKS - n), dstLba: rnd(BLOCKS - n) },
        ],
      });
      return { cdb: xcopyCdb(list.length), dataOut: list };
    },
  },
];

let timing: SanitizeTiming;
beforeAll(() => { timing = configureSanitize({ overwritePassMs: 0, blockEraseMs: 0, cryptoEraseMs: 0 }); });
afterAll(() => { configureSanitize(timing); });

describe('every block a command changes lies in an extent it declares (CommandDef.writes)', () => {
  for (const c of CASES) {
    it(c.name, async () => {
      for (let i = 0; i < 8; i++) {
        const r = rig();
        const { cdb, dataOut } = c.make(r);
        const res = await run(r, cdb, dataOut);
        if (c.expect !== 'any') {
          expect(res.status, c.name).toBe(ScsiStatus.Good);
          expect(res.changed, `${c.name} changed nothing`).toBeGreaterThan(0);
        }
        expect(res.outside, `${c.name}: changed outside its declared extents`).toEqual([]);
      }
    });
  }

  it('the cases cover every command of the table that declares writes', () => {
    const covered = new Set(CASES.map((c) => tableKey(c.op, c.sa)));
    const declaring = ALL_COMMANDS.filter((d: CommandDef) => typeof d.writes === 'function');
    expect(declaring.length).toBeGreaterThan(0);
    for (const d of declaring) expect(covered.has(tableKey(d.opcode, d.serviceAction)), d.name).toBe(true);
  });
});

/**
 * The same commands on LUs a consistency group protects with every primitive supported: each
 * journal record lies inside an extent the command declared for that LU, and after the journal
 * is distributed the copy equals production block for block (and verify says so).
 */
describe('under a splitter with policy support, each such command reaches the copy as declared', () => {
  for (const c of CASES) {
    it(c.name, async () => {
      for (let i = 0; i < 4; i++) {
        const r = rig();
        const g = new ConsistencyGroup({ name: 'g', spec: parseSplitterSpec('ats=support'), luns: r.lus, copies: ['local'], journalBytes: 1 << 30, startTransfer: false });
        await g.startTransfer('test');
        expect(g.transfer).toBe('active');
        const before = g.journal.nextSeq - 1;
        const { cdb, dataOut } = c.make(r);
        const lu = r.lus[0];
        const req = { lun: 0, cdb, nexus: r.nexus, taskTag: 1, attr: TaskAttribute.Simple, expectedLength: dataOut?.length ?? 0, isRead: false, isWrite: !!dataOut, dataOut };
        const def = lu.lookup(cdb)!;
        const declared: Extent[] = def.writes!(def.decode(cdb, lu, req));
        const res = await run(r, cdb, dataOut);
        if (c.expect !== 'any') expect(res.status, c.name).toBe(ScsiStatus.Good);
        const outside: string[] = [];
        for (const rec of g.journal.after(before)) {
          const l = r.lus[rec.set];
          const ok = declared.some((e) => (e.lu ?? lu) === l && rec.lba >= e.lba && rec.lba + BigInt(rec.blocks) <= e.lba + BigInt(e.blocks));
          if (!ok) outside.push(`${rec.kind} LU ${rec.set} ${rec.lba}+${rec.blocks}`);
        }
        expect(outside, `${c.name}: journal records outside the declared extents`).toEqual([]);
        if (res.changed > 0) expect(g.journal.nextSeq - 1, `${c.name} changed blocks but split nothing`).toBeGreaterThan(before);
        const v = await verifyGroup(g);
        expect(v.diverged, c.name).toEqual([]);
        r.lus.forEach((l, k) => expect(Buffer.from(g.copy('local').replicas[k].read(0n, BLOCKS) as Buffer).equals(image(l)), `${c.name} LU ${k}`).toBe(true));
      }
    });
  }
});
