/**
 * Target PDU encoders (RFC 7143 §11): each encoder's 48 bytes against the independent
 * builder's bytes for the same fields, including flag bits (F/C/T, S/U/O), residuals, reserved
 * tags and LUN encodings (0, 5, 300); a few annotated hex vectors pin the builder itself; and
 * each encoded header (with its data segment) frames identically at every split offset.
 */
import { describe, expect, it } from 'vitest';
import {
  BHS_LENGTH, encodeAsyncMessage, encodeDataIn, encodeLoginResponse, encodeLogoutResponse, encodeNopIn, encodeR2T,
  encodeReject, encodeScsiResponse, encodeTaskMgmtResponse, encodeTextResponse, padLength, PAD, RESERVED_TAG,
} from '../../protocol/iscsi/pdu.ts';
import * as B from '../helpers/pdu-builder.ts';
import { hex } from '../helpers/pdu-builder.ts';
import { expectFramedEverywhere, pduSeen } from './framing.ts';

const S = { statSN: 0x101, expCmdSN: 0x202, maxCmdSN: 0x281 };
const LUNS = [0, 5, 300] as const;

/** Byte-for-byte equality, reported as hex so a wrong offset is easy to see. */
function same(actual: Buffer, expected: Buffer): void {
  expect(actual.length).toBe(BHS_LENGTH);
  expect(actual.toString('hex')).toBe(expected.toString('hex'));
}

/** The encoded header plus its data segment frames to exactly those bytes, at every split. */
function framesEverywhere(bhs: Buffer, data?: Buffer): void {
  for (const headerDigest of [false, true]) {
    const opts = { headerDigest, dataDigest: headerDigest, maxDataSegmentLength: 1 << 20 };
    const stream = B.wire(bhs, { data, headerDigest, dataDigest: headerDigest });
    expectFramedEverywhere(opts, stream, [pduSeen(bhs, { data })]);
  }
}

describe('builder pinned by annotated vectors', () => {
  it('SCSI Response: CHECK CONDITION with 18 bytes of sense, residual underflow', () => {
    same(B.scsiResponse({
      underflow: true, response: 0, status: 0x02, dsl: 20, itt: 0x42, expDataSN: 2, residual: 0x200, ...S,
    }), hex(`
      21                        # opcode 0x21 SCSI Response
      82                        # 1 | o=0 u=0 O=0 U=1
      00                        # Response 0: command completed at target
      02                        # Status: CHECK CONDITION
      00 00 00 14               # TotalAHSLength 0, DataSegmentLength 20 (SenseLength 2 + 18)
      00 00 00 00 00 00 00 00   # reserved
      00 00 00 42               # ITT
      00 00 00 00               # SNACK Tag
      00 00 01 01               # StatSN
      00 00 02 02               # ExpCmdSN
      00 00 02 81               # MaxCmdSN
      00 00 00 02               # ExpDataSN
      00 00 00 00               # Bidirectional Read Residual Count
      00 00 02 00               # Residual Count 512
    `));
  });

  it('Data-In: final, status present, overflow, LUN 300', () => {
    same(B.dataIn({
      final: true, statusPresent: true, overflow: true, status: 0, dsl: 512, lun: 300, itt: 7, ttt: 0xffffffff,
      dataSN: 3, bufferOffset: 0x600, residual: 0x100, ...S,
    }), hex(`
      25                        # opcode 0x25 SCSI Data-In
      85                        # F=1 A=0 000 O=1 U=0 S=1
      00                        # reserved
      00                        # Status GOOD (valid with S)
      00 00 02 00               # no AHS, DataSegmentLength 512
      41 2c 00 00 00 00 00 00   # LUN 300, flat space addressing
      00 00 00 07               # ITT
      ff ff ff ff               # TTT reserved (A=0)
      00 00 01 01               # StatSN (valid with S)
      00 00 02 02               # ExpCmdSN
      00 00 02 81               # MaxCmdSN
      00 00 00 03               # DataSN
      00 00 06 00               # Buffer Offset
      00 00 01 00               # Residual Count
    `));
  });

  it('Login Response: transit to full feature, success', () => {
    same(B.loginResponse({
      transit: true, csg: 1, nsg: 3, versionMax: 0, versionActive: 0, dsl: 0x2c, isid: '400001370000', tsih: 0x0101,
      itt: 0, statusClass: 0, statusDetail: 0, ...S,
    }), hex(`
      23                        # opcode 0x23 Login Response
      87                        # T=1 C=0 CSG=01 NSG=11
      00 00                     # Version-max 0, Version-active 0
      00 00 00 2c               # DataSegmentLength 44
      40 00 01 37 00 00         # ISID
      01 01                     # TSIH
      00 00 00 00               # ITT
      00 00 00 00               # reserved
      00 00 01 01 00 00 02 02 00 00 02 81  # StatSN, ExpCmdSN, MaxCmdSN
      00 00                     # Status-Class 0, Status-Detail 0: success
      00 00 00 00 00 00 00 00 00 00  # reserved
    `));
  });
});

