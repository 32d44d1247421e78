/**
 * The admin API: HTTP/JSON (fastify) so operators, scripts, the console and the scenario labs
 * drive a running array. Routes, one file per concern under ./routes/:
 *
 *   status.ts    GET  /v1/status        targets, LUNs, sessions, per-portal I/O counters
 *   alua.ts      GET  /v1/alua          every target's port groups
 *                POST /v1/alua          one ALUA state change
 *   splitter.ts  GET  /v1/groups        consistency groups (the write splitter, src/splitter)
 *                GET  /v1/groups/:group
 *                POST /v1/groups/:group/verify, POST /v1/groups/:group/bookmarks
 *   events.ts    GET  /v1/events        state changes as server-sent events
 *   rcopy.ts     GET  /v1/rcopy/groups, POST …/groups/:group/start|stop|hosts, POST /v1/rcopy/link
 *   rcopy-define.ts POST /v1/rcopy/groups, POST …/groups/:group/volumes|policies|dismiss|remove (creategroup, admitvv, setgroup, dismissvv, removegroup)
 *   replica-claims.ts GET /v1/replica-claims, POST /v1/replica-claims/release (remote copies' claims on this array's LUs)
 *   openapi.ts   GET  /v1/openapi.json  the OpenAPI 3.1 document of all of the above
 *   metrics.ts   GET  /metrics          Prometheus text format (src/metrics)
 *   console.ts   GET  /, /console/:file the web console's files (hidden: not API)
 *
 * To add a route:
 *   1. Write src/admin/routes/<concern>.ts exporting its schemas as constants (body, querystring,
 *      params, and a `response` with at least the 200 reply) and `register(app, deps)`, which
 *      declares the routes with `{ schema }`. Throw AdminError (./errors.ts) for a request the
 *      schema cannot refuse, with the field it is about.
 *   2. Add the module to ROUTES below.
 *   3. A route without a response schema is refused when it is added, unless it has
 *      `schema: { hide: true }` (not API, e.g. a console's static files; left out of the
 *      document). The schemas validate requests (400 naming the field), serialize replies and
 *      are what GET /v1/openapi.json publishes; a CLI verb that sends a body checks it with
 *      `checkBody(SCHEMA, body)` (./validation.ts) first.
 *   4. State changes a route or its engine makes go on the event bus (src/events.ts says how to
 *      add an event type), so GET /v1/events carries them.
 * Every route gets the 400 (and 401) error reply schema added, and the bearer-token check when
 * the API is bound off loopback (./auth.ts).
 */
import type { FastifyBaseLogger, FastifyError, FastifyInstance, FastifyServerOptions } from 'fastify';
import Fastify, { LogController } from 'fastify';
import swagger from '@fastify/swagger';
import type { Logger } from 'pino';
import type { StorageArray } from '../array.ts';
import type { ArrayEvents } from '../events.ts';
import type { AdminAccess } from './auth.ts';
import { bearerMatches } from './auth.ts';
import { AdminError, ERROR_REPLY } from './errors.ts';
import type { AdminErrorReply } from './errors.ts';
import { compileValidator, describeValidation } from './validation.ts';
import * as status from './routes/status.ts';
import * as alua from './routes/alua.ts';
import * as events from './routes/events.ts';
import * as openapi from './routes/openapi.ts';
import * as rcopy from './routes/rcopy.ts';
import * as rcopyDefine from './routes/rcopy-define.ts';
import * as splitter from './routes/splitter.ts';
import * as stores from './routes/stores.ts';
import * as replicaClaims from './routes/replica-claims.ts';
import * as metrics from './routes/metrics.ts';
import * as webConsole from './routes/console.ts';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Reachable without the bearer token (the console's static files: they hold no data). */
    public?: boolean;
  }
}

/** What a route module gets: the array, its event bus, a logger. */
export interface AdminDeps {
  array: StorageArray;
  events: ArrayEvents;
  log: Logger;
  /** Time between SSE keep-alive comments, ms (default 15 s; tests shorten it). */
  keepAliveMs?: number;
}

export interface AdminRouteModule {
  register(app: FastifyInstance, deps: AdminDeps): void;
}

/** Every route module, in the order the OpenAPI document lists them. */
export const ROUTES: readonly AdminRouteModule[] = [status, alua, splitter, events, rcopy, rcopyDefine, stores, replicaClaims, openapi, metrics, webConsole];

export interface AdminOptions {
  /** Open (loopback) or bearer token; default open. The caller decides with adminAccess(). */
  access?: AdminAccess;
  keepAliveMs?: number;
  /** Answer on a server made elsewhere (./front.ts: listening before the app is built). */
  serverFactory?: FastifyServerOptions['serverFactory'];
}

const BODY_LIMIT = 1 << 20;

export class AdminApi {
  readonly app: FastifyInstance;
  readonly access: AdminAccess;
  private readonly log: Logger;

