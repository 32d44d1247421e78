/**
 * The console in front of an admin API that needs a bearer token (bound off loopback; here on
 * 127.0.0.1 with the token rule forced on, as src/admin/auth.ts lets tests do). The page and its
 * script are public (they hold no data: a browser cannot send a token on page load); every data
 * route, the event stream included, is refused without the token. In Chromium the page asks for
 * the token once, says so when a wrong one is refused, then reads the state and the live events
 * with `Authorization: Bearer` (events through fetch, since EventSource cannot send it); the token
 * stays in this tab's sessionStorage, so a reload does not ask again; the log never holds it.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser } from 'puppeteer-core';
// @ts-expect-error plain JavaScript build script (no declarations)
import { buildConsole } from '../../src/admin/console/build.mjs';
import { adminAccess } from '../../src/admin/auth.ts';
import { startAdmin } from '../admin/rig.ts';
import type { AdminRig } from '../admin/rig.ts';
import { findChromium, launch } from './browser.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const TOKEN = 'console-token-0123456789abcdef0123';
const IQN = 'iqn.2026-12.dev.arraysim:console-token';
const yaml = `portals:\n  - listen: 127.0.0.1:0\ntargets:\n  - name: ${IQN}\n    luns: [8MiB]\n`;

const chromium = findChromium();
if ('missing' in chromium) console.warn(`console token test skipped: ${chromium.missing}`);

describe('console with the admin API in token mode', () => {
  let rig: AdminRig;
  let browser: Browser | undefined;
  beforeAll(async () => {
    await buildConsole(ROOT);
    rig = await startAdmin(yaml, { access: adminAccess('127.0.0.1', { forceToken: true, envToken: TOKEN }) });
  }, 60_000);
  afterAll(async () => { await browser?.close(); await rig?.close(); });

  it('over HTTP: the page and its files are public; every data route and unknown path needs the token', async () => {
    const page = await fetch(`${rig.base}/`);
    expect(page.status).toBe(200);
    const html = await page.text();
    const script = /src="(\/console\/[^"]+)"/.exec(html)?.[1];
    expect(script).toBeDefined();
    expect((await fetch(rig.base + script!)).status).toBe(200);
    expect((await fetch(`${rig.base}/console/nothing.js`)).status).toBe(404); // public route, no such file: no data either
    for (const p of ['/v1/status', '/v1/alua', '/v1/events', '/v1/openapi.json', '/metrics', '/v1/nothing', '/console']) {
      expect((await fetch(rig.base + p)).status, p).toBe(401);
    }
    const ok = await fetch(`${rig.base}/v1/status`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(ok.status).toBe(200);
  });

  it.skipIf('missing' in chromium)('in Chromium: asks once, refuses a wrong token with a message, then live with the right one; a reload does not ask', async () => {
    browser = await launch((chromium as { path: string }).path);
    const page = await browser.newPage();
    await page.goto(`${rig.base}/`, { waitUntil: 'load' });
    await page.waitForSelector('#login[open]', { timeout: 10_000 });
    expect(await page.$eval('body', (b) => b.dataset.ready)).toBeUndefined(); // no data without the token
    await page.type('#login-token', 'not-the-token-0000000000');
    await page.click('#login-ok');
    await page.waitForFunction(() => {
      const e = document.getElementById('login-error');
      return !!document.querySelector('#login[open]') && !!e && !e.hidden && /refused/.test(e.textContent ?? '');
    }, { timeout: 10_000 });
    await page.type('#login-token', TOKEN);
    await page.click('#login-ok');
    await page.waitForSelector('body[data-ready="true"]', { timeout: 15_000 });
    await page.waitForSelector('#stream[data-state="open"]', { timeout: 10_000 });
    expect(await page.$eval('#targets', (el) => el.textContent)).toContain(IQN);
    expect(await page.evaluate(() => sessionStorage.getItem('arraysim.adminToken'))).toBe(TOKEN);
    // Live: a change made through the API reaches the page over the token-carrying event stream.
    const set = await fetch(`${rig.base}/v1/alua`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: '{"tpg":1,"state":"ano"}' });
    expect(set.status).toBe(200);
    await page.waitForFunction(() => [...document.querySelectorAll('#events li[data-type="alua.state"]')].some((li) => /active\/non-optimized/.test(li.textContent ?? '')), { timeout: 10_000 });
    // The tab keeps the token: a reload reads the state without asking.
    await page.reload({ waitUntil: 'load' });
    await page.waitForSelector('body[data-ready="true"]', { timeout: 15_000 });
    expect(await page.$('#login[open]')).toBeNull();
    // Refusals were logged (the wrong token and the tokenless first calls), never the tokens.
    const log = rig.logText();
    expect(log).toContain('admin API request refused');
    expect(log).not.toContain(TOKEN);
    expect(log).not.toContain('not-the-token-0000000000');
  }, 90_000);
});
