// Fuzzing the control API of a real `raftctl node` (one-node cluster, run from dist/):
// random bytes, random JSON and structure-aware mutations of valid frames, over one raw
// WebSocket. Every frame must get its error/result (or be a valid frame that needs none),
// the connection may only be closed for what the protocol says (invalid UTF-8 text: 1007),
// and afterwards the node still round-trips a put and a get. Bounded: about 10 s. Then binary
// put frames (protocol/binary.ts), valid and mutated, on a connection that asked for them.
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { ControlClient } from '../../src/client/client.js';
import { PutFrameWriter, parsePutFrame, readPutResults } from '../../src/protocol/binary.js';
import { COMMAND_NAMES, parseClientFrames } from '../../src/protocol/control.js';
import { killAll, TestCluster, waitFor } from '../e2e/harness.js';

/**
 * Commands that would change the membership or the node's role if a mutant happened to be
 * valid: legitimate operations, not malformed input, so they are not sent. (`fault` is: the
 * node runs without --allow-faults, so it must answer faults_disabled.)
 */
const UNSAFE = new Set(['member-add', 'member-remove', 'member-promote', 'transfer']);
const SENTINEL_BASE = 9_000_000_000_000;

type Frame = Record<string, unknown>;

class RawConn {
  readonly frames: Frame[] = [];
  closed: number | undefined;
  private constructor(readonly ws: WebSocket) {}

  /** With `binary`, the hello asks for binary puts; their answers are kept as `put-answer` frames. */
  static async open(address: string, binary = false): Promise<RawConn> {
    const ws = new WebSocket(`ws://${address}/control`, { perMessageDeflate: false });
    const c = new RawConn(ws);
    ws.on('message', (d, isBinary) => {
      if (!isBinary) {
        c.frames.push(JSON.parse(d.toString()) as Frame);
        return;
      }
      if (!binary) throw new Error('the node sent a binary frame to a client that did not ask for them');
      const error = readPutResults(d as Buffer, (id) => c.frames.push({ type: 'put-answer', id }));
      if (error !== undefined) throw new Error(`unreadable binary frame from the node: ${error}`);
    });
    ws.on('close', (code) => {
      c.closed = code;
    });
    ws.on('error', () => {});
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    ws.send(JSON.stringify({ type: 'hello', version: 1, ...(binary ? { binary } : {}) }));
    await waitFor('hello', () => c.frames.some((f) => f.type === 'hello'));
    c.frames.length = 0;
    return c;
  }
}

// ---- Generators ------------------------------------------------------------------------

const validFrames: Frame[] = [
  { type: 'command', id: 1, command: 'put', args: { key: 'fz', value: 'v' } },
  { type: 'command', id: 2, command: 'get', args: { key: 'fz', serializable: true } },
  { type: 'command', id: 3, command: 'cas', args: { key: 'fz', expected: null, value: 'w' } },
  { type: 'command', id: 4, command: 'delete', args: { key: 'fz' } },
  { type: 'command', id: 5, command: 'status' },
  { type: 'command', id: 6, command: 'log', args: { limit: 3 } },
  { type: 'command', id: 7, command: 'read-index', args: {} },
  { type: 'command', id: 8, command: 'propose', args: { data: 'x' } },
  { type: 'command', id: 9, command: 'member-remove', args: { id: 1 } },
  { type: 'command', id: 10, command: 'fault', args: { kind: 'drop', probability: 0.5 } },
  { type: 'subscribe', state: { everyMs: 1000 }, events: { kinds: ['leader'], sample: 0.5 } },
  { type: 'unsubscribe' },
  { type: 'hello', version: 1 },
];

const weird = fc.oneof(
  fc.jsonValue(),
  fc.constantFrom(
    -1,
    0,
    1.5,
    2 ** 53,
    Number.MAX_SAFE_INTEGER,
    '',
    'x'.repeat(5000),
    '\u0000',
    '\ud800',
    '__proto__',
    null,
    true,
    [],
    {},
    JSON.parse('{"__proto__":{"polluted":1}}') as unknown,
  ),
  fc.constantFrom(...COMMAND_NAMES),
);

type Mutation = (f: Frame) => fc.Arbitrary<unknown>;
const mutations: Mutation[] = [
  // Drop a key.
  (f) => fc.constantFrom(...Object.keys(f)).map((k) => omit(f, k)),
  // Replace a key's value.
  (f) => fc.tuple(fc.constantFrom(...Object.keys(f)), weird).map(([k, v]) => ({ ...f, [k]: v })),
  // Add an unknown key.
  (f) => fc.tuple(fc.string({ maxLength: 8 }), weird).map(([k, v]) => ({ ...f, [k]: v })),
  // Mutate inside args.
  (f) =>
    fc
      .tuple(
        fc.constantFrom('key', 'value', 'serializable', 'expected', 'id', 'limit', 'kind', 'extra'),
        weird,
      )
      .map(([k, v]) => ({ ...f, args: { ...(isObj(f.args) ? f.args : {}), [k]: v } })),
  // Swap the command name.
  (f) => fc.constantFrom(...COMMAND_NAMES, 'nope', '').map((c) => ({ ...f, command: c })),
  // Wrap or nest.
  (f) => fc.constantFrom([f], { frame: f }, { ...f, args: [f.args] }),
];

