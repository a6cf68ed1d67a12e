// The driver's own decisions, on a real one-node cluster started in-process (real disk,
// real sockets): its checks on a write's request id (the control protocol refuses a bad
// pair at the edge already, so these are what keeps a caller inside the process from filing
// a request in the space of ids the node numbers itself), and when it snapshots.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CommandError } from '../../src/protocol/control.js';
import { type NodeOptions, type RunningNode, startNode } from '../../src/server/node.js';
import { freePorts, TestResources, waitFor } from '../e2e/harness.js';

/** A one-node cluster in this process, leading once this resolves. */
async function leadingNode(res: TestResources, opts: Partial<NodeOptions> = {}): Promise<RunningNode> {
  const [port] = await freePorts(1);
  const node = await startNode({
    id: 1,
    listen: { host: '127.0.0.1', port: port! },
    peers: new Map([[1, `127.0.0.1:${port}`]]),
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
  await waitFor('the node to lead', () => node.driver.isLeader);
  return node;
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
