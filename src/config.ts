/**
 * Configuration: the CLI flags and the YAML file both become one ArrayConfig, which
 * src/array.ts turns into running objects. Documented in README.md ("Configuration").
 */
import { readFileSync } from 'node:fs';
import path, { dirname, resolve } from 'node:path';
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import type { ChapConfig, IscsiTuning, PortalConfig } from './iscsi/config.ts';
import { ALUA_MODES, parseAccessState } from './scsi/alua.ts';
import type { AluaConfig, AluaMode } from './scsi/alua.ts';
import type { PeersConfig, RcopyConfig } from './replication/engine.ts';
import { rcopySections } from './replication/config.ts';
import { parseNaa } from '../protocol/scsi/vpd.ts';
import { PRIMITIVES, parseSplitterSpec } from './splitter/policy.ts';
import type { SplitterSpec } from './splitter/policy.ts';
import { parseRate } from './splitter/rate.ts';
import { parseSize } from './store/lun-spec.ts';

export interface LunConfig {
  /** LUN SPEC string: `SIZE[,OPTION...]` or `file:PATH[,size=SIZE][,OPTION...]`. */
  spec: string;
  /** Optional explicit identity (NAA body: 16 hex digits of NAA 2, 3 or 5, or 32 of NAA 6 / serial); derived from target+LUN otherwise. */
  naa?: string;
  serial?: string;
  vendor?: string;
  product?: string;
  /** ALUA kind this LU offers; default: the target's `alua.mode`. */
  aluaMode?: AluaMode;
}

export interface TargetConfig {
  name: string;
  alias?: string;
  acl?: string[];
  chap?: ChapConfig;
  luns: LunConfig[];
  /** Target port groups' states for this target (merged over the file's top-level `alua:`). */
  alua?: AluaConfig;
}

/** A named write splitter (YAML `splitters:`): what it does with each VAAI primitive. */
export interface SplitterConfig {
  name: string;
  spec: SplitterSpec;
}

/** A consistency group (YAML `groups:`; `serve --splitter` makes one called `default`). */
export interface GroupConfig {
  name: string;
  /** Name of a `splitters:` entry. */
  splitter: string;
  /** The target whose LUNs it protects; default: the first target. */
  target?: string;
  /** Production LUNs (replication sets); default: every LUN of the target. */
  luns?: number[];
  /** Copies by name: local (CDP) unless named in `remote`. */
  copies: string[];
  /** Remote copies (CRR) by name: the remote array's target and LUNs, and the link's rate limit. */
  remote?: Record<string, RemoteCopyConfig>;
  /** Journal size limit in bytes. */
  journalBytes: number;
  /**
   * A file journal's folder (absolute): segments, the copies' checkpoints and their replica
   * files (journal-file.ts). Absent: a memory journal with memory replicas.
   */
  journalPath?: string;
  /** Start the transfer at once (first initialization, then active); else paused. */
  startTransfer: boolean;
}

/** A remote copy (CRR, src/splitter/link.ts): LUs of another arraysim's target, over iSCSI. */
export interface RemoteCopyConfig {
  /** The remote array's portal. */
  host: string;
  port: number;
  /** The remote target's IQN. */
  target: string;
  /** The remote LUN of each replication set, in order; default 0, 1, … */
  luns?: number[];
  /** The link's rate limit, bytes per second each way (from `50Mbit`, `6MB`, …); absent: none. */
  rate?: number;
  /** Undo data the remote array keeps for the copy's images (`undo: 64MiB`); absent: the group's journal size. */
  undoBytes?: number;
}

/**
 * A remote copy from YAML (`copies:` entry {name, remote, target, luns?, rate?, undo?}) or from
 * `serve --remote-copy name=N,remote=HOST:PORT,target=IQN[,luns=0:1][,rate=50Mbit][,undo=64MiB]`.
 */
