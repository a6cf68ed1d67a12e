// Node: an event-driven handle on a RawNode for a host process, in the spirit of etcd's
// raft.Node but for a single-threaded runtime. It owns no timers and does no I/O: the
// host still calls tick() on its clock and sends, persists and applies what Readys say.
//
// Contract
// - Input: tick(), campaign(), propose(), proposeConfChange(), step(), transferLeadership(),
//   forgetLeader(), readIndex(), reportUnreachable(), reportSnapshot(), applyConfChange().
//   Each runs synchronously to completion on the underlying RawNode.
// - Output: Readys, through either `await ready()` or an `onReady(listener)` subscription
//   (one consumer at a time). A Ready is cut in a microtask queued by the input, so
//   everything done synchronously in one turn lands in the same Ready; the order of
//   delivery is fully determined by the order of calls.
// - Sync mode (the default): at most one Ready is outstanding. The host persists
//   hardState/entries/snapshot, sends messages, applies committed entries, then calls
//   advance(); only then is the next Ready delivered. ready() while one is outstanding
//   throws. With config.asyncStorageWrites, Readys flow without advance() (which then
//   throws): storage work travels as messages to LOCAL_APPEND_THREAD/LOCAL_APPLY_THREAD,
//   whose responses the host steps back in.
// - Errors: propose() and proposeConfChange() throw ErrProposalDropped synchronously when
//   raft drops the proposal. step() drops what raft refuses (unknown peers, local message
//   types from the network, forwarded proposals it cannot take), like a lossy network.
// - stop(): a pending ready() and every later one reject with ErrStopped; later input
//   throws ErrStopped, except tick(), report*() and advance(), which are notifications
//   that may race with shutdown and are ignored. status() keeps working.
import {
  ErrProposalDropped,
  ErrStepLocalMsg,
  ErrStepLocalResponseMsg,
  ErrStepPeerNotFound,
  RaftError,
} from './errors.js';
import type { Config } from './raft.js';
import { type Peer, RawNode, type SnapshotStatus, type Status } from './rawnode.js';
import type { Ready } from './ready.js';
import type { AnyConfChange, ConfState, Message } from './types.js';

/** Returned (as a rejection or a throw) by a Node after stop(). */
export const ErrStopped = new RaftError('raft: stopped');

export type ReadyListener = (rd: Ready) => void;

/** What step() drops instead of throwing: the network could have lost these anyway. */
const DROPPED_ON_STEP: ReadonlySet<RaftError> = new Set([
  ErrProposalDropped,
  ErrStepPeerNotFound,
  ErrStepLocalMsg,
  ErrStepLocalResponseMsg,
]);

interface Waiter {
  resolve(rd: Ready): void;
  reject(err: unknown): void;
}

export class Node {
  private readonly rn: RawNode;
  /** A Ready was handed out and advance() has not been called yet (sync mode only). */
  private outstanding = false;
  private waiter: Waiter | undefined;
  private listener: ReadyListener | undefined;
  private flushQueued = false;
  private stopped = false;

  /** Restarts from `config.storage`, or with `peers` starts a new cluster (storage must be empty). */
  constructor(config: Config, peers?: Peer[]) {
    this.rn = new RawNode(config);
    if (peers !== undefined) this.rn.bootstrap(peers);
  }

  tick(): void {
    if (this.stopped) return;
    this.rn.tick();
    this.wake();
  }

  campaign(): void {
    this.input(() => this.rn.campaign());
  }

  /** Throws ErrProposalDropped when there is no leader to take it, or the leader refuses it. */
  propose(data: Uint8Array): void {
    this.input(() => this.rn.propose(data));
  }

  /** Throws ErrProposalDropped like propose(); once committed, the host calls applyConfChange(). */
  proposeConfChange(cc: AnyConfChange): void {
    this.input(() => this.rn.proposeConfChange(cc));
  }

  /** Steps a message from a peer, or a response from a local storage thread. */
  step(m: Message): void {
    this.input(() => {
      try {
        this.rn.step(m);
      } catch (err) {
        if (!(err instanceof RaftError) || !DROPPED_ON_STEP.has(err)) throw err;
        this.rn.raft.logger.debug(`${this.rn.raft.id} dropped ${m.type} from ${m.from}: ${err.message}`);
      }
    });
  }

