/**
 * A VMFS-like mixed day under a Table 2 preset drawn at random (seeded; the row prints the seed,
 * and `lab run mixed-day --seed N` replays it): two ESXi-like hosts, each with its own iSCSI
 * session, hold their VMFS locks on LUN 2 and heartbeat them (ATS, or SCSI-2 reservations when
 * ATS is refused) all day, while they clone template disks (EXTENDED COPY), eager-zero new disks
 * (WRITE SAME) and write plain I/O, side by side; once, host B tries to take host A's lock and must
 * find it held. Then verify.
 *
 * The outcome is predicted from the drawn preset's policies alone (src/splitter/policy.ts), per
 * primitive: `support` offloads and replicates, `reject` falls back (the software data mover, or
 * reservations for ATS) and replicates, `ignore` offloads as far as the host can tell and the
 * replica misses it. So the replica diverges in exactly the blocks the ignored primitives wrote
 * (the cloned and zeroed slots, and the two lock blocks), every diverged extent is attributed to
 * an ignored primitive, and nothing else differs. The layout keeps plain I/O, clone and zero
 * slots and lock blocks apart, so the prediction is exact to the block.
 *
 * Layout, 512-byte blocks: LUN 0: templates at [0, 8 MiB), plain I/O at [16, 32 MiB); LUN 1: six
 * 4 MiB slots at [0, 24 MiB) (clone or zero targets, filled first), plain I/O at [24, 32 MiB);
 * LUN 2: host A's lock at LBA 0, host B's at LBA 8.
 */
import { prng } from '../check/faults.ts';
import type { Rng } from '../check/faults.ts';
import { EsxHost } from '../host/host.ts';
import { lockRun } from '../host/lock.ts';
import type { RunReport } from '../host/report.ts';
import { settingsFrom } from '../host/settings.ts';
import type { ScsiDevice } from '../initiator/index.ts';
import { findPreset } from '../splitter/policy.ts';
import type { Policy, Primitive } from '../splitter/policy.ts';
import { verifyGroup } from '../splitter/verify.ts';
import { fill, judge, labArray, labDevice, pattern } from './run.ts';
import type { LabRow } from './run.ts';
import type { Expected, Scenario } from './scenarios.ts';

/** The Table 2 columns' presets (emc-recoverpoint-vmware-dr-whitepaper-2011.md). */
export const TABLE2_PRESETS = ['rp-windows-host', 'rp-brocade', 'rp-cisco-santap', 'rp-vnx-flare30', 'rp-vnx-flare31', 'rp-vmaxe', 'rp-clariion'] as const;

const MiB = 2048; // blocks
const SLOT = 4 * MiB;
const SLOTS = 6;
const LOCK_A = 0n;
const LOCK_B = 8n;
const HEARTBEAT_MS = 10;

/** The day's work, drawn from the seed. */
export interface DayPlan {
  seed: number;
  preset: string;
  clones: Array<{ host: 'a' | 'b'; fromLba: number; slot: number }>;
  zeros: Array<{ host: 'a' | 'b'; slot: number }>;
  writes: Array<{ host: 'a' | 'b'; lun: 0 | 1; lba: number; blocks: number }>;
}

export function planDay(seed: number): DayPlan {
  const rng: Rng = prng(seed);
  const preset = rng.pick(TABLE2_PRESETS);
  const slots = [...Array(SLOTS).keys()];
  for (let i = slots.length - 1; i > 0; i--) { const j = rng.int(0, i); [slots[i], slots[j]] = [slots[j], slots[i]]; }
  const host = () => rng.pick(['a', 'b'] as const);
  const nClones = rng.int(1, 3);
  const nZeros = rng.int(1, 2);
  const clones = slots.slice(0, nClones).map((slot) => ({ host: host(), fromLba: rng.int(0, 4) * MiB, slot }));
  const zeros = slots.slice(nClones, nClones + nZeros).map((slot) => ({ host: host(), slot }));
  const writes = Array.from({ length: rng.int(40, 120) }, () => {
    const lun = rng.pick([0, 1] as const);
    const blocks = 8 * rng.int(1, 16);
    const base = lun === 0 ? 16 * MiB : 24 * MiB;
    return { host: host(), lun, lba: base + 8 * rng.int(0, (8 * MiB - blocks) / 8), blocks };
  });
  return { seed, preset, clones, zeros, writes };
}

