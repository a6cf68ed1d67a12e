// Configuration changes. A Changer computes the configuration (and progress map) that
// results from applying conf changes to the tracker's current one, without touching it:
// the caller installs the result once it decides to. Three ways to change:
//   simple     — at most one voter added or removed, applied directly;
//   enterJoint — any changes, entering the joint configuration (new)&&(old) in which
//                both halves must agree until the configuration is left;
//   leaveJoint — drop the outgoing half, turning staged learners (learnersNext) into
//                learners.
// Errors are thrown as Error with etcd's messages.
import { Inflights } from './inflights.js';
import { Progress, type ProgressMap } from './progress.js';
import { MajorityConfig } from './quorum.js';
import { cloneTrackerConfig, type TrackerConfig } from './tracker.js';
import type { ConfChangeSingle, ConfState } from './types.js';

/** What a Changer reads from the tracker; a ProgressTracker fits. */
export interface ChangerTracker {
  readonly config: TrackerConfig;
  readonly progress: ReadonlyMap<number, Progress>;
  /** Limits for the inflights window of a newly added node. */
  readonly maxInflight: number;
  readonly maxInflightBytes: number;
}

export type ConfigAndProgress = [TrackerConfig, ProgressMap];

export class Changer {
  /**
   * @param lastIndex the leader's last log index: new nodes are probed from there, on
   *   the guess that they start without a log (or from a snapshot taken out of band).
   */
  constructor(
    public tracker: ChangerTracker,
    public lastIndex: number,
  ) {}

  /**
   * Enters a joint configuration: the current voters become the outgoing half and the
   * changes are applied to the incoming one. `autoLeave` is recorded for the caller,
   * which leaves the joint configuration by itself once it is applied.
   */
  enterJoint(autoLeave: boolean, ...ccs: ConfChangeSingle[]): ConfigAndProgress {
    const [cfg, trk] = this.checkAndCopy();
    if (cfg.voters.isJoint()) throw new Error('config is already joint');
    // An empty config may be filled by simple changes (bootstrap, tests), but a joint
    // config with an empty outgoing half would just be a simple one.
    if (cfg.voters.incoming.size === 0) throw new Error("can't make a zero-voter config joint");
    cfg.voters.outgoing = cfg.voters.incoming.clone();
    this.apply(cfg, trk, ccs);
    cfg.autoLeave = autoLeave;
    return checkAndReturn(cfg, trk);
  }

  /**
   * Leaves the joint configuration: staged learners become learners (keeping their
   * progress), and outgoing voters that are neither voters nor learners now are dropped.
   */
  leaveJoint(): ConfigAndProgress {
    const [cfg, trk] = this.checkAndCopy();
    if (!cfg.voters.isJoint()) throw new Error("can't leave a non-joint config");
    for (const id of cfg.learnersNext) {
      cfg.learners.add(id);
      trk.get(id)!.isLearner = true;
    }
    cfg.learnersNext.clear();
    for (const id of cfg.voters.outgoing) {
      if (!cfg.voters.incoming.has(id) && !cfg.learners.has(id)) trk.delete(id);
    }
    cfg.voters.outgoing = new MajorityConfig();
    cfg.autoLeave = false;
    return checkAndReturn(cfg, trk);
  }

  /**
   * Applies changes that alter the voters by at most one node, which is safe without a
   * joint configuration: any majority of the old voters intersects any majority of the
   * new ones. Learners may change freely.
   */
  simple(...ccs: ConfChangeSingle[]): ConfigAndProgress {
    const [cfg, trk] = this.checkAndCopy();
    if (cfg.voters.isJoint()) throw new Error("can't apply simple config change in joint config");
    this.apply(cfg, trk, ccs);
    if (symmetricDifference(this.tracker.config.voters.incoming, cfg.voters.incoming) > 1) {
      throw new Error('more than one voter changed without entering joint config');
    }
    return checkAndReturn(cfg, trk);
  }

