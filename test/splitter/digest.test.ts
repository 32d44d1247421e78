/**
 * The region digest that verify, the initialization sweep and REGION DIGEST compare
 * (src/splitter/digest.ts) is not blind to blocks that end in their own CRC32C. Such a block
 * leaves the CRC register at the same residue whatever it holds, so a CRC32C over pieces made of
 * them is one constant: two different regions of the checker's blocks (src/check/history.ts
 * writes exactly those) compared equal, and verify called a diverged copy consistent. The
 * negative control is the old digest (digestHooks.crc32cOnly): verify is blind again.
 */
import { randomFillSync } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { crc32c } from '../../protocol/iscsi/digest.ts';
import { digestHooks, regionDigest } from '../../src/splitter/digest.ts';
import { ConsistencyGroup } from '../../src/splitter/group.ts';
import { parseSplitterSpec } from '../../src/splitter/policy.ts';
import { verifyGroup } from '../../src/splitter/verify.ts';
import { ScsiTarget } from '../../src/scsi/target.ts';
import { ScsiStatus, TaskAttribute } from '../../src/scsi/types.ts';
import { MemoryStore } from '../../src/store/memory.ts';
import { cdb16 } from '../helpers/cdb.ts';
import { makeNexus } from '../scsi/sbc-fixture.ts';

/** `bytes` of random 4 KiB blocks, each ending in the CRC32C of its first 4092 bytes (little endian). */
function selfChecked(bytes: number): Buffer {
  const b = Buffer.alloc(bytes);
  for (let o = 0; o < bytes; o += 4096) {
    randomFillSync(b, o, 4092);
    b.writeUInt32LE(crc32c(b.subarray(o, o + 4092)), o + 4092);
  }
  return b;
}

afterEach(() => { digestHooks.crc32cOnly = false; });

describe('region digest', () => {
  it('tells apart two regions of blocks that end in their own CRC32C, which CRC32C alone cannot', () => {
    const a = selfChecked(1 << 20);
    const b = selfChecked(1 << 20);
    expect(a.equals(b)).toBe(false);
    // The residue: CRC32C over such blocks does not depend on what they hold.
    expect(crc32c(a)).toBe(crc32c(b));
    expect(regionDigest(a).equals(regionDigest(b))).toBe(false);
    // Every one of the sixteen 64 KiB pieces differs, not just some.
    const da = regionDigest(a), db = regionDigest(b);
    for (let k = 0; k < 16; k++) expect(da.readUInt32BE(4 * k)).not.toBe(db.readUInt32BE(4 * k));
    digestHooks.crc32cOnly = true;
    expect(regionDigest(a).equals(regionDigest(b))).toBe(true);
  });

  it('verify finds a copy diverged in such blocks (and the CRC32C-only digest does not: the negative control)', async () => {
    const t = new ScsiTarget('iqn.2026-11.dev.arraysim:digest');
    const lu = t.addLun({ lun: 0, store: new MemoryStore(8192n), naa: '6001405000000e20', serial: 'D0' }); // 4 MiB
    const nexus = makeNexus();
    t.nexusUp(nexus);
    lu.ua.forget(nexus.key);
    const g = new ConsistencyGroup({ name: 'g', spec: parseSplitterSpec('ats=support'), luns: [lu], copies: ['local'], journalBytes: 16 << 20, startTransfer: true });
    await g.ready();
    const data = selfChecked(2 << 20);
    const r = await lu.submit({ lun: 0, cdb: cdb16(0x8a, 0, data.length / 512), nexus, taskTag: 1, attr: TaskAttribute.Simple, expectedLength: data.length, isRead: false, isWrite: true, dataOut: data });
    expect(r.status).toBe(ScsiStatus.Good);
    expect((await verifyGroup(g)).consistent).toBe(true);
    // The replica's second MiB becomes other blocks of the same kind, behind the splitter's back.
    const replica = g.copy('local').replicas[0];
    await replica.write(2048n, selfChecked(1 << 20));
    const v = await verifyGroup(g);
    expect(v.consistent).toBe(false);
    expect(v.diverged.map((d) => [Number(d.lba), d.blocks])).toEqual([[2048, 2048]]);
    digestHooks.crc32cOnly = true;
    expect((await verifyGroup(g)).consistent).toBe(true);
    await g.close();
  });
});
