/**
 * The web console (src/admin/console): not API, so its routes are hidden (no reply schema, not in
 * the OpenAPI document).
 *   GET /                 the page (index.html; revalidated every time: it names the current build)
 *   GET /console/:file    its script and style, named by content hash and cached for a year
 * They hold no data, so they are public even when the API needs a bearer token (off loopback: a
 * page load cannot send one); the page asks for the token and sends it on every data request
 * (web/auth.ts). Everything else, unknown paths included, stays behind the token check.
 * Each is sent brotli- or gzip-compressed as the client accepts (compressed at build time), with
 * an ETag for conditional requests. Before the console is built (`npm run build:console`) / says so.
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { IncomingHttpHeaders } from 'node:http';
import type { AdminDeps } from '../api.ts';
import { chooseEncoding, defaultConsoleDir, loadConsole } from '../console/assets.ts';
import type { ConsoleFile } from '../console/assets.ts';

const HIDDEN = { schema: { hide: true }, config: { public: true } } as const;

const SECURITY_HEADERS = {
  'x-content-type-options': 'nosniff',
  // uPlot sizes its canvas with inline styles; nothing else inline, nothing from elsewhere.
  'content-security-policy': "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
  'referrer-policy': 'no-referrer',
} as const;

export interface ConsoleReply {
  status: number;
  headers: Record<string, string>;
  body?: Buffer | string;
}

/**
 * The console's files, read on the first request (the array starts without waiting for the
 * console), and the reply to a GET of `/` or `/console/<file>` (null for any other path). Plain
 * node types: the fastify routes below send it, and so does the admin API's front
 * (../front.ts) while the app is still being built, so that a browser's first page does not wait for it.
 */
export function consoleFiles(dir = defaultConsoleDir()): (path: string, headers: IncomingHttpHeaders) => ConsoleReply | null {
  let files: Map<string, ConsoleFile> | null = null;
  const get = (name: string): ConsoleFile | undefined => (files ??= loadConsole(dir))?.get(name);
  return (path, headers) => {
    let f: ConsoleFile | undefined;
    if (path === '/') {
      f = get('index.html');
      if (!f) {
        return {
          status: 503, headers: { 'content-type': 'text/plain; charset=utf-8' },
          body: `The console is not built (no ${dir}/manifest.json): run \`npm run build:console\`. The API is at /v1/openapi.json.\n`,
        };
      }
    } else if (path.startsWith('/console/') && !path.slice(9).includes('/')) {
      const name = decodeURIComponent(path.slice(9));
      f = name === 'index.html' ? undefined : get(name);
      if (!f) return { status: 404, headers: { 'content-type': 'application/json; charset=utf-8' }, body: JSON.stringify({ error: `no console file ${name}`, field: null }) };
    } else {
      return null;
    }
    const h: Record<string, string> = {
      vary: 'accept-encoding', etag: f.etag, 'cache-control': f.immutable ? 'public, max-age=31536000, immutable' : 'no-cache', ...SECURITY_HEADERS,
    };
    if (headers['if-none-match'] === f.etag) return { status: 304, headers: h };
    const enc = chooseEncoding(headers['accept-encoding']);
    if (enc !== 'identity') h['content-encoding'] = enc;
    return { status: 200, headers: { ...h, 'content-type': f.type }, body: f.bodies[enc] };
  };
}

export function register(app: FastifyInstance, _deps: AdminDeps): void {
  const reply = consoleFiles();
  const send = (r: ConsoleReply, res: FastifyReply) => res.code(r.status).headers(r.headers).send(r.body);
  app.get('/', HIDDEN, async (req, res) => send(reply('/', req.headers)!, res));
  app.get<{ Params: { file: string } }>('/console/:file', HIDDEN, async (req, res) => send(reply(`/console/${encodeURIComponent(req.params.file)}`, req.headers)!, res));
}
