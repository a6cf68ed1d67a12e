// The driver's own decisions, on real clusters started in-process (real disk, real
// sockets): its checks on a write's request id (the control protocol refuses a bad pair at
// the edge already, so these are what keeps a caller inside the process from filing a
// request in the space of ids the node numbers itself), when it snapshots, when a leader's
// commit-only messages leave, what goes on while a leader's own write is slow, and that a
// write that fails stops the node.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CommandError } from '../../src/protocol/control.js';
import { type NodeOptions, type RunningNode, startNode } from '../../src/server/node.js';
import type { DiskStorage, SaveRequest } from '../../src/server/storage/disk-storage.js';
import { WalWriteError } from '../../src/server/storage/wal.js';
import { freePorts, TestResources, waitFor } from '../e2e/harness.js';

/** A one-node cluster in this process, leading once this resolves. */
async function leadingNode(res: TestResources, opts: Partial<NodeOptions> = {}): Promise<RunningNode> {
  return (await leadingCluster(1, res, opts))[0]!;
}

/** The nodes of a cluster of `size` in this process, node 1 leading once this resolves. */
async function leadingCluster(
  size: number,
  res: TestResources,
  opts: Partial<NodeOptions> = {},
): Promise<RunningNode[]> {
  const ports = await freePorts(size);
  const peers = new Map(ports.map((port, i) => [i + 1, `127.0.0.1:${port}`]));
  const nodes = await Promise.all(ports.map((port, i) => startMember(i + 1, port, peers, res, opts)));
  // Campaign until elected: votes sent before the peers' connections are up are lost.
  const first = nodes[0]!.driver;
  await waitFor('node 1 to lead', () => first.isLeader || void first.campaign(), { intervalMs: 200 });
  return nodes;
}

function startMember(
  id: number,
  port: number,
  peers: Map<number, string>,
  res: TestResources,
  opts: Partial<NodeOptions>,
): Promise<RunningNode> {
  return startNode({
    id,
    listen: { host: '127.0.0.1', port },
    peers,
    dataDir: res.tempDir('raftctl-driver-'),
    join: false,
    cluster: 'driver-test',
    allowFaults: false,
    tickMs: 10,
    electionTicks: 10,
    heartbeatTicks: 1,
    preVote: true,
    checkQuorum: true,
    snapshotEvery: 100_000,
    snapshotBytes: 64 << 20,
    snapshotCatchUpWrites: 5_000,
    requestTimeoutMs: 5_000,
    logLevel: 'warn',
    logToStderr: false,
    ...opts,
  });
}

/** A node's storage, as its driver holds it (tests only). */
function storageOf(n: RunningNode): DiskStorage {
  return (n.driver as unknown as { opts: { storage: DiskStorage } }).opts.storage;
}

/**
 * Holds every write of `n`'s that carries entries until `restore()`, which lets the held ones
 * go and puts the storage's own save back.
 */
function holdEntryWrites(n: RunningNode): { restore(): void } {
  const storage = storageOf(n);
  const save = storage.save.bind(storage);
  let release!: () => void;
  const held = new Promise<void>((resolve) => {
    release = resolve;
  });
  storage.save = async (req: SaveRequest) => {
    if (req.entries.length > 0) await held;
    return save(req);
  };
  return {
    restore: () => {
      release();
      storage.save = save;
    },
  };
}

describe('RaftDriver.propose request ids', () => {
  const res = new TestResources();
  let node: RunningNode;

  beforeAll(async () => {
    node = await leadingNode(res);
  });

  afterAll(async () => {
    await node?.stop();
    await res.cleanup(false);
  });

  /** The error a call fails with; propose refuses bad arguments by throwing at once. */
  async function refusal(p: () => Promise<unknown>): Promise<CommandError> {
    const err = await Promise.resolve()
      .then(p)
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(err).toBeInstanceOf(CommandError);
    return err as CommandError;
  }

  it("refuses the node's own client id, which it numbers itself", async () => {
    const before = await node.driver.propose({ op: 'put', key: 'k', value: 'v1' });
    const err = await refusal(() =>
      node.driver.propose({ op: 'put', key: 'k', value: 'v2', clientId: node.driver.clientId, seq: 1 }),
    );
    expect(err.code).toBe('bad_args');
    expect(err.message).toContain("this node's own");
    // Nothing was applied: the next own write lands one revision after the first.
    const after = await node.driver.propose({ op: 'put', key: 'k', value: 'v3' });
    expect(after.revision).toBe(before.revision + 1);
  });

  it('refuses a seq without a client id, and a client id without a seq', async () => {
    for (const ids of [{ seq: 7 }, { clientId: 'c1' }]) {
      const err = await refusal(() => node.driver.propose({ op: 'put', key: 'k', value: 'x', ...ids }));
      expect(err.code).toBe('bad_args');
      expect(err.message).toContain('give both or neither');
    }
  });

  it("applies a client's request id once, however often it is sent", async () => {
    const req = { op: 'put', key: 'once', value: 'v', clientId: 'client-a', seq: 1 } as const;
    const [a, b] = await Promise.all([node.driver.propose(req), node.driver.propose(req)]);
    const again = await node.driver.propose(req);
    expect(b.revision).toBe(a.revision);
    expect(again.revision).toBe(a.revision);
  });
});

