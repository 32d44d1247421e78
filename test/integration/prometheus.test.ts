/**
 * A real Prometheus (Debian's `prometheus` package, installed when missing) scrapes arraysim's
 * /metrics on loopback every second while the test initiator drives I/O; its HTTP API must then
 * answer a rate() of commands (non-zero, and no more than was sent) and a histogram_quantile() of
 * read latency inside the histogram's bucket bounds. Negative controls: a series that does not
 * exist comes back empty, and the quantile of a class that saw no commands is NaN, not a number.
 * Prometheus listens on 127.0.0.1 on a free port, keeps its storage in a temporary directory, and
 * is stopped afterwards.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdminApi } from '../../src/admin/api.ts';
import { StorageArray } from '../../src/array.ts';
import { LATENCY_BUCKETS_SECONDS } from '../../src/metrics/latency.ts';
import { cdb10 } from '../helpers/cdb.ts';
import { ensureDebianCommand } from '../helpers/debian.ts';
import { TestInitiator } from '../helpers/initiator.ts';

const IQN = 'iqn.2026-11.dev.arraysim:prometheus';
const BS = 512;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => { const a = s.address() as net.AddressInfo; s.close(() => resolve(a.port)); });
  });
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface PromVector { metric: Record<string, string>; value: [number, string] }

let array: StorageArray;
let admin: AdminApi;
let prom: ChildProcess | null = null;
let promLog = '';
let promUrl = '';
let dir = '';

async function query(q: string): Promise<PromVector[]> {
  const r = await fetch(`${promUrl}/api/v1/query?query=${encodeURIComponent(q)}`);
  const j = (await r.json()) as { status: string; error?: string; data: { resultType: string; result: PromVector[] } };
  if (j.status !== 'success') throw new Error(`query ${q}: ${j.error}`);
  expect(j.data.resultType).toBe('vector');
  return j.data.result;
}

beforeAll(async () => {
  ensureDebianCommand('prometheus', 'prometheus');
  const log = pino({ level: 'silent' });
  array = await StorageArray.create({
    portals: [{ host: '127.0.0.1', port: 0, tpgt: 1, targetPortGroup: 1 }],
    targets: [{ name: IQN, luns: [{ spec: '64MiB' }] }],
    iscsi: { nopInterval: 0 }, logLevel: 'silent', metrics: true,
  }, log);
  await array.start();
  admin = new AdminApi(array, log);
  const adminPort = await admin.listen('127.0.0.1', 0);

  dir = mkdtempSync(path.join(tmpdir(), 'arraysim-prometheus-'));
  writeFileSync(path.join(dir, 'prometheus.yml'), [
    'global:',
    '  scrape_interval: 1s',
    '  evaluation_interval: 1s',
    'scrape_configs:',
    '  - job_name: arraysim',
    '    scrape_interval: 1s',
    '    scrape_timeout: 900ms',
    '    metrics_path: /metrics',
    '    static_configs:',
    `      - targets: ['127.0.0.1:${adminPort}']`,
    '',
  ].join('\n'));
  const port = await freePort();
  promUrl = `http://127.0.0.1:${port}`;
  prom = spawn('prometheus', [
    `--config.file=${path.join(dir, 'prometheus.yml')}`,
    `--storage.tsdb.path=${path.join(dir, 'data')}`,
    `--web.listen-address=127.0.0.1:${port}`,
    '--log.level=warn',
  ], { stdio: ['ignore', 'ignore', 'pipe'] });
  prom.stderr!.on('data', (d: Buffer) => { promLog = (promLog + d.toString()).slice(-4000); });
  for (let i = 0; ; i++) {
    if (prom.exitCode !== null) throw new Error(`prometheus exited ${prom.exitCode}: ${promLog}`);
    const ready = await fetch(`${promUrl}/-/ready`).then((r) => r.ok, () => false);
    if (ready) break;
    if (i > 150) throw new Error(`prometheus not ready after 30 s: ${promLog}`);
    await sleep(200);
  }
}, 900_000);

afterAll(async () => {
  if (prom && prom.exitCode === null) {
    const gone = new Promise((r) => prom!.once('exit', r));
    prom.kill('SIGTERM');
    await Promise.race([gone, sleep(10_000)]);
    if (prom.exitCode === null) prom.kill('SIGKILL');
  }
  await admin?.close();
  await array?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('a real Prometheus scraping arraysim', () => {
  it('answers a rate of commands and a latency quantile after some I/O; absent series stay empty', async () => {
    // The target is up before any I/O (one successful scrape).
    for (let i = 0; ; i++) {
      const up = await query('up{job="arraysim"}');
      if (up.length === 1 && up[0].value[1] === '1') break;
      if (i > 50) throw new Error(`arraysim never up in Prometheus: ${JSON.stringify(up)} ${promLog}`);
      await sleep(200);
    }

    // I/O from four sessions until Prometheus has seen it for a few scrapes.
    let sent = 0;
    let stop = false;
    const sessions = await Promise.all([0, 1, 2, 3].map(async (k) => {
      const ini = await TestInitiator.connect(array.config.portals[0].port);
      ini.isid = Buffer.from([0x80, 0, 0, 0, 0x50, k]);
      await ini.login(IQN, {}, `iqn.2026-11.test:prom-${k}`);
      await ini.scsi(0, [0, 0, 0, 0, 0, 0]); // the power-on unit attention
      return ini;
    }));
    const loops = sessions.map(async (ini, k) => {
      for (let i = 0; !stop; i++) {
        const lba = (k * 4096 + (i % 4096)) * 8;
        const r = i % 4 === 0
          ? await ini.scsi(0, cdb10(0x2a, lba, 8), { write: Buffer.alloc(8 * BS, k + 1) })
          : await ini.scsi(0, cdb10(0x28, lba, 8), { read: 8 * BS });
        if (r.status !== 0) throw new Error(`I/O failed: status ${r.status}`);
        sent++;
      }
    });
    const started = Date.now();
    let rate: PromVector[] = [];
    let quantile: PromVector[] = [];
    try {
      await sleep(4000);
      for (;;) {
        rate = await query('sum(rate(arraysim_portal_commands_total{job="arraysim"}[5s]))');
        quantile = await query('histogram_quantile(0.9, sum by (le) (rate(arraysim_command_duration_seconds_bucket{job="arraysim",class="read"}[5s])))');
        if (rate.length === 1 && Number(rate[0].value[1]) > 0 && quantile.length === 1 && Number.isFinite(Number(quantile[0].value[1]))) break;
        if (Date.now() - started > 30_000) throw new Error(`no rate after 30 s: ${JSON.stringify({ rate, quantile })} ${promLog}`);
        await sleep(500);
      }
    } finally {
      stop = true;
      await Promise.allSettled(loops);
      for (const s of sessions) s.close();
    }
    await Promise.all(loops); // an I/O error fails the test

    const cmdsPerSecond = Number(rate[0].value[1]);
    const elapsed = (Date.now() - started) / 1000;
    expect(cmdsPerSecond).toBeGreaterThan(0);
    // No more than was sent: the whole run's commands over the 5 s window is an upper bound.
    expect(cmdsPerSecond).toBeLessThanOrEqual((sent + 8) / Math.min(5, elapsed) * 1.5);

    const q = Number(quantile[0].value[1]);
    expect(q).toBeGreaterThan(0);
    expect(q).toBeLessThanOrEqual(LATENCY_BUCKETS_SECONDS.at(-1)!);

    // Negative controls: a series nobody exports, a portal that does not exist, and a class with
    // no commands (0/0 in every bucket: NaN, which the finite check above would have refused).
    expect(await query('arraysim_no_such_metric_total')).toEqual([]);
    expect(await query('rate(arraysim_portal_commands_total{portal="127.0.0.1:1"}[5s])')).toEqual([]);
    const vaai = await query('histogram_quantile(0.9, sum by (le) (rate(arraysim_command_duration_seconds_bucket{job="arraysim",class="vaai"}[5s])))');
    expect(vaai).toHaveLength(1);
    expect(vaai[0].value[1]).toBe('NaN');
  }, 120_000);
});
