/**
 * The arraysim web console: plain DOM over the admin API.
 *
 *   GET /v1/status    every second: targets, LUs, sessions, and the counters the I/O charts derive rates from
 *   GET /v1/alua      at start and on reconnect: the ALUA matrix (kept current by alua.state events)
 *   GET /v1/groups    every two seconds and on group.* events: the splitter panel, shown only when
 *                     the route exists (404: the array has no splitter, the panel stays hidden)
 *   GET /v1/events    server-sent events (read through fetch): ALUA transitions update the matrix
 *                     as they happen, session events refresh the sessions, every event goes to the list
 * Off loopback every call carries the bearer token the page asks for once (./auth.ts).
 *   POST /v1/alua     a state change, after the confirmation dialog
 *   POST /v1/groups/:group/verify   a verify, after confirmation; its result is the group's
 *                     "last verify" (the group status has no such field: the console keeps the
 *                     last result it got, with its time)
 */
import 'uplot/dist/uPlot.min.css';
import './style.css';
import { ApiError, EVENT_TYPES, REQUESTABLE, getAlua, getGroups, getStatus, setAlua, verifyGroup } from './api.ts';
import type { AccessState, Alua, AluaGroup, AluaStateEvent, SessionEvent, SplitterGroup, Status, VerifyResult } from './api.ts';
import { RateChart } from './charts.ts';
import { bytes, clock, duration, h, replace } from './dom.ts';
import { streamEvents } from './auth.ts';

const SHORT: Record<AccessState, string> = {
  'active/optimized': 'AO', 'active/non-optimized': 'ANO', standby: 'S', unavailable: 'U', offline: 'O', transitioning: 'T',
};
const CLASS: Record<AccessState, string> = {
  'active/optimized': 'ao', 'active/non-optimized': 'ano', standby: 'standby', unavailable: 'unavailable', offline: 'offline', transitioning: 'transitioning',
};

let status: Status | null = null;
let alua: Alua | null = null;
let groups: SplitterGroup[] | null = null;
let sessionHosts = '';
/** The last verify this page ran, per group, and when it ended. */
const lastVerify = new Map<string, { result: VerifyResult; time: Date } | { error: string; time: Date }>();
const portalChart = new RateChart(document.getElementById('chart-portals')!);
const luChart = new RateChart(document.getElementById('chart-lus')!);

function stateBadge(s: AccessState): HTMLElement {
  return h('span', { class: `state ${CLASS[s] ?? ''}`, title: s }, SHORT[s] ?? s);
}

/** The state `host` sees through group `g`: its override, else the group default. */
function effective(g: AluaGroup, host: string | null): AccessState {
  return (host !== null && g.hosts[host]) || g.state;
}

function groupOf(target: string, tpg: number): AluaGroup | undefined {
  return alua?.targets.find((t) => t.name === target)?.groups.find((g) => g.id === tpg);
}

// ---- panels ------------------------------------------------------------------------------------

function renderTargets(): void {
  if (!status) return;
  const rows = status.targets.map((t) => h('div', { class: 'target', 'data-target': t.name },
    h('div', { class: 'target-name' }, t.name),
    h('table', {},
      h('thead', {}, h('tr', {}, h('th', {}, 'LUN'), h('th', {}, 'NAA'), h('th', { class: 'num' }, 'size'), h('th', { class: 'num' }, 'allocated'),
        h('th', { class: 'num' }, 'block'), h('th', { class: 'num' }, 'MB/s'), h('th', { class: 'num' }, 'errors'))),
      h('tbody', {}, ...t.luns.map((lu) => {
        const size = BigInt(lu.blocks) * BigInt(lu.blockSize);
        const rate = luChart.current.get(luKey(t.name, lu.lun));
        return h('tr', { 'data-lun': lu.lun },
          h('td', {}, lu.lun, lu.readonly ? ' (ro)' : ''), h('td', {}, lu.naa),
          h('td', { class: 'num', 'data-field': 'size', 'data-bytes': size.toString() }, bytes(size)),
          h('td', { class: 'num', 'data-field': 'allocated' }, bytes(lu.allocatedBytes)),
          h('td', { class: 'num' }, lu.blockSize),
          h('td', { class: 'num' }, rate === undefined ? '—' : rate.toFixed(2)),
          h('td', { class: 'num' }, lu.stats.errors));
      })))));
  replace('targets', ...rows);
}

