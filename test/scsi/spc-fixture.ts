/**
 * Test fixture for the SPC tests: a ScsiTarget with LUs over a MemoryStore or a tiny fake
 * store, fake I_T nexuses, CDB builders and sense decoding. Commands go through
 * LogicalUnit.submit() (or ScsiTarget.submit() for absent LUNs): the transport's front door.
 */
import { expect } from 'vitest';
import type { LogicalUnit } from '../../src/scsi/lu.ts';
import { ScsiTarget } from '../../src/scsi/target.ts';
import { ScsiStatus, TaskAttribute } from '../../src/scsi/types.ts';
import type { Nexus, ScsiRequest, ScsiResponse } from '../../src/scsi/types.ts';
import { MemoryStore } from '../../src/store/memory.ts';
import type { BackingStore } from '../../src/store/store.ts';
import { testNexus } from '../helpers/nexus.ts';

export const TARGET = 'iqn.2026-01.test.arraysim:spc';
export const NAA = '5001405abcdef012';
export const SERIAL = 'SPC0000001';

export function makeNexus(o: { initiator?: string; isid?: string; tpgt?: number; tpg?: number } = {}): Nexus {
  return testNexus(TARGET, { ...o, initiator: o.initiator ?? 'iqn.2026-01.test:init' });
}

/** The smallest BackingStore: no optional capabilities (thick, no unmap). */
export function fakeStore(blocks = 1024n, blockSize = 512): BackingStore {
  return {
    blockSize, blockCount: blocks, kind: 'memory', thin: false,
    read: (_lba, n) => Buffer.alloc(n * blockSize),
    write: () => undefined,
    close: () => undefined,
  };
}

export interface Fixture {
  target: ScsiTarget;
  lu: LogicalUnit;
  nexus: Nexus;
}

export function setup(o: { store?: BackingStore; removable?: boolean; readonly?: boolean; thin?: boolean } = {}): Fixture {
  const store = o.store ?? new MemoryStore(2048n, { thick: !o.thin });
  const target = new ScsiTarget(TARGET);
  const lu = target.addLun({ lun: 0, store, naa: NAA, serial: SERIAL, removable: o.removable, readonly: o.readonly });
  const nexus = makeNexus();
  target.nexusUp(nexus);
  lu.ua.forget(nexus.key);
  return { target, lu, nexus };
}

export interface Submit {
  dataOut?: Buffer;
  nexus?: Nexus;
  lun?: number;
}

export async function submit(f: Fixture, cdb: number[] | Buffer, o: Submit = {}): Promise<ScsiResponse> {
  const c = Buffer.isBuffer(cdb) ? cdb : Buffer.from(cdb);
  const dataOut = o.dataOut ?? null;
  const req: ScsiRequest = {
    lun: o.lun ?? f.lu.lun, cdb: c, nexus: o.nexus ?? f.nexus, taskTag: 1, attr: TaskAttribute.Simple,
    expectedLength: dataOut ? dataOut.length : 65536, isRead: !dataOut, isWrite: !!dataOut, dataOut,
  };
  return await f.target.submit(req);
}

export function good(r: ScsiResponse): Buffer {
  if (r.status !== ScsiStatus.Good) throw new Error(`expected GOOD, got 0x${r.status.toString(16)} sense ${r.sense?.toString('hex')}`);
  return r.data ?? Buffer.alloc(0);
}

/** [key, asc, ascq] from fixed (70h) or descriptor (72h) sense bytes. */
export function kcq(s: Buffer): [number, number, number] {
  return (s[0] & 0x7f) === 0x72 ? [s[1] & 0xf, s[2], s[3]] : [s[2] & 0xf, s[12], s[13]];
}

export function senseOf(r: ScsiResponse): [number, number, number] {
  expect(r.status).toBe(ScsiStatus.CheckCondition);
  return kcq(r.sense!);
}

/** Fixed-format sense-key-specific field pointer. */
export function fieldPointer(r: ScsiResponse): { inCdb: boolean; byte: number; bit?: number } | undefined {
  const s = r.sense!;
  if ((s[0] & 0x7f) === 0x72) {
    for (let o = 8; o + 1 < s.length; o += 2 + s[o + 1]) {
      if (s[o] === 0x02) {
        const p = o + 4;
        return { inCdb: (s[p] & 0x40) !== 0, byte: s.readUInt16BE(p + 1), bit: s[p] & 0x08 ? s[p] & 7 : undefined };
      }
    }
    return undefined;
  }
  if (!(s[15] & 0x80)) return undefined;
  return { inCdb: (s[15] & 0x40) !== 0, byte: s.readUInt16BE(16), bit: s[15] & 0x08 ? s[15] & 7 : undefined };
}

export const ILLEGAL_REQUEST = 0x5;
export const NOT_READY = 0x2;
export const UNIT_ATTENTION = 0x6;
export const DATA_PROTECT = 0x7;
export const INVALID_FIELD_IN_CDB: [number, number, number] = [0x5, 0x24, 0x00];
export const INVALID_FIELD_IN_PARAMETER_LIST: [number, number, number] = [0x5, 0x26, 0x00];

export const inquiry = (evpd: number, page: number, alloc = 0xffff) => [0x12, evpd, page, alloc >> 8, alloc & 0xff, 0];
