// The node's operator endpoint: a WebSocket server on `/control` that speaks the protocol in
// src/protocol/control.ts. It answers commands through a NodeApi and streams state and events
// to subscribers without ever letting a slow console hold the node back: every connection
// has a bounded queue, events beyond it are dropped and reported later as a `lost` count.

import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { type RawData, WebSocket, WebSocketServer } from 'ws';
import { type BinaryPut, messageBytes, PutResultWriter, parsePutFrame } from '../protocol/binary.js';
import {
  type ClientFrame,
  COMMAND_ERROR_CODES,
  type CommandArgs,
  type CommandCall,
  CommandError,
  type CommandErrorCode,
  type CommandFrame,
  commandCall,
  type EntryView,
  type ErrorFrame,
  type EventKind,
  type EventOf,
  type FrameError,
  type HelloInfo,
  MAX_BATCH_FRAMES,
  type NodeEvent,
  type NodeHello,
  type NodeState,
  type ParseResult,
  PROTOCOL_VERSION,
  parseClientFrames,
  type ResultError,
  type ResultFrame,
  type SubscribeOptions,
} from '../protocol/control.js';
import { describeEntry, describeMessage, describeReady, type EntryFormatter } from '../raft/describe.js';
import type { Logger } from '../raft/logger.js';
import type { Ready } from '../raft/ready.js';
import type { Entry, Message } from '../raft/types.js';

/** What the control server needs from the node. */
export interface NodeApi {
  hello(): HelloInfo;
  state(): NodeState;
  /**
   * Runs a validated command. Answers with a JSON-serializable value, or throws a
   * CommandError; anything else thrown is reported to the client as `internal`.
   * Written as `execute(...[cmd, args]: CommandCall)`, a `switch (cmd)` narrows `args`.
   */
  execute(...call: CommandCall): Promise<unknown>;
  /**
   * Runs a plain put that came in a binary frame (see protocol/binary.ts); `listener` hears
   * its outcome. Throws, as execute rejects, when the node does not take it at all.
   */
  putBytes(key: Uint8Array, value: Uint8Array, listener: PutListener): void;
  /** Whether the `fault` command may run; checked here before execute is called. */
  readonly allowFaults: boolean;
}

/** How a binary put ended: its revision and the node's term, or the error execute would throw. */
export interface PutListener {
  resolve(result: { revision: number }, term: number): void;
  reject(err: unknown): void;
}

export type ControlLogger = Pick<Logger, 'debug' | 'info' | 'warn' | 'error'>;

export interface ControlServerOptions {
  api: NodeApi;
  logger: ControlLogger;
  /** When set, a client's hello must carry this token. */
  token?: string;
  /** Frames (events) held per connection while the socket is backed up; beyond it events are dropped. Default 1024. */
  maxQueue?: number;
  /** Bytes the socket may have buffered before frames wait in the queue instead. Default 4 MiB. */
  maxBufferedBytes?: number;
  /** Commands one connection may have running at once. Default 256. */
  maxInFlight?: number;
  /** Ping period for detecting dead connections; 0 disables. Default 30 s. */
  pingIntervalMs?: number;
}

/** Largest frame a client may send; commands are small, so 1 MiB leaves room for big values. */
export const MAX_INBOUND_FRAME_BYTES = 1024 * 1024;

const CLOSE_GRACE_MS = 1000;

interface Subscription {
  stateTimer: NodeJS.Timeout | undefined;
  /** undefined: no events; an empty set is never stored (absent `kinds` means all). */
  events: { kinds: ReadonlySet<EventKind> | undefined; sample: number; credit: number } | undefined;
}

/** One client connection and its outbound queues. */
interface Session {
  readonly ws: WebSocket;
  readonly peer: string;
  greeted: boolean;
  sub: Subscription | undefined;
  /** Hello, results and errors: never dropped, sent before anything else. */
  control: string[];
  /** The newest state frame not yet handed to the socket; a newer one replaces it. */
  pendingState: string | undefined;
  /** Events and `lost` markers, in order; bounded by maxQueue. */
  events: string[];
  /** Events dropped since the last `lost` frame was queued. */
  lost: number;
  commandsInFlight: number;
  /** The client reads batched frames (said so in its hello): output goes out once a turn, as one array. */
  batch: boolean;
  /** A batched flush is already scheduled for this turn. */
  flushQueued: boolean;
  /** The client sends binary puts and reads their answers in binary frames (said so in its hello). */
  binary: boolean;
  /** Answers to binary puts not yet handed to the socket. */
  putResults: PutResultWriter | undefined;
  alive: boolean;
  closed: boolean;
}

