import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';
import { type Message, message, type SnapshotMetadata } from '../../../src/raft/types.js';
import { type LogLine, testLogger } from '../../../src/server/log.js';
import { SNAPSHOT_DATA_ON_DISK } from '../../../src/server/storage/log-storage.js';
import {
  decodeFrame,
  decodeSnapshotChunk,
  encodeFrame,
  encodeSnapshotChunk,
} from '../../../src/server/transport/codec.js';
import {
  type SnapshotPieces,
  Transport,
  type TransportOptions,
} from '../../../src/server/transport/transport.js';
import { firstFrameServer, readClientFrame } from '../../support/first-frame-server.js';

interface TestNode {
  id: number;
  t: Transport;
  server: http.Server;
  port: number;
  address: string;
  got: Message[];
  unreachable: number[];
  snaps: [number, boolean][];
  lines: LogLine[];
}

const cleanups: (() => Promise<void> | void)[] = [];

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function listen(server: http.Server | net.Server, port = 0): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
  });
}

function closeServer(server: http.Server | net.Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

async function startNode(id: number, opts: Partial<TransportOptions> = {}, port = 0): Promise<TestNode> {
  const logger = testLogger();
  const node = { id, got: [], unreachable: [], snaps: [], lines: logger.lines } as unknown as TestNode;
  node.t = new Transport({
    id,
    clusterId: 'c1',
    logger,
    backoff: { initialMs: 20, maxMs: 100 },
    onMessage: (m) => node.got.push(m),
    onUnreachable: (p) => node.unreachable.push(p),
    onSnapshotStatus: (p, ok) => node.snaps.push([p, ok]),
    ...opts,
  });
  node.server = http.createServer();
  node.server.on('upgrade', (req, socket, head) => {
    if (req.url === '/raft') node.t.handleUpgrade(req, socket, head);
    else socket.destroy();
  });
  node.port = await listen(node.server, port);
  node.address = `127.0.0.1:${node.port}`;
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    await node.t.close();
    await closeServer(node.server);
  };
  (node as TestNode & { stop: () => Promise<void> }).stop = stop;
  cleanups.push(stop);
  return node;
}

function stopNode(n: TestNode): Promise<void> {
  return (n as TestNode & { stop: () => Promise<void> }).stop();
}

function link(...nodes: TestNode[]): void {
  for (const a of nodes) a.t.setPeers(new Map(nodes.filter((b) => b !== a).map((b) => [b.id, b.address])));
}

async function waitFor(cond: () => boolean, what: string, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function app(from: number, to: number, index: number, size = 8): Message {
  return message({
    type: 'MsgApp',
    from,
    to,
    term: 2,
    logTerm: 2,
    index,
    commit: index,
    entries: [
      { term: 2, index: index + 1, type: 'EntryNormal', data: new Uint8Array(size).fill(index & 0xff) },
    ],
  });
}

function hb(from: number, to: number): Message {
  return message({ type: 'MsgHeartbeat', from, to, term: 2 });
}

/** A MsgSnap from 1 to 2 carrying `data` at `index`, with the given voters and learners. */
function snapMsg(data: Uint8Array, index: number, term = 1, voters = [1], learners: number[] = []): Message {
  return message({
    type: 'MsgSnap',
    from: 1,
    to: 2,
    term,
    snapshot: {
      data,
      metadata: {
        index,
        term,
        confState: { voters, learners, votersOutgoing: [], learnersNext: [], autoLeave: false },
      },
    },
  });
}

/**
 * A stand-in for a snapshot file's reader over `data`, recording the sizes asked for and
 * closes; with `failLast`, the piece that would end the data is refused with it.
 */
function fakeSnapshotFile(
  data: Uint8Array,
  failLast?: Error,
): SnapshotPieces & { asked: number[]; closed: number } {
  let at = 0;
  const f = {
    size: data.length,
    asked: [] as number[],
    closed: 0,
    async next(maxBytes: number): Promise<Uint8Array> {
      f.asked.push(maxBytes);
      const end = Math.min(data.length, at + maxBytes);
      if (failLast !== undefined && end === data.length) throw failLast;
      const piece = data.slice(at, end);
      at = end;
      return piece;
    },
    async close(): Promise<void> {
      f.closed++;
    },
  };
  return f;
}

function logged(n: TestNode, re: RegExp): boolean {
  return n.lines.some((l) => re.test(l.message));
}

/**
 * A bare ws endpoint standing in for a peer, recording the raw frames it receives; with
 * `dropAfter`, it cuts the connection once that many have come.
 */
async function rawPeer(dropAfter = Number.POSITIVE_INFINITY): Promise<{
  address: string;
  frames: Buffer[];
  headers: http.IncomingHttpHeaders[];
}> {
  const server = http.createServer();
  const wss = new WebSocketServer({ noServer: true });
  const frames: Buffer[] = [];
  const headers: http.IncomingHttpHeaders[] = [];
  server.on('upgrade', (req, socket, head) => {
    headers.push(req.headers);
    wss.handleUpgrade(req, socket, head, (ws) =>
      ws.on('message', (d) => {
        frames.push(d as Buffer);
        if (frames.length >= dropAfter) ws.terminate();
      }),
    );
  });
  const port = await listen(server);
  cleanups.push(async () => {
    for (const c of wss.clients) c.terminate();
    wss.close();
    await closeServer(server);
  });
  return { address: `127.0.0.1:${port}`, frames, headers };
}

/** Dials a node's /raft endpoint directly, as a (possibly misbehaving) peer would. */
function dial(node: TestNode, headers: Record<string, string>): WebSocket {
  const ws = new WebSocket(`ws://${node.address}/raft`, { headers });
  ws.on('error', () => {});
  cleanups.push(() => ws.terminate());
  return ws;
}

function closed(ws: WebSocket): Promise<{ code: number; reason: string }> {
  return new Promise((resolve) =>
    ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })),
  );
}

