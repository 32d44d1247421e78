/**
 * SANITIZE as a state of the LU (SBC-4 §4.11, §5.26): reserved CDB fields, the sanitize in
 * progress gate with REQUEST SENSE progress, IMMED, task abort and LU reset; the Block Device
 * Characteristics WABEREQ/WACEREQ it implies; power conditions from START STOP UNIT.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { configureSanitize } from '../../src/scsi/sbc-medium.ts';
import { TaskAttribute } from '../../src/scsi/types.ts';
import type { ScsiRequest, ScsiResponse } from '../../src/scsi/types.ts';
import {
  cdb10, cdb16, expectGood, fieldPointer, ILLEGAL_REQUEST, makeNexus, NOT_READY, senseOf, setupLun, submit,
} from './sbc-fixture.ts';
import type { Lun } from './sbc-fixture.ts';

const NORMAL = configureSanitize({});
afterEach(() => { configureSanitize(NORMAL); });

const sanitize = (sa: number, o: { immed?: boolean; paramLen?: number } = {}) => {
  const c = Buffer.alloc(10);
  c[0] = 0x48; c[1] = (o.immed ? 0x80 : 0) | sa; c.writeUInt16BE(o.paramLen ?? 0, 7);
  return c;
};
const overwriteList = (fill: number) => {
  const p = Buffer.alloc(4 + 512, fill);
  p[0] = 0x01; p[1] = 0; p.writeUInt16BE(512, 2);
  return p;
};
const TUR = [0x00, 0, 0, 0, 0, 0];
const REQUEST_SENSE = [0x03, 0, 0, 0, 252, 0];
const INQUIRY = [0x12, 0, 0, 0, 255, 0];
const REPORT_LUNS = [0xa0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0];
const SANITIZE_IN_PROGRESS = [NOT_READY, 0x04, 0x1b];

/** Submit without awaiting (the command may outlive the test step), with its own task tag. */
function start(l: Lun, cdb: Buffer, taskTag: number, dataOut: Buffer | null = null): ScsiResponse | Promise<ScsiResponse> {
  const req: ScsiRequest = {
    lun: 0, cdb, nexus: l.nexus, taskTag, attr: TaskAttribute.Simple,
    expectedLength: dataOut ? dataOut.length : 0, isRead: false, isWrite: !!dataOut, dataOut,
  };
  return l.lu.submit(req);
}

