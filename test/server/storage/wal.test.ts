import { readdirSync, readFileSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { crc32 } from 'node:zlib';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import type { HardState } from '../../../src/raft/types.js';
import { PREALLOC_BYTES, segmentName, Wal, WalCorruptError } from '../../../src/server/storage/wal.js';
import { collectingLogger, ents, logEntries, plain, tempDirs, walkRecords } from './helpers.js';

const dirs = tempDirs();
afterEach(() => dirs.cleanup());

const hs = (term: number, vote: number, commit: number): HardState => ({ term, vote, commit });

async function openWal(dir: string, segmentBytes?: number, preallocBytes?: number) {
  const logger = collectingLogger();
  const { wal, replay } = await Wal.open(dir, { logger, segmentBytes, preallocBytes });
  return { wal, replay, logger };
}

/** Where a segment's records end (its zero tail, if any, begins). */
function recordsEnd(file: string): number {
  return walkRecords(file).at(-1)!.next;
}

const isZero = (b: Uint8Array) => b.every((x) => x === 0);

function segments(dir: string): string[] {
  return readdirSync(dir)
    .filter((n) => n.endsWith('.wal'))
    .sort()
    .map((n) => path.join(dir, n));
}

function flipBit(file: string, offset: number, bit = 0): void {
  const buf = readFileSync(file);
  buf[offset]! ^= 1 << bit;
  writeFileSync(file, buf);
}

async function expectCorrupt(dir: string, file: string, offset: number): Promise<WalCorruptError> {
  const err = await Wal.open(dir, { logger: collectingLogger() }).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(WalCorruptError);
  const c = err as WalCorruptError;
  expect(c.file).toBe(file);
  expect(c.offset).toBe(offset);
  expect(c.message).toContain(`${file} at offset ${offset}`);
  expect(c.message).toContain(
    'restore this node from a peer (remove its data dir and re-join) or from backup',
  );
  return c;
}

describe('WAL format', () => {
  it('aligns records to 8 bytes, zero-pads them and chains crcs across segments', async () => {
    const dir = dirs.make();
    const { wal } = await openWal(dir, 300);
    for (let i = 1; i <= 40; i++) await wal.append(hs(1, 1, i - 1), ents(i, i, 1, 'x'.repeat(i % 9)), true);
    await wal.close();

    const files = segments(dir);
    expect(files.length).toBeGreaterThan(3);
    let prev: number | undefined;
    let lastIndex = 0;
    files.forEach((file, n) => {
      const name = path.basename(file);
      // seq counts from 1; firstIndex is the index the segment's first entry continues at.
      expect(name).toBe(segmentName(n + 1, lastIndex + 1));
      const buf = readFileSync(file);
      const recs = walkRecords(file);
      expect(recs[0]!.type).toBe(1);
      for (const [k, r] of recs.entries()) {
        expect(r.offset % 8).toBe(0);
        expect(buf.subarray(r.offset + 8 + r.length, r.next).every((b) => b === 0)).toBe(true);
        const body = buf.subarray(r.offset + 8, r.offset + 8 + r.length);
        let seed = prev ?? 0;
        if (k === 0) {
          seed = buf.readUInt32LE(r.offset + 10);
          if (prev !== undefined) expect(seed).toBe(prev);
        }
        expect(crc32(body, seed)).toBe(r.crc);
        prev = r.crc;
        if (r.type === 2) lastIndex++;
      }
      if (n < files.length - 1) {
        // A full segment ends with its records: its zero tail was cut off when the next began.
        expect(recs[recs.length - 1]!.next).toBe(buf.length);
        expect(buf.length).toBeGreaterThanOrEqual(300);
      } else {
        // The last one runs a zero tail after them (appends here are slow: see wal.ts),
        // laid a megabyte long and partly written over since.
        const end = recs[recs.length - 1]!.next;
        expect(buf.length).toBeGreaterThan(end);
        expect(buf.length).toBeLessThanOrEqual(end + PREALLOC_BYTES);
        expect(isZero(buf.subarray(end))).toBe(true);
      }
    });
  });
});

describe('WAL replay', () => {
  it('recovers hardstate and entries after a restart, and keeps appending', async () => {
    const dir = dirs.make();
    let { wal, replay } = await openWal(dir);
    expect(replay).toMatchObject({ hardState: hs(0, 0, 0), repairedTornTail: false });
    expect(replay.log).toMatchObject({ length: 0, start: undefined });
    await wal.append(hs(2, 1, 0), ents(1, 3, 2), true);
    await wal.append(hs(2, 1, 3), [], false);
    await wal.close();

    ({ wal, replay } = await openWal(dir));
    expect(replay.hardState).toEqual(hs(2, 1, 3));
    expect(plain(logEntries(replay.log))).toEqual(plain(ents(1, 3, 2)));
    await wal.append(undefined, ents(4, 4, 2), true);
    await wal.close();
    ({ wal, replay } = await openWal(dir));
    expect(plain(logEntries(replay.log))).toEqual(plain(ents(1, 4, 2)));
    await wal.close();
  });

  it('replays with truncation semantics, also across segments', async () => {
    const dir = dirs.make();
    let { wal, replay } = await openWal(dir, 200);
    await wal.append(hs(1, 1, 0), ents(1, 20, 1), true);
    for (let i = 21; i <= 30; i++) await wal.append(undefined, ents(i, i, 1), true);
    await wal.append(hs(2, 2, 4), ents(5, 6, 2), true); // the new leader's log wins from 5 on
    await wal.append(undefined, ents(7, 7, 2), true);
    await wal.close();
    expect(segments(dir).length).toBeGreaterThan(1);

    ({ wal, replay } = await openWal(dir, 200));
    expect(plain(logEntries(replay.log))).toEqual(plain([...ents(1, 4, 1), ...ents(5, 7, 2)]));
    expect(replay.hardState).toEqual(hs(2, 2, 4));
    await wal.close();
  });

  it('a log-replacing snapshot marker resets the log; a local one does not', async () => {
    const dir = dirs.make();
    let { wal, replay } = await openWal(dir);
    await wal.append(hs(1, 1, 10), ents(1, 12, 1), true);
    await wal.append(undefined, [], true, { index: 8, term: 1, replacesLog: false });
    await wal.append(hs(3, 0, 50), ents(51, 52, 3), true, { index: 50, term: 3, replacesLog: true });
    await wal.close();

    ({ wal, replay } = await openWal(dir));
    expect(replay.markers).toEqual([
      { index: 8, term: 1, replacesLog: false },
      { index: 50, term: 3, replacesLog: true },
    ]);
    expect(replay.log.start).toBe(51);
    expect(plain(logEntries(replay.log))).toEqual(plain(ents(51, 52, 3)));
    await wal.close();
  });

  it('refuses overlapping calls instead of interleaving writes', async () => {
    const dir = dirs.make();
    const { wal } = await openWal(dir);
    const first = wal.append(undefined, ents(1, 1, 1), true);
    await expect(wal.append(undefined, ents(2, 2, 1), true)).rejects.toThrow(/serialize/);
    await first;
    await wal.close();
  });

  it('opens without the oldest segments (purged) and purges only what is wholly below', async () => {
    const dir = dirs.make();
    let { wal } = await openWal(dir, 128);
    for (let i = 1; i <= 30; i++) await wal.append(hs(1, 1, i), ents(i, i, 1), true);
    const before = wal.segmentFiles();
    const removed = await wal.purgeBelow(10);
    expect(removed).toEqual(before.slice(0, removed.length));
    expect(removed.length).toBeGreaterThan(0);
    await wal.close();

    const reopened = await openWal(dir, 128);
    const replay = reopened.replay;
    wal = reopened.wal;
    // Entries from 10 on must all still be there; the HardState comes from the seeds.
    expect(replay.log.start).toBeLessThanOrEqual(10);
    expect(logEntries(replay.log)[logEntries(replay.log).length - 1]!.index).toBe(30);
    expect(replay.hardState).toEqual(hs(1, 1, 30));
    // The segment being written is never purged.
    await wal.purgeBelow(1000);
    expect(wal.segmentFiles().length).toBe(1);
    await wal.close();
  });
});

describe('WAL preallocation', () => {
  it('runs a zero tail ahead of slow appends, which write over it without growing the file', async () => {
    const dir = dirs.make();
    const { wal } = await openWal(dir);
    await wal.append(hs(1, 1, 0), ents(1, 1, 1), true);
    const [file] = segments(dir);
    const laid = statSync(file!).size;
    expect(laid).toBe(recordsEnd(file!) + PREALLOC_BYTES);
    for (let i = 2; i <= 20; i++) await wal.append(hs(1, 1, i - 1), ents(i, i, 1), true);
    expect(statSync(file!).size).toBe(laid);
    expect(isZero(readFileSync(file!).subarray(recordsEnd(file!)))).toBe(true);
    await wal.close();
    const { wal: again, replay, logger } = await openWal(dir);
    expect(replay.log.lastIndex).toBe(20);
    expect(replay.repairedTornTail).toBe(false);
    expect(logger.lines.filter((l) => l.startsWith('WARN'))).toEqual([]);
    expect(statSync(file!).size).toBe(laid);
    await again.close();
  });

  it('lays none while appends come at a megabyte a second or more', async () => {
    const dir = dirs.make();
    const { wal } = await openWal(dir);
    // 2 MiB within well under a second: the first tail is used up, and no other is laid.
    for (let i = 1; i <= 8; i++) await wal.append(undefined, ents(i, i, 1, 'x'.repeat(256 * 1024)), false);
    const [file] = segments(dir);
    expect(statSync(file!).size).toBe(recordsEnd(file!));
    await wal.close();
  });
});

describe('WAL crash recovery', () => {
  it.each([
    ['appending past the end of the file', 0],
    ['overwriting its zero tail', PREALLOC_BYTES],
  ])('recovers exactly the synced state when writes %s are lost', async (_, prealloc) => {
    const dir = dirs.make();
    const { wal } = await openWal(dir, undefined, prealloc);
    await wal.append(hs(1, 1, 0), ents(1, 3, 1), true);
    await wal.append(hs(1, 1, 3), ents(4, 5, 1), true);
    const [file] = segments(dir);
    const synced = readFileSync(file!);
    const syncedEnd = recordsEnd(file!);
    expect(isZero(synced.subarray(syncedEnd))).toBe(true);
    expect(synced.length > syncedEnd).toBe(prealloc > 0);
    // Unsynced writes, then power loss: the kernel never flushed them, and the file is
    // as the last sync left it (shorter, or with zeros where they went).
    await wal.append(hs(1, 1, 5), [], false);
    await wal.append(undefined, ents(6, 8, 1), false);
    await wal.close();
    writeFileSync(file!, synced);

    const { wal: again, replay, logger } = await openWal(dir, undefined, prealloc);
    expect(replay.repairedTornTail).toBe(false);
    expect(replay.hardState).toEqual(hs(1, 1, 3));
    expect(plain(logEntries(replay.log))).toEqual(plain(ents(1, 5, 1)));
    expect(logger.lines.filter((l) => l.includes('repaired'))).toEqual([]);
    // Nothing was cut: a zero tail is kept, and written over from where the records end.
    expect(statSync(file!).size).toBe(synced.length);
    await again.append(undefined, ents(6, 6, 2), true);
    expect(walkRecords(file!).find((r) => r.offset === syncedEnd)?.type).toBe(2);
    await again.close();
    const { wal: third, replay: r3 } = await openWal(dir, undefined, prealloc);
    expect(r3.log.lastIndex).toBe(6);
    expect(r3.log.term(6)).toBe(2);
    await third.close();
  });

  it('repairs a torn last record at every cut point, with nothing, zeros or garbage after it', async () => {
    const dir = dirs.make();
    const { wal } = await openWal(dir, undefined, 0);
    for (let i = 1; i <= 6; i++) await wal.append(hs(1, 1, i), ents(i, i, 1, 'payload-'.repeat(i)), true);
    await wal.close();
    const [file] = segments(dir);
    const full = readFileSync(file!);
    const recs = walkRecords(file!);
    const from = recs[recs.length - 6]!.offset; // the last three saves

    const check = async (cut: number, tail: Uint8Array) => {
      const torn = Buffer.concat([full.subarray(0, cut), tail]);
      writeFileSync(file!, torn);
      // A record survives if its bytes (not necessarily its padding, when a tail extends
      // the file) are intact: before the cut, or rewritten as they were by a tail that
      // happens to start with them (zeros, say, where the record's numbers had zero bytes).
      const intact = (r: (typeof recs)[number]) =>
        torn
          .subarray(r.offset, r.offset + 8 + r.length)
          .equals(full.subarray(r.offset, r.offset + 8 + r.length));
      const survivors = recs.findIndex((r) => !(r.next <= cut || (tail.length >= 8 && intact(r))));
      const kept = survivors < 0 ? recs : recs.slice(0, survivors);
      const keptEnd = kept[kept.length - 1]!.next;
      const { wal: w, replay, logger } = await openWal(dir, undefined, 0);
      try {
        const nEntries = kept.filter((r) => r.type === 2).length;
        const nHs = kept.filter((r) => r.type === 3).length;
        const expected = [];
        for (let i = 1; i <= nEntries; i++) expected.push(...ents(i, i, 1, 'payload-'.repeat(i)));
        expect(plain(logEntries(replay.log))).toEqual(plain(expected));
        expect(replay.hardState).toEqual(hs(1, 1, nHs));
        // Zeros from the end of the last whole record on are a preallocated tail, kept.
        const zeroTail = isZero(torn.subarray(keptEnd));
        const repaired = !zeroTail;
        expect(replay.repairedTornTail).toBe(repaired);
        if (repaired) {
          expect(logger.lines).toContain(
            `WARN wal: repaired torn tail of ${file} at offset ${keptEnd} (${cut + tail.length - keptEnd} bytes dropped)`,
          );
        } else expect(logger.lines.filter((l) => l.includes('repaired'))).toEqual([]);
        expect(statSync(file!).size).toBe(zeroTail ? torn.length : keptEnd);
        // The repaired WAL takes new writes and reopens cleanly.
        await w.append(undefined, ents(nEntries + 1, nEntries + 1, 2), true);
      } finally {
        await w.close();
      }
      const { wal: w2, replay: r2 } = await openWal(dir, undefined, 0);
      expect(r2.repairedTornTail).toBe(false);
      expect(r2.log.term(r2.log.lastIndex)).toBe(2);
      await w2.close();
    };

    for (let cut = from; cut <= full.length; cut++) {
      await check(cut, new Uint8Array(0));
      await check(cut, new Uint8Array(24));
    }
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: from, max: full.length }),
        fc.uint8Array({ minLength: 8, maxLength: 300 }),
        (cut, garbage) => check(cut, garbage),
      ),
      { numRuns: 80 },
    );
  }, 60_000);

  it('a zero-filled hole inside the last batch is a torn tail even if later records survived', async () => {
    const dir = dirs.make();
    const { wal } = await openWal(dir);
    await wal.append(hs(1, 1, 0), ents(1, 2, 1), true);
    // One batch big enough to span sectors; pretend its middle sector never hit the disk.
    const big = ents(3, 40, 1, 'z'.repeat(40));
    await wal.append(undefined, big, true);
    await wal.close();
    const [file] = segments(dir);
    const buf = readFileSync(file!);
    buf.fill(0, 1024, 1536);
    writeFileSync(file!, buf);
    const recs = walkRecords(file!).filter((r) => r.next <= 1024);
    const { wal: w, replay } = await openWal(dir);
    expect(replay.repairedTornTail).toBe(true);
    expect(logEntries(replay.log).length).toBe(recs.filter((r) => r.type === 2).length);
    await w.close();
  });

  it('a flipped bit in an earlier segment throws WalCorruptError naming the file and offset', async () => {
    const dir = dirs.make();
    const { wal } = await openWal(dir, 256);
    for (let i = 1; i <= 30; i++) await wal.append(hs(1, 1, i), ents(i, i, 1, 'data'), true);
    await wal.close();
    const file = segments(dir)[1]!;
    const rec = walkRecords(file)[2]!;
    flipBit(file, rec.offset + 11, 3);
    const err = await expectCorrupt(dir, file, rec.offset);
    expect(err.reason).toMatch(/crc mismatch/);
  });

  it('a flipped bit in the middle of the last segment (payload, length or crc) is corruption, not a torn tail', async () => {
    for (const [field, at, bit] of [
      ['payload', 12, 1],
      ['length', 0, 6],
      ['high length', 3, 7],
      ['crc', 5, 2],
    ] as const) {
      const dir = dirs.make();
      const { wal } = await openWal(dir);
      for (let i = 1; i <= 10; i++) await wal.append(hs(1, 1, i), ents(i, i, 1, 'data'), true);
      await wal.close();
      const [file] = segments(dir);
      const rec = walkRecords(file!)[7]!;
      flipBit(file!, rec.offset + at, bit);
      const size = statSync(file!).size;
      const err = await expectCorrupt(dir, file!, rec.offset);
      expect(err.message, field).toMatch(/wal: /);
      // Nothing was truncated.
      expect(statSync(file!).size, field).toBe(size);
    }
  });

  it('a damaged final record of the last segment cannot be told from a torn write and is dropped', async () => {
    const dir = dirs.make();
    const { wal } = await openWal(dir);
    for (let i = 1; i <= 3; i++) await wal.append(undefined, ents(i, i, 1, 'data'), true);
    await wal.close();
    const [file] = segments(dir);
    const recs = walkRecords(file!);
    flipBit(file!, recs[recs.length - 1]!.offset + 12);
    const { wal: w, replay } = await openWal(dir);
    expect(replay.repairedTornTail).toBe(true);
    expect(logEntries(replay.log).map((e) => e.index)).toEqual([1, 2]);
    await w.close();
  });

  it('a missing middle segment or a foreign segment breaks the chain', async () => {
    const dir = dirs.make();
    const { wal } = await openWal(dir, 200);
    for (let i = 1; i <= 30; i++) await wal.append(hs(1, 1, i), ents(i, i, 1), true);
    await wal.close();
    const files = segments(dir);
    expect(files.length).toBeGreaterThan(3);

    const other = dirs.make();
    const { wal: w2 } = await openWal(other, 200);
    for (let i = 1; i <= 30; i++) await w2.append(hs(1, 2, i), ents(i, i, 1), true);
    await w2.close();
    const saved = readFileSync(files[1]!);
    writeFileSync(files[1]!, readFileSync(segments(other)[1]!));
    const err = await expectCorrupt(dir, files[1]!, 0);
    expect(err.reason).toMatch(/does not continue the previous segment/);
    writeFileSync(files[1]!, saved);

    unlinkSync(files[2]!);
    const gap = await expectCorrupt(dir, files[3]!, 0);
    expect(gap.reason).toMatch(/a segment is missing/);
  });

  it('removes a segment whose creation did not finish', async () => {
    const dir = dirs.make();
    const { wal } = await openWal(dir);
    await wal.append(undefined, ents(1, 2, 1), true);
    await wal.close();
    writeFileSync(path.join(dir, `${segmentName(2, 3)}.tmp`), 'partial');
    const { wal: w, replay, logger } = await openWal(dir);
    expect(logEntries(replay.log).length).toBe(2);
    expect(readdirSync(dir).some((n) => n.endsWith('.tmp'))).toBe(false);
    expect(logger.lines.some((l) => l.includes('removed unfinished segment'))).toBe(true);
    await w.close();
  });
});
