// Failover benchmark: a 3-node cluster of real `raftctl node` processes with the default
// timings (100 ms ticks, election after 10 ticks, pre-vote and check-quorum on), a steady
// put load through the etcd JSON gateway, then kill -9 of the leader (or, with --signal
// SIGTERM, a graceful stop, in which the leader hands leadership on first). Measured from
// the signal:
//   - new leader: the first time a survivor's /health says it is leader (survivors are
//     polled every 10 ms);
//   - first acknowledged write: the first put sent after the kill that got a 200.
// The killed node is restarted (and caught up) between runs. Median and spread over runs.
// Usage: npm run build && npm run bench -- failover [--runs 5] [--clients 16] [--warmup-ms 2000]
//        [--tick-ms 100] [--election-ticks 10] [--signal SIGKILL|SIGTERM] [--no-json]
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { type Health, killAll, type NodeProc, TestCluster } from '../test/e2e/harness.js';
import { machineInfo, nodeLaunchLine, table, UsageError } from './harness.js';
import { keepAliveAgent, median, PutLoad, sleep } from './load.js';

interface Args {
  runs: number;
  clients: number;
  warmupMs: number;
  tickMs: number;
  electionTicks: number;
  /** SIGKILL: a crash; SIGTERM: a graceful stop (leadership handed on first). */
  signal: 'SIGKILL' | 'SIGTERM';
  json: boolean;
}

function parseArgs(argv: string[]): Args {
  const a: Args = {
    runs: 5,
    clients: 16,
    warmupMs: 2000,
    tickMs: 100,
    electionTicks: 10,
    signal: 'SIGKILL',
    json: true,
  };
  for (let i = 0; i < argv.length; i++) {
    const f = argv[i]!;
    if (f === '--no-json') {
      a.json = false;
      continue;
    }
    if (f === '--signal') {
      const sig = argv[++i];
      if (sig !== 'SIGKILL' && sig !== 'SIGTERM')
        throw new UsageError(`--signal takes SIGKILL or SIGTERM, not ${sig}`);
      a.signal = sig;
      continue;
    }
    const v = Number(argv[++i]);
    if (!Number.isFinite(v) || v <= 0) throw new UsageError(`${f} needs a positive number`);
    if (f === '--runs') a.runs = Math.round(v);
    else if (f === '--clients') a.clients = Math.round(v);
    else if (f === '--warmup-ms') a.warmupMs = v;
    else if (f === '--tick-ms') a.tickMs = v;
    else if (f === '--election-ticks') a.electionTicks = Math.round(v);
    else throw new UsageError(`unknown flag ${f}`);
  }
  return a;
}

async function health(n: NodeProc, timeoutMs = 500): Promise<Health | undefined> {
  try {
    const res = await fetch(`http://${n.address}/health`, { signal: AbortSignal.timeout(timeoutMs) });
    return (await res.json()) as Health;
  } catch {
    return undefined;
  }
}

/** Waits until every running node agrees on one leader and has applied its commit index. */
async function settled(nodes: NodeProc[], timeoutMs = 30_000): Promise<{ leader: NodeProc; term: number }> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const hs = await Promise.all(nodes.map((n) => health(n)));
    const lead = hs[0]?.leader;
    const leaderNode = nodes.find((n) => n.id === lead);
    const leaderH = hs[nodes.findIndex((n) => n.id === lead)];
    if (
      lead &&
      leaderNode &&
      leaderH?.role === 'leader' &&
      hs.every((h) => h && h.leader === lead && h.health === 'ok' && h.applied >= leaderH.commit - 1000)
    ) {
      return { leader: leaderNode, term: leaderH.term };
    }
    if (performance.now() > deadline) throw new Error(`cluster did not settle: ${JSON.stringify(hs)}`);
    await sleep(50);
  }
}

interface RunResult {
  run: number;
  killed: number;
  newLeader: number;
  oldTerm: number;
  newTerm: number;
  leaderMs: number;
  firstAckMs: number;
  /** First 200 received after the kill whatever its send time (may be an in-flight put). */
  anyAckMs: number;
  putsBefore: number;
}

