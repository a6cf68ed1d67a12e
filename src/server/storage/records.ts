// Compact binary payloads for what the node keeps on disk: WAL record bodies (entries,
// HardStates, snapshot markers, crc seeds) and snapshot files. Integers are unsigned
// LEB128 varints (terms and indexes are small most of the time, and JS numbers stay
// exact up to 2^53 - 1, which the decoder enforces). Byte strings that end a payload
// (entry data, snapshot data) carry no length: the enclosing record/file length bounds
// them. Writers fill a caller-provided buffer at an offset so that a whole save() can
// be encoded into one allocation.

import { varintSize, writeVarint } from '../../protocol/varint.js';
import type { ConfState, Entry, EntryType, HardState, Snapshot, SnapshotMetadata } from '../../raft/types.js';
import type { PackedLog } from './packed-log.js';

/** WAL record types (the u8 after a record's header). */
export const RECORD_CRC_SEED = 1;
export const RECORD_ENTRY = 2;
export const RECORD_HARD_STATE = 3;
export const RECORD_SNAPSHOT_MARKER = 4;

/** Version byte of crc seeds and snapshot files; bump when a payload layout changes. */
export const FORMAT_VERSION = 1;

/** A payload that passed its checksum but does not decode: a bug or a foreign format. */
export class RecordDecodeError extends Error {
  override name = 'RecordDecodeError';
}

/** Says where a snapshot lives in the log; written to the WAL after the snapshot file. */
export interface SnapshotMarker {
  index: number;
  term: number;
  /**
   * True when the snapshot replaced the whole log (one received from the leader):
   * replay then drops every entry before it. A snapshot taken locally keeps the log.
   */
  replacesLog: boolean;
}

export interface CrcSeed {
  /** The running crc of the WAL at the end of the previous segment (0 for the first). */
  prevCrc: number;
  /** The HardState at the time the segment was created, so old segments can be purged. */
  hardState: HardState;
}

export const ENTRY_TYPES: readonly EntryType[] = ['EntryNormal', 'EntryConfChange', 'EntryConfChangeV2'];
const ENTRY_TYPE_CODE: Record<EntryType, number> = {
  EntryNormal: 0,
  EntryConfChange: 1,
  EntryConfChangeV2: 2,
};

/** A bounded read cursor; every read checks the bound so bad input throws, never misreads. */
export class Reader {
  constructor(
    public buf: Uint8Array,
    public pos: number,
    public end: number,
  ) {}

  /** Points the reader at buf[pos, end), for readers reused to save an allocation per record. */
  reset(buf: Uint8Array, pos: number, end: number): this {
    this.buf = buf;
    this.pos = pos;
    this.end = end;
    return this;
  }

  varint(what: string): number {
    let v = 0;
    let mul = 1;
    for (let i = 0; i < 8; i++) {
      if (this.pos >= this.end) throw new RecordDecodeError(`truncated varint (${what})`);
      const b = this.buf[this.pos++]!;
      v += (b & 0x7f) * mul;
      if (b < 0x80) {
        if (v > Number.MAX_SAFE_INTEGER) throw new RecordDecodeError(`varint out of range (${what})`);
        return v;
      }
      mul *= 128;
    }
    // 8 varint bytes hold 56 bits: anything longer cannot be a safe integer.
    throw new RecordDecodeError(`varint too long (${what})`);
  }

  u8(what: string): number {
    if (this.pos >= this.end) throw new RecordDecodeError(`truncated (${what})`);
    return this.buf[this.pos++]!;
  }

  u32(what: string): number {
    if (this.pos + 4 > this.end) throw new RecordDecodeError(`truncated (${what})`);
    const b = this.buf;
    const p = this.pos;
    this.pos += 4;
    return (b[p]! | (b[p + 1]! << 8) | (b[p + 2]! << 16) | (b[p + 3]! << 24)) >>> 0;
  }

  /**
   * The bytes left, as a plain Uint8Array view: subarray() on a Buffer goes through
   * Buffer's species constructor, which costs a replay of a million entries dearly.
   */
  rest(): Uint8Array {
    const b = this.buf;
    const out = new Uint8Array(b.buffer, b.byteOffset + this.pos, this.end - this.pos);
    this.pos = this.end;
    return out;
  }

