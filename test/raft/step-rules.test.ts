// The Step rules beyond the paper's core: term handling of special messages, PreVote,
// CheckQuorum and leases, proposals, reads, leadership transfer, flow control, learners.
import { describe, expect, it } from 'vitest';
import { ErrProposalDropped, ErrStepLocalMsg, ErrStepPeerNotFound } from '../../src/raft/errors.js';
import type { MemoryStorage } from '../../src/raft/storage.js';
import { entrySize, type Message, message } from '../../src/raft/types.js';
import { entriesWithTerms, Network, type NetworkOptions } from './network.js';

const enc = new TextEncoder();
const dec = new TextDecoder();
const TRANSFER = enc.encode('CampaignTransfer');

function ids(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i + 1);
}

function withLog(storage: MemoryStorage, terms: number[], term = Math.max(0, ...terms)): void {
  storage.append(entriesWithTerms(...terms));
  storage.setHardState({ term, vote: 0, commit: 0 });
}

function stepAndDrain(net: Network, id: number, m: Partial<Message> & Pick<Message, 'type'>): Message[] {
  net.node(id).rn.step(message({ to: id, ...m }));
  return net.drainFrom(id);
}

function summary(msgs: Message[]): [string, number, number, boolean][] {
  return msgs.map((m) => [m.type, m.to, m.term, m.reject]);
}

/** A settled cluster with node 1 elected leader at term 1. */
function cluster(n: number, opts: NetworkOptions = {}): Network {
  const net = new Network(ids(n), opts);
  net.campaign(1);
  expect(net.raft(1).state).toBe('StateLeader');
  return net;
}

describe('local messages', () => {
  it('carry term 0 and are processed whatever the current term', () => {
    const net = new Network(ids(3));
    stepAndDrain(net, 1, { type: 'MsgHeartbeat', from: 2, term: 5 });
    net.raft(1).step(message({ type: 'MsgHup' }));
    expect(net.raft(1).state).toBe('StateCandidate');
    expect(net.raft(1).term).toBe(6);
  });

  it('cannot be stepped through RawNode by a peer', () => {
    const net = new Network(ids(3));
    expect(() => net.node(1).rn.step(message({ type: 'MsgHup', from: 2 }))).toThrow(ErrStepLocalMsg);
    expect(() => net.node(1).rn.step(message({ type: 'MsgBeat', from: 2 }))).toThrow(ErrStepLocalMsg);
    expect(net.raft(1).state).toBe('StateFollower');
  });

  it('responses from unknown peers are refused by RawNode', () => {
    const net = cluster(3);
    expect(() =>
      net.node(1).rn.step(message({ type: 'MsgAppResp', from: 9, to: 1, term: 1, index: 1 })),
    ).toThrow(ErrStepPeerNotFound);
  });

  it('MsgBeat makes a leader broadcast heartbeats at once', () => {
    const net = cluster(3, { config: { heartbeatTick: 5 } });
    net.raft(1).step(message({ type: 'MsgBeat' }));
    expect(summary(net.drainFrom(1))).toEqual([
      ['MsgHeartbeat', 2, 1, false],
      ['MsgHeartbeat', 3, 1, false],
    ]);
  });
});

