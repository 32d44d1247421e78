/**
 * The lab's scenarios: a splitter spec on the array, the host's advanced settings, what the host
 * does, and the outcome the sources predict. Every expected outcome names its source (a seed file
 * in shared/seeds/ and the passage), so a row that does not match says which claim it tested.
 */

/** clone, zero and unmap cover 8 MiB each; lock mounts an ATS+SCSI volume, takes its lock, heartbeats and releases it. */
export type LabOp = 'clone' | 'zero' | 'unmap' | 'lock';

/**
 * How a scenario runs: `ops` (run.ts: the host's ops one after the other, then verify),
 * `initialization` (initialization.ts: the group's first initialization while a host heartbeats
 * its VMFS lock), `seeding` (seeding.ts: the field notes' dd seeding over a rate-limited remote
 * copy, seeded against unseeded), `mixed-day` (mixed-day.ts: two hosts under a seeded random
 * Table 2 preset, the outcome predicted from the preset's policies).
 */
export type ScenarioKind = 'ops' | 'initialization' | 'seeding' | 'mixed-day';

export interface Expected {
  /** The array did at least part of the work by the primitive. */
  offloaded: boolean;
  /** The host fell back (software data mover, or nothing for UNMAP). */
  fellBack: boolean;
  /** verify finds the copy equal to production. */
  consistent: boolean;
  /** initialization: the group's first initialization ends with the transfer active (not in error). */
  initialized?: boolean;
  /** seeding: the seeded initialization sends at most this fraction of the volume; the unseeded one all of it. */
  seededAtMost?: number;
}

export interface Scenario {
  /** Default `ops`. */
  kind?: ScenarioKind;
  name: string;
  title: string;
  /** SPLITTER SPEC (preset or per-primitive policies). */
  splitter: string;
  /** The policy column of the table: the policy the primitives under test meet. */
  policy: string;
  /** Host-wide advanced settings (NAME=VALUE), empty = ESXi defaults. */
  settings: string[];
  ops: LabOp[];
  expect: Expected;
  source: string;
}

const P2010 = 'recoverpoint-vaai-interoperability-2010.md';
const P2011 = 'recoverpoint-vaai-update-2011.md';
const NOTES = 'field-notes-vspex-hadoop-powerpath-recoverpoint.md, "RecoverPoint Initial Synchronization with DD"';
const TABLE2 = 'emc-recoverpoint-vmware-dr-whitepaper-2011.md, Table 2';
const IGNORED = `${P2010}: "ignored (not rejected)" -> "Replicas that are corrupt and unusable"`;
const REJECTED = `${P2010}: rejected "as not implemented" -> the host "fall[s] back to pre-VAAI behavior"`;
const SUPPORTED = `${TABLE2}: "Supported (FLARE 31 or later)"`;

const PRIMITIVE: Record<Exclude<LabOp, 'lock'>, { policyKey: string; label: string }> = {
  clone: { policyKey: 'xcopy', label: 'XCOPY clone' },
  zero: { policyKey: 'writesame', label: 'WRITE SAME zeroing' },
  unmap: { policyKey: 'unmap', label: 'UNMAP' },
};

function triple(op: Exclude<LabOp, 'lock'>): Scenario[] {
  const { policyKey, label } = PRIMITIVE[op];
  const name = policyKey;
  return [
    {
      name: `${name}-ignore`, title: `${label}, splitter ignores it`, splitter: `${policyKey}=ignore`, policy: `${policyKey}=ignore`, settings: [], ops: [op],
      expect: { offloaded: true, fellBack: false, consistent: false }, source: IGNORED,
    },
    {
      name: `${name}-reject`, title: `${label}, splitter rejects it`, splitter: `${policyKey}=reject`, policy: `${policyKey}=reject`, settings: [], ops: [op],
      // UNMAP has no fallback (discard is advisory): nothing is unmapped, both sides keep the data.
      expect: { offloaded: false, fellBack: true, consistent: true }, source: op === 'unmap' ? `${REJECTED}; UNMAP is advisory, nothing takes over` : REJECTED,
    },
    {
      name: `${name}-support`, title: `${label}, splitter supports it`, splitter: `${policyKey}=support`, policy: `${policyKey}=support`, settings: [], ops: [op],
      expect: { offloaded: true, fellBack: false, consistent: true }, source: op === 'unmap' ? `${SUPPORTED} (Table 2 has no UNMAP row: the preset's block-zeroing policy)` : SUPPORTED,
    },
  ];
}

const SCENARIOS_MUTABLE: Scenario[] = [
  ...triple('clone'),
  ...triple('zero'),
  ...triple('unmap'),
  {
    name: 'rp-fabric-2010', title: 'fabric splitter (2010), ESXi defaults: clone and zero', splitter: 'rp-fabric-2010', policy: 'rp-fabric-2010', settings: [], ops: ['clone', 'zero'],
    expect: { offloaded: true, fellBack: false, consistent: false }, source: `${P2010}: "With a fabric-based splitter, all VAAI commands are ignored"`,
  },
  {
    name: 'rp-fabric-2010-workaround', title: 'fabric splitter (2010), Move and Init disabled host-wide', splitter: 'rp-fabric-2010', policy: 'rp-fabric-2010',
    settings: ['DataMover.HardwareAcceleratedMove=0', 'DataMover.HardwareAcceleratedInit=0'], ops: ['clone', 'zero'],
    expect: { offloaded: false, fellBack: true, consistent: true }, source: `${P2010}: the workaround, HardwareAcceleratedMove and HardwareAcceleratedInit set to 0`,
  },
];

