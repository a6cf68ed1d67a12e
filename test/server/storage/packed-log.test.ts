import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { entrySize } from '../../../src/raft/types.js';
import { PackedLog } from '../../../src/server/storage/packed-log.js';
import { ENTRY_TYPES } from '../../../src/server/storage/records.js';
import { fullGc } from '../../support/gc.js';
import { logEntries } from './helpers.js';

/** The replay rule written out plainly: the model the packed log is checked against. */
interface ModelEntry {
  index: number;
  term: number;
  typeCode: number;
  data: number[];
}

type Op =
  | { kind: 'add'; at: number; term: number; typeCode: number; data: number[]; newBuffer: boolean }
  | { kind: 'drop'; at: number }
  | { kind: 'truncate'; at: number }
  | { kind: 'clear'; start: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('add' as const),
      // Relative to the end: -3 rewrites the last three, 0 appends, 2 leaves a gap.
      at: fc.integer({ min: -4, max: 2 }),
      term: fc.integer({ min: 0, max: 2 ** 40 }),
      typeCode: fc.integer({ min: 0, max: ENTRY_TYPES.length - 1 }),
      data: fc.array(fc.integer({ min: 0, max: 255 }), { maxLength: 200 }),
      newBuffer: fc.boolean(),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('drop' as const), at: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }) },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant('clear' as const), start: fc.integer({ min: 1, max: 50 }) }),
  },
);

describe('PackedLog', () => {
  it('holds what the replay rule says, entry for entry, through drops and truncations', () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 120 }), (ops) => {
        const log = new PackedLog();
        let model: ModelEntry[] = [];
        let start: number | undefined;
        let buf = new Uint8Array(4096);
        let used = 0;
        for (const op of ops) {
          const end = (start ?? 1) + model.length;
          if (op.kind === 'add') {
            const index = Math.max(1, end + op.at);
            if (op.newBuffer || used + op.data.length > buf.length) {
              buf = new Uint8Array(4096);
              used = 0;
            }
            buf.set(op.data, used);
            log.add(index, op.term, op.typeCode, buf, used, used + op.data.length);
            used += op.data.length;
            const e = { index, term: op.term, typeCode: op.typeCode, data: op.data };
            if (start === undefined || index < start || index > end) {
              start = index;
              model = [e];
            } else {
              model = [...model.slice(0, index - start), e];
            }
          } else if (op.kind === 'drop' && start !== undefined) {
            const n = op.at % (model.length + 1);
            log.dropBefore(start + n);
            model = model.slice(n);
            start += n;
          } else if (op.kind === 'truncate' && start !== undefined) {
            const n = op.at % (model.length + 1);
            log.truncateAfter(start + n - 1);
            model = model.slice(0, n);
          } else if (op.kind === 'clear') {
            log.clear(op.start);
            start = op.start;
            model = [];
          }
          expect(log.start).toBe(start);
          expect(log.length).toBe(model.length);
        }
        const got = logEntries(log);
        expect(got.map((e) => ({ index: e.index, term: e.term, type: e.type, data: [...e.data] }))).toEqual(
          model.map((m) => ({ index: m.index, term: m.term, type: ENTRY_TYPES[m.typeCode], data: m.data })),
        );
        for (const e of got) {
          expect(log.term(e.index)).toBe(e.term);
          expect(log.size(e.index)).toBe(entrySize(e));
          // A view of the buffer the entry was read from, not a copy, and a plain Uint8Array.
          expect(Object.getPrototypeOf(e.data)).toBe(Uint8Array.prototype);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('refuses indexes it does not hold', () => {
    const log = new PackedLog();
    const buf = Uint8Array.of(1, 2, 3);
    log.add(5, 1, 0, buf, 0, 1);
    log.add(6, 1, 0, buf, 1, 3);
    expect(() => log.at(4)).toThrow(/index 4 is not in \[5, 6\]/);
    expect(() => log.term(7)).toThrow(RangeError);
    expect(() => log.dropBefore(8)).toThrow(RangeError);
    expect(() => log.truncateAfter(3)).toThrow(RangeError);
    expect([...log.at(6).data]).toEqual([2, 3]);
    expect(log.at(6).data.buffer).toBe(buf.buffer);
  });

  it('lets a buffer go once the entries in it are dropped', async () => {
    const log = new PackedLog();
    const refs: WeakRef<Uint8Array>[] = [];
    // Three buffers of two entries each, as three WAL segments would be.
    (() => {
      for (let b = 0; b < 3; b++) {
        const buf = new Uint8Array(1 << 20);
        refs.push(new WeakRef(buf));
        log.add(2 * b + 1, 1, 0, buf, 0, 10);
        log.add(2 * b + 2, 1, 0, buf, 10, 20);
      }
    })();
    log.dropBefore(4); // entries 4..6 left: the first buffer is unused, the second still holds entry 4
    await new Promise((r) => setImmediate(r));
    fullGc();
    expect(refs.map((r) => r.deref() !== undefined)).toEqual([false, true, true]);
    log.dropBefore(7); // nothing left
    await new Promise((r) => setImmediate(r));
    fullGc();
    expect(refs.map((r) => r.deref() !== undefined)).toEqual([false, false, false]);
  });
});
