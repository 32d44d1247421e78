/**
 * EXTENDED COPY over TCP: an initiator copies between two memory LUNs of one target and reads the
 * result back, and a READ sent while a 64 MiB copy runs is answered before the copy completes
 * (the copy yields to the event loop between its 1 MiB pieces).
 */
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IscsiServer } from '../../src/iscsi/server.ts';
import { ScsiTarget } from '../../src/scsi/target.ts';
import { MemoryStore } from '../../src/store/memory.ts';
import { TestInitiator } from '../helpers/initiator.ts';
import { rcrCdb, xcopyCdb, xcopyList } from '../scsi/xcopy-params.ts';
import { cdb16 } from '../helpers/cdb.ts';

const TARGET = 'iqn.2026-11.dev.arraysim:xcopy';
const NAA0 = '6001405000000c00';
const NAA1 = '6001405000000c01';
const BLOCKS = 256 * 2048; // 256 MiB of 512-byte blocks

let server: IscsiServer;
let port: number;

beforeAll(async () => {
  const log = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
  const portals = [{ host: '127.0.0.1', port: 0, tpgt: 1, targetPortGroup: 1 }];
  server = new IscsiServer(portals, log, { nopInterval: 0 });
  const scsi = new ScsiTarget(TARGET, log);
  scsi.addLun({ lun: 0, store: new MemoryStore(BigInt(BLOCKS)), naa: NAA0, serial: 'XC0' });
  scsi.addLun({ lun: 1, store: new MemoryStore(BigInt(BLOCKS)), naa: NAA1, serial: 'XC1' });
  server.addTarget({ name: TARGET }, scsi);
  await server.listen();
  port = portals[0].port;
});

afterAll(async () => { await server.close(); });

let sessions = 0;

async function login(): Promise<TestInitiator> {
  const ini = await TestInitiator.connect(port);
  // A distinct ISID per session: the same one would reinstate (and close) the previous session.
  ini.isid = Buffer.from([0x80, 0x12, 0x34, 0x56, 0x79, sessions++ & 0xff]);
  await ini.login(TARGET, { MaxRecvDataSegmentLength: '262144', FirstBurstLength: '262144', MaxBurstLength: '16776192' });
  // Clear the power-on unit attentions.
  for (const lun of [0, 1]) await ini.scsi(lun, [0x00, 0, 0, 0, 0, 0]);
  return ini;
}

function fillPattern(bytes: number, seed: number): Buffer {
  const b = Buffer.alloc(bytes);
  for (let i = 0; i < bytes; i += 4) b.writeUInt32BE(((i / 4) * 2654435761 + seed) >>> 0, i);
  return b;
}

describe('EXTENDED COPY over iSCSI', () => {
  it('copies between two LUNs of one target; the data reads back; COPY STATUS reports it', async () => {
    const ini = await login();
    const data = fillPattern(4 << 20, 7); // 4 MiB, ESXi's default segment
    expect((await ini.scsi(0, cdb16(0x8a, 1000, 8192), { write: data })).status).toBe(0);
    const list = xcopyList({
      listId: 3, cscds: [{ naa: NAA0 }, { naa: NAA1 }],
      segments: [{ src: 0, dst: 1, blocks: 8192, srcLba: 1000, dstLba: 5000 }],
    });
    const r = await ini.scsi(0, xcopyCdb(list.length), { write: list });
    expect(r.status).toBe(0);
    const back = await ini.scsi(1, cdb16(0x88, 5000, 8192), { read: 4 << 20 });
    expect(back.status).toBe(0);
    expect(back.data.equals(data)).toBe(true);
    const st = await ini.scsi(0, rcrCdb(0x00, 3, 12), { read: 12 });
    expect(st.data[4]).toBe(0x01);
    expect(st.data.readUInt32BE(8)).toBe(4 << 20);
    ini.close();
  });

  it('a failed copy answers COPY ABORTED, so the host can fall back', async () => {
    const ini = await login();
    const list = xcopyList({ cscds: [{ naa: NAA0 }, { naa: NAA1 }], segments: [{ src: 0, dst: 1, blocks: 16, srcLba: 0, dstLba: BLOCKS - 8 }] });
    const r = await ini.scsi(0, xcopyCdb(list.length), { write: list });
    expect(r.status).toBe(2);
    expect(r.sense![2] & 0x0f).toBe(0x0a);
    ini.close();
  });

  it('a READ from another session is served while a 64 MiB copy runs', async () => {
    const copier = await login();
    const reader = await login();
    const big = xcopyList({
      cscds: [{ naa: NAA0 }, { naa: NAA1 }],
      // Four 16 MiB segments (ESXi's largest), 64 MiB in all.
      segments: [0, 1, 2, 3].map((i) => ({ src: 0, dst: 1, blocks: 32768, srcLba: i * 32768, dstLba: 100000 + i * 32768 })),
    });
    let copyDone = 0;
    const copy = copier.scsi(0, xcopyCdb(big.length), { write: big }).then((r) => { copyDone = performance.now(); return r; });
    // Let the copy start, then read.
    await new Promise((r) => setTimeout(r, 2));
    const readDone = await reader.scsi(1, cdb16(0x88, 0, 8), { read: 4096 }).then((r) => { expect(r.status).toBe(0); return performance.now(); });
    const r = await copy;
    expect(r.status).toBe(0);
    expect(readDone).toBeLessThan(copyDone);
    copier.close();
    reader.close();
  });
});
