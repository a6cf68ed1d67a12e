import { describe, expect, it } from 'vitest';
import { Unstable } from '../../src/raft/log-unstable.js';
import { RaftPanic } from '../../src/raft/logger.js';
import { type Entry, emptyConfState, entry, type Snapshot } from '../../src/raft/types.js';
import { type CollectingLogger, collectingLogger } from '../support/logger.js';

function ents(...ids: [number, number][]): Entry[] {
  return ids.map(([index, term]) => entry({ index, term }));
}

function ids(es: Entry[]): [number, number][] {
  return es.map((e) => [e.index, e.term]);
}

function snap(index: number, term: number): Snapshot {
  return { data: new Uint8Array(), metadata: { index, term, confState: emptyConfState() } };
}

interface Shape {
  entries?: [number, number][];
  offset: number;
  offsetInProgress?: number;
  snapshot?: Snapshot;
  snapshotInProgress?: boolean;
}

function unstable(s: Shape, logger: CollectingLogger = collectingLogger()): Unstable {
  const u = new Unstable(s.offset, logger);
  u.entries = ents(...(s.entries ?? []));
  u.offsetInProgress = s.offsetInProgress ?? s.offset;
  u.snapshot = s.snapshot;
  u.snapshotInProgress = s.snapshotInProgress ?? false;
  return u;
}

describe('Unstable index bounds', () => {
  it('maybeFirstIndex comes only from the snapshot', () => {
    expect(unstable({ offset: 5, entries: [[5, 1]] }).maybeFirstIndex()).toBeUndefined();
    expect(unstable({ offset: 5, entries: [[5, 1]], snapshot: snap(4, 1) }).maybeFirstIndex()).toBe(5);
    expect(unstable({ offset: 5, snapshot: snap(4, 1) }).maybeFirstIndex()).toBe(5);
    expect(unstable({ offset: 0 }).maybeFirstIndex()).toBeUndefined();
  });

  it('maybeLastIndex prefers entries, then the snapshot', () => {
    expect(unstable({ offset: 5, entries: [[5, 1]] }).maybeLastIndex()).toBe(5);
    expect(
      unstable({
        offset: 5,
        entries: [
          [5, 1],
          [6, 1],
        ],
        snapshot: snap(4, 1),
      }).maybeLastIndex(),
    ).toBe(6);
    expect(unstable({ offset: 5, snapshot: snap(4, 1) }).maybeLastIndex()).toBe(4);
    expect(unstable({ offset: 0 }).maybeLastIndex()).toBeUndefined();
  });

  const termCases: { name: string; shape: Shape; index: number; want: number | undefined }[] = [
    { name: 'entry in range', shape: { offset: 5, entries: [[5, 1]] }, index: 5, want: 1 },
    { name: 'past the last entry', shape: { offset: 5, entries: [[5, 1]] }, index: 6, want: undefined },
    { name: 'below offset, no snapshot', shape: { offset: 5, entries: [[5, 1]] }, index: 4, want: undefined },
    {
      name: 'the snapshot index',
      shape: { offset: 5, entries: [[5, 2]], snapshot: snap(4, 1) },
      index: 4,
      want: 1,
    },
    {
      name: 'below the snapshot',
      shape: { offset: 5, entries: [[5, 2]], snapshot: snap(4, 1) },
      index: 3,
      want: undefined,
    },
    { name: 'snapshot only, at its index', shape: { offset: 5, snapshot: snap(4, 1) }, index: 4, want: 1 },
    { name: 'snapshot only, past it', shape: { offset: 5, snapshot: snap(4, 1) }, index: 5, want: undefined },
    { name: 'empty', shape: { offset: 0 }, index: 5, want: undefined },
  ];
  for (const c of termCases) {
    it(`maybeTerm: ${c.name}`, () => {
      expect(unstable(c.shape).maybeTerm(c.index)).toBe(c.want);
    });
  }
});

