// Multi-host end to end: three `raftctl node` processes, each in its own network namespace
// with its own 10.231.<n>.x address on a veth link into a bridge (a "switch" namespace); the
// test reaches them over one more veth from the root namespace. They listen beyond loopback,
// so they run with a token. The leader's namespace is partitioned by bringing its link down:
// the other two elect a leader and commit; after the link comes back the old leader catches up.
// Needs root and iproute2 (probed with `ip netns add`); skipped with the reason otherwise.
// Every link and namespace is created here and removed in afterAll, even after a failure.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ControlClient } from '../../src/client/client.js';
import type { NodeState } from '../../src/protocol/control.js';
import { BIN, ROOT, sleep, tempDir, waitFor } from './harness.js';

const TOKEN = 'netns-test-token';
const PID = process.pid;
const SUBNET = `10.231.${200 + (PID % 50)}`;
const HUB = `raftctl-${PID}-hub`;
const HOST_IF = `rc${PID % 100000}h`;
const PORT = 7001;
const IDS = [1, 2, 3];
const nsOf = (id: number) => `raftctl-${PID}-n${id}`;
const ifOf = (id: number) => `rc${PID % 100000}n${id}`;
const addrOf = (id: number) => `${SUBNET}.${id}:${PORT}`;

function ip(...args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function tryIp(...args: string[]): void {
  try {
    ip(...args);
  } catch {
    // Cleanup: already gone.
  }
}

/** Why this test cannot run here, or undefined. */
function netnsUnavailable(): string | undefined {
  if (process.platform !== 'linux') return 'network namespaces need Linux';
  const probe = `raftctl-probe-${PID}`;
  try {
    ip('netns', 'add', probe);
  } catch (err) {
    const why = (err as { stderr?: string }).stderr?.trim() || (err as Error).message;
    return `cannot create network namespaces (${why}): needs root and iproute2`;
  } finally {
    tryIp('netns', 'del', probe);
  }
  try {
    if (ip('-4', 'addr', 'show').includes(`${SUBNET}.`))
      return `${SUBNET}.0/24 is already in use on this machine`;
  } catch (err) {
    return `ip addr failed: ${(err as Error).message}`;
  }
  return undefined;
}

const skipReason = netnsUnavailable();
if (skipReason !== undefined) process.stderr.write(`netns.test.ts skipped: ${skipReason}\n`);

const procs = new Map<number, ChildProcess>();
const output = new Map<number, string>();
const clients: ControlClient[] = [];
let dataRoot: string | undefined;

function cleanup(): void {
  for (const p of procs.values()) p.kill('SIGKILL');
  tryIp('link', 'del', HOST_IF);
  for (const id of IDS) tryIp('netns', 'del', nsOf(id));
  tryIp('netns', 'del', HUB);
}
process.once('exit', cleanup);

afterAll(async () => {
  for (const c of clients.splice(0)) await c.close().catch(() => {});
  const exits = [...procs.values()].map(
    (p) =>
      new Promise<void>((r) =>
        p.exitCode !== null || p.signalCode !== null ? r() : p.once('exit', () => r()),
      ),
  );
  cleanup();
  await Promise.race([Promise.all(exits), sleep(5000)]);
  procs.clear();
  if (dataRoot !== undefined) rmSync(dataRoot, { recursive: true, force: true });
});

function buildNetwork(): void {
  ip('netns', 'add', HUB);
  ip('-n', HUB, 'link', 'add', 'br0', 'type', 'bridge');
  ip('-n', HUB, 'link', 'set', 'br0', 'up');
  for (const id of IDS) {
    const ns = nsOf(id);
    ip('netns', 'add', ns);
    ip('-n', ns, 'link', 'set', 'lo', 'up');
    ip('link', 'add', ifOf(id), 'netns', ns, 'type', 'veth', 'peer', 'name', `${ifOf(id)}b`, 'netns', HUB);
    ip('-n', ns, 'addr', 'add', `${SUBNET}.${id}/24`, 'dev', ifOf(id));
    ip('-n', ns, 'link', 'set', ifOf(id), 'up');
    ip('-n', HUB, 'link', 'set', `${ifOf(id)}b`, 'master', 'br0');
    ip('-n', HUB, 'link', 'set', `${ifOf(id)}b`, 'up');
  }
  // The test's own way in, from the root namespace.
  ip('link', 'add', HOST_IF, 'type', 'veth', 'peer', 'name', `${HOST_IF}b`, 'netns', HUB);
  ip('addr', 'add', `${SUBNET}.254/24`, 'dev', HOST_IF);
  ip('link', 'set', HOST_IF, 'up');
  ip('-n', HUB, 'link', 'set', `${HOST_IF}b`, 'master', 'br0');
  ip('-n', HUB, 'link', 'set', `${HOST_IF}b`, 'up');
}

function startNode(id: number, root: string): void {
  const peers = IDS.map((i) => `${i}=${addrOf(i)}`).join(',');
  const argv = [
    'netns',
    'exec',
    nsOf(id),
    process.execPath,
    BIN,
    'node',
    '--id',
    String(id),
    '--listen',
    addrOf(id),
    '--peers',
    peers,
    '--data-dir',
    path.join(root, `n${id}`),
    '--tick-ms',
    '50',
  ];
  const p = spawn('ip', argv, {
    cwd: ROOT,
    env: { ...process.env, RAFTCTL_TOKEN: TOKEN },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  output.set(id, '');
  p.stderr!.setEncoding('utf8').on('data', (d: string) => output.set(id, (output.get(id) ?? '') + d));
  procs.set(id, p);
}

async function client(id: number): Promise<ControlClient> {
  const c = new ControlClient();
  await c.connect(addrOf(id), { token: TOKEN, timeoutMs: 2000, commandTimeoutMs: 3000 });
  clients.push(c);
  return c;
}

/** Statuses of `ids`, each from a fresh short-lived connection (a partitioned node just fails). */
async function statuses(ids: number[]): Promise<NodeState[]> {
  return Promise.all(
    ids.map(async (id) => {
      const c = new ControlClient();
      try {
        await c.connect(addrOf(id), { token: TOKEN, timeoutMs: 1500 });
        return await c.command('status', {}, { timeoutMs: 1500 });
      } finally {
        await c.close();
      }
    }),
  );
}

/** A leader all of `ids` agree on, at one term. */
async function agreedLeader(ids: number[], timeoutMs: number): Promise<{ id: number; term: number }> {
  return waitFor(
    `a leader agreed by nodes ${ids.join(',')}`,
    async () => {
      const st = await statuses(ids);
      const lead = st[0]!.leader;
      if (lead === 0 || !ids.includes(lead)) return undefined;
      if (!st.every((s) => s.leader === lead && s.term === st[0]!.term)) return undefined;
      return st.find((s) => s.id === lead)?.role === 'leader' ? { id: lead, term: st[0]!.term } : undefined;
    },
    { timeoutMs, intervalMs: 100 },
  );
}

describe.skipIf(skipReason !== undefined)('nodes in separate network namespaces', () => {
  it('elects, replicates, survives a partitioned leader namespace, and catches it up', async () => {
    try {
      buildNetwork();
      dataRoot = tempDir('raftctl-netns-');
      for (const id of IDS) startNode(id, dataRoot);

      const first = await agreedLeader(IDS, 20_000);
      const lc = await client(first.id);
      for (let i = 0; i < 5; i++) await lc.command('put', { key: `before/${i}`, value: `v${i}` });
      for (const id of IDS) {
        const c = await client(id);
        await waitFor(`node ${id} to apply before/4`, async () => {
          const r = (await c.command('get', { key: 'before/4', serializable: true })) as { found: boolean };
          return r.found;
        });
      }
      for (const c of clients.splice(0)) await c.close();

      // Partition the leader's namespace: its only link goes down.
      const cut = first.id;
      const rest = IDS.filter((id) => id !== cut);
      ip('-n', nsOf(cut), 'link', 'set', ifOf(cut), 'down');
      const second = await agreedLeader(rest, 15_000);
      expect(second.id).not.toBe(cut);
      expect(second.term).toBeGreaterThan(first.term);
      const nc = await client(second.id);
      for (let i = 0; i < 10; i++) await nc.command('put', { key: `during/${i}`, value: `w${i}` });
      const commitDuring = (await nc.command('status')).commit;

      // Heal: the old leader rejoins as a follower of the new one and catches up.
      ip('-n', nsOf(cut), 'link', 'set', ifOf(cut), 'up');
      await waitFor(
        `node ${cut} to rejoin and apply index ${commitDuring}`,
        async () => {
          const [st] = await statuses([cut]);
          return st!.role === 'follower' && st!.leader !== 0 && st!.applied >= commitDuring;
        },
        { timeoutMs: 20_000, intervalMs: 200 },
      );
      const back = await client(cut);
      for (let i = 0; i < 10; i++) {
        expect(await back.command('get', { key: `during/${i}`, serializable: true })).toMatchObject({
          found: true,
          value: `w${i}`,
        });
      }
      const final = await agreedLeader(IDS, 10_000);
      expect(final.id).not.toBe(0);
      for (const [id, p] of procs) expect(p.exitCode, `node ${id} exited`).toBeNull();
      process.stderr.write(
        `netns: leader ${first.id} (term ${first.term}) partitioned; ${second.id} led at term ${second.term} ` +
          `and committed to ${commitDuring}; node ${cut} caught up; leader now ${final.id} (term ${final.term})\n`,
      );
    } catch (err) {
      for (const [id, out] of output) {
        process.stderr.write(`--- node ${id} ---\n${out.trimEnd().split('\n').slice(-20).join('\n')}\n`);
      }
      throw err;
    }
  }, 60_000);
});
