// Binary wire format of raft messages between peers. A frame is a batch of messages; the
// transport sends one frame per peer per event-loop turn, so encoding is on the hot path:
// one pass sizes the frame, one buffer is allocated, a second pass writes into it.
//
// Frame (all multi-byte fixed fields big-endian):
//   u32 magic 0x52465401 ('R' 'F' 'T' version 1)
//   u32 message count
//   message × count
// Message:
//   u8  type            index in MESSAGE_TYPES
//   u8  flags           0x01 reject, 0x02 entries, 0x04 snapshot, 0x08 context, 0x10 responses
//   varint to, from     local thread ids as etcd's 2^64-1 (append) / 2^64-2 (apply)
//   varint term, logTerm, index, commit, vote, rejectHint
//   [0x02] varint n, n × entry: u8 type (0 normal, 1 confchange, 2 confchange v2), varint term,
//          varint index, varint len, len bytes
//   [0x04] snapshot: varint index, varint term, conf state (voters, learners, votersOutgoing,
//          learnersNext: each varint n + n varint ids; u8 autoLeave 0/1), varint len, len bytes
//   [0x08] varint len, len bytes (context)
//   [0x10] varint n, n × message (nested at most MAX_RESPONSE_DEPTH levels)
// Varints are unsigned LEB128 (protobuf style), at most 10 bytes. Optional parts are flagged
// rather than written empty so a heartbeat costs about a dozen bytes.
//
// A snapshot larger than one chunk travels instead as chunk frames, in order on one
// connection, so that it is not bounded by the frame size and heartbeats pass between them:
//   u32 magic 0x52465343 ('R' 'F' 'S' 'C')
//   varint transfer (the sender's number for this snapshot), varint total (its data's bytes),
//   varint offset (of this chunk in the data), varint len, len bytes (the chunk)
//   u8 last 0/1; [1] one message: the MsgSnap, its snapshot's data empty (the chunks are it)
import {
  type ConfState,
  EMPTY_BYTES,
  type Entry,
  type EntryType,
  LOCAL_APPEND_THREAD,
  LOCAL_APPLY_THREAD,
  MESSAGE_TYPES,
  type Message,
  type MessageType,
  type Snapshot,
} from '../../raft/types.js';

export const FRAME_MAGIC = 0x52465401;
export const SNAPSHOT_CHUNK_MAGIC = 0x52465343;
export const FRAME_HEADER_BYTES = 8;
/** Responses only nest one level in practice; the bound keeps a hostile frame from exhausting the stack. */
export const MAX_RESPONSE_DEPTH = 4;

const F_REJECT = 0x01;
const F_ENTRIES = 0x02;
const F_SNAPSHOT = 0x04;
const F_CONTEXT = 0x08;
const F_RESPONSES = 0x10;
const F_KNOWN = F_REJECT | F_ENTRIES | F_SNAPSHOT | F_CONTEXT | F_RESPONSES;

// The smallest encodings, used to reject counts that cannot fit in the bytes left before
// allocating anything for them.
const MIN_MESSAGE_BYTES = 10;
const MIN_ENTRY_BYTES = 4;

const ENTRY_TYPES: readonly EntryType[] = ['EntryNormal', 'EntryConfChange', 'EntryConfChangeV2'];
const ENTRY_TYPE_NUMBER: Readonly<Record<EntryType, number>> = {
  EntryNormal: 0,
  EntryConfChange: 1,
  EntryConfChangeV2: 2,
};
const MESSAGE_TYPE_NUMBER: ReadonlyMap<MessageType, number> = new Map(MESSAGE_TYPES.map((t, i) => [t, i]));

/** A frame that does not decode; `reason` says what was wrong and `offset` where. */
export class FrameError extends Error {
  override name = 'FrameError';
  constructor(
    readonly reason: string,
    readonly offset: number,
  ) {
    super(`malformed raft frame at byte ${offset}: ${reason}`);
  }
}

// ---------------------------------------------------------------------------------------
// Sizing. Validates every number once, so the write pass can trust its input.

function u64Size(v: number): number {
  if (v >>> 0 === v) {
    if (v < 0x80) return 1;
    if (v < 0x4000) return 2;
    if (v < 0x200000) return 3;
    if (v < 0x10000000) return 4;
    return 5;
  }
  if (!Number.isSafeInteger(v) || v < 0)
    throw new RangeError(`cannot encode ${v}: not a non-negative safe integer`);
  // Above 2^32: 7 more bits per byte.
  let n = 5;
  for (let x = Math.floor(v / 2 ** 35); x > 0; x = Math.floor(x / 128)) n++;
  return n;
}

