// A deterministic in-memory cluster for behavioural tests: RawNodes over MemoryStorage,
// driven in sync mode (persist the Ready, send its messages, apply, advance), with a
// single message queue the test controls. Nothing here reads a clock or Math.random:
// every run is a function of its seed and the actions taken.

import { decodeConfChangeEntry } from '../../src/raft/confchange-codec.js';
import { RaftError } from '../../src/raft/errors.js';
import type { Config } from '../../src/raft/raft.js';
import { RawNode } from '../../src/raft/rawnode.js';
import type { Ready } from '../../src/raft/ready.js';
import { MemoryStorage } from '../../src/raft/storage.js';
import {
  type ConfState,
  type Entry,
  emptyConfState,
  type Message,
  type ReadState,
  type Snapshot,
} from '../../src/raft/types.js';
import { mulberry32 } from '../support/random.js';

/** The `random` Config hook ([0, n)) backed by a seeded mulberry32. */
export function seededIntn(seed: number): (n: number) => number {
  const next = mulberry32(seed);
  return (n) => Math.floor(next() * n);
}

export type NodeConfig = Partial<Omit<Config, 'id' | 'storage'>>;

/** The subset of a conf state that defines quorums. */
export function votersOf(cs: ConfState): { incoming: number[]; outgoing: number[] } {
  return {
    incoming: [...cs.voters].sort((a, b) => a - b),
    outgoing: [...cs.votersOutgoing].sort((a, b) => a - b),
  };
}

export function confState(voters: number[], learners: number[] = []): ConfState {
  return { ...emptyConfState(), voters: [...voters], learners: [...learners] };
}

/** Storage bootstrapped "via a ConfState snapshot": an empty log at index 0 with the given members. */
export function storageWithConfState(cs: ConfState): MemoryStorage {
  const s = new MemoryStorage();
  s.snap = { data: new Uint8Array(), metadata: { index: 0, term: 0, confState: cs } };
  return s;
}

export interface Observer {
  /** Called with every Ready a node hands out, before it is persisted. */
  onReady?(node: SimNode, rd: Ready): void;
  /** Called for every entry a node applies, in order. */
  onApply?(node: SimNode, e: Entry): void;
  /** Called after a node applied a conf change: the conf states before and after. */
  onConfChange?(node: SimNode, before: ConfState, after: ConfState): void;
  /** Called when a node restores a snapshot from its Ready. */
  onSnapshot?(node: SimNode, snap: Snapshot): void;
  /** Called after every step, tick or advance of a node: its state may have changed. */
  afterStep?(node: SimNode): void;
  /** Called for a message the network dropped at send time. */
  onDrop?(m: Message): void;
}

export class SimNode {
  readonly storage: MemoryStorage;
  readonly rn: RawNode;
  /** The configuration as applied by this node's state machine. */
  cs: ConfState;
  /** The last index applied to the state machine (or restored from a snapshot). */
  applied = 0;
  /** Normal entries with data applied by this node, in order (its "state machine"). */
  readonly appliedData: string[] = [];
  /** Every ReadState handed out in a Ready. */
  readonly readStates: ReadState[] = [];

  constructor(
    readonly id: number,
    storage: MemoryStorage,
    config: NodeConfig,
    seed: number,
  ) {
    this.storage = storage;
    this.cs = storage.snap.metadata.confState;
    this.applied = storage.snap.metadata.index;
    this.rn = new RawNode({
      electionTick: 10,
      heartbeatTick: 1,
      maxInflightMsgs: 256,
      ...config,
      id,
      storage,
      random: config.random ?? seededIntn(seed),
    });
  }

  get raft() {
    return this.rn.raft;
  }
}

const decoder = new TextDecoder();

export interface NetworkOptions {
  /** Node config shared by every node (ids and storage are filled in). */
  config?: NodeConfig;
  /** Per-node overrides. */
  perNode?: Record<number, NodeConfig>;
  /** Learners of the initial configuration. */
  learners?: number[];
  /** Bootstrap through RawNode.bootstrap (log of ConfChange entries) instead of a ConfState snapshot. */
  bootstrap?: boolean;
  seed?: number;
  /** Fills a node's storage (log, HardState) before the node starts on it. */
  prepare?: (id: number, storage: MemoryStorage) => void;
}

/**
 * N nodes and a FIFO message queue. Messages are routed through filters at send time
 * (drop, partitions); tests either `stabilize()` or deliver messages one by one.
 */
