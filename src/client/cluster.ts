// A client for a whole cluster: connections to every member, writes sent to the leader.
//
// Any node takes any request (a follower forwards a write to its leader and answers once it
// has applied it), but a write through a follower costs two more hops and waits for that
// follower to apply it as well. So, as the Raft paper has clients do (§8), this client sends
// writes to the leader — which it learns from the state every member reports — and spreads
// everything else (reads, status) over the members in turn. With the leader unknown or its
// connections down, a write goes to any member, which forwards it. Commands that go to
// different members have no order between them: await a write before a read that must see
// it. Measured on a 3-node loopback cluster at 1,024 clients, interleaved: p99 45–52 ms
// against 50–68 ms with the clients' connections spread over the members (BENCHMARKS.md).

import type { CommandName, CommandValue, NodeState } from '../protocol/control.js';
import {
  type ArgsParam,
  type ConnectOptions,
  ControlClient,
  ControlError,
  DEFAULT_COMMAND_TIMEOUT_MS,
  isRefusal,
} from './client.js';

export interface ClusterClientOptions extends ConnectOptions {
  /** Connections to each member; requests to a member take the least busy. Default 1. */
  connectionsPerNode?: number;
  /** How often each member reports whom it follows. Default 500 ms. */
  leaderEveryMs?: number;
}

/** Commands that change the replicated state: proposed through the leader. */
const WRITES: ReadonlySet<CommandName> = new Set<CommandName>([
  'put',
  'delete',
  'cas',
  'propose',
  'member-add',
  'member-remove',
  'member-promote',
]);

interface Member {
  id: number;
  address: string;
  /** Connections that have connected once (they reconnect by themselves after a drop). */
  clients: ControlClient[];
  /** While some of its connections have never connected: the next attempt. */
  retry: ReturnType<typeof setTimeout> | undefined;
  attempts: number;
}

/** Where the commands of this turn go, and how many went so far. */
interface Target {
  node: number;
  client: ControlClient;
  sent: number;
}

/**
 * Commands one connection takes in one event-loop turn before the next connection takes
 * over. Commands issued in the same turn travel together, as one frame (the client batches
 * a turn's commands per connection); sending each to the next member in turn instead cost
 * a read at 1,024 clients 9 µs of client CPU against 5.6 µs. The cap spreads a burst (a
 * frame of answers, each setting off its caller's next command) over a member's connections
 * rather than queueing it behind one connection's limit of commands in flight.
 */
const TURN_BATCH = 64;

/** A refused command (see isRefusal) is sent again after this long, until its timeout. */
const RETRY_DELAY_MS = 20;

export class ClusterClient {
  private readonly members: Member[] = [];
  private leaderId: number | undefined;
  /** The term of the newest report about the leader; older reports do not overrule it. */
  private leaderTerm = -1;
  /** Members take reads in turn: the index of the next one. */
  private turn = 0;
  private readTarget: Target | undefined;
  private writeTarget: Target | undefined;
  private resetQueued = false;

  /** A `members` request is out to the leader (the membership changed). */
  private fetchingMembers = false;
  private closed = false;

  private constructor(
    private readonly perNode: number,
    private readonly leaderEveryMs: number,
    private readonly connectOpts: ConnectOptions,
  ) {}

  /**
   * Connects to the members of the cluster that `endpoints` (any of them) belongs to. A
   * member that cannot be reached now is tried again in the background (backing off to
   * 5 s), and the membership is followed: members the leader's configuration gains are
   * connected, members it drops let go. Rejects with ControlError if no endpoint answers.
   */
  static async connect(
    endpoints: readonly string[],
    opts: ClusterClientOptions = {},
  ): Promise<ClusterClient> {
    const { connectionsPerNode = 1, leaderEveryMs = 500, ...connect } = opts;
    if (!(Number.isInteger(connectionsPerNode) && connectionsPerNode >= 1)) {
      throw new ControlError(
        'bad_args',
        `connectionsPerNode must be a whole number ≥ 1, not ${connectionsPerNode}`,
      );
    }
    const first = await firstAnswer(endpoints, connect);
    await first.client.close();
    const cluster = new ClusterClient(connectionsPerNode, leaderEveryMs, connect);
    await Promise.all(first.hello.members.map((m) => cluster.join(m.id, m.address)));
    if (!cluster.members.some((m) => m.clients.length > 0)) {
      await cluster.close();
      throw new ControlError(
        'unavailable',
        `no member of the cluster at ${endpoints.join(', ')} could be reached`,
      );
    }
    return cluster;
  }

