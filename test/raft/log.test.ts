import { describe, expect, it } from 'vitest';
import { ErrCompacted, ErrUnavailable } from '../../src/raft/errors.js';
import { RaftLog } from '../../src/raft/log.js';
import { RaftPanic } from '../../src/raft/logger.js';
import { MemoryStorage } from '../../src/raft/storage.js';
import { type Entry, emptyConfState, entry, entrySize, type Snapshot } from '../../src/raft/types.js';
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

interface Setup {
  /** The storage's dummy entry (its snapshot); (0,0) when omitted. */
  dummy?: [number, number];
  stable?: [number, number][];
  unstable?: [number, number][];
  maxApplying?: number;
}

function newLog(
  s: Setup,
  logger: CollectingLogger = collectingLogger(),
): { log: RaftLog; storage: MemoryStorage } {
  const storage = new MemoryStorage();
  if (s.dummy) storage.applySnapshot(snap(s.dummy[0], s.dummy[1]));
  storage.append(ents(...(s.stable ?? [])));
  const log = new RaftLog(storage, logger, s.maxApplying);
  log.append(ents(...(s.unstable ?? [])));
  return { log, storage };
}

describe('RaftLog construction', () => {
  it('starts committed and applied at the storage snapshot, unstable after the stored entries', () => {
    const { log } = newLog({
      dummy: [3, 3],
      stable: [
        [4, 4],
        [5, 5],
      ],
    });
    expect(log.firstIndex()).toBe(4);
    expect(log.lastIndex()).toBe(5);
    expect(log.lastTerm()).toBe(5);
    expect(log.lastEntryID()).toEqual({ index: 5, term: 5 });
    expect([log.committed, log.applied, log.applying]).toEqual([3, 3, 3]);
    expect(log.unstable.offset).toBe(6);
    expect(log.unstable.offsetInProgress).toBe(6);
    expect(log.maxApplyingEntsSize).toBe(Infinity);
  });

  it('describes itself in etcd format', () => {
    const { log } = newLog({ unstable: [[1, 1]] });
    log.acceptUnstable();
    log.append(ents([2, 1]));
    log.commitTo(1);
    expect(log.toString()).toBe(
      'committed=1, applied=0, applying=0, unstable.offset=1, unstable.offsetInProgress=2, len(unstable.Entries)=2',
    );
  });
});

describe('RaftLog.term', () => {
  const { log } = newLog({
    dummy: [3, 3],
    stable: [
      [4, 4],
      [5, 5],
    ],
    unstable: [[6, 6]],
  });

  it('reads stable, dummy and unstable terms', () => {
    expect(log.term(3)).toBe(3);
    expect(log.term(4)).toBe(4);
    expect(log.term(5)).toBe(5);
    expect(log.term(6)).toBe(6);
  });

  it('throws ErrCompacted below the dummy and ErrUnavailable past the end', () => {
    expect(() => log.term(2)).toThrow(ErrCompacted);
    expect(() => log.term(7)).toThrow(ErrUnavailable);
  });

  it('termOrZero maps both errors to 0', () => {
    expect(log.termOrZero(2)).toBe(0);
    expect(log.termOrZero(7)).toBe(0);
    expect(log.termOrZero(6)).toBe(6);
  });

  it('follows an unstable snapshot', () => {
    const { log: restored } = newLog({ stable: [[1, 1]] });
    restored.restore(snap(10, 7));
    expect(restored.term(10)).toBe(7);
    expect(() => restored.term(9)).toThrow(ErrCompacted);
    expect(() => restored.term(11)).toThrow(ErrUnavailable);
  });
});

