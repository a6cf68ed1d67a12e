import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  checkHistory,
  type HistoryOp,
  type KvOp,
  type KvOutcome,
  step,
  type Value,
} from './linearizability.js';

let nextId = 1;
function op(
  clientId: string,
  call: number,
  ret: number | undefined,
  o: KvOp,
  result?: KvOutcome,
  key = 'k',
): HistoryOp {
  return ret === undefined
    ? { id: nextId++, clientId, key, op: o, call }
    : { id: nextId++, clientId, key, op: o, call, ret, result };
}
const put = (c: string, call: number, ret: number | undefined, value: string, key?: string) =>
  op(c, call, ret, { kind: 'put', value }, ret === undefined ? undefined : { kind: 'put' }, key);
const get = (c: string, call: number, ret: number | undefined, value: Value, key?: string) =>
  op(c, call, ret, { kind: 'get' }, ret === undefined ? undefined : { kind: 'get', value }, key);
const cas = (
  c: string,
  call: number,
  ret: number | undefined,
  expected: Value,
  value: string,
  ok?: boolean,
  key?: string,
) =>
  op(c, call, ret, { kind: 'cas', expected, value }, ok === undefined ? undefined : { kind: 'cas', ok }, key);
const del = (c: string, call: number, ret: number | undefined, deleted?: number, key?: string) =>
  op(
    c,
    call,
    ret,
    { kind: 'delete' },
    ret === undefined ? undefined : deleted === undefined ? { kind: 'delete' } : { kind: 'delete', deleted },
    key,
  );

/**
 * Whether `prefix` is the start of a linearization: each operation once, none placed after
 * one that was called only once it had returned, and every result the register's from the
 * absent state on.
 */
function isPartialLinearization(prefix: readonly HistoryOp[]): boolean {
  if (new Set(prefix).size !== prefix.length) return false;
  let state: Value = null;
  for (const [i, o] of prefix.entries()) {
    if (prefix.slice(i + 1).some((later) => later.ret !== undefined && later.ret < o.call)) return false;
    const next = step(state, o.op, o.result);
    if (next === undefined) return false;
    state = next;
  }
  return true;
}

describe('linearizability checker: non-linearizable histories', () => {
  it('catches a stale read after an acknowledged write', () => {
    const r = checkHistory([put('a', 0, 10, 'x'), put('a', 20, 30, 'y'), get('b', 40, 50, 'x')]);
    expect(r.ok).toBe(false);
    expect(r.failure?.key).toBe('k');
    expect(r.failure?.explanation).toContain('get → "x"');
  });

  it('catches a lost acknowledged write', () => {
    // y was acknowledged, then the key reads as absent with nothing deleting it.
    const r = checkHistory([put('a', 0, 10, 'y'), get('b', 20, 30, null)]);
    expect(r.ok).toBe(false);
  });

  it('catches a CAS that succeeded twice', () => {
    const r = checkHistory([
      put('a', 0, 10, 'v0'),
      cas('b', 20, 30, 'v0', 'v1', true),
      cas('c', 25, 35, 'v0', 'v2', true),
    ]);
    expect(r.ok).toBe(false);
  });

  it('catches a read of a value never written', () => {
    const r = checkHistory([put('a', 0, 10, 'x'), get('b', 5, 15, 'ghost')]);
    expect(r.ok).toBe(false);
    expect(r.failure?.explanation).toContain('ghost');
  });

  it('catches a read going back in time', () => {
    // The two writes overlap each other, so either order is fine, but once a read saw y
    // a later read may not see x.
    const r = checkHistory([
      put('a', 0, 100, 'x'),
      put('b', 0, 100, 'y'),
      get('c', 110, 120, 'y'),
      get('d', 130, 140, 'x'),
    ]);
    expect(r.ok).toBe(false);
  });

  it('catches a delete reporting the wrong count', () => {
    const r = checkHistory([put('a', 0, 10, 'x'), del('b', 20, 30, 0)]);
    expect(r.ok).toBe(false);
  });

  it('reports the smallest failing key and keeps other keys apart', () => {
    const r = checkHistory([
      put('a', 0, 10, 'x', 'good'),
      get('b', 20, 30, 'x', 'good'),
      put('a', 0, 10, 'x', 'bad1'),
      put('a', 11, 12, 'y', 'bad1'),
      get('a', 13, 14, 'y', 'bad1'),
      get('b', 20, 30, 'x', 'bad1'),
      put('a', 0, 10, 'x', 'bad2'),
      get('b', 20, 30, null, 'bad2'),
    ]);
    expect(r.ok).toBe(false);
    expect(r.failures.map((f) => f.key)).toEqual(['bad2', 'bad1']);
    expect(r.failure?.key).toBe('bad2');
  });

  it('shrinks the failing history to the operations that matter', () => {
    const noise: HistoryOp[] = [];
    for (let i = 0; i < 40; i++) noise.push(get('r', 1000 + i * 10, 1005 + i * 10, 'z'));
    const r = checkHistory([
      put('a', 0, 10, 'x'),
      put('a', 20, 30, 'z'),
      ...noise,
      get('b', 2000, 2010, 'x'), // stale
      get('b', 2020, 2030, 'z'),
    ]);
    expect(r.ok).toBe(false);
    expect(r.failure!.minimal.length).toBeLessThanOrEqual(4);
    expect(r.failure!.minimal.some((o) => o.result?.kind === 'get' && o.result.value === 'x')).toBe(true);
  });
});

