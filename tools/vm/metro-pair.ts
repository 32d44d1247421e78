/**
 * The metro pair for the VM test (tools/vm/metro-test.sh, guest-tests/metro.sh): site A (primary),
 * site B (secondary) and the quorum witness, started as `lab up --topology metro` starts them
 * (src/check/cluster.ts's Site and Witness: lab up's command lines, its YAML with the volume on a
 * file), but all on 127.0.0.1, the one host address a QEMU slirp guest reaches (as 10.0.2.2), on
 * ports from one base, and a small HTTP control API for the guest, which runs fio and asks for the
 * faults when it wants them, so that its own clock times every stall.
 *
 *   node --import tsx tools/vm/metro-pair.ts --dir DIR [--port P] [--size 256MiB]
 *   (not through npx: SIGTERM must reach this process, which stops the arrays and the witness)
 *
 * Ports: iSCSI A P, B P+1; admin A P+2, B P+3; link A P+4, B P+5; witness P+6; control P+9.
 * Prints `metro-pair ready {json}` once both arrays report the group Synced; SIGTERM stops all.
 *
 * Control API (127.0.0.1:P+9; every answer is JSON with `at`, the host's clock in ms, and `load`, its 1-minute load average):
 *   GET  /state                    each array's view of the group (role, SyncStatus, link, serving)
 *   POST /link/cut | /link/restore the replication link, on the primary's admin API
 *   POST /kill/primary             SIGKILL the array that is primary now (answers which)
 *   POST /start/A | /start/B       start a killed array again (same file, same configuration)
 *   POST /wait/failover?timeout=S  until the surviving array is primary and serving
 *   POST /wait/synced?timeout=S    until both arrays report Synced (and their resync figures)
 *   POST /compare                  both volume files byte for byte (src/lab/metro/volumes.ts), sha256 of each
 *   POST /corrupt?lba=N            negative control: flip one byte of B's volume file behind the array
 */
import { createHash } from 'node:crypto';
import { mkdirSync, openSync, readSync, closeSync, writeFileSync, writeSync, createReadStream } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { checkPlan, Site, siteYaml, Witness } from '../../src/check/cluster.ts';
import type { SiteAddresses, SiteName } from '../../src/check/cluster.ts';
import { History } from '../../src/check/history.ts';
import { LAB_GROUP } from '../../src/lab/topology.ts';
import { compareVolumes } from '../../src/lab/metro/volumes.ts';
import { parseSize } from '../../src/store/lun-spec.ts';

const HOST = '127.0.0.1';
const { values: opt } = parseArgs({ options: { dir: { type: 'string' }, port: { type: 'string', default: '3500' }, size: { type: 'string', default: '256MiB' } } });
if (!opt.dir) { process.stderr.write('usage: metro-pair.ts --dir DIR [--port P] [--size 256MiB]\n'); process.exit(2); }
const dir = path.resolve(opt.dir);
const P = Number(opt.port);
const volumeBytes = parseSize(opt.size!);
mkdirSync(dir, { recursive: true });

