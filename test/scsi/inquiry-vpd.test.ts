/** INQUIRY vital product data pages (SPC-5 §7.7, SBC-4 §6.6). */
import { describe, expect, it } from 'vitest';
import { decodeBlockLimits, decodeDesignators, decodeLogicalBlockProvisioning, decodeScsiPorts, decodeVpdHeader } from '../../protocol/scsi/vpd.ts';
import { blockLimits } from '../../src/scsi/sbc.ts';
import { TARGET, fakeStore, good, inquiry, makeNexus, setup, submit } from './spc-fixture.ts';

describe('VPD 00h Supported VPD Pages', () => {
  it('lists every page ascending, including itself', async () => {
    const f = setup();
    const d = good(await submit(f, inquiry(1, 0x00)));
    expect(d.subarray(0, 4).toString('hex')).toBe('00000009');
    expect([...d.subarray(4)]).toEqual([0x00, 0x80, 0x83, 0x86, 0x88, 0x8f, 0xb0, 0xb1, 0xb2]);
  });

  it('every listed page answers with its own page code and a consistent PAGE LENGTH', async () => {
    const f = setup();
    const list = good(await submit(f, inquiry(1, 0x00))).subarray(4);
    for (const page of list) {
      const d = good(await submit(f, inquiry(1, page)));
      const h = decodeVpdHeader(d);
      expect(h.page).toBe(page);
      expect(h.pdt).toBe(0);
      expect(h.length).toBe(d.length - 4);
    }
  });
});

describe('VPD 80h Unit Serial Number', () => {
  it('carries lu.serial', async () => {
    const f = setup();
    const d = good(await submit(f, inquiry(1, 0x80)));
    expect(d.subarray(0, 4).toString('hex')).toBe('0080000a');
    expect(d.subarray(4).toString('latin1')).toBe('SPC0000001');
  });
});

describe('VPD 83h Device Identification', () => {
  it('reports the LU, target port and target device designators for the port in use', async () => {
    const f = setup();
    const n = makeNexus({ isid: '23d0000000aa', tpgt: 3, tpg: 7 });
    f.target.nexusUp(n);
    const d = good(await submit(f, inquiry(1, 0x83), { nexus: n }));
    expect(decodeVpdHeader(d).length).toBe(d.length - 4);
    const ds = decodeDesignators(d.subarray(4));
    // NAA IEEE Registered: code set binary, LU association, type 3, NAA 5.
    expect(d.subarray(4, 16).toString('hex')).toBe('01030008' + '5001405abcdef012');
    expect(ds.map((x) => [x.association, x.type])).toEqual([[0, 3], [0, 1], [1, 4], [1, 5], [1, 8], [2, 8]]);
    expect(ds[1].value.toString('latin1')).toBe('ARRAYSIMSPC0000001');
    // Relative target port: PIV=1, protocol iSCSI (5), association 01b, type 4.
    const rtp = d.subarray(16 + 4 + ds[1].value.length);
    expect(rtp.subarray(0, 8).toString('hex')).toBe('51940004' + '00000003');
    expect(rtp.subarray(8, 16).toString('hex')).toBe('51950004' + '00000007');
    // SCSI name strings: null-terminated, padded to a multiple of four.
    expect(ds[4].codeSet).toBe(3);
    expect(ds[4].value.length % 4).toBe(0);
    expect(ds[4].value.toString('utf8').replace(/\0+$/, '')).toBe(`${TARGET},t,0x0003`);
    expect(ds[5].value.toString('utf8').replace(/\0+$/, '')).toBe(TARGET);
    expect(ds[5].protocol).toBe(5);
  });
});

