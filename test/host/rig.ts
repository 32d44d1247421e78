/**
 * Test support for the host emulation: the real target in process (memory LUs with distinct NAA
 * designators) on a loopback port, with a test-only answer hook in front of its LUs. The hook can
 * refuse an opcode with a chosen sense reason (after letting N through), answer a COMPARE AND WRITE
 * with a MISCOMPARE it did not earn, and it counts what arrived, so a test sees what the host sent.
 * The hook stands in for the splitter's `reject` policy until that lands on main.
 */
import pino from 'pino';
import { buildFixedSense } from '../../protocol/scsi/sense.ts';
import type { SenseReason } from '../../protocol/scsi/sense.ts';
import { IscsiServer } from '../../src/iscsi/server.ts';
import { ScsiTarget } from '../../src/scsi/target.ts';
import type { ScsiRequest, ScsiResponse } from '../../src/scsi/types.ts';
import { MemoryStore } from '../../src/store/memory.ts';
import { ScsiDevice } from '../../src/initiator/index.ts';

export const TARGET = 'iqn.2026-11.dev.arraysim:host-test';
export const BLOCKS = 131072; // 64 MiB of 512-byte blocks per LU, thin

export const Op = { Read16: 0x88, Write16: 0x8a, ExtendedCopy: 0x83, WriteSame16: 0x93, CompareAndWrite: 0x89, Unmap: 0x42, Reserve6: 0x16, Release6: 0x17 } as const;

export interface Refusal {
  reason: SenseReason;
  /** Let this many through first (default 0). */
  after?: number;
}

export interface Arrival {
  op: number;
  lun: number;
  lba: bigint;
  answered: 'passed' | 'refused' | 'false-miscompare';
}

export interface HostRig {
  port: number;
  scsi: ScsiTarget;
  url(lun?: number): string;
  /** Refuse an opcode from now on (after `after` more of it pass). */
  refuse(op: number, r: Refusal): void;
  /** Answer the next `n` COMPARE AND WRITEs with MISCOMPARE without executing them. */
  falseMiscompare(n?: number): void;
  arrivals: Arrival[];
  count(op: number, answered?: Arrival['answered']): number;
  open(lun?: number): Promise<ScsiDevice>;
  close(): Promise<void>;
}

function lbaOf(cdb: Buffer): bigint {
  switch (cdb[0]) {
    case Op.Read16: case Op.Write16: case Op.WriteSame16: case Op.CompareAndWrite: return cdb.readBigUInt64BE(2);
    default: return -1n;
  }
}

export async function startHostRig(o: { luns?: number } = {}): Promise<HostRig> {
  const log = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
  const portals = [{ host: '127.0.0.1', port: 0, tpgt: 1, targetPortGroup: 1 }];
  const server = new IscsiServer(portals, log, { nopInterval: 0 });
  const scsi = new ScsiTarget(TARGET, log);
  for (let i = 0; i < (o.luns ?? 2); i++) scsi.addLun({ lun: i, store: new MemoryStore(BigInt(BLOCKS)), naa: `600140500000c0d${i}`, serial: `HOST${i}` });
  const refusals = new Map<number, Refusal & { seen: number }>();
  let falseMiscompares = 0;
  const arrivals: Arrival[] = [];
  const submit = scsi.submit.bind(scsi);
  scsi.submit = (req: ScsiRequest): ScsiResponse | Promise<ScsiResponse> => {
    const op = req.cdb[0];
    const base = { op, lun: req.lun, lba: lbaOf(req.cdb) };
    const r = refusals.get(op);
    if (r && r.seen++ >= (r.after ?? 0)) {
      arrivals.push({ ...base, answered: 'refused' });
      return { status: 0x02, data: null, sense: buildFixedSense(r.reason) };
    }
    if (op === Op.CompareAndWrite && falseMiscompares > 0) {
      falseMiscompares--;
      arrivals.push({ ...base, answered: 'false-miscompare' });
      return { status: 0x02, data: null, sense: buildFixedSense('MiscompareDuringVerify') };
    }
    arrivals.push({ ...base, answered: 'passed' });
    return submit(req);
  };
  server.addTarget({ name: TARGET }, scsi);
  await server.listen();
  const port = portals[0].port;
  const opened: ScsiDevice[] = [];
  const url = (lun = 0) => `iscsi://127.0.0.1:${port}/${TARGET}/${lun}`;
  return {
    port, scsi, url, arrivals,
    refuse: (op, r) => { refusals.set(op, { ...r, seen: 0 }); },
    falseMiscompare: (n = 1) => { falseMiscompares += n; },
    count: (op, answered) => arrivals.filter((a) => a.op === op && (!answered || a.answered === answered)).length,
    open: async (lun = 0) => {
      const d = await ScsiDevice.open(url(lun));
      opened.push(d);
      await d.clearUnitAttentions();
      return d;
    },
    close: async () => {
      for (const d of opened.splice(0)) await d.close().catch(() => {});
      await server.close();
    },
  };
}

/** Another LU on an open device's session, its unit attention consumed. */
export async function onLun(d: ScsiDevice, lun: number): Promise<ScsiDevice> {
  const o = d.on(lun);
  await o.clearUnitAttentions();
  return o;
}

/** A pattern that differs per block and per seed. */
export function pattern(bytes: number, seed: number): Buffer {
  const b = Buffer.alloc(bytes);
  for (let i = 0; i < bytes; i += 4) b.writeUInt32BE(((i / 4) * 2654435761 + seed * 40503) >>> 0, i);
  return b;
}

/** Write `data` at `lba` in pieces under the MAXIMUM TRANSFER LENGTH. */
export async function fill(d: ScsiDevice, lba: bigint, data: Buffer): Promise<void> {
  const per = 4096 * 512;
  for (let o = 0; o < data.length; o += per) {
    const r = await d.write(lba + BigInt(o / 512), data.subarray(o, Math.min(data.length, o + per)));
    if (r.kind !== 'good') throw new Error(`write failed: ${JSON.stringify(r)}`);
  }
}

export async function readBack(d: ScsiDevice, lba: bigint, blocks: number): Promise<Buffer> {
  const out = Buffer.alloc(blocks * 512);
  for (let o = 0; o < blocks; o += 4096) {
    const n = Math.min(4096, blocks - o);
    const r = await d.read(lba + BigInt(o), n, { into: out.subarray(o * 512) });
    if (r.kind !== 'good') throw new Error(`read failed: ${JSON.stringify(r)}`);
  }
  return out;
}