describe('Transport: exchanging messages', () => {
  it('delivers batches both ways between two transports on loopback', async () => {
    const [a, b] = [await startNode(1), await startNode(2)];
    link(a, b);
    const batch = Array.from({ length: 200 }, (_, i) => app(1, 2, i));
    a.t.send(batch);
    b.t.send([hb(2, 1), hb(2, 1)]);
    await waitFor(() => b.got.length === 200 && a.got.length === 2, 'both batches');
    expect(b.got).toEqual(batch);
    expect(a.got.map((m) => m.type)).toEqual(['MsgHeartbeat', 'MsgHeartbeat']);
    const h = a.t.health().get(2)!;
    expect(h).toMatchObject({ address: b.address, connected: true, sentMsgs: 200, recvMsgs: 2, queued: 0 });
    expect(h.lastContactMs).toBeGreaterThan(0);
    expect(a.unreachable).toEqual([]);
  });

  it('sends what one turn queued as one frame per peer, with the handshake headers', async () => {
    const peer = await rawPeer();
    const a = await startNode(1, { token: 's3cret' });
    a.t.setPeers(new Map([[2, peer.address]]));
    await waitFor(() => a.t.health().get(2)!.connected, 'connection');
    a.t.send([app(1, 2, 1)]);
    a.t.send([app(1, 2, 2), hb(1, 2)]);
    await waitFor(() => peer.frames.length === 1, 'a frame');
    await sleep(20);
    expect(peer.frames).toHaveLength(1);
    expect(decodeFrame(peer.frames[0]!)).toEqual([app(1, 2, 1), app(1, 2, 2), hb(1, 2)]);
    expect(peer.headers[0]).toMatchObject({
      'x-raftctl-cluster': 'c1',
      'x-raftctl-from': '1',
      'x-raftctl-token': 's3cret',
    });
    expect(peer.headers[0]!['sec-websocket-extensions']).toBeUndefined();
  });

  it('masks its frames to a peer on loopback with a zero key: entries cross as written', async () => {
    const peer = await firstFrameServer();
    cleanups.push(() => peer.close());
    // No pings, so the first frame is the one sent.
    const a = await startNode(1, { pingIntervalMs: 0 });
    a.t.setPeers(new Map([[2, peer.address]]));
    await waitFor(() => a.t.health().get(2)!.connected, 'connection');
    a.t.send([app(1, 2, 7)]);
    const { opcode, key, wirePayload } = readClientFrame(await peer.firstFrame);
    expect(key).toBe('00000000');
    expect(opcode).toBe(2);
    expect(decodeFrame(wirePayload)).toEqual([app(1, 2, 7)]);
  });

  it('splits a batch larger than maxFrameBytes and drops a single message that can never fit', async () => {
    const peer = await rawPeer();
    const a = await startNode(1, { maxFrameBytes: 4096 });
    a.t.setPeers(new Map([[2, peer.address]]));
    await waitFor(() => a.t.health().get(2)!.connected, 'connection');
    const msgs = [app(1, 2, 1, 1500), app(1, 2, 2, 1500), app(1, 2, 3, 9000), app(1, 2, 4, 1500)];
    a.t.send(msgs);
    await waitFor(() => peer.frames.length === 2, 'two frames');
    expect(peer.frames.map((f) => decodeFrame(f).map((m) => m.index))).toEqual([[1, 2], [4]]);
    expect(peer.frames.every((f) => f.length <= 4096)).toBe(true);
    expect(logged(a, /dropping MsgApp to peer 2: \d+ bytes exceeds maxFrameBytes 4096/)).toBe(true);
  });

  it('never throws from send(), whatever it is given or whatever the callbacks do', async () => {
    const [a, b] = [
      await startNode(1),
      await startNode(2, {
        onMessage: () => {
          throw new Error('boom');
        },
      }),
    ];
    link(a, b);
    expect(() => a.t.send([message({ type: 'MsgApp', from: 1, to: 2, term: -1 })])).not.toThrow();
    expect(() => a.t.send(null as unknown as Message[])).not.toThrow();
    expect(() => a.t.send([message({ type: 'MsgHup', from: 1, to: 1 }), hb(1, 9)])).not.toThrow();
    a.t.send([hb(1, 2)]);
    // The heartbeat shared a batch with the unencodable MsgApp and still arrived.
    await waitFor(() => logged(b, /onMessage threw for MsgHeartbeat from 1: boom/), 'callback error logged');
    expect(logged(a, /send failed/)).toBe(true);
    expect(logged(a, /dropping MsgApp to peer 2: cannot encode: cannot encode -1/)).toBe(true);
    expect(logged(a, /dropping MsgHeartbeat to unknown peer 9/)).toBe(true);
    await waitFor(() => a.unreachable.includes(9), 'unknown peer reported unreachable');
  });
});

