// The write-ahead log: every HardState, entry and snapshot marker the node must not
// forget, appended to segment files and replayed on start.
//
// Layout: `<data-dir>/wal/<seq hex16>-<firstIndex hex16>.wal`, seq counting up from 1
// without gaps; firstIndex is the index the segment's first entry was expected to have
// (informational: replay trusts the records, not the name).
//
// Record (all integers little-endian; every record starts at a multiple of 8, so an
// 8-byte header never straddles a 512-byte sector and a length cannot be torn):
//
// | offset | size | field                                                          |
// |--------|------|----------------------------------------------------------------|
// | 0      | 4    | length: bytes of type + payload (≥ 1; padding not included)    |
// | 4      | 4    | crc32 of type + payload, seeded with the previous record's crc |
// | 8      | 1    | type: 1 crcSeed, 2 entry, 3 hardState, 4 snapshotMarker        |
// | 9      | n    | payload (records.ts)                                           |
// | 9 + n  | 0–7  | zero padding up to the next multiple of 8                      |
//
// Payloads (varint = unsigned LEB128, records.ts):
//   crcSeed        [u8 version=1][u32 prevCrc][varint term, vote, commit]   always first in a segment
//   entry          [u8 entry type][varint term][varint index][data…]
//   hardState      [varint term][varint vote][varint commit]
//   snapshotMarker [varint index][varint term][u8 flags: 1 = snapshot replaced the log]
//
// The crc chain runs across segments: a segment's crcSeed carries the last crc of the
// previous segment and its own crc is seeded with it, so a missing, reordered or
// swapped segment breaks the chain. The seed also carries the HardState current when
// the segment was created, so purging older segments never loses it.
//
// Durability: append() encodes a whole batch into one buffer, issues one positional
// write and (when asked) one fdatasync. Segments are created as `<name>.tmp`, seeded,
// synced, renamed and the directory synced, so a segment visible under its final name
// always starts with a durable seed. Before a new segment becomes visible the previous
// one is synced, so only the last segment can ever have a torn tail.
//
// Preallocation: an fdatasync that follows a write past the end of the file must also
// write the file's new size (on ext4, a second synchronous write and wait: measured 205
// against 145 µs per 256-byte append and sync). So while writes come slowly, the last
// segment runs a zero-filled tail of up to PREALLOC_BYTES ahead of its records, written
// and synced with the append that reached the previous tail's end, and appends overwrite
// it. While appends come at PREALLOC_BYTES a second or more no tail is laid: then each
// sync carries many records, one size update among them costs little, and zeros written
// ahead would double the bytes the disk writes. Replay takes zeros from the end of the
// last segment's records to the end of the file as that tail, and keeps it; a segment is
// cut back to its records before the next one is created, so only the last ends in zeros.
//
// Replay: a WAL of 32 MiB or more is decoded on this thread while a worker checks its crc
// chain (wal-check.ts); a segment the worker does not find whole sends the WAL through
// the sequential scan, which checks as it decodes and decides what a bad record means.

