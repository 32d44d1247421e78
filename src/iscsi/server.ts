/**
 * The iSCSI portal server: listening sockets for every portal, the targets behind them, and
 * the session registry (TSIH allocation, reinstatement by ISID).
 */
import net from 'node:net';
import type { Logger } from 'pino';
import { ArrayEvents } from '../events.ts';
import type { SessionFields } from '../events.ts';
import { DEFAULT_TARGET_LIMITS } from '../../protocol/iscsi/negotiation.ts';
import type { ScsiTarget } from '../scsi/target.ts';
import type { IscsiTargetConfig, IscsiTuning, PortalConfig } from './config.ts';
import { DEFAULT_TUNING } from './config.ts';
import { Connection } from './connection.ts';
import type { Session } from './session.ts';
import { adoptSocket } from './socket-read.ts';
import type { CommandLatency } from '../metrics/latency.ts';

/** Per-connection buffer that reads land in when not straight into a data segment. */
const STAGING_BYTES = 64 * 1024;

export interface TargetEntry {
  config: IscsiTargetConfig;
  scsi: ScsiTarget;
}

/** Per-portal I/O counters (what the admin API reports; multipath tests read them). */
export interface PortalStats {
  commands: number;
  reads: number;
  writes: number;
  readBytes: number;
  writeBytes: number;
  logins: number;
  /** Commands answered with a status other than GOOD or CONDITION MET. */
  errors: number;
}

export class IscsiServer {
  readonly portalStats = new Map<PortalConfig, PortalStats>();
  readonly targets = new Map<string, TargetEntry>();
  readonly sessions = new Set<Session>();
  readonly connections = new Set<Connection>();
  readonly tuning: IscsiTuning;
  readonly limits: Record<string, string>;
  private readonly servers: net.Server[] = [];
  private tsihCounter = 0;
  /**
   * Where connections record each command's latency (src/metrics); null when metrics are off, and
   * then the I/O path takes no timestamps. Set before listen(): a connection reads it once.
   */
  commandLatency: CommandLatency | null = null;

  /**
   * @param events where session logins, logouts and drops are published (the array's bus; a
   *   private one when the server runs alone, as in transport tests).
   */
  constructor(readonly portals: PortalConfig[], readonly log: Logger, tuning: Partial<IscsiTuning> = {}, readonly events = new ArrayEvents()) {
    this.tuning = { ...DEFAULT_TUNING, ...tuning };
    this.limits = { ...DEFAULT_TARGET_LIMITS, ...this.tuning.keys };
    for (const p of portals) this.portalStats.set(p, { commands: 0, reads: 0, writes: 0, readBytes: 0, writeBytes: 0, logins: 0, errors: 0 });
  }

  addTarget(config: IscsiTargetConfig, scsi: ScsiTarget): void {
    this.targets.set(config.name, { config, scsi });
    scsi.abortTasks = (lun, which) => { for (const c of [...this.connectionsOf(config.name)]) c.abortTasksOf(lun, which); };
  }

  findTargetConfig(name: string): IscsiTargetConfig | undefined {
    return this.targets.get(name)?.config;
  }

  /** Listen on every portal; resolves with the bound addresses (port 0 picks a free port). */
  async listen(): Promise<PortalConfig[]> {
    for (const p of this.portals) {
      // Paused on accept: the connection's socket is first moved to one reading into our buffers.
      const srv = net.createServer({ noDelay: true, pauseOnConnect: true }, (raw) => {
        const staging = Buffer.allocUnsafeSlow(STAGING_BYTES);
        let conn: Connection | null = null;
        const { socket, userBuffers } = adoptSocket(raw, {
          buffer: () => (conn ? conn.readBuffer() : staging),
          callback: (n, buf) => conn?.onRead(n, buf),
        });
        conn = new Connection(socket, this, p, userBuffers ? staging : undefined);
        this.connections.add(conn);
      });
      await new Promise<void>((resolve, reject) => {
        srv.once('error', reject);
        srv.listen(p.port, p.host, () => {
          srv.off('error', reject);
          const a = srv.address();
          if (a && typeof a === 'object') p.port = a.port;
          resolve();
        });
      });
      this.servers.push(srv);
      this.log.info({ portal: `${p.host}:${p.port}`, tpgt: p.tpgt, targets: [...this.targets.keys()] }, 'portal listening');
    }
    return this.portals;
  }

  newTsih(): number {
    // TSIH 0 is reserved for the leading login (RFC 7143 §11.12.6).
    do {
      this.tsihCounter = (this.tsihCounter % 0xffff) + 1;
    } while ([...this.sessions].some((s) => s.tsih === this.tsihCounter));
    return this.tsihCounter;
  }

  addSession(s: Session): void {
    this.sessions.add(s);
  }

  sessionByTsih(tsih: number): Session | undefined {
    for (const s of this.sessions) if (s.tsih === tsih) return s;
    return undefined;
  }

  findSession(initiatorName: string, isid: string, targetName: string, tpgt: number): Session | undefined {
    for (const s of this.sessions) {
      if (s.initiatorName === initiatorName && s.isid === isid && s.portal.tpgt === tpgt && (s.targetConfig?.name ?? '') === targetName) return s;
    }
    return undefined;
  }

  /** End a session: drop its connections and tell the SCSI layer its I_T nexus is gone. */
  closeSession(s: Session, why: string, except?: Connection): void {
    if (s.closed) return;
    s.closed = true;
    this.sessions.delete(s);
    for (const c of [...s.connections]) if (c !== except) c.drop(why);
    if (s.nexus && s.scsi) s.scsi.nexusDown(s.nexus);
    this.log.info({ tsih: s.tsih, initiator: s.initiatorName, why }, 'session closed');
    if (why === 'logout') this.events.emit({ type: 'session.logout', ...sessionFields(s) });
    else this.events.emit({ type: 'session.drop', why, ...sessionFields(s) });
  }

  /** A leading login reached full feature phase: the session exists for the initiator now. */
  sessionLoggedIn(s: Session): void {
    this.events.emit({ type: 'session.login', ...sessionFields(s) });
  }

  connectionClosed(c: Connection, why: string): void {
    this.connections.delete(c);
    const s = c.session;
    if (!s) return;
    s.connections.delete(c);
    // ErrorRecoveryLevel 0: losing the last connection ends the session (RFC 7143 §6.1.?).
    if (s.connections.size === 0) this.closeSession(s, why);
  }

  *connectionsOf(targetName: string): IterableIterator<Connection> {
    for (const s of this.sessions) {
      if (s.targetConfig?.name === targetName) yield* s.connections;
    }
  }

  dropTargetConnections(targetName: string, why: string): void {
    for (const c of [...this.connectionsOf(targetName)]) c.drop(why);
  }

  /** Stop listening and end every connection. */
  async close(): Promise<void> {
    const closing = this.servers.map((s) => new Promise<void>((r) => s.close(() => r())));
    for (const c of [...this.connections]) c.drop('shutdown');
    await Promise.all(closing);
  }
}

function sessionFields(s: Session): SessionFields {
  return {
    target: s.targetConfig?.name ?? null, initiator: s.initiatorName, isid: s.isid, tsih: s.tsih, tpgt: s.portal.tpgt,
    portal: `${s.portal.host}:${s.portal.port}`, sessionType: s.type,
  };
}
