// npm run chaos -- [--nodes 3|5] [--duration 60s] [--seed S] [--faults kill,partition,…] [--runs N]
import { DEFAULT_OPTIONS, FAULT_KINDS, type FaultKind, runChaos, summarize } from './runner.js';

function usage(msg?: string): never {
  if (msg) process.stderr.write(`chaos: ${msg}\n`);
  process.stderr.write(
    `usage: npm run chaos -- [--nodes 3|5] [--duration 60s] [--seed S] [--runs N] [--clients N] [--faults ${FAULT_KINDS.join(',')}]\n`,
  );
  process.exit(2);
}

function parseDuration(s: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(s);
  if (!m) usage(`bad duration ${s}`);
  const n = Number(m[1]);
  return m[2] === 'ms' ? n : m[2] === 'm' ? n * 60_000 : n * 1000;
}

const argv = process.argv.slice(2);
const opt = new Map<string, string>();
for (let i = 0; i < argv.length; i++) {
  const a = argv[i]!;
  if (!a.startsWith('--')) usage(`unexpected argument ${a}`);
  const [k, v] = a.includes('=') ? a.slice(2).split('=', 2) : [a.slice(2), argv[++i]];
  if (v === undefined) usage(`${a} needs a value`);
  opt.set(k!, v);
}
for (const k of opt.keys()) {
  if (!['nodes', 'duration', 'seed', 'faults', 'runs', 'clients'].includes(k)) usage(`unknown option --${k}`);
}
const nodes = Number(opt.get('nodes') ?? 3);
if (!Number.isInteger(nodes) || nodes < 3 || nodes > 9) usage('--nodes must be 3..9');
const durationMs = parseDuration(opt.get('duration') ?? '60s');
const runs = Number(opt.get('runs') ?? 1);
const clients = Number(opt.get('clients') ?? DEFAULT_OPTIONS.clients);
const firstSeed = opt.has('seed') ? Number(opt.get('seed')) : Math.floor(Math.random() * 2 ** 31);
if (!Number.isSafeInteger(firstSeed)) usage('--seed must be an integer');
const faults = (opt.get('faults')?.split(',').filter(Boolean) ?? [...FAULT_KINDS]) as FaultKind[];
for (const f of faults) if (!FAULT_KINDS.includes(f)) usage(`unknown fault ${f}`);

const ac = new AbortController();
let interrupts = 0;
const onSignal = () => {
  interrupts++;
  if (interrupts === 1) {
    process.stderr.write(
      '\nchaos: interrupted: healing, checking and cleaning up (Ctrl-C again to quit now)\n',
    );
    ac.abort();
  } else process.exit(130);
};
process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);

let failed = 0;
for (let r = 0; r < runs; r++) {
  if (ac.signal.aborted) break;
  const seed = firstSeed + r;
  try {
    const report = await runChaos({
      seed,
      nodes,
      durationMs,
      faults,
      clients,
      signal: ac.signal,
      log: (l) => process.stdout.write(`${l}\n`),
    });
    process.stdout.write(`${summarize(report)}\n`);
    if (report.violations.length > 0) failed++;
  } catch (err) {
    // The harness itself failed (e.g. a node did not start on an overloaded machine).
    process.stderr.write(`chaos: run with seed ${seed} aborted: ${(err as Error).message}\n`);
    failed++;
  }
}
process.exit(failed > 0 ? 1 : ac.signal.aborted ? 130 : 0);
