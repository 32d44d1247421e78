/** Logged-in iSCSI sessions per portal and target, counted when scraped. */
import { Gauge } from 'prom-client';
import type { Registry } from 'prom-client';
import type { MetricsSource } from './registry.ts';

export function sessionFamilies(registry: Registry, src: MetricsSource): void {
  new Gauge({
    name: 'arraysim_sessions',
    help: 'iSCSI sessions in full feature phase, per portal and target (type: normal or discovery; discovery sessions have no target)',
    labelNames: ['portal', 'tpgt', 'target', 'type'],
    registers: [registry],
    collect() {
      this.reset();
      const portalLabels = (p: { host: string; port: number; tpgt: number }) => ({ portal: `${p.host}:${p.port}`, tpgt: String(p.tpgt) });
      // Every (portal, target) pair shows, with 0 when nobody is logged in, so a graph has a line to drop to.
      for (const p of src.server.portals) for (const target of src.targets.keys()) this.set({ ...portalLabels(p), target, type: 'normal' }, 0);
      for (const s of src.server.sessions) {
        const type = s.type === 'Discovery' ? 'discovery' : 'normal';
        this.inc({ ...portalLabels(s.portal), target: s.targetConfig?.name ?? '', type });
      }
    },
  });
}
