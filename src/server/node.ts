// One raftctl node process: the Raft driver, its disk, its peers and its operators,
// all behind one port. HTTP serves /health, /metrics and the etcd v3 KV gateway;
// WebSocket upgrades go to /raft (peers, binary) or /control (operators, JSON).
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { access, constants } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { createSecureContext } from 'node:tls';
import {
  type CommandArgs,
  type CommandCall,
  CommandError,
  type HelloInfo,
  type NodeEvent,
  type NodeState,
} from '../protocol/control.js';
import { isLoopbackHost } from '../protocol/loopback.js';
import { describeEntry } from '../raft/describe.js';
import { ControlServer, messageEvent, type PutListener, readyEvent } from './control.js';
import { type DriverEvents, type DriverOptions, RaftDriver, roleOf } from './driver.js';
import { createHttpHandler, type HealthReport, type HttpApi } from './http.js';
import { describeKvData, type KvResult, KvStore } from './kv.js';
import { hugePagesAdvice, transparentHugePageMode } from './launch-env.js';
import { createLogger, type LogLevel } from './log.js';
import { createRaftMetrics, registerProcessMetrics } from './metrics.js';
import { DataDirLockedError, type DirLock, lockDataDir } from './storage/dir-lock.js';
import { DiskStorage } from './storage/disk-storage.js';
import { type Fault, Transport } from './transport/transport.js';

/** The Raft and timing settings pass straight through to the driver. */
type DriverSettings = Pick<
  DriverOptions,
  | 'id'
  | 'join'
  | 'tickMs'
  | 'electionTicks'
  | 'heartbeatTicks'
  | 'preVote'
  | 'checkQuorum'
  | 'snapshotEvery'
  | 'snapshotBytes'
  | 'snapshotCatchUpWrites'
  | 'requestTimeoutMs'
  | 'commitHoldMs'
>;

export interface NodeOptions extends DriverSettings {
  listen: { host: string; port: number };
  /** Members of a new cluster (id → host:port), this node included. */
  peers: Map<number, string>;
  dataDir: string;
  cluster: string;
  /** The cluster token: peers and operators must present it. Required beyond loopback. */
  token?: string;
  /** Start without a token although listening beyond loopback (dangerous; see README). */
  insecure?: boolean;
  /**
   * Serve HTTPS/WSS with this certificate and key, and dial peers over WSS. With `ca`, every
   * connection (peers, operators, HTTP) must present a certificate signed by it (mutual TLS),
   * and peers' certificates are verified against it.
   */
  tls?: { cert: string | Buffer; key: string | Buffer; ca?: string | Buffer };
  allowFaults: boolean;
  logLevel: LogLevel;
  /** Also log to stderr (the file in the data dir always gets every line). */
  logToStderr: boolean;
}

/** A failure to start that the operator can fix; its message says how. */
export class StartupError extends Error {
  override name = 'StartupError';
}

export interface RunningNode {
  readonly address: string;
  readonly driver: RaftDriver;
  /** Resolves when the node has stopped (removed, fatal error, or stop()). */
  readonly stopped: Promise<{ reason: string; code: number }>;
  /** Stops gracefully: new requests are refused, a leader hands leadership to a caught-up voter, requests in flight finish. */
  stop(reason?: string): Promise<void>;
}

const EVENT_LOG_LIMIT = 2000;

export async function startNode(opts: NodeOptions): Promise<RunningNode> {
  // Checked before anything touches the disk: a refused start leaves no trace.
  checkSecurity(opts);
  await prepareDataDir(opts.dataDir);
  let staleLock: string | undefined;
  const lock = lockDir(opts.dataDir, (message) => {
    staleLock = message;
  });
  // From here on the node owns the dir until stop(); a start that fails lets it go.
  try {
    return await startLocked(opts, lock, staleLock);
  } catch (err) {
    lock.release();
    throw err;
  }
}

