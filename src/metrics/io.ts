/**
 * Commands, bytes and errors per LU and per portal. The counters already exist (LogicalUnit.stats,
 * IscsiServer.portalStats: the admin API reports the same numbers): these families read them
 * when scraped, so the I/O path counts once, for both.
 */
import { Counter, Gauge } from 'prom-client';
import type { Registry } from 'prom-client';
import type { MetricsSource } from './registry.ts';

/** Set a counter family to values read now (prom-client counters only go up, so reset then add). */
function readCounter<L extends string>(c: Counter<L>, rows: Iterable<[Partial<Record<L, string | number>>, number]>): void {
  c.reset();
  for (const [labels, v] of rows) c.inc(labels, v);
}

export function luFamilies(registry: Registry, src: MetricsSource): void {
  const lus = function* () {
    for (const [target, t] of src.targets) for (const lu of t.luns.values()) yield { target, lun: String(lu.lun), lu };
  };
  const labelNames = ['target', 'lun'] as const;
  new Counter({
    name: 'arraysim_lu_commands_total', help: 'SCSI commands submitted to the logical unit', labelNames, registers: [registry],
    collect() { readCounter(this, [...lus()].map(({ target, lun, lu }) => [{ target, lun }, lu.stats.commands])); },
  });
  new Counter({
    name: 'arraysim_lu_io_total', help: 'Media reads and writes done by the logical unit (EXTENDED COPY included)', labelNames: [...labelNames, 'direction'], registers: [registry],
    collect() {
      readCounter(this, [...lus()].flatMap(({ target, lun, lu }) => [
        [{ target, lun, direction: 'read' }, lu.stats.reads] as const, [{ target, lun, direction: 'write' }, lu.stats.writes] as const,
      ]));
    },
  });
  new Counter({
    name: 'arraysim_lu_bytes_total', help: 'Bytes read from and written to the logical unit (EXTENDED COPY included)', labelNames: [...labelNames, 'direction'], registers: [registry],
    collect() {
      readCounter(this, [...lus()].flatMap(({ target, lun, lu }) => [
        [{ target, lun, direction: 'read' }, lu.stats.readBytes] as const, [{ target, lun, direction: 'write' }, lu.stats.writeBytes] as const,
      ]));
    },
  });
  new Counter({
    name: 'arraysim_lu_errors_total', help: 'Commands the logical unit failed or refused (CHECK CONDITION, RESERVATION CONFLICT …), not counting unit attentions reported', labelNames, registers: [registry],
    collect() { readCounter(this, [...lus()].map(({ target, lun, lu }) => [{ target, lun }, lu.stats.errors])); },
  });
  new Gauge({
    name: 'arraysim_lu_capacity_bytes', help: 'Size of the logical unit', labelNames, registers: [registry],
    collect() { this.reset(); for (const { target, lun, lu } of lus()) this.set({ target, lun }, Number(lu.blockCount) * lu.blockSize); },
  });
  new Gauge({
    name: 'arraysim_lu_allocated_bytes', help: 'Bytes of the logical unit backed by storage (thin LUs: what has been written and not unmapped)', labelNames, registers: [registry],
    collect() {
      this.reset();
      for (const { target, lun, lu } of lus()) { const a = lu.store.allocatedBytes?.(); if (a !== undefined) this.set({ target, lun }, a); }
    },
  });
}

export function portalFamilies(registry: Registry, src: MetricsSource): void {
  const portals = () => [...src.server.portalStats].map(([p, st]) => ({ labels: { portal: `${p.host}:${p.port}`, tpgt: String(p.tpgt) }, st }));
  const labelNames = ['portal', 'tpgt'] as const;
  new Counter({
    name: 'arraysim_portal_commands_total', help: 'SCSI commands answered through the portal', labelNames, registers: [registry],
    collect() { readCounter(this, portals().map(({ labels, st }) => [labels, st.commands])); },
  });
  new Counter({
    name: 'arraysim_portal_io_total', help: 'Commands with Data-In (read) or Data-Out (write) answered GOOD through the portal', labelNames: [...labelNames, 'direction'], registers: [registry],
    collect() {
      readCounter(this, portals().flatMap(({ labels, st }) => [
        [{ ...labels, direction: 'read' }, st.reads] as const, [{ ...labels, direction: 'write' }, st.writes] as const,
      ]));
    },
  });
  new Counter({
    name: 'arraysim_portal_bytes_total', help: 'Data-In and Data-Out bytes of the commands answered GOOD through the portal', labelNames: [...labelNames, 'direction'], registers: [registry],
    collect() {
      readCounter(this, portals().flatMap(({ labels, st }) => [
        [{ ...labels, direction: 'read' }, st.readBytes] as const, [{ ...labels, direction: 'write' }, st.writeBytes] as const,
      ]));
    },
  });
  new Counter({
    name: 'arraysim_portal_errors_total', help: 'Commands answered through the portal with a status other than GOOD or CONDITION MET', labelNames, registers: [registry],
    collect() { readCounter(this, portals().map(({ labels, st }) => [labels, st.errors])); },
  });
  new Counter({
    name: 'arraysim_portal_logins_total', help: 'Logins that reached full feature phase through the portal', labelNames, registers: [registry],
    collect() { readCounter(this, portals().map(({ labels, st }) => [labels, st.logins])); },
  });
}
