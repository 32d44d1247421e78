/**
 * Per-LU LBA range lock for asynchronous stores. With the synchronous memory store a command
 * runs start to finish inside one turn of the event loop, so COMPARE AND WRITE is atomic for
 * free; with the file store its read, compare and write are separate awaits, and SBC-4 §5.3
 * requires the compare and the write to be indivisible with respect to other writes to the
 * same LBAs. Writers take the range exclusively; non-overlapping ranges never wait.
 */
import type { LogicalUnit } from './lu.ts';

interface Held {
  start: bigint;
  end: bigint;
  done: Promise<void>;
  release: () => void;
}

export class RangeLock {
  private readonly held = new Set<Held>();

  get size(): number { return this.held.size; }

  /** Wait until [lba, lba+blocks) overlaps no held range, then hold it. Resolves to the release function. */
  async acquire(lba: bigint, blocks: number | bigint): Promise<() => void> {
    const start = lba;
    const end = lba + BigInt(blocks);
    for (;;) {
      let blocker: Held | undefined;
      for (const h of this.held) {
        if (h.start < end && start < h.end) { blocker = h; break; }
      }
      if (!blocker) break;
      await blocker.done;
    }
    let release!: () => void;
    const done = new Promise<void>((r) => { release = r; });
    const h: Held = { start, end, done, release };
    this.held.add(h);
    return () => {
      if (this.held.delete(h)) h.release();
    };
  }
}

const locks = new WeakMap<LogicalUnit, RangeLock>();

export function rangeLockOf(lu: LogicalUnit): RangeLock {
  let l = locks.get(lu);
  if (!l) locks.set(lu, (l = new RangeLock()));
  return l;
}
