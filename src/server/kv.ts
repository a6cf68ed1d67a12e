// The replicated state machine: a key-value map with etcd-style per-key revisions, fed by
// committed Raft entries. Every node applies the same entries in the same order, so every
// decision here (including which client sessions to forget) depends only on the entries
// and their indexes — never on time, randomness or map iteration quirks — or replicas
// would drift apart.
//
// Commands and snapshots use a small binary format of our own (LEB128 varints and
// length-prefixed UTF-8), not JSON: it is compact, has exactly one encoding per value, and
// decoding validates every byte, so a corrupt or foreign entry is refused instead of being
// half-applied.
//
// Keys and values are Unicode strings. The etcd gateway accepts bytes (base64) but refuses
// those that are not valid UTF-8; that keeps the console, CLI and gateway on one model.

import {
  MAX_VARINT_BYTES,
  VARINT_NON_CANONICAL,
  VARINT_TOO_LARGE,
  VARINT_TRUNCATED,
  VarintCursor,
  varintSize,
  writeVarint,
} from '../protocol/varint.js';
import { goQuote } from '../raft/describe.js';
import { compareKeys, KeyOrder } from './key-order.js';

/**
 * `prevKv: false` on a put or delete: the result leaves out the entry it replaced. Every
 * client's recent results are kept on every replica (and in every snapshot) to answer
 * retries, and a previous entry is a whole value that most writers never ask for.
 */
export type KvCommand =
  | { op: 'put'; clientId: string; seq: number; key: string; value: string; prevKv?: false }
  | { op: 'delete'; clientId: string; seq: number; key: string; prevKv?: false }
  | { op: 'cas'; clientId: string; seq: number; key: string; expected: string | null; value: string };

export interface KvEntry {
  key: string;
  value: string;
  /** Index of the entry that created the key (reset when the key is deleted and put again). */
  createRevision: number;
  /** Index of the entry that last wrote the key. */
  modRevision: number;
  /** Number of writes since the key was created (1 after the first put). */
  version: number;
}

export type KvResult =
  | { op: 'put'; revision: number; prev?: KvEntry }
  | { op: 'delete'; revision: number; deleted: number; prev?: KvEntry }
  /** `current` is the key after the operation: the new entry if ok, the unchanged one if not. */
  | { op: 'cas'; revision: number; ok: boolean; current?: KvEntry };

/** Hears the result of each command an entry applies (see KvStore.apply). */
export type AppliedListener = (clientId: string, seq: number, result: KvResult) => void;

const ignoreApplied: AppliedListener = () => undefined;

export interface KvMember {
  address: string;
  learner: boolean;
}

export interface KvStoreOptions {
  /** Client sessions remembered for dedupe; the least recently written one is forgotten first. */
  maxSessions?: number;
  /** Results remembered per client, so several requests of one client may be in flight at once. */
  resultsPerSession?: number;
}

export const DEFAULT_MAX_SESSIONS = 10_000;
export const DEFAULT_RESULTS_PER_SESSION = 16;

/** A command or snapshot that does not decode; the message says what and where. */
export class KvCodecError extends Error {
  override name = 'KvCodecError';
}

const COMMAND_VERSION = 1;
/** 2 added the ids removed from the cluster; version 1 snapshots (none removed) still restore. */
const SNAPSHOT_VERSION = 2;
const SNAPSHOT_MAGIC = [0x52, 0x4b, 0x56, 0x53]; // "RKVS"
const OP_CODES = { put: 1, delete: 2, cas: 3 } as const;
/** The op byte of an entry holding several commands (see encodeKvBatch). */
const OP_BATCH = 4;
/** Put and delete whose result leaves out the previous entry (`prevKv: false`). */
const OP_PUT_WITHOUT_PREV = 5;
const OP_DELETE_WITHOUT_PREV = 6;
/**
 * Commands per batch entry at most. Batching amortizes what every entry costs (its log and
 * WAL records and checksums, its frame in each MsgApp) over the writes a node collects in
 * one turn; past a few hundred there is little left to amortize.
 */
export const MAX_BATCH_COMMANDS = 256;
/**
 * Bytes of commands a batch entry collects at most (a larger command makes an entry of its
 * own). An entry travels whole in one MsgApp frame (16 MiB at most), and values may be up to
 * 1 MiB each: 256 of those in one entry could never be sent.
 */
export const MAX_BATCH_BYTES = 512 * 1024;
/** Bounds what one client id may cost in every session table of every replica. */
const MAX_CLIENT_ID_BYTES = 1024;

/** The key a driver waits on for a request's result. */
export function requestKey(c: { clientId: string; seq: number }): string {
  return `${c.clientId}#${c.seq}`;
}

// ---- Byte helpers ------------------------------------------------------------------

const utf8Encoder = new TextEncoder();
// fatal: refuse malformed bytes rather than invent U+FFFD; ignoreBOM: keep a leading
// U+FEFF as part of the text, or a key starting with one would not round-trip.
const utf8Decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

const REPLACEMENT_CHARACTER = '\uFFFD';

/** A Buffer over the same memory as `bytes` (no copy), for Node's in-place text coding. */
function bufferOver(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** TextEncoder silently turns lone surrogates into U+FFFD; refuse them so what is stored is what was asked. */
function checkText(s: unknown, what: string): string {
  if (typeof s !== 'string') throw new KvCodecError(`${what} must be a string`);
  if (LONE_SURROGATE.test(s)) throw new KvCodecError(`${what} contains a lone UTF-16 surrogate`);
  return s;
}

function checkCount(n: unknown, what: string): number {
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) {
    throw new KvCodecError(`${what} must be a non-negative safe integer, got ${String(n)}`);
  }
  return n;
}

class Writer {
  private buf: Uint8Array;
  /** The same bytes as a Buffer, whose write() encodes text in place (see str). */
  private text: Buffer;
  private len = 0;

  /** `size`: the expected length, so that a command is written without growing the buffer. */
  constructor(size = 64) {
    this.buf = new Uint8Array(size);
    this.text = bufferOver(this.buf);
  }

  private reserve(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.len + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
    this.text = bufferOver(next);
  }

  u8(v: number): void {
    this.reserve(1);
    this.buf[this.len++] = v;
  }

  varint(v: number): void {
    this.reserve(MAX_VARINT_BYTES);
    this.len = writeVarint(this.buf, this.len, v);
  }

  bytes(b: Uint8Array): void {
    this.varint(b.length);
    this.raw(b);
  }

