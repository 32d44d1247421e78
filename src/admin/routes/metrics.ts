/**
 * GET /metrics: the array's Prometheus metrics in the text exposition format 0.0.4, as
 * src/metrics writes them (README "Metrics" lists every family). Not under /v1: /metrics is where
 * Prometheus scrape jobs look by default. 404 when metrics are off (serve --no-metrics).
 */
import type { FastifyInstance } from 'fastify';
import type { AdminDeps } from '../api.ts';
import { AdminError, ERROR_REPLY } from '../errors.ts';
import { METRICS_CONTENT_TYPE } from '../../metrics/registry.ts';

export const METRICS_ROUTE = {
  summary: 'Prometheus metrics (text exposition format 0.0.4)',
  tags: ['metrics'],
  response: {
    200: {
      description: 'every metric family: # HELP and # TYPE lines, then one sample per line',
      content: { 'text/plain': { schema: { type: 'string' } } },
    },
    404: { ...ERROR_REPLY, description: 'metrics are off (serve --no-metrics, or metrics: false in the configuration)' },
  },
} as const;

export function register(app: FastifyInstance, deps: AdminDeps): void {
  app.get('/metrics', { schema: METRICS_ROUTE }, async (_req, reply) => {
    const m = await deps.array.metrics();
    if (!m) throw new AdminError(404, 'metrics are off (serve --no-metrics, or metrics: false in the configuration)');
    // A string with a content type that is not JSON goes out as it is (no reply serializer).
    void reply.type(METRICS_CONTENT_TYPE);
    return m.metricsText();
  });
}
