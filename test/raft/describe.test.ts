import { describe, expect, it } from 'vitest';
import { confChangesFromString, confChangeToEntryData } from '../../src/raft/confchange-codec.js';
import {
  describeConfState,
  describeEntries,
  describeEntry,
  describeHardState,
  describeMessage,
  describeReady,
  describeSnapshot,
  describeSoftState,
  describeTarget,
  goQuote,
} from '../../src/raft/describe.js';
import type { Ready } from '../../src/raft/ready.js';
import {
  type ConfState,
  EMPTY_BYTES,
  type Entry,
  emptyConfState,
  emptySnapshot,
  entry,
  LOCAL_APPEND_THREAD,
  LOCAL_APPLY_THREAD,
  message,
  type Snapshot,
} from '../../src/raft/types.js';

const text = (s: string) => new TextEncoder().encode(s);
const bytes = (...b: number[]) => Uint8Array.from(b);

const normal = (term: number, index: number, data = '') => entry({ term, index, data: text(data) });

function ccEntry(term: number, index: number, kind: 'v1' | 'v2', changes: string): Entry {
  const [change] = confChangesFromString(changes);
  const cc =
    kind === 'v1'
      ? { kind, type: change!.type, nodeId: change!.nodeId, context: EMPTY_BYTES, id: 0 }
      : {
          kind,
          transition: 'ConfChangeTransitionAuto' as const,
          changes: confChangesFromString(changes),
          context: EMPTY_BYTES,
        };
  return { term, index, ...confChangeToEntryData(cc) };
}

function snapshot(index: number, term: number, cs: Partial<ConfState>): Snapshot {
  return { data: EMPTY_BYTES, metadata: { index, term, confState: { ...emptyConfState(), ...cs } } };
}

function ready(fields: Partial<Ready>): Ready {
  return { readStates: [], entries: [], committedEntries: [], messages: [], mustSync: false, ...fields };
}

describe('goQuote matches Go %q', () => {
  it.each([
    ['', '""'],
    ['prop_1', '"prop_1"'],
    ['a "b" \\c', '"a \\"b\\" \\\\c"'],
    ['\n\t\r\x07\x08\x0c\x0b', '"\\n\\t\\r\\a\\b\\f\\v"'],
    ['\x00\x1f\x7f', '"\\x00\\x1f\\x7f"'],
    ["it's", '"it\'s"'],
    ['héllo, 世界 🙂', '"héllo, 世界 🙂"'],
    ['\u00a0\u00ad\u200b\u2028', '"\\u00a0\\u00ad\\u200b\\u2028"'],
    ['\u{e0001}', '"\\U000e0001"'],
    ['\ufffd', '"\ufffd"'],
  ])('quotes %j', (s, want) => {
    expect(goQuote(text(s))).toBe(want);
  });

  it.each([
    [bytes(0xff), '"\\xff"'],
    [bytes(0x80, 0x61), '"\\x80a"'],
    [bytes(0xc3), '"\\xc3"'],
    [bytes(0xc0, 0x80), '"\\xc0\\x80"'], // overlong NUL
    [bytes(0xe0, 0x80, 0x80), '"\\xe0\\x80\\x80"'], // overlong 3-byte form
    [bytes(0xed, 0xa0, 0x80), '"\\xed\\xa0\\x80"'], // UTF-16 surrogate
    [bytes(0xf4, 0x90, 0x80, 0x80), '"\\xf4\\x90\\x80\\x80"'], // above U+10FFFF
    [bytes(0xe4, 0xb8, 0x41), '"\\xe4\\xb8A"'], // truncated sequence, then ASCII
  ])('escapes invalid UTF-8 %j byte by byte', (b, want) => {
    expect(goQuote(b)).toBe(want);
  });
});

