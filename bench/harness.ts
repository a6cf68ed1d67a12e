// A small measuring harness: warm-up, then several timed repetitions of at least a
// minimum duration each, reported as the median with its spread. Each repetition runs
// on a fresh instance of the benchmark so that state grown by one (log length, heap)
// does not leak into the next; only the runner call itself is timed.
import { readFileSync } from 'node:fs';
import { cpus, loadavg, release, totalmem } from 'node:os';
import { nodeProcessEnv, transparentHugePageMode } from '../src/server/launch-env.js';
import { fullGc } from '../test/support/gc.js';

/** Performs n operations (or about n: returns how many it actually did). */
export type Runner = (n: number) => number;

export interface Bench {
  id: string;
  title: string;
  /** What one op is, for the table. */
  op: string;
  /** Go's figure on this machine in ns/op, as [low, high]; omitted when Go has no equivalent. */
  goNs?: [number, number];
  /** Builds a fresh instance (untimed) and returns the function to time. */
  make: () => Runner;
  /** Extra per-op figures of the last repetition (e.g. storage calls per op). */
  extras?: () => Record<string, number>;
}

export interface Options {
  /** Minimum duration of one repetition. */
  minMs: number;
  warmupMs: number;
  reps: number;
}

export interface Result {
  id: string;
  title: string;
  op: string;
  reps: { ops: number; ns: number; nsPerOp: number }[];
  medianNsPerOp: number;
  minNsPerOp: number;
  maxNsPerOp: number;
  /** (max − min) / median of the per-repetition ns/op, in percent. */
  spreadPct: number;
  opsPerSec: number;
  goNs?: [number, number];
  /** ours / Go (midpoint of Go's range): how many times slower. */
  ratioVsGo?: number;
}

/** Runs `run` in chunks until at least `minNs` have passed; returns [ops, ns]. */
function timeAtLeast(run: Runner, firstChunk: number, minNs: number): [number, number] {
  let ops = 0;
  let ns = 0;
  let chunk = Math.max(1, Math.round(firstChunk));
  while (ns < minNs) {
    const t0 = process.hrtime.bigint();
    ops += run(chunk);
    ns += Number(process.hrtime.bigint() - t0);
    // Aim the next chunk at what is left, from the rate seen so far.
    const left = minNs - ns;
    if (left > 0) chunk = Math.max(1, Math.ceil((left / (ns / ops)) * 1.05));
  }
  return [ops, ns];
}

export function measure(b: Bench, o: Options): Result {
  // Warm-up: grow the chunk until the JIT has settled and we know the rate.
  const warm = b.make();
  let n = 1;
  let ops = 0;
  let ns = 0;
  const warmNs = o.warmupMs * 1e6;
  while (ns < warmNs) {
    const t0 = process.hrtime.bigint();
    ops += warm(n);
    ns += Number(process.hrtime.bigint() - t0);
    n *= 2;
  }
  // The rate of the late chunks is the warmed-up one; the early ones are dominated by the JIT.
  let estNsPerOp = ns / ops;
  {
    const [o2, n2] = timeAtLeast(warm, Math.max(1, warmNs / 4 / estNsPerOp), warmNs / 4);
    estNsPerOp = n2 / o2;
  }

  const reps: Result['reps'] = [];
  for (let r = 0; r < o.reps; r++) {
    const run = b.make();
    fullGc();
    const minNs = o.minMs * 1e6;
    const [rOps, rNs] = timeAtLeast(run, minNs / estNsPerOp, minNs);
    reps.push({ ops: rOps, ns: rNs, nsPerOp: rNs / rOps });
  }
  const per = reps.map((r) => r.nsPerOp).sort((a, c) => a - c);
  const median =
    per.length % 2 === 1 ? per[per.length >> 1]! : (per[per.length / 2 - 1]! + per[per.length / 2]!) / 2;
  const res: Result = {
    id: b.id,
    title: b.title,
    op: b.op,
    reps,
    medianNsPerOp: median,
    minNsPerOp: per[0]!,
    maxNsPerOp: per[per.length - 1]!,
    spreadPct: ((per[per.length - 1]! - per[0]!) / median) * 100,
    opsPerSec: 1e9 / median,
  };
  if (b.goNs) {
    res.goNs = b.goNs;
    res.ratioVsGo = median / ((b.goNs[0] + b.goNs[1]) / 2);
  }
  return res;
}

