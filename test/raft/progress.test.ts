import { describe, expect, it } from 'vitest';
import { Inflights } from '../../src/raft/inflights.js';
import { RaftPanic } from '../../src/raft/logger.js';
import { Progress, type ProgressInit, progressMapToString } from '../../src/raft/progress.js';

function progress(init: Partial<ProgressInit> = {}): Progress {
  return new Progress({ next: 1, inflights: new Inflights(256), ...init });
}

describe('Progress.toString', () => {
  it('prints as etcd does', () => {
    expect(progress({ match: 11, next: 12, recentActive: true, state: 'StateReplicate' }).toString()).toBe(
      'StateReplicate match=11 next=12',
    );
    const snap = progress({ next: 1, recentActive: true });
    snap.becomeSnapshot(4);
    expect(snap.toString()).toBe('StateSnapshot match=0 next=5 paused pendingSnap=4');
    expect(progress({ isLearner: true, msgAppFlowPaused: true }).toString()).toBe(
      'StateProbe match=0 next=1 learner paused inactive',
    );
  });

  it('shows the inflights and whether they are full', () => {
    const pr = progress({ match: 1, next: 2, recentActive: true, inflights: new Inflights(2) });
    pr.becomeReplicate();
    pr.updateOnEntriesSend(1, 10);
    expect(pr.toString()).toBe('StateReplicate match=1 next=3 inflight=1');
    pr.updateOnEntriesSend(2, 10);
    expect(pr.toString()).toBe('StateReplicate match=1 next=5 paused inflight=2[full]');
  });

  it('prints a progress map in id order', () => {
    const m = new Map([
      [3, progress({ recentActive: true })],
      [1, progress({ recentActive: true, isLearner: true })],
    ]);
    expect(progressMapToString(m)).toBe(
      '1: StateProbe match=0 next=1 learner\n3: StateProbe match=0 next=1\n',
    );
  });
});

describe('Progress state transitions', () => {
  it('becomeProbe starts from match+1, or after a delivered snapshot', () => {
    const a = progress({ state: 'StateReplicate', match: 1, next: 5 });
    a.inflights.add(4, 1);
    a.becomeProbe();
    expect([a.state, a.match, a.next, a.inflights.count()]).toEqual(['StateProbe', 1, 2, 0]);

    const b = progress({ match: 1, next: 5 });
    b.becomeSnapshot(10);
    b.becomeProbe();
    expect([b.state, b.next, b.pendingSnapshot]).toEqual(['StateProbe', 11, 0]);

    const c = progress({ match: 20, next: 21 });
    c.becomeSnapshot(10);
    c.becomeProbe();
    expect(c.next).toBe(21);
  });

  it('becomeReplicate restarts from match+1', () => {
    const pr = progress({ match: 1, next: 5, msgAppFlowPaused: true });
    pr.becomeReplicate();
    expect([pr.state, pr.next, pr.msgAppFlowPaused]).toEqual(['StateReplicate', 2, false]);
  });

  it('becomeSnapshot waits for the snapshot and resumes after it', () => {
    const pr = progress({ match: 1, next: 5 });
    pr.becomeSnapshot(10);
    expect([pr.state, pr.pendingSnapshot, pr.next, pr.sentCommit]).toEqual(['StateSnapshot', 10, 11, 10]);
    expect(pr.isPaused()).toBe(true);
  });

  it('resetState clears the pause, the snapshot and the inflights', () => {
    const pr = progress({ msgAppFlowPaused: true, pendingSnapshot: 3 });
    pr.inflights.add(1, 1);
    pr.resetState('StateReplicate');
    expect([pr.state, pr.msgAppFlowPaused, pr.pendingSnapshot, pr.inflights.count()]).toEqual([
      'StateReplicate',
      false,
      0,
      0,
    ]);
  });
});

describe('Progress.updateOnEntriesSend', () => {
  it('in StateReplicate advances next and fills the inflights, pausing when full', () => {
    const pr = progress({ state: 'StateReplicate', match: 0, next: 1, inflights: new Inflights(2, 100) });
    pr.updateOnEntriesSend(3, 40);
    expect([pr.next, pr.inflights.count(), pr.msgAppFlowPaused]).toEqual([4, 1, false]);
    pr.updateOnEntriesSend(0, 0); // an empty append changes nothing but the pause check
    expect([pr.next, pr.inflights.count(), pr.msgAppFlowPaused]).toEqual([4, 1, false]);
    pr.updateOnEntriesSend(1, 70); // over the byte limit
    expect([pr.next, pr.inflights.count(), pr.msgAppFlowPaused]).toEqual([5, 2, true]);
    expect(pr.isPaused()).toBe(true);
  });

  it('in StateProbe pauses after a non-empty probe only', () => {
    const pr = progress();
    pr.updateOnEntriesSend(0, 0);
    expect(pr.msgAppFlowPaused).toBe(false);
    pr.updateOnEntriesSend(2, 10);
    expect([pr.msgAppFlowPaused, pr.next, pr.inflights.count()]).toEqual([true, 1, 0]);
    expect(pr.isPaused()).toBe(true);
  });

  it('refuses StateSnapshot', () => {
    const pr = progress();
    pr.becomeSnapshot(3);
    expect(() => pr.updateOnEntriesSend(1, 1)).toThrow(RaftPanic);
  });
});

