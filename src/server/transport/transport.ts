// Peer transport: raft messages between nodes over WebSockets.
//
// Each node dials one long-lived WebSocket to every peer (`ws://host:port/raft`) and only
// ever sends on it; the peer's messages arrive on the connection the peer dialled to us.
// Keeping the two directions on separate connections means a connection's state says
// exactly one thing (can I reach that peer?) and the inbound side needs no routing.
//
// send() only queues: the queues are flushed once per event-loop turn, one frame per peer,
// so every message a Ready produced travels in one WebSocket message. Raft tolerates loss,
// so the transport never blocks or buffers without bound: a peer that is down or too slow
// gets its messages dropped and the driver is told (onUnreachable), which is what makes
// raft probe the follower again instead of streaming into the void.
import { constants as bufferConstants } from 'node:buffer';
import { createHash, timingSafeEqual } from 'node:crypto';
import { type IncomingMessage, STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import WebSocket, { type RawData, WebSocketServer } from 'ws';
import { maskedWebSocket } from '../../protocol/frame-mask.js';
import type { Logger } from '../../raft/logger.js';
import { isLocalMessage, type Message, type SnapshotMetadata } from '../../raft/types.js';
import { SNAPSHOT_DATA_ON_DISK } from '../storage/log-storage.js';
import {
  decodeFrame,
  decodeSnapshotChunk,
  encodeFrame,
  encodeSnapshotChunk,
  FRAME_HEADER_BYTES,
  FrameError,
  frameMagic,
  messageSize,
  SNAPSHOT_CHUNK_MAGIC,
} from './codec.js';

export type FaultKind = 'drop' | 'delay' | 'isolate' | 'heal';
export type FaultDirection = 'in' | 'out' | 'both';

/**
 * A fault to inject (operator command) and, from faults(), one active rule. `peers` omitted
 * (or naming this node itself) means every peer: `isolate` of self cuts this node off.
 * `direction` defaults to 'both'; `probability` (drop) defaults to 1.
 */
export interface Fault {
  kind: FaultKind;
  peers?: number[];
  probability?: number;
  ms?: number;
  direction?: FaultDirection;
}

export interface PeerHealth {
  address: string;
  /** The outbound connection is open. */
  connected: boolean;
  lastError?: string;
  sentMsgs: number;
  recvMsgs: number;
  queued: number;
  /** Epoch ms of the last frame or pong received from the peer. */
  lastContactMs?: number;
}

export interface TransportOptions {
  id: number;
  clusterId: string;
  /** Shared secret: peers must present it; sent to peers when dialling. */
  token?: string;
  /**
   * Dial peers over TLS (`wss://`), presenting `cert`/`key` (peers started with a CA require
   * a client certificate) and trusting `ca` (default: the system's CAs). The node's server
   * must then be HTTPS too: every member of a cluster uses TLS or none does.
   */
  tls?: { cert: string | Buffer; key: string | Buffer; ca?: string | Buffer };
  /** A raft Logger; a ServerLogger gets a `transport` child. */
  logger: Logger;
  /** Largest frame accepted from a peer (and sent to one). Default 16 MiB. */
  maxFrameBytes?: number;
  /** Messages queued per peer before new ones are dropped. Default 4096. */
  maxQueue?: number;
  /** Unsent bytes a peer's socket may hold before messages wait in the queue. Default 16 MiB. */
  maxBufferedBytes?: number;
  /** Reconnect backoff: doubles from initialMs to maxMs, with jitter. Default 100 ms → 5 s. */
  backoff?: { initialMs?: number; maxMs?: number };
  /** Handshake timeout when dialling. Default 5 s. */
  connectTimeoutMs?: number;
  /** Ping period of outbound connections; a missed pong drops the connection. 0 disables. Default 5 s. */
  pingIntervalMs?: number;
  /** Randomness in [0, 1) for drop faults and jitter; tests inject a seeded one. */
  random?: () => number;
  /**
   * Opens the data of a snapshot that is on disk only (a MsgSnap whose data is
   * SNAPSHOT_DATA_ON_DISK), to stream it a piece at a time. Without it such a snapshot
   * cannot be sent (it is reported failed).
   */
  openSnapshotData?(metadata: SnapshotMetadata): Promise<SnapshotPieces>;
  onMessage(m: Message): void;
  onUnreachable(id: number): void;
  onSnapshotStatus(id: number, ok: boolean): void;
  /**
   * The open connection to a peer closed (not a failed dial, not our own close): the peer's
   * process or host is most likely gone, since a crash closes its sockets at once.
   */
  onPeerLost?(id: number): void;
  /**
   * Whether an id was removed from the cluster: its connections are refused with HTTP 410
   * Gone (as etcd's peers answer a removed member), which tells it so.
   */
  isRemoved?(id: number): boolean;
  /**
   * A peer refused this node with 410 Gone: this node was removed from the cluster while it
   * was down or cut off, and will never be a member again. Called once.
   */
  onRemoved?(byPeer: number): void;
}

/**
 * A snapshot's data read in order: `next` gives the following piece of at most maxBytes,
 * which need only stay valid until the next call (each is encoded into its frame at once);
 * it rejects when the data cannot be read or does not check out, at the latest when the
 * last piece is asked for.
 */
export interface SnapshotPieces {
  readonly size: number;
  next(maxBytes: number): Promise<Uint8Array>;
  close(): Promise<void>;
}

type PeerState = 'connecting' | 'open' | 'backoff' | 'invalid';

interface Peer {
  id: number;
  address: string;
  url: string;
  state: PeerState;
  ws: WebSocket | undefined;
  queue: Message[];
  attempt: number;
  retryTimer: NodeJS.Timeout | undefined;
  pingTimer: NodeJS.Timeout | undefined;
  awaitingPong: boolean;
  /** A re-flush is scheduled because the socket was not draining. */
  blocked: boolean;
  /** Why the peer refused the handshake (HTTP status + reason), kept over ws's generic error. */
  refusal: string | undefined;
  lastError: string | undefined;
  sentMsgs: number;
  /** The number of the snapshot being sent in chunks, if one is; a newer one stops it. */
  snapshotTransfer: number | undefined;
}

/** A snapshot arriving in chunks on one inbound connection. */
interface SnapshotAssembly {
  transfer: number;
  data: Uint8Array;
  received: number;
}

interface Contact {
  recvMsgs: number;
  lastContactMs: number | undefined;
}

/** Per-peer fault settings; key 0 holds the rules for every peer. */
interface FaultEntry {
  dropIn: number;
  dropOut: number;
  delayIn: number;
  delayOut: number;
  isolated: boolean;
}

const ALL_PEERS = 0;
const DEFAULT_MAX_FRAME = 16 * 1024 * 1024;
const DEFAULT_MAX_QUEUE = 4096;
const DEFAULT_MAX_BUFFERED = 16 * 1024 * 1024;
/**
 * A snapshot larger than this travels in chunks of this size, a few at a time: a snapshot
 * is then not bounded by the frame size (a 16 MiB frame had stopped every state above it
 * from reaching a follower), and heartbeats pass between the chunks.
 */
const SNAPSHOT_CHUNK_BYTES = 1024 * 1024;
/** Chunks written but still in the socket's buffer before the next waits (see writeSnapshotInChunks). */
const SNAPSHOT_WINDOW_BYTES = 4 * SNAPSHOT_CHUNK_BYTES;
/** Close reasons are limited to 123 bytes by the WebSocket protocol. */
const MAX_CLOSE_REASON = 123;
const CLOSE_CODE_TEXT: Record<number, string> = {
  1000: 'normal closure',
  1001: 'going away',
  1003: 'unsupported data',
  1006: 'connection lost',
  1007: 'malformed frame',
  1009: 'frame too large',
  1011: 'internal error',
};

/**
 * One long-lived outbound WebSocket per peer, inbound connections accepted through the
 * node's HTTP server. No method throws: errors are logged and, where raft must know, turned
 * into onUnreachable / onSnapshotStatus. No callback runs inside send().
 */
export class Transport {
  private readonly id: number;
  private readonly clusterId: string;
  private readonly tokenDigest: Buffer | undefined;
  private readonly token: string | undefined;
  private readonly tls: TransportOptions['tls'];
  private readonly log: Logger;
  private readonly maxFrameBytes: number;
  private readonly maxQueue: number;
  private readonly maxBufferedBytes: number;
  private readonly backoffInitialMs: number;
  private readonly backoffMaxMs: number;
  private readonly connectTimeoutMs: number;
  private readonly pingIntervalMs: number;
  private readonly random: () => number;
  private readonly cb: Pick<
    TransportOptions,
    'onMessage' | 'onUnreachable' | 'onSnapshotStatus' | 'onPeerLost' | 'isRemoved' | 'onRemoved'
  >;
  private toldRemoved = false;
  private readonly wss: WebSocketServer;

  private readonly peers = new Map<number, Peer>();
  private readonly contacts = new Map<number, Contact>();
  private readonly inbound = new Map<number, WebSocket>();
  /** Snapshots being received in chunks, by connection. */
  private readonly assemblies = new WeakMap<WebSocket, SnapshotAssembly>();
  /** Numbers the snapshots this node sends in chunks. */
  private snapshotTransfers = 0;
  private readonly openSnapshotData: TransportOptions['openSnapshotData'];
  /** The index of the snapshot whose unreadable file was last warned of. */
  private warnedUnreadable: number | undefined;
  /** Peers with queued messages, flushed on the next turn. */
  private readonly dirty = new Set<Peer>();
  private readonly pendingUnreachable = new Set<number>();
  private readonly pendingSnapFailures: number[] = [];
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly faultTable = new Map<number, FaultEntry>();
  /** Ids whose unknown-peer warning was already logged (once each, not once per heartbeat). */
  private readonly warnedUnknown = new Set<number>();
  private flushHandle: NodeJS.Immediate | undefined;
  private flushSoonQueued = false;
  private closed = false;

  constructor(opts: TransportOptions) {
    this.id = opts.id;
    this.clusterId = opts.clusterId;
    this.token = opts.token;
    this.tls = opts.tls;
    this.tokenDigest = opts.token === undefined ? undefined : digest(opts.token);
    const l = opts.logger as Logger & { child?: (c: string) => Logger };
    this.log = typeof l.child === 'function' ? l.child('transport') : l;
    this.maxFrameBytes = opts.maxFrameBytes ?? DEFAULT_MAX_FRAME;
    this.maxQueue = opts.maxQueue ?? DEFAULT_MAX_QUEUE;
    this.maxBufferedBytes = opts.maxBufferedBytes ?? DEFAULT_MAX_BUFFERED;
    this.backoffInitialMs = opts.backoff?.initialMs ?? 100;
    this.backoffMaxMs = opts.backoff?.maxMs ?? 5000;
    this.connectTimeoutMs = opts.connectTimeoutMs ?? 5000;
    this.pingIntervalMs = opts.pingIntervalMs ?? 5000;
    this.random = opts.random ?? Math.random;
    this.openSnapshotData = opts.openSnapshotData;
    this.cb = {
      onMessage: opts.onMessage,
      onUnreachable: opts.onUnreachable,
      onSnapshotStatus: opts.onSnapshotStatus,
      ...(opts.onPeerLost ? { onPeerLost: opts.onPeerLost } : {}),
      ...(opts.isRemoved ? { isRemoved: opts.isRemoved } : {}),
      ...(opts.onRemoved ? { onRemoved: opts.onRemoved } : {}),
    };
    // Raft payloads are mostly small or already-compact entries: deflate would cost CPU on
    // every heartbeat for little gain. maxPayload makes ws refuse an oversized frame from its
    // header, before buffering it.
    this.wss = new WebSocketServer({
      noServer: true,
      maxPayload: this.maxFrameBytes,
      perMessageDeflate: false,
    });
  }

  // -------------------------------------------------------------------------------------
  // Membership

  /** Adds, removes and re-addresses peers; this node's own id is ignored. */
  setPeers(peers: Map<number, string>): void {
    try {
      if (this.closed) return;
      for (const [id, address] of peers) {
        if (id === this.id) continue;
        const existing = this.peers.get(id);
        if (existing === undefined) {
          const peer = this.newPeer(id, address);
          this.peers.set(id, peer);
          this.warnedUnknown.delete(id);
          this.log.info(`peer ${id} added at ${address}`);
          this.connect(peer);
        } else if (existing.address !== address) {
          this.log.info(`peer ${id} moved from ${existing.address} to ${address}`);
          this.dropConnection(existing, 1000, 'peer address changed');
          const url = peerUrl(address, this.tls !== undefined);
          existing.address = address;
          existing.url = url ?? '';
          existing.attempt = 0;
          existing.lastError = undefined;
          this.connect(existing);
        }
      }
      for (const [id, peer] of this.peers) {
        if (peers.has(id)) continue;
        this.log.info(`peer ${id} removed`);
        // Raft no longer tracks a removed peer, so its queue is dropped without callbacks.
        peer.queue = [];
        this.dirty.delete(peer);
        this.dropConnection(peer, 1000, 'peer removed');
        this.peers.delete(id);
        // A removed node that is still connected to us (cut off from the rest, say) would
        // never dial again; closing makes it redial, and the 410 tells it it was removed.
        const inbound = this.inbound.get(id);
        if (inbound !== undefined && this.cb.isRemoved?.(id)) {
          closeSocket(inbound, 1000, 'node removed from the cluster');
        }
      }
    } catch (err) {
      this.log.error(`setPeers failed: ${errText(err)}`);
    }
  }

  private newPeer(id: number, address: string): Peer {
    return {
      id,
      address,
      url: peerUrl(address, this.tls !== undefined) ?? '',
      state: 'backoff',
      ws: undefined,
      queue: [],
      attempt: 0,
      retryTimer: undefined,
      pingTimer: undefined,
      awaitingPong: false,
      blocked: false,
      refusal: undefined,
      lastError: undefined,
      sentMsgs: 0,
      snapshotTransfer: undefined,
    };
  }

  // -------------------------------------------------------------------------------------
  // Sending

  /** Queues messages for their peers; they leave on the next event-loop turn. Never throws. */
  send(msgs: readonly Message[]): void {
    try {
      if (this.closed) return;
      for (const m of msgs) {
        const peer = this.peers.get(m.to);
        if (peer === undefined) {
          this.dropUnroutable(m);
          continue;
        }
        if (peer.queue.length >= this.maxQueue) {
          // Overflow means the peer is not keeping up: dropping the newest message is as good
          // as any (raft retransmits), and unreachable makes the leader slow down to probing.
          this.pendingUnreachable.add(peer.id);
          if (m.type === 'MsgSnap') this.pendingSnapFailures.push(peer.id);
          continue;
        }
        peer.queue.push(m);
        this.dirty.add(peer);
      }
      this.scheduleFlush();
    } catch (err) {
      this.log.error(`send failed: ${errText(err)}`);
    }
  }

  private dropUnroutable(m: Message): void {
    if (m.to === this.id || isLocalMessage(m.type)) {
      if (!this.warnedUnknown.has(m.to)) {
        this.warnedUnknown.add(m.to);
        this.log.warn(`dropping ${m.type} to ${m.to}: not a remote peer`);
      }
      return;
    }
    if (!this.warnedUnknown.has(m.to)) {
      this.warnedUnknown.add(m.to);
      this.log.warn(`dropping ${m.type} to unknown peer ${m.to}: no address (further drops not logged)`);
    }
    this.pendingUnreachable.add(m.to);
    if (m.type === 'MsgSnap') this.pendingSnapFailures.push(m.to);
    this.scheduleFlush();
  }

  /**
   * Writes what is queued now instead of on the next turn: for messages on a latency path
   * (a leader's MsgApp before its own fsync, a follower's ack right after its fsync). Drops
   * are still reported on the next turn, so no callback runs inside this call either.
   */
  flushNow(): void {
    if (this.flushHandle === undefined || this.closed) return;
    this.flushDirty();
  }

  /**
   * Writes what is queued once the current callback has run (a `process.nextTick`, so
   * ahead of client answers queued after this call), without waiting for the next turn of
   * the loop: a follower waiting for the new commit index answers its own clients only
   * when it arrives.
   */
  flushSoon(): void {
    if (this.flushSoonQueued || this.closed) return;
    this.flushSoonQueued = true;
    process.nextTick(() => {
      this.flushSoonQueued = false;
      if (!this.closed) this.flushDirty();
    });
  }

  private flushDirty(): void {
    for (const peer of this.dirty) {
      this.dirty.delete(peer);
      try {
        this.flushPeer(peer);
      } catch (err) {
        this.log.error(`flushing messages to peer ${peer.id} failed: ${errText(err)}`);
      }
    }
  }

  private scheduleFlush(): void {
    if (this.flushHandle === undefined && !this.closed) this.flushHandle = setImmediate(this.flush);
  }

  private readonly flush = (): void => {
    this.flushHandle = undefined;
    if (this.closed) return;
    this.flushDirty();
    this.notifyPending();
  };

  private notifyPending(): void {
    for (const id of this.pendingUnreachable) this.callUnreachable(id);
    this.pendingUnreachable.clear();
    for (const id of this.pendingSnapFailures.splice(0)) this.callSnapshotStatus(id, false);
  }

  private flushPeer(peer: Peer): void {
    if (peer.queue.length === 0) return;
    // The first connection is being set up: hold messages (bounded by maxQueue) so the ones
    // sent at startup are not lost.
    if (peer.state === 'connecting') return;
    if (peer.state !== 'open' || peer.ws === undefined) {
      this.dropQueue(peer);
      return;
    }
    if (peer.ws.bufferedAmount > this.maxBufferedBytes) {
      // The socket is not draining: keep messages in the bounded queue and look again soon.
      if (peer.blocked) return;
      peer.blocked = true;
      this.later(10, () => {
        peer.blocked = false;
        if (this.peers.get(peer.id) === peer && peer.queue.length > 0) {
          this.dirty.add(peer);
          this.scheduleFlush();
        }
      });
      return;
    }
    const msgs = peer.queue;
    peer.queue = [];
    const f = this.faultTable.size > 0 ? this.effectiveFaults(peer.id) : undefined;
    let batch: Message[] = [];
    let sizes: number[] = [];
    for (const m of msgs) {
      if (f !== undefined && (f.isolated || (f.dropOut > 0 && this.random() < f.dropOut))) {
        if (m.type === 'MsgSnap') this.pendingSnapFailures.push(peer.id);
        continue;
      }
      if (m.type === 'MsgSnap') {
        // Snapshots travel alone so their completion can be reported, in order with the rest.
        this.writeBatch(peer, batch, sizes, f);
        batch = [];
        sizes = [];
        this.writeSnapshot(peer, m, f);
        continue;
      }
      let size: number;
      try {
        size = messageSize(m);
      } catch (err) {
        // One bad message (a bug upstream) must not take the rest of the batch with it.
        this.log.error(`dropping ${m.type} to peer ${peer.id}: cannot encode: ${errText(err)}`);
        continue;
      }
      batch.push(m);
      sizes.push(size);
    }
    this.writeBatch(peer, batch, sizes, f);
  }

  /** Splits the batch into frames of at most maxFrameBytes; one frame in the usual case. */
  private writeBatch(peer: Peer, batch: Message[], sizes: number[], f: FaultEntry | undefined): void {
    const limit = this.maxFrameBytes - FRAME_HEADER_BYTES;
    let start = 0;
    let bytes = 0;
    for (let i = 0; i < batch.length; i++) {
      const s = sizes[i]!;
      if (s > limit) {
        this.log.error(
          `dropping ${batch[i]!.type} to peer ${peer.id}: ${s} bytes exceeds maxFrameBytes ${this.maxFrameBytes}`,
        );
        this.writeFrame(peer, batch.slice(start, i), bytes, f);
        start = i + 1;
        bytes = 0;
        continue;
      }
      if (bytes + s > limit) {
        this.writeFrame(peer, batch.slice(start, i), bytes, f);
        start = i;
        bytes = 0;
      }
      bytes += s;
    }
    this.writeFrame(peer, start === 0 ? batch : batch.slice(start), bytes, f);
  }

  private writeFrame(peer: Peer, msgs: Message[], bodyBytes: number, f: FaultEntry | undefined): void {
    if (msgs.length === 0) return;
    const frame = encodeFrame(msgs, bodyBytes);
    this.afterDelayOut(f, () => this.transmit(peer, frame, msgs.length, false));
  }

  /** Runs `send` now, or after the outbound delay a fault injects. */
  private afterDelayOut(f: FaultEntry | undefined, send: () => void): void {
    const delay = f?.delayOut ?? 0;
    if (delay > 0) this.later(delay, send);
    else send();
  }

  private writeSnapshot(peer: Peer, m: Message, f: FaultEntry | undefined): void {
    const data = m.snapshot?.data;
    if (data === SNAPSHOT_DATA_ON_DISK) {
      this.afterDelayOut(f, () => this.writeSnapshotFromDisk(peer, m));
      return;
    }
    if ((data?.length ?? 0) > SNAPSHOT_CHUNK_BYTES) {
      this.afterDelayOut(f, () => this.writeSnapshotInChunks(peer, m, piecesOf(data!)));
      return;
    }
    const size = messageSize(m);
    if (size > this.maxFrameBytes - FRAME_HEADER_BYTES) {
      this.log.error(
        `cannot send snapshot at index ${m.snapshot?.metadata.index ?? 0} to peer ${peer.id}: ${size} bytes exceeds maxFrameBytes ${this.maxFrameBytes}`,
      );
      this.pendingSnapFailures.push(peer.id);
      return;
    }
    const frame = encodeFrame([m], size);
    this.log.info(
      `sending snapshot at index ${m.snapshot?.metadata.index ?? 0} (${frame.length} bytes) to peer ${peer.id}`,
    );
    this.afterDelayOut(f, () => this.transmit(peer, frame, 1, true));
  }

  /**
   * Streams a snapshot held on disk only: its file is opened and read a chunk at a time as
   * the chunks go, so sending it costs a few chunks of memory whatever the state's size.
   */
  private writeSnapshotFromDisk(peer: Peer, m: Message): void {
    const { metadata } = m.snapshot!;
    const open = this.openSnapshotData;
    if (open === undefined) {
      this.log.error(
        `cannot send snapshot at index ${metadata.index} to peer ${peer.id}: its data is on disk only`,
      );
      this.callSnapshotStatus(peer.id, false);
      return;
    }
    open(metadata).then(
      (pieces: SnapshotPieces) => {
        if (this.closed) void pieces.close().catch(() => undefined);
        else this.writeSnapshotInChunks(peer, m, pieces);
      },
      (err: unknown) => {
        this.warnUnreadable(peer, metadata, err);
        this.callSnapshotStatus(peer.id, false);
      },
    );
  }

  /**
   * A snapshot's file could not be read (or did not check out), so its transfer fails; raft
   * sends the storage's snapshot again later — a newer one, if one replaced a purged or
   * damaged file meanwhile. Said once per snapshot, however often raft tries.
   */
  private warnUnreadable(peer: Peer, metadata: SnapshotMetadata, err: unknown): void {
    if (this.warnedUnreadable === metadata.index) return;
    this.warnedUnreadable = metadata.index;
    this.log.warn(
      `could not read the snapshot at index ${metadata.index} from disk to send it to peer ${peer.id}: ${errText(err)}`,
    );
  }

  /**
   * Sends a snapshot as chunk frames on the peer's current connection, keeping at most
   * SNAPSHOT_WINDOW_BYTES of them waiting in the socket so frames sent meanwhile (heartbeats)
   * pass between them, and reports it sent once the last is written. A dropped or replaced
   * connection, a newer snapshot for the same peer, or data that cannot be read ends it as
   * failed; raft then sends the snapshot again. The last chunk carries the MsgSnap: a
   * follower installs nothing until it arrives.
   */
  private writeSnapshotInChunks(peer: Peer, m: Message, pieces: SnapshotPieces): void {
    const ws = peer.ws;
    const snap = m.snapshot!;
    const total = pieces.size;
    const transfer = ++this.snapshotTransfers;
    peer.snapshotTransfer = transfer;
    peer.sentMsgs++;
    const last: Message = { ...m, snapshot: { ...snap, data: new Uint8Array(0) } };
    const chunks = Math.max(1, Math.ceil(total / SNAPSHOT_CHUNK_BYTES));
    this.log.info(
      `sending snapshot at index ${snap.metadata.index} (${total} bytes) to peer ${peer.id} in ${chunks} chunk${chunks === 1 ? '' : 's'}`,
    );
    let next = 0;
    let reading = false;
    let lastSent = false;
    let ended = false;
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      void pieces.close().catch(() => undefined);
    };
    /** `why` undefined: the failure was said already. */
    const end = (ok: boolean, why?: string): void => {
      if (ended) return;
      ended = true;
      release();
      if (peer.snapshotTransfer === transfer) peer.snapshotTransfer = undefined;
      if (!ok && why !== undefined)
        this.log.warn(`snapshot at index ${snap.metadata.index} to peer ${peer.id} failed: ${why}`);
      this.callSnapshotStatus(peer.id, ok);
    };
    /** Whether the transfer may go on; if it may not, it is ended (or let go of, once closed). */
    const goOn = (): boolean => {
      if (this.closed) release();
      if (ended || this.closed) return false;
      const why =
        peer.snapshotTransfer !== transfer
          ? 'a newer snapshot replaced it'
          : this.peers.get(peer.id) !== peer || peer.state !== 'open' || peer.ws !== ws || ws === undefined
            ? 'the connection closed'
            : undefined;
      if (why !== undefined) end(false, why);
      return why === undefined;
    };
    const pump = (): void => {
      // One piece read at a time; the window refills as the socket drains (the callback).
      if (reading || !goOn() || lastSent || ws!.bufferedAmount >= SNAPSHOT_WINDOW_BYTES) return;
      reading = true;
      pieces.next(SNAPSHOT_CHUNK_BYTES).then(
        (data) => {
          reading = false;
          if (!goOn()) return;
          const offset = next;
          next += data.length;
          const done = next >= total;
          lastSent = done;
          const frame = encodeSnapshotChunk({
            transfer,
            total,
            offset,
            data,
            message: done ? last : undefined,
          });
          ws!.send(frame, { binary: true }, (err) => {
            if (err) end(false, err.message);
            else if (done) end(true);
            else pump();
          });
          if (!done) pump();
        },
        (err: unknown) => {
          reading = false;
          this.warnUnreadable(peer, snap.metadata, err);
          end(false);
        },
      );
    };
    pump();
  }

  private transmit(peer: Peer, frame: Uint8Array, count: number, snapshot: boolean): void {
    const ws = peer.ws;
    if (this.closed || peer.state !== 'open' || ws === undefined || this.peers.get(peer.id) !== peer) {
      if (snapshot) this.callSnapshotStatus(peer.id, false);
      return;
    }
    peer.sentMsgs += count;
    if (!snapshot) {
      // Write errors surface as the connection's error/close events.
      ws.send(frame, { binary: true });
      return;
    }
    // The callback fires once the frame is handed to the kernel (or the write failed); a
    // snapshot lost after that is caught by raft's probing, as after any lost message.
    ws.send(frame, { binary: true }, (err) => {
      if (err) this.log.warn(`snapshot to peer ${peer.id} failed: ${err.message}`);
      this.callSnapshotStatus(peer.id, err == null);
    });
  }

  private dropQueue(peer: Peer): void {
    if (peer.queue.length === 0) return;
    for (const m of peer.queue) if (m.type === 'MsgSnap') this.pendingSnapFailures.push(peer.id);
    peer.queue = [];
    this.pendingUnreachable.add(peer.id);
  }

  // -------------------------------------------------------------------------------------
  // Outbound connections

  private connect(peer: Peer): void {
    if (this.closed) return;
    if (peer.url === '') {
      peer.state = 'invalid';
      peer.lastError = `invalid peer address ${JSON.stringify(peer.address)} (want host:port)`;
      this.log.error(`peer ${peer.id}: ${peer.lastError}`);
      return;
    }
    peer.state = 'connecting';
    peer.refusal = undefined;
    const headers: Record<string, string> = {
      'x-raftctl-cluster': this.clusterId,
      'x-raftctl-from': String(this.id),
    };
    if (this.token !== undefined) headers['x-raftctl-token'] = this.token;
    let ws: WebSocket;
    try {
      ws = maskedWebSocket(peer.url, {
        headers,
        perMessageDeflate: false,
        handshakeTimeout: this.connectTimeoutMs,
        // We never expect data on this connection, only pongs and the close frame.
        maxPayload: 64 * 1024,
        ...(this.tls === undefined
          ? {}
          : {
              cert: this.tls.cert,
              key: this.tls.key,
              ...(this.tls.ca === undefined ? {} : { ca: this.tls.ca }),
            }),
      });
    } catch (err) {
      this.onDisconnect(peer, undefined, `cannot dial ${peer.url}: ${errText(err)}`);
      return;
    }
    peer.ws = ws;
    ws.on('open', () => {
      if (peer.ws !== ws) return;
      peer.state = 'open';
      peer.attempt = 0;
      peer.lastError = undefined;
      this.noteContact(peer.id);
      this.log.info(`connected to peer ${peer.id} at ${peer.address}`);
      this.startPing(peer, ws);
      if (peer.queue.length > 0) {
        this.dirty.add(peer);
        this.scheduleFlush();
      }
    });
    ws.on('unexpected-response', (_req, res) => {
      const reason = res.headers['x-raftctl-reason'];
      peer.refusal = `refused by peer ${peer.id}: HTTP ${res.statusCode} ${typeof reason === 'string' ? reason : (res.statusMessage ?? '')}`;
      res.resume();
      ws.terminate();
      if (res.statusCode === 410) queueMicrotask(() => this.callRemoved(peer.id));
    });
    ws.on('pong', () => {
      if (peer.ws !== ws) return;
      peer.awaitingPong = false;
      this.noteContact(peer.id);
    });
    ws.on('error', (err) => {
      if (peer.ws !== ws) return;
      peer.lastError = peer.refusal ?? err.message;
    });
    ws.on('close', (code, reason) => {
      if (peer.ws !== ws) return;
      const why =
        peer.refusal ??
        (code === 1006 && peer.lastError !== undefined
          ? peer.lastError
          : `closed by peer: ${code} ${CLOSE_CODE_TEXT[code] ?? ''}${reason.length > 0 ? ` (${reason.toString()})` : ''}`);
      this.onDisconnect(peer, ws, why);
    });
  }

  private onDisconnect(peer: Peer, ws: WebSocket | undefined, why: string): void {
    if (ws !== undefined && peer.ws !== ws) return;
    const wasOpen = peer.state === 'open';
    this.stopPing(peer);
    peer.ws = undefined;
    peer.lastError = why;
    if (this.closed || this.peers.get(peer.id) !== peer) return;
    peer.state = 'backoff';
    // Log the first failure of a streak loudly and the retries quietly: a peer that is down
    // for minutes would otherwise fill the log.
    if (wasOpen) {
      this.log.warn(`lost connection to peer ${peer.id} at ${peer.address}: ${why}`);
      // Never inside a send(): the driver may step raft from it.
      queueMicrotask(() => this.callPeerLost(peer.id));
    } else if (peer.attempt > 0) this.log.debug(`still cannot connect to peer ${peer.id}: ${why}`);
    else if (peer.refusal !== undefined) this.log.error(`peer ${peer.id} at ${peer.address}: ${why}`);
    else this.log.warn(`cannot connect to peer ${peer.id} at ${peer.address}: ${why}`);
    this.dropQueue(peer);
    this.pendingUnreachable.add(peer.id);
    this.notifyPending();
    const base = Math.min(this.backoffMaxMs, this.backoffInitialMs * 2 ** Math.min(peer.attempt, 30));
    peer.attempt++;
    // Equal jitter: at least half the base, so restarts of several nodes do not dial in lockstep.
    const delay = base / 2 + (this.random() * base) / 2;
    peer.retryTimer = this.later(delay, () => {
      peer.retryTimer = undefined;
      if (this.peers.get(peer.id) === peer && peer.state === 'backoff') this.connect(peer);
    });
  }

  /**
   * A peer that just dialled in is up: if our own connection to it is waiting out a backoff
   * (up to 5 s after a long outage), dial now rather than leave it unreachable that long.
   */
  private redialNow(id: number): void {
    const peer = this.peers.get(id);
    if (peer === undefined || peer.state !== 'backoff' || peer.retryTimer === undefined) return;
    this.clearLater(peer.retryTimer);
    peer.retryTimer = undefined;
    peer.attempt = 0;
    this.connect(peer);
  }

  /** Closes the outbound connection without reconnecting (the caller decides what comes next). */
  private dropConnection(peer: Peer, code: number, reason: string): void {
    this.stopPing(peer);
    if (peer.retryTimer !== undefined) {
      this.clearLater(peer.retryTimer);
      peer.retryTimer = undefined;
    }
    const ws = peer.ws;
    peer.ws = undefined;
    peer.state = 'backoff';
    if (ws !== undefined) closeSocket(ws, code, reason);
  }

  private startPing(peer: Peer, ws: WebSocket): void {
    if (this.pingIntervalMs <= 0) return;
    peer.awaitingPong = false;
    peer.pingTimer = setInterval(() => {
      if (peer.ws !== ws) return;
      try {
        if (peer.awaitingPong) {
          this.log.warn(
            `peer ${peer.id} did not answer a ping within ${this.pingIntervalMs} ms; reconnecting`,
          );
          peer.lastError = 'ping timeout';
          ws.terminate();
          return;
        }
        peer.awaitingPong = true;
        ws.ping();
      } catch (err) {
        this.log.error(`pinging peer ${peer.id} failed: ${errText(err)}`);
      }
    }, this.pingIntervalMs);
  }

  private stopPing(peer: Peer): void {
    if (peer.pingTimer !== undefined) clearInterval(peer.pingTimer);
    peer.pingTimer = undefined;
    peer.awaitingPong = false;
  }

  // -------------------------------------------------------------------------------------
  // Inbound connections

  /** The node's HTTP server routes `/raft` upgrade requests here. Never throws. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    try {
      const remote = `${req.socket.remoteAddress ?? '?'}:${req.socket.remotePort ?? '?'}`;
      const verdict = this.admit(req);
      if (typeof verdict !== 'number') {
        this.log.warn(`refused raft connection from ${remote}: ${verdict.reason}`);
        refuseUpgrade(socket, verdict.status, verdict.reason);
        return;
      }
      this.wss.handleUpgrade(req, socket, head, (ws) => this.accept(ws, verdict, remote));
    } catch (err) {
      this.log.error(`raft upgrade failed: ${errText(err)}`);
      socket.destroy();
    }
  }

  /** The sender's id when the handshake is acceptable, else the HTTP refusal. */
  private admit(req: IncomingMessage): number | { status: number; reason: string } {
    if (this.closed) return { status: 503, reason: 'node is shutting down' };
    if ((req.url ?? '').split('?')[0] !== '/raft')
      return { status: 404, reason: `no raft endpoint at ${req.url}` };
    const cluster = header(req, 'x-raftctl-cluster');
    if (cluster !== this.clusterId) {
      return {
        status: 403,
        reason:
          cluster === undefined
            ? `missing x-raftctl-cluster header (this node is in cluster ${this.clusterId})`
            : `cluster id mismatch: this node is in cluster ${this.clusterId}, the request is for cluster ${cluster}`,
      };
    }
    if (this.tokenDigest !== undefined) {
      const token = header(req, 'x-raftctl-token');
      if (token === undefined) {
        return { status: 403, reason: 'missing x-raftctl-token: this cluster requires a peer token' };
      }
      // Digests have equal lengths, so the comparison time says nothing about the token.
      if (!timingSafeEqual(digest(token), this.tokenDigest))
        return { status: 403, reason: 'invalid peer token' };
    }
    const fromText = header(req, 'x-raftctl-from') ?? '';
    const from = /^[1-9][0-9]{0,15}$/.test(fromText) ? Number(fromText) : 0;
    if (!Number.isSafeInteger(from) || from === 0) {
      return { status: 400, reason: `invalid x-raftctl-from ${JSON.stringify(fromText)}: want a node id` };
    }
    if (from === this.id) return { status: 409, reason: `x-raftctl-from ${from} is this node's own id` };
    if (this.cb.isRemoved?.(from)) {
      return { status: 410, reason: `node ${from} was removed from cluster ${this.clusterId}` };
    }
    return from;
  }

  private accept(ws: WebSocket, from: number, remote: string): void {
    if (this.closed) {
      closeSocket(ws, 1001, 'node is shutting down');
      return;
    }
    // A peer that reconnects may leave its old connection half-open; the newest one wins.
    const old = this.inbound.get(from);
    if (old !== undefined) closeSocket(old, 1000, 'replaced by a newer connection');
    this.inbound.set(from, ws);
    this.noteContact(from);
    this.log.info(`accepted raft connection from peer ${from} (${remote})`);
    this.redialNow(from);
    ws.on('message', (data, isBinary) => {
      try {
        this.onFrame(ws, from, data, isBinary);
      } catch (err) {
        this.log.error(`handling a frame from peer ${from} failed: ${errText(err)}`);
      }
    });
    ws.on('error', (err) => {
      const code = (err as Error & { code?: string }).code;
      if (code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') {
        this.log.warn(
          `peer ${from} sent a frame larger than maxFrameBytes ${this.maxFrameBytes}; closed the connection (1009)`,
        );
      } else this.log.warn(`raft connection from peer ${from} failed: ${err.message}`);
    });
    ws.on('close', () => {
      if (this.inbound.get(from) === ws) this.inbound.delete(from);
    });
  }

  private onFrame(ws: WebSocket, from: number, data: RawData, isBinary: boolean): void {
    if (!isBinary) {
      this.log.warn(`peer ${from} sent a text message; closing the connection`);
      closeSocket(ws, 1003, 'raft frames are binary');
      return;
    }
    // One copy per frame: decoded entries are views into it, so entries kept in the log pin
    // this frame rather than the socket's (larger, shared) read buffers.
    const bytes = copyRawData(data);
    let msgs: Message[];
    try {
      if (frameMagic(bytes) === SNAPSHOT_CHUNK_MAGIC) {
        const whole = this.assembleSnapshot(ws, from, bytes);
        if (whole === undefined) {
          this.noteContact(from);
          return;
        }
        msgs = [whole];
      } else msgs = decodeFrame(bytes);
    } catch (err) {
      const reason = err instanceof FrameError ? err.message : `undecodable frame: ${errText(err)}`;
      this.log.warn(
        `dropping frame from peer ${from} (${bytes.length} bytes): ${reason}; closing the connection`,
      );
      closeSocket(ws, 1007, reason);
      return;
    }
    const contact = this.noteContact(from);
    contact.recvMsgs += msgs.length;
    const f = this.faultTable.size > 0 ? this.effectiveFaults(from) : undefined;
    for (const m of msgs) {
      if (m.from !== from || m.to !== this.id || isLocalMessage(m.type)) {
        this.log.warn(
          `dropping ${m.type} from ${m.from} to ${m.to} on the connection of peer ${from}: misaddressed or local`,
        );
        continue;
      }
      if (f !== undefined) {
        if (f.isolated || (f.dropIn > 0 && this.random() < f.dropIn)) continue;
        if (f.delayIn > 0) {
          this.later(f.delayIn, () => this.deliver(m));
          continue;
        }
      }
      this.deliver(m);
    }
  }

  /**
   * Adds a chunk to the snapshot arriving on `ws`; returns the MsgSnap, data and all, with
   * the last chunk. A chunk out of order (none is, from this transport) abandons the
   * snapshot: the leader sends it again. Throws FrameError for a malformed chunk.
   */
  private assembleSnapshot(ws: WebSocket, from: number, bytes: Uint8Array): Message | undefined {
    const chunk = decodeSnapshotChunk(bytes);
    let a = this.assemblies.get(ws);
    if (chunk.offset === 0) {
      if (chunk.total > bufferConstants.MAX_LENGTH) {
        throw new FrameError(`a snapshot of ${chunk.total} bytes exceeds what a buffer can hold`, 4);
      }
      if (a !== undefined) this.log.warn(`peer ${from} started a new snapshot before finishing the last`);
      a = { transfer: chunk.transfer, data: new Uint8Array(chunk.total), received: 0 };
      this.assemblies.set(ws, a);
    }
    if (
      a === undefined ||
      a.transfer !== chunk.transfer ||
      a.data.length !== chunk.total ||
      a.received !== chunk.offset
    ) {
      this.log.warn(
        `dropping a snapshot chunk from peer ${from} (transfer ${chunk.transfer}, ${chunk.offset} of ${chunk.total} bytes): not the next of the snapshot being received; it will be sent again`,
      );
      this.assemblies.delete(ws);
      return undefined;
    }
    a.data.set(chunk.data, a.received);
    a.received += chunk.data.length;
    if (chunk.message === undefined) return undefined;
    this.assemblies.delete(ws);
    if (a.received !== a.data.length) {
      throw new FrameError(
        `the last chunk came after ${a.received} of the snapshot's ${a.data.length} bytes`,
        0,
      );
    }
    const m = chunk.message;
    return { ...m, snapshot: { ...m.snapshot!, data: a.data } };
  }

  private deliver(m: Message): void {
    if (this.closed) return;
    try {
      this.cb.onMessage(m);
    } catch (err) {
      this.log.error(`onMessage threw for ${m.type} from ${m.from}: ${errText(err)}`);
    }
  }

  private noteContact(id: number): Contact {
    let c = this.contacts.get(id);
    if (c === undefined) {
      c = { recvMsgs: 0, lastContactMs: undefined };
      this.contacts.set(id, c);
    }
    c.lastContactMs = Date.now();
    return c;
  }

  // -------------------------------------------------------------------------------------
  // Faults

  /**
   * Injects or clears a fault. Throws RangeError for invalid arguments (an operator command
   * reports them); it is never on the message path.
   */
  setFault(f: Fault): void {
    const direction = f.direction ?? 'both';
    if (direction !== 'in' && direction !== 'out' && direction !== 'both') {
      throw new RangeError(`fault direction must be in, out or both, got ${String(direction)}`);
    }
    for (const p of f.peers ?? []) {
      if (!Number.isSafeInteger(p) || p <= 0)
        throw new RangeError(`fault peer ids must be positive integers, got ${p}`);
    }
    const targets =
      f.peers === undefined || f.peers.length === 0
        ? [ALL_PEERS]
        : f.peers.map((p) => (p === this.id ? ALL_PEERS : p));
    const inDir = direction !== 'out';
    const outDir = direction !== 'in';
    switch (f.kind) {
      case 'drop': {
        const p = f.probability ?? 1;
        if (!(p >= 0 && p <= 1)) throw new RangeError(`drop probability must be within 0..1, got ${p}`);
        for (const t of targets)
          this.editFault(t, (e) => {
            if (inDir) e.dropIn = p;
            if (outDir) e.dropOut = p;
          });
        break;
      }
      case 'delay': {
        const ms = f.ms ?? 0;
        if (!(Number.isFinite(ms) && ms >= 0))
          throw new RangeError(`delay must be a non-negative number of ms, got ${ms}`);
        for (const t of targets)
          this.editFault(t, (e) => {
            if (inDir) e.delayIn = ms;
            if (outDir) e.delayOut = ms;
          });
        break;
      }
      case 'isolate':
        for (const t of targets)
          this.editFault(t, (e) => {
            e.isolated = true;
          });
        break;
      case 'heal':
        if (f.peers === undefined || f.peers.length === 0) this.faultTable.clear();
        else for (const t of targets) this.faultTable.delete(t);
        break;
      default:
        throw new RangeError(`unknown fault kind ${String((f as { kind: unknown }).kind)}`);
    }
    this.log.warn(
      `fault ${describeFault(f)}; active: ${this.faults().map(describeFault).join(', ') || 'none'}`,
    );
  }

  private editFault(peer: number, edit: (e: FaultEntry) => void): void {
    const e = this.faultTable.get(peer) ?? {
      dropIn: 0,
      dropOut: 0,
      delayIn: 0,
      delayOut: 0,
      isolated: false,
    };
    edit(e);
    if (e.dropIn === 0 && e.dropOut === 0 && e.delayIn === 0 && e.delayOut === 0 && !e.isolated) {
      this.faultTable.delete(peer);
    } else this.faultTable.set(peer, e);
  }

  /** The rules for one peer: its own combined with the every-peer ones (the harsher wins). */
  private effectiveFaults(peer: number): FaultEntry | undefined {
    const own = this.faultTable.get(peer);
    const all = this.faultTable.get(ALL_PEERS);
    if (own === undefined || all === undefined) return own ?? all;
    return {
      dropIn: Math.max(own.dropIn, all.dropIn),
      dropOut: Math.max(own.dropOut, all.dropOut),
      delayIn: Math.max(own.delayIn, all.delayIn),
      delayOut: Math.max(own.delayOut, all.delayOut),
      isolated: own.isolated || all.isolated,
    };
  }

  /** The active rules, one per peer and kind (peers omitted: every peer); re-applying them restores the table. */
  faults(): Fault[] {
    const rules: Fault[] = [];
    const ids = [...this.faultTable.keys()].sort((a, b) => a - b);
    for (const id of ids) {
      const e = this.faultTable.get(id)!;
      const peers = id === ALL_PEERS ? {} : { peers: [id] };
      if (e.isolated) rules.push({ kind: 'isolate', ...peers });
      for (const [kind, inV, outV, key] of [
        ['drop', e.dropIn, e.dropOut, 'probability'],
        ['delay', e.delayIn, e.delayOut, 'ms'],
      ] as const) {
        if (inV === outV && inV > 0) rules.push({ kind, ...peers, [key]: inV, direction: 'both' });
        else {
          if (inV > 0) rules.push({ kind, ...peers, [key]: inV, direction: 'in' });
          if (outV > 0) rules.push({ kind, ...peers, [key]: outV, direction: 'out' });
        }
      }
    }
    return rules;
  }

  // -------------------------------------------------------------------------------------
  // Observation and shutdown

  health(): Map<number, PeerHealth> {
    const out = new Map<number, PeerHealth>();
    const ids = [...this.peers.keys()].sort((a, b) => a - b);
    for (const id of ids) {
      const p = this.peers.get(id)!;
      const c = this.contacts.get(id);
      const h: PeerHealth = {
        address: p.address,
        connected: p.state === 'open',
        sentMsgs: p.sentMsgs,
        recvMsgs: c?.recvMsgs ?? 0,
        queued: p.queue.length,
      };
      if (p.lastError !== undefined) h.lastError = p.lastError;
      if (c?.lastContactMs !== undefined) h.lastContactMs = c.lastContactMs;
      out.set(id, h);
    }
    return out;
  }

  /** Closes every connection; no callback runs once this is called. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.flushHandle !== undefined) clearImmediate(this.flushHandle);
    this.flushHandle = undefined;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    const sockets: WebSocket[] = [];
    for (const peer of this.peers.values()) {
      const ws = peer.ws;
      this.dropConnection(peer, 1001, 'node is shutting down');
      if (ws !== undefined) sockets.push(ws);
      peer.queue = [];
    }
    this.dirty.clear();
    for (const ws of this.inbound.values()) {
      closeSocket(ws, 1001, 'node is shutting down');
      sockets.push(ws);
    }
    this.inbound.clear();
    await Promise.all(sockets.map((ws) => waitClosed(ws, 1000)));
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
  }

  // -------------------------------------------------------------------------------------
  // Helpers

  private callUnreachable(id: number): void {
    if (this.closed) return;
    try {
      this.cb.onUnreachable(id);
    } catch (err) {
      this.log.error(`onUnreachable(${id}) threw: ${errText(err)}`);
    }
  }

  private callPeerLost(id: number): void {
    if (this.closed || this.cb.onPeerLost === undefined) return;
    try {
      this.cb.onPeerLost(id);
    } catch (err) {
      this.log.error(`onPeerLost(${id}) threw: ${errText(err)}`);
    }
  }

  private callRemoved(byPeer: number): void {
    if (this.closed || this.toldRemoved || this.cb.onRemoved === undefined) return;
    this.toldRemoved = true;
    try {
      this.cb.onRemoved(byPeer);
    } catch (err) {
      this.log.error(`onRemoved(${byPeer}) threw: ${errText(err)}`);
    }
  }

  private callSnapshotStatus(id: number, ok: boolean): void {
    if (this.closed) return;
    try {
      this.cb.onSnapshotStatus(id, ok);
    } catch (err) {
      this.log.error(`onSnapshotStatus(${id}, ${ok}) threw: ${errText(err)}`);
    }
  }

  /** A tracked timer: close() cancels every one still pending. */
  private later(ms: number, fn: () => void): NodeJS.Timeout {
    const t = setTimeout(() => {
      this.timers.delete(t);
      if (this.closed) return;
      try {
        fn();
      } catch (err) {
        this.log.error(`transport timer failed: ${errText(err)}`);
      }
    }, ms);
    this.timers.add(t);
    return t;
  }

  private clearLater(t: NodeJS.Timeout): void {
    clearTimeout(t);
    this.timers.delete(t);
  }
}

