// Snapshot files: `<data-dir>/snap/<term hex16>-<index hex16>.snap`, each
// [u32 LE crc32 of payload][payload = encodeSnapshot (records.ts)]. A file is written to
// `<name>.tmp`, synced, renamed and the directory synced, so a visible snapshot file is
// complete unless the disk damaged it later (which the crc catches). A snapshot is only
// trusted once the WAL holds its marker; DiskStorage decides that.

import { open, readdir, readFile, rename, unlink } from 'node:fs/promises';
import path from 'node:path';
import { crc32 } from 'node:zlib';
import type { Logger } from '../../raft/logger.js';
import type { Snapshot } from '../../raft/types.js';
import { decodeSnapshot, encodeSnapshotPrefix, RecordDecodeError } from './records.js';
import { syncDir, writeFully } from './wal.js';

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
