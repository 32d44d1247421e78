/**
 * What a write splitter does with each VAAI primitive, and the splitters of the seeds as presets.
 *
 * RecoverPoint's white paper (2011, "VAAI support", Table 2) sorts every splitter's handling of a
 * VAAI command into three levels, and the 2010 interoperability post explains why the difference
 * matters: a *rejected* command makes ESXi fall back to its own data mover with no risk, while an
 * *ignored* one runs on production, answers GOOD, and never reaches the replica. Those are the
 * three policies here:
 *   support  the command runs and its effect reaches every copy, in the group's write order;
 *   reject   nothing runs: CHECK CONDITION (INVALID COMMAND OPERATION CODE, or COPY ABORTED);
 *   ignore   production runs it, GOOD, the copies get nothing (the group logs it).
 * Plain writes are always split; only the four offload primitives have a policy.
 */

export const PRIMITIVES = ['ats', 'xcopy', 'writesame', 'unmap'] as const;
export type Primitive = (typeof PRIMITIVES)[number];

export const POLICIES = ['support', 'reject', 'ignore'] as const;
export type Policy = (typeof POLICIES)[number];

/** Where the splitter sits (the 2010 post: array-based, fabric-based or host-based splitters). */
export const SPLITTER_KINDS = ['array', 'fabric', 'host'] as const;
export type SplitterKind = (typeof SPLITTER_KINDS)[number];

/**
 * How a rejected EXTENDED COPY is answered. 'invalid-opcode': ILLEGAL REQUEST, INVALID COMMAND
 * OPERATION CODE (05/20/00), what a splitter that does not know the command says. 'copy-aborted':
 * COPY ABORTED, COPY TARGET DEVICE NOT REACHABLE (0A/0D/02): SPC-4 §5.17.7 ends a copy whose
 * copy target cannot be reached with sense key COPY ABORTED, and Linux LIO answers 0D/02 to ask
 * the initiator to fall back to a normal copy (shared/reference/vaai-fallback.md §1.2, [T1][T8]).
 */
export const XCOPY_REJECTS = ['invalid-opcode', 'copy-aborted'] as const;
export type XcopyReject = (typeof XCOPY_REJECTS)[number];

export interface SplitterSpec {
  kind: SplitterKind;
  policies: Record<Primitive, Policy>;
  xcopyReject: XcopyReject;
  /**
   * Whether the LU still advertises a rejected primitive: INQUIRY 3PC and VPD 0x8F (XCOPY), Block
   * Limits MAXIMUM COMPARE AND WRITE LENGTH (ATS) and UNMAP fields, Logical Block Provisioning
   * LBPU/LBPWS/LBPWS10, REPORT SUPPORTED OPERATION CODES. Only an array splitter can hide them:
   * a fabric or host splitter passes the array's own pages through unchanged.
   */
  advertiseRejected: boolean;
  /** Known faults of a splitter version, reproduced on purpose (see rp-flare30-pre509). */
  quirks?: { atsFailsInitialization?: boolean };
}

export interface Preset {
  name: string;
  spec: SplitterSpec;
  /** What it models, with the source row it comes from. */
  description: string;
  source: string;
}

export class SpecError extends Error {}

const all = (p: Policy): Record<Primitive, Policy> => ({ ats: p, xcopy: p, writesame: p, unmap: p });

/** A spec as an array splitter that supports everything would have it. */
export function defaultSpec(): SplitterSpec {
  return { kind: 'array', policies: all('support'), xcopyReject: 'invalid-opcode', advertiseRejected: true };
}

const TABLE2 = 'emc-recoverpoint-vmware-dr-whitepaper-2011.md, Table 2';
// Table 2 has rows for Full copy (XCOPY), Block zeroing (WRITE SAME) and Hardware-assisted locking
// (ATS) only: vSphere 4.1 had no UNMAP primitive. Every Table 2 preset gives UNMAP the policy of
// block zeroing, the other provisioning command (WRITE SAME with UNMAP=1 is a writesame anyway).
const column = (kind: SplitterKind, copyZero: Policy, ats: Policy): SplitterSpec => ({
  kind, policies: { ats, xcopy: copyZero, writesame: copyZero, unmap: copyZero }, xcopyReject: 'invalid-opcode', advertiseRejected: true,
});

