/**
 * Configuration: the CLI flags and the YAML file both become one ArrayConfig, which
 * src/array.ts turns into running objects. Documented in README.md ("Configuration").
 */
import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import YAML from 'yaml';
import type { ChapConfig, IscsiTuning, PortalConfig } from './iscsi/config.ts';

export interface LunConfig {
  /** LUN SPEC string: `SIZE[,OPTION...]` or `file:PATH[,size=SIZE][,OPTION...]`. */
  spec: string;
  /** Optional explicit identity (16 hex digits NAA body / serial); derived from target+LUN otherwise. */
  naa?: string;
  serial?: string;
  vendor?: string;
  product?: string;
}

export interface TargetConfig {
  name: string;
  alias?: string;
  acl?: string[];
  chap?: ChapConfig;
  luns: LunConfig[];
}

export interface ArrayConfig {
  portals: PortalConfig[];
  targets: TargetConfig[];
  iscsi: Partial<IscsiTuning>;
  logLevel: string;
}

export const DEFAULT_TARGET = 'iqn.2026-11.dev.arraysim:default';
export const DEFAULT_LISTEN = '127.0.0.1:3260';
export const DEFAULT_LUN = '1GiB';

export function parseHostPort(s: string): { host: string; port: number } {
  const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(s) ?? /^([^:]+)(?::(\d+))?$/.exec(s);
  if (!m) throw new Error(`bad listen address "${s}" (want HOST:PORT)`);
  const port = m[2] === undefined ? 3260 : Number(m[2]);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`bad port in "${s}"`);
  return { host: m[1], port };
}

export function portalsFrom(listen: string[]): PortalConfig[] {
  return listen.map((l, i) => ({ ...parseHostPort(l), tpgt: i + 1, targetPortGroup: i + 1 }));
}

/** From CLI flags (no --config). */
export function configFromFlags(o: { listen?: string[]; target?: string; lun?: string[]; logLevel?: string }): ArrayConfig {
  const listen = o.listen && o.listen.length ? o.listen : [DEFAULT_LISTEN];
  const luns = (o.lun && o.lun.length ? o.lun : [DEFAULT_LUN]).map((spec) => ({ spec }));
  return {
    portals: portalsFrom(listen),
    targets: [{ name: o.target ?? DEFAULT_TARGET, luns }],
    iscsi: {},
    logLevel: o.logLevel ?? 'info',
  };
}

/** From a YAML file; CLI flags given alongside override the file's portals and log level. */
export function configFromFile(path: string): ArrayConfig {
  const doc = YAML.parse(readFileSync(path, 'utf8')) ?? {};
  const err = (m: string) => new Error(`${path}: ${m}`);
  const portalsIn: unknown[] = doc.portals ?? [{ listen: DEFAULT_LISTEN }];
  if (!Array.isArray(portalsIn) || portalsIn.length === 0) throw err('portals must be a non-empty list');
  const portals = portalsIn.map((p: any, i: number) => {
    if (typeof p?.listen !== 'string') throw err(`portals[${i}].listen must be "HOST:PORT"`);
    const tpgt = p.tpgt ?? i + 1;
    return { ...parseHostPort(p.listen), tpgt, targetPortGroup: p.targetPortGroup ?? tpgt };
  });
  const targetsIn: any[] = doc.targets ?? [{ name: DEFAULT_TARGET, luns: [DEFAULT_LUN] }];
  if (!Array.isArray(targetsIn) || targetsIn.length === 0) throw err('targets must be a non-empty list');
  const targets = targetsIn.map((t: any, i: number): TargetConfig => {
    if (typeof t?.name !== 'string' || !/^(iqn\.|eui\.|naa\.)/.test(t.name)) throw err(`targets[${i}].name must be an iSCSI name`);
    const luns = (t.luns ?? [DEFAULT_LUN]).map((l: any, j: number): LunConfig => {
      if (typeof l === 'string') return { spec: l };
      if (typeof l?.spec !== 'string') throw err(`targets[${i}].luns[${j}] needs a spec`);
      return { spec: l.spec, naa: l.naa, serial: l.serial, vendor: l.vendor, product: l.product };
    });
    if (t.chap && (typeof t.chap.user !== 'string' || typeof t.chap.secret !== 'string')) {
      throw err(`targets[${i}].chap needs user and secret`);
    }
    return { name: t.name, alias: t.alias, acl: t.acl, chap: t.chap, luns };
  });
  const iscsi = { ...(doc.iscsi ?? {}) };
  if (iscsi.keys) iscsi.keys = Object.fromEntries(Object.entries(iscsi.keys).map(([k, v]) => [k, typeof v === 'boolean' ? (v ? 'Yes' : 'No') : String(v)]));
  return { portals, targets, iscsi, logLevel: doc.log?.level ?? 'info' };
}

/**
 * A stable identity for a LUN: NAA IEEE Registered (type 5) designator body, 16 hex digits.
 * The OUI 0x02A751 has the locally-administered bit set: it names no real vendor.
 */
export function lunIdentity(targetName: string, lun: number, spec: string): { naa: string; serial: string } {
  const h = createHash('sha256').update(`${targetName}\0${lun}\0${spec.replace(/,.*$/, '')}`).digest('hex');
  return { naa: `502a751${h.slice(0, 9)}`, serial: `ASIM${h.slice(9, 25).toUpperCase()}` };
}
