import { describe, expect, it } from 'vitest';
import { ErrCompacted, ErrSnapOutOfDate, ErrUnavailable } from '../../src/raft/errors.js';
import { RaftPanic } from '../../src/raft/logger.js';
import { limitSize, MemoryStorage } from '../../src/raft/storage.js';
import { type ConfState, type Entry, emptyConfState, entry, entrySize } from '../../src/raft/types.js';

/** Entries for (index, term) pairs. */
function ents(...ids: [number, number][]): Entry[] {
  return ids.map(([index, term]) => entry({ index, term }));
}

function ids(es: Entry[]): [number, number][] {
  return es.map((e) => [e.index, e.term]);
}

/** A storage whose dummy entry is (3,3), holding entries 4 and 5 (terms 4, 5). */
function compactedStorage(): MemoryStorage {
  const ms = new MemoryStorage();
  ms.ents = ents([3, 3], [4, 4], [5, 5]);
  return ms;
}

function cs(...voters: number[]): ConfState {
  return { ...emptyConfState(), voters };
}

describe('MemoryStorage.term', () => {
  it('knows the dummy entry and stored entries, and tells compacted from unavailable', () => {
    const ms = compactedStorage();
    expect(() => ms.term(2)).toThrow(ErrCompacted);
    expect(ms.term(3)).toBe(3);
    expect(ms.term(4)).toBe(4);
    expect(ms.term(5)).toBe(5);
    expect(() => ms.term(6)).toThrow(ErrUnavailable);
  });

  it('starts empty with a zero dummy entry', () => {
    const ms = new MemoryStorage();
    expect(ms.firstIndex()).toBe(1);
    expect(ms.lastIndex()).toBe(0);
    expect(ms.term(0)).toBe(0);
    expect(() => ms.term(1)).toThrow(ErrUnavailable);
  });
});

describe('MemoryStorage.entries', () => {
  it('throws ErrCompacted at or below the dummy index', () => {
    const ms = compactedStorage();
    expect(() => ms.entries(2, 5, Infinity)).toThrow(ErrCompacted);
    expect(() => ms.entries(3, 5, Infinity)).toThrow(ErrCompacted);
  });

  it('returns the half-open range', () => {
    const ms = compactedStorage();
    expect(ids(ms.entries(4, 5, Infinity))).toEqual([[4, 4]]);
    expect(ids(ms.entries(4, 6, Infinity))).toEqual([
      [4, 4],
      [5, 5],
    ]);
  });

  it('panics when hi is past lastIndex + 1', () => {
    expect(() => compactedStorage().entries(4, 7, Infinity)).toThrow(RaftPanic);
  });

  it('throws ErrUnavailable when only the dummy entry remains', () => {
    const ms = new MemoryStorage();
    ms.applySnapshot({ data: new Uint8Array(), metadata: { index: 5, term: 2, confState: cs(1) } });
    expect(() => ms.entries(6, 6, Infinity)).toThrow(ErrUnavailable);
  });

  it('limits by size but always returns at least one entry', () => {
    const ms = new MemoryStorage();
    ms.append(ents([1, 1], [2, 1], [3, 1], [4, 1]));
    const one = entrySize(ms.ents[1]!);
    expect(ms.entries(1, 5, 0)).toHaveLength(1);
    expect(ms.entries(1, 5, one)).toHaveLength(1);
    expect(ms.entries(1, 5, 2 * one)).toHaveLength(2);
    expect(ms.entries(1, 5, 2 * one + 1)).toHaveLength(2);
    expect(ms.entries(1, 5, 3 * one)).toHaveLength(3);
    expect(ms.entries(1, 5, Infinity)).toHaveLength(4);
  });
});

describe('MemoryStorage.compact', () => {
  it('rejects indexes already compacted and panics past the end', () => {
    const ms = compactedStorage();
    expect(() => ms.compact(2)).toThrow(ErrCompacted);
    expect(() => ms.compact(3)).toThrow(ErrCompacted);
    expect(() => ms.compact(6)).toThrow(RaftPanic);
  });

  it('makes the compacted entry the new dummy and keeps the rest', () => {
    const ms = compactedStorage();
    ms.compact(4);
    expect(ms.firstIndex()).toBe(5);
    expect(ms.lastIndex()).toBe(5);
    expect(ms.term(4)).toBe(4);
    expect(() => ms.term(3)).toThrow(ErrCompacted);
    expect(ids(ms.entries(5, 6, Infinity))).toEqual([[5, 5]]);

    ms.compact(5);
    expect(ms.firstIndex()).toBe(6);
    expect(ms.lastIndex()).toBe(5);
    expect(ms.term(5)).toBe(5);
  });

  it('does not disturb entries handed out earlier', () => {
    const ms = compactedStorage();
    const before = ms.entries(4, 6, Infinity);
    ms.compact(5);
    ms.append(ents([6, 6]));
    expect(ids(before)).toEqual([
      [4, 4],
      [5, 5],
    ]);
  });
});

