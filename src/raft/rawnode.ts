// RawNode: the host's handle on one Raft state machine. The host calls tick() on its
// clock, step() with messages from peers, and drains Readys:
//
//   sync mode:  rd = ready(); persist rd.hardState, rd.entries, rd.snapshot; send
//               rd.messages; apply rd.committedEntries; advance().
//   async mode: rd = ready(); send rd.messages, among them MsgStorageAppend and
//               MsgStorageApply to the local append and apply threads, which step their
//               `responses` back in once the write (or apply) is done. No advance().
//
// In sync mode the acknowledgements that promise durability (our own vote and append
// ack) are stepped in by advance(), so nothing counts before it is on disk.
import { confChangeToEntryData } from './confchange-codec.js';
import { ErrStepLocalMsg, ErrStepPeerNotFound, RaftError } from './errors.js';
import type { Progress } from './progress.js';
import { type Config, Raft } from './raft.js';
import type { Ready } from './ready.js';
import { cloneTrackerConfig, type TrackerConfig } from './tracker.js';
import {
  type AnyConfChange,
  blankMessage,
  type ConfState,
  EMPTY_BYTES,
  type Entry,
  entriesSize,
  type HardState,
  isEmptyHardState,
  isLocalMessage,
  isLocalThread,
  isResponseMessage,
  LOCAL_APPEND_THREAD,
  LOCAL_APPLY_THREAD,
  type Message,
  message,
  NONE,
  type SoftState,
} from './types.js';

export type { Ready } from './ready.js';

export type SnapshotStatus = 'SnapshotFinish' | 'SnapshotFailure';

export interface Peer {
  id: number;
  context?: Uint8Array;
}

export interface BasicStatus {
  id: number;
  hardState: HardState;
  softState: SoftState;
  applied: number;
  leadTransferee: number;
}

export interface Status extends BasicStatus {
  /** Every peer's progress; only a leader tracks it. Copies, safe to keep. */
  progress?: Map<number, Progress>;
  config: TrackerConfig;
}

/** A Ready must be synced to disk before its messages go out when it changes term, vote or log. */
export function mustSync(st: HardState, prev: HardState, entries: number): boolean {
  return entries !== 0 || st.vote !== prev.vote || st.term !== prev.term;
}

export class RawNode {
  readonly raft: Raft;
  readonly asyncStorageWrites: boolean;
  private prevSoftState: SoftState;
  private prevHardState: HardState;
  /**
   * Local messages to step at advance(): they acknowledge what the Ready persisted. Only
   * the first `pendingSteps` slots count. The array is reused rather than replaced at
   * every advance(): a new one, grown on its first push, was a good part of the garbage
   * of a Ready round.
   */
  private stepsOnAdvance: (Message | undefined)[] = [];
  private pendingSteps = 0;
  /**
   * In sync mode the storage responses never leave this RawNode: each is stepped once at
   * advance() and not kept by Raft.step, so one message of each kind is refilled for
   * every Ready instead of two new ones per round.
   */
  private readonly syncAppendResp = blankMessage('MsgStorageAppendResp');
  private readonly syncApplyResp = blankMessage('MsgStorageApplyResp');

  constructor(config: Config) {
    this.raft = new Raft(config);
    this.asyncStorageWrites = config.asyncStorageWrites ?? false;
    this.prevSoftState = this.raft.softState();
    this.prevHardState = this.raft.hardState();
  }

  /**
   * Writes the initial configuration of a new cluster into the log (as committed,
   * unapplied ConfChange entries), so the first Ready persists and applies it.
   */
  bootstrap(peers: Peer[]): void {
    if (peers.length === 0) throw new RaftError('must provide at least one peer to Bootstrap');
    if (this.raft.raftLog.storage.lastIndex() !== 0)
      throw new RaftError("can't bootstrap a nonempty Storage");
    // Nothing is persisted yet: the first Ready must carry the HardState.
    this.prevHardState = { term: 0, vote: 0, commit: 0 };
    this.raft.becomeFollower(1, NONE);
    const ents = peers.map((p, i) => {
      const { type, data } = confChangeToEntryData({
        kind: 'v1',
        type: 'ConfChangeAddNode',
        nodeId: p.id,
        context: p.context ?? EMPTY_BYTES,
        id: 0,
      });
      return { term: 1, index: i + 1, type, data };
    });
    this.raft.raftLog.append(ents);
    // Apply the members now so the node can campaign at once; the host applies the same
    // entries again from the Ready, which is harmless. Applied stays 0 so it sees them.
    this.raft.raftLog.committed = ents.length;
    for (const p of peers) {
      this.raft.applyConfChange({
        kind: 'v2',
        transition: 'ConfChangeTransitionAuto',
        changes: [{ type: 'ConfChangeAddNode', nodeId: p.id }],
        context: EMPTY_BYTES,
      });
    }
  }

