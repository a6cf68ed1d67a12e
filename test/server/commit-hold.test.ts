// When a leader's commit-only MsgApps leave: held for a replicating follower until a MsgApp
// with entries carries the news or the hold runs out; at once for a follower being probed
// and for one waiting on that commit to answer its own clients.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { type Entry, type Message, message } from '../../src/raft/types.js';
import { CommitHold } from '../../src/server/commit-hold.js';

const HOLD_MS = 5;

function entry(index: number): Entry {
  return { term: 1, index, type: 'EntryNormal', data: new Uint8Array([index]) };
}

/** A commit-only MsgApp (what bcastAppend sends once a write commits). */
function commitOnly(to: number, commit: number): Message {
  return message({ type: 'MsgApp', from: 1, to, term: 1, index: commit, logTerm: 1, commit });
}

function withEntries(to: number, index: number, commit: number): Message {
  return message({
    type: 'MsgApp',
    from: 1,
    to,
    term: 1,
    index: index - 1,
    logTerm: 1,
    commit,
    entries: [entry(index)],
  });
}

describe('CommitHold', () => {
  let released: Message[][];
  let probing: Set<number>;
  let hold: CommitHold;

  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
    released = [];
    probing = new Set();
    hold = new CommitHold(
      (msgs) => released.push(msgs),
      (id) => !probing.has(id),
      HOLD_MS,
    );
  });

  afterEach(() => {
    hold.clear();
    vi.useRealTimers();
  });

  it('holds a commit-only MsgApp and sends it once the hold runs out', () => {
    const m = commitOnly(2, 7);
    expect(hold.filter([m])).toEqual([]);
    vi.advanceTimersByTime(HOLD_MS - 1);
    expect(released).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(released).toEqual([[m]]);
    vi.advanceTimersByTime(100);
    expect(released).toHaveLength(1);
  });

  it('drops it when a MsgApp with entries goes to that follower first, and keeps the others', () => {
    expect(hold.filter([commitOnly(2, 7), commitOnly(3, 7)])).toEqual([]);
    const next = withEntries(2, 8, 7);
    expect(hold.filter([next])).toEqual([next]);
    vi.advanceTimersByTime(HOLD_MS);
    expect(released).toEqual([[commitOnly(3, 7)]]);
  });

  it('sends the newest commit when one replaces another, by the first one’s deadline', () => {
    hold.filter([commitOnly(2, 7)]);
    vi.advanceTimersByTime(3);
    hold.filter([commitOnly(2, 9)]);
    vi.advanceTimersByTime(2);
    expect(released).toEqual([[commitOnly(2, 9)]]);
  });

  it('starts a new hold after one ran out or was carried', () => {
    hold.filter([commitOnly(2, 7)]);
    vi.advanceTimersByTime(HOLD_MS);
    hold.filter([withEntries(3, 8, 7)]);
    vi.advanceTimersByTime(1);
    hold.filter([commitOnly(2, 8), commitOnly(3, 8)]);
    vi.advanceTimersByTime(HOLD_MS - 1);
    expect(released).toHaveLength(1);
    vi.advanceTimersByTime(1);
    expect(released[1]).toEqual([commitOnly(2, 8), commitOnly(3, 8)]);
  });

  it('sends at once to a follower being probed: an entry-less MsgApp is how the leader finds its log end', () => {
    probing.add(2);
    const probe = commitOnly(2, 7);
    expect(hold.filter([probe, commitOnly(3, 7)])).toEqual([probe]);
  });

  it('drops a held message whose follower stopped replicating before the hold ran out', () => {
    hold.filter([commitOnly(2, 7)]);
    probing.add(2);
    vi.advanceTimersByTime(HOLD_MS);
    expect(released).toEqual([]);
  });

  it("sends at once the commit a follower's forwarded proposal waits for, and holds lower ones", () => {
    hold.awaitCommit(2, 9);
    expect(hold.filter([commitOnly(2, 8)])).toEqual([]);
    const ninth = commitOnly(2, 9);
    expect(hold.filter([ninth])).toEqual([ninth]);
    // Delivered: the next commit-only message is held again.
    expect(hold.filter([commitOnly(2, 10)])).toEqual([]);
  });

  it('releases a held message at once when a follower turns out to wait for it', () => {
    hold.filter([commitOnly(2, 9)]);
    hold.awaitCommit(2, 9);
    expect(released).toEqual([[commitOnly(2, 9)]]);
    vi.advanceTimersByTime(HOLD_MS);
    expect(released).toHaveLength(1);
  });

  it('sends a held commit with the read index a follower waits for, ahead of the response', () => {
    hold.filter([commitOnly(2, 9)]);
    const resp = message({ type: 'MsgReadIndexResp', from: 1, to: 2, term: 1, index: 9 });
    expect(hold.filter([resp])).toEqual([commitOnly(2, 9), resp]);
  });

  it('takes a read index the follower was already sent as known', () => {
    const hb = message({ type: 'MsgHeartbeat', from: 1, to: 2, term: 1, commit: 9 });
    const resp = message({ type: 'MsgReadIndexResp', from: 1, to: 2, term: 1, index: 9 });
    expect(hold.filter([hb, resp])).toEqual([hb, resp]);
    expect(hold.filter([commitOnly(2, 10)])).toEqual([]);
  });

  it('waits for a read index beyond the held commit, then sends the commit that reaches it at once', () => {
    hold.filter([commitOnly(2, 8)]);
    const resp = message({ type: 'MsgReadIndexResp', from: 1, to: 2, term: 1, index: 9 });
    expect(hold.filter([resp])).toEqual([resp]);
    const ninth = commitOnly(2, 9);
    expect(hold.filter([ninth])).toEqual([ninth]);
  });

  it('forgets everything on clear()', () => {
    hold.filter([commitOnly(2, 7)]);
    hold.clear();
    vi.advanceTimersByTime(HOLD_MS * 10);
    expect(released).toEqual([]);
  });

  it('holds nothing with a hold of 0 ms', () => {
    const now = new CommitHold(
      (msgs) => released.push(msgs),
      () => true,
      0,
    );
    const m = commitOnly(2, 7);
    expect(now.filter([m])).toEqual([m]);
  });
});