import { fdatasync, writeSync } from 'node:fs';
import { type FileHandle, open, readdir, rename, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import { crc32 } from 'node:zlib';
import type { Logger } from '../../raft/logger.js';
import { EMPTY_HARD_STATE, type Entry, type HardState } from '../../raft/types.js';
import { PackedLog } from './packed-log.js';
import {
  entryPayloadSize,
  hardStatePayloadSize,
  markerPayloadSize,
  RECORD_CRC_SEED,
  RECORD_ENTRY,
  RECORD_HARD_STATE,
  RECORD_SNAPSHOT_MARKER,
  RecordDecodeError,
  readEntryPayload,
  readHardStatePayload,
  readMarkerPayload,
  readSeedPayload,
  type SnapshotMarker,
  seedPayloadSize,
  writeEntryPayload,
  writeHardStatePayload,
  writeMarkerPayload,
  writeSeedPayload,
} from './records.js';
import { type BadRecord, CrcChecker, type FrameResult, frameSegment, sharedBuffer } from './wal-check.js';

export const DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024;
/** The zero-filled tail laid ahead of the last segment's records (see Preallocation above). */
export const PREALLOC_BYTES = 1024 * 1024;
/** Compared with, to find a zero tail, and written, to lay one. */
const ZEROS = new Uint8Array(PREALLOC_BYTES);
const HEADER_BYTES = 8;
/** A WAL this large is checked on a worker thread while it is decoded (wal-check.ts). */
const PARALLEL_CHECK_MIN_BYTES = 32 << 20;
const SECTOR_BYTES = 512;
const SEGMENT_RE = /^([0-9a-f]{16})-([0-9a-f]{16})\.wal$/;
const RESTORE_ADVICE =
  'refusing to start; restore this node from a peer (remove its data dir and re-join) or from backup';

/** The WAL is damaged somewhere a crash cannot explain; starting would risk acknowledged data. */
export class WalCorruptError extends Error {
  override name = 'WalCorruptError';
  constructor(
    readonly file: string,
    readonly offset: number,
    readonly reason: string,
  ) {
    super(`wal: ${reason} in ${file} at offset ${offset}; ${RESTORE_ADVICE}`);
  }
}

/**
 * A write or sync failed. What reached the disk is unknown (after a failed fsync the
 * kernel may have dropped the dirty pages), so the WAL refuses every later write and
 * the node must restart and recover from what is really on disk.
 */
export class WalWriteError extends Error {
  override name = 'WalWriteError';
  constructor(
    readonly file: string,
    readonly op: string,
    override readonly cause: unknown,
  ) {
    super(
      `wal: ${op} of ${file} failed (${cause instanceof Error ? cause.message : String(cause)}); ` +
        'the WAL accepts no more writes: check the disk (space, I/O errors) and restart the node, ' +
        'which recovers from what was synced',
    );
  }
}

export interface WalOptions {
  logger: Logger;
  /** A segment is closed and a new one started once it reaches this size (default 64 MiB). */
  segmentBytes?: number;
  /** From this many bytes of segments on, Wal.open checks crcs on a worker thread (default 32 MiB). */
  parallelCheckMinBytes?: number;
  /** The zero tail laid ahead of slow appends (default PREALLOC_BYTES; 0: none). */
  preallocBytes?: number;
}

/** What the WAL says the node persisted, in the order it was written. */
export interface WalReplay {
  hardState: HardState;
  /**
   * The log after replaying every entry with truncation semantics (an entry at index i
   * drops whatever the log held from i on) and every log-replacing snapshot marker, which
   * leaves it empty and known to start at the marker + 1. Entry data stay in the segment
   * buffers.
   */
  log: PackedLog;
  /** Every snapshot marker, oldest first. */
  markers: SnapshotMarker[];
  repairedTornTail: boolean;
}

interface Segment {
  seq: number;
  firstIndex: number;
  file: string;
  /** Highest entry or marker index written to the segment; 0 if none. Decides purging. */
  maxIndex: number;
}

type RecordVisitor = (type: number, buf: Buffer, start: number, end: number) => void;

export function segmentName(seq: number, firstIndex: number): string {
  return `${hex16(seq)}-${hex16(firstIndex)}.wal`;
}

function hex16(n: number): string {
  return n.toString(16).padStart(16, '0');
}

/** The largest append buffer a WAL keeps for reuse. */
const MAX_SCRATCH = 8 << 20;

function padded(n: number): number {
  return (n + 7) & ~7;
}

function recordBytes(payload: number): number {
  return padded(HEADER_BYTES + 1 + payload);
}

/** Fsyncs a directory so that creations, renames and unlinks in it are durable. */
export async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * Appends on this thread: the write only copies into the page cache, which costs less than
 * a round trip through the libuv pool (measured: write + fdatasync through the pool
 * 370–490 µs at p50, a direct write then a pooled fdatasync 180–220 µs). Only the
 * fdatasync, which waits for the disk, goes to the pool.
 */
function writeFullySync(fd: number, buf: Uint8Array, position: number): void {
  let done = 0;
  while (done < buf.length) done += writeSync(fd, buf, done, buf.length - done, position + done);
}

/** Writes all of buf at `position`, however many calls the kernel takes. */
export async function writeFully(fh: FileHandle, buf: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < buf.length) {
    const { bytesWritten } = await fh.write(buf, done, buf.length - done, position + done);
    done += bytesWritten;
  }
}

