// Recovery benchmark: how long a `raftctl node` takes to come back.
//   a) a node whose WAL holds a long log (1,000,000 entries by default, 256-byte put
//      values, nothing compacted): time from spawn until /health answers and until its
//      applied index is back at the commit index it had. The data dir is built fast: a
//      real single-node cluster is bootstrapped, stopped, and the entries are appended
//      in-process through DiskStorage.save in large unsynced batches (as the node itself
//      would write them). The node runs with --snapshot-every and --snapshot-bytes set
//      above the log's length and size, so nothing is compacted, before or during the restart.
//   b) the same path phase by phase (WAL replay, DiskStorage rebuild, RawNode init,
//      re-applying the log to the KV store), in one process started as a node is, so a
//      miss can be located;
//      with --profile also a --cpu-prof of one restart, summarized by self time.
//   c) catch-up by snapshot: a 3-node cluster, a follower stopped while the others take
//      puts and the leader compacts past it; time from the follower's restart until
//      /health answers and until it has applied the leader's commit index.
// Usage: npm run build && npm run bench -- recovery [--entries 1000000] [--value-bytes 256]
//        [--runs 3] [--catchup-puts 10000] [--dir DIR] [--profile] [--only log|snapshot] [--no-json]
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { silentLogger } from '../src/raft/logger.js';
import { RawNode } from '../src/raft/rawnode.js';
import type { Entry } from '../src/raft/types.js';
import { encodeKvCommand, KvStore } from '../src/server/kv.js';
import { nodeProcessEnv } from '../src/server/launch-env.js';
import { DiskStorage } from '../src/server/storage/disk-storage.js';
import { Wal } from '../src/server/storage/wal.js';
import { BIN, freePorts, type Health, killAll, ROOT, TestCluster } from '../test/e2e/harness.js';
import { machineInfo, nodeLaunchLine, table, UsageError } from './harness.js';
import { fmtMs, keepAliveAgent, median, PutLoad, sleep } from './load.js';

interface Args {
  entries: number;
  valueBytes: number;
  runs: number;
  catchupPuts: number;
  dir: string;
  profile: boolean;
  only: 'log' | 'snapshot' | undefined;
  json: boolean;
}

function parseArgs(argv: string[]): Args {
  const a: Args = {
    entries: 1_000_000,
    valueBytes: 256,
    runs: 3,
    catchupPuts: 10_000,
    dir: tmpdir(),
    profile: false,
    only: undefined,
    json: true,
  };
  for (let i = 0; i < argv.length; i++) {
    const f = argv[i]!;
    if (f === '--profile') a.profile = true;
    else if (f === '--no-json') a.json = false;
    else if (f === '--dir') a.dir = argv[++i]!;
    else if (f === '--only') a.only = argv[++i] as Args['only'];
    else {
      const v = Number(argv[++i]);
      if (!Number.isFinite(v) || v <= 0) throw new UsageError(`${f} needs a positive number`);
      if (f === '--entries') a.entries = Math.round(v);
      else if (f === '--value-bytes') a.valueBytes = Math.round(v);
      else if (f === '--runs') a.runs = Math.round(v);
      else if (f === '--catchup-puts') a.catchupPuts = Math.round(v);
      else throw new UsageError(`unknown flag ${f}`);
    }
  }
  return a;
}

async function health(address: string, timeoutMs = 500): Promise<Health | undefined> {
  try {
    const res = await fetch(`http://${address}/health`, { signal: AbortSignal.timeout(timeoutMs) });
    return (await res.json()) as Health;
  } catch {
    return undefined;
  }
}

const SNAPSHOT_NEVER = '1000000000';
const SNAPSHOT_NEVER_BYTES = '1024GiB';

function dirBytes(dir: string): number {
  let total = 0;
  for (const name of readdirSync(dir, { recursive: true }) as string[]) {
    const st = statSync(join(dir, name));
    if (st.isFile()) total += st.size;
  }
  return total;
}

