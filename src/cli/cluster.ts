// Local clusters started by `raftctl up`: where their data lives, the cluster.json that lets
// `up` resume them and `down`/`logs`/scripting commands find them, and the supervision of
// their node processes (spawn, wait for a leader, kill, restart, add, stop).
//
// Nodes are spawned detached (their own process group, stdin closed, output to a file): the
// terminal's Ctrl-C goes to raftctl alone, which stops them cleanly, and nothing a node
// prints can scribble over the console.
import { type ChildProcess, spawn } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { nodeProcessEnv } from '../server/launch-env.js';
import type { ClusterControl } from '../ui/cluster-control.js';
import { parseClusterName } from './args.js';
import { ClusterSession, resolveTarget, sleep } from './connect.js';
import { CliError, EXIT } from './exit.js';
import { DEFAULT_SETTINGS } from './settings.js';

export const LOOPBACK = '127.0.0.1';

const ClusterNodeSchema = z.object({
  id: z.int().positive(),
  address: z.string(),
  dataDir: z.string(),
  pid: z.int().positive().optional(),
  logFile: z.string(),
  /** Added to a running cluster: starts with --join when its data dir is empty. */
  join: z.boolean().optional(),
});
export type ClusterNode = z.infer<typeof ClusterNodeSchema>;

const ClusterFileSchema = z.object({
  name: z.string(),
  nodes: z.array(ClusterNodeSchema),
  token: z.string().optional(),
  allowFaults: z.boolean(),
  tickMs: z.int().positive(),
  createdAt: z.string(),
});
export type ClusterFile = z.infer<typeof ClusterFileSchema>;

/** `$XDG_DATA_HOME/raftctl/clusters`, else `~/.local/share/raftctl/clusters`. */
export function clustersRoot(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_DATA_HOME ? env.XDG_DATA_HOME : join(homedir(), '.local', 'share');
  return join(base, 'raftctl', 'clusters');
}

/** --data-dir wins; otherwise the named (or default) cluster under the user's data dir. */
export function clusterDirFor(
  opts: { name?: string | undefined; 'data-dir'?: string | undefined },
  env: NodeJS.ProcessEnv = process.env,
): string {
  if (opts['data-dir'] !== undefined) return opts['data-dir'];
  return join(clustersRoot(env), parseClusterName(opts.name ?? 'default'));
}

export function clusterFilePath(dir: string): string {
  return join(dir, 'cluster.json');
}

/** The cluster file, or undefined if there is none; a damaged file is an error naming it. */
export function readClusterFile(dir: string): ClusterFile | undefined {
  const path = clusterFilePath(dir);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new CliError(`cannot read ${path}: ${(err as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new CliError(
      `${path} is not valid JSON (${(err as Error).message}): fix it or start over with --fresh`,
    );
  }
  const r = ClusterFileSchema.safeParse(json);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw new CliError(
      `${path} is damaged (${issue?.path.join('.')}: ${issue?.message}): fix it or start over with --fresh`,
    );
  }
  return r.data;
}

/** Written to a temporary file and renamed, so a crash never leaves half a file. */
export function writeClusterFile(dir: string, file: ClusterFile): void {
  mkdirSync(dir, { recursive: true });
  const path = clusterFilePath(dir);
  writeFileSync(`${path}.tmp`, `${JSON.stringify(file, null, 2)}\n`);
  renameSync(`${path}.tmp`, path);
}

/** The node's own log (the node writes it); its stdout/stderr go to node.out next to it. */
export function nodeOutFile(node: ClusterNode): string {
  return join(node.dataDir, 'node.out');
}

/** `bin/raftctl`, found from this module's location in dist/cli (or src/cli under tsx). */
export function raftctlBin(): string {
  return fileURLToPath(new URL('../../bin/raftctl', import.meta.url));
}

/**
 * Whether `pid` is alive and (where /proc exists) still the node we started, so that a
 * recycled pid is never signalled.
 */
export function isNodeAlive(node: ClusterNode): boolean {
  if (node.pid === undefined) return false;
  try {
    process.kill(node.pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  try {
    const cmdline = readFileSync(`/proc/${node.pid}/cmdline`, 'utf8');
    return cmdline.includes(node.dataDir);
  } catch {
    // No /proc (macOS): trust the signal probe.
    return true;
  }
}

/** Finds `n` free loopback ports: from `basePort` upwards when set, else wherever the OS binds. */
export async function findFreePorts(
  n: number,
  basePort = 0,
  avoid: readonly number[] = [],
): Promise<number[]> {
  const ports: number[] = [];
  if (basePort > 0) {
    for (let p = basePort; ports.length < n && p <= 65535; p++) {
      if (avoid.includes(p)) continue;
      if (await canBind(p)) ports.push(p);
    }
    if (ports.length < n) throw new CliError(`not enough free ports from ${basePort} upwards`);
    return ports;
  }
  // Hold every probe open until all are chosen, so the OS never hands out the same port twice.
  const servers = await Promise.all(
    Array.from({ length: n }, async () => {
      const s = createServer();
      await new Promise<void>((resolve, reject) => {
        s.once('error', reject);
        s.listen(0, LOOPBACK, () => resolve());
      });
      return s;
    }),
  );
  for (const s of servers) {
    const addr = s.address();
    if (addr !== null && typeof addr === 'object') ports.push(addr.port);
  }
  await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
  return ports;
}

function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, LOOPBACK, () => s.close(() => resolve(true)));
  });
}

export interface HealthView {
  id: number;
  role: string;
  term: number;
  leader: number;
}

/** GET /health: any answer (200 or 503) means the node is serving. */
export async function fetchHealth(address: string, timeoutMs = 500): Promise<HealthView | undefined> {
  try {
    const res = await fetch(`http://${address}/health`, { signal: AbortSignal.timeout(timeoutMs) });
    const body = (await res.json()) as Partial<HealthView>;
    if (typeof body.id !== 'number') return undefined;
    return {
      id: body.id,
      role: String(body.role),
      term: Number(body.term ?? 0),
      leader: Number(body.leader ?? 0),
    };
  } catch {
    return undefined;
  }
}

