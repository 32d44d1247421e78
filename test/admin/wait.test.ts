/**
 * Waiting on the array's own work from the CLI (src/admin/wait.ts): on a terminal the replies'
 * progress is drawn as a bar and cleared at the end; piped, nothing is drawn; a stop or a failure
 * while waiting, and the timeout, end the wait with a WaitError instead of a hang.
 */
import { describe, expect, it } from 'vitest';
import { WaitError, waitFor } from '../../src/admin/wait.ts';
import type { WaitSample } from '../../src/admin/wait.ts';
import { FakeTty } from '../helpers/fake-tty.ts';


/** Replies of a job of 40 blocks that does 10 a look, then says it is over. */
function job(): () => Promise<WaitSample<{ status: string }>> {
  let done = 0;
  return async () => {
    const s = { reply: { status: done >= 40 ? 'Synced' : 'Syncing' }, done, total: 40, over: done >= 40 };
    done += 10;
    return s;
  };
}

describe('waitFor', () => {
  it('on a terminal: a bar with percent, amounts and ETA for each look, cleared at the end; the last reply is returned', async () => {
    const tty = new FakeTty(true, 120);
    const r = await waitFor(job(), { label: 'resync g', noun: 'blocks', stream: tty, delayMs: 0, intervalMs: 0, pollMs: 1 });
    expect(r).toEqual({ status: 'Synced' });
    const lines = tty.lines;
    expect(lines).toContainEqual(expect.stringMatching(/^resync g \[#+-+\]  50% 20 blocks\/40 blocks [\d.]+ blocks\/s ETA \S+$/));
    expect(lines.at(-1)).toMatch(/100% 40 blocks\/40 blocks/);
    expect(tty.out.endsWith('\r\x1b[2K')).toBe(true);
  });

  it('piped: nothing is drawn, the reply still comes back', async () => {
    const piped = new FakeTty(false);
    expect(await waitFor(job(), { label: 'resync g', stream: piped, delayMs: 0, pollMs: 1 })).toEqual({ status: 'Synced' });
    expect(piped.out).toBe('');
  });

  it('a sample that says the work cannot end stops the wait with its reason; so does the timeout', async () => {
    const stopped = async () => ({ reply: null, done: 0, over: false, failed: 'group g is Stopped and not started' });
    await expect(waitFor(stopped, { label: 'resync g', stream: new FakeTty(false) })).rejects.toThrow(new WaitError('group g is Stopped and not started'));
    const never = async () => ({ reply: null, done: 0, over: false });
    await expect(waitFor(never, { label: 'resync g', stream: new FakeTty(false), pollMs: 5, timeoutMs: 30 })).rejects.toThrow(/resync g: not over after 0s/);
  });
});
