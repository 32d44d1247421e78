/**
 * The splitter's command-line verbs, as yargs command modules that src/cli.ts registers:
 *   arraysim verify [--admin HOST:PORT] [--group G] [--copy C] [--image [latest|BOOKMARK|TIME|seq:N]] [--json]
 *       --image: the image the copy gives access to against production at that point (default: the image's own)
 *       exit 0: consistent, 1: diverged, 2: error (no such group, transfer not active, no array)
 *   arraysim splitter presets [--json]
 *   arraysim rp VERB key=value... [--admin HOST:PORT] [--json]
 *       RecoverPoint's CLI words and key=value form (field notes, "The Commands"):
 *       enable_group group=G [start_transfer=yes|no], disable_group group=G, clear_markers group=G [copy=C],
 *       start_transfer group=G, pause_transfer group=G, bookmark group=G name=N, get_group_state group=G,
 *       enable_image_access group=G copy=C [image=latest|BOOKMARK|TIME|seq:N] [mode=logged|direct|virtual],
 *       set_image_access_mode group=G copy=C mode=logged|direct, disable_image_access group=G copy=C [start_transfer=yes|no],
 *       disable_copy group=G copy=C, enable_copy group=G copy=C
 *       exit 0 done, 1 refused by the array (the reason printed), 2 usage (unknown verb, key or value: named)
 *       --wait (enable_group, start_transfer): wait until the transfer is active, i.e. the copies'
 *       initialization is over, with its progress on a terminal; exit 1 if it fails or is paused meanwhile
 */
import type { CommandModule } from 'yargs';
import { adminCall } from '../admin/client.ts';
import { RELEASE_BODY } from '../admin/routes/replica-claims.ts';
import {
  BOOKMARK_BODY, CLEAR_MARKERS_BODY, COPY_BODY, DISABLE_IMAGE_ACCESS_BODY, EMPTY_BODY, ENABLE_GROUP_BODY, ENABLE_IMAGE_ACCESS_BODY, SET_IMAGE_ACCESS_MODE_BODY,
  VERIFY_BODY,
} from '../admin/routes/splitter.ts';
import type { GroupStatus } from './group.ts';
import { PRESETS, PRIMITIVES } from './policy.ts';
import { withProgress } from '../progress.ts';
import { waitFor } from '../admin/wait.ts';
import type { WaitOptions, WaitSample } from '../admin/wait.ts';
import { formatVerify } from './verify.ts';
import type { VerifyResult } from './verify.ts';

/** The presets as a text table, then their sources. */
export function presetsTable(): string {
  const rows = PRESETS.map((p) => [p.name, p.spec.kind, ...PRIMITIVES.map((k) => p.spec.policies[k]), p.description]);
  const head = ['PRESET', 'KIND', ...PRIMITIVES.map((k) => k.toUpperCase()), 'WHAT IT MODELS'];
  const widths = head.map((h, i) => (i === head.length - 1 ? 0 : Math.max(h.length, ...rows.map((r) => r[i].length))));
  const line = (r: string[]) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join('  ');
  return [line(head), ...rows.map(line), '', 'Sources (shared/seeds/):', ...PRESETS.map((p) => `  ${p.name}: ${p.source}`)].join('\n');
}

/** A key of an rp verb: required or not, and the values it takes (any non-empty word when absent). */
interface RpKey { required?: boolean; values?: readonly string[] }
interface RpVerb { keys: Record<string, RpKey>; method: 'GET' | 'POST'; path: (group: string) => string; schema?: object }

const YES_NO = ['yes', 'no'] as const;
const G: RpKey = { required: true };
const C: RpKey = { required: true };
const MODES = ['logged', 'direct'] as const;
const ENABLE_MODES = [...MODES, 'virtual'] as const;
const post = (verb: string) => (g: string) => `/v1/groups/${encodeURIComponent(g)}/${verb}`;

