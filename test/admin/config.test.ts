/** The YAML `admin:` section: listen and tokenFile, checked as the rest of the file is. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { configFromFile } from '../../src/config.ts';

function load(admin: string): ReturnType<typeof configFromFile> {
  const dir = mkdtempSync(path.join(tmpdir(), 'arraysim-admin-yaml-'));
  const file = path.join(dir, 'a.yaml');
  writeFileSync(file, `portals:\n  - listen: 127.0.0.1:3260\n${admin}`);
  return configFromFile(file);
}

describe('admin: in the YAML config', () => {
  it('absent: no admin settings (the flag or the default decides)', () => {
    expect(load('').admin).toBeUndefined();
  });
  it('listen and tokenFile; a relative tokenFile is found beside the config file', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'arraysim-admin-yaml-'));
    const file = path.join(dir, 'a.yaml');
    writeFileSync(file, 'admin:\n  listen: "[::1]:4270"\n  tokenFile: secrets/admin.token\n');
    expect(configFromFile(file).admin).toEqual({ listen: '[::1]:4270', tokenFile: path.join(dir, 'secrets/admin.token') });
    expect(load('admin:\n  listen: none\n').admin).toEqual({ listen: 'none' });
    expect(load('admin:\n  tokenFile: /etc/arraysim/token\n').admin).toEqual({ tokenFile: '/etc/arraysim/token' });
  });
  it.each([
    ['admin: 4260\n', /admin must be a mapping/],
    ['admin:\n  listen: 4260\n', /admin\.listen must be "HOST:PORT" or "none"/],
    ['admin:\n  listen: "127.0.0.1:99999"\n', /admin\.listen: bad port/],
    ['admin:\n  tokenFile: ""\n', /admin\.tokenFile must be a file name/],
    ['admin:\n  token: hunter2hunter2hunter2\n', /admin\.token is not a known key \(want listen, tokenFile\)/],
  ])('%j is refused', (text, why) => {
    expect(() => load(text)).toThrow(why);
  });
});
