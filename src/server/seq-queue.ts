// A node's own requests are numbered as they arrive (1, 2, 3, …) and mostly answered in that
// order, as their entries apply. Filed in a Map, that traffic (one insert at one end, one
// delete at the other, ~1,000 live) made the table rebuild itself every thousand requests or
// so; on a busy leader those tables were a sixth of all it allocated per write. Here they sit
// in a ring of slots from the oldest number still filed: filing, finding and taking are an
// index each, and the ring grows only when more numbers are pending at once than ever before.

/** Most numbers a queue spans at once (from the oldest filed to the newest): 2^24 slots. */
const MAX_SPAN = 1 << 24;

/**
 * Values (never undefined) filed under increasing whole numbers, taken out in any order —
 * mostly the oldest first.
 */
export class SeqQueue<T> {
  /** Slot of number n: (head + n - first) & (slots.length - 1); undefined outside the span. */
  private slots: (T | undefined)[] = new Array<T | undefined>(16).fill(undefined);
  private head = 0;
  /** The number in slot `head`; the oldest filed, whenever anything is. */
  private first = 0;
  /** Numbers from `first` on that slots cover: filed, taken since, or skipped. */
  private span = 0;
  private count = 0;

  get size(): number {
    return this.count;
  }

  /**
   * Files `value` under `n`, which must be above every number still filed (numbers skipped
   * in between cost a slot each until the ones before them are taken).
   */
  add(n: number, value: T): void {
    if (!Number.isSafeInteger(n)) throw new RangeError(`SeqQueue: ${n} is not a whole number`);
    if (this.span === 0) this.first = n;
    else if (n < this.first + this.span) {
      throw new RangeError(
        `SeqQueue: ${n} is not above ${this.first + this.span - 1}, the last number filed`,
      );
    }
    const span = n - this.first + 1;
    if (span > MAX_SPAN) {
      throw new RangeError(`SeqQueue: ${n} is ${span - 1} past the oldest number filed, ${this.first}`);
    }
    if (span > this.slots.length) this.grow(span);
    this.slots[this.slotOf(n)] = value;
    this.span = span;
    this.count++;
  }

  get(n: number): T | undefined {
    const i = n - this.first;
    return i >= 0 && i < this.span ? this.slots[(this.head + i) & (this.slots.length - 1)] : undefined;
  }

  /** Removes and returns the value filed under `n`, if any. */
  take(n: number): T | undefined {
    const value = this.get(n);
    if (value === undefined) return undefined;
    this.slots[this.slotOf(n)] = undefined;
    this.count--;
    // Past the oldest and any numbers already taken after it, to the next one still filed.
    const mask = this.slots.length - 1;
    while (this.span > 0 && this.slots[this.head] === undefined) {
      this.head = (this.head + 1) & mask;
      this.first++;
      this.span--;
    }
    return value;
  }

  /** The value under the lowest number still filed. */
  oldest(): T | undefined {
    return this.count === 0 ? undefined : this.slots[this.head];
  }

  /** The values filed, by ascending number. */
  *values(): Generator<T> {
    const mask = this.slots.length - 1;
    for (let i = 0; i < this.span; i++) {
      const v = this.slots[(this.head + i) & mask];
      if (v !== undefined) yield v;
    }
  }

  clear(): void {
    this.slots.fill(undefined);
    this.head = 0;
    this.span = 0;
    this.count = 0;
  }

  private slotOf(n: number): number {
    return (this.head + n - this.first) & (this.slots.length - 1);
  }

  /** Re-lays the span from slot 0 in a ring of at least twice `span` slots (a power of two). */
  private grow(span: number): void {
    let size = this.slots.length * 2;
    while (size < span * 2) size *= 2;
    const next = new Array<T | undefined>(size).fill(undefined);
    const mask = this.slots.length - 1;
    for (let i = 0; i < this.span; i++) next[i] = this.slots[(this.head + i) & mask];
    this.slots = next;
    this.head = 0;
  }
}
