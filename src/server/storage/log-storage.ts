// The Storage the node's core reads: the log replayed from the WAL at start-up, packed
// (packed-log.ts), followed by a MemoryStorage holding what was appended since, and the
// snapshot and HardState. It behaves as one MemoryStorage would holding both (the tests
// check it against one); the split only saves the replayed log an object per entry.
//
// While replayed entries are held, the MemoryStorage's dummy entry stands at the last of
// them, so it serves exactly the indexes after the replayed log, and its snapshot is the
// storage's snapshot. Compaction eats the replayed log first; a snapshot from the leader,
// or an append that rewrites the whole replayed log, drops it.
//
// A snapshot's data is the whole state machine, as large as the state itself, and the node
// needs it only to send to a follower that fell behind the log: once it is on disk (and the
// state machine restored from it, when it came from the leader) DiskStorage has the data
// released, and snapshot() answers with SNAPSHOT_DATA_ON_DISK in its place. The transport
// streams such a snapshot from its file a piece at a time (DiskStorage.openSnapshotData), as
// etcd's snapshot sender streams its database file, so a leader never holds a second copy of
// the state to send one.

import { ErrCompacted, ErrSnapOutOfDate } from '../../raft/errors.js';
import type { Logger } from '../../raft/logger.js';
import { MemoryStorage, type Storage } from '../../raft/storage.js';
import {
  type ConfState,
  type Entry,
  entry,
  entrySize,
  type HardState,
  type Snapshot,
  type SnapshotMetadata,
} from '../../raft/types.js';
import type { PackedLog } from './packed-log.js';

/**
 * The data of a snapshot whose bytes are on disk only: the storage's snapshot() has it in
 * place of the data once they are released. Never a snapshot's real data (a state machine's
 * encoding is never empty), and only ever compared by identity: whoever sends the snapshot
 * reads the data from its file instead.
 */
export const SNAPSHOT_DATA_ON_DISK: Uint8Array = new Uint8Array(0);

export class LogStorage implements Storage {
  private readonly tail: MemoryStorage;
  /** The current snapshot's data size in bytes, held or not. */
  private dataBytes: number;
  /** The replayed entries not yet compacted or rewritten, from `replayed.start` on; undefined once none are left. */
  private replayed: PackedLog | undefined;
  /** Index and term of the entry just before the replayed ones (the snapshot's, or 0/0). */
  private beforeReplayed = { index: 0, term: 0 };

  /**
   * The storage after a restart: the snapshot (if any), then the replayed log from the
   * entry after it on (earlier entries in the log are dropped; there must be no gap).
   */
  constructor(
    private readonly logger: Logger,
    snap: Snapshot | undefined,
    log: PackedLog,
  ) {
    this.tail = new MemoryStorage(logger);
    if (snap) this.tail.applySnapshot(snap);
    this.dataBytes = snap?.data.length ?? 0;
    const first = (snap?.metadata.index ?? 0) + 1;
    if (log.length === 0 || log.lastIndex < first) return;
    if (log.start! > first)
      throw new RangeError(`log storage: the log starts at ${log.start}, after ${first}`);
    log.dropBefore(first);
    this.replayed = log;
    this.beforeReplayed = { index: first - 1, term: snap?.metadata.term ?? 0 };
    this.tail.ents = [entry({ index: log.lastIndex, term: log.term(log.lastIndex) })];
  }

  get hardState(): HardState {
    return this.tail.hardState;
  }

  /** The current snapshot's metadata (index 0: none yet). */
  get snapshotMetadata(): SnapshotMetadata {
    return this.tail.snap.metadata;
  }

  /** The current snapshot's data size in bytes, whether or not the data is held in memory. */
  get snapshotBytes(): number {
    return this.dataBytes;
  }

  setHardState(hs: HardState): void {
    this.tail.setHardState(hs);
  }

  initialState(): { hardState: HardState; confState: ConfState } {
    return this.tail.initialState();
  }

  /** The current snapshot; its data is SNAPSHOT_DATA_ON_DISK once released. */
  snapshot(): Snapshot {
    return this.tail.snapshot();
  }

