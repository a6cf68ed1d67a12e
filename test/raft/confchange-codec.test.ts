import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  confChangeAsV1,
  confChangeAsV2,
  confChangesFromString,
  confChangesToString,
  confChangeToEntryData,
  decodeConfChange,
  decodeConfChangeEntry,
  decodeConfChangeV2,
  encodeConfChange,
  encodeConfChangeV2,
  enterJoint,
  leaveJoint,
} from '../../src/raft/confchange-codec.js';
import {
  CONF_CHANGE_TRANSITIONS,
  CONF_CHANGE_TYPES,
  type ConfChange,
  type ConfChangeSingle,
  type ConfChangeV2,
  EMPTY_BYTES,
} from '../../src/raft/types.js';

const bytes = (...b: number[]) => Uint8Array.from(b);
const text = (s: string) => new TextEncoder().encode(s);

function v1(fields: Partial<ConfChange>): ConfChange {
  return { kind: 'v1', type: 'ConfChangeAddNode', nodeId: 0, context: EMPTY_BYTES, id: 0, ...fields };
}

function v2(fields: Partial<ConfChangeV2>): ConfChangeV2 {
  return { kind: 'v2', transition: 'ConfChangeTransitionAuto', changes: [], context: EMPTY_BYTES, ...fields };
}

// Ids up to 2^53 - 1 exercise every varint length a JS number can hold (1..8 bytes).
const id = fc.oneof(fc.nat(300), fc.maxSafeNat());
const context = fc.oneof(fc.constant(EMPTY_BYTES), fc.uint8Array({ minLength: 1, maxLength: 40 }));
const single: fc.Arbitrary<ConfChangeSingle> = fc.record({
  type: fc.constantFrom(...CONF_CHANGE_TYPES),
  nodeId: id,
});
const arbV1: fc.Arbitrary<ConfChange> = fc.record({
  kind: fc.constant('v1' as const),
  type: fc.constantFrom(...CONF_CHANGE_TYPES),
  nodeId: id,
  context,
  id,
});
const arbV2: fc.Arbitrary<ConfChangeV2> = fc.record({
  kind: fc.constant('v2' as const),
  transition: fc.constantFrom(...CONF_CHANGE_TRANSITIONS),
  changes: fc.array(single, { maxLength: 6 }),
  context,
});

describe('encoding matches gogoproto Marshal', () => {
  // Keys are (field << 3) | wireType: ID=1 -> 08, Type=2 -> 10, NodeID=3 -> 18, Context=4 bytes -> 22.
  it('writes the zero-valued non-nullable fields of ConfChange', () => {
    expect(encodeConfChange(v1({ type: 'ConfChangeAddNode', nodeId: 3 }))).toEqual(
      bytes(0x08, 0x00, 0x10, 0x00, 0x18, 0x03),
    );
  });

  it('writes multi-byte varints and a non-empty context', () => {
    // 300 = 0b10_0101100 -> ac 02
    const cc = v1({ id: 1, type: 'ConfChangeRemoveNode', nodeId: 300, context: text('ab') });
    expect(encodeConfChange(cc)).toEqual(
      bytes(0x08, 0x01, 0x10, 0x01, 0x18, 0xac, 0x02, 0x22, 0x02, 0x61, 0x62),
    );
  });

  it('encodes the largest safe integer in 8 bytes', () => {
    const cc = v1({ type: 'ConfChangeUpdateNode', nodeId: Number.MAX_SAFE_INTEGER });
    expect(encodeConfChange(cc)).toEqual(
      bytes(0x08, 0x00, 0x10, 0x02, 0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f),
    );
  });

  it('writes the transition of an empty ConfChangeV2 and nothing else', () => {
    expect(encodeConfChangeV2(v2({}))).toEqual(bytes(0x08, 0x00));
  });

  it('writes changes as length-delimited ConfChangeSingle messages in order', () => {
    // Transition=1 -> 08, Changes=2 -> 12, Context=3 -> 1a; inside a change Type=1 -> 08, NodeID=2 -> 10.
    const cc = v2({
      transition: 'ConfChangeTransitionJointExplicit',
      changes: [
        { type: 'ConfChangeAddLearnerNode', nodeId: 2 },
        { type: 'ConfChangeRemoveNode', nodeId: 1 },
      ],
      context: text('x'),
    });
    expect(encodeConfChangeV2(cc)).toEqual(
      bytes(
        0x08,
        0x02,
        0x12,
        0x04,
        0x08,
        0x03,
        0x10,
        0x02,
        0x12,
        0x04,
        0x08,
        0x01,
        0x10,
        0x01,
        0x1a,
        0x01,
        0x78,
      ),
    );
  });

  it('refuses values that the wire format cannot carry', () => {
    expect(() => encodeConfChange(v1({ nodeId: -1 }))).toThrow(/NodeID/);
    expect(() => encodeConfChange(v1({ nodeId: 1.5 }))).toThrow(/NodeID/);
    expect(() => encodeConfChange(v1({ id: 2 ** 60 }))).toThrow(/ID/);
    expect(() => encodeConfChangeV2(v2({ changes: [{ type: 'Nope' as never, nodeId: 1 }] }))).toThrow(/Type/);
  });
});

