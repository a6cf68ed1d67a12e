// Cluster benchmark: real `raftctl node` processes on loopback with fsync on, driven
// through our own client, next to what this machine can do at best:
//   - limits: fdatasync rate of a 256-byte append in the data dir's file system, the time
//     for two of three such appends started at once to sync (a 3-node write's wait for a
//     shared disk), and WebSocket round trips between two processes (an echo process that
//     answers as a node answers binary puts), one at a time, 256 and 1,024 in flight, framed
//     as the client frames puts (a turn's requests on a connection in one binary frame);
//   - for a 3-node (and a 5-node) cluster: puts, linearizable gets and serializable gets of
//     256-byte values with 1, 16, 256 and 1,024 concurrent clients; each client waits for
//     its answer before its next op. Clients share a ClusterClient with a few connections to
//     every node, which sends writes to the leader and reads to the nodes in turn (or, with
//     --conns spread, a few connections spread over the nodes, client i keeping to connection
//     i). A new cluster is warmed up with 64 clients, then one client for 5 s (V8 optimizes
//     a lone client's path late); each cell first runs for --warmup-secs at its own
//     concurrency (its keys exist and the nodes' heaps have grown to them before the clock
//     starts). Per run: ops/s,
//     p50/p99/p99.9 latency, p99 through the leader and through followers, the leader's own
//     p50/p99 for the writes it served (its kv_write_seconds histogram: from a write reaching
//     it to its answer), how late the load generator's event loop ran (its share of every
//     latency), each node's longest event-loop stall and how busy its loop was (its
//     /metrics windows span the run: a leader's near 1 is the cluster's limit), snapshots
//     the nodes took (from /metrics), errors, CPU of each node.
//     With --keys N the clients spread their ops over N keys in all, each written once
//     before the first cell: a state of N values rather than 64 per client.
//   - with --profile: a fresh 3-node cluster whose processes run with --cpu-prof; the
//     leader's profile of a 256-client put run is summarized (self time by function).
// Usage: npm run build && npm run bench -- cluster [--secs 5] [--warmup-secs 1] [--nodes 3,5] [--clients 1,16,256,1024]
//        [--ops put,get,sget] [--keys N] [--tick-ms 100] [--dir DIR] [--node-args "FLAGS"] [--conns route|spread|leader] [--profile] [--no-json]
import { type ChildProcess, execSync, spawn } from 'node:child_process';
import {
  closeSync,
  existsSync,
  fdatasyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { ControlClient } from '../src/client/client.js';
import { ClusterClient } from '../src/client/cluster.js';
import { maskedWebSocket } from '../src/protocol/frame-mask.js';
import { type NodeProc, ROOT, TestCluster, waitFor } from '../test/e2e/harness.js';
import { fmtRate, machineInfo, nodeLaunchLine, runSuite, table, UsageError } from './harness.js';

const VALUE = 'v'.repeat(256);
/** Keys each client cycles through without --keys, so the store stays small over long runs. */
const KEYS_PER_CLIENT = 64;
/** Writes in flight while --keys fills the store. */
const FILL_CLIENTS = 1024;
const OP_TIMEOUT_MS = 30_000;
/** The warm-up's lone client (see benchCluster). */
const ONE_CLIENT_WARMUP_SECS = 5;

type Op = 'put' | 'get' | 'sget';
const OP_NAMES: Record<Op, string> = {
  put: 'put',
  get: 'get (linearizable)',
  sget: 'get (serializable)',
};

interface Args {
  secs: number;
  /** Load at each cell's own concurrency before it is measured. */
  warmupSecs: number;
  nodes: number[];
  clients: number[];
  ops: Op[];
  /** Keys over all clients, written before the first cell; undefined: 64 per client. */
  keys: number | undefined;
  tickMs: number;
  dir: string;
  profile: boolean;
  /** Extra flags for every node, e.g. `--snapshot-every 1000000000 --snapshot-bytes 1024GiB` (no snapshots). */
  nodeArgs: string[];
  /**
   * `route` (default): a ClusterClient, connected to every node, sends writes to the leader
   * and reads to the nodes in turn; `spread`: connection j goes to the j-th node counting
   * from the leader, and client i keeps to connection i; `leader`: every connection to it.
   */
  conns: 'route' | 'spread' | 'leader';
  json: boolean;
}

function parseArgs(argv: string[]): Args {
  const a: Args = {
    secs: 5,
    warmupSecs: 1,
    nodes: [3, 5],
    clients: [1, 16, 256, 1024],
    ops: ['put', 'get', 'sget'],
    keys: undefined,
    tickMs: 100,
    dir: tmpdir(),
    profile: false,
    nodeArgs: [],
    conns: 'route',
    json: true,
  };
  const list = (s: string | undefined) => (s ?? '').split(',').map((x) => Number(x.trim()));
  for (let i = 0; i < argv.length; i++) {
    const f = argv[i];
    const v = argv[i + 1];
    if (f === '--secs') a.secs = Number(v);
    else if (f === '--warmup-secs') a.warmupSecs = Number(v);
    else if (f === '--nodes') a.nodes = list(v);
    else if (f === '--clients') a.clients = list(v);
    else if (f === '--ops') a.ops = (v ?? '').split(',') as Op[];
    else if (f === '--keys') a.keys = Number(v);
    else if (f === '--tick-ms') a.tickMs = Number(v);
    else if (f === '--dir') a.dir = v ?? a.dir;
    else if (f === '--node-args') a.nodeArgs = (v ?? '').split(' ').filter(Boolean);
    else if (f === '--conns') a.conns = v as Args['conns'];
    else if (f === '--profile') {
      a.profile = true;
      continue;
    } else if (f === '--profile-only') {
      a.profile = true;
      a.nodes = [];
      continue;
    } else if (f === '--no-json') {
      a.json = false;
      continue;
    } else throw new UsageError(`unknown flag ${f}`);
    i++;
  }
  const bad =
    !(a.secs > 0) ||
    !(a.warmupSecs >= 0) ||
    a.nodes.some((n) => !Number.isInteger(n) || n < 1) ||
    a.clients.some((n) => !Number.isInteger(n) || n < 1) ||
    a.ops.some((o) => !(o in OP_NAMES)) ||
    (a.keys !== undefined && !(Number.isInteger(a.keys) && a.keys >= 1)) ||
    !['route', 'spread', 'leader'].includes(a.conns) ||
    !(a.tickMs >= 1);
  if (bad) throw new UsageError(`bad arguments: ${argv.join(' ')}`);
  return a;
}

// ---- figures ------------------------------------------------------------------------

interface Latency {
  p50: number;
  p99: number;
  p999: number;
  max: number;
}

function latency(ms: number[]): Latency {
  const s = Float64Array.from(ms).sort();
  const at = (p: number) =>
    s.length === 0 ? Number.NaN : s[Math.min(s.length - 1, Math.floor(p * s.length))]!;
  return {
    p50: at(0.5),
    p99: at(0.99),
    p999: at(0.999),
    max: s.length === 0 ? Number.NaN : s[s.length - 1]!,
  };
}

const fmtMs = (ms: number): string =>
  Number.isNaN(ms) ? '—' : ms < 1 ? `${(ms * 1000).toFixed(0)} µs` : `${ms.toFixed(ms < 10 ? 2 : 1)} ms`;

const CLK_TCK = (() => {
  try {
    return Number(execSync('getconf CLK_TCK', { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** CPU seconds (user + system) a process has used so far; undefined off Linux. */
function cpuSeconds(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the parenthesised command name; utime and stime are the 14th and 15th.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / CLK_TCK;
  } catch {
    return undefined;
  }
}

// ---- machine limits -------------------------------------------------------------------

interface FsyncLimit {
  dir: string;
  opsPerSec: number;
  latency: Latency;
}

/** write(256 B) + fdatasync in a tight loop on a file in `dir`, appending like the WAL does. */
function measureFsync(dir: string, secs: number): FsyncLimit {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `fsync-probe-${process.pid}`);
  const fd = openSync(file, 'w');
  const buf = Buffer.alloc(256, 0x61);
  const lat: number[] = [];
  let pos = 0;
  const t0 = performance.now();
  const end = t0 + secs * 1000;
  try {
    for (let now = t0; now < end; ) {
      writeSync(fd, buf, 0, buf.length, pos);
      pos += buf.length;
      fdatasyncSync(fd);
      const t = performance.now();
      lat.push(t - now);
      now = t;
    }
  } finally {
    closeSync(fd);
    rmSync(file, { force: true });
  }
  return { dir, opsPerSec: lat.length / ((performance.now() - t0) / 1000), latency: latency(lat) };
}

/**
 * A write waits for the leader's fdatasync and one follower's, and the nodes of a cluster on
 * one machine share its disk: a disk that serves flushes one at a time makes them wait for
 * each other, so one fdatasync alone understates what a write waits for. Three writers
 * (threads, a file each, appending 256 B and syncing like a node's WAL) start together,
 * round after round; the figure is the time until the second of them has synced: a 3-node
 * write's wait for the disk at best.
 */
async function measureQuorumFsync(dir: string, secs: number): Promise<FsyncLimit> {
  const writers = 3;
  mkdirSync(dir, { recursive: true });
  // [0] round number (-1: stop), [1] writers done this round; then each writer's finish time.
  const control = new Int32Array(new SharedArrayBuffer(8));
  const finished = new BigInt64Array(new SharedArrayBuffer(8 * writers));
  const code = `
    const { workerData: w } = require('node:worker_threads');
    const fs = require('node:fs');
    const control = new Int32Array(w.control), finished = new BigInt64Array(w.finished);
    const fd = fs.openSync(w.file, 'w');
    const buf = Buffer.alloc(256, 0x61);
    let round = 0, pos = 0;
    for (;;) {
      Atomics.wait(control, 0, round);
      round = Atomics.load(control, 0);
      if (round < 0) break;
      fs.writeSync(fd, buf, 0, buf.length, pos);
      pos += buf.length;
      fs.fdatasyncSync(fd);
      finished[w.index] = process.hrtime.bigint();
      Atomics.add(control, 1, 1);
      Atomics.notify(control, 1);
    }
    fs.closeSync(fd);`;
  const files = Array.from({ length: writers }, (_, i) => join(dir, `fsync-quorum-${process.pid}-${i}`));
  const threads = files.map(
    (file, index) =>
      new Worker(code, {
        eval: true,
        workerData: { control: control.buffer, finished: finished.buffer, file, index },
      }),
  );
  const exited = threads.map((t) => new Promise((resolve) => t.once('exit', resolve)));
  const lat: number[] = [];
  const t0 = performance.now();
  try {
    await new Promise((resolve) => setTimeout(resolve, 50)); // the threads are up and waiting
    while (performance.now() - t0 < secs * 1000) {
      Atomics.store(control, 1, 0);
      const start = process.hrtime.bigint();
      Atomics.add(control, 0, 1);
      Atomics.notify(control, 0);
      for (let done = 0; done < writers; done = Atomics.load(control, 1)) {
        // A writer that failed (its file, its disk) would leave this thread waiting for good.
        if (Atomics.wait(control, 1, done, 10_000) === 'timed-out') {
          throw new Error(`fdatasync probe: a writer in ${dir} did not finish within 10 s`);
        }
      }
      const second = [...finished].sort((x, y) => (x < y ? -1 : x > y ? 1 : 0))[1]!;
      lat.push(Number(second - start) / 1e6);
    }
  } finally {
    Atomics.store(control, 0, -1);
    Atomics.notify(control, 0);
    await Promise.all(exited);
    for (const f of files) rmSync(f, { force: true });
  }
  return { dir, opsPerSec: lat.length / ((performance.now() - t0) / 1000), latency: latency(lat) };
}

interface WsLimit {
  inFlight: number;
  connections: number;
  roundTripsPerSec: number;
  latency: Latency;
}

/**
 * Bytes of one put as a binary put frame carries it (id, key and a 256-byte value, each
 * length-prefixed), and of its answer (id, revision, term as varints).
 */
const PUT_RECORD_BYTES = 270;
const PUT_RESULT_BYTES = 8;

/**
 * A ws echo server in its own process, answering as a node answers binary puts: a frame of
 * N records (the count in bytes 1–4) gets one frame of N results back. Resolves with its
 * port and the child.
 */
async function startEchoServer(): Promise<{ port: number; child: ChildProcess }> {
  const code = `
    const { WebSocketServer } = require('ws');
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false });
    wss.on('connection', (ws) => ws.on('message', (d) => {
      const n = d.readUInt32LE(1);
      const out = Buffer.alloc(1 + n * ${PUT_RESULT_BYTES});
      out[0] = 2;
      ws.send(out, { binary: true });
    }));
    wss.on('listening', () => process.stdout.write(String(wss.address().port) + '\\n'));`;
  const child = spawn(process.execPath, ['-e', code], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout!.setEncoding('utf8').once('data', (d: string) => resolve(Number(d.trim())));
    child.once('exit', (c) => reject(new Error(`echo server exited with ${c}`)));
  });
  return { port, child };
}

/**
 * Round trips through the echo process, framed as the client frames puts: `inFlight` loops
 * over `connections` sockets, each waiting for its answer before its next request; the
 * requests made on a socket in one turn leave together in one binary frame (the client's
 * outbox) and come back in one. So the rate is what the wire allows puts, with no raft, no
 * disk and no store behind it.
 */
async function measureWs(
  port: number,
  connections: number,
  inFlight: number,
  secs: number,
): Promise<WsLimit> {
  interface Sock {
    ws: ReturnType<typeof maskedWebSocket>;
    /** Requests made this turn, not yet sent. */
    outbox: (() => void)[];
    /** Frames sent, oldest first: answers come back in order, a frame's all at once. */
    sent: (() => void)[][];
  }
  const socks: Sock[] = await Promise.all(
    Array.from({ length: connections }, async () => {
      // Dialled as the product's client dials (zero keys on loopback), so the limit is its own.
      const ws = maskedWebSocket(`ws://127.0.0.1:${port}`, { perMessageDeflate: false });
      await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
      const s: Sock = { ws, outbox: [], sent: [] };
      ws.on('message', () => {
        for (const answered of s.sent.shift() ?? []) answered();
      });
      return s;
    }),
  );
  const flush = (s: Sock): void => {
    const batch = s.outbox;
    s.outbox = [];
    const frame = Buffer.alloc(5 + batch.length * PUT_RECORD_BYTES);
    frame[0] = 1;
    frame.writeUInt32LE(batch.length, 1);
    s.sent.push(batch);
    s.ws.send(frame, { binary: true });
  };
  const lat: number[] = [];
  const t0 = performance.now();
  const end = t0 + secs * 1000;
  await Promise.all(
    Array.from({ length: inFlight }, async (_, i) => {
      const s = socks[i % socks.length]!;
      while (performance.now() < end) {
        const t = performance.now();
        await new Promise<void>((resolve) => {
          if (s.outbox.push(resolve) === 1) process.nextTick(flush, s);
        });
        lat.push(performance.now() - t);
      }
    }),
  );
  const elapsed = (performance.now() - t0) / 1000;
  for (const s of socks) s.ws.terminate();
  return { inFlight, connections, roundTripsPerSec: lat.length / elapsed, latency: latency(lat) };
}

// ---- cluster runs ---------------------------------------------------------------------

interface RunResult {
  nodes: number;
  op: Op;
  clients: number;
  connections: number;
  secs: number;
  ops: number;
  opsPerSec: number;
  latency: Latency;
  /**
   * The same latencies split by where the client's connection goes: to the leader, or to a
   * follower that forwards the write (absent when every connection goes to the leader).
   */
  latencyVia?: { leader: Latency; followers: Latency };
  /**
   * Puts only: the leader's p50 and p99 for the writes it served, from a write reaching it to
   * its answer (interpolated in its kv_write_seconds buckets, 1.5× apart).
   */
  inLeader?: { p50: number; p99: number };
  /** How late the load generator's event loop ran during the run (ms): it adds to every latency. */
  generatorLag: { p50: number; p99: number; max: number };
  /** Snapshots the nodes created during the run, and their total wall time in seconds. */
  snapshots: { created: number; seconds: number };
  errors: number;
  errorCodes: Record<string, number>;
  /** CPU used per node during the run, in cores (1 = one core busy), leader first. */
  cpu: { id: number; leader: boolean; cores: number }[];
  /** Each node's longest event-loop stall during the run (ms), leader first. */
  nodeLagMaxMs: { id: number; leader: boolean; ms: number }[];
  /** Each node's event-loop utilization during the run (0–1), leader first. */
  nodeLoopBusy: { id: number; leader: boolean; share: number }[];
  /** CPU of the bench process itself (the clients), in cores. */
  clientCores: number;
  /** CPU time of all nodes and the clients per operation, in µs: the run's cost, whatever its speed. */
  cpuMicrosPerOp: number;
  leaderChanged: boolean;
}

/** The load generator's connections: which one client `i` uses for an op, and whether it goes to the leader. */
interface Pool {
  connections: number;
  pick(i: number, op: Op): { client: ControlClient; toLeader: boolean };
  close(): Promise<void>;
}

async function openPool(c: TestCluster, leader: NodeProc, n: number, to: Args['conns']): Promise<Pool> {
  const opts = { timeoutMs: 5000, commandTimeoutMs: OP_TIMEOUT_MS };
  if (to === 'route') {
    // Twice the connections per node of the other modes: the leader's carry every write.
    const perNode = 2 * Math.ceil(n / c.nodes.length);
    const cluster = await ClusterClient.connect([leader.address], { ...opts, connectionsPerNode: perNode });
    await waitFor('the client to learn the leader', () => cluster.leader === leader.id || undefined);
    return {
      connections: perNode * cluster.memberIds.length,
      pick: (_i, op) => {
        const t = cluster.pick(op === 'put' ? 'put' : 'get')!;
        return { client: t.client, toLeader: t.node === leader.id };
      },
      close: () => cluster.close(),
    };
  }
  const order = to === 'leader' ? [leader] : [leader, ...c.nodes.filter((x) => x !== leader)];
  const fixed = await Promise.all(
    Array.from({ length: n }, async (_, j) => {
      const node = order[j % order.length]!;
      const client = new ControlClient();
      await client.connect(node.address, opts);
      return { client, toLeader: node === leader };
    }),
  );
  return {
    connections: n,
    pick: (i) => fixed[i % fixed.length]!,
    close: async () => {
      await Promise.all(fixed.map((p) => p.client.close()));
    },
  };
}

/**
 * The key of client `i`'s `seq`-th op: one of its own 64 keys, or with `keys` the next of
 * its stride through all of them (i + seq × clients, modulo keys).
 */
function keyOf(i: number, seq: number, clients: number, keys: number | undefined): string {
  return keys === undefined ? `bench/${i}/${seq % KEYS_PER_CLIENT}` : sharedKey((i + clients * seq) % keys);
}

/** The n-th of the --keys keys. */
const sharedKey = (n: number): string => `bench/k/${n}`;

/** Writes every one of `keys` keys once (for --keys), FILL_CLIENTS at a time. */
async function fill(pool: Pool, keys: number): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(FILL_CLIENTS, keys) }, async (_, i) => {
      for (let k = next++; k < keys; k = next++) {
        await pool.pick(i, 'put').client.command('put', { key: sharedKey(k), value: VALUE });
      }
    }),
  );
}

