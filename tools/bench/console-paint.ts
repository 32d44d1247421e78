/**
 * What the console's first paint costs, against what a browser's first page costs anyway.
 *
 *   npx tsx tools/bench/console-paint.ts [--rounds 5] [--port 3490]
 *
 * Starts `node bin/arraysim.js serve --lun 1TiB` with the admin API (dist/, as `npx arraysim
 * serve` runs) and times its first request (which builds the admin app: src/admin/front.ts).
 * Then, each round, for each page below in a rotating order: a new headless Chromium (Debian's,
 * through puppeteer-core; a fresh profile each time) loads the page as its very first page ("first
 * page"), then the same page again in a new tab without the HTTP cache ("fresh tab", what
 * test/console/console.test.ts judges). First contentful paint is read in the page with the
 * Performance API, from navigation start.
 *   blank            a 60-byte page with one line of text, from a plain node server on loopback
 *   console          GET / of the admin API (the console: inline CSS, one deferred script)
 *   console, no js   the console's HTML as served, with its <script> element removed, from the
 *                    plain server: what the page costs before its script runs
 * If the first page of `blank` costs about what the first page of `console` does, the first
 * page's extra time is the browser's start (its renderer, fonts), not the console.
 */
import { spawn } from 'node:child_process';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { FIRST_PAINT, findChromium, launch } from '../../test/console/browser.ts';
import { Progress } from '../../src/progress.ts';
import { numOpt } from './target.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const ROUNDS = numOpt('rounds', 5);
const PORT = numOpt('port', 3490);
const ADMIN = PORT + 1000;

const median = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function main(): Promise<void> {
  const chromium = findChromium();
  if ('missing' in chromium) throw new Error(chromium.missing);
  const child = spawn(process.execPath, ['bin/arraysim.js', 'serve', '--listen', `127.0.0.1:${PORT}`, '--lun', '1TiB', '--admin', `127.0.0.1:${ADMIN}`, '--log-level', 'warn'],
    { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });
  const plain = http.createServer();
  try {
    const base = `http://127.0.0.1:${ADMIN}`;
    let firstMs = NaN;
    for (let i = 0; i < 600 && Number.isNaN(firstMs); i++) {
      const t0 = performance.now();
      try {
        const res = await fetch(`${base}/`, { headers: { 'accept-encoding': 'gzip' } });
        await res.arrayBuffer();
        firstMs = performance.now() - t0;
      } catch { await sleep(50); }
    }
    if (Number.isNaN(firstMs)) throw new Error('the admin API did not answer within 30 s');
    const t1 = performance.now();
    const html = await (await fetch(`${base}/`)).text(); // fetch undoes the content encoding
    const secondMs = performance.now() - t1;
    const noScript = html.replace(/<script[^>]*><\/script>/, '');
    if (noScript === html) throw new Error('the console page has no <script> element to remove');
    plain.on('request', (req, res) => {
      const body = req.url === '/no-js' ? noScript : '<!doctype html><title>blank</title><p>blank page</p>';
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' }).end(body);
    });
    await new Promise<void>((r) => plain.listen(0, '127.0.0.1', r));
    const plainBase = `http://127.0.0.1:${(plain.address() as { port: number }).port}`;
    const pages: [string, string][] = [['blank', `${plainBase}/blank`], ['console', `${base}/`], ['console, no js', `${plainBase}/no-js`]];

    const fcp = FIRST_PAINT;
    const samples = new Map<string, { first: number[]; fresh: number[] }>(pages.map(([n]) => [n, { first: [], fresh: [] }]));
    const progress = Progress.start({ label: 'console-paint', total: ROUNDS * pages.length, noun: 'browsers' });
    for (let r = 0; r < ROUNDS; r++) {
      for (let k = 0; k < pages.length; k++) {
        const [name, url] = pages[(r + k) % pages.length];
        const browser = await launch(chromium.path);
        try {
          const p1 = (await browser.pages())[0] ?? await browser.newPage();
          await p1.goto(url, { waitUntil: 'load' });
          const first = await p1.evaluate(fcp) as number;
          const p2 = await browser.newPage();
          await p2.setCacheEnabled(false);
          await p2.goto(url, { waitUntil: 'load' });
          const fresh = await p2.evaluate(fcp) as number;
          samples.get(name)!.first.push(first);
          samples.get(name)!.fresh.push(fresh);
          progress.note(`console-paint: round ${r + 1}/${ROUNDS} ${name}: first page ${first.toFixed(0)} ms, fresh tab ${fresh.toFixed(0)} ms (load ${os.loadavg()[0].toFixed(1)})`);
        } finally {
          await browser.close();
        }
        progress.tick();
      }
    }
    progress.done();
    const fmt = (xs: number[]) => `${median(xs).toFixed(0)}<br><sub>${xs.map((x) => x.toFixed(0)).join(' ')}</sub>`;
    console.log([
      `Console first contentful paint, ms from navigation start, medians of ${ROUNDS} fresh browsers (node ${process.version}, ${new Date().toISOString().slice(0, 16)}Z, load average ${os.loadavg().map((x) => x.toFixed(1)).join(' ')})`,
      `The admin API's first request (builds the app) ${firstMs.toFixed(0)} ms, the next ${secondMs.toFixed(0)} ms.`,
      '',
      `| page | first page of a new browser | fresh tab, same browser |`,
      `|---|---:|---:|`,
      ...pages.map(([n]) => `| ${n} | ${fmt(samples.get(n)!.first)} | ${fmt(samples.get(n)!.fresh)} |`),
      '',
      // The goal (issue 14): the console paints within 300 ms on loopback. Judged here, on the
      // median fresh tab, not in a unit test: a timed test judges the machine's other work.
      `Goal, console fresh tab under 300 ms: median ${median(samples.get('console')!.fresh).toFixed(0)} ms, ${median(samples.get('console')!.fresh) < 300 ? 'met' : 'NOT met'}; first page of a new browser ${median(samples.get('console')!.first).toFixed(0)} ms.`,
    ].join('\n'));
  } finally {
    plain.close();
    child.kill('SIGTERM');
  }
}

main().catch((err) => { console.error(err instanceof Error ? err.message : err); process.exit(1); });