/** Bytes of queued frames joined into one batched frame before the rest waits for the next. */
const BATCH_BYTES = 256 * 1024;

export class ControlServer {
  private readonly api: NodeApi;
  private readonly logger: ControlLogger;
  private readonly tokenDigest: Buffer | undefined;
  private readonly maxQueue: number;
  private readonly maxBufferedBytes: number;
  private readonly maxInFlight: number;
  private readonly wss: WebSocketServer;
  private readonly sessions = new Set<Session>();
  private readonly pingTimer: NodeJS.Timeout | undefined;
  private closing = false;

  constructor(opts: ControlServerOptions) {
    this.api = opts.api;
    this.logger = opts.logger;
    // Comparing digests gives timingSafeEqual two equal-length buffers and hides the token's length.
    this.tokenDigest = opts.token === undefined ? undefined : digest(opts.token);
    this.maxQueue = Math.max(1, opts.maxQueue ?? 1024);
    this.maxBufferedBytes = opts.maxBufferedBytes ?? 4 * 1024 * 1024;
    this.maxInFlight = opts.maxInFlight ?? 256;
    this.wss = new WebSocketServer({
      noServer: true,
      maxPayload: MAX_INBOUND_FRAME_BYTES,
      perMessageDeflate: false,
      clientTracking: false,
    });
    const ping = opts.pingIntervalMs ?? 30_000;
    if (ping > 0) {
      this.pingTimer = setInterval(() => this.pingAll(), ping);
      this.pingTimer.unref();
    }
  }

  /** Number of open operator connections. */
  get connections(): number {
    return this.sessions.size;
  }

