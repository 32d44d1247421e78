/**
 * Test fixture for the SBC tests: a ScsiTarget with one LU over a MemoryStore (or any store),
 * a logged-in fake nexus, CDB builders and sense decoding. Commands go through
 * LogicalUnit.submit(), the same front door the transport uses.
 */
import { expect } from 'vitest';
import type { LogicalUnit } from '../../src/scsi/lu.ts';
import { ScsiTarget } from '../../src/scsi/target.ts';
import { ScsiStatus, TaskAttribute } from '../../src/scsi/types.ts';
import type { Nexus, ScsiRequest, ScsiResponse } from '../../src/scsi/types.ts';
import { MemoryStore } from '../../src/store/memory.ts';
import type { BackingStore } from '../../src/store/store.ts';
import { testNexus } from '../helpers/nexus.ts';

export const TARGET = 'iqn.2026-01.test.arraysim:sbc';

export function makeNexus(initiatorName = 'iqn.2026-01.test:init', isid = '23d000000001', tpgt = 1): Nexus {
  return testNexus(TARGET, { initiator: initiatorName, isid, tpgt });
}

export interface Lun {
  target: ScsiTarget;
  lu: LogicalUnit;
  nexus: Nexus;
  store: BackingStore;
}

export interface LunOptions {
  blocks?: number;
  blockSize?: number;
  readonly?: boolean;
  removable?: boolean;
  thick?: boolean;
  store?: BackingStore;
  physicalBlockSize?: number;
}

export function setupLun(o: LunOptions = {}): Lun {
  const store = o.store ?? new MemoryStore(BigInt(o.blocks ?? 2048), { blockSize: o.blockSize ?? 512, thick: o.thick });
  const target = new ScsiTarget(TARGET);
  const lu = target.addLun({ lun: 0, store, naa: '6001405000000002', serial: 'SBC0001', readonly: o.readonly, removable: o.removable, physicalBlockSize: o.physicalBlockSize });
  const nexus = makeNexus();
  target.nexusUp(nexus);
  lu.ua.forget(nexus.key);
  return { target, lu, nexus, store };
}

export interface SubmitOptions {
  dataOut?: Buffer | null;
  /** Expected data transfer length; defaults to dataOut length, or `in` bytes for reads. */
  edtl?: number;
  nexus?: Nexus;
}

export async function submit(l: Lun, cdb: Buffer | number[], o: SubmitOptions = {}): Promise<ScsiResponse> {
  const c = Buffer.isBuffer(cdb) ? cdb : Buffer.from(cdb);
  const dataOut = o.dataOut ?? null;
  const req: ScsiRequest = {
    lun: l.lu.lun, cdb: c, nexus: o.nexus ?? l.nexus, taskTag: 1, attr: TaskAttribute.Simple,
    expectedLength: o.edtl ?? (dataOut ? dataOut.length : 1 << 24),
    isRead: !dataOut, isWrite: !!dataOut, dataOut,
  };
  return await l.lu.submit(req);
}

/** [sense key, ASC, ASCQ] of a CHECK CONDITION (fixed or descriptor format). */
export function senseOf(r: ScsiResponse): [number, number, number] {
  expect(r.status).toBe(ScsiStatus.CheckCondition);
  const s = r.sense!;
  return (s[0] & 0x7f) === 0x72 ? [s[1] & 0xf, s[2], s[3]] : [s[2] & 0xf, s[12], s[13]];
}

/** INFORMATION field of fixed-format sense (VALID bit set). */
export function senseInformation(r: ScsiResponse): number | undefined {
  const s = r.sense!;
  return s[0] & 0x80 ? s.readUInt32BE(3) : undefined;
}

/** Sense-key-specific field pointer of fixed-format sense: [C/D, byte, bit|undefined]. */
export function fieldPointer(r: ScsiResponse): { inCdb: boolean; byte: number; bit?: number } | undefined {
  const s = r.sense!;
  if (!(s[15] & 0x80)) return undefined;
  return { inCdb: (s[15] & 0x40) !== 0, byte: s.readUInt16BE(16), bit: s[15] & 0x08 ? s[15] & 7 : undefined };
}

export const ILLEGAL_REQUEST = 0x5;
export const NOT_READY = 0x2;
export const DATA_PROTECT = 0x7;
export const MISCOMPARE = 0xe;

export const expectGood = (r: ScsiResponse) => {
  if (r.status !== ScsiStatus.Good) throw new Error(`expected GOOD, got status ${r.status} sense ${r.sense?.toString('hex')}`);
};

// ---- CDB builders ---------------------------------------------------------------------------

export { cdb6, cdb10, cdb12, cdb16 } from '../helpers/cdb.ts';

export function pattern(bytes: number, seed: number): Buffer {
  const b = Buffer.alloc(bytes);
  for (let i = 0; i < bytes; i++) b[i] = (i * 31 + seed * 17 + (i >> 9)) & 0xff;
  return b;
}
