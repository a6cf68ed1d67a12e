// The console's cluster store. Everything the nodes send (hellos, state frames, events) is
// ingested here, outside React: ingesting only mutates plain structures, and a snapshot for
// the views is published at most once per `publishIntervalMs` (50 ms → ≤ 20 renders/s)
// however fast events arrive. Every buffer is a bounded ring, so memory stays flat.
//
// The store also runs the invariant monitor (two leaders in one term, a commit index going
// back, different entries committed at one index) and derives the cluster's health.

import type {
  EntryView,
  EventKind,
  Member,
  NodeEvent,
  NodeHello,
  NodeState,
  ProgressView,
  Role,
} from '../protocol/control.js';
import { Ring } from './ring.js';

export type LinkStatus = 'connecting' | 'up' | 'down';

/** One input to the store; a recording (`--record`) is a list of these with a time offset. */
export type StoreInput =
  | { type: 'hello'; address: string; hello: NodeHello }
  | { type: 'state'; state: NodeState }
  | { type: 'event'; event: NodeEvent }
  | { type: 'link'; node: number; status: LinkStatus; address?: string; reason?: string }
  | { type: 'lost'; node: number; count: number }
  | { type: 'members'; members: Member[] }
  | { type: 'note'; level: AlertLevel | 'info'; text: string };

export type AlertLevel = 'warn' | 'error';

export interface Alert {
  at: number;
  level: AlertLevel;
  text: string;
  /** Raised by the invariant monitor (sticky), as opposed to derived from current health. */
  invariant: boolean;
}

/** A line of the event stream. */
export interface StreamItem {
  /** Increasing across the whole store; a stable React key. */
  n: number;
  at: number;
  /** Publishing node; 0 for the console's own notes. */
  node: number;
  kind: EventKind | 'console';
  /** The message type for messages, else the kind; what the type filter matches. */
  type: string;
  text: string;
  level?: AlertLevel | 'info';
}

/** The fields whose changes the node table highlights for a moment. */
export const TRACKED_FIELDS = ['role', 'term', 'vote', 'leader', 'commit', 'applied', 'lastIndex'] as const;
export type TrackedField = (typeof TRACKED_FIELDS)[number];

export interface NodeRow {
  id: number;
  address: string;
  learner: boolean;
  link: LinkStatus;
  /** The newest state frame (kept across a disconnect, shown dimmed). */
  state: NodeState | undefined;
  /** The node's transport has an `isolate` fault set. */
  isolated: boolean;
  /** When each tracked field last changed (ms); the table highlights recent ones. */
  changed: Readonly<Partial<Record<TrackedField, number>>>;
  /** The leader's lastIndex minus this node's lastIndex, when both are known. */
  lag: number | undefined;
  /** The leader's progress entry for this node, when the leader is known and this is not it. */
  progress: ProgressView | undefined;
  lost: number;
  /** The newest entries this node appended or committed, index ascending (bounded). */
  logTail: readonly EntryView[];
  /** This node's own recent events, oldest first (bounded). */
  events: readonly StreamItem[];
}

export interface QuorumView {
  voters: number;
  reachable: number;
  needed: number;
  ok: boolean;
}

export interface ClusterSnapshot {
  /** When this snapshot was published; the views measure highlight age against it. */
  now: number;
  /** Increases with every publish. */
  version: number;
  clusterId: string | undefined;
  nodes: readonly NodeRow[];
  leader: { id: number; term: number } | undefined;
  term: number;
  quorum: QuorumView;
  commit: number;
  /** Commit index growth per second over the last few seconds. */
  commitRate: number;
  /** Invariant alerts (newest last) followed by alerts derived from current health. */
  alerts: readonly Alert[];
  events: readonly StreamItem[];
  eventsTotal: number;
  lost: number;
  paused: boolean;
}

export interface StoreOptions {
  publishIntervalMs?: number;
  eventCapacity?: number;
  nodeEventCapacity?: number;
  logTailCapacity?: number;
  alertCapacity?: number;
  /** How long a changed cell stays highlighted. */
  highlightMs?: number;
  now?: () => number;
}

interface NodeRecord {
  id: number;
  address: string;
  learner: boolean;
  link: LinkStatus;
  state: NodeState | undefined;
  changed: Partial<Record<TrackedField, number>>;
  lost: number;
  /** index → entry; trimmed from the lowest index beyond the capacity. */
  log: Map<number, EntryView>;
  events: Ring<StreamItem>;
  /** Commit as last seen in this node's event stream and in its state frames (see checkCommit). */
  eventCommit: number;
  stateCommit: number;
  stateAt: number;
  lastSeq: number;
}

