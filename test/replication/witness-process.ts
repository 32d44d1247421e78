/**
 * Test support: the quorum witness as its own process (`arraysim witness`, the built dist/ through
 * bin/arraysim.js), on a loopback address with a port the kernel picks, read back from the one
 * line it prints when ready.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import path from 'node:path';

const ROOT = path.resolve(import.meta.dirname, '../..');

export interface WitnessProcess {
  host: string;
  port: number;
  process: ChildProcess;
  /** Everything it wrote on stderr (its logs). */
  log(): string;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export async function startWitness(listen = '127.0.3.1:0', extra: string[] = []): Promise<WitnessProcess> {
  const p = spawn(process.execPath, [path.join(ROOT, 'bin/arraysim.js'), 'witness', '--listen', listen, ...extra], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  p.stderr!.on('data', (d) => { err += d; if (err.length > 200_000) err = err.slice(-100_000); });
  const exited = new Promise<number | null>((r) => p.once('exit', (code) => r(code)));
  const at = await new Promise<{ host: string; port: number }>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`the witness did not say it was listening within 60 s: ${err.slice(-2000)}`)), 60_000);
    p.stdout!.on('data', (d) => {
      out += d;
      const m = /^witness listening on (.+):(\d+)$/m.exec(out);
      if (m) { clearTimeout(timer); resolve({ host: m[1], port: Number(m[2]) }); }
    });
    p.once('exit', (code) => { clearTimeout(timer); reject(new Error(`the witness exited (${code}) before listening: ${err.slice(-2000)}`)); });
  });
  return {
    ...at, process: p, log: () => err,
    stop: async (signal = 'SIGTERM') => { if (p.exitCode === null && p.signalCode === null) p.kill(signal); return exited; },
  };
}
