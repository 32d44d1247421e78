/**
 * Restarts of arrays on file volumes, both as `arraysim serve` processes killed with SIGKILL, no
 * witness: the group's metadata file (src/replication/group-meta.ts) brings back the role, the
 * epoch and the dirty map, so the resync after the restart sends only the regions written during
 * the outage, and a restarted array never serves data older than an acknowledged write. Every
 * case ends with a byte comparison of the two volume files. On the code before the metadata file,
 * the primary killed during an outage forgot its dirty map (dirtyBlocks 0 after the restart, then
 * a whole copy of the volume), and the old primary of a reversed group came back primary with
 * epoch 0 and served its stale blocks.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { adminCall } from '../../src/admin/client.ts';
import { freePort } from '../../src/check/cluster.ts';
import { AL_EXTENT_BYTES, encodeAl } from '../../src/replication/activity-log.ts';
import { ScsiDevice } from '../../src/initiator/index.ts';
import { ServeProcess } from './serve-process.ts';
import { block, senseOf, settled, until } from './pair.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const TARGET = 'iqn.2026-12.dev.arraysim:persist';
const VOLUME_BYTES = 16 * 1024 * 1024;
const LUN = { naa: '502a7510000a0e01', serial: 'ASIMPERSIST1' };
/** The outage's writes: distinct 4 KiB regions (8 blocks of 512 bytes), scattered over the volume. */
const OUTAGE = Array.from({ length: 40 }, (_, i) => BigInt(((i * 7919) % 4000) * 8));
const OUTAGE_BYTES = OUTAGE.length * 4096;

const cleanup: (() => Promise<unknown> | void)[] = [];
afterAll(async () => { for (const f of cleanup.reverse()) await f(); });

interface GroupStatus {
  role: string; epoch: number; status: string; link: string; serving: boolean; dirtyBlocks: string;
  stats: { lastResyncBytes: number; resyncBytes: number };
  meta: { file: string | null; load: string; flushes: number; error: string | null };
}

class Site {
  constructor(readonly name: 'A' | 'B', readonly host: string, readonly iscsi: number, readonly admin: number, readonly yaml: string, readonly volume: string) {
    this.server = new ServeProcess(name, yaml, `${host}:${admin}`, (kill) => cleanup.push(kill));
  }

  readonly server: ServeProcess;
  get base(): string { return `${this.host}:${this.admin}`; }
  get metaFile(): string { return `${this.volume}.rcopy-rcg1.meta`; }
  get err(): string { return this.server.err; }
  start(): Promise<void> { return this.server.start(() => this.group()); }
  kill(signal?: NodeJS.Signals): Promise<void> { return this.server.kill(signal); }

  async group(): Promise<GroupStatus> {
    const s = await adminCall(this.base, 'GET', '/v1/rcopy/groups') as { groups: GroupStatus[] };
    return s.groups[0];
  }

  async link(action: 'cut' | 'restore'): Promise<void> { await adminCall(this.base, 'POST', '/v1/rcopy/link', { body: { action } }); }

  async until(f: (g: GroupStatus) => boolean, what: string, ms = 30_000): Promise<GroupStatus> {
    const end = Date.now() + ms;
    let g = await this.group();
    while (!f(g)) {
      if (Date.now() > end) throw new Error(`site ${this.name}: ${what}; last ${JSON.stringify(g)}; log ${this.err.slice(-1500)}`);
      await new Promise((r) => setTimeout(r, 100));
      g = await this.group();
    }
    return g;
  }

  async open(): Promise<ScsiDevice> {
    const d = await ScsiDevice.open(`iscsi://${this.host}:${this.iscsi}/${TARGET}/0`);
    cleanup.push(() => d.close().catch(() => {}));
    await d.clearUnitAttentions();
    return d;
  }
}