describe('Unstable in-progress tracking', () => {
  const three: [number, number][] = [
    [5, 1],
    [6, 1],
    [7, 1],
  ];

  it('nextEntries skips entries already handed to storage', () => {
    expect(ids(unstable({ offset: 5, entries: three }).nextEntries())).toEqual(three);
    expect(ids(unstable({ offset: 5, entries: three, offsetInProgress: 6 }).nextEntries())).toEqual(
      three.slice(1),
    );
    expect(unstable({ offset: 5, entries: three, offsetInProgress: 8 }).nextEntries()).toEqual([]);
    expect(unstable({ offset: 5 }).nextEntries()).toEqual([]);
  });

  it('nextSnapshot hides a snapshot in progress', () => {
    const s = snap(4, 1);
    expect(unstable({ offset: 5 }).nextSnapshot()).toBeUndefined();
    expect(unstable({ offset: 5, snapshot: s }).nextSnapshot()).toBe(s);
    expect(unstable({ offset: 5, snapshot: s, snapshotInProgress: true }).nextSnapshot()).toBeUndefined();
  });

  it('acceptInProgress marks all entries and the snapshot', () => {
    const u = unstable({ offset: 5, entries: three, snapshot: snap(4, 1) });
    u.acceptInProgress();
    expect(u.offsetInProgress).toBe(8);
    expect(u.snapshotInProgress).toBe(true);
    expect(u.nextEntries()).toEqual([]);
    expect(u.nextSnapshot()).toBeUndefined();
    // Entries appended afterwards are handed out again.
    u.truncateAndAppend(ents([8, 1]));
    expect(ids(u.nextEntries())).toEqual([[8, 1]]);
  });

  it('acceptInProgress on an empty tail changes nothing', () => {
    const u = unstable({ offset: 5 });
    u.acceptInProgress();
    expect(u.offsetInProgress).toBe(5);
    expect(u.snapshotInProgress).toBe(false);
  });
});

describe('Unstable.stableTo', () => {
  it('drops entries up to the acknowledged one', () => {
    const u = unstable({
      offset: 5,
      entries: [
        [5, 1],
        [6, 1],
        [7, 1],
      ],
      offsetInProgress: 8,
    });
    u.stableTo({ index: 6, term: 1 });
    expect(u.offset).toBe(7);
    expect(ids(u.entries)).toEqual([[7, 1]]);
    expect(u.offsetInProgress).toBe(8);
  });

  it('pulls offsetInProgress up to the new offset', () => {
    const u = unstable({
      offset: 5,
      entries: [
        [5, 1],
        [6, 1],
      ],
    });
    u.stableTo({ index: 5, term: 1 });
    expect(u.offset).toBe(6);
    expect(u.offsetInProgress).toBe(6);
    expect(ids(u.nextEntries())).toEqual([[6, 1]]);
  });

  it('keeps the snapshot when entries after it become stable', () => {
    const s = snap(4, 1);
    const u = unstable({ offset: 5, entries: [[5, 1]], snapshot: s });
    u.stableTo({ index: 5, term: 1 });
    expect(u.snapshot).toBe(s);
    expect(u.entries).toEqual([]);
    expect(u.offset).toBe(6);
  });

  it('ignores an index it does not hold', () => {
    const logger = collectingLogger();
    const u = unstable({ offset: 5, entries: [[5, 1]] }, logger);
    u.stableTo({ index: 6, term: 1 });
    u.stableTo({ index: 4, term: 1 });
    expect(u.offset).toBe(5);
    expect(u.entries).toHaveLength(1);
    expect(logger.lines).toEqual([
      'INFO entry at index 6 missing from unstable log; ignoring',
      'INFO entry at index 4 missing from unstable log; ignoring',
    ]);
  });

  it('ignores the index of the unstable snapshot', () => {
    const logger = collectingLogger();
    const u = unstable({ offset: 5, entries: [[5, 2]], snapshot: snap(4, 1) }, logger);
    u.stableTo({ index: 4, term: 1 });
    expect(u.offset).toBe(5);
    expect(u.snapshot).toBeDefined();
    expect(logger.lines).toEqual(['INFO entry at index 4 matched unstable snapshot; ignoring']);
  });

  it('ignores a term mismatch: the entry was replaced while its write was in flight (ABA)', () => {
    const logger = collectingLogger();
    const u = unstable({ offset: 5, entries: [[5, 1]] }, logger);
    // Entries 5..6 at term 1 go to storage...
    u.truncateAndAppend(ents([6, 1]));
    u.acceptInProgress();
    // ...a new leader replaces index 6 at term 2 before the write is acknowledged.
    u.truncateAndAppend(ents([6, 2]));
    expect(u.offsetInProgress).toBe(6);
    logger.lines.length = 0;

    u.stableTo({ index: 6, term: 1 });
    expect(ids(u.entries)).toEqual([
      [5, 1],
      [6, 2],
    ]);
    expect(u.offset).toBe(5);
    expect(logger.lines).toEqual([
      'INFO entry at (index,term)=(6,1) mismatched with entry at (6,2) in unstable log; ignoring',
    ]);
    // The replacement is still to be persisted.
    expect(ids(u.nextEntries())).toEqual([[6, 2]]);
  });
});