  /** b as it is, with no length prefix. */
  raw(b: Uint8Array): void {
    this.reserve(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
  }

  /**
   * A length-prefixed UTF-8 string, encoded in place: the UTF-8 length lies between
   * s.length and 3 × s.length, and when both bounds need the same number of prefix bytes
   * (almost always) the text goes straight after the prefix with no temporary copy.
   */
  str(s: string): number {
    const prefix = varintSize(s.length);
    if (prefix !== varintSize(s.length * 3)) {
      const bytes = utf8Encoder.encode(s);
      this.bytes(bytes);
      return bytes.length;
    }
    this.reserve(8 + s.length * 3);
    const start = this.len;
    // Buffer#write encodes at an offset; TextEncoder#encodeInto needs a view of the
    // destination made for every string (two per command, on the hot path of every node).
    // Both write a lone surrogate as U+FFFD; commands refuse those before they get here.
    const written = this.text.write(s, start + prefix);
    this.varint(written);
    this.len = start + prefix + written;
    return written;
  }

  /** Empties the writer for reuse, keeping its buffer. */
  reset(): this {
    this.len = 0;
    return this;
  }

  finish(): Uint8Array {
    return this.buf.slice(0, this.len);
  }

  /** A copy of the bytes written, in `slab`. */
  finishIn(slab: Slab): Uint8Array {
    return slab.copy(this.buf, this.len);
  }

  /** Bytes written so far. */
  get length(): number {
    return this.len;
  }

  /**
   * The bytes written, for a writer that is not used again: its own buffer when little of
   * it is unused (no copy of a snapshot's megabytes), otherwise a copy of just the bytes.
   */
  take(): Uint8Array {
    return this.buf.length <= this.len * 1.25 ? this.buf.subarray(0, this.len) : this.finish();
  }
}

/**
 * Strings by their UTF-8 bytes, for fields whose values repeat: a client's id is on every
 * command it sends, and a key on every write to it. A hit costs a hash of the bytes and a
 * compare with the string instead of a view, a TextDecoder call and a new string, which a
 * replay of a long log pays a million times; and a key that is the very string the store
 * holds is found in its map without comparing characters. Only ASCII text is kept (its
 * bytes are its char codes) and only up to `maxBytes`. Direct-mapped: a colliding value
 * replaces the slot.
 */
class TextCache {
  private readonly texts: (string | undefined)[];
  private readonly mask: number;

  /** `slots`: a power of two. */
  constructor(
    slots: number,
    private readonly maxBytes: number,
  ) {
    this.texts = new Array<string | undefined>(slots).fill(undefined);
    this.mask = slots - 1;
  }

  get(buf: Uint8Array, start: number, end: number): string | undefined {
    if (end - start > this.maxBytes) return undefined;
    const text = this.texts[TextCache.hash(buf, start, end) & this.mask];
    if (text === undefined || text.length !== end - start) return undefined;
    for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) !== buf[start + i]) return undefined;
    return text;
  }

  /** `text` is what buf[start, end) decodes to. */
  set(buf: Uint8Array, start: number, end: number, text: string): void {
    // Equal lengths: every byte was one ASCII character.
    if (end - start > this.maxBytes || text.length !== end - start) return;
    this.texts[TextCache.hash(buf, start, end) & this.mask] = text;
  }

  /** FNV-1a. */
  private static hash(buf: Uint8Array, start: number, end: number): number {
    let h = 0x811c9dc5;
    for (let i = start; i < end; i++) h = Math.imul(h ^ buf[i]!, 0x01000193);
    return h;
  }
}

/** Client ids seen in commands; a few hundred active clients fit without many collisions. */
const clientIds = new TextCache(1024, MAX_CLIENT_ID_BYTES);
/** Keys seen in commands, so hot keys stay; keeps at most 65,536 deleted keys (of ≤ 64 bytes) alive. */
const keys = new TextCache(65536, 64);

const NO_BYTES = new Uint8Array(0);
const NO_TEXT = bufferOver(NO_BYTES);

class Reader extends VarintCursor {
  /** The same bytes as a Buffer, which decodes a range to a string without a view per string. */
  private text: Buffer;

  constructor(
    buf: Uint8Array,
    private readonly what: string,
  ) {
    super(buf);
    this.text = bufferOver(buf);
  }

  /** Starts over on `buf`; NO_BYTES lets go of the last one. */
  reset(buf: Uint8Array): this {
    this.buf = buf;
    // Letting go happens once per entry applied: without a Buffer made for it.
    this.text = buf === NO_BYTES ? NO_TEXT : bufferOver(buf);
    this.pos = 0;
    return this;
  }

  fail(msg: string, at = this.pos): never {
    throw new KvCodecError(`${this.what}: ${msg} at byte ${at}`);
  }

  u8(): number {
    if (this.pos >= this.buf.length) this.fail('truncated');
    return this.buf[this.pos++]!;
  }

  bool(field: string): boolean {
    const at = this.pos;
    const b = this.u8();
    if (b > 1) this.fail(`${field}: flag must be 0 or 1, got ${b}`, at);
    return b === 1;
  }

  /** `suffix` goes after the field's name in errors only: a read that succeeds builds no string. */
  varint(field: string, suffix = ''): number {
    const value = this.readVarint();
    return value >= 0 ? value : this.badVarint(value, `${field}${suffix}`);
  }

  /** Fails for readVarint's `problem` with the varint at `pos` (kept apart: varint() stays small enough to inline). */
  private badVarint(problem: number, what: string): never {
    switch (problem) {
      case VARINT_TRUNCATED:
        return this.fail('truncated', this.buf.length);
      case VARINT_NON_CANONICAL:
        return this.fail(`${what}: non-canonical varint`);
      case VARINT_TOO_LARGE:
        return this.fail(`${what}: varint exceeds 2^53-1`);
      default:
        return this.fail(`${what}: varint too long`);
    }
  }

  /** A length-prefixed UTF-8 string; with a cache, bytes decoded before are answered from it. */
  str(field: string, maxBytes = Number.MAX_SAFE_INTEGER, cache?: TextCache): string {
    const at = this.pos;
    const n = this.varint(field, ' length');
    if (n > maxBytes) this.fail(`${field}: ${n} bytes exceeds the limit of ${maxBytes}`, at);
    if (n > this.buf.length - this.pos) this.fail(`${field}: truncated (needs ${n} bytes)`, at);
    const start = this.pos;
    this.pos += n;
    const cached = cache?.get(this.buf, start, this.pos);
    if (cached !== undefined) return cached;
    // Buffer#toString decodes leniently, putting U+FFFD for what is not UTF-8: text
    // without one came from valid bytes. Text with one is decoded again strictly, which
    // tells an encoded U+FFFD (valid) from malformed bytes (refused).
    let text = this.text.toString('utf8', start, this.pos);
    if (text.includes(REPLACEMENT_CHARACTER)) {
      try {
        text = utf8Decoder.decode(this.buf.subarray(start, this.pos));
      } catch {
        return this.fail(`${field}: invalid UTF-8`, at);
      }
    }
    cache?.set(this.buf, start, this.pos, text);
    return text;
  }

