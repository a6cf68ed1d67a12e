// The rules of the Raft paper (§5.1–5.4), checked one behaviour at a time against the
// core, driven through RawNode in sync mode by the test network.
import { describe, expect, it } from 'vitest';
import type { MemoryStorage } from '../../src/raft/storage.js';
import { type Entry, type Message, type MessageType, message } from '../../src/raft/types.js';
import { entriesWithTerms, logTerms, Network, text } from './network.js';

const enc = new TextEncoder();

function ids(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i + 1);
}

function ent(index: number, term: number, data = ''): Entry {
  return { index, term, type: 'EntryNormal', data: enc.encode(data) };
}

/** Gives a node a persisted log (terms of entries 1..n) and a HardState term. */
function withLog(storage: MemoryStorage, terms: number[], term = Math.max(0, ...terms)): void {
  storage.append(entriesWithTerms(...terms));
  storage.setHardState({ term, vote: 0, commit: 0 });
}

function types(msgs: Message[]): MessageType[] {
  return msgs.map((m) => m.type);
}

/** Steps a network message into node `id` and returns what it answers (after persisting). */
function stepAndDrain(net: Network, id: number, m: Partial<Message> & Pick<Message, 'type'>): Message[] {
  net.node(id).rn.step(message({ to: id, ...m }));
  return net.drainFrom(id);
}

/** Makes `id` leader by an election with everyone reachable, then settles. */
function elect(net: Network, id: number): void {
  net.campaign(id);
  expect(net.raft(id).state).toBe('StateLeader');
}

describe('§5.1 terms', () => {
  it.each([['StateFollower'], ['StateCandidate'], ['StateLeader']] as const)(
    'a %s seeing a higher-term MsgApp adopts the term and follows the sender',
    (state) => {
      const net = new Network(ids(3));
      const r = net.raft(1);
      if (state === 'StateCandidate') net.node(1).rn.campaign();
      if (state === 'StateLeader') elect(net, 1);
      expect(r.state).toBe(state);
      const before = r.term;
      stepAndDrain(net, 1, {
        type: 'MsgApp',
        from: 2,
        term: before + 5,
        index: r.raftLog.lastIndex(),
        logTerm: r.raftLog.lastTerm(),
      });
      expect(r.state).toBe('StateFollower');
      expect(r.term).toBe(before + 5);
      expect(r.lead).toBe(2);
      // A new term has no vote yet.
      expect(r.vote).toBe(0);
    },
  );

  it('a higher-term vote request moves a leader to the new term with no known leader', () => {
    const net = new Network(ids(3));
    elect(net, 1);
    const r = net.raft(1);
    stepAndDrain(net, 1, { type: 'MsgVote', from: 2, term: r.term + 1, index: 0, logTerm: 0 });
    expect(r.state).toBe('StateFollower');
    expect(r.term).toBe(2);
    expect(r.lead).toBe(0);
  });

  it('the new term is persisted in the HardState of the next Ready', () => {
    const net = new Network(ids(3));
    stepAndDrain(net, 1, { type: 'MsgHeartbeat', from: 2, term: 7 });
    expect(net.node(1).storage.hardState.term).toBe(7);
  });

  it.each([['MsgApp'], ['MsgHeartbeat'], ['MsgVote']] as const)(
    'a stale-term %s is ignored: no answer, no state change',
    (type) => {
      const net = new Network(ids(3));
      stepAndDrain(net, 1, { type: 'MsgHeartbeat', from: 2, term: 3 });
      const r = net.raft(1);
      const out = stepAndDrain(net, 1, {
        type,
        from: 3,
        term: 2,
        index: 0,
        logTerm: 0,
        entries: type === 'MsgApp' ? [ent(1, 2, 'stale')] : [],
      });
      expect(out).toEqual([]);
      expect(r.term).toBe(3);
      expect(r.lead).toBe(2);
      expect(r.vote).toBe(0);
      expect(r.raftLog.lastIndex()).toBe(0);
    },
  );
});

