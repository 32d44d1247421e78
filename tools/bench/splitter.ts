/**
 * What the write splitter costs over iSCSI: the same workloads against an unprotected LUN and a
 * protected one (`--splitter ats=support`: every primitive supported, memory journal, local copy
 * "local"), two arraysim processes side by side, alternating which goes first, several rounds,
 * medians. Then WRITE SAME over a whole 1 TiB thin protected LUN (time, journal growth).
 *
 *   npx tsx tools/bench/splitter.ts [--rounds 3] [--seconds 4] [--port 3480] [--no-ws 1]
 *
 * - 4 KiB random writes, QD32: WRITE(16) at random 4 KiB-aligned LBAs of the 1 GiB LUN, 32 in
 *   flight for --seconds, from the project's test initiator in this process (qemu-img bench only
 *   writes sequentially, and there is no fio on this machine).
 * - 128 KiB sequential writes, QD32, for --seconds, from the same initiator (qemu-img, which
 *   tools/bench/run.ts drives, is not installed on this machine today).
 * Ports: PORT (unprotected), PORT+1 (protected), PORT+2 / PORT+1002 (1 TiB protected + admin).
 * Prints every round, the load average before and after, and the medians.
 */
import { loadavg } from 'node:os';
import { cdb16 } from '../../test/helpers/cdb.ts';
import type { TestInitiator } from '../../test/helpers/initiator.ts';
import { Progress } from '../../src/progress.ts';
import { check, cpuSeconds, numOpt, session, startTarget, waitPort } from './target.ts';

const ROUNDS = numOpt('rounds', 3);
const SECONDS = numOpt('seconds', 4);
const PORT = numOpt('port', 3480);
const NO_WS = numOpt('no-ws', 0) === 1;
const IQN = 'iqn.2026-11.dev.arraysim:default';
const QD = 32;
const BLOCKS = 2 * 1024 * 1024; // 1 GiB of 512-byte blocks

const load = (): string => loadavg().map((x) => x.toFixed(1)).join(' ');
const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };

async function randomWrites(ini: TestInitiator, seconds: number): Promise<number> {
  const data = Buffer.alloc(4096, 0xa5);
  const end = performance.now() + seconds * 1000;
  let done = 0;
  let seed = 12345;
  const next = (): number => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return (seed % (BLOCKS / 8)) * 8; };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: QD }, async () => {
    while (performance.now() < end) {
      check(await ini.scsi(0, cdb16(0x8a, next(), 8), { write: data }), 'WRITE(16)');
      done++;
    }
  }));
  return done / ((performance.now() - t0) / 1000);
}

/** 128 KiB sequential WRITE(16), QD32, wrapping at the end of the LUN: MiB/s. */
async function seqWrites128(ini: TestInitiator, seconds: number): Promise<number> {
  const data = Buffer.alloc(131072, 0xa5);
  const end = performance.now() + seconds * 1000;
  let done = 0;
  let at = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: QD }, async () => {
    while (performance.now() < end) {
      const lba = at;
      at = (at + 256) % BLOCKS;
      check(await ini.scsi(0, cdb16(0x8a, lba, 256), { write: data }), 'WRITE(16)');
      done++;
    }
  }));
  return (done * 131072) / ((performance.now() - t0) / 1000) / (1 << 20);
}

