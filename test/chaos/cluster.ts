// A small spawner of real `raftctl node` processes for the chaos runner: free loopback
// ports, one temp data dir per node, kill -9 / restart, join, WAL tearing, cleanup.
import { type ChildProcess, spawn } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { ControlClient } from '../../src/client/client.js';
import type { NodeState } from '../../src/protocol/control.js';
import { walkRecords } from '../server/storage/helpers.js';

const BIN = resolve(import.meta.dirname, '../../bin/raftctl');

export interface ClusterOptions {
  nodes: number;
  tickMs: number;
  snapshotEvery: number;
  snapshotCatchUp: number;
  requestTimeoutMs: number;
  /** Keep the data dirs after close() (e.g. when a run found a violation). */
  keepDataDir?: boolean;
}

export interface NodeUnexpectedExit {
  id: number;
  code: number | null;
  signal: string | null;
  at: number;
  stderrTail: string;
}

export interface ChaosNode {
  id: number;
  address: string;
  dataDir: string;
  args: string[];
  proc?: ChildProcess;
  /** Still a member (not removed). */
  member: boolean;
  /** We killed it (or it was removed): an exit is expected. */
  expectExit: boolean;
  stderr: string;
}

export async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      s.close(() => res(port));
    });
  });
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** A cluster's directory under the temp dir, and the file in it naming the runner's pid. */
const CLUSTER_DIR_PREFIX = 'raftctl-chaos-';
const RUNNER_PID_FILE = 'runner.pid';

/**
 * Kills the nodes of chaos runs whose runner died without cleaning up (SIGKILL, the OOM
 * killer: no exit handler runs, and the nodes, in their own process groups, keep going,
 * holding memory, ports and disk, and electing among themselves). A node is recognised by
 * its `--data-dir` inside a cluster directory whose runner is no longer alive; its data is
 * left where it is. Linux only (it reads /proc); elsewhere it does nothing. Returns the pids
 * killed.
 */
export function killOrphanNodes(log: (line: string) => void, base = tmpdir()): number[] {
  if (!existsSync('/proc')) return [];
  const killed: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    let args: string[];
    try {
      args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    } catch {
      continue; // gone meanwhile, or not ours to read
    }
    const at = args.indexOf('--data-dir');
    const dataDir = at >= 0 ? args[at + 1] : undefined;
    if (dataDir === undefined) continue;
    const clusterDir = dirname(dataDir);
    if (dirname(clusterDir) !== resolve(base) || !basename(clusterDir).startsWith(CLUSTER_DIR_PREFIX))
      continue;
    if (runnerAlive(clusterDir)) continue;
    try {
      process.kill(pid, 'SIGKILL');
      killed.push(pid);
      log(
        `chaos: killed node process ${pid} left running by a run that did not finish (data in ${clusterDir})`,
      );
    } catch {
      // exited meanwhile
    }
  }
  return killed;
}

