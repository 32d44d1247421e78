/**
 * The splitter's command-line verbs, as yargs command modules that src/cli.ts registers:
 *   arraysim verify [--admin HOST:PORT] [--group G] [--copy C] [--json]
 *       exit 0: consistent, 1: diverged, 2: error (no such group, transfer not active, no array)
 *   arraysim splitter presets [--json]
 */
import type { CommandModule } from 'yargs';
import { adminCall } from '../admin/client.ts';
import { VERIFY_BODY } from '../admin/routes/splitter.ts';
import { PRESETS, PRIMITIVES } from './policy.ts';
import { withProgress } from '../progress.ts';
import { formatVerify } from './verify.ts';
import type { VerifyResult } from './verify.ts';

/** The presets as a text table, then their sources. */
export function presetsTable(): string {
  const rows = PRESETS.map((p) => [p.name, p.spec.kind, ...PRIMITIVES.map((k) => p.spec.policies[k]), p.description]);
  const head = ['PRESET', 'KIND', ...PRIMITIVES.map((k) => k.toUpperCase()), 'WHAT IT MODELS'];
  const widths = head.map((h, i) => (i === head.length - 1 ? 0 : Math.max(h.length, ...rows.map((r) => r[i].length))));
  const line = (r: string[]) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join('  ');
  return [line(head), ...rows.map(line), '', 'Sources (shared/seeds/):', ...PRESETS.map((p) => `  ${p.name}: ${p.source}`)].join('\n');
}

interface VerifyArgs { admin: string; group: string; copy?: string; json?: boolean }

export function splitterCommands(defaultAdmin: string): CommandModule<object, any>[] {
  const verify: CommandModule<object, VerifyArgs> = {
    command: 'verify',
    describe: 'drain a consistency group\'s journal and compare production with a copy; exit 0 consistent, 1 diverged, 2 error',
    builder: (y) => y
      .option('admin', { type: 'string', default: defaultAdmin, describe: 'admin API address' })
      .option('group', { type: 'string', default: 'default', describe: 'consistency group' })
      .option('copy', { type: 'string', describe: 'copy (default: the group\'s first)' })
      .option('json', { type: 'boolean', describe: 'print the result as JSON' }) as never,
    handler: async (a) => {
      try {
        // The API answers when the verify is over and reports no steps: on a terminal, a spinner
        // and the time after the first second; piped, nothing but the result.
        const r = await withProgress({ label: `verify ${a.group}` }, () =>
          adminCall(a.admin, 'POST', `/v1/groups/${encodeURIComponent(a.group)}/verify`, { body: a.copy ? { copy: a.copy } : {}, schema: VERIFY_BODY })) as VerifyResult;
        console.log(a.json ? JSON.stringify(r, null, 2) : formatVerify(r));
        process.exitCode = r.consistent ? 0 : 1;
      } catch (e) {
        process.stderr.write(`arraysim verify: ${e instanceof Error ? e.message : String(e)}\n`);
        process.exitCode = 2;
      }
    },
  };
  const presets: CommandModule<object, { json?: boolean }> = {
    command: 'presets',
    describe: 'list the splitter presets (named after the seeds) with their policies and sources',
    builder: (y) => y.option('json', { type: 'boolean', describe: 'print as JSON' }) as never,
    handler: (a) => {
      console.log(a.json ? JSON.stringify(PRESETS, null, 2) : presetsTable());
    },
  };
  const splitter: CommandModule<object, object> = {
    command: 'splitter <command>',
    describe: 'write splitter: presets',
    builder: (y) => y.command(presets).demandCommand(1) as never,
    handler: () => {},
  };
  return [verify, splitter];
}
