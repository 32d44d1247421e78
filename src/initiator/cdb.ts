/**
 * CDBs the initiator sends, built from named fields (SBC-4, SPC-5 layouts). Pure: each builder
 * returns a fresh Buffer. Callers use the device API (device.ts), not these bytes.
 */

/** Operation codes the device API issues (SPC-5 / SBC-4 command sets). */
export const Op = {
  TestUnitReady: 0x00,
  Read6: 0x08,
  Write6: 0x0a,
  Inquiry: 0x12,
  Reserve6: 0x16,
  Release6: 0x17,
  Read10: 0x28,
  Write10: 0x2a,
  SynchronizeCache10: 0x35,
  Unmap: 0x42,
  PersistentReserveIn: 0x5e,
  PersistentReserveOut: 0x5f,
  ExtendedCopy: 0x83,
  ReceiveCopyResults: 0x84,
  Read16: 0x88,
  CompareAndWrite: 0x89,
  Write16: 0x8a,
  SynchronizeCache16: 0x91,
  WriteSame16: 0x93,
  ServiceActionIn16: 0x9e,
  ReportLuns: 0xa0,
  MaintenanceIn: 0xa3,
} as const;

/** Service actions under SERVICE ACTION IN(16) and MAINTENANCE IN. */
export const ServiceAction = {
  ReadCapacity16: 0x10,
  ReportTargetPortGroups: 0x0a,
  ReportSupportedOperationCodes: 0x0c,
} as const;

/** Byte 1 flag bits of the block commands (SBC-4 §5). */
export const Flag = {
  /** READ/WRITE(10/16): Force Unit Access (SBC-4 §5.11, §5.40). */
  Fua: 0x08,
  /** WRITE SAME(16): byte 1 bits (SBC-4 §5.50). */
  WriteSameAnchor: 0x10,
  WriteSameUnmap: 0x08,
  WriteSameNdob: 0x01,
} as const;

export function testUnitReady(): Buffer {
  return Buffer.alloc(6);
}

/** INQUIRY (SPC-5 §6.7): EVPD with a page code, or the standard data. */
export function inquiry(allocation: number, vpdPage?: number): Buffer {
  const c = Buffer.alloc(6);
  c[0] = Op.Inquiry;
  if (vpdPage !== undefined) { c[1] = 0x01; c[2] = vpdPage; }
  c.writeUInt16BE(allocation, 3);
  return c;
}

/** READ CAPACITY(16) (SBC-4 §5.20). */
export function readCapacity16(allocation = 32): Buffer {
  const c = Buffer.alloc(16);
  c[0] = Op.ServiceActionIn16;
  c[1] = ServiceAction.ReadCapacity16;
  c.writeUInt32BE(allocation, 10);
  return c;
}

/** READ/WRITE(6) (SBC-4 §5.15, §5.41): 21-bit LBA, 0 blocks means 256. */
export function rw6(op: typeof Op.Read6 | typeof Op.Write6, lba: number, blocks: number): Buffer {
  return Buffer.from([op, (lba >> 16) & 0x1f, (lba >> 8) & 0xff, lba & 0xff, blocks === 256 ? 0 : blocks, 0]);
}

/** READ/WRITE(10) (SBC-4 §5.16, §5.42). */
export function rw10(op: number, lba: number, blocks: number, byte1 = 0): Buffer {
  const c = Buffer.alloc(10);
  c[0] = op; c[1] = byte1;
  c.writeUInt32BE(lba, 2);
  c.writeUInt16BE(blocks, 7);
  return c;
}

/** The 16-byte LBA + 4-byte count layout shared by READ/WRITE(16), WRITE SAME(16), SYNCHRONIZE CACHE(16). */
export function lba16(op: number, lba: bigint, blocks: number, byte1 = 0): Buffer {
  const c = Buffer.alloc(16);
  c[0] = op; c[1] = byte1;
  c.writeBigUInt64BE(lba, 2);
  c.writeUInt32BE(blocks, 10);
  return c;
}

