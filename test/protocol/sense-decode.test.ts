/**
 * decodeSense (protocol/scsi/sense.ts), the initiator's reading of sense data: hand-built fixed
 * and descriptor vectors decode field by field, every reason built by buildSense decodes back to
 * its own key/ASC/ASCQ (and to a reason with that triple), and short or unknown data is null.
 */
import { describe, expect, it } from 'vitest';
import { buildSense, decodeSense, reasonOf, SENSE_REASONS } from '../../protocol/scsi/sense.ts';
import type { SenseReason } from '../../protocol/scsi/sense.ts';
import { hex } from '../helpers/pdu-builder.ts';

describe('decodeSense', () => {
  it('fixed format MISCOMPARE with INFORMATION (the ATS offset)', () => {
    expect(decodeSense(hex(`
      f0          # VALID=1, response code 70h
      00
      0e          # sense key MISCOMPARE
      00 00 02 bc # INFORMATION 700
      0a          # additional length
      00 00 00 00 # command-specific
      1d 00       # ASC/ASCQ MISCOMPARE DURING VERIFY OPERATION
      00 00 00 00
    `))).toEqual({ format: 'fixed', deferred: false, key: 0x0e, asc: 0x1d, ascq: 0, reason: 'MiscompareDuringVerify', information: 700n });
  });

  it('fixed format ILLEGAL REQUEST with a CDB field pointer and bit pointer', () => {
    expect(decodeSense(hex('70 00 05 00000000 0a 00000000 24 00 00 cb 00 02'))).toEqual({
      format: 'fixed', deferred: false, key: 5, asc: 0x24, ascq: 0, reason: 'InvalidFieldInCdb', fieldPointer: { inCdb: true, byte: 2, bit: 3 },
    });
  });

  it('descriptor format with information (8 bytes), command-specific and field pointer descriptors', () => {
    expect(decodeSense(hex(`
      72 05 26 00 00 00 00 24                       # ILLEGAL REQUEST 26/00, additional length 36
      00 0a 80 00 00 00 00 01 00 00 00 00           # information descriptor, VALID, 2^32
      01 0a 00 00 00 00 00 00 00 00 00 07           # command-specific information 7
      02 06 00 00 80 00 10 00                       # sense key specific: parameter list byte 16
    `))).toEqual({
      format: 'descriptor', deferred: false, key: 5, asc: 0x26, ascq: 0, reason: 'InvalidFieldInParameterList',
      information: 1n << 32n, commandSpecific: 7n, fieldPointer: { inCdb: false, byte: 16 },
    });
  });

  it('every reason, built in both formats, decodes back to its triple and to a reason with that triple', () => {
    for (const name of Object.keys(SENSE_REASONS) as SenseReason[]) {
      const [key, asc, ascq] = SENSE_REASONS[name];
      for (const descriptor of [false, true]) {
        const d = decodeSense(buildSense(name, descriptor, { information: 12 }))!;
        expect(d).toMatchObject({ key, asc, ascq, information: 12n, format: descriptor ? 'descriptor' : 'fixed' });
        expect(SENSE_REASONS[d.reason!]).toEqual([key, asc, ascq]);
      }
    }
  });

  it('NOT READY progress indication', () => {
    expect(decodeSense(buildSense('NotReadyFormatInProgress', false, { progress: 0x8000 }))?.progress).toBe(0x8000);
  });

  it('short or unknown data: null', () => {
    expect(decodeSense(Buffer.alloc(0))).toBeNull();
    expect(decodeSense(hex('70 00 05'))).toBeNull();
    expect(decodeSense(hex('7f 00 05 00 00 00 00 00 00 00 00 00 00 00'))).toBeNull();
  });

  it('reasonOf: unknown triples have no name', () => {
    expect(reasonOf(0x0e, 0x1d, 0x00)).toBe('MiscompareDuringVerify');
    expect(reasonOf(0x05, 0x99, 0x99)).toBeUndefined();
  });
});
