import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { connect } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  createHttpHandler,
  type HealthReport,
  type HttpApi,
  type HttpHandlerOptions,
} from '../../src/server/http.js';
import { encodeKvCommand, type KvResult, KvStore } from '../../src/server/kv.js';
import { createRaftMetrics, Metrics, type RaftMetrics } from '../../src/server/metrics.js';

/** A stand-in node: a real KvStore fed directly, as if every proposal committed at once. */
class FakeApi implements HttpApi {
  readonly clusterId = '14841639068965178418';
  readonly memberId = 3;
  readonly raft: RaftMetrics = createRaftMetrics();
  readonly metrics = this.raft.registry;
  readonly kv = new KvStore();
  term = 4;
  index = 10;
  seq = 0;
  healthReport: HealthReport = {
    health: 'ok',
    id: 3,
    role: 'leader',
    term: 4,
    leader: 3,
    commit: 10,
    applied: 10,
  };
  calls: unknown[][] = [];
  failWith: unknown;

  health(): HealthReport {
    return this.healthReport;
  }

  private apply(cmd: { op: 'put'; key: string; value: string } | { op: 'delete'; key: string }) {
    if (this.failWith !== undefined) throw this.failWith;
    let result: KvResult | undefined;
    this.kv.apply(
      ++this.index,
      encodeKvCommand({ ...cmd, clientId: 'http', seq: ++this.seq }),
      (_c, _s, r) => {
        result = r;
      },
    );
    return result!;
  }

  async put(key: string, value: string) {
    this.calls.push(['put', key, value]);
    const r = this.apply({ op: 'put', key, value });
    if (r.op !== 'put') throw new Error('unexpected');
    return { revision: r.revision, term: this.term, ...(r.prev ? { prev: r.prev } : {}) };
  }

  async range(key: string, rangeEnd: string | undefined, opts: { limit: number; serializable: boolean }) {
    this.calls.push(['range', key, rangeEnd, opts]);
    if (this.failWith !== undefined) throw this.failWith;
    const all = this.kv.range(key, rangeEnd);
    return {
      revision: this.kv.revision,
      term: this.term,
      kvs: opts.limit > 0 ? all.slice(0, opts.limit) : all,
      count: all.length,
    };
  }

  async deleteRange(key: string) {
    this.calls.push(['deleteRange', key]);
    const r = this.apply({ op: 'delete', key });
    if (r.op !== 'delete') throw new Error('unexpected');
    return { revision: r.revision, term: this.term, deleted: r.deleted, ...(r.prev ? { prev: r.prev } : {}) };
  }
}

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');

let server: Server | undefined;
let api: FakeApi;
let base: string;

async function start(opts?: HttpHandlerOptions): Promise<void> {
  server = createServer(createHttpHandler(api, opts));
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

beforeEach(async () => {
  api = new FakeApi();
  await start();
});

afterEach(async () => {
  const s = server;
  server = undefined;
  if (!s) return;
  s.closeAllConnections();
  await new Promise<void>((resolve) => s.close(() => resolve()));
});

async function post(path: string, body: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(base + path, {
    method: 'POST',
    body: typeof body === 'string' ? body : JSON.stringify(body),
    signal: AbortSignal.timeout(5000),
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

/** Sends raw bytes and collects whatever comes back until the server closes or `until` matches. */
function raw(request: Buffer | string, until = /\r\n\r\n[\s\S]*\}/): Promise<string> {
  const { port } = server!.address() as AddressInfo;
  return new Promise((resolve, reject) => {
    const sock = connect(port, '127.0.0.1');
    let got = '';
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`timed out; got ${JSON.stringify(got)}`));
    }, 5000);
    const finish = () => {
      clearTimeout(timer);
      sock.destroy();
      resolve(got);
    };
    sock.on('data', (d) => {
      got += d.toString('latin1');
      if (until.test(got)) finish();
    });
    sock.on('close', finish);
    sock.on('error', () => {
      // The server may close while we are still writing; what it answered is in `got`.
    });
    sock.write(request);
  });
}