  /** The leader as the members last reported it, if any. */
  get leader(): number | undefined {
    return this.leaderId;
  }

  /** Ids of the members this client follows (connected, reconnecting or still trying). */
  get memberIds(): number[] {
    return this.members.map((m) => m.id);
  }

  /** A connection to member `id`, for commands meant for that node (status, campaign, fault…). */
  node(id: number): ControlClient | undefined {
    return this.members.find((m) => m.id === id)?.clients[0];
  }

  /**
   * The member and connection a command goes to: for a write, the leader's least busy
   * connection when the leader is known and connected; otherwise (and for everything else)
   * the next connected member's. The choice holds for the rest of the turn, up to
   * TURN_BATCH commands.
   */
  pick(name: CommandName): { node: number; client: ControlClient } | undefined {
    const write = WRITES.has(name);
    let t = write ? this.writeTarget : this.readTarget;
    if (t === undefined || t.sent >= TURN_BATCH || !t.client.connected) {
      t = (write ? this.leaderTarget() : undefined) ?? this.nextMember();
      if (t === undefined) return undefined;
      if (write) this.writeTarget = t;
      else this.readTarget = t;
      this.resetAfterTurn();
    }
    t.sent++;
    return t;
  }

  /**
   * Runs a command where pick() sends it; rejects with ControlError as ControlClient.command
   * does. A refusal (no leader, or leadership moving: the command did not run) is retried,
   * on the leader the refusal names if it names one, until the command's timeout.
   */
  command<N extends CommandName>(name: N, ...rest: ArgsParam<N>): Promise<CommandValue<N>> {
    const target = this.pick(name);
    if (target === undefined) {
      return Promise.reject(
        new ControlError('unavailable', `not connected to any member; cannot run ${name}`),
      );
    }
    const started = performance.now();
    return target.client
      .command(name, ...rest)
      .catch((err: unknown) => this.retryRefused(err, target.node, started, name, rest));
  }

  private async retryRefused<N extends CommandName>(
    err: unknown,
    refusedBy: number,
    started: number,
    name: N,
    rest: ArgsParam<N>,
  ): Promise<CommandValue<N>> {
    const [args, opts] = rest;
    const timeoutMs = opts?.timeoutMs ?? this.connectOpts.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS;
    const left = () => started + timeoutMs - performance.now();
    let last = err;
    let by = refusedBy;
    for (;;) {
      if (!isRefusal(last)) throw last;
      this.noteRefusal(by, last.leader);
      // A try needs time to be answered: with less than a retry delay left after the wait
      // (timers may fire late), the refusal is the answer; a try given a fraction of a
      // millisecond only timed out, reporting an unknown outcome.
      if (left() < 2 * RETRY_DELAY_MS || this.closed) throw last;
      await new Promise((resolve) => setTimeout(resolve, RETRY_DELAY_MS));
      const tryMs = left();
      if (tryMs < RETRY_DELAY_MS || this.closed) throw last;
      const target = this.pick(name);
      if (target === undefined) throw last;
      by = target.node;
      // The client's command() takes its arguments as a rest tuple keyed by the command name;
      // N is generic here, so the tuple is rebuilt with the time left as its timeout.
      const again = [args, { ...opts, timeoutMs: tryMs }] as unknown as ArgsParam<N>;
      try {
        return await target.client.command(name, ...again);
      } catch (e) {
        last = e;
      }
    }
  }