/** PROGRESS INDICATION of fixed-format REQUEST SENSE data (SKSV set), or undefined. */
function progressOf(sense: Buffer): number | undefined {
  return sense[15] & 0x80 ? sense.readUInt16BE(16) : undefined;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('SANITIZE reserved fields (libiscsi sanitize_*_reserved)', () => {
  it('byte 1 bit 6 and bytes 2-6 set are INVALID FIELD IN CDB for every service action', async () => {
    const l = setupLun({ blocks: 64 });
    for (const sa of [0x01, 0x02, 0x03, 0x1f]) {
      const len = sa === 0x01 ? 516 : 0;
      const c = sanitize(sa, { paramLen: len });
      c[1] |= 0x40;
      const r = await submit(l, c, { dataOut: len ? overwriteList(0) : null, edtl: len });
      expect(senseOf(r)).toEqual([ILLEGAL_REQUEST, 0x24, 0x00]);
      expect(fieldPointer(r)).toEqual({ inCdb: true, byte: 1, bit: 6 });
      for (let b = 2; b <= 6; b++) {
        const d = sanitize(sa, { paramLen: len });
        d[b] = b;
        const rb = await submit(l, d, { dataOut: len ? overwriteList(0) : null, edtl: len });
        expect(senseOf(rb)).toEqual([ILLEGAL_REQUEST, 0x24, 0x00]);
        expect(fieldPointer(rb)).toMatchObject({ inCdb: true, byte: b });
      }
    }
    expect(l.lu.operation).toBeNull();
  });

  it('OVERWRITE: a TEST field or reserved byte 1 in the parameter list is INVALID FIELD IN PARAMETER LIST', async () => {
    const l = setupLun({ blocks: 64 });
    const p = overwriteList(0); p[0] |= 0x20;
    expect(senseOf(await submit(l, sanitize(0x01, { paramLen: p.length }), { dataOut: p }))).toEqual([ILLEGAL_REQUEST, 0x26, 0x00]);
    const q = overwriteList(0); q[1] = 1;
    expect(senseOf(await submit(l, sanitize(0x01, { paramLen: q.length }), { dataOut: q }))).toEqual([ILLEGAL_REQUEST, 0x26, 0x00]);
  });
});

describe('sanitize in progress (SBC-4 §4.11)', () => {
  it('IMMED=1 answers at once; the LU is NOT READY, SANITIZE IN PROGRESS with growing progress until done', async () => {
    // Long enough that a loaded machine's stalls (tens of ms) cannot end it between the two
    // REQUEST SENSEs below; the end is awaited, not timed.
    configureSanitize({ overwritePassMs: 800 });
    const l = setupLun({ blocks: 256 });
    await submit(l, cdb10(0x2a, 0, 1), { dataOut: Buffer.alloc(512, 0x11) });
    const p = overwriteList(0xaa);
    expectGood(await start(l, sanitize(0x01, { immed: true, paramLen: p.length }), 7, p));
    expect(l.lu.operation).not.toBeNull();
    for (const c of [TUR, [0x1b, 1, 0, 0, 0x11, 0], cdb16(0x88, 0, 1), cdb10(0x2a, 0, 1), sanitize(0x03), [0x1a, 0, 0x3f, 0, 255, 0]]) {
      expect(senseOf(await submit(l, c as number[]))).toEqual(SANITIZE_IN_PROGRESS);
    }
    // INQUIRY, REPORT LUNS and REQUEST SENSE are still processed.
    expectGood(await submit(l, INQUIRY));
    expectGood(await submit(l, REPORT_LUNS));
    const rs1 = await submit(l, REQUEST_SENSE);
    expectGood(rs1);
    expect([rs1.data![2] & 0x0f, rs1.data![12], rs1.data![13]]).toEqual(SANITIZE_IN_PROGRESS);
    const p1 = progressOf(rs1.data!)!;
    expect(p1).toBeGreaterThanOrEqual(0);
    await sleep(80);
    const p2 = progressOf((await submit(l, REQUEST_SENSE)).data!)!;
    expect(p2).toBeGreaterThan(p1);
    expect(p2).toBeLessThan(0x10000);
    // Descriptor format carries the progress in a sense key specific descriptor.
    const rsd = (await submit(l, [0x03, 1, 0, 0, 252, 0])).data!;
    expect([rsd[0], rsd[1], rsd[2], rsd[3]]).toEqual([0x72, NOT_READY, 0x04, 0x1b]);
    expect([rsd[8], rsd[12] & 0x80]).toEqual([0x02, 0x80]);
    for (let i = 0; l.lu.operation && i < 250; i++) await sleep(20);
    expect(l.lu.operation).toBeNull();
    expectGood(await submit(l, TUR));
    const d = (await submit(l, cdb10(0x28, 0, 1))).data!;
    expect(d.every((b) => b === 0xaa)).toBe(true);
    const rs = (await submit(l, REQUEST_SENSE)).data!;
    expect([rs[2] & 0x0f, rs[12], rs[13], rs[15] & 0x80]).toEqual([0, 0, 0, 0]);
  });

  it('IMMED=0 answers when the operation ends, not before', async () => {
    configureSanitize({ blockEraseMs: 100 });
    const l = setupLun({ blocks: 256 });
    const t0 = performance.now();
    const r = start(l, sanitize(0x02), 9);
    expect(r).toBeInstanceOf(Promise);
    expect(senseOf(await submit(l, TUR))).toEqual(SANITIZE_IN_PROGRESS);
    expectGood(await r);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(90);
    expectGood(await submit(l, TUR));
  });

  it('aborting the IMMED=0 command ends its task at once; the operation goes on through an LU reset (libiscsi Sanitize.Reset)', async () => {
    configureSanitize({ overwritePassMs: 200 });
    const l = setupLun({ blocks: 256 });
    const p = overwriteList(0);
    let settled = false;
    const r = Promise.resolve(start(l, sanitize(0x01, { paramLen: p.length }), 11, p)).then((x) => { settled = true; return x; });
    await sleep(20);
    l.lu.abortTask(l.nexus.key, 11);
    await r;
    expect(settled).toBe(true);
    l.lu.reset();
    l.lu.nexusLost(l.nexus);
    const other = makeNexus('iqn.2026-01.test:other', '23d000000009');
    l.target.nexusUp(other);
    // The new nexus sees its power-on UA first, then the sanitize.
    expect(senseOf(await submit(l, TUR, { nexus: other }))[0]).toBe(0x6);
    expect(senseOf(await submit(l, TUR, { nexus: other }))).toEqual(SANITIZE_IN_PROGRESS);
    await sleep(220);
    expectGood(await submit(l, TUR, { nexus: other }));
  });

  it('a store failure fails an IMMED=0 SANITIZE and ends the operation', async () => {
    configureSanitize({ cryptoEraseMs: 0 });
    const l = setupLun({ blocks: 64 });
    l.store.unmap = () => { throw new Error('boom'); };
    const r = await start(l, sanitize(0x03), 3);
    expect(senseOf(r)[0]).toBe(0x4);
    expect(l.lu.operation).toBeNull();
  });
});

describe('Block Device Characteristics VPD (SBC-4 §6.6.2)', () => {
  const bdc = async (l: Lun) => (await submit(l, [0x12, 1, 0xb1, 0, 64, 0])).data!;

  it('thin LU: WABEREQ=01b and WACEREQ=01b (reads after BLOCK/CRYPTOGRAPHIC ERASE are GOOD)', async () => {
    const b = await bdc(setupLun());
    expect(b[1]).toBe(0xb1);
    expect(b[7] >> 6).toBe(1);
    expect((b[7] >> 4) & 3).toBe(1);
    expect(b[7] & 0x0f).toBe(0);
  });

  it('thick LU: no BLOCK ERASE, so WABEREQ=00b; WACEREQ=01b', async () => {
    const b = await bdc(setupLun({ thick: true, blocks: 64 }));
    expect(b[7] >> 6).toBe(0);
    expect((b[7] >> 4) & 3).toBe(1);
  });

  it('after BLOCK ERASE and CRYPTOGRAPHIC ERASE a read of LBA 0 is GOOD', async () => {
    configureSanitize({ blockEraseMs: 0, cryptoEraseMs: 0 });
    const l = setupLun({ blocks: 64 });
    for (const sa of [0x02, 0x03]) {
      await submit(l, cdb10(0x2a, 0, 1), { dataOut: Buffer.alloc(512, 0x61) });
      expectGood(await submit(l, sanitize(sa)));
      const r = await submit(l, cdb10(0x28, 0, 1));
      expectGood(r);
      expect(r.data!.every((x) => x === 0)).toBe(true);
    }
  });
});

describe('START STOP UNIT power conditions (SBC-4 §5.25)', () => {
  const ssu = (pc: number, modifier = 0) => [0x1b, 1, 0, modifier, pc << 4, 0];
  const lowPower = async (l: Lun) => { const d = (await submit(l, REQUEST_SENSE)).data!; return [d[2] & 0x0f, d[12], d[13]]; };

  it('IDLE/STANDBY (and their modifiers) are reported by REQUEST SENSE as LOW POWER CONDITION ON; ACTIVE ends it', async () => {
    const l = setupLun();
    expectGood(await submit(l, ssu(0x2)));
    expect(l.lu.powerCondition).toBe('idle_a');
    expect(await lowPower(l)).toEqual([0, 0x5e, 0x03]);
    expectGood(await submit(l, ssu(0x2, 2)));
    expect(await lowPower(l)).toEqual([0, 0x5e, 0x08]);
    expectGood(await submit(l, ssu(0x3)));
    expect(await lowPower(l)).toEqual([0, 0x5e, 0x04]);
    expectGood(await submit(l, ssu(0xb, 1)));
    expect(await lowPower(l)).toEqual([0, 0x5e, 0x0a]);
    // Media access still works: nothing spun down.
    expectGood(await submit(l, TUR));
    expectGood(await submit(l, cdb10(0x28, 0, 1)));
    expectGood(await submit(l, ssu(0x1)));
    expect(await lowPower(l)).toEqual([0, 0, 0]);
    expectGood(await submit(l, ssu(0x3)));
    expectGood(await submit(l, ssu(0x7)));
    expect(l.lu.powerCondition).toBe('active');
  });

  it('an undefined POWER CONDITION MODIFIER and reserved CDB bits are INVALID FIELD IN CDB', async () => {
    const l = setupLun();
    let r = await submit(l, ssu(0x3, 2));
    expect(senseOf(r)).toEqual([ILLEGAL_REQUEST, 0x24, 0x00]);
    expect(fieldPointer(r)).toMatchObject({ inCdb: true, byte: 3 });
    r = await submit(l, ssu(0x1, 1));
    expect(senseOf(r)).toEqual([ILLEGAL_REQUEST, 0x24, 0x00]);
    r = await submit(l, [0x1b, 0, 0x01, 0, 0x01, 0]);
    expect(fieldPointer(r)).toMatchObject({ inCdb: true, byte: 2 });
    r = await submit(l, [0x1b, 0, 0, 0x10, 0x01, 0]);
    expect(fieldPointer(r)).toMatchObject({ inCdb: true, byte: 3, bit: 4 });
    r = await submit(l, [0x1b, 0, 0, 0, 0x09, 0]);
    expect(fieldPointer(r)).toEqual({ inCdb: true, byte: 4, bit: 3 });
    expect(l.lu.powerCondition).toBe('active');
  });

  it('START (POWER CONDITION 0) returns the LU to active', async () => {
    const l = setupLun();
    expectGood(await submit(l, ssu(0x3)));
    expectGood(await submit(l, [0x1b, 0, 0, 0, 0x01, 0]));
    expect(l.lu.powerCondition).toBe('active');
  });
});