async function startLocked(
  opts: NodeOptions,
  lock: DirLock,
  staleLock: string | undefined,
): Promise<RunningNode> {
  checkClusterIdentity(opts);
  const recentLog: { level: string; component: string; message: string; at: number }[] = [];
  let publish: ((ev: DistributiveOmit<NodeEvent, 'seq' | 'at' | 'node'>) => void) | undefined;
  const logger = createLogger({
    level: opts.logLevel,
    file: join(opts.dataDir, 'node.log'),
    stderr: opts.logToStderr,
    onLine: (l) => {
      recentLog.push({ ...l, at: Date.now() });
      if (recentLog.length > EVENT_LOG_LIMIT) recentLog.splice(0, recentLog.length - EVENT_LOG_LIMIT);
      if (l.level !== 'debug')
        publish?.({ kind: 'log', level: l.level, message: `[${l.component}] ${l.message}` });
    },
  });
  logger.info(
    `starting node ${opts.id} of cluster ${opts.cluster} on ${opts.listen.host}:${opts.listen.port}`,
  );
  if (staleLock !== undefined) logger.warn(staleLock);
  const hugePages = hugePagesAdvice(process.env, transparentHugePageMode());
  if (hugePages !== undefined) logger.info(hugePages);
  if (opts.token === undefined && !isLoopbackHost(opts.listen.host)) {
    logger.warn(
      `--insecure: no cluster token although listening on ${opts.listen.host}; anyone who can reach this port can read and change the data and the membership`,
    );
  }

  let storage: DiskStorage;
  try {
    storage = await DiskStorage.open(opts.dataDir, { logger: logger.child('wal') });
  } catch (err) {
    logger.error((err as Error).message);
    throw new StartupError((err as Error).message);
  }

  const kv = new KvStore();
  const metrics = createRaftMetrics();
  const stopProcessMetrics = registerProcessMetrics(metrics.registry);
  // Filled in below: the transport and the driver refer to each other.
  let driver: RaftDriver | undefined;
  const transport = new Transport({
    id: opts.id,
    clusterId: opts.cluster,
    token: opts.token,
    ...(opts.tls === undefined ? {} : { tls: opts.tls }),
    logger: logger.child('transport'),
    onMessage: (m) => driver?.step(m),
    onUnreachable: (id) => driver?.reportUnreachable(id),
    onPeerLost: (id) => driver?.peerLost(id),
    onSnapshotStatus: (id, ok) => driver?.reportSnapshot(id, ok),
    // A snapshot the storage holds on disk only goes from its file, a chunk at a time.
    openSnapshotData: (metadata) => storage.openSnapshotData(metadata),
    isRemoved: (id) => kv.isRemoved(id),
    // Removed while it was down or cut off: it may never rejoin under this id (as in etcd).
    onRemoved: (byPeer) =>
      void stop(
        `this node was removed from the cluster (peer ${byPeer} refused it with 410 Gone); ` +
          `its id may not rejoin: to serve again, add a new member with another id and an empty --data-dir`,
        0,
      ),
  });

  let seq = 0;
  let control: ControlServer | undefined;
  const stamp = () => ({ seq: ++seq, at: Date.now(), node: opts.id });
  publish = (ev) => {
    control?.publish({ ...ev, ...stamp() } as NodeEvent);
  };
  const events: Partial<DriverEvents> = {
    ready: (rd) => control?.publish(readyEvent(stamp(), rd, describeKvData)),
    message: (m) => control?.publish(messageEvent(stamp(), m, 'out', describeKvData)),
    leader: (leader, term) => publish?.({ kind: 'leader', leader, term }),
    election: (term, role) => publish?.({ kind: 'election', term, role }),
    confchange: (change, cs) => publish?.({ kind: 'confchange', change, confState: cs }),
    snapshot: (op, index, term) => publish?.({ kind: 'snapshot', op, index, term }),
    apply: (e) =>
      publish?.({ kind: 'apply', index: e.index, term: e.term, op: describeEntry(e, describeKvData) }),
  };

  let resolveStopped!: (v: { reason: string; code: number }) => void;
  const stopped = new Promise<{ reason: string; code: number }>((r) => {
    resolveStopped = r;
  });
  let stopping = false;
  let server: Server | undefined;
  /** `graceful`: new requests are refused, a leader passes leadership on, requests in flight finish. */
  const stop = async (reason = 'stopped by request', code = 0, graceful = false): Promise<void> => {
    if (stopping) return;
    stopping = true;
    logger.info(`stopping: ${reason}`);
    if (graceful) await driver?.drain((id) => transport.health().get(id)?.connected === true);
    await driver?.stop();
    await control?.close();
    await transport.close();
    await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
    server?.closeAllConnections();
    await storage.close();
    stopProcessMetrics();
    lock.release();
    logger.info('stopped');
    resolveStopped({ reason, code });
  };

  driver = new RaftDriver({
    id: opts.id,
    tickMs: opts.tickMs,
    electionTicks: opts.electionTicks,
    heartbeatTicks: opts.heartbeatTicks,
    preVote: opts.preVote,
    checkQuorum: opts.checkQuorum,
    snapshotEvery: opts.snapshotEvery,
    snapshotBytes: opts.snapshotBytes,
    snapshotCatchUpWrites: opts.snapshotCatchUpWrites,
    requestTimeoutMs: opts.requestTimeoutMs,
    ...(opts.commitHoldMs === undefined ? {} : { commitHoldMs: opts.commitHoldMs }),
    storage,
    kv,
    transport,
    logger,
    initialPeers: opts.peers,
    join: opts.join,
    onRemoved: () => void stop('this node was removed from the cluster', 0),
    onFatal: (err) => void stop(`fatal: ${err.message}`, 1),
    events,
    wantsEvents: (kind) => control?.wants(kind) ?? false,
    metrics,
  });
  const d = driver;
  // A snapshot file found damaged when it was to be sent is replaced at once: a follower
  // behind the log could otherwise never catch up in a quiet cluster.
  storage.onSnapshotDamaged((metadata) => d.replaceDamagedSnapshot(metadata));

  const state = (): NodeState => nodeState(opts, d, storage, kv, transport);
  const execContext: ExecContext = { opts, driver: d, kv, transport, state, recentLog, publish };
  const api = {
    allowFaults: opts.allowFaults,
    hello: (): HelloInfo => ({ nodeId: opts.id, clusterId: opts.cluster, members: members(kv, d) }),
    state,
    execute: (...call: CommandCall) => execute(call, execContext),
    putBytes: (key: Uint8Array, value: Uint8Array, listener: PutListener): void =>
      d.proposePut(key, value, listener),
  };
  control = new ControlServer({ api, logger: logger.child('control'), token: opts.token });

  metrics.registry.onCollect(() => {
    const st = d.rawNode.raft;
    metrics.term.set(st.term);
    metrics.commitIndex.set(st.raftLog.committed);
    metrics.appliedIndex.set(st.raftLog.applied);
    metrics.proposals.set(d.stats.proposals.ok, { result: 'ok' });
    metrics.proposals.set(d.stats.proposals.dropped, { result: 'dropped' });
    metrics.proposals.set(d.stats.proposals.timeout, { result: 'timeout' });
    metrics.leaderChanges.set(d.stats.leaderChanges);
    for (const [type, n] of d.stats.sent) metrics.messagesSent.set(n, { type });
    for (const [type, n] of d.stats.received) metrics.messagesReceived.set(n, { type });
    metrics.snapshots.set(d.stats.snapshots.created, { kind: 'created' });
    metrics.snapshots.set(d.stats.snapshots.restored, { kind: 'restored' });
  });
  const httpApi: HttpApi = {
    clusterId: opts.cluster,
    memberId: opts.id,
    metrics: metrics.registry,
    health: (): HealthReport => {
      const r = d.rawNode.raft;
      return {
        health: r.lead === 0 ? 'no_leader' : 'ok',
        id: opts.id,
        role: roleOf(r.state),
        term: r.term,
        leader: r.lead,
        commit: r.raftLog.committed,
        applied: r.raftLog.applied,
      };
    },
    put: async (key, value, prevKv) => {
      const res = await d.propose(
        prevKv ? { op: 'put', key, value } : { op: 'put', key, value, prevKv: false },
      );
      if (res.op !== 'put') throw new Error('unexpected result');
      return { revision: res.revision, term: d.rawNode.raft.term, prev: res.prev };
    },
    range: async (key, rangeEnd, { limit, serializable }) => {
      if (!serializable) await d.linearizableBarrier();
      const all = kv.range(key, rangeEnd);
      return {
        revision: kv.revision,
        term: d.rawNode.raft.term,
        kvs: limit > 0 ? all.slice(0, limit) : all,
        count: all.length,
      };
    },
    deleteRange: async (key, prevKv) => {
      const res = await d.propose(prevKv ? { op: 'delete', key } : { op: 'delete', key, prevKv: false });
      if (res.op !== 'delete') throw new Error('unexpected result');
      return { revision: res.revision, term: d.rawNode.raft.term, deleted: res.deleted, prev: res.prev };
    },
  };
  const handler = createHttpHandler(httpApi, {
    logger: logger.child('http'),
    ...(opts.token === undefined ? {} : { token: opts.token }),
  });
  if (opts.tls === undefined) server = createServer(handler);
  else {
    const mutual = opts.tls.ca !== undefined;
    server = createHttpsServer(
      {
        cert: opts.tls.cert,
        key: opts.tls.key,
        ...(mutual ? { ca: opts.tls.ca, requestCert: true, rejectUnauthorized: true } : {}),
      },
      handler,
    );
    server.on('tlsClientError', (err: Error, socket: { remoteAddress?: string }) =>
      logger.warn(`tls: refused a connection from ${socket.remoteAddress ?? '?'}: ${err.message}`),
    );
  }
  server.on('upgrade', (req, socket: Duplex, head: Buffer) => {
    const path = (req.url ?? '').split('?')[0];
    if (path === '/raft') transport.handleUpgrade(req, socket, head);
    else if (path === '/control') control?.handleUpgrade(req, socket, head);
    else {
      socket.end(
        'HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\n\r\nno such endpoint: use /raft or /control\n',
      );
    }
  });
  await listen(server, opts.listen.host, opts.listen.port).catch(async (err: Error) => {
    await storage.close();
    stopProcessMetrics();
    logger.error(err.message);
    throw err;
  });
  const address = `${opts.listen.host}:${opts.listen.port}`;
  const scheme =
    opts.tls === undefined
      ? 'plain'
      : opts.tls.ca === undefined
        ? 'TLS'
        : 'TLS, client certificates required';
  logger.info(`listening on ${address} (${scheme}; /raft, /control, /health, /metrics, /v3/kv)`);
  driver.start();
  return { address, driver, stopped, stop: (reason) => stop(reason, 0, true) };
}

