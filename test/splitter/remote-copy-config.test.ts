/**
 * A remote copy's configuration: the rate as operators write it, the token bucket that holds the
 * link to it (on a fake clock), the YAML `copies:` entry and `serve --remote-copy`.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { configFromFile, configFromFlags, remoteCopyFlag } from '../../src/config.ts';
import { formatRate, parseRate, TokenBucket } from '../../src/splitter/rate.ts';

describe('parseRate', () => {
  it('bits and bytes, SI and binary prefixes, with or without /s', () => {
    expect(parseRate('50Mbit')).toBe(6_250_000);
    expect(parseRate('50Mb/s')).toBe(6_250_000);
    expect(parseRate('50Mbps')).toBe(6_250_000);
    expect(parseRate('1Gbit/s')).toBe(125_000_000);
    expect(parseRate('100kbit')).toBe(12_500);
    expect(parseRate('6MB')).toBe(6_000_000);
    expect(parseRate('6MiB')).toBe(6 * 1024 * 1024);
    expect(parseRate('1000')).toBe(1000);
    expect(parseRate(2048)).toBe(2048);
    expect(formatRate(6_250_000)).toBe('50 Mbit/s');
  });

  it('refuses what is not a rate', () => {
    for (const bad of ['fast', '', '0', '-5Mbit', '5Mibit', '5 furlongs']) expect(() => parseRate(bad), bad).toThrow(/rate/);
    expect(() => parseRate(0)).toThrow(/positive/);
  });
});

describe('TokenBucket', () => {
  it('lets the burst go at once, then spaces the rest at the rate, in the order asked', () => {
    let now = 1000;
    const b = new TokenBucket(1_000_000, () => now); // 1 MB/s: burst is one 1 MiB region (1048.6 ms)
    expect(b.take(1 << 20)).toBeNull();
    const waits: number[] = [];
    const realTimeout = globalThis.setTimeout;
    globalThis.setTimeout = ((f: () => void, ms: number) => { waits.push(ms); return realTimeout(f, 0); }) as typeof setTimeout;
    try {
      void b.take(100_000);
      void b.take(1_000_000);
      void b.take(1_000_000);
    } finally {
      globalThis.setTimeout = realTimeout;
    }
    // The bucket held one 1 MiB region; each later byte is due 1 µs after the one before it.
    expect(waits).toEqual([100, 1100, 2100]);
    // After an idle spell longer than the burst, the burst is there again (not more).
    now += 10_000;
    expect(b.take(1 << 20)).toBeNull();
    expect(b.take(1)).not.toBeNull();
  });
});

describe('remote copies in the configuration', () => {
  it('YAML copies: a name is local, {name, remote, target, luns, rate} is remote', () => {
    const dir = mkdtempSync(join(tmpdir(), 'crr-config-'));
    const file = join(dir, 'a.yaml');
    writeFileSync(file, `portals: [{listen: 127.0.0.1:3260}]
targets: [{name: iqn.2026-11.dev.arraysim:a, luns: [16MiB, 16MiB]}]
splitters: [{name: rp, spec: rp-vnx-flare31}]
groups:
  - name: g
    splitter: rp
    copies:
      - local
      - {name: dr, remote: 127.0.3.1:3261, target: iqn.2026-11.dev.arraysim:dr, luns: [2, 3], rate: 50Mbit}
`);
    const g = configFromFile(file).groups![0];
    expect(g.copies).toEqual(['local', 'dr']);
    expect(g.remote).toEqual({ dr: { host: '127.0.3.1', port: 3261, target: 'iqn.2026-11.dev.arraysim:dr', luns: [2, 3], rate: 6_250_000 } });
    writeFileSync(file, `targets: [{name: iqn.2026-11.dev.arraysim:a, luns: [16MiB, 16MiB]}]
splitters: [{name: rp, spec: rp-vnx-flare31}]
groups: [{name: g, splitter: rp, copies: [{name: dr, remote: 127.0.3.1:3261, target: iqn.x:dr, luns: [0]}]}]
`);
    expect(() => configFromFile(file)).toThrow(/groups\[0\]\.copies\[0\]\.luns: 1 remote LUNs for 2 replication sets/);
    writeFileSync(file, `targets: [{name: iqn.2026-11.dev.arraysim:a, luns: [16MiB]}]
splitters: [{name: rp, spec: rp-vnx-flare31}]
groups: [{name: g, splitter: rp, copies: [{name: dr, remote: 127.0.3.1:3261, target: iqn.x:dr, rate: quick}]}]
`);
    expect(() => configFromFile(file)).toThrow(/groups\[0\]\.copies\[0\]\.rate: rate "quick"/);
  });

  it('serve --remote-copy: the group default\'s one copy is the remote one; it needs --splitter', () => {
    const c = configFromFlags({ lun: ['8MiB'], splitter: 'rp-vnx-flare31', remoteCopy: 'name=dr,remote=127.0.3.1:3261,target=iqn.x:dr,rate=10Mbit,luns=4' });
    expect(c.groups![0].copies).toEqual(['dr']);
    expect(c.groups![0].remote).toEqual({ dr: { host: '127.0.3.1', port: 3261, target: 'iqn.x:dr', luns: [4], rate: 1_250_000 } });
    expect(remoteCopyFlag('remote=h:1,target=t').name).toBe('remote');
    expect(() => configFromFlags({ lun: ['8MiB'], remoteCopy: 'remote=h:1,target=t' })).toThrow(/needs --splitter/);
    expect(() => remoteCopyFlag('remote=h:1')).toThrow(/--remote-copy: target must be/);
    expect(() => remoteCopyFlag('remote=h:1,target=t,speed=3')).toThrow(/--remote-copy: speed: unknown field/);
  });
});
