#!/usr/bin/env node
/**
 * Builds the web console (src/admin/console/web) into dist/console/, at package time:
 *
 *   node src/admin/console/build.mjs     # npm run build:console; the package build calls buildConsole()
 *
 * esbuild bundles web/app.ts with uPlot, minified, into app.<hash>.js (the hash of its content,
 * so it can be cached for a year: a new build has a new name), and writes index.html naming it,
 * with the CSS inline. Every file is also written gzip- and
 * brotli-compressed (.gz, .br) so the admin API sends the smallest its client accepts without
 * compressing per request. manifest.json lists what the route serves (src/admin/routes/console.ts).
 *
 * Plain JavaScript, like the package build, so it runs before anything is compiled. esbuild does
 * not typecheck: web/tsconfig.json does (test/console/typecheck.test.ts runs it).
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '../../..');

const TYPES = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8' };

function hashOf(buf) {
  return createHash('sha256').update(buf).digest('hex').slice(0, 12);
}

/** Build into `outDir` (default dist/console under `root`); resolves with the manifest written. */
export async function buildConsole(root = ROOT, outDir = path.join(root, 'dist', 'console')) {
  // Imported here so that loading this module (to find the output folder) needs no esbuild.
  const { build } = await import('esbuild');
  const web = path.join(root, 'src', 'admin', 'console', 'web');
  const r = await build({
    entryPoints: [path.join(web, 'app.ts')],
    bundle: true,
    minify: true,
    format: 'iife',
    // What the console uses (EventSource, <dialog>, fetch, ES2020) is in every browser since 2022.
    target: ['es2020', 'chrome100', 'firefox100', 'safari15'],
    outdir: 'out',
    write: false,
    legalComments: 'none',
    logLevel: 'warning',
  });
  const outputs = {};
  for (const f of r.outputFiles) outputs[path.extname(f.path)] = Buffer.from(f.contents);
  if (!outputs['.js'] || !outputs['.css']) throw new Error('console build: esbuild gave no app.js or app.css');

  const files = [];
  const js = `app.${hashOf(outputs['.js'])}.js`;
  files.push({ name: js, body: outputs['.js'], immutable: true });
  // The style (a few KiB) goes inline: the page paints from its first response, without waiting
  // for a second request; the script is deferred and fills the page in.
  const css = outputs['.css'].toString('utf8');
  if (css.includes('</style')) throw new Error('console build: the CSS would end its <style> element');
  const html = readFileSync(path.join(web, 'index.html'), 'utf8')
    .replace('{{css}}', () => css.trim())
    .replace('{{js}}', `/console/${js}`);
  if (html.includes('{{')) throw new Error('console build: index.html has a placeholder left');
  files.push({ name: 'index.html', body: Buffer.from(html), immutable: false });

  // Written in place, each file through a temporary name and a rename, the manifest last, then
  // files of earlier builds removed: a server reading the folder (or a second build of the same
  // sources, as two test files may run) never sees a half-written file or a manifest naming a
  // file not there yet.
  mkdirSync(outDir, { recursive: true });
  const manifest = { built: new Date().toISOString(), files: [] };
  const keep = new Set(['manifest.json']);
  for (const f of files) {
    writeAtomic(path.join(outDir, f.name), f.body);
    writeAtomic(path.join(outDir, `${f.name}.gz`), gzipSync(f.body, { level: 9 }));
    writeAtomic(path.join(outDir, `${f.name}.br`), brotliCompressSync(f.body, {
      params: { [constants.BROTLI_PARAM_QUALITY]: 11, [constants.BROTLI_PARAM_SIZE_HINT]: f.body.length },
    }));
    for (const n of [f.name, `${f.name}.gz`, `${f.name}.br`]) keep.add(n);
    manifest.files.push({
      name: f.name, type: TYPES[path.extname(f.name)], etag: `"${hashOf(f.body)}"`, immutable: f.immutable, bytes: f.body.length,
    });
  }
  writeAtomic(path.join(outDir, 'manifest.json'), Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`));
  for (const name of readdirSync(outDir)) {
    if (!keep.has(name) && !name.includes('.tmp-')) rmSync(path.join(outDir, name), { force: true });
  }
  return manifest;
}

function writeAtomic(file, body) {
  const tmp = `${file}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
  writeFileSync(tmp, body);
  renameSync(tmp, file);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  buildConsole().then((m) => {
    const sizes = m.files.map((f) => `${f.name} ${(f.bytes / 1024).toFixed(1)} KiB`).join(', ');
    process.stdout.write(`console: dist/console/ (${sizes})\n`);
  }, (e) => {
    process.stderr.write(`console build failed: ${e.message}\n`);
    process.exit(1);
  });
}