async function load(
  pool: Pool,
  clients: number,
  op: Op,
  secs: number,
  keys: number | undefined,
): Promise<{
  viaLeader: number[];
  viaFollowers: number[];
  errors: number;
  errorCodes: Record<string, number>;
  elapsed: number;
}> {
  const viaLeader: number[] = [];
  const viaFollowers: number[] = [];
  const errorCodes: Record<string, number> = {};
  let errors = 0;
  const t0 = performance.now();
  const end = t0 + secs * 1000;
  await Promise.all(
    Array.from({ length: clients }, async (_, i) => {
      let seq = i; // Start clients on different keys of their range.
      while (performance.now() < end) {
        const key = keyOf(i, seq++, clients, keys);
        const { client: cl, toLeader } = pool.pick(i, op);
        const via = toLeader ? viaLeader : viaFollowers;
        const t = performance.now();
        try {
          if (op === 'put') await cl.command('put', { key, value: VALUE });
          else await cl.command('get', { key, serializable: op === 'sget' });
          via.push(performance.now() - t);
        } catch (err) {
          errors++;
          const code = (err as { code?: string }).code ?? 'other';
          errorCodes[code] = (errorCodes[code] ?? 0) + 1;
          // A failing cluster should not be hammered in a tight loop.
          await new Promise((r) => setTimeout(r, 10));
        }
      }
    }),
  );
  return { viaLeader, viaFollowers, errors, errorCodes, elapsed: (performance.now() - t0) / 1000 };
}

