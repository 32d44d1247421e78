/**
 * The arraysim command line. The `serve` flags are a contract scripts depend on:
 *   arraysim serve [--listen HOST:PORT]... [--target IQN] [--lun SPEC]... [--config FILE] [--log-level L] [--admin HOST:PORT|none] [--no-metrics]
 * Each verb's --help names every option and LUN SPEC option the README's "Command line" documents
 * (test/integration/cli-help.test.ts holds the two to each other).
 */
import { adminCall, defaultAdmin } from './admin/client.ts';
import { exitWithParent } from './lab/parent-watch.ts';
import { parseServeArgs, serve } from './serve.ts';

export async function main(argv: string[]): Promise<void> {
  // Started by `lab up`: end with it, even when it is killed (src/lab/parent-watch.ts).
  exitWithParent();
  const fast = parseServeArgs(argv);
  if (fast) return serve(fast);
  // Every other command line, and any `serve` the fast parser leaves alone (src/serve.ts).
  const { default: yargs } = await import('yargs');
  const { ALUA_SET_BODY } = await import('./admin/routes/alua.ts');
  const { splitterCommands } = await import('./splitter/cli.ts');
  await yargs(argv)
    .scriptName('arraysim')
    .command(
      'serve',
      'run the target',
      (y) => y
        .option('listen', { type: 'string', array: true, describe: 'portal HOST:PORT (repeatable); default 127.0.0.1:3260' })
        .option('target', { type: 'string', describe: 'target IQN; default iqn.2026-11.dev.arraysim:default' })
        .option('lun', { type: 'string', array: true, describe: 'LUN SPEC (repeatable; LUNs numbered from 0): SIZE[,OPTION...] for a thin memory LUN (256MiB, 1TiB) or file:PATH[,size=SIZE][,OPTION...] for a sparse file; OPTIONs: thick (memory: allocate every page at startup), removable, readonly, block=512|4096 (logical block size), physical=BYTES (physical block size and unmap granularity; default the logical size), writethrough (file: every write durable before GOOD); default one thin 1GiB memory LUN' })
        .option('config', { type: 'string', describe: 'YAML configuration file (targets and LUNs; not with --target or --lun)' })
        .option('log-level', { type: 'string', describe: 'trace|debug|info|warn|error; default info (overrides the file\'s log.level)' })
        .option('admin', { type: 'string', describe: 'admin API HOST:PORT, or "none"; default admin.listen of the config, else 127.0.0.1:(first portal port + 1000). Off loopback it needs a bearer token (ARRAYSIM_ADMIN_TOKEN or admin.tokenFile)' })
        .option('splitter', { type: 'string', describe: 'protect every LUN in group "default" (local copy "local"): a preset (arraysim splitter presets) or ats=P,xcopy=P,writesame=P,unmap=P, P support|reject|ignore' })
        .option('remote-copy', { type: 'string', describe: 'with --splitter: the copy of group "default" is a remote copy (CRR) on another arraysim instead of "local": name=N,remote=HOST:PORT,target=IQN[,luns=0:1][,rate=50Mbit]' })
        .option('metrics', { type: 'boolean', describe: 'Prometheus metrics at GET /metrics on the admin API; --no-metrics turns them off (no per-command timestamps); default on' })
        // The file describes the targets and LUNs; flags for them beside it would be ignored.
        .conflicts('config', ['target', 'lun', 'splitter', 'remote-copy']),
      (a) => serve(a),
    )
    .command(
      'status',
      'show targets, LUNs, sessions and per-portal counters of a running target',
      (y) => y.option('admin', { type: 'string', default: defaultAdmin(), describe: 'admin API address' }),
      async (a) => { console.log(JSON.stringify(await adminCall(a.admin, 'GET', '/v1/status'), null, 2)); },
    )
    .command(
      'alua <action>',
      'show or change ALUA target port group states on a running target',
      (y) => y
        .positional('action', { choices: ['show', 'set'] as const, describe: 'show: print the groups; set: change one group' })
        .option('admin', { type: 'string', default: defaultAdmin(), describe: 'admin API address' })
        .option('tpg', { type: 'number', describe: 'target port group number (set)' })
        .option('state', { type: 'string', describe: 'active/optimized (ao), active/non-optimized (ano), standby, unavailable, offline (set)' })
        .option('host', { type: 'string', describe: 'initiator IQN: change only the state this host sees (host proximity)' })
        .option('clear-host', { type: 'boolean', describe: 'remove the --host override instead of setting one' })
        .option('preferred', { type: 'boolean', describe: 'set the PREF bit (--no-preferred clears it)' })
        .option('transition-ms', { type: 'number', describe: 'time in transitioning first (default: the configured one)' })
        .option('target', { type: 'string', describe: 'only this target (default: all targets)' })
        .option('reason', { type: 'string', describe: 'logged with the change' })
        .option('wait', { type: 'boolean', default: true, describe: 'return once the transition is complete (--no-wait: at once)' }),
      async (a) => {
        if (a.action === 'show') { console.log(JSON.stringify(await adminCall(a.admin, 'GET', '/v1/alua'), null, 2)); return; }
        // Checked against POST /v1/alua's own schema before sending: a bad --tpg or --state is refused here.
        const body = {
          tpg: a.tpg, state: a.state?.trim().toLowerCase(), host: a.host, clearHost: a.clearHost, preferred: a.preferred,
          transitionMs: a.transitionMs, target: a.target, reason: a.reason ?? 'arraysim alua set', wait: a.wait,
        };
        console.log(JSON.stringify(await adminCall(a.admin, 'POST', '/v1/alua', { body, schema: ALUA_SET_BODY }), null, 2));
      },
    )
    .command(splitterCommands(defaultAdmin()))
    .command((await import('./host/cli.ts')).hostCommand)
    .command((await import('./lab/cli.ts')).labCommand)
    .command((await import('./replication/cli.ts')).RCOPY_COMMAND)
    .command((await import('./check/cli.ts')).checkCommand)
    .command((await import('./replication/witness-server.ts')).WITNESS_COMMAND)
    .demandCommand(1, 'give a command: serve, status, alua, verify, splitter, rp, host, lab, rcopy, witness, check')
    // A usage mistake gets the help text; an error from a command (a LUN that cannot be
    // created, an admin call that failed) is one line from main's caller, not help plus a stack.
    .fail((msg, err, y) => {
      if (err) throw err;
      y.showHelp((s: string) => process.stderr.write(`${s}\n\n${msg}\n`));
      process.exit(1);
    })
    .strict()
    .help()
    .parseAsync();
}

main(process.argv.slice(2)).catch((err) => {
  process.stderr.write(`arraysim: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
