/**
 * The metro lab's topology, as data: two arrays (site A primary, site B secondary of one Remote
 * Copy group with one replicated volume), a quorum witness, and the hosts that use them. Pure: no
 * process, socket or file here. `lab up` (src/lab/up.ts) runs the plan as processes on loopback;
 * the checker (`check metro`, src/check/cluster.ts) and the metro failure lab run it as processes
 * on addresses of their own; the docker-compose generator (src/lab/compose.ts) runs the same plan
 * as containers. All build every command line with `siteArgs`/`witnessArgs`, so they cannot drift apart.
 *
 * Modes, in the words of the HPE paper "Remote Copy Active Sync" (README "Peer replication"):
 *   metro   Active Peer Persistence: policy active_active, uniform host connectivity (every
 *           host has paths to both arrays); each host's local array is optimized.
 *   sync    Active Sync: the same policy, each host connected only to its local array
 *           (proximity `all`, so each host's only paths are optimized).
 *   classic classic Peer Persistence: no active_active; only the primary serves, the
 *           secondary's paths are standby.
 */
import type { Proximity } from '../replication/group-machine.ts';

export const TOPOLOGIES = ['metro', 'sync', 'classic'] as const;
export type Topology = typeof TOPOLOGIES[number];

export const TOPOLOGY_TITLE: Record<Topology, string> = {
  metro: 'Active Peer Persistence (active_active, uniform host connectivity)',
  sync: 'Active Sync (active_active, each host connected only to its local array)',
  classic: 'classic Peer Persistence (only the primary serves; the secondary\'s paths are standby)',
};

export interface HostPort { host: string; port: number }
export const hostPort = (a: HostPort): string => (a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`);

/** Where one array listens: its iSCSI portal, its admin API and its replication link. */
export interface SiteAddresses { portal: HostPort; admin: HostPort; link: HostPort }

export type SiteName = 'site-a' | 'site-b';

export interface SitePlan {
  name: SiteName;
  role: 'primary' | 'secondary';
  /** Target portal group tag and ALUA target port group: distinct across the pair (one device, two path groups). */
  tpgt: number;
  addresses: SiteAddresses;
}

export interface HostPlan {
  /** Short name, also the tail of its initiator IQN. */
  name: string;
  iqn: string;
  /** The site the host stands in. */
  site: SiteName;
  /** admithost -proximity, as both arrays are told. */
  proximity: Proximity;
  /** The arrays it logs in to (uniform: both; Active Sync: its own). */
  connects: SiteName[];
}

export interface LabPlan {
  topology: Topology;
  title: string;
  group: string;
  target: string;
  lun: number;
  /** NAA designator body (16 hex digits) and serial: the same on both arrays. */
  wwn: string;
  serial: string;
  size: string;
  sites: [SitePlan, SitePlan];
  /** The witness's address, or null when the pair runs without one. */
  witness: HostPort | null;
  hosts: HostPlan[];
}

export const LAB_GROUP = 'rcg1';
export const LAB_WWN = '502a7510000001ab';
export const LAB_SERIAL = 'ASIMLAB0001';
export const LAB_SIZE = '1GiB';
const HOST_IQN = 'iqn.1994-05.com.example';

export function labPlan(topology: Topology, o: { a: SiteAddresses; b: SiteAddresses; witness: HostPort | null }): LabPlan {
  const uniform = topology !== 'sync';
  // Active Sync: a host reaches only its local array, and proximity `all` makes its paths there
  // optimized (README "Peer replication"); uniform hosts are told which array is local to them.
  const host = (site: SiteName): HostPlan => {
    const name = site === 'site-a' ? 'host-a' : 'host-b';
    return {
      name, iqn: `${HOST_IQN}:${name}`, site,
      proximity: topology === 'sync' ? 'all' : site === 'site-a' ? 'primary' : 'secondary',
      connects: uniform ? ['site-a', 'site-b'] : [site],
    };
  };
  return {
    topology,
    title: TOPOLOGY_TITLE[topology],
    group: LAB_GROUP,
    target: `iqn.2026-11.dev.arraysim:lab-${topology}`,
    lun: 0,
    wwn: LAB_WWN,
    serial: LAB_SERIAL,
    size: LAB_SIZE,
    sites: [
      { name: 'site-a', role: 'primary', tpgt: 1, addresses: o.a },
      { name: 'site-b', role: 'secondary', tpgt: 2, addresses: o.b },
    ],
    witness: o.witness,
    hosts: [host('site-a'), host('site-b')],
  };
}

export function site(plan: LabPlan, name: SiteName): SitePlan {
  return plan.sites[name === 'site-a' ? 0 : 1];
}

/**
 * One array's YAML configuration (README "Configuration file", "Peer replication") as a document
 * object. `tokenFile` names the admin token file for an admin API off loopback.
 */
export function siteConfig(plan: LabPlan, name: SiteName, o: { adminTokenFile?: string } = {}): Record<string, unknown> {
  const s = site(plan, name);
  const other = site(plan, name === 'site-a' ? 'site-b' : 'site-a');
  const peers: Record<string, string> = {
    name: s.name,
    listen: hostPort(s.addresses.link),
    peer: hostPort(other.addresses.link),
  };
  if (plan.witness) peers.witness = hostPort(plan.witness);
  return {
    portals: [{ listen: hostPort(s.addresses.portal), tpgt: s.tpgt }],
    targets: [{ name: plan.target, luns: [{ spec: plan.size, naa: plan.wwn, serial: plan.serial }] }],
    admin: { listen: hostPort(s.addresses.admin), ...(o.adminTokenFile ? { tokenFile: o.adminTokenFile } : {}) },
    peers,
    rcopy: {
      groups: [{
        name: plan.group,
        role: s.role,
        volumes: [{ target: plan.target, lun: plan.lun }],
        policies: plan.topology === 'classic' ? [] : ['active_active'],
        hosts: Object.fromEntries(plan.hosts.map((h) => [h.iqn, h.proximity])),
      }],
    },
  };
}

/** The arguments after the CLI's entry point that run one array: the same for a process and a container. */
export function siteArgs(configPath: string): string[] {
  return ['serve', '--config', configPath];
}

/** The arguments after the CLI's entry point that run the witness (the agreed interface: `witness --listen HOST:PORT`, and `--state FILE` to keep owners and epochs across its restarts). */
export function witnessArgs(listen: HostPort, stateFile?: string): string[] {
  return ['witness', '--listen', hostPort(listen), ...(stateFile ? ['--state', stateFile] : [])];
}

/** The line the witness prints on stdout once it listens (agreed interface). */
export const WITNESS_READY = /^witness listening on (\S+)/m;

/** Lab up's loopback addresses: one 127.x.y.z per array and one for the witness, ports from one base. */
export function loopbackAddresses(o: { siteA: string; siteB: string; witness: string; port: number }): { a: SiteAddresses; b: SiteAddresses; witness: HostPort } {
  // The example pair's ports: portal P, admin API P+1000 (the CLI's default), link P+2000; witness 5300 (its default) moved with P.
  const at = (host: string): SiteAddresses => ({
    portal: { host, port: o.port }, admin: { host, port: o.port + 1000 }, link: { host, port: o.port + 2000 },
  });
  return { a: at(o.siteA), b: at(o.siteB), witness: { host: o.witness, port: 5300 + (o.port - 3260) } };
}
