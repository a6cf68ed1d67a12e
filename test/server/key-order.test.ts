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
        const order = new KeyOrder();
        const reference: string[] = [];
        for (const o of ops) {
          if (o.kind === 'toggle') {
            // Present keys are removed, absent ones added: the store's only two transitions.
            const at = reference.indexOf(o.key);
            if (at >= 0) {
              reference.splice(at, 1);
              order.delete(o.key);
            } else {
              reference.push(o.key);
              reference.sort(compareKeys);
              order.add(o.key);
            }
          } else {
            expect(order.keys()).toEqual(reference);
            const lb = reference.findIndex((k) => compareKeys(k, o.key) >= 0);
            expect(order.lowerBound(o.key)).toBe(lb === -1 ? reference.length : lb);
          }
        }
        expect(order.keys()).toEqual(reference);
      }),
    );
  });

  it('starts from a sorted array and merges what came after it', () => {
    const order = new KeyOrder(['b', 'd', 'f']);
    order.add('e');
    order.delete('b');
    order.add('a');
    order.delete('a');
    order.delete('f');
    order.add('f');
    expect(order.keys()).toEqual(['d', 'e', 'f']);
    expect(order.lowerBound('e')).toBe(1);
  });
});
