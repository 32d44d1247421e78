/**
 * The initiator's side of the PDU codec (protocol/iscsi/initiator-pdu.ts): each encoder's 48 bytes
 * against the independent builder (test/helpers/pdu-builder.ts) for the same fields, two annotated
 * vectors pinning the bytes, and the decoder of target PDUs on builder-made headers, framed at
 * every split offset with and without digests.
 */
import { describe, expect, it } from 'vitest';
import { Framer } from '../../protocol/iscsi/framer.ts';
import {
  decodeTargetPdu, encodeDataOut, encodeLoginRequest, encodeLogoutRequest, encodeNopOut, encodeScsiCommand, encodeTaskMgmtRequest,
  encodeTextRequest,
} from '../../protocol/iscsi/initiator-pdu.ts';
import * as B from '../helpers/pdu-builder.ts';
import { hex } from '../helpers/pdu-builder.ts';
import { expectFramedEverywhere, pduSeen } from './framing.ts';

const same = (a: Buffer, b: Buffer): void => expect(a.toString('hex')).toBe(b.toString('hex'));

describe('initiator PDU encoders against the independent builder', () => {
  for (const lun of [0, 5, 300]) {
    it(`SCSI Command, read and write flags, LUN ${lun}`, () => {
      const cdb = Buffer.from('8a000000000000001000000000080000', 'hex');
      for (const [read, write, final] of [[true, false, true], [false, true, false], [false, false, true]] as const) {
        same(
          encodeScsiCommand({ final, read, write, attr: 1, lun, itt: 0x1234, edtl: 0x1000, cmdSN: 9, expStatSN: 4, cdb, dataLength: write ? 512 : 0 }),
          B.scsiCommand({ final, read, write, attr: 1, lun, itt: 0x1234, edtl: 0x1000, cmdSN: 9, expStatSN: 4, cdb, dsl: write ? 512 : 0 }),
        );
      }
    });

    it(`Data-Out solicited and unsolicited, LUN ${lun}`, () => {
      for (const [ttt, final] of [[0xffffffff, false], [0x77, true]] as const) {
        same(
          encodeDataOut({ final, lun, itt: 3, ttt, expStatSN: 8, dataSN: 2, bufferOffset: 0x4000, dataLength: 8192 }),
          B.dataOut({ final, lun, itt: 3, ttt, expStatSN: 8, dataSN: 2, bufferOffset: 0x4000, dsl: 8192 }),
        );
      }
    });

    it(`Task Management Request ABORT TASK, LUN ${lun}`, () => {
      same(
        encodeTaskMgmtRequest({ func: 1, lun, itt: 0x10, referencedTaskTag: 0x0f, cmdSN: 12, expStatSN: 5, refCmdSN: 11 }),
        B.tmfRequest({ immediate: true, func: 1, lun, itt: 0x10, rtt: 0x0f, cmdSN: 12, expStatSN: 5, refCmdSN: 11, expDataSN: 0 }),
      );
    });
  }

  it('NOP-Out: a ping of ours, and the answer to a target ping', () => {
    same(encodeNopOut({ itt: 7, ttt: 0xffffffff, cmdSN: 3, expStatSN: 2, dataLength: 0 }),
      B.nopOut({ immediate: true, itt: 7, ttt: 0xffffffff, cmdSN: 3, expStatSN: 2 }));
    same(encodeNopOut({ itt: 0xffffffff, ttt: 0x55, lun: 2, cmdSN: 3, expStatSN: 2, dataLength: 0 }),
      B.nopOut({ immediate: true, lun: 2, itt: 0xffffffff, ttt: 0x55, cmdSN: 3, expStatSN: 2 }));
  });

  it('Login Request in each stage transition, and without T (NSG then zero)', () => {
    for (const [transit, csg, nsg] of [[true, 0, 1], [true, 1, 3], [true, 0, 3], [false, 0, 0], [false, 1, 0]] as const) {
      same(
        encodeLoginRequest({ transit, csg, nsg, isid: '80123456789a', tsih: 0x21, itt: 1, cid: 0, cmdSN: 1, expStatSN: 0, dataLength: 100 }),
        B.loginRequest({ transit, csg, nsg, isid: '80123456789a', tsih: 0x21, itt: 1, cid: 0, cmdSN: 1, expStatSN: 0, dsl: 100 }),
      );
    }
    expect(() => encodeLoginRequest({ transit: false, csg: 0, nsg: 0, isid: 'xyz', tsih: 0, itt: 1, cid: 0, cmdSN: 1, expStatSN: 0, dataLength: 0 })).toThrow(RangeError);
  });

  it('Text Request and Logout Request', () => {
    same(encodeTextRequest({ final: true, itt: 4, ttt: 0xffffffff, cmdSN: 2, expStatSN: 2, dataLength: 16 }),
      B.textRequest({ immediate: true, final: true, itt: 4, ttt: 0xffffffff, cmdSN: 2, expStatSN: 2, dsl: 16 }));
    same(encodeLogoutRequest({ reason: 0, itt: 9, cid: 0, cmdSN: 30, expStatSN: 40 }),
      B.logoutRequest({ immediate: true, reasonCode: 0, itt: 9, cid: 0, cmdSN: 30, expStatSN: 40 }));
  });

  it('annotated: SCSI Command WRITE(16) with 512 bytes of immediate data', () => {
    same(encodeScsiCommand({
      final: true, read: false, write: true, attr: 1, lun: 1, itt: 0x0a, edtl: 512, cmdSN: 0x20, expStatSN: 0x11,
      cdb: Buffer.from('8a00000000000000006400000001', 'hex'), dataLength: 512,
    }), hex(`
      01                        # opcode 0x01 SCSI Command, I=0
      a1                        # F=1 R=0 W=1 ATTR=1 (simple)
      00 00                     # reserved
      00 00 02 00               # TotalAHSLength 0, DataSegmentLength 512
      00 01 00 00 00 00 00 00   # LUN 1
      00 00 00 0a               # ITT
      00 00 02 00               # Expected Data Transfer Length 512
      00 00 00 20               # CmdSN
      00 00 00 11               # ExpStatSN
      8a 00 00 00 00 00 00 00 00 64 00 00 00 01 00 00  # CDB WRITE(16) LBA 100, 1 block
    `));
  });

  it('annotated: Data-Out answering an R2T', () => {
    same(encodeDataOut({ final: true, lun: 0, itt: 0x0a, ttt: 0x3, expStatSN: 0x11, dataSN: 1, bufferOffset: 0x2000, dataLength: 0x2000 }), hex(`
      05 80 00 00               # opcode 0x05 Data-Out, F=1
      00 00 20 00               # DataSegmentLength 8192
      00 00 00 00 00 00 00 00   # LUN 0
      00 00 00 0a               # ITT
      00 00 00 03               # TTT from the R2T
      00 00 00 00               # reserved
      00 00 00 11               # ExpStatSN
      00 00 00 00               # reserved
      00 00 00 01               # DataSN
      00 00 20 00               # Buffer Offset
      00 00 00 00               # reserved
    `));
  });

  it('a CDB over 16 bytes is refused (it would need an AHS)', () => {
    expect(() => encodeScsiCommand({ final: true, read: false, write: false, lun: 0, itt: 1, edtl: 0, cmdSN: 1, expStatSN: 0, cdb: Buffer.alloc(32), dataLength: 0 })).toThrow(RangeError);
  });
});