export const PRESETS: readonly Preset[] = [
  {
    name: 'rp-cx-2010',
    spec: { kind: 'array', policies: { ats: 'support', xcopy: 'ignore', writesame: 'ignore', unmap: 'ignore' }, xcopyReject: 'invalid-opcode', advertiseRejected: true },
    description: 'CX/Unified array splitter, RecoverPoint 2010: ATS (CAS) supported; every other VAAI command ignored, not rejected',
    source: 'recoverpoint-vaai-interoperability-2010.md, first two bullets ("will support" CAS; "are ignored (not rejected) by the CX splitter")',
  },
  {
    name: 'rp-fabric-2010',
    spec: { kind: 'fabric', policies: all('ignore'), xcopyReject: 'invalid-opcode', advertiseRejected: true },
    description: 'Fabric splitter (SANTap, Brocade), RecoverPoint 2010: all VAAI commands ignored, not rejected',
    source: 'recoverpoint-vaai-interoperability-2010.md, third bullet ("With a fabric-based splitter, all VAAI commands are ignored")',
  },
  {
    name: 'rp-windows-host',
    spec: { ...column('host', 'ignore', 'ignore') },
    description: 'Windows host-based splitter: every VAAI command "Unsupported" (must be disabled on ESX), modelled as ignored',
    source: `${TABLE2}, column "Windows host-based write splitter"`,
  },
  {
    name: 'rp-brocade',
    spec: column('fabric', 'reject', 'reject'),
    description: 'Brocade fabric splitter: full copy, block zeroing and hardware-assisted locking rejected',
    source: `${TABLE2}, column "Brocade write splitter"`,
  },
  {
    name: 'rp-cisco-santap',
    spec: column('fabric', 'reject', 'reject'),
    description: 'Cisco SANTap fabric splitter (SSI 5.0(4j)+ or 4.2(3k)+): full copy, block zeroing and locking rejected',
    source: `${TABLE2}, column "Cisco-SANTap write splitter*" and its footnote`,
  },
  {
    name: 'rp-vnx-flare30',
    spec: column('array', 'reject', 'support'),
    description: 'VNX array splitter on FLARE 30: full copy and block zeroing rejected, hardware-assisted locking supported',
    source: `${TABLE2}, column "VNX-based write splitter", "Rejected (FLARE 30)"`,
  },
  {
    name: 'rp-vnx-flare31',
    spec: column('array', 'support', 'support'),
    description: 'VNX array splitter on FLARE 31 or later: full copy, block zeroing and locking supported',
    source: `${TABLE2}, column "VNX-based write splitter", "Supported (FLARE 31 or later)"`,
  },
  {
    name: 'rp-vmaxe',
    spec: column('array', 'reject', 'support'),
    description: 'Symmetrix VMAXe array splitter: full copy and block zeroing rejected, locking supported',
    source: `${TABLE2}, column "Symmetrix VMAXe write splitter"`,
  },
  {
    name: 'rp-clariion',
    spec: column('array', 'reject', 'support'),
    description: 'CLARiiON array splitter: full copy and block zeroing rejected, locking supported',
    source: `${TABLE2}, column "CLRIION-based write splitter"`,
  },
  {
    name: 'rp-flare30-pre509',
    spec: { ...column('array', 'reject', 'support'), quirks: { atsFailsInitialization: true } },
    description: 'FLARE 30 array splitter before 4.30.000.5.509: as rp-vnx-flare30, but a consistency group fails to '
      + 'initialize while ATS (CAS) arrives through the splitter: the transfer goes from init to error',
    source: 'recoverpoint-vaai-update-2011.md ("his consistency groups (CGs) were failing to initialize ... potential issue when '
      + 'using hardware-assisted locking ... with the FLARE 30 array splitter"); policies from Table 2, FLARE 30',
  },
  {
    name: 'rp-flare30-509',
    spec: column('array', 'reject', 'support'),
    description: 'FLARE 30 array splitter at 4.30.000.5.509 (type 2 patch): the initialization issue with ATS fixed',
    source: 'recoverpoint-vaai-update-2011.md ("With the latest revision of FLARE 30 (4.30.000.5.509), this RP-VAAI interoperability issue is resolved")',
  },
];

