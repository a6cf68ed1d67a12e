import { afterEach, describe, expect, it } from 'vitest';
import { ControlError } from '../../src/client/client.js';
import { ClusterClient } from '../../src/client/cluster.js';
import { type Harness, startHarness } from '../server/control-fixture.js';
import { waitUntil } from '../support/wait-until.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** Three fake nodes that know each other by their real addresses; node 2 leads in term 3. */
async function threeNodes(): Promise<Harness[]> {
  const hs = await Promise.all([1, 2, 3].map(() => startHarness()));
  for (const h of hs) cleanups.push(() => h.stop());
  const members = hs.map((h, i) => ({ id: i + 1, address: `127.0.0.1:${h.port}`, learner: false }));
  hs.forEach((h, i) => {
    h.node.id = i + 1;
    h.node.members = members;
    h.node.role = i === 1 ? 'leader' : 'follower';
    h.node.leader = 2;
  });
  return hs;
}

async function connect(endpoints: string[], connectionsPerNode = 1): Promise<ClusterClient> {
  const c = await ClusterClient.connect(endpoints, { connectionsPerNode, leaderEveryMs: 50 });
  cleanups.push(() => c.close());
  return c;
}

const putsOn = (hs: Harness[]) =>
  hs.map((h) => h.node.binaryPuts.length + h.node.calls.filter((c) => c[0] === 'put').length);