describe('Transport: handshake', () => {
  it('refuses a peer from another cluster with a clear reason', async () => {
    const a = await startNode(1);
    const b = await startNode(2, { clusterId: 'other' });
    link(a, b);
    a.t.send([hb(1, 2)]);
    await waitFor(() => /cluster id mismatch/.test(a.t.health().get(2)!.lastError ?? ''), 'refusal');
    expect(a.t.health().get(2)!.lastError).toBe(
      'refused by peer 2: HTTP 403 cluster id mismatch: this node is in cluster other, the request is for cluster c1',
    );
    expect(logged(a, /peer 2 at .*: refused by peer 2: HTTP 403 cluster id mismatch/)).toBe(true);
    expect(logged(b, /refused raft connection from 127\.0\.0\.1:\d+: cluster id mismatch/)).toBe(true);
    await waitFor(() => a.unreachable.includes(2), 'unreachable');
    expect(b.got).toEqual([]);
  });

  it('refuses a removed node with 410 Gone, which tells it once that it was removed', async () => {
    const removed = new Set<number>();
    const a = await startNode(1, { isRemoved: (id) => removed.has(id) });
    const told: number[] = [];
    const b = await startNode(2, { onRemoved: (by) => told.push(by) });
    link(a, b);
    b.t.send([hb(2, 1)]);
    await waitFor(() => a.got.length === 1, 'a heartbeat while node 2 is a member');
    expect(told).toEqual([]);

    // The removal is applied on node 1 while node 2 is still connected: node 1 closes its
    // connection, node 2 dials again and hears 410 Gone.
    removed.add(2);
    a.t.setPeers(new Map());
    await waitFor(() => told.length > 0, 'node 2 told it was removed');
    expect(told).toEqual([1]);
    expect(b.t.health().get(1)!.lastError).toBe(
      'refused by peer 1: HTTP 410 node 2 was removed from cluster c1',
    );
    expect(
      logged(a, /refused raft connection from 127\.0\.0\.1:\d+: node 2 was removed from cluster c1/),
    ).toBe(true);
    // Its messages no longer arrive, and however often it redials it is told only once.
    b.t.send([hb(2, 1)]);
    await sleep(300);
    expect(a.got).toHaveLength(1);
    expect(told).toEqual([1]);
  });

  it('refuses a wrong or missing token, and never logs the token', async () => {
    const a = await startNode(1, { token: 'wrong' });
    const b = await startNode(2, { token: 'right' });
    const c = await startNode(3);
    link(a, b);
    c.t.setPeers(new Map([[2, b.address]]));
    await waitFor(
      () => /invalid peer token/.test(a.t.health().get(2)!.lastError ?? ''),
      'wrong token refused',
    );
    await waitFor(
      () => /missing x-raftctl-token/.test(c.t.health().get(2)!.lastError ?? ''),
      'no token refused',
    );
    expect(a.t.health().get(2)!.connected).toBe(false);
    for (const n of [a, b, c]) expect(n.lines.some((l) => /wrong|right/.test(l.message))).toBe(false);
  });

  it('refuses a missing sender id', async () => {
    const b = await startNode(2);
    const ws = dial(b, { 'x-raftctl-cluster': 'c1' });
    const status = await new Promise<number>((resolve) =>
      ws.on('unexpected-response', (_q, res) => resolve(res.statusCode!)),
    );
    expect(status).toBe(400);
    expect(logged(b, /invalid x-raftctl-from ""/)).toBe(true);
  });
});