  constructor(readonly array: StorageArray, log: Logger, opts: AdminOptions = {}) {
    this.log = log.child({ component: 'admin' });
    this.access = opts.access ?? { mode: 'open' };
    const app = Fastify({
      loggerInstance: this.log as FastifyBaseLogger,
      // Requests are not logged one by one (scripts poll); refusals and failures are.
      logController: new LogController({ disableRequestLogging: true }),
      exposeHeadRoutes: false,
      bodyLimit: BODY_LIMIT,
      ...(opts.serverFactory ? { serverFactory: opts.serverFactory } : {}),
    });
    this.app = app;

    // Bodies are JSON whatever the Content-Type says: `curl -d` sends form-urlencoded, fetch with
    // a string body text/plain, and both have always worked.
    app.removeAllContentTypeParsers();
    app.addContentTypeParser('*', { parseAs: 'string' }, (_req, text, done) => {
      if (text === '') { done(null, undefined); return; }
      try {
        done(null, JSON.parse(text as string));
      } catch (e) {
        done(new AdminError(400, `body is not JSON: ${(e as Error).message}`, null, 'body'), undefined);
      }
    });
    app.setValidatorCompiler(({ schema, httpPart }) => compileValidator(schema, httpPart));
    app.setSchemaErrorFormatter((errors, part) => new Error(describeValidation(errors, part).error));

    app.setErrorHandler((err: FastifyError | AdminError, req, reply) => {
      let code: number;
      let body: AdminErrorReply;
      if ('validation' in err && err.validation) {
        code = 400;
        body = describeValidation(err.validation, err.validationContext);
      } else if (err instanceof AdminError) {
        code = err.statusCode;
        body = err.reply();
      } else if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500) {
        code = err.statusCode; // fastify's own: 413 body too large, 415 …
        body = { error: err.message, field: null };
      } else {
        code = 500;
        body = { error: 'internal error (see the array log)', field: null };
        this.log.error({ err, method: req.method, url: pathOf(req.url) }, 'admin API request failed');
      }
      void reply.code(code).send(body);
    });
    app.setNotFoundHandler((req, reply) => {
      void reply.code(404).send({ error: `no route ${req.method} ${pathOf(req.url)} (see GET /v1/openapi.json)`, field: null });
    });

    const access = this.access;
    if (access.mode === 'token') {
      app.addHook('onRequest', async (req, reply) => {
        // The console's static files (routes/console.ts): no data in them, and a browser cannot
        // send a token when it loads a page. A route says so itself; a 404 has no such config.
        if (req.routeOptions.config?.public === true) return;
        const verdict = bearerMatches(req.headers.authorization, access.token);
        if (verdict === 'ok') return;
        // Logged without the header: neither a wrong token nor a near miss of the right one goes to the log.
        this.log.warn({ remote: req.ip, method: req.method, url: pathOf(req.url), why: verdict === 'missing' ? 'no bearer token' : 'wrong token' }, 'admin API request refused');
        void reply.code(401)
          .header('www-authenticate', verdict === 'missing' ? 'Bearer realm="arraysim"' : 'Bearer realm="arraysim", error="invalid_token"')
          .send({ error: verdict === 'missing' ? 'this admin API needs Authorization: Bearer <token> (ARRAYSIM_ADMIN_TOKEN)' : 'the bearer token is not valid', field: null });
        return reply;
      });
    }

    // Every route declares its reply; each gets the error replies it can give.
    app.addHook('onRoute', (r) => {
      // Hidden routes (static files of a console, say) are not API: not documented, not checked.
      if ((r.schema as { hide?: boolean } | undefined)?.hide) return;
      const response = (r.schema?.response ?? undefined) as Record<string, unknown> | undefined;
      if (!response || !Object.keys(response).some((k) => k.startsWith('2'))) {
        throw new Error(`admin route ${String(r.method)} ${r.url} has no response schema (src/admin/api.ts: to add a route)`);
      }
      const errors: Record<string, unknown> = { 400: { ...ERROR_REPLY, description: 'a field of the request is not valid (field names it)' } };
      if (access.mode === 'token') errors[401] = { ...ERROR_REPLY, description: 'no bearer token, or not the right one' };
      r.schema = { ...r.schema, response: { ...errors, ...response } };
    });

    void app.register(swagger, {
      openapi: {
        openapi: '3.1.0',
        info: { title: 'arraysim admin API', version: '1', description: 'Drive a running arraysim: status, ALUA, state change events' },
        components: access.mode === 'token' ? { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } } : undefined,
        security: access.mode === 'token' ? [{ bearer: [] }] : undefined,
      },
    });
    const deps: AdminDeps = { array, events: array.events, log: this.log, keepAliveMs: opts.keepAliveMs };
    void app.register(async (scope) => {
      for (const m of ROUTES) m.register(scope, deps);
    });
  }

  /** Listen on host:port (0: any free port); resolves with the bound port. */
  async listen(host: string, port: number): Promise<number> {
    await this.app.listen({ host, port, listenTextResolver: (address) => `admin API bound to ${address}` });
    const a = this.app.server.address();
    const bound = a && typeof a === 'object' ? a.port : port;
    this.log.info({ admin: `http://${host.includes(':') ? `[${host}]` : host}:${bound}`, access: this.access.mode === 'token' ? 'bearer token' : 'open (loopback)' }, 'admin API listening');
    return bound;
  }

  close(): Promise<void> {
    return this.app.close();
  }
}

function pathOf(url: string): string {
  return url.split('?')[0];
}