describe('entries', () => {
  it('prints normal entries with quoted data', () => {
    expect(describeEntry(normal(1, 11))).toBe('1/11 EntryNormal ""');
    expect(describeEntry(normal(4, 15, 'prop_4_15'))).toBe('4/15 EntryNormal "prop_4_15"');
  });

  it('prints conf changes in their compact form', () => {
    expect(describeEntry(ccEntry(1, 4, 'v1', 'v2'))).toBe('1/4 EntryConfChange v2');
    expect(describeEntry(ccEntry(1, 4, 'v1', 'r1'))).toBe('1/4 EntryConfChange r1');
    expect(describeEntry(ccEntry(1, 4, 'v2', 'r1 v4'))).toBe('1/4 EntryConfChangeV2 r1 v4');
    expect(describeEntry(ccEntry(1, 5, 'v2', 'l2 l3'))).toBe('1/5 EntryConfChangeV2 l2 l3');
  });

  it('prints nothing after the type of an empty conf change', () => {
    expect(describeEntry(ccEntry(1, 5, 'v2', ''))).toBe('1/5 EntryConfChangeV2');
    expect(describeEntry({ term: 2, index: 6, type: 'EntryConfChangeV2', data: EMPTY_BYTES })).toBe(
      '2/6 EntryConfChangeV2',
    );
  });

  it('prints the decoding error of a malformed conf change', () => {
    expect(describeEntry({ term: 1, index: 2, type: 'EntryConfChange', data: bytes(0x18, 0x80) })).toBe(
      '1/2 EntryConfChange raftpb.ConfChange: truncated varint at offset 1',
    );
  });

  it('uses a formatter for normal entries only', () => {
    const fmt = (d: Uint8Array) => `<${d.length}>`;
    expect(describeEntry(normal(1, 1, 'abc'), fmt)).toBe('1/1 EntryNormal <3>');
    expect(describeEntry(normal(1, 1, 'abc'), () => '')).toBe('1/1 EntryNormal');
    expect(describeEntry(ccEntry(1, 4, 'v2', 'v2 v3'), fmt)).toBe('1/4 EntryConfChangeV2 v2 v3');
  });

  it('puts each entry on its own newline-terminated line', () => {
    expect(describeEntries([normal(1, 3), ccEntry(1, 4, 'v2', 'v2 v3')])).toBe(
      '1/3 EntryNormal ""\n1/4 EntryConfChangeV2 v2 v3\n',
    );
    expect(describeEntries([])).toBe('');
  });
});

describe('small records', () => {
  it('prints targets: None, local threads by name, node ids in decimal', () => {
    expect(describeTarget(0)).toBe('None');
    expect(describeTarget(3)).toBe('3');
    expect(describeTarget(26)).toBe('26');
    expect(describeTarget(LOCAL_APPEND_THREAD)).toBe('AppendThread');
    expect(describeTarget(LOCAL_APPLY_THREAD)).toBe('ApplyThread');
  });

  it('prints hard state, leaving out an absent vote', () => {
    expect(describeHardState({ term: 1, vote: 1, commit: 10 })).toBe('Term:1 Vote:1 Commit:10');
    expect(describeHardState({ term: 1, vote: 0, commit: 11 })).toBe('Term:1 Commit:11');
  });

  it('prints soft state', () => {
    expect(describeSoftState({ lead: 0, raftState: 'StateCandidate' })).toBe('Lead:0 State:StateCandidate');
  });

  it('prints conf states and snapshots', () => {
    expect(describeConfState(emptyConfState())).toBe(
      'Voters:[] VotersOutgoing:[] Learners:[] LearnersNext:[] AutoLeave:false',
    );
    expect(describeSnapshot(snapshot(4, 1, { voters: [1, 2], votersOutgoing: [1], autoLeave: true }))).toBe(
      'Index:4 Term:1 ConfState:Voters:[1 2] VotersOutgoing:[1] Learners:[] LearnersNext:[] AutoLeave:true',
    );
    expect(describeSnapshot(snapshot(4, 1, { voters: [2, 3, 4], votersOutgoing: [1, 2, 3] }))).toBe(
      'Index:4 Term:1 ConfState:Voters:[2 3 4] VotersOutgoing:[1 2 3] Learners:[] LearnersNext:[] AutoLeave:false',
    );
  });
});

