/**
 * Prometheus metrics of the array (README "Metrics"): one prom-client Registry per running array,
 * exposed as text by metricsText() and served at GET /metrics by the admin API.
 *
 * Two kinds of numbers, kept apart on purpose:
 *  - state and counters that already exist (LogicalUnit.stats, IscsiServer.portalStats, sessions,
 *    the ALUA model) are read when Prometheus scrapes, in each metric's collect(): the I/O path
 *    counts once, for the admin API and for /metrics alike;
 *  - command latency is the one thing recorded per command (latency.ts), into preallocated bucket
 *    arrays with no label, string or map on the I/O path, and only when metrics are on.
 *
 * Adding a metric family (the splitter's journal bytes and lag, replication's link and sync
 * state, …) is one function in a file of its own here, `(registry, src) => void`, that creates
 * prom-client metrics with `registers: [registry]` and a collect() reading the component's own
 * state or counters, and one line in FAMILIES below. Name it `arraysim_<component>_<what>` with
 * the unit as suffix (`_bytes`, `_seconds`) and `_total` on counters; a component that needs more
 * than MetricsSource has gets a field added there. Then list it in README "Metrics".
 */
import { Registry, collectDefaultMetrics } from 'prom-client';
import type { IscsiServer } from '../iscsi/server.ts';
import type { ScsiTarget } from '../scsi/target.ts';
import { aluaFamilies } from './alua.ts';
import { luFamilies, portalFamilies } from './io.ts';
import type { CommandLatency } from './latency.ts';
import { latencyFamily } from './latency-family.ts';
import { sessionFamilies } from './sessions.ts';

/** What the families read from. */
export interface MetricsSource {
  readonly server: IscsiServer;
  readonly targets: ReadonlyMap<string, ScsiTarget>;
  readonly latency: CommandLatency;
}

export type MetricFamily = (registry: Registry, src: MetricsSource) => void;

const FAMILIES: readonly MetricFamily[] = [
  luFamilies,
  portalFamilies,
  (r, s) => latencyFamily(r, s.latency),
  sessionFamilies,
  aluaFamilies,
];

/** The content type of the Prometheus text exposition format 0.0.4 (what metricsText() returns). */
export const METRICS_CONTENT_TYPE = Registry.PROMETHEUS_CONTENT_TYPE;

export class ArrayMetrics {
  readonly registry = new Registry();

  /**
   * Builds every family over the state and counters of the array and the latency recorder its
   * iSCSI server's connections record into (made with the array, before any command). `process`: also the standard process_* and nodejs_* metrics (CPU, memory,
   * event loop lag, GC) of prom-client's default collector.
   */
  constructor(server: IscsiServer, targets: ReadonlyMap<string, ScsiTarget>, readonly latency: CommandLatency, o: { process?: boolean } = {}) {
    const src: MetricsSource = { server, targets, latency };
    for (const f of FAMILIES) f(this.registry, src);
    if (o.process !== false) collectDefaultMetrics({ register: this.registry });
  }

  /** The Prometheus text format (METRICS_CONTENT_TYPE) of every family, read now. */
  metricsText(): Promise<string> {
    return this.registry.metrics();
  }
}