export interface MachineInfo {
  cpu: string;
  cores: number;
  node: string;
  v8: string;
  os: string;
  memGiB: number;
  /** 1-minute load average when the run started: other work on the machine skews the figures. */
  load1: number;
  /** The kernel's transparent huge page mode (always, madvise, never), which decides what glibc's tunable does. */
  thp: string;
  /** GLIBC_TUNABLES the benchmark starts nodes with: `raftctl up`'s (src/server/launch-env.ts). */
  nodeTunables: string;
}

export function machineInfo(): MachineInfo {
  let cpu = cpus()[0]?.model ?? 'unknown';
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    if (m) cpu = m[1]!.trim();
  } catch {
    // Not Linux: os.cpus() has the model too.
  }
  return {
    cpu,
    cores: cpus().length,
    node: process.version,
    v8: process.versions.v8,
    os: `${process.platform} ${release()}`,
    memGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    load1: Math.round(loadavg()[0]! * 100) / 100,
    thp: transparentHugePageMode() ?? 'unknown',
    nodeTunables: nodeProcessEnv(process.env).GLIBC_TUNABLES ?? '',
  };
}

/** The header line saying how the benchmark starts nodes, and what that does on this machine. */
export function nodeLaunchLine(m: MachineInfo): string {
  return `nodes started as \`raftctl up\` starts them: GLIBC_TUNABLES=${m.nodeTunables} (transparent huge pages: ${m.thp})`;
}

/** 1234.5 ns → "1.23 µs", etc. */
export function fmtNs(ns: number): string {
  if (ns < 1e3) return `${ns.toFixed(ns < 10 ? 2 : 1)} ns`;
  if (ns < 1e6) return `${(ns / 1e3).toFixed(2)} µs`;
  return `${(ns / 1e6).toFixed(2)} ms`;
}

export function fmtRate(perSec: number): string {
  if (perSec >= 1e6) return `${(perSec / 1e6).toFixed(2)} M/s`;
  if (perSec >= 1e3) return `${(perSec / 1e3).toFixed(1)} k/s`;
  return `${perSec.toFixed(0)} /s`;
}

/** A plain-text table, columns padded to their widest cell. */
export function table(head: string[], rows: string[][]): string {
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(w[i]!)).join('  ');
  return [line(head), line(w.map((n) => '-'.repeat(n))), ...rows.map(line)].join('\n');
}

/** How every suite is called; printed with any UsageError. */
const USAGE =
  'usage: npm run bench -- core [--reps N] [--min-ms MS] [--warmup-ms MS] [--filter TEXT] [--no-json]\n' +
  '       npm run bench -- cluster [--secs S] [--warmup-secs 1] [--nodes 3,5] [--clients 1,16,256,1024] [--ops put,get,sget]\n' +
  '                                [--keys N] [--tick-ms MS] [--dir DIR] [--node-args "FLAGS"] [--conns route|spread|leader]\n' +
  '                                [--profile | --profile-only] [--no-json]\n' +
  '       npm run bench -- failover [--runs 5] [--clients 16] [--warmup-ms MS] [--tick-ms 100] [--election-ticks 10]\n' +
  '       npm run bench -- recovery [--entries 1000000] [--value-bytes 256] [--runs 3] [--catchup-puts 10000]\n' +
  '                                 [--dir DIR] [--profile] [--only log|snapshot] [--no-json]\n' +
  '       npm run bench -- peers [--only gateway|core] [--secs 5] [--warmup-secs 1] [--clients 1,16,64,256] [--no-etcd] [--no-json]\n' +
  '       npm run bench -- console [--seconds S] [--nodes 5] [--rates 1000,20000] [--filter TEXT] [--max-fps N]\n' +
  '                                [--columns 120] [--rows 40] [--incremental] [--store-only] [--json] [--no-save]';

/** Prints how every suite is called (`npm run bench -- --help`). */
export function printUsage(): void {
  console.log(USAGE);
}

/** A flag a suite does not know, or a value it cannot use: reported with the usage, not as a crash. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/**
 * Runs a suite; a UsageError, or node:util parseArgs's refusal of a flag, ends it with the
 * message, the usage and exit code 2 instead of a stack trace.
 */
export async function runSuite(run: () => Promise<unknown>): Promise<void> {
  try {
    await run();
  } catch (err) {
    exitOnUsageError(err);
  }
}

/** The same for a suite that parses its flags at the top level (console.ts). */
export function parseFlags<T>(parse: () => T): T {
  try {
    return parse();
  } catch (err) {
    exitOnUsageError(err);
  }
}

function exitOnUsageError(err: unknown): never {
  const code = (err as { code?: unknown } | null)?.code;
  const usage = err instanceof UsageError || (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS_'));
  if (!usage) throw err;
  console.error(`bench: ${(err as Error).message}\n\n${USAGE}`);
  process.exit(2);
}
