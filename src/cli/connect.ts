// How scripting commands reach a cluster: which endpoints (flag, environment, or the cluster
// last started with `up`), which token, and a session that connects to members lazily and
// runs commands on the leader, following redirects until a deadline.
import { readFileSync } from 'node:fs';
import { ControlClient, ControlError, isRefusal, type TlsOptions } from '../client/client.js';
import { shortReason, tlsHint } from '../client/connect-errors.js';
import type { CommandArgs, CommandName, CommandValue, Member, NodeState } from '../protocol/control.js';
import { parseEndpoints, UsageError } from './args.js';
import { type ClusterFile, clusterDirFor, readClusterFile } from './cluster.js';
import { CliError, EXIT } from './exit.js';
import type { Settings } from './settings.js';

/** --tls-ca, --tls-cert, --tls-key (file names), as yargs parses them. */
export interface TlsFlags {
  'tls-ca'?: string | undefined;
  'tls-cert'?: string | undefined;
  'tls-key'?: string | undefined;
}

export interface TargetOptions extends TlsFlags {
  /** Several when the flag is repeated (`-e a:1 -e b:2`). */
  endpoints?: string | string[] | undefined;
  token?: string | undefined;
  name?: string | undefined;
  'data-dir'?: string | undefined;
}

export interface Target {
  endpoints: string[];
  /** Token for every endpoint, when one was given or the cluster file has one. */
  token: string | undefined;
  /** Set when the endpoints came from a cluster started by `raftctl up`. */
  cluster: { dir: string; file: ClusterFile } | undefined;
  /** Where the endpoints came from, for error messages. */
  source: string;
  /** Set when --tls-* flags were given: every endpoint is dialled over wss://. */
  tls?: TlsOptions | undefined;
}

