/**
 * peers.state's file (src/replication/runtime-state.ts): what is saved reads back the same, and a
 * file that cannot be trusted is refused with the field named, never half-read.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { decodeRuntimeState, encodeRuntimeState, readRuntimeState, RuntimeStateFile } from '../../src/replication/runtime-state.ts';
import type { SavedGroup } from '../../src/replication/runtime-state.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'arraysim-rtstate-unit-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const G: SavedGroup = {
  name: 'rcg1', role: 'secondary', start: true, policies: { active_active: true, auto_recover: true }, hosts: { 'iqn.2026-12.dev.example:h1': 'all' },
  volumes: [{ target: 'iqn.2026-12.dev.arraysim:t', lun: 0, naa: '502a7510000e0a01', serial: 'ASIM1' }, { target: 'iqn.2026-12.dev.arraysim:t', lun: 3 }],
};

describe('peers.state file', () => {
  it('round trips, and a missing file is no group', async () => {
    expect(decodeRuntimeState(encodeRuntimeState('site-b', [G]), 'site-b')).toEqual([G]);
    const file = path.join(dir, 'state.json');
    expect(readRuntimeState(file, 'site-b')).toEqual([]);
    const f = new RuntimeStateFile(file, 'site-b');
    let current: SavedGroup[] = [G];
    const first = f.save(() => current);
    current = [];
    // Asked while the first is under way: written after it, with what is current then.
    await Promise.all([first, f.save(() => current)]);
    expect(f.saves).toBe(2);
    expect(readRuntimeState(file, 'site-b')).toEqual([]);
    await f.save(() => [G]);
    expect(JSON.parse(readFileSync(file, 'utf8')).groups).toEqual([G]);
  });

  const bad: [string, (d: any) => void, RegExp][] = [
    ['not JSON', () => {}, /not JSON/],
    ['another format', (d) => { d.format = 'x'; }, /format is not arraysim-rcopy-groups/],
    ['a newer version', (d) => { d.version = 2; }, /version 2 \(this arraysim reads 1\)/],
    ['another array', (d) => { d.array = 'site-a'; }, /belongs to array "site-a", and this one is site-b/],
    ['a group twice', (d) => { d.groups.push(d.groups[0]); }, /groups\[1\]: group rcg1 twice/],
    ['a bad role', (d) => { d.groups[0].role = 'tertiary'; }, /groups\[0\]\.role must be primary or secondary/],
    ['an unknown policy', (d) => { d.groups[0].policies.fast = true; }, /groups\[0\]\.policies\.fast is not a policy/],
    ['a bad proximity', (d) => { d.groups[0].hosts.h = 'near'; }, /groups\[0\]\.hosts\.h must be one of primary, secondary, all/],
    ['a negative LUN', (d) => { d.groups[0].volumes[1].lun = -1; }, /groups\[0\]\.volumes\[1\] must have a target and a LUN number/],
    ['a NAA without its serial', (d) => { delete d.groups[0].volumes[0].serial; }, /groups\[0\]\.volumes\[0\]: naa and serial go together/],
    ['a NAA that is not hex', (d) => { d.groups[0].volumes[0].naa = 'zz'; }, /groups\[0\]\.volumes\[0\]\.naa must be 16 or 32 hex digits/],
    ['start missing', (d) => { delete d.groups[0].start; }, /groups\[0\]\.start must be true or false/],
  ];
  it.each(bad)('refuses %s, naming it', (what, mend, why) => {
    const doc = JSON.parse(encodeRuntimeState('site-b', [G]));
    mend(doc);
    const text = what === 'not JSON' ? '{"format": ' : JSON.stringify(doc);
    expect(() => decodeRuntimeState(text, 'site-b')).toThrow(why);
  });
});
