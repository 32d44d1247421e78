/**
 * Initiator PDUs (RFC 7143 §11): golden vectors annotated field by field, each checked against
 * the independent builder (test/helpers/pdu-builder.ts), decoded with decodePdu with every
 * field asserted, and framed at every split offset with and without digests.
 */
import { describe, expect, it } from 'vitest';
import { decodePdu, decodeLun } from '../../protocol/iscsi/pdu.ts';
import type { InitiatorPdu } from '../../protocol/iscsi/pdu.ts';
import * as B from '../helpers/pdu-builder.ts';
import { hex } from '../helpers/pdu-builder.ts';
import { Framer } from '../../protocol/iscsi/framer.ts';
import { expectFramedEverywhere, pduSeen } from './framing.ts';

const NONE = Buffer.alloc(0);
const ZERO16 = '00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00';

interface Vector {
  name: string;
  golden: Buffer;
  built: Buffer;
  ahs?: Buffer;
  data?: Buffer;
  decoded: InitiatorPdu;
}

const loginText = Buffer.from('InitiatorName=iqn.2026-01.test:host-a\0SessionType=Normal\0AuthMethod=None\0');
const sendTargets = Buffer.from('SendTargets=All\0');
const writeData = Buffer.from('abcdef'); // 6 bytes → 2 bytes of padding
const cdb32Tail = Buffer.from(Array.from({ length: 16 }, (_, i) => 0xa0 + i));

