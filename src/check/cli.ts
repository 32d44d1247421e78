/**
 * `arraysim check metro [--seconds N] [--seed S] [--json] [--faults K,K] [--out DIR]`: the
 * Jepsen-style checker of the replicated pair (README "Correctness checker"). Exits 1 on any
 * violation and prints the seed, so `--seed S` replays the same fault schedule and client choices.
 * `arraysim check history FILE` recomputes the verdict of a saved run from its file alone.
 */
import type { Argv, CommandModule } from 'yargs';
import { FAULTS } from './faults.ts';
import { TOPOLOGIES } from '../lab/topology.ts';
import type { Topology } from '../lab/topology.ts';

interface Args { what: string; file?: string; seconds: number; seed?: number; json: boolean; faults?: string; out: string; hook?: string; keep: boolean; rate: number; verbose: boolean; topology: Topology }

export const checkCommand: CommandModule<object, Args> = {
  command: 'check <what> [file]',
  describe: 'correctness checker: `check metro` runs the replicated pair under seeded faults and judges the history; `check history FILE` re-judges a saved run',
  builder: (y: Argv) => y
    .positional('what', { choices: ['metro', 'history'] as const, describe: 'metro: run; history: recheck a saved results/check-<seed>.json' })
    .positional('file', { type: 'string', describe: 'history: the saved file' })
    .option('seconds', { type: 'number', default: 60, describe: 'how long faults run (the long form is --seconds 1800)' })
    .option('topology', { choices: TOPOLOGIES, default: 'metro' as Topology, describe: 'lab up\'s topology: metro (Active Peer Persistence, hosts see both arrays), sync (Active Sync, each host its local array), classic' })
    .option('seed', { type: 'number', describe: 'fault schedule and client choices (default: random, printed)' })
    .option('json', { type: 'boolean', default: false, describe: 'print the report as JSON (progress lines go to stderr)' })
    .option('faults', { type: 'string', describe: `only these fault kinds, comma-separated: ${FAULTS.map((f) => f.name).join(', ')}` })
    .option('rate', { type: 'number', default: 25, describe: 'operations per second per client at most (2 hosts × 5 clients)' })
    .option('out', { type: 'string', default: 'results', describe: 'directory for check-<seed>.json' })
    .option('hook', { type: 'string', describe: 'negative control: run the arrays with ARRAYSIM_FAULT_HOOK=<hook> (ack-before-peer, split-brain)' })
    .option('verbose', { type: 'boolean', default: false, describe: 'print every operation as it ends (invocation, answer, time taken)' })
    .option('keep', { type: 'boolean', default: false, describe: 'keep the arrays\' scratch directory (configs, volumes, logs)' }) as never,
  handler: async (a) => {
    if (a.what === 'history') {
      if (!a.file) throw new Error('usage: arraysim check history FILE');
      const { recheck } = await import('./run.ts');
      const { saved, verdict } = recheck(a.file);
      if (a.json) console.log(JSON.stringify({ seed: saved.seed, ...verdict }, null, 2));
      else {
        console.log(`seed ${saved.seed}: ${verdict.stats.writes} writes (${verdict.stats.acked} acknowledged), ${verdict.stats.reads} reads, ${verdict.stats.increments} increments`);
        for (const v of verdict.violations) console.log(`VIOLATION ${v.kind}: ${v.message}`);
        if (!verdict.violations.length) console.log('no violations');
      }
      process.exitCode = verdict.violations.length ? 1 : 0;
      return;
    }
    if (!Number.isFinite(a.seconds) || a.seconds <= 0) throw new Error('--seconds must be a positive number');
    if (!Number.isFinite(a.rate) || a.rate <= 0) throw new Error('--rate must be a positive number');
    const kinds = a.faults?.split(',').map((s) => s.trim()).filter(Boolean);
    const unknown = kinds?.filter((k) => !FAULTS.some((f) => f.name === k));
    if (unknown?.length) throw new Error(`--faults: unknown kind ${unknown.join(', ')} (have ${FAULTS.map((f) => f.name).join(', ')})`);
    const seed = a.seed ?? Math.floor(Math.random() * 2 ** 31);
    if (!Number.isInteger(seed) || seed < 0) throw new Error('--seed must be a non-negative integer');
    const out = (line: string) => (a.json ? process.stderr : process.stdout).write(`${line}\n`);
    const { runCheck } = await import('./run.ts');
    const r = await runCheck({
      seconds: a.seconds, seed, out: a.out, faults: kinds, log: out, keepDir: a.keep, rate: a.rate, verbose: a.verbose, topology: a.topology,
      arrayEnv: a.hook ? { ARRAYSIM_FAULT_HOOK: a.hook } : undefined,
    });
    if (a.json) console.log(JSON.stringify(r, null, 2));
    else {
      const s = r.stats;
      out(`seed ${r.seed}: ${s.writes} writes (${s.acked} acknowledged, ${s.indeterminate} indeterminate), ${s.reads} reads, ${s.increments} increments (${s.ackedIncrements} acknowledged)`);
      out(`faults: ${r.faults.faults.length} (${[...new Set(r.faults.faults.map((f) => f.kind))].join(', ') || 'none'}); group transitions: ${r.transitions}; path changes: ${r.pathChanges}`);
      for (const v of r.violations) out(`VIOLATION ${v.kind}: ${v.message}`);
      out(r.ok ? 'no violations' : `${r.violations.length} violation(s); replay with --seed ${r.seed}`);
      out(`history: ${r.historyPath}`);
    }
    process.exitCode = r.ok ? 0 : 1;
  },
};
