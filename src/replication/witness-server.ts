/**
 * The quorum witness as its own process (README "Peer replication", "Quorum witness"):
 *
 *   arraysim witness [--listen HOST:PORT] [--name NAME] [--fail-timeout-ms MS] [--state FILE] [--log-level L]
 *
 * It prints `witness listening on HOST:PORT` on stdout once it accepts connections, logs to
 * stderr, and stops cleanly on SIGINT/SIGTERM. Arrays connect over TCP and send heartbeats
 * (protocol/replication/witness.ts); every heartbeat gets a verdict at once. The decisions are
 * witness-arbiter.ts's; this file is sockets, logs, and the state file: with --state, each
 * group's owner and epoch are written there (witness-state.ts) before a verdict that changed them
 * is sent, and read back at start. A write that fails stops the witness (exit 1): a witness that
 * cannot keep a grant must not announce it, and arrays that lose their witness stay safe.
 */
import net from 'node:net';
import type { Argv, CommandModule } from 'yargs';
import type { Logger } from 'pino';
import { encodeWitness, WitnessFramer } from '../../protocol/replication/witness.ts';
import { WitnessArbiter } from './witness-arbiter.ts';
import { encodeWitnessState, readWitnessState, WitnessStateFile } from './witness-state.ts';
import type { ArbiterEvent } from './witness-arbiter.ts';

export const DEFAULT_WITNESS_LISTEN = '127.0.0.1:5300';

export interface WitnessServerOptions {
  host: string;
  port: number;
  name?: string;
  failTimeoutMs?: number;
  /** Keep each group's owner and epoch in this file (read at start, written before a changed verdict is sent). */
  stateFile?: string;
  /** A state file write failed (default: log and exit 1). */
  onStateError?: (e: unknown) => void;
  log: Logger;
}

export class WitnessServer {
  readonly arbiter: WitnessArbiter;
  readonly name: string;
  private readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();
  address: { host: string; port: number };
  readonly state: WitnessStateFile | null;
  /** What the state file held at start: 'none' (no --state), 'new' (no file yet), or the groups restored. */
  stateLoad = 'none';

  constructor(readonly o: WitnessServerOptions) {
    this.arbiter = new WitnessArbiter({ failTimeoutMs: o.failTimeoutMs, startedAt: Date.now() });
    this.name = o.name ?? 'witness';
    this.address = { host: o.host, port: o.port };
    this.server = net.createServer((s) => this.accept(s));
    this.state = o.stateFile ? new WitnessStateFile(o.stateFile, () => encodeWitnessState(this.name, this.arbiter.records())) : null;
  }