  end(): void {
    if (this.pos !== this.buf.length) this.fail(`${this.buf.length - this.pos} trailing bytes`);
  }
}

// ---- Commands -------------------------------------------------------------------------

/**
 * Small byte strings copied side by side into shared 64 KiB buffers, handed out as views.
 * An ArrayBuffer of its own per proposal (a backing store allocated, tracked and freed by
 * the GC) cost about 0.9 µs, more than encoding the command; a copy into a slab about 0.2.
 * A slab lives as long as any view of it, and entries leave the log in order, so slabs are
 * let go in order too. Anything over an eighth of a slab gets its own buffer.
 */
class Slab {
  private static readonly BYTES = 64 * 1024;
  private buf = new Uint8Array(Slab.BYTES);
  private used = 0;

  /** A copy of src[0, len). */
  copy(src: Uint8Array, len: number): Uint8Array {
    if (len > Slab.BYTES / 8) return src.slice(0, len);
    if (this.used + len > Slab.BYTES) {
      this.buf = new Uint8Array(Slab.BYTES);
      this.used = 0;
    }
    const start = this.used;
    this.buf.set(len === src.length ? src : src.subarray(0, len), start);
    this.used += len;
    return this.buf.subarray(start, this.used);
  }
}

/** Encodes a command for an entry's data; throws KvCodecError on a command it could not decode back. */
const commandWriter = new Writer(1024);
const commandSlab = new Slab();

export function encodeKvCommand(c: KvCommand): Uint8Array {
  let code: number = OP_CODES[c.op as keyof typeof OP_CODES];
  if (code === undefined) throw new KvCodecError(`unknown op ${String(c.op)}`);
  if (c.op !== 'cas' && c.prevKv !== undefined) {
    if (c.prevKv !== false) throw new KvCodecError('prevKv must be false or absent');
    code = c.op === 'put' ? OP_PUT_WITHOUT_PREV : OP_DELETE_WITHOUT_PREV;
  }
  const w = commandHeader(code, c.clientId, c.seq);
  checkText(c.key, 'key');
  if (c.key.length === 0) throw new KvCodecError('key must not be empty');
  w.str(c.key);
  switch (c.op) {
    case 'put':
      w.str(checkText(c.value, 'value'));
      break;
    case 'delete':
      break;
    case 'cas':
      if (c.expected === null) w.u8(0);
      else {
        w.u8(1);
        w.str(checkText(c.expected, 'expected'));
      }
      w.str(checkText(c.value, 'value'));
      break;
  }
  return w.finishIn(commandSlab);
}

/**
 * A put without its previous entry, from the key's and value's UTF-8 bytes as a binary
 * client frame carried them (their size and UTF-8 were checked there): the same bytes
 * encodeKvCommand makes of the strings, without making the strings.
 */
export function encodeKvPutBytes(
  clientId: string,
  seq: number,
  key: Uint8Array,
  value: Uint8Array,
): Uint8Array {
  if (key.length === 0) throw new KvCodecError('key must not be empty');
  const w = commandHeader(OP_PUT_WITHOUT_PREV, clientId, seq);
  w.bytes(key);
  w.bytes(value);
  return w.finishIn(commandSlab);
}

/** The scratch writer holding a command's version, op, client id and seq. */
function commandHeader(code: number, clientId: string, seq: number): Writer {
  checkText(clientId, 'clientId');
  if (clientId.length === 0) throw new KvCodecError('clientId must not be empty');
  if (checkCount(seq, 'seq') === 0) throw new KvCodecError('seq must be at least 1');
  // Every proposal is encoded here: one scratch writer serves them all (the bytes are
  // copied out into a slab).
  const w = commandWriter.reset();
  w.u8(COMMAND_VERSION);
  w.u8(code);
  if (w.str(clientId) > MAX_CLIENT_ID_BYTES) {
    throw new KvCodecError(`clientId exceeds ${MAX_CLIENT_ID_BYTES} bytes`);
  }
  w.varint(seq);
  return w;
}

/** Decoding is synchronous and never re-entered: one reader serves every command, not one allocation each. */
const commandReader = new Reader(NO_BYTES, 'kv command');

/**
 * Reads entry data with the shared reader: the version byte, then `read` from the op on,
 * then nothing left over. The reader lets go of the data afterwards: holding on to it
 * would keep its whole buffer (a WAL segment on replay) alive.
 */
function readEntryData<T>(b: Uint8Array, read: (r: Reader, op: number) => T): T {
  try {
    const r = commandReader.reset(b);
    if (r.u8() !== COMMAND_VERSION) r.fail(`unsupported version ${b[0]}`, 0);
    const out = read(r, r.u8());
    r.end();
    return out;
  } finally {
    commandReader.reset(NO_BYTES);
  }
}

/** Decodes and validates an entry's data; throws KvCodecError naming the problem and byte offset. */
export function decodeKvCommand(b: Uint8Array): KvCommand {
  return readEntryData(b, readKvCommand);
}

/**
 * The commands of an entry's data, in order: one, or several when it is a batch (see
 * encodeKvBatch). All are decoded and validated before any is applied, so an entry that
 * does not decode is refused whole, on every replica alike.
 */
export function decodeKvEntryData(b: Uint8Array): KvCommand[] {
  return readEntryData(b, (r, op) => (op === OP_BATCH ? readBatch(r) : [readKvCommand(r, op)]));
}

/** A batch's commands, after its op byte. */
function readBatch(r: Reader): KvCommand[] {
  const n = r.varint('batch count');
  if (n < 2 || n > MAX_BATCH_COMMANDS) r.fail(`batch count ${n} outside 2..${MAX_BATCH_COMMANDS}`, 2);
  const cmds = new Array<KvCommand>(n);
  for (let i = 0; i < n; i++) {
    if (r.u8() !== COMMAND_VERSION) r.fail(`batch command ${i}: unsupported version`);
    cmds[i] = readKvCommand(r, r.u8());
  }
  return cmds;
}

/**
 * How many writes an entry's data holds, from its header alone: a batch's count, else 1
 * (for a single command, and for empty or foreign data, which still make an entry).
 */
