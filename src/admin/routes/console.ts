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
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
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

export function register(app: FastifyInstance, _deps: AdminDeps): void {
  const dir = defaultConsoleDir();
  let files: Map<string, ConsoleFile> | null = null;
  // Read on the first request, not at start-up (the array starts without waiting for the console).
  const get = (name: string): ConsoleFile | undefined => (files ??= loadConsole(dir))?.get(name);

  function send(req: FastifyRequest, reply: FastifyReply, f: ConsoleFile) {
    void reply.header('vary', 'accept-encoding')
      .header('etag', f.etag)
      .header('cache-control', f.immutable ? 'public, max-age=31536000, immutable' : 'no-cache')
      .headers(SECURITY_HEADERS);
    if (req.headers['if-none-match'] === f.etag) return reply.code(304).send();
    const enc = chooseEncoding(req.headers['accept-encoding']);
    if (enc !== 'identity') void reply.header('content-encoding', enc);
    return reply.type(f.type).send(f.bodies[enc]);
  }

  app.get('/', HIDDEN, async (req, reply) => {
    const page = get('index.html');
    if (!page) {
      return reply.code(503).type('text/plain; charset=utf-8')
        .send(`The console is not built (no ${dir}/manifest.json): run \`npm run build:console\`. The API is at /v1/openapi.json.\n`);
    }
    return send(req, reply, page);
  });

  app.get<{ Params: { file: string } }>('/console/:file', HIDDEN, async (req, reply) => {
    const f = req.params.file === 'index.html' ? undefined : get(req.params.file);
    if (!f) return reply.code(404).send({ error: `no console file ${req.params.file}`, field: null });
    return send(req, reply, f);
  });
}