  /** Applies the changes to the incoming half, in order. */
  private apply(cfg: TrackerConfig, trk: ProgressMap, ccs: readonly ConfChangeSingle[]): void {
    for (const cc of ccs) {
      // etcd zeroes the node id of a change it decided (above raft) not to apply.
      if (cc.nodeId === 0) continue;
      switch (cc.type) {
        case 'ConfChangeAddNode':
          this.makeVoter(cfg, trk, cc.nodeId);
          break;
        case 'ConfChangeAddLearnerNode':
          this.makeLearner(cfg, trk, cc.nodeId);
          break;
        case 'ConfChangeRemoveNode':
          remove(cfg, trk, cc.nodeId);
          break;
        case 'ConfChangeUpdateNode':
          // Carries application data only; the configuration does not change.
          break;
        default:
          throw new Error(`unexpected conf type ${String(cc.type)}`);
      }
    }
    if (cfg.voters.incoming.size === 0) throw new Error('removed all voters');
  }

  private makeVoter(cfg: TrackerConfig, trk: ProgressMap, id: number): void {
    const pr = trk.get(id);
    if (pr === undefined) {
      this.initProgress(cfg, trk, id, false);
      return;
    }
    pr.isLearner = false;
    cfg.learners.delete(id);
    cfg.learnersNext.delete(id);
    cfg.voters.incoming.add(id);
  }

  /**
   * Makes `id` a learner, or stages it in learnersNext when it is still a voter of the
   * outgoing half: a node is never tracked as voter and learner at once, so it becomes
   * a learner when the joint configuration is left.
   */
  private makeLearner(cfg: TrackerConfig, trk: ProgressMap, id: number): void {
    const pr = trk.get(id);
    if (pr === undefined) {
      this.initProgress(cfg, trk, id, true);
      return;
    }
    if (pr.isLearner) return;
    // Demote from the incoming voters, but keep the progress: the node stays tracked.
    remove(cfg, trk, id);
    trk.set(id, pr);
    if (cfg.voters.outgoing.has(id)) {
      cfg.learnersNext.add(id);
    } else {
      pr.isLearner = true;
      cfg.learners.add(id);
    }
  }

  private initProgress(cfg: TrackerConfig, trk: ProgressMap, id: number, isLearner: boolean): void {
    if (isLearner) cfg.learners.add(id);
    else cfg.voters.incoming.add(id);
    trk.set(
      id,
      new Progress({
        // Probe from the last index (match < next requires next ≥ 1).
        next: Math.max(this.lastIndex, 1),
        inflights: new Inflights(this.tracker.maxInflight, this.tracker.maxInflightBytes),
        isLearner,
        // A node that was just added has had no chance to talk to the leader; counting
        // it as inactive could make CheckQuorum depose the leader.
        recentActive: true,
      }),
    );
  }

  /** Copies the current config and progress (after checking them) for the change to work on. */
  private checkAndCopy(): ConfigAndProgress {
    const trk: ProgressMap = new Map();
    for (const [id, pr] of this.tracker.progress) trk.set(id, pr.clone());
    return checkAndReturn(cloneTrackerConfig(this.tracker.config), trk);
  }
}

/** Removes `id` from the incoming voters and the learners; keeps its progress while it is an outgoing voter. */
function remove(cfg: TrackerConfig, trk: ProgressMap, id: number): void {
  if (!trk.has(id)) return;
  cfg.voters.incoming.delete(id);
  cfg.learners.delete(id);
  cfg.learnersNext.delete(id);
  if (!cfg.voters.outgoing.has(id)) trk.delete(id);
}

function checkAndReturn(cfg: TrackerConfig, trk: ProgressMap): ConfigAndProgress {
  const problem = invariantViolation(cfg, trk);
  if (problem !== undefined) throw new Error(problem);
  return [cfg, trk];
}

/**
 * Checks that config and progress fit together; used on the Changer's input as well as
 * on its output. The empty config is allowed: it is where bootstrap starts.
 */
