// One node per data dir. Two processes appending to one WAL interleave records and each
// truncates what it takes for the other's torn tail: acknowledged writes would be lost. etcd
// takes an flock on its WAL files; Node has no flock, so the dir holds a LOCK file naming
// its owner, and a LOCK whose owner is gone (kill -9, a crash, a reboot) is stale and taken
// over. Ownership is the pid together with the process's start time where /proc tells it,
// so a pid reused after a reboot — or pid 1 in a restarted container — is not taken for the
// owner.
//
// The LOCK is created exclusively (O_EXCL), so of two nodes starting at once one wins; and a
// stale LOCK is removed only by the node that holds LOCK.takeover (also created exclusively),
// and only if it is still the LOCK that node judged stale, so of nodes taking it over at once
// one wins too. The races left need a start within microseconds of another's: one reading a
// LOCK another has created but not yet written (it refuses, as for any LOCK it cannot read),
// or two removing a LOCK.takeover left by a node that died holding it. Not a hard link into
// place, which would close those: some file systems a data dir may live on (FAT, some
// network mounts) have no hard links.

import { closeSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';

export const LOCK_FILE = 'LOCK';
/** Held (created exclusively) by the one node removing a stale LOCK. */
const TAKEOVER_SUFFIX = '.takeover';
/** Attempts to take the LOCK; a wait for another node's takeover costs one. */
const MAX_ATTEMPTS = 50;
const TAKEOVER_PAUSE_MS = 2;

/** Another live process holds the data dir; the message names it and says what to do. */
export class DataDirLockedError extends Error {
  override name = 'DataDirLockedError';
}

interface Owner {
  pid: number;
  /** Start time of the process in clock ticks since boot (Linux), if known. */
  start?: number;
  host: string;
  /** When the lock was taken, ISO 8601. */
  since: string;
}

export interface DirLock {
  readonly file: string;
  /** Removes the LOCK if it is still this process's; idempotent. */
  release(): void;
}

/**
 * Takes the data dir for this process, or throws DataDirLockedError. `onStale` hears about
 * a LOCK left by a process that is gone, which is then replaced.
 */
export function lockDataDir(dir: string, onStale: (message: string) => void = () => {}): DirLock {
  const file = join(dir, LOCK_FILE);
  const me: Owner = { pid: process.pid, host: hostname(), since: new Date().toISOString() };
  const start = processStat(process.pid)?.start;
  if (start !== undefined) me.start = start;
  const text = `${JSON.stringify(me)}\n`;
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    if (createExclusive(file, text)) {
      let released = false;
      return {
        file,
        release() {
          if (released) return;
          released = true;
          // Never remove a LOCK someone else has taken over meanwhile.
          if (readText(file) === text) unlinkIfThere(file);
        },
      };
    }
    const held = readText(file);
    if (held === undefined) continue; // Removed between our create and our read: try again.
    const owner = parseOwner(held);
    if (owner === undefined) {
      throw new DataDirLockedError(
        `data dir ${dir} has a lock file that cannot be read (${file}; is another node starting on it?): ` +
          `if no raftctl node runs on this dir, remove ${file} and start again`,
      );
    }
    if (isRunning(owner)) {
      const who = owner.pid === process.pid ? 'this process' : `pid ${owner.pid} on ${owner.host}`;
      throw new DataDirLockedError(
        `data dir ${dir} is in use by another raftctl node (${who}, since ${owner.since}): ` +
          `stop that node first, or give this one another --data-dir; if no such process is running, remove ${file}`,
      );
    }
    if (!removeStale(file, held, text)) {
      // Another node is taking the stale LOCK over this instant: look again shortly.
      pause(TAKEOVER_PAUSE_MS);
      continue;
    }
    onStale(
      `taking over the lock of data dir ${dir} from pid ${owner.pid} (since ${owner.since}), which is no longer running`,
    );
  }
  throw new DataDirLockedError(
    `data dir ${dir}: another process keeps taking its lock (${file}); is a second node starting on it? ` +
      `If none is, remove ${file} and ${file}${TAKEOVER_SUFFIX}`,
  );
}

/**
 * Removes the stale LOCK whose text is `held`, holding `LOCK.takeover` (created exclusively,
 * naming this process as `text` does) meanwhile; false if another node holds it now. Under
 * it, the LOCK is removed only if it still is the one judged stale: a node that judged it
 * stale too, but comes second, finds the winner's LOCK (or none) instead and leaves it. A
 * takeover file left by a node that died holding it (a window of a few system calls) is
 * removed for the next attempt.
 */
function removeStale(file: string, held: string, text: string): boolean {
  const mutex = `${file}${TAKEOVER_SUFFIX}`;
  if (!createExclusive(mutex, text)) {
    const holderText = readText(mutex);
    const holder = holderText === undefined ? undefined : parseOwner(holderText);
    if (holder !== undefined && !isRunning(holder) && readText(mutex) === holderText) unlinkIfThere(mutex);
    return false;
  }
  try {
    if (readText(file) === held) unlinkIfThere(file);
  } finally {
    unlinkIfThere(mutex);
  }
  return true;
}

function unlinkIfThere(file: string): void {
  try {
    unlinkSync(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

/** Blocks this thread for `ms` (the lock is taken once, at start, before anything runs). */
function pause(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** Creates `file` holding `text` unless it exists (then false). */
function createExclusive(file: string, text: string): boolean {
  let fd: number;
  try {
    fd = openSync(file, 'wx', 0o644);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
  try {
    writeSync(fd, text);
  } finally {
    closeSync(fd);
  }
  return true;
}

function readText(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

function parseOwner(text: string): Owner | undefined {
  try {
    const o = JSON.parse(text) as Partial<Owner>;
    if (!Number.isSafeInteger(o.pid) || (o.pid ?? 0) <= 0) return undefined;
    if (o.start !== undefined && !Number.isSafeInteger(o.start)) return undefined;
    return {
      pid: o.pid!,
      ...(o.start === undefined ? {} : { start: o.start }),
      host: typeof o.host === 'string' ? o.host : '?',
      since: typeof o.since === 'string' ? o.since : '?',
    };
  } catch {
    return undefined;
  }
}

/**
 * Whether the lock's owner is still alive: its pid exists, is not a zombie, and started when
 * the owner did (where /proc tells). A zombie counts as gone: a node killed after its parent
 * exited stays one where nothing reaps orphans (a container whose pid 1 is not an init).
 */
function isRunning(owner: Owner): boolean {
  try {
    process.kill(owner.pid, 0);
  } catch (err) {
    // EPERM: the pid exists but belongs to another user.
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  const now = processStat(owner.pid);
  if (now === undefined) return true;
  if (now.state === 'Z' || now.state === 'X') return false;
  return owner.start === undefined || now.start === owner.start;
}

/**
 * The state (field 3) and start time in clock ticks after boot (field 22) of /proc/PID/stat;
 * undefined off Linux.
 */
function processStat(pid: number): { state: string; start: number } | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name (field 2) is in parentheses and may hold spaces; fields 3… follow it.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const start = Number(fields[19]);
  return Number.isSafeInteger(start) ? { state: fields[0] ?? '', start } : undefined;
}
