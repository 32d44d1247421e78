/**
 * Per-LU LBA range lock: what makes COMPARE AND WRITE (SBC-4 §5.3) atomic with respect to every
 * other command touching the same LBAs, from any I_T nexus, without a global mutex.
 *
 * Every command that writes the medium (WRITE 6-16, WRITE AND VERIFY, ORWRITE, WRITE SAME,
 * UNMAP, WRITE ATOMIC, COMPARE AND WRITE, and anything issued through the LU front door such
 * as XCOPY) runs its store access inside `run(…, 'exclusive')`; commands that only read the
 * medium (READ, VERIFY) run inside `run(…, 'shared')`. Non-overlapping ranges never wait.
 *
 * Why both stores need it: the memory store is synchronous, so a command whose body does not
 * await runs start to finish inside one turn of the event loop and cannot interleave with
 * another; the file store's read, compare and write are separate awaits, and without the lock
 * a WRITE from another session could land between COMPARE AND WRITE's read and its write.
 * The lock makes both the same: `run` executes the body synchronously (no promise, no
 * allocation) when nothing conflicting is held or queued, and otherwise queues it.
 *
 * Grants are FIFO among overlapping requests: a queued writer blocks later overlapping
 * arrivals (also synchronous ones), so a stream of readers cannot starve an ATS.
 * A body must not take a second range of the same LU while it holds one (no nesting): an
 * XCOPY-style command copies through the front door one segment at a time instead.
 */
import type { LogicalUnit } from './lu.ts';

export type LockMode = 'shared' | 'exclusive';

interface Entry {
  /** [start, end) in blocks, as numbers (see span). */
  start: number;
  end: number;
  mode: LockMode;
  granted: boolean;
  grant?: () => void;
  /** A hold that can be broken (hold()'s `detach`); after a break, what its release must still free. */
  detach?: () => (() => void) | null;
  afterBreak?: () => void;
  /** A writer queued behind a breakable hold: the timer that breaks it. */
  breakTimer?: ReturnType<typeof setTimeout>;
}

/**
 * How long a writer waits behind a READ's hold before the hold is broken by copy-on-write
 * (hold()). A hold normally ends within the event-loop turn that sent the data; one that lasts
 * this long belongs to a reader that is not reading its socket.
 */
export const holdBreak = { ms: 1000 };

// Mode first: two shared entries never conflict.
const conflicts = (a: Entry, b: Entry): boolean =>
  (a.mode === 'exclusive' || b.mode === 'exclusive') && a.start < b.end && b.start < a.end;

/**
 * An entry's range as numbers: a replicated write holds its range until the peer acknowledges it,
 * so at QD32 every write is compared with ~32 held entries, and BigInt compares cost several
 * times number ones. Exact while lba + blocks < 2^53 (any LU there can be: 2^53 blocks of 512
 * bytes are 4 EiB); past that the entry spans everything, so it waits too much, never too little.
 */
function entry(lba: bigint, blocks: number | bigint, mode: LockMode, granted: boolean): Entry {
  const start = Number(lba);
  const end = start + Number(blocks);
  return end <= Number.MAX_SAFE_INTEGER ? { start, end, mode, granted } : { start: 0, end: Infinity, mode, granted };
}

export class RangeLock {
  /** Held and queued requests, in arrival order. */
  private readonly entries: Entry[] = [];

  /** Requests held or waiting (for tests and the admin API). */
  get size(): number { return this.entries.length; }

  /**
   * Run `body` while holding [lba, lba+blocks) in `mode`. Synchronous when the range is free and
   * the body is; a body that returns a promise keeps the range until the promise settles.
   */
  run<T>(lba: bigint, blocks: number | bigint, mode: LockMode, body: () => T | Promise<T>): T | Promise<T> {
    const e = entry(lba, blocks, mode, true);
    if (!this.conflicting(e)) {
      const r = body();
      if (!(r instanceof Promise)) return r;
      this.entries.push(e);
      // then(), not finally(): finally adds two promises and two microtask hops per call, and a
      // replicated write comes through here every time (its store write settles when the peer acks).
      return r.then((v) => { this.release(e); return v; }, (err: unknown) => { this.release(e); throw err; });
    }
    return this.acquire(lba, blocks, mode).then(async (release) => {
      try {
        return await body();
      } finally {
        release();
      }
    });
  }

  /**
   * run(), answering `value` once the body is done: one promise, reaction and closure fewer per
   * command than run(…).then(() => value). WRITE takes this path; a replicated write's store
   * write settles only when the peer acknowledges it, so each of those is held per write in flight.
   */
  runThen<V>(lba: bigint, blocks: number | bigint, mode: LockMode, body: () => unknown, value: V): V | Promise<V> {
    const e = entry(lba, blocks, mode, true);
    if (!this.conflicting(e)) {
      const r = body();
      if (!(r instanceof Promise)) return value;
      this.entries.push(e);
      return r.then(() => { this.release(e); return value; }, (err: unknown) => { this.release(e); throw err; });
    }
    return this.acquire(lba, blocks, mode).then(async (release) => {
      try {
        await body();
        return value;
      } finally {
        release();
      }
    });
  }

