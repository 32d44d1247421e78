/**
 * Every verb's `--help` names every option the README's "Command line" section documents: the
 * `--flags` on the verb's usage line, and for `serve` every LUN SPEC option of the `SPEC` bullet.
 * The verbs are read from the README (each `npx arraysim VERB ...` usage line), so a verb added
 * there is checked without touching this file. Runs the built bin, as a user would.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const run = promisify(execFile);

interface UsageLine { verb: string[]; options: string[] }

/** The README's "Command line" section: from its heading to the next `## ` heading. */
function commandLineSection(readme: string): string {
  const start = readme.indexOf('\n## Command line\n');
  if (start < 0) throw new Error('README has no "## Command line" section');
  const end = readme.indexOf('\n## ', start + 1);
  return readme.slice(start, end < 0 ? undefined : end);
}

/** Each `npx arraysim ...` line of the section's code block: the verb words, then the `--flags` named. */
export function usageLines(section: string): UsageLine[] {
  const lines: UsageLine[] = [];
  for (const line of section.split('\n')) {
    const m = /^npx arraysim (.*)$/.exec(line.trim());
    if (!m) continue;
    const words = m[1].split(/\s+/);
    const verb: string[] = [];
    for (const w of words) { if (/^[a-z][a-z-]*$/.test(w)) verb.push(w); else break; }
    lines.push({ verb, options: [...new Set(m[1].match(/--[a-z][a-z-]*/g) ?? [])] });
  }
  return lines;
}

/**
 * The LUN SPEC options of the "`SPEC` is ..." bullet: `size=` and every backticked option after
 * "Options:", as the name a user types (`block=`, `physical=`, `thick`).
 */
export function specOptions(section: string): string[] {
  const bullet = section.split('\n- ').find((b) => b.startsWith('`SPEC` is'));
  if (!bullet) throw new Error('README "Command line" has no "`SPEC` is" bullet');
  const [format, options = ''] = bullet.split('Options:');
  const names = new Set<string>();
  for (const m of format.matchAll(/\[,([a-z]+=)/g)) names.add(m[1]);
  // Only top-level backticks, not ones inside a parenthesised explanation (`DATA PROTECT` ...).
  let depth = 0;
  for (const part of options.split(/(`[^`]*`|[()])/)) {
    if (part === '(') depth++;
    else if (part === ')') depth--;
    else if (depth === 0 && part.startsWith('`')) {
      const m = /^`([a-z]+)(=?)/.exec(part);
      if (m) names.add(m[1] + m[2]);
    }
  }
  return [...names];
}

/** The README names that `help` lacks. */
export function missingFromHelp(help: string, names: string[]): string[] {
  // A name stands alone (`--target` is not found in `--target-port`); `physical=` is followed by its value.
  const re = (n: string) => new RegExp(`(^|[\\s,(])${n.replace(/[-=]/g, '\\$&')}${n.endsWith('=') ? '' : '($|[\\s,)=|:\\]])'}`, 'm');
  return names.filter((n) => !re(n).test(help));
}

async function help(verb: string[]): Promise<string> {
  const r = await run(process.execPath, ['bin/arraysim.js', ...verb, '--help'], { cwd: root, timeout: 20_000 });
  return r.stdout;
}

const section = commandLineSection(readFileSync(path.join(root, 'README.md'), 'utf8'));
const lines = usageLines(section);

describe('--help lists every option the README documents', () => {
  it('the README section parses into usage lines and LUN SPEC options', () => {
    expect(lines.map((l) => l.verb.join(' '))).toEqual(expect.arrayContaining(['serve', 'status', 'alua show', 'alua set']));
    expect(lines.find((l) => l.verb.join(' ') === 'serve')!.options).toEqual(expect.arrayContaining(['--listen', '--lun', '--admin']));
    expect(specOptions(section)).toEqual(expect.arrayContaining(['size=', 'thick', 'removable', 'readonly', 'block=', 'physical=', 'writethrough']));
  });

  it('the checker finds a missing option (negative control)', async () => {
    const serveHelp = await help(['serve']);
    expect(missingFromHelp(serveHelp, ['physical=', 'writethrough', '--admin'])).toEqual([]);
    const without = serveHelp.replaceAll('physical=', 'phys=').replaceAll('--admin', '--adm');
    expect(missingFromHelp(without, ['physical=', 'writethrough', '--admin'])).toEqual(['physical=', '--admin']);
    expect(missingFromHelp('  --target-port  x\n  thickness', ['--target', 'thick'])).toEqual(['--target', 'thick']);
  });

  it('the top-level --help lists every verb', async () => {
    const top = await help([]);
    for (const l of lines) expect(top, `arraysim --help lacks "${l.verb[0]}"`).toMatch(new RegExp(`arraysim ${l.verb[0]}\\b`));
  });

  for (const l of lines) {
    const name = l.verb.join(' ');
    it(`arraysim ${name} --help`, async () => {
      const text = await help(l.verb);
      expect(text).toContain('Options:');
      const names = name === 'serve' ? [...l.options, ...specOptions(section)] : l.options;
      expect(missingFromHelp(text, names), `README options missing from "arraysim ${name} --help"`).toEqual([]);
    });
  }
});
