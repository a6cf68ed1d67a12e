// Peer comparison, same machine, same run, same load generator:
//   gateway: puts of 256-byte values through the etcd v3 JSON gateway (`POST /v3/kv/put`)
//     against a 3-node raftctl cluster (our gateway) and a 3-member etcd 3.4 cluster (its
//     grpc-gateway), at 1, 16, 64 and 256 closed-loop clients spread over the members, each
//     with a node:http keep-alive agent (maxSockets = clients). etcd is Debian's
//     `etcd-server` package, fetched with `apt-get download` into bench/.cache and
//     unpacked with `dpkg -x`; without apt the etcd half is skipped with the reason.
//   core: etcd's BenchmarkRawNode shape (bench/core.ts rawnode/*) against the RawNode of
//     @coaty/consensus.raft (a TypeScript port of etcd raft) driven by the identical loop:
//     propose → Ready → append to its MemoryStorage → synthesized follower acks → advance.
// Usage: npm run build && npm run bench -- peers [--only gateway|core] [--secs 5]
//        [--warmup-secs 1] [--settle-secs 3] [--clients 1,16,64,256] [--no-etcd] [--no-json]
// Before its first cell each system takes --settle-secs of unmeasured puts from 64 clients:
// a long-running server is warm, and a JIT-compiled one needs a few seconds to get there.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { freePorts, killAll, TestCluster } from '../test/e2e/harness.js';
import { allBenches } from './core.js';
import {
  type Bench,
  fmtNs,
  fmtRate,
  machineInfo,
  measure,
  nodeLaunchLine,
  type Result,
  table,
  UsageError,
} from './harness.js';
import { type Endpoint, fmtMs, keepAliveAgent, type LoadStats, PutLoad, sleep } from './load.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const CACHE = join(HERE, '.cache');

interface Args {
  only: 'gateway' | 'core' | undefined;
  secs: number;
  warmupSecs: number;
  /** Unmeasured load on each system before its first cell (JIT warm-up; the same for both). */
  settleSecs: number;
  clients: number[];
  etcd: boolean;
  json: boolean;
}

function parseArgs(argv: string[]): Args {
  const a: Args = {
    only: undefined,
    secs: 5,
    warmupSecs: 1,
    settleSecs: 3,
    clients: [1, 16, 64, 256],
    etcd: true,
    json: true,
  };
  for (let i = 0; i < argv.length; i++) {
    const f = argv[i]!;
    if (f === '--only') a.only = argv[++i] as Args['only'];
    else if (f === '--secs') a.secs = Number(argv[++i]);
    else if (f === '--warmup-secs') a.warmupSecs = Number(argv[++i]);
    else if (f === '--settle-secs') a.settleSecs = Number(argv[++i]);
    else if (f === '--clients') a.clients = (argv[++i] ?? '').split(',').map(Number);
    else if (f === '--no-etcd') a.etcd = false;
    else if (f === '--no-json') a.json = false;
    else throw new UsageError(`unknown flag ${f}`);
  }
  if (!(a.secs > 0) || a.clients.some((c) => !Number.isInteger(c) || c < 1))
    throw new UsageError(`bad arguments: ${argv.join(' ')}`);
  return a;
}

// ---- etcd --------------------------------------------------------------------------------

