/**
 * ATS (COMPARE AND WRITE) under contention.
 *
 *   npx tsx tools/bench/ats.ts [--port 3472] [--seconds 5] [--sessions 8]
 *
 * Starts `node bin/arraysim.js serve` with two portals (PORT and PORT+1) and one thin 1 GiB
 * memory LUN, logs in --sessions sessions alternately on the two portals (TestInitiator, all in
 * this process, one command in flight per session) and runs each case for --seconds:
 *  (a) every session increments one shared counter block with read-compare-and-write loops:
 *      COMPARE AND WRITE(old -> old+1); on MISCOMPARE re-read the block and retry;
 *  (b) the same, each session on its own block;
 *  (c) plain 512-byte WRITE(10)s, each session to its own block, for comparison;
 *  (d) plain 512-byte WRITE(10)s, all sessions to one block.
 * Prints successful ops/s, miscompares/s, all commands/s (ATS, re-reads, writes) and the CPU time of the target and of this
 * process, and checks that every counter block holds exactly the number of successful ATS ops
 * made on it.
 */
import type { TestInitiator } from '../../test/helpers/initiator.ts';
import { caw16, cdb16 } from '../../test/helpers/cdb.ts';
import { check, cpuSeconds, numOpt, senseOf, session, startTarget, waitPort } from './target.ts';

const PORT = numOpt('port', 3472);
const SECONDS = numOpt('seconds', 5);
const SESSIONS = numOpt('sessions', 8);
const IQN = 'iqn.2026-11.dev.arraysim:bench-ats';
const BS = 512;

/** A counter block: the counter as a 64-bit big-endian number, then a fixed non-zero filler. */
function counterBlock(n: bigint): Buffer {
  const b = Buffer.alloc(BS, 0xa5);
  b.writeBigUInt64BE(n, 0);
  return b;
}

function write10(lba: number): Buffer {
  const c = Buffer.alloc(10);
  c[0] = 0x2a;
  c.writeUInt32BE(lba, 2);
  c.writeUInt16BE(1, 7);
  return c;
}

async function readCounter(ini: TestInitiator, lba: number): Promise<bigint> {
  const r = await ini.scsi(0, cdb16(0x88, lba, 1), { read: BS });
  check(r, 'READ(16)');
  return r.data.readBigUInt64BE(0);
}

/** Successful commands, MISCOMPAREs, and every command sent (re-reads included). */
interface Tally { ok: number; miscompares: number; commands: number }

/** One session's ATS increment loop on `lba` until `deadline`. */
async function atsLoop(ini: TestInitiator, lba: number, deadline: number): Promise<Tally> {
  const t: Tally = { ok: 0, miscompares: 0, commands: 0 };
  let known = await readCounter(ini, lba);
  while (performance.now() < deadline) {
    const r = await ini.scsi(0, caw16(lba, 1), { write: Buffer.concat([counterBlock(known), counterBlock(known + 1n)]) });
    t.commands++;
    if (r.status === 0) {
      t.ok++;
      known++;
      continue;
    }
    const s = senseOf(r);
    if (r.status !== 2 || s?.key !== 0x0e || s.asc !== 0x1d) throw new Error(`COMPARE AND WRITE: status ${r.status} sense ${r.sense?.toString('hex')}`);
    t.miscompares++;
    t.commands++;
    known = await readCounter(ini, lba);
  }
  return t;
}

async function writeLoop(ini: TestInitiator, lba: number, deadline: number): Promise<Tally> {
  const t: Tally = { ok: 0, miscompares: 0, commands: 0 };
  const data = counterBlock(BigInt(lba));
  while (performance.now() < deadline) {
    check(await ini.scsi(0, write10(lba), { write: data }), 'WRITE(10)');
    t.ok++;
    t.commands++;
  }
  return t;
}

