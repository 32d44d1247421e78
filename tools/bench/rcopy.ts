/**
 * What synchronous replication costs (issue 12, README "Performance"): three arraysim processes
 * side by side in one run, each its own process so that its CPU is its own.
 *
 *   U  unreplicated     127.0.0.1:PORT    1 GiB thin memory LUN
 *   A  primary          127.0.1.1:PORT+1  the same LUN in Remote Copy group rcg1 (active_active)
 *   B  secondary        127.0.2.1:PORT+2  its peer (link listeners PORT+3 on B, PORT+4 on A)
 *
 *   npx tsx tools/bench/rcopy.ts [--seconds 5] [--rounds 3] [--port 3490] [--latency-ms 1] [--resync-percent 1] [--json] [--qd32-only] [--data-integrity auto|crc32c|none]
 *   (ARRAYSIM_BENCH_PRIORITY=-20 on a shared machine, as root: tools/bench/target.ts prioritize)
 *
 * Needs a current dist/ (`npm run build`; bin/arraysim.js refuses a stale one). The client is the
 * project's test initiator (test/helpers/initiator.ts) in this process, WRITE(16) of 4 KiB at
 * random 4 KiB-aligned LBAs with ImmediateData, so a write is one PDU each way.
 *
 * - QD1 latency: U, A (replicated, written at the primary) and B (replicated, written at the
 *   secondary, which forwards to the primary: one more link round trip). Goal: A ≤ 1.5 × U.
 * - QD1 floor: the same hops through a bare Node TCP relay (RELAY below), in the same run: how much
 *   of the ratio any design with two array processes pays on this machine.
 * - QD1 with an injected round trip: POST /v1/rcopy/link {latencyMs} on A (every frame A sends is
 *   that much later, so each replicated write pays it once). Goal: ≤ 1.2 × (A's loopback latency + injected).
 * - QD32 IOPS: U against A, and CPU per write of each array process (utime+stime from
 *   /proc/PID/stat over the run, the same figure process.cpuUsage() gives inside it), and of this
 *   client process. Goal: A ≥ 60% of U.
 * - QD32 floor: the bare relays again, with 32 requests outstanding: how much of the IOPS ratio
 *   the extra process and its two hops cost on this machine before any array code runs.
 * - Resync: cut the link, write --resync-percent of the volume in distinct 4 KiB writes at QD32
 *   through A, restore, and read A's lastResyncBytes / lastResyncMs (the resync alone, Syncing to
 *   Synced) and the wall time from restore to both Synced (that includes the redial, up to 200 ms,
 *   and the handshake). Goal: about 1% of the volume sent, in under 2 s.
 *
 * --qd32-only measures the QD32 rows alone (a quick before/after of CPU per write, or a profile
 * with ARRAYSIM_BENCH_CPU_PROF that holds nothing else). Rounds alternate which side goes first; each cell is the median round. A table is printed, or
 * with --json one JSON object (the table then goes to stderr).
 */
import { loadavg, tmpdir } from 'node:os';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import net from 'node:net';
import { spawn } from 'node:child_process';
import { cdb16 } from '../../test/helpers/cdb.ts';
import { TestInitiator } from '../../test/helpers/initiator.ts';
import { BENCH_KEYS, cpuSeconds, numOpt, prioritize, senseOf, startTarget } from './target.ts';
import { Progress } from '../../src/progress.ts';

const SECONDS = numOpt('seconds', 5);
const ROUNDS = numOpt('rounds', 3);
const PORT = numOpt('port', 3490);
const LATENCY_MS = numOpt('latency-ms', 1);
const RESYNC_PERCENT = numOpt('resync-percent', 1);
const JSON_OUT = process.argv.includes('--json');
const QD32_ONLY = process.argv.includes('--qd32-only');
/** --data-integrity auto|crc32c|none: both arrays' peers.dataIntegrity (default: the arrays' default, auto: unchecked on loopback). */
const DATA_INTEGRITY = ((i) => (i >= 0 ? process.argv[i + 1] : undefined))(process.argv.indexOf('--data-integrity'));
const IQN = 'iqn.2026-11.dev.arraysim:rcopy-bench';
const BLOCKS = 2 * 1024 * 1024; // 1 GiB of 512-byte blocks
const SLOTS = BLOCKS / 8; // 4 KiB slots
const QD = 32;