describe('Progress acks and rejections', () => {
  it('maybeUpdate raises match (and next if behind) and unpauses', () => {
    const pr = progress({ match: 3, next: 5, msgAppFlowPaused: true });
    expect(pr.maybeUpdate(2)).toBe(false);
    expect(pr.maybeUpdate(3)).toBe(false);
    expect(pr.msgAppFlowPaused).toBe(true);
    expect(pr.maybeUpdate(4)).toBe(true);
    expect([pr.match, pr.next, pr.msgAppFlowPaused]).toEqual([4, 5, false]);
    expect(pr.maybeUpdate(6)).toBe(true);
    expect([pr.match, pr.next]).toEqual([6, 7]);
  });

  it('maybeDecrTo in StateReplicate ignores stale rejections and falls back to match+1', () => {
    const pr = progress({ state: 'StateReplicate', match: 5, next: 10, sentCommit: 8 });
    expect(pr.maybeDecrTo(5, 5)).toBe(false);
    expect(pr.maybeDecrTo(4, 4)).toBe(false);
    expect(pr.next).toBe(10);
    expect(pr.maybeDecrTo(9, 9)).toBe(true);
    expect([pr.next, pr.sentCommit]).toEqual([6, 5]);
  });

  it('maybeDecrTo in StateProbe only takes a rejection of next-1, using the hint', () => {
    const pr = progress({ match: 0, next: 10, msgAppFlowPaused: true, sentCommit: 9 });
    expect(pr.maybeDecrTo(5, 5)).toBe(false); // not the probe in flight
    expect(pr.maybeDecrTo(9, 3)).toBe(true);
    expect([pr.next, pr.msgAppFlowPaused, pr.sentCommit]).toEqual([4, false, 3]);
    // The hint never moves next below match+1, nor above the rejected index.
    const q = progress({ match: 5, next: 10 });
    expect(q.maybeDecrTo(9, 1)).toBe(true);
    expect(q.next).toBe(6);
    const r = progress({ match: 0, next: 10 });
    expect(r.maybeDecrTo(9, 100)).toBe(true);
    expect(r.next).toBe(9);
  });

  it('maybeDecrTo of the probe at next-1 = 0 lands on next=1', () => {
    const pr = progress({ match: 0, next: 1 });
    expect(pr.maybeDecrTo(0, 0)).toBe(true);
    expect(pr.next).toBe(1);
  });
});

describe('Progress commit tracking', () => {
  it('sends a commit index only if the follower could advance', () => {
    const pr = progress({ state: 'StateReplicate', match: 5, next: 10 });
    expect(pr.canBumpCommit(3)).toBe(true);
    pr.setSentCommit(3);
    expect(pr.canBumpCommit(3)).toBe(false);
    expect(pr.canBumpCommit(7)).toBe(true);
    pr.setSentCommit(9); // covers everything up to next-1
    expect(pr.canBumpCommit(12)).toBe(false);
    pr.updateOnEntriesSend(2, 1); // new entries in flight: a higher commit helps again
    expect(pr.canBumpCommit(12)).toBe(true);
  });

  it('regresses sentCommit when the follower falls back', () => {
    const pr = progress({ state: 'StateReplicate', match: 2, next: 10, sentCommit: 9 });
    pr.becomeProbe();
    expect(pr.sentCommit).toBe(2);
  });
});

describe('Progress.isPaused and clone', () => {
  it('is paused per state', () => {
    expect(progress({ state: 'StateProbe', msgAppFlowPaused: false }).isPaused()).toBe(false);
    expect(progress({ state: 'StateProbe', msgAppFlowPaused: true }).isPaused()).toBe(true);
    expect(progress({ state: 'StateReplicate', msgAppFlowPaused: false }).isPaused()).toBe(false);
    expect(progress({ state: 'StateReplicate', msgAppFlowPaused: true }).isPaused()).toBe(true);
    expect(progress({ state: 'StateSnapshot' }).isPaused()).toBe(true);
  });

  it('clones every field, inflights included', () => {
    const pr = progress({ match: 3, next: 7, sentCommit: 2, recentActive: true, isLearner: true });
    pr.becomeReplicate();
    pr.updateOnEntriesSend(2, 5);
    const c = pr.clone();
    expect(c.toString()).toBe(pr.toString());
    expect(c).toMatchObject({ match: 3, next: 6, sentCommit: 2, state: 'StateReplicate', isLearner: true });
    c.inflights.freeLE(10);
    c.isLearner = false;
    expect(pr.inflights.count()).toBe(1);
    expect(pr.isLearner).toBe(true);
  });
});