export function parseRemoteCopy(o: Record<string, unknown>, err: (m: string) => Error): { name: string; remote: RemoteCopyConfig } {
  for (const k of Object.keys(o)) if (!['name', 'remote', 'target', 'luns', 'rate', 'undo'].includes(k)) throw err(`${k}: unknown field (want name, remote, target, luns, rate, undo)`);
  if (typeof o.name !== 'string' || !/^[\w.:-]{1,64}$/.test(o.name)) throw err('name must be 1-64 letters, digits, . _ : -');
  if (typeof o.remote !== 'string') throw err('remote must be the remote array\'s portal HOST:PORT');
  const { host, port } = parseHostPort(o.remote);
  if (typeof o.target !== 'string' || !o.target) throw err('target must be the remote target\'s IQN');
  let luns: number[] | undefined;
  if (o.luns !== undefined) {
    const list = typeof o.luns === 'string' ? o.luns.split(':').map(Number) : o.luns;
    if (!Array.isArray(list) || !list.length || list.some((n) => !Number.isInteger(n) || (n as number) < 0)) throw err('luns must be a list of remote LUN numbers, one per replication set');
    luns = list as number[];
  }
  let rate: number | undefined;
  if (o.rate !== undefined) {
    try { rate = parseRate(o.rate as string | number); } catch (e) { throw err(`rate: ${(e as Error).message}`); }
  }
  let undoBytes: number | undefined;
  if (o.undo !== undefined) {
    try { undoBytes = typeof o.undo === 'number' ? o.undo : parseSize(String(o.undo)); } catch (e) { throw err(`undo: ${(e as Error).message}`); }
    if (!(undoBytes >= 1 << 20)) throw err('undo: at least 1MiB (the remote keeps undo data in MiB)');
  }
  return { name: o.name, remote: { host, port, target: o.target, luns, rate, ...(undoBytes !== undefined ? { undoBytes } : {}) } };
}

/** `serve --remote-copy SPEC` (key=value,…) as parseRemoteCopy's fields. */
export function remoteCopyFlag(text: string): { name: string; remote: RemoteCopyConfig } {
  const o: Record<string, string> = {};
  for (const part of text.split(',')) {
    const i = part.indexOf('=');
    if (i <= 0) throw new Error(`--remote-copy: "${part}" is not key=value (want name=N,remote=HOST:PORT,target=IQN[,luns=0:1][,rate=50Mbit])`);
    o[part.slice(0, i).trim()] = part.slice(i + 1).trim();
  }
  o.name ??= 'remote';
  return parseRemoteCopy(o, (m) => new Error(`--remote-copy: ${m}`));
}

/** The YAML `admin:` section (README "Admin API"). */
export interface AdminConfig {
  /** HOST:PORT, or "none"; the `--admin` flag overrides it. */
  listen?: string;
  /** A file holding the bearer token (absolute, or resolved against the config file's folder). */
  tokenFile?: string;
}

export interface ArrayConfig {
  portals: PortalConfig[];
  targets: TargetConfig[];
  iscsi: Partial<IscsiTuning>;
  logLevel: string;
  splitters?: SplitterConfig[];
  groups?: GroupConfig[];
  admin?: AdminConfig;
  /** Peer replication (README "Peer replication"): this array's link, the peer's link, Remote Copy groups. */
  peers?: PeersConfig;
  rcopy?: RcopyConfig;
  /** Prometheus metrics (src/metrics, GET /metrics); false: none, and no latency timestamps per command. Default true. */
  metrics?: boolean;
  /**
   * A folder (absolute) where this array, as the remote array of remote copies, keeps each
   * claim's undo log on file-backed LUs (src/scsi/replica-journal.ts); absent: in memory only.
   */
  replicaJournal?: string;
}

/** Journal size limit when none is given: 256 MiB of history per group (memory journal). */
export const DEFAULT_JOURNAL_BYTES = 256 << 20;

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
export function configFromFlags(o: { listen?: string[]; target?: string; lun?: string[]; logLevel?: string; splitter?: string; remoteCopy?: string; metrics?: boolean }): ArrayConfig {
  const listen = o.listen && o.listen.length ? o.listen : [DEFAULT_LISTEN];
  const luns = (o.lun && o.lun.length ? o.lun : [DEFAULT_LUN]).map((spec) => ({ spec }));
  const c: ArrayConfig = {
    portals: portalsFrom(listen),
    targets: [{ name: o.target ?? DEFAULT_TARGET, luns }],
    iscsi: {},
    logLevel: o.logLevel ?? 'info',
    metrics: o.metrics ?? true,
  };
  if (o.splitter !== undefined) Object.assign(c, splitterFlag(o.splitter));
  if (o.remoteCopy !== undefined) {
    // The group's one copy becomes the remote one (YAML for a local and a remote copy together).
    if (!c.groups) throw new Error('--remote-copy needs --splitter (the group it is a copy of)');
    const { name, remote } = remoteCopyFlag(o.remoteCopy);
    c.groups[0].copies = [name];
    c.groups[0].remote = { [name]: remote };
  }
  return c;
}

