/**
 * Each policy for each VAAI primitive, over iSCSI, against an array built as `serve --splitter`
 * builds it: support → GOOD and the copy gets the effect (verify: consistent); reject → the sense
 * and production unchanged; ignore → GOOD, production changed, verify reports the extent diverged
 * and names the ignored command and the host that sent it.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { caw16, cdb16, unmapCdb, unmapParameterList } from '../helpers/cdb.ts';
import type { TestInitiator, ScsiResult } from '../helpers/initiator.ts';
import { xcopyCdb, xcopyList } from '../scsi/xcopy-params.ts';
import { adminCall, kcq, pattern, startSplitterArray } from './rig.ts';
import type { SplitterRig } from './rig.ts';

const BS = 512;
const HOST = 'iqn.2026-11.dev.arraysim:host-a';

interface Case {
  primitive: 'ats' | 'xcopy' | 'writesame' | 'unmap';
  label: string;
  /** The command's name as the ignored log gives it. */
  name: string;
  /** Where the effect lands: LUN, first LBA, blocks, and what the blocks hold afterwards. */
  lun: number;
  lba: number;
  blocks: number;
  expected: Buffer;
  prepare(ini: TestInitiator): Promise<void>;
  act(ini: TestInitiator, r: SplitterRig): Promise<ScsiResult>;
}

const A = pattern(BS, 1);
const B = pattern(BS, 2);
const X = pattern(64 * BS, 3);
const W = pattern(BS, 4);
const write = async (ini: TestInitiator, lun: number, lba: number, data: Buffer) => {
  const r = await ini.scsi(lun, cdb16(0x8a, lba, data.length / BS), { write: data });
  if (r.status !== 0) throw new Error(`WRITE failed ${r.status}`);
};

const CASES: Case[] = [
  {
    primitive: 'ats', label: 'COMPARE AND WRITE', name: 'COMPARE AND WRITE', lun: 0, lba: 100, blocks: 1, expected: B,
    prepare: (ini) => write(ini, 0, 100, A),
    act: (ini) => ini.scsi(0, caw16(100, 1), { write: Buffer.concat([A, B]) }),
  },
  {
    primitive: 'xcopy', label: 'EXTENDED COPY LUN 0 → LUN 1', name: 'EXTENDED COPY(LID1)', lun: 1, lba: 256, blocks: 64, expected: X,
    prepare: (ini) => write(ini, 0, 0, X),
    act: (ini, r) => {
      const list = xcopyList({ cscds: r.lus.map((lu) => ({ naa: lu.naa })), segments: [{ src: 0, dst: 1, blocks: 64, srcLba: 0, dstLba: 256 }] });
      return ini.scsi(0, xcopyCdb(list.length), { write: list });
    },
  },
  {
    primitive: 'writesame', label: 'WRITE SAME(16)', name: 'WRITE SAME(16)', lun: 0, lba: 512, blocks: 128, expected: Buffer.concat(Array(128).fill(W)),
    prepare: async () => {},
    act: (ini) => ini.scsi(0, cdb16(0x93, 512, 128), { write: W }),
  },
  {
    primitive: 'writesame', label: 'WRITE SAME(16) with UNMAP', name: 'WRITE SAME(16)', lun: 0, lba: 1024, blocks: 128, expected: Buffer.alloc(128 * BS),
    prepare: (ini) => write(ini, 0, 1024, pattern(128 * BS, 5)),
    act: (ini) => ini.scsi(0, cdb16(0x93, 1024, 128, 0x08), { write: W }),
  },
  {
    primitive: 'unmap', label: 'UNMAP', name: 'UNMAP', lun: 0, lba: 2048, blocks: 64, expected: Buffer.alloc(64 * BS),
    prepare: (ini) => write(ini, 0, 2048, pattern(64 * BS, 6)),
    act: (ini) => { const p = unmapParameterList([[2048, 64]]); return ini.scsi(0, unmapCdb(p.length), { write: p }); },
  },
];

let rig: SplitterRig | undefined;
afterEach(async () => { await rig?.close(); rig = undefined; });

const region = (r: SplitterRig, c: Case, where: 'production' | 'copy'): Buffer => {
  const s = where === 'production' ? r.lus[c.lun].store : r.group.copy('local').replicas[c.lun];
  return Buffer.from(s.read(BigInt(c.lba), c.blocks) as Buffer);
};