describe('SCSI Response (§11.4)', () => {
  it('GOOD, no sense, no residual', () => {
    const b = encodeScsiResponse({ itt: 0x10, status: 0, senseLength: 0, expDataSN: 1 }, S);
    same(b, B.scsiResponse({ response: 0, status: 0, itt: 0x10, expDataSN: 1, residual: 0, ...S }));
    framesEverywhere(b);
  });

  it('CHECK CONDITION: DataSegmentLength = SenseLength field (2) + sense bytes', () => {
    const b = encodeScsiResponse({ itt: 0x11, status: 0x02, senseLength: 18 }, S);
    same(b, B.scsiResponse({ response: 0, status: 0x02, dsl: 20, itt: 0x11, expDataSN: 0, residual: 0, ...S }));
    const sense = Buffer.concat([Buffer.from([0, 18]), Buffer.alloc(18, 0x70)]);
    framesEverywhere(b, sense);
  });

  it('underflow: U bit and Residual Count', () => {
    same(encodeScsiResponse({ itt: 1, status: 0, underflow: 4096, senseLength: 0, expDataSN: 2 }, S),
      B.scsiResponse({ underflow: true, response: 0, status: 0, itt: 1, expDataSN: 2, residual: 4096, ...S }));
  });

  it('overflow: O bit and Residual Count', () => {
    same(encodeScsiResponse({ itt: 1, status: 0, overflow: 0xffffffff, senseLength: 0 }, S),
      B.scsiResponse({ overflow: true, response: 0, status: 0, itt: 1, expDataSN: 0, residual: 0xffffffff, ...S }));
  });

  it('Response 1 (target failure), BUSY and RESERVATION CONFLICT status bytes', () => {
    same(encodeScsiResponse({ itt: 2, status: 0, response: 1, senseLength: 0 }, S),
      B.scsiResponse({ response: 1, status: 0, itt: 2, expDataSN: 0, residual: 0, ...S }));
    for (const status of [0x08, 0x18, 0x28]) {
      same(encodeScsiResponse({ itt: 3, status, senseLength: 0 }, S),
        B.scsiResponse({ response: 0, status, itt: 3, expDataSN: 0, residual: 0, ...S }));
    }
  });

  it('sequence numbers at the 2^32 wrap', () => {
    const w = { statSN: 0xffffffff, expCmdSN: 0, maxCmdSN: 0x7fffffff };
    same(encodeScsiResponse({ itt: 0xfffffffe, status: 0, senseLength: 0, expDataSN: 0xffffffff }, w),
      B.scsiResponse({ response: 0, status: 0, itt: 0xfffffffe, expDataSN: 0xffffffff, residual: 0, ...w }));
  });
});

