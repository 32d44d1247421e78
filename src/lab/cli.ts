/**
 * `arraysim lab list` and `arraysim lab run SCENARIO... | --all [--json]`: scripted scenarios end
 * to end (src/lab/run.ts). Exit 0 only when every outcome matches the documented one.
 * `arraysim lab up [--topology metro|sync|classic] [--json]`: the replicated pair and its witness
 * as processes on loopback, until Ctrl-C (src/lab/up.ts).
 */
import type { Argv, CommandModule } from 'yargs';
import { formatTable, runScenario } from './run.ts';
import type { LabRow } from './run.ts';
import { findScenario, SCENARIOS } from './scenarios.ts';
import { TOPOLOGIES } from './topology.ts';
import { allMetroScenarios, findMetroScenario, isMetroName } from './metro/scenarios.ts';
import { formatMetroTable } from './metro/judge.ts';
import type { MetroRow } from './metro/judge.ts';
import type { Topology } from './topology.ts';
import { Progress } from '../progress.ts';
import type { ProgressOptions } from '../progress.ts';

interface LabArgs {
  action: 'list' | 'run' | 'up';
  scenarios?: string[];
  all: boolean;
  json: boolean;
  /** run: the mixed day's seed. */
  seed?: number;
  /** up (the CLI fills in the defaults). */
  topology?: Topology;
  siteA?: string;
  siteB?: string;
  witness?: string;
  port?: number;
}

/**
 * `progress` reaches src/progress.ts (tests hand in a stand-in terminal): on a TTY, stderr shows a
 * bar of the scenarios run, with rate and ETA; stdout carries only the table or the JSON.
 */
export async function runLab(a: LabArgs, print: (s: string) => void = (s) => process.stdout.write(`${s}\n`), progress: Partial<ProgressOptions> = {}): Promise<number> {
  if (a.action === 'up') {
    if (a.scenarios?.length || a.all) throw new LabUsageError('lab up takes no scenario names (see --topology)');
    const { labUp, LabUpError } = await import('./up.ts');
    try {
      return await labUp({
        topology: a.topology ?? 'metro', json: a.json,
        siteA: a.siteA ?? '127.0.1.1', siteB: a.siteB ?? '127.0.2.1', witness: a.witness ?? '127.0.3.1', port: a.port ?? 3260,
      }, print);
    } catch (e) {
      if (e instanceof LabUpError) throw new LabUsageError(e.message);
      throw e;
    }
  }
  if (a.action === 'list') {
    const metro = allMetroScenarios();
    if (a.json) { print(JSON.stringify([...SCENARIOS, ...metro], null, 2)); return 0; }
    const w = Math.max(...[...SCENARIOS, ...metro].map((s) => s.name.length));
    for (const s of SCENARIOS) print(`${s.name.padEnd(w)}  ${s.title} [splitter ${s.splitter}${s.settings.length ? `; ${s.settings.join(' ')}` : ''}]`);
    for (const s of metro) print(`${s.name.padEnd(w)}  ${s.title} [${s.topology === 'sync' ? 'Active Sync pair' : 'metro pair'}${s.witness ? ' + witness' : ''}, two hosts${s.topology === 'sync' ? ', each on its local array' : ''}]`);
    return 0;
  }
  // metro/<scenario> and metro-sync/<scenario>: the failure lab on the replicated pair (src/lab/metro), its own table.
  const metro = (a.scenarios ?? []).filter(isMetroName);
  if (metro.length) {
    if (a.all || metro.length !== a.scenarios!.length) throw new LabUsageError('run metro/ and metro-sync/ scenarios on their own (not with --all or VAAI scenarios)');
    const unknownMetro = metro.filter((n) => !findMetroScenario(n));
    if (unknownMetro.length) throw new LabUsageError(`unknown scenario ${unknownMetro.map((n) => `"${n}"`).join(', ')}; \`lab list\` shows them`);
    const { runMetroScenario } = await import('./metro/run.ts');
    const rows: MetroRow[] = [];
    const p = Progress.start({ label: 'lab run', total: metro.length, noun: 'scenarios', ...progress });
    try {
      for (const n of metro) { rows.push(await runMetroScenario(findMetroScenario(n)!)); p.tick(); }
    } finally {
      p.done();
    }
    if (a.json) print(JSON.stringify(rows, null, 2));
    else {
      print(formatMetroTable(rows));
      const misses = rows.filter((r) => !r.match).length;
      const restarted = rows.filter((r) => r.startups.length).map((r) => `${r.scenario} (${r.startups.length})`);
      print(`\n${rows.length - misses} of ${rows.length} metro scenarios match the paper (${(rows.reduce((t, r) => t + r.ms, 0) / 1000).toFixed(1)} s)`);
      if (restarted.length) print(`started again before the fault (the pair was not steady): ${restarted.join(', ')}`);
    }
    return bad(rows) ? 1 : 0;
  }
  const names = a.all ? SCENARIOS.map((s) => s.name) : (a.scenarios ?? []);
  if (!names.length) throw new LabUsageError('name one or more scenarios (see `lab list`), or --all');
  const unknown = names.filter((n) => !findScenario(n));
  if (unknown.length) throw new LabUsageError(`unknown scenario ${unknown.map((n) => `"${n}"`).join(', ')}; \`lab list\` shows them`);
  const rows: LabRow[] = [];
  const p = Progress.start({ label: 'lab run', total: names.length, noun: 'scenarios', ...progress });
  try {
    for (const n of names) {
      rows.push(await runScenario(findScenario(n)!, { seed: a.seed }));
      p.tick();
    }
  } finally {
    p.done();
  }
  if (a.json) print(JSON.stringify(rows, (_k, v) => (typeof v === 'bigint' ? v.toString() : v), 2));
  else {
    print(formatTable(rows));
    const bad = rows.filter((r) => !r.match).length;
    print(`\n${rows.length - bad} of ${rows.length} scenarios match the documented outcome (${(rows.reduce((t, r) => t + r.ms, 0) / 1000).toFixed(1)} s)`);
  }
  return rows.every((r) => r.match) ? 0 : 1;
}

