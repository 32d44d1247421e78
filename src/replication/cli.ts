/**
 * `arraysim rcopy …`: the HPE Remote Copy CLI words against a running array's admin API.
 *
 *   arraysim rcopy creategroup GROUP TARGET[:sync]       (creatercopygroup; on the primary: the group on both arrays, TARGET the other's peers.name)
 *   arraysim rcopy admitvv VV GROUP TARGET:SECVV         (admitrcopyvv; on the primary, group stopped; a VV is LUN or IQN/LUN)
 *   arraysim rcopy setgroup pol [no_]POLICY GROUP        (setrcopygroup pol; on the primary, applied on both arrays)
 *   arraysim rcopy dismissvv [-f] VV GROUP               (dismissrcopyvv; on the primary, group stopped: both volumes leave the group, kept)
 *   arraysim rcopy removegroup [-f] [-local] GROUP       (removercopygroup; on the primary, group stopped; -f: dismiss its volumes first;
 *                                                        -local: the other array is gone, this array only, either role)
 *   arraysim rcopy showgroup [GROUP]
 *   arraysim rcopy startgroup GROUP [--wait] (startrcopygroup; run against the primary; --wait: until Synced,
 *                                             showing the resync's progress on a terminal)
 *   arraysim rcopy stopgroup GROUP           (stoprcopygroup; run against the primary)
 *   arraysim rcopy admithost -proximity primary|secondary|all HOST GROUP   (admitrcopyhost; on each array)
 *   arraysim rcopy failover GROUP            (setrcopygroup failover; on the secondary, granted by the witness if there is one)
 *   arraysim rcopy recover GROUP             (setrcopygroup recover; on the array failed over to)
 *   arraysim rcopy restore GROUP             (setrcopygroup restore; on the Primary-Rev array, Synced)
 *   arraysim rcopy reverse GROUP             (setrcopygroup reverse; on the primary, Synced)
 *   arraysim rcopy witness status|cut|restore                              (the quorum witness as this array sees it; fault injection)
 *   arraysim rcopy link [cut|restore] [--latency MS] [--loss PCT] [--one-way out|in|off] [--seed N]   (fault injection)
 *
 * `-proximity` is written with one dash as HPE's CLI does; `--proximity` works too. dismissvv takes
 * HPE's `-f` (do not ask) and ignores it, as arraysim never asks; removegroup's `-f` is the API's
 * `force`. HPE's `-removevv` (delete the secondary volumes) is refused: arraysim deletes no LUN.
 */
import type { Argv, CommandModule } from 'yargs';
import { adminCall, defaultAdmin } from '../admin/client.ts';
import { ADMITHOST_BODY, LINK_BODY, WITNESS_BODY } from '../admin/routes/rcopy.ts';
import { ADMITVV_BODY, CREATEGROUP_BODY, DISMISSVV_BODY, REMOVEGROUP_BODY, SETGROUP_BODY } from '../admin/routes/rcopy-define.ts';
import type { VolumeRef } from './runtime-groups.ts';
import { waitFor } from '../admin/wait.ts';
import type { WaitOptions, WaitSample } from '../admin/wait.ts';

const VERBS = ['creategroup', 'admitvv', 'setgroup', 'dismissvv', 'removegroup', 'showgroup', 'startgroup', 'stopgroup', 'admithost', 'failover', 'recover', 'restore', 'reverse', 'witness', 'link'] as const;

/** HPE writes `-proximity all`: take it before yargs would read it as the short options -p -r -o …. */
export function hpeProximity(words: string[]): { proximity?: string; rest: string[] } {
  const rest: string[] = [];
  let proximity: string | undefined;
  for (let i = 0; i < words.length; i++) {
    if (words[i] === '-proximity' || words[i] === '--proximity') { proximity = words[++i]; continue; }
    rest.push(words[i]);
  }
  return { proximity, rest };
}

/** A VV as the verbs write it: `LUN` (the array's first target) or `IQN/LUN`. */
export function volumeRef(word: string, what: string): VolumeRef {
  const slash = word.lastIndexOf('/');
  const lun = Number(word.slice(slash + 1));
  if (!/^\d+$/.test(word.slice(slash + 1)) || !Number.isSafeInteger(lun)) throw new Error(`${what} must be LUN or IQN/LUN, not ${word}`);
  return slash < 0 ? { lun } : { target: word.slice(0, slash), lun };
}

/** HPE's TARGET:REST (TARGET:MODE, TARGET:SECVV): the other array's name before the first colon. */
export function targetAnd(word: string): { peer: string; rest: string | undefined } {
  const i = word.indexOf(':');
  return i < 0 ? { peer: word, rest: undefined } : { peer: word.slice(0, i), rest: word.slice(i + 1) };
}

/**
 * HPE's `-f` before the operands (dismissrcopyvv -f, removercopygroup -f), and removegroup's
 * `-local` (the other array is gone: this array only); -removevv is refused.
 */