const VECTORS: Vector[] = [
  {
    name: 'NOP-Out ping (immediate, TTT reserved)',
    golden: hex(`
      40                        # byte 0: I=1, opcode 0x00 NOP-Out
      80 00 00                  # byte 1: F=1; bytes 2-3 reserved
      00                        # TotalAHSLength 0
      00 00 04                  # DataSegmentLength 4 (ping data)
      00 00 00 00 00 00 00 00   # LUN 0
      00 00 00 11               # Initiator Task Tag
      ff ff ff ff               # Target Transfer Tag: reserved, not a reply to a NOP-In
      00 00 00 05               # CmdSN
      00 00 00 07               # ExpStatSN
      ${ZERO16}                 # bytes 32-47 reserved
    `),
    built: B.nopOut({ immediate: true, dsl: 4, itt: 0x11, ttt: 0xffffffff, cmdSN: 5, expStatSN: 7 }),
    data: Buffer.from('ping'),
    decoded: {
      op: 0x00, immediate: true, itt: 0x11, data: Buffer.from('ping'), lun: 0, ttt: 0xffffffff, cmdSN: 5, expStatSN: 7,
    },
  },
  {
    name: 'NOP-Out reply to a NOP-In ping (LUN 5, TTT echoed)',
    golden: hex(`
      40 80 00 00               # I=1 NOP-Out; F=1
      00 00 00 00               # no AHS, no data
      00 05 00 00 00 00 00 00   # LUN 5, peripheral addressing (00b)
      ff ff ff ff               # ITT reserved: this answers the target
      00 00 ab cd               # TTT copied from the NOP-In
      00 00 00 09               # CmdSN
      00 00 00 0a               # ExpStatSN
      ${ZERO16}
    `),
    built: B.nopOut({ immediate: true, lun: 5, itt: 0xffffffff, ttt: 0xabcd, cmdSN: 9, expStatSN: 10 }),
    decoded: { op: 0x00, immediate: true, itt: 0xffffffff, data: NONE, lun: 5, ttt: 0xabcd, cmdSN: 9, expStatSN: 10 },
  },
  {
    // RFC 7143 Appendix B.4 "iSCSI - SCSI Read (10) Command PDU": the same 48 bytes.
    name: 'SCSI Command READ(10), the RFC 7143 B.4 example',
    golden: hex(`
      01                        # byte 0: I=0, opcode 0x01 SCSI Command
      c0                        # byte 1: F=1 R=1 W=0, ATTR=0 (untagged)
      00 00                     # reserved
      00 00 00 00               # TotalAHSLength 0, DataSegmentLength 0
      00 00 00 00 00 00 00 00   # LUN 0
      14 00 00 00               # ITT 0x14000000
      00 00 04 00               # Expected Data Transfer Length 1024
      00 00 00 14               # CmdSN 20
      00 00 00 18               # ExpStatSN 24
      28 00 00 00 00 00 00 00 02 00 00 00 00 00 00 00  # CDB: READ(10) LBA 0, 2 blocks
    `),
    built: B.scsiCommand({
      final: true, read: true, itt: 0x14000000, edtl: 1024, cmdSN: 20, expStatSN: 24,
      cdb: Buffer.from([0x28, 0, 0, 0, 0, 0, 0, 0, 2, 0]),
    }),
    decoded: {
      op: 0x01, immediate: false, itt: 0x14000000, data: NONE, ahs: null, final: true, read: true, write: false,
      attr: 0, lun: 0, edtl: 1024, cmdSN: 20, expStatSN: 24, cdb: hex('28 00 00 00 00 00 00 00 02 00 00 00 00 00 00 00'),
    },
  },
  {
    name: 'SCSI Command WRITE(10) with immediate data, SIMPLE, LUN 300 (flat addressing)',
    golden: hex(`
      01                        # SCSI Command
      a1                        # F=1 R=0 W=1, ATTR=1 (SIMPLE)
      00 00
      00                        # TotalAHSLength 0
      00 00 06                  # DataSegmentLength 6 (immediate data)
      41 2c 00 00 00 00 00 00   # LUN 300: flat space addressing (01b), 0x012c
      00 00 00 42               # ITT
      00 00 02 00               # Expected Data Transfer Length 512
      ff ff ff fe               # CmdSN near the wrap
      00 00 00 01               # ExpStatSN
      2a 00 00 00 10 00 00 00 01 00 00 00 00 00 00 00  # CDB: WRITE(10) LBA 0x1000, 1 block
    `),
    built: B.scsiCommand({
      final: true, write: true, attr: 1, dsl: 6, lun: 300, itt: 0x42, edtl: 512, cmdSN: 0xfffffffe, expStatSN: 1,
      cdb: Buffer.from([0x2a, 0, 0, 0, 0x10, 0, 0, 0, 1, 0]),
    }),
    data: writeData,
    decoded: {
      op: 0x01, immediate: false, itt: 0x42, data: writeData, ahs: null, final: true, read: false, write: true,
      attr: 1, lun: 300, edtl: 512, cmdSN: 0xfffffffe, expStatSN: 1,
      cdb: hex('2a 00 00 00 10 00 00 00 01 00 00 00 00 00 00 00'),
    },
  },
  {
    name: 'SCSI Command with a 32-byte CDB: Extended CDB AHS (immediate, HEAD OF QUEUE)',
    golden: hex(`
      41                        # I=1, SCSI Command
      83                        # F=1, ATTR=3 (HEAD OF QUEUE)
      00 00
      05                        # TotalAHSLength 5 words = 20 bytes
      00 00 00                  # no data
      00 05 00 00 00 00 00 00   # LUN 5
      00 00 00 43               # ITT
      00 00 00 00               # EDTL 0
      00 00 00 02               # CmdSN
      00 00 00 03               # ExpStatSN
      7f 00 00 00 00 00 00 18 00 00 00 00 00 00 00 00  # CDB bytes 0-15 (variable length, 0x18 = 24 bytes add. length)
    `),
    built: B.scsiCommand({
      immediate: true, final: true, attr: 3, ahsWords: 5, lun: 5, itt: 0x43, edtl: 0, cmdSN: 2, expStatSN: 3,
      cdb: hex('7f 00 00 00 00 00 00 18'),
    }),
    ahs: B.extendedCdbAhs(cdb32Tail),
    decoded: {
      op: 0x01, immediate: true, itt: 0x43, data: NONE, final: true, read: false, write: false, attr: 3, lun: 5,
      edtl: 0, cmdSN: 2, expStatSN: 3, cdb: hex('7f 00 00 00 00 00 00 18 00 00 00 00 00 00 00 00'),
      ahs: hex(`
        00 11                   # AHSLength 17 = CDB length 32 - 15
        01                      # AHSType 1: Extended CDB
        00                      # reserved
        a0 a1 a2 a3 a4 a5 a6 a7 a8 a9 aa ab ac ad ae af  # CDB bytes 16-31
      `),
    },
  },
  {
    name: 'Task Management Request: ABORT TASK',
    golden: hex(`
      42                        # I=1, opcode 0x02 TMF Request
      81                        # byte 1: 1 | Function 1 (ABORT TASK)
      00 00
      00 00 00 00               # no AHS, no data
      00 05 00 00 00 00 00 00   # LUN 5
      00 00 00 0a               # ITT
      00 00 00 07               # Referenced Task Tag
      00 00 00 20               # CmdSN
      00 00 00 30               # ExpStatSN
      00 00 00 1f               # RefCmdSN
      00 00 00 04               # ExpDataSN
      00 00 00 00 00 00 00 00   # reserved
    `),
    built: B.tmfRequest({
      immediate: true, func: 1, lun: 5, itt: 0x0a, rtt: 7, cmdSN: 0x20, expStatSN: 0x30, refCmdSN: 0x1f, expDataSN: 4,
    }),
    decoded: {
      op: 0x02, immediate: true, itt: 0x0a, data: NONE, func: 1, lun: 5, referencedTaskTag: 7, cmdSN: 0x20,
      expStatSN: 0x30, refCmdSN: 0x1f, expDataSN: 4,
    },
  },
  {
    name: 'Task Management Request: LOGICAL UNIT RESET on LUN 300',
    golden: hex(`
      42 85 00 00               # I=1 TMF; Function 5 (LOGICAL UNIT RESET)
      00 00 00 00
      41 2c 00 00 00 00 00 00   # LUN 300, flat
      00 00 01 00               # ITT
      ff ff ff ff               # Referenced Task Tag: reserved for this function
      00 00 00 21               # CmdSN
      00 00 00 31               # ExpStatSN
      00 00 00 00               # RefCmdSN: reserved
      00 00 00 00               # ExpDataSN
      00 00 00 00 00 00 00 00
    `),
    built: B.tmfRequest({
      immediate: true, func: 5, lun: 300, itt: 0x100, rtt: 0xffffffff, cmdSN: 0x21, expStatSN: 0x31, refCmdSN: 0,
      expDataSN: 0,
    }),
    decoded: {
      op: 0x02, immediate: true, itt: 0x100, data: NONE, func: 5, lun: 300, referencedTaskTag: 0xffffffff,
      cmdSN: 0x21, expStatSN: 0x31, refCmdSN: 0, expDataSN: 0,
    },
  },
  {
    name: 'Login Request: operational stage → full feature (T=1, CSG=1, NSG=3)',
    golden: hex(`
      43                        # I=1 (always for login), opcode 0x03
      87                        # T=1 C=0, CSG=01 (operational), NSG=11 (full feature)
      00                        # Version-max 0
      00                        # Version-min 0
      00                        # TotalAHSLength 0
      00 00 49                  # DataSegmentLength 73 (text, 3 bytes of padding on the wire)
      40 00 01 37 00 00         # ISID: type 01b (random), A=0, B=0x0137, C=0, D=0
      00 00                     # TSIH 0: new session
      00 00 00 00               # ITT
      00 01                     # CID 1
      00 00                     # reserved
      00 00 00 aa               # CmdSN
      00 00 00 00               # ExpStatSN
      ${ZERO16}
    `),
    built: B.loginRequest({
      transit: true, csg: 1, nsg: 3, dsl: loginText.length, isid: '400001370000', tsih: 0, itt: 0, cid: 1,
      cmdSN: 0xaa, expStatSN: 0,
    }),
    data: loginText,
    decoded: {
      op: 0x03, immediate: true, itt: 0, data: loginText, transit: true, cont: false, csg: 1, nsg: 3, versionMax: 0,
      versionMin: 0, isid: '400001370000', tsih: 0, cid: 1, cmdSN: 0xaa, expStatSN: 0,
    },
  },
  {
    name: 'Login Request: continued security stage (T=0, C=1, CSG=0), existing TSIH',
    golden: hex(`
      43
      40                        # T=0 C=1, CSG=00 (security), NSG=00
      01 00                     # Version-max 1, Version-min 0
      00 00 00 00
      80 12 34 56 78 9a         # ISID: type 10b (random), A..D
      12 34                     # TSIH 0x1234 (adding a connection)
      00 00 00 05               # ITT
      00 02 00 00               # CID 2, reserved
      00 00 00 01               # CmdSN
      00 00 00 02               # ExpStatSN
      ${ZERO16}
    `),
    built: B.loginRequest({
      transit: false, cont: true, csg: 0, nsg: 0, versionMax: 1, versionMin: 0, isid: '80123456789a', tsih: 0x1234,
      itt: 5, cid: 2, cmdSN: 1, expStatSN: 2,
    }),
    decoded: {
      op: 0x03, immediate: true, itt: 5, data: NONE, transit: false, cont: true, csg: 0, nsg: 0, versionMax: 1,
      versionMin: 0, isid: '80123456789a', tsih: 0x1234, cid: 2, cmdSN: 1, expStatSN: 2,
    },
  },
  {
    name: 'Text Request: SendTargets=All',
    golden: hex(`
      44                        # I=1, opcode 0x04 Text Request
      80                        # F=1 C=0
      00 00
      00 00 00 10               # no AHS, DataSegmentLength 16
      00 00 00 00 00 00 00 00   # LUN 0
      00 00 00 01               # ITT
      ff ff ff ff               # TTT: reserved, new request
      00 00 00 01               # CmdSN
      00 00 00 01               # ExpStatSN
      ${ZERO16}
    `),
    built: B.textRequest({ immediate: true, final: true, dsl: 16, itt: 1, ttt: 0xffffffff, cmdSN: 1, expStatSN: 1 }),
    data: sendTargets,
    decoded: {
      op: 0x04, immediate: true, itt: 1, data: sendTargets, final: true, cont: false, lun: 0, ttt: 0xffffffff,
      cmdSN: 1, expStatSN: 1,
    },
  },
  {
    name: 'Text Request: continued (F=0, C=1), continuing a target exchange',
    golden: hex(`
      04 40 00 00               # I=0 Text Request; F=0 C=1
      00 00 00 00
      00 00 00 00 00 00 00 00
      00 00 00 02               # ITT
      00 00 00 77               # TTT from the previous Text Response
      00 00 00 02               # CmdSN
      00 00 00 03               # ExpStatSN
      ${ZERO16}
    `),
    built: B.textRequest({ final: false, cont: true, itt: 2, ttt: 0x77, cmdSN: 2, expStatSN: 3 }),
    decoded: {
      op: 0x04, immediate: false, itt: 2, data: NONE, final: false, cont: true, lun: 0, ttt: 0x77, cmdSN: 2,
      expStatSN: 3,
    },
  },
  {
    name: 'SCSI Data-Out answering an R2T (final, LUN 5)',
    golden: hex(`
      05                        # opcode 0x05 SCSI Data-Out
      80 00 00                  # F=1
      00 00 00 07               # no AHS, DataSegmentLength 7 (1 byte of padding)
      00 05 00 00 00 00 00 00   # LUN 5
      00 00 01 00               # ITT
      00 00 12 34               # TTT from the R2T
      00 00 00 00               # reserved
      00 00 00 09               # ExpStatSN
      00 00 00 00               # reserved
      00 00 00 03               # DataSN
      00 00 30 00               # Buffer Offset 0x3000
      00 00 00 00               # reserved
    `),
    built: B.dataOut({ final: true, dsl: 7, lun: 5, itt: 0x100, ttt: 0x1234, expStatSN: 9, dataSN: 3, bufferOffset: 0x3000 }),
    data: Buffer.from('0123456'),
    decoded: {
      op: 0x05, immediate: false, itt: 0x100, data: Buffer.from('0123456'), final: true, lun: 5, ttt: 0x1234,
      expStatSN: 9, dataSN: 3, bufferOffset: 0x3000,
    },
  },
  {
    name: 'SCSI Data-Out unsolicited (not final, TTT reserved)',
    golden: hex(`
      05 00 00 00               # F=0
      00 00 00 00
      00 00 00 00 00 00 00 00
      00 00 01 01               # ITT
      ff ff ff ff               # TTT reserved: unsolicited data
      00 00 00 00
      00 00 00 0a               # ExpStatSN
      00 00 00 00
      00 00 00 00               # DataSN 0
      00 00 00 00               # Buffer Offset 0
      00 00 00 00
    `),
    built: B.dataOut({ final: false, itt: 0x101, ttt: 0xffffffff, expStatSN: 10, dataSN: 0, bufferOffset: 0 }),
    decoded: {
      op: 0x05, immediate: false, itt: 0x101, data: NONE, final: false, lun: 0, ttt: 0xffffffff, expStatSN: 10,
      dataSN: 0, bufferOffset: 0,
    },
  },
  {
    name: 'Logout Request: close the session',
    golden: hex(`
      46                        # I=1, opcode 0x06 Logout Request
      80                        # 1 | Reason Code 0 (close the session)
      00 00
      00 00 00 00
      00 00 00 00 00 00 00 00   # reserved
      00 00 00 77               # ITT
      00 01 00 00               # CID 1, reserved
      00 00 00 30               # CmdSN
      00 00 00 31               # ExpStatSN
      ${ZERO16}
    `),
    built: B.logoutRequest({ immediate: true, reasonCode: 0, itt: 0x77, cid: 1, cmdSN: 0x30, expStatSN: 0x31 }),
    decoded: { op: 0x06, immediate: true, itt: 0x77, data: NONE, reason: 0, cid: 1, cmdSN: 0x30, expStatSN: 0x31 },
  },
  {
    name: 'Logout Request: remove the connection for recovery',
    golden: hex(`
      06 82 00 00               # I=0; Reason Code 2
      00 00 00 00
      00 00 00 00 00 00 00 00
      00 00 00 78               # ITT
      ff fe 00 00               # CID 0xfffe
      00 00 00 32               # CmdSN
      00 00 00 33               # ExpStatSN
      ${ZERO16}
    `),
    built: B.logoutRequest({ reasonCode: 2, itt: 0x78, cid: 0xfffe, cmdSN: 0x32, expStatSN: 0x33 }),
    decoded: { op: 0x06, immediate: false, itt: 0x78, data: NONE, reason: 2, cid: 0xfffe, cmdSN: 0x32, expStatSN: 0x33 },
  },
  {
    name: 'SNACK Request: Status SNACK',
    golden: hex(`
      10                        # opcode 0x10 SNACK Request
      81                        # 1 | 000 | Type 1 (Status)
      00 00
      00 00 00 00
      00 00 00 00 00 00 00 00   # LUN
      00 00 00 42               # ITT
      ff ff ff ff               # TTT / SNACK Tag: reserved
      00 00 00 00               # reserved
      00 00 00 03               # ExpStatSN
      00 00 00 00 00 00 00 00   # reserved
      00 00 00 10               # BegRun
      00 00 00 02               # RunLength
    `),
    built: B.snack({ type: 1, itt: 0x42, tttOrSnackTag: 0xffffffff, expStatSN: 3, begRun: 0x10, runLength: 2 }),
    decoded: {
      op: 0x10, immediate: false, itt: 0x42, data: NONE, type: 1, lun: 0, ttt: 0xffffffff, expStatSN: 3,
      begRun: 0x10, runLength: 2,
    },
  },
  {
    name: 'SNACK Request: R-Data SNACK with a SNACK Tag, LUN 5',
    golden: hex(`
      10 83 00 00               # Type 3 (R-Data)
      00 00 00 00
      00 05 00 00 00 00 00 00   # LUN 5
      00 00 00 43               # ITT
      00 00 99 99               # SNACK Tag
      00 00 00 00
      00 00 00 04               # ExpStatSN
      00 00 00 00 00 00 00 00
      00 00 00 00               # BegRun 0
      00 00 00 00               # RunLength 0: everything
    `),
    built: B.snack({ type: 3, lun: 5, itt: 0x43, tttOrSnackTag: 0x9999, expStatSN: 4, begRun: 0, runLength: 0 }),
    decoded: {
      op: 0x10, immediate: false, itt: 0x43, data: NONE, type: 3, lun: 5, ttt: 0x9999, expStatSN: 4, begRun: 0,
      runLength: 0,
    },
  },
];

