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
 * - dismissvv VV GROUP: the inverse of admitvv (HPE dismissrcopyvv), only while the group is
 *   stopped. Both volumes stay, with their data, as plain LUs: the secondary volume takes its own
 *   NAA designator and serial back (UNIT ATTENTION 3F/03), the volumes after it move down one place
 *   on both arrays, and a target no group holds a volume on any more gets back the port group
 *   states it had before admitvv (RemoteCopy.dismiss). Host writes wait while it happens
 *   (`held`). Dismissing the last volume leaves the group, empty.
 * - removegroup [-f] GROUP: the inverse of creategroup (HPE removercopygroup), only while the group
 *   is stopped. A group that still has volumes is refused unless `force` (-f), which dismisses
 *   them all first, as dismissvv would; no LUN is ever deleted (HPE's -removevv, which deletes
 *   the secondary volumes, is not offered).
 *
 * - removegroup -local [-f] GROUP: the other array is gone; the group goes from this array only
 *   (removeLocally).
 *
 * Only groups made here: one of the configuration (`rcopy.groups:`) would come back at the next
 * restart with its volumes assumed equal, so dismissvv and removegroup refuse it (409); edit both
 * YAML files instead. With `peers.state` each array writes the groups made here to that file
 * (runtime-state.ts) before it answers, and each group's metadata file for its volumes now
 * (ReplicationGroup.remakeMeta), so a restart brings them back as it brings a configured group;
 * without it they live until the process ends.
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
  | { verb: 'setgroup'; group: string; policy: keyof GroupPolicies; on: boolean }
  /** `count`: the group's volumes on the primary; `wwn`: the one leaving, which the other array must hold at `index`. */
  | { verb: 'dismissvv'; group: string; index: number; count: number; wwn: string }
  | { verb: 'removegroup'; group: string; count: number; force: boolean };

/** The other array's answer: its name, or why it refused (status and field as the admin API gives them). */
type GroupAdminReply = { ok: true; array: string } | { ok: false; status: number; error: string; field: string | null };

/** How long the primary waits for the other array's answer. */
const ASK_MS = 5000;
/** How long dismissvv and removegroup wait for the host writes in flight to finish. */
const DRAIN_MS = 5000;

// ------------------------------------------------------------ on the primary (admin API)

export function createGroup(rc: RemoteCopy, o: { name: string; peer: string }): Promise<ReplicationGroup> {
  return serialised(rc, async () => {
    if (!rc.peers.peer) throw new AdminError(409, 'creategroup is run on the primary array, which needs peers.peer (the other array\'s link listener) in its configuration', 'peer', 'body');
    if (rc.groups.has(o.name)) throw new AdminError(409, `there is already a Remote Copy group ${o.name} on this array`, 'name', 'body');
    await ask(rc, { verb: 'creategroup', group: o.name, target: o.peer, from: rc.peers.name }, { target: 'peer' });
    const g = rc.addGroup({ name: o.name, role: 'primary', volumes: [], policies: {}, hosts: {}, start: false, runtime: true });
    await rc.saveRuntime();
    return g;
  });
}

export function admitVolume(rc: RemoteCopy, g: ReplicationGroup, o: { volume: VolumeRef; peer: string; secondaryVolume: VolumeRef }): Promise<ReplicationGroup> {
  return serialised(rc, async () => {
    if (g.role !== 'primary') throw new AdminError(409, `admitvv is run on the primary array of ${g.cfg.name} (this one is ${g.role})`, 'group', 'params');
    stoppedOrRefuse(g, 'a volume is admitted to a stopped group; the next startgroup copies it whole');
    const target = o.volume.target ?? rc.targetNames()[0];
    const lu = rc.lu(target, o.volume.lun);
    if (!lu) throw new AdminError(404, `no LUN ${o.volume.lun} on target ${target}`, 'volume', 'body');
    const other = rc.groupOf(target, lu.lun);
    if (other) throw new AdminError(409, `${target} LUN ${lu.lun} is already in Remote Copy group ${other.cfg.name}`, 'volume', 'body');
    await ask(rc, {
      verb: 'admitvv', group: g.cfg.name, target: o.peer, index: g.cfg.volumes.length, volume: o.secondaryVolume,
      wwn: lu.naa, serial: lu.serial, blockSize: lu.blockSize, blockCount: String(lu.blockCount),
    }, { target: 'peer', volume: 'secondaryVolume' });
    await held(g, async () => {
      const index = rc.admit(g, target, lu);
      g.machine.admitted(index, Number(lu.blockCount));
      await g.remakeMeta(`admitvv ${target} LUN ${lu.lun}`);
    });
    // The link's hello lists the volumes: the pair shakes hands again with the new one.
    g.cut();
    await rc.saveRuntime();
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
    } finally {
      await rc.saveRuntime();
    }
    return g;
  });
}