export function kvCommandCount(data: Uint8Array): number {
  if (data.length < 3 || data[0] !== COMMAND_VERSION || data[1] !== OP_BATCH) return 1;
  // The count is at most MAX_BATCH_COMMANDS: one or two varint bytes.
  return data[2]! < 0x80 ? data[2]! : (data[2]! & 0x7f) + (data[3] ?? 0) * 0x80;
}

/**
 * One entry's data holding several encoded commands (each as encodeKvCommand made it):
 * [version][OP_BATCH][count] then the commands back to back. They are applied in order at
 * the entry's index, so they share its revision, as the writes of one etcd transaction do.
 * At most MAX_BATCH_COMMANDS.
 */
export function encodeKvBatch(commands: readonly Uint8Array[]): Uint8Array {
  if (commands.length < 2 || commands.length > MAX_BATCH_COMMANDS) {
    throw new RangeError(`a batch holds 2..${MAX_BATCH_COMMANDS} commands, not ${commands.length}`);
  }
  // Sized up front (varint() reserves 8 bytes): take() then hands over the buffer itself.
  let size = 2 + 8;
  for (const c of commands) size += c.length;
  const w = new Writer(size);
  w.u8(COMMAND_VERSION);
  w.u8(OP_BATCH);
  w.varint(commands.length);
  for (const c of commands) w.raw(c);
  return w.take();
}

/** A command's fields after its version byte and op (the entry's own, or one of a batch's). */
function readKvCommand(r: Reader, op: number): KvCommand {
  if (op < OP_CODES.put || op > OP_DELETE_WITHOUT_PREV || op === OP_BATCH) {
    throw new KvCodecError(`kv command: unknown op ${op}`);
  }
  const clientId = r.str('clientId', MAX_CLIENT_ID_BYTES, clientIds);
  if (clientId.length === 0) throw new KvCodecError('kv command: empty clientId');
  const seq = r.varint('seq');
  if (seq === 0) throw new KvCodecError('kv command: seq must be at least 1');
  const key = r.str('key', Number.MAX_SAFE_INTEGER, keys);
  if (key.length === 0) throw new KvCodecError('kv command: empty key');
  switch (op) {
    case OP_CODES.put:
      return { op: 'put', clientId, seq, key, value: r.str('value') };
    case OP_PUT_WITHOUT_PREV:
      return { op: 'put', clientId, seq, key, value: r.str('value'), prevKv: false };
    case OP_CODES.delete:
      return { op: 'delete', clientId, seq, key };
    case OP_DELETE_WITHOUT_PREV:
      return { op: 'delete', clientId, seq, key, prevKv: false };
    default: {
      // cas, the only op left (checked above)
      const expected = r.bool('expected present') ? r.str('expected') : null;
      return { op: 'cas', clientId, seq, key, expected, value: r.str('value') };
    }
  }
}

// ---- Member context -------------------------------------------------------------------

/** The ConfChange context naming a member's address (UTF-8 JSON, as the contract fixes it). */
export function encodeMemberContext(ctx: MemberContext): Uint8Array {
  return utf8Encoder.encode(JSON.stringify(ctx));
}

/**
 * What a conf change carries in its context: the member's address, and the token by which
 * the proposing node recognises its own change when it is applied.
 */
export interface MemberContext {
  address?: string;
  token?: string;
}

/** The context of a conf change; fields that are absent, malformed or not ours are left out. */
export function decodeMemberContext(bytes: Uint8Array): MemberContext {
  if (bytes.length === 0) return {};
  let v: unknown;
  try {
    v = JSON.parse(utf8Decoder.decode(bytes));
  } catch {
    return {}; // Not ours (or not JSON): carries nothing we use.
  }
  if (typeof v !== 'object' || v === null) return {};
  const { address, token } = v as { address?: unknown; token?: unknown };
  return {
    ...(typeof address === 'string' ? { address } : {}),
    ...(typeof token === 'string' ? { token } : {}),
  };
}

export { compareKeys } from './key-order.js';

// ---- The store ------------------------------------------------------------------------

/**
 * A key's current entry, kept in place: a write changes the slot's fields rather than
 * allocating a new entry, since a KvEntry per write (kept until the key's next write) was a
 * sixth of what each write left for the garbage collector to copy, on every replica. What
 * leaves the store (reads, results, a capture's preimages) is a frozen copy (entryOf). A key
 * deleted and written again gets a new slot.
 */
interface Slot {
  readonly key: string;
  value: string;
  readonly createRevision: number;
  modRevision: number;
  version: number;
}

/** A frozen copy of a slot's entry as it is now. */
function entryOf(s: Slot): KvEntry {
  return Object.freeze({
    key: s.key,
    value: s.value,
    createRevision: s.createRevision,
    modRevision: s.modRevision,
    version: s.version,
  });
}

interface Session {
  clientId: string;
  /** Index of the last command of this client that was executed (its recency). */
  lastIndex: number;
  /**
   * Results of this client's most recent requests: seqs[i] is results[i]'s. Plain arrays of
   * at most resultsPerSession, scanned rather than hashed: a new request's seq is above
   * maxSeq and needs no scan, and the Map this was before cost five hash operations per
   * applied command on every replica.
   */
  seqs: number[];
  results: KvResult[];
  /** While seqs arrive in order: the slot of the oldest result, replaced next once full. */
  oldestSlot: number;
  /** The highest seq whose result was forgotten (0: none; seqs start at 1): a request at or below it has an unknown outcome. */
  floor: number;
  /** The highest seq remembered so far. */
  maxSeq: number;
  /** Whether results were inserted in ascending seq order (so oldestSlot holds the smallest). */
  ascending: boolean;
  /** Neighbours in the recency list (least recently written first). */
  older: Session | undefined;
  newer: Session | undefined;
}

function newSession(clientId: string, lastIndex: number, floor: number): Session {
  return {
    clientId,
    lastIndex,
    seqs: [],
    results: [],
    oldestSlot: 0,
    floor,
    maxSeq: floor,
    ascending: true,
    older: undefined,
    newer: undefined,
  };
}

/** The result remembered for `seq`, if any. */
function rememberedResult(s: Session, seq: number): KvResult | undefined {
  if (seq > s.maxSeq) return undefined;
  const i = s.seqs.indexOf(seq);
  return i < 0 ? undefined : s.results[i];
}

/** The session's results as [seq, result] pairs by ascending seq (the snapshot's order). */
function resultsBySeq(s: Session): [number, KvResult][] {
  const pairs = s.seqs.map((seq, i): [number, KvResult] => [seq, s.results[i]!]);
  if (!s.ascending) return pairs.sort((a, b) => a[0] - b[0]);
  // In order of arrival from the oldest slot on, which is ascending.
  return [...pairs.slice(s.oldestSlot), ...pairs.slice(0, s.oldestSlot)];
}

