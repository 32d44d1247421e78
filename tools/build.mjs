#!/usr/bin/env node
/**
 * Builds dist/ from src/ and protocol/ with tsc (tsconfig.build.json), then the web console into
 * dist/console/ (src/admin/console/build.mjs); bin/arraysim.js runs dist/.
 *
 *   node tools/build.mjs             # clean build (npm run build, and `prepare` on npm ci and npm pack)
 *   node tools/build.mjs --if-stale  # build only when a source is newer than the last build
 *                                    # (the vitest global setup and tools/test-all.sh call this)
 *
 * Plain JavaScript, so that it runs before anything is compiled and without tsx. A successful build
 * leaves dist/.built with the time the build started: a source saved during the build counts as
 * newer. With noEmitOnError a failed build writes nothing, so dist/ stays stale and says so.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
/** What the build reads: both source trees and the two tsconfig files. */
const INPUTS = ['src', 'protocol', 'tsconfig.json', 'tsconfig.build.json'];
const STAMP = path.join('dist', '.built');

/** Why dist/ under `root` does not reflect the sources (a sentence), or null when it does. */
export function whyStale(root = ROOT) {
  let built;
  try { built = statSync(path.join(root, STAMP)).mtimeMs; } catch { return 'dist/ has not been built'; }
  for (const input of INPUTS) {
    const newer = newerThan(root, input, built);
    if (newer) return `${newer} is newer than dist/`;
  }
  return null;
}

/** The first file under `rel` (a file or directory) modified after `time`, or null. */
function newerThan(root, rel, time) {
  const abs = path.join(root, rel);
  let st;
  try { st = statSync(abs); } catch { return null; }
  if (!st.isDirectory()) return st.mtimeMs > time ? rel : null;
  // A deleted or renamed file changes its directory's mtime, not any file's.
  if (st.mtimeMs > time) return `${rel}/`;
  for (const name of readdirSync(abs)) {
    const hit = newerThan(root, path.join(rel, name), time);
    if (hit) return hit;
  }
  return null;
}

export function build(root = ROOT, { clean = true } = {}) {
  const started = new Date();
  // A clean build drops files of deleted sources, so they do not end up in the package.
  if (clean) rmSync(path.join(root, 'dist'), { recursive: true, force: true });
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  const r = spawnSync(process.execPath, [tsc, '-p', path.join(root, 'tsconfig.build.json')], { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) return false;
  // The web console (esbuild, into dist/console/; src/admin/console/build.mjs says how).
  const consoleBuild = path.join(root, 'src', 'admin', 'console', 'build.mjs');
  if (existsSync(consoleBuild)) {
    const c = spawnSync(process.execPath, [consoleBuild], { cwd: root, stdio: 'inherit' });
    if (c.status !== 0) return false;
  }
  writeFileSync(path.join(root, STAMP), `${started.toISOString()}\n`);
  utimesSync(path.join(root, STAMP), started, started);
  return true;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const ifStale = process.argv.includes('--if-stale');
  const why = whyStale();
  if (ifStale && !why) process.exit(0);
  if (ifStale) process.stderr.write(`build: ${why}; running tsc -p tsconfig.build.json\n`);
  // --if-stale builds over the old dist/ rather than deleting it first: another process of this
  // checkout (a second vitest run) may be running it.
  process.exit(build(ROOT, { clean: !ifStale }) ? 0 : 1);
}
