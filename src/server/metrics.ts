// Counters, gauges and histograms rendered in Prometheus' text exposition format (0.0.4),
// without a client library: the node needs a handful of metrics, and owning the few lines
// keeps the dependency tree small.
//
// Values the node keeps elsewhere (the driver's counters, the raft term) are copied in at
// scrape time by hooks registered with `onCollect`, so nothing on the hot path pays for
// metrics it never renders. Durations go into their histograms as they happen: a bucket
// count each, where keeping every duration until a scrape would grow without bound on a
// node nobody scrapes.

export type Labels = Readonly<Record<string, string>>;

export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** etcd's wal_fsync_duration_seconds buckets: 1 ms doubling to ~8 s. */
export const FSYNC_BUCKETS: readonly number[] = Array.from({ length: 14 }, (_, i) => 0.001 * 2 ** i);

/**
 * 0.1 ms growing by half to ~10 s: a write's time in the node is a fraction of a millisecond
 * alone and tens of milliseconds under load, and doubling buckets would put a p99 of 20 and
 * of 30 ms in the same one.
 */
export const WRITE_BUCKETS: readonly number[] = Array.from({ length: 29 }, (_, i) =>
  Number((0.0001 * 1.5 ** i).toPrecision(3)),
);

function escapeHelp(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function escapeLabelValue(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

export function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Number.POSITIVE_INFINITY) return '+Inf';
  if (v === Number.NEGATIVE_INFINITY) return '-Inf';
  return String(v);
}

function formatLabels(pairs: readonly (readonly [string, string])[]): string {
  if (pairs.length === 0) return '';
  return `{${pairs.map(([k, v]) => `${k}="${escapeLabelValue(v)}"`).join(',')}}`;
}

/** Shared by all kinds: label validation and one series per distinct label set. */
abstract class Metric<S> {
  protected readonly series = new Map<string, { labels: [string, string][]; state: S }>();

  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly string[],
  ) {
    if (!METRIC_NAME.test(name)) throw new Error(`invalid metric name ${JSON.stringify(name)}`);
    for (const l of labelNames) {
      if (!LABEL_NAME.test(l) || l.startsWith('__'))
        throw new Error(`invalid label name ${JSON.stringify(l)}`);
    }
    if (new Set(labelNames).size !== labelNames.length) throw new Error(`duplicate label names in ${name}`);
  }

  abstract readonly type: 'counter' | 'gauge' | 'histogram';
  protected abstract initial(): S;
  /** Sample lines of one series (without HELP/TYPE). */
  protected abstract samples(labels: [string, string][], state: S): string[];

  /** The state of the series for these labels, created on first use; exactly the declared labels are required. */
  protected at(labels: Labels): S {
    const given = Object.keys(labels);
    if (
      given.length !== this.labelNames.length ||
      !this.labelNames.every((l) => typeof labels[l] === 'string')
    ) {
      throw new Error(
        `${this.name}: labels must be exactly {${this.labelNames.join(', ')}}, got {${given.join(', ')}}`,
      );
    }
    const pairs = this.labelNames.map((l) => [l, labels[l]!] as [string, string]);
    const key = JSON.stringify(pairs.map((p) => p[1]));
    let s = this.series.get(key);
    if (!s) {
      s = { labels: pairs, state: this.initial() };
      this.series.set(key, s);
    }
    return s.state;
  }

  render(): string {
    const lines = [`# HELP ${this.name} ${escapeHelp(this.help)}`, `# TYPE ${this.name} ${this.type}`];
    // An unlabelled metric is always present (as 0) so dashboards see it before the first event.
    if (this.labelNames.length === 0 && this.series.size === 0) this.at({});
    const keys = [...this.series.keys()].sort();
    for (const k of keys) {
      const s = this.series.get(k)!;
      lines.push(...this.samples(s.labels, s.state));
    }
    return lines.join('\n');
  }
}

export class Counter extends Metric<{ value: number }> {
  readonly type = 'counter' as const;

  protected initial() {
    return { value: 0 };
  }