/** The etcd binary from Debian's etcd-server package, or why there is none. */
function etcdBinary(): { bin: string; version: string } | { skip: string } {
  const dir = join(CACHE, 'etcd-server');
  const bin = join(dir, 'root', 'usr', 'bin', 'etcd');
  if (!existsSync(bin)) {
    mkdirSync(dir, { recursive: true });
    try {
      execFileSync('apt-get', ['download', 'etcd-server'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (err) {
      const e = err as { code?: string; stderr?: Buffer; message: string };
      const why =
        e.code === 'ENOENT' ? 'apt-get is not installed' : (e.stderr?.toString().trim() ?? e.message);
      return {
        skip: `could not fetch etcd-server with apt-get download (${why}); run apt-get update first?`,
      };
    }
    const deb = readdirSync(dir).find((f) => f.startsWith('etcd-server_') && f.endsWith('.deb'));
    if (!deb) return { skip: 'apt-get download etcd-server produced no .deb' };
    try {
      execFileSync('dpkg', ['-x', join(dir, deb), join(dir, 'root')], { stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (err) {
      return { skip: `dpkg -x failed: ${(err as Error).message}` };
    }
    if (!existsSync(bin)) return { skip: `${deb} has no usr/bin/etcd` };
  }
  const version = execFileSync(bin, ['--version'], { encoding: 'utf8' }).split('\n')[0]!.trim();
  return { bin, version };
}

interface EtcdCluster {
  endpoints: Endpoint[];
  procs: ChildProcess[];
  root: string;
}

async function startEtcd(bin: string, n: number): Promise<EtcdCluster> {
  const ports = await freePorts(2 * n);
  const root = mkdtempSync(join(tmpdir(), 'raftctl-peers-etcd-'));
  const peerUrl = (i: number) => `http://127.0.0.1:${ports[n + i]}`;
  const clientUrl = (i: number) => `http://127.0.0.1:${ports[i]}`;
  const initial = Array.from({ length: n }, (_, i) => `m${i + 1}=${peerUrl(i)}`).join(',');
  const procs: ChildProcess[] = [];
  for (let i = 0; i < n; i++) {
    const args = [
      '--name',
      `m${i + 1}`,
      '--data-dir',
      join(root, `m${i + 1}`),
      '--listen-client-urls',
      clientUrl(i),
      '--advertise-client-urls',
      clientUrl(i),
      '--listen-peer-urls',
      peerUrl(i),
      '--initial-advertise-peer-urls',
      peerUrl(i),
      '--initial-cluster',
      initial,
      '--initial-cluster-state',
      'new',
      '--initial-cluster-token',
      'raftctl-bench',
      '--logger',
      'zap',
      '--log-level',
      'error',
    ];
    procs.push(spawn(bin, args, { stdio: ['ignore', 'ignore', 'pipe'] }));
  }
  const endpoints = ports.slice(0, n).map((port) => ({ host: '127.0.0.1', port }));
  const t0 = performance.now();
  for (;;) {
    const ok = await Promise.all(
      endpoints.map(async (e) => {
        try {
          const res = await fetch(`http://${e.host}:${e.port}/health`, { signal: AbortSignal.timeout(500) });
          return ((await res.json()) as { health?: string }).health === 'true';
        } catch {
          return false;
        }
      }),
    );
    if (ok.every(Boolean)) break;
    if (performance.now() - t0 > 30_000) {
      for (const p of procs) p.kill('SIGKILL');
      throw new Error('etcd did not become healthy within 30 s');
    }
    await sleep(100);
  }
  return { endpoints, procs, root };
}

async function stopEtcd(c: EtcdCluster): Promise<void> {
  await Promise.all(
    c.procs.map(
      (p) =>
        new Promise<void>((r) => {
          if (p.exitCode !== null || p.signalCode !== null) return r();
          p.once('exit', () => r());
          p.kill('SIGKILL');
        }),
    ),
  );
  rmSync(c.root, { recursive: true, force: true });
}

// ---- gateway comparison --------------------------------------------------------------------

async function runLoad(endpoints: Endpoint[], clients: number, a: Args, prefix: string): Promise<LoadStats> {
  const agent = keepAliveAgent(clients);
  const load = new PutLoad({ endpoints, clients, valueBytes: 256, prefix, agent, timeoutMs: 30_000 });
  await sleep(a.warmupSecs * 1000);
  load.mark();
  await sleep(a.secs * 1000);
  const s = await load.stop();
  agent.destroy();
  return s;
}

interface GatewayRow {
  clients: number;
  ours: LoadStats;
  etcd?: LoadStats;
  ratio?: number;
}

async function gateway(a: Args): Promise<{ rows: GatewayRow[]; etcdVersion?: string; skip?: string }> {
  const found = a.etcd ? etcdBinary() : { skip: 'etcd disabled with --no-etcd' };
  const ours = await TestCluster.create(3, { tickMs: 100, args: ['--quiet'] });
  let etcd: EtcdCluster | undefined;
  const rows: GatewayRow[] = [];
  try {
    for (const n of ours.nodes) n.start();
    if ('bin' in found) etcd = await startEtcd(found.bin, 3);
    const ourEndpoints = ours.nodes.map((n) => ({ host: n.host, port: n.port }));
    for (const n of ours.nodes) {
      for (const t0 = performance.now(); ; await sleep(50)) {
        try {
          const res = await fetch(`http://${n.address}/health`, { signal: AbortSignal.timeout(500) });
          if (res.ok) break;
        } catch {
          // not up yet
        }
        if (performance.now() - t0 > 30_000) throw new Error(`node ${n.id} not healthy`);
      }
    }
    const settle = { ...a, warmupSecs: 0, secs: a.settleSecs };
    if (a.settleSecs > 0) {
      process.stderr.write(`  settling each system for ${a.settleSecs} s at 64 clients…\n`);
      await runLoad(ourEndpoints, 64, settle, 'oursSettle');
      if (etcd) await runLoad(etcd.endpoints, 64, settle, 'etcdSettle');
    }
    for (const c of a.clients) {
      process.stderr.write(`  ${c} clients: raftctl …`);
      const o = await runLoad(ourEndpoints, c, a, `ours${c}`);
      process.stderr.write(` ${o.opsPerSec.toFixed(0)}/s`);
      const row: GatewayRow = { clients: c, ours: o };
      if (etcd) {
        process.stderr.write(', etcd …');
        const e = await runLoad(etcd.endpoints, c, a, `etcd${c}`);
        process.stderr.write(` ${e.opsPerSec.toFixed(0)}/s`);
        row.etcd = e;
        row.ratio = o.opsPerSec / e.opsPerSec;
      }
      process.stderr.write('\n');
      rows.push(row);
    }
  } finally {
    await killAll();
    if (etcd) await stopEtcd(etcd);
    rmSync(ours.root, { recursive: true, force: true });
  }
  return 'bin' in found ? { rows, etcdVersion: found.version } : { rows, skip: found.skip };
}

// ---- core comparison: @coaty/consensus.raft's RawNode ---------------------------------------

/** The few parts of @coaty/consensus.raft (CommonJS, ids are strings) this benchmark uses. */
interface CoatyMessage {
  type: number;
  to: string;
  from: string;
  term: number;
  index: number;
  entries: { index: number }[];
}
interface CoatyReady {
  entries: unknown[];
  committedEntries: { index: number }[];
  messages: CoatyMessage[];
}
interface CoatyRawNode {
  raft: { state: number; raftLog: { lastIndex(): number } };
  campaign(): Error | null;
  propose(data: unknown): Error | null;
  step(m: unknown): Error | null;
  hasReady(): boolean;
  ready(): CoatyReady;
  advance(rd: CoatyReady): void;
}
interface CoatyStorage {
  snapshot: { metadata: { confState: { voters: string[] } } };
  Append(entries: unknown[]): Error | null;
}
interface Coaty {
  version: string;
  newStorage(): CoatyStorage;
  newRawNode(cfg: Record<string, unknown>): CoatyRawNode;
  newMessage(m: Record<string, unknown>): unknown;
  MsgVote: number;
  MsgVoteResp: number;
  MsgApp: number;
  MsgAppResp: number;
  StateLeader: number;
  noLimit: number;
}

function loadCoaty(): Coaty | { skip: string } {
  const require = createRequire(import.meta.url);
  try {
    const base = '@coaty/consensus.raft/ported/';
    const { RawNode } = require(`${base}rawnode`);
    const { RaftConfig, noLimit, StateType } = require(`${base}raft`);
    const { MemoryStorage } = require(`${base}storage`);
    const pb = require(`${base}raftpb/raft.pb`);
    const version = (require('@coaty/consensus.raft/package.json') as { version: string }).version;
    return {
      version,
      newStorage: () => MemoryStorage.NewMemoryStorage(),
      newRawNode: (cfg) => RawNode.NewRawNode(new RaftConfig(cfg)),
      newMessage: (m) => new pb.Message(m),
      MsgVote: pb.MessageType.MsgVote,
      MsgVoteResp: pb.MessageType.MsgVoteResp,
      MsgApp: pb.MessageType.MsgApp,
      MsgAppResp: pb.MessageType.MsgAppResp,
      StateLeader: StateType.StateLeader,
      noLimit,
    };
  } catch (err) {
    return { skip: `@coaty/consensus.raft is not installed or does not load: ${(err as Error).message}` };
  }
}

/** bench/core.ts's rawNodeBench loop, line for line, on coaty's RawNode. */
function coatyRawNodeBench(c: Coaty, voters: number): Bench {
  return {
    id: `coaty-rawnode/${voters === 1 ? 'single-voter' : `${voters}-voters`}`,
    title: `@coaty/consensus.raft RawNode, BenchmarkRawNode shape, ${voters} voter(s)`,
    op: 'propose → Ready/append/ack/advance until applied',
    make: () => {
      const s = c.newStorage();
      s.snapshot.metadata.confState.voters = Array.from({ length: voters }, (_, i) => String(i + 1));
      // Same settings as ours in bench/core.ts: no message size limit, 256 inflight.
      const rn = c.newRawNode({
        id: '1',
        electionTick: 10,
        heartbeatTick: 1,
        storage: s,
        maxSizePerMsg: c.noLimit,
        maxInflightMsgs: 256,
      });
      const stabilize = (): number => {
        let applied = 0;
        while (rn.hasReady()) {
          const rd = rn.ready();
          const ce = rd.committedEntries;
          if (ce.length > 0) applied = ce[ce.length - 1]!.index;
          s.Append(rd.entries);
          for (const m of rd.messages) {
            if (m.type === c.MsgVote) {
              rn.step(c.newMessage({ type: c.MsgVoteResp, to: m.from, from: m.to, term: m.term }));
            } else if (m.type === c.MsgApp) {
              const n = m.entries.length;
              const index = n > 0 ? m.entries[n - 1]!.index : m.index;
              rn.step(c.newMessage({ type: c.MsgAppResp, to: m.from, from: m.to, term: m.term, index }));
            }
          }
          rn.advance(rd);
        }
        return applied;
      };
      rn.campaign();
      stabilize();
      if (rn.raft.state !== c.StateLeader) throw new Error('coaty node 1 did not become leader');
      return (n) => {
        let applied = 0;
        for (let i = 0; i < n; i++) {
          const err = rn.propose('foo');
          if (err) throw err;
          applied = stabilize();
        }
        if (applied !== rn.raft.raftLog.lastIndex())
          throw new Error(`applied ${applied} of ${rn.raft.raftLog.lastIndex()}`);
        return n;
      };
    },
  };
}

interface CoreRow {
  case: string;
  ours: Result;
  coaty: Result;
  /** coaty ns/op ÷ ours ns/op: how many times more proposals/s we do. */
  speedup: number;
}

function core(): { rows: CoreRow[]; version?: string; skip?: string } {
  const c = loadCoaty();
  if ('skip' in c) return { rows: [], skip: c.skip };
  const ours = allBenches().filter((b) => b.id === 'rawnode/single-voter' || b.id === 'rawnode/2-voters');
  const opts = { reps: 5, minMs: 1000, warmupMs: 500 };
  const rows: CoreRow[] = [];
  for (const [i, voters] of [1, 2].entries()) {
    const ob = ours[i]!;
    const cb = coatyRawNodeBench(c, voters);
    process.stderr.write(`  ${ob.id} vs ${cb.id} …`);
    // Interleaved, so both see the same machine load.
    const o1 = measure(ob, opts);
    const c1 = measure(cb, opts);
    process.stderr.write(` ${fmtNs(o1.medianNsPerOp)} vs ${fmtNs(c1.medianNsPerOp)}\n`);
    rows.push({
      case: voters === 1 ? 'single voter' : `${voters} voters`,
      ours: o1,
      coaty: c1,
      speedup: c1.medianNsPerOp / o1.medianNsPerOp,
    });
  }
  return { rows, version: c.version };
}

// ---- driver --------------------------------------------------------------------------------

export async function main(argv: string[]): Promise<void> {
  const a = parseArgs(argv);
  const machine = machineInfo();
  console.log(`raftctl peer comparison — ${new Date().toISOString()}`);
  console.log(`machine: ${machine.cpu}, ${machine.cores} cores, ${machine.memGiB} GiB, ${machine.os}`);
  console.log(`node ${machine.node} (V8 ${machine.v8}), load average (1 min) at start: ${machine.load1}`);
  console.log(`${nodeLaunchLine(machine)}\n`);
  const out: Record<string, unknown> = {
    date: new Date().toISOString(),
    command: `npm run bench -- peers${argv.length > 0 ? ` ${argv.join(' ')}` : ''}`,
    machine,
    args: a,
  };

  if (a.only !== 'core') {
    const g = await gateway(a);
    console.log(
      `gateway puts, 256-byte values, 3 members each, clients spread over the members, ${a.settleSecs} s settling per system, then ${a.warmupSecs} s warm-up + ${a.secs} s per cell`,
    );
    console.log(`etcd: ${g.etcdVersion ?? `skipped — ${g.skip}`}`);
    console.log(
      table(
        [
          'clients',
          'raftctl puts/s',
          'p50',
          'p99',
          'errors',
          'etcd puts/s',
          'p50',
          'p99',
          'errors',
          'ours/etcd',
        ],
        g.rows.map((r) => [
          String(r.clients),
          r.ours.opsPerSec.toFixed(0),
          fmtMs(r.ours.latency.p50),
          fmtMs(r.ours.latency.p99),
          String(r.ours.errors),
          r.etcd ? r.etcd.opsPerSec.toFixed(0) : '—',
          r.etcd ? fmtMs(r.etcd.latency.p50) : '—',
          r.etcd ? fmtMs(r.etcd.latency.p99) : '—',
          r.etcd ? String(r.etcd.errors) : '—',
          r.ratio === undefined ? '—' : `${r.ratio.toFixed(2)}×`,
        ]),
      ),
    );
    for (const r of g.rows) {
      for (const [who, s] of [
        ['raftctl', r.ours],
        ['etcd', r.etcd],
      ] as const) {
        if (s && s.errorSamples.length > 0)
          console.log(`  ${who} errors at ${r.clients} clients: ${s.errorSamples.join(' | ')}`);
      }
    }
    const behind = g.rows.filter((r) => r.ratio !== undefined && r.ratio < 1);
    if (g.rows.some((r) => r.ratio !== undefined))
      console.log(
        behind.length === 0
          ? 'target: ahead of etcd at every concurrency — met\n'
          : `target: ahead of etcd at every concurrency — MISSED at ${behind.map((r) => r.clients).join(', ')} clients\n`,
      );
    out.gateway = g;
  }

  if (a.only !== 'gateway') {
    const c = core();
    console.log(
      'core: etcd BenchmarkRawNode shape, ours vs @coaty/consensus.raft RawNode (same loop, same harness)',
    );
    if (c.skip) console.log(`skipped — ${c.skip}`);
    else {
      console.log(`@coaty/consensus.raft ${c.version}`);
      console.log(
        table(
          [
            'case',
            'ours/op',
            'ours ops/s',
            'spread',
            'coaty/op',
            'coaty ops/s',
            'spread',
            'ours ÷ coaty (proposals/s)',
          ],
          c.rows.map((r) => [
            r.case,
            fmtNs(r.ours.medianNsPerOp),
            fmtRate(r.ours.opsPerSec),
            `${r.ours.spreadPct.toFixed(0)}%`,
            fmtNs(r.coaty.medianNsPerOp),
            fmtRate(r.coaty.opsPerSec),
            `${r.coaty.spreadPct.toFixed(0)}%`,
            `${r.speedup.toFixed(1)}×`,
          ]),
        ),
      );
      const low = c.rows.filter((r) => r.speedup < 3);
      console.log(
        low.length === 0
          ? 'target: core ≥ 3× the TypeScript port — met'
          : `target: core ≥ 3× the TypeScript port — MISSED (${low.map((r) => r.case).join(', ')})`,
      );
    }
    out.core = c;
  }

  if (a.json) {
    out.loadAtEnd = Math.round(loadavg()[0]! * 100) / 100;
    const dir = join(HERE, 'results');
    mkdirSync(dir, { recursive: true });
    const file = join(dir, `peers-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
    writeFileSync(file, `${JSON.stringify(out, null, 2)}\n`);
    console.log(`\nwrote ${file}`);
  }
}