describe('Transport: failures', () => {
  it('reports a peer that is down as unreachable and drops its messages', async () => {
    const probe = net.createServer();
    const port = await listen(probe);
    await closeServer(probe);
    const a = await startNode(1);
    a.t.setPeers(new Map([[2, `127.0.0.1:${port}`]]));
    await waitFor(() => a.unreachable.includes(2), 'unreachable after the dial fails');
    a.unreachable.length = 0;
    a.t.send([hb(1, 2)]);
    await waitFor(() => a.unreachable.includes(2), 'unreachable on send while down');
    const h = a.t.health().get(2)!;
    expect(h.connected).toBe(false);
    expect(h.queued).toBe(0);
    expect(h.lastError).toMatch(/ECONNREFUSED/);
  });

  it('reconnects after the peer restarts', async () => {
    const [a, b] = [await startNode(1), await startNode(2)];
    link(a, b);
    a.t.send([hb(1, 2)]);
    await waitFor(() => b.got.length === 1, 'first delivery');
    const port = b.port;
    await stopNode(b);
    await waitFor(() => a.unreachable.includes(2), 'unreachable while the peer is down');
    expect(logged(a, /lost connection to peer 2/)).toBe(true);
    const b2 = await startNode(2, {}, port);
    link(a, b2);
    // Keep sending, as raft would, until the reconnected link carries a message.
    for (let i = 0; b2.got.length === 0; i++) {
      if (i > 300) throw new Error('no delivery after restart');
      a.t.send([hb(1, 2)]);
      await sleep(10);
    }
    expect(a.t.health().get(2)).toMatchObject({ connected: true });
    expect(a.t.health().get(2)!.lastError).toBeUndefined();
  });

  it('reports a lost open connection once (onPeerLost), but not a dial that fails', async () => {
    const lostA: number[] = [];
    const a = await startNode(1, { onPeerLost: (p) => lostA.push(p) });
    const b = await startNode(2);
    link(a, b);
    await waitFor(() => a.t.health().get(2)!.connected, 'connected');
    expect(lostA).toEqual([]);
    await stopNode(b);
    await waitFor(() => lostA.length > 0, 'onPeerLost after the peer went away');
    // The redials that fail while it is down are not losses of a connection.
    await waitFor(() => logged(a, /cannot connect to peer 2|still cannot connect/), 'a failed redial');
    await sleep(100);
    expect(lostA).toEqual([2]);
  });

  it('dials a peer at once when it dials in, instead of waiting out a long backoff', async () => {
    const slow = { backoff: { initialMs: 10_000, maxMs: 10_000 } };
    const a = await startNode(1, slow);
    // Peer 2 is down: a's first dial fails and waits 5-10 s before the next.
    const placeholder = net.createServer();
    const port = await listen(placeholder);
    await closeServer(placeholder);
    a.t.setPeers(new Map([[2, `127.0.0.1:${port}`]]));
    a.t.send([hb(1, 2)]);
    await waitFor(() => a.unreachable.includes(2), 'peer 2 unreachable');
    const b = await startNode(2, slow, port);
    link(a, b);
    // b dials a (its first dial succeeds); a then dials b back without waiting.
    b.t.send([hb(2, 1)]);
    await waitFor(() => a.got.length === 1, 'b reaching a');
    await waitFor(() => a.t.health().get(2)?.connected === true, 'a reconnected to b', 2000);
    a.t.send([hb(1, 2)]);
    await waitFor(() => b.got.length === 1, 'a reaching b', 2000);
  });

  it('reports unreachable when a peer queue overflows', async () => {
    // Accepts TCP but never answers the handshake: messages wait in the queue.
    const sockets: net.Socket[] = [];
    const silent = net.createServer((s) => sockets.push(s));
    const port = await listen(silent);
    cleanups.push(async () => {
      for (const s of sockets) s.destroy();
      await closeServer(silent);
    });
    const a = await startNode(1, { maxQueue: 10, connectTimeoutMs: 10_000 });
    a.t.setPeers(new Map([[2, `127.0.0.1:${port}`]]));
    a.t.send(Array.from({ length: 25 }, () => hb(1, 2)));
    await waitFor(() => a.unreachable.includes(2), 'overflow reported');
    expect(a.t.health().get(2)).toMatchObject({ queued: 10, connected: false });
  });

  it('refuses an oversized inbound frame and closes the connection with a reason', async () => {
    const a = await startNode(1);
    const b = await startNode(2, { maxFrameBytes: 1024 });
    link(a, b);
    a.t.send([app(1, 2, 1, 4096)]);
    await waitFor(
      () => logged(b, /peer 1 sent a frame larger than maxFrameBytes 1024; closed the connection \(1009\)/),
      'refusal',
    );
    await waitFor(
      () => logged(a, /lost connection to peer 2 at .*: closed by peer: 1009 frame too large/),
      'close seen',
    );
    expect(b.got).toEqual([]);
    // Smaller frames flow again once the sender has reconnected.
    for (let i = 0; b.got.length === 0; i++) {
      if (i > 300) throw new Error('no delivery after the oversized frame');
      a.t.send([hb(1, 2)]);
      await sleep(10);
    }
  });

  it('closes a connection carrying a malformed frame with 1007 and the reason', async () => {
    const b = await startNode(2);
    const ws = dial(b, { 'x-raftctl-cluster': 'c1', 'x-raftctl-from': '1' });
    await new Promise((r) => ws.on('open', r));
    const done = closed(ws);
    ws.send(Buffer.from('not a raft frame'));
    const { code, reason } = await done;
    expect(code).toBe(1007);
    expect(reason).toMatch(/malformed raft frame at byte 0: bad magic/);
    expect(logged(b, /dropping frame from peer 1 \(16 bytes\): malformed raft frame/)).toBe(true);
    expect(b.got).toEqual([]);
  });

  it('closes a text message with 1003 and drops misaddressed messages', async () => {
    const b = await startNode(2);
    const ws = dial(b, { 'x-raftctl-cluster': 'c1', 'x-raftctl-from': '1' });
    await new Promise((r) => ws.on('open', r));
    ws.send(encodeFrame([hb(3, 2), hb(1, 4), message({ type: 'MsgBeat', from: 1, to: 2 }), hb(1, 2)]));
    await waitFor(() => b.got.length === 1, 'the one well-addressed message');
    expect(b.got[0]).toEqual(hb(1, 2));
    expect(logged(b, /dropping MsgHeartbeat from 3 to 2 on the connection of peer 1/)).toBe(true);
    const done = closed(ws);
    ws.send('hello');
    expect((await done).code).toBe(1003);
  });
});

