/**
 * encodeXcopyParameterList (the initiator's EXTENDED COPY LID1 list) against the test builder that
 * shares no code with it (test/scsi/xcopy-params.ts), and back through the target's decoder.
 */
import { describe, expect, it } from 'vitest';
import { decodeCopyStatus, decodeXcopyParameterList, encodeCopyStatus, encodeXcopyParameterList, ListIdUsage } from '../../protocol/scsi/xcopy.ts';
import { xcopyList } from '../scsi/xcopy-params.ts';

const NAA0 = '5001405000000c00';
const NAA1 = '5001405000000c01';
const LIMITS = { maxCscdDescriptors: 8, maxSegmentDescriptors: 8, maxDescriptorListLength: 1024, supportedCscdTypes: [0xe4], supportedSegmentTypes: [0x02] };

describe('encodeXcopyParameterList', () => {
  const list = encodeXcopyParameterList({
    listId: 5, listIdUsage: ListIdUsage.Hold,
    cscds: [
      { codeSet: 1, association: 0, designatorType: 3, designator: Buffer.from(NAA0, 'hex'), diskBlockLength: 512 },
      { codeSet: 1, association: 0, designatorType: 3, designator: Buffer.from(NAA1, 'hex'), diskBlockLength: 512 },
    ],
    segments: [
      { source: 0, destination: 1, blocks: 8192, sourceLba: 100n, destinationLba: 5000n },
      { source: 0, destination: 1, blocks: 65535, sourceLba: 1n << 33n, destinationLba: 7n },
    ],
  });

  it('is byte for byte what the independent builder makes', () => {
    expect(list.toString('hex')).toBe(xcopyList({
      listId: 5, usage: 0,
      cscds: [{ naa: NAA0 }, { naa: NAA1 }],
      segments: [{ src: 0, dst: 1, blocks: 8192, srcLba: 100, dstLba: 5000 }, { src: 0, dst: 1, blocks: 65535, srcLba: 1n << 33n, dstLba: 7 }],
    }).toString('hex'));
  });

  it('the target decoder reads it back', () => {
    const p = decodeXcopyParameterList(list, LIMITS);
    expect(p.header).toMatchObject({ listId: 5, listIdUsage: ListIdUsage.Hold, cscdListLength: 64, segmentListLength: 56 });
    expect(p.cscds.map((c) => c.designator.toString('hex'))).toEqual([NAA0, NAA1]);
    expect(p.segments).toMatchObject([
      { type: 0x02, source: 0, destination: 1, blocks: 8192, sourceLba: 100n, destinationLba: 5000n },
      { type: 0x02, blocks: 65535, sourceLba: 1n << 33n, destinationLba: 7n },
    ]);
  });

  it('refuses what LID1 cannot carry', () => {
    expect(() => encodeXcopyParameterList({ listId: 0, listIdUsage: 3, cscds: [], segments: [{ source: 0, destination: 0, blocks: 65536, sourceLba: 0n, destinationLba: 0n }] })).toThrow(RangeError);
    expect(() => encodeXcopyParameterList({ listId: 0, listIdUsage: 3, cscds: [{ codeSet: 1, association: 0, designatorType: 3, designator: Buffer.alloc(21), diskBlockLength: 512 }], segments: [] })).toThrow(RangeError);
  });
});

describe('decodeCopyStatus', () => {
  it('round trips encodeCopyStatus', () => {
    const s = { hdd: false, status: 1, segmentsProcessed: 3, transferCountUnits: 1, transferCount: 4096 };
    expect(decodeCopyStatus(encodeCopyStatus(s))).toEqual(s);
  });
});
