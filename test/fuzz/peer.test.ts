// Fuzzing the peer transport of a real `raftctl node` (one-node cluster, run from dist/):
// random bytes and mutated encodeFrame and encodeSnapshotChunk output over a raw WebSocket
// to /raft with a correct handshake. A frame that does not decode must cost exactly that
// connection (closed with 1007, and logged); one that decodes keeps it open (a snapshot chunk
// may close it with 1007 too: one that ends a snapshot short of its bytes); the node stays up
// and keeps serving.
// Bounded: about 10 s.
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { ControlClient } from '../../src/client/client.js';
import { entry, type Message, message } from '../../src/raft/types.js';
import {
  decodeFrame,
  decodeSnapshotChunk,
  encodeFrame,
  encodeSnapshotChunk,
  type SnapshotChunk,
} from '../../src/server/transport/codec.js';
import { killAll, TestCluster, waitFor } from '../e2e/harness.js';

const FROM = 2;

class PeerConn {
  closed: { code: number; reason: string } | undefined;
  private constructor(readonly ws: WebSocket) {}

  static async open(address: string): Promise<PeerConn> {
    const ws = new WebSocket(`ws://${address}/raft`, {
      perMessageDeflate: false,
      headers: { 'x-raftctl-cluster': 'default', 'x-raftctl-from': String(FROM) },
    });
    const c = new PeerConn(ws);
    ws.on('close', (code, reason) => {
      c.closed = { code, reason: reason.toString() };
    });
    ws.on('error', () => {});
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
      ws.once('unexpected-response', (_q, res) => reject(new Error(`handshake refused: ${res.statusCode}`)));
    });
    return c;
  }

  /** Resolves true when a pong came back (the connection is alive), false when it closed. */
  alive(): Promise<boolean> {
    if (this.closed) return Promise.resolve(false);
    return new Promise((resolve) => {
      const onPong = () => done(true);
      const onClose = () => done(false);
      const done = (v: boolean) => {
        this.ws.off('pong', onPong);
        this.ws.off('close', onClose);
        resolve(v);
      };
      this.ws.once('pong', onPong);
      this.ws.once('close', onClose);
      this.ws.ping();
    });
  }
}

// Valid frames whose messages are addressed to a node that does not exist (99): a mutant
// that still decodes is dropped as misaddressed, never stepped into the node's raft.
const base: Message[][] = [
  [message({ type: 'MsgHeartbeat', from: FROM, to: 99, term: 3, commit: 7 })],
  [
    message({
      type: 'MsgApp',
      from: FROM,
      to: 99,
      term: 5,
      logTerm: 4,
      index: 10,
      commit: 9,
      entries: [entry({ term: 5, index: 11, data: new TextEncoder().encode('put k v') })],
    }),
    message({ type: 'MsgVoteResp', from: FROM, to: 99, term: 5, reject: true }),
  ],
  [
    message({
      type: 'MsgSnap',
      from: FROM,
      to: 99,
      term: 2,
      snapshot: {
        metadata: {
          index: 20,
          term: 2,
          confState: { voters: [1, 2], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false },
        },
        data: new Uint8Array([1, 2, 3]),
      },
    }),
  ],
  [message({ type: 'MsgAppResp', from: FROM, to: 99, term: 1, index: 3, context: new Uint8Array([9]) })],
];
const snapToNobody = base[2]![0]!;
// A snapshot in chunks (to the same absent node): a first chunk, and a whole one-chunk snapshot.
const chunks = [
  { transfer: 4, total: 10, offset: 0, data: new Uint8Array(6).fill(5), message: undefined },
  {
    transfer: 5,
    total: 3,
    offset: 0,
    data: new Uint8Array([1, 2, 3]),
    message: { ...snapToNobody, snapshot: { ...snapToNobody.snapshot!, data: new Uint8Array(0) } },
  },
].map((c: SnapshotChunk) => encodeSnapshotChunk(c));
const frames = [...base.map((ms) => encodeFrame(ms)), ...chunks];

