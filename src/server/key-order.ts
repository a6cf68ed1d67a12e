// The KV store's keys in order, for ranges and deterministic snapshots.
//
// Writes vastly outnumber the reads that need the order (ranges with a range end, and
// snapshots), so the order is kept lazily: a new or removed key is only noted, in O(1), and
// the sorted array is brought up to date when someone asks for it. Keeping the array sorted
// on every insert was an O(n) splice per new key — at 100k keys, most of a put's cost.

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

export class KeyOrder {
  /** Keys in compareKeys order as of the last merge (some may have been removed since). */
  private sorted: string[];
  /** Keys added since the last merge, not in `sorted`. */
  private added = new Set<string>();
  /** Keys of `sorted` removed since the last merge. */
  private removed = new Set<string>();
  /**
   * No key has a unit ≥ U+D800, so plain string comparison (native, several times faster
   * than compareKeys) gives the same order. Cleared for good by the first key that has one.
   */
  private plain: boolean;

  /** `sorted` must already be in compareKeys order, without duplicates. */
  constructor(sorted: string[] = []) {
    this.sorted = sorted;
    this.plain = !sorted.some((k) => HIGH_UNIT.test(k));
  }

  /** Notes a key that was not present. */
  add(key: string): void {
    if (this.plain && HIGH_UNIT.test(key)) this.plain = false;
    // Removed and added back before a merge: it is still in place in `sorted`.
    if (!this.removed.delete(key)) this.added.add(key);
  }

  /** Notes a key that was present and is gone. */
  delete(key: string): void {
    if (!this.added.delete(key)) this.removed.add(key);
  }

  /** Every key in compareKeys order. The array is the index's own: do not modify it. */
  keys(): readonly string[] {
    if (this.added.size > 0 || this.removed.size > 0) this.merge();
    return this.sorted;
  }

  /** Index in keys() of the first key ≥ `key`. */
  lowerBound(key: string): number {
    const keys = this.keys();
    let lo = 0;
    let hi = keys.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.less(keys[mid]!, key)) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** One pass over the old order plus a sort of what was added: O(n + k log k). */
  private merge(): void {
    const old = this.sorted;
    const removed = this.removed;
    // The default sort compares strings by UTF-16 units, natively.
    const added = this.plain ? [...this.added].sort() : [...this.added].sort(compareKeys);
    const out: string[] = new Array(old.length - removed.size + added.length);
    let i = 0;
    let j = 0;
    let n = 0;
    while (i < old.length || j < added.length) {
      const a = old[i];
      if (a !== undefined && removed.has(a)) {
        i++;
        continue;
      }
      const b = added[j];
      if (b === undefined || (a !== undefined && this.less(a, b))) {
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
