/** REPORT SUPPORTED OPERATION CODES (SPC-5 §6.35), generated from the command table. */
import { describe, expect, it } from 'vitest';
import { ALL_COMMANDS } from '../../src/scsi/table.ts';
import { INVALID_FIELD_IN_CDB, fakeStore, fieldPointer, good, senseOf, setup, submit } from './spc-fixture.ts';

const rsoc = (options: number, o: { rctd?: boolean; op?: number; sa?: number; alloc?: number } = {}) => {
  const alloc = o.alloc ?? 65535;
  return [0xa3, 0x0c, (o.rctd ? 0x80 : 0) | options, o.op ?? 0, ((o.sa ?? 0) >> 8) & 0xff, (o.sa ?? 0) & 0xff,
    (alloc >>> 24) & 0xff, (alloc >> 16) & 0xff, (alloc >> 8) & 0xff, alloc & 0xff, 0, 0];
};

interface Desc { opcode: number; sa: number; servactv: boolean; ctdp: boolean; cdbLength: number; timeouts?: Buffer }
function parseAll(d: Buffer): Desc[] {
  const out: Desc[] = [];
  const end = 4 + d.readUInt32BE(0);
  for (let o = 4; o < end;) {
    const ctdp = (d[o + 5] & 0x02) !== 0;
    out.push({ opcode: d[o], sa: d.readUInt16BE(o + 2), servactv: (d[o + 5] & 1) !== 0, ctdp, cdbLength: d.readUInt16BE(o + 6), timeouts: ctdp ? d.subarray(o + 8, o + 20) : undefined });
    o += ctdp ? 20 : 8;
  }
  return out;
}

describe('REPORT SUPPORTED OPERATION CODES: all commands', () => {
  it('lists every table entry once, sorted, with SERVACTV and CDB LENGTH', async () => {
    const f = setup({ thin: true });
    const list = parseAll(good(await submit(f, rsoc(0))));
    expect(list.length).toBe(ALL_COMMANDS.filter((d) => d.supported?.(f.lu) !== false).length);
    for (const d of ALL_COMMANDS) {
      if (d.supported?.(f.lu) === false) continue;
      const e = list.find((x) => x.opcode === d.opcode && x.servactv === (d.serviceAction !== undefined) && x.sa === (d.serviceAction ?? 0));
      expect(e, d.name).toBeDefined();
      expect(e!.cdbLength).toBe(d.cdbLength);
    }
    const keys = list.map((x) => x.opcode * 0x10000 + x.sa);
    expect([...keys].sort((a, b) => a - b)).toEqual(keys);
    const inq = list.find((x) => x.opcode === 0x12)!;
    expect(inq).toMatchObject({ servactv: false, ctdp: false, cdbLength: 6 });
    const self = list.find((x) => x.opcode === 0xa3 && x.sa === 0x0c)!;
    expect(self).toMatchObject({ servactv: true, cdbLength: 12 });
  });

  it('RCTD adds a 12-byte command timeouts descriptor to each', async () => {
    const d = good(await submit(setup(), rsoc(0, { rctd: true })));
    const list = parseAll(d);
    expect(d.readUInt32BE(0)).toBe(20 * list.length);
    for (const e of list) {
      expect(e.ctdp).toBe(true);
      expect(e.timeouts!.readUInt16BE(0)).toBe(0x0a);
    }
  });

  it('omits commands the LU does not offer (capabilities)', async () => {
    const thin = parseAll(good(await submit(setup({ thin: true }), rsoc(0))));
    const thick = parseAll(good(await submit(setup({ store: fakeStore() }), rsoc(0))));
    // Commands the thin LU offers and the thick one does not (UNMAP …); capabilities both lack
    // (SET TARGET PORT GROUPS without an explicit-ALUA model) are in neither list.
    const thinLu = setup({ thin: true }).lu;
    const thickLu = setup({ store: fakeStore() }).lu;
    const hidden = ALL_COMMANDS.filter((d) => d.supported && d.supported(thinLu) && !d.supported(thickLu));
    expect(thick.length).toBe(thin.length - hidden.length);
  });

  it('truncates to ALLOCATION LENGTH with COMMAND DATA LENGTH intact', async () => {
    const d = good(await submit(setup(), rsoc(0, { alloc: 12 })));
    expect(d.length).toBe(12);
    expect(d.readUInt32BE(0)).toBeGreaterThan(8);
  });
});

