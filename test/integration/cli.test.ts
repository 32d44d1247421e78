/**
 * `arraysim serve` failures a user meets at the command line: each ends the process with exit
 * code 1 and says why, a usage mistake with the help text, a LUN that cannot be created with one
 * line naming the LUN (no help text, no stack trace).
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

function serve(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['bin/arraysim.js', 'serve', '--admin', 'none', ...args], { cwd: root, env: { ...process.env, ...env }, timeout: 20_000 },
      (err, _stdout, stderr) => resolve({ code: err ? (typeof err.code === 'number' ? err.code : null) : 0, stderr }));
  });
}

describe('arraysim serve: startup failures', () => {
  it('a thick LUN larger than the memory pool: exit 1, one line naming the LUN and the pool', async () => {
    const r = await serve(['--listen', '127.0.0.1:3479', '--lun', '16MiB', '--lun', '128MiB,thick'], { ARRAYSIM_MEMORY_LIMIT: String(64 << 20) });
    expect(r.code).toBe(1);
    const lines = r.stderr.split('\n').filter((l) => l.startsWith('arraysim:'));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^arraysim: target iqn\.2026-11\.dev\.arraysim:default LUN 1 \(128MiB,thick\): a thick LUN of 134217728 bytes needs that much memory/);
    expect(lines[0]).toContain('ARRAYSIM_MEMORY_LIMIT');
    expect(r.stderr).not.toContain('Options:');
    expect(r.stderr).not.toMatch(/^\s+at /m);
  });

  it('--lun or --target beside --config: exit 1, the help text and the reason (the file describes targets and LUNs)', async () => {
    const r = await serve(['--config', 'examples/minimal.yaml', '--lun', '64MiB']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('Options:');
    expect(r.stderr).toMatch(/Arguments config and lun are mutually exclusive/);
    const t = await serve(['--config', 'examples/minimal.yaml', '--target', 'iqn.2026-11.dev.arraysim:x']);
    expect(t.code).toBe(1);
    expect(t.stderr).toMatch(/Arguments config and target are mutually exclusive/);
  });

  it('an unknown flag: exit 1, the help text and the reason', async () => {
    const r = await serve(['--bogus-flag', '1']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('Options:');
    expect(r.stderr).toMatch(/Unknown arguments?: bogus-flag/);
  });
});