// Expected strings below are lines of etcd's interaction scripts (with the runner's
// two-space indentation removed).
describe('messages', () => {
  it('prints the header', () => {
    expect(
      describeMessage(message({ type: 'MsgVote', from: 1, to: 2, term: 1, logTerm: 1, index: 10 })),
    ).toBe('1->2 MsgVote Term:1 Log:1/10');
  });

  it('prints a rejection with its hint', () => {
    const m = message({
      type: 'MsgAppResp',
      from: 2,
      to: 1,
      term: 8,
      logTerm: 6,
      index: 20,
      reject: true,
      rejectHint: 19,
    });
    expect(describeMessage(m)).toBe('2->1 MsgAppResp Term:8 Log:6/20 Rejected (Hint: 19)');
    expect(
      describeMessage({ ...m, type: 'MsgPreVoteResp', to: 3, term: 1, logTerm: 0, index: 0, rejectHint: 0 }),
    ).toBe('2->3 MsgPreVoteResp Term:1 Log:0/0 Rejected (Hint: 0)');
  });

  it('prints a single entry inline', () => {
    const m = message({ type: 'MsgApp', from: 1, to: 2, term: 1, logTerm: 1, index: 10, commit: 10 });
    expect(describeMessage({ ...m, entries: [normal(1, 11)] })).toBe(
      '1->2 MsgApp Term:1 Log:1/10 Commit:10 Entries:[1/11 EntryNormal ""]',
    );
    expect(describeMessage({ ...m, index: 3, commit: 3, entries: [ccEntry(1, 4, 'v2', 'r1 v4')] })).toBe(
      '1->2 MsgApp Term:1 Log:1/3 Commit:3 Entries:[1/4 EntryConfChangeV2 r1 v4]',
    );
  });

  it('prints several entries one per indented line', () => {
    const m = message({
      type: 'MsgApp',
      from: 1,
      to: 2,
      term: 8,
      logTerm: 6,
      index: 19,
      commit: 18,
      entries: [normal(6, 20, 'prop_6_20'), normal(8, 21)],
    });
    expect(describeMessage(m)).toBe(
      [
        '1->2 MsgApp Term:8 Log:6/19 Commit:18 Entries:[',
        '  6/20 EntryNormal "prop_6_20"',
        '  8/21 EntryNormal ""',
        ']',
      ].join('\n'),
    );
  });

  it('prints a snapshot on its own line', () => {
    const m = message({
      type: 'MsgSnap',
      from: 1,
      to: 3,
      term: 1,
      snapshot: snapshot(11, 1, { voters: [1, 2, 3] }),
    });
    expect(describeMessage(m)).toBe(
      '1->3 MsgSnap Term:1 Log:0/0\n' +
        '  Snapshot: Index:11 Term:1 ConfState:Voters:[1 2 3] VotersOutgoing:[] Learners:[] LearnersNext:[] AutoLeave:false',
    );
    expect(describeMessage({ ...m, snapshot: emptySnapshot() })).toBe('1->3 MsgSnap Term:1 Log:0/0');
  });

  it('prints responses indented below the message', () => {
    const m = message({
      type: 'MsgStorageAppend',
      from: 1,
      to: LOCAL_APPEND_THREAD,
      term: 1,
      commit: 10,
      vote: 1,
      responses: [message({ type: 'MsgVoteResp', from: 1, to: 1, term: 1 })],
    });
    expect(describeMessage(m)).toBe(
      '1->AppendThread MsgStorageAppend Term:1 Log:0/0 Commit:10 Vote:1 Responses:[\n' +
        '  1->1 MsgVoteResp Term:1 Log:0/0\n' +
        ']',
    );
  });

  it('prints entries, then responses, including local-thread senders', () => {
    const ents = [normal(1, 11)];
    const m = message({
      type: 'MsgStorageAppend',
      from: 1,
      to: LOCAL_APPEND_THREAD,
      entries: ents,
      responses: [
        message({ type: 'MsgAppResp', from: 1, to: 1, term: 1, index: 11 }),
        message({
          type: 'MsgStorageAppendResp',
          from: LOCAL_APPEND_THREAD,
          to: 1,
          term: 1,
          logTerm: 1,
          index: 11,
        }),
      ],
    });
    expect(describeMessage(m)).toBe(
      '1->AppendThread MsgStorageAppend Term:0 Log:0/0 Entries:[1/11 EntryNormal ""] Responses:[\n' +
        '  1->1 MsgAppResp Term:1 Log:0/11\n' +
        '  AppendThread->1 MsgStorageAppendResp Term:1 Log:1/11\n' +
        ']',
    );
    const apply = message({
      type: 'MsgStorageApply',
      from: 2,
      to: LOCAL_APPLY_THREAD,
      entries: ents,
      responses: [message({ type: 'MsgStorageApplyResp', from: LOCAL_APPLY_THREAD, to: 2, entries: ents })],
    });
    expect(describeMessage(apply)).toBe(
      '2->ApplyThread MsgStorageApply Term:0 Log:0/0 Entries:[1/11 EntryNormal ""] Responses:[\n' +
        '  ApplyThread->2 MsgStorageApplyResp Term:0 Log:0/0 Entries:[1/11 EntryNormal ""]\n' +
        ']',
    );
  });

  it('indents nested multi-line parts one level deeper per response level', () => {
    const inner = message({
      type: 'MsgStorageApplyResp',
      from: LOCAL_APPLY_THREAD,
      to: 1,
      entries: [normal(1, 1, 'a'), normal(1, 2, 'b')],
      snapshot: snapshot(4, 1, { voters: [1] }),
    });
    const m = message({ type: 'MsgStorageApply', from: 1, to: LOCAL_APPLY_THREAD, responses: [inner] });
    expect(describeMessage(m)).toBe(
      [
        '1->ApplyThread MsgStorageApply Term:0 Log:0/0 Responses:[',
        '  ApplyThread->1 MsgStorageApplyResp Term:0 Log:0/0 Entries:[',
        '    1/1 EntryNormal "a"',
        '    1/2 EntryNormal "b"',
        '  ]',
        '    Snapshot: Index:4 Term:1 ConfState:Voters:[1] VotersOutgoing:[] Learners:[] LearnersNext:[] AutoLeave:false',
        ']',
      ].join('\n'),
    );
  });

  it('passes the formatter down to entries of responses', () => {
    const m = message({
      type: 'MsgStorageApply',
      from: 1,
      to: LOCAL_APPLY_THREAD,
      responses: [
        message({
          type: 'MsgStorageApplyResp',
          from: LOCAL_APPLY_THREAD,
          to: 1,
          entries: [normal(1, 1, 'xy')],
        }),
      ],
    });
    expect(describeMessage(m, (d) => `len=${d.length}`)).toContain('Entries:[1/1 EntryNormal len=2]');
  });
});

