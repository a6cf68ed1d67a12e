// Conf changes travel inside log entries as protobuf-encoded etcd raftpb messages. This
// module is our own encoder/decoder for exactly those three messages, kept byte-identical
// to gogoproto's Marshal so that logs written by etcd and by us are interchangeable, plus
// the small helpers etcd hangs off ConfChange/ConfChangeV2.
//
// Wire layout (raftpb.proto):
//   ConfChange       { id = 1 (varint), type = 2 (enum), node_id = 3 (varint), context = 4 (bytes) }
//   ConfChangeSingle { type = 1 (enum), node_id = 2 (varint) }
//   ConfChangeV2     { transition = 1 (enum), changes = 2 (repeated ConfChangeSingle), context = 3 (bytes) }
// gogoproto emits fields in field-number order; the non-nullable scalars are always written
// (even when zero) and the bytes fields only when non-empty.

import {
  type AnyConfChange,
  CONF_CHANGE_TRANSITIONS,
  CONF_CHANGE_TYPES,
  type ConfChange,
  type ConfChangeSingle,
  type ConfChangeTransition,
  type ConfChangeType,
  type ConfChangeV2,
  EMPTY_BYTES,
  type EntryType,
} from './types.js';

const WIRE_VARINT = 0;
const WIRE_FIXED64 = 1;
const WIRE_BYTES = 2;
const WIRE_START_GROUP = 3;
const WIRE_END_GROUP = 4;
const WIRE_FIXED32 = 5;

// ---------------------------------------------------------------------------------------
// Encoding

/** Accumulates protobuf output; conf changes are a few dozen bytes, so a plain array is fine. */
class Writer {
  private readonly out: number[] = [];

  varint(v: number, what: string): void {
    if (!Number.isSafeInteger(v) || v < 0) {
      throw new Error(`cannot encode ${what}: ${v} is not a non-negative safe integer`);
    }
    while (v >= 0x80) {
      this.out.push((v % 0x80) | 0x80);
      v = Math.floor(v / 0x80);
    }
    this.out.push(v);
  }

  key(field: number, wireType: number): void {
    // Every field number we write is < 16, so the key is a single byte.
    this.out.push((field << 3) | wireType);
  }

  uint64Field(field: number, v: number, what: string): void {
    this.key(field, WIRE_VARINT);
    this.varint(v, what);
  }

  bytesField(field: number, b: Uint8Array): void {
    this.key(field, WIRE_BYTES);
    this.varint(b.length, 'length');
    for (const x of b) this.out.push(x);
  }

  finish(): Uint8Array {
    return Uint8Array.from(this.out);
  }
}

function enumNumber<T extends string>(values: readonly T[], v: T, what: string): number {
  const n = values.indexOf(v);
  if (n < 0) throw new Error(`cannot encode ${what}: unknown value ${JSON.stringify(v)}`);
  return n;
}

/** Encodes a V1 conf change exactly as gogoproto's raftpb.ConfChange.Marshal does. */
export function encodeConfChange(cc: ConfChange): Uint8Array {
  const w = new Writer();
  w.uint64Field(1, cc.id, 'ConfChange.ID');
  w.uint64Field(2, enumNumber(CONF_CHANGE_TYPES, cc.type, 'ConfChange.Type'), 'ConfChange.Type');
  w.uint64Field(3, cc.nodeId, 'ConfChange.NodeID');
  if (cc.context.length > 0) w.bytesField(4, cc.context);
  return w.finish();
}

function encodeConfChangeSingle(cc: ConfChangeSingle): Uint8Array {
  const w = new Writer();
  w.uint64Field(1, enumNumber(CONF_CHANGE_TYPES, cc.type, 'ConfChangeSingle.Type'), 'ConfChangeSingle.Type');
  w.uint64Field(2, cc.nodeId, 'ConfChangeSingle.NodeID');
  return w.finish();
}

