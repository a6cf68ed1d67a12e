import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Snapshot } from '../../../src/raft/types.js';
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
