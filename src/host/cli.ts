/**
 * `arraysim host VERB …`: an ESXi host's VMFS data mover against any iSCSI target, devices named
 * by libiscsi URLs. A thin layer over host.ts and lock.ts: parse, open the devices, run, print.
 *
 *   host clone --from URL --to URL [--lba N] [--to-lba N] --blocks N [--max-hw-transfer KIB]
 *   host zero  --to URL [--lba N] --blocks N
 *   host unmap --to URL [--lba N] --blocks N
 *   host lock  --to URL [--lba N] [--hold MS] [--heartbeat MS] [--ats-only] [--owner NAME]
 *   host vaai-status --to URL [--from URL]
 * Each takes --set NAME=VALUE (repeatable, host-wide advanced settings) and --json.
 * Exit status: 0 done, 2 lock held by another host, 1 anything else (failed, outage, mount failed).
 */
import type { Argv, CommandModule } from 'yargs';
import { ScsiDevice, parseIscsiUrl } from '../initiator/index.ts';
import type { IscsiUrl } from '../initiator/index.ts';
import { EsxHost } from './host.ts';
import { lockRun } from './lock.ts';
import { formatReport, reportJson } from './report.ts';
import type { RunReport } from './report.ts';
import { settingsFrom, SettingError } from './settings.ts';
import { formatVaaiStatus } from './vaai-status.ts';

const VERBS = ['clone', 'zero', 'unmap', 'lock', 'vaai-status'] as const;
type HostVerb = (typeof VERBS)[number];

interface HostArgs {
  verb: HostVerb;
  from?: string;
  to?: string;
  lba: string;
  'to-lba'?: string;
  blocks?: string;
  'max-hw-transfer'?: number;
  set: string[];
  json: boolean;
  hold: number;
  heartbeat: number;
  'ats-only': boolean;
  owner?: string;
  volume?: string;
}

export class UsageError extends Error {}

function lbaArg(name: string, v: string | undefined, dflt?: bigint): bigint {
  if (v === undefined) {
    if (dflt === undefined) throw new UsageError(`--${name} is required`);
    return dflt;
  }
  if (!/^\d+$/.test(String(v).trim())) throw new UsageError(`--${name} must be a whole number of blocks, got "${v}"`);
  return BigInt(String(v).trim());
}

function blocksArg(v: string | undefined): number {
  const n = lbaArg('blocks', v);
  if (n < 1n || n > BigInt(Number.MAX_SAFE_INTEGER)) throw new UsageError(`--blocks must be 1 or more, got ${v}`);
  return Number(n);
}

function urlArg(name: string, v: string | undefined): IscsiUrl {
  if (!v) throw new UsageError(`--${name} URL is required (iscsi://HOST[:PORT]/TARGET-IQN/LUN)`);
  try {
    return parseIscsiUrl(v);
  } catch (e) {
    throw new UsageError(`--${name}: ${(e as Error).message}`);
  }
}

/** Open the devices; two URLs on the same portal and target share one session (one I_T nexus, as one ESXi path). */
async function openDevices(urls: IscsiUrl[]): Promise<ScsiDevice[]> {
  const out: ScsiDevice[] = [];
  for (const u of urls) {
    const same = out.find((d) => d.url && d.url.host === u.host && d.url.port === u.port && d.url.target === u.target);
    const d = same ? same.on(u.lun) : await ScsiDevice.open(u);
    // A host consumes each LU's power-on unit attention after login (SAM-5 §5.14: per LU and I_T nexus).
    await d.clearUnitAttentions();
    out.push(d);
  }
  return out;
}