describe('REPORT SUPPORTED OPERATION CODES: one command', () => {
  it('option 001b: CDB usage data with the opcode in byte 0, SUPPORT 011b', async () => {
    const d = good(await submit(setup(), rsoc(1, { op: 0x12 })));
    expect(d.toString('hex')).toBe('00' + '03' + '0006' + '12' + '01' + 'ff' + 'ff' + 'ff' + '04');
  });

  it('option 010b: the service action sits in the SERVICE ACTION field of the usage data', async () => {
    const d = good(await submit(setup(), rsoc(2, { op: 0xa3, sa: 0x0c })));
    expect(d[1]).toBe(0x03);
    expect(d.readUInt16BE(2)).toBe(12);
    expect(d[4]).toBe(0xa3);
    expect(d[5] & 0x1f).toBe(0x0c);
  });

  it('RCTD: CTDP and a timeouts descriptor after the usage data', async () => {
    const d = good(await submit(setup(), rsoc(1, { op: 0x00, rctd: true })));
    expect(d[1]).toBe(0x83);
    expect(d.length).toBe(4 + 6 + 12);
    expect(d.readUInt16BE(10)).toBe(0x0a);
  });

  it('unsupported opcode or service action: SUPPORT 001b, no usage data', async () => {
    const f = setup();
    expect(good(await submit(f, rsoc(1, { op: 0xe0 }))).toString('hex')).toBe('00010000');
    expect(good(await submit(f, rsoc(2, { op: 0xa3, sa: 0x1e }))).toString('hex')).toBe('00010000');
  });

  it('option 001b on an opcode with service actions, 010b on one without: INVALID FIELD IN CDB', async () => {
    const f = setup();
    expect(senseOf(await submit(f, rsoc(1, { op: 0xa3, sa: 0x0c })))).toEqual(INVALID_FIELD_IN_CDB);
    expect(senseOf(await submit(f, rsoc(1, { op: 0x9e })))).toEqual(INVALID_FIELD_IN_CDB);
    expect(senseOf(await submit(f, rsoc(2, { op: 0x28 })))).toEqual(INVALID_FIELD_IN_CDB);
  });

  it('option 011b answers either way', async () => {
    const f = setup();
    expect(good(await submit(f, rsoc(3, { op: 0x28, sa: 0x55 })))[1]).toBe(0x03);
    expect(good(await submit(f, rsoc(3, { op: 0x9e, sa: 0x10 })))[1]).toBe(0x03);
  });

  it('reporting options above 011b: INVALID FIELD IN CDB on byte 2', async () => {
    const r = await submit(setup(), rsoc(4));
    expect(senseOf(r)).toEqual(INVALID_FIELD_IN_CDB);
    expect(fieldPointer(r)?.byte).toBe(2);
  });

  it('libiscsi one_command walk: every listed command answers consistently', async () => {
    const f = setup({ thin: true });
    for (const e of parseAll(good(await submit(f, rsoc(0))))) {
      if (e.servactv) {
        expect(senseOf(await submit(f, rsoc(1, { op: e.opcode, sa: e.sa })))).toEqual(INVALID_FIELD_IN_CDB);
      } else {
        expect(senseOf(await submit(f, rsoc(2, { op: e.opcode, sa: e.sa })))).toEqual(INVALID_FIELD_IN_CDB);
      }
      const one = good(await submit(f, rsoc(e.servactv ? 2 : 1, { op: e.opcode, sa: e.sa })));
      expect(one[1] & 7).toBe(3);
      expect(one.readUInt16BE(2)).toBe(e.cdbLength);
      expect(one[4]).toBe(e.opcode);
    }
  });
});
