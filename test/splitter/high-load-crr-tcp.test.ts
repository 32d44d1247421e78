/**
 * High load on a remote copy (CRR) over a slow link, over TCP: production on 127.0.0.1 with a
 * 1 MiB memory journal and one remote copy at `rate=32Mbit`, the remote array on 127.0.3.12. The
 * host writes 8 MiB far faster than the link carries it. The journal never holds more than its
 * size of writes not yet sent (it grew to the whole 8 MiB before high load existed): writes past
 * it mark their regions. Once the link has drained the journal, high load ends, a short
 * initialization sends the marked regions, and verify finds the remote copy equal to production.
 *
 * Negative control (by hand): without ConsistencyGroup.checkFull the peak is ~8 MiB and the
 * first expectation fails.
 */
import { afterEach, describe, expect, it } from 'vitest';
import pino from 'pino';
import { StorageArray } from '../../src/array.ts';
import { configFromFlags } from '../../src/config.ts';
import { verifyGroup } from '../../src/splitter/verify.ts';
import { cdb16 } from '../helpers/cdb.ts';
import { TestInitiator } from '../helpers/initiator.ts';
import { pattern } from './rig.ts';

const PROD = 'iqn.2026-11.dev.arraysim:hl-prod';
const DR = 'iqn.2026-11.dev.arraysim:hl-dr';
const LIMIT = 1 << 20;

let cleanup: (() => Promise<void>) | null = null;
afterEach(async () => { await cleanup?.(); cleanup = null; });

describe('high load on a remote copy behind a slow link', () => {
  it('the journal stays within its size; after the link drains it the marked regions follow and the copy equals production', async () => {
    const log = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
    const drConfig = configFromFlags({ listen: ['127.0.3.12:0'], target: DR, lun: ['8MiB'] });
    const dr = await StorageArray.create(drConfig, log);
    await dr.start();
    const config = configFromFlags({
      listen: ['127.0.0.1:0'], target: PROD, lun: ['8MiB'], splitter: 'ats=support',
      remoteCopy: `name=dr,remote=127.0.3.12:${drConfig.portals[0].port},target=${DR},rate=32Mbit`,
    });
    config.groups![0].journalBytes = LIMIT;
    const prod = await StorageArray.create(config, log);
    await prod.start();
    const g = prod.groups.get('default')!;
    await g.ready();
    const host = await TestInitiator.connect(config.portals[0].port);
    cleanup = async () => { host.close(); await prod.stop(); await dr.stop(); };
    await host.login(PROD, { MaxRecvDataSegmentLength: '262144' }, 'iqn.2026-11.dev.arraysim:host-a');
    await host.scsi(0, [0x00, 0, 0, 0, 0, 0]);

    let peak = 0;
    let sawHighLoad = false;
    const sample = setInterval(() => { peak = Math.max(peak, g.journal.bytes); sawHighLoad ||= g.highLoad; }, 1);
    // 8 MiB: 128 writes of 64 KiB over the whole LU, 8 in flight.
    let next = 0;
    await Promise.all(Array.from({ length: 8 }, async () => {
      while (next < 128) {
        const i = next++;
        const r = await host.scsi(0, cdb16(0x8a, i * 128, 128), { write: pattern(65536, i) });
        expect(r.status).toBe(0);
        peak = Math.max(peak, g.journal.bytes);
        sawHighLoad ||= g.highLoad;
      }
    }));
    expect(peak).toBeLessThanOrEqual(LIMIT * 1.125 + 65536 + 64);
    expect(sawHighLoad).toBe(true);

    const c = g.copy('dr');
    for (let i = 0; i < 3000 && (g.highLoad || g.transfer !== 'active' || c.markedRegions > 0 || c.appliedSeq < g.journal.nextSeq - 1); i++) {
      await new Promise((r) => setTimeout(r, 10));
    }
    clearInterval(sample);
    expect({ highLoad: g.highLoad, transfer: g.transfer, marked: c.markedRegions, lag: g.journal.nextSeq - 1 - c.appliedSeq }).toEqual({ highLoad: false, transfer: 'active', marked: 0, lag: 0 });
    expect(g.history.some((e) => e.from === 'active' && e.to === 'init' && e.reason.startsWith('high load over'))).toBe(true);
    expect((await verifyGroup(g, 'dr')).consistent).toBe(true);
  }, 60_000);
});