describe('readies', () => {
  it('prints an empty Ready specially', () => {
    expect(describeReady(ready({ mustSync: true }))).toBe('<empty Ready>');
    expect(
      describeReady(ready({ hardState: { term: 0, vote: 0, commit: 0 }, snapshot: emptySnapshot() })),
    ).toBe('<empty Ready>');
  });

  it('prints soft state, hard state and messages (async_storage_writes.txt)', () => {
    const rd = ready({
      mustSync: true,
      softState: { lead: 0, raftState: 'StateCandidate' },
      hardState: { term: 1, vote: 1, commit: 10 },
      messages: [
        message({ type: 'MsgVote', from: 1, to: 2, term: 1, logTerm: 1, index: 10 }),
        message({ type: 'MsgVote', from: 1, to: 3, term: 1, logTerm: 1, index: 10 }),
        message({
          type: 'MsgStorageAppend',
          from: 1,
          to: LOCAL_APPEND_THREAD,
          term: 1,
          commit: 10,
          vote: 1,
          responses: [message({ type: 'MsgVoteResp', from: 1, to: 1, term: 1 })],
        }),
      ],
    });
    expect(describeReady(rd)).toBe(
      [
        'Ready MustSync=true:',
        'Lead:0 State:StateCandidate',
        'HardState Term:1 Vote:1 Commit:10',
        'Messages:',
        '1->2 MsgVote Term:1 Log:1/10',
        '1->3 MsgVote Term:1 Log:1/10',
        '1->AppendThread MsgStorageAppend Term:1 Log:0/0 Commit:10 Vote:1 Responses:[',
        '  1->1 MsgVoteResp Term:1 Log:0/0',
        ']',
        '',
      ].join('\n'),
    );
  });

  it('prints hard state, snapshot and messages (snapshot_succeed_via_app_resp.txt)', () => {
    const rd = ready({
      hardState: { term: 1, vote: 0, commit: 11 },
      snapshot: snapshot(11, 1, { voters: [1, 2, 3] }),
      messages: [message({ type: 'MsgAppResp', from: 3, to: 1, term: 1, index: 11 })],
    });
    expect(describeReady(rd)).toBe(
      [
        'Ready MustSync=false:',
        'HardState Term:1 Commit:11',
        'Snapshot Index:11 Term:1 ConfState:Voters:[1 2 3] VotersOutgoing:[] Learners:[] LearnersNext:[] AutoLeave:false',
        'Messages:',
        '3->1 MsgAppResp Term:1 Log:0/11',
        '',
      ].join('\n'),
    );
  });

  it('prints every part in order', () => {
    const rd = ready({
      mustSync: true,
      softState: { lead: 1, raftState: 'StateLeader' },
      hardState: { term: 1, vote: 1, commit: 4 },
      readStates: [{ index: 10, requestCtx: text('rctx') }],
      entries: [normal(1, 5, 'x')],
      snapshot: snapshot(2, 1, { voters: [1] }),
      committedEntries: [normal(1, 3), ccEntry(1, 4, 'v2', 'v2 v3')],
      messages: [message({ type: 'MsgHeartbeat', from: 1, to: 2, term: 1 })],
    });
    expect(describeReady(rd)).toBe(
      [
        'Ready MustSync=true:',
        'Lead:1 State:StateLeader',
        'HardState Term:1 Vote:1 Commit:4',
        'ReadStates [{10 [114 99 116 120]}]',
        'Entries:',
        '1/5 EntryNormal "x"',
        'Snapshot Index:2 Term:1 ConfState:Voters:[1] VotersOutgoing:[] Learners:[] LearnersNext:[] AutoLeave:false',
        'CommittedEntries:',
        '1/3 EntryNormal ""',
        '1/4 EntryConfChangeV2 v2 v3',
        'Messages:',
        '1->2 MsgHeartbeat Term:1 Log:0/0',
        '',
      ].join('\n'),
    );
  });
});
