/**
 * Test fixture for the reservation tests: a ScsiTarget with one LU over a tiny in-memory store,
 * fake I_T nexuses, CDB builders, and helpers that drive LogicalUnit.submit() like an initiator.
 */
import { expect } from 'vitest';
import { encodeProutParameters, type ProutParameters, ProutAction, PrinAction } from '../../protocol/scsi/pr.ts';
import type { CommandDef, ReservationClass } from '../../src/scsi/command.ts';
import type { LogicalUnit } from '../../src/scsi/lu.ts';
import { ScsiTarget } from '../../src/scsi/target.ts';
import { ScsiStatus, StatusError, TaskAttribute } from '../../src/scsi/types.ts';
import type { Nexus, ScsiRequest, ScsiResponse } from '../../src/scsi/types.ts';
import type { BackingStore } from '../../src/store/store.ts';
import { testNexus } from '../helpers/nexus.ts';

export const TARGET = 'iqn.2026-01.test.arraysim:pr';

export function fakeStore(blocks = 64, blockSize = 512): BackingStore {
  const mem = Buffer.alloc(blocks * blockSize);
  return {
    blockSize, blockCount: BigInt(blocks), kind: 'memory', thin: false,
    read(lba, n, into) {
      const v = mem.subarray(Number(lba) * blockSize, (Number(lba) + n) * blockSize);
      if (into) { v.copy(into); return into; }
      return v;
    },
    write(lba, data) { data.copy(mem, Number(lba) * blockSize); },
    close() {},
  };
}

/** An I_T nexus as src/iscsi/session.ts builds it. */
export function makeNexus(initiatorName: string, isid = '23d000000001', tpgt = 1): Nexus {
  return testNexus(TARGET, { initiator: initiatorName, isid, tpgt });
}

export interface Fixture {
  target: ScsiTarget;
  lu: LogicalUnit;
  /** Log a nexus in and swallow its power-on unit attention. */
  login(n: Nexus): Nexus;
}

export function setup(...nexuses: Nexus[]): Fixture {
  const target = new ScsiTarget(TARGET);
  const lu = target.addLun({ lun: 0, store: fakeStore(), naa: '6001405000000001', serial: 'PR0001' });
  const login = (n: Nexus): Nexus => {
    target.nexusUp(n);
    lu.ua.forget(n.key);
    return n;
  };
  nexuses.forEach(login);
  return { target, lu, login };
}

export function submit(lu: LogicalUnit, nexus: Nexus, cdb: Buffer, dataOut: Buffer | null = null, expectedLength = 0): ScsiResponse {
  const req: ScsiRequest = {
    lun: lu.lun, cdb, nexus, taskTag: 1, attr: TaskAttribute.Simple,
    expectedLength: dataOut ? dataOut.length : expectedLength,
    isRead: !dataOut && expectedLength > 0, isWrite: !!dataOut, dataOut,
  };
  const r = lu.submit(req);
  if (r instanceof Promise) throw new Error('reservation commands are synchronous');
  return r;
}

/** [sense key, ASC, ASCQ] of a CHECK CONDITION (fixed or descriptor format). */
export function senseOf(r: ScsiResponse): [number, number, number] {
  expect(r.status).toBe(ScsiStatus.CheckCondition);
  const s = r.sense!;
  return (s[0] & 0x7f) === 0x72 ? [s[1] & 0xf, s[2], s[3]] : [s[2] & 0xf, s[12], s[13]];
}

// ---- CDBs -------------------------------------------------------------------------------------

export function prinCdb(sa: PrinAction | number, allocationLength = 16384): Buffer {
  const c = Buffer.alloc(10);
  c[0] = 0x5e; c[1] = sa; c.writeUInt16BE(allocationLength, 7);
  return c;
}

export function proutCdb(sa: ProutAction, type = 0, parameterListLength = 24, scope = 0): Buffer {
  const c = Buffer.alloc(10);
  c[0] = 0x5f; c[1] = sa; c[2] = (scope << 4) | type; c.writeUInt32BE(parameterListLength, 5);
  return c;
}

