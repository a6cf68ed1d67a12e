import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { type WebSocket, WebSocketServer } from 'ws';
import {
  type CloseInfo,
  ControlClient,
  ControlError,
  controlUrl,
  isRefusal,
} from '../../src/client/client.js';
import type { NodeEvent, NodeState } from '../../src/protocol/control.js';
import { type Harness, leaderEvent, startHarness } from '../server/control-fixture.js';
import { firstFrameServer, readClientFrame } from '../support/first-frame-server.js';
import { waitUntil } from '../support/wait-until.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function harness(opts: Parameters<typeof startHarness>[0] = {}): Promise<Harness> {
  const h = await startHarness(opts);
  cleanups.push(() => h.stop());
  return h;
}

function client(): ControlClient {
  const c = new ControlClient();
  cleanups.push(() => c.close());
  return c;
}

async function rejection(p: Promise<unknown>): Promise<ControlError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(ControlError);
    return err as ControlError;
  }
  throw new Error('expected a rejection');
}

/** A scripted node for protocol corners the real server never produces. */
async function scriptedNode(onFrame: (ws: WebSocket, frame: { type: string; id?: number }) => void) {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  await once(wss, 'listening');
  wss.on('connection', (ws) => {
    ws.on('message', (d) => onFrame(ws, JSON.parse(d.toString()) as { type: string; id?: number }));
  });
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        for (const c of wss.clients) c.terminate();
        wss.close(() => resolve());
      }),
  );
  return `127.0.0.1:${(wss.address() as AddressInfo).port}`;
}

const HELLO = { type: 'hello', version: 1, nodeId: 9, clusterId: 'x', members: [], allowFaults: false };

describe('isRefusal', () => {
  it('is true only for the errors of a command that did not run', () => {
    for (const code of ['not_leader', 'no_leader', 'proposal_dropped'] as const) {
      expect(isRefusal(new ControlError(code, 'x')), code).toBe(true);
    }
    // A timeout or a dropped connection may have applied a write; bad arguments will not pass again.
    for (const code of ['timeout', 'unavailable', 'bad_args', 'internal'] as const) {
      expect(isRefusal(new ControlError(code, 'x')), code).toBe(false);
    }
    expect(isRefusal(new Error('not_leader'))).toBe(false);
  });
});

describe('controlUrl', () => {
  it('normalizes addresses to the control endpoint', () => {
    expect(controlUrl('127.0.0.1:2380')).toBe('ws://127.0.0.1:2380/control');
    expect(controlUrl('[::1]:2380')).toBe('ws://[::1]:2380/control');
    expect(controlUrl('http://node-1:2380')).toBe('ws://node-1:2380/control');
    expect(controlUrl('wss://node-1:2380/')).toBe('wss://node-1:2380/control');
    expect(controlUrl('ws://node-1:2380/other')).toBe('ws://node-1:2380/other');
    expect(() => controlUrl('ftp://x:1')).toThrow(ControlError);
  });
});

describe('ControlClient on the wire', () => {
  it('masks its frames with a zero key on loopback: the hello crosses as written', async () => {
    const server = await firstFrameServer();
    cleanups.push(() => server.close());
    const c = client();
    // The server never answers the hello, so the connect times out; the frame is what counts.
    const connecting = c.connect(server.address, { timeoutMs: 2000 }).catch((e: unknown) => e);
    const { key, wirePayload } = readClientFrame(await server.firstFrame);
    expect(key).toBe('00000000');
    expect(JSON.parse(wirePayload.toString())).toMatchObject({ type: 'hello' });
    await connecting;
  });
});

