// A fake node behind a real ControlServer on loopback, shared by the control server and
// client tests: http.createServer on port 0 routes `/control` upgrades to handleUpgrade.

import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocket } from 'ws';
import {
  type CommandCall,
  CommandError,
  type HelloInfo,
  type Member,
  type NodeEvent,
  type NodeFrame,
  type NodeState,
  parseNodeFrames,
} from '../../src/protocol/control.js';
import {
  ControlServer,
  type ControlServerOptions,
  type NodeApi,
  type PutListener,
} from '../../src/server/control.js';
import { testLogger } from '../../src/server/log.js';

/** A NodeApi double: a tiny KV, scripted failures, and a record of every call. */
export class FakeNode implements NodeApi {
  allowFaults = true;
  readonly kv = new Map<string, string>();
  readonly calls: CommandCall[] = [];
  term = 3;
  /** Who this node is, and whom it reports as leader (itself when role is leader). */
  id = 1;
  role: NodeState['role'] = 'follower';
  leader = 2;
  members: Member[] = [
    { id: 1, address: '127.0.0.1:7001', learner: false },
    { id: 2, address: '127.0.0.1:7002', learner: false },
  ];
  stateCalls = 0;
  /** Puts that came in binary frames, decoded. */
  readonly binaryPuts: { key: string; value: string }[] = [];
  /** The key of every put, binary or JSON, in the order they ran. */
  readonly putOrder: string[] = [];
  /** While set, puts are refused with this code (and leader hint), as a node whose leadership is moving does. */
  refusePuts: { code: 'proposal_dropped' | 'not_leader' | 'no_leader'; leader?: number } | undefined;
  /** Puts refused so far. */
  refused = 0;
  /** Resolvers of commands that never answer on their own (read-index). */
  readonly hanging: ((v: unknown) => void)[] = [];

  hello(): HelloInfo {
    return { nodeId: this.id, clusterId: 'c-test', members: this.members };
  }

  state(): NodeState {
    this.stateCalls++;
    return {
      id: this.id,
      role: this.role,
      term: this.term,
      vote: 2,
      leader: this.role === 'leader' ? this.id : this.leader,
      commit: 10,
      applied: 9,
      lastIndex: 11,
      firstIndex: 1,
      leadTransferee: 0,
      config: {
        voters: this.members.map((m) => m.id),
        votersOutgoing: [],
        learners: [],
        learnersNext: [],
        autoLeave: false,
      },
      transport: [{ peer: 2, address: '127.0.0.1:7002', connected: true, queued: 0 }],
      faults: [],
      snapshotIndex: 0,
      kvKeys: this.kv.size,
      at: Date.now(),
    };
  }

  /** A put from a binary frame; the key `fail` fails as a node without a leader would. */
  putBytes(key: Uint8Array, value: Uint8Array, listener: PutListener): void {
    const put = { key: Buffer.from(key).toString('utf8'), value: Buffer.from(value).toString('utf8') };
    if (put.key === 'fail') throw new CommandError('no_leader', 'no leader at the moment: retry shortly');
    this.refuse();
    this.binaryPuts.push(put);
    this.putOrder.push(put.key);
    this.kv.set(put.key, put.value);
    // Answered in a later turn, as a node answers once the write is applied.
    const revision = this.kv.size;
    queueMicrotask(() => listener.resolve({ revision }, this.term));
  }

  async execute(...call: CommandCall): Promise<unknown> {
    this.calls.push(call);
    const [cmd, args] = call;
    switch (cmd) {
      case 'put':
        this.refuse();
        this.putOrder.push(args.key);
        this.kv.set(args.key, args.value);
        return { op: 'put', revision: this.kv.size, term: this.term };
      case 'get':
        return { value: this.kv.get(args.key) ?? null, serializable: args.serializable ?? false };
      case 'status':
        return this.state();
      case 'members':
        return this.hello().members;
      case 'campaign':
        throw new CommandError('not_leader', 'node 1 is not the leader', 2);
      case 'snapshot':
        throw new Error('disk on fire');
      case 'read-index':
        return new Promise((resolve) => this.hanging.push(resolve));
      case 'fault':
        return { applied: args.kind };
      default:
        return undefined;
    }
  }

  private refuse(): void {
    const r = this.refusePuts;
    if (r === undefined) return;
    this.refused++;
    throw new CommandError(r.code, `refused: ${r.code}`, r.leader);
  }
}

