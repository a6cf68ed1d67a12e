// Durable storage for one node: a WAL plus snapshot files under a data dir, mirrored in
// the storage the core reads (log-storage.ts). Writes go to disk first and only then to the
// in-memory storage, so the core never sees state that a crash could take back.

import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { ErrSnapOutOfDate } from '../../raft/errors.js';
import type { Logger } from '../../raft/logger.js';
import {
  type ConfState,
  type Entry,
  type HardState,
  isEmptyHardState,
  isEmptySnapshot,
  type Snapshot,
  type SnapshotMetadata,
} from '../../raft/types.js';
import { LogStorage } from './log-storage.js';
import { SnapCorruptError, type SnapFile, type SnapshotDataReader, Snapshotter } from './snapshotter.js';
import { syncDir, Wal, type WalReplay } from './wal.js';

/** Snapshot files kept: the newest, plus one to fall back to if it turns out corrupt. */
const SNAPSHOTS_KEPT = 2;
/**
 * How long a HardState that only moved the commit index waits for a write to go with (see
 * save): on a leader every write's commit makes one, and the next write comes sooner.
 */
const COMMIT_INDEX_WAIT_MS = 5;

/** The data dir is inconsistent in a way no single file pinpoints (e.g. entries missing). */
export class StorageRecoveryError extends Error {
  override name = 'StorageRecoveryError';
  constructor(
    readonly dir: string,
    reason: string,
  ) {
    super(
      `storage: ${reason} (data dir ${dir}); refusing to start; restore this node from a peer ` +
        '(remove its data dir and re-join) or from backup',
    );
  }
}

export interface DiskStorageOptions {
  logger: Logger;
  /** WAL segment size (default 64 MiB); small values are for tests. */
  segmentBytes?: number;
}

export interface RecoveredState {
  hardState: HardState;
  /** The snapshot the log was rebuilt on, if any; its data: takeRecoveredSnapshot(). */
  snapshot?: SnapshotMetadata;
  lastIndex: number;
  repairedTornTail: boolean;
}

/** What one Ready asks to persist. */
export interface SaveRequest {
  hardState?: HardState;
  entries: Entry[];
  snapshot?: Snapshot;
  mustSync: boolean;
}

export class DiskStorage {
  /** Hand this to RawNode's Config.storage; DiskStorage keeps it in step with the disk. */
  readonly storage: LogStorage;
  readonly recovered: RecoveredState;
  /** Serializes save/createSnapshot/close: the WAL takes one batch at a time. */
  private queue: Promise<unknown> = Promise.resolve();
  /** Calls of serial() not yet settled. */
  private inFlight = 0;
  /** The recovered snapshot, until takeRecoveredSnapshot() hands it over. */
  private recoveredSnapshot: Snapshot | undefined;
  /** A HardState that only moved the commit index, not yet handed to the WAL (see save). */
  private pendingHardState: HardState | undefined;
  private pendingFlush: NodeJS.Timeout | undefined;

  private constructor(
    readonly dir: string,
    private readonly logger: Logger,
    private readonly wal: Wal,
    private readonly snapshotter: Snapshotter,
    storage: LogStorage,
    recovered: RecoveredState,
    recoveredSnapshot: Snapshot | undefined,
  ) {
    this.storage = storage;
    this.recovered = recovered;
    this.recoveredSnapshot = recoveredSnapshot;
    storage.releaseSnapshotData();
  }

  /**
   * The recovered snapshot with its data, for the state machine to be restored from: handed
   * over once, so the node does not hold the whole state's bytes for its lifetime (the
   * transport streams them from the file if a follower needs them).
   */
  takeRecoveredSnapshot(): Snapshot | undefined {
    const snap = this.recoveredSnapshot;
    this.recoveredSnapshot = undefined;
    return snap;
  }