describe('linearizability checker: linearizable histories', () => {
  it('accepts a sequential history', () => {
    const r = checkHistory([
      get('a', 0, 1, null),
      put('a', 2, 3, 'x'),
      get('a', 4, 5, 'x'),
      cas('a', 6, 7, 'x', 'y', true),
      cas('a', 8, 9, 'x', 'z', false),
      del('a', 10, 11, 1),
      get('a', 12, 13, null),
      del('a', 14, 15, 0),
    ]);
    expect(r.ok).toBe(true);
  });

  it('accepts concurrent operations in any consistent order', () => {
    const r = checkHistory([
      put('a', 0, 100, 'x'),
      put('b', 10, 90, 'y'),
      get('c', 20, 30, 'y'), // y first …
      get('d', 40, 50, 'x'), // … then x: fine, both writes were still in flight
      get('e', 110, 120, 'x'),
    ]);
    expect(r.ok).toBe(true);
  });

  it('accepts a read concurrent with a write seeing either value', () => {
    expect(checkHistory([put('a', 0, 10, 'x'), put('a', 20, 40, 'y'), get('b', 25, 35, 'x')]).ok).toBe(true);
    expect(checkHistory([put('a', 0, 10, 'x'), put('a', 20, 40, 'y'), get('b', 25, 35, 'y')]).ok).toBe(true);
  });

  it('accepts a timed-out write that took effect much later', () => {
    const r = checkHistory([
      put('a', 0, 10, 'x'),
      put('b', 20, undefined, 'late'),
      get('c', 30, 40, 'x'),
      get('c', 500, 510, 'late'),
      get('c', 520, 530, 'late'),
    ]);
    expect(r.ok).toBe(true);
  });

  it('accepts a timed-out write that never took effect', () => {
    const r = checkHistory([
      put('a', 0, 10, 'x'),
      put('b', 20, undefined, 'never'),
      get('c', 1000, 1010, 'x'),
    ]);
    expect(r.ok).toBe(true);
  });

  it('accepts timed-out reads and CASes of unknown outcome', () => {
    const r = checkHistory([
      put('a', 0, 10, 'x'),
      get('b', 5, undefined, null),
      cas('c', 20, undefined, 'x', 'y'),
      get('d', 30, 40, 'y'),
      cas('e', 50, 60, 'y', 'z', true),
    ]);
    expect(r.ok).toBe(true);
  });

  it('still rejects what a timed-out write cannot explain', () => {
    // The timed-out write was called after the stale read returned, so it cannot help.
    const r = checkHistory([put('a', 0, 10, 'x'), put('a', 20, 30, 'y'), get('b', 40, 50, 'x')]);
    expect(r.ok).toBe(false);
    const r2 = checkHistory([
      put('a', 0, 10, 'x'),
      put('a', 20, 30, 'y'),
      get('b', 40, 50, 'x'),
      put('c', 60, undefined, 'x'),
    ]);
    expect(r2.ok).toBe(false);
  });
});