/**
 * Spawns `node ARGS` from the repository's root with the environment `raftctl up` gives
 * its nodes, collecting one of its output streams as text (the other: `rest`).
 */
function spawnAsNode(args: string[], collect: 'stdout' | 'stderr', rest: 'ignore' | 'inherit') {
  const proc = spawn(process.execPath, args, {
    cwd: ROOT,
    stdio: ['ignore', collect === 'stdout' ? 'pipe' : rest, collect === 'stderr' ? 'pipe' : rest],
    env: nodeProcessEnv(process.env),
  });
  let text = '';
  proc[collect]!.setEncoding('utf8').on('data', (d: string) => {
    text += d;
  });
  const exited = new Promise<number | null>((r) => proc.once('exit', (c) => r(c)));
  return { proc, text: () => text, exited };
}

/** Spawns `raftctl node` (optionally under --cpu-prof); resolves helpers to time and stop it. */
function spawnNode(nodeArgs: string[], profDir?: string) {
  const flags = profDir ? ['--cpu-prof', '--cpu-prof-dir', profDir] : [];
  const t0 = performance.now();
  const { proc, text, exited } = spawnAsNode([...flags, BIN, 'node', ...nodeArgs], 'stderr', 'ignore');
  return {
    t0,
    proc,
    stderr: text,
    exited,
    async stop(): Promise<void> {
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 30_000);
      await exited;
      clearTimeout(t);
    },
  };
}

/** Polls /health every 10 ms: when it first answers, and when applied ≥ target. */
async function timeRecovery(
  address: string,
  t0: number,
  target: number,
  exited: Promise<unknown>,
  timeoutMs = 300_000,
): Promise<{ healthMs: number; appliedMs: number; last?: Health }> {
  let healthMs = Number.NaN;
  let dead = false;
  void exited.then(() => {
    dead = true;
  });
  let last: Health | undefined;
  while (performance.now() - t0 < timeoutMs && !dead) {
    const h = await health(address, 1000);
    const at = performance.now();
    if (h) {
      last = h;
      if (Number.isNaN(healthMs)) healthMs = at - t0;
      if (h.applied >= target) return { healthMs, appliedMs: at - t0, last };
    }
    await sleep(10);
  }
  throw new Error(`node did not recover to ${target} (last health ${JSON.stringify(last)}, exited ${dead})`);
}

// ---- a) a long log -------------------------------------------------------------------

interface LogDir {
  dir: string;
  port: number;
  args: string[];
  lastIndex: number;
  bytes: number;
  buildSecs: number;
}

async function buildLongLog(a: Args, root: string): Promise<LogDir> {
  const t0 = performance.now();
  const [port] = await freePorts(1);
  const dir = join(root, 'n1');
  const address = `127.0.0.1:${port}`;
  const args = [
    '--id',
    '1',
    '--listen',
    address,
    '--peers',
    `1=${address}`,
    '--data-dir',
    dir,
    '--snapshot-every',
    SNAPSHOT_NEVER,
    '--snapshot-bytes',
    SNAPSHOT_NEVER_BYTES,
    '--quiet',
  ];
  // Bootstrap for real, so the head of the log (conf change, leader's empty entry) is the node's own.
  const boot = spawnNode(args);
  for (;;) {
    const h = await health(address);
    if (h?.role === 'leader' && h.applied >= h.commit && h.commit > 0) break;
    if (performance.now() - t0 > 30_000) throw new Error(`bootstrap failed: ${boot.stderr()}`);
    await sleep(20);
  }
  await boot.stop();

  const ds = await DiskStorage.open(dir, { logger: silentLogger });
  const hs = { ...ds.recovered.hardState };
  let index = ds.recovered.lastIndex;
  const value = 'v'.repeat(a.valueBytes);
  const BATCH = 20_000;
  let seq = 0;
  while (index < a.entries) {
    const n = Math.min(BATCH, a.entries - index);
    const entries: Entry[] = new Array(n);
    for (let k = 0; k < n; k++) {
      index++;
      seq++;
      entries[k] = {
        term: hs.term,
        index,
        type: 'EntryNormal',
        data: encodeKvCommand({
          op: 'put',
          clientId: 'bench-recovery',
          seq,
          key: `key-${seq % 10_000}`,
          value,
        }),
      };
    }
    hs.commit = index;
    await ds.save({ hardState: { ...hs }, entries, mustSync: index >= a.entries });
  }
  await ds.close();
  return {
    dir,
    port: port!,
    args,
    lastIndex: index,
    bytes: dirBytes(dir),
    buildSecs: (performance.now() - t0) / 1000,
  };
}

