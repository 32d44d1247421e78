/**
 * Sense data (protocol/scsi/sense.ts, SPC-5 §4.4): fixed (0x70) and descriptor (0x72) formats
 * as annotated golden bytes.
 */
import { describe, expect, it } from 'vitest';
import { buildDescriptorSense, buildFixedSense, buildSense, reasonTriple, SENSE_REASONS } from '../../protocol/scsi/sense.ts';
import type { SenseReason } from '../../protocol/scsi/sense.ts';
import { hex } from '../helpers/pdu-builder.ts';

const h = (b: Buffer): string => b.toString('hex');

describe('fixed format (SPC-5 §4.4.3)', () => {
  it('INVALID FIELD IN CDB with a bit-precise field pointer', () => {
    expect(h(buildFixedSense('InvalidFieldInCdb', { fieldPointer: { inCdb: true, byte: 2, bit: 1 } }))).toBe(h(hex(`
      70                  # VALID=0, RESPONSE CODE 70h (current, fixed)
      00                  # obsolete
      05                  # FILEMARK/EOM/ILI=0, SENSE KEY 5h ILLEGAL REQUEST
      00 00 00 00         # INFORMATION (not valid)
      0a                  # ADDITIONAL SENSE LENGTH 10
      00 00 00 00         # COMMAND-SPECIFIC INFORMATION
      24 00               # ASC/ASCQ 24h/00h INVALID FIELD IN CDB
      00                  # FRU code
      c9                  # SKSV=1, C/D=1 (CDB), BPV=1, BIT POINTER 1
      00 02               # FIELD POINTER: byte 2
    `)));
  });

  it('LBA OUT OF RANGE with INFORMATION: VALID set', () => {
    expect(h(buildFixedSense('LbaOutOfRange', { information: 0x12345678 }))).toBe(h(hex(`
      f0 00 05            # VALID=1, 70h; ILLEGAL REQUEST
      12 34 56 78         # INFORMATION
      0a 00 00 00 00      # length; CSI
      21 00               # LOGICAL BLOCK ADDRESS OUT OF RANGE
      00 00 00 00         # FRU, SKS not valid
    `)));
  });

  it('INFORMATION beyond 32 bits does not fit: VALID clear, field zero', () => {
    const b = buildFixedSense('LbaOutOfRange', { information: 0x100000000n });
    expect(b[0]).toBe(0x70);
    expect(h(b.subarray(3, 7))).toBe('00000000');
  });

  it('ILI, command-specific information, parameter-list field pointer without bit', () => {
    expect(h(buildFixedSense('ParameterValueInvalid', { ili: true, commandSpecific: 0xdeadbeef, fieldPointer: { inCdb: false, byte: 0x1a } })))
      .toBe(h(hex(`
        70 00 25            # ILI=1 | ILLEGAL REQUEST
        00 00 00 00 0a
        de ad be ef         # COMMAND-SPECIFIC INFORMATION
        26 02 00            # PARAMETER VALUE INVALID; FRU
        80 00 1a            # SKSV=1, C/D=0 (parameter data), BPV=0; FIELD POINTER 1Ah
      `)));
  });

  it('UNIT ATTENTION: POWER ON, RESET, OR BUS DEVICE RESET OCCURRED', () => {
    const b = buildFixedSense('PowerOnResetOccurred');
    expect([b.length, b[0], b[2], b[7], b[12], b[13], b[15]]).toEqual([18, 0x70, 0x06, 10, 0x29, 0x00, 0]);
  });
});

describe('descriptor format (SPC-5 §4.4.2)', () => {
  it('header only', () => {
    expect(h(buildDescriptorSense('WriteProtected'))).toBe(h(hex(`
      72                  # RESPONSE CODE 72h (current, descriptor)
      07 27 00            # SENSE KEY DATA PROTECT; ASC/ASCQ 27h/00h WRITE PROTECTED
      00 00 00            # reserved
      00                  # ADDITIONAL SENSE LENGTH 0
    `)));
  });

  it('information, command-specific and sense-key-specific descriptors, in that order', () => {
    expect(h(buildDescriptorSense('InvalidFieldInCdb', {
      information: 0x1122334455667788n, commandSpecific: 7, fieldPointer: { inCdb: true, byte: 1, bit: 7 },
    }))).toBe(h(hex(`
      72 05 24 00 00 00 00
      20                  # ADDITIONAL SENSE LENGTH 32 = 12 + 12 + 8
      00 0a 80 00         # Information descriptor: type 00h, length 0Ah, VALID=1, reserved
      11 22 33 44 55 66 77 88
      01 0a 00 00         # Command-specific information descriptor: type 01h, length 0Ah
      00 00 00 00 00 00 00 07
      02 06 00 00         # Sense key specific descriptor: type 02h, length 06h
      cf 00 01 00         # SKSV=1 C/D=1 BPV=1 BIT 7; FIELD POINTER 1; reserved
    `)));
  });
});

describe('reasons', () => {
  it('buildSense chooses the format', () => {
    expect(buildSense('InvalidOpcode', false)[0]).toBe(0x70);
    expect(buildSense('InvalidOpcode', true)[0]).toBe(0x72);
    expect(reasonTriple('InvalidOpcode')).toEqual([0x05, 0x20, 0x00]);
  });

  it('every reason has a valid sense key and one-byte ASC/ASCQ, identical in both formats', () => {
    for (const reason of Object.keys(SENSE_REASONS) as SenseReason[]) {
      const [key, asc, ascq] = reasonTriple(reason);
      expect(key >= 0 && key <= 0xf, reason).toBe(true);
      expect(asc <= 0xff && ascq <= 0xff, reason).toBe(true);
      const f = buildFixedSense(reason);
      const d = buildDescriptorSense(reason);
      expect([f[2] & 0x0f, f[12], f[13]], reason).toEqual([key, asc, ascq]);
      expect([d[1], d[2], d[3]], reason).toEqual([key, asc, ascq]);
    }
  });
});