const out = JSON_OUT ? (s: string) => process.stderr.write(s + '\n') : (s: string) => console.log(s);
const load = (): string => loadavg().map((x) => x.toFixed(1)).join(' ');
const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };
const pct = (xs: number[], p: number): number => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor(s.length * p))]; };

interface Site { name: 'U' | 'A' | 'B'; host: string; port: number; admin: number; pid: number }

function yaml(site: 'U' | 'A' | 'B'): string {
  const host = { U: '127.0.0.1', A: '127.0.1.1', B: '127.0.2.1' }[site];
  const port = PORT + { U: 0, A: 1, B: 2 }[site];
  const lines = [
    'portals:', `  - listen: ${host}:${port}`, `    tpgt: ${site === 'B' ? 2 : 1}`,
    'targets:', `  - name: ${IQN}`, '    luns:', '      - spec: 1GiB', '        naa: 502a7510000b0001', '        serial: ASIMRCBENCH01',
    'admin:', `  listen: ${host}:${port + 1000}`,
  ];
  if (site !== 'U') {
    lines.push('peers:', `  name: site-${site.toLowerCase()}`, `  listen: ${host}:${site === 'B' ? PORT + 3 : PORT + 4}`);
    if (DATA_INTEGRITY) lines.push(`  dataIntegrity: ${DATA_INTEGRITY}`);
    if (site === 'A') lines.push(`  peer: 127.0.2.1:${PORT + 3}`);
    lines.push('rcopy:', '  groups:', '    - name: rcg1', `      role: ${site === 'A' ? 'primary' : 'secondary'}`, '      volumes: [0]', '      policies: [active_active]');
  }
  return lines.join('\n') + '\n';
}

