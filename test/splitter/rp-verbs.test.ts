/**
 * The `rp` operator verbs (RecoverPoint's CLI words and key=value form, field notes "The
 * Commands") on the admin API and the CLI, and the field notes' dd seeding procedure run against
 * arraysim with the notes' own commands:
 *
 *   field notes                                                   here
 *   enable_group group=RPSyncGroup start_transfer=no              the same, `arraysim rp ...`
 *   clear_markers group=RPSyncGroup                               the same
 *   dd if=\\.\PHYSICALDRIVE## of=z:\...img bs=512k                READ(16) of 512 KiB over iSCSI into an image
 *   enable_image_access ... copy=DR_RPSyncGroup image=latest      the same (logged access)
 *   set_image_access_mode ... mode=direct                         the same
 *   dd if=z:\...img of=\\.\PHYSICALDRIVE## bs=512k                WRITE(16) of 512 KiB over iSCSI to the copy's own
 *                                                                 target, ...:rpsync-dr-rpsyncgroup LUN 0
 *   disable_image_access ... start_transfer=no                    the same: the transfer stays paused
 *   start_transfer group=RPSyncGroup                              the same: the "full volume sweep" compares digests
 *                                                                 and sends only the regions written after the dd;
 *                                                                 then verify exit 0
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pino from 'pino';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { AdminApi } from '../../src/admin/api.ts';
import { StorageArray } from '../../src/array.ts';
import { configFromFile } from '../../src/config.ts';
import { RP_VERBS, RpUsageError, parseRp, waitTransferActive } from '../../src/splitter/cli.ts';
import { WaitError } from '../../src/admin/wait.ts';
import { cdb16 } from '../helpers/cdb.ts';
import { TestInitiator } from '../helpers/initiator.ts';
import { adminCall, pattern } from './rig.ts';
import { FakeTty } from '../helpers/fake-tty.ts';

const run = promisify(execFile);
const TARGET = 'iqn.2026-11.dev.arraysim:rpsync';
const dir = mkdtempSync(join(tmpdir(), 'arraysim-rp-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const cli = (args: string[]) => run(process.execPath, ['bin/arraysim.js', ...args], { cwd: join(__dirname, '../..') })
  .then((r) => ({ code: 0, out: r.stdout, err: r.stderr }), (e) => ({ code: e.code as number, out: e.stdout as string, err: e.stderr as string }));

interface Rig { array: StorageArray; admin: AdminApi; addr: string; ini: TestInitiator; port: number }
let rig: Rig | undefined;
afterEach(async () => { rig?.ini.close(); await rig?.admin.close(); await rig?.array.stop(); rig = undefined; });

/** A target with one 16 MiB LUN in group RPSyncGroup (copy DR_RPSyncGroup), configured with the transfer not started. */
async function start(): Promise<Rig> {
  const yaml = join(dir, `rp${Math.random()}.yaml`);
  writeFileSync(yaml, `portals: [{listen: "127.0.0.1:0"}]
targets:
  - name: ${TARGET}
    luns: [16MiB]
splitters:
  - {name: vnx, spec: rp-vnx-flare31}
groups:
  - {name: RPSyncGroup, splitter: vnx, copies: [DR_RPSyncGroup], startTransfer: false}
`);
  const config = configFromFile(yaml);
  const log = pino({ level: 'silent' });
  const array = await StorageArray.create(config, log);
  await array.start();
  const admin = new AdminApi(array, log);
  const addr = `127.0.0.1:${await admin.listen('127.0.0.1', 0)}`;
  const ini = await TestInitiator.connect(config.portals[0].port);
  await ini.login(TARGET, { MaxRecvDataSegmentLength: '262144', FirstBurstLength: '262144', MaxBurstLength: '16776192' }, 'iqn.2026-11.dev.arraysim:utility');
  await ini.scsi(0, [0x00, 0, 0, 0, 0, 0]);
  return { array, admin, addr, ini, port: config.portals[0].port };
}

const BS = 512;
const DD = 512 << 10; // bs=512k, the field notes' sweet spot

