// The Raft state machine: one node's view of the protocol, with the semantics of etcd's
// Raft library. It is deterministic: time arrives as tick(), input as step(), and output
// accumulates in `msgs` / `msgsAfterAppend` and the log's unstable part, which RawNode
// turns into a Ready. Nothing here performs I/O, reads a clock or draws global randomness.
import { Changer, confStateEquivalent, restore as restoreConfig } from './confchange.js';
import { confChangeAsV2, decodeConfChangeEntry, enterJoint, leaveJoint } from './confchange-codec.js';
import { ErrProposalDropped, ErrSnapshotTemporarilyUnavailable, RaftError } from './errors.js';
import { Inflights } from './inflights.js';
import { RaftLog } from './log.js';
import type { EntryID } from './log-unstable.js';
import { type Logger, silentLogger } from './logger.js';
import { Progress } from './progress.js';
import { ReadOnly, type ReadOnlyOption } from './read-only.js';
import type { Storage } from './storage.js';
import { configToString, ProgressTracker, type TrackerConfig } from './tracker.js';
import {
  type AnyConfChange,
  blankMessage,
  type ConfChangeV2,
  type ConfState,
  confStateIncludes,
  EMPTY_BYTES,
  type Entry,
  entriesSize,
  type HardState,
  isEmptyHardState,
  isLocalThread,
  type Message,
  type MessageType,
  message,
  NONE,
  payloadsSize,
  pushed,
  type ReadState,
  type Snapshot,
  type SoftState,
  type StateType,
  voteRespType,
  waitsForAppend,
} from './types.js';

export interface Config {
  /** This node's id; never 0 and never a local thread id. */
  id: number;
  /** Ticks a follower waits without hearing from a leader before campaigning (randomized up to 2×). */
  electionTick: number;
  /** Ticks between a leader's heartbeats. Must be smaller than electionTick. */
  heartbeatTick: number;
  storage: Storage;
  /** The last applied index, when restarting. Entries at or below it are never handed out again. */
  applied?: number;
  /** Storage writes and applies go out as messages to local threads instead of through Advance(). */
  asyncStorageWrites?: boolean;
  /** Max bytes of entries per MsgApp (at least one entry is always sent). Default: no limit. */
  maxSizePerMsg?: number;
  /** Max bytes of committed entries handed out per Ready. Default: maxSizePerMsg. */
  maxCommittedSizePerReady?: number;
  /** Max bytes of uncommitted entries on the leader; proposals beyond it are dropped. Default: no limit. */
  maxUncommittedEntriesSize?: number;
  /** Max MsgApps in flight to one follower in StateReplicate. Default 256. */
  maxInflightMsgs?: number;
  /** Max bytes of entries in flight to one follower. Default: no limit. */
  maxInflightBytes?: number;
  /** A leader steps down when it has not heard from a quorum for an election timeout. */
  checkQuorum?: boolean;
  /** Campaign with a PreVote round first, so a partitioned node cannot disrupt the cluster. */
  preVote?: boolean;
  readOnlyOption?: ReadOnlyOption;
  /** Followers drop proposals instead of forwarding them to the leader. */
  disableProposalForwarding?: boolean;
  /** Skip the propose-time checks on conf changes (the host validates them itself). */
  disableConfChangeValidation?: boolean;
  /** A leader removed from (or demoted in) the configuration steps down. */
  stepDownOnRemoval?: boolean;
  logger?: Logger;
  /** The only randomness: returns an integer in [0, n). Default: Math.random. */
  random?: (n: number) => number;
}

type CampaignType = 'CampaignPreElection' | 'CampaignElection' | 'CampaignTransfer';

/** The context of a MsgVote sent by a forced (leadership transfer) campaign. */
const CAMPAIGN_TRANSFER_CTX = new TextEncoder().encode('CampaignTransfer');

function isCampaignTransfer(ctx: Uint8Array): boolean {
  if (ctx.length !== CAMPAIGN_TRANSFER_CTX.length) return false;
  for (let i = 0; i < ctx.length; i++) if (ctx[i] !== CAMPAIGN_TRANSFER_CTX[i]) return false;
  return true;
}

function defaultRandom(n: number): number {
  return Math.floor(Math.random() * n);
}

type StepFn = (m: Message) => void;

export class Raft {
  readonly id: number;
  term = 0;
  vote = NONE;
  lead = NONE;
  state: StateType = 'StateFollower';
  isLearner = false;

  readonly raftLog: RaftLog;
  trk: ProgressTracker;
  readonly logger: Logger;

  /** Messages that may be sent right away. */
  msgs: Message[] = [];
  /**
   * Messages that may only be sent once the entries and HardState of this Ready are
   * durable: votes and append acknowledgements (including those to ourselves).
   */
  msgsAfterAppend: Message[] = [];
  readStates: ReadState[] = [];

  readonly maxMsgSize: number;
  readonly maxUncommittedSize: number;
  uncommittedSize = 0;

  readOnly: ReadOnly;
  readonly readOnlyOption: ReadOnlyOption;
  /** Read requests that arrived before this leader committed an entry of its term. */
  pendingReadIndexMessages: Message[] = [];

  leadTransferee = NONE;
  /** Proposals of conf changes are refused while an earlier one (at this index) is unapplied. */
  pendingConfIndex = 0;

  electionElapsed = 0;
  heartbeatElapsed = 0;
  readonly electionTimeout: number;
  readonly heartbeatTimeout: number;
  randomizedElectionTimeout = 0;

  readonly checkQuorum: boolean;
  readonly preVote: boolean;
  readonly disableProposalForwarding: boolean;
  readonly disableConfChangeValidation: boolean;
  readonly stepDownOnRemoval: boolean;
  private readonly random: (n: number) => number;

  /**
   * The entries last handed out for application and their entriesSize, remembered so
   * that their MsgStorageApplyResp (which carries the same array) need not recompute it.
   */
  private sizedEntries: Entry[] | undefined = undefined;
  private sizedEntriesLength = 0;
  private sizedEntriesSize = 0;

  private tickFn: () => void = () => this.tickElection();
  private stepFn: StepFn = (m) => this.stepFollower(m);