async function waitPort(host: string, port: number): Promise<void> {
  for (let i = 0; i < 300; i++) {
    const ok = await new Promise<boolean>((r) => {
      const s = net.connect(port, host, () => { s.destroy(); r(true); });
      s.on('error', () => r(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`nothing listens on ${host}:${port}`);
}

async function admin(s: Site, method: 'GET' | 'POST', p: string, body?: unknown): Promise<any> {
  const res = await fetch(`http://${s.host}:${s.admin}${p}`, { method, headers: body ? { 'content-type': 'application/json' } : {}, body: body ? JSON.stringify(body) : undefined });
  const j = await res.json();
  if (!res.ok) throw new Error(`${method} ${p} on ${s.name}: ${res.status} ${JSON.stringify(j)}`);
  return j;
}

interface GroupView { status: string; stats: { resyncBytes: number; lastResyncBytes: number; lastResyncMs: number; linkUps: number } }
const group = async (s: Site): Promise<GroupView> => (await admin(s, 'GET', '/v1/rcopy/groups')).groups[0];

async function until(f: () => Promise<boolean>, what: string, ms = 60_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await f())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

let isid = 0;
async function session(s: Site): Promise<TestInitiator> {
  const ini = await TestInitiator.connect(s.port, s.host);
  ini.isid = Buffer.from([0x80, 0, 0, 0, 0x43, isid++]);
  ini.answerPings = true; // a session idle while the others are measured must not be dropped by the target's NOP-In timeout
  await ini.login(IQN, BENCH_KEYS);
  for (let i = 0; i < 4; i++) await ini.scsi(0, [0x00, 0, 0, 0, 0, 0]); // unit attentions (power on, ALUA changes)
  return ini;
}

/** WRITE(16) of 4 KiB; a UNIT ATTENTION (an ALUA change after a cut or restore) is retried. */
async function write4k(ini: TestInitiator, slot: number, data: Buffer): Promise<void> {
  for (let i = 0; ; i++) {
    const r = await ini.scsi(0, cdb16(0x8a, slot * 8, 8), { write: data });
    if (r.status === 0) return;
    const s = senseOf(r);
    if (s?.key === 6 && i < 8) continue;
    throw new Error(`WRITE(16) at LBA ${slot * 8}: status ${r.status}${s ? ` sense ${s.key.toString(16)}/${s.asc.toString(16)}/${s.ascq.toString(16)}` : ''}`);
  }
}

function lcg(seed: number): () => number {
  let x = seed;
  return () => { x = (x * 1103515245 + 12345) & 0x7fffffff; return x % SLOTS; };
}

/** QD1 for `seconds`: per-write latency in µs. */
async function qd1(ini: TestInitiator, seconds: number, seed: number): Promise<number[]> {
  const data = Buffer.alloc(4096, 0xa5);
  const next = lcg(seed);
  const lat: number[] = [];
  const end = performance.now() + seconds * 1000;
  while (performance.now() < end) {
    const t = performance.now();
    await write4k(ini, next(), data);
    lat.push((performance.now() - t) * 1000);
  }
  return lat;
}

/** QD32 for `seconds`: IOPS, and CPU µs per write of each process in `pids` and of this client. */
async function qd32(ini: TestInitiator, seconds: number, pids: number[], seed: number): Promise<{ iops: number; cpuUs: number[]; clientUs: number }> {
  const data = Buffer.alloc(4096, 0x5a);
  const next = lcg(seed);
  const c0 = pids.map(cpuSeconds);
  const u0 = process.cpuUsage();
  const end = performance.now() + seconds * 1000;
  let done = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: QD }, async () => {
    while (performance.now() < end) { await write4k(ini, next(), data); done++; }
  }));
  const secs = (performance.now() - t0) / 1000;
  const u = process.cpuUsage(u0);
  return { iops: done / secs, cpuUs: pids.map((p, i) => ((cpuSeconds(p) - c0[i]) * 1e6) / done), clientUs: (u.user + u.system) / done };
}

/**
 * The floor under the QD1 goal, measured in the same run: the same hops with nothing but Node and
 * TCP in them. A bare relay P (and peer Q) in processes of their own; the client sends 4 KiB +
 * 48 bytes and waits for 48 (unreplicated: client → P → client) or P first sends 4 KiB + 24 to Q
 * and waits for its 34-byte answer (replicated: client → P → Q → P → client). No iSCSI, no CRC,
 * no store: what is left is the wake-ups and loopback TCP that any two-array design pays.
 */
const RELAY = `
const net = require('node:net');
const [role, qport] = [process.argv[1], Number(process.argv[2])];
function frames(s, size, on) { let have = 0; s.on('data', (c) => { have += c.length; while (have >= size) { have -= size; on(); } }); }
if (role === 'Q') {
  const srv = net.createServer((s) => { s.setNoDelay(true); const ack = Buffer.alloc(34); frames(s, 4096 + 24, () => s.write(ack)); });
  srv.listen(0, '127.0.0.1', () => console.log(srv.address().port));
} else {
  const q = qport ? net.connect(qport, '127.0.0.1') : null;
  if (q) q.setNoDelay(true);
  const waiting = [];
  if (q) frames(q, 34, () => waiting.shift()());
  const hdr = Buffer.alloc(24), data = Buffer.alloc(4096), rsp = Buffer.alloc(48);
  const srv = net.createServer((s) => {
    s.setNoDelay(true);
    frames(s, 4096 + 48, () => {
      if (!q) { s.write(rsp); return; }
      waiting.push(() => s.write(rsp));
      q.cork(); q.write(hdr); q.write(data); process.nextTick(() => q.uncork());
    });
  });
  srv.listen(0, '127.0.0.1', () => console.log(srv.address().port));
}`;

async function relay(args: string[]): Promise<{ port: number; child: ReturnType<typeof spawn> }> {
  const child = spawn(process.execPath, ['-e', RELAY, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  if (child.pid) prioritize(child.pid);
  const port = await new Promise<number>((resolve) => child.stdout!.once('data', (b: Buffer) => resolve(Number(b.toString().trim()))));
  return { port, child };
}

/** QD1 through a bare relay for `seconds`: per-request latency in µs. */
async function relayQd1(port: number, seconds: number): Promise<number[]> {
  const s = net.connect(port, '127.0.0.1');
  s.setNoDelay(true);
  await new Promise((r) => s.once('connect', r));
  const req = Buffer.alloc(4096 + 48);
  const lat: number[] = [];
  const end = performance.now() + seconds * 1000;
  await new Promise<void>((resolve) => {
    let have = 0;
    let t = performance.now();
    s.on('data', (c: Buffer) => {
      have += c.length;
      if (have < 48) return;
      have -= 48;
      const now = performance.now();
      lat.push((now - t) * 1000);
      if (now >= end) { resolve(); return; }
      t = performance.now();
      s.write(req);
    });
    s.write(req);
  });
  s.destroy();
  return lat;
}

/**
 * QD32 through a bare relay for `seconds`: requests per second, with QD requests outstanding, as
 * the arrays' QD32 row keeps them (a new request as each answer comes back, one socket write each,
 * as the test initiator sends a PDU).
 */
async function relayQd32(port: number, seconds: number): Promise<number> {
  const s = net.connect(port, '127.0.0.1');
  s.setNoDelay(true);
  await new Promise((r) => s.once('connect', r));
  const req = Buffer.alloc(4096 + 48);
  let done = 0;
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  await new Promise<void>((resolve) => {
    let have = 0;
    let outstanding = QD;
    s.on('data', (c: Buffer) => {
      have += c.length;
      const now = performance.now();
      for (; have >= 48; have -= 48) {
        done++;
        outstanding--;
        if (now < end) { outstanding++; s.write(req); }
      }
      if (outstanding === 0) resolve();
    });
    for (let i = 0; i < QD; i++) s.write(req);
  });
  const secs = (performance.now() - t0) / 1000;
  s.destroy();
  return done / secs;
}

async function main(): Promise<void> {
  prioritize();
  const dir = mkdtempSync(path.join(tmpdir(), 'arraysim-rcbench-'));
  const sites: Site[] = [];
  const started: ReturnType<typeof startTarget>[] = [];
  const stopAll = (): void => { for (const t of started) t.stop(); };
  process.on('exit', () => { stopAll(); rmSync(dir, { recursive: true, force: true }); });
  for (const name of ['U', 'B', 'A'] as const) {
    const file = path.join(dir, `${name}.yaml`);
    writeFileSync(file, yaml(name));
    const t = startTarget(['--config', file]);
    started.push(t);
    const host = { U: '127.0.0.1', A: '127.0.1.1', B: '127.0.2.1' }[name];
    const port = PORT + { U: 0, A: 1, B: 2 }[name];
    sites.push({ name, host, port, admin: port + 1000, pid: t.child.pid! });
    await waitPort(host, port);
    await waitPort(host, port + 1000);
  }
  const [U, B, A] = sites;
  await until(async () => (await group(A)).status === 'Synced' && (await group(B)).status === 'Synced', 'A and B Synced');
  const ini = { U: await session(U), A: await session(A), B: await session(B) };
  const relayQ = await relay(['Q', '0']);
  const relayA = await relay(['P', String(relayQ.port)]);
  const relayU = await relay(['P', '0']);
  process.on('exit', () => { for (const r of [relayQ, relayA, relayU]) r.child.kill(); });
  const priority = process.env.ARRAYSIM_BENCH_PRIORITY;
  out(`rcopy bench: ${ROUNDS} rounds, ${SECONDS} s per measurement, injected ${LATENCY_MS} ms; ${priority ? `priority ${priority} (ARRAYSIM_BENCH_PRIORITY); ` : ''}load before: ${load()}`);

  const q1: Record<'U' | 'A' | 'B' | 'Alat' | 'RU' | 'RA', number[][]> = { U: [], A: [], B: [], Alat: [], RU: [], RA: [] };
  const q32: Record<'U' | 'A', { iops: number; cpuUs: number[]; clientUs: number }[]> = { U: [], A: [] };
  const r32: Record<'RU' | 'RA', number[]> = { RU: [], RA: [] };
  // On a terminal, a bar over the measurements (10 a round, then the resync) with the time left;
  // the per-round lines go to stderr through it, so stdout holds the table.
  const progress = Progress.start({ label: 'rcopy bench', total: QD32_ONLY ? ROUNDS * 4 : ROUNDS * 10 + 1, noun: 'measurements' });
  const say = (line: string): void => { progress.note(line); progress.tick(); };
  // Without the QD1 measurements first, the first QD32 round would pay the arrays' JIT warm-up.
  if (QD32_ONLY) for (const k of ['U', 'A'] as const) await qd32(ini[k], 1, [], 999);
  for (let round = 0; round < ROUNDS; round++) {
    if (!QD32_ONLY) await qd1Round(round);
    for (const k of round % 2 ? (['A', 'U'] as const) : (['U', 'A'] as const)) {
      const r = await qd32(ini[k], SECONDS, k === 'U' ? [U.pid] : [A.pid, B.pid], 3000 + round);
      q32[k].push(r);
      say(`round ${round + 1} QD32 ${k}: ${Math.round(r.iops)} IOPS, CPU/write ${r.cpuUs.map((x) => x.toFixed(1)).join(' + ')} µs (client ${r.clientUs.toFixed(1)} µs; load ${load()})`);
    }
    for (const [k, r] of (round % 2 ? [['RA', relayA], ['RU', relayU]] : [['RU', relayU], ['RA', relayA]]) as ['RU' | 'RA', typeof relayU][]) {
      const n = await relayQd32(r.port, SECONDS);
      r32[k].push(n);
      say(`round ${round + 1} QD32 bare relay ${k === 'RU' ? 'client→P→client' : 'client→P→Q→P→client'}: ${Math.round(n)} requests/s (load ${load()})`);
    }
  }
  const relay32 = { unreplicated: median(r32.RU), replicated: median(r32.RA) };
  const pick = (xs: { iops: number; cpuUs: number[]; clientUs: number }[]) => { const s = [...xs].sort((a, b) => a.iops - b.iops); return s[Math.floor(s.length / 2)]; };
  const iops = { U: pick(q32.U), A: pick(q32.A) };
  const rowsQd32 = [
    `| QD32 4 KiB random write IOPS | ${Math.round(iops.U.iops)} | ${Math.round(iops.A.iops)} | ${(100 * iops.A.iops / iops.U.iops).toFixed(0)}% / ≥ 60% |`,
    `| QD32 floor: the bare relay with the same hops, requests/s | ${Math.round(relay32.unreplicated)} | ${Math.round(relay32.replicated)} | ${(100 * relay32.replicated / relay32.unreplicated).toFixed(0)}% |`,
    `| CPU per write (array process) | ${iops.U.cpuUs[0].toFixed(1)} µs | A ${iops.A.cpuUs[0].toFixed(1)} µs + B ${iops.A.cpuUs[1].toFixed(1)} µs | client ${iops.U.clientUs.toFixed(1)} / ${iops.A.clientUs.toFixed(1)} µs |`,
  ];
  const qd32Result = {
    unreplicatedIops: iops.U.iops, replicatedIops: iops.A.iops, ratio: iops.A.iops / iops.U.iops, goalRatio: 0.6,
    cpuUsPerWrite: { unreplicated: iops.U.cpuUs[0], primary: iops.A.cpuUs[0], secondary: iops.A.cpuUs[1], clientUnreplicated: iops.U.clientUs, clientReplicated: iops.A.clientUs },
    rounds: { U: q32.U.map((r) => Math.round(r.iops)), A: q32.A.map((r) => Math.round(r.iops)), RU: r32.RU.map(Math.round), RA: r32.RA.map(Math.round) },
    bareRelay: { unreplicated: relay32.unreplicated, replicated: relay32.replicated, ratio: relay32.replicated / relay32.unreplicated },
  };
  const header = ['| measurement | unreplicated (U) | replicated (A, primary) | ratio / goal |', '|---|---|---|---|'];
  if (QD32_ONLY) {
    progress.done();
    out([...header, ...rowsQd32].join('\n'));
    out(`load after: ${load()}`);
    if (JSON_OUT) console.log(JSON.stringify({ when: new Date().toISOString(), load: load(), seconds: SECONDS, rounds: ROUNDS, qd32: qd32Result }, null, 2));
    for (const i of Object.values(ini)) i.close();
    return;
  }

  async function qd1Round(round: number): Promise<void> {
    const order = (['U', 'A', 'B'] as const).map((_, i, a) => a[(i + round) % 3]);
    for (const k of order) {
      const lat = await qd1(ini[k], SECONDS, 1000 + round);
      q1[k].push(lat);
      say(`round ${round + 1} QD1 ${k}: median ${median(lat).toFixed(0)} µs (${lat.length} writes; load ${load()})`);
    }
    for (const [k, r] of (round % 2 ? [['RA', relayA], ['RU', relayU]] : [['RU', relayU], ['RA', relayA]]) as ['RU' | 'RA', typeof relayU][]) {
      const lat = await relayQd1(r.port, SECONDS);
      q1[k].push(lat);
      say(`round ${round + 1} QD1 bare relay ${k === 'RU' ? 'client→P→client' : 'client→P→Q→P→client'}: median ${median(lat).toFixed(0)} µs (load ${load()})`);
    }
    await admin(A, 'POST', '/v1/rcopy/link', { latencyMs: LATENCY_MS });
    const lat = await qd1(ini.A, SECONDS, 2000 + round);
    await admin(A, 'POST', '/v1/rcopy/link', { latencyMs: 0 });
    q1.Alat.push(lat);
    say(`round ${round + 1} QD1 A +${LATENCY_MS} ms: median ${median(lat).toFixed(0)} µs (load ${load()})`);
  }

  // Resync after an outage in which RESYNC_PERCENT of the volume was written.
  const writes = Math.round((SLOTS * RESYNC_PERCENT) / 100);
  await admin(A, 'POST', '/v1/rcopy/link', { action: 'cut' });
  await until(async () => (await group(A)).status === 'Stopped' && (await group(B)).status === 'Stopped', 'both Stopped');
  const slots = new Set<number>();
  const next = lcg(4242);
  while (slots.size < writes) slots.add(next());
  const todo = [...slots];
  const data = Buffer.alloc(4096, 0x3c);
  await Promise.all(Array.from({ length: QD }, async () => { for (let s = todo.pop(); s !== undefined; s = todo.pop()) await write4k(ini.A, s, data); }));
  const written = writes * 4096;
  const before = (await group(A)).stats;
  const t0 = performance.now();
  await admin(A, 'POST', '/v1/rcopy/link', { action: 'restore' });
  await until(async () => (await group(A)).status === 'Synced' && (await group(B)).status === 'Synced', 'both Synced after restore');
  const wallMs = performance.now() - t0;
  const after = (await group(A)).stats;
  const resync = { written, sent: after.resyncBytes - before.resyncBytes, lastResyncBytes: after.lastResyncBytes, resyncMs: after.lastResyncMs, restoreToSyncedMs: Math.round(wallMs), volumeBytes: BLOCKS * 512 };

  progress.tick();
  progress.done();
  const m = (xs: number[][]) => median(xs.map(median));
  const lat = { U: m(q1.U), A: m(q1.A), B: m(q1.B), Alat: m(q1.Alat), RU: m(q1.RU), RA: m(q1.RA) };
  const p99 = { U: median(q1.U.map((x) => pct(x, 0.99))), A: median(q1.A.map((x) => pct(x, 0.99))), B: median(q1.B.map((x) => pct(x, 0.99))), Alat: median(q1.Alat.map((x) => pct(x, 0.99))) };
  const goalLat = 1.2 * (lat.A + LATENCY_MS * 1000);
  const result = {
    when: new Date().toISOString(), load: load(), seconds: SECONDS, rounds: ROUNDS,
    qd1: {
      unreplicatedUs: lat.U, replicatedUs: lat.A, viaSecondaryUs: lat.B, ratio: lat.A / lat.U, goalRatio: 1.5, p99Us: p99,
      injectedMs: LATENCY_MS, withInjectedUs: lat.Alat, goalUs: goalLat, rounds: { U: q1.U.map(median), A: q1.A.map(median), B: q1.B.map(median), Alat: q1.Alat.map(median) },
      bareRelay: { unreplicatedUs: lat.RU, replicatedUs: lat.RA, ratio: lat.RA / lat.RU },
    },
    qd32: qd32Result,
    resync: { ...resync, sentPercentOfVolume: (100 * resync.sent) / resync.volumeBytes, goalMs: 2000 },
  };

  const us = (x: number) => `${x.toFixed(0)} µs`;
  const table = [
    ...header,
    `| QD1 4 KiB write latency, median (p99) | ${us(lat.U)} (${us(p99.U)}) | ${us(lat.A)} (${us(p99.A)}) | ${(lat.A / lat.U).toFixed(2)}x / ≤ 1.5x |`,
    `| QD1 floor: a bare Node TCP relay with the same hops (no iSCSI, CRC or store) | ${us(lat.RU)} | ${us(lat.RA)} | ${(lat.RA / lat.RU).toFixed(2)}x |`,
    `| QD1 via the secondary (B forwards to A) | | ${us(lat.B)} (${us(p99.B)}) | ${(lat.B / lat.U).toFixed(2)}x |`,
    `| QD1 with +${LATENCY_MS} ms round trip on the link | | ${us(lat.Alat)} (${us(p99.Alat)}) | goal ≤ ${us(goalLat)} (1.2 × (${us(lat.A)} + ${LATENCY_MS} ms)): ${lat.Alat <= goalLat ? 'met' : 'missed'} |`,
    ...rowsQd32,
    `| resync after ${RESYNC_PERCENT}% of 1 GiB written (${(written / 1048576).toFixed(1)} MiB) | | sent ${(resync.sent / 1048576).toFixed(2)} MiB (${result.resync.sentPercentOfVolume.toFixed(2)}% of the volume) in ${resync.resyncMs} ms; restore → Synced ${resync.restoreToSyncedMs} ms | goal ~${RESYNC_PERCENT}%, < 2 s |`,
  ].join('\n');
  out(table);
  out(`load after: ${load()}`);
  if (JSON_OUT) console.log(JSON.stringify(result, null, 2));
  for (const i of Object.values(ini)) i.close();
}

void main().then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