/** The verbs, with the keys each takes: the one table `arraysim rp` checks its arguments against. */
export const RP_VERBS: Record<string, RpVerb> = {
  enable_group: { keys: { group: G, start_transfer: { values: YES_NO } }, method: 'POST', path: post('enable_group'), schema: ENABLE_GROUP_BODY },
  disable_group: { keys: { group: G }, method: 'POST', path: post('disable_group'), schema: EMPTY_BODY },
  clear_markers: { keys: { group: G, copy: {} }, method: 'POST', path: post('clear_markers'), schema: CLEAR_MARKERS_BODY },
  start_transfer: { keys: { group: G }, method: 'POST', path: post('start_transfer'), schema: EMPTY_BODY },
  pause_transfer: { keys: { group: G }, method: 'POST', path: post('pause_transfer'), schema: EMPTY_BODY },
  bookmark: { keys: { group: G, name: { required: true } }, method: 'POST', path: post('bookmarks'), schema: BOOKMARK_BODY },
  get_group_state: { keys: { group: G }, method: 'GET', path: (g) => `/v1/groups/${encodeURIComponent(g)}` },
  enable_image_access: {
    keys: { group: G, copy: C, image: {}, mode: { values: ENABLE_MODES } }, method: 'POST', path: post('enable_image_access'), schema: ENABLE_IMAGE_ACCESS_BODY,
  },
  disable_image_access: {
    keys: { group: G, copy: C, start_transfer: { values: YES_NO } }, method: 'POST', path: post('disable_image_access'), schema: DISABLE_IMAGE_ACCESS_BODY,
  },
  set_image_access_mode: { keys: { group: G, copy: C, mode: { required: true, values: MODES } }, method: 'POST', path: post('set_image_access_mode'), schema: SET_IMAGE_ACCESS_MODE_BODY },
  disable_copy: { keys: { group: G, copy: C }, method: 'POST', path: post('disable_copy'), schema: COPY_BODY },
  enable_copy: { keys: { group: G, copy: C }, method: 'POST', path: post('enable_copy'), schema: COPY_BODY },
};

/** A usage error of `arraysim rp`: names the verb, key or value. */
export class RpUsageError extends Error {}

/** `VERB key=value ...` checked against RP_VERBS: the group and the body to send. */
export function parseRp(verb: string, args: readonly string[]): { verb: RpVerb; group: string; body: Record<string, string> } {
  const v = Object.hasOwn(RP_VERBS, verb) ? RP_VERBS[verb] : undefined;
  if (!v) throw new RpUsageError(`unknown verb "${verb}" (verbs: ${Object.keys(RP_VERBS).join(', ')})`);
  const got: Record<string, string> = {};
  for (const a of args) {
    const eq = a.indexOf('=');
    if (eq <= 0) throw new RpUsageError(`${verb}: "${a}" is not key=value`);
    const [k, val] = [a.slice(0, eq), a.slice(eq + 1)];
    const key = Object.hasOwn(v.keys, k) ? v.keys[k] : undefined;
    if (!key) throw new RpUsageError(`${verb}: unknown key "${k}" (keys: ${Object.keys(v.keys).join(', ')})`);
    if (Object.hasOwn(got, k)) throw new RpUsageError(`${verb}: key "${k}" given twice`);
    if (!val) throw new RpUsageError(`${verb}: key "${k}" needs a value`);
    if (key.values && !key.values.includes(val)) throw new RpUsageError(`${verb}: ${k}=${val}: ${k} is ${key.values.join(' or ')}`);
    got[k] = val;
  }
  for (const [k, key] of Object.entries(v.keys)) if (key.required && got[k] === undefined) throw new RpUsageError(`${verb}: key "${k}" is required (${k}=...)`);
  const { group, ...body } = got;
  return { verb: v, group, body };
}

const size = (b: number): string => {
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  for (; b >= 1024 && i < u.length - 1; i++) b /= 1024;
  return `${i ? b.toFixed(1) : b} ${u[i]}`;
};

/** get_group_state as lines for a terminal; the synchronization as the field notes report it ("21GB (6.36%)"). */
export function formatGroupState(g: GroupStatus): string {
  const j = g.journal;
  const lines = [
    `group ${g.name}: ${g.state}, transfer ${g.transfer}${g.highLoad ? ' (high load: writes marked)' : ''}; splitter ${g.splitter.spec}`,
    `  journal: ${j.records} records, ${size(j.bytes)} of ${size(j.limitBytes)}; last seq ${j.lastSeq}`,
  ];
  for (const c of g.copies) {
    const m = g.markers.find((x) => x.copy === c.name);
    lines.push(`  copy ${c.name}: ${c.enabled ? '' : 'DISABLED, '}applied seq ${c.appliedSeq}, lag ${c.lag.records} records (${size(c.lag.bytes)}); `
      + (m?.fullSweep ? 'full sweep due' : `markers: ${m?.regions ?? 0} regions (${size(m?.bytes ?? 0)})`));
    if (c.image) {
      const v = c.image.virtual;
      const how = v ? `replica at ${c.image.rolledFrom}, read map of ${v.mapRuns} runs built in ${v.mapMs} ms, ${v.overlayBlocks} blocks in the overlay` : `rolled from ${c.image.rolledFrom}`;
      lines.push(`    image access: ${c.access} to ${c.image.image} (seq ${c.image.seq}, ${how}), ${c.image.writes} host writes`);
    } else {
      lines.push(`    image access: none (${c.oldestImageSeq === null ? 'no image yet' : `images from seq ${c.oldestImageSeq}`})`);
    }
    const rj = c.remoteJournal;
    if (rj) {
      lines.push(`    remote journal: undo ${size(rj.undoBytes)} of ${size(rj.undoLimit)}, window ${rj.oldestImage === null ? 'empty' : `seq ${rj.oldestImage} to ${rj.applied}`}`
        + `${rj.image !== null ? `, image seq ${rj.image} presented${rj.direct ? ' (direct)' : ''}` : ''} (as of ${rj.asOf})`);
    }
    const l = c.link;
    if (l) {
      lines.push(`    remote: ${l.target} at ${l.portal} LUNs ${l.luns.join(', ')}, link ${l.connected ? 'up' : 'down'}, rate ${l.rate ?? 'unlimited'}; `
        + `${size(l.bytesSent)} sent, ${size(l.bytesReceived)} received${l.lastError ? `; last error: ${l.lastError}` : ''}`);
    }
    const s = c.synchronization;
    if (s) lines.push(`    synchronization (${s.kind}): ${size(s.bytesSent)} of ${size(s.volumeBytes)} sent, ${s.regions} regions, ${s.done ? 'done' : 'running or stopped'}`);
  }
  const i = g.initialization;
  if (i.kind !== 'none') {
    lines.push(`  initialization (${i.kind}): ${size(i.bytesSent)} of ${size(i.volumeBytes)} sent (${i.percent.toFixed(2)}%), ${i.regions} regions`
      + `${i.kind === 'full-sweep' ? ` of ${i.regionsCompared} compared` : ''}, ${i.done ? 'done' : 'running'}`);
  }
  return lines.join('\n');
}

