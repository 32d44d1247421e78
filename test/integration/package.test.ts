/**
 * The package as a user gets it: `npm pack` of this checkout, installed into an empty folder with
 * `npm install --omit=dev`, started with `npx arraysim serve`. It must serve (an iSCSI login and
 * READ CAPACITY through the portal, GET /v1/status from the admin API) with no dev dependency
 * installed and no TypeScript loader or esbuild service process at run time, and stop cleanly on
 * SIGTERM. The install may reach the registry; it prefers npm's local cache.
 *
 * `npm pack --ignore-scripts`: the vitest global setup has just built dist/; the `prepare` script
 * would rebuild it from scratch (deleting dist/ first) while other test files run the bin.
 */
import { execFile, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { TestInitiator } from '../helpers/initiator.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const run = promisify(execFile);
/** The environment without the npm_* variables of an `npm test` that may be running this. */
const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.toLowerCase().startsWith('npm_')));

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer().once('error', reject).listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/** The command lines of the processes in process group `pgid` (from /proc/PID/stat and cmdline). */
function groupCommands(pgid: number): string[] {
  const cmds: string[] = [];
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      // pid (comm) state ppid pgrp ...: comm may hold spaces and parentheses, so split after the last ')'.
      const [state, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(pgrp) !== pgid || state === 'Z') continue; // a zombie has exited, its parent has yet to reap it
      cmds.push(readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim());
    } catch { /* exited meanwhile */ }
  }
  return cmds;
}

/**
 * Every TypeScript loader process (esbuild's service, anything tsx) seen in group `pgid` while
 * `during` runs, sampled every 50 ms. tsx starts its esbuild service about a second after the
 * portal listens and lets it go a few seconds later, so one look is not enough.
 */
