// The local append thread of etcd's asynchronous storage writes, for one node process.
// With Config.asyncStorageWrites the core hands each Ready's writes over as a
// MsgStorageAppend (entries, HardState, snapshot) whose `responses` — this node's own append
// ack, a follower's MsgAppResp, a vote — may go only once the write is on disk. The Ready
// loop does not wait for the disk: a leader goes on proposing, sending MsgApps and
// heartbeats while its own fsync runs, and a follower goes on appending.
//
// Writes are persisted in order, one at a time; the messages that arrive while one is on
// its way go together in the next (entries, the newest HardState, one fdatasync): group
// commit, as the synchronous loop had it. A message with a snapshot starts a write of its
// own, and the snapshot is installed in the state machine before that write's responses go
// (as etcd's applications do when they persist one).

import { type Entry, type HardState, isEmptyHardState, type Message, type Snapshot } from '../raft/types.js';
import type { SaveRequest } from './storage/disk-storage.js';

export interface AppendThreadHost {
  /** Persists one write (DiskStorage.save): resolves once it is durable if it must sync. */
  save(req: SaveRequest): Promise<void>;
  /** Installs the snapshot a write just persisted into the state machine. */
  installSnapshot(snap: Snapshot): Promise<void>;
  /** The responses of the messages now persisted, in the order they were pushed. */
  release(responses: Message[]): void;
  /** A write failed: nothing after it is persisted or released. */
  fail(err: unknown): void;
}

/** A MsgStorageAppend and whether its Ready must be synced (the core's Ready.mustSync). */
interface Write {
  m: Message;
  mustSync: boolean;
}

export class AppendThread {
  private queue: Write[] = [];
  private running = false;
  private failed = false;
  /** Messages pushed, and messages persisted and released, since the start. */
  private pushed = 0;
  private done = 0;
  private barriers: { upTo: number; resolve: () => void }[] = [];

  constructor(private readonly host: AppendThreadHost) {}

  /**
   * Queues a MsgStorageAppend, with its Ready's mustSync (entries, or a new term or vote).
   * With no write in flight its write starts before this returns (so its fdatasync runs
   * while the caller applies committed entries).
   */
  push(m: Message, mustSync: boolean): void {
    if (this.failed) return;
    this.queue.push({ m, mustSync });
    this.pushed++;
    if (!this.running) void this.run();
  }

  /**
   * Resolves once every message pushed so far is persisted — or at once after a write
   * failed, when nothing more will be (the node is stopping).
   */
  persisted(): Promise<void> {
    if (this.failed || this.done >= this.pushed) return Promise.resolve();
    return new Promise((resolve) => this.barriers.push({ upTo: this.pushed, resolve }));
  }

  private async run(): Promise<void> {
    this.running = true;
    try {
      while (this.queue.length > 0) {
        const batch = this.takeBatch();
        const req = this.saveRequest(batch);
        if (req) await this.host.save(req);
        const snap = batch[0]!.m.snapshot;
        if (snap) await this.host.installSnapshot(snap);
        this.done += batch.length;
        const responses = batch.length === 1 ? batch[0]!.m.responses : batch.flatMap((w) => w.m.responses);
        this.host.release(responses);
        this.resolveBarriers();
      }
    } catch (err) {
      this.failed = true;
      this.queue = [];
      for (const b of this.barriers) b.resolve();
      this.barriers = [];
      this.host.fail(err);
    } finally {
      this.running = false;
    }
  }

  /** The queued messages up to (not including) the next one with a snapshot; that one alone. */
  private takeBatch(): Write[] {
    let end = 1;
    if (!this.queue[0]!.m.snapshot) while (end < this.queue.length && !this.queue[end]!.m.snapshot) end++;
    return this.queue.splice(0, end);
  }

  /** What the batch writes, or undefined when it writes nothing (only responses wait). */
  private saveRequest(batch: Write[]): SaveRequest | undefined {
    let entries: Entry[] = batch[0]!.m.entries;
    let hardState: HardState | undefined;
    let mustSync = false;
    for (let i = 0; i < batch.length; i++) {
      const { m } = batch[i]!;
      if (i > 0) entries = appendEntries(entries, m.entries);
      // The HardState travels in the message's fields, all zero when unchanged.
      const hs = { term: m.term, vote: m.vote, commit: m.commit };
      if (!isEmptyHardState(hs)) hardState = hs;
      mustSync ||= batch[i]!.mustSync;
    }
    const snapshot = batch[0]!.m.snapshot;
    if (entries.length === 0 && hardState === undefined && snapshot === undefined) return undefined;
    return { entries, ...(hardState ? { hardState } : {}), ...(snapshot ? { snapshot } : {}), mustSync };
  }

  private resolveBarriers(): void {
    if (this.barriers.length === 0) return;
    const still = [];
    for (const b of this.barriers) {
      if (b.upTo <= this.done) b.resolve();
      else still.push(b);
    }
    this.barriers = still;
  }
}

/**
 * `next` appended to `acc` as a log would take it: entries of `next` replace those of `acc`
 * from their first index on (a follower's log truncated by a newer leader's entries between
 * two writes), so the result is contiguous. `acc` is not modified.
 */
export function appendEntries(acc: Entry[], next: Entry[]): Entry[] {
  if (next.length === 0) return acc;
  if (acc.length === 0) return next;
  const keep = Math.max(0, Math.min(acc.length, next[0]!.index - acc[0]!.index));
  return [...acc.slice(0, keep), ...next];
}
