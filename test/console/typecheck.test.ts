/**
 * The console's browser code and its browser test need DOM types, so the root tsconfig (Node
 * only) leaves them out and each has its own: typecheck both here, as `npx tsc --noEmit` does
 * the rest. esbuild, which bundles the console, does not typecheck.
 */
import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const TSC = createRequire(import.meta.url).resolve('typescript/bin/tsc');

function tsc(project: string): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [TSC, '--noEmit', '-p', project], { cwd: ROOT, timeout: 120_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, out: stdout + stderr }));
  });
}

describe('typecheck of the browser-side code', () => {
  it.each(['src/admin/console/web', 'test/console'])('tsc -p %s', async (project) => {
    const r = await tsc(project);
    expect(r.out).toBe('');
    expect(r.code).toBe(0);
  }, 120_000);
});