describe('ClusterClient', () => {
  it('finds every member from one endpoint, sends writes to the leader and spreads reads', async () => {
    const hs = await threeNodes();
    const c = await connect([`127.0.0.1:${hs[0]!.port}`], 2);
    expect(c.memberIds).toEqual([1, 2, 3]);
    await waitUntil(() => c.leader === 2);
    await Promise.all(Array.from({ length: 12 }, (_, i) => c.command('put', { key: `k${i}`, value: 'v' })));
    expect(putsOn(hs)).toEqual([0, 12, 0]);
    // Reads of one turn travel together; the next turn's go to the next member.
    for (let turn = 0; turn < 6; turn++) {
      await Promise.all([1, 2].map(() => c.command('get', { key: 'k1', serializable: true })));
    }
    expect(hs.map((h) => h.node.calls.filter((call) => call[0] === 'get').length)).toEqual([4, 4, 4]);
    // A command for one node in particular goes through node().
    expect(await c.node(3)?.command('status')).toMatchObject({ id: 3 });
  });

  it('follows a new leader once a member reports a newer term, and ignores older reports', async () => {
    const hs = await threeNodes();
    const c = await connect(hs.map((h) => `127.0.0.1:${h.port}`));
    await waitUntil(() => c.leader === 2);
    // Node 3 wins term 4; node 1 still reports term 3's leader for a while.
    hs[1]!.node.role = 'follower';
    hs[2]!.node.role = 'leader';
    hs[2]!.node.term = 4;
    await waitUntil(() => c.leader === 3);
    await new Promise((r) => setTimeout(r, 150));
    expect(c.leader).toBe(3);
    await c.command('put', { key: 'k', value: 'v' });
    expect(putsOn(hs)).toEqual([0, 0, 1]);
    // An election in progress (term 5, nobody leads yet): writes go to any member meanwhile.
    for (const h of hs) {
      h.node.term = 5;
      h.node.role = 'follower';
      h.node.leader = 0;
    }
    await waitUntil(() => c.leader === undefined);
    for (let turn = 0; turn < 3; turn++) await c.command('put', { key: 'k', value: 'v' });
    expect(putsOn(hs)).toEqual([1, 1, 2]);
  });

  it("sends writes elsewhere while the leader's connection is down, and says when none is up", async () => {
    const hs = await threeNodes();
    const c = await connect([`127.0.0.1:${hs[1]!.port}`]);
    await waitUntil(() => c.leader === 2);
    await hs[1]!.stop();
    await waitUntil(() => c.node(2)?.connected === false);
    await c.command('put', { key: 'k', value: 'v' });
    expect(putsOn(hs)[1]).toBe(0);
    expect(putsOn(hs)[0]! + putsOn(hs)[2]!).toBe(1);
    await Promise.all([hs[0]!.stop(), hs[2]!.stop()]);
    await waitUntil(() => c.memberIds.every((id) => c.node(id)?.connected === false));
    const err = await c.command('put', { key: 'k', value: 'v' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ControlError);
    expect(err).toMatchObject({ code: 'unavailable' });
  });

  it('sends a refused write again (leadership moving, or a leader named), until it runs or its timeout passes', async () => {
    const hs = await threeNodes();
    const c = await connect([`127.0.0.1:${hs[0]!.port}`]);
    await waitUntil(() => c.leader === 2);
    // Node 2 hands leadership to node 3: it drops proposals meanwhile, and node 1 already
    // names node 3 (as a follower that does not forward would).
    hs[1]!.node.refusePuts = { code: 'proposal_dropped' };
    hs[0]!.node.refusePuts = { code: 'not_leader', leader: 3 };
    await expect(c.command('put', { key: 'k', value: 'v' })).resolves.toMatchObject({ revision: 1 });
    await expect(c.command('put', { key: 'k2', value: 'v' })).resolves.toMatchObject({ revision: 2 });
    expect(putsOn(hs)).toEqual([0, 0, 2]);
    expect(hs[1]!.node.refused).toBeGreaterThan(0);

    // Refused everywhere: the refusal comes back once the command's timeout has passed.
    for (const h of hs) h.node.refusePuts = { code: 'no_leader' };
    const t0 = performance.now();
    const err = await c
      .command('put', { key: 'k3', value: 'v' }, { timeoutMs: 300 })
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'no_leader' });
    expect(performance.now() - t0).toBeGreaterThanOrEqual(250);
    expect(hs.reduce((n, h) => n + h.node.refused, 0)).toBeGreaterThan(3);
    // Other errors are not retried.
    for (const h of hs) h.node.refusePuts = undefined;
    const before = hs.reduce((n, h) => n + h.node.calls.length, 0);
    expect(await c.command('snapshot').catch((e: unknown) => e)).toMatchObject({ code: 'internal' });
    expect(hs.reduce((n, h) => n + h.node.calls.length, 0)).toBe(before + 1);
  });

  it('keeps trying a member that is down when it connects, and uses it once it is up', async () => {
    const hs = await threeNodes();
    const port = hs[2]!.port;
    await hs[2]!.stop();
    const c = await connect([`127.0.0.1:1`, `127.0.0.1:${hs[0]!.port}`]);
    expect(c.memberIds).toEqual([1, 2, 3]);
    expect(c.node(3)).toBeUndefined();
    const back = await startHarness({}, port);
    cleanups.push(() => back.stop());
    back.node.id = 3;
    back.node.members = hs[0]!.node.members;
    await waitUntil(() => c.node(3)?.connected === true, 5000);
    expect(await c.node(3)!.command('status')).toMatchObject({ id: 3 });
  });

  it('follows the membership: connects to a member the leader adds, lets go of one it removes', async () => {
    const hs = await threeNodes();
    const [one, two, three] = hs.map((h) => h.node.members.find((m) => m.address === `127.0.0.1:${h.port}`)!);
    for (const h of hs) h.node.members = [one!, two!];
    const c = await connect([`127.0.0.1:${hs[0]!.port}`]);
    expect(c.memberIds).toEqual([1, 2]);
    for (const h of hs) h.node.members = [one!, two!, three!];
    await waitUntil(() => c.node(3)?.connected === true);
    expect(c.memberIds).toEqual([1, 2, 3]);
    const dropped = c.node(1)!;
    for (const h of hs) h.node.members = [two!, three!];
    await waitUntil(() => !c.memberIds.includes(1));
    expect(c.memberIds).toEqual([2, 3]);
    await waitUntil(() => !dropped.connected);
  });

  it('discovers the cluster from the first endpoint that answers, and fails when none does', async () => {
    const hs = await threeNodes();
    const c = await connect(['127.0.0.1:1', `127.0.0.1:${hs[0]!.port}`]);
    expect(c.memberIds).toEqual([1, 2, 3]);
    const none = await ClusterClient.connect(['127.0.0.1:1'], { timeoutMs: 1000 }).catch((e: unknown) => e);
    expect(none).toMatchObject({ code: 'unavailable' });
    expect((none as Error).message).toMatch(/no endpoint answered \(127\.0\.0\.1:1: /);
  });
});