  /**
   * Lets go of the current snapshot's data, which must be saved in its file: snapshot()
   * answers SNAPSHOT_DATA_ON_DISK in its place from now on. A later snapshot (created or
   * applied) replaces it.
   */
  releaseSnapshotData(): void {
    if (this.tail.snap.metadata.index === 0) return;
    this.tail.snap = { metadata: this.tail.snap.metadata, data: SNAPSHOT_DATA_ON_DISK };
  }

  firstIndex(): number {
    return this.replayed ? this.beforeReplayed.index + 1 : this.tail.firstIndex();
  }

  lastIndex(): number {
    return this.tail.lastIndex();
  }

  term(i: number): number {
    const log = this.replayed;
    if (log === undefined || i > log.lastIndex) return this.tail.term(i);
    if (i < this.beforeReplayed.index) throw ErrCompacted;
    return i === this.beforeReplayed.index ? this.beforeReplayed.term : log.term(i);
  }

  entries(lo: number, hi: number, maxSize: number): Entry[] {
    const log = this.replayed;
    if (log === undefined || lo > log.lastIndex) return this.tail.entries(lo, hi, maxSize);
    if (lo <= this.beforeReplayed.index) throw ErrCompacted;
    if (hi > this.lastIndex() + 1) {
      this.logger.panic(`entries' hi(${hi}) is out of bound lastindex(${this.lastIndex()})`);
    }
    // As MemoryStorage: entries while their total size stays within maxSize, at least one.
    const out: Entry[] = [];
    let size = 0;
    const end = Math.min(hi, log.lastIndex + 1);
    for (let i = lo; i < end; i++) {
      if (maxSize !== Infinity) {
        size += log.size(i);
        if (size > maxSize && out.length > 0) return out;
      }
      out.push(log.at(i));
    }
    if (hi === end) return out;
    const rest = this.tail.entries(end, hi, maxSize === Infinity ? Infinity : maxSize - size);
    // The tail gives at least one entry even when it does not fit what is left.
    if (maxSize !== Infinity && size + entrySize(rest[0]!) > maxSize) return out;
    for (const e of rest) out.push(e);
    return out;
  }

  append(entries: Entry[]): void {
    const log = this.replayed;
    if (log === undefined || entries.length === 0 || entries[0]!.index > log.lastIndex) {
      this.tail.append(entries);
      return;
    }
    // The append rewrites part of the replayed log: entries covered by compaction are
    // skipped, the replayed log is cut before the first new one, and the tail starts over.
    const first = this.firstIndex();
    const skip = Math.max(0, first - entries[0]!.index);
    if (skip >= entries.length) return;
    const at = entries[0]!.index + skip;
    log.truncateAfter(at - 1);
    if (log.length === 0) {
      this.tail.ents = [entry({ ...this.beforeReplayed })];
      this.replayed = undefined;
    } else {
      this.tail.ents = [entry({ index: at - 1, term: log.term(at - 1) })];
    }
    this.tail.append(skip === 0 ? entries : entries.slice(skip));
  }

  applySnapshot(snap: Snapshot): void {
    this.tail.applySnapshot(snap);
    this.replayed = undefined;
    this.tookNewSnapshot(snap);
  }

  createSnapshot(i: number, cs: ConfState | undefined, data: Uint8Array): Snapshot {
    const log = this.replayed;
    if (log === undefined || i > log.lastIndex) {
      const snap = this.tail.createSnapshot(i, cs, data);
      this.tookNewSnapshot(snap);
      return snap;
    }
    if (i <= this.tail.snap.metadata.index) throw ErrSnapOutOfDate;
    this.tail.snap = {
      data,
      metadata: { index: i, term: this.term(i), confState: cs ?? this.tail.snap.metadata.confState },
    };
    this.tookNewSnapshot(this.tail.snap);
    return this.tail.snap;
  }

  /** A new snapshot holds its data until released. */
  private tookNewSnapshot(snap: Snapshot): void {
    this.dataBytes = snap.data.length;
  }

  compact(compactIndex: number): void {
    const log = this.replayed;
    if (log === undefined || compactIndex > log.lastIndex) {
      this.tail.compact(compactIndex);
      this.replayed = undefined;
      return;
    }
    if (compactIndex <= this.beforeReplayed.index) throw ErrCompacted;
    this.beforeReplayed = { index: compactIndex, term: log.term(compactIndex) };
    if (compactIndex === log.lastIndex) {
      this.replayed = undefined;
      return;
    }
    log.dropBefore(compactIndex + 1);
  }
}
