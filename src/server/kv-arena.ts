// Where the KV store keeps its entries' bytes: records appended to large buffers, outside
// the JS heap, rather than a string per value.
//
// A value kept as a JS string lived on the heap until its key was written again: on every
// replica, each put left ~300 bytes for the young-generation collector to copy (twice,
// before promotion) and the old-generation collector to mark; and a snapshot had to walk
// every key and encode its strings again. Here a key's entry is one record, in exactly the
// bytes the snapshot format gives an entry (see kv.ts: key, value, create revision, mod
// revision, version), copied straight from the committed command; a snapshot copies the
// records in key order, and a write allocates nothing on the heap. Encoding 65,536 keys of
// 256 bytes: 29-33 ms against 48-50 on an idle machine, 39-114 ms of the event loop against
// 97-225 in a loaded 3-node cluster (what is left is reading slots and records in key
// order, a cache miss or two per key).
//
// Chunks are append-only: a record's bytes never change once written, so a capture being
// encoded can read a record that has since been replaced or moved. Space of replaced
// records is taken back by compaction: a full chunk whose live records fall under a
// quarter of it has them copied to the chunk being filled, and is then reused (or, while a
// capture that may still read it is alive, set aside until the capture is released).

/** Bytes per chunk. A record over an eighth of it gets a chunk of its own. */
const CHUNK_BYTES = 1 << 20;
const MAX_SHARED_RECORD = CHUNK_BYTES / 8;
/** Emptied chunks kept for reuse: enough for a few fills between compactions. */
const SPARE_CHUNKS = 4;

/** One buffer of records. */
export class Chunk {
  /** Bytes appended so far; records are never written below this again. */
  used = 0;
  /** Bytes of records that are some key's current entry. */
  live = 0;
  /** Whether it is waiting to be compacted. */
  queued = false;
  /**
   * The holder of every record appended here, in order; a holder may have moved on since
   * (written again elsewhere, or deleted), which compaction checks.
   */
  readonly holders: ArenaRecord[] = [];

  constructor(readonly bytes: Buffer) {}
}

/** Where a record's bytes are: chunk.bytes[start, end). */
export interface RecordSpan {
  readonly chunk: Chunk;
  readonly start: number;
  readonly end: number;
}

/** The arena's view of a key's entry (the store's slot): where its current record is. */
export interface ArenaRecord {
  chunk: Chunk;
  start: number;
  end: number;
  /** The value's UTF-8 bytes within the chunk. */
  valueStart: number;
  valueEnd: number;
  /** False once the key is deleted: its last record stays readable but is never moved. */
  current: boolean;
}

/** A chunk for records that have not been written yet. */
export const NO_CHUNK = new Chunk(Buffer.alloc(0));

/** Bytes of the LEB128 encoding of v. */
export function varintSize(v: number): number {
  let n = 1;
  for (let rest = v; rest >= 0x80; rest = Math.floor(rest / 0x80)) n++;
  return n;
}

function putVarint(buf: Buffer, at: number, v: number): number {
  let pos = at;
  let rest = v;
  while (rest >= 0x80) {
    buf[pos++] = (rest % 0x80) | 0x80;
    rest = Math.floor(rest / 0x80);
  }
  buf[pos++] = rest;
  return pos;
}

/** Copies src[start, end) to dst at `at`; short runs by hand, which beats making a view to copy from. */
function putBytes(dst: Buffer, at: number, src: Uint8Array, start: number, end: number): number {
  if (end - start <= 32) {
    let pos = at;
    for (let i = start; i < end; i++) dst[pos++] = src[i]!;
    return pos;
  }
  dst.set(src.subarray(start, end), at);
  return at + (end - start);
}

export interface ArenaStats {
  /** Chunks the arena holds: in use, spare, or set aside for a capture. */
  chunks: number;
  /** Their bytes. */
  bytes: number;
  /** Bytes of current records. */
  liveBytes: number;
}

export class RecordArena {
  private current: Chunk = NO_CHUNK;
  private readonly sparse: Chunk[] = [];
  private readonly spares: Chunk[] = [];
  /** Compacted chunks that a live capture may still read. */
  private setAside: Chunk[] = [];
  private captures = 0;
  private chunkCount = 0;
  private chunkBytes = 0;
  private liveBytes = 0;

  get stats(): ArenaStats {
    return { chunks: this.chunkCount, bytes: this.chunkBytes, liveBytes: this.liveBytes };
  }

