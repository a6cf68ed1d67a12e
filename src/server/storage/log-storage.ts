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
// released, and snapshot() reads it back from its file when the core asks for it. Until the
// read is done the core is told ErrSnapshotTemporarilyUnavailable, which it takes, as in
// etcd, as "send it later": the follower's next heartbeat response asks again.

import { ErrCompacted, ErrSnapOutOfDate, ErrSnapshotTemporarilyUnavailable } from '../../raft/errors.js';
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

/** Reads a snapshot's data back from where it was saved. */
export type SnapshotReader = (metadata: SnapshotMetadata) => Promise<Uint8Array>;

/**
 * How long data read back for a transfer stays in memory after the core last asked for it:
 * long enough for the retries of one transfer (a failed send is retried after the
 * follower's next heartbeat response), short enough not to hold a large state for long.
 */
const READ_BACK_HOLD_MS = 30_000;

/** What a released snapshot holds in place of its data; never handed to the core. */
const RELEASED = new Uint8Array(0);

export class LogStorage implements Storage {
  private readonly tail: MemoryStorage;
  /** The current snapshot's data size in bytes, held or not. */
  private dataBytes: number;
  /** The read of the released data in progress, if any. */
  private reading: Promise<void> | undefined;
  /** When the core last asked for data read back, and the timer that releases it again. */
  private lastAskedAt = 0;
  private releaseTimer: NodeJS.Timeout | undefined;
  /** The snapshot whose file last failed to read back, said once in the log. */
  private warnedUnreadable: SnapshotMetadata | undefined;
  /** The replayed entries not yet compacted or rewritten, from `replayed.start` on; undefined once none are left. */
  private replayed: PackedLog | undefined;
  /** Index and term of the entry just before the replayed ones (the snapshot's, or 0/0). */
  private beforeReplayed = { index: 0, term: 0 };

  /**
   * The storage after a restart: the snapshot (if any), then the replayed log from the
   * entry after it on (earlier entries in the log are dropped; there must be no gap).
   * `reader`: where released snapshot data is read back from (without one, none may be).
   */
  constructor(
    private readonly logger: Logger,
    snap: Snapshot | undefined,
    log: PackedLog,
    private readonly reader?: SnapshotReader,
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

  /** Whether the snapshot's data is in memory (released data is RELEASED in its place). */
  private get dataHeld(): boolean {
    return this.tail.snap.data !== RELEASED;
  }

  setHardState(hs: HardState): void {
    this.tail.setHardState(hs);
  }

  initialState(): { hardState: HardState; confState: ConfState } {
    return this.tail.initialState();
  }

  snapshot(): Snapshot {
    const snap = this.tail.snapshot();
    if (this.dataHeld) {
      this.lastAskedAt = Date.now();
      return snap;
    }
    this.readBack(snap.metadata);
    throw ErrSnapshotTemporarilyUnavailable;
  }

  /**
   * Lets go of the current snapshot's data (it must be saved where the reader finds it);
   * the next snapshot() reads it back. A later snapshot (created or applied) replaces it.
   */
  releaseSnapshotData(): void {
    if (this.reader === undefined) throw new Error('log storage: no reader to read snapshot data back');
    if (this.tail.snap.metadata.index === 0) return;
    this.tail.snap = { metadata: this.tail.snap.metadata, data: RELEASED };
    clearTimeout(this.releaseTimer);
    this.releaseTimer = undefined;
  }

  /** Stops the timer that releases data read back (the node is closing). */
  close(): void {
    clearTimeout(this.releaseTimer);
    this.releaseTimer = undefined;
  }

  private readBack(metadata: SnapshotMetadata): void {
    // Released data implies a reader (see releaseSnapshotData).
    const reader = this.reader!;
    if (this.reading !== undefined) return;
    const current = () => this.tail.snap.metadata === metadata && !this.dataHeld;
    this.reading = reader(metadata)
      .then((data) => {
        // A newer snapshot may have replaced this one meanwhile.
        if (!current()) return;
        if (data.length !== this.dataBytes) {
          throw new Error(`read ${data.length} bytes, expected ${this.dataBytes}`);
        }
        this.tail.snap = { metadata, data };
        this.lastAskedAt = Date.now();
        this.releaseWhenIdle();
      })
      .catch((err: unknown) => {
        // Left released: the core's next ask (every heartbeat response) reads it again, but
        // says so once per snapshot. (A snapshot replaced meanwhile may have had its file
        // purged: nothing to say then.)
        if (!current() || this.warnedUnreadable === metadata) return;
        this.warnedUnreadable = metadata;
        this.logger.warn(
          `snap: could not read back the snapshot at index ${metadata.index} to send it to a follower behind the log ` +
            `(${(err as Error).message}); the next snapshot this node takes replaces it: \`raftctl snapshot ID\` takes one now`,
        );
      })
      .finally(() => {
        this.reading = undefined;
      });
  }

  /** Releases data read back once the core has not asked for it for READ_BACK_HOLD_MS. */
  private releaseWhenIdle(): void {
    const check = () => {
      const idle = Date.now() - this.lastAskedAt;
      if (!this.dataHeld) return;
      if (idle >= READ_BACK_HOLD_MS) this.releaseSnapshotData();
      else this.releaseTimer = setTimeout(check, READ_BACK_HOLD_MS - idle).unref();
    };
    this.releaseTimer = setTimeout(check, READ_BACK_HOLD_MS).unref();
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
    clearTimeout(this.releaseTimer);
    this.releaseTimer = undefined;
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