/**
 * `serve --splitter SPEC`: every LUN of the target in one group `default` with one local copy
 * `local`, a memory journal, transfer started.
 */
export function splitterFlag(text: string): Pick<ArrayConfig, 'splitters' | 'groups'> {
  let spec: SplitterSpec;
  try { spec = parseSplitterSpec(text); } catch (e) { throw new Error(`--splitter: ${(e as Error).message}`); }
  return {
    splitters: [{ name: 'cli', spec }],
    groups: [{ name: 'default', splitter: 'cli', copies: ['local'], journalBytes: DEFAULT_JOURNAL_BYTES, startTransfer: true }],
  };
}

/**
 * YAML `splitters:`: a list of {name, spec?, ats?, xcopy?, writesame?, unmap?, kind?, xcopyReject?,
 * advertise?}; `spec` is a SPLITTER SPEC (a preset name, or key=value pairs) that the other
 * fields override. `groups:` a list of {name, splitter, target?, luns?, copies?, journal?,
 * startTransfer?}.
 */
function splitterSections(doc: any, targets: TargetConfig[], err: (m: string) => Error, baseDir = process.cwd()): Pick<ArrayConfig, 'splitters' | 'groups'> {
  const out: Pick<ArrayConfig, 'splitters' | 'groups'> = {};
  if (doc.splitters !== undefined) {
    if (!Array.isArray(doc.splitters)) throw err('splitters must be a list');
    out.splitters = doc.splitters.map((sp: any, i: number): SplitterConfig => {
      const w = `splitters[${i}]`;
      if (typeof sp?.name !== 'string' || !sp.name) throw err(`${w}.name must be a name`);
      if (sp.spec !== undefined && typeof sp.spec !== 'string') throw err(`${w}.spec must be a SPLITTER SPEC string`);
      const tokens: string[] = sp.spec ? [sp.spec] : [];
      for (const k of [...PRIMITIVES, 'kind']) {
        if (sp[k] !== undefined) tokens.push(`${k}=${String(sp[k])}`);
      }
      if (sp.xcopyReject !== undefined) tokens.push(`xcopy-reject=${String(sp.xcopyReject)}`);
      if (sp.advertise !== undefined) tokens.push(`advertise=${sp.advertise === true ? 'yes' : sp.advertise === false ? 'no' : String(sp.advertise)}`);
      const known = new Set(['name', 'spec', ...PRIMITIVES, 'kind', 'xcopyReject', 'advertise']);
      for (const k of Object.keys(sp)) if (!known.has(k)) throw err(`${w}.${k}: unknown field`);
      try {
        return { name: sp.name, spec: parseSplitterSpec(tokens.join(',') || 'ats=support') };
      } catch (e) {
        throw err(`${w}: ${(e as Error).message}`);
      }
    });
  }
  if (doc.groups !== undefined) {
    if (!Array.isArray(doc.groups)) throw err('groups must be a list');
    const names = new Set<string>();
    out.groups = doc.groups.map((g: any, i: number): GroupConfig => {
      const w = `groups[${i}]`;
      if (typeof g?.name !== 'string' || !/^[\w.:-]{1,64}$/.test(g.name)) throw err(`${w}.name must be 1-64 letters, digits, . _ : -`);
      if (names.has(g.name)) throw err(`${w}.name: group "${g.name}" is defined twice`);
      names.add(g.name);
      if (typeof g.splitter !== 'string' || !out.splitters?.some((s) => s.name === g.splitter)) {
        throw err(`${w}.splitter must name an entry of splitters: (${out.splitters?.map((s) => s.name).join(', ') || 'none defined'})`);
      }
      if (g.target !== undefined && !targets.some((t) => t.name === g.target)) throw err(`${w}.target: no target "${String(g.target)}"`);
      const t = g.target === undefined ? targets[0] : targets.find((x) => x.name === g.target)!;
      if (g.luns !== undefined) {
        if (!Array.isArray(g.luns) || !g.luns.length || g.luns.some((n: unknown) => !Number.isInteger(n) || (n as number) < 0 || (n as number) >= t.luns.length)) {
          throw err(`${w}.luns must be a non-empty list of LUN numbers of ${t.name} (0..${t.luns.length - 1})`);
        }
      }
      // copies: names (local copies), or {name, remote, target, luns?, rate?} (remote copies).
      const entries = g.copies ?? ['local'];
      if (!Array.isArray(entries) || !entries.length) throw err(`${w}.copies must be a non-empty list of copy names or remote copies`);
      const remote: Record<string, RemoteCopyConfig> = {};
      const copies = entries.map((c: unknown, k: number) => {
        if (typeof c === 'string' && c) return c;
        if (c === null || typeof c !== 'object') throw err(`${w}.copies[${k}] must be a copy name or {name, remote: HOST:PORT, target: IQN, luns?, rate?}`);
        const r = parseRemoteCopy(c as Record<string, unknown>, (m) => err(`${w}.copies[${k}].${m}`));
        const n = (g.luns ?? t.luns).length;
        if (r.remote.luns && r.remote.luns.length !== n) throw err(`${w}.copies[${k}].luns: ${r.remote.luns.length} remote LUNs for ${n} replication sets`);
        remote[r.name] = r.remote;
        return r.name;
      });
      if (new Set(copies).size !== copies.length) throw err(`${w}.copies: a copy name appears twice`);
      // journal: SIZE (memory), or {type: memory|file, size?, path?} (file: path required).
      let journalBytes = DEFAULT_JOURNAL_BYTES;
      let journalPath: string | undefined;
      const j = g.journal !== null && typeof g.journal === 'object' ? g.journal : { size: g.journal };
      if (g.journal !== null && typeof g.journal === 'object') {
        for (const k of Object.keys(j)) if (!['type', 'size', 'path'].includes(k)) throw err(`${w}.journal.${k}: unknown field (want type, size, path)`);
        if (j.type !== 'memory' && j.type !== 'file') throw err(`${w}.journal.type must be memory or file`);
        if (j.type === 'file') {
          if (typeof j.path !== 'string' || !j.path) throw err(`${w}.journal.path: a file journal needs the folder for its segments`);
          journalPath = path.resolve(baseDir, j.path);
        } else if (j.path !== undefined) throw err(`${w}.journal.path: only a file journal has a path`);
      }
      const sizeKey = g.journal !== null && typeof g.journal === 'object' ? `${w}.journal.size` : `${w}.journal`;
      if (j.size !== undefined) {
        try { journalBytes = typeof j.size === 'number' ? j.size : parseSize(String(j.size)); } catch (e) { throw err(`${sizeKey}: ${(e as Error).message}`); }
        if (!(journalBytes > 0)) throw err(`${sizeKey} must be a size > 0`);
      }
      if (g.startTransfer !== undefined && typeof g.startTransfer !== 'boolean') throw err(`${w}.startTransfer must be true or false`);
      const known = new Set(['name', 'splitter', 'target', 'luns', 'copies', 'journal', 'startTransfer']);
      for (const k of Object.keys(g)) if (!known.has(k)) throw err(`${w}.${k}: unknown field`);
      return {
        name: g.name, splitter: g.splitter, target: g.target, luns: g.luns, copies, ...(Object.keys(remote).length ? { remote } : {}),
        journalBytes, journalPath, startTransfer: g.startTransfer ?? true,
      };
    });
  }
  return out;
}