const COMMIT_RATE_WINDOW_MS = 5000;
/** Terms and indexes the monitor remembers; old ones are forgotten (a violation is about recent history). */
const MONITOR_TERMS = 1024;
const MONITOR_INDEXES = 20_000;

const EMPTY_QUORUM: QuorumView = { voters: 0, reachable: 0, needed: 0, ok: false };

export class ClusterStore {
  private readonly interval: number;
  private readonly nodeEventCapacity: number;
  private readonly logTailCapacity: number;
  private readonly highlightMs: number;
  private readonly clock: () => number;
  private readonly nodes = new Map<number, NodeRecord>();
  private readonly events: Ring<StreamItem>;
  private readonly invariantAlerts: Ring<Alert>;
  private readonly listeners = new Set<() => void>();
  private clusterId: string | undefined;
  private itemNo = 0;
  private lostTotal = 0;
  /** term → the leader someone reported for it. */
  private readonly leaders = new Map<number, { id: number; by: number }>();
  /** index → the entry first reported committed there. */
  private readonly committed = new Map<number, { term: number; data: string | undefined; node: number }>();
  private readonly commitSamples: { at: number; commit: number }[] = [];
  private snapshot: ClusterSnapshot;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private timerDue = 0;
  private lastPublish = Number.NEGATIVE_INFINITY;
  private paused = false;
  private dirty = false;
  /** Publishes so far; the bench and the tests read it. */
  publishes = 0;
  /** Inputs ingested so far. */
  ingested = 0;

  constructor(opts: StoreOptions = {}) {
    this.interval = opts.publishIntervalMs ?? 50;
    this.nodeEventCapacity = opts.nodeEventCapacity ?? 200;
    this.logTailCapacity = opts.logTailCapacity ?? 200;
    this.highlightMs = opts.highlightMs ?? 1500;
    this.clock = opts.now ?? Date.now;
    this.events = new Ring(opts.eventCapacity ?? 5000);
    this.invariantAlerts = new Ring(opts.alertCapacity ?? 100);
    this.snapshot = this.build();
  }

  // ---- React side: useSyncExternalStore ----------------------------------------------