  /**
   * A refusal says who leads, or that the node asked does not: writes go to the leader it
   * names, or (none named) to any member, which forwards them, until the next state report.
   */
  private noteRefusal(by: number, leader: number | undefined): void {
    if (leader !== undefined && leader !== 0 && leader !== by) this.leaderId = leader;
    else if (this.leaderId === by) this.leaderId = undefined;
    this.writeTarget = undefined;
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.members.splice(0).map((m) => this.letGo(m)));
  }

  /** Starts following a member: its connections now, and again later for those that fail. */
  private async join(id: number, address: string): Promise<void> {
    if (this.closed || this.members.some((m) => m.id === id)) return;
    const m: Member = { id, address, clients: [], retry: undefined, attempts: 0 };
    this.members.push(m);
    await this.fill(m);
  }

  private async fill(m: Member): Promise<void> {
    m.retry = undefined;
    const opened = await Promise.allSettled(
      Array.from({ length: this.perNode - m.clients.length }, async () => {
        const c = new ControlClient();
        try {
          await c.connect(m.address, { reconnect: true, ...this.connectOpts });
          return c;
        } catch (err) {
          await c.close();
          throw err;
        }
      }),
    );
    const following = !this.closed && this.members.includes(m);
    for (const r of opened) {
      if (r.status !== 'fulfilled') continue;
      if (!following) {
        void r.value.close();
        continue;
      }
      m.clients.push(r.value);
      // The first connection of a member carries its state reports.
      if (m.clients.length === 1) {
        const reporter = r.value;
        reporter.on('state', (s) => this.onState(s, reporter));
        reporter.subscribe({ state: { everyMs: this.leaderEveryMs } });
      }
    }
    if (following && m.clients.length < this.perNode) {
      m.retry = setTimeout(() => void this.fill(m), Math.min(5000, 200 * 2 ** m.attempts++));
    }
  }

  private async letGo(m: Member): Promise<void> {
    if (m.retry !== undefined) clearTimeout(m.retry);
    await Promise.all(m.clients.map((c) => c.close()));
  }

  private leaderTarget(): Target | undefined {
    const leader = this.members.find((m) => m.id === this.leaderId);
    const client = leader && leastBusy(leader);
    return client === undefined ? undefined : { node: leader!.id, client, sent: 0 };
  }

  private nextMember(): Target | undefined {
    for (let i = 0; i < this.members.length; i++) {
      const m = this.members[this.turn++ % this.members.length]!;
      const client = leastBusy(m);
      if (client !== undefined) return { node: m.id, client, sent: 0 };
    }
    return undefined;
  }

  private resetAfterTurn(): void {
    if (this.resetQueued) return;
    this.resetQueued = true;
    process.nextTick(() => {
      this.resetQueued = false;
      this.readTarget = this.writeTarget = undefined;
    });
  }

  /**
   * A member's report: a newer term wins; in a term, a node that says it leads, or whom a
   * follower follows. The leader's report also carries the configuration the client follows.
   */
  private onState(s: NodeState, reporter: ControlClient): void {
    if (s.term < this.leaderTerm) return;
    const leader = s.role === 'leader' ? s.id : s.leader;
    if (s.term > this.leaderTerm || (this.leaderId === undefined && leader !== 0)) {
      this.leaderTerm = s.term;
      this.leaderId = leader === 0 ? undefined : leader;
    }
    if (s.role === 'leader') this.followConfig(s.config, reporter);
  }

  private followConfig(config: NodeState['config'], leader: ControlClient): void {
    const ids = new Set([
      ...config.voters,
      ...config.votersOutgoing,
      ...config.learners,
      ...config.learnersNext,
    ]);
    for (const m of this.members.filter((x) => !ids.has(x.id))) {
      this.members.splice(this.members.indexOf(m), 1);
      void this.letGo(m);
    }
    if (this.fetchingMembers || [...ids].every((id) => this.members.some((m) => m.id === id))) return;
    // A member to add: its address comes from the leader's membership.
    this.fetchingMembers = true;
    leader
      .command('members')
      .then((list) => Promise.all(list.filter((m) => ids.has(m.id)).map((m) => this.join(m.id, m.address))))
      // A fetch that fails (the leader went away) is tried again on the next leader's report.
      .catch(() => undefined)
      .finally(() => {
        this.fetchingMembers = false;
      });
  }
}

/** The connected client of `m` with the fewest commands waiting, if any is connected. */
function leastBusy(m: Member): ControlClient | undefined {
  let best: ControlClient | undefined;
  for (const c of m.clients) if (c.connected && (best === undefined || c.inFlight < best.inFlight)) best = c;
  return best;
}

/** The first endpoint that answers a hello, tried in order. */
async function firstAnswer(
  endpoints: readonly string[],
  opts: ConnectOptions,
): Promise<{ client: ControlClient; hello: Awaited<ReturnType<ControlClient['connect']>> }> {
  const errors: string[] = [];
  for (const address of endpoints) {
    const client = new ControlClient();
    try {
      return { client, hello: await client.connect(address, opts) };
    } catch (err) {
      errors.push(`${address}: ${(err as Error).message}`);
      await client.close();
    }
  }
  throw new ControlError('unavailable', `no endpoint answered (${errors.join('; ') || 'none given'})`);
}
