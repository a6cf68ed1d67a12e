// Stable storage as the Raft core sees it, and an in-memory implementation used by
// tests, the console and hosts that persist elsewhere. Semantics follow etcd's
// Storage interface and MemoryStorage.

import { ErrCompacted, ErrSnapOutOfDate, ErrUnavailable } from './errors.js';
import { type Logger, silentLogger } from './logger.js';
import {
  type ConfState,
  type Entry,
  emptySnapshot,
  entry,
  entrySize,
  type HardState,
  type Snapshot,
} from './types.js';

/**
 * The read side of the host's persistent log. The core never writes through it: the
 * host persists what Ready (or MsgStorageAppend) hands out, then updates its storage.
 *
 * Errors are thrown as the RaftError constants of errors.ts; any other exception is
 * treated by the core as fatal.
 */
export interface Storage {
  /** The persisted HardState and the ConfState of the latest snapshot. */
  initialState(): { hardState: HardState; confState: ConfState };
  /**
   * Entries in [lo, hi), limited to maxSize bytes (entrySize) but always at least one
   * entry when the range is non-empty. Throws ErrCompacted when lo is at or below the
   * snapshot index, ErrUnavailable when the range is not in storage.
   */
  entries(lo: number, hi: number, maxSize: number): Entry[];
  /**
   * Term of entry i. The snapshot's own index is valid (its term is kept for log
   * matching). Throws ErrCompacted below it and ErrUnavailable past the last index.
   */
  term(i: number): number;
  lastIndex(): number;
  /** Index of the first entry that may still be read (snapshot index + 1). */
  firstIndex(): number;
  /** The latest snapshot; may throw ErrSnapshotTemporarilyUnavailable while one is being built. */
  snapshot(): Snapshot;
}

/**
 * Returns the longest prefix of ents whose total entrySize does not exceed maxSize,
 * but never fewer than one entry: a single oversized entry must still make progress.
 */
export function limitSize(ents: Entry[], maxSize: number): Entry[] {
  // Without a limit (the default) or with one entry, nothing can be cut: skip the sizing.
  if (ents.length <= 1 || maxSize === Infinity) return ents;
  let size = entrySize(ents[0]!);
  for (let n = 1; n < ents.length; n++) {
    size += entrySize(ents[n]!);
    if (size > maxSize) return ents.slice(0, n);
  }
  return ents;
}

/**
 * A Storage backed by an array. `ents[0]` is a dummy entry carrying the snapshot's
 * index and term, so that the term of the entry just before the first readable one is
 * always known (needed to match appends right after a compaction).
 *
 * Returned arrays are fresh copies and entries are never mutated in place, so callers
 * may keep what they are given while the storage keeps changing.
 */
export class MemoryStorage implements Storage {
  hardState: HardState = { term: 0, vote: 0, commit: 0 };
  snap: Snapshot = emptySnapshot();
  ents: Entry[] = [entry({ term: 0, index: 0 })];
  private readonly logger: Logger;

  constructor(logger: Logger = silentLogger) {
    this.logger = logger;
  }

  initialState(): { hardState: HardState; confState: ConfState } {
    return { hardState: this.hardState, confState: this.snap.metadata.confState };
  }

  setHardState(hs: HardState): void {
    this.hardState = { ...hs };
  }

  entries(lo: number, hi: number, maxSize: number): Entry[] {
    const offset = this.ents[0]!.index;
    if (lo <= offset) throw ErrCompacted;
    if (hi > this.lastIndex() + 1) {
      this.logger.panic(`entries' hi(${hi}) is out of bound lastindex(${this.lastIndex()})`);
    }
    // Only the dummy entry is left: nothing readable exists.
    if (this.ents.length === 1) throw ErrUnavailable;
    // Size the batch before copying: a restart may ask for a million committed entries
    // at once and keep only what fits maxSize.
    const from = lo - offset;
    let to = Math.min(hi - offset, this.ents.length);
    if (maxSize !== Infinity) {
      let size = entrySize(this.ents[from]!);
      let n = from + 1;
      while (n < to) {
        size += entrySize(this.ents[n]!);
        if (size > maxSize) break;
        n++;
      }
      to = n;
    }
    return this.ents.slice(from, to);
  }

  term(i: number): number {
    const offset = this.ents[0]!.index;
    if (i < offset) throw ErrCompacted;
    if (i - offset >= this.ents.length) throw ErrUnavailable;
    return this.ents[i - offset]!.term;
  }

  lastIndex(): number {
    return this.ents[0]!.index + this.ents.length - 1;
  }

  firstIndex(): number {
    return this.ents[0]!.index + 1;
  }

  snapshot(): Snapshot {
    return this.snap;
  }

  /**
   * Replaces the whole storage with the snapshot: every entry is dropped, since the
   * snapshot supersedes them. Throws ErrSnapOutOfDate unless it is newer than ours.
   */
  applySnapshot(snap: Snapshot): void {
    if (this.snap.metadata.index >= snap.metadata.index) throw ErrSnapOutOfDate;
    this.snap = snap;
    this.ents = [entry({ term: snap.metadata.term, index: snap.metadata.index })];
  }

  /**
   * Records a snapshot of the state machine as of index i (which must be stored) and
   * returns it. The log is left alone; call compact() to drop entries it covers.
   * A missing cs keeps the previous snapshot's ConfState.
   */
  createSnapshot(i: number, cs: ConfState | undefined, data: Uint8Array): Snapshot {
    if (i <= this.snap.metadata.index) throw ErrSnapOutOfDate;
    if (i > this.lastIndex()) {
      this.logger.panic(`snapshot ${i} is out of bound lastindex(${this.lastIndex()})`);
    }
    const offset = this.ents[0]!.index;
    this.snap = {
      data,
      metadata: {
        index: i,
        term: this.ents[i - offset]!.term,
        confState: cs ?? this.snap.metadata.confState,
      },
    };
    return this.snap;
  }

  /**
   * Discards entries up to compactIndex; the entry at compactIndex becomes the new
   * dummy. Throws ErrCompacted when that index is already gone.
   */
  compact(compactIndex: number): void {
    const offset = this.ents[0]!.index;
    if (compactIndex <= offset) throw ErrCompacted;
    if (compactIndex > this.lastIndex()) {
      this.logger.panic(`compact ${compactIndex} is out of bound lastindex(${this.lastIndex()})`);
    }
    const i = compactIndex - offset;
    const kept = this.ents[i]!;
    this.ents = [entry({ term: kept.term, index: kept.index }), ...this.ents.slice(i + 1)];
  }

  /**
   * Appends entries, which must be contiguous. Entries already covered by the snapshot
   * are skipped; an overlap with stored entries replaces the stored suffix (the new
   * leader's log wins). A gap after the last index is a broken invariant.
   */
  append(entries: Entry[]): void {
    if (entries.length === 0) return;
    const first = this.firstIndex();
    const last = entries[0]!.index + entries.length - 1;
    if (last < first) return;
    const fresh = first > entries[0]!.index ? entries.slice(first - entries[0]!.index) : entries;
    const offset = fresh[0]!.index - this.ents[0]!.index;
    if (offset > this.ents.length) {
      this.logger.panic(`missing log entry [last: ${this.lastIndex()}, append at: ${fresh[0]!.index}]`);
    }
    // Cutting in place is safe: readers only ever receive copies.
    if (offset < this.ents.length) this.ents.length = offset;
    for (const e of fresh) this.ents.push(e);
  }
}