  /** Whether anything held or queued conflicts with `e` (a loop, not some(): no closure per call). */
  private conflicting(e: Entry): boolean {
    for (const o of this.entries) if (conflicts(e, o)) return true;
    return false;
  }

  /**
   * Keep [lba, lba+blocks) shared after the current body returns, until the returned function is
   * called (it may be called more than once). Only from inside a body that holds that range
   * shared or exclusive: the new entry goes ahead of every waiter, as the grant it extends did,
   * so a write queued meanwhile still waits for it. The transport uses this to keep a READ's
   * blocks unchanged while its Data-In, a view of a memory store, is still in the socket.
   * `detach`: how to break the hold when a writer has waited holdBreak.ms behind it (the store
   * moves the blocks' memory aside, leaving the old memory to the view); it returns what frees
   * that memory once the view is done (called by the returned release), or null if it cannot.
   */
  hold(lba: bigint, blocks: number | bigint, detach?: () => (() => void) | null): () => void {
    const e = entry(lba, blocks, 'shared', true);
    e.detach = detach;
    this.entries.unshift(e);
    return () => {
      const free = e.afterBreak;
      e.afterBreak = undefined;
      if (free) free(); else this.release(e);
    };
  }

  /**
   * A writer has waited holdBreak.ms behind breakable holds: each conflicting one that can be
   * detached (the store copies the blocks' memory aside for the view that still needs it) stops
   * blocking; its release later frees the old memory instead.
   */
  private breakHolds(w: Entry): void {
    w.breakTimer = undefined;
    const i = this.entries.indexOf(w);
    if (i < 0 || w.granted) return;
    let broke = false;
    for (const o of this.entries.slice(0, i)) {
      if (!o.detach || !conflicts(w, o)) continue;
      const free = o.detach();
      if (free === null) continue;
      o.detach = undefined;
      o.afterBreak = free;
      this.entries.splice(this.entries.indexOf(o), 1);
      broke = true;
    }
    if (broke) this.grantWaiters();
  }

  /** Wait for [lba, lba+blocks) in `mode`, then hold it. Resolves to the release function. */
  acquire(lba: bigint, blocks: number | bigint, mode: LockMode = 'exclusive'): Promise<() => void> {
    const e = entry(lba, blocks, mode, false);
    const before = this.entries.length;
    this.entries.push(e);
    const release = () => this.release(e);
    const ahead = this.entries.slice(0, before);
    if (!ahead.some((o) => conflicts(e, o))) {
      e.granted = true;
      return Promise.resolve(release);
    }
    if (mode === 'exclusive' && ahead.some((o) => o.detach && conflicts(e, o))) {
      e.breakTimer = setTimeout(() => this.breakHolds(e), holdBreak.ms);
      e.breakTimer.unref?.();
    }
    return new Promise((resolve) => { e.grant = () => resolve(release); });
  }

  private release(e: Entry): void {
    const i = this.entries.indexOf(e);
    if (i < 0) return;
    this.entries.splice(i, 1);
    this.grantWaiters();
  }

  /** Grant every waiter that no earlier request (held or queued) conflicts with. */
  private grantWaiters(): void {
    for (let k = 0; k < this.entries.length; k++) {
      const w = this.entries[k];
      if (w.granted) continue;
      let blocked = false;
      for (let j = 0; j < k && !blocked; j++) blocked = conflicts(w, this.entries[j]);
      if (!blocked) {
        w.granted = true;
        if (w.breakTimer) { clearTimeout(w.breakTimer); w.breakTimer = undefined; }
        w.grant!();
      }
    }
  }
}

const locks = new WeakMap<LogicalUnit, RangeLock>();

export function rangeLockOf(lu: LogicalUnit): RangeLock {
  let l = locks.get(lu);
  if (!l) locks.set(lu, (l = new RangeLock()));
  return l;
}

/** Run a medium write of [lba, lba+blocks) under the LU's range lock (exclusive). */
export function exclusive<T>(lu: LogicalUnit, lba: bigint, blocks: number | bigint, body: () => T | Promise<T>): T | Promise<T> {
  return rangeLockOf(lu).run(lba, blocks, 'exclusive', body);
}

/** `body` with every LU's whole range held exclusively, in order (commands in flight end first). */
export async function allExclusive(lus: readonly LogicalUnit[], body: () => Promise<void>): Promise<void> {
  const step = async (i: number): Promise<void> => {
    if (i === lus.length) return body();
    await exclusive(lus[i], 0n, lus[i].blockCount, () => step(i + 1));
  };
  await step(0);
}

/** exclusive(), answering `value` when the body is done (RangeLock.runThen). */
export function exclusiveThen<V>(lu: LogicalUnit, lba: bigint, blocks: number | bigint, body: () => unknown, value: V): V | Promise<V> {
  return rangeLockOf(lu).runThen(lba, blocks, 'exclusive', body, value);
}

/** Run a medium read of [lba, lba+blocks) under the LU's range lock (shared). */
export function shared<T>(lu: LogicalUnit, lba: bigint, blocks: number | bigint, body: () => T | Promise<T>): T | Promise<T> {
  return rangeLockOf(lu).run(lba, blocks, 'shared', body);
}