  tick(): void {
    this.raft.tick();
  }

  /** Advances the election clock without campaigning, for hosts that quiesce idle groups. */
  tickQuiesced(): void {
    this.raft.electionElapsed++;
  }

  /** Starts an election (MsgHup); with PreVote on, a pre-election first. */
  campaign(): void {
    this.raft.step(message({ type: 'MsgHup' }));
  }

  propose(data: Uint8Array): void {
    const r = this.raft;
    const entries: Entry[] = [{ term: 0, index: 0, type: 'EntryNormal', data }];
    // The hot path of a leader: step() would only hand the local MsgProp's entries to
    // leaderPropose, so no message is built for it.
    if (r.state === 'StateLeader') {
      r.leaderPropose(entries);
      return;
    }
    // Built field by field: see blankMessage.
    const m = blankMessage('MsgProp');
    m.from = r.id;
    m.entries = entries;
    r.step(m);
  }

  proposeConfChange(cc: AnyConfChange): void {
    const { type, data } = confChangeToEntryData(cc);
    this.raft.step(message({ type: 'MsgProp', entries: [{ term: 0, index: 0, type, data }] }));
  }

  /** Applies a committed conf change to the configuration; returns the new ConfState. */
  applyConfChange(cc: AnyConfChange): ConfState {
    return this.raft.applyConfChange(
      cc.kind === 'v2'
        ? cc
        : {
            kind: 'v2',
            transition: 'ConfChangeTransitionAuto',
            changes: [{ type: cc.type, nodeId: cc.nodeId }],
            context: cc.context,
          },
    );
  }

  /** Steps a message from the network (or from a local storage thread). */
  step(m: Message): void {
    // Local messages may only come from the local storage threads, never from a peer.
    if (isLocalMessage(m.type) && !isLocalThread(m.from)) throw ErrStepLocalMsg;
    if (isResponseMessage(m.type) && !isLocalThread(m.from) && !this.raft.trk.progress.has(m.from)) {
      throw ErrStepPeerNotFound;
    }
    this.raft.step(m);
  }

  /** Asks the leader to hand leadership to `transferee`. */
  transferLeader(transferee: number): void {
    this.raft.step(message({ type: 'MsgTransferLeader', from: transferee }));
  }

  /** Makes a follower forget its leader, so it may vote for another at once. */
  forgetLeader(): void {
    this.raft.step(message({ type: 'MsgForgetLeader' }));
  }

  /** Requests a read index; the answer arrives as a ReadState carrying `rctx`. */
  readIndex(rctx: Uint8Array): void {
    this.raft.step(
      message({ type: 'MsgReadIndex', entries: [{ term: 0, index: 0, type: 'EntryNormal', data: rctx }] }),
    );
  }

  reportUnreachable(id: number): void {
    this.stepIgnoringErrors(message({ type: 'MsgUnreachable', from: id }));
  }

  reportSnapshot(id: number, status: SnapshotStatus): void {
    this.stepIgnoringErrors(
      message({ type: 'MsgSnapStatus', from: id, reject: status === 'SnapshotFailure' }),
    );
  }

  private stepIgnoringErrors(m: Message): void {
    try {
      this.raft.step(m);
    } catch (err) {
      if (!(err instanceof RaftError)) throw err;
    }
  }

  private applyUnstableEntries(): boolean {
    return !this.asyncStorageWrites;
  }

  hasReady(): boolean {
    const r = this.raft;
    // The states are compared field by field: no SoftState/HardState is built just for that.
    const ss = this.prevSoftState;
    if (r.lead !== ss.lead || r.state !== ss.raftState) return true;
    const term = r.term;
    const vote = r.vote;
    const commit = r.raftLog.committed;
    const hs = this.prevHardState;
    // An empty HardState (all zero) is never reported.
    if (
      (term !== 0 || vote !== 0 || commit !== 0) &&
      (term !== hs.term || vote !== hs.vote || commit !== hs.commit)
    ) {
      return true;
    }
    if (r.raftLog.hasNextUnstableSnapshot()) return true;
    if (r.msgs.length > 0 || r.msgsAfterAppend.length > 0) return true;
    if (r.raftLog.hasNextUnstableEnts() || r.raftLog.hasNextCommittedEnts(this.applyUnstableEntries()))
      return true;
    return r.readStates.length > 0;
  }