describe('RaftLog.findConflict', () => {
  const base: [number, number][] = [
    [1, 1],
    [2, 2],
    [3, 3],
  ];
  const cases: { name: string; ents: [number, number][]; want: number; log: string[] }[] = [
    { name: 'no entries', ents: [], want: 0, log: [] },
    { name: 'all present', ents: base, want: 0, log: [] },
    { name: 'present suffix', ents: base.slice(1), want: 0, log: [] },
    {
      name: 'new entries after a matching prefix',
      ents: [
        [3, 3],
        [4, 4],
      ],
      want: 4,
      log: [],
    },
    { name: 'only new entries', ents: [[4, 4]], want: 4, log: [] },
    {
      name: 'conflict inside the log',
      ents: [
        [2, 4],
        [3, 4],
      ],
      want: 2,
      log: ['INFO found conflict at index 2 [existing term: 2, conflicting term: 4]'],
    },
    {
      name: 'conflict at the last index',
      ents: [
        [2, 2],
        [3, 4],
        [4, 4],
      ],
      want: 3,
      log: ['INFO found conflict at index 3 [existing term: 3, conflicting term: 4]'],
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const logger = collectingLogger();
      const { log } = newLog({ unstable: base }, logger);
      logger.lines.length = 0;
      expect(log.findConflict(ents(...c.ents))).toBe(c.want);
      expect(logger.lines).toEqual(c.log);
    });
  }
});

describe('RaftLog.findConflictByTerm', () => {
  // Terms by index: 3→2 (dummy), 4→2, 5→3 stable; 6→3, 7→5, 8→5 unstable.
  const setup: Setup = {
    dummy: [3, 2],
    stable: [
      [4, 2],
      [5, 3],
    ],
    unstable: [
      [6, 3],
      [7, 5],
      [8, 5],
    ],
  };
  const cases: { index: number; term: number; want: { index: number; term: number } }[] = [
    { index: 8, term: 5, want: { index: 8, term: 5 } },
    { index: 8, term: 6, want: { index: 8, term: 5 } },
    { index: 8, term: 4, want: { index: 6, term: 3 } },
    { index: 7, term: 3, want: { index: 6, term: 3 } },
    { index: 5, term: 2, want: { index: 4, term: 2 } },
    { index: 8, term: 2, want: { index: 4, term: 2 } },
    // Index 2 is compacted: it might match, with an unknown term.
    { index: 8, term: 1, want: { index: 2, term: 0 } },
    { index: 0, term: 0, want: { index: 0, term: 0 } },
  ];
  for (const c of cases) {
    it(`(${c.index}, ${c.term})`, () => {
      expect(newLog(setup).log.findConflictByTerm(c.index, c.term)).toEqual(c.want);
    });
  }

  it('walks down to 0 on an uncompacted log', () => {
    const { log } = newLog({
      unstable: [
        [1, 2],
        [2, 2],
      ],
    });
    expect(log.findConflictByTerm(2, 1)).toEqual({ index: 0, term: 0 });
  });

  it('returns an index past the log unchanged and warns', () => {
    const logger = collectingLogger();
    const { log } = newLog(setup, logger);
    logger.lines.length = 0;
    expect(log.findConflictByTerm(10, 5)).toEqual({ index: 10, term: 0 });
    expect(logger.lines).toEqual(['WARN index(10) is out of range [0, lastIndex(8)] in findConflictByTerm']);
  });
});

describe('RaftLog.isUpToDate', () => {
  const { log } = newLog({
    unstable: [
      [1, 1],
      [2, 2],
      [3, 3],
    ],
  });
  const cases: [number, number, boolean][] = [
    // [index, term, want]
    [2, 4, true],
    [3, 4, true],
    [4, 4, true],
    [2, 2, false],
    [4, 2, false],
    [2, 3, false],
    [3, 3, true],
    [4, 3, true],
  ];
  for (const [index, term, want] of cases) {
    it(`last (${index}, ${term}) → ${want}`, () => {
      expect(log.isUpToDate({ index, term })).toBe(want);
    });
  }
});

describe('RaftLog.append', () => {
  it('returns the new last index and truncates conflicting unstable entries', () => {
    const { log } = newLog({
      stable: [
        [1, 1],
        [2, 2],
      ],
    });
    expect(log.append([])).toBe(2);
    expect(log.append(ents([3, 2]))).toBe(3);
    expect(log.append(ents([2, 3], [3, 3]))).toBe(3);
    expect(log.term(2)).toBe(3);
    // The stable entry 2 is superseded by the unstable tail starting at 2.
    expect(log.unstable.offset).toBe(2);
    expect(ids(log.allEntries())).toEqual([
      [1, 1],
      [2, 3],
      [3, 3],
    ]);
  });

  it('panics when rewriting committed entries', () => {
    const { log } = newLog({
      unstable: [
        [1, 1],
        [2, 1],
      ],
    });
    log.commitTo(2);
    expect(() => log.append(ents([2, 2]))).toThrow('after(1) is out of range [committed(2)]');
    expect(log.append(ents([3, 2]))).toBe(3);
  });
});

