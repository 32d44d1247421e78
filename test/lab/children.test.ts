/**
 * LabChild.line reads only its own process's output: a restarted process appends to the log file
 * of the one before it, whose ready line must not be taken for the new one's.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cliEntry, LabChild } from '../../src/lab/children.ts';
import { WITNESS_READY } from '../../src/lab/topology.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'lab-children-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('LabChild', () => {
  it('a ready line left in the log by an earlier process does not count for a new one', async () => {
    const log = path.join(dir, 'witness.log');
    writeFileSync(log, 'witness listening on 127.0.3.1:5300\n');
    // A process that exits without printing the line (an unknown verb is a usage error).
    const c = new LabChild('witness', cliEntry(), ['no-such-verb'], log);
    await expect(c.line(WITNESS_READY)).rejects.toThrow(/witness exited \(exit code \d+\) before printing/);
  }, 30_000);

  it('finds the line its own process prints, and kill() reports the signal', async () => {
    const log = path.join(dir, 'witness2.log');
    writeFileSync(log, 'earlier output\n');
    const c = new LabChild('witness', cliEntry(), ['witness', '--listen', '127.0.3.1:0'], log, { ARRAYSIM_CHILD_TEST: '1' });
    const m = await c.line(WITNESS_READY);
    expect(m[1]).toMatch(/^127\.0\.3\.1:\d+$/);
    expect((await c.kill()).signal).toBe('SIGKILL');
    expect(c.running).toBe(false);
  }, 30_000);
});