describe('higher-term vote requests and the leader lease', () => {
  function inLease(id: number) {
    const net = cluster(3, { config: { checkQuorum: true } });
    expect(net.raft(id).lead).toBe(1);
    return net;
  }

  it.each([['MsgVote'], ['MsgPreVote']] as const)('a follower inside the lease ignores a %s', (type) => {
    const net = inLease(2);
    const r = net.raft(2);
    const out = stepAndDrain(net, 2, { type, from: 3, term: 5, index: 10, logTerm: 5 });
    expect(out).toEqual([]);
    expect(r.term).toBe(1);
    expect(r.lead).toBe(1);
    expect(r.vote).toBe(1);
  });

  it('the leader itself ignores a vote request inside its lease', () => {
    const net = inLease(1);
    const out = stepAndDrain(net, 1, { type: 'MsgVote', from: 3, term: 5, index: 10, logTerm: 5 });
    expect(out).toEqual([]);
    expect(net.raft(1).state).toBe('StateLeader');
    expect(net.raft(1).term).toBe(1);
  });

  it('a forced transfer campaign is heard inside the lease', () => {
    const net = inLease(2);
    const r = net.raft(2);
    const out = stepAndDrain(net, 2, {
      type: 'MsgVote',
      from: 3,
      term: 2,
      index: 10,
      logTerm: 5,
      context: TRANSFER,
    });
    expect(summary(out)).toEqual([['MsgVoteResp', 3, 2, false]]);
    expect(r.term).toBe(2);
    expect(r.vote).toBe(3);
  });

  it('once the election timeout has elapsed without the leader, the request is heard', () => {
    const net = inLease(2);
    const r = net.raft(2);
    r.electionElapsed = r.electionTimeout;
    const out = stepAndDrain(net, 2, { type: 'MsgVote', from: 3, term: 2, index: 10, logTerm: 5 });
    expect(summary(out)).toEqual([['MsgVoteResp', 3, 2, false]]);
    expect(r.term).toBe(2);
  });

  it('without CheckQuorum there is no lease', () => {
    const net = cluster(3);
    const out = stepAndDrain(net, 2, { type: 'MsgVote', from: 3, term: 2, index: 10, logTerm: 5 });
    expect(summary(out)).toEqual([['MsgVoteResp', 3, 2, false]]);
  });

  it('a node that knows no leader is not in a lease', () => {
    const net = new Network(ids(3), { config: { checkQuorum: true } });
    const out = stepAndDrain(net, 2, { type: 'MsgVote', from: 3, term: 2, index: 0, logTerm: 0 });
    expect(summary(out)).toEqual([['MsgVoteResp', 3, 2, false]]);
  });
});

describe('PreVote', () => {
  it('a MsgPreVote never changes the receiver term or vote, granted or not', () => {
    const net = new Network(ids(3), { prepare: (id, s) => id === 1 && withLog(s, [1, 1], 1) });
    const r = net.raft(1);
    let out = stepAndDrain(net, 1, { type: 'MsgPreVote', from: 2, term: 5, index: 2, logTerm: 1 });
    // Granted at the candidate's future term.
    expect(summary(out)).toEqual([['MsgPreVoteResp', 2, 5, false]]);
    expect(r.term).toBe(1);
    expect(r.vote).toBe(0);
    // Rejected (stale log) at our own term.
    out = stepAndDrain(net, 1, { type: 'MsgPreVote', from: 3, term: 5, index: 1, logTerm: 1 });
    expect(summary(out)).toEqual([['MsgPreVoteResp', 3, 1, true]]);
    expect(r.term).toBe(1);
    expect(net.node(1).storage.hardState.term).toBe(1);
  });

  it('a follower grants a PreVote for a future term even though it voted in this one', () => {
    const net = new Network(ids(3));
    stepAndDrain(net, 1, { type: 'MsgVote', from: 2, term: 1 });
    expect(net.raft(1).vote).toBe(2);
    const out = stepAndDrain(net, 1, { type: 'MsgPreVote', from: 3, term: 2 });
    expect(summary(out)).toEqual([['MsgPreVoteResp', 3, 2, false]]);
    expect(net.raft(1).vote).toBe(2);
  });

  it('campaigning with PreVote makes a pre-candidate asking for the next term without moving to it', () => {
    const net = new Network(ids(3), { config: { preVote: true } });
    const r = net.raft(1);
    net.node(1).rn.campaign();
    expect(r.state).toBe('StatePreCandidate');
    expect(r.term).toBe(0);
    expect(r.vote).toBe(0);
    expect(summary(net.drainFrom(1))).toEqual([
      ['MsgPreVote', 2, 1, false],
      ['MsgPreVote', 3, 1, false],
    ]);
  });

  it('a granted MsgPreVoteResp does not move the term; winning the pre-election starts the election', () => {
    const net = new Network(ids(5), { config: { preVote: true } });
    const r = net.raft(1);
    net.node(1).rn.campaign();
    net.drainFrom(1);
    stepAndDrain(net, 1, { type: 'MsgPreVoteResp', from: 2, term: 1 });
    expect(r.state).toBe('StatePreCandidate');
    expect(r.term).toBe(0);
    const out = stepAndDrain(net, 1, { type: 'MsgPreVoteResp', from: 3, term: 1 });
    expect(r.state).toBe('StateCandidate');
    expect(r.term).toBe(1);
    expect(r.vote).toBe(1);
    expect(out.map((m) => [m.type, m.term])).toEqual([
      ['MsgVote', 1],
      ['MsgVote', 1],
      ['MsgVote', 1],
      ['MsgVote', 1],
    ]);
  });

  it('a rejected MsgPreVoteResp of a higher term makes the pre-candidate follow that term', () => {
    const net = new Network(ids(3), { config: { preVote: true } });
    const r = net.raft(1);
    net.node(1).rn.campaign();
    net.drainFrom(1);
    stepAndDrain(net, 1, { type: 'MsgPreVoteResp', from: 2, term: 4, reject: true });
    expect(r.state).toBe('StateFollower');
    expect(r.term).toBe(4);
  });

  it('losing the pre-election leaves the term unchanged', () => {
    const net = new Network(ids(3), { config: { preVote: true } });
    const r = net.raft(1);
    net.node(1).rn.campaign();
    net.drainFrom(1);
    stepAndDrain(net, 1, { type: 'MsgPreVoteResp', from: 2, term: 0, reject: true });
    stepAndDrain(net, 1, { type: 'MsgPreVoteResp', from: 3, term: 0, reject: true });
    expect(r.state).toBe('StateFollower');
    expect(r.term).toBe(0);
  });

  it('a partitioned PreVote node does not inflate its term and does not disrupt the leader on rejoin', () => {
    const net = cluster(3, { config: { preVote: true, checkQuorum: true } });
    net.isolate(3);
    for (let i = 0; i < 50; i++) net.tickAll();
    expect(net.raft(3).term).toBe(1);
    net.heal();
    for (let i = 0; i < 5; i++) net.tickAll();
    expect(net.raft(1).state).toBe('StateLeader');
    expect(net.raft(1).term).toBe(1);
    expect(net.raft(3).lead).toBe(1);
  });
});