describe('ControlClient', () => {
  it('connects, runs commands and reports command errors', async () => {
    const h = await harness();
    const c = client();
    const opened: boolean[] = [];
    c.on('open', (_hello, reconnected) => opened.push(reconnected));
    const hello = await c.connect(`127.0.0.1:${h.port}`);
    expect(hello).toMatchObject({ nodeId: 1, clusterId: 'c-test', allowFaults: true });
    expect(c.connected).toBe(true);
    expect(opened).toEqual([false]);

    expect(await c.command('put', { key: 'a', value: '1' })).toEqual({ op: 'put', revision: 1, term: 3 });
    expect(await c.command('get', { key: 'a' })).toEqual({ value: '1', serializable: false });
    const status = await c.command('status');
    expectTypeOfState(status);
    expect(status.leader).toBe(2);
    const members = await c.command('members');
    expect(members.map((m) => m.id)).toEqual([1, 2]);

    const notLeader = await rejection(c.command('campaign'));
    expect(notLeader).toMatchObject({ code: 'not_leader', leader: 2, message: 'node 1 is not the leader' });
    expect((await rejection(c.command('snapshot'))).code).toBe('internal');
  });

  it('validates arguments locally before sending', async () => {
    const h = await harness();
    const c = client();
    await c.connect(h.url);
    const e = await rejection(c.command('fault', { kind: 'delay' }));
    expect(e).toMatchObject({ code: 'bad_args', field: 'args.ms' });
    expect(h.node.calls).toEqual([]);
    expect(() => c.subscribe({ state: { everyMs: 1 } })).toThrow(/everyMs/);
  });

  it('times out a command and ignores its late answer', async () => {
    const h = await harness();
    const c = client();
    await c.connect(h.url);
    const e = await rejection(c.command('read-index', {}, { timeoutMs: 100 }));
    expect(e.code).toBe('timeout');
    for (const resolve of h.node.hanging) resolve({ index: 1 });
    // The connection carries on normally.
    expect(await c.command('put', { key: 'k', value: 'v' })).toEqual({ op: 'put', revision: 1, term: 3 });
  });

  it('times out each command at its own deadline, a shorter one issued later first', async () => {
    const h = await harness();
    const c = client();
    await c.connect(h.url);
    const started = performance.now();
    const settledAt = (p: Promise<unknown>) =>
      rejection(p).then((e) => ({ code: e.code, at: performance.now() - started }));
    const long = settledAt(c.command('read-index', {}, { timeoutMs: 600 }));
    const short = settledAt(c.command('read-index', {}, { timeoutMs: 150 }));
    const [l, sh] = await Promise.all([long, short]);
    expect(sh.code).toBe('timeout');
    expect(l.code).toBe('timeout');
    expect(sh.at).toBeGreaterThanOrEqual(145);
    expect(sh.at).toBeLessThan(450);
    expect(l.at).toBeGreaterThanOrEqual(595);
  });

  it('rejects a wrong token with unauthorized and does not reconnect', async () => {
    const h = await harness({ token: 'right' });
    const c = client();
    const e = await rejection(c.connect(h.url, { token: 'wrong', reconnect: { initialDelayMs: 10 } }));
    expect(e.code).toBe('unauthorized');
    expect(c.connected).toBe(false);
    await c.connect(h.url, { token: 'right' });
    expect(c.connected).toBe(true);
  });

  it('fails fast when nothing listens, and times out when nobody answers', async () => {
    // Accepts TCP connections and never answers the WebSocket handshake.
    const accepted = new Set<Socket>();
    const silent: Server = createServer((sock) => accepted.add(sock));
    silent.listen(0, '127.0.0.1');
    await once(silent, 'listening');
    const port = (silent.address() as AddressInfo).port;
    cleanups.push(
      () =>
        new Promise<void>((r) => {
          for (const s of accepted) s.destroy();
          silent.close(() => r());
        }),
    );
    const c1 = client();
    const t0 = Date.now();
    expect((await rejection(c1.connect(`127.0.0.1:${port}`, { timeoutMs: 200 }))).code).toBe('timeout');
    expect(Date.now() - t0).toBeLessThan(1500);

    const closed: Server = createServer();
    closed.listen(0, '127.0.0.1');
    await once(closed, 'listening');
    const closedPort = (closed.address() as AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const c2 = client();
    expect((await rejection(c2.connect(`127.0.0.1:${closedPort}`))).code).toBe('unavailable');
  });

  it('rejects commands while disconnected', async () => {
    const c = client();
    expect((await rejection(c.command('status'))).code).toBe('unavailable');
  });

  it('streams state, events and lost counts', async () => {
    const h = await harness();
    const c = client();
    const states: NodeState[] = [];
    const events: NodeEvent[] = [];
    c.on('state', (s) => states.push(s));
    c.on('event', (e) => events.push(e));
    await c.connect(h.url);
    c.subscribe({ state: { everyMs: 50 }, events: { kinds: ['leader'] } });
    await waitUntil(() => states.length >= 2);
    const e = leaderEvent(3);
    h.control.publish(e);
    await waitUntil(() => events.length === 1);
    expect(events[0]).toEqual(e);

    c.unsubscribe();
    await new Promise((r) => setTimeout(r, 30));
    const n = states.length;
    await new Promise((r) => setTimeout(r, 150));
    expect(states.length).toBe(n);

    const url = await scriptedNode((ws, f) => {
      if (f.type === 'hello') {
        ws.send(JSON.stringify(HELLO));
        ws.send(JSON.stringify({ type: 'lost', count: 5 }));
        ws.send('not json');
        ws.send(JSON.stringify({ type: 'error', error: { code: 'bad_frame', message: 'nope', field: 'x' } }));
      }
    });
    const c2 = client();
    const lost: number[] = [];
    const problems: ControlError[] = [];
    c2.on('lost', (n) => lost.push(n));
    c2.on('protocolError', (err) => problems.push(err));
    await c2.connect(url);
    await waitUntil(() => lost.length === 1 && problems.length === 2);
    expect(lost).toEqual([5]);
    expect(problems.map((p) => p.code)).toEqual(['bad_frame', 'bad_frame']);
    expect(problems[1]!.field).toBe('x');
  });

  it('sends the commands of one turn as one frame to a node that takes batches', async () => {
    const frames: unknown[] = [];
    const answer = (ws: WebSocket, cmds: { id: number; args: { key: string } }[]) =>
      ws.send(JSON.stringify(cmds.map((c) => ({ type: 'result', id: c.id, ok: true, value: c.args.key }))));
    const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    await once(wss, 'listening');
    cleanups.push(() => new Promise<void>((resolve) => wss.close(() => resolve())));
    wss.on('connection', (ws) => {
      cleanups.push(() => ws.terminate());
      ws.on('message', (d) => {
        const f = JSON.parse(d.toString()) as { type?: string; batch?: boolean };
        frames.push(f);
        if (!Array.isArray(f) && f.type === 'hello') {
          expect(f.batch).toBe(true);
          ws.send(JSON.stringify({ ...HELLO, batch: true }));
        } else if (Array.isArray(f)) answer(ws, f);
        else answer(ws, [f as { id: number; args: { key: string } }]);
      });
    });
    const c = client();
    await c.connect(`127.0.0.1:${(wss.address() as AddressInfo).port}`);
    const values = await Promise.all(['a', 'b', 'c'].map((key) => c.command('get', { key })));
    expect(values).toEqual(['a', 'b', 'c']);
    // The hello, then one array of three commands (answered by one array of three results).
    expect(frames).toHaveLength(2);
    expect((frames[1] as { command: string }[]).map((f) => f.command)).toEqual(['get', 'get', 'get']);
    // A lone command still goes as a plain frame.
    expect(await c.command('get', { key: 'd' })).toBe('d');
    expect(Array.isArray(frames[2])).toBe(false);
  });

  it('sends the plain puts of one turn in one binary frame, and any other put as JSON', async () => {
    const h = await harness();
    const c = client();
    expect((await c.connect(`127.0.0.1:${h.port}`)).binary).toBe(true);
    const keys = ['a', 'b', 'ключ'];
    const answers = await Promise.all(keys.map((key, i) => c.command('put', { key, value: `v${i} ✓` })));
    expect(answers).toEqual([1, 2, 3].map((revision) => ({ op: 'put', revision, term: 3 })));
    expect(h.node.binaryPuts).toEqual(keys.map((key, i) => ({ key, value: `v${i} ✓` })));
    // Asking for the previous entry, or naming the request, is a put the binary frame cannot say.
    await c.command('put', { key: 'a', value: 'x', prevKv: true });
    await c.command('put', { key: 'b', value: 'y', clientId: 'me', seq: 1 });
    expect(h.node.calls.map(([cmd, args]) => [cmd, (args as { key: string }).key])).toEqual([
      ['put', 'a'],
      ['put', 'b'],
    ]);
    // Binary and JSON puts issued in one turn reach the node in the order they were issued.
    h.node.putOrder.length = 0;
    const keysInOrder = ['o1', 'o2', 'o3', 'o4', 'o5'];
    await Promise.all(
      keysInOrder.map((key, i) =>
        c.command('put', i % 2 === 1 ? { key, value: 'j', prevKv: true } : { key, value: 'b' }),
      ),
    );
    expect(h.node.putOrder).toEqual(keysInOrder);
    // A failed binary put is answered by id, in JSON.
    expect(await rejection(c.command('put', { key: 'fail', value: '' }))).toMatchObject({
      code: 'no_leader',
    });
    expect(h.node.binaryPuts).toHaveLength(6);
  });

  it("holds commands beyond the node's limit in flight until answers make room, instead of having them refused", async () => {
    const h = await harness({ maxInFlight: 2 });
    const c = client();
    expect((await c.connect(`127.0.0.1:${h.port}`)).maxInFlight).toBe(2);
    // Two reads that the node keeps open take the connection's whole allowance...
    const slow = [c.command('read-index'), c.command('read-index')];
    const puts = Array.from({ length: 20 }, (_, i) => c.command('put', { key: `h${i}`, value: 'v' }));
    await waitUntil(() => h.node.hanging.length === 2);
    await new Promise((r) => setTimeout(r, 50));
    expect(h.node.binaryPuts).toHaveLength(0);
    // ...and every put goes once they are answered, none refused.
    for (const done of h.node.hanging.splice(0)) done(null);
    await Promise.all(slow);
    expect(await Promise.all(puts)).toHaveLength(20);
    expect(h.node.binaryPuts.map((p) => p.key)).toEqual(Array.from({ length: 20 }, (_, i) => `h${i}`));
    // A held command still times out at its own deadline.
    const a = c.command('read-index');
    const b = c.command('read-index');
    const late = c.command('status', undefined, { timeoutMs: 100 });
    expect(await rejection(late)).toMatchObject({ code: 'timeout' });
    for (const done of h.node.hanging.splice(0)) done(null);
    await Promise.all([a, b]);
    expect(h.node.stateCalls).toBe(0);
  });

  it('greets a node from before binary puts and batching without those fields, and sends it plain frames', async () => {
    const hellos: unknown[] = [];
    const frames: { type: string; id?: number }[] = [];
    const url = await scriptedNode((ws, f) => {
      frames.push(f);
      if (f.type !== 'hello') {
        ws.send(JSON.stringify({ type: 'result', id: f.id, ok: true, value: f.id }));
        return;
      }
      hellos.push(f);
      // As an older node's strict schema would: an unknown key is refused, the connection stays.
      const unknown = ['batch', 'binary'].find((k) => k in f);
      if (unknown !== undefined) {
        ws.send(
          JSON.stringify({
            type: 'error',
            error: { code: 'bad_frame', field: unknown, message: 'unknown key' },
          }),
        );
      } else ws.send(JSON.stringify(HELLO));
    });
    const c = client();
    await c.connect(url);
    expect(hellos).toEqual([
      { type: 'hello', version: 1, batch: true, binary: true },
      { type: 'hello', version: 1, binary: true },
      { type: 'hello', version: 1 },
    ]);
    await Promise.all([c.command('read-index'), c.command('put', { key: 'k', value: 'v' })]);
    expect(frames.filter((f) => f.type === 'command')).toHaveLength(2);
  });

  it('sends one frame per command to a node that does not take batches', async () => {
    const frames: { type: string; id?: number }[] = [];
    const url = await scriptedNode((ws, f) => {
      frames.push(f);
      if (f.type === 'hello') ws.send(JSON.stringify(HELLO));
      else ws.send(JSON.stringify({ type: 'result', id: f.id, ok: true, value: f.id }));
    });
    const c = client();
    await c.connect(url);
    await Promise.all(
      [c.command('status'), c.command('members'), c.command('read-index')].map((p) => p.catch(() => 0)),
    );
    expect(frames.map((f) => f.type)).toEqual(['hello', 'command', 'command', 'command']);
  });

  it('rejects a result that does not match the documented status shape', async () => {
    const url = await scriptedNode((ws, f) => {
      if (f.type === 'hello') ws.send(JSON.stringify(HELLO));
      if (f.type === 'command')
        ws.send(JSON.stringify({ type: 'result', id: f.id, ok: true, value: { id: 1 } }));
    });
    const c = client();
    await c.connect(url);
    expect((await rejection(c.command('status'))).code).toBe('internal');
    expect(await c.command('propose', { data: 'x' })).toEqual({ id: 1 });
  });

  it('reconnects with backoff after a drop and restores the subscription', async () => {
    const h = await harness();
    const c = client();
    const opens: boolean[] = [];
    const closes: CloseInfo[] = [];
    const delays: number[] = [];
    let states = 0;
    c.on('open', (_h, reconnected) => opens.push(reconnected));
    c.on('close', (info) => closes.push(info));
    c.on('reconnecting', (_attempt, delayMs) => delays.push(delayMs));
    c.on('state', () => states++);
    await c.connect(h.url, { reconnect: { initialDelayMs: 20, maxDelayMs: 100, jitter: 0 } });
    c.subscribe({ state: { everyMs: 10_000 } });
    await waitUntil(() => states === 1);

    const pending = c.command('read-index');
    await waitUntil(() => h.node.hanging.length === 1);
    const rejected = rejection(pending);
    for (const s of h.sockets) s.destroy();
    expect((await rejected).code).toBe('unavailable');
    await waitUntil(() => opens.length === 2);
    expect(opens).toEqual([false, true]);
    expect(closes).toHaveLength(1);
    expect(closes[0]!.willReconnect).toBe(true);
    expect(delays[0]).toBe(20);
    // The subscription came back with the new connection: its immediate state frame arrives.
    await waitUntil(() => states === 2);
    expect(await c.command('put', { key: 'k', value: 'v' })).toEqual({ op: 'put', revision: 1, term: 3 });
  });

  it('backs off while the node stays down, and close() stops trying', async () => {
    const h = await harness();
    const c = client();
    const delays: number[] = [];
    const closes: CloseInfo[] = [];
    c.on('reconnecting', (_a, d) => delays.push(d));
    c.on('close', (i) => closes.push(i));
    await c.connect(h.url, { reconnect: { initialDelayMs: 10, maxDelayMs: 40, jitter: 0 } });
    await h.stop();
    await waitUntil(() => delays.length >= 4);
    expect(delays.slice(0, 4)).toEqual([10, 20, 40, 40]);
    await c.close();
    const n = delays.length;
    await new Promise((r) => setTimeout(r, 100));
    expect(delays.length).toBe(n);
    expect(c.connected).toBe(false);
    expect(closes[0]).toMatchObject({ code: 1001, willReconnect: true });
  });

  it('close() rejects pending commands and closes cleanly', async () => {
    const h = await harness();
    const c = client();
    const closes: CloseInfo[] = [];
    c.on('close', (i) => closes.push(i));
    await c.connect(h.url, { reconnect: true });
    const pending = c.command('read-index');
    await waitUntil(() => h.node.hanging.length === 1);
    const rejected = rejection(pending);
    await c.close();
    expect((await rejected).code).toBe('unavailable');
    await waitUntil(() => h.control.connections === 0);
    expect(closes).toEqual([{ code: 1000, reason: 'client closing', willReconnect: false }]);
    expect((await rejection(c.connect(h.url))).code).toBe('unavailable');
  });
});

function expectTypeOfState(s: NodeState): void {
  expect(typeof s.term).toBe('number');
}
