/** VERIFY, WRITE AND VERIFY, ORWRITE, WRITE ATOMIC (SBC-4 §5.10, §5.37–§5.49). COMPARE AND WRITE: sbc-ats.test.ts. */
import { describe, expect, it } from 'vitest';
import { blockLimits } from '../../src/scsi/sbc.ts';
import {
  cdb10, cdb12, cdb16, DATA_PROTECT, expectGood, ILLEGAL_REQUEST, MISCOMPARE, pattern, senseInformation, senseOf, setupLun, submit,
} from './sbc-fixture.ts';

const BS = 512;
const BYTCHK1 = 0x02, BYTCHK3 = 0x06;

describe('VERIFY', () => {
  it('BYTCHK=0 verifies the medium (no data)', async () => {
    const l = setupLun();
    expectGood(await submit(l, cdb10(0x2f, 0, 10)));
  });

  for (const [name, mk] of [['10', cdb10], ['12', cdb12], ['16', cdb16]] as const) {
    it(`(${name}) BYTCHK=1 matches equal data and reports MISCOMPARE with the offset otherwise`, async () => {
      const l = setupLun();
      const op = name === '10' ? 0x2f : name === '12' ? 0xaf : 0x8f;
      const data = pattern(4 * BS, 5);
      await submit(l, cdb10(0x2a, 20, 4), { dataOut: data });
      expectGood(await submit(l, mk(op, 20, 4, BYTCHK1), { dataOut: data }));
      const bad = Buffer.from(data);
      bad[3 * BS + 17] ^= 1;
      const r = await submit(l, mk(op, 20, 4, BYTCHK1), { dataOut: bad });
      expect(senseOf(r)).toEqual([MISCOMPARE, 0x1d, 0x00]);
      expect(senseInformation(r)).toBe(3 * BS + 17);
    });
  }

  it('BYTCHK=3 compares one block against every block', async () => {
    const l = setupLun();
    const blk = pattern(BS, 2);
    const four = Buffer.concat([blk, blk, blk, blk]);
    await submit(l, cdb10(0x2a, 0, 4), { dataOut: four });
    expectGood(await submit(l, cdb16(0x8f, 0, 4, BYTCHK3), { dataOut: blk }));
    await submit(l, cdb10(0x2a, 2, 1), { dataOut: Buffer.alloc(BS) });
    const r = await submit(l, cdb16(0x8f, 0, 4, BYTCHK3), { dataOut: blk });
    expect(senseOf(r)).toEqual([MISCOMPARE, 0x1d, 0x00]);
  });

  it('BYTCHK=2, VRPROTECT and beyond-end are rejected', async () => {
    const l = setupLun({ blocks: 100 });
    expect(senseOf(await submit(l, cdb10(0x2f, 0, 1, 0x04), { dataOut: Buffer.alloc(BS) }))).toEqual([ILLEGAL_REQUEST, 0x24, 0x00]);
    expect(senseOf(await submit(l, cdb10(0x2f, 0, 1, 0x20)))).toEqual([ILLEGAL_REQUEST, 0x24, 0x00]);
    expect(senseOf(await submit(l, cdb10(0x2f, 99, 2)))).toEqual([ILLEGAL_REQUEST, 0x21, 0x00]);
  });
});

describe('WRITE AND VERIFY', () => {
  it('(10/12/16) write the data', async () => {
    const l = setupLun();
    for (const [op, mk] of [[0x2e, cdb10], [0xae, cdb12], [0x8e, cdb16]] as const) {
      const d = pattern(2 * BS, op);
      expectGood(await submit(l, mk(op, 40, 2, BYTCHK1), { dataOut: d }));
      expect((await submit(l, cdb10(0x28, 40, 2))).data!.equals(d)).toBe(true);
    }
  });

  it('is WRITE PROTECTED on a readonly LU and LBA OUT OF RANGE past the end', async () => {
    expect(senseOf(await submit(setupLun({ readonly: true }), cdb10(0x2e, 0, 1), { dataOut: Buffer.alloc(BS) }))).toEqual([DATA_PROTECT, 0x27, 0x00]);
    expect(senseOf(await submit(setupLun({ blocks: 10 }), cdb16(0x8e, 10, 1), { dataOut: Buffer.alloc(BS) }))).toEqual([ILLEGAL_REQUEST, 0x21, 0x00]);
  });
});

describe('ORWRITE(16)', () => {
  it('ORs the Data-Out into the medium', async () => {
    const l = setupLun();
    await submit(l, cdb10(0x2a, 5, 1), { dataOut: Buffer.alloc(BS, 0x0f) });
    expectGood(await submit(l, cdb16(0x8b, 5, 1), { dataOut: Buffer.alloc(BS, 0xa0) }));
    expect((await submit(l, cdb10(0x28, 5, 1))).data!.every((b) => b === 0xaf)).toBe(true);
  });
});

describe('WRITE ATOMIC(16)', () => {
  const wa = (lba: number, n: number, boundary = 0) => {
    const c = Buffer.alloc(16); c[0] = 0x9c; c.writeBigUInt64BE(BigInt(lba), 2); c.writeUInt16BE(boundary, 10); c.writeUInt16BE(n, 12); return c;
  };

  it('writes the data', async () => {
    const l = setupLun();
    const d = pattern(8 * BS, 4);
    expectGood(await submit(l, wa(100, 8), { dataOut: d }));
    expect((await submit(l, cdb10(0x28, 100, 8))).data!.equals(d)).toBe(true);
  });

  it('rejects lengths above the maximum atomic transfer length and any atomic boundary', async () => {
    const max = blockLimits({ blockSize: BS }).maxAtomicTransferLength;
    const l = setupLun({ blocks: max * 4 });
    expect(senseOf(await submit(l, wa(0, max + 1), { dataOut: Buffer.alloc((max + 1) * BS) }))).toEqual([ILLEGAL_REQUEST, 0x24, 0x00]);
    expect(senseOf(await submit(l, wa(0, 1, 1), { dataOut: Buffer.alloc(BS) }))).toEqual([ILLEGAL_REQUEST, 0x24, 0x00]);
    expect(senseOf(await submit(l, wa(max * 4, 1), { dataOut: Buffer.alloc(BS) }))).toEqual([ILLEGAL_REQUEST, 0x21, 0x00]);
  });
});
