// bench:console — how much traffic the console absorbs, and what that costs, with the REAL
// dashboard rendering. Each step mounts the component tree runConsole renders (the Dashboard
// under the store and controller contexts, with the same Ink render options) into a fake
// 120×40 TTY, feeds the store synthetic events (messages, readies with entries) at a target
// rate plus a state frame per node every 250 ms (what ClusterConnections subscribes to), and
// reports: events/s absorbed, store publishes/s, frames Ink actually wrote per second (and
// bytes), process CPU as a fraction of one core, event-loop busy time split into feeding and
// the rest (React, Yoga, Ink, timers, GC), and peak RSS / heap.
//
// The feeder runs in the same process and its cost is in the CPU figure; it stands in for the
// WebSocket frames' parsing, which the real console pays too. Its own cost per event (building
// the synthetic event, without ingesting it) is measured once and printed.
//
//   npm run bench:console                          # ~5 s per step, 1k … 200k events/s
//   npm run bench -- console --seconds 2           # shorter steps
//   npm run bench -- console --rates 20000         # one step
//   npm run bench -- console --filter '!MsgHeartbeat'   # with an event filter set
//   npm run bench -- console --store-only          # the old measurement: store + visible lines only
//   npm run bench -- console --json                # JSON on stdout instead of the table

import { EventEmitter } from 'node:events';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { NodeEvent, NodeState } from '../src/protocol/control.js';
import { prepareEnvironment } from '../src/ui/app.js';
import { parseFilter } from '../src/ui/commandline.js';
import { ClusterStore } from '../src/ui/store.js';
import { fullGc } from '../test/support/gc.js';
import { machineInfo, parseFlags } from './harness.js';

const { values } = parseFlags(() =>
  parseArgs({
    options: {
      seconds: { type: 'string', default: '5' },
      nodes: { type: 'string', default: '5' },
      rates: { type: 'string', default: '1000,5000,20000,50000,100000,200000' },
      filter: { type: 'string', default: '' },
      columns: { type: 'string', default: '120' },
      rows: { type: 'string', default: '40' },
      'store-only': { type: 'boolean', default: false },
      incremental: { type: 'boolean', default: false },
      'max-fps': { type: 'string', default: '20' },
      json: { type: 'boolean', default: false },
      'no-save': { type: 'boolean', default: false },
    },
  }),
);
const STEP_SECONDS = Number(values.seconds);
const NODES = Number(values.nodes);
const RATES = values.rates.split(',').map((r) => Number(r.trim()));
const COLUMNS = Number(values.columns);
const ROWS = Number(values.rows);
const STORE_ONLY = values['store-only'];
const STATE_EVERY_MS = 250;
const TARGET_RATE = 20_000;
const TARGET_CORES = 0.5;

// Before Ink (chalk, is-in-ci) is imported: the same environment runConsole prepares for a
// terminal, and colour on (chalk would otherwise see a pipe and drop the escapes a terminal gets).
if (process.env.FORCE_COLOR === undefined && process.env.NO_COLOR === undefined)
  process.env.FORCE_COLOR = '1';
const themeName = prepareEnvironment({}, process.env, true);
/** prepareEnvironment sets NODE_ENV=production when unset; NODE_ENV=development measures the dev build. */
const REACT_BUILD = process.env.NODE_ENV === 'production' ? 'production' : 'development';

// ---- Synthetic traffic ---------------------------------------------------------------

let seq = 0;
let index = 1;

function message(node: number): NodeEvent {
  const to = (node % NODES) + 1;
  return {
    seq: ++seq,
    at: Date.now(),
    node,
    kind: 'message',
    from: node,
    to,
    msgType: seq % 3 === 0 ? 'MsgHeartbeat' : 'MsgApp',
    term: 2,
    logTerm: 2,
    index,
    commit: index - 1,
    reject: false,
    entries: 1,
    describe: `${node}->${to} MsgApp Term:2 Log:2/${index} Commit:${index - 1} Entries:[2/${index + 1} EntryNormal "x"]`,
    direction: 'out',
  };
}

function ready(node: number): NodeEvent {
  index++;
  const e = { term: 2, index, type: 'EntryNormal' as const, data: '"put k v"' };
  return {
    seq: ++seq,
    at: Date.now(),
    node,
    kind: 'ready',
    hardState: { term: 2, vote: 1, commit: index },
    entries: [e],
    committed: [e],
    messages: 1,
    mustSync: true,
    describe: `Ready MustSync=true:\nHardState Term:2 Vote:1 Commit:${index}\nEntries:\n2/${index} EntryNormal "put k v"\n`,
  };
}

