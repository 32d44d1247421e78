/**
 * The CLI's admin verbs check what they send with the route's own schema: a bad --tpg or --state
 * is refused locally, with the server's words, exit 1, and no request made. A listener that
 * counts requests stands in for the server (and shows a good body does reach it).
 */
import { execFile } from 'node:child_process';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ALUA_SET_BODY } from '../../src/admin/routes/alua.ts';
import { checkBody } from '../../src/admin/validation.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const bodies: unknown[] = [];
let server: http.Server;
let admin: string;

beforeAll(async () => {
  server = http.createServer((req, res) => {
    let text = '';
    req.on('data', (d) => { text += d; });
    req.on('end', () => {
      bodies.push(text ? JSON.parse(text) : null);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"targets":[]}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  admin = `127.0.0.1:${(server.address() as { port: number }).port}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

function alua(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['bin/arraysim.js', 'alua', 'set', '--admin', admin, ...args], { cwd: root, timeout: 20_000 },
      (err, stdout, stderr) => resolve({ code: err ? (typeof err.code === 'number' ? err.code : null) : 0, stdout, stderr }));
  });
}

describe('arraysim alua set: the body is checked before it is sent', () => {
  it.each([
    [['--tpg', 'two', '--state', 'standby'], 'body/tpg must be integer'],
    [['--state', 'standby'], 'body/tpg is required'],
    [['--tpg', '1'], 'body/state is required'],
    [['--tpg', '1', '--state', 'sideways'], 'body/state must be one of active/optimized, active/non-optimized, standby, unavailable, offline, transitioning, ao, optimized, active-optimized, ano, non-optimized, active-non-optimized, s, u, o'],
    [['--tpg', '1', '--clear-host'], 'body/host is required'],
    [['--tpg', '1', '--state', 'ao', '--transition-ms', '-5'], 'body/transitionMs must be >= 0'],
  ])('%j → %s, exit 1, nothing sent', async (args, error) => {
    const before = bodies.length;
    const r = await alua(args);
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toBe(`arraysim: ${error}`);
    expect(bodies.length).toBe(before);
  }, 30_000);

  it('a good body is sent as checked (positive control: the listener does count requests)', async () => {
    const before = bodies.length;
    const r = await alua(['--tpg', '2', '--state', 'AO', '--host', 'iqn.2026-11.test:h', '--reason', 'cli']);
    expect(r.code).toBe(0);
    expect(bodies.length).toBe(before + 1);
    expect(bodies.at(-1)).toEqual({ tpg: 2, state: 'ao', host: 'iqn.2026-11.test:h', reason: 'cli', wait: true });
    expect(checkBody(ALUA_SET_BODY, bodies.at(-1))).toBeNull();
  }, 30_000);
});
