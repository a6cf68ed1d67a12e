// End-to-end harness: real `raftctl node` processes on loopback, each with its own port
// and temp data dir. Every process spawned here is tracked so a test can always kill
// them all (afterEach / afterAll, and at process exit as a last resort), whatever failed.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ControlClient } from '../../src/client/client.js';
import type { NodeState } from '../../src/protocol/control.js';
import { nodeProcessEnv } from '../../src/server/launch-env.js';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const BIN = path.join(ROOT, 'bin', 'raftctl');

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * n distinct free loopback ports. Every listener stays open until all are bound, so the
 * kernel cannot hand out the same port twice; another process can still take one before
 * the node binds it, which on a quiet test machine is rare enough.
 */
export async function freePorts(n: number, host = '127.0.0.1'): Promise<number[]> {
  const servers: Server[] = [];
  try {
    const ports: number[] = [];
    for (let i = 0; i < n; i++) {
      const s = createServer();
      servers.push(s);
      await new Promise<void>((resolve, reject) => {
        s.once('error', reject);
        s.listen(0, host, () => resolve());
      });
      const addr = s.address();
      if (addr === null || typeof addr === 'string') throw new Error('no port from listen(0)');
      ports.push(addr.port);
    }
    return ports;
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
  }
}

export function tempDir(prefix = 'raftctl-e2e-'): string {
  return mkdtempSync(path.join(os.tmpdir(), prefix));
}

/**
 * Polls `fn` until it returns something other than undefined/false, or throws with what
 * we were waiting for and the last value/error seen, so a timeout explains itself.
 */