/** From a YAML file; CLI flags given alongside override the file's portals and log level. */
export function configFromFile(path: string): ArrayConfig {
  // Loaded here, synchronously: a start from flags alone never needs the YAML parser.
  const YAML = createRequire(import.meta.url)('yaml') as typeof import('yaml');
  const doc = YAML.parse(readFileSync(path, 'utf8')) ?? {};
  const err = (m: string) => new Error(`${path}: ${m}`);
  const portalsIn: unknown[] = doc.portals ?? [{ listen: DEFAULT_LISTEN }];
  if (!Array.isArray(portalsIn) || portalsIn.length === 0) throw err('portals must be a non-empty list');
  const portals = portalsIn.map((p: any, i: number) => {
    if (typeof p?.listen !== 'string') throw err(`portals[${i}].listen must be "HOST:PORT"`);
    const tpgt = p.tpgt ?? i + 1;
    return { ...parseHostPort(p.listen), tpgt, targetPortGroup: p.targetPortGroup ?? tpgt };
  });
  const aluaModeOf = (v: unknown, where: string): AluaMode | undefined => {
    if (v === undefined) return undefined;
    if (typeof v !== 'string' || !(ALUA_MODES as readonly string[]).includes(v)) throw err(`${where} must be one of ${ALUA_MODES.join(', ')}`);
    return v as AluaMode;
  };
  const aluaSection = (a: any, where: string): AluaConfig | undefined => {
    if (a === undefined || a === null) return undefined;
    if (typeof a !== 'object') throw err(`${where} must be a mapping`);
    const out: AluaConfig = { mode: aluaModeOf(a.mode, `${where}.mode`) };
    if (a.transitionMs !== undefined) {
      if (typeof a.transitionMs !== 'number' || a.transitionMs < 0 || a.transitionMs > 255_000) throw err(`${where}.transitionMs must be 0..255000`);
      out.transitionMs = a.transitionMs;
    }
    if (a.groups !== undefined) {
      if (!Array.isArray(a.groups)) throw err(`${where}.groups must be a list`);
      out.groups = a.groups.map((g: any, k: number) => {
        const gw = `${where}.groups[${k}]`;
        if (!Number.isInteger(g?.id) || g.id < 0 || g.id > 0xffff) throw err(`${gw}.id must be a target port group number 0..65535`);
        const check = (st: unknown, w: string) => {
          if (typeof st !== 'string') throw err(`${w} must be a state name`);
          try { parseAccessState(st); } catch (e) { throw err(`${w}: ${(e as Error).message}`); }
          return st;
        };
        const hosts: Record<string, string> = {};
        for (const [h, st] of Object.entries(g.hosts ?? {})) hosts[h] = check(st, `${gw}.hosts["${h}"]`);
        return { id: g.id, state: g.state === undefined ? undefined : check(g.state, `${gw}.state`), preferred: g.preferred === undefined ? undefined : !!g.preferred, hosts };
      });
    }
    return out;
  };
  const targetsIn: any[] = doc.targets ?? [{ name: DEFAULT_TARGET, luns: [DEFAULT_LUN] }];
  if (!Array.isArray(targetsIn) || targetsIn.length === 0) throw err('targets must be a non-empty list');
  const targets = targetsIn.map((t: any, i: number): TargetConfig => {
    if (typeof t?.name !== 'string' || !/^(iqn\.|eui\.|naa\.)/.test(t.name)) throw err(`targets[${i}].name must be an iSCSI name`);
    const luns = (t.luns ?? [DEFAULT_LUN]).map((l: any, j: number): LunConfig => {
      if (typeof l === 'string') return { spec: l };
      if (typeof l?.spec !== 'string') throw err(`targets[${i}].luns[${j}] needs a spec`);
      return { spec: l.spec, naa: naaOf(l.naa, `targets[${i}].luns[${j}].naa`, err), serial: l.serial, vendor: l.vendor, product: l.product, aluaMode: aluaModeOf(l.alua, `targets[${i}].luns[${j}].alua`) };
    });
    if (t.chap && (typeof t.chap.user !== 'string' || typeof t.chap.secret !== 'string')) {
      throw err(`targets[${i}].chap needs user and secret`);
    }
    const alua = mergeAlua(aluaSection(doc.alua, 'alua'), aluaSection(t.alua, `targets[${i}].alua`));
    return { name: t.name, alias: t.alias, acl: t.acl, chap: t.chap, luns, alua };
  });
  const iscsi = { ...(doc.iscsi ?? {}) };
  if (iscsi.keys) iscsi.keys = Object.fromEntries(Object.entries(iscsi.keys).map(([k, v]) => [k, typeof v === 'boolean' ? (v ? 'Yes' : 'No') : String(v)]));
  if (doc.metrics !== undefined && typeof doc.metrics !== 'boolean') throw err('metrics must be true or false');
  if (doc.replicaJournal !== undefined && (typeof doc.replicaJournal !== 'string' || !doc.replicaJournal)) throw err('replicaJournal must be a folder');
  return {
    ...(doc.replicaJournal ? { replicaJournal: resolve(dirname(path), doc.replicaJournal) } : {}),
    portals, targets, iscsi, logLevel: doc.log?.level ?? 'info', admin: adminSection(doc.admin, path, err),
    ...splitterSections(doc, targets, err, dirname(path)), metrics: doc.metrics ?? true, ...rcopySections(doc, targets[0].name, err, dirname(path)),
  };
}