export function dismissVolume(rc: RemoteCopy, g: ReplicationGroup, o: { volume: VolumeRef }): Promise<ReplicationGroup> {
  return serialised(rc, async () => {
    if (g.role !== 'primary') throw new AdminError(409, `dismissvv is run on the primary array of ${g.cfg.name} (this one is ${g.role})`, 'group', 'params');
    madeHereOrRefuse(g, 'dismissvv');
    stoppedOrRefuse(g, 'a volume is dismissed from a stopped group');
    const target = o.volume.target ?? rc.targetNames()[0];
    const index = g.cfg.volumes.findIndex((v) => v.target === target && v.lun === o.volume.lun);
    if (index < 0) {
      const lu = rc.lu(target, o.volume.lun);
      const other = lu && rc.groupOf(target, lu.lun);
      const why = !lu ? `there is no LUN ${o.volume.lun} on target ${target}` : other ? `it is in group ${other.cfg.name}` : 'it is in no group';
      throw new AdminError(404, `${target} LUN ${o.volume.lun} is not a volume of Remote Copy group ${g.cfg.name}: ${why}`, 'volume', 'body');
    }
    const reason = `dismissvv ${target} LUN ${o.volume.lun}`;
    await held(g, async () => {
      await ask(rc, { verb: 'dismissvv', group: g.cfg.name, index, count: g.cfg.volumes.length, wwn: g.volumes[index].naa }, {});
      rc.dismiss(g, index, reason);
      await g.remakeMeta(reason);
    });
    rc.log.info({ group: g.cfg.name, target, lun: o.volume.lun }, 'volume dismissed from Remote Copy group (dismissvv)');
    // The link's hello lists the volumes: the pair shakes hands again without it.
    g.cut();
    await rc.saveRuntime();
    return g;
  });
}

/** What removegroup answers: the group's name and the volumes it still had on this array, now plain LUs. */
export interface Removed { name: string; dismissed: { target: string; lun: number; wwn: string }[] }

export function removeGroup(rc: RemoteCopy, g: ReplicationGroup, o: { force?: boolean; local?: boolean }): Promise<Removed> {
  return serialised(rc, async () => {
    if (o.local) return removeLocally(rc, g, !!o.force);
    if (g.role !== 'primary') throw new AdminError(409, `removegroup is run on the primary array of ${g.cfg.name} (this one is ${g.role})`, 'group', 'params');
    madeHereOrRefuse(g, 'removegroup');
    stoppedOrRefuse(g, 'a group is removed when stopped');
    hasNoVolumesOrForced(g, !!o.force);
    const count = g.cfg.volumes.length;
    let dismissed: Removed['dismissed'] = [];
    await held(g, async () => {
      await ask(rc, { verb: 'removegroup', group: g.cfg.name, count, force: !!o.force }, {});
      dismissed = await removeHere(rc, g);
    });
    await rc.saveRuntime();
    // Gone from both arrays: the witness may drop its record (owner, epoch), so a group made again
    // under the name starts as a new one. Not after removegroup -local: the other array still has it.
    rc.witness?.forget(g.cfg.name);
    rc.log.info({ group: g.cfg.name, dismissed }, 'Remote Copy group removed (removegroup)');
    return { name: g.cfg.name, dismissed };
  });
}

/**
 * removegroup -local: the other array is gone (for good, or for longer than the operator will
 * wait), so the group goes from this array only, and the other array keeps it until the same is
 * run there. Only with the replication link down. Not on a primary that does not serve the group
 * alone now (Failsafe, not the witness's owner, a failed store, restarted without its data): its
 * volumes would serve unreplicated while the other array may have taken the group over. A primary
 * that does serve alone has, with a witness, had "no longer Synced" recorded there (mayWriteAlone),
 * which the witness keeps after this array stops reporting the group: the other array is never
 * granted a failover. A secondary's volumes take their own designators back, as after dismissvv,
 * so it never serves the group's device again.
 */
async function removeLocally(rc: RemoteCopy, g: ReplicationGroup, force: boolean): Promise<Removed> {
  const name = g.cfg.name;
  madeHereOrRefuse(g, 'removegroup');
  if (g.machine.link !== 'down') {
    throw new AdminError(409, `removegroup -local removes a group whose other array is gone, and group ${name}'s replication link is up: removegroup without -local removes it from both arrays`, 'local', 'body');
  }
  if (g.role === 'primary') {
    // Not serving first: stopgroup would not help a primary in Failsafe, and the reason is the news.
    const m = g.machine;
    if (!m.serving) {
      const why = m.status === 'Failsafe' ? 'Failsafe: it reaches neither the other array nor the witness'
        : m.storeFailure ? 'a volume\'s store failed'
          : m.dataLost ? 'restarted on memory volumes, it lost their data'
            : `the witness has not left it to write alone: owner on record ${m.owner || 'none'}`;
      throw new AdminError(409, `group ${name}: this array (primary) does not serve it alone now (${why}), so the other array may have taken it over; removed here, its volumes would serve unreplicated beside it`, 'local', 'body');
    }
    stoppedOrRefuse(g, 'a group is removed when stopped');
  }
  hasNoVolumesOrForced(g, force);
  let dismissed: Removed['dismissed'] = [];
  await held(g, async () => { dismissed = await removeHere(rc, g); });
  await rc.saveRuntime();
  rc.log.warn({ group: name, role: g.role, dismissed }, 'Remote Copy group removed from this array only (removegroup -local): the other array keeps it until removegroup -local is run there');
  return { name, dismissed };
}

