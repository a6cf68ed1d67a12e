// bench:console — how much traffic the console's store absorbs while the views still render
// at most 20 times a second. Synthetic events (messages, readies with entries, state frames)
// are fed at increasing target rates; each step reports events/s absorbed, publishes
// (= renders) per second, CPU and memory. A subscriber that builds what the dashboard builds
// (the filtered visible lines) stands in for React, so the render side's cost is counted too.
//
//   npm run bench:console               # ~1 minute
//   npm run bench:console -- --seconds 2   # per step; shorter

import { parseArgs } from 'node:util';
import type { NodeEvent, NodeState } from '../src/protocol/control.js';
import { parseFilter } from '../src/ui/commandline.js';
import { ClusterStore } from '../src/ui/store.js';
import { visibleItems } from '../src/ui/views/EventStream.js';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '8' },
    nodes: { type: 'string', default: '5' },
    json: { type: 'boolean', default: false },
  },
});
const STEP_SECONDS = Number(values.seconds);
const NODES = Number(values.nodes);
const RATES = [1_000, 5_000, 20_000, 50_000, 100_000, 200_000, 400_000];

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

interface StepResult {
  targetRate: number;
  absorbedPerSec: number;
  rendersPerSec: number;
  cpuPercent: number;
  rssMiB: number;
  heapMiB: number;
  behind: boolean;
}

async function step(targetRate: number): Promise<StepResult> {
  const store = new ClusterStore();
  const filter = parseFilter('!MsgHeartbeat');
  let renders = 0;
  store.subscribe(() => {
    renders++;
    // What the dashboard does per render: filter and slice the visible lines.
    visibleItems(store.getSnapshot().events, filter, 0, 40);
  });
  const start = performance.now();
  const cpu0 = process.cpuUsage();
  let fed = 0;
  let behind = false;
  const sliceMs = 10;
  // Feed in 10 ms slices, yielding to the event loop between them so timers (publishes) run.
  while (performance.now() - start < STEP_SECONDS * 1000) {
    const elapsed = (performance.now() - start) / 1000;
    const due = Math.floor(elapsed * targetRate) - fed;
    const sliceStart = performance.now();
    for (let i = 0; i < due; i++) {
      const node = (i % NODES) + 1;
      const r = fed % 10;
      store.ingest({ type: 'event', event: r === 0 ? ready(node) : message(node) });
      if (fed % 5000 === 0)
        for (let id = 1; id <= NODES; id++) store.ingest({ type: 'state', state: state(id) });
      fed++;
      // Over budget for this slice: the feeder cannot keep the target rate.
      if ((i & 1023) === 0 && performance.now() - sliceStart > sliceMs * 4) {
        behind = true;
        break;
      }
    }
    await new Promise((r) => setTimeout(r, sliceMs));
  }
  const seconds = (performance.now() - start) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const mem = process.memoryUsage();
  store.dispose();
  return {
    targetRate,
    absorbedPerSec: Math.round(fed / seconds),
    rendersPerSec: Number((renders / seconds).toFixed(1)),
    cpuPercent: Math.round(((cpu.user + cpu.system) / 1000 / (seconds * 1000)) * 100),
    rssMiB: Math.round(mem.rss / 2 ** 20),
    heapMiB: Math.round(mem.heapUsed / 2 ** 20),
    behind: behind || fed < targetRate * seconds * 0.9,
  };
}

const results: StepResult[] = [];
if (!values.json) {
  console.log(`bench:console — ${NODES} nodes, ${STEP_SECONDS}s per step, store publish cap 20/s`);
  console.log('target ev/s  absorbed ev/s  renders/s  cpu%  rss MiB  heap MiB');
}
for (const rate of RATES) {
  const r = await step(rate);
  results.push(r);
  if (!values.json) {
    console.log(
      `${String(r.targetRate).padStart(11)}  ${String(r.absorbedPerSec).padStart(13)}  ${String(r.rendersPerSec).padStart(9)}  ${String(r.cpuPercent).padStart(4)}  ${String(r.rssMiB).padStart(7)}  ${String(r.heapMiB).padStart(8)}${r.behind ? '  (saturated)' : ''}`,
    );
  }
  if (r.rendersPerSec > 21) {
    console.error(`renders exceeded 20/s at ${rate} events/s`);
    process.exitCode = 1;
  }
  if (r.behind && rate > 50_000) break;
}
if (values.json) console.log(JSON.stringify({ nodes: NODES, stepSeconds: STEP_SECONDS, results }, null, 2));
