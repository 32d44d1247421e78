/** SPLITTER SPEC parsing and the presets from the seeds. */
import { describe, expect, it } from 'vitest';
import { PRESETS, PRIMITIVES, findPreset, formatSpec, parseSplitterSpec } from '../../src/splitter/policy.ts';

describe('parseSplitterSpec', () => {
  it('unnamed primitives are support', () => {
    const s = parseSplitterSpec('xcopy=ignore');
    expect(s.policies).toEqual({ ats: 'support', xcopy: 'ignore', writesame: 'support', unmap: 'support' });
    expect(s.kind).toBe('array');
    expect(s.advertiseRejected).toBe(true);
  });

  it('all four, kind, xcopy-reject, advertise', () => {
    const s = parseSplitterSpec('ats=reject,xcopy=reject,writesame=ignore,unmap=support,kind=array,xcopy-reject=copy-aborted,advertise=no');
    expect(s.policies).toEqual({ ats: 'reject', xcopy: 'reject', writesame: 'ignore', unmap: 'support' });
    expect(s.xcopyReject).toBe('copy-aborted');
    expect(s.advertiseRejected).toBe(false);
    expect(parseSplitterSpec(formatSpec(s))).toEqual(s);
  });

  it('a preset name, and a preset with overrides', () => {
    expect(parseSplitterSpec('rp-cx-2010').policies).toEqual({ ats: 'support', xcopy: 'ignore', writesame: 'ignore', unmap: 'ignore' });
    const s = parseSplitterSpec('rp-cx-2010,unmap=reject');
    expect(s.policies.unmap).toBe('reject');
    expect(s.policies.xcopy).toBe('ignore');
    // The preset object itself is not changed by an override.
    expect(findPreset('rp-cx-2010')!.spec.policies.unmap).toBe('ignore');
  });

  it.each([
    ['xcopy=maybe', /"xcopy=maybe".*support, reject, ignore/],
    ['atz=reject', /"atz=reject": unknown key "atz"/],
    ['rp-nope', /"rp-nope": no such preset/],
    ['xcopy=ignore,rp-cx-2010', /"rp-cx-2010": a preset name must come first/],
    ['ats=reject,ats=ignore', /"ats=ignore": ats given twice/],
    ['ats=reject,,unmap=ignore', /empty token at position 2/],
    ['', /empty splitter spec/],
    ['kind=fabric,advertise=no', /advertise=no needs kind=array/],
    ['kind=switch', /"kind=switch".*array, fabric, host/],
    ['xcopy-reject=sometimes', /"xcopy-reject=sometimes"/],
  ])('%j is refused, naming the bad token', (text, msg) => {
    expect(() => parseSplitterSpec(text)).toThrow(msg);
  });
});

describe('presets', () => {
  const policies = (n: string) => findPreset(n)!.spec.policies;

  it('the 2010 post: CX array splitter supports ATS and ignores the rest; fabric ignores all', () => {
    expect(policies('rp-cx-2010')).toEqual({ ats: 'support', xcopy: 'ignore', writesame: 'ignore', unmap: 'ignore' });
    expect(findPreset('rp-cx-2010')!.spec.kind).toBe('array');
    expect(policies('rp-fabric-2010')).toEqual({ ats: 'ignore', xcopy: 'ignore', writesame: 'ignore', unmap: 'ignore' });
    expect(findPreset('rp-fabric-2010')!.spec.kind).toBe('fabric');
  });

  it('Table 2, column by column (UNMAP follows block zeroing)', () => {
    expect(policies('rp-windows-host')).toEqual({ ats: 'ignore', xcopy: 'ignore', writesame: 'ignore', unmap: 'ignore' });
    expect(policies('rp-brocade')).toEqual({ ats: 'reject', xcopy: 'reject', writesame: 'reject', unmap: 'reject' });
    expect(policies('rp-cisco-santap')).toEqual({ ats: 'reject', xcopy: 'reject', writesame: 'reject', unmap: 'reject' });
    expect(policies('rp-vnx-flare30')).toEqual({ ats: 'support', xcopy: 'reject', writesame: 'reject', unmap: 'reject' });
    expect(policies('rp-vnx-flare31')).toEqual({ ats: 'support', xcopy: 'support', writesame: 'support', unmap: 'support' });
    for (const n of ['rp-vmaxe', 'rp-clariion']) expect(policies(n)).toEqual({ ats: 'support', xcopy: 'reject', writesame: 'reject', unmap: 'reject' });
  });

  it('the 2011 update: pre-509 FLARE 30 fails initialization with ATS; 509 does not', () => {
    expect(findPreset('rp-flare30-pre509')!.spec.quirks?.atsFailsInitialization).toBe(true);
    expect(findPreset('rp-flare30-509')!.spec.quirks?.atsFailsInitialization).toBeFalsy();
    expect(policies('rp-flare30-pre509')).toEqual(policies('rp-flare30-509'));
  });

  it('every preset names its source and parses from its own name', () => {
    expect(PRESETS.length).toBe(11);
    for (const p of PRESETS) {
      expect(p.source).toMatch(/\.md/);
      expect(p.description.length).toBeGreaterThan(20);
      expect(parseSplitterSpec(p.name)).toEqual(p.spec);
      for (const k of PRIMITIVES) expect(['support', 'reject', 'ignore']).toContain(p.spec.policies[k]);
    }
  });
});