export function hpeForce(words: string[]): { force: boolean; local: boolean; rest: string[] } {
  const rest: string[] = [];
  let force = false;
  let local = false;
  for (const w of words) {
    if (w === '-f' || w === '--force') force = true;
    else if (w === '-local' || w === '--local') local = true;
    else if (w === '-removevv' || w === '--removevv') throw new Error('-removevv deletes the secondary volumes on HPE arrays; arraysim deletes no LUN (dismissvv and removegroup -f keep both volumes and their data)');
    else if (w.startsWith('-') && !/^-?\d/.test(w)) throw new Error(`unknown option ${w}`);
    else rest.push(w);
  }
  return { force, local, rest };
}

/** `--one-way out|in|off` as the API's oneWay (off heals: null). */
export function oneWayOption(v: string | undefined): 'out' | 'in' | null | undefined {
  if (v === undefined) return undefined;
  if (v === 'out' || v === 'in') return v;
  if (v === 'off') return null;
  throw new Error(`--one-way must be out, in or off, not ${v}`);
}

interface GroupReply { name: string; status: string; started: boolean; link: string; dirtyBlocks: string; operatorNeeded: string | null; stats: { resyncBlocks: number } }

/**
 * One look at a group while `startgroup --wait` waits for Synced. The resync sends the regions
 * dirty when it began (dirtyBlocks stays put until it completes); done is what the peer has
 * acknowledged since the first look. A link that drops meanwhile restarts the resync, so done may
 * pass the total: the bar then stays full until the group says Synced. A group that cannot get
 * there without the operator (Failsafe, stopped, auto_recover off: the array's operatorNeeded)
 * ends the wait at once with the array's reason.
 */
export function syncSampler(admin: string, group: string): () => Promise<WaitSample<GroupReply>> {
  let base: number | undefined;
  return async () => {
    const all = await adminCall(admin, 'GET', '/v1/rcopy/groups') as { groups: GroupReply[] };
    const g = all.groups.find((x) => x.name === group);
    if (!g) return { reply: g as never, done: 0, over: false, failed: `no Remote Copy group ${group}` };
    base ??= g.stats.resyncBlocks;
    const failed = g.operatorNeeded ? `group ${group} is ${g.operatorNeeded}` : undefined;
    return { reply: g, done: g.stats.resyncBlocks - base, total: Number(g.dirtyBlocks) || undefined, over: g.status === 'Synced', failed };
  };
}

export async function waitSynced(admin: string, group: string, o: Partial<WaitOptions> = {}): Promise<GroupReply> {
  return waitFor(syncSampler(admin, group), { label: `resync ${group}`, noun: 'blocks', ...o });
}

