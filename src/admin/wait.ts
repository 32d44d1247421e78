/**
 * Waiting, from the CLI, for work the array does on its own after a verb returns: a Remote Copy
 * group's resync (`rcopy startgroup --wait`), a splitter copy's initialization (`rp start_transfer
 * --wait`). The admin API is polled until the state says the work is over; what the replies report
 * as done and to do is shown as a progress line (src/progress.ts: a bar with rate and ETA on a
 * terminal, nothing when piped), and the verb prints only the last reply.
 */
import { formatDuration, Progress } from '../progress.ts';
import type { ProgressOptions } from '../progress.ts';

/** One look at the work, taken from an admin API reply. */
export interface WaitSample<T> {
  /** The reply itself: what the verb prints when the wait is over. */
  reply: T;
  done: number;
  /** Unknown (spinner) when omitted. */
  total?: number;
  /** The work is over: the wait ends well. */
  over: boolean;
  /** The work cannot end while we wait (stopped, failed): why. The wait ends with a WaitError. */
  failed?: string;
}

export class WaitError extends Error {}

export interface WaitOptions extends ProgressOptions {
  /** Between two polls (ms); default 250. */
  pollMs?: number;
  /** Give up after this long (ms); default 10 minutes. */
  timeoutMs?: number;
}

export async function waitFor<T>(poll: () => Promise<WaitSample<T>>, o: WaitOptions): Promise<T> {
  const timeoutMs = o.timeoutMs ?? 600_000;
  const deadline = Date.now() + timeoutMs;
  const p = Progress.start(o);
  try {
    for (;;) {
      const s = await poll();
      p.setTotal(s.total);
      p.update(s.done);
      if (s.over) return s.reply;
      if (s.failed) throw new WaitError(s.failed);
      if (Date.now() >= deadline) throw new WaitError(`${o.label}: not over after ${formatDuration(timeoutMs)}`);
      await new Promise((r) => setTimeout(r, o.pollMs ?? 250));
    }
  } finally {
    p.done();
  }
}