type Course = 'offloaded' | 'fell back';
export interface Prediction {
  /** Per primitive the day uses: what the host sees. */
  course: Record<'ats' | 'xcopy' | 'writesame', Course>;
  /** The primitives the replica misses. */
  ignored: Primitive[];
  divergedBlocks: number;
  expect: Expected;
}

/** What the preset's policies predict for this day (nothing else is consulted). */
export function predict(plan: DayPlan, policies: Record<Primitive, Policy>): Prediction {
  const used = ['ats', 'xcopy', 'writesame'] as const;
  const course = Object.fromEntries(used.map((p) => [p, policies[p] === 'reject' ? 'fell back' : 'offloaded'])) as Prediction['course'];
  const ignored = used.filter((p) => policies[p] === 'ignore');
  const divergedBlocks = (ignored.includes('xcopy') ? plan.clones.length * SLOT : 0) + (ignored.includes('writesame') ? plan.zeros.length * SLOT : 0) + (ignored.includes('ats') ? 2 : 0);
  const courses = Object.values(course);
  return { course, ignored, divergedBlocks, expect: { offloaded: courses.includes('offloaded'), fellBack: courses.includes('fell back'), consistent: ignored.length === 0 } };
}

const n = (k: number, word: string): string => `${k} ${word}${k === 1 ? '' : 's'}`;

/** What the hosts' reports say each primitive did. */
function observedCourse(reports: RunReport[]): Partial<Record<'ats' | 'xcopy' | 'writesame', Course | 'both'>> {
  const out: Partial<Record<'ats' | 'xcopy' | 'writesame', Course | 'both'>> = {};
  const note = (p: 'ats' | 'xcopy' | 'writesame', c: Course) => { out[p] = out[p] && out[p] !== c ? 'both' : c; };
  for (const r of reports) {
    if (r.verb === 'lock') note('ats', r.lock?.mode === 'ats' ? 'offloaded' : 'fell back');
    if (r.verb === 'clone') { if (r.offloadedBlocks) note('xcopy', 'offloaded'); if (r.fallbacks.length) note('xcopy', 'fell back'); }
    if (r.verb === 'zero') { if (r.offloadedBlocks) note('writesame', 'offloaded'); if (r.fallbacks.length) note('writesame', 'fell back'); }
  }
  return out;
}