export const RCOPY_COMMAND: CommandModule<object, { verb: string; args: string[]; admin: string; latency?: number; loss?: number; oneWay?: string; seed?: number; wait: boolean; timeout: number }> = {
  command: 'rcopy <verb> [args..]',
  describe: 'Remote Copy: creategroup GROUP TARGET:sync, admitvv VV GROUP TARGET:SECVV, setgroup pol POLICY GROUP, dismissvv VV GROUP, removegroup [-f] [-local] GROUP, showgroup, startgroup, stopgroup, admithost -proximity P HOST GROUP, failover|recover|restore|reverse GROUP, witness status|cut|restore, link cut|restore',
  builder: (y: Argv) => y
    .positional('verb', { choices: VERBS, describe: 'what to do' })
    .positional('args', { type: 'string', array: true, describe: 'GROUP, or HOST GROUP, or VV GROUP TARGET:SECVV, or status|cut|restore (witness), or cut|restore (link)' })
    .option('admin', { type: 'string', default: defaultAdmin(), describe: 'admin API address of the array to ask' })
    .option('latency', { type: 'number', alias: 'latency-ms', describe: 'link: ms added to every message this array sends (1 ms round trip per 100 km)' })
    .option('loss', { type: 'number', describe: 'link: percent of the frames this array sends that are lost (each waits for a TCP retransmission: 200 ms, doubling)' })
    .option('one-way', { type: 'string', describe: 'link: one-way partition: out (what this array sends stops arriving), in (what it receives), off' })
    .option('seed', { type: 'number', describe: 'link: seed of the loss draws (replays a loss pattern)' })
    .option('wait', { type: 'boolean', default: false, describe: 'startgroup: wait until the group is Synced (progress of the resync on a terminal)' })
    .option('timeout', { type: 'number', default: 600, describe: 'startgroup --wait: give up after this many seconds' })
    .parserConfiguration({ 'short-option-groups': false, 'unknown-options-as-args': true }) as never,
  handler: async (a) => {
    const words = (a.args ?? []).map(String);
    const print = (x: unknown) => console.log(JSON.stringify(x, null, 2));
    const need = (n: number, usage: string) => { if (words.length !== n) throw new Error(`usage: arraysim rcopy ${usage}`); };
    switch (a.verb) {
      case 'creategroup': {
        need(2, 'creategroup GROUP TARGET[:sync]');
        const { peer, rest } = targetAnd(words[1]);
        print(await adminCall(a.admin, 'POST', '/v1/rcopy/groups', { body: { name: words[0], peer, mode: rest ?? 'sync' }, schema: CREATEGROUP_BODY }));
        return;
      }
      case 'admitvv': {
        need(3, 'admitvv VV GROUP TARGET:SECVV');
        const { peer, rest } = targetAnd(words[2]);
        if (rest === undefined) throw new Error('usage: arraysim rcopy admitvv VV GROUP TARGET:SECVV (the secondary volume after the other array\'s name)');
        const body = { volume: volumeRef(words[0], 'VV'), peer, secondaryVolume: volumeRef(rest, 'SECVV') };
        print(await adminCall(a.admin, 'POST', `/v1/rcopy/groups/${encodeURIComponent(words[1])}/volumes`, { body, schema: ADMITVV_BODY }));
        return;
      }
      case 'setgroup': {
        if (words.length !== 3 || words[0] !== 'pol') throw new Error('usage: arraysim rcopy setgroup pol [no_]POLICY GROUP');
        print(await adminCall(a.admin, 'POST', `/v1/rcopy/groups/${encodeURIComponent(words[2])}/policies`, { body: { policy: words[1] }, schema: SETGROUP_BODY }));
        return;
      }
      case 'dismissvv': {
        const { local, rest } = hpeForce(words);
        if (local) throw new Error('-local is removegroup\'s (the other array is gone): removegroup -local -f GROUP dismisses every volume on this array');
        if (rest.length !== 2) throw new Error('usage: arraysim rcopy dismissvv [-f] VV GROUP');
        print(await adminCall(a.admin, 'POST', `/v1/rcopy/groups/${encodeURIComponent(rest[1])}/dismiss`, { body: { volume: volumeRef(rest[0], 'VV') }, schema: DISMISSVV_BODY }));
        return;
      }
      case 'removegroup': {
        const { force, local, rest } = hpeForce(words);
        if (rest.length !== 1) throw new Error('usage: arraysim rcopy removegroup [-f] [-local] GROUP');
        print(await adminCall(a.admin, 'POST', `/v1/rcopy/groups/${encodeURIComponent(rest[0])}/remove`, { body: local ? { force, local } : { force }, schema: REMOVEGROUP_BODY }));
        return;
      }
      case 'showgroup': {
        const all = await adminCall(a.admin, 'GET', '/v1/rcopy/groups') as { groups: { name: string }[] };
        if (words.length) print({ ...all, groups: all.groups.filter((g) => words.includes(g.name)) });
        else print(all);
        return;
      }
      case 'startgroup': case 'stopgroup': {
        need(1, `${a.verb} GROUP`);
        const reply = await adminCall(a.admin, 'POST', `/v1/rcopy/groups/${encodeURIComponent(words[0])}/${a.verb === 'startgroup' ? 'start' : 'stop'}`);
        print(a.wait && a.verb === 'startgroup' ? await waitSynced(a.admin, words[0], { timeoutMs: a.timeout * 1000 }) : reply);
        return;
      }
      case 'failover': case 'recover': case 'restore': case 'reverse':
        need(1, `${a.verb} GROUP`);
        print(await adminCall(a.admin, 'POST', `/v1/rcopy/groups/${encodeURIComponent(words[0])}/${a.verb}`));
        return;
      case 'witness': {
        if (words.length !== 1 || !['status', 'cut', 'restore'].includes(words[0])) throw new Error('usage: arraysim rcopy witness status|cut|restore');
        if (words[0] === 'status') print(await adminCall(a.admin, 'GET', '/v1/rcopy/witness'));
        else print(await adminCall(a.admin, 'POST', '/v1/rcopy/witness', { body: { action: words[0] }, schema: WITNESS_BODY }));
        return;
      }
      case 'admithost': {
        const { proximity, rest } = hpeProximity(words);
        if (rest.length !== 2) throw new Error('usage: arraysim rcopy admithost -proximity primary|secondary|all HOST GROUP');
        const body = { host: rest[0], proximity };
        print(await adminCall(a.admin, 'POST', `/v1/rcopy/groups/${encodeURIComponent(rest[1])}/hosts`, { body, schema: ADMITHOST_BODY }));
        return;
      }
      case 'link': {
        if (words.length > 1) throw new Error('usage: arraysim rcopy link [cut|restore] [--latency MS] [--loss PCT] [--one-way out|in|off] [--seed N]');
        const body = { action: words[0], latencyMs: a.latency, lossPercent: a.loss, oneWay: oneWayOption(a.oneWay), seed: a.seed };
        print(await adminCall(a.admin, 'POST', '/v1/rcopy/link', { body, schema: LINK_BODY }));
        return;
      }
    }
  },
};
