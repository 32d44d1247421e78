/**
 * `arraysim lab list` and `arraysim lab run SCENARIO... | --all [--json]`: scripted scenarios end
 * to end (src/lab/run.ts). Exit 0 only when every outcome matches the documented one.
 */
import type { Argv, CommandModule } from 'yargs';
import { formatTable, runScenario } from './run.ts';
import type { LabRow } from './run.ts';
import { findScenario, SCENARIOS } from './scenarios.ts';
import { Progress } from '../progress.ts';
import type { ProgressOptions } from '../progress.ts';

interface LabArgs {
  action: 'list' | 'run';
  scenarios?: string[];
  all: boolean;
  json: boolean;
}

/**
 * `progress` reaches src/progress.ts (tests hand in a stand-in terminal): on a TTY, stderr shows a
 * bar of the scenarios run, with rate and ETA; stdout carries only the table or the JSON.
 */
export async function runLab(a: LabArgs, print: (s: string) => void = (s) => process.stdout.write(`${s}\n`), progress: Partial<ProgressOptions> = {}): Promise<number> {
  if (a.action === 'list') {
    if (a.json) { print(JSON.stringify(SCENARIOS, null, 2)); return 0; }
    const w = Math.max(...SCENARIOS.map((s) => s.name.length));
    for (const s of SCENARIOS) print(`${s.name.padEnd(w)}  ${s.title} [splitter ${s.splitter}${s.settings.length ? `; ${s.settings.join(' ')}` : ''}]`);
    return 0;
  }
  const names = a.all ? SCENARIOS.map((s) => s.name) : (a.scenarios ?? []);
  if (!names.length) throw new LabUsageError('name one or more scenarios (see `lab list`), or --all');
  const unknown = names.filter((n) => !findScenario(n));
  if (unknown.length) throw new LabUsageError(`unknown scenario ${unknown.map((n) => `"${n}"`).join(', ')}; \`lab list\` shows them`);
  const rows: LabRow[] = [];
  const p = Progress.start({ label: 'lab run', total: names.length, noun: 'scenarios', ...progress });
  try {
    for (const n of names) {
      rows.push(await runScenario(findScenario(n)!));
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

export class LabUsageError extends Error {}

export const labCommand: CommandModule<object, LabArgs> = {
  command: 'lab <action> [scenarios..]',
  describe: 'run the VAAI corruption lab: scripted scenarios with a splitter, an ESXi-like host and verify',
  builder: (y: Argv) => y
    .positional('action', { choices: ['list', 'run'] as const, describe: 'list the scenarios, or run some' })
    .positional('scenarios', { type: 'string', array: true, describe: 'scenario names (run)' })
    .option('all', { type: 'boolean', default: false, describe: 'run every scenario' })
    .option('json', { type: 'boolean', default: false, describe: 'rows as JSON (with each host run\'s report and verify\'s extents)' }) as unknown as Argv<LabArgs>,
  handler: async (a) => {
    try {
      process.exitCode = await runLab(a);
    } catch (e) {
      if (e instanceof LabUsageError) { process.stderr.write(`arraysim lab: ${e.message}\n`); process.exitCode = 1; return; }
      throw e;
    }
  },
};
