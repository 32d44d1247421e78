/**
 * The lab's plan as data: each topology's generated array configurations go through the real
 * configuration parser (src/config.ts) and mean what the topology says; the host snippets name
 * exactly the portals each kind of host uses.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { afterAll, describe, expect, it } from 'vitest';
import { configFromFile } from '../../src/config.ts';
import { expectedPaths, hostSnippets, iscsiadmSnippet } from '../../src/lab/snippets.ts';
import { labPlan, loopbackAddresses, siteArgs, siteConfig, TOPOLOGIES, witnessArgs } from '../../src/lab/topology.ts';
import type { Topology } from '../../src/lab/topology.ts';

const dir = mkdtempSync(path.join(os.tmpdir(), 'arraysim-topology-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const addrs = loopbackAddresses({ siteA: '127.0.1.1', siteB: '127.0.2.1', witness: '127.0.3.1', port: 3260 });
const plan = (t: Topology, witness = false) => labPlan(t, { a: addrs.a, b: addrs.b, witness: witness ? addrs.witness : null });

function parsed(t: Topology, name: 'site-a' | 'site-b') {
  const file = path.join(dir, `${t}-${name}.yaml`);
  writeFileSync(file, stringify(siteConfig(plan(t), name)));
  return configFromFile(file);
}

describe('lab topology', () => {
  it('ports follow the example pair: portal P, admin P+1000, link P+2000, witness 5300', () => {
    expect(addrs.a).toEqual({ portal: { host: '127.0.1.1', port: 3260 }, admin: { host: '127.0.1.1', port: 4260 }, link: { host: '127.0.1.1', port: 5260 } });
    expect(addrs.witness).toEqual({ host: '127.0.3.1', port: 5300 });
  });

  it.each(TOPOLOGIES.map((t) => [t]))('%s: both configurations parse; one volume with the same NAA, distinct port groups, one group primary/secondary', (t) => {
    const a = parsed(t, 'site-a');
    const b = parsed(t, 'site-b');
    expect(a.targets[0].luns[0].naa).toBe(b.targets[0].luns[0].naa);
    expect(a.portals[0].targetPortGroup).not.toBe(b.portals[0].targetPortGroup);
    expect(a.rcopy!.groups[0].role).toBe('primary');
    expect(b.rcopy!.groups[0].role).toBe('secondary');
    expect(a.peers!.peer).toEqual(b.peers!.listen);
    expect(b.peers!.peer).toEqual(a.peers!.listen);
    const aa = a.rcopy!.groups[0].policies?.active_active ?? false;
    expect(aa).toBe(t !== 'classic'); // classic Peer Persistence: no active_active, the secondary is standby
  });

  it('hosts: uniform (metro, classic) log in to both arrays, Active Sync to its own with proximity all', () => {
    expect(plan('metro').hosts.map((h) => [h.name, h.proximity, h.connects])).toEqual([
      ['host-a', 'primary', ['site-a', 'site-b']], ['host-b', 'secondary', ['site-a', 'site-b']]]);
    expect(plan('sync').hosts.map((h) => [h.name, h.proximity, h.connects])).toEqual([
      ['host-a', 'all', ['site-a']], ['host-b', 'all', ['site-b']]]);
    const sync = plan('sync');
    expect(iscsiadmSnippet(sync, sync.hosts[0])).toContain('127.0.1.1:3260');
    expect(iscsiadmSnippet(sync, sync.hosts[0])).not.toContain('127.0.2.1');
  });

  it('expected path states: local optimized, remote non-optimized (metro); secondary standby (classic)', () => {
    const m = plan('metro');
    expect(expectedPaths(m, m.hosts[1])).toEqual([
      '127.0.1.1:3260 (site-a, primary): active/non-optimized', '127.0.2.1:3260 (site-b, secondary): active/optimized']);
    const c = plan('classic');
    expect(expectedPaths(c, c.hosts[0]).map((s) => s.split(': ')[1])).toEqual(['active/optimized', 'standby']);
    expect(hostSnippets(m)).toContain('prio alua');
  });

  it('peers.witness is written exactly when the plan has a witness', () => {
    expect((siteConfig(plan('metro', true), 'site-a').peers as Record<string, string>).witness).toBe('127.0.3.1:5300');
    expect(siteConfig(plan('metro'), 'site-a').peers).not.toHaveProperty('witness');
  });

  it('command lines: serve --config FILE and witness --listen HOST:PORT', () => {
    expect(siteArgs('/etc/arraysim/site-a.yaml')).toEqual(['serve', '--config', '/etc/arraysim/site-a.yaml']);
    expect(witnessArgs({ host: '127.0.3.1', port: 5300 })).toEqual(['witness', '--listen', '127.0.3.1:5300']);
  });
});