  done(what: string): void {
    if (this.pos !== this.end) throw new RecordDecodeError(`${this.end - this.pos} trailing bytes (${what})`);
  }
}

function writeU32(buf: Uint8Array, pos: number, v: number): number {
  buf[pos] = v & 0xff;
  buf[pos + 1] = (v >>> 8) & 0xff;
  buf[pos + 2] = (v >>> 16) & 0xff;
  buf[pos + 3] = (v >>> 24) & 0xff;
  return pos + 4;
}

// --- entries -------------------------------------------------------------------------
// [u8 entry type][varint term][varint index][data…]

export function entryPayloadSize(e: Entry): number {
  return 1 + varintSize(e.term) + varintSize(e.index) + e.data.length;
}

export function writeEntryPayload(buf: Uint8Array, pos: number, e: Entry): number {
  buf[pos++] = ENTRY_TYPE_CODE[e.type];
  pos = writeVarint(buf, pos, e.term);
  pos = writeVarint(buf, pos, e.index);
  buf.set(e.data, pos);
  return pos + e.data.length;
}

const NO_BYTES = new Uint8Array(0);
/** Decoding is synchronous: one reader serves every entry of a replay, not a million allocations. */
const entryReader = new Reader(NO_BYTES, 0, 0);

/** Decodes the entry in buf[start, end) into a packed log, its data left where they are. */
export function readEntryPayload(buf: Uint8Array, start: number, end: number, log: PackedLog): void {
  const r = entryReader.reset(buf, start, end);
  try {
    const typeCode = r.u8('entry type');
    if (ENTRY_TYPES[typeCode] === undefined) throw new RecordDecodeError(`unknown entry type ${typeCode}`);
    const term = r.varint('entry term');
    const index = r.varint('entry index');
    log.add(index, term, typeCode, buf, r.pos, end);
  } finally {
    // The reader must not keep the last buffer it read alive.
    r.reset(NO_BYTES, 0, 0);
  }
}

// --- HardState -----------------------------------------------------------------------
// [varint term][varint vote][varint commit]

export function hardStatePayloadSize(hs: HardState): number {
  return varintSize(hs.term) + varintSize(hs.vote) + varintSize(hs.commit);
}

export function writeHardStatePayload(buf: Uint8Array, pos: number, hs: HardState): number {
  pos = writeVarint(buf, pos, hs.term);
  pos = writeVarint(buf, pos, hs.vote);
  return writeVarint(buf, pos, hs.commit);
}

function readHardState(r: Reader): HardState {
  const term = r.varint('hardstate term');
  const vote = r.varint('hardstate vote');
  const commit = r.varint('hardstate commit');
  return { term, vote, commit };
}

export function readHardStatePayload(buf: Uint8Array, start: number, end: number): HardState {
  const r = new Reader(buf, start, end);
  const hs = readHardState(r);
  r.done('hardstate');
  return hs;
}

// --- snapshot marker -----------------------------------------------------------------
// [varint index][varint term][u8 flags: bit 0 = replacesLog]

export function markerPayloadSize(m: SnapshotMarker): number {
  return varintSize(m.index) + varintSize(m.term) + 1;
}

export function writeMarkerPayload(buf: Uint8Array, pos: number, m: SnapshotMarker): number {
  pos = writeVarint(buf, pos, m.index);
  pos = writeVarint(buf, pos, m.term);
  buf[pos++] = m.replacesLog ? 1 : 0;
  return pos;
}

export function readMarkerPayload(buf: Uint8Array, start: number, end: number): SnapshotMarker {
  const r = new Reader(buf, start, end);
  const index = r.varint('marker index');
  const term = r.varint('marker term');
  const flags = r.u8('marker flags');
  if (flags > 1) throw new RecordDecodeError(`unknown marker flags ${flags}`);
  r.done('marker');
  return { index, term, replacesLog: flags === 1 };
}

// --- crc seed ------------------------------------------------------------------------
// [u8 version][u32 LE previous crc][HardState]