async function hostWrite(ini: TestInitiator, lba: number, data: Buffer): Promise<void> {
  expect((await ini.scsi(0, cdb16(0x8a, lba, data.length / BS), { write: data })).status).toBe(0);
}

describe('arraysim rp: arguments', () => {
  it('unknown verbs, keys and values are errors that name them; required keys are required', () => {
    const err = (v: string, a: string[]) => { try { parseRp(v, a); return ''; } catch (e) { expect(e).toBeInstanceOf(RpUsageError); return (e as Error).message; } };
    expect(err('enable_groop', ['group=G'])).toMatch(/unknown verb "enable_groop"/);
    expect(err('enable_group', ['group=G', 'start_transfr=no'])).toMatch(/unknown key "start_transfr" \(keys: group, start_transfer\)/);
    expect(err('enable_group', ['group=G', 'start_transfer=maybe'])).toMatch(/start_transfer=maybe: start_transfer is yes or no/);
    expect(err('clear_markers', [])).toMatch(/key "group" is required/);
    expect(err('bookmark', ['group=G'])).toMatch(/key "name" is required/);
    expect(err('start_transfer', ['group=G', 'group=H'])).toMatch(/key "group" given twice/);
    expect(err('start_transfer', ['group'])).toMatch(/"group" is not key=value/);
    expect(err('set_image_access_mode', ['group=G', 'mode=sideways'])).toMatch(/mode=sideways: mode is logged or direct/);
    expect(parseRp('enable_group', ['group=RPSyncGroup', 'start_transfer=no'])).toMatchObject({ group: 'RPSyncGroup', body: { start_transfer: 'no' } });
    expect(Object.keys(RP_VERBS)).toEqual(['enable_group', 'disable_group', 'clear_markers', 'start_transfer', 'pause_transfer', 'bookmark',
      'get_group_state', 'enable_image_access', 'disable_image_access', 'set_image_access_mode', 'disable_copy', 'enable_copy']);
  });
});

describe('the rp verbs on the admin API', () => {
  it('state errors are 409, bad fields 400 naming them, unknown groups 404', async () => {
    rig = await start();
    const g = '/v1/groups/RPSyncGroup';
    expect(await adminCall(rig.addr, 'POST', `${g}/enable_group`, { start_transfer: 'maybe' })).toMatchObject({ status: 400, json: { field: 'start_transfer' } });
    expect(await adminCall(rig.addr, 'POST', `${g}/enable_group`, { colour: 'red' })).toMatchObject({ status: 400, json: { field: 'colour' } });
    expect((await adminCall(rig.addr, 'POST', '/v1/groups/nope/start_transfer', {})).status).toBe(404);
    expect(await adminCall(rig.addr, 'POST', `${g}/clear_markers`, { copy: 'local' })).toMatchObject({ status: 404, json: { error: expect.stringMatching(/no copy "local"/) } });
    const on = await adminCall(rig.addr, 'POST', `${g}/start_transfer`, {});
    expect(on).toMatchObject({ status: 200, json: { verb: 'start_transfer' } });
    await rig.array.groups.get('RPSyncGroup')!.ready();
    expect(await adminCall(rig.addr, 'POST', `${g}/clear_markers`, {})).toMatchObject({ status: 409, json: { error: expect.stringMatching(/needs it paused/) } });
    expect(await adminCall(rig.addr, 'POST', `${g}/enable_group`, { start_transfer: 'no' })).toMatchObject({ status: 409 });
    expect(await adminCall(rig.addr, 'POST', `${g}/pause_transfer`, {})).toMatchObject({ status: 200, json: { group: { transfer: 'paused' } } });
    expect(await adminCall(rig.addr, 'POST', `${g}/disable_group`, {})).toMatchObject({ status: 200, json: { group: { state: 'disabled', markers: [{ fullSweep: true }] } } });
    expect(await adminCall(rig.addr, 'POST', `${g}/start_transfer`, {})).toMatchObject({ status: 409, json: { error: expect.stringMatching(/disabled: enable_group first/) } });
    for (const v of ['enable_image_access', 'disable_image_access', 'set_image_access_mode', 'disable_copy', 'enable_copy']) {
      expect(await adminCall(rig.addr, 'POST', `${g}/${v}`, {})).toMatchObject({ status: 400, json: { field: 'copy' } });
    }
    expect(await adminCall(rig.addr, 'POST', `${g}/disable_image_access`, { copy: 'DR_RPSyncGroup' })).toMatchObject({ status: 409, json: { error: expect.stringMatching(/no image access/) } });
  });
});