/** Site A (127.0.1.1, primary) and site B (127.0.2.1, secondary) on file volumes in a scratch folder, started and Synced. */
async function startPair(): Promise<{ a: Site; b: Site }> {
  const dir = mkdtempSync(path.join(tmpdir(), 'arraysim-persist-'));
  const ports = async (host: string) => ({ iscsi: await freePort(host), admin: await freePort(host), link: await freePort(host) });
  const pa = await ports('127.0.1.1'), pb = await ports('127.0.2.1');
  const site = (name: 'A' | 'B', host: string, p: typeof pa, tpgt: number): Site => {
    const volume = path.join(dir, `${name.toLowerCase()}.img`);
    const yaml = path.join(dir, `site-${name.toLowerCase()}.yaml`);
    writeFileSync(yaml, [
      `portals: [{listen: "${host}:${p.iscsi}", tpgt: ${tpgt}}]`,
      `targets: [{name: ${TARGET}, luns: [{spec: "file:${volume},size=${VOLUME_BYTES}", naa: "${LUN.naa}", serial: ${LUN.serial}}]}]`,
      name === 'A' ? `peers: {name: site-a, listen: "${host}:${p.link}", peer: "127.0.2.1:${pb.link}"}` : `peers: {name: site-b, listen: "${host}:${p.link}"}`,
      `rcopy: {groups: [{name: rcg1, role: ${name === 'A' ? 'primary' : 'secondary'}, volumes: [{target: ${TARGET}, lun: 0}], policies: [active_active]}]}`,
      'log: {level: info}', '',
    ].join('\n'));
    return new Site(name, host, p.iscsi, p.admin, yaml, volume);
  };
  const a = site('A', '127.0.1.1', pa, 1), b = site('B', '127.0.2.1', pb, 2);
  await b.start();
  await a.start();
  await b.until((g) => g.status === 'Synced', 'Synced at start');
  return { a, b };
}

async function writeOutage(d: ScsiDevice, tag: string): Promise<Map<bigint, Buffer>> {
  const want = new Map<bigint, Buffer>();
  for (const lba of OUTAGE) {
    const data = block(`${tag} ${lba}`, 8);
    expect(senseOf(await settled(() => d.write(lba, data)))).toBe('good');
    want.set(lba, data);
  }
  return want;
}

/**
 * The outage: the link is cut at B (so a restarted A cannot undo it), A serves alone and is
 * written `OUTAGE` through, then killed. Returns the writes A acknowledged.
 */
async function outageThenKillA(a: Site, b: Site, tag: string, before?: (d: ScsiDevice) => Promise<void>): Promise<Map<bigint, Buffer>> {
  const da = await a.open();
  await before?.(da);
  await b.link('cut');
  await a.until((g) => g.link === 'down' && g.serving, 'A serves alone after the cut');
  const want = await writeOutage(da, tag);
  await da.close().catch(() => {});
  await a.kill();
  return want;
}

/** Both volume files hold the same bytes, and those bytes include every acknowledged write. */
function sameVolumes(a: Site, b: Site, want: Map<bigint, Buffer>): void {
  const va = readFileSync(a.volume), vb = readFileSync(b.volume);
  expect(va.length).toBe(VOLUME_BYTES);
  let firstDiff = -1;
  if (!va.equals(vb)) for (let i = 0; i < va.length; i++) if (va[i] !== vb[i]) { firstDiff = i; break; }
  expect(firstDiff, 'first byte where the two volume files differ').toBe(-1);
  for (const [lba, data] of want) expect(va.subarray(Number(lba) * 512, Number(lba) * 512 + data.length).equals(data), `LBA ${lba}`).toBe(true);
}

/** The primary finishes a resync that sent `bytes`, the other array is Synced, and the two volume files are equal. */
async function resynced(primary: Site, other: Site, want: Map<bigint, Buffer>, bytes: number): Promise<void> {
  const g = await primary.until((x) => x.status === 'Synced' && x.stats.lastResyncBytes > 0, 'Synced after the restart');
  expect(g.stats.lastResyncBytes, 'bytes the resync sent').toBe(bytes);
  await other.until((x) => x.status === 'Synced', 'Synced');
  sameVolumes(primary, other, want);
}

async function readsBack(d: ScsiDevice, want: Map<bigint, Buffer>): Promise<void> {
  for (const [lba, data] of want) {
    const r = await settled(() => d.read(lba, 8));
    expect(r.kind === 'good' && r.value.equals(data), `LBA ${lba} through the restarted array`).toBe(true);
  }
}

