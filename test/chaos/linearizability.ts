// A linearizability checker for the KV's per-key register semantics: the algorithm of
// Wing & Gong with Lowe's memoization (as Porcupine and Knossos use it).
//
// The history is partitioned by key (linearizability is compositional, and every KV
// operation touches one key). For each key, the calls and returns are put on a doubly
// linked list in time order; the search walks it, tentatively linearizing a call whose
// result the model accepts (lifting its call and return out of the list), and backtracks
// when it reaches a return whose call could not be linearized. A cache of (set of
// linearized operations, model state) pairs cuts the search: reaching a pair seen before
// cannot lead anywhere new.
//
// Operations whose outcome is unknown (timeout, dropped connection) have return = +∞: they
// may take effect at any time after their call, or never (linearized after everything
// else, their effect is unobservable). The model accepts any result for them. Reads with
// unknown outcome constrain nothing and are dropped up front.

export type Value = string | null;

export type KvOp =
  | { kind: 'get' }
  | { kind: 'put'; value: string }
  | { kind: 'delete' }
  | { kind: 'cas'; expected: Value; value: string };

/** What the operation returned; undefined when the outcome is unknown. */
export type KvOutcome =
  | { kind: 'get'; value: Value }
  | { kind: 'put' }
  /** `deleted` (0 or 1), when the node reported it. */
  | { kind: 'delete'; deleted?: number }
  | { kind: 'cas'; ok: boolean };

export interface HistoryOp {
  /** Unique within the history (for reports). */
  id: number;
  clientId: string;
  key: string;
  op: KvOp;
  /** When the call was issued (ms, any monotonic clock). */
  call: number;
  /** When the result arrived; undefined = timed out / indeterminate. */
  ret?: number;
  /** The result; must be present iff ret is. */
  result?: KvOutcome;
}

export interface KeyFailure {
  key: string;
  /** Operations of this key in the history. */
  ops: number;
  /** A small sub-history of this key that is itself not linearizable (only reads, failed CASes and unknown-outcome operations were removed, which is sound). */
  minimal: HistoryOp[];
  /** The operation at which every search got stuck: its return came before it could be linearized. */
  stuckAt?: HistoryOp;
  /** The longest prefix of a linearization found, in order. */
  longestPrefix: HistoryOp[];
  explanation: string;
}

export interface CheckResult {
  ok: boolean;
  keys: number;
  ops: number;
  /** Keys whose search hit the step budget without an answer (reported, not failures). */
  unknownKeys: string[];
  /** All failing keys, smallest first. */
  failures: KeyFailure[];
  /** The smallest failing key, if any. */
  failure?: KeyFailure;
}

export interface CheckOptions {
  /** Search steps per key before giving up with "unknown". Default 5,000,000. */
  maxStepsPerKey?: number;
  /** Time budget for shrinking a failing key's history. Default 3000 ms. */
  minimizeBudgetMs?: number;
}

// ---- The model ------------------------------------------------------------------------

/** One step of the register model: the next state, or undefined if the result is impossible here. */
export function step(state: Value, op: KvOp, result: KvOutcome | undefined): Value | undefined {
  switch (op.kind) {
    case 'get':
      if (result === undefined) return state;
      return result.kind === 'get' && result.value === state ? state : undefined;
    case 'put':
      return op.value;
    case 'delete':
      if (result !== undefined && result.kind === 'delete' && result.deleted !== undefined) {
        if (result.deleted !== (state === null ? 0 : 1)) return undefined;
      }
      return null;
    case 'cas': {
      const matches = state === op.expected;
      if (result === undefined) return matches ? op.value : state;
      if (result.kind !== 'cas' || result.ok !== matches) return undefined;
      return matches ? op.value : state;
    }
  }
}

// ---- The search -----------------------------------------------------------------------

interface Node {
  /** Index of the operation in the per-key array. */
  op: number;
  isCall: boolean;
  time: number;
  /** For a call: its return node. */
  match?: Node;
  prev?: Node;
  next?: Node;
}

function buildList(ops: HistoryOp[]): Node {
  const nodes: Node[] = [];
  ops.forEach((o, i) => {
    const ret: Node = { op: i, isCall: false, time: o.ret ?? Number.POSITIVE_INFINITY };
    const call: Node = { op: i, isCall: true, time: o.call, match: ret };
    nodes.push(call, ret);
  });
  // Time order; on a tie a call goes first (the operations are taken as overlapping,
  // which only allows more orders).
  nodes.sort((a, b) => a.time - b.time || (a.isCall === b.isCall ? a.op - b.op : a.isCall ? -1 : 1));
  const head: Node = { op: -1, isCall: false, time: Number.NEGATIVE_INFINITY };
  let prev = head;
  for (const n of nodes) {
    prev.next = n;
    n.prev = prev;
    prev = n;
  }
  return head;
}

