import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DataDirLockedError, LOCK_FILE, lockDataDir } from '../../../src/server/storage/dir-lock.js';
import { tempDirs } from './helpers.js';

const dirs = tempDirs();
afterEach(() => dirs.cleanup());

/** The pid of a process that has exited: nothing runs under it now (barring reuse in between). */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], {
    encoding: 'utf8',
  });
  return Number(r.stdout);
}

function owner(dir: string): { pid: number; start?: number; host: string; since: string } {
  return JSON.parse(readFileSync(join(dir, LOCK_FILE), 'utf8'));
}

describe('lockDataDir', () => {
  it('takes a free dir, names this process in LOCK, and release frees it for the next owner', () => {
    const dir = dirs.make();
    const lock = lockDataDir(dir);
    expect(lock.file).toBe(join(dir, LOCK_FILE));
    expect(owner(dir).pid).toBe(process.pid);
    expect(readdirSync(dir)).toEqual([LOCK_FILE]);
    lock.release();
    expect(existsSync(lock.file)).toBe(false);
    lock.release(); // idempotent
    const again = lockDataDir(dir);
    expect(owner(dir).pid).toBe(process.pid);
    again.release();
  });

  it('refuses a dir held by a live process, naming it and what to do, and leaves its LOCK alone', () => {
    const dir = dirs.make();
    const first = lockDataDir(dir);
    const before = readFileSync(first.file, 'utf8');
    let err: unknown;
    try {
      lockDataDir(dir);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(DataDirLockedError);
    expect((err as Error).message).toMatch(
      new RegExp(
        `data dir ${dir} is in use by another raftctl node \\(this process, since .*\\): stop that node first`,
      ),
    );
    expect((err as Error).message).toContain(`remove ${join(dir, LOCK_FILE)}`);
    expect(readFileSync(first.file, 'utf8')).toBe(before);
    expect(readdirSync(dir)).toEqual([LOCK_FILE]);
    first.release();
  });

  it('takes over a LOCK whose process is gone, and says so', () => {
    const dir = dirs.make();
    const gone = deadPid();
    writeFileSync(join(dir, LOCK_FILE), JSON.stringify({ pid: gone, host: 'h', since: 'then' }));
    const heard: string[] = [];
    const lock = lockDataDir(dir, (m) => heard.push(m));
    expect(heard).toEqual([
      `taking over the lock of data dir ${dir} from pid ${gone} (since then), which is no longer running`,
    ]);
    expect(owner(dir).pid).toBe(process.pid);
    lock.release();
  });

  it('removes a LOCK.takeover left by a node that died taking over, then takes the stale LOCK', () => {
    const dir = dirs.make();
    const gone = deadPid();
    const stale = JSON.stringify({ pid: gone, host: 'h', since: 'then' });
    writeFileSync(join(dir, LOCK_FILE), stale);
    writeFileSync(join(dir, `${LOCK_FILE}.takeover`), stale);
    const lock = lockDataDir(dir);
    expect(owner(dir).pid).toBe(process.pid);
    expect(readdirSync(dir)).toEqual([LOCK_FILE]);
    lock.release();
  });

  it('of six processes taking over one stale LOCK at the same instant, exactly one wins, trial after trial', async () => {
    const trials = 8;
    const lockDirs = Array.from({ length: trials }, () => dirs.make());
    for (const dir of lockDirs) {
      writeFileSync(join(dir, LOCK_FILE), JSON.stringify({ pid: deadPid(), host: 'h', since: 'then' }));
    }
    // Each process takes part in every trial: trial i starts at the same wall-clock
    // millisecond in all of them (a busy wait), and a winner keeps its LOCK to the end.
    const child = `
        const { lockDataDir } = await import(${JSON.stringify(new URL('../../../src/server/storage/dir-lock.ts', import.meta.url).pathname)});
        const [start, ...dirs] = JSON.parse(process.argv[1]);
        const won = dirs.map((dir, i) => {
          while (Date.now() < start + i * 150) {}
          try { lockDataDir(dir); return true; } catch { return false; }
        });
        process.stdout.write(JSON.stringify(won));`;
    const start = Date.now() + 2500;
    const results = await Promise.all(
      Array.from(
        { length: 6 },
        () =>
          new Promise<boolean[]>((resolve, reject) => {
            const p = spawn(
              process.execPath,
              ['--import', 'tsx', '--input-type=module', '-e', child, JSON.stringify([start, ...lockDirs])],
              { stdio: ['ignore', 'pipe', 'inherit'] },
            );
            let out = '';
            p.stdout.on('data', (d: Buffer) => {
              out += d.toString();
            });
            p.on('error', reject);
            p.on('exit', () => resolve(JSON.parse(out) as boolean[]));
          }),
      ),
    );
    // Unlinking the stale LOCK instead let two processes win in 14 of 30 such trials.
    const winners = lockDirs.map((_, i) => results.filter((won) => won[i]).length);
    expect(winners).toEqual(lockDirs.map(() => 1));
  }, 20_000);

  it.runIf(existsSync('/proc/self/stat'))(
    'takes over the LOCK of an orphan killed after its parent exited (a zombie where nothing reaps orphans)',
    async () => {
      const dir = dirs.make();
      // sh exits at once, leaving sleep to whoever adopts orphans (on a machine whose pid 1
      // does not reap, as in some containers, it stays a zombie once killed).
      const orphan = Number(
        spawnSync('sh', ['-c', 'sleep 60 >/dev/null 2>&1 & echo $!'], { encoding: 'utf8' }).stdout,
      );
      const start = Number(readFileSync(`/proc/${orphan}/stat`, 'utf8').split(') ')[1]!.split(' ')[19]);
      writeFileSync(join(dir, LOCK_FILE), JSON.stringify({ pid: orphan, start, host: 'h', since: 'then' }));
      expect(() => lockDataDir(dir)).toThrow(DataDirLockedError);
      process.kill(orphan, 'SIGKILL');
      await new Promise((r) => setTimeout(r, 100));
      const heard: string[] = [];
      const lock = lockDataDir(dir, (m) => heard.push(m));
      expect(heard).toEqual([
        `taking over the lock of data dir ${dir} from pid ${orphan} (since then), which is no longer running`,
      ]);
      lock.release();
    },
  );

  it.runIf(existsSync('/proc/self/stat'))(
    'takes a live pid with another start time for a reused pid (a reboot, a new container), not the owner',
    () => {
      const dir = dirs.make();
      const mine = lockDataDir(dir);
      const start = owner(dir).start;
      expect(start).toBeGreaterThan(0);
      mine.release();
      writeFileSync(
        join(dir, LOCK_FILE),
        JSON.stringify({ pid: process.pid, start: start! - 1, host: 'h', since: 'before the reboot' }),
      );
      const heard: string[] = [];
      const lock = lockDataDir(dir, (m) => heard.push(m));
      expect(heard).toHaveLength(1);
      expect(owner(dir)).toMatchObject({ pid: process.pid, start });
      lock.release();
    },
  );

  it('refuses a LOCK it cannot read rather than guess, and says how to clear it', () => {
    const dir = dirs.make();
    writeFileSync(join(dir, LOCK_FILE), 'not json');
    expect(() => lockDataDir(dir)).toThrow(
      `data dir ${dir} has a lock file that cannot be read (${join(dir, LOCK_FILE)}; is another node starting on it?): if no raftctl node runs on this dir, remove`,
    );
    expect(readFileSync(join(dir, LOCK_FILE), 'utf8')).toBe('not json');
  });

  it('release leaves a LOCK that another process has taken over meanwhile', () => {
    const dir = dirs.make();
    const lock = lockDataDir(dir);
    const theirs = JSON.stringify({ pid: 1, host: 'h', since: 'now' });
    writeFileSync(lock.file, theirs);
    lock.release();
    expect(readFileSync(lock.file, 'utf8')).toBe(theirs);
  });
});
