/**
 * Remote Copy groups defined while the arrays run: HPE's creatercopygroup, admitrcopyvv and
 * setrcopygroup pol, each run on the primary array (README "Peer replication", verbs). As on HPE,
 * the command on the primary makes the change on both arrays: this array checks what it can, sends
 * the request to the other array's link listener on a connection of its own (a group-admin
 * message, protocol/replication/link.ts), the other array checks its side, applies it and answers,
 * and only then does this array apply its side, which cannot fail by then. The group's own link
 * then carries it as it carries a group of the configuration (hello, startgroup, resync, failover,
 * the witness).
 *
 * - creategroup GROUP TARGET:sync: the group on both arrays (this one primary), stopped and empty.
 *   The other array keeps the same name (HPE names it GROUP.r<id>; the link routes by name).
 * - admitvv VV GROUP TARGET:SECVV: VV and SECVV must have the same geometry and be in no group;
 *   the secondary volume then presents the primary's NAA designator (WWN) and serial, so hosts see
 *   one device on both arrays. Only while the group is stopped (HPE admits into a started group
 *   too, syncing the new volume; here: stopgroup, admitvv, startgroup). The secondary holds none of
 *   the volume yet: the next startgroup copies it whole (GroupMachine.admitted).
 * - setgroup pol [no_]POLICY GROUP: the group machine's rules (active_active turns auto_failover and
 *   path_management on for good, and auto_recover and auto_synchronize on; primary paths
 *   active/optimized and secondary active/non-optimized until admithost sets a proximity).
 *
 * Groups made here live until the process ends: to keep them, write them into both arrays'
 * `rcopy.groups:` (the same volumes in the same order, and the secondary LU's naa and serial).
 */
import net from 'node:net';
import { AdminError } from '../admin/errors.ts';
import { encodeMessage, LinkFramer } from '../../protocol/replication/link.ts';
import type { RemoteCopy, ReplicationGroup } from './engine.ts';
import type { GroupPolicies } from './group-machine.ts';

export const POLICY_NAMES: readonly (keyof GroupPolicies)[] = ['active_active', 'path_management', 'auto_failover', 'auto_recover', 'auto_synchronize'];
/** setgroup pol's words: a policy turns on, its no_ form off (HPE setrcopygroup pol no_auto_recover). */
export const POLICY_WORDS = POLICY_NAMES.flatMap((p) => [p, `no_${p}`]);

/** A volume as the verbs name it: a LUN of a target (default: the array's first target). */
export interface VolumeRef { target?: string; lun: number }

/** What the primary asks of the other array (JSON in a group-admin message). */
export type GroupAdminRequest =
  | { verb: 'creategroup'; group: string; target: string; from: string }
  | { verb: 'admitvv'; group: string; target: string; index: number; volume: VolumeRef; wwn: string; serial: string; blockSize: number; blockCount: string }
  | { verb: 'setgroup'; group: string; policy: keyof GroupPolicies; on: boolean };

/** The other array's answer: its name, or why it refused (status and field as the admin API gives them). */
type GroupAdminReply = { ok: true; array: string } | { ok: false; status: number; error: string; field: string | null };

/** How long the primary waits for the other array's answer. */
const ASK_MS = 5000;

// ------------------------------------------------------------ on the primary (admin API)

export function createGroup(rc: RemoteCopy, o: { name: string; peer: string }): Promise<ReplicationGroup> {
  return serialised(rc, async () => {
    if (!rc.peers.peer) throw new AdminError(409, 'creategroup is run on the primary array, which needs peers.peer (the other array\'s link listener) in its configuration', 'peer', 'body');
    if (rc.groups.has(o.name)) throw new AdminError(409, `there is already a Remote Copy group ${o.name} on this array`, 'name', 'body');
    await ask(rc, { verb: 'creategroup', group: o.name, target: o.peer, from: rc.peers.name }, { target: 'peer' });
    return rc.addGroup({ name: o.name, role: 'primary', volumes: [], policies: {}, hosts: {}, start: false, runtime: true });
  });
}