/**
 * Refuses a start that would expose the node without protection: beyond loopback, a token
 * is required unless the operator explicitly chose --insecure. Also checks the TLS material.
 */
function checkSecurity(opts: NodeOptions): void {
  const where = `${opts.listen.host}:${opts.listen.port}`;
  if (opts.token === '') {
    throw new StartupError(
      'the cluster token is empty: set a real secret with --token SECRET or RAFTCTL_TOKEN',
    );
  }
  if (opts.token === undefined && !opts.insecure && !isLoopbackHost(opts.listen.host)) {
    throw new StartupError(
      `refusing to listen on ${where} without a cluster token: anyone who can reach it could read and change ` +
        'the data and the membership. Set a token (the same on every node, and for operators) with ' +
        '--token SECRET or the RAFTCTL_TOKEN environment variable (which keeps it out of `ps`), listen on ' +
        'a loopback address such as 127.0.0.1, or pass --insecure to run without one (dangerous: only on a ' +
        'network where every host is trusted)',
    );
  }
  if (opts.tls !== undefined) {
    try {
      createSecureContext({
        cert: opts.tls.cert,
        key: opts.tls.key,
        ...(opts.tls.ca === undefined ? {} : { ca: opts.tls.ca }),
      });
    } catch (err) {
      throw new StartupError(
        `invalid TLS material (--tls-cert/--tls-key/--tls-ca): ${(err as Error).message}; ` +
          'give PEM files of a certificate, its private key and the CA that signed the peers',
      );
    }
  }
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

async function prepareDataDir(dir: string): Promise<void> {
  try {
    mkdirSync(dir, { recursive: true });
    await access(dir, constants.R_OK | constants.W_OK);
  } catch (err) {
    throw new StartupError(
      `cannot use data dir ${dir}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}; ` +
        'choose a directory you can write with --data-dir',
    );
  }
}

/** Takes the data dir for this process (see storage/dir-lock.ts); a refusal says whose it is. */
function lockDir(dir: string, onStale: (message: string) => void): DirLock {
  try {
    return lockDataDir(dir, onStale);
  } catch (err) {
    if (err instanceof DataDirLockedError) throw new StartupError(err.message);
    throw new StartupError(`cannot lock data dir ${dir}: ${(err as Error).message}`);
  }
}

/** A data dir belongs to one cluster and one node id; refuse to start it as another. */
function checkClusterIdentity(opts: NodeOptions): void {
  const file = join(opts.dataDir, 'identity.json');
  let existing: { cluster?: string; id?: number } | undefined;
  try {
    existing = JSON.parse(readFileSync(file, 'utf8')) as { cluster?: string; id?: number };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new StartupError(`cannot read ${file}: ${(err as Error).message}`);
    }
  }
  if (existing) {
    if (existing.cluster !== opts.cluster || existing.id !== opts.id) {
      throw new StartupError(
        `data dir ${opts.dataDir} belongs to node ${existing.id} of cluster ${existing.cluster}, not node ${opts.id} of cluster ${opts.cluster}: ` +
          'use the matching --id/--cluster, or another --data-dir',
      );
    }
    return;
  }
  writeFileSync(file, `${JSON.stringify({ cluster: opts.cluster, id: opts.id })}\n`);
}