  protected samples(labels: [string, string][], state: { value: number }): string[] {
    return [`${this.name}${formatLabels(labels)} ${formatValue(state.value)}`];
  }

  inc(labels: Labels = {}, by = 1): void {
    if (!(by >= 0)) throw new Error(`${this.name}: a counter only goes up (inc by ${by})`);
    this.at(labels).value += by;
  }

  /** Mirrors a cumulative total kept elsewhere (e.g. the driver's stats). */
  set(value: number, labels: Labels = {}): void {
    this.at(labels).value = value;
  }

  get(labels: Labels = {}): number {
    return this.at(labels).value;
  }
}

export class Gauge extends Metric<{ value: number }> {
  readonly type = 'gauge' as const;

  protected initial() {
    return { value: 0 };
  }

  protected samples(labels: [string, string][], state: { value: number }): string[] {
    return [`${this.name}${formatLabels(labels)} ${formatValue(state.value)}`];
  }

  set(value: number, labels: Labels = {}): void {
    this.at(labels).value = value;
  }

  inc(labels: Labels = {}, by = 1): void {
    this.at(labels).value += by;
  }

  get(labels: Labels = {}): number {
    return this.at(labels).value;
  }
}

interface HistogramState {
  /** Per-bucket counts (not cumulative; summed when rendered). */
  counts: number[];
  sum: number;
  count: number;
}

export class Histogram extends Metric<HistogramState> {
  readonly type = 'histogram' as const;
  readonly buckets: readonly number[];
  /** The series without labels, looked up once: some histograms take an observation per write. */
  private unlabelled: HistogramState | undefined;

  constructor(name: string, help: string, buckets: readonly number[], labelNames: readonly string[] = []) {
    super(name, help, labelNames);
    if (labelNames.includes('le')) throw new Error(`${name}: "le" is reserved for histogram buckets`);
    const finite = buckets.filter((b) => b !== Number.POSITIVE_INFINITY);
    for (let i = 0; i < finite.length; i++) {
      if (!Number.isFinite(finite[i]!) || (i > 0 && finite[i]! <= finite[i - 1]!)) {
        throw new Error(`${name}: buckets must be finite and strictly increasing`);
      }
    }
    this.buckets = finite;
  }

  protected initial(): HistogramState {
    return { counts: new Array<number>(this.buckets.length).fill(0), sum: 0, count: 0 };
  }

  protected samples(labels: [string, string][], s: HistogramState): string[] {
    const out: string[] = [];
    let cumulative = 0;
    for (let i = 0; i < this.buckets.length; i++) {
      cumulative += s.counts[i]!;
      const le = formatLabels([...labels, ['le', formatValue(this.buckets[i]!)]]);
      out.push(`${this.name}_bucket${le} ${cumulative}`);
    }
    out.push(`${this.name}_bucket${formatLabels([...labels, ['le', '+Inf']])} ${s.count}`);
    out.push(`${this.name}_sum${formatLabels(labels)} ${formatValue(s.sum)}`);
    out.push(`${this.name}_count${formatLabels(labels)} ${s.count}`);
    return out;
  }

  observe(value: number, labels?: Labels): void {
    let s: HistogramState;
    if (labels !== undefined) s = this.at(labels);
    else {
      this.unlabelled ??= this.at({});
      s = this.unlabelled;
    }
    // Buckets are upper bounds (le = less than or equal); above the last one only +Inf counts it.
    const buckets = this.buckets;
    for (let i = 0; i < buckets.length; i++) {
      if (value <= buckets[i]!) {
        s.counts[i]!++;
        break;
      }
    }
    s.sum += value;
    s.count++;
  }

  /** Count and sum of one series (for tests and status). */
  get(labels: Labels = {}): { count: number; sum: number } {
    const s = this.at(labels);
    return { count: s.count, sum: s.sum };
  }
}

/** A registry: metrics render in registration order. */
export class Metrics {
  private readonly metrics: (Counter | Gauge | Histogram)[] = [];
  private readonly names = new Set<string>();
  private readonly hooks: (() => void)[] = [];