export class KvStore {
  /** Every key's slot: a write to a key that exists replaces the slot's entry, one map lookup. */
  private data = new Map<string, Slot>();
  /**
   * For each capture being encoded: the entries, as they were when it was taken, of keys
   * written or deleted since (see capture). Usually empty; one map while a snapshot is written.
   */
  private preimages: Map<Slot, KvEntry>[] = [];
  /** The slots in compareKeys order of their keys, for ranges and deterministic snapshots. */
  private order = new KeyOrder<Slot>();
  private rev = 0;
  /** The result of the last put applied without its previous entry (see execute). */
  private plainPutResult: KvResult = Object.freeze({ op: 'put', revision: 0 });
  private memberMap = new Map<number, KvMember>();
  /**
   * Ids removed from the cluster, which may never come back (as in etcd): peers refuse
   * them, so a removed node that was down when it was removed learns it when it returns.
   */
  private removedIds = new Set<number>();
  private sessions = new Map<string, Session>();
  /**
   * The ends of the sessions' recency list: a client moves to the newest end when it
   * writes, and the oldest is forgotten first. A linked list, not the map's insertion
   * order, so that moving a session costs no hashing.
   */
  private oldestSession: Session | undefined;
  private newestSession: Session | undefined;
  private readonly maxSessions: number;
  private readonly resultsPerSession: number;

  constructor(opts: KvStoreOptions = {}) {
    this.maxSessions = opts.maxSessions ?? DEFAULT_MAX_SESSIONS;
    this.resultsPerSession = opts.resultsPerSession ?? DEFAULT_RESULTS_PER_SESSION;
    if (!(this.maxSessions >= 1 && this.resultsPerSession >= 1)) {
      throw new RangeError('maxSessions and resultsPerSession must be at least 1');
    }
  }

  /** Index of the last command executed (retries that only return a cached result do not count). */
  get revision(): number {
    return this.rev;
  }

  get size(): number {
    return this.data.size;
  }

  get members(): ReadonlyMap<number, Readonly<KvMember>> {
    return this.memberMap;
  }

  /** Number of client sessions remembered (for status and tests). */
  get sessionCount(): number {
    return this.sessions.size;
  }

  setMember(id: number, address: string, learner: boolean): void {
    this.memberMap.set(id, { address, learner });
    // The API refuses to add a removed id; one added all the same (a race between a removal
    // and an add of the same id) is a member again, as the last change applied says.
    this.removedIds.delete(id);
  }

  removeMember(id: number): void {
    this.memberMap.delete(id);
    this.removedIds.add(id);
  }

  /** Whether `id` was removed from the cluster (it may not rejoin under that id). */
  isRemoved(id: number): boolean {
    return this.removedIds.has(id);
  }

  get(key: string): KvEntry | undefined {
    const slot = this.data.get(key);
    return slot && entryOf(slot);
  }

  /**
   * etcd's range: no rangeEnd (or empty) → the key alone; rangeEnd "\0" → every key ≥ key;
   * otherwise [key, rangeEnd). limit > 0 caps the number returned.
   */
  range(key: string, rangeEnd?: string, limit?: number): KvEntry[] {
    const max = limit !== undefined && limit > 0 ? limit : Number.POSITIVE_INFINITY;
    if (rangeEnd === undefined || rangeEnd === '') {
      const slot = this.data.get(key);
      return slot && max > 0 ? [entryOf(slot)] : [];
    }
    const out: KvEntry[] = [];
    const toEnd = rangeEnd === '\0';
    const slots = this.order.items();
    for (let i = this.order.lowerBound(key); i < slots.length && out.length < max; i++) {
      const slot = slots[i]!;
      if (!toEnd && compareKeys(slot.key, rangeEnd) >= 0) break;
      out.push(entryOf(slot));
    }
    return out;
  }

  /**
   * Applies a committed entry's data: its command, or each command of a batch in order,
   * all at revision `index`. `onApplied` hears each command's result — also a retry's,
   * answered from the session without executing it again — but not a stale retry whose
   * result is no longer remembered (its outcome is unknown, so it is not executed again:
   * at most once). Empty data applies nothing. Throws KvCodecError, having applied
   * nothing, for data that does not decode; the caller logs and skips it, as every
   * replica does.
   */
  apply(index: number, data: Uint8Array, onApplied: AppliedListener = ignoreApplied): void {
    if (data.length === 0) return;
    // The common case, an entry of one command, without the array of a batch.
    if (data[1] !== OP_BATCH) this.applyCommand(index, decodeKvCommand(data), onApplied);
    else for (const cmd of decodeKvEntryData(data)) this.applyCommand(index, cmd, onApplied);
  }

  private applyCommand(index: number, cmd: KvCommand, onApplied: AppliedListener): void {
    // The request's id, not its requestKey string: the caller builds that only when some
    // request waits for it, which none does while a restart replays the log.
    const { clientId, seq } = cmd;
    const session = this.sessions.get(clientId);
    if (session) {
      const cached = rememberedResult(session, seq);
      if (cached) {
        onApplied(clientId, seq, cached);
        return;
      }
      if (seq <= session.floor) return;
    }
    const result = this.execute(index, cmd);
    this.rev = index;
    this.remember(clientId, seq, index, session, result);
    onApplied(clientId, seq, result);
  }

  private execute(index: number, cmd: KvCommand): KvResult {
    const slot = this.data.get(cmd.key);
    switch (cmd.op) {
      case 'put': {
        // The replaced entry is copied only for a result that keeps it.
        const prev = slot && cmd.prevKv !== false ? entryOf(slot) : undefined;
        this.write(index, cmd.key, cmd.value, slot);
        if (prev) return { op: 'put', revision: index, prev };
        // Results are frozen, and every put of a batch without its previous entry has the same
        // one: they share it rather than each allocating (and remembering) a copy.
        if (this.plainPutResult.revision !== index)
          this.plainPutResult = Object.freeze({ op: 'put', revision: index });
        return this.plainPutResult;
      }
      case 'delete':
        if (!slot) return { op: 'delete', revision: index, deleted: 0 };
        this.remove(slot);
        return cmd.prevKv !== false
          ? { op: 'delete', revision: index, deleted: 1, prev: entryOf(slot) }
          : { op: 'delete', revision: index, deleted: 1 };
      case 'cas': {
        const ok =
          cmd.expected === null ? slot === undefined : slot !== undefined && slot.value === cmd.expected;
        const current = ok ? this.write(index, cmd.key, cmd.value, slot) : slot;
        return current
          ? { op: 'cas', revision: index, ok, current: entryOf(current) }
          : { op: 'cas', revision: index, ok };
      }
    }
  }