describe('§5.2 leader election', () => {
  it('a follower starts an election once its election timeout elapses', () => {
    const net = new Network(ids(3));
    const r = net.raft(1);
    const timeout = r.randomizedElectionTimeout;
    net.tick(1, timeout - 1);
    expect(r.state).toBe('StateFollower');
    expect(net.drainFrom(1)).toEqual([]);
    net.tick(1);
    expect(r.state).toBe('StateCandidate');
    expect(r.term).toBe(1);
    expect(r.vote).toBe(1);
    const out = net.drainFrom(1);
    expect(out.map((m) => [m.type, m.to, m.term])).toEqual([
      ['MsgVote', 2, 1],
      ['MsgVote', 3, 1],
    ]);
    // The vote for itself is durable before the requests go out.
    expect(net.node(1).storage.hardState).toMatchObject({ term: 1, vote: 1 });
  });

  it('a candidate that neither wins nor loses starts a new election at the next timeout', () => {
    const net = new Network(ids(3));
    const r = net.raft(1);
    net.node(1).rn.campaign();
    net.drainFrom(1);
    expect(r.term).toBe(1);
    net.tick(1, r.randomizedElectionTimeout);
    expect(r.state).toBe('StateCandidate');
    expect(r.term).toBe(2);
    expect(types(net.drainFrom(1))).toEqual(['MsgVote', 'MsgVote']);
  });

  it('a follower that hears heartbeats never campaigns', () => {
    const net = new Network(ids(3));
    elect(net, 1);
    for (let i = 0; i < 100; i++) net.tickAll();
    expect(net.raft(1).state).toBe('StateLeader');
    expect(net.raft(1).term).toBe(1);
    expect(net.raft(2).state).toBe('StateFollower');
  });

  it('randomized election timeouts cover exactly [electionTick, 2·electionTick − 1]', () => {
    const electionTick = 10;
    const seen = new Set<number>();
    for (let seed = 1; seed <= 400; seed++) {
      const net = new Network(ids(3), { seed, config: { electionTick } });
      let ticks = 0;
      while (net.raft(1).state === 'StateFollower') {
        net.tick(1);
        ticks++;
        expect(ticks).toBeLessThan(2 * electionTick);
      }
      seen.add(ticks);
    }
    expect([...seen].sort((a, b) => a - b)).toEqual(
      Array.from({ length: electionTick }, (_, i) => electionTick + i),
    );
  });

  it('the timeout is drawn afresh on every term change', () => {
    const net = new Network(ids(3), { seed: 42 });
    const r = net.raft(1);
    const draws = new Set<number>();
    for (let t = 1; t <= 50; t++) {
      stepAndDrain(net, 1, { type: 'MsgHeartbeat', from: 2, term: t });
      draws.add(r.randomizedElectionTimeout);
    }
    expect(draws.size).toBeGreaterThan(3);
  });

  type Votes = Record<number, boolean>;
  it.each<[number, Votes, string]>([
    [1, {}, 'StateLeader'],
    [3, { 2: true }, 'StateLeader'],
    [3, { 2: true, 3: false }, 'StateLeader'],
    [3, { 2: false }, 'StateCandidate'],
    [3, { 2: false, 3: false }, 'StateFollower'],
    [5, { 2: true, 3: true }, 'StateLeader'],
    [5, { 2: true }, 'StateCandidate'],
    [5, { 2: true, 3: false, 4: false }, 'StateCandidate'],
    [5, { 2: false, 3: false, 4: false }, 'StateFollower'],
    [5, { 2: false, 3: false, 4: true, 5: true }, 'StateLeader'],
  ])('a candidate of a %i-node cluster with votes %j ends as %s', (size, votes, want) => {
    const net = new Network(ids(size));
    const r = net.raft(1);
    net.node(1).rn.campaign();
    net.drainFrom(1);
    for (const [from, granted] of Object.entries(votes)) {
      stepAndDrain(net, 1, { type: 'MsgVoteResp', from: Number(from), term: 1, reject: !granted });
    }
    expect(r.state).toBe(want);
    // Losing does not move the term: the candidate waits for the next timeout.
    expect(r.term).toBe(1);
  });

  it('a new leader announces itself with an append of an empty entry of its term', () => {
    const net = new Network(ids(3));
    net.node(1).rn.campaign();
    net.drainFrom(1);
    const out = stepAndDrain(net, 1, { type: 'MsgVoteResp', from: 2, term: 1 });
    expect(out.map((m) => [m.type, m.to, m.entries.map((e) => [e.index, e.term, e.data.length])])).toEqual([
      ['MsgApp', 2, [[1, 1, 0]]],
      ['MsgApp', 3, [[1, 1, 0]]],
    ]);
  });

  it('a candidate steps down on an append from a leader of its own term', () => {
    const net = new Network(ids(3));
    const r = net.raft(1);
    net.node(1).rn.campaign();
    net.drainFrom(1);
    stepAndDrain(net, 1, { type: 'MsgApp', from: 2, term: 1, index: 0, logTerm: 0 });
    expect(r.state).toBe('StateFollower');
    expect(r.lead).toBe(2);
    expect(r.term).toBe(1);
  });

  it('a node votes at most once per term, first come first served, and repeats its vote', () => {
    const net = new Network(ids(3));
    const r = net.raft(1);
    const vote = (from: number) => {
      const out = stepAndDrain(net, 1, { type: 'MsgVote', from, term: 1, index: 0, logTerm: 0 });
      expect(out).toHaveLength(1);
      expect(out[0]).toMatchObject({ type: 'MsgVoteResp', to: from, term: 1 });
      return !out[0]!.reject;
    };
    expect(vote(2)).toBe(true);
    expect(r.vote).toBe(2);
    expect(net.node(1).storage.hardState.vote).toBe(2);
    expect(vote(3)).toBe(false);
    // A retransmitted request from the candidate we voted for is granted again.
    expect(vote(2)).toBe(true);
    expect(r.vote).toBe(2);
    // A later term frees the vote.
    const out = stepAndDrain(net, 1, { type: 'MsgVote', from: 3, term: 2, index: 0, logTerm: 0 });
    expect(out[0]).toMatchObject({ type: 'MsgVoteResp', reject: false, term: 2 });
    expect(r.vote).toBe(3);
  });

  it('a candidate only votes for itself in its term', () => {
    const net = new Network(ids(3));
    net.node(1).rn.campaign();
    net.drainFrom(1);
    const out = stepAndDrain(net, 1, { type: 'MsgVote', from: 2, term: 1, index: 5, logTerm: 5 });
    expect(out).toMatchObject([{ type: 'MsgVoteResp', to: 2, reject: true }]);
  });

  it('elections in a cluster converge on one leader that everyone follows', () => {
    const net = new Network(ids(5), { seed: 3 });
    for (let i = 0; i < 40 && net.leader() === 0; i++) net.tickAll();
    const lead = net.leader();
    expect(lead).not.toBe(0);
    for (const n of net.nodes.values()) {
      expect(n.raft.lead).toBe(lead);
      expect(n.raft.term).toBe(net.raft(lead).term);
    }
  });
});

