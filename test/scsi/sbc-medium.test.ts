/** START STOP UNIT, PREVENT ALLOW MEDIUM REMOVAL, PRE-FETCH, READ DEFECT DATA, FORMAT UNIT, SANITIZE. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configureSanitize } from '../../src/scsi/sbc-medium.ts';
import type { SanitizeTiming } from '../../src/scsi/sbc-medium.ts';
import { ScsiStatus } from '../../src/scsi/types.ts';
import {
  cdb10, cdb16, DATA_PROTECT, expectGood, fieldPointer, ILLEGAL_REQUEST, makeNexus, NOT_READY, senseOf, setupLun, submit,
} from './sbc-fixture.ts';

const ssu = (byte4: number, immed = false) => Buffer.from([0x1b, immed ? 1 : 0, 0, 0, byte4, 0]);
const pamr = (prevent: number) => Buffer.from([0x1e, 0, 0, 0, prevent, 0]);
const LOEJ = 0x02, START = 0x01;

describe('START STOP UNIT', () => {
  it('ejects and loads a removable medium; media commands say MEDIUM NOT PRESENT meanwhile', async () => {
    const l = setupLun({ removable: true });
    expectGood(await submit(l, ssu(LOEJ), { edtl: 0 }));
    expect(l.lu.mediumPresent).toBe(false);
    expect(senseOf(await submit(l, cdb10(0x28, 0, 1)))).toEqual([NOT_READY, 0x3a, 0x00]);
    expect(senseOf(await submit(l, cdb10(0x2a, 0, 1), { dataOut: Buffer.alloc(512) }))).toEqual([NOT_READY, 0x3a, 0x00]);
    expect(senseOf(await submit(l, cdb10(0x35, 0, 0)))).toEqual([NOT_READY, 0x3a, 0x00]);
    expectGood(await submit(l, ssu(LOEJ | START, true)));
    expectGood(await submit(l, cdb10(0x28, 0, 1)));
  });

  it('LOEJ on a non-removable LU is INVALID FIELD IN CDB', async () => {
    const l = setupLun();
    const r = await submit(l, ssu(LOEJ));
    expect(senseOf(r)).toEqual([ILLEGAL_REQUEST, 0x24, 0x00]);
    expect(fieldPointer(r)).toEqual({ inCdb: true, byte: 4, bit: 1 });
    expect(l.lu.mediumPresent).toBe(true);
  });

  it('stopping a fixed LU makes media access NOT READY, INITIALIZING COMMAND REQUIRED until START', async () => {
    const l = setupLun();
    expectGood(await submit(l, ssu(0)));
    expect(senseOf(await submit(l, cdb10(0x28, 0, 1)))).toEqual([NOT_READY, 0x04, 0x02]);
    expectGood(await submit(l, ssu(START)));
    expectGood(await submit(l, cdb10(0x28, 0, 1)));
  });

  it('a removable LU with LOEJ=0 stays ready (libiscsi startstopunit_noloej)', async () => {
    const l = setupLun({ removable: true });
    for (const b of [0, START, 0x04, 0x04 | START]) {
      expectGood(await submit(l, ssu(b)));
      expectGood(await submit(l, cdb10(0x28, 0, 1)));
    }
  });

  it('a non-zero POWER CONDITION ignores START and LOEJ, reserved values included (libiscsi startstopunit_pwrcnd)', async () => {
    const l = setupLun({ removable: true });
    for (let pc = 1; pc < 16; pc++) {
      expectGood(await submit(l, ssu((pc << 4) | LOEJ, true)));
      expect(l.lu.mediumPresent).toBe(true);
      expectGood(await submit(l, [0x00, 0, 0, 0, 0, 0]));
    }
  });
});

describe('PREVENT ALLOW MEDIUM REMOVAL', () => {
  it('a PREVENT blocks eject and load with MEDIUM REMOVAL PREVENTED (53/02)', async () => {
    const l = setupLun({ removable: true });
    expectGood(await submit(l, pamr(1)));
    expect(senseOf(await submit(l, ssu(LOEJ)))).toEqual([ILLEGAL_REQUEST, 0x53, 0x02]);
    expect(l.lu.mediumPresent).toBe(true);
    expectGood(await submit(l, pamr(0)));
    expectGood(await submit(l, ssu(LOEJ)));
    expectGood(await submit(l, pamr(1)));
    expect(senseOf(await submit(l, ssu(LOEJ | START)))).toEqual([ILLEGAL_REQUEST, 0x53, 0x02]);
    expectGood(await submit(l, pamr(0)));
    expectGood(await submit(l, ssu(LOEJ | START)));
  });

  it('prevents are per I_T nexus and go with nexus loss', async () => {
    const l = setupLun({ removable: true });
    const other = makeNexus('iqn.2026-01.test:other');
    l.target.nexusUp(other);
    l.lu.ua.forget(other.key);
    expectGood(await submit(l, pamr(1), { nexus: other }));
    expectGood(await submit(l, pamr(0)));
    expect(senseOf(await submit(l, ssu(LOEJ)))).toEqual([ILLEGAL_REQUEST, 0x53, 0x02]);
    l.target.nexusDown(other);
    expectGood(await submit(l, ssu(LOEJ)));
  });

  it('PREVENT 10b/11b is INVALID FIELD IN CDB', async () => {
    const l = setupLun({ removable: true });
    expect(senseOf(await submit(l, pamr(2)))).toEqual([ILLEGAL_REQUEST, 0x24, 0x00]);
  });
});

describe('PRE-FETCH', () => {
  it('(10) and (16) answer CONDITION MET for a range that fits', async () => {
    const l = setupLun({ blocks: 1024 });
    expect((await submit(l, cdb10(0x34, 0, 100))).status).toBe(ScsiStatus.ConditionMet);
    expect((await submit(l, cdb16(0x90, 1000, 24))).status).toBe(ScsiStatus.ConditionMet);
  });

  it('beyond the end is LBA OUT OF RANGE', async () => {
    const l = setupLun({ blocks: 1024 });
    expect(senseOf(await submit(l, cdb10(0x34, 1024, 1)))).toEqual([ILLEGAL_REQUEST, 0x21, 0x00]);
    expect(senseOf(await submit(l, cdb16(0x90, 1000, 25)))).toEqual([ILLEGAL_REQUEST, 0x21, 0x00]);
  });
});

describe('READ DEFECT DATA', () => {
  it('(10) returns an empty list in the requested format', async () => {
    const l = setupLun();
    const c = Buffer.alloc(10);
    c[0] = 0x37; c[2] = 0x18 | 0x05; c.writeUInt16BE(512, 7);
    const r = await submit(l, c);
    expectGood(r);
    expect([...r.data!]).toEqual([0, 0x1d, 0, 0]);
  });

  it('(12) returns an 8-byte header with length 0', async () => {
    const l = setupLun();
    const c = Buffer.alloc(12);
    c[0] = 0xb7; c[1] = 0x08 | 0x04; c.writeUInt32BE(512, 6);
    const r = await submit(l, c);
    expect([...r.data!]).toEqual([0, 0x0c, 0, 0, 0, 0, 0, 0]);
  });
});

describe('FORMAT UNIT', () => {
  it('clears the LU (thin: deallocates everything)', async () => {
    const l = setupLun();
    await submit(l, cdb10(0x2a, 0, 8), { dataOut: Buffer.alloc(8 * 512, 0x77) });
    expectGood(await submit(l, Buffer.from([0x04, 0, 0, 0, 0, 0])));
    expect((await submit(l, cdb10(0x28, 0, 8))).data!.every((b) => b === 0)).toBe(true);
    expect(l.store.allocatedBytes!()).toBe(0);
  });

  it('FMTPINFO (protection information) is INVALID FIELD IN CDB; readonly is WRITE PROTECTED', async () => {
    const l = setupLun();
    expect(senseOf(await submit(l, Buffer.from([0x04, 0x40, 0, 0, 0, 0])))).toEqual([ILLEGAL_REQUEST, 0x24, 0x00]);
    const ro = setupLun({ readonly: true });
    expect(senseOf(await submit(ro, Buffer.from([0x04, 0, 0, 0, 0, 0])))).toEqual([DATA_PROTECT, 0x27, 0x00]);
  });

  it('FMTDATA with an empty defect list header is accepted', async () => {
    const l = setupLun();
    const r = await submit(l, Buffer.from([0x04, 0x10, 0, 0, 0, 0]), { dataOut: Buffer.alloc(4) });
    expectGood(r);
  });
});

describe('SANITIZE', () => {
  // The emulated duration is covered in sbc-medium-sanitize.test.ts; here the work alone.
  let saved: SanitizeTiming;
  beforeAll(() => { saved = configureSanitize({ overwritePassMs: 0, blockEraseMs: 0, cryptoEraseMs: 0 }); });
  afterAll(() => { configureSanitize(saved); });
  const sanitize = (sa: number, paramLen = 0) => { const c = Buffer.alloc(10); c[0] = 0x48; c[1] = sa; c.writeUInt16BE(paramLen, 7); return c; };

  it('BLOCK ERASE deallocates the whole LU', async () => {
    const l = setupLun({ blocks: 4096 });
    await submit(l, cdb10(0x2a, 0, 256), { dataOut: Buffer.alloc(256 * 512, 0x61) });
    await submit(l, cdb10(0x2a, 4096 - 256, 256), { dataOut: Buffer.alloc(256 * 512, 0x61) });
    expectGood(await submit(l, sanitize(0x02), { edtl: 0 }));
    expect((await submit(l, cdb10(0x28, 0, 256))).data!.every((b) => b === 0)).toBe(true);
    expect(l.store.mapping!(0n)).toEqual({ mapped: false, blocks: 4096n });
  });

  it('BLOCK ERASE with a parameter list is INVALID FIELD IN CDB', async () => {
    const l = setupLun();
    expect(senseOf(await submit(l, sanitize(0x02, 8), { dataOut: Buffer.alloc(8) }))).toEqual([ILLEGAL_REQUEST, 0x24, 0x00]);
  });

  it('BLOCK ERASE is not offered on a thick LU', async () => {
    const l = setupLun({ thick: true, blocks: 64 });
    expect(senseOf(await submit(l, sanitize(0x02)))).toEqual([ILLEGAL_REQUEST, 0x20, 0x00]);
  });

  it('OVERWRITE fills every block with the pattern', async () => {
    const l = setupLun({ blocks: 512 });
    const p = Buffer.alloc(4 + 4);
    p[0] = 0x01; p.writeUInt16BE(4, 2); p.write('abcd', 4);
    expectGood(await submit(l, sanitize(0x01, p.length), { dataOut: p }));
    const d = (await submit(l, cdb10(0x28, 511, 1))).data!;
    expect(d.toString('latin1', 0, 8)).toBe('abcdabcd');
  });

  it('OVERWRITE parameter errors are INVALID FIELD IN CDB (libiscsi sanitize_overwrite)', async () => {
    const l = setupLun({ blocks: 64 });
    for (const len of [0, 1, 4, 512 + 5]) {
      expect(senseOf(await submit(l, sanitize(0x01, len), { dataOut: Buffer.alloc(Math.max(len, 1)) }))).toEqual([ILLEGAL_REQUEST, 0x24, 0x00]);
    }
    const zeroCount = Buffer.alloc(516); zeroCount.writeUInt16BE(512, 2);
    expect(senseOf(await submit(l, sanitize(0x01, 516), { dataOut: zeroCount }))).toEqual([ILLEGAL_REQUEST, 0x24, 0x00]);
    const zeroPat = Buffer.alloc(516); zeroPat[0] = 1;
    expect(senseOf(await submit(l, sanitize(0x01, 516), { dataOut: zeroPat }))).toEqual([ILLEGAL_REQUEST, 0x24, 0x00]);
    const bigPat = Buffer.alloc(516); bigPat[0] = 1; bigPat.writeUInt16BE(516, 2);
    expect(senseOf(await submit(l, sanitize(0x01, 516), { dataOut: bigPat }))).toEqual([ILLEGAL_REQUEST, 0x24, 0x00]);
  });

  it('CRYPTOGRAPHIC ERASE wipes; EXIT FAILURE MODE is GOOD; an unknown action is INVALID FIELD', async () => {
    const l = setupLun({ blocks: 64 });
    await submit(l, cdb10(0x2a, 0, 1), { dataOut: Buffer.alloc(512, 1) });
    expectGood(await submit(l, sanitize(0x03)));
    expect((await submit(l, cdb10(0x28, 0, 1))).data!.every((b) => b === 0)).toBe(true);
    expectGood(await submit(l, sanitize(0x1f)));
    const r = await submit(l, sanitize(0x05));
    expect(senseOf(r)).toEqual([ILLEGAL_REQUEST, 0x24, 0x00]);
    expect(fieldPointer(r)).toMatchObject({ inCdb: true, byte: 1 });
  });
});
