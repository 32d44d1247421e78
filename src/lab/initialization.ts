/**
 * The 2011 update's story (recoverpoint-vaai-update-2011.md): consistency groups that failed to
 * initialize while hosts used hardware-assisted locking (CAS, ATS) through the FLARE 30 array
 * splitter, until patch 4.30.000.5.509; before it, disabling VAAI was "the only way".
 *
 * The run: the group exists with its transfer paused and was never synchronized; the host writes
 * its datastore (24 MiB on each LUN: regions the first initialization's full sweep must compare and
 * send), mounts the volume and heartbeats its VMFS lock; the operator runs start_transfer (the
 * admin verb) under the heartbeats; the heartbeats go on until the initialization has ended. The
 * row says whether the transfer went active or to error (and the group's reason), how many
 * heartbeats were answered while the group was initializing, and verify's verdict when there is a
 * copy to verify. A run in which no heartbeat met the initialization proves nothing, and says so.
 */
import { EsxHost } from '../host/host.ts';
import { lockRun } from '../host/lock.ts';
import { settingsFrom } from '../host/settings.ts';
import type { ScsiDevice } from '../initiator/index.ts';
import { startTransfer } from '../splitter/admin.ts';
import { verifyGroup } from '../splitter/verify.ts';
import { fill, judge, labArray, labDevice, pattern } from './run.ts';
import type { LabRow } from './run.ts';
import type { Scenario } from './scenarios.ts';

/** The datastore written before the initialization, per LUN (the regions the sweep sends). */
const DATA_BLOCKS = 24 * 2048;
/** The VMFS lock block on LUN 1, past the data. */
const LOCK_LBA = BigInt(DATA_BLOCKS + 2048);
const HEARTBEAT_MS = 2;

export async function runInitialization(s: Scenario): Promise<LabRow> {
  const t0 = performance.now();
  const { array, group, port } = await labArray(s.splitter, { startTransfer: false });
  let dev: ScsiDevice | null = null;
  try {
    dev = await labDevice(port, 'lab-esx');
    const lu1 = dev.on(1);
    await lu1.clearUnitAttentions();
    // The datastore's VMs, written while the group is paused (the field notes' "configure the
    // consistency group ... do not start the transfer"): they only mark regions.
    await fill(dev, 0n, pattern(DATA_BLOCKS * 512, 11));
    await fill(lu1, 0n, pattern(DATA_BLOCKS * 512, 12));
    const host = new EsxHost(settingsFrom(s.settings), 'lab-esx');
    let started = false;
    let ended = false;
    let duringInit = 0;
    let firstBeat!: () => void;
    const beating = new Promise<void>((r) => { firstBeat = r; });
    const lock = lockRun(host, lu1, {
      lba: LOCK_LBA, holdMs: 0, heartbeatMs: HEARTBEAT_MS, volume: 'lab-datastore', owner: 'lab-esx',
      until: () => ended,
      onHeartbeat: () => { firstBeat(); if (started && group.transfer === 'init') duringInit++; },
    });
    // The operator starts the transfer once the host heartbeats (or the lock run has ended early).
    await Promise.race([beating, lock]);
    started = true;
    await startTransfer(array, { group: 'default' });
    await group.ready();
    ended = true;
    const report = await lock;
    const initialized = group.transfer === 'active';
    const last = [...group.history].reverse().find((e) => e.from === 'init');
    const mismatch: string[] = [];
    if (duringInit === 0 && !(last?.to === 'error')) mismatch.push('no heartbeat was answered while the group was initializing: the run proves nothing (the sweep ended first)');
    const init = group.status().initialization;
    const observed = [
      `transfer init -> ${last?.to ?? group.transfer}${last?.to === 'error' ? ` (${last.reason})` : ''}`,
      `${init.regions} of ${init.regionsCompared} regions sent`,
      `${report.lock?.heartbeats ?? 0} heartbeats (${report.lock?.mode ?? 'none'}), ${duringInit} answered during the initialization`,
    ].join('; ');
    const verify = initialized ? await verifyGroup(group, 'local') : null;
    return judge(s, { reports: [report], verify, initialized, mismatch, observed }, t0);
  } finally {
    await dev?.close().catch(() => {});
    await array.stop();
  }
}
