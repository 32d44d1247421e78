/**
 * planWrite / dataOutPieces (src/initiator/data-out.ts): the immediate / unsolicited / solicited
 * split of a write under each combination of ImmediateData and InitialR2T (RFC 7143 §13.10-14),
 * and Data-Out pieces that never exceed the target's MaxRecvDataSegmentLength.
 */
import { describe, expect, it } from 'vitest';
import { dataOutPieces, planWrite } from '../../src/initiator/data-out.ts';

const rules = (immediateData: boolean, initialR2T: boolean) => ({ immediateData, initialR2T, firstBurstLength: 65536, maxSendDataSegmentLength: 8192 });

describe('planWrite', () => {
  it.each([
    // [ImmediateData, InitialR2T, length, immediate, unsolicitedEnd, F]
    [true, true, 4096, 4096, 4096, true],
    [true, true, 1 << 20, 8192, 8192, true],
    [true, false, 1 << 20, 8192, 65536, false],
    [true, false, 4096, 4096, 4096, true],
    [false, false, 1 << 20, 0, 65536, false],
    [false, false, 4096, 0, 4096, false],
    [false, true, 1 << 20, 0, 0, true],
  ])('ImmediateData=%s InitialR2T=%s, %d bytes → immediate %d, unsolicited to %d, F=%s', (imm, r2t, len, immediate, unsolicitedEnd, final) => {
    expect(planWrite(rules(imm, r2t), len)).toEqual({ immediate, unsolicitedEnd, final });
  });

  it('an EDTL above the data length: F=0 while the target still expects unsolicited data', () => {
    expect(planWrite(rules(true, false), 512, 8192)).toEqual({ immediate: 512, unsolicitedEnd: 512, final: false });
  });
});

describe('dataOutPieces', () => {
  it('splits at the limit, DataSN from 0, F on the last only', () => {
    expect(dataOutPieces(8192, 20000, 8192)).toEqual([
      { offset: 8192, length: 8192, dataSN: 0, final: false },
      { offset: 16384, length: 8192, dataSN: 1, final: false },
      { offset: 24576, length: 3616, dataSN: 2, final: true },
    ]);
  });

  it('nothing for an empty range', () => {
    expect(dataOutPieces(0, 0, 8192)).toEqual([]);
  });
});
