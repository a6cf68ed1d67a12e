import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compareKeys, KeyOrder } from '../../src/server/key-order.js';

describe('KeyOrder', () => {
  it('matches an eagerly sorted array under any mix of adds, deletes and reads', () => {
    const key = fc.constantFrom('a', 'b', 'ab', 'z', '\u{10000}', '\uffff', 'k1', 'k10', 'k2', '');
    const op = fc.oneof(
      fc.record({ kind: fc.constant('toggle' as const), key }),
      fc.record({ kind: fc.constant('read' as const), key }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 200 }), (ops) => {
        const order = new KeyOrder<{ key: string }>();
        // The item of each present key; a key added again gets a new one, as in the store.
        const present = new Map<string, { key: string }>();
        const reference = () => [...present.values()].sort((a, b) => compareKeys(a.key, b.key));
        for (const o of ops) {
          if (o.kind === 'toggle') {
            // Present keys are removed, absent ones added: the store's only two transitions.
            const item = present.get(o.key);
            if (item) {
              present.delete(o.key);
              order.delete(item);
            } else {
              const created = { key: o.key };
              present.set(o.key, created);
              order.add(created);
            }
          } else {
            const expected = reference();
            expect(order.items()).toEqual(expected);
            // The very objects, not equal copies.
            for (const [i, item] of order.items().entries()) expect(item).toBe(expected[i]);
            const lb = expected.findIndex((item) => compareKeys(item.key, o.key) >= 0);
            expect(order.lowerBound(o.key)).toBe(lb === -1 ? expected.length : lb);
          }
        }
        expect(order.items()).toEqual(reference());
      }),
    );
  });

  it('starts from a sorted array, merges what came after it into a new array', () => {
    const [b, d, f] = [{ key: 'b' }, { key: 'd' }, { key: 'f' }];
    const order = new KeyOrder([b, d, f]);
    const before = order.items();
    const [a, e, f2] = [{ key: 'a' }, { key: 'e' }, { key: 'f' }];
    order.add(e);
    order.delete(b);
    order.add(a);
    order.delete(a);
    order.delete(f);
    order.add(f2);
    expect(order.items().map((i) => i.key)).toEqual(['d', 'e', 'f']);
    expect(order.items()[2]).toBe(f2);
    expect(order.lowerBound('e')).toBe(1);
    // Whoever held the old array (a snapshot being encoded) still has the old order.
    expect(before).toEqual([b, d, f]);
  });
});