/** The client's TLS material from --tls-ca/--tls-cert/--tls-key (PEM files), if any flag was given. */
export function tlsFromFlags(opts: TlsFlags): TlsOptions | undefined {
  const ca = opts['tls-ca'];
  const cert = opts['tls-cert'];
  const key = opts['tls-key'];
  if (ca === undefined && cert === undefined && key === undefined) return undefined;
  if ((cert === undefined) !== (key === undefined)) {
    throw new UsageError('--tls-cert and --tls-key go together: give both, or neither');
  }
  const read = (file: string, flag: string): Buffer => {
    try {
      return readFileSync(file);
    } catch (err) {
      throw new CliError(
        `cannot read ${flag} ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      );
    }
  };
  return {
    ...(ca === undefined ? {} : { ca: read(ca, '--tls-ca') }),
    ...(cert === undefined ? {} : { cert: read(cert, '--tls-cert') }),
    ...(key === undefined ? {} : { key: read(key, '--tls-key') }),
  };
}

/**
 * Endpoints, in order of precedence: --endpoints, RAFTCTL_ENDPOINTS, the cluster named by
 * --name/--data-dir, the cluster last started with `up`, the default cluster.
 */
export function resolveTarget(opts: TargetOptions, settings: Settings, env = process.env): Target {
  const token = opts.token ?? env.RAFTCTL_TOKEN;
  const tls = tlsFromFlags(opts);
  if (opts.endpoints !== undefined) {
    return {
      endpoints: parseEndpoints([opts.endpoints].flat(), 'endpoint in --endpoints'),
      token,
      cluster: undefined,
      source: '--endpoints',
      ...(tls === undefined ? {} : { tls }),
    };
  }
  const named = opts.name !== undefined || opts['data-dir'] !== undefined;
  if (!named && env.RAFTCTL_ENDPOINTS) {
    return {
      endpoints: parseEndpoints([env.RAFTCTL_ENDPOINTS], 'endpoint in RAFTCTL_ENDPOINTS'),
      token,
      cluster: undefined,
      source: 'RAFTCTL_ENDPOINTS',
      ...(tls === undefined ? {} : { tls }),
    };
  }
  const dir = named || !settings.lastCluster ? clusterDirFor(opts, env) : settings.lastCluster;
  const file = readClusterFile(dir);
  if (file === undefined) {
    throw new UsageError(
      named
        ? `no cluster at ${dir}: start one with 'raftctl up', or name endpoints with --endpoints HOST:PORT`
        : "no cluster to talk to: start one with 'raftctl up', or name endpoints with --endpoints HOST:PORT (or RAFTCTL_ENDPOINTS)",
    );
  }
  return {
    endpoints: file.nodes.map((n) => n.address),
    token: token ?? file.token,
    cluster: { dir, file },
    source: `cluster '${file.name}' (${dir})`,
    ...(tls === undefined ? {} : { tls }),
  };
}

/** Maps a client error to the CLI's exit codes, with a hint where one helps. */
export function cliErrorFrom(err: unknown, what: string): CliError {
  if (err instanceof CliError) return err;
  if (err instanceof ControlError) {
    switch (err.code) {
      case 'no_leader':
        return new CliError(`${what}: the cluster has no leader (is a quorum of nodes up?)`, EXIT.noQuorum);
      case 'unauthorized':
        return new CliError(
          `${what}: the node refused the token: pass --token, set RAFTCTL_TOKEN, or 'raftctl config set token.HOST:PORT SECRET'`,
        );
      case 'faults_disabled':
        return new CliError(
          `${what}: ${err.message}: fault injection needs nodes started with --allow-faults (clusters started by 'raftctl up' have it)`,
        );
      case 'timeout':
        return new CliError(`${what}: ${err.message}`);
      default:
        return new CliError(`${what}: ${err.message}`);
    }
  }
  return new CliError(`${what}: ${err instanceof Error ? err.message : String(err)}`);
}

export interface SessionOptions {
  /** Overall deadline for the command, ms. */
  timeoutMs: number;
  /** Token for endpoints without their own (from settings). */
  tokens?: Record<string, string>;
}

const CONNECT_TIMEOUT_MS = 2000;
const RETRY_DELAY_MS = 100;

export class ClusterSession {
  private readonly clients = new Map<string, Promise<ControlClient>>();
  private readonly deadline: number;
  /** The membership as the first node that answered knows it. */
  members: Member[] = [];
  /** The endpoint that answered first. */
  entry = '';
  /** The id of the node at `entry`. */
  entryId = 0;
  allowFaults = false;

  private constructor(
    private readonly target: Target,
    private readonly opts: SessionOptions,
  ) {
    this.deadline = Date.now() + opts.timeoutMs;
  }

  /** Connects to every endpoint at once and keeps the first that answers. */
  static async open(target: Target, opts: SessionOptions): Promise<ClusterSession> {
    const s = new ClusterSession(target, opts);
    const attempts = target.endpoints.map((ep) => s.client(ep).then((c) => ({ ep, c })));
    try {
      const { ep, c } = await Promise.any(attempts);
      const hello = c.hello!;
      s.entry = ep;
      s.entryId = hello.nodeId;
      s.allowFaults = hello.allowFaults;
      // A member whose address this node has not learned yet is still reachable where we found it.
      s.members = hello.members.map((m) =>
        m.address === '' && m.id === hello.nodeId ? { ...m, address: ep } : m,
      );
      return s;
    } catch (err) {
      const errors = err instanceof AggregateError ? err.errors : [err];
      await s.close();
      const unauthorized = errors.find((e) => e instanceof ControlError && e.code === 'unauthorized');
      if (unauthorized) throw cliErrorFrom(unauthorized, 'connect');
      const why = errors.map((e, i) => `${target.endpoints[i]}: ${shortReason(e)}`).join('; ');
      const hint = errors.map((e) => tlsHint(e, target.tls !== undefined)).find((h) => h !== undefined);
      throw new CliError(
        `cannot reach any endpoint of ${target.source}: ${why}. ${hint ?? "Is the cluster running? ('raftctl up', or check --endpoints)"}`,
      );
    }
  }

  get remainingMs(): number {
    return Math.max(0, this.deadline - Date.now());
  }

  tokenFor(address: string): string | undefined {
    return this.target.token ?? this.opts.tokens?.[address];
  }

  /** A connected client for `address` (cached; a failed attempt is forgotten so it can be retried). */
  client(address: string): Promise<ControlClient> {
    let p = this.clients.get(address);
    if (p === undefined) {
      const c = new ControlClient();
      p = c
        .connect(address, {
          token: this.tokenFor(address),
          timeoutMs: Math.max(200, Math.min(CONNECT_TIMEOUT_MS, this.remainingMs)),
          ...(this.target.tls === undefined ? {} : { tls: this.target.tls }),
        })
        .then(() => c);
      p.catch(() => this.clients.delete(address));
      this.clients.set(address, p);
    }
    return p;
  }

  member(id: number): Member {
    const m = this.members.find((x) => x.id === id);
    if (m === undefined || m.address === '') {
      throw new CliError(
        `node ${id} is not a member of this cluster (members: ${this.members.map((x) => x.id).join(', ') || 'none'})`,
      );
    }
    return m;
  }

  /** Runs a command on node `id`. */
  async on<N extends CommandName>(id: number, name: N, args: CommandArgs<N>): Promise<CommandValue<N>> {
    const m = this.member(id);
    let c: ControlClient;
    try {
      c = await this.client(m.address);
    } catch (err) {
      throw new CliError(`node ${id} (${m.address}) is not reachable: ${shortReason(err)}`);
    }
    return this.send(c, name, args);
  }

  private send<N extends CommandName>(
    c: ControlClient,
    name: N,
    args: CommandArgs<N>,
  ): Promise<CommandValue<N>> {
    // The client's command() takes its arguments as a rest tuple keyed by the command name;
    // N is generic here, so the tuple is built and passed through a cast that keeps N.
    const run = c.command as (n: N, a: CommandArgs<N>, o: { timeoutMs: number }) => Promise<CommandValue<N>>;
    return run.call(c, name, args, { timeoutMs: Math.max(100, this.remainingMs) });
  }

  /** Every member's state, or the reason it could not be had. */
  async statuses(): Promise<Map<number, NodeState | Error>> {
    const out = new Map<number, NodeState | Error>();
    await Promise.all(
      this.members.map(async (m) => {
        try {
          if (m.address === '') throw new Error('address unknown');
          const c = await this.client(m.address);
          out.set(m.id, await this.send(c, 'status', {}));
        } catch (err) {
          out.set(m.id, err instanceof Error ? err : new Error(String(err)));
        }
      }),
    );
    return out;
  }

  /** The node that is leader now, by its own account, at the highest term; 0 if none. */
  async leader(): Promise<{ id: number; term: number }> {
    const all = await this.statuses();
    let best = { id: 0, term: -1 };
    for (const st of all.values()) {
      if (!(st instanceof Error) && st.role === 'leader' && st.term > best.term)
        best = { id: st.id, term: st.term };
    }
    return best.id === 0 ? { id: 0, term: 0 } : best;
  }

  /**
   * Runs a command on the leader, following `not_leader` hints and waiting out elections
   * until the deadline. Only refusals are retried (the command did not run); a timeout or a
   * dropped connection after sending is reported, since a write's outcome is then unknown.
   */
  async onLeader<N extends CommandName>(name: N, args: CommandArgs<N>): Promise<CommandValue<N>> {
    let hint = 0;
    let last: unknown;
    while (this.remainingMs > 0) {
      const id = hint !== 0 ? hint : (await this.leader()).id;
      hint = 0;
      if (id !== 0) {
        let c: ControlClient | undefined;
        try {
          c = await this.client(this.member(id).address);
        } catch (err) {
          last = err;
        }
        if (c !== undefined) {
          try {
            return await this.send(c, name, args);
          } catch (err) {
            if (!isRefusal(err)) throw cliErrorFrom(err, name);
            last = err;
            if (err.code === 'not_leader' && err.leader !== undefined) hint = err.leader;
          }
        }
      }
      if (hint === 0) await sleep(Math.min(RETRY_DELAY_MS, this.remainingMs));
    }
    const why = last === undefined ? 'no member reports being leader' : shortReason(last);
    throw new CliError(
      `${name}: no leader answered within ${this.opts.timeoutMs} ms (${why}); is a quorum of nodes up? ('raftctl status')`,
      EXIT.noQuorum,
    );
  }

  /** Polls until `done` holds for the members' states, or the deadline passes. */
  async waitFor(
    done: (states: Map<number, NodeState | Error>) => boolean,
    everyMs = 50,
  ): Promise<Map<number, NodeState | Error> | undefined> {
    for (;;) {
      const states = await this.statuses();
      if (done(states)) return states;
      if (this.remainingMs <= 0) return undefined;
      await sleep(Math.min(everyMs, this.remainingMs));
    }
  }

  async close(): Promise<void> {
    const all = [...this.clients.values()];
    this.clients.clear();
    await Promise.all(all.map((p) => p.then((c) => c.close()).catch(() => {})));
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