/** Dismiss every volume (the last first: no renumbering), then remove the group, its metadata files, and close its link. */
async function removeHere(rc: RemoteCopy, g: ReplicationGroup): Promise<Removed['dismissed']> {
  const out: Removed['dismissed'] = [];
  for (let i = g.cfg.volumes.length - 1; i >= 0; i--) {
    const { target } = g.cfg.volumes[i];
    const lu = rc.dismiss(g, i, 'removegroup');
    out.unshift({ target, lun: lu.lun, wwn: lu.naa });
  }
  rc.removeGroup(g);
  await g.remakeMeta('removegroup');
  return out;
}

function policyOf(word: string): { policy: keyof GroupPolicies; on: boolean } {
  const on = !word.startsWith('no_');
  const policy = (on ? word : word.slice(3)) as keyof GroupPolicies;
  if (!POLICY_NAMES.includes(policy)) throw new AdminError(400, `${word} is not a policy (${POLICY_WORDS.join(', ')})`, 'policy', 'body');
  return { policy, on };
}

function stoppedOrRefuse(g: ReplicationGroup, why: string): void {
  if (g.machine.started || g.machine.status !== 'Stopped') {
    throw new AdminError(409, `group ${g.cfg.name} is ${g.machine.status}${g.machine.started ? ' and started' : ''}: stopgroup first (${why})`, 'group', 'params');
  }
}

/** A group of the configuration would come back at the next restart with its volumes assumed equal (file comment). */
function madeHereOrRefuse(g: ReplicationGroup, verb: string): void {
  if (!g.cfg.runtime) {
    throw new AdminError(409, `${verb}: group ${g.cfg.name} is in this array's configuration (rcopy.groups), and would come back at the next restart with its volumes assumed equal; remove it (or the volume) from both arrays' YAML and restart them`, 'group', 'params');
  }
}

function hasNoVolumesOrForced(g: ReplicationGroup, force: boolean): void {
  const n = g.cfg.volumes.length;
  if (n && !force) {
    throw new AdminError(409, `group ${g.cfg.name} has ${n} volume${n === 1 ? '' : 's'}: dismissvv ${n === 1 ? 'it' : 'them'} first, or removegroup -f (force: dismisses them, keeping every LUN and its data)`, 'force', 'body');
  }
}

/**
 * Run `f` with the group's host writes held (ReplicationGroup.paused: a write waits, then is made
 * again with its volume's new index, or straight to its own store once it has left the group),
 * once the writes already applying have finished: their dirty regions name volumes by index.
 */
