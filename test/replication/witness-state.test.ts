/**
 * The witness's state file (witness-state.ts, `arraysim witness --state FILE`): a restarted witness
 * keeps each group's owner and epoch, so it never hands a group back to an old primary that came
 * back while the array it was failed over to is down. The negative controls are the same
 * sequences without the file: the witness then names the old primary, the hole the file closes.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { encodeWitness, WitnessFramer } from '../../protocol/replication/witness.ts';
import type { GroupReport, GroupVerdict } from '../../protocol/replication/witness.ts';
import { WitnessArbiter } from '../../src/replication/witness-arbiter.ts';
import { WitnessServer } from '../../src/replication/witness-server.ts';
import { decodeWitnessState, encodeWitnessState, readWitnessState } from '../../src/replication/witness-state.ts';
import { startWitness } from './witness-process.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'arraysim-witness-state-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const log = pino({ level: 'silent' });

const report = (r: Partial<GroupReport>): GroupReport => ({ group: 'rcg', role: 'primary', status: 'Synced', link: true, syncedAtLoss: false, failover: false, epoch: 0, ...r });
/** The old primary back from a restart with its configured role and epoch 0, alone (its link down). */
const OLD_PRIMARY = report({ status: 'Stopped', link: false });
const S_ASKS = report({ role: 'secondary', status: 'Stopped', link: false, syncedAtLoss: true, failover: true });

/** One array's connection to a witness: heartbeats out, verdicts back in order. */
async function array(name: string, port: number, host = '127.0.3.1'): Promise<{ beat(r: GroupReport): Promise<GroupVerdict | null>; close(): void }> {
  const s = net.connect(port, host);
  await new Promise((r, j) => { s.once('connect', r); s.once('error', j); });
  const waiting: ((v: GroupVerdict | null) => void)[] = [];
  const framer = new WitnessFramer();
  s.on('data', (c) => framer.push(c, (e) => { if (e.kind === 'message' && e.message.type === 'verdict') waiting.shift()?.(e.message.groups[0]); }));
  s.on('close', () => { for (const w of waiting.splice(0)) w(null); });
  s.on('error', () => {});
  let nonce = 0n;
  return {
    beat: (r) => new Promise((resolve) => { if (s.destroyed) { resolve(null); return; } waiting.push(resolve); s.write(encodeWitness({ type: 'heartbeat', array: name, nonce: ++nonce, groups: [r] })); }),
    close: () => s.destroy(),
  };
}

/** Beat every 50 ms until `until` holds for a verdict (or `ms` pass); the last verdict. */
async function beatUntil(a: Awaited<ReturnType<typeof array>>, r: GroupReport, until: (v: GroupVerdict) => boolean, ms: number): Promise<GroupVerdict | null> {
  const end = Date.now() + ms;
  let v: GroupVerdict | null = null;
  do {
    v = await a.beat(r);
    if (!v || until(v)) return v;
    await new Promise((res) => setTimeout(res, 50));
  } while (Date.now() < end);
  return v;
}

describe('witness state file: codec', () => {
  it('round trip; refusals name what is wrong', async () => {
    const recs = [{ group: 'rcg', owner: 'site-b', epoch: 1 }, { group: 'g2', owner: '', epoch: 0 }];
    expect(decodeWitnessState(encodeWitnessState('w', recs))).toEqual(recs);
    expect(() => decodeWitnessState('{')).toThrow(/not JSON/);
    expect(() => decodeWitnessState('{"version":2,"groups":[]}')).toThrow(/version 2/);
    expect(() => decodeWitnessState('{"version":1}')).toThrow(/groups is not a list/);
    expect(() => decodeWitnessState('{"version":1,"groups":[{"group":"g","owner":"A","epoch":1.5}]}')).toThrow(/groups\[0\]\.epoch/);
    expect(() => decodeWitnessState('{"version":1,"groups":[{"group":"","owner":"A","epoch":1}]}')).toThrow(/groups\[0\]\.group/);
    expect(() => decodeWitnessState('{"version":1,"groups":[{"group":"g","owner":"A","epoch":1},{"group":"g","owner":"B","epoch":2}]}')).toThrow(/listed twice/);
    expect(await readWitnessState(path.join(dir, 'absent.json'))).toBeNull();
    const bad = path.join(dir, 'bad.json');
    writeFileSync(bad, 'garbage');
    await expect(readWitnessState(bad)).rejects.toThrow(/bad\.json: not JSON.*does not start/);
  });
});