/** Reads buf.length bytes at `position` unless the file ends first; returns how many were read. */
export async function readFully(fh: FileHandle, buf: Uint8Array, position: number): Promise<number> {
  let done = 0;
  while (done < buf.length) {
    const { bytesRead } = await fh.read(buf, done, buf.length - done, position + done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  return done;
}

/**
 * crc32 of buf[start, end) continuing from seed. The view is a plain Uint8Array: one is
 * made per record on replay, and Buffer.subarray would build each through Buffer's
 * species constructor.
 */
function crcOf(buf: Buffer, start: number, end: number, seed: number): number {
  return crc32(new Uint8Array(buf.buffer, buf.byteOffset + start, end - start), seed);
}

/**
 * Reads a whole segment of `size` bytes (as Wal.open found it: nothing writes to the WAL
 * while it is opened) with one read call (repeated only if the kernel returns less), so the
 * read runs on the libuv pool without needing this thread between chunks, while Wal.open
 * scans the segments before it. `shared`: into memory a CrcChecker can read.
 */
async function readSegment(file: string, size: number, shared: boolean): Promise<Buffer> {
  const fh = await open(file, 'r');
  try {
    const buf = shared ? sharedBuffer(size) : Buffer.allocUnsafeSlow(size);
    const done = await readFully(fh, buf, 0);
    return done === size ? buf : buf.subarray(0, done);
  } finally {
    await fh.close();
  }
}

/**
 * Writes the record header for the type+payload at [start + 8, end), pads to 8 and
 * returns the new running crc. The payload must already be in place.
 */
function sealRecord(buf: Buffer, start: number, end: number, prevCrc: number): number {
  const crc = crc32(buf.subarray(start + HEADER_BYTES, end), prevCrc);
  buf.writeUInt32LE(end - start - HEADER_BYTES, start);
  buf.writeUInt32LE(crc, start + 4);
  buf.fill(0, end, padded(end));
  return crc;
}

function seedRecord(prevCrc: number, hardState: HardState): { buf: Buffer; crc: number } {
  const seed = { prevCrc, hardState };
  const buf = Buffer.alloc(recordBytes(seedPayloadSize(seed)));
  buf[HEADER_BYTES] = RECORD_CRC_SEED;
  const end = writeSeedPayload(buf, HEADER_BYTES + 1, seed);
  // The seed's own crc starts from the value it carries, which is what lets a reader
  // verify the first segment it has without the (possibly purged) previous one.
  return { buf, crc: sealRecord(buf, 0, end, prevCrc) };
}

/**
 * True if [start, end) covers a whole sector that is all zeros: a sector the disk never
 * wrote. Partial pieces at the record's edges do not count — a value that merely ends in
 * NUL bytes must not make a corrupt record look torn (and so drop acked records after it) —
 * except a piece that runs to the end of the file, where the write itself stopped.
 */
function hasZeroSector(buf: Buffer, start: number, end: number): boolean {
  let s = start;
  while (s < end) {
    const e = Math.min(end, (Math.floor(s / SECTOR_BYTES) + 1) * SECTOR_BYTES);
    const wholeSector = e - s === SECTOR_BYTES || e === buf.length;
    if (!wholeSector) {
      s = e;
      continue;
    }
    let zero = true;
    for (let i = s; i < e; i++) {
      if (buf[i] !== 0) {
        zero = false;
        break;
      }
    }
    if (zero) return true;
    s = e;
  }
  return false;
}

/** True if a well-formed record chained from one of `chain` starts at an aligned offset ≥ from. */
function verifiableRecordFollows(buf: Buffer, from: number, chain: number[]): boolean {
  for (let y = padded(from); y + HEADER_BYTES < buf.length; y += 8) {
    const len = buf.readUInt32LE(y);
    if (len === 0 || y + HEADER_BYTES + len > buf.length) continue;
    const type = buf[y + HEADER_BYTES]!;
    if (type < RECORD_ENTRY || type > RECORD_SNAPSHOT_MARKER) continue;
    const stored = buf.readUInt32LE(y + 4);
    for (const c of chain)
      if (crcOf(buf, y + HEADER_BYTES, y + HEADER_BYTES + len, c) === stored) return true;
  }
  return false;
}

/**
 * Whether the records end where zeros begin and run to the end of the file: the last
 * segment's preallocated tail (see Preallocation above), not damage.
 */
function isZeroTail(buf: Buffer, bad: BadRecord): boolean {
  for (let at = bad.offset; at < buf.length; at += ZEROS.length) {
    const end = Math.min(buf.length, at + ZEROS.length);
    if (Buffer.compare(buf.subarray(at, end), ZEROS.subarray(0, end - at)) !== 0) return false;
  }
  return true;
}

/**
 * Whether a bad record at the end of the last segment is what a crash leaves behind.
 * A crash leaves a short file, zero-filled sectors, or (past the end of what was
 * synced) leftovers that nothing verifiable follows. A bad record followed by a record
 * that continues its crc chain, with no zeroed sector in it, was written completely and
 * damaged later: that is corruption, and dropping it would lose acknowledged data.
 */
function isTornTail(buf: Buffer, bad: BadRecord): boolean {
  if (bad.zeroHeader) return true;
  if (bad.end !== undefined && hasZeroSector(buf, bad.offset, bad.end)) return true;
  return !verifiableRecordFollows(buf, bad.offset + HEADER_BYTES, bad.chain);
}

/**
 * Walks the records of one segment (see frameRecords), decoding each with `visit`. Returns
 * the offset where valid data ends, the running crc there, and the first bad record if any
 * (its classification is up to the caller). Records that frame but make no sense throw
 * WalCorruptError: no crash produces those. Without `checkCrc` the records' crcs are not
 * computed: only for a segment a CrcChecker checks meanwhile.
 */
function scanSegment(
  buf: Buffer,
  file: string,
  prevCrc: number | undefined,
  visit: RecordVisitor,
  checkCrc = true,
): FrameResult {
  return frameSegment(buf, checkCrc, (type, off, start, end) => {
    try {
      if (type === RECORD_CRC_SEED) {
        if (off !== 0) throw new RecordDecodeError('crc seed record in the middle of a segment');
        const s = readSeedPayload(buf, start, end);
        if (prevCrc !== undefined && s.prevCrc !== prevCrc) {
          throw new RecordDecodeError(
            `crc seed ${hex32(s.prevCrc)} does not continue the previous segment (which ends with ${hex32(prevCrc)}): ` +
              'a segment is missing or was replaced',
          );
        }
      }
      visit(type, buf, start, end);
    } catch (err) {
      if (err instanceof RecordDecodeError) throw new WalCorruptError(file, off, err.message);
      throw err;
    }
  });
}

function hex32(n: number): string {
  return `0x${n.toString(16).padStart(8, '0')}`;
}

export class Wal {
  private fh: FileHandle;
  /** Where the next record goes: the end of the last segment's records. */
  private size: number;
  /** The last segment's length on disk: `size` plus its zero-filled tail, if it has one. */
  private fileBytes: number;
  /** Bytes appended since open. */
  private appended = 0;
  /** The window appends are timed over (see appendsAreFast), and what the one before found. */
  private rateWindow = { at: performance.now(), appended: 0, wasFast: false };
  private lastCrc: number;
  private hardState: HardState;
  private lastIndex: number;
  /** Bytes written since the last fdatasync. */
  private dirty = false;
  private busy = false;
  /**
   * The buffer appends encode records into, kept between appends (the write that reads it
   * is synchronous). A fresh buffer per append — tens of KB under load — was a malloc, a
   * free and page faults on every Ready.
   */
  private scratch = Buffer.allocUnsafeSlow(64 * 1024);
  private failed: WalWriteError | undefined;
  private closed = false;

  private constructor(
    readonly dir: string,
    private readonly logger: Logger,
    private readonly segmentBytes: number,
    private readonly preallocBytes: number,
    private readonly segments: Segment[],
    fh: FileHandle,
    size: number,
    fileBytes: number,
    lastCrc: number,
    hardState: HardState,
    lastIndex: number,
  ) {
    this.fh = fh;
    this.size = size;
    this.fileBytes = fileBytes;
    this.lastCrc = lastCrc;
    this.hardState = hardState;
    this.lastIndex = lastIndex;
  }

  /** True if dir holds at least one segment, i.e. this node has persisted something. */
  static async exists(dir: string): Promise<boolean> {
    try {
      return (await readdir(dir)).some((n) => SEGMENT_RE.test(n));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw err;
    }
  }

  /**
   * Opens (creating if empty) the WAL in dir and replays it. A torn tail of the last
   * segment is truncated and logged; any other damage throws WalCorruptError.
   */
  static async open(dir: string, opts: WalOptions): Promise<{ wal: Wal; replay: WalReplay }> {
    const { logger } = opts;
    const openedAt = performance.now();
    const segmentBytes = opts.segmentBytes ?? DEFAULT_SEGMENT_BYTES;
    const preallocBytes = opts.preallocBytes ?? PREALLOC_BYTES;
    if (!(Number.isInteger(preallocBytes) && preallocBytes >= 0 && preallocBytes <= PREALLOC_BYTES)) {
      throw new RangeError(`wal: preallocBytes must be an integer in [0, ${PREALLOC_BYTES}]`);
    }
    const segments: Segment[] = [];
    for (const name of await readdir(dir)) {
      const m = SEGMENT_RE.exec(name);
      if (m) {
        segments.push({
          seq: Number.parseInt(m[1]!, 16),
          firstIndex: Number.parseInt(m[2]!, 16),
          file: path.join(dir, name),
          maxIndex: 0,
        });
      } else if (name.endsWith('.wal.tmp')) {
        // A segment whose creation did not finish: it never held acknowledged data.
        await unlink(path.join(dir, name));
        logger.info(`wal: removed unfinished segment ${path.join(dir, name)}`);
      }
    }
    segments.sort((a, b) => a.seq - b.seq);
    for (let i = 1; i < segments.length; i++) {
      if (segments[i]!.seq !== segments[i - 1]!.seq + 1) {
        throw new WalCorruptError(
          segments[i]!.file,
          0,
          `segment sequence jumps from ${segments[i - 1]!.seq} to ${segments[i]!.seq} (a segment is missing)`,
        );
      }
    }

    const replay: WalReplay = {
      hardState: { ...EMPTY_HARD_STATE },
      log: new PackedLog(),
      markers: [],
      repairedTornTail: false,
    };
    let current: Segment | undefined;
    const visit: RecordVisitor = (type, buf, start, end) => {
      const seg = current!;
      switch (type) {
        case RECORD_CRC_SEED:
          replay.hardState = readSeedPayload(buf, start, end).hardState;
          break;
        case RECORD_ENTRY: {
          readEntryPayload(buf, start, end, replay.log);
          if (replay.log.lastIndex > seg.maxIndex) seg.maxIndex = replay.log.lastIndex;
          break;
        }
        case RECORD_HARD_STATE:
          replay.hardState = readHardStatePayload(buf, start, end);
          break;
        case RECORD_SNAPSHOT_MARKER: {
          const m = readMarkerPayload(buf, start, end);
          replay.markers.push(m);
          if (m.replacesLog) replay.log.clear(m.index + 1);
          if (m.index > seg.maxIndex) seg.maxIndex = m.index;
          break;
        }
        default:
          throw new RecordDecodeError(`unknown record type ${type}`);
      }
    };

    // The sizes decide the reads' buffers, and whether a large WAL's crcs are checked by a
    // worker while this thread decodes (wal-check.ts).
    const sizes = await Promise.all(segments.map((s) => stat(s.file).then((st) => st.size)));
    const walBytes = sizes.reduce((a, b) => a + b, 0);
    let checker =
      segments.length > 0 && walBytes >= (opts.parallelCheckMinBytes ?? PARALLEL_CHECK_MIN_BYTES)
        ? new CrcChecker((err) =>
            logger.warn(`wal: the crc worker failed (${err.message}); checking on this thread instead`),
          )
        : undefined;
    const read = (i: number) => {
      const r = readSegment(segments[i]!.file, sizes[i]!, checker !== undefined).then((buf) => {
        checker?.submit(i, buf);
        return buf;
      });
      // A read left pending when a scan throws must not become an unhandled rejection.
      r.catch(() => undefined);
      return r;
    };
    let chain: number | undefined;
    let lastEnd = 0;
    // The last segment's length: its records and the zero tail after them, if kept.
    let lastFileBytes = 0;
    let checkedOnWorker = false;
    try {
      const reads = segments.length > 0 ? [read(0)] : [];
      for (let i = 0; i < segments.length; i++) {
        current = segments[i]!;
        const buf = await reads[i]!;
        if (i === 0) {
          // The first segment is read alone, so that it comes soonest; all the others are
          // read at once, on the libuv pool, while it is scanned. Their buffers are thus
          // allocated before any entry is decoded, which matters: each large allocation
          // makes V8 collect garbage (external memory pressure), cheap now and costly once
          // the heap holds the entries decoded so far.
          for (let j = 1; j < segments.length; j++) reads.push(read(j));
        }
        const last = i === segments.length - 1;
        if (checker !== undefined) {
          let scan: FrameResult | undefined;
          try {
            scan = scanSegment(buf, current.file, chain, visit, false);
          } catch {
            // Decided below, by the sequential scan.
          }
          const v = await checker.verdict(i);
          // Whole, or (the last segment) whole up to its zero tail, where the worker stopped too.
          const clean = scan?.bad === undefined ? v?.whole : last && isZeroTail(buf, scan.bad);
          if (scan !== undefined && v !== undefined && clean && v.end === scan.end && v.crc === scan.crc) {
            if (scan.end > 0) chain = scan.crc;
            lastEnd = scan.end;
            lastFileBytes = buf.length;
            continue;
          }
          // Something to look at closely: start over, checking as we decode, with the
          // buffers read so far.
          logger.info(
            `wal: ${current.file} did not check out on the crc worker; scanning the WAL again on this thread`,
          );
          await checker.close();
          checker = undefined;
          resetReplay(replay, segments);
          chain = undefined;
          lastEnd = 0;
          i = -1;
          continue;
        }
        const scan = scanSegment(buf, current.file, chain, visit);
        lastFileBytes = buf.length;
        if (scan.bad && !(last && isZeroTail(buf, scan.bad))) {
          if (!last || !isTornTail(buf, scan.bad)) {
            throw new WalCorruptError(current.file, scan.bad.offset, scan.bad.reason);
          }
          await truncateFile(current.file, scan.end);
          lastFileBytes = scan.end;
          replay.repairedTornTail = true;
          logger.warn(
            `wal: repaired torn tail of ${current.file} at offset ${scan.end} (${buf.length - scan.end} bytes dropped)`,
          );
        }
        // A segment cut back to nothing (its seed torn) continues the previous chain.
        if (scan.end > 0) chain = scan.crc;
        lastEnd = scan.end;
      }
      checkedOnWorker = checker !== undefined;
    } finally {
      await checker?.close();
    }

    const lastIndex = replay.log.lastIndex;
    let fh: FileHandle;
    let size = lastEnd;
    let fileBytes = lastFileBytes;
    let lastCrc = chain ?? 0;
    const tail = segments[segments.length - 1];
    if (tail === undefined || lastEnd === 0) {
      // A fresh WAL, or a last segment whose seed was torn: (re)seed it.
      const seq = tail?.seq ?? 1;
      const firstIndex = tail?.firstIndex ?? lastIndex + 1;
      const made = await createSegment(dir, seq, firstIndex, lastCrc, replay.hardState);
      if (tail === undefined) segments.push({ seq, firstIndex, file: made.file, maxIndex: 0 });
      fh = made.fh;
      size = made.size;
      fileBytes = made.size;
      lastCrc = made.crc;
    } else {
      fh = await open(tail.file, 'r+');
    }
    const wal = new Wal(
      dir,
      logger,
      segmentBytes,
      preallocBytes,
      segments,
      fh,
      size,
      fileBytes,
      lastCrc,
      replay.hardState,
      lastIndex,
    );
    logger.info(
      `wal: opened ${dir} (${segments.length} segments, last index ${lastIndex}) in ${Math.round(performance.now() - openedAt)} ms` +
        (checkedOnWorker ? ', crcs checked on a worker thread' : ''),
    );
    return { wal, replay };
  }

  /** File names of the live segments, oldest first. */
  segmentFiles(): string[] {
    return this.segments.map((s) => s.file);
  }

  /**
   * Appends an optional snapshot marker, the entries and an optional HardState, in that
   * order, with one write; syncs once when mustSync. Callers persist one Ready per call
   * (group commit) and must not call it concurrently.
   */
  async append(
    hs: HardState | undefined,
    entries: Entry[],
    mustSync: boolean,
    marker?: SnapshotMarker,
  ): Promise<void> {
    this.enter();
    try {
      let total = 0;
      if (marker) total += recordBytes(markerPayloadSize(marker));
      for (const e of entries) total += recordBytes(entryPayloadSize(e));
      if (hs) total += recordBytes(hardStatePayloadSize(hs));
      if (total === 0) {
        if (mustSync && this.dirty) await this.sync();
        return;
      }
      // A rare huge append (a large entry) gets a buffer of its own rather than pinning that much.
      if (total > this.scratch.length && total <= MAX_SCRATCH) {
        this.scratch = Buffer.allocUnsafeSlow(Math.min(total * 2, MAX_SCRATCH));
      }
      const buf = total <= this.scratch.length ? this.scratch.subarray(0, total) : Buffer.allocUnsafe(total);
      let pos = 0;
      let crc = this.lastCrc;
      if (marker) {
        buf[pos + HEADER_BYTES] = RECORD_SNAPSHOT_MARKER;
        const end = writeMarkerPayload(buf, pos + HEADER_BYTES + 1, marker);
        crc = sealRecord(buf, pos, end, crc);
        pos = padded(end);
      }
      for (const e of entries) {
        buf[pos + HEADER_BYTES] = RECORD_ENTRY;
        const end = writeEntryPayload(buf, pos + HEADER_BYTES + 1, e);
        crc = sealRecord(buf, pos, end, crc);
        pos = padded(end);
      }
      if (hs) {
        buf[pos + HEADER_BYTES] = RECORD_HARD_STATE;
        const end = writeHardStatePayload(buf, pos + HEADER_BYTES + 1, hs);
        crc = sealRecord(buf, pos, end, crc);
        pos = padded(end);
      }

      const seg = this.segments[this.segments.length - 1]!;
      try {
        writeFullySync(this.fh.fd, buf, this.size);
        this.size += total;
        this.appended += total;
        if (this.size > this.fileBytes) this.extend();
      } catch (err) {
        throw this.fail(seg.file, 'write', err);
      }
      this.lastCrc = crc;
      this.dirty = true;
      if (marker) {
        if (marker.replacesLog) this.lastIndex = marker.index;
        seg.maxIndex = Math.max(seg.maxIndex, marker.index);
      }
      if (entries.length > 0) {
        this.lastIndex = entries[entries.length - 1]!.index;
        seg.maxIndex = Math.max(seg.maxIndex, this.lastIndex);
      }
      if (hs) this.hardState = { ...hs };
      if (mustSync) await this.sync();
      if (this.size >= this.segmentBytes) await this.roll();
    } finally {
      this.busy = false;
    }
  }

  /**
   * Deletes the oldest segments while every entry and marker in them is below index
   * (never the segment being written). The caller picks an index at or below every
   * snapshot it may still fall back to. Returns the removed files.
   */
  async purgeBelow(index: number): Promise<string[]> {
    this.enter();
    try {
      const removed: string[] = [];
      // Oldest first, so that a crash midway leaves a gap-free suffix.
      while (this.segments.length > 1 && this.segments[0]!.maxIndex < index) {
        const seg = this.segments.shift()!;
        await unlink(seg.file);
        removed.push(seg.file);
      }
      if (removed.length > 0) {
        await syncDir(this.dir);
        this.logger.info(`wal: purged ${removed.length} segment(s) below index ${index}`);
      }
      return removed;
    } finally {
      this.busy = false;
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      if (this.dirty && !this.failed) await this.fh.datasync();
    } finally {
      await this.fh.close();
    }
  }

  private enter(): void {
    if (this.closed) throw new Error(`wal: ${this.dir} is closed`);
    if (this.failed) throw this.failed;
    // The driver persists one Ready at a time; overlapping calls would interleave writes.
    if (this.busy) throw new Error('wal: concurrent append/purge calls; serialize them');
    this.busy = true;
  }

  /**
   * The last write went past the segment's end: lays a new zero tail after it while appends
   * come slowly (see Preallocation above). The append's sync makes it durable, so the
   * appends after it change no size.
   */
  private extend(): void {
    this.fileBytes = this.size;
    if (this.preallocBytes === 0 || this.appendsAreFast()) return;
    // However much of it lands, the file may now run up to here: roll() cuts it back.
    this.fileBytes = this.size + this.preallocBytes;
    try {
      writeFullySync(this.fh.fd, ZEROS.subarray(0, this.preallocBytes), this.size);
    } catch (err) {
      // Only a speed-up: the records are written; a full disk shows on the next append.
      this.logger.warn(`wal: could not lay a zero tail after the records: ${(err as Error).message}`);
    }
  }

  /**
   * Whether appends come at PREALLOC_BYTES a second or more: over the current window once it
   * spans a second (then a new one starts), before that as the last window found, unless
   * the current one has seen that much already.
   */
  private appendsAreFast(): boolean {
    const now = performance.now();
    const w = this.rateWindow;
    const bytes = this.appended - w.appended;
    const secs = (now - w.at) / 1000;
    if (secs < 1) return w.wasFast || bytes >= PREALLOC_BYTES;
    const fast = bytes >= PREALLOC_BYTES * secs;
    this.rateWindow = { at: now, appended: this.appended, wasFast: fast };
    return fast;
  }

  private fail(file: string, op: string, err: unknown): WalWriteError {
    this.failed = new WalWriteError(file, op, err);
    return this.failed;
  }

  private async sync(): Promise<void> {
    try {
      // The callback form: FileHandle's promise wrapper adds its own bookkeeping to every sync.
      const fd = this.fh.fd;
      await new Promise<void>((resolve, reject) => fdatasync(fd, (err) => (err ? reject(err) : resolve())));
    } catch (err) {
      throw this.fail(this.segments[this.segments.length - 1]!.file, 'fdatasync', err);
    }
    this.dirty = false;
  }

  /** Closes the full segment and continues in a new one. */
  private async roll(): Promise<void> {
    // The old segment must be durable before a newer one exists: only the last segment
    // may have a torn tail, or a zero-filled one.
    if (this.fileBytes > this.size) {
      try {
        await this.fh.truncate(this.size);
      } catch (err) {
        throw this.fail(this.segments[this.segments.length - 1]!.file, 'truncate', err);
      }
      this.fileBytes = this.size;
      this.dirty = true;
    }
    if (this.dirty) await this.sync();
    const seq = this.segments[this.segments.length - 1]!.seq + 1;
    const firstIndex = this.lastIndex + 1;
    let made: Awaited<ReturnType<typeof createSegment>>;
    try {
      made = await createSegment(this.dir, seq, firstIndex, this.lastCrc, this.hardState);
    } catch (err) {
      throw this.fail(path.join(this.dir, segmentName(seq, firstIndex)), 'segment creation', err);
    }
    await this.fh.close();
    this.fh = made.fh;
    this.size = made.size;
    this.fileBytes = made.size;
    this.lastCrc = made.crc;
    this.segments.push({ seq, firstIndex, file: made.file, maxIndex: 0 });
    this.logger.debug(`wal: started segment ${made.file}`);
  }
}

/** Forgets everything replayed, for a scan that starts over. */
function resetReplay(replay: WalReplay, segments: Segment[]): void {
  replay.hardState = { ...EMPTY_HARD_STATE };
  replay.log.clear(undefined);
  replay.markers = [];
  for (const seg of segments) seg.maxIndex = 0;
}

/** Creates a segment durably: tmp file with its seed, synced, renamed, directory synced. */
async function createSegment(
  dir: string,
  seq: number,
  firstIndex: number,
  prevCrc: number,
  hardState: HardState,
): Promise<{ fh: FileHandle; file: string; size: number; crc: number }> {
  const file = path.join(dir, segmentName(seq, firstIndex));
  const tmp = `${file}.tmp`;
  const seed = seedRecord(prevCrc, hardState);
  const fh = await open(tmp, 'w+');
  try {
    await writeFully(fh, seed.buf, 0);
    await fh.datasync();
    await rename(tmp, file);
    await syncDir(dir);
  } catch (err) {
    await fh.close();
    throw err;
  }
  return { fh, file, size: seed.buf.length, crc: seed.crc };
}

async function truncateFile(file: string, size: number): Promise<void> {
  const fh = await open(file, 'r+');
  try {
    await fh.truncate(size);
    await fh.datasync();
  } finally {
    await fh.close();
  }
}