  private write(index: number, key: string, value: string, slot: Slot | undefined): Slot {
    if (slot !== undefined) {
      if (this.preimages.length > 0) this.keepPreimage(slot);
      slot.value = value;
      slot.modRevision = index;
      slot.version++;
      return slot;
    }
    const created: Slot = { key, value, createRevision: index, modRevision: index, version: 1 };
    this.order.add(created);
    this.data.set(key, created);
    return created;
  }

  /**
   * A deleted slot keeps its fields, so a capture reading it still finds the entry of the
   * capture's time (or the preimage, if it was written in between): no preimage is kept.
   */
  private remove(slot: Slot): void {
    this.data.delete(slot.key);
    this.order.delete(slot);
  }

  /**
   * On a restore: captures being encoded keep reading the map they were taken from, which
   * the state replacing it never touches, so they need no more old entries — and must not
   * get the new state's. (A restore that fails validation changes nothing, this included.)
   */
  private detachCaptures(): void {
    this.preimages = [];
  }

  /** Keeps the slot's entry, before it changes, for every live capture that has not kept it yet. */
  private keepPreimage(slot: Slot): void {
    let prev: KvEntry | undefined;
    for (const m of this.preimages) {
      if (m.has(slot)) continue;
      prev ??= entryOf(slot);
      m.set(slot, prev);
    }
  }

  private remember(
    clientId: string,
    seq: number,
    index: number,
    existing: Session | undefined,
    result: KvResult,
  ): void {
    let session = existing;
    if (!session) {
      session = newSession(clientId, index, 0);
      this.sessions.set(clientId, session);
    }
    Object.freeze(result);
    if (seq > session.maxSeq) session.maxSeq = seq;
    else session.ascending = false;
    const { seqs, results } = session;
    if (seqs.length < this.resultsPerSession) {
      seqs.push(seq);
      results.push(result);
    } else if (session.ascending) {
      // Full, seqs in order: the oldest result, in the ring's oldest slot, goes.
      const slot = session.oldestSlot;
      session.oldestSlot = (slot + 1) % seqs.length;
      session.floor = Math.max(session.floor, seqs[slot]!);
      seqs[slot] = seq;
      results[slot] = result;
    } else {
      // Full, seqs out of order: the smallest seq goes, which may be this very one.
      let slot = 0;
      for (let i = 1; i < seqs.length; i++) if (seqs[i]! < seqs[slot]!) slot = i;
      if (seq < seqs[slot]!) session.floor = Math.max(session.floor, seq);
      else {
        session.floor = Math.max(session.floor, seqs[slot]!);
        seqs[slot] = seq;
        results[slot] = result;
      }
    }
    session.lastIndex = index;
    // A session that is already the newest (the same client again) stays where it is.
    if (this.newestSession !== session) {
      if (existing) this.unlink(session);
      this.linkNewest(session);
    }
    while (this.sessions.size > this.maxSessions) {
      const victim = this.oldestSession!;
      this.unlink(victim);
      this.sessions.delete(victim.clientId);
    }
  }

  private unlink(s: Session): void {
    if (s.older) s.older.newer = s.newer;
    else this.oldestSession = s.newer;
    if (s.newer) s.newer.older = s.older;
    else this.newestSession = s.older;
    s.older = s.newer = undefined;
  }

  private linkNewest(s: Session): void {
    s.older = this.newestSession;
    if (this.newestSession) this.newestSession.newer = s;
    else this.oldestSession = s;
    this.newestSession = s;
  }

  /** Sessions from the least to the most recently written. */
  private *sessionsByRecency(): Generator<Session> {
    for (let s = this.oldestSession; s; s = s.newer) yield s;
  }

  // ---- Snapshot -----------------------------------------------------------------------

  /**
   * The whole state (data, revision, members, sessions) in one deterministic encoding, in
   * one go; encodeCapture(capture()) gives the same bytes without blocking.
   */
  snapshot(): Uint8Array {
    const c = this.capture();
    const w = new Writer(snapshotWriterSize(c, 0));
    try {
      runAtOnce(writeCapture(w, c, Number.POSITIVE_INFINITY));
    } finally {
      c.release();
    }
    return w.finish();
  }

  /**
   * The state as of now, in O(sessions) rather than O(keys): a busy store is snapshotted
   * every few seconds, and walking 100k keys here stalled every request for tens of ms.
   * The key order's array is replaced rather than modified, so the capture holds it (and
   * its slots) by reference; before a slot changes, the store keeps a copy of its entry for
   * each capture not yet encoded (or released), and a deleted slot keeps its fields. The
   * mutable parts (sessions' counters, members) are copied.
   */
  capture(): KvCapture {
    const before = new Map<Slot, KvEntry>();
    this.preimages.push(before);
    return new KvCapture(
      this.rev,
      [...this.memberMap].sort((a, b) => a[0] - b[0]).map(([id, m]) => [id, { ...m }]),
      [...this.removedIds].sort((a, b) => a - b),
      this.order.items(),
      before,
      Array.from(this.sessionsByRecency(), (s) => ({
        clientId: s.clientId,
        lastIndex: s.lastIndex,
        floor: s.floor,
        results: resultsBySeq(s),
      })),
      () => {
        this.preimages = this.preimages.filter((m) => m !== before);
      },
    );
  }

  /**
   * Replaces the whole state with a snapshot's. Validates everything first and changes
   * nothing on error (KvCodecError). Empty bytes mean the empty state: the initial
   * snapshot of a fresh log carries no data.
   */
  restore(bytes: Uint8Array): void {
    this.install(runAtOnce(decodeState(bytes)));
  }

  /**
   * restore(), decoded a slice at a time (see SLICE_ENTRIES) with the event loop handed back
   * in between: a follower installing a 128 MiB state from its leader was deaf for 0.7 s.
   * The store keeps serving its current state until the new one replaces it at once, at
   * the end; it must not be written meanwhile (the driver awaits this within its Ready).
   */
  async restoreSliced(bytes: Uint8Array): Promise<void> {
    const revBefore = this.rev;
    const state = await runInSlices(decodeState(bytes));
    if (this.rev !== revBefore) throw new Error('kv: the store was written while a snapshot was restored');
    this.install(state);
  }

  private install(state: DecodedState): void {
    this.detachCaptures();
    this.data = state.data;
    this.order = new KeyOrder(state.sorted);
    this.rev = state.rev;
    this.memberMap = state.members;
    this.removedIds = state.removed;
    this.sessions = state.sessions;
    this.oldestSession = this.newestSession = undefined;
    for (const session of state.byRecency) this.linkNewest(session);
  }
}