const bad = (rows: { match: boolean }[]): boolean => rows.some((r) => !r.match);

export class LabUsageError extends Error {}

export const labCommand: CommandModule<object, LabArgs> = {
  command: 'lab <action> [scenarios..]',
  describe: 'the VAAI corruption lab (list, run: scripted scenarios with a splitter, an ESXi-like host and verify) and the metro failure lab (run metro/<scenario> for Active Peer Persistence, metro-sync/<scenario> for Active Sync: failures from the HPE paper on the pair, two multipath hosts); up: a replicated pair and its witness on loopback',
  builder: (y: Argv) => y
    .positional('action', { choices: ['list', 'run', 'up'] as const, describe: 'list the scenarios, run some, or bring up the metro pair' })
    .positional('scenarios', { type: 'string', array: true, describe: 'scenario names (run)' })
    .option('all', { type: 'boolean', default: false, describe: 'run every scenario' })
    .option('seed', { type: 'number', describe: 'run: the mixed day\'s seed (it draws the Table 2 preset and the day\'s work; printed in its row)' })
    .option('json', { type: 'boolean', default: false, describe: 'run: rows as JSON (with each host run\'s report and verify\'s extents); up: one JSON object (portals, target, admin and witness addresses, pids), then keep running' })
    .option('topology', { choices: TOPOLOGIES, default: 'metro' as Topology, describe: 'up: metro (Active Peer Persistence, uniform hosts), sync (Active Sync, each host on its local array), classic (Peer Persistence: the secondary is standby)' })
    .option('site-a', { type: 'string', default: '127.0.1.1', describe: 'up: site A\'s loopback address (primary)' })
    .option('site-b', { type: 'string', default: '127.0.2.1', describe: 'up: site B\'s loopback address (secondary)' })
    .option('witness', { type: 'string', default: '127.0.3.1', describe: 'up: the witness\'s loopback address' })
    .option('port', { type: 'number', default: 3260, describe: 'up: iSCSI portal port of both sites; admin API +1000, replication link +2000, witness +2040' }) as unknown as Argv<LabArgs>,
  handler: async (a) => {
    try {
      const code = await runLab(a);
      // lab up ends only when stopped: leave at once, without waiting for idle HTTP keep-alive sockets.
      if (a.action === 'up') process.exit(code);
      process.exitCode = code;
    } catch (e) {
      if (e instanceof LabUsageError) { process.stderr.write(`arraysim lab: ${e.message}\n`); process.exitCode = 1; return; }
      throw e;
    }
  },
};