const mutated: fc.Arbitrary<Uint8Array> = fc
  .tuple(
    fc.constantFrom(...frames),
    fc.array(fc.tuple(fc.nat(4), fc.nat(), fc.nat(255)), { minLength: 1, maxLength: 4 }),
  )
  .map(([f, edits]) => {
    let b = Uint8Array.from(f);
    for (const [kind, at, v] of edits) {
      const i = b.length === 0 ? 0 : at % b.length;
      if (kind === 0)
        b[i]! ^= 1 << (v % 8); // bit flip
      else if (kind === 1)
        b[i] = v; // byte replaced
      else if (kind === 2)
        b = b.slice(0, i); // truncated
      else if (kind === 3)
        b = Uint8Array.from([...b.slice(0, i), v, ...b.slice(i)]); // byte inserted
      else b = Uint8Array.from([...b, ...new Uint8Array(v % 16).fill(v)]); // trailing garbage
    }
    return b;
  });

const payloads = fc.oneof(
  fc.uint8Array({ maxLength: 300 }),
  // The right magic, then noise.
  fc.uint8Array({ maxLength: 300 }).map((b) => Uint8Array.from([0x52, 0x46, 0x54, 0x01, ...b])),
  { weight: 4, arbitrary: mutated },
);

let cluster: TestCluster | undefined;

afterAll(async () => {
  await killAll();
  await cluster?.destroy();
});

describe('peer transport fuzzing', () => {
  it('closes a connection with 1007 for every undecodable frame, and keeps serving', async () => {
    cluster = await TestCluster.start(1);
    const node = cluster.node(1);
    await waitFor('a leader', async () => (await node.health()).leader === 1);
    let conn = await PeerConn.open(node.address);
    const deadline = Date.now() + 9000;
    let bad = 0;
    let good = 0;
    let chunkFrames = 0;

    await fc.assert(
      fc.asyncProperty(payloads, async (bytes) => {
        if (Date.now() > deadline) return;
        let decoded: Message[] | undefined;
        // A chunk that decodes may still close the connection (one that ends a snapshot
        // before all its bytes came); one that does not decode must.
        let chunk = false;
        try {
          decoded = decodeFrame(bytes);
        } catch {
          try {
            const c = decodeSnapshotChunk(bytes);
            decoded = c.message === undefined ? [] : [c.message];
            chunk = true;
            chunkFrames++;
          } catch {
            decoded = undefined;
          }
        }
        // A mutant that names this node as recipient would be stepped into raft as a message
        // from a peer that holds the token: that is a trusted peer, not the subject here.
        if (decoded?.some((m) => m.to === 1 && m.from === FROM)) return;
        conn.ws.send(bytes, { binary: true });
        const alive = await conn.alive();
        if (decoded === undefined) {
          bad++;
          expect(alive, 'an undecodable frame left the connection open').toBe(false);
          await waitFor('the close frame', () => conn.closed);
          expect(conn.closed?.code).toBe(1007);
          expect(conn.closed?.reason).toMatch(/malformed raft frame|undecodable/);
          conn = await PeerConn.open(node.address);
        } else if (chunk && !alive) {
          bad++;
          await waitFor('the close frame', () => conn.closed);
          expect(conn.closed?.code).toBe(1007);
          expect(conn.closed?.reason).toMatch(/malformed raft frame/);
          conn = await PeerConn.open(node.address);
        } else {
          good++;
          expect(alive, `a decodable frame closed the connection: ${JSON.stringify(conn.closed)}`).toBe(true);
        }
      }),
      { numRuns: 1500, seed: Number(process.env.FUZZ_SEED ?? Date.now() % 2 ** 31), endOnFailure: true },
    );
    conn.ws.terminate();
    expect(bad).toBeGreaterThan(50);

    // The node logged the refusals, is alive, and serves.
    await node.waitForLog(/dropping frame from peer 2 \(\d+ bytes\): .*; closing the connection/);
    expect(node.running).toBe(true);
    const c = new ControlClient();
    await c.connect(node.address, { timeoutMs: 3000 });
    await c.command('put', { key: 'after-peer-fuzz', value: 'ok' }, { timeoutMs: 5000 });
    expect(await c.command('get', { key: 'after-peer-fuzz' })).toMatchObject({ found: true, value: 'ok' });
    await c.close();
    expect(node.stderr).not.toMatch(/^\s+at /m);
    expect(chunkFrames).toBeGreaterThan(0);
    process.stderr.write(
      `peer fuzz: ${bad} frames closed 1007, ${good} decodable (${chunkFrames} snapshot chunks decoded)\n`,
    );
  }, 30_000);
});
