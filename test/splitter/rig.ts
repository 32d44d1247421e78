/**
 * A running array with a write splitter, as `serve --splitter SPEC` builds it (StorageArray from
 * configFromFlags, admin API on an ephemeral loopback port), and sessions to it.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import { StorageArray } from '../../src/array.ts';
import { AdminApi } from '../../src/admin/api.ts';
import { configFromFile, configFromFlags } from '../../src/config.ts';
import type { ConsistencyGroup, CrrCopy } from '../../src/splitter/group.ts';
import type { ScsiResult as InitiatorResult } from '../../src/initiator/index.ts';
import type { LogicalUnit } from '../../src/scsi/lu.ts';
import { ScsiTarget } from '../../src/scsi/target.ts';
import { ScsiStatus, TaskAttribute } from '../../src/scsi/types.ts';
import { MemoryStore } from '../../src/store/memory.ts';
import { expect } from 'vitest';
import { cdb16 } from '../helpers/cdb.ts';
import { TestInitiator } from '../helpers/initiator.ts';
import { makeNexus } from '../scsi/sbc-fixture.ts';
import type { ScsiResult } from '../helpers/initiator.ts';

export const TARGET = 'iqn.2026-11.dev.arraysim:splitter-test';

export interface SplitterRig {
  array: StorageArray;
  admin: AdminApi;
  adminAddr: string;
  port: number;
  group: ConsistencyGroup;
  lus: LogicalUnit[];
  session(initiator?: string): Promise<TestInitiator>;
  close(): Promise<void>;
}

let isid = 0;

export async function startSplitterArray(splitter: string, luns: string[] = ['8MiB', '8MiB']): Promise<SplitterRig> {
  const log = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
  const config = configFromFlags({ listen: ['127.0.0.1:0'], target: TARGET, lun: luns, splitter });
  const array = await StorageArray.create(config, log);
  await array.start();
  const admin = new AdminApi(array, log);
  const adminPort = await admin.listen('127.0.0.1', 0);
  const group = array.groups.get('default')!;
  await group.ready();
  const sessions: TestInitiator[] = [];
  return {
    array, admin, adminAddr: `127.0.0.1:${adminPort}`, port: config.portals[0].port, group,
    lus: [...array.scsiTargets.get(TARGET)!.luns.values()],
    async session(initiator = 'iqn.2026-11.dev.arraysim:host-a') {
      const ini = await TestInitiator.connect(config.portals[0].port);
      ini.isid = Buffer.from([0x80, 0x12, 0x34, 0x56, 0x7a, isid++ & 0xff]);
      await ini.login(TARGET, { MaxRecvDataSegmentLength: '262144', FirstBurstLength: '262144', MaxBurstLength: '16776192' }, initiator);
      for (const lun of luns.keys()) await ini.scsi(lun, [0x00, 0, 0, 0, 0, 0]); // clear power-on UAs
      sessions.push(ini);
      return ini;
    },
    async close() {
      for (const s of sessions) s.close();
      await admin.close();
      await array.stop();
    },
  };
}

/** [sense key, ASC, ASCQ] of a CHECK CONDITION (fixed format). */
export const kcq = (r: ScsiResult): number[] => (r.sense ? [r.sense[2] & 0x0f, r.sense[12], r.sense[13]] : []);

export async function adminCall(addr: string, method: string, path: string, body?: unknown): Promise<{ status: number; json: any }> {
  const res = await fetch(`http://${addr}${path}`, { method, headers: { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
  return { status: res.status, json: await res.json() };
}

/** Until remote copy `c` has applied every record of `g`'s journal (throws after `ms`). */
export async function crrDrained(g: ConsistencyGroup, c: CrrCopy, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (c.appliedSeq < g.journal.nextSeq - 1) {
    if (Date.now() > end) throw new Error(`copy at ${c.appliedSeq} of ${g.journal.nextSeq - 1}; transfer ${g.transfer}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** The value of an initiator result that must be GOOD. */
export const good = <T>(r: InitiatorResult<T>): T => {
  if (r.kind !== 'good') throw new Error(`not GOOD: ${JSON.stringify(r, (_k, v) => (typeof v === 'bigint' ? String(v) : v))}`);
  return r.value;
};

/** A recognisable block pattern. */
export function pattern(bytes: number, seed: number): Buffer {
  const b = Buffer.alloc(bytes);
  for (let i = 0; i < bytes; i += 4) b.writeUInt32BE(((i / 4) * 2654435761 + seed * 40503) >>> 0, i);
  return b;
}

/**
 * A file-journaled group `g` (rp-vnx-flare31, journal in DIR/j, 64 MiB) protecting one 4 MiB file
 * LUN (DIR/prod.img, 512-byte blocks) of `target`, from a YAML in `dir`; start() starts an array
 * on it (again, after a stop: the restart tests) once its initialization is done.
 */
export function fileJournalArray(dir: string, target: string) {
  const f = path.join(dir, 'a.yaml');
  writeFileSync(f, [
    'portals:', '  - listen: 127.0.0.1:0',
    'targets:', `  - name: ${target}`, '    luns:', `      - file:${path.join(dir, 'prod.img')},size=4MiB`,
    'splitters:', '  - name: s', '    spec: rp-vnx-flare31',
    'groups:', '  - name: g', '    splitter: s', '    journal: {type: file, path: j, size: 64MiB}', '',
  ].join('\n'));
  const log = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
  const start = async () => {
    const config = configFromFile(f);
    const a = await StorageArray.create(config, log);
    await a.start();
    const g = a.groups.get('g')!;
    await g.ready();
    const port = config.portals[0].port;
    return { a, g, port, url: `iscsi://127.0.0.1:${port}/${target}/0` };
  };
  return { dir, journal: path.join(dir, 'j'), start };
}

/**
 * One memory LU of a fresh target, in process (no transport), with a nexus that has seen its
 * power-on unit attention: `submit` runs a command through lu.submit and expects GOOD, `write`
 * is a WRITE(16) of `data` at `lba`. Protect it with a ConsistencyGroup over [lu].
 */
export function inProcessLun(blocks: number, naa: string, serial: string) {
  const t = new ScsiTarget(`iqn.2026-11.dev.arraysim:${serial.toLowerCase()}`);
  const lu = t.addLun({ lun: 0, store: new MemoryStore(BigInt(blocks)), naa, serial });
  const nexus = makeNexus();
  t.nexusUp(nexus);
  lu.ua.forget(nexus.key);
  const submit = async (cdb: Buffer, dataOut: Buffer | null) => {
    const r = await lu.submit({ lun: 0, cdb, nexus, taskTag: 1, attr: TaskAttribute.Simple, expectedLength: dataOut?.length ?? 0, isRead: false, isWrite: !!dataOut, dataOut });
    expect(r.status).toBe(ScsiStatus.Good);
  };
  const write = (lba: number, data: Buffer) => submit(cdb16(0x8a, lba, data.length / 512), data);
  return { lu, submit, write };
}
