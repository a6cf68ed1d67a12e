// The tail of the log that the host has not yet persisted: an optional incoming
// snapshot followed by entries. With async storage writes part of it may already be
// on its way to storage ("in progress"); that part is not handed out again.

import type { Logger } from './logger.js';
import type { Entry, Snapshot } from './types.js';

/** Identifies an entry (and the log prefix ending at it) by its index and term. */
export interface EntryID {
  term: number;
  index: number;
}

/**
 * Invariants: entries[k] has index offset + k; when a snapshot is present it ends at
 * offset - 1. offset ≤ offsetInProgress ≤ offset + entries.length, and entries below
 * offsetInProgress have been handed to storage but not yet acknowledged.
 */
export class Unstable {
  /** An incoming snapshot not yet persisted. */
  snapshot: Snapshot | undefined = undefined;
  /** Entries not yet persisted, starting at `offset`. */
  entries: Entry[] = [];
  offset: number;
  /** The snapshot is being written by storage; don't hand it out again. */
  snapshotInProgress = false;
  /** Entries in [offset, offsetInProgress) are being written by storage. */
  offsetInProgress: number;
  logger: Logger;

  constructor(offset: number, logger: Logger) {
    this.offset = offset;
    this.offsetInProgress = offset;
    this.logger = logger;
  }

  /** First index of the log when it is decided by the unstable snapshot. */
  maybeFirstIndex(): number | undefined {
    return this.snapshot === undefined ? undefined : this.snapshot.metadata.index + 1;
  }

  /** Last index held here, from the entries or else the snapshot. */
  maybeLastIndex(): number | undefined {
    if (this.entries.length > 0) return this.offset + this.entries.length - 1;
    return this.snapshot?.metadata.index;
  }

  /** Term of entry i when this unstable tail (entries or the snapshot's own index) knows it. */
  maybeTerm(i: number): number | undefined {
    if (i < this.offset) {
      if (this.snapshot !== undefined && this.snapshot.metadata.index === i)
        return this.snapshot.metadata.term;
      return undefined;
    }
    const last = this.maybeLastIndex();
    if (last === undefined || i > last) return undefined;
    return this.entries[i - this.offset]!.term;
  }

  /** Entries not yet handed to storage (those already in progress are excluded). */
  nextEntries(): Entry[] {
    const inProgress = this.offsetInProgress - this.offset;
    if (inProgress >= this.entries.length) return [];
    return this.entries.slice(inProgress);
  }

  /** Whether nextEntries() would return any, without building the array. */
  hasNextEntries(): boolean {
    return this.offsetInProgress - this.offset < this.entries.length;
  }

  /** The snapshot, unless absent or already handed to storage. */
  nextSnapshot(): Snapshot | undefined {
    if (this.snapshot === undefined || this.snapshotInProgress) return undefined;
    return this.snapshot;
  }

  /**
   * Marks everything currently held as handed to storage, so that nextEntries and
   * nextSnapshot stop returning it until storage acknowledges or the tail is replaced.
   */
  acceptInProgress(): void {
    if (this.entries.length > 0) this.offsetInProgress = this.entries[this.entries.length - 1]!.index + 1;
    if (this.snapshot !== undefined) this.snapshotInProgress = true;
  }

  /**
   * Storage has persisted the log up to id: drop entries up to it. The acknowledgement
   * is ignored when it no longer describes our log: the entry is gone, belongs to the
   * snapshot, or was overwritten with a different term while the write was in flight
   * (an append at the same index from a newer leader — the ABA case). In the last
   * case the newer entries are still unpersisted and must stay.
   */
  stableTo(id: EntryID): void {
    const term = this.maybeTerm(id.index);
    if (term === undefined) {
      this.logger.info(`entry at index ${id.index} missing from unstable log; ignoring`);
      return;
    }
    if (id.index < this.offset) {
      this.logger.info(`entry at index ${id.index} matched unstable snapshot; ignoring`);
      return;
    }
    if (term !== id.term) {
      this.logger.info(
        `entry at (index,term)=(${id.index},${id.term}) mismatched with ` +
          `entry at (${id.index},${term}) in unstable log; ignoring`,
      );
      return;
    }
    const stable = id.index + 1 - this.offset;
    // Usually everything written is now stable: start afresh without calling slice().
    this.entries = stable === this.entries.length ? [] : this.entries.slice(stable);
    this.offset = id.index + 1;
    this.offsetInProgress = Math.max(this.offsetInProgress, this.offset);
  }

  /** Storage has persisted the snapshot at index i; forget it if it is still ours. */
  stableSnapTo(i: number): void {
    if (this.snapshot !== undefined && this.snapshot.metadata.index === i) {
      this.snapshot = undefined;
      this.snapshotInProgress = false;
    }
  }

  /** Replaces the whole tail with a snapshot; nothing of it has been handed out yet. */
  restore(s: Snapshot): void {
    this.offset = s.metadata.index + 1;
    this.offsetInProgress = this.offset;
    this.entries = [];
    this.snapshot = s;
    this.snapshotInProgress = false;
  }

  /**
   * Appends contiguous entries, first dropping any held entries at or after their first
   * index. Writes in progress for dropped entries no longer count: those entries must
   * be handed out again.
   */
  truncateAndAppend(ents: Entry[]): void {
    if (ents.length === 0) return;
    const from = ents[0]!.index;
    if (from === this.offset + this.entries.length) {
      // An empty tail (the usual case once storage caught up) takes a copy of exactly
      // the right size: pushing into it would allocate 16 slots for one proposal.
      if (this.entries.length === 0) this.entries = ents.slice();
      else for (const e of ents) this.entries.push(e);
    } else if (from <= this.offset) {
      this.logger.info(`replace the unstable entries from index ${from}`);
      // Every held entry is superseded; the snapshot (if any) ends before `from`.
      this.entries = [...ents];
      this.offset = from;
      this.offsetInProgress = this.offset;
    } else {
      this.logger.info(`truncate the unstable entries before index ${from}`);
      this.entries = [...this.slice(this.offset, from), ...ents];
      this.offsetInProgress = Math.min(this.offsetInProgress, from);
    }
  }

  /** A copy of the entries in [lo, hi); both bounds must lie within the held entries. */
  slice(lo: number, hi: number): Entry[] {
    this.mustCheckOutOfBounds(lo, hi);
    return this.entries.slice(lo - this.offset, hi - this.offset);
  }

  private mustCheckOutOfBounds(lo: number, hi: number): void {
    if (lo > hi) this.logger.panic(`invalid unstable.slice ${lo} > ${hi}`);
    const upper = this.offset + this.entries.length;
    if (lo < this.offset || hi > upper) {
      this.logger.panic(`unstable.slice[${lo},${hi}) out of bound [${this.offset},${upper}]`);
    }
  }
}