describe('RaftLog.maybeAppend', () => {
  const base: [number, number][] = [
    [1, 1],
    [2, 2],
    [3, 3],
  ];
  const cases: {
    name: string;
    prev: [number, number];
    commit: number;
    ents: [number, number][];
    want: number | undefined;
    committed: number;
    log: [number, number][];
  }[] = [
    {
      name: 'previous term mismatch',
      prev: [3, 2],
      commit: 3,
      ents: [[4, 4]],
      want: undefined,
      committed: 1,
      log: base,
    },
    {
      name: 'previous index past the end',
      prev: [4, 4],
      commit: 3,
      ents: [[5, 4]],
      want: undefined,
      committed: 1,
      log: base,
    },
    {
      name: 'heartbeat-like, commit to last',
      prev: [3, 3],
      commit: 3,
      ents: [],
      want: 3,
      committed: 3,
      log: base,
    },
    {
      name: 'commit capped by last new entry',
      prev: [2, 2],
      commit: 3,
      ents: [],
      want: 2,
      committed: 2,
      log: base,
    },
    {
      name: 'new entry appended',
      prev: [3, 3],
      commit: 4,
      ents: [[4, 4]],
      want: 4,
      committed: 4,
      log: [...base, [4, 4]],
    },
    {
      name: 'entries already present are kept',
      prev: [1, 1],
      commit: 2,
      ents: [
        [2, 2],
        [3, 3],
      ],
      want: 3,
      committed: 2,
      log: base,
    },
    {
      name: 'matching prefix shorter than the log does not truncate',
      prev: [1, 1],
      commit: 5,
      ents: [[2, 2]],
      want: 2,
      committed: 2,
      log: base,
    },
    {
      name: 'conflicting suffix replaced',
      prev: [1, 1],
      commit: 5,
      ents: [
        [2, 4],
        [3, 4],
        [4, 4],
      ],
      want: 4,
      committed: 4,
      log: [
        [1, 1],
        [2, 4],
        [3, 4],
        [4, 4],
      ],
    },
    {
      name: 'conflict at the last entry',
      prev: [2, 2],
      commit: 0,
      ents: [[3, 4]],
      want: 3,
      committed: 1,
      log: [
        [1, 1],
        [2, 2],
        [3, 4],
      ],
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const { log } = newLog({ unstable: base });
      log.commitTo(1);
      expect(log.maybeAppend(c.prev[0], c.prev[1], c.commit, ents(...c.ents))).toBe(c.want);
      expect(log.committed).toBe(c.committed);
      expect(ids(log.allEntries())).toEqual(c.log);
    });
  }

  it('never decreases the commit index', () => {
    const { log } = newLog({ unstable: base });
    log.commitTo(3);
    expect(log.maybeAppend(1, 1, 1, ents([2, 2]))).toBe(2);
    expect(log.committed).toBe(3);
  });

  it('panics on a conflict with a committed entry', () => {
    const { log } = newLog({ unstable: base });
    log.commitTo(2);
    expect(() => log.maybeAppend(1, 1, 3, ents([2, 4]))).toThrow(
      'entry 2 conflict with committed entry [committed(2)]',
    );
  });
});

