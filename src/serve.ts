/**
 * `arraysim serve`: build the array from flags or a YAML file, listen, then start the admin API.
 *
 * Start-up is the figure users feel (README "Start-up"), so a well-formed `serve` command line is
 * parsed here with node's own util.parseArgs and never loads yargs (with its string-width and
 * i18n, the slowest part of the CLI to load) or the other verbs' modules. Anything this parser
 * does not take as it is (--help, a typo, a conflict, a repeated single option, yargs' other
 * spellings) returns null and goes to the yargs command in src/cli.ts, which stays the truth for
 * help texts and usage errors; both end in serve() below.
 */
import { parseArgs } from 'node:util';
import { createLogger } from './log.ts';
import { configFromFile, configFromFlags, parseHostPort, portalsFrom } from './config.ts';
import { StorageArray } from './array.ts';
import { LazyAdminApi } from './admin/front.ts';
import { adminAccess } from './admin/auth.ts';
import { defaultAdmin } from './admin/client.ts';

export interface ServeArgs {
  listen?: string[];
  target?: string;
  lun?: string[];
  config?: string;
  logLevel?: string;
  admin?: string;
  splitter?: string;
  remoteCopy?: string;
  metrics?: boolean;
}

const SINGLE = ['target', 'config', 'log-level', 'admin', 'splitter', 'remote-copy', 'metrics', 'no-metrics'] as const;

/** `serve …` as ServeArgs when it is plainly well formed; null: let yargs read it. */
export function parseServeArgs(argv: readonly string[]): ServeArgs | null {
  if (argv[0] !== 'serve') return null;
  let parsed;
  try {
    parsed = parseArgs({
      args: argv.slice(1), strict: true, allowPositionals: false, tokens: true,
      options: {
        listen: { type: 'string', multiple: true }, lun: { type: 'string', multiple: true },
        target: { type: 'string' }, config: { type: 'string' }, 'log-level': { type: 'string' }, admin: { type: 'string' },
        splitter: { type: 'string' }, 'remote-copy': { type: 'string' }, metrics: { type: 'boolean' }, 'no-metrics': { type: 'boolean' },
      },
    });
  } catch {
    return null;
  }
  const v = parsed.values;
  const seen = parsed.tokens.filter((t) => t.kind === 'option').map((t) => (t as { name: string }).name);
  if (SINGLE.some((k) => seen.filter((n) => n === k).length > 1)) return null;
  if (v.metrics && v['no-metrics']) return null;
  if (v.config && (v.target !== undefined || v.lun || v.splitter !== undefined || v['remote-copy'] !== undefined)) return null;
  return {
    listen: v.listen, target: v.target, lun: v.lun, config: v.config, logLevel: v['log-level'], admin: v.admin, splitter: v.splitter,
    remoteCopy: v['remote-copy'], metrics: v['no-metrics'] ? false : v.metrics,
  };
}

export async function serve(a: ServeArgs): Promise<void> {
  let config = a.config ? configFromFile(a.config) : configFromFlags({ listen: a.listen, target: a.target, lun: a.lun, logLevel: a.logLevel, splitter: a.splitter, remoteCopy: a.remoteCopy, metrics: a.metrics });
  if (a.config) {
    if (a.listen?.length) config = { ...config, portals: portalsFrom(a.listen) };
    if (a.logLevel) config = { ...config, logLevel: a.logLevel };
    if (a.metrics !== undefined) config = { ...config, metrics: a.metrics };
  }
  const adminAddr = a.admin ?? config.admin?.listen ?? defaultAdmin(config.portals[0]?.port);
  const adminAt = adminAddr === 'none' ? null : parseHostPort(adminAddr);
  // Decided before anything starts: an admin API off loopback without a token is refused outright.
  const access = adminAt && adminAccess(adminAt.host, { envToken: process.env.ARRAYSIM_ADMIN_TOKEN, tokenFile: config.admin?.tokenFile });
  const log = createLogger(config.logLevel);
  const array = await StorageArray.create(config, log);
  await array.start();
  let admin: LazyAdminApi | null = null;
  if (adminAt && access) {
    // Listens once the portals do; the HTTP framework is loaded by the first request (./admin/front.ts).
    admin = new LazyAdminApi(array, log, { access });
    const { host, port } = adminAt;
    // The admin API is a convenience: a busy port must not stop the target.
    await admin.listen(host, port).catch((err) => { log.warn({ err: err.message, admin: adminAddr }, 'admin API not started'); admin = null; });
  }
  let stopping = false;
  const stop = async (sig: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal: sig }, 'shutting down');
    try {
      await admin?.close();
      await array.stop();
    } finally {
      log.flush?.();
      process.exit(0);
    }
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
}