describe('SCSI Data-In (§11.7)', () => {
  for (const lun of LUNS) {
    it(`middle PDU, LUN ${lun}: F=0, no status, StatSN and residual reserved`, () => {
      const b = encodeDataIn({ itt: 9, lun, final: false, dataSN: 0, bufferOffset: 0, length: 8192 }, S);
      same(b, B.dataIn({
        final: false, dsl: 8192, lun, itt: 9, ttt: 0xffffffff, dataSN: 0, bufferOffset: 0, ...S, statSN: 0,
      }));
    });
  }

  it('final without status (the SCSI Response follows): F=1, S=0', () => {
    same(encodeDataIn({ itt: 9, lun: 5, final: true, dataSN: 2, bufferOffset: 16384, length: 100 }, S),
      B.dataIn({ final: true, dsl: 100, lun: 5, itt: 9, ttt: 0xffffffff, dataSN: 2, bufferOffset: 16384, ...S, statSN: 0 }));
  });

  it('residuals are only sent with status (S=0 ignores underflow)', () => {
    same(encodeDataIn({ itt: 9, lun: 0, final: true, dataSN: 0, bufferOffset: 0, length: 4, underflow: 12 }, S),
      B.dataIn({ final: true, dsl: 4, itt: 9, ttt: 0xffffffff, dataSN: 0, bufferOffset: 0, ...S, statSN: 0 }));
  });

  it('final with status GOOD: F=1, S=1, StatSN present', () => {
    const b = encodeDataIn({ itt: 9, lun: 300, final: true, status: 0, dataSN: 1, bufferOffset: 512, length: 6 }, S);
    same(b, B.dataIn({
      final: true, statusPresent: true, status: 0, dsl: 6, lun: 300, itt: 9, ttt: 0xffffffff, dataSN: 1,
      bufferOffset: 512, ...S,
    }));
    framesEverywhere(b, Buffer.from('sixsix'));
  });

  it('status with underflow: U and Residual Count', () => {
    same(encodeDataIn({ itt: 9, lun: 5, final: true, status: 0, dataSN: 0, bufferOffset: 0, length: 512, underflow: 3584 }, S),
      B.dataIn({
        final: true, statusPresent: true, underflow: true, status: 0, dsl: 512, lun: 5, itt: 9, ttt: 0xffffffff,
        dataSN: 0, bufferOffset: 0, residual: 3584, ...S,
      }));
  });

  it('status with overflow: O and Residual Count', () => {
    same(encodeDataIn({ itt: 9, lun: 0, final: true, status: 0, dataSN: 0, bufferOffset: 0, length: 512, overflow: 10 }, S),
      B.dataIn({
        final: true, statusPresent: true, overflow: true, status: 0, dsl: 512, itt: 9, ttt: 0xffffffff,
        dataSN: 0, bufferOffset: 0, residual: 10, ...S,
      }));
  });

  it('DataSegmentLength uses all 24 bits', () => {
    same(encodeDataIn({ itt: 1, lun: 0, final: false, dataSN: 0, bufferOffset: 0, length: 0xfffffc }, S),
      B.dataIn({ final: false, dsl: 0xfffffc, itt: 1, ttt: 0xffffffff, dataSN: 0, bufferOffset: 0, ...S, statSN: 0 }));
  });
});

describe('R2T (§11.8)', () => {
  for (const lun of LUNS) {
    it(`LUN ${lun}`, () => {
      const b = encodeR2T({ itt: 0x20, ttt: 0x8001, lun, r2tSN: 3, bufferOffset: 65536, desiredLength: 262144 }, S);
      same(b, B.r2t({ lun, itt: 0x20, ttt: 0x8001, r2tSN: 3, bufferOffset: 65536, desiredLength: 262144, ...S }));
      framesEverywhere(b);
    });
  }
});

describe('NOP-In (§11.19)', () => {
  it('reply to a NOP-Out: ITT echoed, TTT reserved, ping data echoed', () => {
    const b = encodeNopIn(0x11, RESERVED_TAG, 0, 4, S);
    same(b, B.nopIn({ dsl: 4, itt: 0x11, ttt: 0xffffffff, ...S }));
    framesEverywhere(b, Buffer.from('ping'));
  });

  for (const lun of LUNS) {
    it(`target ping on LUN ${lun}: ITT reserved, TTT set`, () => {
      same(encodeNopIn(RESERVED_TAG, 0x4444, lun, 0, S), B.nopIn({ lun, itt: 0xffffffff, ttt: 0x4444, ...S }));
    });
  }
});

