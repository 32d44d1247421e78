/**
 * `arraysim lab up [--topology metro|sync|classic] [--json]`: the metro pair on this machine.
 * Site A, site B and the quorum witness each run as a process of this package's CLI on its own
 * loopback address (src/lab/topology.ts has the plan, src/lab/children.ts the processes). It waits
 * until both portals take an iSCSI login and the Remote Copy group is Synced on both arrays, then
 * prints the addresses and, for each kind of host, iscsiadm and multipath.conf snippets (or, with
 * --json, one JSON object), and keeps running until SIGINT/SIGTERM, when it stops all of them.
 *
 * An array that exits while the lab runs (a user's SIGKILL of the primary, to watch a failover)
 * is reported and left down: the lab is for watching failures, not for hiding them.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { adminCall } from '../admin/client.ts';
import { isLoopback } from '../admin/auth.ts';
import { ScsiDevice } from '../initiator/index.ts';
import { cliEntry, describeExit, hasVerb, LabChild } from './children.ts';
import { hostSnippets } from './snippets.ts';
import { hostPort, labPlan, loopbackAddresses, siteArgs, siteConfig, witnessArgs, WITNESS_READY } from './topology.ts';
import type { LabPlan, SitePlan, Topology } from './topology.ts';

export interface LabUpOptions {
  topology: Topology;
  json: boolean;
  siteA: string;
  siteB: string;
  witness: string;
  port: number;
  /** How long the pair may take to be ready (ms). */
  readyTimeoutMs?: number;
}

export class LabUpError extends Error {}

/** The JSON object `lab up --json` prints: what a script needs to drive the pair. */
export interface LabUpReport {
  topology: Topology;
  mode: string;
  group: string;
  target: string;
  lun: number;
  wwn: string;
  sites: { name: string; role: string; portals: string[]; target: string; admin: string; link: string; pid: number; config: string; log: string }[];
  witness: { address: string; pid: number; log: string } | null;
  hosts: { name: string; iqn: string; site: string; proximity: string; portals: string[] }[];
  warnings: string[];
}

export function checkOptions(o: LabUpOptions): void {
  for (const [flag, host] of [['--site-a', o.siteA], ['--site-b', o.siteB], ['--witness', o.witness]] as const) {
    if (!isLoopback(host)) throw new LabUpError(`${flag} ${host}: lab up runs on loopback addresses (127.0.0.0/8); the docker-compose topology is the one for real networks`);
  }
  if (new Set([o.siteA, o.siteB, o.witness]).size !== 3) throw new LabUpError('--site-a, --site-b and --witness must be three different addresses');
  // Portal P, admin P+1000, link P+2000 and the witness at P+2040 must all be ports.
  if (!Number.isInteger(o.port) || o.port < 1 || o.port + 2040 > 65535) throw new LabUpError(`--port ${o.port}: want 1..${65535 - 2040} (admin, link and witness use the ports above it)`);
}

export async function labUp(o: LabUpOptions, print: (s: string) => void = (s) => process.stdout.write(`${s}\n`)): Promise<number> {
  checkOptions(o);
  const note = (s: string) => process.stderr.write(`arraysim lab up: ${s}\n`);
  const entry = cliEntry();
  const warnings: string[] = [];
  // The witness is a verb of this same CLI. A build without it runs the pair without one, and
  // says so: without a witness there is no automatic failover (README "Peer replication").
  const withWitness = await hasVerb(entry, 'witness');
  if (!withWitness) warnings.push('this build of arraysim has no `witness` verb: the pair runs without a quorum witness (no automatic failover)');
  for (const w of warnings) note(w);

  const addrs = loopbackAddresses(o);
  const plan = labPlan(o.topology, { a: addrs.a, b: addrs.b, witness: withWitness ? addrs.witness : null });
  const dir = mkdtempSync(path.join(os.tmpdir(), 'arraysim-lab-'));
  const children: LabChild[] = [];
  let stopping: Promise<void> | null = null;
  const stopAll = () => (stopping ??= (async () => {
    // Arrays first (their link and witness sessions end while the witness still listens), then the witness.
    await Promise.all(children.filter((c) => c.name !== 'witness').map((c) => c.stop()));
    await Promise.all(children.filter((c) => c.name === 'witness').map((c) => c.stop()));
  })());
  let onSignal: (s: NodeJS.Signals) => void = () => {};
  const signals = new Promise<NodeJS.Signals>((resolve) => { onSignal = resolve; });
  const abort = { aborted: false };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const configs = new Map<string, string>();
    for (const s of plan.sites) {
      const file = path.join(dir, `${s.name}.yaml`);
      writeFileSync(file, `# ${s.name} of \`arraysim lab up --topology ${plan.topology}\`: ${plan.title}\n${stringify(siteConfig(plan, s.name))}`);
      configs.set(s.name, file);
    }
    const started = (async () => {
      if (plan.witness) {
        const w = new LabChild('witness', entry, witnessArgs(plan.witness, path.join(dir, 'witness-state.json')), path.join(dir, 'witness.log'));
        children.push(w);
        await w.line(WITNESS_READY);
      }
      // The secondary first: the primary dials its link listener.
      for (const s of [...plan.sites].reverse()) children.push(new LabChild(s.name, entry, siteArgs(configs.get(s.name)!), path.join(dir, `${s.name}.log`)));
      await ready(plan, children, o.readyTimeoutMs ?? 120_000, abort);
    })();
    const first = await Promise.race([started.then(() => 'ready' as const), signals]);
    if (first !== 'ready') {
      abort.aborted = true;
      note(`${first} before the pair was ready: stopping`);
      await stopAll();
      rmSync(dir, { recursive: true, force: true });
      return 1;
    }
    const report = labReport(plan, children, configs, warnings);
    print(o.json ? JSON.stringify(report) : humanReport(plan, report, dir));
    for (const c of children) {
      void c.exited.then((e) => { if (!stopping) note(`${e.name} (pid ${c.pid}) exited: ${describeExit(e)}; the others keep running (log: ${c.logFile})`); });
    }
    const sig = await signals;
    if (!o.json) print(`${sig}: stopping ${children.map((c) => c.name).join(', ')}`);
    await stopAll();
    rmSync(dir, { recursive: true, force: true });
    return 0;
  } catch (e) {
    note(`${(e as Error).message}`);
    note(`configurations and logs kept in ${dir}`);
    return 1;
  } finally {
    await stopAll();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/** Both portals take a login and the group is Synced on both arrays; a child that exits meanwhile fails it at once. */
async function ready(plan: LabPlan, children: LabChild[], timeoutMs: number, abort: { aborted: boolean }): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let why = 'not started';
  const died = Promise.race(children.map((c) => c.exited.then((e) => { throw new LabUpError(`${e.name} exited (${describeExit(e)}) while starting; see ${c.logFile}`); })));
  const poll = async () => {
    for (const s of plan.sites) {
      for (;;) {
        why = await siteReady(plan, s);
        if (abort.aborted) return;
        if (!why) break;
        if (Date.now() > deadline) throw new LabUpError(`not ready after ${timeoutMs / 1000} s: ${why}`);
        await new Promise((r) => setTimeout(r, 250));
      }
    }
  };
  await Promise.race([poll(), died]);
}

