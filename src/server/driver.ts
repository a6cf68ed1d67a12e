// The driver: one node's Raft loop, shaped like etcd's raftNode with asynchronous storage
// writes. A ticker calls tick(); peers' messages are stepped in as they arrive; and each
// Ready is handled at once, without waiting for the disk:
//
//   1. send the messages that promise nothing about this node's disk: a leader's MsgApps
//      (it replicates while it writes its own log, Raft thesis §10.2.1), heartbeats, a
//      follower's forwarded proposals;
//   2. hand the Ready's writes (MsgStorageAppend: entries, HardState, snapshot) to the
//      append thread (append-thread.ts), which persists them in order with one fdatasync
//      per batch and only then sends what promises durability (MsgAppResp, votes) and steps
//      this node's own append ack back in;
//   3. apply the committed entries (MsgStorageApply), answer their clients, and step the
//      apply's response back in — as in etcd with asynchronous writes, raft hands out only
//      entries that this node's own log holds on disk too;
//   4. serve reads whose index is reached.
//
// So a leader keeps proposing, replicating and sending heartbeats while its own fsync runs
// (a disk that stalls for an election timeout no longer costs it its leadership), and a
// follower keeps appending while its last write syncs; everything proposed while a write is
// on its way goes in the next one (group commit).
import { randomBytes } from 'node:crypto';
import { CommandError, type Role } from '../protocol/control.js';
import { decodeConfChangeEntry } from '../raft/confchange-codec.js';
import { describeEntry } from '../raft/describe.js';
import { ErrSnapOutOfDate, RaftError } from '../raft/errors.js';
import type { Config } from '../raft/raft.js';
import { RawNode, type Ready } from '../raft/rawnode.js';
import {
  type AnyConfChange,
  type ConfChangeSingle,
  type ConfState,
  confStateIncludes,
  type Entry,
  LOCAL_APPEND_THREAD,
  LOCAL_APPLY_THREAD,
  type Message,
  message,
  NONE,
  type Snapshot,
  type SnapshotMetadata,
  type StateType,
} from '../raft/types.js';
import { AppendThread } from './append-thread.js';
import { COMMIT_HOLD_MS, CommitHold } from './commit-hold.js';
import {
  decodeMemberContext,
  encodeCapture,
  encodeKvBatch,
  encodeKvCommand,
  encodeKvPutBytes,
  encodeMemberContext,
  type KvCommand,
  type KvResult,
  type KvStore,
  kvCommandCount,
  MAX_BATCH_BYTES,
  MAX_BATCH_COMMANDS,
  requestKey,
} from './kv.js';
import type { ServerLogger } from './log.js';
import type { RaftMetrics } from './metrics.js';
import { SeqQueue } from './seq-queue.js';
import type { DiskStorage, SaveRequest } from './storage/disk-storage.js';

/** A KV command as a caller gives it: the driver fills in the client id and sequence unless set. */
export type KvRequest = KvCommand extends infer C
  ? C extends KvCommand
    ? Omit<C, 'clientId' | 'seq'> & { clientId?: string; seq?: number }
    : never
  : never;

const UTF8_ENCODER = new TextEncoder();
const UTF8_DECODER = new TextDecoder();

const GOLDEN_RATIO = 0.6180339887498949;

