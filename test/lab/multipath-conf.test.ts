/**
 * One dm-multipath device section: MULTIPATH_CONF of src/lab/snippets.ts is what lab up prints,
 * what README's walkthrough shows, and what the VM test's guest writes to /etc/multipath.conf
 * (the harness prints it with tools/vm/multipath-device.mjs and passes it in as
 * TARGET_MULTIPATH_DEVICE, the way run.sh passes TARGET_* variables). The guest script is run
 * here only as far as writing that file; the VM harness itself is not run. The docker-compose
 * initiator's copy is generated (test/lab/compose.test.ts). A negative control shows the check
 * catches a guest script that sets its own values.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { MULTIPATH_CONF } from '../../src/lab/snippets.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const read = (f: string) => readFileSync(path.join(root, f), 'utf8');
/** Settings that belong in the device section, and so must not appear anywhere else in the guest's file. */
const DEVICE_SETTINGS = ['path_grouping_policy', 'prio', 'hardware_handler', 'path_checker', 'failback', 'no_path_retry', 'rr_min_io_rq', 'path_selector'];

/** /etc/multipath.conf as array.sh's multipath_conf() writes it, with `device` passed in as run.sh passes TARGET_* (export NAME=%q, sourced). */
function guestConf(arraySh: string, device: string): string {
  // The function: from its first line past its here-document's end (CONF) to its closing brace.
  const start = arraySh.indexOf('\nmultipath_conf() {\n');
  const end = arraySh.indexOf('\n}\n', arraySh.indexOf('\nCONF\n', start));
  if (start < 0 || end < 0) throw new Error('array.sh has no multipath_conf() function');
  const fn = arraySh.slice(start + 1, end + 3);
  const script = `printf 'export %s=%q\\n' TARGET_MULTIPATH_DEVICE "$1" > "$2"; unset TARGET_MULTIPATH_DEVICE; source "$2"\n${fn}multipath_conf`;
  const dir = mkdtempSync(path.join(tmpdir(), 'multipath-conf-test-'));
  try {
    return execFileSync('bash', ['-c', script, 'bash', device, path.join(dir, 'env')], { encoding: 'utf8' });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Why the guest's file does not use exactly `device` for arraysim's LUs. */
function confProblems(conf: string, device: string): string[] {
  const problems: string[] = [];
  if (!conf.includes(`${device}\n`)) problems.push('the device section is not in the file verbatim');
  const rest = conf.replace(device, '');
  for (const k of DEVICE_SETTINGS) {
    if (new RegExp(`^\\s*${k}\\s`, 'm').test(rest)) problems.push(`${k} is set outside the device section`);
  }
  return problems;
}

describe('the dm-multipath device section has one source', () => {
  it('tools/vm/multipath-device.mjs prints MULTIPATH_CONF, and the harness passes its output to the guest', () => {
    expect(execFileSync(process.execPath, ['tools/vm/multipath-device.mjs'], { cwd: root, encoding: 'utf8' })).toBe(`${MULTIPATH_CONF}\n`);
    const harness = read('tools/vm/kernel-initiator-test.sh');
    expect(harness).toMatch(/^\s*export TARGET_MULTIPATH_DEVICE\n\s*TARGET_MULTIPATH_DEVICE=\$\(cd "\$REPO" && node tools\/vm\/multipath-device\.mjs\)$/m);
    // run.sh hands every exported TARGET_* variable to the guest.
    expect(read('tools/vm/run.sh')).toContain(`[[ $name == TARGET_* && $name != TARGET_HOST ]] && printf 'export %s=%q\\n' "$name" "\${!name}"`);
  });

  it('the guest script writes it to /etc/multipath.conf and sets none of its values itself', () => {
    const conf = guestConf(read('tools/vm/guest-tests/array.sh'), MULTIPATH_CONF);
    expect(confProblems(conf, MULTIPATH_CONF)).toEqual([]);
    expect(conf).toContain('polling_interval 1'); // the test's own defaults stay
    expect(conf).toContain('product "EXPLICIT-DISK"'); // and its blacklist
  });

  it('negative control: a guest script with values of its own is caught', () => {
    const own = read('tools/vm/guest-tests/array.sh').replace('  polling_interval 1\n', '  polling_interval 1\n  no_path_retry 30\n');
    expect(confProblems(guestConf(own, MULTIPATH_CONF), MULTIPATH_CONF)).toEqual(['no_path_retry is set outside the device section']);
    const other = MULTIPATH_CONF.replace('no_path_retry 18', 'no_path_retry queue');
    expect(confProblems(guestConf(read('tools/vm/guest-tests/array.sh'), other), MULTIPATH_CONF)).toContain('the device section is not in the file verbatim');
  });

  it('README\'s walkthrough shows it verbatim', () => {
    expect(read('README.md')).toContain(`\`\`\`\n${MULTIPATH_CONF}\n\`\`\``);
  });
});
