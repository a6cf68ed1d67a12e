import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Inflights } from '../../src/raft/inflights.js';
import { RaftPanic } from '../../src/raft/logger.js';

function fill(in_: Inflights, from: number, to: number, bytes = 100): void {
  for (let i = from; i <= to; i++) in_.add(i, bytes);
}

describe('Inflights', () => {
  it('is full at `size` messages and refuses more', () => {
    const in_ = new Inflights(10);
    fill(in_, 0, 4);
    expect(in_.count()).toBe(5);
    expect(in_.full()).toBe(false);
    fill(in_, 5, 9);
    expect(in_.count()).toBe(10);
    expect(in_.full()).toBe(true);
    expect(() => in_.add(10, 1)).toThrow(RaftPanic);
  });

  it('frees every message up to an index, and nothing for an older one', () => {
    const in_ = new Inflights(10);
    fill(in_, 0, 9);
    in_.freeLE(0);
    expect(in_.count()).toBe(9);
    in_.freeLE(4);
    expect(in_.count()).toBe(5);
    in_.freeLE(3);
    expect(in_.count()).toBe(5);
    expect(in_.bytes()).toBe(500);
    in_.freeLE(9);
    expect(in_.count()).toBe(0);
    expect(in_.bytes()).toBe(0);
  });

  it('wraps around its ring buffer', () => {
    const in_ = new Inflights(10);
    fill(in_, 0, 9);
    in_.freeLE(5); // 6..9 remain
    fill(in_, 10, 15); // wraps into the freed slots
    expect(in_.full()).toBe(true);
    in_.freeLE(12);
    expect(in_.count()).toBe(3);
    fill(in_, 16, 22);
    expect(in_.full()).toBe(true);
    in_.freeLE(22);
    expect(in_.count()).toBe(0);
    fill(in_, 23, 32);
    expect(in_.full()).toBe(true);
  });

  it('is full once the bytes reach maxBytes', () => {
    const in_ = new Inflights(10, 1000);
    in_.add(1, 600);
    expect(in_.full()).toBe(false);
    in_.add(2, 400);
    expect(in_.full()).toBe(true);
    expect(() => in_.add(3, 1)).toThrow('cannot add into a Full inflights');
    in_.freeLE(1);
    expect(in_.full()).toBe(false);
    expect(in_.bytes()).toBe(400);
    // A single message may overshoot the limit; it fills the window.
    in_.add(3, 5000);
    expect(in_.full()).toBe(true);
  });

  it('reads a maxBytes of 0 as no limit', () => {
    const in_ = new Inflights(3, 0);
    expect(in_.full()).toBe(false);
    in_.add(1, 1e9);
    expect(in_.full()).toBe(false);
  });

  it('resets to empty', () => {
    const in_ = new Inflights(3, 1000);
    fill(in_, 1, 3);
    in_.reset();
    expect(in_.count()).toBe(0);
    expect(in_.bytes()).toBe(0);
    expect(in_.full()).toBe(false);
    fill(in_, 7, 9);
    in_.freeLE(8);
    expect(in_.count()).toBe(1);
  });

  it('clones independently', () => {
    const a = new Inflights(4, 1000);
    fill(a, 1, 3);
    const b = a.clone();
    a.freeLE(2);
    b.add(4, 100);
    expect(a.count()).toBe(1);
    expect(b.count()).toBe(4);
    expect(b.full()).toBe(true);
    b.freeLE(3);
    expect(b.count()).toBe(1);
    expect(b.bytes()).toBe(100);
  });

  it('behaves like a simple queue', () => {
    type Op = { add: number } | { free: number };
    const ops = fc.array(
      fc.oneof(
        fc.record({ add: fc.integer({ min: 0, max: 50 }) }),
        fc.record({ free: fc.integer({ min: 0, max: 200 }) }),
      ),
      { maxLength: 60 },
    );
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 6 }), ops, (size, script: Op[]) => {
        const in_ = new Inflights(size, 120);
        const model: { index: number; bytes: number }[] = [];
        let last = 0;
        for (const op of script) {
          if ('add' in op) {
            if (in_.full()) continue;
            last += 1 + (op.add % 3);
            in_.add(last, op.add);
            model.push({ index: last, bytes: op.add });
          } else {
            in_.freeLE(op.free);
            while (model.length > 0 && model[0]!.index <= op.free) model.shift();
          }
          const bytes = model.reduce((n, m) => n + m.bytes, 0);
          expect(in_.count()).toBe(model.length);
          expect(in_.bytes()).toBe(bytes);
          expect(in_.full()).toBe(model.length === size || bytes >= 120);
        }
      }),
    );
  });
});
