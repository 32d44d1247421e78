/**
 * A Remote Copy group's replication link, from dial to loss (engine.ts, replication-group.ts):
 * the dialler's redial timer, taking a connected socket as the group's link, the hello exchange
 * that must agree (group, roles and epochs, each volume's WWN, serial and geometry, distinct
 * relative target ports) before the machine hears link-up, the in-order check of every frame
 * received, and the loss that makes it link-down. Split from the group's shell by phase, as LIO
 * splits its target (login apart from the full-feature phase): none of this runs per write
 * except the receive callback built here once per link, which hands frames to peer-requests.ts.
 */
import type net from 'node:net';
import { LinkFramer } from '../../protocol/replication/link.ts';
import type { LinkFrameEvent, LinkMessage, VolumeGeometry } from '../../protocol/replication/link.ts';
import { LinkReader } from './link-reader.ts';
import { receive } from './peer-requests.ts';
import type { ReplicationGroup } from './replication-group.ts';

export const DATA_INTEGRITY = ['auto', 'crc32c', 'none'] as const;
export type DataIntegrity = typeof DATA_INTEGRITY[number];

/**
 * `auto`: a loopback link (both arrays on one machine, as `lab up` and the benchmarks run) carries
 * bytes from memory to memory through the kernel, with no NIC, cable, switch or middlebox that the
 * CRC would guard against (Linux does not even compute TCP checksums on loopback); any other link
 * checks the data.
 */
export function checksData(mode: DataIntegrity, remoteAddress: string | undefined): boolean {
  if (mode !== 'auto') return mode === 'crc32c';
  const a = remoteAddress ?? '';
  return !(a.startsWith('127.') || a === '::1' || a.startsWith('::ffff:127.'));
}

const HEARTBEAT_MS = 500;
const REDIAL_MS = 200;

/** Take a connected socket (dialled, or accepted and routed by its hello) as this group's link. */
export function attachLink(g: ReplicationGroup, s: net.Socket, framer: LinkFramer, reader: LinkReader, first: { sequence: number; message: LinkMessage } | null): (sequence: number, m: LinkMessage) => void {
  if (g.socket && !g.socket.destroyed) { s.destroy(); return () => {}; }
  const outbound = first === null;
  g.socket = s;
  g.shaper = g.rc.injector.shaper(s);
  g.outbound = outbound;
  g.sendSeq = 0;
  g.recvSeq = -1;
  g.ackRun = null;
  g.dataChecked = checksData(g.rc.peers.dataIntegrity ?? 'auto', s.remoteAddress);
  s.setNoDelay(true);
  s.on('error', () => {});
  s.on('close', () => linkLost(g, s, 'connection closed'));
  if (outbound) g.send(hello(g));
  const onMessage = (sequence: number, m: LinkMessage) => {
    if (sequence !== ((g.recvSeq + 1) >>> 0)) { g.log.warn({ group: g.cfg.name, sequence, expected: g.recvSeq + 1 }, 'link message out of sequence'); s.destroy(); return; }
    g.recvSeq = sequence;
    g.machine.heard(Date.now());
    if (!g.linkUp) { handshake(g, s, m); return; }
    if (m.type !== 'write' && m.type !== 'write-same' && m.type !== 'compare-and-write' && m.type !== 'pr-out') { receive(g, m); return; }
    // These carry views of the read buffer (LinkReader). A replicated write applied within this
    // callback is in the store now (stores copy what they are given); anything else (a write
    // applied later, a forwarded write whose frame to the peer is queued, a range lock waited
    // for) keeps the view, and the next read goes to a new buffer.
    const n = g.peerAppliedAtOnce;
    receive(g, m);
    if (m.type !== 'write' || m.forwarded || g.peerAppliedAtOnce !== n + 1) reader.retained = true;
  };
  if (first) onMessage(first.sequence, first.message);
  const onEvent = (ev: LinkFrameEvent): void => {
    if (ev.kind === 'error') { g.log.warn({ group: g.cfg.name, err: ev.error.message }, 'replication link protocol error'); s.destroy(); return; }
    if (g.socket === s) onMessage(ev.sequence, ev.message);
  };
  reader.onChunk = (chunk: Buffer) => framer.push(chunk, onEvent);
  g.rc.injector.receiving(s, reader.userBuffers);
  return (sequence, m) => { if (g.socket === s) onMessage(sequence, m); };
}

/** This array's hello for the group: who it is, its role and epoch, its volumes, whether it restarted. */
function hello(g: ReplicationGroup): LinkMessage {
  return { type: 'hello', arrayId: g.rc.peers.name, group: g.cfg.name, role: g.role, volumes: g.geometry(), epoch: g.machine.epoch, restarted: g.machine.restarted, volatile: g.machine.volatile, empty: g.machine.empty, ports: g.rc.relativePorts(g) };
}

