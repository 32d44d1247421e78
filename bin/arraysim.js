#!/usr/bin/env node
// Runs the compiled JavaScript in dist/ with plain node: no TypeScript loader at run time.
// dist/ is built by `npm ci` (the `prepare` script) and `npm run build`.
import { existsSync } from 'node:fs';

// In a source checkout (the package ships dist/, not src/), refuse to run a dist/ older than the
// sources: a test or a bench would otherwise measure yesterday's code without a word.
if (existsSync(new URL('../src/cli.ts', import.meta.url)) && existsSync(new URL('../tools/build.mjs', import.meta.url))) {
  const { whyStale } = await import('../tools/build.mjs');
  const why = whyStale();
  if (why) {
    process.stderr.write(`arraysim: ${why}: run \`npm run build\` first\n`);
    process.exit(1);
  }
}
await import('../dist/src/cli.js');
