// The vocabulary of the Raft core: messages, entries and the small state records the
// host persists. Shapes follow etcd's raftpb so that describe output, conformance
// scripts and the wire codec all speak the same language.

/** Node ids are positive integers; 0 means "no node" (no leader, no vote). */
export const NONE = 0;

/**
 * The two local targets of async storage writes. etcd uses the two largest uint64
 * values, which a JS number cannot tell apart, so we reserve the two largest safe
 * integers and print them by name (`AppendThread`, `ApplyThread`). Wire codecs map
 * them back to etcd's values.
 */
export const LOCAL_APPEND_THREAD = Number.MAX_SAFE_INTEGER;
export const LOCAL_APPLY_THREAD = Number.MAX_SAFE_INTEGER - 1;

/** Every message type of etcd's raftpb, in its numeric order (see MESSAGE_TYPES). */
export type MessageType =
  | 'MsgHup'
  | 'MsgBeat'
  | 'MsgProp'
  | 'MsgApp'
  | 'MsgAppResp'
  | 'MsgVote'
  | 'MsgVoteResp'
  | 'MsgSnap'
  | 'MsgHeartbeat'
  | 'MsgHeartbeatResp'
  | 'MsgUnreachable'
  | 'MsgSnapStatus'
  | 'MsgCheckQuorum'
  | 'MsgTransferLeader'
  | 'MsgTimeoutNow'
  | 'MsgReadIndex'
  | 'MsgReadIndexResp'
  | 'MsgPreVote'
  | 'MsgPreVoteResp'
  | 'MsgStorageAppend'
  | 'MsgStorageAppendResp'
  | 'MsgStorageApply'
  | 'MsgStorageApplyResp'
  | 'MsgForgetLeader';

/** Message types indexed by their raftpb number; the wire codec relies on this order. */
export const MESSAGE_TYPES: readonly MessageType[] = [
  'MsgHup',
  'MsgBeat',
  'MsgProp',
  'MsgApp',
  'MsgAppResp',
  'MsgVote',
  'MsgVoteResp',
  'MsgSnap',
  'MsgHeartbeat',
  'MsgHeartbeatResp',
  'MsgUnreachable',
  'MsgSnapStatus',
  'MsgCheckQuorum',
  'MsgTransferLeader',
  'MsgTimeoutNow',
  'MsgReadIndex',
  'MsgReadIndexResp',
  'MsgPreVote',
  'MsgPreVoteResp',
  'MsgStorageAppend',
  'MsgStorageAppendResp',
  'MsgStorageApply',
  'MsgStorageApplyResp',
  'MsgForgetLeader',
];

export type EntryType = 'EntryNormal' | 'EntryConfChange' | 'EntryConfChangeV2';

export interface Entry {
  term: number;
  index: number;
  type: EntryType;
  data: Uint8Array;
}

export interface ConfState {
  /** Voters of the incoming (or only) configuration. */
  voters: number[];
  learners: number[];
  /** Voters of the outgoing configuration; non-empty only in a joint configuration. */
  votersOutgoing: number[];
  /** Voters of the outgoing config that become learners when the joint config is left. */
  learnersNext: number[];
  /** Leave the joint configuration automatically once it is applied. */
  autoLeave: boolean;
}

export interface SnapshotMetadata {
  confState: ConfState;
  index: number;
  term: number;
}

export interface Snapshot {
  data: Uint8Array;
  metadata: SnapshotMetadata;
}

export interface HardState {
  term: number;
  vote: number;
  commit: number;
}

export type StateType = 'StateFollower' | 'StateCandidate' | 'StateLeader' | 'StatePreCandidate';

/** Volatile state that the host may want to observe; never persisted. */
export interface SoftState {
  lead: number;
  raftState: StateType;
}

/** The answer to a ReadIndex request: reads at `index` are linearizable once applied. */
export interface ReadState {
  index: number;
  requestCtx: Uint8Array;
}

export interface Message {
  type: MessageType;
  to: number;
  from: number;
  term: number;
  /** Term of the entry at `index` (MsgApp), or of the candidate's last entry (votes). */
  logTerm: number;
  index: number;
  entries: Entry[];
  commit: number;
  /** Set on MsgStorageAppend to persist the HardState's vote. */
  vote: number;
  snapshot?: Snapshot;
  reject: boolean;
  rejectHint: number;
  context: Uint8Array;
  /** Messages to deliver once a local storage write (MsgStorageAppend/Apply) completes. */
  responses: Message[];
}