export function admitVolume(rc: RemoteCopy, g: ReplicationGroup, o: { volume: VolumeRef; peer: string; secondaryVolume: VolumeRef }): Promise<ReplicationGroup> {
  return serialised(rc, async () => {
    if (g.role !== 'primary') throw new AdminError(409, `admitvv is run on the primary array of ${g.cfg.name} (this one is ${g.role})`, 'group', 'params');
    stoppedOrRefuse(g);
    const target = o.volume.target ?? rc.targetNames()[0];
    const lu = rc.lu(target, o.volume.lun);
    if (!lu) throw new AdminError(404, `no LUN ${o.volume.lun} on target ${target}`, 'volume', 'body');
    const other = rc.groupOf(target, lu.lun);
    if (other) throw new AdminError(409, `${target} LUN ${lu.lun} is already in Remote Copy group ${other.cfg.name}`, 'volume', 'body');
    await ask(rc, {
      verb: 'admitvv', group: g.cfg.name, target: o.peer, index: g.cfg.volumes.length, volume: o.secondaryVolume,
      wwn: lu.naa, serial: lu.serial, blockSize: lu.blockSize, blockCount: String(lu.blockCount),
    }, { target: 'peer', volume: 'secondaryVolume' });
    const index = rc.admit(g, target, lu);
    g.machine.admitted(index, Number(lu.blockCount));
    // The link's hello lists the volumes: the pair shakes hands again with the new one.
    g.cut();
    return g;
  });
}

export function setPolicy(rc: RemoteCopy, g: ReplicationGroup, word: string): Promise<ReplicationGroup> {
  return serialised(rc, async () => {
    if (g.role !== 'primary') throw new AdminError(409, `setgroup pol is run on the primary array of ${g.cfg.name} (this one is ${g.role})`, 'group', 'params');
    const { policy, on } = policyOf(word);
    const refused = g.operator({ kind: 'operator', command: { verb: 'setpolicy', policy, on } });
    if (refused) throw new AdminError(409, `setgroup pol ${word}: ${refused}`, 'policy', 'body');
    try {
      await ask(rc, { verb: 'setgroup', group: g.cfg.name, policy, on }, {});
    } catch (e) {
      throw new AdminError(502, `setgroup pol ${word} is applied on this array but not on the other: ${(e as Error).message}; run it again when that array answers`, 'policy', 'body');
    }
    return g;
  });
}

function policyOf(word: string): { policy: keyof GroupPolicies; on: boolean } {
  const on = !word.startsWith('no_');
  const policy = (on ? word : word.slice(3)) as keyof GroupPolicies;
  if (!POLICY_NAMES.includes(policy)) throw new AdminError(400, `${word} is not a policy (${POLICY_WORDS.join(', ')})`, 'policy', 'body');
  return { policy, on };
}

function stoppedOrRefuse(g: ReplicationGroup): void {
  if (g.machine.started || g.machine.status !== 'Stopped') {
    throw new AdminError(409, `group ${g.cfg.name} is ${g.machine.status}${g.machine.started ? ' and started' : ''}: stopgroup first (a volume is admitted to a stopped group; the next startgroup copies it whole)`, 'group', 'params');
  }
}

/** One definition at a time on each array: two admitvv must not both take the same volume index. */
const queues = new WeakMap<RemoteCopy, Promise<unknown>>();
function serialised<T>(rc: RemoteCopy, f: () => Promise<T>): Promise<T> {
  const r = (queues.get(rc) ?? Promise.resolve()).then(f);
  queues.set(rc, r.catch(() => {}));
  return r;
}

/**
 * Send one request to the other array's link listener and wait for its answer. A refusal becomes
 * an AdminError naming the field of this array's request it is about (`fields` maps the other
 * array's field names to ours).
 */
async function ask(rc: RemoteCopy, request: GroupAdminRequest, fields: Record<string, string>): Promise<string> {
  const p = rc.peers.peer;
  if (!p) throw new AdminError(409, 'this array has no peers.peer: the other array cannot be reached', null);
  if (rc.faults.cut) throw new AdminError(503, 'the replication link is cut (POST /v1/rcopy/link {action: restore})', null);
  const reply = await new Promise<GroupAdminReply>((resolve, reject) => {
    const s = net.connect(p.port, p.host);
    const framer = new LinkFramer();
    const fail = (why: string) => { s.destroy(); reject(new AdminError(502, `the other array (${p.host}:${p.port}) ${why}`, null)); };
    const timer = setTimeout(() => fail(`did not answer within ${ASK_MS} ms`), ASK_MS);
    s.on('error', (e) => { clearTimeout(timer); fail(`cannot be reached: ${e.message}`); });
    s.on('close', () => { clearTimeout(timer); fail('closed the connection without an answer'); });
    s.on('connect', () => { for (const part of encodeMessage({ type: 'group-admin', request: JSON.stringify(request) }, 0)) s.write(part); });
    s.on('data', (chunk: Buffer) => framer.push(chunk, (ev) => {
      clearTimeout(timer);
      s.removeAllListeners('close');
      s.destroy();
      if (ev.kind === 'error') { fail(`answered with a damaged message: ${ev.error.message}`); return; }
      const m = ev.message;
      if (m.type === 'group-admin-result') {
        try { resolve(JSON.parse(m.reply) as GroupAdminReply); } catch { fail('answered with a reply that is not JSON'); }
      } else if (m.type === 'error') fail(`refused: ${m.message} (${m.code}; an array of an older link protocol cannot define groups)`);
      else fail(`answered with a ${m.type} message`);
    }));
  });
  if (!reply.ok) throw new AdminError(reply.status, `the other array refused: ${reply.error}`, reply.field ? fields[reply.field] ?? reply.field : null, 'body');
  return reply.array;
}