  /**
   * Opens or initialises the data dir: replays the WAL (repairing a torn tail), loads the
   * newest snapshot the WAL vouches for, and rebuilds the in-memory storage.
   */
  static async open(dir: string, opts: DiskStorageOptions): Promise<DiskStorage> {
    const { logger } = opts;
    const walDir = path.join(dir, 'wal');
    const snapDir = path.join(dir, 'snap');
    const madeRoot = await mkdir(dir, { recursive: true });
    const madeWal = await mkdir(walDir, { recursive: true });
    const madeSnap = await mkdir(snapDir, { recursive: true });
    // New directory entries are durable only once their parent is synced.
    if (madeRoot !== undefined) await syncDir(path.dirname(path.resolve(dir)));
    if (madeRoot !== undefined || madeWal !== undefined || madeSnap !== undefined) await syncDir(dir);

    const snapshotter = new Snapshotter(snapDir, logger);
    await snapshotter.removeTemp();
    const snapFiles = await snapshotter.list();
    if (snapFiles.length > 0 && !(await Wal.exists(walDir))) {
      throw new StorageRecoveryError(
        dir,
        `${snapDir} holds snapshots but ${walDir} has no WAL segments, so the HardState and log are lost`,
      );
    }

    const { wal, replay } = await Wal.open(walDir, { logger, segmentBytes: opts.segmentBytes });
    try {
      const { snapshot, chosen, corrupt } = await chooseSnapshot(snapshotter, snapFiles, replay, logger);
      const storage = rebuild(dir, replay, snapshot, logger);
      // Only now that the fallback is known to work: set the corrupt files aside so they
      // stop counting among the kept snapshots (a failed start leaves the dir untouched).
      for (const { f, err } of corrupt) {
        const moved = await snapshotter.quarantine(f);
        logger.warn(`${err.message}; moved it to ${moved} and fell back to ${chosen?.file}`);
      }
      const recovered: RecoveredState = {
        hardState: storage.hardState,
        lastIndex: storage.lastIndex(),
        repairedTornTail: replay.repairedTornTail,
      };
      if (snapshot) recovered.snapshot = snapshot.metadata;
      logger.info(
        `storage: recovered ${dir}: term=${storage.hardState.term} vote=${storage.hardState.vote} ` +
          `commit=${storage.hardState.commit} snapshot=${snapshot?.metadata.index ?? 0} ` +
          `entries=[${storage.firstIndex()}, ${storage.lastIndex()}]`,
      );
      return new DiskStorage(dir, logger, wal, snapshotter, storage, recovered, snapshot);
    } catch (err) {
      await wal.close();
      throw err;
    }
  }

  /**
   * Persists one Ready: the snapshot file first, then the WAL records (snapshot marker,
   * entries, HardState) with one write, synced when mustSync or a snapshot is present;
   * only then updates the in-memory storage. Send the Ready's messages after this resolves.
   *
   * A Ready that only moves the commit index (nothing to sync: etcd writes it unsynced) is
   * not written at once: its HardState goes with the next write, or by itself after
   * COMMIT_INDEX_WAIT_MS — after the answers to the clients whose writes it commits, which
   * waited behind this write before, and, on a leader with one client writing, usually with
   * that client's next write (a system call fewer per put: 24–29 of 40 paired rounds faster,
   * by ~40 µs). A lost commit index is learned again from the leader; it is taken before
   * anything queued after it, so a newer HardState (a new term or vote) is never followed
   * by an older one.
   */
  save(rd: SaveRequest): Promise<void> {
    const commitOnly = rd.entries.length === 0 && !rd.mustSync && rd.snapshot === undefined;
    if (commitOnly && rd.hardState && !isEmptyHardState(rd.hardState)) {
      this.pendingHardState = rd.hardState;
      this.pendingFlush ??= setTimeout(() => {
        this.pendingFlush = undefined;
        // The WAL refuses every write after a failed one: the next save fails, and the node stops.
        this.flushPendingHardState().catch((err: Error) => this.logger.error(`storage: ${err.message}`));
      }, COMMIT_INDEX_WAIT_MS);
      return Promise.resolve();
    }
    const pending = this.takePendingHardState();
    return this.serial(async () => {
      const snap = rd.snapshot && !isEmptySnapshot(rd.snapshot) ? rd.snapshot : undefined;
      const hs = rd.hardState && !isEmptyHardState(rd.hardState) ? rd.hardState : pending;
      if (snap) {
        // Refuse before touching the disk, so a bad call leaves no orphan file behind.
        if (snap.metadata.index <= this.storage.snapshotMetadata.index) throw ErrSnapOutOfDate;
        await this.snapshotter.save(snap);
      }
      const marker = snap && { index: snap.metadata.index, term: snap.metadata.term, replacesLog: true };
      await this.wal.append(hs, rd.entries, rd.mustSync || snap !== undefined, marker);
      if (snap) {
        this.storage.applySnapshot(snap);
        // The caller restores its state machine from rd.snapshot, not from the storage.
        this.storage.releaseSnapshotData();
      }
      this.storage.append(rd.entries);
      if (hs) this.storage.setHardState(hs);
      if (snap) await this.purge(snap.metadata.index);
    });
  }