interface PhaseTimes {
  walOpenMs: number;
  diskStorageOpenMs: number;
  rawNodeMs: number;
  applyMs: number;
  entries: number;
  heapMiB: number;
}

/**
 * The recovery path phase by phase, in a process of its own started as nodes are (with
 * glibc's huge-page tunable: in this process, without it, Wal.open took twice as long as
 * in the node) and fresh, so its heap is the recovery's alone.
 */
async function phasesInChild(dir: string): Promise<PhaseTimes> {
  const args = [...process.execArgv, fileURLToPath(import.meta.url), PHASES_FLAG, dir];
  const { text, exited } = spawnAsNode(args, 'stdout', 'inherit');
  const code = await exited;
  if (code !== 0) throw new Error(`the recovery phases' process exited with ${code}`);
  return JSON.parse(text()) as PhaseTimes;
}

/** Run as `recovery.ts --phases DIR` (by phasesInChild): prints phases(DIR) as JSON. */
const PHASES_FLAG = '--phases';

/** The recovery path in this process, phase by phase (mirrors startNode + RaftDriver). */
async function phases(dir: string): Promise<PhaseTimes> {
  const tW = performance.now();
  const { wal } = await Wal.open(join(dir, 'wal'), { logger: silentLogger });
  const walOpenMs = performance.now() - tW;
  await wal.close();

  const t0 = performance.now();
  const ds = await DiskStorage.open(dir, { logger: silentLogger });
  const t1 = performance.now();
  const rn = new RawNode({
    id: 1,
    electionTick: 10,
    heartbeatTick: 1,
    storage: ds.storage,
    applied: 0,
    maxSizePerMsg: 1 << 20,
    maxInflightMsgs: 256,
    maxUncommittedEntriesSize: 1 << 30,
  });
  const t2 = performance.now();
  // What the driver does with the committed entries: Ready → apply each → advance.
  const kv = new KvStore();
  let n = 0;
  while (rn.hasReady()) {
    const rd = rn.ready();
    for (const e of rd.committedEntries) {
      if (e.type === 'EntryNormal' && e.data.length > 0) kv.apply(e.index, e.data);
      n++;
    }
    rn.advance(rd);
  }
  const t3 = performance.now();
  const heapMiB = process.memoryUsage().heapUsed / 2 ** 20;
  await ds.close();
  return {
    walOpenMs,
    diskStorageOpenMs: t1 - t0,
    rawNodeMs: t2 - t1,
    applyMs: t3 - t2,
    entries: n,
    heapMiB,
  };
}

/** Self time by function from a .cpuprofile, top `n`. */
function summarizeProfile(file: string, n = 20): { fn: string; ms: number; pct: number }[] {
  const p = JSON.parse(readFileSync(file, 'utf8')) as {
    nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number } }[];
    samples: number[];
    timeDeltas: number[];
  };
  const byId = new Map(p.nodes.map((x) => [x.id, x.callFrame]));
  const self = new Map<string, number>();
  let total = 0;
  for (let i = 0; i < p.samples.length; i++) {
    const cf = byId.get(p.samples[i]!)!;
    const dt = (p.timeDeltas[i] ?? 0) / 1000;
    total += dt;
    const url = cf.url.replace(`file://${ROOT}/`, '');
    const key = `${cf.functionName || '(anonymous)'} ${url ? `${url}:${cf.lineNumber + 1}` : ''}`.trim();
    self.set(key, (self.get(key) ?? 0) + dt);
  }
  return [...self.entries()]
    .sort((x, y) => y[1] - x[1])
    .slice(0, n)
    .map(([fn, ms]) => ({ fn, ms, pct: (ms / total) * 100 }));
}

