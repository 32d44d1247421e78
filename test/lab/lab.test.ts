/**
 * The lab end to end: every scenario against an array in process with its splitter, through the
 * ESXi-like host over iSCSI and the splitter's verify, must match its documented outcome; the
 * checker is shown able to fail (negative controls), and the CLI layer refuses unknown names.
 */
import { describe, expect, it } from 'vitest';
import { LabUsageError, runLab } from '../../src/lab/cli.ts';
import { runScenario } from '../../src/lab/run.ts';
import { findScenario, SCENARIOS } from '../../src/lab/scenarios.ts';
import { judgeSeeding } from '../../src/lab/seeding.ts';
import { planDay, runMixedDay, TABLE2_PRESETS } from '../../src/lab/mixed-day.ts';
import type { SeedingResult } from '../../src/lab/seeding.ts';
import { ACTIVE_SYNC_SCENARIOS, METRO_SCENARIOS, NEGATIVE_CONTROLS } from '../../src/lab/metro/scenarios.ts';
import { FakeTty } from '../helpers/fake-tty.ts';

describe('lab scenarios', () => {
  // The dd seeding and the mixed day have their own tests below (each runs once).
  it.each(SCENARIOS.filter((s) => s.kind !== 'seeding' && s.kind !== 'mixed-day').map((s) => [s.name]))('%s matches its documented outcome', async (name) => {
    const row = await runScenario(findScenario(name)!);
    expect(row.mismatch).toEqual([]);
    expect(row.match).toBe(true);
    // A copy that never initialized has nothing for verify to compare.
    if (!row.consistent && row.expected.initialized !== false) {
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

describe('the 2011 update: FLARE 30 before and after .509', () => {
  it('rp-flare30-pre509: the first initialization goes from init to error when ATS heartbeats arrive; verify has no copy to check', async () => {
    const row = await runScenario(findScenario('rp-flare30-pre509')!);
    expect(row).toMatchObject({ match: true, offloaded: true, consistent: false, divergedBlocks: 0 });
    expect(row.observed).toMatch(/^transfer init -> error \(initialization failed: COMPARE AND WRITE \(ATS\) arrived through the FLARE 30 array splitter/);
    expect(row.reports[0].lock).toMatchObject({ mode: 'ats' });
  }, 60000);

  it('rp-flare30-509 initializes with heartbeats answered during the initialization; the workaround heartbeats with reservations', async () => {
    const ok = await runScenario(findScenario('rp-flare30-509')!);
    expect(ok.observed).toMatch(/^transfer init -> active; 49 of 49 regions sent; \d+ heartbeats \(ats\), [1-9]\d* answered during the initialization$/);
    const wa = await runScenario(findScenario('rp-flare30-pre509-workaround')!);
    expect(wa).toMatchObject({ match: true, offloaded: false, fellBack: true, consistent: true });
    expect(wa.reports[0].fallbacks).toEqual([expect.objectContaining({ primitive: 'ATS', cause: 'setting' })]);
    expect(wa.observed).toMatch(/^transfer init -> active; .*\(scsi-reservation\), [1-9]\d* answered/);
  }, 60000);

  it('negative control: pre509 claimed to initialize does not match', async () => {
    const s = { ...findScenario('rp-flare30-pre509')!, expect: { offloaded: true, fellBack: false, consistent: true, initialized: true } };
    const row = await runScenario(s);
    expect(row.match).toBe(false);
    expect(row.mismatch).toEqual(['replica consistent: false, expected true', 'initialized: false, expected true']);
  }, 60000);
});

describe('crr-dd-seeding: the field notes\' dd seeding over an 80 Mbit/s remote copy', () => {
  it('seeded sends only the 2 changed regions, unseeded the whole 32 MiB at the link\'s rate; both verify; a run that breaks a claim does not match', async () => {
    const s = findScenario('crr-dd-seeding')!;
    const row = await runScenario(s);
    expect(row.mismatch).toEqual([]);
    const [seeded, unseeded] = row.details!.seeding as SeedingResult[];
    expect(seeded).toMatchObject({ seeded: true, changedRegions: 2, bytesSent: 2 << 20, regions: 2, regionsCompared: 32, volumeBytes: 32 << 20, consistent: true });
    expect(unseeded).toMatchObject({ seeded: false, bytesSent: 32 << 20, regions: 32, consistent: true });
    // Over the link: the regions sent plus digests and command overhead, no more.
    expect(seeded.link.bytesSent).toBeGreaterThanOrEqual(2 << 20);
    expect(seeded.link.bytesSent).toBeLessThan(3 << 20);
    expect(unseeded.syncMs).toBeGreaterThan(seeded.syncMs);
    expect(row.observed).toMatch(/^32 MiB at 80Mbit: seeded 2\.0 MiB \(6\.25%\) in [\d.]+ s; unseeded 32\.0 MiB \(100\.00%\) in [\d.]+ s/);
    // Negative controls: the same figures judged with a seeded run that sent everything, and an
    // unseeded one faster than the link allows.
    const sentAll = judgeSeeding(s, [{ ...seeded, bytesSent: 32 << 20 }, unseeded], 0);
    expect(sentAll.match).toBe(false);
    expect(sentAll.mismatch).toEqual([
      'seeded sent 33554432 bytes, expected the 2 changed regions (2097152)',
      'seeded sent 100.00% of the volume, expected at most 10%',
    ]);
    const tooFast = judgeSeeding(s, [seeded, { ...unseeded, syncMs: 1000 }], 0);
    expect(tooFast.match).toBe(false);
    expect(tooFast.mismatch[0]).toMatch(/^unseeded took 1\.00 s, faster than the link allows \(3\.2\d s\)$/);
  }, 60000);
});

describe('mixed-day: two hosts under a seeded random Table 2 preset, the outcome predicted from its policies', () => {
  it('the same seed draws the same day; over 200 seeds every Table 2 preset is drawn', () => {
    expect(planDay(7)).toEqual(planDay(7));
    expect(new Set(Array.from({ length: 200 }, (_, i) => planDay(i).preset))).toEqual(new Set(TABLE2_PRESETS));
  });

  it('seed 7 (rp-windows-host: all ignored) corrupts exactly the cloned and zeroed slots and the two lock blocks; seed 8 (rp-brocade: all rejected) falls back and stays consistent', async () => {
    const s = findScenario('mixed-day')!;
    const ignored = await runScenario(s, { seed: 7 });
    expect(ignored.mismatch).toEqual([]);
    expect(ignored).toMatchObject({ policy: 'rp-windows-host', offloaded: true, fellBack: false, consistent: false, divergedBlocks: 3 * 8192 + 2 });
    expect(new Set(ignored.diverged.flatMap((e) => e.causes.map((c) => c.primitive)))).toEqual(new Set(['ats', 'xcopy', 'writesame']));
    expect(ignored.observed).toMatch(/^seed 7: preset rp-windows-host \(ats=ignore xcopy=ignore writesame=ignore\)/);
    const rejected = await runScenario(s, { seed: 8 });
    expect(rejected.mismatch).toEqual([]);
    expect(rejected).toMatchObject({ policy: 'rp-brocade', offloaded: false, fellBack: true, consistent: true, divergedBlocks: 0 });
    expect(rejected.reports.filter((r) => r.verb === 'lock').map((r) => r.lock?.mode)).toEqual(['scsi-reservation', 'scsi-reservation']);
  }, 60000);

  it('negative control: the brocade day (seed 8) predicted from rp-windows-host\'s policies does not match, per primitive', async () => {
    const row = await runMixedDay(findScenario('mixed-day')!, { seed: 8, predictFrom: 'rp-windows-host' });
    expect(row.match).toBe(false);
    expect(row.mismatch).toEqual(expect.arrayContaining([
      'offloaded: false, expected true', 'fell back: true, expected false', 'replica consistent: true, expected false',
      'ats: fell back, predicted offloaded', 'xcopy: fell back, predicted offloaded', 'writesame: fell back, predicted offloaded',
      expect.stringMatching(/^diverged blocks: 0, predicted \d+$/),
    ]));
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
    // --seed reaches the mixed day: the same draw as planDay(7), in the row's details.
    const day: string[] = [];
    expect(await runLab({ action: 'run', scenarios: ['mixed-day'], all: false, json: true, seed: 7 }, (s) => day.push(s))).toBe(0);
    expect(JSON.parse(day.join(''))[0].details.plan).toEqual(JSON.parse(JSON.stringify(planDay(7))));
    await expect(runLab({ action: 'run', scenarios: ['nope'], all: false, json: false })).rejects.toThrow(LabUsageError);
    await expect(runLab({ action: 'run', scenarios: [], all: false, json: false })).rejects.toThrow(/name one or more scenarios/);
  }, 60000);
});
