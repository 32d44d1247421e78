/**
 * The metro failure lab end to end: two `serve` processes (lab up's metro topology, with the
 * witness), two hosts writing through multipath, a fault and its heal; each row judged against
 * the HPE paper's failure list. Two scenarios must match, and the negative control (link failure
 * judged against a wrong expectation) must not, naming what differed.
 */
import { describe, expect, it } from 'vitest';
import { runLab } from '../../src/lab/cli.ts';
import { formatMetroTable } from '../../src/lab/metro/judge.ts';
import type { MetroRow } from '../../src/lab/metro/judge.ts';
import { runMetroScenario } from '../../src/lab/metro/run.ts';
import { findMetroScenario, NEGATIVE_CONTROL } from '../../src/lab/metro/scenarios.ts';

const piped = { isTTY: false, write: () => true } as unknown as NodeJS.WriteStream;

describe('metro failure lab', () => {
  it('lab run metro/link-failure --json: the secondary\'s paths go unavailable, both hosts keep I/O, nothing lost', async () => {
    const out: string[] = [];
    const code = await runLab({ action: 'run', scenarios: ['metro/link-failure'], all: false, json: true }, (s) => out.push(s), { stream: piped, delayMs: 0 });
    const [row] = JSON.parse(out.join('\n')) as MetroRow[];
    if (!row.match) console.error(row.mismatch, row.events.join('\n'));
    expect(row.mismatch).toEqual([]);
    expect(code).toBe(0);
    expect(row.observed['host-a'].paths.during).toEqual({ A: 'active/optimized', B: 'unavailable' });
    expect(row.observed['host-b'].paths.during).toEqual({ A: 'active/non-optimized', B: 'unavailable' });
    expect(row.observed['host-b'].paths.after).toEqual({ A: 'active/non-optimized', B: 'active/optimized' });
    for (const h of ['host-a', 'host-b'] as const) {
      expect(row.observed[h].keptIo).toBe(true);
      expect(row.observed[h].acked).toBeGreaterThan(5);
      expect(row.observed[h].lostWrites).toBe(0);
    }
    expect(row.paper).toContain('unavailable');
  }, 120_000);

  it('metro/secondary-failure: host-b moves to its non-optimized path to the primary and keeps I/O', async () => {
    const row = await runMetroScenario(findMetroScenario('metro/secondary-failure')!);
    if (!row.match) console.error(row.mismatch, row.events.join('\n'));
    expect(row.mismatch).toEqual([]);
    expect(row.observed['host-b'].paths.during).toEqual({ A: 'active/non-optimized', B: 'down' });
    expect(row.observed['host-b'].keptIo).toBe(true);
    expect(row.observed['host-b'].lostWrites).toBe(0);
    expect(formatMetroTable([row])).toMatch(/\| metro\/secondary-failure \| host-b \| A ANO, B AO \| A ANO, B down \| A ANO, B down \|/);
  }, 120_000);

  it('negative control: a wrong expectation does not match, and says what differed', async () => {
    const row = await runMetroScenario(NEGATIVE_CONTROL, { settleMs: 8000 });
    expect(row.match).toBe(false);
    expect(row.mismatch).toEqual(['host-b during: path to B is unavailable, expected active/optimized']);
    expect(formatMetroTable([row])).toContain('**NO**: host-b during: path to B is unavailable, expected active/optimized');
  }, 120_000);

  it('an unknown metro scenario is a usage error naming it', async () => {
    await expect(runLab({ action: 'run', scenarios: ['metro/nope'], all: false, json: false })).rejects.toThrow(/unknown scenario "metro\/nope"/);
  });
});
