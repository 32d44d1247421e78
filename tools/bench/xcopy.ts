/**
 * EXTENDED COPY offload versus a host copy, on one arraysim with memory LUNs.
 *
 *   npx tsx tools/bench/xcopy.ts [--port 3415] [--gib 1] [--segment-mib 4] [--xcopy-qd 8] [--host-qd 32] [--io-kib 1024] [--thin 1] [--qemu 0] [--splitter SPEC]
 *
 * --splitter SPEC: serve with `--splitter SPEC` (every LUN in one protected group, local copy), so
 * both copies are split: the EXTENDED COPY as its destination blocks under `support`.
 *
 * Starts `node bin/arraysim.js serve` (its own process, as in production) with three memory LUNs
 * of --gib GiB (thick unless --thin 1): a source, filled from the initiator, and one fresh
 * destination for each way of copying, so neither copy lands on memory the other one already
 * touched:
 *  - offload: EXTENDED COPY commands of one block->block segment each (ESXi's shape: 4 MiB
 *    segments by default), --xcopy-qd in flight, source -> LUN 1;
 *  - host: READ(16) then WRITE(16) of --io-kib pieces, --host-qd in flight over iSCSI (the
 *    TestInitiator, in this process), the way a host without offload copies, source -> LUN 2.
 * Both copies are verified by reading back samples. Prints both times and the ratio, and the
 * target's CPU time (utime+stime) over each copy.
 *
 * With qemu-img on the machine (and --qemu 1, the default), a third-party client does the same
 * pair on the same LUNs afterwards: `qemu-img convert -C -m 1` (qemu's iscsi driver turns the
 * copy into EXTENDED COPY commands; one at a time, because qemu gives every one LIST IDENTIFIER
 * 1 with LIST ID USAGE 10b, which SPC-4 lets only one running copy per I_T nexus use) against
 * `qemu-img convert -m 16 -W` (READ and WRITE, 16 in flight, qemu's maximum).
 */
import type { TestInitiator } from '../../test/helpers/initiator.ts';
import { xcopyCdb, xcopyList } from '../../test/scsi/xcopy-params.ts';
import { spawnSync } from 'node:child_process';
import { cdb16 } from '../../test/helpers/cdb.ts';
import { check, cpuSeconds, numOpt as opt, session as benchSession, startTarget, waitPort } from './target.ts';

const PORT = opt('port', 3415);
const GIB = opt('gib', 1);
const SEGMENT = opt('segment-mib', 4) << 20;
const XQD = opt('xcopy-qd', 8);
const HQD = opt('host-qd', 32);
const IO = opt('io-kib', 1024) << 10;
const THIN = opt('thin', 0) === 1;
const QEMU = opt('qemu', 1) === 1;
const IQN = 'iqn.2026-11.dev.arraysim:bench-xcopy';
const SPLITTER = ((i) => (i >= 0 ? process.argv[i + 3] : undefined))(process.argv.slice(2).indexOf('--splitter'));
const BS = 512;
const TOTAL = GIB * (1 << 30);

const session = (): Promise<TestInitiator> => benchSession(PORT, IQN, [0, 1, 2]);

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

/** Wall time of a qemu-img command in seconds, or the reason it could not run. */
function qemuImg(args: string[]): number | string {
  const t0 = performance.now();
  const r = spawnSync('qemu-img', args, { encoding: 'utf8' });
  if (r.error) return (r.error as NodeJS.ErrnoException).code === 'ENOENT' ? 'qemu-img not installed' : r.error.message;
  if (r.status !== 0) return `qemu-img exit ${r.status}: ${r.stderr.trim().split('\n').pop()}`;
  return (performance.now() - t0) / 1000;
}