/**
 * From each node's /metrics: the snapshots created so far and their total seconds, and the
 * longest event-loop stall (ms) and the loop's utilization since the node's previous scrape.
 */
async function nodeCounters(c: TestCluster): Promise<{
  created: number;
  seconds: number;
  lagMaxMs: Map<number, number>;
  loopBusy: Map<number, number>;
}> {
  let created = 0;
  let seconds = 0;
  const lagMaxMs = new Map<number, number>();
  const loopBusy = new Map<number, number>();
  for (const n of c.nodes) {
    // A node that died mid-run counts nothing rather than failing the whole bench.
    const samples = await n.metrics().catch(() => new Map<string, number>());
    created += samples.get('raft_snapshots_total{kind="created"}') ?? 0;
    seconds += samples.get('snapshot_save_seconds_sum') ?? 0;
    lagMaxMs.set(n.id, (samples.get('nodejs_eventloop_lag_max_seconds') ?? Number.NaN) * 1000);
    loopBusy.set(n.id, samples.get('nodejs_eventloop_utilization') ?? Number.NaN);
  }
  return { created, seconds, lagMaxMs, loopBusy };
}

/** The leader's kv_write_seconds histogram: cumulative count by upper bound (s), +Inf last. */
async function writeBuckets(leader: NodeProc): Promise<[number, number][]> {
  const samples = await leader.metrics().catch(() => new Map<string, number>());
  const buckets: [number, number][] = [];
  for (const [name, count] of samples) {
    const le = /^kv_write_seconds_bucket\{le="([^"]+)"\}$/.exec(name)?.[1];
    if (le !== undefined) buckets.push([le === '+Inf' ? Number.POSITIVE_INFINITY : Number(le), count]);
  }
  return buckets.sort((x, y) => x[0] - y[0]);
}

