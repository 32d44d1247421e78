/**
 * ESXi's host-wide advanced settings that decide whether the VMFS data mover offloads. They are
 * host-wide, not per array or per LUN: the 2010 RecoverPoint post's workaround is to set Move
 * and Init to 0 on every host, "for all arrays to which the host is connected" (seeds/
 * recoverpoint-vaai-interoperability-2010.md). All default to 1: hardware acceleration for
 * block devices is on by default (vSphere 8.0 "Storage Hardware Acceleration", reference S2).
 */

export interface HostSettings {
  /** EXTENDED COPY for clones (/DataMover/HardwareAcceleratedMove). */
  'DataMover.HardwareAcceleratedMove': 0 | 1;
  /** WRITE SAME for eager zeroing (/DataMover/HardwareAcceleratedInit). */
  'DataMover.HardwareAcceleratedInit': 0 | 1;
  /** COMPARE AND WRITE (ATS) for VMFS locks (/VMFS3/HardwareAcceleratedLocking, KB 319797). */
  'VMFS3.HardwareAcceleratedLocking': 0 | 1;
  /** The XCOPY segment in KiB (/DataMover/MaxHWTransferSize): 4096 by default, 16384 the largest vendors set (S5, S11, S12). */
  'DataMover.MaxHWTransferSize': number;
}

export const DEFAULT_SETTINGS: Readonly<HostSettings> = Object.freeze({
  'DataMover.HardwareAcceleratedMove': 1,
  'DataMover.HardwareAcceleratedInit': 1,
  'VMFS3.HardwareAcceleratedLocking': 1,
  'DataMover.MaxHWTransferSize': 4096,
});

export type SettingName = keyof HostSettings;

const SWITCHES: readonly SettingName[] = ['DataMover.HardwareAcceleratedMove', 'DataMover.HardwareAcceleratedInit', 'VMFS3.HardwareAcceleratedLocking'];

export class SettingError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SettingError';
  }
}

/**
 * One `NAME=VALUE` as `--set` takes it. esxcli spells names as paths (/DataMover/HardwareAcceleratedMove);
 * both spellings are accepted, and a name or value ESXi would refuse is an error naming it.
 */
export function parseSetting(text: string): [SettingName, number] {
  const eq = text.indexOf('=');
  if (eq < 0) throw new SettingError(`--set ${text}: expected NAME=VALUE, e.g. DataMover.HardwareAcceleratedMove=0`);
  const raw = text.slice(0, eq).trim().replace(/^\//, '').replace(/\//g, '.');
  const value = text.slice(eq + 1).trim();
  const name = (Object.keys(DEFAULT_SETTINGS) as SettingName[]).find((k) => k.toLowerCase() === raw.toLowerCase());
  if (!name) throw new SettingError(`--set ${text}: unknown setting "${raw}"; known: ${Object.keys(DEFAULT_SETTINGS).join(', ')}`);
  if (!/^\d+$/.test(value)) throw new SettingError(`--set ${text}: ${name} takes an integer, got "${value}"`);
  const n = Number(value);
  if (SWITCHES.includes(name) && n !== 0 && n !== 1) throw new SettingError(`--set ${text}: ${name} is 0 or 1`);
  // [unverified] range 4..16384 KiB; the 16 MiB ceiling is stated by S12 ("current maximum is 16 MB").
  if (name === 'DataMover.MaxHWTransferSize' && (n < 4 || n > 16384)) throw new SettingError(`--set ${text}: ${name} is 4..16384 (KiB)`);
  return [name, n];
}

/** The defaults with each `NAME=VALUE` applied in order. */
export function settingsFrom(sets: readonly string[] = [], base: Readonly<HostSettings> = DEFAULT_SETTINGS): HostSettings {
  const s: HostSettings = { ...base };
  for (const t of sets) {
    const [name, n] = parseSetting(t);
    (s as unknown as Record<string, number>)[name] = n;
  }
  return s;
}

/** The settings that differ from the defaults, as `NAME=VALUE` (for reports). */
export function changedSettings(s: Readonly<HostSettings>): string[] {
  return (Object.keys(DEFAULT_SETTINGS) as SettingName[]).filter((k) => s[k] !== DEFAULT_SETTINGS[k]).map((k) => `${k}=${s[k]}`);
}
