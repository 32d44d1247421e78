/**
 * The YAML `peers:` and `rcopy:` sections (README "Configuration file" and "Peer replication"):
 *
 *   peers:
 *     name: site-a                 # this array on the link
 *     listen: 127.0.1.1:5260       # link listener (the secondary of a group needs one)
 *     peer: 127.0.2.1:5260         # the other array's link listener (the primary dials it)
 *     witness: 127.0.3.1:5300      # the quorum witness (optional): automatic failover, Failsafe
 *     dataIntegrity: auto          # auto | crc32c | none: write data in the link CRC (link-session.ts checksData)
 *   rcopy:
 *     groups:
 *       - name: rcg1
 *         role: primary            # primary | secondary
 *         volumes: [{target: iqn…, lun: 0}]
 *         policies: [active_active]          # or {auto_recover: false, …}
 *         hosts: {iqn.1994-05.com.example:h1: all}   # admithost -proximity
 */
import path from 'node:path';
import { parseHostPort } from '../config.ts';
import { PROXIMITIES } from './group-machine.ts';
import type { GroupPolicies, Proximity } from './group-machine.ts';
import { DATA_INTEGRITY } from './engine.ts';
import type { PeersConfig, RcopyConfig, RcopyGroupConfig } from './engine.ts';

const POLICIES: readonly (keyof GroupPolicies)[] = ['active_active', 'path_management', 'auto_failover', 'auto_recover', 'auto_synchronize'];

export function rcopySections(doc: any, defaultTarget: string, err: (m: string) => Error, baseDir = '.'): { peers?: PeersConfig; rcopy?: RcopyConfig } {
  const p = doc.peers;
  const r = doc.rcopy;
  if (p === undefined && r === undefined) return {};
  if (typeof p !== 'object' || p === null || Array.isArray(p)) throw err('peers must be a mapping (name, listen, peer) when rcopy is configured');
  for (const k of Object.keys(p)) if (!['name', 'listen', 'peer', 'witness', 'dataIntegrity', 'state'].includes(k)) throw err(`peers.${k} is not a known key (want name, listen, peer, witness, dataIntegrity, state)`);
  if (p.state !== undefined && (typeof p.state !== 'string' || !p.state)) throw err('peers.state must be a file path (where the groups the rcopy verbs make are kept)');
  if (p.dataIntegrity !== undefined && !DATA_INTEGRITY.includes(p.dataIntegrity)) throw err(`peers.dataIntegrity must be one of ${DATA_INTEGRITY.join(', ')}`);
  if (typeof p.name !== 'string' || !p.name) throw err('peers.name must name this array');
  const addr = (v: unknown, w: string) => {
    if (v === undefined) return undefined;
    if (typeof v !== 'string') throw err(`${w} must be "HOST:PORT"`);
    try { return parseHostPort(v); } catch (e) { throw err(`${w}: ${(e as Error).message}`); }
  };
  const peers: PeersConfig = { name: p.name, listen: addr(p.listen, 'peers.listen'), peer: addr(p.peer, 'peers.peer'), witness: addr(p.witness, 'peers.witness'), dataIntegrity: p.dataIntegrity,
    ...(p.state ? { state: path.resolve(baseDir, p.state) } : {}) };
  if (peers.witness && !/:\d+$/.test(p.witness)) throw err('peers.witness must be "HOST:PORT" (the witness listens on 5300 by default)');
  // peers: alone is an array ready for `rcopy creategroup` (runtime-groups.ts): no group yet.
  if (r === undefined) return { peers, rcopy: { groups: [] } };
  if (typeof r !== 'object' || r === null || !Array.isArray(r.groups)) throw err('rcopy.groups must be a list');
  const groups = r.groups.map((g: any, i: number): RcopyGroupConfig => {
    const w = `rcopy.groups[${i}]`;
    if (typeof g?.name !== 'string' || !g.name) throw err(`${w}.name must be a group name`);
    if (g.role !== 'primary' && g.role !== 'secondary') throw err(`${w}.role must be primary or secondary`);
    if (g.role === 'primary' && !peers.peer) throw err(`${w}: a primary group needs peers.peer (the link address it dials)`);
    if (g.role === 'secondary' && !peers.listen) throw err(`${w}: a secondary group needs peers.listen`);
    if (!Array.isArray(g.volumes) || g.volumes.length === 0) throw err(`${w}.volumes must be a non-empty list`);
    const volumes = g.volumes.map((v: any, j: number) => {
      const lun = typeof v === 'number' ? v : v?.lun;
      if (!Number.isInteger(lun) || lun < 0) throw err(`${w}.volumes[${j}].lun must be a LUN number`);
      return { target: typeof v === 'object' && typeof v.target === 'string' ? v.target : defaultTarget, lun };
    });
    const policies: Partial<GroupPolicies> = {};
    if (Array.isArray(g.policies)) {
      for (const name of g.policies) {
        const off = typeof name === 'string' && name.startsWith('no_');
        const key = (off ? name.slice(3) : name) as keyof GroupPolicies;
        if (!POLICIES.includes(key)) throw err(`${w}.policies: ${name} is not a policy (${POLICIES.join(', ')}, each with a no_ form)`);
        policies[key] = !off;
      }
    } else if (g.policies !== undefined) {
      if (typeof g.policies !== 'object' || g.policies === null) throw err(`${w}.policies must be a list or a mapping`);
      for (const [k, v] of Object.entries(g.policies)) {
        if (!POLICIES.includes(k as keyof GroupPolicies)) throw err(`${w}.policies.${k} is not a policy`);
        if (typeof v !== 'boolean') throw err(`${w}.policies.${k} must be true or false`);
        policies[k as keyof GroupPolicies] = v;
      }
    }
    if (policies.active_active && (policies.auto_failover === false || policies.path_management === false)) {
      throw err(`${w}.policies: auto_failover and path_management cannot be turned off in an active_active group`);
    }
    const hosts: Record<string, Proximity> = {};
    for (const [h, v] of Object.entries(g.hosts ?? {})) {
      if (!PROXIMITIES.includes(v as Proximity)) throw err(`${w}.hosts["${h}"] must be one of ${PROXIMITIES.join(', ')}`);
      hosts[h] = v as Proximity;
    }
    if (g.start !== undefined && typeof g.start !== 'boolean') throw err(`${w}.start must be true or false`);
    return { name: g.name, role: g.role, volumes, policies, hosts, start: g.start };
  });
  return { peers, rcopy: { groups } };
}