export function seedPayloadSize(s: CrcSeed): number {
  return 1 + 4 + hardStatePayloadSize(s.hardState);
}

export function writeSeedPayload(buf: Uint8Array, pos: number, s: CrcSeed): number {
  buf[pos++] = FORMAT_VERSION;
  pos = writeU32(buf, pos, s.prevCrc);
  return writeHardStatePayload(buf, pos, s.hardState);
}

export function readSeedPayload(buf: Uint8Array, start: number, end: number): CrcSeed {
  const r = new Reader(buf, start, end);
  const version = r.u8('seed version');
  if (version !== FORMAT_VERSION) {
    throw new RecordDecodeError(
      `WAL format version ${version} is not supported (expected ${FORMAT_VERSION})`,
    );
  }
  const prevCrc = r.u32('seed crc');
  const hardState = readHardState(r);
  r.done('seed');
  return { prevCrc, hardState };
}

// --- snapshots -----------------------------------------------------------------------
// [u8 version][varint index][varint term][ConfState][data…]
// ConfState: four id lists (voters, learners, votersOutgoing, learnersNext), each a varint
// count then varint ids, then u8 autoLeave.

const CONF_LISTS = ['voters', 'learners', 'votersOutgoing', 'learnersNext'] as const;

/**
 * Everything of a snapshot payload before the data. The snapshotter writes this and the
 * data side by side, so a snapshot of tens of MB is never copied to be written.
 */
export function encodeSnapshotPrefix(m: SnapshotMetadata): Uint8Array {
  const { index, term, confState } = m;
  let size = 1 + varintSize(index) + varintSize(term) + 1;
  for (const k of CONF_LISTS) {
    size += varintSize(confState[k].length);
    for (const id of confState[k]) size += varintSize(id);
  }
  const buf = new Uint8Array(size);
  let pos = 0;
  buf[pos++] = FORMAT_VERSION;
  pos = writeVarint(buf, pos, index);
  pos = writeVarint(buf, pos, term);
  for (const k of CONF_LISTS) {
    pos = writeVarint(buf, pos, confState[k].length);
    for (const id of confState[k]) pos = writeVarint(buf, pos, id);
  }
  buf[pos] = confState.autoLeave ? 1 : 0;
  return buf;
}

/** The whole payload in one buffer (a copy of the data): what decodeSnapshot reads. */
export function encodeSnapshot(s: Snapshot): Uint8Array {
  const prefix = encodeSnapshotPrefix(s.metadata);
  const buf = new Uint8Array(prefix.length + s.data.length);
  buf.set(prefix, 0);
  buf.set(s.data, prefix.length);
  return buf;
}

/**
 * Decodes a snapshot. The data is a view of `buf`, not a copy: a snapshot file's buffer is
 * its data but for a few bytes of header, and copying a large state blocked the event loop
 * (a node reads its snapshot back to send it while serving requests).
 */
export function decodeSnapshot(buf: Uint8Array): Snapshot {
  const r = new Reader(buf, 0, buf.length);
  const version = r.u8('snapshot version');
  if (version !== FORMAT_VERSION) {
    throw new RecordDecodeError(
      `snapshot format version ${version} is not supported (expected ${FORMAT_VERSION})`,
    );
  }
  const index = r.varint('snapshot index');
  const term = r.varint('snapshot term');
  const lists: number[][] = [];
  for (const k of CONF_LISTS) {
    const n = r.varint(`${k} count`);
    // Each id takes at least one byte: a larger count is garbage, not a reason to allocate.
    if (n > r.end - r.pos) throw new RecordDecodeError(`${k} count ${n} exceeds the payload`);
    const ids: number[] = [];
    for (let i = 0; i < n; i++) ids.push(r.varint(k));
    lists.push(ids);
  }
  const autoLeave = r.u8('autoLeave');
  if (autoLeave > 1) throw new RecordDecodeError(`bad autoLeave byte ${autoLeave}`);
  const confState: ConfState = {
    voters: lists[0]!,
    learners: lists[1]!,
    votersOutgoing: lists[2]!,
    learnersNext: lists[3]!,
    autoLeave: autoLeave === 1,
  };
  return { data: r.rest(), metadata: { index, term, confState } };
}
