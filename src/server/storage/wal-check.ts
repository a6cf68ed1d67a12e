// The framing and crc chain of WAL segments (the record layout is described in wal.ts), and
// a worker thread that checks the chain while the main thread decodes the same records.
//
// A restart reads the whole WAL: at 1,000,000 entries about a quarter of Wal.open went to
// computing a crc per record, on one core of a machine that has two. So Wal.open decodes a
// large WAL's segments without computing crcs, while a worker checks them in the same order,
// and takes a segment only when the worker found it whole and ending where the decoder did,
// with the same running crc; anything else (a torn tail, damage, a worker that failed) sends
// the whole WAL through the sequential scan, which checks as it decodes and says what is
// wrong. Both sides walk records with frameRecords, so they agree on where a segment ends.

import { Worker } from 'node:worker_threads';
import { crc32 } from 'node:zlib';

/** A record that does not frame or check; Wal.open decides whether it is a torn tail. */
export interface BadRecord {
  offset: number;
  reason: string;
  /** The header is eight zero bytes: a hole or a zero-filled tail, never a bit flip. */
  zeroHeader: boolean;
  /** End of the record's type+payload when its length fits in the file. */
  end?: number;
  /** Chain values the next record could be seeded with (stored and recomputed crc). */
  chain: number[];
}

export interface FrameResult {
  /** Where the records that frame (and check) end. */
  end: number;
  /** The running crc there: the crc the next record is chained to. */
  crc: number;
  bad?: BadRecord;
}

/** Sees one record: its type byte, header offset, and payload bounds [start, end). */
export type FrameVisitor = (type: number, off: number, start: number, end: number) => void;

/**
 * Walks the records of one segment: lengths, the crc seed record first, padding, and with
 * `checkCrc` each record's crc, chained to the previous one's (the seed's chain value for the
 * first). Stops at the first record that fails. Without `checkCrc` the stored crcs are taken
 * as they are, so the running crc is what a check would compute if the segment is whole.
 *
 * It runs in the checker's worker as source text (Function.prototype.toString), so it uses
 * nothing from outside itself: its constants mirror wal.ts's HEADER_BYTES and records.ts's
 * RECORD_CRC_SEED, and test/server/storage/wal-check.test.ts opens WALs both ways to keep them equal.
 */
export function frameRecords(
  buf: Uint8Array,
  crc32: (data: Uint8Array, value: number) => number,
  checkCrc: boolean,
  visit: FrameVisitor | undefined,
): FrameResult {
  const HEADER_BYTES = 8;
  const RECORD_CRC_SEED = 1;
  const u32 = (o: number) => (buf[o]! | (buf[o + 1]! << 8) | (buf[o + 2]! << 16) | (buf[o + 3]! << 24)) >>> 0;
  const hex32 = (n: number) => `0x${n.toString(16).padStart(8, '0')}`;
  const fail = (
    off: number,
    crc: number,
    bad: Pick<BadRecord, 'reason'> & Partial<BadRecord>,
  ): FrameResult => ({
    end: off,
    crc,
    bad: { offset: off, zeroHeader: false, chain: [], ...bad },
  });
  let off = 0;
  let crc = 0;
  while (off < buf.length) {
    if (buf.length - off < HEADER_BYTES) return fail(off, crc, { reason: 'partial record header' });
    const len = u32(off);
    const stored = u32(off + 4);
    if (len === 0) {
      return fail(off, crc, { reason: 'zero record length', zeroHeader: stored === 0, chain: [stored] });
    }
    const end = off + HEADER_BYTES + len;
    if (end > buf.length) {
      return fail(off, crc, {
        reason: `record length ${len} runs past the end of the file`,
        chain: [stored],
      });
    }
    const type = buf[off + HEADER_BYTES]!;
    let seed = crc;
    if (off === 0) {
      if (type !== RECORD_CRC_SEED || len < 6) {
        return fail(off, crc, {
          reason: 'segment does not start with a crc seed record',
          end,
          chain: [stored],
        });
      }
      // The seed's chain value sits after its version byte; the crc check vouches for it.
      seed = u32(off + HEADER_BYTES + 2);
    }
    let computed = stored;
    if (checkCrc) {
      computed = crc32(new Uint8Array(buf.buffer, buf.byteOffset + off + HEADER_BYTES, len), seed);
      if (computed !== stored) {
        return fail(off, crc, {
          reason: `crc mismatch (stored ${hex32(stored)}, computed ${hex32(computed)})`,
          end,
          chain: [stored, computed],
        });
      }
    }
    const next = (end + 7) & ~7;
    if (next > buf.length)
      return fail(off, crc, { reason: 'record padding cut short', end, chain: [stored] });
    visit?.(type, off, off + HEADER_BYTES + 1, end);
    crc = computed;
    off = next;
  }
  return { end: off, crc };
}