/**
 * p50 and p99 (ms) of the observations between two scrapes of one cumulative histogram,
 * interpolated linearly within the bucket each falls in (as Prometheus' histogram_quantile).
 */
function bucketQuantiles(
  before: [number, number][],
  after: [number, number][],
): { p50: number; p99: number } {
  const counts = after.map(([le, n], i) => [le, n - (before[i]?.[1] ?? 0)] as const);
  const total = counts.at(-1)?.[1] ?? 0;
  const at = (q: number): number => {
    if (total === 0) return Number.NaN;
    const rank = q * total;
    for (let i = 0; i < counts.length; i++) {
      const [le, n] = counts[i]!;
      if (n < rank) continue;
      const [lower, below] = i === 0 ? [0, 0] : counts[i - 1]!;
      // Past the last finite bucket there is no upper bound to interpolate to.
      if (le === Number.POSITIVE_INFINITY) return lower * 1000;
      return (lower + ((le - lower) * (rank - below)) / (n - below)) * 1000;
    }
    return Number.NaN;
  };
  return { p50: at(0.5), p99: at(0.99) };
}

/** One cell: `a.warmupSecs` of load at its own concurrency, then `a.secs` measured. */
async function measureRun(
  c: TestCluster,
  leader: NodeProc,
  pool: Pool,
  op: Op,
  clients: number,
  a: Pick<Args, 'secs' | 'warmupSecs' | 'keys'>,
): Promise<RunResult> {
  if (a.warmupSecs > 0) await load(pool, clients, op, a.warmupSecs, a.keys);
  const before = c.nodes.map((n) => cpuSeconds(n.proc?.pid));
  const self0 = process.cpuUsage();
  const termBefore = (await leader.health()).term;
  const snapsBefore = await nodeCounters(c);
  const writesBefore = await writeBuckets(leader);
  const lag = monitorEventLoopDelay({ resolution: 1 });
  lag.enable();
  const r = await load(pool, clients, op, a.secs, a.keys);
  lag.disable();
  const self = process.cpuUsage(self0);
  const after = c.nodes.map((n) => cpuSeconds(n.proc?.pid));
  // Each node's lag and utilization windows began at the scrapes just before the run (the
  // leader's at writeBuckets).
  const snapsAfter = await nodeCounters(c);
  const writesAfter = await writeBuckets(leader);
  const h = await leader.health().catch(() => undefined);
  const cpu = leaderFirst(c, leader, (_n, i) => ({
    cores:
      before[i] === undefined || after[i] === undefined ? Number.NaN : (after[i]! - before[i]!) / r.elapsed,
  }));
  const clientCores = (self.user + self.system) / 1e6 / r.elapsed;
  const allCores = cpu.reduce((sum, x) => sum + x.cores, clientCores);
  const all = [...r.viaLeader, ...r.viaFollowers];
  return {
    nodes: c.nodes.length,
    op,
    clients,
    connections: pool.connections,
    secs: r.elapsed,
    ops: all.length,
    opsPerSec: all.length / r.elapsed,
    latency: latency(all),
    ...(r.viaFollowers.length > 0 && r.viaLeader.length > 0
      ? { latencyVia: { leader: latency(r.viaLeader), followers: latency(r.viaFollowers) } }
      : {}),
    ...(op === 'put' ? { inLeader: bucketQuantiles(writesBefore, writesAfter) } : {}),
    generatorLag: { p50: lag.percentile(50) / 1e6, p99: lag.percentile(99) / 1e6, max: lag.max / 1e6 },
    snapshots: {
      created: snapsAfter.created - snapsBefore.created,
      seconds: snapsAfter.seconds - snapsBefore.seconds,
    },
    errors: r.errors,
    errorCodes: r.errorCodes,
    cpu,
    nodeLagMaxMs: leaderFirst(c, leader, (n) => ({ ms: snapsAfter.lagMaxMs.get(n.id) ?? Number.NaN })),
    nodeLoopBusy: leaderFirst(c, leader, (n) => ({ share: snapsAfter.loopBusy.get(n.id) ?? Number.NaN })),
    clientCores,
    cpuMicrosPerOp: all.length === 0 ? Number.NaN : (allCores / (all.length / r.elapsed)) * 1e6,
    leaderChanged: h === undefined || h.term !== termBefore || h.leader !== leader.id,
  };
}

