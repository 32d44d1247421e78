/**
 * tools/vm's splitter proof (issue 11) runs only in the VM harness, by hand. What can be checked
 * without a VM: the target file it serves is valid, and the cases, groups and target names agree
 * between targets/splitter.yaml, the guest script and the host driver, so a rename in one of them
 * fails here instead of 5 minutes into a VM run.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { configFromFile } from '../../src/config.js';
import { parseSplitterSpec } from '../../src/splitter/policy.js';

const root = path.resolve(import.meta.dirname, '../..');
const read = (f: string) => readFileSync(path.join(root, f), 'utf8');

function loadYaml(text: string) {
  const dir = mkdtempSync(path.join(tmpdir(), 'arraysim-vm-splitter-'));
  writeFileSync(path.join(dir, 'splitter.yaml'), text.replaceAll('@PORT@', '3410').replaceAll('@ADMIN@', '3411'));
  return configFromFile(path.join(dir, 'splitter.yaml'));
}

/** Each case: the policy the guest's expectations assume, and the IQN suffix = group name. */
const CASES = {
  'ws-reject': { writesame: 'reject', unmap: 'support' },
  'ws-ignore': { writesame: 'ignore', unmap: 'support' },
  'unmap-reject': { writesame: 'support', unmap: 'reject' },
  'unmap-ignore': { writesame: 'support', unmap: 'ignore' },
  fabric: { writesame: 'ignore', unmap: 'ignore' },
  'ws-support': { writesame: 'support', unmap: 'support' },
  'unmap-support': { writesame: 'support', unmap: 'support' },
  'xc-support': { xcopy: 'support', ats: 'support' },
  'xc-reject': { xcopy: 'reject', ats: 'reject' },
  'xc-ignore': { xcopy: 'ignore', ats: 'ignore' },
  support: { ats: 'support', xcopy: 'support', writesame: 'support', unmap: 'support' },
} as const;

/** The discard cases: guest operation and the policy under test. */
const DISCARD = {
  'ws-reject': ['zeroout', 'reject'], 'ws-ignore': ['zeroout', 'ignore'], 'ws-support': ['zeroout', 'support'],
  'unmap-reject': ['discard', 'reject'], 'unmap-ignore': ['discard', 'ignore'], 'unmap-support': ['discard', 'support'],
} as const;
const XCOPY = { 'xc-support': 'support', 'xc-reject': 'reject', 'xc-ignore': 'ignore' } as const;
const wantExit = (policy: string) => (policy === 'ignore' ? 1 : 0);

describe('tools/vm splitter proof: target file, guest and driver agree', () => {
  const yaml = read('tools/vm/targets/splitter.yaml');
  const guest = read('tools/vm/guest-tests/splitter.sh');
  const driver = read('tools/vm/splitter-proof.sh');

  it('targets/splitter.yaml loads: one target and one group with one local copy per case, the policies the guest expects', () => {
    const c = loadYaml(yaml);
    const base = /^BASE=(\S+)$/m.exec(driver)?.[1];
    expect(base).toBe(/BASE=\$\{TARGET_IQN_BASE:-(\S+)\}/.exec(guest)?.[1]);
    expect(c.portals.map((p) => p.port)).toEqual([3410]);
    expect(c.targets.map((t) => t.name)).toEqual([...Object.keys(CASES), 'rpsync'].map((k) => `${base}:${k}`));
    for (const [name, want] of Object.entries(CASES)) {
      const g = c.groups?.find((x) => x.name === name);
      expect(g, name).toBeDefined();
      expect(g!.target).toBe(`${base}:${name}`);
      expect(g!.copies).toEqual(['local']); // the image-access target is <IQN>-local
      const s = c.splitters?.find((x) => x.name === g!.splitter);
      expect(s?.spec.policies, name).toMatchObject(want);
    }
    expect(c.splitters?.find((x) => x.name === 'fabric')?.spec).toEqual(parseSplitterSpec('rp-fabric-2010'));
    // --seeding: the field notes' group, copy and target names, with the transfer not started.
    const rp = c.groups?.find((x) => x.name === 'RPSyncGroup');
    expect(rp).toMatchObject({ target: `${base}:rpsync`, copies: ['DR_RPSyncGroup'], startTransfer: false });
    expect(guest).toContain(`dr_iqn=$BASE:rpsync-dr-rpsyncgroup`);
  });

  it('the guest runs every discard and xcopy case with the policy its group has, and the driver verifies each', () => {
    for (const [name, [op, policy]] of Object.entries(DISCARD)) {
      const p = CASES[name as keyof typeof CASES] as Record<string, string>;
      expect(p[op === 'zeroout' ? 'writesame' : 'unmap'], name).toBe(policy);
      expect(guest).toContain(`discard_case ${name} ${op} ${policy}\n`);
      expect(driver).toMatch(new RegExp(`^ *verify ${name} ${wantExit(policy)}\\b`, 'm'));
    }
    for (const [name, policy] of Object.entries(XCOPY)) {
      expect(CASES[name as keyof typeof CASES]).toEqual({ xcopy: policy, ats: policy });
      expect(guest).toContain(`xc_case ${name} ${policy}\n`);
      expect(driver).toMatch(new RegExp(`^ *verify ${name} ${wantExit(policy)}\\b`, 'm'));
    }
    expect(guest).toContain('img=$(login "$iqn-local")');
    expect(driver).toContain('rp enable_image_access group=fabric copy=local image=latest');
    expect(driver).toContain('rp bookmark group=support name=fio-done');
    expect(driver).toContain('rp enable_image_access group=support copy=local image=fio-done');
    expect(driver).toMatch(/^ *verify RPSyncGroup 0$/m);
    for (const step of ['enable_group group=RPSyncGroup start_transfer=no', 'clear_markers group=RPSyncGroup',
      'enable_image_access group=RPSyncGroup copy=DR_RPSyncGroup image=latest',
      'set_image_access_mode group=RPSyncGroup copy=DR_RPSyncGroup mode=direct',
      'disable_image_access group=RPSyncGroup copy=DR_RPSyncGroup start_transfer=no', 'start_transfer group=RPSyncGroup']) {
      expect(guest).toContain(`step "${step}"`);
    }
  });

  it('negative control: a case whose policy disagrees with the guest is caught', () => {
    const c = loadYaml(yaml.replace('spec: writesame=reject', 'spec: writesame=ignore'));
    const g = c.groups!.find((x) => x.name === 'ws-reject')!;
    expect(c.splitters!.find((x) => x.name === g.splitter)!.spec.policies).not.toMatchObject(CASES['ws-reject']);
  });
});