describe('decodePdu: golden initiator PDUs', () => {
  for (const v of VECTORS) {
    describe(v.name, () => {
      it('the annotated vector is 48 bytes and matches the independent builder', () => {
        expect(v.golden.length).toBe(48);
        expect(v.built.toString('hex')).toBe(v.golden.toString('hex'));
      });

      it('decodes every field', () => {
        const pdu = decodePdu(v.golden, v.ahs ?? null, v.data ?? NONE);
        expect(pdu).toEqual(v.decoded);
      });

      it('frames at every split offset, then decodes the same, with and without digests', () => {
        for (const headerDigest of [false, true]) {
          for (const dataDigest of [false, true]) {
            const opts = { headerDigest, dataDigest, maxDataSegmentLength: 8192 };
            const stream = B.wire(v.golden, { ahs: v.ahs, data: v.data, headerDigest, dataDigest });
            expectFramedEverywhere(opts, stream, [pduSeen(v.golden, { ahs: v.ahs, data: v.data })]);
          }
        }
        const framer = new Framer({ headerDigest: true, dataDigest: true, maxDataSegmentLength: 8192 });
        let decoded = 0;
        framer.push(B.wire(v.golden, { ahs: v.ahs, data: v.data, headerDigest: true, dataDigest: true }), (e) => {
          if (e.kind !== 'pdu') throw new Error(e.kind);
          expect(decodePdu(e.pdu.bhs, e.pdu.ahs, e.pdu.data)).toEqual(v.decoded);
          decoded++;
        });
        expect(decoded).toBe(1);
      });
    });
  }
});

