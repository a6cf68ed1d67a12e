// Snapshot files: `<data-dir>/snap/<term hex16>-<index hex16>.snap`, each
// [u32 LE crc32 of payload][payload = encodeSnapshot (records.ts)]. A file is written to
// `<name>.tmp`, synced, renamed and the directory synced, so a visible snapshot file is
// complete unless the disk damaged it later (which the crc catches). A snapshot is only
// trusted once the WAL holds its marker; DiskStorage decides that.

import { type FileHandle, open, readdir, readFile, rename, unlink } from 'node:fs/promises';
import path from 'node:path';
import { crc32 } from 'node:zlib';
import type { Logger } from '../../raft/logger.js';
import type { Snapshot, SnapshotMetadata } from '../../raft/types.js';
import { decodeSnapshot, encodeSnapshotPrefix, RecordDecodeError } from './records.js';
import { readFully, syncDir, writeFully } from './wal.js';

const SNAP_RE = /^([0-9a-f]{16})-([0-9a-f]{16})\.snap$/;

/**
 * Bytes checksummed per step when saving: one crc32 call over a 20 MB snapshot blocked the
 * event loop for ~6 ms in the middle of a busy node's requests; a 1 MiB slice takes well
 * under a millisecond.
 */
const CRC_SLICE = 1 << 20;

/**
 * Bytes written between fdatasyncs when saving. Flushed in one go, a 20 MB snapshot kept
 * the disk busy long enough to hold up the WAL's fdatasyncs, on every node sharing it, by
 * 8-23 ms (measured on loopback clusters); flushed every 4 MiB, by at most 6-7 ms.
 */
const SYNC_EVERY = 4 << 20;

const NO_PREFIX = new Uint8Array(0);

/** crc32 of prefix followed by data, yielding to the event loop between slices of data. */
async function crc32Sliced(prefix: Uint8Array, data: Uint8Array): Promise<number> {
  let crc = crc32(prefix);
  for (let off = 0; off < data.length; off += CRC_SLICE) {
    if (off > 0) await new Promise((r) => setImmediate(r));
    crc = crc32(data.subarray(off, off + CRC_SLICE), crc);
  }
  return crc;
}

/** A snapshot file that cannot be read back. */
export class SnapCorruptError extends Error {
  override name = 'SnapCorruptError';
  constructor(
    readonly file: string,
    readonly reason: string,
  ) {
    super(
      `snap: snapshot file ${file} is corrupt (${reason}); the node falls back to an older snapshot if one is ` +
        'valid, otherwise restore this node from a peer (remove its data dir and re-join) or from backup',
    );
  }
}

export interface SnapFile {
  term: number;
  index: number;
  file: string;
}

export function snapName(term: number, index: number): string {
  return `${term.toString(16).padStart(16, '0')}-${index.toString(16).padStart(16, '0')}.snap`;
}

export class Snapshotter {
  /**
   * Files found damaged while their data was read to be sent, and why: opening one again
   * fails at once, rather than reading (and sending) all of it before its crc fails again,
   * each time raft retries.
   */
  private readonly damaged = new Map<string, SnapCorruptError>();
  /** Hears of a file found damaged while its data was read to be sent (once per file). */
  onDamaged: ((metadata: SnapshotMetadata, err: SnapCorruptError) => void) | undefined;

  constructor(
    readonly dir: string,
    private readonly logger: Logger,
  ) {}

