// The Raft log as one sequence: the stable prefix in Storage followed by the unstable
// tail, with the commit and apply cursors on top. Semantics follow etcd's raftLog.

import { ErrCompacted, ErrUnavailable, RaftError } from './errors.js';
import { type EntryID, Unstable } from './log-unstable.js';
import type { Logger } from './logger.js';
import { limitSize, type Storage } from './storage.js';
import { type Entry, entriesSize, type Snapshot } from './types.js';

/**
 * Cursors, in order: applied ≤ applying ≤ committed ≤ lastIndex. `applying` runs ahead
 * of `applied` while committed entries are out for application (async apply); their
 * total size is `applyingEntsSize`, and handing out more is paused once it reaches
 * `maxApplyingEntsSize`.
 */
export class RaftLog {
  storage: Storage;
  unstable: Unstable;
  /** Highest index known to be stored on a quorum. */
  committed: number;
  /** Highest index handed to the state machine (may not be applied yet). */
  applying: number;
  /** Highest index the state machine has applied. */
  applied: number;
  maxApplyingEntsSize: number;
  /** Bytes (entrySize) of entries handed out for application and not yet applied. */
  applyingEntsSize = 0;
  applyingEntsPaused = false;
  logger: Logger;

  constructor(storage: Storage, logger: Logger, maxApplyingEntsSize = Infinity) {
    this.storage = storage;
    this.logger = logger;
    this.maxApplyingEntsSize = maxApplyingEntsSize;
    const firstIndex = storage.firstIndex();
    const lastIndex = storage.lastIndex();
    this.unstable = new Unstable(lastIndex + 1, logger);
    // Everything up to the last compaction was committed and applied before it was compacted.
    this.committed = firstIndex - 1;
    this.applying = firstIndex - 1;
    this.applied = firstIndex - 1;
  }

  toString(): string {
    return (
      `committed=${this.committed}, applied=${this.applied}, applying=${this.applying}, ` +
      `unstable.offset=${this.unstable.offset}, unstable.offsetInProgress=${this.unstable.offsetInProgress}, ` +
      `len(unstable.Entries)=${this.unstable.entries.length}`
    );
  }

  /**
   * Handles the entries of a MsgApp whose preceding entry is (index, logTerm). Returns
   * the index of the last new entry, or undefined when the preceding entry does not
   * match our log (the leader must probe further back). Entries already present with
   * the same term are kept; the first conflicting one and everything after it are
   * replaced. The commit index advances to min(committed, last new index).
   */
  maybeAppend(index: number, logTerm: number, committed: number, ents: Entry[]): number | undefined {
    if (this.maybeTerm(index) !== logTerm) return undefined;
    const lastNew = index + ents.length;
    const conflict = this.findConflict(ents);
    if (conflict !== 0) {
      if (conflict <= this.committed) {
        this.logger.panic(`entry ${conflict} conflict with committed entry [committed(${this.committed})]`);
      }
      const skip = conflict - (index + 1);
      if (skip > ents.length) this.logger.panic(`index, ${skip}, is out of range [${ents.length}]`);
      this.append(ents.slice(skip));
    }
    this.commitTo(Math.min(committed, lastNew));
    return lastNew;
  }

  /**
   * Appends entries to the unstable tail, replacing whatever follows their first index.
   * Rewriting committed entries is a broken invariant. Returns the new last index.
   */
  append(ents: Entry[]): number {
    if (ents.length === 0) return this.lastIndex();
    const after = ents[0]!.index - 1;
    if (after < this.committed) {
      this.logger.panic(`after(${after}) is out of range [committed(${this.committed})]`);
    }
    this.unstable.truncateAndAppend(ents);
    return this.lastIndex();
  }

  /**
   * Index of the first entry of ents that is not in our log with the same term, or 0
   * when all of them are. The entries must be contiguous. A conflict inside our log
   * (as opposed to merely new entries) is logged.
   */
  findConflict(ents: Entry[]): number {
    if (ents.length === 0) return 0;
    const last = this.lastIndex();
    for (let k = 0; k < ents.length; k++) {
      const e = ents[k]!;
      // Past our last index there is nothing to compare with: the entry is new (the
      // usual case for a follower keeping up), and no term lookup is needed.
      if (e.index > last) return e.index;
      if (this.maybeTerm(e.index) !== e.term) {
        this.logger.info(
          `found conflict at index ${e.index} [existing term: ${this.termOrZero(e.index)}, conflicting term: ${e.term}]`,
        );
        return e.index;
      }
    }
    return 0;
  }