  /**
   * Writes a key's new record (see kv.ts for the layout): its key and value copied from
   * src, then the three counters; `rec` then points at it. `rec` must not hold a current
   * record (release it first).
   */
  write(
    rec: ArenaRecord,
    src: Uint8Array,
    keyStart: number,
    keyEnd: number,
    valueStart: number,
    valueEnd: number,
    createRevision: number,
    modRevision: number,
    version: number,
  ): void {
    const keyLength = keyEnd - keyStart;
    const valueLength = valueEnd - valueStart;
    const size =
      varintSize(keyLength) +
      keyLength +
      varintSize(valueLength) +
      valueLength +
      varintSize(createRevision) +
      varintSize(modRevision) +
      varintSize(version);
    const chunk = this.room(size);
    const buf = chunk.bytes;
    const start = chunk.used;
    chunk.used += size;
    let pos = putVarint(buf, start, keyLength);
    pos = putBytes(buf, pos, src, keyStart, keyEnd);
    pos = putVarint(buf, pos, valueLength);
    const valueAt = pos;
    pos = putBytes(buf, pos, src, valueStart, valueEnd);
    pos = putVarint(buf, pos, createRevision);
    pos = putVarint(buf, pos, modRevision);
    pos = putVarint(buf, pos, version);
    this.place(rec, chunk, start, start + size, valueAt, valueAt + valueLength);
  }

  /**
   * Copies a whole record as it is, from src[start, end) with its value at src[valueStart,
   * valueEnd): a snapshot's entry being restored, or a record being moved.
   */
  copy(
    rec: ArenaRecord,
    src: Uint8Array,
    start: number,
    end: number,
    valueStart: number,
    valueEnd: number,
  ): void {
    const chunk = this.room(end - start);
    const at = chunk.used;
    chunk.used = putBytes(chunk.bytes, at, src, start, end);
    this.place(rec, chunk, at, chunk.used, at + (valueStart - start), at + (valueEnd - start));
  }

  /**
   * The record `rec` holds is no longer current (its key was written again or deleted).
   * Its bytes stay where they are; a chunk left mostly empty is queued for compaction.
   */
  release(rec: ArenaRecord): void {
    const chunk = rec.chunk;
    const size = rec.end - rec.start;
    chunk.live -= size;
    this.liveBytes -= size;
    if (chunk !== this.current) this.queueIfSparse(chunk);
  }

  /**
   * Compacts one queued chunk, if any: its current records are copied to the chunk being
   * filled. Called between applied entries, so the work comes in small steps (a chunk's
   * live records are under a quarter of a MiB).
   */
  compactSome(): void {
    const chunk = this.sparse.pop();
    if (chunk === undefined) return;
    chunk.queued = false;
    for (const rec of chunk.holders) {
      if (rec.current && rec.chunk === chunk) {
        const { start, end, valueStart, valueEnd } = rec;
        chunk.live -= end - start;
        this.liveBytes -= end - start;
        this.copy(rec, chunk.bytes, start, end, valueStart, valueEnd);
      }
    }
    this.retire(chunk);
  }

  /** A capture may read any record from now until unpin(): compacted chunks are not reused meanwhile. */
  pin(): void {
    this.captures++;
  }

  unpin(): void {
    if (--this.captures > 0) return;
    const chunks = this.setAside;
    this.setAside = [];
    for (const c of chunks) this.recycle(c);
  }

  private place(
    rec: ArenaRecord,
    chunk: Chunk,
    start: number,
    end: number,
    valueStart: number,
    valueEnd: number,
  ): void {
    rec.chunk = chunk;
    rec.start = start;
    rec.end = end;
    rec.valueStart = valueStart;
    rec.valueEnd = valueEnd;
    rec.current = true;
    chunk.holders.push(rec);
  }

  /** A chunk with `size` bytes free after `used`, counted as live. */
  private room(size: number): Chunk {
    if (size > MAX_SHARED_RECORD) return this.claim(this.newChunk(size), size);
    let chunk = this.current;
    if (chunk.used + size > chunk.bytes.length) {
      const full = chunk;
      chunk = this.spares.pop() ?? this.newChunk(CHUNK_BYTES);
      this.current = chunk;
      if (full !== NO_CHUNK) this.queueIfSparse(full);
    }
    return this.claim(chunk, size);
  }

  private claim(chunk: Chunk, size: number): Chunk {
    chunk.live += size;
    this.liveBytes += size;
    return chunk;
  }

  private newChunk(size: number): Chunk {
    this.chunkCount++;
    this.chunkBytes += size;
    // Not zeroed: every byte is written before it is read.
    return new Chunk(Buffer.allocUnsafeSlow(size));
  }

  private queueIfSparse(chunk: Chunk): void {
    if (chunk.queued || chunk.live * 4 >= chunk.used) return;
    chunk.queued = true;
    this.sparse.push(chunk);
  }

  private retire(chunk: Chunk): void {
    if (this.captures > 0) this.setAside.push(chunk);
    else this.recycle(chunk);
  }

  private recycle(chunk: Chunk): void {
    if (chunk.bytes.length === CHUNK_BYTES && this.spares.length < SPARE_CHUNKS) {
      chunk.used = 0;
      chunk.live = 0;
      chunk.holders.length = 0;
      this.spares.push(chunk);
      return;
    }
    this.chunkCount--;
    this.chunkBytes -= chunk.bytes.length;
  }
}
