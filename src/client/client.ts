// A typed client for a node's `/control` endpoint, shared by the CLI, the console, tests and
// the bench. Commands are promises matched to results by id; subscriptions survive
// reconnects (the client re-sends its last subscribe after every new hello).

import { type RawData, WebSocket } from 'ws';
import type { z } from 'zod';
import { messageBytes, type PutAnswer, PutFrameWriter, readPutResults } from '../protocol/binary.js';
import {
  COMMAND_RESULTS,
  type CommandArgs,
  type CommandErrorCode,
  type CommandName,
  type CommandValue,
  type FrameErrorCode,
  MAX_BATCH_FRAMES,
  type NodeEvent,
  type NodeFrame,
  type NodeHello,
  type NodeState,
  PROTOCOL_VERSION,
  parseCommandArgs,
  parseNodeFrames,
  type SubscribeOptions,
  SubscribeOptionsSchema,
} from '../protocol/control.js';
import { maskedWebSocket } from '../protocol/frame-mask.js';

export type ControlErrorCode = CommandErrorCode | FrameErrorCode;

/**
 * Why a command or a connection attempt failed. `unavailable` covers every way the
 * connection can be missing (refused, dropped, closed by us); `timeout` a deadline passing.
 */
export class ControlError extends Error {
  override name = 'ControlError';
  readonly code: ControlErrorCode;
  /** With not_leader: the leader to retry against, when the node knows it. */
  readonly leader: number | undefined;
  /** With bad_args, bad_frame: the offending field path. */
  readonly field: string | undefined;
  constructor(code: ControlErrorCode, message: string, extra: { leader?: number; field?: string } = {}) {
    super(message);
    this.code = code;
    this.leader = extra.leader;
    this.field = extra.field;
  }
}

/** Codes of refusals: the node did not run the command (no leader, or leadership moving). */
const REFUSAL_CODES: ReadonlySet<ControlErrorCode> = new Set(['not_leader', 'no_leader', 'proposal_dropped']);

/**
 * Whether `err` is a refusal: the command did not run, so it may be sent again — to
 * `err.leader` when the refusal names one. Any other failure of a write may have applied it.
 */
export function isRefusal(err: unknown): err is ControlError {
  return err instanceof ControlError && REFUSAL_CODES.has(err.code);
}

export interface ReconnectOptions {
  /** First delay after a drop. Default 100 ms. */
  initialDelayMs?: number;
  /** Ceiling of the exponential backoff. Default 5 s. */
  maxDelayMs?: number;
  /** Growth per failed attempt. Default 2. */
  factor?: number;
  /** Random spread, as a fraction of the delay (0.2 = ±20 %). Default 0.2. */
  jitter?: number;
  /** Give up after this many consecutive failed attempts. Default: never. */
  maxAttempts?: number;
}

/** PEM text or bytes, or several of them. */
export type Pem = string | Buffer | (string | Buffer)[];

/**
 * TLS for `wss://` nodes: `ca` to trust the cluster's own CA (default: the system's CAs),
 * `cert` and `key` for nodes that require a client certificate (started with --tls-ca).
 */
export interface TlsOptions {
  ca?: Pem;
  cert?: Pem;
  key?: Pem;
  /** Server name to verify the certificate against, when it differs from the address's host. */
  servername?: string;
}

export interface ConnectOptions {
  token?: string;
  /** Connect with TLS: an address without a scheme then means `wss://`. */
  tls?: TlsOptions;
  /** Deadline for connecting and the hello exchange. Default 5 s. */
  timeoutMs?: number;
  /** Default deadline of command(). Default 10 s. */
  commandTimeoutMs?: number;
  /**
   * Reconnect after the connection drops (not after close(), and not after the node refused
   * the token or version). The first connect() still rejects if the node is unreachable.
   */
  reconnect?: boolean | ReconnectOptions;
}

export interface CommandOptions {
  timeoutMs?: number;
}

export interface CloseInfo {
  code: number;
  reason: string;
  /** Whether the client will try to reconnect. */
  willReconnect: boolean;
}