  /**
   * Finds the last entry at or below index whose term is ≤ term: our log cannot match
   * another log anywhere above it when that log has `term` at `index`. The leader uses
   * it to skip a whole term per probe instead of one index. An index whose term we
   * cannot tell (compacted) is returned as a possible match with term 0; an index
   * past our log is returned unchanged with term 0.
   */
  findConflictByTerm(index: number, term: number): EntryID {
    const last = this.lastIndex();
    if (index > last) {
      this.logger.warn(`index(${index}) is out of range [0, lastIndex(${last})] in findConflictByTerm`);
      return { index, term: 0 };
    }
    for (let i = index; i > 0; i--) {
      const ours = this.maybeTerm(i);
      if (ours === undefined) return { index: i, term: 0 };
      if (ours <= term) return { index: i, term: ours };
    }
    return { index: 0, term: 0 };
  }

  /** Unstable entries not yet handed to storage. */
  nextUnstableEnts(): Entry[] {
    return this.unstable.nextEntries();
  }

  hasNextUnstableEnts(): boolean {
    // Asked on every hasReady(): answered without copying the entries.
    return this.unstable.hasNextEntries();
  }

  /** Whether any entry is unstable, whether or not it has been handed to storage yet. */
  hasNextOrInProgressUnstableEnts(): boolean {
    return this.unstable.entries.length > 0;
  }

  /**
   * Committed entries ready to be applied, after those already out for application.
   * With allowUnstable, entries not yet persisted locally may be applied too (they are
   * committed, so a quorum has them). Nothing is returned while application is paused
   * by the size limit or while a snapshot is pending: the snapshot must be applied first.
   */
  nextCommittedEnts(allowUnstable: boolean): Entry[] {
    if (this.applyingEntsPaused || this.hasNextOrInProgressSnapshot()) return [];
    const lo = this.applying + 1;
    const hi = this.maxAppliableIndex(allowUnstable) + 1;
    if (lo >= hi) return [];
    const maxSize = this.maxApplyingEntsSize - this.applyingEntsSize;
    if (maxSize <= 0) {
      this.logger.panic(
        `applying entry size (${this.maxApplyingEntsSize}-${this.applyingEntsSize})=${maxSize} not positive`,
      );
    }
    try {
      return this.slice(lo, hi, maxSize);
    } catch (err) {
      if (err instanceof RaftError)
        this.logger.panic(`unexpected error when getting unapplied entries (${err.message})`);
      throw err;
    }
  }

  hasNextCommittedEnts(allowUnstable: boolean): boolean {
    if (this.applyingEntsPaused || this.hasNextOrInProgressSnapshot()) return false;
    return this.applying < this.maxAppliableIndex(allowUnstable);
  }

  /** The highest index that may be applied: committed, and also persisted unless allowUnstable. */
  maxAppliableIndex(allowUnstable: boolean): number {
    if (allowUnstable) return this.committed;
    return Math.min(this.committed, this.unstable.offset - 1);
  }

  /** The unstable snapshot, unless absent or already handed to storage. */
  nextUnstableSnapshot(): Snapshot | undefined {
    return this.unstable.nextSnapshot();
  }

  hasNextUnstableSnapshot(): boolean {
    return this.unstable.nextSnapshot() !== undefined;
  }

  /** Whether a snapshot is unstable, whether or not it has been handed to storage yet. */
  hasNextOrInProgressSnapshot(): boolean {
    return this.unstable.snapshot !== undefined;
  }

  /** The newest snapshot: the unstable one if any, else storage's. */
  snapshot(): Snapshot {
    return this.unstable.snapshot ?? this.storage.snapshot();
  }

  firstIndex(): number {
    return this.unstable.maybeFirstIndex() ?? this.storage.firstIndex();
  }

  lastIndex(): number {
    return this.unstable.maybeLastIndex() ?? this.storage.lastIndex();
  }

  lastTerm(): number {
    return this.lastEntryID().term;
  }

