// A leader's commit-only MsgApps, held back for a few milliseconds.
//
// When a write commits, the core broadcasts an entry-less MsgApp to every follower it has
// sent the entries to, to tell it the new commit index (etcd's bcastAppend after
// maybeCommit). On the path of a write that message is pure overhead: the answer to the
// client does not wait for it, yet each one costs the leader a socket write, wakes the
// follower, runs a Ready there and brings back a MsgAppResp the leader reads and steps.
// With one client in flight that doubled the peer traffic of every put. The next write's
// MsgApp carries the commit index anyway (every MsgApp carries the leader's current one),
// so the host holds the commit-only message to a replicating follower and drops it when a
// MsgApp with entries goes to that follower first; if none does, it leaves after
// `holdMs` — how stale a quiet follower's commit index may get.
//
// The core is untouched: it still decides what to send and records the commit as sent
// (Progress.sentCommit); only the host's timing changes, as a slower network would.
// Not held:
//   - an entry-less MsgApp to a follower in StateProbe: that is how the leader finds
//     where the follower's log ends;
//   - the commit a follower is waiting for to answer its own clients: a proposal it
//     forwarded (awaitCommit with the index the leader appended it at) or a ReadIndex it
//     asked for (the MsgReadIndexResp passing through here names the index).

import type { Message } from '../raft/types.js';

/** How long a commit-only MsgApp may wait for a MsgApp with entries to carry its news. */
export const COMMIT_HOLD_MS = 5;

interface Held {
  msg: Message;
  /** When the follower's commit index first fell behind what the leader sent it. */
  since: number;
}

export class CommitHold {
  private readonly held = new Map<number, Held>();
  /** The highest commit index each follower has been sent (MsgApp or heartbeat). */
  private readonly known = new Map<number, number>();
  /** A commit index a follower waits for to answer its clients. */
  private readonly awaited = new Map<number, number>();
  private timer: NodeJS.Timeout | undefined;

  /**
   * @param release sends messages whose hold has run out (from a timer callback)
   * @param isReplicating whether the leader is pipelining entries to that follower
   */
  constructor(
    private readonly release: (msgs: Message[]) => void,
    private readonly isReplicating: (id: number) => boolean,
    private readonly holdMs = COMMIT_HOLD_MS,
  ) {}

  /** Messages about to leave: returns those to send now, in order, keeping the rest. */
  filter(msgs: readonly Message[]): Message[] {
    const out: Message[] = [];
    for (const m of msgs) {
      switch (m.type) {
        case 'MsgApp':
          if (m.entries.length === 0 && this.mayHold(m)) {
            this.hold(m);
            continue;
          }
          this.held.delete(m.to);
          this.noteSent(m);
          break;
        case 'MsgHeartbeat':
          this.noteSent(m);
          break;
        case 'MsgReadIndexResp':
          this.expectCommit(m.to, m.index, out);
          break;
      }
      out.push(m);
    }
    return out;
  }

  /**
   * Follower `id` answers a client once it learns that `index` is committed (the leader
   * appended its forwarded proposal there): its commit-only message then leaves at once.
   */
  awaitCommit(id: number, index: number): void {
    const out: Message[] = [];
    this.expectCommit(id, index, out);
    if (out.length > 0) this.release(out);
  }

  /** Forgets everything held (this node stopped leading, or is stopping). */
  clear(): void {
    this.held.clear();
    this.known.clear();
    this.awaited.clear();
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private mayHold(m: Message): boolean {
    if (this.holdMs <= 0 || !this.isReplicating(m.to)) return false;
    const awaited = this.awaited.get(m.to);
    return awaited === undefined || m.commit < awaited;
  }

  private hold(m: Message): void {
    const prior = this.held.get(m.to);
    // The follower has been behind since the first message held, not the latest.
    this.held.set(m.to, { msg: m, since: prior?.since ?? performance.now() });
    this.arm();
  }

  private noteSent(m: Message): void {
    if (m.commit > (this.known.get(m.to) ?? 0)) this.known.set(m.to, m.commit);
    const awaited = this.awaited.get(m.to);
    if (awaited !== undefined && m.commit >= awaited) this.awaited.delete(m.to);
  }

  /** Records that `id` waits for `index`; a held message that already carries it goes to `out`. */
  private expectCommit(id: number, index: number, out: Message[]): void {
    if ((this.known.get(id) ?? 0) >= index) return;
    const held = this.held.get(id);
    if (held !== undefined && held.msg.commit >= index) {
      this.held.delete(id);
      this.noteSent(held.msg);
      out.push(held.msg);
      return;
    }
    this.awaited.set(id, Math.max(index, this.awaited.get(id) ?? 0));
  }

  private arm(): void {
    if (this.timer !== undefined) return;
    const first = this.held.values().next();
    if (first.done) return;
    const wait = Math.max(0, first.value.since + this.holdMs - performance.now());
    this.timer = setTimeout(() => this.expire(), wait);
  }

  private expire(): void {
    this.timer = undefined;
    const now = performance.now();
    const due: Message[] = [];
    // Insertion order is the order the followers fell behind in (a replaced message keeps
    // its place), so the due ones come first.
    for (const [id, h] of this.held) {
      if (h.since + this.holdMs > now + 0.5) break;
      this.held.delete(id);
      // A follower no longer replicating (probed, sent a snapshot, removed) gets its commit
      // index with what the core sends it next.
      if (!this.isReplicating(id)) continue;
      this.noteSent(h.msg);
      due.push(h.msg);
    }
    this.arm();
    if (due.length > 0) this.release(due);
  }
}