export interface ControlClientEvents {
  /** A hello completed; `reconnected` is false for the connect() that was awaited. */
  open: [hello: NodeHello, reconnected: boolean];
  close: [info: CloseInfo];
  /** A reconnect attempt is scheduled after `delayMs`. */
  reconnecting: [attempt: number, delayMs: number];
  state: [state: NodeState];
  event: [event: NodeEvent];
  /** Events the node dropped because this client did not keep up. */
  lost: [count: number];
  /** An `error` frame not tied to a request, or a frame this client could not parse. */
  protocolError: [error: ControlError];
}

type EventName = keyof ControlClientEvents;
type Listener<K extends EventName> = (...args: ControlClientEvents[K]) => void;
type ListenerTable = { [K in EventName]?: Set<Listener<K>> };

/** Arguments can be left out for commands that take none. */
export type ArgsParam<N extends CommandName> =
  Record<string, never> extends CommandArgs<N>
    ? [args?: CommandArgs<N>, opts?: CommandOptions]
    : [args: CommandArgs<N>, opts?: CommandOptions];

interface Pending {
  name: CommandName;
  /** The promise's own resolve: the value is checked (checkValue) before it is handed over. */
  resolve(value: unknown): void;
  reject(err: ControlError): void;
  timeoutMs: number;
  /** performance.now() at which the command times out. */
  deadline: number;
}

const DEFAULT_CONNECT_TIMEOUT_MS = 5000;
export const DEFAULT_COMMAND_TIMEOUT_MS = 10_000;
const CLOSE_GRACE_MS = 1000;
/** Largest batch of commands in one frame, in UTF-16 units (the node takes frames up to 1 MiB). */
const OUTBOX_BYTES = 256 * 1024;

/**
 * `host:port`, `[::1]:port`, `ws://host:port`, `wss://host:port`, `http://host:port` or
 * `https://host:port` (with or without a path) → the node's control URL. An address without
 * a scheme means `wss://` when `secure`.
 */
export function controlUrl(address: string, secure = false): string {
  const withScheme = /^[a-z]+:\/\//i.test(address) ? address : `${secure ? 'wss' : 'ws'}://${address}`;
  const url = new URL(withScheme);
  if (url.protocol === 'http:') url.protocol = 'ws:';
  if (url.protocol === 'https:') url.protocol = 'wss:';
  if (url.protocol !== 'ws:' && url.protocol !== 'wss:') {
    throw new ControlError('unavailable', `unsupported address scheme in '${address}'`);
  }
  if (url.pathname === '' || url.pathname === '/') url.pathname = '/control';
  return url.toString();
}

export class ControlClient {
  private readonly listeners: ListenerTable = {};
  private ws: WebSocket | undefined;
  private url: string | undefined;
  private opts: ConnectOptions = {};
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  /**
   * One timer for every pending command's timeout, due at the earliest deadline (sweepAt):
   * a busy client sends tens of thousands of commands a second, and a timer each is a
   * timer object, a closure and a timer-list insert and removal per command.
   */
  private sweepTimer: NodeJS.Timeout | undefined;
  private sweepAt = Number.POSITIVE_INFINITY;
  private subscription: SubscribeOptions | undefined;
  private helloFrame: NodeHello | undefined;
  /** Commands written in this turn, sent together as one batched frame (nodes that accept it). */
  private outbox: string[] = [];
  /**
   * Commands sent on this connection and not yet answered by the node, those timed out here
   * included: the node still counts them against its limit (hello's maxInFlight).
   */
  private running = 0;
  /** Commands waiting for the node to answer others, oldest first. */
  private held: { ws: WebSocket; id: number; name: CommandName; args: unknown }[] = [];
  /** Plain puts written in this turn, sent as one binary frame (nodes that accept it). */
  private readonly putOutbox = new PutFrameWriter();
  private outboxBytes = 0;
  private outboxQueued = false;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private attempts = 0;
  /** Set by close(): no more reconnects, and connect() may not be reused. */
  private closed = false;

  /** The node's hello on the current connection, if connected. */
  get hello(): NodeHello | undefined {
    return this.helloFrame;
  }

  /** Commands issued and not yet settled: sent, or held until the node has room for them. */
  get inFlight(): number {
    return this.pending.size;
  }

  get connected(): boolean {
    return this.helloFrame !== undefined && this.ws?.readyState === WebSocket.OPEN;
  }

