/**
 * Runs one metro scenario end to end: the pair as `lab up` builds it (src/check/cluster.ts: two
 * `serve` processes, optionally the witness), two hosts writing through multipath, the fault, the
 * heal, then a read-back of every acknowledged write. Each phase's path states are taken once the
 * paths have settled: the runner waits (up to a generous timeout) for the states the scenario
 * expects, and what it saw at the timeout is what it reports, so a wrong expectation shows as a
 * mismatch rather than a hang.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startCluster } from '../../check/cluster.ts';
import type { Cluster } from '../../check/cluster.ts';
import { History } from '../../check/history.ts';
import type { PathState } from '../../initiator/multipath.ts';
import { LabHost } from './host.ts';
import { judge } from './judge.ts';
import { compareVolumes } from './volumes.ts';
import type { HostObserved, MetroRow, Phase } from './judge.ts';
import type { ArrayName, HostName, MetroFault, MetroScenario, PathExpect } from './scenarios.ts';

const VOLUME_BYTES = 16 << 20;
/** A write with no path for this long fails (the host "loses I/O"); dm-multipath's no_path_retry, shortened. */
const DEADLINE_MS = 4000;
/** How long a phase may take to settle before what is seen is reported as it stands. */
const SETTLE_DEFAULT_MS = 25000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The host standing at an array's site. */
const hostAt = (a: ArrayName): HostName => (a === 'A' ? 'host-a' : 'host-b');

async function inject(c: Cluster, f: MetroFault, hosts: Map<HostName, LabHost>): Promise<string> {
  switch (f.kind) {
    case 'link-cut':
      await Promise.all(c.sites.map((s) => s.admin('POST', '/v1/rcopy/link', { action: 'cut' })));
      return 'replication link cut at both arrays';
    case 'kill-array':
      await c.site(f.array).kill();
      return `SIGKILL array ${f.array}`;
    case 'reboot-array':
      await c.site(f.array).stop();
      return `array ${f.array} shut down (SIGTERM)`;
    case 'witness-kill':
      await c.witness!.kill();
      return 'SIGKILL the witness';
    case 'data-center':
      await Promise.all([c.site(f.array).kill(), hosts.get(hostAt(f.array))!.crash()]);
      return `data center ${f.array} down: SIGKILL array ${f.array}, ${hostAt(f.array)} down`;
    case 'store-fail':
      await c.site(f.array).admin('POST', '/v1/stores/fault', { target: c.plan.target, lun: 0, action: 'fail', sense: f.sense });
      return `array ${f.array}: the volume's store fails (${f.sense} on every I/O)`;
    case 'host-disconnect':
      await hosts.get(f.host)!.losePath(f.array);
      return `${f.host} loses its path to array ${f.array}`;
  }
}

async function heal(c: Cluster, f: MetroFault, hosts: Map<HostName, LabHost>): Promise<string> {
  switch (f.kind) {
    case 'link-cut':
      await Promise.all(c.sites.filter((s) => s.running).map((s) => s.admin('POST', '/v1/rcopy/link', { action: 'restore' })));
      return 'replication link restored';
    case 'kill-array':
    case 'reboot-array':
      await c.site(f.array).start();
      return `array ${f.array} started again`;
    case 'witness-kill':
      if (!await c.witness!.start()) throw new Error('the witness did not start again');
      return 'witness started again';
    case 'data-center':
      await c.site(f.array).start();
      await hosts.get(hostAt(f.array))!.restart();
      return `data center ${f.array} back: array ${f.array} started, ${hostAt(f.array)} logged in again`;
    case 'store-fail':
      await c.site(f.array).admin('POST', '/v1/stores/fault', { target: c.plan.target, lun: 0, action: 'repair' });
      return `array ${f.array}: the volume's store repaired`;
    case 'host-disconnect':
      await hosts.get(f.host)!.regainPath(f.array);
      return `${f.host} has its path to array ${f.array} again`;
  }
}

function snapshot(h: LabHost): Record<ArrayName, PathState> {
  const p = h.paths();
  return { A: p.A ?? 'down', B: p.B ?? 'down' };
}

const fits = (h: LabHost, e: PathExpect) => { const s = snapshot(h); return e.A.includes(s.A) && e.B.includes(s.B); };

/** Wait until `ok()` holds (checked every 100 ms) or `ms` passes; true when it held. */
async function until(ok: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (ok()) return true;
    await sleep(100);
  }
  return ok();
}

async function strayWrite(file: string, lba: number): Promise<void> {
  const fh = await open(file, 'r+');
  try { await fh.write(Buffer.alloc(512, 0xee), 0, 512, lba * 512); } finally { await fh.close(); }
}