// ------------------------------------------------------------ on the other array (the link listener)

/** A group-admin message arrived at this array's link listener: apply it, answer, close. */
export async function answerGroupAdmin(rc: RemoteCopy, s: net.Socket, request: string): Promise<void> {
  let reply: GroupAdminReply;
  try {
    if (rc.faults.cut) throw new AdminError(503, 'the replication link is cut', null);
    await serialised(rc, async () => apply(rc, JSON.parse(request) as GroupAdminRequest));
    reply = { ok: true, array: rc.peers.name };
  } catch (e) {
    reply = e instanceof AdminError ? { ok: false, status: e.statusCode, error: `${rc.peers.name}: ${e.message}`, field: e.field }
      : { ok: false, status: 500, error: `${rc.peers.name}: ${(e as Error).message}`, field: null };
    rc.log.warn({ request, error: reply.error }, 'Remote Copy group definition refused');
  }
  if (!s.destroyed) {
    for (const part of encodeMessage({ type: 'group-admin-result', ok: reply.ok, reply: JSON.stringify(reply) }, 0)) s.write(part);
    s.end();
  }
}

function apply(rc: RemoteCopy, r: GroupAdminRequest): void {
  if (r.verb !== 'setgroup' && r.target !== rc.peers.name) throw new AdminError(409, `this array is ${rc.peers.name}, not ${r.target}`, 'target');
  const existing = rc.groups.get(r.group);
  if (r.verb === 'creategroup') {
    if (existing) throw new AdminError(409, `there is already a Remote Copy group ${r.group} here`, 'name');
    if (!rc.peers.listen) throw new AdminError(409, 'a secondary needs peers.listen', 'peer');
    rc.addGroup({ name: r.group, role: 'secondary', volumes: [], policies: {}, hosts: {}, start: false, runtime: true });
    rc.log.info({ group: r.group, primary: r.from }, 'Remote Copy group created (creategroup on the primary)');
    return;
  }
  if (!existing) throw new AdminError(404, `no Remote Copy group ${r.group} here`, 'group');
  const g = existing;
  if (g.role !== 'secondary') throw new AdminError(409, `${r.group} is ${g.role} here too`, 'group');
  if (r.verb === 'setgroup') {
    const refused = g.operator({ kind: 'operator', command: { verb: 'setpolicy', policy: r.policy, on: r.on } });
    if (refused) throw new AdminError(409, refused, 'policy');
    return;
  }
  stoppedOrRefuse(g);
  if (r.index !== g.cfg.volumes.length) throw new AdminError(409, `group ${r.group} has ${g.cfg.volumes.length} volumes here, ${r.index} on the primary`, 'group');
  const target = r.volume.target ?? rc.targetNames()[0];
  const lu = rc.lu(target, r.volume.lun);
  if (!lu) throw new AdminError(404, `no LUN ${r.volume.lun} on target ${target}`, 'volume');
  const other = rc.groupOf(target, lu.lun);
  if (other) throw new AdminError(409, `${target} LUN ${lu.lun} is already in Remote Copy group ${other.cfg.name}`, 'volume');
  if (lu.blockSize !== r.blockSize || String(lu.blockCount) !== r.blockCount) {
    throw new AdminError(409, `${target} LUN ${lu.lun} is ${lu.blockCount} blocks of ${lu.blockSize} bytes, the primary's volume ${r.blockCount} of ${r.blockSize}: a replicated volume has the same geometry on both arrays`, 'volume');
  }
  // One device on two arrays: the secondary volume answers INQUIRY with the primary's designators (VPD 0x80, 0x83).
  lu.naa = r.wwn;
  lu.serial = r.serial;
  // SPC-5 (INQUIRY): changed INQUIRY data is reported to every I_T nexus as UNIT ATTENTION 3F/03.
  lu.ua.establishAll(lu.target.nexusKeys(), 'InquiryDataChanged');
  rc.admit(g, target, lu);
  rc.log.info({ group: r.group, target, lun: lu.lun, wwn: r.wwn }, 'volume admitted to Remote Copy group (admitvv on the primary)');
}