describe('/health', () => {
  it('is 200 with the node status while there is a leader', async () => {
    const res = await fetch(`${base}/health`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json');
    expect(await res.json()).toEqual(api.healthReport);
  });

  it('is 503 without a leader', async () => {
    api.healthReport = { ...api.healthReport, health: 'no_leader', role: 'follower', leader: 0 };
    const res = await fetch(`${base}/health`);
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({ health: 'no_leader', leader: 0 });
  });

  it('answers HEAD without a body, and 500 if the node throws', async () => {
    const head = await fetch(`${base}/health`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(await head.text()).toBe('');
    api.health = () => {
      throw new Error('boom');
    };
    const res = await fetch(`${base}/health`);
    expect(res.status).toBe(500);
    expect(await res.json()).toMatchObject({ code: 13 });
  });
});

/** A minimal parser of the Prometheus text format, strict enough to catch format mistakes. */
function parseExposition(text: string) {
  const types = new Map<string, string>();
  const samples: { name: string; labels: Record<string, string>; value: number }[] = [];
  expect(text.endsWith('\n')).toBe(true);
  for (const line of text.slice(0, -1).split('\n')) {
    const type = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$/.exec(line);
    if (type) {
      expect(types.has(type[1]!)).toBe(false);
      types.set(type[1]!, type[2]!);
      continue;
    }
    if (/^# HELP [a-zA-Z_:][a-zA-Z0-9_:]* .*$/.test(line)) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    expect(m, `bad sample line ${JSON.stringify(line)}`).not.toBeNull();
    const labels: Record<string, string> = {};
    if (m![2]) {
      const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)/y;
      let at = 0;
      while (at < m![2].length) {
        re.lastIndex = at;
        const l = re.exec(m![2]);
        expect(l, `bad labels in ${line}`).not.toBeNull();
        labels[l![1]!] = l![2]!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
        at = re.lastIndex;
      }
    }
    const v = m![3]!;
    const value =
      v === '+Inf' ? Number.POSITIVE_INFINITY : v === '-Inf' ? Number.NEGATIVE_INFINITY : Number(v);
    expect(Number.isNaN(value) && v !== 'NaN').toBe(false);
    samples.push({ name: m![1]!, labels, value });
  }
  return { types, samples };
}

describe('/metrics', () => {
  it('serves the node metrics in the Prometheus text format', async () => {
    api.raft.term.set(4);
    api.raft.commitIndex.set(10);
    api.raft.appliedIndex.set(9);
    api.raft.proposals.inc({ result: 'ok' }, 3);
    api.raft.proposals.inc({ result: 'dropped' });
    api.raft.messagesSent.set(12, { type: 'MsgApp' });
    api.raft.messagesReceived.inc({ type: 'MsgAppResp' });
    api.raft.leaderChanges.inc();
    api.raft.snapshots.set(2, { kind: 'created' });
    api.raft.snapshotSeconds.observe(0.3);
    for (const s of [0.0005, 0.003, 0.003, 0.02, 100]) api.raft.walFsyncSeconds.observe(s);
    let collected = 0;
    api.metrics.onCollect(() => {
      collected++;
    });

    const res = await fetch(`${base}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    const { types, samples } = parseExposition(await res.text());
    expect(collected).toBe(1);
    expect(Object.fromEntries(types)).toEqual({
      raft_term: 'gauge',
      raft_commit_index: 'gauge',
      raft_applied_index: 'gauge',
      raft_proposals_total: 'counter',
      wal_fsync_seconds: 'histogram',
      raft_messages_sent_total: 'counter',
      raft_messages_received_total: 'counter',
      raft_leader_changes_total: 'counter',
      raft_snapshots_total: 'counter',
      snapshot_save_seconds: 'histogram',
      kv_write_seconds: 'histogram',
    });
    const value = (name: string, labels: Record<string, string> = {}) =>
      samples.find((s) => s.name === name && JSON.stringify(s.labels) === JSON.stringify(labels))?.value;
    expect(value('raft_term')).toBe(4);
    expect(value('raft_applied_index')).toBe(9);
    expect(value('raft_proposals_total', { result: 'ok' })).toBe(3);
    expect(value('raft_proposals_total', { result: 'dropped' })).toBe(1);
    expect(value('raft_messages_sent_total', { type: 'MsgApp' })).toBe(12);
    expect(value('raft_leader_changes_total')).toBe(1);
    expect(value('raft_snapshots_total', { kind: 'created' })).toBe(2);
    expect(value('snapshot_save_seconds_count')).toBe(1);

    const buckets = samples.filter((s) => s.name === 'wal_fsync_seconds_bucket');
    const les = buckets.map((b) => (b.labels.le === '+Inf' ? Number.POSITIVE_INFINITY : Number(b.labels.le)));
    expect(les.at(-1)).toBe(Number.POSITIVE_INFINITY);
    for (let i = 1; i < buckets.length; i++) {
      expect(les[i]!).toBeGreaterThan(les[i - 1]!);
      expect(buckets[i]!.value).toBeGreaterThanOrEqual(buckets[i - 1]!.value);
    }
    expect(buckets[0]).toMatchObject({ labels: { le: '0.001' }, value: 1 });
    expect(buckets.find((b) => b.labels.le === '0.004')?.value).toBe(3);
    expect(buckets.at(-2)!.value).toBe(4); // 100 s is above every finite bucket
    expect(buckets.at(-1)!.value).toBe(5);
    expect(value('wal_fsync_seconds_count')).toBe(5);
    expect(value('wal_fsync_seconds_sum')).toBeCloseTo(100.0265);
  });

  it('times writes finely enough to tell a 20 ms write from a 30 ms one', () => {
    const raft = createRaftMetrics();
    for (const s of [0.0004, 0.02, 0.02, 0.03, 0.03, 0.03, 12]) raft.writeSeconds.observe(s);
    const { samples } = parseExposition(raft.registry.render());
    const upTo = (le: string) =>
      samples.find((s) => s.name === 'kv_write_seconds_bucket' && s.labels.le === le)?.value;
    expect(upTo('0.000506')).toBe(1);
    expect(upTo('0.013')).toBe(1);
    expect(upTo('0.0195')).toBe(1);
    expect(upTo('0.0292')).toBe(3);
    expect(upTo('0.0438')).toBe(6);
    expect(upTo('8.52')).toBe(6);
    expect(upTo('+Inf')).toBe(7);
    // The fast path for unlabelled series does not let a labelled histogram go without labels.
    const labelled = new Metrics().histogram('by_kind_seconds', 'x', [1], ['kind']);
    expect(() => labelled.observe(0.5)).toThrow(/labels must be exactly/);
    labelled.observe(0.5, { kind: 'a' });
    expect(labelled.get({ kind: 'a' })).toEqual({ count: 1, sum: 0.5 });
  });

  it('escapes help and label values, and validates names and labels', () => {
    const m = new Metrics();
    const c = m.counter('odd_total', 'a\\b\nc', ['path']);
    c.inc({ path: 'a"b\\c\nd' });
    const text = m.render();
    expect(text).toContain('# HELP odd_total a\\\\b\\nc\n');
    expect(text).toContain('odd_total{path="a\\"b\\\\c\\nd"} 1\n');
    expect(parseExposition(text).samples[0]!.labels.path).toBe('a"b\\c\nd');
    expect(() => c.inc({})).toThrow(/labels must be exactly/);
    expect(() => c.inc({ path: 'x', extra: 'y' })).toThrow(/labels must be exactly/);
    expect(() => c.inc({ path: 'x' }, -1)).toThrow(/only goes up/);
    expect(() => m.counter('odd_total', 'again')).toThrow(/twice/);
    expect(() => m.gauge('bad-name', 'x')).toThrow(/invalid metric name/);
    expect(() => m.histogram('h', 'x', [1, 1])).toThrow(/increasing/);
    expect(() => m.histogram('h2', 'x', [1], ['le'])).toThrow(/reserved/);
    // A labelled metric with no series yet renders only its HELP and TYPE.
    m.gauge('empty', 'nothing yet', ['x']);
    expect(m.render()).toContain('# TYPE empty gauge\n');
  });
});

describe('/v3/kv gateway', () => {
  const header = (revision: number) => ({
    cluster_id: '14841639068965178418',
    member_id: '3',
    revision: String(revision),
    raft_term: '4',
  });

  it('put decodes base64 to text and answers with an etcd header', async () => {
    const r = await post('/v3/kv/put', { key: b64('fö'), value: b64('bär') });
    expect(r).toEqual({ status: 200, json: { header: header(11) } });
    expect(api.calls).toEqual([['put', 'fö', 'bär']]);
    const again = await post('/v3/kv/put', { key: b64('fö'), value: b64('baz'), prev_kv: true });
    expect(again.json).toEqual({
      header: header(12),
      prev_kv: { key: b64('fö'), create_revision: '11', mod_revision: '11', version: '1', value: b64('bär') },
    });
    // No value means the empty value, as in etcd.
    await post('/v3/kv/put', { key: b64('empty') });
    expect(api.kv.get('empty')?.value).toBe('');
  });

  it('range returns kvs, count and more like etcd (defaults omitted)', async () => {
    for (const k of ['a', 'ab', 'b', 'c'])
      await post('/v3/kv/put', { key: b64(k), value: b64(k.toUpperCase()) });
    const one = await post('/v3/kv/range', { key: b64('ab') });
    expect(one).toEqual({
      status: 200,
      json: {
        header: header(14),
        kvs: [{ key: b64('ab'), create_revision: '12', mod_revision: '12', version: '1', value: b64('AB') }],
        count: '1',
      },
    });
    const prefix = await post('/v3/kv/range', { key: b64('a'), range_end: b64('b') });
    expect((prefix.json.kvs as { key: string }[]).map((k) => k.key)).toEqual([b64('a'), b64('ab')]);
    const limited = await post('/v3/kv/range', { key: b64('a'), range_end: 'AA==', limit: '2' });
    expect(limited.json).toMatchObject({ count: '4', more: true });
    expect(limited.json.kvs).toHaveLength(2);
    const keysOnly = await post('/v3/kv/range', { key: b64('c'), keys_only: true, serializable: true });
    expect(keysOnly.json.kvs).toEqual([
      { key: b64('c'), create_revision: '14', mod_revision: '14', version: '1' },
    ]);
    expect(api.calls.at(-1)).toEqual(['range', 'c', undefined, { limit: 0, serializable: true }]);
    const countOnly = await post('/v3/kv/range', { key: b64('a'), range_end: 'AA==', count_only: true });
    expect(countOnly.json).toEqual({ header: header(14), count: '4' });
    const none = await post('/v3/kv/range', { key: b64('zzz') });
    expect(none).toEqual({ status: 200, json: { header: header(14) } });
  });

  it('deleterange deletes one key and reports deleted and prev_kvs', async () => {
    await post('/v3/kv/put', { key: b64('k'), value: b64('v') });
    const r = await post('/v3/kv/deleterange', { key: b64('k'), prev_kv: true });
    expect(r).toEqual({
      status: 200,
      json: {
        header: header(12),
        deleted: '1',
        prev_kvs: [
          { key: b64('k'), create_revision: '11', mod_revision: '11', version: '1', value: b64('v') },
        ],
      },
    });
    const missing = await post('/v3/kv/deleterange', { key: b64('k') });
    expect(missing).toEqual({ status: 200, json: { header: header(13) } });
    const ranged = await post('/v3/kv/deleterange', { key: b64('a'), range_end: b64('z') });
    expect(ranged.status).toBe(501);
    expect(ranged.json).toMatchObject({ code: 12 });
  });

  it('refuses bad input with 400 and an etcd-like error', async () => {
    const cases: [unknown, RegExp][] = [
      ['{"key": ', /invalid JSON/],
      ['[1,2]', /JSON object/],
      [{}, /key is not provided/],
      [{ key: '' }, /key is not provided/],
      [{ key: 'not base64!' }, /key: invalid base64/],
      [{ key: 'QQ=' }, /key: invalid base64/],
      [{ key: 'Q' }, /key: invalid base64/],
      [{ key: 5 }, /key: expected a base64 string/],
      [{ key: Buffer.from([0xff, 0xfe]).toString('base64') }, /key: not valid UTF-8/],
      [{ key: b64('k'), value: Buffer.from([0xc3]).toString('base64') }, /value: not valid UTF-8/],
      [{ key: b64('k'), prev_kv: 'yes' }, /prev_kv: expected true or false/],
    ];
    for (const [body, message] of cases) {
      const r = await post('/v3/kv/put', body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.json).toEqual({ error: expect.stringMatching(message), code: 3, message: r.json.error });
    }
    const badLimit = await post('/v3/kv/range', { key: b64('k'), limit: 'ten' });
    expect(badLimit.status).toBe(400);
    const negative = await post('/v3/kv/range', { key: b64('k'), limit: -1 });
    expect(negative.status).toBe(400);
    // Nothing reached the node.
    expect(api.calls).toEqual([]);
  });

  it('accepts URL-safe and unpadded base64', async () => {
    const key = '\u00ff\u00fe?>'; // encodes with + and / in standard base64
    const std = b64(key);
    expect(std).toMatch(/[+/]/);
    const url = Buffer.from(key, 'utf8').toString('base64url');
    await post('/v3/kv/put', { key: url, value: std.replace(/=+$/, '') });
    expect(api.kv.get(key)?.value).toBe(key);
  });

  it('maps node errors to gRPC codes', async () => {
    const cases: [unknown, number, number][] = [
      [Object.assign(new Error('no result within 5000 ms'), { code: 'timeout' }), 504, 4],
      [Object.assign(new Error('no leader at the moment'), { code: 'no_leader' }), 503, 14],
      [Object.assign(new Error('shutting down'), { code: 'unavailable' }), 503, 14],
      [new Error('disk on fire'), 500, 13],
    ];
    for (const [err, status, code] of cases) {
      api.failWith = err;
      const r = await post('/v3/kv/put', { key: b64('k'), value: b64('v') });
      expect(r.status).toBe(status);
      expect(r.json).toMatchObject({ code, message: expect.stringContaining((err as Error).message) });
      const rr = await post('/v3/kv/range', { key: b64('k') });
      expect(rr.status).toBe(status);
    }
  });
});

describe('routing and limits', () => {
  it('404 for an unknown path, 405 for a wrong method', async () => {
    const nf = await fetch(`${base}/v3/kv/txn`, { method: 'POST', body: '{}' });
    expect(nf.status).toBe(404);
    expect(await nf.json()).toMatchObject({ code: 5 });
    const get = await fetch(`${base}/v3/kv/put`);
    expect(get.status).toBe(405);
    expect(get.headers.get('allow')).toBe('POST');
    const postHealth = await fetch(`${base}/health`, { method: 'POST', body: '' });
    expect(postHealth.status).toBe(405);
    expect(postHealth.headers.get('allow')).toBe('GET, HEAD');
    // The query string does not change the route.
    expect((await fetch(`${base}/health?verbose=1`)).status).toBe(200);
  });

  it('413 for a declared body over 4 MiB, answered before the body is read', async () => {
    const reply = await raw(
      'POST /v3/kv/put HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n' +
        `Content-Length: ${4 * 1024 * 1024 + 1}\r\n\r\n{"key":`,
    );
    expect(reply).toMatch(/^HTTP\/1\.1 413 /);
    expect(reply).toMatch(/"code":8/);
    expect(api.calls).toEqual([]);
  });

  it('413 for a body over 4 MiB sent in full', async () => {
    const big = JSON.stringify({ key: b64('k'), value: 'A'.repeat(4 * 1024 * 1024) });
    const res = await fetch(`${base}/v3/kv/put`, {
      method: 'POST',
      body: big,
      signal: AbortSignal.timeout(10_000),
    });
    expect(res.status).toBe(413);
    expect(await res.json()).toMatchObject({ code: 8, message: expect.stringMatching(/4194304 bytes/) });
    // Just under the limit passes the body check; its ~3 MiB value is then over the value limit.
    const under = JSON.stringify({ key: b64('k'), value: 'A'.repeat(4 * 1024 * 1024 - 100) });
    const big3 = await fetch(`${base}/v3/kv/put`, { method: 'POST', body: under });
    expect(big3.status).toBe(400);
    expect(await big3.json()).toMatchObject({
      code: 3,
      message: expect.stringMatching(/values are at most/),
    });
    // A value of exactly 1 MiB is fine.
    const ok = JSON.stringify({ key: b64('k'), value: Buffer.alloc(1024 * 1024, 'v').toString('base64') });
    expect((await fetch(`${base}/v3/kv/put`, { method: 'POST', body: ok })).status).toBe(200);
  });

  it('413 for a chunked body that grows past the limit', async () => {
    const s = server!;
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
    await start({ maxBodyBytes: 100 });
    const chunk = (data: string) => `${Buffer.byteLength(data).toString(16)}\r\n${data}\r\n`;
    const reply = await raw(
      'POST /v3/kv/put HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n' +
        chunk(`{"key":"${b64('k')}","value":"`) +
        chunk('A'.repeat(200)) +
        chunk('"}') +
        '0\r\n\r\n',
    );
    expect(reply).toMatch(/^HTTP\/1\.1 413 /);
    expect(api.calls).toEqual([]);
  });

  it('400 for a body that is not UTF-8', async () => {
    const res = await fetch(`${base}/v3/kv/put`, {
      method: 'POST',
      body: Buffer.concat([Buffer.from('{"key":"'), Buffer.from([0xff]), Buffer.from('"}')]),
    });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ code: 3, message: expect.stringMatching(/UTF-8/) });
  });
});