export type ConfChangeType =
  | 'ConfChangeAddNode'
  | 'ConfChangeRemoveNode'
  | 'ConfChangeUpdateNode'
  | 'ConfChangeAddLearnerNode';

export const CONF_CHANGE_TYPES: readonly ConfChangeType[] = [
  'ConfChangeAddNode',
  'ConfChangeRemoveNode',
  'ConfChangeUpdateNode',
  'ConfChangeAddLearnerNode',
];

export type ConfChangeTransition =
  | 'ConfChangeTransitionAuto'
  | 'ConfChangeTransitionJointImplicit'
  | 'ConfChangeTransitionJointExplicit';

export const CONF_CHANGE_TRANSITIONS: readonly ConfChangeTransition[] = [
  'ConfChangeTransitionAuto',
  'ConfChangeTransitionJointImplicit',
  'ConfChangeTransitionJointExplicit',
];

/** A V1 conf change: one change, carried by an EntryConfChange. */
export interface ConfChange {
  kind: 'v1';
  type: ConfChangeType;
  nodeId: number;
  context: Uint8Array;
  /** Unused by raft; kept so that etcd-encoded entries round-trip. */
  id: number;
}

export interface ConfChangeSingle {
  type: ConfChangeType;
  nodeId: number;
}

/** A V2 conf change: several changes and a transition, carried by an EntryConfChangeV2. */
export interface ConfChangeV2 {
  kind: 'v2';
  transition: ConfChangeTransition;
  changes: ConfChangeSingle[];
  context: Uint8Array;
}

export type AnyConfChange = ConfChange | ConfChangeV2;

export const EMPTY_BYTES: Uint8Array = new Uint8Array(0);

export function emptyConfState(): ConfState {
  return { voters: [], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false };
}

export function emptySnapshot(): Snapshot {
  return { data: EMPTY_BYTES, metadata: { confState: emptyConfState(), index: 0, term: 0 } };
}

export const EMPTY_HARD_STATE: Readonly<HardState> = Object.freeze({ term: 0, vote: 0, commit: 0 });

export function isEmptyHardState(hs: HardState): boolean {
  return hs.term === 0 && hs.vote === 0 && hs.commit === 0;
}

export function hardStateEqual(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}

/**
 * Whether node `id` belongs to a configuration, as a snapshot's receiver decides it: a voter
 * or learner of it, or a voter of its outgoing half (which a learner-to-be still is).
 */
export function confStateIncludes(cs: ConfState, id: number): boolean {
  return cs.voters.includes(id) || cs.learners.includes(id) || cs.votersOutgoing.includes(id);
}

export function isEmptySnapshot(s: Snapshot | undefined): boolean {
  return s === undefined || s.metadata.index === 0;
}

/**
 * Shared defaults of message(): frozen, so that a write into a message's default
 * `entries` or `responses` fails loudly instead of leaking into every other message.
 * Code that adds to a message's lists assigns a new array instead.
 */
const NO_ENTRIES: Entry[] = Object.freeze([]) as unknown as Entry[];
const NO_RESPONSES: Message[] = Object.freeze([]) as unknown as Message[];

/**
 * Builds a message with every field defaulted, so call sites name only what matters.
 * Every field is assigned, in one fixed order (`snapshot` too, as undefined when not
 * given), so that all messages share one object shape; this is much cheaper than
 * spreading `fields` over the defaults. The default `entries` and `responses` are
 * shared, frozen empty arrays: never write into them.
 */
export function message(fields: Partial<Message> & Pick<Message, 'type'>): Message {
  return {
    type: fields.type,
    to: fields.to ?? 0,
    from: fields.from ?? 0,
    term: fields.term ?? 0,
    logTerm: fields.logTerm ?? 0,
    index: fields.index ?? 0,
    entries: fields.entries ?? NO_ENTRIES,
    commit: fields.commit ?? 0,
    vote: fields.vote ?? 0,
    snapshot: fields.snapshot,
    reject: fields.reject ?? false,
    rejectHint: fields.rejectHint ?? 0,
    context: fields.context ?? EMPTY_BYTES,
    responses: fields.responses ?? NO_RESPONSES,
  };
}

/**
 * A message of `type` with every other field at its zero value (as message() gives), for
 * hot paths to fill in field by field. message(fields) reads its argument's fields, and
 * since its callers pass objects of many shapes those reads are megamorphic: they took
 * ~8% of the RawNode benchmark. The literal lists the fields in message()'s order, so
 * both build objects of the same hidden class and the readers stay monomorphic.
 */