function listen(server: Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      server.off('listening', onListening);
      if (err.code === 'EADDRINUSE') {
        reject(
          new StartupError(
            `port ${port} on ${host} is already in use: stop the process using it (e.g. \`lsof -i :${port}\`) or choose another --listen address`,
          ),
        );
      } else if (err.code === 'EADDRNOTAVAIL' || err.code === 'ENOTFOUND') {
        reject(
          new StartupError(
            `cannot listen on ${host}:${port}: ${err.code} (is ${host} an address of this machine?)`,
          ),
        );
      } else if (err.code === 'EACCES') {
        reject(new StartupError(`not allowed to listen on ${host}:${port}: choose a port above 1023`));
      } else reject(err);
    };
    const onListening = () => {
      server.off('error', onError);
      resolve();
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen(port, host);
  });
}

/**
 * A write's answer: the replaced entry only when asked for (as etcd's prev_kv), since it
 * carries a whole value back to the client that rarely wants it.
 */
function withoutPrev(res: KvResult, prevKv: boolean | undefined, term: number): KvResult & { term: number } {
  // Built field by field: this is every write's answer, and spreads cost more.
  switch (res.op) {
    case 'put':
      return prevKv === true && res.prev !== undefined
        ? { op: 'put', revision: res.revision, prev: res.prev, term }
        : { op: 'put', revision: res.revision, term };
    case 'delete':
      return prevKv === true && res.prev !== undefined
        ? { op: 'delete', revision: res.revision, deleted: res.deleted, prev: res.prev, term }
        : { op: 'delete', revision: res.revision, deleted: res.deleted, term };
    case 'cas':
      return { ...res, term };
  }
}

