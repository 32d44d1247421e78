/**
 * Writes docker-compose.yml and docker/{site-a,site-b}.yaml, docker/initiator.sh from
 * src/lab/compose.ts (the `lab up` topology as containers):
 *
 *   npx tsx tools/compose.ts          # write the files
 *   npx tsx tools/compose.ts --check  # exit 1 if a committed file differs from what would be written
 *
 * test/lab/compose.test.ts runs the same comparison.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { composeFiles } from '../src/lab/compose.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const check = process.argv.includes('--check');
let stale = 0;
for (const f of composeFiles()) {
  const abs = path.join(root, f.path);
  const now = existsSync(abs) ? readFileSync(abs, 'utf8') : null;
  if (now === f.text) continue;
  if (check) { console.error(`${f.path}: differs from src/lab/compose.ts's output`); stale++; continue; }
  mkdirSync(path.dirname(abs), { recursive: true });
  writeFileSync(abs, f.text);
  if (f.path.endsWith('.sh')) chmodSync(abs, 0o755);
  console.log(`wrote ${f.path}`);
}
process.exitCode = stale ? 1 : 0;