// ---- c) catch-up by snapshot ----------------------------------------------------------

interface CatchUp {
  puts: number;
  leaderSnapshotIndex: number;
  followerIndexWhenStopped: number;
  leaderCommit: number;
  healthMs: number;
  caughtUpMs: number;
  snapshotApplied: boolean;
  snapshotBytes: number;
  /** The longest event-loop stalls from the follower's restart to its being caught up (ms). */
  followerLagMaxMs: number;
  leaderLagMaxMs: number;
  /** Resident memory once caught up (MiB): the follower, and the leader holding the same state. */
  followerRssMiB: number;
  leaderRssMiB: number;
}

async function catchUpBySnapshot(a: Args): Promise<CatchUp> {
  const cluster = await TestCluster.create(3, {
    tickMs: 100,
    args: ['--snapshot-every', '2000', '--snapshot-catch-up', '500', '--quiet'],
  });
  try {
    for (const n of cluster.nodes) n.start();
    let leaderId = 0;
    for (const t0 = performance.now(); ; ) {
      const hs = await Promise.all(cluster.nodes.map((n) => health(n.address)));
      const l = hs.find((h) => h?.role === 'leader');
      if (l && hs.every((h) => h?.leader === l.id)) {
        leaderId = l.id;
        break;
      }
      if (performance.now() - t0 > 30_000) throw new Error('no leader');
      await sleep(50);
    }
    const leader = cluster.node(leaderId);
    const follower = cluster.nodes.find((n) => n.id !== leaderId)!;
    const followerIndex = (await health(follower.address))!.applied;
    await follower.kill('SIGKILL');

    // Puts over a fixed set of keys (the snapshot's size is set by --value-bytes).
    const live = cluster.nodes.filter((n) => n !== follower);
    const agent = keepAliveAgent(64);
    const load = new PutLoad({
      endpoints: live.map((n) => ({ host: n.host, port: n.port })),
      clients: 64,
      valueBytes: a.valueBytes,
      prefix: 'catchup',
      agent,
    });
    // PutLoad cycles 64 keys per client: 4,096 distinct keys of `valueBytes` each.
    while (load.stats().ok < a.catchupPuts) await sleep(100);
    const wrote = (await load.stop()).ok;
    agent.destroy();

    // Wait for the leader to have compacted past the follower.
    let snapIndex = 0;
    for (const t0 = performance.now(); ; ) {
      const st = await leader.status();
      snapIndex = st.snapshotIndex;
      if (st.firstIndex > followerIndex + 1) break;
      if (performance.now() - t0 > 30_000)
        throw new Error(`leader did not compact past ${followerIndex}: ${JSON.stringify(st)}`);
      await sleep(100);
    }
    const lh = (await health(leader.address))!;
    const snapDir = join(leader.dataDir, 'snap');
    const snapFiles = readdirSync(snapDir).filter((f) => f.endsWith('.snap'));
    const snapshotBytes = snapFiles.length > 0 ? statSync(join(snapDir, snapFiles.sort().at(-1)!)).size : 0;

    // A scrape starts the leader's lag window afresh: the next one covers the catch-up only.
    await leader.metrics();
    const t0 = performance.now();
    follower.start();
    const exited = new Promise<void>((r) => {
      const iv = setInterval(() => {
        if (follower.exited) {
          clearInterval(iv);
          r();
        }
      }, 50);
    });
    const r = await timeRecovery(follower.address, t0, lh.commit, exited, 120_000);
    const snapshotApplied = /applied snapshot at index/.test(follower.logFile());
    // Its first scrape: the lag window covers everything since the process started.
    const [fm, lm] = await Promise.all([follower.metrics(), leader.metrics()]);
    const lagMaxMs = (m: Map<string, number>) =>
      (m.get('nodejs_eventloop_lag_max_seconds') ?? Number.NaN) * 1000;
    const mib = (m: Map<string, number>) => (m.get('process_resident_memory_bytes') ?? Number.NaN) / 2 ** 20;
    return {
      puts: wrote,
      leaderSnapshotIndex: snapIndex,
      followerIndexWhenStopped: followerIndex,
      leaderCommit: lh.commit,
      healthMs: r.healthMs,
      caughtUpMs: r.appliedMs,
      snapshotApplied,
      snapshotBytes,
      followerLagMaxMs: lagMaxMs(fm),
      leaderLagMaxMs: lagMaxMs(lm),
      followerRssMiB: mib(fm),
      leaderRssMiB: mib(lm),
    };
  } finally {
    await killAll();
    rmSync(cluster.root, { recursive: true, force: true });
  }
}