export async function runMixedDay(s: Scenario, o: { seed?: number; predictFrom?: string } = {}): Promise<LabRow> {
  const t0 = performance.now();
  const seed = o.seed ?? Math.floor(Math.random() * 2 ** 31);
  const plan = planDay(seed);
  const spec = findPreset(plan.preset)!.spec;
  // predictFrom: the negative control predicts from another preset's policies.
  const prediction = predict(plan, findPreset(o.predictFrom ?? plan.preset)!.spec.policies);
  const { array, group, port } = await labArray(plan.preset, { luns: ['32MiB', '32MiB', '4MiB'] });
  const devs: ScsiDevice[] = [];
  try {
    await group.ready();
    const open = async (name: string) => {
      const d0 = await labDevice(port, name);
      const d1 = d0.on(1);
      const d2 = d0.on(2);
      await d1.clearUnitAttentions();
      await d2.clearUnitAttentions();
      devs.push(d0);
      return [d0, d1, d2] as const;
    };
    const dev = { a: await open('esx-a'), b: await open('esx-b') };
    const hosts = { a: new EsxHost(settingsFrom(s.settings), 'esx-a'), b: new EsxHost(settingsFrom(s.settings), 'esx-b') };
    // Before the day (plain writes, always split): the templates and every slot's old contents.
    await fill(dev.a[0], 0n, pattern(8 * MiB * 512, 21));
    for (let k = 0; k < SLOTS; k++) await fill(dev.a[1], BigInt(k * SLOT), pattern(SLOT * 512, 30 + k));
    let dayOver = false;
    const beats = { a: 0, b: 0 };
    let bothBeating!: () => void;
    const beating = new Promise<void>((r) => { bothBeating = r; });
    const hold = (h: 'a' | 'b', lba: bigint) => lockRun(hosts[h], dev[h][2], {
      lba, holdMs: 0, heartbeatMs: HEARTBEAT_MS, volume: 'datastore1', owner: `esx-${h}`, until: () => dayOver,
      onHeartbeat: () => { beats[h]++; if (beats.a && beats.b) bothBeating(); },
    });
    const locks = [hold('a', LOCK_A), hold('b', LOCK_B)];
    // The work starts once both hosts heartbeat (or a lock run has ended early: its report says why).
    await Promise.race([beating, ...locks]);
    const reports: RunReport[] = [];
    const work = async (h: 'a' | 'b') => {
      const [d0, d1] = dev[h];
      const items: Array<() => Promise<void>> = [
        ...plan.clones.filter((c) => c.host === h).map((c) => async () => { reports.push(await hosts[h].clone({ from: d0, to: d1, lba: BigInt(c.fromLba), toLba: BigInt(c.slot * SLOT), blocks: SLOT })); }),
        ...plan.zeros.filter((z) => z.host === h).map((z) => async () => { reports.push(await hosts[h].zero({ to: d1, lba: BigInt(z.slot * SLOT), blocks: SLOT })); }),
      ];
      const writes = plan.writes.filter((w) => w.host === h);
      // Plain I/O interleaved with the clones and zeroing: a share of the writes before each item.
      const per = Math.ceil(writes.length / (items.length + 1));
      for (let i = 0; i <= items.length; i++) {
        for (const w of writes.slice(i * per, (i + 1) * per)) {
          const r = await (w.lun === 0 ? d0 : d1).write(BigInt(w.lba), pattern(w.blocks * 512, seed + w.lba));
          if (r.kind !== 'good') throw new Error(`mixed day: plain WRITE at LUN ${w.lun} LBA ${w.lba}: ${r.kind}`);
        }
        if (i < items.length) await items[i]();
      }
    };
    await Promise.all([work('a'), work('b')]);
    // Host B tries host A's lock: it must find it held (an ATS miscompare, or the record under a reservation).
    const steal = await lockRun(hosts.b, dev.b[2], { lba: LOCK_A, holdMs: 0, heartbeatMs: HEARTBEAT_MS, volume: 'datastore1', owner: 'esx-b' });
    dayOver = true;
    reports.push(...await Promise.all(locks));
    const v = await verifyGroup(group, 'local');
    const mismatch: string[] = [];
    if (steal.outcome !== 'held' || steal.lock?.holder !== 'esx-a') mismatch.push(`host B taking host A's lock: ${steal.outcome} (${steal.message}), expected held by esx-a`);
    const seen = observedCourse(reports);
    for (const p of ['ats', 'xcopy', 'writesame'] as const) {
      if (seen[p] !== prediction.course[p]) mismatch.push(`${p}: ${seen[p] ?? 'not used'}, predicted ${prediction.course[p]}`);
    }
    const divergedBlocks = v.diverged.reduce((a, e) => a + e.blocks, 0);
    if (divergedBlocks !== prediction.divergedBlocks) mismatch.push(`diverged blocks: ${divergedBlocks}, predicted ${prediction.divergedBlocks}`);
    const causes = new Set(v.diverged.flatMap((e) => e.causes.map((c) => c.primitive)));
    const unexpected = [...causes].filter((c) => !prediction.ignored.includes(c as Primitive));
    if (unexpected.length) mismatch.push(`diverged extents caused by ${unexpected.join(', ')}, which the preset does not ignore`);
    const observed = `seed ${seed}: preset ${plan.preset} (${(['ats', 'xcopy', 'writesame'] as const).map((p) => `${p}=${spec.policies[p]}`).join(' ')}); `
      + `${n(plan.clones.length, 'clone')}, ${n(plan.zeros.length, 'zeroing')}, ${plan.writes.length} plain writes, ${beats.a}+${beats.b} heartbeats; `
      + `predicted ${prediction.divergedBlocks} diverged blocks${o.predictFrom ? ` (predicted from ${o.predictFrom})` : ''}`;
    const row = judge(s, { reports, verify: v, mismatch, observed, expect: prediction.expect, policy: plan.preset }, t0);
    return { ...row, details: { plan, prediction, seen } };
  } finally {
    for (const d of devs) await d.close().catch(() => {});
    await array.stop();
  }
}