export class Network {
  readonly nodes = new Map<number, SimNode>();
  queue: Message[] = [];
  private readonly dropped = new Set<string>();
  private partitionOf: Map<number, number> | undefined;
  /** Extra filter applied at send time: returns the message to queue (possibly rewritten) or undefined to drop it. */
  filter: ((m: Message) => Message | undefined) | undefined;
  observer: Observer = {};
  readonly seed: number;
  private readonly options: NetworkOptions;

  constructor(ids: number[], options: NetworkOptions = {}) {
    this.seed = options.seed ?? 1;
    this.options = options;
    const learners = options.learners ?? [];
    const voters = ids.filter((id) => !learners.includes(id));
    for (const id of ids) {
      if (options.bootstrap) {
        const node = this.addNode(id, new MemoryStorage());
        node.rn.bootstrap(voters.map((v) => ({ id: v })));
      } else {
        const storage = storageWithConfState(confState(voters, learners));
        options.prepare?.(id, storage);
        this.addNode(id, storage);
      }
    }
  }

  /** Starts a node on the given storage (a fresh, empty one for a node joining later). */
  addNode(id: number, storage: MemoryStorage = storageWithConfState(emptyConfState())): SimNode {
    const cfg = { ...this.options.config, ...this.options.perNode?.[id] };
    const node = new SimNode(id, storage, cfg, (this.seed * 7919 + id * 104729) >>> 0);
    this.nodes.set(id, node);
    return node;
  }

  node(id: number): SimNode {
    const n = this.nodes.get(id);
    if (!n) throw new Error(`no node ${id}`);
    return n;
  }

  raft(id: number) {
    return this.node(id).raft;
  }

  /** Drops every message from `from` to `to` (one direction) until healed. */
  drop(from: number, to: number): void {
    this.dropped.add(`${from}->${to}`);
  }

  /** Cuts the network into groups; messages only flow within a group. Unlisted nodes form one group. */
  partition(...groups: number[][]): void {
    this.partitionOf = new Map();
    groups.forEach((g, i) => {
      for (const id of g) this.partitionOf!.set(id, i + 1);
    });
  }

  isolate(id: number): void {
    this.partition([id]);
  }

  heal(): void {
    this.dropped.clear();
    this.partitionOf = undefined;
    this.filter = undefined;
  }

  /** Whether a message from→to would currently get through. */
  connected(from: number, to: number): boolean {
    if (this.dropped.has(`${from}->${to}`)) return false;
    if (this.partitionOf) {
      if ((this.partitionOf.get(from) ?? 0) !== (this.partitionOf.get(to) ?? 0)) return false;
    }
    return true;
  }

  send(msgs: Message[]): void {
    for (const m of msgs) {
      const out = !this.connected(m.from, m.to) ? undefined : this.filter ? this.filter(m) : m;
      if (out) this.queue.push(out);
      else this.observer.onDrop?.(m);
    }
  }

  /**
   * Handles one node's Ready in sync mode: persist snapshot, entries and HardState;
   * send; apply committed entries (conf changes through applyConfChange); advance.
   * Returns whether there was a Ready.
   */
  processReady(id: number): boolean {
    const node = this.node(id);
    if (!node.rn.hasReady()) return false;
    const rd = node.rn.ready();
    this.observer.onReady?.(node, rd);
    node.readStates.push(...rd.readStates);
    if (rd.snapshot && rd.snapshot.metadata.index > 0) {
      node.storage.applySnapshot(rd.snapshot);
      node.cs = rd.snapshot.metadata.confState;
      node.applied = rd.snapshot.metadata.index;
      // The state machine is replaced by the snapshot's (see compact()).
      const restored: string[] =
        rd.snapshot.data.length > 0 ? JSON.parse(decoder.decode(rd.snapshot.data)) : [];
      node.appliedData.splice(0, node.appliedData.length, ...restored);
      this.observer.onSnapshot?.(node, rd.snapshot);
    }
    node.storage.append(rd.entries);
    if (rd.hardState) node.storage.setHardState(rd.hardState);
    this.send(rd.messages);
    for (const e of rd.committedEntries) {
      if (e.index <= node.applied) continue;
      this.applyEntry(node, e);
    }
    node.rn.advance(rd);
    this.observer.afterStep?.(node);
    return true;
  }