describe('§5.3 log replication', () => {
  it('the leader sends heartbeats every heartbeatTick ticks', () => {
    const net = new Network(ids(3), { config: { heartbeatTick: 3, electionTick: 10 } });
    elect(net, 1);
    for (let round = 0; round < 3; round++) {
      net.tick(1, 2);
      expect(net.drainFrom(1)).toEqual([]);
      net.tick(1);
      const out = net.drainFrom(1);
      expect(out.map((m) => [m.type, m.to, m.term])).toEqual([
        ['MsgHeartbeat', 2, 1],
        ['MsgHeartbeat', 3, 1],
      ]);
    }
  });

  it('a heartbeat carries the commit index capped by what the follower has', () => {
    const net = new Network(ids(3), { config: { heartbeatTick: 1 } });
    elect(net, 1);
    net.drop(1, 3);
    net.propose(1, 'x');
    net.stabilize();
    expect(net.raft(1).raftLog.committed).toBe(2);
    net.heal();
    net.tick(1);
    const hb = net.drainFrom(1).filter((m) => m.type === 'MsgHeartbeat');
    expect(hb.map((m) => [m.to, m.commit])).toEqual([
      [2, 2],
      [3, 1],
    ]);
  });

  it('the leader appends a proposal and replicates it to every follower', () => {
    const net = new Network(ids(3));
    elect(net, 1);
    net.node(1).rn.propose(enc.encode('a'));
    const r = net.raft(1);
    expect(r.raftLog.lastIndex()).toBe(2);
    expect(text(r.raftLog.entries(2, Infinity)[0]!)).toBe('a');
    const out = net.drainFrom(1);
    expect(out.map((m) => [m.type, m.to, m.index, m.logTerm, m.entries.map(text)])).toEqual([
      ['MsgApp', 2, 1, 1, ['a']],
      ['MsgApp', 3, 1, 1, ['a']],
    ]);
    // Not committed until acknowledged by a quorum.
    expect(r.raftLog.committed).toBe(1);
  });

  it.each([
    [3, 0, false],
    [3, 1, true],
    [5, 1, false],
    [5, 2, true],
    [5, 4, true],
  ])(
    'in a %i-node cluster an entry acked by the leader and %i followers is committed: %s',
    (size, acks, committed) => {
      const net = new Network(ids(size));
      elect(net, 1);
      for (let id = 2 + acks; id <= size; id++) net.drop(1, id);
      expect(net.propose(1, 'v')).toBe(true);
      net.stabilize();
      const r = net.raft(1);
      expect(r.raftLog.committed).toBe(committed ? 2 : 1);
      expect(net.node(1).appliedData).toEqual(committed ? ['v'] : []);
    },
  );

  it('followers learn the commit index from the leader and apply in log order', () => {
    const net = new Network(ids(3));
    elect(net, 1);
    for (const d of ['a', 'b', 'c']) net.propose(1, d);
    net.stabilize();
    for (const id of [1, 2, 3]) {
      expect(net.raft(id).raftLog.committed).toBe(4);
      expect(net.node(id).appliedData).toEqual(['a', 'b', 'c']);
    }
  });

  it('a follower rejects an append whose previous entry does not match, hinting where to retry', () => {
    const net = new Network(ids(3), { prepare: (id, s) => id === 1 && withLog(s, [1, 2, 2]) });
    // Term of the previous entry differs: the hint is the last index whose term is ≤ the given one.
    let out = stepAndDrain(net, 1, {
      type: 'MsgApp',
      from: 2,
      term: 3,
      index: 3,
      logTerm: 1,
      entries: [ent(4, 3)],
    });
    expect(out).toMatchObject([
      { type: 'MsgAppResp', to: 2, reject: true, index: 3, rejectHint: 1, logTerm: 1 },
    ]);
    // Previous entry beyond our log: the hint is our last index.
    out = stepAndDrain(net, 1, {
      type: 'MsgApp',
      from: 2,
      term: 3,
      index: 7,
      logTerm: 3,
      entries: [ent(8, 3)],
    });
    expect(out).toMatchObject([{ type: 'MsgAppResp', reject: true, index: 7, rejectHint: 3, logTerm: 2 }]);
    expect(logTerms(net.node(1))).toEqual([1, 2, 2]);
    // Matching previous entry: appended and acknowledged.
    out = stepAndDrain(net, 1, {
      type: 'MsgApp',
      from: 2,
      term: 3,
      index: 3,
      logTerm: 2,
      entries: [ent(4, 3)],
      commit: 2,
    });
    expect(out).toMatchObject([{ type: 'MsgAppResp', reject: false, index: 4 }]);
    expect(logTerms(net.node(1))).toEqual([1, 2, 2, 3]);
    expect(net.raft(1).raftLog.committed).toBe(2);
  });

  it('a follower truncates a conflicting suffix and keeps entries that already match', () => {
    const net = new Network(ids(3), { prepare: (id, s) => id === 1 && withLog(s, [1, 1, 2, 2]) });
    // Already-present entries: nothing is truncated, even though the message is shorter.
    let out = stepAndDrain(net, 1, {
      type: 'MsgApp',
      from: 2,
      term: 3,
      index: 1,
      logTerm: 1,
      entries: [ent(2, 1)],
    });
    expect(out).toMatchObject([{ type: 'MsgAppResp', reject: false, index: 2 }]);
    expect(logTerms(net.node(1))).toEqual([1, 1, 2, 2]);
    // A conflict at index 3: everything from there is replaced.
    out = stepAndDrain(net, 1, {
      type: 'MsgApp',
      from: 2,
      term: 3,
      index: 2,
      logTerm: 1,
      entries: [ent(3, 3, 'n')],
    });
    expect(out).toMatchObject([{ type: 'MsgAppResp', reject: false, index: 3 }]);
    expect(logTerms(net.node(1))).toEqual([1, 1, 3]);
    expect(net.node(1).storage.lastIndex()).toBe(3);
  });

  it('a follower never commits past the last entry the leader sent it', () => {
    const net = new Network(ids(3), { prepare: (id, s) => id === 1 && withLog(s, [1, 1, 1, 1]) });
    stepAndDrain(net, 1, {
      type: 'MsgApp',
      from: 2,
      term: 2,
      index: 1,
      logTerm: 1,
      entries: [ent(2, 1)],
      commit: 4,
    });
    // Entries 3 and 4 are not known to match the leader's: only 2 may be committed.
    expect(net.raft(1).raftLog.committed).toBe(2);
  });

  // Raft paper Figure 7: the leader of term 8 and six possible follower logs.
  const leaderLog = [1, 1, 1, 4, 4, 5, 5, 6, 6, 6];
  it.each([
    ['a', [1, 1, 1, 4, 4, 5, 5, 6, 6]],
    ['b', [1, 1, 1, 4]],
    ['c', [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6]],
    ['d', [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7]],
    ['e', [1, 1, 1, 4, 4, 4, 4]],
    ['f', [1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3]],
  ])('the leader repairs follower (%s) of Figure 7 to its own log', (_name, followerLog) => {
    const net = new Network(ids(3), {
      prepare: (id, s) => withLog(s, id === 2 ? followerLog : leaderLog, 7),
    });
    elect(net, 1);
    expect(net.raft(1).term).toBe(8);
    net.propose(1, 'after');
    net.stabilize();
    const want = [...leaderLog, 8, 8];
    for (const id of [1, 2, 3]) expect(logTerms(net.node(id))).toEqual(want);
    expect(net.raft(2).raftLog.committed).toBe(12);
    expect(net.node(2).appliedData).toEqual(['after']);
  });
});

