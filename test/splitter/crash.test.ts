/**
 * The crash test of the file journal (README "Splitter and replicas", file journal): a real
 * `arraysim serve` process with a file-backed production LUN, a consistency group with a file
 * journal and a local copy on file stores, written at QD8 through the project's initiator with
 * self-describing blocks, then SIGKILLed at a seeded moment and started again. After each kill:
 *   - every acknowledged write is in the journal's segments (read here, straight from the files);
 *   - production holds, for every slot, the last acknowledged write or the one in flight, whole
 *     (never a mix of two writes);
 *   - after the restart (recovery, re-application, sweep) verify says the copy equals production;
 *   - (first test) image access to each bookmark taken before a kill, one per round, reads the
 *     copy's image as production was at the bookmark: the copy's undo data survived the kills.
 * A failing run prints its seed; CRASH_SEED=<n> replays its kill points.
 *
 * Negative control: ARRAYSIM_TEST_JOURNAL_ACK=early makes the target acknowledge writes when
 * their records are appended, before the group commit has written them. The same check must then
 * find acknowledged writes missing from the journal. (Leaving out only the fdatasync would not do:
 * SIGKILL kills the process, not the kernel, and the page cache keeps what write() had handed it,
 * so only a power cut could show a missing fdatasync; this test cannot, and does not claim to.)
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ScsiDevice } from '../../src/initiator/index.ts';
import { scanSegment } from '../../src/splitter/journal-file.ts';
import { scanUndoSegment } from '../../src/splitter/undo-file.ts';
import { crc32c } from '../../protocol/iscsi/digest.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const TARGET = 'iqn.2026-12.dev.arraysim:crash';
const BS = 512;
/** A write: 8 blocks (4 KiB) at slot × 8. */
const WRITE_BLOCKS = 8;
const SLOTS = 2048; // 8 MiB of production
const QD = 8;
const ROUNDS = 3;
const MIN_ACKED = 20;

/** mulberry32: a small seeded PRNG, so that a seed replays its kill points. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Block `i` of generation `gen` of slot `slot`: magic, slot, gen, i, then filler derived from
 * them, then a CRC32C of the rest (a torn block would not pass).
 */
function blockOf(slot: number, gen: number, i: number): Buffer {
  const b = Buffer.alloc(BS);
  b.write('CRSH', 0);
  b.writeUInt32LE(slot, 4);
  b.writeUInt32LE(gen, 8);
  b.writeUInt32LE(i, 12);
  let x = (slot * 2654435761 + gen * 40503 + i * 97) >>> 0;
  for (let o = 16; o < BS - 4; o += 4) { x = (Math.imul(x, 1664525) + 1013904223) >>> 0; b.writeUInt32LE(x, o); }
  b.writeUInt32LE(crc32c(b.subarray(0, BS - 4)), BS - 4);
  return b;
}

function writeOf(slot: number, gen: number): Buffer {
  const out = Buffer.alloc(WRITE_BLOCKS * BS);
  for (let i = 0; i < WRITE_BLOCKS; i++) blockOf(slot, gen, i).copy(out, i * BS);
  return out;
}

/** The generation a slot's 8 blocks hold: 0 when all zero, -1 when torn, mixed or foreign. */
function genOf(data: Buffer, slot: number): number {
  if (data.every((v) => v === 0)) return 0;
  const gen = data.readUInt32LE(8);
  return data.equals(writeOf(slot, gen)) ? gen : -1;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => { const p = (s.address() as net.AddressInfo).port; s.close(() => resolve(p)); });
    s.on('error', reject);
  });
}

interface Rig { dir: string; config: string; port: number; admin: string; env: NodeJS.ProcessEnv }

