// Flow control for one follower in StateReplicate: the appends sent but not yet
// acknowledged, each remembered by the index of its last entry and its payload bytes.
// The window is full when it holds `size` messages or at least `maxBytes` bytes.
import { RaftPanic } from './logger.js';

export class Inflights {
  /** Ring buffer slot of the oldest in-flight message. */
  private start = 0;
  private inflight = 0;
  private totalBytes = 0;
  /**
   * Two parallel ring buffers (last index, bytes) of capacity `size`, grown on demand:
   * most followers never have many messages in flight, so we do not reserve `size`
   * slots up front.
   */
  private indexes: number[] = [];
  private sizes: number[] = [];

  /**
   * @param size the most messages in flight at once (MaxInflightMsgs).
   * @param maxBytes the most payload bytes in flight (MaxInflightBytes); Infinity for no
   *   limit, and 0 is read as no limit too, as etcd's Config does.
   */
  constructor(
    readonly size: number,
    readonly maxBytes: number = Infinity,
  ) {
    if (maxBytes === 0) this.maxBytes = Infinity;
  }

  /**
   * Records a message whose last entry is `index`. Indexes must be added in increasing
   * order, and never into a full window.
   */
  add(index: number, bytes: number): void {
    if (this.full()) throw new RaftPanic('cannot add into a Full inflights');
    let slot = this.start + this.inflight;
    if (slot >= this.size) slot -= this.size;
    // The occupied slots are all below the buffer's length, so the next free one is at
    // most one past its end: grow by one when we reach it.
    if (slot === this.indexes.length) {
      this.indexes.push(index);
      this.sizes.push(bytes);
    } else {
      this.indexes[slot] = index;
      this.sizes[slot] = bytes;
    }
    this.inflight++;
    this.totalBytes += bytes;
  }

  /** Forgets every message whose last index is ≤ `to`: the follower acknowledged them. */
  freeLE(to: number): void {
    if (this.inflight === 0 || to < this.indexes[this.start]!) return;
    let slot = this.start;
    let freed = 0;
    let freedBytes = 0;
    while (freed < this.inflight && this.indexes[slot]! <= to) {
      freedBytes += this.sizes[slot]!;
      freed++;
      slot++;
      if (slot >= this.size) slot -= this.size;
    }
    this.inflight -= freed;
    this.totalBytes -= freedBytes;
    // An empty window restarts at slot 0 so that the buffer does not grow needlessly.
    this.start = this.inflight === 0 ? 0 : slot;
  }

  full(): boolean {
    return this.inflight === this.size || this.totalBytes >= this.maxBytes;
  }

  count(): number {
    return this.inflight;
  }

  /** Payload bytes currently in flight. */
  bytes(): number {
    return this.totalBytes;
  }

  /** Empties the window (on a state change of the follower). */
  reset(): void {
    this.start = 0;
    this.inflight = 0;
    this.totalBytes = 0;
  }

  clone(): Inflights {
    const c = new Inflights(this.size, this.maxBytes);
    c.start = this.start;
    c.inflight = this.inflight;
    c.totalBytes = this.totalBytes;
    c.indexes = this.indexes.slice();
    c.sizes = this.sizes.slice();
    return c;
  }
}
