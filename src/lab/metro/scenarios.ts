/**
 * The metro failure lab's scenarios, as data: the fault, how it heals, and what the HPE paper
 * ("Remote Copy Active Sync", shared/seeds/hpe-remote-copy-active-sync.md, section "Active Peer
 * Persistence failure scenarios and recovery") says each host sees. Topology: `lab up`'s metro
 * (Active Peer Persistence, uniform host connectivity): host-a stands at site A (the primary),
 * host-b at site B (the secondary), each with a path to both arrays. The Active Sync set
 * (`metro-sync/...`, each host cabled to its local array only) is in active-sync.ts.
 *
 * Path expectations are sets of ALUA states (as libiscsi's tests accept a set of ASCQs): where
 * the paper names a state ("unavailable", "active non-optimized") the set is that state; where it
 * says only that hosts use the paths to an array, the set is both active states. `down` is a path
 * whose array is gone (no session); `none` is no path at all (Active Sync: the host is not cabled
 * to that array).
 */
import type { PathState } from '../../initiator/multipath.ts';
import { ACTIVE_SYNC_NEGATIVE_CONTROL, ACTIVE_SYNC_SCENARIOS } from './active-sync.ts';

export type ArrayName = 'A' | 'B';
export type HostName = 'host-a' | 'host-b';
/** A path's state as the lab records it: the multipath device's, or `none` when the host has no path to that array (not cabled). */
export type LabPathState = PathState | 'none';
/** lab up's topology the scenario runs on (src/lab/topology.ts): metro = Active Peer Persistence, sync = Active Sync. */
export type MetroTopology = 'metro' | 'sync';

/** What is done to the pair. */
export type MetroFault =
  | { kind: 'link-cut' }
  | { kind: 'kill-array'; array: ArrayName }
  /** A clean shutdown (SIGTERM), then a start: the paper's reboot/shutdown. */
  | { kind: 'reboot-array'; array: ArrayName }
  | { kind: 'witness-kill' }
  /** The array and the host of one site fail together (SIGKILL the array, the host drops). */
  | { kind: 'data-center'; array: ArrayName }
  /** The array's RAID set or metadata fails: every I/O to the volume's store fails (POST /v1/stores/fault); healed by a repair. */
  | { kind: 'store-fail'; array: ArrayName; sense: 'medium-error' | 'hardware-error' }
  /** A host loses its path to an array (multipath fails it: MultipathDevice.failPath); healed by reinstating it. */
  | { kind: 'host-disconnect'; host: HostName; array: ArrayName }
  /** A cluster server fails alone (its sessions drop, its I/O stops); the arrays are untouched. Healed by the host logging in again. */
  | { kind: 'host-crash'; host: HostName };

/** Per path (named by its array), the states that satisfy the paper. */
export type PathExpect = Record<ArrayName, readonly LabPathState[]>;

export interface HostExpect {
  before: PathExpect;
  /** With several faults: the paths once every fault but the last has settled (checked before the last is injected). */
  midway?: PathExpect;
  during: PathExpect;
  after: PathExpect;
  /** The host's writes keep being acknowledged through the fault (no write fails). */
  keepsIo: boolean;
}

export interface MetroScenario {
  name: string;
  title: string;
  /** Absent: metro (Active Peer Persistence, uniform hosts). */
  topology?: MetroTopology;
  /** Run the pair with a quorum witness. */
  witness: boolean;
  /** Faults in order (e.g. the witness first, then the link). */
  faults: MetroFault[];
  expect: Record<HostName, HostExpect>;
  /** The paper's sentence the row tests (quoted briefly, or in our words when long). */
  paper: string;
  source: string;
  /** Negative control only: once healed, one block of this array's volume file is overwritten behind its back (the comparison must catch it). */
  strayWriteAfterHeal?: ArrayName;
}

const AO: PathState = 'active/optimized';
const ANO: PathState = 'active/non-optimized';
const ACTIVE: readonly PathState[] = [AO, ANO];
const SRC = 'hpe-remote-copy-active-sync.md, "Active Peer Persistence failure scenarios and recovery"';

/** Healthy pair, uniform hosts: each host's local array optimized, the remote one non-optimized. */
const HEALTHY: Record<HostName, PathExpect> = {
  'host-a': { A: [AO], B: [ANO] },
  'host-b': { A: [ANO], B: [AO] },
};

