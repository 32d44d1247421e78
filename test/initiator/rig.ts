/**
 * Test support for the initiator module: a real target in process (memory LUs with distinct NAA
 * designators), its URL, a ScsiDevice whose power-on unit attention is already consumed, and a
 * TCP proxy that can hold the target's answers or cut the connection, to stage a network fault.
 */
import net from 'node:net';
import pino from 'pino';
import { IscsiServer } from '../../src/iscsi/server.ts';
import type { ChapConfig, IscsiTuning } from '../../src/iscsi/config.ts';
import { ScsiTarget } from '../../src/scsi/target.ts';
import { MemoryStore } from '../../src/store/memory.ts';
import { ScsiDevice } from '../../src/initiator/index.ts';
import type { OpenOptions } from '../../src/initiator/index.ts';

export const TARGET = 'iqn.2026-11.dev.arraysim:initiator-test';
export const BLOCKS = 262144; // 128 MiB of 512-byte blocks per LU (thin: only what is written takes memory)

export interface Rig {
  port: number;
  url(lun?: number, creds?: string): string;
  close(): Promise<void>;
}

export async function startRig(o: { luns?: number; chap?: ChapConfig; tuning?: Partial<IscsiTuning> } = {}): Promise<Rig> {
  const log = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
  const portals = [{ host: '127.0.0.1', port: 0, tpgt: 1, targetPortGroup: 1 }];
  const server = new IscsiServer(portals, log, { nopInterval: 0, ...o.tuning });
  const scsi = new ScsiTarget(TARGET, log);
  for (let i = 0; i < (o.luns ?? 2); i++) {
    scsi.addLun({ lun: i, store: new MemoryStore(BigInt(BLOCKS)), naa: `500140500000ab0${i}`, serial: `INI${i}` });
  }
  server.addTarget({ name: TARGET, ...(o.chap ? { chap: o.chap } : {}) }, scsi);
  await server.listen();
  const port = portals[0].port;
  return {
    port,
    url: (lun = 0, creds = '') => `iscsi://${creds ? creds + '@' : ''}127.0.0.1:${port}/${TARGET}/${lun}`,
    close: () => server.close(),
  };
}

/** Open a device and consume the power-on UNIT ATTENTION (SAM-5 §5.14), as a host does after login. */
export async function openReady(url: string, o?: OpenOptions): Promise<ScsiDevice> {
  const d = await ScsiDevice.open(url, o);
  const { last } = await d.clearUnitAttentions();
  if (last.kind !== 'good') throw new Error(`TEST UNIT READY after the unit attentions: ${JSON.stringify(last)}`);
  return d;
}

/** A pattern that differs per block and per seed, so a misplaced block shows. */
export function pattern(bytes: number, seed: number): Buffer {
  const b = Buffer.alloc(bytes);
  for (let i = 0; i < bytes; i += 4) b.writeUInt32BE(((i / 4) * 2654435761 + seed * 40503) >>> 0, i);
  return b;
}

/**
 * A loopback TCP proxy in front of the target. `hold()` stops passing the target's bytes to the
 * initiator (commands stay pending); `cut()` destroys both sides, as a network failure would.
 */
export interface Proxy {
  port: number;
  hold(): void;
  cut(): void;
  close(): Promise<void>;
}

export async function startProxy(targetPort: number): Promise<Proxy> {
  const pairs: { a: net.Socket; b: net.Socket }[] = [];
  let holding = false;
  const server = net.createServer((a) => {
    const b = net.connect(targetPort, '127.0.0.1');
    pairs.push({ a, b });
    a.on('data', (c) => b.write(c));
    b.on('data', (c) => { if (!holding) a.write(c); });
    a.on('error', () => {});
    b.on('error', () => {});
    a.on('close', () => b.destroy());
    b.on('close', () => a.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    hold: () => { holding = true; },
    cut: () => { for (const p of pairs) { p.a.destroy(); p.b.destroy(); } },
    close: () => new Promise((r) => { for (const p of pairs) { p.a.destroy(); p.b.destroy(); } server.close(() => r()); }),
  };
}
