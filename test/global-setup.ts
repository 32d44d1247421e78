/**
 * vitest global setup: tests spawn `node bin/arraysim.js`, which runs dist/; rebuild dist/ first
 * when a source is newer than the last build, so that they test the code in the tree. Runs once
 * per vitest run, before any test file (and builds nothing when dist/ is current).
 */
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export default function setup(): void {
  execFileSync(process.execPath, ['tools/build.mjs', '--if-stale'], { cwd: root, stdio: 'inherit' });
}
