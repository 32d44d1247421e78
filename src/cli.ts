/**
 * The arraysim command line. The `serve` flags are a contract scripts depend on:
 *   arraysim serve [--listen HOST:PORT]... [--target IQN] [--lun SPEC]... [--config FILE] [--log-level L]
 */
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { createLogger } from './log.ts';
import { configFromFile, configFromFlags, portalsFrom } from './config.ts';
import { StorageArray } from './array.ts';

export async function main(argv: string[]): Promise<void> {
  await yargs(argv)
    .scriptName('arraysim')
    .command(
      'serve',
      'run the target',
      (y) => y
        .option('listen', { type: 'string', array: true, describe: 'portal HOST:PORT (repeatable); default 127.0.0.1:3260' })
        .option('target', { type: 'string', describe: 'target IQN; default iqn.2026-11.dev.arraysim:default' })
        .option('lun', { type: 'string', array: true, describe: 'LUN SPEC (repeatable): SIZE[,opt...] or file:PATH[,size=SIZE][,opt...]; opts thick, removable, readonly, block=512|4096' })
        .option('config', { type: 'string', describe: 'YAML configuration file' })
        .option('log-level', { type: 'string', describe: 'trace|debug|info|warn|error; default info' }),
      async (a) => {
        let config = a.config ? configFromFile(a.config) : configFromFlags({ listen: a.listen, target: a.target, lun: a.lun, logLevel: a.logLevel });
        if (a.config) {
          if (a.listen?.length) config = { ...config, portals: portalsFrom(a.listen) };
          if (a.logLevel) config = { ...config, logLevel: a.logLevel };
        }
        const log = createLogger(config.logLevel);
        const array = await StorageArray.create(config, log);
        await array.start();
        let stopping = false;
        const stop = async (sig: string) => {
          if (stopping) return;
          stopping = true;
          log.info({ signal: sig }, 'shutting down');
          try {
            await array.stop();
          } finally {
            log.flush?.();
            process.exit(0);
          }
        };
        process.on('SIGINT', () => void stop('SIGINT'));
        process.on('SIGTERM', () => void stop('SIGTERM'));
      },
    )
    .demandCommand(1, 'give a command: serve')
    .strict()
    .help()
    .parseAsync();
}

main(hideBin(process.argv)).catch((err) => {
  process.stderr.write(`arraysim: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
