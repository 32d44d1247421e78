/**
 * How the admin API serves the console's built files: the encoding chosen from Accept-Encoding
 * (brotli, gzip, or none; q=0 refuses), each encoding decoding to the same bytes, ETag and 304,
 * a year's caching for the hashed script and none for the page, 404 for anything else under
 * /console/, and the console's routes kept out of the OpenAPI document.
 */
import http from 'node:http';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
// @ts-expect-error plain JavaScript build script (no declarations)
import { buildConsole } from '../../src/admin/console/build.mjs';
import { chooseEncoding, defaultConsoleDir, loadConsole } from '../../src/admin/console/assets.ts';
import { startAdmin } from '../admin/rig.ts';
import type { AdminRig } from '../admin/rig.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

function get(url: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    http.get(url, { headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
    }).on('error', reject);
  });
}

describe('chooseEncoding (RFC 9110 §12.5.3)', () => {
  it.each([
    [undefined, 'identity'], ['', 'identity'], ['gzip', 'gzip'], ['gzip, deflate', 'gzip'], ['gzip, br', 'br'],
    ['br;q=0, gzip', 'gzip'], ['gzip;q=0, br;q=0', 'identity'], ['*', 'br'], ['*;q=0', 'identity'], ['gzip, *;q=0', 'gzip'],
    ['identity', 'identity'], ['br;q=0.5', 'br'], ['deflate', 'identity'], ['BR', 'br'], ['gzip;q=junk', 'identity'],
  ] as const)('%s → %s', (header, want) => {
    expect(chooseEncoding(header)).toBe(want);
  });
});

describe('the console\'s files', () => {
  it('are found in dist/console of the package, and a folder without a build has none', () => {
    expect(defaultConsoleDir()).toBe(path.join(ROOT, 'dist', 'console'));
    expect(loadConsole(mkdtempSync(path.join(os.tmpdir(), 'arraysim-noconsole-')))).toBeNull();
  });
});

describe('GET / and /console/:file', () => {
  let rig: AdminRig;
  beforeAll(async () => {
    await buildConsole(ROOT);
    rig = await startAdmin('portals:\n  - listen: 127.0.0.1:0\ntargets:\n  - name: iqn.2026-12.dev.arraysim:serve\n    luns: [8MiB]\n');
  }, 60_000);
  afterAll(async () => { await rig?.close(); });

  it('sends the page brotli, gzip or plain as asked, the same bytes each way, revalidated each time', async () => {
    const plain = await get(`${rig.base}/`);
    const br = await get(`${rig.base}/`, { 'accept-encoding': 'gzip, deflate, br' });
    const gz = await get(`${rig.base}/`, { 'accept-encoding': 'gzip' });
    expect([plain.status, br.status, gz.status]).toEqual([200, 200, 200]);
    expect(plain.headers['content-encoding']).toBeUndefined();
    expect(br.headers['content-encoding']).toBe('br');
    expect(gz.headers['content-encoding']).toBe('gzip');
    expect(brotliDecompressSync(br.body)).toEqual(plain.body);
    expect(gunzipSync(gz.body)).toEqual(plain.body);
    expect(br.body.length).toBeLessThan(plain.body.length / 2);
    expect(plain.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(plain.headers['cache-control']).toBe('no-cache');
    expect(plain.headers.vary).toBe('accept-encoding');
    expect(plain.body.toString()).toContain('<title>arraysim console</title>');

    const again = await get(`${rig.base}/`, { 'if-none-match': plain.headers.etag as string });
    expect(again.status).toBe(304);
    expect(again.body.length).toBe(0);
    const stale = await get(`${rig.base}/`, { 'if-none-match': '"not-this-one"' });
    expect(stale.status).toBe(200);
  });

  it('sends the script the page names, cached for a year; nothing else under /console/', async () => {
    const page = (await get(`${rig.base}/`)).body.toString();
    const src = /<script defer src="(\/console\/app\.[0-9a-f]{12}\.js)">/.exec(page)?.[1];
    expect(src).toBeDefined();
    const js = await get(`${rig.base}${src}`, { 'accept-encoding': 'br' });
    expect(js.status).toBe(200);
    expect(js.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(js.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    expect(brotliDecompressSync(js.body).length).toBeGreaterThan(10_000);
    for (const bad of ['/console/index.html', '/console/app.000000000000.js', '/console/manifest.json', '/console/..%2fmanifest.json']) {
      const r = await get(`${rig.base}${bad}`);
      expect(r.status, bad).toBe(404);
      expect(JSON.parse(r.body.toString()).error).toMatch(/^no console file /);
    }
  });

  it('the console is not API: its routes are not in the OpenAPI document', async () => {
    const doc = JSON.parse((await get(`${rig.base}/v1/openapi.json`)).body.toString());
    expect(Object.keys(doc.paths)).not.toContain('/');
    expect(Object.keys(doc.paths).filter((p) => p.startsWith('/console'))).toEqual([]);
    expect(Object.keys(doc.paths)).toContain('/v1/status'); // the document itself is there
  });
});