export function findPreset(name: string): Preset | undefined {
  return PRESETS.find((p) => p.name === name);
}

function oneOf<T extends string>(v: string, allowed: readonly T[], what: string): T {
  if (!(allowed as readonly string[]).includes(v)) throw new SpecError(`${what}: "${v}" is not one of ${allowed.join(', ')}`);
  return v as T;
}

/** Check a spec's fields against each other (a fabric splitter cannot hide the array's pages). */
export function validateSpec(s: SplitterSpec, where = 'splitter'): SplitterSpec {
  if (!s.advertiseRejected && s.kind !== 'array') {
    throw new SpecError(`${where}: advertise=no needs kind=array (a ${s.kind} splitter cannot change the array's INQUIRY/VPD/RSOC pages)`);
  }
  return s;
}

/**
 * The command line's SPLITTER SPEC: a preset name, or `ats=P,xcopy=P,writesame=P,unmap=P` with P
 * in support|reject|ignore, where an unnamed primitive is `support`. A preset may come first and
 * be followed by overrides (`rp-cx-2010,unmap=reject`). Also `kind=array|fabric|host`,
 * `xcopy-reject=invalid-opcode|copy-aborted` and `advertise=yes|no`. Errors name the bad token.
 */
export function parseSplitterSpec(text: string): SplitterSpec {
  const tokens = text.split(',').map((t) => t.trim());
  if (!text.trim()) throw new SpecError('empty splitter spec (want a preset name or ats=P,xcopy=P,writesame=P,unmap=P)');
  let spec = defaultSpec();
  const seen = new Set<string>();
  tokens.forEach((tok, i) => {
    if (!tok) throw new SpecError(`empty token at position ${i + 1} in "${text}"`);
    const eq = tok.indexOf('=');
    if (eq < 0) {
      const p = findPreset(tok);
      if (!p) throw new SpecError(`"${tok}": no such preset (presets: ${PRESETS.map((x) => x.name).join(', ')}; or use ats=P,xcopy=P,...)`);
      if (i !== 0) throw new SpecError(`"${tok}": a preset name must come first`);
      spec = structuredClone(p.spec);
      return;
    }
    const key = tok.slice(0, eq);
    const value = tok.slice(eq + 1);
    if (seen.has(key)) throw new SpecError(`"${tok}": ${key} given twice`);
    seen.add(key);
    if ((PRIMITIVES as readonly string[]).includes(key)) {
      spec.policies[key as Primitive] = oneOf(value, POLICIES, `"${tok}"`);
    } else if (key === 'kind') {
      spec.kind = oneOf(value, SPLITTER_KINDS, `"${tok}"`);
    } else if (key === 'xcopy-reject') {
      spec.xcopyReject = oneOf(value, XCOPY_REJECTS, `"${tok}"`);
    } else if (key === 'advertise') {
      spec.advertiseRejected = oneOf(value, ['yes', 'no'] as const, `"${tok}"`) === 'yes';
    } else {
      throw new SpecError(`"${tok}": unknown key "${key}" (want ${[...PRIMITIVES, 'kind', 'xcopy-reject', 'advertise'].join(', ')})`);
    }
  });
  return validateSpec(spec, `splitter spec "${text}"`);
}

/** The spec back as text, in parseSplitterSpec's syntax. */
export function formatSpec(s: SplitterSpec): string {
  const parts = PRIMITIVES.map((p) => `${p}=${s.policies[p]}`);
  parts.push(`kind=${s.kind}`);
  if (s.xcopyReject !== 'invalid-opcode') parts.push(`xcopy-reject=${s.xcopyReject}`);
  if (!s.advertiseRejected) parts.push('advertise=no');
  return parts.join(',');
}
