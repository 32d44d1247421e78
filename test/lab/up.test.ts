/**
 * `arraysim lab up` from the outside: the built CLI (bin/arraysim.js) started as a user starts it,
 * on loopback addresses of its own. Its --json object is enough to drive the pair: a block written
 * through site A's portal reads back through site B's, and the other way. SIGTERM stops every
 * process it started; so does a SIGKILL of lab up itself (the children notice the parent's end),
 * and a negative control shows that a child without that watch would indeed be left behind.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes, randomInt } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { ScsiDevice } from '../../src/initiator/index.ts';
import { hasVerb } from '../../src/lab/children.ts';
import { siteArgs, witnessArgs } from '../../src/lab/topology.ts';
import type { LabUpReport } from '../../src/lab/up.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const bin = path.join(root, 'bin', 'arraysim.js');
const started: ChildProcess[] = [];
const leftovers: number[] = [];
/** The lab directories a killed lab up could not remove itself. */
const dirs: string[] = [];

afterAll(() => {
  for (const p of started) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  for (const pid of leftovers) if (alive(pid)) process.kill(pid, 'SIGKILL');
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function alive(pid: number): boolean {
  try {
    // A zombie (exited, not yet reaped by its parent) counts as gone.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch { return false; }
}

/** Every process whose command line mentions `needle` (the lab's own temporary directory). */
function processesMentioning(needle: string): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc').filter((x) => /^\d+$/.test(x))) {
    try {
      if (readFileSync(`/proc/${d}/cmdline`, 'utf8').includes(needle) && alive(Number(d))) out.push(Number(d));
    } catch { /* gone meanwhile */ }
  }
  return out;
}

async function until(what: string, cond: () => boolean, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Three loopback addresses no other test file uses. */
function addresses(): string[] {
  const x = randomInt(100, 250);
  const y = randomInt(1, 250);
  return [`127.${x}.${y}.1`, `127.${x}.${y}.2`, `127.${x}.${y}.3`];
}

async function labUp(extra: string[] = []): Promise<{ proc: ChildProcess; report: LabUpReport; stderr: () => string }> {
  const [a, b, w] = addresses();
  const proc = spawn(process.execPath, [bin, 'lab', 'up', '--json', '--site-a', a, '--site-b', b, '--witness', w, ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
  started.push(proc);
  let out = '';
  let err = '';
  proc.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  const report = await new Promise<LabUpReport>((resolve, reject) => {
    proc.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const nl = out.indexOf('\n');
      if (nl >= 0) { try { resolve(JSON.parse(out.slice(0, nl))); } catch (e) { reject(e); } }
    });
    proc.on('exit', (code) => reject(new Error(`lab up exited ${code} before its JSON: ${err}`)));
  });
  dirs.push(path.dirname(report.sites[0].config));
  return { proc, report, stderr: () => err };
}

const exitOf = (p: ChildProcess) => new Promise<number | null>((r) => { if (p.exitCode !== null) r(p.exitCode); else p.once('exit', (c) => r(c)); });

describe('lab up', () => {
  it('--json: a write through site A reads back through site B and the other way; SIGTERM leaves no process behind', async () => {
    const { proc, report, stderr } = await labUp();
    const witnessVerb = await hasVerb(bin, 'witness');
    expect(report.topology).toBe('metro');
    expect(report.sites.map((s) => [s.name, s.role])).toEqual([['site-a', 'primary'], ['site-b', 'secondary']]);
    expect(new Set(report.sites.map((s) => s.portals[0].split(':')[0])).size).toBe(2);
    expect(report.hosts.every((h) => h.portals.length === 2)).toBe(true); // uniform connectivity
    if (witnessVerb) {
      expect(report.witness).toMatchObject({ address: expect.stringMatching(/^127\.\d+\.\d+\.3:5300$/) });
      expect(alive(report.witness!.pid)).toBe(true);
    } else {
      // No witness verb in this build: no stand-in either, and it says so.
      expect(report.witness).toBeNull();
      expect(report.warnings.join(' ')).toMatch(/no `witness` verb/);
      expect(stderr()).toMatch(/no `witness` verb/);
    }
    const url = (i: number) => `iscsi://${report.sites[i].portals[0]}/${report.target}/${report.lun}`;
    const viaA = await ScsiDevice.open(url(0));
    const viaB = await ScsiDevice.open(url(1));
    try {
      // A new nexus first hears the power-on and ALUA unit attentions (SAM-5 §6.3).
      for (const d of [viaA, viaB]) expect((await d.clearUnitAttentions()).last.kind).toBe('good');
      const block = randomBytes(4096);
      expect((await viaA.write(1000n, block)).kind).toBe('good');
      const back = await viaB.read(1000n, block.length / 512);
      expect(back.kind).toBe('good');
      expect(Buffer.compare(back.kind === 'good' ? back.value : Buffer.alloc(0), block)).toBe(0);
      const other = randomBytes(512);
      expect((await viaB.write(77n, other)).kind).toBe('good');
      const there = await viaA.read(77n, 1);
      expect(Buffer.compare(there.kind === 'good' ? there.value : Buffer.alloc(0), other)).toBe(0);
    } finally {
      await viaA.close();
      await viaB.close();
    }
    const dir = path.dirname(report.sites[0].config);
    const pids = [...report.sites.map((s) => s.pid), ...(report.witness ? [report.witness.pid] : [])];
    expect(pids.every(alive)).toBe(true);
    // The two arrays run from configs in the lab's directory, and the witness keeps its state file there.
    expect(processesMentioning(dir).length).toBe(report.witness ? 3 : 2);
    // Each child runs this CLI with the arguments the shared builders make (docker-compose.yml uses the same ones).
    const argv = (pid: number) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
    for (const s of report.sites) expect(argv(s.pid)).toEqual([process.execPath, bin, ...siteArgs(s.config)]);
    if (report.witness) {
      const [host, port] = report.witness.address.split(':');
      expect(argv(report.witness.pid)).toEqual([process.execPath, bin, ...witnessArgs({ host, port: Number(port) }, path.join(dir, 'witness-state.json'))]);
    }
    proc.kill('SIGTERM');
    expect(await exitOf(proc)).toBe(0);
    for (const pid of pids) expect(alive(pid)).toBe(false);
    expect(processesMentioning(dir)).toEqual([]);
    expect(existsSync(dir)).toBe(false);
  }, 180_000);

  it('a SIGKILL of lab up itself: the arrays and the witness notice and stop cleanly', async () => {
    const { proc, report } = await labUp(['--topology', 'sync']);
    expect(report.topology).toBe('sync');
    // Active Sync: each host is connected only to its local array.
    expect(report.hosts.map((h) => h.portals)).toEqual([report.sites[0].portals, report.sites[1].portals]);
    const pids = [...report.sites.map((s) => s.pid), ...(report.witness ? [report.witness.pid] : [])];
    leftovers.push(...pids);
    proc.kill('SIGKILL');
    await exitOf(proc);
    await until('every child of the killed lab up to exit', () => !pids.some(alive), 60_000);
    // They stopped through their own SIGTERM handler, not by dying with the pipe.
    for (const s of report.sites) expect(readFileSync(s.log, 'utf8')).toMatch(/"signal":"SIGTERM".*shutting down/);
  }, 180_000);

  it('negative control: a child started the same way but without the parent watch outlives a killed parent', async () => {
    const [a] = addresses();
    // An intermediate parent that spawns `serve` with an IPC channel but without ARRAYSIM_EXIT_WITH_PARENT.
    const script = `
      const { spawn } = require('node:child_process');
      const env = { ...process.env }; delete env.ARRAYSIM_EXIT_WITH_PARENT;
      const c = spawn(process.execPath, [${JSON.stringify(bin)}, 'serve', '--listen', '${a}:3260', '--admin', 'none'], { stdio: ['ignore', 'ignore', 'ignore', 'ipc'], env });
      c.channel.unref();
      console.log(c.pid);
      setInterval(() => {}, 1000);`;
    const parent = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    started.push(parent);
    const pid = await new Promise<number>((r) => parent.stdout!.once('data', (d: Buffer) => r(Number(d.toString().trim()))));
    leftovers.push(pid);
    await until('the child to be running', () => alive(pid));
    parent.kill('SIGKILL');
    await exitOf(parent);
    await new Promise((r) => setTimeout(r, 3000));
    expect(alive(pid)).toBe(true); // the check above would have caught an orphan
    process.kill(pid, 'SIGKILL');
    await until('the orphan to be gone', () => !alive(pid));
  }, 60_000);

  it('refuses addresses off loopback and addresses used twice, with the flag named', async () => {
    const run = (args: string[]) => new Promise<{ code: number | null; err: string }>((resolve) => {
      const p = spawn(process.execPath, [bin, 'lab', 'up', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
      let err = '';
      p.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
      p.on('exit', (code) => resolve({ code, err }));
    });
    const off = await run(['--site-a', '10.1.2.3']);
    expect(off.code).toBe(1);
    expect(off.err).toMatch(/--site-a 10\.1\.2\.3: lab up runs on loopback/);
    const same = await run(['--site-b', '127.0.1.1']);
    expect(same.code).toBe(1);
    expect(same.err).toMatch(/three different addresses/);
    const topo = await run(['--topology', 'stretched']);
    expect(topo.code).toBe(1);
    expect(topo.err).toMatch(/topology/);
  }, 60_000);
});
