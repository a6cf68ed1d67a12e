// Core (in-process) benchmarks of the Raft library, with etcd's Go figures on the same
// machine next to ours:
//   a) proposals committed per second in a 3-node in-process cluster, one proposal per
//      round and 64 per round;
//   b) the shape of etcd's BenchmarkRawNode (one node; followers' acks synthesized);
//   c) RawNode.status() with 3 members;
//   d) MajorityConfig.committedIndex for 1..11 voters.
// Usage: npm run bench:core -- [--reps N] [--min-ms MS] [--warmup-ms MS] [--filter TEXT] [--no-json]

import { mkdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { MajorityConfig } from '../src/raft/quorum.js';
import { RawNode, type Ready } from '../src/raft/rawnode.js';
import { MemoryStorage } from '../src/raft/storage.js';
import { type Message, message } from '../src/raft/types.js';
import { mulberry32 } from '../test/support/random.js';
import {
  type Bench,
  fmtNs,
  fmtRate,
  machineInfo,
  measure,
  type Options,
  type Result,
  runSuite,
  table,
  UsageError,
} from './harness.js';

/** etcd's benchmarks propose "foo"; so do we. */
const PAYLOAD = new TextEncoder().encode('foo');
const BATCH = 64;
/** The cluster host compacts its storage this often (in entries), as a real host would. */
const COMPACT_EVERY = 8192;

/** Results are written somewhere so the JIT cannot drop the work that produced them. */
let sink = 0;

/** A MemoryStorage whose voters are set in its (empty) snapshot, like etcd's withPeers(). */
function storageWithVoters<S extends MemoryStorage>(s: S, voters: number[]): S {
  s.snap.metadata.confState.voters = [...voters];
  return s;
}

function ids(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i + 1);
}

// ---- a) in-process cluster ---------------------------------------------------------

/**
 * n RawNodes wired together in memory, each with its own MemoryStorage, driven the way
 * a synchronous host drives them: for each Ready, persist (snapshot, HardState,
 * entries), hand the messages to the peers' inboxes, apply the committed entries,
 * advance. Messages are passed by reference (no encoding).
 */
class Cluster {
  readonly nodes: RawNode[] = [];
  readonly storages: MemoryStorage[] = [];
  readonly inbox: Message[][] = [];
  readonly applied: number[] = [];
  private sinceCompact = 0;

  constructor(n: number) {
    for (const id of ids(n)) {
      const storage = storageWithVoters(new MemoryStorage(), ids(n));
      this.storages.push(storage);
      this.nodes.push(new RawNode({ id, electionTick: 10, heartbeatTick: 1, storage, random: () => 0 }));
      this.inbox.push([]);
      this.applied.push(0);
    }
    this.nodes[0]!.campaign();
    this.stabilize();
    if (this.nodes[0]!.raft.state !== 'StateLeader') throw new Error('node 1 did not become leader');
  }

  /** Processes inboxes and Readys until no node has anything left to do. */
  stabilize(): void {
    let busy = true;
    while (busy) {
      busy = false;
      for (let i = 0; i < this.nodes.length; i++) {
        const node = this.nodes[i]!;
        const box = this.inbox[i]!;
        if (box.length > 0) {
          // Stepping only fills the node's own outbox, never this inbox.
          for (let k = 0; k < box.length; k++) node.step(box[k]!);
          box.length = 0;
          busy = true;
        }
        if (node.hasReady()) {
          this.handleReady(i, node.ready());
          node.advance();
          busy = true;
        }
      }
    }
  }

  private handleReady(i: number, rd: Ready): void {
    const s = this.storages[i]!;
    if (rd.snapshot) s.applySnapshot(rd.snapshot);
    if (rd.hardState) s.setHardState(rd.hardState);
    if (rd.entries.length > 0) s.append(rd.entries);
    for (const m of rd.messages) this.inbox[m.to - 1]!.push(m);
    const ce = rd.committedEntries;
    if (ce.length > 0) this.applied[i] = ce[ce.length - 1]!.index;
  }

  propose(): void {
    this.nodes[0]!.propose(PAYLOAD);
  }

  /** Checks that every node applied up to `index`, then compacts storage now and then. */
  settled(index: number, proposals: number): void {
    for (let i = 0; i < this.nodes.length; i++) {
      if (this.applied[i] !== index)
        throw new Error(`node ${i + 1} applied ${this.applied[i]}, want ${index}`);
    }
    this.sinceCompact += proposals;
    if (this.sinceCompact >= COMPACT_EVERY) {
      this.sinceCompact = 0;
      // Keep a short tail; every node is caught up, so no one will need a snapshot.
      for (let i = 0; i < this.storages.length; i++) this.storages[i]!.compact(this.applied[i]! - 64);
    }
  }

  leaderLastIndex(): number {
    return this.nodes[0]!.raft.raftLog.lastIndex();
  }
}