async function makeRig(env: NodeJS.ProcessEnv = {}): Promise<Rig> {
  const dir = mkdtempSync(path.join(tmpdir(), 'arraysim-crash-'));
  const port = await freePort();
  const adminPort = await freePort();
  const config = path.join(dir, 'array.yaml');
  writeFileSync(config, [
    'portals:',
    `  - listen: 127.0.0.1:${port}`,
    'admin:',
    `  listen: 127.0.0.1:${adminPort}`,
    'log:',
    '  level: warn',
    'targets:',
    `  - name: ${TARGET}`,
    '    luns:',
    `      - file:${path.join(dir, 'production.img')},size=${(SLOTS * WRITE_BLOCKS * BS) >> 20}MiB`,
    'splitters:',
    '  - name: array',
    '    spec: ats=support,xcopy=support,writesame=support,unmap=support',
    'groups:',
    '  - name: crash',
    '    splitter: array',
    '    copies: [local]',
    '    journal:',
    '      type: file',
    '      path: journal',
    '      size: 256MiB',
    '',
  ].join('\n'));
  return { dir, config, port, admin: `http://127.0.0.1:${adminPort}`, env };
}

function serve(rig: Rig): ChildProcess {
  const p = spawn(process.execPath, [path.join(ROOT, 'bin/arraysim.js'), 'serve', '--config', rig.config], {
    cwd: ROOT, env: { ...process.env, ...rig.env }, stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  p.stderr!.on('data', (d) => { err += d; if (err.length > 20000) err = err.slice(-10000); });
  p.on('exit', (code, sig) => { if (code && code !== 0) console.error(`arraysim exited ${code} ${sig ?? ''}: ${err.slice(-2000)}`); });
  return p;
}

async function admin(rig: Rig, method: string, url: string, body?: unknown): Promise<any> {
  const r = await fetch(rig.admin + url, { method, headers: body ? { 'content-type': 'application/json' } : {}, body: body ? JSON.stringify(body) : undefined });
  const j = await r.json();
  if (!r.ok) throw new Error(`${method} ${url}: ${r.status} ${JSON.stringify(j)}`);
  return j;
}

/** Until the group's transfer is active (recovery, and the sweep after an unclean stop, done). */
async function waitActive(rig: Rig, p: ChildProcess): Promise<any> {
  const t0 = Date.now();
  for (;;) {
    if (p.exitCode !== null) throw new Error(`arraysim exited with ${p.exitCode}`);
    try {
      const g = await admin(rig, 'GET', '/v1/groups/crash');
      if (g.transfer === 'active') return g;
      if (g.transfer === 'error') throw new Error(`group in error: ${JSON.stringify(g.history)}`);
    } catch (e) {
      if (!(e instanceof TypeError)) throw e; // not listening yet
    }
    if (Date.now() - t0 > 30_000) throw new Error('arraysim did not become ready in 30 s');
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Every (slot, gen) the journal's segments hold whole, read from the files. */
function journaled(rig: Rig): Set<string> {
  const dir = path.join(rig.dir, 'journal');
  const out = new Set<string>();
  let expect = 0;
  for (const name of readdirSync(dir).filter((n) => n.endsWith('.seg')).sort()) {
    const s = scanSegment(readFileSync(path.join(dir, name)), expect || Number(name.slice(0, 16)));
    for (const r of s.records) {
      if (r.kind !== 'data' || !r.data) continue;
      const slot = Number(r.lba) / WRITE_BLOCKS;
      const gen = genOf(r.data, slot);
      if (gen > 0) out.add(`${slot}:${gen}`);
    }
    if (s.records.length) expect = s.records[s.records.length - 1].seq + 1;
    if (s.stop) break;
  }
  return out;
}

/**
 * What a power cut could do to the copy that SIGKILL does not: the replica writes after the
 * copy's checkpoint were never fdatasync'd, so they may be gone. SIGKILL leaves them in the page
 * cache; this overwrites every block a record after the checkpoint wrote with noise, so that only
 * the re-application at start-up (or the sweep) can make the copy right again. Only records the
 * replica may have received: those with an undo entry on disk (write-ahead: no replica write
 * without one, src/splitter/undo-file.ts); a block the distributor never reached is not changed
 * by a power cut either.
 */
function scrambleCopyAfterCheckpoint(rig: Rig, rnd: () => number): number {
  const dir = path.join(rig.dir, 'journal');
  let cp = 0;
  try { cp = JSON.parse(readFileSync(path.join(dir, 'copy-local.json'), 'utf8')).appliedSeq; } catch { return 0; }
  // Without undo segments (the recovery-skipped control never opens them) every record after the
  // checkpoint may have reached the replica.
  const undoDir = path.join(dir, 'local.undo');
  let undone: Set<number> | null = null;
  if (existsSync(undoDir)) {
    undone = new Set<number>();
    for (const name of readdirSync(undoDir).filter((x) => x.endsWith('.undo')).sort()) {
      for (const e of scanUndoSegment(readFileSync(path.join(undoDir, name))).entries) undone.add(e.seq);
    }
  }
  const fd = openSync(path.join(dir, 'local.0.img'), 'r+');
  let n = 0;
  try {
    let expect = 0;
    for (const name of readdirSync(dir).filter((x) => x.endsWith('.seg')).sort()) {
      const s = scanSegment(readFileSync(path.join(dir, name)), expect || Number(name.slice(0, 16)));
      for (const r of s.records) {
        if (r.seq <= cp || r.kind !== 'data' || (undone && !undone.has(r.seq))) continue;
        const noise = Buffer.alloc(r.blocks * BS);
        for (let o = 0; o < noise.length; o += 4) noise.writeUInt32LE(Math.floor(rnd() * 2 ** 32), o);
        writeSync(fd, noise, 0, noise.length, Number(r.lba) * BS);
        n++;
      }
      if (s.records.length) expect = s.records[s.records.length - 1].seq + 1;
      if (s.stop) break;
    }
  } finally { closeSync(fd); }
  return n;
}

interface RoundReport { acked: number; inFlight: number; missingFromJournal: string[]; scrambled: number; production: string[]; verify: any; images: string[] }

/** Each slot's generation on the copy's own LU (image access), `bad` for every slot that is not `want`'s. */
async function checkImage(rig: Rig, name: string, want: Int32Array, bad: string[]): Promise<void> {
  await admin(rig, 'POST', '/v1/groups/crash/enable_image_access', { copy: 'local', image: name, mode: 'logged' });
  const dev = await ScsiDevice.open(`iscsi://127.0.0.1:${rig.port}/${TARGET}-local/0`, { commandTimeoutMs: 10_000 });
  try {
    for (let i = 0; i < 3 && (await dev.readCapacity16()).kind !== 'good'; i++);
    for (let slot = 0; slot < SLOTS; slot += 256) {
      const r = await dev.read(BigInt(slot * WRITE_BLOCKS), 256 * WRITE_BLOCKS);
      if (r.kind !== 'good') throw new Error(`image ${name} read: ${r.kind}`);
      for (let k = 0; k < 256; k++) {
        const gen = genOf(r.value.subarray(k * WRITE_BLOCKS * BS, (k + 1) * WRITE_BLOCKS * BS), slot + k);
        if (gen !== want[slot + k]) bad.push(`image ${name} slot ${slot + k}: gen ${gen}, at the bookmark ${want[slot + k]}`);
      }
    }
  } finally {
    await dev.close();
  }
  await admin(rig, 'POST', '/v1/groups/crash/disable_image_access', { copy: 'local' });
}

/**
 * Run ROUNDS kill points on one array; returns what each check found (the caller asserts).
 * Slot state: acked[slot] the generation production must hold (the last acknowledged, or after a
 * restart what it held); flying[slot] the one in flight when the target was killed.
 */
async function crashRounds(rig: Rig, seed: number, rounds = ROUNDS, enough?: (r: RoundReport) => boolean, images = false): Promise<RoundReport[]> {
  const rnd = prng(seed);
  // The noise has its own generator, so that the kill points replay whatever it consumed.
  const noise = prng(seed ^ 0x5bd1e995);
  const acked = new Int32Array(SLOTS);
  const flying = new Int32Array(SLOTS);
  const nextGen = new Int32Array(SLOTS).fill(1);
  /** Every write the host saw acknowledged (GOOD), as "slot:gen", over all rounds. */
  const hostAcked: string[] = [];
  const reports: RoundReport[] = [];
  /** A bookmark per round, taken before its writes, with production's generations then. */
  const bookmarks: Array<{ name: string; gens: Int32Array }> = [];
  let proc = serve(rig);
  try {
    for (let round = 0; round <= rounds; round++) {
      const g = await waitActive(rig, proc);
      const dev = await ScsiDevice.open(`iscsi://127.0.0.1:${rig.port}/${TARGET}/0`, { commandTimeoutMs: 10_000 });
      // The power-on unit attention of a fresh start (SAM-5 §5.14) goes to the first command.
      for (let i = 0; i < 3 && (await dev.readCapacity16()).kind !== 'good'; i++);
      let report: RoundReport | null = null;
      if (round > 0) {
        // After the restart: production holds, per slot, the acknowledged write or the one in flight, whole.
        const bad: string[] = [];
        for (let slot = 0; slot < SLOTS; slot += 256) {
          const r = await dev.read(BigInt(slot * WRITE_BLOCKS), 256 * WRITE_BLOCKS);
          if (r.kind !== 'good') throw new Error(`read: ${r.kind}`);
          for (let k = 0; k < 256; k++) {
            const s = slot + k;
            const gen = genOf(r.value.subarray(k * WRITE_BLOCKS * BS, (k + 1) * WRITE_BLOCKS * BS), s);
            if (gen !== acked[s] && !(flying[s] && gen === flying[s])) bad.push(`slot ${s}: gen ${gen}, acknowledged ${acked[s]}, in flight ${flying[s]}`);
            if (gen > 0) { acked[s] = gen; nextGen[s] = Math.max(nextGen[s], gen + 1); }
            flying[s] = 0;
          }
        }
        const verify = await admin(rig, 'POST', '/v1/groups/crash/verify', {});
        report = reports[reports.length - 1];
        report.production = bad;
        report.verify = { consistent: verify.consistent, diverged: verify.diverged.slice(0, 5), seq: verify.seq, journal: g.journal };
        // Every bookmark taken before a kill, across the restarts (and their sweeps) since.
        if (images) for (const b of bookmarks) await checkImage(rig, b.name, b.gens, report.images);
      }
      if (images && round < rounds) {
        // Nothing in flight: the bookmark's image is what the slots hold now.
        await admin(rig, 'POST', '/v1/groups/crash/bookmarks', { name: `round-${round}` });
        bookmarks.push({ name: `round-${round}`, gens: acked.slice() });
      }
      if (round === rounds || (report && enough?.(report))) { await dev.close(); break; }
      // QD8: eight writers, each on its own slots (slot % QD), one write at a time each.
      const killAfterMs = 300 + Math.floor(rnd() * 1200);
      const workerSeeds = Array.from({ length: QD }, () => Math.floor(rnd() * 2 ** 31));
      let stop = false;
      let ackedCount = 0;
      const workers = workerSeeds.map(async (ws, w) => {
        const wr = prng(ws);
        while (!stop) {
          const slot = w + QD * Math.floor(wr() * (SLOTS / QD));
          const gen = nextGen[slot]++;
          flying[slot] = gen;
          let r;
          try { r = await dev.write(BigInt(slot * WRITE_BLOCKS), writeOf(slot, gen)); } catch { return; }
          if (stop) return; // the answer came after the kill was decided: counted as in flight
          if (r.kind === 'good') { acked[slot] = gen; flying[slot] = 0; ackedCount++; hostAcked.push(`${slot}:${gen}`); }
        }
      });
      // The kill point: the seeded delay, and at least MIN_ACKED acknowledged writes (a loaded
      // machine may take longer than the delay to get going after a restart).
      await new Promise((r) => setTimeout(r, killAfterMs));
      for (let t = 0; ackedCount < MIN_ACKED && t < 300; t++) await new Promise((r) => setTimeout(r, 50));
      stop = true;
      proc.kill('SIGKILL');
      await new Promise((r) => proc.once('exit', r));
      await Promise.allSettled(workers);
      dev.close().catch(() => {});
      const inJournal = journaled(rig);
      const missing: string[] = [];
      for (const k of hostAcked) if (!inJournal.has(k)) missing.push(k);
      const inFlight = flying.reduce((a, f) => a + (f ? 1 : 0), 0);
      const scrambled = scrambleCopyAfterCheckpoint(rig, noise);
      reports.push({ acked: ackedCount, inFlight, missingFromJournal: missing, scrambled, production: [], verify: null, images: [] });
      console.log(`crash seed ${seed} round ${round}: killed after ${killAfterMs} ms, ${ackedCount} writes acknowledged, ${inFlight} in flight, `
        + `${missing.length} acknowledged writes missing from the journal, ${scrambled} copy writes after its checkpoint scrambled`);
      proc = serve(rig);
    }
  } finally {
    if (proc.exitCode === null && proc.signalCode === null) { proc.kill('SIGTERM'); await new Promise((r) => proc.once('exit', r)); }
  }
  return reports;
}

const rigs: Rig[] = [];
afterAll(() => { for (const r of rigs) rmSync(r.dir, { recursive: true, force: true }); });

describe('file journal: SIGKILL during writes', () => {
  it('keeps every acknowledged write; after restart production is whole, the copy equals it, and the images at earlier bookmarks read right', async () => {
    const seed = Number(process.env.CRASH_SEED ?? Math.floor(Math.random() * 2 ** 31));
    console.log(`crash test seed ${seed} (CRASH_SEED=${seed} replays the kill points)`);
    const rig = await makeRig();
    rigs.push(rig);
    const reports = await crashRounds(rig, seed, ROUNDS, undefined, true);
    expect(reports.length).toBe(ROUNDS);
    for (const [i, r] of reports.entries()) {
      expect(r.acked, `round ${i}: writes were acknowledged (seed ${seed})`).toBeGreaterThanOrEqual(MIN_ACKED);
      expect(r.missingFromJournal, `round ${i}: acknowledged writes missing from the journal (seed ${seed})`).toEqual([]);
      expect(r.production, `round ${i}: production after restart (seed ${seed})`).toEqual([]);
      expect(r.verify.consistent, `round ${i}: verify after restart (seed ${seed}): ${JSON.stringify(r.verify)}`).toBe(true);
      expect(r.images.slice(0, 5), `round ${i}: images at the bookmarks before the kill (seed ${seed})`).toEqual([]);
    }
  }, 180_000);

  // The early acknowledgement loses only what was acknowledged while a group commit was still
  // syncing (the next writev had not run): not every kill lands there, so up to 6 kills, stopping
  // at the first that shows it.
  it('negative control: acknowledging before the record is written loses acknowledged writes', async () => {
    const seed = Number(process.env.CRASH_SEED ?? Math.floor(Math.random() * 2 ** 31));
    console.log(`crash test (negative control, early acknowledgement) seed ${seed}`);
    const rig = await makeRig({ ARRAYSIM_TEST_JOURNAL_ACK: 'early' });
    rigs.push(rig);
    const reports = await crashRounds(rig, seed, 6, (r) => r.missingFromJournal.length > 0);
    const lost = reports.reduce((a, r) => a + r.missingFromJournal.length, 0);
    expect(lost, `the check must catch early acknowledgement within 6 kills (seed ${seed})`).toBeGreaterThan(0);
  }, 240_000);

  it('negative control: without recovery (no re-application, no sweep) verify finds the copy diverged', async () => {
    const seed = Number(process.env.CRASH_SEED ?? Math.floor(Math.random() * 2 ** 31));
    console.log(`crash test (negative control, recovery skipped) seed ${seed}`);
    const rig = await makeRig({ ARRAYSIM_TEST_JOURNAL_RECOVERY: 'skip' });
    rigs.push(rig);
    const reports = await crashRounds(rig, seed, 4, (r) => r.verify && !r.verify.consistent);
    expect(reports.some((r) => r.verify && !r.verify.consistent), `verify must fail once recovery is skipped (seed ${seed})`).toBe(true);
  }, 180_000);
});
