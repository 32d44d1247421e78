/**
 * The system's Chromium (Debian's `chromium` package; tools/test-all.sh installs it) driven by
 * puppeteer-core, which brings no browser of its own. `findChromium()` says where it is, or why
 * there is none, so a test can skip with that sentence.
 */
import { accessSync, constants } from 'node:fs';
import puppeteer from 'puppeteer-core';
import type { Browser } from 'puppeteer-core';

const CANDIDATES = ['/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome'];

export function findChromium(): { path: string } | { missing: string } {
  const env = process.env.ARRAYSIM_CHROMIUM;
  for (const p of env ? [env] : CANDIDATES) {
    try {
      accessSync(p, constants.X_OK);
      return { path: p };
    } catch { /* next */ }
  }
  return { missing: `no Chromium at ${env ?? CANDIDATES.join(', ')} (apt-get install chromium, or set ARRAYSIM_CHROMIUM)` };
}

export async function launch(executablePath: string): Promise<Browser> {
  return puppeteer.launch({
    executablePath,
    headless: true,
    // As root (CI, this machine) Chromium refuses to start with its sandbox.
    args: [...(process.getuid?.() === 0 ? ['--no-sandbox'] : []), '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run'],
    defaultViewport: { width: 1280, height: 900 },
  });
}

/**
 * First contentful paint in ms from navigation start, read in the page: waits for the entry (it is
 * recorded after the frame, which can come after `load` on a busy machine), NaN after 5 s without
 * one. A string, not a function: tsx's transform would name an inner function with a helper the
 * page does not have. Use as `await page.evaluate(FIRST_PAINT) as number`.
 */
export const FIRST_PAINT = `new Promise((resolve) => {
  const t0 = performance.now();
  const look = () => {
    const e = performance.getEntriesByName('first-contentful-paint')[0];
    if (e || performance.now() - t0 > 5000) resolve(e ? e.startTime : NaN);
    else setTimeout(look, 20);
  };
  look();
})`;
