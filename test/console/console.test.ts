/**
 * The web console in a real browser (Debian's Chromium through puppeteer-core): an array with
 * two portals and the admin API, an initiator logged in through the first portal and writing.
 * The page shows the target, its LU, the session and its path, the ALUA matrix and non-zero I/O
 * rates; a state changed from the page (after its confirmation dialog; cancelling changes
 * nothing) is what GET /v1/alua and the initiator (UNIT ATTENTION 2A/06, then REPORT TARGET PORT
 * GROUPS) see; changes made elsewhere (an API call, a second login) reach the page through
 * GET /v1/events without a reload. The splitter group of GET /v1/groups is shown and verified
 * from the page; without that route the panel stays hidden. Every page must paint; first paint
 * is read with the Performance API and written with a screenshot to results/ (the 300 ms goal is
 * judged by tools/bench/console-paint.ts, a benchmark, not here).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'puppeteer-core';
// @ts-expect-error plain JavaScript build script (no declarations)
import { buildConsole } from '../../src/admin/console/build.mjs';
import { ScsiDevice } from '../../src/initiator/index.ts';
import { startAdmin } from '../admin/rig.ts';
import type { AdminRig } from '../admin/rig.ts';
import { FIRST_PAINT, findChromium, launch } from './browser.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const RESULTS = path.join(ROOT, 'results');
const IQN = 'iqn.2026-12.dev.arraysim:console';
const HOST = 'iqn.2026-12.test:console-host';
const HOST2 = 'iqn.2026-12.test:console-host-b';
const yaml = `
portals:
  - listen: 127.0.0.1:0
  - listen: 127.0.0.1:0
alua:
  groups:
    - id: 1
      state: active/optimized
      preferred: true
    - id: 2
      state: active/non-optimized
targets:
  - name: ${IQN}
    luns: [64MiB, 1TiB]
splitters:
  - name: array
    spec: xcopy=ignore
groups:
  - name: cg1
    splitter: array
    luns: [0]
    journal: 64MiB
`;

const chromium = findChromium();
if ('missing' in chromium) console.warn(`console browser test skipped: ${chromium.missing}`);

describe.skipIf('missing' in chromium)('web console in Chromium', () => {
  let rig: AdminRig;
  let browser: Browser;
  let page: Page;
  let dev: ScsiDevice;
  let io: ScsiDevice;
  let writing = true;
  let writer: Promise<void>;

  beforeAll(async () => {
    await buildConsole(ROOT);
    rig = await startAdmin(yaml);
    const url = `iscsi://127.0.0.1:${rig.portals[0]}/${IQN}/0`;
    dev = await ScsiDevice.open(url, { initiatorName: HOST });
    await dev.clearUnitAttentions(); // power on / reset, reported once after login
    // Steady writes to LUN 0 from a second session of the same host through the same portal
    // (unit attentions are per I_T nexus: this one's do not consume those `dev` checks for).
    io = await ScsiDevice.open(url, { initiatorName: HOST });
    await io.clearUnitAttentions();
    const block = Buffer.alloc(64 * 1024, 0x5a);
    writer = (async () => {
      for (let i = 0; writing; i++) {
        // A UNIT ATTENTION answer (the ALUA change below) is fine: the next write goes on.
        await io.write(BigInt((i * 128) % 65536), block).catch(() => undefined);
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
    browser = await launch((chromium as { path: string }).path);
    page = await browser.newPage();
  }, 60_000);

  afterAll(async () => {
    writing = false;
    await writer?.catch(() => undefined);
    await browser?.close();
    await io?.close();
    await dev?.close();
    await rig?.close();
  });

  const cell = (tpg: number, host: string) =>
    `#alua [data-target="${IQN}"] tr[data-tpg="${tpg}"] td[data-host="${host}"]`;
  const cellState = (tpg: number, host: string) => page.$eval(cell(tpg, host), (el) => (el as HTMLElement).dataset.state);

  /** Navigation start to first paint etc., read in the page with the Performance API. */
  async function timing(p: Page) {
    const firstContentfulPaintMs = await p.evaluate(FIRST_PAINT) as number;
    return { ...await p.evaluate(() => {
      const nav = performance.getEntriesByType('navigation')[0] as PerformanceNavigationTiming;
      const at = (n: string) => performance.getEntriesByName(n)[0]?.startTime ?? null;
      return {
        firstPaintMs: at('first-paint'), withDataMs: at('console-data'),
        responseEndMs: nav.responseEnd,
        transferBytes: performance.getEntriesByType('resource').reduce((n, r) => n + (r as PerformanceResourceTiming).transferSize, nav.transferSize),
      };
    }), firstContentfulPaintMs };
  }

  it('paints from its first response, small on the wire; paint times recorded, judged by the bench', async () => {
    // Wall-clock goals are a benchmark's (tools/bench/console-paint.ts judges the 300 ms goal on
    // the median of fresh browsers); here the page must paint at all, and every figure is written
    // to results/console-timing.json. The browser's first page pays for starting its renderer and
    // reading the system's fonts (cold); then five fresh pages without the HTTP cache.
    await page.goto(`${rig.base}/`, { waitUntil: 'load' });
    await page.waitForSelector('body[data-ready="true"]', { timeout: 10_000 });
    const cold = await timing(page);
    const fresh: Awaited<ReturnType<typeof timing>>[] = [];
    for (let i = 0; i < 5; i++) {
      const p = await browser.newPage();
      await p.setCacheEnabled(false);
      await p.goto(`${rig.base}/`, { waitUntil: 'load' });
      await p.waitForSelector('body[data-ready="true"]', { timeout: 10_000 });
      fresh.push(await timing(p));
      await p.close();
    }
    const fcp = fresh.map((t) => t.firstContentfulPaintMs).sort((a, b) => a - b);
    const result = { cold, fresh, firstContentfulPaintMs: { best: fcp[0], median: fcp[Math.floor(fcp.length / 2)] }, loadAverage: os.loadavg()[0], cores: os.cpus().length };
    mkdirSync(RESULTS, { recursive: true });
    writeFileSync(path.join(RESULTS, 'console-timing.json'), `${JSON.stringify(result, null, 2)}\n`);
    console.log(`console first contentful paint, ms from navigation start: cold ${cold.firstContentfulPaintMs}, fresh pages ${fcp.join(', ')}; with data ${fresh.map((t) => t.withDataMs).join(', ')}; ${fresh[0].transferBytes} bytes transferred (load average ${os.loadavg()[0].toFixed(1)}; the 300 ms goal: npx tsx tools/bench/console-paint.ts)`);
    // Every page painted (a paint entry within 5 s of asking; NaN when none came).
    for (const t of [cold, ...fresh]) expect(Number.isFinite(t.firstContentfulPaintMs)).toBe(true);
    expect(fresh[0].transferBytes).toBeLessThan(40_000); // compressed: the script alone is 63 KiB
  }, 60_000);

  it('shows the target, its LUs with size and allocation, the session and its path', async () => {
    const target = await page.$eval(`#targets [data-target="${IQN}"]`, (el) => ({
      name: el.querySelector('.target-name')!.textContent,
      luns: [...el.querySelectorAll('tbody tr')].map((tr) => ({
        lun: (tr as HTMLElement).dataset.lun,
        size: tr.querySelector('[data-field="size"]')!.textContent,
        bytes: (tr.querySelector('[data-field="size"]') as HTMLElement).dataset.bytes,
        allocated: tr.querySelector('[data-field="allocated"]')!.textContent,
      })),
    }));
    expect(target.name).toBe(IQN);
    expect(target.luns.map((l) => [l.lun, l.size, l.bytes])).toEqual([['0', '64.0 MiB', String(64 << 20)], ['1', '1.00 TiB', String(2 ** 40)]]);
    // The same allocation figure the API reports, formatted.
    const st = await (await fetch(`${rig.base}/v1/status`)).json() as any;
    expect(st.targets[0].luns[1].allocatedBytes).toBe(0);
    expect(target.luns[1].allocated).toBe('0 B');

    const sessions = await page.$$eval(`#sessions tr[data-initiator="${HOST}"]`, (rows) => rows.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent)));
    expect(sessions).toHaveLength(2); // `dev` and the writer
    const session = sessions[0];
    // initiator, target, ISID, TSIH, portal, port group, path state, connections
    expect(session[0]).toBe(HOST);
    expect(session[1]).toBe(IQN);
    expect(session[4]).toBe(`127.0.0.1:${rig.portals[0]}`);
    expect(session[5]).toBe('1');
    expect(session[6]).toBe('AO');
  });

  it('shows the ALUA matrix: port groups by host, coloured by state', async () => {
    const matrix = await page.$$eval(`#alua [data-target="${IQN}"] tbody tr`, (rows) => rows.map((tr) => ({
      tpg: (tr as HTMLElement).dataset.tpg,
      cells: [...tr.querySelectorAll('td.cell')].map((td) => [(td as HTMLElement).dataset.host, (td as HTMLElement).dataset.state,
        getComputedStyle(td.querySelector('.state')!).backgroundColor]),
    })));
    expect(matrix.map((r) => r.tpg)).toEqual(['1', '2']);
    expect(matrix[0].cells.map((c) => c.slice(0, 2))).toEqual([['', 'active/optimized'], [HOST, 'active/optimized']]);
    expect(matrix[1].cells.map((c) => c.slice(0, 2))).toEqual([['', 'active/non-optimized'], [HOST, 'active/non-optimized']]);
    // Each state its own colour (style.css: --ao #1f9d55, --ano #8bc34a).
    expect(matrix[0].cells[0][2]).toBe('rgb(31, 157, 85)');
    expect(matrix[1].cells[0][2]).toBe('rgb(139, 195, 74)');
  });

  it('charts I/O rates taken from the API counters', async () => {
    // Two samples a second apart at least; the writer keeps LUN 0 and portal 1 busy.
    await page.waitForFunction(() => {
      const td = document.querySelector('#targets tr[data-lun="0"] td:nth-child(6)');
      return td && Number(td.textContent) > 0;
    }, { timeout: 10_000 });
    const rates = await page.$$eval('#targets tbody tr', (rows) => rows.map((tr) => tr.querySelectorAll('td')[5].textContent));
    expect(Number(rates[0])).toBeGreaterThan(0);
    expect(rates[1]).toBe('0.00'); // LUN 1 is idle: its counters do not move
    // Both charts are drawn, with a series per portal and per LU.
    const legends = await page.$$eval('.chart', (charts) => charts.map((c) => [...c.querySelectorAll('.u-legend .u-series .u-label')].map((l) => l.textContent)));
    expect(legends[0]).toEqual(['Time', `127.0.0.1:${rig.portals[0]}`, `127.0.0.1:${rig.portals[1]}`]);
    // The group's copy `local` has its own target (README "Splitter and replicas", image access): its LU is charted too.
    expect(legends[1]).toEqual(['Time', 'console LUN 0', 'console LUN 1', 'console-local LUN 0']);
  });

  it('cancelling the confirmation changes nothing', async () => {
    await page.click(`${cell(1, HOST)} button`);
    await page.waitForSelector('#confirm[open]');
    await page.select('#confirm-state', 'standby');
    await page.click('#confirm-cancel');
    await page.waitForSelector('#confirm:not([open])');
    const a = await (await fetch(`${rig.base}/v1/alua`)).json() as any;
    expect(a.targets[0].groups[0].hosts).toEqual({});
    expect(a.targets[0].groups[0].state).toBe('active/optimized');
    expect(await cellState(1, HOST)).toBe('active/optimized');
  });

  it('an ALUA change from the page reaches the API and the logged-in initiator', async () => {
    await page.click(`${cell(1, HOST)} button`);
    await page.waitForSelector('#confirm[open]');
    expect(await page.$eval('#confirm-what', (el) => el.textContent)).toContain(HOST);
    await page.select('#confirm-state', 'active/non-optimized');
    await page.click('#confirm-ok');
    await page.waitForSelector('#confirm:not([open])');
    await page.waitForFunction((sel) => (document.querySelector(sel) as HTMLElement | null)?.dataset.state === 'active/non-optimized', {}, cell(1, HOST));

    const a = await (await fetch(`${rig.base}/v1/alua`)).json() as any;
    expect(a.targets[0].groups[0].hosts).toEqual({ [HOST]: 'active/non-optimized' });
    expect(a.targets[0].groups[0].state).toBe('active/optimized'); // only this host's view moved

    // The host hears of it (SPC-5 §5.16.2.6: ASYMMETRIC ACCESS STATE CHANGED) and reads the new state.
    const { unitAttentions } = await dev.clearUnitAttentions();
    expect(unitAttentions.map((s) => [s.asc, s.ascq])).toContainEqual([0x2a, 0x06]);
    const rtpg = await dev.reportTargetPortGroups();
    expect(rtpg.kind).toBe('good');
    const groups = rtpg.kind === 'good' ? rtpg.value : [];
    expect(groups.find((g) => g.id === 1)?.stateName).toBe('active/non-optimized');
    expect(groups.find((g) => g.id === 2)?.stateName).toBe('active/non-optimized');

    // The page's path column follows, and the stream's event is listed with its reason.
    expect(await page.$$eval(`#sessions tr[data-initiator="${HOST}"] [data-field="path-state"]`, (els) => els.map((el) => el.textContent))).toEqual(['ANO', 'ANO']);
    await page.waitForFunction(() => [...document.querySelectorAll('#events li[data-type="alua.state"]')].some((li) => /TPG 1 for .* active\/non-optimized .*console/.test(li.textContent ?? '')), { timeout: 5000 });
  });

  it('changes made elsewhere reach the page live through /v1/events, without a reload', async () => {
    await page.evaluate(() => { (window as unknown as { marker: number }).marker = 42; });
    const r = await fetch(`${rig.base}/v1/alua`, { method: 'POST', body: JSON.stringify({ tpg: 2, state: 'standby', reason: 'from a script' }) });
    expect(r.status).toBe(200);
    await page.waitForFunction((sel) => (document.querySelector(sel) as HTMLElement | null)?.dataset.state === 'standby', { timeout: 5000 }, cell(2, ''));
    expect(await page.$eval('#events', (el) => el.textContent)).toContain('from a script');

    // A second host logs in through the second portal: its session, path and matrix column appear.
    const dev2 = await ScsiDevice.open(`iscsi://127.0.0.1:${rig.portals[1]}/${IQN}/0`, { initiatorName: HOST2 });
    try {
      await page.waitForSelector(`#sessions tr[data-initiator="${HOST2}"]`, { timeout: 5000 });
      const path2 = await page.$eval(`#sessions tr[data-initiator="${HOST2}"]`, (tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent));
      expect(path2[4]).toBe(`127.0.0.1:${rig.portals[1]}`);
      expect(path2[5]).toBe('2');
      expect(path2[6]).toBe('S');
      await page.waitForSelector(cell(2, HOST2), { timeout: 5000 });
      expect(await cellState(2, HOST2)).toBe('standby');
    } finally {
      await dev2.close();
    }
    await page.waitForFunction(() => !!document.querySelector('#events li[data-type="session.logout"]'), { timeout: 5000 });
    expect(await page.evaluate(() => (window as unknown as { marker?: number }).marker)).toBe(42);
    expect(await page.$eval('#stream', (el) => el.textContent)).toBe('events: live');

    await page.waitForSelector(`#sessions tr[data-initiator="${HOST2}"]`, { hidden: true, timeout: 5000 });
  });

  it('shows the splitter groups GET /v1/groups reports, and runs a verify after confirmation', async () => {
    // The groups table is rebuilt on every refresh: find the button and click it in one step in
    // the page, so a refresh between finding and clicking cannot detach it.
    const clickVerify = () => page.$eval('tr[data-group="cg1"] button.verify', (b) => (b as HTMLButtonElement).click());
    await page.waitForSelector('#groups-panel:not([hidden]) tr[data-group="cg1"]', { timeout: 5000 });
    const g = (await (await fetch(`${rig.base}/v1/groups`)).json() as any).groups[0];
    const row = await page.$eval('tr[data-group="cg1"]', (tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent));
    // group, transfer, journal, protection window, lag, ignored commands, last verify
    expect(row[0]).toBe('cg1');
    expect(row[1]).toBe(g.transfer);
    expect(row[2]).toMatch(/ \/ 64\.0 MiB$/);
    expect(row[4]).toMatch(/^local: \d+ rec, /);
    expect(row[5]).toBe('none');
    expect(row[6]).toBe('not run from here');

    await clickVerify();
    await page.waitForSelector('#ask[open]');
    await page.click('#ask-cancel');
    await page.waitForSelector('#ask:not([open])');
    expect(await page.$eval('tr[data-group="cg1"] [data-field="last-verify"]', (el) => el.textContent)).toBe('not run from here');

    await clickVerify();
    await page.waitForSelector('#ask[open]');
    await page.click('#ask-ok');
    await page.waitForFunction(() => /^consistent \(local\) at /.test(document.querySelector('tr[data-group="cg1"] [data-field="last-verify"]')?.textContent ?? ''), { timeout: 15_000 });

    mkdirSync(RESULTS, { recursive: true });
    await page.screenshot({ path: path.join(RESULTS, 'console.png'), fullPage: true });
  });

  it('the splitter panel stays hidden on an array without GET /v1/groups', async () => {
    const p2 = await browser.newPage();
    try {
      await p2.setRequestInterception(true);
      p2.on('request', (req) => {
        if (new URL(req.url()).pathname !== '/v1/groups') { void req.continue(); return; }
        void req.respond({ status: 404, contentType: 'application/json', body: JSON.stringify({ error: 'no route GET /v1/groups', field: null }) });
      });
      await p2.goto(`${rig.base}/`, { waitUntil: 'load' });
      await p2.waitForSelector('body[data-ready="true"]', { timeout: 10_000 });
      expect(await p2.$eval('#groups-panel', (el) => (el as HTMLElement).hidden)).toBe(true);
      expect(await p2.$eval(`#targets [data-target="${IQN}"] .target-name`, (el) => el.textContent)).toBe(IQN); // the rest works
    } finally {
      await p2.close();
    }
  });
});