describe('round trips', () => {
  it('decode(encode(cc)) === cc for ConfChange', () => {
    fc.assert(
      fc.property(arbV1, (cc) => {
        expect(decodeConfChange(encodeConfChange(cc))).toEqual(cc);
      }),
    );
  });

  it('decode(encode(cc)) === cc for ConfChangeV2', () => {
    fc.assert(
      fc.property(arbV2, (cc) => {
        expect(decodeConfChangeV2(encodeConfChangeV2(cc))).toEqual(cc);
      }),
    );
  });

  it('through entry data for either version', () => {
    fc.assert(
      fc.property(fc.oneof(arbV1, arbV2), (cc) => {
        const ent = confChangeToEntryData(cc);
        expect(ent.type).toBe(cc.kind === 'v1' ? 'EntryConfChange' : 'EntryConfChangeV2');
        expect(decodeConfChangeEntry(ent)).toEqual(cc);
      }),
    );
  });

  it('encoding is canonical: re-encoding decoded bytes gives the same bytes', () => {
    fc.assert(
      fc.property(arbV2, (cc) => {
        const b = encodeConfChangeV2(cc);
        expect(encodeConfChangeV2(decodeConfChangeV2(b))).toEqual(b);
      }),
    );
  });

  it('does not alias the input buffer', () => {
    const b = encodeConfChange(v1({ context: text('ctx') }));
    const cc = decodeConfChange(b);
    b.fill(0);
    expect(cc.context).toEqual(text('ctx'));
  });
});

describe('decoding', () => {
  it('defaults absent fields', () => {
    expect(decodeConfChange(EMPTY_BYTES)).toEqual(v1({}));
    expect(decodeConfChangeV2(EMPTY_BYTES)).toEqual(v2({}));
  });

  it('accepts fields in any order, the last scalar winning', () => {
    expect(decodeConfChange(bytes(0x18, 0x05, 0x10, 0x03, 0x18, 0x07))).toEqual(
      v1({ type: 'ConfChangeAddLearnerNode', nodeId: 7 }),
    );
  });

  it('skips unknown fields of every wire type, including groups', () => {
    const unknown = [
      ...[0x78, 0xff, 0xff, 0x01], // field 15 varint
      ...[0x81, 0x01, 1, 2, 3, 4, 5, 6, 7, 8], // field 16 fixed64
      ...[0x8a, 0x01, 0x02, 0xaa, 0xbb], // field 17 bytes
      ...[0x95, 0x01, 1, 2, 3, 4], // field 18 fixed32
      ...[0x9b, 0x01, 0x08, 0x01, 0xa3, 0x01, 0xa4, 0x01, 0x9c, 0x01], // field 19 group, nested group 20
      ...[0x78, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01], // field 15, 64-bit varint
    ];
    expect(decodeConfChange(bytes(...unknown, 0x18, 0x09))).toEqual(v1({ nodeId: 9 }));
    const single = [0x08, 0x01, ...unknown, 0x10, 0x04];
    expect(decodeConfChangeV2(bytes(0x12, single.length, ...single))).toEqual(
      v2({ changes: [{ type: 'ConfChangeRemoveNode', nodeId: 4 }] }),
    );
  });

  const malformed: [string, Uint8Array, RegExp][] = [
    ['a truncated varint', bytes(0x18, 0x80), /raftpb\.ConfChange: truncated varint at offset 1/],
    ['a truncated key', bytes(0x80), /truncated varint at offset 0/],
    ['an 11-byte varint', bytes(0x18, ...new Array(10).fill(0x80), 0x01), /varint longer than 10 bytes/],
    ['a field number of 0', bytes(0x00, 0x01), /invalid field number 0 at offset 0/],
    ['a wrong wire type for NodeID', bytes(0x1a, 0x00), /wrong wire type 2 for field NodeID/],
    ['a wrong wire type for Context', bytes(0x20, 0x00), /wrong wire type 0 for field Context/],
    ['a length past the end', bytes(0x22, 0x05, 0x61), /length 5 runs past the end/],
    ['a truncated fixed64', bytes(0x41, 1, 2, 3), /truncated fixed-width field/],
    ['a truncated fixed32', bytes(0x45, 1, 2, 3), /truncated fixed-width field/],
    ['an illegal wire type', bytes(0x46), /illegal wire type 6/],
    ['a stray end group', bytes(0x44), /unexpected end group/],
    ['an unterminated group', bytes(0x43, 0x08, 0x01), /unterminated group/],
    ['a mismatched end group', bytes(0x43, 0x4c), /mismatched end group/],
    ['an unknown enum value', bytes(0x10, 0x04), /unknown ConfChangeType value 4/],
    [
      'an id beyond 2^53',
      bytes(0x18, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x10),
      /NodeID exceeds Number.MAX_SAFE_INTEGER/,
    ],
  ];
  it.each(malformed)('rejects %s', (_, b, err) => {
    expect(() => decodeConfChange(b)).toThrow(err);
  });

  it('reports errors inside nested changes with their message name', () => {
    expect(() => decodeConfChangeV2(bytes(0x12, 0x02, 0x08, 0x09))).toThrow(
      /raftpb\.ConfChangeSingle: unknown ConfChangeType value 9/,
    );
    expect(() => decodeConfChangeV2(bytes(0x08, 0x03))).toThrow(/unknown ConfChangeTransition value 3/);
    expect(() => decodeConfChangeV2(bytes(0x10, 0x01))).toThrow(/wrong wire type 0 for field Changes/);
  });

  it('never throws anything but an Error on arbitrary input', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (b) => {
        for (const decode of [decodeConfChange, decodeConfChangeV2]) {
          try {
            decode(b);
          } catch (err) {
            expect(err).toBeInstanceOf(Error);
          }
        }
      }),
    );
  });

  it('refuses to decode a normal entry', () => {
    expect(() => decodeConfChangeEntry({ type: 'EntryNormal', data: EMPTY_BYTES })).toThrow(
      /EntryNormal does not carry a conf change/,
    );
  });
});