  /**
   * Snapshots node `id`'s state machine at its applied index and compacts its log
   * there, so peers that fall behind must be caught up with a snapshot. Returns false
   * when there is nothing new to compact.
   */
  compact(id: number): boolean {
    const node = this.node(id);
    if (node.applied <= node.storage.snap.metadata.index) return false;
    const data = new TextEncoder().encode(JSON.stringify(node.appliedData));
    node.storage.createSnapshot(node.applied, node.cs, data);
    node.storage.compact(node.applied);
    return true;
  }

  private applyEntry(node: SimNode, e: Entry): void {
    if (e.type === 'EntryConfChange' || e.type === 'EntryConfChangeV2') {
      const before = node.cs;
      node.cs = node.rn.applyConfChange(decodeConfChangeEntry(e));
      this.observer.onConfChange?.(node, before, node.cs);
    } else if (e.data.length > 0) {
      node.appliedData.push(decoder.decode(e.data));
    }
    node.applied = e.index;
    this.observer.onApply?.(node, e);
  }

  /** Processes every node's Ready once; returns whether any had one. */
  processReadys(): boolean {
    let any = false;
    for (const id of [...this.nodes.keys()].sort((a, b) => a - b)) any = this.processReady(id) || any;
    return any;
  }

  /**
   * Steps one message into its target. Refusals the core reports as RaftError (a
   * dropped proposal, a response from a removed peer) are what a transport would log
   * and move on from; anything else is a real failure and propagates.
   */
  deliver(m: Message): void {
    const node = this.nodes.get(m.to);
    if (!node) return;
    const copy: Message = { ...m, entries: m.entries.map((e) => ({ ...e })) };
    try {
      node.rn.step(copy);
    } catch (err) {
      if (!(err instanceof RaftError)) throw err;
    }
    this.observer.afterStep?.(node);
  }

  /** Delivers the queued message at position i (out of order when i > 0). */
  deliverAt(i: number): void {
    const [m] = this.queue.splice(i, 1);
    if (m) this.deliver(m);
  }

  /** Processes node `id`'s Ready and takes the messages it sent out of the queue. */
  drainFrom(id: number): Message[] {
    this.processReady(id);
    const out = this.queue.filter((m) => m.from === id);
    this.queue = this.queue.filter((m) => m.from !== id);
    return out;
  }

  /** Delivers every queued message (in order) and every Ready until nothing moves. */
  stabilize(maxRounds = 10_000): void {
    for (let round = 0; round < maxRounds; round++) {
      const readys = this.processReadys();
      if (this.queue.length === 0 && !readys) return;
      const msgs = this.queue;
      this.queue = [];
      for (const m of msgs) this.deliver(m);
    }
    throw new Error('network did not stabilize');
  }

  tick(id: number, n = 1): void {
    const node = this.node(id);
    for (let i = 0; i < n; i++) {
      node.rn.tick();
      this.observer.afterStep?.(node);
    }
  }

  /** Ticks every node once per round, stabilizing after each. */
  tickAll(rounds = 1): void {
    for (let r = 0; r < rounds; r++) {
      for (const n of this.nodes.values()) this.tick(n.id);
      this.stabilize();
    }
  }

  campaign(id: number): void {
    this.node(id).rn.campaign();
    this.stabilize();
  }

  /** Proposes on node `id`; returns false when the core dropped the proposal. */
  propose(id: number, data: string): boolean {
    try {
      this.node(id).rn.propose(new TextEncoder().encode(data));
      return true;
    } catch (err) {
      if (!(err instanceof RaftError)) throw err;
      return false;
    }
  }

  /** Current leader among the nodes (highest term wins), or 0. */
  leader(): number {
    let best = 0;
    let bestTerm = -1;
    for (const n of this.nodes.values()) {
      if (n.raft.state === 'StateLeader' && n.raft.term > bestTerm) {
        best = n.id;
        bestTerm = n.raft.term;
      }
    }
    return best;
  }
}

/** Every entry of a node's log that is still available: storage and unstable. */
export function logEntries(node: SimNode): Entry[] {
  return node.raft.raftLog.allEntries();
}

/** Entries at indexes 1.. with the given terms. */
export function entriesWithTerms(...terms: number[]): Entry[] {
  return terms.map((term, i) => ({ term, index: i + 1, type: 'EntryNormal', data: new Uint8Array() }));
}

/** (index, term) pairs of a node's available log, for compact comparisons. */
export function logTerms(node: SimNode): number[] {
  return logEntries(node).map((e) => e.term);
}

export function text(e: Entry): string {
  return decoder.decode(e.data);
}