  on<K extends EventName>(event: K, listener: Listener<K>): this {
    const table = this.listeners as { [P in K]?: Set<Listener<K>> };
    let set = table[event];
    if (set === undefined) {
      set = new Set();
      table[event] = set;
    }
    set.add(listener);
    return this;
  }

  off<K extends EventName>(event: K, listener: Listener<K>): this {
    (this.listeners as { [P in K]?: Set<Listener<K>> })[event]?.delete(listener);
    return this;
  }

  once<K extends EventName>(event: K, listener: Listener<K>): this {
    const wrapped: Listener<K> = (...args) => {
      this.off(event, wrapped);
      listener(...args);
    };
    return this.on(event, wrapped);
  }

  private emit<K extends EventName>(event: K, ...args: ControlClientEvents[K]): void {
    const set = (this.listeners as { [P in K]?: Set<Listener<K>> })[event];
    if (set === undefined) return;
    for (const fn of [...set]) fn(...args);
  }

  /**
   * Connects and exchanges hellos. Rejects with ControlError: `unavailable` (refused, dropped),
   * `timeout`, `unauthorized` (token), `bad_version`.
   */
  async connect(address: string, opts: ConnectOptions = {}): Promise<NodeHello> {
    if (this.closed) throw new ControlError('unavailable', 'client is closed');
    if (this.ws !== undefined || this.reconnectTimer !== undefined) {
      throw new ControlError('unavailable', 'already connected (or reconnecting)');
    }
    this.url = controlUrl(address, opts.tls !== undefined);
    this.opts = opts;
    return this.open(false);
  }

  /**
   * Runs a command on the node. Arguments are validated locally first (rejecting with
   * `bad_args` naming the field). `status` and `members` results are validated too.
   */
  command<N extends CommandName>(name: N, ...rest: ArgsParam<N>): Promise<CommandValue<N>> {
    const [args, opts] = rest;
    const parsed = parseCommandArgs(name, args);
    if (!parsed.ok) {
      return Promise.reject(new ControlError('bad_args', parsed.message, { field: parsed.field }));
    }
    const ws = this.ws;
    if (ws === undefined || !this.connected) {
      return Promise.reject(new ControlError('unavailable', `not connected; cannot run ${name}`));
    }
    const id = this.nextId++;
    const timeoutMs = opts?.timeoutMs ?? this.opts.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS;
    const deadline = performance.now() + timeoutMs;
    return new Promise<CommandValue<N>>((resolve, reject) => {
      this.pending.set(id, {
        name,
        resolve: resolve as (value: unknown) => void,
        reject,
        timeoutMs,
        deadline,
      });
      this.armSweep(deadline);
      // Beyond the node's limit of commands in flight on a connection, a command would be
      // refused: it waits here for an answer to make room instead.
      if (this.hasRoom()) {
        this.dispatch(ws, id, name, parsed.args);
      } else this.held.push({ ws, id, name, args: parsed.args });
    });
  }

  /** Sends a command: a plain put in this turn's binary frame, anything else as JSON. */
  private dispatch(ws: WebSocket, id: number, name: CommandName, args: unknown): void {
    this.running++;
    if (name === 'put' && this.helloFrame?.binary === true && isBarePut(args as CommandArgs<'put'>)) {
      const { key, value } = args as CommandArgs<'put'>;
      // Commands leave in the order they were issued: JSON ones queued before this put go first.
      if (this.outbox.length > 0) this.flushOutbox(ws);
      this.putOutbox.add(id, key, value);
      if (this.putOutbox.byteLength > OUTBOX_BYTES) this.flushOutbox(ws);
      else this.queueFlush(ws);
      return;
    }
    this.sendCommand(ws, JSON.stringify({ type: 'command', id, command: name, args }));
  }

  private hasRoom(): boolean {
    return this.running < (this.helloFrame?.maxInFlight ?? Number.POSITIVE_INFINITY);
  }

  /**
   * The node answered command `id` (timed out here or not): held commands may go now. Returns
   * its pending entry, taken out, unless it already timed out.
   */
  private answered(id: number): Pending | undefined {
    this.running--;
    while (this.held.length > 0 && this.hasRoom()) {
      const h = this.held.shift()!;
      // One that timed out while held, or whose connection is gone, is not sent.
      if (this.pending.has(h.id) && this.ws === h.ws) this.dispatch(h.ws, h.id, h.name, h.args);
    }
    const p = this.pending.get(id);
    if (p !== undefined) this.pending.delete(id);
    return p;
  }