/** A figure per node, the leader's first. */
function leaderFirst<T>(
  c: TestCluster,
  leader: NodeProc,
  of: (n: NodeProc, i: number) => T,
): (T & { id: number; leader: boolean })[] {
  return c.nodes
    .map((n, i) => ({ id: n.id, leader: n === leader, ...of(n, i) }))
    .sort((a, b) => Number(b.leader) - Number(a.leader));
}

/** "leader / follower follower …" of a leaderFirst list. */
function leaderThenOthers<T>(xs: readonly T[], show: (x: T) => string): string {
  return `${show(xs[0]!)} / ${xs.slice(1).map(show).join(' ')}`;
}

function connectionsFor(clients: number, nodes: number): number {
  // A few per node, and never more than the clients; ≤ 256 commands in flight per connection.
  return Math.max(Math.ceil(clients / 200), Math.min(clients, 4 * nodes));
}

async function startCluster(
  n: number,
  a: Args,
  execArgv: string[] = [],
): Promise<{ c: TestCluster; leader: NodeProc }> {
  const c = await TestCluster.create(n, { tickMs: a.tickMs, args: ['--quiet', ...a.nodeArgs] });
  for (const node of c.nodes) node.start([], { execArgv });
  // An election at 100 ms ticks takes 1–2 s; startup under load can take longer.
  const leader = await c.waitLeader(undefined, 30_000);
  return { c, leader };
}