describe('restarts on file volumes keep the group\'s role, epoch and dirty map (SIGKILL, no witness)', () => {
  it('primary killed during an outage with writes: it comes back with its dirty map, serves them, and resends only them', async () => {
    const { a, b } = await startPair();
    const want = await outageThenKillA(a, b, 'outage', async (d) => { expect(senseOf(await settled(() => d.write(100n, block('while Synced', 8))))).toBe('good'); });
    want.set(100n, block('while Synced', 8));
    await a.start();
    // Before the link is back: A restored its dirty map from the file and serves the writes.
    const g = await a.group();
    expect(g.dirtyBlocks, 'dirty blocks after the restart').toBe(String(OUTAGE.length * 8));
    expect(g).toMatchObject({ role: 'primary', epoch: 0, link: 'down', serving: true });
    expect(g.meta.load).toBe('restored with its dirty map');
    await readsBack(await a.open(), want);
    await b.link('restore');
    await resynced(a, b, want, OUTAGE_BYTES);
  }, 120_000);

  it('both arrays killed after an outage with writes: the resync sends only the outage\'s regions', async () => {
    const { a, b } = await startPair();
    const want = await outageThenKillA(a, b, 'both');
    await b.kill();
    await b.start();
    await a.start();
    await resynced(a, b, want, OUTAGE_BYTES);
  }, 120_000);

  it('secondary killed, writes go on at the primary alone, secondary restarted: only those regions are resent', async () => {
    const { a, b } = await startPair();
    const da = await a.open();
    await b.kill();
    await a.until((g) => g.link === 'down' && g.serving, 'A serves alone after B died');
    const want = await writeOutage(da, 'secondary down');
    await b.start();
    await resynced(a, b, want, OUTAGE_BYTES);
    expect((await b.group()).role).toBe('secondary');
  }, 120_000);

  it('reversed group: the old primary killed during an outage comes back secondary with the epoch, serves nothing stale, and gets only the dirty regions', async () => {
    const { a, b } = await startPair();
    await adminCall(a.base, 'POST', '/v1/rcopy/groups/rcg1/reverse');
    await b.until((g) => g.role === 'primary' && g.status === 'Synced', 'B primary after reverse');
    let da = await a.open();
    expect(senseOf(await settled(() => da.write(8n, block('old, through A', 8))))).toBe('good');
    await b.link('cut');
    await b.until((g) => g.link === 'down' && g.serving, 'B serves alone after the cut');
    const db = await b.open();
    const want = await writeOutage(db, 'B alone');
    expect(senseOf(await settled(() => db.write(8n, block('new, through B', 8))))).toBe('good');
    want.set(8n, block('new, through B', 8));
    await da.close().catch(() => {});
    await a.kill();
    await a.start();
    da = await a.open();
    // Not the stale 'old, through A': not served at all until A is Synced again.
    const stale = await settled(() => da.read(8n, 8));
    expect(stale.kind === 'good' && stale.value.equals(block('old, through A', 8)), 'A served the block B overwrote').toBe(false);
    expect(senseOf(stale)).toBe('02/04/0c');
    expect(await a.group()).toMatchObject({ role: 'secondary', epoch: 1, serving: false, meta: { load: 'restored' } });
    await b.link('restore');
    await resynced(b, a, want, OUTAGE_BYTES + 4096);
    await readsBack(da, want);
  }, 120_000);

  it('primary stopped with SIGTERM while Synced resends nothing; killed with SIGKILL while Synced and idle, its empty activity log resends nothing; without the log it copies the group whole', async () => {
    const { a, b } = await startPair();
    const da = await a.open();
    const want = new Map([[24n, block('Synced, before SIGTERM', 8)]]);
    expect(senseOf(await settled(() => da.write(24n, want.get(24n)!)))).toBe('good');
    await da.close().catch(() => {});
    await a.kill('SIGTERM');
    await a.start();
    expect((await a.group()).meta.load).toBe('restored with its dirty map');
    let g = await a.until((x) => x.status === 'Synced', 'Synced after the SIGTERM restart');
    expect(g.stats.resyncBytes, 'bytes resent after a clean stop').toBe(0);
    await b.until((x) => x.status === 'Synced', 'B Synced');
    sameVolumes(a, b, want);
    // Killed while Synced and idle: the activity log names no extent, nothing is resent.
    await a.kill();
    await a.start();
    expect((await a.group()).meta.load).toBe('restored with its activity log (0 extent(s))');
    g = await a.until((x) => x.status === 'Synced', 'Synced after the SIGKILL restart');
    expect(g.stats.resyncBytes).toBe(0);
    // Without a log (an older arraysim's files): nothing names the writes that may have been in flight.
    await a.kill();
    rmSync(`${a.metaFile}.al`);
    await a.start();
    expect((await a.group()).meta.load).toMatch(/^restored \(Synced when it stopped, activity log missing: copy the group whole/);
    g = await a.until((x) => x.status === 'Synced', 'Synced after the SIGKILL restart without a log');
    expect(g.stats.resyncBytes).toBe(VOLUME_BYTES);
    sameVolumes(a, b, want);
  }, 120_000);

  /**
   * Host writes at QD8 into the first 4 MiB extent until A is killed; returns the acknowledged
   * ones once the two volume files differ right after the kill (writes A applied that B never
   * got: what the restart must resend), trying again (more writes, another kill) if they do not.
   * Writes go to B 20 ms late, so the kill almost always lands with some A applied and B did not.
   */
  async function killMidWrites(a: Site, b: Site, tag: string): Promise<Map<bigint, Buffer>> {
    const want = new Map<bigint, Buffer>();
    for (let attempt = 0; attempt < 4; attempt++) {
      if (attempt) { await a.start(); await a.until((x) => x.status === 'Synced', 'Synced before another try'); }
      const d = await a.open();
      // 20 ms added to what A sends: each write A applies stays unapplied on B for at least that
      // long, so a kill lands with writes in flight however loaded the machine is (a restart
      // brings a clean link back). Without it, a busy CI machine caught none in four kills.
      await adminCall(a.base, 'POST', '/v1/rcopy/link', { body: { latencyMs: 20 } });
      let stop = false;
      let next = attempt * 1024;
      const writers = Array.from({ length: 8 }, async () => {
        while (!stop) {
          const slot = next++ % 1024;
          const lba = BigInt(slot * 8);
          const data = block(`${tag} ${attempt} ${slot} ${next}`, 8);
          want.delete(lba); // until acknowledged, either the old data or this may be there
          try {
            const r = await d.write(lba, data);
            if (r.kind === 'good') want.set(lba, data);
          } catch { return; }
        }
      });
      await new Promise((r) => setTimeout(r, 400));
      await a.kill();
      stop = true;
      await Promise.all(writers);
      await d.close().catch(() => {});
      if (!readFileSync(a.volume).equals(readFileSync(b.volume))) return want;
    }
    throw new Error('four kills mid-writes and the volumes were equal each time: no write in flight was caught');
  }

  it('primary killed (SIGKILL) while Synced with writes in flight: it resends the extents of its activity log, not the group, and the volumes end equal; a log emptied before the restart leaves them different (negative control)', async () => {
    const { a, b } = await startPair();
    const want = await killMidWrites(a, b, 'in flight');
    await a.start();
    const g = await a.group();
    expect(g.meta.load).toBe('restored with its activity log (1 extent(s))');
    await resynced(a, b, want, AL_EXTENT_BYTES);
    expect(AL_EXTENT_BYTES).toBeLessThan(VOLUME_BYTES);

    // Negative control: the same kill, then the log replaced by an empty one: nothing is resent.
    const lost = await killMidWrites(a, b, 'forgotten');
    writeFileSync(`${a.metaFile}.al`, encodeAl([AL_EXTENT_BYTES / 512], [], false));
    await a.start();
    expect((await a.group()).meta.load).toBe('restored with its activity log (0 extent(s))');
    await a.until((x) => x.status === 'Synced', 'Synced after the restart with the emptied log');
    await b.until((x) => x.status === 'Synced', 'B Synced');
    expect(lost.size).toBeGreaterThan(0);
    expect(readFileSync(a.volume).equals(readFileSync(b.volume)), 'volumes after a restart whose log forgot the writes in flight').toBe(false);
  }, 180_000);

  it('a corrupt metadata file is not trusted: the primary does not serve alone, and the group is copied whole', async () => {
    const { a, b } = await startPair();
    const want = await outageThenKillA(a, b, 'corrupt');
    const m = readFileSync(a.metaFile);
    m[m.length - 10] ^= 0x5a; // a bitmap byte: the checksum no longer matches
    writeFileSync(a.metaFile, m);
    await a.start();
    const g = await a.group();
    expect(g.meta.load).toMatch(/^unreadable \(checksum mismatch\)/);
    expect(g).toMatchObject({ role: 'primary', serving: false });
    const d2 = await a.open();
    expect(senseOf(await settled(() => d2.read(OUTAGE[0], 8)))).toBe('02/04/0c');
    await b.link('restore');
    await resynced(a, b, want, VOLUME_BYTES);
    await readsBack(d2, want);
  }, 120_000);
});
