// End-to-end: the real `bin/raftctl` (built by `npm run build`) in child processes, against a
// real local cluster started with `raftctl up --detach`. Every spawned node is killed in
// afterAll by the pids in cluster.json, whatever happened in the tests.

import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ClusterFile, ManagedCluster, readClusterFile } from '../../src/cli/cluster.js';
import type { StatusReport } from '../../src/cli/format.js';

const ROOT = resolve(import.meta.dirname, '../..');
const BIN = join(ROOT, 'bin', 'raftctl');
const tmp = mkdtempSync(join(tmpdir(), 'raftctl-e2e-'));
const clusterDir = join(tmp, 'data', 'raftctl', 'clusters', 'default');

const env: NodeJS.ProcessEnv = {
  ...process.env,
  XDG_DATA_HOME: join(tmp, 'data'),
  XDG_CONFIG_HOME: join(tmp, 'config'),
  NO_COLOR: '1',
};
delete env.RAFTCTL_ENDPOINTS;
delete env.RAFTCTL_TOKEN;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Extra processes a test started itself (a joining node). */
const extra: ChildProcess[] = [];

/** The CLI started with `args`: its output so far, and its end (killed after `timeoutMs`). */
function start(
  args: string[],
  opts: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {},
): { child: ChildProcess; output: Run; done: Promise<Run> } {
  const child = spawn(process.execPath, [BIN, ...args], {
    env: opts.env ?? env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output: Run = { code: null, stdout: '', stderr: '' };
  child.stdout!.on('data', (d: Buffer) => {
    output.stdout += d.toString();
  });
  child.stderr!.on('data', (d: Buffer) => {
    output.stderr += d.toString();
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 15_000);
  const done = new Promise<Run>((resolvePromise) =>
    child.on('close', (code) => {
      clearTimeout(timer);
      output.code = code;
      resolvePromise(output);
    }),
  );
  return { child, output, done };
}

function run(args: string[], opts: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<Run> {
  return start(args, opts).done;
}

/** The cluster file `up` wrote, read as the CLI reads it. */
function clusterJson(): ClusterFile {
  const f = readClusterFile(clusterDir);
  if (f === undefined) throw new Error(`no cluster file in ${clusterDir}`);
  return f;
}

async function status(): Promise<StatusReport> {
  const r = await run(['status', '--json']);
  return JSON.parse(r.stdout) as StatusReport;
}

/** Polls `status --json` until `ok` holds (bounded). */
async function until(ok: (s: StatusReport) => boolean, timeoutMs = 8000): Promise<StatusReport> {
  const deadline = Date.now() + timeoutMs;
  let last: StatusReport | undefined;
  while (Date.now() < deadline) {
    try {
      last = await status();
      if (ok(last)) return last;
    } catch {
      // Not parseable yet (e.g. no endpoint up): poll again.
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`condition not reached; last status: ${JSON.stringify(last)}`);
}

/** Whether `pid` has exited (a zombie awaiting its reaper counts as exited). */
async function gone(pid: number, timeoutMs = 3000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    } catch {
      return true;
    }
    if (/^\d+ \(.*\) Z/.test(stat)) return true;
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
}

function freePort(): Promise<number> {
  return new Promise((res) => {
    import('node:net').then(({ createServer }) => {
      const s = createServer().listen(0, '127.0.0.1', () => {
        const a = s.address();
        s.close(() => res(typeof a === 'object' && a !== null ? a.port : 0));
      });
    });
  });
}

beforeAll(async () => {
  if (!existsSync(join(ROOT, 'dist', 'bundle', 'main.js'))) throw new Error('run `npm run build` first');
  const r = await run(['up', '3', '--detach', '--tick-ms', '20'], { timeoutMs: 30_000 });
  if (r.code !== 0) throw new Error(`up failed (${r.code}): ${r.stderr}`);
}, 40_000);

afterAll(async () => {
  await run(['down'], { timeoutMs: 10_000 }).catch(() => undefined);
  for (const c of extra) if (c.exitCode === null) c.kill('SIGKILL');
  try {
    for (const n of clusterJson().nodes) {
      if (n.pid === undefined) continue;
      try {
        process.kill(n.pid, 'SIGKILL');
      } catch {
        // Already stopped.
      }
    }
  } catch {
    // No cluster file: nothing was started.
  }
  rmSync(tmp, { recursive: true, force: true });
}, 20_000);

describe('raftctl against a detached local cluster', { timeout: 30_000 }, () => {
  it('up 3 --detach wrote cluster.json with three running nodes', () => {
    const f = clusterJson();
    expect(f.nodes.map((n) => n.id)).toEqual([1, 2, 3]);
    for (const n of f.nodes) {
      expect(n.pid).toBeGreaterThan(0);
      expect(n.address).toMatch(/^127\.0\.0\.1:\d+$/);
      expect(() => process.kill(n.pid!, 0)).not.toThrow();
      // Started with malloc's huge pages for large buffers (src/server/launch-env.ts).
      const environ = readFileSync(`/proc/${n.pid}/environ`, 'utf8').split('\0');
      expect(environ.find((v) => v.startsWith('GLIBC_TUNABLES='))).toMatch(/glibc\.malloc\.hugetlb=1/);
    }
  });

  it('status --json has the documented shape, one leader, all up', async () => {
    const s = await until((x) => x.members.every((m) => m.up && m.leader === x.leader) && x.leader !== 0);
    expect(s.members).toHaveLength(3);
    expect(s.members.filter((m) => m.role === 'leader')).toHaveLength(1);
    for (const m of s.members) {
      expect(Object.keys(m)).toEqual(
        expect.arrayContaining([
          'id',
          'address',
          'role',
          'term',
          'leader',
          'commit',
          'applied',
          'lastIndex',
          'learner',
          'up',
        ]),
      );
      expect(['leader', 'follower', 'candidate', 'precandidate', 'down']).toContain(m.role);
      expect(m.learner).toBe(false);
    }
    const table = await run(['status']);
    expect(table.code).toBe(0);
    expect(table.stdout.split('\n')[0]).toMatch(
      /^ID\s+ADDRESS\s+ROLE\s+TERM\s+LEADER\s+COMMIT\s+APPLIED\s+LAST\s+LAG\s+HEALTH/,
    );
  });

  it('put, get (linearizable and serializable), del', async () => {
    expect(await run(['put', 'greeting', 'hello'])).toMatchObject({ code: 0, stdout: 'OK\n' });
    expect(await run(['get', 'greeting'])).toMatchObject({ code: 0, stdout: 'hello\n' });
    const j = await run(['get', 'greeting', '--json']);
    expect(JSON.parse(j.stdout)).toMatchObject({ key: 'greeting', found: true, value: 'hello' });
    // A serializable read on node 3 may lag; it catches up within a few ticks.
    const deadline = Date.now() + 3000;
    let ser: Run;
    do ser = await run(['get', 'greeting', '--serializable', '--node', '3']);
    while (ser.stdout !== 'hello\n' && Date.now() < deadline);
    expect(ser.stdout).toBe('hello\n');
    expect(await run(['del', 'greeting'])).toMatchObject({ code: 0, stdout: '1\n' });
    const missing = await run(['get', 'greeting']);
    expect(missing.code).toBe(1);
    expect(missing.stdout).toBe('');
    expect(missing.stderr).toMatch(/key "greeting" not found/);
  });

  it('check perf: judges a light load and deletes its keys; fails a rate it cannot reach; refuses keys in use', async () => {
    // Whether a loaded test machine keeps up is not this test's business (benchmarks say how
    // fast the cluster is): the verdict and the exit code must agree, and every check be shown.
    const ok = await run(['check', 'perf', '--load', 's', '--duration', '2s', '--prefix', 'e2e-perf/']);
    expect([0, 1], ok.stderr).toContain(ok.code);
    expect(ok.stdout).toMatch(/^check\s+measured\s+limit\s+result$/m);
    expect(ok.stdout).toMatch(/^throughput\s+\S+ \/s\s+≥ 900 \/s\s+(PASS|FAIL)$/m);
    expect(ok.stdout).toMatch(/^p99 latency\s+[\d.]+ ms\s+≤ 100\.0 ms\s+(PASS|FAIL)$/m);
    expect(ok.stdout).toMatch(/^slowest put\s+[\d.]+ ms\s+≤ 500\.0 ms\s+(PASS|FAIL)$/m);
    expect(ok.stdout).toMatch(/^errors\s+0\s+0\s+PASS$/m);
    expect(ok.stdout.trim().split('\n').at(-1)).toBe(ok.code === 0 ? 'PASS' : 'FAIL');
    expect(ok.stderr).toMatch(/50 clients at 1,000 puts\/s for 2 s/);
    // Every key it wrote is gone again.
    expect((await run(['get', 'e2e-perf/0/0'])).code).toBe(1);
    expect((await run(['get', 'e2e-perf/49/7'])).code).toBe(1);

    // One writer cannot put 100,000 times a second: the throughput check fails, exit 1.
    const slow = await run([
      'check',
      'perf',
      '--clients',
      '1',
      '--rate',
      '100000',
      '--duration',
      '1s',
      '--json',
    ]);
    expect(slow.code, slow.stderr).toBe(1);
    const report = JSON.parse(slow.stdout) as {
      pass: boolean;
      checks: { name: string; pass: boolean }[];
      ok: number;
    };
    expect(report.pass).toBe(false);
    expect(report.checks.find((c) => c.name === 'throughput')?.pass).toBe(false);
    expect(report.ok).toBeGreaterThan(0);

    // A key it would write holds a value: it writes nothing and says why.
    expect((await run(['put', 'e2e-taken/0/3', 'mine'])).code).toBe(0);
    const taken = await run(['check', 'perf', '--load', 's', '--duration', '1s', '--prefix', 'e2e-taken/']);
    expect(taken.code).toBe(1);
    expect(taken.stderr).toMatch(
      /1 of the keys the check would write already hold values \(e\.g\. "e2e-taken\/0\/3"\): choose another --prefix/,
    );
    expect((await run(['get', 'e2e-taken/0/3'])).stdout).toBe('mine\n');
    expect((await run(['get', 'e2e-taken/0/0'])).code).toBe(1);

    const bad = await run(['check', 'perf', '--rate', '0']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/bad --rate 0: expected a whole number from 1 to/);
  }, 60_000);

  it('check perf stopped with Ctrl-C reports what it did, deletes its keys and exits 130', async () => {
    const { child, output, done } = start(
      ['check', 'perf', '--load', 's', '--duration', '60s', '--prefix', 'e2e-int/', '--json'],
      { timeoutMs: 25_000 },
    );
    // Interrupted once it is writing (it says so on stderr when it starts).
    const deadline = Date.now() + 10_000;
    while (!output.stderr.includes('check perf:') && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 50));
    await new Promise((r) => setTimeout(r, 1000));
    child.kill('SIGINT');
    const { code, stdout, stderr } = await done;
    expect(code, stderr).toBe(130);
    const report = JSON.parse(stdout) as { interrupted: boolean; ok: number; durationMs: number };
    expect(report.interrupted).toBe(true);
    expect(report.ok).toBeGreaterThan(0);
    expect(report.durationMs).toBeLessThan(30_000);
    expect((await run(['get', 'e2e-int/0/0'])).code).toBe(1);
  }, 30_000);

  it('campaign 2 makes node 2 leader; transfer 3 makes node 3 leader', async () => {
    const c = await run(['campaign', '2', '--json']);
    expect(c.code, c.stderr).toBe(0);
    expect(JSON.parse(c.stdout)).toMatchObject({ leader: 2 });
    expect((await until((s) => s.leader === 2)).leader).toBe(2);
    const t = await run(['transfer', '3', '--json']);
    expect(t.code, t.stderr).toBe(0);
    expect(JSON.parse(t.stdout)).toMatchObject({ leader: 3 });
    expect((await until((s) => s.leader === 3)).leader).toBe(3);
  }, 30_000);

  it('member add-learner, a joining node, promote, remove', async () => {
    const port = await freePort();
    const address = `127.0.0.1:${port}`;
    const add = await run(['member', 'add-learner', '4', address, '--json']);
    expect(add.code, add.stderr).toBe(0);
    expect(JSON.parse(add.stdout).members).toContainEqual({ id: 4, address, learner: true });
    const peers = [...clusterJson().nodes.map((n) => `${n.id}=${n.address}`), `4=${address}`].join(',');
    const node4 = spawn(
      process.execPath,
      [
        BIN,
        'node',
        '--id',
        '4',
        '--listen',
        address,
        '--peers',
        peers,
        '--data-dir',
        join(tmp, 'n4'),
        '--join',
        '--tick-ms',
        '20',
        '--quiet',
      ],
      { env, stdio: 'ignore' },
    );
    extra.push(node4);
    await until((s) => s.members.some((m) => m.id === 4 && m.up && m.learner && m.lag === 0));
    expect((await run(['member', 'promote', '4'])).code).toBe(0);
    await until((s) => s.members.some((m) => m.id === 4 && m.up && !m.learner));
    const list = await run(['member', 'list', '--json']);
    expect(JSON.parse(list.stdout).members.map((m: { id: number }) => m.id)).toEqual([1, 2, 3, 4]);
    const rm = await run(['member', 'remove', '4']);
    expect(rm.code, rm.stderr).toBe(0);
    // A removed node stops itself.
    await new Promise<void>((res) => {
      if (node4.exitCode !== null) res();
      else node4.once('exit', () => res());
    });
    expect((await status()).members.map((m) => m.id)).toEqual([1, 2, 3]);
  }, 30_000);

  it('fault isolate and heal; snapshot; logs', async () => {
    const iso = await run(['fault', 'isolate', '1', '--json']);
    expect(iso.code, iso.stderr).toBe(0);
    expect(JSON.parse(iso.stdout).faults.length).toBeGreaterThan(0);
    expect((await run(['fault', 'heal'])).code).toBe(0);
    await until((s) => s.members.every((m) => m.health === 'ok'));
    expect((await run(['fault', 'drop', '2', '150%'])).code).toBe(2);
    const snap = await run(['snapshot', '3', '--json']);
    expect(snap.code, snap.stderr).toBe(0);
    expect(JSON.parse(snap.stdout)).toMatchObject({ id: 3, index: expect.any(Number) });
    const logs = await run(['logs', '1', '-n', '5']);
    expect(logs.code).toBe(0);
    expect(logs.stdout.trim().split('\n')).toHaveLength(5);
  }, 30_000);

  it('attach --once discovers every member from one endpoint', async () => {
    const first = clusterJson().nodes[0]!.address;
    const r = await run(['attach', first, '--once', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout) as StatusReport & { endpoints: string[] };
    expect(j.members.map((m) => m.id)).toEqual([1, 2, 3]);
    expect(j.endpoints).toHaveLength(3);
  });

  it('a node that dies is shown as down; `up` restarts it', async () => {
    const pid = clusterJson().nodes[0]!.pid!;
    process.kill(pid, 'SIGKILL');
    const s = await until((x) => x.members[0]!.role === 'down' && x.leader !== 0);
    expect(s.members[0]).toMatchObject({ id: 1, up: false, health: 'down', term: null });
    const up = await run(['up', '--detach'], { timeoutMs: 30_000 });
    expect(up.code, up.stderr).toBe(0);
    expect(up.stderr).toMatch(/resuming cluster 'default' \(1 of 3 nodes\)/);
    await until((x) => x.members.every((m) => m.up));
  }, 30_000);

  it("the console's S stops the leader cleanly: it hands leadership on and leaves cluster.json; `up` starts it again", async () => {
    const { leader, term } = await until((x) => x.leader !== 0 && x.members.every((m) => m.up));
    const pid = clusterJson().nodes.find((n) => n.id === leader)!.pid!;
    await new ManagedCluster(clusterDir, clusterJson()).stop(leader);
    expect(await gone(pid)).toBe(true);
    expect(clusterJson().nodes.find((n) => n.id === leader)!.pid).toBeUndefined();
    const log = readFileSync(join(clusterDir, `n${leader}`, 'node.log'), 'utf8');
    const to = Number(/stopping as leader: handing leadership to (\d+) first/.exec(log)?.[1]);
    expect(log).toMatch(new RegExp(`${to} took over leadership in \\d+ ms`));
    const s = await until((x) => x.leader === to);
    expect(s.term).toBe(term + 1);
    expect(s.members.find((m) => m.id === leader)).toMatchObject({ up: false });
    expect((await run(['up', '--detach'], { timeoutMs: 30_000 })).code).toBe(0);
    await until((x) => x.members.every((m) => m.up));
  }, 30_000);
});

describe('usage errors and unreachable clusters', { timeout: 30_000 }, () => {
  it('a misspelt flag is an error (exit 2), never taken as an address', async () => {
    const r = await run(['status', '--endpiont', '127.0.0.1:1']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/Unknown argument: endpiont/);
    expect(r.stderr).toMatch(/raftctl status --help/);
    expect(r.stdout).toBe('');
  });

  it('a misspelt command or subcommand is named as typed, with the help to read (exit 2)', async () => {
    const cases: [string[], RegExp, string][] = [
      [['stauts'], /unknown command "stauts"\. Did you mean "status"\?/, 'raftctl --help'],
      [['frob'], /unknown command "frob"$/m, 'raftctl --help'],
      [
        ['member', 'lst'],
        /unknown command "member lst"\. Did you mean "member list"\?/,
        'raftctl member --help',
      ],
      [['fault', 'partitoin'], /unknown command "fault partitoin"$/m, 'raftctl fault --help'],
      [['member', 'add'], /Not enough non-option arguments/, 'raftctl member add --help'],
    ];
    for (const [args, message, help] of cases) {
      const r = await run(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr, args.join(' ')).toMatch(message);
      expect(r.stderr, args.join(' ')).toContain(`Run '${help}' for usage.`);
    }
  });

  it('logs of a cluster dir that holds no cluster says so (exit 2)', async () => {
    const nowhere = join(tmpdir(), `raftctl-no-cluster-${process.pid}`);
    const r = await run(['logs', '7', '--data-dir', nowhere]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`no cluster at ${nowhere}: start one with 'raftctl up'`);
  });

  it('bad addresses and values exit 2; unreachable endpoints exit 1', async () => {
    const bad = await run(['attach', 'not-an-address']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/bad address "not-an-address": expected HOST:PORT/);
    const port = await freePort();
    const gone = await run(['attach', `127.0.0.1:${port}`, '--timeout', '2s']);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toMatch(/cannot reach any endpoint.*connection refused/);
    const st = await run(['status', '--endpoints', `127.0.0.1:${port}`]);
    expect(st.code).toBe(1);
    expect((await run(['campaign', 'two'])).code).toBe(2);
    // A one-value flag given twice is named, not passed on as a list (found by the CLI fuzzer).
    const twice = await run(['status', '--token', 'a', '--token', 'b', '--endpoints', `127.0.0.1:${port}`]);
    expect(twice.code).toBe(2);
    expect(twice.stderr).toMatch(/--token was given 2 times \(a, b\); give it once/);
    const both = await run(['status', '-e', `127.0.0.1:${port}`, `-e=127.0.0.1:${port + 1}`]);
    expect(both.code).toBe(1);
    expect(both.stderr).toMatch(
      new RegExp(`127.0.0.1:${port}: connection refused; 127.0.0.1:${port + 1}: connection refused`),
    );
    const speed = await run(['replay', 'session.ndjson', '--speed', '3']);
    expect(speed.code).toBe(2);
    expect(speed.stderr).toMatch(/bad --speed "3": expected a power of two from 0.0625 to 64/);
    const cfg = await run(['config', 'set', 'cluster-size', '40']);
    expect(cfg.code).toBe(2);
    expect(cfg.stderr).toMatch(/expected a whole number 1–15/);
  });

  it('without any cluster, scripting commands say how to get one', async () => {
    const empty = { ...env, XDG_DATA_HOME: join(tmp, 'nothing'), XDG_CONFIG_HOME: join(tmp, 'nocfg') };
    const r = await run(['get', 'k'], { env: empty });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/raftctl up/);
  });

  it('--version, --help with examples, completion', async () => {
    expect((await run(['--version'])).stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
    for (const cmd of ['up', 'attach', 'member add', 'fault isolate']) {
      const h = await run([...cmd.split(' '), '--help']);
      expect(h.code).toBe(0);
      expect(h.stdout, cmd).toMatch(/Examples:/);
    }
    expect((await run(['completion'])).stdout).toMatch(/raftctl/);
  });
});

describe('down', { timeout: 30_000 }, () => {
  it('stops every node cleanly', async () => {
    const pids = clusterJson().nodes.map((n) => n.pid!);
    const r = await run(['down']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/stopped cluster 'default' \(3 nodes\)/);
    for (const pid of pids) expect(await gone(pid), `pid ${pid}`).toBe(true);
    expect(clusterJson().nodes.every((n) => n.pid === undefined)).toBe(true);
    expect((await run(['status'])).code).toBe(1);
  });
});