/** Writes all of --keys once before the cells, saying how long it took. */
async function fillStore(c: TestCluster, leader: NodeProc, a: Args, keys: number): Promise<void> {
  const t0 = performance.now();
  const pool = await openPool(c, leader, connectionsFor(FILL_CLIENTS, c.nodes.length), a.conns);
  try {
    await fill(pool, keys);
  } finally {
    await pool.close();
  }
  process.stderr.write(
    `  wrote ${keys.toLocaleString('en-US')} keys in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`,
  );
}

async function benchCluster(n: number, a: Args, results: RunResult[]): Promise<void> {
  process.stderr.write(`\n${n}-node cluster (tick ${a.tickMs} ms)…\n`);
  const { c, leader } = await startCluster(n, a);
  try {
    process.stderr.write(`  leader is node ${leader.id}; warming up…\n`);
    {
      const pool = await openPool(c, leader, connectionsFor(64, n), a.conns);
      await load(pool, 64, 'put', 1.5, a.keys);
      await load(pool, 64, 'get', 0.5, a.keys);
      // A lone client's path (a Ready per write, commit-only messages) runs a few hundred
      // times a second, and V8 optimizes a function only after many calls: at one client
      // the nodes were still compiling for ~8 s, and three 3 s cells measured back to back
      // ran at 304, 511, 761 puts/s without this, 767, 860, 812 with it (BENCHMARKS.md).
      await load(pool, 1, 'put', ONE_CLIENT_WARMUP_SECS, a.keys);
      await pool.close();
    }
    if (a.keys !== undefined) await fillStore(c, leader, a, a.keys);
    for (const clients of a.clients) {
      const pool = await openPool(c, leader, connectionsFor(clients, n), a.conns);
      for (const op of a.ops) {
        const r = await measureRun(c, leader, pool, op, clients, a);
        results.push(r);
        const inLeader = r.inLeader ? `  (leader ${fmtMs(r.inLeader.p50)} / ${fmtMs(r.inLeader.p99)})` : '';
        process.stderr.write(
          `  ${OP_NAMES[op].padEnd(18)} ${String(clients).padStart(4)} clients: ${fmtRate(r.opsPerSec).padStart(9)}` +
            `  p50 ${fmtMs(r.latency.p50)}  p99 ${fmtMs(r.latency.p99)}  p99.9 ${fmtMs(r.latency.p999)}${inLeader}` +
            `  errors ${r.errors}  leader CPU ${r.cpu[0]!.cores.toFixed(2)}  snapshots ${r.snapshots.created}` +
            `${r.leaderChanged ? '  (LEADER CHANGED)' : ''}\n`,
        );
      }
      await pool.close();
    }
  } finally {
    await c.destroy();
  }
}

// ---- profile ---------------------------------------------------------------------------

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

interface ProfileEntry {
  function: string;
  location: string;
  selfMs: number;
  selfPct: number;
}

function relLocation(url: string, line: number): string {
  if (url === '') return '(native)';
  const path = url.startsWith('file://') ? fileURLToPath(url) : url;
  const rel = path.startsWith(`${ROOT}/`) ? path.slice(ROOT.length + 1) : path;
  return `${rel}:${line + 1}`;
}

/** Self time by function and by file, from a .cpuprofile. */
function summarizeProfile(p: CpuProfile): {
  total: number;
  byFunction: ProfileEntry[];
  byFile: ProfileEntry[];
} {
  const self = new Map<number, number>();
  for (let i = 0; i < p.samples.length; i++) {
    self.set(p.samples[i]!, (self.get(p.samples[i]!) ?? 0) + (p.timeDeltas[i] ?? 0));
  }
  const byFn = new Map<string, ProfileEntry>();
  const byFile = new Map<string, ProfileEntry>();
  let total = 0;
  for (const node of p.nodes) {
    const us = self.get(node.id) ?? 0;
    total += us;
    const cf = node.callFrame;
    const fn = cf.functionName || '(anonymous)';
    const loc = cf.url === '' ? fn : relLocation(cf.url, cf.lineNumber);
    const k = `${fn}@${loc}`;
    const e = byFn.get(k) ?? { function: fn, location: loc, selfMs: 0, selfPct: 0 };
    e.selfMs += us / 1000;
    byFn.set(k, e);
    const file = cf.url === '' ? `(${fn})` : loc.replace(/:\d+$/, '');
    const f = byFile.get(file) ?? { function: '', location: file, selfMs: 0, selfPct: 0 };
    f.selfMs += us / 1000;
    byFile.set(file, f);
  }
  const finish = (m: Map<string, ProfileEntry>) =>
    [...m.values()]
      .map((e) => ({ ...e, selfPct: (e.selfMs / (total / 1000)) * 100 }))
      .sort((x, y) => y.selfMs - x.selfMs);
  return { total: total / 1000, byFunction: finish(byFn).slice(0, 25), byFile: finish(byFile).slice(0, 15) };
}

