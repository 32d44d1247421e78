/**
 * Zeroing a whole 1 TiB thin LUN with one WRITE SAME(16), NUMBER OF LOGICAL BLOCKS 0 (= through
 * the last LBA, WSNZ=0).
 *
 *   npx tsx tools/bench/write-same.ts [--port 3470] [--admin-port 3471] [--mib 64] [--places 64]
 *
 * Starts `node bin/arraysim.js serve --listen 127.0.0.1:PORT --lun 1TiB --admin 127.0.0.1:ADMINPORT`
 * as a child process. For each variant (UNMAP=0 with a zero Data-Out block; UNMAP=1 with a zero
 * block; NDOB=1 UNMAP=1, no Data-Out) it first writes --mib MiB of non-zero data in --places
 * pieces spread evenly over the LUN, then sends the one WRITE SAME(16) over LBA 0 .. end and
 * reports its wall time, the child's VmRSS and the LUN's allocatedBytes (GET /v1/status) before
 * and after, GET LBA STATUS at a few LBAs afterwards, and checks that a written place reads zeros.
 */
import { cdb16 } from '../../test/helpers/cdb.ts';
import { check, numOpt, rssKiB, session, startTarget, waitPort } from './target.ts';

const PORT = numOpt('port', 3470);
const ADMIN = numOpt('admin-port', 3471);
const MIB = numOpt('mib', 64);
const PLACES = numOpt('places', 64);
const IQN = 'iqn.2026-11.dev.arraysim:default';

const mib = (kib: number): string => `${(kib / 1024).toFixed(1)} MiB`;

async function allocatedBytes(): Promise<number> {
  const s = await (await fetch(`http://127.0.0.1:${ADMIN}/v1/status`)).json() as { targets: Array<{ luns: Array<{ allocatedBytes: number | null }> }> };
  return s.targets[0].luns[0].allocatedBytes ?? NaN;
}

/** WRITE SAME(16) over [0, end): NUMBER OF LOGICAL BLOCKS 0. */
function writeSame16(unmap: boolean, ndob: boolean): Buffer {
  const c = cdb16(0x93, 0, 0);
  c[1] = (unmap ? 0x08 : 0) | (ndob ? 0x01 : 0);
  return c;
}

async function main(): Promise<void> {
  const { child, stop } = startTarget(['--listen', `127.0.0.1:${PORT}`, '--lun', '1TiB', '--admin', `127.0.0.1:${ADMIN}`]);
  process.on('exit', stop);
  try {
    await waitPort(PORT);
    await waitPort(ADMIN);
    const ini = await session(PORT, IQN);
    const cap = await ini.scsi(0, [0x9e, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0], { read: 32 });
    check(cap, 'READ CAPACITY(16)');
    const blocks = cap.data.readBigUInt64BE(0) + 1n;
    const idle = rssKiB(child.pid!);
    const bs = cap.data.readUInt32BE(8);
    console.log(`LUN: ${blocks} blocks of ${bs} bytes (${Number(blocks) * bs / 2 ** 40} TiB), LBPME=${(cap.data[14] >> 7) & 1} LBPRZ=${(cap.data[14] >> 6) & 1}, target pid ${child.pid}, 127.0.0.1:${PORT}, idle RSS ${mib(idle)}`);

    const piece = Buffer.alloc((MIB << 20) / PLACES);
    for (let i = 0; i < piece.length; i += 4) piece.writeUInt32BE(((i * 2654435761) | 1) >>> 0, i);
    const pieceBlocks = piece.length / bs;
    const stride = blocks / BigInt(PLACES);
    // A little off the 1 MiB chunk grid, so pieces straddle chunks and the edges of the range are partial.
    const placeLba = (i: number): bigint => BigInt(i) * stride + BigInt(i * 8);

    const variants: Array<{ name: string; unmap: boolean; ndob: boolean }> = [
      { name: 'UNMAP=0, zero block', unmap: false, ndob: false },
      { name: 'UNMAP=1, zero block', unmap: true, ndob: false },
      { name: 'UNMAP=1, NDOB=1', unmap: true, ndob: true },
    ];
    const zero = Buffer.alloc(bs);
    for (const v of variants) {
      for (let i = 0; i < PLACES; i++) check(await ini.scsi(0, cdb16(0x8a, placeLba(i), pieceBlocks), { write: piece }), 'fill');
      await new Promise((r) => setTimeout(r, 500));
      const rss0 = rssKiB(child.pid!);
      const alloc0 = await allocatedBytes();
      const t0 = performance.now();
      const r = await ini.scsi(0, writeSame16(v.unmap, v.ndob), v.ndob ? {} : { write: zero });
      const ms = performance.now() - t0;
      check(r, `WRITE SAME(16) ${v.name}`);
      const rss1 = rssKiB(child.pid!);
      const alloc1 = await allocatedBytes();
      await new Promise((r) => setTimeout(r, 1000));
      const rss2 = rssKiB(child.pid!);
      const back = await ini.scsi(0, cdb16(0x88, placeLba(PLACES - 1), pieceBlocks), { read: piece.length });
      check(back, 'read back');
      const zeros = back.data.every((b) => b === 0);
      console.log(`\nWRITE SAME(16) ${v.name}, NUMBER OF LOGICAL BLOCKS 0 from LBA 0 (${MIB} MiB written at ${PLACES} places first):`);
      console.log(`  elapsed ${ms.toFixed(1)} ms`);
      console.log(`  RSS ${mib(rss0)} before, ${mib(rss1)} right after, ${mib(rss2)} 1 s later`);
      console.log(`  allocatedBytes ${alloc0} before, ${alloc1} after`);
      console.log(`  last written place reads back ${zeros ? 'zeros' : 'NON-ZERO DATA'}`);
      for (const lba of [0n, placeLba(PLACES / 2), blocks / 2n + 12345n, blocks - 1n]) {
        const g = await ini.scsi(0, [0x9e, 0x12, ...cdb16(0, lba, 0).subarray(2, 10), 0, 0, 0, 64, 0, 0], { read: 64 });
        check(g, 'GET LBA STATUS');
        const n = (g.data.readUInt32BE(0) - 4) / 16;
        const d = g.data.subarray(8, 24);
        console.log(`  GET LBA STATUS at LBA ${lba}: ${n} descriptor(s), first: LBA ${d.readBigUInt64BE(0)} +${d.readUInt32BE(8)} blocks, status ${d[12]} (${d[12] === 1 ? 'deallocated' : d[12] === 0 ? 'mapped' : 'anchored/other'})`);
      }
    }
    ini.close();
  } finally {
    stop();
  }
}

main().catch((e) => { console.error(e); process.exitCode = 1; });