describe('witness state: a restarted witness keeps owners and epochs', () => {
  it('arbiter: restored, the old primary reporting alone after the grace is not named owner; without the records it is (negative control)', () => {
    const restored = new WitnessArbiter({ startedAt: 0, failTimeoutMs: 2500 });
    restored.restore([{ group: 'rcg', owner: 'B', epoch: 1 }]);
    for (let t = 100; t < 10_000; t += 250) expect(restored.heartbeat('A', [OLD_PRIMARY], t).verdicts[0]).toMatchObject({ owner: 'B', epoch: 1 });
    expect(restored.records()).toEqual([{ group: 'rcg', owner: 'B', epoch: 1 }]);
    const fresh = new WitnessArbiter({ startedAt: 0, failTimeoutMs: 2500 });
    let owner = '';
    for (let t = 100; t < 10_000; t += 250) owner = fresh.heartbeat('A', [OLD_PRIMARY], t).verdicts[0].owner;
    expect(owner).toBe('A');
  });

  it('server: a failover grant is on disk before its verdict arrives; a witness restarted on the file keeps B the owner while A reports alone', { timeout: 30_000 }, async () => {
    const file = path.join(dir, 'grant.json');
    const w1 = new WitnessServer({ host: '127.0.3.1', port: 0, failTimeoutMs: 500, stateFile: file, log });
    const { port } = await w1.start();
    const a = await array('A', port), b = await array('B', port);
    expect(await beatUntil(a, report({}), (v) => v.owner === 'A', 5000)).toMatchObject({ owner: 'A', epoch: 0 });
    await b.beat(report({ role: 'secondary' }));
    a.close(); // A fails; B, Synced when it lost the link, asks until granted
    let onDisk: unknown = null;
    const g = await beatUntil(b, S_ASKS, (v) => {
      if (v.granted) onDisk = JSON.parse(readFileSync(file, 'utf8'));
      return v.granted;
    }, 5000);
    expect(g).toMatchObject({ granted: true, owner: 'B', epoch: 1 });
    expect(onDisk).toMatchObject({ version: 1, groups: [{ group: 'rcg', owner: 'B', epoch: 1 }] });
    b.close();
    await w1.stop();

    const w2 = new WitnessServer({ host: '127.0.3.1', port: 0, failTimeoutMs: 500, stateFile: file, log });
    const again = await w2.start();
    expect(w2.status()).toMatchObject({ state: { file, load: '1 group(s) restored' }, groups: [{ group: 'rcg', owner: 'B', epoch: 1 }] });
    const a2 = await array('A', again.port);
    const v = await beatUntil(a2, OLD_PRIMARY, (x) => x.owner === 'A', 1500);
    expect(v).toMatchObject({ owner: 'B', epoch: 1 });
    a2.close();
    await w2.stop();

    // Negative control: the same restart without the file names A (the gap the file closes).
    const w3 = new WitnessServer({ host: '127.0.3.1', port: 0, failTimeoutMs: 500, log });
    const bare = await w3.start();
    const a3 = await array('A', bare.port);
    expect(await beatUntil(a3, OLD_PRIMARY, (x) => x.owner === 'A', 3000)).toMatchObject({ owner: 'A' });
    a3.close();
    await w3.stop();
  });

  it('server: a state file that cannot be written stops the verdict that changed an owner (the connection closes, nothing is announced)', { timeout: 30_000 }, async () => {
    const errors: unknown[] = [];
    const w = new WitnessServer({ host: '127.0.3.1', port: 0, failTimeoutMs: 300, stateFile: path.join(dir, 'no-such-folder', 'w.json'), log, onStateError: (e) => errors.push(e) });
    const { port } = await w.start();
    const a = await array('A', port);
    expect(await a.beat(report({}))).toMatchObject({ owner: '' }); // within the grace: no change, answered
    const last = await beatUntil(a, report({}), (v) => v.owner === 'A', 3000);
    expect(last).toBeNull(); // the verdict naming A was never sent
    expect(errors).toHaveLength(1);
    expect(String(errors[0])).toMatch(/ENOENT/);
    await w.stop();
  });

  it('process: `arraysim witness --state FILE` killed (SIGKILL) and started again keeps the owner; another array reporting the primary role alone is not named', { timeout: 60_000 }, async () => {
    const file = path.join(dir, 'killed.json');
    const w1 = await startWitness('127.0.3.1:0', ['--state', file, '--fail-timeout-ms', '500']);
    const a = await array('A', w1.port, w1.host);
    expect(await beatUntil(a, report({}), (v) => v.owner === 'A', 10_000)).toMatchObject({ owner: 'A' });
    a.close();
    await w1.stop('SIGKILL');
    const w2 = await startWitness('127.0.3.1:0', ['--state', file, '--fail-timeout-ms', '500']);
    try {
      const b = await array('B', w2.port, w2.host);
      expect(await beatUntil(b, OLD_PRIMARY, (v) => v.owner === 'B', 1500)).toMatchObject({ owner: 'A' });
      b.close();
      expect(w2.log()).toMatch(/"load":"1 group\(s\) restored"/);
      expect(w2.log()).not.toMatch(/no --state/);
    } finally { await w2.stop(); }
  });

  it('process: `arraysim witness` without --state says at start what that risks', { timeout: 60_000 }, async () => {
    const w = await startWitness('127.0.3.1:0');
    try {
      const said = /"level":40,.*"msg":"no --state: owners and epochs live in memory only; if this witness restarts/;
      for (let i = 0; i < 100 && !said.test(w.log()); i++) await new Promise((r) => setTimeout(r, 50));
      expect(w.log()).toMatch(said);
    } finally { await w.stop(); }
  });
});