describe('VPD 88h SCSI Ports', () => {
  /** One port descriptor, byte by byte (SPC-5 §7.7.17 tables 521-522), independent of the encoder. */
  const portBytes = (rel: number, name: string): string => {
    const nameLen = (Buffer.byteLength(name) + 1 + 3) & ~3;
    const desig = '5398' + '00' + nameLen.toString(16).padStart(2, '0') + Buffer.from(name).toString('hex').padEnd(nameLen * 2, '0');
    return '0000' + rel.toString(16).padStart(4, '0') + '0000' + '0000' + '0000' + (desig.length / 2).toString(16).padStart(4, '0') + desig;
  };

  it('lists every target port of the target, the one in use included, by its iSCSI port name', async () => {
    const f = setup();
    // Two portals in two groups (as StorageArray builds them); the command arrives on TPGT 2.
    f.target.alua.addGroup(1, [1]);
    f.target.alua.addGroup(2, [2]);
    const n = makeNexus({ tpgt: 2, tpg: 2 });
    f.target.nexusUp(n);
    const d = good(await submit(f, inquiry(1, 0x88), { nexus: n }));
    const body = portBytes(1, `${TARGET},t,0x0001`) + portBytes(2, `${TARGET},t,0x0002`);
    expect(d.toString('hex')).toBe('0088' + (body.length / 2).toString(16).padStart(4, '0') + body);
    const ports = decodeScsiPorts(d.subarray(4));
    expect(ports.map((p) => p.relativePortId)).toEqual([1, 2]);
    expect(ports[1].initiatorTransportId.length).toBe(0);
    expect(ports[1].targetPorts[0].value.toString('utf8').replace(/\0+$/, '')).toBe(`${TARGET},t,0x0002`);
  });
});

describe('VPD B0h Block Limits', () => {
  it('carries the SBC limits, UNMAP limits only on a thin LU', async () => {
    const thin = setup({ thin: true });
    const d = good(await submit(thin, inquiry(1, 0xb0)));
    expect(d.subarray(0, 4).toString('hex')).toBe('00b0003c');
    const p = decodeBlockLimits(d.subarray(4));
    const l = blockLimits({ blockSize: 512 });
    expect(p.wsnz).toBe(l.writeSameNonZero);
    expect(p.maxCompareAndWriteLength).toBe(l.maxCompareAndWriteLength);
    expect(p.maxTransferLength).toBe(l.maxTransferLength);
    expect(p.optimalTransferLength).toBe(l.optimalTransferLength);
    expect(p.maxUnmapLbaCount).toBe(l.maxUnmapLbaCount);
    expect(p.maxUnmapBlockDescriptorCount).toBe(l.maxUnmapBlockDescriptorCount);
    expect(p.optimalUnmapGranularity).toBe(l.optimalUnmapGranularity);
    expect(p.maxWriteSameLength).toBe(BigInt(l.maxWriteSameLength));
    expect(p.maxAtomicTransferLength).toBe(l.maxAtomicTransferLength);

    const thick = setup({ store: fakeStore() });
    const q = decodeBlockLimits(good(await submit(thick, inquiry(1, 0xb0))).subarray(4));
    expect(q.maxUnmapLbaCount).toBe(0);
    expect(q.maxUnmapBlockDescriptorCount).toBe(0);
  });
});

describe('VPD B1h Block Device Characteristics', () => {
  it('reports a non-rotating medium', async () => {
    const d = good(await submit(setup(), inquiry(1, 0xb1)));
    expect(d.length).toBe(64);
    expect(d.readUInt16BE(4)).toBe(1);
  });
});

describe('VPD B2h Logical Block Provisioning', () => {
  it('thin: LBPU, LBPWS, LBPWS10, LBPRZ and PROVISIONING TYPE 010b', async () => {
    const d = good(await submit(setup({ thin: true }), inquiry(1, 0xb2)));
    expect(d.toString('hex')).toBe('00b20004' + '00' + 'e4' + '02' + '00');
    expect(decodeLogicalBlockProvisioning(d.subarray(4))).toMatchObject({ lbpu: true, lbpws: true, lbpws10: true, lbprz: 1, provisioningType: 2 });
  });

  it('thick: nothing offered, fully provisioned', async () => {
    const d = good(await submit(setup({ store: fakeStore() }), inquiry(1, 0xb2)));
    expect(d.toString('hex')).toBe('00b20004' + '00000000');
  });
});