const S = { statSN: 0x101, expCmdSN: 0x202, maxCmdSN: 0x281 };
const DATA = Buffer.from('0123456789abcdefghij');

const TARGET_VECTORS: { name: string; bhs: Buffer; data?: Buffer; decoded: Record<string, unknown> }[] = [
  {
    name: 'SCSI Response with sense and an underflow',
    bhs: B.scsiResponse({ underflow: true, response: 0, status: 2, dsl: DATA.length, itt: 0x42, expDataSN: 2, residual: 0x200, ...S }),
    data: DATA,
    decoded: { op: 0x21, itt: 0x42, status: 2, response: 0, underflow: true, overflow: false, residual: 0x200, expDataSN: 2, ...S },
  },
  {
    name: 'Data-In with status, overflow, LUN 300',
    bhs: B.dataIn({ final: true, statusPresent: true, overflow: true, status: 0, dsl: DATA.length, lun: 300, itt: 7, ttt: 0xffffffff, dataSN: 3, bufferOffset: 0x600, residual: 0x100, ...S }),
    data: DATA,
    decoded: { op: 0x25, itt: 7, final: true, statusPresent: true, overflow: true, underflow: false, status: 0, lun: 300, dataSN: 3, bufferOffset: 0x600, residual: 0x100 },
  },
  {
    name: 'R2T',
    bhs: B.r2t({ lun: 2, itt: 9, ttt: 0x99, r2tSN: 1, bufferOffset: 0x10000, desiredLength: 0x40000, ...S }),
    decoded: { op: 0x31, itt: 9, ttt: 0x99, lun: 2, r2tSN: 1, bufferOffset: 0x10000, desiredLength: 0x40000, maxCmdSN: S.maxCmdSN },
  },
  {
    name: 'NOP-In ping',
    bhs: B.nopIn({ itt: 0xffffffff, ttt: 0x1234, ...S }),
    decoded: { op: 0x20, itt: 0xffffffff, ttt: 0x1234, lun: 0, statSN: S.statSN },
  },
  {
    name: 'Login Response: failure 02/01',
    bhs: B.loginResponse({ transit: false, csg: 0, nsg: 0, versionMax: 0, versionActive: 0, isid: '80123456789a', tsih: 0, itt: 1, statusClass: 2, statusDetail: 1, ...S }),
    decoded: { op: 0x23, transit: false, csg: 0, nsg: 0, isid: '80123456789a', tsih: 0, statusClass: 2, statusDetail: 1 },
  },
  {
    name: 'Login Response: to full feature with keys',
    bhs: B.loginResponse({ transit: true, csg: 1, nsg: 3, versionMax: 0, versionActive: 0, dsl: DATA.length, isid: '80123456789a', tsih: 0x101, itt: 1, statusClass: 0, statusDetail: 0, ...S }),
    data: DATA,
    decoded: { op: 0x23, transit: true, cont: false, csg: 1, nsg: 3, tsih: 0x101, statusClass: 0 },
  },
  {
    name: 'Text Response continued',
    bhs: B.textResponse({ final: false, cont: true, dsl: DATA.length, itt: 5, ttt: 0x77, ...S }),
    data: DATA,
    decoded: { op: 0x24, final: false, cont: true, itt: 5, ttt: 0x77 },
  },
  {
    name: 'Logout Response',
    bhs: B.logoutResponse({ response: 0, itt: 6, time2Wait: 2, time2Retain: 20, ...S }),
    decoded: { op: 0x26, response: 0, itt: 6, time2Wait: 2, time2Retain: 20 },
  },
  {
    name: 'TMF Response: task does not exist',
    bhs: B.tmfResponse({ response: 1, itt: 0x10, ...S }),
    decoded: { op: 0x22, response: 1, itt: 0x10 },
  },
  {
    name: 'Async Message: logout requested in 5 s',
    bhs: B.asyncMessage({ lun: 0, asyncEvent: 1, parameter3: 5, ...S }),
    decoded: { op: 0x32, event: 1, param3: 5 },
  },
  {
    name: 'Reject of a header whose ITT was 0x1234',
    bhs: B.reject({ reason: 9, dataSN: 0, ...S }),
    data: B.scsiCommand({ itt: 0x1234, edtl: 0, cmdSN: 1, expStatSN: 0, cdb: Buffer.alloc(16) }),
    decoded: { op: 0x3f, reason: 9, rejectedItt: 0x1234 },
  },
];

