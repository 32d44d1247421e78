/**
 * Test support: two StorageArrays in this process, site A (127.0.1.1, primary) and site B
 * (127.0.2.1, secondary), each with its own portal, target port group and replication link
 * listener, and one Remote Copy group of one volume with the same NAA, serial and geometry on
 * both. Devices are opened through the project's initiator module.
 */
import pino from 'pino';
import { StorageArray } from '../../src/array.ts';
import type { ArrayConfig } from '../../src/config.ts';
import { ScsiCommandError, ScsiDevice } from '../../src/initiator/index.ts';
import type { ScsiResult } from '../../src/initiator/index.ts';
import type { Proximity } from '../../src/replication/group-machine.ts';
import { RemoteCopy } from '../../src/replication/engine.ts';
import type { DataIntegrity, ReplicationGroup } from '../../src/replication/engine.ts';

export const TARGET = 'iqn.2026-11.dev.arraysim:rcopy-test';
export const GROUP = 'rcg1';
export const VOLUME = { naa: '502a7510000a0001', serial: 'ASIMRCOPYVOL1' };
export const BLOCKS = 131072; // 64 MiB of 512-byte blocks (thin memory: only what is written takes memory)

function config(site: 'A' | 'B', peerPort: number | null, hosts: Record<string, Proximity>, witness?: { host: string; port: number }, tpgtB = 2, dataIntegrity?: DataIntegrity): ArrayConfig {
  const host = site === 'A' ? '127.0.1.1' : '127.0.2.1';
  const tpg = site === 'A' ? 1 : tpgtB;
  return {
    portals: [{ host, port: 0, tpgt: tpg, targetPortGroup: tpg }],
    targets: [{ name: TARGET, luns: [{ spec: `${BLOCKS * 512}`, naa: VOLUME.naa, serial: VOLUME.serial }] }],
    iscsi: { nopInterval: 0 },
    logLevel: 'silent',
    peers: { name: `site-${site.toLowerCase()}`, listen: { host, port: 0 }, peer: peerPort === null ? undefined : { host: '127.0.2.1', port: peerPort }, witness, dataIntegrity },
    rcopy: { groups: [{ name: GROUP, role: site === 'A' ? 'primary' : 'secondary', volumes: [{ target: TARGET, lun: 0 }], policies: { active_active: true }, hosts }] },
  };
}

export interface Pair {
  a: StorageArray;
  b: StorageArray;
  ga: ReplicationGroup;
  gb: ReplicationGroup;
  url(site: 'A' | 'B'): string;
  /** `isid`: one initiator port through both arrays (as open-iscsi uses one ISID per iface); default a random one per session. */
  open(site: 'A' | 'B', initiatorName?: string, isid?: string): Promise<ScsiDevice>;
  synced(): Promise<void>;
  close(): Promise<void>;
  /** An array failure: stop one array (its portals, link and witness connection close). */
  stop(site: 'A' | 'B'): Promise<void>;
}

/** `unsafeAckBeforePeer`: site A acknowledges writes before B has them (only for negative controls). */
/** `witness`: both arrays keep in touch with the quorum witness at that address (peers.witness). */
/** `tpgtB`: site B's TPGT (= relative target port id; default 2, A's is 1); `noWait`: return without waiting for Synced. */
/** `dataIntegrity`: both arrays' peers.dataIntegrity (default: auto, so unchecked on loopback). */
export async function startPair(o: { hosts?: Record<string, Proximity>; unsafeAckBeforePeer?: boolean; witness?: { host: string; port: number }; tpgtB?: number; noWait?: boolean; dataIntegrity?: DataIntegrity } = {}): Promise<Pair> {
  const log = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
  const b = await StorageArray.create(config('B', null, o.hosts ?? {}, o.witness, o.tpgtB, o.dataIntegrity), log.child({ site: 'B' }));
  await b.start();
  RemoteCopy.unsafeAckBeforePeer = !!o.unsafeAckBeforePeer;
  let a: StorageArray;
  try {
    a = await StorageArray.create(config('A', b.config.peers!.listen!.port, o.hosts ?? {}, o.witness, 2, o.dataIntegrity), log.child({ site: 'A' }));
  } finally {
    RemoteCopy.unsafeAckBeforePeer = false;
  }
  await a.start();
  const devices: ScsiDevice[] = [];
  const stopped = new Set<StorageArray>();
  const pair: Pair = {
    a, b, ga: a.rcopy!.groups.get(GROUP)!, gb: b.rcopy!.groups.get(GROUP)!,
    url: (site) => {
      const p = (site === 'A' ? a : b).config.portals[0];
      return `iscsi://${p.host}:${p.port}/${TARGET}/0`;
    },
    open: async (site, initiatorName, isid) => {
      const d = await ScsiDevice.open(pair.url(site), { initiatorName, isid });
      await d.clearUnitAttentions();
      devices.push(d);
      return d;
    },
    synced: () => until(() => pair.ga.machine.status === 'Synced' && pair.gb.machine.status === 'Synced', 'both Synced'),
    close: async () => {
      for (const d of devices) await d.close().catch(() => {});
      if (!stopped.has(a)) await a.stop();
      if (!stopped.has(b)) await b.stop();
    },
    stop: async (site) => {
      const x = site === 'A' ? a : b;
      if (stopped.has(x)) return;
      stopped.add(x);
      await x.stop();
    },
  };
  if (!o.noWait) await pair.synced();
  return pair;
}

export async function until(f: () => boolean | Promise<boolean>, what: string, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await f())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Run a command again while it answers UNIT ATTENTION (ALUA changes raise 2A/06 on every nexus). */
export async function settled<T>(f: () => Promise<ScsiResult<T>>): Promise<ScsiResult<T>> {
  for (let i = 0; ; i++) {
    let r: ScsiResult<T>;
    try {
      r = await f();
    } catch (e) {
      // A device method that sizes its transfer first (READ CAPACITY) throws that command's result.
      if (e instanceof ScsiCommandError && i <= 8) r = e.result;
      else throw e;
    }
    if (r.kind !== 'check-condition' || r.sense?.key !== 6 || i > 8) return r;
  }
}

/** A read that must succeed (unit attentions retried): its data, or an error naming the sense. */
export async function readOk(d: ScsiDevice, lba: bigint, blocks: number): Promise<Buffer> {
  const r = await settled(() => d.read(lba, blocks));
  if (r.kind !== 'good') throw new Error(`read ${lba}: ${senseOf(r)}`);
  return r.value;
}

export function senseOf(r: ScsiResult<unknown>): string {
  if (r.kind === 'good') return 'good';
  if (r.kind === 'status') return r.name;
  const h = (n: number) => n.toString(16).padStart(2, '0');
  return r.sense ? `${h(r.sense.key)}/${h(r.sense.asc)}/${h(r.sense.ascq)}` : 'no sense';
}

export function block(fill: number | string, blocks = 1): Buffer {
  const b = Buffer.alloc(512 * blocks);
  if (typeof fill === 'number') b.fill(fill);
  else b.write(fill.padEnd(512 * blocks, '.'));
  return b;
}