async function profileLeader(a: Args): Promise<{
  leader: number;
  clients: number;
  file: string;
  run: RunResult;
  summary: ReturnType<typeof summarizeProfile>;
  follower: { id: number; file: string; summary: ReturnType<typeof summarizeProfile> };
}> {
  const clients = Math.max(...a.clients);
  process.stderr.write(`\nprofile: 3-node cluster with --cpu-prof, ${clients}-client put run…\n`);
  const profDir = join(a.dir, `raftctl-prof-${process.pid}`);
  mkdirSync(profDir, { recursive: true });
  // Every node is profiled (the leader is only known after the election); Node 20 refuses
  // --cpu-prof in NODE_OPTIONS, so it goes on the command line.
  const { c, leader } = await startCluster(3, a, ['--cpu-prof', `--cpu-prof-dir=${profDir}`]);
  let run: RunResult;
  try {
    if (a.keys !== undefined) await fillStore(c, leader, a, a.keys);
    const pool = await openPool(c, leader, connectionsFor(clients, 3), a.conns);
    run = await measureRun(c, leader, pool, 'put', clients, a);
    await pool.close();
  } finally {
    // A graceful stop, so each process writes its profile on exit.
    await Promise.all(c.nodes.map((n) => n.kill('SIGTERM')));
  }
  const profileOf = (n: (typeof c.nodes)[number]) => {
    const pid = n.proc!.pid!;
    const name = readdirSync(profDir).find((f) => f.includes(`.${pid}.`) && f.endsWith('.cpuprofile'));
    if (name === undefined) throw new Error(`no profile of node ${n.id} (pid ${pid}) in ${profDir}`);
    const file = join(profDir, name);
    return {
      id: n.id,
      file,
      summary: summarizeProfile(JSON.parse(readFileSync(file, 'utf8')) as CpuProfile),
    };
  };
  const ofLeader = profileOf(leader);
  const follower = profileOf(c.nodes.find((n) => n !== leader)!);
  await c.destroy();
  return { leader: leader.id, clients, file: ofLeader.file, run, summary: ofLeader.summary, follower };
}

// ---- main ------------------------------------------------------------------------------