  /**
   * Writes s atomically and durably; returns the file. s.data is checksummed over several
   * event-loop turns and written without a copy, so it must not change until this resolves.
   */
  async save(s: Snapshot): Promise<string> {
    const { term, index } = s.metadata;
    const file = path.join(this.dir, snapName(term, index));
    const tmp = `${file}.tmp`;
    // The payload is written as its metadata prefix followed by s.data as it is: copying
    // tens of MB into one payload buffer blocked the event loop for 15-20 ms.
    const prefix = encodeSnapshotPrefix(s.metadata);
    const payloadLength = prefix.length + s.data.length;
    const header = Buffer.alloc(4);
    header.writeUInt32LE(await crc32Sliced(prefix, s.data), 0);
    const fh = await open(tmp, 'w');
    try {
      // The header and prefix, then the data in pieces, each flushed (see SYNC_EVERY); no
      // piece is copied out of s.data.
      const parts = [header, prefix];
      for (let off = 0; off < s.data.length; off += SYNC_EVERY) {
        parts.push(s.data.subarray(off, off + SYNC_EVERY));
      }
      let position = 0;
      for (const part of parts) {
        await writeFully(fh, part, position);
        position += part.length;
        if (part.length === SYNC_EVERY) await fh.datasync();
      }
      await fh.datasync();
    } finally {
      await fh.close();
    }
    await rename(tmp, file);
    await syncDir(this.dir);
    // A damaged file of the same snapshot, if there was one, is replaced.
    this.damaged.delete(file);
    this.logger.info(`snap: saved ${file} (${payloadLength} bytes)`);
    return file;
  }

  /** Reads and verifies one snapshot file; throws SnapCorruptError if it does not check out. */
  async load(f: SnapFile): Promise<Snapshot> {
    const buf = await readFile(f.file);
    if (buf.length < 4)
      throw new SnapCorruptError(f.file, `file is ${buf.length} bytes, shorter than its header`);
    const stored = buf.readUInt32LE(0);
    const payload = buf.subarray(4);
    // Sliced: a leader reads its snapshot back to send it while it serves requests.
    const computed = await crc32Sliced(NO_PREFIX, payload);
    if (stored !== computed) {
      throw new SnapCorruptError(f.file, `crc mismatch (stored ${stored}, computed ${computed})`);
    }
    let snap: Snapshot;
    try {
      snap = decodeSnapshot(payload);
    } catch (err) {
      if (err instanceof RecordDecodeError) throw new SnapCorruptError(f.file, err.message);
      throw err;
    }
    if (snap.metadata.index !== f.index || snap.metadata.term !== f.term) {
      throw new SnapCorruptError(
        f.file,
        `holds index ${snap.metadata.index} term ${snap.metadata.term}, which does not match its name`,
      );
    }
    return snap;
  }

  /**
   * Opens the file of the snapshot `metadata` names for reading its data in pieces (see
   * SnapshotDataReader). Throws SnapCorruptError if the file does not hold that snapshot,
   * and the file system's error (ENOENT once purged) if it cannot be opened.
   */
  async openData(metadata: SnapshotMetadata): Promise<SnapshotDataReader> {
    const file = path.join(this.dir, snapName(metadata.term, metadata.index));
    const known = this.damaged.get(file);
    if (known !== undefined) throw known;
    const fh = await open(file, 'r');
    try {
      const prefix = encodeSnapshotPrefix(metadata);
      const { size } = await fh.stat();
      const head = Buffer.alloc(4 + prefix.length);
      if (size < head.length || (await readFully(fh, head, 0)) !== head.length) {
        throw new SnapCorruptError(file, `file is ${size} bytes, shorter than its header`);
      }
      // The metadata is encoded ahead of the data: bytes other than this snapshot's mean the
      // file is not the snapshot its name says.
      if (Buffer.compare(head.subarray(4), prefix) !== 0) {
        throw new SnapCorruptError(file, 'its metadata does not match its name');
      }
      const onDamage = (err: SnapCorruptError) => {
        if (this.damaged.has(file)) return;
        this.damaged.set(file, err);
        this.onDamaged?.(metadata, err);
      };
      return new SnapshotDataReader(
        file,
        fh,
        head.readUInt32LE(0),
        crc32(prefix),
        head.length,
        size,
        onDamage,
      );
    } catch (err) {
      await fh.close();
      throw err;
    }
  }

