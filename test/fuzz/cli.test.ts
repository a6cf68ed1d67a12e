// Fuzzing raftctl's command line: random argv for status/put/get/del/node/fault/member with
// junk flags and values. Every run must end by itself with exit code 0–3, say something on
// stderr when it fails, and never show a stack trace. Up to 48 runs (and about 10 s), 4 at a
// time, each with a short timeout; HOME and XDG dirs point at a temp dir so no real settings or cluster is touched.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { BIN, ROOT } from '../e2e/harness.js';

const RUNS = 48;
const PARALLEL = 4;
const TIMEOUT_MS = 8000;
const BUDGET_MS = 10_000;

const home = mkdtempSync(path.join(os.tmpdir(), 'raftctl-fuzz-cli-'));
afterAll(() => rmSync(home, { recursive: true, force: true }));

const junk = fc.oneof(
  fc.string({ maxLength: 12 }),
  fc.constantFrom(
    '',
    '-',
    '--',
    '-1',
    '0',
    'NaN',
    '1e309',
    '99999999999999999999',
    '127.0.0.1:1',
    '127.0.0.1:99999',
    '[::1]',
    '0.0.0.0:7',
    '10.255.255.1:7001',
    '1=127.0.0.1:1',
    '1=',
    '=,=',
    '1,2,,3',
    '500ms',
    '-5s',
    '%',
    '$(id)',
    '../../etc/passwd',
    'x'.repeat(300),
    '{"a":1}',
  ),
);

// Flags each command knows, and some it does not.
const flags = fc.constantFrom(
  '--endpoints',
  '-e',
  '--token',
  '--timeout',
  '--json',
  '--no-color',
  '--name',
  '--data-dir',
  '--serializable',
  '--id',
  '--listen',
  '--peers',
  '--join',
  '--cluster',
  '--tick-ms',
  '--election-ticks',
  '--heartbeat-ticks',
  '--snapshot-every',
  '--snapshot-bytes',
  '--log-level',
  '--tls-ca',
  '--tls-cert',
  '--tls-key',
  '--allow-faults',
  '--bogus',
  '-z',
  '--help',
  '--version',
);

const argv: fc.Arbitrary<string[]> = fc
  .tuple(
    fc.constantFrom('status', 'put', 'get', 'del', 'node', 'fault', 'member', 'transfer', 'nonsense'),
    fc.array(
      fc.oneof(
        // Plausible words, so some runs get past parsing and fail (or not) later.
        {
          weight: 3,
          arbitrary: fc.constantFrom('k', 'v', '1', '2', '--json', '--timeout=300ms', 'add', 'list'),
        },
        junk,
        fc.tuple(flags, junk).map(([f, v]) => `${f}=${v}`),
        flags,
      ),
      { maxLength: 5 },
    ),
  )
  .map(([cmd, raw]) => {
    // An OS argv cannot carry NUL bytes.
    const rest = raw.map((a) => a.replaceAll('\u0000', ''));
    const args = [cmd, ...rest];
    // Never reach a real machine: an endpoint that always refuses, unless the run names one.
    if (cmd !== 'node' && !rest.some((a) => a.startsWith('--endpoints') || a.startsWith('-e')))
      args.push('--endpoints', '127.0.0.1:1');
    // A `node` run must not start a node: without a token it cannot listen beyond loopback,
    // and it gets a data dir under the temp home.
    if (cmd === 'node') args.push('--data-dir', path.join(home, 'node'));
    return args;
  });

interface Run {
  args: string[];
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function run(args: string[]): Promise<Run> {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    HOME: home,
    XDG_CONFIG_HOME: path.join(home, 'config'),
    XDG_DATA_HOME: path.join(home, 'data'),
    NO_COLOR: '1',
  };
  delete env.RAFTCTL_TOKEN;
  delete env.RAFTCTL_ENDPOINTS;
  const proc = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  proc.stdout.setEncoding('utf8').on('data', (d: string) => {
    stdout += d;
  });
  proc.stderr.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
  });
  const timer = setTimeout(() => proc.kill('SIGKILL'), TIMEOUT_MS);
  return new Promise((resolve) => {
    proc.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ args, code, signal, stdout, stderr });
    });
  });
}

describe('CLI argument fuzzing', () => {
  it(`up to ${RUNS} random command lines exit 0–3 with a message and no stack trace`, async () => {
    const seed = Number(process.env.FUZZ_SEED ?? Date.now() % 2 ** 31);
    const cases = fc.sample(argv, { numRuns: RUNS, seed });
    const results: Run[] = [];
    // Bounded in time too: on a loaded machine each run can take a second or more.
    const deadline = Date.now() + BUDGET_MS;
    for (let i = 0; i < cases.length && Date.now() < deadline; i += PARALLEL) {
      results.push(...(await Promise.all(cases.slice(i, i + PARALLEL).map(run))));
    }
    expect(results.length).toBeGreaterThanOrEqual(PARALLEL * 2);
    const bad = results.filter(
      (r) =>
        r.code === null ||
        ![0, 1, 2, 3].includes(r.code) ||
        (r.code !== 0 && r.stderr.trim() === '') ||
        /^\s+at /m.test(r.stderr) ||
        /^\s+at /m.test(r.stdout),
    );
    const show = (r: Run) =>
      `raftctl ${JSON.stringify(r.args)} → ${r.code ?? r.signal}\n${r.stderr.slice(0, 600)}`;
    expect(bad.map(show), `seed ${seed}`).toEqual([]);
    const codes = results.reduce<Record<string, number>>((m, r) => {
      m[String(r.code)] = (m[String(r.code)] ?? 0) + 1;
      return m;
    }, {});
    process.stderr.write(
      `cli fuzz (seed ${seed}): ${results.length} runs, exit codes ${JSON.stringify(codes)}\n`,
    );
  }, 60_000);
});