/** The first message on a new link must be an agreeing hello; only then does the machine hear link-up. */
function handshake(g: ReplicationGroup, s: net.Socket, m: LinkMessage): void {
  if (m.type !== 'hello') { refuse(g, s, 'protocol', `expected hello, got ${m.type}`); return; }
  if (m.group !== g.cfg.name) { refuse(g, s, 'unknown-group', `no group ${m.group} here`); return; }
  // A failed array (its store failed) does not take the link: the peer sees it as gone.
  if (g.machine.storeFailure) { s.destroy(); return; }
  if (m.role === g.role && m.role === 'primary' && m.epoch > g.machine.epoch) {
    // Both claim the primary role: the lower epoch was failed over from and yields (HPE: the
    // old primary comes back as Secondary-Rev, to be recovered).
    g.step({ kind: 'superseded', by: m.arrayId, epoch: m.epoch });
    // The dialler has told the listener its old role: it starts over as secondary on the next dial.
    if (g.outbound) { s.destroy(); return; }
  }
  if (m.role === g.role) {
    // The listener names its epoch in a hello before refusing, so a stale dialler can yield.
    if (!g.outbound) g.send(hello(g));
    refuse(g, s, 'role-conflict', `both arrays are ${m.role} for ${m.group} (epoch ${g.machine.epoch} here, ${m.epoch} on ${m.arrayId})`);
    return;
  }
  const mine = g.geometry();
  // One device, two arrays: a relative target port identifier on both would make READ FULL STATUS and REGISTER AND MOVE ambiguous.
  const both = g.rc.relativePorts(g).filter((p) => m.ports.includes(p));
  const why = geometryMismatch(mine, m.volumes) ?? (both.length ? `relative target port ${both.join(', ')} on both arrays (give each array's portals distinct tpgt)` : null);
  if (why) { refuse(g, s, 'geometry-mismatch', why); return; }
  if (!g.outbound) g.send(hello(g));
  g.peerPorts = m.ports;
  g.linkUp = true;
  g.stats.linkUps++;
  g.log.info({ group: g.cfg.name, peer: m.arrayId, dataChecked: g.dataChecked, restarted: g.machine.restarted, volatile: g.machine.volatile, empty: g.machine.empty, peerRestarted: m.restarted, peerVolatile: m.volatile, peerEmpty: m.empty }, 'replication link up');
  g.step({ kind: 'link-up', peerArray: m.arrayId, peer: { restarted: m.restarted, volatile: m.volatile, empty: m.empty } });
}

/** Tell the peer why the link is refused (an `error` frame), then close it. */
function refuse(g: ReplicationGroup, s: net.Socket, code: 'protocol' | 'unknown-group' | 'role-conflict' | 'geometry-mismatch', message: string): void {
  g.log.warn({ group: g.cfg.name, code, message }, 'replication link refused');
  g.send({ type: 'error', code, message });
  s.end();
  setTimeout(() => s.destroy(), 100).unref();
}

/** The socket closed (or the array stops): link-down for the machine, and the dialler tries again. */
function linkLost(g: ReplicationGroup, s: net.Socket, why: string): void {
  if (g.socket !== s) return;
  g.socket = null;
  g.ackRun = null; // not sent: the primary marks those writes dirty on its side of the loss
  g.shaper?.close();
  g.shaper = null;
  const wasUp = g.linkUp;
  g.linkUp = false;
  if (wasUp) {
    g.stats.linkDowns++;
    g.log.warn({ group: g.cfg.name, why }, 'replication link down');
    g.step({ kind: 'link-down', reason: why });
  }
  scheduleDial(g);
}

/** The heartbeat timer, and the first dial (the configuration's primary dials). */
export function startLink(g: ReplicationGroup): void {
  g.timer = setInterval(() => g.step({ kind: 'tick', now: Date.now() }), HEARTBEAT_MS);
  g.timer.unref();
  scheduleDial(g, 0);
}

/** The configuration's primary dials again after `ms`, unless a dial is pending or the group is closed. */
function scheduleDial(g: ReplicationGroup, ms = REDIAL_MS): void {
  if (g.cfg.role !== 'primary' || g.closed || g.dialTimer || !g.rc.peers.peer) return;
  g.dialTimer = setTimeout(() => { g.dialTimer = null; dial(g); }, ms);
  g.dialTimer.unref();
}

function dial(g: ReplicationGroup): void {
  if (g.closed || g.socket || g.rc.faults.cut || g.machine.storeFailure) { scheduleDial(g); return; }
  const p = g.rc.peers.peer!;
  const reader = new LinkReader();
  const s = reader.connect(p.port, p.host);
  s.on('error', () => {});
  s.once('connect', () => attachLink(g, s, new LinkFramer(), reader, null));
  s.once('close', () => { if (g.socket !== s) scheduleDial(g); });
}

/** Stop dialling and the timer, and take the link down now. */
export function stopLink(g: ReplicationGroup): void {
  g.closed = true;
  if (g.timer) clearInterval(g.timer);
  if (g.dialTimer) clearTimeout(g.dialTimer);
  const s = g.socket;
  s?.destroy();
  // The link is down now, not at the close event: writes in flight are marked dirty, and on file
  // volumes the metadata file says so before the process exits (RemoteCopy.stop waits for it),
  // so a primary stopped while Synced comes back with a dirty map rather than a whole copy.
  if (s) linkLost(g, s, 'array stopping');
}

/** Why the two arrays' volumes are not one device each (WWN, serial, geometry), or null. */
function geometryMismatch(a: VolumeGeometry[], b: VolumeGeometry[]): string | null {
  if (a.length !== b.length) return `${a.length} volumes here, ${b.length} on the peer`;
  for (let i = 0; i < a.length; i++) {
    const x = a[i], y = b[i];
    if (x.wwn !== y.wwn) return `volume ${i}: WWN ${x.wwn} here, ${y.wwn} on the peer`;
    if (x.serial !== y.serial) return `volume ${i}: serial ${x.serial} here, ${y.serial} on the peer`;
    if (x.blockSize !== y.blockSize || x.blockCount !== y.blockCount) return `volume ${i}: ${x.blockCount}×${x.blockSize} here, ${y.blockCount}×${y.blockSize} on the peer`;
  }
  return null;
}