async function main(): Promise<void> {
  const sides = [
    { name: 'unprotected', port: PORT, args: [] as string[] },
    { name: 'protected', port: PORT + 1, args: ['--splitter', 'ats=support'] },
  ];
  const started = sides.map((s) => startTarget(['--listen', `127.0.0.1:${s.port}`, '--lun', '1GiB', '--admin', 'none', ...s.args]));
  const stopAll = (): void => { for (const s of started) s.stop(); };
  process.on('exit', stopAll);
  try {
    for (const s of sides) await waitPort(s.port);
    const inis = await Promise.all(sides.map((s) => session(s.port, IQN)));
    console.log(`splitter bench: ${ROUNDS} rounds, 4 KiB random ${SECONDS} s, 128 KiB ${SECONDS} s; load before: ${load()}`);
    const r4: Record<string, number[]> = { unprotected: [], protected: [] };
    const r128: Record<string, number[]> = { unprotected: [], protected: [] };
    const cpu: Record<string, number[]> = { unprotected: [], protected: [] };
    // On a terminal, a bar over the measurements with the time left; the round lines go to stderr
    // (through the bar), so stdout holds only the results.
    const progress = Progress.start({ label: 'splitter bench', total: ROUNDS * 4, noun: 'runs' });
    for (let round = 0; round < ROUNDS; round++) {
      const order = round % 2 === 0 ? [0, 1] : [1, 0];
      for (const i of order) {
        const pid = started[i].child.pid!;
        const c0 = cpuSeconds(pid);
        const iops = await randomWrites(inis[i], SECONDS);
        cpu[sides[i].name].push(((cpuSeconds(pid) - c0) * 1e6) / (iops * SECONDS));
        r4[sides[i].name].push(iops);
        progress.note(`round ${round + 1} 4KiB-rand ${sides[i].name}: ${Math.round(iops)} IOPS (target CPU ~${cpu[sides[i].name].at(-1)!.toFixed(0)} us/op; load ${load()})`);
        progress.tick();
      }
      for (const i of order) {
        const mibs = await seqWrites128(inis[i], SECONDS);
        r128[sides[i].name].push(mibs);
        progress.note(`round ${round + 1} 128KiB ${sides[i].name}: ${mibs.toFixed(0)} MiB/s (load ${load()})`);
        progress.tick();
      }
    }
    progress.done();
    const m4 = [median(r4.unprotected), median(r4.protected)];
    const m128 = [median(r128.unprotected), median(r128.protected)];
    console.log(`median 4 KiB random QD32: unprotected ${Math.round(m4[0])} IOPS, protected ${Math.round(m4[1])} IOPS: ${(100 * m4[1] / m4[0]).toFixed(0)}% (goal 85%)`);
    console.log(`median 128 KiB QD32: unprotected ${m128[0].toFixed(0)} MiB/s, protected ${m128[1].toFixed(0)} MiB/s: ${(100 * m128[1] / m128[0]).toFixed(0)}% (goal 75%)`);
    for (const i of inis) i.close();
  } finally {
    stopAll();
  }
  if (!NO_WS) await writeSameTib();
  console.log(`load after: ${load()}`);
}

/** WRITE SAME(16) over the whole of a 1 TiB thin protected LUN: wall time and journal growth (GET /v1/groups/default). */
async function writeSameTib(): Promise<void> {
  const port = PORT + 2;
  const admin = PORT + 1002;
  const t = startTarget(['--listen', `127.0.0.1:${port}`, '--lun', '1TiB', '--splitter', 'ats=support', '--admin', `127.0.0.1:${admin}`]);
  try {
    await waitPort(port);
    await waitPort(admin);
    const journal = async (): Promise<{ bytes: number; records: number }> =>
      ((await (await fetch(`http://127.0.0.1:${admin}/v1/groups/default`)).json()) as { journal: { bytes: number; records: number } }).journal;
    const ini = await session(port, IQN);
    for (const [label, byte1, out] of [['UNMAP=0, zero block', 0x00, Buffer.alloc(512)], ['UNMAP=1', 0x08, Buffer.alloc(512)], ['UNMAP=1 NDOB=1', 0x09, null]] as const) {
      const j0 = await journal();
      const c = cdb16(0x93, 0, 0, byte1); // NUMBER OF LOGICAL BLOCKS 0: through the last LBA
      const t0 = performance.now();
      check(await ini.scsi(0, c, out ? { write: out } : {}), `WRITE SAME(16) ${label}`);
      const ms = performance.now() - t0;
      const j1 = await journal();
      console.log(`WRITE SAME(16) ${label} over 1 TiB thin protected: ${ms.toFixed(1)} ms; journal +${j1.bytes - j0.bytes} bytes, +${j1.records - j0.records} record(s) (goal < 1 s, < 4 KiB)`);
    }
    ini.close();
  } finally {
    t.stop();
  }
}

void main().then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