  /** Makes sure the sweep runs by `deadline`. */
  private armSweep(deadline: number): void {
    if (deadline >= this.sweepAt) return;
    if (this.sweepTimer !== undefined) clearTimeout(this.sweepTimer);
    this.sweepAt = deadline;
    this.sweepTimer = setTimeout(() => this.sweep(), Math.max(0, deadline - performance.now()));
  }

  /** Times out the commands past their deadline, and arms the sweep for the next deadline. */
  private sweep(): void {
    this.sweepTimer = undefined;
    this.sweepAt = Number.POSITIVE_INFINITY;
    const now = performance.now();
    let next = Number.POSITIVE_INFINITY;
    for (const [id, p] of this.pending) {
      if (p.deadline <= now) {
        this.pending.delete(id);
        p.reject(new ControlError('timeout', `${p.name}: no answer within ${p.timeoutMs} ms`));
      } else if (p.deadline < next) next = p.deadline;
    }
    if (next !== Number.POSITIVE_INFINITY) this.armSweep(next);
  }

  /**
   * Commands issued in the same turn (many callers awaiting answers that came in one frame,
   * say) leave as one frame when the node accepts batches: one write and one frame to parse
   * on each side instead of one per command.
   */
  private sendCommand(ws: WebSocket, text: string): void {
    // Binary puts queued before this command go first, so commands leave in the order they
    // were issued (and at most one of the two outboxes holds anything).
    if (this.putOutbox.count > 0) this.flushOutbox(ws);
    if (this.helloFrame?.batch !== true) {
      ws.send(text);
      return;
    }
    // A batch never grows past OUTBOX_BYTES (the node refuses frames over 1 MiB); a command
    // that big on its own goes alone, as it would unbatched.
    if (this.outboxBytes + text.length > OUTBOX_BYTES || this.outbox.length >= MAX_BATCH_FRAMES) {
      this.flushOutbox(ws);
    }
    this.outbox.push(text);
    this.outboxBytes += text.length;
    this.queueFlush(ws);
  }

  /** Sends this turn's commands once the turn is over. */
  private queueFlush(ws: WebSocket): void {
    if (this.outboxQueued) return;
    this.outboxQueued = true;
    process.nextTick(() => {
      this.outboxQueued = false;
      // A reconnect in between has already failed these commands; a new socket gets none of them.
      if (this.ws === ws) this.flushOutbox(ws);
      else {
        this.outbox = [];
        this.outboxBytes = 0;
        this.putOutbox.take();
      }
    });
  }

  private flushOutbox(ws: WebSocket): void {
    const puts = this.putOutbox.take();
    if (puts !== undefined) ws.send(puts, { binary: true });
    const batch = this.outbox;
    if (batch.length === 0) return;
    this.outbox = [];
    this.outboxBytes = 0;
    ws.send(batch.length === 1 ? batch[0]! : `[${batch.join(',')}]`);
  }

  /**
   * Asks for state frames and/or events; replaces any earlier subscription and is re-sent
   * after a reconnect. Throws ControlError(bad_args) for invalid options.
   */
  subscribe(opts: SubscribeOptions): void {
    const r = SubscribeOptionsSchema.safeParse(opts);
    if (!r.success) {
      const issue = r.error.issues[0];
      const field = issue === undefined ? '' : issue.path.map(String).join('.');
      throw new ControlError('bad_args', `subscribe: ${field}: ${issue?.message ?? 'invalid'}`, { field });
    }
    this.subscription = r.data;
    if (this.connected) this.send({ type: 'subscribe', ...r.data });
  }

  unsubscribe(): void {
    this.subscription = undefined;
    if (this.connected) this.send({ type: 'unsubscribe' });
  }