/** COMPARE AND WRITE (SBC-4 §5.3): NUMBER OF LOGICAL BLOCKS in byte 13. */
export function compareAndWrite(lba: bigint, blocks: number, byte1 = 0): Buffer {
  const c = lba16(Op.CompareAndWrite, lba, 0, byte1);
  c[13] = blocks;
  return c;
}

/** UNMAP (SBC-4 §5.32): PARAMETER LIST LENGTH in bytes 7-8. */
export function unmap(parameterListLength: number): Buffer {
  const c = Buffer.alloc(10);
  c[0] = Op.Unmap;
  c.writeUInt16BE(parameterListLength, 7);
  return c;
}

/** UNMAP parameter list (SBC-4 §5.32.2): 8-byte header, 16-byte block descriptors. */
export function unmapParameterList(ranges: readonly { lba: bigint; blocks: number }[]): Buffer {
  const p = Buffer.alloc(8 + 16 * ranges.length);
  p.writeUInt16BE(p.length - 2, 0);
  p.writeUInt16BE(16 * ranges.length, 2);
  ranges.forEach((r, i) => { p.writeBigUInt64BE(r.lba, 8 + 16 * i); p.writeUInt32BE(r.blocks, 16 + 16 * i); });
  return p;
}

/** EXTENDED COPY(LID1) (SPC-4 §6.4): service action 00h, PARAMETER LIST LENGTH in bytes 10-13. */
export function extendedCopy(parameterListLength: number): Buffer {
  const c = Buffer.alloc(16);
  c[0] = Op.ExtendedCopy;
  c.writeUInt32BE(parameterListLength, 10);
  return c;
}

/** RECEIVE COPY RESULTS (SPC-4 §6.18): service action, list identifier, allocation length. */
export function receiveCopyResults(serviceAction: number, listId: number, allocation: number): Buffer {
  const c = Buffer.alloc(16);
  c[0] = Op.ReceiveCopyResults;
  c[1] = serviceAction & 0x1f;
  c[2] = listId & 0xff;
  c.writeUInt32BE(allocation, 10);
  return c;
}

/** MAINTENANCE IN with a service action and a 4-byte allocation length at 6-9 (SPC-5 §6.36, §6.37). */
export function maintenanceIn(serviceAction: number, allocation: number, byte2 = 0, opcode = 0, sa = 0): Buffer {
  const c = Buffer.alloc(12);
  c[0] = Op.MaintenanceIn;
  c[1] = serviceAction;
  c[2] = byte2;
  c[3] = opcode;
  c.writeUInt16BE(sa, 4);
  c.writeUInt32BE(allocation, 6);
  return c;
}

/** PERSISTENT RESERVE IN (SPC-5 §6.16). */
export function persistentReserveIn(action: number, allocation: number): Buffer {
  const c = Buffer.alloc(10);
  c[0] = Op.PersistentReserveIn;
  c[1] = action & 0x1f;
  c.writeUInt16BE(allocation, 7);
  return c;
}

/** PERSISTENT RESERVE OUT (SPC-5 §6.17): service action, scope/type, parameter list length. */
export function persistentReserveOut(action: number, type: number, parameterListLength: number): Buffer {
  const c = Buffer.alloc(10);
  c[0] = Op.PersistentReserveOut;
  c[1] = action & 0x1f;
  c[2] = type & 0x0f; // SCOPE 0h: logical unit
  c.writeUInt32BE(parameterListLength, 5);
  return c;
}

/** RESERVE(6) / RELEASE(6) (SPC-2 §7.21, §7.18): the whole LU, no third party. */
export function reserveRelease6(op: typeof Op.Reserve6 | typeof Op.Release6): Buffer {
  const c = Buffer.alloc(6);
  c[0] = op;
  return c;
}

/** REPORT LUNS (SPC-5 §6.33). */
export function reportLuns(allocation: number): Buffer {
  const c = Buffer.alloc(12);
  c[0] = Op.ReportLuns;
  c.writeUInt32BE(allocation, 6);
  return c;
}