describe('§5.4 safety', () => {
  // Voter's log ends at (index 3, term 2).
  it.each([
    [2, 3, true],
    [2, 4, true],
    [3, 1, true],
    [2, 2, false],
    [1, 10, false],
    [0, 0, false],
  ])(
    'a voter with last entry (3, t2) given a candidate ending at term %i index %i grants: %s',
    (logTerm, index, granted) => {
      const net = new Network(ids(3), { prepare: (id, s) => id === 1 && withLog(s, [1, 1, 2]) });
      const out = stepAndDrain(net, 1, { type: 'MsgVote', from: 2, term: 3, logTerm, index });
      expect(out).toMatchObject([{ type: 'MsgVoteResp', to: 2, term: 3, reject: !granted }]);
      expect(net.raft(1).vote).toBe(granted ? 2 : 0);
    },
  );

  it('a candidate with a stale log cannot win against voters that have committed entries', () => {
    const net = new Network(ids(3), {
      prepare: (id, s) => withLog(s, id === 1 ? [1] : [1, 1], 1),
    });
    net.campaign(1);
    expect(net.raft(1).state).not.toBe('StateLeader');
    net.campaign(2);
    expect(net.raft(2).state).toBe('StateLeader');
  });

  it('a leader does not commit an entry of an earlier term by counting replicas', () => {
    // Node 1 holds (1,t1) (2,t2) and becomes leader of term 3.
    const net = new Network(ids(3), { prepare: (id, s) => id === 1 && withLog(s, [1, 2], 2) });
    const r = net.raft(1);
    net.node(1).rn.campaign();
    net.drainFrom(1);
    stepAndDrain(net, 1, { type: 'MsgVoteResp', from: 2, term: 3 });
    expect(r.state).toBe('StateLeader');
    expect(r.raftLog.lastIndex()).toBe(3);
    // A quorum (1 and 2) holds index 2 of term 2: still not committed.
    stepAndDrain(net, 1, { type: 'MsgAppResp', from: 2, term: 3, index: 2 });
    expect(r.raftLog.committed).toBe(0);
    // Once the term-3 entry is on a quorum, it commits with everything before it.
    stepAndDrain(net, 1, { type: 'MsgAppResp', from: 2, term: 3, index: 3 });
    expect(r.raftLog.committed).toBe(3);
  });

  it('Figure 8: an old-term entry on a majority is not committed and may be overwritten', () => {
    const net = new Network(ids(5));
    const dropFrom = (from: number) => (m: Message) =>
      m.from === from && m.type === 'MsgApp' ? undefined : m;
    // Term 1: node 1 leads everyone.
    elect(net, 1);
    // Node 1 replicates X (2, t1) to node 2 only.
    net.partition([1, 2], [3, 4, 5]);
    net.propose(1, 'X');
    net.stabilize();
    expect(logTerms(net.node(2))).toEqual([1, 1]);
    // Node 5 wins term 2 with 3 and 4 but its first entry (2, t2) reaches nobody.
    net.filter = dropFrom(5);
    net.campaign(5);
    expect(net.raft(5).state).toBe('StateLeader');
    expect(logTerms(net.node(5))).toEqual([1, 2]);
    // Node 2 wins term 3 (after a split round at term 2) with 1 and 3; node 5 only
    // hears its vote requests (and so leaves term 2 without voting). Node 2 copies X to
    // node 3, but none of its own term-3 entries get through.
    net.heal();
    net.partition([1, 2, 3, 5], [4]);
    net.filter = (m) => {
      if (m.to === 5 && (m.type === 'MsgApp' || m.type === 'MsgHeartbeat')) return undefined;
      return m.type === 'MsgApp' ? { ...m, entries: m.entries.filter((e) => e.term !== 3) } : m;
    };
    for (let i = 0; i < 3 && net.raft(2).state !== 'StateLeader'; i++) net.campaign(2);
    expect(net.raft(2).state).toBe('StateLeader');
    expect(net.raft(2).term).toBe(3);
    expect(net.raft(5).state).toBe('StateFollower');
    net.tickAll(3);
    for (const id of [1, 2, 3]) expect(net.raft(id).raftLog.term(2)).toBe(1);
    // X is on a majority (1, 2, 3) but of an old term: the leader must not commit it.
    expect(net.raft(2).raftLog.committed).toBe(1);
    // Node 5 comes back with the leader cut off and legitimately overwrites X.
    net.heal();
    net.partition([2], [1, 3, 4, 5]);
    net.campaign(5);
    expect(net.raft(5).state).toBe('StateLeader');
    expect(net.raft(5).term).toBe(4);
    for (const id of [1, 3, 4, 5]) {
      expect(net.raft(id).raftLog.term(2)).toBe(2);
      expect(net.raft(id).raftLog.committed).toBeGreaterThanOrEqual(2);
      expect(net.node(id).appliedData).toEqual([]);
    }
  });

  it('a leader commits entries of earlier terms once an entry of its own term commits', () => {
    const net = new Network(ids(3), { prepare: (_id, s) => withLog(s, [1, 2], 2) });
    elect(net, 1);
    for (const id of [1, 2, 3]) {
      expect(net.raft(id).raftLog.committed).toBe(3);
      expect(net.node(id).applied).toBe(3);
    }
  });
});