/** One scenario per column of Table 2, host at ESXi defaults: clone, zero and a VMFS lock. */
function table2(preset: string, column: string, cells: string, expect: Expected): Scenario {
  return {
    name: preset, title: `Table 2 column "${column}": ${cells}`, splitter: preset, policy: preset, settings: [], ops: ['clone', 'zero', 'lock'],
    expect, source: `${TABLE2}, column "${column}": ${cells}`,
  };
}

SCENARIOS_MUTABLE.push(
  {
    name: 'rp-cx-2010', title: 'CX array splitter (2010): ATS locking replicated, clone and zero ignored', splitter: 'rp-cx-2010', policy: 'rp-cx-2010', settings: [], ops: ['lock', 'clone', 'zero'],
    expect: { offloaded: true, fellBack: false, consistent: false }, source: `${P2010}: the CX splitter "will support" CAS; other VAAI commands "are ignored (not rejected)"`,
  },
  table2('rp-windows-host', 'Windows host-based write splitter', 'Unsupported, Unsupported, Unsupported', { offloaded: true, fellBack: false, consistent: false }),
  table2('rp-brocade', 'Brocade write splitter', 'Rejected, Rejected, Rejected', { offloaded: false, fellBack: true, consistent: true }),
  table2('rp-cisco-santap', 'Cisco-SANTap write splitter*', 'Rejected, Rejected, Rejected', { offloaded: false, fellBack: true, consistent: true }),
  table2('rp-vnx-flare30', 'VNX-based write splitter', 'Rejected (FLARE 30) x2, locking Supported', { offloaded: true, fellBack: true, consistent: true }),
  table2('rp-vnx-flare31', 'VNX-based write splitter', 'Supported (FLARE 31 or later) x2, locking Supported', { offloaded: true, fellBack: false, consistent: true }),
  table2('rp-vmaxe', 'Symmetrix VMAXe write splitter', 'Rejected, Rejected, Supported', { offloaded: true, fellBack: true, consistent: true }),
  table2('rp-clariion', 'CLRIION-based write splitter', 'Rejected, Rejected, Supported', { offloaded: true, fellBack: true, consistent: true }),
);

// The 2011 update: consistency groups failing to initialize with CAS (ATS) through the FLARE 30
// array splitter before patch .509. The host writes its datastore while the group is paused, mounts
// it and heartbeats its VMFS lock with ATS; the operator starts the transfer (the first
// initialization, a full sweep) under the heartbeats.
SCENARIOS_MUTABLE.push(
  {
    kind: 'initialization', name: 'rp-flare30-pre509', title: 'FLARE 30 array splitter before .509: first initialization under ATS heartbeats', splitter: 'rp-flare30-pre509', policy: 'rp-flare30-pre509',
    settings: [], ops: ['lock'], expect: { offloaded: true, fellBack: false, consistent: false, initialized: false },
    source: `${P2011}: "his consistency groups (CGs) were failing to initialize ... hardware-assisted locking ... with the FLARE 30 array splitter"`,
  },
  {
    kind: 'initialization', name: 'rp-flare30-pre509-workaround', title: 'FLARE 30 before .509, ATS disabled host-wide: initializes with SCSI reservations', splitter: 'rp-flare30-pre509', policy: 'rp-flare30-pre509',
    settings: ['VMFS3.HardwareAcceleratedLocking=0'], ops: ['lock'], expect: { offloaded: false, fellBack: true, consistent: true, initialized: true },
    source: `${P2011}: "The only way he could get his CGs to properly initialize and replicate was to disable VAAI"`,
  },
  {
    kind: 'initialization', name: 'rp-flare30-509', title: 'FLARE 30 array splitter at 4.30.000.5.509: initializes under ATS heartbeats', splitter: 'rp-flare30-509', policy: 'rp-flare30-509',
    settings: [], ops: ['lock'], expect: { offloaded: true, fellBack: false, consistent: true, initialized: true },
    source: `${P2011}: "With the latest revision of FLARE 30 (4.30.000.5.509), this RP-VAAI interoperability issue is resolved"`,
  },
);

SCENARIOS_MUTABLE.push({
  kind: 'seeding', name: 'crr-dd-seeding', title: 'dd seeding of a remote copy over an 80 Mbit/s link: seeded (the changes since the dd travel) against unseeded (a full sweep)',
  splitter: 'rp-vnx-flare31', policy: 'rp-vnx-flare31, CRR at 80Mbit', settings: [], ops: [],
  expect: { offloaded: false, fellBack: false, consistent: true, seededAtMost: 0.1 },
  source: `${NOTES}: "The traffic you see will be the changes to the source volume since the block-level dd copy was made"; "transferring roughly 21GB (6.36%)"`,
});

SCENARIOS_MUTABLE.push({
  kind: 'mixed-day', name: 'mixed-day', title: 'VMFS-like mixed day: two hosts heartbeat their locks, clone, zero and write under a random Table 2 preset (--seed N replays)',
  splitter: 'a Table 2 preset drawn from the seed', policy: 'drawn', settings: [], ops: ['lock', 'clone', 'zero'],
  // Placeholder: the run predicts its expectation from the preset it draws (mixed-day.ts, predict).
  expect: { offloaded: true, fellBack: false, consistent: true },
  source: `${TABLE2}: the drawn column's policies; ${P2010}: ignored -> corrupt, rejected -> fall back`,
});

export const SCENARIOS: readonly Scenario[] = SCENARIOS_MUTABLE;

export function findScenario(name: string): Scenario | undefined {
  return SCENARIOS.find((s) => s.name === name);
}
