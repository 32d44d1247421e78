/**
 * How long verify takes, in process: a memory LUN of N MiB (default 256; argument 1) fully written, then
 * a 1 TiB thin LUN with M MiB written (default 1024, argument 2: the "1 GiB written"), one
 * MiB every 1 TiB / M. Not a test: `npx tsx test/splitter/verify-cost.ts 1024 1024`.
 */
import { ScsiTarget } from '../../src/scsi/target.ts';
import { MemoryStore } from '../../src/store/memory.ts';
import { ConsistencyGroup } from '../../src/splitter/group.ts';
import { parseSplitterSpec } from '../../src/splitter/policy.ts';
import { verifyGroup } from '../../src/splitter/verify.ts';
const MiB = Number(process.argv[2] ?? 256);
const blocks = MiB * 2048;
const t = new ScsiTarget('iqn.x:v');
const lu = t.addLun({ lun: 0, store: new MemoryStore(BigInt(blocks)), naa: '6001405000000f00', serial: 'V' });
const chunk = Buffer.alloc(1 << 20); for (let i = 0; i < chunk.length; i += 4) chunk.writeUInt32BE(i * 2654435761 >>> 0, i);
for (let m = 0; m < MiB; m++) { chunk.writeUInt32BE(m, 0); lu.store.write(BigInt(m * 2048), chunk); }
const g = new ConsistencyGroup({ name: 'g', spec: parseSplitterSpec('ats=support'), luns: [lu], copies: ['local'], journalBytes: 64 << 20, startTransfer: false });
let t0 = performance.now(); await g.startTransfer('x'); console.log(`init ${MiB} MiB: ${(performance.now() - t0).toFixed(0)} ms`);
t0 = performance.now(); const r = await verifyGroup(g); console.log(`verify ${MiB} MiB written: ${(performance.now() - t0).toFixed(0)} ms, consistent=${r.consistent}, regions ${JSON.stringify(r.regions)}`);
const thin = new ScsiTarget('iqn.x:w').addLun({ lun: 0, store: new MemoryStore(1n << 31n), naa: '6001405000000f01', serial: 'W' });
const thinMiB = Number(process.argv[3] ?? 1024);
const stride = (1n << 31n) / BigInt(thinMiB) / 2048n * 2048n;
for (let m = 0; m < thinMiB; m++) { chunk.writeUInt32BE(m, 0); thin.store.write(BigInt(m) * stride, chunk); }
const g2 = new ConsistencyGroup({ name: 'h', spec: parseSplitterSpec('ats=support'), luns: [thin], copies: ['local'], journalBytes: 64 << 20, startTransfer: false });
await g2.startTransfer('x');
t0 = performance.now(); const r2 = await verifyGroup(g2); console.log(`verify 1 TiB thin, ${thinMiB} MiB written: ${(performance.now() - t0).toFixed(0)} ms, regions ${JSON.stringify(r2.regions)}`);
