import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SeqQueue } from '../../src/server/seq-queue.js';

describe('SeqQueue', () => {
  it('files, finds and takes values as a map by number would, whatever the order of taking', () => {
    // Ops: file the next number (after a gap of 0-3), take a number (filed or not), or clear.
    const op = fc.oneof(
      { weight: 5, arbitrary: fc.record({ kind: fc.constant('add' as const), gap: fc.nat(3) }) },
      { weight: 4, arbitrary: fc.record({ kind: fc.constant('take' as const), back: fc.nat(40) }) },
      { weight: 3, arbitrary: fc.record({ kind: fc.constant('takeOldest' as const) }) },
      { weight: 1, arbitrary: fc.record({ kind: fc.constant('clear' as const) }) },
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 300 }), (ops) => {
        const q = new SeqQueue<{ n: number }>();
        const model = new Map<number, { n: number }>();
        let next = 1;
        for (const o of ops) {
          if (o.kind === 'add') {
            next += o.gap;
            const v = { n: next };
            q.add(next, v);
            model.set(next, v);
            next++;
          } else if (o.kind === 'take') {
            const n = next - 1 - o.back;
            expect(q.take(n)).toBe(model.get(n));
            model.delete(n);
          } else if (o.kind === 'takeOldest') {
            const oldest = q.oldest();
            const lowest = Math.min(...model.keys());
            expect(oldest).toBe(model.get(lowest));
            if (oldest !== undefined) {
              expect(q.take(oldest.n)).toBe(oldest);
              model.delete(oldest.n);
            }
          } else {
            q.clear();
            model.clear();
          }
          expect(q.size).toBe(model.size);
          expect([...q.values()]).toEqual([...model.keys()].sort((a, b) => a - b).map((n) => model.get(n)));
          for (let n = next - 45; n < next + 2; n++) expect(q.get(n)).toBe(model.get(n));
        }
      }),
      { numRuns: 300 },
    );
  });

  it('grows past its first ring and keeps every value in order', () => {
    const q = new SeqQueue<number>();
    for (let n = 1; n <= 10_000; n++) q.add(n, n * 10);
    expect(q.size).toBe(10_000);
    expect(q.get(1)).toBe(10);
    expect(q.get(10_000)).toBe(100_000);
    for (let n = 2; n <= 10_000; n += 2) q.take(n);
    expect([...q.values()].slice(0, 3)).toEqual([10, 30, 50]);
    expect(q.take(1)).toBe(10);
    expect(q.oldest()).toBe(30);
  });

  it('refuses a number that is not above every one filed, and a gap it cannot span', () => {
    const q = new SeqQueue<string>();
    q.add(5, 'a');
    expect(() => q.add(5, 'b')).toThrow(/not above 5/);
    expect(() => q.add(3, 'b')).toThrow(/not above 5/);
    expect(() => q.add(5 + 2 ** 24, 'far')).toThrow(/past the oldest number filed, 5/);
    expect(q.get(5)).toBe('a');
    // Once everything is taken, numbering may start anywhere above.
    q.take(5);
    q.add(1_000_000, 'c');
    expect([...q.values()]).toEqual(['c']);
  });
});