export function blankMessage(type: MessageType): Message {
  return {
    type,
    to: 0,
    from: 0,
    term: 0,
    logTerm: 0,
    index: 0,
    entries: NO_ENTRIES,
    commit: 0,
    vote: 0,
    snapshot: undefined,
    reject: false,
    rejectHint: 0,
    context: EMPTY_BYTES,
    responses: NO_RESPONSES,
  };
}

export function entry(fields: Partial<Entry> & Pick<Entry, 'term' | 'index'>): Entry {
  return { type: 'EntryNormal', data: EMPTY_BYTES, ...fields };
}

/**
 * Appends x to list and returns the list to keep: an empty list is not pushed to but
 * replaced by a new one-element array. V8 gives an empty array 16 slots on its first
 * push, while the core's message queues mostly hold one or two messages per Ready, so
 * this keeps a good part of the Ready loop's garbage away. Callers must not rely on the
 * identity of an empty list.
 */
export function pushed<T>(list: T[], x: T): T[] {
  if (list.length === 0) return [x];
  list.push(x);
  return list;
}

/** Local messages never cross the network and carry term 0. */
export function isLocalMessage(type: MessageType): boolean {
  return (
    type === 'MsgHup' ||
    type === 'MsgBeat' ||
    type === 'MsgUnreachable' ||
    type === 'MsgSnapStatus' ||
    type === 'MsgCheckQuorum' ||
    type === 'MsgStorageAppend' ||
    type === 'MsgStorageAppendResp' ||
    type === 'MsgStorageApply' ||
    type === 'MsgStorageApplyResp'
  );
}

export function isResponseMessage(type: MessageType): boolean {
  return (
    type === 'MsgAppResp' ||
    type === 'MsgVoteResp' ||
    type === 'MsgHeartbeatResp' ||
    type === 'MsgUnreachable' ||
    type === 'MsgReadIndexResp' ||
    type === 'MsgPreVoteResp' ||
    type === 'MsgStorageAppendResp' ||
    type === 'MsgStorageApplyResp'
  );
}

/**
 * Whether a message promises that the sender's log or vote is on disk (an append
 * acknowledgement, a vote): it may leave only once the Ready that produced it is written.
 * Everything else may be sent before (etcd's msgsAfterAppend rule).
 */
export function waitsForAppend(type: MessageType): boolean {
  return type === 'MsgAppResp' || type === 'MsgVoteResp' || type === 'MsgPreVoteResp';
}

export function isLocalThread(id: number): boolean {
  return id === LOCAL_APPEND_THREAD || id === LOCAL_APPLY_THREAD;
}

export function voteRespType(type: MessageType): MessageType {
  switch (type) {
    case 'MsgVote':
      return 'MsgVoteResp';
    case 'MsgPreVote':
      return 'MsgPreVoteResp';
    default:
      throw new Error(`not a vote message: ${type}`);
  }
}

/** Size of an entry for flow control: its payload, as etcd's payloadSize. */
export function payloadSize(e: Entry): number {
  return e.data.length;
}

/** Bytes of a protobuf varint for v (v ≥ 0). */
export function varintSize(v: number): number {
  // Indexes, terms and payload lengths are nearly always below 2^28: answer those with
  // comparisons; the loop (with its divisions) is left for larger values.
  if (v < 0x80) return 1;
  if (v < 0x4000) return 2;
  if (v < 0x200000) return 3;
  if (v < 0x10000000) return 4;
  let n = 1;
  while (v >= 0x80) {
    v = Math.floor(v / 128);
    n++;
  }
  return n;
}

/** Size of an entry in etcd's protobuf encoding (raftpb.Entry.Size): MaxSizePerMsg counts this. */
export function entrySize(e: Entry): number {
  // Tag bytes for term, index and type, plus the type's value: EntryNormal,
  // EntryConfChange and EntryConfChangeV2 are 0, 1 and 2, a one-byte varint each.
  let n = 4 + varintSize(e.term) + varintSize(e.index);
  if (e.data.length > 0) n += 1 + varintSize(e.data.length) + e.data.length;
  return n;
}

/** Total encoded size of entries, as the applying-size budget and MaxSizePerMsg count them. */
export function entriesSize(ents: readonly Entry[]): number {
  let n = 0;
  for (let i = 0; i < ents.length; i++) n += entrySize(ents[i]!);
  return n;
}

/** Total payload bytes of entries, as inflight bytes and the uncommitted quota count them. */
export function payloadsSize(ents: readonly Entry[]): number {
  let n = 0;
  for (let i = 0; i < ents.length; i++) n += payloadSize(ents[i]!);
  return n;
}
