// The driver's own checks on a write's request id, on a real one-node cluster started
// in-process (real disk, real sockets): the control protocol refuses a bad pair at the edge
// already, so these are what keeps a caller inside the process from filing a request in
// the space of ids the node numbers itself.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CommandError } from '../../src/protocol/control.js';
import { type RunningNode, startNode } from '../../src/server/node.js';
import { freePorts, TestResources, waitFor } from '../e2e/harness.js';

describe('RaftDriver.propose request ids', () => {
  const res = new TestResources();
  let node: RunningNode;

  beforeAll(async () => {
    const [port] = await freePorts(1);
    node = await startNode({
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
    });
    await waitFor('the node to lead', () => node.driver.isLeader);
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
