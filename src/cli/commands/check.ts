// `raftctl check perf`: write a paced load to a running cluster for a while, then say whether
// it kept up and how slow its slowest writes were (src/client/perf-check.ts). Exit 0 when
// every check passes, 1 when one fails.
import { randomBytes } from 'node:crypto';
import type { Argv } from 'yargs';
import { ClusterClient } from '../../client/cluster.js';
import {
  judgePerf,
  PERF_LIMITS,
  PERF_LOADS,
  PERF_VALUE_BYTES,
  type PerfCheck,
  type PerfLoadName,
  type PerfResult,
  perfKeysInUse,
  removePerfKeys,
  runPerfLoad,
} from '../../client/perf-check.js';
import { parseDuration, UsageError } from '../args.js';
import { cliErrorFrom } from '../connect.js';
import { CliError, EXIT } from '../exit.js';
import { table } from '../format.js';
import {
  jsonOption,
  onInterrupt,
  out,
  printJson,
  say,
  settings,
  type TargetArgs,
  targetOf,
  targetOptions,
  timeoutOf,
} from './common.js';

interface Args extends TargetArgs {
  json: boolean;
  load: PerfLoadName;
  duration: string;
  clients?: number;
  rate?: number;
  prefix?: string;
}

/** Requests each client connection carries at most, as the bench has it. */
const CLIENTS_PER_CONNECTION = 128;
const MAX_DURATION_MS = 600_000;

function positiveInteger(v: number | undefined, flag: string, max: number): number | undefined {
  if (v === undefined) return undefined;
  if (!(Number.isInteger(v) && v >= 1 && v <= max)) {
    throw new UsageError(`bad ${flag} ${String(v)}: expected a whole number from 1 to ${max}`);
  }
  return v;
}

const fmtRate = (n: number) => `${Math.round(n).toLocaleString('en-US')} /s`;
const fmtMs = (ms: number) =>
  Number.isNaN(ms) ? '—' : ms < 10 ? `${ms.toFixed(2)} ms` : `${ms.toFixed(1)} ms`;

const verdict = (pass: boolean) => (pass ? 'PASS' : 'FAIL');

/** A check's measured value and limit as the table shows them. */
function checkCells(c: PerfCheck): [string, string] {
  switch (c.name) {
    case 'throughput':
      return [fmtRate(c.measured), `≥ ${fmtRate(c.limit)}`];
    case 'errors':
      return [String(c.measured), String(c.limit)];
    default:
      return [fmtMs(c.measured), `≤ ${fmtMs(c.limit)}`];
  }
}

function report(argv: Args, r: PerfResult, checks: PerfCheck[], pass: boolean, interrupted: boolean): void {
  if (argv.json) {
    printJson({ ...r, checks, pass, interrupted });
    return;
  }
  out(
    table(
      ['check', 'measured', 'limit', 'result'],
      checks.map((c) => [c.name, ...checkCells(c), verdict(c.pass)]),
    ),
  );
  out(
    `${r.ok.toLocaleString('en-US')} puts in ${(r.durationMs / 1000).toFixed(1)} s, p50 ${fmtMs(r.p50Ms)}` +
      (r.errorSamples.length > 0 ? `; errors: ${r.errorSamples.join('; ')}` : ''),
  );
  out(interrupted ? 'INTERRUPTED' : verdict(pass));
}