describe('Transport: snapshots', () => {
  it('sends a snapshot on its own and reports the status', async () => {
    const [a, b] = [await startNode(1), await startNode(2)];
    link(a, b);
    await waitFor(() => a.t.health().get(2)!.connected, 'connection');
    const data = new Uint8Array(256 * 1024).map((_, i) => i * 7);
    const snap = snapMsg(data, 40, 3, [1, 2, 3], [4]);
    a.t.send([hb(1, 2), snap, app(1, 2, 41)]);
    await waitFor(() => a.snaps.length === 1 && b.got.length === 3, 'snapshot delivered and reported');
    expect(a.snaps).toEqual([[2, true]]);
    expect(b.got.map((m) => m.type)).toEqual(['MsgHeartbeat', 'MsgSnap', 'MsgApp']);
    const got = b.got[1]!;
    // Compare the payload as bytes: a deep equality walk over 256 KiB is slow.
    expect(Buffer.compare(got.snapshot!.data, data)).toBe(0);
    expect({ ...got, snapshot: { ...got.snapshot!, data: undefined } }).toEqual({
      ...snap,
      snapshot: { ...snap.snapshot!, data: undefined },
    });
  });

  it('sends a snapshot larger than a frame in chunks: the peer gets it whole, and it is reported after the last', async () => {
    const a = await startNode(1);
    // The receiver takes frames of at most 2 MiB; the snapshot is 5 MiB and a bit.
    const b = await startNode(2, { maxFrameBytes: 2 * 1024 * 1024 });
    link(a, b);
    await waitFor(() => a.t.health().get(2)!.connected, 'connection');
    const data = new Uint8Array(5 * 1024 * 1024 + 123).map((_, i) => (i * 31) >> 3);
    const snap = snapMsg(data, 77, 3, [1, 2, 3]);
    a.t.send([snap]);
    await sleep(0);
    a.t.send([hb(1, 2)]);
    await waitFor(() => a.snaps.length === 1 && b.got.length === 2, 'snapshot and heartbeat delivered');
    expect(a.snaps).toEqual([[2, true]]);
    expect(logged(a, /sending snapshot at index 77 \(5243003 bytes\) to peer 2 in 6 chunks/)).toBe(true);
    const got = b.got.find((m) => m.type === 'MsgSnap')!;
    expect(Buffer.compare(got.snapshot!.data, data)).toBe(0);
    expect({ ...got, snapshot: { ...got.snapshot!, data: undefined } }).toEqual({
      ...snap,
      snapshot: { ...snap.snapshot!, data: undefined },
    });
  });

  it('writes the chunks in order, each at most 1 MiB, the MsgSnap on the last', async () => {
    const a = await startNode(1);
    const peer = await rawPeer();
    a.t.setPeers(new Map([[2, peer.address]]));
    await waitFor(() => a.t.health().get(2)!.connected, 'connection');
    const data = new Uint8Array(3 * 1024 * 1024 - 5).map((_, i) => i & 0xff);
    a.t.send([snapMsg(data, 12)]);
    await waitFor(() => a.snaps.length === 1 && peer.frames.length === 3, 'reported and received');
    const chunks = peer.frames.map((f) => decodeSnapshotChunk(f));
    expect(chunks.map((c) => [c.offset, c.data.length, c.total, c.message?.type])).toEqual([
      [0, 1 << 20, data.length, undefined],
      [1 << 20, 1 << 20, data.length, undefined],
      [2 << 20, (1 << 20) - 5, data.length, 'MsgSnap'],
    ]);
    expect(new Set(chunks.map((c) => c.transfer)).size).toBe(1);
    expect(Buffer.compare(Buffer.concat(chunks.map((c) => c.data)), data)).toBe(0);
    expect(chunks[2]!.message!.snapshot!.metadata.index).toBe(12);
  });

  it('streams a snapshot held on disk only from its file, a chunk at a time: the peer gets it whole', async () => {
    const data = new Uint8Array(3 * 1024 * 1024 + 17).map((_, i) => (i * 13) >> 2);
    const source = fakeSnapshotFile(data);
    const opened: SnapshotMetadata[] = [];
    const a = await startNode(1, {
      openSnapshotData: async (md) => {
        opened.push(md);
        return source;
      },
    });
    const b = await startNode(2);
    link(a, b);
    await waitFor(() => a.t.health().get(2)!.connected, 'connection');
    const snap = snapMsg(SNAPSHOT_DATA_ON_DISK, 55, 2, [1, 2]);
    a.t.send([snap]);
    await waitFor(() => a.snaps.length === 1 && b.got.length === 1, 'snapshot delivered and reported');
    expect(a.snaps).toEqual([[2, true]]);
    expect(opened).toEqual([snap.snapshot!.metadata]);
    const got = b.got[0]!;
    expect(Buffer.compare(got.snapshot!.data, data)).toBe(0);
    expect(got.snapshot!.metadata).toEqual(snap.snapshot!.metadata);
    // Read in chunk-sized pieces, never the whole at once, and let go of afterwards.
    expect(source.asked).toEqual([1 << 20, 1 << 20, 1 << 20, 1 << 20]);
    expect(source.closed).toBe(1);
    expect(logged(a, /sending snapshot at index 55 \(3145745 bytes\) to peer 2 in 4 chunks/)).toBe(true);
  });

  it('fails a snapshot whose file cannot be read or does not check out, says so once, and the peer installs nothing', async () => {
    const data = new Uint8Array(2 * 1024 * 1024 + 5).fill(7);
    let open: 'damaged' | 'purged' = 'damaged';
    const a = await startNode(1, {
      openSnapshotData: async () => {
        if (open === 'purged') throw Object.assign(new Error('ENOENT: no such file'), { code: 'ENOENT' });
        // Refuses its last piece, as a file whose crc does not match does.
        return fakeSnapshotFile(data, new Error('crc mismatch'));
      },
    });
    const b = await startNode(2);
    link(a, b);
    await waitFor(() => a.t.health().get(2)!.connected, 'connection');
    a.t.send([snapMsg(SNAPSHOT_DATA_ON_DISK, 60)]);
    await waitFor(() => a.snaps.length === 1, 'first status');
    a.t.send([snapMsg(SNAPSHOT_DATA_ON_DISK, 60)]);
    await waitFor(() => a.snaps.length === 2, 'second status');
    open = 'purged';
    a.t.send([snapMsg(SNAPSHOT_DATA_ON_DISK, 61)]);
    await waitFor(() => a.snaps.length === 3, 'third status');
    expect(a.snaps).toEqual([
      [2, false],
      [2, false],
      [2, false],
    ]);
    const warned = (index: number) =>
      a.lines.filter((l) => l.message.includes(`could not read the snapshot at index ${index} from disk`));
    expect(warned(60)).toHaveLength(1);
    expect(warned(60)[0]!.message).toContain('crc mismatch');
    expect(warned(61)[0]!.message).toContain('ENOENT');
    // The chunks before the refused one arrived, but without the last nothing is installed.
    a.t.send([hb(1, 2)]);
    await waitFor(() => b.got.length === 1, 'heartbeat');
    expect(b.got.map((m) => m.type)).toEqual(['MsgHeartbeat']);
  });

  it('lets go of a snapshot file being streamed when the transport closes', async () => {
    // Far more than the socket takes at once, so the transfer is under way when it closes.
    const source = fakeSnapshotFile(new Uint8Array(64 * 1024 * 1024));
    const a = await startNode(1, { openSnapshotData: async () => source });
    const peer = await rawPeer();
    a.t.setPeers(new Map([[2, peer.address]]));
    await waitFor(() => a.t.health().get(2)!.connected, 'connection');
    a.t.send([snapMsg(SNAPSHOT_DATA_ON_DISK, 80)]);
    await waitFor(() => source.asked.length >= 2, 'the transfer under way');
    await a.t.close();
    await waitFor(() => source.closed === 1, 'the file closed');
    expect(source.asked.length).toBeLessThan(64);
    expect(a.snaps).toEqual([]);
  });

  it('reports a snapshot on disk as failed when there is nothing to read it from', async () => {
    const a = await startNode(1);
    const b = await startNode(2);
    link(a, b);
    await waitFor(() => a.t.health().get(2)!.connected, 'connection');
    a.t.send([snapMsg(SNAPSHOT_DATA_ON_DISK, 70)]);
    await waitFor(() => a.snaps.length === 1, 'status');
    expect(a.snaps).toEqual([[2, false]]);
    expect(logged(a, /cannot send snapshot at index 70 to peer 2: its data is on disk only/)).toBe(true);
  });

  it('reports a snapshot failed when its connection drops between chunks', async () => {
    const a = await startNode(1);
    const peer = await rawPeer(1);
    a.t.setPeers(new Map([[2, peer.address]]));
    await waitFor(() => a.t.health().get(2)!.connected, 'connection');
    // Far more than loopback's socket buffers hold, so chunks are still to write when it drops.
    a.t.send([snapMsg(new Uint8Array(48 * 1024 * 1024), 30)]);
    await waitFor(() => a.snaps.length === 1, 'status');
    expect(a.snaps).toEqual([[2, false]]);
    expect(logged(a, /snapshot at index 30 to peer 2 failed/)).toBe(true);
    expect(peer.frames.length).toBe(1);
  });

  it('drops a chunk that is not the next one, and takes the snapshot when it comes again in order', async () => {
    const b = await startNode(2);
    const ws = dial(b, { 'x-raftctl-cluster': 'c1', 'x-raftctl-from': '1' });
    await new Promise((r) => ws.on('open', r));
    const data = new Uint8Array(300).map((_, i) => 255 - (i & 0xff));
    const last = snapMsg(new Uint8Array(0), 9);
    const chunk = (transfer: number, from: number, to: number, withMessage: boolean) =>
      encodeSnapshotChunk({
        transfer,
        total: data.length,
        offset: from,
        data: data.subarray(from, to),
        message: withMessage ? last : undefined,
      });
    // The middle of a transfer whose start never came, then a start and a chunk of another.
    ws.send(chunk(7, 100, 200, false));
    ws.send(chunk(8, 0, 100, false));
    ws.send(chunk(7, 100, 200, false));
    await waitFor(
      () =>
        b.lines.filter((l) =>
          /dropping a snapshot chunk from peer 1 \(transfer 7, 100 of 300 bytes\)/.test(l.message),
        ).length === 2,
      'both strays dropped',
    );
    // Sent again whole, in order, on the same connection.
    ws.send(chunk(9, 0, 200, false));
    ws.send(chunk(9, 200, 300, true));
    await waitFor(() => b.got.length === 1, 'the snapshot');
    expect(b.got[0]!.type).toBe('MsgSnap');
    expect(Buffer.compare(b.got[0]!.snapshot!.data, data)).toBe(0);
    // A malformed chunk closes the connection, as a malformed frame does.
    const done = closed(ws);
    ws.send(chunk(10, 0, 300, true).subarray(0, 20));
    const { code, reason } = await done;
    expect(code).toBe(1007);
    expect(reason).toMatch(/malformed raft frame at byte \d+: truncated/);
    expect(b.got.length).toBe(1);
  });

  it('reports a snapshot to an unreachable peer as failed', async () => {
    const a = await startNode(1);
    a.t.setPeers(new Map([[2, '127.0.0.1:1']]));
    await waitFor(() => a.unreachable.includes(2), 'peer down');
    a.t.send([snapMsg(new Uint8Array(3), 5)]);
    await waitFor(() => a.snaps.length === 1, 'status');
    expect(a.snaps).toEqual([[2, false]]);
  });
});