function members(kv: KvStore, d: RaftDriver): HelloInfo['members'] {
  const cs = d.rawNode.raft.trk.confState();
  const ids = new Set([...cs.voters, ...cs.learners, ...cs.votersOutgoing]);
  return [...ids]
    .sort((a, b) => a - b)
    .map((id) => ({ id, address: kv.members.get(id)?.address ?? '', learner: cs.learners.includes(id) }));
}

function nodeState(
  opts: NodeOptions,
  d: RaftDriver,
  storage: DiskStorage,
  kv: KvStore,
  t: Transport,
): NodeState {
  const r = d.rawNode.raft;
  const cs = r.trk.confState();
  const st: NodeState = {
    id: opts.id,
    role: roleOf(r.state),
    term: r.term,
    vote: r.vote,
    leader: r.lead,
    commit: r.raftLog.committed,
    applied: r.raftLog.applied,
    lastIndex: r.raftLog.lastIndex(),
    firstIndex: r.raftLog.firstIndex(),
    leadTransferee: r.leadTransferee,
    config: {
      voters: cs.voters,
      votersOutgoing: cs.votersOutgoing,
      learners: cs.learners,
      learnersNext: cs.learnersNext,
      autoLeave: cs.autoLeave,
    },
    transport: [...t.health()].map(([peer, h]) => ({
      peer,
      address: h.address,
      connected: h.connected,
      queued: h.queued,
      ...(h.lastError === undefined ? {} : { lastError: h.lastError }),
    })),
    faults: t.faults().map((f) => ({ ...f })),
    snapshotIndex: storage.storage.snapshotMetadata.index,
    kvKeys: kv.size,
    at: Date.now(),
  };
  if (r.state === 'StateLeader') {
    st.progress = [];
    r.trk.visit((id, pr) => {
      st.progress!.push({
        id,
        match: pr.match,
        next: pr.next,
        state: pr.state,
        inflight: pr.inflights.count(),
        paused: pr.isPaused(),
        recentActive: pr.recentActive,
        learner: pr.isLearner,
        pendingSnapshot: pr.pendingSnapshot,
      });
    });
  }
  return st;
}

