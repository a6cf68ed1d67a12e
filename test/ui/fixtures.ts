// Builders for the protocol shapes the console consumes.
import type { EntryView, NodeEvent, NodeHello, NodeState, ProgressView } from '../../src/protocol/control.js';

export function nodeState(id: number, over: Partial<NodeState> = {}): NodeState {
  return {
    id,
    role: 'follower',
    term: 2,
    vote: 1,
    leader: 1,
    commit: 10,
    applied: 10,
    lastIndex: 10,
    firstIndex: 1,
    leadTransferee: 0,
    config: { voters: [1, 2, 3], votersOutgoing: [], learners: [], learnersNext: [], autoLeave: false },
    transport: [],
    faults: [],
    snapshotIndex: 0,
    kvKeys: 0,
    at: 1000,
    ...over,
  };
}

export function progress(id: number, over: Partial<ProgressView> = {}): ProgressView {
  return {
    id,
    match: 10,
    next: 11,
    state: 'StateReplicate',
    inflight: 0,
    paused: false,
    recentActive: true,
    learner: false,
    pendingSnapshot: 0,
    ...over,
  };
}

/** A three-node cluster with n1 leading term 2. */
export function threeNodes(): NodeState[] {
  return [
    nodeState(1, {
      role: 'leader',
      progress: [progress(2), progress(3, { match: 8, next: 9, state: 'StateProbe', paused: true })],
    }),
    nodeState(2),
    nodeState(3, { lastIndex: 8, commit: 8, applied: 8 }),
  ];
}

export function hello(nodeId: number, base = 7000): NodeHello {
  return {
    type: 'hello',
    version: 1,
    nodeId,
    clusterId: 'test',
    members: [1, 2, 3].map((id) => ({ id, address: `127.0.0.1:${base + id}`, learner: false })),
    allowFaults: true,
  };
}

let seq = 0;
export function message(
  node: number,
  to: number,
  msgType = 'MsgApp',
  over: Partial<NodeEvent> = {},
): NodeEvent {
  return {
    seq: ++seq,
    at: 1000 + seq,
    node,
    kind: 'message',
    from: node,
    to,
    msgType,
    term: 2,
    logTerm: 2,
    index: 14,
    commit: 13,
    reject: false,
    entries: 1,
    describe: `${node}->${to} ${msgType} Term:2 Log:2/14 Commit:13 Entries:[2/15 EntryNormal "x"]`,
    direction: 'out',
    ...over,
  } as NodeEvent;
}

export function entry(index: number, term = 2, data = '"x"'): EntryView {
  return { index, term, type: 'EntryNormal', data };
}

export function ready(node: number, over: Partial<Extract<NodeEvent, { kind: 'ready' }>> = {}): NodeEvent {
  return {
    seq: ++seq,
    at: 1000 + seq,
    node,
    kind: 'ready',
    entries: [],
    committed: [],
    messages: 0,
    mustSync: false,
    describe: 'Ready MustSync=false:\nLead:1 State:StateFollower\n',
    ...over,
  };
}

export function leaderEvent(node: number, leader: number, term: number): NodeEvent {
  return { seq: ++seq, at: 1000 + seq, node, kind: 'leader', leader, term };
}