export async function main(argv: string[]): Promise<void> {
  const args = parseArgs(argv);
  const machine = machineInfo();
  console.log(`raftctl failover benchmark — ${new Date().toISOString()}`);
  console.log(`machine: ${machine.cpu}, ${machine.cores} cores, ${machine.memGiB} GiB, ${machine.os}`);
  console.log(`node ${machine.node}, load average (1 min) at start: ${machine.load1}`);
  console.log(nodeLaunchLine(machine));
  console.log(
    `3 nodes, --tick-ms ${args.tickMs} --election-ticks ${args.electionTicks} (pre-vote, check-quorum on), ` +
      `${args.clients} put clients (256-byte values), ${args.runs} × ${args.signal} to the leader` +
      `${args.signal === 'SIGTERM' ? ' (a graceful stop)' : ' (a crash)'}\n`,
  );

  const cluster = await TestCluster.create(3, {
    tickMs: args.tickMs,
    args: ['--election-ticks', String(args.electionTicks)],
  });
  const results: RunResult[] = [];
  try {
    for (const n of cluster.nodes) n.start();
    for (let run = 1; run <= args.runs; run++) {
      const { leader, term } = await settled(cluster.nodes);
      const survivors = cluster.nodes.filter((n) => n !== leader);
      const agent = keepAliveAgent(args.clients);
      let tKill = Number.POSITIVE_INFINITY;
      let firstAck = Number.NaN;
      let anyAck = Number.NaN;
      const load = new PutLoad({
        endpoints: cluster.nodes.map((n) => ({ host: n.host, port: n.port })),
        clients: args.clients,
        valueBytes: 256,
        prefix: `failover/r${run}`,
        agent,
        timeoutMs: 10_000,
        onReply: (_c, sentAt, at, r) => {
          if (r.status !== 200 || at < tKill) return;
          if (Number.isNaN(anyAck)) anyAck = at - tKill;
          if (sentAt >= tKill && Number.isNaN(firstAck)) firstAck = at - tKill;
        },
      });
      await sleep(args.warmupMs);
      const before = load.stats();
      if (before.ok === 0) throw new Error(`no put succeeded during the warm-up: ${before.errorSamples}`);

      tKill = performance.now();
      const killed = leader.kill(args.signal);
      let leaderMs = Number.NaN;
      let newLeader = 0;
      let newTerm = 0;
      const deadline = tKill + 20_000;
      while (performance.now() < deadline && (Number.isNaN(leaderMs) || Number.isNaN(firstAck))) {
        if (Number.isNaN(leaderMs)) {
          const hs = await Promise.all(survivors.map((n) => health(n, 200)));
          const at = performance.now();
          const h = hs.find((x) => x?.role === 'leader' && x.term > term);
          if (h) {
            leaderMs = at - tKill;
            newLeader = h.id;
            newTerm = h.term;
          }
        }
        await sleep(10);
      }
      await killed;
      await load.stop();
      agent.destroy();
      const r: RunResult = {
        run,
        killed: leader.id,
        newLeader,
        oldTerm: term,
        newTerm,
        leaderMs,
        firstAckMs: firstAck,
        anyAckMs: anyAck,
        putsBefore: Math.round(before.opsPerSec),
      };
      results.push(r);
      process.stderr.write(
        `  run ${run}: ${args.signal} to ${r.killed} (term ${term}) → leader ${newLeader} (term ${newTerm}) after ${leaderMs.toFixed(0)} ms, first ack ${firstAck.toFixed(0)} ms\n`,
      );
      // Bring the killed node back for the next run.
      leader.start();
    }
    await settled(cluster.nodes).catch(() => undefined);
  } finally {
    await killAll();
  }

  const rows = results.map((r) => [
    String(r.run),
    `${r.killed} (t${r.oldTerm})`,
    `${r.newLeader} (t${r.newTerm})`,
    `${r.leaderMs.toFixed(0)} ms`,
    `${r.firstAckMs.toFixed(0)} ms`,
    `${r.anyAckMs.toFixed(0)} ms`,
    `${r.putsBefore}`,
  ]);
  console.log(
    table(
      ['run', 'killed', 'new leader', 'leader after', 'first ack after', 'any ack after', 'puts/s before'],
      rows,
    ),
  );
  const summary = (xs: number[]) => {
    const ok = xs.filter((x) => !Number.isNaN(x));
    return { median: median(ok), min: Math.min(...ok), max: Math.max(...ok), n: ok.length };
  };
  const lead = summary(results.map((r) => r.leaderMs));
  const ack = summary(results.map((r) => r.firstAckMs));
  const line = (name: string, s: ReturnType<typeof summary>) =>
    `${name}: median ${s.median.toFixed(0)} ms, min ${s.min.toFixed(0)} ms, max ${s.max.toFixed(0)} ms (${s.n}/${results.length} runs)`;
  console.log(`\n${line('new leader', lead)}`);
  console.log(line('first acknowledged write', ack));
  const within = results.filter((r) => r.leaderMs <= 1500).length;
  console.log(
    `target: new leader within 1.5 s — ${within}/${results.length} runs met it (median ${lead.median <= 1500 ? 'meets' : 'misses'} it)`,
  );

  if (args.json) {
    const dir = join(dirname(fileURLToPath(import.meta.url)), 'results');
    mkdirSync(dir, { recursive: true });
    const file = join(dir, `failover-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
    const out = {
      date: new Date().toISOString(),
      command: `npm run bench -- failover${argv.length > 0 ? ` ${argv.join(' ')}` : ''}`,
      machine,
      loadAtEnd: Math.round(loadavg()[0]! * 100) / 100,
      args,
      results,
      summary: { newLeader: lead, firstAck: ack },
    };
    writeFileSync(file, `${JSON.stringify(out, null, 2)}\n`);
    console.log(`\nwrote ${file}`);
  }
  rmSync(cluster.root, { recursive: true, force: true });
}