/** The last lines of a file, for error messages and `raftctl logs`. */
export function tailFile(path: string, lines: number): string[] {
  let text: string;
  try {
    const size = statSync(path).size;
    // Read at most the last 256 KiB: enough for any sensible number of log lines.
    const start = Math.max(0, size - 256 * 1024);
    const fd = openSync(path, 'r');
    try {
      const buf = Buffer.alloc(size - start);
      readSync(fd, buf, 0, buf.length, start);
      text = buf.toString('utf8');
    } finally {
      closeSync(fd);
    }
  } catch {
    return [];
  }
  const all = text.split('\n');
  if (all.at(-1) === '') all.pop();
  return all.slice(-lines);
}

export interface UpOptions {
  size: number;
  name: string;
  dir: string;
  fresh: boolean;
  tickMs: number;
  basePort: number;
  token: string | undefined;
  /** Leader wait, ms. */
  timeoutMs: number;
  /** Progress messages (stderr). */
  say: (line: string) => void;
}

/** Creates (or, with data, resumes) the cluster described by `opts` and writes its file. */
export async function prepareCluster(opts: UpOptions): Promise<{ file: ClusterFile; resumed: boolean }> {
  if (opts.fresh && existsSync(opts.dir)) {
    const old = readClusterFile(opts.dir);
    if (old?.nodes.some(isNodeAlive)) {
      throw new CliError(
        `cluster '${old.name}' is running: stop it first with 'raftctl down${old.name === 'default' ? '' : ` --name ${old.name}`}'`,
      );
    }
    rmSync(opts.dir, { recursive: true, force: true });
  }
  const existing = readClusterFile(opts.dir);
  if (existing !== undefined) {
    if (opts.size !== existing.nodes.length) {
      opts.say(
        `resuming cluster '${existing.name}' with its ${existing.nodes.length} nodes (use --fresh to start over with ${opts.size})`,
      );
    }
    return { file: existing, resumed: true };
  }
  const ports = await findFreePorts(opts.size, opts.basePort);
  const nodes: ClusterNode[] = ports.map((port, i) => {
    const dataDir = join(opts.dir, `n${i + 1}`);
    return { id: i + 1, address: `${LOOPBACK}:${port}`, dataDir, logFile: join(dataDir, 'node.log') };
  });
  const file: ClusterFile = {
    name: opts.name,
    nodes,
    ...(opts.token === undefined ? {} : { token: opts.token }),
    allowFaults: true,
    tickMs: opts.tickMs,
    createdAt: new Date().toISOString(),
  };
  writeClusterFile(opts.dir, file);
  return { file, resumed: false };
}

/**
 * Supervises the node processes of one cluster. Implements the console's ClusterControl;
 * every change to pids or membership is written back to cluster.json at once, so a second
 * raftctl (`down`, `status`) always sees the truth.
 */