  lastEntryID(): EntryID {
    const index = this.lastIndex();
    try {
      return { index, term: this.term(index) };
    } catch (err) {
      if (err instanceof RaftError) {
        this.logger.panic(`unexpected error when getting the last term at ${index}: ${err.message}`);
      }
      throw err;
    }
  }

  /**
   * Advances the commit index; it never moves backwards. Committing past the last
   * index means the log lost entries a quorum acknowledged, which is fatal.
   */
  commitTo(tocommit: number): void {
    if (tocommit <= this.committed) return;
    if (this.lastIndex() < tocommit) {
      this.logger.panic(
        `tocommit(${tocommit}) is out of range [lastIndex(${this.lastIndex()})]. ` +
          'Was the raft log corrupted, truncated, or lost?',
      );
    }
    this.committed = tocommit;
  }

  /**
   * The state machine has applied up to i; size is the entrySize total of the entries
   * applied, which is released from the applying budget (and may lift the pause).
   */
  appliedTo(i: number, size: number): void {
    if (this.committed < i || i < this.applied) {
      this.logger.panic(
        `applied(${i}) is out of range [prevApplied(${this.applied}), committed(${this.committed})]`,
      );
    }
    this.applied = i;
    this.applying = Math.max(this.applying, i);
    this.applyingEntsSize = Math.max(0, this.applyingEntsSize - size);
    this.applyingEntsPaused = this.applyingEntsSize >= this.maxApplyingEntsSize;
  }

  /**
   * Entries up to i (of total entrySize `size`) were handed out for application.
   * Pauses further hand-outs once the budget is used up, or when the hand-out was cut
   * short by the budget (i below what could be applied): the next entry would not fit.
   */
  acceptApplying(i: number, size: number, allowUnstable: boolean): void {
    if (this.committed < i) {
      this.logger.panic(
        `applying(${i}) is out of range [prevApplying(${this.applying}), committed(${this.committed})]`,
      );
    }
    this.applying = i;
    this.applyingEntsSize += size;
    this.applyingEntsPaused =
      this.applyingEntsSize >= this.maxApplyingEntsSize || i < this.maxAppliableIndex(allowUnstable);
  }

  stableTo(id: EntryID): void {
    this.unstable.stableTo(id);
  }

  stableSnapTo(i: number): void {
    this.unstable.stableSnapTo(i);
  }

  /** Everything unstable has been handed to storage. */
  acceptUnstable(): void {
    this.unstable.acceptInProgress();
  }

  /**
   * Term of entry i. The valid range is [firstIndex-1, lastIndex]: the entry just before
   * the first one is compacted but its term is kept to match appends. Throws
   * ErrCompacted below that range and ErrUnavailable above it.
   */
  term(i: number): number {
    // Fast path: an entry of the unstable tail.
    const u = this.unstable;
    const k = i - u.offset;
    if (k >= 0 && k < u.entries.length) return u.entries[k]!.term;
    // The unstable tail answers without touching storage, and anything it knows is in range.
    const t = u.maybeTerm(i);
    if (t !== undefined) return t;
    if (i + 1 < this.firstIndex()) throw ErrCompacted;
    if (i > this.lastIndex()) throw ErrUnavailable;
    return this.storage.term(i);
  }

  /**
   * Term of entry i, or undefined where term() throws ErrCompacted or ErrUnavailable:
   * the bounds are checked first, so the expected misses cost no exception. Any other
   * error of the storage is thrown.
   */
  maybeTerm(i: number): number | undefined {
    const u = this.unstable;
    const k = i - u.offset;
    if (k >= 0 && k < u.entries.length) return u.entries[k]!.term;
    const t = u.maybeTerm(i);
    if (t !== undefined) return t;
    try {
      if (i + 1 < this.firstIndex()) return undefined;
      if (i > this.lastIndex()) return undefined;
      return this.storage.term(i);
    } catch (err) {
      if (err === ErrCompacted || err === ErrUnavailable) return undefined;
      throw err;
    }
  }

  /** Term of entry i, or 0 when it is compacted or not in the log. */
  termOrZero(i: number): number {
    try {
      return this.maybeTerm(i) ?? 0;
    } catch (err) {
      if (err instanceof RaftError) this.logger.panic(`unexpected error (${err.message})`);
      throw err;
    }
  }

