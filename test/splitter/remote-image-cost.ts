/**
 * What enable_image_access costs on a remote copy (CRR) whose image is N records back (default
 * 20,000; argument 1), over TCP on loopback: production on 127.0.0.1, the remote on 127.0.3.22.
 * N 4 KiB writes at random 4 KiB slots of a 64 MiB LUN, 16 in flight, after bookmark `a`; then
 * enable_image_access to `a` (the remote builds its read map from its undo log: O(n log n), no
 * data read back or copied), one read through the image target, disable. Not a test:
 * `npx tsx test/splitter/remote-image-cost.ts 20000`.
 */
import pino from 'pino';
import { StorageArray } from '../../src/array.ts';
import { configFromFlags } from '../../src/config.ts';
import { disableImageAccess, enableImageAccess } from '../../src/splitter/image.ts';
import type { CrrCopy } from '../../src/splitter/group.ts';
import { cdb16 } from '../helpers/cdb.ts';
import { TestInitiator } from '../helpers/initiator.ts';

const N = Number(process.argv[2] ?? 20_000);
const log = pino({ level: 'silent' });
const DR = 'iqn.2026-11.dev.arraysim:rcost-dr';
const PROD = 'iqn.2026-11.dev.arraysim:rcost-prod';
const drConfig = configFromFlags({ listen: ['127.0.3.22:0'], target: DR, lun: ['64MiB'] });
const dr = await StorageArray.create(drConfig, log);
await dr.start();
const config = configFromFlags({ listen: ['127.0.0.1:0'], target: PROD, lun: ['64MiB'], splitter: 'rp-vnx-flare31', remoteCopy: `name=dr,remote=127.0.3.22:${drConfig.portals[0].port},target=${DR}` });
const prod = await StorageArray.create(config, log);
await prod.start();
const g = prod.groups.get('default')!;
await g.ready();
const c = g.copy('dr') as CrrCopy;
const host = await TestInitiator.connect(config.portals[0].port);
await host.login(PROD, { MaxRecvDataSegmentLength: '262144' }, 'iqn.2026-11.dev.arraysim:host-a');
await host.scsi(0, [0, 0, 0, 0, 0, 0]);
const slots = (64 << 20) / 4096;
let x = 12345;
const rnd = () => (x = (x * 1103515245 + 12345) >>> 0) % slots;
const data = Buffer.alloc(4096, 0x33);
// Every slot written once first, so that the writes after the bookmark overwrite data (undo bytes).
for (let s = 0; s < slots; s += 256) await host.scsi(0, cdb16(0x8a, s * 8, 256 * 8), { write: Buffer.alloc(256 * 4096, 0x11) });
g.bookmark('a');
let t0 = performance.now();
for (let k = 0; k < N; k += 16) await Promise.all(Array.from({ length: Math.min(16, N - k) }, () => host.scsi(0, cdb16(0x8a, rnd() * 8, 8), { write: data })));
while (c.appliedSeq < g.journal.nextSeq - 1) await new Promise((r) => setTimeout(r, 10));
console.log(`${N} writes of 4 KiB shipped and applied at the remote: ${(performance.now() - t0).toFixed(0)} ms`);
t0 = performance.now();
await enableImageAccess(g, c, 'a', 'logged');
const enableMs = performance.now() - t0;
const q = await c.query();
const claim = [...dr.scsiTargets.get(DR)!.luns.values()][0];
console.log(`enable_image_access to a bookmark ${N} records back: ${enableMs.toFixed(0)} ms; remote undo ${(q.undoBytes / 2 ** 20).toFixed(1)} MiB, window from seq ${q.oldestImage}; lun store ${claim.store.constructor.name}`);
t0 = performance.now();
await disableImageAccess(g, c, true);
console.log(`disable_image_access: ${(performance.now() - t0).toFixed(0)} ms`);
host.close();
await prod.stop();
await dr.stop();
