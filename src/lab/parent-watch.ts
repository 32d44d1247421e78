/**
 * A process started by `lab up` (src/lab/children.ts) ends when `lab up` does, however `lab up`
 * ended: its IPC channel closes when the parent exits, even by SIGKILL, where no signal handler
 * of the parent could have told the children. The child then sends itself SIGTERM, so the verb's
 * own clean stop runs (serve closes its portals and admin API; the witness closes its listener).
 */
export const EXIT_WITH_PARENT_ENV = 'ARRAYSIM_EXIT_WITH_PARENT';

export function exitWithParent(): void {
  if (process.env[EXIT_WITH_PARENT_ENV] !== '1' || !process.channel) return;
  // Watching the channel must not keep a verb alive that would otherwise end (a --help).
  process.channel.unref();
  process.on('disconnect', () => process.kill(process.pid, 'SIGTERM'));
}