/**
 * One look at a group while `rp start_transfer --wait` waits for the transfer to be active. Regions
 * are what the initialization counts: for marked regions the total is known (those marked at the
 * first look); a full sweep skips what neither side has allocated, so it shows the regions
 * compared so far without a total rather than a bar that would not fill.
 */
export function initSampler(admin: string, group: string): () => Promise<WaitSample<GroupStatus>> {
  let marked: number | undefined;
  return async () => {
    const g = await adminCall(admin, 'GET', `/v1/groups/${encodeURIComponent(group)}`) as GroupStatus;
    marked ??= g.markers.reduce((n, m) => n + m.regions, 0);
    const i = g.initialization;
    const last = g.history.at(-1);
    const failed = g.transfer === 'error' ? (last?.reason ?? 'transfer error')
      : g.transfer === 'paused' ? `transfer paused${last ? ` (${last.reason})` : ''}` : undefined;
    const sweep = i.kind === 'full-sweep';
    return { reply: g, done: sweep ? i.regionsCompared : i.regions, total: sweep || !marked ? undefined : marked, over: g.transfer === 'active', failed };
  };
}

export async function waitTransferActive(admin: string, group: string, o: Partial<WaitOptions> = {}): Promise<GroupStatus> {
  return waitFor(initSampler(admin, group), { label: `initialize ${group}`, noun: 'regions', ...o });
}

interface VerifyArgs { admin: string; group: string; copy?: string; image?: string; json?: boolean }

