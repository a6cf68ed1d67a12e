import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { writeVarint } from '../../../src/protocol/varint.js';
import type { Entry, EntryType, Snapshot } from '../../../src/raft/types.js';
import { PackedLog } from '../../../src/server/storage/packed-log.js';
import {
  decodeSnapshot,
  encodeSnapshot,
  entryPayloadSize,
  hardStatePayloadSize,
  markerPayloadSize,
  Reader,
  RecordDecodeError,
  readEntryPayload,
  readHardStatePayload,
  readMarkerPayload,
  readSeedPayload,
  seedPayloadSize,
  writeEntryPayload,
  writeHardStatePayload,
  writeMarkerPayload,
  writeSeedPayload,
} from '../../../src/server/storage/records.js';

/** One entry decoded the way a replay decodes it: into a packed log, then read back. */
function decodeEntry(buf: Uint8Array, start: number, end: number): Entry {
  const log = new PackedLog();
  readEntryPayload(buf, start, end, log);
  return log.at(log.lastIndex);
}

const num = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER });
const smallNum = fc.oneof(fc.integer({ min: 0, max: 300 }), num);
const entryArb: fc.Arbitrary<Entry> = fc.record({
  term: smallNum,
  index: smallNum,
  type: fc.constantFrom<EntryType>('EntryNormal', 'EntryConfChange', 'EntryConfChangeV2'),
  data: fc.uint8Array({ maxLength: 64 }),
});
const ids = fc.array(fc.integer({ min: 1, max: 2 ** 40 }), { maxLength: 7 });
const snapArb: fc.Arbitrary<Snapshot> = fc.record({
  data: fc.uint8Array({ maxLength: 200 }),
  metadata: fc.record({
    index: num,
    term: num,
    confState: fc.record({
      voters: ids,
      learners: ids,
      votersOutgoing: ids,
      learnersNext: ids,
      autoLeave: fc.boolean(),
    }),
  }),
});

describe('varints', () => {
  it('round-trip at the edges', () => {
    for (const v of [
      0,
      1,
      127,
      128,
      16383,
      16384,
      2 ** 31 - 1,
      2 ** 31,
      2 ** 32,
      2 ** 49,
      Number.MAX_SAFE_INTEGER,
    ]) {
      const buf = new Uint8Array(10);
      const end = writeVarint(buf, 0, v);
      const r = new Reader(buf, 0, end);
      expect(r.varint('v')).toBe(v);
      expect(r.pos).toBe(end);
    }
  });

  it('reject truncated, overlong and unsafe values', () => {
    expect(() => new Reader(Uint8Array.of(0x80), 0, 1).varint('x')).toThrow(RecordDecodeError);
    expect(() => new Reader(new Uint8Array(9).fill(0x80), 0, 9).varint('x')).toThrow(/too long/);
    // 2^53 needs 8 varint bytes: the top one is 0x10.
    const big = Uint8Array.of(0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x10);
    expect(() => new Reader(big, 0, big.length).varint('x')).toThrow(/out of range/);
  });
});

describe('payloads', () => {
  it('entries round-trip with their exact size', () => {
    fc.assert(
      fc.property(entryArb, (e) => {
        const size = entryPayloadSize(e);
        const buf = new Uint8Array(size + 3);
        expect(writeEntryPayload(buf, 3, e)).toBe(size + 3);
        const back = decodeEntry(buf, 3, size + 3);
        expect({ ...back, data: [...back.data] }).toEqual({ ...e, data: [...e.data] });
      }),
    );
  });

  it("an entry's data is a plain Uint8Array view of the record, also in a Buffer", () => {
    const e: Entry = { term: 3, index: 700, type: 'EntryNormal', data: Uint8Array.of(1, 2, 3) };
    const buf = Buffer.alloc(entryPayloadSize(e) + 5);
    writeEntryPayload(buf, 5, e);
    const back = decodeEntry(buf, 5, buf.length);
    expect(Object.getPrototypeOf(back.data)).toBe(Uint8Array.prototype);
    expect(back.data.buffer).toBe(buf.buffer);
    expect(back.data.byteOffset).toBe(buf.byteOffset + buf.length - 3);
    expect([...back.data]).toEqual([1, 2, 3]);
    // The decoder is reused across calls: a failed decode must not disturb the next one.
    expect(() => decodeEntry(Uint8Array.of(0, 0x80), 0, 2)).toThrow(/truncated varint/);
    expect(decodeEntry(buf, 5, buf.length)).toMatchObject({ term: 3, index: 700 });
  });

  it('hardstates, markers and seeds round-trip', () => {
    fc.assert(
      fc.property(
        num,
        num,
        num,
        fc.boolean(),
        fc.integer({ min: 0, max: 2 ** 32 - 1 }),
        (a, b, c, flag, crc) => {
          const hs = { term: a, vote: b, commit: c };
          const hb = new Uint8Array(hardStatePayloadSize(hs));
          expect(writeHardStatePayload(hb, 0, hs)).toBe(hb.length);
          expect(readHardStatePayload(hb, 0, hb.length)).toEqual(hs);

          const m = { index: a, term: b, replacesLog: flag };
          const mb = new Uint8Array(markerPayloadSize(m));
          expect(writeMarkerPayload(mb, 0, m)).toBe(mb.length);
          expect(readMarkerPayload(mb, 0, mb.length)).toEqual(m);

          const s = { prevCrc: crc, hardState: hs };
          const sb = new Uint8Array(seedPayloadSize(s));
          expect(writeSeedPayload(sb, 0, s)).toBe(sb.length);
          expect(readSeedPayload(sb, 0, sb.length)).toEqual(s);
        },
      ),
    );
  });

  it('rejects trailing bytes, bad flags, unknown entry types and foreign versions', () => {
    expect(() => readHardStatePayload(Uint8Array.of(1, 2, 3, 4), 0, 4)).toThrow(/trailing/);
    expect(() => readMarkerPayload(Uint8Array.of(1, 1, 7), 0, 3)).toThrow(/flags/);
    expect(() => decodeEntry(Uint8Array.of(9, 1, 1), 0, 3)).toThrow(/entry type/);
    expect(() => readSeedPayload(Uint8Array.of(2, 0, 0, 0, 0, 0, 0, 0), 0, 8)).toThrow(/version 2/);
  });

  it('snapshots round-trip, and garbage fails with RecordDecodeError only', () => {
    fc.assert(
      fc.property(snapArb, (s) => {
        const back = decodeSnapshot(encodeSnapshot(s));
        expect({ ...back, data: [...back.data] }).toEqual({ ...s, data: [...s.data] });
      }),
    );
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 40 }), (bytes) => {
        try {
          decodeSnapshot(bytes);
        } catch (err) {
          expect(err).toBeInstanceOf(RecordDecodeError);
        }
      }),
    );
  });
});