describe('vote responses and recorded votes', () => {
  it('a vote response carries the term of the request (granted) or ours (rejected)', () => {
    const net = new Network(ids(3));
    let out = stepAndDrain(net, 1, { type: 'MsgVote', from: 2, term: 4 });
    expect(summary(out)).toEqual([['MsgVoteResp', 2, 4, false]]);
    out = stepAndDrain(net, 1, { type: 'MsgVote', from: 3, term: 4 });
    expect(summary(out)).toEqual([['MsgVoteResp', 3, 4, true]]);
  });

  it('granting a PreVote records nothing and keeps the election clock; a real vote records and resets it', () => {
    const net = new Network(ids(3));
    const r = net.raft(1);
    // Term 2 with no leader and no vote.
    stepAndDrain(net, 1, { type: 'MsgAppResp', from: 2, term: 2 });
    expect(r.term).toBe(2);
    expect(r.lead).toBe(0);
    net.tick(1, 3);
    expect(summary(stepAndDrain(net, 1, { type: 'MsgPreVote', from: 2, term: 3 }))).toEqual([
      ['MsgPreVoteResp', 2, 3, false],
    ]);
    expect(r.vote).toBe(0);
    expect(r.electionElapsed).toBe(3);
    stepAndDrain(net, 1, { type: 'MsgVote', from: 2, term: 2 });
    expect(r.vote).toBe(2);
    expect(r.electionElapsed).toBe(0);
    // A rejected vote does not reset the clock.
    net.tick(1, 2);
    expect(summary(stepAndDrain(net, 1, { type: 'MsgVote', from: 3, term: 2 }))).toEqual([
      ['MsgVoteResp', 3, 2, true],
    ]);
    expect(r.vote).toBe(2);
    expect(r.electionElapsed).toBe(2);
  });
});