/** A snapshot's state, decoded and validated, before it replaces a store's. */
interface DecodedState {
  rev: number;
  members: Map<number, KvMember>;
  removed: Set<number>;
  data: Map<string, Slot>;
  /** The slots in key order. */
  sorted: Slot[];
  sessions: Map<string, Session>;
  /** Sessions from least to most recently written. */
  byRecency: Session[];
}

/**
 * A snapshot's work is cut into slices of at most this many entries or bytes, whichever
 * comes first, with the event loop handed back in between: 2,048 entries of 256-byte values
 * take about a millisecond to encode or decode, but 2,048 of 32 KiB are 64 MiB, a third of a
 * second (decoding 10 MiB took 45 ms in-process on the benchmark machine).
 */
const SLICE_ENTRIES = 2048;
const SLICE_BYTES = 1 << 20;

/** Runs a job cut into slices (a generator yielding between them) to its end, handing the event loop back at each. */
async function runInSlices<T>(job: Generator<void, T>): Promise<T> {
  let step = job.next();
  while (!step.done) {
    await new Promise((resolve) => setImmediate(resolve));
    step = job.next();
  }
  return step.value;
}

/** Runs a job cut into slices to its end in one go. */
function runAtOnce<T>(job: Generator<void, T>): T {
  let step = job.next();
  while (!step.done) step = job.next();
  return step.value;
}

/** Decodes a snapshot (SNAPSHOT_VERSION or 1), pausing (yielding) after each slice of entries. */
function* decodeState(bytes: Uint8Array): Generator<void, DecodedState> {
  if (bytes.length === 0) {
    return {
      rev: 0,
      members: new Map(),
      removed: new Set(),
      data: new Map(),
      sorted: [],
      sessions: new Map(),
      byRecency: [],
    };
  }
  const r = new Reader(bytes, 'kv snapshot');
  for (const b of SNAPSHOT_MAGIC) {
    if (r.u8() !== b) throw new KvCodecError('kv snapshot: bad magic (not a raftctl KV snapshot)');
  }
  const version = r.u8();
  if (version !== 1 && version !== SNAPSHOT_VERSION) {
    throw new KvCodecError(`kv snapshot: unsupported version ${version}`);
  }
  const rev = r.varint('revision');

  const members = new Map<number, KvMember>();
  const memberCount = r.varint('member count');
  let lastId = 0;
  for (let i = 0; i < memberCount; i++) {
    const id = r.varint('member id');
    if (id <= lastId) throw new KvCodecError(`kv snapshot: member ids not ascending at member ${id}`);
    lastId = id;
    const learner = r.bool('member learner');
    members.set(id, { address: r.str('member address'), learner });
  }
  const removed = new Set<number>();
  const removedCount = version === 1 ? 0 : r.varint('removed count');
  for (let i = 0, last = 0; i < removedCount; i++) {
    const id = r.varint('removed id');
    if (id <= last) throw new KvCodecError(`kv snapshot: removed ids not ascending at ${id}`);
    if (members.has(id)) throw new KvCodecError(`kv snapshot: node ${id} is both a member and removed`);
    last = id;
    removed.add(id);
  }

  const data = new Map<string, Slot>();
  const sorted: Slot[] = [];
  const keyCount = r.varint('key count');
  let sliceStart = r.pos;
  for (let i = 0; i < keyCount; i++) {
    const e = readEntry(r, rev);
    const last = sorted[sorted.length - 1];
    if (last !== undefined && compareKeys(last.key, e.key) >= 0) {
      throw new KvCodecError(`kv snapshot: keys not in ascending order at ${JSON.stringify(e.key)}`);
    }
    const slot: Slot = { ...e };
    sorted.push(slot);
    data.set(e.key, slot);
    if ((i + 1) % SLICE_ENTRIES === 0 || r.pos - sliceStart >= SLICE_BYTES) {
      yield;
      sliceStart = r.pos;
    }
  }

  const sessions = new Map<string, Session>();
  const byRecency: Session[] = [];
  const sessionCount = r.varint('session count');
  for (let i = 0; i < sessionCount; i++) {
    const clientId = r.str('session clientId', MAX_CLIENT_ID_BYTES);
    if (sessions.has(clientId)) throw new KvCodecError(`kv snapshot: duplicate session ${clientId}`);
    const lastIndex = r.varint('session last index');
    const session = newSession(clientId, lastIndex, r.varint('session floor'));
    const n = r.varint('session result count');
    for (let j = 0; j < n; j++) {
      const seq = r.varint('session seq');
      if (seq <= session.maxSeq) {
        throw new KvCodecError(`kv snapshot: session ${clientId}: seqs not ascending above the floor`);
      }
      session.maxSeq = seq;
      session.seqs.push(seq);
      session.results.push(Object.freeze(readResult(r, rev)));
    }
    sessions.set(clientId, session);
    byRecency.push(session);
  }
  r.end();
  return { rev, members, removed, data, sorted, sessions, byRecency };
}

/** A KvStore's state at one applied index, read as it is encoded (see KvStore.capture). */
export class KvCapture {
  private released = false;

  constructor(
    readonly rev: number,
    readonly members: readonly (readonly [number, KvMember])[],
    /** Ids removed from the cluster, ascending. */
    readonly removed: readonly number[],
    /**
     * The slot of every key at the capture, in key order. A slot's entry may have been
     * replaced since (its modRevision is then above `rev`), and `before` has the old one.
     */
    private readonly slots: readonly Slot[],
    /** Entries at the capture of slots written since. */
    private readonly before: ReadonlyMap<Slot, KvEntry>,
    readonly sessions: readonly {
      clientId: string;
      lastIndex: number;
      floor: number;
      /** By ascending seq. */
      results: readonly (readonly [number, KvResult])[];
    }[],
    private readonly onRelease: () => void,
  ) {}

  /** Keys at the capture. */
  get size(): number {
    return this.slots.length;
  }

  /** The entry of the i-th key (in key order) as it was at the capture. */
  entry(i: number): KvEntry {
    const slot = this.slots[i]!;
    // Every write after the capture is at a higher index than any before it. The slot
    // itself is read at once (encoded before the store runs again), so it needs no copy.
    return slot.modRevision <= this.rev ? slot : this.before.get(slot)!;
  }

  /** Lets the store stop keeping old entries for this capture; it can no longer be read. */
  release(): void {
    if (this.released) return;
    this.released = true;
    this.onRelease();
  }
}