describe('Task Management Function Response (§11.6)', () => {
  for (const response of [0, 1, 2, 5, 255]) {
    it(`response ${response}`, () => {
      const b = encodeTaskMgmtResponse(0x30, response, S);
      same(b, B.tmfResponse({ response, itt: 0x30, ...S }));
    });
  }
  it('frames', () => framesEverywhere(encodeTaskMgmtResponse(0x30, 0, S)));
});

describe('Login Response (§11.13)', () => {
  const base = {
    versionMax: 0, versionActive: 0, isid: '400001370000', tsih: 0, itt: 0, statusClass: 0, statusDetail: 0,
    dataLength: 0,
  };

  it('security → operational, transit (T=1, CSG=0, NSG=1)', () => {
    same(encodeLoginResponse({ ...base, transit: true, cont: false, csg: 0, nsg: 1, dataLength: 30 }, S),
      B.loginResponse({ ...base, transit: true, csg: 0, nsg: 1, dsl: 30, ...S }));
  });

  it('operational → full feature with a new TSIH', () => {
    const b = encodeLoginResponse({ ...base, transit: true, cont: false, csg: 1, nsg: 3, tsih: 0xbeef, itt: 4 }, S);
    same(b, B.loginResponse({ ...base, transit: true, csg: 1, nsg: 3, tsih: 0xbeef, itt: 4, ...S }));
    framesEverywhere(b);
  });

  it('without T, NSG is reserved and sent as zero even if given', () => {
    same(encodeLoginResponse({ ...base, transit: false, cont: false, csg: 1, nsg: 3 }, S),
      B.loginResponse({ ...base, transit: false, csg: 1, nsg: 0, ...S }));
  });

  it('C bit for a continued response', () => {
    same(encodeLoginResponse({ ...base, transit: false, cont: true, csg: 0, nsg: 0, dataLength: 8192 }, S),
      B.loginResponse({ ...base, transit: false, cont: true, csg: 0, nsg: 0, dsl: 8192, ...S }));
  });

  it('failure status class and detail (initiator error 02/01: authentication failure)', () => {
    same(encodeLoginResponse({ ...base, transit: false, cont: false, csg: 0, nsg: 0, statusClass: 2, statusDetail: 1 }, S),
      B.loginResponse({ ...base, transit: false, csg: 0, nsg: 0, statusClass: 2, statusDetail: 1, ...S }));
  });

  it('ISID bytes are written as given (all six), versions as given', () => {
    same(encodeLoginResponse({
      ...base, transit: true, cont: false, csg: 1, nsg: 3, isid: '80123456789a', versionMax: 1, versionActive: 0,
    }, S), B.loginResponse({ ...base, transit: true, csg: 1, nsg: 3, isid: '80123456789a', versionMax: 1, ...S }));
  });
});

describe('Text Response (§11.11)', () => {
  for (const lun of LUNS) {
    it(`final, LUN ${lun}`, () => {
      const b = encodeTextResponse({ final: true, cont: false, lun, itt: 1, ttt: RESERVED_TAG, dataLength: 50 }, S);
      same(b, B.textResponse({ final: true, dsl: 50, lun, itt: 1, ttt: 0xffffffff, ...S }));
    });
  }

  it('continued (F=0, C=1) with a TTT for the next request', () => {
    const b = encodeTextResponse({ final: false, cont: true, lun: 0, itt: 1, ttt: 0x99, dataLength: 3 }, S);
    same(b, B.textResponse({ final: false, cont: true, dsl: 3, itt: 1, ttt: 0x99, ...S }));
    framesEverywhere(b, Buffer.from('a=b'));
  });
});

