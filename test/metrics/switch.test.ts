/**
 * Turning metrics off: `metrics: false` in the YAML file, `--no-metrics` on the command line (which
 * also overrides the file). A non-boolean value is a configuration error naming the key.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { configFromFile, configFromFlags } from '../../src/config.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

function yamlFile(body: string): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'arraysim-metrics-'));
  const f = path.join(dir, 'c.yaml');
  writeFileSync(f, body);
  return f;
}

describe('metrics switch in the configuration', () => {
  it('defaults to on; `metrics: false` turns it off; anything but a boolean is refused', () => {
    expect(configFromFlags({}).metrics).toBe(true);
    expect(configFromFlags({ metrics: false }).metrics).toBe(false);
    expect(configFromFile(yamlFile('targets: [{name: iqn.2026-11.dev.arraysim:m}]\n')).metrics).toBe(true);
    expect(configFromFile(yamlFile('metrics: false\ntargets: [{name: iqn.2026-11.dev.arraysim:m}]\n')).metrics).toBe(false);
    expect(() => configFromFile(yamlFile('metrics: "no"\n'))).toThrow(/metrics must be true or false/);
  });
});

/** `arraysim serve ARGS` on ephemeral ports; resolves with the status of GET /metrics. */
function metricsStatus(args: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['bin/arraysim.js', 'serve', '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0', '--log-level', 'info', ...args], { cwd: root, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    const timer = setTimeout(() => { p.kill('SIGKILL'); reject(new Error(`no admin API line: ${err}`)); }, 20_000);
    p.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
      const m = /"admin":"(http:\/\/127\.0\.0\.1:\d+)"/.exec(err);
      if (!m) return;
      p.stderr!.removeAllListeners('data');
      clearTimeout(timer);
      fetch(`${m[1]}/metrics`).then((r) => r.status, reject).then((status) => { p.kill('SIGTERM'); if (status) resolve(status); });
    });
    p.on('exit', (code) => { clearTimeout(timer); if (!/"admin":/.test(err)) reject(new Error(`serve exited ${code}: ${err}`)); });
  });
}

describe('serve --no-metrics', () => {
  it('GET /metrics answers 200 by default and 404 with --no-metrics, also over a file saying true', async () => {
    expect(await metricsStatus([])).toBe(200);
    expect(await metricsStatus(['--no-metrics'])).toBe(404);
    expect(await metricsStatus(['--config', yamlFile('metrics: true\ntargets: [{name: iqn.2026-11.dev.arraysim:m, luns: [16MiB]}]\n'), '--no-metrics'])).toBe(404);
  });
});