function state(id: number): NodeState {
  return {
    id,
    role: id === 1 ? 'leader' : 'follower',
    term: 2,
    vote: 1,
    leader: 1,
    commit: index,
    applied: index,
    lastIndex: index,
    firstIndex: 1,
    leadTransferee: 0,
    config: {
      voters: Array.from({ length: NODES }, (_, i) => i + 1),
      votersOutgoing: [],
      learners: [],
      learnersNext: [],
      autoLeave: false,
    },
    transport: [],
    faults: [],
    snapshotIndex: 0,
    kvKeys: 1,
    at: Date.now(),
  };
}

function event(fed: number, node: number): NodeEvent {
  return fed % 10 === 0 ? ready(node) : message(node);
}

function seed(store: ClusterStore): void {
  const members = Array.from({ length: NODES }, (_, i) => ({
    id: i + 1,
    address: `127.0.0.1:${7001 + i}`,
    learner: false,
  }));
  for (const m of members) {
    store.ingest({
      type: 'hello',
      address: m.address,
      hello: { type: 'hello', version: 1, nodeId: m.id, clusterId: 'bench', members, allowFaults: false },
    });
    store.ingest({ type: 'state', state: state(m.id) });
  }
}

/** ns per synthetic event built (not ingested): the feeder's own share of the CPU figure. */
function feederCost(): number {
  const n = 200_000;
  let sink = 0;
  for (let i = 0; i < 20_000; i++) sink += event(i, (i % NODES) + 1).seq;
  const t0 = performance.now();
  for (let i = 0; i < n; i++) sink += event(i, (i % NODES) + 1).seq;
  const ns = ((performance.now() - t0) * 1e6) / n;
  if (sink < 0) console.log(sink);
  return ns;
}

// ---- The dashboard, as runConsole mounts it --------------------------------------------

const BSU = '\x1b[?2026h';
const ESU = '\x1b[?2026l';

/** A terminal that counts: isTTY, a fixed size, and every write tallied. */
class FakeTerminal extends Writable {
  readonly isTTY = true;
  columns = COLUMNS;
  rows = ROWS;
  writes = 0;
  frames = 0;
  bytes = 0;
  constructor() {
    super({ decodeStrings: false });
  }
  override _write(chunk: string | Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.writes++;
    const s = typeof chunk === 'string' ? chunk : chunk.toString('utf8');
    // Synchronized-output brackets are written separately around each frame; not frames.
    if (s !== BSU && s !== ESU) this.frames++;
    this.bytes += Buffer.byteLength(s);
    cb();
  }
  getColorDepth(): number {
    return 8;
  }
  hasColors(): boolean {
    return true;
  }
}

class FakeStdin extends EventEmitter {
  readonly isTTY = true;
  setEncoding() {}
  setRawMode() {}
  resume() {}
  pause() {}
  ref() {}
  unref() {}
  read() {
    return null;
  }
}

interface Mounted {
  terminal: FakeTerminal;
  renders: () => { count: number; ms: number };
  unmount(): void;
}

async function mountDashboard(store: ClusterStore, filterText: string): Promise<Mounted> {
  const [
    { render },
    { createElement },
    { Dashboard },
    hooks,
    { ConsoleController },
    { buildKeymap },
    { theme },
  ] = await Promise.all([
    import('ink'),
    import('react'),
    import('../src/ui/dashboard.js'),
    import('../src/ui/hooks.js'),
    import('../src/ui/controller.js'),
    import('../src/ui/keymap.js'),
    import('../src/ui/theme.js'),
  ]);
  const terminal = new FakeTerminal();
  const keymap = buildKeymap();
  const controller = new ConsoleController({
    store,
    keymap,
    onQuit: () => {},
    pageSize: () => Math.max(1, terminal.rows - 12),
  });
  if (filterText !== '') {
    // As a user would: open the filter prompt, type, Enter.
    controller.dispatch({ type: 'command', command: 'filter' });
    controller.dispatch({ type: 'key', name: '', input: filterText });
    controller.dispatch({ type: 'key', name: 'return', input: '' });
  }
  let count = 0;
  let ms = 0;
  const tree = createElement(
    hooks.StoreContext.Provider,
    { value: store },
    createElement(
      hooks.ControllerContext.Provider,
      { value: controller },
      createElement(Dashboard, { keymap, theme: theme(themeName), mode: 'live', title: 'raftctl bench' }),
    ),
  );
  // The options runDashboard passes, except patchConsole (the bench prints between steps);
  // --max-fps and --incremental change them for experiments.
  const instance = render(tree, {
    stdout: terminal as unknown as NodeJS.WriteStream,
    stdin: new FakeStdin() as unknown as NodeJS.ReadStream,
    stderr: new FakeTerminal() as unknown as NodeJS.WriteStream,
    exitOnCtrlC: false,
    patchConsole: false,
    maxFps: Number(values['max-fps']),
    incrementalRendering: values.incremental || process.env.RAFTCTL_INCREMENTAL === '1',
    onRender: (m) => {
      count++;
      ms += m.renderTime;
    },
  });
  return {
    terminal,
    renders: () => ({ count, ms }),
    unmount: () => instance.unmount(),
  };
}