/**
 * Encodes a capture as snapshot bytes, handing the event loop back every `chunk` entries or
 * SLICE_BYTES: a store of 65k keys of 256-byte values takes about 100 ms to encode, which
 * in one go would stall every request the node is serving. `sizeHint`: the expected size in bytes
 * (the previous snapshot's, say).
 */
export async function encodeCapture(c: KvCapture, chunk = SLICE_ENTRIES, sizeHint = 0): Promise<Uint8Array> {
  const w = new Writer(snapshotWriterSize(c, sizeHint));
  try {
    await runInSlices(writeCapture(w, c, chunk));
  } finally {
    c.release();
  }
  return w.take();
}

/** Entries of a capture sampled to estimate the size of its encoding. */
const SIZE_SAMPLES = 64;

/**
 * The buffer to start a snapshot's encoding in: a tenth more than the larger of `sizeHint`
 * and an estimate from a sample of the capture's entries (keys × their mean size, counting a
 * character as a byte). Growing by doubling instead would copy the bytes written so far over
 * and over and fault in fresh memory each time: a store's first snapshot of 128 MiB took
 * 0.6–1.7 s to encode against 35–490 ms with the room there from the start (BENCHMARKS.md).
 */
export function snapshotWriterSize(c: KvCapture, sizeHint: number): number {
  const n = Math.min(c.size, SIZE_SAMPLES);
  let sampled = 0;
  for (let j = 0; j < n; j++) {
    const e = c.entry(Math.floor((j * c.size) / n));
    // The two strings, their length prefixes and the three revisions and version.
    sampled += e.key.length + e.value.length + 16;
  }
  const estimate = n === 0 ? 0 : (sampled / n) * c.size;
  return Math.max(64 * 1024, Math.ceil(Math.max(sizeHint, estimate) * 1.1));
}

/**
 * Writes the snapshot format (SNAPSHOT_VERSION), pausing (yielding) after every `chunk`
 * entries or SLICE_BYTES bytes, whichever comes first.
 */
function* writeCapture(w: Writer, c: KvCapture, chunk: number): Generator<void> {
  for (const b of SNAPSHOT_MAGIC) w.u8(b);
  w.u8(SNAPSHOT_VERSION);
  w.varint(c.rev);
  w.varint(c.members.length);
  for (const [id, m] of c.members) {
    w.varint(id);
    w.u8(m.learner ? 1 : 0);
    w.str(m.address);
  }
  w.varint(c.removed.length);
  for (const id of c.removed) w.varint(id);
  w.varint(c.size);
  let sliceStart = w.length;
  for (let i = 0; i < c.size; i++) {
    writeEntry(w, c.entry(i));
    if ((i + 1) % chunk === 0 || w.length - sliceStart >= SLICE_BYTES) {
      yield;
      sliceStart = w.length;
    }
  }
  w.varint(c.sessions.length);
  for (const s of c.sessions) {
    w.str(s.clientId);
    w.varint(s.lastIndex);
    w.varint(s.floor);
    w.varint(s.results.length);
    for (const [seq, result] of s.results) {
      w.varint(seq);
      writeResult(w, result);
    }
  }
}

function writeEntry(w: Writer, e: KvEntry): void {
  w.str(e.key);
  w.str(e.value);
  w.varint(e.createRevision);
  w.varint(e.modRevision);
  w.varint(e.version);
}

function readEntry(r: Reader, rev: number): KvEntry {
  const key = r.str('key');
  const value = r.str('value');
  const createRevision = r.varint('create revision');
  const modRevision = r.varint('mod revision');
  const version = r.varint('version');
  if (
    key.length === 0 ||
    version < 1 ||
    createRevision < 1 ||
    createRevision > modRevision ||
    modRevision > rev
  ) {
    throw new KvCodecError(`kv snapshot: inconsistent entry for key ${JSON.stringify(key)}`);
  }
  return Object.freeze({ key, value, createRevision, modRevision, version });
}

function writeOptionalEntry(w: Writer, e: KvEntry | undefined): void {
  if (!e) w.u8(0);
  else {
    w.u8(1);
    writeEntry(w, e);
  }
}

function readOptionalEntry(r: Reader, rev: number): KvEntry | undefined {
  return r.bool('entry present') ? readEntry(r, rev) : undefined;
}

function writeResult(w: Writer, res: KvResult): void {
  w.u8(OP_CODES[res.op]);
  w.varint(res.revision);
  switch (res.op) {
    case 'put':
      writeOptionalEntry(w, res.prev);
      break;
    case 'delete':
      w.varint(res.deleted);
      writeOptionalEntry(w, res.prev);
      break;
    case 'cas':
      w.u8(res.ok ? 1 : 0);
      writeOptionalEntry(w, res.current);
      break;
  }
}

function readResult(r: Reader, rev: number): KvResult {
  const op = r.u8();
  const revision = r.varint('result revision');
  if (revision > rev) throw new KvCodecError('kv snapshot: result revision beyond the snapshot revision');
  switch (op) {
    case OP_CODES.put: {
      const prev = readOptionalEntry(r, rev);
      return prev ? { op: 'put', revision, prev } : { op: 'put', revision };
    }
    case OP_CODES.delete: {
      const deleted = r.varint('result deleted');
      const prev = readOptionalEntry(r, rev);
      return prev ? { op: 'delete', revision, deleted, prev } : { op: 'delete', revision, deleted };
    }
    case OP_CODES.cas: {
      const ok = r.bool('result ok');
      const current = readOptionalEntry(r, rev);
      return current ? { op: 'cas', revision, ok, current } : { op: 'cas', revision, ok };
    }
    default:
      throw new KvCodecError(`kv snapshot: unknown result op ${op}`);
  }
}

/**
 * A normal entry's payload as people read it in logs and the console: the KV command it
 * carries (`put "k" = "v"`), or the Go-quoted bytes when it is not one of ours.
 */
export function describeKvData(data: Uint8Array): string {
  if (data.length === 0) return '""';
  let cmds: KvCommand[];
  try {
    cmds = decodeKvEntryData(data);
  } catch {
    return goQuote(data);
  }
  if (cmds.length === 1) return describeCommand(cmds[0]!);
  // A batch: the first command in full is enough to recognise it in a busy log.
  return `batch of ${cmds.length}: ${describeCommand(cmds[0]!)}, …`;
}

function describeCommand(c: KvCommand): string {
  const q = (x: string) => JSON.stringify(x);
  switch (c.op) {
    case 'put':
      return `put ${q(c.key)} = ${q(c.value)}`;
    case 'delete':
      return `del ${q(c.key)}`;
    case 'cas':
      return `cas ${q(c.key)} ${c.expected === null ? 'absent' : q(c.expected)} → ${q(c.value)}`;
  }
}