// ---- driver ------------------------------------------------------------------------------

export async function main(argv: string[]): Promise<void> {
  const a = parseArgs(argv);
  const machine = machineInfo();
  console.log(`raftctl recovery benchmark — ${new Date().toISOString()}`);
  console.log(`machine: ${machine.cpu}, ${machine.cores} cores, ${machine.memGiB} GiB, ${machine.os}`);
  console.log(`node ${machine.node}, load average (1 min) at start: ${machine.load1}`);
  console.log(`${nodeLaunchLine(machine)}\n`);
  const out: Record<string, unknown> = {
    date: new Date().toISOString(),
    command: `npm run bench -- recovery${argv.length > 0 ? ` ${argv.join(' ')}` : ''}`,
    machine,
    args: a,
  };

  if (a.only !== 'snapshot') {
    const root = mkdtempSync(join(a.dir, 'raftctl-recovery-'));
    try {
      process.stderr.write(`  building a data dir with ${a.entries} entries …`);
      const log = await buildLongLog(a, root);
      process.stderr.write(` ${log.buildSecs.toFixed(1)} s\n`);
      console.log(
        `a) long log: ${log.lastIndex} entries (${a.valueBytes}-byte put values), data dir ${(log.bytes / 2 ** 20).toFixed(0)} MiB, ` +
          `built in ${log.buildSecs.toFixed(1)} s; node run with --snapshot-every ${SNAPSHOT_NEVER} --snapshot-bytes ${SNAPSHOT_NEVER_BYTES}`,
      );
      const runs: { healthMs: number; appliedMs: number; target: number }[] = [];
      let target = log.lastIndex;
      for (let r = 1; r <= a.runs; r++) {
        const n = spawnNode(log.args);
        const t = await timeRecovery(`127.0.0.1:${log.port}`, n.t0, target, n.exited);
        runs.push({ ...t, target });
        process.stderr.write(
          `  restart ${r}: /health after ${fmtMs(t.healthMs)}, applied ${target} after ${fmtMs(t.appliedMs)}\n`,
        );
        // Let it take leadership (one more entry in the log), then stop it cleanly.
        for (const t1 = performance.now(); performance.now() - t1 < 10_000; await sleep(20)) {
          const h = await health(`127.0.0.1:${log.port}`);
          if (h?.role === 'leader' && h.applied >= h.commit && h.commit > target) {
            target = h.commit;
            break;
          }
        }
        await n.stop();
      }
      console.log(
        table(
          ['restart', 'entries to apply', 'spawn → /health answers', 'spawn → applied index back'],
          runs.map((r, i) => [String(i + 1), String(r.target), fmtMs(r.healthMs), fmtMs(r.appliedMs)]),
        ),
      );
      const mh = median(runs.map((r) => r.healthMs));
      const ma = median(runs.map((r) => r.appliedMs));
      console.log(
        `median: /health ${fmtMs(mh)}, applied back ${fmtMs(ma)} — target < 3 s: ${ma < 3000 ? 'met' : 'MISSED'}\n`,
      );

      process.stderr.write('  in-process phases …\n');
      const ph: PhaseTimes[] = [];
      for (let r = 0; r < Math.min(3, a.runs); r++) ph.push(await phasesInChild(log.dir));
      const pm = (k: keyof PhaseTimes) => median(ph.map((p) => p[k]));
      console.log('b) the same recovery in one process started as a node is, by phase (median of runs):');
      console.log(
        table(
          ['phase', 'time', 'where'],
          [
            [
              'Wal.open (read + scan + decode segments)',
              fmtMs(pm('walOpenMs')),
              'src/server/storage/wal.ts Wal.open',
            ],
            [
              'DiskStorage.open (Wal.open + snapshot + rebuild the log storage)',
              fmtMs(pm('diskStorageOpenMs')),
              'src/server/storage/disk-storage.ts open/rebuild',
            ],
            ['new RawNode', fmtMs(pm('rawNodeMs')), 'src/raft/raft.ts constructor'],
            [
              `Ready → kv.apply × ${ph[0]!.entries} → advance`,
              fmtMs(pm('applyMs')),
              'src/server/kv.ts apply, src/raft/log.ts nextCommittedEnts',
            ],
          ],
        ),
      );
      console.log(`heap after recovery: ${pm('heapMiB').toFixed(0)} MiB\n`);

      let profile: { fn: string; ms: number; pct: number }[] | undefined;
      if (a.profile) {
        const profDir = join(root, 'prof');
        mkdirSync(profDir, { recursive: true });
        const n = spawnNode(log.args, profDir);
        const t = await timeRecovery(`127.0.0.1:${log.port}`, n.t0, target, n.exited);
        await n.stop();
        const file = readdirSync(profDir).find((f) => f.endsWith('.cpuprofile'));
        if (file) {
          profile = summarizeProfile(join(profDir, file));
          console.log(
            `profiled restart (--cpu-prof; applied back after ${fmtMs(t.appliedMs)}, slower under the profiler); self time, whole run:`,
          );
          console.log(
            table(
              ['function', 'self', '%'],
              profile.map((p) => [p.fn, fmtMs(p.ms), `${p.pct.toFixed(1)}%`]),
            ),
          );
          console.log('');
        }
      }
      out.longLog = { ...log, runs, median: { healthMs: mh, appliedMs: ma }, phases: ph, profile };
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  }

  if (a.only !== 'log') {
    process.stderr.write('  catch-up by snapshot …\n');
    const c = await catchUpBySnapshot(a);
    console.log(
      `c) catch-up by snapshot: follower stopped at applied ${c.followerIndexWhenStopped}; ${c.puts} puts of ${a.valueBytes}-byte ` +
        `values while it was down; leader snapshot at ${c.leaderSnapshotIndex} (${(c.snapshotBytes / 2 ** 20).toFixed(1)} MiB), ` +
        `commit ${c.leaderCommit}; nodes run with --snapshot-every 2000 --snapshot-catch-up 500`,
    );
    console.log(
      `   restart → /health ${fmtMs(c.healthMs)}, → applied ${c.leaderCommit} ${fmtMs(c.caughtUpMs)} ` +
        `(${c.snapshotApplied ? 'caught up by a snapshot from the leader' : 'NO snapshot was applied'})`,
    );
    console.log(
      `   longest event-loop stall meanwhile: follower ${fmtMs(c.followerLagMaxMs)}, leader ${fmtMs(c.leaderLagMaxMs)}; resident memory: ` +
        `follower ${c.followerRssMiB.toFixed(0)} MiB, leader ${c.leaderRssMiB.toFixed(0)} MiB`,
    );
    out.catchUp = c;
  }

  if (a.json) {
    out.loadAtEnd = Math.round(loadavg()[0]! * 100) / 100;
    const dir = join(dirname(fileURLToPath(import.meta.url)), 'results');
    mkdirSync(dir, { recursive: true });
    const file = join(dir, `recovery-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
    writeFileSync(file, `${JSON.stringify(out, null, 2)}\n`);
    console.log(`\nwrote ${file}`);
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url) && process.argv[2] === PHASES_FLAG) {
  process.stdout.write(JSON.stringify(await phases(process.argv[3]!)));
}
