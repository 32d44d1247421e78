/**
 * Debian packages a test needs, installed when missing (as `npm test` does through
 * tools/test-all.sh, which lists the same packages): `apt-get update` first, then
 * `apt-get install --no-install-recommends`. Needs root; without it the test fails saying what
 * to install, rather than skipping.
 */
import { execFileSync, spawnSync } from 'node:child_process';

export function hasCommand(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

/** Make `cmd` available, installing Debian package `pkg` if it is not. */
export function ensureDebianCommand(cmd: string, pkg: string): void {
  if (hasCommand(cmd)) return;
  if (process.getuid?.() !== 0) throw new Error(`${cmd} is missing: install the Debian package ${pkg} (apt-get install ${pkg}), or run the tests as root`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const lock = ['-o', 'DPkg::Lock::Timeout=300'];
  execFileSync('apt-get', ['update', '-qq', ...lock], { env, stdio: ['ignore', 'ignore', 'pipe'], timeout: 300_000 });
  execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...lock, pkg], { env, stdio: ['ignore', 'ignore', 'pipe'], timeout: 600_000 });
  if (!hasCommand(cmd)) throw new Error(`apt-get installed ${pkg} but ${cmd} is still not on PATH`);
}