  /**
   * Records a snapshot of the applied state machine at `index`: writes the snapshot file
   * and its WAL marker (synced), then compacts the in-memory storage to index - keepEntries
   * (entries kept so slow followers can catch up without a snapshot), and deletes old
   * snapshot files and WAL segments nothing can need any more.
   *
   * The file (the whole state machine: tens of MB) is written and synced beside the WAL,
   * not in its queue, so Readys keep being persisted meanwhile; only the marker, the
   * compaction and the purge wait their turn. A crash before the marker leaves a file the
   * next start deletes (see chooseSnapshot).
   */
  async createSnapshot(
    index: number,
    confState: ConfState,
    data: Uint8Array,
    keepEntries: number,
  ): Promise<Snapshot> {
    const ms = this.storage;
    const outOfDate = () => index <= ms.snapshotMetadata.index;
    if (outOfDate()) throw ErrSnapOutOfDate;
    if (index > ms.lastIndex()) {
      throw new RangeError(`storage: cannot snapshot at ${index}, beyond the last index ${ms.lastIndex()}`);
    }
    const term = ms.term(index);
    await this.snapshotter.save({ data, metadata: { index, term, confState } });
    // The commit index the snapshot's index is within goes to disk with its marker at the
    // latest: a restart must not find a snapshot past the commit index.
    const pending = this.takePendingHardState();
    return this.serial(async () => {
      // A snapshot from the leader may have landed while the file was written.
      if (outOfDate()) throw ErrSnapOutOfDate;
      await this.wal.append(pending, [], true, { index, term, replacesLog: false });
      if (pending) ms.setHardState(pending);
      const snap = ms.createSnapshot(index, confState, data);
      ms.releaseSnapshotData();
      const compactTo = index - Math.max(0, keepEntries);
      if (compactTo >= ms.firstIndex()) ms.compact(compactTo);
      await this.purge(compactTo);
      return snap;
    });
  }

  /**
   * Opens the file of the current snapshot, whose data the storage has released
   * (SNAPSHOT_DATA_ON_DISK), for the transport to stream it to a follower. A file found
   * damaged meanwhile is refused from then on, and `onSnapshotDamaged` hears of it.
   */
  openSnapshotData(metadata: SnapshotMetadata): Promise<SnapshotDataReader> {
    return this.snapshotter.openData(metadata);
  }

  /** Who hears of a snapshot file found damaged when its data was read to be sent. */
  onSnapshotDamaged(listener: (metadata: SnapshotMetadata) => void): void {
    this.snapshotter.onDamaged = (metadata) => listener(metadata);
  }

  /**
   * Writes the current snapshot's file again, from `data` (the state machine at its index),
   * replacing a damaged one; the WAL's marker for it stands. Throws ErrSnapOutOfDate if
   * another snapshot has become the current one meanwhile.
   */
  async rewriteSnapshot(metadata: SnapshotMetadata, data: Uint8Array): Promise<Snapshot> {
    const current = this.storage.snapshotMetadata;
    if (current.index !== metadata.index || current.term !== metadata.term) throw ErrSnapOutOfDate;
    await this.snapshotter.save({ metadata, data });
    return this.storage.snapshot();
  }

  async close(): Promise<void> {
    await this.flushPendingHardState().catch(() => undefined);
    await this.queue;
    await this.wal.close();
  }

  /** The deferred commit-only HardState, if any, now no longer pending. */
  private takePendingHardState(): HardState | undefined {
    const hs = this.pendingHardState;
    this.pendingHardState = undefined;
    if (this.pendingFlush !== undefined) {
      clearTimeout(this.pendingFlush);
      this.pendingFlush = undefined;
    }
    return hs;
  }

