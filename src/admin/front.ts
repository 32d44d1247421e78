/**
 * The admin API's listening socket, for `serve`: a plain node HTTP server that listens as soon as
 * the portals do, and builds the fastify app (./api.ts: fastify, its ajv schemas, @fastify/swagger
 * and every route) on the first request, which then goes to it like every later one.
 *
 * Why: an idle target that nobody asks anything keeps no HTTP framework in memory. Loading and
 * building the app grows the process by about 20 MiB of VmRSS (its modules, the compiled
 * schemas, and V8's young generation, which the start-up allocations grow from 8 to 32 MiB);
 * README "Start-up" has the figures. The price is paid once, by the first request (about 100 ms on a
 * quiet machine, more on a loaded one; the console's first page is one such request).
 * Requests that arrive while the app is being built wait for it, in order, with their bodies
 * unread (a request stream does not flow until fastify reads it); only the console's page and
 * script are answered meanwhile, from the same files and with the same headers as its routes
 * (routes/console.ts), so that the console's first paint does not wait for the build.
 *
 * Tests and code that want the app itself construct AdminApi directly; this is only its socket.
 */
import http from 'node:http';
import type { Logger } from 'pino';
import type { StorageArray } from '../array.ts';
import type { AdminApi, AdminOptions } from './api.ts';
import { consoleFiles } from './routes/console.ts';

/** What fastify sets on the servers it creates itself (its defaults), for the same behaviour. */
const KEEP_ALIVE_TIMEOUT_MS = 72_000;

export class LazyAdminApi {
  readonly server: http.Server;
  private api: AdminApi | null = null;
  private building: Promise<AdminApi> | null = null;
  private handler: http.RequestListener | null = null;
  private readonly log: Logger;
  private console: ReturnType<typeof consoleFiles> | null = null;

  constructor(private readonly array: StorageArray, log: Logger, private readonly opts: AdminOptions = {}) {
    this.log = log.child({ component: 'admin' });
    this.server = http.createServer((req, res) => this.request(req, res));
    this.server.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS;
  }

  /** Whether the fastify app has been built (by a first request). */
  get built(): boolean {
    return this.api !== null;
  }

  private request(req: http.IncomingMessage, res: http.ServerResponse): void {
    if (this.handler) {
      this.handler(req, res);
      return;
    }
    // The console's page and script hold no data (public even with a token) and need no
    // framework: a browser's first page paints without waiting for the build, which its first
    // data request (a moment later) would start anyway.
    if (req.method === 'GET') {
      const r = (this.console ??= consoleFiles())(pathOf(req.url ?? '/'), req.headers);
      if (r) {
        void this.app().catch(() => undefined); // a failure is logged when a request waits for it
        res.writeHead(r.status, r.headers).end(r.body);
        return;
      }
    }
    this.app().then(() => this.handler!(req, res), (err: Error) => {
      this.log.error({ err }, 'admin API could not be built');
      res.writeHead(500, { 'content-type': 'application/json; charset=utf-8' })
        .end(JSON.stringify({ error: 'internal error (see the array log)', field: null }));
    });
  }

  /** The fastify app, built once (on the first request), answering on this.server. */
  app(): Promise<AdminApi> {
    this.building ??= (async () => {
      const t0 = performance.now();
      const cpu0 = process.cpuUsage();
      const { AdminApi } = await import('./api.ts');
      const api = new AdminApi(this.array, this.log, {
        ...this.opts,
        serverFactory: (handler) => { this.handler = handler; return this.server; },
      });
      await api.app.ready();
      this.api = api;
      const cpu = process.cpuUsage(cpu0);
      this.log.info({ ms: Math.round(performance.now() - t0), cpuMs: Math.round((cpu.user + cpu.system) / 1000) }, 'admin API built (first request)');
      return api;
    })();
    return this.building;
  }

  /** Listen on host:port (0: any free port); resolves with the bound port. */
  async listen(host: string, port: number): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      const fail = (err: Error) => reject(err);
      this.server.once('error', fail);
      this.server.listen(port, host, () => { this.server.off('error', fail); resolve(); });
    });
    const a = this.server.address();
    const bound = a && typeof a === 'object' ? a.port : port;
    const access = this.opts.access?.mode === 'token' ? 'bearer token' : 'open (loopback)';
    this.log.info({ admin: `http://${host.includes(':') ? `[${host}]` : host}:${bound}`, access }, 'admin API listening');
    return bound;
  }

  async close(): Promise<void> {
    // The app ends its event streams (preClose) and its routes; the socket is ours to close.
    if (this.building) await this.building.then((api) => api.close(), () => undefined);
    if (!this.server.listening) return;
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeIdleConnections();
    });
  }
}

function pathOf(url: string): string {
  return url.split('?')[0];
}