describe('RaftLog.commitTo / maybeCommit', () => {
  it('never moves backwards and panics past the last index', () => {
    const { log } = newLog({
      unstable: [
        [1, 1],
        [2, 2],
        [3, 3],
      ],
    });
    log.commitTo(3);
    log.commitTo(2);
    expect(log.committed).toBe(3);
    expect(() => log.commitTo(4)).toThrow(
      'tocommit(4) is out of range [lastIndex(3)]. Was the raft log corrupted, truncated, or lost?',
    );
    expect(log.committed).toBe(3);
  });

  it('maybeCommit commits only a matching entry beyond the commit index', () => {
    const { log } = newLog({
      unstable: [
        [1, 1],
        [2, 2],
        [3, 2],
      ],
    });
    expect(log.maybeCommit({ index: 2, term: 1 })).toBe(false);
    expect(log.maybeCommit({ index: 4, term: 2 })).toBe(false);
    expect(log.committed).toBe(0);
    expect(log.maybeCommit({ index: 2, term: 2 })).toBe(true);
    expect(log.committed).toBe(2);
    expect(log.maybeCommit({ index: 2, term: 2 })).toBe(false);
    expect(log.maybeCommit({ index: 3, term: 2 })).toBe(true);
    expect(log.committed).toBe(3);
  });

  it('maybeCommit never matches term 0', () => {
    const { log } = newLog({ unstable: [[1, 0]] });
    expect(log.matchTerm({ index: 1, term: 0 })).toBe(true);
    expect(log.maybeCommit({ index: 1, term: 0 })).toBe(false);
  });
});

describe('RaftLog committed entries', () => {
  // Entries 1..3 stable, 4..5 unstable, all committed.
  function committedLog(): { log: RaftLog; storage: MemoryStorage } {
    const { log, storage } = newLog({
      stable: [
        [1, 1],
        [2, 1],
        [3, 1],
      ],
      unstable: [
        [4, 1],
        [5, 1],
      ],
    });
    log.commitTo(5);
    return { log, storage };
  }

  it('applies only persisted entries unless allowUnstable', () => {
    const { log } = committedLog();
    expect(log.maxAppliableIndex(false)).toBe(3);
    expect(log.maxAppliableIndex(true)).toBe(5);
    expect(ids(log.nextCommittedEnts(false)).map(([i]) => i)).toEqual([1, 2, 3]);
    expect(ids(log.nextCommittedEnts(true)).map(([i]) => i)).toEqual([1, 2, 3, 4, 5]);
  });

  it('starts after what is being applied', () => {
    const { log, storage } = committedLog();
    log.acceptApplying(3, 0, false);
    expect(log.applying).toBe(3);
    expect(log.applied).toBe(0);
    expect(log.hasNextCommittedEnts(false)).toBe(false);
    expect(log.nextCommittedEnts(false)).toEqual([]);
    expect(log.hasNextCommittedEnts(true)).toBe(true);
    expect(ids(log.nextCommittedEnts(true)).map(([i]) => i)).toEqual([4, 5]);

    // Persisting the unstable entries makes them appliable without allowUnstable.
    storage.append(log.nextUnstableEnts());
    log.stableTo({ index: 5, term: 1 });
    expect(ids(log.nextCommittedEnts(false)).map(([i]) => i)).toEqual([4, 5]);

    log.appliedTo(3, 0);
    expect(log.applied).toBe(3);
    expect(ids(log.nextCommittedEnts(false)).map(([i]) => i)).toEqual([4, 5]);
  });

  it('is bounded by the commit index', () => {
    const { log } = newLog({
      stable: [
        [1, 1],
        [2, 1],
      ],
    });
    expect(log.hasNextCommittedEnts(true)).toBe(false);
    log.commitTo(1);
    expect(ids(log.nextCommittedEnts(true))).toEqual([[1, 1]]);
  });

  it('holds back entries while a snapshot is pending', () => {
    const { log, storage } = newLog({ stable: [[1, 1]] });
    log.restore(snap(5, 2));
    log.append(ents([6, 2]));
    storage.applySnapshot(snap(5, 2));
    storage.append(ents([6, 2]));
    log.commitTo(6);
    expect(log.hasNextCommittedEnts(true)).toBe(false);
    expect(log.nextCommittedEnts(true)).toEqual([]);
    // Still held back while the snapshot is being written.
    log.acceptUnstable();
    expect(log.hasNextCommittedEnts(true)).toBe(false);
    log.stableSnapTo(5);
    log.stableTo({ index: 6, term: 2 });
    log.appliedTo(5, 0);
    expect(ids(log.nextCommittedEnts(false))).toEqual([[6, 2]]);
  });

  it('appliedTo panics outside [applied, committed]', () => {
    const { log } = committedLog();
    log.appliedTo(2, 0);
    expect(() => log.appliedTo(6, 0)).toThrow('applied(6) is out of range [prevApplied(2), committed(5)]');
    expect(() => log.appliedTo(1, 0)).toThrow(RaftPanic);
    log.appliedTo(2, 0);
    expect(log.applied).toBe(2);
  });

  it('acceptApplying panics past the commit index', () => {
    const { log } = committedLog();
    expect(() => log.acceptApplying(6, 0, true)).toThrow(
      'applying(6) is out of range [prevApplying(0), committed(5)]',
    );
  });
});