  async start(): Promise<{ host: string; port: number }> {
    if (this.state) {
      const records = await readWitnessState(this.state.file);
      if (records) this.arbiter.restore(records);
      this.stateLoad = records ? `${records.length} group(s) restored` : 'new';
      this.o.log.info({ state: this.state.file, load: this.stateLoad, groups: records ?? [] }, 'witness state');
    }
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.o.port, this.o.host, () => { this.server.off('error', reject); resolve(); });
    });
    const a = this.server.address();
    if (a && typeof a === 'object') this.address = { host: this.o.host, port: a.port };
    this.o.log.info({ listen: `${this.address.host}:${this.address.port}`, failTimeoutMs: this.arbiter.failTimeoutMs }, 'quorum witness listening');
    return this.address;
  }

  private accept(s: net.Socket): void {
    this.sockets.add(s);
    s.setNoDelay(true);
    s.on('error', () => {});
    let array = '';
    s.on('close', () => {
      this.sockets.delete(s);
      if (array) this.o.log.warn({ array }, 'array disconnected from the witness');
    });
    const framer = new WitnessFramer();
    // Verdicts on this connection leave in order, each after the state it reflects is on disk.
    let sending: Promise<void> = Promise.resolve();
    s.on('data', (chunk: Buffer) => framer.push(chunk, (ev) => {
      if (ev.kind === 'error') {
        this.o.log.warn({ peer: s.remoteAddress, err: ev.error.message }, 'witness protocol error; closing');
        s.end(encodeWitness({ type: 'error', message: ev.error.message }));
        return;
      }
      const m = ev.message;
      if (m.type !== 'heartbeat' || !m.array) {
        s.end(encodeWitness({ type: 'error', message: m.type === 'heartbeat' ? 'heartbeat names no array' : `a witness takes heartbeats, not ${m.type}` }));
        return;
      }
      if (array !== m.array) {
        this.o.log.info({ array: m.array, groups: m.groups.map((g) => g.group) }, 'array in touch with the witness');
        array = m.array;
      }
      const { verdicts, events } = this.arbiter.heartbeat(m.array, m.groups, Date.now(), m.forget);
      for (const e of events) this.logEvent(e);
      const frame = encodeWitness({ type: 'verdict', nonce: m.nonce, witness: this.name, groups: verdicts });
      if (!this.state) { s.write(frame); return; }
      const stored = events.some((e) => e.kind === 'owner' || e.kind === 'forgotten') ? this.state.save() : this.state.written();
      stored.catch(() => {}); // handled below, in this connection's order
      sending = sending.then(() => stored).then(() => { if (!s.destroyed) s.write(frame); }, (e) => this.stateFailed(e, s));
    }));
  }

  private stateFailed(e: unknown, s: net.Socket): void {
    s.destroy();
    if (this.o.onStateError) { this.o.onStateError(e); return; }
    this.o.log.fatal({ state: this.state?.file, err: e instanceof Error ? e.message : String(e) }, 'witness state not written: stopping (a grant it could forget is never announced)');
    process.exit(1);
  }

  private logEvent(e: ArbiterEvent): void {
    if (e.kind === 'owner') this.o.log.warn({ group: e.group, owner: e.owner, epoch: e.epoch, reason: e.reason }, 'group owner');
    else if (e.kind === 'denied') this.o.log.info({ group: e.group, array: e.array, reason: e.reason }, 'failover not granted');
    else if (e.kind === 'forgotten') this.o.log.warn({ group: e.group, array: e.array }, 'group record forgotten (removegroup)');
    else this.o.log.warn({ group: e.group, array: e.array, reason: e.reason }, 'group record kept: only its owner may have it forgotten');
  }

  status(): ReturnType<WitnessArbiter['status']> & { name: string; listen: string; state: { file: string | null; load: string; writes: number } } {
    return { name: this.name, listen: `${this.address.host}:${this.address.port}`, state: { file: this.state?.file ?? null, load: this.stateLoad, writes: this.state?.writes ?? 0 }, ...this.arbiter.status(Date.now()) };
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

interface WitnessArgs { listen: string; name: string; failTimeoutMs?: number; state?: string; logLevel: string }

export const WITNESS_COMMAND: CommandModule<object, WitnessArgs> = {
  command: 'witness',
  describe: 'run the quorum witness for Remote Copy groups (authorises automatic failover)',
  builder: (y: Argv) => y
    .option('listen', { type: 'string', default: DEFAULT_WITNESS_LISTEN, describe: 'HOST:PORT the arrays connect to (their peers.witness)' })
    .option('name', { type: 'string', default: 'witness', describe: 'the witness\'s name in its verdicts and logs' })
    .option('fail-timeout-ms', { type: 'number', describe: 'an array not heard for this long is lost (default 2500; above the arrays\' 1000 ms lease)' })
    .option('state', { type: 'string', describe: 'keep each group\'s owner and epoch in this file, so that a restarted witness never hands a group back to an array that lacks acknowledged writes' })
    .option('log-level', { type: 'string', default: 'info', describe: 'trace|debug|info|warn|error' }) as never,
  handler: async (a) => {
    const { parseHostPort } = await import('../config.ts');
    const { createLogger } = await import('../log.ts');
    const at = parseHostPort(/:\d+$/.test(a.listen) ? a.listen : `${a.listen}:5300`);
    if (a.failTimeoutMs !== undefined && !(Number.isFinite(a.failTimeoutMs) && a.failTimeoutMs >= 500)) throw new Error('--fail-timeout-ms must be a number of ms, at least 500');
    const log = createLogger(a.logLevel).child({ component: 'witness' });
    const w = new WitnessServer({ host: at.host, port: at.port, name: a.name, failTimeoutMs: a.failTimeoutMs, stateFile: a.state, log });
    if (!a.state) {
      log.warn('no --state: owners and epochs live in memory only; if this witness restarts while an array it failed a group over from is the only one reporting the primary role, it can name that array owner again after its grace (README "The witness\'s state file")');
    }
    const addr = await w.start();
    process.stdout.write(`witness listening on ${addr.host}:${addr.port}\n`);
    let stopping = false;
    const stop = async (sig: string) => {
      if (stopping) return;
      stopping = true;
      log.info({ signal: sig }, 'witness shutting down');
      try { await w.stop(); } finally { log.flush?.(); process.exit(0); }
    };
    process.on('SIGINT', () => void stop('SIGINT'));
    process.on('SIGTERM', () => void stop('SIGTERM'));
  },
};