  private add<M extends Counter | Gauge | Histogram>(m: M): M {
    if (this.names.has(m.name)) throw new Error(`metric ${m.name} registered twice`);
    this.names.add(m.name);
    this.metrics.push(m);
    return m;
  }

  counter(name: string, help: string, labelNames: readonly string[] = []): Counter {
    return this.add(new Counter(name, help, labelNames));
  }

  gauge(name: string, help: string, labelNames: readonly string[] = []): Gauge {
    return this.add(new Gauge(name, help, labelNames));
  }

  histogram(
    name: string,
    help: string,
    buckets: readonly number[],
    labelNames: readonly string[] = [],
  ): Histogram {
    return this.add(new Histogram(name, help, buckets, labelNames));
  }

  /** Runs before every render: copy values kept elsewhere into the metrics here. */
  onCollect(hook: () => void): void {
    this.hooks.push(hook);
  }

  /** The text exposition format, ending with a newline as Prometheus expects. */
  render(): string {
    for (const h of this.hooks) h();
    return `${this.metrics.map((m) => m.render()).join('\n')}\n`;
  }
}

/** The node's metrics, named as in the contract (etcd-like names where etcd has one). */
export interface RaftMetrics {
  readonly registry: Metrics;
  readonly term: Gauge;
  readonly commitIndex: Gauge;
  readonly appliedIndex: Gauge;
  /** Labelled {result: 'ok' | 'dropped' | 'timeout'}. */
  readonly proposals: Counter;
  readonly walFsyncSeconds: Histogram;
  /** Labelled {type: MsgApp, …}. */
  readonly messagesSent: Counter;
  readonly messagesReceived: Counter;
  readonly leaderChanges: Counter;
  /** Labelled {kind: 'created' | 'restored'}: taken of this node's state, or installed from the leader's. */
  readonly snapshots: Counter;
  /** From capturing the state to the snapshot being durable and the log compacted. */
  readonly snapshotSeconds: Histogram;
  /** A write served by this node, from reaching it to its answer. */
  readonly writeSeconds: Histogram;
}

export function createRaftMetrics(registry = new Metrics()): RaftMetrics {
  return {
    registry,
    term: registry.gauge('raft_term', 'The current Raft term of this node.'),
    commitIndex: registry.gauge('raft_commit_index', 'The highest log index known to be committed.'),
    appliedIndex: registry.gauge('raft_applied_index', 'The highest log index applied to the state machine.'),
    proposals: registry.counter('raft_proposals_total', 'Client proposals by outcome.', ['result']),
    walFsyncSeconds: registry.histogram(
      'wal_fsync_seconds',
      'Latency of WAL fsyncs (one per Ready that must sync).',
      FSYNC_BUCKETS,
    ),
    messagesSent: registry.counter('raft_messages_sent_total', 'Raft messages sent to peers, by type.', [
      'type',
    ]),
    messagesReceived: registry.counter(
      'raft_messages_received_total',
      'Raft messages received from peers, by type.',
      ['type'],
    ),
    leaderChanges: registry.counter('raft_leader_changes_total', 'Times this node saw a new leader.'),
    snapshots: registry.counter(
      'raft_snapshots_total',
      'Snapshots created here or restored from the leader.',
      ['kind'],
    ),
    snapshotSeconds: registry.histogram(
      'snapshot_save_seconds',
      'Wall time of creating a snapshot: encoding the captured state, writing and syncing the file.',
      // etcd's snap_save_total_duration_seconds uses these buckets too (1 ms doubling to ~8 s).
      FSYNC_BUCKETS,
    ),
    writeSeconds: registry.histogram(
      'kv_write_seconds',
      'Writes this node served, from reaching the node to their answer: waiting to be proposed, replication to a quorum, apply.',
      WRITE_BUCKETS,
    ),
  };
}