function adminSection(a: any, file: string, err: (m: string) => Error): AdminConfig | undefined {
  if (a === undefined || a === null) return undefined;
  if (typeof a !== 'object' || Array.isArray(a)) throw err('admin must be a mapping');
  for (const k of Object.keys(a)) if (k !== 'listen' && k !== 'tokenFile') throw err(`admin.${k} is not a known key (want listen, tokenFile)`);
  const out: AdminConfig = {};
  if (a.listen !== undefined) {
    if (typeof a.listen !== 'string') throw err('admin.listen must be "HOST:PORT" or "none"');
    if (a.listen !== 'none') {
      try { parseHostPort(a.listen); } catch (e) { throw err(`admin.listen: ${(e as Error).message}`); }
    }
    out.listen = a.listen;
  }
  if (a.tokenFile !== undefined) {
    if (typeof a.tokenFile !== 'string' || !a.tokenFile) throw err('admin.tokenFile must be a file name');
    out.tokenFile = path.resolve(path.dirname(file), a.tokenFile);
  }
  return out;
}

/** A target's own `alua:` section over the file-wide one (groups merged by id). */
function mergeAlua(base: AluaConfig | undefined, own: AluaConfig | undefined): AluaConfig | undefined {
  if (!base) return own;
  if (!own) return base;
  const groups = new Map((base.groups ?? []).map((g) => [g.id, g]));
  for (const g of own.groups ?? []) groups.set(g.id, { ...groups.get(g.id), ...g });
  return { mode: own.mode ?? base.mode, transitionMs: own.transitionMs ?? base.transitionMs, groups: [...groups.values()] };
}