describe('messages from a leader of a higher term', () => {
  it.each([['MsgApp'], ['MsgHeartbeat'], ['MsgSnap']] as const)(
    'a higher-term %s makes its sender our leader',
    (type) => {
      const net = new Network(ids(3), { config: { preVote: true } });
      net.node(1).rn.campaign();
      net.drainFrom(1);
      const snapshot =
        type === 'MsgSnap'
          ? {
              data: new Uint8Array(),
              metadata: {
                index: 5,
                term: 2,
                confState: {
                  voters: [1, 2, 3],
                  learners: [],
                  votersOutgoing: [],
                  learnersNext: [],
                  autoLeave: false,
                },
              },
            }
          : undefined;
      stepAndDrain(net, 1, { type, from: 3, term: 2, snapshot });
      const r = net.raft(1);
      expect(r.state).toBe('StateFollower');
      expect(r.term).toBe(2);
      expect(r.lead).toBe(3);
      if (type === 'MsgSnap') expect(r.raftLog.lastIndex()).toBe(5);
    },
  );

  it('any other higher-term message makes us a follower with no known leader', () => {
    const net = cluster(3);
    stepAndDrain(net, 1, { type: 'MsgAppResp', from: 2, term: 3, index: 1 });
    expect(net.raft(1).state).toBe('StateFollower');
    expect(net.raft(1).term).toBe(3);
    expect(net.raft(1).lead).toBe(0);
  });
});

describe('messages of a lower term', () => {
  it.each([
    ['checkQuorum', { checkQuorum: true }],
    ['preVote', { preVote: true }],
  ] as const)(
    'with %s a stale MsgHeartbeat or MsgApp is answered with a MsgAppResp at our term',
    (_n, config) => {
      const net = new Network(ids(3), { config });
      stepAndDrain(net, 1, { type: 'MsgHeartbeat', from: 2, term: 3 });
      for (const type of ['MsgHeartbeat', 'MsgApp'] as const) {
        const out = stepAndDrain(net, 1, { type, from: 3, term: 2 });
        expect(out).toMatchObject([{ type: 'MsgAppResp', to: 3, term: 3, entries: [], reject: false }]);
      }
      expect(net.raft(1).lead).toBe(2);
    },
  );

  it('the stale leader steps down on that answer, so the cluster recovers', () => {
    const net = cluster(3, { config: { checkQuorum: true } });
    // Node 3 moves to a higher term on its own while cut off (no PreVote).
    net.isolate(3);
    for (let i = 0; i < 25; i++) net.tickAll();
    const t3 = net.raft(3).term;
    expect(t3).toBeGreaterThan(1);
    expect(net.raft(1).state).toBe('StateLeader');
    net.heal();
    // The leader's next heartbeat is stale for node 3, which answers at its term.
    net.tick(1);
    net.stabilize();
    expect(net.raft(1).state).toBe('StateFollower');
    expect(net.raft(1).term).toBe(t3);
    for (let i = 0; i < 30 && net.leader() === 0; i++) net.tickAll();
    expect(net.raft(net.leader()).term).toBeGreaterThan(t3);
  });

  it('a stale MsgPreVote is rejected at our term', () => {
    const net = new Network(ids(3));
    stepAndDrain(net, 1, { type: 'MsgHeartbeat', from: 2, term: 3 });
    const out = stepAndDrain(net, 1, { type: 'MsgPreVote', from: 3, term: 2 });
    expect(summary(out)).toEqual([['MsgPreVoteResp', 3, 3, true]]);
  });

  it.each([['MsgVote'], ['MsgAppResp'], ['MsgHeartbeatResp'], ['MsgVoteResp']] as const)(
    'even with CheckQuorum and PreVote a stale %s is ignored',
    (type) => {
      const net = cluster(3, { config: { checkQuorum: true, preVote: true } });
      stepAndDrain(net, 1, { type: 'MsgHeartbeat', from: 2, term: 3 });
      const out = stepAndDrain(net, 1, { type, from: 3, term: 2, index: 5 });
      expect(out).toEqual([]);
      expect(net.raft(1).term).toBe(3);
      expect(net.raft(1).lead).toBe(2);
    },
  );
});