describe('RaftDriver snapshots', () => {
  const res = new TestResources();
  let node: RunningNode | undefined;

  afterAll(async () => {
    await node?.stop();
    await res.cleanup(false);
  });

  it('waits for as many bytes of log as the last snapshot held, however many writes come first', async () => {
    // Every 20 writes by count; node 1's first snapshot comes after 20 × 1.618 of them.
    node = await leadingNode(res, { snapshotEvery: 20, snapshotCatchUpWrites: 5 });
    const driver = node.driver;
    const big = 'b'.repeat(20_000);
    // A state of 40 keys × 20 kB: the first snapshot holds most of it (~650 kB or more).
    for (let i = 0; i < 40; i++) await driver.propose({ op: 'put', key: `big/${i}`, value: big });
    await waitFor('the first snapshot', () => driver.stats.snapshots.created >= 1 || undefined);
    const first = driver.stats.snapshots.created;
    // 300 small writes are 15 periods by count but a few kB of log: encoding the whole state
    // again for each would cost far more than the log it lets go.
    for (let i = 0; i < 300; i++) await driver.propose({ op: 'put', key: 'small', value: String(i) });
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(driver.stats.snapshots.created).toBe(first);
    // Once the log since holds the snapshot's bytes again, the count rule snapshots.
    for (let i = 0; i < 60; i++) await driver.propose({ op: 'put', key: `big/${i % 40}`, value: big });
    await waitFor('the next snapshot', () => driver.stats.snapshots.created > first || undefined);
  }, 30_000);
});

describe("RaftDriver: a leader's commit-only messages", () => {
  const res = new TestResources();
  let nodes: RunningNode[] = [];
  const HOLD_MS = 2_000;
  const [leader, followerA, followerB] = [0, 1, 2].map((i) => () => nodes[i]!.driver);
  const sent = (type: string) => leader().stats.sent.get(type) ?? 0;
  const received = (type: string) => leader().stats.received.get(type) ?? 0;
  const commitOf = (d: ReturnType<typeof leader>) => d.rawNode.raft.raftLog.committed;
  // A write is acknowledged once one follower has it: the other's answer may still be on its way.
  const everyMsgAppAnswered = () =>
    waitFor('every MsgApp sent to be answered', () => received('MsgAppResp') >= sent('MsgApp') || undefined);

  beforeAll(async () => {
    // Heartbeats (which carry the commit index too) 10 s apart, so only MsgApps tell the
    // followers what committed while these tests run.
    nodes = await leadingCluster(3, res, {
      tickMs: 100,
      electionTicks: 200,
      heartbeatTicks: 100,
      commitHoldMs: HOLD_MS,
    });
    // The followers are replicating once they have taken a first write.
    await leader().propose({ op: 'put', key: 'warm', value: 'up' });
    await everyMsgAppAnswered();
  }, 30_000);

  afterAll(async () => {
    await Promise.all(nodes.map((n) => n.stop()));
    await res.cleanup(false);
  });

  it('sends one MsgApp per follower per write: the next write carries the commit index', async () => {
    const [apps, acks] = [sent('MsgApp'), received('MsgAppResp')];
    const [writes, followers] = [40, 2];
    for (let i = 0; i < writes; i++) await leader().propose({ op: 'put', key: 'k', value: String(i) });
    await everyMsgAppAnswered();
    // The core emits two per follower per write (the entries, then the commit): the second
    // is held until the next write's entries carry it. The last write's is still held.
    expect(sent('MsgApp') - apps).toBe(followers * writes);
    expect(received('MsgAppResp') - acks).toBe(followers * writes);
    expect(commitOf(followerA())).toBeLessThan(commitOf(leader()));
  });

  it('tells a quiet follower the commit index once the hold runs out, before any heartbeat', async () => {
    // The hold starts when the write commits, after this.
    const proposedAt = performance.now();
    await leader().propose({ op: 'put', key: 'quiet', value: 'v' });
    const committed = commitOf(leader());
    await waitFor(
      'the followers to learn the last commit',
      () => (commitOf(followerA()) >= committed && commitOf(followerB()) >= committed) || undefined,
      { timeoutMs: HOLD_MS + 2_000, intervalMs: 5 },
    );
    // A timer may fire up to a millisecond early.
    expect(performance.now() - proposedAt).toBeGreaterThanOrEqual(HOLD_MS - 1);
  });

  it('answers a write forwarded by a follower without waiting for the hold', async () => {
    const started = performance.now();
    await followerA().propose({ op: 'put', key: 'via-follower', value: 'v' });
    // The answer waits for the follower to learn its entry committed: at once, not HOLD_MS later.
    expect(performance.now() - started).toBeLessThan(HOLD_MS);
  });

  it('serves a linearizable read on a follower without waiting for the hold', async () => {
    await leader().propose({ op: 'put', key: 'read-me', value: 'v' });
    const started = performance.now();
    await followerB().linearizableBarrier();
    expect(performance.now() - started).toBeLessThan(HOLD_MS);
  });
});

