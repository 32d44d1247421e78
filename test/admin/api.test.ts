/**
 * The admin API's routes from the outside, over HTTP on loopback: replies keep the shapes the
 * integration tests, the CLI and the VM harness read; every bad field gets a 400 that names it;
 * unknown routes get a JSON 404; and a route without a response schema is refused.
 */
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pino from 'pino';
import { AdminApi, ROUTES } from '../../src/admin/api.ts';
import { status } from '../../src/admin/routes/status.ts';
import { startAdmin } from './rig.ts';
import type { AdminRig } from './rig.ts';

const IQN = 'iqn.2026-11.dev.arraysim:api';
const yaml = `
portals:
  - listen: 127.0.0.1:0
  - listen: 127.0.0.1:0
targets:
  - name: ${IQN}
    luns: [16MiB, 8MiB]
`;

let rig: AdminRig;
beforeAll(async () => { rig = await startAdmin(yaml); });
afterAll(async () => { await rig?.close(); });

async function call(method: string, path: string, body?: string, headers: Record<string, string> = {}) {
  const r = await fetch(rig.base + path, { method, body, headers });
  return { status: r.status, type: r.headers.get('content-type'), json: await r.json() as any };
}

/** A raw HTTP/1.0 request as tools/vm/guest-tests/array.sh sends it through bash's /dev/tcp. */
function raw(method: string, path: string, body = ''): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(rig.port, '127.0.0.1');
    let out = '';
    s.on('data', (d) => { out += d; });
    s.on('end', () => resolve(out));
    s.on('error', reject);
    s.write(`${method} ${path} HTTP/1.0\r\nHost: arraysim\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
  });
}

describe('replies keep their shapes', () => {
  it('GET /v1/status is exactly what the array reports (no field dropped by the reply schema)', async () => {
    const r = await call('GET', '/v1/status');
    expect(r.status).toBe(200);
    expect(r.type).toMatch(/^application\/json/);
    expect(r.json).toEqual(JSON.parse(JSON.stringify(status({ array: rig.array } as any))));
    expect(r.json.portals).toHaveLength(2);
    expect(r.json.targets[0].luns.map((l: any) => l.blocks)).toEqual(['32768', '16384']);
    expect(Object.keys(r.json.portals[0].stats)).toEqual(['commands', 'reads', 'writes', 'readBytes', 'writeBytes', 'logins', 'errors']);
  });

  it('GET /v1/alua is every target\'s model as toJSON() gives it', async () => {
    const r = await call('GET', '/v1/alua');
    expect(r.status).toBe(200);
    const m = rig.array.scsiTargets.get(IQN)!.alua;
    expect(r.json).toEqual({ targets: [{ name: IQN, ...JSON.parse(JSON.stringify(m.toJSON())) }] });
  });

  it('the VM harness\'s HTTP/1.0 requests: status line 200 and the stats it greps', async () => {
    const st = await raw('GET', '/v1/status');
    expect(st.split('\r\n')[0]).toMatch(/ 200 /);
    expect(st.replace(/[ \n]/g, '')).toMatch(/"stats":\{"commands":[0-9]+,"reads":[0-9]+,"writes":[0-9]+/);
    const set = await raw('POST', '/v1/alua', '{"tpg":2,"state":"standby","reason":"guest array.sh","wait":true}');
    expect(set.split('\r\n')[0]).toMatch(/ 200 /);
    expect(JSON.parse(set.slice(set.indexOf('\r\n\r\n') + 4)).targets[0].groups[1].state).toBe('standby');
    await call('POST', '/v1/alua', '{"tpg":2,"state":"ao"}');
  });

  it('POST /v1/alua reads JSON whatever the Content-Type (curl -d sends form-urlencoded)', async () => {
    for (const type of ['application/json', 'application/x-www-form-urlencoded', 'text/plain']) {
      const r = await call('POST', '/v1/alua', '{"tpg":1,"state":"ano","wait":true}', { 'content-type': type });
      expect(r.status, type).toBe(200);
      expect(r.json.targets[0].groups[0].state).toBe('active/non-optimized');
    }
    await call('POST', '/v1/alua', '{"tpg":1,"state":"ao"}');
  });
});

describe('a bad request gets 400 naming the field', () => {
  const cases: [string, string, string | null, string][] = [
    ['{"tpg":"1","state":"ao"}', 'body/tpg must be integer', 'tpg', 'body'],
    ['{"tpg":1.5,"state":"ao"}', 'body/tpg must be integer', 'tpg', 'body'],
    ['{"tpg":70000,"state":"ao"}', 'body/tpg must be <= 65535', 'tpg', 'body'],
    ['{"state":"ao"}', 'body/tpg is required', 'tpg', 'body'],
    ['{"tpg":1}', 'body/state is required', 'state', 'body'],
    ['{"tpg":1,"state":"sideways"}', 'body/state must be one of active/optimized', 'state', 'body'],
    ['{"tpg":1,"state":"ao","prefered":true}', 'body/prefered is not a known field', 'prefered', 'body'],
    ['{"tpg":1,"clearHost":true}', 'body/host is required', 'host', 'body'],
    ['{"tpg":1,"state":"ao","host":""}', 'body/host must NOT have fewer than 1 characters', 'host', 'body'],
    ['{"tpg":1,"state":"ao","transitionMs":-1}', 'body/transitionMs must be >= 0', 'transitionMs', 'body'],
    ['{"tpg":1,"state":"ao","wait":"yes"}', 'body/wait must be boolean', 'wait', 'body'],
    ['[1,2]', 'body must be object', null, 'body'],
    ['{"tpg":1,', 'body is not JSON', null, 'body'],
    // What only the model knows, with the same shape:
    ['{"tpg":9,"state":"ao"}', 'no target port group 9 (have 1, 2)', 'tpg', 'body'],
    ['{"tpg":1,"state":"ao","target":"iqn.2026-11.x:none"}', 'no target iqn.2026-11.x:none', 'target', 'body'],
    ['{"tpg":1,"state":"transitioning"}', 'state transitioning cannot be requested', 'state', 'body'],
  ];
  it.each(cases)('%s → %s', async (body, error, field, part) => {
    const before = JSON.stringify((await call('GET', '/v1/alua')).json);
    const r = await call('POST', '/v1/alua', body, { 'content-type': 'application/json' });
    expect(r.status).toBe(400);
    expect(r.json.error.startsWith(error), r.json.error).toBe(true);
    expect(r.json.field).toBe(field);
    expect(r.json.in).toBe(part);
    // Refused means nothing changed.
    expect(JSON.stringify((await call('GET', '/v1/alua')).json)).toBe(before);
  });

  it('a body over 1 MiB: 413 in the same JSON shape', async () => {
    const r = await call('POST', '/v1/alua', JSON.stringify({ tpg: 1, state: 'ao', reason: 'x'.repeat(1.5 * 2 ** 20) }));
    expect(r.status).toBe(413);
    expect(r.json).toMatchObject({ field: null });
    expect(typeof r.json.error).toBe('string');
  });
});

describe('unknown routes', () => {
  // (GET / is the console: test/console/serve.test.ts)
  it.each([['GET', '/v1/nothing'], ['DELETE', '/v1/alua'], ['GET', '/nothing']])('%s %s → 404 JSON', async (method, path) => {
    const r = await call(method, path);
    expect(r.status).toBe(404);
    expect(r.type).toMatch(/^application\/json/);
    expect(r.json).toEqual({ error: `no route ${method} ${path} (see GET /v1/openapi.json)`, field: null });
  });
});

describe('the route contract', () => {
  it('every route module registers with a response schema; a route without one is refused when it is added', async () => {
    expect(ROUTES.length).toBeGreaterThanOrEqual(4);
    const api = new AdminApi(rig.array, pino({ level: 'silent' }));
    expect(() => api.app.get('/v1/forgetful', async () => ({}))).toThrow(/admin route GET \/v1\/forgetful has no response schema/);
    expect(() => api.app.get('/v1/mindful', { schema: { response: { 200: { type: 'object' } } } }, async () => ({}))).not.toThrow();
    // Not API (static files, say): hidden from the document, and exempt.
    expect(() => api.app.get('/console/*', { schema: { hide: true } }, async () => 'page')).not.toThrow();
    await api.app.close();
  });
});
