/**
 * Values by consecutive sequence number (a primary's replicated writes awaiting the peer's ack),
 * in a ring rather than a Map. Why: a Map with steady churn (an insert and a delete per write)
 * rehashes into a new table every few dozen writes; once a table has lived long enough to be in
 * V8's old generation, a discarded one still points at the young objects it held, and every
 * scavenge treats that as a reference until the next full collection: the in-flight writes'
 * objects (origin, op, promise chain, iSCSI task) then survive and are promoted wholesale. A
 * ring's slots are cleared when a value goes, and the array is replaced only when it grows.
 *
 * Sequence numbers are assigned in order and start again after clear(); values usually leave in
 * order (the secondary acknowledges in order), but may leave in any order.
 */
export class SeqRing<T> {
  private slots: (T | undefined)[] = new Array<T | undefined>(64).fill(undefined);
  /** No value below `low`; none at or above `high`. */
  private low = 0;
  private high = 0;
  private count = 0;

  get size(): number { return this.count; }

  /** `seq` must be above every sequence number present (the next one assigned). */
  set(seq: number, v: T): void {
    if (this.count === 0) { this.low = seq; this.high = seq; }
    if (seq < this.high) throw new RangeError(`sequence ${seq} is not after ${this.high - 1}`);
    while (seq - this.low >= this.slots.length) this.grow();
    this.slots[seq % this.slots.length] = v;
    this.high = seq + 1;
    this.count++;
  }

  get(seq: number): T | undefined {
    return seq >= this.low && seq < this.high ? this.slots[seq % this.slots.length] : undefined;
  }

  delete(seq: number): boolean {
    if (this.get(seq) === undefined) return false;
    const n = this.slots.length;
    this.slots[seq % n] = undefined;
    this.count--;
    if (this.count === 0) { this.low = this.high; return true; }
    while (this.slots[this.low % n] === undefined) this.low++;
    return true;
  }

  /** Present values in sequence order. */
  *entries(): IterableIterator<[number, T]> {
    for (let s = this.low; s < this.high; s++) {
      const v = this.slots[s % this.slots.length];
      if (v !== undefined) yield [s, v];
    }
  }

  clear(): void {
    for (let s = this.low; s < this.high; s++) this.slots[s % this.slots.length] = undefined;
    this.count = 0;
    this.low = this.high;
  }

  private grow(): void {
    const old = this.slots;
    const next = new Array<T | undefined>(old.length * 2).fill(undefined);
    for (let s = this.low; s < this.high; s++) next[s % next.length] = old[s % old.length];
    this.slots = next;
  }
}
