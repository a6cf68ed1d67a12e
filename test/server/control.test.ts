import { createConnection } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { type PutAnswer, PutFrameWriter, readPutResults } from '../../src/protocol/binary.js';
import { MAX_BATCH_FRAMES, type NodeFrame } from '../../src/protocol/control.js';
import { entry, message } from '../../src/raft/types.js';
import { entryView, messageEvent, readyEvent } from '../../src/server/control.js';
import { type Harness, leaderEvent, logEvent, RawPeer, startHarness } from './control-fixture.js';

let harness: Harness | undefined;
const peers: RawPeer[] = [];

async function start(opts: Parameters<typeof startHarness>[0] = {}): Promise<Harness> {
  harness = await startHarness(opts);
  return harness;
}

async function peer(h: Harness, greet = true): Promise<RawPeer> {
  const p = await RawPeer.open(h.url);
  peers.push(p);
  if (greet) expect((await p.hello()).type).toBe('hello');
  return p;
}

afterEach(async () => {
  for (const p of peers.splice(0)) p.close();
  await harness?.stop();
  harness = undefined;
});

const text = (s: string) => new TextEncoder().encode(s);

describe('ControlServer', () => {
  it('answers hello with the node identity, members and the fault switch', async () => {
    const h = await start();
    h.node.allowFaults = false;
    const p = await peer(h, false);
    expect(await p.hello()).toEqual({
      type: 'hello',
      version: 1,
      nodeId: 1,
      clusterId: 'c-test',
      members: [
        { id: 1, address: '127.0.0.1:7001', learner: false },
        { id: 2, address: '127.0.0.1:7002', learner: false },
      ],
      allowFaults: false,
      batch: true,
      binary: true,
      maxInFlight: 256,
    });
    expect(h.control.connections).toBe(1);
  }, 10_000);

  it('refuses anything before hello, and a second hello', async () => {
    const h = await start();
    const p = await peer(h, false);
    p.send({ type: 'command', id: 1, command: 'status' });
    expect(await p.next()).toMatchObject({ type: 'error', error: { code: 'bad_frame', field: 'type' } });
    expect(h.node.calls).toEqual([]);
    expect((await p.hello()).type).toBe('hello');
    expect(await p.hello()).toMatchObject({ type: 'error', error: { code: 'bad_frame' } });
  });

  it('keeps the connection open after bad JSON and names the bad field', async () => {
    const h = await start();
    const p = await peer(h);
    p.send('{"type": "subscribe",');
    const e1 = await p.next();
    expect(e1).toMatchObject({ type: 'error', error: { code: 'bad_frame' } });
    if (e1.type === 'error') expect(e1.error.message).toMatch(/not valid JSON/);

    p.send({ type: 'subscribe', state: { everyMs: 10 } });
    expect(await p.next()).toMatchObject({
      type: 'error',
      error: { code: 'bad_frame', field: 'state.everyMs' },
    });

    p.send({ type: 'subscribe', state: { evryMs: 100 } });
    expect(await p.next()).toMatchObject({ error: { field: 'state.evryMs' } });

    p.send({ type: 'subscribe', events: { kinds: ['leader', 'gossip'] } });
    expect(await p.next()).toMatchObject({ error: { field: 'events.kinds[1]' } });

    p.send({ type: 'launch' });
    expect(await p.next()).toMatchObject({ error: { code: 'bad_frame', field: 'type' } });

    p.ws.send(Buffer.from([1, 2, 3]), { binary: true });
    expect(await p.next()).toMatchObject({ error: { code: 'bad_frame' } });

    // Still usable.
    p.send({ type: 'command', id: 7, command: 'put', args: { key: 'k', value: 'v' } });
    expect(await p.next()).toEqual({
      type: 'result',
      id: 7,
      ok: true,
      value: { op: 'put', revision: 1, term: 3 },
    });
    expect(p.closed).toBeUndefined();
  });

  it('answers an unknown command and bad arguments as failed results for that id', async () => {
    const h = await start();
    const p = await peer(h);
    p.send({ type: 'command', id: 1, command: 'reboot', args: {} });
    expect(await p.next()).toMatchObject({
      type: 'result',
      id: 1,
      ok: false,
      error: { code: 'unknown_command', field: 'command' },
    });
    p.send({ type: 'command', id: 2, command: 'put', args: { key: 'k' } });
    const r = await p.next();
    expect(r).toMatchObject({
      type: 'result',
      id: 2,
      ok: false,
      error: { code: 'bad_args', field: 'args.value' },
    });
    p.send({ type: 'command', id: 3, command: 'fault', args: { kind: 'delay', peers: [2] } });
    expect(await p.next()).toMatchObject({ id: 3, ok: false, error: { code: 'bad_args', field: 'args.ms' } });
    // An id that is not a number cannot be answered by id: a frame error instead.
    p.send({ type: 'command', id: 'x', command: 'status' });
    expect(await p.next()).toMatchObject({ type: 'error', error: { code: 'bad_frame', field: 'id' } });
    expect(h.node.calls).toEqual([]);
  });

  it('runs commands: values, CommandError with leader, internal errors, faults switch', async () => {
    const h = await start();
    const p = await peer(h);
    p.send({ type: 'command', id: 1, command: 'put', args: { key: 'a', value: '1' } });
    p.send({ type: 'command', id: 2, command: 'get', args: { key: 'a' } });
    p.send({ type: 'command', id: 3, command: 'campaign' });
    p.send({ type: 'command', id: 4, command: 'snapshot', args: {} });
    p.send({ type: 'command', id: 5, command: 'forget-leader' });
    const got = new Map<number, NodeFrame>();
    for (let i = 0; i < 5; i++) {
      const f = await p.next();
      if (f.type === 'result') got.set(f.id, f);
    }
    expect(got.get(1)).toEqual({
      type: 'result',
      id: 1,
      ok: true,
      value: { op: 'put', revision: 1, term: 3 },
    });
    expect(got.get(2)).toEqual({
      type: 'result',
      id: 2,
      ok: true,
      value: { value: '1', serializable: false },
    });
    expect(got.get(3)).toEqual({
      type: 'result',
      id: 3,
      ok: false,
      error: { code: 'not_leader', message: 'node 1 is not the leader', leader: 2 },
    });
    expect(got.get(4)).toMatchObject({ ok: false, error: { code: 'internal', message: 'disk on fire' } });
    // undefined from execute is sent as null so the result always carries a value.
    expect(got.get(5)).toEqual({ type: 'result', id: 5, ok: true, value: null });
    expect(h.logger.lines.some((l) => l.level === 'error' && l.message.includes('disk on fire'))).toBe(true);

    h.node.allowFaults = false;
    p.send({ type: 'command', id: 6, command: 'fault', args: { kind: 'heal' } });
    expect(await p.next()).toMatchObject({ id: 6, ok: false, error: { code: 'faults_disabled' } });
    expect(h.node.calls.map((c) => c[0])).toEqual(['put', 'get', 'campaign', 'snapshot', 'forget-leader']);
  });

  it('takes a batch of messages in one frame, each handled as if it came alone', async () => {
    const h = await start();
    const p = await peer(h);
    p.send([
      { type: 'command', id: 1, command: 'put', args: { key: 'a', value: '1' } },
      { type: 'command', id: 2, command: 'reboot' },
      { type: 'command', id: 3, command: 'put', args: { key: 'b' } },
      { type: 'command', id: 4, command: 'get', args: { key: 'a' } },
    ]);
    const got = new Map<number, NodeFrame>();
    for (let i = 0; i < 4; i++) {
      const f = await p.next();
      if (f.type === 'result') got.set(f.id, f);
    }
    expect(got.get(1)).toEqual({
      type: 'result',
      id: 1,
      ok: true,
      value: { op: 'put', revision: 1, term: 3 },
    });
    expect(got.get(2)).toMatchObject({ ok: false, error: { code: 'unknown_command', field: 'command' } });
    expect(got.get(3)).toMatchObject({ ok: false, error: { code: 'bad_args', field: 'args.value' } });
    expect(got.get(4)).toMatchObject({ ok: true, value: { value: '1' } });
    expect(h.node.calls.map((c) => c[0])).toEqual(['put', 'get']);
    // This peer did not say it reads batches: every answer came in a frame of its own.
    expect(p.batchSizes.every((n) => n === 1)).toBe(true);
  });

  it('refuses an empty batch and one over the limit, and keeps the connection', async () => {
    const h = await start();
    const p = await peer(h);
    p.send([]);
    expect(await p.next()).toMatchObject({
      type: 'error',
      error: { code: 'bad_frame', message: /at least one/ },
    });
    p.send(Array.from({ length: MAX_BATCH_FRAMES + 1 }, () => ({ type: 'unsubscribe' })));
    expect(await p.next()).toMatchObject({ type: 'error', error: { code: 'bad_frame', message: /at most/ } });
    p.send({ type: 'command', id: 7, command: 'status' });
    expect(await p.next()).toMatchObject({ type: 'result', id: 7, ok: true });
    expect(h.node.calls.map((c) => c[0])).toEqual(['status']);
  });

  it("sends a batching client a turn's answers in one frame", async () => {
    const h = await start();
    const p = await peer(h, false);
    expect(await p.hello(undefined, true)).toMatchObject({ type: 'hello', batch: true });
    p.send(
      Array.from({ length: 5 }, (_, i) => ({
        type: 'command',
        id: i + 1,
        command: 'put',
        args: { key: `k${i}`, value: 'v' },
      })),
    );
    const results = [];
    for (let i = 0; i < 5; i++) results.push(await p.next());
    expect(results.map((r) => (r.type === 'result' ? r.id : 0)).sort()).toEqual([1, 2, 3, 4, 5]);
    expect(results.every((r) => r.type === 'result' && r.ok)).toBe(true);
    // The hello went out alone; the five answers, produced in one turn, share one frame.
    expect(p.batchSizes).toEqual([1, 5]);
  });

  describe('binary puts', () => {
    /** Every answer in the binary frames received so far, by id. */
    const answers = (p: RawPeer) => {
      const out = new Map<number, PutAnswer>();
      for (const f of p.binaryFrames) expect(readPutResults(f, (id, a) => out.set(id, a))).toBeUndefined();
      return out;
    };
    /** A binary frame of puts written byte by byte: [kind, then id, key length, key, value length, value]*. */
    const raw = (...bytes: (number | string)[]) =>
      Buffer.concat(bytes.map((b) => (typeof b === 'string' ? Buffer.from(b) : Buffer.from([b]))));

    it('runs the puts of a binary frame and answers them in one', async () => {
      const h = await start();
      const p = await peer(h, false);
      expect(await p.hello(undefined, true, true)).toMatchObject({ type: 'hello', binary: true });
      const w = new PutFrameWriter();
      w.add(5, 'k1', 'v1');
      w.add(2 ** 40, 'ключ', 'значение ✓');
      p.ws.send(w.take()!, { binary: true });
      await p.waitFor(() => answers(p).size === 2);
      expect(answers(p)).toEqual(
        new Map([
          [5, { revision: 1, term: 3 }],
          [2 ** 40, { revision: 2, term: 3 }],
        ]),
      );
      expect(p.binaryFrames).toHaveLength(1);
      expect(h.node.binaryPuts).toEqual([
        { key: 'k1', value: 'v1' },
        { key: 'ключ', value: 'значение ✓' },
      ]);
      expect(h.node.calls).toEqual([]);
    });

    it('fails a bad put by its id and runs the rest of the frame', async () => {
      const h = await start();
      const p = await peer(h, false);
      await p.hello(undefined, true, true);
      p.ws.send(
        raw(
          1,
          1,
          0,
          1,
          'v',
          2,
          1,
          'k',
          2,
          0xc3,
          0x28,
          3,
          2,
          'ok',
          1,
          'v',
          4,
          4,
          'fail',
          0,
          5,
          1,
          'k',
          9,
          'short',
        ),
        { binary: true },
      );
      const failed = new Map<number, unknown>();
      await p.waitFor(() => {
        for (const f of p.frames) if (f.type === 'result' && !f.ok) failed.set(f.id, f.error);
        return failed.size === 4 && answers(p).size === 1;
      });
      expect(failed.get(1)).toMatchObject({
        code: 'bad_args',
        field: 'args.key',
        message: 'args.key: must not be empty',
      });
      expect(failed.get(2)).toMatchObject({
        code: 'bad_args',
        field: 'args.value',
        message: 'args.value: not valid UTF-8',
      });
      expect(failed.get(4)).toMatchObject({ code: 'no_leader' });
      expect(failed.get(5)).toMatchObject({ code: 'bad_args', field: 'args.value' });
      expect(answers(p)).toEqual(new Map([[3, { revision: 1, term: 3 }]]));
      expect(h.node.binaryPuts).toEqual([{ key: 'ok', value: 'v' }]);
      expect(p.closed).toBeUndefined();
    });

    it('refuses binary frames of another kind, and from clients that did not say binary', async () => {
      const h = await start();
      const plain = await peer(h);
      plain.ws.send(raw(1, 1, 1, 'k', 1, 'v'), { binary: true });
      const e1 = await plain.next();
      expect(e1).toMatchObject({ type: 'error', error: { code: 'bad_frame' } });
      if (e1.type === 'error') expect(e1.error.message).toMatch(/"binary": true/);
      const early = await peer(h, false);
      early.ws.send(raw(1, 1, 1, 'k', 1, 'v'), { binary: true });
      const e2 = await early.next();
      if (e2.type === 'error') expect(e2.error.message).toMatch(/send hello before/);
      const binary = await peer(h, false);
      await binary.hello(undefined, true, true);
      binary.ws.send(raw(9, 1, 1, 'k', 1, 'v'), { binary: true });
      const e3 = await binary.next();
      expect(e3).toMatchObject({ type: 'error', error: { code: 'bad_frame' } });
      if (e3.type === 'error') expect(e3.error.message).toMatch(/expected kind 1 \(puts\), got kind 9/);
      expect(h.node.binaryPuts).toEqual([]);
    });
  });

  it('limits commands in flight per connection', async () => {
    const h = await start({ maxInFlight: 2 });
    const p = await peer(h);
    for (let id = 1; id <= 3; id++) p.send({ type: 'command', id, command: 'read-index' });
    expect(await p.next()).toMatchObject({ id: 3, ok: false, error: { code: 'unavailable' } });
    for (const resolve of h.node.hanging) resolve({ index: 5 });
    const rest = [await p.next(), await p.next()];
    expect(rest).toEqual(
      expect.arrayContaining([
        { type: 'result', id: 1, ok: true, value: { index: 5 } },
        { type: 'result', id: 2, ok: true, value: { index: 5 } },
      ]),
    );
    // Answers free their places, failed ones too: two that fail, then two that wait fit again.
    p.send({ type: 'command', id: 4, command: 'snapshot' });
    p.send({ type: 'command', id: 5, command: 'campaign' });
    expect([await p.next(), await p.next()]).toMatchObject([
      { id: 4, ok: false, error: { code: 'internal' } },
      { id: 5, ok: false, error: { code: 'not_leader' } },
    ]);
    for (let id = 6; id <= 8; id++) p.send({ type: 'command', id, command: 'read-index' });
    expect(await p.next()).toMatchObject({ id: 8, ok: false, error: { code: 'unavailable' } });
    for (const resolve of h.node.hanging.splice(0)) resolve({ index: 6 });
    expect([await p.next(), await p.next()]).toEqual(
      expect.arrayContaining([
        { type: 'result', id: 6, ok: true, value: { index: 6 } },
        { type: 'result', id: 7, ok: true, value: { index: 6 } },
      ]),
    );
  });

  describe('token', () => {
    it('accepts the right token', async () => {
      const h = await start({ token: 's3cret' });
      const p = await peer(h, false);
      expect((await p.hello('s3cret')).type).toBe('hello');
    });

    it('refuses a wrong or missing token and closes with 1008', async () => {
      const h = await start({ token: 's3cret' });
      for (const token of ['s3cres', 'longer-than-the-real-one', undefined]) {
        const p = await peer(h, false);
        expect(await p.hello(token)).toEqual({
          type: 'error',
          error: { code: 'unauthorized', field: 'token', message: 'bad token' },
        });
        expect((await p.waitClosed()).code).toBe(1008);
      }
      expect(h.node.calls).toEqual([]);
    });

    it('reports unauthorized for frames before hello', async () => {
      const h = await start({ token: 's3cret' });
      const p = await peer(h, false);
      p.send({ type: 'subscribe', state: { everyMs: 100 } });
      expect(await p.next()).toMatchObject({ type: 'error', error: { code: 'unauthorized' } });
      expect(h.node.stateCalls).toBe(0);
    });
  });

  it('refuses another protocol version but lets the client retry', async () => {
    const h = await start();
    const p = await peer(h, false);
    p.send({ type: 'hello', version: 2 });
    expect(await p.next()).toMatchObject({ type: 'error', error: { code: 'bad_version', field: 'version' } });
    expect((await p.hello()).type).toBe('hello');
  });

  it('pushes state at once and then every everyMs, until unsubscribe', async () => {
    const h = await start();
    const p = await peer(h);
    const t0 = Date.now();
    p.send({ type: 'subscribe', state: { everyMs: 50 } });
    const states = () => p.frames.filter((f) => f.type === 'state');
    await p.waitFor(() => states().length >= 1);
    await p.waitFor(() => states().length >= 6);
    const elapsed = Date.now() - t0;
    // 1 immediate + 5 ticks take at least 5 periods; timers only fire late, never early.
    expect(elapsed).toBeGreaterThanOrEqual(5 * 50 - 5);
    expect(elapsed).toBeLessThan(2000);
    const first = states()[0]!;
    if (first.type === 'state') expect(first.state).toMatchObject({ id: 1, role: 'follower', leader: 2 });

    p.send({ type: 'unsubscribe' });
    await new Promise((r) => setTimeout(r, 30));
    const n = states().length;
    await new Promise((r) => setTimeout(r, 200));
    expect(states().length).toBe(n);
  });

  it('stops state timers when the subscriber goes away', async () => {
    const h = await start();
    const p = await peer(h);
    p.send({ type: 'subscribe', state: { everyMs: 50 } });
    await p.waitFor(() => p.frames.some((f) => f.type === 'state'));
    p.close();
    await new Promise((r) => setTimeout(r, 60));
    const calls = h.node.stateCalls;
    await new Promise((r) => setTimeout(r, 200));
    expect(h.node.stateCalls).toBe(calls);
    expect(h.control.connections).toBe(0);
  });

  it('filters events by kind and samples them deterministically', async () => {
    const h = await start();
    const leaders = await peer(h);
    const sampled = await peer(h);
    const none = await peer(h);
    leaders.send({ type: 'subscribe', events: { kinds: ['leader'] } });
    sampled.send({ type: 'subscribe', events: { sample: 0.25 } });
    none.send({ type: 'subscribe', state: { everyMs: 10_000 } });
    await none.waitFor(() => none.frames.some((f) => f.type === 'state'));
    await new Promise((r) => setTimeout(r, 20)); // let the other subscribes land

    const published = [];
    for (let i = 0; i < 40; i++) {
      const e = i % 2 === 0 ? leaderEvent() : logEvent(`line ${i}`);
      published.push(e);
      h.control.publish(e);
    }
    await leaders.waitFor(() => leaders.frames.filter((f) => f.type === 'event').length === 20);
    await sampled.waitFor(() => sampled.frames.filter((f) => f.type === 'event').length === 10);
    const leaderSeqs = leaders.frames.flatMap((f) => (f.type === 'event' ? [f.event.seq] : []));
    expect(leaderSeqs).toEqual(published.filter((e) => e.kind === 'leader').map((e) => e.seq));
    const sampledSeqs = sampled.frames.flatMap((f) => (f.type === 'event' ? [f.event.seq] : []));
    // Every fourth event, starting with the first.
    expect(sampledSeqs).toEqual(published.filter((_, i) => i % 4 === 0).map((e) => e.seq));
    await new Promise((r) => setTimeout(r, 50));
    expect(none.frames.some((f) => f.type === 'event')).toBe(false);
    // Sampled-out events are not losses.
    expect(sampled.frames.some((f) => f.type === 'lost')).toBe(false);
  });

  it('drops events for a subscriber that does not read, and reports how many were lost', async () => {
    const h = await start({ maxQueue: 16, maxBufferedBytes: 64 * 1024 });
    const slow = await peer(h);
    const fast = await peer(h);
    slow.send({ type: 'subscribe', events: {} });
    fast.send({ type: 'subscribe', events: {} });
    await new Promise((r) => setTimeout(r, 50));
    slow.ws.pause();

    const big = 'x'.repeat(64 * 1024);
    const total = 600; // ~38 MB: far more than loopback socket buffers hold
    for (let i = 0; i < total; i++) {
      h.control.publish(logEvent(`${i} ${big}`));
      // Yield now and then so writes progress as they would in a running node.
      if (i % 50 === 49) await new Promise((r) => setImmediate(r));
    }
    // A stuck subscriber holds nobody back: commands on another connection still answer.
    fast.send({ type: 'command', id: 1, command: 'put', args: { key: 'k', value: 'v' } });
    await fast.waitFor(() => fast.frames.some((f) => f.type === 'result'), 10_000);

    slow.ws.resume();
    for (const p of [slow, fast]) {
      const count = () => {
        let events = 0;
        let lost = 0;
        for (const f of p.frames) {
          if (f.type === 'event') events++;
          if (f.type === 'lost') lost += f.count;
        }
        return { events, lost };
      };
      // Every published event is either delivered or counted as lost.
      await p.waitFor(() => count().events + count().lost === total, 10_000);
      if (p === slow) {
        expect(count().lost).toBeGreaterThan(0);
        expect(count().events).toBeGreaterThan(0);
      }
      // Order is kept, and each `lost` marker sits exactly at the gap it reports.
      let expectSeq: number | undefined;
      for (const f of p.frames) {
        if (f.type === 'event') {
          if (expectSeq !== undefined) expect(f.event.seq).toBe(expectSeq);
          expectSeq = f.event.seq + 1;
        } else if (f.type === 'lost') {
          expect(expectSeq).toBeDefined();
          expectSeq! += f.count;
        }
      }
    }
  }, 30_000);

  it('refuses frames over 1 MiB by closing with 1009', async () => {
    const h = await start();
    const p = await peer(h);
    p.send({
      type: 'command',
      id: 1,
      command: 'put',
      args: { key: 'k', value: 'v'.repeat(1024 * 1024 + 10) },
    });
    expect((await p.waitClosed()).code).toBe(1009);
  });

  it('close() ends every connection with 1001 and refuses new upgrades', async () => {
    const h = await start();
    const p = await peer(h);
    p.send({ type: 'subscribe', state: { everyMs: 50 } });
    await h.control.close();
    expect((await p.waitClosed()).code).toBe(1001);
    // A raw upgrade after close gets a 503.
    const sock = createConnection(h.port, '127.0.0.1');
    sock.write(
      'GET /control HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
        'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
    );
    const reply = await new Promise<string>((resolve) => sock.once('data', (d) => resolve(d.toString())));
    sock.destroy();
    expect(reply).toMatch(/^HTTP\/1.1 503/);
  });
});

