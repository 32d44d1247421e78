/**
 * The metro failure lab's Active Sync set (`metro-sync/...`): the same failures as the Active
 * Peer Persistence set (scenarios.ts), on `lab up`'s sync topology: non-uniform host
 * connectivity, each host cabled only to the array in its own data center (host-a to A, the
 * primary; host-b to B), proximity `all` so each host's only path is active/optimized. Every
 * expectation is from the HPE paper's Active Sync list ("Active Sync failure scenarios and
 * recovery", shared/seeds/hpe-remote-copy-active-sync.md); where the paper is silent the
 * scenario says so and expects what the arrays guarantee (as the Active Peer Persistence set does).
 *
 * The paper's rule for the whole list: hosts lose their data "for any situation that prevents the
 * local array from being able to access data"; the VMs on them "must be restarted by the vMSC
 * cluster" on the other site, so "the recovery time objective (RTO) is not zero" for them while
 * the RPO stays zero. The lab has no cluster to restart VMs: a host that loses I/O keeps trying
 * until its array is healed, and its measured RTO is that outage.
 */
import type { HostExpect, HostName, MetroScenario, PathExpect } from './scenarios.ts';

// Local constants, not scenarios.ts's: scenarios.ts imports this file (types only go the other way).
const AO = 'active/optimized' as const;
const SRC = 'hpe-remote-copy-active-sync.md, "Active Sync failure scenarios and recovery"';

/** Healthy pair, non-uniform hosts with proximity `all`: each host's one path, to its local array, optimized. */
const HEALTHY: Record<HostName, PathExpect> = {
  'host-a': { A: [AO], B: ['none'] },
  'host-b': { A: ['none'], B: [AO] },
};

/** A host whose paths stay as they were and whose I/O goes on through the fault. */
const untouched = (h: HostName): HostExpect => ({ before: HEALTHY[h], during: HEALTHY[h], after: HEALTHY[h], keepsIo: true });

/** A host whose only path is in `state` during the fault, and loses I/O; healthy again once healed. */
const cutOff = (h: HostName, state: PathExpect['A']): HostExpect => ({
  before: HEALTHY[h], during: h === 'host-a' ? { A: state, B: ['none'] } : { A: ['none'], B: state }, after: HEALTHY[h], keepsIo: false,
});

const scenario = (s: Omit<MetroScenario, 'topology'>): MetroScenario => ({ ...s, topology: 'sync' });

