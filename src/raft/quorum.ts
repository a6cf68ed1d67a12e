// Quorum arithmetic: which log index a configuration has committed and how an election
// stands. A majority config is a plain set of voters; a joint config is two of them, and
// a decision needs a majority in each (the outgoing half is empty outside of a joint
// configuration, and an empty majority agrees to everything).

export type VoteResult = 'VotePending' | 'VoteLost' | 'VoteWon';

/** The highest log index a voter is known to have; undefined when nothing is known. */
export type AckedIndexer = (id: number) => number | undefined;

/** Prints ids the way every config is printed: ascending, space-separated, in parentheses. */
export function formatIds(ids: Iterable<number>): string {
  return `(${[...ids].sort((a, b) => a - b).join(' ')})`;
}

/** Sorts the first n slots in place; for the handful of voters a Raft group has. */
function insertionSort(a: Float64Array, n: number): void {
  for (let i = 1; i < n; i++) {
    const v = a[i]!;
    let j = i - 1;
    while (j >= 0 && a[j]! > v) {
      a[j + 1] = a[j]!;
      j--;
    }
    a[j + 1] = v;
  }
}

/** Above this many voters a native sort beats the insertion sort. */
const INSERTION_SORT_MAX = 7;

export class MajorityConfig {
  private readonly members: Set<number>;
  /** Ascending ids, rebuilt lazily after a change; lets the hot paths loop without iterators. */
  private sorted: number[] | undefined;
  /** Reused by committedIndex so that the leader's commit check does not allocate. */
  private scratch: Float64Array | undefined;

  constructor(ids: Iterable<number> = []) {
    this.members = new Set(ids);
  }

  get size(): number {
    return this.members.size;
  }

  has(id: number): boolean {
    return this.members.has(id);
  }

  add(id: number): this {
    if (!this.members.has(id)) {
      this.members.add(id);
      this.sorted = undefined;
    }
    return this;
  }

  delete(id: number): boolean {
    const had = this.members.delete(id);
    if (had) this.sorted = undefined;
    return had;
  }

  clear(): void {
    this.members.clear();
    this.sorted = undefined;
  }

  /** The voters in ascending order. The array is shared: do not modify it. */
  ids(): readonly number[] {
    this.sorted ??= [...this.members].sort((a, b) => a - b);
    return this.sorted;
  }

  [Symbol.iterator](): Iterator<number> {
    return this.ids()[Symbol.iterator]();
  }

  clone(): MajorityConfig {
    const c = new MajorityConfig(this.members);
    // The sorted ids are never modified, only replaced: the copy may share them.
    c.sorted = this.sorted;
    return c;
  }

  toString(): string {
    return `(${this.ids().join(' ')})`;
  }

  /**
   * The largest index acked by a majority of the voters. A voter without a known index
   * counts as having acked 0. The empty config returns Infinity so that, joined with a
   * real config, it never holds back the other half.
   */
  committedIndex(acked: AckedIndexer): number {
    const ids = this.ids();
    const n = ids.length;
    if (n === 0) return Infinity;
    let srt = this.scratch;
    if (srt === undefined || srt.length !== n) {
      srt = new Float64Array(n);
      this.scratch = srt;
    }
    for (let i = 0; i < n; i++) srt[i] = acked(ids[i]!) ?? 0;
    if (n <= INSERTION_SORT_MAX) insertionSort(srt, n);
    else srt.sort();
    // Ascending order: the quorum's worth of largest indexes starts at n - quorum, and
    // the smallest of them is what all of that quorum has.
    return srt[n - ((n >> 1) + 1)]!;
  }

  /**
   * Won once a majority voted yes, lost once a majority can no longer be reached,
   * pending otherwise. Votes from non-members are ignored; the empty config wins.
   */
  voteResult(votes: ReadonlyMap<number, boolean>): VoteResult {
    const n = this.members.size;
    if (n === 0) return 'VoteWon';
    let yes = 0;
    let missing = 0;
    for (const id of this.members) {
      const v = votes.get(id);
      if (v === undefined) missing++;
      else if (v) yes++;
    }
    const quorum = (n >> 1) + 1;
    if (yes >= quorum) return 'VoteWon';
    if (yes + missing >= quorum) return 'VotePending';
    return 'VoteLost';
  }

  /**
   * A bar chart of the acked indexes, one line per voter in id order. A voter's bar has
   * as many `x` as there are voters with a smaller index (equal indexes get equal bars),
   * so the committed index is the one whose bar reaches n - quorum; `?` marks a voter
   * without a known index.
   */
  describe(acked: AckedIndexer): string {
    const n = this.members.size;
    if (n === 0) return '<empty majority quorum>';
    const rows = this.ids().map((id) => {
      const idx = acked(id);
      return { id, idx: idx ?? 0, known: idx !== undefined, bar: 0 };
    });
    const byIndex = [...rows].sort((a, b) => a.idx - b.idx || a.id - b.id);
    byIndex.forEach((row, i) => {
      if (i > 0) {
        const prev = byIndex[i - 1]!;
        row.bar = prev.idx < row.idx ? i : prev.bar;
      }
    });
    let out = `${' '.repeat(n)}    idx\n`;
    for (const row of rows) {
      const bar = row.known ? `${'x'.repeat(row.bar)}>${' '.repeat(n - row.bar)}` : `?${' '.repeat(n)}`;
      out += `${bar} ${String(row.idx).padStart(5)}    (id=${row.id})\n`;
    }
    return out;
  }
}

/**
 * Two majority configs that must both agree. Outside of a joint configuration the
 * outgoing half is empty and the joint config behaves exactly like `incoming`.
 */
export class JointConfig {
  constructor(
    public incoming: MajorityConfig = new MajorityConfig(),
    public outgoing: MajorityConfig = new MajorityConfig(),
  ) {}

  isJoint(): boolean {
    return this.outgoing.size > 0;
  }

  has(id: number): boolean {
    return this.incoming.has(id) || this.outgoing.has(id);
  }

  /** The voters of either half, ascending. */
  ids(): number[] {
    const all = new Set(this.incoming.ids());
    for (const id of this.outgoing.ids()) all.add(id);
    return [...all].sort((a, b) => a - b);
  }

  clone(): JointConfig {
    return new JointConfig(this.incoming.clone(), this.outgoing.clone());
  }

  toString(): string {
    return this.isJoint() ? `${this.incoming}&&${this.outgoing}` : this.incoming.toString();
  }

  /** The largest index committed by both halves. */
  committedIndex(acked: AckedIndexer): number {
    return Math.min(this.incoming.committedIndex(acked), this.outgoing.committedIndex(acked));
  }

  /** Won only if both halves won; lost as soon as either lost. */
  voteResult(votes: ReadonlyMap<number, boolean>): VoteResult {
    const a = this.incoming.voteResult(votes);
    const b = this.outgoing.voteResult(votes);
    if (a === b) return a;
    if (a === 'VoteLost' || b === 'VoteLost') return 'VoteLost';
    return 'VotePending';
  }

  /** The bar chart of all voters of both halves as one majority config. */
  describe(acked: AckedIndexer): string {
    return new MajorityConfig(this.ids()).describe(acked);
  }
}