describe('RaftLog applying size limit', () => {
  const sized = (index: number) => entry({ index, term: 1, data: new Uint8Array(10) });
  // Every entry below has this size.
  const size = entrySize(sized(1));
  // Five committed, persisted entries.
  function sizedLog(maxApplying: number): RaftLog {
    const storage = new MemoryStorage();
    storage.append([1, 2, 3, 4, 5].map(sized));
    const log = new RaftLog(storage, collectingLogger(), maxApplying);
    log.commitTo(5);
    return log;
  }
  const indexes = (es: Entry[]) => es.map((e) => e.index);

  it('pauses once the budget is used up and resumes when entries are applied', () => {
    const log = sizedLog(2 * size);
    const first = log.nextCommittedEnts(false);
    expect(indexes(first)).toEqual([1, 2]);
    log.acceptApplying(2, 2 * size, false);
    expect(log.applyingEntsPaused).toBe(true);
    expect(log.hasNextCommittedEnts(false)).toBe(false);
    expect(log.nextCommittedEnts(false)).toEqual([]);

    log.appliedTo(2, 2 * size);
    expect(log.applyingEntsSize).toBe(0);
    expect(log.applyingEntsPaused).toBe(false);
    expect(indexes(log.nextCommittedEnts(false))).toEqual([3, 4]);
  });

  it('pauses when a hand-out was cut short by the budget, even with budget left', () => {
    const log = sizedLog(2 * size + 1);
    expect(indexes(log.nextCommittedEnts(false))).toEqual([1, 2]);
    log.acceptApplying(2, 2 * size, false);
    expect(log.applyingEntsSize).toBeLessThan(log.maxApplyingEntsSize);
    expect(log.applyingEntsPaused).toBe(true);

    // Applying one entry frees enough budget to resume, but only one more fits.
    log.appliedTo(1, size);
    expect(log.applyingEntsPaused).toBe(false);
    expect(log.applying).toBe(2);
    expect(indexes(log.nextCommittedEnts(false))).toEqual([3]);
  });

  it('does not pause when everything appliable was handed out within budget', () => {
    const log = sizedLog(Infinity);
    expect(indexes(log.nextCommittedEnts(false))).toEqual([1, 2, 3, 4, 5]);
    log.acceptApplying(5, 5 * size, false);
    expect(log.applyingEntsPaused).toBe(false);
    expect(log.hasNextCommittedEnts(false)).toBe(false);
  });

  it('hands out one entry even when it alone exceeds the budget', () => {
    const log = sizedLog(1);
    expect(size).toBeGreaterThan(1);
    expect(indexes(log.nextCommittedEnts(false))).toEqual([1]);
  });

  it('appliedTo does not let the outstanding size go negative', () => {
    const log = sizedLog(10 * size);
    log.acceptApplying(1, size, false);
    log.appliedTo(1, 3 * size);
    expect(log.applyingEntsSize).toBe(0);
  });
});

