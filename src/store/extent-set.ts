/**
 * A set of block extents kept as sorted, disjoint, non-adjacent half-open runs [start, end).
 * The file store uses it to remember which blocks it knows to be deallocated (GET LBA STATUS,
 * SBC-4 §5.8). Block numbers are plain numbers: exact up to 2^53 blocks.
 */
export class ExtentSet {
  private starts: number[] = [];
  private ends: number[] = [];

  get size(): number { return this.starts.length; }

  /** Index of the first run whose end is > x. */
  private firstEndingAfter(x: number): number {
    let lo = 0, hi = this.ends.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.ends[mid] > x) hi = mid; else lo = mid + 1;
    }
    return lo;
  }

  add(start: number, end: number): void {
    if (end <= start) return;
    // Runs touching or overlapping [start, end) merge with it.
    let i = this.firstEndingAfter(start - 1);
    let j = i;
    while (j < this.starts.length && this.starts[j] <= end) {
      start = Math.min(start, this.starts[j]);
      end = Math.max(end, this.ends[j]);
      j++;
    }
    this.starts.splice(i, j - i, start);
    this.ends.splice(i, j - i, end);
  }

  remove(start: number, end: number): void {
    if (end <= start) return;
    const i = this.firstEndingAfter(start);
    let j = i;
    const ns: number[] = [], ne: number[] = [];
    while (j < this.starts.length && this.starts[j] < end) {
      if (this.starts[j] < start) { ns.push(this.starts[j]); ne.push(start); }
      if (this.ends[j] > end) { ns.push(end); ne.push(this.ends[j]); }
      j++;
    }
    if (j === i) return;
    this.starts.splice(i, j - i, ...ns);
    this.ends.splice(i, j - i, ...ne);
  }

  /** Whether x is in the set, and how far the same answer holds (exclusive end, capped at `limit`). */
  run(x: number, limit: number): { inSet: boolean; end: number } {
    const i = this.firstEndingAfter(x);
    if (i < this.starts.length && this.starts[i] <= x) return { inSet: true, end: Math.min(this.ends[i], limit) };
    return { inSet: false, end: Math.min(i < this.starts.length ? this.starts[i] : limit, limit) };
  }

  clear(): void { this.starts = []; this.ends = []; }

  /** Runs intersecting [0, limit): for tests and debugging. */
  toArray(): Array<[number, number]> {
    return this.starts.map((s, k) => [s, this.ends[k]] as [number, number]);
  }
}