describe('campaigning', () => {
  it('MsgHup is refused while a committed conf change is not yet applied', () => {
    const net = new Network(ids(3), { bootstrap: true });
    const r = net.raft(1);
    expect(r.raftLog.committed).toBe(3);
    expect(r.raftLog.applied).toBe(0);
    net.node(1).rn.campaign();
    expect(r.state).toBe('StateFollower');
    expect(r.term).toBe(1);
    // Once the Ready applied the conf changes, the node may campaign.
    net.processReady(1);
    net.node(1).rn.campaign();
    expect(r.state).toBe('StateCandidate');
    expect(r.term).toBe(2);
  });

  it('the election timeout does not campaign over unapplied conf changes either', () => {
    const net = new Network(ids(3), { bootstrap: true });
    net.tick(1, 50);
    expect(net.raft(1).state).toBe('StateFollower');
  });

  it('a leader ignores MsgHup', () => {
    const net = cluster(3);
    net.node(1).rn.campaign();
    expect(net.raft(1).state).toBe('StateLeader');
    expect(net.raft(1).term).toBe(1);
    expect(net.drainFrom(1)).toEqual([]);
  });

  it('a single-node cluster elects itself once its vote is durable', () => {
    const net = new Network([1]);
    net.node(1).rn.campaign();
    expect(net.raft(1).state).toBe('StateCandidate');
    net.processReady(1);
    expect(net.raft(1).state).toBe('StateLeader');
  });
});

describe('CheckQuorum', () => {
  it('a leader that does not hear from a quorum for an election timeout steps down', () => {
    const net = cluster(3, { config: { checkQuorum: true } });
    net.partition([1], [2, 3]);
    // Followers are on their own election clocks; keep them quiet.
    for (let i = 0; i < 2 * net.raft(1).electionTimeout; i++) {
      net.tick(1);
      net.stabilize();
    }
    expect(net.raft(1).state).toBe('StateFollower');
    expect(net.raft(1).term).toBe(1);
  });

  it('a leader with an active quorum stays', () => {
    const net = cluster(3, { config: { checkQuorum: true } });
    net.isolate(3);
    for (let i = 0; i < 5 * net.raft(1).electionTimeout; i++) {
      net.tick(1);
      net.tick(2);
      net.stabilize();
    }
    expect(net.raft(1).state).toBe('StateLeader');
  });

  it('without CheckQuorum an isolated leader stays leader', () => {
    const net = cluster(3);
    net.partition([1], [2, 3]);
    for (let i = 0; i < 50; i++) {
      net.tick(1);
      net.stabilize();
    }
    expect(net.raft(1).state).toBe('StateLeader');
  });
});

describe('proposals', () => {
  it('a follower forwards a proposal to the leader, which commits it', () => {
    const net = cluster(3);
    net.node(2).rn.propose(enc.encode('fwd'));
    const out = net.drainFrom(2);
    expect(out).toMatchObject([{ type: 'MsgProp', to: 1, term: 0 }]);
    net.queue.push(...out);
    net.stabilize();
    for (const id of [1, 2, 3]) expect(net.node(id).appliedData).toEqual(['fwd']);
  });

  it('DisableProposalForwarding drops proposals on followers', () => {
    const net = cluster(3, { config: { disableProposalForwarding: true } });
    expect(() => net.node(2).rn.propose(enc.encode('x'))).toThrow(ErrProposalDropped);
    expect(net.drainFrom(2)).toEqual([]);
  });

  it('proposals without a leader, or to a candidate, are dropped', () => {
    const net = new Network(ids(3));
    expect(() => net.node(1).rn.propose(enc.encode('x'))).toThrow(ErrProposalDropped);
    net.node(1).rn.campaign();
    expect(() => net.node(1).rn.propose(enc.encode('x'))).toThrow(ErrProposalDropped);
  });

  it('MaxUncommittedEntriesSize drops proposals beyond the quota until entries commit', () => {
    const net = cluster(3, { config: { maxUncommittedEntriesSize: 10 } });
    net.partition([1], [2, 3]);
    expect(net.propose(1, 'aaaaaa')).toBe(true);
    expect(net.propose(1, 'bbbbbb')).toBe(false);
    // Empty entries are always accepted.
    expect(net.propose(1, '')).toBe(true);
    net.heal();
    net.tickAll(2);
    expect(net.node(2).appliedData).toEqual(['aaaaaa']);
    expect(net.propose(1, 'cccccc')).toBe(true);
  });

  it('a first proposal larger than the quota is still accepted on an empty tail', () => {
    const net = cluster(3, { config: { maxUncommittedEntriesSize: 4 } });
    expect(net.propose(1, 'much larger than four')).toBe(true);
    expect(net.propose(1, 'x')).toBe(false);
  });
});