// ---- A step ----------------------------------------------------------------------------

interface StepResult {
  targetRate: number;
  seconds: number;
  absorbedPerSec: number;
  publishesPerSec: number;
  /** Ink render passes (DOM → text) per second; store-only: subscriber calls. */
  rendersPerSec: number;
  /** Frames Ink wrote to the terminal per second (0 in store-only mode). */
  framesPerSec: number;
  bytesPerSec: number;
  /** Process CPU (user + system, all threads) over the step, in cores. */
  cpuCores: number;
  /** Event-loop busy fraction, and the part of it spent in the feed loops (generate + ingest). */
  eventLoopBusy: number;
  feedBusy: number;
  /** Ink's own render time (renderNodeToOutput), ms per second. */
  inkRenderMsPerSec: number;
  rssMiB: number;
  heapMiB: number;
  cutSlices: number;
  /** Absorbed less than 95% of the target rate. */
  behind: boolean;
}

async function step(targetRate: number): Promise<StepResult> {
  const store = new ClusterStore();
  seed(store);
  let mounted: Mounted | undefined;
  let subscriberCalls = 0;
  if (STORE_ONLY) {
    const { visibleItems } = await import('../src/ui/views/EventStream.js');
    const filter = parseFilter(values.filter);
    store.subscribe(() => {
      subscriberCalls++;
      // What the event view does per render: filter and slice the visible lines.
      visibleItems(store.getSnapshot().events, filter, 0, ROWS);
    });
  } else {
    mounted = await mountDashboard(store, values.filter);
  }
  // Let the first frame out before measuring.
  await new Promise((r) => setTimeout(r, 200));
  fullGc();

  const publishes0 = store.publishes;
  const frames0 = mounted?.terminal.frames ?? 0;
  const bytes0 = mounted?.terminal.bytes ?? 0;
  const renders0 = mounted?.renders() ?? { count: 0, ms: 0 };
  let peakRss = 0;
  let peakHeap = 0;
  const sample = () => {
    const m = process.memoryUsage();
    peakRss = Math.max(peakRss, m.rss);
    peakHeap = Math.max(peakHeap, m.heapUsed);
  };
  const sampler = setInterval(sample, 250);

  const start = performance.now();
  const cpu0 = process.cpuUsage();
  const elu0 = performance.eventLoopUtilization();
  let fed = 0;
  let feedMs = 0;
  /** Slices cut short at 40 ms (a long render or GC in between left a backlog); informative. */
  let cutSlices = 0;
  let nextState = start + STATE_EVERY_MS;
  const sliceMs = 10;
  // Feed in 10 ms slices, yielding to the event loop between them so timers (publishes,
  // renders) run.
  while (performance.now() - start < STEP_SECONDS * 1000) {
    const sliceStart = performance.now();
    const due = Math.floor(((sliceStart - start) / 1000) * targetRate) - fed;
    for (let i = 0; i < due; i++) {
      store.ingest({ type: 'event', event: event(fed, (fed % NODES) + 1) });
      fed++;
      // Over budget for this slice: leave the backlog to the next one (the rate check below
      // decides whether the step kept up).
      if ((i & 1023) === 1023 && performance.now() - sliceStart > sliceMs * 4) {
        cutSlices++;
        break;
      }
    }
    if (sliceStart >= nextState) {
      for (let id = 1; id <= NODES; id++) store.ingest({ type: 'state', state: state(id) });
      nextState += STATE_EVERY_MS;
    }
    feedMs += performance.now() - sliceStart;
    await new Promise((r) => setTimeout(r, sliceMs));
  }
  const seconds = (performance.now() - start) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const elu = performance.eventLoopUtilization(elu0);
  sample();
  clearInterval(sampler);
  const publishes = store.publishes - publishes0;
  const frames = (mounted?.terminal.frames ?? 0) - frames0;
  const bytes = (mounted?.terminal.bytes ?? 0) - bytes0;
  const renders = mounted?.renders() ?? { count: subscriberCalls, ms: 0 };
  mounted?.unmount();
  store.dispose();
  const per = (x: number, digits = 1) => Number((x / seconds).toFixed(digits));
  return {
    targetRate,
    seconds: Number(seconds.toFixed(2)),
    absorbedPerSec: Math.round(fed / seconds),
    publishesPerSec: per(publishes),
    rendersPerSec: per(renders.count - renders0.count),
    framesPerSec: per(frames),
    bytesPerSec: Math.round(bytes / seconds),
    cpuCores: Number(((cpu.user + cpu.system) / 1e6 / seconds).toFixed(3)),
    eventLoopBusy: Number(elu.utilization.toFixed(3)),
    feedBusy: Number((feedMs / 1000 / seconds).toFixed(3)),
    inkRenderMsPerSec: per(renders.ms - renders0.ms),
    rssMiB: Math.round(peakRss / 2 ** 20),
    heapMiB: Math.round(peakHeap / 2 ** 20),
    cutSlices,
    behind: fed < targetRate * seconds * 0.95,
  };
}

