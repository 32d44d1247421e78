/**
 * GET /metrics end to end: a StorageArray with two portals and the admin API, driven over TCP by
 * the test initiator with a known mix of commands; the scrape must count exactly those commands
 * per LU, per portal and per latency class, show the session and the ALUA state the host sees,
 * and follow an ALUA change. With metrics off there is no /metrics and no latency recorder.
 */
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdminApi } from '../../src/admin/api.ts';
import { StorageArray } from '../../src/array.ts';
import type { ArrayConfig } from '../../src/config.ts';
import { cdb10, cdb16, unmapCdb, unmapParameterList } from '../helpers/cdb.ts';
import { TestInitiator } from '../helpers/initiator.ts';
import { parsePromText, samples, value } from '../helpers/prom-text.ts';
import type { Sample } from '../helpers/prom-text.ts';

const IQN = 'iqn.2026-11.dev.arraysim:metrics';
const HOST = 'iqn.2026-11.test:metrics-host';
const BS = 512;

function config(metrics: boolean): ArrayConfig {
  return {
    portals: [1, 2].map((i) => ({ host: '127.0.0.1', port: 0, tpgt: i, targetPortGroup: i })),
    targets: [{ name: IQN, luns: [{ spec: '64MiB' }, { spec: '16MiB' }] }],
    iscsi: { nopInterval: 0 },
    logLevel: 'silent',
    metrics,
  };
}

async function start(metrics: boolean): Promise<{ array: StorageArray; admin: AdminApi; adminPort: number }> {
  const log = pino({ level: 'silent' });
  const array = await StorageArray.create(config(metrics), log);
  await array.start();
  const admin = new AdminApi(array, log);
  const adminPort = await admin.listen('127.0.0.1', 0);
  return { array, admin, adminPort };
}

