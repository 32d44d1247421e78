/**
 * A primary on memory stores is killed (SIGKILL) with no witness, and started again with the same
 * configuration: its volumes are empty. It must not come back as the source of a "resync" that
 * resends nothing (the pair would report Synced while the primary serves zeros for acknowledged
 * writes): it hands the primary role to site B, which copies the group whole to it. Site A runs
 * as its own `arraysim serve` process; site B is in this process. The decision table itself is
 * test/replication/restart.test.ts.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { StorageArray } from '../../src/array.ts';
import { ScsiDevice } from '../../src/initiator/index.ts';
import { block, senseOf, settled, until } from './pair.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const TARGET = 'iqn.2026-12.dev.arraysim:restart';
const LUN = { spec: '16MiB', naa: '502a7510000a0d01', serial: 'ASIMRST0001' };
const cleanup: (() => Promise<unknown> | void)[] = [];
afterAll(async () => { for (const f of cleanup.reverse()) await f(); });

describe('primary on memory stores killed and restarted, no witness', () => {
  it('comes back as secondary, gets the whole group from B, and serves the acknowledged writes', async () => {
    const b = await StorageArray.create({
      portals: [{ host: '127.0.2.1', port: 0, tpgt: 2, targetPortGroup: 2 }],
      targets: [{ name: TARGET, luns: [{ spec: `${16 * 1024 * 1024}`, naa: LUN.naa, serial: LUN.serial }] }],
      iscsi: { nopInterval: 0 }, logLevel: 'silent',
      peers: { name: 'site-b', listen: { host: '127.0.2.1', port: 0 } },
      rcopy: { groups: [{ name: 'rcg1', role: 'secondary', volumes: [{ target: TARGET, lun: 0 }], policies: { active_active: true } }] },
    }, pino({ level: 'silent' }));
    await b.start();
    cleanup.push(() => b.stop());
    const aPort = 20000 + Math.floor(Math.random() * 40000);
    const yaml = path.join(mkdtempSync(path.join(tmpdir(), 'arraysim-restart-')), 'site-a.yaml');
    writeFileSync(yaml, [
      `portals: [{listen: "127.0.1.1:${aPort}", tpgt: 1}]`,
      `targets: [{name: ${TARGET}, luns: [{spec: ${LUN.spec}, naa: "${LUN.naa}", serial: ${LUN.serial}}]}]`,
      `peers: {name: site-a, listen: "127.0.1.1:0", peer: "127.0.2.1:${b.config.peers!.listen!.port}"}`,
      `rcopy: {groups: [{name: rcg1, role: primary, volumes: [{target: ${TARGET}, lun: 0}], policies: [active_active]}]}`,
      'log: {level: warn}', '',
    ].join('\n'));
    let aErr = '';
    const startA = (): ChildProcess => {
      const a = spawn(process.execPath, [path.join(ROOT, 'bin/arraysim.js'), 'serve', '--config', yaml, '--admin', 'none'], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
      a.stderr!.on('data', (d) => { aErr += d; });
      cleanup.push(() => { if (a.exitCode === null && a.signalCode === null) a.kill('SIGKILL'); });
      return a;
    };
    let a = startA();
    const g = b.rcopy!.groups.get('rcg1')!;
    await until(() => g.machine.status === 'Synced', `B Synced with site A; A: ${aErr.slice(-500)}`, 60_000);
    const data = block('acknowledged before the kill');
    const viaB = await ScsiDevice.open(`iscsi://127.0.2.1:${b.config.portals[0].port}/${TARGET}/0`);
    cleanup.push(() => viaB.close().catch(() => {}));
    await viaB.clearUnitAttentions();
    expect(senseOf(await settled(() => viaB.write(5n, data)))).toBe('good');

    a.kill('SIGKILL');
    await until(() => g.machine.link === 'down', 'B sees the link down', 30_000);
    a = startA();
    await until(() => g.role === 'primary' && g.machine.status === 'Synced', `B primary and Synced after A's restart; A: ${aErr.slice(-500)}`, 60_000);
    expect(g.snapshot()).toMatchObject({ roleName: 'Primary-Rev', epoch: 1 });

    const viaA = await ScsiDevice.open(`iscsi://127.0.1.1:${aPort}/${TARGET}/0`);
    cleanup.push(() => viaA.close().catch(() => {}));
    await viaA.clearUnitAttentions();
    const r = await settled(() => viaA.read(5n, 1));
    expect(r.kind === 'good' && r.value.equals(data)).toBe(true);
  }, 150_000);
});
