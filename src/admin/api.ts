/**
 * The admin API: HTTP/JSON on loopback, so operators, scenario labs and (later) the
 * replication engine script the array with curl or fetch.
 *
 *   GET  /v1/status     targets, LUNs, sessions, per-portal I/O counters
 *   GET  /v1/alua       every target's port groups: mode, default state, preferred, per-host overrides
 *   POST /v1/alua       {tpg, state, host?, clearHost?, preferred?, transitionMs?, target?, reason?, wait?}
 *                       one state change, applied atomically through the ALUA model (which logs it
 *                       with the reason and raises UA 2A/06); answers with the groups afterwards
 *   GET  /metrics       Prometheus text format (src/metrics); 404 when metrics are off
 */
import http from 'node:http';
import type { Logger } from 'pino';
import type { StorageArray } from '../array.ts';
import { parseAccessState } from '../scsi/alua.ts';
import type { AluaModel } from '../scsi/alua.ts';
import { METRICS_CONTENT_TYPE } from '../metrics/registry.ts';

export type Route = (req: http.IncomingMessage, body: unknown) => Promise<unknown> | unknown;

export class AdminApi {
  private server: http.Server | null = null;
  readonly routes = new Map<string, Route>();

  constructor(readonly array: StorageArray, readonly log: Logger) {
    this.routes.set('GET /v1/status', () => this.status());
    this.routes.set('GET /v1/alua', () => this.aluaShow());
    this.routes.set('POST /v1/alua', (_req, body) => this.aluaSet(body));
  }

  private aluaModels(): [string, AluaModel][] {
    return [...this.array.scsiTargets].map(([name, t]) => [name, t.alua] as [string, AluaModel]);
  }

  aluaShow(): unknown {
    return { targets: this.aluaModels().map(([name, m]) => ({ name, ...(m.toJSON() as object) })) };
  }

  /** One change; without `target` it applies to every target (they share the portals). */
  async aluaSet(body: unknown): Promise<unknown> {
    const b = (body ?? {}) as Record<string, unknown>;
    if (!Number.isInteger(b.tpg)) throw new Error('tpg (target port group number) is required');
    if (b.host !== undefined && typeof b.host !== 'string') throw new Error('host must be an initiator name');
    if (!b.clearHost && typeof b.state !== 'string') throw new Error('state is required');
    const state = b.clearHost ? 'active/optimized' : parseAccessState(b.state as string);
    if (b.transitionMs !== undefined && (typeof b.transitionMs !== 'number' || b.transitionMs < 0)) throw new Error('transitionMs must be >= 0');
    const models = this.aluaModels().filter(([name]) => b.target === undefined || name === b.target);
    if (!models.length) throw new Error(`no target ${String(b.target)}`);
    for (const [, m] of models) if (!m.groups.has(b.tpg as number)) throw new Error(`no target port group ${String(b.tpg)}`);
    const reason = typeof b.reason === 'string' && b.reason ? b.reason : 'admin API';
    const done = models.map(([, m]) => m.transition({
      tpg: b.tpg as number, state, host: b.host as string | undefined, clearHost: !!b.clearHost,
      preferred: typeof b.preferred === 'boolean' ? b.preferred : undefined,
      transitionMs: b.transitionMs as number | undefined, reason,
    }));
    if (b.wait) await Promise.all(done);
    return this.aluaShow();
  }

  status(): unknown {
    const a = this.array;
    return {
      portals: a.config.portals.map((p) => ({ listen: `${p.host}:${p.port}`, tpgt: p.tpgt, targetPortGroup: p.targetPortGroup, stats: a.server.portalStats.get(p) })),
      targets: [...a.scsiTargets.values()].map((t) => ({
        name: t.name,
        luns: [...t.luns.values()].map((lu) => ({
          lun: lu.lun, naa: lu.naa, serial: lu.serial, blockSize: lu.blockSize, blocks: String(lu.blockCount),
          readonly: lu.readonly, removable: lu.removable, allocatedBytes: lu.store.allocatedBytes?.() ?? null, stats: lu.stats,
        })),
        sessions: [...a.server.sessions].filter((s) => s.targetConfig?.name === t.name).map((s) => ({
          tsih: s.tsih, initiator: s.initiatorName, isid: s.isid, tpgt: s.portal.tpgt, connections: s.connections.size,
        })),
      })),
    };
  }

  async listen(host: string, port: number): Promise<number> {
    const srv = http.createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((resolve, reject) => {
      srv.once('error', reject);
      srv.listen(port, host, () => { srv.off('error', reject); resolve(); });
    });
    this.server = srv;
    const a = srv.address();
    const bound = a && typeof a === 'object' ? a.port : port;
    this.log.info({ admin: `http://${host}:${bound}` }, 'admin API listening');
    return bound;
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0];
    const route = this.routes.get(`${req.method} ${path}`);
    const send = (code: number, body: unknown) => {
      res.writeHead(code, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body, null, 2) + '\n');
    };
    if (req.method === 'GET' && path === '/metrics') { await this.metrics(res); return; }
    if (!route) { send(404, { error: `no route ${req.method} ${path}` }); return; }
    try {
      let body: unknown = null;
      if (req.method !== 'GET') {
        const chunks: Buffer[] = [];
        let size = 0;
        for await (const c of req) { size += (c as Buffer).length; if (size > 1 << 20) throw new Error('body too large'); chunks.push(c as Buffer); }
        const text = Buffer.concat(chunks).toString('utf8');
        body = text ? JSON.parse(text) : null;
      }
      send(200, await route(req, body));
    } catch (err) {
      send(400, { error: err instanceof Error ? err.message : String(err) });
    }
  }

  /** GET /metrics: text, not JSON, so it is answered apart from the JSON routes. */
  private async metrics(res: http.ServerResponse): Promise<void> {
    const m = this.array.metrics;
    if (!m) {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: 'metrics are off (serve --no-metrics, or metrics: false in the configuration)' }) + '\n');
      return;
    }
    try {
      const text = await m.metricsText();
      res.writeHead(200, { 'content-type': METRICS_CONTENT_TYPE });
      res.end(text);
    } catch (err) {
      this.log.error({ err }, 'metrics collection failed');
      res.writeHead(500, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: err instanceof Error ? err.message : String(err) }) + '\n');
    }
  }

  close(): Promise<void> {
    return new Promise((r) => (this.server ? this.server.close(() => r()) : r()));
  }
}