/**
 * The process's own health, under the names Prometheus' Node.js clients use: memory, CPU, and
 * how late the event loop ran. A node's requests, heartbeats and Readys all wait on that one
 * loop, so a stall there (a long collection, a large snapshot installed, a slow disk call made
 * synchronously) shows as every latency at once; the lag gauges cover the time since the
 * previous scrape, so a stall between two scrapes is not averaged away. Returns a function
 * that stops the loop monitor.
 */
export function registerProcessMetrics(registry: Metrics): () => void {
  const rss = registry.gauge('process_resident_memory_bytes', 'Resident memory size in bytes.');
  const cpu = registry.gauge(
    'process_cpu_seconds_total',
    'User and system CPU time spent by the process, in seconds.',
  );
  const heapUsed = registry.gauge('nodejs_heap_size_used_bytes', 'V8 heap in use, in bytes.');
  const external = registry.gauge(
    'nodejs_external_memory_bytes',
    'Memory of buffers and other objects outside the V8 heap, in bytes (log entries, snapshots).',
  );
  const lag = {
    p50: registry.gauge(
      'nodejs_eventloop_lag_p50_seconds',
      'Median event loop lag since the previous scrape.',
    ),
    p99: registry.gauge(
      'nodejs_eventloop_lag_p99_seconds',
      '99th percentile of event loop lag since the previous scrape.',
    ),
    max: registry.gauge(
      'nodejs_eventloop_lag_max_seconds',
      'Longest event loop lag since the previous scrape.',
    ),
  };
  const utilization = registry.gauge(
    'nodejs_eventloop_utilization',
    'Share of the time since the previous scrape the event loop spent running rather than waiting for I/O (0–1). Near 1 on a leader: its loop is what limits the cluster.',
  );
  const loop = new LoopLag();
  let busySince = performance.eventLoopUtilization();
  registry.onCollect(() => {
    const mem = process.memoryUsage();
    rss.set(mem.rss);
    heapUsed.set(mem.heapUsed);
    external.set(mem.external);
    const used = process.cpuUsage();
    cpu.set((used.user + used.system) / 1e6);
    const window = loop.take();
    lag.p50.set(window.p50);
    lag.p99.set(window.p99);
    lag.max.set(window.max);
    const now = performance.eventLoopUtilization();
    utilization.set(Math.round(performance.eventLoopUtilization(now, busySince).utilization * 1e4) / 1e4);
    busySince = now;
  });
  return () => loop.stop();
}

/**
 * How late a 10 ms timer runs, in seconds, kept per scrape window. perf_hooks'
 * monitorEventLoopDelay would do it in C++, but it drops the first interval after each
 * reset(), so a stall that began just after a scrape went unseen; one timer callback per
 * 10 ms costs nothing a node would notice.
 */
class LoopLag {
  private static readonly PERIOD_MS = 10;
  /** The window's samples; a node scraped rarely keeps its latest MAX_SAMPLES (≈ 11 min). */
  private static readonly MAX_SAMPLES = 1 << 16;
  private samples: number[] = [];
  private next = 0;
  private max = 0;
  private last = performance.now();
  private readonly timer = setInterval(() => this.sample(), LoopLag.PERIOD_MS).unref();

  private sample(): void {
    const now = performance.now();
    const lagMs = Math.max(0, now - this.last - LoopLag.PERIOD_MS);
    this.last = now;
    if (this.samples.length < LoopLag.MAX_SAMPLES) this.samples.push(lagMs);
    else this.samples[this.next++ % LoopLag.MAX_SAMPLES] = lagMs;
    if (lagMs > this.max) this.max = lagMs;
  }

  /** The window since the previous call, in seconds (to the microsecond), and a new window started. */
  take(): { p50: number; p99: number; max: number } {
    const sorted = this.samples.sort((a, b) => a - b);
    const seconds = (ms: number) => Math.round(ms * 1e3) / 1e6;
    const at = (q: number) =>
      sorted.length === 0 ? 0 : seconds(sorted[Math.floor(q * (sorted.length - 1))]!);
    const window = { p50: at(0.5), p99: at(0.99), max: seconds(this.max) };
    this.samples = [];
    this.next = 0;
    this.max = 0;
    return window;
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
