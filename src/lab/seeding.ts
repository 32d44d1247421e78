/**
 * The field notes' dd seeding ("RecoverPoint Initial Synchronization with DD",
 * shared/seeds/field-notes-vspex-hadoop-powerpath-recoverpoint.md) over a remote copy held to a WAN
 * rate, as one procedure (ddSeeding) that runs against two kinds of site:
 * - in process (inProcessSites): the lab's `crr-dd-seeding` scenario, two arrays on loopback,
 *   the notes' rp verbs called as the admin API's functions;
 * - as processes (tools/crr-seeding.ts): two `arraysim serve`, the verbs through `arraysim rp`.
 *
 * The procedure, in the notes' order: the data is migrated (the whole volume written while the
 * group's transfer is paused); `enable_group start_transfer=no`; `clear_markers` (the DR copy is
 * declared identical); dd of production at bs=512k into an image file; production changes in a
 * fraction of its 1 MiB regions (the notes' "two days"); `enable_image_access image=latest`, then
 * `set_image_access_mode mode=direct`; the reverse dd onto the DR array's volume (skipped when
 * unseeded: the control, a full sweep of an empty copy); `disable_image_access start_transfer=no`;
 * `start_transfer` until the transfer is active; verify. The figures are the notes' own: what the
 * initial synchronization sent against the volume, and how long it took.
 */