export async function runHost(a: HostArgs, print: (s: string) => void = (s) => process.stdout.write(`${s}\n`)): Promise<number> {
  const settings = (() => {
    try { return settingsFrom(a.set ?? []); } catch (e) { if (e instanceof SettingError) throw new UsageError(e.message); throw e; }
  })();
  if (a['max-hw-transfer'] !== undefined) {
    const kib = a['max-hw-transfer'];
    if (!Number.isInteger(kib) || kib < 4 || kib > 16384) throw new UsageError(`--max-hw-transfer is 4..16384 KiB (DataMover.MaxHWTransferSize), got ${kib}`);
    settings['DataMover.MaxHWTransferSize'] = kib;
  }
  const host = new EsxHost(settings, a.owner ?? `esx-${process.pid}`);
  const lba = lbaArg('lba', a.lba, 0n);
  let devices: ScsiDevice[] = [];
  try {
    let report: RunReport;
    switch (a.verb) {
      case 'clone': {
        const urls = [urlArg('from', a.from), urlArg('to', a.to)];
        const blocks = blocksArg(a.blocks);
        const toLba = lbaArg('to-lba', a['to-lba'], lba);
        devices = await openDevices(urls);
        report = await host.clone({ from: devices[0], to: devices[1], lba, toLba, blocks });
        break;
      }
      case 'zero':
      case 'unmap': {
        const urls = [urlArg('to', a.to)];
        const blocks = blocksArg(a.blocks);
        devices = await openDevices(urls);
        report = await host[a.verb]({ to: devices[0], lba, blocks });
        break;
      }
      case 'lock': {
        const urls = [urlArg('to', a.to)];
        if (!(a.hold >= 0) || !(a.heartbeat > 0)) throw new UsageError('--hold must be >= 0 and --heartbeat > 0 (milliseconds)');
        devices = await openDevices(urls);
        report = await lockRun(host, devices[0], { lba, holdMs: a.hold, heartbeatMs: a.heartbeat, atsOnly: a['ats-only'], volume: a.volume, owner: host.name });
        break;
      }
      case 'vaai-status': {
        const urls = [a.to ?? a.from].filter((x): x is string => !!x).map((u, i) => urlArg(i ? 'from' : 'to', u));
        if (a.to && a.from) urls.push(urlArg('from', a.from));
        if (!urls.length) throw new UsageError('--to URL (or --from URL) is required');
        devices = await openDevices(urls);
        const rows = [];
        for (const d of devices) rows.push(host.vaai.status(await host.vaai.look(d)));
        print(a.json ? reportJson(rows) : rows.map(formatVaaiStatus).join('\n\n'));
        return 0;
      }
    }
    print(a.json ? reportJson(report) : formatReport(report));
    return report.outcome === 'done' ? 0 : report.outcome === 'held' ? 2 : 1;
  } finally {
    const sessions = new Set(devices.map((d) => d.session));
    for (const s of sessions) await s.logout().catch(() => s.close());
  }
}

export const hostCommand: CommandModule<object, HostArgs> = {
  command: 'host <verb>',
  describe: 'act as an ESXi host\'s VMFS data mover against any target (clone, zero, unmap, lock, vaai-status)',
  builder: (y: Argv) => y
    .positional('verb', { choices: VERBS, describe: 'what to do' })
    .option('from', { type: 'string', describe: 'source device URL iscsi://HOST[:PORT]/IQN/LUN (clone)' })
    .option('to', { type: 'string', describe: 'target device URL (clone destination; zero, unmap, lock, vaai-status device)' })
    .option('lba', { type: 'string', default: '0', describe: 'first LBA (the lock block for lock)' })
    .option('to-lba', { type: 'string', describe: 'first destination LBA (clone; default --lba)' })
    .option('blocks', { type: 'string', describe: 'number of blocks' })
    .option('max-hw-transfer', { type: 'number', describe: 'XCOPY segment in KiB, as DataMover.MaxHWTransferSize (default 4096)' })
    .option('set', { type: 'string', array: true, default: [], describe: 'advanced setting NAME=VALUE (repeatable): DataMover.HardwareAcceleratedMove, DataMover.HardwareAcceleratedInit, VMFS3.HardwareAcceleratedLocking (0|1), DataMover.MaxHWTransferSize' })
    .option('json', { type: 'boolean', default: false, describe: 'print the report as JSON' })
    .option('hold', { type: 'number', default: 0, describe: 'lock: milliseconds to hold the lock, heartbeating' })
    .option('heartbeat', { type: 'number', default: 1000, describe: 'lock: heartbeat interval in milliseconds' })
    .option('ats-only', { type: 'boolean', default: false, describe: 'lock: the volume is ATS-only (no SCSI reservation fallback)' })
    .option('owner', { type: 'string', describe: 'this host\'s name (lock owner); default esx-PID' })
    .option('volume', { type: 'string', describe: 'lock: volume label used in messages' }) as unknown as Argv<HostArgs>,
  handler: async (a) => {
    try {
      process.exitCode = await runHost(a);
    } catch (e) {
      if (e instanceof UsageError) { process.stderr.write(`arraysim host ${a.verb}: ${e.message}\n`); process.exitCode = 1; return; }
      throw e;
    }
  },
};