// ---- Properties ----------------------------------------------------------------------

interface Planned {
  kind: 'get' | 'put' | 'cas' | 'delete';
  casHits: boolean;
  timedOut: boolean;
  before: number;
  after: number;
  gap: number;
}

const plannedArb = fc.record({
  kind: fc.constantFrom<Planned['kind']>('get', 'get', 'put', 'put', 'cas', 'delete'),
  casHits: fc.boolean(),
  timedOut: fc.integer({ min: 0, max: 9 }).map((n) => n < 2),
  before: fc.integer({ min: 0, max: 50 }),
  after: fc.integer({ min: 0, max: 50 }),
  gap: fc.integer({ min: 1, max: 20 }),
});

/**
 * Runs a sequential register on the planned operations: each gets a linearization point in
 * order, and an interval around it. The history is linearizable by construction.
 */
function sequentialHistory(plan: Planned[], keys: string[]): HistoryOp[] {
  const states = new Map<string, Value>();
  const out: HistoryOp[] = [];
  let t = 0;
  let n = 0;
  plan.forEach((p, i) => {
    t += p.gap;
    const key = keys[i % keys.length]!;
    const state = states.get(key) ?? null;
    const value = `v${++n}`;
    let o: KvOp;
    let result: KvOutcome;
    switch (p.kind) {
      case 'get':
        o = { kind: 'get' };
        result = { kind: 'get', value: state };
        break;
      case 'put':
        o = { kind: 'put', value };
        result = { kind: 'put' };
        break;
      case 'delete':
        o = { kind: 'delete' };
        result = { kind: 'delete', deleted: state === null ? 0 : 1 };
        break;
      case 'cas': {
        const expected = p.casHits ? state : `nope${n}`;
        o = { kind: 'cas', expected, value };
        result = { kind: 'cas', ok: expected === state };
        break;
      }
    }
    const next = step(state, o, result);
    if (next === undefined) throw new Error('model refused its own result');
    states.set(key, next);
    const h: HistoryOp = { id: i, clientId: `c${i % 5}`, key, op: o, call: t - p.before };
    if (!p.timedOut) {
      h.ret = t + p.after;
      h.result = result;
    }
    out.push(h);
  });
  return out;
}

describe('linearizability checker: properties', () => {
  it('accepts every history of a sequential register run with overlapping intervals', () => {
    fc.assert(
      fc.property(
        fc.array(plannedArb, { minLength: 1, maxLength: 60 }),
        fc.integer({ min: 1, max: 3 }),
        (plan, k) => {
          const keys = ['a', 'b', 'c'].slice(0, k);
          const r = checkHistory(sequentialHistory(plan, keys));
          expect(r.unknownKeys).toEqual([]);
          return r.ok;
        },
      ),
      { numRuns: 300 },
    );
  });

  it('rejects such a history once a completed read returns a value never written', () => {
    fc.assert(
      fc.property(fc.array(plannedArb, { minLength: 1, maxLength: 60 }), fc.nat(), (plan, pick) => {
        const h = sequentialHistory(plan, ['a']);
        const reads = h.filter((o) => o.op.kind === 'get' && o.result !== undefined);
        fc.pre(reads.length > 0);
        const victim = reads[pick % reads.length]!;
        victim.result = { kind: 'get', value: 'never-written' };
        const r = checkHistory(h, { minimizeBudgetMs: 200 });
        return (
          !r.ok &&
          r.failure?.key === 'a' &&
          isPartialLinearization(r.failure.longestPrefix) &&
          !r.failure.longestPrefix.includes(victim)
        );
      }),
      { numRuns: 300 },
    );
  });
});