  constructor(c: Config) {
    validateConfig(c);
    this.id = c.id;
    this.logger = c.logger ?? silentLogger;
    const maxSizePerMsg = c.maxSizePerMsg ?? Infinity;
    this.raftLog = new RaftLog(c.storage, this.logger, c.maxCommittedSizePerReady || maxSizePerMsg);
    this.maxMsgSize = maxSizePerMsg;
    this.maxUncommittedSize = c.maxUncommittedEntriesSize || Infinity;
    this.trk = new ProgressTracker(c.maxInflightMsgs ?? 256, c.maxInflightBytes || Infinity);
    this.electionTimeout = c.electionTick;
    this.heartbeatTimeout = c.heartbeatTick;
    this.checkQuorum = c.checkQuorum ?? false;
    this.preVote = c.preVote ?? false;
    this.readOnlyOption = c.readOnlyOption ?? 'ReadOnlySafe';
    this.readOnly = new ReadOnly(this.readOnlyOption);
    this.disableProposalForwarding = c.disableProposalForwarding ?? false;
    this.disableConfChangeValidation = c.disableConfChangeValidation ?? false;
    this.stepDownOnRemoval = c.stepDownOnRemoval ?? false;
    this.random = c.random ?? defaultRandom;

    const { hardState, confState } = c.storage.initialState();
    const [cfg, progress] = restoreConfig(new Changer(this.trk, this.raftLog.lastIndex()), confState);
    assertConfStatesEquivalent(this.logger, confState, this.switchToConfig(cfg, progress));

    if (!isEmptyHardState(hardState)) this.loadState(hardState);
    if (c.applied !== undefined && c.applied > 0) this.raftLog.appliedTo(c.applied, 0);
    this.becomeFollower(this.term, NONE);

    const last = this.raftLog.lastEntryID();
    this.logger.info(
      `newRaft ${this.id} [peers: [${this.trk.voterNodes().join(',')}], term: ${this.term}, commit: ${this.raftLog.committed}, applied: ${this.raftLog.applied}, lastindex: ${last.index}, lastterm: ${last.term}]`,
    );
  }

  // ---- Observing ---------------------------------------------------------------

  softState(): SoftState {
    return { lead: this.lead, raftState: this.state };
  }

  hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.raftLog.committed };
  }

  /** A node may campaign only as a voter, and not while a snapshot is being applied. */
  promotable(): boolean {
    const pr = this.trk.progress.get(this.id);
    return pr !== undefined && !pr.isLearner && !this.raftLog.hasNextOrInProgressSnapshot();
  }

  // ---- Sending -----------------------------------------------------------------

  /**
   * Queues a message. Votes and append acknowledgements wait in msgsAfterAppend: they
   * promise durability, so they leave only once this Ready's writes are on disk.
   */
  send(m: Message): void {
    if (m.from === NONE) m.from = this.id;
    if (
      m.type === 'MsgVote' ||
      m.type === 'MsgVoteResp' ||
      m.type === 'MsgPreVote' ||
      m.type === 'MsgPreVoteResp'
    ) {
      // Votes carry their own term: a PreVote is for our next term, a vote response for
      // the candidate's term.
      if (m.term === 0) this.logger.panic(`term should be set when sending ${m.type}`);
    } else {
      if (m.term !== 0) this.logger.panic(`term should not be set when sending ${m.type} (was ${m.term})`);
      // A proposal or read request forwarded to the leader keeps term 0 so it is treated
      // as a local message there.
      if (m.type !== 'MsgProp' && m.type !== 'MsgReadIndex') m.term = this.term;
    }
    if (waitsForAppend(m.type)) {
      this.msgsAfterAppend = pushed(this.msgsAfterAppend, m);
    } else {
      if (m.to === this.id) this.logger.panic(`message should not be self-addressed when sending ${m.type}`);
      this.msgs = pushed(this.msgs, m);
    }
  }

  /** Sends an append (or a snapshot) to `to` even if there is nothing new, to carry the commit index. */
  sendAppend(to: number): void {
    this.maybeSendAppend(to, true);
  }

  /**
   * Sends the entries `to` is missing, within flow control. Returns whether a message
   * went out. With sendIfEmpty false, nothing is sent when there are no entries.
   */
  maybeSendAppend(to: number, sendIfEmpty: boolean): boolean {
    const pr = this.trk.progress.get(to);
    if (!pr || pr.isPaused()) return false;

    const prevIndex = pr.next - 1;
    let prevTerm: number;
    try {
      prevTerm = this.raftLog.term(prevIndex);
    } catch (err) {
      if (!(err instanceof RaftError)) throw err;
      // The entries the follower needs were compacted: only a snapshot can catch it up.
      return this.maybeSendSnapshot(to, pr);
    }

    let ents: Entry[] = [];
    // A throttled follower in StateReplicate gets only empty appends: they still carry
    // the commit index and, acked or rejected, free the inflight window.
    if (pr.state !== 'StateReplicate' || !pr.inflights.full()) {
      try {
        ents = this.raftLog.entries(pr.next, this.maxMsgSize);
      } catch (err) {
        if (!(err instanceof RaftError)) throw err;
        return this.maybeSendSnapshot(to, pr);
      }
    }
    if (ents.length === 0 && !sendIfEmpty) return false;

    const commit = this.raftLog.committed;
    // Built field by field (see blankMessage): this is the leader's hottest message.
    const m = blankMessage('MsgApp');
    m.to = to;
    m.index = prevIndex;
    m.logTerm = prevTerm;
    m.entries = ents;
    m.commit = commit;
    this.send(m);
    const bytes = payloadsSize(ents);
    pr.updateOnEntriesSend(ents.length, bytes);
    pr.setSentCommit(commit);
    return true;
  }

  private maybeSendSnapshot(to: number, pr: Progress): boolean {
    if (!pr.recentActive) {
      this.logger.debug(`ignore sending snapshot to ${to} since it is not recently active`);
      return false;
    }
    let snapshot: Snapshot;
    try {
      snapshot = this.raftLog.snapshot();
    } catch (err) {
      if (err === ErrSnapshotTemporarilyUnavailable) {
        this.logger.debug(
          `${this.id} failed to send snapshot to ${to} because snapshot is temporarily unavailable`,
        );
        return false;
      }
      throw err;
    }
    if (snapshot.metadata.index === 0) this.logger.panic('need non-empty snapshot');
    const { index: sindex, term: sterm } = snapshot.metadata;
    this.logger.debug(
      `${this.id} [firstindex: ${this.raftLog.firstIndex()}, commit: ${this.raftLog.committed}] sent snapshot[index: ${sindex}, term: ${sterm}] to ${to} [${pr}]`,
    );
    pr.becomeSnapshot(sindex);
    this.logger.debug(`${this.id} paused sending replication messages to ${to} [${pr}]`);
    this.send(message({ type: 'MsgSnap', to, snapshot }));
    return true;
  }

  /** A heartbeat carries min(match, committed): a follower must never commit past its log. */
  private sendHeartbeat(to: number, ctx: Uint8Array): void {
    const pr = this.trk.progress.get(to)!;
    const commit = Math.min(pr.match, this.raftLog.committed);
    this.send(message({ type: 'MsgHeartbeat', to, commit, context: ctx }));
    pr.setSentCommit(commit);
  }

  bcastAppend(): void {
    // A plain loop over the cached ids: no closure per broadcast.
    const ids = this.trk.ids();
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!;
      if (id !== this.id) this.sendAppend(id);
    }
  }

  private bcastHeartbeat(): void {
    this.bcastHeartbeatWithCtx(this.readOnly.lastPendingRequestCtx() ?? EMPTY_BYTES);
  }

  private bcastHeartbeatWithCtx(ctx: Uint8Array): void {
    const ids = this.trk.ids();
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!;
      if (id !== this.id) this.sendHeartbeat(id, ctx);
    }
  }

  private sendTimeoutNow(to: number): void {
    this.send(message({ type: 'MsgTimeoutNow', to }));
  }

  // ---- Log ---------------------------------------------------------------------

  /**
   * Advances the commit index to what a quorum has acknowledged, but only through an
   * entry of the current term (Raft §5.4.2): older entries commit with it.
   */
  maybeCommit(): boolean {
    return this.raftLog.maybeCommit({ term: this.term, index: this.trk.committed() });
  }

  /** Appends proposals to the leader's log; false when the uncommitted-size quota refuses them. */
  appendEntry(es: Entry[]): boolean {
    let li = this.raftLog.lastIndex();
    for (let i = 0; i < es.length; i++) {
      es[i]!.term = this.term;
      es[i]!.index = li + 1 + i;
    }
    if (!this.increaseUncommittedSize(es)) {
      this.logger.warn(
        `${this.id} appending new entries to log would exceed uncommitted entry size limit; dropping proposal`,
      );
      return false;
    }
    li = this.raftLog.append(es);
    // The leader acknowledges its own entries once they are durable, like any follower.
    const ack = blankMessage('MsgAppResp');
    ack.to = this.id;
    ack.index = li;
    this.send(ack);
    return true;
  }

  private increaseUncommittedSize(ents: Entry[]): boolean {
    const s = payloadsSize(ents);
    // An empty tail always accepts one proposal, and empty entries (a new leader's
    // first entry, an auto-leave) are always accepted.
    if (this.uncommittedSize > 0 && s > 0 && this.uncommittedSize + s > this.maxUncommittedSize) return false;
    this.uncommittedSize += s;
    return true;
  }

  reduceUncommittedSize(s: number): void {
    // The estimate may undercount (e.g. after a leader change), never overcount: saturate.
    this.uncommittedSize = s > this.uncommittedSize ? 0 : this.uncommittedSize - s;
  }

  appliedTo(index: number, size: number): void {
    const newApplied = Math.max(index, this.raftLog.applied);
    this.raftLog.appliedTo(newApplied, size);

    if (this.trk.config.autoLeave && newApplied >= this.pendingConfIndex && this.state === 'StateLeader') {
      // The joint configuration is applied and asks to be left: propose the empty V2
      // change. Its size is zero, so the quota never refuses it; a transfer in progress
      // may, and then we retry on the next applied entry.
      const m = message({
        type: 'MsgProp',
        entries: [{ term: 0, index: 0, type: 'EntryConfChangeV2', data: EMPTY_BYTES }],
      });
      try {
        this.step(m);
        this.logger.info(
          `initiating automatic transition out of joint configuration ${configToString(this.trk.config)}`,
        );
      } catch (err) {
        this.logger.debug(
          `not initiating automatic transition out of joint configuration ${configToString(this.trk.config)}: ${(err as Error).message}`,
        );
      }
    }
  }

  /** Remembers entriesSize(ents) (= size) for the MsgStorageApplyResp that will carry ents. */
  rememberEntriesSize(ents: Entry[], size: number): void {
    this.sizedEntries = ents;
    this.sizedEntriesLength = ents.length;
    this.sizedEntriesSize = size;
  }

  appliedSnap(snap: Snapshot): void {
    const index = snap.metadata.index;
    this.raftLog.stableSnapTo(index);
    this.appliedTo(index, 0);
  }

  // ---- Roles -------------------------------------------------------------------

  private reset(term: number): void {
    if (this.term !== term) {
      this.term = term;
      this.vote = NONE;
    }
    this.lead = NONE;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.resetRandomizedElectionTimeout();
    this.abortLeaderTransfer();
    this.trk.resetVotes();
    const lastIndex = this.raftLog.lastIndex();
    this.trk.visit((id, pr) => {
      this.trk.progress.set(
        id,
        new Progress({
          match: id === this.id ? lastIndex : 0,
          next: lastIndex + 1,
          inflights: new Inflights(this.trk.maxInflight, this.trk.maxInflightBytes),
          isLearner: pr.isLearner,
        }),
      );
    });
    this.pendingConfIndex = 0;
    this.uncommittedSize = 0;
    this.readOnly = new ReadOnly(this.readOnlyOption);
  }

  becomeFollower(term: number, lead: number): void {
    this.stepFn = (m) => this.stepFollower(m);
    this.reset(term);
    this.tickFn = () => this.tickElection();
    this.lead = lead;
    this.state = 'StateFollower';
    this.logger.info(`${this.id} became follower at term ${this.term}`);
  }

  becomeCandidate(): void {
    if (this.state === 'StateLeader') this.logger.panic('invalid transition [leader -> candidate]');
    this.stepFn = (m) => this.stepCandidate(m);
    this.reset(this.term + 1);
    this.tickFn = () => this.tickElection();
    this.vote = this.id;
    this.state = 'StateCandidate';
    this.logger.info(`${this.id} became candidate at term ${this.term}`);
  }

  becomePreCandidate(): void {
    if (this.state === 'StateLeader') this.logger.panic('invalid transition [leader -> pre-candidate]');
    // A pre-candidate changes neither term nor vote: it only asks whether it could win.
    this.stepFn = (m) => this.stepCandidate(m);
    this.trk.resetVotes();
    this.tickFn = () => this.tickElection();
    this.lead = NONE;
    this.state = 'StatePreCandidate';
    this.logger.info(`${this.id} became pre-candidate at term ${this.term}`);
  }

  becomeLeader(): void {
    if (this.state === 'StateFollower') this.logger.panic('invalid transition [follower -> leader]');
    this.stepFn = (m) => this.stepLeader(m);
    this.reset(this.term);
    this.tickFn = () => this.tickHeartbeat();
    this.lead = this.id;
    this.state = 'StateLeader';
    // The leader trivially replicates to itself and is always recently active.
    const pr = this.trk.progress.get(this.id)!;
    pr.becomeReplicate();
    pr.recentActive = true;
    // We do not know whether the uncommitted tail holds a conf change; scanning it could
    // be expensive, so refuse new ones until everything up to here is applied.
    this.pendingConfIndex = this.raftLog.lastIndex();
    // An entry of the new term lets the leader commit (and so learn) everything before it.
    if (!this.appendEntry([{ term: 0, index: 0, type: 'EntryNormal', data: EMPTY_BYTES }])) {
      this.logger.panic('empty entry was dropped');
    }
    this.logger.info(`${this.id} became leader at term ${this.term}`);
  }

  private hup(t: CampaignType): void {
    if (this.state === 'StateLeader') {
      this.logger.debug(`${this.id} ignoring MsgHup because already leader`);
      return;
    }
    if (!this.promotable()) {
      this.logger.warn(`${this.id} is unpromotable and can not campaign`);
      return;
    }
    // A committed conf change we have not applied may remove us or change the quorum:
    // campaigning under the old configuration could elect a leader the new one rejects.
    if (this.hasUnappliedConfChanges()) {
      this.logger.warn(
        `${this.id} cannot campaign at term ${this.term} since there are still pending configuration changes to apply`,
      );
      return;
    }
    this.logger.info(`${this.id} is starting a new election at term ${this.term}`);
    this.campaign(t);
  }

  private hasUnappliedConfChanges(): boolean {
    if (this.raftLog.applied >= this.raftLog.committed) return false;
    let found = false;
    this.raftLog.scan(
      this.raftLog.applied + 1,
      this.raftLog.committed + 1,
      this.raftLog.maxApplyingEntsSize,
      (ents) => {
        if (!found) found = ents.some((e) => e.type === 'EntryConfChange' || e.type === 'EntryConfChangeV2');
      },
    );
    return found;
  }

  campaign(t: CampaignType): void {
    if (!this.promotable())
      this.logger.warn(`${this.id} is unpromotable; campaign() should have been called`);
    let term: number;
    let voteMsg: MessageType;
    if (t === 'CampaignPreElection') {
      this.becomePreCandidate();
      voteMsg = 'MsgPreVote';
      // PreVotes ask for the next term without moving to it.
      term = this.term + 1;
    } else {
      this.becomeCandidate();
      voteMsg = 'MsgVote';
      term = this.term;
    }
    const last = this.raftLog.lastEntryID();
    for (const id of this.trk.config.voters.ids()) {
      if (id === this.id) {
        // Our own vote counts once it is durable, like anyone else's.
        this.send(message({ type: voteRespType(voteMsg), to: id, term }));
        continue;
      }
      this.logger.info(
        `${this.id} [logterm: ${last.term}, index: ${last.index}] sent ${voteMsg} request to ${id} at term ${this.term}`,
      );
      this.send(
        message({
          type: voteMsg,
          to: id,
          term,
          index: last.index,
          logTerm: last.term,
          context: t === 'CampaignTransfer' ? CAMPAIGN_TRANSFER_CTX : EMPTY_BYTES,
        }),
      );
    }
  }

  private poll(id: number, t: MessageType, granted: boolean) {
    if (granted) this.logger.info(`${this.id} received ${t} from ${id} at term ${this.term}`);
    else this.logger.info(`${this.id} received ${t} rejection from ${id} at term ${this.term}`);
    this.trk.recordVote(id, granted);
    return this.trk.tallyVotes();
  }

  // ---- Time --------------------------------------------------------------------

  tick(): void {
    this.tickFn();
  }

  private tickElection(): void {
    this.electionElapsed++;
    if (this.promotable() && this.pastElectionTimeout()) {
      this.electionElapsed = 0;
      this.stepQuietly(message({ type: 'MsgHup', from: this.id }));
    }
  }

  private tickHeartbeat(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.electionTimeout) {
      this.electionElapsed = 0;
      if (this.checkQuorum) this.stepQuietly(message({ type: 'MsgCheckQuorum', from: this.id }));
      // A transfer that did not finish within an election timeout is abandoned.
      if (this.state === 'StateLeader' && this.leadTransferee !== NONE) this.abortLeaderTransfer();
    }
    if (this.state !== 'StateLeader') return;
    if (this.heartbeatElapsed >= this.heartbeatTimeout) {
      this.heartbeatElapsed = 0;
      this.stepQuietly(message({ type: 'MsgBeat', from: this.id }));
    }
  }

  private stepQuietly(m: Message): void {
    try {
      this.step(m);
    } catch (err) {
      if (!(err instanceof RaftError)) throw err;
      this.logger.debug(`error occurred during ${m.type}: ${err.message}`);
    }
  }

  pastElectionTimeout(): boolean {
    return this.electionElapsed >= this.randomizedElectionTimeout;
  }

  resetRandomizedElectionTimeout(): void {
    this.randomizedElectionTimeout = this.electionTimeout + this.random(this.electionTimeout);
  }

  abortLeaderTransfer(): void {
    this.leadTransferee = NONE;
  }

  // ---- Step --------------------------------------------------------------------

  /** Feeds one message to the state machine. Throws RaftError for a refused request. */
  step(m: Message): void {
    // First the term: a higher term may make us a follower; a lower one is mostly ignored.
    if (m.term === 0) {
      // A local message.
    } else if (m.term > this.term) {
      if (m.type === 'MsgVote' || m.type === 'MsgPreVote') {
        const force = isCampaignTransfer(m.context);
        const inLease = this.checkQuorum && this.lead !== NONE && this.electionElapsed < this.electionTimeout;
        if (!force && inLease) {
          // Within the lease of a leader we heard from, a vote request can only come
          // from a disruptive (e.g. partitioned and rejoining) node: neither grant it
          // nor bump our term (Raft thesis §4.2.3).
          const last = this.raftLog.lastEntryID();
          this.logger.info(
            `${this.id} [logterm: ${last.term}, index: ${last.index}, vote: ${this.vote}] ignored ${m.type} from ${m.from} [logterm: ${m.logTerm}, index: ${m.index}] at term ${this.term}: lease is not expired (remaining ticks: ${this.electionTimeout - this.electionElapsed})`,
          );
          return;
        }
      }
      if (m.type === 'MsgPreVote') {
        // Never change our term for a PreVote.
      } else if (m.type === 'MsgPreVoteResp' && !m.reject) {
        // A granted PreVote carries the term we asked for; we move to it only when we
        // win the pre-election. A rejection carries the rejecter's term: follow it.
      } else {
        this.logger.info(
          `${this.id} [term: ${this.term}] received a ${m.type} message with higher term from ${m.from} [term: ${m.term}]`,
        );
        const fromLeader = m.type === 'MsgApp' || m.type === 'MsgHeartbeat' || m.type === 'MsgSnap';
        this.becomeFollower(m.term, fromLeader ? m.from : NONE);
      }
    } else if (m.term < this.term) {
      if ((this.checkQuorum || this.preVote) && (m.type === 'MsgHeartbeat' || m.type === 'MsgApp')) {
        // A leader of an older term: with CheckQuorum or PreVote we may have bumped our
        // term while partitioned and can no longer win elections it would accept.
        // Answering tells it about our term, so it steps down and the cluster recovers.
        this.send(message({ type: 'MsgAppResp', to: m.from }));
      } else if (m.type === 'MsgPreVote') {
        // Reject explicitly so a candidate of an older term learns ours and moves on;
        // silently dropping could deadlock a cluster moving to PreVote.
        const last = this.raftLog.lastEntryID();
        this.logger.info(
          `${this.id} [logterm: ${last.term}, index: ${last.index}, vote: ${this.vote}] rejected ${m.type} from ${m.from} [logterm: ${m.logTerm}, index: ${m.index}] at term ${this.term}`,
        );
        this.send(message({ type: 'MsgPreVoteResp', to: m.from, term: this.term, reject: true }));
      } else if (m.type === 'MsgStorageAppendResp') {
        if (m.index !== 0) {
          // The entries this write covered may have been replaced in the unstable log by a
          // later term (the ABA case): do not mark anything stable on this response.
          this.logger.info(
            `${this.id} [term: ${this.term}] ignored entry appends from a ${m.type} message with lower term [term: ${m.term}]`,
          );
        }
        // A snapshot, though, is durable whatever term wrote it.
        if (m.snapshot) this.appliedSnap(m.snapshot);
      } else {
        this.logger.info(
          `${this.id} [term: ${this.term}] ignored a ${m.type} message with lower term from ${m.from} [term: ${m.term}]`,
        );
      }
      return;
    }

    switch (m.type) {
      case 'MsgHup':
        this.hup(this.preVote ? 'CampaignPreElection' : 'CampaignElection');
        return;
      case 'MsgStorageAppendResp':
        if (m.index !== 0) this.raftLog.stableTo({ term: m.logTerm, index: m.index });
        if (m.snapshot) this.appliedSnap(m.snapshot);
        return;
      case 'MsgStorageApplyResp': {
        const ents = m.entries;
        if (ents.length > 0) {
          const last = ents[ents.length - 1]!;
          const size = payloadsSize(ents);
          let encoded: number;
          if (ents === this.sizedEntries && ents.length === this.sizedEntriesLength) {
            encoded = this.sizedEntriesSize;
            this.sizedEntries = undefined;
          } else {
            encoded = entriesSize(ents);
          }
          this.appliedTo(last.index, encoded);
          this.reduceUncommittedSize(size);
        }
        return;
      }
      case 'MsgVote':
      case 'MsgPreVote':
        this.handleVoteRequest(m);
        return;
      default:
        this.stepFn(m);
    }
  }

  private handleVoteRequest(m: Message): void {
    // We can vote for a candidate we already voted for, or when we have not voted and
    // know no leader in this term, or for a PreVote of a future term...
    const canVote =
      this.vote === m.from ||
      (this.vote === NONE && this.lead === NONE) ||
      (m.type === 'MsgPreVote' && m.term > this.term);
    const last = this.raftLog.lastEntryID();
    const cand: EntryID = { term: m.logTerm, index: m.index };
    // ...and only if its log is at least as up to date as ours (§5.4.1).
    //
    // A learner answers too, as etcd's does: a learner that has been promoted but has not
    // applied the promotion yet may be needed for a quorum. A candidate whose config is
    // stale cannot win anyway, as its log lacks the committed conf change.
    if (canVote && this.raftLog.isUpToDate(cand)) {
      this.logger.info(
        `${this.id} [logterm: ${last.term}, index: ${last.index}, vote: ${this.vote}] cast ${m.type} for ${m.from} [logterm: ${cand.term}, index: ${cand.index}] at term ${this.term}`,
      );
      // Answer with the message's term, not ours: a PreVote is for a term we are not in.
      this.send(message({ type: voteRespType(m.type), to: m.from, term: m.term }));
      if (m.type === 'MsgVote') {
        // Only real votes are recorded; granting one also defers our own campaign.
        this.electionElapsed = 0;
        this.vote = m.from;
      }
    } else {
      this.logger.info(
        `${this.id} [logterm: ${last.term}, index: ${last.index}, vote: ${this.vote}] rejected ${m.type} from ${m.from} [logterm: ${cand.term}, index: ${cand.index}] at term ${this.term}`,
      );
      this.send(message({ type: voteRespType(m.type), to: m.from, term: this.term, reject: true }));
    }
  }

  // ---- Leader ------------------------------------------------------------------

  private stepLeader(m: Message): void {
    // Messages that need no progress entry for the sender.
    switch (m.type) {
      case 'MsgBeat':
        this.bcastHeartbeat();
        return;
      case 'MsgCheckQuorum':
        if (!this.trk.quorumActive()) {
          this.logger.warn(`${this.id} stepped down to follower since quorum is not active`);
          this.becomeFollower(this.term, NONE);
        }
        // Everyone (but us) must prove activity again before the next check.
        this.trk.visit((id, pr) => {
          if (id !== this.id) pr.recentActive = false;
        });
        return;
      case 'MsgProp':
        this.leaderPropose(m.entries);
        return;
      case 'MsgReadIndex':
        if (this.trk.isSingleton()) {
          this.respondToReadIndex(m, this.raftLog.committed);
          return;
        }
        // Until an entry of our term is committed, our commit index may lag behind what
        // an earlier leader committed: postpone the read.
        if (!this.committedEntryInCurrentTerm()) {
          this.pendingReadIndexMessages.push(m);
          return;
        }
        this.sendReadIndexResponse(m);
        return;
      case 'MsgForgetLeader':
        return;
    }

    const pr = this.trk.progress.get(m.from);
    if (!pr) {
      this.logger.debug(`${this.id} no progress available for ${m.from}`);
      return;
    }
    switch (m.type) {
      case 'MsgAppResp':
        this.handleAppendResponse(m, pr);
        return;
      case 'MsgHeartbeatResp':
        this.handleHeartbeatResponse(m, pr);
        return;
      case 'MsgSnapStatus':
        if (pr.state !== 'StateSnapshot') return;
        if (!m.reject) {
          pr.becomeProbe();
          this.logger.debug(
            `${this.id} snapshot succeeded, resumed sending replication messages to ${m.from} [${pr}]`,
          );
        } else {
          // Forget the snapshot first, or probing would start from its index.
          pr.pendingSnapshot = 0;
          pr.becomeProbe();
          this.logger.debug(
            `${this.id} snapshot failed, resumed sending replication messages to ${m.from} [${pr}]`,
          );
        }
        // After a success wait for the follower's MsgAppResp; after a failure, for the
        // next heartbeat response before retrying.
        pr.msgAppFlowPaused = true;
        return;
      case 'MsgUnreachable':
        // Optimistic replication to an unreachable follower has likely lost messages.
        if (pr.state === 'StateReplicate') pr.becomeProbe();
        this.logger.debug(`${this.id} failed to send message to ${m.from} because it is unreachable [${pr}]`);
        return;
      case 'MsgTransferLeader':
        this.handleTransferLeader(m, pr);
        return;
    }
  }

  /**
   * A leader's handling of MsgProp, which needs only its entries: RawNode.propose calls
   * it directly on a leader (what step() would do with the local message), so that a
   * proposal builds no message.
   */
  leaderPropose(entries: Entry[]): void {
    if (entries.length === 0) this.logger.panic(`${this.id} stepped empty MsgProp`);
    if (!this.trk.progress.has(this.id)) {
      // We were removed from the configuration while leading: take no new proposals.
      throw ErrProposalDropped;
    }
    if (this.leadTransferee !== NONE) {
      this.logger.debug(
        `${this.id} [term ${this.term}] transfer leadership to ${this.leadTransferee} is in progress; dropping proposal`,
      );
      throw ErrProposalDropped;
    }
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i]!;
      if (e.type !== 'EntryConfChange' && e.type !== 'EntryConfChangeV2') continue;
      const cc = decodeConfChangeEntry(e);
      const failed = this.confChangeRefusal(cc);
      if (failed !== undefined && !this.disableConfChangeValidation) {
        this.logger.info(
          `${this.id} ignoring conf change ${describeCc(cc)} at config ${configToString(this.trk.config)}: ${failed}`,
        );
        // Keep the slot (indexes were promised to the proposer) but make it a no-op.
        entries[i] = { term: 0, index: 0, type: 'EntryNormal', data: EMPTY_BYTES };
      } else {
        this.pendingConfIndex = this.raftLog.lastIndex() + i + 1;
      }
    }
    if (!this.appendEntry(entries)) throw ErrProposalDropped;
    this.bcastAppend();
  }

  /** Why a conf change may not be proposed now, or undefined when it may. */
  private confChangeRefusal(cc: AnyConfChange): string | undefined {
    const alreadyPending = this.pendingConfIndex > this.raftLog.applied;
    const alreadyJoint = this.trk.config.voters.outgoing.size > 0;
    const wantsLeaveJoint = confChangeAsV2(cc).changes.length === 0;
    if (alreadyPending) {
      return `possible unapplied conf change at index ${this.pendingConfIndex} (applied to ${this.raftLog.applied})`;
    }
    if (alreadyJoint && !wantsLeaveJoint) return 'must transition out of joint config first';
    if (!alreadyJoint && wantsLeaveJoint) return 'not in joint state; refusing empty conf change';
    return undefined;
  }

  private handleAppendResponse(m: Message, pr: Progress): void {
    pr.recentActive = true;
    if (m.reject) {
      // The follower's log does not match at m.index. Its hint is the largest index at
      // which it might match (with that entry's term in logTerm): skip straight back to
      // the last index of ours whose term is at most that, instead of one per round trip.
      this.logger.debug(
        `${this.id} received MsgAppResp(rejected, hint: (index ${m.rejectHint}, term ${m.logTerm})) from ${m.from} for index ${m.index}`,
      );
      let nextProbeIdx = m.rejectHint;
      if (m.logTerm > 0) nextProbeIdx = this.raftLog.findConflictByTerm(m.rejectHint, m.logTerm).index;
      if (pr.maybeDecrTo(m.index, nextProbeIdx)) {
        this.logger.debug(`${this.id} decreased progress of ${m.from} to [${pr}]`);
        if (pr.state === 'StateReplicate') pr.becomeProbe();
        this.sendAppend(m.from);
      }
      return;
    }

    // An ack that matches what a probing follower already has also proves it is in sync.
    if (!(pr.maybeUpdate(m.index) || (pr.match === m.index && pr.state === 'StateProbe'))) return;
    if (pr.state === 'StateProbe') {
      pr.becomeReplicate();
    } else if (pr.state === 'StateSnapshot' && pr.match + 1 >= this.raftLog.firstIndex()) {
      // The follower can now be caught up from the log, whichever snapshot got it here.
      this.logger.debug(
        `${this.id} recovered from needing snapshot, resumed sending replication messages to ${m.from} [${pr}]`,
      );
      pr.becomeProbe();
      pr.becomeReplicate();
    } else if (pr.state === 'StateReplicate') {
      pr.inflights.freeLE(m.index);
    }

    if (this.maybeCommit()) {
      // Our term now has a committed entry: reads held back for it can be served.
      this.releasePendingReadIndexMessages();
      this.bcastAppend();
    } else if (this.id !== m.from && pr.canBumpCommit(this.raftLog.committed)) {
      // This follower may not know the latest commit index; tell it now rather than at
      // the next heartbeat.
      this.sendAppend(m.from);
    }
    // Flow control may have opened up: send as much as it now allows.
    if (this.id !== m.from) {
      while (this.maybeSendAppend(m.from, false)) {
        // keep sending
      }
    }
    if (m.from === this.leadTransferee && pr.match === this.raftLog.lastIndex()) {
      this.logger.info(`${this.id} sent MsgTimeoutNow to ${m.from} after received MsgAppResp`);
      this.sendTimeoutNow(m.from);
    }
  }

  private handleHeartbeatResponse(m: Message, pr: Progress): void {
    pr.recentActive = true;
    pr.msgAppFlowPaused = false;
    // A lagging follower gets an append; one whose inflight window is full gets an empty
    // one, so a window filled by lost messages can drain.
    if (pr.match < this.raftLog.lastIndex() || pr.state === 'StateProbe') this.sendAppend(m.from);

    if (this.readOnlyOption !== 'ReadOnlySafe' || m.context.length === 0) return;
    const acks = this.readOnly.recvAck(m.from, m.context);
    if (!acks || this.trk.config.voters.voteResult(acks as Map<number, boolean>) !== 'VoteWon') return;
    for (const rs of this.readOnly.advance(m.context)) this.respondToReadIndex(rs.req, rs.index);
  }

  private handleTransferLeader(m: Message, pr: Progress): void {
    if (pr.isLearner) {
      this.logger.debug(`${this.id} is learner. Ignored transferring leadership`);
      return;
    }
    const transferee = m.from;
    const last = this.leadTransferee;
    if (last !== NONE) {
      if (last === transferee) {
        this.logger.info(
          `${this.id} [term ${this.term}] transfer leadership to ${transferee} is in progress, ignores request to same node ${transferee}`,
        );
        return;
      }
      this.abortLeaderTransfer();
      this.logger.info(`${this.id} [term ${this.term}] abort previous transferring leadership to ${last}`);
    }
    if (transferee === this.id) {
      this.logger.debug(`${this.id} is already leader. Ignored transferring leadership to self`);
      return;
    }
    this.logger.info(`${this.id} [term ${this.term}] starts to transfer leadership to ${transferee}`);
    // The transfer must finish within an election timeout; start counting now.
    this.electionElapsed = 0;
    this.leadTransferee = transferee;
    if (pr.match === this.raftLog.lastIndex()) {
      this.sendTimeoutNow(transferee);
      this.logger.info(
        `${this.id} sends MsgTimeoutNow to ${transferee} immediately as ${transferee} already has up-to-date log`,
      );
    } else {
      this.sendAppend(transferee);
    }
  }

  private committedEntryInCurrentTerm(): boolean {
    return this.raftLog.termOrZero(this.raftLog.committed) === this.term;
  }

  private releasePendingReadIndexMessages(): void {
    if (this.pendingReadIndexMessages.length === 0) return;
    if (!this.committedEntryInCurrentTerm()) {
      this.logger.error('pending MsgReadIndex should be released only after first commit in current term');
      return;
    }
    const msgs = this.pendingReadIndexMessages;
    this.pendingReadIndexMessages = [];
    for (const m of msgs) this.sendReadIndexResponse(m);
  }

  private sendReadIndexResponse(m: Message): void {
    if (this.readOnlyOption === 'ReadOnlyLeaseBased') {
      // The lease (CheckQuorum) guarantees no other leader exists right now.
      this.respondToReadIndex(m, this.raftLog.committed);
      return;
    }
    const ctx = this.readOnly.addRequest(this.raftLog.committed, m);
    // We ack our own round; the heartbeat collects the rest.
    this.readOnly.recvAck(this.id, ctx);
    this.bcastHeartbeatWithCtx(ctx);
  }

  /** Answers a read: locally as a ReadState, or to the follower that forwarded it. */
  private respondToReadIndex(req: Message, readIndex: number): void {
    if (req.from === NONE || req.from === this.id) {
      this.readStates.push({ index: readIndex, requestCtx: req.entries[0]?.data ?? EMPTY_BYTES });
      return;
    }
    this.send(message({ type: 'MsgReadIndexResp', to: req.from, index: readIndex, entries: req.entries }));
  }

  // ---- Candidate ---------------------------------------------------------------

  private stepCandidate(m: Message): void {
    // Only responses of our current round count: a candidate may still receive
    // PreVote responses from its pre-candidacy in this term.
    const myVoteRespType: MessageType = this.state === 'StatePreCandidate' ? 'MsgPreVoteResp' : 'MsgVoteResp';
    switch (m.type) {
      case 'MsgProp':
        this.logger.info(`${this.id} no leader at term ${this.term}; dropping proposal`);
        throw ErrProposalDropped;
      case 'MsgApp':
        this.becomeFollower(m.term, m.from);
        this.handleAppendEntries(m);
        return;
      case 'MsgHeartbeat':
        this.becomeFollower(m.term, m.from);
        this.handleHeartbeat(m);
        return;
      case 'MsgSnap':
        this.becomeFollower(m.term, m.from);
        this.handleSnapshot(m);
        return;
      case myVoteRespType: {
        const { granted, rejected, result } = this.poll(m.from, m.type, !m.reject);
        this.logger.info(
          `${this.id} has received ${granted} ${m.type} votes and ${rejected} vote rejections`,
        );
        if (result === 'VoteWon') {
          if (this.state === 'StatePreCandidate') this.campaign('CampaignElection');
          else {
            this.becomeLeader();
            this.bcastAppend();
          }
        } else if (result === 'VoteLost') {
          // A PreVote response carries a future term; stay in ours.
          this.becomeFollower(this.term, NONE);
        }
        return;
      }
      case 'MsgTimeoutNow':
        this.logger.debug(
          `${this.id} [term ${this.term} state ${this.state}] ignored MsgTimeoutNow from ${m.from}`,
        );
        return;
    }
  }

  // ---- Follower ----------------------------------------------------------------

  private stepFollower(m: Message): void {
    switch (m.type) {
      case 'MsgProp':
        if (this.lead === NONE) {
          this.logger.info(`${this.id} no leader at term ${this.term}; dropping proposal`);
          throw ErrProposalDropped;
        }
        if (this.disableProposalForwarding) {
          this.logger.info(
            `${this.id} not forwarding to leader ${this.lead} at term ${this.term}; dropping proposal`,
          );
          throw ErrProposalDropped;
        }
        this.send({ ...m, to: this.lead });
        return;
      case 'MsgApp':
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleAppendEntries(m);
        return;
      case 'MsgHeartbeat':
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleHeartbeat(m);
        return;
      case 'MsgSnap':
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleSnapshot(m);
        return;
      case 'MsgTransferLeader':
        if (this.lead === NONE) {
          this.logger.info(`${this.id} no leader at term ${this.term}; dropping leader transfer msg`);
          return;
        }
        this.send({ ...m, to: this.lead });
        return;
      case 'MsgForgetLeader':
        // With lease-based reads the old leader may still serve reads within its lease;
        // forgetting it here would let us elect another leader inside that lease.
        if (this.readOnlyOption === 'ReadOnlyLeaseBased') {
          this.logger.error('ignoring MsgForgetLeader due to ReadOnlyLeaseBased');
          return;
        }
        if (this.lead !== NONE) {
          this.logger.info(`${this.id} forgetting leader ${this.lead} at term ${this.term}`);
          this.lead = NONE;
        }
        return;
      case 'MsgTimeoutNow':
        this.logger.info(
          `${this.id} [term ${this.term}] received MsgTimeoutNow from ${m.from} and starts an election to get leadership.`,
        );
        // A transfer is not a recovery from a partition: skip PreVote.
        this.hup('CampaignTransfer');
        return;
      case 'MsgReadIndex':
        if (this.lead === NONE) {
          this.logger.info(`${this.id} no leader at term ${this.term}; dropping index reading msg`);
          return;
        }
        this.send({ ...m, to: this.lead });
        return;
      case 'MsgReadIndexResp':
        if (m.entries.length !== 1) {
          this.logger.error(
            `${this.id} invalid format of MsgReadIndexResp from ${m.from}, entries count: ${m.entries.length}`,
          );
          return;
        }
        this.readStates.push({ index: m.index, requestCtx: m.entries[0]!.data });
        return;
    }
  }

  private handleAppendEntries(m: Message): void {
    if (m.index < this.raftLog.committed) {
      // Everything up to our commit index already matches: say how far we are.
      this.send(message({ type: 'MsgAppResp', to: m.from, index: this.raftLog.committed }));
      return;
    }
    const lastNew = this.raftLog.maybeAppend(m.index, m.logTerm, m.commit, m.entries);
    if (lastNew !== undefined) {
      // A follower's hottest message: built without message()'s megamorphic reads.
      const ack = blankMessage('MsgAppResp');
      ack.to = m.from;
      ack.index = lastNew;
      this.send(ack);
      return;
    }
    this.logger.debug(
      `${this.id} [logterm: ${this.raftLog.termOrZero(m.index)}, index: ${m.index}] rejected MsgApp [logterm: ${m.logTerm}, index: ${m.index}] from ${m.from}`,
    );
    // Hint the largest (index, term) at which our logs may match: the last entry of ours
    // at or below m.index whose term is at most m.logTerm. This skips our whole
    // uncommitted tail of newer terms in one round trip.
    const hint = this.raftLog.findConflictByTerm(Math.min(m.index, this.raftLog.lastIndex()), m.logTerm);
    this.send(
      message({
        type: 'MsgAppResp',
        to: m.from,
        index: m.index,
        reject: true,
        rejectHint: hint.index,
        logTerm: hint.term,
      }),
    );
  }

  private handleHeartbeat(m: Message): void {
    this.raftLog.commitTo(m.commit);
    this.send(message({ type: 'MsgHeartbeatResp', to: m.from, context: m.context }));
  }

  private handleSnapshot(m: Message): void {
    const s = m.snapshot ?? {
      data: EMPTY_BYTES,
      metadata: {
        index: 0,
        term: 0,
        confState: { voters: [], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false },
      },
    };
    const { index: sindex, term: sterm } = s.metadata;
    if (this.restore(s)) {
      this.logger.info(
        `${this.id} [commit: ${this.raftLog.committed}] restored snapshot [index: ${sindex}, term: ${sterm}]`,
      );
      this.send(message({ type: 'MsgAppResp', to: m.from, index: this.raftLog.lastIndex() }));
    } else {
      this.logger.info(
        `${this.id} [commit: ${this.raftLog.committed}] ignored snapshot [index: ${sindex}, term: ${sterm}]`,
      );
      this.send(message({ type: 'MsgAppResp', to: m.from, index: this.raftLog.committed }));
    }
  }

  /** Resets the log and configuration to a snapshot. False when it is stale or not for us. */
  restore(s: Snapshot): boolean {
    if (s.metadata.index <= this.raftLog.committed) return false;
    if (this.state !== 'StateFollower') {
      // Defense in depth: only followers restore. Leave the term so no one acts on it.
      this.logger.warn(`${this.id} attempted to restore snapshot as leader; should never happen`);
      this.becomeFollower(this.term + 1, NONE);
      return false;
    }
    const cs = s.metadata.confState;
    if (!confStateIncludes(cs, this.id)) {
      this.logger.warn(
        `${this.id} attempted to restore snapshot but it is not in the ConfState; should never happen`,
      );
      return false;
    }
    const id: EntryID = { term: s.metadata.term, index: s.metadata.index };
    if (this.raftLog.matchTerm(id)) {
      // We already have the snapshot's last entry: the log is good, only commit moves.
      const last = this.raftLog.lastEntryID();
      this.logger.info(
        `${this.id} [commit: ${this.raftLog.committed}, lastindex: ${last.index}, lastterm: ${last.term}] fast-forwarded commit to snapshot [index: ${id.index}, term: ${id.term}]`,
      );
      this.raftLog.commitTo(s.metadata.index);
      return false;
    }
    this.raftLog.restore(s);
    this.trk = new ProgressTracker(this.trk.maxInflight, this.trk.maxInflightBytes);
    const [cfg, progress] = restoreConfig(new Changer(this.trk, this.raftLog.lastIndex()), cs);
    assertConfStatesEquivalent(this.logger, cs, this.switchToConfig(cfg, progress));
    const last = this.raftLog.lastEntryID();
    this.logger.info(
      `${this.id} [commit: ${this.raftLog.committed}, lastindex: ${last.index}, lastterm: ${last.term}] restored snapshot [index: ${id.index}, term: ${id.term}]`,
    );
    return true;
  }

  // ---- Configuration -----------------------------------------------------------

  applyConfChange(cc: ConfChangeV2): ConfState {
    const changer = new Changer(this.trk, this.raftLog.lastIndex());
    let result: ReturnType<Changer['simple']>;
    if (leaveJoint(cc)) result = changer.leaveJoint();
    else {
      const joint = enterJoint(cc);
      result = joint.ok ? changer.enterJoint(joint.autoLeave, ...cc.changes) : changer.simple(...cc.changes);
    }
    return this.switchToConfig(result[0], result[1]);
  }

  switchToConfig(cfg: TrackerConfig, progress: Map<number, Progress>): ConfState {
    this.trk.config = cfg;
    this.trk.progress = progress;
    this.logger.info(`${this.id} switched to configuration ${configToString(this.trk.config)}`);
    const cs = this.trk.confState();
    const pr = this.trk.progress.get(this.id);
    this.isLearner = pr?.isLearner ?? false;

    if ((pr === undefined || this.isLearner) && this.state === 'StateLeader') {
      // We lead a configuration we are no longer a voter of.
      if (this.stepDownOnRemoval) this.becomeFollower(this.term, NONE);
      return cs;
    }
    if (this.state !== 'StateLeader' || cs.voters.length === 0) return cs;

    if (this.maybeCommit()) {
      // The new quorum may commit more right away.
      this.bcastAppend();
    } else {
      // Probe new members now rather than at the next heartbeat or proposal.
      const ids = this.trk.ids();
      for (let i = 0; i < ids.length; i++) {
        const id = ids[i]!;
        if (id !== this.id) this.maybeSendAppend(id, false);
      }
    }
    if (this.leadTransferee !== NONE && !this.trk.config.voters.ids().includes(this.leadTransferee)) {
      this.abortLeaderTransfer();
    }
    return cs;
  }

  private loadState(hs: HardState): void {
    if (hs.commit < this.raftLog.committed || hs.commit > this.raftLog.lastIndex()) {
      this.logger.panic(
        `${this.id} state.commit ${hs.commit} is out of range [${this.raftLog.committed}, ${this.raftLog.lastIndex()}]`,
      );
    }
    this.raftLog.committed = hs.commit;
    this.term = hs.term;
    this.vote = hs.vote;
  }
}