describe('Logout Response (§11.15)', () => {
  it('closed successfully, Time2Wait and Time2Retain', () => {
    const b = encodeLogoutResponse(0x77, 0, 2, 20, S);
    same(b, B.logoutResponse({ response: 0, itt: 0x77, time2Wait: 2, time2Retain: 20, ...S }));
    framesEverywhere(b);
  });

  it('CID not found (response 1), maximum times', () => {
    same(encodeLogoutResponse(0x78, 1, 3600, 0xffff, S),
      B.logoutResponse({ response: 1, itt: 0x78, time2Wait: 3600, time2Retain: 0xffff, ...S }));
  });
});

describe('Reject (§11.17)', () => {
  it('protocol error: ITT reserved, data segment = the rejected header (48 bytes)', () => {
    const b = encodeReject(0x04, 0, S);
    same(b, B.reject({ reason: 0x04, dataSN: 0, ...S }));
    const rejected = B.nopOut({ itt: 1, ttt: 0xffffffff, cmdSN: 1, expStatSN: 1 });
    framesEverywhere(b, rejected);
  });

  it('data digest error carries DataSN/R2TSN', () => {
    same(encodeReject(0x02, 17, S), B.reject({ reason: 0x02, dataSN: 17, ...S }));
  });
});

describe('Asynchronous Message (§11.9)', () => {
  for (const lun of LUNS) {
    it(`event 0 (SCSI async event, sense in data) on LUN ${lun}`, () => {
      const b = encodeAsyncMessage({ lun, event: 0, dataLength: 20 }, S);
      same(b, B.asyncMessage({ dsl: 20, lun, asyncEvent: 0, ...S }));
    });
  }

  it('event 1 (logout request) with Parameter3 = Time2Wait, and all parameters placed', () => {
    const b = encodeAsyncMessage({ lun: 0, event: 1, param3: 10 }, S);
    same(b, B.asyncMessage({ asyncEvent: 1, parameter3: 10, ...S }));
    framesEverywhere(b);
    same(encodeAsyncMessage({ lun: 5, event: 4, vcode: 0x33, param1: 0x1111, param2: 0x2222, param3: 0x3333 }, S),
      B.asyncMessage({ lun: 5, asyncEvent: 4, asyncVCode: 0x33, parameter1: 0x1111, parameter2: 0x2222, parameter3: 0x3333, ...S }));
  });
});

describe('encoders in general', () => {
  it('each call returns a fresh buffer: a later call does not change an earlier header', () => {
    const a = encodeR2T({ itt: 1, ttt: 1, lun: 0, r2tSN: 0, bufferOffset: 0, desiredLength: 1 }, S);
    const snapshot = Buffer.from(a);
    const b = encodeR2T({ itt: 2, ttt: 2, lun: 300, r2tSN: 1, bufferOffset: 8, desiredLength: 9 }, S);
    expect(b).not.toBe(a);
    expect(a.equals(snapshot)).toBe(true);
  });

  it('reserved bytes are zero even when the allocator hands out dirty memory', () => {
    // allocUnsafe may recycle pool memory: fill the pool with 0xff and encode again.
    for (let i = 0; i < 64; i++) Buffer.allocUnsafe(48).fill(0xff);
    same(encodeTaskMgmtResponse(0x30, 0, S), B.tmfResponse({ response: 0, itt: 0x30, ...S }));
    same(encodeLogoutResponse(0x77, 0, 2, 20, S), B.logoutResponse({ response: 0, itt: 0x77, time2Wait: 2, time2Retain: 20, ...S }));
  });

  it('padLength and PAD bring every data length to a 4-byte boundary (§11.1)', () => {
    for (let n = 0; n < 16; n++) {
      const p = padLength(n);
      expect((n + p) % 4).toBe(0);
      expect(p).toBeLessThan(4);
      expect(PAD[p].length).toBe(p);
      expect(PAD[p].every((x) => x === 0)).toBe(true);
    }
  });
});
