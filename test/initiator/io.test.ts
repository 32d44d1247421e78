/**
 * The session's data paths against the real target: QD32 reads and writes in flight at once with
 * every block checked, a CmdSN window narrower than the queue (commands wait for MaxCmdSN), writes
 * larger than FirstBurstLength and MaxBurstLength (several R2Ts, Data-Out in MaxRecvDataSegmentLength
 * pieces), immediate/unsolicited data switched off, Data-In into the caller's buffer, residuals,
 * READ/WRITE(6/10/16) and FUA; sizing past a unit attention, and READs split by MAXIMUM TRANSFER LENGTH.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { ScsiDevice } from '../../src/initiator/index.ts';
import * as C from '../../src/initiator/cdb.ts';
import { toResult } from '../../src/initiator/result.ts';
import { BLOCKS, openReady, pattern, startRig } from './rig.ts';
import type { Rig } from './rig.ts';

let rig: Rig | undefined;
const devices: ScsiDevice[] = [];
afterEach(async () => {
  for (const d of devices.splice(0)) await d.close();
  await rig?.close();
  rig = undefined;
});

async function open(o: Parameters<typeof openReady>[1] = {}, tuning?: Parameters<typeof startRig>[0]): Promise<ScsiDevice> {
  rig = await startRig(tuning);
  const d = await openReady(rig.url(0), o);
  devices.push(d);
  return d;
}

describe('many commands in flight', () => {
  it('QD32: 32 writes then 32 reads at once, 64 KiB each at distinct LBAs, every block as written', async () => {
    const d = await open();
    const bufs = Array.from({ length: 32 }, (_, i) => pattern(64 * 1024, i + 1));
    await d.blockSize();
    const writes = bufs.map((b, i) => d.write(BigInt(i * 128), b));
    expect((await Promise.all(writes)).every((r) => r.kind === 'good')).toBe(true);
    expect(d.session.counters.peakInFlight).toBe(32);
    const reads = bufs.map((_, i) => d.read(BigInt(i * 128), 128));
    const got = await Promise.all(reads);
    expect(d.session.counters.peakInFlight).toBe(32);
    got.forEach((r, i) => {
      expect(r.kind).toBe('good');
      expect(r.kind === 'good' && r.value.equals(bufs[i])).toBe(true);
    });
  });

  it('QD32 mixed: reads of the even slots while the odd slots are written, then all checked', async () => {
    const d = await open();
    const bufs = Array.from({ length: 64 }, (_, i) => pattern(8 * 1024, 100 + i));
    await Promise.all(bufs.filter((_, i) => i % 2 === 0).map((b, j) => d.write(BigInt(j * 2 * 16), b)));
    const ops = bufs.map((b, i) => (i % 2 ? d.write(BigInt(i * 16), b) : d.read(BigInt(i * 16), 16)));
    const res = await Promise.all(ops);
    res.forEach((r, i) => {
      expect(r.kind).toBe('good');
      if (i % 2 === 0 && r.kind === 'good') expect((r.value as Buffer).equals(bufs[i])).toBe(true);
    });
    for (let i = 1; i < 64; i += 2) {
      const r = await d.read(BigInt(i * 16), 16);
      expect(r.kind === 'good' && r.value.equals(bufs[i])).toBe(true);
    }
  });

  it('a CmdSN window of 4 (target queue depth): 32 commands still all complete, waiting for MaxCmdSN', async () => {
    const d = await open({}, { tuning: { queueDepth: 4 } });
    const bufs = Array.from({ length: 32 }, (_, i) => pattern(4096, i + 7));
    const res = await Promise.all(bufs.map((b, i) => d.write(BigInt(i * 8), b)));
    expect(res.every((r) => r.kind === 'good')).toBe(true);
    expect(d.session.counters.windowWaits).toBeGreaterThan(0);
    for (let i = 0; i < 32; i++) {
      const r = await d.read(BigInt(i * 8), 8);
      expect(r.kind === 'good' && r.value.equals(bufs[i])).toBe(true);
    }
  });
});

describe('writes through R2T', () => {
  it('a 3 MiB write with FirstBurstLength 64 KiB, MaxBurstLength 256 KiB, target MaxRecvDataSegmentLength 16 KiB', async () => {
    const d = await open(
      { offer: { firstBurstLength: 65536, maxBurstLength: 262144 } },
      { tuning: { keys: { MaxRecvDataSegmentLength: '16384' } } },
    );
    expect(d.session.params).toMatchObject({ firstBurstLength: 65536, maxBurstLength: 262144, maxSendDataSegmentLength: 16384 });
    const data = pattern(3 << 20, 42);
    const before = { ...d.session.counters };
    const w = await d.write(1000n, data);
    expect(w.kind).toBe('good');
    const r2ts = d.session.counters.r2t - before.r2t;
    // (3 MiB - 64 KiB unsolicited) in bursts of at most 256 KiB: at least 12 R2Ts.
    expect(r2ts).toBeGreaterThanOrEqual(Math.ceil(((3 << 20) - 65536) / 262144));
    // Every Data-Out at most 16 KiB: at least 3 MiB / 16 KiB of them (less the immediate 16 KiB).
    expect(d.session.counters.dataOut - before.dataOut).toBeGreaterThanOrEqual((3 << 20) / 16384 - 1);
    const r = await d.read(1000n, (3 << 20) / 512);
    expect(r.kind === 'good' && r.value.equals(data)).toBe(true);
  });

  it('InitialR2T=Yes and ImmediateData=No: every byte is solicited', async () => {
    const d = await open({ offer: { initialR2T: true, immediateData: false, maxBurstLength: 131072 } });
    expect(d.session.params).toMatchObject({ initialR2T: true, immediateData: false });
    const data = pattern(1 << 20, 9);
    const before = d.session.counters.r2t;
    expect((await d.write(0n, data)).kind).toBe('good');
    expect(d.session.counters.r2t - before).toBeGreaterThanOrEqual(8);
    const r = await d.read(0n, 2048);
    expect(r.kind === 'good' && r.value.equals(data)).toBe(true);
  });

  it('a small write fits in immediate data: no R2T at all', async () => {
    const d = await open();
    const before = d.session.counters.r2t;
    expect((await d.write(5n, pattern(4096, 1))).kind).toBe('good');
    expect(d.session.counters.r2t).toBe(before);
  });
});

describe('reads', () => {
  it('Data-In lands in the caller\'s buffer, at its offset', async () => {
    const d = await open();
    const data = pattern(1 << 20, 5);
    await d.write(64n, data);
    const into = Buffer.alloc(1 << 20);
    const r = await d.read(64n, 2048, { into });
    expect(r.kind).toBe('good');
    expect(into.equals(data)).toBe(true);
    expect(r.kind === 'good' && r.value.buffer === into.buffer).toBe(true);
  });

  it('Data-In segments that straddle TCP chunks are gathered in the caller\'s buffer, not copied twice; with data digests they are copied', async () => {
    const d = await open();
    const data = pattern(4 << 20, 11);
    for (let o = 0; o < 4; o++) await d.write(BigInt(o * 2048), data.subarray(o << 20, (o + 1) << 20));
    const before = d.session.counters.dataInGathered;
    for (let o = 0; o < 4; o++) {
      const r = await d.read(BigInt(o * 2048), 2048);
      expect(r.kind === 'good' && r.value.equals(data.subarray(o << 20, (o + 1) << 20))).toBe(true);
    }
    // 16 segments of 256 KiB arrive in 64 KiB socket reads: most straddle chunks.
    expect(d.session.counters.dataInGathered - before).toBeGreaterThan(0);

    const dd = await openReady(rig!.url(0), { offer: { dataDigest: 'CRC32C' } });
    devices.push(dd);
    const r = await dd.read(0n, 2048);
    expect(r.kind === 'good' && r.value.equals(data.subarray(0, 1 << 20))).toBe(true);
    expect(dd.session.counters.dataInGathered).toBe(0);
  });

  it('a short allocation length is an underflow residual (INQUIRY asked for 255, given 96)', async () => {
    const d = await open();
    const r = await d.inquiry();
    expect(r.kind).toBe('good');
    if (r.kind === 'good') expect(r.residual).toEqual({ kind: 'underflow', count: 255 - 96 });
  });

  it('READ/WRITE(6), (10) and (16), with FUA on 10 and 16', async () => {
    const d = await open();
    for (const [cdb, fua] of [[6, false], [10, true], [16, true]] as const) {
      const data = pattern(8 * 512, cdb);
      expect((await d.write(BigInt(cdb * 100), data, { cdb, fua })).kind).toBe('good');
      const r = await d.read(BigInt(cdb * 100), 8, { cdb, fua });
      expect(r.kind === 'good' && r.value.equals(data)).toBe(true);
    }
    await expect(d.read(1n << 22n, 1, { cdb: 6 })).rejects.toThrow(RangeError);
  });

  it('a read past the end is CHECK CONDITION ILLEGAL REQUEST, LBA OUT OF RANGE (05/21/00)', async () => {
    const d = await open();
    const cap = await d.readCapacity16();
    expect(cap.kind).toBe('good');
    const r = await d.read(cap.kind === 'good' ? cap.value.blocks : 0n, 1);
    expect(r.kind).toBe('check-condition');
    if (r.kind === 'check-condition') expect(r.sense).toMatchObject({ key: 5, asc: 0x21, ascq: 0, reason: 'LbaOutOfRange' });
  });
});

// What the module asks on its own to size and split a transfer: READ CAPACITY(16) goes past a
// pending UNIT ATTENTION (SAM-5 §5.14); a READ longer than MAXIMUM TRANSFER LENGTH (Block Limits
// VPD, SBC-4 §6.6.4) is sent as consecutive READs, where one command is refused 05/24/00.
describe('sizing a transfer', () => {
  it('blockSize() on a fresh session goes past the power-on unit attention; the READ it sizes succeeds', async () => {
    await open();
    // The unit attention is there: a fresh session's first TEST UNIT READY reports it.
    const probe = await ScsiDevice.open(rig!.url(1), { initiatorName: 'iqn.2026-12.dev.arraysim:probe' });
    devices.push(probe);
    const tur = await probe.testUnitReady();
    expect(tur.kind === 'check-condition' && tur.sense?.key).toBe(6);
    // And a READ as the first command of another fresh session does not fail on it.
    const d = await ScsiDevice.open(rig!.url(1), { initiatorName: 'iqn.2026-12.dev.arraysim:second' });
    devices.push(d);
    const r = await d.read(0n, 8);
    expect(r.kind).toBe('good');
    expect(await d.blockSize()).toBe(512);
  });
});

describe('splitting a READ or WRITE by MAXIMUM TRANSFER LENGTH', () => {
  it('40 MiB read at once comes back whole and in order as two READs; one READ of it is refused by the target', async () => {
    const d = await open();
    const max = await d.maxTransferBlocks();
    expect(max).toBe(65536); // 32 MiB of 512-byte blocks (src/scsi/sbc-common.ts SBC_LIMITS)
    const blocks = 81920; // 40 MiB: more than one command may carry
    expect(blocks).toBeLessThan(BLOCKS);
    // Distinct data on both sides of the split point, so a misplaced piece shows.
    const around = pattern(2 << 20, 5);
    expect((await d.write(BigInt(max - 2048), around)).kind).toBe('good');
    const before = d.session.counters.commands;
    const r = await d.read(0n, blocks);
    expect(d.session.counters.commands - before).toBe(2);
    expect(r.kind).toBe('good');
    if (r.kind !== 'good') return;
    expect(r.value.length).toBe(blocks * 512);
    expect(r.value.subarray((max - 2048) * 512, (max + 2048) * 512).equals(around)).toBe(true);
    // Negative control: the same READ as one command is what the target refuses.
    const one = toResult(await d.session.command({ lun: 0, cdb: C.lba16(C.Op.Read16, 0n, blocks), dataIn: blocks * 512 }), (x) => x);
    expect(one.kind === 'check-condition' && [one.sense?.key, one.sense?.asc]).toEqual([5, 0x24]);
  }, 60_000);

  it('a 40 MiB WRITE goes as two WRITEs and reads back whole; one WRITE of it is refused by the target', async () => {
    const d = await open();
    const max = await d.maxTransferBlocks();
    const blocks = 81920;
    const data = pattern(blocks * 512, 13);
    expect(await d.blockSize()).toBe(512); // sized before counting
    const before = d.session.counters.commands;
    expect((await d.write(0n, data)).kind).toBe('good');
    expect(d.session.counters.commands - before).toBe(2);
    const r = await d.read(0n, blocks);
    expect(r.kind === 'good' && r.value.equals(data)).toBe(true);
    // Negative control: the same WRITE as one command is refused, and changes nothing. The
    // target's transport refuses a Data-Out longer than it will buffer before the CDB is read
    // (05/0E/03 INVALID FIELD IN COMMAND INFORMATION UNIT: the EDTL), so no R2T is ever sent.
    const other = pattern(blocks * 512, 14);
    const one = toResult(await d.session.command({ lun: 0, cdb: C.lba16(C.Op.Write16, 0n, blocks), dataOut: other }), () => undefined);
    expect(one.kind === 'check-condition' && [one.sense?.key, one.sense?.asc, one.sense?.ascq]).toEqual([5, 0x0e, 0x03]);
    const again = await d.read(BigInt(max - 8), 16);
    expect(again.kind === 'good' && again.value.equals(data.subarray((max - 8) * 512, (max + 8) * 512))).toBe(true);
  }, 60_000);

  it('into a caller buffer: the pieces land in place', async () => {
    const d = await open();
    const data = pattern(1 << 20, 9);
    expect((await d.write(65536n - 1024n, data)).kind).toBe('good');
    const into = Buffer.alloc(70000 * 512, 0xee);
    const r = await d.read(0n, 70000, { into });
    expect(r.kind === 'good' && r.value.length).toBe(70000 * 512);
    expect(into.subarray((65536 - 1024) * 512, (65536 + 1024) * 512).equals(data)).toBe(true);
    expect(into.subarray(0, 512).every((b) => b === 0)).toBe(true); // unwritten blocks read as zeros
  }, 60_000);
});
