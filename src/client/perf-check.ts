// `raftctl check perf`: a paced put load against a running cluster, and a verdict on it —
// does the cluster take the rate asked of it, how slow are its slowest writes — for an
// operator checking a deployment's disks and network (as `etcdctl check perf` is used).
// The writes go where the cluster client sends them (the leader), to keys under a prefix of
// the run's own, which the check reads first (it refuses to overwrite anything) and
// deletes afterwards.
import type { CommandArgs, CommandValue } from '../protocol/control.js';

/** A named load: how many clients write, and the puts per second they are paced to in all. */
export interface PerfLoad {
  clients: number;
  rate: number;
}

export const PERF_LOADS = {
  s: { clients: 50, rate: 1_000 },
  m: { clients: 200, rate: 5_000 },
  l: { clients: 500, rate: 20_000 },
  xl: { clients: 1_000, rate: 50_000 },
} as const satisfies Record<string, PerfLoad>;

export type PerfLoadName = keyof typeof PERF_LOADS;

/** What a run must show to pass. */
export const PERF_LIMITS = {
  /** Puts per second achieved, as a fraction of the rate asked for. */
  minRateFraction: 0.9,
  p99Ms: 100,
  slowestMs: 500,
} as const;

/** Keys each client cycles through: what the check writes, reads first and deletes after. */
export const PERF_KEYS_PER_CLIENT = 8;
export const PERF_VALUE_BYTES = 256;

/** The commands the check sends (a ClusterClient has them). */
export interface PerfTarget {
  command(name: 'put', args: CommandArgs<'put'>): Promise<CommandValue<'put'>>;
  command(name: 'get', args: CommandArgs<'get'>): Promise<CommandValue<'get'>>;
  command(name: 'delete', args: CommandArgs<'delete'>): Promise<CommandValue<'delete'>>;
}

export interface PerfRunOptions extends PerfLoad {
  durationMs: number;
  prefix: string;
  /** Stops the run early (its figures cover what was done). */
  signal?: AbortSignal;
  /** Called about once a second with the figures so far. */
  onProgress?: (p: PerfProgress) => void;
}

export interface PerfProgress {
  elapsedMs: number;
  ok: number;
  errors: number;
}

export interface PerfResult {
  clients: number;
  rate: number;
  durationMs: number;
  ok: number;
  errors: number;
  /** Up to five distinct error messages. */
  errorSamples: string[];
  opsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  slowestMs: number;
}

export interface PerfCheck {
  name: 'throughput' | 'p99 latency' | 'slowest put' | 'errors';
  measured: number;
  limit: number;
  pass: boolean;
}

/** The key client `c` writes in its `k`-th slot. */
export function perfKey(prefix: string, c: number, k: number): string {
  return `${prefix}${c}/${k}`;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Runs `work` on every item with at most `limit` in flight; rejects with the first failure. */
async function eachLimited<T>(
  items: readonly T[],
  limit: number,
  work: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await work(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

function allKeys(prefix: string, clients: number): string[] {
  const keys: string[] = [];
  for (let c = 0; c < clients; c++)
    for (let k = 0; k < PERF_KEYS_PER_CLIENT; k++) keys.push(perfKey(prefix, c, k));
  return keys;
}

/** The keys under `prefix` the run would write that already hold a value (the check must not touch them). */
export async function perfKeysInUse(target: PerfTarget, prefix: string, clients: number): Promise<string[]> {
  const used: string[] = [];
  await eachLimited(allKeys(prefix, clients), 64, async (key) => {
    const r = (await target.command('get', { key })) as { found?: boolean };
    if (r.found) used.push(key);
  });
  return used;
}

/** Deletes every key the run may have written. */
export async function removePerfKeys(target: PerfTarget, prefix: string, clients: number): Promise<void> {
  await eachLimited(allKeys(prefix, clients), 64, async (key) => {
    await target.command('delete', { key, prevKv: false });
  });
}

/**
 * Puts paced to `rate` a second in all: the n-th put is due at start + n / rate, and a client
 * sends its next put when it is due (at once, if the cluster has fallen behind: the figures
 * then show the rate it could take). Each put's latency runs from its send to its answer.
 */
export async function runPerfLoad(target: PerfTarget, o: PerfRunOptions): Promise<PerfResult> {
  const value = 'v'.repeat(PERF_VALUE_BYTES);
  const latencies: number[] = [];
  const errorSamples = new Set<string>();
  let errors = 0;
  let issued = 0;
  const start = performance.now();
  const end = start + o.durationMs;
  const interval = 1000 / o.rate;
  const stopped = () => o.signal?.aborted === true;
  const progress = o.onProgress
    ? setInterval(
        () => o.onProgress!({ elapsedMs: performance.now() - start, ok: latencies.length, errors }),
        1000,
      )
    : undefined;
  const client = async (c: number) => {
    for (let k = 0; ; k++) {
      const due = start + issued++ * interval;
      // A cluster that cannot keep up does not stretch the run: it ends on time, short of puts.
      if (due >= end || performance.now() >= end || stopped()) return;
      const wait = due - performance.now();
      if (wait >= 1) await sleep(wait);
      if (stopped()) return;
      const sentAt = performance.now();
      try {
        await target.command('put', {
          key: perfKey(o.prefix, c, k % PERF_KEYS_PER_CLIENT),
          value,
          prevKv: false,
        });
        latencies.push(performance.now() - sentAt);
      } catch (err) {
        errors++;
        if (errorSamples.size < 5) errorSamples.add(err instanceof Error ? err.message : String(err));
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: o.clients }, (_, c) => client(c)));
  } finally {
    if (progress) clearInterval(progress);
  }
  const durationMs = performance.now() - start;
  const sorted = Float64Array.from(latencies).sort();
  const at = (p: number) =>
    sorted.length === 0 ? Number.NaN : sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
  return {
    clients: o.clients,
    rate: o.rate,
    durationMs,
    ok: latencies.length,
    errors,
    errorSamples: [...errorSamples],
    opsPerSec: latencies.length / (durationMs / 1000),
    p50Ms: at(0.5),
    p99Ms: at(0.99),
    slowestMs: sorted.length === 0 ? Number.NaN : sorted[sorted.length - 1]!,
  };
}

/** The checks a run passes or fails (a run that completed no put fails every latency check). */
export function judgePerf(r: PerfResult): PerfCheck[] {
  const minRate = r.rate * PERF_LIMITS.minRateFraction;
  return [
    { name: 'throughput', measured: r.opsPerSec, limit: minRate, pass: r.opsPerSec >= minRate },
    { name: 'p99 latency', measured: r.p99Ms, limit: PERF_LIMITS.p99Ms, pass: r.p99Ms <= PERF_LIMITS.p99Ms },
    {
      name: 'slowest put',
      measured: r.slowestMs,
      limit: PERF_LIMITS.slowestMs,
      pass: r.slowestMs <= PERF_LIMITS.slowestMs,
    },
    { name: 'errors', measured: r.errors, limit: 0, pass: r.errors === 0 },
  ];
}
