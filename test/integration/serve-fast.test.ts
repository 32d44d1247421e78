/**
 * The start-up path of `serve` (src/serve.ts): a plain command line is parsed by node's
 * util.parseArgs and the process reaches a listening portal without loading yargs, fastify,
 * prom-client or the YAML parser (they come after, or never); anything unusual is left to yargs,
 * whose help and messages stay the truth. The module list is recorded by a loader hook in the
 * child, and the same hook shows yargs loaded for `serve --help` (negative control).
 */
import { spawn } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseServeArgs } from '../../src/serve.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

describe('parseServeArgs', () => {
  it('takes a plain serve line as it is', () => {
    expect(parseServeArgs(['serve', '--listen', '127.0.0.1:3260', '--listen=127.0.0.1:3261', '--lun', '1TiB', '--lun', 'file:/x,size=1GiB', '--target', 'iqn.x:y', '--log-level', 'warn', '--admin', 'none', '--no-metrics']))
      .toEqual({ listen: ['127.0.0.1:3260', '127.0.0.1:3261'], lun: ['1TiB', 'file:/x,size=1GiB'], target: 'iqn.x:y', logLevel: 'warn', admin: 'none', metrics: false, config: undefined, splitter: undefined });
    expect(parseServeArgs(['serve'])).toEqual({ listen: undefined, lun: undefined, target: undefined, logLevel: undefined, admin: undefined, metrics: undefined, config: undefined, splitter: undefined });
    expect(parseServeArgs(['serve', '--config', 'a.yaml', '--listen', '127.0.0.1:0'])).toMatchObject({ config: 'a.yaml', listen: ['127.0.0.1:0'] });
  });

  it.each([
    [['status']], [['serve', '--help']], [['serve', '--lsiten', 'x']], [['serve', '--listen', 'a', 'b']], [['serve', 'extra']],
    [['serve', '--config', 'a.yaml', '--lun', '1GiB']], [['serve', '--target', 'a', '--target', 'b']], [['serve', '--metrics', '--no-metrics']],
    [['serve', '--logLevel', 'warn']], [['serve', '--metrics', 'false']],
  ])('leaves %j to yargs', (argv) => {
    expect(parseServeArgs(argv)).toBeNull();
  });
});

/**
 * Start bin/arraysim.js with a hook that appends every module URL it loads to a file; the URLs once
 * `until` is printed (or the process ends). `then(output)`, when given, runs once `until` is printed
 * and before the URLs are read (e.g. a request to the admin API).
 */