  /** Closes the connection for good: pending commands reject with `unavailable`. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.reconnectTimer !== undefined) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    const ws = this.ws;
    this.failPending('client closed');
    if (ws === undefined || ws.readyState === WebSocket.CLOSED) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        ws.terminate();
        resolve();
      }, CLOSE_GRACE_MS);
      ws.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
      ws.close(1000, 'client closing');
    });
  }

  // -------------------------------------------------------------------------------------
  // Connection life cycle

  /** Opens a socket and completes the hello; on success the socket becomes `this.ws`. */
  private open(reconnected: boolean): Promise<NodeHello> {
    const url = this.url!;
    const timeoutMs = this.opts.timeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    return new Promise<NodeHello>((resolve, reject) => {
      const tls = this.opts.tls;
      const ws = maskedWebSocket(url, {
        handshakeTimeout: timeoutMs,
        perMessageDeflate: false,
        ...(tls === undefined ? {} : tlsOptions(tls)),
      });
      this.ws = ws;
      let settled = false;
      const settle = (err: ControlError | undefined, hello?: NodeHello): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (err !== undefined) {
          if (this.ws === ws) this.ws = undefined;
          ws.removeAllListeners('close');
          // Swallow errors from a socket we are abandoning (e.g. terminate while connecting).
          ws.on('error', () => {});
          ws.terminate();
          reject(err);
          return;
        }
        resolve(hello!);
      };
      const timer = setTimeout(
        () => settle(new ControlError('timeout', `no hello from ${url} within ${timeoutMs} ms`)),
        timeoutMs,
      );
      ws.on('error', (err) => settle(new ControlError('unavailable', `${url}: ${err.message}`)));
      // Optional features this client offers in its hello; a node from before one of them
      // refuses the unknown field by name, and is greeted again without it.
      const offered = new Set(['batch', 'binary']);
      const hello = () =>
        ws.send(
          JSON.stringify({
            type: 'hello',
            version: PROTOCOL_VERSION,
            token: this.opts.token,
            ...Object.fromEntries([...offered].map((f) => [f, true])),
          }),
        );
      ws.on('open', hello);
      ws.on('close', (code, reason) => {
        if (!settled) {
          settle(
            new ControlError(
              'unavailable',
              `${url} closed the connection (${code} ${reason.toString()})`.trim(),
            ),
          );
          return;
        }
        this.onDropped(ws, code, reason.toString());
      });
      ws.on('message', (data, isBinary) => {
        if (isBinary) {
          this.onBinary(data);
          return;
        }
        for (const parsed of parseNodeFrames(data.toString())) {
          if (!parsed.ok) {
            const e = parsed.error;
            this.emit(
              'protocolError',
              new ControlError(e.code, `unreadable frame from node: ${e.message}`, e),
            );
            continue;
          }
          const f = parsed.msg;
          if (settled) {
            this.onFrame(f);
          } else if (f.type === 'hello') {
            this.helloFrame = f;
            this.attempts = 0;
            settle(undefined, f);
            // Restore the subscription before anyone sees the new connection.
            if (this.subscription !== undefined) this.send({ type: 'subscribe', ...this.subscription });
            this.emit('open', f, reconnected);
          } else if (f.type === 'error' && f.error.field !== undefined && offered.delete(f.error.field)) {
            hello();
          } else if (f.type === 'error') {
            settle(new ControlError(f.error.code, f.error.message, { field: f.error.field }));
          }
        }
      });
    });
  }

  private onFrame(f: NodeFrame): void {
    switch (f.type) {
      case 'state':
        this.emit('state', f.state);
        return;
      case 'event':
        this.emit('event', f.event);
        return;
      case 'lost':
        this.emit('lost', f.count);
        return;
      case 'result': {
        const p = this.answered(f.id);
        // Unknown ids are answers that arrived after their timeout.
        if (p === undefined) return;
        if (!f.ok) {
          p.reject(new ControlError(f.error.code, f.error.message, f.error));
          return;
        }
        const checked = checkValue(p.name, f.value);
        if (checked.ok) p.resolve(checked.value);
        else p.reject(checked.error);
        return;
      }
      case 'error':
        this.emit('protocolError', new ControlError(f.error.code, f.error.message, f.error));
        return;
      case 'hello':
        // A second hello is not part of the protocol; ignore it.
        return;
    }
  }

  /** A frame of answers to binary puts. */
  private onBinary(data: RawData): void {
    const error = readPutResults(messageBytes(data), (id, answer) => this.onPutAnswer(id, answer));
    if (error !== undefined) {
      this.emit(
        'protocolError',
        new ControlError('bad_frame', `unreadable binary frame from node: ${error}`),
      );
    }
  }

  private onPutAnswer(id: number, answer: PutAnswer): void {
    const p = this.answered(id);
    if (p === undefined) return;
    if (p.name === 'put') p.resolve({ op: 'put', revision: answer.revision, term: answer.term });
    else p.reject(new ControlError('internal', `${p.name}: node answered with a put's binary result`));
  }

  private onDropped(ws: WebSocket, code: number, reason: string): void {
    if (this.ws !== ws) return;
    this.ws = undefined;
    this.helloFrame = undefined;
    this.failPending(`connection lost (${code}${reason === '' ? '' : ` ${reason}`})`);
    // 1008 is how the node refuses a token: retrying cannot help.
    const willReconnect =
      !this.closed && this.opts.reconnect !== undefined && this.opts.reconnect !== false && code !== 1008;
    this.emit('close', { code, reason, willReconnect });
    if (willReconnect) this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    const r: ReconnectOptions = typeof this.opts.reconnect === 'object' ? this.opts.reconnect : {};
    const attempt = ++this.attempts;
    if (r.maxAttempts !== undefined && attempt > r.maxAttempts) {
      this.emit('close', {
        code: 1006,
        reason: `gave up after ${r.maxAttempts} attempts`,
        willReconnect: false,
      });
      return;
    }
    const base = Math.min(r.maxDelayMs ?? 5000, (r.initialDelayMs ?? 100) * (r.factor ?? 2) ** (attempt - 1));
    const jitter = r.jitter ?? 0.2;
    const delayMs = Math.max(0, Math.round(base * (1 + jitter * (2 * Math.random() - 1))));
    this.emit('reconnecting', attempt, delayMs);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      if (this.closed) return;
      this.open(true).catch((err: unknown) => {
        if (this.closed) return;
        const fatal =
          err instanceof ControlError && (err.code === 'unauthorized' || err.code === 'bad_version');
        if (fatal) {
          this.emit('protocolError', err);
          this.emit('close', { code: 1008, reason: err.message, willReconnect: false });
          return;
        }
        this.scheduleReconnect();
      });
    }, delayMs);
  }

  private failPending(why: string): void {
    // The connection these counted against is gone (or going).
    this.running = 0;
    this.held = [];
    if (this.sweepTimer !== undefined) clearTimeout(this.sweepTimer);
    this.sweepTimer = undefined;
    this.sweepAt = Number.POSITIVE_INFINITY;
    for (const [id, p] of this.pending) {
      this.pending.delete(id);
      p.reject(new ControlError('unavailable', `${p.name}: ${why}`));
    }
  }

  private send(frame: object): void {
    this.ws?.send(JSON.stringify(frame));
  }
}