describe('Transport: faults', () => {
  async function pair(opts: Partial<TransportOptions> = {}): Promise<[TestNode, TestNode]> {
    const [a, b] = [await startNode(1, opts), await startNode(2)];
    link(a, b);
    await waitFor(() => a.t.health().get(2)!.connected && b.t.health().get(1)!.connected, 'connections');
    return [a, b];
  }

  it('drops outbound messages, and heals', async () => {
    const [a, b] = await pair();
    a.t.setFault({ kind: 'drop', peers: [2], direction: 'out' });
    expect(a.t.faults()).toEqual([{ kind: 'drop', peers: [2], probability: 1, direction: 'out' }]);
    a.t.send([hb(1, 2), hb(1, 2)]);
    b.t.send([hb(2, 1)]);
    await waitFor(() => a.got.length === 1, 'the other direction still works');
    await sleep(30);
    expect(b.got).toEqual([]);
    a.t.setFault({ kind: 'heal' });
    expect(a.t.faults()).toEqual([]);
    a.t.send([hb(1, 2)]);
    await waitFor(() => b.got.length === 1, 'delivery after heal');
  });

  it('drops inbound messages with a probability', async () => {
    let seed = 1;
    // A small LCG: the same messages are dropped on every run.
    const random = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const [a, b] = await pair({ random });
    a.t.setFault({ kind: 'drop', peers: [2], probability: 0.5, direction: 'in' });
    b.t.send(Array.from({ length: 400 }, () => hb(2, 1)));
    await waitFor(() => b.t.health().get(1)!.sentMsgs === 400, 'sent');
    await sleep(50);
    expect(a.got.length).toBeGreaterThan(140);
    expect(a.got.length).toBeLessThan(260);
    expect(a.t.health().get(2)!.recvMsgs).toBe(400);
  });

  it('delays messages to a peer', async () => {
    const [a, b] = await pair();
    a.t.setFault({ kind: 'delay', peers: [2], ms: 150, direction: 'out' });
    const start = Date.now();
    a.t.send([hb(1, 2)]);
    await waitFor(() => b.got.length === 1, 'delayed delivery');
    expect(Date.now() - start).toBeGreaterThanOrEqual(140);
    expect(a.t.faults()).toEqual([{ kind: 'delay', peers: [2], ms: 150, direction: 'out' }]);
  });

  it('isolates peers in both directions, and isolating itself cuts the node off', async () => {
    const [a, b] = await pair();
    a.t.setFault({ kind: 'isolate', peers: [2] });
    a.t.send([hb(1, 2)]);
    b.t.send([hb(2, 1)]);
    await sleep(50);
    expect([a.got, b.got]).toEqual([[], []]);
    a.t.setFault({ kind: 'heal', peers: [2] });
    a.t.setFault({ kind: 'isolate', peers: [1] });
    expect(a.t.faults()).toEqual([{ kind: 'isolate' }]);
    a.t.send([hb(1, 2)]);
    b.t.send([hb(2, 1)]);
    await sleep(50);
    expect([a.got, b.got]).toEqual([[], []]);
    a.t.setFault({ kind: 'heal' });
    a.t.send([hb(1, 2)]);
    b.t.send([hb(2, 1)]);
    await waitFor(() => a.got.length === 1 && b.got.length === 1, 'healed');
    // A snapshot lost to a fault is reported as failed, as a lost connection would be.
    a.t.setFault({ kind: 'isolate', peers: [2] });
    a.t.send([snapMsg(new Uint8Array(1), 1)]);
    await waitFor(() => a.snaps.length === 1, 'snapshot status');
    expect(a.snaps).toEqual([[2, false]]);
  });

  it('validates fault arguments', async () => {
    const a = await startNode(1);
    expect(() => a.t.setFault({ kind: 'drop', probability: 2 })).toThrow(/probability must be within 0..1/);
    expect(() => a.t.setFault({ kind: 'delay', ms: -1 })).toThrow(/non-negative/);
    expect(() => a.t.setFault({ kind: 'drop', peers: [0] })).toThrow(/positive integers/);
    expect(() => a.t.setFault({ kind: 'bogus' as never })).toThrow(/unknown fault kind/);
    a.t.setFault({ kind: 'drop', peers: [2, 3], probability: 0.25 });
    a.t.setFault({ kind: 'delay', ms: 10, direction: 'in' });
    expect(a.t.faults()).toEqual([
      { kind: 'delay', ms: 10, direction: 'in' },
      { kind: 'drop', peers: [2], probability: 0.25, direction: 'both' },
      { kind: 'drop', peers: [3], probability: 0.25, direction: 'both' },
    ]);
  });
});