export const reserve6 = (): Buffer => Buffer.from([0x16, 0, 0, 0, 0, 0]);
export const release6 = (): Buffer => Buffer.from([0x17, 0, 0, 0, 0, 0]);
export const reserve10 = (byte1 = 0): Buffer => Buffer.from([0x56, byte1, 0, 0, 0, 0, 0, 0, 0, 0]);
export const release10 = (): Buffer => Buffer.from([0x57, 0, 0, 0, 0, 0, 0, 0, 0, 0]);

// ---- PR helpers -------------------------------------------------------------------------------

export interface ProutArgs extends Partial<ProutParameters> {
  type?: number;
  scope?: number;
}

export function prout(lu: LogicalUnit, n: Nexus, sa: ProutAction, a: ProutArgs = {}): ScsiResponse {
  const data = encodeProutParameters(a);
  return submit(lu, n, proutCdb(sa, a.type ?? 0, data.length, a.scope ?? 0), data);
}

/** PR OUT that must succeed. */
export function proutOk(lu: LogicalUnit, n: Nexus, sa: ProutAction, a: ProutArgs = {}): void {
  const r = prout(lu, n, sa, a);
  expect(r.sense ? senseOf(r) : r.status).toBe(ScsiStatus.Good);
}

export const register = (lu: LogicalUnit, n: Nexus, key: bigint, extra: ProutArgs = {}): void =>
  proutOk(lu, n, ProutAction.RegisterAndIgnoreExistingKey, { serviceActionKey: key, ...extra });

export const reserve = (lu: LogicalUnit, n: Nexus, key: bigint, type: number): void =>
  proutOk(lu, n, ProutAction.Reserve, { reservationKey: key, type });

export function prin(lu: LogicalUnit, n: Nexus, sa: PrinAction, allocationLength = 16384): Buffer {
  const r = submit(lu, n, prinCdb(sa, allocationLength), null, allocationLength);
  expect(r.sense ? senseOf(r) : r.status).toBe(ScsiStatus.Good);
  return r.data!;
}

export function readKeys(lu: LogicalUnit, n: Nexus): { generation: number; keys: bigint[] } {
  const d = prin(lu, n, PrinAction.ReadKeys);
  const keys: bigint[] = [];
  for (let o = 8; o < 8 + d.readUInt32BE(4); o += 8) keys.push(d.readBigUInt64BE(o));
  return { generation: d.readUInt32BE(0), keys };
}

export function readReservation(lu: LogicalUnit, n: Nexus): { key: bigint; type: number } | null {
  const d = prin(lu, n, PrinAction.ReadReservation);
  if (d.readUInt32BE(4) === 0) return null;
  return { key: d.readBigUInt64BE(8), type: d[21] & 0x0f };
}

/**
 * The unit attention this nexus would see next, as [ASC, ASCQ], consumed through the front
 * door (READ KEYS reports UAs), or null when none is pending.
 */
export function nextUa(lu: LogicalUnit, n: Nexus): [number, number] | null {
  const r = submit(lu, n, prinCdb(PrinAction.ReadKeys), null, 16384);
  if (r.status !== ScsiStatus.CheckCondition) return null;
  const [key, asc, ascq] = senseOf(r);
  if (key !== 0x6) return null;
  return [asc, ascq];
}

/** Every pending UA of a nexus, oldest first. */
export function allUas(lu: LogicalUnit, n: Nexus): [number, number][] {
  const out: [number, number][] = [];
  for (let u = nextUa(lu, n); u; u = nextUa(lu, n)) out.push(u);
  return out;
}

/**
 * Media access through the reservation gate for a command of a given reservation class.
 * The SBC module owns READ/WRITE; this stand-in CommandDef carries only what the gate reads.
 */
export function access(lu: LogicalUnit, n: Nexus, cls: ReservationClass, opcode = 0xff): 'ok' | 'conflict' {
  const def = { opcode, name: `test ${cls}`, reservation: cls } as unknown as CommandDef;
  const req = { lun: lu.lun, cdb: Buffer.from([opcode]), nexus: n } as unknown as ScsiRequest;
  try {
    lu.reservations.gate(def, req, {});
    return 'ok';
  } catch (e) {
    if (e instanceof StatusError && e.status === ScsiStatus.ReservationConflict) return 'conflict';
    throw e;
  }
}
