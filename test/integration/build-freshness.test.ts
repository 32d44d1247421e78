/**
 * bin/arraysim.js runs dist/; in a source checkout it refuses a dist/ older than the sources, and
 * `node tools/build.mjs --if-stale` (the vitest setup, tools/test-all.sh) rebuilds exactly then.
 * Run on a small copy of the layout in a temp directory (the real bin, build script and
 * tsconfig files, a two-module src/ with a `.ts` import, node_modules linked), so that no other
 * test file sees a stale or half-built dist/.
 */
import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const tree = mkdtempSync(path.join(os.tmpdir(), 'arraysim-build-'));
afterAll(() => rmSync(tree, { recursive: true, force: true }));

function node(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, args, { cwd: tree, timeout: 60_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr }));
  });
}

/**
 * Write a file and set its modification time `agoS` seconds back: sources written long ago are
 * older than any build, ones written now (0) newer than the last build, whatever the clock's grain.
 */
function write(rel: string, text: string, agoS: number): void {
  const p = path.join(tree, rel);
  mkdirSync(path.dirname(p), { recursive: true });
  writeFileSync(p, text);
  const t = new Date(Date.now() - agoS * 1000);
  utimesSync(p, t, t);
}

function age(rel: string, agoS: number): void {
  const t = new Date(Date.now() - agoS * 1000);
  utimesSync(path.join(tree, rel), t, t);
}

describe('dist/ freshness', () => {
  mkdirSync(path.join(tree, 'bin'));
  mkdirSync(path.join(tree, 'tools'));
  copyFileSync(path.join(root, 'bin/arraysim.js'), path.join(tree, 'bin/arraysim.js'));
  copyFileSync(path.join(root, 'tools/build.mjs'), path.join(tree, 'tools/build.mjs'));
  copyFileSync(path.join(root, 'tsconfig.json'), path.join(tree, 'tsconfig.json'));
  copyFileSync(path.join(root, 'tsconfig.build.json'), path.join(tree, 'tsconfig.build.json'));
  writeFileSync(path.join(tree, 'package.json'), '{"type":"module"}\n');
  symlinkSync(path.join(root, 'node_modules'), path.join(tree, 'node_modules'));
  write('src/greet.ts', "export const greeting = (who: string): string => `hello ${who}`;\n", 600);
  write('src/cli.ts', "import { greeting } from './greet.ts';\nconsole.log(greeting('v1'));\n", 600);
  for (const f of ['bin/arraysim.js', 'tools/build.mjs', 'tsconfig.json', 'tsconfig.build.json', 'src', 'bin', 'tools']) age(f, 600);

  it('no build yet: the bin refuses, --if-stale builds (`.ts` imports rewritten), then the bin runs it', async () => {
    const before = await node(['bin/arraysim.js']);
    expect(before.code).toBe(1);
    expect(before.stderr).toBe('arraysim: dist/ has not been built: run `npm run build` first\n');
    const b = await node(['tools/build.mjs', '--if-stale']);
    expect(b.code, b.stderr + b.stdout).toBe(0);
    expect(b.stderr).toContain('build: dist/ has not been built; running tsc');
    const after = await node(['bin/arraysim.js']);
    expect([after.code, after.stdout]).toEqual([0, 'hello v1\n']);
  }, 60_000);

  it('fresh: --if-stale builds nothing', async () => {
    const b = await node(['tools/build.mjs', '--if-stale']);
    expect([b.code, b.stderr]).toEqual([0, '']);
  });

  it('an edited source: the bin names it and does not run the old code; --if-stale rebuilds', async () => {
    write('src/cli.ts', "import { greeting } from './greet.ts';\nconsole.log(greeting('v2'));\n", 0);
    const stale = await node(['bin/arraysim.js']);
    expect(stale.code).toBe(1);
    expect(stale.stderr).toBe('arraysim: src/cli.ts is newer than dist/: run `npm run build` first\n');
    expect(stale.stdout).toBe('');
    expect((await node(['tools/build.mjs', '--if-stale'])).code).toBe(0);
    expect((await node(['bin/arraysim.js'])).stdout).toBe('hello v2\n');
  }, 60_000);

  it('a deleted source (its directory changed) and a changed tsconfig count as stale too', async () => {
    write('src/unused.ts', 'export const x = 1;\n', 600);
    age('src', 600);
    expect((await node(['bin/arraysim.js'])).code).toBe(0);
    unlinkSync(path.join(tree, 'src/unused.ts'));
    expect((await node(['bin/arraysim.js'])).stderr).toBe('arraysim: src/ is newer than dist/: run `npm run build` first\n');
    age('src', 600);
    expect((await node(['bin/arraysim.js'])).code).toBe(0);
    age('tsconfig.build.json', 0);
    expect((await node(['bin/arraysim.js'])).stderr).toBe('arraysim: tsconfig.build.json is newer than dist/: run `npm run build` first\n');
  });

  it('a failed build (a type error) leaves dist/ stale, so the bin still refuses', async () => {
    write('src/cli.ts', "import { greeting } from './greet.ts';\nconsole.log(greeting(3));\n", 0);
    const b = await node(['tools/build.mjs', '--if-stale']);
    expect(b.code).toBe(1);
    expect(b.stdout).toMatch(/error TS2345/);
    expect((await node(['bin/arraysim.js'])).stderr).toBe('arraysim: src/cli.ts is newer than dist/: run `npm run build` first\n');
  }, 60_000);

  it('without src/ (the installed package) the bin runs dist/ without looking at any source', async () => {
    rmSync(path.join(tree, 'src'), { recursive: true });
    const r = await node(['bin/arraysim.js']);
    expect([r.code, r.stdout, r.stderr]).toEqual([0, 'hello v2\n', '']);
  });
});