export const METRO_SCENARIOS: readonly MetroScenario[] = [
  {
    name: 'metro/link-failure',
    title: 'every replication link fails (witness up)',
    witness: true,
    faults: [{ kind: 'link-cut' }],
    expect: {
      'host-a': { before: HEALTHY['host-a'], during: { A: [AO], B: ['unavailable'] }, after: HEALTHY['host-a'], keepsIo: true },
      'host-b': { before: HEALTHY['host-b'], during: { A: [ANO], B: ['unavailable'] }, after: HEALTHY['host-b'], keepsIo: true },
    },
    paper: 'paths to the secondary "transition to ALUA \'unavailable\'"; the host "starts to use its ALUA active non-optimized path to the primary array" and continues uninterrupted; RPO=0, RTO=0',
    source: `${SRC}, "Replication link failure"`,
  },
  {
    name: 'metro/primary-failure-witness',
    title: 'the primary array fails (SIGKILL), witness up',
    witness: true,
    faults: [{ kind: 'kill-array', array: 'A' }],
    expect: {
      'host-a': { before: HEALTHY['host-a'], during: { A: ['down'], B: ACTIVE }, after: { A: ACTIVE, B: ACTIVE }, keepsIo: true },
      'host-b': { before: HEALTHY['host-b'], during: { A: ['down'], B: ACTIVE }, after: { A: ACTIVE, B: ACTIVE }, keepsIo: true },
    },
    paper: 'the RC groups fail over automatically and transparently to the secondary; host I/O continues "using the ESXi server\'s paths to the secondary array"; RPO=0, RTO=0',
    source: `${SRC}, "Primary array failure"`,
  },
  {
    name: 'metro/primary-failure-no-witness',
    title: 'the primary array fails (SIGKILL), no witness',
    witness: false,
    faults: [{ kind: 'kill-array', array: 'A' }],
    expect: {
      'host-a': { before: HEALTHY['host-a'], during: { A: ['down'], B: ['unavailable', 'standby'] }, after: HEALTHY['host-a'], keepsIo: false },
      'host-b': { before: HEALTHY['host-b'], during: { A: ['down'], B: ['unavailable', 'standby'] }, after: HEALTHY['host-b'], keepsIo: false },
    },
    paper: 'without a quorum witness "the secondary array will not perform an automatic failover"; all servers "lose access to their storage" (until the primary is back)',
    source: 'hpe-remote-copy-active-sync.md, best practices: "Set up and configure a quorum witness"',
  },
  {
    name: 'metro/secondary-failure',
    title: 'the secondary array fails (SIGKILL), witness up',
    witness: true,
    faults: [{ kind: 'kill-array', array: 'B' }],
    expect: {
      'host-a': { before: HEALTHY['host-a'], during: { A: [AO], B: ['down'] }, after: HEALTHY['host-a'], keepsIo: true },
      'host-b': { before: HEALTHY['host-b'], during: { A: [ANO], B: ['down'] }, after: HEALTHY['host-b'], keepsIo: true },
    },
    paper: 'paths to the secondary are lost and multipathing "starts to use the ALUA \'active non-optimized\' paths to the primary array"; I/O continues; RPO=0, RTO=0',
    source: `${SRC}, "Secondary array failure"`,
  },
  {
    name: 'metro/primary-reboot',
    title: 'the primary array shuts down cleanly (SIGTERM) and comes back, witness up',
    witness: true,
    faults: [{ kind: 'reboot-array', array: 'A' }],
    expect: {
      'host-a': { before: HEALTHY['host-a'], during: { A: ['down'], B: ACTIVE }, after: { A: ACTIVE, B: ACTIVE }, keepsIo: true },
      'host-b': { before: HEALTHY['host-b'], during: { A: ['down'], B: ACTIVE }, after: { A: ACTIVE, B: ACTIVE }, keepsIo: true },
    },
    paper: 'on a primary reboot or shutdown the secondary "automatically and transparently fails over all primary RC groups"; host I/O continues; RPO=0, RTO=0',
    source: 'hpe-remote-copy-active-sync.md, "Primary array reboot/shutdown" (Active Peer Persistence wording)',
  },
  {
    name: 'metro/secondary-reboot',
    title: 'the secondary array shuts down cleanly (SIGTERM) and comes back, witness up',
    witness: true,
    faults: [{ kind: 'reboot-array', array: 'B' }],
    expect: {
      'host-a': { before: HEALTHY['host-a'], during: { A: [AO], B: ['down'] }, after: HEALTHY['host-a'], keepsIo: true },
      'host-b': { before: HEALTHY['host-b'], during: { A: [ANO], B: ['down'] }, after: HEALTHY['host-b'], keepsIo: true },
    },
    // The Active Peer Persistence list has no secondary reboot item; the Active Sync list does,
    // and the paper says of that list that with Active Peer Persistence every failure not touching
    // the servers "would have been recovered from transparently". So: as a secondary failure.
    paper: 'not in the Active Peer Persistence list; of the Active Sync list ("Secondary array reboot/shutdown" included) the paper says that with Active Peer Persistence these failures "would have been recovered from transparently with no application outage": hosts use the ANO paths to the primary, as for a secondary failure; RPO=0, RTO=0',
    source: 'hpe-remote-copy-active-sync.md, "Active Sync failure scenarios and recovery", "Secondary array reboot/shutdown" and the paragraph after the list',
  },
  {
    name: 'metro/witness-lost-before-link-failure',
    title: 'the witness fails (SIGKILL), then every replication link fails',
    witness: true,
    faults: [{ kind: 'witness-kill' }, { kind: 'link-cut' }],
    expect: {
      // Neither array can reach the witness when the link goes: the primary gets no record and no
      // lease to write alone, the secondary no grant; both stop serving (Failsafe) until healed.
      // Midway (the witness gone, the link up) the pair replicates as before: no path changes.
      'host-a': { before: HEALTHY['host-a'], midway: HEALTHY['host-a'], during: { A: ['unavailable'], B: ['unavailable'] }, after: HEALTHY['host-a'], keepsIo: false },
      'host-b': { before: HEALTHY['host-b'], midway: HEALTHY['host-b'], during: { A: ['unavailable'], B: ['unavailable'] }, after: HEALTHY['host-b'], keepsIo: false },
    },
    paper: 'the Active Peer Persistence list is silent on a lost witness. Taken from the arbiter\'s rules: while the link is up the witness is not needed (midway: no path changes); with the witness gone the primary cannot have its status recorded nor hold a lease, so it may not write alone (an unreachable witness might be granting the secondary a failover), and the secondary gets no grant: both go Failsafe, every path unavailable, both hosts lose I/O until the link or the witness returns; RPO=0. HPE\'s own note: an isolated primary (RC links and witness both down) goes failsafe',
    source: 'src/replication/witness-arbiter.ts, group-machine.ts (mayWriteAlone), group-roles.ts (failsafeCheck); replication-anchors.md §4 "Failsafe" (techhub RCrecovery)',
  },
  {
    name: 'metro/witness-lost-after-link-failure',
    title: 'every replication link fails, then the witness fails (SIGKILL)',
    witness: true,
    faults: [{ kind: 'link-cut' }, { kind: 'witness-kill' }],
    expect: {
      // The link failure alone is metro/link-failure (the primary serves alone under a witness
      // lease); the witness loss ends the lease within leaseMs and the primary goes Failsafe too.
      'host-a': { before: HEALTHY['host-a'], midway: { A: [AO], B: ['unavailable'] }, during: { A: ['unavailable'], B: ['unavailable'] }, after: HEALTHY['host-a'], keepsIo: false },
      'host-b': { before: HEALTHY['host-b'], midway: { A: [ANO], B: ['unavailable'] }, during: { A: ['unavailable'], B: ['unavailable'] }, after: HEALTHY['host-b'], keepsIo: false },
    },
    paper: 'the Active Peer Persistence list is silent on a lost witness. Taken from the arbiter\'s rules: after the link failure the primary writes alone on a witness lease (as in "Replication link failure"); once the witness is gone no verdict renews it, so within the lease (1 s) the primary stops and goes Failsafe. The secondary is never granted a failover (the primary\'s last report says link down, not Synced: "it may have written alone"). Every path unavailable, both hosts lose I/O until healed; RPO=0. HPE: an isolated primary goes failsafe',
    source: 'src/replication/witness-arbiter.ts (denial), group-machine.ts (mayWriteAlone: lease); replication-anchors.md §4 "Failsafe" (techhub RCrecovery)',
  },
  {
    name: 'metro/raid-failure',
    title: 'the primary array\'s RAID set fails (its store answers MEDIUM ERROR to every I/O), witness up',
    witness: true,
    faults: [{ kind: 'store-fail', array: 'A', sense: 'medium-error' }],
    expect: {
      // A stays up with its paths unavailable (not down); the group fails over to B as for a
      // primary array failure, and after the repair A is resynchronised as B's secondary.
      'host-a': { before: HEALTHY['host-a'], during: { A: ['unavailable'], B: ACTIVE }, after: { A: ACTIVE, B: ACTIVE }, keepsIo: true },
      'host-b': { before: HEALTHY['host-b'], during: { A: ['unavailable'], B: ACTIVE }, after: { A: ACTIVE, B: ACTIVE }, keepsIo: true },
    },
    paper: 'the paths to an array that suffers a RAID set or metadata failure "will transition to ALUA \'unavailable\'"; on the primary "an Automatic Transparent Failover to the secondary array occurs"; servers use their paths to the healthy array; RPO=0, RTO=0',
    source: `${SRC}, "RAID set failure or metadata failure"`,
  },
  {
    name: 'metro/host-disconnect',
    title: 'host-a loses its active/optimized path (to array A), witness up',
    witness: true,
    faults: [{ kind: 'host-disconnect', host: 'host-a', array: 'A' }],
    expect: {
      // Nothing changes on the arrays: host-a writes through B (non-optimized), which forwards to A.
      'host-a': { before: HEALTHY['host-a'], during: { A: ['down'], B: [ANO] }, after: HEALTHY['host-a'], keepsIo: true },
      'host-b': { before: HEALTHY['host-b'], during: HEALTHY['host-b'], after: HEALTHY['host-b'], keepsIo: true },
    },
    paper: 'host disconnect (the host loses all its active optimized paths to an array): "The servers use their active non-optimized paths to the other array" and processing continues uninterrupted; RPO=0, RTO=0',
    source: `${SRC}, "Host disconnect"`,
  },
  {
    name: 'metro/cluster-server-failure',
    title: 'host-a fails (its sessions drop, its I/O stops); the arrays are untouched, witness up',
    witness: true,
    faults: [{ kind: 'host-crash', host: 'host-a' }],
    expect: {
      'host-a': { before: HEALTHY['host-a'], during: { A: ['down'], B: ['down'] }, after: HEALTHY['host-a'], keepsIo: false },
      'host-b': { before: HEALTHY['host-b'], during: HEALTHY['host-b'], after: HEALTHY['host-b'], keepsIo: true },
    },
    paper: 'if a server fails, its VMs and applications fail too and are restarted by the cluster on other servers: "RPO=0, but RTO <> 0 for the failed VMs"; the arrays and the other servers are not affected',
    source: `${SRC}, "Cluster server failure"`,
  },
  {
    name: 'metro/data-center-failure',
    title: 'site A fails: its array (the primary) and host-a with it, witness up',
    witness: true,
    faults: [{ kind: 'data-center', array: 'A' }],
    expect: {
      // host-a is down during the fault: no paths at all; it comes back when site A does.
      'host-a': { before: HEALTHY['host-a'], during: { A: ['down'], B: ['down'] }, after: { A: ACTIVE, B: ACTIVE }, keepsIo: false },
      'host-b': { before: HEALTHY['host-b'], during: { A: ['down'], B: ACTIVE }, after: { A: ACTIVE, B: ACTIVE }, keepsIo: true },
    },
    paper: 'the array and "all ESXi clustered servers in that data center also fail"; the RC groups fail over automatically, the failed servers\' VMs are restarted by the cluster; "RPO=0 but RTO <> 0" for them',
    source: `${SRC}, "Data center failure"`,
  },
];