  /** Entries from i to the end, limited to maxSize bytes (at least one); [] past the end. */
  entries(i: number, maxSize: number): Entry[] {
    const last = this.lastIndex();
    if (i > last) return [];
    return this.slice(i, last + 1, maxSize);
  }

  /** Every entry in the log; retries when a concurrent compaction races the read. */
  allEntries(): Entry[] {
    for (;;) {
      try {
        return this.entries(this.firstIndex(), Infinity);
      } catch (err) {
        if (err !== ErrCompacted) throw err;
      }
    }
  }

  /**
   * Whether a log ending at id is at least as up to date as ours (the voting rule):
   * a later last term wins, and with equal terms the longer log wins.
   */
  isUpToDate(id: EntryID): boolean {
    const lastTerm = this.lastTerm();
    return id.term > lastTerm || (id.term === lastTerm && id.index >= this.lastIndex());
  }

  /** Whether our log holds id.index with term id.term; false when unknown. */
  matchTerm(id: EntryID): boolean {
    return this.maybeTerm(id.index) === id.term;
  }

  /**
   * Commits up to `at` if it is beyond the commit index and our log holds it with that
   * term. Term 0 never matches: a leader has at least term 1.
   */
  maybeCommit(at: EntryID): boolean {
    if (at.term !== 0 && at.index > this.committed && this.matchTerm(at)) {
      this.commitTo(at.index);
      return true;
    }
    return false;
  }

  /** Resets the log to a snapshot received from the leader; it counts as committed. */
  restore(s: Snapshot): void {
    this.logger.info(
      `log [${this.toString()}] starts to restore snapshot [index: ${s.metadata.index}, term: ${s.metadata.term}]`,
    );
    this.committed = s.metadata.index;
    this.unstable.restore(s);
  }

  /**
   * Entries in [lo, hi), stable ones first, limited to maxSize bytes but never empty
   * for a non-empty range. Throws ErrCompacted when lo is compacted; a range past the
   * last index is a broken invariant.
   */
  slice(lo: number, hi: number, maxSize: number): Entry[] {
    this.mustCheckOutOfBounds(lo, hi);
    if (lo === hi) return [];
    const offset = this.unstable.offset;
    if (lo >= offset) return limitSize(this.unstable.slice(lo, hi), maxSize);

    const cut = Math.min(hi, offset);
    let stable: Entry[];
    try {
      stable = this.storage.entries(lo, cut, maxSize);
    } catch (err) {
      if (err === ErrUnavailable) this.logger.panic(`entries[${lo}:${cut}) is unavailable from storage`);
      throw err;
    }
    if (hi <= offset) return stable;
    // Storage stopped short because of the size limit: the unstable part can't fit either.
    if (stable.length < cut - lo) return stable;
    const size = entriesSize(stable);
    if (size >= maxSize) return stable;

    const rest = limitSize(this.unstable.slice(offset, hi), maxSize - size);
    // limitSize keeps one entry even when it alone exceeds the remaining budget; here
    // the result is already non-empty, so such an entry is left for the next call.
    if (rest.length === 1 && size + entriesSize(rest) > maxSize) return stable;
    return stable.concat(rest);
  }

  /**
   * Visits [lo, hi) in pages of at most pageSize bytes (each page non-empty), in
   * order. Stops at the first error thrown by the log or by visit.
   */
  scan(lo: number, hi: number, pageSize: number, visit: (ents: Entry[]) => void): void {
    while (lo < hi) {
      const ents = this.slice(lo, hi, pageSize);
      if (ents.length === 0) throw new Error(`got 0 entries in [${lo}, ${hi})`);
      visit(ents);
      lo += ents.length;
    }
  }

  /** lo ≤ hi and hi ≤ lastIndex + 1 are invariants; lo below firstIndex is ErrCompacted. */
  private mustCheckOutOfBounds(lo: number, hi: number): void {
    if (lo > hi) this.logger.panic(`invalid slice ${lo} > ${hi}`);
    const first = this.firstIndex();
    if (lo < first) throw ErrCompacted;
    const last = this.lastIndex();
    if (hi > last + 1) this.logger.panic(`slice[${lo},${hi}) out of bound [${first},${last}]`);
  }
}