function loaded(args: string[], until: RegExp | null, then?: (out: string) => Promise<void>): Promise<string[]> {
  const file = path.join(tmpdir(), `arraysim-loaded-${process.pid}-${Math.random()}.txt`);
  // ESM loads through a loader hook; require() (CommonJS, createRequire) through Module._load.
  const hook = `data:text/javascript,${encodeURIComponent(`import Module, { register } from 'node:module';
import { appendFileSync } from 'node:fs';
const load = Module._load;
Module._load = function (request, ...rest) { appendFileSync(${JSON.stringify(file)}, 'require:' + request + '\\n'); return load.call(this, request, ...rest); };
register('data:text/javascript,' + encodeURIComponent(\`import { appendFileSync } from 'node:fs';
export async function load(url, ctx, next) { appendFileSync(${JSON.stringify(file)}, url + '\\\\n'); return next(url, ctx); }\`));`)}`;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', hook, 'bin/arraysim.js', ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let matched = false;
    const done = () => {
      let urls: string[] = [];
      try { urls = readFileSync(file, 'utf8').split('\n').filter(Boolean); } catch { /* nothing loaded */ }
      rmSync(file, { force: true });
      resolve(urls);
    };
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`no ${until} within 30 s: ${out}`)); }, 30_000);
    const look = (c: Buffer) => {
      out += c;
      if (until && until.test(out) && !matched) {
        matched = true;
        void (then ? then(out) : Promise.resolve()).catch(reject).finally(() => { clearTimeout(timer); child.kill('SIGKILL'); });
      }
    };
    child.stdout.on('data', look);
    child.stderr.on('data', look);
    child.on('exit', () => { clearTimeout(timer); done(); });
    child.on('error', reject);
  });
}

const pkg = (urls: string[], name: string) => urls.some((u) => u.includes(`/node_modules/${name}/`) || u === `require:${name}`);

describe('serve reaches a listening portal without the CLI framework', () => {
  it('loads neither yargs nor fastify nor the YAML parser before "portal listening"', async () => {
    const urls = await loaded(['serve', '--listen', '127.0.0.1:0', '--lun', '8MiB', '--admin', 'none'], /portal listening/);
    expect(urls.some((u) => u.endsWith('/dist/src/serve.js'))).toBe(true); // the hook saw the start
    expect(pkg(urls, 'pino')).toBe(true);
    expect(pkg(urls, 'yargs')).toBe(false);
    expect(pkg(urls, 'fastify')).toBe(false);
    expect(pkg(urls, 'yaml')).toBe(false);
  }, 60_000);

  it('negative control: a start from a YAML file does load the YAML parser, and the hook sees it', async () => {
    const urls = await loaded(['serve', '--config', 'examples/minimal.yaml', '--listen', '127.0.0.1:0', '--admin', 'none'], /portal listening/);
    expect(pkg(urls, 'yaml')).toBe(true);
    expect(pkg(urls, 'yargs')).toBe(false);
  }, 60_000);

  it('listens for the admin API without fastify, and loads it on the first request', async () => {
    const args = ['serve', '--listen', '127.0.0.1:0', '--lun', '8MiB', '--admin', '127.0.0.1:0'];
    const idle = await loaded(args, /"msg":"admin API listening"/);
    expect(idle.some((u) => u.endsWith('/dist/src/admin/front.js'))).toBe(true);
    expect(pkg(idle, 'fastify')).toBe(false);
    expect(pkg(idle, '@fastify/swagger')).toBe(false);
    expect(pkg(idle, 'ajv')).toBe(false);
    expect(pkg(idle, 'prom-client')).toBe(false); // built by the first scrape (StorageArray.metrics())
    // Negative control: the same start, asked once, has loaded them (and answered).
    let reply: unknown;
    let scrape = '';
    const asked = await loaded(args, /"msg":"admin API listening"/, async (out) => {
      const admin = /"admin":"(http:\/\/127\.0\.0\.1:\d+)"/.exec(out)![1];
      // The console's page comes from the front while the app is built, as the app's route sends it.
      const page = (r: Response) => ({ status: r.status, ...Object.fromEntries(['content-type', 'content-encoding', 'etag', 'cache-control', 'content-security-policy'].map((k) => [k, r.headers.get(k)])) });
      const before = page(await fetch(`${admin}/`, { headers: { 'accept-encoding': 'br' } }));
      const res = await fetch(`${admin}/v1/status`);
      expect(res.status).toBe(200);
      reply = await res.json();
      scrape = await (await fetch(`${admin}/metrics`)).text();
      const after = page(await fetch(`${admin}/`, { headers: { 'accept-encoding': 'br' } }));
      expect(before).toMatchObject({ status: 200, 'content-type': 'text/html; charset=utf-8', 'content-encoding': 'br' });
      expect(after).toEqual(before);
    });
    expect(reply).toMatchObject({ targets: [expect.objectContaining({ luns: [expect.anything()] })] });
    expect(scrape).toMatch(/^arraysim_lu_commands_total\{/m);
    expect(pkg(asked, 'fastify')).toBe(true);
    expect(pkg(asked, '@fastify/swagger')).toBe(true);
    expect(pkg(asked, 'prom-client')).toBe(true);
  }, 60_000);

  it('negative control: serve --help goes through yargs, and the hook sees it', async () => {
    const urls = await loaded(['serve', '--help'], null);
    expect(pkg(urls, 'yargs')).toBe(true);
  }, 60_000);
});
