// ReadIndex bookkeeping on the leader (Raft thesis §6.4). In the safe mode a read is
// served at the commit index recorded when the request arrived, once a quorum has
// answered a heartbeat sent after it: that proves no newer leader had committed anything.
//
// Each request gets its own sequence number, and the heartbeat carries that number as its
// context. Two requests with the same client context are two rounds: a retried request is
// never answered by a round that started before it arrived.
import type { Message } from './types.js';

export type ReadOnlyOption = 'ReadOnlySafe' | 'ReadOnlyLeaseBased';

export interface ReadIndexStatus {
  req: Message;
  /** The leader's commit index when the request arrived. */
  index: number;
  /** Who answered this round's heartbeat (the shape quorum vote counting takes). */
  acks: Map<number, boolean>;
}

export function encodeReadContext(seq: number): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt(seq));
  return b;
}

function decodeReadContext(ctx: Uint8Array): number | undefined {
  if (ctx.length !== 8) return undefined;
  return Number(new DataView(ctx.buffer, ctx.byteOffset, 8).getBigUint64(0));
}

export class ReadOnly {
  private readonly pending = new Map<number, ReadIndexStatus>();
  /** Sequence numbers in arrival order; a quorum ack for one confirms all before it. */
  private queue: number[] = [];
  private nextSeq = 1;

  constructor(readonly option: ReadOnlyOption) {}

  /** Records a read request at `index` and returns the heartbeat context for its round. */
  addRequest(index: number, req: Message): Uint8Array {
    const seq = this.nextSeq++;
    this.pending.set(seq, { req, index, acks: new Map() });
    this.queue.push(seq);
    return encodeReadContext(seq);
  }

  /** Notes that `id` answered the heartbeat round `ctx`; returns who has acked that round. */
  recvAck(id: number, ctx: Uint8Array): ReadonlyMap<number, boolean> | undefined {
    const seq = decodeReadContext(ctx);
    const rs = seq === undefined ? undefined : this.pending.get(seq);
    if (!rs) return undefined;
    rs.acks.set(id, true);
    return rs.acks;
  }

  /**
   * Releases the round `ctx` and every earlier one, in arrival order. Returns nothing
   * when the round is unknown (already released, or from an older leadership).
   */
  advance(ctx: Uint8Array): ReadIndexStatus[] {
    const seq = decodeReadContext(ctx);
    if (seq === undefined) return [];
    const at = this.queue.indexOf(seq);
    if (at < 0) return [];
    const released = this.queue.slice(0, at + 1);
    this.queue = this.queue.slice(at + 1);
    return released.map((s) => {
      const rs = this.pending.get(s)!;
      this.pending.delete(s);
      return rs;
    });
  }

  /** The context of the newest pending round, to piggyback on the next heartbeat. */
  lastPendingRequestCtx(): Uint8Array | undefined {
    const last = this.queue.at(-1);
    return last === undefined ? undefined : encodeReadContext(last);
  }

  get pendingCount(): number {
    return this.queue.length;
  }
}