describe('GET /metrics', () => {
  let rig: Awaited<ReturnType<typeof start>>;
  let ini: TestInitiator;
  let portal1: string;
  let portal2: string;
  const scrape = async (): Promise<Sample[]> => {
    const r = await fetch(`http://127.0.0.1:${rig.adminPort}/metrics`);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    return parsePromText(await r.text());
  };

  beforeAll(async () => {
    rig = await start(true);
    const [p1, p2] = rig.array.config.portals;
    portal1 = `127.0.0.1:${p1.port}`;
    portal2 = `127.0.0.1:${p2.port}`;
    ini = await TestInitiator.connect(p1.port);
    await ini.login(IQN, {}, HOST);
  });
  afterAll(async () => {
    ini?.close();
    await rig?.admin.close();
    await rig?.array.stop();
  });

  it('counts the commands sent, per LU, per portal and per latency class', async () => {
    const before = await scrape();
    expect(value(before, 'arraysim_lu_commands_total', { target: IQN, lun: '0' })).toBe(0);
    expect(value(before, 'arraysim_command_duration_seconds_count', { class: 'read' })).toBe(0);

    const ok = (r: { status: number }) => expect(r.status).toBe(0);
    // The power-on unit attention: one CHECK CONDITION for the portal, not an LU error.
    expect((await ini.scsi(0, [0, 0, 0, 0, 0, 0])).status).toBe(2);
    ok(await ini.scsi(0, [0, 0, 0, 0, 0, 0]));                                        // other
    ok(await ini.scsi(0, [0x12, 0, 0, 0, 96, 0], { read: 96 }));                      // other
    for (let i = 0; i < 3; i++) ok(await ini.scsi(0, cdb10(0x2a, i * 8, 8), { write: Buffer.alloc(8 * BS, 0xa5) })); // write
    for (let i = 0; i < 5; i++) ok(await ini.scsi(0, cdb10(0x28, i * 8, 8), { read: 8 * BS }));  // read
    ok(await ini.scsi(0, cdb16(0x93, 100, 4), { write: Buffer.alloc(BS, 0x5a) }));   // vaai: WRITE SAME(16)
    const list = unmapParameterList([[100, 4]]);
    ok(await ini.scsi(0, unmapCdb(list.length), { write: list }));                     // vaai: UNMAP
    const outOfRange = await ini.scsi(0, cdb10(0x28, (64 << 20) / BS, 1), { read: BS }); // read, LBA OUT OF RANGE
    expect(outOfRange.status).toBe(2);

    const s = await scrape();
    const lu0 = { target: IQN, lun: '0' };
    expect(value(s, 'arraysim_lu_commands_total', lu0)).toBe(14);
    expect(value(s, 'arraysim_lu_io_total', { ...lu0, direction: 'read' })).toBe(5);
    expect(value(s, 'arraysim_lu_io_total', { ...lu0, direction: 'write' })).toBe(3);
    expect(value(s, 'arraysim_lu_bytes_total', { ...lu0, direction: 'read' })).toBe(5 * 8 * BS);
    expect(value(s, 'arraysim_lu_bytes_total', { ...lu0, direction: 'write' })).toBe(3 * 8 * BS);
    expect(value(s, 'arraysim_lu_errors_total', lu0)).toBe(1);
    expect(value(s, 'arraysim_lu_capacity_bytes', lu0)).toBe(64 << 20);
    expect(value(s, 'arraysim_lu_allocated_bytes', lu0)).toBeGreaterThanOrEqual(3 * 8 * BS);
    expect(value(s, 'arraysim_lu_commands_total', { target: IQN, lun: '1' })).toBe(0);

    const p1 = { portal: portal1, tpgt: '1' };
    expect(value(s, 'arraysim_portal_commands_total', p1)).toBe(14);
    expect(value(s, 'arraysim_portal_io_total', { ...p1, direction: 'read' })).toBe(5 + 1); // INQUIRY has Data-In too
    expect(value(s, 'arraysim_portal_bytes_total', { ...p1, direction: 'read' })).toBe(5 * 8 * BS + 96);
    expect(value(s, 'arraysim_portal_errors_total', p1)).toBe(2);
    expect(value(s, 'arraysim_portal_logins_total', p1)).toBe(1);
    expect(value(s, 'arraysim_portal_commands_total', { portal: portal2, tpgt: '2' })).toBe(0);

    const count = (cls: string) => value(s, 'arraysim_command_duration_seconds_count', { class: cls });
    expect([count('read'), count('write'), count('vaai'), count('other')]).toEqual([6, 3, 2, 3]);
    // Cumulative buckets, ending in +Inf = count, and a sum that is a plausible time.
    const reads = samples(s, 'arraysim_command_duration_seconds_bucket', { class: 'read' });
    for (let i = 1; i < reads.length; i++) expect(reads[i].value).toBeGreaterThanOrEqual(reads[i - 1].value);
    expect(reads.at(-1)!.labels.le).toBe('+Inf');
    expect(reads.at(-1)!.value).toBe(6);
    const sum = value(s, 'arraysim_command_duration_seconds_sum', { class: 'read' });
    expect(sum).toBeGreaterThan(0);
    expect(sum).toBeLessThan(6 * 10);
  });

  it('shows the session per portal and target, and the ALUA state the host sees, following a change', async () => {
    let s = await scrape();
    expect(value(s, 'arraysim_sessions', { portal: portal1, target: IQN, type: 'normal' })).toBe(1);
    expect(value(s, 'arraysim_sessions', { portal: portal2, target: IQN, type: 'normal' })).toBe(0);
    const state = (tpg: string) => samples(s, 'arraysim_alua_host_state', { target: IQN, tpg, host: HOST }).filter((x) => x.value === 1).map((x) => x.labels.state);
    expect(state('1')).toEqual(['active/optimized']);
    expect(state('2')).toEqual(['active/optimized']);
    expect(samples(s, 'arraysim_alua_host_state', { target: IQN, tpg: '2', host: HOST })).toHaveLength(6);

    const r = await fetch(`http://127.0.0.1:${rig.adminPort}/v1/alua`, {
      method: 'POST', body: JSON.stringify({ tpg: 2, state: 'standby', host: HOST, reason: 'metrics test', wait: true }),
    });
    expect(r.status).toBe(200);
    s = await scrape();
    expect(state('2')).toEqual(['standby']);
    expect(state('1')).toEqual(['active/optimized']);
    // The group default did not move: only this host's view.
    expect(value(s, 'arraysim_alua_group_state', { target: IQN, tpg: '2', state: 'active/optimized' })).toBe(1);

    await ini.logout();
    ini.close();
    await new Promise((res) => setTimeout(res, 50));
    s = await scrape();
    expect(value(s, 'arraysim_sessions', { portal: portal1, target: IQN, type: 'normal' })).toBe(0);
  });

  it('carries the standard process metrics beside the array ones', async () => {
    const s = await scrape();
    expect(value(s, 'process_resident_memory_bytes')).toBeGreaterThan(1 << 20);
    // Nothing named outside the arraysim_ prefix but prom-client's standard process_ and nodejs_ families.
    expect(s.filter((x) => !/^(arraysim|process|nodejs)_/.test(x.name))).toEqual([]);
  });
});

describe('metrics off', () => {
  it('no /metrics route and no latency recorder, while the admin API and the counters work as before', async () => {
    const rig = await start(false);
    try {
      expect(await rig.array.metrics()).toBeNull();
      expect(rig.array.server.commandLatency).toBeNull();
      const ini = await TestInitiator.connect(rig.array.config.portals[0].port);
      await ini.login(IQN, {}, HOST);
      await ini.scsi(0, [0, 0, 0, 0, 0, 0]);
      expect((await ini.scsi(0, cdb10(0x28, 0, 8), { read: 8 * BS })).status).toBe(0);
      ini.close();
      const m = await fetch(`http://127.0.0.1:${rig.adminPort}/metrics`);
      expect(m.status).toBe(404);
      expect(((await m.json()) as { error: string }).error).toMatch(/metrics are off/);
      const st = (await (await fetch(`http://127.0.0.1:${rig.adminPort}/v1/status`)).json()) as any;
      expect(st.targets[0].luns[0].stats).toMatchObject({ reads: 1, commands: 2 });
    } finally {
      await rig.admin.close();
      await rig.array.stop();
    }
  });
});
