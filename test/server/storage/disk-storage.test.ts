import { cpSync, existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ErrSnapOutOfDate } from '../../../src/raft/errors.js';
import { RawNode } from '../../../src/raft/rawnode.js';
import {
  type ConfState,
  emptyConfState,
  type Snapshot,
  type SnapshotMetadata,
} from '../../../src/raft/types.js';
import { DiskStorage, StorageRecoveryError } from '../../../src/server/storage/disk-storage.js';
import { SNAPSHOT_DATA_ON_DISK } from '../../../src/server/storage/log-storage.js';
import { SnapCorruptError, snapName } from '../../../src/server/storage/snapshotter.js';
import { collectingLogger, ents, plain, tempDirs } from './helpers.js';

const dirs = tempDirs();
const open: DiskStorage[] = [];
afterEach(async () => {
  for (const ds of open.splice(0)) await ds.close().catch(() => undefined);
  dirs.cleanup();
});

async function openDs(dir: string, segmentBytes?: number) {
  const logger = collectingLogger();
  const ds = await DiskStorage.open(dir, { logger, segmentBytes });
  open.push(ds);
  return { ds, logger };
}

async function restart(ds: DiskStorage, segmentBytes?: number) {
  await ds.close();
  return openDs(ds.dir, segmentBytes);
}

const cs: ConfState = { ...emptyConfState(), voters: [1, 2, 3] };
const hs = (term: number, vote: number, commit: number) => ({ term, vote, commit });

/** What a crash now would leave: a copy of the data dir as it is (taken before the loop turns). */
function crashCopy(ds: DiskStorage): string {
  const copy = path.join(dirs.make(), 'copy');
  cpSync(ds.dir, copy, { recursive: true });
  return copy;
}

/** The HardState a restart from `dir` recovers. */
const recoveredHardState = async (dir: string) => (await openDs(dir)).ds.recovered.hardState;

const nextTurn = () => new Promise((r) => setImmediate(r));

/** All of a snapshot's data, read from its file `piece` bytes at a time. */
async function streamed(ds: DiskStorage, metadata: SnapshotMetadata, piece = 2): Promise<Uint8Array> {
  const reader = await ds.openSnapshotData(metadata);
  try {
    const pieces: Uint8Array[] = [];
    for (let got = 0; got < reader.size; ) {
      // A piece is valid until the next is read.
      const p = Buffer.from(await reader.next(piece));
      pieces.push(p);
      got += p.length;
    }
    return new Uint8Array(Buffer.concat(pieces));
  } finally {
    await reader.close();
  }
}
const bytes = (s: string) => new TextEncoder().encode(s);

function leaderSnap(index: number, term: number): Snapshot {
  return { data: bytes(`kv@${index}`), metadata: { index, term, confState: cs } };
}