  /** Returns what the host must persist, send and apply now, and marks it handed out. */
  ready(): Ready {
    const rd = this.readyWithoutAccept();
    this.acceptReady(rd);
    return rd;
  }

  private readyWithoutAccept(): Ready {
    const r = this.raft;
    // Every field is in the literal, the optional ones as undefined: setting one that
    // was left out would change the object's shape (and allocate out-of-object storage),
    // and the host's reads would see several shapes.
    const rd: Ready = {
      softState: undefined,
      hardState: undefined,
      readStates: r.readStates,
      entries: r.raftLog.nextUnstableEnts(),
      snapshot: undefined,
      committedEntries: r.raftLog.nextCommittedEnts(this.applyUnstableEntries()),
      messages: r.msgs,
      mustSync: false,
    };
    // SoftState and HardState objects are built only when they changed.
    const pss = this.prevSoftState;
    if (r.lead !== pss.lead || r.state !== pss.raftState) rd.softState = r.softState();
    const phs = this.prevHardState;
    const term = r.term;
    const vote = r.vote;
    if (term !== phs.term || vote !== phs.vote || r.raftLog.committed !== phs.commit)
      rd.hardState = r.hardState();
    const snap = r.raftLog.nextUnstableSnapshot();
    if (snap) rd.snapshot = snap;
    rd.mustSync = rd.entries.length !== 0 || vote !== phs.vote || term !== phs.term;

    // r.msgs is replaced by a new array when the Ready is accepted (which always follows
    // at once), so the Ready may take it over and add to it instead of copying it.
    if (this.asyncStorageWrites) {
      if (this.needStorageAppendMsg(rd)) rd.messages.push(this.newStorageAppendMsg(rd));
      if (rd.committedEntries.length > 0) rd.messages.push(this.newStorageApplyMsg(rd));
    } else if (r.msgsAfterAppend.length > 0) {
      // The host sends only after persisting this Ready, which is what these need.
      // Those addressed to ourselves are stepped in at advance().
      const after = r.msgsAfterAppend;
      for (let i = 0; i < after.length; i++) {
        const m = after[i]!;
        if (m.to !== r.id) rd.messages.push(m);
      }
    }
    return rd;
  }

  private acceptReady(rd: Ready): void {
    const r = this.raft;
    if (rd.softState) this.prevSoftState = rd.softState;
    if (rd.hardState && !isEmptyHardState(rd.hardState)) this.prevHardState = rd.hardState;
    if (rd.readStates.length > 0) r.readStates = [];
    if (!this.asyncStorageWrites) {
      if (this.pendingSteps > 0) r.logger.panic('two accepted Ready structs without call to Advance');
      const after = r.msgsAfterAppend;
      for (let i = 0; i < after.length; i++) {
        const m = after[i]!;
        if (m.to === r.id) this.stepOnAdvance(m);
      }
      if (this.needStorageAppendRespMsg(rd))
        this.stepOnAdvance(this.newStorageAppendRespMsg(rd, this.syncAppendResp));
      if (rd.committedEntries.length > 0)
        this.stepOnAdvance(this.newStorageApplyRespMsg(rd, this.syncApplyResp));
      // In sync mode msgsAfterAppend is only ever copied from, never handed out: an
      // empty one can stay (a new array per Ready is measurable garbage).
      if (after.length > 0) r.msgsAfterAppend = [];
    } else {
      // A MsgStorageAppend may have taken it over as its responses.
      r.msgsAfterAppend = [];
    }
    r.msgs = [];
    r.raftLog.acceptUnstable();
    const ce = rd.committedEntries;
    if (ce.length > 0) {
      const last = ce[ce.length - 1]!;
      const size = entriesSize(ce);
      // The MsgStorageApplyResp for these entries needs their size again.
      r.rememberEntriesSize(ce, size);
      r.raftLog.acceptApplying(last.index, size, this.applyUnstableEntries());
    }
  }

  /** Tells the node the last Ready is persisted and applied (sync mode only). */
  advance(_rd?: Ready): void {
    if (this.asyncStorageWrites)
      this.raft.logger.panic('Advance must not be called when using AsyncStorageWrites');
    const n = this.pendingSteps;
    if (n === 0) return;
    // Taken out before they run: if one throws, the rest are dropped.
    this.pendingSteps = 0;
    const steps = this.stepsOnAdvance;
    for (let i = 0; i < n; i++) {
      const m = steps[i]!;
      // The reused array must not keep the message (and its entries) alive.
      steps[i] = undefined;
      this.raft.step(m);
    }
  }

