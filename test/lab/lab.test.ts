/**
 * The lab end to end: every scenario against an array in process with its splitter, through the
 * ESXi-like host over iSCSI and the splitter's verify, must match its documented outcome; the
 * checker is shown able to fail (negative controls), and the CLI layer refuses unknown names.
 */
import { describe, expect, it } from 'vitest';
import { LabUsageError, runLab } from '../../src/lab/cli.ts';
import { runScenario } from '../../src/lab/run.ts';
import { findScenario, SCENARIOS } from '../../src/lab/scenarios.ts';
import { ACTIVE_SYNC_SCENARIOS, METRO_SCENARIOS, NEGATIVE_CONTROLS } from '../../src/lab/metro/scenarios.ts';
import { FakeTty } from '../helpers/fake-tty.ts';

describe('lab scenarios', () => {
  it.each(SCENARIOS.map((s) => [s.name]))('%s matches its documented outcome', async (name) => {
    const row = await runScenario(findScenario(name)!);
    expect(row.mismatch).toEqual([]);
    expect(row.match).toBe(true);
    if (!row.consistent) {
      expect(row.divergedBlocks).toBeGreaterThan(0);
      // Attributed to the ignored primitive's commands.
      expect(row.diverged.every((e) => e.causes.length > 0)).toBe(true);
    }
  }, 60000);

  it('xcopy-ignore: the diverged extent is exactly the cloned range of LUN 1, caused by the ignored EXTENDED COPYs', async () => {
    const row = await runScenario(findScenario('xcopy-ignore')!);
    expect(row.diverged).toEqual([expect.objectContaining({ lun: 1, lba: '0', lbaEnd: '16383', blocks: 16384 })]);
    expect(row.diverged[0].causes.length).toBe(2); // two 4 MiB segments
    expect(row.diverged[0].causes.every((c) => c.primitive === 'xcopy')).toBe(true);
  }, 60000);
});

describe('the checker can fail (negative controls)', () => {
  it('a scenario whose expectation is wrong does not match, and says what differed', async () => {
    const s = { ...findScenario('xcopy-ignore')!, expect: { offloaded: true, fellBack: false, consistent: true } };
    const row = await runScenario(s);
    expect(row.match).toBe(false);
    expect(row.mismatch).toEqual(['replica consistent: false, expected true']);
  }, 60000);

  it('the 2010 workaround under an ignoring splitter is consistent: a row that claims corruption fails', async () => {
    const s = { ...findScenario('xcopy-ignore')!, settings: ['DataMover.HardwareAcceleratedMove=0'] };
    const row = await runScenario(s);
    expect(row).toMatchObject({ offloaded: false, fellBack: true, consistent: true, match: false });
  }, 60000);
});

describe('lab CLI', () => {

  it('run: a bar of scenarios on a terminal (cleared at the end), nothing when piped; stdout is the table either way', async () => {
    const two = { action: 'run' as const, scenarios: ['writesame-reject', 'unmap-reject'], all: false, json: false };
    const tty = new FakeTty(true, 120);
    const out: string[] = [];
    expect(await runLab(two, (s) => out.push(s), { stream: tty, delayMs: 0, intervalMs: 0 })).toBe(0);
    const lines = tty.lines;
    expect(lines).toContainEqual(expect.stringMatching(/^lab run \[#+-+\]  50% 1 scenarios\/2 scenarios [\d.]+ scenarios\/s ETA \S+$/));
    expect(tty.out.endsWith('\r\x1b[2K')).toBe(true);
    expect(out.join('\n')).not.toContain('\x1b');
    expect(out.join('\n')).toContain('2 of 2 scenarios match');
    const piped = new FakeTty(false);
    const json: string[] = [];
    expect(await runLab({ ...two, scenarios: ['unmap-reject'], json: true }, (s) => json.push(s), { stream: piped, delayMs: 0 })).toBe(0);
    expect(piped.out).toBe('');
    expect(JSON.parse(json.join('\n'))).toHaveLength(1);
  }, 120000);

  it('list names every scenario; run prints the table and exits 0 when all match', async () => {
    const out: string[] = [];
    expect(await runLab({ action: 'list', all: false, json: false }, (s) => out.push(s))).toBe(0);
    // The VAAI scenarios, then the metro failure lab's (src/lab/metro): Active Peer Persistence and
    // its two negative controls, then Active Sync and its negative control.
    expect(out.length).toBe(SCENARIOS.length + METRO_SCENARIOS.length + NEGATIVE_CONTROLS.length + ACTIVE_SYNC_SCENARIOS.length + 1);
    const apc = SCENARIOS.length + METRO_SCENARIOS.length;
    expect(out[apc]).toMatch(/^metro\/negative-control /);
    expect(out[apc + 1]).toMatch(/^metro\/negative-control-divergence /);
    expect(out[apc + 2]).toMatch(/^metro-sync\/link-failure .*\[Active Sync pair \+ witness, two hosts, each on its local array\]$/);
    expect(out.at(-1)).toMatch(/^metro-sync\/negative-control /);
    const run: string[] = [];
    expect(await runLab({ action: 'run', scenarios: ['writesame-reject'], all: false, json: false }, (s) => run.push(s))).toBe(0);
    expect(run[0]).toMatch(/^\| scenario \| policy \| host settings \| offloaded\? \| fell back\? \| replica consistent\? \| diverged blocks \|/);
    expect(run.join('\n')).toContain('| writesame-reject | writesame=reject | defaults | no | yes | yes | 0 |');
    expect(run.join('\n')).toContain('1 of 1 scenarios match');
  }, 60000);

  it('--json rows carry the host reports; unknown names and no names are usage errors', async () => {
    const out: string[] = [];
    expect(await runLab({ action: 'run', scenarios: ['unmap-reject'], all: false, json: true }, (s) => out.push(s))).toBe(0);
    const rows = JSON.parse(out.join(''));
    expect(rows[0].reports[0]).toMatchObject({ verb: 'unmap', fallbacks: [expect.objectContaining({ primitive: 'Delete', cause: 'refused' })] });
    await expect(runLab({ action: 'run', scenarios: ['nope'], all: false, json: false })).rejects.toThrow(LabUsageError);
    await expect(runLab({ action: 'run', scenarios: [], all: false, json: false })).rejects.toThrow(/name one or more scenarios/);
  }, 60000);
});
