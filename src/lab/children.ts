/**
 * The processes `lab up` starts, and the checker (`check metro`, src/check/cluster.ts) and the
 * metro failure lab with it: this package's own CLI (bin/arraysim.js) with one verb each, its
 * arguments from src/lab/topology.ts (siteArgs, witnessArgs), appending to its own log file, stopped with SIGTERM (then SIGKILL after a grace period). Each child gets
 * an IPC channel and ARRAYSIM_EXIT_WITH_PARENT=1: src/lab/parent-watch.ts in the child turns the
 * channel's end (the parent exited, however it died, even by SIGKILL) into its own SIGTERM, so a
 * killed `lab up` leaves no orphan behind.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { EXIT_WITH_PARENT_ENV } from './parent-watch.ts';

/** bin/arraysim.js of this package: from src/lab (tsx) or dist/src/lab (built), walk up to it. */
export function cliEntry(from = path.dirname(fileURLToPath(import.meta.url))): string {
  for (let dir = from; ; dir = path.dirname(dir)) {
    const bin = path.join(dir, 'bin', 'arraysim.js');
    if (existsSync(bin)) return bin;
    if (path.dirname(dir) === dir) throw new Error(`bin/arraysim.js not found above ${from}`);
  }
}

/** Does this build of the CLI have `verb`? (`arraysim VERB --help` exits 0; an unknown verb is a usage error.) */
export function hasVerb(entry: string, verb: string): Promise<boolean> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [entry, verb, '--help'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    p.on('error', () => resolve(false));
    p.on('exit', (code) => resolve(code === 0 && out.includes(`arraysim ${verb}`)));
  });
}

export interface ChildExit { name: string; code: number | null; signal: NodeJS.Signals | null }

export class LabChild {
  readonly proc: ChildProcess;
  readonly exited: Promise<ChildExit>;
  private exit: ChildExit | null = null;
  /** Where this process's output begins in its log file (a restarted process appends to its predecessor's). */
  private readonly logStart: number;

  /** `env` is added to this process's environment. */
  constructor(readonly name: string, entry: string, readonly args: string[], readonly logFile: string, env: NodeJS.ProcessEnv = {}) {
    // The child writes its output to the log file itself, not through a pipe to this process: a
    // child outliving a killed `lab up` would otherwise meet EPIPE on its way out.
    const fd = openSync(logFile, 'a');
    try {
      this.logStart = statSync(logFile).size;
      this.proc = spawn(process.execPath, [entry, ...args], {
        stdio: ['ignore', fd, fd, 'ipc'],
        env: { ...process.env, ...env, [EXIT_WITH_PARENT_ENV]: '1' },
      });
    } finally {
      closeSync(fd);
    }
    // The channel is only there to end with this process; it must not keep `lab up` alive.
    this.proc.channel?.unref();
    this.exited = new Promise((resolve) => {
      this.proc.on('exit', (code, signal) => {
        this.exit = { name, code, signal };
        resolve(this.exit);
      });
      // spawn itself failed (no such executable): reported as an exit.
      this.proc.on('error', () => { if (!this.exit) { this.exit = { name, code: null, signal: null }; resolve(this.exit); } });
    });
  }

  /** The first match of `re` in this process's output (its part of the log file); rejects if the child exits first. */
  async line(re: RegExp, pollMs = 100): Promise<RegExpExecArray> {
    for (;;) {
      const m = re.exec(readFileSync(this.logFile).subarray(this.logStart).toString('utf8'));
      if (m) return m;
      if (this.exit) throw new Error(`${this.name} exited (${describeExit(this.exit)}) before printing ${re}; see ${this.logFile}`);
      await new Promise((r) => setTimeout(r, pollMs));
    }
  }

  get pid(): number { return this.proc.pid ?? -1; }
  get running(): boolean { return this.exit === null; }

  /** SIGTERM, then SIGKILL if it has not exited after `graceMs`. */
  async stop(graceMs = 10_000): Promise<ChildExit> {
    if (this.exit) return this.exit;
    this.proc.kill('SIGTERM');
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), graceMs);
    try { return await this.exited; } finally { clearTimeout(timer); }
  }

  /** Send `signal` (a crash, by default) and wait for the exit. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<ChildExit> {
    if (this.exit) return this.exit;
    this.proc.kill(signal);
    return this.exited;
  }
}

export function describeExit(e: ChildExit): string {
  return e.signal ? `signal ${e.signal}` : `exit code ${e.code}`;
}