// ---- Main ------------------------------------------------------------------------------

const machine = machineInfo();
const feederNsPerEvent = Number(feederCost().toFixed(1));
const mode = STORE_ONLY ? 'store-only' : 'dashboard';
const results: StepResult[] = [];
const pad = (v: string | number, n: number) => String(v).padStart(n);
if (!values.json) {
  console.log(
    `bench:console (${mode}) — ${NODES} nodes, ${STEP_SECONDS}s per step, ${COLUMNS}×${ROWS} terminal, ` +
      `filter ${values.filter === '' ? 'none' : `'${values.filter}'`}, theme ${themeName}, React ${REACT_BUILD} build, maxFps ${values['max-fps']}`,
  );
  console.log(
    `${machine.cpu}, ${machine.cores} cores, node ${machine.node}; load average ${machine.load1} at start; ` +
      `feeder ${feederNsPerEvent} ns/event`,
  );
  console.log(
    '  target ev/s  absorbed ev/s  publishes/s  renders/s  frames/s  KiB/s  cpu cores  loop busy  (feed)  rss MiB  heap MiB',
  );
}
for (const rate of RATES) {
  const r = await step(rate);
  results.push(r);
  if (!values.json) {
    console.log(
      `${pad(r.targetRate, 13)}  ${pad(r.absorbedPerSec, 13)}  ${pad(r.publishesPerSec, 11)}  ${pad(r.rendersPerSec, 9)}  ` +
        `${pad(r.framesPerSec, 8)}  ${pad(Math.round(r.bytesPerSec / 1024), 5)}  ${pad(r.cpuCores.toFixed(2), 9)}  ` +
        `${pad(r.eventLoopBusy.toFixed(2), 9)}  ${pad(r.feedBusy.toFixed(2), 6)}  ${pad(r.rssMiB, 7)}  ${pad(r.heapMiB, 8)}` +
        `${r.behind ? '  (saturated)' : ''}`,
    );
  }
  if (r.framesPerSec > 21 || r.publishesPerSec > 21) {
    console.error(`more than 20 publishes or frames a second at ${rate} events/s`);
    process.exitCode = 1;
  }
  if (r.behind && rate > 50_000) break;
}

const at = results.find((r) => r.targetRate === TARGET_RATE);
const target =
  at === undefined
    ? undefined
    : {
        rate: TARGET_RATE,
        maxCores: TARGET_CORES,
        absorbedPerSec: at.absorbedPerSec,
        cpuCores: at.cpuCores,
        met: !at.behind && at.absorbedPerSec >= TARGET_RATE * 0.95 && at.cpuCores < TARGET_CORES,
      };
const report = {
  suite: 'console',
  mode,
  at: new Date().toISOString(),
  machine,
  loadAverageAtEnd: Number((await import('node:os')).loadavg()[0]!.toFixed(2)),
  nodes: NODES,
  stepSeconds: STEP_SECONDS,
  terminal: { columns: COLUMNS, rows: ROWS },
  filter: values.filter,
  incremental: values.incremental,
  maxFps: Number(values['max-fps']),
  reactBuild: REACT_BUILD,
  stateEveryMs: STATE_EVERY_MS,
  feederNsPerEvent,
  results,
  target,
};
if (target !== undefined && !values.json) {
  console.log(
    `target ${TARGET_RATE} events/s under ${TARGET_CORES} core: ${target.met ? 'met' : 'MISSED'} ` +
      `(${target.absorbedPerSec} events/s at ${target.cpuCores.toFixed(2)} cores)`,
  );
}
if (!values['no-save']) {
  const dir = join(dirname(fileURLToPath(import.meta.url)), 'results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `console-${report.at.replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);
  if (!values.json) console.log(`wrote ${file}`);
}
if (values.json) console.log(JSON.stringify(report, null, 2));
