// A follower's progress as the leader sees it, and the small state machine that decides
// how the leader replicates to it:
//   StateProbe     — the follower's log position is unknown; send one append at a time
//                    and wait for the answer (or a heartbeat response) before the next.
//   StateReplicate — the follower keeps up; stream appends optimistically, bounded by
//                    the inflights window.
//   StateSnapshot  — the follower needs a snapshot; send no appends until it is applied.
import type { Inflights } from './inflights.js';
import { RaftPanic } from './logger.js';

export type ProgressState = 'StateProbe' | 'StateReplicate' | 'StateSnapshot';

/** The fields a new Progress is created with; everything but `next` and `inflights` defaults. */
export type ProgressInit = Pick<Progress, 'next' | 'inflights'> &
  Partial<
    Pick<
      Progress,
      'match' | 'sentCommit' | 'state' | 'pendingSnapshot' | 'recentActive' | 'msgAppFlowPaused' | 'isLearner'
    >
  >;

export class Progress {
  /** The follower's log is known to match the leader's up to here. Invariant: match < next. */
  match: number;
  /** The next index to send; entries in (match, next) are in flight. */
  next: number;
  /** The highest commit index sent to the follower; a new one is worth sending only above it. */
  sentCommit: number;
  state: ProgressState;
  /** In StateSnapshot: the index of the snapshot the follower needs (0 otherwise). */
  pendingSnapshot: number;
  /** The follower was heard from recently; the leader resets it at every CheckQuorum round. */
  recentActive: boolean;
  /**
   * Appends to this follower are throttled: in StateProbe after a probe was sent, in
   * StateReplicate once the inflights window is full. Cleared by an answer from the
   * follower (append or heartbeat response).
   */
  msgAppFlowPaused: boolean;
  inflights: Inflights;
  isLearner: boolean;

  constructor(init: ProgressInit) {
    this.match = init.match ?? 0;
    this.next = init.next;
    this.sentCommit = init.sentCommit ?? 0;
    this.state = init.state ?? 'StateProbe';
    this.pendingSnapshot = init.pendingSnapshot ?? 0;
    this.recentActive = init.recentActive ?? false;
    this.msgAppFlowPaused = init.msgAppFlowPaused ?? false;
    this.inflights = init.inflights;
    this.isLearner = init.isLearner ?? false;
  }

  /** A copy sharing nothing with this one (the inflights window is copied too). */
  clone(): Progress {
    // Field by field: spreading `this` is several times slower.
    return new Progress({
      match: this.match,
      next: this.next,
      sentCommit: this.sentCommit,
      state: this.state,
      pendingSnapshot: this.pendingSnapshot,
      recentActive: this.recentActive,
      msgAppFlowPaused: this.msgAppFlowPaused,
      inflights: this.inflights.clone(),
      isLearner: this.isLearner,
    });
  }

  /** Enters `state` with a clean slate: unpaused, no pending snapshot, nothing in flight. */
  resetState(state: ProgressState): void {
    this.msgAppFlowPaused = false;
    this.pendingSnapshot = 0;
    this.state = state;
    this.inflights.reset();
  }

  /**
   * Falls back to probing from match+1. Coming out of StateSnapshot, the snapshot was
   * delivered, so probing starts after it if that is further along.
   */
  becomeProbe(): void {
    if (this.state === 'StateSnapshot') {
      const snapshot = this.pendingSnapshot;
      this.resetState('StateProbe');
      this.next = Math.max(this.match + 1, snapshot + 1);
    } else {
      this.resetState('StateProbe');
      this.next = this.match + 1;
    }
    this.sentCommit = Math.min(this.sentCommit, this.next - 1);
  }

  becomeReplicate(): void {
    this.resetState('StateReplicate');
    this.next = this.match + 1;
  }

  /** Waits for the follower to apply the snapshot at `snapshoti`; appends resume after it. */
  becomeSnapshot(snapshoti: number): void {
    this.resetState('StateSnapshot');
    this.pendingSnapshot = snapshoti;
    this.next = snapshoti + 1;
    this.sentCommit = snapshoti;
  }