/** Checks `done` every 5 ms until it holds (true) or `timeoutMs` passes (false). */
async function pollUntil(done: () => boolean, timeoutMs = Number.POSITIVE_INFINITY): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  while (!done()) {
    if (performance.now() >= deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  return true;
}

/** A MsgSnap whose snapshot's configuration does not include its recipient. */
function snapshotPredatesPeer(m: Message): boolean {
  return m.type === 'MsgSnap' && !confStateIncludes(m.snapshot!.metadata.confState, m.to);
}

export function roleOf(state: StateType): Role {
  switch (state) {
    case 'StateLeader':
      return 'leader';
    case 'StateCandidate':
      return 'candidate';
    case 'StatePreCandidate':
      return 'precandidate';
    default:
      return 'follower';
  }
}

export interface PeerSender {
  send(msgs: Message[]): void;
  /** Writes queued messages now rather than on the next event-loop turn. */
  flushNow?(): void;
  /** Writes queued messages once the current callbacks and promise jobs have run. */
  flushSoon?(): void;
  setPeers(peers: Map<number, string>): void;
}

export interface DriverEvents {
  ready(rd: Ready): void;
  message(m: Message): void;
  leader(leader: number, term: number): void;
  election(term: number, role: Role): void;
  confchange(change: string, cs: ConfState): void;
  snapshot(op: 'created' | 'restored', index: number, term: number): void;
  apply(entry: Entry): void;
}

export interface DriverOptions {
  id: number;
  tickMs: number;
  electionTicks: number;
  heartbeatTicks: number;
  preVote: boolean;
  checkQuorum: boolean;
  /**
   * Take a snapshot of the KV state every this many applied writes. Writes, not entries:
   * an entry may carry a batch of them, and what a snapshot bounds — the log held in
   * memory and replayed on restart — grows with the writes.
   */
  snapshotEvery: number;
  /**
   * Take one sooner, once the entries applied since the last snapshot hold this many bytes
   * of data — or as many as that snapshot has, if it is larger. The log since the last
   * snapshot is held in memory and replayed on restart, so with large values a count of
   * writes alone lets it grow to gigabytes; tying it to the snapshot's size keeps what
   * snapshots write at most about what the log itself did.
   */
  snapshotBytes: number;
  /**
   * Writes kept in the log behind a snapshot so slightly lagging followers catch up without
   * one; no more than a quarter of snapshotBytes of them.
   */
  snapshotCatchUpWrites: number;
  /** How long a client waits for its proposal or read before `timeout`. */
  requestTimeoutMs: number;
  /**
   * How long a leader may hold a commit-only MsgApp for a MsgApp with entries to carry its
   * news (see commit-hold.ts): how stale a quiet follower's commit index may get. 0 sends
   * them at once, as the core emits them. Default COMMIT_HOLD_MS.
   */
  commitHoldMs?: number;
  storage: DiskStorage;
  kv: KvStore;
  transport: PeerSender;
  logger: ServerLogger;
  /** Initial members (id → address) for a new cluster; ignored when the node has state. */
  initialPeers: Map<number, string>;
  /** Join an existing cluster: start empty and wait for the leader. */
  join: boolean;
  /** Called when this node is removed from the cluster: the process should stop. */
  onRemoved: () => void;
  /** Called when the driver hits an unrecoverable error (e.g. the disk failed). */
  onFatal: (err: Error) => void;
  events?: Partial<DriverEvents>;
  /** Whether anyone listens to events of a kind; describing every message costs, so skip it when not. */
  wantsEvents?: (kind: 'ready' | 'message' | 'apply') => boolean;
  /** Histograms the driver observes into as things happen (the node's /metrics). */
  metrics?: DriverMetrics;
}

/** The node's histograms that the driver feeds (RaftMetrics has them). */
export type DriverMetrics = Pick<RaftMetrics, 'walFsyncSeconds' | 'snapshotSeconds' | 'writeSeconds'>;

/**
 * Hears how a write ended: its result once applied here (with this node's term then), or
 * why it failed. A promise's resolvers fit; so does one object per request, which is all
 * a binary put costs its connection (no promise, resolver closures or async frame).
 */
export interface WriteListener {
  resolve(result: KvResult, term: number): void;
  reject(err: Error): void;
}

interface Waiter {
  /** The request id the waiter is filed under. */
  clientId: string;
  seq: number;
  /** The encoded command, kept to propose it again after a leader change. */
  data: Uint8Array;
  listener: WriteListener;
  /** performance.now() when the request reached this node (for kv_write_seconds). */
  filedAt: number;
  /** performance.now() after which the request times out (see expireWaiters). */
  deadline: number;
}

interface ReadWaiter {
  resolve(): void;
  reject(e: Error): void;
  timer: NodeJS.Timeout;
}

interface ConfWaiter {
  resolve(cs: ConfState): void;
  reject(e: Error): void;
  timer: NodeJS.Timeout;
}

export class RaftDriver {
  readonly rawNode: RawNode;
  readonly id: number;
  private readonly opts: DriverOptions;
  private readonly log: ServerLogger;
  private ticker: NodeJS.Timeout | undefined;
  private processing = false;
  private stopped = false;
  /** A graceful stop is under way: new requests are refused (see drain). */
  private draining = false;
  private removed = false;

  /** Proposals not yet stepped into Raft; flushed as one MsgProp before each Ready. */
  private proposalBatch: Waiter[] = [];
  /** Proposals waiting for their entry to be applied, by request id. */
  private readonly waiters: Waiters;
  /** Conf changes waiting to be applied, by a token carried in the change's context. */
  private readonly confWaiters = new Map<string, ConfWaiter>();
  /** Reads waiting for the next ReadIndex round to start. */
  private readsQueued: ReadWaiter[] = [];
  /** Reads of rounds in flight, by round context. */
  private readonly readRounds = new Map<string, ReadWaiter[]>();
  /** Rounds confirmed, waiting for applied ≥ index. */
  private readsConfirmed: { index: number; waiters: ReadWaiter[] }[] = [];
  private readSeq = 0;

  /** The id this node files its own requests under: fresh on every start, never a client's. */
  readonly clientId: string;
  private seq = 0;
  /** Writes and bytes of log applied since the last snapshot (or since the start). */
  private writesSinceSnapshot = 0;
  private bytesSinceSnapshot = 0;
  /**
   * How much longer than a period this node waits for its first snapshot, as a fraction of
   * one (see the constructor); 0 once it has taken or installed one.
   */
  private snapshotPhase: number;
  /** The snapshot being written, if any (one at a time). */
  private snapshotInFlight: Promise<unknown> | undefined;
  private lastLeader = NONE;
  /** Ticks until the campaign peerLost scheduled; 0: none. */
  private campaignInTicks = 0;
  private lastState: StateType = 'StateFollower';
  private lastYieldAt = 0;
  /** After a restart, until the entries committed before it are applied again: for the log. */
  private replaying: { from: number; to: number; startedAt: number } | undefined;
  /** Persists the Readys' writes and releases what waits for them (see append-thread.ts). */
  private readonly appendThread: AppendThread;
  private failed = false;
  /** Peers of the current membership (what refreshPeers last computed), id → address. */
  private peerAddresses = new Map<number, string>();
  /** Peers that left the membership, still connected for a grace period. */
  private readonly departing = new Map<number, { address: string; timer: NodeJS.Timeout }>();
  /** A leader's commit-only MsgApps, held until a MsgApp with entries carries the news. */
  private readonly commitHold: CommitHold;

  /** Counters for metrics. */
  readonly stats = {
    proposals: { ok: 0, dropped: 0, timeout: 0 },
    leaderChanges: 0,
    sent: new Map<string, number>(),
    received: new Map<string, number>(),
    snapshots: { created: 0, restored: 0 },
  };

  constructor(opts: DriverOptions) {
    this.opts = opts;
    this.id = opts.id;
    this.log = opts.logger;
    this.clientId = `n${opts.id}-${randomBytes(6).toString('hex')}`;
    this.waiters = new Waiters(this.clientId);
    this.commitHold = new CommitHold(
      (msgs) => this.deliver(msgs, false),
      (id) => this.rawNode.raft.trk.progress.get(id)?.state === 'StateReplicate',
      opts.commitHoldMs ?? COMMIT_HOLD_MS,
    );
    // Members apply the same entries at about the same time, so with equal counters they
    // would all encode a snapshot at once, and the commit quorum would stall while they do.
    // Each node's first snapshot comes later by a fraction of the period that depends on
    // its id (the golden ratio spreads any set of ids), which keeps their snapshots apart.
    this.snapshotPhase = (opts.id * GOLDEN_RATIO) % 1;
    const recovered = opts.storage.recovered;
    const recoveredSnapshot = opts.storage.takeRecoveredSnapshot();
    if (recoveredSnapshot) {
      opts.kv.restore(recoveredSnapshot.data);
      this.log.info(
        `restored state machine from snapshot at index ${recoveredSnapshot.metadata.index} (term ${recoveredSnapshot.metadata.term})`,
      );
    }
    const config: Config = {
      id: opts.id,
      electionTick: opts.electionTicks,
      heartbeatTick: opts.heartbeatTicks,
      storage: opts.storage.storage,
      applied: recovered.snapshot?.index ?? 0,
      preVote: opts.preVote,
      checkQuorum: opts.checkQuorum,
      maxSizePerMsg: 1 << 20,
      maxInflightMsgs: 256,
      maxUncommittedEntriesSize: 1 << 30,
      asyncStorageWrites: true,
      logger: opts.logger.child('raft'),
    };
    this.rawNode = new RawNode(config);
    this.appendThread = new AppendThread({
      save: (req) => this.persist(req),
      installSnapshot: (snap) => this.installSnapshot(snap),
      release: (responses) => this.release(responses),
      fail: (err) => this.fatal(err),
    });
    const fresh = recovered.lastIndex === 0 && recovered.hardState.term === 0 && !recovered.snapshot;
    if (fresh && !opts.join) {
      const peers = [...opts.initialPeers.entries()].sort((a, b) => a[0] - b[0]);
      this.rawNode.bootstrap(
        peers.map(([id, address]) => ({ id, context: encodeMemberContext({ address }) })),
      );
      this.log.info(
        `bootstrapped a new cluster with members ${peers.map(([id, a]) => `${id}=${a}`).join(',')}`,
      );
    } else if (fresh) {
      this.log.info('joining an existing cluster: waiting for the leader to contact this node');
    } else {
      this.log.info(
        `restarted at term ${recovered.hardState.term}, commit ${recovered.hardState.commit}, last index ${recovered.lastIndex}`,
      );
      const applied = recovered.snapshot?.index ?? 0;
      if (recovered.hardState.commit > applied) {
        this.replaying = { from: applied, to: recovered.hardState.commit, startedAt: performance.now() };
      }
    }
    // Until the membership is known from the log, reach the peers we were told about.
    const peers = new Map(opts.initialPeers);
    for (const [id, m] of opts.kv.members) peers.set(id, m.address);
    peers.delete(opts.id);
    this.peerAddresses = new Map(peers);
    opts.transport.setPeers(peers);
  }

  start(): void {
    this.ticker = setInterval(() => {
      this.rawNode.tick();
      this.campaignIfDue();
      this.expireWaiters(performance.now());
      this.schedule();
    }, this.opts.tickMs);
    this.schedule();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.ticker) clearInterval(this.ticker);
    this.commitHold.clear();
    for (const d of this.departing.values()) clearTimeout(d.timer);
    this.departing.clear();
    const err = new CommandError('unavailable', 'the node is shutting down');
    for (const w of this.waiters.all()) w.listener.reject(err);
    this.waiters.clear();
    for (const w of this.confWaiters.values()) {
      clearTimeout(w.timer);
      w.reject(err);
    }
    this.confWaiters.clear();
    for (const w of this.allReadWaiters()) {
      clearTimeout(w.timer);
      w.reject(err);
    }
    this.readsQueued = [];
    this.readRounds.clear();
    this.readsConfirmed = [];
    // Let the writes handed to the append thread finish, so the storage is not closed under
    // them; and a snapshot being written.
    await pollUntil(() => !this.processing);
    await this.appendThread.persisted();
    await this.snapshotInFlight?.catch(() => undefined);
  }

  /** A message from a peer. Unknown senders and local types are refused by RawNode. */
  step(m: Message): void {
    if (this.stopped) return;
    this.stats.received.set(m.type, (this.stats.received.get(m.type) ?? 0) + 1);
    try {
      this.rawNode.step(m);
    } catch (err) {
      if (!(err instanceof RaftError)) throw err;
      this.log.debug(`dropped ${m.type} from ${m.from}: ${err.message}`);
      return;
    }
    // The follower answers the proposal's client once it learns the entry committed.
    if (m.type === 'MsgProp' && this.rawNode.raft.state === 'StateLeader') {
      this.commitHold.awaitCommit(m.from, this.rawNode.raft.raftLog.lastIndex());
    }
    this.schedule();
  }

  /**
   * The transport lost its open connection to `id`. If that is our leader, it has most
   * likely crashed (a dead process's sockets close at once), and waiting out the election
   * timeout — 1 to 2 s with default timings — only prolongs the outage. So, as etcd's
   * ForgetLeader is meant for ("a side-channel or external failure detector"): forget the
   * leader, which lets this node grant pre-votes at once, and campaign a few ticks later
   * unless a leader shows up first. The other followers see the same connection close and
   * do the same, in the order of their ids: the lowest campaigns after one tick, the next
   * two ticks later (ticks of different processes are not in step: two ticks apart is at
   * least one tick of time), and so on, up to electionTicks − 1, still before any follower's
   * own election timeout. Random delays of 1 to 5 ticks let two followers campaign within
   * one round trip of each other now and then (2 of 15 failovers on 2026-11-26): both won
   * the pre-vote, split the vote, and the cluster waited a whole election timeout. If the
   * leader is in fact alive, nothing is lost: followers that still hear
   * from it refuse the pre-vote (CheckQuorum's lease), and its next heartbeat makes this
   * node its follower again. Hence only with PreVote and CheckQuorum both on: without
   * them, a connection that merely blinked could depose a healthy leader.
   */
  peerLost(id: number): void {
    if (!(this.opts.preVote && this.opts.checkQuorum) || this.stopped) return;
    if (this.rawNode.raft.state !== 'StateFollower' || this.rawNode.raft.lead !== id) return;
    this.rawNode.forgetLeader();
    if (this.rawNode.raft.lead !== NONE) return; // refused (lease-based reads rely on the lease)
    const others = this.rawNode.raft.trk
      .confState()
      .voters.filter((v) => v !== id)
      .sort((a, b) => a - b);
    const rank = Math.max(0, others.indexOf(this.opts.id));
    this.campaignInTicks = Math.min(1 + 2 * rank, Math.max(1, this.opts.electionTicks - 1));
    this.log.info(
      `lost the connection to leader ${id}: forgot it; campaigning in ${this.campaignInTicks} ticks unless a leader appears`,
    );
    this.schedule();
  }

  /** Counts down the campaign peerLost scheduled; a leader appearing meanwhile calls it off. */
  private campaignIfDue(): void {
    if (this.campaignInTicks === 0 || --this.campaignInTicks > 0) return;
    const r = this.rawNode.raft;
    if (r.state === 'StateFollower' && r.lead === NONE) this.rawNode.campaign();
  }

  reportUnreachable(id: number): void {
    this.rawNode.reportUnreachable(id);
    this.schedule();
  }

  reportSnapshot(id: number, ok: boolean): void {
    this.rawNode.reportSnapshot(id, ok ? 'SnapshotFinish' : 'SnapshotFailure');
    this.schedule();
  }

  get isLeader(): boolean {
    return this.rawNode.raft.state === 'StateLeader';
  }

  get leader(): number {
    return this.rawNode.raft.lead;
  }

  // ---- Client requests -------------------------------------------------------------

  /** Proposes a KV command and resolves with its result once applied on this node. */
  propose(cmd: KvRequest): Promise<KvResult> {
    this.assertAccepting();
    // This node numbers its own requests itself, in order (see Waiters): a request id in
    // that space from outside would collide with them.
    if (cmd.clientId === this.clientId || (cmd.clientId === undefined) !== (cmd.seq === undefined)) {
      throw new CommandError(
        'bad_args',
        cmd.clientId === this.clientId
          ? `clientId ${cmd.clientId} is this node's own; a client must use an id of its own`
          : 'clientId and seq identify a request together: give both or neither',
      );
    }
    const clientId = cmd.clientId ?? this.clientId;
    const seq = cmd.seq ?? ++this.seq;
    const existing = this.waiters.get(clientId, seq);
    if (existing) {
      // A retry of a request still in flight: answer both callers when it applies, or
      // fail both when it times out or the node stops.
      return new Promise<KvResult>((resolve, reject) => {
        const first = existing.listener;
        existing.listener = {
          resolve: (r, term) => {
            first.resolve(r, term);
            resolve(r);
          },
          reject: (e) => {
            first.reject(e);
            reject(e);
          },
        };
      });
    }
    const data = encodeKvCommand({ ...cmd, clientId, seq } as KvCommand);
    return new Promise<KvResult>((resolve, reject) => this.submit(clientId, seq, data, { resolve, reject }));
  }

  /**
   * Proposes a put given as UTF-8 bytes (a binary client frame's) under a request id of
   * this node's; `listener` hears its result once applied on this node. Throws, having
   * filed nothing, when the node does not take writes now.
   */
  proposePut(key: Uint8Array, value: Uint8Array, listener: WriteListener): void {
    this.assertAccepting();
    const seq = ++this.seq;
    this.submit(this.clientId, seq, encodeKvPutBytes(this.clientId, seq, key, value), listener);
  }

  /** Files a waiter for an encoded command and queues it for the next proposal batch. */
  private submit(clientId: string, seq: number, data: Uint8Array, listener: WriteListener): void {
    // No timer per request: on a busy node that is a timer object, a closure and a
    // timer-list insert and removal for every write. The ticker sweeps deadlines instead
    // (expireWaiters), so a request times out within a tick of its deadline.
    const filedAt = performance.now();
    const w: Waiter = {
      clientId,
      seq,
      data,
      listener,
      filedAt,
      deadline: filedAt + this.opts.requestTimeoutMs,
    };
    this.waiters.add(w);
    this.proposalBatch.push(w);
    this.schedule();
  }

  /** Fails the proposals whose deadline has passed. */
  private expireWaiters(now: number): void {
    for (const w of this.waiters.takeExpired(now)) {
      this.stats.proposals.timeout++;
      w.listener.reject(
        new CommandError(
          'timeout',
          `no result within ${this.opts.requestTimeoutMs} ms: the write may or may not be applied; retry with the same request id to find out`,
        ),
      );
    }
  }

  /**
   * Steps every proposal collected since the last Ready as one MsgProp: one append, one
   * broadcast of MsgApps and, with the Ready, one fsync for the whole batch — instead of a
   * round of messages per client request. The commands themselves go in as few entries as
   * possible (up to MAX_BATCH_COMMANDS each, see encodeKvBatch): what every entry costs —
   * its log and WAL records, their checksums, its part of each MsgApp on every node —
   * is then paid once per batch rather than once per write.
   */
  private flushProposals(): void {
    if (this.proposalBatch.length === 0) return;
    const batch = this.proposalBatch;
    this.proposalBatch = [];
    const entries: Entry[] = [];
    for (let i = 0; i < batch.length; ) {
      // Up to MAX_BATCH_COMMANDS commands and MAX_BATCH_BYTES (a command larger than that
      // goes alone, as it always did): an entry must still fit in one peer frame.
      let end = i + 1;
      let bytes = batch[i]!.data.length;
      while (
        end < batch.length &&
        end - i < MAX_BATCH_COMMANDS &&
        bytes + batch[end]!.data.length <= MAX_BATCH_BYTES
      ) {
        bytes += batch[end]!.data.length;
        end++;
      }
      const data = end - i === 1 ? batch[i]!.data : encodeKvBatch(batch.slice(i, end).map((w) => w.data));
      entries.push({ term: 0, index: 0, type: 'EntryNormal', data });
      i = end;
    }
    if (this.forwardNow(entries)) return;
    try {
      this.rawNode.step(message({ type: 'MsgProp', from: this.id, entries }));
    } catch (err) {
      const error = this.proposalError(err);
      for (const w of batch) {
        // Gone already if it timed out or was answered by an earlier proposal of the same request.
        if (!this.waiters.remove(w)) continue;
        this.stats.proposals.dropped++;
        w.listener.reject(error);
      }
    }
  }

  /**
   * On a follower, sends proposals to the leader at once, as the core would forward them
   * (same message, same rule: a known leader, forwarding not disabled); false when the core
   * must decide (it drops them, and the caller rejects their waiters). Through the core, the
   * forward leaves with the next Ready — after this node's own fsync, which the Ready loop
   * may be waiting on: every write through a follower waited for it. Measured at 1,024
   * clients: p99 of writes through followers 67-75 ms against 70-109 ms, through the leader
   * 39-47 against 59-74 (its batches fill sooner).
   */
  private forwardNow(entries: Entry[]): boolean {
    const r = this.rawNode.raft;
    if (r.state !== 'StateFollower' || r.lead === NONE || r.disableProposalForwarding) return false;
    this.send([message({ type: 'MsgProp', from: this.id, to: r.lead, entries })], true);
    return true;
  }

  /**
   * Waits until a read on this node is linearizable: a ReadIndex round confirms the
   * leader's commit index at some point after this call, and this node has applied it.
   * Reads arriving while a round is in flight share the next round.
   */
  linearizableBarrier(): Promise<void> {
    this.assertAccepting();
    return new Promise<void>((resolve, reject) => {
      const waiter: ReadWaiter = {
        resolve,
        reject,
        timer: setTimeout(() => {
          this.dropReadWaiter(waiter);
          reject(
            new CommandError(
              'timeout',
              `no read index within ${this.opts.requestTimeoutMs} ms (is there a leader?)`,
            ),
          );
        }, this.opts.requestTimeoutMs),
      };
      this.readsQueued.push(waiter);
      this.startReadRound();
    });
  }

  private startReadRound(): void {
    // One round at a time: reads that come meanwhile wait for the next, which must start
    // after they arrived to be linearizable.
    if (this.readRounds.size > 0 || this.readsQueued.length === 0) return;
    const ctx = `${this.id}:${++this.readSeq}`;
    const waiters = this.readsQueued;
    this.readsQueued = [];
    try {
      this.rawNode.readIndex(UTF8_ENCODER.encode(ctx));
    } catch (err) {
      for (const w of waiters) {
        clearTimeout(w.timer);
        w.reject(this.proposalError(err));
      }
      return;
    }
    this.readRounds.set(ctx, waiters);
    // A round whose request was lost (no leader, leader change) is retried on a timer.
    const retry = setTimeout(
      () => {
        const pending = this.readRounds.get(ctx);
        if (!pending) return;
        this.readRounds.delete(ctx);
        this.readsQueued.unshift(...pending);
        this.startReadRound();
      },
      Math.max(3 * this.opts.tickMs * this.opts.heartbeatTicks, 200),
    );
    retry.unref();
    this.schedule();
  }

  private dropReadWaiter(w: ReadWaiter): void {
    this.readsQueued = this.readsQueued.filter((x) => x !== w);
    for (const list of this.readRounds.values()) {
      const i = list.indexOf(w);
      if (i >= 0) list.splice(i, 1);
    }
    for (const c of this.readsConfirmed) {
      const i = c.waiters.indexOf(w);
      if (i >= 0) c.waiters.splice(i, 1);
    }
  }

  private *allReadWaiters(): Iterable<ReadWaiter> {
    yield* this.readsQueued;
    for (const list of this.readRounds.values()) yield* list;
    for (const c of this.readsConfirmed) yield* c.waiters;
  }

  /** Proposes a membership change and resolves with the new ConfState once it is applied here. */
  changeMembership(changes: ConfChangeSingle[], address?: string): Promise<ConfState> {
    this.assertAccepting();
    const token = `${this.clientId}/${++this.seq}`;
    const context = encodeMemberContext({ address, token });
    const cc: AnyConfChange =
      changes.length === 1
        ? { kind: 'v1', type: changes[0]!.type, nodeId: changes[0]!.nodeId, context, id: 0 }
        : { kind: 'v2', transition: 'ConfChangeTransitionAuto', changes, context };
    return new Promise<ConfState>((resolve, reject) => {
      try {
        this.rawNode.proposeConfChange(cc);
      } catch (err) {
        reject(this.proposalError(err));
        return;
      }
      const timer = setTimeout(() => {
        this.confWaiters.delete(token);
        reject(
          new CommandError(
            'timeout',
            `membership change not applied within ${this.opts.requestTimeoutMs} ms (another change may be pending; check 'member list')`,
          ),
        );
      }, this.opts.requestTimeoutMs);
      this.confWaiters.set(token, { resolve, reject, timer });
      this.schedule();
    });
  }

  campaign(): void {
    this.assertRunning();
    this.rawNode.campaign();
    this.schedule();
  }

  transferLeadership(to: number): void {
    this.assertRunning();
    this.rawNode.transferLeader(to);
    this.schedule();
  }

  /**
   * The graceful part of a stop (stop() follows): new requests are refused from now on (see
   * assertAccepting); a leader hands leadership on; then the requests in flight get up to an
   * election timeout to finish, so a client sees a refusal it can send elsewhere rather than
   * a write whose outcome is unknown.
   */
  async drain(isConnected: (id: number) => boolean): Promise<void> {
    if (this.stopped) return;
    this.draining = true;
    await this.handOffLeadership(isConnected);
    const inFlight = () => this.waiters.size + this.confWaiters.size + [...this.allReadWaiters()].length;
    if (inFlight() === 0) return;
    this.log.info(`stopping: waiting for ${inFlight()} requests in flight to finish`);
    if (!(await pollUntil(() => inFlight() === 0 || this.stopped, this.electionTimeoutMs()))) {
      this.log.warn(`stopping with ${inFlight()} requests still in flight (they fail as unavailable)`);
    }
  }

  /**
   * As etcd's server does before it stops: a leader hands leadership to the voter with the
   * longest log among those it is connected to, so the cluster goes on at once rather than
   * after an election timeout with no leader. Resolves with the new leader, or undefined when
   * this node does not lead, no voter can take over, or none did within an election timeout
   * (raft gives up on the transfer then too).
   */
  private async handOffLeadership(isConnected: (id: number) => boolean): Promise<number | undefined> {
    const r = this.rawNode.raft;
    if (this.stopped || this.removed || r.state !== 'StateLeader') return undefined;
    let to = NONE;
    let best = -1;
    for (const id of r.trk.confState().voters) {
      const match = r.trk.progress.get(id)?.match ?? -1;
      if (id !== this.id && isConnected(id) && match > best) [to, best] = [id, match];
    }
    if (to === NONE) {
      this.log.info('stopping as leader: no connected voter to hand leadership to');
      return undefined;
    }
    this.log.info(
      `stopping as leader: handing leadership to ${to} first (its log at ${best} of ${r.raftLog.lastIndex()})`,
    );
    const started = performance.now();
    this.transferLeadership(to);
    const tookOver = () => r.state !== 'StateLeader' && r.lead !== NONE && r.lead !== this.id;
    // Waiting ends early if the transferee goes away too (the whole cluster is stopping, say).
    await pollUntil(() => tookOver() || !isConnected(to) || this.stopped, this.electionTimeoutMs());
    if (tookOver()) {
      this.log.info(`${r.lead} took over leadership in ${Math.round(performance.now() - started)} ms`);
      return r.lead;
    }
    if (!isConnected(to)) this.log.info(`${to} disconnected before taking over leadership; stopping anyway`);
    else {
      this.log.warn(
        `${to} did not take over leadership within ${this.electionTimeoutMs()} ms; stopping anyway`,
      );
    }
    return undefined;
  }

  forgetLeader(): void {
    this.assertRunning();
    this.rawNode.forgetLeader();
    this.schedule();
  }

  /** Takes a snapshot of the applied state now and compacts the log behind it. */
  async snapshotNow(): Promise<{ index: number; term: number }> {
    this.assertRunning();
    const snap = await this.takeSnapshot();
    if (!snap) throw new CommandError('unavailable', 'nothing applied since the last snapshot');
    return snap;
  }

  /**
   * assertRunning, and while a graceful stop drains the node, a refusal: the request did not
   * run, and goes to the leader the refusal names (or, none known, anywhere else).
   */
  private assertAccepting(): void {
    this.assertRunning();
    if (!this.draining) return;
    const lead = this.rawNode.raft.lead;
    if (lead !== NONE && lead !== this.id) {
      throw new CommandError(
        'not_leader',
        `node ${this.id} is stopping: send requests to node ${lead}`,
        lead,
      );
    }
    throw new CommandError('no_leader', `node ${this.id} is stopping and knows no other leader yet`);
  }

  private assertRunning(): void {
    if (this.stopped) throw new CommandError('unavailable', 'the node is shutting down');
    if (this.removed) throw new CommandError('unavailable', 'this node was removed from the cluster');
  }

  private proposalError(err: unknown): Error {
    if (err instanceof RaftError) {
      const lead = this.rawNode.raft.lead;
      if (lead === NONE) return new CommandError('no_leader', 'no leader at the moment: retry shortly');
      return new CommandError(
        'proposal_dropped',
        `${err.message} (leader is ${lead}; a transfer may be in progress)`,
        lead,
      );
    }
    return err instanceof Error ? err : new Error(String(err));
  }

  // ---- The Ready loop -----------------------------------------------------------------

  /**
   * Runs the Ready loop soon, once, however many times it is asked to. Soon is once the
   * I/O callbacks of this turn of the event loop have run (setImmediate): the client frames
   * and peer frames that arrived together go into one Ready — one batch entry, one MsgApp
   * per follower, one write. Nothing waits for the disk any more to gather them: run after
   * each callback instead (a microtask), a loaded leader sent many more, smaller MsgApps
   * (interleaved rounds at 1,024 clients, against the synchronous loop: p99 50.2 vs 47.0 ms
   * this way, 41.9 vs 43.0 ms once per turn; BENCHMARKS.md).
   */
  schedule(): void {
    if (this.processing || this.stopped) return;
    this.processing = true;
    setImmediate(() => {
      this.processReadies()
        .catch((err: unknown) => this.fatal(err))
        .finally(() => {
          this.processing = false;
        });
    });
  }

  private fatal(err: unknown): void {
    if (this.failed) return;
    this.failed = true;
    const e = err instanceof Error ? err : new Error(String(err));
    this.log.error(`fatal error in the Ready loop: ${e.stack ?? e.message}`);
    this.stopped = true;
    if (this.ticker) clearInterval(this.ticker);
    this.opts.onFatal(e);
  }

  private async processReadies(): Promise<void> {
    this.lastYieldAt = Date.now();
    for (;;) {
      this.flushProposals();
      if (this.stopped || !this.rawNode.hasReady()) break;
      const rd = this.rawNode.ready();
      this.noteStateChanges(rd);
      let append: Message | undefined;
      let apply: Message | undefined;
      const peers: Message[] = [];
      for (const m of rd.messages) {
        if (m.to === LOCAL_APPEND_THREAD) append = m;
        else if (m.to === LOCAL_APPLY_THREAD) apply = m;
        else peers.push(m);
      }
      // A leader's MsgApps go at once, so the followers' fsyncs overlap its own. Messages
      // that need not (commit indexes, heartbeats) leave once this turn's callbacks have run,
      // just before the answers to the clients this Ready applies for.
      this.send(peers, rd.mustSync && this.rawNode.raft.state === 'StateLeader');
      // The write starts now (the append thread begins at once when idle): its fdatasync
      // runs on the libuv pool while the committed entries are applied below.
      if (append) this.appendThread.push(append, rd.mustSync);
      if (apply) {
        for (const e of apply.entries) this.applyEntry(e);
        for (const r of apply.responses) this.rawNode.step(r);
      }
      if (this.opts.events?.ready && this.wantsEvents('ready')) this.opts.events.ready(rd);
      if (this.replaying !== undefined && this.rawNode.raft.raftLog.applied >= this.replaying.to) {
        const { from, to, startedAt } = this.replaying;
        this.replaying = undefined;
        this.log.info(
          `replayed the log to index ${to} (${to - from} entries) in ${Math.round(performance.now() - startedAt)} ms`,
        );
      }
      for (const rs of rd.readStates) this.onReadState(UTF8_DECODER.decode(rs.requestCtx), rs.index);
      this.serveConfirmedReads();
      this.startReadRound();
      if (this.snapshotDue() && this.snapshotInFlight === undefined) {
        // The state is captured now; the loop goes on while it is written.
        this.takeSnapshot().catch((err: unknown) => this.fatal(err));
      }
      if (this.removed) {
        this.opts.onRemoved();
        return;
      }
      // Readys follow one another without waiting for anything; let timers (ticks) and
      // sockets run after 20 ms of them.
      if (Date.now() - this.lastYieldAt > 20) {
        this.lastYieldAt = Date.now();
        await new Promise((r) => setImmediate(r));
      }
    }
  }

  /** The append thread's write of one batch of MsgStorageAppends. */
  private async persist(req: SaveRequest): Promise<void> {
    const started = req.mustSync ? process.hrtime.bigint() : 0n;
    await this.opts.storage.save(req);
    if (req.mustSync)
      this.opts.metrics?.walFsyncSeconds.observe(Number(process.hrtime.bigint() - started) / 1e9);
  }

  /**
   * What waited for a write to be durable: this node's own acks and the storage's response
   * are stepped in, acks and votes for peers leave at once.
   */
  private release(responses: Message[]): void {
    if (this.stopped) return;
    const peers: Message[] = [];
    for (const m of responses) {
      if (m.to !== this.id) {
        peers.push(m);
        continue;
      }
      try {
        this.rawNode.step(m);
      } catch (err) {
        if (!(err instanceof RaftError)) throw err;
        this.log.debug(`dropped ${m.type} from the append thread: ${err.message}`);
      }
    }
    this.send(peers, true);
    this.schedule();
  }

  private wantsEvents(kind: 'ready' | 'message' | 'apply'): boolean {
    return this.opts.wantsEvents?.(kind) ?? true;
  }

  private send(all: Message[], now = false): void {
    this.deliver(this.commitHold.filter(this.withoutSnapshotsBeforeMembership(all)), now);
  }

  private deliver(msgs: Message[], now: boolean): void {
    if (msgs.length === 0) return;
    for (const m of msgs) this.stats.sent.set(m.type, (this.stats.sent.get(m.type) ?? 0) + 1);
    this.opts.transport.send(msgs);
    if (now) this.opts.transport.flushNow?.();
    else this.opts.transport.flushSoon?.();
    const ev = this.opts.events?.message;
    if (ev && this.wantsEvents('message')) for (const m of msgs) ev(m);
  }

  /**
   * Holds back a MsgSnap whose snapshot was taken before its peer joined: the peer would
   * ignore it (it is not in the snapshot's configuration) and, as long as no write came to
   * bring the next snapshot, be sent it again forever — a member added to a quiet cluster
   * whose log was compacted never caught up. The snapshot is reported failed (raft probes
   * the peer again) and a new one taken now, from the applied state, which includes the
   * configuration that added the peer.
   */
  private withoutSnapshotsBeforeMembership(msgs: Message[]): Message[] {
    if (!msgs.some(snapshotPredatesPeer)) return msgs;
    return msgs.filter((m) => {
      if (!snapshotPredatesPeer(m)) return true;
      queueMicrotask(() => this.reportSnapshot(m.to, false));
      if (this.snapshotInFlight === undefined) {
        this.log.info(
          `snapshot at index ${m.snapshot!.metadata.index} predates peer ${m.to}'s membership: taking a new one for it`,
        );
        this.takeSnapshot().catch((err: unknown) => this.fatal(err));
      }
      return false;
    });
  }

  private noteStateChanges(rd: Ready): void {
    const ss = rd.softState;
    if (!ss) return;
    const term = this.rawNode.raft.term;
    if (ss.raftState !== this.lastState) {
      if (this.lastState === 'StateLeader') this.commitHold.clear();
      this.lastState = ss.raftState;
      this.opts.events?.election?.(term, roleOf(ss.raftState));
    }
    if (ss.lead !== this.lastLeader) {
      this.lastLeader = ss.lead;
      if (ss.lead !== NONE) {
        this.stats.leaderChanges++;
        this.campaignInTicks = 0;
      }
      this.log.info(
        ss.lead === NONE ? `lost leader at term ${term}` : `leader is ${ss.lead} at term ${term}`,
      );
      this.opts.events?.leader?.(ss.lead, term);
      // Proposals forwarded to a leader that is gone may be lost: propose what is still
      // unanswered again to the new one. Applying is at most once per request id, so a
      // proposal that did survive is not applied twice; its first application answers.
      if (ss.lead !== NONE) {
        const queued = new Set(this.proposalBatch);
        for (const w of this.waiters.all()) if (!queued.has(w)) this.proposalBatch.push(w);
      }
      // Likewise the read rounds.
      for (const [ctx, waiters] of this.readRounds) {
        this.readRounds.delete(ctx);
        this.readsQueued.unshift(...waiters);
      }
    }
  }

  /**
   * Replaces the state machine with a snapshot from the leader, once it is on disk and before
   * raft hears so: in slices (the loop serves reads of the state it replaces, and sockets,
   * meanwhile); raft hands out no committed entries to apply until it is installed.
   */
  private async installSnapshot(snap: Snapshot): Promise<void> {
    await this.opts.kv.restoreSliced(snap.data);
    this.stats.snapshots.restored++;
    this.restartSnapshotCount();
    this.refreshPeers();
    this.log.info(
      `applied snapshot at index ${snap.metadata.index} (term ${snap.metadata.term}) from the leader`,
    );
    this.opts.events?.snapshot?.('restored', snap.metadata.index, snap.metadata.term);
  }

  private applyEntry(e: Entry): void {
    this.writesSinceSnapshot += writesIn(e);
    this.bytesSinceSnapshot += e.data.length;
    if (e.type === 'EntryNormal') {
      if (e.data.length === 0) return;
      try {
        this.opts.kv.apply(e.index, e.data, this.answer);
      } catch (err) {
        // An entry we cannot decode was proposed by a newer or broken client: skip it
        // on every node alike rather than stop the cluster.
        this.log.error(`skipping undecodable entry ${e.term}/${e.index}: ${(err as Error).message}`);
        return;
      }
      if (this.opts.events?.apply && this.wantsEvents('apply')) this.opts.events.apply(e);
      return;
    }
    this.applyConfChangeEntry(e);
  }

  /** Answers the request waiting on this node, if any, for each command applied. */
  private readonly answer = (clientId: string, seq: number, result: KvResult): void => {
    const w = this.waiters.take(clientId, seq);
    if (w) {
      this.stats.proposals.ok++;
      this.opts.metrics?.writeSeconds.observe((performance.now() - w.filedAt) / 1000);
      w.listener.resolve(result, this.rawNode.raft.term);
    }
  };

  private applyConfChangeEntry(e: Entry): void {
    const cc = decodeConfChangeEntry(e);
    // Replaying the log from the start (a restart without a snapshot, or a joiner) passes
    // through configurations that do not name this node yet — the bootstrap adds members
    // one by one. Only leaving a configuration it belonged to is a removal.
    const wasMember = this.isMember(this.rawNode.raft.trk.confState());
    const cs = this.rawNode.applyConfChange(cc);
    const context = decodeMemberContext(cc.context);
    const changes = cc.kind === 'v1' ? [{ type: cc.type, nodeId: cc.nodeId }] : cc.changes;
    for (const ch of changes) {
      if (ch.type === 'ConfChangeRemoveNode') this.opts.kv.removeMember(ch.nodeId);
      else {
        const known = this.opts.kv.members.get(ch.nodeId);
        const address = context.address ?? known?.address ?? this.opts.initialPeers.get(ch.nodeId) ?? '';
        this.opts.kv.setMember(ch.nodeId, address, ch.type === 'ConfChangeAddLearnerNode');
      }
    }
    // Learners promoted or demoted implicitly (joint transitions) are reflected from the ConfState.
    for (const id of cs.voters) {
      const m = this.opts.kv.members.get(id);
      if (m?.learner) this.opts.kv.setMember(id, m.address, false);
    }
    this.refreshPeers();
    const describe = describeEntry(e);
    this.log.info(
      `applied conf change ${describe} → voters=(${cs.voters.join(' ')}) learners=(${cs.learners.join(' ')})`,
    );
    this.opts.events?.confchange?.(describe, cs);
    if (context.token) {
      const w = this.confWaiters.get(context.token);
      if (w) {
        this.confWaiters.delete(context.token);
        clearTimeout(w.timer);
        w.resolve(cs);
      }
    }
    if (wasMember && !this.isMember(cs)) {
      this.log.warn('this node was removed from the cluster; stopping');
      this.removed = true;
    }
  }

  private isMember(cs: ConfState): boolean {
    return (
      cs.voters.includes(this.id) || cs.learners.includes(this.id) || cs.votersOutgoing.includes(this.id)
    );
  }

  private refreshPeers(): void {
    const peers = new Map<number, string>();
    for (const [id, m] of this.opts.kv.members) if (id !== this.id && m.address) peers.set(id, m.address);
    // Keep addresses of peers we were started with until membership names them.
    for (const [id, a] of this.opts.initialPeers)
      if (id !== this.id && !peers.has(id) && this.opts.kv.members.size === 0) peers.set(id, a);
    // A peer that just left the membership keeps its connection for a while: the messages
    // already queued for it carry the commit index that tells it it was removed (dropping
    // them leaves it campaigning forever), and a log replay that passes through a smaller
    // configuration should not tear down connections it re-adds a moment later.
    for (const [id, address] of this.peerAddresses) {
      if (peers.has(id) || this.departing.has(id)) continue;
      const timer = setTimeout(() => {
        this.departing.delete(id);
        if (!this.stopped) this.refreshPeers();
      }, this.departGraceMs());
      timer.unref();
      this.departing.set(id, { address, timer });
    }
    for (const [id, d] of this.departing) {
      if (peers.has(id)) {
        clearTimeout(d.timer);
        this.departing.delete(id);
      }
    }
    this.peerAddresses = new Map(peers);
    for (const [id, d] of this.departing) peers.set(id, d.address);
    this.opts.transport.setPeers(peers);
  }

  private departGraceMs(): number {
    return 2 * this.electionTimeoutMs();
  }

  private electionTimeoutMs(): number {
    return this.opts.electionTicks * this.opts.tickMs;
  }

  private onReadState(ctx: string, index: number): void {
    const waiters = this.readRounds.get(ctx);
    if (!waiters) return;
    this.readRounds.delete(ctx);
    this.readsConfirmed.push({ index, waiters });
  }

  private serveConfirmedReads(): void {
    const applied = this.rawNode.raft.raftLog.applied;
    const still: typeof this.readsConfirmed = [];
    for (const c of this.readsConfirmed) {
      if (c.index <= applied) {
        for (const w of c.waiters) {
          clearTimeout(w.timer);
          w.resolve();
        }
      } else still.push(c);
    }
    this.readsConfirmed = still;
  }

  /**
   * How many entries up to `last` it takes to hold its last `writes` writes (fewer if the
   * log is shorter), stopping short of an entry that would take them past `maxBytes` of data.
   */
  private entriesHolding(last: number, writes: number, maxBytes: number): number {
    const ms = this.opts.storage.storage;
    // Every entry holds at least one write, so no more than `writes` entries are needed.
    const from = Math.max(ms.firstIndex(), last - writes + 1);
    if (writes <= 0 || from > last) return 0;
    const entries = ms.entries(from, last + 1, Number.POSITIVE_INFINITY);
    let held = 0;
    let bytes = 0;
    for (let i = entries.length - 1; i >= 0; i--) {
      bytes += entries[i]!.data.length;
      if (bytes > maxBytes) return entries.length - 1 - i;
      held += writesIn(entries[i]!);
      if (held >= writes) return entries.length - i;
    }
    return entries.length;
  }

  /** A snapshot was taken or installed: the next one is counted from here. */
  private restartSnapshotCount(): void {
    this.writesSinceSnapshot = 0;
    this.bytesSinceSnapshot = 0;
    this.snapshotPhase = 0;
  }

  /**
   * Whether enough has been applied since the last snapshot to take the next: snapshotEvery
   * writes or snapshotBytes of log, and in either case at least as many bytes of log as the
   * last snapshot held. A snapshot encodes and writes the whole state, so without that floor
   * a large state would be encoded again every snapshotEvery writes, however few bytes they
   * carried (a 140 MB state every 100,000 writes of 256 bytes, say); with it, snapshots cost
   * at most about one byte encoded per byte written, while the log a restart replays (and
   * memory holds) grows to about one state's worth at most, or one period if that is more.
   */
  private snapshotDue(): boolean {
    if (this.bytesSinceSnapshot < this.opts.storage.storage.snapshotBytes) return false;
    const period = 1 + this.snapshotPhase;
    return (
      this.writesSinceSnapshot >= this.opts.snapshotEvery * period ||
      this.bytesSinceSnapshot >= this.opts.snapshotBytes * period
    );
  }

  /**
   * Writes a new snapshot at `applied` (the configuration and the catch-up entries kept
   * behind it are those of now) and compacts the log behind it.
   */
  private snapshotWriter(applied: number): (data: Uint8Array) => Promise<Snapshot> {
    const cs = this.rawNode.raft.trk.confState();
    const catchUpEntries = this.entriesHolding(
      applied,
      this.opts.snapshotCatchUpWrites,
      Math.floor(this.opts.snapshotBytes / 4),
    );
    return (data) => this.opts.storage.createSnapshot(applied, cs, data, catchUpEntries);
  }

  /**
   * The current snapshot's file was found damaged when it was to be sent: no follower behind
   * the log can be caught up until another replaces it, and in a quiet cluster none would
   * come. Takes one now — at the applied index, or, if nothing was applied since, the same
   * snapshot again (the state is the one it was taken of).
   */
  replaceDamagedSnapshot(metadata: SnapshotMetadata): void {
    if (this.stopped) return;
    this.log.warn(`the snapshot file at index ${metadata.index} is damaged: taking a snapshot to replace it`);
    this.takeSnapshot(metadata).catch((err: unknown) => this.fatal(err));
  }

  /**
   * Captures the applied KV state at once (it must match the applied index) and has it
   * written; resolves when the snapshot is durable and the log compacted. A second call
   * waits for the snapshot in flight first. Nothing applied since the current snapshot, it
   * takes none — unless `replacing` that very snapshot, whose file is then written again.
   */
  private async takeSnapshot(
    replacing?: SnapshotMetadata,
  ): Promise<{ index: number; term: number } | undefined> {
    while (this.snapshotInFlight !== undefined) await this.snapshotInFlight.catch(() => undefined);
    // Committed entries are applied and raft told so in one go: the state is exactly the
    // entries up to raftLog.applied, all of them in this node's log (raft hands out no others).
    const applied = this.rawNode.raft.raftLog.applied;
    const current = this.opts.storage.storage.snapshotMetadata;
    const rewrite = replacing !== undefined && applied === current.index && replacing.index === current.index;
    if (applied <= current.index && !rewrite) return undefined;
    const write = rewrite
      ? (data: Uint8Array) => this.opts.storage.rewriteSnapshot(current, data)
      : this.snapshotWriter(applied);
    // Captured now, at `applied`; encoded in slices between Readys, then written.
    const started = process.hrtime.bigint();
    const state = this.opts.kv.capture();
    const previousBytes = this.opts.storage.storage.snapshotBytes;
    const run = encodeCapture(state, undefined, previousBytes).then(write);
    this.restartSnapshotCount();
    this.snapshotInFlight = run;
    try {
      const snap = await run;
      this.stats.snapshots.created++;
      this.opts.metrics?.snapshotSeconds.observe(Number(process.hrtime.bigint() - started) / 1e9);
      this.log.info(
        `${rewrite ? 'wrote the damaged snapshot file again' : 'created snapshot'} at index ${snap.metadata.index} (term ${snap.metadata.term})`,
      );
      this.opts.events?.snapshot?.('created', snap.metadata.index, snap.metadata.term);
      return { index: snap.metadata.index, term: snap.metadata.term };
    } catch (err) {
      // The leader's snapshot overtook ours while it was written: nothing is lost.
      if (err !== ErrSnapOutOfDate) throw err;
      this.log.info(`dropped the snapshot at index ${applied}: a newer one arrived meanwhile`);
      return undefined;
    } finally {
      this.snapshotInFlight = undefined;
    }
  }
}