function renderSessions(): void {
  if (!status) return;
  const rows = status.targets.flatMap((t) => t.sessions.map((s) => {
    const portal = status!.portals.find((p) => p.tpgt === s.tpgt);
    const g = portal ? groupOf(t.name, portal.targetPortGroup) : undefined;
    return h('tr', { 'data-initiator': s.initiator, 'data-target': t.name },
      h('td', {}, s.initiator), h('td', {}, t.name), h('td', {}, s.isid), h('td', { class: 'num' }, s.tsih),
      h('td', {}, portal?.listen ?? `tpgt ${s.tpgt}`), h('td', { class: 'num' }, portal?.targetPortGroup ?? '—'),
      h('td', { 'data-field': 'path-state' }, g ? stateBadge(effective(g, s.initiator)) : '—'),
      h('td', { class: 'num' }, s.connections));
  }));
  replace('sessions', rows.length
    ? h('table', {},
      h('thead', {}, h('tr', {}, h('th', {}, 'initiator'), h('th', {}, 'target'), h('th', {}, 'ISID'), h('th', { class: 'num' }, 'TSIH'),
        h('th', {}, 'portal'), h('th', { class: 'num' }, 'port group'), h('th', {}, 'path state'), h('th', { class: 'num' }, 'conns'))),
      h('tbody', {}, ...rows))
    : h('span', { class: 'muted' }, 'no sessions'));
}

/** Port groups (rows) by host (columns): the group default, then every host with a session or an override. */
function renderAlua(flash?: { target: string; tpg: number; host: string | null }): void {
  if (!alua) return;
  const blocks = alua.targets.map((t) => {
    const hosts = new Set<string>();
    for (const s of status?.targets.find((x) => x.name === t.name)?.sessions ?? []) hosts.add(s.initiator);
    for (const g of t.groups) for (const host of Object.keys(g.hosts)) hosts.add(host);
    const columns: (string | null)[] = [null, ...[...hosts].sort()];
    const portsOf = (g: AluaGroup) => g.ports.map((id) => status?.portals.find((p) => p.tpgt === id)?.listen ?? `port ${id}`).join(', ');
    return h('div', { class: 'target', 'data-target': t.name },
      h('div', { class: 'target-name' }, t.name, h('span', { class: 'muted' }, `  ALUA ${t.mode}`)),
      h('table', { class: 'matrix' },
        h('thead', {}, h('tr', {}, h('th', {}, 'port group'), h('th', {}, 'ports'),
          ...columns.map((c) => h('th', { title: c ?? 'the group default, for hosts without an override' }, c ?? 'default')))),
        h('tbody', {}, ...t.groups.map((g) => h('tr', { 'data-tpg': g.id },
          h('td', {}, `TPG ${g.id}`, g.preferred ? h('span', { class: 'muted', title: 'PREF bit' }, ' pref') : ''),
          h('td', { class: 'muted' }, portsOf(g)),
          ...columns.map((host) => {
            const s = effective(g, host);
            const isFlash = flash && flash.target === t.name && flash.tpg === g.id && (flash.host === null || flash.host === host);
            return h('td', {
              class: `cell${host !== null && g.hosts[host] ? ' override' : ''}${isFlash ? ' flash' : ''}`,
              'data-host': host ?? '', 'data-state': s,
            }, h('button', {
              type: 'button',
              title: `${s}${host !== null && g.hosts[host] ? ' (override for this host)' : ''}: click to change`,
              onclick: () => openChange(t.name, g, host),
            }, stateBadge(s)));
          }))))));
  });
  const legend = h('div', { class: 'legend' }, ...(Object.keys(SHORT) as AccessState[]).map((s) => h('span', {}, stateBadge(s), ' ', s)),
    h('span', { class: 'muted' }, 'outlined: a per-host override'));
  replace('alua', ...blocks, legend);
}

