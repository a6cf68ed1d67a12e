// The perf check's load and verdict, against a stand-in cluster whose answers the test
// controls (the CLI's end-to-end test runs it against a real one).
import { describe, expect, it } from 'vitest';
import {
  judgePerf,
  PERF_KEYS_PER_CLIENT,
  PERF_LIMITS,
  type PerfResult,
  type PerfTarget,
  perfKey,
  perfKeysInUse,
  removePerfKeys,
  runPerfLoad,
} from '../../src/client/perf-check.js';

/** A stand-in cluster: a map of keys, puts answered after `delayMs`, failing while `failing`. */
class StandIn implements PerfTarget {
  readonly data = new Map<string, string>();
  readonly putAt: number[] = [];
  failing = false;
  constructor(private readonly delayMs = 0) {}
  // biome-ignore lint/suspicious/noExplicitAny: the overloads of PerfTarget in one body
  async command(name: 'put' | 'get' | 'delete', args: any): Promise<any> {
    if (name === 'get') return { key: args.key, found: this.data.has(args.key), revision: 1 };
    if (name === 'delete') return { revision: 1, deleted: this.data.delete(args.key) ? 1 : 0 };
    this.putAt.push(performance.now());
    if (this.delayMs > 0) await new Promise((r) => setTimeout(r, this.delayMs));
    if (this.failing) throw new Error('no leader at the moment: retry shortly');
    this.data.set(args.key, args.value);
    return { revision: 1, term: 1 };
  }
}

function result(over: Partial<PerfResult>): PerfResult {
  return {
    clients: 10,
    rate: 1000,
    durationMs: 1000,
    ok: 1000,
    errors: 0,
    errorSamples: [],
    opsPerSec: 1000,
    p50Ms: 1,
    p99Ms: 5,
    slowestMs: 20,
    ...over,
  };
}

describe('runPerfLoad', () => {
  it('paces the puts to the rate asked, over every client, each cycling through its own keys', async () => {
    const target = new StandIn();
    const r = await runPerfLoad(target, { clients: 4, rate: 200, durationMs: 1000, prefix: 'p/' });
    // 200 a second for a second: never more (the 200th is due just before the end), and on
    // a machine too busy to keep the pace, fewer rather than late.
    expect(r.ok).toBeLessThanOrEqual(200);
    expect(r.ok).toBeGreaterThan(100);
    expect(r.errors).toBe(0);
    // Paced, not sent at once: the last put went out most of a second after the first.
    expect(target.putAt.at(-1)! - target.putAt[0]!).toBeGreaterThan(500);
    expect([...target.data.keys()].sort()).toEqual(
      Array.from({ length: 4 }, (_, c) =>
        Array.from({ length: PERF_KEYS_PER_CLIENT }, (_, k) => perfKey('p/', c, k)),
      )
        .flat()
        .sort(),
    );
  });

  it('falls behind a rate its clients cannot reach, and the figures show what they did', async () => {
    const r = await runPerfLoad(new StandIn(20), { clients: 2, rate: 1000, durationMs: 500, prefix: 'p/' });
    // Two clients waiting 20 ms each put ~100 a second, not 1,000.
    expect(r.opsPerSec).toBeLessThan(200);
    expect(r.p50Ms).toBeGreaterThanOrEqual(19);
    expect(judgePerf(r).find((c) => c.name === 'throughput')?.pass).toBe(false);
  });

  it('counts failed puts with their messages, and stops early when aborted', async () => {
    const target = new StandIn();
    target.failing = true;
    const abort = new AbortController();
    setTimeout(() => abort.abort(), 200);
    const started = performance.now();
    const r = await runPerfLoad(target, {
      clients: 3,
      rate: 100,
      durationMs: 10_000,
      prefix: 'p/',
      signal: abort.signal,
    });
    expect(performance.now() - started).toBeLessThan(2000);
    expect(r.ok).toBe(0);
    expect(r.errors).toBeGreaterThan(10);
    expect(r.errorSamples).toEqual(['no leader at the moment: retry shortly']);
    expect(Number.isNaN(r.p99Ms)).toBe(true);
    expect(judgePerf(r).every((c) => !c.pass)).toBe(true);
  });
});

describe('the keys of a run', () => {
  it('finds the keys in use among those it would write, and deletes all it would write', async () => {
    const target = new StandIn();
    target.data.set(perfKey('x/', 2, 5), 'theirs');
    target.data.set('x/other', 'not ours');
    expect(await perfKeysInUse(target, 'x/', 3)).toEqual(['x/2/5']);
    expect(await perfKeysInUse(target, 'x/', 2)).toEqual([]);
    await runPerfLoad(target, { clients: 3, rate: 500, durationMs: 100, prefix: 'y/' });
    expect([...target.data.keys()].filter((k) => k.startsWith('y/')).length).toBeGreaterThan(0);
    await removePerfKeys(target, 'y/', 3);
    expect([...target.data.keys()].sort()).toEqual(['x/2/5', 'x/other']);
  });
});

describe('judgePerf', () => {
  it('passes a run within every limit, and fails each limit on its own', () => {
    expect(judgePerf(result({})).every((c) => c.pass)).toBe(true);
    const failing = (over: Partial<PerfResult>) =>
      judgePerf(result(over))
        .filter((c) => !c.pass)
        .map((c) => c.name);
    expect(failing({ opsPerSec: 1000 * PERF_LIMITS.minRateFraction - 1 })).toEqual(['throughput']);
    expect(failing({ opsPerSec: 1000 * PERF_LIMITS.minRateFraction })).toEqual([]);
    expect(failing({ p99Ms: PERF_LIMITS.p99Ms + 0.1 })).toEqual(['p99 latency']);
    expect(failing({ slowestMs: PERF_LIMITS.slowestMs + 1 })).toEqual(['slowest put']);
    expect(failing({ errors: 1 })).toEqual(['errors']);
  });
});