describe('RaftDriver: asynchronous storage writes', () => {
  const res = new TestResources();
  let nodes: RunningNode[] = [];

  beforeAll(async () => {
    // Elections 20 s apart: node 1 stays the leader it is made.
    nodes = await leadingCluster(3, res, { tickMs: 100, electionTicks: 200, heartbeatTicks: 10 });
    await nodes[0]!.driver.propose({ op: 'put', key: 'warm', value: 'up' });
  }, 30_000);

  afterAll(async () => {
    await Promise.all(nodes.map((n) => n.stop()));
    await res.cleanup(false);
  });

  it("goes on replicating and committing while the leader's own write is held, and answers once it is done", async () => {
    const [leader, followerA, followerB] = nodes as [RunningNode, RunningNode, RunningNode];
    const storage = storageOf(leader);
    const hold = holdEntryWrites(leader);
    const followersHold = (index: number) =>
      storageOf(followerA).storage.lastIndex() >= index && storageOf(followerB).storage.lastIndex() >= index;
    const answered: string[] = [];
    let first: Promise<unknown> | undefined;
    let second: Promise<unknown> | undefined;
    try {
      const lastBefore = storage.storage.lastIndex();
      first = leader.driver.propose({ op: 'put', key: 'k1', value: 'v' }).then(() => answered.push('k1'));
      await waitFor(
        'the followers to persist the first write',
        () => followersHold(lastBefore + 1) || undefined,
      );
      await waitFor(
        'the commit index to pass it',
        () => leader.driver.rawNode.raft.raftLog.committed > lastBefore || undefined,
      );
      // The Ready loop does not wait for the leader's disk: a second write is replicated meanwhile.
      second = leader.driver.propose({ op: 'put', key: 'k2', value: 'v' }).then(() => answered.push('k2'));
      await waitFor(
        'the followers to persist the second write',
        () => followersHold(lastBefore + 2) || undefined,
      );
      // As in etcd, a node applies only what its own log holds: nothing is answered yet.
      await new Promise((r) => setTimeout(r, 50));
      expect(answered).toEqual([]);
      expect(storage.storage.lastIndex()).toBe(lastBefore);
    } finally {
      hold.restore();
    }
    await Promise.all([first, second]);
    expect(answered.sort()).toEqual(['k1', 'k2']);
  });
});

describe("RaftDriver: a leader's disk that stalls for longer than an election timeout", () => {
  const res = new TestResources();
  let nodes: RunningNode[] = [];
  const TICK_MS = 50;
  const ELECTION_TICKS = 10;

  beforeAll(async () => {
    nodes = await leadingCluster(3, res, {
      tickMs: TICK_MS,
      electionTicks: ELECTION_TICKS,
      heartbeatTicks: 1,
    });
    await nodes[0]!.driver.propose({ op: 'put', key: 'warm', value: 'up' });
  }, 30_000);

  afterAll(async () => {
    await Promise.all(nodes.map((n) => n.stop()));
    await res.cleanup(false);
  });

  it('keeps its leadership: the Ready loop goes on sending heartbeats while the write waits', async () => {
    const leader = nodes[0]!;
    const term = leader.driver.rawNode.raft.term;
    const hold = holdEntryWrites(leader);
    let write: Promise<unknown> | undefined;
    try {
      write = leader.driver.propose({ op: 'put', key: 'stalled', value: 'v' });
      // Three election timeouts (the longest a follower waits is two).
      await new Promise((r) => setTimeout(r, 3 * ELECTION_TICKS * TICK_MS));
      for (const n of nodes) {
        expect(n.driver.rawNode.raft.term).toBe(term);
        expect(n.driver.rawNode.raft.lead).toBe(leader.driver.id);
      }
    } finally {
      hold.restore();
    }
    await write;
  });
});

describe('RaftDriver: a write that fails', () => {
  const res = new TestResources();

  afterAll(async () => {
    await res.cleanup(false);
  });

  it('stops the node with what to do, and answers no write it had not made durable', async () => {
    const node = await leadingNode(res);
    const storage = storageOf(node);
    const save = storage.save.bind(storage);
    await node.driver.propose({ op: 'put', key: 'before', value: 'v' });
    // The disk fails the next write with entries, as a real fdatasync error surfaces.
    storage.save = async (req: SaveRequest) => {
      if (req.entries.length > 0)
        throw new WalWriteError(
          '0000000000000000-0000000000000001.wal',
          'fdatasync',
          new Error('EIO: i/o error, fdatasync'),
        );
      return save(req);
    };
    const write = node.driver.propose({ op: 'put', key: 'lost', value: 'v' });
    await expect(write).rejects.toThrow(/shutting down/);
    const stopped = await node.stopped;
    expect(stopped.code).toBe(1);
    expect(stopped.reason).toMatch(
      /^fatal: wal: fdatasync of 0000000000000000-0000000000000001\.wal failed \(EIO: i\/o error, fdatasync\)/,
    );
    expect(stopped.reason).toMatch(/check the disk \(space, I\/O errors\) and restart the node/);
  });
});
