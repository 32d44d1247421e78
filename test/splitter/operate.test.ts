/**
 * Operating the splitter: what the LU advertises per spec, the verify command's exit codes and
 * its negative control, the group routes, the YAML sections, the journal's size limit and
 * protection window, and the FLARE 30 pre-509 initialization failure.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pino from 'pino';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { StorageArray } from '../../src/array.ts';
import { configFromFile, configFromFlags } from '../../src/config.ts';
import { ConsistencyGroup } from '../../src/splitter/group.ts';
import { parseSplitterSpec } from '../../src/splitter/policy.ts';
import { ScsiTarget } from '../../src/scsi/target.ts';
import { ScsiStatus, TaskAttribute } from '../../src/scsi/types.ts';
import { MemoryStore } from '../../src/store/memory.ts';
import { caw16, cdb16 } from '../helpers/cdb.ts';
import { makeNexus } from '../scsi/sbc-fixture.ts';
import { xcopyCdb, xcopyList } from '../scsi/xcopy-params.ts';
import { adminCall, kcq, pattern, startSplitterArray } from './rig.ts';
import type { SplitterRig } from './rig.ts';

const run = promisify(execFile);
const HOST = 'iqn.2026-11.dev.arraysim:host-a';
const dir = mkdtempSync(join(tmpdir(), 'arraysim-operate-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let rig: SplitterRig | undefined;
afterEach(async () => { await rig?.close(); rig = undefined; });

const inquiry = (evpd: boolean, page = 0) => [0x12, evpd ? 1 : 0, page, 0x10, 0x00, 0];
const rsocOne = (op: number) => [0xa3, 0x0c, 0x01, op, 0, 0, 0, 0, 0x10, 0, 0, 0];

describe('advertising a rejected primitive', () => {
  for (const hide of [true, false]) {
    it(hide ? 'an array splitter with advertise=no hides it from INQUIRY, VPD and RSOC' : 'by default the pages still advertise it', async () => {
      rig = await startSplitterArray(`ats=reject,xcopy=reject,writesame=reject,unmap=reject${hide ? ',advertise=no' : ''}`);
      const ini = await rig.session(HOST);
      const std = await ini.scsi(0, inquiry(false), { read: 96 });
      expect((std.data[5] & 0x08) !== 0, '3PC').toBe(!hide);
      const pages = await ini.scsi(0, inquiry(true, 0x00), { read: 255 });
      expect([...pages.data.subarray(4)].includes(0x8f), 'VPD 0x8F listed').toBe(!hide);
      const tpc = await ini.scsi(0, inquiry(true, 0x8f), { read: 4096 });
      expect(tpc.status).toBe(hide ? ScsiStatus.CheckCondition : ScsiStatus.Good);
      if (hide) expect(kcq(tpc)).toEqual([0x05, 0x24, 0x00]);
      const bl = await ini.scsi(0, inquiry(true, 0xb0), { read: 64 });
      expect(bl.data[5] > 0, 'MAXIMUM COMPARE AND WRITE LENGTH').toBe(!hide);
      expect(bl.data.readUInt32BE(20) > 0, 'MAXIMUM UNMAP LBA COUNT').toBe(!hide);
      const lbp = await ini.scsi(0, inquiry(true, 0xb2), { read: 64 });
      expect(lbp.data[5] & 0xe0, 'LBPU LBPWS LBPWS10').toBe(hide ? 0 : 0xe0);
      for (const op of [0x89, 0x93, 0x41, 0x42]) {
        const r = await ini.scsi(0, rsocOne(op), { read: 4096 });
        expect(r.data[1] & 0x07, `RSOC SUPPORT of ${op.toString(16)}`).toBe(hide ? 0b001 : 0b011);
      }
      // Either way the commands are refused.
      expect(kcq(await ini.scsi(0, cdb16(0x93, 0, 1), { write: Buffer.alloc(512) }))).toEqual([0x05, 0x20, 0x00]);
    });
  }

  it('a supported primitive is advertised even with advertise=no', async () => {
    rig = await startSplitterArray('ats=support,advertise=no,xcopy=reject');
    const ini = await rig.session(HOST);
    const bl = await ini.scsi(0, inquiry(true, 0xb0), { read: 64 });
    expect(bl.data[5]).toBeGreaterThan(0);
    const std = await ini.scsi(0, inquiry(false), { read: 96 });
    expect(std.data[5] & 0x08).toBe(0);
  });
});

const cli = (args: string[]) => run(process.execPath, ['bin/arraysim.js', ...args], { cwd: join(__dirname, '../..') })
  .then((r) => ({ code: 0, out: r.stdout, err: r.stderr }), (e) => ({ code: e.code as number, out: e.stdout as string, err: e.stderr as string }));

describe('arraysim verify', () => {
  it('exit 0 consistent; a copy corrupted behind the splitter\'s back: exit 1 with the extent; no such group: exit 2', async () => {
    rig = await startSplitterArray('ats=support');
    const ini = await rig.session(HOST);
    expect((await ini.scsi(0, cdb16(0x8a, 8, 16), { write: pattern(16 * 512, 9) })).status).toBe(0);
    const ok = await cli(['verify', '--admin', rig.adminAddr]);
    expect(ok.code, ok.err).toBe(0);
    expect(ok.out).toMatch(/group default, copy local: consistent/);
    // Negative control: change the replica directly.
    await rig.group.ready();
    rig.group.copy('local').replicas[0].write(20n, Buffer.alloc(512, 0xee));
    const bad = await cli(['verify', '--admin', rig.adminAddr]);
    expect(bad.code).toBe(1);
    expect(bad.out).toMatch(/DIVERGED/);
    expect(bad.out).toMatch(/LUN 0 LBA 20-20, no ignored command touched it/);
    const json = await cli(['verify', '--admin', rig.adminAddr, '--json']);
    expect(json.code).toBe(1);
    expect(JSON.parse(json.out).diverged).toEqual([expect.objectContaining({ lun: 0, lba: '20', lbaEnd: '20', blocks: 1, causes: [] })]);
    const none = await cli(['verify', '--admin', rig.adminAddr, '--group', 'nope']);
    expect(none.code).toBe(2);
    expect(none.err).toMatch(/no consistency group "nope"/);
  }, 60_000);

  it('the issue\'s example: xcopy=ignore, a clone from LUN 0 to LUN 1, verify names the EXTENDED COPY and the host', async () => {
    rig = await startSplitterArray('xcopy=ignore');
    const ini = await rig.session(HOST);
    expect((await ini.scsi(0, cdb16(0x8a, 0, 2048), { write: pattern(2048 * 512, 1) })).status).toBe(0);
    const list = xcopyList({ cscds: rig.lus.map((lu) => ({ naa: lu.naa })), segments: [{ src: 0, dst: 1, blocks: 2048, srcLba: 0, dstLba: 0 }] });
    expect((await ini.scsi(0, xcopyCdb(list.length), { write: list })).status).toBe(0);
    const r = await cli(['verify', '--admin', rig.adminAddr]);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/LUN 1 LBA 0-2047, caused by 1 EXTENDED COPY\(LID1\) \(ignored\) from iqn\.2026-11\.dev\.arraysim:host-a at \d\d:\d\d:\d\d/);
  }, 60_000);
});

describe('arraysim serve --splitter', () => {
  it('a bad SPEC: exit 1 with the token; beside --config: a usage error; a good one: group default on every LUN', async () => {
    const bad = await cli(['serve', '--admin', 'none', '--listen', '127.0.0.1:0', '--splitter', 'xcopy=maybe']);
    expect(bad.code).toBe(1);
    expect(bad.err).toMatch(/^arraysim: --splitter: "xcopy=maybe": "maybe" is not one of support, reject, ignore$/m);
    const both = await cli(['serve', '--admin', 'none', '--config', 'examples/minimal.yaml', '--splitter', 'rp-cx-2010']);
    expect(both.code).toBe(1);
    expect(both.err).toMatch(/Arguments config and splitter are mutually exclusive/);
    // A good one: the process keeps running; its log says which LUNs are protected.
    const child = spawn(process.execPath, ['bin/arraysim.js', 'serve', '--listen', '127.0.0.1:0', '--admin', 'none', '--lun', '16MiB', '--lun', '16MiB',
      '--splitter', 'rp-cx-2010', '--log-level', 'info'], { cwd: join(__dirname, '../..') });
    try {
      const line = await new Promise<string>((resolve, reject) => {
        let buf = '';
        const t = setTimeout(() => reject(new Error(`no group line in: ${buf}`)), 20_000);
        child.stderr.on('data', (d: Buffer) => {
          buf += d.toString();
          const m = buf.split('\n').find((l) => l.includes('consistency group ready'));
          if (m) { clearTimeout(t); resolve(m); }
        });
      });
      expect(JSON.parse(line)).toMatchObject({ group: 'default', splitter: 'cli', luns: [0, 1], copies: ['local'] });
    } finally {
      child.kill('SIGTERM');
    }
  }, 60_000);
});

describe('group routes and status', () => {
  it('bookmarks, groups, errors naming the field, 404 for an unknown group', async () => {
    rig = await startSplitterArray('rp-cx-2010');
    const ini = await rig.session(HOST);
    await ini.scsi(0, cdb16(0x8a, 0, 8), { write: pattern(8 * 512, 3) });
    const b = await adminCall(rig.adminAddr, 'POST', '/v1/groups/default/bookmarks', { name: 'before-clone' });
    expect(b.status).toBe(200);
    expect(b.json).toMatchObject({ name: 'before-clone', seq: 1 });
    const dup = await adminCall(rig.adminAddr, 'POST', '/v1/groups/default/bookmarks', { name: 'before-clone' });
    expect(dup).toMatchObject({ status: 400, json: { field: 'name', error: expect.stringMatching(/^name: .*exists/) } });
    expect(await adminCall(rig.adminAddr, 'POST', '/v1/groups/default/bookmarks', {})).toMatchObject({ status: 400, json: { field: 'name' } });
    expect(await adminCall(rig.adminAddr, 'POST', '/v1/groups/default/bookmarks', { name: 'a b' })).toMatchObject({ status: 400, json: { field: 'name' } });
    expect(await adminCall(rig.adminAddr, 'POST', '/v1/groups/default/verify', { copy: 7 })).toMatchObject({ status: 400, json: { field: 'copy' } });
    expect(await adminCall(rig.adminAddr, 'POST', '/v1/groups/default/verify', { copy: 'dr' })).toMatchObject({ status: 404, json: { error: expect.stringMatching(/no copy "dr"/) } });
    expect((await adminCall(rig.adminAddr, 'GET', '/v1/groups/nope')).status).toBe(404);
    expect((await adminCall(rig.adminAddr, 'POST', '/v1/groups/nope/verify', {})).status).toBe(404);
    const g = await adminCall(rig.adminAddr, 'GET', '/v1/groups/default');
    expect(g.json).toMatchObject({
      name: 'default', state: 'enabled', transfer: 'active',
      splitter: { spec: 'ats=support,xcopy=ignore,writesame=ignore,unmap=ignore,kind=array' },
      copies: [{ name: 'local' }], bookmarks: [{ name: 'before-clone', seq: 1 }],
      ignored: { ats: 0, xcopy: 0, writesame: 0, unmap: 0 },
    });
    expect(g.json.journal).toMatchObject({ kind: 'memory', records: 1, lastSeq: 1 });
    // Transfer state changes are events on the array's bus (GET /v1/events).
    const seen: unknown[] = [];
    const off = rig.array.events.subscribe((e) => seen.push(e));
    rig.group.pauseTransfer('operator: maintenance');
    await rig.group.startTransfer('operator: done');
    off();
    expect(seen).toEqual([
      expect.objectContaining({ type: 'group.transfer', group: 'default', from: 'active', to: 'paused', reason: 'operator: maintenance' }),
      expect.objectContaining({ type: 'group.transfer', group: 'default', from: 'paused', to: 'active', reason: 'operator: done' }),
    ]);
    const st = await adminCall(rig.adminAddr, 'GET', '/v1/status');
    expect(st.json.groups.map((x: { name: string }) => x.name)).toEqual(['default']);
    expect((await adminCall(rig.adminAddr, 'GET', '/v1/groups')).json.groups).toHaveLength(1);
  });
});

describe('YAML splitters: and groups:', () => {
  const yaml = (body: string) => { const p = join(dir, `c${Math.random()}.yaml`); writeFileSync(p, body); return p; };
  const base = 'portals: [{listen: "127.0.0.1:0"}]\ntargets:\n  - name: iqn.2026-11.dev.arraysim:y\n    luns: [8MiB, 8MiB]\n';

  it('errors name the field', () => {
    expect(() => configFromFile(yaml(`${base}splitters:\n  - name: s\n    xcopy: sometimes\n`))).toThrow(/splitters\[0\]: "xcopy=sometimes"/);
    expect(() => configFromFile(yaml(`${base}splitters:\n  - name: s\n    colour: red\n`))).toThrow(/splitters\[0\]\.colour: unknown field/);
    expect(() => configFromFile(yaml(`${base}splitters:\n  - {name: s}\ngroups:\n  - {name: g, splitter: t}\n`))).toThrow(/groups\[0\]\.splitter must name an entry/);
    expect(() => configFromFile(yaml(`${base}splitters:\n  - {name: s}\ngroups:\n  - {name: g, splitter: s, luns: [5]}\n`))).toThrow(/groups\[0\]\.luns/);
    expect(() => configFromFile(yaml(`${base}splitters:\n  - {name: s}\ngroups:\n  - {name: g, splitter: s, journal: lots}\n`))).toThrow(/groups\[0\]\.journal: bad size/);
    expect(() => configFromFile(yaml(`${base}splitters:\n  - {name: s, kind: fabric, advertise: false}\n`))).toThrow(/advertise=no needs kind=array/);
    expect(() => configFromFlags({ splitter: 'xcopy=bad' })).toThrow(/^--splitter: "xcopy=bad"/);
  });

  it('EXTENDED COPY sent to an unprotected LU is governed by its protected destination\'s group', async () => {
    const c = configFromFile(yaml(`${base}splitters:\n  - name: cx\n    spec: rp-cx-2010\ngroups:\n  - name: g1\n    splitter: cx\n    luns: [1]\n    journal: 64MiB\n`));
    expect(c.groups![0]).toMatchObject({ name: 'g1', luns: [1], copies: ['local'], journalBytes: 64 << 20, startTransfer: true });
    const array = await StorageArray.create(c, pino({ level: 'silent' }));
    try {
      const t = [...array.scsiTargets.values()][0];
      const [lu0, lu1] = [t.luns.get(0)!, t.luns.get(1)!];
      expect(lu0.protection).toBeNull();
      const nexus = makeNexus();
      t.nexusUp(nexus);
      lu0.ua.forget(nexus.key);
      const list = xcopyList({ cscds: [lu0, lu1].map((lu) => ({ naa: lu.naa })), segments: [{ src: 0, dst: 1, blocks: 8, srcLba: 0, dstLba: 100 }] });
      const r = await lu0.submit({ lun: 0, cdb: xcopyCdb(list.length), nexus, taskTag: 1, attr: TaskAttribute.Simple, expectedLength: list.length, isRead: false, isWrite: true, dataOut: list });
      expect(r.status).toBe(ScsiStatus.Good);
      const g = array.groups.get('g1')!;
      expect(g.ignoredLog).toEqual([expect.objectContaining({ name: 'EXTENDED COPY(LID1)', lun: 1, extents: [{ lba: 100n, blocks: 8 }] })]);
    } finally {
      await array.stop();
    }
  });
});

describe('journal and initialization', () => {
  const lun = (blocks: number) => {
    const t = new ScsiTarget('iqn.2026-11.dev.arraysim:j');
    const lu = t.addLun({ lun: 0, store: new MemoryStore(BigInt(blocks)), naa: '6001405000000d00', serial: 'J0' });
    const nexus = makeNexus();
    t.nexusUp(nexus);
    lu.ua.forget(nexus.key);
    const submit = (cdb: Buffer, dataOut: Buffer | null) => lu.submit({
      lun: 0, cdb, nexus, taskTag: 1, attr: TaskAttribute.Simple, expectedLength: dataOut?.length ?? 0, isRead: false, isWrite: !!dataOut, dataOut,
    });
    return { lu, submit };
  };

  it('the size limit pushes the oldest applied records out; the window says how far back history reaches', async () => {
    const { lu, submit } = lun(8192);
    const g = new ConsistencyGroup({ name: 'j', spec: parseSplitterSpec('ats=support'), luns: [lu], copies: ['local'], journalBytes: 64 << 10, startTransfer: false });
    await g.startTransfer('test');
    for (let i = 0; i < 256; i++) await submit(cdb16(0x8a, i * 8, 8), pattern(4096, i));
    await new Promise((r) => setImmediate(r));
    const s = g.status();
    expect(s.copies[0].lag).toEqual({ records: 0, bytes: 0 });
    expect(s.journal.bytes).toBeLessThanOrEqual(64 << 10);
    expect(s.journal.evictedRecords).toBeGreaterThan(200);
    expect(s.journal.protectionWindow.oldestSeq).toBe(s.journal.evictedRecords + 1);
    expect(s.journal.protectionWindow.newestSeq).toBe(256);
    // Paused: writes mark their regions instead of growing the journal (the 64 writes fall in the
    // first 1 MiB region); start_transfer sends that region and the copy equals production.
    g.pauseTransfer('test');
    const before = g.status().journal;
    for (let i = 0; i < 64; i++) await submit(cdb16(0x8a, i * 8, 8), pattern(4096, 1000 + i));
    const p = g.status();
    expect(p.transfer).toBe('paused');
    expect(p.copies[0].lag.records).toBe(0);
    expect(p.journal).toMatchObject({ lastSeq: before.lastSeq, bytes: before.bytes });
    expect(p.markers).toEqual([{ copy: 'local', regions: 1, bytes: 1 << 20, fullSweep: false }]);
    await g.startTransfer('test');
    expect(g.status().initialization).toMatchObject({ kind: 'markers', regions: 1, bytesSent: 1 << 20, volumeBytes: 8192 * 512, done: true });
    expect(Buffer.compare(g.copies[0].replicas[0].read(0n, 8192) as Buffer, lu.store.read(0n, 8192) as Buffer)).toBe(0);
  });

  for (const preset of ['rp-flare30-pre509', 'rp-flare30-509']) {
    it(`${preset}: COMPARE AND WRITE during the first initialization`, async () => {
      const { lu, submit } = lun(64 * 2048); // 64 MiB: 64 regions to sweep, the event loop runs between them
      for (let i = 0; i < 64; i++) lu.store.write(BigInt(i * 2048), pattern(4096, i));
      const g = new ConsistencyGroup({ name: 'i', spec: parseSplitterSpec(preset), luns: [lu], copies: ['local'], journalBytes: 1 << 30, startTransfer: false });
      const done = g.startTransfer('test');
      expect(g.transfer).toBe('init');
      await new Promise((r) => setImmediate(r));
      const cur = Buffer.from(lu.store.read(0n, 1) as Buffer);
      const r = await submit(caw16(0, 1), Buffer.concat([cur, pattern(512, 77)]));
      expect(r.status).toBe(ScsiStatus.Good);
      await done;
      if (preset === 'rp-flare30-pre509') {
        expect(g.transfer).toBe('error');
        expect(g.history.at(-1)).toMatchObject({ from: 'init', to: 'error', reason: expect.stringMatching(/initialization failed: COMPARE AND WRITE/) });
      } else {
        expect(g.transfer).toBe('active');
        expect(g.init).toMatchObject({ done: true, regions: 64, bytesSent: 64 << 20 });
      }
    });
  }

  it('rp-flare30-pre509: a CAS that miscompares (the lock is another host\'s) reached the splitter too: initialization fails', async () => {
    const { lu, submit } = lun(64 * 2048);
    for (let i = 0; i < 64; i++) lu.store.write(BigInt(i * 2048), pattern(4096, i));
    const g = new ConsistencyGroup({ name: 'm', spec: parseSplitterSpec('rp-flare30-pre509'), luns: [lu], copies: ['local'], journalBytes: 1 << 30, startTransfer: false });
    const done = g.startTransfer('test');
    await new Promise((r) => setImmediate(r));
    const wrong = pattern(512, 99); // not what block 0 holds
    const r = await submit(caw16(0, 1), Buffer.concat([wrong, pattern(512, 77)]));
    expect(r.status).toBe(ScsiStatus.CheckCondition); // MISCOMPARE: nothing written
    await done;
    expect(g.transfer).toBe('error');
  });
});