describe('RaftLog unstable hand-out and stableTo', () => {
  it('tracks entries handed to storage separately from unstable ones', () => {
    const { log } = newLog({
      unstable: [
        [1, 1],
        [2, 1],
      ],
    });
    expect(log.hasNextUnstableEnts()).toBe(true);
    log.acceptUnstable();
    expect(log.hasNextUnstableEnts()).toBe(false);
    expect(log.nextUnstableEnts()).toEqual([]);
    expect(log.hasNextOrInProgressUnstableEnts()).toBe(true);
    log.stableTo({ index: 2, term: 1 });
    expect(log.hasNextOrInProgressUnstableEnts()).toBe(false);
    expect(log.unstable.offset).toBe(3);
  });

  it('ignores an acknowledgement for an entry replaced in flight (ABA)', () => {
    const logger = collectingLogger();
    const { log } = newLog(
      {
        unstable: [
          [1, 1],
          [2, 1],
        ],
      },
      logger,
    );
    log.acceptUnstable();
    // A new leader at term 2 overwrites index 2 before the write of (2,1) completes.
    expect(log.maybeAppend(1, 1, 0, ents([2, 2]))).toBe(2);
    logger.lines.length = 0;

    log.stableTo({ index: 2, term: 1 });
    expect(logger.lines).toEqual([
      'INFO entry at (index,term)=(2,1) mismatched with entry at (2,2) in unstable log; ignoring',
    ]);
    expect(log.unstable.offset).toBe(1);
    expect(ids(log.nextUnstableEnts())).toEqual([[2, 2]]);
    // Entry 1 was not replaced: its acknowledgement still counts.
    log.stableTo({ index: 1, term: 1 });
    expect(log.unstable.offset).toBe(2);
    expect(ids(log.unstable.entries)).toEqual([[2, 2]]);
  });
});

describe('RaftLog.slice', () => {
  // Dummy (3,3); stable 4..6; unstable 7..9. All entries have the same size.
  const setup: Setup = {
    dummy: [3, 3],
    stable: [
      [4, 4],
      [5, 5],
      [6, 6],
    ],
    unstable: [
      [7, 7],
      [8, 8],
      [9, 9],
    ],
  };
  const s = entrySize(entry({ index: 4, term: 4 }));
  const cases: { lo: number; hi: number; max: number; want: number[] }[] = [
    { lo: 5, hi: 5, max: Infinity, want: [] },
    { lo: 4, hi: 7, max: Infinity, want: [4, 5, 6] },
    { lo: 7, hi: 10, max: Infinity, want: [7, 8, 9] },
    { lo: 5, hi: 9, max: Infinity, want: [5, 6, 7, 8] },
    // At least one entry, wherever it comes from.
    { lo: 4, hi: 10, max: 0, want: [4] },
    { lo: 6, hi: 10, max: 0, want: [6] },
    { lo: 7, hi: 10, max: 0, want: [7] },
    // Stable part exactly fills the budget.
    { lo: 4, hi: 10, max: 3 * s, want: [4, 5, 6] },
    { lo: 5, hi: 10, max: 2 * s, want: [5, 6] },
    // Stable part cut short by storage.
    { lo: 4, hi: 10, max: 2 * s + 1, want: [4, 5] },
    // Room left, but not for a whole unstable entry.
    { lo: 6, hi: 10, max: s + 1, want: [6] },
    { lo: 4, hi: 10, max: 3 * s + s - 1, want: [4, 5, 6] },
    // Stable and unstable combined.
    { lo: 6, hi: 10, max: 2 * s, want: [6, 7] },
    { lo: 4, hi: 10, max: 4 * s, want: [4, 5, 6, 7] },
    { lo: 5, hi: 10, max: 4 * s + 1, want: [5, 6, 7, 8] },
    { lo: 8, hi: 10, max: s, want: [8] },
  ];
  for (const c of cases) {
    it(`[${c.lo}, ${c.hi}) max ${c.max}`, () => {
      const { log } = newLog(setup);
      expect(log.slice(c.lo, c.hi, c.max).map((e) => e.index)).toEqual(c.want);
    });
  }

  it('throws ErrCompacted below firstIndex and panics past the end', () => {
    const { log } = newLog(setup);
    expect(() => log.slice(3, 5, Infinity)).toThrow(ErrCompacted);
    expect(() => log.slice(4, 11, Infinity)).toThrow('slice[4,11) out of bound [4,9]');
    expect(() => log.slice(6, 5, Infinity)).toThrow('invalid slice 6 > 5');
  });

  it('returns arrays the caller may modify', () => {
    const { log } = newLog(setup);
    log.slice(7, 9, Infinity).push(entry({ index: 100, term: 100 }));
    log.slice(5, 8, Infinity).push(entry({ index: 100, term: 100 }));
    expect(log.lastIndex()).toBe(9);
    expect(log.unstable.entries).toHaveLength(3);
  });

  it('entries reads to the end and returns nothing past it', () => {
    const { log } = newLog(setup);
    expect(log.entries(8, Infinity).map((e) => e.index)).toEqual([8, 9]);
    expect(log.entries(10, Infinity)).toEqual([]);
    expect(log.entries(4, 2 * s).map((e) => e.index)).toEqual([4, 5]);
    expect(() => log.entries(3, Infinity)).toThrow(ErrCompacted);
    expect(log.allEntries().map((e) => e.index)).toEqual([4, 5, 6, 7, 8, 9]);
  });

  it('scan visits every entry in order, in pages within the size', () => {
    const { log } = newLog(setup);
    for (const pageSize of [0, s, 2 * s, 2 * s + 1, 5 * s, Infinity]) {
      const pages: number[][] = [];
      log.scan(4, 10, pageSize, (page) => {
        pages.push(page.map((e) => e.index));
      });
      expect(pages.flat()).toEqual([4, 5, 6, 7, 8, 9]);
      for (const page of pages) {
        expect(page.length).toBeGreaterThan(0);
        if (page.length > 1) expect(page.length * s).toBeLessThanOrEqual(pageSize);
      }
    }
  });

  it('scan stops when the visitor throws', () => {
    const { log } = newLog(setup);
    const seen: number[] = [];
    const stop = new Error('stop');
    expect(() =>
      log.scan(4, 10, s, (page) => {
        seen.push(page[0]!.index);
        if (seen.length === 2) throw stop;
      }),
    ).toThrow(stop);
    expect(seen).toEqual([4, 5]);
  });

  it('scan reports compaction', () => {
    const { log } = newLog(setup);
    expect(() => log.scan(2, 6, Infinity, () => {})).toThrow(ErrCompacted);
  });
});