/** `host:port` or `[v6]:port`; anything else (a scheme, a path, no port) is a config mistake. */
const ADDRESS = /^(?:\[[0-9A-Fa-f:.]+\]|[^\s:/?#[\]@]+):(\d{1,5})$/;

function peerUrl(address: string, secure: boolean): string | undefined {
  const m = ADDRESS.exec(address);
  const port = m === null ? 0 : Number(m[1]);
  if (port < 1 || port > 65535) return undefined;
  try {
    return new URL(`${secure ? 'wss' : 'ws'}://${address}/raft`).href;
  } catch {
    return undefined;
  }
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** Answers a refused upgrade with a plain HTTP error whose reason the dialler can show. */
function refuseUpgrade(socket: Duplex, status: number, reason: string): void {
  const body = `${reason}\n`;
  // Header values must be printable ASCII; the body keeps the reason as is.
  const headerReason = reason.replace(/[^\x20-\x7e]/g, '?');
  socket.once('finish', () => socket.destroy());
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\n` +
      'Connection: close\r\n' +
      'Content-Type: text/plain; charset=utf-8\r\n' +
      `Content-Length: ${Buffer.byteLength(body)}\r\n` +
      `X-Raftctl-Reason: ${headerReason}\r\n\r\n${body}`,
  );
}

function closeSocket(ws: WebSocket, code: number, reason: string): void {
  try {
    if (ws.readyState === WebSocket.CONNECTING) ws.terminate();
    else ws.close(code, truncateUtf8(reason, MAX_CLOSE_REASON));
  } catch {
    ws.terminate();
  }
}

function waitClosed(ws: WebSocket, timeoutMs: number): Promise<void> {
  if (ws.readyState === WebSocket.CLOSED) return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(() => {
      ws.terminate();
      resolve();
    }, timeoutMs);
    ws.once('close', () => {
      clearTimeout(t);
      resolve();
    });
  });
}

function truncateUtf8(s: string, maxBytes: number): string {
  if (Buffer.byteLength(s) <= maxBytes) return s;
  let t = s;
  while (Buffer.byteLength(`${t}…`) > maxBytes) t = t.slice(0, -1);
  return `${t}…`;
}

/** Pieces of data held in memory, as views. */
function piecesOf(data: Uint8Array): SnapshotPieces {
  let at = 0;
  return {
    size: data.length,
    next: async (maxBytes) => {
      const from = at;
      at = Math.min(data.length, at + maxBytes);
      return data.subarray(from, at);
    },
    close: async () => {},
  };
}

function copyRawData(data: RawData): Uint8Array {
  if (Array.isArray(data)) {
    const out = new Uint8Array(data.reduce((n, b) => n + b.length, 0));
    let at = 0;
    for (const b of data) {
      out.set(b, at);
      at += b.length;
    }
    return out;
  }
  // new Uint8Array(view) copies; Buffer#slice would not.
  return data instanceof ArrayBuffer ? new Uint8Array(data.slice(0)) : new Uint8Array(data);
}

function describeFault(f: Fault): string {
  const peers = f.peers === undefined || f.peers.length === 0 ? 'all peers' : `peers ${f.peers.join(',')}`;
  const dir = f.kind === 'drop' || f.kind === 'delay' ? ` ${f.direction ?? 'both'}` : '';
  const amount = f.kind === 'drop' ? ` p=${f.probability ?? 1}` : f.kind === 'delay' ? ` ${f.ms ?? 0}ms` : '';
  return `${f.kind}${amount}${dir} ${peers}`;
}

function errText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
