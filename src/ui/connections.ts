// One ControlClient per node. The console starts from the endpoints it was given, learns
// the other members from each hello (and from a periodic `members` poll, so nodes added
// later show up), keeps every connection alive across restarts, and feeds everything the
// nodes send into the store (and the recorder, when recording).

import { ControlClient, ControlError, type TlsOptions } from '../client/client.js';
import { shortReason, tlsHint } from '../client/connect-errors.js';
import type { CommandCall, CommandName, Member } from '../protocol/control.js';
import type { ClusterStore, StoreInput } from './store.js';

/** What the console needs to run commands; the replay has none. */
export interface CommandBackend {
  /** Runs a command on node `node`; rejects with ControlError. */
  command(node: number, call: CommandCall): Promise<unknown>;
  /** Ids with a live connection. */
  connectedIds(): number[];
  close(): Promise<void>;
}

export interface ConnectionsOptions {
  endpoints: string[];
  token?: string;
  /** TLS for every connection, the discovered members' too (their addresses then mean wss://). */
  tls?: TlsOptions;
  /** Period of state frames each node pushes. */
  stateEveryMs?: number;
  /** How often the membership is re-read to find nodes added later. */
  membersEveryMs?: number;
  /** Also receives every store input (for `--record`). */
  record?: (input: StoreInput) => void;
  /** For tests. */
  newClient?: () => ControlClient;
}

interface Conn {
  address: string;
  client: ControlClient;
  /** Known once the hello arrived (or from the membership before that). */
  id: number | undefined;
  retry: ReturnType<typeof setTimeout> | undefined;
  attempts: number;
  /** A first-connect failure was reported; later ones are not repeated. */
  reported: boolean;
}

const RETRY_MAX_MS = 3000;

export class ClusterConnections implements CommandBackend {
  private readonly conns = new Map<string, Conn>();
  private readonly byId = new Map<number, Conn>();
  private readonly opts: ConnectionsOptions;
  private pollTimer: ReturnType<typeof setInterval> | undefined;
  private closed = false;

  constructor(
    private readonly store: ClusterStore,
    opts: ConnectionsOptions,
  ) {
    this.opts = opts;
  }

  start(): void {
    for (const e of this.opts.endpoints) this.add(e, undefined);
    this.pollTimer = setInterval(() => void this.pollMembers(), this.opts.membersEveryMs ?? 2000);
    this.pollTimer.unref?.();
  }

  connectedIds(): number[] {
    return [...this.byId.entries()].filter(([, c]) => c.client.connected).map(([id]) => id);
  }

  command(node: number, call: CommandCall): Promise<unknown> {
    const conn = this.byId.get(node);
    if (conn === undefined || !conn.client.connected) {
      return Promise.reject(new ControlError('unavailable', `n${node} is not connected`));
    }
    // ControlClient.command is typed per command name; a CommandCall pairs name and args
    // already, which the generic signature cannot see through.
    const run = conn.client.command.bind(conn.client) as (
      name: CommandName,
      args: unknown,
    ) => Promise<unknown>;
    return run(call[0], call[1]);
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.pollTimer !== undefined) clearInterval(this.pollTimer);
    await Promise.all(
      [...this.conns.values()].map((c) => {
        if (c.retry !== undefined) clearTimeout(c.retry);
        return c.client.close();
      }),
    );
  }

  private feed(input: StoreInput): void {
    this.store.ingest(input);
    this.opts.record?.(input);
  }

  /** Starts a connection to `address` unless one exists (or node `id` is already connected). */
  private add(address: string, id: number | undefined): void {
    if (this.closed || this.conns.has(address)) return;
    if (id !== undefined && this.byId.has(id)) return;
    const conn: Conn = {
      address,
      client: this.opts.newClient?.() ?? new ControlClient(),
      id,
      retry: undefined,
      attempts: 0,
      reported: false,
    };
    this.conns.set(address, conn);
    if (id !== undefined) this.byId.set(id, conn);
    const c = conn.client;
    c.subscribe({ state: { everyMs: this.opts.stateEveryMs ?? 250 }, events: {} });
    c.on('open', (hello) => {
      const other = this.byId.get(hello.nodeId);
      if (other !== undefined && other !== conn) {
        // Two endpoints reached the same node (e.g. localhost and 127.0.0.1): keep one.
        this.conns.delete(address);
        void c.close();
        return;
      }
      conn.id = hello.nodeId;
      this.byId.set(hello.nodeId, conn);
      this.feed({ type: 'hello', address, hello });
      this.discover(hello.members);
    });
    c.on('close', (info) => {
      if (conn.id !== undefined && !this.closed) {
        this.feed({
          type: 'link',
          node: conn.id,
          status: 'down',
          reason: info.willReconnect ? 'reconnecting' : info.reason,
        });
      }
    });
    c.on('state', (state) => this.feed({ type: 'state', state }));
    c.on('event', (event) => {
      this.feed({ type: 'event', event });
      if (event.kind === 'confchange') void this.pollMembers();
    });
    c.on('lost', (count) => {
      if (conn.id !== undefined) this.feed({ type: 'lost', node: conn.id, count });
    });
    this.connect(conn);
  }

  /** The first connect, retried with backoff; after one success the client reconnects itself. */
  private connect(conn: Conn): void {
    conn.retry = undefined;
    if (this.closed) return;
    conn.client
      .connect(conn.address, {
        ...(this.opts.token !== undefined ? { token: this.opts.token } : {}),
        ...(this.opts.tls !== undefined ? { tls: this.opts.tls } : {}),
        timeoutMs: 3000,
        reconnect: { initialDelayMs: 100, maxDelayMs: 2000 },
      })
      .catch((err: unknown) => {
        if (this.closed) return;
        const why = shortReason(err);
        if (conn.id !== undefined) {
          this.feed({ type: 'link', node: conn.id, status: 'down', address: conn.address, reason: why });
        }
        // Once per member, and for a member the console knows by id only when it failed the way
        // a TLS mistake does: the table already shows it down, the note says what to change.
        const hint = tlsHint(err, this.opts.tls !== undefined);
        if (!conn.reported && (conn.id === undefined || hint !== undefined)) {
          const who = conn.id === undefined ? conn.address : `n${conn.id} at ${conn.address}`;
          this.feed({
            type: 'note',
            level: 'warn',
            text: `cannot reach ${who}: ${why} (retrying)${hint === undefined ? '' : `. ${hint}`}`,
          });
        }
        conn.reported = true;
        if (err instanceof ControlError && (err.code === 'unauthorized' || err.code === 'bad_version')) {
          this.feed({ type: 'note', level: 'error', text: `${conn.address} refused the console: ${why}` });
          return;
        }
        conn.attempts++;
        const delay = Math.min(RETRY_MAX_MS, 100 * 2 ** conn.attempts);
        conn.retry = setTimeout(() => this.connect(conn), delay);
      });
  }

  private discover(members: Member[]): void {
    for (const m of members) {
      if (!this.byId.has(m.id)) this.add(m.address, m.id);
    }
  }

  private async pollMembers(): Promise<void> {
    const ids = this.connectedIds();
    const leader = this.store.currentLeader();
    const id = leader !== undefined && ids.includes(leader) ? leader : ids[0];
    if (id === undefined) return;
    try {
      const members = (await this.command(id, ['members', {}])) as Member[];
      this.feed({ type: 'members', members });
      this.discover(members);
    } catch {
      // The next poll tries again; a failing node shows up as down in the table anyway.
    }
  }
}
