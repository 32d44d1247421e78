/**
 * An `arraysim serve` process for the restart tests (persist-process, runtime-restart): started
 * from its YAML with its admin API on `base`, ready once `ready` answers; its stderr kept (the
 * last 50-100 kB) for failure messages; killed with any signal.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import path from 'node:path';

const ROOT = path.resolve(import.meta.dirname, '../..');

export class ServeProcess {
  proc: ChildProcess | null = null;
  err = '';
  constructor(readonly name: string, readonly yaml: string, readonly base: string, private readonly onStart: (kill: () => Promise<void>) => void) {}

  async start(ready: () => Promise<unknown>): Promise<void> {
    this.err = '';
    const p = spawn(process.execPath, [path.join(ROOT, 'bin/arraysim.js'), 'serve', '--config', this.yaml, '--admin', this.base], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
    p.stderr!.on('data', (d) => { this.err += d; if (this.err.length > 100_000) this.err = this.err.slice(-50_000); });
    this.proc = p;
    this.onStart(() => this.kill());
    const end = Date.now() + 60_000;
    for (;;) {
      try { await ready(); return; } catch (e) {
        if (p.exitCode !== null || Date.now() > end) throw new Error(`site ${this.name} did not start: ${this.err.slice(-2000)} (${e instanceof Error ? e.message : e})`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }

  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const gone = new Promise((r) => p.once('exit', r));
    p.kill(signal);
    await gone;
  }
}