describe('MemoryStorage.append', () => {
  const cases: { name: string; input: [number, number][]; want: [number, number][] }[] = [
    {
      name: 'identical entries',
      input: [
        [4, 4],
        [5, 5],
      ],
      want: [
        [3, 3],
        [4, 4],
        [5, 5],
      ],
    },
    {
      name: 'conflicting suffix replaced',
      input: [
        [4, 4],
        [5, 6],
        [6, 6],
      ],
      want: [
        [3, 3],
        [4, 4],
        [5, 6],
        [6, 6],
      ],
    },
    {
      name: 'conflict at first index',
      input: [
        [4, 5],
        [5, 5],
      ],
      want: [
        [3, 3],
        [4, 5],
        [5, 5],
      ],
    },
    {
      name: 'compacted prefix ignored',
      input: [
        [2, 3],
        [3, 3],
        [4, 5],
      ],
      want: [
        [3, 3],
        [4, 5],
      ],
    },
    {
      name: 'fully compacted input ignored',
      input: [
        [1, 1],
        [2, 2],
      ],
      want: [
        [3, 3],
        [4, 4],
        [5, 5],
      ],
    },
    {
      name: 'truncate in the middle',
      input: [[4, 5]],
      want: [
        [3, 3],
        [4, 5],
      ],
    },
    {
      name: 'plain append',
      input: [[6, 5]],
      want: [
        [3, 3],
        [4, 4],
        [5, 5],
        [6, 5],
      ],
    },
    {
      name: 'empty input',
      input: [],
      want: [
        [3, 3],
        [4, 4],
        [5, 5],
      ],
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const ms = compactedStorage();
      ms.append(ents(...c.input));
      expect(ids(ms.ents)).toEqual(c.want);
    });
  }

  it('panics on a gap after the last index', () => {
    expect(() => compactedStorage().append(ents([7, 5]))).toThrow(
      /missing log entry \[last: 5, append at: 7\]/,
    );
  });

  it('does not rewrite arrays handed out before a truncation', () => {
    const ms = compactedStorage();
    const before = ms.entries(4, 6, Infinity);
    ms.append(ents([5, 9]));
    expect(ids(before)).toEqual([
      [4, 4],
      [5, 5],
    ]);
    expect(ms.term(5)).toBe(9);
  });
});

describe('MemoryStorage snapshots', () => {
  it('createSnapshot records term and conf state of the index and keeps the log', () => {
    const ms = compactedStorage();
    const data = new Uint8Array([1, 2]);
    const snap = ms.createSnapshot(4, cs(1, 2), data);
    expect(snap.metadata).toEqual({ index: 4, term: 4, confState: cs(1, 2) });
    expect(snap.data).toBe(data);
    expect(ms.snapshot()).toEqual(snap);
    expect(ms.lastIndex()).toBe(5);
    expect(ms.firstIndex()).toBe(4);
  });

  it('createSnapshot keeps the previous ConfState when none is given', () => {
    const ms = compactedStorage();
    ms.createSnapshot(4, cs(7), new Uint8Array());
    const next = ms.createSnapshot(5, undefined, new Uint8Array());
    expect(next.metadata.confState).toEqual(cs(7));
    expect(next.metadata.term).toBe(5);
  });

  it('createSnapshot rejects old indexes and panics past the end', () => {
    const ms = compactedStorage();
    ms.createSnapshot(4, undefined, new Uint8Array());
    expect(() => ms.createSnapshot(4, undefined, new Uint8Array())).toThrow(ErrSnapOutOfDate);
    expect(() => ms.createSnapshot(3, undefined, new Uint8Array())).toThrow(ErrSnapOutOfDate);
    expect(() => ms.createSnapshot(6, undefined, new Uint8Array())).toThrow(RaftPanic);
  });

  it('applySnapshot replaces the log and rejects snapshots that are not newer', () => {
    const ms = new MemoryStorage();
    ms.append(ents([1, 1], [2, 1], [3, 2]));
    const snap = { data: new Uint8Array([9]), metadata: { index: 4, term: 4, confState: cs(1, 2, 3) } };
    ms.applySnapshot(snap);
    expect(ms.firstIndex()).toBe(5);
    expect(ms.lastIndex()).toBe(4);
    expect(ms.term(4)).toBe(4);
    expect(() => ms.term(3)).toThrow(ErrCompacted);
    expect(ms.snapshot()).toBe(snap);
    expect(ms.initialState().confState).toEqual(cs(1, 2, 3));

    const older = { data: new Uint8Array(), metadata: { index: 3, term: 3, confState: cs(1) } };
    expect(() => ms.applySnapshot(older)).toThrow(ErrSnapOutOfDate);
    expect(() => ms.applySnapshot(snap)).toThrow(ErrSnapOutOfDate);
  });
});

describe('MemoryStorage hard state', () => {
  it('initialState reflects setHardState, which stores a copy', () => {
    const ms = new MemoryStorage();
    const hs = { term: 3, vote: 2, commit: 1 };
    ms.setHardState(hs);
    hs.commit = 10;
    expect(ms.initialState().hardState).toEqual({ term: 3, vote: 2, commit: 1 });
  });
});

describe('limitSize', () => {
  const es = ents([4, 4], [5, 5], [6, 6]);
  const size = entrySize(es[0]!);
  it('keeps everything without a limit and nothing from an empty input', () => {
    expect(limitSize(es, Infinity)).toHaveLength(3);
    expect(limitSize([], 0)).toEqual([]);
  });
  it('keeps at least one entry', () => {
    expect(limitSize(es, 0)).toHaveLength(1);
  });
  it('keeps the longest prefix within the limit', () => {
    expect(limitSize(es, 2 * size)).toHaveLength(2);
    expect(limitSize(es, 3 * size - 1)).toHaveLength(2);
    expect(limitSize(es, 3 * size)).toHaveLength(3);
  });
  it('counts payload bytes', () => {
    const big = [entry({ index: 1, term: 1, data: new Uint8Array(100) }), entry({ index: 2, term: 1 })];
    expect(limitSize(big, entrySize(big[0]!))).toHaveLength(1);
    expect(limitSize(big, entrySize(big[0]!) + entrySize(big[1]!))).toHaveLength(2);
  });
});