describe('Unstable snapshots', () => {
  it('stableSnapTo forgets the snapshot only at its index', () => {
    const u = unstable({ offset: 5, snapshot: snap(4, 1), snapshotInProgress: true });
    u.stableSnapTo(3);
    expect(u.snapshot).toBeDefined();
    u.stableSnapTo(4);
    expect(u.snapshot).toBeUndefined();
    expect(u.snapshotInProgress).toBe(false);
    // A second acknowledgement is harmless.
    u.stableSnapTo(4);
    expect(u.snapshot).toBeUndefined();
  });

  it('restore replaces everything and resets progress', () => {
    const u = unstable({
      offset: 5,
      entries: [
        [5, 1],
        [6, 1],
      ],
      offsetInProgress: 7,
      snapshot: snap(4, 1),
      snapshotInProgress: true,
    });
    const s = snap(10, 3);
    u.restore(s);
    expect(u.offset).toBe(11);
    expect(u.offsetInProgress).toBe(11);
    expect(u.entries).toEqual([]);
    expect(u.snapshot).toBe(s);
    expect(u.snapshotInProgress).toBe(false);
    expect(u.nextSnapshot()).toBe(s);
    expect(u.maybeLastIndex()).toBe(10);
  });
});

describe('Unstable.truncateAndAppend', () => {
  const base: Shape = {
    offset: 5,
    entries: [
      [5, 1],
      [6, 1],
      [7, 1],
    ],
    offsetInProgress: 8,
  };
  const cases: {
    name: string;
    append: [number, number][];
    offset: number;
    inProgress: number;
    want: [number, number][];
    log: string[];
  }[] = [
    {
      name: 'contiguous append keeps progress',
      append: [[8, 1]],
      offset: 5,
      inProgress: 8,
      want: [
        [5, 1],
        [6, 1],
        [7, 1],
        [8, 1],
      ],
      log: [],
    },
    {
      name: 'replace from the offset',
      append: [[5, 2]],
      offset: 5,
      inProgress: 5,
      want: [[5, 2]],
      log: ['INFO replace the unstable entries from index 5'],
    },
    {
      name: 'replace from below the offset',
      append: [
        [4, 2],
        [5, 2],
      ],
      offset: 4,
      inProgress: 4,
      want: [
        [4, 2],
        [5, 2],
      ],
      log: ['INFO replace the unstable entries from index 4'],
    },
    {
      name: 'truncate in the middle',
      append: [
        [6, 2],
        [7, 2],
      ],
      offset: 5,
      inProgress: 6,
      want: [
        [5, 1],
        [6, 2],
        [7, 2],
      ],
      log: ['INFO truncate the unstable entries before index 6'],
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const logger = collectingLogger();
      const u = unstable(base, logger);
      u.truncateAndAppend(ents(...c.append));
      expect(u.offset).toBe(c.offset);
      expect(u.offsetInProgress).toBe(c.inProgress);
      expect(ids(u.entries)).toEqual(c.want);
      expect(logger.lines).toEqual(c.log);
    });
  }

  it('truncating above offsetInProgress keeps it', () => {
    const u = unstable({ ...base, offsetInProgress: 6 });
    u.truncateAndAppend(ents([7, 2]));
    expect(u.offsetInProgress).toBe(6);
    expect(ids(u.nextEntries())).toEqual([
      [6, 1],
      [7, 2],
    ]);
  });

  it('does not alias the caller array', () => {
    const u = unstable({ offset: 5 });
    const input = ents([5, 1]);
    u.truncateAndAppend(input);
    input.push(entry({ index: 6, term: 1 }));
    expect(u.entries).toHaveLength(1);
  });
});

describe('Unstable.slice', () => {
  const u = unstable({
    offset: 5,
    entries: [
      [5, 1],
      [6, 2],
      [7, 3],
    ],
  });
  it('returns a copy of the range', () => {
    const got = u.slice(6, 8);
    expect(ids(got)).toEqual([
      [6, 2],
      [7, 3],
    ]);
    got.push(entry({ index: 8, term: 3 }));
    expect(u.entries).toHaveLength(3);
    expect(u.slice(6, 6)).toEqual([]);
  });
  it('panics outside the held entries', () => {
    expect(() => u.slice(4, 6)).toThrow('unstable.slice[4,6) out of bound [5,8]');
    expect(() => u.slice(5, 9)).toThrow(RaftPanic);
    expect(() => u.slice(7, 6)).toThrow('invalid unstable.slice 7 > 6');
  });
});
