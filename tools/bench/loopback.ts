/**
 * Loopback TCP ceiling: one TCP stream over 127.0.0.1. A source process (listening) writes the same
 * 4 MiB buffer as fast as backpressure allows for N seconds; a sink process (connecting) reads into
 * one reusable 4 MiB buffer (net onread, no per-chunk allocation) and counts bytes. Two processes,
 * so the ends run on two cores the way a target and an initiator do.
 *
 *   node --import tsx tools/bench/loopback.ts source PORT SECONDS   # prints {"ready":PORT}
 *   node --import tsx tools/bench/loopback.ts sink PORT             # prints {"bytes":..,"seconds":..}
 *   node --import tsx tools/bench/loopback.ts run PORT SECONDS      # both; prints {"bytesPerSec":..}
 */
import * as net from 'node:net';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const [mode, portArg, secondsArg] = process.argv.slice(2);
const port = Number(portArg);
const seconds = Number(secondsArg ?? 3);

function source(): void {
  const buf = Buffer.alloc(4 << 20, 0xa5);
  const server = net.createServer((sock) => {
    server.close();
    sock.on('error', () => process.exit(1));
    const deadline = Date.now() + seconds * 1000;
    const pump = (): void => {
      while (Date.now() < deadline) {
        if (!sock.write(buf)) { sock.once('drain', pump); return; }
      }
      sock.end();
    };
    pump();
  });
  server.listen(port, '127.0.0.1', () => process.stdout.write(JSON.stringify({ ready: port }) + '\n'));
}

function sink(): void {
  let bytes = 0;
  let t0 = 0n;
  const sock = net.connect({
    port,
    host: '127.0.0.1',
    onread: {
      buffer: Buffer.alloc(4 << 20),
      callback: (n: number) => {
        if (t0 === 0n) t0 = process.hrtime.bigint();
        bytes += n;
        return true;
      },
    },
  });
  sock.on('end', () => {
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    process.stdout.write(JSON.stringify({ bytes, seconds: secs }) + '\n');
    sock.destroy();
  });
  sock.on('error', (e) => { console.error(e.message); process.exit(1); });
}

async function run(): Promise<void> {
  const self = fileURLToPath(import.meta.url);
  const child = (m: string) => spawn(process.execPath, ['--import', 'tsx', self, m, String(port), String(seconds)],
    { stdio: ['ignore', 'pipe', 'inherit'] });
  const src = child('source');
  let ready = '';
  await new Promise<void>((resolve, reject) => {
    src.stdout!.on('data', (d: Buffer) => { ready += d.toString(); if (ready.includes('"ready"')) resolve(); });
    src.on('exit', () => reject(new Error('source exited early')));
  });
  const snk = child('sink');
  let out = '';
  snk.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
  const killer = setTimeout(() => { snk.kill('SIGKILL'); src.kill('SIGKILL'); }, (seconds + 20) * 1000);
  await new Promise<void>((r) => snk.on('exit', () => r()));
  clearTimeout(killer);
  src.kill('SIGKILL');
  const line = out.split('\n').find((l) => l.includes('"bytes"'));
  if (!line) { console.log(JSON.stringify({ error: 'no result' })); process.exit(1); }
  const { bytes, seconds: secs } = JSON.parse(line) as { bytes: number; seconds: number };
  console.log(JSON.stringify({ bytes, seconds: secs, bytesPerSec: bytes / secs }));
}

if (mode === 'source') source();
else if (mode === 'sink') sink();
else if (mode === 'run') await run();
else { console.error('usage: loopback.ts source|sink|run PORT [SECONDS]'); process.exit(2); }