describe('rp start_transfer --wait: the initialization with its progress', () => {

  it('waits for the transfer to be active; a full sweep shows regions compared (no total); paused ends the wait', async () => {
    rig = await start();
    for (let i = 0; i < 8; i++) await hostWrite(rig.ini, i * (DD / BS), pattern(DD, i));
    // Nobody started the transfer: waiting on it would never end, so the wait says why at once.
    await expect(waitTransferActive(rig.addr, 'RPSyncGroup', { stream: new FakeTty(false) })).rejects.toThrow(WaitError);
    await expect(waitTransferActive(rig.addr, 'RPSyncGroup', { stream: new FakeTty(false) })).rejects.toThrow(/transfer paused/);
    expect((await adminCall(rig.addr, 'POST', '/v1/groups/RPSyncGroup/start_transfer', {})).status).toBe(200);
    const tty = new FakeTty(true, 120);
    const g = await waitTransferActive(rig.addr, 'RPSyncGroup', { stream: tty, delayMs: 0, intervalMs: 0, pollMs: 5, timeoutMs: 60_000 });
    expect(g).toMatchObject({ transfer: 'active', initialization: { kind: 'full-sweep', done: true } });
    expect(g.initialization.regionsCompared).toBeGreaterThanOrEqual(4); // 4 MiB written, 1 MiB regions
    expect(tty.out).toMatch(/^\r\x1b\[2Kinitialize RPSyncGroup [|/\\-] /);
    expect(tty.out.endsWith('\r\x1b[2K')).toBe(true);
  }, 60_000);

  it('--wait is refused with a verb that starts nothing', async () => {
    const r = await cli(['rp', 'pause_transfer', 'group=G', '--wait', '--admin', '127.0.0.1:1']);
    expect(r).toMatchObject({ code: 2, out: '' });
    expect(r.err).toMatch(/--wait goes with start_transfer/);
  }, 60_000);
});

describe('the field notes\' dd seeding procedure (RecoverPoint Initial Synchronization with DD)', () => {
  it('runs verbatim: the reverse dd goes through direct image access; start_transfer sends only what changed after the dd; verify passes', async () => {
    rig = await start();
    const { ini, addr } = rig;
    const group = rig.array.groups.get('RPSyncGroup')!;
    const rp = (...a: string[]) => cli(['rp', ...a, '--admin', addr]);
    // 1. "confirm that all the data has first been migrated": 12 MiB of data on the production volume.
    for (let i = 0; i < 24; i++) await hostWrite(ini, i * (DD / BS), pattern(DD, i));
    // 2. The group is configured with the transfer not started.
    let r = await rp('enable_group', 'group=RPSyncGroup', 'start_transfer=no');
    expect(r, r.err).toMatchObject({ code: 0 });
    expect(r.out).toMatch(/transfer paused/);
    expect(r.out).toMatch(/copy DR_RPSyncGroup: .*full sweep due/);
    // 3. clear_markers group=RPSyncGroup (no copy=: every copy).
    r = await rp('clear_markers', 'group=RPSyncGroup');
    expect(r, r.err).toMatchObject({ code: 0 });
    expect(r.out).toMatch(/copy DR_RPSyncGroup: .*markers: 0 regions/);
    // 4. dd if=\\.\PHYSICALDRIVE## of=z:\PHYSICALDRIVE##.img bs=512k: read the volume over iSCSI.
    const blocks = 16 * 2048;
    const image = Buffer.alloc(blocks * BS);
    for (let lba = 0; lba < blocks; lba += DD / BS) {
      const rd = await ini.scsi(0, cdb16(0x88, lba, DD / BS), { read: DD });
      expect(rd.status).toBe(0);
      rd.data.copy(image, lba * BS);
    }
    // "between the dd on the source and the reverse dd on the secondary volume, roughly two days
    // elapsed": production keeps changing: 3 regions (two writes in region 2, one in 9, one across 12/13).
    await hostWrite(ini, 2 * 2048 + 8, pattern(8192, 100));
    await hostWrite(ini, 2 * 2048 + 800, pattern(4096, 101));
    await hostWrite(ini, 9 * 2048, pattern(65536, 102));
    await hostWrite(ini, 13 * 2048 - 4, pattern(4096, 103));
    // 6. enable_image_access ... image=latest ("after access goes to logged access, enable direct access").
    r = await rp('enable_image_access', 'group=RPSyncGroup', 'copy=DR_RPSyncGroup', 'image=latest');
    expect(r, r.err).toMatchObject({ code: 0 });
    expect(r.out).toMatch(/image access: logged-access to latest/);
    r = await rp('set_image_access_mode', 'group=RPSyncGroup', 'copy=DR_RPSyncGroup', 'mode=direct');
    expect(r, r.err).toMatchObject({ code: 0 });
    expect(r.out).toMatch(/image access: direct-access to latest/);
    // 7. dd if=z:\PHYSICALDRIVE##.img of=\\.\PHYSICALDRIVE## bs=512k: through the copy's own target.
    const dr = await TestInitiator.connect(rig.port);
    dr.isid = Buffer.from([0x80, 0x12, 0x34, 0x56, 0x7b, 0x01]);
    await dr.login(`${TARGET}-dr-rpsyncgroup`, { MaxRecvDataSegmentLength: '262144', FirstBurstLength: '262144', MaxBurstLength: '16776192' }, 'iqn.2026-11.dev.arraysim:utility-dr');
    await dr.scsi(0, [0x00, 0, 0, 0, 0, 0]); // power-on unit attention
    try {
      for (let o = 0; o < image.length; o += DD) {
        expect((await dr.scsi(0, cdb16(0x8a, o / BS, DD / BS), { write: image.subarray(o, o + DD) })).status).toBe(0);
      }
    } finally {
      dr.close();
    }
    // 8. disable_image_access ... start_transfer=no: the transfer stays paused; start_transfer.
    r = await rp('disable_image_access', 'group=RPSyncGroup', 'copy=DR_RPSyncGroup', 'start_transfer=no');
    expect(r, r.err).toMatchObject({ code: 0 });
    expect(r.out).toMatch(/transfer paused/);
    expect(r.out).toMatch(/copy DR_RPSyncGroup: .*full sweep due/);
    r = await rp('start_transfer', 'group=RPSyncGroup');
    expect(r, r.err).toMatchObject({ code: 0 });
    await group.ready();
    // "Monitor the consistency group. The traffic you see will be the changes to the source volume
    // since the block-level dd copy was made": 4 regions of 1 MiB of a 16 MiB volume.
    r = await rp('get_group_state', 'group=RPSyncGroup');
    expect(r, r.err).toMatchObject({ code: 0 });
    expect(r.out).toMatch(/transfer active/);
    expect(r.out).toMatch(/initialization \(full-sweep\): 4\.0 MiB of 16\.0 MiB sent \(25\.00%\), 4 regions of \d+ compared, done/);
    expect(group.status().initialization).toMatchObject({ kind: 'full-sweep', regions: 4, regionsCompared: 14, bytesSent: 4 << 20, volumeBytes: 16 << 20, percent: 25, done: true });
    r = await cli(['verify', '--group', 'RPSyncGroup', '--admin', addr]);
    expect(r, r.err).toMatchObject({ code: 0 });
    expect(r.out).toMatch(/copy DR_RPSyncGroup: consistent/);
    // bookmark and get_group_state as the CLI prints them.
    r = await rp('bookmark', 'group=RPSyncGroup', 'name=seeded');
    expect(r.out).toMatch(/bookmark seeded at journal seq \d+/);
    r = await rp('bookmark', 'group=RPSyncGroup', 'nam=seeded');
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/unknown key "nam"/);
  }, 180_000); // eleven CLI processes on a shared 2-core VM
});
