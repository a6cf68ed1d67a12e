// Shared fixtures for the storage tests: temp data dirs, a collecting logger and a
// test-side WAL walker (independent of wal.ts, so format checks are not circular).

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import type { Entry } from '../../../src/raft/types.js';
import type { PackedLog } from '../../../src/server/storage/packed-log.js';

export { type CollectingLogger, collectingLogger } from '../../support/logger.js';

/** Temp dirs created by a test file; call cleanup() in afterEach. */
export function tempDirs(): { make(): string; cleanup(): void } {
  const made: string[] = [];
  return {
    make() {
      const d = mkdtempSync(`${os.tmpdir()}/raftctl-`);
      made.push(d);
      return d;
    },
    cleanup() {
      for (const d of made.splice(0)) rmSync(d, { recursive: true, force: true });
    },
  };
}

export function ents(from: number, to: number, term: number, tag = ''): Entry[] {
  const out: Entry[] = [];
  for (let i = from; i <= to; i++) {
    out.push({ term, index: i, type: 'EntryNormal', data: new TextEncoder().encode(`${tag}e${i}t${term}`) });
  }
  return out;
}

/** Compares entries by value (Uint8Array data as arrays). */
export function plain(es: readonly Entry[]): { term: number; index: number; type: string; data: number[] }[] {
  return es.map((e) => ({ term: e.term, index: e.index, type: e.type, data: [...e.data] }));
}

/** Every entry a packed log holds, as Entry objects. */
export function logEntries(log: PackedLog): Entry[] {
  const out: Entry[] = [];
  for (let i = log.lastIndex - log.length + 1; i <= log.lastIndex; i++) out.push(log.at(i));
  return out;
}

export interface RawRecord {
  offset: number;
  length: number;
  crc: number;
  type: number;
  /** Offset just past the record's padding. */
  next: number;
}

/** Walks a well-formed segment file by its length fields, up to its zero tail if it has one. */
export function walkRecords(file: string): RawRecord[] {
  const buf = readFileSync(file);
  const out: RawRecord[] = [];
  let off = 0;
  while (off < buf.length) {
    const length = buf.readUInt32LE(off);
    if (length === 0) break;
    const next = off + ((8 + length + 7) & ~7);
    out.push({ offset: off, length, crc: buf.readUInt32LE(off + 4), type: buf[off + 8]!, next });
    off = next;
  }
  return out;
}