function renderGroups(): void {
  const panel = document.getElementById('groups-panel')!;
  panel.hidden = groups === null;
  if (!groups) return;
  if (!groups.length) { replace('groups', h('span', { class: 'muted' }, 'no consistency groups')); return; }
  const ignored = (g: SplitterGroup) => Object.entries(g.ignored ?? {}).filter(([, n]) => n > 0).map(([k, n]) => `${k} ${n}`).join(', ') || 'none';
  const lag = (g: SplitterGroup) => (g.copies ?? []).map((c) => `${c.name}: ${c.lag?.records ?? 0} rec, ${bytes(c.lag?.bytes ?? 0)}`).join('; ') || '—';
  const verified = (g: SplitterGroup) => {
    const v = lastVerify.get(g.name);
    if (!v) return h('span', { class: 'muted' }, 'not run from here');
    const at = ` at ${v.time.toLocaleTimeString([], { hour12: false })}`;
    if ('error' in v) return h('span', { class: 'error' }, `failed: ${v.error}${at}`);
    const r = v.result;
    return h('span', { class: r.consistent ? '' : 'error', title: `${r.regions.compared} regions compared, ${r.regions.skipped} skipped, ${bytes(r.bytesCompared)}` },
      r.consistent ? `consistent (${r.copy})` : `diverged: ${r.regions.diverged} regions (${r.copy})`, at);
  };
  replace('groups', h('table', {},
    h('thead', {}, h('tr', {}, h('th', {}, 'group'), h('th', {}, 'transfer'), h('th', { class: 'num' }, 'journal'),
      h('th', { class: 'num' }, 'protection window'), h('th', {}, 'lag'), h('th', {}, 'ignored commands'), h('th', {}, 'last verify'), h('th', {}, ''))),
    h('tbody', {}, ...groups.map((g) => h('tr', { 'data-group': g.name },
      h('td', {}, g.name), h('td', {}, g.transfer ?? '—'),
      h('td', { class: 'num' }, `${bytes(g.journal?.bytes ?? 0)} / ${bytes(g.journal?.limitBytes ?? null)}`),
      h('td', { class: 'num' }, g.journal?.protectionWindow?.spanMs === undefined ? '—' : duration(g.journal.protectionWindow.spanMs)),
      h('td', {}, lag(g)), h('td', {}, ignored(g)), h('td', { 'data-field': 'last-verify' }, verified(g)),
      h('td', {}, h('button', { type: 'button', class: 'verify', onclick: () => runVerify(g.name) }, 'Verify')))))));
}

function logEvent(text: string, type: string): void {
  const list = document.getElementById('events')!;
  list.prepend(h('li', { 'data-type': type }, text));
  while (list.children.length > 50) list.lastElementChild!.remove();
}

// ---- the change dialog ---------------------------------------------------------------------------

const dialog = document.getElementById('confirm') as HTMLDialogElement;
const select = document.getElementById('confirm-state') as HTMLSelectElement;
const errorLine = document.getElementById('confirm-error')!;
let pending: { target: string; tpg: number; host: string | null } | null = null;

function openChange(target: string, g: AluaGroup, host: string | null): void {
  pending = { target, tpg: g.id, host };
  const now = effective(g, host);
  document.getElementById('confirm-what')!.replaceChildren(
    `Target port group ${g.id} of `, h('b', {}, target),
    host === null ? h('span', {}, ' (the group default: every host without an override)') : h('span', {}, ' as host ', h('b', {}, host), ' sees it'),
    `: now ${now}.`);
  const options = REQUESTABLE.map((s) => h('option', { value: s, selected: s === now }, s));
  if (host !== null && g.hosts[host]) options.push(h('option', { value: 'clear' }, 'clear the override (follow the default)'));
  select.replaceChildren(...options);
  errorLine.hidden = true;
  dialog.showModal();
}

dialog.querySelector('form')!.addEventListener('submit', (e) => {
  const submitter = (e as SubmitEvent).submitter as HTMLButtonElement | null;
  if (submitter?.value !== 'ok' || !pending) { pending = null; return; } // cancel: the dialog closes itself
  e.preventDefault();
  const p = pending;
  const choice = select.value;
  const change = choice === 'clear'
    ? { target: p.target, tpg: p.tpg, host: p.host!, clearHost: true, reason: 'console' }
    : { target: p.target, tpg: p.tpg, state: choice as AccessState, ...(p.host === null ? {} : { host: p.host }), reason: 'console' };
  submitter.disabled = true;
  setAlua(change).then((reply) => {
    alua = reply; // the alua.state events say the same a moment later
    renderAlua(p);
    renderSessions();
    pending = null;
    dialog.close('ok');
  }, (err: unknown) => {
    errorLine.textContent = err instanceof ApiError ? `${err.message}${err.field ? ` (${err.field})` : ''}` : String(err);
    errorLine.hidden = false;
  }).finally(() => { submitter.disabled = false; });
});

/** A yes/no question in the #ask dialog; resolves true when confirmed. */
function ask(title: string, text: string, go: string): Promise<boolean> {
  const d = document.getElementById('ask') as HTMLDialogElement;
  document.getElementById('ask-title')!.textContent = title;
  document.getElementById('ask-text')!.textContent = text;
  document.getElementById('ask-ok')!.textContent = go;
  d.returnValue = '';
  d.showModal();
  return new Promise((resolve) => d.addEventListener('close', () => resolve(d.returnValue === 'ok'), { once: true }));
}

