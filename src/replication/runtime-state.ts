/**
 * The Remote Copy groups the verbs made (runtime-groups.ts: creategroup, admitvv, setgroup pol,
 * admithost, startgroup and stopgroup on them, dismissvv, removegroup), kept in one small JSON file
 * per array (`peers.state`), so that a restarted array has them again, as HPE arrays keep theirs.
 * Without it, an array restarted after `rcopy creategroup` served the group's volumes as plain LUs:
 * a primary's volume with the group's WWN and no replication, while the other array, seeing it
 * lost, could take the group over: two arrays writing one device.
 *
 * The file names each group's volumes (target, LUN, and for a secondary volume the WWN and serial
 * it presents, the primary's), its role when it was made, its policies, hosts and whether it was
 * started. What changes while it runs (role after a failover, epoch, dirty map) is in the group's
 * metadata file beside its first file volume (group-meta.ts), as for a group of the configuration.
 *
 * Replaced durably after each change, before the verb answers (store/durable.ts): a crash leaves
 * the old file or the new one. An unreadable file stops the array from starting, with the reason:
 * serving without the groups it names is what this file exists to prevent.
 */
import { readFileSync } from 'node:fs';
import { writeDurably } from '../store/durable.ts';
import { PROXIMITIES } from './group-types.ts';
import { POLICY_NAMES } from './runtime-groups.ts';
import type { GroupPolicies, Proximity, Role } from './group-types.ts';

const FORMAT = 'arraysim-rcopy-groups';
const VERSION = 1;

/** A volume as saved: the identity it presents when that is not its own (a secondary volume's). */
export interface SavedVolume { target: string; lun: number; naa?: string; serial?: string }

export interface SavedGroup {
  name: string;
  /** The role the group was made with (the metadata file has the current one). */
  role: Role;
  start: boolean;
  policies: Partial<GroupPolicies>;
  hosts: Record<string, Proximity>;
  volumes: SavedVolume[];
}

export function encodeRuntimeState(array: string, groups: readonly SavedGroup[]): string {
  return `${JSON.stringify({ format: FORMAT, version: VERSION, array, groups }, null, 2)}\n`;
}

/** Check a decoded file field by field; the error names the field. */
export function decodeRuntimeState(text: string, array: string): SavedGroup[] {
  let doc: unknown;
  try { doc = JSON.parse(text); } catch (e) { throw new Error(`not JSON (${(e as Error).message})`); }
  const o = doc as Record<string, unknown>;
  if (typeof o !== 'object' || o === null || o.format !== FORMAT) throw new Error(`format is not ${FORMAT}`);
  if (o.version !== VERSION) throw new Error(`version ${String(o.version)} (this arraysim reads ${VERSION})`);
  if (o.array !== array) throw new Error(`it belongs to array ${JSON.stringify(o.array)}, and this one is ${array} (peers.name)`);
  if (!Array.isArray(o.groups)) throw new Error('groups must be a list');
  const names = new Set<string>();
  return o.groups.map((g: Record<string, unknown>, i: number): SavedGroup => {
    const w = `groups[${i}]`;
    if (typeof g !== 'object' || g === null) throw new Error(`${w} must be an object`);
    if (typeof g.name !== 'string' || !g.name) throw new Error(`${w}.name must be a group name`);
    if (names.has(g.name)) throw new Error(`${w}: group ${g.name} twice`);
    names.add(g.name);
    if (g.role !== 'primary' && g.role !== 'secondary') throw new Error(`${w}.role must be primary or secondary`);
    if (typeof g.start !== 'boolean') throw new Error(`${w}.start must be true or false`);
    const policies = g.policies as Record<string, unknown>;
    if (typeof policies !== 'object' || policies === null) throw new Error(`${w}.policies must be an object`);
    for (const [k, v] of Object.entries(policies)) {
      if (!POLICY_NAMES.includes(k as keyof GroupPolicies) || typeof v !== 'boolean') throw new Error(`${w}.policies.${k} is not a policy set to true or false`);
    }
    const hosts = g.hosts as Record<string, unknown>;
    if (typeof hosts !== 'object' || hosts === null) throw new Error(`${w}.hosts must be an object`);
    for (const [h, p] of Object.entries(hosts)) if (!PROXIMITIES.includes(p as Proximity)) throw new Error(`${w}.hosts.${h} must be one of ${PROXIMITIES.join(', ')}`);
    if (!Array.isArray(g.volumes)) throw new Error(`${w}.volumes must be a list`);
    const volumes = g.volumes.map((v: Record<string, unknown>, j: number): SavedVolume => {
      const vw = `${w}.volumes[${j}]`;
      if (typeof v !== 'object' || v === null || typeof v.target !== 'string' || !Number.isInteger(v.lun) || (v.lun as number) < 0) throw new Error(`${vw} must have a target and a LUN number`);
      if ((v.naa === undefined) !== (v.serial === undefined)) throw new Error(`${vw}: naa and serial go together`);
      if (v.naa !== undefined && (typeof v.naa !== 'string' || !/^[0-9a-f]{16}([0-9a-f]{16})?$/i.test(v.naa))) throw new Error(`${vw}.naa must be 16 or 32 hex digits`);
      if (v.serial !== undefined && typeof v.serial !== 'string') throw new Error(`${vw}.serial must be a string`);
      return { target: v.target, lun: v.lun as number, ...(v.naa !== undefined ? { naa: v.naa as string, serial: v.serial as string } : {}) };
    });
    return { name: g.name, role: g.role, start: g.start, policies: policies as Partial<GroupPolicies>, hosts: hosts as Record<string, Proximity>, volumes };
  });
}

/** The groups saved in `file` (none if it does not exist yet); throws, naming the file and the reason, if it cannot be trusted. */
export function readRuntimeState(file: string, array: string): SavedGroup[] {
  let text: string;
  try { text = readFileSync(file, 'utf8'); } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new Error(`peers.state ${file}: ${(e as Error).message}`);
  }
  try { return decodeRuntimeState(text, array); } catch (e) {
    throw new Error(`peers.state ${file} cannot be trusted: ${(e as Error).message}. It names the Remote Copy groups made by the rcopy verbs; mend it, or move it away to start without them`);
  }
}

/** The file, replaced one write at a time; a save asked during one is written after it, with what is current then. */
export class RuntimeStateFile {
  private writing: Promise<void> = Promise.resolve();
  saves = 0;
  lastError: string | null = null;

  constructor(readonly file: string, readonly array: string) {}

  save(current: () => readonly SavedGroup[]): Promise<void> {
    const p = this.writing.catch(() => {}).then(async () => {
      try {
        await writeDurably(this.file, encodeRuntimeState(this.array, current()));
        this.saves++;
        this.lastError = null;
      } catch (e) {
        this.lastError = (e as Error).message;
        throw e;
      }
    });
    this.writing = p;
    return p;
  }
}