describe('V1/V2 views', () => {
  it('asV2 wraps a V1 change with the Auto transition and its context', () => {
    const cc = v1({ type: 'ConfChangeAddLearnerNode', nodeId: 4, context: text('c'), id: 9 });
    expect(confChangeAsV2(cc)).toEqual(
      v2({ changes: [{ type: 'ConfChangeAddLearnerNode', nodeId: 4 }], context: text('c') }),
    );
  });

  it('asV2 returns a V2 change itself', () => {
    const cc = v2({ changes: [{ type: 'ConfChangeAddNode', nodeId: 1 }] });
    expect(confChangeAsV2(cc)).toBe(cc);
  });

  it('asV1 exists only for V1 changes', () => {
    const cc = v1({ nodeId: 2 });
    expect(confChangeAsV1(cc)).toBe(cc);
    expect(confChangeAsV1(v2({ changes: [{ type: 'ConfChangeAddNode', nodeId: 2 }] }))).toBeUndefined();
  });
});

describe('joint consensus', () => {
  const one = [{ type: 'ConfChangeAddNode' as const, nodeId: 2 }];
  const two = [...one, { type: 'ConfChangeRemoveNode' as const, nodeId: 1 }];

  it.each([
    ['ConfChangeTransitionAuto', [], { autoLeave: false, ok: false }],
    ['ConfChangeTransitionAuto', one, { autoLeave: false, ok: false }],
    ['ConfChangeTransitionAuto', two, { autoLeave: true, ok: true }],
    ['ConfChangeTransitionJointImplicit', one, { autoLeave: true, ok: true }],
    ['ConfChangeTransitionJointImplicit', [], { autoLeave: true, ok: true }],
    ['ConfChangeTransitionJointExplicit', one, { autoLeave: false, ok: true }],
    ['ConfChangeTransitionJointExplicit', two, { autoLeave: false, ok: true }],
  ] as const)('enterJoint(%s, %j) = %j', (transition, changes, want) => {
    expect(enterJoint(v2({ transition, changes: [...changes] }))).toEqual(want);
  });

  it('leaveJoint is the empty Auto change, whatever its context', () => {
    expect(leaveJoint(v2({}))).toBe(true);
    expect(leaveJoint(v2({ context: text('ctx') }))).toBe(true);
    expect(leaveJoint(v2({ changes: one }))).toBe(false);
    expect(leaveJoint(v2({ transition: 'ConfChangeTransitionJointExplicit' }))).toBe(false);
  });
});

describe('text form', () => {
  it('parses every prefix', () => {
    expect(confChangesFromString('v1 l2 r3 u4')).toEqual([
      { type: 'ConfChangeAddNode', nodeId: 1 },
      { type: 'ConfChangeAddLearnerNode', nodeId: 2 },
      { type: 'ConfChangeRemoveNode', nodeId: 3 },
      { type: 'ConfChangeUpdateNode', nodeId: 4 },
    ]);
  });

  it('reads blank input as no changes and tolerates surrounding whitespace', () => {
    expect(confChangesFromString('')).toEqual([]);
    expect(confChangesFromString('   ')).toEqual([]);
    expect(confChangesFromString(' v10 ')).toEqual([{ type: 'ConfChangeAddNode', nodeId: 10 }]);
  });

  it.each([
    ['x1', /unknown input: x1/],
    ['v', /unknown token v/],
    ['v1 r', /unknown token r/],
    ['va', /invalid node id in va/],
    ['v-1', /invalid node id in v-1/],
    ['v99999999999999999999', /invalid node id/],
  ])('rejects %j', (s, err) => {
    expect(() => confChangesFromString(s)).toThrow(err);
  });

  it('prints changes back in the same form', () => {
    expect(confChangesToString(confChangesFromString('v1 l2 r3 u4'))).toBe('v1 l2 r3 u4');
    expect(confChangesToString([])).toBe('');
  });

  it('round-trips through the text form', () => {
    fc.assert(
      fc.property(fc.array(single), (ccs) => {
        expect(confChangesFromString(confChangesToString(ccs))).toEqual(ccs);
      }),
    );
  });
});
