// The chaos runner's cleanup of nodes a killed run left behind (killOrphanNodes).
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { killOrphanNodes } from './cluster.js';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0).reverse()) c();
});

/** A cluster directory as ChaosCluster makes one, its runner's pid recorded. */
function clusterDir(base: string, name: string, runnerPid: number): string {
  const dir = join(base, `raftctl-chaos-${name}`);
  mkdirSync(dir);
  writeFileSync(join(dir, 'runner.pid'), String(runnerPid));
  return dir;
}

/** A process that lives until killed, with a node's `--data-dir` on its command line. */
function standInNode(dataDir: string): ChildProcess {
  const p = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)', '--', '--data-dir', dataDir], {
    detached: true,
    stdio: 'ignore',
  });
  cleanups.push(() => {
    if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  });
  return p;
}

describe.runIf(existsSync('/proc'))('killOrphanNodes', () => {
  it('kills the nodes of a run whose runner is dead, and leaves a live run and the data alone', async () => {
    const base = mkdtempSync(join(tmpdir(), 'orphans-'));
    cleanups.push(() => rmSync(base, { recursive: true, force: true }));
    const deadRunner = spawnSync(process.execPath, ['-e', '']).pid!;
    const orphaned = clusterDir(base, 'dead', deadRunner);
    const running = clusterDir(base, 'live', process.pid);
    const orphans = [standInNode(join(orphaned, 'n1')), standInNode(join(orphaned, 'n2'))];
    const alive = standInNode(join(running, 'n1'));
    // A dead runner's too, but under another directory than the one swept.
    const other = mkdtempSync(join(tmpdir(), 'orphans-other-'));
    cleanups.push(() => rmSync(other, { recursive: true, force: true }));
    const elsewhere = standInNode(join(clusterDir(other, 'dead', deadRunner), 'n1'));
    await Promise.all([...orphans, alive, elsewhere].map((p) => once(p, 'spawn')));

    const lines: string[] = [];
    const killed = killOrphanNodes((l) => lines.push(l), base);

    const byPid = (a: number, b: number) => a - b;
    expect(killed.sort(byPid)).toEqual(orphans.map((p) => p.pid!).sort(byPid));
    await Promise.all(orphans.map((p) => (p.signalCode !== null ? undefined : once(p, 'exit'))));
    expect(orphans.map((p) => p.signalCode)).toEqual(['SIGKILL', 'SIGKILL']);
    expect(alive.exitCode === null && alive.signalCode === null).toBe(true);
    expect(elsewhere.exitCode === null && elsewhere.signalCode === null).toBe(true);
    expect(lines).toHaveLength(2);
    expect(lines[0]).toContain(`data in ${orphaned}`);
    expect(existsSync(join(orphaned, 'runner.pid'))).toBe(true);
    // Nothing left to kill the second time.
    expect(killOrphanNodes(() => {}, base)).toEqual([]);
  });
});