  transferLeadership(transferee: number): void {
    this.input(() => this.rn.transferLeader(transferee));
  }

  forgetLeader(): void {
    this.input(() => this.rn.forgetLeader());
  }

  /** The answer arrives in a later Ready's readStates, carrying `rctx`. */
  readIndex(rctx: Uint8Array): void {
    this.input(() => this.rn.readIndex(rctx));
  }

  reportUnreachable(id: number): void {
    if (this.stopped) return;
    this.rn.reportUnreachable(id);
    this.wake();
  }

  reportSnapshot(id: number, status: SnapshotStatus): void {
    if (this.stopped) return;
    this.rn.reportSnapshot(id, status);
    this.wake();
  }

  /** Applies a committed conf change; returns the resulting ConfState (to store with snapshots). */
  applyConfChange(cc: AnyConfChange): ConfState {
    return this.input(() => this.rn.applyConfChange(cc));
  }

  status(): Status {
    return this.rn.status();
  }

  /**
   * Resolves with the next Ready. Throws (synchronously) when another ready() is pending,
   * an onReady listener is registered, or, in sync mode, a Ready is still outstanding.
   */
  ready(): Promise<Ready> {
    if (this.stopped) return Promise.reject(ErrStopped);
    this.checkNoConsumer('ready()');
    if (this.outstanding) {
      throw new RaftError('raft: ready() called while a Ready is outstanding; call advance() first');
    }
    const p = new Promise<Ready>((resolve, reject) => {
      this.waiter = { resolve, reject };
    });
    this.wake();
    return p;
  }

  /**
   * Calls `listener` (from a microtask) with every Ready; in sync mode the next one comes
   * after advance(). Returns a function that unsubscribes. Throws after stop() or when
   * another consumer is registered.
   */
  onReady(listener: ReadyListener): () => void {
    if (this.stopped) throw ErrStopped;
    this.checkNoConsumer('onReady()');
    this.listener = listener;
    this.wake();
    return () => {
      if (this.listener === listener) this.listener = undefined;
    };
  }

  /** Tells the node the outstanding Ready is persisted, sent and applied (sync mode only). */
  advance(): void {
    if (this.stopped) return;
    if (this.rn.asyncStorageWrites) {
      throw new RaftError('raft: advance() must not be called when using asyncStorageWrites');
    }
    if (!this.outstanding) throw new RaftError('raft: advance() called without an outstanding Ready');
    this.outstanding = false;
    try {
      this.rn.advance();
    } finally {
      this.wake();
    }
  }

  /** Idempotent. A pending ready() rejects with ErrStopped; the listener is dropped. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.listener = undefined;
    const w = this.waiter;
    this.waiter = undefined;
    w?.reject(ErrStopped);
  }

  private input<T>(f: () => T): T {
    if (this.stopped) throw ErrStopped;
    // A raft step is not transactional: one that throws may still have produced output.
    try {
      return f();
    } finally {
      this.wake();
    }
  }

  private checkNoConsumer(caller: string): void {
    if (this.waiter) throw new RaftError(`raft: ${caller} called while a ready() is pending`);
    if (this.listener) throw new RaftError(`raft: ${caller} called while an onReady listener is registered`);
  }

  /** Queues one flush per turn when a consumer could take a Ready. */
  private wake(): void {
    if (this.flushQueued || this.outstanding || (!this.waiter && !this.listener)) return;
    this.flushQueued = true;
    queueMicrotask(() => this.flush());
  }

  private flush(): void {
    this.flushQueued = false;
    if (this.stopped || this.outstanding || (!this.waiter && !this.listener) || !this.rn.hasReady()) return;
    const rd = this.rn.ready();
    if (!this.rn.asyncStorageWrites) this.outstanding = true;
    const w = this.waiter;
    if (w) {
      this.waiter = undefined;
      w.resolve(rd);
      return;
    }
    this.listener!(rd);
    // Async mode has no advance() to trigger the next delivery.
    this.wake();
  }
}