/** What the worker found in one segment. */
export interface CheckVerdict {
  end: number;
  crc: number;
  whole: boolean;
}

// esbuild-based loaders (tsx, vitest's) keep function names by wrapping inner functions in
// a helper, __name, which the worker's copy of frameRecords then calls: give it one.
const CHECKER_SOURCE = `'use strict';
const { parentPort } = require('node:worker_threads');
const { crc32 } = require('node:zlib');
const __name = (fn) => fn;
const frameRecords = ${frameRecords.toString()};
parentPort.on('message', ({ seq, buffer, byteOffset, byteLength }) => {
  const r = frameRecords(new Uint8Array(buffer, byteOffset, byteLength), crc32, true, undefined);
  parentPort.postMessage({ seq, end: r.end, crc: r.crc, whole: r.bad === undefined });
});
`;

/**
 * Checks segments on a worker thread, in the order they are given. The segments' buffers
 * must be backed by a SharedArrayBuffer (see sharedBuffer): the worker reads the bytes the
 * main thread decodes, without a copy. A worker that fails answers every segment "not
 * whole", so Wal.open falls back to checking them itself.
 */
export class CrcChecker {
  private readonly worker = new Worker(CHECKER_SOURCE, { eval: true });
  private readonly waiting = new Map<number, (v: CheckVerdict | undefined) => void>();
  private readonly answered = new Map<number, CheckVerdict>();
  private failed = false;

  /** `onFailure` hears why the worker stopped, if it does before close(). */
  constructor(private readonly onFailure: (err: Error) => void) {
    this.worker.on('message', (v: CheckVerdict & { seq: number }) => {
      const resolve = this.waiting.get(v.seq);
      const verdict = { end: v.end, crc: v.crc, whole: v.whole };
      if (resolve) {
        this.waiting.delete(v.seq);
        resolve(verdict);
      } else this.answered.set(v.seq, verdict);
    });
    this.worker.on('error', (err) => this.fail(err));
    this.worker.on('exit', (code) => this.fail(new Error(`the worker exited with code ${code}`)));
  }

  /** Queues segment `seq` for checking. */
  submit(seq: number, buf: Uint8Array): void {
    if (this.failed) return;
    this.worker.postMessage({
      seq,
      buffer: buf.buffer,
      byteOffset: buf.byteOffset,
      byteLength: buf.byteLength,
    });
  }

  /** The verdict on segment `seq`, or undefined if the worker could not give one. */
  verdict(seq: number): Promise<CheckVerdict | undefined> {
    const done = this.answered.get(seq);
    if (done !== undefined) {
      this.answered.delete(seq);
      return Promise.resolve(done);
    }
    if (this.failed) return Promise.resolve(undefined);
    return new Promise((resolve) => this.waiting.set(seq, resolve));
  }

  async close(): Promise<void> {
    this.failed = true;
    await this.worker.terminate();
  }

  private fail(err: Error): void {
    if (this.failed) return;
    this.failed = true;
    this.onFailure(err);
    for (const resolve of this.waiting.values()) resolve(undefined);
    this.waiting.clear();
  }
}

/** A zeroed buffer of `size` bytes that a CrcChecker's worker can read. */
export function sharedBuffer(size: number): Buffer {
  return Buffer.from(new SharedArrayBuffer(size));
}

/** frameRecords with Node's crc32, for the main thread. */
export function frameSegment(
  buf: Uint8Array,
  checkCrc: boolean,
  visit: FrameVisitor | undefined,
): FrameResult {
  return frameRecords(buf, crc32, checkCrc, visit);
}
