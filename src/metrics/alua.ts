/**
 * ALUA access states, read from each target's AluaModel when scraped. A state is exposed as a
 * state set (the OpenMetrics convention for enums): one series per possible state, 1 for the
 * state in force and 0 for the others, so `arraysim_alua_host_state{state="standby"} == 1` selects
 * the pairs in standby and a change shows as two series flipping, with no gap.
 */
import { Gauge } from 'prom-client';
import type { Registry } from 'prom-client';
import { ACCESS_STATES } from '../scsi/alua.ts';
import type { AccessState } from '../scsi/alua.ts';
import type { MetricsSource } from './registry.ts';

const STATES = Object.keys(ACCESS_STATES) as AccessState[];

export function aluaFamilies(registry: Registry, src: MetricsSource): void {
  new Gauge({
    name: 'arraysim_alua_host_state',
    help: 'ALUA access state a host sees through a target port group (1 = the state in force); hosts: every initiator logged in to the target and every host with a proximity override',
    labelNames: ['target', 'tpg', 'host', 'state'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [target, t] of src.targets) {
        const m = t.alua;
        const hosts = new Set<string>();
        for (const n of t.nexuses.values()) hosts.add(n.initiatorName);
        for (const g of m.groups.values()) for (const h of g.hosts.keys()) hosts.add(h);
        for (const g of m.groups.values()) {
          for (const host of hosts) {
            const now = m.stateFor(g.id, host);
            for (const state of STATES) this.set({ target, tpg: String(g.id), host, state }, state === now ? 1 : 0);
          }
        }
      }
    },
  });
  new Gauge({
    name: 'arraysim_alua_group_state',
    help: 'Default ALUA access state of a target port group, for hosts without an override (1 = the state in force)',
    labelNames: ['target', 'tpg', 'state'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [target, t] of src.targets) {
        for (const g of t.alua.groups.values()) {
          for (const state of STATES) this.set({ target, tpg: String(g.id), state }, state === g.state ? 1 : 0);
        }
      }
    },
  });
  new Gauge({
    name: 'arraysim_alua_preferred',
    help: 'PREF bit of a target port group (1 = preferred)',
    labelNames: ['target', 'tpg'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [target, t] of src.targets) for (const g of t.alua.groups.values()) this.set({ target, tpg: String(g.id) }, g.preferred ? 1 : 0);
    },
  });
}