export async function waitFor<T>(
  what: string,
  fn: () => T | undefined | false | Promise<T | undefined | false>,
  { timeoutMs = 10_000, intervalMs = 50 }: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last = 'nothing yet';
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v;
      last = `got ${String(v)}`;
    } catch (err) {
      last = (err as Error).message;
    }
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (${last})`);
    await sleep(intervalMs);
  }
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface Health {
  health: 'ok' | 'no_leader';
  id: number;
  role: string;
  term: number;
  leader: number;
  commit: number;
  applied: number;
}

const live = new Set<NodeProc>();
const oneShots = new Set<ChildProcess>();

/** SIGKILLs every process this harness started that is still running, and waits for them. */
export async function killAll(): Promise<void> {
  for (const p of oneShots) p.kill('SIGKILL');
  await Promise.all([...live].map((n) => n.kill('SIGKILL')));
}

// If the test runner itself dies, do not leave nodes behind holding ports.
process.once('exit', () => {
  for (const n of live) n.proc?.kill('SIGKILL');
  for (const p of oneShots) p.kill('SIGKILL');
});

export interface CliRun extends Exit {
  stdout: string;
  stderr: string;
}

/** `raftctl node` flags for node 1 alone at `address` (host:port) with its data in `dataDir`. */
export function soloNodeArgs(address: string, dataDir: string): string[] {
  return ['node', '--id', '1', '--listen', address, '--peers', `1=${address}`, '--data-dir', dataDir];
}

/**
 * Runs `raftctl ARGS` to completion (for commands expected to exit by themselves), killing
 * it if it outlives the timeout — the result then shows signal SIGKILL.
 */
export function runCli(
  args: string[],
  opts: { timeoutMs?: number; uid?: number; gid?: number; env?: NodeJS.ProcessEnv } = {},
): Promise<CliRun> {
  const proc = spawn(process.execPath, [BIN, ...args], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(opts.env === undefined ? {} : { env: opts.env }),
    ...(opts.uid === undefined ? {} : { uid: opts.uid }),
    ...(opts.gid === undefined ? {} : { gid: opts.gid }),
  });
  oneShots.add(proc);
  let stdout = '';
  let stderr = '';
  proc.stdout!.setEncoding('utf8').on('data', (d: string) => {
    stdout += d;
  });
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
  });
  const timer = setTimeout(() => proc.kill('SIGKILL'), opts.timeoutMs ?? 10_000);
  return new Promise((resolve) => {
    proc.once('close', (code, signal) => {
      clearTimeout(timer);
      oneShots.delete(proc);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** One `raftctl node` process (possibly restarted several times over the same data dir). */
export class NodeProc {
  proc: ChildProcess | undefined;
  /** Output of the current (or last) run only. */
  stdout = '';
  stderr = '';
  /** Set when the current run exited. */
  exited: Exit | undefined;
  private exitPromise: Promise<Exit> | undefined;
  private clients: ControlClient[] = [];

  constructor(
    readonly id: number,
    readonly host: string,
    readonly port: number,
    readonly dataDir: string,
    /** Every flag but --id/--listen/--data-dir. */
    public args: string[],
  ) {}

  get address(): string {
    return `${this.host}:${this.port}`;
  }

  get running(): boolean {
    return this.proc !== undefined && this.exited === undefined;
  }

  /**
   * Starts the process; `extra` flags are added for this run only, `execArgv` go to node
   * itself (e.g. --cpu-prof, which Node 20 refuses in NODE_OPTIONS).
   */
  start(extra: string[] = [], opts: { env?: NodeJS.ProcessEnv; execArgv?: string[] } = {}): this {
    if (this.running) throw new Error(`node ${this.id} is already running`);
    this.stdout = '';
    this.stderr = '';
    this.exited = undefined;
    const argv = [
      ...(opts.execArgv ?? []),
      BIN,
      'node',
      '--id',
      String(this.id),
      '--listen',
      this.address,
      '--data-dir',
      this.dataDir,
      ...this.args,
      ...extra,
    ];
    const proc = spawn(process.execPath, argv, {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      // As `raftctl up` starts its nodes.
      env: nodeProcessEnv({ ...process.env, ...opts.env }),
    });
    this.proc = proc;
    live.add(this);
    proc.stdout!.setEncoding('utf8').on('data', (d: string) => {
      this.stdout += d;
    });
    proc.stderr!.setEncoding('utf8').on('data', (d: string) => {
      this.stderr += d;
    });
    this.exitPromise = new Promise<Exit>((resolve) => {
      proc.once('exit', (code, signal) => {
        // Read what is left in the pipes before calling the run finished.
        const done = () => {
          this.exited = { code, signal };
          live.delete(this);
          resolve(this.exited);
        };
        if (proc.stderr!.readableEnded) done();
        else proc.stderr!.once('close', done);
      });
    });
    return this;
  }

  /** Waits for the current run to exit (throws after the timeout, leaving it running). */
  async waitExit(timeoutMs = 10_000): Promise<Exit> {
    if (!this.exitPromise) throw new Error(`node ${this.id} was never started`);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new Error(`node ${this.id} did not exit within ${timeoutMs} ms; stderr tail:\n${this.tail()}`),
          ),
        timeoutMs,
      );
    });
    try {
      return await Promise.race([this.exitPromise, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Sends a signal (SIGKILL by default: a crash) and waits for the exit. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<Exit | undefined> {
    await this.closeClients();
    if (!this.running) return this.exited;
    this.proc!.kill(signal);
    return this.waitExit(signal === 'SIGKILL' ? 5000 : 10_000);
  }

  /** Waits for a line matching `re` in this run's stderr (the node logs there). */
  async waitForLog(re: RegExp, timeoutMs = 10_000): Promise<string> {
    return waitFor(
      `node ${this.id} to log ${re}`,
      () => {
        const m = re.exec(this.stderr);
        if (m) return m[0];
        if (this.exited) throw new Error(`node ${this.id} exited (${JSON.stringify(this.exited)})`);
        return undefined;
      },
      { timeoutMs },
    );
  }

  /** The node's own log file, all runs included. */
  logFile(): string {
    try {
      return readFileSync(path.join(this.dataDir, 'node.log'), 'utf8');
    } catch {
      return '';
    }
  }

  tail(lines = 15): string {
    return this.stderr.trimEnd().split('\n').slice(-lines).join('\n');
  }

  /** A connected control client; closed by kill()/closeClients(). */
  async client(): Promise<ControlClient> {
    const c = new ControlClient();
    await c.connect(this.address, { timeoutMs: 3000, commandTimeoutMs: 5000 });
    this.clients.push(c);
    return c;
  }

  async closeClients(): Promise<void> {
    const cs = this.clients;
    this.clients = [];
    await Promise.all(cs.map((c) => c.close().catch(() => {})));
  }

  async status(): Promise<NodeState> {
    const c = await this.client();
    try {
      return await c.command('status', {}, { timeoutMs: 3000 });
    } finally {
      await c.close();
      this.clients = this.clients.filter((x) => x !== c);
    }
  }

  async health(): Promise<Health> {
    const res = await fetch(`http://${this.address}/health`, { signal: AbortSignal.timeout(2000) });
    return (await res.json()) as Health;
  }

  /** The node's /metrics samples, by exposition name with labels (`raft_snapshots_total{kind="created"}`). */
  async metrics(): Promise<Map<string, number>> {
    const res = await fetch(`http://${this.address}/metrics`, { signal: AbortSignal.timeout(2000) });
    const samples = new Map<string, number>();
    for (const line of (await res.text()).split('\n')) {
      if (line === '' || line.startsWith('#')) continue;
      const space = line.lastIndexOf(' ');
      samples.set(line.slice(0, space), Number(line.slice(space + 1)));
    }
    return samples;
  }

  /** POST to the etcd JSON gateway. */
  async gateway<T>(op: 'put' | 'range' | 'deleterange', body: object): Promise<T> {
    const res = await fetch(`http://${this.address}/v3/kv/${op}`, {
      method: 'POST',
      body: JSON.stringify(body),
      headers: { 'content-type': 'application/json' },
      signal: AbortSignal.timeout(5000),
    });
    const json = (await res.json()) as T;
    if (!res.ok) throw new Error(`${op} on node ${this.id}: HTTP ${res.status} ${JSON.stringify(json)}`);
    return json;
  }

  /** Every key/value with the given prefix, read through the gateway. */
  async rangePrefix(prefix: string, serializable = false): Promise<Map<string, string>> {
    const end = prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1);
    const r = await this.gateway<{ kvs?: { key: string; value: string }[] }>('range', {
      key: b64(prefix),
      range_end: b64(end),
      serializable,
    });
    return new Map((r.kvs ?? []).map((kv) => [unb64(kv.key), unb64(kv.value)]));
  }

  /** Paths of this node's WAL segments, oldest first. */
  walSegments(): string[] {
    const dir = path.join(this.dataDir, 'wal');
    return readdirSync(dir)
      .filter((n) => n.endsWith('.wal'))
      .sort()
      .map((n) => path.join(dir, n));
  }
}

