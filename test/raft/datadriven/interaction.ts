// The interaction language of etcd's Raft data-driven tests, run against our core.
//
// An InteractionEnv is a small simulated cluster: RawNodes backed by MemoryStorage, a
// network that is just a queue of in-flight messages, and (for nodes with async storage
// writes) per-node queues standing in for the append and apply threads. Scripts drive it
// one step at a time (tick, campaign, process a Ready, deliver messages, ...) and the env
// prints what happened in the textual forms of describe.ts, interleaved with the core's
// log lines. Output nested under a `> N ...` header is indented by two spaces, log lines
// included, so that a long `stabilize` reads as a transcript per node.
//
// Commands (node ids are 1-based; `N...` means a list of node ids):
//   log-level LEVEL                      debug|info|warn|error|fatal|none; none hides all output
//   add-nodes COUNT [voters=(..) learners=(..) index=I content=S inflight=N
//                    async-storage-writes= prevote= checkquorum= read-only=safe|lease-based
//                    max-committed-size-per-ready=N disable-conf-change-validation=
//                    step-down-on-removal=]
//   campaign N | tick-election N | tick-heartbeat N | forget-leader N
//   propose N DATA | propose-conf-change N [v1=bool transition=auto|implicit|explicit] + `v2 l3 r4` input
//   read-index N CTX                     requests a linearizable read (not in etcd's env)
//   process-ready N... | process-append-thread N... | process-apply-thread N...
//   deliver-msgs [type=MsgX] [drop=(ids)] N...
//   stabilize [N...] [log-level=LEVEL]
//   raft-log N | raft-state | status N | compact N INDEX
//   lead-transferee N                    the leadership transfer N has in progress, if any
//                                        (not in etcd's env, whose status prints progress only)
//   transfer-leadership from=N to=M | report-unreachable N M | send-snapshot N M
//   set-randomized-election-timeout N timeout=T

import { confChangesFromString, decodeConfChangeEntry } from '../../../src/raft/confchange-codec.js';
import { describeEntries, describeMessage, describeReady } from '../../../src/raft/describe.js';
import { RaftError } from '../../../src/raft/errors.js';
import { type Logger, RaftPanic } from '../../../src/raft/logger.js';
import { progressMapToString } from '../../../src/raft/progress.js';
import { RawNode } from '../../../src/raft/rawnode.js';
import { MemoryStorage, type Storage } from '../../../src/raft/storage.js';
import {
  type AnyConfChange,
  type ConfChangeTransition,
  type ConfState,
  type Entry,
  emptyConfState,
  type HardState,
  isEmptyHardState,
  isEmptySnapshot,
  isLocalThread,
  LOCAL_APPEND_THREAD,
  LOCAL_APPLY_THREAD,
  MESSAGE_TYPES,
  type Message,
  type MessageType,
  type Snapshot,
} from '../../../src/raft/types.js';
import { argBool, argInt, argValues, type Directive, parseIntStrict, positionals } from './parse.js';

type RaftConfig = ConstructorParameters<typeof RawNode>[0];

const LOG_LEVELS = ['DEBUG', 'INFO', 'WARN', 'ERROR', 'FATAL', 'NONE'] as const;
const DEBUG = 0;
const INFO = 1;
const WARN = 2;
const ERROR = 3;
const NONE = LOG_LEVELS.length - 1;

function parseLogLevel(name: string): number {
  const level = LOG_LEVELS.indexOf(name.toUpperCase() as (typeof LOG_LEVELS)[number]);
  if (level < 0) throw new Error(`unknown log level ${name}; expected one of ${LOG_LEVELS.join(', ')}`);
  return level;
}

/**
 * The text a command produces. Level NONE silences everything, not just log lines: it
 * lets a script set up a cluster without printing the (long and uninteresting) transcript.
 */
class Output {
  level = DEBUG;
  private lines: string[] = [];
  private indent = '';

  get quiet(): boolean {
    return this.level === NONE;
  }

  /** Writes one or more lines; a trailing newline is optional. */
  write(text: string): void {
    if (this.quiet) return;
    const lines = text.split('\n');
    if (lines.at(-1) === '') lines.pop();
    for (const l of lines) this.lines.push(this.indent + l);
  }