  /** Snapshot files, newest (highest index) first. */
  async list(): Promise<SnapFile[]> {
    const out: SnapFile[] = [];
    for (const name of await readdir(this.dir)) {
      const m = SNAP_RE.exec(name);
      if (!m) continue;
      out.push({
        term: Number.parseInt(m[1]!, 16),
        index: Number.parseInt(m[2]!, 16),
        file: path.join(this.dir, name),
      });
    }
    return out.sort((a, b) => b.index - a.index || b.term - a.term);
  }

  /** Deletes all but the newest `keep` snapshot files; returns the removed files. */
  async purge(keep: number): Promise<string[]> {
    const removed: string[] = [];
    for (const f of (await this.list()).slice(keep)) {
      await unlink(f.file);
      removed.push(f.file);
    }
    if (removed.length > 0) await syncDir(this.dir);
    return removed;
  }

  /** Removes leftovers of interrupted saves; they were never referenced by the WAL. */
  async removeTemp(): Promise<void> {
    for (const name of await readdir(this.dir)) {
      if (name.endsWith('.snap.tmp')) {
        await unlink(path.join(this.dir, name));
        this.logger.info(`snap: removed unfinished ${path.join(this.dir, name)}`);
      }
    }
  }

  /** Removes a file from consideration (kept for inspection as `<name>.broken`). */
  async quarantine(f: SnapFile): Promise<string> {
    const to = `${f.file}.broken`;
    await rename(f.file, to);
    await syncDir(this.dir);
    return to;
  }

  /** Deletes a snapshot file that has no WAL marker (written just before a crash). */
  async remove(f: SnapFile): Promise<void> {
    await unlink(f.file);
    await syncDir(this.dir);
  }
}

/**
 * A snapshot file's data, read from the start a piece at a time: what a leader sends a
 * follower that fell behind its log, without holding the whole state in memory. The file's
 * crc is computed over the pieces as they are read, and the last piece is handed out only
 * once it checks out: a transfer of a damaged file never completes, since a follower
 * installs a snapshot only with its last piece. Reading on after the last piece gives an
 * empty piece; close() lets go of the file (which may have been purged meanwhile: an open
 * file stays readable).
 */
export class SnapshotDataReader {
  /** The data's length in bytes. */
  readonly size: number;
  /** Data bytes handed out so far. */
  private read = 0;
  /** crc32 of the payload up to the data not read yet. */
  private crc: number;
  private buf = Buffer.alloc(0);

  constructor(
    readonly file: string,
    private readonly fh: FileHandle,
    private readonly storedCrc: number,
    prefixCrc: number,
    /** Where in the file the data begin. */
    private readonly dataStart: number,
    fileSize: number,
    private readonly onDamage: (err: SnapCorruptError) => void,
  ) {
    this.size = fileSize - dataStart;
    this.crc = prefixCrc;
  }

  /**
   * The next piece of at most maxBytes, valid until the next call: one buffer serves every
   * piece, so a transfer of any size allocates one, not one a megabyte.
   * Throws SnapCorruptError when the last piece's crc does not check out.
   */
  async next(maxBytes: number): Promise<Uint8Array> {
    const n = Math.min(maxBytes, this.size - this.read);
    if (this.buf.length < n) this.buf = Buffer.allocUnsafe(n);
    const piece = this.buf.subarray(0, n);
    const got = await readFully(this.fh, piece, this.dataStart + this.read);
    if (got !== n) throw this.damage(`file ended ${n - got} bytes early while it was read`);
    this.read += n;
    this.crc = crc32(piece, this.crc);
    if (this.read === this.size && this.crc !== this.storedCrc) {
      throw this.damage(`crc mismatch (stored ${this.storedCrc}, computed ${this.crc})`);
    }
    return piece;
  }

  private damage(reason: string): SnapCorruptError {
    const err = new SnapCorruptError(this.file, reason);
    this.onDamage(err);
    return err;
  }

  async close(): Promise<void> {
    await this.fh.close();
  }
}
