import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { crc32 } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import type { Snapshot } from '../../../src/raft/types.js';
import { encodeSnapshot } from '../../../src/server/storage/records.js';
import { SnapCorruptError, Snapshotter, snapName } from '../../../src/server/storage/snapshotter.js';
import { collectingLogger, tempDirs } from './helpers.js';

const dirs = tempDirs();
afterEach(() => dirs.cleanup());

function snap(index: number, term: number, data = `state@${index}`): Snapshot {
  return {
    data: new TextEncoder().encode(data),
    metadata: {
      index,
      term,
      confState: { voters: [1, 2, 3], learners: [4], votersOutgoing: [], learnersNext: [], autoLeave: false },
    },
  };
}

/** n pseudo-random bytes (xorshift32, fixed seed), so a failure reproduces. */
function noise(n: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = 0x9e3779b9;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x;
  }
  return out;
}

/** Larger than save()'s 1 MiB crc slice, and not a multiple of it. */
function bigSnap(): Snapshot {
  return {
    // Over two of the 4 MiB pieces save() writes and flushes one at a time.
    data: noise(9.5 * 2 ** 20),
    metadata: {
      index: 2 ** 40 + 7,
      term: 300,
      confState: {
        voters: [1, 2, 2 ** 33],
        learners: [],
        votersOutgoing: [1, 2],
        learnersNext: [9],
        autoLeave: true,
      },
    },
  };
}

describe('Snapshotter', () => {
  it('saves atomically under <term>-<index>.snap and loads it back', async () => {
    const dir = dirs.make();
    const s = new Snapshotter(dir, collectingLogger());
    const file = await s.save(snap(0x1234, 5));
    expect(path.basename(file)).toBe(`${'5'.padStart(16, '0')}-${'1234'.padStart(16, '0')}.snap`);
    expect(readdirSync(dir)).toEqual([path.basename(file)]);
    const [f] = await s.list();
    expect(await s.load(f!)).toEqual(snap(0x1234, 5));
  });

  it('writes [crc32 of the payload][payload = encodeSnapshot], as files always were', async () => {
    const dir = dirs.make();
    const s = new Snapshotter(dir, collectingLogger());
    for (const sn of [snap(0x1234, 5), snap(1, 1, ''), bigSnap()]) {
      // The old save(): the whole payload in one buffer, its crc in one call.
      const payload = encodeSnapshot(sn);
      const header = Buffer.alloc(4);
      header.writeUInt32LE(crc32(payload), 0);
      const file = await s.save(sn);
      // equals(), not toEqual: a mismatch of 9.5 MiB would print as a huge diff.
      expect(readFileSync(file).equals(Buffer.concat([header, payload]))).toBe(true);
    }
  });

  it('round-trips a snapshot larger than one crc slice and catches a damaged byte in its data', async () => {
    const dir = dirs.make();
    const s = new Snapshotter(dir, collectingLogger());
    const big = bigSnap();
    const file = await s.save(big);
    const [f] = await s.list();
    const back = await s.load(f!);
    expect(back.metadata).toEqual(big.metadata);
    expect(Buffer.from(back.data).equals(big.data)).toBe(true);

    // A byte in the third MiB of the data, checksummed in a later slice than the prefix.
    const damaged = readFileSync(file);
    damaged[damaged.length - 2 ** 20 - 12345]! ^= 0x10;
    writeFileSync(file, damaged);
    await expect(s.load(f!)).rejects.toThrow(SnapCorruptError);
    await expect(s.load(f!)).rejects.toThrow(/crc mismatch/);
  });

  it('lists newest first and purges all but the newest N', async () => {
    const dir = dirs.make();
    const s = new Snapshotter(dir, collectingLogger());
    for (const i of [10, 30, 20]) await s.save(snap(i, 2));
    expect((await s.list()).map((f) => f.index)).toEqual([30, 20, 10]);
    const removed = await s.purge(2);
    expect(removed.map((f) => path.basename(f))).toEqual([snapName(2, 10)]);
    expect((await s.list()).map((f) => f.index)).toEqual([30, 20]);
  });

  it('names the file of a corrupt snapshot (flipped bit, truncation, wrong name)', async () => {
    const dir = dirs.make();
    const s = new Snapshotter(dir, collectingLogger());
    const file = await s.save(snap(7, 1));
    const good = readFileSync(file);
    const [f] = await s.list();

    const flipped = Buffer.from(good);
    flipped[flipped.length - 2]! ^= 0x04;
    writeFileSync(file, flipped);
    await expect(s.load(f!)).rejects.toThrow(SnapCorruptError);
    await expect(s.load(f!)).rejects.toThrow(file);

    writeFileSync(file, good.subarray(0, 3));
    await expect(s.load(f!)).rejects.toThrow(/shorter than its header/);

    writeFileSync(path.join(dir, snapName(1, 8)), good);
    await expect(s.load({ file: path.join(dir, snapName(1, 8)), index: 8, term: 1 })).rejects.toThrow(
      /does not match its name/,
    );
  });

  it('removes leftovers of interrupted saves and quarantines broken files', async () => {
    const dir = dirs.make();
    const log = collectingLogger();
    const s = new Snapshotter(dir, log);
    writeFileSync(path.join(dir, `${snapName(1, 9)}.tmp`), 'half');
    const file = await s.save(snap(3, 1));
    await s.removeTemp();
    expect(readdirSync(dir)).toEqual([path.basename(file)]);
    const [f] = await s.list();
    const moved = await s.quarantine(f!);
    expect(existsSync(moved)).toBe(true);
    expect(await s.list()).toEqual([]);
  });
});