describe('each policy for each primitive, over TCP', () => {
  for (const c of CASES) {
    it(`${c.label}: support → GOOD, the copy gets it, verify consistent`, async () => {
      rig = await startSplitterArray(`${c.primitive}=support`);
      const ini = await rig.session(HOST);
      await c.prepare(ini);
      const res = await c.act(ini, rig);
      expect(res.status, JSON.stringify(kcq(res))).toBe(0);
      expect(region(rig, c, 'production').equals(c.expected)).toBe(true);
      const v = await adminCall(rig.adminAddr, 'POST', '/v1/groups/default/verify', {});
      expect(v.status).toBe(200);
      expect(v.json.consistent).toBe(true);
      expect(v.json.diverged).toEqual([]);
      expect(region(rig, c, 'copy').equals(c.expected)).toBe(true);
      expect(rig.group.status().ignored[c.primitive]).toBe(0);
    });

    it(`${c.label}: reject → 05/20/00 and production unchanged`, async () => {
      rig = await startSplitterArray(`${c.primitive}=reject`);
      const ini = await rig.session(HOST);
      await c.prepare(ini);
      const before = region(rig, c, 'production');
      const seq = rig.group.journal.nextSeq;
      const res = await c.act(ini, rig);
      expect(res.status).toBe(2);
      expect(kcq(res)).toEqual([0x05, 0x20, 0x00]);
      expect(region(rig, c, 'production').equals(before)).toBe(true);
      expect(rig.group.journal.nextSeq).toBe(seq);
      const v = await adminCall(rig.adminAddr, 'POST', '/v1/groups/default/verify', {});
      expect(v.json.consistent).toBe(true);
    });

    it(`${c.label}: ignore → GOOD, production changed, verify diverged and names the command`, async () => {
      rig = await startSplitterArray(`${c.primitive}=ignore`);
      const ini = await rig.session(HOST);
      await c.prepare(ini);
      const seq = rig.group.journal.nextSeq;
      const res = await c.act(ini, rig);
      expect(res.status, JSON.stringify(kcq(res))).toBe(0);
      expect(region(rig, c, 'production').equals(c.expected)).toBe(true);
      expect(rig.group.journal.nextSeq, 'nothing journaled').toBe(seq);
      expect(rig.group.status().ignored[c.primitive]).toBe(1);
      const v = await adminCall(rig.adminAddr, 'POST', '/v1/groups/default/verify', {});
      expect(v.json.consistent).toBe(false);
      expect(v.json.diverged.length).toBeGreaterThan(0);
      for (const d of v.json.diverged) {
        expect(d.lun).toBe(c.lun);
        expect(BigInt(d.lba)).toBeGreaterThanOrEqual(BigInt(c.lba));
        expect(BigInt(d.lbaEnd)).toBeLessThan(BigInt(c.lba + c.blocks));
        expect(d.causes).toEqual([expect.objectContaining({ name: c.name, primitive: c.primitive, initiator: HOST })]);
      }
      expect(region(rig, c, 'copy').equals(c.expected)).toBe(false);
    });
  }

  it('a miscompared COMPARE AND WRITE under support writes nothing and journals nothing', async () => {
    rig = await startSplitterArray('ats=support');
    const ini = await rig.session(HOST);
    await write(ini, 0, 100, A);
    const seq = rig.group.journal.nextSeq;
    const res = await ini.scsi(0, caw16(100, 1), { write: Buffer.concat([B, B]) });
    expect(kcq(res)).toEqual([0x0e, 0x1d, 0x00]);
    expect(rig.group.journal.nextSeq).toBe(seq);
  });

  it('EXTENDED COPY rejected with copy-aborted answers COPY ABORTED, COPY TARGET DEVICE NOT REACHABLE (0A/0D/02)', async () => {
    rig = await startSplitterArray('xcopy=reject,xcopy-reject=copy-aborted');
    const ini = await rig.session(HOST);
    const c = CASES[1];
    await c.prepare(ini);
    const before = region(rig, c, 'production');
    const res = await c.act(ini, rig);
    expect(kcq(res)).toEqual([0x0a, 0x0d, 0x02]);
    expect(region(rig, c, 'production').equals(before)).toBe(true);
  });

  it('EXTENDED COPY within one LU, source and destination overlapping: the copy gets the blocks as copied', async () => {
    rig = await startSplitterArray('xcopy=support');
    const ini = await rig.session(HOST);
    await write(ini, 0, 3000, pattern(64 * BS, 8));
    const list = xcopyList({ cscds: [{ naa: rig.lus[0].naa }], segments: [{ src: 0, dst: 0, blocks: 32, srcLba: 3000, dstLba: 3010 }] });
    expect((await ini.scsi(0, xcopyCdb(list.length), { write: list })).status).toBe(0);
    const v = await adminCall(rig.adminAddr, 'POST', '/v1/groups/default/verify', {});
    expect(v.json.diverged).toEqual([]);
  });
});