function clusterBench(perRound: number): Bench {
  return {
    id: perRound === 1 ? 'cluster3/propose-1' : `cluster3/propose-batch-${perRound}`,
    title:
      perRound === 1
        ? '3-node cluster, 1 proposal per round'
        : `3-node cluster, ${perRound} proposals per Ready round`,
    op: 'proposal committed+applied on all 3',
    make: () => {
      const c = new Cluster(3);
      return (n) => {
        const rounds = Math.max(1, Math.ceil(n / perRound));
        for (let r = 0; r < rounds; r++) {
          for (let k = 0; k < perRound; k++) c.propose();
          c.stabilize();
          c.settled(c.leaderLastIndex(), perRound);
        }
        return rounds * perRound;
      };
    },
  };
}

// ---- b) etcd's BenchmarkRawNode shape -------------------------------------------------

/** Counts the storage calls, as etcd's benchmark reports them per op. */
class CountingStorage extends MemoryStorage {
  calls = { firstIndex: 0, lastIndex: 0, term: 0 };
  override firstIndex(): number {
    this.calls.firstIndex++;
    return super.firstIndex();
  }
  override lastIndex(): number {
    this.calls.lastIndex++;
    return super.lastIndex();
  }
  override term(i: number): number {
    this.calls.term++;
    return super.term(i);
  }
}

function rawNodeBench(voters: number, goNs: [number, number]): Bench {
  let last: { s: CountingStorage; readies: number; ops: number } | undefined;
  return {
    id: `rawnode/${voters === 1 ? 'single-voter' : `${voters}-voters`}`,
    title: `etcd BenchmarkRawNode shape, ${voters} voter${voters === 1 ? '' : 's'}`,
    op: 'propose → Ready/append/ack/advance until applied',
    goNs,
    make: () => {
      const s = storageWithVoters(new CountingStorage(), ids(voters));
      const rn = new RawNode({ id: 1, electionTick: 10, heartbeatTick: 1, storage: s, random: () => 0 });
      const st = { s, readies: 0, ops: 0 };
      // Synthesized followers: they grant every vote and acknowledge every append in full.
      const stabilize = (): number => {
        let applied = 0;
        while (rn.hasReady()) {
          st.readies++;
          const rd = rn.ready();
          const ce = rd.committedEntries;
          if (ce.length > 0) applied = ce[ce.length - 1]!.index;
          s.append(rd.entries);
          for (const m of rd.messages) {
            if (m.type === 'MsgVote') {
              rn.step(message({ type: 'MsgVoteResp', to: m.from, from: m.to, term: m.term }));
            } else if (m.type === 'MsgApp') {
              const n = m.entries.length;
              const index = n > 0 ? m.entries[n - 1]!.index : m.index;
              rn.step(message({ type: 'MsgAppResp', to: m.from, from: m.to, term: m.term, index }));
            }
          }
          rn.advance(rd);
        }
        return applied;
      };
      rn.campaign();
      stabilize();
      if (rn.raft.state !== 'StateLeader') throw new Error('node 1 did not become leader');
      s.calls = { firstIndex: 0, lastIndex: 0, term: 0 };
      st.readies = 0;
      last = st;
      return (n) => {
        let applied = 0;
        for (let i = 0; i < n; i++) {
          rn.propose(PAYLOAD);
          applied = stabilize();
        }
        if (applied !== rn.raft.raftLog.lastIndex())
          throw new Error(`applied ${applied} of ${rn.raft.raftLog.lastIndex()}`);
        st.ops += n;
        return n;
      };
    },
    extras: (): Record<string, number> =>
      last === undefined
        ? {}
        : {
            'ready/op': last.readies / last.ops,
            'firstIndex/op': last.s.calls.firstIndex / last.ops,
            'lastIndex/op': last.s.calls.lastIndex / last.ops,
            'term/op': last.s.calls.term / last.ops,
          },
  };
}

// ---- c) status() -------------------------------------------------------------------------

function statusBench(members: number, goNs: [number, number]): Bench {
  return {
    id: `status/members-${members}`,
    title: `RawNode.status(), ${members} members (leader)`,
    op: 'status()',
    goNs,
    make: () => {
      const storage = storageWithVoters(new MemoryStorage(), ids(members));
      const rn = new RawNode({ id: 1, electionTick: 3, heartbeatTick: 1, storage, random: () => 0 });
      // As etcd's BenchmarkStatus: force leadership without any messages.
      rn.raft.becomeFollower(1, 1);
      rn.raft.becomeCandidate();
      rn.raft.becomeLeader();
      return (n) => {
        let acc = 0;
        for (let i = 0; i < n; i++) acc += rn.status().progress!.size;
        sink += acc;
        return n;
      };
    },
  };
}

// ---- d) quorum committed index -------------------------------------------------------------

