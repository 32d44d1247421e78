/**
 * The SPC side of the device API against the real target: standard INQUIRY, the VPD pages a host
 * reads (0x00, 0x83 with the NAA designator, 0x8F, 0xB0, 0xB2), REPORT SUPPORTED OPERATION CODES,
 * REPORT TARGET PORT GROUPS, REPORT LUNS, persistent reservations, RESERVE/RELEASE(6) and
 * SYNCHRONIZE CACHE; a reservation conflict comes back as a status by name, not an error.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { PrType, ProutAction } from '../../protocol/scsi/pr.ts';
import { VpdPage } from '../../protocol/scsi/vpd.ts';
import { ScsiDevice, ScsiStatus } from '../../src/initiator/index.ts';
import { Op, ServiceAction } from '../../src/initiator/cdb.ts';
import { openReady, startRig } from './rig.ts';
import type { Rig } from './rig.ts';

let rig: Rig | undefined;
const devices: ScsiDevice[] = [];
afterEach(async () => {
  for (const d of devices.splice(0)) await d.close();
  await rig?.close();
  rig = undefined;
});

async function open(lun = 0): Promise<ScsiDevice> {
  rig ??= await startRig({ luns: 2 });
  const d = await openReady(rig.url(lun));
  devices.push(d);
  return d;
}

describe('unit attention', () => {
  it('a fresh session meets the power-on UNIT ATTENTION once; clearUnitAttentions consumes it and returns it decoded', async () => {
    rig ??= await startRig({ luns: 2 });
    const d = await ScsiDevice.open(rig.url(1));
    devices.push(d);
    const { unitAttentions, last } = await d.clearUnitAttentions();
    expect(unitAttentions.map((u) => u.reason)).toEqual(['PowerOnResetOccurred']);
    expect(last.kind).toBe('good');
    expect((await d.clearUnitAttentions()).unitAttentions).toEqual([]);
  });
});

describe('inquiry and VPD', () => {
  it('standard INQUIRY: a direct-access device that says 3PC and ALUA', async () => {
    const d = await open();
    const r = await d.inquiry();
    expect(r.kind).toBe('good');
    if (r.kind !== 'good') return;
    expect(r.value.peripheralDeviceType).toBe(0);
    expect(r.value.threePc).toBe(true);
    expect(r.value.tpgs).toBeGreaterThan(0);
    expect(r.value.vendor.toString().trim().length).toBeGreaterThan(0);
  });

  it('supported pages include 0x83, 0x8F, 0xB0 and 0xB2', async () => {
    const d = await open();
    const r = await d.supportedVpdPages();
    expect(r.kind === 'good' && r.value).toEqual(expect.arrayContaining([VpdPage.DeviceIdentification, VpdPage.ThirdPartyCopy, VpdPage.BlockLimits, VpdPage.LogicalBlockProvisioning]));
  });

  it('0x83: the NAA designator of each LU is its own', async () => {
    const d0 = await open(0);
    const d1 = await open(1);
    const [a, b] = [await d0.naa(), await d1.naa()];
    expect(a.toString('hex')).toBe('500140500000ab00');
    expect(b.toString('hex')).toBe('500140500000ab01');
  });

  it('0xB0 Block Limits: ATS length, UNMAP and WRITE SAME limits', async () => {
    const d = await open();
    const r = await d.blockLimits();
    expect(r.kind).toBe('good');
    if (r.kind === 'good') {
      expect(r.value.maxCompareAndWriteLength).toBeGreaterThan(0);
      expect(r.value.maxUnmapLbaCount).toBeGreaterThan(0);
    }
  });

  it('0xB2 Logical Block Provisioning: thin, UNMAP and WRITE SAME(16) with UNMAP', async () => {
    const d = await open();
    const r = await d.logicalBlockProvisioning();
    expect(r.kind).toBe('good');
    if (r.kind === 'good') expect(r.value).toMatchObject({ lbpu: true, lbpws: true });
  });

  it('0x8F Third-party Copy: descriptors present', async () => {
    const d = await open();
    const r = await d.thirdPartyCopy();
    expect(r.kind === 'good' && r.value.descriptors.length).toBeGreaterThan(0);
  });

  it('a VPD page the device lacks is ILLEGAL REQUEST, INVALID FIELD IN CDB with the field pointer', async () => {
    const d = await open();
    const r = await d.vpd(0xc7);
    expect(r.kind).toBe('check-condition');
    if (r.kind === 'check-condition') expect(r.sense).toMatchObject({ key: 5, asc: 0x24, reason: 'InvalidFieldInCdb', fieldPointer: { inCdb: true, byte: 2 } });
  });
});

describe('reports', () => {
  it('REPORT SUPPORTED OPERATION CODES lists the VAAI commands', async () => {
    const d = await open();
    const r = await d.reportSupportedOperationCodes();
    expect(r.kind).toBe('good');
    if (r.kind !== 'good') return;
    const ops = new Set(r.value.map((o) => o.opcode));
    for (const op of [Op.CompareAndWrite, Op.ExtendedCopy, Op.WriteSame16, Op.Unmap]) expect(ops.has(op)).toBe(true);
    expect(r.value.some((o) => o.opcode === Op.ServiceActionIn16 && o.serviceAction === ServiceAction.ReadCapacity16)).toBe(true);
  });

  it('REPORT TARGET PORT GROUPS: one group, active/optimized, with relative port 1', async () => {
    const d = await open();
    const r = await d.reportTargetPortGroups();
    expect(r.kind).toBe('good');
    if (r.kind === 'good') expect(r.value[0]).toMatchObject({ id: 1, state: 0, stateName: 'active/optimized', relativePortIds: [1] });
  });

  it('REPORT LUNS: 0 and 1', async () => {
    const d = await open();
    const r = await d.reportLuns();
    expect(r.kind === 'good' && r.value).toEqual([0, 1]);
  });
});

describe('reservations', () => {
  it('PR: register, reserve (write exclusive), read keys and reservation; another host gets RESERVATION CONFLICT', async () => {
    const a = await open();
    const b = await open();
    expect((await a.persistentReserveOut(ProutAction.Register, { serviceActionKey: 0xabcn })).kind).toBe('good');
    expect((await a.persistentReserveOut(ProutAction.Reserve, { reservationKey: 0xabcn, type: PrType.WriteExclusive })).kind).toBe('good');
    const keys = await a.readKeys();
    expect(keys.kind === 'good' && keys.value.keys).toEqual([0xabcn]);
    const res = await a.readReservation();
    expect(res.kind === 'good' && res.value.reservation).toEqual({ key: 0xabcn, scope: 0, type: PrType.WriteExclusive });
    const w = await b.write(0n, Buffer.alloc(512));
    expect(w).toEqual({ kind: 'status', status: ScsiStatus.ReservationConflict, name: 'RESERVATION CONFLICT' });
    expect((await b.read(0n, 1)).kind).toBe('good');
  });

  it('RESERVE(6) holds the LU against another host until RELEASE(6)', async () => {
    const a = await open();
    const b = await open();
    expect((await a.reserve6()).kind).toBe('good');
    expect((await b.testUnitReady()).kind).toBe('good');
    expect((await b.read(0n, 1))).toMatchObject({ kind: 'status', status: ScsiStatus.ReservationConflict });
    expect((await a.release6()).kind).toBe('good');
    expect((await b.read(0n, 1)).kind).toBe('good');
  });

  it('SYNCHRONIZE CACHE(16) is GOOD', async () => {
    const d = await open();
    expect((await d.synchronizeCache()).kind).toBe('good');
  });
});
