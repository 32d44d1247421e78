/**
 * Who may use the admin API: open on loopback, a bearer token anywhere else. The decision is
 * tested as a function (no test binds off loopback); the token path is tested over HTTP on
 * 127.0.0.1 with the token rule forced on, and `serve` is shown refusing to start without a token
 * for an address it never gets to bind (192.0.2.1 is TEST-NET-1, RFC 5737).
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminAccess, bearerMatches, isLoopback } from '../../src/admin/auth.ts';
import { SseClient, startAdmin } from './rig.ts';
import type { AdminRig } from './rig.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const TOKEN = 'c0ffee-0123456789abcdef0123456789abcdef';

function run(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const clean = { ...process.env };
  delete clean.ARRAYSIM_ADMIN_TOKEN;
  return new Promise((resolve) => {
    execFile(process.execPath, ['bin/arraysim.js', ...args], { cwd: root, env: { ...clean, ...env }, timeout: 20_000 },
      (err, stdout, stderr) => resolve({ code: err ? (typeof err.code === 'number' ? err.code : null) : 0, stdout, stderr }));
  });
}

describe('isLoopback', () => {
  it.each(['127.0.0.1', '127.1.2.3', '127.255.255.254', '::1', '[::1]', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1', 'localhost', 'LocalHost'])('%s is loopback', (h) => {
    expect(isLoopback(h)).toBe(true);
  });
  it.each(['0.0.0.0', '::', '10.0.0.1', '192.168.1.10', '128.0.0.1', '126.255.255.255', '::2', 'fe80::1', '::ffff:10.0.0.1', 'array.example', '127.0.0.1.example'])('%s is not', (h) => {
    expect(isLoopback(h)).toBe(false);
  });
});

describe('adminAccess: the token requirement', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'arraysim-token-'));
  const file = path.join(dir, 'token');
  writeFileSync(file, `${TOKEN}\n`);

  it('loopback is open, with or without a token around', () => {
    expect(adminAccess('127.0.0.1')).toEqual({ mode: 'open' });
    expect(adminAccess('::1', { envToken: TOKEN, tokenFile: file })).toEqual({ mode: 'open' });
  });
  it('off loopback without a token: one line that says what to do', () => {
    expect(() => adminAccess('0.0.0.0')).toThrow(/^admin API on 0\.0\.0\.0 is not loopback and needs a bearer token: set ARRAYSIM_ADMIN_TOKEN or admin\.tokenFile/);
    expect(() => adminAccess('10.1.2.3', { envToken: '   ' })).toThrow(/needs a bearer token/);
  });
  it('off loopback: the token from the environment, else from the file (trimmed)', () => {
    expect(adminAccess('10.1.2.3', { envToken: TOKEN })).toEqual({ mode: 'token', token: TOKEN });
    expect(adminAccess('10.1.2.3', { tokenFile: file })).toEqual({ mode: 'token', token: TOKEN });
    expect(adminAccess('10.1.2.3', { envToken: 'env-token-is-first-0000', tokenFile: file })).toEqual({ mode: 'token', token: 'env-token-is-first-0000' });
  });
  it('an unreadable token file, a short token, a token a header cannot carry: refused with the reason', () => {
    expect(() => adminAccess('10.1.2.3', { tokenFile: path.join(dir, 'missing') })).toThrow(/cannot read admin\.tokenFile .*missing: ENOENT/);
    expect(() => adminAccess('10.1.2.3', { envToken: 'short' })).toThrow(/at least 16 characters/);
    expect(() => adminAccess('10.1.2.3', { envToken: 'has a space in it, sadly' })).toThrow(/at least 16 characters of/);
  });
  it('forceToken applies the rule on loopback (the tests of the token path)', () => {
    expect(adminAccess('127.0.0.1', { forceToken: true, envToken: TOKEN })).toEqual({ mode: 'token', token: TOKEN });
    expect(() => adminAccess('127.0.0.1', { forceToken: true })).toThrow(/needs a bearer token/);
  });
});

describe('bearerMatches', () => {
  it('accepts exactly the token, in a Bearer header', () => {
    expect(bearerMatches(`Bearer ${TOKEN}`, TOKEN)).toBe('ok');
    expect(bearerMatches(`bearer ${TOKEN}`, TOKEN)).toBe('ok'); // the scheme is case-insensitive (RFC 7235 §2.1)
    expect(bearerMatches(undefined, TOKEN)).toBe('missing');
    expect(bearerMatches('Bearer', TOKEN)).toBe('missing');
    expect(bearerMatches(`Basic ${Buffer.from(`x:${TOKEN}`).toString('base64')}`, TOKEN)).toBe('missing');
    expect(bearerMatches(`Bearer ${TOKEN.slice(0, -1)}`, TOKEN)).toBe('wrong');
    expect(bearerMatches(`Bearer ${TOKEN}x`, TOKEN)).toBe('wrong');
    expect(bearerMatches(`Bearer ${TOKEN.toUpperCase()}`, TOKEN)).toBe('wrong');
  });
});

describe('token mode over HTTP (on 127.0.0.1, rule forced on)', () => {
  let rig: AdminRig;
  const yaml = 'targets:\n  - name: iqn.2026-11.dev.arraysim:auth\n    luns: [8MiB]\nportals:\n  - listen: 127.0.0.1:0\n';
  beforeAll(async () => { rig = await startAdmin(yaml, { access: adminAccess('127.0.0.1', { forceToken: true, envToken: TOKEN }) }); });
  afterAll(async () => { await rig?.close(); });

  const get = (p: string, auth?: string) => fetch(rig.base + p, { headers: auth ? { authorization: auth } : {} });

  it('401 without the token or with a wrong one, 200 with it; every route, the unknown ones too', async () => {
    for (const p of ['/v1/status', '/v1/alua', '/v1/openapi.json', '/v1/events', '/v1/nothing']) {
      const none = await get(p);
      expect(none.status, p).toBe(401);
      expect(none.headers.get('www-authenticate')).toBe('Bearer realm="arraysim"');
      expect(await none.json()).toEqual({ error: 'this admin API needs Authorization: Bearer <token> (ARRAYSIM_ADMIN_TOKEN)', field: null });
      const wrong = await get(p, `Bearer ${TOKEN}0`);
      expect(wrong.status, p).toBe(401);
      expect(wrong.headers.get('www-authenticate')).toMatch(/error="invalid_token"/);
    }
    expect((await get('/v1/status', `Bearer ${TOKEN}`)).status).toBe(200);
    expect((await get('/v1/nothing', `Bearer ${TOKEN}`)).status).toBe(404);
    const set = await fetch(`${rig.base}/v1/alua`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` }, body: '{"tpg":1,"state":"ano"}' });
    expect(set.status).toBe(200);
    const refused = await fetch(`${rig.base}/v1/alua`, { method: 'POST', body: '{"tpg":1,"state":"standby"}' });
    expect(refused.status).toBe(401);
    expect(rig.array.scsiTargets.get('iqn.2026-11.dev.arraysim:auth')!.alua.groups.get(1)!.state).toBe('active/non-optimized');
    const ev = await SseClient.open(`${rig.base}/v1/events`, { authorization: `Bearer ${TOKEN}` });
    expect(ev.status).toBe(200);
    await ev.until(() => ev.of('hello').length === 1);
    ev.close();
  });

  it('refusals are logged, without the token or what was sent', async () => {
    await get('/v1/status', 'Bearer not-the-token-but-close-1234');
    const log = rig.logText();
    const refusals = log.split('\n').filter((l) => l.includes('admin API request refused'));
    expect(refusals.length).toBeGreaterThanOrEqual(11);
    expect(refusals.some((l) => l.includes('"why":"wrong token"') && l.includes('"url":"/v1/status"'))).toBe(true);
    expect(refusals.some((l) => l.includes('"why":"no bearer token"'))).toBe(true);
    // Negative control: the check finds a string that is in the log.
    expect(log).toContain('admin API request refused');
    expect(log).not.toContain(TOKEN);
    expect(log).not.toContain('not-the-token-but-close-1234');
    expect(log.toLowerCase()).not.toContain('authorization');
  });

  it('the OpenAPI document says the API takes a bearer token and documents 401', async () => {
    const doc = await (await get('/v1/openapi.json', `Bearer ${TOKEN}`)).json() as any;
    expect(doc.components.securitySchemes.bearer).toEqual({ type: 'http', scheme: 'bearer' });
    expect(doc.security).toEqual([{ bearer: [] }]);
    expect(Object.keys(doc.paths['/v1/status'].get.responses).sort()).toEqual(['200', '400', '401']);
  });

  it('the CLI sends ARRAYSIM_ADMIN_TOKEN; without it the server\'s refusal is one line', async () => {
    const ok = await run(['status', '--admin', `127.0.0.1:${rig.port}`], { ARRAYSIM_ADMIN_TOKEN: TOKEN });
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.stdout).targets[0].name).toBe('iqn.2026-11.dev.arraysim:auth');
    const no = await run(['alua', 'show', '--admin', `127.0.0.1:${rig.port}`]);
    expect(no.code).toBe(1);
    expect(no.stderr.trim()).toBe('arraysim: this admin API needs Authorization: Bearer <token> (ARRAYSIM_ADMIN_TOKEN)');
  }, 30_000);
});

describe('serve off loopback', () => {
  it('without a token: exit 1, one line, nothing started', async () => {
    const r = await run(['serve', '--listen', '127.0.0.1:0', '--lun', '8MiB', '--admin', '192.0.2.1:4260']);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toEqual([
      'arraysim: admin API on 192.0.2.1 is not loopback and needs a bearer token: set ARRAYSIM_ADMIN_TOKEN or admin.tokenFile in the config (or use --admin 127.0.0.1:PORT, or --admin none)',
    ]);
  }, 30_000);

  it('admin.listen and admin.tokenFile from the YAML: a short token in the file is refused the same way', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'arraysim-admincfg-'));
    writeFileSync(path.join(dir, 'token'), 'tooshort\n');
    writeFileSync(path.join(dir, 'a.yaml'), 'portals:\n  - listen: 127.0.0.1:0\nadmin:\n  listen: 192.0.2.1:4260\n  tokenFile: token\n');
    const r = await run(['serve', '--config', path.join(dir, 'a.yaml')]);
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toBe(`arraysim: admin API token from admin.tokenFile ${path.join(dir, 'token')} must be at least 16 characters of A-Z a-z 0-9 - . _ ~ + / (e.g. openssl rand -hex 32)`);
  }, 30_000);
});
