import { describe, expect, it } from 'vitest';
import { Changer } from '../../src/raft/confchange.js';
import { MajorityConfig } from '../../src/raft/quorum.js';
import {
  cloneTrackerConfig,
  configToString,
  emptyTrackerConfig,
  ProgressTracker,
} from '../../src/raft/tracker.js';
import type { ConfChangeSingle } from '../../src/raft/types.js';

const v = (nodeId: number): ConfChangeSingle => ({ type: 'ConfChangeAddNode', nodeId });
const l = (nodeId: number): ConfChangeSingle => ({ type: 'ConfChangeAddLearnerNode', nodeId });

/** A tracker with voters 1..n (added one by one) and the given learners. */
function tracker(voters: number, learners: number[] = []): ProgressTracker {
  const t = new ProgressTracker(10, Infinity);
  const ch = new Changer(t, 5);
  for (let id = 1; id <= voters; id++) [t.config, t.progress] = ch.simple(v(id));
  for (const id of learners) [t.config, t.progress] = ch.simple(l(id));
  return t;
}

describe('configToString', () => {
  it('leaves out empty parts', () => {
    const cfg = emptyTrackerConfig();
    expect(configToString(cfg)).toBe('voters=()');
    cfg.voters.incoming = new MajorityConfig([3, 1, 2]);
    cfg.voters.outgoing = new MajorityConfig([1]);
    cfg.learners.add(4);
    cfg.learnersNext.add(5);
    cfg.autoLeave = true;
    expect(configToString(cfg)).toBe('voters=(1 2 3)&&(1) learners=(4) learners_next=(5) autoleave');
  });

  it('clones without sharing', () => {
    const cfg = emptyTrackerConfig();
    cfg.voters.incoming.add(1);
    cfg.autoLeave = true;
    const c = cloneTrackerConfig(cfg);
    c.voters.incoming.add(2);
    c.learners.add(3);
    expect(configToString(cfg)).toBe('voters=(1) autoleave');
    expect(configToString(c)).toBe('voters=(1 2) learners=(3) autoleave');
  });
});

describe('ProgressTracker', () => {
  it('reports its configuration as a ConfState', () => {
    const t = tracker(3, [5, 4]);
    expect(t.confState()).toEqual({
      voters: [1, 2, 3],
      learners: [4, 5],
      votersOutgoing: [],
      learnersNext: [],
      autoLeave: false,
    });
    [t.config, t.progress] = new Changer(t, 9).enterJoint(
      true,
      { type: 'ConfChangeRemoveNode', nodeId: 3 },
      l(3),
    );
    expect(t.confState()).toEqual({
      voters: [1, 2],
      learners: [4, 5],
      votersOutgoing: [1, 2, 3],
      learnersNext: [3],
      autoLeave: true,
    });
    expect(t.voterNodes()).toEqual([1, 2, 3]);
    expect(t.learnerNodes()).toEqual([4, 5]);
  });

  it('is a singleton with exactly one voter and no joint config', () => {
    expect(tracker(1).isSingleton()).toBe(true);
    expect(tracker(1, [2]).isSingleton()).toBe(true);
    expect(tracker(2).isSingleton()).toBe(false);
    expect(tracker(0).isSingleton()).toBe(false);
  });

  it('commits by the match index of a quorum of voters; learners do not count', () => {
    const t = tracker(3, [4]);
    const set = (id: number, match: number) => {
      t.progress.get(id)!.match = match;
    };
    set(1, 10);
    set(4, 50);
    expect(t.committed()).toBe(0);
    set(2, 7);
    expect(t.committed()).toBe(7);
    set(3, 9);
    expect(t.committed()).toBe(9);
    expect(new ProgressTracker(1).committed()).toBe(Infinity);
  });

  it('follows a progress map replaced after construction', () => {
    const t = tracker(1);
    const [cfg, progress] = new Changer(t, 3).simple(v(2));
    progress.get(1)!.match = 4;
    progress.get(2)!.match = 4;
    t.config = cfg;
    t.progress = progress;
    expect(t.committed()).toBe(4);
  });

  it('visits in ascending id order', () => {
    const t = new ProgressTracker(10);
    const ch = new Changer(t, 1);
    for (const id of [5, 3, 9, 1]) [t.config, t.progress] = ch.simple(id === 5 ? v(id) : l(id));
    const seen: number[] = [];
    t.visit((id) => seen.push(id));
    expect(seen).toEqual([1, 3, 5, 9]);
  });

  it('has an active quorum when a majority of voters was recently active', () => {
    const t = tracker(3, [4]);
    for (const pr of t.progress.values()) pr.recentActive = false;
    t.progress.get(4)!.recentActive = true;
    t.progress.get(1)!.recentActive = true;
    expect(t.quorumActive()).toBe(false);
    t.progress.get(3)!.recentActive = true;
    expect(t.quorumActive()).toBe(true);
  });

  it('tallies votes of voters, first vote wins', () => {
    const t = tracker(5, [6]);
    t.recordVote(1, true);
    t.recordVote(1, false); // ignored: already voted
    t.recordVote(2, false);
    t.recordVote(6, true); // a learner: not counted
    expect(t.tallyVotes()).toEqual({ granted: 1, rejected: 1, result: 'VotePending' });
    t.recordVote(3, true);
    t.recordVote(4, true);
    expect(t.tallyVotes()).toEqual({ granted: 3, rejected: 1, result: 'VoteWon' });
    t.resetVotes();
    t.recordVote(1, false);
    t.recordVote(2, false);
    t.recordVote(3, false);
    expect(t.tallyVotes()).toEqual({ granted: 0, rejected: 3, result: 'VoteLost' });
  });
});
