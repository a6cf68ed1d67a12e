// The KV store's keys in order, for ranges and deterministic snapshots.
//
// Writes vastly outnumber the reads that need the order (ranges with a range end, and
// snapshots), so the order is kept lazily: a new or removed key is only noted, in O(1), and
// the sorted array is brought up to date (as a new array) when someone asks for it. Keeping
// the array sorted on every insert was an O(n) splice per new key — at 100k keys, most of a
// put's cost.

/**
 * Orders keys as etcd does, by their UTF-8 bytes — which is code point order. JS compares
 * UTF-16 units, which puts U+10000.. (surrogate pairs) before U+E000..U+FFFF; fix that at
 * the first differing unit.
 */
export function compareKeys(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x === y) continue;
    if (x >= 0xd800) x = x >= 0xe000 ? x - 0x800 : x + 0x2000;
    if (y >= 0xd800) y = y >= 0xe000 ? y - 0x800 : y + 0x2000;
    return x - y;
  }
  return a.length - b.length;
}

/** A UTF-16 unit from which UTF-16 order and code point order can differ (see compareKeys). */
const HIGH_UNIT = /[\uD800-\uFFFF]/;

/** What KeyOrder orders: anything that carries its key. */
export interface Keyed {
  readonly key: string;
}

/**
 * Items (the store's slots) in the order of their keys. Items, not key strings: a
 * snapshot or a range walks them and reads each one's entry directly, where a key would
 * cost a lookup in a map of every key — a cache miss per key that made up a third of
 * encoding a snapshot. An item is added once and removed once: a key deleted and written
 * again is a new item.
 */
export class KeyOrder<T extends Keyed> {
  /** Items in key order as of the last merge (some may have been removed since). */
  private sorted: T[];
  /** Items added since the last merge, not in `sorted`. */
  private added = new Set<T>();
  /** Items of `sorted` removed since the last merge. */
  private removed = new Set<T>();
  /**
   * No key has a unit ≥ U+D800, so plain string comparison (native, several times faster
   * than compareKeys) gives the same order. Cleared for good by the first key that has one.
   */
  private plain: boolean;

  /** `sorted` must already be in compareKeys order, without duplicate keys. */
  constructor(sorted: T[] = []) {
    this.sorted = sorted;
    this.plain = !sorted.some((item) => HIGH_UNIT.test(item.key));
  }

  /** Notes an item whose key was not present. */
  add(item: T): void {
    if (this.plain && HIGH_UNIT.test(item.key)) this.plain = false;
    this.added.add(item);
  }

  /** Notes an item that was present and is gone. */
  delete(item: T): void {
    if (!this.added.delete(item)) this.removed.add(item);
  }

  /** Every item in key order. The array is the index's own and never changes: do not modify it. */
  items(): readonly T[] {
    if (this.added.size > 0 || this.removed.size > 0) this.merge();
    return this.sorted;
  }

  /** Index in items() of the first item whose key is ≥ `key`. */
  lowerBound(key: string): number {
    const items = this.items();
    let lo = 0;
    let hi = items.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.less(items[mid]!.key, key)) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** One pass over the old order plus a sort of what was added: O(n + k log k). A new array. */
  private merge(): void {
    const old = this.sorted;
    const removed = this.removed;
    const added = [...this.added].sort(
      this.plain
        ? (a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0)
        : (a, b) => compareKeys(a.key, b.key),
    );
    const out: T[] = new Array(old.length - removed.size + added.length);
    let i = 0;
    let j = 0;
    let n = 0;
    while (i < old.length || j < added.length) {
      const a = old[i];
      if (a !== undefined && removed.size > 0 && removed.has(a)) {
        i++;
        continue;
      }
      const b = added[j];
      if (b === undefined || (a !== undefined && this.less(a.key, b.key))) {
        out[n++] = a!;
        i++;
      } else {
        out[n++] = b;
        j++;
      }
    }
    this.sorted = out;
    this.added = new Set();
    this.removed = new Set();
  }

  private less(a: string, b: string): boolean {
    return this.plain ? a < b : compareKeys(a, b) < 0;
  }
}