import { closeSync, mkdtempSync, openSync, readSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { StorageArray } from '../array.ts';
import { configFromFlags } from '../config.ts';
import { ScsiDevice } from '../initiator/index.ts';
import * as admin from '../splitter/admin.ts';
import type { GroupRegistry } from '../splitter/admin.ts';
import { parseRp } from '../splitter/cli.ts';
import type { GroupStatus } from '../splitter/group.ts';
import { formatRate, parseRate } from '../splitter/rate.ts';
import { verifyGroup } from '../splitter/verify.ts';
import { judge } from './run.ts';
import type { LabRow } from './run.ts';
import type { Scenario } from './scenarios.ts';

export const SEED_GROUP = 'RPSyncGroup';
export const SEED_COPY = 'DR_RPSyncGroup';
const BS = 512;
/** dd bs=512k: the notes' "sweet spot". */
const PIECE = 512 * 1024;
const REGION = 1 << 20;

/** Where the procedure runs: production's and DR's volumes, and the operator's verbs. */
export interface SeedingSite {
  /** Production's LUN 0 (the host's view). */
  prod: ScsiDevice;
  /** The DR array's LUN 0, opened at the DR site for the reverse dd. */
  openDr(): Promise<ScsiDevice>;
  /** An rp verb as the notes write it: `clear_markers group=RPSyncGroup`. */
  rp(words: string): Promise<void>;
  /** start_transfer, returning once the transfer is active (`rp start_transfer --wait`). */
  startTransferWait(): Promise<void>;
  state(): Promise<GroupStatus>;
  verify(): Promise<{ consistent: boolean; line: string }>;
}

export interface SeedingOptions {
  size: number;
  /** Fraction of the 1 MiB regions production changes between the dd and the restore. */
  changed: number;
  /** false: no reverse dd (the control: the DR volume stays empty, the sweep sends it all). */
  seed: boolean;
  say?: (m: string) => void;
}

export interface SeedingResult {
  seeded: boolean;
  volumeBytes: number;
  changedRegions: number;
  /** The initialization: bytes sent to the copy, regions sent and compared. */
  bytesSent: number;
  regions: number;
  regionsCompared: number;
  /** init -> active, from the group's own state changes. */
  syncMs: number;
  link: { bytesSent: number; bytesReceived: number; commands: number; rate: string | null };
  consistent: boolean;
  verify: string;
}

/** dd between a device and an image file at bs=512k. */
async function dd(dev: ScsiDevice, file: string, size: number, dir: 'to-file' | 'from-file'): Promise<void> {
  const fd = openSync(file, dir === 'to-file' ? 'w' : 'r');
  const buf = Buffer.alloc(PIECE);
  try {
    for (let off = 0; off < size; off += PIECE) {
      if (dir === 'to-file') {
        const r = await dev.read(BigInt(off / BS), PIECE / BS, { into: buf });
        if (r.kind !== 'good') throw new Error(`dd: READ at ${off}: ${r.kind}`);
        writeSync(fd, buf, 0, PIECE, off);
      } else {
        readSync(fd, buf, 0, PIECE, off);
        const r = await dev.write(BigInt(off / BS), buf);
        if (r.kind !== 'good') throw new Error(`dd: WRITE at ${off}: ${r.kind}`);
      }
    }
  } finally {
    closeSync(fd);
  }
}

export async function ddSeeding(site: SeedingSite, o: SeedingOptions): Promise<SeedingResult> {
  const say = o.say ?? (() => {});
  const { prod } = site;
  const dir = mkdtempSync(join(tmpdir(), 'crr-seeding-'));
  try {
    // 1. The data is migrated first: the whole volume written (the transfer is paused: markers).
    const fill = Buffer.alloc(PIECE);
    for (let off = 0; off < o.size; off += PIECE) {
      for (let i = 0; i < PIECE; i += 4) fill.writeUInt32BE(((off + i) * 2654435761) >>> 0, i);
      const r = await prod.write(BigInt(off / BS), fill);
      if (r.kind !== 'good') throw new Error(`fill at ${off}: ${r.kind}`);
    }
    say(`1. ${o.size / REGION} MiB written to production`);
    // 2-3. The group with its transfer paused; clear_markers: DR is declared identical.
    await site.rp(`enable_group group=${SEED_GROUP} start_transfer=no`);
    await site.rp(`clear_markers group=${SEED_GROUP}`);
    // 4. dd of production to an image.
    const img = join(dir, 'PHYSICALDRIVE1.img');
    await dd(prod, img, o.size, 'to-file');
    say(`4. dd if=production of=${img} bs=512k`);
    // 5. "Roughly two days elapsed": production changes in a fraction of its regions.
    const regions = o.size / REGION;
    const changed = Math.max(1, Math.round(regions * o.changed));
    for (let k = 0; k < changed; k++) {
      const region = Math.floor((k * regions) / changed);
      const r = await prod.write(BigInt((region * REGION) / BS + (k % 64) * 8), Buffer.alloc(4096, k + 1));
      if (r.kind !== 'good') throw new Error(`change in region ${region}: ${r.kind}`);
    }
    say(`5. production changed in ${changed} of ${regions} regions (the days between the dd and the restore)`);
    // 6. Image access on the DR copy, then direct access.
    await site.rp(`enable_image_access group=${SEED_GROUP} copy=${SEED_COPY} image=latest`);
    await site.rp(`set_image_access_mode group=${SEED_GROUP} copy=${SEED_COPY} mode=direct`);
    // 7. The reverse dd at the DR site, onto the DR array's volume.
    if (o.seed) {
      const dr = await site.openDr();
      try { await dd(dr, img, o.size, 'from-file'); } finally { await dr.close().catch(() => {}); }
      say(`7. dd if=${img} of=DR volume bs=512k`);
    } else {
      say('7. (unseeded: no reverse dd; the DR volume is empty)');
    }
    // 8. Disable image access, start the transfer, wait for the initialization.
    await site.rp(`disable_image_access group=${SEED_GROUP} copy=${SEED_COPY} start_transfer=no`);
    await site.startTransferWait();
    const status = await site.state();
    const init = status.initialization;
    const link = status.copies[0].link;
    // The initialization's own duration, from the group's state changes (init -> active).
    const h = status.history;
    const began = [...h].reverse().find((e) => e.to === 'init');
    const ended = [...h].reverse().find((e) => e.to === 'active');
    const syncMs = began && ended ? Date.parse(ended.time) - Date.parse(began.time) : NaN;
    const v = await site.verify();
    say(`verify: ${v.line}`);
    return {
      seeded: o.seed, volumeBytes: init.volumeBytes, changedRegions: changed,
      bytesSent: init.bytesSent, regions: init.regions, regionsCompared: init.regionsCompared, syncMs,
      link: { bytesSent: link?.bytesSent ?? 0, bytesReceived: link?.bytesReceived ?? 0, commands: link?.commands ?? 0, rate: link?.rate ?? null },
      consistent: v.consistent, verify: v.line,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The figures as the notes give them: sent of the volume (percent), time, against a full sync. */
export function formatSeeding(r: SeedingResult, rateBytesPerSec: number): string {
  const mib = (b: number) => `${(b / REGION).toFixed(1)} MiB`;
  const full = r.volumeBytes / rateBytesPerSec;
  return `${r.seeded ? 'seeded' : 'unseeded'}: ${mib(r.bytesSent)} of ${mib(r.volumeBytes)} sent (${((100 * r.bytesSent) / r.volumeBytes).toFixed(2)}%), `
    + `${r.regions} of ${r.regionsCompared} regions compared, ${(r.syncMs / 1000).toFixed(2)} s init -> active `
    + `(a full sync at ${formatRate(rateBytesPerSec)}: ${full.toFixed(2)} s); link ${mib(r.link.bytesSent)} sent, ${mib(r.link.bytesReceived)} received, ${r.link.commands} commands`;
}

type Verb = (reg: GroupRegistry, input: Record<string, unknown>) => unknown;
/** The admin API's functions the notes' verbs reach (the routes `arraysim rp` calls). */
const VERBS: Record<string, Verb> = {
  enable_group: admin.enableGroup as Verb, clear_markers: admin.clearMarkers as Verb, start_transfer: admin.startTransfer as Verb,
  enable_image_access: admin.enableImageAccess as Verb, set_image_access_mode: admin.setImageAccessMode as Verb,
  disable_image_access: admin.disableImageAccess as Verb,
};

const DR_TARGET = 'iqn.2026-12.dev.arraysim:lab-dr';
const PROD_TARGET = 'iqn.2026-12.dev.arraysim:lab-prod';

/**
 * Production and DR in this process on loopback, production's group `RPSyncGroup` (preset
 * rp-vnx-flare31, transfer paused) with one remote copy `DR_RPSyncGroup` on DR's LUN 0 at `rate`.
 */
export async function inProcessSites(size: number, rate: string): Promise<SeedingSite & { close(): Promise<void> }> {
  const log = pino({ level: process.env.ARRAYSIM_LAB_LOG ?? 'silent' });
  const lun = `${size / REGION}MiB`;
  const drConfig = configFromFlags({ listen: ['127.0.0.1:0'], target: DR_TARGET, lun: [lun] });
  const drArray = await StorageArray.create(drConfig, log);
  await drArray.start();
  const drPort = drConfig.portals[0].port;
  let prodArray: StorageArray | null = null;
  let prod: ScsiDevice | null = null;
  try {
    const config = configFromFlags({
      listen: ['127.0.0.1:0'], target: PROD_TARGET, lun: [lun], splitter: 'rp-vnx-flare31',
      remoteCopy: `name=${SEED_COPY},remote=127.0.0.1:${drPort},target=${DR_TARGET},rate=${rate}`,
    });
    config.groups![0].name = SEED_GROUP;
    config.groups![0].startTransfer = false;
    prodArray = await StorageArray.create(config, log);
    await prodArray.start();
    const pa = prodArray;
    prod = await ScsiDevice.open(`iscsi://127.0.0.1:${config.portals[0].port}/${PROD_TARGET}/0`, { initiatorName: 'iqn.2026-12.dev.arraysim:host-prod' });
    await prod.clearUnitAttentions();
    const group = pa.groups.get(SEED_GROUP)!;
    const p = prod;
    return {
      prod: p,
      async openDr() {
        const d = await ScsiDevice.open(`iscsi://127.0.0.1:${drPort}/${DR_TARGET}/0`, { initiatorName: 'iqn.2026-12.dev.arraysim:host-dr' });
        await d.clearUnitAttentions();
        return d;
      },
      async rp(words) {
        const [verb, ...args] = words.split(' ');
        const { group: g, body } = parseRp(verb, args);
        await VERBS[verb](pa, { group: g, ...body });
      },
      async startTransferWait() {
        await admin.startTransfer(pa, { group: SEED_GROUP });
        await group.ready();
        if (group.transfer !== 'active') throw new Error(`start_transfer: the transfer is ${group.transfer}`);
      },
      async state() { return group.status(); },
      async verify() {
        const v = await verifyGroup(group, SEED_COPY);
        return { consistent: v.consistent, line: `${v.consistent ? 'consistent' : 'DIVERGED'} (${v.regions.compared} regions compared, ${v.diverged.length} diverged extents)` };
      },
      async close() {
        await p.close().catch(() => {});
        await pa.stop();
        await drArray.stop();
      },
    };
  } catch (e) {
    await prod?.close().catch(() => {});
    await prodArray?.stop();
    await drArray.stop();
    throw e;
  }
}

/** The lab's volume, rate and change: a full sync of 32 MiB at 80 Mbit/s takes 3.4 s. */
export const LAB_SEEDING = { size: 32 * REGION, rate: '80Mbit', changed: 0.0625 };

/** Seeded against unseeded, each on a fresh pair; the row holds both figures. */
export async function runSeedingScenario(s: Scenario): Promise<LabRow> {
  const t0 = performance.now();
  const results: SeedingResult[] = [];
  for (const seed of [true, false]) {
    const site = await inProcessSites(LAB_SEEDING.size, LAB_SEEDING.rate);
    try { results.push(await ddSeeding(site, { size: LAB_SEEDING.size, changed: LAB_SEEDING.changed, seed })); } finally { await site.close(); }
  }
  return judgeSeeding(s, results, t0);
}

/** The notes' claims held against a seeded and an unseeded run (exported for the negative control). */
export function judgeSeeding(s: Scenario, results: SeedingResult[], t0: number): LabRow {
  const [seeded, unseeded] = results;
  const rate = parseRate(LAB_SEEDING.rate);
  const mismatch: string[] = [];
  const atMost = s.expect.seededAtMost ?? 1;
  // The notes: "The traffic you see will be the changes to the source volume since the block-level dd copy was made."
  if (seeded.bytesSent !== seeded.changedRegions * REGION) mismatch.push(`seeded sent ${seeded.bytesSent} bytes, expected the ${seeded.changedRegions} changed regions (${seeded.changedRegions * REGION})`);
  if (seeded.bytesSent > atMost * seeded.volumeBytes) mismatch.push(`seeded sent ${((100 * seeded.bytesSent) / seeded.volumeBytes).toFixed(2)}% of the volume, expected at most ${atMost * 100}%`);
  // The control: "a full volume sweep" of an empty copy sends every region, at the link's rate.
  if (unseeded.bytesSent !== unseeded.volumeBytes) mismatch.push(`unseeded sent ${unseeded.bytesSent} bytes, expected the whole volume (${unseeded.volumeBytes})`);
  const fullSec = unseeded.volumeBytes / rate;
  // The token bucket lets 1 MiB go at once (rate.ts, burst): the sweep cannot beat the rest (less
  // 20 ms: the state changes' times are whole milliseconds, and the timers' own rounding).
  const floorSec = (unseeded.volumeBytes - REGION) / rate - 0.02;
  if (unseeded.syncMs / 1000 < floorSec) mismatch.push(`unseeded took ${(unseeded.syncMs / 1000).toFixed(2)} s, faster than the link allows (${floorSec.toFixed(2)} s)`);
  if (!(seeded.syncMs < unseeded.syncMs)) mismatch.push(`seeded took ${seeded.syncMs} ms, not less than unseeded (${unseeded.syncMs} ms)`);
  const both = seeded.consistent && unseeded.consistent;
  if (!both) mismatch.push(`verify: seeded ${seeded.verify}; unseeded ${unseeded.verify}`);
  const pct = (r: SeedingResult) => ((100 * r.bytesSent) / r.volumeBytes).toFixed(2);
  const observed = `${LAB_SEEDING.size / REGION} MiB at ${LAB_SEEDING.rate}: seeded ${(seeded.bytesSent / REGION).toFixed(1)} MiB (${pct(seeded)}%) in ${(seeded.syncMs / 1000).toFixed(2)} s; `
    + `unseeded ${(unseeded.bytesSent / REGION).toFixed(1)} MiB (${pct(unseeded)}%) in ${(unseeded.syncMs / 1000).toFixed(2)} s (full sync by arithmetic ${fullSec.toFixed(2)} s)`;
  const row = judge(s, { reports: [], verify: { consistent: both, diverged: [] }, mismatch, observed }, t0);
  return { ...row, details: { seeding: results } };
}