  private flushPendingHardState(): Promise<void> {
    const hs = this.takePendingHardState();
    if (hs === undefined) return Promise.resolve();
    return this.serial(async () => {
      await this.wal.append(hs, [], false);
      this.storage.setHardState(hs);
    });
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    // With nothing in flight the call starts at once rather than on the next microtask: a
    // save's write and its fdatasync are under way when save() returns, and the driver
    // applies committed entries while the disk works.
    const run = this.inFlight === 0 ? fn() : this.queue.then(fn);
    this.inFlight++;
    const done = () => {
      this.inFlight--;
    };
    run.then(done, done);
    // A failed call must not wedge later ones; its caller sees the error.
    this.queue = run.catch(() => undefined);
    return run;
  }

  /**
   * Keeps the newest snapshot files and the WAL segments still needed by either the log
   * from `compactTo` on or the older kept snapshot: if the newest snapshot file turns out
   * corrupt on restart, the older one plus the WAL after it must still rebuild the log.
   */
  private async purge(compactTo: number): Promise<void> {
    const removed = await this.snapshotter.purge(SNAPSHOTS_KEPT);
    if (removed.length > 0) this.logger.info(`snap: purged ${removed.join(', ')}`);
    const kept = await this.snapshotter.list();
    const fallback = kept[SNAPSHOTS_KEPT - 1]?.index ?? 0;
    await this.wal.purgeBelow(Math.min(compactTo, fallback));
  }
}

/**
 * Picks the newest snapshot file that the WAL has a marker for and that reads back
 * intact, and lists the corrupt newer ones it skipped. Files without a marker were
 * written by a save that did not complete: newer ones are deleted. If every candidate
 * is corrupt the first corruption is fatal.
 */
async function chooseSnapshot(
  snapshotter: Snapshotter,
  files: SnapFile[],
  replay: WalReplay,
  logger: Logger,
): Promise<{ snapshot?: Snapshot; chosen?: SnapFile; corrupt: { f: SnapFile; err: SnapCorruptError }[] }> {
  const marked = new Set(replay.markers.map((m) => `${m.term}:${m.index}`));
  const newestMarker = replay.markers.reduce((max, m) => Math.max(max, m.index), 0);
  const corrupt: { f: SnapFile; err: SnapCorruptError }[] = [];
  for (const f of files) {
    if (!marked.has(`${f.term}:${f.index}`)) {
      if (f.index > newestMarker) {
        await snapshotter.remove(f);
        logger.warn(`snap: removed ${f.file}: the WAL has no marker for it (its save did not complete)`);
      }
      continue;
    }
    try {
      return { snapshot: await snapshotter.load(f), chosen: f, corrupt };
    } catch (err) {
      if (!(err instanceof SnapCorruptError)) throw err;
      corrupt.push({ f, err });
    }
  }
  if (corrupt.length > 0) throw corrupt[0]!.err;
  return { corrupt };
}

/** Builds the storage from the snapshot and the replayed log, checking they meet. */
function rebuild(dir: string, replay: WalReplay, snap: Snapshot | undefined, logger: Logger): LogStorage {
  const snapIndex = snap?.metadata.index ?? 0;
  const start = replay.log.start;
  if (start !== undefined && start > snapIndex + 1) {
    throw new StorageRecoveryError(
      dir,
      `the WAL holds no entries ${snapIndex + 1}..${start - 1} and no usable snapshot covers them ` +
        `(newest usable snapshot: ${snap ? `index ${snapIndex}` : 'none'})`,
    );
  }
  // The entries' data stay in the segment buffers the WAL read (packed-log.ts). A buffer is
  // released once every entry in it is compacted away; until then it holds at most one
  // segment (64 MiB) beyond the live entries' data, plus the record headers and padding
  // (about 5% for 256-byte values).
  const ms = new LogStorage(logger, snap, replay.log);
  const hs = replay.hardState;
  if (hs.commit > ms.lastIndex()) {
    throw new StorageRecoveryError(
      dir,
      `the HardState commits index ${hs.commit} but the log ends at ${ms.lastIndex()}: acknowledged entries are missing`,
    );
  }
  ms.setHardState(hs);
  return ms;
}