  /**
   * Records that an append carrying `entries` entries (`bytes` payload bytes) starting at
   * `next` was sent. In StateReplicate the entries go into the inflights window and the
   * flow pauses once it is full; in StateProbe a non-empty append is the probe, and the
   * flow pauses until the follower answers.
   */
  updateOnEntriesSend(entries: number, bytes: number): void {
    switch (this.state) {
      case 'StateReplicate':
        if (entries > 0) {
          this.next += entries;
          this.inflights.add(this.next - 1, bytes);
        }
        this.msgAppFlowPaused = this.inflights.full();
        break;
      case 'StateProbe':
        if (entries > 0) this.msgAppFlowPaused = true;
        break;
      default:
        throw new RaftPanic(`sending append in unhandled state ${this.state}`);
    }
  }

  /**
   * Whether sending commit index `index` could move the follower's commit index: it must
   * be above what was already sent, and what was sent must not already cover everything
   * up to next-1 (the follower cannot commit past what it has).
   */
  canBumpCommit(index: number): boolean {
    return index > this.sentCommit && this.sentCommit < this.next - 1;
  }

  /** Records that commit index `commit` was sent to the follower. */
  setSentCommit(commit: number): void {
    this.sentCommit = commit;
  }

  /**
   * Handles an append acknowledged up to `n`. Returns false for a stale one (n ≤ match);
   * otherwise raises match (and next if needed) and unpauses the flow.
   */
  maybeUpdate(n: number): boolean {
    if (n <= this.match) return false;
    this.match = n;
    this.next = Math.max(this.next, n + 1);
    this.msgAppFlowPaused = false;
    return true;
  }

  /**
   * Handles a rejection of the append at index `rejected`, where the follower hints that
   * its log may match up to `matchHint`. Returns false, changing nothing, when the
   * rejection is stale (reordered or duplicated messages); otherwise lowers next.
   */
  maybeDecrTo(rejected: number, matchHint: number): boolean {
    if (this.state === 'StateReplicate') {
      // Everything up to match was acknowledged, so a rejection at or below it is old.
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      // The commit index sent with the rejected entries probably did not arrive either.
      this.sentCommit = Math.min(this.sentCommit, this.next - 1);
      return true;
    }
    // Outside StateReplicate one append is probed at a time, at next-1: a rejection of
    // any other index is old.
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, matchHint + 1), this.match + 1);
    this.sentCommit = Math.min(this.sentCommit, this.next - 1);
    this.msgAppFlowPaused = false;
    return true;
  }

  /**
   * Whether appends to this follower are throttled: after a probe, with a full inflights
   * window, or while it waits for a snapshot.
   */
  isPaused(): boolean {
    switch (this.state) {
      case 'StateProbe':
      case 'StateReplicate':
        return this.msgAppFlowPaused;
      case 'StateSnapshot':
        return true;
    }
  }

  /** e.g. `StateReplicate match=11 next=12 learner paused inactive inflight=2[full]`, as etcd prints it. */
  toString(): string {
    let s = `${this.state} match=${this.match} next=${this.next}`;
    if (this.isLearner) s += ' learner';
    if (this.isPaused()) s += ' paused';
    if (this.pendingSnapshot > 0) s += ` pendingSnap=${this.pendingSnapshot}`;
    if (!this.recentActive) s += ' inactive';
    const n = this.inflights.count();
    if (n > 0) {
      s += ` inflight=${n}`;
      if (this.inflights.full()) s += '[full]';
    }
    return s;
  }
}

export type ProgressMap = Map<number, Progress>;

/** One `id: progress` line per follower, ascending by id (etcd's ProgressMap.String). */
export function progressMapToString(m: ReadonlyMap<number, Progress>): string {
  let out = '';
  for (const id of [...m.keys()].sort((a, b) => a - b)) out += `${id}: ${m.get(id)}\n`;
  return out;
}