async function main(): Promise<void> {
  const { child, stop } = startTarget(['--listen', `127.0.0.1:${PORT}`, '--listen', `127.0.0.1:${PORT + 1}`, '--target', IQN, '--lun', '1GiB', '--admin', 'none']);
  process.on('exit', stop);
  try {
    await Promise.all([waitPort(PORT), waitPort(PORT + 1)]);
    const sessions: TestInitiator[] = [];
    for (let i = 0; i < SESSIONS; i++) sessions.push(await session(PORT + (i % 2), IQN));
    const setup = sessions[0];

    const cases: Array<{ name: string; kind: 'ats' | 'write'; lba: (i: number) => number }> = [
      { name: '(a) ATS, all sessions on one block', kind: 'ats', lba: () => 0 },
      { name: '(b) ATS, one block per session', kind: 'ats', lba: (i) => 8 + i },
      { name: '(c) WRITE(10) 512 B, one block per session', kind: 'write', lba: (i) => 64 + i },
      { name: '(d) WRITE(10) 512 B, all sessions on one block', kind: 'write', lba: () => 128 },
    ];
    const rows: string[] = [];
    const problems: string[] = [];
    for (const c of cases) {
      if (c.kind === 'ats') {
        for (let i = 0; i < SESSIONS; i++) check(await setup.scsi(0, cdb16(0x8a, c.lba(i), 1), { write: counterBlock(0n) }), 'reset counter');
      }
      const cpu0 = cpuSeconds(child.pid!);
      const self0 = process.cpuUsage();
      const t0 = performance.now();
      const deadline = t0 + SECONDS * 1000;
      const tallies = await Promise.all(sessions.map((ini, i) => (c.kind === 'ats' ? atsLoop : writeLoop)(ini, c.lba(i), deadline)));
      const secs = (performance.now() - t0) / 1000;
      const targetCpu = cpuSeconds(child.pid!) - cpu0;
      const self = process.cpuUsage(self0);
      const selfCpu = (self.user + self.system) / 1e6;
      const sum = (k: keyof Tally) => tallies.reduce((a, t) => a + t[k], 0);
      const ok = sum('ok');
      const miss = sum('miscompares');
      const perSession = tallies.map((t) => t.ok);
      if (c.kind === 'ats') {
        // Every counter block must hold the successful ATS ops made on it.
        const expected = new Map<number, number>();
        tallies.forEach((t, i) => expected.set(c.lba(i), (expected.get(c.lba(i)) ?? 0) + t.ok));
        let bad = 0;
        for (const [lba, n] of expected) {
          const got = await readCounter(setup, lba);
          const line = `${c.name}: counter at LBA ${lba} = ${got}, successful ATS ops on it = ${n}`;
          if (got !== BigInt(n)) { bad++; problems.push(line); }
          if (expected.size === 1) console.log(line + (got === BigInt(n) ? ' (equal)' : ' (DIFFERENT)'));
        }
        if (expected.size > 1) console.log(`${c.name}: ${expected.size - bad} of ${expected.size} counters equal their session's successful ATS ops`);
      }
      const rate = (n: number) => Math.round(n / secs).toLocaleString('en-US');
      rows.push(`| ${c.name} | ${ok.toLocaleString('en-US')} | ${rate(ok)} | ${c.kind === 'ats' ? rate(miss) : '-'} | ${rate(sum('commands'))} | ${Math.min(...perSession).toLocaleString('en-US')}..${Math.max(...perSession).toLocaleString('en-US')} | ${Math.round(100 * targetCpu / secs)} % | ${Math.round(100 * selfCpu / secs)} % |`);
    }
    for (const ini of sessions) ini.close();

    console.log(`\n${SESSIONS} sessions over 127.0.0.1:${PORT} and 127.0.0.1:${PORT + 1}, one command in flight each, ${SECONDS} s per case, thin 1 GiB memory LUN`);
    console.log('\n| case | successful ops | ops/s | miscompares/s | commands/s (all) | ops per session (min..max) | target CPU | initiator CPU |');
    console.log('|---|---|---|---|---|---|---|---|');
    for (const r of rows) console.log(r);
    if (problems.length) {
      console.error(`\ncounter check FAILED:\n${problems.join('\n')}`);
      process.exitCode = 1;
    }
  } finally {
    stop();
  }
}

main().catch((e) => { console.error(e); process.exitCode = 1; });