  log(level: number, msg: string): void {
    if (level >= this.level) this.write(`${LOG_LEVELS[level]} ${msg}`);
  }

  /** Runs f with its output (log lines included) indented under a header. */
  section(header: string, f: () => void): void {
    this.write(header);
    const outer = this.indent;
    this.indent += '  ';
    try {
      f();
    } finally {
      this.indent = outer;
    }
  }

  take(): string {
    const text = this.lines.join('\n');
    this.lines = [];
    this.indent = '';
    return text;
  }
}

/**
 * Reproducible randomness for election timeouts (mulberry32), one stream per node so
 * that adding a node does not change the timeouts of the others.
 */
function seededRandom(seed: number): (n: number) => number {
  let state = seed >>> 0;
  return (n) => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 2 ** 32) * n);
  };
}

/**
 * The node's storage as the core sees it: a MemoryStorage, except that snapshot() is the
 * node's latest applied state. MemoryStorage only knows snapshots someone explicitly
 * created; the env instead lets a leader always ship what it has applied, so scripts can
 * exercise snapshot catch-up without managing snapshots by hand.
 */
class AppliedStateStorage implements Storage {
  constructor(
    private readonly mem: MemoryStorage,
    private readonly latest: () => Snapshot,
  ) {}

  initialState(): { hardState: HardState; confState: ConfState } {
    return this.mem.initialState();
  }
  entries(lo: number, hi: number, maxSize: number): Entry[] {
    return this.mem.entries(lo, hi, maxSize);
  }
  term(i: number): number {
    return this.mem.term(i);
  }
  lastIndex(): number {
    return this.mem.lastIndex();
  }
  firstIndex(): number {
    return this.mem.firstIndex();
  }
  snapshot(): Snapshot {
    return this.latest();
  }
}

class SimNode {
  readonly appendWork: Message[] = [];
  readonly applyWork: Message[] = [];
  readonly rawNode: RawNode;

  constructor(
    readonly id: number,
    readonly config: RaftConfig,
    readonly storage: MemoryStorage,
    /**
     * The state machine after each applied entry (the first element is the state the
     * node started from). The state machine just concatenates the applied payloads.
     */
    readonly history: Snapshot[],
  ) {
    this.rawNode = new RawNode(config);
  }

  get asyncWrites(): boolean {
    return this.config.asyncStorageWrites === true;
  }

  latestState(): Snapshot {
    return this.history.at(-1)!;
  }
}

interface Recipient {
  id: number;
  /** Drop the messages instead of delivering them (a network partition). */
  drop: boolean;
}

/** Messages that never cross the network; dropping messages to a node keeps these. */
function staysOnNode(m: Message): boolean {
  return m.from === m.to || isLocalThread(m.from) || isLocalThread(m.to);
}