describe('ReadIndex', () => {
  it('safe: the read is served after a quorum answers a heartbeat round carrying its context', () => {
    const net = cluster(3);
    net.propose(1, 'a');
    net.stabilize();
    net.drop(2, 1);
    net.drop(3, 1);
    net.node(1).rn.readIndex(enc.encode('r1'));
    const out = net.drainFrom(1);
    expect(out.map((m) => [m.type, m.to, dec.decode(m.context).length > 0])).toEqual([
      ['MsgHeartbeat', 2, true],
      ['MsgHeartbeat', 3, true],
    ]);
    net.queue.push(...out);
    net.stabilize();
    // No acks came back: nothing is served.
    expect(net.node(1).readStates).toEqual([]);
    net.heal();
    net.node(1).rn.readIndex(enc.encode('r2'));
    net.stabilize();
    // The quorum for the later round also confirms the earlier one.
    expect(net.node(1).readStates.map((rs) => [rs.index, dec.decode(rs.requestCtx)])).toEqual([
      [2, 'r1'],
      [2, 'r2'],
    ]);
  });

  it('safe: a request before the leader commits an entry of its term is postponed until then', () => {
    const net = new Network(ids(3));
    // The leader is elected but hears no acks for its first (empty) entry.
    net.filter = (m) => (m.type === 'MsgAppResp' ? undefined : m);
    net.campaign(1);
    const r = net.raft(1);
    expect(r.state).toBe('StateLeader');
    expect(r.raftLog.committed).toBe(0);
    net.node(1).rn.readIndex(enc.encode('early'));
    const out = net.drainFrom(1);
    expect(out.filter((m) => m.type === 'MsgHeartbeat')).toEqual([]);
    expect(net.node(1).readStates).toEqual([]);
    // The term-1 entry commits: the postponed read goes through a heartbeat round.
    net.filter = undefined;
    net.tickAll(2);
    expect(r.raftLog.committed).toBe(1);
    expect(net.node(1).readStates.map((rs) => [rs.index, dec.decode(rs.requestCtx)])).toEqual([[1, 'early']]);
  });

  it('a follower forwards a read to the leader and gets the read index back', () => {
    const net = cluster(3);
    net.node(2).rn.readIndex(enc.encode('f'));
    net.stabilize();
    expect(net.node(2).readStates.map((rs) => [rs.index, dec.decode(rs.requestCtx)])).toEqual([[1, 'f']]);
  });

  it('lease-based: the leader answers at once without a heartbeat round', () => {
    const net = cluster(3, { config: { checkQuorum: true, readOnlyOption: 'ReadOnlyLeaseBased' } });
    net.node(1).rn.readIndex(enc.encode('lease'));
    const out = net.drainFrom(1);
    expect(out.filter((m) => m.type === 'MsgHeartbeat')).toEqual([]);
    expect(net.node(1).readStates.map((rs) => [rs.index, dec.decode(rs.requestCtx)])).toEqual([[1, 'lease']]);
  });
});