export function checkCommand(y: Argv): Argv {
  return y.command('check', 'Check a running cluster', (c) =>
    c
      .command(
        'perf',
        'Write a paced load for a while, then judge the rate and latency the cluster gave it',
        (a) =>
          jsonOption(targetOptions(a))
            .option('load', {
              choices: Object.keys(PERF_LOADS) as PerfLoadName[],
              default: 'm' as PerfLoadName,
              describe: `Clients and puts/s: ${Object.entries(PERF_LOADS)
                .map(([n, l]) => `${n} ${l.clients} at ${l.rate.toLocaleString('en-US')}/s`)
                .join(', ')}`,
            })
            .option('duration', {
              type: 'string',
              default: '60s',
              describe: 'How long to write (e.g. 30s, 2m)',
            })
            .option('clients', { type: 'number', describe: "Writers in flight (overrides the load's)" })
            .option('rate', {
              type: 'number',
              describe: "Puts per second asked for in all (overrides the load's)",
            })
            .option('prefix', {
              type: 'string',
              describe:
                'Keys written under this prefix, deleted afterwards (default: raftctl-check-perf/<random>/)',
            })
            .example('$0 check perf', '200 writers at 5,000 puts/s for 60 s; exit 1 if a check fails')
            .example('$0 check perf --load l --duration 30s --json', 'A heavier load, the result as JSON')
            .epilogue(
              `Passes when the puts/s reach ${PERF_LIMITS.minRateFraction * 100}% of the rate asked, p99 stays within ` +
                `${PERF_LIMITS.p99Ms} ms, the slowest put within ${PERF_LIMITS.slowestMs} ms, and no put fails. ` +
                `Values are ${PERF_VALUE_BYTES} bytes; the check refuses to run if one of its keys already holds a value.`,
            ),
        async (argv) => {
          await checkPerf(argv as Args);
        },
      )
      .demandCommand(1, 'name a check: perf'),
  );
}

async function checkPerf(argv: Args): Promise<void> {
  const durationMs = parseDuration(argv.duration, '--duration', MAX_DURATION_MS);
  const load = PERF_LOADS[argv.load];
  const clients = positiveInteger(argv.clients, '--clients', 10_000) ?? load.clients;
  const rate = positiveInteger(argv.rate, '--rate', 10_000_000) ?? load.rate;
  const prefix = argv.prefix ?? `raftctl-check-perf/${randomBytes(4).toString('hex')}/`;
  const target = targetOf(argv);
  const timeoutMs = timeoutOf(argv);
  let cluster: ClusterClient;
  try {
    cluster = await ClusterClient.connect(target.endpoints, {
      token: target.token ?? settings().tokens[target.endpoints[0]!],
      ...(target.tls === undefined ? {} : { tls: target.tls }),
      timeoutMs,
      commandTimeoutMs: timeoutMs,
      connectionsPerNode: Math.ceil(clients / CLIENTS_PER_CONNECTION),
    });
  } catch (err) {
    throw cliErrorFrom(err, 'connect');
  }
  const abort = new AbortController();
  onInterrupt(() => abort.abort());
  try {
    const inUse = await perfKeysInUse(cluster, prefix, clients).catch((err: unknown) => {
      throw cliErrorFrom(err, 'check perf');
    });
    if (inUse.length > 0) {
      throw new CliError(
        `${inUse.length} of the keys the check would write already hold values (e.g. ${JSON.stringify(inUse[0])}): choose another --prefix`,
      );
    }
    say(
      `check perf: ${clients} clients at ${rate.toLocaleString('en-US')} puts/s for ${durationMs / 1000} s, ` +
        `${PERF_VALUE_BYTES}-byte values, keys under ${prefix} (deleted afterwards)`,
    );
    let lastSaid = 0;
    const result = await runPerfLoad(cluster, {
      clients,
      rate,
      durationMs,
      prefix,
      signal: abort.signal,
      onProgress: (p) => {
        if (p.elapsedMs - lastSaid < 10_000) return;
        lastSaid = p.elapsedMs;
        say(
          `  ${Math.round(p.elapsedMs / 1000)} s: ${p.ok.toLocaleString('en-US')} puts, ${p.errors} errors`,
        );
      },
    });
    try {
      await removePerfKeys(cluster, prefix, clients);
    } catch (err) {
      say(`raftctl: could not delete every key under ${prefix}: ${(err as Error).message}`);
    }
    const checks = judgePerf(result);
    const pass = checks.every((c) => c.pass);
    report(argv, result, checks, pass, abort.signal.aborted);
    if (abort.signal.aborted) process.exitCode = EXIT.interrupted;
    else if (!pass) process.exitCode = EXIT.failure;
  } finally {
    onInterrupt(undefined);
    await cluster.close();
  }
}