describe('decodePdu: common fields', () => {
  const base = { itt: 1, edtl: 0, cmdSN: 0, expStatSN: 0, cdb: Buffer.alloc(16) };

  it('hands out views, not copies, of the BHS and data', () => {
    const bhs = B.scsiCommand({ ...base, dsl: 4, cdb: Buffer.from([0x12]) });
    const data = Buffer.from('wxyz');
    const pdu = decodePdu(bhs, null, data);
    if (pdu.op !== 0x01) throw new Error('not a SCSI Command');
    expect(pdu.data).toBe(data);
    bhs[32] = 0x00; // the CDB view follows its BHS
    expect(pdu.cdb[0]).toBe(0x00);
  });

  it('reads the I bit independently of the opcode', () => {
    for (const immediate of [false, true]) {
      expect(decodePdu(B.scsiCommand({ ...base, immediate }), null, NONE).immediate).toBe(immediate);
    }
  });

  it('ignores bit 7 of byte 0 (reserved) when taking the opcode', () => {
    const bhs = B.nopOut({ itt: 9, ttt: 0xffffffff, cmdSN: 1, expStatSN: 1 });
    bhs[0] |= 0x80;
    expect(decodePdu(bhs, null, NONE)).toMatchObject({ op: 0x00, itt: 9 });
  });

  it('all eight SCSI task attributes (ATTR, 3 bits) come through', () => {
    for (let attr = 0; attr < 8; attr++) {
      expect(decodePdu(B.scsiCommand({ ...base, attr }), null, NONE)).toMatchObject({ op: 0x01, attr });
    }
  });

  it('unknown and target opcodes decode as unknown, keeping the opcode, I bit, ITT and data', () => {
    for (const opcode of [0x07, 0x0f, 0x1c, 0x1e, 0x21, 0x25, 0x3f]) {
      const bhs = Buffer.alloc(48);
      bhs[0] = 0x40 | opcode;
      bhs.writeUInt32BE(0xcafe, 16);
      const data = Buffer.from('x');
      expect(decodePdu(bhs, null, data)).toEqual({ op: 'unknown', opcode, immediate: true, itt: 0xcafe, data });
    }
  });
});