const mutant: fc.Arbitrary<unknown> = fc
  .tuple(fc.constantFrom(...validFrames), fc.integer({ min: 0, max: mutations.length - 1 }))
  .chain(([f, m]) => mutations[m]!(f));

type Payload = { data: string | Uint8Array; binary: boolean };

const asText = (a: fc.Arbitrary<unknown>): fc.Arbitrary<Payload> =>
  a.map((v) => ({ data: JSON.stringify(v) ?? 'undefined', binary: false }));

const payloads: fc.Arbitrary<Payload> = fc.oneof(
  // Random bytes, as binary frames and as (usually invalid UTF-8) text frames.
  fc.uint8Array({ maxLength: 200 }).map((b) => ({ data: b, binary: true })),
  fc.uint8Array({ maxLength: 200 }).map((b) => ({ data: b, binary: false })),
  // Random text and random JSON.
  fc.string({ maxLength: 200 }).map((s) => ({ data: s, binary: false })),
  asText(fc.jsonValue()),
  // Random objects with a plausible type.
  asText(
    fc.record(
      {
        type: fc.constantFrom('hello', 'command', 'subscribe', 'unsubscribe', 'result'),
        id: weird,
        command: weird,
        args: weird,
      },
      { requiredKeys: ['type'] },
    ),
  ),
  // Structure-aware mutants, most weight.
  { weight: 4, arbitrary: asText(mutant) },
  // Batches mixing valid frames and mutants.
  asText(fc.array(fc.oneof(fc.constantFrom(...validFrames), mutant), { minLength: 1, maxLength: 6 })),
);

// ---- The run -----------------------------------------------------------------------------

let cluster: TestCluster | undefined;

beforeAll(async () => {
  cluster = await TestCluster.start(1, { args: ['--request-timeout-ms', '2000'] });
  const node = cluster.node(1);
  await waitFor('a leader', async () => (await node.health()).leader === 1);
}, 30_000);

afterAll(async () => {
  await killAll();
  await cluster?.destroy();
});

/** Binary put frames: valid ones, and ones cut, flipped, extended, of another kind or random. */
const binaryPayloads: fc.Arbitrary<Uint8Array> = fc
  .tuple(
    fc.array(fc.tuple(fc.nat({ max: 2 ** 40 }), fc.string({ maxLength: 12 }), fc.string({ maxLength: 40 })), {
      minLength: 1,
      maxLength: 5,
    }),
    fc.constantFrom('valid', 'cut', 'flip', 'extend', 'kind', 'random'),
    fc.nat(),
    fc.uint8Array({ minLength: 1, maxLength: 40 }),
  )
  .map(([puts, how, at, bytes]) => {
    const w = new PutFrameWriter();
    for (const [id, key, value] of puts) w.add(id, key, value);
    const frame = w.take()!;
    switch (how) {
      case 'valid':
        return frame;
      case 'cut':
        return frame.subarray(0, at % frame.length);
      case 'flip':
        frame[at % frame.length] ^= bytes[0]!;
        return frame;
      case 'extend':
        return Buffer.concat([frame, bytes]);
      case 'kind':
        frame[0] = bytes[0]!;
        return frame;
      default:
        return bytes;
    }
  });