export function splitterCommands(defaultAdmin: string): CommandModule<object, any>[] {
  const verify: CommandModule<object, VerifyArgs> = {
    command: 'verify',
    describe: 'drain a consistency group\'s journal and compare production with a copy; exit 0 consistent, 1 diverged, 2 error',
    builder: (y) => y
      .option('admin', { type: 'string', default: defaultAdmin, describe: 'admin API address' })
      .option('group', { type: 'string', default: 'default', describe: 'consistency group' })
      .option('copy', { type: 'string', describe: 'copy (default: the group\'s first)' })
      .option('image', { type: 'string', describe: 'check the image the copy gives access to against production at this point (latest, a bookmark, seq:N, a time; empty: the image\'s own)' })
      .option('json', { type: 'boolean', describe: 'print the result as JSON' }) as never,
    handler: async (a) => {
      try {
        // The API answers when the verify is over and reports no steps: on a terminal, a spinner
        // and the time after the first second; piped, nothing but the result.
        const r = await withProgress({ label: `verify ${a.group}` }, () =>
          adminCall(a.admin, 'POST', `/v1/groups/${encodeURIComponent(a.group)}/verify`, {
            body: { ...(a.copy ? { copy: a.copy } : {}), ...(a.image !== undefined ? { image: true, ...(a.image ? { at: a.image } : {}) } : {}) },
            schema: VERIFY_BODY,
          })) as VerifyResult;
        console.log(a.json ? JSON.stringify(r, null, 2) : formatVerify(r));
        process.exitCode = r.consistent ? 0 : 1;
      } catch (e) {
        process.stderr.write(`arraysim verify: ${e instanceof Error ? e.message : String(e)}\n`);
        process.exitCode = 2;
      }
    },
  };
  const presets: CommandModule<object, { json?: boolean }> = {
    command: 'presets',
    describe: 'list the splitter presets (named after the seeds) with their policies and sources',
    builder: (y) => y.option('json', { type: 'boolean', describe: 'print as JSON' }) as never,
    handler: (a) => {
      console.log(a.json ? JSON.stringify(PRESETS, null, 2) : presetsTable());
    },
  };
  const splitter: CommandModule<object, object> = {
    command: 'splitter <command>',
    describe: 'write splitter: presets',
    builder: (y) => y.command(presets).demandCommand(1) as never,
    handler: () => {},
  };
  const rp: CommandModule<object, { verb: string; args?: string[]; admin: string; json?: boolean; wait?: boolean; timeout: number }> = {
    command: 'rp <verb> [args..]',
    describe: 'RecoverPoint operator verbs, key=value: enable_group, disable_group, clear_markers, start_transfer, pause_transfer, bookmark, get_group_state, '
      + 'enable_image_access, set_image_access_mode, disable_image_access, disable_copy, enable_copy',
    builder: (y) => y
      .positional('verb', { type: 'string', describe: Object.keys(RP_VERBS).join(' | ') })
      .positional('args', { type: 'string', array: true, describe: 'key=value (group=G, start_transfer=yes|no, copy=C, name=N, image=I, mode=logged|direct|virtual)' })
      .option('admin', { type: 'string', default: defaultAdmin, describe: 'admin API address' })
      .option('json', { type: 'boolean', describe: 'print the reply as JSON' })
      .option('wait', { type: 'boolean', describe: 'enable_group, start_transfer: wait until the transfer is active (initialization progress on a terminal)' })
      .option('timeout', { type: 'number', default: 600, describe: 'with --wait: give up after this many seconds' })
      .parserConfiguration({ 'parse-positional-numbers': false }) as never,
    handler: async (a) => {
      let p: ReturnType<typeof parseRp>;
      try {
        p = parseRp(a.verb, (a.args ?? []).map(String));
        const starts = a.verb === 'start_transfer' || (a.verb === 'enable_group' && p.body.start_transfer !== 'no');
        if (a.wait && !starts) throw new RpUsageError('--wait goes with start_transfer, or enable_group without start_transfer=no');
      } catch (e) {
        process.stderr.write(`arraysim rp: ${(e as Error).message}\n`);
        process.exitCode = 2;
        return;
      }
      try {
        let r = await adminCall(a.admin, p.verb.method, p.verb.path(p.group), p.verb.method === 'POST' ? { body: p.body, schema: p.verb.schema } : {});
        if (a.wait) r = { ...(r as object), group: await waitTransferActive(a.admin, p.group, { timeoutMs: a.timeout * 1000 }) };
        if (a.json) console.log(JSON.stringify(r, null, 2));
        else if (a.verb === 'get_group_state') console.log(formatGroupState(r as GroupStatus));
        else if (a.verb === 'bookmark') { const b = r as { name: string; seq: number }; console.log(`bookmark ${b.name} at journal seq ${b.seq}`); }
        else console.log(`${a.verb}: done\n${formatGroupState((r as { group: GroupStatus }).group)}`);
      } catch (e) {
        process.stderr.write(`arraysim rp ${a.verb}: ${e instanceof Error ? e.message : String(e)}\n`);
        process.exitCode = 1;
      }
    },
  };
  // On the remote array of a remote copy: the claims production's links hold, and the operator's
  // release when production is gone (src/admin/routes/replica-claims.ts).
  const claims: CommandModule<object, { action: 'show' | 'release'; admin: string; target?: string; lun?: number; reason?: string }> = {
    command: 'replica-claims <action>',
    describe: 'remote copies\' replica claims on this array\'s LUs: show them, or release them (production gone) so every host can use the LUs again',
    builder: (y) => y
      .positional('action', { choices: ['show', 'release'] as const, describe: 'show: list the claims; release: release them' })
      .option('admin', { type: 'string', default: defaultAdmin, describe: 'admin API address (of the remote array)' })
      .option('target', { type: 'string', describe: 'release: only this target\'s LUs' })
      .option('lun', { type: 'number', describe: 'release: only this LUN' })
      .option('reason', { type: 'string', describe: 'release: logged with it' }) as never,
    handler: async (a) => {
      if (a.action === 'show') { console.log(JSON.stringify(await adminCall(a.admin, 'GET', '/v1/replica-claims'), null, 2)); return; }
      const body = { ...(a.target !== undefined ? { target: a.target } : {}), ...(a.lun !== undefined ? { lun: a.lun } : {}), ...(a.reason !== undefined ? { reason: a.reason } : {}) };
      console.log(JSON.stringify(await adminCall(a.admin, 'POST', '/v1/replica-claims/release', { body, schema: RELEASE_BODY }), null, 2));
    },
  };
  return [verify, splitter, rp, claims];
}