function idSize(v: number): number {
  return v === LOCAL_APPEND_THREAD || v === LOCAL_APPLY_THREAD ? 10 : u64Size(v);
}

function bytesSize(b: Uint8Array): number {
  return u64Size(b.length) + b.length;
}

function idListSize(ids: readonly number[]): number {
  let n = u64Size(ids.length);
  for (const id of ids) n += u64Size(id);
  return n;
}

function confStateSize(cs: ConfState): number {
  return (
    idListSize(cs.voters) +
    idListSize(cs.learners) +
    idListSize(cs.votersOutgoing) +
    idListSize(cs.learnersNext) +
    1
  );
}

function snapshotSize(s: Snapshot): number {
  return (
    u64Size(s.metadata.index) +
    u64Size(s.metadata.term) +
    confStateSize(s.metadata.confState) +
    bytesSize(s.data)
  );
}

/** Encoded size of one message (without the frame header). Throws RangeError on values that cannot be encoded. */
export function messageSize(m: Message, depth = 0): number {
  if (MESSAGE_TYPE_NUMBER.get(m.type) === undefined)
    throw new RangeError(`cannot encode message type ${m.type}`);
  let n =
    2 +
    idSize(m.to) +
    idSize(m.from) +
    u64Size(m.term) +
    u64Size(m.logTerm) +
    u64Size(m.index) +
    u64Size(m.commit) +
    u64Size(m.vote) +
    u64Size(m.rejectHint);
  if (m.entries.length > 0) {
    n += u64Size(m.entries.length);
    for (const e of m.entries) {
      if (ENTRY_TYPE_NUMBER[e.type] === undefined) throw new RangeError(`cannot encode entry type ${e.type}`);
      n += 1 + u64Size(e.term) + u64Size(e.index) + bytesSize(e.data);
    }
  }
  if (m.snapshot !== undefined) n += snapshotSize(m.snapshot);
  if (m.context.length > 0) n += bytesSize(m.context);
  if (m.responses.length > 0) {
    if (depth >= MAX_RESPONSE_DEPTH)
      throw new RangeError(`responses nested deeper than ${MAX_RESPONSE_DEPTH}`);
    n += u64Size(m.responses.length);
    for (const r of m.responses) n += messageSize(r, depth + 1);
  }
  return n;
}

// ---------------------------------------------------------------------------------------
// Writing. Module-level cursor: encoding is synchronous, so no per-call writer object.

let out: Uint8Array = EMPTY_BYTES;
let pos = 0;