export interface Harness {
  node: FakeNode;
  control: ControlServer;
  http: Server;
  port: number;
  /** ws://127.0.0.1:port/control */
  url: string;
  logger: ReturnType<typeof testLogger>;
  /** Raw sockets handed to the control server, so tests can cut connections abruptly. */
  sockets: Set<Duplex>;
  stop(): Promise<void>;
}

/** A control server for a FakeNode on loopback, on `port` (default: any free one). */
export async function startHarness(
  opts: Partial<Omit<ControlServerOptions, 'api' | 'logger'>> = {},
  port = 0,
): Promise<Harness> {
  const node = new FakeNode();
  const logger = testLogger();
  const control = new ControlServer({ api: node, logger, pingIntervalMs: 0, ...opts });
  const sockets = new Set<Duplex>();
  const http = createServer((_req, res) => {
    res.statusCode = 404;
    res.end();
  });
  http.on('upgrade', (req, socket, head) => {
    if (new URL(req.url ?? '/', 'http://x').pathname !== '/control') {
      socket.destroy();
      return;
    }
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    control.handleUpgrade(req, socket, head);
  });
  http.listen(port, '127.0.0.1');
  await once(http, 'listening');
  const bound = (http.address() as AddressInfo).port;
  return {
    node,
    control,
    http,
    port: bound,
    url: `ws://127.0.0.1:${bound}/control`,
    logger,
    sockets,
    async stop() {
      await control.close();
      for (const s of sockets) s.destroy();
      http.closeAllConnections();
      await new Promise<void>((resolve) => http.close(() => resolve()));
    },
  };
}

/** A raw WebSocket peer that records every node frame, for testing the wire directly. */
export class RawPeer {
  readonly frames: NodeFrame[] = [];
  /** How many messages came in each WebSocket frame (more than 1 only for a batching peer). */
  readonly batchSizes: number[] = [];
  /** Binary frames from the node (answers to binary puts), as they came. */
  readonly binaryFrames: Uint8Array[] = [];
  readonly ws: WebSocket;
  private waiters: (() => void)[] = [];
  closed: { code: number; reason: string } | undefined;

  private constructor(ws: WebSocket) {
    this.ws = ws;
    ws.on('message', (data, isBinary) => {
      if (isBinary) {
        this.binaryFrames.push(data as Buffer);
        this.wake();
        return;
      }
      const all = parseNodeFrames(data.toString());
      for (const parsed of all) {
        if (!parsed.ok) throw new Error(`unparseable node frame: ${parsed.error.message}`);
        this.frames.push(parsed.msg);
      }
      this.batchSizes.push(all.length);
      this.wake();
    });
    ws.on('close', (code, reason) => {
      this.closed = { code, reason: reason.toString() };
      this.wake();
    });
  }

  static async open(url: string): Promise<RawPeer> {
    const ws = new WebSocket(url, { perMessageDeflate: false });
    const peer = new RawPeer(ws);
    await once(ws, 'open');
    return peer;
  }

  send(frame: unknown): void {
    this.ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
  }

  /** Says hello (as a batching client with `batch`, a binary one with `binary`) and returns the node's answer. */
  async hello(token?: string, batch?: boolean, binary?: boolean): Promise<NodeFrame> {
    this.send({
      type: 'hello',
      version: 1,
      ...(token === undefined ? {} : { token }),
      ...(batch === undefined ? {} : { batch }),
      ...(binary === undefined ? {} : { binary }),
    });
    return this.next();
  }

  /** The next frame not yet consumed by next()/until(). */
  private cursor = 0;
  async next(timeoutMs = 2000): Promise<NodeFrame> {
    await this.waitFor(() => this.frames.length > this.cursor, timeoutMs);
    return this.frames[this.cursor++]!;
  }

  /** Waits until `pred` holds over the received frames (or the connection closed, if `closedOk`). */
  async waitFor(pred: () => boolean, timeoutMs = 2000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!pred()) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('timed out waiting for frames');
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  async waitClosed(timeoutMs = 2000): Promise<{ code: number; reason: string }> {
    await this.waitFor(() => this.closed !== undefined, timeoutMs);
    return this.closed!;
  }

  close(): void {
    this.ws.terminate();
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }
}

let seq = 0;
/** A node event with a fresh sequence number. */
export function leaderEvent(leader = 2): NodeEvent {
  return { seq: ++seq, at: Date.now(), node: 1, kind: 'leader', leader, term: 3 };
}

export function logEvent(message: string): NodeEvent {
  return { seq: ++seq, at: Date.now(), node: 1, kind: 'log', level: 'info', message };
}