/** Encodes a V2 conf change exactly as gogoproto's raftpb.ConfChangeV2.Marshal does. */
export function encodeConfChangeV2(cc: ConfChangeV2): Uint8Array {
  const w = new Writer();
  const transition = enumNumber(CONF_CHANGE_TRANSITIONS, cc.transition, 'ConfChangeV2.Transition');
  w.uint64Field(1, transition, 'ConfChangeV2.Transition');
  for (const change of cc.changes) w.bytesField(2, encodeConfChangeSingle(change));
  if (cc.context.length > 0) w.bytesField(3, cc.context);
  return w.finish();
}

// ---------------------------------------------------------------------------------------
// Decoding

/** A cursor over one message's bytes; every malformation is reported with the message name and offset. */
class Reader {
  private pos = 0;

  constructor(
    private readonly buf: Uint8Array,
    private readonly message: string,
  ) {}

  done(): boolean {
    return this.pos >= this.buf.length;
  }

  fail(msg: string, at = this.pos): never {
    throw new Error(`${this.message}: ${msg} at offset ${at}`);
  }

  /**
   * Reads a varint of up to 64 bits. Values beyond 2^53 come back rounded; callers that
   * keep the value check it with safeInteger, callers that skip it don't care.
   */
  varint(): number {
    const start = this.pos;
    let value = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.buf.length) this.fail('truncated varint', start);
      const b = this.buf[this.pos++]!;
      value += (b & 0x7f) * scale;
      if (b < 0x80) return value;
      scale *= 0x80;
    }
    return this.fail('varint longer than 10 bytes', start);
  }

  key(): { field: number; wireType: number; at: number } {
    const at = this.pos;
    const k = this.varint();
    const field = Math.floor(k / 8);
    const wireType = k % 8;
    if (field === 0 || field > 0x1fffffff) this.fail(`invalid field number ${field}`, at);
    return { field, wireType, at };
  }

  bytes(): Uint8Array {
    const at = this.pos;
    const n = this.varint();
    if (n > this.buf.length - this.pos) this.fail(`length ${n} runs past the end of the input`, at);
    // Copy so the decoded message never aliases (and pins) the caller's buffer.
    const out = this.buf.slice(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  private advance(n: number, at: number): void {
    if (n > this.buf.length - this.pos) this.fail('truncated fixed-width field', at);
    this.pos += n;
  }

  /** Skips the value of an unknown field, as proto2 requires (groups included). */
  skip(field: number, wireType: number, at: number): void {
    switch (wireType) {
      case WIRE_VARINT:
        this.varint();
        return;
      case WIRE_FIXED64:
        this.advance(8, at);
        return;
      case WIRE_BYTES:
        this.bytes();
        return;
      case WIRE_FIXED32:
        this.advance(4, at);
        return;
      case WIRE_START_GROUP:
        this.skipGroup(field, at);
        return;
      case WIRE_END_GROUP:
        this.fail(`unexpected end group for field ${field}`, at);
        return;
      default:
        this.fail(`illegal wire type ${wireType} for field ${field}`, at);
    }
  }

  private skipGroup(field: number, at: number): void {
    for (;;) {
      if (this.done()) this.fail(`unterminated group for field ${field}`, at);
      const inner = this.key();
      if (inner.wireType === WIRE_END_GROUP) {
        if (inner.field !== field) this.fail(`mismatched end group for field ${inner.field}`, inner.at);
        return;
      }
      this.skip(inner.field, inner.wireType, inner.at);
    }
  }

  expectWireType(name: string, wireType: number, want: number, at: number): void {
    if (wireType !== want) this.fail(`wrong wire type ${wireType} for field ${name}`, at);
  }

  safeInteger(name: string, at: number): number {
    const v = this.varint();
    if (!Number.isSafeInteger(v)) this.fail(`${name} exceeds Number.MAX_SAFE_INTEGER`, at);
    return v;
  }

  enumValue<T extends string>(name: string, values: readonly T[], at: number): T {
    const v = this.varint();
    const out = Number.isSafeInteger(v) ? values[v] : undefined;
    if (out === undefined) this.fail(`unknown ${name} value ${v}`, at);
    return out;
  }
}

/** Decodes an etcd raftpb.ConfChange; throws an Error describing the first malformation. */
export function decodeConfChange(b: Uint8Array): ConfChange {
  const r = new Reader(b, 'raftpb.ConfChange');
  const cc: ConfChange = { kind: 'v1', type: 'ConfChangeAddNode', nodeId: 0, context: EMPTY_BYTES, id: 0 };
  while (!r.done()) {
    const { field, wireType, at } = r.key();
    switch (field) {
      case 1:
        r.expectWireType('ID', wireType, WIRE_VARINT, at);
        cc.id = r.safeInteger('ID', at);
        break;
      case 2:
        r.expectWireType('Type', wireType, WIRE_VARINT, at);
        cc.type = r.enumValue<ConfChangeType>('ConfChangeType', CONF_CHANGE_TYPES, at);
        break;
      case 3:
        r.expectWireType('NodeID', wireType, WIRE_VARINT, at);
        cc.nodeId = r.safeInteger('NodeID', at);
        break;
      case 4:
        r.expectWireType('Context', wireType, WIRE_BYTES, at);
        cc.context = r.bytes();
        break;
      default:
        r.skip(field, wireType, at);
    }
  }
  return cc;
}

function decodeConfChangeSingle(b: Uint8Array): ConfChangeSingle {
  const r = new Reader(b, 'raftpb.ConfChangeSingle');
  const cc: ConfChangeSingle = { type: 'ConfChangeAddNode', nodeId: 0 };
  while (!r.done()) {
    const { field, wireType, at } = r.key();
    switch (field) {
      case 1:
        r.expectWireType('Type', wireType, WIRE_VARINT, at);
        cc.type = r.enumValue<ConfChangeType>('ConfChangeType', CONF_CHANGE_TYPES, at);
        break;
      case 2:
        r.expectWireType('NodeID', wireType, WIRE_VARINT, at);
        cc.nodeId = r.safeInteger('NodeID', at);
        break;
      default:
        r.skip(field, wireType, at);
    }
  }
  return cc;
}

/** Decodes an etcd raftpb.ConfChangeV2; throws an Error describing the first malformation. */
export function decodeConfChangeV2(b: Uint8Array): ConfChangeV2 {
  const r = new Reader(b, 'raftpb.ConfChangeV2');
  const cc: ConfChangeV2 = {
    kind: 'v2',
    transition: 'ConfChangeTransitionAuto',
    changes: [],
    context: EMPTY_BYTES,
  };
  while (!r.done()) {
    const { field, wireType, at } = r.key();
    switch (field) {
      case 1:
        r.expectWireType('Transition', wireType, WIRE_VARINT, at);
        cc.transition = r.enumValue<ConfChangeTransition>(
          'ConfChangeTransition',
          CONF_CHANGE_TRANSITIONS,
          at,
        );
        break;
      case 2:
        r.expectWireType('Changes', wireType, WIRE_BYTES, at);
        cc.changes.push(decodeConfChangeSingle(r.bytes()));
        break;
      case 3:
        r.expectWireType('Context', wireType, WIRE_BYTES, at);
        cc.context = r.bytes();
        break;
      default:
        r.skip(field, wireType, at);
    }
  }
  return cc;
}

// ---------------------------------------------------------------------------------------
// Entries

/** The entry type and payload that carry a conf change in the log (etcd's MarshalConfChange). */
export function confChangeToEntryData(cc: AnyConfChange): { type: EntryType; data: Uint8Array } {
  return cc.kind === 'v1'
    ? { type: 'EntryConfChange', data: encodeConfChange(cc) }
    : { type: 'EntryConfChangeV2', data: encodeConfChangeV2(cc) };
}

/**
 * Decodes the conf change carried by an EntryConfChange or EntryConfChangeV2 entry.
 * Throws for a normal entry and for a malformed payload.
 */
export function decodeConfChangeEntry(e: { type: EntryType; data: Uint8Array }): AnyConfChange {
  switch (e.type) {
    case 'EntryConfChange':
      return decodeConfChange(e.data);
    case 'EntryConfChangeV2':
      return decodeConfChangeV2(e.data);
    default:
      throw new Error(`entry of type ${e.type} does not carry a conf change`);
  }
}

// ---------------------------------------------------------------------------------------
// V1/V2 views and joint-consensus semantics

/** Views any conf change as V2; a V1 change becomes a single change with the Auto transition. */
export function confChangeAsV2(cc: AnyConfChange): ConfChangeV2 {
  if (cc.kind === 'v2') return cc;
  return {
    kind: 'v2',
    transition: 'ConfChangeTransitionAuto',
    changes: [{ type: cc.type, nodeId: cc.nodeId }],
    context: cc.context,
  };
}

/** The V1 form of a conf change, which only a V1 change has (V2 never narrows to V1). */
export function confChangeAsV1(cc: AnyConfChange): ConfChange | undefined {
  return cc.kind === 'v1' ? cc : undefined;
}

/**
 * Whether applying `cc` enters a joint configuration, and if so whether that joint
 * configuration is left automatically. A single change with the Auto transition is applied
 * directly (ok = false); anything else goes through joint consensus, which only an explicit
 * transition leaves by hand.
 */
export function enterJoint(cc: ConfChangeV2): { autoLeave: boolean; ok: boolean } {
  if (cc.transition === 'ConfChangeTransitionAuto' && cc.changes.length <= 1) {
    return { autoLeave: false, ok: false };
  }
  return { autoLeave: cc.transition !== 'ConfChangeTransitionJointExplicit', ok: true };
}

/**
 * Whether `cc` is the (otherwise empty) conf change that leaves a joint configuration. The
 * context is ignored: callers may use it to tag the change.
 */
export function leaveJoint(cc: ConfChangeV2): boolean {
  return cc.transition === 'ConfChangeTransitionAuto' && cc.changes.length === 0;
}

// ---------------------------------------------------------------------------------------
// The compact text form used by scripts and logs: `v1 l2 r3 u4`

const TYPE_BY_PREFIX: Readonly<Record<string, ConfChangeType>> = {
  v: 'ConfChangeAddNode',
  l: 'ConfChangeAddLearnerNode',
  r: 'ConfChangeRemoveNode',
  u: 'ConfChangeUpdateNode',
};

const PREFIX_BY_TYPE: Readonly<Record<ConfChangeType, string>> = {
  ConfChangeAddNode: 'v',
  ConfChangeAddLearnerNode: 'l',
  ConfChangeRemoveNode: 'r',
  ConfChangeUpdateNode: 'u',
};

/**
 * Parses space-separated changes such as `v1 l2 r3 u4` (v = add voter, l = add learner,
 * r = remove, u = update). Blank input yields no changes; any other token throws.
 */
export function confChangesFromString(s: string): ConfChangeSingle[] {
  const trimmed = s.trim();
  if (trimmed === '') return [];
  return trimmed.split(/\s+/).map((tok) => {
    if (tok.length < 2) throw new Error(`unknown token ${tok}`);
    const type = TYPE_BY_PREFIX[tok[0]!];
    if (type === undefined) throw new Error(`unknown input: ${tok}`);
    const digits = tok.slice(1);
    const nodeId = Number(digits);
    if (!/^\d+$/.test(digits) || !Number.isSafeInteger(nodeId)) {
      throw new Error(`invalid node id in ${tok}`);
    }
    return { type, nodeId };
  });
}

/** The inverse of confChangesFromString: `v1 l2 r3 u4`, empty for no changes. */
export function confChangesToString(ccs: readonly ConfChangeSingle[]): string {
  return ccs.map((cc) => `${PREFIX_BY_TYPE[cc.type] ?? 'unknown'}${cc.nodeId}`).join(' ');
}