/** Whether the runner that made `clusterDir` is still running (unknown counts as alive). */
function runnerAlive(clusterDir: string): boolean {
  let pid: number;
  try {
    pid = Number(readFileSync(join(clusterDir, RUNNER_PID_FILE), 'utf8'));
  } catch {
    return true;
  }
  if (!Number.isSafeInteger(pid) || pid <= 0) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: alive, another user's.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export class ChaosCluster {
  readonly dir: string;
  readonly nodes = new Map<number, ChaosNode>();
  readonly unexpectedExits: NodeUnexpectedExit[] = [];
  private nextId: number;
  private closed = false;

  private readonly onExit = () => this.killAllSync();

  constructor(readonly opts: ClusterOptions) {
    this.dir = mkdtempSync(join(tmpdir(), CLUSTER_DIR_PREFIX));
    writeFileSync(join(this.dir, RUNNER_PID_FILE), String(process.pid));
    this.nextId = opts.nodes + 1;
    // If the runner dies without close(), do not leave nodes behind.
    process.once('exit', this.onExit);
  }

  /** Members that are running. */
  live(): ChaosNode[] {
    return [...this.nodes.values()].filter((n) => n.member && n.proc !== undefined);
  }

  members(): ChaosNode[] {
    return [...this.nodes.values()].filter((n) => n.member);
  }

  async start(): Promise<void> {
    const ports: number[] = [];
    for (let i = 0; i < this.opts.nodes; i++) ports.push(await freePort());
    const peers = ports.map((p, i) => `${i + 1}=127.0.0.1:${p}`).join(',');
    for (let i = 0; i < this.opts.nodes; i++) {
      this.define(i + 1, `127.0.0.1:${ports[i]}`, peers, false);
    }
    await Promise.all([...this.nodes.values()].map((n) => this.spawnNode(n)));
  }

  private define(id: number, address: string, peers: string, joining: boolean): ChaosNode {
    const dataDir = join(this.dir, `n${id}`);
    const o = this.opts;
    const args = [
      BIN,
      'node',
      '--id',
      String(id),
      '--listen',
      address,
      '--peers',
      peers,
      '--data-dir',
      dataDir,
      '--cluster',
      'chaos',
      '--allow-faults',
      '--tick-ms',
      String(o.tickMs),
      '--snapshot-every',
      String(o.snapshotEvery),
      '--snapshot-catch-up',
      String(o.snapshotCatchUp),
      '--request-timeout-ms',
      String(o.requestTimeoutMs),
      '--log-level',
      'info',
      '--quiet',
      ...(joining ? ['--join'] : []),
    ];
    const n: ChaosNode = { id, address, dataDir, args, member: true, expectExit: false, stderr: '' };
    this.nodes.set(id, n);
    return n;
  }

  /** Spawns the node's process and waits until its control endpoint answers. */
  async spawnNode(n: ChaosNode): Promise<void> {
    if (this.closed) return;
    n.expectExit = false;
    n.stderr = '';
    // Own process group: a Ctrl-C at the terminal reaches the runner, which cleans up;
    // the nodes must not stop by themselves meanwhile.
    const proc = spawn(process.execPath, n.args, { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
    n.proc = proc;
    proc.stderr?.on('data', (d: Buffer) => {
      n.stderr = (n.stderr + d.toString()).slice(-4000);
    });
    proc.once('exit', (code, signal) => {
      if (n.proc === proc) n.proc = undefined;
      if (!n.expectExit && !this.closed) {
        // A removed node stops itself with code 0; anything else is a crash.
        if (code === 0 && !n.member) return;
        this.unexpectedExits.push({
          id: n.id,
          code,
          signal,
          at: Date.now(),
          stderrTail: n.stderr.slice(-2000),
        });
      }
    });
    await this.waitReady(n, 30_000);
  }

  private async waitReady(n: ChaosNode, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline && n.proc && !this.closed) {
      const c = new ControlClient();
      try {
        await c.connect(n.address, { timeoutMs: 1000 });
        return;
      } catch {
        await sleep(50);
      } finally {
        await c.close().catch(() => {});
      }
    }
    if (!this.closed && n.proc)
      throw new Error(`node ${n.id} did not come up within ${timeoutMs} ms; stderr: ${n.stderr.slice(-500)}`);
  }

  /** kill -9, and wait for the process to be gone. */
  async kill(n: ChaosNode): Promise<void> {
    const p = n.proc;
    if (!p) return;
    n.expectExit = true;
    const gone = new Promise<void>((r) => p.once('exit', () => r()));
    p.kill('SIGKILL');
    await gone;
    n.proc = undefined;
  }

  async restart(n: ChaosNode): Promise<void> {
    if (n.proc) return;
    await this.spawnNode(n);
  }

  /**
   * Power loss: with the node down, tears the last WAL record: its last 1…max bytes are cut
   * off, or zeroed where the segment runs a zero tail after its records (the bytes went back
   * to the zeros they overwrote), never into the seed record. Returns the bytes torn (0 if
   * nothing could be).
   */
  tearWal(n: ChaosNode, rand: () => number, max = 48): number {
    const walDir = join(n.dataDir, 'wal');
    const segs = readdirSync(walDir)
      .filter((f) => f.endsWith('.wal'))
      .sort();
    const last = segs[segs.length - 1];
    if (!last) return 0;
    const file = join(walDir, last);
    const size = statSync(file).size;
    const records = walkRecords(file);
    const [seedEnd, dataEnd] = [records[0]?.next ?? 0, Math.min(size, records.at(-1)?.next ?? 0)];
    const room = dataEnd - seedEnd;
    if (room <= 0) return 0;
    const cut = 1 + Math.floor(rand() * Math.min(max, room));
    if (dataEnd < size) {
      const fd = openSync(file, 'r+');
      try {
        writeSync(fd, Buffer.alloc(cut), 0, cut, dataEnd - cut);
      } finally {
        closeSync(fd);
      }
    } else truncateSync(file, dataEnd - cut);
    return cut;
  }

  /** Defines and spawns a new node that joins the cluster (after member-add on the leader). */
  async addNode(): Promise<ChaosNode> {
    const id = this.nextId++;
    const address = `127.0.0.1:${await freePort()}`;
    const peers = [...this.members().map((m) => `${m.id}=${m.address}`), `${id}=${address}`].join(',');
    return this.define(id, address, peers, true);
  }

  markRemoved(n: ChaosNode): void {
    n.member = false;
    n.expectExit = true;
  }

  async status(n: ChaosNode, timeoutMs = 2000): Promise<NodeState | undefined> {
    if (!n.proc) return undefined;
    const c = new ControlClient();
    try {
      await c.connect(n.address, { timeoutMs });
      return await c.command('status', {}, { timeoutMs });
    } catch {
      return undefined;
    } finally {
      await c.close().catch(() => {});
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(
      [...this.nodes.values()].map(async (n) => {
        n.expectExit = true;
        const p = n.proc;
        if (!p) return;
        const gone = new Promise<void>((r) => p.once('exit', () => r()));
        p.kill('SIGKILL');
        await Promise.race([gone, sleep(3000)]);
      }),
    );
    process.off('exit', this.onExit);
    if (!this.opts.keepDataDir) rmSync(this.dir, { recursive: true, force: true });
  }

  /** Synchronous last-resort cleanup (process exit handlers). */
  killAllSync(): void {
    this.closed = true;
    for (const n of this.nodes.values()) {
      try {
        n.proc?.kill('SIGKILL');
      } catch {
        // already gone
      }
    }
    if (!this.opts.keepDataDir) rmSync(this.dir, { recursive: true, force: true });
  }
}