describe('leadership transfer', () => {
  it('sends MsgTimeoutNow to an up-to-date transferee, which wins the next term', () => {
    const net = cluster(3);
    net.node(1).rn.transferLeader(2);
    const out = net.drainFrom(1);
    expect(summary(out)).toEqual([['MsgTimeoutNow', 2, 1, false]]);
    net.queue.push(...out);
    net.stabilize();
    expect(net.raft(2).state).toBe('StateLeader');
    expect(net.raft(2).term).toBe(2);
    expect(net.raft(1).lead).toBe(2);
  });

  it('catches a lagging transferee up first, then sends MsgTimeoutNow', () => {
    const net = cluster(3);
    net.isolate(3);
    net.propose(1, 'a');
    net.stabilize();
    net.heal();
    net.node(1).rn.transferLeader(3);
    const out = net.drainFrom(1);
    expect(out.map((m) => [m.type, m.to])).toEqual([['MsgApp', 3]]);
    net.queue.push(...out);
    net.stabilize();
    expect(net.raft(3).state).toBe('StateLeader');
    expect(net.node(3).appliedData).toEqual(['a']);
  });

  it('works through the leader lease (the vote requests are forced)', () => {
    const net = cluster(3, { config: { checkQuorum: true, preVote: true } });
    net.node(1).rn.transferLeader(3);
    net.stabilize();
    expect(net.raft(3).state).toBe('StateLeader');
  });

  it('drops proposals while in progress and is aborted after an election timeout', () => {
    const net = cluster(3);
    net.isolate(3);
    net.propose(1, 'a');
    net.stabilize();
    net.node(1).rn.transferLeader(3);
    net.stabilize();
    const r = net.raft(1);
    expect(r.leadTransferee).toBe(3);
    expect(net.propose(1, 'b')).toBe(false);
    for (let i = 0; i < r.electionTimeout - 1; i++) net.tick(1);
    expect(r.leadTransferee).toBe(3);
    net.tick(1);
    expect(r.leadTransferee).toBe(0);
    expect(r.state).toBe('StateLeader');
    expect(net.propose(1, 'b')).toBe(true);
  });

  it('is ignored for a learner transferee', () => {
    const net = cluster(3, { learners: [3] });
    net.node(1).rn.transferLeader(3);
    expect(net.raft(1).leadTransferee).toBe(0);
    expect(net.drainFrom(1)).toEqual([]);
  });
});

describe('ForgetLeader', () => {
  it('a follower forgets its leader and may then vote in the same term', () => {
    const net = new Network(ids(3));
    const r = net.raft(1);
    stepAndDrain(net, 1, { type: 'MsgHeartbeat', from: 2, term: 1 });
    expect(r.lead).toBe(2);
    expect(r.vote).toBe(0);
    const vote = () => summary(stepAndDrain(net, 1, { type: 'MsgVote', from: 3, term: 1 }));
    // A known leader in this term makes us refuse.
    expect(vote()).toEqual([['MsgVoteResp', 3, 1, true]]);
    net.node(1).rn.forgetLeader();
    expect(r.lead).toBe(0);
    expect(r.term).toBe(1);
    expect(vote()).toEqual([['MsgVoteResp', 3, 1, false]]);
    expect(r.vote).toBe(3);
  });

  it('is ignored with lease-based reads and by a leader', () => {
    const net = cluster(3, { config: { checkQuorum: true, readOnlyOption: 'ReadOnlyLeaseBased' } });
    net.node(2).rn.forgetLeader();
    expect(net.raft(2).lead).toBe(1);
    net.node(1).rn.forgetLeader();
    expect(net.raft(1).lead).toBe(1);
    expect(net.raft(1).state).toBe('StateLeader');
  });
});

