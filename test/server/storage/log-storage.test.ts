import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../../src/raft/logger.js';
import { MemoryStorage } from '../../../src/raft/storage.js';
import { type Entry, emptyConfState, type Snapshot } from '../../../src/raft/types.js';
import { LogStorage } from '../../../src/server/storage/log-storage.js';
import { PackedLog } from '../../../src/server/storage/packed-log.js';
import {
  entryPayloadSize,
  readEntryPayload,
  writeEntryPayload,
} from '../../../src/server/storage/records.js';
import { plain } from './helpers.js';

/** Entries first..last with non-decreasing terms from `terms` and data naming them. */
function makeEntries(first: number, terms: number[]): Entry[] {
  return terms.map((term, k) => ({
    term,
    index: first + k,
    type: k % 5 === 4 ? 'EntryConfChange' : 'EntryNormal',
    data: new TextEncoder().encode(k % 7 === 6 ? '' : `e${first + k}t${term}`.repeat(1 + (k % 3))),
  }));
}

/** A packed log of `ents`, read from WAL-encoded records the way a replay reads them. */
function packed(ents: Entry[], start?: number): PackedLog {
  const log = new PackedLog();
  if (start !== undefined) log.clear(start);
  const buf = new Uint8Array(ents.reduce((n, e) => n + entryPayloadSize(e), 0));
  let pos = 0;
  for (const e of ents) {
    const end = writeEntryPayload(buf, pos, e);
    readEntryPayload(buf, pos, end, log);
    pos = end;
  }
  return log;
}

function snapshotAt(index: number, term: number, tag = 0): Snapshot {
  return {
    data: Uint8Array.of(tag),
    metadata: { index, term, confState: { ...emptyConfState(), voters: [1] } },
  };
}

/** What a call did: its value, or the error it threw (panics by their kind only). */
function outcome<T>(f: () => T): { ok: T } | { err: unknown } {
  try {
    return { ok: f() };
  } catch (err) {
    return { err: err instanceof Error && err.name === 'RaftPanic' ? 'panic' : err };
  }
}

type Op =
  | { kind: 'append'; from: number; terms: number[] }
  | { kind: 'compact'; at: number }
  | { kind: 'createSnapshot'; at: number }
  | { kind: 'applySnapshot'; ahead: number }
  | { kind: 'entries'; lo: number; span: number; maxSize: number }
  | { kind: 'term'; at: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({
    kind: fc.constant('append' as const),
    // Relative to the last index: -5 rewrites from five back, 1 appends, 2 leaves a gap.
    from: fc.integer({ min: -8, max: 2 }),
    terms: fc.array(fc.integer({ min: 0, max: 2 }), { minLength: 1, maxLength: 6 }),
  }),
  fc.record({ kind: fc.constant('compact' as const), at: fc.integer({ min: -2, max: 12 }) }),
  fc.record({ kind: fc.constant('createSnapshot' as const), at: fc.integer({ min: -2, max: 12 }) }),
  fc.record({ kind: fc.constant('applySnapshot' as const), ahead: fc.integer({ min: -2, max: 6 }) }),
  fc.record({
    kind: fc.constant('entries' as const),
    lo: fc.integer({ min: -2, max: 14 }),
    span: fc.integer({ min: 1, max: 16 }),
    maxSize: fc.oneof(fc.constant(Number.POSITIVE_INFINITY), fc.integer({ min: 0, max: 200 })),
  }),
  fc.record({ kind: fc.constant('term' as const), at: fc.integer({ min: -2, max: 14 }) }),
);

describe('LogStorage', () => {
  it('answers every call as one MemoryStorage holding the same snapshot and log would', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 6 }),
        fc.array(fc.integer({ min: 1, max: 3 }), { maxLength: 14 }),
        fc.integer({ min: 0, max: 4 }),
        fc.array(opArb, { maxLength: 40 }),
        (snapIndex, termSteps, logFromBehind, ops) => {
          // The replayed log may begin before the snapshot (those entries are dropped).
          let t = 1;
          const terms = termSteps.map((s) => (t += s - 1));
          const logStart = Math.max(1, snapIndex + 1 - logFromBehind);
          const replayed = makeEntries(logStart, terms);
          const snap = snapIndex > 0 ? snapshotAt(snapIndex, 1) : undefined;

          const model = new MemoryStorage(silentLogger);
          if (snap) model.applySnapshot(snap);
          model.append(replayed);
          const ls = new LogStorage(silentLogger, snap, packed(replayed));

          let tag = 1;
          const same = <T>(f: (s: MemoryStorage | LogStorage) => T, show: (v: T) => unknown = (v) => v) => {
            const want = outcome(() => f(model));
            const got = outcome(() => f(ls));
            if ('ok' in want && 'ok' in got) expect(show(got.ok)).toEqual(show(want.ok));
            else expect(got).toEqual(want);
          };
          const check = () => {
            same((s) => [s.firstIndex(), s.lastIndex()]);
            same((s) => s.snapshot());
            same((s) => s.initialState());
            same((s) => s.term(s.firstIndex() - 1));
            // Every suffix under a few size limits: the limit falls at, inside and across
            // the seam between the replayed entries and the ones appended after them.
            for (let lo = model.firstIndex(); lo <= model.lastIndex(); lo++) {
              for (const maxSize of [0, 30, 70, 150, Number.POSITIVE_INFINITY]) {
                same((s) => s.entries(lo, s.lastIndex() + 1, maxSize), plain);
              }
            }
          };
          check();
          for (const op of ops) {
            const first = model.firstIndex();
            const last = model.lastIndex();
            switch (op.kind) {
              case 'append': {
                const from = Math.max(1, last + op.from);
                // Terms never fall below the one before, as a leader's log would have them.
                const before = outcome(() => model.term(from - 1));
                const base = 'ok' in before ? before.ok : 1;
                let term = base;
                const ents = makeEntries(
                  from,
                  op.terms.map((d) => (term += d)),
                );
                same((s) => s.append(ents));
                break;
              }
              case 'compact':
                same((s) => s.compact(first - 1 + op.at));
                break;
              case 'createSnapshot': {
                // Not below the first index: MemoryStorage has no term to give there.
                const at = Math.max(first - 1, model.snapshot().metadata.index + op.at);
                same((s) => s.createSnapshot(at, undefined, Uint8Array.of(tag)));
                tag++;
                break;
              }
              case 'applySnapshot': {
                const index = Math.max(0, last + op.ahead);
                const s2 = snapshotAt(index, 5, tag++);
                same((s) => s.applySnapshot(s2));
                break;
              }
              case 'entries':
                same((s) => s.entries(first + op.lo - 1, first + op.lo - 1 + op.span, op.maxSize), plain);
                break;
              case 'term':
                same((s) => s.term(first + op.at - 2));
                break;
            }
            check();
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  it('keeps the HardState it is given', () => {
    const ls = new LogStorage(silentLogger, undefined, packed(makeEntries(1, [1, 1, 2])));
    ls.setHardState({ term: 2, vote: 3, commit: 2 });
    expect(ls.hardState).toEqual({ term: 2, vote: 3, commit: 2 });
    expect(ls.initialState().hardState).toEqual({ term: 2, vote: 3, commit: 2 });
  });

  it('refuses a replayed log that leaves a gap after the snapshot', () => {
    expect(() => new LogStorage(silentLogger, snapshotAt(3, 1), packed(makeEntries(6, [1, 1])))).toThrow(
      /starts at 6, after 4/,
    );
  });
});
