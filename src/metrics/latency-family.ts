/**
 * The command latency of latency.ts as a Prometheus histogram family, read when scraped.
 */
import { Histogram } from 'prom-client';
import type { Registry } from 'prom-client';
import { COMMAND_CLASSES } from './command-class.ts';
import type { ClassIndex } from './command-class.ts';
import type { CommandLatency } from './latency.ts';

/**
 * A prom-client Histogram whose series are read from a CommandLatency when scraped. It is
 * registered like any other metric (type, help, the text format from prom-client); only where
 * the numbers come from differs, so get() is the one method that changes.
 */
const NAME = 'arraysim_command_duration_seconds';
const HELP = 'SCSI command latency by class (read, write, vaai, other): from the socket read that brought the SCSI Command PDU to the send of its response';

class CommandLatencyHistogram extends Histogram<'class'> {
  constructor(private readonly source: CommandLatency, registry: Registry) {
    super({
      name: NAME,
      help: HELP,
      labelNames: ['class'],
      buckets: [...source.boundsSeconds],
      registers: [registry],
    });
  }

  private series() {
    const s = this.source;
    const values = [];
    for (let c = 0; c < COMMAND_CLASSES.length; c++) {
      const labels = { class: COMMAND_CLASSES[c] };
      const cum = s.cumulative(c as ClassIndex);
      for (let i = 0; i < s.boundsSeconds.length; i++) {
        values.push({ metricName: `${NAME}_bucket`, labels: { ...labels, le: s.boundsSeconds[i] }, value: cum[i] });
      }
      const count = cum[cum.length - 1];
      values.push({ metricName: `${NAME}_bucket`, labels: { ...labels, le: '+Inf' }, value: count });
      values.push({ metricName: `${NAME}_sum`, labels, value: s.sumsUs[c] / 1e6 });
      values.push({ metricName: `${NAME}_count`, labels, value: count });
    }
    return { name: NAME, help: HELP, type: 'histogram' as const, values, aggregator: 'sum' as const };
  }

  // Registry#metrics() prefers getForPromString(); getMetricsAsJSON() calls get().
  async getForPromString() { return this.series(); }
  override async get() { return this.series() as unknown as Awaited<ReturnType<Histogram<'class'>['get']>>; }
}

export function latencyFamily(registry: Registry, source: CommandLatency): void {
  new CommandLatencyHistogram(source, registry);
}
