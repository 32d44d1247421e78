/**
 * The lab's scenarios: a splitter spec on the array, the host's advanced settings, what the host
 * does, and the outcome the sources predict. Every expected outcome names its source (a seed file
 * in shared/seeds/ and the passage), so a row that does not match says which claim it tested.
 */

export type LabOp = 'clone' | 'zero' | 'unmap';

export interface Expected {
  /** The array did at least part of the work by the primitive. */
  offloaded: boolean;
  /** The host fell back (software data mover, or nothing for UNMAP). */
  fellBack: boolean;
  /** verify finds the copy equal to production. */
  consistent: boolean;
}

export interface Scenario {
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
const TABLE2 = 'emc-recoverpoint-vmware-dr-whitepaper-2011.md, Table 2';
const IGNORED = `${P2010}: "ignored (not rejected)" -> "Replicas that are corrupt and unusable"`;
const REJECTED = `${P2010}: rejected "as not implemented" -> the host "fall[s] back to pre-VAAI behavior"`;
const SUPPORTED = `${TABLE2}: "Supported (FLARE 31 or later)"`;

const PRIMITIVE: Record<LabOp, { policyKey: string; label: string }> = {
  clone: { policyKey: 'xcopy', label: 'XCOPY clone' },
  zero: { policyKey: 'writesame', label: 'WRITE SAME zeroing' },
  unmap: { policyKey: 'unmap', label: 'UNMAP' },
};

function triple(op: LabOp): Scenario[] {
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

export const SCENARIOS: readonly Scenario[] = [
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

export function findScenario(name: string): Scenario | undefined {
  return SCENARIOS.find((s) => s.name === name);
}