export const ACTIVE_SYNC_SCENARIOS: readonly MetroScenario[] = [
  scenario({
    name: 'metro-sync/link-failure',
    title: 'Active Sync: every replication link fails (witness up)',
    witness: true,
    faults: [{ kind: 'link-cut' }],
    expect: { 'host-a': untouched('host-a'), 'host-b': cutOff('host-b', ['unavailable']) },
    paper: 'the ALUA paths to the secondary "transition from ALUA \'active optimized\' to ALUA \'unavailable.\'" The VMs on the servers connected to the secondary array fail (not failed over automatically: "a manual process"); the servers on the primary go on',
    source: `${SRC}, "Replication link failure"`,
  }),
  scenario({
    name: 'metro-sync/primary-failure-witness',
    title: 'Active Sync: the primary array fails (SIGKILL), witness up',
    witness: true,
    faults: [{ kind: 'kill-array', array: 'A' }],
    expect: { 'host-a': cutOff('host-a', ['down']), 'host-b': untouched('host-b') },
    paper: 'with auto_failover and "an operating quorum witness" the secondary becomes primary; the servers connected to the secondary "have no interruption to their storage"; the VMs on the servers connected to the failed primary "are failed over to the secondary site by the vMSC cluster and are restarted — with a resulting impact on application RTO"',
    source: `${SRC}, "Primary array failure"`,
  }),
  scenario({
    name: 'metro-sync/primary-failure-no-witness',
    title: 'Active Sync: the primary array fails (SIGKILL), no witness',
    witness: false,
    faults: [{ kind: 'kill-array', array: 'A' }],
    expect: { 'host-a': cutOff('host-a', ['down']), 'host-b': cutOff('host-b', ['unavailable', 'standby']) },
    paper: '"Without a quorum witness in the configuration, if the primary array fails, the secondary array will not perform an automatic failover. All of the servers in the stretched cluster will lose access to their storage" (until the primary is back)',
    source: 'hpe-remote-copy-active-sync.md, "Best practices for Active Sync": "Set up and configure a quorum witness"',
  }),
  scenario({
    name: 'metro-sync/secondary-failure',
    title: 'Active Sync: the secondary array fails (SIGKILL), witness up',
    witness: true,
    faults: [{ kind: 'kill-array', array: 'B' }],
    expect: { 'host-a': untouched('host-a'), 'host-b': cutOff('host-b', ['down']) },
    paper: 'the servers connected to the primary "are not interrupted"; the VMs on the servers connected to the failed secondary "fail, and the vMSC cluster automatically fails them over to cluster servers in the primary array site — with a resulting impact on application RTO"',
    source: `${SRC}, "Secondary array failure"`,
  }),
  scenario({
    name: 'metro-sync/primary-reboot',
    title: 'Active Sync: the primary array shuts down cleanly (SIGTERM) and comes back, witness up',
    witness: true,
    faults: [{ kind: 'reboot-array', array: 'A' }],
    expect: { 'host-a': cutOff('host-a', ['down']), 'host-b': untouched('host-b') },
    paper: '"an automatic failover occurs, and the secondary array becomes primary"; the servers connected to the secondary "are not interrupted"; the VMs on the servers connected to the rebooted primary are restarted on the secondary site "with a resulting impact on application RTO"',
    source: `${SRC}, "Primary array reboot/shutdown"`,
  }),
  scenario({
    name: 'metro-sync/secondary-reboot',
    title: 'Active Sync: the secondary array shuts down cleanly (SIGTERM) and comes back, witness up',
    witness: true,
    faults: [{ kind: 'reboot-array', array: 'B' }],
    expect: { 'host-a': untouched('host-a'), 'host-b': cutOff('host-b', ['down']) },
    paper: 'the servers connected to the primary "have no interruption"; "The VMs running on the servers in the ESXi vMSC cluster connected to the secondary array fail" and recovering them "is a manual process"',
    source: `${SRC}, "Secondary array reboot/shutdown"`,
  }),
  scenario({
    name: 'metro-sync/raid-failure',
    title: 'Active Sync: the primary array\'s RAID set fails (its store answers MEDIUM ERROR to every I/O), witness up',
    witness: true,
    // As in the Active Peer Persistence set, A stays up with its path unavailable and the group
    // fails over to B; host-a has no other path, so it loses I/O until the repair.
    faults: [{ kind: 'store-fail', array: 'A', sense: 'medium-error' }],
    expect: { 'host-a': cutOff('host-a', ['unavailable']), 'host-b': untouched('host-b') },
    paper: 'paths to the failed array "transition to ALUA \'unavailable\'; the RC group stops; and the cluster servers connected to that array lose access to their data. If the primary array suffers the failure, an automatic failover from the primary to the secondary array occurs"',
    source: `${SRC}, "RAID set failure or metadata failure"`,
  }),
  scenario({
    name: 'metro-sync/host-disconnect',
    title: 'Active Sync: host-a loses its only path (to array A), witness up',
    witness: true,
    // Nothing changes on the arrays; host-a has no path left.
    faults: [{ kind: 'host-disconnect', host: 'host-a', array: 'A' }],
    expect: { 'host-a': cutOff('host-a', ['down']), 'host-b': untouched('host-b') },
    paper: '"If a server loses access to its VVs because it is disconnected from the array, all host I/O stops, and the associated VMs and applications running on the server fail. These failed VMs must be restarted on a connected host in the cluster"',
    source: `${SRC}, "Host disconnect"`,
  }),
  scenario({
    name: 'metro-sync/cluster-server-failure',
    title: 'Active Sync: host-a fails (its sessions drop, its I/O stops); the arrays are untouched, witness up',
    witness: true,
    faults: [{ kind: 'host-crash', host: 'host-a' }],
    expect: { 'host-a': cutOff('host-a', ['down']), 'host-b': untouched('host-b') },
    paper: '"If a server in the stretch vMSC cluster fails, the VMs and associated applications running on that cluster server also fail. Recovery occurs at the stretched cluster layer with an RPO of zero but with an impact on application RTO"',
    source: `${SRC}, "Cluster server failure"`,
  }),
  scenario({
    name: 'metro-sync/data-center-failure',
    title: 'Active Sync: site A fails: its array (the primary) and host-a with it, witness up',
    witness: true,
    faults: [{ kind: 'data-center', array: 'A' }],
    expect: { 'host-a': cutOff('host-a', ['down']), 'host-b': untouched('host-b') },
    paper: '"both the array in that data center and all cluster servers in that data center fail. Active Sync performs an automatic failover for the RC groups that are primary on the failed array"; the VMs on the failed servers "must be recovered by the stretched cluster, with the associated impact on application RTO"',
    source: `${SRC}, "Data center failure"`,
  }),
  scenario({
    name: 'metro-sync/witness-lost-before-link-failure',
    title: 'Active Sync: the witness fails (SIGKILL), then every replication link fails',
    witness: true,
    faults: [{ kind: 'witness-kill' }, { kind: 'link-cut' }],
    // As metro/witness-lost-before-link-failure: nothing changes while the link is up; once it
    // goes, neither array may write alone (no witness record, no lease, no grant): both Failsafe.
    expect: {
      'host-a': { ...cutOff('host-a', ['unavailable']), midway: HEALTHY['host-a'] },
      'host-b': { ...cutOff('host-b', ['unavailable']), midway: HEALTHY['host-b'] },
    },
    paper: 'the paper is silent on a lost witness. Expected from the arbiter\'s rules, as for Active Peer Persistence: while the link is up the witness is not needed (midway: no path changes); once the link fails the primary can neither have its status recorded nor hold a lease and the secondary gets no grant: both go Failsafe, every path unavailable, both hosts lose I/O until healed; RPO=0 (HPE: an isolated primary goes failsafe)',
    source: 'src/replication/witness-arbiter.ts, group-machine.ts (mayWriteAlone), group-roles.ts (failsafeCheck); replication-anchors.md §4 "Failsafe" (techhub RCrecovery)',
  }),
  scenario({
    name: 'metro-sync/witness-lost-after-link-failure',
    title: 'Active Sync: every replication link fails, then the witness fails (SIGKILL)',
    witness: true,
    faults: [{ kind: 'link-cut' }, { kind: 'witness-kill' }],
    // Midway is metro-sync/link-failure (host-b already cut off); the witness loss ends the
    // primary's lease within 1 s, so host-a loses I/O too.
    expect: {
      'host-a': { ...cutOff('host-a', ['unavailable']), midway: HEALTHY['host-a'] },
      'host-b': { ...cutOff('host-b', ['unavailable']), midway: { A: ['none'], B: ['unavailable'] } },
    },
    paper: 'the paper is silent on a lost witness. Expected from the arbiter\'s rules: after the link failure the primary serves host-a alone on a witness lease while host-b\'s path is unavailable ("Replication link failure"); once the witness is gone no verdict renews the lease, so within 1 s the primary goes Failsafe too and host-a loses I/O; RPO=0 (HPE: an isolated primary goes failsafe)',
    source: 'src/replication/witness-arbiter.ts (denial), group-machine.ts (mayWriteAlone: lease); replication-anchors.md §4 "Failsafe" (techhub RCrecovery)',
  }),
];

/**
 * The Active Sync set's negative control: metro-sync/link-failure judged against the Active Peer
 * Persistence promise ("recovered from transparently with no application outage"), which
 * non-uniform hosts cannot have: host-b is expected to keep I/O on its optimized path to B. It
 * must NOT match, and must name host-b's path and I/O.
 */
export const ACTIVE_SYNC_NEGATIVE_CONTROL: MetroScenario = {
  ...ACTIVE_SYNC_SCENARIOS[0],
  name: 'metro-sync/negative-control',
  title: 'Active Sync link failure judged against a wrong expectation (must not match)',
  expect: { ...ACTIVE_SYNC_SCENARIOS[0].expect, 'host-b': untouched('host-b') },
  paper: 'deliberately wrong: "the host on the secondary keeps I/O through a link failure" (true of Active Peer Persistence, not of Active Sync)',
  source: 'negative control (contradicts the Active Sync "Replication link failure" row)',
};
