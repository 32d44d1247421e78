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
import { LabHost } from './host.ts';
import { judge } from './judge.ts';
import { compareVolumes } from './volumes.ts';
import type { HostObserved, MetroRow, Phase } from './judge.ts';
import type { ArrayName, HostName, LabPathState, MetroFault, MetroScenario, PathExpect } from './scenarios.ts';

const VOLUME_BYTES = 16 << 20;
/**
 * A write with no path for this long fails (the host "loses I/O"): dm-multipath's no_path_retry,
 * shortened (lab up's multipath.conf queues for 90 s, src/lab/snippets.ts). Long enough that a
 * witness-granted failover on a loaded machine (about 6 s at load 20) stays transparent, as the
 * paper's RTO=0 rows say it is; a host whose paths do not come back loses I/O whatever the value.
 */
const DEADLINE_MS = 10000;
/** Start-ups of the pair tried before a scenario is given up as not steady (see unsteady()). */
const START_ATTEMPTS = 3;
/** How long a start-up may take to reach its steady state (the witness's record, the hosts' paths) once the pair is Synced. */
const STEADY_WAIT_MS = 15000;
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
    case 'host-crash':
      await hosts.get(f.host)!.crash('the host is down (a cluster server failure)');
      return `${f.host} down (cluster server failure; the arrays untouched)`;
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
    case 'host-crash':
      await hosts.get(f.host)!.restart();
      return `${f.host} back (logged in again)`;
  }
}