  /** Takes over an HTTP upgrade the node's server routed here (path `/control`). */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    if (this.closing) {
      socket.end('HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => this.accept(ws, req));
  }

  /**
   * Whether any subscriber takes events of this kind. Building an event (describing every
   * message and entry) costs more than the consensus work it reports, so the node asks
   * first and skips events nobody would receive.
   */
  wants(kind: EventKind): boolean {
    for (const s of this.sessions) {
      const ev = s.sub?.events;
      if (ev !== undefined && !s.closed && (ev.kinds === undefined || ev.kinds.has(kind))) return true;
    }
    return false;
  }

  /** Streams an event to every subscriber whose filter and sampling let it through. */
  publish(event: NodeEvent): void {
    // Serialized at most once, and only if somebody wants it.
    let text: string | undefined;
    for (const s of this.sessions) {
      const ev = s.sub?.events;
      if (ev === undefined || s.closed) continue;
      if (ev.kinds !== undefined && !ev.kinds.has(event.kind)) continue;
      // Deterministic sampling: deliver whenever the accumulated fraction reaches a whole
      // event, so a rate of 0.25 is exactly every fourth matching event.
      ev.credit += ev.sample;
      if (ev.credit < 1) continue;
      ev.credit -= 1;
      if (s.events.length >= this.maxQueue) {
        s.lost++;
        continue;
      }
      this.queueLost(s);
      text ??= JSON.stringify({ type: 'event', event });
      s.events.push(text);
      this.flush(s);
    }
  }

  /** Closes every connection (1001) and stops accepting new ones. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    if (this.pingTimer !== undefined) clearInterval(this.pingTimer);
    const waits: Promise<void>[] = [];
    for (const s of this.sessions) {
      this.endSubscription(s);
      waits.push(
        new Promise<void>((resolve) => {
          if (s.ws.readyState === WebSocket.CLOSED) return resolve();
          const timer = setTimeout(() => {
            s.ws.terminate();
            resolve();
          }, CLOSE_GRACE_MS);
          s.ws.once('close', () => {
            clearTimeout(timer);
            resolve();
          });
          s.ws.close(1001, 'node shutting down');
        }),
      );
    }
    await Promise.all(waits);
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
  }

  // -------------------------------------------------------------------------------------
  // Connections

  private accept(ws: WebSocket, req: IncomingMessage): void {
    const peer = `${req.socket.remoteAddress ?? '?'}:${req.socket.remotePort ?? '?'}`;
    const s: Session = {
      ws,
      peer,
      greeted: false,
      sub: undefined,
      control: [],
      pendingState: undefined,
      events: [],
      lost: 0,
      commandsInFlight: 0,
      batch: false,
      flushQueued: false,
      binary: false,
      putResults: undefined,
      alive: true,
      closed: false,
    };
    this.sessions.add(s);
    this.logger.debug(`control: connection from ${peer}`);
    ws.on('message', (data, isBinary) => this.onMessage(s, data, isBinary));
    ws.on('pong', () => {
      s.alive = true;
    });
    ws.on('error', (err) => this.logger.debug(`control: connection ${peer}: ${err.message}`));
    ws.on('close', (code) => {
      s.closed = true;
      this.endSubscription(s);
      s.control = [];
      s.events = [];
      s.putResults = undefined;
      this.sessions.delete(s);
      this.logger.debug(`control: ${peer} disconnected (${code})`);
    });
  }

  private pingAll(): void {
    for (const s of this.sessions) {
      if (!s.alive) {
        this.logger.info(`control: ${s.peer} stopped answering pings; dropping it`);
        s.ws.terminate();
        continue;
      }
      s.alive = false;
      s.ws.ping();
    }
  }

  private onMessage(s: Session, data: RawData, isBinary: boolean): void {
    if (s.closed) return;
    if (!isBinary) {
      for (const parsed of parseClientFrames(rawText(data))) this.onFrame(s, parsed);
      return;
    }
    if (!s.binary) {
      const message = s.greeted
        ? 'binary frames are accepted only after a hello with "binary": true; send JSON text'
        : 'send hello before any binary frame';
      this.sendError(s, { code: 'bad_frame', message });
      return;
    }
    for (const parsed of parsePutFrame(messageBytes(data))) {
      if (parsed.ok) this.runPut(s, parsed.msg);
      else this.onFrame(s, parsed);
    }
  }

  /** One message of a frame (a batch is handled as if each message had its own frame). */
  private onFrame(s: Session, parsed: ParseResult<ClientFrame>): void {
    if (s.closed) return;
    if (!parsed.ok) {
      // A command with a usable id is answered as a failed result so the caller's request
      // settles; anything else gets a connection-level error. Either way the connection stays.
      if (parsed.command !== undefined && s.greeted) {
        this.sendResult(s, {
          type: 'result',
          id: parsed.command.id,
          ok: false,
          error: { code: parsed.command.code, message: parsed.error.message, field: parsed.error.field },
        });
      } else {
        this.sendError(s, parsed.error);
      }
      return;
    }
    const msg: ClientFrame = parsed.msg;
    if (msg.type === 'hello') {
      this.onHello(s, msg.version, msg.token, msg.batch === true, msg.binary === true);
      return;
    }
    if (!s.greeted) {
      // Nothing but hello until the client has identified itself (and shown the token).
      this.sendError(
        s,
        this.tokenDigest !== undefined
          ? { code: 'unauthorized', field: 'type', message: 'send hello with the token first' }
          : { code: 'bad_frame', field: 'type', message: `send hello before ${msg.type}` },
      );
      return;
    }
    switch (msg.type) {
      case 'subscribe':
        this.subscribe(s, msg);
        return;
      case 'unsubscribe':
        this.endSubscription(s);
        return;
      case 'command':
        void this.runCommand(s, msg);
        return;
    }
  }

  private onHello(
    s: Session,
    version: number,
    token: string | undefined,
    batch: boolean,
    binary: boolean,
  ): void {
    if (s.greeted) {
      this.sendError(s, { code: 'bad_frame', field: 'type', message: 'hello already received' });
      return;
    }
    if (this.tokenDigest !== undefined && (token === undefined || !tokenMatches(this.tokenDigest, token))) {
      this.logger.warn(`control: ${s.peer} presented ${token === undefined ? 'no' : 'a wrong'} token`);
      // Sent directly: nothing else can be queued before hello. Closing refuses further guesses
      // on this connection.
      s.ws.send(
        frame({ type: 'error', error: { code: 'unauthorized', field: 'token', message: 'bad token' } }),
      );
      s.ws.close(1008, 'unauthorized');
      s.closed = true;
      return;
    }
    if (version !== PROTOCOL_VERSION) {
      // The connection stays open so a client may retry with a version it also speaks.
      this.sendError(s, {
        code: 'bad_version',
        field: 'version',
        message: `this node speaks protocol version ${PROTOCOL_VERSION}, not ${version}`,
      });
      return;
    }
    let info: HelloInfo;
    try {
      info = this.api.hello();
    } catch (err) {
      this.logger.error(`control: hello failed: ${errorText(err)}`);
      s.ws.close(1011, 'node unavailable');
      s.closed = true;
      return;
    }
    s.greeted = true;
    s.batch = batch;
    s.binary = binary;
    const hello: NodeHello = {
      type: 'hello',
      version: PROTOCOL_VERSION,
      nodeId: info.nodeId,
      clusterId: info.clusterId,
      members: info.members,
      allowFaults: this.api.allowFaults,
      batch: true,
      binary: true,
      maxInFlight: this.maxInFlight,
    };
    s.control.push(frame(hello));
    this.flush(s);
  }

  // -------------------------------------------------------------------------------------
  // Subscriptions

  private subscribe(s: Session, opts: SubscribeOptions): void {
    // A new subscribe replaces the previous one entirely.
    this.endSubscription(s);
    const sub: Subscription = { stateTimer: undefined, events: undefined };
    if (opts.events !== undefined) {
      const kinds = opts.events.kinds;
      const sample = opts.events.sample ?? 1;
      sub.events = {
        kinds: kinds === undefined ? undefined : new Set(kinds),
        sample,
        // Starting one step short of a whole event delivers the first matching event at any
        // non-zero rate; a rate of 0 never delivers.
        credit: sample > 0 ? 1 - sample : 0,
      };
    }
    s.sub = sub;
    if (opts.state !== undefined) {
      this.pushState(s);
      sub.stateTimer = setInterval(() => this.pushState(s), opts.state.everyMs);
      sub.stateTimer.unref();
    }
  }

  private endSubscription(s: Session): void {
    if (s.sub?.stateTimer !== undefined) clearInterval(s.sub.stateTimer);
    s.sub = undefined;
    s.pendingState = undefined;
  }

  private pushState(s: Session): void {
    if (s.closed) return;
    let state: NodeState;
    try {
      state = this.api.state();
    } catch (err) {
      this.logger.error(`control: state() failed: ${errorText(err)}`);
      return;
    }
    // Coalesced: a backed-up subscriber gets the newest state once it drains, not a backlog.
    s.pendingState = frame({ type: 'state', state });
    this.flush(s);
  }

  // -------------------------------------------------------------------------------------
  // Commands

  private async runCommand(s: Session, cmd: CommandFrame): Promise<void> {
    if (cmd.command === 'fault' && !this.api.allowFaults) {
      this.failCommand(
        s,
        cmd.id,
        'faults_disabled',
        'fault injection is disabled on this node (start it with faults allowed)',
      );
      return;
    }
    if (!this.admit(s, cmd.id)) return;
    let value: unknown;
    try {
      value = await this.api.execute(...commandCall(cmd));
    } catch (err) {
      this.commandFailed(s, cmd.id, cmd.command, err);
      return;
    } finally {
      s.commandsInFlight--;
    }
    let text: string;
    try {
      // JSON has no undefined; a command with nothing to say answers null.
      text = frame({ type: 'result', id: cmd.id, ok: true, value: value ?? null });
    } catch (err) {
      this.logger.error(`control: result of ${cmd.command} is not JSON-serializable: ${errorText(err)}`);
      this.failCommand(s, cmd.id, 'internal', 'the result could not be serialized');
      return;
    }
    this.sendControl(s, text);
  }

  /** Counts a command in flight on the connection, or fails it if the connection is at its limit. */
  private admit(s: Session, id: number): boolean {
    if (s.commandsInFlight >= this.maxInFlight) {
      this.failCommand(
        s,
        id,
        'unavailable',
        `too many commands in flight on this connection (max ${this.maxInFlight})`,
      );
      return false;
    }
    s.commandsInFlight++;
    return true;
  }

  /** Answers a command that threw: with its own code if it has a known one, else as `internal`. */
  private commandFailed(s: Session, id: number, name: string, err: unknown): void {
    const known = asCommandError(err);
    if (known !== undefined) {
      this.failCommand(s, id, known.code, known.message, known.leader);
      return;
    }
    this.logger.error(`control: command ${name} failed: ${errorText(err)}`);
    this.failCommand(s, id, 'internal', errorText(err));
  }

  /** A put from a binary frame: answered in the next binary frame, or as a failed result. */
  private runPut(s: Session, put: BinaryPut): void {
    if (!this.admit(s, put.id)) return;
    const pending = new PendingPut(this, s, put.id);
    try {
      this.api.putBytes(put.key, put.value, pending);
    } catch (err) {
      pending.reject(err);
    }
  }

  /** A binary put applied (called by its PendingPut): the answer joins the session's next binary frame. */
  putAnswered(s: Session, id: number, revision: number, term: number): void {
    s.commandsInFlight--;
    if (s.closed) return;
    s.putResults ??= new PutResultWriter();
    s.putResults.add(id, revision, term);
    this.flush(s);
  }

  /** A binary put failed (called by its PendingPut): answered as a failed command. */
  putFailed(s: Session, id: number, err: unknown): void {
    s.commandsInFlight--;
    this.commandFailed(s, id, 'put', err);
  }

  private failCommand(
    s: Session,
    id: number,
    code: CommandErrorCode,
    message: string,
    leader?: number,
  ): void {
    this.sendResult(s, { type: 'result', id, ok: false, error: resultError(code, message, leader) });
  }

  // -------------------------------------------------------------------------------------
  // Output

  private sendResult(s: Session, r: ResultFrame): void {
    this.sendControl(s, frame(r));
  }

  private sendError(s: Session, error: FrameError): void {
    const f: ErrorFrame = { type: 'error', error };
    this.sendControl(s, frame(f));
  }

  private sendControl(s: Session, text: string): void {
    if (s.closed) return;
    s.control.push(text);
    this.flush(s);
  }

  /** Queues the `lost` marker at the point of the gap, once the queue has room again. */
  private queueLost(s: Session): void {
    if (s.lost === 0 || s.events.length >= this.maxQueue) return;
    s.events.push(frame({ type: 'lost', count: s.lost }));
    s.lost = 0;
  }

  /**
   * Sends what is queued. A batching client gets everything produced in this turn (every
   * result of an applied batch of entries, say) as one frame, written once the turn's
   * promise callbacks have run; otherwise each frame goes out at once.
   */
  private flush(s: Session): void {
    if (!s.batch) {
      this.drain(s);
      return;
    }
    if (s.flushQueued) return;
    s.flushQueued = true;
    process.nextTick(() => {
      s.flushQueued = false;
      this.drain(s);
    });
  }

  /**
   * Hands queued frames to the socket while it is not backed up. Each send's callback fires
   * once ws has written the frame out, which is when there may be room for more.
   */
  private drain(s: Session): void {
    const ws = s.ws;
    while (!s.closed && ws.readyState === WebSocket.OPEN && ws.bufferedAmount < this.maxBufferedBytes) {
      // Answers to binary puts go out once the text answers and errors queued before them have.
      const answers = s.control.length === 0 ? s.putResults?.take() : undefined;
      if (answers !== undefined) {
        ws.send(answers, { binary: true }, (err) => {
          if (err === undefined || err === null) this.drain(s);
        });
        continue;
      }
      const first = this.nextFrame(s);
      if (first === undefined) return;
      let text = first;
      if (s.batch) {
        const parts = [first];
        let bytes = first.length;
        while (bytes < BATCH_BYTES && parts.length < MAX_BATCH_FRAMES) {
          const more = this.nextFrame(s);
          if (more === undefined) break;
          parts.push(more);
          bytes += more.length;
        }
        if (parts.length > 1) text = `[${parts.join(',')}]`;
      }
      ws.send(text, (err) => {
        // A failed write means the connection is going away; its close handler cleans up.
        if (err === undefined || err === null) this.drain(s);
      });
    }
  }

  /** The next frame to send: control frames first, then the newest state, then events. */
  private nextFrame(s: Session): string | undefined {
    const control = s.control.shift();
    if (control !== undefined) return control;
    const state = s.pendingState;
    if (state !== undefined) {
      s.pendingState = undefined;
      return state;
    }
    const event = s.events.shift();
    if (event !== undefined) return event;
    // Drained: report any loss that happened while nothing else was flowing.
    if (s.lost > 0) {
      this.queueLost(s);
      return s.events.shift();
    }
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------
// Helpers for building events from the Raft core's values

/** An entry as events show it: the payload in describe form. */
export function entryView(e: Entry, fmt?: EntryFormatter): EntryView {
  const full = describeEntry(e, fmt);
  const head = `${e.term}/${e.index} ${e.type}`;
  return { term: e.term, index: e.index, type: e.type, data: full.slice(head.length).trimStart() };
}

type EventStamp = Pick<NodeEvent, 'seq' | 'at' | 'node'>;

/** The `ready` event for a Ready the node is about to handle. */
export function readyEvent(stamp: EventStamp, rd: Ready, fmt?: EntryFormatter): EventOf<'ready'> {
  return {
    ...stamp,
    kind: 'ready',
    hardState: rd.hardState === undefined ? undefined : { ...rd.hardState },
    softState: rd.softState === undefined ? undefined : { ...rd.softState },
    entries: rd.entries.map((e) => entryView(e, fmt)),
    committed: rd.committedEntries.map((e) => entryView(e, fmt)),
    messages: rd.messages.length,
    mustSync: rd.mustSync,
    describe: describeReady(rd, fmt),
  };
}

/** The `message` event for a message sent (`out`) or received (`in`). */
export function messageEvent(
  stamp: EventStamp,
  m: Message,
  direction: 'out' | 'in',
  fmt?: EntryFormatter,
): EventOf<'message'> {
  return {
    ...stamp,
    kind: 'message',
    from: m.from,
    to: m.to,
    msgType: m.type,
    term: m.term,
    logTerm: m.logTerm,
    index: m.index,
    commit: m.commit,
    reject: m.reject,
    entries: m.entries.length,
    describe: describeMessage(m, fmt),
    direction,
  };
}

// ---------------------------------------------------------------------------------------
// Small helpers

/**
 * One binary put on its way through the node: the one object it costs while it waits (a
 * promise, its resolvers and an async frame per write were a fifth of a busy leader's garbage).
 */
class PendingPut implements PutListener {
  constructor(
    private readonly server: ControlServer,
    private readonly session: Session,
    private readonly id: number,
  ) {}

  resolve(result: { revision: number }, term: number): void {
    this.server.putAnswered(this.session, this.id, result.revision, term);
  }

  reject(err: unknown): void {
    this.server.putFailed(this.session, this.id, err);
  }
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}

function tokenMatches(expected: Buffer, given: string): boolean {
  return timingSafeEqual(expected, digest(given));
}

function frame(f: object): string {
  return JSON.stringify(f);
}

function rawText(data: RawData): string {
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  if (data instanceof ArrayBuffer) return Buffer.from(data).toString('utf8');
  return data.toString('utf8');
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function resultError(code: CommandErrorCode, message: string, leader?: number): ResultError {
  return leader !== undefined && leader > 0 ? { code, message, leader } : { code, message };
}

/** A CommandError, or an error from another module shaped like one (its code is known). */
function asCommandError(err: unknown): CommandError | undefined {
  if (err instanceof CommandError) return err;
  if (err instanceof Error && 'code' in err && typeof err.code === 'string') {
    const code = err.code;
    if ((COMMAND_ERROR_CODES as readonly string[]).includes(code)) {
      const leader = 'leader' in err && typeof err.leader === 'number' ? err.leader : undefined;
      return new CommandError(code as CommandErrorCode, err.message, leader);
    }
  }
  return undefined;
}

/** Re-exported so a node implementation needs one import for the API it implements. */
export type { CommandArgs, CommandCall, HelloInfo, NodeEvent, NodeState };
export { CommandError };