describe('RaftLog.restore', () => {
  it('logs, commits the snapshot and makes it the start of the log', () => {
    const logger = collectingLogger();
    const { log, storage } = newLog({}, logger);
    const s = snap(11, 1);
    log.restore(s);
    expect(logger.lines).toEqual([
      'INFO log [committed=0, applied=0, applying=0, unstable.offset=1, unstable.offsetInProgress=1, ' +
        'len(unstable.Entries)=0] starts to restore snapshot [index: 11, term: 1]',
    ]);
    expect(log.committed).toBe(11);
    expect(log.applied).toBe(0);
    expect(log.firstIndex()).toBe(12);
    expect(log.lastIndex()).toBe(11);
    expect(log.lastEntryID()).toEqual({ index: 11, term: 1 });
    expect(log.snapshot()).toBe(s);
    expect(log.hasNextUnstableSnapshot()).toBe(true);
    expect(log.nextUnstableSnapshot()).toBe(s);

    log.acceptUnstable();
    expect(log.hasNextUnstableSnapshot()).toBe(false);
    expect(log.hasNextOrInProgressSnapshot()).toBe(true);

    storage.applySnapshot(s);
    log.stableSnapTo(11);
    expect(log.hasNextOrInProgressSnapshot()).toBe(false);
    expect(log.snapshot()).toBe(storage.snapshot());
    expect(log.firstIndex()).toBe(12);
    expect(log.lastIndex()).toBe(11);
  });

  it('drops unstable entries and mentions them in the log line', () => {
    const logger = collectingLogger();
    const { log } = newLog(
      {
        stable: [[1, 1]],
        unstable: [
          [2, 1],
          [3, 1],
        ],
      },
      logger,
    );
    log.commitTo(2);
    logger.lines.length = 0;
    log.restore(snap(5, 2));
    expect(logger.lines).toEqual([
      'INFO log [committed=2, applied=0, applying=0, unstable.offset=2, unstable.offsetInProgress=2, ' +
        'len(unstable.Entries)=2] starts to restore snapshot [index: 5, term: 2]',
    ]);
    expect(log.unstable.entries).toEqual([]);
    expect(log.unstable.offset).toBe(6);
    expect(() => log.term(3)).toThrow(ErrCompacted);
    expect(log.term(5)).toBe(2);
    expect(log.append(ents([6, 2]))).toBe(6);
  });
});