  private stepOnAdvance(m: Message): void {
    this.stepsOnAdvance[this.pendingSteps++] = m;
  }

  private needStorageAppendMsg(rd: Ready): boolean {
    // Also when only messages wait for earlier appends to be durable.
    return (
      rd.entries.length > 0 ||
      rd.hardState !== undefined ||
      rd.snapshot !== undefined ||
      this.raft.msgsAfterAppend.length > 0
    );
  }

  private needStorageAppendRespMsg(rd: Ready): boolean {
    return this.raft.raftLog.hasNextOrInProgressUnstableEnts() || rd.snapshot !== undefined;
  }

  private newStorageAppendMsg(rd: Ready): Message {
    const r = this.raft;
    const m = message({ type: 'MsgStorageAppend', to: LOCAL_APPEND_THREAD, from: r.id, entries: rd.entries });
    // The HardState travels in the message's fields; left zero when unchanged so the
    // append thread reconstructs an empty HardState.
    if (rd.hardState) {
      m.term = rd.hardState.term;
      m.vote = rd.hardState.vote;
      m.commit = rd.hardState.commit;
    }
    if (rd.snapshot) m.snapshot = rd.snapshot;
    // Our own append ack comes before the storage response so that the ack can still
    // find the new entries' terms in the unstable log.
    // msgsAfterAppend is replaced by a new array when this Ready is accepted, so the
    // message may take it over.
    const responses = r.msgsAfterAppend;
    if (this.needStorageAppendRespMsg(rd)) responses.push(this.newStorageAppendRespMsg(rd));
    m.responses = responses;
    return m;
  }

  /** Fills `m` (by default a new message) as the MsgStorageAppendResp for rd. */
  private newStorageAppendRespMsg(rd: Ready, m = blankMessage('MsgStorageAppendResp')): Message {
    const r = this.raft;
    // The response carries our term: after a term change it is dropped (see Raft.step),
    // because the entries it names may have been replaced meanwhile.
    m.to = r.id;
    m.from = LOCAL_APPEND_THREAD;
    m.term = r.term;
    if (r.raftLog.hasNextOrInProgressUnstableEnts()) {
      // Name the last entry written: stableTo() checks that the unstable log still has it.
      // Index and term read directly, without an EntryID object; both come from the
      // unstable log, which is not empty here.
      const last = r.raftLog.lastIndex();
      m.index = last;
      m.logTerm = r.raftLog.term(last);
    } else {
      m.index = 0;
      m.logTerm = 0;
    }
    m.snapshot = rd.snapshot;
    return m;
  }

  private newStorageApplyMsg(rd: Ready): Message {
    return message({
      type: 'MsgStorageApply',
      to: LOCAL_APPLY_THREAD,
      from: this.raft.id,
      entries: rd.committedEntries,
      responses: [this.newStorageApplyRespMsg(rd)],
    });
  }

  /** Fills `m` (by default a new message) as the MsgStorageApplyResp for rd. */
  private newStorageApplyRespMsg(rd: Ready, m = blankMessage('MsgStorageApplyResp')): Message {
    // Applying does not happen under a term: term 0.
    m.to = this.raft.id;
    m.from = LOCAL_APPLY_THREAD;
    m.entries = rd.committedEntries;
    return m;
  }

  basicStatus(): BasicStatus {
    const r = this.raft;
    return {
      id: r.id,
      hardState: r.hardState(),
      softState: r.softState(),
      applied: r.raftLog.applied,
      leadTransferee: r.leadTransferee,
    };
  }

  status(): Status {
    const r = this.raft;
    // Built literally (the fields of basicStatus(), then config) rather than spread.
    const s: Status = {
      id: r.id,
      hardState: r.hardState(),
      softState: r.softState(),
      applied: r.raftLog.applied,
      leadTransferee: r.leadTransferee,
      config: cloneTrackerConfig(r.trk.config),
    };
    if (r.state === 'StateLeader') {
      const progress = new Map<number, Progress>();
      const trkProgress = r.trk.progress;
      const ids = r.trk.ids();
      for (let i = 0; i < ids.length; i++) {
        const id = ids[i]!;
        progress.set(id, trkProgress.get(id)!.clone());
      }
      s.progress = progress;
    }
    return s;
  }

  /** Visits every peer's progress without copying (cheap, for hot paths). Leader only. */
  withProgress(visit: (id: number, learner: boolean, pr: Progress) => void): void {
    this.raft.trk.visit((id, pr) => visit(id, pr.isLearner, pr));
  }
}