export const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');
export const unb64 = (s: string): string => Buffer.from(s, 'base64').toString('utf8');

export interface ClusterOptions {
  tickMs?: number;
  /** Added to every node's command line. */
  args?: string[];
  /** Per node id, replacing the shared --cluster etc. when given. */
  nodeArgs?: Record<number, string[]>;
  host?: string;
}

/** A set of nodes of one cluster under one temp dir. */
export class TestCluster {
  readonly nodes: NodeProc[] = [];
  private constructor(
    readonly root: string,
    readonly host: string,
    readonly baseArgs: string[],
  ) {}

  /** Creates (without starting) n nodes with ids 1..n that know each other as peers. */
  static async create(n: number, opts: ClusterOptions = {}): Promise<TestCluster> {
    const host = opts.host ?? '127.0.0.1';
    const ports = await freePorts(n, host);
    const peers = ports.map((p, i) => `${i + 1}=${host}:${p}`).join(',');
    const base = ['--tick-ms', String(opts.tickMs ?? 20), ...(opts.args ?? [])];
    const c = new TestCluster(tempDir(), host, base);
    for (let i = 0; i < n; i++) {
      const id = i + 1;
      c.nodes.push(
        new NodeProc(id, host, ports[i]!, path.join(c.root, `n${id}`), [
          '--peers',
          peers,
          ...base,
          ...(opts.nodeArgs?.[id] ?? []),
        ]),
      );
    }
    return c;
  }

  static async start(n: number, opts: ClusterOptions = {}): Promise<TestCluster> {
    const c = await TestCluster.create(n, opts);
    for (const node of c.nodes) node.start();
    return c;
  }