/** Only the fields given, so ws (and https) keep their defaults for the rest. */
function tlsOptions(t: TlsOptions): TlsOptions {
  const out: TlsOptions = {};
  if (t.ca !== undefined) out.ca = t.ca;
  if (t.cert !== undefined) out.cert = t.cert;
  if (t.key !== undefined) out.key = t.key;
  if (t.servername !== undefined) out.servername = t.servername;
  return out;
}

/** A put the binary frames carry: no previous entry asked for, no request id of the caller's. */
function isBarePut(args: CommandArgs<'put'>): boolean {
  return args.prevKv !== true && args.clientId === undefined && args.seq === undefined;
}

/** Checks a result value against its documented schema, where the protocol defines one. */
function checkValue<N extends CommandName>(
  name: N,
  value: unknown,
): { ok: true; value: CommandValue<N> } | { ok: false; error: ControlError } {
  const schema: z.ZodType | undefined = Object.hasOwn(COMMAND_RESULTS, name)
    ? COMMAND_RESULTS[name as keyof typeof COMMAND_RESULTS]
    : undefined;
  if (schema !== undefined) {
    const r = schema.safeParse(value);
    if (!r.success) {
      const issue = r.error.issues[0];
      return {
        ok: false,
        error: new ControlError(
          'internal',
          `${name}: node answered with an unexpected shape (${issue?.path.join('.') ?? ''}: ${issue?.message ?? ''})`,
        ),
      };
    }
    // r.data has the shape CommandValue<N> names for commands listed in COMMAND_RESULTS.
    return { ok: true, value: r.data as CommandValue<N> };
  }
  // Every other value arrived as parsed JSON (validated by parseNodeFrames).
  return { ok: true, value: value as CommandValue<N> };
}