function writeU64(v: number): void {
  if (v >>> 0 === v) {
    while (v >= 0x80) {
      out[pos++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    out[pos++] = v;
    return;
  }
  // Beyond 32 bits shifts would truncate; `& 0x7f` is still exact (ToInt32 keeps the low bits).
  while (v >= 0x80) {
    out[pos++] = (v & 0x7f) | 0x80;
    v = Math.floor(v / 128);
  }
  out[pos++] = v;
}

function writeId(v: number): void {
  if (v === LOCAL_APPEND_THREAD || v === LOCAL_APPLY_THREAD) {
    // 2^64-1 and 2^64-2: nine bytes of all-ones 7-bit groups (the first one minus 1 for apply), then the top bit.
    out[pos++] = v === LOCAL_APPEND_THREAD ? 0xff : 0xfe;
    for (let i = 0; i < 8; i++) out[pos++] = 0xff;
    out[pos++] = 0x01;
    return;
  }
  writeU64(v);
}

function writeBytes(b: Uint8Array): void {
  writeU64(b.length);
  out.set(b, pos);
  pos += b.length;
}

function writeIdList(ids: readonly number[]): void {
  writeU64(ids.length);
  for (const id of ids) writeU64(id);
}

function writeMessage(m: Message): void {
  const hasEntries = m.entries.length > 0;
  const hasContext = m.context.length > 0;
  const hasResponses = m.responses.length > 0;
  out[pos++] = MESSAGE_TYPE_NUMBER.get(m.type)!;
  out[pos++] =
    (m.reject ? F_REJECT : 0) |
    (hasEntries ? F_ENTRIES : 0) |
    (m.snapshot !== undefined ? F_SNAPSHOT : 0) |
    (hasContext ? F_CONTEXT : 0) |
    (hasResponses ? F_RESPONSES : 0);
  writeId(m.to);
  writeId(m.from);
  writeU64(m.term);
  writeU64(m.logTerm);
  writeU64(m.index);
  writeU64(m.commit);
  writeU64(m.vote);
  writeU64(m.rejectHint);
  if (hasEntries) {
    writeU64(m.entries.length);
    for (const e of m.entries) {
      out[pos++] = ENTRY_TYPE_NUMBER[e.type];
      writeU64(e.term);
      writeU64(e.index);
      writeBytes(e.data);
    }
  }
  if (m.snapshot !== undefined) {
    const { metadata, data } = m.snapshot;
    writeU64(metadata.index);
    writeU64(metadata.term);
    const cs = metadata.confState;
    writeIdList(cs.voters);
    writeIdList(cs.learners);
    writeIdList(cs.votersOutgoing);
    writeIdList(cs.learnersNext);
    out[pos++] = cs.autoLeave ? 1 : 0;
    writeBytes(data);
  }
  if (hasContext) writeBytes(m.context);
  if (hasResponses) {
    writeU64(m.responses.length);
    for (const r of m.responses) writeMessage(r);
  }
}

/**
 * Encodes a batch of messages as one frame. `bodyBytes`, when the caller already summed
 * messageSize over `msgs` (to split batches), skips the sizing pass. Throws RangeError for a
 * message that cannot be encoded (negative or non-integer numbers, unknown types).
 */
export function encodeFrame(msgs: readonly Message[], bodyBytes?: number): Uint8Array {
  let body = bodyBytes;
  if (body === undefined) {
    body = 0;
    for (const m of msgs) body += messageSize(m);
  }
  const total = FRAME_HEADER_BYTES + body;
  // Unzeroed (and pooled when small): every byte is written below, which the final check proves.
  const buf = Buffer.allocUnsafe(total);
  const view = new DataView(buf.buffer, buf.byteOffset, total);
  view.setUint32(0, FRAME_MAGIC);
  view.setUint32(4, msgs.length);
  out = buf;
  pos = FRAME_HEADER_BYTES;
  try {
    for (const m of msgs) writeMessage(m);
    if (pos !== total) throw new RangeError(`frame size mismatch: wrote ${pos} bytes, sized ${total}`);
  } finally {
    // Do not keep the last frame alive through the module cursor.
    out = EMPTY_BYTES;
  }
  return buf;
}

/** One piece of a snapshot sent in chunks; `message` (the MsgSnap, data empty) on the last. */
export interface SnapshotChunk {
  transfer: number;
  total: number;
  offset: number;
  data: Uint8Array;
  message: Message | undefined;
}

/** Encodes a snapshot chunk frame (see the format above). Throws RangeError like encodeFrame. */
export function encodeSnapshotChunk(c: SnapshotChunk): Uint8Array {
  if (c.message !== undefined && (c.message.type !== 'MsgSnap' || c.message.snapshot?.data.length !== 0)) {
    throw new RangeError('the last snapshot chunk must carry a MsgSnap whose data is empty');
  }
  const total =
    4 +
    u64Size(c.transfer) +
    u64Size(c.total) +
    u64Size(c.offset) +
    bytesSize(c.data) +
    1 +
    (c.message === undefined ? 0 : messageSize(c.message));
  const buf = Buffer.allocUnsafe(total);
  new DataView(buf.buffer, buf.byteOffset, total).setUint32(0, SNAPSHOT_CHUNK_MAGIC);
  out = buf;
  pos = 4;
  try {
    writeU64(c.transfer);
    writeU64(c.total);
    writeU64(c.offset);
    writeBytes(c.data);
    out[pos++] = c.message === undefined ? 0 : 1;
    if (c.message !== undefined) writeMessage(c.message);
    if (pos !== total) throw new RangeError(`chunk size mismatch: wrote ${pos} bytes, sized ${total}`);
  } finally {
    out = EMPTY_BYTES;
  }
  return buf;
}

/** The magic number a frame starts with, or undefined if it is shorter than one. */
export function frameMagic(buf: Uint8Array): number | undefined {
  return buf.length < 4 ? undefined : new DataView(buf.buffer, buf.byteOffset, 4).getUint32(0);
}

// ---------------------------------------------------------------------------------------
// Reading. Every read is bounds-checked and reports FrameError; payloads are views into the
// input (no copies), so a caller that keeps messages must pass a buffer it owns.

let inp: Uint8Array = EMPTY_BYTES;
let rpos = 0;
let rend = 0;

function fail(reason: string, at = rpos): never {
  throw new FrameError(reason, at);
}

function readU8(what: string): number {
  if (rpos >= rend) fail(`truncated: expected ${what}`);
  return inp[rpos++]!;
}

// Returns the value, or -1 / -2 for the two values above 2^53 that stand for local thread ids.
function readVarint(what: string): number {
  const start = rpos;
  let b = readU8(what);
  if (b < 0x80) return b;
  let v = b & 0x7f;
  let mul = 128;
  for (let i = 1; i < 10; i++) {
    b = readU8(what);
    if (i === 9 && b > 1) fail(`${what}: varint overflows 64 bits`, start);
    v += (b & 0x7f) * mul;
    if (b < 0x80) {
      if (v <= Number.MAX_SAFE_INTEGER) return v;
      // Doubles cannot tell 2^64-1 from 2^64-2, so look at the bytes.
      if (rpos - start === 10 && inp[start + 9] === 1) {
        let allOnes = true;
        for (let j = start + 1; j < start + 9; j++) if (inp[j] !== 0xff) allOnes = false;
        if (allOnes && inp[start] === 0xff) return -1;
        if (allOnes && inp[start] === 0xfe) return -2;
      }
      fail(`${what}: value exceeds 2^53-1`, start);
    }
    mul *= 128;
  }
  return fail(`${what}: varint longer than 10 bytes`, start);
}

function readU64(what: string): number {
  const start = rpos;
  const v = readVarint(what);
  if (v < 0) fail(`${what}: value exceeds 2^53-1`, start);
  return v;
}

function readId(what: string): number {
  const v = readVarint(what);
  return v === -1 ? LOCAL_APPEND_THREAD : v === -2 ? LOCAL_APPLY_THREAD : v;
}

function readCount(what: string, minItemBytes: number): number {
  const start = rpos;
  const n = readU64(what);
  if (n * minItemBytes > rend - rpos)
    fail(`${what} ${n} does not fit in the ${rend - rpos} bytes left`, start);
  return n;
}

function readBytes(what: string): Uint8Array {
  const start = rpos;
  const len = readU64(`${what} length`);
  if (len > rend - rpos) fail(`truncated: ${what} of ${len} bytes, ${rend - rpos} left`, start);
  if (len === 0) return EMPTY_BYTES;
  const b = new Uint8Array(inp.buffer, inp.byteOffset + rpos, len);
  rpos += len;
  return b;
}

function readIdList(what: string): number[] {
  const n = readCount(what, 1);
  const ids = new Array<number>(n);
  for (let i = 0; i < n; i++) ids[i] = readU64(what);
  return ids;
}

function readSnapshot(): Snapshot {
  const index = readU64('snapshot index');
  const term = readU64('snapshot term');
  const voters = readIdList('voters');
  const learners = readIdList('learners');
  const votersOutgoing = readIdList('votersOutgoing');
  const learnersNext = readIdList('learnersNext');
  const autoLeaveAt = rpos;
  const autoLeave = readU8('autoLeave');
  if (autoLeave > 1) fail(`autoLeave must be 0 or 1, got ${autoLeave}`, autoLeaveAt);
  const data = readBytes('snapshot data');
  return {
    data,
    metadata: {
      confState: { voters, learners, votersOutgoing, learnersNext, autoLeave: autoLeave === 1 },
      index,
      term,
    },
  };
}

function readEntries(): Entry[] {
  const at = rpos;
  const n = readCount('entry count', MIN_ENTRY_BYTES);
  if (n === 0) fail('entries flag set with no entries', at);
  const ents = new Array<Entry>(n);
  for (let i = 0; i < n; i++) {
    const typeAt = rpos;
    const t = readU8('entry type');
    if (t >= ENTRY_TYPES.length) fail(`unknown entry type ${t}`, typeAt);
    const term = readU64('entry term');
    const index = readU64('entry index');
    ents[i] = { term, index, type: ENTRY_TYPES[t]!, data: readBytes('entry data') };
  }
  return ents;
}

function readMessage(depth: number): Message {
  const typeAt = rpos;
  const t = readU8('message type');
  if (t >= MESSAGE_TYPES.length) fail(`unknown message type ${t}`, typeAt);
  const flags = readU8('message flags');
  if ((flags & ~F_KNOWN) !== 0) fail(`unknown message flags 0x${flags.toString(16)}`, typeAt + 1);
  const to = readId('to');
  const from = readId('from');
  const term = readU64('term');
  const logTerm = readU64('logTerm');
  const index = readU64('index');
  const commit = readU64('commit');
  const vote = readU64('vote');
  const rejectHint = readU64('rejectHint');
  const entries = (flags & F_ENTRIES) !== 0 ? readEntries() : [];
  const snapshot = (flags & F_SNAPSHOT) !== 0 ? readSnapshot() : undefined;
  const context = (flags & F_CONTEXT) !== 0 ? readBytes('context') : EMPTY_BYTES;
  if ((flags & F_CONTEXT) !== 0 && context.length === 0) fail('context flag set with empty context');
  let responses: Message[] = [];
  if ((flags & F_RESPONSES) !== 0) {
    if (depth >= MAX_RESPONSE_DEPTH) fail(`responses nested deeper than ${MAX_RESPONSE_DEPTH}`);
    const at = rpos;
    const n = readCount('response count', MIN_MESSAGE_BYTES);
    if (n === 0) fail('responses flag set with no responses', at);
    responses = new Array<Message>(n);
    for (let i = 0; i < n; i++) responses[i] = readMessage(depth + 1);
  }
  const m: Message = {
    type: MESSAGE_TYPES[t]!,
    to,
    from,
    term,
    logTerm,
    index,
    entries,
    commit,
    vote,
    reject: (flags & F_REJECT) !== 0,
    rejectHint,
    context,
    responses,
  };
  if (snapshot !== undefined) m.snapshot = snapshot;
  return m;
}

/**
 * Decodes and validates a frame. Throws FrameError (never anything else) for a malformed,
 * truncated or over-long frame. Byte payloads are views into `buf`.
 */
export function decodeFrame(buf: Uint8Array): Message[] {
  if (buf.length < FRAME_HEADER_BYTES)
    throw new FrameError(`truncated: ${buf.length}-byte frame has no header`, 0);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.length);
  const magic = view.getUint32(0);
  if (magic !== FRAME_MAGIC) {
    throw new FrameError(
      `bad magic 0x${magic.toString(16).padStart(8, '0')} (want 0x${FRAME_MAGIC.toString(16)})`,
      0,
    );
  }
  const count = view.getUint32(4);
  if (count * MIN_MESSAGE_BYTES > buf.length - FRAME_HEADER_BYTES) {
    throw new FrameError(`message count ${count} does not fit in ${buf.length} bytes`, 4);
  }
  inp = buf;
  rpos = FRAME_HEADER_BYTES;
  rend = buf.length;
  try {
    const msgs = new Array<Message>(count);
    for (let i = 0; i < count; i++) msgs[i] = readMessage(0);
    if (rpos !== rend) fail(`${rend - rpos} trailing bytes after ${count} messages`);
    return msgs;
  } finally {
    inp = EMPTY_BYTES;
  }
}

/**
 * Decodes and validates a snapshot chunk frame: the chunk lies within `total` bytes, and the
 * last one carries exactly one MsgSnap with empty snapshot data. Throws FrameError (never
 * anything else). The chunk's data is a view into `buf`.
 */
export function decodeSnapshotChunk(buf: Uint8Array): SnapshotChunk {
  if (frameMagic(buf) !== SNAPSHOT_CHUNK_MAGIC) throw new FrameError('not a snapshot chunk', 0);
  inp = buf;
  rpos = 4;
  rend = buf.length;
  try {
    const transfer = readU64('transfer');
    const total = readU64('total');
    const offsetAt = rpos;
    const offset = readU64('offset');
    const data = readBytes('chunk');
    if (offset + data.length > total) {
      fail(`chunk of ${data.length} bytes at ${offset} overruns the snapshot's ${total}`, offsetAt);
    }
    const last = readU8('last flag');
    if (last > 1) fail(`last flag ${last} is neither 0 nor 1`, rpos - 1);
    let message: Message | undefined;
    if (last === 1) {
      const at = rpos;
      message = readMessage(0);
      if (
        message.type !== 'MsgSnap' ||
        message.snapshot === undefined ||
        message.snapshot.data.length !== 0
      ) {
        fail(`the last chunk carries ${message.type}, not a MsgSnap without data`, at);
      }
    }
    if (rpos !== rend) fail(`${rend - rpos} trailing bytes after the chunk`);
    return { transfer, total, offset, data, message };
  } finally {
    inp = EMPTY_BYTES;
  }
}
