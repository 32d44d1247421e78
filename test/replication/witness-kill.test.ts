/**
 * The process test: site A (primary) runs as its own `arraysim serve` process and is
 * killed with SIGKILL; the quorum witness runs as its own process; site B is in this process with
 * a host session open. With the witness, B is granted the group and serves writes.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { StorageArray } from '../../src/array.ts';
import { ScsiDevice } from '../../src/initiator/index.ts';
import { block, senseOf, settled, until } from './pair.ts';
import { startWitness } from './witness-process.ts';
import type { WitnessProcess } from './witness-process.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const TARGET = 'iqn.2026-12.dev.arraysim:kill';
const LUN = { spec: '64MiB', naa: '502a7510000a0c01', serial: 'ASIMKILL0001' };

let witness: WitnessProcess | null = null;
let b: StorageArray | null = null;
const cleanup: (() => Promise<unknown> | void)[] = [];
afterAll(async () => { for (const f of cleanup.reverse()) await f(); });

describe('primary array killed (SIGKILL) with the witness up', () => {
  it('site B is granted the group and the host\'s writes through B go on', async () => {
    witness = await startWitness();
    cleanup.push(() => witness!.stop());
    b = await StorageArray.create({
      portals: [{ host: '127.0.2.1', port: 0, tpgt: 2, targetPortGroup: 2 }],
      targets: [{ name: TARGET, luns: [{ spec: `${64 * 1024 * 1024}`, naa: LUN.naa, serial: LUN.serial }] }],
      iscsi: { nopInterval: 0 }, logLevel: 'silent',
      peers: { name: 'site-b', listen: { host: '127.0.2.1', port: 0 }, witness: { host: witness.host, port: witness.port } },
      rcopy: { groups: [{ name: 'rcg1', role: 'secondary', volumes: [{ target: TARGET, lun: 0 }], policies: { active_active: true } }] },
    }, pino({ level: 'silent' }));
    await b.start();
    cleanup.push(() => b!.stop());
    const dir = mkdtempSync(path.join(tmpdir(), 'arraysim-kill-'));
    const yaml = path.join(dir, 'site-a.yaml');
    writeFileSync(yaml, [
      'portals: [{listen: "127.0.1.1:0", tpgt: 1}]',
      `targets: [{name: ${TARGET}, luns: [{spec: ${LUN.spec}, naa: "${LUN.naa}", serial: ${LUN.serial}}]}]`,
      `peers: {name: site-a, listen: "127.0.1.1:0", peer: "127.0.2.1:${b.config.peers!.listen!.port}", witness: "${witness.host}:${witness.port}"}`,
      `rcopy: {groups: [{name: rcg1, role: primary, volumes: [{target: ${TARGET}, lun: 0}], policies: [active_active]}]}`,
      'log: {level: warn}', '',
    ].join('\n'));
    const a = spawn(process.execPath, [path.join(ROOT, 'bin/arraysim.js'), 'serve', '--config', yaml, '--admin', 'none'], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
    let aErr = '';
    a.stderr!.on('data', (d) => { aErr += d; });
    cleanup.push(() => { if (a.exitCode === null && a.signalCode === null) a.kill('SIGKILL'); });
    const g = b.rcopy!.groups.get('rcg1')!;
    await until(() => g.machine.status === 'Synced' && g.machine.snapshot().witness?.owner === 'site-a' && g.machine.snapshot().witness?.recorded === 'Synced', `B Synced with site A (process) and the witness; A: ${aErr.slice(-500)}`, 60_000);
    const d = await ScsiDevice.open(`iscsi://127.0.2.1:${b.config.portals[0].port}/${TARGET}/0`);
    cleanup.push(() => d.close().catch(() => {}));
    await d.clearUnitAttentions();
    expect(senseOf(await settled(() => d.write(5n, block('through B, forwarded to A'))))).toBe('good');
    a.kill('SIGKILL');
    await until(() => g.role === 'primary', 'B granted after the kill', 30_000);
    expect(g.snapshot()).toMatchObject({ roleName: 'Primary-Rev', serving: true, epoch: 1 });
    expect(senseOf(await settled(() => d.write(6n, block('B alone'))))).toBe('good');
    const r = await settled(() => d.read(5n, 2));
    expect(r.kind === 'good' && r.value.equals(Buffer.concat([block('through B, forwarded to A'), block('B alone')]))).toBe(true);
  }, 120_000);
});
