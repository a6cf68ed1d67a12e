// Wal.open with its crcs checked on a worker thread (wal-check.ts) must come to exactly what
// the sequential scan comes to, for a whole WAL and for every kind of damage: the same
// replay and repairs, or the same WalCorruptError.
import { copyFileSync, readdirSync, readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { PREALLOC_BYTES, Wal, WalCorruptError } from '../../../src/server/storage/wal.js';
import { collectingLogger, ents, logEntries, plain, tempDirs } from './helpers.js';

const dirs = tempDirs();
afterEach(() => dirs.cleanup());

/** A WAL of several small segments: entries, hard states, a rewrite of part of the log. */
async function buildWal(): Promise<string> {
  const dir = dirs.make();
  const { wal } = await Wal.open(dir, { logger: collectingLogger(), segmentBytes: 200 });
  for (let i = 1; i <= 24; i++)
    await wal.append({ term: 1, vote: 1, commit: i - 1 }, ents(i, i, 1, 'v'), true);
  // A new leader's entries replace 20… (truncation on replay).
  await wal.append({ term: 2, vote: 2, commit: 19 }, ents(20, 26, 2, 'w'), true);
  // A last segment with a record in it, and so with its zero tail (wal.ts, Preallocation).
  await wal.append({ term: 2, vote: 2, commit: 26 }, [], true);
  await wal.close();
  return dir;
}

function segmentFiles(dir: string): string[] {
  return readdirSync(dir)
    .filter((n) => n.endsWith('.wal'))
    .sort()
    .map((n) => path.join(dir, n));
}

function copyDir(from: string): string {
  const to = dirs.make();
  for (const f of readdirSync(from)) copyFileSync(path.join(from, f), path.join(to, f));
  return to;
}

/** What an open comes to, in terms that do not depend on the dir it ran in. */
async function outcome(dir: string, onWorker: boolean) {
  const logger = collectingLogger();
  const opened = await Wal.open(dir, {
    logger,
    parallelCheckMinBytes: onWorker ? 0 : Number.POSITIVE_INFINITY,
  }).then(
    (r) => r,
    (err: unknown) => err,
  );
  const files = segmentFiles(dir).map((f) => [path.basename(f), statSync(f).size]);
  const rescanned = logger.lines.some((l) => l.includes('did not check out on the crc worker'));
  const workerFailed = logger.lines.some((l) => l.includes('the crc worker failed'));
  if (opened instanceof WalCorruptError) {
    const e = { file: path.basename(opened.file), offset: opened.offset, reason: opened.reason };
    return { result: { error: e, files }, rescanned, workerFailed };
  }
  if (!('wal' in (opened as object))) throw opened;
  const { wal, replay } = opened as Awaited<ReturnType<typeof Wal.open>>;
  await wal.close();
  const r = { ...replay, entries: plain(logEntries(replay.log)) };
  return { result: { replay: r, files }, rescanned, workerFailed };
}

describe('Wal.open with the crc worker', () => {
  it('reads a whole WAL on the worker, without scanning it again, to the same replay', async () => {
    const dir = await buildWal();
    const files = segmentFiles(dir);
    expect(files.length).toBeGreaterThan(3);
    // The last segment ends in its zero tail (wal.ts, Preallocation): where the worker's
    // check stops too, which is no reason to scan again.
    const last = readFileSync(files[files.length - 1]!);
    expect(last.length).toBeGreaterThan(PREALLOC_BYTES / 2);
    expect(last.subarray(last.length - PREALLOC_BYTES / 2).every((b) => b === 0)).toBe(true);
    const onWorker = await outcome(copyDir(dir), true);
    const sequential = await outcome(copyDir(dir), false);
    expect(onWorker.rescanned).toBe(false);
    expect(onWorker.workerFailed).toBe(false);
    expect(onWorker.result).toEqual(sequential.result);
    expect(onWorker.result.replay?.entries.map((e) => `${e.index}@${e.term}`).slice(-8)).toEqual([
      '19@1',
      '20@2',
      '21@2',
      '22@2',
      '23@2',
      '24@2',
      '25@2',
      '26@2',
    ]);
  });

  it('comes to what the sequential scan comes to after any flipped bit, cut or foreign segment', async () => {
    const base = await buildWal();
    const files = segmentFiles(base);
    const sizes = files.map((f) => statSync(f).size);
    const damage = fc.oneof(
      fc.record({
        kind: fc.constant('flip' as const),
        seg: fc.nat(files.length - 1),
        at: fc.nat(10_000),
        bit: fc.nat(7),
      }),
      fc.record({ kind: fc.constant('cut' as const), at: fc.nat(10_000) }),
      fc.record({ kind: fc.constant('swap' as const), seg: fc.integer({ min: 1, max: files.length - 1 }) }),
    );
    await fc.assert(
      fc.asyncProperty(damage, async (d) => {
        const dir = copyDir(base);
        const mine = segmentFiles(dir);
        if (d.kind === 'flip') {
          const f = mine[d.seg]!;
          const buf = readFileSync(f);
          buf[d.at % sizes[d.seg]!]! ^= 1 << d.bit;
          writeFileSync(f, buf);
        } else if (d.kind === 'cut') {
          truncateSync(mine[mine.length - 1]!, d.at % sizes[sizes.length - 1]!);
        } else {
          // A segment from another WAL with the same layout: its seed does not continue ours.
          writeFileSync(mine[d.seg]!, readFileSync(files[d.seg - 1]!));
        }
        const again = copyDir(dir);
        const onWorker = await outcome(dir, true);
        const sequential = await outcome(again, false);
        expect(onWorker.workerFailed).toBe(false);
        expect(onWorker.result).toEqual(sequential.result);
      }),
      { numRuns: 60 },
    );
  }, 60_000);
});
