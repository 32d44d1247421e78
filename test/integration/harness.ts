/** Starts an in-process target on an ephemeral loopback port for integration tests. */
import pino from 'pino';
import { afterEach } from 'vitest';
import { IscsiServer } from '../../src/iscsi/server.ts';
import type { IscsiTargetConfig, IscsiTuning } from '../../src/iscsi/config.ts';
import { ScsiTarget } from '../../src/scsi/target.ts';
import type { BackingStore } from '../../src/store/store.ts';
import type { TestInitiator } from '../helpers/initiator.ts';

export const TARGET = 'iqn.2026-11.dev.arraysim:test';

/** A plain in-memory store, so transport tests do not depend on the production stores. */
export function simpleStore(blocks = 2048, blockSize = 512): BackingStore {
  const mem = Buffer.alloc(blocks * blockSize);
  return {
    blockSize, blockCount: BigInt(blocks), kind: 'memory', thin: false,
    read: (lba, n) => mem.subarray(Number(lba) * blockSize, (Number(lba) + n) * blockSize),
    write: (lba, data) => { data.copy(mem, Number(lba) * blockSize); },
    flush: () => {},
    close: () => {},
  };
}

export interface Harness {
  server: IscsiServer;
  scsi: ScsiTarget;
  port: number;
  ports: number[];
  close(): Promise<void>;
}

export async function startTarget(o: {
  portals?: number; target?: Partial<IscsiTargetConfig>; tuning?: Partial<IscsiTuning>; store?: BackingStore; luns?: number;
} = {}): Promise<Harness> {
  const log = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
  const n = o.portals ?? 1;
  const portals = Array.from({ length: n }, (_, i) => ({ host: '127.0.0.1', port: 0, tpgt: i + 1, targetPortGroup: i + 1 }));
  const server = new IscsiServer(portals, log, { nopInterval: 0, ...o.tuning });
  const scsi = new ScsiTarget(o.target?.name ?? TARGET, log);
  for (let i = 0; i < (o.luns ?? 1); i++) {
    scsi.addLun({ lun: i, store: i === 0 && o.store ? o.store : simpleStore(), naa: `502a7510000000${i}`.padEnd(16, '0'), serial: `TEST${i}` });
  }
  server.addTarget({ name: TARGET, ...o.target }, scsi);
  await server.listen();
  return { server, scsi, port: portals[0].port, ports: portals.map((p) => p.port), close: () => server.close() };
}

/** One test's target and sessions, closed after each test of the file that calls perTestRig(). */
export interface TestRig {
  h: Harness | undefined;
  readonly sessions: TestInitiator[];
}

export function perTestRig(): TestRig {
  const rig: TestRig = { h: undefined, sessions: [] };
  afterEach(async () => {
    for (const i of rig.sessions.splice(0)) i.close();
    await rig.h?.close();
    rig.h = undefined;
  });
  return rig;
}