/** Writes an entry carries, as the snapshot options count them: a batch's, else one. */
function writesIn(e: Entry): number {
  return e.type === 'EntryNormal' ? kvCommandCount(e.data) : 1;
}

/**
 * Proposals waiting for their entries, by request id. Most are this node's own requests
 * (no client id given): those are filed by seq alone, so a proposal and every applied entry
 * cost a number lookup, not a `clientId#seq` string built and hashed per entry on every
 * node. Every waiter gets the same timeout when it is filed, so the order of each — own
 * requests by seq, which the driver assigns as they are filed, and named ones by insertion —
 * is deadline order.
 */
class Waiters {
  /** This node's own requests, numbered by the driver in order (see SeqQueue). */
  private readonly own = new SeqQueue<Waiter>();
  private readonly named = new Map<string, Waiter>();

  constructor(private readonly ownClientId: string) {}

  get(clientId: string, seq: number): Waiter | undefined {
    return clientId === this.ownClientId ? this.own.get(seq) : this.named.get(requestKey({ clientId, seq }));
  }

  add(w: Waiter): void {
    if (w.clientId === this.ownClientId) this.own.add(w.seq, w);
    else this.named.set(requestKey(w), w);
  }

  /** Removes and returns the waiter of a request, if any. */
  take(clientId: string, seq: number): Waiter | undefined {
    if (clientId === this.ownClientId) return this.own.take(seq);
    // Building the key costs a string per entry: skip it when no named request waits.
    if (this.named.size === 0) return undefined;
    const key = requestKey({ clientId, seq });
    const w = this.named.get(key);
    if (w) this.named.delete(key);
    return w;
  }

  /** Removes `w` if it is still the waiter filed for its request. */
  remove(w: Waiter): boolean {
    if (this.get(w.clientId, w.seq) !== w) return false;
    this.take(w.clientId, w.seq);
    return true;
  }

  /** Removes and returns the waiters whose deadline is at or before `now`. */
  takeExpired(now: number): Waiter[] {
    const out: Waiter[] = [];
    for (let w = this.own.oldest(); w !== undefined && w.deadline <= now; w = this.own.oldest()) {
      this.own.take(w.seq);
      out.push(w);
    }
    for (const [k, w] of this.named) {
      if (w.deadline > now) break;
      this.named.delete(k);
      out.push(w);
    }
    return out;
  }

  all(): Waiter[] {
    return [...this.own.values(), ...this.named.values()];
  }

  get size(): number {
    return this.own.size + this.named.size;
  }

  clear(): void {
    this.own.clear();
    this.named.clear();
  }
}