function lift(call: Node): void {
  call.prev!.next = call.next;
  if (call.next) call.next.prev = call.prev;
  const ret = call.match!;
  ret.prev!.next = ret.next;
  if (ret.next) ret.next.prev = ret.prev;
}

function unlift(call: Node): void {
  const ret = call.match!;
  ret.prev!.next = ret;
  if (ret.next) ret.next.prev = ret;
  call.prev!.next = call;
  if (call.next) call.next.prev = call;
}

/**
 * The set of operations linearized so far, as the search's cache sees it: two 32-bit
 * Zobrist hashes (each operation has two fixed random words, XORed in when it joins the set
 * and out when it leaves) and the set's size. Both update in O(1) per step, where rendering
 * the set itself cost a step time and memory in proportion to the key's whole history — for
 * the register keys of a long chaos run (tens of thousands of operations each) minutes of
 * checking and gigabytes of cached keys.
 *
 * Two different sets of the same size share a key with probability 2^-64 per pair compared.
 * Such a collision could only cut a branch of the search short, never accept a history that
 * has no linearization (an accepted history is one the search built a linearization for): at
 * worst a violation reported that is not one, which the shrunk history shown with it would
 * reveal, at odds of about one in 10^6 for a search that caches millions of states.
 */
class LinearizedSet {
  /** Operation i's two random words: 2i and 2i + 1. */
  private readonly zobrist: Uint32Array;
  private h1 = 0;
  private h2 = 0;
  private size = 0;

  constructor(n: number) {
    // Fixed seed: the same history is searched the same way on every run.
    this.zobrist = new Uint32Array(2 * n);
    let x = 0x9e3779b9;
    for (let i = 0; i < this.zobrist.length; i++) {
      // xorshift32
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      this.zobrist[i] = x >>> 0;
    }
  }

  add(i: number): void {
    this.toggle(i);
    this.size++;
  }

  remove(i: number): void {
    this.toggle(i);
    this.size--;
  }

  key(): string {
    return `${this.size}.${this.h1.toString(36)}.${this.h2.toString(36)}`;
  }

  private toggle(i: number): void {
    this.h1 = (this.h1 ^ this.zobrist[2 * i]!) >>> 0;
    this.h2 = (this.h2 ^ this.zobrist[2 * i + 1]!) >>> 0;
  }
}

interface SearchOutcome {
  ok: boolean | 'unknown';
  stuckAt?: number;
  longest: number[];
}

/** Searches for a linearization of one key's operations, from the absent state. */
export function searchKey(ops: HistoryOp[], maxSteps = 5_000_000): SearchOutcome {
  const head = buildList(ops);
  const linearized = new LinearizedSet(ops.length);
  const cache = new Set<string>();
  const calls: { node: Node; state: Value }[] = [];
  let state: Value = null;
  let entry = head.next;
  // The stack at the first moment it was deepest, kept up to date in place: copying the
  // whole stack at each new depth made a search of n operations O(n^2).
  const longest: number[] = [];
  /** How many of longest's first operations are still the stack's first ones. */
  let sameAsStack = 0;
  let stuckAt: number | undefined;
  let deepest = -1;
  let steps = 0;
  while (head.next !== undefined) {
    if (++steps > maxSteps) return { ok: 'unknown', longest };
    if (entry === undefined) break; // cannot happen: the list ends with a return
    if (entry.isCall) {
      const o = ops[entry.op]!;
      const next = step(state, o.op, o.result);
      if (next !== undefined) {
        linearized.add(entry.op);
        const k = `${linearized.key()}|${next === null ? '\u0000' : `=${next}`}`;
        if (!cache.has(k)) {
          cache.add(k);
          calls.push({ node: entry, state });
          state = next;
          lift(entry);
          entry = head.next;
          const depth = calls.length;
          if (sameAsStack === depth - 1 && longest[sameAsStack] === calls[depth - 1]!.node.op)
            sameAsStack = depth;
          if (depth > longest.length) {
            longest.length = sameAsStack;
            for (let i = sameAsStack; i < depth; i++) longest.push(calls[i]!.node.op);
            sameAsStack = depth;
          }
          continue;
        }
        linearized.remove(entry.op);
      }
      entry = entry.next;
    } else {
      // A return whose call is still in the list: backtrack.
      if (calls.length > deepest) {
        deepest = calls.length;
        stuckAt = entry.op;
      }
      if (calls.length === 0) return { ok: false, stuckAt, longest };
      const top = calls.pop()!;
      if (sameAsStack > calls.length) sameAsStack = calls.length;
      state = top.state;
      linearized.remove(top.node.op);
      unlift(top.node);
      entry = top.node.next;
    }
  }
  return { ok: true, longest };
}

// ---- The checker ----------------------------------------------------------------------