describe('decodeLun (SAM-5 §4.7 single level LUN)', () => {
  const lun = (...bytes: number[]): Buffer => Buffer.from([...bytes, ...Array(8 - bytes.length).fill(0)]);

  it('peripheral device addressing, bus 0: LUN 0..255', () => {
    expect(decodeLun(lun(0x00, 0x00), 0)).toBe(0);
    expect(decodeLun(lun(0x00, 0x05), 0)).toBe(5);
    expect(decodeLun(lun(0x00, 0xff), 0)).toBe(255);
  });

  it('flat space addressing: 14-bit LUN', () => {
    expect(decodeLun(lun(0x41, 0x2c), 0)).toBe(300);
    expect(decodeLun(lun(0x40, 0x05), 0)).toBe(5);
    expect(decodeLun(lun(0x7f, 0xff), 0)).toBe(16383);
  });

  it('agrees with the builder encoding for 0, 5, 255, 256, 300, 16383', () => {
    for (const n of [0, 5, 255, 256, 300, 16383]) expect(decodeLun(B.lunField(n), 0)).toBe(n);
  });

  it('logical unit and extended addressing (10b, 11b) name no LUN we have', () => {
    expect(decodeLun(lun(0x80, 0x05), 0)).toBe(0xffff);
    expect(decodeLun(lun(0xc0, 0x05), 0)).toBe(0xffff);
  });

  it('a second addressing level names a different LU, not the first-level one', () => {
    expect(decodeLun(lun(0x00, 0x05, 0x00, 0x01), 0)).toBe(0xffff);
    expect(decodeLun(lun(0x41, 0x2c, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01), 0)).toBe(0xffff);
  });

  it('reads at the given offset (the BHS LUN field is at byte 8)', () => {
    const bhs = B.dataOut({ final: true, lun: 300, itt: 0, ttt: 0, expStatSN: 0, dataSN: 0, bufferOffset: 0 });
    expect(decodeLun(bhs)).toBe(300);
  });
});