/** `none`: the host is not cabled to that array (Active Sync); `down`: cabled, no session (or the host itself is down). */
function snapshot(h: LabHost): Record<ArrayName, LabPathState> {
  const p = h.paths();
  const of = (a: ArrayName): LabPathState => (h.cabled.includes(a) ? p[a] ?? 'down' : 'none');
  return { A: of('A'), B: of('B') };
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

/** One start of the pair and its hosts, writing: what a teardown must end. */
interface Rig { dir: string; history: History; cluster: Cluster | null; hosts: Map<HostName, LabHost> }

async function teardown(r: Rig, keepDir: boolean): Promise<void> {
  await Promise.all([...r.hosts.values()].map((h) => h.stop().then(() => h.close()).catch(() => {})));
  await r.cluster?.stop().catch(() => {});
  if (!keepDir) rmSync(r.dir, { recursive: true, force: true });
}

/**
 * Why the pair is not in the steady state the fault needs, or null when it is: the roles it
 * started with, Synced on both arrays, nothing changed since it first reported Synced (no array
 * left Synced, died, or changed role; the arrays' own /v1/events in the history), each host on the
 * paths `before` expects and writing. Under machine load an array can stall longer than the
 * link's heartbeat timeout (3 s) or the witness's fail timeout (2.5 s) while it starts, and the
 * pair fails over before any fault: the scenario would then test a different pair.
 */
async function unsteady(r: Rig, s: MetroScenario, syncedMark: number): Promise<Unsteady | null> {
  const changed = r.history.entries.slice(syncedMark).flatMap((e) => {
    if (e.type !== 'array') return [];
    const ev = e.event as { type?: string; from?: string; to?: string; reason?: string };
    if (ev.type === 'rcopy.failover' || ev.type === 'rcopy.role') return [`array ${e.site}: ${ev.type} ${ev.from} -> ${ev.to} (${ev.reason ?? ''})`];
    if (ev.type === 'rcopy.group' && ev.from === 'Synced') return [`array ${e.site}: ${ev.from} -> ${ev.to} (${ev.reason ?? ''})`];
    if (ev.type === 'down') return [`array ${e.site} down`];
    return [];
  });
  if (changed.length) return { why: `before the fault: ${changed.slice(0, 3).join('; ')}`, final: true };
  const c = r.cluster!;
  const [a, b] = await Promise.all([c.a.groupState(), c.b.groupState()]);
  if (a?.status !== 'Synced' || b?.status !== 'Synced') return { why: `before the fault: A ${a?.status ?? 'no answer'}, B ${b?.status ?? 'no answer'} (not both Synced)`, final: true };
  const w = await witnessUnready(c);
  if (w) return { why: `before the fault: ${w}`, final: false };
  for (const [n, h] of r.hosts) {
    if (!fits(h, s.expect[n].before)) { const p = snapshot(h); return { why: `before the fault: ${n}'s paths are A ${p.A}, B ${p.B}, not as expected`, final: false }; }
    if (h.acked.length < 5) return { why: `before the fault: ${n} has ${h.acked.length} acknowledged writes`, final: false };
  }
  return null;
}

/** `final`: the pair changed since it was Synced, which waiting does not undo; otherwise a record or a path still on its way. */
interface Unsteady { why: string; final: boolean }

/**
 * Why the witness does not yet hold the pair's steady state, or null when it does (or there is
 * none): each array hears it, it names A (site-a) owner and has recorded each array Synced. Until
 * it has, a primary failure is rightly not failed over (witness-arbiter.ts: the primary's last
 * report must say linked and Synced), and a failure injected just after the pair reports Synced
 * (a heartbeat is 250 ms) tests that race, not the paper's row.
 */
async function witnessUnready(c: Cluster): Promise<string | null> {
  if (!c.witness) return null;
  const owner = c.plan.sites[0].name;
  for (const x of c.sites) {
    let v: { reachable?: boolean; owner?: string; recorded?: string | null; peerSight?: string | null } | undefined;
    try {
      const st = await x.admin('GET', '/v1/rcopy/witness') as { groups?: ({ group: string } & NonNullable<typeof v>)[] } | null;
      v = st?.groups?.find((g) => g.group === c.plan.group);
    } catch { /* not answering: below */ }
    if (!v) return `array ${x.name} has no witness verdict for ${c.plan.group}`;
    if (!v.reachable || v.owner !== owner || v.recorded !== 'Synced' || v.peerSight !== 'alive') {
      return `array ${x.name}'s witness verdict: reachable ${v.reachable}, owner ${v.owner || 'none'}, recorded ${v.recorded}, other array ${v.peerSight}`;
    }
  }
  return null;
}

/** Wait until `check` answers null (steady) or a final reason, up to `ms`; the last reason, or null. */
async function untilSteady(check: () => Promise<Unsteady | null>, ms: number): Promise<string | null> {
  const end = Date.now() + ms;
  for (;;) {
    const u = await check();
    if (!u || u.final || Date.now() > end) return u?.why ?? null;
    await sleep(250);
  }
}

export interface MetroRunOptions {
  keepDir?: boolean;
  settleMs?: number;
  /** Start-ups tried before a scenario whose pair never reaches its steady state is reported as not matching (default 3). */
  startAttempts?: number;
  /** Test hook (the start-up check's negative control): runs on each start-up once the hosts write, before the pair is checked steady. */
  disturbStartup?: (attempt: number, c: Cluster) => Promise<void>;
}

export async function runMetroScenario(s: MetroScenario, o: MetroRunOptions = {}): Promise<MetroRow> {
  const SETTLE_MS = o.settleMs ?? SETTLE_DEFAULT_MS;
  const attempts = o.startAttempts ?? START_ATTEMPTS;
  const t0 = performance.now();
  const clock = () => Math.round(performance.now() - t0);
  const events: string[] = [];
  const note = (m: string) => events.push(`${(clock() / 1000).toFixed(1)}s ${m}`);
  const startups: string[] = [];
  let rig: Rig | null = null;
  try {
    // Start-up: the pair, Synced; the hosts logged in, on their `before` paths and writing. When
    // the pair is not steady (an array stalled past a timeout while starting), it is started
    // again from scratch: nothing was injected yet, so nothing the scenario judges is discarded.
    // Every retry is in the row (startups, events).
    let steady: string | null = 'not started';
    let syncedMark = 0;
    for (let attempt = 1; attempt <= attempts && steady; attempt++) {
      if (rig) await teardown(rig, !!o.keepDir);
      const dir = mkdtempSync(path.join(tmpdir(), `arraysim-${s.name.replace('/', '-')}-`));
      rig = { dir, history: new History(), cluster: null, hosts: new Map() };
      rig.cluster = await startCluster(dir, rig.history, { volumeBytes: VOLUME_BYTES, witness: s.witness, topology: s.topology ?? 'metro' });
      const c = rig.cluster;
      if (s.witness && !c.witness) throw new Error(`${s.name} needs a witness and this build has no \`arraysim witness\``);
      if (!await c.synced(60000)) throw new Error(`${s.name}: the pair was not Synced within 60 s of starting (logs in ${dir})`);
      syncedMark = rig.history.entries.length;
      note(attempt === 1 ? 'pair Synced' : `pair Synced (start-up ${attempt})`);
      const siteOf = (n: string) => (n === 'site-a' ? c.a : c.b);
      for (const [i, x] of c.plan.hosts.entries()) {
        const paths = x.connects.map((n) => ({ name: siteOf(n).name, url: siteOf(n).url }));
        rig.hosts.set(x.name as HostName, await LabHost.open(x.name, x.iqn, paths, i * (VOLUME_BYTES / 1024), clock, { deadlineMs: DEADLINE_MS, onPath: (l) => events.push(l) }));
      }
      const hs = rig.hosts;
      await until(() => [...hs].every(([n, h]) => fits(h, s.expect[n].before)), SETTLE_MS);
      for (const h of hs.values()) h.start();
      await until(() => [...hs.values()].every((h) => h.acked.length >= 5), SETTLE_MS);
      await o.disturbStartup?.(attempt, c);
      // A pair that has changed since it was Synced does not settle back by waiting (final): only
      // the witness's record (a heartbeat behind) and the hosts' paths are waited for.
      const r0 = rig;
      steady = await untilSteady(() => unsteady(r0, s, syncedMark), STEADY_WAIT_MS);
      if (steady) {
        startups.push(`start-up ${attempt}: ${steady}`);
        note(`start-up ${attempt} not steady, ${attempt < attempts ? 'starting the pair again' : 'giving up'}: ${steady}`);
      }
    }
    const r = rig!;
    const c = r.cluster!;
    const hosts = r.hosts;
    const names = [...hosts.keys()];
    const all = [...hosts.values()];
    const paths = {} as Record<HostName, HostObserved['paths']>;
    const take = (phase: Phase) => { for (const n of names) (paths[n] ??= {} as HostObserved['paths'])[phase] = snapshot(hosts.get(n)!); };
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
    // A pair that never reached its steady state was tested anyway (the row shows what it did),
    // but it does not match: its "before" was not the paper's.
    if (steady) mismatch.unshift(`start-up: not steady before the fault in ${attempts} start-ups (${steady})`);
    return {
      scenario: s.name, title: s.title, topology: s.topology ?? 'metro', paper: s.paper, source: s.source, expected: s.expect, observed, volumes,
      match: mismatch.length === 0, mismatch, startups, events, ms: clock(),
    };
  } finally {
    if (rig) await teardown(rig, !!o.keepDir);
  }
}
