import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type AckedIndexer, formatIds, JointConfig, MajorityConfig } from '../../src/raft/quorum.js';

const from =
  (m: Record<number, number>): AckedIndexer =>
  (id) =>
    m[id];

/**
 * Reference for committedIndex: the largest index i such that a majority of the voters
 * acked at least i (unknown counts as 0), by trying every candidate.
 */
function bruteForceCommitted(ids: number[], acked: Map<number, number>): number {
  if (ids.length === 0) return Infinity;
  const quorum = Math.floor(ids.length / 2) + 1;
  let best = 0;
  for (const candidate of [0, ...acked.values()]) {
    const holders = ids.filter((id) => (acked.get(id) ?? 0) >= candidate).length;
    if (holders >= quorum) best = Math.max(best, candidate);
  }
  return best;
}

/** Every subset of ids that is a majority of them. */
function majorities(ids: number[]): number[][] {
  const out: number[][] = [];
  for (let mask = 0; mask < 1 << ids.length; mask++) {
    const subset = ids.filter((_, i) => mask & (1 << i));
    if (subset.length > ids.length / 2) out.push(subset);
  }
  return out;
}

const voterIds = fc.uniqueArray(fc.integer({ min: 1, max: 40 }), { minLength: 0, maxLength: 11 });

describe('MajorityConfig', () => {
  it('prints its ids ascending and keeps set semantics', () => {
    const c = new MajorityConfig([3, 1, 2, 1]);
    expect(c.size).toBe(3);
    expect(c.toString()).toBe('(1 2 3)');
    expect([...c]).toEqual([1, 2, 3]);
    c.add(10).add(2);
    expect(c.toString()).toBe('(1 2 3 10)');
    expect(c.delete(2)).toBe(true);
    expect(c.delete(2)).toBe(false);
    expect(c.ids()).toEqual([1, 3, 10]);
    expect(new MajorityConfig().toString()).toBe('()');
    expect(formatIds(new Set([9, 4]))).toBe('(4 9)');
  });

  it('clones independently', () => {
    const a = new MajorityConfig([1, 2]);
    const b = a.clone();
    b.add(3);
    a.clear();
    expect(a.size).toBe(0);
    expect(b.toString()).toBe('(1 2 3)');
  });

  it('commits what a majority acked, counting unknown as 0', () => {
    expect(new MajorityConfig([1]).committedIndex(from({}))).toBe(0);
    expect(new MajorityConfig([1]).committedIndex(from({ 1: 12 }))).toBe(12);
    expect(new MajorityConfig([1, 2]).committedIndex(from({ 1: 12, 2: 5 }))).toBe(5);
    expect(new MajorityConfig([1, 2, 3]).committedIndex(from({ 1: 12, 2: 5 }))).toBe(5);
    expect(new MajorityConfig([1, 2, 3]).committedIndex(from({ 1: 12, 2: 5, 3: 6 }))).toBe(6);
    expect(new MajorityConfig([1, 2, 3, 4]).committedIndex(from({ 1: 9, 2: 8, 3: 7, 4: 1 }))).toBe(7);
  });

  it('commits everything when empty', () => {
    expect(new MajorityConfig().committedIndex(from({ 1: 3 }))).toBe(Infinity);
  });

  it('stays correct after membership changes and with large configs', () => {
    const c = new MajorityConfig([1, 2, 3]);
    const acked = from({ 1: 10, 2: 20, 3: 30, 4: 40, 5: 50 });
    expect(c.committedIndex(acked)).toBe(20);
    c.add(4).add(5);
    expect(c.committedIndex(acked)).toBe(30);
    c.delete(5);
    expect(c.committedIndex(acked)).toBe(20);
    const big = new MajorityConfig(Array.from({ length: 15 }, (_, i) => i + 1));
    expect(big.committedIndex((id) => id * 10)).toBe(80);
  });

  it('decides votes by majority', () => {
    const c = new MajorityConfig([2, 4, 7]);
    const votes = (m: Record<number, boolean>) => new Map(Object.entries(m).map(([k, v]) => [Number(k), v]));
    expect(c.voteResult(votes({}))).toBe('VotePending');
    expect(c.voteResult(votes({ 2: true }))).toBe('VotePending');
    expect(c.voteResult(votes({ 2: true, 4: true }))).toBe('VoteWon');
    expect(c.voteResult(votes({ 2: false, 4: false }))).toBe('VoteLost');
    expect(c.voteResult(votes({ 2: true, 4: false }))).toBe('VotePending');
    // Votes of non-members do not count.
    expect(c.voteResult(votes({ 1: true, 3: true, 2: true }))).toBe('VotePending');
    expect(new MajorityConfig().voteResult(new Map())).toBe('VoteWon');
    expect(new MajorityConfig([4, 8]).voteResult(votes({ 4: false }))).toBe('VoteLost');
  });

  it('draws the acked indexes as a bar chart', () => {
    const c = new MajorityConfig([1, 2, 3, 4, 5]);
    expect(c.describe(from({ 1: 101, 2: 104, 3: 103, 4: 103 }))).toBe(
      [
        '         idx',
        'x>       101    (id=1)',
        'xxxx>    104    (id=2)',
        'xx>      103    (id=3)',
        'xx>      103    (id=4)',
        '?          0    (id=5)',
        '',
      ].join('\n'),
    );
    expect(new MajorityConfig().describe(from({}))).toBe('<empty majority quorum>');
  });

  it('matches a brute-force committed index on random configs', () => {
    fc.assert(
      fc.property(
        voterIds,
        fc.array(fc.option(fc.integer({ min: 1, max: 1000 }), { nil: undefined }), {
          minLength: 11,
          maxLength: 11,
        }),
        (ids, values) => {
          const acked = new Map<number, number>();
          ids.forEach((id, i) => {
            const v = values[i];
            if (v !== undefined) acked.set(id, v);
          });
          const c = new MajorityConfig(ids);
          const expected = bruteForceCommitted(ids, acked);
          // Twice: the second call reuses the scratch buffer of the first.
          expect(c.committedIndex((id) => acked.get(id))).toBe(expected);
          expect(c.committedIndex((id) => acked.get(id))).toBe(expected);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('has intersecting majorities', () => {
    fc.assert(
      // Up to 7 voters: every pair of majorities is checked.
      fc.property(fc.uniqueArray(fc.integer({ min: 1, max: 40 }), { maxLength: 7 }), (ids) => {
        const ms = majorities(ids);
        for (const a of ms) {
          for (const b of ms) expect(a.some((id) => b.includes(id))).toBe(true);
        }
        // And the quorum rule agrees: every majority voting yes wins the election.
        const c = new MajorityConfig(ids);
        for (const m of ms) expect(c.voteResult(new Map(m.map((id) => [id, true])))).toBe('VoteWon');
      }),
      { numRuns: 100 },
    );
  });
});

describe('JointConfig', () => {
  it('prints one half outside of a joint config and both while joint', () => {
    expect(new JointConfig(new MajorityConfig([2, 1])).toString()).toBe('(1 2)');
    const j = new JointConfig(new MajorityConfig([1, 2]), new MajorityConfig([3]));
    expect(j.toString()).toBe('(1 2)&&(3)');
    expect(j.isJoint()).toBe(true);
    expect(j.ids()).toEqual([1, 2, 3]);
    expect(j.has(3)).toBe(true);
    expect(j.has(4)).toBe(false);
  });

  it('commits the smaller of the two halves', () => {
    const j = new JointConfig(new MajorityConfig([1, 3]), new MajorityConfig([2]));
    expect(j.committedIndex(from({ 1: 100, 2: 50 }))).toBe(0);
    expect(j.committedIndex(from({ 1: 100, 2: 50, 3: 45 }))).toBe(45);
    expect(new JointConfig().committedIndex(from({}))).toBe(Infinity);
  });

  it('needs both halves to win and loses when either loses', () => {
    const j = new JointConfig(new MajorityConfig([1]), new MajorityConfig([2]));
    expect(j.voteResult(new Map([[1, true]]))).toBe('VotePending');
    expect(
      j.voteResult(
        new Map([
          [1, true],
          [2, true],
        ]),
      ),
    ).toBe('VoteWon');
    expect(j.voteResult(new Map([[2, false]]))).toBe('VoteLost');
    expect(new JointConfig().voteResult(new Map())).toBe('VoteWon');
  });

  it('describes the union of both halves', () => {
    const j = new JointConfig(new MajorityConfig([1]), new MajorityConfig([2]));
    expect(j.describe(from({ 1: 13, 2: 100 }))).toBe('      idx\n>      13    (id=1)\nx>    100    (id=2)\n');
  });

  it('clones both halves', () => {
    const j = new JointConfig(new MajorityConfig([1]), new MajorityConfig([2]));
    const c = j.clone();
    c.incoming.add(5);
    c.outgoing.clear();
    expect(j.toString()).toBe('(1)&&(2)');
    expect(c.toString()).toBe('(1 5)');
  });

  it('is symmetric and equals the majority config when joined with itself or the empty config', () => {
    fc.assert(
      fc.property(
        voterIds,
        voterIds,
        fc.dictionary(fc.integer({ min: 1, max: 40 }).map(String), fc.integer({ min: 1, max: 99 })),
        (a, b, m) => {
          const acked: AckedIndexer = (id) => m[String(id)];
          const ma = new MajorityConfig(a);
          const mb = new MajorityConfig(b);
          const ab = new JointConfig(ma, mb).committedIndex(acked);
          expect(new JointConfig(mb, ma).committedIndex(acked)).toBe(ab);
          expect(ab).toBe(Math.min(ma.committedIndex(acked), mb.committedIndex(acked)));
          expect(new JointConfig(ma, ma.clone()).committedIndex(acked)).toBe(ma.committedIndex(acked));
          expect(new JointConfig(ma).committedIndex(acked)).toBe(ma.committedIndex(acked));
        },
      ),
    );
  });
});