/**
 * The negative control: metro/link-failure with a deliberately wrong expectation (the secondary
 * keeps serving host-b optimized while the link is down: the split brain the paper's ALUA change
 * exists to prevent). `lab run metro/negative-control` must NOT match, and must say what differed.
 */
export const NEGATIVE_CONTROL: MetroScenario = {
  ...METRO_SCENARIOS[0],
  name: 'metro/negative-control',
  title: 'link failure judged against a wrong expectation (must not match)',
  expect: {
    ...METRO_SCENARIOS[0].expect,
    'host-b': { ...METRO_SCENARIOS[0].expect['host-b'], during: { A: [ANO], B: [AO] } },
  },
  paper: 'deliberately wrong: "the secondary keeps serving its local host during a link failure"',
  source: 'negative control (contradicts the "Replication link failure" row)',
};

/**
 * The comparison's negative control: metro/link-failure, right in every expectation, but once
 * healed one block of B's volume is changed behind the array's back (as a write that bypassed
 * replication would). It must NOT match: the byte-for-byte comparison names the block.
 */
export const NEGATIVE_CONTROL_DIVERGENCE: MetroScenario = {
  ...METRO_SCENARIOS[0],
  name: 'metro/negative-control-divergence',
  title: 'link failure, then one block of B changed behind its back (must not match)',
  strayWriteAfterHeal: 'B',
  paper: 'deliberately broken: the arrays differ in one block once healed; synchronous replication promises identical copies',
  source: 'negative control of the byte-for-byte comparison of the two arrays',
};

export const NEGATIVE_CONTROLS: readonly MetroScenario[] = [NEGATIVE_CONTROL, NEGATIVE_CONTROL_DIVERGENCE];

export { ACTIVE_SYNC_NEGATIVE_CONTROL, ACTIVE_SYNC_SCENARIOS };

/** Every scenario `lab list` names, in its order: Active Peer Persistence, its controls, Active Sync, its control. */
export function allMetroScenarios(): readonly MetroScenario[] {
  return [...METRO_SCENARIOS, ...NEGATIVE_CONTROLS, ...ACTIVE_SYNC_SCENARIOS, ACTIVE_SYNC_NEGATIVE_CONTROL];
}

/** The lab's metro scenarios are named metro/... (Active Peer Persistence) and metro-sync/... (Active Sync). */
export const isMetroName = (n: string): boolean => n.startsWith('metro/') || n.startsWith('metro-sync/');

export function findMetroScenario(name: string): MetroScenario | undefined {
  return allMetroScenarios().find((s) => s.name === name);
}