describe('decodeTargetPdu on builder-made target PDUs', () => {
  for (const v of TARGET_VECTORS) {
    it(`${v.name}: decodes, and frames the same at every split offset with and without digests`, () => {
      expect(decodeTargetPdu(v.bhs, v.data ?? Buffer.alloc(0))).toMatchObject(v.decoded);
      for (const digests of [false, true]) {
        const opts = { headerDigest: digests, dataDigest: digests, maxDataSegmentLength: 8192 };
        expectFramedEverywhere(opts, B.wire(v.bhs, { data: v.data, headerDigest: digests, dataDigest: digests }), [pduSeen(v.bhs, { data: v.data })]);
      }
      const f = new Framer({ headerDigest: true, dataDigest: true, maxDataSegmentLength: 8192 });
      let n = 0;
      f.push(B.wire(v.bhs, { data: v.data, headerDigest: true, dataDigest: true }), (e) => {
        if (e.kind !== 'pdu') throw new Error(e.kind);
        expect(decodeTargetPdu(e.pdu.bhs, e.pdu.data)).toMatchObject(v.decoded);
        n++;
      });
      expect(n).toBe(1);
    });
  }

  it('an unknown opcode keeps its number', () => {
    const b = B.nopIn({ itt: 1, ttt: 0xffffffff, ...S });
    b[0] = 0x3c;
    expect(decodeTargetPdu(b, Buffer.alloc(0))).toMatchObject({ op: 'unknown', opcode: 0x3c, itt: 1 });
  });
});
