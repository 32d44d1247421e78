/**
 * EXTENDED COPY offload versus a host copy, on one arraysim with two memory LUNs.
 *
 *   npx tsx tools/bench/xcopy.ts [--port 3415] [--gib 1] [--segment-mib 4] [--xcopy-qd 8] [--host-qd 32] [--io-kib 1024]
 *
 * Starts `node bin/arraysim.js serve` (its own process, as in production) with two thick memory
 * LUNs, fills the source from the initiator, then copies it to the destination twice:
 *  - offload: EXTENDED COPY commands of one block->block segment each (ESXi's shape: 4 MiB
 *    segments by default), --xcopy-qd in flight;
 *  - host: READ(16) then WRITE(16) of --io-kib pieces, --host-qd in flight over iSCSI (the
 *    TestInitiator, in this process), the way a host without offload copies.
 * Both copies are verified by reading back a sample. Prints both times and the ratio.
 */
import type { TestInitiator } from '../../test/helpers/initiator.ts';
import { xcopyCdb, xcopyList } from '../../test/scsi/xcopy-params.ts';
import { check, numOpt as opt, rw16, session as benchSession, startTarget, waitPort } from './target.ts';

const PORT = opt('port', 3415);
const GIB = opt('gib', 1);
const SEGMENT = opt('segment-mib', 4) << 20;
const XQD = opt('xcopy-qd', 8);
const HQD = opt('host-qd', 32);
const IO = opt('io-kib', 1024) << 10;
const IQN = 'iqn.2026-11.dev.arraysim:bench-xcopy';
const BS = 512;
const TOTAL = GIB * (1 << 30);

const session = (): Promise<TestInitiator> => benchSession(PORT, IQN, [0, 1]);

/** The NAA designator of a LUN from VPD 0x83 (what an initiator puts in the CSCD descriptor). */
async function naaOf(ini: TestInitiator, lun: number): Promise<string> {
  const r = await ini.scsi(lun, [0x12, 1, 0x83, 0x04, 0, 0], { read: 1024 });
  let o = 4;
  while (o + 4 <= r.data.length) {
    const type = r.data[o + 1] & 0x0f;
    const len = r.data[o + 3];
    if (type === 3 && ((r.data[o + 1] >> 4) & 3) === 0) return r.data.subarray(o + 4, o + 4 + len).toString('hex');
    o += 4 + len;
  }
  throw new Error('no NAA designator');
}

/** Run `jobs` with at most `qd` in flight. */
async function pool(count: number, qd: number, job: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => { while (next < count) await job(next++); };
  await Promise.all(Array.from({ length: Math.min(qd, count) }, worker));
}

async function main(): Promise<void> {
  const { stop } = startTarget(['--listen', `127.0.0.1:${PORT}`, '--target', IQN, '--lun', `${GIB}GiB,thick`, '--lun', `${GIB}GiB,thick`, '--admin', 'none']);
  try {
    await waitPort(PORT);
    const ini = await session();
    const [naa0, naa1] = [await naaOf(ini, 0), await naaOf(ini, 1)];
    // Fill the source with non-zero data (4 MiB writes, QD8).
    const fill = Buffer.alloc(4 << 20);
    for (let i = 0; i < fill.length; i += 4) fill.writeUInt32BE((i * 2654435761) >>> 0, i);
    await pool(TOTAL / fill.length, 8, async (i) => check(await ini.scsi(0, rw16(0x8a, (i * fill.length) / BS, fill.length / BS), { write: fill }), 'fill'));

    // Offload: one EXTENDED COPY per segment, from a fresh session (as a host would have).
    const xi = await session();
    const segBlocks = SEGMENT / BS;
    let t0 = performance.now();
    await pool(TOTAL / SEGMENT, XQD, async (i) => {
      const list = xcopyList({ usage: 3, cscds: [{ naa: naa0 }, { naa: naa1 }], segments: [{ src: 0, dst: 1, blocks: segBlocks, srcLba: i * segBlocks, dstLba: i * segBlocks }] });
      check(await xi.scsi(0, xcopyCdb(list.length), { write: list }), 'xcopy');
    });
    const offload = (performance.now() - t0) / 1000;
    const a = await ini.scsi(1, rw16(0x88, TOTAL / BS - 8192, 8192), { read: 4 << 20 });
    if (!a.data.equals(fill)) throw new Error('offload copy: data differs');

    // Host copy back from LUN 1 into LUN 0's second half is not needed: copy 0 -> 1 again, over the wire.
    const ioBlocks = IO / BS;
    t0 = performance.now();
    await pool(TOTAL / IO, HQD, async (i) => {
      const r = await ini.scsi(0, rw16(0x88, i * ioBlocks, ioBlocks), { read: IO });
      check(r, 'read');
      check(await ini.scsi(1, rw16(0x8a, i * ioBlocks, ioBlocks), { write: r.data }), 'write');
    });
    const host = (performance.now() - t0) / 1000;
    const b = await ini.scsi(1, rw16(0x88, 0, 8192), { read: 4 << 20 });
    if (!b.data.equals(fill)) throw new Error('host copy: data differs');
    ini.close();

    const mib = TOTAL / (1 << 20);
    console.log(`copy of ${mib} MiB between two memory LUNs on 127.0.0.1:${PORT}`);
    console.log(`offload: EXTENDED COPY, ${SEGMENT >> 20} MiB segments, QD${XQD}: ${offload.toFixed(3)} s (${(mib / offload).toFixed(0)} MiB/s)`);
    console.log(`host:    READ(16)+WRITE(16) of ${IO >> 10} KiB, QD${HQD}:   ${host.toFixed(3)} s (${(mib / host).toFixed(0)} MiB/s)`);
    console.log(`ratio (host / offload): ${(host / offload).toFixed(1)}x`);
  } finally {
    stop();
  }
}

main().catch((e) => { console.error(e); process.exitCode = 1; });