export class ManagedCluster implements ClusterControl {
  private readonly children = new Map<number, ChildProcess>();
  /** Ids whose process exited while we watched, with how (for startup errors). */
  readonly exited = new Map<number, string>();

  constructor(
    readonly dir: string,
    private file: ClusterFile,
  ) {}

  get name(): string {
    return this.file.name;
  }

  get nodes(): readonly ClusterNode[] {
    return this.file.nodes;
  }

  get token(): string | undefined {
    return this.file.token;
  }

  endpoints(): string[] {
    return this.file.nodes.map((n) => n.address);
  }

  isManaged(id: number): boolean {
    return this.file.nodes.some((n) => n.id === id);
  }

  private node(id: number): ClusterNode {
    const n = this.file.nodes.find((x) => x.id === id);
    if (n === undefined) {
      throw new CliError(
        `node ${id} is not part of cluster '${this.name}' (nodes: ${this.ids().join(', ')})`,
      );
    }
    return n;
  }

  private ids(): number[] {
    return this.file.nodes.map((n) => n.id);
  }

  private save(): void {
    writeClusterFile(this.dir, this.file);
  }

  /** Re-reads cluster.json, keeping what another raftctl (e.g. `member remove`) changed. */
  reload(): void {
    const f = readClusterFile(this.dir);
    if (f !== undefined) this.file = f;
  }

  /** Starts every node that is not running; returns the ids started. */
  startAll(): number[] {
    const started: number[] = [];
    for (const n of this.file.nodes) {
      if (isNodeAlive(n)) continue;
      this.spawnNode(n);
      started.push(n.id);
    }
    this.save();
    return started;
  }

  private spawnNode(n: ClusterNode): void {
    mkdirSync(n.dataDir, { recursive: true });
    const peers = this.file.nodes.map((m) => `${m.id}=${m.address}`).join(',');
    const fresh = !existsSync(join(n.dataDir, 'identity.json'));
    const args = [
      raftctlBin(),
      'node',
      '--id',
      String(n.id),
      '--listen',
      n.address,
      '--peers',
      peers,
      '--data-dir',
      n.dataDir,
      '--cluster',
      this.file.name,
      '--tick-ms',
      String(this.file.tickMs),
      '--quiet',
      ...(this.file.allowFaults ? ['--allow-faults'] : []),
      ...(n.join && fresh ? ['--join'] : []),
    ];
    // The token travels in the environment, not argv, where `ps` would show it; a token
    // in the user's own environment must not leak into a cluster that has none. Large
    // buffers come in huge pages (launch-env.ts).
    const env = nodeProcessEnv({ ...process.env, NO_COLOR: '1' });
    delete env.RAFTCTL_TOKEN;
    if (this.file.token !== undefined) env.RAFTCTL_TOKEN = this.file.token;
    const out = openSync(nodeOutFile(n), 'a');
    let child: ChildProcess;
    try {
      child = spawn(process.execPath, args, { detached: true, stdio: ['ignore', out, out], env });
    } finally {
      closeSync(out);
    }
    child.unref();
    this.exited.delete(n.id);
    n.pid = child.pid;
    this.children.set(n.id, child);
    child.once('exit', (code, signal) => {
      this.exited.set(n.id, signal ? `killed by ${signal}` : `exited with code ${code}`);
      if (this.children.get(n.id) === child) this.children.delete(n.id);
      // Forget the pid only if it is still ours: a restart may have replaced it.
      if (n.pid === child.pid) {
        n.pid = undefined;
        try {
          this.reload();
          const fresh = this.file.nodes.find((x) => x.id === n.id);
          if (fresh && fresh.pid === child.pid) {
            fresh.pid = undefined;
            this.save();
          }
        } catch {
          // A damaged or removed cluster file: nothing to update.
        }
      }
    });
  }

  /**
   * Waits until a node is leader and a majority of the nodes follow it. Fails early if a
   * node we started exits, quoting its output.
   */
  async waitForLeader(timeoutMs: number): Promise<{ leader: number; term: number }> {
    const deadline = Date.now() + timeoutMs;
    const majority = Math.floor(this.file.nodes.length / 2) + 1;
    for (;;) {
      for (const [id, how] of this.exited) {
        const n = this.node(id);
        const out = tailFile(nodeOutFile(n), 5).join('\n  ');
        throw new CliError(
          `node ${id} ${how} while starting${out ? `:\n  ${out}` : ''}\nSee ${n.logFile} and ${nodeOutFile(n)}`,
        );
      }
      const health = await Promise.all(this.file.nodes.map((n) => fetchHealth(n.address)));
      const leader = health.find((h) => h?.role === 'leader');
      if (leader) {
        const following = health.filter((h) => h?.leader === leader.id).length;
        if (following >= majority) return { leader: leader.id, term: leader.term };
      }
      if (Date.now() > deadline) {
        throw new CliError(
          `no leader elected within ${timeoutMs} ms; see the node logs: ${this.file.nodes.map((n) => n.logFile).join(' ')}`,
          EXIT.noQuorum,
        );
      }
      await sleep(50);
    }
  }

