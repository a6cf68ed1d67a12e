// End-to-end tests of `raftctl node` (issue 4): real processes on loopback, killed with
// SIGKILL, restarted over their data dirs, WAL files damaged on disk. The CLI is run from
// dist/ (npm run build first). Ticks are 20 ms, so an election takes a few hundred ms.
import { chmodSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { ControlClient } from '../../src/client/client.js';
import { ClusterClient } from '../../src/client/cluster.js';
import { walkRecords } from '../server/storage/helpers.js';
import {
  BIN,
  freePorts,
  killAll,
  type NodeProc,
  runCli,
  sleep,
  soloNodeArgs,
  TestCluster,
  TestResources,
  waitFor,
  walRecords,
} from './harness.js';

const res = new TestResources();
const tempDir = (): string => res.tempDir();

async function cluster(n: number, args: string[] = [], nodeArgs?: Record<number, string[]>) {
  return res.track(await TestCluster.start(n, { args, ...(nodeArgs ? { nodeArgs } : {}) }));
}

beforeAll(() => {
  if (!readFileSync(BIN, 'utf8').includes('dist/bundle/main.js')) throw new Error('unexpected bin/raftctl');
});

afterEach(async (ctx) => {
  await res.cleanup(ctx.task.result?.state === 'fail');
});

afterAll(async () => {
  await killAll();
});

/** Puts through the control API, `count` at a time concurrently; returns what was written. */
async function putMany(node: NodeProc, prefix: string, n: number, width = 20): Promise<Map<string, string>> {
  const c = await node.client();
  const written = new Map<string, string>();
  for (let i = 0; i < n; i += width) {
    await Promise.all(
      Array.from({ length: Math.min(width, n - i) }, async (_, j) => {
        const key = `${prefix}${String(i + j).padStart(5, '0')}`;
        const value = `value-${i + j}-${'x'.repeat(20)}`;
        await c.command('put', { key, value }, { timeoutMs: 5000 });
        written.set(key, value);
      }),
    );
  }
  return written;
}

/**
 * A 3-node cluster that snapshots every 40 writes, one follower stopped, then 120 writes
 * under `prefix` on the leader: the leader's log no longer reaches back to the follower's.
 */
async function oneFollowerBehind(prefix: string) {
  const c = await cluster(3, ['--snapshot-every', '40', '--snapshot-catch-up', '5']);
  const leader = await c.waitLeader();
  const behind = c.nodes.find((n) => n !== leader)!;
  await behind.kill('SIGKILL');
  const written = await putMany(leader, prefix, 120);
  return { c, leader, behind, written };
}

function expectAll(actual: Map<string, string>, expected: Map<string, string>, who: string): void {
  const missing: string[] = [];
  for (const [k, v] of expected) if (actual.get(k) !== v) missing.push(`${k}=${actual.get(k) ?? '∅'}`);
  expect(missing, `${who}: ${missing.length} of ${expected.size} acknowledged keys missing or wrong`).toEqual(
    [],
  );
}

/** One sample of a node's /metrics, by its exposition name with labels; fails if it is absent. */
async function metric(node: NodeProc, sample: string): Promise<number> {
  const value = (await node.metrics()).get(sample);
  expect(value, `${sample} in node ${node.id}'s /metrics`).toBeDefined();
  return value!;
}

describe('raftctl node: a 3-node cluster on loopback', () => {
  it('elects a leader and replicates; linearizable reads on every node see a write', async () => {
    const c = await cluster(3);
    const leader = await c.waitLeader();
    const follower = c.nodes.find((n) => n !== leader)!;

    // A write through a follower is forwarded to the leader and acknowledged once applied there.
    const fc = await follower.client();
    const put = (await fc.command('put', { key: 'greeting', value: 'hello' })) as { revision: number };
    expect(put.revision).toBeGreaterThan(0);
    for (const n of c.nodes) {
      const cc = await n.client();
      const got = (await cc.command('get', { key: 'greeting' })) as { found: boolean; value?: string };
      expect(got, `node ${n.id}`).toMatchObject({ found: true, value: 'hello' });
    }

    // Writes that arrive together (one client frame) go into one batch entry: all are
    // acknowledged, at one revision, and every node has every one of them.
    const burst = await Promise.all(
      Array.from(
        { length: 40 },
        async (_, i) =>
          (await fc.command('put', { key: `burst/${i}`, value: `v${i}` })) as { revision: number },
      ),
    );
    expect(new Set(burst.map((r) => r.revision)).size).toBe(1);
    expect(burst[0]!.revision).toBeGreaterThan(put.revision);
    for (const n of c.nodes) {
      const got = await n.rangePrefix('burst/');
      expect(got.size, `node ${n.id}`).toBe(40);
      for (let i = 0; i < 40; i++) expect(got.get(`burst/${i}`), `node ${n.id}`).toBe(`v${i}`);
    }

    // ...but a batch stays small enough to travel in one frame: 300 KB values never share
    // an entry (512 KiB at most per batch), so six of them take six revisions.
    const big = 'x'.repeat(300_000);
    const bigPuts = await Promise.all(
      Array.from(
        { length: 6 },
        async (_, i) => (await fc.command('put', { key: `big/${i}`, value: big })) as { revision: number },
      ),
    );
    expect(new Set(bigPuts.map((r) => r.revision)).size).toBe(6);
    for (const n of c.nodes) expect((await n.rangePrefix('big/')).size, `node ${n.id}`).toBe(6);

    // The etcd gateway writes and reads the same store.
    await leader.gateway('put', { key: Buffer.from('k').toString('base64'), value: 'dg==' });
    for (const n of c.nodes) expect((await n.rangePrefix('k')).get('k'), `node ${n.id}`).toBe('v');

    // A write retried with the same request id (clientId, seq) is applied once: the retry —
    // even through another node and with another value — gets the first result.
    const first = (await fc.command('put', { key: 'once', value: 'a', clientId: 'e2e', seq: 1 })) as {
      revision: number;
    };
    const lc = await leader.client();
    const retry = (await lc.command('put', { key: 'once', value: 'b', clientId: 'e2e', seq: 1 })) as {
      revision: number;
    };
    expect(retry.revision).toBe(first.revision);
    expect(await lc.command('get', { key: 'once' })).toMatchObject({ found: true, value: 'a' });

    // A write answers with the entry it replaced only when asked (etcd's prev_kv).
    expect(await lc.command('put', { key: 'once', value: 'c' })).not.toHaveProperty('prev');
    expect(await lc.command('put', { key: 'once', value: 'd', prevKv: true })).toMatchObject({
      prev: { key: 'once', value: 'c' },
    });
    expect(await fc.command('delete', { key: 'once', prevKv: true })).toMatchObject({
      deleted: 1,
      prev: { value: 'd' },
    });

    const states = await Promise.all(c.nodes.map((n) => n.status()));
    for (const s of states) expect(s.config.voters).toEqual([1, 2, 3]);
    expect(states.find((s) => s.role === 'leader')?.progress).toHaveLength(3);
  }, 20_000);

  it('a ClusterClient finds the leader from any member, writes through it, and follows a transfer', async () => {
    const c = await cluster(3);
    const leader = await c.waitLeader();
    const other = c.nodes.find((n) => n !== leader)!;
    const cc = await ClusterClient.connect([other.address], { leaderEveryMs: 100 });
    try {
      expect([...cc.memberIds].sort()).toEqual([1, 2, 3]);
      await waitFor('the client to learn the leader', () => cc.leader === leader.id || undefined);
      expect(cc.pick('put')?.node).toBe(leader.id);
      expect(await cc.command('put', { key: 'cc', value: '1' })).toMatchObject({ op: 'put' });
      await (await leader.client()).command('transfer', { to: other.id });
      await waitFor('the client to follow the transfer', () => cc.leader === other.id || undefined);
      expect(cc.pick('put')?.node).toBe(other.id);
      await cc.command('put', { key: 'cc', value: '2' });
      for (const n of c.nodes) {
        const got = await (await n.client()).command('get', { key: 'cc' });
        expect(got, `node ${n.id}`).toMatchObject({ found: true, value: '2' });
      }
    } finally {
      await cc.close();
    }
  }, 20_000);

  it('a write that cannot commit times out after --request-timeout-ms, saying its outcome is unknown', async () => {
    const c = await cluster(3, ['--request-timeout-ms', '400']);
    const leader = await c.waitLeader();
    const lc = await leader.client();
    await lc.command('put', { key: 'before', value: 'ok' });
    // Followers frozen: the leader appends the write but can never commit it (and, with
    // CheckQuorum, soon steps down; the request keeps waiting for a leader either way).
    const followers = c.nodes.filter((n) => n !== leader);
    for (const f of followers) f.proc!.kill('SIGSTOP');
    const started = Date.now();
    let err: { code?: string; message?: string } | undefined;
    try {
      await lc.command('put', { key: 'stuck', value: 'x' }, { timeoutMs: 5000 });
    } catch (e) {
      err = e as typeof err;
    } finally {
      for (const f of followers) f.proc!.kill('SIGCONT');
    }
    const waited = Date.now() - started;
    expect(err?.code).toBe('timeout');
    expect(err?.message).toMatch(/may or may not be applied/);
    // Swept on the node's ticks (20 ms here): late by at most a tick or so, never early.
    expect(waited).toBeGreaterThanOrEqual(400);
    expect(waited).toBeLessThan(1500);
    expect(await metric(leader, 'raft_proposals_total{result="timeout"}')).toBe(1);
  }, 20_000);

  it('SIGTERM of the leader hands leadership to a follower before it exits; a ClusterClient writing meanwhile sees no error', async () => {
    const c = await cluster(3);
    const leader = await c.waitLeader();
    await putMany(leader, 'before/', 20);
    const term = (await leader.health()).term;
    // Eight writers through a ClusterClient, before, during and after the stop: a refusal
    // while leadership moves is sent again, so none of them sees an error.
    const other = c.nodes.find((n) => n !== leader)!;
    const cc = await ClusterClient.connect([other.address], { leaderEveryMs: 100 });
    await waitFor('the client to learn the leader', () => cc.leader === leader.id || undefined);
    let writing = true;
    const acked: string[] = [];
    const writers = Array.from({ length: 8 }, async (_, w) => {
      for (let i = 0; writing; i++) {
        await cc.command('put', { key: `during/${w}/${i}`, value: String(i) });
        acked.push(`during/${w}/${i}`);
      }
    });
    await waitFor('writes through the old leader', () => acked.length > 50 || undefined);
    expect(await leader.kill('SIGTERM')).toEqual({ code: 0, signal: null });
    const atStop = acked.length;
    await waitFor('writes after the stop', () => acked.length > atStop + 50 || undefined);
    writing = false;
    await Promise.all(writers);
    await cc.close();
    const handedTo = Number(
      /stopping as leader: handing leadership to (\d+) first/.exec(leader.stderr)?.[1] ?? Number.NaN,
    );
    expect(leader.stderr).toMatch(new RegExp(`${handedTo} took over leadership in \\d+ ms`));
    // The successor was told to campaign (MsgTimeoutNow) and won at once: one term later,
    // while the old leader was still up — not after a timeout with no leader.
    const successor = c.node(handedTo);
    expect(successor.logFile()).toMatch(new RegExp(`received MsgTimeoutNow from ${leader.id}`));
    const h = await successor.health();
    expect(h).toMatchObject({ role: 'leader', leader: handedTo, term: term + 1 });
    const during = await successor.rangePrefix('during/');
    expect(acked.filter((k) => !during.has(k))).toEqual([]);
  }, 20_000);

  it('after kill -9 of the leader, followers elect a new one without waiting out the election timeout', async () => {
    // Election timeout 50 ticks of 20 ms: randomized, no follower times out before 980 ms.
    const c = await cluster(3, ['--election-ticks', '50']);
    const leader = await c.waitLeader(undefined, 15_000);
    const { term } = await leader.health();
    const followers = c.nodes.filter((n) => n !== leader);
    const killedAt = Date.now();
    await leader.kill('SIGKILL');
    const next = await c.waitLeader(followers, 5000);
    const elected = Date.now() - killedAt;
    // The connection to the dead leader closed at once; the followers forgot it and one
    // campaigned within 25 ticks (500 ms), which only that failure detector explains.
    expect(elected).toBeLessThan(800);
    // In the order of their ids, so the two did not split the vote: the lower id, with a
    // log as long as the other's (nothing was written), won the next term.
    expect(next.id).toBe(Math.min(...followers.map((f) => f.id)));
    expect((await next.health()).term).toBe(term + 1);
    const told = followers.filter((f) =>
      /lost the connection to leader \d+: forgot it/.test(f.stdout + f.stderr),
    );
    expect(told.length).toBeGreaterThan(0);
  }, 30_000);

  it('kill -9 of the leader loses nothing acknowledged; the old leader restarts and catches up by log', async () => {
    const c = await cluster(3, ['--request-timeout-ms', '1500']);
    const leader = await c.waitLeader();

    // Writers spread over all nodes; only puts whose result arrived count as acknowledged.
    const acked = new Map<string, string>();
    let stop = false;
    let ackedAfterFailover = 0;
    let failedOver = false;
    let errors = 0;
    const writer = async (w: number): Promise<void> => {
      let target = w % c.nodes.length;
      let client: ControlClient | undefined;
      let seq = 0;
      while (!stop) {
        try {
          if (!client) {
            client = new ControlClient();
            await client.connect(c.nodes[target]!.address, { timeoutMs: 1000 });
          }
          const key = `w${w}-${String(seq++).padStart(6, '0')}`;
          const value = `${key}@${Date.now()}`;
          await client.command('put', { key, value }, { timeoutMs: 3000 });
          acked.set(key, value);
          if (failedOver) ackedAfterFailover++;
        } catch {
          // Connection lost, refused, or outcome unknown: not acknowledged. Try another node.
          errors++;
          await client?.close().catch(() => {});
          client = undefined;
          target = (target + 1) % c.nodes.length;
          await sleep(30);
        }
      }
      await client?.close();
    };
    const writers = Array.from({ length: 9 }, (_, w) => writer(w));

    await sleep(700);
    const ackedBeforeKill = acked.size;
    const killed = await leader.kill('SIGKILL');
    expect(killed?.signal).toBe('SIGKILL');
    const survivors = c.nodes.filter((n) => n !== leader);
    const newLeader = await c.waitLeader(survivors);
    expect(newLeader.id).not.toBe(leader.id);
    failedOver = true;
    await waitFor('writes acknowledged under the new leader', () => ackedAfterFailover >= 50, {
      timeoutMs: 10_000,
    });
    stop = true;
    await Promise.all(writers);
    expect(ackedBeforeKill).toBeGreaterThan(0);

    for (const n of survivors) expectAll(await n.rangePrefix('w'), acked, `node ${n.id}`);

    // The old leader comes back over its own data dir and catches up from the log.
    leader.start();
    await c.waitCaughtUp(leader, newLeader);
    expectAll(await leader.rangePrefix('w', true), acked, `restarted node ${leader.id}`);
    expectAll(await leader.rangePrefix('w'), acked, `restarted node ${leader.id} (linearizable)`);
    expect(leader.stderr).not.toMatch(/applied snapshot/);
    const st = await leader.status();
    expect(st.snapshotIndex).toBe(0);
    expect(st.role).toBe('follower');
    expect(errors).toBeGreaterThan(0); // The kill was felt by some writer.
  }, 40_000);

  it('a node down while the leader compacts past it catches up by snapshot', async () => {
    const c = await cluster(3, ['--snapshot-every', '40', '--snapshot-catch-up', '5']);
    const leader = await c.waitLeader();
    const before = await putMany(leader, 'a', 30);
    const downLast = (await leader.status()).lastIndex;
    await leader.kill('SIGKILL');
    const survivors = c.nodes.filter((n) => n !== leader);
    const newLeader = await c.waitLeader(survivors);
    const after = await putMany(newLeader, 'b', 200);
    const ls = await newLeader.status();
    // The log no longer holds what the stopped node needs next: only a snapshot can help.
    expect(ls.snapshotIndex).toBeGreaterThan(downLast);
    expect(ls.firstIndex).toBeGreaterThan(downLast + 1);

    leader.start();
    await leader.waitForLog(/applied snapshot at index \d+/, 10_000);
    await c.waitCaughtUp(leader, newLeader);
    expect((await leader.status()).snapshotIndex).toBeGreaterThan(0);
    expect(await metric(leader, 'raft_snapshots_total{kind="restored"}')).toBeGreaterThanOrEqual(1);
    expectAll(await leader.rangePrefix('a', true), before, `node ${leader.id}`);
    expectAll(await leader.rangePrefix('b', true), after, `node ${leader.id}`);
  }, 30_000);

  it('nodes restarted since their snapshot send it from its file to a follower behind their log', async () => {
    const { c, behind, written } = await oneFollowerBehind('r');
    const live = c.nodes.filter((n) => n !== behind);
    await waitFor('both live nodes to snapshot past the stopped one', async () => {
      const sts = await Promise.all(live.map((n) => n.status()));
      return sts.every((st) => st.snapshotIndex > 0 && st.firstIndex > 3) || undefined;
    });
    // A restart lets go of the snapshot's bytes: whichever leads now streams them from its file.
    for (const n of live) {
      await n.kill('SIGKILL');
      n.start();
    }
    const sender = await c.waitLeader(live);
    behind.start();
    await behind.waitForLog(/applied snapshot at index \d+/, 15_000);
    await c.waitCaughtUp(behind, sender);
    expectAll(await behind.rangePrefix('r', true), written, `node ${behind.id}`);
    expect(sender.logFile()).toMatch(
      new RegExp(`sending snapshot at index \\d+ \\(\\d+ bytes\\) to peer ${behind.id} in 1 chunk$`, 'm'),
    );
    expect(sender.logFile()).not.toMatch(/could not read the snapshot/);
  }, 40_000);

  it('a leader whose snapshot file is damaged writes it again, and the follower behind its log catches up in a quiet cluster', async () => {
    const { c, leader, behind, written } = await oneFollowerBehind('d');
    // A snapshot at the last write (unless the last write brought one): nothing is applied
    // after it, the cluster stays quiet.
    const client = await leader.client();
    await client.command('snapshot').catch((err: Error) => {
      if (!/nothing applied since the last snapshot/.test(err.message)) throw err;
    });
    const st = await leader.status();
    expect(st.firstIndex).toBeGreaterThan(3);
    const snapDir = path.join(leader.dataDir, 'snap');
    const newest = readdirSync(snapDir)
      .filter((f) => f.endsWith('.snap'))
      .sort()
      .at(-1)!;
    expect(Number.parseInt(newest.slice(17, 33), 16)).toBe(st.snapshotIndex);
    const file = path.join(snapDir, newest);
    const buf = readFileSync(file);
    buf[buf.length - 100]! ^= 0x20;
    writeFileSync(file, buf);

    behind.start();
    await behind.waitForLog(/applied snapshot at index \d+/, 15_000);
    await c.waitCaughtUp(behind, leader);
    expectAll(await behind.rangePrefix('d', true), written, `node ${behind.id}`);
    const log = leader.logFile();
    expect(log).toMatch(
      new RegExp(`could not read the snapshot at index ${st.snapshotIndex} from disk .*crc mismatch`),
    );
    expect(log).toMatch(
      new RegExp(
        `the snapshot file at index ${st.snapshotIndex} is damaged: taking a snapshot to replace it`,
      ),
    );
    expect(log).toMatch(new RegExp(`wrote the damaged snapshot file again at index ${st.snapshotIndex} `));
    // The file on disk checks out again: the leader restarts from it.
    await leader.kill('SIGKILL');
    const logged = log.length;
    leader.start();
    await c.waitCaughtUp(leader, behind);
    const restartLog = leader.logFile().slice(logged);
    expect(restartLog).toMatch(/started/);
    expect(restartLog).not.toMatch(/quarantin|corrupt/);
  }, 40_000);

  it('a follower catches up by a snapshot larger than one peer frame (16 MiB)', async () => {
    const c = await cluster(3, ['--snapshot-every', '20', '--snapshot-catch-up', '2']);
    const leader = await c.waitLeader();
    const down = c.nodes.find((n) => n !== leader)!;
    await down.kill('SIGKILL');
    // 50 writes of 1 MB values to 24 keys: a state of ~24 MB, and enough writes for a
    // snapshot (each node's first comes after up to 1.6 periods of 20).
    const client = await leader.client();
    const values = new Map<string, string>();
    for (let i = 0; i < 50; i++) {
      const key = `huge/${String(i % 24).padStart(2, '0')}`;
      const value = String.fromCharCode(97 + (i % 26)).repeat(1_000_000);
      await client.command('put', { key, value });
      values.set(key, value);
    }
    await waitFor('the leader to snapshot past the stopped node', async () => {
      const st = await leader.status();
      return st.firstIndex > 3 && st.snapshotIndex > 0 ? true : undefined;
    });
    down.start();
    await down.waitForLog(/applied snapshot at index \d+/, 20_000);
    await leader.waitForLog(
      new RegExp(`sending snapshot at index \\d+ \\(\\d+ bytes\\) to peer ${down.id} in \\d+ chunks`),
      1000,
    );
    await c.waitCaughtUp(down, leader);
    expectAll(await down.rangePrefix('huge/', true), values, `node ${down.id}`);
  }, 60_000);

  it('members take their snapshots at different points of the log, not all at once', async () => {
    const c = await cluster(3, ['--snapshot-every', '100']);
    const leader = await c.waitLeader();
    await putMany(leader, 's', 400);
    for (const n of c.nodes) await c.waitCaughtUp(n, leader);
    const indexes = await Promise.all(c.nodes.map(async (n) => (await n.status()).snapshotIndex));
    // Every node has snapshotted (after at most two periods), each at its own index.
    for (const i of indexes) expect(i).toBeGreaterThan(0);
    expect(new Set(indexes).size, `snapshot indexes ${indexes.join(', ')}`).toBe(3);
    // Operators see them too: how many, and how long each took from capture to disk.
    for (const n of c.nodes) {
      const created = await metric(n, 'raft_snapshots_total{kind="created"}');
      expect(created).toBeGreaterThanOrEqual(1);
      expect(await metric(n, 'snapshot_save_seconds_count')).toBe(created);
      expect(await metric(n, 'snapshot_save_seconds_sum')).toBeGreaterThan(0);
    }
  }, 30_000);

  it('large values bring snapshots sooner: the log held since the last one stays near --snapshot-bytes', async () => {
    // 40 writes of 100 KB are far fewer than --snapshot-every (100,000 by default), which
    // alone would keep all 4 MB in every node's log; at 1 MiB a snapshot comes every ~10.
    const c = await cluster(3, ['--snapshot-bytes', '1MiB']);
    const leader = await c.waitLeader();
    const client = await leader.client();
    const value = 'v'.repeat(100_000);
    for (let i = 0; i < 40; i++) await client.command('put', { key: `big/${i % 10}`, value });
    for (const n of c.nodes) await c.waitCaughtUp(n, leader);
    for (const n of c.nodes) {
      expect(await metric(n, 'raft_snapshots_total{kind="created"}')).toBeGreaterThanOrEqual(1);
      const st = await n.status();
      expect(st.snapshotIndex).toBeGreaterThan(0);
      // Kept behind the snapshot for lagging followers: a quarter of 1 MiB, two such writes
      // (not --snapshot-catch-up's 5,000); after it, the ~10 writes of one period, or of two
      // while the next snapshot is still being written.
      expect(st.snapshotIndex - st.firstIndex + 1).toBeLessThanOrEqual(2);
      expect(st.lastIndex - st.snapshotIndex).toBeLessThanOrEqual(24);
    }
    // The state is whole on every node, snapshots and all.
    for (const n of c.nodes) expect((await n.rangePrefix('big/', true)).get('big/3')).toBe(value);
  }, 30_000);

  it('times every write a node serves and every fsync, kept as bucket counts between scrapes', async () => {
    const c = await cluster(3);
    const leader = await c.waitLeader();
    const follower = c.nodes.find((n) => n !== leader)!;
    await putMany(leader, 'w', 60);
    const served = await metric(leader, 'raft_proposals_total{result="ok"}');
    expect(served).toBeGreaterThanOrEqual(60);
    const first = await leader.metrics();
    expect(first.get('kv_write_seconds_count')).toBe(served);
    expect(first.get('kv_write_seconds_bucket{le="+Inf"}')).toBe(served);
    // Each write took some time, and none anywhere near the 8.52 s of the last finite bucket.
    expect(first.get('kv_write_seconds_sum')).toBeGreaterThan(0);
    expect(first.get('kv_write_seconds_bucket{le="8.52"}')).toBe(served);
    // A scrape does not take the observations away: the next one counts them again, and more.
    await putMany(leader, 'x', 20);
    expect(await metric(leader, 'kv_write_seconds_count')).toBe(served + 20);
    // Writes go to the leader here, so the follower served none; both synced their logs.
    expect(await metric(follower, 'kv_write_seconds_count')).toBe(0);
    for (const n of [leader, follower]) expect(await metric(n, 'wal_fsync_seconds_count')).toBeGreaterThan(0);
  }, 30_000);

  it('a removed node stops with exit code 0 and says why; the rest carry on', async () => {
    const c = await cluster(3);
    const leader = await c.waitLeader();
    const victim = c.nodes.find((n) => n !== leader)!;
    const lc = await leader.client();
    const res = (await lc.command('member-remove', { id: victim.id })) as { confState: { voters: number[] } };
    expect(res.confState.voters).not.toContain(victim.id);

    const exit = await victim.waitExit(10_000);
    expect(exit).toEqual({ code: 0, signal: null });
    expect(victim.stderr).toMatch(/removed from the cluster/);
    expect(victim.stderr).toMatch(/stopped/);

    await lc.command('put', { key: 'after-remove', value: '1' });
    const other = c.nodes.find((n) => n !== leader && n !== victim)!;
    expect((await other.rangePrefix('after-remove')).get('after-remove')).toBe('1');
  }, 20_000);

  it('a node removed while it was down is told so by its peers when it returns (410 Gone), and its id cannot come back', async () => {
    const c = await cluster(3);
    const leader = await c.waitLeader();
    const victim = c.nodes.find((n) => n !== leader)!;
    await victim.kill('SIGKILL');
    const lc = await leader.client();
    await lc.command('member-remove', { id: victim.id });

    // Its own log never shows the removal; the peers' refusal does.
    victim.start();
    expect(await victim.waitExit(10_000)).toEqual({ code: 0, signal: null });
    expect(victim.stderr).toMatch(
      /this node was removed from the cluster \(peer \d+ refused it with 410 Gone\); its id may not rejoin/,
    );
    expect(leader.logFile()).toMatch(new RegExp(`node ${victim.id} was removed from cluster`));

    await expect(
      lc.command('member-add', { id: victim.id, address: victim.address, learner: false }),
    ).rejects.toMatchObject({
      code: 'bad_args',
      message: expect.stringContaining(
        `node ${victim.id} was removed from the cluster and its id may not be reused`,
      ),
    });
    await lc.command('put', { key: 'after', value: '1' });
  }, 20_000);

  it('a node added with member-add and started with --join catches up and serves', async () => {
    const c = await cluster(3);
    const leader = await c.waitLeader();
    const before = await putMany(leader, 'j', 40);
    const joiner = await c.addNode();
    const lc = await leader.client();
    const add = (await lc.command('member-add', { id: joiner.id, address: joiner.address })) as {
      confState: { voters: number[] };
    };
    expect(add.confState.voters).toContain(joiner.id);

    joiner.start();
    await joiner.waitForLog(/joining an existing cluster/);
    await c.waitCaughtUp(joiner, leader);
    expectAll(await joiner.rangePrefix('j', true), before, `node ${joiner.id}`);

    // It takes part: a write through it is acknowledged and seen everywhere.
    const jc = await joiner.client();
    await jc.command('put', { key: 'from-joiner', value: 'yes' });
    for (const n of c.nodes)
      expect((await n.rangePrefix('from-joiner')).get('from-joiner'), `node ${n.id}`).toBe('yes');
    const members = await lc.command('members', {});
    expect(members.map((m) => [m.id, m.learner])).toEqual([
      [1, false],
      [2, false],
      [3, false],
      [4, false],
    ]);
  }, 25_000);

  it('a member added to a quiet cluster whose log was compacted catches up by a new snapshot', async () => {
    const c = await cluster(3, ['--snapshot-every', '20', '--snapshot-catch-up', '2']);
    const leader = await c.waitLeader();
    const before = await putMany(leader, 'q', 120);
    await waitFor('the leader to compact its log', async () =>
      (await leader.status()).firstIndex > 3 ? true : undefined,
    );
    // No write follows the member-add: the leader's snapshot predates the new member.
    const joiner = await c.addNode();
    const lc = await leader.client();
    await lc.command('member-add', { id: joiner.id, address: joiner.address, learner: true });
    joiner.start();
    await leader.waitForLog(
      new RegExp(`predates peer ${joiner.id}'s membership: taking a new one for it`),
      10_000,
    );
    await joiner.waitForLog(/applied snapshot at index \d+/, 10_000);
    await c.waitCaughtUp(joiner, leader);
    expectAll(await joiner.rangePrefix('q', true), before, `node ${joiner.id}`);
  }, 30_000);

  it('nodes of different --cluster names refuse each other and never form a quorum', async () => {
    const c = await cluster(3, [], {
      1: ['--cluster', 'red'],
      2: ['--cluster', 'green'],
      3: ['--cluster', 'blue'],
    });
    const n1 = c.node(1);
    const st = await waitFor(
      'node 1 to report the refusal',
      async () => {
        const s = await n1.status();
        return s.transport.every((t) => /cluster/.test(t.lastError ?? '')) ? s : undefined;
      },
      { timeoutMs: 10_000 },
    );
    for (const t of st.transport) {
      expect(t.connected).toBe(false);
      expect(t.lastError).toMatch(/cluster id mismatch/);
      expect(t.lastError).toMatch(/403/);
    }
    // 1.5 s is several election timeouts (200–400 ms): still nobody leads.
    await sleep(1500);
    for (const n of c.nodes) {
      const res = await fetch(`http://${n.address}/health`);
      expect(res.status, `node ${n.id}`).toBe(503);
      expect(((await res.json()) as { leader: number }).leader).toBe(0);
    }
    expect(c.node(2).stderr).toMatch(/refused raft connection .*cluster id mismatch/);
  }, 20_000);
});

describe('raftctl node: one node, its disk and its operators', () => {
  it('repairs a torn WAL tail on restart and keeps every acknowledged write', async () => {
    const c = await cluster(1);
    const node = c.node(1);
    await c.waitLeader();
    const written = await putMany(node, 't', 50);
    // A crash: every acknowledged put was fsynced, so all of them must survive it.
    await node.kill('SIGKILL');

    // A record header promising more bytes than follow, then junk: what a crash mid-write
    // leaves where the records end (in the segment's zero tail, if it runs one).
    const seg = node.walSegments().at(-1)!;
    const torn = Buffer.alloc(8 + 37);
    torn.writeUInt32LE(4096, 0);
    torn.writeUInt32LE(0xdeadbeef, 4);
    torn[8] = 2;
    torn.fill(0xa5, 9);
    const end = walkRecords(seg).at(-1)!.next;
    const file = readFileSync(seg);
    const crashed = Buffer.concat([file.subarray(0, end), torn, file.subarray(end + torn.length)]);
    writeFileSync(seg, crashed);

    node.start();
    const line = await node.waitForLog(/repaired torn tail of \S+ at offset \d+ \(\d+ bytes dropped\)/);
    expect(line).toContain(seg);
    expect(line).toContain(`at offset ${end} (${crashed.length - end} bytes dropped)`);
    await c.waitLeader();
    expectAll(await node.rangePrefix('t'), written, 'after repair');

    // The repaired WAL takes new writes and replays cleanly next time.
    const more = await putMany(node, 'u', 10);
    await node.kill('SIGKILL');
    node.start();
    await c.waitLeader();
    expect(node.stderr).not.toMatch(/repaired torn tail/);
    // The log says how long the WAL took to read and the committed entries to apply again.
    await node.waitForLog(/wal: opened \S+ \(\d+ segments, last index \d+\) in \d+ ms/);
    await node.waitForLog(/replayed the log to index \d+ \(\d+ entries\) in \d+ ms/);
    expectAll(await node.rangePrefix('t'), written, 'second restart');
    expectAll(await node.rangePrefix('u'), more, 'second restart');
  }, 25_000);

  it('a flipped bit in the middle of the WAL stops the node: exit 1 naming the file and offset', async () => {
    const c = await cluster(1);
    const node = c.node(1);
    await c.waitLeader();
    await putMany(node, 'f', 40);
    await node.kill('SIGKILL');

    const seg = node.walSegments().at(-1)!;
    const buf = readFileSync(seg);
    const entries = walRecords(buf).filter((r) => r.type === 2);
    // A record in the middle that lies within one 512-byte sector: no part of it can look
    // like an unwritten (zeroed) sector, so the damage is unambiguously not a torn write.
    const mid = entries
      .slice(entries.length / 3)
      .find((r) => Math.floor(r.offset / 512) === Math.floor((r.offset + 8 + r.length - 1) / 512))!;
    expect(mid).toBeDefined();
    buf[mid.offset + 8 + mid.length - 1]! ^= 0x10;
    writeFileSync(seg, buf);

    node.start();
    const exit = await node.waitExit(10_000);
    expect(exit.code).toBe(1);
    expect(node.stderr).toContain(seg);
    expect(node.stderr).toContain(`at offset ${mid.offset}`);
    expect(node.stderr).toMatch(/crc mismatch/);
    expect(node.stderr).toMatch(/refusing to start/);
  }, 20_000);

  it('SIGTERM stops a node gracefully: exit 0 and a last log line', async () => {
    const c = await cluster(1);
    const node = c.node(1);
    await c.waitLeader();
    await putMany(node, 'g', 5);
    expect(await node.kill('SIGTERM')).toEqual({ code: 0, signal: null });
    expect(node.stderr).toMatch(/stopping: received SIGTERM/);
    expect(node.stderr).toMatch(/\[node\] stopped\n$/);
  }, 15_000);

  it('answers malformed control frames with errors and keeps serving', async () => {
    const c = await cluster(1);
    const node = c.node(1);
    await c.waitLeader();
    const ws = new WebSocket(`ws://${node.address}/control`);
    const frames: Record<string, unknown>[] = [];
    ws.on('message', (d) => frames.push(JSON.parse(d.toString()) as Record<string, unknown>));
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
    const next = async (pred: (f: Record<string, unknown>) => boolean, what: string) =>
      waitFor(
        what,
        () => {
          const i = frames.findIndex(pred);
          return i >= 0 ? frames.splice(i, 1)[0] : undefined;
        },
        { timeoutMs: 3000, intervalMs: 10 },
      );
    try {
      ws.send(JSON.stringify({ type: 'hello', version: 1 }));
      expect(await next((f) => f.type === 'hello', 'hello')).toMatchObject({ nodeId: 1 });

      ws.send('{"type": "command", "id": 1,');
      expect(await next((f) => f.type === 'error', 'error for bad JSON')).toMatchObject({
        error: { code: 'bad_frame' },
      });
      ws.send(JSON.stringify({ type: 'command', id: 2, command: 'frobnicate', args: {} }));
      expect(await next((f) => f.id === 2, 'result 2')).toMatchObject({
        type: 'result',
        ok: false,
        error: { code: 'unknown_command' },
      });
      ws.send(JSON.stringify({ type: 'command', id: 3, command: 'put', args: { key: 5, value: 'v' } }));
      expect(await next((f) => f.id === 3, 'result 3')).toMatchObject({
        ok: false,
        error: { code: 'bad_args', field: 'args.key' },
      });
      ws.send(JSON.stringify({ type: 'command', id: 4, command: 'put', args: { key: 'k', valeu: 'v' } }));
      expect(await next((f) => f.id === 4, 'result 4')).toMatchObject({
        ok: false,
        error: { code: 'bad_args' },
      });
      ws.send(JSON.stringify({ type: 'subscribe', state: { everyMs: 1 } }));
      expect(await next((f) => f.type === 'error', 'error for bad subscribe')).toMatchObject({
        error: { code: 'bad_frame', field: 'state.everyMs' },
      });
      ws.send(JSON.stringify({ type: 'nonsense' }));
      expect(await next((f) => f.type === 'error', 'error for unknown type')).toMatchObject({
        error: { code: 'bad_frame' },
      });

      ws.send(JSON.stringify({ type: 'command', id: 5, command: 'put', args: { key: 'k', value: 'v' } }));
      expect(await next((f) => f.id === 5, 'result 5')).toMatchObject({ ok: true });
      ws.send(JSON.stringify({ type: 'command', id: 6, command: 'get', args: { key: 'k' } }));
      expect(await next((f) => f.id === 6, 'result 6')).toMatchObject({
        ok: true,
        value: { found: true, value: 'v' },
      });
      expect(ws.readyState).toBe(WebSocket.OPEN);
    } finally {
      ws.terminate();
    }
    expect(node.running).toBe(true);
  }, 15_000);
});

describe('raftctl node: start-up failures', () => {
  it('exits 1 with a clear message when its port is in use', async () => {
    const [port] = await freePorts(1);
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(port, '127.0.0.1', () => r()));
    const dir = tempDir();
    try {
      const r = await runCli(soloNodeArgs(`127.0.0.1:${port}`, path.join(dir, 'n1')));
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toContain(`port ${port} on 127.0.0.1 is already in use`);
    } finally {
      await new Promise<void>((r) => blocker.close(() => r()));
    }
  }, 15_000);

  it('refuses a second node on a data dir in use (exit 1, naming the owner); a crashed owner’s lock is taken over', async () => {
    const c = await cluster(1);
    const owner = c.nodes[0]!;
    await c.waitLeader();
    await (await owner.client()).command('put', { key: 'kept', value: '1' });
    const [port] = await freePorts(1);
    const second = await runCli(soloNodeArgs(`127.0.0.1:${port}`, owner.dataDir));
    expect(second.code, second.stderr).toBe(1);
    expect(second.stderr).toContain(
      `data dir ${owner.dataDir} is in use by another raftctl node (pid ${owner.proc!.pid} on `,
    );
    expect(second.stderr).toContain('stop that node first, or give this one another --data-dir');
    // The owner never noticed: it still serves what it had.
    expect((await owner.rangePrefix('kept')).get('kept')).toBe('1');

    // A crash leaves LOCK behind; the restarted node takes it over, says so, and has the write.
    await owner.kill('SIGKILL');
    owner.start();
    await owner.waitForLog(/taking over the lock of data dir .* from pid \d+ .*no longer running/);
    await c.waitLeader();
    expect((await owner.rangePrefix('kept')).get('kept')).toBe('1');
  }, 20_000);

  it('exits 2 on a bad peer list', async () => {
    const dir = tempDir();
    const base = ['node', '--id', '1', '--listen', '127.0.0.1:1', '--data-dir', path.join(dir, 'n1')];
    const bad = await runCli([...base, '--peers', '1=127.0.0.1:1,banana']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/bad peer "banana" in --peers: expected ID=HOST:PORT/);
    const notSelf = await runCli([...base, '--peers', '2=127.0.0.1:2']);
    expect(notSelf.code).toBe(2);
    expect(notSelf.stderr).toMatch(/--peers must include this node/);
    const badPort = await runCli([...base, '--peers', '1=127.0.0.1:99999']);
    expect(badPort.code).toBe(2);
    expect(badPort.stderr).toMatch(/port must be 1–65535/);
  }, 15_000);

  it('exits 1 with a clear message when the data dir cannot be used', async () => {
    const dir = tempDir();
    // Let another user reach into it, so only the locked dir below is off limits.
    chmodSync(dir, 0o755);
    const [port] = await freePorts(1);
    const args = (dataDir: string) => soloNodeArgs(`127.0.0.1:${port}`, dataDir);
    // A path through a regular file can never be a directory.
    writeFileSync(path.join(dir, 'file'), 'x');
    const notDir = await runCli(args(path.join(dir, 'file', 'n1')));
    expect(notDir.code).toBe(1);
    expect(notDir.stderr).toMatch(
      /cannot use data dir .*file\/n1: ENOTDIR; choose a directory you can write/,
    );

    // A directory without permissions. root ignores modes, so run the node as nobody then.
    const locked = path.join(dir, 'locked');
    mkdirSync(locked);
    chmodSync(locked, 0o000);
    const asRoot = process.getuid?.() === 0;
    const r = await runCli(args(locked), asRoot ? { uid: 65534, gid: 65534 } : {});
    chmodSync(locked, 0o700);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/cannot use data dir .*locked: EACCES/);
  }, 15_000);
});