interface ExecContext {
  opts: NodeOptions;
  driver: RaftDriver;
  kv: KvStore;
  transport: Transport;
  state: () => NodeState;
  recentLog: { level: string; component: string; message: string; at: number }[];
  publish: ((ev: DistributiveOmit<NodeEvent, 'seq' | 'at' | 'node'>) => void) | undefined;
}

function execute(call: CommandCall, ctx: ExecContext): Promise<unknown> {
  // A put is most of a busy node's traffic. It gets an async function of its own: every
  // await saves its function's whole frame, and this switch's frame is large.
  if (call[0] === 'put') return put(ctx.driver, call[1]);
  return executeOther(call, ctx);
}

async function put(d: RaftDriver, args: CommandArgs<'put'>): Promise<unknown> {
  const { key, value, prevKv, clientId, seq } = args;
  // The replaced entry is kept in the result (and so in every replica's sessions) only when asked for.
  const res = await d.propose(
    prevKv === true
      ? { op: 'put', key, value, clientId, seq }
      : { op: 'put', key, value, clientId, seq, prevKv: false },
  );
  return withoutPrev(res, prevKv, d.rawNode.raft.term);
}

async function executeOther(call: CommandCall, ctx: ExecContext): Promise<unknown> {
  const { driver: d, kv } = ctx;
  const term = () => d.rawNode.raft.term;
  switch (call[0]) {
    case 'status':
      return ctx.state();
    case 'members':
      return members(kv, d);
    case 'campaign': {
      // A plain MsgHup on a follower of a healthy leader is ignored by PreVote and the
      // leader lease (that is their point). An operator who asks this node to campaign
      // wants it to lead, so ask the leader to hand over: it catches us up and sends
      // MsgTimeoutNow, and our forced election is one the lease does not block.
      const leader = d.leader;
      const viaTransfer = !call[1].hup && leader !== 0 && leader !== ctx.opts.id;
      if (viaTransfer) d.transferLeadership(ctx.opts.id);
      else d.campaign();
      return {
        term: term(),
        role: roleOf(d.rawNode.raft.state),
        via: viaTransfer ? 'transfer' : 'hup',
        leader,
      };
    }
    case 'transfer': {
      const to = call[1].to;
      if (!d.rawNode.raft.trk.config.voters.ids().includes(to)) {
        throw new CommandError('bad_args', `node ${to} is not a voter of this cluster`);
      }
      d.transferLeadership(to);
      return { to, leader: d.leader, term: term() };
    }
    case 'forget-leader':
      d.forgetLeader();
      return { leader: d.leader };
    case 'propose': {
      const key = `proposal/${Date.now().toString(36)}`;
      return withoutPrev(
        await d.propose({ op: 'put', key, value: call[1].data, prevKv: false }),
        false,
        term(),
      );
    }
    case 'get': {
      if (!call[1].serializable) await d.linearizableBarrier();
      const e = kv.get(call[1].key);
      return {
        key: call[1].key,
        found: e !== undefined,
        ...(e ? { value: e.value, modRevision: e.modRevision } : {}),
        revision: kv.revision,
      };
    }
    case 'delete': {
      const { key, prevKv, clientId, seq } = call[1];
      const cmd =
        prevKv === true
          ? { op: 'delete' as const, key, clientId, seq }
          : { op: 'delete' as const, key, clientId, seq, prevKv: false as const };
      return withoutPrev(await d.propose(cmd), prevKv, term());
    }
    case 'cas': {
      const res = await d.propose({ op: 'cas', ...call[1] });
      return { ...res, term: term() };
    }
    case 'read-index': {
      await d.linearizableBarrier();
      return { applied: d.rawNode.raft.raftLog.applied };
    }
    case 'member-add': {
      const { id, address, learner } = call[1];
      // As in etcd: peers refuse a removed id (410 Gone), so it could never serve again.
      if (kv.isRemoved(id)) {
        throw new CommandError(
          'bad_args',
          `node ${id} was removed from the cluster and its id may not be reused: add the new member under another id`,
        );
      }
      const cs = await d.changeMembership(
        [{ type: learner ? 'ConfChangeAddLearnerNode' : 'ConfChangeAddNode', nodeId: id }],
        address,
      );
      return { confState: cs };
    }
    case 'member-remove': {
      const cs = await d.changeMembership([{ type: 'ConfChangeRemoveNode', nodeId: call[1].id }]);
      return { confState: cs };
    }
    case 'member-promote': {
      const id = call[1].id;
      if (!d.rawNode.raft.trk.confState().learners.includes(id)) {
        throw new CommandError('bad_args', `node ${id} is not a learner`);
      }
      const cs = await d.changeMembership([{ type: 'ConfChangeAddNode', nodeId: id }]);
      return { confState: cs };
    }
    case 'snapshot':
      return await d.snapshotNow();
    case 'fault': {
      const f = call[1] as Fault;
      try {
        ctx.transport.setFault(f);
      } catch (err) {
        throw new CommandError('bad_args', (err as Error).message);
      }
      ctx.publish?.({ kind: 'fault', fault: call[1] });
      return { faults: ctx.transport.faults() };
    }
    case 'log': {
      const limit = call[1].limit ?? 100;
      return ctx.recentLog.slice(-limit);
    }
  }
}