export async function runMetroScenario(s: MetroScenario, o: { keepDir?: boolean; settleMs?: number } = {}): Promise<MetroRow> {
  const SETTLE_MS = o.settleMs ?? SETTLE_DEFAULT_MS;
  const t0 = performance.now();
  const clock = () => Math.round(performance.now() - t0);
  const events: string[] = [];
  const note = (m: string) => events.push(`${(clock() / 1000).toFixed(1)}s ${m}`);
  const dir = mkdtempSync(path.join(tmpdir(), `arraysim-${s.name.replace('/', '-')}-`));
  let cluster: Cluster | null = null;
  const hosts = new Map<HostName, LabHost>();
  try {
    cluster = await startCluster(dir, new History(), { volumeBytes: VOLUME_BYTES, witness: s.witness, topology: 'metro' });
    const c = cluster;
    if (s.witness && !c.witness) throw new Error(`${s.name} needs a witness and this build has no \`arraysim witness\``);
    if (!await c.synced(60000)) throw new Error(`${s.name}: the pair was not Synced within 60 s of starting (logs in ${dir})`);
    note('pair Synced');
    const siteOf = (n: string) => (n === 'site-a' ? c.a : c.b);
    for (const [i, x] of c.plan.hosts.entries()) {
      const paths = x.connects.map((n) => ({ name: siteOf(n).name, url: siteOf(n).url }));
      hosts.set(x.name as HostName, await LabHost.open(x.name, x.iqn, paths, i * (VOLUME_BYTES / 1024), clock, { deadlineMs: DEADLINE_MS, onPath: (l) => events.push(l) }));
    }
    const names = [...hosts.keys()];
    const all = [...hosts.values()];
    const paths = {} as Record<HostName, HostObserved['paths']>;
    const take = (phase: Phase) => { for (const n of names) (paths[n] ??= {} as HostObserved['paths'])[phase] = snapshot(hosts.get(n)!); };

    await until(() => names.every((n) => fits(hosts.get(n)!, s.expect[n].before)), SETTLE_MS);
    for (const h of all) h.start();
    await until(() => all.every((h) => h.acked.length >= 5), SETTLE_MS);
    take('before');

    const tFault = clock();
    const midway = names.some((n) => s.expect[n].midway);
    for (const [i, f] of s.faults.entries()) {
      note(await inject(c, f, hosts));
      if (i === s.faults.length - 1 || !midway) continue;
      // Several faults: let the earlier ones settle (paths as expected midway, then each host
      // answered again, acknowledged or failed) before the next, so the order is what is tested.
      const t = clock();
      let at = Infinity;
      await until(() => {
        if (at === Infinity && names.every((n) => fits(hosts.get(n)!, s.expect[n].midway ?? s.expect[n].during))) at = clock();
        return at !== Infinity && names.every((n) => hosts.get(n)!.acked.some((a) => a.t > at) || hosts.get(n)!.failures.some((x) => x.t > t));
      }, SETTLE_MS);
      take('midway');
      note(`midway: ${names.map((n) => `${n} A ${paths[n].midway!.A}, B ${paths[n].midway!.B}`).join('; ')}`);
    }
    // During: the paths settle, and each host shows its I/O outcome (an acknowledgement after the
    // paths settled, or a failed write).
    let settledAt = Infinity;
    await until(() => {
      if (settledAt === Infinity && names.every((n) => fits(hosts.get(n)!, s.expect[n].during))) settledAt = clock();
      return settledAt !== Infinity && names.every((n) => (s.expect[n].keepsIo
        ? hosts.get(n)!.acked.some((a) => a.t > settledAt)
        : hosts.get(n)!.failures.some((f) => f.t > tFault)));
    }, SETTLE_MS);
    take('during');
    note(`during: ${names.map((n) => `${n} A ${paths[n].during.A}, B ${paths[n].during.B}`).join('; ')}`);

    for (const f of [...s.faults].reverse()) note(await heal(c, f, hosts));
    if (!await c.synced(90000)) note('the pair was not Synced 90 s after healing');
    else note('pair Synced again');
    const tHealed = clock();
    await until(() => names.every((n) => fits(hosts.get(n)!, s.expect[n].after) && hosts.get(n)!.acked.some((a) => a.t > tHealed)), SETTLE_MS);
    take('after');
    const tEnd = clock();
    await Promise.all(all.map((h) => h.stop()));
    note('hosts stopped; reading back every acknowledged write');

    const observed = {} as Record<HostName, HostObserved>;
    for (const n of names) {
      const h = hosts.get(n)!;
      const back = await h.readBack();
      const failed = h.failures.filter((f) => f.t >= tFault);
      observed[n] = {
        paths: paths[n], keptIo: failed.length === 0, failedWrites: failed.length,
        rtoMs: h.longestGap(tFault, tEnd), acked: h.acked.length, lostWrites: back.lost.length,
      };
      for (const l of back.lost.slice(0, 5)) note(`${n} lost LBA ${l.lba} (seq ${l.seq}): read ${l.got}`);
    }
    if (s.strayWriteAfterHeal) {
      // The negative control of the comparison: one block on one array changed behind its back.
      await strayWrite(c.site(s.strayWriteAfterHeal).volumePath, VOLUME_BYTES / 512 - 1);
      note(`negative control: one block written into array ${s.strayWriteAfterHeal}'s volume file, bypassing replication`);
    }
    const volumes = await compareVolumes(c.a.volumePath, c.b.volumePath);
    note(volumes.differing || volumes.problem ? `arrays differ: ${volumes.problem ?? `${volumes.differing} blocks, first at LBA ${volumes.first.join(', ')}`}` : `arrays identical (${volumes.blocks} blocks compared byte for byte)`);
    const mismatch = judge(s, observed, volumes);
    return {
      scenario: s.name, title: s.title, paper: s.paper, source: s.source, expected: s.expect, observed, volumes,
      match: mismatch.length === 0, mismatch, events, ms: clock(),
    };
  } finally {
    await Promise.all([...hosts.values()].map((h) => h.stop().then(() => h.close()).catch(() => {})));
    await cluster?.stop().catch(() => {});
    if (!o.keepDir) rmSync(dir, { recursive: true, force: true });
  }
}