export async function main(argv: string[]): Promise<void> {
  const a = parseArgs(argv);
  if (!existsSync(join(ROOT, 'dist', 'bundle', 'main.js'))) {
    throw new Error('dist/ is missing: run `npm run build` first (the nodes run the compiled CLI)');
  }
  const machine = machineInfo();
  const command = `npm run bench -- cluster${argv.length > 0 ? ` ${argv.join(' ')}` : ''}`;
  const started = new Date().toISOString();
  console.log(`raftctl cluster benchmark — ${started}`);
  console.log(`machine: ${machine.cpu}, ${machine.cores} cores, ${machine.memGiB} GiB, ${machine.os}`);
  console.log(`node ${machine.node}, load average (1 min) at start: ${machine.load1}`);
  console.log(nodeLaunchLine(machine));
  console.log(
    `runs of ${a.secs} s, 256-byte values, ${a.keys === undefined ? `${KEYS_PER_CLIENT} keys per client` : `${a.keys.toLocaleString('en-US')} keys`}, tick ${a.tickMs} ms, fsync on, data dirs under ${a.dir}\n`,
  );

  process.stderr.write('machine limits…\n');
  const probeDir = join(a.dir, `raftctl-fsync-${process.pid}`);
  let fsync: FsyncLimit;
  let quorumFsync: FsyncLimit;
  try {
    fsync = measureFsync(probeDir, 2);
    quorumFsync = await measureQuorumFsync(probeDir, 2);
  } finally {
    rmSync(probeDir, { recursive: true, force: true });
  }
  const echo = await startEchoServer();
  let ws: WsLimit[];
  try {
    // One in flight; 256 on 12 connections; 1,024 on the 8 a 1,024-client cell writes through.
    ws = [
      await measureWs(echo.port, 1, 1, 2),
      await measureWs(echo.port, 12, 256, 2),
      await measureWs(echo.port, 8, 1024, 2),
    ];
  } finally {
    echo.child.kill('SIGKILL');
  }
  console.log(
    table(
      ['limit', 'rate', 'p50', 'p99', 'p99.9'],
      [
        [
          'fdatasync (256 B append)',
          fmtRate(fsync.opsPerSec),
          fmtMs(fsync.latency.p50),
          fmtMs(fsync.latency.p99),
          fmtMs(fsync.latency.p999),
        ],
        [
          'fdatasync, 2nd of 3 started at once',
          fmtRate(quorumFsync.opsPerSec),
          fmtMs(quorumFsync.latency.p50),
          fmtMs(quorumFsync.latency.p99),
          fmtMs(quorumFsync.latency.p999),
        ],
        ...ws.map((w) => [
          `ws round trip, ${w.inFlight} in flight / ${w.connections} conn`,
          fmtRate(w.roundTripsPerSec),
          fmtMs(w.latency.p50),
          fmtMs(w.latency.p99),
          fmtMs(w.latency.p999),
        ]),
      ],
    ),
  );

  const results: RunResult[] = [];
  for (const n of a.nodes) await benchCluster(n, a, results);

  console.log('');
  console.log(
    table(
      [
        'nodes',
        'op',
        'clients',
        'conns',
        'ops/s',
        'p50',
        'p99',
        'p99.9',
        'p99 via leader/followers',
        'in leader p50/p99',
        'client lag p99',
        'node stall max L/F',
        'loop busy L/F',
        'snapshots (s)',
        'errors',
        'CPU leader/others/client',
        'CPU µs/op',
      ],
      results.map((r) => [
        String(r.nodes),
        OP_NAMES[r.op],
        String(r.clients),
        String(r.connections),
        fmtRate(r.opsPerSec),
        fmtMs(r.latency.p50),
        fmtMs(r.latency.p99),
        fmtMs(r.latency.p999),
        r.latencyVia ? `${fmtMs(r.latencyVia.leader.p99)} / ${fmtMs(r.latencyVia.followers.p99)}` : '-',
        r.inLeader ? `${fmtMs(r.inLeader.p50)} / ${fmtMs(r.inLeader.p99)}` : '-',
        fmtMs(r.generatorLag.p99),
        leaderThenOthers(r.nodeLagMaxMs, (x) => fmtMs(x.ms)),
        leaderThenOthers(r.nodeLoopBusy, (x) => x.share.toFixed(2)),
        r.snapshots.created === 0 ? '0' : `${r.snapshots.created} (${r.snapshots.seconds.toFixed(2)})`,
        `${r.errors}${r.leaderChanged ? ' (leader changed)' : ''}`,
        `${leaderThenOthers(r.cpu, (x) => x.cores.toFixed(2))} / ${r.clientCores.toFixed(2)}`,
        r.cpuMicrosPerOp.toFixed(1),
      ]),
    ),
  );
  const best = Math.max(...results.filter((r) => r.op === 'put').map((r) => r.opsPerSec), 0);
  const one = results.find((r) => r.op === 'put' && r.clients === 1 && r.nodes === 3);
  if (best > 0) {
    const busiest = results.find((r) => r.op === 'put' && r.opsPerSec === best)!;
    // The wire's limit at the busiest cell's concurrency, or the nearest measured.
    const wire = ws.reduce((a, b) =>
      Math.abs(b.inFlight - busiest.clients) < Math.abs(a.inFlight - busiest.clients) ? b : a,
    );
    console.log(
      `\nfractions of the machine's limits: best put rate ${fmtRate(best)} = ${(best / fsync.opsPerSec).toFixed(2)}× ` +
        `the fdatasync rate (group commit) and ${((best / wire.roundTripsPerSec) * 100).toFixed(1)}% of ws round trips at ${wire.inFlight} in flight`,
    );
    // Nodes and clients share the cores: the CPU a put costs bounds the rate they allow.
    const cores = availableParallelism();
    const capPerSec = (cores / busiest.cpuMicrosPerOp) * 1e6;
    console.log(
      `CPU per put in that cell: ${busiest.cpuMicrosPerOp.toFixed(1)} µs (nodes + clients); ` +
        `${cores} cores allow at most ≈ ${fmtRate(capPerSec)} at that cost`,
    );
    // Each client waits for its answer before its next put, so (Little's law) the mean
    // latency is the clients in flight over the rate, whatever the tail does on top of it.
    console.log(
      `${busiest.clients} client${busiest.clients === 1 ? '' : 's'} in flight: mean latency = clients / rate = ${fmtMs((busiest.clients / best) * 1000)}; ` +
        `at that CPU cap it could not be below ${fmtMs((busiest.clients / capPerSec) * 1000)}`,
    );
  }
  if (one) {
    // The leader sends before it writes, so its fdatasync runs with the followers': the path
    // is client→leader, leader→follower, the second of three syncs on the shared disk, and
    // the answers back.
    const floor = quorumFsync.latency.p50 + ws[0]!.latency.p50 * 2;
    console.log(
      `1-client put p50 ${fmtMs(one.latency.p50)} vs a floor of ≈ ${fmtMs(floor)} ` +
        `(the 2nd of 3 fdatasyncs at once + two ws round trips, p50 each); 1-client puts/s = ` +
        `${((one.opsPerSec / fsync.opsPerSec) * 100).toFixed(0)}% of the fdatasync rate`,
    );
  }

  let profile: Awaited<ReturnType<typeof profileLeader>> | undefined;
  let profileError: string | undefined;
  if (a.profile) {
    try {
      profile = await profileLeader(a);
    } catch (err) {
      profileError = (err as Error).message;
      console.log(`\nprofile failed: ${profileError}`);
    }
  }
  if (profile) {
    const r = profile.run;
    console.log(
      `\nprofile during a ${profile.clients}-client put run: ${fmtRate(r.opsPerSec)}, ` +
        `p50 ${fmtMs(r.latency.p50)}, p99 ${fmtMs(r.latency.p99)} (profiling slows it down)`,
    );
    const sides = [
      { what: `leader (node ${profile.leader})`, file: profile.file, summary: profile.summary },
      { what: `a follower (node ${profile.follower.id})`, ...profile.follower },
    ];
    for (const side of sides) {
      console.log(`\n${side.what}: ${side.file}`);
      console.log(
        table(
          ['self %', 'self ms', 'function', 'location'],
          side.summary.byFunction
            .slice(0, 20)
            .map((e) => [e.selfPct.toFixed(1), e.selfMs.toFixed(0), e.function, e.location]),
        ),
      );
      console.log('');
      console.log(
        table(
          ['self %', 'self ms', 'file'],
          side.summary.byFile
            .slice(0, 12)
            .map((e) => [e.selfPct.toFixed(1), e.selfMs.toFixed(0), e.location]),
        ),
      );
    }
  }

  if (a.json) {
    const dir = join(dirname(fileURLToPath(import.meta.url)), 'results');
    mkdirSync(dir, { recursive: true });
    const file = join(dir, `cluster-${started.replace(/[:.]/g, '-')}.json`);
    const out = {
      date: started,
      command,
      machine,
      loadAtEnd: Math.round(loadavg()[0]! * 100) / 100,
      options: a,
      limits: { fsync, quorumFsync, ws },
      results,
      ...(profile ? { profile } : {}),
      ...(profileError ? { profileError } : {}),
    };
    writeFileSync(file, `${JSON.stringify(out, null, 2)}\n`);
    console.log(`\nwrote ${file}`);
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await runSuite(() => main(process.argv.slice(2)));
}