describe('control API fuzzing', () => {
  it('answers or ignores every frame and keeps serving', async () => {
    const node = cluster!.node(1);
    let conn = await RawConn.open(node.address);
    let sentinel = SENTINEL_BASE;
    const pending = new Set<number>();
    let frames = 0;
    let closes = 0;
    const deadline = Date.now() + 9000;

    await fc.assert(
      fc.asyncProperty(payloads, async (p) => {
        if (Date.now() > deadline) return;
        const text = typeof p.data === 'string' ? p.data : p.binary ? undefined : utf8OrUndefined(p.data);
        // A frame may be a batch: each of its messages is judged as if it came alone.
        const messages = text === undefined ? [] : parseClientFrames(text);
        for (const m of messages) {
          if (m.ok && m.msg.type === 'command' && (UNSAFE.has(m.msg.command) || m.msg.id >= SENTINEL_BASE))
            return;
        }
        frames++;
        const start = conn.frames.length;
        conn.ws.send(p.data, { binary: p.binary });
        const s = ++sentinel;
        conn.ws.send(JSON.stringify({ type: 'command', id: s, command: 'members' }));
        const answered = await waitFor(
          `the sentinel after ${JSON.stringify(text ?? '<binary>').slice(0, 200)}`,
          () =>
            conn.closed !== undefined ? 'closed' : conn.frames.some((f) => f.id === s) ? 'ok' : undefined,
          { timeoutMs: 5000, intervalMs: 2 },
        );
        const seen = conn.frames.slice(start).filter((f) => f.id !== s);
        if (answered === 'closed') {
          // Only text that is not UTF-8 may cost the connection (RFC 6455: 1007).
          expect(text, `closed (${conn.closed}) after a valid UTF-8 frame`).toBeUndefined();
          expect(p.binary).toBe(false);
          expect(conn.closed).toBe(1007);
          closes++;
          // Commands sent on the closed connection have nobody left to answer to.
          pending.clear();
          conn = await RawConn.open(node.address);
          return;
        }
        if (p.binary) {
          expect(seen.some((f) => f.type === 'error')).toBe(true);
          return;
        }
        for (const parsed of messages) {
          if (!parsed.ok) {
            const want = parsed.command?.id;
            expect(
              seen.some((f) =>
                want === undefined ? f.type === 'error' : f.type === 'result' && f.id === want,
              ),
              `no answer to ${text?.slice(0, 200)}`,
            ).toBe(true);
          } else if (parsed.msg.type === 'hello') {
            expect(seen.some((f) => f.type === 'error')).toBe(true);
          } else if (parsed.msg.type === 'command') {
            pending.add(parsed.msg.id);
          }
        }
      }),
      { numRuns: 600, seed: Number(process.env.FUZZ_SEED ?? Date.now() % 2 ** 31), endOnFailure: true },
    );

    // Every valid command got its result, even the slow ones.
    await waitFor(
      `results for ${pending.size} valid commands`,
      () =>
        [...pending].every((id) => conn.frames.some((f) => f.type === 'result' && f.id === id)) || undefined,
      { timeoutMs: 5000 },
    );
    conn.ws.terminate();
    expect(frames).toBeGreaterThan(100);

    // The node is alive and serves: a put and a get round-trip.
    expect(node.running).toBe(true);
    const c = new ControlClient();
    await c.connect(node.address, { timeoutMs: 3000 });
    await c.command('put', { key: 'after-fuzz', value: 'ok' }, { timeoutMs: 5000 });
    expect(await c.command('get', { key: 'after-fuzz' })).toMatchObject({ found: true, value: 'ok' });
    await c.close();
    expect(node.stderr).not.toMatch(/^\s+at /m);
    process.stderr.write(`control fuzz: ${frames} frames, ${closes} connections closed with 1007\n`);
  }, 30_000);

  it('answers every put of a binary frame by id, or the frame with an error, and keeps serving', async () => {
    const node = cluster!.node(1);
    const conn = await RawConn.open(node.address, true);
    let sentinel = SENTINEL_BASE;
    const pending = new Set<number>();
    let frames = 0;
    const deadline = Date.now() + 5000;
    await fc.assert(
      fc.asyncProperty(binaryPayloads, async (bytes) => {
        if (Date.now() > deadline) return;
        frames++;
        const start = conn.frames.length;
        conn.ws.send(bytes, { binary: true });
        const s = ++sentinel;
        conn.ws.send(JSON.stringify({ type: 'command', id: s, command: 'members' }));
        await waitFor(
          'the sentinel after a binary frame',
          () => conn.frames.some((f) => f.id === s) || undefined,
          {
            timeoutMs: 5000,
            intervalMs: 2,
          },
        );
        expect(conn.closed).toBeUndefined();
        const seen = conn.frames.slice(start);
        // The node's own parser says what each part of the frame deserves.
        for (const parsed of parsePutFrame(bytes)) {
          if (parsed.ok) pending.add(parsed.msg.id);
          else if (parsed.command !== undefined) {
            const id = parsed.command.id;
            expect(seen.some((f) => f.type === 'result' && f.id === id && f.ok === false)).toBe(true);
          } else expect(seen.some((f) => f.type === 'error')).toBe(true);
        }
      }),
      { numRuns: 400, seed: Number(process.env.FUZZ_SEED ?? Date.now() % 2 ** 31), endOnFailure: true },
    );
    // Every well-formed put was answered: applied (a binary answer) or failed by id.
    await waitFor(
      `answers to ${pending.size} binary puts`,
      () => [...pending].every((id) => conn.frames.some((f) => f.id === id)) || undefined,
      { timeoutMs: 5000 },
    );
    conn.ws.terminate();
    expect(frames).toBeGreaterThan(50);
    expect(node.running).toBe(true);
    expect(node.stderr).not.toMatch(/^\s+at /m);
    process.stderr.write(`binary put fuzz: ${frames} frames, ${pending.size} puts\n`);
  }, 30_000);
});

function omit(f: Frame, k: string): Frame {
  const out = { ...f };
  delete out[k];
  return out;
}

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });
function utf8OrUndefined(b: Uint8Array): string | undefined {
  try {
    return strictUtf8.decode(b);
  } catch {
    return undefined;
  }
}
