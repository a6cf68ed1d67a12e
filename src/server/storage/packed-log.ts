// The log a restart replays from the WAL, kept without an object per entry.
//
// A long log used to come back as one Entry object and one Uint8Array view per entry: for
// a million entries ~170 MiB of heap that every scavenge during the replay copied (all of
// it survives), a third of the time Wal.open took. Here an entry is a row of typed arrays
// (term, type, which buffer, where its data lie in it) over the segment buffers the WAL
// read, ~21 bytes each, and an Entry is made only when the core reads one — briefly, as
// young garbage. Rows are dropped from the front as the log is compacted, and a segment
// buffer is let go once no row points into it.

import { varintSize } from '../../protocol/varint.js';
import type { Entry } from '../../raft/types.js';
import { ENTRY_TYPES } from './records.js';

const INITIAL_ROWS = 1024;

export class PackedLog {
  /**
   * The index of the first entry, or where the log is known to start when it holds none
   * (a snapshot marker + 1); undefined when neither is known.
   */
  start: number | undefined;
  /** Entries held, contiguous from `start`. */
  length = 0;
  /** Row of the entry at `start`: compaction moves it instead of copying the rows. */
  private base = 0;
  private terms = new Float64Array(INITIAL_ROWS);
  private types = new Uint8Array(INITIAL_ROWS);
  private bufferIds = new Int32Array(INITIAL_ROWS);
  private offsets = new Int32Array(INITIAL_ROWS);
  private lengths = new Int32Array(INITIAL_ROWS);
  /** The buffers rows point into, by id; undefined once no row does. */
  private buffers: (Uint8Array | undefined)[] = [];

  /** Index of the last entry (start - 1 when empty, 0 when the start is not known either). */
  get lastIndex(): number {
    return (this.start ?? 1) + this.length - 1;
  }

  /**
   * Adds the entry at `index` with the WAL's replay rule: it replaces whatever the log held
   * from `index` on; an index before the start or past the end (a gap, consistent only if a
   * snapshot covers it, which DiskStorage checks) starts the log over from it. Its type is ENTRY_TYPES[typeCode] (records.ts), its data buf[dataStart,
   * dataEnd), kept as a view.
   */
  add(
    index: number,
    term: number,
    typeCode: number,
    buf: Uint8Array,
    dataStart: number,
    dataEnd: number,
  ): void {
    const start = this.start;
    if (start === undefined || index < start || index > start + this.length) {
      this.clear(index);
    } else {
      this.length = index - start;
    }
    const row = this.base + this.length;
    if (row === this.terms.length) this.grow();
    let id = this.buffers.length - 1;
    if (this.buffers[id] !== buf) id = this.buffers.push(buf) - 1;
    this.terms[row] = term;
    this.types[row] = typeCode;
    this.bufferIds[row] = id;
    this.offsets[row] = dataStart;
    this.lengths[row] = dataEnd - dataStart;
    this.length++;
  }

  /** Forgets every entry; the log is next known to start at `start`. */
  clear(start: number | undefined): void {
    this.start = start;
    this.length = 0;
    this.base = 0;
    this.buffers = [];
  }

  /** Term of the entry at index i, which must be held. */
  term(i: number): number {
    return this.terms[this.row(i)]!;
  }

  /** The entry at index i, which must be held; its data are a view into the WAL's buffer. */
  at(i: number): Entry {
    const row = this.row(i);
    const buf = this.buffers[this.bufferIds[row]!]!;
    return {
      term: this.terms[row]!,
      index: i,
      type: ENTRY_TYPES[this.types[row]!]!,
      data: new Uint8Array(buf.buffer, buf.byteOffset + this.offsets[row]!, this.lengths[row]!),
    };
  }

  /** entrySize (raft/types.ts) of the entry at index i, without making it. */
  size(i: number): number {
    const row = this.row(i);
    const n = this.lengths[row]!;
    return 4 + varintSize(this.terms[row]!) + varintSize(i) + (n > 0 ? 1 + varintSize(n) + n : 0);
  }

  /** Drops the entries before index i (which must be held or be lastIndex + 1). */
  dropBefore(i: number): void {
    const n = i - this.start!;
    if (n < 0 || n > this.length) throw new RangeError(`packed log: cannot drop before ${i}`);
    this.base += n;
    this.length -= n;
    this.start = i;
    // Rows point into buffers in the order they were read, so every buffer before the
    // first row's is unreferenced now.
    const firstId = this.length > 0 ? this.bufferIds[this.base]! : this.buffers.length;
    for (let id = firstId - 1; id >= 0 && this.buffers[id] !== undefined; id--) this.buffers[id] = undefined;
  }

  /** Drops the entries after index i (i >= start - 1). */
  truncateAfter(i: number): void {
    const n = i - this.start! + 1;
    if (n < 0 || n > this.length) throw new RangeError(`packed log: cannot truncate after ${i}`);
    this.length = n;
  }

  private row(i: number): number {
    const k = i - this.start!;
    if (!(k >= 0 && k < this.length)) {
      throw new RangeError(`packed log: index ${i} is not in [${this.start}, ${this.lastIndex}]`);
    }
    return this.base + k;
  }

  private grow(): void {
    const rows = Math.max(INITIAL_ROWS, 2 * this.length);
    const move = <T extends Float64Array | Uint8Array | Int32Array>(a: T, make: (n: number) => T): T => {
      const b = make(rows);
      b.set(a.subarray(this.base, this.base + this.length));
      return b;
    };
    this.terms = move(this.terms, (n) => new Float64Array(n));
    this.types = move(this.types, (n) => new Uint8Array(n));
    this.bufferIds = move(this.bufferIds, (n) => new Int32Array(n));
    this.offsets = move(this.offsets, (n) => new Int32Array(n));
    this.lengths = move(this.lengths, (n) => new Int32Array(n));
    this.base = 0;
  }
}