/** Whether an operation can be removed from a failing history with the rest still failing. */
function removable(o: HistoryOp): boolean {
  if (o.ret === undefined) return true; // may be linearized last, where it has no effect
  if (o.op.kind === 'get') return true; // reads change nothing
  return o.op.kind === 'cas' && o.result?.kind === 'cas' && !o.result.ok; // so do failed CASes
}

function fails(ops: HistoryOp[], maxSteps: number): boolean {
  return searchKey(ops, maxSteps).ok === false;
}

/** Delta-debugging over the removable operations, within a time budget. */
function minimize(ops: HistoryOp[], budgetMs: number, maxSteps: number): HistoryOp[] {
  const deadline = Date.now() + budgetMs;
  let current = ops;
  let chunk = Math.max(1, Math.floor(current.filter(removable).length / 2));
  while (chunk >= 1 && Date.now() < deadline) {
    let removedAny = false;
    const candidates = current.filter(removable);
    for (let i = 0; i < candidates.length && Date.now() < deadline; i += chunk) {
      const drop = new Set(candidates.slice(i, i + chunk));
      const trial = current.filter((o) => !drop.has(o));
      if (fails(trial, maxSteps)) {
        current = trial;
        removedAny = true;
      }
    }
    if (!removedAny) chunk = Math.floor(chunk / 2);
  }
  return current;
}

export function describeOp(o: HistoryOp, t0 = 0): string {
  const f = (t: number) => (t - t0).toFixed(1);
  const when = `[${f(o.call)} → ${o.ret === undefined ? '?' : f(o.ret)}]`;
  const show = (v: Value) => (v === null ? 'absent' : JSON.stringify(v));
  let what: string;
  switch (o.op.kind) {
    case 'get':
      what = `get → ${o.result?.kind === 'get' ? show(o.result.value) : 'unknown'}`;
      break;
    case 'put':
      what = `put ${JSON.stringify(o.op.value)} → ${o.result ? 'ok' : 'unknown'}`;
      break;
    case 'delete':
      what = `delete → ${o.result?.kind === 'delete' ? `ok${o.result.deleted === undefined ? '' : ` (deleted ${o.result.deleted})`}` : 'unknown'}`;
      break;
    case 'cas':
      what = `cas ${show(o.op.expected)} ⇒ ${JSON.stringify(o.op.value)} → ${o.result?.kind === 'cas' ? (o.result.ok ? 'ok' : 'failed') : 'unknown'}`;
      break;
  }
  return `#${o.id} ${o.clientId} ${when} ${what}`;
}

function explain(key: string, minimal: HistoryOp[], stuck: HistoryOp | undefined): string {
  const t0 = Math.min(...minimal.map((o) => o.call));
  const lines = [
    `key ${JSON.stringify(key)}: no linearization of these ${minimal.length} operations exists (times in ms from the first call):`,
    ...[...minimal].sort((a, b) => a.call - b.call).map((o) => `  ${describeOp(o, t0)}`),
  ];
  if (stuck) lines.push(`every order gets stuck at ${describeOp(stuck, t0)}`);
  return lines.join('\n');
}

export function checkHistory(history: HistoryOp[], opts: CheckOptions = {}): CheckResult {
  const maxSteps = opts.maxStepsPerKey ?? 5_000_000;
  const byKey = new Map<string, HistoryOp[]>();
  for (const o of history) {
    if ((o.ret === undefined) !== (o.result === undefined)) {
      throw new Error(`operation #${o.id}: ret and result must both be set or both be unset`);
    }
    if (o.ret !== undefined && o.ret < o.call) throw new Error(`operation #${o.id} returns before its call`);
    if (o.ret === undefined && o.op.kind === 'get') continue;
    const list = byKey.get(o.key);
    if (list) list.push(o);
    else byKey.set(o.key, [o]);
  }
  const failures: KeyFailure[] = [];
  const unknownKeys: string[] = [];
  for (const [key, ops] of byKey) {
    const r = searchKey(ops, maxSteps);
    if (r.ok === 'unknown') unknownKeys.push(key);
    if (r.ok !== false) continue;
    const minimal = minimize(ops, opts.minimizeBudgetMs ?? 3000, maxSteps);
    const m = searchKey(minimal, maxSteps);
    const stuckAt = m.stuckAt === undefined ? undefined : minimal[m.stuckAt];
    failures.push({
      key,
      ops: ops.length,
      minimal,
      stuckAt,
      longestPrefix: r.longest.map((i) => ops[i]!),
      explanation: explain(key, minimal, stuckAt),
    });
  }
  failures.sort((a, b) => a.minimal.length - b.minimal.length || a.ops - b.ops);
  return {
    ok: failures.length === 0,
    keys: byKey.size,
    ops: history.length,
    unknownKeys,
    failures,
    failure: failures[0],
  };
}