async function main(): Promise<void> {
  const lun = `${GIB}GiB${THIN ? '' : ',thick'}`;
  const { child, stop } = startTarget(['--listen', `127.0.0.1:${PORT}`, '--target', IQN, '--lun', lun, '--lun', lun, '--lun', lun, '--admin', 'none', ...(SPLITTER ? ['--splitter', SPLITTER] : [])]);
  try {
    await waitPort(PORT);
    const ini = await session();
    const [naa0, naa1] = [await naaOf(ini, 0), await naaOf(ini, 1)];
    // Fill the source with non-zero data (4 MiB writes, QD8).
    const fill = Buffer.alloc(4 << 20);
    for (let i = 0; i < fill.length; i += 4) fill.writeUInt32BE((i * 2654435761) >>> 0, i);
    await pool(TOTAL / fill.length, 8, async (i) => check(await ini.scsi(0, cdb16(0x8a, (i * fill.length) / BS, fill.length / BS), { write: fill }), 'fill'));
    // A fresh session: the filling one sat idle through the copy, long enough under a splitter on
    // a loaded VM for the target to drop it (a NOP-In the test initiator does not answer).
    const verify = async (lu: number, what: string): Promise<void> => {
      const vi = await session();
      for (const lba of [0, TOTAL / BS / 2, TOTAL / BS - 8192]) {
        const r = await vi.scsi(lu, cdb16(0x88, lba, 8192), { read: 4 << 20 });
        if (!r.data.equals(fill)) throw new Error(`${what}: data differs at LBA ${lba}`);
      }
      vi.close();
    };

    // Offload: one EXTENDED COPY per segment, from a fresh session (as a host would have).
    const xi = await session();
    const segBlocks = SEGMENT / BS;
    const cpu = (): number => cpuSeconds(child.pid!);
    let c0 = cpu();
    let t0 = performance.now();
    await pool(TOTAL / SEGMENT, XQD, async (i) => {
      const list = xcopyList({ usage: 3, cscds: [{ naa: naa0 }, { naa: naa1 }], segments: [{ src: 0, dst: 1, blocks: segBlocks, srcLba: i * segBlocks, dstLba: i * segBlocks }] });
      check(await xi.scsi(0, xcopyCdb(list.length), { write: list }), 'xcopy');
    });
    const offload = (performance.now() - t0) / 1000;
    const offloadCpu = cpu() - c0;
    xi.close();
    await verify(1, 'offload copy');

    // Host copy: READ from LUN 0, WRITE to LUN 2, over the wire (a fresh session, as above).
    const hi = await session();
    const ioBlocks = IO / BS;
    c0 = cpu();
    t0 = performance.now();
    await pool(TOTAL / IO, HQD, async (i) => {
      const r = await hi.scsi(0, cdb16(0x88, i * ioBlocks, ioBlocks), { read: IO });
      check(r, 'read');
      check(await hi.scsi(2, cdb16(0x8a, i * ioBlocks, ioBlocks), { write: r.data }), 'write');
    });
    const host = (performance.now() - t0) / 1000;
    const hostCpu = cpu() - c0;
    await verify(2, 'host copy');
    hi.close();
    ini.close();

    const mib = TOTAL / (1 << 20);
    console.log(`copy of ${mib} MiB between ${THIN ? 'thin' : 'thick'} memory LUNs on 127.0.0.1:${PORT}, each copy to its own fresh LUN`);
    console.log(`offload: EXTENDED COPY, ${SEGMENT >> 20} MiB segments, QD${XQD}: ${offload.toFixed(3)} s (${(mib / offload).toFixed(0)} MiB/s)`);
    console.log(`host:    READ(16)+WRITE(16) of ${IO >> 10} KiB, QD${HQD}:   ${host.toFixed(3)} s (${(mib / host).toFixed(0)} MiB/s)`);
    console.log(`ratio (host / offload): ${(host / offload).toFixed(1)}x`);
    // The target's own CPU time (utime+stime) over each copy: less moved by other load on a shared machine.
    console.log(`target CPU: offload ${offloadCpu.toFixed(2)} s, host ${hostCpu.toFixed(2)} s${SPLITTER ? ` (--splitter ${SPLITTER})` : ''}`);

    if (QEMU) {
      // Third-party client, same LUNs (now written, so no first-touch cost on either side).
      const url = (l: number): string => `iscsi://127.0.0.1:${PORT}/${IQN}/${l}`;
      const qo = qemuImg(['convert', '-n', '-C', '-m', '1', '-f', 'raw', '-O', 'raw', url(0), url(1)]);
      const qh = qemuImg(['convert', '-n', '-m', '16', '-W', '-f', 'raw', '-O', 'raw', url(0), url(2)]);
      const show = (x: number | string): string => (typeof x === 'number' ? `${x.toFixed(3)} s (${(mib / x).toFixed(0)} MiB/s)` : `n/a (${x})`);
      console.log(`qemu-img convert -C -m 1 (EXTENDED COPY): ${show(qo)}`);
      console.log(`qemu-img convert -m 16 -W (READ+WRITE):  ${show(qh)}`);
      if (typeof qo === 'number' && typeof qh === 'number') console.log(`qemu-img ratio (host / offload): ${(qh / qo).toFixed(1)}x`);
    }
  } finally {
    stop();
  }
}

main().catch((e) => { console.error(e); process.exitCode = 1; });