/** Why `s` is not ready yet, or '' when it is. */
async function siteReady(plan: LabPlan, s: SitePlan): Promise<string> {
  const portal = hostPort(s.addresses.portal);
  try {
    const dev = await ScsiDevice.open(`iscsi://${portal}/${plan.target}/${plan.lun}`, { loginTimeoutMs: 5000, initiatorName: 'iqn.2026-11.dev.arraysim:lab-up' });
    await dev.close();
  } catch (e) {
    return `${s.name}: no iSCSI login at ${portal} (${(e as Error).message})`;
  }
  try {
    const st = await adminCall(hostPort(s.addresses.admin), 'GET', '/v1/rcopy/groups') as { groups: { name: string; status: string; link: string }[] };
    const g = st.groups.find((x) => x.name === plan.group);
    if (!g) return `${s.name}: no group ${plan.group}`;
    if (g.status !== 'Synced') return `${s.name}: group ${plan.group} is ${g.status} (link ${g.link})`;
  } catch (e) {
    return `${s.name}: admin API: ${(e as Error).message}`;
  }
  return '';
}

function labReport(plan: LabPlan, children: LabChild[], configs: Map<string, string>, warnings: string[]): LabUpReport {
  const child = (name: string) => children.find((c) => c.name === name)!;
  return {
    topology: plan.topology,
    mode: plan.title,
    group: plan.group,
    target: plan.target,
    lun: plan.lun,
    wwn: plan.wwn,
    sites: plan.sites.map((s) => ({
      name: s.name, role: s.role, portals: [hostPort(s.addresses.portal)], target: plan.target,
      admin: hostPort(s.addresses.admin), link: hostPort(s.addresses.link),
      pid: child(s.name).pid, config: configs.get(s.name)!, log: child(s.name).logFile,
    })),
    witness: plan.witness ? { address: hostPort(plan.witness), pid: child('witness').pid, log: child('witness').logFile } : null,
    hosts: plan.hosts.map((h) => ({
      name: h.name, iqn: h.iqn, site: h.site, proximity: h.proximity,
      portals: h.connects.map((n) => hostPort(plan.sites.find((s) => s.name === n)!.addresses.portal)),
    })),
    warnings,
  };
}

function humanReport(plan: LabPlan, r: LabUpReport, dir: string): string {
  const lines = [`arraysim lab up --topology ${plan.topology}: ${plan.title}`, ''];
  for (const s of r.sites) {
    lines.push(`  ${s.name}  ${s.role.padEnd(9)}  portal ${s.portals.join(', ')}  admin http://${s.admin}  link ${s.link}  pid ${s.pid}`);
  }
  lines.push(r.witness ? `  witness            ${r.witness.address}  pid ${r.witness.pid}` : '  witness            none (see the warning above)');
  lines.push(`  target ${plan.target} LUN ${plan.lun}: ${plan.size}, WWN 3${plan.wwn}; Remote Copy group ${plan.group} Synced`);
  lines.push(`  configurations and logs: ${dir}`);
  lines.push('', `  npx arraysim rcopy showgroup --admin ${r.sites[0].admin}      # or any verb of README "Peer replication"`, '');
  lines.push(hostSnippets(plan), '', 'Ctrl-C stops them all.');
  return lines.join('\n');
}