describe('event helpers', () => {
  it('entryView shows the payload in describe form', () => {
    expect(entryView(entry({ term: 2, index: 5, data: text('put a') }))).toEqual({
      term: 2,
      index: 5,
      type: 'EntryNormal',
      data: '"put a"',
    });
    expect(entryView(entry({ term: 1, index: 1 })).data).toBe('""');
  });

  it('messageEvent and readyEvent carry the describe text', () => {
    const m = message({ type: 'MsgApp', from: 1, to: 2, term: 3, logTerm: 3, index: 4, commit: 4 });
    const ev = messageEvent({ seq: 1, at: 0, node: 1 }, m, 'out');
    expect(ev).toMatchObject({ kind: 'message', msgType: 'MsgApp', entries: 0, direction: 'out' });
    expect(ev.describe).toBe('1->2 MsgApp Term:3 Log:3/4 Commit:4');
    const rd = readyEvent(
      { seq: 2, at: 0, node: 1 },
      {
        readStates: [],
        entries: [entry({ term: 3, index: 5, data: text('x') })],
        committedEntries: [],
        messages: [m],
        mustSync: true,
        hardState: { term: 3, vote: 1, commit: 4 },
      },
    );
    expect(rd).toMatchObject({
      kind: 'ready',
      messages: 1,
      mustSync: true,
      entries: [{ index: 5, data: '"x"' }],
    });
    expect(rd.describe).toContain('Ready MustSync=true:');
  });
});