async function loadersDuring(pgid: number, during: () => Promise<unknown>): Promise<string[]> {
  const seen = new Set<string>();
  const look = () => { for (const c of groupCommands(pgid)) if (/esbuild|tsx/.test(c)) seen.add(c); };
  const timer = setInterval(look, 50);
  try { look(); await during(); look(); } finally { clearInterval(timer); }
  return [...seen];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Started { child: ChildProcess; log: () => string; closed: Promise<void> }

/** Start `cmd args` in its own process group; resolves once its log says the portal listens. */
async function startServe(cmd: string, args: string[], cwd: string, extraEnv: NodeJS.ProcessEnv = {}): Promise<Started> {
  const child = spawn(cmd, args, { cwd, env: { ...env, ...extraEnv }, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (c: Buffer) => { out += c; });
  child.stderr!.on('data', (c: Buffer) => { out += c; });
  const closed = new Promise<void>((resolve) => child.once('close', () => resolve()));
  const deadline = Date.now() + 20_000;
  while (!/"msg":"portal listening"/.test(out)) {
    if (child.exitCode !== null || Date.now() > deadline) {
      stop(child);
      throw new Error(`${cmd} ${args.join(' ')}: no listening portal\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return { child, log: () => out, closed };
}

function stop(child: ChildProcess): void {
  try { process.kill(-child.pid!, 'SIGTERM'); } catch { /* already gone */ }
}

const started: ChildProcess[] = [];
const tmp = mkdtempSync(path.join(os.tmpdir(), 'arraysim-pack-'));
afterAll(() => {
  for (const c of started) if (c.exitCode === null) { try { process.kill(-c.pid!, 'SIGKILL'); } catch { /* gone */ } }
  rmSync(tmp, { recursive: true, force: true });
});

describe('npm pack: installs into an empty folder and serves', () => {
  let tarball = '';

  it('the tarball holds bin, dist, examples and the README, and no sources, tests or tools', async () => {
    const { stdout } = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', tmp], { cwd: root, env });
    const [info] = JSON.parse(stdout) as { filename: string; files: { path: string }[] }[];
    tarball = path.join(tmp, info.filename);
    const files = info.files.map((f) => f.path);
    expect(files).toEqual(expect.arrayContaining(['package.json', 'README.md', 'bin/arraysim.js', 'dist/src/cli.js', 'examples/minimal.yaml']));
    expect(files.filter((f) => !/^(dist\/|examples\/|bin\/arraysim\.js$|README\.md$|package\.json$)/.test(f))).toEqual([]);
    expect(files.filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))).toEqual([]);
    expect(files).not.toContain('dist/.built');
  }, 30_000);

  it('npm install --omit=dev, then npx arraysim serve: login, READ CAPACITY, admin status, no esbuild, clean stop', async () => {
    expect(tarball).not.toBe('');
    const app = path.join(tmp, 'app');
    mkdirSync(app);
    await run('npm', ['install', '--omit=dev', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error', tarball], { cwd: app, env, timeout: 45_000 });
    const modules = path.join(app, 'node_modules');
    expect(existsSync(path.join(modules, 'arraysim', 'dist', 'src', 'cli.js'))).toBe(true);
    for (const dev of ['tsx', 'esbuild', 'typescript', 'vitest', '@types/node']) expect(existsSync(path.join(modules, dev)), dev).toBe(false);

    const [portal, admin] = [await freePort(), await freePort()];
    // --no: run the installed bin, never fetch a package of that name.
    const t = await startServe('npx', ['--no', 'arraysim', 'serve', '--listen', `127.0.0.1:${portal}`, '--admin', `127.0.0.1:${admin}`], app);
    started.push(t.child);
    try {
      const loaders = await loadersDuring(t.child.pid!, async () => {
        const i = await TestInitiator.connect(portal);
        try {
          await i.login('iqn.2026-11.dev.arraysim:default');
          await i.scsi(0, [0, 0, 0, 0, 0, 0]); // TEST UNIT READY takes the power-on UNIT ATTENTION
          const cap = await i.scsi(0, [0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0], { read: 8 });
          expect(cap.status).toBe(0);
          // The default LUN: thin 1 GiB of 512-byte blocks, so the last LBA is 2^21 - 1.
          expect([cap.data.readUInt32BE(0), cap.data.readUInt32BE(4)]).toEqual([2 ** 21 - 1, 512]);
        } finally { i.close(); }
        // serve loads the admin API (fastify) once the portals listen: wait for its line.
        for (let i = 0; i < 200 && !/"msg":"admin API listening"/.test(t.log()); i++) await sleep(50);
        const status = await (await fetch(`http://127.0.0.1:${admin}/v1/status`)).json() as { portals: { listen: string }[] };
        expect(status.portals.map((p) => p.listen)).toEqual([`127.0.0.1:${portal}`]);
        await sleep(3000);
      });
      expect(loaders).toEqual([]);
    } finally { stop(t.child); }
    await Promise.race([t.closed, new Promise((_, rej) => setTimeout(() => rej(new Error(`no exit after SIGTERM\n${t.log()}`)), 15_000))]);
    expect(t.log()).toMatch(/"msg":"shutting down"/);
    for (let i = 0; i < 50 && groupCommands(t.child.pid!).length; i++) await sleep(100);
    expect(groupCommands(t.child.pid!)).toEqual([]);
  }, 90_000);

  // tsx keeps compiled modules in a disk cache and starts esbuild only to compile what is not
  // there: with the cache off, as on a first start or after an edit, its service runs throughout.
  it('negative control: the same watch finds the esbuild service of a tsx start (node --import tsx src/cli.ts, cache off)', async () => {
    const portal = await freePort();
    const t = await startServe(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'serve', '--listen', `127.0.0.1:${portal}`, '--admin', 'none'], root, { TSX_DISABLE_CACHE: '1' });
    started.push(t.child);
    try {
      const loaders = await loadersDuring(t.child.pid!, () => sleep(5000));
      expect(loaders.some((c) => /esbuild --service/.test(c)), loaders.join('\n')).toBe(true);
    } finally { stop(t.child); }
    await t.closed;
  }, 30_000);
});