describe('flow control', () => {
  it('a probing follower gets one append at a time until it answers', () => {
    const net = new Network(ids(3));
    net.drop(2, 1);
    net.campaign(1);
    const pr = net.raft(1).trk.progress.get(2)!;
    expect(pr.state).toBe('StateProbe');
    expect(pr.msgAppFlowPaused).toBe(true);
    net.propose(1, 'a');
    net.propose(1, 'b');
    const out = net.drainFrom(1);
    expect(out.filter((m) => m.to === 2)).toEqual([]);
    expect(out.filter((m) => m.to === 3).length).toBeGreaterThan(0);
    // A heartbeat response unpauses: exactly one probe goes out, and pauses again.
    const again = stepAndDrain(net, 1, { type: 'MsgHeartbeatResp', from: 2, term: 1 });
    expect(again.map((m) => [m.type, m.to, m.index])).toEqual([['MsgApp', 2, 0]]);
    expect(pr.msgAppFlowPaused).toBe(true);
  });

  it('a replicating follower with a full inflight window gets only empty appends', () => {
    const net = cluster(3, { config: { maxInflightMsgs: 2 } });
    const pr = net.raft(1).trk.progress.get(2)!;
    expect(pr.state).toBe('StateReplicate');
    net.filter = (m) => (m.from === 2 && m.type === 'MsgAppResp' ? undefined : m);
    for (const d of ['a', 'b', 'c', 'd']) net.node(1).rn.propose(enc.encode(d));
    let toTwo = net.drainFrom(1).filter((m) => m.to === 2);
    expect(toTwo.map((m) => m.entries.length)).toEqual([1, 1]);
    expect(pr.inflights.full()).toBe(true);
    // A heartbeat response lets an append through, but an empty one: it only carries the commit.
    toTwo = stepAndDrain(net, 1, { type: 'MsgHeartbeatResp', from: 2, term: 1 });
    expect(toTwo.map((m) => [m.type, m.to, m.entries.length])).toEqual([['MsgApp', 2, 0]]);
    // Acks free the window and the rest follows.
    net.filter = undefined;
    toTwo = stepAndDrain(net, 1, { type: 'MsgAppResp', from: 2, term: 1, index: 3 });
    expect(toTwo.filter((m) => m.to === 2).flatMap((m) => m.entries.map((e) => e.index))).toEqual([4, 5]);
  });

  it('MaxSizePerMsg bounds the entries of each append (but sends at least one)', () => {
    const maxSizePerMsg = 40;
    const net = cluster(3, { config: { maxSizePerMsg, maxInflightMsgs: 1000 } });
    net.isolate(3);
    for (let i = 0; i < 20; i++) net.propose(1, `entry-${i}`);
    net.propose(1, 'x'.repeat(100));
    net.stabilize();
    net.heal();
    const apps: Message[] = [];
    net.observer = {
      onReady: (node, rd) => {
        if (node.id === 1) apps.push(...rd.messages.filter((m) => m.to === 3 && m.entries.length > 0));
      },
    };
    net.tickAll(3);
    expect(net.node(3).appliedData).toHaveLength(21);
    expect(apps.length).toBeGreaterThan(3);
    for (const m of apps) {
      const size = m.entries.reduce((s, e) => s + entrySize(e), 0);
      expect(m.entries.length === 1 || size <= maxSizePerMsg).toBe(true);
    }
    expect(apps.some((m) => m.entries.length === 1 && entrySize(m.entries[0]!) > maxSizePerMsg)).toBe(true);
  });

  it('ReportUnreachable moves a replicating follower back to probing', () => {
    const net = cluster(3);
    const pr = net.raft(1).trk.progress.get(2)!;
    expect(pr.state).toBe('StateReplicate');
    net.node(1).rn.reportUnreachable(2);
    expect(pr.state).toBe('StateProbe');
    expect(pr.next).toBe(pr.match + 1);
  });
});

describe('learners', () => {
  it('never campaign, on timeout or on request', () => {
    const net = new Network(ids(3), { learners: [3] });
    const r = net.raft(3);
    expect(r.isLearner).toBe(true);
    net.tick(3, 5 * r.electionTimeout);
    net.node(3).rn.campaign();
    stepAndDrain(net, 3, { type: 'MsgTimeoutNow', from: 1, term: 0 });
    expect(r.state).toBe('StateFollower');
    expect(r.term).toBe(0);
    expect(net.drainFrom(3)).toEqual([]);
  });

  it('replicate and apply but do not count towards the quorum', () => {
    const net = cluster(3, { learners: [2, 3] });
    // Node 1 is the only voter: it commits alone.
    net.partition([1], [2, 3]);
    net.propose(1, 'solo');
    net.stabilize();
    expect(net.raft(1).raftLog.committed).toBe(2);
    net.heal();
    net.tickAll(2);
    expect(net.node(3).appliedData).toEqual(['solo']);
  });

  it('a learner answers a vote request (it may be promoted but not have applied it yet)', () => {
    const net = new Network(ids(3), { learners: [3] });
    const out = stepAndDrain(net, 3, { type: 'MsgVote', from: 1, term: 1, index: 0, logTerm: 0 });
    expect(summary(out)).toEqual([['MsgVoteResp', 1, 1, false]]);
    expect(net.raft(3).vote).toBe(1);
  });
});