function quorumBench(voters: number): Bench {
  const b: Bench = {
    id: `quorum/committed-index-${voters}`,
    title: `MajorityConfig.committedIndex, ${voters} voter${voters === 1 ? '' : 's'}`,
    op: 'committedIndex()',
    make: () => {
      const rnd = mulberry32(voters);
      const cfg = new MajorityConfig(ids(voters));
      // Like etcd's mapAckIndexer: a map lookup per voter, random indexes.
      const acked = new Map<number, number>();
      for (const id of ids(voters)) acked.set(id, Math.floor(rnd() * Number.MAX_SAFE_INTEGER));
      const indexer = (id: number): number | undefined => acked.get(id);
      return (n) => {
        let acc = 0;
        for (let i = 0; i < n; i++) acc += cfg.committedIndex(indexer);
        sink += acc;
        return n;
      };
    },
  };
  if (voters === 3) b.goNs = [150, 150];
  return b;
}

export function allBenches(): Bench[] {
  return [
    clusterBench(1),
    clusterBench(BATCH),
    rawNodeBench(1, [2600, 2600]),
    rawNodeBench(2, [3800, 4300]),
    statusBench(3, [1200, 1500]),
    ...ids(11).map(quorumBench),
  ];
}

// ---- driver --------------------------------------------------------------------------------

interface Args extends Options {
  filter: string | undefined;
  json: boolean;
}

function parseArgs(argv: string[]): Args {
  const a: Args = { reps: 5, minMs: 1000, warmupMs: 500, filter: undefined, json: true };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    const num = (): number => {
      const v = Number(argv[++i]);
      if (!Number.isFinite(v) || v <= 0) throw new UsageError(`${flag} needs a positive number`);
      return v;
    };
    if (flag === '--reps') a.reps = Math.round(num());
    else if (flag === '--min-ms') a.minMs = num();
    else if (flag === '--warmup-ms') a.warmupMs = num();
    else if (flag === '--filter') a.filter = argv[++i];
    else if (flag === '--no-json') a.json = false;
    else throw new UsageError(`unknown flag ${flag}`);
  }
  return a;
}

function goCell(r: Result): [string, string] {
  if (!r.goNs) return ['—', '—'];
  const [lo, hi] = r.goNs;
  const go = lo === hi ? fmtNs(lo) : `${fmtNs(lo)}–${fmtNs(hi)}`;
  return [go, `${r.ratioVsGo!.toFixed(2)}×`];
}

export async function main(argv: string[]): Promise<void> {
  const args = parseArgs(argv);
  const machine = machineInfo();
  const command = `npm run bench:core${argv.length > 0 ? ` -- ${argv.join(' ')}` : ''}`;
  console.log(`raftctl core benchmarks — ${new Date().toISOString()}`);
  console.log(`machine: ${machine.cpu}, ${machine.cores} cores, ${machine.memGiB} GiB, ${machine.os}`);
  console.log(`node ${machine.node} (V8 ${machine.v8}), load average (1 min) at start: ${machine.load1}`);
  console.log(
    `per measurement: ${args.warmupMs} ms warm-up, then ${args.reps} repetitions of ≥ ${args.minMs} ms (median, spread = (max−min)/median)\n`,
  );

  const benches = allBenches().filter((b) => args.filter === undefined || b.id.includes(args.filter));
  const results: (Result & { extras?: Record<string, number> })[] = [];
  for (const b of benches) {
    process.stderr.write(`  ${b.id} …`);
    const r: Result & { extras?: Record<string, number> } = measure(b, args);
    if (b.extras) r.extras = b.extras();
    results.push(r);
    process.stderr.write(` ${fmtNs(r.medianNsPerOp)}/op\n`);
  }

  const rows = results.map((r) => {
    const [go, ratio] = goCell(r);
    return [r.id, fmtNs(r.medianNsPerOp), fmtRate(r.opsPerSec), `${r.spreadPct.toFixed(1)}%`, go, ratio];
  });
  console.log(table(['benchmark', 'median/op', 'ops/s', 'spread', 'Go/op', 'ours/Go'], rows));
  for (const r of results) {
    if (r.extras && Object.keys(r.extras).length > 0) {
      const e = Object.entries(r.extras)
        .map(([k, v]) => `${k}=${v.toFixed(2)}`)
        .join(' ');
      console.log(`  ${r.id}: ${e}`);
    }
  }
  console.log(
    '\nGo figures: etcd raft on this machine (BenchmarkRawNode, BenchmarkStatus, BenchmarkMajorityConfig_CommittedIndex).',
  );
  console.log("The 3-node cluster figures have no Go counterpart in etcd's benchmarks.");

  if (args.json) {
    const dir = join(dirname(fileURLToPath(import.meta.url)), 'results');
    mkdirSync(dir, { recursive: true });
    const stamp = new Date().toISOString().replace(/[:.]/g, '-');
    const file = join(dir, `core-${stamp}.json`);
    const out = {
      date: new Date().toISOString(),
      command,
      machine,
      loadAtEnd: Math.round(loadavg()[0]! * 100) / 100,
      options: args,
      results,
      sink,
    };
    writeFileSync(file, `${JSON.stringify(out, null, 2)}\n`);
    console.log(`\nwrote ${file}`);
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await runSuite(() => main(process.argv.slice(2)));
}