function invariantViolation(cfg: TrackerConfig, trk: ProgressMap): string | undefined {
  for (const ids of [cfg.voters.ids(), cfg.learners, cfg.learnersNext]) {
    for (const id of ids) if (!trk.has(id)) return `no progress for ${id}`;
  }
  // A learner is staged only because it is still an outgoing voter.
  for (const id of cfg.learnersNext) {
    if (!cfg.voters.outgoing.has(id)) return `${id} is in LearnersNext, but not Voters[1]`;
    if (trk.get(id)!.isLearner) return `${id} is in LearnersNext, but is already marked as learner`;
  }
  for (const id of cfg.learners) {
    if (cfg.voters.outgoing.has(id)) return `${id} is in Learners and Voters[1]`;
    if (cfg.voters.incoming.has(id)) return `${id} is in Learners and Voters[0]`;
    if (!trk.get(id)!.isLearner) return `${id} is in Learners, but is not marked as learner`;
  }
  if (!cfg.voters.isJoint()) {
    if (cfg.learnersNext.size > 0) return 'cfg.LearnersNext must be nil when not joint';
    if (cfg.autoLeave) return 'AutoLeave must be false when not joint';
  }
  return undefined;
}

/** How many ids are in exactly one of a and b. */
function symmetricDifference(a: MajorityConfig, b: MajorityConfig): number {
  let n = 0;
  for (const id of a) if (!b.has(id)) n++;
  for (const id of b) if (!a.has(id)) n++;
  return n;
}

/**
 * Builds the configuration described by `cs`, starting from the changer's (empty)
 * configuration, as a sequence of ordinary conf changes: for a joint ConfState, first
 * the outgoing voters are added one at a time, then the joint configuration is entered
 * with changes that remove them and add the incoming voters, the learners and the
 * staged learners. For example voters=(1 2 3) outgoing=(1 2 4 6) learners=(5)
 * learners_next=(4) is reached by `v1`, `v2`, `v4`, `v6` and then entering joint with
 * `r1 r2 r4 r6 v1 v2 v3 l5 l4`. (Whether 5 was a learner before does not matter.)
 * The changer is not modified.
 */
export function restore(changer: Changer, cs: ConfState): ConfigAndProgress {
  const { config, progress, maxInflight, maxInflightBytes } = changer.tracker;
  const work = new Changer({ config, progress, maxInflight, maxInflightBytes }, changer.lastIndex);
  const single = (type: ConfChangeSingle['type']) => (nodeId: number) => ({ type, nodeId });
  const incoming: ConfChangeSingle[] = [
    ...cs.votersOutgoing.map(single('ConfChangeRemoveNode')),
    ...cs.voters.map(single('ConfChangeAddNode')),
    ...cs.learners.map(single('ConfChangeAddLearnerNode')),
    // Outgoing voters that become learners once the joint configuration is left.
    ...cs.learnersNext.map(single('ConfChangeAddLearnerNode')),
  ];
  const steps: (() => ConfigAndProgress)[] = [];
  if (cs.votersOutgoing.length === 0) {
    for (const cc of incoming) steps.push(() => work.simple(cc));
  } else {
    // Make the outgoing voters the current config, so that entering joint rotates them
    // into the outgoing half.
    for (const cc of cs.votersOutgoing.map(single('ConfChangeAddNode'))) steps.push(() => work.simple(cc));
    steps.push(() => work.enterJoint(cs.autoLeave, ...incoming));
  }
  let result: ConfigAndProgress | undefined;
  for (const step of steps) {
    result = step();
    work.tracker = { config: result[0], progress: result[1], maxInflight, maxInflightBytes };
  }
  if (result === undefined) {
    // Nothing to apply: still hand back copies, never the changer's own objects.
    const trk: ProgressMap = new Map();
    for (const [id, pr] of progress) trk.set(id, pr.clone());
    result = [cloneTrackerConfig(config), trk];
  }
  return result;
}

/**
 * Returns undefined when a and b describe the same configuration (ignoring the order of
 * ids), and a description of both otherwise.
 */
export function confStateEquivalent(a: ConfState, b: ConfState): string | undefined {
  const normal = (cs: ConfState): string => {
    const ids = (l: number[]) => `[${[...l].sort((x, y) => x - y).join(' ')}]`;
    return (
      `voters=${ids(cs.voters)} learners=${ids(cs.learners)} votersOutgoing=${ids(cs.votersOutgoing)} ` +
      `learnersNext=${ids(cs.learnersNext)} autoLeave=${cs.autoLeave}`
    );
  };
  const na = normal(a);
  const nb = normal(b);
  if (na === nb) return undefined;
  return `ConfStates not equivalent after sorting:\n${na}\n${nb}`;
}