async function runVerify(group: string): Promise<void> {
  const ok = await ask(`Verify ${group}`,
    'Drain the journal into the copy, then compare production with it region by region. The array keeps serving I/O meanwhile.', 'Verify');
  if (!ok) return;
  try {
    lastVerify.set(group, { result: await verifyGroup(group), time: new Date() });
  } catch (e) {
    lastVerify.set(group, { error: e instanceof Error ? e.message : String(e), time: new Date() });
  }
  renderGroups();
}

// ---- data ----------------------------------------------------------------------------------------

function luKey(target: string, lun: number): string {
  const short = target.includes(':') ? target.slice(target.lastIndexOf(':') + 1) : target;
  return `${short} LUN ${lun}`;
}

async function refreshStatus(): Promise<void> {
  const s = await getStatus();
  const t = performance.now();
  status = s;
  portalChart.sample(t, s.portals.map((p) => ({ key: p.listen, bytes: p.stats.readBytes + p.stats.writeBytes })));
  luChart.sample(t, s.targets.flatMap((x) => x.luns.map((lu) => ({ key: luKey(x.name, lu.lun), bytes: lu.stats.readBytes + lu.stats.writeBytes }))));
  document.getElementById('array')!.textContent = `${location.host} · portals ${s.portals.map((p) => p.listen).join(', ')}`;
  renderTargets();
  renderSessions();
  // A host that logged in (or the last session of one that left) adds or drops a matrix column.
  const hosts = s.targets.map((x) => x.sessions.map((y) => y.initiator).sort().join(' ')).join('\n');
  if (hosts !== sessionHosts) { sessionHosts = hosts; renderAlua(); }
}

async function refreshAlua(): Promise<void> {
  alua = await getAlua();
  renderAlua();
  renderSessions();
}

async function refreshGroups(): Promise<void> {
  try {
    groups = (await getGroups()).groups;
  } catch (e) {
    // 404: this array has no splitter route; the panel stays hidden until it has one.
    if (e instanceof ApiError && e.status === 404) groups = null;
    else throw e;
  }
  renderGroups();
}

function onAluaEvent(e: AluaStateEvent): void {
  const g = groupOf(e.target, e.tpg);
  if (g) {
    g.state = e.state;
    g.preferred = e.preferred;
    g.hosts = e.hosts;
  }
  renderAlua({ target: e.target, tpg: e.tpg, host: e.host });
  renderSessions();
  logEvent(`${clock(e.time)} alua.state TPG ${e.tpg}${e.host ? ` for ${e.host}` : ''} → ${e.host ? e.hosts[e.host] ?? e.state : e.state} (${e.phase}; ${e.reason})`, e.type);
}

function connectEvents(): void {
  const badge = document.getElementById('stream')!;
  // Read through fetch, not EventSource, so that it can carry the bearer token (./auth.ts).
  let lost = false;
  streamEvents('/v1/events', {
    onLost: () => { lost = true; badge.dataset.state = 'error'; badge.textContent = 'events: reconnecting'; },
    onEvent: (type, data) => {
      if (type === 'hello') {
        badge.dataset.state = 'open';
        badge.textContent = 'events: live';
        // A reconnect: no replay, so read what changed meanwhile (src/admin/routes/events.ts).
        if (lost) { lost = false; void refreshAlua(); void refreshStatus(); }
        return;
      }
      if (!(EVENT_TYPES as readonly string[]).includes(type)) return;
      const e = JSON.parse(data) as { type: string; time: string };
      if (e.type === 'alua.state') { onAluaEvent(e as AluaStateEvent); return; }
      if (e.type.startsWith('session.')) {
        const s = e as SessionEvent;
        logEvent(`${clock(s.time)} ${s.type} ${s.initiator} via ${s.portal}${s.type === 'session.drop' && s.why ? ` (${s.why})` : ''}`, s.type);
        void refreshStatus();
        return;
      }
      logEvent(`${clock(e.time)} ${e.type}`, e.type);
      if (e.type.startsWith('group.')) void refreshGroups();
    },
  });
}

function every(ms: number, fn: () => Promise<void>): void {
  const tick = () => { fn().catch((e: unknown) => console.warn(e)).finally(() => setTimeout(tick, ms)); };
  setTimeout(tick, ms);
}

async function start(): Promise<void> {
  connectEvents();
  await Promise.all([refreshStatus(), refreshAlua(), refreshGroups().catch(() => undefined)]);
  renderAlua();
  performance.mark('console-data'); // first paint with the array's state (the browser test reads it)
  document.body.dataset.ready = 'true';
  every(1000, refreshStatus);
  every(2000, refreshGroups);
}

start().catch((e: unknown) => {
  replace('targets', h('span', { class: 'error' }, `cannot read the admin API: ${e instanceof Error ? e.message : String(e)}`));
});