const t0 = Date.now();
const log = (s: string) => process.stderr.write(`metro-pair ${((Date.now() - t0) / 1000).toFixed(3)}: ${s}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const history = new History();
history.onNote = (e) => { if (e.type === 'array') log(`site ${e.site}: ${JSON.stringify(e.event)}`); };

const addr = (i: number): SiteAddresses => ({ host: HOST, iscsi: P + i, admin: P + 2 + i, link: P + 4 + i });
const witness = new Witness({ host: HOST, port: P + 6 }, path.join(dir, 'witness.log'));
if (!(await witness.start())) { log('the witness did not start (see witness.log)'); process.exit(1); }
const plan = checkPlan('metro', addr(0), addr(1), witness.listen);
const make = (n: SiteName, a: SiteAddresses) => {
  const cfg = path.join(dir, `site-${n.toLowerCase()}.yaml`);
  const vol = path.join(dir, `site-${n.toLowerCase()}.img`);
  writeFileSync(cfg, siteYaml(plan, n, vol, volumeBytes));
  return new Site(n, a, plan.target, cfg, vol, path.join(dir, `site-${n.toLowerCase()}.log`), history, {});
};
const sites = { A: make('A', addr(0)), B: make('B', addr(1)) };

interface GroupView { name: string; role: string; roleName: string; status: string; link: string; serving: boolean; epoch: number; stats: Record<string, number>; witness: { recorded: string | null } | null }
async function group(s: Site): Promise<GroupView | null> {
  if (!s.running) return null;
  try {
    return (await s.admin('GET', '/v1/rcopy/groups') as { groups: GroupView[] }).groups.find((g) => g.name === LAB_GROUP) ?? null;
  } catch { return null; }
}
const brief = (g: GroupView | null) => (g ? { role: g.roleName, status: g.status, link: g.link, serving: g.serving, epoch: g.epoch } : null);
async function state() { return { A: brief(await group(sites.A)), B: brief(await group(sites.B)) }; }

/** Poll `test` every 100 ms until it returns a value or `timeoutS` passes; the answer says how long it took. */
async function until<T>(timeoutS: number, test: () => Promise<T | null>): Promise<{ ok: boolean; ms: number; value: T | null }> {
  const start = Date.now();
  for (;;) {
    const v = await test();
    if (v !== null || Date.now() - start > timeoutS * 1000) return { ok: v !== null, ms: Date.now() - start, value: v };
    await sleep(100);
  }
}
/**
 * Both arrays Synced with the link up, and Synced as the witness has recorded it: until then it
 * would refuse a failover (the primary's last report said not Synced, so it may have written
 * alone), and a primary failure is the test's next fault.
 */
async function bothSynced(): Promise<[GroupView, GroupView] | null> {
  const [a, b] = [await group(sites.A), await group(sites.B)];
  const done = (g: GroupView | null) => g?.status === 'Synced' && g.link === 'up' && g.witness?.recorded === 'Synced';
  return done(a) && done(b) ? [a!, b!] : null;
}
async function primary(): Promise<Site | null> {
  for (const s of [sites.A, sites.B]) if ((await group(s))?.role === 'primary') return s;
  return null;
}
async function sha256(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
}

let killed: Site | null = null;
type Handler = (q: URLSearchParams) => Promise<Record<string, unknown>>;
const routes: Record<string, Handler> = {
  '/state': async () => state(),
  '/link/cut': async () => {
    const p = await primary();
    if (!p) throw new Error('no primary to cut the link at');
    await p.admin('POST', '/v1/rcopy/link', { action: 'cut' });
    history.fault('link', 'inject');
    return { at: p.name };
  },
  '/link/restore': async () => {
    for (const s of [sites.A, sites.B]) if (s.running) await s.admin('POST', '/v1/rcopy/link', { action: 'restore' });
    history.fault('link', 'heal');
    return {};
  },
  '/kill/primary': async () => {
    const p = await primary();
    if (!p) throw new Error('no primary to kill');
    const pid = p.proc?.pid;
    killed = p;
    await p.kill();
    history.fault(`kill ${p.name}`, 'inject');
    return { killed: p.name, pid };
  },
  '/start/A': async () => { await sites.A.start(); history.fault('kill A', 'heal'); return {}; },
  '/start/B': async () => { await sites.B.start(); history.fault('kill B', 'heal'); return {}; },
  '/wait/failover': async (q) => {
    const r = await until(Number(q.get('timeout') ?? 30), async () => {
      for (const s of [sites.A, sites.B]) {
        if (s === killed) continue;
        const g = await group(s);
        if (g?.role === 'primary' && g.serving) return s.name;
      }
      return null;
    });
    return { ok: r.ok, ms: r.ms, primary: r.value, state: await state() };
  },
  '/wait/synced': async (q) => {
    const r = await until(Number(q.get('timeout') ?? 120), bothSynced);
    const resync = r.value?.map((g) => ({ role: g.roleName, lastResyncBytes: g.stats.lastResyncBytes, lastResyncMs: g.stats.lastResyncMs, resyncBytes: g.stats.resyncBytes }));
    return { ok: r.ok, ms: r.ms, resync, state: await state() };
  },
  '/compare': async () => {
    const v = await compareVolumes(sites.A.volumePath, sites.B.volumePath);
    const [a, b] = [await sha256(sites.A.volumePath), await sha256(sites.B.volumePath)];
    return { ...v, identical: v.differing === 0 && !v.problem && a === b, sha256: { A: a, B: b } };
  },
  '/corrupt': async (q) => {
    // The negative control of the comparison and of the guest's read-back: one byte of one block
    // of B's file changed behind the array (its reads go through the same page cache).
    const off = Number(q.get('lba') ?? 0) * 512 + 100;
    const fd = openSync(sites.B.volumePath, 'r+');
    try {
      const b = Buffer.alloc(1);
      readSync(fd, b, 0, 1, off);
      b[0] ^= 0xff;
      writeSync(fd, b, 0, 1, off);
    } finally { closeSync(fd); }
    history.fault('corrupt B', 'inject', `byte ${off}`);
    return { corrupted: 'B', byte: off };
  },
};

const server = http.createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://control');
  const h = routes[url.pathname];
  const reply = (code: number, body: Record<string, unknown>) => {
    const text = JSON.stringify({ ...body, at: Date.now(), load: Number(os.loadavg()[0].toFixed(1)) });
    log(`${req.method} ${req.url} -> ${code} ${text}`);
    res.writeHead(code, { 'content-type': 'application/json', connection: 'close' }).end(`${text}\n`);
  };
  if (!h) { reply(404, { error: `no route ${url.pathname}` }); return; }
  req.resume();
  h(url.searchParams).then((b) => reply(200, b), (e: Error) => reply(500, { error: e.message }));
});

let stopping = false;
async function stopAll(code: number): Promise<never> {
  if (!stopping) {
    stopping = true;
    server.close();
    await Promise.all([sites.A.stop(), sites.B.stop()]);
    await witness.kill('SIGTERM');
    writeFileSync(path.join(dir, 'timeline.json'), `${JSON.stringify(history.entries.filter((e) => e.type !== 'invoke'), null, 1)}\n`);
  }
  process.exit(code);
}
process.on('SIGTERM', () => void stopAll(0));
process.on('SIGINT', () => void stopAll(0));

try {
  await sites.B.start();
  await sites.A.start();
  const r = await until(60, bothSynced);
  if (!r.ok) throw new Error(`not Synced after 60 s: ${JSON.stringify(await state())}`);
  await new Promise<void>((resolve, reject) => { server.once('error', reject); server.listen(P + 9, HOST, resolve); });
  const ready = {
    target: plan.target, wwn: `3${plan.wwn}`, volumeBytes,
    portals: { A: `${HOST}:${P}`, B: `${HOST}:${P + 1}` }, admin: { A: sites.A.adminBase, B: sites.B.adminBase },
    witness: `${HOST}:${P + 6}`, control: `${HOST}:${P + 9}`,
    hosts: plan.hosts.map((h) => ({ iqn: h.iqn, proximity: h.proximity })),
  };
  process.stdout.write(`metro-pair ready ${JSON.stringify(ready)}\n`);
} catch (e) {
  log(`start-up failed: ${(e as Error).message}`);
  await stopAll(1);
}
