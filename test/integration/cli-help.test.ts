/**
 * Every verb's `--help` names every option the README documents: every `--flag` of an
 * `npx arraysim VERB ...` line in the README's code blocks (the "Command line" synopsis and the
 * examples), and for `serve` every LUN SPEC option of the "Command line" `SPEC` bullet. The verbs
 * are read from the README, so a verb documented there is checked without touching this file.
 * Runs the built bin, as a user would.
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

/**
 * Every `npx arraysim ...` command in the README's code blocks (the "Command line" synopsis and
 * the examples elsewhere), by verb: the verb words, then every `--flag` any of its lines names.
 */
export function usageLines(readme: string): UsageLine[] {
  const byVerb = new Map<string, UsageLine>();
  const blocks = readme.split('```').filter((_, i) => i % 2 === 1);
  for (const line of blocks.flatMap((b) => b.split('\n'))) {
    const m = /(?:^|&&\s*)npx arraysim ([^#]*)/.exec(line.trim());
    if (!m) continue;
    const words = m[1].trim().split(/\s+/);
    const verb: string[] = [];
    for (const w of words) { if (/^[a-z][a-z-]*$/.test(w)) verb.push(w); else break; }
    const key = verb.join(' ');
    const entry = byVerb.get(key) ?? { verb, options: [] };
    for (const o of m[1].match(/--[a-z][a-z-]*/g) ?? []) if (!entry.options.includes(o)) entry.options.push(o);
    byVerb.set(key, entry);
  }
  return [...byVerb.values()];
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

const readme = readFileSync(path.join(root, 'README.md'), 'utf8');
const section = commandLineSection(readme);
const lines = usageLines(readme);

describe('--help lists every option the README documents', () => {
  it('the README parses into usage lines and LUN SPEC options', () => {
    expect(lines.map((l) => l.verb.join(' '))).toEqual(expect.arrayContaining(['serve', 'status', 'alua show', 'alua set']));
    // Every verb of the "Command line" synopsis is among them.
    for (const l of usageLines('```\n' + section + '\n```')) expect(lines.map((x) => x.verb.join(' '))).toContain(l.verb.join(' '));
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