function describeCc(cc: AnyConfChange): string {
  const v2 = confChangeAsV2(cc);
  return `{${v2.transition} ${v2.changes.map((c) => `${c.type}(${c.nodeId})`).join(' ')}}`;
}

function validateConfig(c: Config): void {
  const fail = (msg: string): never => {
    throw new RaftError(msg);
  };
  if (c.id === NONE) fail('cannot use none as id');
  if (isLocalThread(c.id)) fail('cannot use local target as id');
  if (!Number.isSafeInteger(c.id) || c.id < 0) fail(`invalid id ${c.id}`);
  if (c.heartbeatTick <= 0) fail('heartbeat tick must be greater than 0');
  if (c.electionTick <= c.heartbeatTick) fail('election tick must be greater than heartbeat tick');
  if (c.maxInflightMsgs !== undefined && c.maxInflightMsgs <= 0)
    fail('max inflight messages must be greater than 0');
  if (
    c.maxInflightBytes &&
    c.maxInflightBytes < (c.maxSizePerMsg ?? Infinity) &&
    c.maxSizePerMsg !== undefined
  ) {
    fail('max inflight bytes must be >= max message size');
  }
  if (c.readOnlyOption === 'ReadOnlyLeaseBased' && !c.checkQuorum) {
    fail('CheckQuorum must be enabled when ReadOnlyOption is ReadOnlyLeaseBased');
  }
}

function assertConfStatesEquivalent(logger: Logger, a: ConfState, b: ConfState): void {
  const err = confStateEquivalent(a, b);
  if (err !== undefined) logger.panic(err);
}