  node(id: number): NodeProc {
    const n = this.nodes.find((x) => x.id === id);
    if (!n) throw new Error(`no node ${id}`);
    return n;
  }

  get running(): NodeProc[] {
    return this.nodes.filter((n) => n.running);
  }

  /** The peers flag value naming every node (including ones added later). */
  peersFlag(): string {
    return this.nodes.map((n) => `${n.id}=${n.address}`).join(',');
  }

  /** A new node (not started) with the next id, its own port and data dir, set to --join. */
  async addNode(extra: string[] = []): Promise<NodeProc> {
    const [port] = await freePorts(1, this.host);
    const id = Math.max(...this.nodes.map((n) => n.id)) + 1;
    const node = new NodeProc(id, this.host, port!, path.join(this.root, `n${id}`), []);
    this.nodes.push(node);
    node.args = ['--peers', this.peersFlag(), '--join', ...this.baseArgs, ...extra];
    return node;
  }

  /**
   * Waits until every node in `among` (default: the running ones) reports the same
   * leader at the same term, and that leader is one of them and says it leads.
   */
  async waitLeader(among?: NodeProc[], timeoutMs = 10_000): Promise<NodeProc> {
    return waitFor(
      'a leader all nodes agree on',
      async () => {
        const nodes = among ?? this.running;
        if (nodes.length === 0) throw new Error('no node is running');
        const hs = await Promise.all(nodes.map((n) => n.health()));
        const lead = hs[0]!.leader;
        if (lead === 0) return undefined;
        if (!hs.every((h) => h.leader === lead && h.term === hs[0]!.term)) return undefined;
        const leader = nodes.find((n) => n.id === lead);
        const lh = hs[nodes.indexOf(leader!)];
        return leader && lh?.role === 'leader' ? leader : undefined;
      },
      { timeoutMs },
    );
  }

  /** Waits until `node` has applied at least everything `leader` has committed now. */
  async waitCaughtUp(node: NodeProc, leader: NodeProc, timeoutMs = 10_000): Promise<void> {
    const target = (await leader.health()).commit;
    await waitFor(
      `node ${node.id} to apply index ${target}`,
      async () => (await node.health()).applied >= target,
      { timeoutMs },
    );
  }

  /** Kills every process (SIGKILL) and removes the data dirs. */
  async destroy(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.kill('SIGKILL')));
    rmSync(this.root, { recursive: true, force: true });
  }
}

// ---- WAL surgery --------------------------------------------------------------------

export interface WalRecord {
  offset: number;
  /** Bytes of type + payload (padding excluded). */
  length: number;
  type: number;
}

/** The records of one WAL segment as its header fields describe them (no crc check). */
export function walRecords(buf: Buffer): WalRecord[] {
  const out: WalRecord[] = [];
  let off = 0;
  while (off + 8 <= buf.length) {
    const length = buf.readUInt32LE(off);
    if (length === 0 || off + 8 + length > buf.length) break;
    out.push({ offset: off, length, type: buf[off + 8]! });
    off += (8 + length + 7) & ~7;
  }
  return out;
}

/**
 * The clusters and temp dirs one test creates. `cleanup` (from afterEach) kills the nodes
 * and removes the dirs; when the test failed it first prints each node's last log lines,
 * the quickest way to the cause.
 */
export class TestResources {
  private clusters: TestCluster[] = [];
  private dirs: string[] = [];

  tempDir(prefix?: string): string {
    const d = tempDir(prefix);
    this.dirs.push(d);
    return d;
  }

  track(c: TestCluster): TestCluster {
    this.clusters.push(c);
    return c;
  }

  async cleanup(failed: boolean): Promise<void> {
    const cs = this.clusters.splice(0);
    if (failed) {
      for (const c of cs)
        for (const n of c.nodes)
          process.stderr.write(
            `--- node ${n.id} (${JSON.stringify(n.exited ?? 'running')}) ---\n${n.tail(25)}\n`,
          );
    }
    await killAll();
    await Promise.all(cs.map((c) => c.destroy()));
    for (const d of this.dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  }
}