  readonly subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };

  readonly getSnapshot = (): ClusterSnapshot => this.snapshot;

  get isPaused(): boolean {
    return this.paused;
  }

  /** Pausing freezes what the views see; ingesting goes on so nothing is missed on resume. */
  setPaused(paused: boolean): void {
    if (paused === this.paused) return;
    this.paused = paused;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    // Publish once either way: the views must show the PAUSED mark, or catch up on resume.
    this.publish();
  }

  /** Publishes now if anything changed; the replay stepper uses it so a step shows at once. */
  flush(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    if (!this.paused) this.publish();
  }

  dispose(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.listeners.clear();
  }

  // ---- Live reads for command targeting (not throttled, not frozen by pause) ------------

  /** The leader as the freshest state frames say, for sending leader-only commands. */
  currentLeader(): number | undefined {
    let best: { id: number; term: number } | undefined;
    for (const n of this.nodes.values()) {
      const s = n.state;
      if (s === undefined || n.link !== 'up' || s.leader === 0) continue;
      if (best === undefined || s.term > best.term) best = { id: s.leader, term: s.term };
    }
    return best?.id;
  }

  nodeIds(): number[] {
    return [...this.nodes.keys()].sort((a, b) => a - b);
  }

  nodeAddress(id: number): string | undefined {
    return this.nodes.get(id)?.address;
  }

  // ---- Ingest ------------------------------------------------------------------------

  ingest(input: StoreInput): void {
    this.ingested++;
    switch (input.type) {
      case 'hello':
        this.onHello(input.address, input.hello);
        break;
      case 'state':
        this.onState(input.state);
        break;
      case 'event':
        this.onEvent(input.event);
        break;
      case 'link':
        this.onLink(input);
        break;
      case 'lost': {
        this.node(input.node).lost += input.count;
        this.lostTotal += input.count;
        break;
      }
      case 'members':
        this.onMembers(input.members);
        break;
      case 'note':
        this.note(input.level, input.text);
        break;
    }
    this.markDirty();
  }

  private node(id: number): NodeRecord {
    let n = this.nodes.get(id);
    if (n === undefined) {
      n = {
        id,
        address: '',
        learner: false,
        link: 'connecting',
        state: undefined,
        changed: {},
        lost: 0,
        log: new Map(),
        events: new Ring(this.nodeEventCapacity),
        eventCommit: 0,
        stateCommit: 0,
        stateAt: 0,
        lastSeq: 0,
      };
      this.nodes.set(id, n);
    }
    return n;
  }

  private onHello(address: string, hello: NodeHello): void {
    this.clusterId = hello.clusterId;
    const n = this.node(hello.nodeId);
    n.address = address;
    n.link = 'up';
    this.onMembers(hello.members);
  }

  private onMembers(members: Member[]): void {
    for (const m of members) {
      const n = this.node(m.id);
      if (n.address === '') n.address = m.address;
      n.learner = m.learner;
    }
  }

  private onLink(input: Extract<StoreInput, { type: 'link' }>): void {
    const n = this.node(input.node);
    if (input.address !== undefined) n.address = input.address;
    if (n.link === input.status) return;
    const was = n.link;
    n.link = input.status;
    if (input.status === 'down' && was === 'up') {
      this.note('warn', `lost connection to n${n.id}${input.reason ? ` (${input.reason})` : ''}`);
    } else if (input.status === 'up' && was === 'down') {
      this.note('info', `reconnected to n${n.id}`);
    }
  }

  private onState(s: NodeState): void {
    const n = this.node(s.id);
    const prev = n.state;
    const now = this.clock();
    for (const f of TRACKED_FIELDS) {
      if (prev !== undefined && prev[f] !== s[f]) n.changed[f] = now;
    }
    n.state = s;
    n.learner = s.config.learners.includes(s.id);
    if (s.role === 'leader') this.checkLeader(s.term, s.id, s.id);
    // State frames are coalesced and may overtake queued events, so they are compared only
    // with earlier state frames (by the node's clock), never with the event stream.
    if (s.at >= n.stateAt) {
      if (s.commit < n.stateCommit) this.commitWentBack(n.id, n.stateCommit, s.commit);
      n.stateCommit = s.commit;
      n.stateAt = s.at;
    }
  }

  private onEvent(e: NodeEvent): void {
    const n = this.node(e.node);
    // A smaller seq means the node restarted (its counter starts over); gaps are lost events.
    n.lastSeq = e.seq;
    let text: string;
    let type: string = e.kind;
    let level: StreamItem['level'];
    switch (e.kind) {
      case 'message':
        type = e.msgType;
        text = e.describe;
        break;
      case 'ready':
        this.onReady(n, e);
        text = e.describe.replace(/\n+$/, '').replace(/\n/g, ' · ');
        break;
      case 'election':
        text = `n${e.node} became ${e.role} at term ${e.term}`;
        break;
      case 'leader':
        text =
          e.leader === 0
            ? `n${e.node} lost track of the leader (term ${e.term})`
            : `n${e.node} follows leader n${e.leader} at term ${e.term}`;
        if (e.leader !== 0) this.checkLeader(e.term, e.leader, e.node);
        break;
      case 'confchange':
        text = `n${e.node} applied conf change ${e.change} → voters ${e.confState.voters.join(',') || '-'}${
          e.confState.learners.length > 0 ? ` learners ${e.confState.learners.join(',')}` : ''
        }`;
        break;
      case 'snapshot':
        text = `n${e.node} snapshot ${e.op} at ${e.term}/${e.index}`;
        break;
      case 'fault': {
        const f = e.fault;
        const peers = f.peers === undefined ? 'all peers' : `peers ${f.peers.join(',')}`;
        const extra =
          f.probability !== undefined ? ` p=${f.probability}` : f.ms !== undefined ? ` ${f.ms}ms` : '';
        text = `n${e.node} fault ${f.kind}${extra} (${peers}${f.direction ? `, ${f.direction}` : ''})`;
        level = 'warn';
        break;
      }
      case 'log':
        text = `n${e.node} ${e.level}: ${e.message}`;
        if (e.level === 'warn' || e.level === 'error') level = e.level;
        break;
      case 'apply':
        text = `n${e.node} applied ${e.term}/${e.index} ${e.op}`;
        this.checkCommitted(e.node, e.index, e.term, undefined);
        break;
    }
    const item: StreamItem = { n: ++this.itemNo, at: e.at, node: e.node, kind: e.kind, type, text };
    if (level !== undefined) item.level = level;
    this.events.push(item);
    n.events.push(item);
  }

  private onReady(n: NodeRecord, e: Extract<NodeEvent, { kind: 'ready' }>): void {
    for (const ent of e.entries) {
      // Appending at an index drops any (uncommitted) suffix from there on, as the log does.
      const old = n.log.get(ent.index);
      if (old !== undefined && old.term !== ent.term) {
        for (const i of [...n.log.keys()]) if (i >= ent.index) n.log.delete(i);
      }
      n.log.set(ent.index, ent);
    }
    for (const ent of e.committed) {
      if (!n.log.has(ent.index)) n.log.set(ent.index, ent);
      this.checkCommitted(n.id, ent.index, ent.term, ent.data);
    }
    this.trimLog(n);
    if (e.hardState !== undefined) {
      const c = e.hardState.commit;
      if (c < n.eventCommit) this.commitWentBack(n.id, n.eventCommit, c);
      n.eventCommit = c;
    }
    if (e.softState?.raftState === 'StateLeader' && e.hardState !== undefined) {
      this.checkLeader(e.hardState.term, n.id, n.id);
    }
  }

  private trimLog(n: NodeRecord): void {
    if (n.log.size <= this.logTailCapacity) return;
    const keys = [...n.log.keys()].sort((a, b) => a - b);
    for (let i = 0; i < keys.length - this.logTailCapacity; i++) n.log.delete(keys[i]!);
  }

  // ---- Invariant monitor -------------------------------------------------------------

  private checkLeader(term: number, leader: number, reporter: number): void {
    const known = this.leaders.get(term);
    if (known === undefined) {
      this.leaders.set(term, { id: leader, by: reporter });
      if (this.leaders.size > MONITOR_TERMS) this.forgetOldest(this.leaders);
      return;
    }
    if (known.id !== leader) {
      this.raise(
        `two leaders in term ${term}: n${known.id} (per n${known.by}) and n${leader} (per n${reporter})`,
      );
      // Remember the newer claim so one split is reported once per pair, not per event.
      this.leaders.set(term, { id: leader, by: reporter });
    }
  }

  private commitWentBack(node: number, from: number, to: number): void {
    this.raise(`n${node} commit index went back from ${from} to ${to}`);
  }

  private checkCommitted(node: number, index: number, term: number, data: string | undefined): void {
    const known = this.committed.get(index);
    if (known === undefined) {
      this.committed.set(index, { term, data, node });
      if (this.committed.size > MONITOR_INDEXES) this.forgetOldest(this.committed);
      return;
    }
    const differs =
      known.term !== term || (known.data !== undefined && data !== undefined && known.data !== data);
    if (differs && known.node !== node) {
      this.raise(
        `n${known.node} and n${node} committed different entries at index ${index} (${known.term}/${index}${
          known.data !== undefined ? ` ${known.data}` : ''
        } vs ${term}/${index}${data !== undefined ? ` ${data}` : ''})`,
      );
      // Once reported, keep the first version so every other disagreeing node is named too.
    }
    if (known.data === undefined && data !== undefined && !differs) known.data = data;
  }

  private forgetOldest<V>(m: Map<number, V>): void {
    // Maps iterate in insertion order; terms and indexes arrive roughly increasing.
    const first = m.keys().next();
    if (!first.done) m.delete(first.value);
  }

  private raise(text: string): void {
    const at = this.clock();
    this.invariantAlerts.push({ at, level: 'error', text, invariant: true });
    this.pushItem({
      n: ++this.itemNo,
      at,
      node: 0,
      kind: 'console',
      type: 'alert',
      text: `ALERT ${text}`,
      level: 'error',
    });
  }

  private note(level: StreamItem['level'], text: string): void {
    const item: StreamItem = {
      n: ++this.itemNo,
      at: this.clock(),
      node: 0,
      kind: 'console',
      type: 'console',
      text,
    };
    if (level !== undefined) item.level = level;
    this.pushItem(item);
  }

  private pushItem(item: StreamItem): void {
    this.events.push(item);
    this.dirty = true;
  }

  // ---- Publishing --------------------------------------------------------------------

  private markDirty(): void {
    this.dirty = true;
    this.schedule();
  }

  /**
   * Arms the publish timer for `delayFloor` ms from now at the earliest, and never sooner than
   * the interval allows. An earlier deadline replaces a later one (input arriving while only a
   * highlight-expiry refresh is pending must not wait for that refresh).
   */
  private schedule(delayFloor = 0): void {
    if (this.paused) return;
    const now = this.clock();
    const wait = Math.max(delayFloor, this.lastPublish + this.interval - now, 0);
    const due = now + wait;
    if (this.timer !== undefined) {
      if (this.timerDue <= due) return;
      clearTimeout(this.timer);
    }
    this.timerDue = due;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.publish();
    }, wait);
  }

  private publish(): void {
    const now = this.clock();
    this.snapshot = this.build();
    this.lastPublish = now;
    this.dirty = false;
    this.publishes++;
    for (const l of [...this.listeners]) l();
    // Highlights fade with time, not with input: publish again once the newest one expires.
    if (!this.paused) {
      let newest = 0;
      for (const n of this.nodes.values())
        for (const t of Object.values(n.changed)) newest = Math.max(newest, t);
      const expiresIn = newest + this.highlightMs - now;
      if (expiresIn > 0) this.schedule(expiresIn + 1);
    }
  }

  /** True when inputs arrived since the last publish (for tests and the bench). */
  get hasPending(): boolean {
    return this.dirty;
  }

  private build(): ClusterSnapshot {
    const now = this.clock();
    const ids = [...this.nodes.keys()].sort((a, b) => a - b);
    // The leader of the highest term anyone reports; "reports" requires a live link.
    let leader: { id: number; term: number } | undefined;
    let term = 0;
    let commit = 0;
    for (const n of this.nodes.values()) {
      const s = n.state;
      if (s === undefined) continue;
      term = Math.max(term, s.term);
      commit = Math.max(commit, s.commit);
      if (n.link === 'up' && s.leader !== 0 && (leader === undefined || s.term > leader.term)) {
        leader = { id: s.leader, term: s.term };
      }
    }
    const leaderState = leader === undefined ? undefined : this.nodes.get(leader.id)?.state;
    const progressById = new Map<number, ProgressView>();
    for (const p of leaderState?.progress ?? []) progressById.set(p.id, p);

    const rows: NodeRow[] = ids.map((id) => {
      const n = this.nodes.get(id)!;
      const s = n.state;
      const lag =
        leaderState !== undefined && s !== undefined
          ? Math.max(0, leaderState.lastIndex - s.lastIndex)
          : undefined;
      const log = [...n.log.values()].sort((a, b) => a.index - b.index);
      return {
        id,
        address: n.address,
        learner: n.learner,
        link: n.link,
        state: s,
        isolated: s?.faults.some((f) => f.kind === 'isolate') ?? false,
        changed: { ...n.changed },
        lag,
        progress: leader !== undefined && leader.id !== id ? progressById.get(id) : undefined,
        lost: n.lost,
        logTail: log,
        events: n.events.toArray(),
      };
    });

    // Quorum: voters per the freshest configuration anyone reports, reachable = linked and not isolated.
    let config: NodeState['config'] | undefined;
    let configTerm = -1;
    for (const n of this.nodes.values()) {
      if (n.state !== undefined && n.state.term > configTerm) {
        config = n.state.config;
        configTerm = n.state.term;
      }
    }
    let quorum = EMPTY_QUORUM;
    if (config !== undefined) {
      const voters = config.voters;
      const reachable = voters.filter((v) => {
        const row = rows.find((r) => r.id === v);
        return row !== undefined && row.link === 'up' && !row.isolated;
      }).length;
      const needed = Math.floor(voters.length / 2) + 1;
      quorum = { voters: voters.length, reachable, needed, ok: reachable >= needed };
    }

    this.commitSamples.push({ at: now, commit });
    while (this.commitSamples.length > 2 && this.commitSamples[0]!.at < now - COMMIT_RATE_WINDOW_MS) {
      this.commitSamples.shift();
    }
    const first = this.commitSamples[0]!;
    const span = (now - first.at) / 1000;
    const commitRate = span > 0.2 ? Math.max(0, (commit - first.commit) / span) : 0;

    const alerts: Alert[] = this.invariantAlerts.toArray();
    if (rows.length > 0) {
      if (config !== undefined && !quorum.ok) {
        alerts.push({
          at: now,
          level: 'error',
          text: `no quorum: ${quorum.reachable}/${quorum.voters} voters reachable, ${quorum.needed} needed`,
          invariant: false,
        });
      }
      if (leader === undefined && rows.some((r) => r.state !== undefined)) {
        alerts.push({ at: now, level: 'warn', text: 'no leader', invariant: false });
      }
      for (const r of rows) {
        if (r.link === 'down')
          alerts.push({ at: now, level: 'warn', text: `n${r.id} down`, invariant: false });
        else if (r.isolated)
          alerts.push({ at: now, level: 'warn', text: `n${r.id} isolated`, invariant: false });
      }
    }
    return {
      now,
      version: this.publishes,
      clusterId: this.clusterId,
      nodes: rows,
      leader,
      term,
      quorum,
      commit,
      commitRate,
      alerts,
      events: this.events.toArray(),
      eventsTotal: this.events.total,
      lost: this.lostTotal,
      paused: this.paused,
    };
  }
}

/** Role names as the table shows them. */
export function roleLabel(role: Role | undefined): string {
  switch (role) {
    case 'leader':
      return 'leader';
    case 'follower':
      return 'follower';
    case 'candidate':
      return 'candidate';
    case 'precandidate':
      return 'pre-cand';
    default:
      return '?';
  }
}