  /** Waits until the node answers /health (it serves, leader or not). */
  private async waitServing(n: ClusterNode, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const how = this.exited.get(n.id);
      if (how !== undefined) {
        const out = tailFile(nodeOutFile(n), 5).join('\n  ');
        throw new CliError(`node ${n.id} ${how} while starting${out ? `:\n  ${out}` : ''}`);
      }
      if ((await fetchHealth(n.address)) !== undefined) return;
      await sleep(50);
    }
    throw new CliError(`node ${n.id} did not start serving within ${timeoutMs} ms; see ${n.logFile}`);
  }

  async kill(id: number): Promise<void> {
    const n = this.node(id);
    if (!isNodeAlive(n)) return;
    process.kill(n.pid!, 'SIGKILL');
    await this.waitGone(n, 2000);
    n.pid = undefined;
    this.save();
  }

  async stop(id: number): Promise<void> {
    const n = this.node(id);
    if (!isNodeAlive(n)) return;
    await this.stopNode(n);
    this.save();
  }

  async restart(id: number): Promise<void> {
    const n = this.node(id);
    if (isNodeAlive(n)) await this.stopNode(n);
    this.spawnNode(n);
    this.save();
    await this.waitServing(n);
  }

  async addNode(): Promise<{ id: number; address: string }> {
    this.reload();
    const id = Math.max(0, ...this.ids()) + 1;
    const taken = this.file.nodes.map((n) => Number(n.address.split(':').at(-1)));
    const [port] = await findFreePorts(1, 0, taken);
    const address = `${LOOPBACK}:${port}`;
    const session = await ClusterSession.open(
      resolveTarget({ 'data-dir': this.dir }, { ...DEFAULT_SETTINGS, lastCluster: this.dir }),
      { timeoutMs: 10_000 },
    );
    try {
      await session.onLeader('member-add', { id, address });
    } finally {
      await session.close();
    }
    const dataDir = join(this.dir, `n${id}`);
    const n: ClusterNode = { id, address, dataDir, logFile: join(dataDir, 'node.log'), join: true };
    this.file.nodes.push(n);
    this.spawnNode(n);
    this.save();
    await this.waitServing(n);
    return { id, address };
  }

  /** Sends SIGTERM to every running node without waiting: safe to call from a signal or exit handler. */
  signalAll(signal: NodeJS.Signals = 'SIGTERM'): void {
    for (const n of this.file.nodes) {
      if (!isNodeAlive(n)) continue;
      try {
        process.kill(n.pid!, signal);
      } catch {
        // Already gone.
      }
    }
  }

  async stopAll(): Promise<void> {
    this.reload();
    await Promise.all(this.file.nodes.filter(isNodeAlive).map((n) => this.stopNode(n)));
    this.save();
  }

  /** SIGTERM (the node stops cleanly: WAL closed, peers told), SIGKILL after `graceMs`. */
  private async stopNode(n: ClusterNode, graceMs = 5000): Promise<void> {
    try {
      process.kill(n.pid!, 'SIGTERM');
    } catch {
      n.pid = undefined;
      return;
    }
    if (!(await this.waitGone(n, graceMs))) {
      try {
        process.kill(n.pid!, 'SIGKILL');
      } catch {
        // Exited just now.
      }
      await this.waitGone(n, 2000);
    }
    n.pid = undefined;
  }

  private async waitGone(n: ClusterNode, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const child = this.children.get(n.id);
      // Our own child lingers as a zombie until its exit event: that event is the truth.
      if (child ? child.exitCode !== null || child.signalCode !== null : !isNodeAlive(n)) return true;
      await sleep(25);
    }
    return false;
  }

  /** Forgets a node removed from the membership (its data dir stays, for inspection). */
  forget(id: number): boolean {
    this.reload();
    const before = this.file.nodes.length;
    this.file.nodes = this.file.nodes.filter((n) => n.id !== id);
    if (this.file.nodes.length === before) return false;
    this.save();
    return true;
  }
}