/**
 * A stable identity for a LUN: NAA IEEE Registered (type 5) designator body, 16 hex digits.
 * The OUI 0x02A751 has the locally-administered bit set: it names no real vendor.
 */
/**
 * A configured NAA, honoured as written: 16 hex digits of NAA 2, 3 or 5, or 32 of NAA 6 (SPC-5
 * §7.7.6.6). YAML reads a body of decimal digits only (5001405123456789) as a number: taken back
 * as its digits while exact, else the error asks for quotes.
 */
function naaOf(v: unknown, where: string, err: (m: string) => Error): string | undefined {
  if (v === undefined) return undefined;
  let hex = typeof v === 'string' ? v : typeof v === 'number' && Number.isSafeInteger(v) ? String(v) : null;
  if (hex === null) throw err(`${where}: write the NAA in quotes (YAML read it as the number ${String(v)})`);
  hex = hex.toLowerCase().replace(/^naa\./, '');
  if (!parseNaa(hex)) throw err(`${where}: "${String(v)}" is not an NAA designator: 16 hex digits starting 2, 3 or 5, or 32 starting 6`);
  return hex;
}

export function lunIdentity(targetName: string, lun: number, spec: string): { naa: string; serial: string } {
  const h = createHash('sha256').update(`${targetName}\0${lun}\0${spec.replace(/,.*$/, '')}`).digest('hex');
  return { naa: `502a751${h.slice(0, 9)}`, serial: `ASIM${h.slice(9, 25).toUpperCase()}` };
}