function concatBytes(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (b.length === 0) return a;
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

const TRANSITIONS: Readonly<Record<string, ConfChangeTransition>> = {
  auto: 'ConfChangeTransitionAuto',
  implicit: 'ConfChangeTransitionJointImplicit',
  explicit: 'ConfChangeTransitionJointExplicit',
};

/** Guards stabilize against a core that never settles: better a failed test than a hang. */
const MAX_STABILIZE_ROUNDS = 10_000;

export class InteractionEnv {
  private readonly out = new Output();
  private readonly nodes: SimNode[] = [];
  /** The network: messages sent and not yet delivered or dropped, in send order. */
  private messages: Message[] = [];
  private readonly logger: Logger;

  private readonly commands: ReadonlyMap<string, (d: Directive) => void> = new Map<
    string,
    (d: Directive) => void
  >([
    ['_breakpoint', () => {}],
    ['log-level', (d) => this.setLogLevel(d)],
    ['add-nodes', (d) => this.addNodes(d)],
    ['campaign', (d) => this.nodeArg(d).rawNode.campaign()],
    ['tick-election', (d) => this.tick(d, (n) => n.config.electionTick)],
    ['tick-heartbeat', (d) => this.tick(d, (n) => n.config.heartbeatTick)],
    ['forget-leader', (d) => this.nodeArg(d).rawNode.forgetLeader()],
    ['propose', (d) => this.propose(d)],
    ['propose-conf-change', (d) => this.proposeConfChange(d)],
    ['read-index', (d) => this.readIndex(d)],
    ['process-ready', (d) => this.forEachNode(d, 'handling Ready', (n) => this.processReady(n))],
    [
      'process-append-thread',
      (d) => this.forEachNode(d, 'processing append thread', (n) => this.processAppendThread(n)),
    ],
    [
      'process-apply-thread',
      (d) => this.forEachNode(d, 'processing apply thread', (n) => this.processApplyThread(n)),
    ],
    ['deliver-msgs', (d) => this.deliverMsgs(d)],
    ['stabilize', (d) => this.stabilizeCmd(d)],
    ['raft-log', (d) => this.printRaftLog(this.nodeArg(d))],
    ['raft-state', () => this.printRaftState()],
    ['status', (d) => this.printStatus(d)],
    ['lead-transferee', (d) => this.printLeadTransferee(this.nodeArg(d))],
    ['compact', (d) => this.compact(d)],
    ['transfer-leadership', (d) => this.transferLeadership(d)],
    ['report-unreachable', (d) => this.reportUnreachable(d)],
    ['send-snapshot', (d) => this.sendSnapshot(d)],
    ['set-randomized-election-timeout', (d) => this.setRandomizedElectionTimeout(d)],
  ]);

  constructor() {
    const out = this.out;
    this.logger = {
      debug: (msg) => out.log(DEBUG, msg),
      info: (msg) => out.log(INFO, msg),
      warn: (msg) => out.log(WARN, msg),
      error: (msg) => out.log(ERROR, msg),
      panic: (msg) => {
        throw new RaftPanic(msg);
      },
    };
  }

  /**
   * Runs one directive and returns its output. An error ends the command; its message
   * follows whatever the command printed before failing (and is shown even when the
   * log level is NONE). An empty result means "ok".
   */
  handle(d: Directive): string {
    this.out.take();
    const command = this.commands.get(d.cmd);
    let failure: string | undefined;
    try {
      if (command === undefined) throw new Error(`unknown command ${d.cmd}`);
      command(d);
    } catch (err) {
      failure = err instanceof Error ? err.message : String(err);
    }
    if (this.out.quiet) {
      this.out.take();
      return failure ?? '';
    }
    if (failure !== undefined) this.out.write(failure);
    return this.out.take();
  }

  // --- arguments ----------------------------------------------------------------------

  private node(id: number): SimNode {
    const n = this.nodes[id - 1];
    if (n === undefined) throw new Error(`node ${id} does not exist`);
    return n;
  }

  private nodeIds(d: Directive): number[] {
    return positionals(d).map(parseIntStrict);
  }

  /** The node named by the first positional argument. */
  private nodeArg(d: Directive): SimNode {
    const [id] = positionals(d);
    if (id === undefined) throw new Error(`${d.cmd}: a node id is required`);
    return this.node(parseIntStrict(id));
  }

  /** Nodes named by the arguments, or all of them when none is named. */
  private nodesArgOrAll(d: Directive): SimNode[] {
    const ids = this.nodeIds(d);
    return ids.length === 0 ? [...this.nodes] : ids.map((id) => this.node(id));
  }

  /**
   * Runs f for each named node. With several nodes each gets a `> N <what>` header and
   * its output is indented; a single node's output is printed as is.
   */
  private forEachNode(d: Directive, what: string, f: (n: SimNode) => void): void {
    const nodes = this.nodeIds(d).map((id) => this.node(id));
    if (nodes.length === 0) throw new Error(`${d.cmd}: at least one node id is required`);
    for (const n of nodes) {
      if (nodes.length === 1) f(n);
      else this.out.section(`> ${n.id} ${what}`, () => f(n));
    }
  }

  // --- setup --------------------------------------------------------------------------

  private setLogLevel(d: Directive): void {
    const [name] = positionals(d);
    if (name === undefined) throw new Error('log-level: a level is required');
    this.out.level = parseLogLevel(name);
  }

  /**
   * Adds nodes with the next free ids. With voters/learners/index/content the nodes are
   * bootstrapped from a snapshot at `index` (term 1) holding that configuration, as if
   * the cluster had already run that far; otherwise they start empty and must be caught
   * up by a leader.
   */
  private addNodes(d: Directive): void {
    const [countArg, ...extra] = positionals(d);
    if (countArg === undefined || extra.length > 0) throw new Error('add-nodes: expected a node count');
    const count = parseIntStrict(countArg);

    const confState = emptyConfState();
    let index = 0;
    let data = new Uint8Array(0);
    let bootstrap = false;
    // The defaults of etcd's interaction env: short timeouts and no flow control, so that
    // scripts only see throttling when they ask for it.
    const settings: Omit<RaftConfig, 'id' | 'storage'> = {
      electionTick: 3,
      heartbeatTick: 1,
      maxSizePerMsg: Infinity,
      maxInflightMsgs: 2 ** 31 - 1,
    };
    for (const arg of d.args) {
      if (arg.vals.length === 0) continue;
      switch (arg.key) {
        case 'voters':
          confState.voters.push(...arg.vals.map(parseIntStrict));
          bootstrap = true;
          break;
        case 'learners':
          confState.learners.push(...arg.vals.map(parseIntStrict));
          bootstrap = true;
          break;
        case 'index':
          index = argInt(d, 'index')!;
          bootstrap = true;
          break;
        case 'content':
          data = new TextEncoder().encode(arg.vals[0]!);
          bootstrap = true;
          break;
        case 'inflight':
          settings.maxInflightMsgs = argInt(d, 'inflight');
          break;
        case 'async-storage-writes':
          settings.asyncStorageWrites = argBool(d, 'async-storage-writes');
          break;
        case 'prevote':
          settings.preVote = argBool(d, 'prevote');
          break;
        case 'checkquorum':
          settings.checkQuorum = argBool(d, 'checkquorum');
          break;
        case 'max-committed-size-per-ready':
          settings.maxCommittedSizePerReady = argInt(d, 'max-committed-size-per-ready');
          break;
        case 'disable-conf-change-validation':
          settings.disableConfChangeValidation = argBool(d, 'disable-conf-change-validation');
          break;
        case 'step-down-on-removal':
          settings.stepDownOnRemoval = argBool(d, 'step-down-on-removal');
          break;
        case 'read-only': {
          const mode = arg.vals[0];
          if (mode === 'safe') settings.readOnlyOption = 'ReadOnlySafe';
          else if (mode === 'lease-based') settings.readOnlyOption = 'ReadOnlyLeaseBased';
          else throw new Error(`invalid read-only option ${mode}`);
          break;
        }
        default:
          throw new Error(`add-nodes: unknown argument ${arg.key}`);
      }
    }
    // MemoryStorage keeps a dummy entry at the snapshot index, so index 1 would leave no
    // room for the bootstrap snapshot to differ from an empty log.
    if (bootstrap && index <= 1) throw new Error('index must be specified as > 1 due to bootstrap');

    for (let i = 0; i < count; i++) {
      const id = this.nodes.length + 1;
      const initial: Snapshot = {
        data,
        metadata: { confState: structuredClone(confState), index, term: bootstrap ? 1 : 0 },
      };
      const mem = new MemoryStorage(this.logger);
      if (bootstrap) {
        mem.applySnapshot(initial);
        if (mem.firstIndex() !== index + 1) {
          throw new Error(`failed to establish first index ${index + 1}; got ${mem.firstIndex()}`);
        }
      }
      const history: Snapshot[] = [initial];
      const storage = new AppliedStateStorage(mem, () => history.at(-1)!);
      const config: RaftConfig = {
        ...settings,
        id,
        storage,
        applied: bootstrap ? index : 0,
        logger: this.logger,
        random: seededRandom(id),
      };
      this.nodes.push(new SimNode(id, config, mem, history));
    }
  }

  // --- driving nodes ------------------------------------------------------------------

  private tick(d: Directive, ticks: (n: SimNode) => number): void {
    const n = this.nodeArg(d);
    for (let i = ticks(n); i > 0; i--) n.rawNode.tick();
  }

  private propose(d: Directive): void {
    const n = this.nodeArg(d);
    // The payload is the second argument verbatim (etcd's env takes it the same way).
    const payload = d.args[1];
    if (payload === undefined) throw new Error('propose: expected a payload');
    n.rawNode.propose(new TextEncoder().encode(payload.key));
  }

  private proposeConfChange(d: Directive): void {
    const n = this.nodeArg(d);
    const v1 = argBool(d, 'v1') ?? false;
    const transitionName = argValues(d, 'transition')?.[0] ?? 'auto';
    const transition = TRANSITIONS[transitionName];
    if (transition === undefined) throw new Error(`unknown transition ${transitionName}`);
    const changes = confChangesFromString(d.input.join(' '));
    let cc: AnyConfChange;
    if (v1) {
      const [only] = changes;
      if (only === undefined || changes.length > 1 || transition !== 'ConfChangeTransitionAuto') {
        throw new Error('v1 conf change can only have one operation and no transition');
      }
      cc = { kind: 'v1', type: only.type, nodeId: only.nodeId, context: new Uint8Array(0), id: 0 };
    } else {
      cc = { kind: 'v2', transition, changes, context: new Uint8Array(0) };
    }
    n.rawNode.proposeConfChange(cc);
  }

  private readIndex(d: Directive): void {
    const n = this.nodeArg(d);
    const ctx = d.args[1];
    if (ctx === undefined) throw new Error('read-index: expected a request context');
    n.rawNode.readIndex(new TextEncoder().encode(ctx.key));
  }

  private setRandomizedElectionTimeout(d: Directive): void {
    const n = this.nodeArg(d);
    const timeout = argInt(d, 'timeout');
    if (timeout === undefined || timeout === 0)
      throw new Error('timeout= must be a positive number of ticks');
    n.rawNode.raft.randomizedElectionTimeout = timeout;
  }

  private transferLeadership(d: Directive): void {
    const from = argInt(d, 'from');
    const to = argInt(d, 'to');
    if (from === undefined || to === undefined)
      throw new Error('transfer-leadership: from= and to= are required');
    this.node(to); // the transferee must exist
    this.node(from).rawNode.transferLeader(to);
  }

  private reportUnreachable(d: Directive): void {
    const ids = this.nodeIds(d);
    if (ids.length !== 2) {
      throw new Error('must specify exactly two node indexes: node on which to report, and reported node');
    }
    this.node(ids[0]!).rawNode.reportUnreachable(this.node(ids[1]!).id);
  }

  /** Puts a MsgSnap carrying `from`'s latest applied state on the wire to `to`. */
  private sendSnapshot(d: Directive): void {
    const ids = this.nodeIds(d);
    if (ids.length !== 2) throw new Error('send-snapshot: expected the sending and receiving node ids');
    const from = this.node(ids[0]!);
    const to = this.node(ids[1]!);
    const msg: Message = {
      type: 'MsgSnap',
      from: from.id,
      to: to.id,
      term: from.rawNode.raft.term,
      logTerm: 0,
      index: 0,
      entries: [],
      commit: 0,
      vote: 0,
      snapshot: from.latestState(),
      reject: false,
      rejectHint: 0,
      context: new Uint8Array(0),
      responses: [],
    };
    this.messages.push(msg);
    this.out.write(describeMessage(msg));
  }

  private compact(d: Directive): void {
    const [id, index] = this.nodeIds(d);
    if (id === undefined || index === undefined) throw new Error('compact: expected a node id and an index');
    const n = this.node(id);
    n.storage.compact(index);
    this.printRaftLog(n);
  }

  // --- Ready, storage and state machine -------------------------------------------------

  /**
   * Handles one Ready. With synchronous storage the env persists and applies it right
   * away and advances; with async storage writes, the local messages it carries are
   * queued for the append and apply threads, which run when the script says so.
   */
  private processReady(n: SimNode): void {
    const rd = n.rawNode.ready();
    this.out.write(describeReady(rd));
    if (!n.asyncWrites) {
      this.persist(n, rd.hardState, rd.entries, rd.snapshot);
      this.apply(n, rd.committedEntries);
    }
    for (const m of rd.messages) {
      if (!isLocalThread(m.to)) {
        this.messages.push(m);
        continue;
      }
      if (!n.asyncWrites) throw new Error(`unexpected message to a local thread: ${describeMessage(m)}`);
      if (m.to === LOCAL_APPEND_THREAD && m.type === 'MsgStorageAppend') n.appendWork.push(m);
      else if (m.to === LOCAL_APPLY_THREAD && m.type === 'MsgStorageApply') n.applyWork.push(m);
      else throw new Error(`unexpected message to a local thread: ${describeMessage(m)}`);
    }
    if (!n.asyncWrites) n.rawNode.advance(rd);
  }

  /** Completes the oldest pending storage write and sends the responses it carries. */
  private processAppendThread(n: SimNode): void {
    const m = n.appendWork.shift();
    if (m === undefined) {
      this.out.write('no append work to perform');
      return;
    }
    this.out.write('Processing:');
    this.out.write(describeMessage({ ...m, responses: [] }));
    this.persist(n, { term: m.term, vote: m.vote, commit: m.commit }, m.entries, m.snapshot);
    this.releaseResponses(m);
  }

  /** Applies the oldest pending batch of committed entries and sends the responses. */
  private processApplyThread(n: SimNode): void {
    const m = n.applyWork.shift();
    if (m === undefined) {
      this.out.write('no apply work to perform');
      return;
    }
    this.out.write('Processing:');
    this.out.write(describeMessage({ ...m, responses: [] }));
    this.apply(n, m.entries);
    this.releaseResponses(m);
  }

  private releaseResponses(m: Message): void {
    this.out.write('Responses:');
    for (const r of m.responses) this.out.write(describeMessage(r));
    this.messages.push(...m.responses);
  }

  private persist(n: SimNode, hs: HardState | undefined, entries: Entry[], snap: Snapshot | undefined): void {
    if (hs !== undefined && !isEmptyHardState(hs)) n.storage.setHardState(hs);
    if (snap !== undefined && !isEmptySnapshot(snap)) {
      if (entries.length > 0) throw new Error("can't apply snapshot and entries at the same time");
      n.storage.applySnapshot(snap);
      // The snapshot replaces the state machine too.
      n.history.push(snap);
    }
    n.storage.append(entries);
  }

  /**
   * Applies committed entries to the node's state machine, which appends each payload
   * (a conf change contributes its context) and tracks the ConfState. Conf changes go
   * through the RawNode so that it switches configuration.
   */
  private apply(n: SimNode, entries: Entry[]): void {
    for (const e of entries) {
      let update = e.data;
      let confState: ConfState | undefined;
      if (e.type !== 'EntryNormal') {
        const cc = decodeConfChangeEntry(e);
        confState = n.rawNode.applyConfChange(cc);
        update = cc.context;
      }
      const prev = n.latestState();
      n.history.push({
        data: concatBytes(prev.data, update),
        metadata: { index: e.index, term: e.term, confState: confState ?? prev.metadata.confState },
      });
    }
  }

  // --- the network --------------------------------------------------------------------

  private deliverMsgs(d: Directive): void {
    const recipients: Recipient[] = [];
    let type: MessageType | undefined;
    for (const arg of d.args) {
      if (arg.vals.length === 0) {
        recipients.push({ id: parseIntStrict(arg.key), drop: false });
        continue;
      }
      switch (arg.key) {
        case 'drop':
          for (const v of arg.vals) {
            const id = parseIntStrict(v);
            if (recipients.some((r) => r.id === id))
              throw new Error(`can't both deliver and drop msgs to ${id}`);
            recipients.push({ id, drop: true });
          }
          break;
        case 'type': {
          const name = arg.vals[0] as MessageType;
          if (!MESSAGE_TYPES.includes(name)) throw new Error(`unknown message type ${arg.vals[0]}`);
          type = name;
          break;
        }
        default:
          throw new Error(`deliver-msgs: unknown argument ${arg.key}`);
      }
    }
    if (this.deliver(recipients, type) === 0) this.out.write('no messages');
  }

  /** Removes the queued messages for `to` (optionally of one type) and returns them, in order. */
  private takeMessages(to: number, type: MessageType | undefined, drop: boolean): Message[] {
    const taken: Message[] = [];
    const kept: Message[] = [];
    for (const m of this.messages) {
      const match = m.to === to && !(drop && staysOnNode(m)) && (type === undefined || m.type === type);
      (match ? taken : kept).push(m);
    }
    this.messages = kept;
    return taken;
  }

  private hasMessagesFor(to: number): boolean {
    return this.messages.some((m) => m.to === to);
  }

  /**
   * Delivers (or drops) the queued messages of each recipient in turn, printing each
   * message before the node steps it, so the log lines it causes follow it. Step errors
   * are printed, not fatal: a node may legitimately refuse a message.
   */
  private deliver(recipients: Recipient[], type?: MessageType): number {
    let count = 0;
    for (const r of recipients) {
      const msgs = this.takeMessages(r.id, type, r.drop);
      count += msgs.length;
      for (const m of msgs) {
        if (r.drop) {
          this.out.write(`dropped: ${describeMessage(m)}`);
          continue;
        }
        this.out.write(describeMessage(m));
        try {
          this.node(m.to).rawNode.step(m);
        } catch (err) {
          if (!(err instanceof RaftError)) throw err;
          this.out.write(err.message);
        }
      }
    }
    return count;
  }

  private stabilizeCmd(d: Directive): void {
    const nodes = this.nodesArgOrAll(d);
    const level = argValues(d, 'log-level')?.[0];
    if (level === undefined) {
      this.stabilize(nodes);
      return;
    }
    const saved = this.out.level;
    this.out.level = parseLogLevel(level);
    try {
      this.stabilize(nodes);
    } finally {
      this.out.level = saved;
    }
  }

  /**
   * Runs the nodes until nothing happens any more. Each round handles every pending
   * Ready, then delivers every queued message, then drains the append and apply threads,
   * always in node order; work that a step creates for a node outside `nodes` waits.
   */
  private stabilize(nodes: SimNode[]): void {
    for (let round = 0; round < MAX_STABILIZE_ROUNDS; round++) {
      let busy = false;
      for (const n of nodes) {
        if (!n.rawNode.hasReady()) continue;
        busy = true;
        this.out.section(`> ${n.id} handling Ready`, () => this.processReady(n));
      }
      for (const n of nodes) {
        if (!this.hasMessagesFor(n.id)) continue;
        busy = true;
        this.out.section(`> ${n.id} receiving messages`, () => this.deliver([{ id: n.id, drop: false }]));
      }
      for (const n of nodes) {
        if (n.appendWork.length === 0) continue;
        busy = true;
        this.out.section(`> ${n.id} processing append thread`, () => {
          while (n.appendWork.length > 0) this.processAppendThread(n);
        });
      }
      for (const n of nodes) {
        if (n.applyWork.length === 0) continue;
        busy = true;
        this.out.section(`> ${n.id} processing apply thread`, () => {
          while (n.applyWork.length > 0) this.processApplyThread(n);
        });
      }
      if (!busy) return;
    }
    throw new Error(`stabilize: still busy after ${MAX_STABILIZE_ROUNDS} rounds`);
  }

  // --- inspection ---------------------------------------------------------------------

  /** The node's stable log: what its storage holds, not what the core has in memory. */
  private printRaftLog(n: SimNode): void {
    const first = n.storage.firstIndex();
    const last = n.storage.lastIndex();
    if (last < first) {
      this.out.write(`log is empty: first index=${first}, last index=${last}`);
      return;
    }
    this.out.write(describeEntries(n.storage.entries(first, last + 1, Infinity)));
  }

  private printRaftState(): void {
    for (const n of this.nodes) {
      const st = n.rawNode.status();
      const role = st.config.voters.has(n.id) ? '(Voter)' : '(Non-Voter)';
      this.out.write(
        `${n.id}: ${st.softState.raftState} ${role} Term:${st.hardState.term} Lead:${st.softState.lead}`,
      );
    }
  }

  /**
   * The node to which N is transferring leadership. Only a leader has one, and the core
   * drops it silently (on success, timeout, or the transferee leaving the configuration),
   * so scripts need this to show a transfer starting and ending.
   */
  private printLeadTransferee(n: SimNode): void {
    const to = n.rawNode.status().leadTransferee;
    this.out.write(to === 0 ? 'no leadership transfer in progress' : `transferring leadership to ${to}`);
  }

  /** The leader's view of replication: one Progress line per peer (nothing on followers). */
  private printStatus(d: Directive): void {
    const progress = this.nodeArg(d).rawNode.status().progress;
    if (progress !== undefined) this.out.write(progressMapToString(progress));
  }
}