describe('DiskStorage', () => {
  it('starts empty and recovers hardstate and entries after a restart', async () => {
    const dir = path.join(dirs.make(), 'node1'); // created by open()
    let { ds } = await openDs(dir);
    expect(ds.recovered).toEqual({
      hardState: { term: 0, vote: 0, commit: 0 },
      lastIndex: 0,
      repairedTornTail: false,
    });
    await ds.save({ hardState: { term: 1, vote: 1, commit: 0 }, entries: ents(1, 5, 1), mustSync: true });
    await ds.save({ hardState: { term: 1, vote: 1, commit: 5 }, entries: [], mustSync: false });
    expect(ds.storage.lastIndex()).toBe(5);

    ({ ds } = await restart(ds));
    expect(ds.recovered).toEqual({
      hardState: { term: 1, vote: 1, commit: 5 },
      lastIndex: 5,
      repairedTornTail: false,
    });
    expect(ds.storage.initialState().hardState).toEqual({ term: 1, vote: 1, commit: 5 });
    expect(plain(ds.storage.entries(1, 6, Infinity))).toEqual(plain(ents(1, 5, 1)));
  });

  it('writes a HardState that only moves the commit index with the next write, or alone 5 ms later', async () => {
    const { ds } = await openDs(dirs.make());
    await ds.save({ hardState: hs(1, 1, 0), entries: ents(1, 3, 1), mustSync: true });
    // (A resolved save is awaited without the loop turning.)
    await ds.save({ hardState: hs(1, 1, 2), entries: [], mustSync: false });
    // Not on disk yet: a crash now would recover the commit index from before it.
    const before = crashCopy(ds);
    // With the next write, which has no HardState of its own.
    await ds.save({ entries: ents(4, 4, 1), mustSync: true });
    const withNext = crashCopy(ds);
    // Alone, once no write came for 5 ms.
    await ds.save({ hardState: hs(1, 1, 4), entries: [], mustSync: false });
    await nextTurn();
    const afterATurn = crashCopy(ds);
    await new Promise((r) => setTimeout(r, 5));
    await nextTurn();
    const alone = crashCopy(ds);
    expect(await recoveredHardState(before)).toEqual(hs(1, 1, 0));
    expect(await recoveredHardState(withNext)).toEqual(hs(1, 1, 2));
    expect(await recoveredHardState(afterATurn)).toEqual(hs(1, 1, 2));
    expect(await recoveredHardState(alone)).toEqual(hs(1, 1, 4));
    // And by close().
    await ds.save({ hardState: hs(1, 1, 4), entries: ents(5, 5, 1), mustSync: true });
    await ds.save({ hardState: hs(1, 1, 5), entries: [], mustSync: false });
    const { ds: again } = await restart(ds);
    expect(again.recovered.hardState).toEqual(hs(1, 1, 5));
  });

  it('never writes a deferred commit index after a newer HardState', async () => {
    const { ds } = await openDs(dirs.make());
    await ds.save({ hardState: hs(1, 1, 0), entries: ents(1, 3, 1), mustSync: true });
    await ds.save({ hardState: hs(1, 1, 3), entries: [], mustSync: false });
    // A new term (and no vote yet) before it is written: the older HardState is dropped.
    await ds.save({ hardState: hs(2, 0, 3), entries: [], mustSync: true });
    await new Promise((r) => setTimeout(r, 10));
    await nextTurn();
    expect(await recoveredHardState(crashCopy(ds))).toEqual(hs(2, 0, 3));
  });

  it('a snapshot is never on disk past the commit index a restart finds', async () => {
    const { ds } = await openDs(dirs.make());
    await ds.save({ hardState: hs(1, 1, 0), entries: ents(1, 5, 1), mustSync: true });
    await ds.save({ hardState: hs(1, 1, 5), entries: [], mustSync: false });
    await ds.createSnapshot(5, cs, bytes('kv@5'), 0);
    const { ds: crashed } = await openDs(crashCopy(ds));
    expect(crashed.recovered.snapshot?.index).toBe(5);
    expect(crashed.recovered.hardState).toEqual(hs(1, 1, 5));
  });

  it('keeps the new leader’s entries after a conflicting append, across a restart', async () => {
    let { ds } = await openDs(dirs.make());
    await ds.save({ hardState: { term: 1, vote: 1, commit: 2 }, entries: ents(1, 6, 1), mustSync: true });
    await ds.save({ hardState: { term: 2, vote: 0, commit: 3 }, entries: ents(4, 5, 2), mustSync: true });
    const expected = plain([...ents(1, 3, 1), ...ents(4, 5, 2)]);
    expect(plain(ds.storage.entries(1, 6, Infinity))).toEqual(expected);
    ({ ds } = await restart(ds));
    expect(plain(ds.storage.entries(1, 6, Infinity))).toEqual(expected);
    expect(ds.storage.lastIndex()).toBe(5);
  });

  it('rewrites, extends and compacts a replayed log, the same in memory as after the next restart', async () => {
    let { ds } = await openDs(dirs.make());
    await ds.save({ hardState: { term: 1, vote: 1, commit: 4 }, entries: ents(1, 8, 1), mustSync: true });
    ({ ds } = await restart(ds));
    // Entries 1..8 were replayed; a new leader rewrites from 6 on, then more arrive.
    await ds.save({ hardState: { term: 2, vote: 0, commit: 5 }, entries: ents(6, 7, 2), mustSync: true });
    await ds.save({ hardState: { term: 2, vote: 0, commit: 9 }, entries: ents(8, 10, 2), mustSync: true });
    const expected = plain([...ents(1, 5, 1), ...ents(6, 10, 2)]);
    expect(plain(ds.storage.entries(1, 11, Infinity))).toEqual(expected);
    expect(ds.storage.term(5)).toBe(1);
    // A snapshot at 7 keeping 3 entries behind it compacts into the replayed part.
    await ds.createSnapshot(7, cs, bytes('kv@7'), 3);
    expect(ds.storage.firstIndex()).toBe(5);
    expect(plain(ds.storage.entries(5, 11, Infinity))).toEqual(expected.slice(4));
    expect(ds.storage.term(4)).toBe(1);
    ({ ds } = await restart(ds));
    expect(ds.storage.snapshotMetadata).toMatchObject({ index: 7, term: 2 });
    expect(plain(ds.storage.entries(ds.storage.firstIndex(), 11, Infinity))).toEqual(
      expected.slice(ds.storage.firstIndex() - 1),
    );
    expect(ds.storage.lastIndex()).toBe(10);
  });

  it('persists a snapshot from the leader before its marker and drops the old log', async () => {
    let { ds } = await openDs(dirs.make());
    await ds.save({ hardState: { term: 1, vote: 1, commit: 3 }, entries: ents(1, 8, 1), mustSync: true });
    const snap = leaderSnap(100, 3);
    await ds.save({
      hardState: { term: 3, vote: 0, commit: 100 },
      entries: [],
      snapshot: snap,
      mustSync: false,
    });
    await ds.save({
      hardState: { term: 3, vote: 0, commit: 101 },
      entries: ents(101, 102, 3),
      mustSync: true,
    });
    expect(existsSync(path.join(ds.dir, 'snap', snapName(3, 100)))).toBe(true);

    ({ ds } = await restart(ds));
    expect(ds.recovered.snapshot).toEqual(snap.metadata);
    // The data is handed over once, to restore the state machine from.
    expect(ds.takeRecoveredSnapshot()).toEqual(snap);
    expect(ds.takeRecoveredSnapshot()).toBeUndefined();
    expect(ds.storage.firstIndex()).toBe(101);
    expect(ds.storage.initialState().confState).toEqual(cs);
    expect(plain(ds.storage.entries(101, 103, Infinity))).toEqual(plain(ents(101, 102, 3)));
    expect(ds.recovered.lastIndex).toBe(102);
    await expect(ds.save({ entries: [], snapshot: leaderSnap(50, 2), mustSync: true })).rejects.toThrow(
      /older/,
    );
  });

  it('createSnapshot compacts memory, purges WAL segments and old snapshot files, and survives a restart', async () => {
    let { ds } = await openDs(dirs.make(), 512);
    for (let i = 1; i <= 300; i++) {
      await ds.save({ hardState: { term: 1, vote: 1, commit: i }, entries: ents(i, i, 1), mustSync: true });
    }
    const walDir = path.join(ds.dir, 'wal');
    const segsBefore = readdirSync(walDir).sort();
    expect(segsBefore.length).toBeGreaterThan(10);

    await ds.createSnapshot(100, cs, bytes('kv@100'), 10);
    expect(ds.storage.firstIndex()).toBe(91);
    // With no older snapshot to fall back on, nothing may be purged yet.
    expect(readdirSync(walDir).sort()).toEqual(segsBefore);

    await ds.createSnapshot(200, cs, bytes('kv@200'), 10);
    await ds.createSnapshot(250, cs, bytes('kv@250'), 10);
    expect(ds.storage.firstIndex()).toBe(241);
    const snaps = readdirSync(path.join(ds.dir, 'snap')).sort();
    expect(snaps).toEqual([snapName(1, 200), snapName(1, 250)]);
    const segsAfter = readdirSync(walDir).sort();
    expect(segsAfter.length).toBeLessThan(segsBefore.length);
    expect(segsAfter[0]).not.toBe(segsBefore[0]);
    await expect(ds.createSnapshot(250, cs, bytes('again'), 0)).rejects.toThrow(/older/);

    ({ ds } = await restart(ds, 512));
    expect(ds.recovered.snapshot).toEqual({ index: 250, term: 1, confState: cs });
    expect(ds.takeRecoveredSnapshot()?.data).toEqual(bytes('kv@250'));
    expect(ds.recovered.hardState).toEqual({ term: 1, vote: 1, commit: 300 });
    expect(ds.storage.firstIndex()).toBe(251);
    expect(plain(ds.storage.entries(251, 301, Infinity))).toEqual(plain(ents(251, 300, 1)));
  });

  it('persists Readys while a snapshot file is written; a snapshot from the leader that lands first wins', async () => {
    let { ds } = await openDs(dirs.make());
    await ds.save({ hardState: { term: 1, vote: 1, commit: 10 }, entries: ents(1, 10, 1), mustSync: true });
    // Our snapshot at 8 is being written when the leader's (at 20) and more entries arrive.
    const ours = ds.createSnapshot(8, cs, bytes('kv@8'), 0);
    const saved = ds.save({
      hardState: { term: 2, vote: 1, commit: 20 },
      entries: [],
      mustSync: true,
      snapshot: leaderSnap(20, 2),
    });
    const more = ds.save({
      hardState: { term: 2, vote: 1, commit: 21 },
      entries: ents(21, 21, 2),
      mustSync: true,
    });
    await saved;
    await more;
    await expect(ours).rejects.toThrow(/older/);
    expect(ds.storage.snapshotMetadata.index).toBe(20);
    expect(ds.storage.lastIndex()).toBe(21);

    // The dropped snapshot's file has no WAL marker: the restart keeps the leader's.
    ({ ds } = await restart(ds));
    expect(ds.recovered.snapshot?.index).toBe(20);
    expect(plain(ds.storage.entries(21, 22, Infinity))).toEqual(plain(ents(21, 21, 2)));
  });

  it('lets go of a snapshot’s data once it is saved: the storage says it is on disk, and its file streams it in pieces', async () => {
    let { ds } = await openDs(dirs.make());
    await ds.save({ hardState: { term: 1, vote: 1, commit: 30 }, entries: ents(1, 30, 1), mustSync: true });
    await ds.createSnapshot(10, cs, bytes('kv@10'), 0);
    expect(ds.storage.snapshotBytes).toBe(5);
    const at10 = ds.storage.snapshot();
    expect(at10.metadata).toEqual({ index: 10, term: 1, confState: cs });
    expect(at10.data).toBe(SNAPSHOT_DATA_ON_DISK);
    const reader = await ds.openSnapshotData(at10.metadata);
    expect(reader.size).toBe(5);
    const pieces: string[] = [];
    for (let i = 0; i < 3; i++) pieces.push(Buffer.from(await reader.next(2)).toString());
    expect(pieces).toEqual(['kv', '@1', '0']);
    await reader.close();

    // Newer snapshots replace it, and its file is purged: a transfer already under way reads
    // on from the open file; a new one cannot open it.
    const underWay = await ds.openSnapshotData(at10.metadata);
    const first = Buffer.from(await underWay.next(3)).toString();
    await ds.createSnapshot(20, cs, bytes('kv@20'), 0);
    await ds.createSnapshot(25, cs, bytes('kv@25!'), 0);
    expect(existsSync(path.join(ds.dir, 'snap', snapName(1, 10)))).toBe(false);
    expect(first + Buffer.from(await underWay.next(3)).toString()).toBe('kv@10');
    await underWay.close();
    expect(ds.storage.snapshot().metadata.index).toBe(25);
    expect(Buffer.from(await streamed(ds, ds.storage.snapshot().metadata)).toString()).toBe('kv@25!');
    await expect(ds.openSnapshotData(at10.metadata)).rejects.toMatchObject({ code: 'ENOENT' });

    // The leader's snapshot is let go of too, once saved.
    await ds.save({
      hardState: { term: 2, vote: 0, commit: 40 },
      entries: [],
      snapshot: leaderSnap(40, 2),
      mustSync: true,
    });
    expect(ds.storage.snapshot().data).toBe(SNAPSHOT_DATA_ON_DISK);
    expect(await streamed(ds, ds.storage.snapshot().metadata)).toEqual(bytes('kv@40'));

    // After a restart the recovered snapshot is let go of as well, and streams the same way.
    ({ ds } = await restart(ds));
    expect(ds.takeRecoveredSnapshot()?.data).toEqual(bytes('kv@40'));
    expect(ds.storage.snapshot().data).toBe(SNAPSHOT_DATA_ON_DISK);
    expect(await streamed(ds, ds.storage.snapshot().metadata, 1)).toEqual(bytes('kv@40'));
  });

  it('streams a damaged snapshot file up to its last piece, which it refuses, says so, and takes it written again; a file of another snapshot is refused at once', async () => {
    const { ds } = await openDs(dirs.make());
    await ds.save({ hardState: { term: 1, vote: 1, commit: 30 }, entries: ents(1, 30, 1), mustSync: true });
    await ds.createSnapshot(20, cs, bytes('kv@20:abcdef'), 0);
    const { metadata } = ds.storage.snapshot();
    const told: SnapshotMetadata[] = [];
    ds.onSnapshotDamaged((md) => told.push(md));
    const file = path.join(ds.dir, 'snap', snapName(1, 20));
    const buf = readFileSync(file);
    buf[buf.length - 3]! ^= 0x10;
    writeFileSync(file, buf);
    const reader = await ds.openSnapshotData(metadata);
    expect(reader.size).toBe(12);
    await reader.next(5);
    await reader.next(5);
    // The damage is in the pieces already read: the crc, checked at the end, catches it.
    await expect(reader.next(5)).rejects.toThrow(SnapCorruptError);
    await expect(reader.next(5).catch((e: Error) => e.message)).resolves.toMatch(/crc mismatch/);
    await reader.close();
    // Known damaged now: opened again, it is refused at once, not read through again; and
    // the listener heard of it once.
    await expect(ds.openSnapshotData(metadata)).rejects.toThrow(/crc mismatch/);
    expect(told).toEqual([metadata]);

    // Written again from the state at its index, it streams the new bytes; a snapshot no
    // longer the current one is not written again.
    expect((await ds.rewriteSnapshot(metadata, bytes('kv@20:ABCDEF'))).metadata).toEqual(metadata);
    expect(Buffer.from(await streamed(ds, metadata)).toString()).toBe('kv@20:ABCDEF');
    await ds.save({ hardState: { term: 1, vote: 1, commit: 40 }, entries: ents(31, 40, 1), mustSync: true });
    await ds.createSnapshot(35, cs, bytes('kv@35'), 0);
    await expect(ds.rewriteSnapshot(metadata, bytes('kv@20'))).rejects.toBe(ErrSnapOutOfDate);
    expect(told).toEqual([metadata]);

    // A file named for index 20 that holds another snapshot's metadata.
    const { ds: other } = await openDs(dirs.make());
    await other.save({
      hardState: { term: 1, vote: 1, commit: 30 },
      entries: ents(1, 30, 1),
      mustSync: true,
    });
    await other.createSnapshot(20, cs, bytes('kv@20'), 0);
    const otherFile = path.join(other.dir, 'snap', snapName(1, 20));
    const wrong = readFileSync(otherFile);
    wrong[5]! ^= 0x01;
    writeFileSync(otherFile, wrong);
    await expect(other.openSnapshotData(metadata)).rejects.toThrow(/does not match its name/);
  });

  it('falls back to the older snapshot when the newest is corrupt, with a warning', async () => {
    let { ds } = await openDs(dirs.make(), 512);
    for (let i = 1; i <= 60; i++)
      await ds.save({ hardState: { term: 1, vote: 1, commit: i }, entries: ents(i, i, 1), mustSync: true });
    await ds.createSnapshot(20, cs, bytes('kv@20'), 0);
    await ds.createSnapshot(50, cs, bytes('kv@50'), 0);
    await ds.close();
    const newest = path.join(ds.dir, 'snap', snapName(1, 50));
    const buf = readFileSync(newest);
    buf[buf.length - 1]! ^= 0x10;
    writeFileSync(newest, buf);

    const reopened = await openDs(ds.dir, 512);
    const logger = reopened.logger;
    ds = reopened.ds;
    expect(ds.recovered.snapshot?.index).toBe(20);
    expect(ds.storage.firstIndex()).toBe(21);
    expect(ds.storage.lastIndex()).toBe(60);
    const warning = logger.lines.find((l) => l.startsWith('WARN snap:'));
    expect(warning).toContain(newest);
    expect(warning).toContain('fell back to');
    expect(existsSync(`${newest}.broken`)).toBe(true);
  });

  it('refuses to start when the only snapshot is corrupt', async () => {
    const { ds } = await openDs(dirs.make());
    await ds.save({
      hardState: { term: 2, vote: 0, commit: 40 },
      entries: [],
      snapshot: leaderSnap(40, 2),
      mustSync: true,
    });
    await ds.close();
    const file = path.join(ds.dir, 'snap', snapName(2, 40));
    writeFileSync(file, readFileSync(file).subarray(0, 10));
    const err = await DiskStorage.open(ds.dir, { logger: collectingLogger() }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SnapCorruptError);
    expect((err as SnapCorruptError).message).toContain(file);
  });

  it('reports a repaired torn tail', async () => {
    let { ds } = await openDs(dirs.make());
    await ds.save({ hardState: { term: 1, vote: 1, commit: 0 }, entries: ents(1, 4, 1), mustSync: true });
    await ds.close();
    const walDir = path.join(ds.dir, 'wal');
    const seg = path.join(walDir, readdirSync(walDir)[0]!);
    writeFileSync(seg, Buffer.concat([readFileSync(seg), Buffer.from('torn-garbage-bytes')]));
    const reopened = await openDs(ds.dir);
    const logger = reopened.logger;
    ds = reopened.ds;
    expect(ds.recovered.repairedTornTail).toBe(true);
    expect(ds.recovered.lastIndex).toBe(4);
    expect(logger.lines.some((l) => l.includes(`wal: repaired torn tail of ${seg}`))).toBe(true);
  });

  it('deletes a snapshot file whose WAL marker never made it, and refuses snapshots without a WAL', async () => {
    let { ds } = await openDs(dirs.make());
    await ds.save({ hardState: { term: 1, vote: 1, commit: 3 }, entries: ents(1, 3, 1), mustSync: true });
    await ds.close();
    // As if a save crashed between writing the snapshot file and its WAL marker.
    const orphan = path.join(ds.dir, 'snap', snapName(4, 90));
    const { Snapshotter } = await import('../../../src/server/storage/snapshotter.js');
    await new Snapshotter(path.join(ds.dir, 'snap'), collectingLogger()).save(leaderSnap(90, 4));
    ({ ds } = await openDs(ds.dir));
    expect(existsSync(orphan)).toBe(false);
    expect(ds.recovered.snapshot).toBeUndefined();
    expect(ds.recovered.lastIndex).toBe(3);
    await ds.save({ entries: [], snapshot: leaderSnap(90, 4), mustSync: true });
    await ds.close();
    open.length = 0;

    rmSync(path.join(ds.dir, 'wal'), { recursive: true });
    const err = await DiskStorage.open(ds.dir, { logger: collectingLogger() }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StorageRecoveryError);
    expect((err as Error).message).toMatch(/holds snapshots but .* has no WAL segments/);
  });

  it('refuses to start when the WAL no longer reaches the snapshot it needs', async () => {
    const { ds } = await openDs(dirs.make(), 256);
    for (let i = 1; i <= 80; i++)
      await ds.save({ hardState: { term: 1, vote: 1, commit: i }, entries: ents(i, i, 1), mustSync: true });
    await ds.createSnapshot(30, cs, bytes('kv@30'), 0);
    await ds.createSnapshot(60, cs, bytes('kv@60'), 0);
    await ds.close();
    // Both snapshots gone: the purged WAL cannot rebuild the log from index 1.
    rmSync(path.join(ds.dir, 'snap', snapName(1, 30)));
    rmSync(path.join(ds.dir, 'snap', snapName(1, 60)));
    const err = await DiskStorage.open(ds.dir, { logger: collectingLogger(), segmentBytes: 256 }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(StorageRecoveryError);
    expect((err as Error).message).toMatch(
      /the WAL holds no entries 1\.\.\d+ and no usable snapshot covers them/,
    );
  });

  it('drives a single-node RawNode through restarts', async () => {
    const dir = dirs.make();
    const run = async (ds: DiskStorage, node: RawNode, applied: string[]) => {
      while (node.hasReady()) {
        const rd = node.ready();
        await ds.save(rd);
        for (const e of rd.committedEntries)
          if (e.type === 'EntryNormal' && e.data.length > 0) applied.push(new TextDecoder().decode(e.data));
        node.advance(rd);
      }
    };
    let { ds } = await openDs(dir);
    let node = new RawNode({ id: 1, electionTick: 10, heartbeatTick: 1, storage: ds.storage });
    node.bootstrap([{ id: 1 }]);
    const applied: string[] = [];
    await run(ds, node, applied);
    node.campaign();
    await run(ds, node, applied);
    for (const v of ['a', 'b', 'c']) {
      node.propose(bytes(v));
      await run(ds, node, applied);
    }
    expect(applied).toEqual(['a', 'b', 'c']);
    const before = node.basicStatus().hardState;

    ({ ds } = await restart(ds));
    expect(ds.recovered.hardState).toEqual(before);
    node = new RawNode({ id: 1, electionTick: 10, heartbeatTick: 1, storage: ds.storage });
    const replayed: string[] = [];
    await run(ds, node, replayed);
    expect(replayed).toEqual(['a', 'b', 'c']);
    expect(statSync(path.join(dir, 'wal')).isDirectory()).toBe(true);
  });
});