async function held<T>(g: ReplicationGroup, f: () => Promise<T> | T): Promise<T> {
  let release!: () => void;
  g.paused = new Promise<void>((r) => { release = r; });
  try {
    const end = Date.now() + DRAIN_MS;
    while (g.machine.applying > 0) {
      if (Date.now() > end) throw new AdminError(503, `group ${g.cfg.name}: ${g.machine.applying} host writes still in flight after ${DRAIN_MS} ms; try again`, 'group', 'params');
      await new Promise((r) => setTimeout(r, 1));
    }
    return await f();
  } finally {
    g.paused = null;
    release();
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
    await serialised(rc, () => apply(rc, JSON.parse(request) as GroupAdminRequest));
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

async function apply(rc: RemoteCopy, r: GroupAdminRequest): Promise<void> {
  if ((r.verb === 'creategroup' || r.verb === 'admitvv') && r.target !== rc.peers.name) throw new AdminError(409, `this array is ${rc.peers.name}, not ${r.target}`, 'target');
  const existing = rc.groups.get(r.group);
  if (r.verb === 'creategroup') {
    if (existing) throw new AdminError(409, `there is already a Remote Copy group ${r.group} here`, 'name');
    if (!rc.peers.listen) throw new AdminError(409, 'a secondary needs peers.listen', 'peer');
    rc.addGroup({ name: r.group, role: 'secondary', volumes: [], policies: {}, hosts: {}, start: false, runtime: true });
    await rc.saveRuntime();
    rc.log.info({ group: r.group, primary: r.from }, 'Remote Copy group created (creategroup on the primary)');
    return;
  }
  if (!existing) throw new AdminError(404, `no Remote Copy group ${r.group} here`, 'group');
  const g = existing;
  if (g.role !== 'secondary') throw new AdminError(409, `${r.group} is ${g.role} here too`, 'group');
  if (r.verb === 'setgroup') {
    const refused = g.operator({ kind: 'operator', command: { verb: 'setpolicy', policy: r.policy, on: r.on } });
    if (refused) throw new AdminError(409, refused, 'policy');
    await rc.saveRuntime();
    return;
  }
  if (r.verb === 'dismissvv' || r.verb === 'removegroup') { await unbindHere(rc, g, r); return; }
  stoppedOrRefuse(g, 'a volume is admitted to a stopped group; the next startgroup copies it whole');
  if (r.index !== g.cfg.volumes.length) throw new AdminError(409, `group ${r.group} has ${g.cfg.volumes.length} volumes here, ${r.index} on the primary`, 'group');
  const target = r.volume.target ?? rc.targetNames()[0];
  const lu = rc.lu(target, r.volume.lun);
  if (!lu) throw new AdminError(404, `no LUN ${r.volume.lun} on target ${target}`, 'volume');
  const other = rc.groupOf(target, lu.lun);
  if (other) throw new AdminError(409, `${target} LUN ${lu.lun} is already in Remote Copy group ${other.cfg.name}`, 'volume');
  if (lu.blockSize !== r.blockSize || String(lu.blockCount) !== r.blockCount) {
    throw new AdminError(409, `${target} LUN ${lu.lun} is ${lu.blockCount} blocks of ${lu.blockSize} bytes, the primary's volume ${r.blockCount} of ${r.blockSize}: a replicated volume has the same geometry on both arrays`, 'volume');
  }
  // One device on two arrays: the secondary volume answers INQUIRY with the primary's designators
  // (VPD 0x80, 0x83); it takes its own back when dismissed (RemoteCopy.dismiss).
  if (!rc.ownIdentity.has(lu)) rc.ownIdentity.set(lu, { naa: lu.naa, serial: lu.serial });
  lu.naa = r.wwn;
  lu.serial = r.serial;
  // SPC-5 (INQUIRY): changed INQUIRY data is reported to every I_T nexus as UNIT ATTENTION 3F/03.
  lu.ua.establishAll(lu.target.nexusKeys(), 'InquiryDataChanged');
  const index = rc.admit(g, target, lu);
  await g.remakeMeta(`admitvv on the primary (volume ${index})`);
  await rc.saveRuntime();
  rc.log.info({ group: r.group, target, lun: lu.lun, wwn: r.wwn }, 'volume admitted to Remote Copy group (admitvv on the primary)');
}

/** dismissvv and removegroup on the other array: the same checks as the primary's, then the change. */
async function unbindHere(rc: RemoteCopy, g: ReplicationGroup, r: Extract<GroupAdminRequest, { verb: 'dismissvv' | 'removegroup' }>): Promise<void> {
  madeHereOrRefuse(g, r.verb);
  // Its SyncStatus only: `started` is the primary's wish, which the primary has checked (a secondary
  // that lost the link before the stopgroup still holds the last one it heard).
  if (g.machine.status !== 'Stopped') throw new AdminError(409, `group ${r.group} is ${g.machine.status} here`, 'group');
  if (r.count !== g.cfg.volumes.length) throw new AdminError(409, `group ${r.group} has ${g.cfg.volumes.length} volumes here, ${r.count} on the primary`, 'group');
  if (r.verb === 'removegroup') {
    hasNoVolumesOrForced(g, r.force);
    await held(g, () => removeHere(rc, g));
    await rc.saveRuntime();
    rc.log.info({ group: r.group }, 'Remote Copy group removed (removegroup on the primary)');
    return;
  }
  const lu = g.volumes[r.index];
  if (!lu || lu.naa !== r.wwn) throw new AdminError(409, `volume ${r.index} of group ${r.group} here is ${lu ? lu.naa : 'missing'}, on the primary ${r.wwn}`, 'volume');
  const v = g.cfg.volumes[r.index];
  await held(g, async () => {
    rc.dismiss(g, r.index, `dismissvv on the primary (volume ${r.index})`);
    await g.remakeMeta(`dismissvv on the primary (volume ${r.index})`);
  });
  await rc.saveRuntime();
  // Now, before the primary applies its side: whatever it sends on the old link (a startgroup's
  // resync with the old volume numbers) is never read here, and the next hello must agree.
  g.cut();
  rc.log.info({ group: r.group, target: v.target, lun: v.lun, naa: lu.naa }, 'volume dismissed from Remote Copy group (dismissvv on the primary)');
}