describe('Transport: membership and shutdown', () => {
  it('closes the connection of a removed peer and forgets it', async () => {
    const [a, b] = [await startNode(1), await startNode(2)];
    link(a, b);
    await waitFor(() => a.t.health().get(2)!.connected, 'connection');
    a.t.setPeers(new Map());
    expect(a.t.health().size).toBe(0);
    a.t.send([hb(1, 2)]);
    await sleep(30);
    expect(b.got).toEqual([]);
    expect(logged(a, /dropping MsgHeartbeat to unknown peer 2/)).toBe(true);
  });

  it('reports an invalid address instead of dialling it', async () => {
    const a = await startNode(1);
    a.t.setPeers(new Map([[2, 'no-port-here']]));
    expect(a.t.health().get(2)!.lastError).toMatch(/invalid peer address "no-port-here"/);
    a.t.send([hb(1, 2)]);
    await waitFor(() => a.unreachable.includes(2), 'unreachable');
  });

  it('stops calling back after close', async () => {
    const [a, b] = [await startNode(1), await startNode(2)];
    link(a, b);
    await waitFor(() => a.t.health().get(2)!.connected, 'connection');
    await a.t.close();
    a.t.send([hb(1, 2)]);
    b.t.send([hb(2, 1)]);
    await sleep(50);
    expect(a.got).toEqual([]);
    expect(a.unreachable).toEqual([]);
  });
});
