// The leader's view of the group: the active configuration, every member's Progress,
// and the votes of the current election.
import type { Progress, ProgressMap } from './progress.js';
import { formatIds, JointConfig, type VoteResult } from './quorum.js';
import type { ConfState } from './types.js';

export interface TrackerConfig {
  voters: JointConfig;
  /**
   * Leave the joint configuration automatically once it is committed. Only meaningful
   * while joint; the leader then proposes the empty conf change that leaves it.
   */
  autoLeave: boolean;
  /** Learners never overlap with the voters of either half. */
  learners: Set<number>;
  /**
   * Voters of the outgoing half that become learners when the joint configuration is
   * left. They cannot be learners yet: a node is never both a voter and a learner.
   * Empty outside of a joint configuration.
   */
  learnersNext: Set<number>;
}

export function emptyTrackerConfig(): TrackerConfig {
  return { voters: new JointConfig(), autoLeave: false, learners: new Set(), learnersNext: new Set() };
}

/** A copy sharing no collection with `cfg`. */
export function cloneTrackerConfig(cfg: TrackerConfig): TrackerConfig {
  return {
    voters: cfg.voters.clone(),
    autoLeave: cfg.autoLeave,
    learners: copySet(cfg.learners),
    learnersNext: copySet(cfg.learnersNext),
  };
}

/** new Set(s), skipping the iteration when s is empty (the usual case for learners). */
function copySet(s: Set<number>): Set<number> {
  return s.size === 0 ? new Set() : new Set(s);
}

/** e.g. `voters=(1 2 3)&&(1) learners=(4) learners_next=(5) autoleave`; empty parts are left out. */
export function configToString(cfg: TrackerConfig): string {
  let s = `voters=${cfg.voters}`;
  if (cfg.learners.size > 0) s += ` learners=${formatIds(cfg.learners)}`;
  if (cfg.learnersNext.size > 0) s += ` learners_next=${formatIds(cfg.learnersNext)}`;
  if (cfg.autoLeave) s += ' autoleave';
  return s;
}

export interface VoteTally {
  granted: number;
  rejected: number;
  result: VoteResult;
}

export class ProgressTracker {
  config: TrackerConfig = emptyTrackerConfig();
  private progressMap: ProgressMap = new Map();
  /**
   * The ids of `progressMap`, ascending; undefined until computed. The array is never
   * modified, only replaced, so a visit in progress keeps iterating the ids it started with.
   */
  private idsCache: readonly number[] | undefined = undefined;
  votes: Map<number, boolean> = new Map();

  /** Created once so that committed() passes no new closure on every call. */
  private readonly matchOf = (id: number): number | undefined => this.progressMap.get(id)?.match;

  /**
   * @param maxInflight the most appends in flight to one follower.
   * @param maxInflightBytes the most payload bytes in flight to one follower (Infinity: no limit).
   */
  constructor(
    readonly maxInflight: number,
    readonly maxInflightBytes: number = Infinity,
  ) {}

  /** Every tracked node's Progress, voters and learners. */
  get progress(): ProgressMap {
    return this.progressMap;
  }

  set progress(m: ProgressMap) {
    this.progressMap = m;
    this.idsCache = undefined;
  }

  /**
   * The ids of every tracked node, ascending. The array is shared: do not modify it.
   * It is cached, and checked against the map on every call, so that it stays right
   * even when the map's entries are added or removed in place.
   */
  ids(): readonly number[] {
    const m = this.progressMap;
    let ids = this.idsCache;
    if (ids !== undefined && ids.length === m.size) {
      // Same size: the key sets are equal exactly when every cached id is still there.
      for (let i = 0; i < ids.length; i++) {
        if (!m.has(ids[i]!)) {
          ids = undefined;
          break;
        }
      }
    } else {
      ids = undefined;
    }
    if (ids === undefined) {
      ids = sortedIds(m.keys());
      this.idsCache = ids;
    }
    return ids;
  }

  /** The active configuration as a ConfState, every list ascending. */
  confState(): ConfState {
    const { voters, learners, learnersNext, autoLeave } = this.config;
    return {
      voters: [...voters.incoming.ids()],
      votersOutgoing: [...voters.outgoing.ids()],
      learners: sortedIds(learners),
      learnersNext: sortedIds(learnersNext),
      autoLeave,
    };
  }

  /** True when the group has exactly one voter (the leader can commit on its own). */
  isSingleton(): boolean {
    return this.config.voters.incoming.size === 1 && !this.config.voters.isJoint();
  }

  /**
   * The largest index acknowledged by a quorum of voters (by their match index).
   * Infinity when there are no voters at all.
   */
  committed(): number {
    return this.config.voters.committedIndex(this.matchOf);
  }

  /**
   * Calls f for every tracked node, voters and learners, in ascending id order: the
   * nodes tracked when the visit starts, each with its Progress as of its turn.
   */
  visit(f: (id: number, pr: Progress) => void): void {
    const ids = this.ids();
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!;
      f(id, this.progressMap.get(id)!);
    }
  }

  /** Whether a quorum of voters was recently active (the leader's CheckQuorum test). */
  quorumActive(): boolean {
    const active = new Map<number, boolean>();
    this.visit((id, pr) => {
      if (!pr.isLearner) active.set(id, pr.recentActive);
    });
    return this.config.voters.voteResult(active) === 'VoteWon';
  }

  /** The voters of both halves, ascending. */
  voterNodes(): number[] {
    return this.config.voters.ids();
  }

  learnerNodes(): number[] {
    return sortedIds(this.config.learners);
  }

  /** Starts a new round of vote counting. */
  resetVotes(): void {
    this.votes = new Map();
  }

  /** Records the vote of `id`; only its first vote of a round counts. */
  recordVote(id: number, granted: boolean): void {
    if (!this.votes.has(id)) this.votes.set(id, granted);
  }

  /**
   * Counts the votes of tracked voters (granted/rejected are informational) and decides
   * the election by the configuration's quorum rules.
   */
  tallyVotes(): VoteTally {
    let granted = 0;
    let rejected = 0;
    for (const [id, pr] of this.progressMap) {
      if (pr.isLearner) continue;
      const v = this.votes.get(id);
      if (v === true) granted++;
      else if (v === false) rejected++;
    }
    return { granted, rejected, result: this.config.voters.voteResult(this.votes) };
  }
}

function sortedIds(ids: Iterable<number>): number[] {
  return [...ids].sort((a, b) => a - b);
}
