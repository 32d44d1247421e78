/**
 * The device limits as initiators see them: READ CAPACITY(16) physical block exponent and the
 * Block Limits VPD page (SBC-4 §5.21.2, §6.6.4), consistent with what decode enforces.
 */
import { describe, expect, it } from 'vitest';
import { decodeBlockLimits } from '../../protocol/scsi/vpd.ts';
import { blockLimits } from '../../src/scsi/sbc.ts';
import { cdb16, expectGood, ILLEGAL_REQUEST, senseOf, setupLun, submit } from './sbc-fixture.ts';

const rc16 = () => { const c = cdb16(0x9e, 0, 32); c[1] = 0x10; return c; };
const vpdB0 = Buffer.from([0x12, 0x01, 0xb0, 0x00, 0xff, 0x00]);

describe('physical blocks and unmap granularity', () => {
  it('physical= 4096 on a 512-byte LU reports exponent 3, LOWEST ALIGNED LBA 0; by default physical = logical (exponent 0)', async () => {
    const d = (await submit(setupLun({ blockSize: 512, physicalBlockSize: 4096 }), rc16())).data!;
    expect(d[13] & 0x0f).toBe(3);
    expect(d.readUInt16BE(14) & 0x3fff).toBe(0);
    expect((await submit(setupLun({ blockSize: 512 }), rc16())).data![13] & 0x0f).toBe(0);
    expect((await submit(setupLun({ blockSize: 4096, blocks: 256, physicalBlockSize: 4096 }), rc16())).data![13] & 0x0f).toBe(0);
  });

  it('Block Limits: unmap granularity one physical block (UGAVALID, alignment 0), MAXIMUM UNMAP LBA COUNT ≤ 2^20', async () => {
    for (const bs of [512, 4096]) {
      const p = decodeBlockLimits((await submit(setupLun({ blockSize: bs, blocks: 4096, physicalBlockSize: 4096 }), vpdB0)).data!.subarray(4));
      expect(p.optimalUnmapGranularity).toBe(4096 / bs);
      expect(p.ugavalid).toBe(true);
      expect(p.unmapGranularityAlignment).toBe(0);
      expect(p.maxUnmapLbaCount).toBeGreaterThanOrEqual(4096 / bs);
      expect(p.maxUnmapLbaCount).toBeLessThanOrEqual(1 << 20);
      expect(p.maxUnmapLbaCount % (4096 / bs)).toBe(0);
      expect(p.optimalTransferLengthGranularity).toBe(4096 / bs);
      expect(p.wsnz).toBe(false);
      expect(p.maxWriteSameLength).toBe(0n);
      expect(p.maxCompareAndWriteLength).toBe(255);
    }
  });

  it('MAXIMUM TRANSFER LENGTH admits 65536-block (32 MiB) transfers of 512-byte blocks and enforces itself', async () => {
    const max = blockLimits({ blockSize: 512 }).maxTransferLength;
    expect(max).toBeGreaterThanOrEqual(65536);
    const l = setupLun({ blocks: max + 1 });
    expectGood(await submit(l, cdb16(0x8a, 0, 65536), { dataOut: Buffer.alloc(65536 * 512, 1) }));
    expect(senseOf(await submit(l, cdb16(0x88, 0, max + 1)))).toEqual([ILLEGAL_REQUEST, 0x24, 0x00]);
  });
});
